"""Performance figures 1 and 2 (docs/architecture.md): what a tick reads, what dispatching costs.

Both run against DynamoDB Local on tables built from template.yaml, a fresh pair per run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from benchmarks import fleet
from cronfleet.dispatch.service import Dispatcher
from cronfleet.invoker import NoopInvoker
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.store import INFLIGHT_SHARDS, Store, shard_of

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


WARM_UP_TASKS = 2000


def current_tick() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


# --- 1. reads per tick -----------------------------------------------------------------------


@dataclass(frozen=True)
class TickReads:
    registered: int
    due: int
    found: int  # what due_tasks returned
    items_read: int
    queries: int
    seconds: float  # the due_tasks call
    seed_seconds: float


def reads_per_tick(client: DynamoDBClient, registered: int, due: int) -> TickReads:
    tick = current_tick()
    with fleet.fresh_tables(client, "reads") as tables:
        store = Store(tables.tasks, tables.executions, client=client)
        seeded = fleet.seed(store, fleet.plan_fleet(registered, due, tick), tick)

        queries = items_read = 0

        def count_query(parsed: dict[str, Any], **_: Any) -> None:
            nonlocal queries, items_read
            queries += 1
            items_read += len(parsed.get("Items", []))

        # botocore's own event hook: every Query the store sends, and the items it returned,
        # counted without touching the store.
        client.meta.events.register("after-call.dynamodb.Query", count_query)
        try:
            started = time.perf_counter()
            found = store.due_tasks(tick)
            seconds = time.perf_counter() - started
        finally:
            client.meta.events.unregister("after-call.dynamodb.Query", count_query)
        return TickReads(
            registered=seeded.tasks,
            due=due,
            found=len(found),
            items_read=items_read,
            queries=queries,
            seconds=seconds,
            seed_seconds=seeded.seconds,
        )


# --- 2. dispatch throughput ------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    seconds: float  # wall time of the dispatch
    cpu_seconds: float  # this process's CPU time meanwhile, all threads
    seed_seconds: float  # writing the due tasks first (not timed)
    written: tuple[frozenset[str], frozenset[str]]  # attributes of one task and its execution


@dataclass
class Throughput:
    tasks: int
    parallel: int
    warm_up_tasks: int
    cronfleet: list[Run] = field(default_factory=list)
    baseline: list[Run] = field(default_factory=list)

    @staticmethod
    def median(runs: list[Run]) -> float:
        return statistics.median(run.seconds for run in runs)

    @property
    def round_ratios(self) -> list[float]:
        """Each round's cronfleet run against the baseline run next to it: drift in the
        machine's load falls on both sides of a round alike."""
        return [
            ours.seconds / bare.seconds
            for ours, bare in zip(self.cronfleet, self.baseline, strict=True)
        ]

    @property
    def ratio(self) -> float:
        return statistics.median(self.round_ratios)


def _dispatch_with_cronfleet(
    client: DynamoDBClient, tables: fleet.Tables, tick: datetime, parallel: int
) -> int:
    store = Store(tables.tasks, tables.executions, client=client)
    report = Dispatcher(Attempts(store, NoopInvoker()), max_parallel=parallel).tick(tick)
    if report.errors:
        raise RuntimeError(f"the dispatcher reported errors, e.g. {report.errors[:3]}")
    return report.claimed


def bare_claim(
    client: DynamoDBClient, tables: fleet.Tables, tick: datetime, now: datetime
) -> Callable[[tuple[str, int]], None]:
    """The baseline: the writes ``Store.claim`` makes for one on-time run, in plain boto3.

    One transaction per task: the conditional Put of the PENDING execution and the conditional
    Update that advances the task's due_at (and next_run, active_slots, last_dispatched_at).
    """
    slot = tick.strftime("%Y-%m-%dT%H:%M:%SZ")
    now_text = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    next_due = tick + timedelta(minutes=1)
    dispatched_at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    deadline = str(int((now + timedelta(minutes=3)).timestamp()))
    expires = str(int((now + timedelta(days=90)).timestamp()))

    def claim(task: tuple[str, int]) -> None:
        task_id, due_at = task
        client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": tables.tasks,
                        "Key": {"task_id": {"S": task_id}},
                        "UpdateExpression": (
                            "SET last_dispatched_at = :now, #due = :due, next_run = :next "
                            "ADD active_slots :runs"
                        ),
                        "ConditionExpression": "#due = :old_due",
                        "ExpressionAttributeNames": {"#due": "due_at"},
                        "ExpressionAttributeValues": {
                            ":old_due": {"N": str(due_at)},
                            ":now": {"S": now_text},
                            ":due": {"N": str(int(next_due.timestamp()))},
                            ":next": {"S": next_due.strftime("%Y-%m-%dT%H:%M:%SZ")},
                            ":runs": {"SS": [slot]},
                        },
                    }
                },
                {
                    "Put": {
                        "TableName": tables.executions,
                        "Item": {
                            "task_id": {"S": task_id},
                            "slot": {"S": slot},
                            "status": {"S": "PENDING"},
                            "trigger": {"S": "schedule"},
                            "attempt": {"N": "1"},
                            "timeout_seconds": {"N": "900"},
                            "attempts": {
                                "L": [
                                    {
                                        "M": {
                                            "attempt": {"N": "1"},
                                            "status": {"S": "PENDING"},
                                            "dispatched_at": {"S": dispatched_at},
                                        }
                                    }
                                ]
                            },
                            "inflight_shard": {"N": str(shard_of(task_id, INFLIGHT_SHARDS))},
                            "deadline_at": {"N": deadline},
                            "expires_at": {"N": expires},
                        },
                        "ConditionExpression": "attribute_not_exists(slot)",
                    }
                },
            ]
        )

    return claim


def _written(client: DynamoDBClient, tables: fleet.Tables, task_id: str) -> Any:
    task = client.get_item(TableName=tables.tasks, Key={"task_id": {"S": task_id}})["Item"]
    executions = client.query(
        TableName=tables.executions,
        KeyConditionExpression="task_id = :task",
        ExpressionAttributeValues={":task": {"S": task_id}},
    )["Items"]
    return frozenset(task), frozenset(executions[0])


def _dispatch_with_boto3(
    client: DynamoDBClient,
    tables: fleet.Tables,
    tick: datetime,
    parallel: int,
    tasks: list[tuple[str, int]],
) -> int:
    claim = bare_claim(client, tables, tick, datetime.now(UTC))
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="bare") as pool:
        list(pool.map(claim, tasks))
    return len(tasks)


def _executions(client: DynamoDBClient, table: str) -> int:
    count = 0
    for page in client.get_paginator("scan").paginate(TableName=table, Select="COUNT"):
        count += page["Count"]
    return count


def one_run(client: DynamoDBClient, side: str, tasks: int, parallel: int) -> Run:
    """Seed ``tasks`` due tasks on fresh tables, then time one side dispatching them.

    The baseline does the writes only: it is handed the due tasks, where the dispatcher also
    queries them, records the tick and runs the watchdog, all inside its time.
    """
    tick = current_tick()
    with fleet.fresh_tables(client, side) as tables:
        store = Store(tables.tasks, tables.executions, client=client)
        seeded = fleet.seed(store, fleet.plan_fleet(tasks, tasks, tick), tick)
        due = [(item["task_id"]["S"], int(item["due_at"]["N"])) for item in seeded.items]
        started, cpu_started = time.perf_counter(), time.process_time()
        if side == "cronfleet":
            done = _dispatch_with_cronfleet(client, tables, tick, parallel)
        else:
            done = _dispatch_with_boto3(client, tables, tick, parallel, due)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        written = _executions(client, tables.executions)
        if done != tasks or written != tasks:
            raise RuntimeError(f"{side}: {done} claimed, {written} executions, for {tasks} tasks")
        return Run(seconds, cpu_seconds, seeded.seconds, _written(client, tables, due[0][0]))


def dispatch_throughput(
    client: DynamoDBClient,
    tasks: int,
    parallel: int,
    rounds: int,
    progress: Callable[[str], None],
) -> Throughput:
    """Both sides, ``rounds`` times each, alternating, after an untimed warm-up of each.

    DynamoDB Local's JIT keeps getting faster over its first several thousand transactions, so
    without the warm-up the first side timed pays for it. The order flips every round (A B,
    B A, ...), so what drift remains falls on both sides alike.
    """
    result = Throughput(tasks=tasks, parallel=parallel, warm_up_tasks=min(tasks, WARM_UP_TASKS))
    sides = {"cronfleet": result.cronfleet, "boto3": result.baseline}
    written = {}
    for side in sides:
        run = one_run(client, side, result.warm_up_tasks, parallel)
        written[side] = run.written
        progress(f"  warm-up   {side:<9} {result.warm_up_tasks:>7,} tasks {run.seconds:7.2f} s")
    # The baseline is only a baseline while it writes what Store.claim writes.
    if written["cronfleet"] != written["boto3"]:
        raise RuntimeError(
            "the bare boto3 loop no longer writes what Store.claim writes; update bare_claim: "
            f"{written}"
        )
    for number in range(1, rounds + 1):
        order = list(sides) if number % 2 else list(reversed(sides))
        for side in order:
            run = one_run(client, side, tasks, parallel)
            sides[side].append(run)
            progress(f"  round {number}/{rounds} {side:<9} {tasks:>7,} tasks {run.seconds:7.2f} s")
    return result
