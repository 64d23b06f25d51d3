"""How the CLI shows tasks and runs: rich tables for people, plain dicts for ``--json``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from cronfleet.lifecycle.slots import MANUAL_MARK, parse_slot, slot_key
from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet.store.records import ExecutionRecord
from cronfleet_tools.health import Health, TaskStatus

HEALTH_STYLES = {
    Health.HEALTHY: "green",
    Health.NEW: "cyan",
    Health.DEGRADED: "yellow",
    Health.FAILING: "bold red",
    Health.PAUSED: "magenta",
    Health.DISABLED: "dim",
    Health.REMOVED: "dim",
}
STATUS_STYLES = {
    RunStatus.SUCCEEDED: "green",
    RunStatus.FAILED: "red",
    RunStatus.TIMED_OUT: "red",
    RunStatus.RUNNING: "cyan",
    RunStatus.PENDING: "cyan",
    RunStatus.RETRY_WAIT: "yellow",
    RunStatus.SKIPPED: "dim",
    RunStatus.MISSED: "yellow",
}


def when(moment: datetime | None, now: datetime | None = None) -> str:
    """``2026-11-22 09:00Z (in 3h 5m)``: the UTC time, and how far it is from now."""
    if moment is None:
        return "-"
    text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")
    if now is None:
        return text
    seconds = int((moment - now).total_seconds())
    span = _span(abs(seconds))
    return f"{text} ({'in ' + span if seconds >= 0 else span + ' ago'})"


def last_run(slot: str | None, trigger: Trigger | None, now: datetime) -> str:
    """``3m ago (manual)``: how long ago the last run's slot was, and how it was started."""
    if slot is None:
        return "-"
    moment = parse_slot(slot.split(MANUAL_MARK, 1)[0])
    seconds = max(int((now - moment).total_seconds()), 0)
    text = f"{_span(seconds)} ago"
    return f"{text} ({trigger.value})" if trigger is Trigger.MANUAL else text


def _span(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


def duration(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "-"
    return f"{milliseconds} ms" if milliseconds < 1000 else f"{milliseconds / 1000:.1f} s"


def status_table(statuses: list[TaskStatus], now: datetime, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    for column in ("Task", "Schedule", "Next run", "Last run", "Result", "Duration", "Health"):
        table.add_column(column, overflow="fold", min_width=min(len(column), 8))
    for status in statuses:
        result = Text("-")
        if status.last_status is not None:
            result = Text(status.last_status.value, STATUS_STYLES.get(status.last_status, ""))
        health = status.health.value
        if status.health in (Health.DEGRADED, Health.FAILING):
            health += f" ({status.consecutive_failures} in a row)"
        schedule = status.schedule_text  # describe() already names a zone other than UTC
        table.add_row(
            status.task_id,
            schedule,
            when(status.next_run, now),
            last_run(status.last_slot, status.last_trigger, now),
            result,
            duration(status.last_duration_ms),
            Text(health, HEALTH_STYLES[status.health]),
        )
    return table


def next_attempt_at(execution: ExecutionRecord) -> datetime | None:
    """When the next attempt of a run waiting to retry is due; None for any other run."""
    return execution.deadline_at if execution.status is RunStatus.RETRY_WAIT else None


def execution_json(execution: ExecutionRecord) -> dict[str, Any]:
    due = next_attempt_at(execution)
    return {
        "slot": execution.slot,
        "status": execution.status.value,
        "next_attempt_at": slot_key(due) if due else None,
        "trigger": execution.trigger.value,
        "attempt": execution.attempt,
        "slot_count": execution.slot_count,
        "range_until": execution.range_until,
        "skip_reason": execution.skip_reason,
        "attempts": [
            {
                "attempt": attempt.attempt,
                "status": attempt.status.value,
                "started_at": attempt.started_at,
                "ended_at": attempt.ended_at,
                "duration_ms": attempt.duration_ms,
                "request_id": attempt.request_id,  # the Lambda request: its logs
                "error_type": attempt.error_type,
                "error_message": attempt.error_message,
                "result": attempt.result,
            }
            for attempt in execution.attempts
        ],
    }


def history_table(task_id: str, executions: list[ExecutionRecord]) -> Table:
    table = Table(title=f"Runs of {task_id}, newest first", title_justify="left")
    for column in ("Slot", "Trigger", "Status", "Attempt", "Started", "Duration", "Error"):
        table.add_column(column, overflow="fold", min_width=min(len(column), 8))
    for execution in executions:
        slot = execution.slot
        if execution.range_until:
            slot += f" .. {execution.range_until} ({execution.slot_count} slots)"
        attempts = execution.attempts or ()
        if not attempts:
            table.add_row(
                slot,
                execution.trigger.value,
                Text(execution.status.value, STATUS_STYLES.get(execution.status, "")),
                "-",
                "-",
                "-",
                execution.skip_reason or "",
            )
        for index, attempt in enumerate(attempts):
            error = ""
            if attempt.error_type:
                error = f"{attempt.error_type}: {attempt.error_message or ''}"
            table.add_row(
                slot if index == 0 else "",
                execution.trigger.value if index == 0 else "",
                Text(attempt.status.value, STATUS_STYLES.get(attempt.status, "")),
                str(attempt.attempt),
                attempt.started_at or "-",
                duration(attempt.duration_ms),
                error,
            )
        due = next_attempt_at(execution)
        if due is not None:
            table.add_row(
                "",
                "",
                Text("next", STATUS_STYLES[RunStatus.RETRY_WAIT]),
                str(execution.attempt + 1),
                f"due {when(due)}",
                "-",
                "",
            )
    return table
