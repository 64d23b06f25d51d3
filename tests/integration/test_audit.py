"""The ledger audit on DynamoDB Local: a simulated day of the real engine audits clean, a removed
entry is found, and the ``cronfleet audit`` command says so with its exit status."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from cronfleet.dispatch.service import Dispatcher
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.lifecycle.slots import parse_slot, slot_key
from cronfleet.lifecycle.states import RunStatus
from cronfleet.lifecycle.wrapper import NonRetryableError, TaskContext, scheduled_task
from cronfleet.registry.definition import parse_task_definition
from cronfleet_tools.audit import FindingKind, audit
from cronfleet_tools.cli.app import app
from tests.support import TEST_OWNER

if TYPE_CHECKING:
    from cronfleet.store import Store
    from cronfleet_tools.local.dynamodb_local import DynamoDBLocal
    from tests.conftest import FakeLambdaContext
    from tests.integration.conftest import FakeClock, QueuedLambda

pytestmark = pytest.mark.integration

# Every schedule below is on whole quarter hours, so a tick every 15 minutes is each slot's own
# tick, and a simulated day is 96 ticks rather than 1,440.
TICK_EVERY = timedelta(minutes=15)
RETRY_NOW = {"MaxAttempts": 3, "IntervalSeconds": 60, "JitterStrategy": "NONE"}

runner = CliRunner()


@dataclass
class Fleet:
    """The engine on simulated time: the dispatcher ticks, then Lambda delivers what it queued."""

    store: Store
    clock: FakeClock
    lambda_queue: QueuedLambda
    handlers: dict[str, Callable[[Any, Any], dict[str, Any]]]
    next_tick: datetime

    @classmethod
    def start(cls, store: Store, clock: FakeClock, lambda_queue: QueuedLambda) -> Fleet:
        return cls(store, clock, lambda_queue, {}, clock.now + TICK_EVERY)

    def task(
        self, name: str, schedule: str, **properties: Any
    ) -> Callable[[Callable[[TaskContext], Any]], Callable[[Any, Any], dict[str, Any]]]:
        """Register a task and, as a decorator, its code."""
        definition = parse_task_definition(
            name, {"Schedule": schedule, "Function": name, **properties}
        )
        self.store.register(
            definition,
            definition.compiled_schedule().next_run,
            self.clock.now,
            owner=TEST_OWNER.key,
        )

        def decorate(code: Callable[[TaskContext], Any]) -> Callable[[Any, Any], dict[str, Any]]:
            handler = scheduled_task(store=self.store, clock=self.clock)(code)
            self.handlers[name] = handler
            return handler

        return decorate

    def run_until(self, end: datetime) -> None:
        """Every tick up to ``end``. Task code may call it too: a run that takes that long."""
        dispatcher = Dispatcher(
            Attempts(self.store, self.lambda_queue, clock=self.clock, rng=random.Random(1))
        )
        while self.next_tick <= end:
            tick, self.next_tick = self.next_tick, self.next_tick + TICK_EVERY
            self.clock.now = max(self.clock.now, tick)
            dispatcher.tick(tick)
            for function, event in self.lambda_queue.take():
                self.handlers[function](event, None)

    def work_for(self, minutes: int) -> None:
        self.run_until(self.clock.now + timedelta(minutes=minutes))


def simulate_mixed_day(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    lambda_context: FakeLambdaContext,
    hours: int,
) -> Fleet:
    """Five tasks: successes, retries, a failure, overlap skips, redispatches and a manual run."""
    fleet = Fleet.start(store, clock, lambda_queue)

    @fleet.task("quarter", "*/15 * * * *", Overlap="skip")
    def quarter(task: TaskContext) -> str:
        if task.slot.endswith(("T10:00:00Z", "T16:00:00Z")):
            fleet.work_for(minutes=15)  # still RUNNING at the next slot, which is skipped
        return "ok"

    @fleet.task("half-hourly", "rate(30 minutes)")
    def half_hourly(task: TaskContext) -> str:
        return "ok"

    @fleet.task("hourly-sync", "0 * * * *", Retry=RETRY_NOW)
    def hourly_sync(task: TaskContext) -> str:
        if task.attempt == 1 and parse_slot(task.slot).hour % 2 == 0:
            raise ConnectionError("upstream reset the connection")
        return "synced"

    @fleet.task("morning-report", "0 9 * * *", Timezone="Europe/London")
    def morning_report(task: TaskContext) -> str:
        return "sent"

    @fleet.task("strict-export", "cron(30 0/6 * * ? *)", Retry=RETRY_NOW)
    def strict_export(task: TaskContext) -> None:
        raise NonRetryableError("the export format is not supported")

    start = clock.now
    fleet.run_until(start + timedelta(hours=min(hours, 3), minutes=2))
    clock.advance(minutes=1)  # someone runs the report by hand, off the schedule
    morning_report({"reason": "rerun"}, replace(lambda_context, function_name="morning-report"))
    fleet.run_until(start + timedelta(hours=hours, minutes=30))  # let the last slots settle
    return fleet


def audit_cli(store: Store, dynamodb_local: DynamoDBLocal, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        [
            "audit",
            *args,
            "--tasks-table",
            store.tasks_table,
            "--executions-table",
            store.executions_table,
            "--endpoint-url",
            dynamodb_local.endpoint_url,
            "--region",
            dynamodb_local.region_name,
        ],
    )
    return result.exit_code, result.output


@pytest.fixture(autouse=True)
def _local_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    # The command reads credentials the ordinary way; these are DynamoDB Local's, and nothing
    # from the developer's ~/.aws can take part.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "cronfleetlocal")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cronfleetlocal")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


def test_a_simulated_day_of_mixed_outcomes_audits_clean(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    lambda_context: FakeLambdaContext,
    dynamodb_local: DynamoDBLocal,
) -> None:
    # given a day of the engine: retries, a non-retryable failure, overlap skips, a manual run
    day_start = clock.now
    simulate_mixed_day(store, clock, lambda_queue, lambda_context, hours=24)
    day_end = day_start + timedelta(hours=24)

    # when the day is audited
    report = audit(store, None, day_start, day_end, clock.now)

    # then every slot has exactly one final entry, and nothing else is reported
    assert report.ok, [str(finding) for finding in report.findings]
    assert report.findings == []
    counts = {task.task_id: task.counts for task in report.tasks}
    expected = {
        "half-hourly": 48,
        "hourly-sync": 24,
        "morning-report": 1,
        "quarter": 96,
        "strict-export": 4,
    }
    assert {name: c.expected for name, c in counts.items()} == expected
    assert {name: c.final for name, c in counts.items()} == expected
    assert all(c.gaps == c.in_flight == 0 for c in counts.values())
    assert counts["morning-report"].manual == 1
    # ... and the day really was mixed
    statuses = {(e.slot[11:16], e.status) for e in store.executions("quarter", day_start, day_end)}
    assert {("10:15", RunStatus.SKIPPED), ("16:15", RunStatus.SKIPPED)} <= statuses
    failed = store.executions("strict-export", day_start, day_end)
    assert {e.status for e in failed} == {RunStatus.FAILED}
    retried = store.get_execution("hourly-sync", "2026-11-02T10:00:00Z")
    assert retried is not None
    assert [a.status for a in retried.attempts] == [RunStatus.FAILED, RunStatus.SUCCEEDED]
    # Ticks 15 minutes apart look like missed ticks to the dispatcher: information only.
    assert report.tick_gaps_total == 24 * 4 - 1  # the first tick had none before it

    # and the command, on the same tables, agrees
    code, output = audit_cli(
        store, dynamodb_local, "--since", slot_key(day_start), "--until", slot_key(day_end)
    )
    assert code == 0, output
    assert "Clean" in output
    code, output = audit_cli(
        store,
        dynamodb_local,
        "quarter",
        "--since",
        slot_key(day_start),
        "--until",
        slot_key(day_end),
        "--json",
    )
    assert code == 0, output
    document = json.loads(output)
    assert document["ok"] is True
    assert [task["task_id"] for task in document["tasks"]] == ["quarter"]
    assert document["tasks"][0]["counts"]["final"] == 96
    assert document["findings"] == []


def test_a_removed_ledger_entry_is_found_as_a_gap(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    lambda_context: FakeLambdaContext,
    dynamodb_local: DynamoDBLocal,
) -> None:
    # given three hours of the engine, and one entry removed behind its back
    start = clock.now
    simulate_mixed_day(store, clock, lambda_queue, lambda_context, hours=3)
    store.client.delete_item(
        TableName=store.executions_table,
        Key={"task_id": {"S": "quarter"}, "slot": {"S": "2026-11-02T09:15:00Z"}},
    )
    window = ("--since", slot_key(start), "--until", slot_key(start + timedelta(hours=3)))

    # when it is audited
    report = audit(store, None, start, start + timedelta(hours=3), clock.now)

    # then the gap names the task and the slot, in the report and through the command
    assert [(f.kind, f.task_id, f.slot) for f in report.findings] == [
        (FindingKind.GAP, "quarter", "2026-11-02T09:15:00Z")
    ]
    code, output = audit_cli(store, dynamodb_local, *window)
    assert code == 1, output
    assert "gap: quarter 2026-11-02T09:15:00Z: no ledger entry" in output
    code, output = audit_cli(store, dynamodb_local, *window, "--json")
    assert code == 1, output
    document = json.loads(output)
    assert document["ok"] is False
    assert [(f["kind"], f["task_id"], f["slot"]) for f in document["findings"]] == [
        ("gap", "quarter", "2026-11-02T09:15:00Z")
    ]
    # a task without findings audits clean on its own
    code, output = audit_cli(store, dynamodb_local, "hourly-sync", *window)
    assert code == 0, output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "Invalid value for TASK: no task 'nope'"),
        (
            ["--since", "2026-11-02T10:00:00Z", "--until", "2026-11-02T09:00:00Z"],
            "Invalid value for --since: 2026-11-02T10:00:00Z is not before --until",
        ),
        (
            ["--since", "2026-11-02T09:00:00Z", "--until", "2026-11-02T09:00:00Z"],
            "Invalid value for --since: 2026-11-02T09:00:00Z is not before --until",
        ),
        (["--until", "yesterday"], "Invalid value for --until: 'yesterday' is not an ISO-8601"),
        (["--since", "2026-13-01"], "Invalid value for --since: '2026-13-01' is not an ISO-8601"),
    ],
)
def test_bad_input_exits_2_naming_the_argument(
    store: Store, dynamodb_local: DynamoDBLocal, args: list[str], message: str
) -> None:
    code, output = audit_cli(store, dynamodb_local, *args)

    assert code == 2, output
    assert message in " ".join(output.split())  # rich may wrap the error box


def test_unknown_tables_exit_2_with_a_message(store: Store, dynamodb_local: DynamoDBLocal) -> None:
    result = runner.invoke(
        app,
        [
            "audit",
            "--tasks-table",
            "no-such-table",
            "--executions-table",
            store.executions_table,
            "--endpoint-url",
            dynamodb_local.endpoint_url,
            "--region",
            dynamodb_local.region_name,
        ],
    )

    assert result.exit_code == 2, result.output
    assert "table not found" in result.output


# --- the header: what was checked, not only what was asked for --------------------------------


def _register(store: Store, name: str, schedule: str, at: datetime) -> None:
    definition = parse_task_definition(name, {"Schedule": schedule, "Function": name}, now=at)
    store.register(definition, definition.compiled_schedule().next_run, at, owner=TEST_OWNER.key)


def _tick_every(
    minutes: int, store: Store, clock: FakeClock, queue: QueuedLambda
) -> Callable[[datetime], None]:
    """The dispatcher on ``clock``, ticking every ``minutes`` up to a time: slots get claimed."""
    dispatcher = Dispatcher(Attempts(store, queue, clock=clock, rng=random.Random(1)))

    def tick_until(end: datetime) -> None:
        # On the schedule's own minutes, wherever the clock stands: each tick is its slot's.
        tick = clock.now.replace(minute=0, second=0, microsecond=0)
        while tick <= clock.now:
            tick += timedelta(minutes=minutes)
        while tick <= end:
            clock.now = tick
            dispatcher.tick(tick)
            tick += timedelta(minutes=minutes)

    return tick_until


def _manual_run(store: Store, clock: FakeClock, queue: QueuedLambda, task_id: str) -> None:
    task = store.get_task(task_id)
    assert task is not None
    Attempts(store, queue, clock=clock).start_manual_run(task, clock.now)


@pytest.mark.parametrize("width", [80, 200])
def test_the_header_states_the_slots_checked_from_each_registration_to_each_removal(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    dynamodb_local: DynamoDBLocal,
    width: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cronfleet_tools.cli import common

    # given three quarter-hourly tasks: two registered at 08:00, one of them removed at 09:30,
    # one registered at 09:00; a manual run at 09:31; the dispatcher ticking until 10:00
    tick_until = _tick_every(15, store, clock, lambda_queue)
    _register(store, "early", "*/15 * * * *", clock.now)
    _register(store, "gone", "*/15 * * * *", clock.now)
    tick_until(parse_slot("2026-11-02T09:00:00Z"))
    _register(store, "late", "*/15 * * * *", clock.now)
    tick_until(parse_slot("2026-11-02T09:30:00Z"))
    assert store.deregister("gone", clock.now, owner=TEST_OWNER.key)
    clock.advance(minutes=1)
    _manual_run(store, clock, lambda_queue, "early")
    tick_until(parse_slot("2026-11-02T10:00:00Z"))
    window = ("--since", "2026-11-02T08:00:00Z", "--until", "2026-11-02T10:00:00Z")
    monkeypatch.setattr(common.console, "width", width)

    # when the window is audited, long after it
    code, output = audit_cli(store, dynamodb_local, *window)

    # then the header and the table fit the terminal (findings stay whole lines, for grep)
    assert code == 0, output
    lines = output.splitlines()
    table_end = next(n for n, line in enumerate(lines) if line.startswith("└"))
    assert max(len(line) for line in lines[: table_end + 1]) <= width
    # and the header says what was asked, what was checked, and why each task's differs
    header = " ".join(output.split())
    assert f"Ledger audit of table {store.tasks_table}" in header
    assert "Asked for (2026-11-02T08:00:00Z, 2026-11-02T10:00:00Z]" in header
    # early 08:15 to 10:00, gone 08:15 to 09:15, late 09:15 to 10:00
    assert (
        "Checked (2026-11-02T08:00:00Z, 2026-11-02T10:00:00Z]: 17 scheduled slots, 1 manual run"
    ) in header
    assert "gone: slots checked only up to its removal at 2026-11-02T09:30:00Z." in header
    assert "late: slots checked only from its registration at 2026-11-02T09:00:00Z." in header
    assert "early:" not in header
    assert "not checked yet" not in header  # the window is long past: no slot too young
    [early_row] = [line for line in output.splitlines() if line.startswith("│ early ")]
    assert early_row.split("│")[-2].strip() == "1"  # the Manual column
    # and the JSON says the same
    code, output = audit_cli(store, dynamodb_local, *window, "--json")
    assert code == 0, output
    document = json.loads(output)
    assert document["audited"] == {
        "since": "2026-11-02T08:00:00Z",
        "until": "2026-11-02T10:00:00Z",
        "scheduled_slots": 17,
        "not_expected": 0,
        "manual_runs": 1,
        "manual_runs_until": "2026-11-02T10:00:00Z",
        "tick_grace_seconds": 300,
    }
    tasks = {task["task_id"]: task for task in document["tasks"]}
    assert {name: (task["registered_at"], task["removed_at"]) for name, task in tasks.items()} == {
        "early": (None, None),
        "gone": (None, "2026-11-02T09:30:00Z"),
        "late": ("2026-11-02T09:00:00Z", None),
    }
    assert tasks["gone"]["audited_to"] == "2026-11-02T09:29:59Z"


def test_a_manual_run_of_the_last_minutes_is_counted_while_the_slots_wait_out_the_grace(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    dynamodb_local: DynamoDBLocal,
) -> None:
    # given a five-minute task registered an hour ago, ticked until now, and run by hand a
    # minute ago
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    clock.now = now - timedelta(hours=1)
    _register(store, "recent", "*/5 * * * *", clock.now)
    _tick_every(5, store, clock, lambda_queue)(now - timedelta(minutes=1))
    clock.now = now - timedelta(minutes=1)
    _manual_run(store, clock, lambda_queue, "recent")

    # when the last 24 hours are audited
    code, output = audit_cli(store, dynamodb_local, "--json")

    # then the slots of the last five minutes wait, and the manual run does not
    assert code == 0, output
    audited = json.loads(output)["audited"]
    assert audited["manual_runs"] == 1
    assert datetime.fromisoformat(audited["until"]) <= datetime.now(UTC) - timedelta(minutes=5)
    assert audited["scheduled_slots"] in (11, 12)  # the hour's slots, but for the youngest
    code, output = audit_cli(store, dynamodb_local)
    header = " ".join(output.split())
    assert re.search(r": 1[12] scheduled slots, 1 manual run", header), header
    assert re.search(
        r"Slots after \S+Z \(5 minutes before now\) are not checked yet: their tick may still "
        r"be under way\. Manual runs are counted up to \S+Z\.",
        header,
    ), header
