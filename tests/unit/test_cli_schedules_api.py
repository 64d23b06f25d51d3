"""``cronfleet schedules create|list|update|delete``, typed as a person types them.

The API is an ``httpx.MockTransport`` (the CLI's transport is pointed at it), which checks each
request's SigV4 signature as API Gateway would (:mod:`tests.support.sigv4`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.credentials import ReadOnlyCredentials
from botocore.stub import Stubber
from typer.testing import CliRunner

from cronfleet_tools.cli import common, schedules_api
from cronfleet_tools.cli.app import app
from tests.support import sigv4

API_URL = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1"
KEYS = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None)
ID = "s-0123456789abcdef01234567"


def schedule_json(id: str = ID, **fields: Any) -> dict[str, Any]:
    return {
        "id": id,
        "tenant": "acme",
        "schedule": "cron(0 9 * * ? *)",
        "timezone": "Europe/London",
        "function": "ExampleTaskFunction",
        "payload": {},
        "retry": {"maxAttempts": 3, "intervalSeconds": 60, "backoffRate": 2.0},
        "overlap": "skip",
        "catchup": {"policy": "latest"},
        "alerts": {},
        "description": "",
        "enabled": True,
        "paused": False,
        "nextRun": "2026-11-02T09:00:00Z",
        "owner": "api",
        **fields,
    }


class FakeApi:
    """Answers from a queue, keeps every request, checks each one's signature."""

    def __init__(self, *answers: httpx.Response, keys: ReadOnlyCredentials = KEYS) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.keys = keys
        self.region = "eu-west-1"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        sigv4.verify_signature(request, self.keys, self.region)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def sent(self) -> list[tuple[str, str, Any]]:
        return [
            (
                request.method,
                request.url.raw_path.decode(),
                json.loads(request.content) if request.content else None,
            )
            for request in self.requests
        ]


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., FakeApi]:
    """Point the CLI at a fake API, with AWS keys in the environment and no local stack."""
    monkeypatch.chdir(tmp_path)  # no .cronfleet/stack.json here
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEYS.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS.secret_key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.delenv("CRONFLEET_API_URL", raising=False)

    def start(*answers: httpx.Response, **options: Any) -> FakeApi:
        api = FakeApi(*answers, **options)
        monkeypatch.setattr(schedules_api, "transport", httpx.MockTransport(api))
        return api

    return start


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["schedules", *args])
    return result.exit_code, result.output


def flat(output: str) -> str:
    """The output as one line, without the boxes and borders rich draws (it wraps anywhere)."""
    return " ".join(re.sub("[\u2500-\u257f]", " ", output).split())


def answer(status: int, document: Any = None) -> httpx.Response:
    return httpx.Response(status) if document is None else httpx.Response(status, json=document)


# --- create, update, delete ------------------------------------------------------------------


def test_create_sends_the_options_as_the_apis_fields_and_shows_the_schedule(
    serve: Callable[..., FakeApi],
) -> None:
    # given the API creating the schedule
    api = serve(answer(201, schedule_json(externalId="project-42", payload={"full": True})))

    # when a person creates one
    code, output = cli(
        "create", "--api-url", API_URL, "--tenant", "acme",
        "--schedule", "cron(0 9 * * ? *)", "--tz", "Europe/London",
        "--function", "ExampleTaskFunction", "--payload", '{"full": true}',
        "--external-id", "project-42", "--dedup-key", "p42-daily", "--disabled",
    )  # fmt: skip

    # then one signed POST carried exactly those fields, and the schedule is shown
    assert code == 0, output
    assert api.sent() == [
        (
            "POST",
            "/v1/tenants/acme/schedules",
            {
                "schedule": "cron(0 9 * * ? *)",
                "timezone": "Europe/London",
                "function": "ExampleTaskFunction",
                "payload": {"full": True},
                "externalId": "project-42",
                "enabled": False,
                "deduplicationKey": "p42-daily",
            },
        )
    ]
    page = flat(output)
    assert f"Created schedule {ID} for tenant acme." in page
    assert "cron(0 9 * * ? *) (Europe/London)" in page
    assert 'Payload {"full": true}' in page


def test_create_with_a_key_that_matched_says_it_updated_that_schedule(
    serve: Callable[..., FakeApi],
) -> None:
    serve(answer(200, schedule_json(created=False, deduplicationKey="p42-daily")))

    code, output = cli(
        "create", "--api-url", API_URL, "--tenant", "acme", "--schedule", "rate(1 hour)",
        "--http-url", "https://hooks.example.com/run", "--dedup-key", "p42-daily",
    )  # fmt: skip

    assert code == 0, output
    assert f"Updated schedule {ID}, which has deduplication key p42-daily: no second one." in (
        flat(output)
    )


def test_create_json_prints_the_schedule_as_the_api_gave_it(
    serve: Callable[..., FakeApi],
) -> None:
    reply = schedule_json(createdAt="2026-11-01T09:00:00Z", shard=7)
    serve(answer(201, reply))

    code, output = cli(
        "create", "--api-url", API_URL, "--tenant", "acme", "--schedule", "rate(1 hour)",
        "--function", "ExampleTaskFunction", "--json",
    )  # fmt: skip

    assert code == 0, output
    assert json.loads(output) == {**reply, "created": True}


def test_update_sends_only_the_fields_given(serve: Callable[..., FakeApi]) -> None:
    # given a schedule to change
    api = serve(answer(200, schedule_json(enabled=False, timezone="UTC")))

    # when it is disabled and moved to UTC
    code, output = cli(
        "update", ID, "--api-url", API_URL, "--tenant", "acme", "--disabled", "--tz", "UTC"
    )

    # then the PATCH names those two fields and no other
    assert code == 0, output
    assert api.sent() == [
        ("PATCH", f"/v1/tenants/acme/schedules/{ID}", {"timezone": "UTC", "enabled": False})
    ]
    assert f"Updated schedule {ID} of tenant acme." in flat(output)
    assert "State disabled" in flat(output)


def test_delete_deletes_the_schedule(serve: Callable[..., FakeApi]) -> None:
    api = serve(answer(204))

    code, output = cli("delete", ID, "--api-url", API_URL, "--tenant", "acme")

    assert code == 0, output
    assert api.sent() == [("DELETE", f"/v1/tenants/acme/schedules/{ID}", None)]
    assert output == f"Deleted schedule {ID} of tenant acme.\n"


# --- list ------------------------------------------------------------------------------------


def fleet() -> list[dict[str, Any]]:
    hook = "https://hooks.example.com/v2/tenants/acme/projects/project-42/nightly-report-run"
    return [
        schedule_json(f"s-{n:024x}", externalId=f"project-{n}", timezone="America/New_York")
        for n in range(3)
    ] + [
        schedule_json(
            f"s-{9:024x}", function=None, http={"url": hook, "method": "POST"}, paused=True
        )
    ]


@pytest.mark.parametrize("width", [80, 200])
def test_list_shows_a_table_that_fits_the_terminal_without_breaking_words(
    serve: Callable[..., FakeApi], monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    # given a terminal of this width and four schedules, one calling a long URL
    monkeypatch.setattr(common.console, "width", width)
    serve(answer(200, {"items": fleet(), "nextCursor": None}))

    # when they are listed
    code, output = cli("list", "--api-url", API_URL, "--tenant", "acme")

    # then no line is wider than the terminal, and every id and time reads whole
    assert code == 0, output
    assert max(len(line) for line in output.splitlines()) <= width
    words = output.split()
    for schedule in fleet():
        assert schedule["id"] in words
    assert words.count("2026-11-02") == 4
    assert "America/New_York" in output
    assert "paused" in output


def test_list_json_follows_the_cursors_up_to_the_limit(serve: Callable[..., FakeApi]) -> None:
    # given two pages of schedules
    first, second = fleet()[:2], fleet()[2:]
    api = serve(
        answer(200, {"items": first, "nextCursor": "c/1"}),
        answer(200, {"items": second, "nextCursor": "c/2"}),
    )

    # when three are asked for, as JSON
    code, output = cli("list", "--api-url", API_URL, "--tenant", "acme", "--limit", "3", "--json")

    # then three came, from two pages asked with the first one's cursor
    assert code == 0, output.splitlines()[-1]
    listed = json.loads(output.split("\nShowing")[0])
    assert [item["id"] for item in listed] == [item["id"] for item in fleet()[:3]]
    assert [request.url.params.get("cursor") for request in api.requests] == [None, "c/1"]


def test_list_filters_by_external_id_and_state(serve: Callable[..., FakeApi]) -> None:
    api = serve(answer(200, {"items": [], "nextCursor": None}))

    code, output = cli(
        "list", "--api-url", API_URL, "--tenant", "acme", "--external-id", "project-42",
        "--disabled",
    )  # fmt: skip

    assert code == 0, output
    assert dict(api.requests[0].url.params) == {
        "externalId": "project-42",
        "enabled": "false",
        "limit": "100",
    }
    assert output == "Tenant acme has no schedules that match.\n"


# --- which API -------------------------------------------------------------------------------


def test_stack_reads_the_schedule_api_url_output(
    serve: Callable[..., FakeApi], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a deployed stack whose outputs name its API
    api = serve(answer(200, {"items": [], "nextCursor": None}))
    cloudformation = boto3.client("cloudformation", region_name="eu-west-1")
    stubber = Stubber(cloudformation)
    outputs = [{"OutputKey": "ScheduleApiUrl", "OutputValue": API_URL}]
    stack = {
        "StackName": "cronfleet",
        "CreationTime": "2026-11-01T00:00:00Z",
        "StackStatus": "CREATE_COMPLETE",
        "Outputs": outputs,
    }
    stubber.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "cronfleet"})
    stubber.activate()
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: cloudformation)

    # when the stack is named
    code, output = cli("list", "--stack", "cronfleet", "--tenant", "acme")

    # then its API was asked
    assert code == 0, output
    assert str(api.requests[0].url) == f"{API_URL}/tenants/acme/schedules?limit=100"
    stubber.assert_no_pending_responses()


def test_cronfleet_api_url_names_the_api_unless_an_option_names_another(
    serve: Callable[..., FakeApi], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # given CRONFLEET_API_URL in the environment, and a running local stack with its own API
    monkeypatch.setenv("CRONFLEET_API_URL", API_URL)
    write_stack_file(tmp_path / ".cronfleet", api_url="http://127.0.0.1:3001/v1")
    api = serve(answer(200, {"items": [], "nextCursor": None}))

    # when schedules are listed with no option, then with --local
    plain = cli("list", "--tenant", "acme")
    api.keys = ReadOnlyCredentials("cronfleetlocal", "cronfleetlocal", None)
    api.region = "us-east-1"
    local = cli("list", "--tenant", "acme", "--local")

    # then the variable's API was asked first, and --local won over it
    assert (plain[0], local[0]) == (0, 0), (plain, local)
    assert [request.url.host for request in api.requests] == [
        "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
        "127.0.0.1",
    ]


def write_stack_file(state_dir: Path, **extra: Any) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    info = {
        "endpoint_url": "http://127.0.0.1:8000",
        "region": "us-east-1",
        "tasks_table": "cronfleet-local-TasksTable",
        "executions_table": "cronfleet-local-ExecutionsTable",
        "template": "template.yaml",
        "pid": os.getpid(),  # alive: this process
        **extra,
    }
    (state_dir / "stack.json").write_text(json.dumps(info))


def test_local_signs_with_the_local_key_for_the_local_stacks_api(
    serve: Callable[..., FakeApi], tmp_path: Path
) -> None:
    # given a running local stack that serves the API (its stack.json says where)
    local_url = "http://127.0.0.1:3001/v1"
    write_stack_file(tmp_path / ".cronfleet", api_url=local_url)
    api = serve(
        answer(200, {"items": [], "nextCursor": None}),
        keys=ReadOnlyCredentials("cronfleetlocal", "cronfleetlocal", None),
    )
    api.region = "us-east-1"

    # when schedules are listed with --local
    code, output = cli("list", "--local", "--tenant", "acme")

    # then the request went to the local API, signed with its key in its region
    assert code == 0, output
    assert str(api.requests[0].url).startswith(f"{local_url}/tenants/acme/schedules")


def test_a_local_stack_without_an_api_is_a_clear_error(
    serve: Callable[..., FakeApi], tmp_path: Path
) -> None:
    write_stack_file(tmp_path / ".cronfleet")
    api = serve(answer(200, {"items": [], "nextCursor": None}))

    code, output = cli("list", "--local", "--tenant", "acme")

    assert code == 2, output
    assert (
        "Invalid value for --local: the local stack in .cronfleet/ serves no schedules API "
        "(its stack.json has no api_url): restart it with `make run`"
    ) in flat(output)
    assert api.requests == []


def test_a_local_stack_whose_runner_is_gone_is_a_clear_error(
    serve: Callable[..., FakeApi], tmp_path: Path
) -> None:
    # given the stack.json of a runner that has exited
    ended = subprocess.Popen(["true"])
    ended.wait()
    write_stack_file(tmp_path / ".cronfleet", api_url="http://127.0.0.1:3001/v1", pid=ended.pid)
    api = serve(answer(200, {"items": [], "nextCursor": None}))

    code, output = cli("list", "--local", "--tenant", "acme")

    assert code == 2, output
    assert (
        f"Invalid value for --state-dir: the local stack in .cronfleet/ is not running (its "
        f"process {ended.pid} is gone); start it with `make run`"
    ) in flat(output)
    assert api.requests == []


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option", "message"),
    [
        (["create", "--schedule", "rate(1 hour)", "--function", "F", "--payload", "{oops"],
         "--payload", "not JSON: Expecting property name enclosed in double quotes at column 2"),
        (["create", "--schedule", "rate(1 hour)", "--function", "F", "--payload", "[1]"],
         "--payload", "must be a JSON object, not list"),
        (["create", "--schedule", "rate(1 hour)", "--function", "F", "--http-url", "https://x"],
         "--http-url", "choose one: --function NAME or --http-url URL"),
        (["create", "--schedule", "rate(1 hour)"],
         "--function", "say what runs: --function NAME or --http-url URL"),
        (["create", "--schedule", "rate(1 hour)", "--http-url", "ftp://x"],
         "--http-url", "'ftp://x' is not an http(s) URL"),
        (["create", "--schedule", "rate(1 hour)", "--function", "F", "--dedup-key", "a#b"],
         "--dedup-key", "'a#b': 1 to 128 of A-Z, a-z, 0-9 and _ . : @ -"),
        (["update", ID], "update", "nothing to change: give --schedule, --tz, --function"),
        (["delete", ".."], "ID", "'..' cannot be a tenant or a schedule id"),
    ],
    ids=["payload-json", "payload-object", "two-targets", "no-target", "http-url", "dedup-key",
         "nothing-to-update", "dot-id"],
)  # fmt: skip
def test_bad_input_exits_2_naming_the_option_and_sends_nothing(
    serve: Callable[..., FakeApi], args: list[str], option: str, message: str
) -> None:
    api = serve(answer(200, schedule_json()))

    code, output = cli(*args, "--api-url", API_URL, "--tenant", "acme")

    assert code == 2, output
    assert f"Invalid value for {option}: {message}" in flat(output)
    assert api.requests == []


def test_a_bad_tenant_is_refused(serve: Callable[..., FakeApi]) -> None:
    api = serve(answer(200, schedule_json()))

    code, output = cli("delete", ID, "--api-url", API_URL, "--tenant", "acme/other")

    assert code == 2, output
    assert (
        "Invalid value for --tenant: 'acme/other' is not a tenant: 1 to 64 of A-Z, a-z, 0-9, "
        "'_' and '-'"
    ) in flat(output)
    assert api.requests == []


def test_naming_no_api_exits_2_and_says_how_to(serve: Callable[..., FakeApi]) -> None:
    serve(answer(200, schedule_json()))

    code, output = cli("list", "--tenant", "acme")

    assert code == 2, output
    assert (
        "Invalid value for --api-url: say which API: --api-url URL, --stack NAME or --local"
        in flat(output)
    )


@pytest.mark.parametrize(
    ("error", "printed"),
    [
        ({"code": "invalid", "message": "not a schedule expression", "field": "schedule"},
         "Error: schedule: not a schedule expression"),
        ({"code": "not_found", "message": f"no schedule {ID}", "field": None},
         f"Error: no schedule {ID}"),
    ],
    ids=["validation", "not-found"],
)  # fmt: skip
def test_a_refusal_of_the_api_exits_1_with_its_field_and_message(
    serve: Callable[..., FakeApi], error: dict[str, Any], printed: str
) -> None:
    # given the API refusing the request
    serve(answer(422 if error["field"] else 404, {"error": error}))

    # when a person updates a schedule
    code, output = cli("update", ID, "--api-url", API_URL, "--tenant", "acme", "--schedule", "x")

    # then the command says what the API said, and exits 1
    assert code == 1, output
    assert output == f"{printed}\n"
