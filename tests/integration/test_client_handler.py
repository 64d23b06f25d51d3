"""The client and ``cronfleet schedules`` against the schedules API's own resolver, on DynamoDB
Local: each request the client sends is checked for its SigV4 signature, turned into the REST
proxy event API Gateway would send, and answered by ``cronfleet.schedules.api``, the routes the
function runs. Lambda's Invoke (a manual run) is the one stand-in.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from botocore.credentials import ReadOnlyCredentials
from typer.testing import CliRunner

from cronfleet.client import ApiError, CronfleetClient
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.schedules.api import build_api
from cronfleet.schedules.service import ScheduleService
from cronfleet.store import Store
from cronfleet_tools.cli import schedules_api
from cronfleet_tools.cli.app import app
from tests.integration.conftest import QueuedLambda
from tests.support import sigv4

pytestmark = pytest.mark.integration

API_URL = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1"
KEYS = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FUNCTIONS = {"ExampleTaskFunction": "cronfleet-prod-ExampleTaskFunction-1"}


def api_gateway(store: Store, lambda_queue: QueuedLambda) -> httpx.MockTransport:
    """API Gateway in front of the resolver: the signature checked, the proxy event made."""
    service = ScheduleService(
        store,
        attempts=lambda: Attempts(store, lambda_queue),
        functions=FUNCTIONS,
        quota=1000,
        now=lambda: NOW,
    )
    resolver = build_api(lambda: service)

    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        sigv4.verify_signature(request, KEYS, "eu-west-1")
        stage, _, path = request.url.path.lstrip("/").partition("/")
        assert stage == "v1"
        pairs = parse_qsl(request.url.query.decode(), keep_blank_values=True)
        multi: dict[str, list[str]] = {}
        for name, value in pairs:
            multi.setdefault(name, []).append(value)
        event = {
            "resource": f"/{path}",
            "path": f"/{path}",
            "httpMethod": request.method,
            "headers": dict(request.headers),
            "multiValueHeaders": {name: [value] for name, value in request.headers.items()},
            "queryStringParameters": dict(pairs) or None,
            "multiValueQueryStringParameters": multi or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "stage": stage,
                "resourcePath": f"/{path}",
                "httpMethod": request.method,
                "path": request.url.path,
                "identity": {"sourceIp": "198.51.100.7"},
            },
            "body": request.content.decode() or None,
            "isBase64Encoded": False,
        }
        answer = resolver.resolve(event, None)
        headers = dict(answer.get("headers") or {})
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            headers[name] = ",".join(values)
        return httpx.Response(
            answer["statusCode"], headers=headers, content=(answer.get("body") or "").encode()
        )

    return httpx.MockTransport(handle)


@pytest.fixture
def gateway(store: Store, lambda_queue: QueuedLambda) -> httpx.MockTransport:
    return api_gateway(store, lambda_queue)


@pytest.fixture
def client(gateway: httpx.MockTransport) -> CronfleetClient:
    return CronfleetClient(
        API_URL, credentials=KEYS, http=httpx.Client(transport=gateway), sleep=lambda _: None
    )


@pytest.fixture
def tenant() -> str:
    return f"acme-{uuid.uuid4().hex[:8]}"


def test_the_client_drives_every_route_of_the_real_handler(
    client: CronfleetClient, tenant: str, lambda_queue: QueuedLambda
) -> None:
    # given a project's daily schedule, created twice with one deduplication key
    fields: dict[str, Any] = {
        "schedule": "0 9 * * *",
        "timezone": "America/New_York",
        "function": "ExampleTaskFunction",
        "payload": {"report": "daily"},
        "external_id": "project-42",
        "deduplication_key": "project-42-daily",
        "retry": {"max_attempts": 2},
    }
    daily = client.create_schedule(tenant, **fields)
    again = client.create_schedule(tenant, **fields)
    others = [
        client.create_schedule(tenant, schedule="rate(1 hour)", function="ExampleTaskFunction")
        for _ in range(4)
    ]

    # then the second create found the first, and the fields came back as sent
    assert (daily.created, again.created, again.id) == (True, False, daily.id)
    assert (daily.external_id, daily.timezone, daily.payload) == (
        "project-42",
        "America/New_York",
        {"report": "daily"},
    )
    assert daily.retry is not None
    assert daily.retry.max_attempts == 2
    # and every schedule is listed, two a page, and the project's by its external id
    listed = list(client.iter_schedules(tenant, page_size=2))
    assert sorted(item.id for item in listed) == sorted([daily.id, *(s.id for s in others)])
    assert [item.id for item in client.iter_schedules(tenant, external_id="project-42")] == [
        daily.id
    ]
    # and read alone, it has its next runs, at 09:00 New York time (14:00 UTC in December)
    read = client.get_schedule(tenant, daily.id, next=2)
    assert read.next_runs == [
        datetime(2026, 12, 1, 14, tzinfo=UTC),
        datetime(2026, 12, 2, 14, tzinfo=UTC),
    ]
    assert read.described_as is not None
    assert "09:00" in read.described_as

    # when it is changed, paused, resumed and run now
    changed = client.update_schedule(tenant, daily.id, enabled=False, payload={"report": "x"})
    paused = client.pause_schedule(tenant, daily.id)
    resumed = client.resume_schedule(tenant, daily.id)
    run = client.trigger_schedule(tenant, daily.id, payload={"report": "now"})

    # then each answer says so, and the run reached the allow-listed function
    assert (changed.enabled, changed.payload, changed.schedule) == (
        False,
        {"report": "x"},
        "0 9 * * *",
    )
    assert (paused.paused, resumed.paused) == (True, False)
    assert run.status == "started"
    ((function, event),) = lambda_queue.take()
    assert function == FUNCTIONS["ExampleTaskFunction"]
    assert event["cronfleet"]["payload"] == {"report": "now"}
    assert [item.slot for item in client.iter_executions(tenant, daily.id)] == [run.slot]
    stats = client.get_stats(tenant, daily.id)
    assert (stats.runs, stats.consecutive_failures) == (0, 0)
    assert "/tenants/{tenant}/schedules" in client.openapi()["paths"]

    # when it is deleted, then it is gone
    client.delete_schedule(tenant, daily.id)
    with pytest.raises(ApiError) as raised:
        client.get_schedule(tenant, daily.id)
    assert (raised.value.status, raised.value.code) == (404, "not_found")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"schedule": "cron(0 25 * * ? *)", "function": "ExampleTaskFunction"}, "schedule"),
        ({"schedule": "rate(1 hour)", "function": "NotAllowListed"}, "function"),
    ],
    ids=["bad-hour", "unknown-function"],
)
def test_a_schedule_the_handler_refuses_is_an_api_error_naming_the_field(
    client: CronfleetClient, tenant: str, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(ApiError) as raised:
        client.create_schedule(tenant, **fields)

    assert (raised.value.status, raised.value.field) == (422, field)
    assert raised.value.message


def test_the_cli_creates_lists_updates_and_deletes_through_the_real_handler(
    gateway: httpx.MockTransport, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the CLI pointed at the API, with keys in the environment
    monkeypatch.setattr(schedules_api, "transport", gateway)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEYS.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS.secret_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    runner = CliRunner()

    def cli(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["schedules", *args, "--api-url", API_URL, "--tenant", tenant])
        return result.exit_code, result.output

    # when a schedule is created, listed, disabled and deleted
    code, created = cli(
        "create", "--schedule", "cron(0 9 * * ? *)", "--tz", "Europe/London",
        "--function", "ExampleTaskFunction", "--external-id", "project-42",
    )  # fmt: skip
    assert code == 0, created
    match = re.search(r"Created schedule (s-[0-9a-f]+) ", created)
    assert match, created
    schedule_id = match[1]
    listed = cli("list")
    updated = cli("update", schedule_id, "--disabled")
    refused = cli("update", schedule_id, "--schedule", "cron(0 25 * * ? *)")
    deleted = cli("delete", schedule_id)
    gone = cli("delete", schedule_id)

    # then each said what happened, and the API's refusals read as its field and message
    assert listed[0] == 0
    assert schedule_id in listed[1].split()
    assert "Europe/London" in listed[1]
    assert updated[0] == 0
    assert "disabled" in updated[1].split()
    assert refused[0] == 1
    assert refused[1].startswith("Error: schedule: ")
    assert deleted == (0, f"Deleted schedule {schedule_id} of tenant {tenant}.\n")
    assert gone[0] == 1
    assert gone[1].startswith("Error: no schedule")
