"""Registry: the CloudFormation custom resource handler behind every ``Custom::ScheduledTask``.

The protocol, validation and registration live in :mod:`cronfleet.registry.custom_resource`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cronfleet.environment import current_environment
from cronfleet.observability import logger, trace_aws_calls, tracer
from cronfleet.registry.custom_resource import MalformedCustomResourceEvent, answer
from cronfleet.store import Store

environment = current_environment()
trace_aws_calls()
store = Store(
    environment.tasks_table_name,
    environment.executions_table_name,
    history_retention_days=environment.history_retention_days,
)

__all__ = ["MalformedCustomResourceEvent", "handler"]


@logger.inject_lambda_context(correlation_id_path="RequestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = answer(event, store, context.log_stream_name)
    return response.model_dump(exclude_none=True)
