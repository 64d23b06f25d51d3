"""The attempt repository's contract: an attempt from PENDING to a final state, exactly once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from cronfleet.lifecycle.outcomes import AttemptOutcome
from cronfleet.lifecycle.states import RunStatus
from cronfleet.store.attempts import AttemptRepository
from cronfleet.store.dynamodb import Store
from tests.support import register

if TYPE_CHECKING:
    from tests.integration.conftest import FakeClock

SLOT = "2026-11-02T08:00:00Z#manual-1"
GRACE = timedelta(minutes=3)


@pytest.fixture
def attempts(
    repository_on: Callable[[type[AttemptRepository]], AttemptRepository],
) -> AttemptRepository:
    return repository_on(AttemptRepository)


@pytest.fixture
def pending(store: Store, clock: FakeClock) -> None:
    """A task with one PENDING manual run, attempt 1, at SLOT."""
    task = register(store, clock, "report")
    store.create_manual_execution(task, SLOT, clock.now)


def start(attempts: AttemptRepository, clock: FakeClock, attempt: int = 1) -> bool:
    return attempts.start_attempt(
        "report",
        SLOT,
        attempt,
        request_id=f"request-{attempt}",
        started=clock.now,
        deadline=clock.now + timedelta(minutes=1),
        grace=GRACE,
    )


def outcome(clock: FakeClock, status: RunStatus, **fields: object) -> AttemptOutcome:
    return AttemptOutcome(status=status, ended_at=clock.now, duration_ms=1200, **fields)


@pytest.mark.usefixtures("pending")
def test_an_attempt_starts_once_and_a_second_delivery_is_told_apart(
    store: Store, attempts: AttemptRepository, clock: FakeClock
) -> None:
    # Given a PENDING attempt
    # When one delivery starts it, and a second delivery of the same event tries again
    first, second = start(attempts, clock), start(attempts, clock)

    # Then only the first started it, and the attempt names the first delivery's request
    assert (first, second) == (True, False)
    execution = store.get_execution("report", SLOT)
    assert execution is not None
    assert execution.current is not None
    assert execution.status is RunStatus.RUNNING
    assert execution.current.request_id == "request-1"


@pytest.mark.usefixtures("pending")
def test_a_finish_is_recorded_once_and_the_counters_move_once(
    store: Store, attempts: AttemptRepository, clock: FakeClock
) -> None:
    # Given a running attempt
    start(attempts, clock)
    clock.advance(seconds=2)

    # When the wrapper and then the recorder both record that it succeeded
    recorded = [
        attempts.finish_attempt(
            "report",
            SLOT,
            1,
            outcome(clock, RunStatus.SUCCEEDED, result={"rows": 3}),
            retry_at=None,
            consecutive_failures=2,
        )
        for _ in range(2)
    ]

    # Then the first is recorded and resets the failure run; the second changes nothing
    assert [result.recorded for result in recorded] == [True, False]
    assert recorded[0].final_status is RunStatus.SUCCEEDED
    assert (recorded[0].previous_consecutive_failures, recorded[0].consecutive_failures) == (2, 0)
    task = store.get_task("report")
    assert task is not None
    assert (task.stats.runs, task.stats.succeeded, task.stats.duration_count) == (1, 1, 1)
    assert not task.active_slots
    execution = store.get_execution("report", SLOT)
    assert execution is not None
    assert execution.current is not None
    assert execution.current.result == {"rows": 3}


@pytest.mark.usefixtures("pending")
def test_a_failure_with_a_retry_waits_then_the_next_attempt_is_pending(
    store: Store, attempts: AttemptRepository, clock: FakeClock
) -> None:
    # Given a running attempt that fails with a retry due in 30 seconds
    start(attempts, clock)
    failed = outcome(clock, RunStatus.FAILED, error_type="ValueError", error_message="bad row")
    result = attempts.finish_attempt(
        "report",
        SLOT,
        1,
        failed,
        retry_at=clock.now + timedelta(seconds=30),
        consecutive_failures=0,
    )
    execution = store.get_execution("report", SLOT)
    assert result.recorded
    assert result.final_status is None
    assert execution is not None
    assert execution.status is RunStatus.RETRY_WAIT

    # When the watchdog looks after the retry time and begins the next attempt
    clock.advance(seconds=31)
    overdue = attempts.overdue_executions(clock.now)
    begun = attempts.begin_next_attempt(overdue[0], now=clock.now, start_grace=GRACE)

    # Then attempt 2 is PENDING, and attempt 1 keeps its error
    assert [e.slot for e in overdue] == [SLOT]
    assert begun
    execution = store.get_execution("report", SLOT)
    assert execution is not None
    assert (execution.status, execution.attempt) == (RunStatus.PENDING, 2)
    assert execution.attempts[0].error_message == "bad row"
    assert attempts.begin_next_attempt(overdue[0], now=clock.now, start_grace=GRACE) is False


@pytest.mark.usefixtures("pending")
def test_a_pending_attempt_is_redispatched_at_most_once(
    store: Store, attempts: AttemptRepository, clock: FakeClock
) -> None:
    # Given a PENDING attempt whose start deadline has passed
    clock.advance(minutes=4)
    [execution] = attempts.overdue_executions(clock.now)

    # When the watchdog claims the right to invoke it again, twice
    first = attempts.mark_redispatched(execution, now=clock.now, start_grace=GRACE)
    second = attempts.mark_redispatched(execution, now=clock.now, start_grace=GRACE)

    # Then it gets that right once, and is not overdue until the new grace has passed
    assert (first, second) == (True, False)
    assert attempts.overdue_executions(clock.now) == []


@pytest.mark.usefixtures("pending")
def test_a_crash_report_is_held_only_on_a_running_attempt(
    store: Store, attempts: AttemptRepository, clock: FakeClock
) -> None:
    # Given a PENDING attempt, then the same attempt RUNNING
    crash = outcome(clock, RunStatus.FAILED, error_type="Runtime.ExitError", error_message="x")
    execution = store.get_execution("report", SLOT)
    assert execution is not None
    held_while_pending = attempts.report_crash(execution, crash, look_at=clock.now)
    start(attempts, clock)

    # When Lambda reports a crash of it
    held = attempts.report_crash(execution, crash, look_at=clock.now + timedelta(seconds=90))

    # Then it is held on the running attempt only, for the watchdog to confirm later
    assert (held_while_pending, held) == (False, True)
    execution = store.get_execution("report", SLOT)
    assert execution is not None
    assert execution.crash_report is not None
    assert execution.crash_report[1] == "Runtime.ExitError"


@pytest.mark.usefixtures("pending")
def test_a_traceback_is_kept_beside_the_execution_so_later_writes_do_not_carry_it(
    store: Store, attempts: AttemptRepository, clock: FakeClock
) -> None:
    # Given a running attempt that fails with a 6 KB traceback, and a retry
    start(attempts, clock)
    traceback = "Traceback (most recent call last):\n" + "  File 'job.py', line 1\n" * 250
    failed = outcome(
        clock,
        RunStatus.FAILED,
        error_type="ValueError",
        error_message="bad row",
        traceback=traceback,
    )

    # When it is recorded
    recorded = attempts.finish_attempt(
        "report",
        SLOT,
        1,
        failed,
        retry_at=clock.now + timedelta(seconds=30),
        consecutive_failures=0,
    )

    # Then the traceback can be read back for that attempt...
    assert recorded.recorded
    assert store.traceback("report", SLOT, 1) == traceback
    assert store.traceback("report", SLOT, 2) is None
    # ...the execution item, which the retry rewrites three more times, stays under 1 KB
    item = store.client.get_item(
        TableName=store.executions_table, Key={"task_id": {"S": "report"}, "slot": {"S": SLOT}}
    )["Item"]
    assert "traceback" not in item["attempts"]["L"][0]["M"]
    assert len(json.dumps(item)) < 1024
    # ...and the task's ledger is its executions alone
    [execution] = store.executions("report")
    assert execution.attempts[0].error_message == "bad row"


@pytest.mark.usefixtures("pending")
def test_a_started_attempt_keeps_its_index_key_and_carries_its_own_deadline(
    store: Store, attempts: AttemptRepository, clock: FakeClock
) -> None:
    # Given a PENDING attempt, looked at by the watchdog at its start deadline
    before = store.get_execution("report", SLOT)
    assert before is not None

    # When it starts, with a minute's timeout and the grace after it
    start(attempts, clock)

    # Then the in-flight index key is unchanged (no rewrite of the entry), and the attempt's
    # own deadline is kept beside it for the watchdog
    execution = store.get_execution("report", SLOT)
    assert execution is not None
    assert execution.deadline_at == before.deadline_at
    assert execution.running_deadline_at == (clock.now + timedelta(minutes=1) + GRACE).replace(
        microsecond=0
    )
