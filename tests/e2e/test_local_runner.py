"""`cronfleet run` on a simulated clock: an hour replayed at full speed, end to end.

One replay serves every test of the module: the stack (DynamoDB Local, the dispatcher ticking,
each function run in its own process, the recorder, the local alert topic) is the real one; the
reporter below only writes down what the runner tells it, and reads the ledger while the stack
is still up.
"""

from __future__ import annotations

import copy
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from cronfleet.dispatch.service import TickReport
from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet.store import ExecutionRecord
from cronfleet_tools.audit import TICK_GRACE, AuditReport, audit
from cronfleet_tools.local import STACK_FILE
from cronfleet_tools.local.lambda_process import Invocation
from cronfleet_tools.local.runner import LocalRunner, RunOptions, RunSummary, TemplateProblems
from cronfleet_tools.local.stack import AppliedTask, LocalStack
from cronfleet_tools.local.topic import PublishedMessage, read_journal
from cronfleet_tools.template import load_template

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # a Monday
UNTIL = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MINUTES_IN_WINDOW = 61  # 08:00 to 09:00, both included

# The repository's resources a replay needs: the tables, the registry (every task's
# ServiceToken), the dispatcher, the recorder, the example task's function, the HTTP function
# the dispatcher names, the alert topic, the task functions' policy and the log group.
KEPT_RESOURCES = {
    "TasksTable",
    "TaskFunctionPolicy",
    "FunctionLogGroup",
    "RegistryFunction",
    "ExecutionsTable",
    "DispatcherFunction",
    "RecorderFunction",
    "ExampleTaskFunction",
    "HttpTaskFunction",
    "AlertTopic",
}

FAILING_CODE = """
    from cronfleet import TaskContext, scheduled_task


    @scheduled_task
    def handler(task: TaskContext) -> None:
        raise RuntimeError(f"upstream refused attempt {task.attempt}")
"""
HANGING_CODE = """
    import time

    from cronfleet import TaskContext, scheduled_task


    @scheduled_task
    def handler(task: TaskContext) -> None:
        time.sleep(120)
"""


def task_function(template: dict[str, Any], code_dir: Path, **properties: Any) -> dict[str, Any]:
    """A task function configured like the example task's, with other code."""
    resource: dict[str, Any] = copy.deepcopy(template["Resources"]["ExampleTaskFunction"])
    resource["Properties"].update(CodeUri=str(code_dir), **properties)
    return resource


def write_template(directory: Path) -> Path:
    template = load_template(REPO_ROOT / "template.yaml")
    resources = {k: v for k, v in template["Resources"].items() if k in KEPT_RESOURCES}
    for resource in resources.values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = str(REPO_ROOT / resource["Properties"]["CodeUri"])
    for name, code in (("failing", FAILING_CODE), ("hanging", HANGING_CODE)):
        (directory / name).mkdir()
        (directory / name / "app.py").write_text(textwrap.dedent(code))
    template["Resources"] = {
        **resources,
        "FailingFunction": task_function(template, directory / "failing"),
        "HangingFunction": task_function(template, directory / "hanging", Timeout=1),
        "QuarterTask": scheduled_task(
            "*/15 * * * *", "ExampleTaskFunction", Payload={"every": "15 minutes"}
        ),
        "FlakyTask": scheduled_task(
            "cron(30 8 * * ? *)",
            "FailingFunction",
            Retry={"MaxAttempts": 2, "IntervalSeconds": 60, "JitterStrategy": "NONE"},
            Alerts={"AfterConsecutiveFailures": 1},
        ),
        "HangingTask": scheduled_task(
            "cron(40 8 * * ? *)", "HangingFunction", Retry={"MaxAttempts": 1}
        ),
    }
    for section in ("Outputs", "Conditions"):
        template.pop(section, None)
    path = directory / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


def scheduled_task(schedule: str, function: str, **properties: Any) -> dict[str, Any]:
    return {
        "Type": "Custom::ScheduledTask",
        "Properties": {
            "ServiceToken": {"Fn::GetAtt": ["RegistryFunction", "Arn"]},
            "Schedule": schedule,
            "Function": {"Fn::GetAtt": [function, "Arn"]},
            **properties,
        },
    }


@dataclass
class RecordingReporter:
    """Writes down what the runner reports; reads the ledger before the stack goes down."""

    applied: list[AppliedTask] = field(default_factory=list)
    ticks: list[TickReport] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    alerts: list[PublishedMessage] = field(default_factory=list)
    finished_calls: int = 0
    ledger: dict[str, list[ExecutionRecord]] = field(default_factory=dict)
    audit: AuditReport | None = None
    _stack: LocalStack | None = None

    def started(self, stack: LocalStack, applied: list[AppliedTask]) -> None:
        self._stack, self.applied = stack, applied

    def ticked(self, report: TickReport) -> None:
        self.ticks.append(report)

    def invocation(self, invocation: Invocation) -> None:
        self.invocations.append(invocation)

    def alert(self, message: PublishedMessage) -> None:
        self.alerts.append(message)

    def finished(self) -> None:
        self.finished_calls += 1
        assert self._stack is not None
        store = self._stack.store
        for task in store.list_tasks():
            self.ledger[task.task_id] = store.executions(task.task_id)
        # Read as of when 09:00's tick is certainly over, so that its slot is expected too.
        self.audit = audit(store, None, START, UNTIL, UNTIL + TICK_GRACE)


@dataclass(frozen=True)
class Replay:
    summary: RunSummary
    reporter: RecordingReporter
    state_dir: Path

    def execution(self, task_id: str, slot: str) -> ExecutionRecord:
        (execution,) = [e for e in self.reporter.ledger[task_id] if e.slot == slot]
        return execution

    def journal(self, task_id: str) -> list[PublishedMessage]:
        return [m for m in read_journal(self.state_dir / "alerts.jsonl") if m.task == task_id]


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Replay:
    """The hour from 08:00 to 09:00 UTC, replayed as fast as it goes."""
    directory = tmp_path_factory.mktemp("replay")
    reporter = RecordingReporter()
    options = RunOptions(
        template=write_template(directory),
        state_dir=directory / ".cronfleet",
        start=START,
        until=UNTIL,
        speed=None,
    )
    summary = LocalRunner(options, reporter).run()
    return Replay(summary, reporter, options.state_dir)


def test_a_task_every_15_minutes_runs_four_times_in_the_hour(replay: Replay) -> None:
    # Given an hour replayed with a quarter-hourly task
    # When its ledger is read
    executions = replay.reporter.ledger["QuarterTask"]

    # Then it ran at each quarter, on the replay's clock
    assert [e.slot for e in executions] == [
        "2026-11-02T08:15:00Z",
        "2026-11-02T08:30:00Z",
        "2026-11-02T08:45:00Z",
        "2026-11-02T09:00:00Z",
    ]
    for execution in executions:
        assert (execution.status, execution.trigger) == (RunStatus.SUCCEEDED, Trigger.SCHEDULE)
        (attempt,) = execution.attempts
        assert attempt.result == {"ok": True, "echo": {"every": "15 minutes"}}
        # the function ran on the replay's clock: its slot's time, not today's
        assert attempt.started_at is not None
        assert attempt.started_at.startswith(execution.slot[: len("2026-11-02T08:15")])


def test_the_summary_counts_the_ticks_made_and_the_idle_minutes_skipped(replay: Replay) -> None:
    # Given an hour replayed at full speed
    # When its summary is read
    summary, reporter = replay.summary, replay.reporter

    # Then every minute of the window is either ticked or skipped as idle; at full speed most are
    assert summary.ticks + summary.skipped_minutes == MINUTES_IN_WINDOW
    assert summary.skipped_minutes > 0
    assert summary.ticks == len(reporter.ticks)
    ticked = [report.tick for report in reporter.ticks]
    assert ticked == sorted(set(ticked))
    assert (ticked[0], ticked[-1]) == (START, UNTIL)
    # every slot's tick is among them, and no tick found a gap before it
    for minute in (15, 30, 40, 45):
        assert START.replace(minute=minute) in ticked
    assert all(report.missed_ticks == 0 for report in reporter.ticks)
    # the invocations: 4 quarter-hourly runs, 2 attempts of the flaky task, the hanging run and
    # the recorder's run on its timeout
    assert summary.invocations == len(reporter.invocations)
    assert Counter(i.function for i in reporter.invocations) == {
        "ExampleTaskFunction": 4,
        "FailingFunction": 2,
        "HangingFunction": 1,
        "RecorderFunction": 1,
    }
    assert summary.alerts == len(reporter.alerts)
    assert sorted((a.task_id, a.request) for a in summary.applied) == [
        ("FlakyTask", "Create"),
        ("HangingTask", "Create"),
        ("QuarterTask", "Create"),
    ]
    assert reporter.applied == summary.applied
    assert reporter.finished_calls == 1


def test_a_failing_task_is_retried_then_fails_and_raises_one_alert(replay: Replay) -> None:
    # given a task that always raises, two attempts allowed, alerting on the first failure
    # when its slot comes
    execution = replay.execution("FlakyTask", "2026-11-02T08:30:00Z")

    # then both attempts failed with the code's error, and the slot is FAILED
    assert execution.status is RunStatus.FAILED
    assert [(a.attempt, a.status, a.error_type, a.error_message) for a in execution.attempts] == [
        (1, RunStatus.FAILED, "RuntimeError", "upstream refused attempt 1"),
        (2, RunStatus.FAILED, "RuntimeError", "upstream refused attempt 2"),
    ]
    # and the alert topic got exactly one alert for it: the task is failing
    (alert,) = replay.journal("FlakyTask")
    assert alert.attributes == {"event": "FAILING", "task": "FlakyTask", "severity": "critical"}
    assert alert.subject == "[cronfleet] FlakyTask is failing (1 in a row)"
    assert "RuntimeError: upstream refused attempt 2" in alert.text
    assert alert in replay.reporter.alerts


def test_a_run_past_its_timeout_is_recorded_by_the_recorder_as_timed_out(
    replay: Replay,
) -> None:
    # given a task whose function hangs past its 1 second Timeout
    # when its slot comes
    execution = replay.execution("HangingTask", "2026-11-02T08:40:00Z")

    # then Lambda's timeout reached the recorder, which made the slot TIMED_OUT
    assert execution.status is RunStatus.TIMED_OUT
    (attempt,) = execution.attempts
    assert attempt.status is RunStatus.TIMED_OUT
    assert attempt.error_type == "Sandbox.Timedout"
    assert attempt.error_message is not None
    assert "Task timed out after 1.00 seconds" in attempt.error_message
    (hanging,) = [i for i in replay.reporter.invocations if i.function == "HangingFunction"]
    (recorded,) = [i for i in replay.reporter.invocations if i.function == "RecorderFunction"]
    assert hanging.timed_out
    assert recorded.event["requestContext"]["requestId"] == hanging.request_id
    assert recorded.result["status"] == "recorded"
    # and the timeout was announced, the task not yet failing (3 in a row by default)
    assert [alert.event for alert in replay.journal("HangingTask")] == ["TIMED_OUT"]


def test_the_replayed_hour_audits_clean(replay: Replay) -> None:
    # Given an hour replayed
    # When the runner audits it at the end
    report = replay.reporter.audit

    # Then every expected slot has its one final entry
    assert report is not None
    assert report.ok, [str(finding) for finding in report.findings]
    counts = {task.task_id: task.counts for task in report.tasks}
    assert {name: (c.expected, c.final) for name, c in counts.items()} == {
        "QuarterTask": (4, 4),
        "FlakyTask": (1, 1),
        "HangingTask": (1, 1),
    }


def test_the_stack_file_is_removed_when_the_replay_ends(replay: Replay) -> None:
    # Given a replay that has ended
    # Then its stack file is gone and its data stays
    assert not (replay.state_dir / STACK_FILE).exists()
    assert (replay.state_dir / "dynamodb").is_dir()  # the data stays for the next run


@pytest.mark.parametrize(
    ("start", "until", "message"),
    [
        (START, None, "--start and --until go together"),
        (None, UNTIL, "--start and --until go together"),
        (UNTIL, START, "--until: must not be before --start"),
    ],
)
def test_a_replay_needs_both_ends_in_order(
    tmp_path: Path, start: datetime | None, until: datetime | None, message: str
) -> None:
    # Given a replay window missing an end, or with its ends swapped
    options = RunOptions(state_dir=tmp_path / ".cronfleet", start=start, until=until)

    # When a runner is made for it, then it is refused with the reason
    with pytest.raises(ValueError, match=message):
        LocalRunner(options, RecordingReporter())


def test_a_template_with_problems_starts_nothing(tmp_path: Path) -> None:
    # given a template whose task names a function it does not have
    template = load_template(REPO_ROOT / "template.yaml")
    template["Resources"]["ExampleTask"]["Properties"]["Function"] = {
        "Fn::GetAtt": ["NoSuchFunction", "Arn"]
    }
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template))
    state_dir = tmp_path / ".cronfleet"

    with pytest.raises(TemplateProblems) as refused:
        LocalRunner(
            RunOptions(template=path, state_dir=state_dir, start=START, until=UNTIL, speed=None),
            RecordingReporter(),
        ).run()

    assert any("ExampleTask.Function" in str(problem) for problem in refused.value.problems)
    assert not state_dir.exists()


def test_a_task_whose_function_is_not_wired_as_a_task_starts_nothing(tmp_path: Path) -> None:
    # given a template whose example task function lost the task policy and lets Lambda retry
    template = load_template(REPO_ROOT / "template.yaml")
    function = template["Resources"]["ExampleTaskFunction"]["Properties"]
    function["Policies"] = []
    function["EventInvokeConfig"] = {"MaximumRetryAttempts": 2}
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template))
    state_dir = tmp_path / ".cronfleet"

    # when the local runtime is started on it
    with pytest.raises(TemplateProblems) as refused:
        LocalRunner(
            RunOptions(template=path, state_dir=state_dir, start=START, until=UNTIL, speed=None),
            RecordingReporter(),
        ).run()

    # then it refuses with the deploy's lines for both tasks that run on it, and starts nothing
    lines = [str(problem) for problem in refused.value.problems]
    for task in ("ExampleTask", "HourlyDigestTask"):
        assert any(
            line.startswith(f"{task}.Function: function ExampleTaskFunction lacks the ledger")
            for line in lines
        ), lines
        assert any(
            line.startswith(f"{task}.Function: function ExampleTaskFunction lets Lambda retry")
            for line in lines
        ), lines
    assert not state_dir.exists()
