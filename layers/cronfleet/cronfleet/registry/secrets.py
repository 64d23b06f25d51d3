"""Which Bearer secrets the built-in HTTP function may read, checked when a task is declared.

The HTTP function's IAM policy lets it read Secrets Manager secrets and SSM parameters under
``cronfleet/`` in the stack's own account and region, nothing else. A task whose ``SecretArn``
lies outside that would deploy fine and then fail on every run with AccessDenied; checking it
at registration (and in ``cronfleet validate``) turns that into a clear error at deploy time.

The scope is a list of ARN prefixes. The registry gets them from its environment
(``HTTP_SECRET_ARN_PREFIXES``, set in template.yaml from the same ``Fn::Sub`` strings as the
HTTP function's policy, which a test keeps equal); ``cronfleet validate`` reads them from the
template itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class SecretScope:
    """ARN prefixes the HTTP function may read.

    For example ``arn:aws:ssm:eu-west-1:123456789012:parameter/cronfleet/``.

    A prefix may hold ``*`` for one whole ARN field the template leaves to deploy time (the
    region or account in ``cronfleet validate``, before any deploy).
    """

    prefixes: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> SecretScope:
        return cls(tuple(part.strip() for part in text.split(",") if part.strip()))

    def refusal(self, secret_arn: str) -> str | None:
        """Why the HTTP function could not read this secret, or None when it can."""
        if any(_matches(prefix, secret_arn) for prefix in self.prefixes):
            return None
        allowed = ", ".join(f"{prefix}*" for prefix in self.prefixes) or "none"
        closest = _closest(self.prefixes, secret_arn)
        why = ""
        if closest is not None:
            why = _difference(closest, secret_arn)
        return (
            f"the HTTP function cannot read {secret_arn}{why}: its IAM policy allows only "
            f"{allowed}; store the secret under cronfleet/ in this stack's account and region"
        )


_FIELDS = ("partition", "service", "region", "account")


def _split(arn: str) -> list[str]:
    return arn.split(":", 5)


def _matches(prefix: str, arn: str) -> bool:
    want, have = _split(prefix), _split(arn)
    if len(want) != 6 or len(have) != 6:
        return False
    for wanted, actual in zip(want[:5], have[:5], strict=True):
        if wanted not in ("*", actual):
            return False
    return have[5].startswith(want[5])


def _closest(prefixes: Iterable[str], arn: str) -> str | None:
    """The prefix of the same service as the ARN, if any: the one worth comparing with."""
    have = _split(arn)
    for prefix in prefixes:
        want = _split(prefix)
        if len(want) == 6 and len(have) == 6 and want[2] == have[2]:
            return prefix
    return None


def _difference(prefix: str, arn: str) -> str:
    want, have = _split(prefix), _split(arn)
    for name, wanted, actual in zip(_FIELDS, want[1:5], have[1:5], strict=True):
        if wanted not in ("*", actual):
            return f" ({name} {actual}, not {wanted})"
    return f" ({have[5]} is not under {want[5]})"
