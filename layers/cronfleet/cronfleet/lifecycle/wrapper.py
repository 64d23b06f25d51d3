"""The task wrapper: ``@scheduled_task`` around the code a per-task Lambda runs.

::

    from cronfleet import TaskContext, scheduled_task


    @scheduled_task
    def handler(task: TaskContext) -> dict:
        task.logger.info("backing up", extra={"full": task.payload.get("full")})
        return {"tables": 12}

The wrapper moves the attempt from PENDING to RUNNING with a conditional write before the code
runs, so a duplicate delivery of the same async event does not run it twice. It records the
outcome: success with a bounded result, or failure with the error and a truncated traceback.
Raising :class:`NonRetryableError` ends the slot without further attempts.

When the ledger cannot be written, the wrapper fails the invocation instead, so Lambda hands the
attempt to the recorder (the on-failure destination) with an error that says what happened:
:class:`AttemptNotStarted` when the code was not run, :class:`OutcomeNotRecorded`, carrying the
outcome, when it was. The recorder then records what really happened, not a crash.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, overload

from pydantic import JsonValue, ValidationError

from cronfleet import clock as clock_module
from cronfleet.environment import CronfleetEnvironment, current_environment
from cronfleet.errors import CronfleetError
from cronfleet.handlers import problem_lines
from cronfleet.lifecycle.attempts import RUNNING_GRACE, Attempts
from cronfleet.lifecycle.envelope import ExecutionEnvelope
from cronfleet.lifecycle.outcomes import AttemptOutcome
from cronfleet.lifecycle.slots import manual_slot
from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet.store import Store, bounded_result

if TYPE_CHECKING:
    from cronfleet.alerts.alerter import Alerter

logger = logging.getLogger("cronfleet.task")

TRACEBACK_HANDOVER_CHARS = 4096


def execution_id(task_id: str, slot: str) -> str:
    """How an execution is named in logs and links: its key in the executions table."""
    return f"{task_id}#{slot}"


class NonRetryableError(CronfleetError):
    """Raise from task code when trying again cannot help (bad input, a permanent refusal)."""


class AttemptNotStarted(CronfleetError):
    """The attempt could not be marked RUNNING, so its code was not run (the recorder: LOST)."""


class OutcomeNotRecorded(CronfleetError):
    """The code ran, but its outcome could not be written; the message carries the outcome as
    JSON, for the recorder to write instead."""

    def __init__(self, outcome: AttemptOutcome, *, retryable: bool) -> None:
        super().__init__(outcome_to_json(outcome, retryable=retryable))
        self.outcome = outcome


def outcome_to_json(outcome: AttemptOutcome, *, retryable: bool) -> str:
    return json.dumps(
        {
            "retryable": retryable,
            "status": outcome.status.value,
            "ended_at": outcome.ended_at.isoformat(),
            "duration_ms": outcome.duration_ms,
            "error_type": outcome.error_type,
            "error_message": outcome.error_message,
            # A traceback can be long; the recorder needs the verdict, the logs keep the rest.
            "traceback": (outcome.traceback or "")[-TRACEBACK_HANDOVER_CHARS:] or None,
            "result": json.loads(bounded_result(outcome.result))
            if outcome.result is not None
            else None,
        },
        separators=(",", ":"),
        default=str,
    )


def outcome_from_json(text: str) -> tuple[AttemptOutcome, bool]:
    """The outcome an :class:`OutcomeNotRecorded` carried, and whether it may be retried;
    ValueError if the text is not one."""
    try:
        fields = json.loads(text)
        outcome = AttemptOutcome(
            status=RunStatus(fields["status"]),
            ended_at=datetime.fromisoformat(fields["ended_at"]),
            duration_ms=fields.get("duration_ms"),
            error_type=fields.get("error_type"),
            error_message=fields.get("error_message"),
            traceback=fields.get("traceback"),
            result=fields.get("result"),
        )
        return outcome, bool(fields.get("retryable", True))
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"not a recorded outcome: {exc}") from exc


@dataclass(frozen=True)
class TaskContext:
    """What the task's code gets to know about the run it is part of."""

    task_id: str
    slot: str  # the scheduled time, ISO-8601 UTC; a manual run's carries '#manual-...'
    attempt: int
    trigger: Trigger
    payload: dict[str, JsonValue]
    deadline: datetime
    lambda_context: Any = None
    logger: logging.Logger | Any = field(default=logger)

    def remaining_time(self) -> timedelta:
        """Time left before the attempt's deadline or Lambda's own timeout, whichever is first."""
        left = self.deadline - clock_module.now()
        if self.lambda_context is not None:
            lambda_left = timedelta(milliseconds=self.lambda_context.get_remaining_time_in_millis())
            left = min(left, lambda_left)
        return max(left, timedelta(0))


TaskFunction = Callable[[TaskContext], Any]


LambdaHandler = Callable[[Any, Any], dict[str, Any]]


@overload
def scheduled_task(func: TaskFunction, /) -> LambdaHandler: ...


@overload
def scheduled_task(
    *,
    store: Store | None = None,
    clock: Callable[[], datetime] | None = None,
    alerter: Alerter | None = None,
) -> Callable[[TaskFunction], LambdaHandler]: ...


def scheduled_task(
    func: TaskFunction | None = None,
    /,
    *,
    store: Store | None = None,
    clock: Callable[[], datetime] | None = None,
    alerter: Alerter | None = None,
) -> LambdaHandler | Callable[[TaskFunction], LambdaHandler]:
    """Wrap task code as a Lambda handler.

    ``store``, ``clock`` and ``alerter`` are for tests and the local runner's simulated time; in
    Lambda the store and the alerter come from the function's environment and the clock is the
    real one. A given store without an alerter raises no alerts.
    """

    def decorate(task_function: TaskFunction) -> LambdaHandler:
        @functools.wraps(task_function)
        def handler(event: Any, context: Any) -> dict[str, Any]:
            return _TaskRun(task_function, store, clock or clock_module.now, alerter).handle(
                event, context
            )

        return handler

    return decorate(func) if func is not None else decorate


class _TaskRun:
    def __init__(
        self,
        task_function: TaskFunction,
        store: Store | None,
        clock: Callable[[], datetime],
        alerter: Alerter | None = None,
    ) -> None:
        self.task_function = task_function
        self.clock = clock
        self._attempts = Attempts(store, clock=clock, alerter=alerter) if store else None

    @property
    def _store(self) -> Store | None:
        return self._attempts.store if self._attempts is not None else None

    def store(self, environment: CronfleetEnvironment | None) -> Store | None:
        if self._attempts is None and environment is not None:
            self._attempts = _attempts_for(environment)
        return self._store

    @property
    def attempts(self) -> Attempts:
        assert self._attempts is not None
        return self._attempts

    def handle(self, event: Any, context: Any) -> dict[str, Any]:
        try:
            envelope = ExecutionEnvelope.from_event(event)
        except ValidationError as exc:
            problems = problem_lines(exc)
            logger.error(
                "Malformed execution envelope; nothing was run or recorded",
                extra={"problems": problems},
            )
            return {"status": "rejected", "problems": problems}
        if envelope is None:
            return self.manual_run(event, context)
        return self.scheduled_run(envelope, context)

    def scheduled_run(self, envelope: ExecutionEnvelope, context: Any) -> dict[str, Any]:
        store = self.store(current_environment() if self._store is None else None)
        assert store is not None
        started = self.clock()
        deadline = envelope.deadline_time
        if context is not None:
            deadline = min(
                deadline, started + timedelta(milliseconds=context.get_remaining_time_in_millis())
            )
        request_id = getattr(context, "aws_request_id", "") or str(uuid.uuid4())
        ids = {"task_id": envelope.task_id, "slot": envelope.slot, "attempt": envelope.attempt}
        # Every log line of the run, the task's own included, carries the execution's id.
        # (Imported here: the Powertools objects read their settings from the environment when
        # created, which must not happen before a handler's environment is in place.)
        from cronfleet.handlers import correlate
        from cronfleet.observability import tracer

        correlate(execution_id(envelope.task_id, envelope.slot))
        try:
            started_now = store.start_attempt(
                envelope.task_id,
                envelope.slot,
                envelope.attempt,
                request_id=request_id,
                started=started,
                deadline=deadline,
                grace=RUNNING_GRACE,
            )
        except Exception as exc:
            logger.exception("Could not mark the attempt running; its code was not run", extra=ids)
            raise AttemptNotStarted(
                f"the attempt could not be marked RUNNING, so its code was not run: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not started_now:
            # Lambda delivered this event again, or the attempt was already given up on.
            logger.info("Attempt is not pending; not running it again", extra=ids)
            return {"status": "duplicate", **ids}
        task_context = TaskContext(
            task_id=envelope.task_id,
            slot=envelope.slot,
            attempt=envelope.attempt,
            trigger=envelope.trigger,
            payload=envelope.payload,
            deadline=deadline,
            lambda_context=context,
        )
        # The task's code gets its own subsegment, annotated so that X-Ray can find a task's
        # runs (`annotation.task_id = "nightly-report"`). Annotations go on the subsegment, not
        # the handler: Lambda's own segment cannot be changed from inside the function.
        with tracer.provider.in_subsegment(f"## {envelope.task_id}") as subsegment:
            subsegment.put_annotation("task_id", envelope.task_id)
            subsegment.put_annotation("slot", envelope.slot)
            # The SDK types the value as numbers.Number, which mypy cannot match with int.
            subsegment.put_annotation("attempt", envelope.attempt)  # type: ignore[arg-type]
            outcome, retryable = self.run_code(task_context)
        try:
            task = store.get_task(envelope.task_id)
            if task is None:
                logger.error("Task vanished while running; outcome not recorded", extra=ids)
                return {"status": outcome.status.value, **ids}
            result = self.attempts.conclude(
                task,
                envelope.slot,
                envelope.attempt,
                outcome,
                retryable=retryable,
                from_statuses=(RunStatus.RUNNING,),
                request_id=request_id,
            )
        except Exception as exc:
            logger.exception("Could not record the outcome; the recorder will", extra=ids)
            raise OutcomeNotRecorded(outcome, retryable=retryable) from exc
        status = result.final_status.value if result.final_status else "RETRY_SCHEDULED"
        if not result.recorded:
            logger.warning("Outcome arrived after the attempt was concluded elsewhere", extra=ids)
            status = "late"
        return {"status": status, **ids}

    def manual_run(self, event: Any, context: Any) -> dict[str, Any]:
        """A plain event, as `sam local invoke` or the console's Test button sends."""
        payload = event if isinstance(event, dict) else {"event": event}
        try:
            environment: CronfleetEnvironment | None = (
                current_environment() if self._store is None else None
            )
        except ValueError as exc:
            environment = None
            logger.warning("Running without a ledger: %s", exc)
        store = self.store(environment)
        task_id = (
            (environment.task_id if environment else None)
            or getattr(context, "function_name", None)
            or "manual"
        )
        now = self.clock()
        slot = manual_slot(now)
        task = store.get_task(task_id) if store is not None else None
        context_deadline = now + timedelta(minutes=15)
        if context is not None:
            context_deadline = now + timedelta(milliseconds=context.get_remaining_time_in_millis())
        task_context = TaskContext(
            task_id, slot, 1, Trigger.MANUAL, payload, context_deadline, context
        )
        if store is None or task is None:
            logger.warning(
                "Manual run of a task the ledger does not know; not recorded",
                extra={"task_id": task_id},
            )
            outcome, _ = self.run_code(task_context)
            return {
                "status": outcome.status.value,
                "task_id": task_id,
                "recorded": False,
                "result": outcome.result,
                "error": outcome.error_message,
            }
        store.create_manual_execution(task, slot, now)
        store.start_attempt(
            task_id,
            slot,
            1,
            request_id=getattr(context, "aws_request_id", "") or slot,
            started=now,
            deadline=context_deadline,
            grace=RUNNING_GRACE,
        )
        outcome, _ = self.run_code(task_context)
        self.attempts.conclude(
            task,
            slot,
            1,
            outcome,
            retryable=False,
            from_statuses=(RunStatus.RUNNING,),
            request_id=getattr(context, "aws_request_id", None),
        )
        return {
            "status": outcome.status.value,
            "task_id": task_id,
            "slot": slot,
            "recorded": True,
            "result": outcome.result,
            "error": outcome.error_message,
        }

    def run_code(self, task_context: TaskContext) -> tuple[AttemptOutcome, bool]:
        """Run the task's code; never raises. Returns the outcome and whether to retry it."""
        started = time.perf_counter()
        try:
            result = self.task_function(task_context)
        except Exception as exc:  # every failure of the task's code is recorded, not raised
            duration_ms = round((time.perf_counter() - started) * 1000)
            logger.exception(
                "Task code failed",
                extra={"task_id": task_context.task_id, "slot": task_context.slot},
            )
            return (
                AttemptOutcome(
                    status=RunStatus.FAILED,
                    ended_at=self.clock(),
                    duration_ms=duration_ms,
                    error_type=type(exc).__name__,
                    error_message=str(exc),
                    traceback="".join(traceback.format_exception(exc)),
                ),
                not isinstance(exc, NonRetryableError),
            )
        duration_ms = round((time.perf_counter() - started) * 1000)
        return AttemptOutcome(
            status=RunStatus.SUCCEEDED,
            ended_at=self.clock(),
            duration_ms=duration_ms,
            result=result,
        ), True


@functools.lru_cache(maxsize=4)
def _attempts_for(environment: CronfleetEnvironment) -> Attempts:
    """The function's attempts service, from its environment: built on the first run."""
    from cronfleet.alerts.alerter import Alerter
    from cronfleet.observability import trace_aws_calls  # see scheduled_run: not at import

    trace_aws_calls()
    store = Store.from_environment(environment)
    return Attempts(store, alerter=Alerter.from_environment(store, environment))
