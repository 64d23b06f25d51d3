"""The operator commands (status, history, trigger, pause, resume, audit) against a real stack.

A local stack is started here the way `make run` starts one: DynamoDB Local with the template's
tables, the template's tasks applied through the registry's code, and ``stack.json`` in the
state directory. This test process is the stack's owner, so ``--local --state-dir D`` attaches
to it as a second terminal would. ``--stack NAME`` is driven against CloudFormation's own error
answers: a botocore Stubber on a real client, and a loopback endpoint for the command's own
client.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from cronsim import CronSim
from typer.testing import CliRunner

from cronfleet import clock
from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet.store import Store
from cronfleet_tools.cli.app import app
from cronfleet_tools.local import STACK_FILE
from cronfleet_tools.local.stack import LocalStack
from cronfleet_tools.local.topic import LocalTopic
from cronfleet_tools.stack_target import TargetError, deployed
from cronfleet_tools.template import load_template

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_TASKS = ["CheckIpTask", "ExampleTask", "HourlyDigestTask", "WeeklyDigestTask"]
# A name that resolves nowhere (RFC 6761), so the Http task fails the same way on any machine
# and nothing leaves it.
UNRESOLVABLE_HOST = "checkip.cronfleet.invalid"

runner = CliRunner()


@dataclass(frozen=True)
class RunningStack:
    state_dir: Path
    store: Store
    registered_at: datetime  # when its tasks were applied


@pytest.fixture(scope="module")
def _stacks() -> Iterator[list[tuple[LocalStack, LocalTopic]]]:
    started: list[tuple[LocalStack, LocalTopic]] = []
    yield started
    for stack, topic in started:
        stack.stop()
        topic.stop()


def start_stack(
    state_dir: Path, template: Path, started: list[tuple[LocalStack, LocalTopic]]
) -> RunningStack:
    topic = LocalTopic(state_dir / "alerts.jsonl").start()
    stack = LocalStack(state_dir, template, topic_endpoint_url=topic.endpoint_url)
    started.append((stack, topic))
    stack.start()
    registered_at = clock.now()
    stack.apply_tasks(stack.validate(), registered_at)
    return RunningStack(state_dir, stack.store, registered_at)


@pytest.fixture(scope="module")
def fresh_stack(
    tmp_path_factory: pytest.TempPathFactory, _stacks: list[tuple[LocalStack, LocalTopic]]
) -> RunningStack:
    """The repository's template.yaml, as deployed and never touched: only read here."""
    state_dir = tmp_path_factory.mktemp("fresh") / ".cronfleet"
    return start_stack(state_dir, REPO_ROOT / "template.yaml", _stacks)


@pytest.fixture(scope="module")
def working_stack(
    tmp_path_factory: pytest.TempPathFactory, _stacks: list[tuple[LocalStack, LocalTopic]]
) -> RunningStack:
    """template.yaml with CheckIpTask's URL on a host that resolves nowhere. Tests here run
    tasks and change their state; each uses its own task, or its own manual slot."""
    directory = tmp_path_factory.mktemp("working")
    template = load_template(REPO_ROOT / "template.yaml")
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = str(REPO_ROOT / resource["Properties"]["CodeUri"])
    template["Resources"]["CheckIpTask"]["Properties"]["Http"]["Url"] = (
        f"https://{UNRESOLVABLE_HOST}/"
    )
    path = directory / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return start_stack(directory / ".cronfleet", path, _stacks)


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Dummy credentials and no AWS configuration of the developer's: nothing can reach an
    # account. A wide terminal keeps messages on one line.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "cronfleetlocal")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cronfleetlocal")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_CLOUDFORMATION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("COLUMNS", "400")


def cli(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(arg) for arg in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def flat(output: str) -> str:
    """The text of an error box, on one line: borders dropped, whitespace collapsed."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def local(stack: RunningStack) -> tuple[str, str, str]:
    return ("--local", "--state-dir", str(stack.state_dir))


def next_local_run(expression: str, timezone: str, after: datetime) -> datetime:
    """The next run of a Unix cron expression, by cronsim: an engine independent of ours."""
    return next(CronSim(expression, after.astimezone(ZoneInfo(timezone)))).astimezone(UTC)


def trigger_slot(output: str, task: str) -> str:
    match = re.search(rf"Manual run of {task}: slot (\S+), (\w+)", output)
    assert match, output
    return match.group(1)


# --- status ----------------------------------------------------------------------------------


def test_status_lists_every_task_of_the_template_as_new(fresh_stack: RunningStack) -> None:
    code, output = cli("status", *local(fresh_stack))

    assert code == 0, output
    assert f"Tasks of the local stack in {fresh_stack.state_dir}/" in output
    rows = {
        task: [line for line in output.splitlines() if f" {task} " in line]
        for task in TEMPLATE_TASKS
    }
    for task, lines in rows.items():
        assert len(lines) == 1, (task, output)
        assert " new " in lines[0], lines[0]


def test_status_json_has_every_task_with_its_schedule_next_run_and_health(
    fresh_stack: RunningStack,
) -> None:
    code, output = cli("status", *local(fresh_stack), "--json")

    assert code == 0, output
    statuses = {status["task"]: status for status in json.loads(output)}
    assert sorted(statuses) == TEMPLATE_TASKS
    for status in statuses.values():
        assert status["health"] == "new"
        assert status["runs"] == 0
        assert status["last_status"] is None
        assert isinstance(status["schedule_text"], str)
        assert status["schedule_text"]
    # the schedules as the template writes them
    assert statuses["CheckIpTask"]["schedule"] == "rate(15 minutes)"
    assert statuses["ExampleTask"]["schedule"] == "cron(0 9 ? * MON-FRI *)"
    assert statuses["ExampleTask"]["timezone"] == "Europe/London"
    # next runs as another cron engine computes them from the time the tasks were registered
    registered = fresh_stack.registered_at
    expected = {
        "ExampleTask": next_local_run("0 9 * * 1-5", "Europe/London", registered),
        "HourlyDigestTask": next_local_run("0 * * * *", "UTC", registered),
        "WeeklyDigestTask": next_local_run("0 8 * * 1", "UTC", registered),
    }
    for task, moment in expected.items():
        assert statuses[task]["next_run"] == moment.strftime("%Y-%m-%dT%H:%M:%SZ"), task


# --- trigger and history ---------------------------------------------------------------------


def test_trigger_runs_the_task_with_the_payload_given_and_records_it_as_manual(
    working_stack: RunningStack,
) -> None:
    # when ExampleTask is triggered with a payload of its own
    code, output = cli("trigger", "ExampleTask", *local(working_stack), "--payload", '{"x": 1}')

    # then the run happened before the command returned, and succeeded
    assert code == 0, output
    slot = trigger_slot(output, "ExampleTask")
    assert f"slot {slot}, SUCCEEDED\nResult: " in output
    assert "#manual-" in slot
    # and the ledger has it, as a manual run whose result echoes the payload
    execution = working_stack.store.get_execution("ExampleTask", slot)
    assert execution is not None
    assert (execution.status, execution.trigger) == (RunStatus.SUCCEEDED, Trigger.MANUAL)
    assert execution.payload == {"x": 1}
    (attempt,) = execution.attempts
    assert attempt.status is RunStatus.SUCCEEDED
    assert attempt.result == {"ok": True, "echo": {"x": 1}}

    # and history shows it
    code, output = cli("history", "ExampleTask", *local(working_stack), "--json")
    assert code == 0, output
    runs = {run["slot"]: run for run in json.loads(output)}
    assert runs[slot]["trigger"] == "manual"
    assert runs[slot]["status"] == "SUCCEEDED"
    assert [a["result"] for a in runs[slot]["attempts"]] == [{"ok": True, "echo": {"x": 1}}]
    code, output = cli("history", "ExampleTask", *local(working_stack))
    assert code == 0, output
    assert "of ExampleTask, in time order" in output
    assert slot in output


def test_trigger_without_a_payload_runs_with_the_tasks_own(working_stack: RunningStack) -> None:
    code, output = cli("trigger", "HourlyDigestTask", *local(working_stack), "--json")

    assert code == 0, output
    document = json.loads(output)
    assert (document["task"], document["invoked"]) == ("HourlyDigestTask", True)
    assert (document["status"], document["trigger"]) == ("SUCCEEDED", "manual")
    assert document["attempts"][0]["result"] == {"ok": True, "echo": {"digest": "hourly"}}
    execution = working_stack.store.get_execution("HourlyDigestTask", document["slot"])
    assert execution is not None
    assert execution.status is RunStatus.SUCCEEDED


def test_an_http_task_that_cannot_reach_its_host_records_why(
    working_stack: RunningStack,
) -> None:
    # when the Http task is triggered, and its host does not resolve
    code, output = cli("trigger", "CheckIpTask", *local(working_stack))

    # then the command fails (exit 1) and says why; the built-in HTTP function recorded the
    # failure, and as for any failed attempt, the task's retry policy (3 attempts) then applies
    assert code == 1, output
    assert f"HttpCallFailed: could not resolve {UNRESOLVABLE_HOST}" in output
    slot = trigger_slot(output, "CheckIpTask")
    execution = working_stack.store.get_execution("CheckIpTask", slot)
    assert execution is not None
    assert execution.trigger is Trigger.MANUAL
    assert execution.status is RunStatus.RETRY_WAIT
    assert f"slot {slot}, RETRY_WAIT" in output
    (attempt,) = execution.attempts
    assert attempt.status is RunStatus.FAILED
    assert attempt.error_type == "HttpCallFailed"
    assert attempt.error_message is not None
    assert UNRESOLVABLE_HOST in attempt.error_message
    # and history shows the error
    code, output = cli("history", "CheckIpTask", *local(working_stack), "--json")
    assert code == 0, output
    (run,) = [run for run in json.loads(output) if run["slot"] == slot]
    assert run["attempts"][0]["error_type"] == "HttpCallFailed"
    # and says when the next attempt is due, in JSON and in the table
    assert execution.deadline_at is not None
    due = execution.deadline_at.isoformat().replace("+00:00", "Z")
    assert run["next_attempt_at"] == due
    code, output = cli("history", "CheckIpTask", *local(working_stack))
    assert code == 0, output
    assert f"due {execution.deadline_at:%Y-%m-%d %H:%M}Z" in " ".join(output.split())


def test_the_ledger_audits_clean_after_a_manual_run(working_stack: RunningStack) -> None:
    code, output = cli("trigger", "ExampleTask", *local(working_stack))
    assert code == 0, output

    code, output = cli("audit", *local(working_stack))

    assert code == 0, output
    assert "Clean: every expected slot has exactly one ledger entry." in output
    code, output = cli("audit", *local(working_stack), "--json")
    assert code == 0, output
    assert json.loads(output)["ok"] is True


# --- pause and resume ------------------------------------------------------------------------


def test_pause_and_resume_change_the_task_once_and_refuse_a_repeat(
    working_stack: RunningStack,
) -> None:
    store, task = working_stack.store, "WeeklyDigestTask"

    # when it is paused
    code, output = cli("pause", task, *local(working_stack))

    # then the task is paused, and status says so
    assert code == 0, output
    assert f"Paused {task}." in output
    record = store.get_task(task)
    assert record is not None
    assert record.paused
    code, output = cli("status", *local(working_stack), "--json")
    (status,) = [s for s in json.loads(output) if s["task"] == task]
    assert (status["health"], status["next_run"]) == ("paused", None)

    # and pausing it again is refused as the state it is in, not as a usage error
    code, output = cli("pause", task, *local(working_stack))
    assert code == 1, output
    assert f"Error: task '{task}' is already paused" in flat(output)
    assert "Usage:" not in output
    record = store.get_task(task)
    assert record is not None
    assert record.paused

    # when it is resumed
    before = datetime.now(UTC)
    code, output = cli("resume", task, *local(working_stack))

    # then it is scheduled again from now: its next Monday 08:00 UTC
    assert code == 0, output
    record = store.get_task(task)
    assert record is not None
    assert not record.paused
    assert record.next_run is not None
    assert before < record.next_run <= before + timedelta(days=7)
    assert (record.next_run.weekday(), record.next_run.hour, record.next_run.minute) == (0, 8, 0)
    assert f"Resumed {task}; next run {record.next_run:%Y-%m-%d %H:%M}Z" in output

    # and resuming it again is refused, as the state it is in
    code, output = cli("resume", task, *local(working_stack))
    assert code == 1, output
    assert f"Error: task '{task}' is not paused" in flat(output)
    assert "Usage:" not in output


def test_status_says_how_long_ago_the_last_run_was_and_that_it_was_manual(
    working_stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cronfleet_tools.cli import common

    # Given a manual run of ExampleTask just now, and a wide terminal
    code, output = cli("trigger", "ExampleTask", *local(working_stack))
    assert code == 0, output
    monkeypatch.setattr(common.console, "width", 200)

    # When the status table is shown
    code, output = cli("status", *local(working_stack))

    # Then the task's last run reads as an age and a trigger, not as a slot id
    assert code == 0, output
    [row] = [line for line in output.splitlines() if "ExampleTask" in line]
    assert re.search(r"\b\d+(s|m) ago \(manual\)", row), row
    assert "#manual-" not in output


# --- describe: one task whole ------------------------------------------------------------------


def test_describe_json_gives_the_definition_the_next_runs_and_the_counters(
    fresh_stack: RunningStack,
) -> None:
    # Given the sample stack, whose ExampleTask runs at 09:00 London time on weekdays
    before = datetime.now(UTC)

    # When ExampleTask is described as JSON
    code, output = cli("describe", "ExampleTask", *local(fresh_stack), "--json")

    # Then its next five runs are the ones an independent cron engine gives
    assert code == 0, output
    described = json.loads(output)
    expected, after = [], before
    for _ in range(5):
        after = next_local_run("0 9 * * 1-5", "Europe/London", after)
        expected.append(after.isoformat().replace("+00:00", "Z"))
    assert described["next_runs"] == expected
    # and the definition and counters are those stored
    assert described["definition"]["Schedule"] == "cron(0 9 ? * MON-FRI *)"
    assert described["definition"]["Payload"] == {"greeting": "hello"}
    assert described["health"] == "new"
    assert described["stats"]["runs"] == 0
    assert described["last_runs"] == []


@pytest.mark.parametrize("width", [80, 200])
def test_describe_reads_as_a_page_that_fits_the_terminal(
    fresh_stack: RunningStack, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cronfleet_tools.cli import common

    # Given a terminal of this width
    monkeypatch.setattr(common.console, "width", width)

    # When ExampleTask is described
    code, output = cli("describe", "ExampleTask", *local(fresh_stack))

    # Then no line is wider than the terminal, and the page says what the task does, in words
    assert code == 0, output
    assert max(len(line) for line in output.splitlines()) <= width
    page = " ".join(output.split())
    assert "ExampleTask new" in page
    assert "At 09:00, Monday through Friday (Europe/London)" in page
    assert "up to 3 attempts, 60 s apart" in page
    assert 'Payload {"greeting": "hello"}' in page
    assert page.count("09:00Z (in ") == 5
    assert "No runs yet." in page


# --- bad input: exit 2, the argument named, nothing changed ----------------------------------


@pytest.mark.parametrize("command", ["trigger", "history", "describe", "logs", "pause", "resume"])
def test_an_unknown_task_is_refused_with_the_known_ones(
    fresh_stack: RunningStack, command: str
) -> None:
    code, output = cli(command, "NightlyBackup", *local(fresh_stack))

    assert code == 2, output
    assert (
        f"Invalid value for TASK: no task 'NightlyBackup' in the local stack in "
        f"{fresh_stack.state_dir}/; known tasks: {', '.join(TEMPLATE_TASKS)}"
    ) in flat(output)


@pytest.mark.parametrize("typed", ["ExampleTsk", "exampletask"])
def test_a_near_miss_of_a_task_name_is_answered_with_the_one_meant(
    fresh_stack: RunningStack, typed: str
) -> None:
    # Given a stack with ExampleTask
    # When a person mistypes its name
    code, output = cli("history", typed, *local(fresh_stack))

    # Then the refusal names the task they meant, before the list of the others
    assert code == 2, output
    assert f"no task '{typed}' in the local stack in {fresh_stack.state_dir}/; did you mean " in (
        flat(output)
    )
    assert "'ExampleTask'?; known tasks: " in flat(output)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{bad", "Invalid value for --payload: not JSON: Expecting property name"),
        ("[1]", "Invalid value for --payload: must be a JSON object, not list"),
        ('"text"', "Invalid value for --payload: must be a JSON object, not str"),
    ],
)
def test_a_payload_that_is_not_a_json_object_is_refused_before_anything_runs(
    fresh_stack: RunningStack, payload: str, message: str
) -> None:
    code, output = cli("trigger", "ExampleTask", *local(fresh_stack), "--payload", payload)

    assert code == 2, output
    assert message in flat(output)
    assert fresh_stack.store.executions("ExampleTask") == []


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["pause", "ExampleTask"], "no local stack is running in {state_dir}/: "),
        # A reading command would also read a stopped one: it says there is neither.
        (["status"], "no local stack in {state_dir}/: it has no stack.json (a running stack) "),
    ],
    ids=["changing", "reading"],
)
def test_local_without_a_running_stack_says_how_to_start_one(
    command: list[str], message: str, tmp_path: Path
) -> None:
    # given a state directory no stack ran in
    state_dir = tmp_path / ".cronfleet"

    # when a command acts on its local stack
    code, output = cli(*command, "--local", "--state-dir", state_dir)

    # then it says there is none there, and how to start one
    assert code == 2, output
    assert f"Invalid value for --state-dir: {message.format(state_dir=state_dir)}" in flat(output)
    assert "start one with `make run`" in flat(output)


def test_a_stack_file_left_by_a_process_that_is_gone_is_not_running(
    fresh_stack: RunningStack, tmp_path: Path
) -> None:
    # given the stack file of a stack whose process has exited
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid = int(finished.stdout)
    stack_file = json.loads((fresh_stack.state_dir / STACK_FILE).read_text())
    state_dir = tmp_path / ".cronfleet"
    state_dir.mkdir()
    (state_dir / STACK_FILE).write_text(json.dumps({**stack_file, "pid": dead_pid}))

    code, output = cli("history", "ExampleTask", "--local", "--state-dir", state_dir)

    assert code == 2, output
    assert (
        f"Invalid value for --state-dir: the local stack in {state_dir}/ is not running "
        f"(its process {dead_pid} is gone); start it with `make run`"
    ) in flat(output)


def test_a_stack_file_that_is_not_one_is_refused(tmp_path: Path) -> None:
    state_dir = tmp_path / ".cronfleet"
    state_dir.mkdir()
    (state_dir / STACK_FILE).write_text('{"endpoint_url": "http://127.0.0.1:1"}')

    code, output = cli("status", "--local", "--state-dir", state_dir)

    assert code == 2, output
    assert f"{state_dir / STACK_FILE}: not a cronfleet stack file" in flat(output)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Invalid value for --stack: say which stack: --local"),
        (["--local", "--stack", "prod"], "Invalid value for --stack: choose one: --local or"),
    ],
    ids=["neither", "both"],
)
@pytest.mark.parametrize(
    "command",
    [["status"], ["history", "ExampleTask"], ["trigger", "ExampleTask"], ["pause", "ExampleTask"]],
)
def test_a_command_needs_exactly_one_of_local_and_stack(
    command: list[str],
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a directory with no local stack in it
    monkeypatch.chdir(tmp_path)

    # When a command names neither stack, or both
    code, output = cli(*command, *args)

    # Then it is refused, naming what to give

    assert code == 2, output
    assert message in flat(output)


@pytest.mark.parametrize("command", [["status"], ["history", "ExampleTask"]])
def test_the_one_local_stack_of_this_directory_is_used_without_local(
    fresh_stack: RunningStack, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a terminal in the directory whose .cronfleet holds a running stack
    monkeypatch.chdir(fresh_stack.state_dir.parent)

    # When a command names no stack at all
    code, output = cli(*command)

    # Then it acts on that stack, as with --local
    assert code == 0, output
    assert "ExampleTask" in output


# --- --stack NAME: a deployed stack, found by its outputs ------------------------------------


@pytest.fixture
def cloudformation() -> Any:
    return boto3.client(
        "cloudformation",
        region_name="us-east-1",
        aws_access_key_id="cronfleetlocal",
        aws_secret_access_key="cronfleetlocal",
    )


def described(outputs: dict[str, str]) -> dict[str, Any]:
    """A DescribeStacks answer for one stack with these outputs."""
    return {
        "Stacks": [
            {
                "StackName": "cronfleet-prod",
                "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/cronfleet-prod/1",
                "CreationTime": datetime(2026, 11, 1, tzinfo=UTC),
                "StackStatus": "UPDATE_COMPLETE",
                "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
            }
        ]
    }


def test_a_stack_that_does_not_exist_is_named_with_its_region(cloudformation: Any) -> None:
    with Stubber(cloudformation) as stubber:
        stubber.add_client_error(
            "describe_stacks",
            service_error_code="ValidationError",
            service_message="Stack with id cronfleet-prod does not exist",
            http_status_code=400,
            expected_params={"StackName": "cronfleet-prod"},
        )

        with pytest.raises(TargetError) as refused:
            deployed("cronfleet-prod", None, cloudformation=cloudformation)

        stubber.assert_no_pending_responses()
    assert refused.value.option == "--stack"
    assert str(refused.value) == "no stack named 'cronfleet-prod' in us-east-1"


def test_a_stack_that_cannot_be_read_says_why(cloudformation: Any) -> None:
    with Stubber(cloudformation) as stubber:
        stubber.add_client_error(
            "describe_stacks",
            service_error_code="AccessDenied",
            service_message="User is not authorized to perform: cloudformation:DescribeStacks",
            http_status_code=403,
            expected_params={"StackName": "cronfleet-prod"},
        )

        with pytest.raises(TargetError) as refused:
            deployed("cronfleet-prod", None, cloudformation=cloudformation)

        stubber.assert_no_pending_responses()
    assert str(refused.value) == (
        "cannot read stack 'cronfleet-prod' in us-east-1: "
        "User is not authorized to perform: cloudformation:DescribeStacks"
    )


@pytest.mark.parametrize(
    ("outputs", "missing"),
    [
        ({"TasksTableName": "tasks"}, "ExecutionsTableName"),
        ({"ExecutionsTableName": "executions"}, "TasksTableName"),
        ({}, "TasksTableName or ExecutionsTableName"),
    ],
)
def test_a_stack_without_the_table_outputs_is_not_taken_for_cronfleet(
    cloudformation: Any, outputs: dict[str, str], missing: str
) -> None:
    with Stubber(cloudformation) as stubber:
        stubber.add_response(
            "describe_stacks", described(outputs), expected_params={"StackName": "cronfleet-prod"}
        )

        with pytest.raises(TargetError) as refused:
            deployed("cronfleet-prod", None, cloudformation=cloudformation)

        stubber.assert_no_pending_responses()
    assert str(refused.value) == (
        f"stack 'cronfleet-prod' in us-east-1 has no {missing} output: is it a cronfleet stack, "
        "and fully deployed?"
    )


def test_a_cronfleet_stack_is_read_through_its_table_outputs(cloudformation: Any) -> None:
    with Stubber(cloudformation) as stubber:
        stubber.add_response(
            "describe_stacks",
            described(
                {
                    "TasksTableName": "cronfleet-prod-TasksTable-1A2B",
                    "ExecutionsTableName": "cronfleet-prod-ExecutionsTable-3C4D",
                    "HttpTaskFunctionName": "cronfleet-prod-HttpTaskFunction-5E6F",
                }
            ),
            expected_params={"StackName": "cronfleet-prod"},
        )

        target = deployed("cronfleet-prod", None, cloudformation=cloudformation)

        stubber.assert_no_pending_responses()
    assert target.store.tasks_table == "cronfleet-prod-TasksTable-1A2B"
    assert target.store.executions_table == "cronfleet-prod-ExecutionsTable-3C4D"
    assert target.store.client.meta.region_name == "us-east-1"
    assert target.description == "stack cronfleet-prod in us-east-1"


@dataclass
class FakeCloudFormation:
    """A loopback endpoint answering every request as CloudFormation answers DescribeStacks
    for a stack that does not exist."""

    server: ThreadingHTTPServer
    requests: list[tuple[dict[str, list[str]], str]]

    @property
    def endpoint_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"


@pytest.fixture
def fake_cloudformation() -> Iterator[FakeCloudFormation]:
    requests: list[tuple[dict[str, list[str]], str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            form = parse_qs(body)
            requests.append((form, self.headers.get("Authorization", "")))
            name = form.get("StackName", [""])[0]
            answer = (
                '<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
                "<Error><Type>Sender</Type><Code>ValidationError</Code>"
                f"<Message>Stack with id {name} does not exist</Message></Error>"
                "<RequestId>5ccc7dcd-744c-11e5-be70-1b08c228efb3</RequestId></ErrorResponse>"
            ).encode()
            self.send_response(400)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield FakeCloudFormation(server, requests)
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("region_args", "region"), [([], "us-east-1"), (["--region", "eu-west-2"], "eu-west-2")]
)
def test_status_of_a_stack_that_does_not_exist_exits_2_naming_it(
    fake_cloudformation: FakeCloudFormation,
    monkeypatch: pytest.MonkeyPatch,
    region_args: list[str],
    region: str,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", fake_cloudformation.endpoint_url)

    code, output = cli("status", "--stack", "nope", *region_args)

    assert code == 2, output
    assert f"Invalid value for --stack: no stack named 'nope' in {region}" in flat(output)
    # one DescribeStacks request, for that stack, signed for that region
    ((form, authorization),) = fake_cloudformation.requests
    assert form == {
        "Action": ["DescribeStacks"],
        "Version": ["2010-05-15"],
        "StackName": ["nope"],
    }
    assert f"/{region}/cloudformation/aws4_request" in authorization


def test_audit_of_a_stack_that_does_not_exist_exits_2_naming_it(
    fake_cloudformation: FakeCloudFormation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", fake_cloudformation.endpoint_url)

    code, output = cli("audit", "--stack", "nope")

    assert code == 2, output
    assert "Invalid value for --stack: no stack named 'nope' in us-east-1" in flat(output)
    assert [form["StackName"] for form, _ in fake_cloudformation.requests] == [["nope"]]
