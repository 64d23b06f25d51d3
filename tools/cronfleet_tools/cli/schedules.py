"""Schedules and templates, offline: ``next``, ``validate`` and ``preview`` (``--herd``: the
fleet's busiest minutes).

A template with problems exits with status 1 and prints one ``<LogicalId>.<Field>: <reason>``
line per problem. A fault of cronfleet itself exits with status 3 and says so, so that it is
never read as a verdict on the input.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cronfleet.registry.definition import TaskDefinition
from cronfleet.registry.definition.checks import TASK_ID_PATTERN
from cronfleet.schedule import (
    MissingHashKey,
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
    refuse,
    utc_text,
)
from cronfleet_tools.tables import Column, FittedTable, Layout, shortened
from cronfleet_tools.template import validate_template
from cronfleet_tools.views import when

DEFAULT_TEMPLATE = Path("template.yaml")
MAX_RUNS = 1000
HERD_WINDOW = timedelta(days=7)
# Task names shown for one minute of the herd; the rest are counted.
HERD_NAMES = 5

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
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            metavar="NAME",
            help="The task id (a task's Name) that H in the expression is hashed from.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Preview the next runs of a schedule expression.

    Exits 0, 2 for a bad expression or option, 3 for an internal error.
    """
    with internal_errors("next"):
        _print_next_runs(expression, timezone, after, count, task, as_json=as_json)


def _print_next_runs(
    expression: str,
    timezone: str,
    after: str | None,
    count: int,
    task: str | None,
    *,
    as_json: bool,
) -> None:
    if task is not None and not TASK_ID_PATTERN.fullmatch(task):
        refuse(
            "--task",
            f"{task!r} is no task id: 1 to 64 letters, digits, '_', '.' or '-', starting with a "
            "letter or digit",
        )
    try:
        zone = load_timezone(timezone)
    except ScheduleError as exc:
        raise typer.BadParameter(str(exc), param_hint="--tz") from exc
    caveat = timezone_caveat(timezone)
    if caveat is not None:
        plain(f"Warning: --tz: {caveat}", stderr=True)
    try:
        schedule = parse_schedule(expression, zone, hash_key=task)
    except MissingHashKey as exc:
        refuse("--task", f"{exc}; pass --task NAME, the task whose runs to show")
    except ScheduleError as exc:
        raise typer.BadParameter(str(exc), param_hint="EXPRESSION") from exc
    runs = schedule.next_runs(_after(after, zone), count)
    if as_json:
        report: dict[str, Any] = {
            "expression": expression,
            "timezone": zone.key,
            "description": schedule.describe(),
        }
        if task is not None:
            report |= {"task": task, "resolved": schedule.resolved_expression}
        report["runs"] = _run_rows(schedule, runs)
        typer.echo(json.dumps(report, indent=2))
        return
    console.print(f"{expression}: {schedule.describe()}", **PLAIN)
    if schedule.hashed_fields:
        console.print(f"For task {task}: {schedule.resolved_expression}", **PLAIN)
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
    herd: Annotated[
        bool,
        typer.Option(
            "--herd",
            help="Instead of each task's runs, the busiest UTC minutes of the week from --after "
            "(read in UTC when it has no offset) across all enabled tasks, and the tasks that "
            "make them up.",
        ),
    ] = False,
    top: Annotated[
        int | None,
        typer.Option("--top", min=1, max=MAX_RUNS, help="With --herd: how many minutes [10]."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the upcoming runs of every task declared in a template.

    Exits 0, 1 when a task is invalid (problems on stderr), 2 for bad usage, 3 for an internal bug.
    """
    if top is not None and not herd:
        refuse("--top", "counts the busiest minutes of --herd; add --herd")
    with internal_errors("preview"):
        if herd:
            _print_herd(template, after, top or 10, as_json=as_json)
        else:
            _print_preview(template, after, count, as_json=as_json)


def _valid_tasks(template: Path) -> list[TaskDefinition]:
    verdict = validate_template(template)
    if not verdict.ok:
        for problem in verdict.problems:
            error_console.print(str(problem), **PLAIN)
        raise typer.Exit(code=EXIT_INVALID)
    for warning in verdict.warnings:
        plain(f"Warning: {warning}", stderr=True)
    return verdict.tasks


def _print_preview(template: Path, after: str | None, count: int, *, as_json: bool) -> None:
    previews = [_task_preview(task, after, count) for task in _valid_tasks(template)]
    if as_json:
        typer.echo(json.dumps(previews, indent=2))
        return
    table = Table(title=f"Scheduled tasks in {template}", title_justify="left", show_lines=True)
    for column in ("Task", "Schedule", "Next runs (local)"):
        table.add_column(column)
    for item in previews:
        schedule_text = f"{item['expression']}\n{item['description']}"
        if item["resolved"] != item["expression"]:
            schedule_text += f"\nresolves to {item['resolved']}"
        if not item["enabled"]:
            schedule_text += "\n(disabled)"
        runs = "\n".join(run["local"] for run in item["runs"]) or "no more runs"
        table.add_row(item["task"], schedule_text, runs)
    console.print(table)


def _task_preview(task: TaskDefinition, after: str | None, count: int) -> dict[str, Any]:
    schedule = task.compiled_schedule()
    runs = schedule.next_runs(_after(after, schedule.timezone), count)
    return {
        "task": task.task_id,
        "expression": task.schedule,
        "resolved": schedule.resolved_expression,
        "timezone": task.timezone,
        "description": schedule.describe(),
        "enabled": task.enabled,
        "runs": _run_rows(schedule, runs),
    }


@dataclass
class _Herd:
    """Tasks that run at the same instants: one schedule, resolved, in one zone."""

    schedule: Schedule
    tasks: list[str] = field(default_factory=list)
    minutes: frozenset[int] = frozenset()  # runs, as minutes since the epoch


@dataclass(frozen=True)
class BusyMinute:
    minute: datetime
    runs: int
    tasks: list[str]  # sorted


@dataclass(frozen=True)
class HerdReport:
    start: datetime
    end: datetime
    tasks: int
    disabled: int
    runs: int
    minutes: int  # minutes with at least one run
    busiest: list[BusyMinute]


def herd_report(tasks: list[TaskDefinition], start: datetime, top: int) -> HerdReport:
    """The ``top`` busiest UTC minutes of the enabled tasks' runs in ``(start, start + week]``,
    busiest first and, among equals, earliest first.

    Tasks whose schedules resolve alike (the same expression, H resolved, in the same zone; any
    zone for a rate) run at the same instants, so each such herd's runs are listed once and
    counted with its size: ten thousand ``* * * * *`` tasks cost one week of runs, not ten
    thousand.
    """
    end = start + HERD_WINDOW
    herds: dict[tuple[str, str], _Herd] = {}
    enabled = [task for task in tasks if task.enabled]
    for task in enabled:
        schedule = task.compiled_schedule()
        zone = "" if schedule.kind == "rate" else schedule.timezone.key
        herd = herds.setdefault((schedule.resolved_expression, zone), _Herd(schedule))
        herd.tasks.append(task.task_id)
    per_minute: Counter[int] = Counter()
    for herd in herds.values():
        herd.minutes = frozenset(
            int(run.timestamp()) // 60 for run in herd.schedule.runs_between(start, end)
        )
        for minute in herd.minutes:
            per_minute[minute] += len(herd.tasks)
    busiest = heapq.nsmallest(top, per_minute.items(), key=lambda item: (-item[1], item[0]))
    return HerdReport(
        start=start,
        end=end,
        tasks=len(enabled),
        disabled=len(tasks) - len(enabled),
        runs=sum(per_minute.values()),
        minutes=len(per_minute),
        busiest=[
            BusyMinute(
                datetime.fromtimestamp(minute * 60, UTC),
                runs,
                sorted(
                    name for herd in herds.values() if minute in herd.minutes for name in herd.tasks
                ),
            )
            for minute, runs in busiest
        ],
    )


def _print_herd(template: Path, after: str | None, top: int, *, as_json: bool) -> None:
    report = herd_report(_valid_tasks(template), _after(after, UTC), top)
    if as_json:
        document = {
            "template": str(template),
            "from": utc_text(report.start),
            "until": utc_text(report.end),
            "tasks": report.tasks,
            "disabled": report.disabled,
            "runs": report.runs,
            "minutes": report.minutes,
            "busiest": [
                {"minute": utc_text(busy.minute), "runs": busy.runs, "tasks": busy.tasks}
                for busy in report.busiest
            ],
        }
        typer.echo(json.dumps(document, indent=2))
        return
    disabled = f" ({report.disabled} disabled, not counted)" if report.disabled else ""
    # Wrapped to the terminal, as the table below is.
    console.print(
        f"{report.runs} runs of {report.tasks} task(s){disabled} from {when(report.start)} to "
        f"{when(report.end)}, in {report.minutes} distinct minute(s).",
        markup=False,
        highlight=False,
        emoji=False,
    )
    if not report.busiest:
        console.print("No runs in that week.", **PLAIN)
        return
    console.print(_herd_table(report.busiest))


def _herd_table(busiest: list[BusyMinute]) -> FittedTable:
    """A minute a row; on a narrow terminal the count joins the minute."""
    wide = Layout([Column("Minute (UTC)"), Column("Runs", justify="right"), Column("Tasks")])
    narrow = Layout([Column("Minute (UTC)"), Column("Tasks")])
    for busy in busiest:
        names = ", ".join(shortened(name, 32) for name in busy.tasks[:HERD_NAMES])
        if len(busy.tasks) > HERD_NAMES:
            names += f" and {len(busy.tasks) - HERD_NAMES} more"
        minute = when(busy.minute)
        wide.add_row(minute, str(busy.runs), names)
        narrow.add_row(f"{minute}\n{busy.runs} runs", names)
    return FittedTable("Busiest minutes", [wide, narrow])
