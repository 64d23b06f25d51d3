"""Ending attempts and invoking them, and building what a run receives: the attempts service.

The dispatcher (an invoke that failed), the task wrapper (the code's own outcome), the recorder
(a crash or timeout Lambda reported) and the watchdog (a run that never started or overran) all
end attempts the same way: retry while attempts and retryability remain, otherwise make the
slot final.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import JsonValue

from cronfleet.clock import now as clock_now
from cronfleet.invoker import InvokeError, Invoker, LambdaInvoker
from cronfleet.lifecycle.envelope import ExecutionEnvelope
from cronfleet.lifecycle.outcomes import AttemptOutcome, FinishResult
from cronfleet.lifecycle.retry import attempts_left, retry_delay
from cronfleet.lifecycle.slots import manual_slot, slot_key
from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet.store import Store, TaskRecord
from cronfleet.tracing import TraceSampling, invoking

if TYPE_CHECKING:
    from cronfleet.alerts.alerter import Alerter

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
    deadline = now + START_GRACE + timedelta(seconds=task.definition.attempt_timeout_seconds())
    # Built from values the store and the registry have already validated, so not validated
    # again for every run a tick dispatches; the task wrapper validates what it receives.
    return ExecutionEnvelope.model_construct(
        task_id=task.task_id,
        slot=slot,
        attempt=attempt,
        deadline=slot_key(deadline),
        trigger=trigger,
        payload=task.definition.payload if payload is None else payload,
    )


@dataclass
class Attempts:
    """The attempts service: ends attempts and invokes them, for every writer of the ledger.

    The dispatcher, its watchdog, the task wrapper and the recorder each hold one, built once
    per function. It carries what they all need: the store, the invoker (the dispatcher's and
    the watchdog's; the wrapper and the recorder invoke nothing), the clock, the random source
    of retry jitter, the alerter, and the built-in HTTP function that runs Http tasks.
    """

    store: Store
    invoker: Invoker | None = None
    clock: Callable[[], datetime] = clock_now
    rng: random.Random | None = None
    alerter: Alerter | None = None
    http_function: str | None = None
    # Which invokes X-Ray traces (cronfleet.tracing); None leaves it to the caller's own trace.
    tracing: TraceSampling | None = None

    def conclude(
        self,
        task: TaskRecord,
        slot: str,
        attempt: int,
        outcome: AttemptOutcome,
        *,
        retryable: bool = True,
        from_statuses: tuple[RunStatus, ...] = (RunStatus.PENDING, RunStatus.RUNNING),
        request_id: str | None = None,
        alert: bool = True,
    ) -> FinishResult:
        """Record an attempt's end; schedule the next attempt if the policy allows one.

        The alerts and run metrics the recorded end raises follow it, unless ``alert`` is off
        (the watchdog raises its own, for a run it gave up on).
        """
        retry_at = None
        policy = task.definition.retry
        if (
            outcome.status is not RunStatus.SUCCEEDED
            and retryable
            and attempts_left(policy, attempt)
        ):
            retry_at = outcome.ended_at + timedelta(seconds=retry_delay(policy, attempt, self.rng))
        result = self.store.finish_attempt(
            task.task_id,
            slot,
            attempt,
            outcome,
            retry_at=retry_at,
            consecutive_failures=task.stats.consecutive_failures,
            from_statuses=from_statuses,
            request_id=request_id,
        )
        if alert and self.alerter is not None:
            self.alerter.attempt_finished(
                task, slot, attempt, outcome, result, request_id=request_id
            )
        return result

    def invoke(
        self,
        task: TaskRecord,
        slot: str,
        attempt: int,
        trigger: Trigger,
        now: datetime,
        payload: dict[str, JsonValue] | None = None,
    ) -> bool:
        """Invoke one attempt; a failed invoke is recorded and follows the retry policy.

        A task with an Http target runs in the stack's built-in HTTP function, which finds the
        target in the payload under ``"http"``. ``payload`` replaces the task's own (a manual
        run's).
        """
        # Imported on the first invoke: an idle tick needs no definitions (the registry package
        # is a cold-start cost the dispatcher pays only when something is due).
        from cronfleet.registry.definition import invoke_payload

        assert self.invoker is not None, "this service invokes nothing"
        definition = task.definition
        # An Http task's target travels in the payload, exactly as the registry measured it.
        target = self.http_function if definition.http is not None else definition.function
        envelope = build_envelope(
            task, slot, attempt, trigger, now, invoke_payload(definition, payload)
        )
        if target is None:
            error = InvokeError(
                "NoTarget", "Http tasks need the built-in HTTP function (HTTP_FUNCTION_NAME)"
            )
        else:
            sampled = self.tracing.traces(task, attempt, trigger) if self.tracing else None
            try:
                with invoking(sampled):
                    self.invoker.invoke(target, envelope.to_event())
                return True
            except InvokeError as exc:
                error = exc
        logger.warning(
            "Invoke failed",
            extra={"task_id": task.task_id, "slot": slot, "attempt": attempt, "error": str(error)},
        )
        # The function was never reached, so its code provably did not start.
        lost = AttemptOutcome(
            status=RunStatus.LOST,
            ended_at=now,
            error_type=f"InvokeError.{error.code}",
            error_message=error.message,
            ran_code=False,
        )
        self.conclude(task, slot, attempt, lost)
        if self.alerter is not None:
            self.alerter.dispatch_failed(task, slot, attempt, error.code, error.message, now)
        return False

    def start_manual_run(
        self, task: TaskRecord, now: datetime, *, payload: dict[str, JsonValue] | None = None
    ) -> tuple[str, bool]:
        """Record a manual run (``cronfleet trigger``) under its own slot and invoke it.

        Returns the slot and whether the invoke was accepted. The run is a PENDING attempt like
        any other, so the watchdog looks after it if the function never starts.
        """
        slot = manual_slot(now)
        self.store.create_manual_execution(
            task, slot, now, start_grace=START_GRACE, payload=payload
        )
        invoked = self.invoke(task, slot, 1, Trigger.MANUAL, now, payload=payload)
        return slot, invoked


def manual_runs(store: Store, http_function: str | None) -> Callable[[], Attempts]:
    """The attempts service of a function that starts manual runs (the schedules API, the fleet
    widget), built on the first run it starts: a Lambda client is a cold-start cost a page
    view or a list request need not pay."""
    return functools.cache(lambda: Attempts(store, LambdaInvoker(), http_function=http_function))
