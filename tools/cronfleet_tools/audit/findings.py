"""What an audit finds, and how it counts slots: the vocabulary of every report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from cronfleet.store import ExecutionRecord, TaskRecord

# A slot younger than this may still be in its tick (claimed a moment from now): not yet expected.
TICK_GRACE = timedelta(minutes=5)
# In flight this long past the deadline at which the watchdog should have looked: it did not.
STUCK_AFTER = timedelta(hours=1)
# The ledger is read in chunks of this much schedule time: a week of a per-minute task is about
# 10,000 entries, a few megabytes decoded, whatever the length of the window.
LEDGER_CHUNK = timedelta(days=7)
# A task whose ledger is broken throughout would otherwise produce one finding per slot: the
# first ones are kept, the rest only counted.
MAX_FINDINGS_PER_TASK = 1000
MAX_TICK_GAPS = 1000
# Looking back for the last scheduled entry: the window grows by this factor per query, so even
# years of history take a handful of queries.
LOOKBACK_FIRST = timedelta(days=1)
LOOKBACK_GROWTH = 8
LOOKBACK_PAGE = 100
SECOND = timedelta(seconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Ledger(Protocol):
    """What the audit reads: :class:`cronfleet.store.Store` provides it."""

    def list_tasks(self) -> list[TaskRecord]: ...

    def get_task(self, task_id: str) -> TaskRecord | None: ...

    def get_execution(self, task_id: str, slot: str) -> ExecutionRecord | None: ...

    def executions(
        self,
        task_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[ExecutionRecord]: ...


class FindingKind(StrEnum):
    GAP = "gap"
    UNEXPECTED = "unexpected"
    OVERLAPPING = "overlapping"
    DUPLICATE_RUN = "duplicate_run"
    STUCK = "stuck"
    BUSY_WITHOUT_ENTRY = "busy_without_entry"
    WEDGED = "wedged"

    @property
    def informational(self) -> bool:
        return self is FindingKind.STUCK


@dataclass(frozen=True)
class Finding:
    """One breach of the invariant, at one slot or a run of consecutive slots."""

    kind: FindingKind
    task_id: str
    slot: str
    detail: str
    count: int = 1  # slots in the run (gaps and overlaps of consecutive slots are merged)
    last_slot: str | None = None  # the run's last slot, when count > 1

    @property
    def informational(self) -> bool:
        return self.kind.informational

    def __str__(self) -> str:
        where = self.slot if self.last_slot is None else f"{self.slot} .. {self.last_slot}"
        return f"{self.kind.value}: {self.task_id} {where}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "task_id": self.task_id,
            "slot": self.slot,
            "last_slot": self.last_slot,
            "count": self.count,
            "detail": self.detail,
            "informational": self.informational,
        }


@dataclass
class SlotCounts:
    """How one task's expected slots stand: ``expected == final + in_flight + gaps``."""

    expected: int = 0
    final: int = 0
    in_flight: int = 0
    gaps: int = 0
    paused: int = 0  # not expected: the task is paused (see the module's rule)
    disabled: int = 0  # not expected: the task is disabled
    manual: int = 0  # manual runs seen in the window, outside the schedule

    def to_json(self) -> dict[str, int]:
        return {
            "expected": self.expected,
            "final": self.final,
            "in_flight": self.in_flight,
            "gaps": self.gaps,
            "paused": self.paused,
            "disabled": self.disabled,
            "manual": self.manual,
        }
