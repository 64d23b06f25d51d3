"""Performance figure 7 (docs/costs.md): what a run costs, in DynamoDB's own units.

A simulated day of a mixed fleet is replayed on DynamoDB Local with the real engine: the
registry deploys it, the dispatcher ticks every minute (claims, invokes, its watchdog), the
task wrapper runs each invocation, the recorder takes what Lambda would send to the on-failure
destination, and the alerter publishes to a counting notifier. Only Lambda and the scheduler
are played here, without faults or races: this is the cost of the ordinary day.

Every DynamoDB client the engine uses asks for ``ReturnConsumedCapacity="INDEXES"`` on each
request, and the units each response reports are summed per role and step, and per run (the
task and slot a request's key names). A run's units are then averaged over the successful runs
and over the failed or retried ones; the ticks' own cost is measured on a quiet hour of ticks
with nothing due. The full figure writes benchmarks/results/run_cost.json, from which
scripts/costs.py generates docs/costs.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cronfleet import clock as clock_module
from cronfleet.alerts.alerter import Alerter
from cronfleet.dispatch.service import Dispatcher
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.lifecycle.recorder import FailureDestinationRecord, record_failure
from cronfleet.lifecycle.slots import parse_slot
from cronfleet.lifecycle.states import RunStatus
from cronfleet.lifecycle.wrapper import TaskContext, scheduled_task
from cronfleet.registry.custom_resource import CustomResourceEvent, respond
from cronfleet.store import Store
from cronfleet.store.tables import DISPATCHER_ITEM
from cronfleet_tools.local.dynamodb_local import DynamoDBLocal, create_tables_from_template
from cronfleet_tools.local.stack import scheduled_task_request
from cronfleet_tools.template.intrinsics import as_cloudformation_sends

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "template.yaml"
RESULTS = Path(__file__).resolve().parent / "results" / "run_cost.json"
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/cronfleet-cost/0"
MINUTE = timedelta(minutes=1)
# A Wednesday: the weekly task's day, so that it runs once in the replayed day.
START = datetime(2027, 3, 10, tzinfo=UTC)
FULL_HOURS = 24.0
QUICK_HOURS = 2.0
IDLE_TICKS = 60  # the quiet hour on which a tick's own cost is measured
RETRY = {"MaxAttempts": 3, "IntervalSeconds": 60, "BackoffRate": 2, "MaxDelaySeconds": 300}


class Timeout(BaseException):
    """Lambda stopped the sandbox at its timeout, mid-code: the on-failure destination hears."""


@dataclass(frozen=True)
class Plan:
    name: str
    schedule: str
    fail_rate: float = 0.0  # attempts whose code raises: the wrapper records it, then retries
    timeout_rate: float = 0.0  # attempts Lambda kills: the recorder records them


# docs/costs.md's task mix in 20 tasks: 10% every minute, 20% every 5 minutes, 20% every 15,
# 30% hourly, 15% daily, 5% weekly. Failures and timeouts are spread over the schedules, so
# that failed runs of frequent and rare tasks both appear.
FLEET = (
    Plan("minutely-a", "* * * * *", fail_rate=0.02),
    Plan("minutely-b", "* * * * *"),
    Plan("five-a", "*/5 * * * *", fail_rate=0.05),
    Plan("five-b", "*/5 * * * *"),
    Plan("five-c", "*/5 * * * *", timeout_rate=0.03),
    Plan("five-d", "*/5 * * * *"),
    Plan("fifteen-a", "*/15 * * * *", fail_rate=0.1),
    Plan("fifteen-b", "*/15 * * * *"),
    Plan("fifteen-c", "*/15 * * * *"),
    Plan("fifteen-d", "*/15 * * * *", timeout_rate=0.05),
    Plan("hourly-a", "0 * * * *", fail_rate=0.1),
    Plan("hourly-b", "5 * * * *"),
    Plan("hourly-c", "10 * * * *"),
    Plan("hourly-d", "20 * * * *"),
    Plan("hourly-e", "30 * * * *", fail_rate=0.3),
    Plan("hourly-f", "45 * * * *"),
    Plan("daily-a", "0 2 * * *", fail_rate=1.0),  # fails every attempt: a run that gives up
    Plan("daily-b", "30 6 * * *"),
    Plan("daily-c", "0 12 * * *"),
    Plan("weekly-a", "cron(0 9 ? * WED *)"),
)


# --- the meter -------------------------------------------------------------------------------


@dataclass
class Units:
    table_writes: float = 0.0
    index_writes: float = 0.0
    # Of the writes above, those a TransactWriteItems reported (DynamoDB Local bills them,
    # index copies included, at the transactional rate).
    transaction_table_writes: float = 0.0
    transaction_index_writes: float = 0.0
    reads: float = 0.0
    calls: int = 0
    empty_queries: int = 0  # queries Local reported 0 units for (nothing matched)
    unreported: int = 0  # calls answered with an error, which carries no ConsumedCapacity

    def add(self, other: Units, share: float = 1.0) -> None:
        for name in (
            "table_writes",
            "index_writes",
            "transaction_table_writes",
            "transaction_index_writes",
            "reads",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name) * share)
        self.calls += other.calls
        self.empty_queries += other.empty_queries
        self.unreported += other.unreported

    @property
    def writes(self) -> float:
        return self.table_writes + self.index_writes

    def as_json(self, per: float = 1.0) -> dict[str, float]:
        return {
            "table_writes": round(self.table_writes / per, 4),
            "index_writes": round(self.index_writes / per, 4),
            "transaction_table_writes": round(self.transaction_table_writes / per, 4),
            "transaction_index_writes": round(self.transaction_index_writes / per, 4),
            "reads": round(self.reads / per, 4),
            "calls": round(self.calls / per, 4),
            "empty_queries": round(self.empty_queries / per, 4),
        }


WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})
# The step a role's request is, by operation and index; anything else is named by its operation.
STEPS = {
    ("dispatcher", "UpdateItem", DISPATCHER_ITEM): "tick: heartbeat",
    ("dispatcher", "GetItem", DISPATCHER_ITEM): "tick: partitions on record",
    ("dispatcher", "Query", "due-keys-index"): "tick: due tasks",
    ("dispatcher", "Query", "inflight-keys-index"): "watchdog: in-flight runs",
    # The indexes are keys-only: the entries found are then read by key.
    ("dispatcher", "BatchGetItem", "tasks"): "tick: due tasks' items",
    ("dispatcher", "BatchGetItem", "executions"): "watchdog: in-flight runs' items",
    ("dispatcher", "TransactWriteItems", None): "claim",
    # The watchdog dispatches retries: it reads the task, then moves the run to its next attempt.
    ("dispatcher", "GetItem", None): "retry: read the task",
    ("dispatcher", "UpdateItem", None): "retry: next attempt",
    ("wrapper", "UpdateItem", None): "start",
    ("wrapper", "GetItem", None): "read the task",
    ("wrapper", "TransactWriteItems", None): "finish",
}


class Meter:
    """Units DynamoDB reported, per role and step, and per run (task, slot)."""

    def __init__(self) -> None:
        self.steps: dict[tuple[str, str], Units] = defaultdict(Units)
        self.runs: dict[tuple[str, str], Units] = defaultdict(Units)
        self.operations: Counter[str] = Counter()  # operation -> calls that reported units
        self.index_operations: Counter[str] = Counter()  # ... and index units among them
        self.errors: Counter[str] = Counter()
        self.current = threading.local()  # the run a wrapper or recorder is handling
        self._lock = threading.Lock()

    def attach(self, store: Store, role: str) -> Store:
        events = store.client.meta.events
        events.register("before-parameter-build.dynamodb", self._ask)
        events.register("after-call.dynamodb", lambda **kw: self._count(role, **kw))
        return store

    @staticmethod
    def _ask(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        params["ReturnConsumedCapacity"] = "INDEXES"
        context["cost_params"] = params

    def _count(
        self, role: str, parsed: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        operation = model.name
        params = context.get("cost_params", {})
        consumed = parsed.get("ConsumedCapacity")
        units = Units(calls=1)
        if consumed is None and "Error" in parsed:
            units.unreported = 1
            self.errors[f"{role} {operation} {parsed['Error'].get('Code', '')}"] += 1
        for capacity in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
            table = capacity.get("Table", {}).get("CapacityUnits", 0.0)
            indexes = sum(
                index.get("CapacityUnits", 0.0)
                for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes")
                for index in capacity.get(kind, {}).values()
            )
            if operation in WRITES:
                units.table_writes += table
                units.index_writes += indexes
                if operation == "TransactWriteItems":
                    units.transaction_table_writes += table
                    units.transaction_index_writes += indexes
            else:
                units.reads += table + indexes
        if operation == "Query" and units.reads == 0 and consumed is not None:
            units.empty_queries = 1
        step = _step(role, operation, params)
        runs = _runs_named(params) or ([self.current.run] if hasattr(self.current, "run") else [])
        with self._lock:
            self.steps[(role, step)].add(units)
            if consumed is not None:
                self.operations[operation] += 1
                if units.index_writes or (operation == "Query" and "IndexName" in params):
                    self.index_operations[operation] += 1
            # The dispatcher's calls that name a run (a claim, a retry's invoke) are the run's;
            # its others (the heartbeat, the index queries) are the tick's.
            if role in ("wrapper", "recorder", "alerts") or (role == "dispatcher" and runs):
                for run in runs:
                    self.runs[run].add(units, 1 / len(runs))

    def snapshot(self) -> dict[tuple[str, str], Units]:
        with self._lock:
            copy: dict[tuple[str, str], Units] = defaultdict(Units)
            for key, units in self.steps.items():
                copy[key].add(units)
            return copy


def _step(role: str, operation: str, params: Mapping[str, Any]) -> str:
    key = params.get("Key", {}).get("task_id", {}).get("S")
    details = [key if key == DISPATCHER_ITEM else None, params.get("IndexName"), None]
    if operation == "BatchGetItem":  # executions are keyed by slot too, tasks are not
        keys = _batch_keys(params)
        details.insert(0, "executions" if keys and "slot" in keys[0] else "tasks")
    for detail in details:
        if (role, operation, detail) in STEPS:
            return STEPS[(role, operation, detail)]
    index = params.get("IndexName")
    return operation + (f" {index}" if index else "")


def _runs_named(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (task, slot) pairs a request's keys and items name."""
    found: list[tuple[str, str]] = []
    requests = [params] + [
        request for item in params.get("TransactItems", []) for request in item.values()
    ]
    requests += [{"Key": key} for key in _batch_keys(params)]
    for request in requests:
        key = request.get("Key") or request.get("Item") or {}
        task, slot = key.get("task_id", {}).get("S"), key.get("slot", {}).get("S")
        if task and slot and task != DISPATCHER_ITEM and (task, slot) not in found:
            found.append((task, slot))
    return found


def _batch_keys(params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The keys a BatchGetItem asks for, of every table it names."""
    if "RequestItems" not in params or not isinstance(
        next(iter(params["RequestItems"].values()), None), Mapping
    ):
        return []  # a BatchWriteItem's RequestItems are lists of requests
    return [key for table in params["RequestItems"].values() for key in table["Keys"]]


# --- the harness -----------------------------------------------------------------------------


class Clock:
    def __init__(self, at: datetime) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now


class Notifier:
    """SNS, counted: what each publish is for."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.published: Counter[str] = Counter()
        self.by_run: Counter[tuple[str, str]] = Counter()

    def publish(self, alert: Any, links: Any = None) -> str:
        self.published[alert.kind.value] += 1
        run = getattr(self.meter.current, "run", None)
        if run is not None:
            self.by_run[run] += 1
        return str(uuid.uuid4())


def _draw(*parts: object) -> float:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Replay:
    def __init__(self, engine: DynamoDBLocal, meter: Meter, start: datetime) -> None:
        names = create_tables_from_template(
            engine.client(), TEMPLATE, f"cost-{uuid.uuid4().hex[:6]}-"
        )
        self.tables = (names["TasksTable"], names["ExecutionsTable"])
        self.engine = engine
        self.meter = meter
        self.clock = Clock(start)
        self.notifier = Notifier(meter)
        self.counts: Counter[str] = Counter()
        self.invocations: Counter[tuple[str, str]] = Counter()  # per run: task invocations
        self.recorded: Counter[tuple[str, str]] = Counter()  # per run: recorder invocations
        self.queue: list[dict[str, Any]] = []
        self.plans = {plan.name: plan for plan in FLEET}
        self.registry = self._store("registry")
        self.clean = Store(*self.tables, client=engine.client())  # the harness's, not counted
        self.dispatcher = Dispatcher(
            Attempts(self._store("dispatcher"), self, clock=self.clock, alerter=self._alerter())
        )
        wrapper_store = self._store("wrapper")
        self.handler = scheduled_task(
            store=wrapper_store, clock=self.clock, alerter=self._alerter()
        )(self._code)
        self.recorder = Attempts(self._store("recorder"), clock=self.clock, alerter=self._alerter())

    def _store(self, role: str) -> Store:
        return self.meter.attach(Store(*self.tables, client=self.engine.client()), role)

    def _alerter(self) -> Alerter:
        # Alerts' own writes (when each kind was last sent) are the alerter's, counted apart.
        return Alerter(self._store("alerts"), self.notifier, clock=self.clock)  # type: ignore[arg-type]

    # Lambda's asynchronous Invoke, as the dispatcher sees it.
    def invoke(self, function: str, event: dict[str, Any]) -> None:
        self.queue.append(event)

    def deploy(self, plans: Iterator[Plan] | tuple[Plan, ...], *, first: bool) -> None:
        for plan in plans:
            properties = as_cloudformation_sends(
                {"Schedule": plan.schedule, "Retry": RETRY, "Function": "cost-task"}
            )
            event = scheduled_task_request(
                "Create" if first else "Update",
                plan.name,
                stack_id=STACK_ID,
                response_url="http://127.0.0.1/cost",
                properties=properties,
                physical_id=None if first else plan.name,
                old_properties=None if first else properties,
            )
            response = respond(
                event, CustomResourceEvent.model_validate(event), self.registry, self.clock()
            )
            assert response.status == "SUCCESS", response

    def replay(self, until: datetime) -> None:
        while self.clock.now < until:
            self.dispatcher.tick(self.clock.now)
            self.counts["ticks"] += 1
            self.deliver()
            self.clock.now += MINUTE

    def deliver(self) -> None:
        queued, self.queue = self.queue, []
        for event in queued:
            run = (event["cronfleet"]["task_id"], event["cronfleet"]["slot"])
            self.meter.current.run = run
            self.invocations[run] += 1
            self.counts["task_invocations"] += 1
            context = _Context()
            try:
                self.handler(event, context)
            except Timeout:
                self.counts["timeouts"] += 1
                self.recorded[run] += 1
                self.counts["recorder_invocations"] += 1
                record_failure(
                    self.recorder, _destination_record(event, context.aws_request_id, self.clock())
                )
            finally:
                del self.meter.current.run

    def _code(self, task: TaskContext) -> dict[str, Any]:
        plan = self.plans[task.task_id]
        draw = _draw(task.task_id, task.slot, task.attempt)
        if draw < plan.timeout_rate:
            raise Timeout()
        if draw < plan.timeout_rate + plan.fail_rate:
            raise RuntimeError("the code failed")
        return {"ok": True}


class _Context:
    aws_request_id = ""
    function_name = "cost-task"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _destination_record(
    event: dict[str, Any], request_id: str, now: datetime
) -> FailureDestinationRecord:
    return FailureDestinationRecord.model_validate(
        {
            "version": "1.0",
            "timestamp": now.isoformat(),
            "requestContext": {
                "requestId": request_id,
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:cost:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 1,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out"},
        }
    )


# --- the figure ------------------------------------------------------------------------------


@dataclass
class RunCost:
    hours: float
    tasks: int
    ticks: int
    runs: dict[str, int]  # succeeded (first attempt), failed or retried, unfinished
    per_run: dict[str, dict[str, float]]  # kind -> units per run
    per_idle_tick: dict[str, float]
    per_busy_tick: dict[str, float]
    steps: dict[str, dict[str, float]]  # role: step -> units over the replayed day
    lambda_per_run: dict[str, dict[str, float]]
    sns_per_run: dict[str, float]
    sns_by_kind: dict[str, int]
    deploy_per_task: dict[str, dict[str, float]]  # create, update -> units per task
    reported: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        lines = [
            f"replayed {self.hours:g} h of {self.tasks} tasks: {self.ticks:,} ticks, runs "
            + ", ".join(f"{kind} {count:,}" for kind, count in self.runs.items())
        ]
        for kind, units in self.per_run.items():
            invocations = self.lambda_per_run[kind]
            lines.append(
                f"  per {kind} run: {units['table_writes'] + units['index_writes']:.2f} WRU "
                f"({units['table_writes']:.2f} table, {units['index_writes']:.2f} index), "
                f"{units['reads']:.2f} RRU; {invocations['task_invocations']:.3f} task and "
                f"{invocations['recorder_invocations']:.3f} recorder invocations, "
                f"{self.sns_per_run[kind]:.3f} SNS publishes"
            )
        idle = self.per_idle_tick
        lines.append(
            f"  per idle tick: {idle['table_writes'] + idle['index_writes']:.2f} WRU, "
            f"{idle['reads']:.2f} RRU, {idle['calls']:.0f} calls "
            f"({idle['empty_queries']:.0f} empty queries)"
        )
        for kind, units in self.deploy_per_task.items():
            lines.append(
                f"  per task deployed ({kind}): {units['table_writes'] + units['index_writes']:.2f}"
                f" WRU, {units['reads']:.2f} RRU"
            )
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "figure": "run-cost",
            "hours": self.hours,
            "tasks": self.tasks,
            "ticks": self.ticks,
            "runs": self.runs,
            "per_run": self.per_run,
            "per_idle_tick": self.per_idle_tick,
            "per_busy_tick": self.per_busy_tick,
            "lambda_per_run": self.lambda_per_run,
            "sns_per_run": self.sns_per_run,
            "sns_by_kind": self.sns_by_kind,
            "deploy_per_task": self.deploy_per_task,
            "steps": self.steps,
            "dynamodb_local_reports": self.reported,
        }


def _diff(after: dict[tuple[str, str], Units], before: dict[tuple[str, str], Units]) -> Units:
    total = Units()
    for key, units in after.items():
        total.add(units)
        if key in before:
            total.add(before[key], -1.0)
    # calls and counters were added, not subtracted, by add(): recount them
    total.calls = sum(u.calls for u in after.values()) - sum(u.calls for u in before.values())
    total.empty_queries = sum(u.empty_queries for u in after.values()) - sum(
        u.empty_queries for u in before.values()
    )
    total.unreported = sum(u.unreported for u in after.values()) - sum(
        u.unreported for u in before.values()
    )
    return total


def measure(
    engine: DynamoDBLocal, *, hours: float = FULL_HOURS, say: Callable[[str], None] = print
) -> RunCost:
    # The engine's own log lines (a failing task logs its traceback) would bury the figure.
    logging.disable(logging.CRITICAL)
    try:
        return _measure(engine, hours, say)
    finally:
        logging.disable(logging.NOTSET)


def _measure(engine: DynamoDBLocal, hours: float, say: Callable[[str], None]) -> RunCost:
    meter = Meter()
    replay = Replay(engine, meter, START - timedelta(minutes=5))
    clock_module.use(replay.clock)
    try:
        replay.deploy(FLEET, first=True)
        created = meter.snapshot()
        replay.deploy(FLEET, first=False)
        updated = meter.snapshot()
        # A few quiet ticks before the first slot, so the day starts on a dispatcher that has
        # ticked before (no gap to record on its first tick).
        replay.replay(START)
        before_day = meter.snapshot()
        ticks_before = replay.counts["ticks"]
        end = START + timedelta(hours=hours)
        say(f"  replaying {hours:g} h of {len(FLEET)} tasks from {START:%Y-%m-%d %H:%M} UTC")
        replay.replay(end)
        after_day = meter.snapshot()
        day_ticks = replay.counts["ticks"] - ticks_before
    finally:
        clock_module.use(None)

    # The ticks' own cost: an hour of ticks with nothing due, on fresh tables holding one task
    # that runs next week.
    idle_meter = Meter()
    idle = Replay(engine, idle_meter, START + timedelta(hours=1, minutes=1))
    clock_module.use(idle.clock)
    try:
        idle.deploy((Plan("weekly-a", "cron(0 9 ? * WED *)"),), first=True)
        idle.replay(idle.clock.now + 5 * MINUTE)
        quiet_before = idle_meter.snapshot()
        idle.replay(idle.clock.now + IDLE_TICKS * MINUTE)
        idle_units = _diff(idle_meter.snapshot(), quiet_before)
        assert not idle.counts["task_invocations"], "the quiet hour had work"
    finally:
        clock_module.use(None)

    # What each slot of the day became, from the ledger.
    kinds: dict[tuple[str, str], str] = {}
    for plan in FLEET:
        for execution in replay.clean.executions(plan.name):
            if not START <= parse_slot(execution.slot) < end:
                continue
            final = execution.status in (
                RunStatus.SUCCEEDED,
                RunStatus.FAILED,
                RunStatus.TIMED_OUT,
                RunStatus.LOST,
            )
            if execution.status in (RunStatus.SKIPPED, RunStatus.MISSED):
                kind = "skipped"  # not run: the overlap policy, a retry still running
            elif not final:
                kind = "unfinished"
            elif execution.status is RunStatus.SUCCEEDED and len(execution.attempts) == 1:
                kind = "successful"
            else:
                kind = "failed"
            kinds[(plan.name, execution.slot)] = kind
    runs = Counter(kinds.values())
    # The due-index reads of busy ticks are the due tasks' items: a share of them per attempt
    # dispatched, beyond what an idle tick's queries read.
    due_steps = ("tick: due tasks", "tick: due tasks' items")
    due_reads = sum(
        units.reads for (role, step), units in after_day.items() if step in due_steps
    ) - sum(u.reads for (r, s), u in before_day.items() if s in due_steps)
    due_reads -= idle_units.reads / IDLE_TICKS * day_ticks if idle_units.reads else 0.0
    attempts = {run: max(1, replay.invocations[run]) for run in kinds}
    total_attempts = sum(attempts[run] for run in kinds if kinds[run] in ("successful", "failed"))

    per_run: dict[str, dict[str, float]] = {}
    lambda_per_run: dict[str, dict[str, float]] = {}
    sns_per_run: dict[str, float] = {}
    for kind in ("successful", "failed"):
        members = [run for run, k in kinds.items() if k == kind]
        total = Units()
        for run in members:
            total.add(meter.runs.get(run, Units()))
            total.reads += due_reads * attempts[run] / total_attempts
        if kind == "failed":
            # A slot is skipped only while a retry of the one before holds the task: what
            # recording it cost is the failure's.
            for run in (run for run, k in kinds.items() if k == "skipped"):
                total.add(meter.runs.get(run, Units()))
        count = max(1, len(members))
        per_run[kind] = total.as_json(count)
        lambda_per_run[kind] = {
            "task_invocations": round(sum(replay.invocations[r] for r in members) / count, 4),
            "recorder_invocations": round(sum(replay.recorded[r] for r in members) / count, 4),
        }
        sns_per_run[kind] = round(sum(replay.notifier.by_run[r] for r in members) / count, 4)

    day = _diff(after_day, before_day)
    attributed = Units()
    for run in kinds:
        attributed.add(meter.runs.get(run, Units()))
    # The day's own units, step by step: less the deploys and the quiet ticks before it.
    steps = {
        f"{role} / {step}": _diff(
            {key: units}, {key: before_day[key]} if key in before_day else {}
        ).as_json()
        for key, units in sorted(after_day.items())
        for role, step in [key]
        if role != "registry"
    }
    deploy = {
        "create": _diff(created, {}).as_json(len(FLEET)),
        "update": _diff(updated, created).as_json(len(FLEET)),
    }
    busy_tick = Units()
    for (_role, step), units in after_day.items():
        if step.startswith(("tick:", "watchdog:")):
            busy_tick.add(units)
    for (_role, step), units in before_day.items():
        if step.startswith(("tick:", "watchdog:")):
            busy_tick.add(units, -1.0)
    reported = {
        "operations_reporting_units": dict(sorted(meter.operations.items())),
        "operations_reporting_index_units": dict(sorted(meter.index_operations.items())),
        "errors_without_units": dict(sorted(meter.errors.items())),
        "empty_queries_reported_zero": day.empty_queries,
        "day_writes": round(day.writes, 1),
        "day_writes_attributed_to_runs": round(attributed.writes, 1),
        "day_writes_of_ticks": round(busy_tick.writes, 1),
    }
    return RunCost(
        hours=hours,
        tasks=len(FLEET),
        ticks=day_ticks,
        runs={
            kind: runs.get(kind, 0) for kind in ("successful", "failed", "skipped", "unfinished")
        },
        per_run=per_run,
        per_idle_tick=idle_units.as_json(IDLE_TICKS),
        per_busy_tick={
            "writes": round(busy_tick.writes / day_ticks, 4),
            "reads_beyond_due_items": round((busy_tick.reads - due_reads) / day_ticks, 4),
        },
        steps=steps,
        lambda_per_run=lambda_per_run,
        sns_per_run=sns_per_run,
        sns_by_kind=dict(sorted(replay.notifier.published.items())),
        deploy_per_task=deploy,
        reported=reported,
    )


def write_results(result: RunCost, path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.as_json(), indent=2, sort_keys=True) + "\n")


# Every unit of the day must belong to a run or to a tick, or the per-run figures miss some.
COVERAGE_TARGET = 0.99


def coverage(result: RunCost) -> float:
    reported = result.reported
    if not reported["day_writes"]:
        return 0.0
    counted = reported["day_writes_attributed_to_runs"] + reported["day_writes_of_ticks"]
    return float(counted / reported["day_writes"])


def report(
    *, quick: bool, say: Callable[[str], None], engine: DynamoDBLocal
) -> list[tuple[str, str, str, float, str, bool]]:
    """Measure, say what was measured, write the JSON (full figure only), and give the rows of
    `make bench`'s table (figure, cronfleet, baseline, ratio, target, passed)."""
    hours = QUICK_HOURS if quick else FULL_HOURS
    say(
        f"\n7. run cost: {hours:g} simulated hours of a mixed fleet, DynamoDB's own "
        "ReturnConsumedCapacity on every call of the engine"
    )
    result = measure(engine, hours=hours, say=say)
    for line in result.lines():
        say(f"  {line}")
    if quick:
        say(f"  --quick: {RESULTS.relative_to(REPO_ROOT)} left as it is")
    else:
        write_results(result)
        say(f"  written to {RESULTS.relative_to(REPO_ROOT)}; make cost regenerates docs/costs.md")
    ratio = coverage(result)
    success = result.per_run["successful"]
    return [
        (
            "run cost (units a run)",
            f"{success['table_writes'] + success['index_writes']:.1f} WRU, "
            f"{success['reads']:.2f} RRU a successful run",
            f"{result.per_idle_tick['table_writes'] + result.per_idle_tick['index_writes']:.1f}"
            " WRU an idle tick",
            ratio,
            f">= {COVERAGE_TARGET:g} of the day's writes attributed",
            ratio >= COVERAGE_TARGET and result.runs["failed"] > 0,
        )
    ]
