"""``cronfleet audit``: the ledger against the schedules.

Every slot a schedule implies must end in exactly one final state, or be in flight. Exits 0 when
clean, 1 when there are findings, 2 for bad input or a ledger that cannot be read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cronfleet_tools.cli.common import (
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
    from cronfleet_tools.audit import AuditReport

AUDIT_WINDOW = timedelta(hours=24)


def _ledger_store(
    tasks_table: str, executions_table: str, endpoint_url: str | None, region: str | None
) -> Store:
    # Deferred: boto3 costs a second of start-up that `next` and `validate` should not pay.
    from cronfleet.store import Store

    return Store.connect(
        tasks_table, executions_table, endpoint_url=endpoint_url, region=region, interactive=True
    )


def _print_audit(report: AuditReport) -> None:
    window = f"({utc_text(report.start)}, {utc_text(report.end)}]"
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
    if tasks_table is not None and executions_table is not None:
        store = _ledger_store(tasks_table, executions_table, endpoint_url, on.region)
        where = tasks_table
    else:
        target = on.resolve()
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
        _print_audit(report)
    if not report.ok:
        raise typer.Exit(code=1)
