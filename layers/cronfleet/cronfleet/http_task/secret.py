"""The Bearer secret of a call: read from SSM Parameter Store or Secrets Manager.

A secret that does not exist fails the run for good (:class:`SecretNotFound`): every retry
would ask for the same missing name. Any other failure to read it (throttling, a 5xx, a network
blip, access still propagating) may pass, so the caller retries it.
"""

from __future__ import annotations

from cronfleet.lifecycle.wrapper import NonRetryableError

# Powertools Parameters cache: a warm Lambda calling every minute reads the secret every few
# minutes, and a rotated secret is picked up within that time.
SECRET_MAX_AGE_SECONDS = 300

# The error codes with which SSM and Secrets Manager say the name holds nothing.
NOT_FOUND_CODES = frozenset(
    {"ParameterNotFound", "ParameterVersionNotFound", "ResourceNotFoundException"}
)


class SecretNotFound(NonRetryableError):
    """The task's ``SecretArn`` names a parameter or secret that does not exist."""

    def __init__(self, arn: str, code: str, detail: str) -> None:
        said = f": {detail}" if detail else ""
        super().__init__(
            f"the secret {arn} does not exist ({code}{said}); not retried, since it cannot "
            "appear by itself: store it, and the next run reads it"
        )
        self.arn = arn
        self.code = code


def read_secret(arn: str) -> str:
    """Read a Bearer secret from Secrets Manager or SSM Parameter Store, cached by Powertools.

    Raises :class:`SecretNotFound` when the service says the name holds nothing.
    """
    # Imported here: Powertools Parameters pulls in boto3, which only Http tasks with a secret
    # need, and cold start is a product metric.
    from aws_lambda_powertools.utilities import parameters

    try:
        if ":ssm:" in arn:
            # GetParameter accepts the parameter's ARN as its name.
            value = parameters.get_parameter(arn, decrypt=True, max_age=SECRET_MAX_AGE_SECONDS)
        else:
            value = parameters.get_secret(arn, max_age=SECRET_MAX_AGE_SECONDS)
    except parameters.GetParameterError as exc:
        missing = _service_error(exc)
        if missing is not None and missing[0] in NOT_FOUND_CODES:
            raise SecretNotFound(arn, *missing) from None
        raise
    return _secret_text(arn, value)


def _service_error(exc: BaseException) -> tuple[str, str] | None:
    """The service's error code and message behind a Powertools error, if a service answered.

    Powertools raises its own error inside ``except``, so the botocore error is its context.
    """
    from botocore.exceptions import ClientError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ClientError):
            error = seen.response.get("Error", {})
            return str(error.get("Code", "")), str(error.get("Message", ""))
        seen = seen.__cause__ or seen.__context__
    return None


def _secret_text(arn: str, value: object) -> str:
    # The stubs say str, but a binary secret (SecretBinary) arrives as bytes.
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str):
        raise NonRetryableError(f"secret {arn} is not a text value")
    return value
