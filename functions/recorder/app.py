"""Recorder: finalises attempts a task could not record itself (timeout, crash, OOM, init error).

It is the on-failure destination of every task function's asynchronous invokes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from cronfleet.alerts.alerter import Alerter
from cronfleet.environment import current_environment
from cronfleet.handlers import lambda_handler
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.lifecycle.recorder import FailureDestinationRecord, record_failure
from cronfleet.observability import logger, trace_aws_calls
from cronfleet.store import Store

environment = current_environment()
trace_aws_calls()
store = Store.from_environment(environment)
# The SNS client is made on the first alert.
attempts = Attempts(store, alerter=Alerter.from_environment(store, environment))


@lambda_handler(correlation_id_path="requestContext.requestId")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        record = FailureDestinationRecord.model_validate(event)
        record.envelope()
    except (ValidationError, ValueError) as exc:
        logger.error(
            "Not an on-failure record of a cronfleet run; nothing recorded",
            extra={"error": str(exc)},
        )
        return {"status": "rejected", "error": str(exc)}
    result = record_failure(attempts, record)
    return {
        "status": "recorded" if result.recorded else "already-recorded",
        "final_status": result.final_status,
    }
