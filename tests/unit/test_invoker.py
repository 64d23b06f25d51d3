"""The Lambda adapter, checked on the exact requests it sends (botocore's Stubber)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from cronfleet.invoker import InvokeError, LambdaInvoker

EVENT = {"cronfleet": {"task_id": "report", "slot": "2026-11-02T09:00:00Z", "attempt": 1}}


@pytest.fixture
def client():  # type: ignore[no-untyped-def]
    return boto3.client(
        "lambda",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_an_invoke_is_asynchronous_with_the_envelope_as_payload(client) -> None:  # type: ignore[no-untyped-def]
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {"StatusCode": 202},
            {
                "FunctionName": "cronfleet-ExampleTaskFunction",
                "InvocationType": "Event",
                "Payload": json.dumps(EVENT, separators=(",", ":")).encode(),
            },
        )
        LambdaInvoker(client).invoke("cronfleet-ExampleTaskFunction", EVENT)
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    "code",
    ["TooManyRequestsException", "ResourceNotFoundException", "AccessDeniedException"],
)
def test_a_refused_invoke_becomes_an_invoke_error_with_its_code(client, code: str) -> None:  # type: ignore[no-untyped-def]
    with Stubber(client) as stub:
        stub.add_client_error("invoke", service_error_code=code, service_message="refused")
        with pytest.raises(InvokeError) as error:
            LambdaInvoker(client).invoke("cronfleet-ExampleTaskFunction", EVENT)
    assert (error.value.code, error.value.message) == (code, "refused")
