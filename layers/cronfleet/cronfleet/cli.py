"""The ``cronfleet`` command: preview schedules and validate templates offline.

Output is a readable table by default and JSON with ``--json``. Bad input exits with status 2
and a message naming the argument; a template with problems exits with status 1 and prints one
``<LogicalId>.<Field>: <reason>`` line per problem. A fault of cronfleet itself in ``validate``,
``next`` or ``preview`` exits with status 3 and says so, so that it is never read as a verdict
on the input.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from cronfleet.registry import TaskDefinition, validate_template
from cronfleet.schedule import Schedule, ScheduleError, load_timezone, parse_schedule
from cronfleet.schedule.expression import END_OF_TIME, START_OF_TIME

if TYPE_CHECKING:
    from cronfleet.audit import AuditReport
    from cronfleet.store import Store

app = typer.Typer(
    name="cronfleet",
    help="A serverless cron orchestrator for AWS: preview schedules and validate tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# No emoji codes anywhere: task ids, errors and every Secrets Manager ARN (':secret:') would
# otherwise print as pictures.
console = Console(emoji=False)
error_console = Console(stderr=True, emoji=False)

DEFAULT_TEMPLATE = Path("template.yaml")
MAX_RUNS = 1000
# Text printed as it is: problems echo template values, in which rich would otherwise read
# markup, and emoji codes (every Secrets Manager ARN holds ':secret:'), and wrap long lines.
_PLAIN: dict[str, Any] = {"markup": False, "highlight": False, "emoji": False, "soft_wrap": True}
# Exit statuses of validate, next and preview (2, bad usage, is typer's own).
EXIT_INVALID = 1
EXIT_INTERNAL_ERROR = 3

TemplateArgument = Annotated[
    Path,
    typer.Argument(
        help="The SAM template that declares the tasks.",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]
AfterOption = Annotated[
    str | None,
    typer.Option(
        "--after",
        help="List runs after this ISO-8601 time, in 1970 to 2199 (default: now). Without an "
        "offset it is read in the schedule's timezone.",
    ),
]
CountOption = Annotated[
    int, typer.Option("-n", "--count", min=1, max=MAX_RUNS, help="How many runs to list.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@contextmanager
def _internal_errors(command: str) -> Iterator[None]:
    """Turn a fault of cronfleet itself into exit status 3 and a message that says so.

    Without this, an exception would exit 1, the status of a template with problems, and a
    crash would read as a verdict on the input.
    """
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise  # typer's own ways out: a verdict (1), bad usage (2), Ctrl-C
    except Exception as exc:
        traceback.print_exc()
        error_console.print(
            f"Internal error in cronfleet {command} ({type(exc).__name__}): this is a bug in "
            "cronfleet, not a verdict on the input; please report it with the traceback above.",
            **_PLAIN,
        )
        raise typer.Exit(code=EXIT_INTERNAL_ERROR) from exc


def _parse_after(text: str | None, zone: ZoneInfo) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(
            f"'{text}' is not an ISO-8601 time such as 2026-11-01T09:00:00Z", param_hint="--after"
        ) from exc
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
    if not START_OF_TIME <= moment < END_OF_TIME:
        raise typer.BadParameter(
            f"'{text}' is outside the years schedules run in, 1970 to 2199", param_hint="--after"
        )
    return moment


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _run_rows(schedule: Schedule, runs: list[datetime]) -> list[dict[str, str]]:
    return [
        {"utc": _utc_text(run), "local": run.astimezone(schedule.timezone).isoformat()}
        for run in runs
    ]


@app.command("next")
def next_runs(
    expression: Annotated[
        str,
        typer.Argument(
            help="cron(...), rate(...), at(...) or a 5-field Unix cron expression.",
            metavar="EXPRESSION",
            show_default=False,
        ),
    ],
    timezone: Annotated[str, typer.Option("--tz", help="IANA timezone.")] = "UTC",
    after: AfterOption = None,
    count: CountOption = 5,
    as_json: JsonOption = False,
) -> None:
    """Preview the next runs of a schedule expression.

    Exits 0, 2 for a bad expression or option, 3 for an internal error.
    """
    with _internal_errors("next"):
        _print_next_runs(expression, timezone, after, count, as_json=as_json)


def _print_next_runs(
    expression: str, timezone: str, after: str | None, count: int, *, as_json: bool
) -> None:
    try:
        zone = load_timezone(timezone)
    except ScheduleError as exc:
        raise typer.BadParameter(str(exc), param_hint="--tz") from exc
    try:
        schedule = parse_schedule(expression, zone)
    except ScheduleError as exc:
        raise typer.BadParameter(str(exc), param_hint="EXPRESSION") from exc
    runs = schedule.next_runs(_parse_after(after, zone), count)
    if as_json:
        report = {
            "expression": expression,
            "timezone": zone.key,
            "description": schedule.describe(),
            "runs": _run_rows(schedule, runs),
        }
        typer.echo(json.dumps(report, indent=2))
        return
    console.print(f"{expression}: {schedule.describe()}", **_PLAIN)
    if not runs:
        console.print("No runs after that time.")
        return
    table = Table()
    table.add_column("#", justify="right")
    table.add_column("UTC")
    table.add_column(f"Local ({zone.key})")
    for number, row in enumerate(_run_rows(schedule, runs), 1):
        table.add_row(str(number), row["utc"], row["local"])
    console.print(table)
    if len(runs) < count:
        console.print(f"The schedule ends after these {len(runs)} run(s).")


@app.command()
def validate(template: TemplateArgument = DEFAULT_TEMPLATE) -> None:
    """Check every scheduled task in a template, with the rules a deploy applies.

    Tasks: each Custom::ScheduledTask, and any custom resource whose ServiceToken is the registry.

    Prints one <LogicalId>.<Field>: <reason> line per problem.

    Exits 0 when valid, 1 when not, 2 for bad usage, 3 for an internal error (not a verdict).
    """
    with _internal_errors("validate"):
        verdict = validate_template(template)
        if not verdict.ok:
            for problem in verdict.problems:
                console.print(str(problem), **_PLAIN)
            raise typer.Exit(code=EXIT_INVALID)
        console.print(f"{template}: {len(verdict.tasks)} scheduled task(s), all valid.", **_PLAIN)


@app.command()
def preview(
    template: TemplateArgument = DEFAULT_TEMPLATE,
    after: AfterOption = None,
    count: CountOption = 3,
    as_json: JsonOption = False,
) -> None:
    """List the upcoming runs of every task declared in a template.

    Exits 0, 1 when a task is invalid (problems on stderr), 2 for bad usage, 3 for an internal bug.
    """
    with _internal_errors("preview"):
        _print_preview(template, after, count, as_json=as_json)


def _print_preview(template: Path, after: str | None, count: int, *, as_json: bool) -> None:
    verdict = validate_template(template)
    if not verdict.ok:
        for problem in verdict.problems:
            error_console.print(str(problem), **_PLAIN)
        raise typer.Exit(code=EXIT_INVALID)
    previews = [_task_preview(task, after, count) for task in verdict.tasks]
    if as_json:
        typer.echo(json.dumps(previews, indent=2))
        return
    table = Table(title=f"Scheduled tasks in {template}", title_justify="left", show_lines=True)
    for column in ("Task", "Schedule", "Next runs (local)"):
        table.add_column(column)
    for item in previews:
        schedule_text = f"{item['expression']}\n{item['description']}"
        if not item["enabled"]:
            schedule_text += "\n(disabled)"
        runs = "\n".join(run["local"] for run in item["runs"]) or "no more runs"
        table.add_row(item["task"], schedule_text, runs)
    console.print(table)


def _task_preview(task: TaskDefinition, after: str | None, count: int) -> dict[str, Any]:
    schedule = parse_schedule(task.schedule, task.timezone)
    runs = schedule.next_runs(_parse_after(after, schedule.timezone), count)
    return {
        "task": task.task_id,
        "expression": task.schedule,
        "timezone": task.timezone,
        "description": schedule.describe(),
        "enabled": task.enabled,
        "runs": _run_rows(schedule, runs),
    }


# --- audit: the ledger against the schedules ---------------------------------------------------

AUDIT_WINDOW = timedelta(hours=24)


def _parse_utc(text: str | None, option: str) -> datetime | None:
    """An ISO-8601 time; without an offset it is UTC (the ledger's own time)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(
            f"'{text}' is not an ISO-8601 time such as 2026-11-01T09:00:00Z", param_hint=option
        ) from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _ledger_store(
    tasks_table: str, executions_table: str, endpoint_url: str | None, region: str | None
) -> Store:
    # Deferred: boto3 costs a second of start-up that `next` and `validate` should not pay.
    from cronfleet.store import Store

    return Store.connect(
        tasks_table, executions_table, endpoint_url=endpoint_url, region=region, interactive=True
    )


def _print_audit(report: AuditReport) -> None:
    window = f"({_utc_text(report.start)}, {_utc_text(report.end)}]"
    table = Table(title=f"Ledger audit of {window}", title_justify="left")
    table.add_column("Task", no_wrap=True)
    table.add_column("State", no_wrap=True)
    columns = ["expected", "final", "in_flight", "gaps"]
    # Only when some task has them: slots of paused or disabled tasks are not expected.
    columns += [name for name in ("paused", "disabled") if getattr(report.counts, name)]
    for name in columns:
        table.add_column(name.replace("_", " ").capitalize(), justify="right")
    for task in report.tasks:
        counts = task.counts.to_json()
        table.add_row(task.task_id, task.state, *(str(counts[name]) for name in columns))
    console.print(table)
    for finding in report.findings:
        console.print(str(finding), markup=False, highlight=False, soft_wrap=True)
    for task in report.tasks:
        if task.findings_omitted:
            console.print(f"{task.task_id}: {task.findings_omitted} more finding(s) not shown")
    if report.tick_gaps_total:
        console.print(
            f"Information: the dispatcher noticed missed ticks {report.tick_gaps_total} time(s), "
            f"from {report.tick_gaps[0]} to {report.tick_gaps[-1]}; the tasks' ledgers above "
            "show what became of their slots.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    errors = sum(task.errors for task in report.tasks)
    if errors:
        console.print(f"{errors} finding(s) break the rule of one final state per slot.")
    else:
        console.print("Clean: every expected slot has exactly one ledger entry.")


@app.command("audit")
def audit_ledger(
    task: Annotated[
        str | None,
        typer.Argument(
            metavar="TASK", help="Audit only this task (default: every task).", show_default=False
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Start of the window, exclusive: ISO-8601, UTC without an offset "
            "(default: 24 hours before --until).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="End of the window, inclusive (default: now)."),
    ] = None,
    as_json: JsonOption = False,
    local: Annotated[
        bool, typer.Option("--local", help="Audit the local stack that `make run` started.")
    ] = False,
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="The local stack's state directory.")
    ] = Path(".cronfleet"),
    stack: Annotated[
        str | None,
        typer.Option("--stack", metavar="NAME", help="Audit this deployed CloudFormation stack."),
    ] = None,
    tasks_table: Annotated[
        str | None,
        typer.Option("--tasks-table", metavar="NAME", help="Or name the tables yourself."),
    ] = None,
    executions_table: Annotated[
        str | None,
        typer.Option("--executions-table", metavar="NAME", help="With --tasks-table."),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url",
            help="DynamoDB endpoint for --tasks-table, such as http://127.0.0.1:8000.",
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="AWS region (default: from the AWS configuration)."),
    ] = None,
) -> None:
    """Check the ledger: every slot ends in exactly one final state, or is in flight.

    Exits 0 when clean, 1 when there are findings, 2 for bad input.
    """
    end = _parse_utc(until, "--until") or datetime.now(UTC)
    start = _parse_utc(since, "--since") or end - AUDIT_WINDOW
    if start >= end:
        raise typer.BadParameter(
            f"{_utc_text(start)} is not before --until ({_utc_text(end)})", param_hint="--since"
        )
    from botocore.exceptions import BotoCoreError, ClientError

    from cronfleet.audit import audit
    from cronfleet.stack_target import TargetError, resolve
    from cronfleet.store import StoreError, TaskNotFound

    if (tasks_table is None) != (executions_table is None):
        raise typer.BadParameter(
            "--tasks-table and --executions-table go together", param_hint="--tasks-table"
        )
    try:
        if tasks_table is not None and executions_table is not None:
            store, where = (
                _ledger_store(tasks_table, executions_table, endpoint_url, region),
                tasks_table,
            )
        else:
            target = resolve(local=local, state_dir=state_dir, stack=stack, region=region)
            store, where = target.store, target.description
    except TargetError as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.option) from exc
    try:
        report = audit(store, None if task is None else [task], start, end, datetime.now(UTC))
    except TaskNotFound as exc:
        raise typer.BadParameter(f"{exc} in {where}", param_hint="TASK") from exc
    except (StoreError, BotoCoreError, ClientError) as exc:
        error_console.print(f"Cannot read the ledger: {exc}", markup=False, highlight=False)
        raise typer.Exit(code=2) from exc
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print_audit(report)
    if not report.ok:
        raise typer.Exit(code=1)


# The operator commands (run, status, history, trigger, pause, resume) live in their own module
# and register themselves on `app` when imported.
from cronfleet import cli_operate  # noqa: E402, F401


def main() -> None:
    app()


# --- import: existing cron jobs as tasks -------------------------------------------------------


@app.command("import")
def import_tasks(
    file: Annotated[
        Path,
        typer.Argument(
            help="A vercel.json (its crons array), or a crontab whose lines call URLs with curl "
            "or wget.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            metavar="URL",
            help="Where the app is served (https://...). Vercel cron paths are joined to it; in "
            "a crontab it stands in for an unset variable that starts a URL ($API_URL/...).",
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--tz", help="The crontab's timezone where no CRON_TZ line sets one (default: UTC)."
        ),
    ] = None,
) -> None:
    """Translate Vercel cron jobs or crontab URL calls into Custom::ScheduledTask resources.

    Prints YAML for the Resources of template.yaml; warnings and the steps left go to stderr.
    Exits 0 when every job was translated, 1 when some were not (each is named), 2 for bad input.
    """
    # Imported on use, as the ledger store is: no other command needs it.
    from cronfleet.migration import ImportInputError, import_file, render_resources, report_lines

    try:
        result = import_file(file, base_url=base_url, timezone=timezone)
    except ImportInputError as exc:
        if exc.option:
            raise typer.BadParameter(str(exc), param_hint=exc.option) from exc
        error_console.print(
            f"Cannot import {file}: {exc}", markup=False, highlight=False, soft_wrap=True
        )
        raise typer.Exit(code=2) from exc
    typer.echo(render_resources(result), nl=False)
    for line in report_lines(result):
        error_console.print(line, markup=False, highlight=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(code=1)
