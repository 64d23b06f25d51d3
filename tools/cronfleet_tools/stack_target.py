"""Which stack an operator command acts on: the local one, or a deployed one by name.

``--local`` attaches to the stack `cronfleet run` keeps in its state directory; so does naming
neither, when that directory holds a stack (its ``stack.json``). ``--stack NAME``
reads the CloudFormation stack's outputs for its table and function names, with the usual AWS
credentials and region. Either way the command gets the same :class:`Target`: a store, and a
way to start a manual run.

A command that only reads takes its target from :func:`reading` instead, for as long as it
runs: with ``--local`` that is also a *stopped* local stack, whose data is served for the
command by an engine of its own (:mod:`cronfleet_tools.local.stopped`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import JsonValue

from cronfleet import clock
from cronfleet.errors import CronfleetError
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.store import DUE_SHARDS, Store, TaskRecord
from cronfleet_tools.local import STACK_FILE

if TYPE_CHECKING:
    from cronfleet_tools.local.lambda_process import Invocation
    from cronfleet_tools.local.stack import LocalStackInfo

# The outputs of template.yaml the CLI reads.
TASKS_TABLE_OUTPUT = "TasksTableName"
DISPATCH_SHARDS_OUTPUT = "DispatchShards"
EXECUTIONS_TABLE_OUTPUT = "ExecutionsTableName"
HTTP_FUNCTION_OUTPUT = "HttpTaskFunctionName"


class TargetError(CronfleetError, ValueError):
    """The stack cannot be reached; says which option is wrong and why."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class ManualRun:
    slot: str
    invoked: bool
    # Local runs happen before trigger returns; a deployed one is only queued.
    invocations: list[Invocation] = field(default_factory=list)


@dataclass
class Target:
    store: Store
    description: str
    option_text: str  # how to name this stack again on the command line
    _trigger: Callable[[TaskRecord, dict[str, JsonValue] | None, datetime], ManualRun]
    stopped: bool = False  # a local stack no runner serves: its data, read for one command

    def trigger(self, task: TaskRecord, payload: dict[str, JsonValue] | None) -> ManualRun:
        return self._trigger(task, payload, clock.now())


def resolve(*, local: bool, state_dir: Path, stack: str | None, region: str | None) -> Target:
    name = _deployed_name(local=local, state_dir=state_dir, stack=stack)
    if name is not None:
        return deployed(name, region)
    return attached(state_dir)


@contextmanager
def reading(
    *, local: bool, state_dir: Path, stack: str | None, region: str | None, command: str
) -> Iterator[Target]:
    """:func:`resolve` for ``command``, which only reads: a local stack may also be stopped."""
    name = _deployed_name(local=local, state_dir=state_dir, stack=stack)
    if name is not None:
        yield deployed(name, region)
        return
    from cronfleet_tools.local.stack import LocalStackError
    from cronfleet_tools.local.stopped import read_local_stack

    with ExitStack() as held:
        try:
            readable = held.enter_context(read_local_stack(state_dir, command))
        except LocalStackError as exc:
            raise TargetError("--state-dir", str(exc)) from None
        if readable.running is not None:
            yield _local_target(state_dir, readable.running, readable.store)
            return
        yield Target(
            readable.store,
            f"the stopped local stack in {state_dir}/",
            f"--local --state-dir {state_dir}",
            _refuse_to_run(state_dir),
            stopped=True,
        )


def _deployed_name(*, local: bool, state_dir: Path, stack: str | None) -> str | None:
    """The deployed stack's name, or None for the local stack of ``state_dir``."""
    if local and stack:
        raise TargetError("--stack", "choose one: --local or --stack NAME")
    if stack:
        return stack
    # Without either, a local stack in the state directory is the one meant: there is one.
    # A stopped one is not taken for granted: it takes --local to read it.
    if local or (state_dir / STACK_FILE).is_file():
        return None
    raise TargetError(
        "--stack", "say which stack: --local (the one `make run` started) or --stack NAME"
    )


def _refuse_to_run(
    state_dir: Path,
) -> Callable[[TaskRecord, dict[str, JsonValue] | None, datetime], ManualRun]:
    def trigger(task: TaskRecord, payload: dict[str, JsonValue] | None, now: datetime) -> ManualRun:
        raise TargetError(
            "--state-dir",
            f"the local stack in {state_dir}/ is stopped: start it with `make run` to run a task",
        )

    return trigger


def attached(state_dir: Path) -> Target:
    from cronfleet_tools.local.stack import LocalStackError, attach

    try:
        info = attach(state_dir)
    except LocalStackError as exc:
        raise TargetError("--state-dir", str(exc)) from None
    return _local_target(state_dir, info, info.store())


def _local_target(state_dir: Path, info: LocalStackInfo, store: Store) -> Target:
    from cronfleet_tools.local.functions import load_env_vars
    from cronfleet_tools.local.runner import http_function_of, local_lambda
    from cronfleet_tools.template import load_template

    def trigger(task: TaskRecord, payload: dict[str, JsonValue] | None, now: datetime) -> ManualRun:
        template = load_template(info.template)
        invocations: list[Invocation] = []
        lambdas = local_lambda(
            info, template, load_env_vars(info.env_vars), on_invocation=invocations.append
        )
        attempts = Attempts(store, lambdas, http_function=http_function_of(lambdas))
        slot, invoked = attempts.start_manual_run(task, now, payload=payload)
        lambdas.drain()
        lambdas.shutdown()
        return ManualRun(slot, invoked, invocations)

    return Target(
        store, f"the local stack in {state_dir}/", f"--local --state-dir {state_dir}", trigger
    )


def deployed(
    stack: str,
    region: str | None,
    cloudformation: Any = None,  # a boto3 CloudFormation client; made here when None
) -> Target:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from cronfleet.invoker import LambdaInvoker

    if cloudformation is None:
        try:
            cloudformation = boto3.client("cloudformation", region_name=region)
        except BotoCoreError as exc:  # NoRegionError: nothing configured, no --region
            raise TargetError("--region", f"{exc}: pass --region or set AWS_REGION") from None
    where = f" in {cloudformation.meta.region_name}"
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        message = exc.response["Error"].get("Message", "")
        if "does not exist" in message:
            raise TargetError("--stack", f"no stack named {stack!r}{where}") from None
        raise TargetError("--stack", f"cannot read stack {stack!r}{where}: {message}") from None
    except BotoCoreError as exc:
        raise TargetError("--stack", f"cannot read stack {stack!r}{where}: {exc}") from None
    outputs = {
        output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])
    }
    missing = [
        name for name in (TASKS_TABLE_OUTPUT, EXECUTIONS_TABLE_OUTPUT) if name not in outputs
    ]
    if missing:
        raise TargetError(
            "--stack",
            f"stack {stack!r}{where} has no {' or '.join(missing)} output: is it a cronfleet "
            "stack, and fully deployed?",
        )
    store = Store.connect(
        outputs[TASKS_TABLE_OUTPUT],
        outputs[EXECUTIONS_TABLE_OUTPUT],
        region=cloudformation.meta.region_name,
        interactive=True,
        # A resumed task's next run goes into the stack's own partitions (a stack from before
        # the output had the default count).
        due_shards=int(outputs.get(DISPATCH_SHARDS_OUTPUT, DUE_SHARDS)),
    )
    invoker = LambdaInvoker(boto3.client("lambda", region_name=cloudformation.meta.region_name))

    attempts = Attempts(store, invoker, http_function=outputs.get(HTTP_FUNCTION_OUTPUT))

    def trigger(task: TaskRecord, payload: dict[str, JsonValue] | None, now: datetime) -> ManualRun:
        slot, invoked = attempts.start_manual_run(task, now, payload=payload)
        return ManualRun(slot, invoked)

    option = f"--stack {stack} --region {cloudformation.meta.region_name}"
    return Target(store, f"stack {stack}{where}", option, trigger)
