"""The local SSM and Secrets Manager endpoint, read by the HTTP caller's own code.

Each read goes through ``cronfleet.http_task.read_secret``, that is Powertools Parameters and
botocore, to the loopback endpoint (``AWS_ENDPOINT_URL_SSM``, ``AWS_ENDPOINT_URL_SECRETS_MANAGER``
as the local runtime sets them), which answers in the services' wire format from a secrets
file. What a missing name does to a run is in tests/e2e/test_imported_http_task.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import GetParameterError
from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS
from botocore.exceptions import ClientError

from cronfleet.http_task import SecretNotFound, read_secret
from cronfleet_tools.local.secrets import LocalSecrets

PARAMETER_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/cronfleet/cron-secret"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cronfleet/partner-api-AbCdEf"


@pytest.fixture
def secrets_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets.json"
    path.write_text(
        json.dumps({"/cronfleet/cron-secret": "ssm-token", "cronfleet/partner-api": "sm-token"})
    )
    return path


@pytest.fixture
def endpoint(secrets_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalSecrets]:
    """The endpoint, with this process's SSM and Secrets Manager clients pointed at it."""
    secrets = LocalSecrets(secrets_file).start()
    for variable in ("AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.setenv(variable, secrets.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Powertools keeps one provider (one client, one cache) per service for the process; each
    # test gets new ones, made with the endpoint above.
    for provider in ("ssm", "secrets"):
        DEFAULT_PROVIDERS.pop(provider, None)
    try:
        yield secrets
    finally:
        for provider in ("ssm", "secrets"):
            DEFAULT_PROVIDERS.pop(provider, None)
        secrets.stop()


def test_an_ssm_parameter_is_read_by_its_arn_from_the_file(endpoint: LocalSecrets) -> None:
    # given the file holds /cronfleet/cron-secret
    # when the HTTP caller reads the parameter's ARN, as an imported task names it
    value = read_secret(PARAMETER_ARN)

    # then it gets the file's value
    assert value == "ssm-token"


def test_a_secrets_manager_secret_is_read_by_its_full_arn_or_its_name(
    endpoint: LocalSecrets,
) -> None:
    # given the file holds cronfleet/partner-api
    # when the secret is read by its ARN, random suffix and all, and by its name
    by_arn = read_secret(SECRET_ARN)
    DEFAULT_PROVIDERS.pop("secrets", None)  # not from the cache
    by_name = read_secret("cronfleet/partner-api")

    # then both get the file's value
    assert (by_arn, by_name) == ("sm-token", "sm-token")


@pytest.mark.parametrize(
    ("arn", "code", "key"),
    [
        (
            "arn:aws:ssm:us-east-1:123456789012:parameter/cronfleet/other-token",
            "ParameterNotFound",
            "/cronfleet/other-token",
        ),
        (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:cronfleet/other-api-XyZ123",
            "ResourceNotFoundException",
            "cronfleet/other-api",
        ),
    ],
    ids=["ssm", "secrets manager"],
)
def test_a_name_the_file_lacks_is_not_found_and_the_message_names_the_file_and_key(
    endpoint: LocalSecrets, secrets_file: Path, arn: str, code: str, key: str
) -> None:
    # given a name the file does not hold
    # when the HTTP caller reads it
    with pytest.raises(SecretNotFound) as missing:
        read_secret(arn)

    # then it is the non-retryable not-found error, with the service's code, the key to add
    # and the file to add it to
    message = str(missing.value)
    assert missing.value.code == code
    assert f"the secret {arn} does not exist ({code}: " in message
    assert f'add "{key}": "<the secret>" to {secrets_file}' in message


def test_without_a_secrets_file_the_message_says_it_does_not_exist_yet(
    endpoint: LocalSecrets, secrets_file: Path
) -> None:
    # given no secrets file at all
    secrets_file.unlink()

    # when a parameter is read, then the message says to create the file
    with pytest.raises(SecretNotFound, match=r"\(it does not exist yet\)"):
        read_secret(PARAMETER_ARN)


def test_an_edit_to_the_file_applies_to_the_next_read_without_a_restart(
    endpoint: LocalSecrets, secrets_file: Path
) -> None:
    # given a client reading the parameter once
    ssm = boto3.client("ssm")
    assert ssm.get_parameter(Name=PARAMETER_ARN, WithDecryption=True)["Parameter"]["Value"] == (
        "ssm-token"
    )

    # when the file is edited while the endpoint runs
    secrets_file.write_text(json.dumps({"/cronfleet/cron-secret": "rotated"}))

    # then the next read gets the new value, under the parameter's name and ARN
    parameter = ssm.get_parameter(Name=PARAMETER_ARN, WithDecryption=True)["Parameter"]
    assert (parameter["Name"], parameter["Value"]) == ("/cronfleet/cron-secret", "rotated")
    assert parameter["ARN"] == PARAMETER_ARN


def test_a_file_broken_while_running_fails_the_read_as_one_that_may_pass(
    endpoint: LocalSecrets, secrets_file: Path
) -> None:
    # given the file turned malformed after the runner checked it
    secrets_file.write_text('{"/cronfleet/cron-secret": ')

    # when the HTTP caller reads a parameter
    with pytest.raises(GetParameterError) as failed:
        read_secret(PARAMETER_ARN)

    # then it is not "not found" (fixing the file helps, so the run retries), and it says why
    assert not isinstance(failed.value, SecretNotFound)
    assert "InvalidLocalSecretsFile" in str(failed.value)
    assert f"{secrets_file}: not JSON" in str(failed.value)


def test_any_other_operation_is_refused_by_name(endpoint: LocalSecrets) -> None:
    # given a client of the endpoint
    ssm = boto3.client("ssm")

    # when it asks for something only GetParameter and GetSecretValue are served for
    with pytest.raises(ClientError) as refused:
        ssm.put_parameter(Name="/cronfleet/x", Value="v", Type="SecureString")

    # then the endpoint says what it serves
    error = refused.value.response["Error"]
    assert error["Code"] == "UnknownOperationException"
    assert "only SSM GetParameter and Secrets Manager GetSecretValue" in error["Message"]
