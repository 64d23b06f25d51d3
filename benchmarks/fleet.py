"""A fleet of registered tasks, written fast: what every benchmark starts from.

``Store.register`` is the real way in, but it costs a read and a conditional update per task:
100,000 of them would take longer than the whole benchmark may. So one task is registered
through ``Store.register``, its stored item is read back as the prototype, and the fleet is
that item cloned with each task's own id, definition, next run and due-index keys, then
batch-written with :func:`put_items`. The shape of a task item is therefore the store's own,
not a copy of it that could drift.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cronfleet.lifecycle.slots import epoch, slot_key
from cronfleet.registry.definition import TaskDefinition, parse_task_definition
from cronfleet.registry.ownership import TaskOwner
from cronfleet.store import DUE_SHARDS, Store, shard_of
from cronfleet_tools.local.dynamodb_local import create_tables_from_template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
TARGET_FUNCTION = "bench-task-fn"
BENCH_OWNER = TaskOwner("arn:aws:cloudformation:us-east-1:123456789012:stack/bench/0", "Bench").key
# What differs from one task to the next; everything else is the prototype's.
PER_TASK_ATTRIBUTES = ("task_id", "definition", "next_run", "due_shard", "due_at")
WRITERS = 8  # parallel BatchWriteItem callers while seeding (not part of any timed figure)


@dataclass(frozen=True)
class Tables:
    tasks: str
    executions: str


@contextlib.contextmanager
def fresh_tables(client: DynamoDBClient, label: str) -> Iterator[Tables]:
    """The template's tables under a new prefix, dropped afterwards (DynamoDB Local keeps every
    item in memory, and each run of each side gets tables of its own)."""
    prefix = f"bench-{label}-{uuid.uuid4().hex[:8]}-"
    names = create_tables_from_template(client, TEMPLATE, prefix)
    try:
        yield Tables(names["TasksTable"], names["ExecutionsTable"])
    finally:
        for name in names.values():
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                client.delete_table(TableName=name)


def task_id(number: int) -> str:
    return f"bench-{number:06d}"


def definition(name: str, schedule: str) -> TaskDefinition:
    return parse_task_definition(name, {"Schedule": schedule, "Function": TARGET_FUNCTION})


def daily_at(moment: datetime) -> str:
    return f"cron({moment.minute} {moment.hour} * * ? *)"


@dataclass(frozen=True)
class Planned:
    """One task of the fleet: its definition (named for the first task using it) and next run."""

    number: int
    definition: TaskDefinition
    due: datetime


def plan_fleet(count: int, due_count: int, tick: datetime) -> list[Planned]:
    """``due_count`` tasks every minute, due at ``tick``; the rest daily, due within a day.

    Every task's next run is its schedule's real next run, as ``register`` would store it.
    """
    every_minute = definition(task_id(0), "rate(1 minute)")
    daily: dict[int, tuple[TaskDefinition, datetime]] = {}
    planned = []
    for number in range(count):
        if number < due_count:
            planned.append(Planned(number, every_minute, tick))
            continue
        offset = 1 + (number - due_count) % (24 * 60 - 1)  # 1..1439 minutes after the tick
        if offset not in daily:
            spec = definition(task_id(number), daily_at(tick + timedelta(minutes=offset)))
            next_run = spec.compiled_schedule().next_run(tick)
            assert next_run is not None
            daily[offset] = (spec, next_run)
        spec, next_run = daily[offset]
        planned.append(Planned(number, spec, next_run))
    return planned


def prototype_item(store: Store, first: Planned, now: datetime) -> dict[str, Any]:
    """Register one task the real way and return its item, as DynamoDB holds it."""
    spec = first.definition.model_copy(update={"name": task_id(first.number)})
    store.register(spec, lambda _after: first.due, now, owner=BENCH_OWNER)
    item = store.client.get_item(
        TableName=store.tasks_table, Key={"task_id": {"S": spec.task_id}}, ConsistentRead=True
    )["Item"]
    missing = [name for name in PER_TASK_ATTRIBUTES if name not in item]
    if missing:
        raise RuntimeError(f"Store.register no longer writes {missing}: update benchmarks/fleet.py")
    return dict(item)


def task_items(prototype: Mapping[str, Any], fleet: Iterable[Planned]) -> Iterator[dict[str, Any]]:
    for planned in fleet:
        name = task_id(planned.number)
        item = dict(prototype)
        item["task_id"] = {"S": name}
        # The same serialisation register() stores: the definition by alias, without Nones.
        item["definition"] = {
            "S": planned.definition.model_copy(update={"name": name}).model_dump_json(
                by_alias=True, exclude_none=True
            )
        }
        item["next_run"] = {"S": slot_key(planned.due)}
        item["due_shard"] = {"N": str(shard_of(name, DUE_SHARDS))}
        item["due_at"] = {"N": str(epoch(planned.due))}
        yield item


def put_items(store: Store, table: str, items: Sequence[Mapping[str, Any]]) -> None:
    """Batch-write items, resubmitting whatever DynamoDB leaves unprocessed."""
    for start in range(0, len(items), 25):
        requests: dict[str, Any] = {
            table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        }
        for attempt in range(10):
            response = store.client.batch_write_item(RequestItems=requests)
            requests = response.get("UnprocessedItems") or {}
            if not requests:
                break
            time.sleep(random.uniform(0, 0.05 * 2**attempt))
        else:
            raise RuntimeError("DynamoDB kept leaving batch writes unprocessed; giving up")


@dataclass(frozen=True)
class Seeded:
    tasks: int
    seconds: float
    items: list[dict[str, Any]]


def seed(store: Store, fleet: list[Planned], now: datetime) -> Seeded:
    """Write the fleet to the store's tasks table; returns the items written and the time."""
    started = time.perf_counter()
    prototype = prototype_item(store, fleet[0], now)
    items = list(task_items(prototype, fleet))
    # Chunks of whole batches (25 items), spread over a few writers.
    chunk = max(25, -(-len(items) // (WRITERS * 25)) * 25)
    chunks = [items[start : start + chunk] for start in range(0, len(items), chunk)]
    with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="seed") as pool:
        list(pool.map(lambda part: put_items(store, store.tasks_table, part), chunks))
    return Seeded(len(items), time.perf_counter() - started, items)
