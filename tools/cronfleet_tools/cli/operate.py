"""The operator commands, which look after a running stack.

``status``, ``history``, ``trigger``, ``pause`` and ``resume`` act on the local stack
(``--local``) or a deployed one (``--stack NAME``). Bad input exits with status 2 and names the
argument; nothing is changed when a command refuses. The ones that only read (``status``,
``describe``, ``history``) also read a stopped local stack, straight from its state directory.
"""

from __future__ import annotations

import difflib
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress

from cronfleet import clock
from cronfleet_tools.cli.common import (
    JsonOption,
    StackChoice,
    console,
    error_console,
    fail,
    on_a_stack,
    payload_option,
    refuse,
)

if TYPE_CHECKING:
    from cronfleet.store import TaskRecord
    from cronfleet_tools.stack_target import Target

MAX_HISTORY = 1000
TaskArgument = Annotated[str, typer.Argument(metavar="TASK", help="The task's name (its id).")]


def _did_you_mean(task_id: str, known: list[str]) -> str:
    """``; did you mean 'ExampleTask'?`` for a near miss (case aside), else nothing."""
    by_folded = {name.casefold(): name for name in known}
    close = difflib.get_close_matches(task_id.casefold(), list(by_folded), n=1, cutoff=0.75)
    return f"; did you mean {by_folded[close[0]]!r}?" if close else ""


def registered_task(target: Target, task_id: str) -> TaskRecord:
    """The task named TASK, or exit 2 naming the ones there are (and the one meant)."""
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
        record = registered_task(target, task)
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
    """A task's last runs, in time order: each one's payload, and every attempt with its
    duration, Lambda request id and result or error."""
    from cronfleet_tools.health import time_order
    from cronfleet_tools.views import execution_json, history_table

    with on.reading("history") as target:
        record = registered_task(target, task)
        executions = target.store.executions(record.task_id, newest_first=True, limit=limit)
    executions.sort(key=time_order)  # the newest `limit` runs, read as they happened
    payload = record.definition.payload
    if as_json:
        document = [execution_json(execution, payload) for execution in executions]
        typer.echo(json.dumps(document, indent=2, default=str))
        return
    console.print(history_table(record.task_id, executions, payload))


@on_a_stack
def trigger(
    task: TaskArgument,
    on: StackChoice,
    payload: Annotated[
        str | None,
        typer.Option("--payload", help="A JSON object to run with, instead of the task's own."),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="Wait for the run's attempt to end, then print its result and log lines.",
        ),
    ] = True,
    timeout: Annotated[
        int | None,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            min=1,
            max=3600,
            help="How long to wait on a deployed stack (default: the task's timeout + 60 s).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Start a manual run now, recorded in the ledger as manual under its own slot, and print
    its result or error and its log lines.

    Locally the run happens before the command returns; on a deployed stack the command waits
    for it, unless --no-wait.
    """
    from cronfleet_tools.cli.runs import WAIT_MARGIN_SECONDS, report_manual_run, wait_for_attempt

    body = payload_option(payload)  # checked before anything else is touched
    target = on.resolve()
    record = registered_task(target, task)
    if record.deleted:
        fail(f"task {task!r} was removed from the template; it cannot run")
    with console.status(f"Running {task} in {target.description}", spinner="dots"):
        run = target.trigger(record, body)
        execution = target.store.get_execution(record.task_id, run.slot)
        if wait and run.invoked:
            seconds = timeout or record.definition.attempt_timeout_seconds() + WAIT_MARGIN_SECONDS
            execution = wait_for_attempt(target.store, record.task_id, run.slot, seconds)
    # A script can tell: 0 when the run succeeded (or, with --no-wait, was started).
    if not report_manual_run(on, target, record, run, execution, waited=wait, as_json=as_json):
        raise typer.Exit(code=1)


@on_a_stack
def pause(task: TaskArgument, on: StackChoice) -> None:
    """Stop scheduling a task until `resume`; deploys do not undo it."""
    from cronfleet.store import TaskNotFound, TaskStateError

    target = on.resolve()
    record = registered_task(target, task)
    try:
        target.store.pause(record.task_id, clock.now())
    except TaskStateError as exc:
        fail(str(exc))
    except TaskNotFound:
        registered_task(target, task)
    console.print(f"Paused {task}. Its slots are recorded as skipped until `cronfleet resume`.")


@on_a_stack
def resume(task: TaskArgument, on: StackChoice) -> None:
    """Schedule a paused task again from now on."""
    from cronfleet.store import TaskStateError
    from cronfleet_tools.views import when

    target = on.resolve()
    record = registered_task(target, task)
    now = clock.now()
    try:
        resumed = target.store.resume(
            record.task_id, record.definition.compiled_schedule().next_run, now
        )
    except TaskStateError as exc:
        fail(str(exc))
    console.print(f"Resumed {task}; next run {when(resumed.next_run, now)}.")
