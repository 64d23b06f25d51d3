"""Deciding what one tick does with one due task: pure rules, no I/O.

A task is due when its next slot is at or before the tick. Usually that is exactly one slot,
the tick's own. After downtime there may be many, and the catch-up policy decides which run;
the overlap policy decides what happens when the previous run is still going. Every slot the
tick passes ends up in the plan exactly once: run, queued, skipped or missed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cronfleet.lifecycle import Trigger
from cronfleet.registry import TaskDefinition
from cronfleet.schedule import Schedule

# A slot is on time when the tick is its own: ticks come every minute, slots are whole minutes.
ON_TIME = timedelta(seconds=60)
# Up to this many missed slots are recorded one by one; more become one ranged ledger entry
# (a per-minute task down for a day has 1,440). It keeps a tick's writes in one transaction.
MAX_MISSED_ITEMS = 64
# Counting the slots of a long range is bounded too; past this the count is left unknown.
MAX_SLOTS_COUNTED = 10_000


@dataclass(frozen=True)
class MissedRange:
    """Every slot from ``first`` up to, not including, ``until``: one ledger entry."""

    first: datetime
    until: datetime
    count: int | None  # None when there were too many to count


@dataclass(frozen=True)
class SlotPlan:
    runs: list[tuple[datetime, Trigger]] = field(default_factory=list)
    queued: tuple[datetime, Trigger] | None = None
    skipped: list[datetime] = field(default_factory=list)  # overlap
    missed: list[datetime] = field(default_factory=list)
    missed_range: MissedRange | None = None
    next_due: datetime | None = None  # None: the schedule has no more runs


def plan_slots(
    definition: TaskDefinition,
    schedule: Schedule,
    due: datetime,
    tick: datetime,
    *,
    busy: bool,
    queue_taken: bool,
) -> SlotPlan:
    """What to do with every slot from ``due`` (the task's next slot) up to ``tick``."""
    catchup = definition.catchup
    window_start = tick - timedelta(seconds=catchup.max_lateness_seconds)
    # Slots older than the maximum lateness are missed whatever the policy; they are never
    # listed one by one, so a year-long outage costs no more than an hour-long one.
    too_late = due < window_start
    first_in_time = schedule.next_run(window_start - _SECOND) if too_late else due
    in_time = []
    while first_in_time is not None and first_in_time <= tick:
        in_time.append(first_in_time)
        first_in_time = schedule.next_run(first_in_time)

    if catchup.policy == "latest":
        chosen = in_time[-1:]
    elif catchup.policy == "all":
        chosen = in_time[-catchup.max_runs :]
    else:  # none: only the tick's own slot
        chosen = [slot for slot in in_time if tick - slot < ON_TIME][-1:]
    # The chosen slots are always the latest, so the missed ones form one unbroken run before.
    missed = [slot for slot in in_time if slot not in chosen]
    missed_range = None
    if too_late or len(missed) > MAX_MISSED_ITEMS:
        until = chosen[0] if chosen else tick + _SECOND
        missed_range = MissedRange(due, until, _count(schedule, due, until))
        missed = []

    runs = [
        (slot, Trigger.SCHEDULE if tick - slot < ON_TIME else Trigger.CATCHUP) for slot in chosen
    ]
    next_due = schedule.next_run(tick)
    if not busy or definition.overlap == "allow" or not runs:
        return SlotPlan(runs=runs, missed=missed, missed_range=missed_range, next_due=next_due)
    if definition.overlap == "queue_one" and not queue_taken:
        *skipped, queued = runs
        return SlotPlan(
            queued=queued,
            skipped=[slot for slot, _ in skipped],
            missed=missed,
            missed_range=missed_range,
            next_due=next_due,
        )
    return SlotPlan(
        skipped=[slot for slot, _ in runs],
        missed=missed,
        missed_range=missed_range,
        next_due=next_due,
    )


_SECOND = timedelta(seconds=1)


def _count(schedule: Schedule, first: datetime, until: datetime) -> int | None:
    count, current = 0, first
    while current < until:
        count += 1
        if count > MAX_SLOTS_COUNTED:
            return None
        following = schedule.next_run(current)
        if following is None:
            break
        current = following
    return count
