"""The Bearer secret of a call: read from SSM Parameter Store or Secrets Manager."""

from __future__ import annotations

from cronfleet.lifecycle.wrapper import NonRetryableError

# Powertools Parameters cache: a warm Lambda calling every minute reads the secret every few
# minutes, and a rotated secret is picked up within that time.
SECRET_MAX_AGE_SECONDS = 300


def read_secret(arn: str) -> str:
    """Read a Bearer secret from Secrets Manager or SSM Parameter Store, cached by Powertools."""
    # Imported here: Powertools Parameters pulls in boto3, which only Http tasks with a secret
    # need, and cold start is a product metric.
    from aws_lambda_powertools.utilities import parameters

    if ":ssm:" in arn:
        # GetParameter accepts the parameter's ARN as its name.
        value = parameters.get_parameter(arn, decrypt=True, max_age=SECRET_MAX_AGE_SECONDS)
    else:
        value = parameters.get_secret(arn, max_age=SECRET_MAX_AGE_SECONDS)
    return _secret_text(arn, value)


def _secret_text(arn: str, value: object) -> str:
    # The stubs say str, but a binary secret (SecretBinary) arrives as bytes.
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str):
        raise NonRetryableError(f"secret {arn} is not a text value")
    return value
