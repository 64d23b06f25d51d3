"""A stopped local stack read straight from its state directory: status, describe, history, audit.

The stack is started here the way `make run` starts one (DynamoDB Local on the state directory's
``dynamodb/``, the template's tasks applied), worked through the commands as a person would (a
manual run, a pause), and stopped. The commands that only read then find its data there, with a
DynamoDB Local of their own for as long as they run; the commands that change things still say
to start it. Nothing a reader does may change the directory for the next `cronfleet run`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cronfleet import clock
from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet_tools.cli.app import app
from cronfleet_tools.cli.common import utc_text
from cronfleet_tools.local import STACK_FILE
from cronfleet_tools.local.dynamodb_local import DynamoDBLocal
from cronfleet_tools.local.lockfile import LockFile, LockHeld
from cronfleet_tools.local.stack import READER_KEY, RUNNER_LOCK, LocalStack
from cronfleet_tools.local.topic import LocalTopic

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
TEMPLATE_TASKS = ["CheckIpTask", "ExampleTask", "HourlyDigestTask", "WeeklyDigestTask"]
READERS = [["status"], ["describe", "ExampleTask"], ["history", "ExampleTask"], ["audit"]]
STOPPED_NOTE = "no runner is up; this is its data as it was left."

runner = CliRunner()


@dataclass(frozen=True)
class StoppedStack:
    state_dir: Path
    registered_at: datetime  # when its tasks were applied
    manual_slot: str  # the slot of the manual run made while it ran
    engine_log: str  # the runner's dynamodb.log, as the runner left it


def cli(*args: str | Path) -> Result:
    result = runner.invoke(app, [str(arg) for arg in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def flat(output: str) -> str:
    """The text of an error box, on one line: borders dropped, whitespace collapsed."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def local(state_dir: Path) -> tuple[str, str, str]:
    return ("--local", "--state-dir", str(state_dir))


def lock_is_free(state_dir: Path) -> bool:
    lock = LockFile(state_dir / RUNNER_LOCK)
    try:
        lock.acquire()
    except LockHeld:
        return False
    lock.release()
    return True


def _environment(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    # Dummy credentials and no AWS configuration of the developer's: nothing can reach an
    # account. A wide terminal keeps messages on one line.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "cronfleetlocal")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cronfleetlocal")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_REGION", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "no-credentials"))
    monkeypatch.setenv("COLUMNS", "400")


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _environment(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def stopped_stack(tmp_path_factory: pytest.TempPathFactory) -> StoppedStack:
    """The repository's template run, given a manual run of ExampleTask and a pause of
    HourlyDigestTask through the commands, then stopped as Ctrl-C stops it."""
    directory = tmp_path_factory.mktemp("stopped")
    state_dir = directory / ".cronfleet"
    with pytest.MonkeyPatch.context() as monkeypatch:
        _environment(monkeypatch, directory)
        topic = LocalTopic(state_dir / "alerts.jsonl").start()
        stack = LocalStack(state_dir, TEMPLATE, topic_endpoint_url=topic.endpoint_url)
        try:
            stack.start()
            registered_at = clock.now()
            stack.apply_tasks(stack.validate(), registered_at)
            triggered = cli("trigger", "ExampleTask", *local(state_dir))
            assert triggered.exit_code == 0, triggered.output
            match = re.search(r"slot (\S+), SUCCEEDED", triggered.output)
            assert match, triggered.output
            paused = cli("pause", "HourlyDigestTask", *local(state_dir))
            assert paused.exit_code == 0, paused.output
        finally:
            stack.stop()
            topic.stop()
    assert not (state_dir / STACK_FILE).exists()
    return StoppedStack(
        state_dir, registered_at, match.group(1), (state_dir / "dynamodb.log").read_text()
    )


# --- reading a stopped stack -------------------------------------------------------------------


def test_status_json_of_a_stopped_stack_has_the_state_it_was_left_in(
    stopped_stack: StoppedStack,
) -> None:
    # given a local stack that ran, was worked on, and was stopped
    # when its status is asked for as JSON, from its state directory
    result = cli("status", *local(stopped_stack.state_dir), "--json")

    # then every task is there as it was left: the manual run, the pause
    assert result.exit_code == 0, result.output
    statuses = {status["task"]: status for status in json.loads(result.stdout)}
    assert sorted(statuses) == TEMPLATE_TASKS
    assert statuses["ExampleTask"]["runs"] == 1
    assert statuses["ExampleTask"]["last_status"] == "SUCCEEDED"
    assert statuses["HourlyDigestTask"]["health"] == "paused"
    # and stderr says the data is a stopped stack's, without spoiling the JSON
    assert f"Reading the stopped local stack in {stopped_stack.state_dir}/" in result.stderr
    assert STOPPED_NOTE in " ".join(result.stderr.split())


@pytest.mark.parametrize("width", [80, 200])
def test_the_status_table_of_a_stopped_stack_says_so_and_fits_the_terminal(
    stopped_stack: StoppedStack, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cronfleet_tools.cli import common

    # given a terminal of this width
    monkeypatch.setattr(common.console, "width", width)

    # when the stopped stack's status table is shown
    result = cli("status", *local(stopped_stack.state_dir))

    # then its title says the stack is stopped, every task has its row, and nothing overflows
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= width
    assert "Tasks of the stopped local stack in" in " ".join(result.stdout.split())
    for task in TEMPLATE_TASKS:
        assert task[:8] in result.stdout, task
    assert "paused" in result.stdout


def test_history_and_describe_of_a_stopped_stack_show_the_run_it_kept(
    stopped_stack: StoppedStack,
) -> None:
    # given a stopped stack with one manual run of ExampleTask
    # when its history and its description are read
    history = cli("history", "ExampleTask", *local(stopped_stack.state_dir), "--json")
    described = cli("describe", "ExampleTask", *local(stopped_stack.state_dir), "--json")

    # then both show that run, as it ended
    assert history.exit_code == 0, history.output
    [run] = json.loads(history.stdout)
    assert (run["slot"], run["status"], run["trigger"]) == (
        stopped_stack.manual_slot,
        RunStatus.SUCCEEDED.value,
        Trigger.MANUAL.value,
    )
    assert described.exit_code == 0, described.output
    document = json.loads(described.stdout)
    assert [last["slot"] for last in document["last_runs"]] == [stopped_stack.manual_slot]


@pytest.mark.parametrize("width", [80, 200])
def test_the_audit_of_a_stopped_stack_counts_the_manual_run_its_slots_are_too_young_for(
    stopped_stack: StoppedStack, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cronfleet_tools.cli import common

    # given a stack stopped within minutes of its tasks' registration, and a terminal this wide
    monkeypatch.setattr(common.console, "width", width)
    registered = utc_text(stopped_stack.registered_at)

    # when its ledger is audited over the default window, the last 24 hours
    result = cli("audit", *local(stopped_stack.state_dir))

    # then the header says no slot was old enough to check, yet the manual run is counted
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= width
    header = " ".join(result.stdout.split())
    assert "Ledger audit of the stopped local stack in" in header
    assert "Checked: no scheduled slots, 1 manual run" in header
    assert (
        f"{', '.join(TEMPLATE_TASKS)}: no slot checked: registered at {registered}, "
        "less than 5 minutes before now."
    ) in header
    json_result = cli("audit", *local(stopped_stack.state_dir), "--json")
    assert json_result.exit_code == 0, json_result.output
    document = json.loads(json_result.stdout)
    assert document["audited"]["scheduled_slots"] == 0
    assert document["audited"]["manual_runs"] == 1
    counts = {task["task_id"]: task["counts"]["manual"] for task in document["tasks"]}
    assert counts == {
        "CheckIpTask": 0,
        "ExampleTask": 1,
        "HourlyDigestTask": 0,
        "WeeklyDigestTask": 0,
    }


def test_reading_a_stopped_stack_leaves_it_as_the_next_run_finds_it(
    stopped_stack: StoppedStack,
) -> None:
    # given a stopped stack that has just been read
    result = cli("status", *local(stopped_stack.state_dir))
    assert result.exit_code == 0, result.output

    # then no stack file was written, the directory is not held, the runner's log is untouched
    assert not (stopped_stack.state_dir / STACK_FILE).exists()
    assert lock_is_free(stopped_stack.state_dir)
    assert (stopped_stack.state_dir / "dynamodb.log").read_text() == stopped_stack.engine_log

    # and when the stack is started again, its data is all there
    stack = LocalStack(stopped_stack.state_dir, TEMPLATE)
    with stack:
        assert sorted(task.task_id for task in stack.store.list_tasks()) == TEMPLATE_TASKS
        hourly = stack.store.get_task("HourlyDigestTask")
        assert hourly is not None
        assert hourly.paused
        [run] = stack.store.executions("ExampleTask")
        assert run.slot == stopped_stack.manual_slot


def test_a_run_started_while_a_stopped_stack_is_read_waits_for_the_reader(
    stopped_stack: StoppedStack,
) -> None:
    # given a second terminal reading the stopped stack
    reader = subprocess.Popen(
        [sys.executable, "-m", "cronfleet_tools", "status", *local(stopped_stack.state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = stopped_stack.state_dir / RUNNER_LOCK
    deadline = time.monotonic() + 60
    while READER_KEY not in lock.read_text():
        assert reader.poll() is None, reader.communicate()
        assert time.monotonic() < deadline, "the reader never took the state directory"
        time.sleep(0.01)

    # when the stack is started meanwhile
    stack = LocalStack(stopped_stack.state_dir, TEMPLATE)
    with stack:
        # then it started once the reader was done, and the reader read the stopped stack
        assert reader.poll() is not None
        assert stack.info is not None
        assert json.loads((stopped_stack.state_dir / STACK_FILE).read_text())["pid"] == (
            stack.info.pid
        )
    stdout, stderr = reader.communicate()
    assert reader.returncode == 0, stderr
    assert "Tasks of the stopped local stack in" in " ".join(stdout.split())


def test_a_stack_file_left_corrupt_by_a_killed_runner_does_not_hide_the_data(
    stopped_stack: StoppedStack,
) -> None:
    # given the stopped stack's directory with a half-written stack file in it
    stack_file = stopped_stack.state_dir / STACK_FILE
    stack_file.write_text('{"endpoint_url": "http://127.0.0.1:')
    try:
        # when its status is read
        result = cli("status", *local(stopped_stack.state_dir), "--json")
    finally:
        stack_file.unlink()

    # then no runner holds the directory, so the file is stale and the data is read
    assert result.exit_code == 0, result.output
    assert sorted(status["task"] for status in json.loads(result.stdout)) == TEMPLATE_TASKS


# --- what reading does not do --------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["trigger", "ExampleTask"], ["pause", "ExampleTask"], ["resume", "HourlyDigestTask"]],
)
def test_a_command_that_changes_things_says_to_start_the_stopped_stack(
    stopped_stack: StoppedStack, command: list[str]
) -> None:
    # given a stopped stack
    # when a command that would change it is given
    result = cli(*command, *local(stopped_stack.state_dir))

    # then it is refused, saying how to start the stack, and nothing was started to do it
    assert result.exit_code == 2, result.output
    assert (
        f"no local stack is running in {stopped_stack.state_dir}/: start one with `make run`"
    ) in flat(result.output)
    assert lock_is_free(stopped_stack.state_dir)


def test_a_stopped_stack_is_read_only_when_asked_for_with_local(
    stopped_stack: StoppedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a terminal in the directory whose .cronfleet holds a stopped stack
    monkeypatch.chdir(stopped_stack.state_dir.parent)

    # when a command names no stack
    result = cli("status")

    # then it is not taken for the stack meant: a running one would be, a stopped one is not
    assert result.exit_code == 2, result.output
    assert "Invalid value for --stack: say which stack: --local" in flat(result.output)


def test_naming_the_state_directory_is_asking_for_its_local_stack(
    stopped_stack: StoppedStack,
) -> None:
    # given a stopped stack's state directory
    # when a command names it, and nothing else
    result = cli("history", "ExampleTask", "--state-dir", stopped_stack.state_dir, "--json")

    # then that stack is read, as with --local: a state directory is only ever a local stack's
    assert result.exit_code == 0, result.output
    assert [run["trigger"] for run in json.loads(result.stdout)] == ["manual"]
    assert f"Reading the stopped local stack in {stopped_stack.state_dir}/" in result.stderr


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", READERS, ids=[command[0] for command in READERS])
def test_a_state_dir_that_never_held_a_stack_is_named_and_left_as_it_was(
    command: list[str], tmp_path: Path
) -> None:
    # given a directory no stack ever ran in
    state_dir = tmp_path / "elsewhere"

    # when a command reads it as a local stack's
    result = cli(*command, *local(state_dir))

    # then it says there is no stack there, and why, naming it; and creates nothing
    assert result.exit_code == 2, result.output
    assert (
        f"Invalid value for --state-dir: no local stack in {state_dir}/: it has no stack.json "
        "(a running stack) and no dynamodb/ data (a stopped one); start one with `make run`"
    ) in flat(result.output)
    assert not state_dir.exists()


def test_dynamodb_local_data_without_the_cronfleet_tables_is_not_taken_for_a_stack(
    tmp_path: Path,
) -> None:
    # given a state directory whose DynamoDB Local data holds some other table
    state_dir = tmp_path / ".cronfleet"
    with DynamoDBLocal(db_path=state_dir / "dynamodb") as engine:
        engine.client().create_table(
            TableName="someone-else",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    # when its status is read
    result = cli("status", *local(state_dir))

    # then it is refused, naming the data and the tables it lacks, and the directory is free
    assert result.exit_code == 2, result.output
    assert (
        f"the DynamoDB Local data in {state_dir / 'dynamodb'}/ has no cronfleet-local-TasksTable "
        "or cronfleet-local-ExecutionsTable table: it is not the data of a `cronfleet run`"
    ) in flat(result.output)
    assert lock_is_free(state_dir)
