"""The operator commands: run the stack locally, and look after a running one.

``cronfleet run`` starts the local stack. ``status``, ``history``, ``trigger``, ``pause`` and
``resume`` act on the local stack (``--local``) or a deployed one (``--stack NAME``). Bad input
exits with status 2 and names the argument; nothing is changed when a command refuses.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.progress import Progress

from cronfleet import clock
from cronfleet.cli import JsonOption, app, console, error_console
from cronfleet.lifecycle import RunStatus

if TYPE_CHECKING:
    from cronfleet.stack_target import Target
    from cronfleet.store import TaskRecord

DEFAULT_STATE_DIR = Path(".cronfleet")
MAX_HISTORY = 1000
# A manual run that ended in one of these (or is waiting to retry) did not succeed.
FAILED_STATES = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.RETRY_WAIT})

LocalOption = Annotated[
    bool, typer.Option("--local", help="Act on the local stack that `make run` started.")
]
StateDirOption = Annotated[
    Path, typer.Option("--state-dir", help="The local stack's state directory.")
]
StackOption = Annotated[
    str | None,
    typer.Option("--stack", metavar="NAME", help="Act on this deployed CloudFormation stack."),
]
RegionOption = Annotated[
    str | None,
    typer.Option("--region", help="AWS region of --stack (default: from the AWS configuration)."),
]
TaskArgument = Annotated[str, typer.Argument(metavar="TASK", help="The task's name (its id).")]


def _refuse(option: str, message: str) -> NoReturn:
    raise typer.BadParameter(message, param_hint=option)


def _target(local: bool, state_dir: Path, stack: str | None, region: str | None) -> Target:
    from cronfleet.stack_target import TargetError, resolve

    try:
        return resolve(local=local, state_dir=state_dir, stack=stack, region=region)
    except TargetError as exc:
        _refuse(exc.option, str(exc))


def _task(target: Target, task_id: str) -> TaskRecord:
    task = target.store.get_task(task_id)
    if task is None:
        known = sorted(record.task_id for record in target.store.list_tasks())
        hint = f"; known tasks: {', '.join(known)}" if known else "; no tasks are registered"
        _refuse("TASK", f"no task {task_id!r} in {target.description}{hint}")
    return task


# --- cronfleet run ---------------------------------------------------------------------------


def _parse_time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        _refuse(option, f"{text!r} is not an ISO-8601 time such as 2026-03-28T00:00Z")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        _refuse("--speed", f"{text!r} is neither a number nor 'max'")
    if not 0 < speed <= 100_000:
        _refuse("--speed", f"{text} is out of range: more than 0, at most 100000, or 'max'")
    return speed


@app.command("run")
def run_local(
    template: Annotated[
        Path, typer.Option("--template", help="The SAM template with the tasks.")
    ] = Path("template.yaml"),
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    env_vars: Annotated[
        Path | None,
        typer.Option(
            "--env-vars", help="Environment overrides, as for `sam local invoke --env-vars`."
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--start", help="Replay from this time on a simulated clock (ISO-8601)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="End of the replay, inclusive (ISO-8601).")
    ] = None,
    speed: Annotated[
        str,
        typer.Option("--speed", help="Simulated minutes per real minute, or 'max' (replays only)."),
    ] = "60",
    trigger_all: Annotated[
        bool,
        typer.Option(
            "--trigger-all/--no-trigger-all",
            help="Start with one manual run of every enabled task.",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show idle ticks too.")] = False,
) -> None:
    """Run the whole stack locally: DynamoDB Local, the dispatcher, the task functions.

    Live, it ticks at each minute boundary until Ctrl-C. With --start and --until it replays
    that window on a simulated clock; slots keep their logical times.
    """
    from cronfleet.local.console import ConsoleReporter
    from cronfleet.local.functions import InvalidEnvVars
    from cronfleet.local.runner import LocalRunner, RunOptions, TemplateProblems
    from cronfleet.local.stack import LocalStackError
    from cronfleet.registry.problems import InvalidTemplate

    if not template.is_file():
        _refuse("--template", f"{template}: no such file")
    begin, end = _parse_time(start, "--start"), _parse_time(until, "--until")
    options = RunOptions(
        template=template,
        state_dir=state_dir,
        env_vars=env_vars,
        start=begin,
        until=end,
        speed=_parse_speed(speed),
        trigger_all=trigger_all,
    )
    reporter = ConsoleReporter(console, clock.now, verbose=verbose)
    try:
        runner = LocalRunner(options, reporter)
    except ValueError as exc:
        _refuse("--start" if "start" in str(exc) else "--until", str(exc))

    try:
        with runner.stop_on_signals():
            summary = runner.run()
    except (TemplateProblems, InvalidTemplate) as exc:
        error_console.print(f"{template} has problems; nothing was started:", markup=False)
        error_console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(code=1) from None
    except InvalidEnvVars as exc:
        _refuse("--env-vars", str(exc))
    except LocalStackError as exc:
        error_console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(code=2) from None
    console.print(
        f"Stopped after {summary.ticks} tick(s), {summary.invocations} invocation(s), "
        f"{summary.alerts} alert(s). Data kept in {state_dir}/.",
        style="dim",
    )


# --- the operator commands -------------------------------------------------------------------


@app.command("status")
def status(
    local: LocalOption = False,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every task, its schedule, next run, last result and health."""
    from cronfleet.health import fleet_status
    from cronfleet.views import status_table

    target = _target(local, state_dir, stack, region)
    with Progress(console=error_console, transient=True, disable=as_json) as progress:
        reading = progress.add_task("Reading tasks", total=None)
        statuses = fleet_status(target.store, on_task=lambda _: progress.advance(reading))
    if as_json:
        typer.echo(json.dumps([status.as_json() for status in statuses], indent=2))
        return
    console.print(status_table(statuses, clock.now(), title=f"Tasks of {target.description}"))


@app.command("history")
def history(
    task: TaskArgument,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_HISTORY, help="How many runs to show.")
    ] = 20,
    local: LocalOption = False,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """A task's runs, newest first, with every attempt and its error."""
    from cronfleet.views import execution_json, history_table

    target = _target(local, state_dir, stack, region)
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
        _refuse("--payload", f"not JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(payload, dict):
        _refuse("--payload", f"must be a JSON object, not {type(payload).__name__}")
    return payload


@app.command("trigger")
def trigger(
    task: TaskArgument,
    payload: Annotated[
        str | None,
        typer.Option("--payload", help="A JSON object to run with, instead of the task's own."),
    ] = None,
    local: LocalOption = False,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a manual run now, recorded in the ledger as manual under its own slot.

    Locally the run happens before the command returns; on a deployed stack it is queued.
    """
    from cronfleet.views import execution_json

    body = _payload(payload)  # checked before anything else is touched
    target = _target(local, state_dir, stack, region)
    record = _task(target, task)
    if record.deleted:
        _refuse("TASK", f"task {task!r} was removed from the template; it cannot run")
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


@app.command("pause")
def pause(
    task: TaskArgument,
    local: LocalOption = False,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    stack: StackOption = None,
    region: RegionOption = None,
) -> None:
    """Stop scheduling a task until `resume`; deploys do not undo it."""
    from cronfleet.store import TaskNotFound, TaskStateError

    target = _target(local, state_dir, stack, region)
    record = _task(target, task)
    try:
        target.store.pause(record.task_id, clock.now())
    except TaskStateError as exc:
        _refuse("TASK", str(exc))
    except TaskNotFound:
        _task(target, task)
    console.print(f"Paused {task}. Its slots are recorded as skipped until `cronfleet resume`.")


@app.command("resume")
def resume(
    task: TaskArgument,
    local: LocalOption = False,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    stack: StackOption = None,
    region: RegionOption = None,
) -> None:
    """Schedule a paused task again from now on."""
    from cronfleet.store import TaskStateError
    from cronfleet.views import when

    target = _target(local, state_dir, stack, region)
    record = _task(target, task)
    now = clock.now()
    try:
        resumed = target.store.resume(
            record.task_id, record.definition.compiled_schedule().next_run, now
        )
    except TaskStateError as exc:
        _refuse("TASK", str(exc))
    console.print(f"Resumed {task}; next run {when(resumed.next_run, now)}.")
