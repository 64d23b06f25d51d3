"""Performance figure 5 (docs/costs.md): a busy tick fanned out over the dispatch shards.

100,000 tasks due in one minute, against DynamoDB Local. The dispatcher opens the tick and hands
each shard to a worker; each worker then dispatches its shard with the worker function's own
clients (cronfleet's client configuration) and a Lambda client whose every Invoke takes 20 ms
and answers 202, as Lambda's asynchronous Invoke does. The Invoke goes through botocore in full
(serialising, signing, parsing), so its CPU is measured, not left out; only the network is
simulated.

The shards run one after another, so each one's wall time and CPU are its own. This machine's
wall time says little about AWS (DynamoDB Local shares two cores with the workers); the CPU per
task does, and docs/costs.md projects each shard's time on Lambda from it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.awsrequest import AWSResponse

from benchmarks import fleet
from benchmarks.dispatch import current_tick
from cronfleet.dispatch.events import ShardEvent
from cronfleet.dispatch.service import Dispatcher
from cronfleet.dispatch.shards import ShardHandOff
from cronfleet.invoker import CLIENT_CONFIG as LAMBDA_CLIENT_CONFIG
from cronfleet.invoker import LambdaInvoker, NoopInvoker
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.store import DUE_SHARDS, Store
from cronfleet.store.tables import CLIENT_CONFIG

if TYPE_CHECKING:
    from cronfleet_tools.local.dynamodb_local import DynamoDBLocal

INVOKE_LATENCY_SECONDS = 0.020
WORKER = "DispatchWorkerFunction"
TEMPLATE = fleet.TEMPLATE

# --- the projection to Lambda (docs/costs.md states each of these) ------------------------------
# A worker's time: its timeout (60 s) less the 10 s before the end in which it starts no claim.
CLAIMING_WINDOW_SECONDS = 50.0
# Lambda gives a function one vCPU at 1,769 MB, and CPU in proportion below it. A Python worker
# uses one core at most (the GIL), so more memory than that buys it nothing.
FULL_VCPU_MB = 1769
# Assumed, not measured: a Lambda arm64 vCPU runs this CPython up to a quarter slower than one
# core of the machine the bench ran on.
LAMBDA_CPU_SLOWDOWN = 1.25
# Assumed: a TransactWriteItems of two items within a region, DynamoDB's single-digit ms.
AWS_CLAIM_SECONDS = 0.010
# Assumed: the worker's init on a cold start (imports and clients; measured locally at about a
# third of this in figure 3), paid once per worker a busy minute.
WORKER_COLD_START_SECONDS = 1.0


@dataclass(frozen=True)
class ShardRun:
    shard: int
    tasks: int
    seconds: float
    cpu_seconds: float  # this process, all threads: the worker's Python, not DynamoDB Local's
    reads_cpu_seconds: float  # reading the shard's due tasks alone, before the dispatch

    @property
    def cpu_ms_per_task(self) -> float:
        return self.cpu_seconds / self.tasks * 1000


@dataclass
class Fanout:
    tasks: int
    shards: int
    seed_seconds: float = 0.0
    open_seconds: float = 0.0  # the dispatcher's tick: open, probe the partitions, hand off
    handed_off: int = 0
    runs: list[ShardRun] = field(default_factory=list)
    claims_only_cpu_ms: float = 0.0  # CPU per task of a shard dispatched with a no-op invoker
    invoked: int = 0

    @property
    def cpu_ms_per_task(self) -> float:
        return sum(r.cpu_seconds for r in self.runs) / sum(r.tasks for r in self.runs) * 1000

    @property
    def reads_cpu_ms_per_task(self) -> float:
        return sum(r.reads_cpu_seconds for r in self.runs) / sum(r.tasks for r in self.runs) * 1000

    @property
    def largest_shard(self) -> int:
        return max(r.tasks for r in self.runs)

    def projection(self, parallel: int = 32) -> Projection:
        return Projection(
            tasks=self.largest_shard,
            cpu_ms_per_task=self.cpu_ms_per_task,
            memory_mb=worker_memory_mb(),
            parallel=parallel,
        )

    @property
    def slowest_shard_seconds(self) -> float:
        return max(r.seconds for r in self.runs)

    @property
    def median_shard_seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)


@dataclass(frozen=True)
class Projection:
    """One shard's time on Lambda, from the CPU per task measured here."""

    tasks: int  # the largest shard's
    cpu_ms_per_task: float
    memory_mb: int
    parallel: int

    @property
    def vcpu(self) -> float:
        return min(1.0, self.memory_mb / FULL_VCPU_MB)

    @property
    def cpu_bound_seconds(self) -> float:
        return self.tasks * self.cpu_ms_per_task / 1000 * LAMBDA_CPU_SLOWDOWN / self.vcpu

    @property
    def wait_bound_seconds(self) -> float:
        # Every task waits for its claim and then its Invoke; the worker's threads wait at once.
        return self.tasks * (AWS_CLAIM_SECONDS + INVOKE_LATENCY_SECONDS) / self.parallel

    @property
    def shard_seconds(self) -> float:
        return WORKER_COLD_START_SECONDS + max(self.cpu_bound_seconds, self.wait_bound_seconds)

    def lines(self) -> list[str]:
        return [
            f"projected for Lambda at {self.memory_mb:,} MB ({self.vcpu:.2f} vCPU), largest "
            f"shard {self.tasks:,} tasks:",
            f"  CPU: {self.tasks:,} x {self.cpu_ms_per_task:.2f} ms x {LAMBDA_CPU_SLOWDOWN:g} "
            f"/ {self.vcpu:.2f} = {self.cpu_bound_seconds:.1f} s",
            f"  waiting: {self.tasks:,} x ({AWS_CLAIM_SECONDS * 1000:.0f} ms claim + "
            f"{INVOKE_LATENCY_SECONDS * 1000:.0f} ms Invoke) / {self.parallel} threads = "
            f"{self.wait_bound_seconds:.1f} s",
            f"  a shard: {WORKER_COLD_START_SECONDS:g} s cold start + the larger = "
            f"{self.shard_seconds:.1f} s, against the {CLAIMING_WINDOW_SECONDS:.0f} s one "
            "worker invocation claims for",
        ]


def worker_memory_mb() -> int:
    """The dispatch worker's MemorySize in template.yaml: the projection follows the template."""
    from cronfleet_tools.template import load_template

    worker = load_template(TEMPLATE)["Resources"]["DispatchWorkerFunction"]
    return int(worker["Properties"]["MemorySize"])


class SimulatedLambda:
    """A botocore Lambda client whose Invoke waits 20 ms and answers 202, counting calls."""

    def __init__(self, endpoint_region: str) -> None:
        import boto3

        self.calls = 0
        self.client = boto3.client(
            "lambda",
            region_name=endpoint_region,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=LAMBDA_CLIENT_CONFIG,
        )
        self.client.meta.events.register("before-send.lambda.Invoke", self._answer)

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        time.sleep(INVOKE_LATENCY_SECONDS)
        self.calls += 1
        return AWSResponse(request.url, 202, {"x-amzn-RequestId": "bench"}, None)


class _Recorded:
    """The dispatcher's hand-offs, kept for the benchmark to run one by one."""

    def __init__(self) -> None:
        self.events: list[ShardEvent] = []

    def invoke(self, function: str, event: dict[str, Any]) -> None:
        self.events.append(ShardEvent.model_validate(event))


def _store(engine: DynamoDBLocal, tables: fleet.Tables) -> Store:
    # A worker's own client, configured as the function's: its pool, its retries.
    return Store(tables.tasks, tables.executions, client=engine.client(CLIENT_CONFIG))


def measure(
    engine: DynamoDBLocal,
    tasks: int,
    progress: Callable[[str], None],
    *,
    parallel: int = 32,
    warm_up: int = 2000,
) -> Fanout:
    tick = current_tick()
    result = Fanout(tasks=tasks, shards=DUE_SHARDS)
    with fleet.fresh_tables(engine.client(), "fanout") as tables:
        store = _store(engine, tables)
        result.seed_seconds = fleet.seed(store, fleet.plan_fleet(tasks, tasks, tick), tick).seconds
        progress(f"  seeded {tasks:,} due tasks in {result.seed_seconds:.0f} s")
        _warm_up(engine, tick, warm_up)

        recorded = _Recorded()
        dispatcher = Dispatcher(
            Attempts(store, NoopInvoker()), hand_off=ShardHandOff(recorded, WORKER)
        )
        started = time.perf_counter()
        report = dispatcher.tick(tick)
        result.open_seconds = time.perf_counter() - started
        result.handed_off = report.handed_off
        progress(
            f"  dispatcher: tick opened and {report.handed_off} shards handed off in "
            f"{result.open_seconds * 1000:.0f} ms"
        )
        lambda_api = SimulatedLambda(engine.region_name)
        for event in recorded.events:
            worker_store = _store(engine, tables)
            reads_started = time.process_time()
            due = len(worker_store.due_tasks(tick, event.partitions))
            reads_cpu = time.process_time() - reads_started
            worker = Dispatcher(
                Attempts(worker_store, LambdaInvoker(lambda_api.client)), max_parallel=parallel
            )
            started, cpu_started = time.perf_counter(), time.process_time()
            shard = worker.dispatch_shard(tick, event.partitions)
            run = ShardRun(
                event.shard,
                shard.claimed,
                time.perf_counter() - started,
                time.process_time() - cpu_started,
                reads_cpu,
            )
            if shard.errors or shard.claimed != due or shard.invoked != due:
                raise RuntimeError(
                    f"shard {event.shard}: {due} due, {shard.claimed} claimed, "
                    f"{shard.invoked} invoked, errors {shard.errors[:3]}"
                )
            result.runs.append(run)
            progress(
                f"  shard {run.shard}: {run.tasks:,} tasks in {run.seconds:5.1f} s, "
                f"CPU {run.cpu_seconds:5.1f} s ({run.cpu_ms_per_task:.2f} ms/task)"
            )
        result.invoked = lambda_api.calls
    result.claims_only_cpu_ms = _claims_only_cpu(engine, tick, min(tasks // result.shards, 5000))
    return result


def _claims_only_cpu(engine: DynamoDBLocal, tick: datetime, tasks: int) -> float:
    """CPU per task of one shard's worth of claims with no Invoke at all: the claim's share."""
    with fleet.fresh_tables(engine.client(), "claims") as tables:
        store = _store(engine, tables)
        fleet.seed(store, fleet.plan_fleet(tasks, tasks, tick), tick)
        worker = Dispatcher(Attempts(store, NoopInvoker()))
        cpu_started = time.process_time()
        report = worker.dispatch_shard(tick, range(store.due_shards))
        if report.claimed != tasks:
            raise RuntimeError(f"claims only: {report.claimed} of {tasks} claimed")
        return (time.process_time() - cpu_started) / tasks * 1000


def _warm_up(engine: DynamoDBLocal, tick: datetime, tasks: int) -> None:
    """DynamoDB Local's JIT speeds up over its first thousands of transactions; not timed."""
    with fleet.fresh_tables(engine.client(), "warm") as tables:
        store = _store(engine, tables)
        fleet.seed(store, fleet.plan_fleet(tasks, tasks, tick), tick)
        Dispatcher(Attempts(store, NoopInvoker())).dispatch_shard(tick, range(store.due_shards))
