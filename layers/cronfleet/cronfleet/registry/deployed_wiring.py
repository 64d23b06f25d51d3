"""A task function's wiring as deployed, read through Lambda's and IAM's read APIs.

The registry reads it while CloudFormation creates or updates a task, so it reads no code
(GetFunctionConfiguration, not GetFunction) and changes nothing; IAM's policy simulator answers
for the role, managed and inline policies alike.

CloudFormation creates a function's ``AWS::Lambda::EventInvokeConfig`` alongside the task that
names the function, not before it: nothing in the template orders the two. So a wiring that
looks wrong is read again for a few seconds before the registry refuses it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from cronfleet.registry.wiring import (
    LAMBDA_DEFAULT_RETRY_ATTEMPTS,
    FunctionWiring,
    Permission,
    StackWiring,
    UnreadableWiring,
)

# How long a wiring that looks wrong is read again: CloudFormation creates an EventInvokeConfig
# in seconds, and a deploy must not wait long on a function that really is miswired.
SETTLE_SECONDS = 20.0
_RETRY_PAUSES = (1.0, 2.0, 4.0, 6.0, 7.0)


@dataclass(frozen=True)
class DeployedFunction:
    name: str
    tags: Mapping[str, str]
    retry_attempts: int
    on_failure: str | None
    role_arn: str
    iam: Any

    def denied(self, needed: Sequence[Permission]) -> list[Permission]:
        by_resource: dict[str, list[str]] = {}
        for permission in needed:
            by_resource.setdefault(permission.resource, []).append(permission.action)
        denied = []
        paginator = self.iam.get_paginator("simulate_principal_policy")
        for resource, actions in by_resource.items():
            pages = paginator.paginate(
                PolicySourceArn=self.role_arn, ActionNames=actions, ResourceArns=[resource]
            )
            try:
                results = [r for page in pages for r in page["EvaluationResults"]]
            except ClientError as exc:
                error = exc.response.get("Error", {})
                raise UnreadableWiring(
                    f"simulating role {self.role_arn}: {error.get('Code', 'Error')}: "
                    f"{error.get('Message', exc)}"
                ) from exc
            denied += [
                Permission(result["EvalActionName"], resource)
                for result in results
                if result["EvalDecision"] != "allowed"
            ]
        return denied


class DeployedFunctions:
    """Reads functions of this account through Lambda's and IAM's APIs."""

    def __init__(
        self,
        lambda_client: Any,
        iam_client: Any,
        *,
        settle_seconds: float = SETTLE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._lambda = lambda_client
        self._iam = iam_client
        self._settle_seconds = settle_seconds
        self._sleep = sleep

    def wiring(self, function_arn: str, stack: StackWiring) -> FunctionWiring:
        """The function's wiring, read again while it looks wrong, for up to settle_seconds."""
        waited = 0.0
        for pause in (*_RETRY_PAUSES, None):
            try:
                function = self._read(function_arn)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                raise UnreadableWiring(
                    f"{error.get('Code', 'Error')}: {error.get('Message', exc)}"
                ) from exc
            settled = function.retry_attempts == 0 and function.on_failure == stack.recorder_arn
            if settled or pause is None or waited + pause > self._settle_seconds:
                return function
            self._sleep(pause)
            waited += pause
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, function_arn: str) -> DeployedFunction:
        configuration = self._lambda.get_function_configuration(FunctionName=function_arn)
        tags = self._lambda.list_tags(Resource=configuration["FunctionArn"]).get("Tags", {})
        try:
            invoke = self._lambda.get_function_event_invoke_config(FunctionName=function_arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            invoke = {}  # none configured: Lambda's defaults
        on_failure = invoke.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        return DeployedFunction(
            name=configuration["FunctionName"],
            tags=tags,
            retry_attempts=int(invoke.get("MaximumRetryAttempts", LAMBDA_DEFAULT_RETRY_ATTEMPTS)),
            on_failure=on_failure,
            role_arn=configuration["Role"],
            iam=self._iam,
        )
