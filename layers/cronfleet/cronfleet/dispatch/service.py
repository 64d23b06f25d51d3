"""One tick of the dispatcher: open it, dispatch what is due shard by shard, then the watchdog.

A tick is opened once, by the dispatcher the scheduler invokes: the heartbeat, gap detection and
the clamp of a tick that cannot be the scheduler's. Its due tasks are then claimed and invoked
shard by shard (:mod:`cronfleet.dispatch.shards`). A quiet tick is dispatched right there; a
busy one hands each shard with work to a dispatch worker invocation, which claims and invokes
only its shard and, running short of time, hands the rest on to a continuation of itself.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cronfleet.dispatch.events import ShardEvent
from cronfleet.dispatch.shards import ShardHandOff, shard_partitions
from cronfleet.dispatch.watchdog import Watchdog, WatchdogReport
from cronfleet.invoker import InvokeError, Invoker
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
# A tick with at most this many due tasks is dispatched by the dispatcher itself: at about
# 10 ms of CPU a task on a Lambda's share of a core, a couple of seconds, where handing off
# would cost a worker invocation per shard. Above it, each shard with work gets a worker.
INLINE_LIMIT = 200
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

OutOfTime = Callable[[], bool]  # True once no new claim may start (the invocation is ending)


@dataclass
class DispatchCounts:
    """What claiming and invoking a set of due tasks did."""

    due_tasks: int = 0
    claimed: int = 0  # tasks this dispatcher won
    lost_races: int = 0  # tasks another dispatcher claimed first
    invoked: int = 0
    invoke_failures: int = 0
    skipped: int = 0
    missed: int = 0
    queued: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: DispatchCounts) -> None:
        for name in (
            "due_tasks",
            "claimed",
            "lost_races",
            "invoked",
            "invoke_failures",
            "skipped",
            "missed",
            "queued",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors += other.errors


@dataclass
class ShardReport(DispatchCounts):
    """One shard's dispatch, by a worker or by the dispatcher itself."""

    partitions: tuple[int, ...] = ()
    # It ran out of time with tasks still due: a continuation (or the next tick) carries on.
    unfinished: bool = False


@dataclass
class TickReport(DispatchCounts):
    tick: datetime = field(default_factory=lambda: datetime.now(UTC))
    missed_ticks: int = 0
    # The tick as sent, when it was too far from the clock and the clock's minute was used.
    clamped_from: datetime | None = None
    shards: int = 0
    handed_off: int = 0  # shards given to a worker invocation
    unfinished: bool = False  # the dispatcher's own share ran out of time
    watchdog: WatchdogReport = field(default_factory=WatchdogReport)


@dataclass
class _TaskOutcome:
    claimed: bool = False
    invoked: int = 0
    invoke_failures: int = 0
    skipped: int = 0
    missed: int = 0
    queued: int = 0
    stopped: bool = False  # out of time before the task was done
    error: str | None = None

    def counts(self) -> DispatchCounts:
        return DispatchCounts(
            claimed=int(self.claimed),
            lost_races=int(not self.claimed and self.error is None and not self.stopped),
            invoked=self.invoked,
            invoke_failures=self.invoke_failures,
            skipped=self.skipped,
            missed=self.missed,
            queued=self.queued,
            errors=[self.error] if self.error else [],
        )


class Dispatcher:
    """One tick's work, on the attempts service it shares with its watchdog.

    ``hand_off`` sends busy shards to dispatch workers; without it (a test, the local runner)
    the dispatcher claims every shard itself, as a worker would.
    """

    def __init__(
        self,
        attempts: Attempts,
        *,
        max_parallel: int = MAX_PARALLEL,
        hand_off: ShardHandOff | None = None,
        inline_limit: int = INLINE_LIMIT,
    ) -> None:
        assert attempts.invoker is not None, "a dispatcher invokes: give it an invoker"
        self.attempts = attempts
        self.store = attempts.store
        self.clock = attempts.clock
        self.alerter = attempts.alerter
        self.max_parallel = max_parallel
        self.hand_off = hand_off
        self.inline_limit = inline_limit
        self.watchdog = Watchdog(attempts)

    @property
    def invoker(self) -> Invoker:
        assert self.attempts.invoker is not None
        return self.attempts.invoker

    def tick(self, tick: datetime, *, out_of_time: OutOfTime | None = None) -> TickReport:
        """Handle the tick EventBridge Scheduler sent for ``tick`` (its scheduled time).

        ``out_of_time``: once it says so, no new claim starts (the invocation is about to run
        out of time); what is left is claimed by the next tick.
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
        opened = self.store.open_tick(tick)
        previous = opened.previous
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

        shards = shard_partitions(self.store.due_shards, opened.due_partitions)
        report.shards = len(shards)
        if self.hand_off is None:
            own = self._dispatch_pages(tick, self._pages(tick, shards), out_of_time)
        else:
            own = self._hand_off_or_dispatch(tick, shards, out_of_time, report)
        report.add(own)
        report.unfinished = own.unfinished
        report.watchdog = self.watchdog.sweep(self.clock())
        return report

    def dispatch_shard(
        self, tick: datetime, partitions: Iterable[int], *, out_of_time: OutOfTime | None = None
    ) -> ShardReport:
        """Claim and invoke the due tasks of these partitions: a dispatch worker's whole job."""
        partitions = tuple(partitions)
        pages = (page for p in partitions for page in self.store.due_pages(tick, p))
        report = self._dispatch_pages(tick, pages, out_of_time)
        report.partitions = partitions
        return report

    def _pages(self, tick: datetime, shards: list[tuple[int, ...]]) -> Iterator[list[TaskRecord]]:
        for partitions in shards:
            for partition in partitions:
                yield from self.store.due_pages(tick, partition)

    def _hand_off_or_dispatch(
        self,
        tick: datetime,
        shards: list[tuple[int, ...]],
        out_of_time: OutOfTime | None,
        report: TickReport,
    ) -> ShardReport:
        """Read the first page of every partition; dispatch here if that is all, else hand off.

        The first pages are capped just past the inline limit, so a quiet tick costs the same
        one query per partition as ever, and a busy one learns which shards have work from a
        small read. The pages read are dispatched or handed off, never read twice here.
        """
        assert self.hand_off is not None
        first_pages: dict[int, list[list[TaskRecord]]] = {}
        rest: dict[int, list[Iterator[list[TaskRecord]]]] = {}
        for shard, partitions in enumerate(shards):
            for partition in partitions:
                first, more = self.store.first_due_page(tick, partition, self.inline_limit + 1)
                if first or more is not None:
                    first_pages.setdefault(shard, []).append(first)
                if more is not None:
                    rest.setdefault(shard, []).append(more)
        due = sum(len(page) for pages in first_pages.values() for page in pages)
        if due <= self.inline_limit and not rest:
            # Quiet: each first page held its partition's every due task.
            inline = itertools.chain.from_iterable(first_pages.values())
            return self._dispatch_pages(tick, inline, out_of_time)

        kept: list[int] = []
        for shard in sorted(first_pages):
            event = ShardEvent(tick=tick, shard=shard, shards=len(shards), partitions=shards[shard])
            try:
                self.hand_off.send(event)
            except InvokeError as exc:
                # Throttled or refused: this dispatcher claims the shard itself rather than
                # leave it to the next tick.
                logger.error(
                    "Could not hand a shard to a dispatch worker; dispatching it here",
                    extra={"shard": shard, "error": str(exc)},
                )
                kept.append(shard)
                continue
            report.handed_off += 1
        pages = (
            page
            for shard in kept
            for page in itertools.chain(first_pages[shard], *rest.get(shard, ()))
        )
        return self._dispatch_pages(tick, pages, out_of_time)

    def _dispatch_pages(
        self, tick: datetime, pages: Iterable[list[TaskRecord]], out_of_time: OutOfTime | None
    ) -> ShardReport:
        """Claim and invoke each page's tasks in parallel, starting on a page as it arrives."""
        report = ShardReport()
        futures: list[Future[_TaskOutcome]] = []
        with ThreadPoolExecutor(self.max_parallel, thread_name_prefix="dispatch") as pool:
            for page in pages:
                if not page:
                    continue
                if out_of_time is not None and out_of_time():
                    report.unfinished = True
                    break
                report.due_tasks += len(page)
                futures += [pool.submit(self._dispatch, task, tick, out_of_time) for task in page]
        for future in futures:
            outcome = future.result()
            report.add(outcome.counts())
            report.unfinished |= outcome.stopped
        if report.unfinished:
            logger.warning(
                "Out of time with tasks still due: they wait for a continuation or the next tick",
                extra={"due_tasks": report.due_tasks, "claimed": report.claimed},
            )
        return report

    def _dispatch(
        self, task: TaskRecord, tick: datetime, out_of_time: OutOfTime | None
    ) -> _TaskOutcome:
        """Claim and invoke one task's due slots. Errors stay with the task that caused them."""
        try:
            return self._claim_and_invoke(task, tick, out_of_time)
        except Exception as exc:  # one bad task must not stop the others
            logger.exception("Dispatching a task failed", extra={"task_id": task.task_id})
            return _TaskOutcome(error=f"{task.task_id}: {type(exc).__name__}: {exc}")

    def _claim_and_invoke(
        self, task: TaskRecord, tick: datetime, out_of_time: OutOfTime | None
    ) -> _TaskOutcome:
        """Claim until the task is no longer due at this tick, invoking each claim's runs.

        Usually that is one claim. A large catch-up takes several (one per chunk), and a claim
        that lost a version race (a deploy, a pause, a run finishing) is planned again from a
        fresh read, which also shows whether another dispatcher took the slots.
        """
        outcome = _TaskOutcome()
        current: TaskRecord | None = task
        schedule = None
        for _ in range(MAX_CLAIMS_PER_TASK):
            if current is None or current.due_at is None or from_epoch(current.due_at) > tick:
                break
            if out_of_time is not None and out_of_time():
                outcome.stopped = True  # the shard's report says so, once for all its tasks
                break
            definition = current.definition
            if schedule is None or current.definition_json != task.definition_json:
                schedule = definition.compiled_schedule()
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
