"""Enforcing each role: in the runner's process, and in each function's own process."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from cronfleet_tools.local.iam.calls import Calls, enforce
from cronfleet_tools.local.iam.policies import Policy, Statement, function_policies, function_tags
from cronfleet_tools.local.iam.resolving import Naming

# --- enforcing it: in the runner's process, and in each function's -------------------------------

# A function process's policy file (read by cronfleet_tools.local.bootstrap, which keeps its own
# copy of the name so that a process not enforcing IAM never imports this module).
ENFORCEMENT_VARIABLE = "CRONFLEET_LOCAL_IAM"


@dataclass(frozen=True)
class Enforcement:
    """One function's role, and how to tell what its calls need, ready to check calls."""

    policy: Policy
    calls: Calls

    def attach(self, events: Any) -> Callable[[], None]:
        return enforce(events, self.policy, self.calls)

    def check_invoke(self, function: str) -> None:
        """Lambda's check of an Invoke (the dispatcher's, or an on-failure destination's)."""
        for needed in self.calls.needed("lambda", "Invoke", {"FunctionName": function}):
            self.policy.check(needed.action, needed.resource, needed.context)

    def to_json(self) -> dict[str, Any]:
        naming = self.calls.naming
        return {
            "principal": self.policy.principal,
            "statements": [
                {
                    "effect": s.effect,
                    "actions": list(s.actions),
                    "resources": list(s.resources),
                    "conditions": {
                        op: {k: list(v) for k, v in t.items()} for op, t in s.conditions.items()
                    },
                    "sid": s.sid,
                }
                for s in self.policy.statements
            ],
            "naming": {
                "names": dict(naming.names),
                "stack_name": naming.stack_name,
                "region": naming.region,
                "account": naming.account,
                "partition": naming.partition,
            },
            "tags": {name: dict(tags) for name, tags in self.calls.tags.items()},
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Enforcement:
        statements = tuple(
            Statement(
                effect=s["effect"],
                actions=tuple(s["actions"]),
                resources=tuple(s["resources"]),
                conditions={
                    op: {k: tuple(v) for k, v in t.items()} for op, t in s["conditions"].items()
                },
                sid=s["sid"],
            )
            for s in document["statements"]
        )
        naming = Naming(**document["naming"])
        return cls(Policy(document["principal"], statements), Calls(naming, document["tags"]))


def enforcements(transformed: Mapping[str, Any], naming: Naming) -> dict[str, Enforcement]:
    """Every function's enforcement, by logical id."""
    calls = Calls(naming, function_tags(transformed, naming))
    return {
        logical_id: Enforcement(policy, calls)
        for logical_id, policy in function_policies(transformed, naming).items()
    }


def enforce_in_this_process(path: str) -> None:
    """Hold every boto3 client this process will create to the policy in ``path`` (a function
    process of the local runtime, before its handler is imported)."""
    import boto3
    import boto3.session

    enforcement = Enforcement.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    # Every session, not only the default one: libraries make their own (Powertools Parameters
    # reads secrets through a boto3.session.Session() of its own), and AWS holds those calls
    # to the role just the same.
    make_session = boto3.session.Session.__init__

    def session_held_to_the_role(self: boto3.session.Session, *args: Any, **kwargs: Any) -> None:
        make_session(self, *args, **kwargs)
        enforcement.attach(self.events)

    boto3.session.Session.__init__ = session_held_to_the_role  # type: ignore[method-assign]
    boto3.setup_default_session()


class CheckedInvoker:
    """An invoker (Lambda's Invoke API) that first checks the caller's role allows the call."""

    def __init__(self, inner: Any, enforcement: Enforcement) -> None:
        self.inner = inner
        self.enforcement = enforcement

    def invoke(self, function: str, event: dict[str, Any]) -> None:
        from cronfleet.invoker import InvokeError

        try:
            self.enforcement.check_invoke(function)
        except ClientError as exc:
            error = exc.response["Error"]
            raise InvokeError(error["Code"], error["Message"]) from exc
        self.inner.invoke(function, event)
