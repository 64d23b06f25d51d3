"""The operator commands, which look after a running stack.

``status``, ``history``, ``trigger``, ``pause`` and ``resume`` act on the local stack
(``--local``) or a deployed one (``--stack NAME``). Bad input exits with status 2 and names the
argument; nothing is changed when a command refuses. The ones that only read (``status``,
``describe``, ``history``) also read a stopped local stack, straight from its state directory.
"""

from __future__ import annotations

import difflib
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress

from cronfleet import clock
from cronfleet.lifecycle.states import RunStatus
from cronfleet_tools.cli.common import (
    JsonOption,
    StackChoice,
    console,
    error_console,
    fail,
    on_a_stack,
    refuse,
)

if TYPE_CHECKING:
    from cronfleet.store import TaskRecord
    from cronfleet_tools.stack_target import Target

MAX_HISTORY = 1000
# A manual run that ended in one of these (or is waiting to retry) did not succeed.
FAILED_STATES = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.RETRY_WAIT})
TaskArgument = Annotated[str, typer.Argument(metavar="TASK", help="The task's name (its id).")]


def _did_you_mean(task_id: str, known: list[str]) -> str:
    """``; did you mean 'ExampleTask'?`` for a near miss (case aside), else nothing."""
    by_folded = {name.casefold(): name for name in known}
    close = difflib.get_close_matches(task_id.casefold(), list(by_folded), n=1, cutoff=0.75)
    return f"; did you mean {by_folded[close[0]]!r}?" if close else ""


def _task(target: Target, task_id: str) -> TaskRecord:
    task = target.store.get_task(task_id)
    if task is None:
        known = sorted(record.task_id for record in target.store.list_tasks())
        hint = f"; known tasks: {', '.join(known)}" if known else "; no tasks are registered"
        refuse(
            "TASK",
            f"no task {task_id!r} in {target.description}{_did_you_mean(task_id, known)}{hint}",
        )
    return task


# --- the operator commands -------------------------------------------------------------------


@on_a_stack
def status(on: StackChoice, as_json: JsonOption = False) -> None:
    """Every task, its schedule, next run, last result and health."""
    from cronfleet_tools.health import fleet_status
    from cronfleet_tools.views import status_table

    # The spinner first: reading a stopped local stack starts an engine, which takes seconds.
    with (
        Progress(console=error_console, transient=True, disable=as_json) as progress,
        on.reading("status") as target,
    ):
        reading = progress.add_task("Reading tasks", total=None)
        statuses = fleet_status(target.store, on_task=lambda _: progress.advance(reading))
    if as_json:
        typer.echo(json.dumps([status.as_json() for status in statuses], indent=2))
        return
    console.print(status_table(statuses, clock.now(), title=f"Tasks of {target.description}"))


@on_a_stack
def describe(task: TaskArgument, on: StackChoice, as_json: JsonOption = False) -> None:
    """One task whole: its definition in words, next runs, counters, health and last runs."""
    from cronfleet_tools.describing import LAST_RUNS, TaskDescription

    with on.reading("describe") as target:
        record = _task(target, task)
        now = clock.now()
        last_runs = target.store.executions(record.task_id, newest_first=True, limit=LAST_RUNS)
    description = TaskDescription.of(record, last_runs, now)
    if as_json:
        typer.echo(json.dumps(description.as_json(), indent=2, default=str))
        return
    console.print(description.render(now))


@on_a_stack
def history(
    task: TaskArgument,
    on: StackChoice,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_HISTORY, help="How many runs to show.")
    ] = 20,
    as_json: JsonOption = False,
) -> None:
    """A task's runs, newest first, with every attempt and its error."""
    from cronfleet_tools.views import execution_json, history_table

    with on.reading("history") as target:
        record = _task(target, task)
        executions = target.store.executions(record.task_id, newest_first=True, limit=limit)
    if as_json:
        typer.echo(json.dumps([execution_json(e) for e in executions], indent=2, default=str))
        return
    console.print(history_table(record.task_id, executions))


def _payload(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        refuse("--payload", f"not JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(payload, dict):
        refuse("--payload", f"must be a JSON object, not {type(payload).__name__}")
    return payload


@on_a_stack
def trigger(
    task: TaskArgument,
    on: StackChoice,
    payload: Annotated[
        str | None,
        typer.Option("--payload", help="A JSON object to run with, instead of the task's own."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Start a manual run now, recorded in the ledger as manual under its own slot.

    Locally the run happens before the command returns; on a deployed stack it is queued.
    """
    from cronfleet_tools.views import execution_json

    body = _payload(payload)  # checked before anything else is touched
    target = on.resolve()
    record = _task(target, task)
    if record.deleted:
        fail(f"task {task!r} was removed from the template; it cannot run")
    with console.status(f"Running {task} in {target.description}", spinner="dots"):
        run = target.trigger(record, body)
    execution = target.store.get_execution(record.task_id, run.slot)
    attempt = execution.current if execution else None
    failed = execution is not None and execution.status in FAILED_STATES
    if as_json:
        document = execution_json(execution) if execution else {"slot": run.slot}
        typer.echo(json.dumps({"task": task, "invoked": run.invoked, **document}, indent=2))
    else:
        state = execution.status.value if execution else "unknown"
        console.print(f"Manual run of {task}: slot {run.slot}, {state}", markup=False)
        if failed and attempt is not None and attempt.error_type:
            console.print(
                f"  {attempt.error_type}: {attempt.error_message}", style="red", markup=False
            )
        for invocation in run.invocations:
            if invocation.failed:
                console.print(
                    f"  {invocation.function}: {invocation.error_type}: {invocation.error_message}",
                    style="red",
                    markup=False,
                )
        if not run.invocations and run.invoked:
            console.print(
                f"Queued; follow it with: cronfleet history {task} {target.option_text}",
                style="dim",
                markup=False,
            )
    # A script can tell: 0 when the run succeeded (or, on a deployed stack, was queued).
    if not run.invoked or failed:
        raise typer.Exit(code=1)


@on_a_stack
def pause(task: TaskArgument, on: StackChoice) -> None:
    """Stop scheduling a task until `resume`; deploys do not undo it."""
    from cronfleet.store import TaskNotFound, TaskStateError

    target = on.resolve()
    record = _task(target, task)
    try:
        target.store.pause(record.task_id, clock.now())
    except TaskStateError as exc:
        fail(str(exc))
    except TaskNotFound:
        _task(target, task)
    console.print(f"Paused {task}. Its slots are recorded as skipped until `cronfleet resume`.")


@on_a_stack
def resume(task: TaskArgument, on: StackChoice) -> None:
    """Schedule a paused task again from now on."""
    from cronfleet.store import TaskStateError
    from cronfleet_tools.views import when

    target = on.resolve()
    record = _task(target, task)
    now = clock.now()
    try:
        resumed = target.store.resume(
            record.task_id, record.definition.compiled_schedule().next_run, now
        )
    except TaskStateError as exc:
        fail(str(exc))
    console.print(f"Resumed {task}; next run {when(resumed.next_run, now)}.")
