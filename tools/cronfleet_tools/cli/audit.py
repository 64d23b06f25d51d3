"""``cronfleet audit``: the ledger against the schedules.

Every slot a schedule implies must end in exactly one final state, or be in flight. Exits 0 when
clean, 1 when there are findings, 2 for bad input or a ledger that cannot be read.

The header says what was checked, which is not always the window asked for: each task's slots
start at its registration and end at its removal, slots of the last few minutes are not yet
expected, and manual runs are counted up to now (the rules are in :mod:`cronfleet_tools.audit`).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cronfleet_tools.cli.common import (
    PLAIN,
    JsonOption,
    StackChoice,
    console,
    error_console,
    on_a_stack,
    parse_optional_time,
    utc_text,
)

if TYPE_CHECKING:
    from cronfleet.store import Store
    from cronfleet_tools.audit import AuditReport, TaskAudit

AUDIT_WINDOW = timedelta(hours=24)


def _ledger_store(
    tasks_table: str, executions_table: str, endpoint_url: str | None, region: str | None
) -> Store:
    # Deferred: boto3 costs a second of start-up that `next` and `validate` should not pay.
    from cronfleet.store import Store

    return Store.connect(
        tasks_table, executions_table, endpoint_url=endpoint_url, region=region, interactive=True
    )


def _window(after: datetime, until: datetime) -> str:
    return f"({utc_text(after)}, {utc_text(until)}]"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def audit_header(report: AuditReport, where: str) -> list[str]:
    """The window asked for, then what was checked in it: the slots and the manual runs, and
    each rule that cut the window (see :mod:`cronfleet_tools.audit`)."""
    from cronfleet_tools.audit import TICK_GRACE

    scope = report.scope
    slots = _count(scope.slots_checked, "scheduled slot")
    if scope.not_expected:
        slots += f" (and {scope.not_expected:,} of paused or disabled tasks, not expected)"
    manual = _count(scope.manual_runs, "manual run")
    if scope.slots_from is None or scope.slots_to is None:
        checked = f"Checked: no scheduled slots, {manual}"
    else:
        checked = f"Checked {_window(scope.slots_from, scope.slots_to)}: {slots}, {manual}"
    lines = [f"Ledger audit of {where}", f"Asked for {_window(report.start, report.end)}", checked]
    grace = f"{int(TICK_GRACE / timedelta(minutes=1))} minutes"
    if scope.settle_cut < report.end:
        lines.append(
            f"Slots after {utc_text(scope.settle_cut)} ({grace} before now) are not checked "
            f"yet: their tick may still be under way. Manual runs are counted up to "
            f"{utc_text(scope.manual_to)}."
        )
    # One line per reason, naming every task it applies to: a fresh stack's tasks share one.
    tasks_by_note: dict[str, list[str]] = {}
    for task in report.tasks:
        note = _task_note(task, report, grace)
        if note is not None:
            tasks_by_note.setdefault(note, []).append(task.task_id)
    lines += [f"{', '.join(tasks)}: {note}." for note, tasks in tasks_by_note.items()]
    return lines


def _task_note(task: TaskAudit, report: AuditReport, grace: str) -> str | None:
    """Why a task's slots were checked over less than the window, if they were."""
    registered, removed = task.registered_at, task.removed_at
    if task.audited_from is None:
        if removed is not None and removed <= report.start:
            reason = f"removed at {utc_text(removed)}, before the window"
        elif registered is not None and registered >= report.end:
            reason = f"registered at {utc_text(registered)}, after the window"
        elif registered is not None:
            reason = f"registered at {utc_text(registered)}, less than {grace} before now"
        else:
            return None  # the window is all too recent: the line above says so for every task
        return f"no slot checked: {reason}"
    cuts = []
    if registered is not None:
        cuts.append(f"from its registration at {utc_text(registered)}")
    if removed is not None and removed <= min(report.end, report.scope.settle_cut):
        cuts.append(f"up to its removal at {utc_text(removed)}")
    return f"slots checked only {' and '.join(cuts)}" if cuts else None


def _print_audit(report: AuditReport, where: str) -> None:
    for line in audit_header(report, where):
        console.print(line, **{**PLAIN, "soft_wrap": False})  # wrapped to the terminal
    table = Table()
    table.add_column("Task", no_wrap=True)
    table.add_column("State", no_wrap=True)
    columns = ["expected", "final", "in_flight", "gaps"]
    # Only when some task has them: slots of paused or disabled tasks are not expected, and
    # manual runs are outside the schedule.
    columns += [name for name in ("paused", "disabled", "manual") if getattr(report.counts, name)]
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


@on_a_stack
def audit_ledger(
    on: StackChoice,
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
) -> None:
    """Check the ledger: every slot ends in exactly one final state, or is in flight.

    Exits 0 when clean, 1 when there are findings, 2 for bad input.
    """
    end = parse_optional_time(until, "--until") or datetime.now(UTC)
    start = parse_optional_time(since, "--since") or end - AUDIT_WINDOW
    if start >= end:
        raise typer.BadParameter(
            f"{utc_text(start)} is not before --until ({utc_text(end)})", param_hint="--since"
        )
    from botocore.exceptions import BotoCoreError, ClientError

    from cronfleet.store import StoreError, TaskNotFound
    from cronfleet_tools.audit import audit

    if (tasks_table is None) != (executions_table is None):
        raise typer.BadParameter(
            "--tasks-table and --executions-table go together", param_hint="--tasks-table"
        )
    with ExitStack() as held:
        if tasks_table is not None and executions_table is not None:
            store = _ledger_store(tasks_table, executions_table, endpoint_url, on.region)
            where = f"table {tasks_table}"
        else:
            target = held.enter_context(on.reading("audit"))
            store, where = target.store, target.description
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
        _print_audit(report, where)
    if not report.ok:
        raise typer.Exit(code=1)
