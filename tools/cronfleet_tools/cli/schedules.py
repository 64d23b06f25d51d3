"""Schedules and templates, offline: ``next``, ``validate`` and ``preview``.

A template with problems exits with status 1 and prints one ``<LogicalId>.<Field>: <reason>``
line per problem. A fault of cronfleet itself exits with status 3 and says so, so that it is
never read as a verdict on the input.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cronfleet.registry.definition import TaskDefinition
from cronfleet.schedule import (
    Schedule,
    ScheduleError,
    load_timezone,
    parse_schedule,
    timezone_caveat,
)
from cronfleet_tools.cli.common import (
    EXIT_INVALID,
    PLAIN,
    JsonOption,
    console,
    error_console,
    internal_errors,
    parse_optional_time,
    plain,
    utc_text,
)
from cronfleet_tools.template import validate_template

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
        help="List runs after this ISO-8601 time, in 1970 to 2199 (default: now). Without an "
        "offset it is read in the schedule's timezone.",
    ),
]
CountOption = Annotated[
    int, typer.Option("-n", "--count", min=1, max=MAX_RUNS, help="How many runs to list.")
]


def _after(text: str | None, zone: tzinfo) -> datetime:
    return parse_optional_time(text, "--after", zone) or datetime.now(UTC)


def _run_rows(schedule: Schedule, runs: list[datetime]) -> list[dict[str, str]]:
    return [
        {"utc": utc_text(run), "local": run.astimezone(schedule.timezone).isoformat()}
        for run in runs
    ]


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
    with internal_errors("next"):
        _print_next_runs(expression, timezone, after, count, as_json=as_json)


def _print_next_runs(
    expression: str, timezone: str, after: str | None, count: int, *, as_json: bool
) -> None:
    try:
        zone = load_timezone(timezone)
    except ScheduleError as exc:
        raise typer.BadParameter(str(exc), param_hint="--tz") from exc
    caveat = timezone_caveat(timezone)
    if caveat is not None:
        plain(f"Warning: --tz: {caveat}", stderr=True)
    try:
        schedule = parse_schedule(expression, zone)
    except ScheduleError as exc:
        raise typer.BadParameter(str(exc), param_hint="EXPRESSION") from exc
    runs = schedule.next_runs(_after(after, zone), count)
    if as_json:
        report = {
            "expression": expression,
            "timezone": zone.key,
            "description": schedule.describe(),
            "runs": _run_rows(schedule, runs),
        }
        typer.echo(json.dumps(report, indent=2))
        return
    console.print(f"{expression}: {schedule.describe()}", **PLAIN)
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


def validate(template: TemplateArgument = DEFAULT_TEMPLATE) -> None:
    """Check every scheduled task in a template, with the rules a deploy applies.

    Tasks: each Custom::ScheduledTask, and any custom resource whose ServiceToken is the registry.

    Prints one <LogicalId>.<Field>: <reason> line per problem.

    Exits 0 when valid, 1 when not, 2 for bad usage, 3 for an internal error (not a verdict).
    """
    with internal_errors("validate"):
        verdict = validate_template(template)
        if not verdict.ok:
            for problem in verdict.problems:
                console.print(str(problem), **PLAIN)
            raise typer.Exit(code=EXIT_INVALID)
        for warning in verdict.warnings:
            plain(f"Warning: {warning}", stderr=True)
        console.print(f"{template}: {len(verdict.tasks)} scheduled task(s), all valid.", **PLAIN)


def preview(
    template: TemplateArgument = DEFAULT_TEMPLATE,
    after: AfterOption = None,
    count: CountOption = 3,
    as_json: JsonOption = False,
) -> None:
    """List the upcoming runs of every task declared in a template.

    Exits 0, 1 when a task is invalid (problems on stderr), 2 for bad usage, 3 for an internal bug.
    """
    with internal_errors("preview"):
        _print_preview(template, after, count, as_json=as_json)


def _print_preview(template: Path, after: str | None, count: int, *, as_json: bool) -> None:
    verdict = validate_template(template)
    if not verdict.ok:
        for problem in verdict.problems:
            error_console.print(str(problem), **PLAIN)
        raise typer.Exit(code=EXIT_INVALID)
    for warning in verdict.warnings:
        plain(f"Warning: {warning}", stderr=True)
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
    runs = schedule.next_runs(_after(after, schedule.timezone), count)
    return {
        "task": task.task_id,
        "expression": task.schedule,
        "timezone": task.timezone,
        "description": schedule.describe(),
        "enabled": task.enabled,
        "runs": _run_rows(schedule, runs),
    }
