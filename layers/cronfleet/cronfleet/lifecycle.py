"""The life of one scheduled slot: its states, its attempts, and the envelope a run receives.

Every slot of every task ends in exactly one final state. Attempts are retries within the slot,
each one recorded. Nothing here touches AWS: the store persists these rules, the dispatcher,
the task wrapper and the recorder apply them.

::

    claimed ──> PENDING ──> RUNNING ──> SUCCEEDED
                  │            │──────> FAILED / TIMED_OUT   (no attempts left, or not retryable)
                  │            `──────> RETRY_WAIT ──> PENDING (attempt + 1)
                  `── never started: re-dispatched once, then LOST (a failed attempt)
    QUEUED (overlap queue_one) ──> PENDING
    SKIPPED (overlap skip, paused), MISSED (later than the maximum lateness): final at once
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cronfleet.registry import RetryPolicy


class RunStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    RETRY_WAIT = "RETRY_WAIT"
    QUEUED = "QUEUED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    SKIPPED = "SKIPPED"
    MISSED = "MISSED"
    # An attempt's own status only, never a slot's: its code provably never started (the
    # function was never reached, or gave up before marking the attempt RUNNING). The slot
    # counts it as a failure: FAILED once no attempts are left.
    LOST = "LOST"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.TIMED_OUT,
        RunStatus.SKIPPED,
        RunStatus.MISSED,
    }
)
IN_FLIGHT_STATUSES = frozenset(
    {RunStatus.PENDING, RunStatus.RUNNING, RunStatus.RETRY_WAIT, RunStatus.QUEUED}
)


class Trigger(StrEnum):
    SCHEDULE = "schedule"  # the slot's own tick
    CATCHUP = "catchup"  # a slot dispatched late, after missed ticks
    MANUAL = "manual"  # `cronfleet trigger`, or a direct invoke such as `sam local invoke`


class SkipReason(StrEnum):
    OVERLAP = "overlap"  # the previous run was still going
    PAUSED = "paused"
    DISABLED = "disabled"  # Enabled: false, or removed from the template, for a while


# Slots are written as ISO-8601 UTC with a Z, so that they sort chronologically as strings.
SLOT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def slot_key(slot: datetime) -> str:
    return slot.astimezone(UTC).strftime(SLOT_FORMAT)


MANUAL_MARK = "#manual-"


def manual_slot(now: datetime) -> str:
    """The ledger key of a run outside the schedule: its own, sorting just after ``now``'s."""
    return f"{slot_key(now)}{MANUAL_MARK}{uuid.uuid4().hex[:8]}"


def parse_slot(text: str) -> datetime:
    return datetime.strptime(text, SLOT_FORMAT).replace(tzinfo=UTC)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def retry_delay(policy: RetryPolicy, failed_attempt: int, rng: random.Random | None = None) -> int:
    """Seconds to wait after ``failed_attempt`` failed: exponential backoff, capped, jittered.

    Full jitter (AWS's recommendation) spreads retries of many tasks that failed together,
    for example when a shared dependency was down, instead of retrying them in lockstep. The
    wait never drops below IntervalSeconds, so a retry is never immediate.
    """
    backoff = policy.interval_seconds * policy.backoff_rate ** (failed_attempt - 1)
    capped = min(float(policy.max_delay_seconds), backoff)
    if policy.jitter_strategy == "FULL":
        capped = (rng or random).uniform(
            policy.interval_seconds, max(capped, policy.interval_seconds)
        )
    return round(capped)


def attempts_left(policy: RetryPolicy, attempt: int) -> bool:
    return attempt < policy.max_attempts


def slot_status_of(attempt_status: RunStatus) -> RunStatus:
    """The final status a slot takes when its last attempt ends as ``attempt_status``."""
    return RunStatus.FAILED if attempt_status is RunStatus.LOST else attempt_status


def attempt_deadline(started: datetime, timeout_seconds: int) -> datetime:
    return (started + timedelta(seconds=timeout_seconds)).replace(microsecond=0)


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
