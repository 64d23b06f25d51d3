"""Is a task's function wired to run as a task? The rules, for the deploy and for validate.

A definition can be valid and still never run correctly: the dispatcher may not invoke a
function that is not tagged as a task of its stack; Lambda's own asynchronous retries rerun a
failed task unseen; without the recorder as on-failure destination a crash or a timeout leaves
its attempt open until the watchdog gives it up; without the ledger permissions the task wrapper
cannot record the run; and an Http task fails every run if the HTTP function may not read its
secret.

The rules are one function, :func:`wiring_problems`, over what a :class:`FunctionWiring` says of
a function. The registry reads that from Lambda's and IAM's read APIs at deploy
(:mod:`cronfleet.registry.deployed_wiring`); ``cronfleet validate`` and the local runtime read it
from the transformed template. Both refuse with the same lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cronfleet.errors import CronfleetError
from cronfleet.registry.definition import TaskDefinition
from cronfleet.registry.problems import Problem

ROLE_TAG = "cronfleet:role"
STACK_TAG = "cronfleet:stack"
TASK_ROLE = "task"
# Lambda's MaximumRetryAttempts for asynchronous invokes when a function sets none.
LAMBDA_DEFAULT_RETRY_ATTEMPTS = 2

# What the task wrapper does with the tables (cronfleet.lifecycle): item reads and conditional
# writes of its task and of the ledger.
TASK_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem")
LEDGER_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem")
SECRET_ACTIONS = {"secretsmanager": "secretsmanager:GetSecretValue", "ssm": "ssm:GetParameter"}


@dataclass(frozen=True)
class Permission:
    action: str
    resource: str


class FunctionWiring(Protocol):
    """What a task's function is, as far as running it as a task goes."""

    @property
    def name(self) -> str:
        """As a person finds it: the logical id offline, the function's name at deploy."""
        ...

    @property
    def tags(self) -> Mapping[str, str]: ...

    @property
    def retry_attempts(self) -> int:
        """MaximumRetryAttempts of its asynchronous invokes."""
        ...

    @property
    def on_failure(self) -> str | None:
        """The ARN of its on-failure destination."""
        ...

    def denied(self, needed: Sequence[Permission]) -> list[Permission]:
        """The permissions of ``needed`` its role does not grant."""
        ...


@dataclass(frozen=True)
class StackWiring:
    """What this stack's task functions must be wired to."""

    stack_name: str
    recorder_arn: str
    tasks_table_arn: str
    executions_table_arn: str


def wiring_problems(
    logical_id: str,
    definition: TaskDefinition,
    function: FunctionWiring,
    stack: StackWiring,
) -> list[Problem]:
    """Every reason ``function`` (the task's own, or the HTTP function for an Http task) cannot
    run ``definition`` correctly, one problem each."""
    field = "Function" if definition.http is None else "Http"
    what = f"function {function.name}"
    if definition.http is not None:
        what = f"the HTTP function {function.name}"
    problems = []
    if function.tags.get(ROLE_TAG) != TASK_ROLE or function.tags.get(STACK_TAG) != stack.stack_name:
        problems.append(
            f"{what} is not tagged as a task of this stack ({ROLE_TAG}: {TASK_ROLE} and "
            f"{STACK_TAG}: !Ref AWS::StackName), so the dispatcher may not invoke it"
        )
    if function.retry_attempts != 0:
        problems.append(
            f"{what} lets Lambda retry a failed run {function.retry_attempts} times "
            "(EventInvokeConfig.MaximumRetryAttempts); it must be 0: cronfleet retries each slot "
            "itself, and Lambda's retries would rerun the task unrecorded"
        )
    if function.on_failure != stack.recorder_arn:
        problems.append(
            f"{what} has no on-failure destination to the recorder "
            "(EventInvokeConfig.DestinationConfig.OnFailure): a crash or a timeout would leave "
            "its run unrecorded until the watchdog gives it up"
        )
    needed = [Permission(a, stack.tasks_table_arn) for a in TASK_TABLE_ACTIONS]
    needed += [Permission(a, stack.executions_table_arn) for a in LEDGER_TABLE_ACTIONS]
    missing = function.denied(needed)
    if missing:
        actions = ", ".join(dict.fromkeys(p.action for p in missing))
        problems.append(
            f"{what} lacks the ledger permissions ({actions} on the tasks and executions "
            "tables), so it could not record its runs: add TaskFunctionPolicy to its Policies"
        )
    found = [Problem(logical_id, field, reason) for reason in problems]
    secret = definition.http.secret_arn if definition.http is not None else None
    if secret:
        action = SECRET_ACTIONS.get(secret.split(":")[2], "secretsmanager:GetSecretValue")
        if function.denied([Permission(action, secret)]):
            found.append(
                Problem(
                    logical_id,
                    "Http.SecretArn",
                    f"{what} may not read {secret} (its role does not allow {action} on it), "
                    "so every run would fail",
                )
            )
    return found


class WiringSource(Protocol):
    def wiring(self, function: str, stack: StackWiring) -> FunctionWiring:
        """The wiring of ``function`` (its name or ARN, as a task definition gives it)."""
        ...


class UnreadableWiring(CronfleetError):
    """A function's wiring could not be read (no such function, or access denied)."""


@dataclass(frozen=True)
class WiringCheck:
    """The registry's check of each task it registers, over one source of wiring."""

    source: WiringSource
    recorder_arn: str
    tasks_table_arn: str
    executions_table_arn: str
    http_function: str | None  # the function that runs Http tasks

    def problems(
        self, logical_id: str, definition: TaskDefinition, stack_name: str
    ) -> list[Problem]:
        """The problems of one task of stack ``stack_name`` (its functions carry that tag)."""
        target = definition.function if definition.http is None else self.http_function
        if target is None:
            return []  # an Http task with no HTTP function configured: nothing to read
        stack = StackWiring(
            stack_name, self.recorder_arn, self.tasks_table_arn, self.executions_table_arn
        )
        try:
            function = self.source.wiring(target, stack)
            return wiring_problems(logical_id, definition, function, stack)
        except UnreadableWiring as exc:
            field = "Function" if definition.http is None else "Http"
            return [Problem(logical_id, field, f"cannot check how {target} is wired: {exc}")]
