"""The schedules API on DynamoDB Local: each route driven with the REST proxy event API Gateway
sends, through the same resolver the function runs (``cronfleet.schedules.api``).

Lambda's Invoke is the one stand-in (a recording queue, the adapter edge); the tables, the
versioned writes, the index and the quota counter are DynamoDB Local's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from cronfleet.lifecycle.attempts import Attempts
from cronfleet.registry.definition import parse_task_definition
from cronfleet.schedules.api import build_api
from cronfleet.schedules.service import ScheduleService
from cronfleet.store import Store
from tests.integration.conftest import QueuedLambda

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FUNCTIONS = {"ExampleTaskFunction": "cronfleet-prod-ExampleTaskFunction-1"}
Call = Callable[..., tuple[int, Any]]


def proxy_event(
    method: str, path: str, body: Any = None, query: dict[str, str] | None = None
) -> dict[str, Any]:
    """A REST API proxy event (v1), as API Gateway sends it to a Lambda proxy integration."""
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": "v1",
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/v1{path}",
            "identity": {"sourceIp": "198.51.100.7"},
        },
        "body": text,
        "isBase64Encoded": False,
    }


@pytest.fixture
def api(store: Store, lambda_queue: QueuedLambda) -> Callable[[int], Call]:
    """A caller of the API with a tenant quota of ``quota``."""

    def with_quota(quota: int = 1000) -> Call:
        service = ScheduleService(
            store,
            attempts=lambda: Attempts(store, lambda_queue),
            functions=FUNCTIONS,
            quota=quota,
            now=lambda: NOW,
        )
        app = build_api(lambda: service)

        def call(method: str, path: str, body: Any = None, **query: str) -> tuple[int, Any]:
            response = app.resolve(proxy_event(method, path, body, query or None), None)
            text = response.get("body")
            return response["statusCode"], json.loads(text) if text else None

        return call

    return with_quota


@pytest.fixture
def tenant() -> str:
    return f"acme-{uuid.uuid4().hex[:8]}"


DAILY_NY = {
    "schedule": "0 9 * * *",
    "timezone": "America/New_York",
    "function": "ExampleTaskFunction",
    "payload": {"report": "daily"},
    "externalId": "project-42",
    "deduplicationKey": "project-42-daily",
}


def test_the_seeds_three_schedules_for_one_project_are_created_listed_and_described(
    api: Callable[[int], Call], tenant: str
) -> None:
    call = api(1000)
    base = f"/tenants/{tenant}/schedules"
    weekly = {
        "schedule": "cron(0 9 ? * MON *)",
        "function": "ExampleTaskFunction",
        "externalId": "project-42",
    }
    monthly = {
        "schedule": "30 10 1 * *",
        "timezone": "UTC",
        "function": "ExampleTaskFunction",
        "externalId": "project-42",
        "enabled": False,
    }

    # when the project's daily, weekly and monthly schedules are created
    created = [call("POST", base, body) for body in (DAILY_NY, weekly, monthly)]

    # then each is a new schedule of the tenant
    assert [status for status, _ in created] == [201, 201, 201]
    daily = created[0][1]
    assert daily["tenant"] == tenant
    assert daily["created"] is True
    assert daily["schedule"] == "0 9 * * *"
    assert daily["timezone"] == "America/New_York"
    assert daily["function"] == "ExampleTaskFunction"
    assert daily["payload"] == {"report": "daily"}
    # and the project's list has all three, enabled ones filtered
    status, page = call("GET", base, externalId="project-42")
    assert status == 200
    assert sorted(item["id"] for item in page["items"]) == sorted(b["id"] for _, b in created)
    status, page = call("GET", base, externalId="project-42", enabled="true")
    assert len(page["items"]) == 2
    # and the daily one's next runs are 09:00 New York time, by an independent engine
    status, described = call("GET", f"{base}/{daily['id']}", next="3")
    assert status == 200
    expected = CronSim("0 9 * * *", NOW.astimezone(ZoneInfo("America/New_York")))
    assert described["nextRuns"] == [
        next(expected).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for _ in range(3)
    ]
    assert "09:00" in described["describedAs"]


def test_the_same_deduplication_key_updates_the_one_schedule_never_a_second(
    api: Callable[[int], Call], tenant: str
) -> None:
    call = api(1000)
    base = f"/tenants/{tenant}/schedules"
    status, first = call("POST", base, DAILY_NY)
    assert status == 201

    # when the same key is sent again, with another time (a retry, or a change)
    status, again = call("POST", base, {**DAILY_NY, "schedule": "0 10 * * *"})

    # then it is the same schedule, updated, not a second one
    assert status == 200
    assert (again["id"], again["created"], again["schedule"]) == (first["id"], False, "0 10 * * *")
    status, page = call("GET", base)
    assert [item["id"] for item in page["items"]] == [first["id"]]


def test_a_list_is_paged_with_an_opaque_cursor_until_it_ends(
    api: Callable[[int], Call], tenant: str
) -> None:
    call = api(1000)
    base = f"/tenants/{tenant}/schedules"
    ids = {
        call("POST", base, {"schedule": "rate(1 hour)", "function": "ExampleTaskFunction"})[1]["id"]
        for _ in range(5)
    }

    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        status, page = call("GET", base, **query)
        assert status == 200
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break

    assert sorted(seen) == sorted(ids)
    assert pages == 3


def test_update_pause_resume_trigger_and_delete_a_schedule(
    api: Callable[[int], Call], tenant: str, lambda_queue: QueuedLambda, store: Store
) -> None:
    call = api(1000)
    base = f"/tenants/{tenant}/schedules"
    _, schedule = call("POST", base, DAILY_NY)
    one = f"{base}/{schedule['id']}"

    # update: the fields sent change, the others stay
    status, updated = call("PATCH", one, {"schedule": "0 7 * * *", "payload": {"report": "early"}})
    assert status == 200
    assert (updated["schedule"], updated["timezone"], updated["payload"]) == (
        "0 7 * * *",
        "America/New_York",
        {"report": "early"},
    )
    # pause and resume (a second pause is a conflict)
    assert call("POST", f"{one}/pause")[1]["paused"] is True
    assert call("POST", f"{one}/pause")[0] == 409
    assert call("POST", f"{one}/resume")[1]["paused"] is False
    # trigger: a manual run of the allow-listed function, with the payload given
    status, run = call("POST", f"{one}/trigger", {"payload": {"report": "now"}})
    assert status == 202
    assert run["status"] == "started"
    ((function, event),) = lambda_queue.take()
    assert function == FUNCTIONS["ExampleTaskFunction"]
    assert event["cronfleet"]["payload"] == {"report": "now"}
    execution = store.get_execution(schedule["id"], run["slot"])
    assert execution is not None
    assert execution.trigger.value == "manual"
    # executions list the run
    status, runs = call("GET", f"{one}/executions")
    assert status == 200
    assert [item["slot"] for item in runs["items"]] == [run["slot"]]
    # stats are the task's counters
    status, stats = call("GET", f"{one}/stats")
    assert status == 200
    assert stats["runs"] == 0
    assert stats["consecutiveFailures"] == 0
    # delete: gone from reads and from the list, history kept
    assert call("DELETE", one)[0] == 204
    assert call("GET", one)[0] == 404
    assert call("DELETE", one)[0] == 404
    assert call("GET", base)[1]["items"] == []
    assert store.get_execution(schedule["id"], run["slot"]) is not None


def test_another_tenants_schedule_is_not_found_and_a_template_task_is_a_conflict(
    api: Callable[[int], Call], tenant: str, store: Store
) -> None:
    call = api(1000)
    _, schedule = call("POST", f"/tenants/{tenant}/schedules", DAILY_NY)

    # another tenant cannot see, change or delete it
    other = f"/tenants/other-{tenant}/schedules/{schedule['id']}"
    assert call("GET", other)[0] == 404
    assert call("PATCH", other, {"schedule": "0 1 * * *"})[0] == 404
    assert call("DELETE", other)[0] == 404

    # and a task a deploy declared under an id the API would make is not the API's to change
    key = f"deploy-owned-{uuid.uuid4().hex[:6]}"
    probe_status, probe = call(
        "POST", f"/tenants/probe-{tenant}/schedules", {**DAILY_NY, "deduplicationKey": key}
    )
    assert probe_status == 201
    definition = parse_task_definition(
        "Declared", {"Name": probe["id"], "Schedule": "rate(1 day)", "Function": "fn"}
    )
    store.deregister(probe["id"], NOW, owner=f"api#probe-{tenant}")
    store.register(
        definition,
        definition.compiled_schedule().next_run,
        NOW,
        owner="stack#arn:aws:cloudformation:us-east-1:1:stack/s/1#Declared",
    )
    status, body = call(
        "POST", f"/tenants/probe-{tenant}/schedules", {**DAILY_NY, "deduplicationKey": key}
    )
    assert status == 409
    assert body["error"]["code"] == "conflict"


def test_a_tenants_quota_is_held_by_create_and_freed_by_delete(
    api: Callable[[int], Call], tenant: str
) -> None:
    call = api(2)
    base = f"/tenants/{tenant}/schedules"
    first = call("POST", base, {"schedule": "rate(1 hour)", "function": "ExampleTaskFunction"})
    call("POST", base, {"schedule": "rate(2 hours)", "function": "ExampleTaskFunction"})

    # when a third is created
    status, body = call(
        "POST", base, {"schedule": "rate(3 hours)", "function": "ExampleTaskFunction"}
    )

    # then the quota refuses it, and nothing was written
    assert (status, body["error"]["code"]) == (409, "quota_exceeded")
    assert len(call("GET", base)[1]["items"]) == 2
    # and once one is deleted there is room again
    assert call("DELETE", f"{base}/{first[1]['id']}")[0] == 204
    assert (
        call("POST", base, {"schedule": "rate(3 hours)", "function": "ExampleTaskFunction"})[0]
        == 201
    )


BAD_INPUT = [
    (
        "unknown field",
        {"schedule": "rate(1 hour)", "function": "ExampleTaskFunction", "colour": "red"},
        422,
        "colour",
    ),
    (
        "wrong type",
        {"schedule": "rate(1 hour)", "function": "ExampleTaskFunction", "enabled": "maybe"},
        422,
        "enabled",
    ),
    (
        "bad schedule",
        {"schedule": "0 25 * * *", "function": "ExampleTaskFunction"},
        422,
        "schedule",
    ),
    (
        "bad timezone",
        {"schedule": "0 9 * * *", "timezone": "Mars/Olympus", "function": "ExampleTaskFunction"},
        422,
        "timezone",
    ),
    (
        "oversized payload",
        {
            "schedule": "rate(1 hour)",
            "function": "ExampleTaskFunction",
            "payload": {"blob": "x" * 300_000},
        },
        422,
        "payload",
    ),
    (
        "hostile URL",
        {"schedule": "rate(1 hour)", "http": {"url": "https://169.254.169.254/latest"}},
        422,
        "http.url",
    ),
    (
        "unknown function",
        {"schedule": "rate(1 hour)", "function": "RegistryFunction"},
        422,
        "function",
    ),
    (
        "odd externalId",
        {"schedule": "rate(1 hour)", "function": "ExampleTaskFunction", "externalId": "a#b"},
        422,
        "externalId",
    ),
    ("no target", {"schedule": "rate(1 hour)"}, 422, None),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "field"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT]
)
def test_a_bad_body_is_refused_naming_the_field_and_writes_nothing(
    api: Callable[[int], Call],
    tenant: str,
    case: str,
    body: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    call = api(1000)
    base = f"/tenants/{tenant}/schedules"

    answered, error = call("POST", base, body)

    assert answered == status, error
    if field is not None:
        assert error["error"]["field"] == field, error
    assert error["error"]["message"]
    assert call("GET", base)[1]["items"] == []


@pytest.mark.parametrize(
    ("method", "path", "body", "query", "status", "field"),
    [
        ("POST", "/tenants/{t}/schedules", "{not json", {}, 400, None),
        ("GET", "/tenants/{t}/schedules", None, {"cursor": "bm90LWEtY3Vyc29y"}, 400, "cursor"),
        ("GET", "/tenants/{t}/schedules", None, {"limit": "1000"}, 422, "limit"),
        ("GET", "/tenants/{t}/schedules/not-an-id", None, {}, 422, "id"),
        ("GET", "/tenants/bad%23tenant/schedules", None, {}, 422, "tenant"),
        ("GET", "/tenants/{t}/schedules/s-000000000000000000000000", None, {}, 404, None),
    ],
    ids=["malformed JSON", "bad cursor", "limit too large", "odd id", "odd tenant", "unknown id"],
)
def test_bad_requests_get_their_status_and_field(
    api: Callable[[int], Call],
    tenant: str,
    method: str,
    path: str,
    body: Any,
    query: dict[str, str],
    status: int,
    field: str | None,
) -> None:
    call = api(1000)

    answered, error = call(method, path.replace("{t}", tenant), body, **query)

    assert answered == status, error
    assert error["error"]["field"] == field, error
    assert "Traceback" not in json.dumps(error)


def test_the_openapi_document_is_valid_and_lists_every_route(api: Callable[[int], Call]) -> None:
    from openapi_spec_validator import validate

    status, document = api(1000)("GET", "/openapi.json")

    assert status == 200
    validate(document)  # raises on any violation of the OpenAPI specification
    assert document["paths"]["/tenants/{tenant}/schedules"].keys() == {"get", "post"}
    assert document["paths"]["/tenants/{tenant}/schedules/{schedule_id}"].keys() == {
        "get",
        "patch",
        "delete",
    }
    assert set(document["paths"]) == {
        "/tenants/{tenant}/schedules",
        "/tenants/{tenant}/schedules/{schedule_id}",
        "/tenants/{tenant}/schedules/{schedule_id}/pause",
        "/tenants/{tenant}/schedules/{schedule_id}/resume",
        "/tenants/{tenant}/schedules/{schedule_id}/trigger",
        "/tenants/{tenant}/schedules/{schedule_id}/executions",
        "/tenants/{tenant}/schedules/{schedule_id}/stats",
        "/openapi.json",
    }


def test_a_deploy_cannot_take_over_an_api_schedule(
    api: Callable[[int], Call], tenant: str, store: Store
) -> None:
    from cronfleet.registry.custom_resource import CustomResourceEvent, respond

    # given a schedule made through the API
    _, schedule = api(1000)("POST", f"/tenants/{tenant}/schedules", DAILY_NY)

    # when a template declares a task of the same Name
    event = {
        "RequestType": "Create",
        "ResponseURL": "https://cloudformation-custom-resource-response.s3.amazonaws.com/x",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/other/1",
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "Hijack",
        "ResourceType": "Custom::ScheduledTask",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:registry",
            "Name": schedule["id"],
            "Schedule": "rate(1 minute)",
            "Function": "fn",
        },
    }
    response = respond(event, CustomResourceEvent.model_validate(event), store, NOW)

    # then the deploy fails on Name, naming the owner, and the schedule is as it was
    assert response.status == "FAILED"
    assert response.reason is not None
    assert response.reason.startswith("Hijack.Name:")
    assert f"api#{tenant}" in response.reason
    task = store.get_task(schedule["id"])
    assert task is not None
    assert task.definition.schedule == "0 9 * * *"


class _BrokenStore(Store):
    """A store whose reads fail as a defect would, with a message holding an internal detail."""

    def get_task(self, task_id: str) -> None:  # type: ignore[override]
        raise RuntimeError("connection pool of /var/task/secret-config.json exhausted")


def test_an_unexpected_failure_is_a_500_that_leaks_nothing(
    store: Store, lambda_queue: QueuedLambda, tenant: str
) -> None:
    # given a service whose store fails in a way no rule expects
    broken = _BrokenStore(store.tasks_table, store.executions_table, client=store.client)
    service = ScheduleService(
        broken, attempts=lambda: Attempts(broken, lambda_queue), functions=FUNCTIONS, quota=10
    )
    app = build_api(lambda: service)
    event = proxy_event("GET", f"/tenants/{tenant}/schedules/s-{'0' * 24}")

    # when a request meets it
    response = app.resolve(event, None)

    # then the caller gets a 500 with the request's id to quote, and no internals
    assert response["statusCode"] == 500
    body = json.loads(response["body"])
    assert body["error"]["code"] == "internal"
    assert event["requestContext"]["requestId"] in body["error"]["message"]
    assert "secret" not in response["body"]
    assert "var/task" not in response["body"]
    assert "Traceback" not in response["body"]


def test_concurrent_creates_of_one_deduplication_key_make_one_schedule_counted_once(
    api: Callable[[int], Call], tenant: str, store: Store
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    call = api(1000)
    base = f"/tenants/{tenant}/schedules"

    # when eight callers create the same key at once (a client's retries racing, say)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: call("POST", base, DAILY_NY), range(8)))

    # then one created it, the others found it, and the tenant holds one schedule
    assert sorted(status for status, _ in answers) == [200] * 7 + [201]
    assert len({body["id"] for _, body in answers}) == 1
    assert len(call("GET", base)[1]["items"]) == 1
    assert store.schedules_of(tenant) == 1


def test_concurrent_creates_past_the_quota_admit_exactly_the_quota(
    api: Callable[[int], Call], tenant: str, store: Store
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    call = api(5)
    base = f"/tenants/{tenant}/schedules"
    body = {"schedule": "rate(1 hour)", "function": "ExampleTaskFunction"}

    # when twelve different schedules are created at once against a quota of five
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: call("POST", base, body), range(12)))

    # then exactly five exist, the rest were refused, and the counter agrees with the list
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] * 5 + [409] * 7, answers
    assert all(b["error"]["code"] == "quota_exceeded" for s, b in answers if s == 409)
    assert len(call("GET", base)[1]["items"]) == 5
    assert store.schedules_of(tenant) == 5


@pytest.mark.parametrize("route", ["create", "delete"])
def test_a_write_whose_response_was_lost_counts_the_schedule_once(
    store: Store, lambda_queue: QueuedLambda, tenant: str, route: str, dynamodb_local: Any
) -> None:
    from tests.support.faults import FaultInjector, FaultKind

    # given a service whose DynamoDB connection loses the answer of the route's transaction
    # after it committed (botocore then sends the same request again)
    lossy = Store(store.tasks_table, store.executions_table, client=dynamodb_local.client())
    faults = FaultInjector(seed=5, rate=0).attach(lossy.client)
    service = ScheduleService(
        lossy,
        attempts=lambda: Attempts(lossy, lambda_queue),
        functions=FUNCTIONS,
        quota=10,
        now=lambda: NOW,
    )
    app = build_api(lambda: service)

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = app.resolve(proxy_event(method, path, body), None)
        return response["statusCode"], json.loads(response["body"]) if response["body"] else None

    base = f"/tenants/{tenant}/schedules"
    if route == "delete":
        _, made = call("POST", base, DAILY_NY)
    faults.force(FaultKind.LOST_RESPONSE, on="TransactWriteItems")

    # when the write is made
    if route == "create":
        status, made = call("POST", base, DAILY_NY)
        expected = (201, 1)
    else:
        status, _ = call("DELETE", f"{base}/{made['id']}")
        expected = (204, 0)

    # then the answer was lost once, it answered as if nothing was, and the counter moved once
    assert faults.injected[FaultKind.LOST_RESPONSE] == 1
    assert (status, store.schedules_of(tenant)) == expected
    assert len(call("GET", base)[1]["items"]) == expected[1]
