"""The soak: weeks of a mixed fleet on DynamoDB Local, under races and injected faults, audited.

``make soak`` runs 30 simulated days of 50 tasks; ``tests/integration/test_soak.py`` runs a
short one inside ``make test``. The engine is the real one (dispatcher, watchdog, task wrapper,
recorder, registry, store) on DynamoDB Local; only Lambda and the scheduler are played by this
harness, the way AWS plays them:

- **ticks** come at each minute with work (idle minutes are skipped and marked as ticked, as a
  replay does); some are delivered twice, some handled by two dispatchers at once, one is dated
  a day ahead, and the scheduler stops for a few hours twice (catch-up, ``all`` with a large
  ``MaxRuns`` included);
- **dispatch workers** take every tick with more than a few due tasks: the dispatcher hands
  each busy shard to a worker, delivered like any asynchronous invoke (some twice at once), a
  crashed worker is retried as Lambda retries it, and workers run out of time part-way, at
  random, and hand the rest of their shard to a continuation;
- **invokes** are queued and delivered like Lambda's asynchronous invokes: mostly once, some
  twice (at once, in two processes), some late, some never; a delivery whose process crashes
  or times out is handed to the recorder, with Lambda's error, as the on-failure destination is;
- **operators** redeploy the fleet, and pause and resume tasks, while ticks run;
- **faults**: every process has its own DynamoDB client with a fault injector (5% of calls by
  default: lost responses, throttling, 500s, stalls, late duplicates, crashes between writes).

An oracle records what each task's code really did. At the end the harness lets the fleet
settle with the faults off, audits the ledger, and compares the ledger with the oracle:

- **lost**: a slot with no ledger entry, or still in flight after the settling, or a task wedged
  or busy on a slot without an entry (the audit's findings);
- **duplicated**: the code ran more than once for one attempt of one slot;
- **wrongly final**: a recorded attempt that contradicts what the code did (SUCCEEDED without a
  success, LOST or FAILED-by-invoke for code that ran, a code failure recorded as success, a
  timeout of code that never ran), a run before its slot's time, or a pause a deploy undid.

``--mutant`` turns one of the fixes off, to show that the soak catches what it left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import random
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cronfleet import clock as clock_module
from cronfleet.dispatch import service as dispatch_service
from cronfleet.dispatch.events import ShardEvent
from cronfleet.dispatch.service import Dispatcher, OutOfTime
from cronfleet.dispatch.shards import ShardHandOff
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.lifecycle.recorder import FailureDestinationRecord, record_failure
from cronfleet.lifecycle.slots import parse_slot
from cronfleet.lifecycle.states import RunStatus
from cronfleet.lifecycle.wrapper import NonRetryableError, TaskContext, scheduled_task
from cronfleet.registry.custom_resource import CustomResourceEvent, respond
from cronfleet.store import DUE_SHARDS, INFLIGHT_SHARDS, Store, StoreError, TaskStateError
from cronfleet_tools.audit import FindingKind, audit
from cronfleet_tools.local.dynamodb_local import DynamoDBLocal, create_tables_from_template
from cronfleet_tools.local.stack import scheduled_task_request
from cronfleet_tools.template.intrinsics import as_cloudformation_sends
from tests.support.faults import FaultInjector, FaultKind, SimulatedCrash

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/cronfleet-soak/0"
MINUTE = timedelta(minutes=1)
SETTLE = timedelta(hours=3)  # after the window, with faults off: retries and watchdog finish
MUTANTS = ("version-off", "start-unrecognised", "claim-split", "tick-trusted")
WORKERS = 6
DISPATCH_WORKER = "DispatchWorkerFunction"
# Ticks with more due tasks than this go to the dispatch workers: with 50 tasks, the busy
# minutes (hours, quarter hours, catch-ups) are handed off and the quiet ones are not.
INLINE_LIMIT = 4
# Lambda's MaximumRetryAttempts for the dispatch worker (template.yaml).
DISPATCH_WORKER_RETRIES = 2


class TimedOut(BaseException):
    """Lambda stopped the sandbox at its timeout, mid-code."""


# --- the clock ---------------------------------------------------------------------------------


class SimClock:
    def __init__(self, at: datetime) -> None:
        self.now = at
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def set(self, at: datetime) -> None:
        with self._lock:
            self.now = at


# --- the fleet ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskPlan:
    name: str
    properties: dict[str, Any]
    fail_rate: float  # share of attempts whose code raises
    timeout_rate: float = 0.0  # share of attempts Lambda kills at the timeout, mid-code


# Schedules chosen to cover every syntax, DST zones (the US and EU spring changes and an
# Australian autumn one fall in the default window), overlap policies and catch-up policies.
_SHAPES: list[tuple[dict[str, Any], float]] = [
    ({"Schedule": "*/20 * * * *"}, 0.10),
    ({"Schedule": "rate(15 minutes)", "Overlap": "allow"}, 0.05),
    ({"Schedule": "0 * * * *"}, 0.20),
    ({"Schedule": "30 1 * * *", "Timezone": "Europe/London"}, 0.10),  # in the spring gap
    ({"Schedule": "30 2 * * *", "Timezone": "America/New_York"}, 0.10),  # in the spring gap
    ({"Schedule": "0 2 * * *", "Timezone": "Australia/Sydney"}, 0.05),  # twice in autumn
    ({"Schedule": "cron(0 9 ? * MON-FRI *)", "Timezone": "Europe/London"}, 0.05),
    ({"Schedule": "cron(15 */3 * * ? *)", "Overlap": "queue_one"}, 0.25),
    ({"Schedule": "cron(0 12 L * ? *)"}, 0.0),
    ({"Schedule": "rate(2 hours)", "Catchup": {"Policy": "none"}}, 0.15),
    ({"Schedule": "0 */6 * * *", "Catchup": {"Policy": "all", "MaxRuns": 10}}, 0.10),
    ({"Schedule": "cron(45 7 ? * 2#1 *)"}, 0.0),
    ({"Schedule": "*/30 * * * *", "Retry": {"MaxAttempts": 1}}, 0.30),
    ({"Schedule": "20 * * * *", "Overlap": "skip"}, 0.05),
]


def plan_fleet(count: int, start: datetime, days: float, rng: random.Random) -> list[TaskPlan]:
    retry = {"MaxAttempts": 3, "IntervalSeconds": 60, "BackoffRate": 2, "MaxDelaySeconds": 300}
    plans = [
        # The large catch-up: every minute, all of the slots an outage leaves, in chunks.
        TaskPlan(
            "catch-up-all",
            {
                # Every minute from 05:00 to 08:59 UTC, where the scheduler's stops fall.
                "Schedule": "cron(* 5-8 * * ? *)",
                "Catchup": {"Policy": "all", "MaxRuns": 500, "MaxLatenessSeconds": 86400},
                "Overlap": "allow",
                "Retry": {"MaxAttempts": 2, "IntervalSeconds": 60},
            },
            0.02,
        ),
        # A one-time run inside the window.
        TaskPlan(
            "one-time",
            {"Schedule": f"at({(start + timedelta(days=days / 2)):%Y-%m-%dT%H:00:00})"},
            0.0,
        ),
    ]
    for number in range(count - len(plans)):
        shape, fail_rate = _SHAPES[number % len(_SHAPES)]
        properties = {"Retry": retry, **shape}
        plans.append(
            TaskPlan(
                f"task-{number:02}",
                properties,
                fail_rate,
                timeout_rate=0.02 if number % 7 == 3 else 0.0,
            )
        )
    rng.shuffle(plans)
    return plans


# --- what the code really did ---------------------------------------------------------------------


@dataclass
class Oracle:
    runs: dict[tuple[str, str, int], list[str]] = field(default_factory=lambda: defaultdict(list))
    early: list[tuple[str, str]] = field(default_factory=list)
    pauses_undone: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ran(self, task: TaskContext, outcome: str, now: datetime) -> None:
        with self.lock:
            self.runs[(task.task_id, task.slot, task.attempt)].append(outcome)
            if "#manual-" not in task.slot and parse_slot(task.slot) > now:
                self.early.append((task.task_id, task.slot))


def _draw(*parts: object) -> float:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# --- the harness ---------------------------------------------------------------------------------


@dataclass
class SoakConfig:
    days: float = 30
    tasks: int = 50
    seed: int = 1
    fault_rate: float = 0.05
    start: datetime = datetime(2027, 3, 10, tzinfo=UTC)
    racing_ticks: float = 0.03
    duplicate_ticks: float = 0.03
    duplicate_deliveries: float = 0.03
    dropped_deliveries: float = 0.01
    late_deliveries: float = 0.01
    deploy_every: timedelta = timedelta(hours=7)
    pause_every: timedelta = timedelta(hours=11)
    mutant: str | None = None
    progress: Callable[[str], None] | None = None  # told each simulated day as it ends


@dataclass
class SoakResult:
    config: SoakConfig
    counts: Counter[str]
    faults: Counter[str]
    expected: int
    final: int
    in_flight: int
    lost: int
    duplicated: int
    wrongly_final: int
    findings: list[str]
    seconds: float

    @property
    def wedged(self) -> int:
        """Operator requests the store could never complete: a task stuck in a state no pause
        or resume gets it out of."""
        return self.counts["operator_wedged"]

    @property
    def clean(self) -> bool:
        return self.lost == self.duplicated == self.wrongly_final == self.wedged == 0

    def lines(self) -> list[str]:
        c = self.config
        faults = ", ".join(f"{kind} {n}" for kind, n in sorted(self.faults.items())) or "none"
        harness = ", ".join(f"{kind} {n}" for kind, n in sorted(self.counts.items()))
        return [
            f"soak: {c.days:g} days, {c.tasks} tasks, seed {c.seed}, faults at {c.fault_rate:.0%}"
            + (f", mutant {c.mutant}" if c.mutant else ""),
            f"  slots expected {self.expected}, final {self.final}, in flight {self.in_flight}",
            f"  lost {self.lost}, duplicated {self.duplicated}, "
            f"wrongly final {self.wrongly_final}, operator requests wedged {self.wedged}",
            f"  faults injected: {faults}",
            f"  harness: {harness}",
            f"  {self.seconds:.0f} s",
            *[f"  finding: {line}" for line in self.findings[:20]],
        ]


class Soak:
    def __init__(self, config: SoakConfig, engine: DynamoDBLocal) -> None:
        self.config = config
        self.engine = engine
        self.rng = random.Random(config.seed)
        self.clock = SimClock(config.start)
        self.oracle = Oracle()
        self.counts: Counter[str] = Counter()
        self.injectors: list[FaultInjector] = []
        names = create_tables_from_template(
            engine.client(), REPO_ROOT / "template.yaml", f"soak-{uuid.uuid4().hex[:6]}-"
        )
        self.tables = (names["TasksTable"], names["ExecutionsTable"])
        self.clean = self._store(faults=False)  # the harness's own view, never faulted
        self.plans = plan_fleet(config.tasks, config.start, config.days, self.rng)
        self.by_name = {plan.name: plan for plan in self.plans}
        self.paused: dict[str, datetime] = {}
        self.pending: list[tuple[datetime, str, dict[str, Any], str]] = []  # late deliveries
        self.dispatchers = [
            Dispatcher(
                Attempts(self._store(), self, clock=self.clock),
                hand_off=ShardHandOff(self, DISPATCH_WORKER),
                inline_limit=INLINE_LIMIT,
            )
            for _ in range(2)
        ]
        # Warm sandboxes of the dispatch worker, one per delivery at once. Each one's first
        # claim crashes after it commits, so every soak, however short, has Lambda retry a
        # crashed worker: at 5% of calls a short soak could otherwise see none.
        self.shard_workers = []
        for _ in range(3):
            self.shard_workers.append(Dispatcher(Attempts(self._store(), self, clock=self.clock)))
            self.injectors[-1].force(FaultKind.CRASH, on="TransactWriteItems")
        self.deployer = self._store()
        self.operator = self._store()
        # Warm "sandboxes" of the task function: deliveries run in them at once, as on Lambda.
        self.workers = [self._store() for _ in range(WORKERS)]
        self.recorders = [self._store() for _ in range(2)]
        self.queue: list[tuple[str, dict[str, Any]]] = []
        self.queue_lock = threading.Lock()
        self._lookups = ThreadPoolExecutor(max_workers=DUE_SHARDS + INFLIGHT_SHARDS)

    # --- processes and their clients ------------------------------------------------------

    def _store(self, *, faults: bool = True) -> Store:
        store_class = _MUTANT_STORES.get(self.config.mutant or "", Store)
        store = store_class(*self.tables, client=self.engine.client())
        if faults:
            injector = FaultInjector(
                seed=self.rng.randrange(2**32), rate=self.config.fault_rate, reads=True
            )
            self.injectors.append(injector.attach(store.client))
        return store

    def faults(self, on: bool) -> None:
        for injector in self.injectors:
            injector.rate = self.config.fault_rate if on else 0.0

    # Lambda's Invoke, as the dispatchers see it (the harness is their invoker).
    def invoke(self, function: str, event: dict[str, Any]) -> None:
        with self.queue_lock:
            self.queue.append((function, event))

    # --- the run -----------------------------------------------------------------------------

    def run(self) -> SoakResult:
        started = time.perf_counter()
        config = self.config
        clock_module.use(self.clock)
        try:
            self.deploy(first=True)
            end = config.start + timedelta(days=config.days)
            outages = self._outages(config.start, end)
            bogus_tick_at = config.start + timedelta(days=config.days / 3)
            next_deploy = config.start + config.deploy_every
            next_pause = config.start + config.pause_every
            tick = config.start
            next_day = config.start + timedelta(days=1)
            while tick < end + SETTLE:
                if config.progress is not None and tick >= next_day:
                    config.progress(
                        f"  day {int((tick - config.start) / timedelta(days=1))} of "
                        f"{config.days:g} done, {time.perf_counter() - started:.0f} s"
                    )
                    next_day += timedelta(days=1)
                settling = tick >= end
                if settling:
                    self.faults(False)
                self.clock.set(tick)
                concurrent: list[Callable[[], None]] = []
                if not settling and tick >= next_deploy:
                    concurrent.append(self.deploy)
                    next_deploy += config.deploy_every
                if not settling and tick >= next_pause:
                    concurrent.append(self.pause_or_resume)
                    next_pause += config.pause_every
                if settling and self.paused:
                    concurrent.append(self.resume_all)
                down = any(first <= tick < until for first, until in outages)
                if not down:
                    concurrent.append(lambda at=tick: self.tick(at))
                    if bogus_tick_at <= tick and not self.counts["bogus_ticks"]:
                        bogus = tick + timedelta(days=1)
                        concurrent.append(lambda at=bogus: self.tick(at, bogus=True))
                _together(concurrent)
                self.check_pauses()
                self.deliver()
                tick = self._next_tick(tick, end, outages)
            self.faults(False)
            return self._judge(time.perf_counter() - started)
        finally:
            self._lookups.shutdown()
            clock_module.use(None)

    def _outages(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        # Two three-hour stops of the scheduler, each over the per-minute catch-up task's hours.
        days = max(1, int((end - start) / timedelta(days=1)))
        firsts = [start + timedelta(days=int(days * share), hours=5) for share in (0.25, 0.7)]
        if firsts[0] == firsts[1]:  # a short soak: the second on the same day, after the first
            firsts[1] += timedelta(hours=12)
        return [(first, first + timedelta(hours=3)) for first in firsts]

    def _next_tick(
        self, tick: datetime, end: datetime, outages: list[tuple[datetime, datetime]]
    ) -> datetime:
        following = tick + MINUTE
        wakeups = [self._next_wakeup()] + [at for at, *_ in self.pending]
        wakeups += [until for _, until in outages if until > tick]
        soonest = min((w for w in wakeups if w is not None), default=end + SETTLE)
        soonest = min(soonest, end + SETTLE, tick + timedelta(hours=1))
        if soonest > following:
            jump = soonest.replace(second=0, microsecond=0)
            if jump < soonest:
                jump += MINUTE
            if jump > following:
                # Nothing due or in flight in between: those ticks would be idle.
                self.clean.record_tick(jump - MINUTE)
                self.counts["idle_minutes_skipped"] += int((jump - following) / MINUTE)
                return jump
        return following

    def _next_wakeup(self) -> datetime | None:
        """Store.next_wakeup, with its one-item queries sent at once."""
        searches = [
            (self.tables[0], "due-keys-index", "due_shard", "due_at", shard)
            for shard in range(DUE_SHARDS)
        ] + [
            (self.tables[1], "inflight-keys-index", "inflight_shard", "deadline_at", shard)
            for shard in range(INFLIGHT_SHARDS)
        ]

        def earliest(search: tuple[str, str, str, str, int]) -> int | None:
            table, index, shard_key, time_key, shard = search
            items = self.clean.client.query(
                TableName=table,
                IndexName=index,
                KeyConditionExpression=f"{shard_key} = :shard",
                ExpressionAttributeValues={":shard": {"N": str(shard)}},
                ProjectionExpression=time_key,
                Limit=1,
            )["Items"]
            return int(items[0][time_key]["N"]) if items else None

        found = [at for at in self._lookups.map(earliest, searches) if at is not None]
        return datetime.fromtimestamp(min(found), UTC) if found else None

    # --- the scheduler -----------------------------------------------------------------------

    def tick(self, tick: datetime, *, bogus: bool = False) -> None:
        self.counts["bogus_ticks" if bogus else "ticks"] += 1
        draw = self.rng.random()
        if draw < self.config.racing_ticks:
            self.counts["racing_ticks"] += 1
            _together([lambda d=d: self._tick_once(d, tick) for d in self.dispatchers])
            return
        self._tick_once(self.dispatchers[0], tick)
        if draw < self.config.racing_ticks + self.config.duplicate_ticks:
            self.counts["duplicate_ticks"] += 1
            self._tick_once(self.dispatchers[1], tick)

    def _tick_once(self, dispatcher: Dispatcher, tick: datetime) -> None:
        # EventBridge Scheduler retries a failed tick (its RetryPolicy), and Lambda the async
        # invoke once more: a dispatcher that died gets up to two more tries.
        for _ in range(3):
            try:
                dispatcher.tick(tick)
                return
            except SimulatedCrash:
                self.counts["dispatcher_crashes"] += 1
            except Exception:
                self.counts["dispatcher_errors"] += 1

    # --- Lambda's asynchronous invokes -----------------------------------------------------

    def deliver(self) -> None:
        self._deliver_shards()
        now = self.clock()
        with self.queue_lock:
            queued, self.queue = self.queue, []
        due = [item for item in self.pending if item[0] <= now]
        self.pending = [item for item in self.pending if item[0] > now]
        deliveries = [(event, request_id) for _, _, event, request_id in due]
        for _, event in queued:
            request_id = str(uuid.uuid4())
            draw = self.rng.random()
            if draw < self.config.dropped_deliveries:
                self.counts["dropped_deliveries"] += 1
                continue
            draw -= self.config.dropped_deliveries
            if draw < self.config.late_deliveries:
                self.counts["late_deliveries"] += 1
                self.pending.append((now + timedelta(minutes=4), "task", event, request_id))
                continue
            draw -= self.config.late_deliveries
            if draw < self.config.duplicate_deliveries:
                self.counts["duplicate_deliveries"] += 1
                _together(
                    [
                        lambda e=event, r=request_id, w=w: self._run(e, r, w)
                        for w in self.workers[:2]
                    ]
                )
                continue
            deliveries.append((event, request_id))
        # Every other delivery at once, spread over the warm sandboxes, each one at a time.
        lanes: list[list[tuple[dict[str, Any], str]]] = [[] for _ in self.workers]
        for number, delivery in enumerate(deliveries):
            lanes[number % len(lanes)].append(delivery)
        _together(
            [
                lambda lane=lane, worker=worker: [self._run(e, r, worker) for e, r in lane]
                for lane, worker in zip(lanes, self.workers, strict=True)
                if lane
            ]
        )

    def _deliver_shards(self) -> None:
        """The dispatch workers' events, continuations included, until none is left."""
        while True:
            with self.queue_lock:
                shards = [event for function, event in self.queue if function == DISPATCH_WORKER]
                self.queue = [item for item in self.queue if item[0] != DISPATCH_WORKER]
            if not shards:
                return
            runs: list[Callable[[], None]] = []
            for number, event in enumerate(shards):
                copies = 2 if self.rng.random() < self.config.duplicate_deliveries else 1
                self.counts["duplicate_shard_deliveries"] += copies - 1
                for copy in range(copies):
                    worker = self.shard_workers[(number + copy) % len(self.shard_workers)]
                    # Checks of its time a worker gets before it ends: 0 ends it before its first
                    # claim; a few, part-way through a shard of a handful of tasks.
                    budget = self.rng.choice([None, None, 0, 1, 2, 5])
                    runs.append(lambda e=event, w=worker, b=budget: self._run_shard(e, w, b))
            # Deliveries that share a sandbox run one after the other, as in Lambda.
            lanes: dict[int, list[Callable[[], None]]] = defaultdict(list)
            for number, run in enumerate(runs):
                lanes[number % len(self.shard_workers)].append(run)
            _together([lambda lane=lane: [run() for run in lane] for lane in lanes.values()])

    def _run_shard(self, sent: dict[str, Any], worker: Dispatcher, budget: int | None) -> None:
        """One dispatch worker invocation, with Lambda's retries of a crashed one."""
        event = ShardEvent.model_validate(sent)
        for _ in range(1 + DISPATCH_WORKER_RETRIES):
            self.counts["shard_invocations"] += 1
            try:
                report = worker.dispatch_shard(
                    event.tick, event.partitions, out_of_time=_out_of_time_after(budget)
                )
            except SimulatedCrash:
                self.counts["shard_crashes"] += 1
                continue
            except Exception:
                self.counts["shard_errors"] += 1
                continue
            if report.unfinished and (following := event.continued()) is not None:
                self.counts["shard_continuations"] += 1
                ShardHandOff(self, DISPATCH_WORKER).send(following)
            return

    def _run(self, event: dict[str, Any], request_id: str, worker: Store) -> None:
        """One invocation of a task function: the wrapper around the task's code."""
        self.counts["invocations"] += 1
        try:
            _task_handler(self, worker)(event, _Context(request_id))
        except SimulatedCrash:
            self.counts["function_crashes"] += 1
            self._on_failure(event, request_id, "Runtime.ExitError", "Runtime exited: killed")
        except TimedOut:
            self.counts["function_timeouts"] += 1
            self._on_failure(event, request_id, "Sandbox.Timedout", "Task timed out")
        except Exception as exc:
            self.counts[f"function_errors_{type(exc).__name__}"] += 1
            self._on_failure(event, request_id, type(exc).__name__, str(exc))

    def _on_failure(self, event: dict[str, Any], request_id: str, kind: str, message: str) -> None:
        """Lambda's on-failure destination: the recorder, retried twice if it fails itself."""
        record = {
            "version": "1.0",
            "timestamp": self.clock().isoformat(),
            "requestContext": {
                "requestId": request_id,
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:soak:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 1,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": kind, "errorMessage": message},
        }
        for attempt in range(3):
            try:
                record_failure(
                    Attempts(self.recorders[attempt % 2], clock=self.clock),
                    FailureDestinationRecord.model_validate(record),
                )
                return
            except SimulatedCrash:
                self.counts["recorder_crashes"] += 1
            except Exception:
                self.counts["recorder_errors"] += 1

    # --- operators ----------------------------------------------------------------------------

    def deploy(self, *, first: bool = False) -> None:
        """A `sam deploy` of the whole fleet, task by task, as CloudFormation sends it.

        Two of its registrations are raced on purpose, in the worst order: a task due now is
        claimed by a dispatcher, and another task is paused by an operator, each in the gap
        between the registry reading the task and writing it.
        """
        self.counts["deploys"] += 1
        round_ = self.counts["deploys"]
        races: dict[str, Callable[[], None]] = {}
        if not first:
            due = sorted(task.task_id for task in self.clean.due_tasks(self.clock()))
            if due:
                now = self.clock()
                races[self.rng.choice(due)] = lambda: self._claim_now(now)
                self.counts["deploys_racing_a_claim"] += 1
            calm = [p.name for p in self.plans if p.name not in self.paused and p.name not in races]
            if calm and self.rng.random() < 0.5:
                name = self.rng.choice(calm)
                races[name] = lambda: self._pause(name)
                self.counts["deploys_racing_a_pause"] += 1
        stop_racing = _between_read_and_write(self.deployer, races)
        try:
            self._deploy_each(first, round_)
        finally:
            stop_racing()

    def _claim_now(self, now: datetime) -> None:
        """A tick whose claims land in the gap: a busy one's dispatch workers run at once."""
        self._tick_once(self.dispatchers[1], now)
        self._deliver_shards()

    def _deploy_each(self, first: bool, round_: int) -> None:
        for plan in self.plans:
            properties = as_cloudformation_sends(
                {**plan.properties, "Function": "soak-task", "Payload": {"deploy": round_}}
            )
            event = scheduled_task_request(
                "Create" if first else "Update",
                plan.name,
                stack_id=STACK_ID,
                response_url="http://127.0.0.1/soak",
                properties=properties,
                physical_id=None if first else plan.name,
                old_properties=None if first else properties,
            )
            try:
                response = respond(
                    event, CustomResourceEvent.model_validate(event), self.deployer, self.clock()
                )
            except SimulatedCrash:
                self.counts["deployer_crashes"] += 1
                continue
            if response.status != "SUCCESS":
                self.counts["deploys_failed"] += 1

    def pause_or_resume(self) -> None:
        if self.paused and self.rng.random() < 0.6:
            self._resume(self.rng.choice(sorted(self.paused)))
            return
        self._pause(self.rng.choice([p.name for p in self.plans if p.name not in self.paused]))

    def _pause(self, name: str) -> None:
        try:
            self.operator.pause(name, self.clock())
            self.paused[name] = self.clock()
            self.counts["pauses"] += 1
        except SimulatedCrash:
            self.counts["operator_crashes"] += 1
            task = self.clean.get_task(name)
            if task is not None and task.paused:
                self.paused[name] = self.clock()
        except TaskStateError:
            self.counts["pauses_refused"] += 1
        except StoreError:  # the task kept changing under the request, every time
            self.counts["operator_wedged"] += 1

    def resume_all(self) -> None:
        for name in sorted(self.paused):
            self._resume(name)

    def _resume(self, name: str) -> None:
        task = self.clean.get_task(name)
        assert task is not None
        try:
            self.operator.resume(name, task.definition.compiled_schedule().next_run, self.clock())
            self.counts["resumes"] += 1
        except SimulatedCrash:
            self.counts["operator_crashes"] += 1
        except TaskStateError:
            self.counts["resumes_refused"] += 1
        except StoreError:
            self.counts["operator_wedged"] += 1
        task = self.clean.get_task(name)
        if task is not None and not task.paused:
            del self.paused[name]

    def check_pauses(self) -> None:
        """A task an operator paused stays paused, and undispatchable, whatever deploys did."""
        for name in self.paused:
            task = self.clean.get_task(name)
            if task is None or not task.paused or task.due_at is not None:
                self.oracle.pauses_undone += 1

    # --- the verdict ----------------------------------------------------------------------------

    def _judge(self, seconds: float) -> SoakResult:
        end = self.config.start + timedelta(days=self.config.days)
        report = audit(self.clean, None, self.config.start, end, self.clock())
        lost = report.counts.gaps + report.counts.in_flight
        findings = [str(f) for f in report.findings if not f.informational]
        lost += sum(
            f.count
            for f in report.findings
            if f.kind in (FindingKind.WEDGED, FindingKind.BUSY_WITHOUT_ENTRY)
        )
        duplicated = sum(1 for outcomes in self.oracle.runs.values() if len(outcomes) > 1)
        wrong = self._contradictions(findings)
        wrong += len(self.oracle.early) + self.oracle.pauses_undone
        findings += [f"ran before its slot: {t} {s}" for t, s in self.oracle.early[:5]]
        if self.oracle.pauses_undone:
            findings.append(f"pauses undone by a deploy: {self.oracle.pauses_undone} checks")
        faults: Counter[str] = Counter()
        for injector in self.injectors:
            faults.update({kind.value: n for kind, n in injector.injected.items()})
        return SoakResult(
            self.config,
            self.counts,
            faults,
            report.counts.expected,
            report.counts.final,
            report.counts.in_flight,
            lost,
            duplicated,
            wrong,
            findings,
            seconds,
        )

    def _contradictions(self, findings: list[str]) -> int:
        wrong = 0
        for plan in self.plans:
            for execution in self.clean.executions(plan.name):
                for attempt in execution.attempts:
                    did = self.oracle.runs.get((plan.name, execution.slot, attempt.attempt), [])
                    verdict = _contradiction(attempt.status, attempt.error_type, did)
                    if verdict:
                        wrong += 1
                        findings.append(
                            f"{plan.name} {execution.slot} attempt {attempt.attempt}: {verdict}"
                        )
        return wrong


# What the soak's task code raises: a FAILED attempt with one of these says the code failed.
CODE_ERRORS = frozenset({"RuntimeError", "NonRetryableError"})


def _contradiction(status: RunStatus, error_type: str | None, did: list[str]) -> str | None:
    """Why a recorded attempt contradicts what its code did (``did``), or None.

    A crash Lambda reports (FAILED with the platform's error) claims nothing about the code:
    it may have died before or during it. Everything else does.
    """
    ran, last = bool(did), (did[-1] if did else None)
    if status is RunStatus.SUCCEEDED and last != "succeeded":
        return f"SUCCEEDED, but the code {'ended ' + last if last else 'never ran'}"
    if status is RunStatus.LOST and ran:
        return f"LOST, but the code ran ({last})"
    if status is RunStatus.TIMED_OUT and not ran:
        return "TIMED_OUT, but the code never started"
    if status is RunStatus.FAILED and error_type in CODE_ERRORS and last != "failed":
        return f"FAILED with the code's error, but the code {last or 'never ran'}"
    if status is RunStatus.FAILED and last == "succeeded":
        return f"FAILED ({error_type}), but the code succeeded"
    return None


class _Context:
    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id
        self.function_name = "soak-task"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _out_of_time_after(checks: int | None) -> OutOfTime | None:
    """A worker invocation that ends after this many checks of its time; None: it never does."""
    if checks is None:
        return None
    counter = iter(range(checks))
    lock = threading.Lock()

    def out_of_time() -> bool:
        with lock:
            return next(counter, None) is None

    return out_of_time


def _task_handler(soak: Soak, store: Store) -> Callable[[Any, Any], dict[str, Any]]:
    @scheduled_task(store=store, clock=soak.clock)
    def code(task: TaskContext) -> dict[str, Any]:
        plan = soak.by_name[task.task_id]
        draw = _draw(soak.config.seed, task.task_id, task.slot, task.attempt)
        now = soak.clock()
        if draw < plan.timeout_rate:
            soak.oracle.ran(task, "timed_out", now)
            raise TimedOut()
        if draw < plan.timeout_rate + plan.fail_rate:
            soak.oracle.ran(task, "failed", now)
            if _draw("permanent", task.task_id, task.slot) < 0.1:
                raise NonRetryableError("the code gave up")
            raise RuntimeError("the code failed")
        soak.oracle.ran(task, "succeeded", now)
        return {"ok": True}

    return code


def _between_read_and_write(
    store: Store, races: dict[str, Callable[[], None]]
) -> Callable[[], None]:
    """Run ``races[task_id]`` once, just before ``store`` first writes that task: another
    writer's change landing between this writer's read and its write."""

    def before_write(params: dict[str, Any], **_: Any) -> None:
        first = params["TransactItems"][0]
        request = first.get("Update") or first.get("Put") or {}
        key = request.get("Key") or request.get("Item") or {}
        action = races.pop(key.get("task_id", {}).get("S", ""), None)
        if action is not None:
            with contextlib.suppress(SimulatedCrash, Exception):  # its death is its own
                action()

    event = "before-parameter-build.dynamodb.TransactWriteItems"
    store.client.meta.events.register(event, before_write)
    return lambda: store.client.meta.events.unregister(event, before_write)


def _together(actions: list[Callable[[], None]]) -> None:
    """Run actions at once, each in a thread of its own; a crash ends only its own process."""
    if len(actions) == 1:
        actions[0]()
        return
    failures: list[BaseException] = []

    def guarded(action: Callable[[], None]) -> None:
        try:
            action()
        except BaseException as exc:  # a thread is a process: its death is its own
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    unexpected = [f for f in failures if not isinstance(f, SimulatedCrash)]
    if unexpected:
        raise unexpected[0]


# --- mutants: the fixes turned off ---------------------------------------------------------------


class _VersionOff(Store):
    """Writers of the task item ignore each other's writes (no version check)."""

    def _transact(self, items: Any) -> bool:
        return super()._transact([_without_version_check(item) for item in items])


def _without_version_check(item: dict[str, Any]) -> dict[str, Any]:
    update = item.get("Update")
    condition = update.get("ConditionExpression", "") if update is not None else ""
    if "#version" not in condition:
        return item
    # Always true, and still using every placeholder the expression names.
    always = f"({condition}) OR attribute_exists(#version) OR attribute_not_exists(#version)"
    return {"Update": {**update, "ConditionExpression": always}}


class _StartUnrecognised(Store):
    """A repeat of the PENDING -> RUNNING write after a lost response is taken for another
    delivery's."""

    def _write(self, operation: Any, request: dict[str, Any], *, already_done: Any = None) -> Any:
        if "start_token" in str(request.get("UpdateExpression", "")) + str(
            request.get("ExpressionAttributeNames", {})
        ):
            already_done = None
        return super()._write(operation, request, already_done=already_done)


class _ClaimSplit(Store):
    """A claim's entries are written in two transactions, the task's advance in the first, and
    the process dies in between. Every time: the soak meets only a few claims this large (the
    catch-up after each outage), and a verdict that hung on a coin toss would be a flaky one."""

    def _transact(self, items: Any) -> bool:
        items = list(items)
        if len(items) < 8 or "Put" not in items[-1]:
            return super()._transact(items)
        half = len(items) // 2
        if not super()._transact(items[:half]):
            return False
        raise SimulatedCrash("died between the two transactions of one claim")


_MUTANT_STORES: dict[str, type[Store]] = {
    "version-off": _VersionOff,
    "start-unrecognised": _StartUnrecognised,
    "claim-split": _ClaimSplit,
}


@contextlib.contextmanager
def _mutation(mutant: str | None) -> Iterator[None]:
    if mutant != "tick-trusted":
        yield
        return
    original = dispatch_service.tick_out_of_range
    dispatch_service.tick_out_of_range = lambda tick, now: None  # type: ignore[assignment]
    try:
        yield
    finally:
        dispatch_service.tick_out_of_range = original


@contextlib.contextmanager
def _quick_backoff() -> Iterator[None]:
    """botocore's back-off, 50 times shorter: the soak sleeps in real time, and at a 5% fault
    rate the throttling back-off alone (a second, doubling) would make a month take hours. The
    retries themselves, their number and their order, are botocore's own."""
    from botocore.retries.standard import ExponentialBackoff

    scales = ExponentialBackoff._DEFAULT_BACKOFF_CONFIG
    saved = dict(scales)
    scales["throttling_base_scale"] = saved["throttling_base_scale"] / 50
    try:
        yield
    finally:
        scales.update(saved)


def run_soak(config: SoakConfig, engine: DynamoDBLocal | None = None) -> SoakResult:
    with contextlib.ExitStack() as stack:
        if engine is None:
            engine = stack.enter_context(DynamoDBLocal(in_memory=True))
        stack.enter_context(_mutation(config.mutant))
        stack.enter_context(_quick_backoff())
        return Soak(config, engine).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make soak", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--mutant", choices=MUTANTS, help="turn one fix off: the soak must fail")
    args = parser.parse_args(argv)
    # The engine's own log lines (every injected fault makes some) would bury the verdict.
    logging.disable(logging.CRITICAL)
    config = SoakConfig(
        days=args.days,
        tasks=args.tasks,
        seed=args.seed,
        fault_rate=args.fault_rate,
        mutant=args.mutant,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    result = run_soak(config)
    for line in result.lines():
        print(line)
    if args.mutant:
        caught = not result.clean
        print(f"mutant {args.mutant}: {'caught' if caught else 'NOT caught'}")
        return 0 if caught else 1
    print("PASS" if result.clean else "FAIL")
    return 0 if result.clean else 1


if __name__ == "__main__":
    sys.exit(main())
