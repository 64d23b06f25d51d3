"""The registry Lambda, answering CloudFormation exactly as CloudFormation would read it.

A local HTTP server on 127.0.0.1 stands in for the pre-signed S3 ResponseURL; each test
asserts the body CloudFormation would receive. The events are the ones `sam local invoke` uses
(events/registry_*.json), adjusted per case.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from cronfleet.lifecycle.states import RunStatus
from tests.support.faults import FaultInjector, FaultKind, before_next

if TYPE_CHECKING:
    from cronfleet.store import Store

ROOT = Path(__file__).parents[2]
EVENTS = ROOT / "events"

# The handler talks to the stand-in ResponseURL and DynamoDB Local over loopback, nowhere else.
pytestmark = pytest.mark.integration

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/cronfleet/5b1c2d3e-4f50-11ef"
FUNCTION_ARN = (
    "arn:aws:lambda:us-east-1:123456789012:function:cronfleet-ExampleTaskFunction-Pq7Rs3Uv8YzC"
)
# Used only when events/registry_<kind>.json does not exist.
INLINE_EVENTS: dict[str, dict[str, Any]] = {
    kind: {
        "RequestType": kind.capitalize(),
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:cronfleet-Registry",
        "ResponseURL": f"https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/{kind}?X-Amz-Signature=0",
        "StackId": STACK_ID,
        "RequestId": f"00000000-0000-0000-0000-00000000000{index}",
        "LogicalResourceId": "ExampleTask",
        "ResourceType": "Custom::ScheduledTask",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:cronfleet-Registry",
            "Schedule": "cron(0 9 ? * MON-FRI *)",
            "Timezone": "Europe/London",
            "Function": FUNCTION_ARN,
        },
        **({"PhysicalResourceId": "ExampleTask"} if kind != "create" else {}),
    }
    for index, kind in enumerate(("create", "update", "delete"))
}


@pytest.fixture
def registry_app(
    capsys: pytest.CaptureFixture[str], sam_function: Callable[[str], ModuleType]
) -> ModuleType:
    """The registry function as `sam local invoke` would run it, on DynamoDB Local."""
    module = sam_function("RegistryFunction")
    # Powertools keeps the first handler made for a service name for the whole process, bound
    # to whatever sys.stdout was then (possibly an earlier test's capture, closed by now).
    handler = module.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    handler.stream = CurrentStdout()
    return module


class CurrentStdout:
    """Writes to whatever sys.stdout is at the time, so capsys sees the JSON log lines."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@dataclass
class ReceivedResponse:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    size: int


@dataclass
class ResponseUrl:
    """A stand-in for CloudFormation's pre-signed S3 URL that records what is PUT to it."""

    base: str
    received: list[ReceivedResponse] = field(default_factory=list)

    def event(self, kind: str, **changes: Any) -> dict[str, Any]:
        """events/registry_<kind>.json, pointed at this server, with top-level changes."""
        path = EVENTS / f"registry_{kind}.json"
        event = (
            json.loads(path.read_text()) if path.exists() else copy.deepcopy(INLINE_EVENTS[kind])
        )
        presigned = urlsplit(event["ResponseURL"])
        event["ResponseURL"] = f"{self.base}{presigned.path}?{presigned.query}"
        event.update(changes)
        return {key: value for key, value in event.items() if value is not None}

    def only_response(self) -> ReceivedResponse:
        assert len(self.received) == 1, self.received
        return self.received[0]


@pytest.fixture
def response_url() -> Iterator[ResponseUrl]:
    server_url = ResponseUrl(base="")

    class Recorder(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            server_url.received.append(
                ReceivedResponse(
                    method=self.command,
                    path=self.path,
                    headers=dict(self.headers.items()),
                    body=json.loads(raw),
                    size=len(raw),
                )
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server_url.base = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll interval keeps shutdown() quick at teardown.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server_url
    server.shutdown()
    server.server_close()
    thread.join()


def answer_to(event: dict[str, Any]) -> dict[str, Any]:
    """The envelope fields CloudFormation expects echoed back."""
    return {
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
    }


def test_a_valid_create_succeeds_with_the_task_id(
    registry_app: ModuleType, response_url: ResponseUrl, lambda_context: Any
) -> None:
    # Given
    event = response_url.event("create")
    task_id = event["ResourceProperties"].get("Name", event["LogicalResourceId"])

    # When
    registry_app.handler(event, lambda_context)

    # Then
    response = response_url.only_response()
    assert response.body == {
        "Status": "SUCCESS",
        "PhysicalResourceId": task_id,
        **answer_to(event),
        "Data": {"TaskId": task_id},
    }
    assert response.method == "PUT"
    assert response.path == event["ResponseURL"].removeprefix(response_url.base)
    # The pre-signed URL is signed without a content type.
    assert response.headers["Content-Type"] == ""


def test_an_invalid_create_fails_with_one_line_per_problem(
    registry_app: ModuleType, response_url: ResponseUrl, lambda_context: Any
) -> None:
    # Given
    event = response_url.event("create")
    event["ResourceProperties"].update(
        {
            "Overlap": "sometimes",
            "Enabled": "perhaps",
            "Retry": {"MaxAttempts": "11"},
            "Timezon": "UTC",
        }
    )

    # When
    registry_app.handler(event, lambda_context)

    # Then
    assert response_url.only_response().body == {
        "Status": "FAILED",
        "Reason": "\n".join(
            [
                "ExampleTask.Enabled: must be true or false, got 'perhaps'",
                "ExampleTask.Overlap: must be one of 'allow', 'skip' or 'queue_one', "
                "got 'sometimes'",
                "ExampleTask.Retry.MaxAttempts: must be between 1 and 10, got 11: total attempts, "
                "including the first",
                "ExampleTask.Timezon: unknown field; did you mean 'Timezone'?",
            ]
        ),
        # Not a task id (':' is not allowed in one), so the rollback's Delete removes nothing.
        "PhysicalResourceId": f"failed-create:{event['RequestId']}",
        **answer_to(event),
    }


def test_an_update_that_renames_the_task_answers_the_new_id(
    registry_app: ModuleType, response_url: ResponseUrl, lambda_context: Any
) -> None:
    # Given
    event = response_url.event("update")
    event["ResourceProperties"]["Name"] = "morning-greeting"

    # When
    registry_app.handler(event, lambda_context)

    # Then: CloudFormation sends a Delete for the old id after the update
    assert event["PhysicalResourceId"] != "morning-greeting"
    assert response_url.only_response().body == {
        "Status": "SUCCESS",
        "PhysicalResourceId": "morning-greeting",
        **answer_to(event),
        "Data": {"TaskId": "morning-greeting"},
    }


def test_an_update_that_keeps_the_name_keeps_the_id(
    registry_app: ModuleType, response_url: ResponseUrl, lambda_context: Any
) -> None:
    event = response_url.event("update")

    registry_app.handler(event, lambda_context)

    assert response_url.only_response().body["PhysicalResourceId"] == event["PhysicalResourceId"]


def test_an_invalid_update_fails_and_keeps_the_existing_id(
    registry_app: ModuleType, response_url: ResponseUrl, lambda_context: Any
) -> None:
    # Given
    event = response_url.event("update")
    event["ResourceProperties"]["Overlap"] = "sometimes"

    # When
    registry_app.handler(event, lambda_context)

    # Then
    assert response_url.only_response().body == {
        "Status": "FAILED",
        "Reason": "ExampleTask.Overlap: must be one of 'allow', 'skip' or 'queue_one', got "
        "'sometimes'",
        "PhysicalResourceId": event["PhysicalResourceId"],
        **answer_to(event),
    }


def test_a_delete_always_succeeds(
    registry_app: ModuleType, response_url: ResponseUrl, lambda_context: Any
) -> None:
    event = response_url.event("delete")

    registry_app.handler(event, lambda_context)

    assert response_url.only_response().body == {
        "Status": "SUCCESS",
        "PhysicalResourceId": event["PhysicalResourceId"],
        **answer_to(event),
    }


def test_a_delete_of_a_failed_create_succeeds(
    registry_app: ModuleType, response_url: ResponseUrl, lambda_context: Any
) -> None:
    event = response_url.event(
        "delete", PhysicalResourceId="failed-create:7a3f0c52", ResourceProperties={"Bogus": "x"}
    )

    registry_app.handler(event, lambda_context)

    assert response_url.only_response().body == {
        "Status": "SUCCESS",
        "PhysicalResourceId": "failed-create:7a3f0c52",
        **answer_to(event),
    }


def test_an_event_without_a_response_url_raises_and_answers_nobody(
    registry_app: ModuleType,
    response_url: ResponseUrl,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given
    event = response_url.event("create")
    del event["ResponseURL"]
    capsys.readouterr()  # what the module logged at import (sam local leaves !GetAtt empty)

    # When / Then: the invocation fails, and the log says why
    with pytest.raises(registry_app.MalformedCustomResourceEvent, match="ResponseURL"):
        registry_app.handler(event, lambda_context)
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert [(line["level"], line["message"]) for line in logged] == [
        ("ERROR", "Cannot answer CloudFormation: the event has no usable ResponseURL")
    ]
    assert response_url.received == []


def test_a_create_without_properties_fails(
    registry_app: ModuleType, response_url: ResponseUrl, lambda_context: Any
) -> None:
    event = response_url.event("create")
    del event["ResourceProperties"]

    registry_app.handler(event, lambda_context)

    assert response_url.only_response().body == {
        "Status": "FAILED",
        "Reason": "Malformed request:\nResourceProperties: required for Create",
        "PhysicalResourceId": f"failed-create:{event['RequestId']}",
        **answer_to(event),
    }


def test_an_unknown_request_type_fails(
    registry_app: ModuleType, response_url: ResponseUrl, lambda_context: Any
) -> None:
    event = response_url.event("update", RequestType="Upsert")

    registry_app.handler(event, lambda_context)

    response = response_url.only_response().body
    assert response["Status"] == "FAILED"
    assert response["Reason"].startswith("Malformed request:\nRequestType: Input should be")
    assert response["PhysicalResourceId"] == event["PhysicalResourceId"]


def test_an_unexpected_error_still_answers_failed(
    registry_app: ModuleType,
    response_url: ResponseUrl,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given storage failing in a way nobody planned for
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(registry_app.store, "register", broken)
    event = response_url.event("create")

    # When
    registry_app.handler(event, lambda_context)

    # Then: the failed Create names the task, so the rollback's Delete takes out whatever of
    # it was written (a Delete only removes a task its own resource owns)
    assert response_url.only_response().body == {
        "Status": "FAILED",
        "Reason": "Internal error in the registry (RuntimeError); see CloudWatch log stream "
        f"{lambda_context.log_stream_name}",
        "PhysicalResourceId": "ExampleTask",
        **answer_to(event),
    }


def test_a_long_list_of_problems_is_cut_to_fit_the_4_kb_response(
    registry_app: ModuleType, response_url: ResponseUrl, lambda_context: Any
) -> None:
    # Given 200 misspelt properties: far more problem text than 4 KB
    event = response_url.event("create")
    event["ResourceProperties"].update({f"UnknownProperty{n:03}": "x" for n in range(200)})

    # When
    registry_app.handler(event, lambda_context)

    # Then
    response = response_url.only_response()
    reason_lines = response.body["Reason"].split("\n")
    assert response.size <= 4096
    assert response.body["Status"] == "FAILED"
    assert reason_lines[0].startswith("ExampleTask.UnknownProperty000: unknown field")
    shown = len(reason_lines) - 1
    assert reason_lines[-1] == (
        f"... and {200 - shown} more; see the registry function's CloudWatch logs"
    )


def test_a_fixed_offset_zone_deploys_with_a_warning_naming_the_zone_meant(
    registry_app: ModuleType,
    store: Store,
    response_url: ResponseUrl,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the sample task declared on EST, which never moves for daylight saving time
    event = response_url.event("create")
    event["ResourceProperties"] = {**event["ResourceProperties"], "Timezone": "EST"}
    capsys.readouterr()

    # When CloudFormation creates it
    registry_app.handler(event, lambda_context)

    # Then the deploy succeeds, the task is registered on EST, and the log warns with the fix
    assert response_url.only_response().body["Status"] == "SUCCESS"
    task = store.get_task("ExampleTask")
    assert task is not None
    assert task.definition.timezone == "EST"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    [warning] = [line for line in logged if line["level"] == "WARNING"]
    assert warning["warning"].startswith("ExampleTask.Timezone: timezone 'EST' is a fixed")
    assert "use 'America/New_York'" in warning["warning"]


# --- registration keeps runtime state ------------------------------------------------------------


def test_create_registers_the_task_for_scheduling(
    registry_app: ModuleType, store: Store, response_url: ResponseUrl, lambda_context: Any
) -> None:
    event = response_url.event("create")
    registry_app.handler(event, lambda_context)

    task = store.get_task("ExampleTask")
    assert task is not None
    assert task.definition.schedule == "cron(0 9 ? * MON-FRI *)"
    assert task.definition.timezone == "Europe/London"
    assert task.due_at is not None  # in the due index
    assert task.next_run is not None
    assert task.next_run.astimezone(ZoneInfo("Europe/London")).hour == 9


def test_update_keeps_paused_and_counters_and_changes_the_definition(
    registry_app: ModuleType, store: Store, response_url: ResponseUrl, lambda_context: Any
) -> None:
    # Given a registered task that an operator paused and that has run before
    registry_app.handler(response_url.event("create"), lambda_context)
    store.pause("ExampleTask", datetime.now(UTC))
    store.client.update_item(
        TableName=store.tasks_table,
        Key={"task_id": {"S": "ExampleTask"}},
        UpdateExpression="ADD stats_runs :five, stats_succeeded :five",
        ExpressionAttributeValues={":five": {"N": "5"}},
    )

    # When a deploy changes its schedule
    update = response_url.event("update")
    update["ResourceProperties"]["Schedule"] = "0 7 * * *"
    registry_app.handler(update, lambda_context)

    # Then the definition changed, and the task is still paused with its counters
    assert response_url.received[-1].body["Status"] == "SUCCESS"
    task = store.get_task("ExampleTask")
    assert task is not None
    assert task.definition.schedule == "0 7 * * *"
    assert task.paused
    assert task.due_at is None  # still out of the due index
    assert (task.stats.runs, task.stats.succeeded) == (5, 5)


def test_delete_takes_the_task_out_of_scheduling_and_keeps_its_history(
    registry_app: ModuleType, store: Store, response_url: ResponseUrl, lambda_context: Any
) -> None:
    registry_app.handler(response_url.event("create"), lambda_context)
    task = store.get_task("ExampleTask")
    assert task is not None
    store.create_manual_execution(task, "2026-11-02T08:00:00Z#manual-test", datetime.now(UTC))

    registry_app.handler(response_url.event("delete"), lambda_context)

    deleted = store.get_task("ExampleTask")
    assert deleted is not None
    assert deleted.deleted
    assert deleted.due_at is None
    assert store.due_tasks(datetime.now(UTC) + timedelta(days=30)) == []
    assert [e.slot for e in store.executions("ExampleTask")] == ["2026-11-02T08:00:00Z#manual-test"]


def test_an_invalid_update_changes_nothing_stored(
    registry_app: ModuleType, store: Store, response_url: ResponseUrl, lambda_context: Any
) -> None:
    registry_app.handler(response_url.event("create"), lambda_context)
    before = store.get_task("ExampleTask")

    update = response_url.event("update")
    update["ResourceProperties"]["Schedule"] = "0 25 * * *"
    registry_app.handler(update, lambda_context)

    assert response_url.received[-1].body["Status"] == "FAILED"
    assert "ExampleTask.Schedule: hour field '25'" in response_url.received[-1].body["Reason"]
    assert store.get_task("ExampleTask") == before


# --- as AWS runs it: IAM, CloudFormation's order of operations, ownership, secrets -------------


def send(registry_app: ModuleType, lambda_context: Any, event: dict[str, Any]) -> dict[str, Any]:
    """One request to the registry, as CloudFormation sends it; the answer it PUT back."""
    return dict(registry_app.handler(event, lambda_context))


def test_re_enabling_a_disabled_task_records_the_skipped_slots_within_the_registrys_role(
    registry_app: ModuleType, store: Store, response_url: ResponseUrl, lambda_context: Any
) -> None:
    # Given a task deployed disabled (the registry runs under its own role's IAM here)
    create = response_url.event("create")
    create["ResourceProperties"] = {**create["ResourceProperties"], "Enabled": "false"}
    assert send(registry_app, lambda_context, create)["Status"] == "SUCCESS"
    task = store.get_task("ExampleTask")
    assert task is not None
    assert task.next_run is not None
    disabled_from = task.next_run
    store.client.update_item(  # a week passes: its next slot is far behind now
        TableName=store.tasks_table,
        Key={"task_id": {"S": "ExampleTask"}},
        UpdateExpression="SET next_run = :past",
        ExpressionAttributeValues={":past": {"S": "2026-11-02T09:00:00Z"}},
    )

    # When it is deployed again, enabled
    update = response_url.event("update", OldResourceProperties=create["ResourceProperties"])
    answer = send(registry_app, lambda_context, update)

    # Then the deploy succeeds and the slots in between are one SKIPPED (disabled) entry
    assert answer["Status"] == "SUCCESS", answer
    (skipped,) = store.executions("ExampleTask")
    assert (skipped.status, skipped.skip_reason, skipped.slot) == (
        RunStatus.SKIPPED,
        "disabled",
        "2026-11-02T09:00:00Z",
    )
    assert disabled_from is not None


def test_renaming_a_resource_that_keeps_its_name_is_refused_and_the_task_stays_scheduled(
    registry_app: ModuleType, store: Store, response_url: ResponseUrl, lambda_context: Any
) -> None:
    # Given a task with an explicit Name, declared by resource ExampleTask
    properties = {**response_url.event("create")["ResourceProperties"], "Name": "nightly"}
    first = response_url.event("create", ResourceProperties=properties)
    assert send(registry_app, lambda_context, first)["Status"] == "SUCCESS"

    # When the resource is renamed in the template: CloudFormation creates the new resource
    # first, and rolls back when that fails, deleting what the failed Create answered
    renamed = response_url.event(
        "create", LogicalResourceId="NightlyTask", RequestId=str(uuid.uuid4())
    )
    renamed["ResourceProperties"] = properties
    refused = send(registry_app, lambda_context, renamed)
    rollback = response_url.event(
        "delete",
        LogicalResourceId="NightlyTask",
        PhysicalResourceId=refused["PhysicalResourceId"],
        RequestId=str(uuid.uuid4()),
    )
    rolled_back = send(registry_app, lambda_context, rollback)

    # Then the Create is refused with who owns the name and what to do, and the task is
    # still scheduled by its owner
    assert refused["Status"] == "FAILED"
    assert refused["Reason"].startswith("NightlyTask.Name: Name 'nightly' is already declared")
    assert "resource ExampleTask of stack cronfleet" in refused["Reason"]
    assert rolled_back["Status"] == "SUCCESS"
    task = store.get_task("nightly")
    assert task is not None
    assert not task.deleted
    assert task.due_at is not None


def test_two_stacks_declaring_one_name_cannot_take_it_from_each_other(
    registry_app: ModuleType, store: Store, response_url: ResponseUrl, lambda_context: Any
) -> None:
    # Given a task of one stack
    assert send(registry_app, lambda_context, response_url.event("create"))["Status"] == "SUCCESS"
    other_stack = "arn:aws:cloudformation:us-east-1:123456789012:stack/cronfleet-staging/77aa"

    # When a second stack declares the same name, then deletes its resource
    created = send(registry_app, lambda_context, response_url.event("create", StackId=other_stack))
    deleted = send(
        registry_app,
        lambda_context,
        response_url.event("delete", StackId=other_stack, PhysicalResourceId="ExampleTask"),
    )

    # Then neither took the task over: it is the first stack's, and still scheduled
    assert created["Status"] == "FAILED"
    assert "stack cronfleet" in created["Reason"]
    assert deleted["Status"] == "SUCCESS"
    task = store.get_task("ExampleTask")
    assert task is not None
    assert not task.deleted
    assert task.owner is not None
    assert task.owner.startswith(f"stack:{response_url.event('create')['StackId']}#")


def test_a_create_that_failed_after_writing_is_rolled_back_completely(
    registry_app: ModuleType, store: Store, response_url: ResponseUrl, lambda_context: Any
) -> None:
    # Given a registration whose write commits, after which the registry cannot read the task
    # back (DynamoDB throttles that read for longer than botocore retries it)
    faults = FaultInjector(seed=5, rate=0).attach(registry_app.store.client)
    before_next(
        registry_app.store.client,
        "TransactWriteItems",
        lambda: faults.force(FaultKind.THROTTLE, on="GetItem", times=20),
    )

    # When CloudFormation creates it, hears FAILED, and rolls back with a Delete of the
    # physical id the failure answered
    answer = send(registry_app, lambda_context, response_url.event("create"))
    faults.forced.clear()
    rollback = response_url.event(
        "delete", PhysicalResourceId=answer["PhysicalResourceId"], RequestId=str(uuid.uuid4())
    )
    send(registry_app, lambda_context, rollback)

    # Then nothing of it is left scheduled
    assert answer["Status"] == "FAILED"
    assert answer["PhysicalResourceId"] == "ExampleTask"
    task = store.get_task("ExampleTask")
    assert task is not None
    assert task.deleted
    assert store.due_tasks(datetime.now(UTC) + timedelta(days=30)) == []


@pytest.mark.parametrize(
    ("secret_arn", "why"),
    [
        (
            "arn:aws:secretsmanager:us-east-1:999999999999:secret:cronfleet/token-AbCdEf",
            "(account 999999999999, not 123456789012)",
        ),
        (
            "arn:aws:ssm:eu-west-1:123456789012:parameter/cronfleet/token",
            "(region eu-west-1, not us-east-1)",
        ),
        (
            "arn:aws:ssm:us-east-1:123456789012:parameter/billing/token",
            "(parameter/billing/token is not under parameter/cronfleet/)",
        ),
    ],
)
def test_a_secret_the_http_function_may_not_read_fails_the_deploy(
    registry_app: ModuleType,
    store: Store,
    response_url: ResponseUrl,
    lambda_context: Any,
    secret_arn: str,
    why: str,
) -> None:
    # Given an Http task whose Bearer secret lies outside what the HTTP function may read
    event = response_url.event("create")
    properties = {
        key: value for key, value in event["ResourceProperties"].items() if key != "Function"
    }
    properties["Http"] = {"Url": "https://api.example.com/cron", "SecretArn": secret_arn}
    event["ResourceProperties"] = properties

    # When it is deployed
    answer = send(registry_app, lambda_context, event)

    # Then the deploy fails on that field, saying why, and nothing is stored
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith(
        f"ExampleTask.Http.SecretArn: the HTTP function cannot read {secret_arn} {why}"
    )
    assert store.get_task("ExampleTask") is None


def test_a_secret_under_cronfleet_in_the_stacks_account_and_region_deploys(
    registry_app: ModuleType, response_url: ResponseUrl, lambda_context: Any
) -> None:
    event = response_url.event("create")
    properties = {
        key: value for key, value in event["ResourceProperties"].items() if key != "Function"
    }
    properties["Http"] = {
        "Url": "https://api.example.com/cron",
        "SecretArn": "arn:aws:ssm:us-east-1:123456789012:parameter/cronfleet/token",
    }
    event["ResourceProperties"] = properties

    assert send(registry_app, lambda_context, event)["Status"] == "SUCCESS"
