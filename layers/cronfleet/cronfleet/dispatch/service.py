"""One tick of the dispatcher: claim what is due, invoke it in parallel, then the watchdog."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cronfleet.dispatch.watchdog import Watchdog, WatchdogReport
from cronfleet.lifecycle.attempts import START_GRACE, Attempts
from cronfleet.lifecycle.slots import MAX_SLOTS_COUNTED, from_epoch, slot_key
from cronfleet.store import TaskRecord

if TYPE_CHECKING:
    from cronfleet.dispatch.plan import SlotPlan
    from cronfleet.schedule import Schedule

logger = logging.getLogger(__name__)

TICK_INTERVAL = timedelta(minutes=1)
# Invokes are network-bound, so threads overlap them well beyond the two cores of a Lambda.
MAX_PARALLEL = 32
# A tick is the time EventBridge Scheduler meant to invoke at. It is never in the future, and
# it is never old: the schedule gives up on a tick after 2 minutes and the function's own
# async retry after 2 more. A tick outside these bounds is not the scheduler's (a hand-made
# event, a replayed message, a sample event): trusted, it would run tomorrow's slots now and
# record a day of slots as missed. It is clamped to the clock's own minute instead, which is
# what a genuine tick now would carry, and alerted on.
MAX_TICK_AHEAD = timedelta(minutes=2)
MAX_TICK_AGE = timedelta(minutes=15)
# Claims of one task in one tick: the chunks of a large catch-up (at most 1,000 runs in chunks
# of at least 35), plus a few lost version races with deploys or runs finishing meanwhile.
MAX_CLAIMS_PER_TASK = 40


@dataclass
class TickReport:
    tick: datetime
    due_tasks: int = 0
    claimed: int = 0  # tasks this dispatcher won
    lost_races: int = 0  # tasks another dispatcher claimed first
    invoked: int = 0
    invoke_failures: int = 0
    skipped: int = 0
    missed: int = 0
    queued: int = 0
    missed_ticks: int = 0
    # The tick as sent, when it was too far from the clock and the clock's minute was used.
    clamped_from: datetime | None = None
    errors: list[str] = field(default_factory=list)
    watchdog: WatchdogReport = field(default_factory=WatchdogReport)


@dataclass
class _TaskOutcome:
    claimed: bool = False
    invoked: int = 0
    invoke_failures: int = 0
    skipped: int = 0
    missed: int = 0
    queued: int = 0
    error: str | None = None


class Dispatcher:
    """One tick's work, on the attempts service it shares with its watchdog."""

    def __init__(self, attempts: Attempts, *, max_parallel: int = MAX_PARALLEL) -> None:
        assert attempts.invoker is not None, "a dispatcher invokes: give it an invoker"
        self.attempts = attempts
        self.store = attempts.store
        self.clock = attempts.clock
        self.alerter = attempts.alerter
        self.max_parallel = max_parallel
        self.watchdog = Watchdog(attempts)

    def tick(self, tick: datetime, *, stop_claiming_at: datetime | None = None) -> TickReport:
        """Handle the tick EventBridge Scheduler sent for ``tick`` (its scheduled time).

        ``stop_claiming_at``: no new claim starts after this moment (the invocation is about
        to run out of time); a large catch-up then carries on at the next tick.
        """
        tick = tick.astimezone(UTC).replace(second=0, microsecond=0)
        now = self.clock()
        problem = tick_out_of_range(tick, now)
        clamped_from = None
        if problem is not None:
            clamped_from, tick = tick, now.astimezone(UTC).replace(second=0, microsecond=0)
            logger.error(
                "Tick out of range; dispatching the clock's minute instead",
                extra={"sent": slot_key(clamped_from), "used": slot_key(tick), "reason": problem},
            )
            if self.alerter is not None:
                self.alerter.tick_clamped(clamped_from, tick, problem, now)
        report = TickReport(tick=tick, clamped_from=clamped_from)
        previous = self.store.record_tick(tick)
        if previous is not None and tick - previous > TICK_INTERVAL:
            report.missed_ticks = int((tick - previous) / TICK_INTERVAL) - 1
            logger.warning(
                "Dispatcher ticks were missed",
                extra={
                    "from": slot_key(previous),
                    "to": slot_key(tick),
                    "missed_ticks": report.missed_ticks,
                },
            )
            self.store.record_tick_gap(previous, tick, report.missed_ticks, self.clock())

        due = self.store.due_tasks(tick)
        report.due_tasks = len(due)
        if due:
            workers = min(self.max_parallel, len(due))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dispatch") as pool:
                outcomes = list(
                    pool.map(lambda task: self._dispatch(task, tick, stop_claiming_at), due)
                )
            for outcome in outcomes:
                report.claimed += outcome.claimed
                report.lost_races += not outcome.claimed and outcome.error is None
                report.invoked += outcome.invoked
                report.invoke_failures += outcome.invoke_failures
                report.skipped += outcome.skipped
                report.missed += outcome.missed
                report.queued += outcome.queued
                if outcome.error:
                    report.errors.append(outcome.error)
        report.watchdog = self.watchdog.sweep(self.clock())
        return report

    def _dispatch(
        self, task: TaskRecord, tick: datetime, stop_claiming_at: datetime | None
    ) -> _TaskOutcome:
        """Claim and invoke one task's due slots. Errors stay with the task that caused them."""
        try:
            return self._claim_and_invoke(task, tick, stop_claiming_at)
        except Exception as exc:  # one bad task must not stop the others
            logger.exception("Dispatching a task failed", extra={"task_id": task.task_id})
            return _TaskOutcome(error=f"{task.task_id}: {type(exc).__name__}: {exc}")

    def _claim_and_invoke(
        self, task: TaskRecord, tick: datetime, stop_claiming_at: datetime | None
    ) -> _TaskOutcome:
        """Claim until the task is no longer due at this tick, invoking each claim's runs.

        Usually that is one claim. A large catch-up takes several (one per chunk), and a claim
        that lost a version race (a deploy, a pause, a run finishing) is planned again from a
        fresh read, which also shows whether another dispatcher took the slots.
        """
        # Imported on the first due task: an idle tick needs neither schedules nor planning.
        from cronfleet.schedule import parse_schedule

        outcome = _TaskOutcome()
        current: TaskRecord | None = task
        schedule = None
        for _ in range(MAX_CLAIMS_PER_TASK):
            if current is None or current.due_at is None or from_epoch(current.due_at) > tick:
                break
            if stop_claiming_at is not None and self.clock() >= stop_claiming_at:
                logger.warning(
                    "Out of time: the rest of this task's slots wait for the next tick",
                    extra={"task_id": task.task_id, "due_at": current.due_at},
                )
                break
            definition = current.definition
            if schedule is None or current.definition_json != task.definition_json:
                schedule = parse_schedule(definition.schedule, definition.timezone)
            plan = self._plan(current, schedule, tick)
            now = self.clock()
            if self.store.claim(current, plan, now=now, start_grace=START_GRACE):
                outcome.claimed = True
                outcome.skipped += plan.skipped_count
                outcome.missed += plan.missed_count
                outcome.queued += plan.queued is not None
                self._report_missed(current, plan, schedule, now)
                for slot, trigger in plan.runs:
                    if self.attempts.invoke(current, slot_key(slot), 1, trigger, now):
                        outcome.invoked += 1
                    else:
                        outcome.invoke_failures += 1
                if not plan.more_due_by(tick):
                    break
                current = self.store.get_task(task.task_id)
                continue
            seen = current.version
            current = self.store.get_task(task.task_id)
            if current is not None and current.version == seen:
                # Nothing changed the task, so a slot of the plan already has its entry: no
                # retry can succeed, and `cronfleet audit` reports the task as wedged.
                logger.error(
                    "A claim failed on a slot that already has a ledger entry",
                    extra={"task_id": task.task_id, "due_at": current.due_at},
                )
                outcome.error = f"{task.task_id}: its next slot already has a ledger entry"
                break
        return outcome

    @staticmethod
    def _plan(task: TaskRecord, schedule: Schedule, tick: datetime) -> SlotPlan:
        from cronfleet.dispatch.plan import plan_slots

        assert task.due_at is not None
        return plan_slots(
            task.definition,
            schedule,
            from_epoch(task.due_at),
            tick,
            # A queued slot is next in line: newer slots wait behind it as if it were running.
            busy=task.is_busy or task.queued_slot is not None,
            queue_taken=task.queued_slot is not None,
            catchup_through=task.catchup_through,
        )

    def _report_missed(
        self, task: TaskRecord, plan: SlotPlan, schedule: Schedule, now: datetime
    ) -> None:
        """One MISSED alert for the slots this claim recorded as missed, if any."""
        if self.alerter is None:
            return
        missed_range = plan.missed_range
        if missed_range is not None:  # plan_slots lists no slots one by one alongside a range
            first, count = missed_range.first, missed_range.count
            last = first
            if count is not None:  # counted, so walking it again is bounded
                for _ in range(count - 1):
                    following = schedule.next_run(last)
                    if following is None or following >= missed_range.until:
                        break
                    last = following
            self.alerter.slots_missed(
                task, slot_key(first), slot_key(last), count or MAX_SLOTS_COUNTED, now
            )
        elif plan.missed:
            self.alerter.slots_missed(
                task, slot_key(plan.missed[0]), slot_key(plan.missed[-1]), len(plan.missed), now
            )


def tick_out_of_range(tick: datetime, now: datetime) -> str | None:
    """Why a tick cannot be the scheduler's, judged against the dispatcher's clock; or None."""
    if tick - now > MAX_TICK_AHEAD:
        return (
            f"the tick is dated {slot_key(tick)}, {_minutes(tick - now)} ahead of the clock "
            f"({slot_key(now)}); a scheduler tick is never in the future"
        )
    if now - tick > MAX_TICK_AGE:
        return (
            f"the tick is dated {slot_key(tick)}, {_minutes(now - tick)} behind the clock "
            f"({slot_key(now)}); the scheduler gives up on a tick long before that"
        )
    return None


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
