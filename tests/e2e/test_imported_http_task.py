"""A migrated crontab runs in the local runtime: `cronfleet import`, then `cronfleet run`.

The crontab is seed 004's (tests/fixtures/migration/seed004_crontab): every line calls
``$API_URL`` with ``Authorization: Bearer $CRON_SECRET``, which the import turns into Http tasks
whose ``SecretArn`` names the SSM parameter ``/cronfleet/cron-secret``. The local runtime
serves that parameter from ``secrets.json`` in its state directory, through the same
Powertools code that reads it on AWS, and the HTTP caller calls an HTTPS server on loopback
whose certificate comes from a CA made here, trusted through ``RunOptions.ca_file`` (what
``CRONFLEET_LOCAL_CA_FILE`` sets): verification stays on. Loopback is a private address, so
the tasks opt in with ``AllowPrivateNetwork``, as any task calling a private server must.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from typer.testing import CliRunner

from cronfleet.dispatch.service import TickReport
from cronfleet.lifecycle.states import RunStatus
from cronfleet.store import ExecutionRecord
from cronfleet_tools.cli.app import app
from cronfleet_tools.local.lambda_process import Invocation
from cronfleet_tools.local.runner import LocalRunner, RunOptions
from cronfleet_tools.local.secrets import SECRETS_FILE
from cronfleet_tools.local.stack import AppliedTask, LocalStack
from cronfleet_tools.local.topic import PublishedMessage
from cronfleet_tools.template import load_template, parse_template

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED_CRONTAB = REPO_ROOT / "tests" / "fixtures" / "migration" / "seed004_crontab"
BASE_URL = "https://api.example.com"  # what the seed's $API_URL is, for the import
TOKEN = "seed004-cron-secret-7Hq2xZ"
STORED_PARAMETER = "/cronfleet/cron-secret"  # the parameter the import names
UNSTORED_PARAMETER = "/cronfleet/not-stored-locally"

# Up to a Sunday 08:00: one slot of each task kept below. It starts a minute before midnight,
# since a task registered at 00:00 has its first slot after that.
START = datetime(2026, 10, 31, 23, 59, tzinfo=UTC)
UNTIL = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

# The imported tasks kept: the first line (a GET, daily at 00:00), the second (01:00, given a
# parameter that is not stored locally) and the last (a POST with a JSON body, Sundays 08:00).
KEPT_TASKS = ("ResetCreditsTask", "CheckExpirationsTask", "OrchestrationCleanupTask")


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpsServer:
    """An HTTPS server on loopback with a certificate for ``localhost`` from a local CA."""

    port: int
    ca_file: Path
    received: list[Received] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"https://localhost:{self.port}"


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsServer]:
    ca = trustme.CA()
    ca_file = tmp_path_factory.mktemp("ca") / "local-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    received: list[Received] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test output is not the place for an access log

        def do_GET(self) -> None:
            self.answer()

        def do_POST(self) -> None:
            self.answer()

        def answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                received.append(Received(self.command, self.path, dict(self.headers), body))
            data = json.dumps({"ok": True}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HttpsServer(server.server_address[1], ca_file, received)
    finally:
        server.shutdown()
        server.server_close()


def imported_resources() -> dict[str, Any]:
    """The seed crontab through `cronfleet import`, as the template reads it."""
    result = CliRunner().invoke(app, ["import", str(SEED_CRONTAB), "--base-url", BASE_URL])
    assert result.exit_code == 0, result.output
    return parse_template("Resources:\n" + result.stdout)["Resources"]


def write_template(directory: Path, server: HttpsServer) -> Path:
    """The repository's stack with its own tasks replaced by three imported ones, pointed at
    the local server."""
    template = load_template(REPO_ROOT / "template.yaml")
    resources = {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] != "Custom::ScheduledTask"
    }
    for resource in resources.values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = str(REPO_ROOT / resource["Properties"]["CodeUri"])
    imported = imported_resources()
    for logical_id in KEPT_TASKS:
        http = imported[logical_id]["Properties"]["Http"]
        assert http["Url"].startswith(f"{BASE_URL}/")
        http["Url"] = server.origin + http["Url"].removeprefix(BASE_URL)
        http["AllowPrivateNetwork"] = True  # localhost is this machine: the task says it means it
        resources[logical_id] = imported[logical_id]
    # One task names a parameter nobody stored here, in the import's own form of SecretArn.
    unstored = resources["CheckExpirationsTask"]["Properties"]["Http"]
    unstored["SecretArn"]["Fn::Sub"] = unstored["SecretArn"]["Fn::Sub"].replace(
        STORED_PARAMETER, UNSTORED_PARAMETER
    )
    template["Resources"] = resources
    template.pop("Outputs", None)  # some name the sample tasks
    path = directory / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


@dataclass
class LedgerReporter:
    """Writes down the invocations; reads the ledger before the stack goes down."""

    invocations: list[Invocation] = field(default_factory=list)
    ledger: dict[str, list[ExecutionRecord]] = field(default_factory=dict)
    _stack: LocalStack | None = None

    def started(self, stack: LocalStack, applied: list[AppliedTask]) -> None:
        self._stack = stack

    def ticked(self, report: TickReport) -> None:
        pass

    def invocation(self, invocation: Invocation) -> None:
        self.invocations.append(invocation)

    def alert(self, message: PublishedMessage) -> None:
        pass

    def finished(self) -> None:
        assert self._stack is not None
        for task in self._stack.store.list_tasks():
            self.ledger[task.task_id] = self._stack.store.executions(task.task_id)


@dataclass(frozen=True)
class Replay:
    reporter: LedgerReporter
    server: HttpsServer

    def execution(self, task_id: str) -> ExecutionRecord:
        (execution,) = self.reporter.ledger[task_id]
        return execution

    def requests_to(self, path: str) -> list[Received]:
        return [request for request in self.server.received if request.path == path]


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory, https_server: HttpsServer) -> Replay:
    directory = tmp_path_factory.mktemp("imported")
    state_dir = directory / ".cronfleet"
    state_dir.mkdir()
    (state_dir / SECRETS_FILE).write_text(json.dumps({STORED_PARAMETER: TOKEN}))
    reporter = LedgerReporter()
    options = RunOptions(
        template=write_template(directory, https_server),
        state_dir=state_dir,
        start=START,
        until=UNTIL,
        speed=None,
        ca_file=https_server.ca_file,
    )
    LocalRunner(options, reporter).run()
    return Replay(reporter, https_server)


def test_an_imported_get_task_calls_the_server_with_the_locally_stored_bearer_secret(
    replay: Replay,
) -> None:
    # given the seed crontab's first line, imported, its parameter in the local secrets file
    # when its slot comes in the replay
    (request,) = replay.requests_to("/api/v1/workers/reset-credits")

    # then the server got the call over verified HTTPS, with the stored token as Bearer
    assert request.method == "GET"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Host"] == f"localhost:{replay.server.port}"
    # and the ledger has the run as SUCCEEDED at its first attempt, with the answer's status
    execution = replay.execution("ResetCreditsTask")
    assert (execution.slot, execution.status) == ("2026-11-01T00:00:00Z", RunStatus.SUCCEEDED)
    (attempt,) = execution.attempts
    assert attempt.status is RunStatus.SUCCEEDED
    assert attempt.result is not None
    assert attempt.result["status"] == 200
    assert attempt.result["url"] == f"{replay.server.origin}/api/v1/workers/reset-credits"
    # and the token is nowhere in what was recorded
    assert TOKEN not in json.dumps(attempt.result)


def test_an_imported_post_task_sends_its_json_body_and_the_bearer_secret(replay: Replay) -> None:
    # given the seed crontab's last line, a POST with --post-data, imported
    # when its Sunday slot comes
    (request,) = replay.requests_to("/api/v1/workers/orchestration/cleanup")

    # then the body and the token both arrived, and the run succeeded
    assert request.method == "POST"
    assert json.loads(request.body) == {"retentionDays": 30}
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    execution = replay.execution("OrchestrationCleanupTask")
    assert (execution.slot, execution.status) == ("2026-11-01T08:00:00Z", RunStatus.SUCCEEDED)


def test_a_task_whose_secret_is_not_stored_locally_fails_once_and_says_where_to_add_it(
    replay: Replay,
) -> None:
    # given an imported task whose SecretArn names a parameter the secrets file lacks
    # when its slot comes
    execution = replay.execution("CheckExpirationsTask")

    # then the run failed at its first attempt, not retried (the import's default is 3
    # attempts), and the server was never called
    assert execution.status is RunStatus.FAILED
    (attempt,) = execution.attempts
    assert attempt.error_type == "SecretNotFound"
    assert replay.requests_to("/api/v1/workers/check-expirations") == []
    # and the error names the parameter, the file and the key to add to it
    message = attempt.error_message or ""
    assert "ParameterNotFound" in message
    assert f'add "{UNSTORED_PARAMETER}": "<the secret>" to ' in message
    assert f".cronfleet/{SECRETS_FILE}" in message
    # and the HTTP caller ran three times in all: once for each task's one slot
    http_runs = [i for i in replay.reporter.invocations if i.function == "HttpTaskFunction"]
    assert len(http_runs) == 3
