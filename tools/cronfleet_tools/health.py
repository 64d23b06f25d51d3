"""A task's health, as the CLI shows it: judged by :mod:`cronfleet.health` in the layer, which the
dashboard's fleet widget shares, so the two never disagree about a task."""

from __future__ import annotations

from cronfleet.health import (
    LATEST_LOOKBACK,
    Health,
    TaskStatus,
    fleet_status,
    latest_run,
    task_status,
    time_order,
)

__all__ = [
    "LATEST_LOOKBACK",
    "Health",
    "TaskStatus",
    "fleet_status",
    "latest_run",
    "task_status",
    "time_order",
]
