"""A page of the fleet, as the widget shows it: one row per task, read from the task items.

Every number on a row comes from the task's own item (its counters and duration histogram,
``TaskRecord.stats``), so a page is one scan of the tasks table, however many runs there were.
Only the rows on the page read the ledger, for their latest run and its error: one query each.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from cronfleet.health import Health, TaskStatus, health_of, latest_run, task_status
from cronfleet.store import Store
from cronfleet.store.records import TaskRecord
from cronfleet.widget.request import WidgetRefusal, WidgetRequest

Item = TypeVar("Item")


@dataclass(frozen=True)
class TaskRow:
    status: TaskStatus
    description: str
    tenant: str | None
    tags: Mapping[str, str]
    p95_duration_ms: float | None

    @property
    def task_id(self) -> str:
        return self.status.task_id

    @property
    def can_run(self) -> bool:
        return self.status.health is not Health.REMOVED

    @property
    def can_pause(self) -> bool:
        return self.status.health not in (Health.PAUSED, Health.REMOVED)

    @property
    def can_resume(self) -> bool:
        return self.status.health is Health.PAUSED


@dataclass(frozen=True)
class Pagination:
    total: int  # tasks that pass the filters
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))

    @property
    def first_index(self) -> int:
        return (self.page - 1) * self.page_size

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    def window(self, items: Sequence[Item]) -> Sequence[Item]:
        return items[self.first_index : self.first_index + self.page_size]


@dataclass(frozen=True)
class FleetPage:
    rows: list[TaskRow]
    pagination: Pagination
    fleet_size: int  # every registered task, filters aside
    filters: Mapping[str, str]
    now: datetime
    health_counts: Mapping[Health, int] = field(default_factory=dict)


def matches(task: TaskRecord, request: WidgetRequest) -> bool:
    if request.health is not None and health_of(task) is not request.health:
        return False
    if request.tenant is not None and task.tenant != request.tenant:
        return False
    if request.tag is not None:
        key, has_value, value = request.tag.partition("=")
        tags = task.definition.tags
        if key not in tags or (has_value and tags[key] != value):
            return False
    return True


def paginate(total: int, request: WidgetRequest, *, clamp: bool) -> Pagination:
    """The page asked for; past the last page is refused, or, after an action changed what the
    filters match (``clamp``), the last page instead."""
    pagination = Pagination(total, request.page, request.page_size)
    if request.page <= pagination.pages:
        return pagination
    if clamp:
        return Pagination(total, pagination.pages, request.page_size)
    matching = f"{total} matching task{'' if total == 1 else 's'}"
    raise WidgetRefusal(
        "page",
        f"page {request.page} is past the last page, {pagination.pages} "
        f"({matching}, {request.page_size} a page)",
    )


def fleet_page(
    store: Store, request: WidgetRequest, now: datetime, *, clamp: bool = False
) -> FleetPage:
    tasks = store.list_tasks()  # sorted by task id
    counts = Counter(health_of(task) for task in tasks)
    chosen = [task for task in tasks if matches(task, request)]
    pagination = paginate(len(chosen), request, clamp=clamp)
    rows = [
        TaskRow(
            status=task_status(task, latest_run(store, task.task_id)),
            description=task.definition.description,
            tenant=task.tenant,
            tags=dict(task.definition.tags),
            p95_duration_ms=task.stats.p95_duration_ms,
        )
        for task in pagination.window(chosen)
    ]
    return FleetPage(rows, pagination, len(tasks), request.filters, now, counts)
