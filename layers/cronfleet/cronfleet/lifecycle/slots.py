"""Slots: the scheduled times a task runs at, as the ledger keys and counts them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

# Slots are written as ISO-8601 UTC with a Z, so that they sort chronologically as strings.
SLOT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_SLOT_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def slot_key(slot: datetime) -> str:
    # isoformat, not strftime(SLOT_FORMAT): the same text at a third of the cost, and a tick
    # formats several slot keys for every task it claims. Seconds are truncated, as %S does.
    return slot.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


MANUAL_MARK = "#manual-"


def manual_slot(now: datetime) -> str:
    """The ledger key of a run outside the schedule: its own, sorting just after ``now``'s."""
    return f"{slot_key(now)}{MANUAL_MARK}{uuid.uuid4().hex[:8]}"


def parse_slot(text: str) -> datetime:
    if _SLOT_SHAPE.fullmatch(text):
        # The exact shape slot_key writes: fromisoformat reads it many times faster than
        # strptime. Anything else goes through strptime, which says what is wrong with it.
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    return datetime.strptime(text, SLOT_FORMAT).replace(tzinfo=UTC)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# Counting the slots of a long range is bounded; past this the count is left unknown.
MAX_SLOTS_COUNTED = 10_000

NextRun = Callable[[datetime], datetime | None]  # a schedule's first slot strictly after t


@dataclass(frozen=True)
class SlotRange:
    """Every slot from ``first`` up to, not including, ``until``: one ranged ledger entry."""

    first: datetime
    until: datetime
    count: int | None  # None when there were too many to count


def count_slots(next_run: NextRun, first: datetime, until: datetime) -> int | None:
    """Slots from ``first`` (itself a slot) up to ``until``; None past MAX_SLOTS_COUNTED."""
    count = 0
    current: datetime | None = first
    while current is not None and current < until:
        count += 1
        if count > MAX_SLOTS_COUNTED:
            return None
        current = next_run(current)
    return count


def unscheduled_range(
    next_run: NextRun, first: datetime | None, until: datetime | None
) -> SlotRange | None:
    """The slots a task let pass while it was paused, disabled or removed: one ranged entry.

    ``first`` is the task's next slot when it stopped being scheduled, ``until`` its next slot
    now. None when no slot fell in between.
    """
    if first is None or until is None or first >= until:
        return None
    return SlotRange(first, until, count_slots(next_run, first, until))
