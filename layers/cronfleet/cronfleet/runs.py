"""Concluding attempts and building what a run receives: shared by every writer of the ledger.

The dispatcher (an invoke that failed), the task wrapper (the code's own outcome), the recorder
(a crash or timeout Lambda reported) and the watchdog (a run that never started or overran) all
end attempts the same way: retry while attempts and retryability remain, otherwise make the
slot final.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import JsonValue

from cronfleet.envelope import ExecutionEnvelope
from cronfleet.invoker import InvokeError, Invoker
from cronfleet.lifecycle import (
    RunStatus,
    Trigger,
    attempts_left,
    manual_slot,
    retry_delay,
    slot_key,
)
from cronfleet.store import AttemptOutcome, FinishResult, Store, TaskRecord, task_timeout

if TYPE_CHECKING:
    from cronfleet.alerting import Alerter

logger = logging.getLogger(__name__)

# Time allowed between dispatch and the wrapper marking the attempt RUNNING. Async invokes
# normally start within seconds; beyond this the run is treated as lost and redispatched.
START_GRACE = timedelta(minutes=3)
# Time allowed past an attempt's deadline before the watchdog calls it timed out: the
# recorder usually reports a Lambda timeout first, with the real error.
RUNNING_GRACE = timedelta(minutes=2)


def build_envelope(
    task: TaskRecord,
    slot: str,
    attempt: int,
    trigger: Trigger,
    now: datetime,
    payload: dict[str, JsonValue] | None = None,
) -> ExecutionEnvelope:
    deadline = now + START_GRACE + timedelta(seconds=task_timeout(task.definition))
    return ExecutionEnvelope(
        task_id=task.task_id,
        slot=slot,
        attempt=attempt,
        deadline=slot_key(deadline),
        trigger=trigger,
        payload=task.definition.payload if payload is None else payload,
    )


def conclude_attempt(
    store: Store,
    task: TaskRecord,
    slot: str,
    attempt: int,
    outcome: AttemptOutcome,
    *,
    retryable: bool = True,
    from_statuses: tuple[RunStatus, ...] = (RunStatus.PENDING, RunStatus.RUNNING),
    rng: random.Random | None = None,
    alerter: Alerter | None = None,
    request_id: str | None = None,
) -> FinishResult:
    """Record an attempt's end; schedule the next attempt if the policy allows one.

    With an ``alerter``, the alerts and run metrics the recorded end raises follow it.
    """
    retry_at = None
    policy = task.definition.retry
    if outcome.status is not RunStatus.SUCCEEDED and retryable and attempts_left(policy, attempt):
        retry_at = outcome.ended_at + timedelta(seconds=retry_delay(policy, attempt, rng))
    result = store.finish_attempt(
        task.task_id,
        slot,
        attempt,
        outcome,
        retry_at=retry_at,
        consecutive_failures=task.stats.consecutive_failures,
        from_statuses=from_statuses,
    )
    if alerter is not None:
        alerter.attempt_finished(task, slot, attempt, outcome, result, request_id=request_id)
    return result


def invoke_attempt(
    store: Store,
    invoker: Invoker,
    task: TaskRecord,
    slot: str,
    attempt: int,
    trigger: Trigger,
    now: datetime,
    rng: random.Random | None = None,
    alerter: Alerter | None = None,
    http_function: str | None = None,
    payload: dict[str, JsonValue] | None = None,
) -> bool:
    """Invoke one attempt; a failed invoke is recorded and follows the retry policy.

    A task with an Http target runs in the stack's built-in HTTP function (``http_function``),
    which finds the target in the payload under ``"http"``. ``payload`` replaces the task's
    own (a manual run's).
    """
    # Imported on the first invoke: an idle tick needs no definitions (the registry package is
    # a cold-start cost the dispatcher pays only when something is due).
    from cronfleet.registry.definition import invoke_payload

    definition = task.definition
    # An Http task's target travels in the payload, exactly as the registry measured it.
    target = http_function if definition.http is not None else definition.function
    payload = invoke_payload(definition, payload)
    envelope = build_envelope(task, slot, attempt, trigger, now, payload)
    if target is None:
        error = InvokeError(
            "NoTarget", "Http tasks need the built-in HTTP function (HTTP_FUNCTION_NAME)"
        )
    else:
        try:
            invoker.invoke(target, envelope.to_event())
            return True
        except InvokeError as exc:
            error = exc
    logger.warning(
        "Invoke failed",
        extra={"task_id": task.task_id, "slot": slot, "attempt": attempt, "error": str(error)},
    )
    conclude_attempt(
        store,
        task,
        slot,
        attempt,
        # The function was never reached, so its code provably did not start.
        AttemptOutcome(
            status=RunStatus.LOST,
            ended_at=now,
            error_type=f"InvokeError.{error.code}",
            error_message=error.message,
            ran_code=False,
        ),
        rng=rng,
        alerter=alerter,
    )
    if alerter is not None:
        alerter.dispatch_failed(task, slot, attempt, error.code, error.message, now)
    return False


def start_manual_run(
    store: Store,
    invoker: Invoker,
    task: TaskRecord,
    now: datetime,
    *,
    payload: dict[str, JsonValue] | None = None,
    alerter: Alerter | None = None,
    http_function: str | None = None,
) -> tuple[str, bool]:
    """Record a manual run (``cronfleet trigger``) under its own slot and invoke it.

    Returns the slot and whether the invoke was accepted. The run is a PENDING attempt like any
    other, so the watchdog looks after it if the function never starts.
    """
    slot = manual_slot(now)
    store.create_manual_execution(task, slot, now, start_grace=START_GRACE, payload=payload)
    invoked = invoke_attempt(
        store,
        invoker,
        task,
        slot,
        1,
        Trigger.MANUAL,
        now,
        alerter=alerter,
        http_function=http_function,
        payload=payload,
    )
    return slot, invoked
