"""Registry: the CloudFormation custom resource handler behind every ``Custom::ScheduledTask``.

The protocol, validation and registration live in :mod:`cronfleet.registry.custom_resource`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cronfleet.environment import current_environment
from cronfleet.handlers import lambda_handler
from cronfleet.observability import logger, trace_aws_calls
from cronfleet.registry.custom_resource import MalformedCustomResourceEvent, answer
from cronfleet.registry.secrets import SecretScope
from cronfleet.store import Store

environment = current_environment()
# Set by template.yaml on every deploy. Empty only under `sam local invoke`, which leaves !Sub
# values out: then which secrets the HTTP function may read is not checked here.
secret_scope = (
    SecretScope.parse(environment.http_secret_arn_prefixes)
    if environment.http_secret_arn_prefixes
    else None
)
if secret_scope is None:
    logger.warning("HTTP_SECRET_ARN_PREFIXES is empty: Http.SecretArn scopes are not checked")
trace_aws_calls()
store = Store.from_environment(environment)

__all__ = ["MalformedCustomResourceEvent", "handler"]


@lambda_handler(correlation_id_path="RequestId")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = answer(event, store, context.log_stream_name, secret_scope=secret_scope)
    return response.model_dump(exclude_none=True)
