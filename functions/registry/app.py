"""Registry: the CloudFormation custom resource handler behind every ``Custom::ScheduledTask``.

The protocol, validation and registration live in :mod:`cronfleet.registry.custom_resource`;
the check that a task's function is wired to run as a task in :mod:`cronfleet.registry.wiring`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cronfleet.environment import current_environment
from cronfleet.handlers import lambda_handler
from cronfleet.observability import logger, trace_aws_calls
from cronfleet.registry.custom_resource import MalformedCustomResourceEvent, answer
from cronfleet.registry.deployed_wiring import DeployedFunctions
from cronfleet.registry.secrets import SecretScope
from cronfleet.registry.wiring import WiringCheck
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
# Set by template.yaml too; empty under `sam local invoke` (a !GetAtt), as above.
if environment.recorder_function_arn is None:
    logger.warning("RECORDER_FUNCTION_ARN is empty: task functions' wiring is not checked")
trace_aws_calls()
store = Store.from_environment(environment)

__all__ = ["MalformedCustomResourceEvent", "handler"]


@cache
def wiring_check(function_arn: str) -> WiringCheck | None:
    """The wiring check, in this function's partition, region and account. The Lambda and IAM
    clients are made on the first request that needs them, not at every cold start."""
    if environment.recorder_function_arn is None:
        return None
    import boto3
    from botocore.config import Config

    _, partition, _, region, account, *_ = function_arn.split(":")
    table = f"arn:{partition}:dynamodb:{region}:{account}:table/"
    # A deploy of many tasks reads in a burst; IAM's API is throttled per account.
    patient = Config(retries={"mode": "standard", "max_attempts": 8})
    return WiringCheck(
        source=DeployedFunctions(
            boto3.client("lambda", config=patient), boto3.client("iam", config=patient)
        ),
        recorder_arn=environment.recorder_function_arn,
        tasks_table_arn=table + environment.tasks_table_name,
        executions_table_arn=table + environment.executions_table_name,
        http_function=environment.http_function_name,
    )


@lambda_handler(correlation_id_path="RequestId")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = answer(
        event,
        store,
        context.log_stream_name,
        secret_scope=secret_scope,
        wiring=wiring_check(context.invoked_function_arn),
    )
    return response.model_dump(exclude_none=True)
