"""How the CLI shows tasks and runs: tables for people, plain dicts for ``--json``.

The tables are :class:`~cronfleet_tools.tables.FittedTable`: each fits the terminal it is
printed on without breaking a word, with fewer, fuller columns on a narrow one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from cronfleet.lifecycle.slots import MANUAL_MARK, parse_slot, slot_key
from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet.store.records import AttemptRecord, ExecutionRecord
from cronfleet_tools.health import Health, TaskStatus, time_order
from cronfleet_tools.tables import Column, FittedTable, Layout, shortened

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


def parse_iso(text: str | None) -> datetime | None:
    """A time as the ledger writes it (``2026-11-02T09:00:01.120Z``), or None."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def attempt_duration_ms(attempt: AttemptRecord) -> int | None:
    """How long the attempt ran: as the wrapper measured it, else from its start to its end
    (an attempt the recorder or the watchdog concluded, a timeout say)."""
    if attempt.duration_ms is not None:
        return attempt.duration_ms
    started, ended = parse_iso(attempt.started_at), parse_iso(attempt.ended_at)
    if started is None or ended is None:
        return None
    return max(round((ended - started).total_seconds() * 1000), 0)


def status_table(
    statuses: list[TaskStatus], now: datetime, title: str | None = None
) -> FittedTable:
    """A task a line on a wide terminal; on a narrower one the last run's result joins its
    age, and on the narrowest the schedule gives way."""
    wide = Layout(
        [
            Column(name)
            for name in ("Task", "Schedule", "Next run", "Last run", "Result", "Duration", "Health")
        ]
    )
    joined = Layout(
        [Column(name) for name in ("Task", "Schedule", "Next run", "Last run", "Health")]
    )
    narrow = Layout([Column(name) for name in ("Task", "Next run", "Last run", "Health")])
    for status in statuses:
        result = Text("-")
        if status.last_status is not None:
            result = Text(status.last_status.value, STATUS_STYLES.get(status.last_status, ""))
        health_text = status.health.value
        if status.health in (Health.DEGRADED, Health.FAILING):
            health_text += f" ({status.consecutive_failures} in a row)"
        health = Text(health_text, HEALTH_STYLES[status.health])
        schedule = status.schedule_text  # describe() already names a zone other than UTC
        next_run = when(status.next_run, now)
        age = last_run(status.last_slot, status.last_trigger, now)
        took = duration(status.last_duration_ms)
        wide.add_row(status.task_id, schedule, next_run, age, result, took, health)
        outcome = Text(age)
        if status.last_status is not None:
            outcome.append("\n").append_text(result).append(f"\n{took}")
        joined.add_row(status.task_id, schedule, next_run, outcome, health)
        narrow.add_row(status.task_id, next_run, outcome.copy(), health)
    return FittedTable(title, [wide, joined, narrow])


def next_attempt_at(execution: ExecutionRecord) -> datetime | None:
    """When the next attempt of a run waiting to retry is due; None for any other run."""
    return execution.deadline_at if execution.status is RunStatus.RETRY_WAIT else None


def run_payload(execution: ExecutionRecord, task_payload: Mapping[str, Any] | None) -> Any:
    """What the run was given: a manual run's own payload, else the task's."""
    return execution.payload if execution.payload is not None else task_payload


def execution_json(
    execution: ExecutionRecord, task_payload: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A run for ``--json``. ``task_payload``: the task's own, which every run without a payload
    of its own was given."""
    due = next_attempt_at(execution)
    last = execution.current
    failed = last is not None and last.error_type is not None
    return {
        "slot": execution.slot,
        "status": execution.status.value,
        "next_attempt_at": slot_key(due) if due else None,
        "trigger": execution.trigger.value,
        "attempt": execution.attempt,
        "slot_count": execution.slot_count,
        "range_until": execution.range_until,
        "skip_reason": execution.skip_reason,
        "payload": run_payload(execution, task_payload),
        "result": last.result if last is not None and not failed else None,
        "error": (
            {"type": last.error_type, "message": last.error_message}
            if last is not None and failed
            else None
        ),
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


# Data (payloads, results, errors) keeps its words to this length in a table, and its whole to
# OUTCOME_LIMIT characters: `--json` has it all. Slots and request ids are never cut.
DATA_WORD = 24
OUTCOME_LIMIT = 300


def compact_json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def outcome_text(attempt: AttemptRecord) -> Text:
    """An attempt's error, or its result, for a table cell."""
    if attempt.error_type:
        error = f"{attempt.error_type}: {attempt.error_message or ''}".strip()
        return Text(shortened(error, DATA_WORD, limit=OUTCOME_LIMIT), "red")
    if attempt.result is not None:
        return Text(shortened(compact_json(attempt.result), DATA_WORD, limit=OUTCOME_LIMIT))
    return Text("")


def _started(attempt: AttemptRecord) -> str:
    started = parse_iso(attempt.started_at)
    return started.strftime("%Y-%m-%d %H:%M:%SZ") if started else "-"


def history_table(
    task_id: str,
    executions: list[ExecutionRecord],
    task_payload: Mapping[str, Any] | None = None,
) -> FittedTable:
    """A task's runs in time order, a row per attempt: its status, start, duration, Lambda
    request and result or error, under the run's slot, trigger and payload."""
    wide = Layout(
        [
            Column(name)
            for name in (
                "Slot",
                "Trigger",
                "Attempt",
                "Status",
                "Started",
                "Duration",
                "Request",
                "Payload",
                "Result or error",
            )
        ]
    )
    medium = Layout(
        [
            Column(name)
            for name in (
                "Run",
                "Attempt",
                "Status",
                "Started",
                "Duration",
                "Request",
                "Result or error",
            )
        ]
    )
    stacked = Layout([Column("Run"), Column("Attempts")])
    for execution in sorted(executions, key=time_order):
        slot = execution.slot
        if execution.range_until:
            slot += f" .. {execution.range_until} ({execution.slot_count} slots)"
        payload = run_payload(execution, task_payload)
        payload_text = shortened(compact_json(payload), DATA_WORD, limit=OUTCOME_LIMIT)
        # On a narrow terminal a manual slot's id goes under its time, the trigger and the
        # payload under both.
        run = Text(slot.replace(MANUAL_MARK, f"\n{MANUAL_MARK}"))
        run.append(f"\n{execution.trigger.value}", "dim")
        if payload is not None:
            run.append(f"\npayload {payload_text}")
        rows: list[tuple[str, Text, str, str, str, Text]] = []
        for attempt in execution.attempts:
            rows.append(
                (
                    str(attempt.attempt),
                    Text(attempt.status.value, STATUS_STYLES.get(attempt.status, "")),
                    _started(attempt),
                    duration(attempt_duration_ms(attempt)),
                    attempt.request_id or "-",
                    outcome_text(attempt),
                )
            )
        due = next_attempt_at(execution)
        if due is not None:
            rows.append(
                (
                    str(execution.attempt + 1),
                    Text("next", STATUS_STYLES[RunStatus.RETRY_WAIT]),
                    f"due {when(due)}",
                    "-",
                    "-",
                    Text(""),
                )
            )
        if not rows:  # a slot that ran nothing: skipped, missed
            status = Text(execution.status.value, STATUS_STYLES.get(execution.status, ""))
            rows.append(("-", status, "-", "-", "-", Text(execution.skip_reason or "")))
        for index, (number, status, started, took, request, outcome) in enumerate(rows):
            first, last = index == 0, index == len(rows) - 1
            wide.add_row(
                slot if first else "",
                execution.trigger.value if first else "",
                number,
                status,
                started,
                took,
                request,
                payload_text if first and payload is not None else "",
                outcome,
                end_section=last,
            )
            medium.add_row(
                run if first else "",
                number,
                status,
                started,
                took,
                request,
                outcome,
                end_section=last,
            )
            attempt_cell = Text(f"{number} ").append_text(status)
            if took != "-":
                attempt_cell.append(f", {took}")
            if started != "-":
                label = "" if number == str(execution.attempt + 1) and due else "started "
                attempt_cell.append(f"\n{label}{started}", "dim")
            if request != "-":
                attempt_cell.append(f"\nrequest {request}", "dim")
            if outcome.plain:
                attempt_cell.append("\n").append_text(outcome)
            stacked.add_row(run if first else "", attempt_cell, end_section=last)
    runs = f"{len(executions)} run{'s' if len(executions) != 1 else ''}"
    return FittedTable(f"Last {runs} of {task_id}, in time order", [wide, medium, stacked])
