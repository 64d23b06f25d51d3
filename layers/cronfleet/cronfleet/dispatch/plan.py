"""Deciding what one tick does with one due task: pure rules, no I/O.

A task is due when its next slot is at or before the tick. Usually that is exactly one slot,
the tick's own. After downtime there may be many, and the catch-up policy decides which run;
the overlap policy decides what happens when the previous run is still going. Every slot the
tick passes ends up in the plan exactly once: run, queued, skipped or missed.

A plan is what one claim writes, and a claim is one DynamoDB transaction (100 items, one of
them the task), so a plan never holds more than :data:`CLAIM_ITEMS` ledger entries. Long runs
of missed or skipped slots become one ranged entry. Runs cannot be merged, so a catch-up with
more runs than fit is claimed in chunks: the first plan records ``catchup_through``, the last
slot decided to run, and every later plan carries on from the task's next slot up to it,
whichever dispatcher makes it, this tick or a later one after a crash. Each chunk advances the
task in the same transaction that writes its entries, so a crash between two chunks leaves
nothing half-claimed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cronfleet.lifecycle.slots import SlotRange, count_slots
from cronfleet.lifecycle.states import Trigger
from cronfleet.registry.definition import TaskDefinition
from cronfleet.schedule import Schedule

# A slot is on time when the tick is its own: ticks come every minute, slots are whole minutes.
ON_TIME = timedelta(seconds=60)
# Ledger entries one claim may write: DynamoDB's 100 items per transaction, less the task.
CLAIM_ITEMS = 99
# Up to this many missed slots are recorded one by one; more become one ranged ledger entry
# (a per-minute task down for a day has 1,440).
MAX_MISSED_ITEMS = 64
# Likewise for slots skipped because the previous run is still going.
MAX_SKIPPED_ITEMS = 32
_SECOND = timedelta(seconds=1)


# Kept under its first name: the dispatcher and tests speak of missed ranges.
MissedRange = SlotRange


@dataclass(frozen=True)
class SlotPlan:
    runs: list[tuple[datetime, Trigger]] = field(default_factory=list)
    queued: tuple[datetime, Trigger] | None = None
    skipped: list[datetime] = field(default_factory=list)  # overlap
    skipped_range: SlotRange | None = None  # overlap, too many to list
    missed: list[datetime] = field(default_factory=list)
    missed_range: SlotRange | None = None
    next_due: datetime | None = None  # None: the schedule has no more runs
    # Set while a catch-up is claimed in chunks (see the module's docstring); None clears it.
    catchup_through: datetime | None = None

    @property
    def ledger_items(self) -> int:
        """The ledger entries this plan writes: at most CLAIM_ITEMS."""
        return (
            len(self.runs)
            + (self.queued is not None)
            + len(self.skipped)
            + (self.skipped_range is not None)
            + len(self.missed)
            + (self.missed_range is not None)
        )

    @property
    def missed_count(self) -> int:
        ranged = (self.missed_range.count or 1) if self.missed_range is not None else 0
        return len(self.missed) + ranged

    @property
    def skipped_count(self) -> int:
        ranged = (self.skipped_range.count or 1) if self.skipped_range is not None else 0
        return len(self.skipped) + ranged

    def more_due_by(self, tick: datetime) -> bool:
        """Whether the task is still due at ``tick`` after this plan (the next chunk)."""
        return self.next_due is not None and self.next_due <= tick


def plan_slots(
    definition: TaskDefinition,
    schedule: Schedule,
    due: datetime,
    tick: datetime,
    *,
    busy: bool,
    queue_taken: bool,
    catchup_through: datetime | None = None,
) -> SlotPlan:
    """What to do with every slot from ``due`` (the task's next slot) up to ``tick``.

    ``catchup_through`` is the task's record of a catch-up being claimed in chunks.
    """
    if catchup_through is not None and due <= catchup_through:
        return _continue_catchup(schedule, due, tick, catchup_through)

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
        missed_range = SlotRange(due, until, count_slots(schedule.next_run, due, until))
        missed = []

    runs = [(slot, _trigger(slot, tick)) for slot in chosen]
    next_due = schedule.next_run(tick)
    if not busy or definition.overlap == "allow" or not runs:
        room = CLAIM_ITEMS - len(missed) - (missed_range is not None)
        if len(runs) <= room:
            return SlotPlan(runs=runs, missed=missed, missed_range=missed_range, next_due=next_due)
        # More runs than one transaction holds: claim the first ones now, and record how far
        # the decision reaches so that the next chunk runs the rest whatever happens meanwhile.
        return SlotPlan(
            runs=runs[:room],
            missed=missed,
            missed_range=missed_range,
            next_due=runs[room][0],
            catchup_through=runs[-1][0],
        )
    if definition.overlap == "queue_one" and not queue_taken:
        *waiting, queued = runs
        skipped, skipped_range = _skips([slot for slot, _ in waiting])
        return SlotPlan(
            queued=queued,
            skipped=skipped,
            skipped_range=skipped_range,
            missed=missed,
            missed_range=missed_range,
            next_due=next_due,
        )
    skipped, skipped_range = _skips([slot for slot, _ in runs])
    return SlotPlan(
        skipped=skipped,
        skipped_range=skipped_range,
        missed=missed,
        missed_range=missed_range,
        next_due=next_due,
    )


def _continue_catchup(
    schedule: Schedule, due: datetime, tick: datetime, through: datetime
) -> SlotPlan:
    """The next chunk of a catch-up already decided: run its slots, whatever is busy now."""
    runs: list[tuple[datetime, Trigger]] = []
    slot: datetime | None = due
    while slot is not None and slot <= through and len(runs) < CLAIM_ITEMS:
        runs.append((slot, _trigger(slot, tick)))
        slot = schedule.next_run(slot)
    if slot is not None and slot <= through:
        return SlotPlan(runs=runs, next_due=slot, catchup_through=through)
    # The catch-up is complete. Slots after it that are already due (a later tick carrying on
    # after a crash) are planned by the next claim under the task's own policies.
    return SlotPlan(runs=runs, next_due=slot)


def _skips(slots: list[datetime]) -> tuple[list[datetime], SlotRange | None]:
    """Slots skipped for overlap: listed one by one, or as one range when there are many."""
    if len(slots) <= MAX_SKIPPED_ITEMS:
        return slots, None
    return [], SlotRange(slots[0], slots[-1] + _SECOND, len(slots))


def _trigger(slot: datetime, tick: datetime) -> Trigger:
    return Trigger.SCHEDULE if tick - slot < ON_TIME else Trigger.CATCHUP
