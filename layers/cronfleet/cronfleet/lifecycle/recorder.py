"""Finalising attempts the task wrapper could not record: Lambda's on-failure destination.

When a task function times out, runs out of memory, crashes in its runtime or fails to
initialise, the wrapper never gets to write the outcome. Lambda then sends an on-failure
destination record, and this turns it into TIMED_OUT or FAILED for that attempt, with
Lambda's own error, after which the retry policy applies as for any failure.

Two errors come from the wrapper itself, when the ledger could not be written:
``AttemptNotStarted`` (the code was not run: LOST) and ``OutcomeNotRecorded`` (the code ran; the
error carries its outcome, which is recorded as if the wrapper had). An event Lambda dropped
unrun (EventAgeExceeded) is LOST too. LOST is only ever said of code that provably never ran.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from cronfleet.lifecycle.attempts import Attempts
from cronfleet.lifecycle.envelope import ExecutionEnvelope
from cronfleet.lifecycle.outcomes import AttemptOutcome, FinishResult
from cronfleet.lifecycle.states import RunStatus
from cronfleet.lifecycle.wrapper import AttemptNotStarted, OutcomeNotRecorded, outcome_from_json
from cronfleet.store import ExecutionRecord

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

# A crash reported for a RUNNING attempt by the Lambda request that started it is not always
# that run's: Lambda can deliver one event twice under the same request id, and a second
# delivery can die (out of memory, a runtime crash) while the first is still running the code.
# Within this long of the start, the crash is held on the attempt instead, and the watchdog
# concludes with it only if the run has not ended by then; a run that ends in time wins. A
# timeout is recorded at once: a delivery that timed out ran for the function's whole timeout,
# which a second delivery, done as soon as it sees the attempt running, never does.
CRASH_CONFIRM = timedelta(seconds=90)


class _RecordPart(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class DestinationRequestContext(_RecordPart):
    request_id: str = Field(alias="requestId", min_length=1)
    function_arn: str = Field(alias="functionArn", min_length=1)
    condition: str  # RetriesExhausted or EventAgeExceeded
    approximate_invoke_count: int = Field(1, alias="approximateInvokeCount")


class DestinationResponseContext(_RecordPart):
    status_code: int | None = Field(None, alias="statusCode")
    function_error: str | None = Field(None, alias="functionError")


class FailureDestinationRecord(_RecordPart):
    """The body Lambda sends to an asynchronous invocation's on-failure destination."""

    version: str
    timestamp: datetime
    request_context: DestinationRequestContext = Field(alias="requestContext")
    request_payload: Any = Field(alias="requestPayload")
    response_context: DestinationResponseContext | None = Field(None, alias="responseContext")
    response_payload: Any = Field(None, alias="responsePayload")

    def envelope(self) -> ExecutionEnvelope:
        envelope = ExecutionEnvelope.from_event(self.request_payload)
        if envelope is None:
            raise ValueError(
                "requestPayload: not a cronfleet execution envelope (no 'cronfleet' key)"
            )
        return envelope

    def outcome(self) -> AttemptOutcome:
        return self.verdict()[0]

    def verdict(self) -> tuple[AttemptOutcome, bool]:
        """How the attempt ended, and whether the retry policy may try it again."""
        error = self.response_payload if isinstance(self.response_payload, dict) else {}
        error_type = str(
            error.get("errorType")
            or (self.response_context.function_error if self.response_context else None)
            or "Unknown"
        )
        message = str(error.get("errorMessage") or "")
        ended = self.timestamp.astimezone(UTC)
        if self.request_context.condition == "EventAgeExceeded":
            return AttemptOutcome(
                status=RunStatus.LOST,
                ended_at=ended,
                error_type="EventAgeExceeded",
                error_message="Lambda dropped the event before running it (maximum event age)",
                ran_code=False,
            ), True
        if error_type == OutcomeNotRecorded.__name__:
            try:
                return outcome_from_json(message)
            except ValueError:
                logger.warning("An OutcomeNotRecorded error without a readable outcome")
        if error_type == AttemptNotStarted.__name__:
            return AttemptOutcome(
                status=RunStatus.LOST,
                ended_at=ended,
                error_type=error_type,
                error_message=message,
                ran_code=False,
            ), True
        timed_out = "Task timed out" in message or error_type == "Sandbox.Timedout"
        return AttemptOutcome(
            status=RunStatus.TIMED_OUT if timed_out else RunStatus.FAILED,
            ended_at=ended,
            error_type=error_type,
            error_message=message
            or f"the function failed ({error_type}) without recording a result",
            ran_code=False,
        ), True


def record_failure(attempts: Attempts, record: FailureDestinationRecord) -> FinishResult:
    """Finalise the attempt the record is about; a no-op if it was already recorded.

    What the attempt's state says decides, not only Lambda's error. Still PENDING: no delivery
    of it ever started the code, whatever the error, so it is LOST. RUNNING: the delivery that
    started it is the one that failed (the same Lambda request) and its error stands; a record
    from another delivery (the first invoke, after the watchdog's second one started the run)
    is stale and changes nothing.
    """
    store = attempts.store
    envelope = record.envelope()
    ids = {"task_id": envelope.task_id, "slot": envelope.slot, "attempt": envelope.attempt}
    task = store.get_task(envelope.task_id)
    execution = store.get_execution(envelope.task_id, envelope.slot)
    if task is None or execution is None:
        logger.error("On-failure record for an unknown task or run", extra=ids)
        return FinishResult(recorded=False)
    outcome, retryable = record.verdict()
    in_flight = execution.attempt == envelope.attempt and execution.status in (
        RunStatus.PENDING,
        RunStatus.RUNNING,
    )
    started_by = execution.current.request_id if execution.current else None
    request_id = record.request_context.request_id
    if not in_flight or (
        execution.status is RunStatus.RUNNING
        and (outcome.status is RunStatus.LOST or (started_by and started_by != request_id))
    ):
        logger.info("On-failure record about an attempt concluded or run elsewhere", extra=ids)
        return FinishResult(recorded=False)
    started = _started_at(execution)
    if (
        execution.status is RunStatus.RUNNING
        and started is not None
        and outcome.status is RunStatus.FAILED
        and record.timestamp - started < CRASH_CONFIRM
    ):
        held = store.report_crash(execution, outcome, look_at=started + CRASH_CONFIRM)
        logger.info(
            "Crash report held until the watchdog confirms it",
            extra={**ids, "held": held, "error_type": outcome.error_type},
        )
        return FinishResult(recorded=False)
    if execution.status is RunStatus.PENDING and outcome.status is not RunStatus.LOST:
        outcome = replace(
            outcome,
            status=RunStatus.LOST,
            error_message=(
                f"the function failed before the attempt started ({outcome.error_type}): "
                f"{outcome.error_message}"
            ),
        )
    result = attempts.conclude(
        task,
        envelope.slot,
        envelope.attempt,
        outcome,
        retryable=retryable,
        from_statuses=(execution.status,),
        request_id=request_id,
    )
    logger.info(
        "Recorded a failure the task could not record",
        extra={
            **ids,
            "status": outcome.status.value,
            "error_type": outcome.error_type,
            "recorded": result.recorded,
        },
    )
    return result


def _started_at(execution: ExecutionRecord) -> datetime | None:
    attempt = execution.current
    if attempt is None or attempt.started_at is None:
        return None
    return datetime.fromisoformat(attempt.started_at.replace("Z", "+00:00"))
