"""A task's health at a glance: what `cronfleet status`, the local runner's table and the
dashboard's fleet widget show.

Health is read from the task item (one ``GetItem``'s worth: counters, pause, next run) and the
newest ledger entries, never from a scan of the history. It lives in the layer because the fleet
widget, a function of the stack, judges health exactly as the CLI does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cronfleet.lifecycle.slots import MANUAL_MARK, slot_key
from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet.store import Store
from cronfleet.store.records import ExecutionRecord, TaskRecord


class Health(StrEnum):
    NEW = "new"  # registered, never finished a run
    HEALTHY = "healthy"  # the last finished run succeeded
    DEGRADED = "degraded"  # failing, but fewer times in a row than the alert threshold
    FAILING = "failing"  # as many failures in a row as the alert threshold, or more
    PAUSED = "paused"
    DISABLED = "disabled"  # Enabled: false in the template
    REMOVED = "removed"  # gone from the template; history kept


@dataclass(frozen=True)
class TaskStatus:
    task_id: str
    schedule: str
    schedule_text: str  # the schedule in words
    timezone: str
    health: Health
    consecutive_failures: int
    next_run: datetime | None
    last_slot: str | None
    last_trigger: Trigger | None
    last_status: RunStatus | None
    last_duration_ms: int | None
    last_error: str | None
    runs: int
    success_rate: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task_id,
            "schedule": self.schedule,
            "schedule_text": self.schedule_text,
            "timezone": self.timezone,
            "health": self.health.value,
            "consecutive_failures": self.consecutive_failures,
            "next_run": slot_key(self.next_run) if self.next_run else None,
            "last_slot": self.last_slot,
            "last_trigger": self.last_trigger.value if self.last_trigger else None,
            "last_status": self.last_status.value if self.last_status else None,
            "last_duration_ms": self.last_duration_ms,
            "last_error": self.last_error,
            "runs": self.runs,
            "success_rate": self.success_rate,
        }


# A task's newest entries read to find its latest run: manual runs started within one second
# share the second in their slots, after which their random ids sort them anyhow.
LATEST_LOOKBACK = 5


def time_order(execution: ExecutionRecord) -> tuple[str, str, str]:
    """Runs in the order they happened: by their slot's time, and manual runs of one second by
    when they were started."""
    first = execution.attempts[0].dispatched_at if execution.attempts else None
    return execution.slot.split(MANUAL_MARK, 1)[0], first or "", execution.slot


def latest_run(store: Store, task_id: str) -> ExecutionRecord | None:
    newest = store.executions(task_id, newest_first=True, limit=LATEST_LOOKBACK)
    return max(newest, key=time_order) if newest else None


def task_status(task: TaskRecord, latest: ExecutionRecord | None) -> TaskStatus:
    definition = task.definition
    stats = task.stats
    attempt = latest.current if latest is not None else None
    error = None
    if attempt is not None and attempt.error_type:
        error = f"{attempt.error_type}: {attempt.error_message or ''}".strip()
    return TaskStatus(
        task_id=task.task_id,
        schedule=definition.schedule,
        schedule_text=definition.compiled_schedule().describe(),
        timezone=definition.timezone,
        health=health_of(task),
        consecutive_failures=stats.consecutive_failures,
        next_run=None if task.paused or task.deleted else task.next_run,
        last_slot=latest.slot if latest is not None else None,
        last_trigger=latest.trigger if latest is not None else None,
        last_status=latest.status if latest is not None else None,
        last_duration_ms=attempt.duration_ms if attempt is not None else None,
        last_error=error,
        runs=stats.runs,
        success_rate=stats.success_rate,
    )


def health_of(task: TaskRecord) -> Health:
    """The task's health from its item alone (its counters, pause and definition)."""
    if task.deleted:
        return Health.REMOVED
    if task.paused:
        return Health.PAUSED
    if not task.definition.enabled:
        return Health.DISABLED
    stats = task.stats
    if stats.consecutive_failures >= task.definition.alerts.after_consecutive_failures:
        return Health.FAILING
    if stats.consecutive_failures:
        return Health.DEGRADED
    return Health.HEALTHY if stats.succeeded else Health.NEW


def fleet_status(
    store: Store, *, on_task: Callable[[TaskRecord], None] | None = None
) -> list[TaskStatus]:
    """Every registered task's status: its item, and its latest run (one query each).

    ``on_task`` is called after each task, for a progress bar over a large fleet.
    """
    statuses = []
    for task in sorted(store.list_tasks(), key=lambda task: task.task_id):
        statuses.append(task_status(task, latest_run(store, task.task_id)))
        if on_task is not None:
            on_task(task)
    return statuses
