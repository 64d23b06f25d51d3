"""The comparison: one merge-walk of two sorted streams, the schedule's slots and the ledger.

Memory stays bounded by one chunk of the ledger, however long the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cronfleet.lifecycle.slots import parse_slot, slot_key
from cronfleet.lifecycle.states import (
    FINAL_STATUSES,
    IN_FLIGHT_STATUSES,
    LAMBDA_MAX_TIMEOUT_SECONDS,
    RunStatus,
    Trigger,
)
from cronfleet.store import ExecutionRecord
from cronfleet_tools.audit.findings import STUCK_AFTER, Finding, FindingKind, SlotCounts

# --- the comparison: a merge-walk of two sorted streams ----------------------------------------


def reconcile(
    expected_slots: Iterable[datetime | str],
    items: Iterable[ExecutionRecord],
    *,
    task_id: str = "",
    now: datetime | None = None,
    carried: ExecutionRecord | None = None,
    counts: SlotCounts | None = None,
) -> list[Finding]:
    """Compare expected slots with ledger entries; both must be sorted by slot.

    ``carried`` is the last entry before the window, which may be a range (MISSED, or SKIPPED
    while paused) reaching into it. Any entry with ``range_until`` covers every expected slot
    from its ``slot`` up to, not including, ``range_until``. ``now`` enables the ``stuck``
    check. ``counts``, if given, is filled in as well.
    """
    return list(
        iter_findings(
            expected_slots, items, task_id=task_id, now=now, carried=carried, counts=counts
        )
    )


def iter_findings(
    expected_slots: Iterable[datetime | str],
    items: Iterable[ExecutionRecord],
    *,
    task_id: str = "",
    now: datetime | None = None,
    carried: ExecutionRecord | None = None,
    counts: SlotCounts | None = None,
) -> Iterator[Finding]:
    """:func:`reconcile` as a stream, in slot order: nothing is held but the current run."""
    walk = _Walk(task_id, now, counts if counts is not None else SlotCounts())
    yield from walk.run(expected_slots, items, carried)


def ledger_key(slot: datetime) -> str:
    """``slot_key`` for a schedule's runs, at twice its speed: a year of minutes is 525,600."""
    return slot.astimezone(UTC).isoformat(timespec="seconds")[:19] + "Z"


def is_manual(item: ExecutionRecord) -> bool:
    return item.trigger is Trigger.MANUAL or "#" in item.slot


def entry_covers(item: ExecutionRecord, key: str) -> bool:
    if item.range_until is None:
        return item.slot == key
    return item.slot <= key < item.range_until


def _describe(item: ExecutionRecord) -> str:
    if item.range_until is not None:
        return f"{item.status.value} range {item.slot} to {item.range_until}"
    return f"{item.status.value} at {item.slot}"


@dataclass
class _Run:
    """Consecutive slots with the same finding, reported once."""

    kind: FindingKind
    cause: tuple[str, ...]  # what the slots share: the entries that overlap there
    first: str
    last: str
    detail: str
    count: int = 1


class _Walk:
    def __init__(self, task_id: str, now: datetime | None, counts: SlotCounts) -> None:
        self.task_id = task_id
        self.now = now
        self.counts = counts
        self.run_open: _Run | None = None

    def run(
        self,
        expected_slots: Iterable[datetime | str],
        items: Iterable[ExecutionRecord],
        carried: ExecutionRecord | None,
    ) -> Iterator[Finding]:
        entries = (item for item in items if not self._skip_manual(item))
        pending = next(entries, None)
        # Ranges that began earlier and may still cover the coming slots (usually none).
        ranges: list[ExecutionRecord] = []
        if carried is not None and carried.range_until is not None and not is_manual(carried):
            ranges.append(carried)
        for slot in expected_slots:
            key = slot if isinstance(slot, str) else ledger_key(slot)
            # Entries before this slot sit where the schedule has no slot.
            while pending is not None and pending.slot < key:
                yield from self._stray(pending)
                if pending.range_until is not None:
                    ranges.append(pending)
                pending = next(entries, None)
            ranges = [entry for entry in ranges if entry.range_until and entry.range_until > key]
            own = None
            if pending is not None and pending.slot == key:
                own, pending = pending, next(entries, None)
                if own.range_until is not None:
                    ranges.append(own)
            covering = [entry for entry in ranges if entry_covers(entry, key)]
            if own is not None and own.range_until is None:
                covering.append(own)
            yield from self._settle(key, covering)
            if own is not None:
                yield from self._check_entry(own)
        yield from self._flush()
        while pending is not None:
            yield from self._stray(pending)
            pending = next(entries, None)

    def _stray(self, entry: ExecutionRecord) -> Iterator[Finding]:
        """An entry where the schedule has no slot."""
        yield from self._flush()
        yield self._finding(
            FindingKind.UNEXPECTED,
            entry.slot,
            f"{_describe(entry)}: not a slot of the task's schedule",
        )
        yield from self._check_entry(entry)

    def _skip_manual(self, item: ExecutionRecord) -> bool:
        if is_manual(item):
            self.counts.manual += 1
            return True
        return False

    def _settle(self, key: str, covering: list[ExecutionRecord]) -> Iterator[Finding]:
        """Count one expected slot, and continue or close the current run of findings."""
        self.counts.expected += 1
        if not covering:
            self.counts.gaps += 1
            yield from self._extend(FindingKind.GAP, (), key, "no ledger entry")
            return
        if covering[0].status in FINAL_STATUSES:
            self.counts.final += 1
        else:
            self.counts.in_flight += 1
        if len(covering) == 1:
            yield from self._flush()
            return
        cause = tuple(entry.slot for entry in covering)
        detail = f"covered by {len(covering)} ledger entries: " + ", ".join(
            _describe(entry) for entry in covering
        )
        yield from self._extend(FindingKind.OVERLAPPING, cause, key, detail)

    def _extend(
        self, kind: FindingKind, cause: tuple[str, ...], key: str, detail: str
    ) -> Iterator[Finding]:
        current = self.run_open
        if current is not None and current.kind is kind and current.cause == cause:
            current.last, current.count = key, current.count + 1
            return
        yield from self._flush()
        self.run_open = _Run(kind, cause, key, key, detail)

    def _flush(self) -> Iterator[Finding]:
        current, self.run_open = self.run_open, None
        if current is None:
            return
        detail = current.detail
        if current.count > 1:
            detail += f" ({current.count} consecutive slots)"
        yield Finding(
            current.kind,
            self.task_id,
            current.first,
            detail,
            count=current.count,
            last_slot=current.last if current.count > 1 else None,
        )

    def _check_entry(self, entry: ExecutionRecord) -> Iterator[Finding]:
        """What is wrong with an entry on its own, wherever it sits."""
        succeeded = [a.attempt for a in entry.attempts if a.status is RunStatus.SUCCEEDED]
        if len(succeeded) > 1:
            yield from self._flush()
            numbers = ", ".join(map(str, succeeded))
            yield self._finding(
                FindingKind.DUPLICATE_RUN,
                entry.slot,
                f"attempts {numbers} all SUCCEEDED: the code ran more than once for this slot",
            )
        if self.now is None or entry.status not in IN_FLIGHT_STATUSES:
            return
        deadline = entry.deadline_at or _estimated_deadline(entry)
        if deadline is not None and self.now - deadline > STUCK_AFTER:
            yield from self._flush()
            hours = (self.now - deadline) / timedelta(hours=1)
            yield self._finding(
                FindingKind.STUCK,
                entry.slot,
                f"{entry.status.value} (attempt {entry.attempt}) {hours:.1f} h past its "
                f"deadline {slot_key(deadline)}: the watchdog has not settled it",
            )

    def _finding(self, kind: FindingKind, slot: str, detail: str) -> Finding:
        return Finding(kind, self.task_id, slot, detail)


def _estimated_deadline(entry: ExecutionRecord) -> datetime | None:
    try:
        slot = parse_slot(entry.slot)
    except ValueError:
        return None
    return slot + timedelta(seconds=entry.timeout_seconds or LAMBDA_MAX_TIMEOUT_SECONDS)
