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
# How long a warm registry trusts what it read: long enough for one deploy's burst of tasks,
# short enough that a fix to a function is seen by the next deploy.
REMEMBER_SECONDS = 60.0


@dataclass(frozen=True)
class DeployedFunction:
    name: str
    tags: Mapping[str, str]
    retry_attempts: int
    on_failure: str | None
    role_arn: str
    functions: DeployedFunctions

    def denied(self, needed: Sequence[Permission]) -> list[Permission]:
        return self.functions.denied(self.role_arn, needed)


class DeployedFunctions:
    """Reads functions of this account through Lambda's and IAM's APIs.

    A deploy creates its tasks in parallel, and many name the same function (every Http task
    runs on the HTTP caller), so a warm registry keeps what it read for ``remember_seconds``:
    a function that looked right, and each simulation of a role. IAM's API in particular is
    rate-limited per account; a deploy of a hundred tasks must not be throttled into failing.
    """

    def __init__(
        self,
        lambda_client: Any,
        iam_client: Any,
        *,
        settle_seconds: float = SETTLE_SECONDS,
        remember_seconds: float = REMEMBER_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lambda = lambda_client
        self._iam = iam_client
        self._settle_seconds = settle_seconds
        self._remember_seconds = remember_seconds
        self._sleep = sleep
        self._monotonic = monotonic
        self._wired: dict[str, tuple[float, DeployedFunction]] = {}
        self._simulated: dict[tuple[str, str, str], tuple[float, bool]] = {}

    def wiring(self, function_arn: str, stack: StackWiring) -> FunctionWiring:
        """The function's wiring, read again while it looks wrong, for up to settle_seconds."""
        remembered = self._wired.get(function_arn)
        if remembered is not None and self._fresh(remembered[0]):
            return remembered[1]
        waited = 0.0
        for pause in (*_RETRY_PAUSES, None):
            try:
                function = self._read(function_arn)
            except ClientError as exc:
                raise UnreadableWiring(_said(exc)) from exc
            settled = function.retry_attempts == 0 and function.on_failure == stack.recorder_arn
            if settled:
                self._wired[function_arn] = (self._monotonic(), function)
            if settled or pause is None or waited + pause > self._settle_seconds:
                return function
            self._sleep(pause)
            waited += pause
        raise AssertionError("unreachable")  # pragma: no cover

    def denied(self, role_arn: str, needed: Sequence[Permission]) -> list[Permission]:
        """The permissions of ``needed`` IAM's simulator says the role does not grant."""
        unknown: dict[str, list[str]] = {}
        for permission in needed:
            known = self._simulated.get((role_arn, permission.action, permission.resource))
            if known is None or not self._fresh(known[0]):
                unknown.setdefault(permission.resource, []).append(permission.action)
        paginator = self._iam.get_paginator("simulate_principal_policy")
        for resource, actions in unknown.items():
            pages = paginator.paginate(
                PolicySourceArn=role_arn, ActionNames=actions, ResourceArns=[resource]
            )
            try:
                results = [result for page in pages for result in page["EvaluationResults"]]
            except ClientError as exc:
                raise UnreadableWiring(f"simulating role {role_arn}: {_said(exc)}") from exc
            for result in results:
                allowed = result["EvalDecision"] == "allowed"
                key = (role_arn, result["EvalActionName"], resource)
                self._simulated[key] = (self._monotonic(), allowed)
        return [
            permission
            for permission in needed
            if not self._simulated[(role_arn, permission.action, permission.resource)][1]
        ]

    def _fresh(self, read_at: float) -> bool:
        return self._monotonic() - read_at < self._remember_seconds

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
            functions=self,
        )


def _said(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', exc)}"
