"""The weekly digest: per task, last week's runs, success rate, p95 and failures.

It reads each task's ledger for the week (one query per task, never a scan of history) and
renders one SNS message: a readable text for email, JSON for every other protocol.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cronfleet.lifecycle.slots import slot_key
from cronfleet.lifecycle.states import RunStatus
from cronfleet.store import ExecutionRecord, Store

WEEK = timedelta(days=7)
FAILURES_LISTED = 5
SUBJECT_LIMIT = 99  # SNS asks for fewer than 100 characters


@dataclass(frozen=True)
class Failure:
    slot: str
    status: str
    error_type: str | None
    error_message: str | None


@dataclass(frozen=True)
class TaskWeek:
    """One task's week. ``runs`` counts slots whose code ran to a final state."""

    task_id: str
    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    timed_out: int = 0
    skipped: int = 0
    missed: int = 0
    p95_duration_ms: int | None = None
    recent_failures: list[Failure] = field(default_factory=list)

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.runs if self.runs else None


def summarize_task(task_id: str, executions: Iterable[ExecutionRecord]) -> TaskWeek:
    counts = dict.fromkeys(RunStatus, 0)
    durations: list[int] = []
    failures: list[Failure] = []
    for execution in executions:
        counts[execution.status] += execution.slot_count
        durations += [a.duration_ms for a in execution.attempts if a.duration_ms is not None]
        if execution.status in (RunStatus.FAILED, RunStatus.TIMED_OUT):
            last = execution.current
            failures.append(
                Failure(
                    slot=execution.slot,
                    status=execution.status.value,
                    error_type=last.error_type if last else None,
                    error_message=(last.error_message or "")[:200] if last else None,
                )
            )
    failed = counts[RunStatus.FAILED] + counts[RunStatus.TIMED_OUT]
    return TaskWeek(
        task_id=task_id,
        runs=counts[RunStatus.SUCCEEDED] + failed,
        succeeded=counts[RunStatus.SUCCEEDED],
        failed=failed,
        timed_out=counts[RunStatus.TIMED_OUT],
        skipped=counts[RunStatus.SKIPPED],
        missed=counts[RunStatus.MISSED],
        p95_duration_ms=_percentile(durations, 0.95),
        recent_failures=failures[-FAILURES_LISTED:],
    )


def _percentile(values: list[int], quantile: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(quantile * len(ordered)) - 1]


def summarize_week(store: Store, end: datetime) -> list[TaskWeek]:
    """Every registered task's week ending at ``end`` (slots in ``[end - 7 days, end)``)."""
    start = end - WEEK
    last = end - timedelta(seconds=1)
    return [
        summarize_task(task.task_id, store.executions(task.task_id, start, last))
        for task in store.list_tasks()
        if not task.deleted
    ]


def render_digest(weeks: list[TaskWeek], start: datetime, end: datetime) -> dict[str, Any]:
    """The SNS publish request (without TopicArn): email text, JSON for other protocols."""
    failing = sum(1 for week in weeks if week.failed)
    period = f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"
    subject = f"[cronfleet] Weekly digest {period}: {len(weeks)} tasks, {failing} with failures"
    lines = [f"cronfleet weekly digest, {slot_key(start)} to {slot_key(end)}", ""]
    for week in weeks:
        rate = "n/a" if week.success_rate is None else f"{week.success_rate:.1%}"
        p95 = "n/a" if week.p95_duration_ms is None else f"{week.p95_duration_ms / 1000:.1f}s"
        lines.append(
            f"{week.task_id}: {week.runs} runs, {rate} succeeded, p95 {p95}, "
            f"{week.failed} failed ({week.timed_out} timed out), "
            f"{week.skipped} skipped, {week.missed} missed"
        )
        lines += [
            f"    {f.slot} {f.status} {f.error_type or ''}: {f.error_message or ''}".rstrip()
            for f in week.recent_failures
        ]
    document = {
        "kind": "weekly_digest",
        "start": slot_key(start),
        "end": slot_key(end),
        "tasks": [{**asdict(week), "success_rate": week.success_rate} for week in weeks],
    }
    return {
        "Subject": subject[:SUBJECT_LIMIT],
        "MessageStructure": "json",
        "Message": json.dumps({"default": json.dumps(document), "email": "\n".join(lines) + "\n"}),
        "MessageAttributes": {
            "event": {"DataType": "String", "StringValue": "weekly_digest"},
            "severity": {"DataType": "String", "StringValue": "info"},
        },
    }
