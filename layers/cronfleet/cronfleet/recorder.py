"""Finalising attempts the task wrapper could not record: Lambda's on-failure destination.

When a task function times out, runs out of memory, crashes in its runtime or fails to
initialise, the wrapper never gets to write the outcome. Lambda then sends an on-failure
destination record, and this turns it into TIMED_OUT or FAILED for that attempt, with
Lambda's own error, after which the retry policy applies as for any failure.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from cronfleet.envelope import ExecutionEnvelope
from cronfleet.lifecycle import RunStatus
from cronfleet.runs import conclude_attempt
from cronfleet.store import AttemptOutcome, FinishResult, Store

if TYPE_CHECKING:
    from cronfleet.alerting import Alerter

logger = logging.getLogger(__name__)


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
                status=RunStatus.FAILED,
                ended_at=ended,
                error_type="EventAgeExceeded",
                error_message="Lambda dropped the event before running it (maximum event age)",
                ran_code=False,
            )
        timed_out = "Task timed out" in message or error_type == "Sandbox.Timedout"
        return AttemptOutcome(
            status=RunStatus.TIMED_OUT if timed_out else RunStatus.FAILED,
            ended_at=ended,
            error_type=error_type,
            error_message=message
            or f"the function failed ({error_type}) without recording a result",
            ran_code=False,
        )


def record_failure(
    store: Store, record: FailureDestinationRecord, alerter: Alerter | None = None
) -> FinishResult:
    """Finalise the attempt the record is about; a no-op if it was already recorded."""
    envelope = record.envelope()
    ids = {"task_id": envelope.task_id, "slot": envelope.slot, "attempt": envelope.attempt}
    task = store.get_task(envelope.task_id)
    if task is None:
        logger.error("On-failure record for an unknown task", extra=ids)
        return FinishResult(recorded=False)
    outcome = record.outcome()
    result = conclude_attempt(
        store,
        task,
        envelope.slot,
        envelope.attempt,
        outcome,
        alerter=alerter,
        request_id=record.request_context.request_id,
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
