"""Lifecycle on DynamoDB Local: lost runs, crashes and timeouts, overlap, catch-up, bad events.

Functions are loaded from template.yaml the way `sam local invoke` runs them (``sam_function``),
with Lambda's invoke queue replaced at the adapter edge by ``lambda_queue``.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from cronfleet.dispatch.service import Dispatcher
from cronfleet.lifecycle.attempts import START_GRACE, Attempts
from cronfleet.lifecycle.slots import slot_key
from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet.lifecycle.wrapper import TaskContext, scheduled_task
from cronfleet.registry.definition import parse_task_definition
from tests.support import TEST_OWNER, register

if TYPE_CHECKING:
    from cronfleet.store import ExecutionRecord, Store
    from tests.integration.conftest import FakeClock, QueuedLambda

pytestmark = pytest.mark.integration


@pytest.fixture
def before_eight(clock: FakeClock) -> FakeClock:
    clock.now = clock.now.replace(hour=7, minute=50)
    return clock


def ledger(store: Store, task_id: str) -> list[tuple[str, RunStatus]]:
    return [(e.slot, e.status) for e in store.executions(task_id)]


def only(store: Store, task_id: str) -> ExecutionRecord:
    (execution,) = store.executions(task_id)
    return execution


# --- a crash between claim and invoke ------------------------------------------------------------


def test_a_claim_whose_invoke_never_happened_is_redispatched_and_ends_once(
    store: Store, before_eight: FakeClock, lambda_queue: QueuedLambda
) -> None:
    clock = before_eight
    register(store, clock, "report", Schedule="0 8 * * *")
    runs: list[str] = []

    @scheduled_task(store=store, clock=clock)
    def report(task: TaskContext) -> None:
        runs.append(task.slot)

    # given a dispatcher that died after claiming 08:00 and before its invoke left
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    clock.now = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    dispatcher.tick(clock.now)
    lambda_queue.take()  # the invoke is lost with the dispatcher
    assert only(store, "report").status is RunStatus.PENDING

    # when the start grace has passed, the next tick's watchdog sends it again
    clock.advance(seconds=START_GRACE.total_seconds() + 60)
    report_of_tick = dispatcher.tick(clock.now.replace(second=0))
    lambda_queue.deliver(report)

    # then it ran once and the slot has exactly one final state
    assert report_of_tick.watchdog.redispatched == 1
    assert runs == ["2026-11-02T08:00:00Z"]
    execution = only(store, "report")
    assert execution.status is RunStatus.SUCCEEDED
    assert len(execution.attempts) == 1


def test_a_run_that_never_starts_is_lost_then_retried(
    store: Store, before_eight: FakeClock, lambda_queue: QueuedLambda
) -> None:
    clock = before_eight
    register(store, clock, "report", Schedule="0 8 * * *", Retry={"MaxAttempts": 2})
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    clock.now = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    dispatcher.tick(clock.now)
    for _ in range(2):  # the invoke and the watchdog's second invoke both vanish
        lambda_queue.take()
        clock.advance(seconds=START_GRACE.total_seconds() + 60)
        dispatcher.tick(clock.now.replace(second=0))

    execution = only(store, "report")
    # LOST: its code provably never started, so it is not called a failure of the code
    assert execution.attempts[0].status is RunStatus.LOST
    assert execution.attempts[0].error_type == "Lost"
    # the retry policy applies to a lost attempt as to any failure
    assert execution.status in (RunStatus.RETRY_WAIT, RunStatus.PENDING)


# --- crashes and timeouts reported by Lambda, through the recorder ---------------------


def destination_record(
    load_event: Callable[[str], Any],
    kind: str,
    event: dict[str, Any],
    at: datetime,
    *,
    request_id: str = "r-1",
) -> Any:
    """The sample record from events/, about this run, sent at ``at``, for the Lambda request
    that ran it (``code_started`` starts runs as request r-1)."""
    record = copy.deepcopy(load_event(f"recorder_{kind}"))
    record["requestPayload"] = event
    record["timestamp"] = at.isoformat()
    record["requestContext"]["requestId"] = request_id
    return record


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [
        ("timeout", RunStatus.TIMED_OUT, "Sandbox.Timedout"),
        ("crash", RunStatus.FAILED, "Runtime.ExitError"),
    ],
)
def test_the_recorder_finalises_a_timeout_or_crash_and_retries_follow(
    store: Store,
    before_eight: FakeClock,
    lambda_queue: QueuedLambda,
    sam_function: Callable[[str], ModuleType],
    load_event: Callable[[str], Any],
    lambda_context: Any,
    kind: str,
    status: RunStatus,
    error_type: str,
    code_started: Callable[..., None],
) -> None:
    clock = before_eight
    recorder = sam_function("RecorderFunction")
    retry = {"MaxAttempts": 2, "IntervalSeconds": 60, "JitterStrategy": "NONE"}
    register(store, clock, "report", Schedule="0 8 * * *", Retry=retry)
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    clock.now = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    dispatcher.tick(clock.now)
    ((_, event),) = lambda_queue.take()
    # the code started (the wrapper marked it RUNNING), then Lambda killed it
    code_started(event)

    # Lambda reports it two minutes in (one within 90 s of the start would be held for the
    # watchdog to confirm: see test_races_and_faults)
    clock.advance(minutes=2)
    answer = recorder.handler(
        destination_record(load_event, kind, event, clock.now), lambda_context
    )

    assert answer["status"] == "recorded"
    execution = only(store, "report")
    assert execution.attempts[0].status is status
    assert execution.attempts[0].error_type == error_type
    assert execution.status is RunStatus.RETRY_WAIT
    # a second copy of the same record changes nothing
    again = recorder.handler(destination_record(load_event, kind, event, clock.now), lambda_context)
    assert again["status"] == "already-recorded"

    # the backoff passes: attempt 2 is dispatched
    clock.advance(minutes=2)
    dispatcher.tick(clock.now.replace(second=0))
    assert [(slot, attempt) for _, slot, attempt in lambda_queue.slots_invoked()][-1] == (
        "2026-11-02T08:00:00Z",
        2,
    )


@pytest.mark.parametrize(
    ("kind", "final", "metrics"),
    [
        ("timeout", RunStatus.TIMED_OUT, {"RunFailed", "RunTimedOut"}),
        ("crash", RunStatus.FAILED, {"RunFailed"}),
    ],
)
def test_with_per_task_metrics_off_a_failed_run_still_feeds_the_failures_alarm(
    store: Store,
    before_eight: FakeClock,
    lambda_queue: QueuedLambda,
    sam_function: Callable[[str], ModuleType],
    load_event: Callable[[str], Any],
    lambda_context: Any,
    code_started: Callable[..., None],
    capsys: pytest.CaptureFixture[str],
    template: dict[str, Any],
    kind: str,
    final: RunStatus,
    metrics: set[str],
) -> None:
    # Given the recorder as the template deploys it: PerTaskMetrics at its default
    clock = before_eight
    recorder = sam_function("RecorderFunction")
    assert os.environ["CRONFLEET_PER_TASK_METRICS"] == "false"
    register(store, clock, "report", Schedule="0 8 * * *", Retry={"MaxAttempts": 1})
    clock.now = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    Dispatcher(Attempts(store, lambda_queue, clock=clock)).tick(clock.now)
    ((_, event),) = lambda_queue.take()
    code_started(event)
    capsys.readouterr()

    # When Lambda reports that the run's only attempt crashed or timed out
    clock.advance(minutes=2)
    recorder.handler(destination_record(load_event, kind, event, clock.now), lambda_context)

    # Then the run is final, and its metrics are the fleet's, with no task dimension...
    assert only(store, "report").status is final
    emitted = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    published = {
        (directive["Namespace"], metric["Name"], tuple(sorted(directive["Dimensions"][0])))
        for entry in emitted
        for directive in entry["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
    assert {name for _, name, _ in published} == metrics
    assert all(dimensions == ("service",) for _, _, dimensions in published)
    assert all("task" not in entry for entry in emitted)
    # ...and among them the very metric the failures alarm watches, with a value it counts
    alarm = template["Resources"]["FailedRunsAlarm"]["Properties"]
    watched = (alarm["Namespace"], alarm["MetricName"], ("service",))
    assert watched in published
    (failed,) = [e for e in emitted if alarm["MetricName"] in e]
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"service": failed["service"]}
    assert sum(failed[alarm["MetricName"]]) == 1


def test_a_function_that_fails_before_its_attempt_starts_leaves_its_request_id_on_it(
    store: Store,
    before_eight: FakeClock,
    lambda_queue: QueuedLambda,
    sam_function: Callable[[str], ModuleType],
    load_event: Callable[[str], Any],
    lambda_context: Any,
) -> None:
    # Given a dispatched attempt whose function died in its init, before the wrapper ran
    clock = before_eight
    recorder = sam_function("RecorderFunction")
    register(store, clock, "report", Schedule="0 8 * * *", Retry={"MaxAttempts": 1})
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    clock.now = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    dispatcher.tick(clock.now)
    ((_, event),) = lambda_queue.take()

    # When Lambda reports the failure of that request to the recorder
    clock.advance(minutes=1)
    record = destination_record(load_event, "crash", event, clock.now, request_id="r-init")
    answer = recorder.handler(record, lambda_context)

    # Then the attempt is LOST, and names the request whose logs say why
    assert answer["status"] == "recorded"
    (attempt,) = only(store, "report").attempts
    assert attempt.status is RunStatus.LOST
    assert attempt.request_id == "r-init"


def test_the_request_that_started_an_attempt_stays_its_request_when_it_ends(
    store: Store,
    before_eight: FakeClock,
    lambda_queue: QueuedLambda,
    sam_function: Callable[[str], ModuleType],
    load_event: Callable[[str], Any],
    lambda_context: Any,
    code_started: Callable[..., None],
) -> None:
    # Given an attempt the wrapper started as request r-1, which then timed out
    clock = before_eight
    recorder = sam_function("RecorderFunction")
    register(store, clock, "report", Schedule="0 8 * * *", Retry={"MaxAttempts": 1})
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    clock.now = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    dispatcher.tick(clock.now)
    ((_, event),) = lambda_queue.take()
    code_started(event)

    # When the recorder concludes it
    clock.advance(minutes=2)
    recorder.handler(destination_record(load_event, "timeout", event, clock.now), lambda_context)

    # Then the attempt still names the request that ran it
    (attempt,) = only(store, "report").attempts
    assert attempt.status is RunStatus.TIMED_OUT
    assert attempt.request_id == "r-1"


# --- overlap ---------------------------------------------------------------------------


def test_overlap_skip_records_skipped_while_the_previous_run_is_still_going(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    code_started: Callable[..., None],
) -> None:
    register(store, clock, "sync", Overlap="skip")
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))

    dispatcher.tick(clock.advance(minutes=1))  # 08:01
    ((_, event),) = lambda_queue.take()
    code_started(event)
    dispatcher.tick(clock.advance(minutes=1))  # 08:02, while 08:01 is RUNNING

    assert ledger(store, "sync") == [
        ("2026-11-02T08:01:00Z", RunStatus.RUNNING),
        ("2026-11-02T08:02:00Z", RunStatus.SKIPPED),
    ]
    assert store.get_execution("sync", "2026-11-02T08:02:00Z").skip_reason == "overlap"  # type: ignore[union-attr]
    assert lambda_queue.take() == []


def test_overlap_queue_one_runs_the_queued_slot_after_the_previous_finishes(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
) -> None:
    register(store, clock, "sync", Overlap="queue_one")
    runs: list[str] = []

    @scheduled_task(store=store, clock=clock)
    def sync(task: TaskContext) -> None:
        runs.append(task.slot)

    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    dispatcher.tick(clock.advance(minutes=1))  # 08:01 runs...
    ((_, first),) = lambda_queue.take()
    dispatcher.tick(clock.advance(minutes=1))  # 08:02 is queued behind it
    dispatcher.tick(clock.advance(minutes=1))  # 08:03: the queue is full, skipped
    sync(first, None)  # 08:01 finishes
    dispatcher.tick(clock.advance(minutes=1))  # 08:04: the watchdog releases 08:02
    lambda_queue.deliver(sync)

    statuses = dict(ledger(store, "sync"))
    assert statuses["2026-11-02T08:01:00Z"] is RunStatus.SUCCEEDED
    assert statuses["2026-11-02T08:02:00Z"] is RunStatus.SUCCEEDED
    assert statuses["2026-11-02T08:03:00Z"] is RunStatus.SKIPPED
    assert runs[:2] == ["2026-11-02T08:01:00Z", "2026-11-02T08:02:00Z"]


# --- catch-up after a dispatcher outage -----------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "runs", "missed_until"),
    [
        ("latest", ["11:00"], "11:00"),
        ("all", ["10:00", "10:15", "10:30", "10:45", "11:00"], "10:00"),
        ("none", ["11:00"], "11:00"),
    ],
)
def test_a_three_hour_outage_runs_what_the_catchup_policy_promises(
    store: Store,
    before_eight: FakeClock,
    lambda_queue: QueuedLambda,
    policy: str,
    runs: list[str],
    missed_until: str,
) -> None:
    clock = before_eight
    # given a quarter-hourly task with the default maximum lateness of one hour
    register(store, clock, "q", Schedule="*/15 * * * *", Catchup={"Policy": policy})

    @scheduled_task(store=store, clock=clock)
    def quarterly(task: TaskContext) -> None:
        return None

    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    clock.now = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    dispatcher.tick(clock.now)  # 08:00 runs; then the dispatcher is down until 11:00
    lambda_queue.deliver(quarterly)

    clock.now = datetime(2026, 11, 2, 11, 0, tzinfo=UTC)
    report = dispatcher.tick(clock.now)

    # then exactly the promised slots run, and every other slot is recorded as missed
    invoked = [slot[11:16] for _, slot, _ in lambda_queue.slots_invoked()][1:]
    assert invoked == runs
    entries = store.executions("q")
    missed = [e for e in entries if e.status is RunStatus.MISSED]
    assert len(missed) == 1  # older than the maximum lateness: one ranged entry
    assert (missed[0].slot, missed[0].range_until) == (
        "2026-11-02T08:15:00Z",
        f"2026-11-02T{missed_until}:00Z",
    )
    expected_missed = len(
        [t for t in range(8 * 60 + 15, 11 * 60 + 1, 15) if f"{t // 60:02}:{t % 60:02}" not in runs]
    )
    assert missed[0].slot_count == expected_missed
    triggers = {e.slot[11:16]: e.trigger for e in entries if e.status is RunStatus.PENDING}
    assert triggers["11:00"] is Trigger.SCHEDULE
    assert all(trigger is Trigger.CATCHUP for slot, trigger in triggers.items() if slot != "11:00")
    assert report.missed_ticks == 179
    task = store.get_task("q")
    assert task is not None
    assert task.stats.missed == expected_missed


def test_a_short_outage_records_each_missed_slot(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
) -> None:
    register(store, clock, "minutely", Catchup={"Policy": "latest"}, Overlap="allow")
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    dispatcher.tick(clock.advance(minutes=1))  # 08:01
    dispatcher.tick(clock.advance(minutes=5))  # 08:06: 08:02-08:05 were missed

    assert ledger(store, "minutely") == [
        ("2026-11-02T08:01:00Z", RunStatus.PENDING),
        ("2026-11-02T08:02:00Z", RunStatus.MISSED),
        ("2026-11-02T08:03:00Z", RunStatus.MISSED),
        ("2026-11-02T08:04:00Z", RunStatus.MISSED),
        ("2026-11-02T08:05:00Z", RunStatus.MISSED),
        ("2026-11-02T08:06:00Z", RunStatus.PENDING),
    ]


def test_a_one_time_task_runs_once_and_then_completes(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
) -> None:
    register(store, clock, "once", Schedule="at(2026-11-02T08:05:00)")

    @scheduled_task(store=store, clock=clock)
    def once(task: TaskContext) -> None:
        return None

    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    for _ in range(10):
        dispatcher.tick(clock.advance(minutes=1))
        lambda_queue.deliver(once)

    assert [slot for _, slot, _ in lambda_queue.slots_invoked()] == ["2026-11-02T08:05:00Z"]
    assert only(store, "once").status is RunStatus.SUCCEEDED
    task = store.get_task("once")
    assert task is not None
    assert (task.next_run, task.due_at) == (None, None)


def test_pause_and_resume_keep_a_ledger_entry_for_every_slot(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
) -> None:
    task = register(store, clock, "minutely", Overlap="allow")
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    dispatcher.tick(clock.advance(minutes=1))  # 08:01 runs
    store.pause("minutely", clock.now)
    for _ in range(3):
        dispatcher.tick(clock.advance(minutes=1))  # 08:02-08:04: paused, nothing due
    store.resume("minutely", task.definition.compiled_schedule().next_run, clock.now)
    dispatcher.tick(clock.advance(minutes=1))  # 08:05 runs again

    entries = store.executions("minutely")
    assert [(e.slot[11:16], e.status, e.range_until) for e in entries] == [
        ("08:01", RunStatus.PENDING, None),
        ("08:02", RunStatus.SKIPPED, "2026-11-02T08:05:00Z"),
        ("08:05", RunStatus.PENDING, None),
    ]
    assert entries[1].skip_reason == "paused"


# --- bad events change nothing ------------------------------------------------------------------


def test_a_malformed_tick_is_rejected_and_dispatches_nothing(
    store: Store,
    clock: FakeClock,
    sam_function: Callable[[str], ModuleType],
    lambda_context: Any,
    lambda_queue: QueuedLambda,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dispatcher_app = sam_function("DispatcherFunction")
    dispatcher_app.dispatcher().attempts.invoker = (
        lambda_queue  # Lambda's control plane: the adapter edge
    )
    register(store, clock, "report")
    before = store.get_task("report")

    for event in ({}, {"scheduled_time": "yesterday"}, {"scheduled_time": "2026-11-02T08:01:00"}):
        answer = dispatcher_app.handler(event, lambda_context)
        assert answer["status"] == "rejected"
        assert answer["problems"][0].startswith("scheduled_time:")

    assert store.get_task("report") == before
    assert store.executions("report") == []
    assert lambda_queue.invoked == []
    assert any("Malformed tick event" in r.getMessage() for r in caplog.records)


def test_the_dispatcher_function_handles_the_sample_tick(
    store: Store,
    process_clock: FakeClock,
    sam_function: Callable[[str], ModuleType],
    load_event: Callable[[str], Any],
    lambda_context: Any,
    lambda_queue: QueuedLambda,
) -> None:
    dispatcher_app = _dispatcher_before_nine(store, process_clock, sam_function, lambda_queue)

    answer = dispatcher_app.handler(load_event("dispatcher_tick"), lambda_context)

    assert (answer["status"], answer["claimed"], answer["invoked"]) == ("dispatched", 1, 1)
    assert lambda_queue.slots_invoked() == [("report", "2026-11-02T09:00:00Z", 1)]


def test_the_dispatcher_publishes_its_heartbeat_every_tick_and_a_count_only_when_not_zero(
    store: Store,
    process_clock: FakeClock,
    sam_function: Callable[[str], ModuleType],
    load_event: Callable[[str], Any],
    lambda_context: Any,
    lambda_queue: QueuedLambda,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the template's dispatcher, one task due at 09:00, and a quiet tick before it
    dispatcher_app = _dispatcher_before_nine(store, process_clock, sam_function, lambda_queue)
    quiet = {**load_event("dispatcher_tick"), "scheduled_time": "2026-11-02T08:59:00Z"}
    capsys.readouterr()

    # When the quiet tick and then the busy one are dispatched
    dispatcher_app.handler(quiet, lambda_context)
    quiet_metrics = _published_values(capsys)
    dispatcher_app.handler(load_event("dispatcher_tick"), lambda_context)
    busy_metrics = _published_values(capsys)

    # Then the quiet tick sent the heartbeat alone (CloudWatch bills a metric for each hour it
    # has data, and the heartbeat's alarm reads no data as a stopped dispatcher)...
    assert quiet_metrics == {"DispatcherHeartbeat": 1}
    # ...and the busy one its counts too, with none of the counts that were zero
    assert busy_metrics == {"DispatcherHeartbeat": 1, "Invoked": 1}


def _dispatcher_before_nine(
    store: Store,
    clock: FakeClock,
    sam_function: Callable[[str], ModuleType],
    lambda_queue: QueuedLambda,
) -> ModuleType:
    """The template's dispatcher at 08:59, invoking into the queue, with "report" due at 09:00."""
    dispatcher_app = sam_function("DispatcherFunction")
    dispatcher_app.dispatcher().attempts.invoker = lambda_queue  # Lambda's control plane
    clock.now = datetime(2026, 11, 2, 8, 59, tzinfo=UTC)
    register(store, clock, "report", Schedule="0 9 * * *")
    return dispatcher_app


def _published_values(capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    """The metrics the EMF lines printed since the last read published, by name."""
    values: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if '"_aws"' not in line:
            continue
        entry = json.loads(line)
        for directive in entry["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = entry[metric["Name"]]
                values[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return values


def test_a_malformed_envelope_runs_nothing_and_records_nothing(
    store: Store, clock: FakeClock, load_event: Callable[[str], Any]
) -> None:
    register(store, clock, "report")
    runs: list[str] = []

    @scheduled_task(store=store, clock=clock)
    def report(task: TaskContext) -> None:
        runs.append(task.slot)

    good = load_event("example_task_scheduled")
    for bad in (
        {"cronfleet": {}},
        {"cronfleet": {**good["cronfleet"], "attempt": 0}},
        {"cronfleet": {**good["cronfleet"], "slot": "tomorrow"}},
        {"cronfleet": {**good["cronfleet"], "trigger": "whenever"}},
    ):
        answer = report(bad, None)
        assert answer["status"] == "rejected"
        assert answer["problems"]

    assert runs == []
    assert store.executions("report") == []


def test_a_malformed_destination_record_is_rejected_and_changes_nothing(
    store: Store,
    clock: FakeClock,
    sam_function: Callable[[str], ModuleType],
    load_event: Callable[[str], Any],
    lambda_context: Any,
) -> None:
    recorder = sam_function("RecorderFunction")
    register(store, clock, "ExampleTask")
    good = load_event("recorder_timeout")
    bad_records = [
        {},
        {**good, "requestContext": {}},
        {**good, "requestPayload": {"greeting": "hello"}},  # not a cronfleet run
        {**good, "timestamp": "not a time"},
    ]
    for record in bad_records:
        assert recorder.handler(record, lambda_context)["status"] == "rejected"
    assert store.executions("ExampleTask") == []


def test_the_example_task_function_records_a_scheduled_run(
    store: Store,
    clock: FakeClock,
    sam_function: Callable[[str], ModuleType],
    lambda_context: Any,
    lambda_queue: QueuedLambda,
) -> None:
    example = sam_function("ExampleTaskFunction")
    register(store, clock, "report", Payload={"greeting": "hello"})
    Dispatcher(Attempts(store, lambda_queue, clock=clock)).tick(clock.advance(minutes=1))

    (answer,) = lambda_queue.deliver(example.handler, lambda_context)

    assert answer["status"] == "SUCCEEDED"
    execution = only(store, "report")
    assert execution.attempts[0].result == {"ok": True, "echo": {"greeting": "hello"}}


def test_a_direct_invoke_of_a_known_task_is_recorded_as_a_manual_run(
    store: Store,
    clock: FakeClock,
    sam_function: Callable[[str], ModuleType],
    load_event: Callable[[str], Any],
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register(store, clock, "ExampleTask")
    monkeypatch.setenv("CRONFLEET_TASK_ID", "ExampleTask")
    example = sam_function("ExampleTaskFunction")

    answer = example.handler(load_event("example_task"), lambda_context)

    assert (answer["status"], answer["recorded"]) == ("SUCCEEDED", True)
    execution = only(store, "ExampleTask")
    assert execution.trigger is Trigger.MANUAL
    assert "#manual-" in execution.slot
    assert execution.status is RunStatus.SUCCEEDED
    assert slot_key(clock.now)  # the ledger clock is untouched by a manual run


def test_slots_while_a_task_was_disabled_get_one_skipped_entry(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
) -> None:
    register(store, clock, "minutely", Overlap="allow")
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    dispatcher.tick(clock.advance(minutes=1))  # 08:01 runs
    register(store, clock, "minutely", Overlap="allow", Enabled="false")  # a deploy disables it
    for _ in range(3):
        dispatcher.tick(clock.advance(minutes=1))  # 08:02-08:04: nothing is due
    register(store, clock, "minutely", Overlap="allow")  # and a later deploy enables it again
    dispatcher.tick(clock.advance(minutes=1))  # 08:05

    entries = store.executions("minutely")
    assert [(e.slot[11:16], e.status, e.range_until, e.slot_count) for e in entries] == [
        ("08:01", RunStatus.PENDING, None, 1),
        ("08:02", RunStatus.SKIPPED, "2026-11-02T08:05:00Z", 3),
        ("08:05", RunStatus.PENDING, None, 1),
    ]
    assert entries[1].skip_reason == "disabled"


# --- invoke failures and overruns ----------------------------------------------------------------


class RefusingOnce:
    """Lambda's control plane throttling the first invoke, then accepting (the adapter edge)."""

    def __init__(self, queue: QueuedLambda) -> None:
        self.queue = queue
        self.refused = 0

    def invoke(self, function: str, event: dict[str, Any]) -> None:
        from cronfleet.invoker import InvokeError

        if not self.refused:
            self.refused += 1
            raise InvokeError("TooManyRequestsException", "Rate Exceeded.")
        self.queue.invoke(function, event)


def test_a_failed_invoke_is_recorded_on_the_attempt_and_retried(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
) -> None:
    retry = {"MaxAttempts": 3, "IntervalSeconds": 60, "JitterStrategy": "NONE"}
    register(store, clock, "report", Schedule="5 8 * * *", Retry=retry)
    dispatcher = Dispatcher(Attempts(store, RefusingOnce(lambda_queue), clock=clock))

    clock.now = datetime(2026, 11, 2, 8, 5, tzinfo=UTC)
    report = dispatcher.tick(clock.now)
    first = only(store, "report")
    dispatcher.tick(clock.advance(minutes=1))  # the backoff has passed: attempt 2

    assert (report.invoked, report.invoke_failures) == (0, 1)
    assert first.status is RunStatus.RETRY_WAIT
    assert first.attempts[0].error_type == "InvokeError.TooManyRequestsException"
    assert first.attempts[0].error_message == "Rate Exceeded."
    assert lambda_queue.slots_invoked() == [("report", "2026-11-02T08:05:00Z", 2)]


def test_a_run_past_its_deadline_is_timed_out_by_the_watchdog(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    code_started: Callable[..., None],
) -> None:
    register(store, clock, "slow", Schedule="5 8 * * *", TimeoutSeconds="60")
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    clock.now = datetime(2026, 11, 2, 8, 5, tzinfo=UTC)
    dispatcher.tick(clock.now)
    ((_, event),) = lambda_queue.take()
    code_started(event, timeout=timedelta(seconds=60))

    clock.advance(minutes=2)  # past the deadline, within the grace: still running
    assert dispatcher.tick(clock.now.replace(second=0)).watchdog.timed_out == 0
    clock.advance(minutes=2)  # past deadline + grace, and no word from Lambda
    assert dispatcher.tick(clock.now.replace(second=0)).watchdog.timed_out == 1

    execution = only(store, "slow")
    assert execution.attempts[0].status is RunStatus.TIMED_OUT
    assert execution.status is RunStatus.RETRY_WAIT  # the default policy retries it


# --- Http tasks run in the built-in HTTP caller ------------------------------------------


def test_an_http_task_is_dispatched_to_the_built_in_caller_and_recorded(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    sam_function: Callable[[str], ModuleType],
    lambda_context: Any,
) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Route(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.dumps({"success": True, "message": "4 feedback items scanned"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Route)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/cron/hunter-scan"
        # Loopback and plain HTTP are refused unless a task opts in: this one does, for the test.
        http = {
            "Url": url,
            "Method": "POST",
            "SuccessField": "success",
            "AllowInsecureHttp": "true",
            "AllowPrivateNetwork": "true",
        }
        definition = parse_task_definition(
            "hunter-scan", {"Schedule": "rate(5 minutes)", "Http": http}
        )
        store.register(
            definition, definition.compiled_schedule().next_run, clock.now, owner=TEST_OWNER.key
        )
        caller = sam_function("HttpTaskFunction")
        dispatcher = Dispatcher(
            Attempts(store, lambda_queue, clock=clock, http_function="cronfleet-HttpTask")
        )

        dispatcher.tick(clock.advance(minutes=5))
        ((function, event),) = lambda_queue.take()
        answer = caller.handler(event, lambda_context)
    finally:
        server.shutdown()
        server.server_close()

    assert function == "cronfleet-HttpTask"
    assert event["cronfleet"]["payload"]["http"]["Url"] == url
    assert answer["status"] == "SUCCEEDED"
    execution = only(store, "hunter-scan")
    assert execution.status is RunStatus.SUCCEEDED
    assert execution.attempts[0].result["status"] == 200
    assert "4 feedback items scanned" in execution.attempts[0].result["body_preview"]


def test_the_weekly_digest_function_runs_from_its_sample_event(
    store: Store,
    before_eight: FakeClock,
    lambda_queue: QueuedLambda,
    sam_function: Callable[[str], ModuleType],
    load_event: Callable[[str], Any],
    lambda_context: Any,
) -> None:
    clock = before_eight
    register(store, clock, "WeeklyDigestTask", Schedule="cron(0 8 ? * MON *)")
    register(store, clock, "report", Schedule="*/15 * * * *")
    digest = sam_function("WeeklyDigestFunction")
    clock.now = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    Dispatcher(Attempts(store, lambda_queue, clock=clock)).tick(clock.now)
    assert ("WeeklyDigestTask", "2026-11-02T08:00:00Z", 1) in lambda_queue.slots_invoked()

    # the sample event is that same slot and attempt, as `sam local invoke` would send it
    answer = digest.handler(load_event("weekly_digest"), lambda_context)

    assert answer["status"] == "SUCCEEDED"
    execution = store.get_execution("WeeklyDigestTask", "2026-11-02T08:00:00Z")
    assert execution is not None
    assert execution.attempts[0].result == {"tasks": 2, "published": False}


def test_the_example_task_function_runs_from_its_scheduled_sample_event(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    sam_function: Callable[[str], ModuleType],
    load_event: Callable[[str], Any],
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock.now = datetime(2026, 11, 2, 8, 55, tzinfo=UTC)
    register(store, clock, "ExampleTask", Schedule="0 9 * * *", Payload={"greeting": "hello"})
    example = sam_function("ExampleTaskFunction")
    clock.now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    Dispatcher(Attempts(store, lambda_queue, clock=clock)).tick(clock.now)

    answer = example.handler(load_event("example_task_scheduled"), lambda_context)

    assert answer["status"] == "SUCCEEDED"
    execution = only(store, "ExampleTask")
    assert execution.attempts[0].result == {"ok": True, "echo": {"greeting": "hello"}}
    # the run's log lines carry the execution id as their correlation id
    from cronfleet.observability import logger

    assert logger.get_correlation_id() == "ExampleTask#2026-11-02T09:00:00Z"


def test_the_http_task_function_runs_from_its_sample_event_and_records_the_failure(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    sam_function: Callable[[str], ModuleType],
    load_event: Callable[[str], Any],
    lambda_context: Any,
) -> None:
    # The sample calls a public URL; tests have no network, so the call fails to connect,
    # which is a retryable failure, recorded with its reason.
    sample = load_event("http_task")
    http = sample["cronfleet"]["payload"]["http"]
    clock.now = datetime(2026, 11, 2, 8, 55, tzinfo=UTC)
    definition = parse_task_definition("HealthCheckTask", {"Schedule": "0 9 * * *", "Http": http})
    store.register(
        definition, definition.compiled_schedule().next_run, clock.now, owner=TEST_OWNER.key
    )
    caller = sam_function("HttpTaskFunction")
    clock.now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    Dispatcher(Attempts(store, lambda_queue, clock=clock, http_function="http")).tick(clock.now)

    answer = caller.handler(sample, lambda_context)

    assert answer["status"] == "RETRY_SCHEDULED"
    execution = only(store, "HealthCheckTask")
    assert execution.status is RunStatus.RETRY_WAIT
    assert execution.attempts[0].error_type is not None
    assert execution.attempts[0].error_type.startswith("HttpCall")
