"""The ``cronfleet`` command: preview schedules and validate templates offline.

Output is a readable table by default and JSON with ``--json``. Bad input exits with status 2
and a message naming the argument; a template with problems exits with status 1 and prints one
``<LogicalId>.<Field>: <reason>`` line per problem.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from cronfleet.registry import TaskDefinition, validate_template
from cronfleet.schedule import Schedule, ScheduleError, load_timezone, parse_schedule

app = typer.Typer(
    name="cronfleet",
    help="A serverless cron orchestrator for AWS: preview schedules and validate tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
error_console = Console(stderr=True)

DEFAULT_TEMPLATE = Path("template.yaml")
MAX_RUNS = 1000

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
        help="List runs after this ISO-8601 time (default: now). Without an offset it is read "
        "in the schedule's timezone.",
    ),
]
CountOption = Annotated[
    int, typer.Option("-n", "--count", min=1, max=MAX_RUNS, help="How many runs to list.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _parse_after(text: str | None, zone: ZoneInfo) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(
            f"'{text}' is not an ISO-8601 time such as 2026-11-01T09:00:00Z", param_hint="--after"
        ) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


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
    """Preview the next runs of a schedule expression."""
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
    console.print(f"{expression}: {schedule.describe()}", markup=False, highlight=False)
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
    """Check every Custom::ScheduledTask in a template, with the rules a deploy applies."""
    verdict = validate_template(template)
    if not verdict.ok:
        for problem in verdict.problems:
            console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=1)
    console.print(f"{template}: {len(verdict.tasks)} scheduled task(s), all valid.")


@app.command()
def preview(
    template: TemplateArgument = DEFAULT_TEMPLATE,
    after: AfterOption = None,
    count: CountOption = 3,
    as_json: JsonOption = False,
) -> None:
    """List the upcoming runs of every task declared in a template."""
    verdict = validate_template(template)
    if not verdict.ok:
        for problem in verdict.problems:
            error_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=1)
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
