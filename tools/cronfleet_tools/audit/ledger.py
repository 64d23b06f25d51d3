"""Reading a task's ledger for an audit: in chunks, and the last scheduled entry before a time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from cronfleet.lifecycle.slots import parse_slot
from cronfleet.store import ExecutionRecord
from cronfleet_tools.audit.findings import (
    EPOCH,
    LEDGER_CHUNK,
    LOOKBACK_FIRST,
    LOOKBACK_GROWTH,
    LOOKBACK_PAGE,
    SECOND,
    Ledger,
)
from cronfleet_tools.audit.reconcile import is_manual

# --- reading the ledger ------------------------------------------------------------------------


def _floor_second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def ledger_entries(
    ledger: Ledger,
    task_id: str,
    after: datetime,
    until: datetime,
    *,
    chunk: timedelta = LEDGER_CHUNK,
) -> Iterator[ExecutionRecord]:
    """The entries of one task with slots in ``(after, until]``, in slot order, chunk by chunk."""
    # Slots are whole seconds (whole minutes, in fact), so (after, until] is the inclusive key
    # range [floor(after) + 1 s, floor(until)].
    chunk_start = _floor_second(after) + SECOND
    last = _floor_second(until)
    while chunk_start <= last:
        chunk_end = min(last, chunk_start + chunk - SECOND)
        yield from ledger.executions(task_id, chunk_start, chunk_end)
        chunk_start = chunk_end + SECOND


def latest_scheduled_entry(
    ledger: Ledger, task_id: str, until: datetime, *, since: datetime = EPOCH
) -> ExecutionRecord | None:
    """The newest entry that is not a manual run, with its slot in ``[since, until]``.

    It looks back a day first, then ever further, so a busy ledger costs one short query and an
    empty one a handful.
    """
    upper, span = _floor_second(until), LOOKBACK_FIRST
    since = _floor_second(since)
    while upper >= since:
        lower = max(since, upper - span)
        records = ledger.executions(task_id, lower, upper, newest_first=True, limit=LOOKBACK_PAGE)
        for record in records:
            if not is_manual(record):
                return record
        if len(records) == LOOKBACK_PAGE:
            # A full page of manual runs: carry on below the oldest of them. A manual slot
            # ``T#manual-...`` sorts after ``T``, so an upper bound of T excludes it.
            try:
                oldest = parse_slot(records[-1].slot.partition("#")[0])
            except ValueError:
                return None
            if oldest >= upper:
                return None
            upper = oldest
            continue
        upper, span = lower - SECOND, span * LOOKBACK_GROWTH
    return None
