"""One tick of the dispatcher: claim what is due, invoke it in parallel, then the watchdog."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cronfleet.clock import now as clock_now
from cronfleet.invoker import Invoker
from cronfleet.lifecycle import Trigger, from_epoch, slot_key
from cronfleet.runs import START_GRACE, invoke_attempt
from cronfleet.store import Store, TaskRecord
from cronfleet.watchdog import Watchdog, WatchdogReport

if TYPE_CHECKING:
    from cronfleet.alerting import Alerter
    from cronfleet.dispatch.plan import SlotPlan
    from cronfleet.schedule import Schedule

logger = logging.getLogger(__name__)

TICK_INTERVAL = timedelta(minutes=1)
# Invokes are network-bound, so threads overlap them well beyond the two cores of a Lambda.
MAX_PARALLEL = 32


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
    def __init__(
        self,
        store: Store,
        invoker: Invoker,
        *,
        clock: Callable[[], datetime] = clock_now,
        max_parallel: int = MAX_PARALLEL,
        rng: random.Random | None = None,
        alerter: Alerter | None = None,
        http_function: str | None = None,
    ) -> None:
        self.store = store
        self.invoker = invoker
        self.clock = clock
        self.max_parallel = max_parallel
        self.rng = rng
        self.alerter = alerter
        self.http_function = http_function
        self.watchdog = Watchdog(
            store, invoker, clock=clock, rng=rng, alerter=alerter, http_function=http_function
        )

    def tick(self, tick: datetime) -> TickReport:
        """Handle the tick EventBridge Scheduler sent for ``tick`` (its scheduled time)."""
        tick = tick.astimezone(UTC).replace(second=0, microsecond=0)
        report = TickReport(tick=tick)
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
                outcomes = list(pool.map(lambda task: self._dispatch(task, tick), due))
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

    def _dispatch(self, task: TaskRecord, tick: datetime) -> _TaskOutcome:
        """Claim and invoke one task's due slots. Errors stay with the task that caused them."""
        try:
            return self._claim_and_invoke(task, tick)
        except Exception as exc:  # one bad task must not stop the others
            logger.exception("Dispatching a task failed", extra={"task_id": task.task_id})
            return _TaskOutcome(error=f"{task.task_id}: {type(exc).__name__}: {exc}")

    def _claim_and_invoke(self, task: TaskRecord, tick: datetime) -> _TaskOutcome:
        # Imported on the first due task: an idle tick needs neither schedules nor planning.
        from cronfleet.dispatch.plan import plan_slots
        from cronfleet.schedule import parse_schedule

        assert task.due_at is not None
        definition = task.definition
        schedule = parse_schedule(definition.schedule, definition.timezone)
        plan = plan_slots(
            definition,
            schedule,
            from_epoch(task.due_at),
            tick,
            # A queued slot is next in line: newer slots wait behind it as if it were running.
            busy=task.is_busy or task.queued_slot is not None,
            queue_taken=task.queued_slot is not None,
        )
        now = self.clock()
        if not self.store.claim(task, plan, now=now, start_grace=START_GRACE):
            return _TaskOutcome()
        outcome = _TaskOutcome(
            claimed=True,
            skipped=len(plan.skipped),
            missed=len(plan.missed) + (plan.missed_range.count or 1 if plan.missed_range else 0),
            queued=plan.queued is not None,
        )
        self._report_missed(task, plan, schedule, now)
        for slot, trigger in plan.runs:
            if self.invoke(task, slot_key(slot), 1, trigger, now):
                outcome.invoked += 1
            else:
                outcome.invoke_failures += 1
        return outcome

    def _report_missed(
        self, task: TaskRecord, plan: SlotPlan, schedule: Schedule, now: datetime
    ) -> None:
        """One MISSED alert for the slots this claim recorded as missed, if any."""
        from cronfleet.dispatch.plan import MAX_SLOTS_COUNTED

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

    def invoke(
        self, task: TaskRecord, slot: str, attempt: int, trigger: Trigger, now: datetime
    ) -> bool:
        """Invoke one attempt; a failed invoke is recorded and follows the retry policy."""
        return invoke_attempt(
            self.store,
            self.invoker,
            task,
            slot,
            attempt,
            trigger,
            now,
            self.rng,
            self.alerter,
            http_function=self.http_function,
        )
