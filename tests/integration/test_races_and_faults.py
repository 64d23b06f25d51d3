"""The core promise under races and faults, on DynamoDB Local: one regression test per defect.

Each test reproduces an interleaving or a fault a real deployment meets: a deploy landing
between a claim's read and its write, a response lost after its write committed, a crash
between the transactions of one claim, a tick from the wrong day. Interleavings are made at the
network edge (``before_next`` runs the other writer just before this one's request goes out),
and faults by the fault injector on the writer's own boto3 client; nothing in the store is
patched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from cronfleet.alerts.alerter import Alerter
from cronfleet.dispatch.plan import CLAIM_ITEMS
from cronfleet.dispatch.service import Dispatcher
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.lifecycle.outcomes import AttemptOutcome
from cronfleet.lifecycle.recorder import FailureDestinationRecord, record_failure
from cronfleet.lifecycle.slots import epoch, parse_slot, slot_key
from cronfleet.lifecycle.states import RunStatus
from cronfleet.lifecycle.wrapper import TaskContext, scheduled_task
from cronfleet.registry.definition import parse_task_definition
from cronfleet.store import Store
from cronfleet_tools.audit import FindingKind, audit
from tests.support import TEST_OWNER, register
from tests.support.faults import FaultInjector, FaultKind, SimulatedCrash, before_next

if TYPE_CHECKING:
    from cronfleet_tools.local.dynamodb_local import DynamoDBLocal
    from tests.integration.conftest import FakeClock, QueuedLambda

pytestmark = pytest.mark.integration

EIGHT = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def other_writer(store: Store, dynamodb_local: DynamoDBLocal) -> Callable[[], Store]:
    """Another process on the same tables, with a boto3 client of its own."""

    def make() -> Store:
        return Store(store.tasks_table, store.executions_table, client=dynamodb_local.client())

    return make


def deploy(store: Store, clock: FakeClock, name: str, **properties: Any) -> None:
    register(store, clock, name, **properties)


def audit_now(
    store: Store, clock: FakeClock, since: datetime, until: datetime | None = None
) -> Any:
    """The audit of every task's slots in (since, until], as run at ``clock.now``."""
    return audit(store, None, since, until or clock.now, clock.now)


# --- 1. a deploy racing a tick -------------------------------------------------------------------


def test_a_deploy_racing_a_claim_never_puts_back_the_slot_the_claim_took(
    store: Store, clock: FakeClock, lambda_queue: QueuedLambda, other_writer: Callable[[], Store]
) -> None:
    # given a per-minute task due at 08:00, and a deployer that has read it, when the
    # dispatcher claims 08:00 before the deployer's write goes out
    clock.now = EIGHT - timedelta(seconds=30)
    register(store, clock, "minutely")
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    deployer = other_writer()
    clock.now = EIGHT
    before_next(deployer.client, "TransactWriteItems", lambda: dispatcher.tick(EIGHT))
    deploy(deployer, clock, "minutely", Payload={"v": 2})

    # then the deploy kept the claim's advance: the next slot is 08:01, not 08:00 again
    task = store.get_task("minutely")
    assert task is not None
    assert task.next_run == EIGHT + timedelta(minutes=1)
    assert task.definition.payload == {"v": 2}
    # and the following ticks keep claiming, so nothing is wedged
    for minute in (1, 2):
        clock.now = EIGHT + timedelta(minutes=minute)
        report = dispatcher.tick(clock.now)
        assert report.claimed == 1
    assert [e.slot for e in store.executions("minutely")] == [
        slot_key(EIGHT + timedelta(minutes=m)) for m in range(3)
    ]


def test_a_hundred_redeploys_during_six_ticks_leave_no_task_wedged(
    store: Store, clock: FakeClock, lambda_queue: QueuedLambda, other_writer: Callable[[], Store]
) -> None:
    # given 100 per-minute tasks, re-registered over and over by a deployer while six ticks run
    clock.now = EIGHT - timedelta(seconds=30)
    names = [f"task-{n:03}" for n in range(100)]
    for name in names:
        register(store, clock, name)
    deployer = other_writer()
    stop = threading.Event()

    def redeploy_forever() -> None:
        round_ = 0
        while not stop.is_set():
            round_ += 1
            for name in names:
                deploy(deployer, clock, name, Payload={"round": round_})

    thread = threading.Thread(target=redeploy_forever)
    thread.start()
    try:
        dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
        for minute in range(6):
            clock.now = EIGHT + timedelta(minutes=minute)
            dispatcher.tick(clock.now)
    finally:
        stop.set()
        thread.join()

    # then every task holds one entry per tick and none is stuck on a slot already claimed
    for name in names:
        slots = [e.slot for e in store.executions(name)]
        assert slots == [slot_key(EIGHT + timedelta(minutes=m)) for m in range(6)], name
    clock.now += timedelta(minutes=10)
    report = audit_now(store, clock, EIGHT - timedelta(minutes=1))
    assert not [f for f in report.findings if f.kind is FindingKind.WEDGED]


# --- 2. a pause racing a deploy ------------------------------------------------------------------


def test_a_pause_racing_a_deploy_stays_paused(
    store: Store, clock: FakeClock, other_writer: Callable[[], Store]
) -> None:
    # given a task, and a deployer that read it before an operator paused it
    register(store, clock, "report", Schedule="0 9 * * *")
    deployer = other_writer()
    before_next(deployer.client, "TransactWriteItems", lambda: store.pause("report", clock.now))

    # when the deploy's write lands after the pause
    deploy(deployer, clock, "report", Schedule="0 10 * * *")

    # then the task is paused with the new definition, and no tick will dispatch it
    task = store.get_task("report")
    assert task is not None
    assert task.paused
    assert task.definition.schedule == "0 10 * * *"
    assert store.due_tasks(clock.now + timedelta(days=30)) == []


# --- 3. a large claim is all or nothing, chunk by chunk ------------------------------------------


def test_a_catch_up_claimed_in_chunks_survives_a_crash_between_them(
    store: Store, clock: FakeClock, lambda_queue: QueuedLambda, dynamodb_local: DynamoDBLocal
) -> None:
    # given a per-minute task catching up everything after 1,000 minutes of downtime
    clock.now = EIGHT - timedelta(seconds=30)
    catchup = {"Policy": "all", "MaxRuns": 1000, "MaxLatenessSeconds": 86400}
    register(store, clock, "minutely", Catchup=catchup)
    crashing = Store(store.tasks_table, store.executions_table, client=dynamodb_local.client())
    faults = FaultInjector(seed=1, rate=0).attach(crashing.client)
    tick = EIGHT + timedelta(minutes=1000)
    clock.now = tick

    # when the dispatcher dies right after the first chunk of the claim committed
    faults.force(FaultKind.CRASH, on="TransactWriteItems")
    with pytest.raises(SimulatedCrash):
        Dispatcher(Attempts(crashing, lambda_queue, clock=clock)).tick(tick)
    first_chunk = store.executions("minutely")
    task = store.get_task("minutely")
    assert task is not None

    # then what was written is whole: every entry written is a run the task counts as active
    assert 0 < len(first_chunk) <= CLAIM_ITEMS
    assert {e.slot for e in first_chunk if e.status is RunStatus.PENDING} == task.active_slots
    assert task.catchup_through is not None

    # and the next tick finishes the catch-up that was decided: the latest 1,000 slots run,
    # the oldest is missed, and the tick's own slot waits its turn behind them (overlap: skip)
    clock.now = tick + timedelta(minutes=1)
    Dispatcher(Attempts(store, lambda_queue, clock=clock)).tick(clock.now)
    entries = {parse_slot(e.slot): e.status for e in store.executions("minutely")}
    runs = sorted(slot for slot, status in entries.items() if status is RunStatus.PENDING)
    assert runs == [EIGHT + timedelta(minutes=m) for m in range(1, 1001)]
    assert entries[EIGHT] is RunStatus.MISSED
    assert entries[clock.now] is RunStatus.SKIPPED
    assert len(entries) == 1002
    task = store.get_task("minutely")
    assert task is not None
    assert task.catchup_through is None
    assert {slot_key(slot) for slot in runs} == task.active_slots
    last_tick = clock.now
    clock.now += timedelta(minutes=10)
    report = audit_now(store, clock, EIGHT - timedelta(minutes=1), last_tick)
    assert report.ok, [str(f) for f in report.findings if not f.informational]


def test_the_audit_reports_a_task_busy_on_a_slot_that_has_no_entry(
    store: Store, clock: FakeClock
) -> None:
    # given the residue of a claim that stopped halfway: a slot in the active set, no entry
    register(store, clock, "report", Schedule="0 9 * * *")
    store.client.update_item(
        TableName=store.tasks_table,
        Key={"task_id": {"S": "report"}},
        UpdateExpression="ADD active_slots :slot",
        ExpressionAttributeValues={":slot": {"SS": ["2026-11-02T09:00:00Z"]}},
    )
    clock.now = EIGHT + timedelta(hours=3)

    # when the ledger is audited
    report = audit_now(store, clock, EIGHT)

    # then the task is reported, and the audit fails
    (finding,) = [f for f in report.findings if f.kind is FindingKind.BUSY_WITHOUT_ENTRY]
    assert finding.slot == "2026-11-02T09:00:00Z"
    assert "has no ledger entry" in finding.detail
    assert not report.ok


def test_the_audit_reports_a_task_whose_next_slot_can_never_be_claimed(
    store: Store, clock: FakeClock, lambda_queue: QueuedLambda
) -> None:
    # given the residue of a deploy that put back a claimed slot: due again at 09:00, which
    # already has its entry
    register(store, clock, "report", Schedule="0 9 * * *")
    clock.now = EIGHT + timedelta(hours=1)
    Dispatcher(Attempts(store, lambda_queue, clock=clock)).tick(clock.now)
    store.client.update_item(
        TableName=store.tasks_table,
        Key={"task_id": {"S": "report"}},
        UpdateExpression="SET due_at = :nine",
        ExpressionAttributeValues={":nine": {"N": str(epoch(clock.now))}},
    )
    clock.now += timedelta(hours=2)

    # when the ledger is audited, then the wedged task is reported
    report = audit_now(store, clock, EIGHT)
    (finding,) = [f for f in report.findings if f.kind is FindingKind.WEDGED]
    assert finding.slot == "2026-11-02T09:00:00Z"
    assert not report.ok


# --- 4. a retried write that had already committed ----------------------------------------------


def lambda_reports(
    load_event: Callable[[str], Any],
    event: dict[str, Any],
    at: datetime,
    failure: BaseException | None = None,
    *,
    request_id: str | None = None,
) -> FailureDestinationRecord:
    """The on-failure record Lambda sends when an invocation of ``event`` failed: raising
    ``failure``, or (without one) crashing as the sample record says, in ``request_id``."""
    record = load_event("recorder_crash")
    record["requestPayload"] = event
    record["timestamp"] = at.isoformat()
    if failure is not None:
        record["responsePayload"] = {
            "errorType": type(failure).__name__,
            "errorMessage": str(failure),
        }
    if request_id is not None:
        record["requestContext"]["requestId"] = request_id
    return FailureDestinationRecord.model_validate(record)


@pytest.fixture
def running(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    code_started: Callable[..., None],
) -> tuple[Dispatcher, dict[str, Any]]:
    """A daily 09:00 task's run, dispatched at 09:00 and started in Lambda request r-1; the
    dispatcher, and the event Lambda delivered."""
    register(store, clock, "report", Schedule="0 9 * * *", Retry={"MaxAttempts": 1})
    clock.now = EIGHT + timedelta(hours=1)
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    dispatcher.tick(clock.now)
    ((_, event),) = lambda_queue.take()
    code_started(event)
    return dispatcher, event


def wrapper_with_faults(
    store: Store, dynamodb_local: DynamoDBLocal, clock: FakeClock, ran: list[str]
) -> tuple[Callable[[Any, Any], dict[str, Any]], FaultInjector]:
    """A task function whose ledger writes go through a client of its own, with faults."""
    own = Store(store.tasks_table, store.executions_table, client=dynamodb_local.client())
    faults = FaultInjector(seed=7, rate=0).attach(own.client)

    @scheduled_task(store=own, clock=clock)
    def handler(task: TaskContext) -> dict[str, Any]:
        ran.append(task.slot)
        return {"ok": True}

    return handler, faults


@pytest.mark.parametrize(
    "fault", [FaultKind.LOST_RESPONSE, FaultKind.STALL, FaultKind.LATE_ORIGINAL]
)
def test_a_start_whose_response_was_lost_still_runs_the_code_once(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    dynamodb_local: DynamoDBLocal,
    fault: FaultKind,
) -> None:
    # given a dispatched run, and a task function whose PENDING -> RUNNING write commits but
    # whose response never arrives, so botocore sends it again
    register(store, clock, "report", Schedule="0 9 * * *")
    clock.now = EIGHT + timedelta(hours=1)
    Dispatcher(Attempts(store, lambda_queue, clock=clock)).tick(clock.now)
    ran: list[str] = []
    handler, faults = wrapper_with_faults(store, dynamodb_local, clock, ran)
    faults.force(fault, on="UpdateItem")

    # when Lambda delivers the event, and then delivers it a second time
    (first,) = lambda_queue.deliver(handler)
    faults.settle()
    for _, event in lambda_queue.invoked:
        handler(event, None)

    # then the code ran exactly once and the attempt is recorded as what it did
    assert faults.injected[fault] == 1
    assert first["status"] == "SUCCEEDED"
    assert ran == ["2026-11-02T09:00:00Z"]
    (execution,) = store.executions("report")
    assert execution.status is RunStatus.SUCCEEDED
    assert [a.status for a in execution.attempts] == [RunStatus.SUCCEEDED]


def test_an_attempt_whose_code_never_started_is_recorded_lost_not_timed_out(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    dynamodb_local: DynamoDBLocal,
    load_event: Callable[[str], Any],
) -> None:
    # given a task function that cannot reach the ledger at all when the run starts
    register(store, clock, "report", Schedule="0 9 * * *", Retry={"MaxAttempts": 1})
    clock.now = EIGHT + timedelta(hours=1)
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    dispatcher.tick(clock.now)
    ran: list[str] = []
    handler, faults = wrapper_with_faults(store, dynamodb_local, clock, ran)
    faults.force(FaultKind.THROTTLE, on="UpdateItem", times=100)
    ((_, event),) = lambda_queue.take()

    # when the invocation fails, and Lambda hands its failure to the recorder
    with pytest.raises(Exception, match="its code was not run") as failure:
        handler(event, None)
    record_failure(Attempts(store), lambda_reports(load_event, event, clock.now, failure.value))
    # and the watchdog looks long after the deadline
    clock.now += timedelta(hours=1)
    dispatcher.tick(clock.now.replace(second=0))

    # then the code never ran, and the ledger says so: LOST with the reason, not TIMED_OUT
    assert ran == []
    (execution,) = store.executions("report")
    assert execution.status is RunStatus.FAILED
    (attempt,) = execution.attempts
    assert attempt.status is RunStatus.LOST
    assert attempt.error_type == "AttemptNotStarted"
    assert "could not be marked RUNNING" in (attempt.error_message or "")


def test_an_outcome_the_wrapper_could_not_write_is_recorded_by_the_recorder(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    dynamodb_local: DynamoDBLocal,
    load_event: Callable[[str], Any],
) -> None:
    # given a run whose code succeeds, after which the ledger stops answering that function
    register(store, clock, "report", Schedule="0 9 * * *")
    clock.now = EIGHT + timedelta(hours=1)
    Dispatcher(Attempts(store, lambda_queue, clock=clock)).tick(clock.now)
    ran: list[str] = []
    handler, faults = wrapper_with_faults(store, dynamodb_local, clock, ran)
    faults.force(FaultKind.THROTTLE, on="TransactWriteItems", times=100)
    ((_, event),) = lambda_queue.take()

    # when the invocation fails with the outcome it could not write, and Lambda hands that
    # failure (the same request) to the recorder
    with pytest.raises(Exception, match='"status":"SUCCEEDED"') as failure:
        handler(event, None)
    started_by = store.executions("report")[0].attempts[0].request_id
    record = lambda_reports(load_event, event, clock.now, failure.value, request_id=started_by)
    result = record_failure(Attempts(store), record)

    # then the ledger holds what the code did: one success, with its result
    assert result.recorded
    assert ran == ["2026-11-02T09:00:00Z"]
    (execution,) = store.executions("report")
    assert execution.status is RunStatus.SUCCEEDED
    assert execution.attempts[0].result == {"ok": True}


def test_a_crash_reported_for_one_delivery_leaves_alone_the_run_another_delivery_started(
    store: Store,
    clock: FakeClock,
    load_event: Callable[[str], Any],
    running: tuple[Dispatcher, dict[str, Any]],
) -> None:
    # given a run started by the watchdog's second invoke (Lambda request r-1)
    _, event = running

    # when the first invoke (another request) fails late, and Lambda reports that failure
    record = lambda_reports(load_event, event, clock.now, request_id="the-first-invoke")
    result = record_failure(Attempts(store), record)

    # then the running attempt is left to the delivery running it
    assert not result.recorded
    (execution,) = store.executions("report")
    assert execution.status is RunStatus.RUNNING


def test_a_crash_reported_right_after_the_start_gives_way_to_the_run_that_finishes(
    store: Store,
    clock: FakeClock,
    load_event: Callable[[str], Any],
    running: tuple[Dispatcher, dict[str, Any]],
) -> None:
    # given a running attempt, and a crash reported for its Lambda request ten seconds in:
    # perhaps a second delivery of the same event dying, while the first still runs the code
    dispatcher, event = running
    crash = lambda_reports(load_event, event, clock.now + timedelta(seconds=10), request_id="r-1")
    held = record_failure(Attempts(store), crash)

    # when the run then finishes, and the watchdog looks later
    assert not held.recorded
    clock.advance(seconds=30)
    task = store.get_task("report")
    assert task is not None
    finished = Attempts(store).conclude(
        task,
        "2026-11-02T09:00:00Z",
        1,
        AttemptOutcome(RunStatus.SUCCEEDED, clock.now, duration_ms=30_000, result={"ok": 1}),
        from_statuses=(RunStatus.RUNNING,),
    )
    clock.advance(minutes=3)
    dispatcher.tick(clock.now.replace(second=0))

    # then the run's own outcome stands
    assert finished.recorded
    (execution,) = store.executions("report")
    assert execution.status is RunStatus.SUCCEEDED
    assert execution.crash_report is None


def test_a_held_crash_is_confirmed_by_the_watchdog_when_the_run_never_ends(
    store: Store,
    clock: FakeClock,
    load_event: Callable[[str], Any],
    running: tuple[Dispatcher, dict[str, Any]],
) -> None:
    # given a crash reported ten seconds into a run, which then never reports anything
    dispatcher, event = running
    crash = lambda_reports(load_event, event, clock.now + timedelta(seconds=10), request_id="r-1")
    record_failure(Attempts(store), crash)

    # when the watchdog looks once the hold is over
    clock.advance(minutes=2)
    report = dispatcher.tick(clock.now.replace(second=0))

    # then the attempt ends as Lambda reported it, long before the run's own deadline
    assert report.watchdog.crashed == 1
    (execution,) = store.executions("report")
    assert execution.status is RunStatus.FAILED
    assert execution.attempts[0].error_type == "Runtime.ExitError"


# --- 5. the tick time is not trusted -------------------------------------------------------------


def test_a_tick_dated_a_day_ahead_dispatches_the_clocks_minute_and_alerts(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a per-minute task and an hourly one, and a tick dated tomorrow
    clock.now = EIGHT - timedelta(seconds=30)
    register(store, clock, "minutely")
    register(store, clock, "hourly", Schedule="0 * * * *")
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock, alerter=Alerter(store)))
    clock.now = EIGHT + timedelta(seconds=5)

    # when it arrives
    report = dispatcher.tick(EIGHT + timedelta(days=1))

    # then only the slots of the clock's minute are dispatched, nothing is recorded missed,
    # and the dispatcher says what it did
    assert report.clamped_from == EIGHT + timedelta(days=1)
    assert report.tick == EIGHT
    assert sorted(lambda_queue.slots_invoked()) == [
        ("hourly", "2026-11-02T08:00:00Z", 1),
        ("minutely", "2026-11-02T08:00:00Z", 1),
    ]
    assert all(e.status is not RunStatus.MISSED for e in store.executions("minutely"))
    (alert,) = [r.alert for r in caplog.records if hasattr(r, "alert")]
    assert (alert["event"], alert["task_id"], alert["slot"]) == (
        "TICK_CLAMPED",
        "#dispatcher",
        "2026-11-03T08:00:00Z",
    )
    # and the genuine next tick finds no gap: the bogus tick was never recorded as the last
    clock.now = EIGHT + timedelta(minutes=1)
    assert dispatcher.tick(clock.now).missed_ticks == 0
    assert [e.slot for e in store.executions("minutely")] == [
        "2026-11-02T08:00:00Z",
        "2026-11-02T08:01:00Z",
    ]


# --- 6. the registry's writes and ownership ------------------------------------------------------


def test_registering_again_after_a_lost_response_counts_the_skipped_slots_once(
    store: Store, clock: FakeClock, dynamodb_local: DynamoDBLocal
) -> None:
    # given a task disabled at 08:00 and enabled again at 12:00, through a lossy connection
    register(store, clock, "hourly", Schedule="0 * * * *", Enabled=False)
    lossy = Store(store.tasks_table, store.executions_table, client=dynamodb_local.client())
    faults = FaultInjector(seed=3, rate=0).attach(lossy.client)
    faults.force(FaultKind.LOST_RESPONSE, on="TransactWriteItems")
    clock.now = EIGHT + timedelta(hours=4)

    register(lossy, clock, "hourly", Schedule="0 * * * *")

    # then the slots in between are one SKIPPED entry, counted once
    (skipped,) = store.executions("hourly")
    assert (skipped.status, skipped.slot, skipped.range_until) == (
        RunStatus.SKIPPED,
        "2026-11-02T09:00:00Z",
        "2026-11-02T13:00:00Z",
    )
    task = store.get_task("hourly")
    assert task is not None
    assert task.stats.skipped == 4


def test_a_definition_another_resource_owns_is_refused_and_a_delete_only_removes_ones_own(
    store: Store, clock: FakeClock
) -> None:
    from cronfleet.registry.ownership import TaskOwner
    from cronfleet.store import TaskOwnershipConflict

    definition = parse_task_definition("report", {"Schedule": "0 9 * * *", "Function": "f"})
    other = TaskOwner(TEST_OWNER.stack_id, "Renamed").key
    register(store, clock, "report", Schedule="0 9 * * *")

    with pytest.raises(TaskOwnershipConflict):
        store.register(definition, definition.compiled_schedule().next_run, clock.now, owner=other)
    assert not store.deregister("report", clock.now, owner=other)

    task = store.get_task("report")
    assert task is not None
    assert not task.deleted
    assert task.owner == TEST_OWNER.key
    assert store.deregister("report", clock.now, owner=TEST_OWNER.key)
