"""The schedules API client, against an ``httpx.MockTransport`` that plays API Gateway.

Every request the transport receives has its SigV4 signature recomputed from the request as
received and compared (:mod:`tests.support.sigv4`), as API Gateway checks it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from botocore.credentials import Credentials, ReadOnlyCredentials

from cronfleet.client import (
    ApiError,
    ApiUnreachable,
    ClientUsageError,
    CronfleetClient,
    Schedule,
    UnexpectedResponse,
)
from cronfleet.errors import CronfleetError
from tests.support import sigv4

BASE_URL = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1"
REGION = "eu-west-1"
KEYS = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None)
SESSION_KEYS = ReadOnlyCredentials(
    "ASIAEXAMPLE", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLE//token=="
)


def schedule_json(id: str = "s-0123456789abcdef01234567", **fields: Any) -> dict[str, Any]:
    return {
        "id": id,
        "tenant": "acme",
        "schedule": "cron(0 9 * * ? *)",
        "timezone": "UTC",
        "function": "ExampleTaskFunction",
        "payload": {},
        "retry": {"maxAttempts": 3, "intervalSeconds": 60, "backoffRate": 2.0},
        "overlap": "skip",
        "catchup": {"policy": "latest"},
        "alerts": {},
        "description": "",
        "enabled": True,
        "paused": False,
        "createdAt": "2026-11-01T09:00:00Z",
        "updatedAt": "2026-11-01T09:00:00Z",
        "nextRun": "2026-11-02T09:00:00Z",
        "owner": "api",
        **fields,
    }


def verify_signature(
    request: httpx.Request, credentials: ReadOnlyCredentials, region: str = REGION
) -> dict[str, str]:
    return sigv4.verify_signature(request, credentials, region)


class FakeApi:
    """A MockTransport that answers from a queue and keeps every request, signature checked."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.credentials = KEYS

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        verify_signature(request, self.credentials)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def request(self) -> httpx.Request:
        assert len(self.requests) == 1, self.requests
        return self.requests[0]


def answer(status: int, document: Any = None, **headers: str) -> httpx.Response:
    if document is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=document, headers=headers)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def connect(sleeps: list[float]) -> Callable[..., CronfleetClient]:
    def make(api: FakeApi, **options: Any) -> CronfleetClient:
        options.setdefault("credentials", api.credentials)
        return CronfleetClient(
            BASE_URL,
            http=httpx.Client(transport=httpx.MockTransport(api)),
            sleep=sleeps.append,
            **options,
        )

    return make


def sent(request: httpx.Request) -> tuple[str, str, dict[str, str], Any]:
    """What a request said: method, raw path, decoded query, JSON body."""
    body = json.loads(request.content) if request.content else None
    query = dict(parse_qsl(request.url.query.decode(), keep_blank_values=True))
    return request.method, request.url.raw_path.split(b"?")[0].decode(), query, body


# --- one method per route ----------------------------------------------------------------------

ID = "s-0123456789abcdef01234567"
ONE = f"/v1/tenants/acme/schedules/{ID}"
PAGE: dict[str, Any] = {"items": [schedule_json()], "nextCursor": None}
RUN = {"slot": "2026-11-02T09:00:00Z#manual-1a2b3c4d", "status": "PENDING"}
STATS = {"runs": 3, "succeeded": 2, "failed": 1, "consecutiveFailures": 1}


@pytest.mark.parametrize(
    ("call", "reply", "expected"),
    [
        (
            lambda api: api.create_schedule(
                "acme",
                schedule="cron(0 9 * * ? *)",
                timezone="Europe/London",
                function="ExampleTaskFunction",
                external_id="project-42",
                payload={"snake_case_key": 1},
            ),
            answer(201, schedule_json()),
            (
                "POST",
                "/v1/tenants/acme/schedules",
                {},
                {
                    "schedule": "cron(0 9 * * ? *)",
                    "timezone": "Europe/London",
                    "function": "ExampleTaskFunction",
                    "externalId": "project-42",
                    "payload": {"snake_case_key": 1},
                },
            ),
        ),
        (
            lambda api: api.list_schedules(
                "acme", external_id="project-42", enabled=False, limit=10, cursor="c1"
            ),
            answer(200, PAGE),
            (
                "GET",
                "/v1/tenants/acme/schedules",
                {"externalId": "project-42", "enabled": "false", "limit": "10", "cursor": "c1"},
                None,
            ),
        ),
        (
            lambda api: api.get_schedule("acme", ID, next=3),
            answer(200, schedule_json(nextRuns=["2026-11-02T09:00:00Z"])),
            ("GET", ONE, {"next": "3"}, None),
        ),
        (
            lambda api: api.update_schedule(
                "acme", ID, enabled=False, http={"url": "https://x.example", "secret_arn": "a"}
            ),
            answer(200, schedule_json()),
            (
                "PATCH",
                ONE,
                {},
                {"enabled": False, "http": {"url": "https://x.example", "secretArn": "a"}},
            ),
        ),
        (lambda api: api.delete_schedule("acme", ID), answer(204), ("DELETE", ONE, {}, None)),
        (
            lambda api: api.pause_schedule("acme", ID),
            answer(200, schedule_json(paused=True)),
            ("POST", f"{ONE}/pause", {}, None),
        ),
        (
            lambda api: api.resume_schedule("acme", ID),
            answer(200, schedule_json()),
            ("POST", f"{ONE}/resume", {}, None),
        ),
        (
            lambda api: api.trigger_schedule("acme", ID, payload={"full": True}),
            answer(202, RUN),
            ("POST", f"{ONE}/trigger", {}, {"payload": {"full": True}}),
        ),
        (
            lambda api: api.list_executions("acme", ID, limit=5, cursor="e1"),
            answer(200, {"items": [], "nextCursor": None}),
            ("GET", f"{ONE}/executions", {"limit": "5", "cursor": "e1"}, None),
        ),
        (
            lambda api: api.get_stats("acme", ID),
            answer(200, STATS),
            ("GET", f"{ONE}/stats", {}, None),
        ),
        (
            lambda api: api.openapi(),
            answer(200, {"openapi": "3.1.0"}),
            ("GET", "/v1/openapi.json", {}, None),
        ),
    ],
    ids=[
        "create",
        "list",
        "get",
        "update",
        "delete",
        "pause",
        "resume",
        "trigger",
        "executions",
        "stats",
        "openapi",
    ],
)
def test_each_method_sends_its_route_query_and_json_body(
    connect: Callable[..., CronfleetClient],
    call: Callable[[CronfleetClient], Any],
    reply: httpx.Response,
    expected: tuple[str, str, dict[str, str], Any],
) -> None:
    # given the API answering as the spec says
    api = FakeApi(reply)

    # when the method is called
    call(connect(api))

    # then exactly one request went out, to its route, with its query and body
    assert sent(api.request) == expected


def test_results_are_typed_and_keep_fields_the_client_does_not_know(
    connect: Callable[..., CronfleetClient],
) -> None:
    # given a schedule with a field this client has never heard of
    reply = schedule_json(describedAs="At 09:00", nextRuns=["2026-11-02T09:00:00Z"], shard=7)
    api = FakeApi(answer(200, reply))

    # when it is read
    schedule = connect(api).get_schedule("acme", ID)

    # then its times are datetimes, its policies objects, and the new field is kept
    assert schedule.next_run == datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert schedule.next_runs == [datetime(2026, 11, 2, 9, tzinfo=UTC)]
    assert schedule.described_as == "At 09:00"
    assert schedule.retry is not None
    assert schedule.retry.max_attempts == 3
    assert schedule.model_extra == {"shard": 7}


@pytest.mark.parametrize(
    ("status", "body", "created"),
    [(201, schedule_json(created=True), True), (200, schedule_json(created=False), False)],
)
def test_create_says_whether_it_made_the_schedule(
    connect: Callable[..., CronfleetClient], status: int, body: dict[str, Any], created: bool
) -> None:
    # given a create whose deduplication key is new (201) or matched one (200)
    api = FakeApi(answer(status, body))

    # when it is sent
    schedule = connect(api).create_schedule(
        "acme", schedule="rate(1 hour)", function="ExampleTaskFunction", deduplication_key="k"
    )

    # then the result says which
    assert schedule.created is created
    assert json.loads(api.request.content)["deduplicationKey"] == "k"


# --- signing -----------------------------------------------------------------------------------


def test_every_request_carries_a_sigv4_signature_for_execute_api_in_the_url_region(
    connect: Callable[..., CronfleetClient],
) -> None:
    # given a client with long-term keys and no region named: the URL's is used
    api = FakeApi(answer(201, schedule_json()))

    # when a request with a body is sent
    connect(api).create_schedule("acme", schedule="rate(1 hour)", function="F")

    # then its Authorization is SigV4's, scoped to execute-api in eu-west-1, and it verifies
    parts = verify_signature(api.request, KEYS)
    assert api.request.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
    assert (parts["key"], parts["region"], parts["service"]) == (
        "AKIDEXAMPLE",
        "eu-west-1",
        "execute-api",
    )
    assert parts["date"] == api.request.headers["x-amz-date"][:8]
    assert parts["headers"] == "content-type;host;x-amz-date"
    assert api.request.headers["host"] == "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"
    assert "x-amz-security-token" not in api.request.headers


def test_session_credentials_send_and_sign_their_security_token(
    connect: Callable[..., CronfleetClient],
) -> None:
    # given temporary credentials, as from an assumed role
    api = FakeApi(answer(200, PAGE))
    api.credentials = SESSION_KEYS

    # when a GET is sent
    connect(api, credentials=Credentials(*SESSION_KEYS)).list_schedules("acme")

    # then the token travels in x-amz-security-token, which the signature covers
    parts = verify_signature(api.request, SESSION_KEYS)
    assert api.request.headers["x-amz-security-token"] == SESSION_KEYS.token
    assert parts["headers"] == "host;x-amz-date;x-amz-security-token"


def test_a_query_with_reserved_characters_is_sent_as_sigv4_encodes_it(
    connect: Callable[..., CronfleetClient],
) -> None:
    # given an external id and a cursor with characters a URL reserves, and a space
    api = FakeApi(answer(200, PAGE))

    # when they are listed by
    connect(api).list_schedules("acme", external_id="team:a@b.c", cursor="eyJ+k/v= x~")

    # then each is percent-encoded once, as SigV4 does, and the signature holds (FakeApi checks)
    assert api.request.url.query.decode() == "externalId=team%3Aa%40b.c&cursor=eyJ%2Bk%2Fv%3D%20x~"
    assert sent(api.request)[2] == {"externalId": "team:a@b.c", "cursor": "eyJ+k/v= x~"}


def test_a_custom_domain_takes_the_region_from_the_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a custom domain, whose host names no region, and an AWS configuration in the env
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEYS.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS.secret_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        verify_signature(request, KEYS, "ap-southeast-2")
        return answer(200, PAGE)

    client = CronfleetClient(
        "https://schedules.example.com/", http=httpx.Client(transport=httpx.MockTransport(handler))
    )

    # when a request is sent with the default session's credentials
    client.list_schedules("acme")

    # then the session's region and keys signed it
    assert client.region == "ap-southeast-2"
    assert requests[0].url.path == "/tenants/acme/schedules"
    assert "/ap-southeast-2/execute-api/" in requests[0].headers["authorization"]


def test_a_client_without_a_region_is_refused_before_sending_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a custom domain and no region anywhere
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")

    # when a client is made, then it says what is missing
    with pytest.raises(ClientUsageError, match=r"no region for schedules\.example\.com"):
        CronfleetClient("https://schedules.example.com", credentials=KEYS)


@pytest.mark.parametrize("bad", ["", "..", "."])
def test_an_empty_or_dot_id_is_refused_rather_than_sent_to_another_path(
    connect: Callable[..., CronfleetClient], bad: str
) -> None:
    api = FakeApi(answer(200, schedule_json()))

    with pytest.raises(ClientUsageError, match="cannot be a tenant or a schedule id"):
        connect(api).get_schedule("acme", bad)

    assert api.requests == []


def test_path_segments_are_percent_encoded(connect: Callable[..., CronfleetClient]) -> None:
    # given an id with a slash, which must stay inside its segment
    api = FakeApi(answer(200, schedule_json()))

    # when it is read
    connect(api).get_schedule("acme", "a/b c")

    # then the path keeps it as one segment, and the signature verifies (FakeApi checks)
    assert api.request.url.raw_path == b"/v1/tenants/acme/schedules/a%2Fb%20c"


# --- errors ------------------------------------------------------------------------------------


def test_a_validation_error_names_its_status_code_and_field(
    connect: Callable[..., CronfleetClient],
) -> None:
    # given the API refusing a retry policy
    error = {"code": "invalid", "message": "must be 1 to 10", "field": "retry.maxAttempts"}
    api = FakeApi(answer(422, {"error": error}))

    # when the create is sent
    with pytest.raises(ApiError) as raised:
        connect(api).create_schedule("acme", schedule="rate(1 hour)", retry={"max_attempts": 99})

    # then the error carries what the API said
    assert (raised.value.status, raised.value.code, raised.value.field) == (
        422,
        "invalid",
        "retry.maxAttempts",
    )
    assert raised.value.message == "must be 1 to 10"
    assert isinstance(raised.value, CronfleetError)
    assert str(raised.value) == "retry.maxAttempts: must be 1 to 10 (422 invalid)"


def test_an_unknown_id_is_a_404_api_error_without_a_field(
    connect: Callable[..., CronfleetClient],
) -> None:
    api = FakeApi(answer(404, {"error": {"code": "not_found", "message": "no schedule"}}))

    with pytest.raises(ApiError) as raised:
        connect(api).delete_schedule("acme", ID)

    assert (raised.value.status, raised.value.code, raised.value.field) == (404, "not_found", None)
    assert len(api.requests) == 1  # a 404 is an answer, not retried


def test_api_gateways_own_refusal_reads_its_error_type(
    connect: Callable[..., CronfleetClient],
) -> None:
    # given API Gateway refusing the caller before the handler runs
    api = FakeApi(
        answer(
            403,
            {"message": "User is not authorized to access this resource"},
            **{"x-amzn-ErrorType": "AccessDeniedException:http://internal.amazon.com/"},
        )
    )

    with pytest.raises(ApiError) as raised:
        connect(api).list_schedules("acme")

    assert (raised.value.status, raised.value.code) == (403, "AccessDeniedException")
    assert raised.value.message == "User is not authorized to access this resource"


@pytest.mark.parametrize("status", [200, 502])
def test_a_response_that_is_not_json_is_a_clear_error(
    connect: Callable[..., CronfleetClient], status: int
) -> None:
    # given something other than the API answering (a proxy's page)
    page = httpx.Response(
        status, text="<html>Bad Gateway</html>", headers={"content-type": "text/html"}
    )
    api = FakeApi(page)

    with pytest.raises(UnexpectedResponse) as raised:
        connect(api, retries=0).list_schedules("acme")

    assert raised.value.status == status
    assert "not JSON (text/html): '<html>Bad Gateway</html>'" in raised.value.message
    assert f"GET {BASE_URL}/tenants/acme/schedules answered {status}" in raised.value.message


def test_json_of_another_shape_is_a_clear_error(connect: Callable[..., CronfleetClient]) -> None:
    api = FakeApi(answer(200, {"schedules": []}))

    with pytest.raises(UnexpectedResponse, match="a page is an object with an items list"):
        connect(api).list_schedules("acme")


# --- retries -----------------------------------------------------------------------------------


@pytest.fixture
def ticking_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's signing clock, a second on at each signature."""
    moments = (datetime(2026, 11, 2, 9, 0, 0) + timedelta(seconds=n) for n in range(1000))
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: next(moments))


@pytest.mark.usefixtures("ticking_clock")
def test_a_create_with_a_deduplication_key_is_resent_whole_and_signed_anew_after_a_503(
    connect: Callable[..., CronfleetClient], sleeps: list[float]
) -> None:
    # given the API failing once, then creating
    unavailable = {"error": {"code": "unavailable", "message": "try again"}}
    api = FakeApi(answer(503, unavailable), answer(201, schedule_json(created=True)))

    # when a create with a deduplication key is sent
    schedule = connect(api).create_schedule(
        "acme", schedule="rate(1 hour)", function="F", deduplication_key="p42-daily"
    )

    # then it was sent twice with the same body, each time with its own valid signature
    first, second = api.requests
    assert schedule.created is True
    assert first.content == second.content
    assert json.loads(second.content)["deduplicationKey"] == "p42-daily"
    assert first.headers["x-amz-date"] != second.headers["x-amz-date"]
    assert first.headers["authorization"] != second.headers["authorization"]
    assert len(sleeps) == 1


def test_a_create_without_a_deduplication_key_is_sent_once(
    connect: Callable[..., CronfleetClient], sleeps: list[float]
) -> None:
    # given the API failing: the schedule may or may not have been made
    api = FakeApi(answer(503, {"error": {"code": "unavailable", "message": "try again"}}))

    # when a create without a key is sent, then the failure is reported, not retried
    with pytest.raises(ApiError) as raised:
        connect(api).create_schedule("acme", schedule="rate(1 hour)", function="F")

    assert raised.value.status == 503
    assert len(api.requests) == 1
    assert sleeps == []


def test_a_get_is_retried_after_connection_errors_and_throttling_until_it_is_answered(
    connect: Callable[..., CronfleetClient], sleeps: list[float]
) -> None:
    # given a connection reset, then throttling that asks for 2 s, then the answer
    api = FakeApi(
        httpx.ConnectError("connection reset"),
        answer(429, {"message": "Too Many Requests"}, **{"Retry-After": "2"}),
        answer(200, PAGE),
    )

    # when schedules are listed
    page = connect(api, backoff_seconds=0.5).list_schedules("acme")

    # then the third attempt answered, after a backoff and the server's 2 s
    assert [schedule.id for schedule in page.items] == [ID]
    assert len(api.requests) == 3
    assert 0.25 <= sleeps[0] <= 0.5
    assert sleeps[1] == 2.0


def test_retries_end_with_the_last_answer(
    connect: Callable[..., CronfleetClient], sleeps: list[float]
) -> None:
    api = FakeApi(answer(502, {"message": "Internal server error"}))

    with pytest.raises(ApiError) as raised:
        connect(api, retries=2).get_stats("acme", ID)

    assert raised.value.status == 502
    assert len(api.requests) == 3
    assert len(sleeps) == 2


def test_a_delete_retried_after_a_lost_answer_and_then_not_found_is_done(
    connect: Callable[..., CronfleetClient], sleeps: list[float]
) -> None:
    # given a delete whose first answer was lost, and whose retry finds nothing to delete
    api = FakeApi(
        httpx.ReadTimeout("timed out"),
        answer(404, {"error": {"code": "not_found", "message": "no schedule"}}),
    )

    # when it is deleted, then that is a success: the schedule is gone either way
    connect(api).delete_schedule("acme", ID)

    assert [request.method for request in api.requests] == ["DELETE", "DELETE"]


@pytest.mark.parametrize(
    "call",
    [
        lambda api: api.trigger_schedule("acme", ID),
        lambda api: api.pause_schedule("acme", ID),
    ],
    ids=["trigger", "pause"],
)
def test_a_trigger_or_pause_that_gets_no_answer_is_not_sent_again(
    connect: Callable[..., CronfleetClient], call: Callable[[CronfleetClient], Any]
) -> None:
    api = FakeApi(httpx.ReadTimeout("timed out"))

    with pytest.raises(ApiUnreachable, match="no answer"):
        call(connect(api))

    assert len(api.requests) == 1


# --- pagination --------------------------------------------------------------------------------


def test_iter_schedules_follows_next_cursor_to_the_last_page(
    connect: Callable[..., CronfleetClient],
) -> None:
    # given three pages
    api = FakeApi(
        answer(200, {"items": [schedule_json("s-1"), schedule_json("s-2")], "nextCursor": "c/1"}),
        answer(200, {"items": [schedule_json("s-3")], "nextCursor": "c+2"}),
        answer(200, {"items": [schedule_json("s-4")], "nextCursor": None}),
    )

    # when every schedule is read
    schedules = list(connect(api).iter_schedules("acme", enabled=True, page_size=2))

    # then all four came, each page asked with the cursor the last one gave
    assert [schedule.id for schedule in schedules] == ["s-1", "s-2", "s-3", "s-4"]
    assert [sent(request)[2] for request in api.requests] == [
        {"enabled": "true", "limit": "2"},
        {"enabled": "true", "limit": "2", "cursor": "c/1"},
        {"enabled": "true", "limit": "2", "cursor": "c+2"},
    ]
    assert all(isinstance(schedule, Schedule) for schedule in schedules)


def test_iter_executions_stops_on_a_cursor_the_server_already_gave(
    connect: Callable[..., CronfleetClient],
) -> None:
    # given a server answering the same page forever
    execution = {"slot": "2026-11-02T09:00:00Z", "status": "SUCCEEDED", "attempts": []}
    api = FakeApi(answer(200, {"items": [execution], "nextCursor": "again"}))

    # when its executions are read, then the loop is reported rather than followed
    with pytest.raises(UnexpectedResponse, match="gave a cursor twice"):
        list(connect(api).iter_executions("acme", ID))

    assert len(api.requests) == 2
