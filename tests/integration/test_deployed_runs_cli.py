"""`trigger` and `logs` on a deployed stack (``--stack NAME``), as a person runs them.

What the commands reach is as real as this machine allows: the stack's tables are DynamoDB
Local's, its functions run in the local runtime (each invocation in a process of its own), and
CloudFormation and Lambda are a loopback endpoint that answers as they do (DescribeStacks with
the stack's outputs; an asynchronous Invoke, accepted with 202 and run by the local runtime).
CloudWatch Logs, which has no local engine, is botocore's Stubber on a real client: it checks
each request the command sends, and answers with the lines a deployed stack would hold.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from cronfleet import clock
from cronfleet.lifecycle.states import RunStatus
from cronfleet.store import ExecutionRecord, Store
from cronfleet_tools.cli import runs
from cronfleet_tools.cli.app import app
from cronfleet_tools.local.lambda_process import LocalLambda
from cronfleet_tools.local.runner import local_lambda
from cronfleet_tools.local.stack import LocalStack
from cronfleet_tools.local.topic import LocalTopic
from cronfleet_tools.run_logs import cloudwatch
from cronfleet_tools.template import load_template
from tests.integration.test_run_cli import chatty_template

pytestmark = pytest.mark.integration

STACK = "cronfleet-prod"
GROUP = "/aws/lambda/cronfleet-prod"
STREAM = "2026/11/02/cronfleet-prod-ChattyFunction-Ab12Cd[$LATEST]0a1b2c3d"

runner = CliRunner()


@dataclass
class FakeAws:
    """CloudFormation's DescribeStacks and Lambda's Invoke, on loopback."""

    outputs: dict[str, str]
    run: Callable[[str, dict[str, Any]], None]  # what an accepted invoke does
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def endpoint_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def describe_stacks(self) -> bytes:
        members = "".join(
            f"<member><OutputKey>{key}</OutputKey><OutputValue>{escape(value)}</OutputValue>"
            "</member>"
            for key, value in self.outputs.items()
        )
        return (
            '<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
            f"<DescribeStacksResult><Stacks><member><StackName>{STACK}</StackName>"
            f"<StackId>arn:aws:cloudformation:us-east-1:123456789012:stack/{STACK}/1</StackId>"
            "<CreationTime>2026-11-01T00:00:00Z</CreationTime>"
            f"<StackStatus>UPDATE_COMPLETE</StackStatus><Outputs>{members}</Outputs>"
            "</member></Stacks></DescribeStacksResult>"
            "<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>"
            "</DescribeStacksResponse>"
        ).encode()


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    directory = tmp_path_factory.mktemp("deployed")
    state_dir = directory / ".cronfleet"
    topic = LocalTopic(state_dir / "alerts.jsonl").start()
    stack = LocalStack(state_dir, chatty_template(directory), topic_endpoint_url=topic.endpoint_url)
    stack.start()
    try:
        stack.apply_tasks(stack.validate(), clock.now())
        yield stack
    finally:
        stack.stop()
        topic.stop()


@pytest.fixture(scope="module")
def lambdas(local_stack: LocalStack) -> Iterator[LocalLambda]:
    assert local_stack.info is not None
    service = local_lambda(local_stack.info, load_template(local_stack.template_path), {})
    yield service
    service.shutdown()


@pytest.fixture
def store(local_stack: LocalStack) -> Store:
    return local_stack.store


@pytest.fixture
def fake_aws(local_stack: LocalStack, lambdas: LocalLambda) -> Iterator[FakeAws]:
    assert local_stack.info is not None
    aws = FakeAws(
        outputs={
            "TasksTableName": local_stack.info.tasks_table,
            "ExecutionsTableName": local_stack.info.executions_table,
            "HttpTaskFunctionName": "HttpTaskFunction",
            "FunctionLogGroupName": GROUP,
        },
        run=lambdas.invoke,
    )

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            invoke = re.fullmatch(r"/2015-03-31/functions/([^/]+)/invocations", self.path)
            if invoke:
                function = unquote(invoke.group(1))
                event = json.loads(body)
                aws.invokes.append((function, event))
                aws.run(function, event)
                self._answer(202, b"", "application/json")
                return
            assert parse_qs(body.decode())["Action"] == ["DescribeStacks"]
            self._answer(200, aws.describe_stacks(), "text/xml")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    aws.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=aws.server.serve_forever, daemon=True)
    thread.start()
    yield aws
    aws.server.shutdown()
    aws.server.server_close()


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """The CloudWatch Logs client the commands get, stubbed."""
    client = boto3.client("logs", region_name="us-east-1")
    monkeypatch.setattr(cloudwatch, "logs_client", lambda region: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture(autouse=True)
def _aws_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, local_stack: LocalStack, fake_aws: FakeAws
) -> None:
    # Dummy credentials, no configuration of the developer's, and every endpoint on loopback.
    assert local_stack.info is not None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "cronfleetlocal")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cronfleetlocal")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name in ("AWS_REGION", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", fake_aws.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", fake_aws.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", local_stack.info.endpoint_url)
    monkeypatch.setenv("COLUMNS", "200")
    # The commands poll: here a poll is a short real pause, not seconds.
    monkeypatch.setattr(runs, "sleep", lambda seconds: threading.Event().wait(0.05))


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def iso_ms(text: str) -> int:
    return ms(datetime.fromisoformat(text.replace("Z", "+00:00")))


def window_of(execution: ExecutionRecord) -> dict[str, int]:
    """The time window the command asks CloudWatch for a finished run."""
    (attempt,) = execution.attempts
    assert attempt.dispatched_at is not None
    assert attempt.ended_at is not None
    return {
        "startTime": iso_ms(attempt.dispatched_at) - 60_000,
        "endTime": iso_ms(attempt.ended_at) + 600_000,
    }


def lambda_lines(execution: ExecutionRecord) -> list[dict[str, Any]]:
    """What the stack's log group holds for the run's one attempt."""
    (attempt,) = execution.attempts
    assert attempt.started_at is not None
    at = iso_ms(attempt.started_at)
    request = attempt.request_id
    line = json.dumps(
        {"level": "INFO", "message": "Counted rows", "rows": 12, "function_request_id": request}
    )
    return [
        {
            "eventId": "1",
            "timestamp": at,
            "logStreamName": STREAM,
            "message": f"START RequestId: {request} Version: $LATEST\n",
        },
        {"eventId": "2", "timestamp": at + 5, "logStreamName": STREAM, "message": line},
        {
            "eventId": "3",
            "timestamp": at + 9,
            "logStreamName": STREAM,
            "message": f"END RequestId: {request}\n",
        },
        {
            "eventId": "4",
            "timestamp": at + 10,
            "logStreamName": STREAM,
            "message": f"REPORT RequestId: {request}\tDuration: 9.00 ms\n",
        },
    ]


def expect_run_lines(logs: Stubber, execution: ExecutionRecord, group: str = GROUP) -> None:
    """The two queries of a finished run's lines, the second answered with its Lambda lines."""
    request = execution.attempts[0].request_id
    window = {"logGroupName": group, **window_of(execution)}
    logs.add_response(
        "filter_log_events",
        {"events": []},
        {**window, "filterPattern": cloudwatch.run_pattern(execution.task_id, execution.slot)},
    )
    logs.add_response(
        "filter_log_events",
        {"events": lambda_lines(execution)},
        {**window, "filterPattern": f'?"{request}"'},
    )


def only_manual_run(store: Store, task_id: str, before: set[str]) -> ExecutionRecord:
    (slot,) = {e.slot for e in store.executions(task_id)} - before
    execution = store.get_execution(task_id, slot)
    assert execution is not None
    return execution


# --- trigger --------------------------------------------------------------------------------------


def test_trigger_on_a_deployed_stack_waits_for_the_run_then_prints_its_result_and_lines(
    store: Store, fake_aws: FakeAws, logs: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given CloudWatch Logs holding the lines of whichever run the command starts (the slot
    # is the command's to choose, so they are expected once it reads them)
    before = {e.slot for e in store.executions("ChattyTask")}
    real_lines = runs.read_lines
    expected: list[str] = []

    def lines_once_ended(source: Any, execution: ExecutionRecord, since: Any = None) -> Any:
        if not expected:
            expected.append(execution.slot)
            expect_run_lines(logs, execution)
        return real_lines(source, execution, since)

    monkeypatch.setattr(runs, "read_lines", lines_once_ended)

    # When ChattyTask is triggered on the deployed stack
    code, output = cli("trigger", "ChattyTask", "--stack", STACK)

    # Then Lambda was asked for one asynchronous run, and the command waited for it to end
    assert code == 0, output
    execution = only_manual_run(store, "ChattyTask", before)
    assert [function for function, _ in fake_aws.invokes][-1].endswith(":function:ChattyFunction")
    assert execution.status is RunStatus.SUCCEEDED
    assert f"Manual run of ChattyTask: slot {execution.slot}, SUCCEEDED" in output
    assert 'Result: {"rows": 12, "table": "orders"}' in output
    # and printed the run's lines from the stack's log group, under their attempt
    request = execution.attempts[0].request_id
    assert f"── attempt 1, cronfleet-prod-ChattyFunction-Ab12Cd, request {request}, " in output
    assert "INFO  Counted rows  rows=12" in output
    assert f"REPORT RequestId: {request}" in output


def test_trigger_with_no_wait_returns_once_lambda_took_the_run(
    store: Store, fake_aws: FakeAws, logs: Stubber
) -> None:
    # When ChattyTask is triggered without waiting
    code, output = cli("trigger", "ChattyTask", "--stack", STACK, "--no-wait", "--json")

    # Then the command returns at once, says the run was taken, and reads no logs
    assert code == 0, output
    document = json.loads(output)
    assert document["invoked"] is True
    assert "log_lines" not in document
    assert "#manual-" in document["slot"]


def test_trigger_that_waits_longer_than_its_timeout_says_how_to_follow_the_run(
    store: Store, fake_aws: FakeAws, logs: Stubber
) -> None:
    # Given a Lambda that takes the invoke but does not run it (yet)
    fake_aws.run = lambda function, event: None
    before = {e.slot for e in store.executions("ChattyTask")}

    # When ChattyTask is triggered with a one-second wait
    code, output = cli("trigger", "ChattyTask", "--stack", STACK, "--timeout", "1")

    # Then it gives up waiting, exits 1, and says how to follow the run from here
    assert code == 1, output
    execution = only_manual_run(store, "ChattyTask", before)
    assert execution.status is RunStatus.PENDING
    follow = (
        f"cronfleet logs ChattyTask --slot {execution.slot} --stack {STACK} "
        "--region us-east-1 --follow"
    )
    assert f"It has not ended yet; follow it with: {follow}" in " ".join(output.split())


# --- logs -----------------------------------------------------------------------------------------


@pytest.fixture
def finished_run(store: Store, lambdas: LocalLambda) -> ExecutionRecord:
    """A manual run of ChattyTask, run to its end by the local runtime."""
    from cronfleet.lifecycle.attempts import Attempts

    task = store.get_task("ChattyTask")
    assert task is not None
    slot, invoked = Attempts(store, lambdas).start_manual_run(task, clock.now())
    assert invoked
    lambdas.drain()
    execution = store.get_execution("ChattyTask", slot)
    assert execution is not None
    assert execution.status is RunStatus.SUCCEEDED
    return execution


def test_logs_reads_the_runs_lines_from_the_stacks_log_group(
    finished_run: ExecutionRecord, logs: Stubber
) -> None:
    # Given the stack's log group, which holds the run's lines
    expect_run_lines(logs, finished_run)

    # When the run's logs are asked for
    code, output = cli("logs", "ChattyTask", "--stack", STACK, "--slot", finished_run.slot)

    # Then they come from that log group, in the order written
    assert code == 0, output
    assert f"lines from log group {GROUP} in us-east-1" in output
    request = finished_run.attempts[0].request_id
    expected = [
        f"START RequestId: {request}",
        "INFO  Counted rows  rows=12",
        f"END RequestId: {request}",
        f"REPORT RequestId: {request}",
    ]
    positions = [output.find(text) for text in expected]
    assert -1 not in positions, output
    assert positions == sorted(positions), output


def test_logs_follow_polls_from_the_last_line_seen_until_the_run_has_ended(
    store: Store, logs: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cronfleet.lifecycle.attempts import START_GRACE, Attempts
    from cronfleet.lifecycle.outcomes import AttemptOutcome

    # Given a manual run whose attempt is running, as a deployed function would have it
    task = store.get_task("ChattyTask")
    assert task is not None
    now = clock.now()
    slot = f"{now:%Y-%m-%dT%H:%M:%SZ}#manual-0f0f0f0f"
    store.create_manual_execution(task, slot, now, start_grace=START_GRACE)
    request = "0f0f0f0f-0000-4000-8000-000000000001"
    store.start_attempt(
        "ChattyTask",
        slot,
        1,
        request_id=request,
        started=now,
        deadline=now + START_GRACE,
        grace=START_GRACE,
    )
    running = store.get_execution("ChattyTask", slot)
    assert running is not None
    (attempt,) = running.attempts
    assert attempt.dispatched_at is not None
    start = iso_ms(attempt.dispatched_at) - 60_000
    run_pattern = cloudwatch.run_pattern("ChattyTask", slot)
    first = {
        "eventId": "1",
        "timestamp": ms(now),
        "logStreamName": STREAM,
        "message": f"START RequestId: {request} Version: $LATEST\n",
    }
    last = {
        "eventId": "2",
        "timestamp": ms(now) + 700,
        "logStreamName": STREAM,
        "message": f"REPORT RequestId: {request}\tDuration: 700.00 ms\n",
    }
    # the first look: the run goes on, so the window has no end
    logs.add_response(
        "filter_log_events",
        {"events": []},
        {"logGroupName": GROUP, "filterPattern": run_pattern, "startTime": start},
    )
    logs.add_response(
        "filter_log_events",
        {"events": [first]},
        {"logGroupName": GROUP, "filterPattern": f'?"{request}"', "startTime": start},
    )
    # meanwhile the attempt ends
    looks: list[float] = []

    def between_looks(seconds: float) -> None:
        looks.append(seconds)
        if len(looks) == 1:
            ended = AttemptOutcome(
                status=RunStatus.SUCCEEDED, ended_at=clock.now(), duration_ms=700
            )
            Attempts(store).conclude(task, slot, 1, ended, request_id=request)

    monkeypatch.setattr(runs, "sleep", between_looks)
    # the next two look from the last line seen, up to a while after the run ended
    real_lines = runs.read_lines
    starts = iter([ms(now), ms(now) + 700])

    def lines(source: Any, execution: ExecutionRecord, since: Any = None) -> Any:
        if execution.status.is_final:
            window = {
                "logGroupName": GROUP,
                "startTime": next(starts),
                "endTime": window_of(execution)["endTime"],
            }
            logs.add_response(
                "filter_log_events", {"events": []}, {**window, "filterPattern": run_pattern}
            )
            logs.add_response(
                "filter_log_events",
                {"events": [first, last]},
                {**window, "filterPattern": f'?"{request}"'},
            )
        return real_lines(source, execution, since)

    monkeypatch.setattr(runs, "read_lines", lines)

    # When the run is followed
    code, output = cli("logs", "ChattyTask", "--stack", STACK, "--slot", slot, "--follow")

    # Then each line was printed once, and the command ended with the run
    assert code == 0, output
    assert output.count(f"START RequestId: {request}") == 1
    assert output.count(f"REPORT RequestId: {request}") == 1
    assert output.rstrip().endswith(f"Run ChattyTask {slot}: SUCCEEDED, 1 attempt")
    assert looks == [runs.CLOUDWATCH_POLL_SECONDS] * 2


def test_a_stack_from_before_the_shared_log_group_is_read_from_the_functions_own(
    finished_run: ExecutionRecord, fake_aws: FakeAws, logs: Stubber
) -> None:
    # Given a stack deployed before its functions shared one log group
    del fake_aws.outputs["FunctionLogGroupName"]
    expect_run_lines(logs, finished_run, group="/aws/lambda/ChattyFunction")

    # When a run's logs are asked for
    result = CliRunner().invoke(
        app, ["logs", "ChattyTask", "--stack", STACK, "--slot", finished_run.slot]
    )

    # Then they are read from the task function's own group, and stderr says what is missing
    assert result.exit_code == 0, result.output
    assert "lines from log group /aws/lambda/ChattyFunction in us-east-1" in result.stdout
    assert "has no FunctionLogGroupName output" in " ".join(result.stderr.split())


def test_a_log_group_that_cannot_be_read_is_an_error_that_says_why(
    finished_run: ExecutionRecord, logs: Stubber
) -> None:
    # Given a log group the caller may not read
    logs.add_client_error(
        "filter_log_events",
        service_error_code="AccessDeniedException",
        service_message="User is not authorized to perform: logs:FilterLogEvents",
        http_status_code=400,
    )

    # When a run's logs are asked for
    code, output = cli("logs", "ChattyTask", "--stack", STACK, "--slot", finished_run.slot)

    # Then the command exits 1 and says which group and why
    assert code == 1, output
    assert (
        f"Error: cannot read log group {GROUP} in us-east-1: AccessDeniedException: User is not "
        "authorized to perform: logs:FilterLogEvents"
    ) in " ".join(output.split())
