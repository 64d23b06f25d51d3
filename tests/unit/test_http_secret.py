"""Reading an Http task's secret on AWS: which failures end the run and which are retried.

The services' answers come from a botocore Stubber on the client Powertools reads with: AWS's
own throttles, 5xx and not-found answers have no local engine. (The local endpoint's answers,
through the same code, are in tests/integration/test_local_secrets.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS
from botocore.stub import Stubber

from cronfleet.http_task import HttpCallFailed, SecretNotFound, call_http_target, read_secret
from cronfleet.lifecycle.wrapper import NonRetryableError
from cronfleet.registry.definition import HttpTarget

PARAMETER_ARN = "arn:aws:ssm:eu-west-1:123456789012:parameter/cronfleet/cron-secret"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cronfleet/api-AbCdEf"


def _client(service: str) -> Any:
    return boto3.client(
        service,
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture
def ssm() -> Iterator[Stubber]:
    client = _client("ssm")
    with Stubber(client) as stubber:
        DEFAULT_PROVIDERS["ssm"] = SSMProvider(boto3_client=client)
        try:
            yield stubber
        finally:
            DEFAULT_PROVIDERS.pop("ssm", None)


@pytest.fixture
def secrets_manager() -> Iterator[Stubber]:
    client = _client("secretsmanager")
    with Stubber(client) as stubber:
        DEFAULT_PROVIDERS["secrets"] = SecretsProvider(boto3_client=client)
        try:
            yield stubber
        finally:
            DEFAULT_PROVIDERS.pop("secrets", None)


def never_called(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request may be sent, got {request.url}")


def call_with_secret(arn: str) -> None:
    target = HttpTarget.model_validate({"Url": "https://api.example.com/cron", "SecretArn": arn})
    call_http_target(
        target,
        transport=httpx.MockTransport(never_called),
        resolver=lambda host, port: ["93.184.215.14"],
    )


def test_a_missing_ssm_parameter_fails_the_run_without_retries(ssm: Stubber) -> None:
    # given SSM answers that the parameter does not exist (it sends no message with it)
    ssm.add_client_error("get_parameter", "ParameterNotFound", "", http_status_code=400)

    # when the HTTP caller reads it
    with pytest.raises(SecretNotFound) as missing:
        call_with_secret(PARAMETER_ARN)

    # then the run ends for good, naming the ARN and the service's code
    assert isinstance(missing.value, NonRetryableError)
    assert str(missing.value).startswith(
        f"the secret {PARAMETER_ARN} does not exist (ParameterNotFound); not retried"
    )


def test_a_missing_secrets_manager_secret_fails_the_run_without_retries(
    secrets_manager: Stubber,
) -> None:
    # given Secrets Manager answers as it does for a name it does not hold
    secrets_manager.add_client_error(
        "get_secret_value",
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
        http_status_code=400,
    )

    # when it is read, then the error is the not-found one, with the service's words
    with pytest.raises(SecretNotFound, match=r"can't find the specified secret\.\); not retried"):
        read_secret(SECRET_ARN)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 400),
        ("InternalServerError", 500),
        ("AccessDeniedException", 400),  # a policy change may still be propagating
    ],
)
def test_any_other_failure_to_read_the_parameter_is_retried(
    ssm: Stubber, code: str, status: int
) -> None:
    # given SSM answers a throttle, a 5xx, or a refusal
    ssm.add_client_error("get_parameter", code, "try later", http_status_code=status)

    # when the HTTP caller reads the parameter
    with pytest.raises(HttpCallFailed) as failed:
        call_with_secret(PARAMETER_ARN)

    # then the failure is a retryable one, naming the secret and the service's error
    assert not isinstance(failed.value, NonRetryableError)
    assert f"could not read the secret {PARAMETER_ARN}" in str(failed.value)
    assert code in str(failed.value)
