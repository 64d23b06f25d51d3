"""The REST API `make run` serves on loopback, driven over HTTP as a client would drive it.

Two stacks, each started by the runner as `make run` starts one, live, on DynamoDB Local:

- ``echo``: a small API whose function answers with the proxy event it received (or fails, or
  answers with a binary body), so the event API Gateway's proxy integration would send, and
  what is made of the function's response, show in what comes back.
- ``schedules``: the repository's template (its tasks left out), with the schedules API.

Every request to an AWS_IAM method is signed with botocore's SigV4Auth for ``execute-api``, with
the local runtime's key; the server verifies the signature.
"""

from __future__ import annotations

import base64
import json
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.auth
import httpx
import pytest
from botocore.credentials import Credentials

from cronfleet_tools.local.api import LOCAL_CALLER_ARN, load_api
from cronfleet_tools.local.dynamodb_local import ACCESS_KEY
from cronfleet_tools.local.runner import RunOptions
from cronfleet_tools.template import load_template
from tests.support.local_api import (
    REPO_ROOT,
    RunningStack,
    running,
    signed,
    template_without_tasks,
)

pytestmark = pytest.mark.integration

ECHO_CODE = """
    import base64
    import json


    def handler(event, context):
        if event["path"] == "/boom":
            raise RuntimeError("the function failed")
        if event["path"] == "/malformed":
            return {"body": "a response without a statusCode"}
        if event["path"] == "/binary":
            return {
                "statusCode": 200,
                "headers": {"Content-Type": "application/octet-stream"},
                "body": base64.b64encode(b"\\x00\\x01binary").decode(),
                "isBase64Encoded": True,
            }
        return {
            "statusCode": 200,
            "headers": {"X-Echo": "single", "Set-Cookie": "dropped=1"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": json.dumps(event),
        }
"""


def api_event(path: str, method: str, **properties: Any) -> dict[str, Any]:
    return {
        "Type": "Api",
        "Properties": {
            "RestApiId": {"Ref": "EchoApi"},
            "Path": path,
            "Method": method,
            **properties,
        },
    }


def echo_template(directory: Path) -> Path:
    repo = load_template(REPO_ROOT / "template.yaml")
    code = directory / "echo"
    code.mkdir()
    (code / "app.py").write_text(textwrap.dedent(ECHO_CODE))
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "TasksTable": repo["Resources"]["TasksTable"],
            "ExecutionsTable": repo["Resources"]["ExecutionsTable"],
            "EchoApi": {
                "Type": "AWS::Serverless::Api",
                "Properties": {
                    "StageName": "v1",
                    "Auth": {"DefaultAuthorizer": "AWS_IAM"},
                    "Variables": {"colour": "blue"},
                },
            },
            "EchoFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": str(code),
                    "Handler": "app.handler",
                    "Runtime": "python3.13",
                    "Timeout": 10,
                    "Events": {
                        "Thing": api_event("/things/{thing}", "get"),
                        "SpecialThing": api_event("/things/special", "get"),
                        "CreateThing": api_event("/things/{thing}", "post"),
                        "Files": api_event("/files/{proxy+}", "any"),
                        "Boom": api_event("/boom", "get"),
                        "Malformed": api_event("/malformed", "get"),
                        "Binary": api_event("/binary", "get"),
                        "Public": api_event("/public", "get", Auth={"Authorizer": "NONE"}),
                    },
                },
            },
        },
    }
    path = directory / "template.yaml"
    path.write_text(json.dumps(template, indent=1))
    return path


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    directory = tmp_path_factory.mktemp("echo-api")
    options = RunOptions(
        template=echo_template(directory), state_dir=directory / ".cronfleet", ca_file=None
    )
    with running(options) as stack:
        yield stack


@pytest.fixture(scope="module")
def schedules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    directory = tmp_path_factory.mktemp("schedules-api")
    options = RunOptions(
        template=template_without_tasks(directory),
        state_dir=directory / ".cronfleet",
        ca_file=None,
    )
    with running(options) as stack:
        yield stack


def echoed(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    event: dict[str, Any] = response.json()
    return event


# --- what API Gateway answers itself -------------------------------------------------------


def test_the_runner_writes_the_stage_url_of_the_api_into_its_stack_file(
    echo: RunningStack,
) -> None:
    # given a template with an API, started as `make run` starts it
    # when another terminal reads stack.json
    url = echo.info.api_url

    # then it finds the stage's URL on a loopback port
    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/v1")


def test_a_template_without_api_events_has_no_api_to_serve(tmp_path: Path) -> None:
    # given the echo template with its function's events taken away
    template = json.loads(echo_template(tmp_path).read_text())
    del template["Resources"]["EchoFunction"]["Properties"]["Events"]

    # when the API is read from it, then there is none, so the runner serves nothing
    assert load_api(template) is None


def test_an_unsigned_request_is_refused_as_missing_a_token_and_runs_nothing(
    echo: RunningStack,
) -> None:
    # given the number of runs so far
    runs = len(echo.recorder.invocations)

    # when a request without a signature calls an AWS_IAM method
    response = httpx.get(f"{echo.api_url}/things/t-1")

    # then API Gateway's answer, and the function did not run
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert len(echo.recorder.invocations) == runs


def test_a_request_signed_with_another_secret_is_refused_with_the_expected_strings(
    echo: RunningStack,
) -> None:
    # given the local access key signed with the wrong secret
    wrong = Credentials(ACCESS_KEY, "not-the-local-secret")

    # when it calls the API
    response = signed("GET", f"{echo.api_url}/things/t-1", credentials=wrong)

    # then the signature does not match, and the message says what was expected
    assert response.status_code == 403
    message = response.json()["message"]
    assert message.startswith(
        "The request signature we calculated does not match the signature you provided."
    )
    assert "GET\n/v1/things/t-1\n" in message  # the canonical request
    assert response.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_a_body_changed_after_signing_breaks_the_signature(echo: RunningStack) -> None:
    # given a request signed for one body
    url = f"{echo.api_url}/things/t-1"
    good = signed("POST", url, body=b'{"n": 1}')
    assert good.status_code == 200
    headers = {k: v for k, v in good.request.headers.items() if k != "content-length"}

    # when the same signed headers carry another body
    response = httpx.post(url, content=b'{"n": 2}', headers=headers)

    # then it is refused
    assert response.status_code == 403
    assert "does not match" in response.json()["message"]


def test_an_unknown_access_key_is_an_invalid_security_token(echo: RunningStack) -> None:
    # given a key the local stack does not know
    stranger = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")

    # when it signs a request, then it is refused as API Gateway refuses it
    response = signed("GET", f"{echo.api_url}/things/t-1", credentials=stranger)
    assert response.status_code == 403
    assert response.json() == {"message": "The security token included in the request is invalid."}


def test_a_signature_for_another_region_or_service_is_refused(echo: RunningStack) -> None:
    # given signatures scoped to another region, and to another service
    url = f"{echo.api_url}/things/t-1"

    # when they call the API
    elsewhere = signed("GET", url, region="eu-west-1")
    lambda_scoped = signed("GET", url, service="lambda")

    # then both are refused, each saying what the scope should have been
    assert elsewhere.status_code == lambda_scoped.status_code == 403
    assert elsewhere.json()["message"].startswith(
        "Credential should be scoped to a valid region, not 'eu-west-1'."
    )
    assert lambda_scoped.json()["message"].startswith(
        "Credential should be scoped to correct service: 'execute-api'."
    )


def test_a_signature_older_than_five_minutes_has_expired(
    echo: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a client whose clock is six minutes behind
    behind = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=6)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: behind)

    # when it signs a request, then the signature has expired
    response = signed("GET", f"{echo.api_url}/things/t-1")
    assert response.status_code == 403
    assert response.json()["message"].startswith(
        f"Signature expired: {behind:%Y%m%dT%H%M%SZ} is now earlier than "
    )


def test_an_authorization_header_of_another_kind_is_an_incomplete_signature(
    echo: RunningStack,
) -> None:
    # when a bearer token is sent to an AWS_IAM method
    response = httpx.get(
        f"{echo.api_url}/things/t-1", headers={"Authorization": "Bearer not-a-signature"}
    )

    # then API Gateway's list of what a signature needs
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "IncompleteSignatureException"
    message = response.json()["message"]
    assert "Authorization header requires 'Credential' parameter." in message
    assert message.endswith("Authorization=Bearer not-a-signature")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nowhere"), ("GET", "/things/t-1/parts"), ("DELETE", "/things/t-1")],
    ids=["unknown path", "unknown sub-path", "method the resource lacks"],
)
def test_a_route_the_api_lacks_is_missing_a_token_even_when_signed(
    echo: RunningStack, method: str, path: str
) -> None:
    # when a signed request asks for a path or method the API does not have
    response = signed(method, f"{echo.api_url}{path}")

    # then API Gateway answers as for an unknown route with IAM auth: not a 404
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}


def test_a_path_outside_the_stage_is_forbidden(echo: RunningStack) -> None:
    # given the API's base, without the stage
    base = echo.api_url.removesuffix("/v1")

    # when a signed request leaves the stage out, then it is API Gateway's "Forbidden"
    response = signed("GET", f"{base}/things/t-1")
    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden"}


# --- the proxy event -----------------------------------------------------------------------


def test_a_signed_request_reaches_the_function_as_a_rest_proxy_event(echo: RunningStack) -> None:
    # given a signed GET with an encoded path parameter, a repeated query key and a header
    url = f"{echo.api_url}/things/t%2042?tag=a&tag=b&q=x%20y"
    headers = {"X-Custom": "first"}

    # when it is sent
    response = signed("GET", url, headers=headers)
    event = echoed(response)

    # then the function received API Gateway's REST proxy event (payload 1.0)
    assert event["resource"] == "/things/{thing}"
    assert event["path"] == "/things/t%2042"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"thing": "t%2042"}
    assert event["queryStringParameters"] == {"tag": "b", "q": "x y"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "q": ["x y"]}
    assert event["stageVariables"] == {"colour": "blue"}
    assert event["headers"]["X-Custom"] == "first"
    assert event["multiValueHeaders"]["X-Custom"] == ["first"]
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["resourcePath"] == "/things/{thing}"
    assert context["httpMethod"] == "GET"
    assert context["stage"] == "v1"
    assert context["path"] == "/v1/things/t%2042"
    assert context["requestId"] == response.headers["x-amzn-RequestId"]
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    # and the caller is the signer
    assert context["identity"]["accessKey"] == ACCESS_KEY
    assert context["identity"]["userArn"] == LOCAL_CALLER_ARN


def test_a_request_without_a_query_has_null_query_parameters(echo: RunningStack) -> None:
    # when a request has no query string
    event = echoed(signed("GET", f"{echo.api_url}/things/t-1"))

    # then both query maps are null, as API Gateway sends them
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_a_posted_body_arrives_as_the_string_sent(echo: RunningStack) -> None:
    # when a JSON body is posted
    body = json.dumps({"name": "widget", "size": 3}).encode()
    event = echoed(signed("POST", f"{echo.api_url}/things/t-1", body=body))

    # then the function gets it as a string, not base64
    assert (event["httpMethod"], event["body"], event["isBase64Encoded"]) == (
        "POST",
        body.decode(),
        False,
    )
    assert event["headers"]["Content-Type"] == "application/json"


def test_a_literal_resource_wins_over_a_parameter_and_a_greedy_one_takes_the_rest(
    echo: RunningStack,
) -> None:
    # when a path matches both /things/special and /things/{thing}, and one falls on a greedy
    special = echoed(signed("GET", f"{echo.api_url}/things/special"))
    files = echoed(signed("PUT", f"{echo.api_url}/files/a/b/c.txt"))

    # then the literal resource is chosen, and the greedy parameter holds the rest of the path
    assert (special["resource"], special["pathParameters"]) == ("/things/special", None)
    assert files["resource"] == "/files/{proxy+}"
    assert files["pathParameters"] == {"proxy": "a/b/c.txt"}
    assert files["httpMethod"] == "PUT"  # an ANY method takes each


def test_a_method_without_auth_takes_unsigned_requests_and_names_no_caller(
    echo: RunningStack,
) -> None:
    # when an unsigned request calls the method whose Auth is NONE
    event = echoed(httpx.get(f"{echo.api_url}/public"))

    # then it ran, and the identity has no caller
    identity = event["requestContext"]["identity"]
    assert (identity["accessKey"], identity["userArn"], identity["caller"]) == (None, None, None)
    assert identity["sourceIp"] == "127.0.0.1"


# --- the proxy response --------------------------------------------------------------------


def test_the_function_s_status_headers_and_multi_value_headers_are_what_the_client_gets(
    echo: RunningStack,
) -> None:
    # when the function answers with a header in both maps and no Content-Type
    response = signed("GET", f"{echo.api_url}/things/t-1")

    # then its headers come back, multiValueHeaders winning, Content-Type API Gateway's default
    assert response.status_code == 200
    assert response.headers["X-Echo"] == "single"
    assert response.headers.get_list("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers["Content-Type"] == "application/json"


def test_a_base64_encoded_body_is_sent_as_its_bytes(echo: RunningStack) -> None:
    # when the function answers with isBase64Encoded
    response = signed("GET", f"{echo.api_url}/binary")

    # then the client gets the decoded bytes
    assert response.status_code == 200
    assert response.content == b"\x00\x01binary"
    assert base64.b64encode(response.content)  # bytes, not the base64 text
    assert response.headers["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize("path", ["/boom", "/malformed"], ids=["raises", "not a proxy response"])
def test_a_function_error_is_a_502_internal_server_error(echo: RunningStack, path: str) -> None:
    # when the function raises, or answers with something that is not a proxy response
    response = signed("GET", f"{echo.api_url}{path}")

    # then API Gateway's 502
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}


def test_each_request_is_one_run_of_the_function_in_the_runner_s_record(
    echo: RunningStack,
) -> None:
    # given the runs so far
    before = len(echo.recorder.runs_of("EchoFunction"))

    # when one signed request is answered
    response = signed("GET", f"{echo.api_url}/things/counted")

    # then the function ran once, with the event it echoed
    runs = echo.recorder.runs_of("EchoFunction")[before:]
    assert [run.event["pathParameters"] for run in runs] == [{"thing": "counted"}]
    assert runs[0].result["statusCode"] == response.status_code == 200


# --- the schedules API ---------------------------------------------------------------------


def test_a_signed_create_is_201_and_the_schedule_reads_back_with_its_next_runs(
    schedules: RunningStack,
) -> None:
    # given a daily schedule for a tenant
    body = {
        "schedule": "cron(0 9 * * ? *)",
        "timezone": "America/New_York",
        "function": "ExampleTaskFunction",
        "externalId": "project-42",
        "payload": {"report": "daily"},
    }

    # when it is created through the local API and read back
    created = signed(
        "POST", f"{schedules.api_url}/tenants/acme/schedules", body=json.dumps(body).encode()
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    read = signed("GET", f"{schedules.api_url}/tenants/acme/schedules/{schedule['id']}?next=3")

    # then the schedule is there, with what was given and its next three runs
    assert read.status_code == 200, read.text
    got = read.json()
    assert got["id"] == schedule["id"]
    assert got["tenant"] == "acme"
    assert (got["schedule"], got["timezone"], got["function"]) == (
        "cron(0 9 * * ? *)",
        "America/New_York",
        "ExampleTaskFunction",
    )
    assert got["externalId"] == "project-42"
    assert len(got["nextRuns"]) == 3


def test_an_unknown_id_is_404_naming_the_id_from_the_path(schedules: RunningStack) -> None:
    # given a well-formed id no schedule has
    missing = "s-" + "0" * 24

    # when it is read
    response = signed("GET", f"{schedules.api_url}/tenants/acme/schedules/{missing}")

    # then the handler, routed by the event's path, names the id it got from pathParameters
    assert response.status_code == 404, response.text
    assert missing in response.json()["error"]["message"]


def test_a_trigger_through_the_api_runs_the_schedule_s_function_in_the_local_runtime(
    schedules: RunningStack,
) -> None:
    # given a schedule of the example task
    body = {"schedule": "rate(1 day)", "function": "ExampleTaskFunction"}
    created = signed(
        "POST", f"{schedules.api_url}/tenants/acme/schedules", body=json.dumps(body).encode()
    )
    assert created.status_code == 201, created.text
    executions = f"{schedules.api_url}/tenants/acme/schedules/{created.json()['id']}/executions"

    # when it is triggered through the API, which invokes the task function through Lambda
    triggered = signed(
        "POST",
        executions.removesuffix("/executions") + "/trigger",
        body=json.dumps({"payload": {"from": "the api"}}).encode(),
    )

    # then the invoke reached the local runtime, and the run succeeded with the payload
    assert triggered.status_code == 202, triggered.text
    assert triggered.json()["status"] == "started"
    deadline = time.monotonic() + 60
    while True:
        (execution,) = signed("GET", executions).json()["items"]
        if execution["status"] == "SUCCEEDED" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (execution["slot"], execution["trigger"]) == (triggered.json()["slot"], "manual")
    assert execution["status"] == "SUCCEEDED", execution
    assert execution["attempts"][0]["result"] == {"ok": True, "echo": {"from": "the api"}}


def test_the_schedules_api_refuses_an_unsigned_request_before_its_handler(
    schedules: RunningStack,
) -> None:
    # when the real API is called without a signature
    response = httpx.get(f"{schedules.api_url}/tenants/acme/schedules")

    # then it is API Gateway's refusal, not the handler's error shape
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}
