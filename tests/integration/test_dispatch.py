"""The exactly-once core on DynamoDB Local: claims, races, duplicates and the task wrapper."""

from __future__ import annotations

import threading
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from cronfleet.dispatch.service import Dispatcher
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.lifecycle.slots import slot_key
from cronfleet.lifecycle.states import RunStatus
from cronfleet.lifecycle.wrapper import NonRetryableError, TaskContext, scheduled_task
from tests.support import register

if TYPE_CHECKING:
    from cronfleet.store import Store
    from tests.integration.conftest import FakeClock, QueuedLambda

pytestmark = pytest.mark.integration


def test_a_due_task_is_claimed_invoked_and_recorded_as_succeeded(
    store: Store, clock: FakeClock, lambda_queue: QueuedLambda
) -> None:
    # given a task due every minute, and its function
    register(store, clock, "report", Payload={"region": "eu"})
    seen: list[TaskContext] = []

    @scheduled_task(store=store, clock=clock)
    def report(task: TaskContext) -> dict[str, int]:
        seen.append(task)
        return {"rows": 42}

    # when the 08:01 tick is dispatched and Lambda delivers the event
    tick = clock.advance(minutes=1)
    outcome = Dispatcher(Attempts(store, lambda_queue, clock=clock)).tick(tick)
    lambda_queue.deliver(report)

    # then exactly that slot ran, once, with its payload, and the ledger says so
    assert (outcome.claimed, outcome.invoked) == (1, 1)
    assert [(t.task_id, t.slot, t.attempt, t.payload) for t in seen] == [
        ("report", "2026-11-02T08:01:00Z", 1, {"region": "eu"})
    ]
    execution = store.get_execution("report", "2026-11-02T08:01:00Z")
    assert execution is not None
    assert execution.status is RunStatus.SUCCEEDED
    assert execution.attempts[0].result == {"rows": 42}
    task = store.get_task("report")
    assert task is not None
    assert task.next_run is not None
    assert slot_key(task.next_run) == "2026-11-02T08:02:00Z"
    assert (task.stats.runs, task.stats.succeeded, task.stats.consecutive_failures) == (1, 1, 0)
    assert not task.active_slots


@pytest.mark.parametrize("dispatchers", [2, 4])
def test_concurrent_dispatchers_claim_and_invoke_each_slot_once(
    store: Store, clock: FakeClock, lambda_queue: QueuedLambda, dispatchers: int
) -> None:
    # given 30 tasks due at the same tick
    for number in range(30):
        register(store, clock, f"task-{number}")
    tick = clock.advance(minutes=1)
    barrier = threading.Barrier(dispatchers)

    def dispatch() -> None:
        barrier.wait()  # all start the same tick at the same moment
        Dispatcher(Attempts(store, lambda_queue, clock=clock), max_parallel=8).tick(tick)

    # when several dispatchers run the same tick at once
    threads = [threading.Thread(target=dispatch) for _ in range(dispatchers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then every due slot was invoked exactly once
    invoked = Counter(lambda_queue.slots_invoked())
    assert len(invoked) == 30
    assert set(invoked.values()) == {1}
    assert {slot for _, slot, _ in invoked} == {"2026-11-02T08:01:00Z"}


def test_the_same_tick_delivered_twice_claims_nothing_the_second_time(
    store: Store, clock: FakeClock, lambda_queue: QueuedLambda
) -> None:
    register(store, clock, "report")
    tick = clock.advance(minutes=1)
    first = Dispatcher(Attempts(store, lambda_queue, clock=clock)).tick(tick)
    clock.advance(seconds=30)
    second = Dispatcher(Attempts(store, lambda_queue, clock=clock)).tick(tick)

    assert (first.claimed, first.invoked) == (1, 1)
    assert (second.due_tasks, second.claimed, second.invoked) == (0, 0, 0)
    assert len(lambda_queue.invoked) == 1


def test_a_duplicate_delivery_of_the_same_event_runs_the_code_once(
    store: Store, clock: FakeClock, lambda_queue: QueuedLambda
) -> None:
    register(store, clock, "report")
    runs: list[str] = []

    @scheduled_task(store=store, clock=clock)
    def report(task: TaskContext) -> None:
        runs.append(task.slot)

    Dispatcher(Attempts(store, lambda_queue, clock=clock)).tick(clock.advance(minutes=1))
    (event,) = [event for _, event in lambda_queue.take()]

    first = report(event, None)
    second = report(event, None)  # Lambda delivers the same async event again

    assert runs == ["2026-11-02T08:01:00Z"]
    assert first["status"] == "SUCCEEDED"
    assert second["status"] == "duplicate"


def test_a_failed_attempt_is_retried_and_the_slot_ends_succeeded(
    store: Store, clock: FakeClock, lambda_queue: QueuedLambda
) -> None:
    retry = {"MaxAttempts": 3, "IntervalSeconds": 60, "JitterStrategy": "NONE"}
    register(store, clock, "flaky", Schedule="0 9 * * *", Retry=retry)
    attempts: list[int] = []

    @scheduled_task(store=store, clock=clock)
    def flaky(task: TaskContext) -> str:
        attempts.append(task.attempt)
        if task.attempt == 1:
            raise ConnectionError("upstream reset the connection")
        return "ok"

    clock.now = clock.now.replace(hour=9)
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    dispatcher.tick(clock.now)
    lambda_queue.deliver(flaky)
    waiting = store.get_execution("flaky", "2026-11-02T09:00:00Z")
    assert waiting is not None
    assert waiting.status is RunStatus.RETRY_WAIT

    # the backoff (60 s, no jitter) has passed at the next tick: the watchdog retries
    dispatcher.tick(clock.advance(minutes=1))
    lambda_queue.deliver(flaky)

    execution = store.get_execution("flaky", "2026-11-02T09:00:00Z")
    assert execution is not None
    assert attempts == [1, 2]
    assert execution.status is RunStatus.SUCCEEDED
    assert [(a.attempt, a.status) for a in execution.attempts] == [
        (1, RunStatus.FAILED),
        (2, RunStatus.SUCCEEDED),
    ]
    assert execution.attempts[0].error_type == "ConnectionError"
    assert "upstream reset" in (execution.attempts[0].error_message or "")
    # the traceback is kept beside the execution, not in the attempt the retry rewrote
    assert execution.attempts[0].traceback is None
    assert "Traceback" in (store.traceback("flaky", "2026-11-02T09:00:00Z", 1) or "")
    task = store.get_task("flaky")
    assert task is not None
    assert (task.stats.succeeded, task.stats.failed, task.stats.consecutive_failures) == (1, 0, 0)


def test_a_non_retryable_error_fails_the_slot_without_a_retry(
    store: Store, clock: FakeClock, lambda_queue: QueuedLambda
) -> None:
    register(store, clock, "strict", Retry={"MaxAttempts": 5})

    @scheduled_task(store=store, clock=clock)
    def strict(task: TaskContext) -> None:
        raise NonRetryableError("the export format is not supported")

    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    dispatcher.tick(clock.advance(minutes=1))
    lambda_queue.deliver(strict)
    dispatcher.tick(clock.advance(minutes=5))  # nothing comes back for a retry

    execution = store.get_execution("strict", "2026-11-02T08:01:00Z")
    assert execution is not None
    assert execution.status is RunStatus.FAILED
    assert len(execution.attempts) == 1
    task = store.get_task("strict")
    assert task is not None
    assert task.stats.consecutive_failures == 1
    assert all(
        slot != "2026-11-02T08:01:00Z" or attempt == 1
        for _, slot, attempt in lambda_queue.slots_invoked()
    )
