"""What the operator commands say about runs (history, status, describe), against a real stack.

A local stack is started as `make run` starts one: DynamoDB Local, the template's tasks applied
through the registry's code, ``stack.json`` in the state directory, so ``--local --state-dir D``
attaches to it as a second terminal would. Runs are made by the real local runtime (``cronfleet
trigger``: each invocation in a process of its own), and read back through the commands as a
person types them. Tables are read at 80 and at 200 columns, and no word may be broken.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cronfleet import clock
from cronfleet.lifecycle.states import RunStatus
from cronfleet.store import ExecutionRecord, Store
from cronfleet_tools.cli.app import app
from cronfleet_tools.local.stack import LocalStack
from cronfleet_tools.local.topic import LocalTopic, read_journal
from cronfleet_tools.template import load_template

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
# A task function that says what it does, in Powertools lines and a plain print, and fails when
# its payload asks it to, with an error long enough to need wrapping.
CHATTY_CODE = """
    import time

    from cronfleet import TaskContext, scheduled_task
    from cronfleet.handlers import lambda_handler
    from cronfleet.observability import logger


    @lambda_handler(correlation_id_path="cronfleet.task_id")
    @scheduled_task
    def handler(task: TaskContext) -> dict:
        logger.info("Counting rows", extra={"table": "orders"})
        print("a plain print line")
        time.sleep(task.payload.get("sleep", 0))
        if task.payload.get("fail"):
            raise RuntimeError(
                "the upstream refused the export: https://upstream.example.com/exports/"
                "orders/2026/11/02/part-00017.csv.gz is gone"
            )
        logger.info("Counted rows", extra={"rows": 12})
        return {"rows": 12, "table": "orders"}
"""

runner = CliRunner()


@dataclass(frozen=True)
class RunningStack:
    state_dir: Path
    store: Store

    @property
    def local(self) -> tuple[str, str, str]:
        return ("--local", "--state-dir", str(self.state_dir))


def chatty_template(directory: Path) -> Path:
    """The repository's template, with ChattyTask on a function running CHATTY_CODE."""
    template = load_template(REPO_ROOT / "template.yaml")
    resources = template["Resources"]
    for resource in resources.values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = str(REPO_ROOT / resource["Properties"]["CodeUri"])
    code = directory / "chatty"
    code.mkdir()
    (code / "app.py").write_text(textwrap.dedent(CHATTY_CODE))
    function = json.loads(json.dumps(resources["ExampleTaskFunction"]))
    function["Properties"].update(CodeUri=str(code), Timeout=30)
    resources["ChattyFunction"] = function
    # Tasks on it: the history tests read ReportTask's runs, the others make ChattyTask's, and
    # AlertingTask alerts at its first failure.
    retry = {"MaxAttempts": 2, "IntervalSeconds": 60, "JitterStrategy": "NONE"}
    for name, extra in (
        ("ChattyTask", {"Retry": retry}),
        ("ReportTask", {"Retry": retry}),
        ("AlertingTask", {"Retry": {"MaxAttempts": 1}, "Alerts": {"AfterConsecutiveFailures": 1}}),
    ):
        resources[name] = {
            "Type": "Custom::ScheduledTask",
            "Properties": {
                "ServiceToken": {"Fn::GetAtt": ["RegistryFunction", "Arn"]},
                "Schedule": "cron(0 6 1 1 ? *)",  # once a year: nothing runs on its own here
                "Function": {"Fn::GetAtt": ["ChattyFunction", "Arn"]},
                "Payload": {"table": "orders"},
                **extra,
            },
        }
    path = directory / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    directory = tmp_path_factory.mktemp("runs")
    state_dir = directory / ".cronfleet"
    topic = LocalTopic(state_dir / "alerts.jsonl").start()
    local_stack = LocalStack(
        state_dir, chatty_template(directory), topic_endpoint_url=topic.endpoint_url
    )
    local_stack.start()
    try:
        local_stack.apply_tasks(local_stack.validate(), clock.now())
        yield RunningStack(state_dir, local_stack.store)
    finally:
        local_stack.stop()
        topic.stop()


@pytest.fixture(autouse=True)
def _no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Dummy credentials and no AWS configuration of the developer's: nothing reaches an account.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "cronfleetlocal")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cronfleetlocal")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name in ("AWS_REGION", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def width(request: pytest.FixtureRequest) -> Iterator[int]:
    """A terminal this many columns wide (parametrized indirectly; 200 unless said).

    The console's width is set, whatever COLUMNS or an earlier test left, and put back as it
    was after: what rich keeps is ``_width`` (None: ask the terminal), which monkeypatching the
    ``width`` property would leave fixed at whatever the width was before.
    """
    from cronfleet_tools.cli import common

    columns = int(getattr(request, "param", 200))
    before = common.console._width
    common.console.width = columns
    yield columns
    common.console._width = before


def cli(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(arg) for arg in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def flat(output: str) -> str:
    """The text of an error box, on one line: borders dropped, whitespace collapsed."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def trigger(stack: RunningStack, task: str, payload: dict[str, Any] | None = None) -> str:
    """A manual run through `cronfleet trigger`; its slot."""
    extra = ["--payload", json.dumps(payload)] if payload is not None else []
    code, output = cli("trigger", task, *stack.local, *extra, "--json")
    assert code in (0, 1), output
    slot: str = json.loads(output)["slot"]
    return slot


def words_of(*texts: str) -> set[str]:
    return {word for text in texts for word in text.split()}


def assert_fits_with_no_word_broken(output: str, width: int, words: set[str]) -> None:
    """No line is wider than the terminal, and each of ``words`` is whole on some line."""
    lines = output.splitlines()
    assert max(len(line) for line in lines) <= width, output
    broken = sorted(word for word in words if not any(word in line for line in lines))
    assert broken == [], output


# --- history -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_runs(stack: RunningStack) -> list[str]:
    """Three manual runs of ReportTask, in time order: one with the task's payload, one told to
    fail (now waiting to retry), one with a payload of its own."""
    return [
        trigger(stack, "ReportTask"),
        trigger(stack, "ReportTask", {"fail": True}),
        trigger(stack, "ReportTask", {"table": "invoices", "note": "rerun for the audit"}),
    ]


def test_history_json_gives_each_runs_payload_result_or_error_and_attempts_with_requests(
    stack: RunningStack, report_runs: list[str]
) -> None:
    # When ReportTask's history is asked for as JSON
    code, output = cli("history", "ReportTask", *stack.local, "--json")

    # Then the runs come in time order, each with what it was given and what it gave back
    assert code == 0, output
    runs = json.loads(output)
    assert [run["slot"] for run in runs] == report_runs
    first, failed, own = runs
    assert first["payload"] == {"table": "orders"}  # the task's own
    assert first["result"] == {"rows": 12, "table": "orders"}
    assert first["error"] is None
    assert failed["payload"] == {"fail": True}
    assert failed["status"] == "RETRY_WAIT"
    assert failed["result"] is None
    assert failed["error"]["type"] == "RuntimeError"
    assert failed["error"]["message"].startswith("the upstream refused the export")
    assert own["payload"] == {"table": "invoices", "note": "rerun for the audit"}
    # and every attempt has its duration and the Lambda request that ran it, as recorded
    for run in runs:
        (attempt,) = run["attempts"]
        execution = stack.store.get_execution("ReportTask", run["slot"])
        assert execution is not None
        assert attempt["request_id"] == execution.attempts[0].request_id
        assert re.fullmatch(r"[0-9a-f-]{36}", attempt["request_id"])
        assert isinstance(attempt["duration_ms"], int)


@pytest.mark.parametrize("width", [80, 200], indirect=True)
def test_history_reads_in_time_order_and_fits_the_terminal_with_no_word_broken(
    stack: RunningStack, report_runs: list[str], width: int
) -> None:
    # Given what the ledger holds about the runs
    code, output = cli("history", "ReportTask", *stack.local, "--json")
    runs = json.loads(output)

    # When the history is shown on a terminal of this width
    code, output = cli("history", "ReportTask", *stack.local)

    # Then it fits, with every slot, request id, status and word of the error whole
    assert code == 0, output
    requests = [run["attempts"][0]["request_id"] for run in runs]
    expected = words_of(
        *(slot.replace("#", " #") for slot in report_runs),
        *requests,
        "SUCCEEDED FAILED next manual",
        "the upstream refused the export",
    )
    assert_fits_with_no_word_broken(output, width, expected)
    # and the runs read as they happened, oldest first
    first_lines = [
        next(i for i, line in enumerate(output.splitlines()) if r in line) for r in requests
    ]
    assert first_lines == sorted(first_lines)
    assert "Last 3 runs of ReportTask, in time order" in output
    # and says when the failed run's next attempt is due
    execution = stack.store.get_execution("ReportTask", report_runs[1])
    assert execution is not None
    assert execution.deadline_at is not None
    due = f"due {execution.deadline_at:%Y-%m-%d %H:%M}Z"
    assert_fits_with_no_word_broken(output, width, words_of(due))
    # and shows the results and the payloads given
    assert '"rows": 12' in output
    assert '"invoices"' in output


@pytest.mark.parametrize("width", [80, 200], indirect=True)
def test_status_fits_the_terminal_with_no_word_broken(
    stack: RunningStack, report_runs: list[str], width: int
) -> None:
    # When the status of every task is shown on a terminal of this width
    code, output = cli("status", *stack.local)

    # Then each task, its health and its last result are whole
    assert code == 0, output
    tasks = ["AlertingTask", "ChattyTask", "CheckIpTask", "ExampleTask", "ReportTask"]
    assert_fits_with_no_word_broken(
        output, width, words_of(*tasks, "SUCCEEDED", "(Europe/London)", "(manual)", "new")
    )
    if width >= 200:  # wide enough for a task a line
        (row,) = [line for line in output.splitlines() if "ReportTask" in line]
        assert re.search(r"\d+s ago \(manual\) +│ SUCCEEDED +│ \d+ ms", row), row


@pytest.mark.parametrize("width", [80, 200], indirect=True)
def test_describe_fits_the_terminal_with_no_word_broken(
    stack: RunningStack, report_runs: list[str], width: int
) -> None:
    # When ReportTask is described on a terminal of this width
    code, output = cli("describe", "ReportTask", *stack.local)

    # Then the page and its last runs fit, with the runs' slots and the schedule whole
    assert code == 0, output
    expected = words_of(
        *(slot.replace("#", " #") for slot in report_runs),
        "ReportTask ChattyFunction",
        "SUCCEEDED FAILED next",
    )
    assert_fits_with_no_word_broken(output, width, expected)
    assert "function ChattyFunction" in output  # its ARN, but for the name, is in --json


# --- trigger: the run's result and its log lines ----------------------------------------------


def test_trigger_prints_the_runs_result_and_its_log_lines_in_the_order_written(
    stack: RunningStack,
) -> None:
    # When ChattyTask is triggered on the local stack
    code, output = cli("trigger", "ChattyTask", *stack.local)

    # Then the command says how it ended, what it returned, and what it logged, in order
    assert code == 0, output
    match = re.search(r"Manual run of ChattyTask: slot (\S+), SUCCEEDED", output)
    assert match, output
    execution = stack.store.get_execution("ChattyTask", match.group(1))
    assert execution is not None
    request = execution.attempts[0].request_id
    assert request is not None
    assert 'Result: {"rows": 12, "table": "orders"}' in output
    expected = [
        f"── attempt 1, ChattyFunction, request {request}, ",
        f"START RequestId: {request}",
        "INFO  Counting rows  table=orders",
        "a plain print line",
        "INFO  Counted rows  rows=12",
        f"END RequestId: {request}",
    ]
    positions = [output.find(text) for text in expected]
    assert -1 not in positions, output
    assert positions == sorted(positions), output
    # and no metric line (Embedded Metric Format) is taken for a log line
    assert "_aws" not in output


def test_trigger_of_a_run_that_fails_prints_the_error_the_retry_and_the_traceback(
    stack: RunningStack,
) -> None:
    # When ChattyTask is triggered with a payload that makes it fail
    code, output = cli("trigger", "ChattyTask", *stack.local, "--payload", '{"fail": true}')

    # Then it exits 1, with the error, when the next attempt is due, and the logged traceback
    assert code == 1, output
    text = " ".join(output.split())
    assert "Error: RuntimeError: the upstream refused the export" in text
    assert re.search(r"Attempt 2 is due \d{4}-\d\d-\d\d \d\d:\d\dZ \(in \d+(s|m)\)\.", text), text
    assert "ERROR Task code failed" in output
    assert "Traceback (most recent call last):" in output
    assert "RuntimeError: the upstream refused the export" in output


def test_trigger_json_carries_the_runs_log_lines(stack: RunningStack) -> None:
    # When ChattyTask is triggered for a script
    code, output = cli("trigger", "ChattyTask", *stack.local, "--json")

    # Then the document has the run and every line it wrote, as written
    assert code == 0, output
    document = json.loads(output)
    assert (document["status"], document["result"]) == (
        "SUCCEEDED",
        {"rows": 12, "table": "orders"},
    )
    messages = [line["message"] for line in document["log_lines"]]
    assert messages[0].startswith("START RequestId: ")
    assert messages[-1].startswith("END RequestId: ")
    counted = [json.loads(m) for m in messages if m.startswith("{") and "Counted" in m]
    assert [line["rows"] for line in counted] == [12]
    assert all(
        line["source"].startswith("attempt 1, ChattyFunction") for line in document["log_lines"]
    )


def test_trigger_with_no_wait_says_how_to_follow_the_run(stack: RunningStack) -> None:
    # When ChattyTask is triggered without waiting for its outcome
    code, output = cli("trigger", "ChattyTask", *stack.local, "--no-wait")

    # Then it names the run and the command that follows it, and prints no log lines
    assert code == 0, output
    match = re.search(r"Manual run of ChattyTask: slot (\S+),", output)
    assert match, output
    follow = (
        f"cronfleet logs ChattyTask --slot {match.group(1)} --local --state-dir "
        f"{stack.state_dir} --follow"
    )
    assert f"Started; follow it with: {follow}" in " ".join(output.split())
    assert "START RequestId" not in output


# --- logs ----------------------------------------------------------------------------------------


def test_logs_prints_the_last_run_that_ran_with_every_line_of_every_attempt(
    stack: RunningStack,
) -> None:
    # Given a run of ChattyTask that failed, so the next attempt is due
    slot = trigger(stack, "ChattyTask", {"fail": True})
    execution = stack.store.get_execution("ChattyTask", slot)
    assert execution is not None
    request = execution.attempts[0].request_id

    # When its logs are asked for, without a slot
    code, output = cli("logs", "ChattyTask", *stack.local)

    # Then they are that run's: its summary, then its attempt's lines, from the local files
    assert code == 0, output
    assert output.startswith(
        f"Run ChattyTask {slot}: RETRY_WAIT, 1 attempt; lines from {stack.state_dir}/logs/"
    ), output
    assert f"── attempt 1, ChattyFunction, request {request}, " in output
    assert "INFO  Counting rows  table=orders" in output
    assert "ERROR Task code failed" in output
    assert "Counted rows" not in output


def test_logs_of_a_slot_reads_that_run_however_its_time_is_written(stack: RunningStack) -> None:
    # Given a manual run of ChattyTask, its time written with an offset
    slot = trigger(stack, "ChattyTask")
    time, manual = slot.split("#")
    written = time.replace("Z", "+00:00") + "#" + manual

    # When that run's logs are asked for
    code, output = cli("logs", "ChattyTask", *stack.local, "--slot", written)

    # Then it is that run's, with its own payload's lines
    assert code == 0, output
    assert output.startswith(f"Run ChattyTask {slot}: SUCCEEDED, 1 attempt"), output
    assert "INFO  Counted rows  rows=12" in output


@pytest.mark.parametrize(
    "slot",
    ["yesterday", "2026-13-01T00:00:00Z", "2026-11-02T09:00:00Z#manual-XYZ", "#manual-1a2b3c4d"],
)
def test_a_slot_that_is_not_one_is_refused_naming_the_option_and_the_forms_it_takes(
    stack: RunningStack, slot: str
) -> None:
    # When a person gives something that is not a slot
    code, output = cli("logs", "ChattyTask", *stack.local, "--slot", slot)

    # Then it exits 2, naming --slot, the value and what a slot looks like
    assert code == 2, output
    assert (
        f"Invalid value for --slot: '{slot}' is not a slot: give one as `history` shows it, "
        "such as 2026-11-02T09:00:00Z, or a manual run's 2026-11-02T09:00:00Z#manual-1a2b3c4d"
    ) in flat(output)


def test_a_slot_the_task_has_no_run_at_is_refused_with_its_last_runs(
    stack: RunningStack, report_runs: list[str]
) -> None:
    # When a person asks for a run the task never had
    code, output = cli("logs", "ReportTask", *stack.local, "--slot", "2026-01-05T06:00Z")

    # Then it exits 2, naming --slot, the slot as the ledger keys it, and the runs there are
    assert code == 2, output
    assert (
        "Invalid value for --slot: no run of ReportTask at 2026-01-05T06:00:00Z; its last runs: "
        f"{report_runs[2]}, {report_runs[1]}, {report_runs[0]}"
    ) in flat(output)


def test_logs_of_a_slot_that_ran_nothing_says_so_and_without_a_slot_there_is_nothing(
    stack: RunningStack,
) -> None:
    # Given HourlyDigestTask, paused for three hours: its slots were skipped, nothing ran
    code, output = cli("pause", "HourlyDigestTask", *stack.local)
    assert code == 0, output
    record = stack.store.get_task("HourlyDigestTask")
    assert record is not None
    later = clock.now() + timedelta(hours=3)
    stack.store.resume("HourlyDigestTask", record.definition.compiled_schedule().next_run, later)
    (skipped,) = stack.store.executions("HourlyDigestTask")

    # When that slot's logs are asked for
    code, output = cli("logs", "HourlyDigestTask", *stack.local, "--slot", skipped.slot)

    # Then the command says the run ran nothing
    assert code == 0, output
    assert f"Run HourlyDigestTask {skipped.slot}: SKIPPED" in output
    assert "It ran nothing (paused), so it has no log lines." in output
    # and without a slot there is no run with lines to show: an error, not bad usage
    code, output = cli("logs", "HourlyDigestTask", *stack.local)
    assert code == 1, output
    assert "Error: HourlyDigestTask has made no attempt in its last 20 runs" in flat(output)


def test_logs_follow_prints_the_lines_as_the_run_writes_them_until_it_ends(
    stack: RunningStack, tmp_path: Path
) -> None:
    # Given a run of ChattyTask under way in another terminal, taking a few seconds
    started = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cronfleet_tools",
            "trigger",
            "ChattyTask",
            *stack.local,
            "--payload",
            '{"sleep": 3}',
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        running = wait_for_running(stack.store, "ChattyTask", started)

        # When its logs are followed
        code, output = cli("logs", "ChattyTask", *stack.local, "--slot", running.slot, "--follow")
    finally:
        triggered, _ = started.communicate(timeout=60)

    # Then the command ran until the run ended, and printed what the run wrote meanwhile
    assert code == 0, output
    assert output.startswith(f"Run ChattyTask {running.slot}: RUNNING, 1 attempt"), output
    assert output.rstrip().endswith(f"Run ChattyTask {running.slot}: SUCCEEDED, 1 attempt")
    request = running.attempts[0].request_id
    expected = ["INFO  Counting rows", "INFO  Counted rows  rows=12", f"END RequestId: {request}"]
    positions = [output.find(text) for text in expected]
    assert -1 not in positions, output
    assert positions == sorted(positions), output
    assert output.count("── attempt 1, ChattyFunction") == 1
    assert "SUCCEEDED" in triggered


def wait_for_running(store: Store, task_id: str, process: subprocess.Popen[str]) -> ExecutionRecord:
    """The manual run ``process`` started, once its attempt is RUNNING."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        runs = [e for e in store.executions(task_id) if e.status is RunStatus.RUNNING]
        if runs:
            return runs[-1]
        time.sleep(0.1)
    raise AssertionError("the run never started")


def test_logs_of_a_stopped_local_stack_read_the_files_its_runs_left(tmp_path: Path) -> None:
    # Given a local stack that ran ExampleTask once, and was then stopped
    state_dir = tmp_path / ".cronfleet"
    topic = LocalTopic(state_dir / "alerts.jsonl").start()
    local_stack = LocalStack(
        state_dir, REPO_ROOT / "template.yaml", topic_endpoint_url=topic.endpoint_url
    )
    try:
        local_stack.start()
        local_stack.apply_tasks(local_stack.validate(), clock.now())
        code, output = cli("trigger", "ExampleTask", "--local", "--state-dir", state_dir, "--json")
        assert code == 0, output
        slot = json.loads(output)["slot"]
    finally:
        local_stack.stop()
        topic.stop()

    # When the run's logs are asked for
    code, output = cli("logs", "ExampleTask", "--local", "--state-dir", state_dir)

    # Then they are read from the ledger and the files the stack left
    assert code == 0, output
    assert f"Run ExampleTask {slot}: SUCCEEDED, 1 attempt; lines from {state_dir}/logs/" in output
    assert 'INFO  Example task ran  payload={"greeting": "hello"}' in output


# --- alerts of the local runtime ------------------------------------------------------------------


def test_a_local_alert_links_to_the_runs_log_file_and_a_command_that_shows_the_run(
    stack: RunningStack,
) -> None:
    # Given AlertingTask, which alerts at its first failure, run and failing
    code, output = cli(
        "trigger", "AlertingTask", *stack.local, "--payload", '{"fail": true}', "--json"
    )
    assert code == 1, output
    run = json.loads(output)
    request = run["attempts"][0]["request_id"]

    # When the alert it raised is read, as the local topic received it
    (alert,) = [
        m for m in read_journal(stack.state_dir / "alerts.jsonl") if m.task == "AlertingTask"
    ]

    # Then it links to things on this machine, not to a console that has no such stack
    assert "On this machine:" in alert.text
    assert "console.aws.amazon.com" not in alert.text
    # the attempt's log file, which is there
    logs = re.search(r"^  logs: (.+)$", alert.text, re.MULTILINE)
    assert logs, alert.text
    assert Path(logs.group(1)).is_file()
    assert Path(logs.group(1)).name == f"{request}.log"
    # and the command that shows the run, which works as printed
    shown = re.search(r"^  run: (.+)$", alert.text, re.MULTILINE)
    assert shown, alert.text
    words = shlex.split(shown.group(1))
    code, output = cli(*words[words.index("logs") :])
    assert code == 0, output
    assert output.startswith(f"Run AlertingTask {run['slot']}: FAILED, 1 attempt"), output
    assert "ERROR Task code failed" in output
