"""Sharded dispatch on DynamoDB Local: the dispatcher hands busy shards to workers, a worker short
of time hands the rest to a continuation, and across all of them, under faults, every due slot
is claimed and invoked exactly once.

The ledger is the oracle: after the workers and the watchdog are done, every task has exactly
one entry for the tick's slot and was invoked for it exactly once.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from cronfleet.dispatch.events import MAX_CONTINUATIONS, ShardEvent
from cronfleet.dispatch.service import Dispatcher, OutOfTime
from cronfleet.dispatch.shards import ShardHandOff
from cronfleet.invoker import InvokeError
from cronfleet.lifecycle.attempts import RUNNING_GRACE, START_GRACE, Attempts
from cronfleet.lifecycle.slots import slot_key
from cronfleet.store import Store, shard_of
from cronfleet_tools.local.dynamodb_local import DynamoDBLocal
from tests.integration.conftest import FakeClock, QueuedLambda
from tests.support import register
from tests.support.faults import FaultInjector, FaultKind, SimulatedCrash

WORKER = "DispatchWorkerFunction"
# Lambda's MaximumRetryAttempts for the worker in template.yaml: a crashed worker gets two more.
WORKER_RETRIES = 2


def _fleet(store: Store, clock: FakeClock, count: int) -> list[str]:
    names = [f"job-{number:03d}" for number in range(count)]
    for name in names:
        register(store, clock, name)
    return names


def _after_calls(calls: int) -> OutOfTime:
    """Out of time after this many checks: a worker whose invocation ends part-way."""
    counter = itertools.count()
    lock = threading.Lock()

    def out_of_time() -> bool:
        with lock:
            return next(counter) >= calls

    return out_of_time


class Workers:
    """Lambda's side of the dispatch worker: each shard event is delivered to a fresh worker
    on its own faulty client, crashed deliveries are retried as Lambda retries them, some
    deliveries happen twice at once, and continuations come back through the same queue."""

    def __init__(
        self,
        store: Store,
        engine: DynamoDBLocal,
        clock: FakeClock,
        tasks: QueuedLambda,
        *,
        seed: int,
        fault_rate: float,
    ) -> None:
        self.store, self.engine, self.clock, self.tasks = store, engine, clock, tasks
        self.rng = random.Random(seed)
        self.fault_rate = fault_rate
        self.queue = QueuedLambda()
        self.counts: Counter[str] = Counter()
        self.injected: Counter[FaultKind] = Counter()
        self._lock = threading.Lock()

    def worker(self) -> Dispatcher:
        client = self.engine.client()
        injector = FaultInjector(seed=self.rng.randrange(2**32), rate=self.fault_rate, reads=True)
        injector.attach(client)
        self._injectors = [*getattr(self, "_injectors", []), injector]
        worker_store = Store(self.store.tasks_table, self.store.executions_table, client=client)
        return Dispatcher(Attempts(worker_store, self.tasks, clock=self.clock), max_parallel=8)

    def deliver_all(self) -> None:
        while taken := self.queue.take():
            deliveries = []
            for function, event in taken:
                assert function == WORKER
                copies = 2 if self.rng.random() < 0.25 else 1  # at-least-once delivery
                self.counts["duplicate_deliveries"] += copies - 1
                deliveries += [event] * copies
            threads = [threading.Thread(target=self._deliver, args=(e,)) for e in deliveries]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        for injector in self._injectors:
            injector.settle()
            self.injected += injector.injected

    def _deliver(self, sent: dict[str, Any]) -> None:
        event = ShardEvent.model_validate(sent)
        for _ in range(1 + WORKER_RETRIES):
            with self._lock:
                budget = self.rng.randrange(5, 60)
            try:
                report = self.worker().dispatch_shard(
                    event.tick, event.partitions, out_of_time=_after_calls(budget)
                )
            except SimulatedCrash:
                with self._lock:
                    self.counts["worker_crashes"] += 1
                continue
            with self._lock:
                self.counts["claimed"] += report.claimed
            if report.unfinished and (following := event.continued()) is not None:
                with self._lock:
                    self.counts["continuations"] += 1
                ShardHandOff(self.queue, WORKER).send(following)
            return


def test_a_busy_tick_is_handed_to_one_worker_per_shard_with_work(
    store: Store, clock: FakeClock
) -> None:
    # Given 40 tasks due at 08:01, spread over the 8 partitions, and a dispatcher that keeps at
    # most 10 due tasks for itself
    _fleet(store, clock, 40)
    handed = QueuedLambda()
    tasks = QueuedLambda()
    dispatcher = Dispatcher(
        Attempts(store, tasks, clock=clock),
        hand_off=ShardHandOff(handed, WORKER),
        inline_limit=10,
    )

    report = dispatcher.tick(clock.advance(minutes=1))

    # Then every shard with a due task got exactly one event naming its own partitions, and the
    # dispatcher itself claimed nothing
    events = [ShardEvent.model_validate(event) for _, event in handed.take()]
    busy = {shard_of(f"job-{n:03d}", 8) for n in range(40)}
    assert sorted(e.shard for e in events) == sorted(busy)
    assert all(e.partitions == (e.shard,) and e.shards == 8 for e in events)
    assert {e.tick for e in events} == {clock.now}
    assert (report.handed_off, report.claimed, report.due_tasks) == (len(busy), 0, 0)
    assert tasks.invoked == []


def test_a_quiet_tick_is_dispatched_by_the_dispatcher_from_the_pages_it_read(
    store: Store, clock: FakeClock, dynamodb_local: DynamoDBLocal
) -> None:
    _fleet(store, clock, 6)
    handed, tasks = QueuedLambda(), QueuedLambda()
    dispatcher = Dispatcher(
        Attempts(store, tasks, clock=clock), hand_off=ShardHandOff(handed, WORKER), inline_limit=6
    )
    queries = Counter[str]()
    store.client.meta.events.register(
        "provide-client-params.dynamodb.Query",
        lambda params, **_: queries.update([params.get("IndexName", "table")]),
    )

    report = dispatcher.tick(clock.advance(minutes=1))

    assert handed.invoked == []
    assert (report.claimed, report.invoked, report.handed_off) == (6, 6, 0)
    # One query per due partition, as before sharding: the first page was the whole partition.
    assert queries["due-keys-index"] == 8


def test_a_busy_partition_whose_first_page_lost_a_deleted_task_is_still_handed_off(
    store: Store, clock: FakeClock, dynamodb_local: DynamoDBLocal
) -> None:
    # Given five tasks due in one partition, and a dispatcher that keeps at most 3 for itself,
    # so it reads the partition's first 4 entries
    names = [name for name in (f"job-{n:03d}" for n in range(200)) if shard_of(name, 8) == 0][:5]
    for name in names:
        register(store, clock, name)
    handed, tasks = QueuedLambda(), QueuedLambda()
    dispatcher = Dispatcher(
        Attempts(store, tasks, clock=clock), hand_off=ShardHandOff(handed, WORKER), inline_limit=3
    )
    # ...and one of those four deleted between the index query and the read of its item
    other = dynamodb_local.client()
    deleted: list[str] = []

    def delete_one(params: dict[str, Any], **_: Any) -> None:
        if not deleted:
            (request,) = params["RequestItems"].values()
            deleted.append(request["Keys"][0]["task_id"]["S"])
            other.delete_item(TableName=store.tasks_table, Key=request["Keys"][0])

    store.client.meta.events.register("provide-client-params.dynamodb.BatchGetItem", delete_one)

    # When the tick reads a first page of 3 tasks, from a partition that has more
    report = dispatcher.tick(clock.advance(minutes=1))

    # Then the partition is busy, whatever the page's length: its shard goes to a worker, and
    # none of its tasks is left for the next tick
    (lost,) = deleted
    assert lost in names
    events = [ShardEvent.model_validate(event) for _, event in handed.take()]
    assert [(e.shard, e.partitions) for e in events] == [(0, (0,))]
    assert (report.handed_off, report.claimed) == (1, 0)


def test_a_shard_the_worker_cannot_take_is_dispatched_by_the_dispatcher(
    store: Store, clock: FakeClock
) -> None:
    class Throttled:
        def invoke(self, function: str, event: dict[str, Any]) -> None:
            raise InvokeError("TooManyRequestsException", "Rate exceeded")

    names = _fleet(store, clock, 30)
    tasks = QueuedLambda()
    dispatcher = Dispatcher(
        Attempts(store, tasks, clock=clock),
        hand_off=ShardHandOff(Throttled(), WORKER),
        inline_limit=5,
    )

    report = dispatcher.tick(clock.advance(minutes=1))

    assert (report.handed_off, report.claimed) == (0, 30)
    assert sorted(task for task, _, _ in tasks.slots_invoked()) == names


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_shards_continuations_and_retries_claim_every_due_slot_exactly_once_under_faults(
    store: Store, clock: FakeClock, dynamodb_local: DynamoDBLocal, seed: int
) -> None:
    # Given 160 tasks due at 08:01 over 8 shards, workers on faulty clients (lost responses,
    # stalls, throttles, 500s, crashes between writes) that run out of time after a few claims
    names = _fleet(store, clock, 160)
    workers = Workers(store, dynamodb_local, clock, QueuedLambda(), seed=seed, fault_rate=0.08)
    dispatcher = Dispatcher(
        Attempts(store, workers.tasks, clock=clock),
        hand_off=ShardHandOff(workers.queue, WORKER),
        inline_limit=10,
    )
    tick = clock.advance(minutes=1)

    # When the tick is handed off and every worker event, duplicate and continuation delivered
    report = dispatcher.tick(tick)
    workers.deliver_all()
    # ...and what the continuations could not finish is carried on by the next tick's shards
    clock.advance(seconds=30)
    dispatcher.tick(tick + timedelta(minutes=1))
    workers.deliver_all()
    # ...the runs start (their code is not under test here) ...
    slot = slot_key(tick)
    by_workers = Counter((task, at) for task, at, _ in workers.tasks.slots_invoked())
    for task, at in by_workers:
        assert store.start_attempt(
            task,
            at,
            1,
            request_id=f"run-{task}",
            started=clock.now,
            deadline=clock.now + timedelta(minutes=15),
            grace=RUNNING_GRACE,
        )
    # ...and a slot whose worker crashed between its claim and its invoke is sent by the
    # watchdog once its start grace is over
    clock.advance(minutes=START_GRACE.total_seconds() / 60 + 1)
    Dispatcher(Attempts(store, workers.tasks, clock=clock)).watchdog.sweep(clock.now)

    # Then the faults, duplicates and continuations really happened
    assert report.handed_off == 8
    assert workers.counts["continuations"] > 0
    assert workers.counts["duplicate_deliveries"] > 0
    assert sum(workers.injected.values()) > 0
    # ...no worker invoked a slot another had invoked...
    assert [key for key, count in by_workers.items() if count > 1] == []
    # ...and each task's 08:01 slot has exactly one entry and was invoked exactly once
    for name in names:
        assert [e.slot for e in store.executions(name)].count(slot) == 1, name
    invoked = Counter((task, at) for task, at, _ in workers.tasks.slots_invoked())
    assert {key for key in invoked if key[1] == slot} == {(name, slot) for name in names}
    assert {count for key, count in invoked.items() if key[1] == slot} == {1}


def test_tasks_written_under_more_shards_are_still_read_after_the_count_shrinks(
    store: Store, clock: FakeClock, dynamodb_local: DynamoDBLocal
) -> None:
    # Given tasks registered by a stack with 16 shards, whose ticks recorded 16 partitions
    wide = Store(store.tasks_table, store.executions_table, client=store.client, due_shards=16)
    names = _fleet(wide, clock, 48)
    wide.open_tick(clock.now)
    assert {shard_of(name, 16) for name in names} - set(range(8)), "some sit above partition 7"
    # When DispatchShards is lowered to 8
    narrow = Store(store.tasks_table, store.executions_table, client=store.client, due_shards=8)
    tasks = QueuedLambda()
    report = Dispatcher(Attempts(narrow, tasks, clock=clock)).tick(clock.advance(minutes=1))

    # Then every task is still dispatched, and its claim moved it into its new partition
    assert report.claimed == 48
    raw = store.client.scan(TableName=store.tasks_table)["Items"]
    partitions = {i["task_id"]["S"]: int(i["due_shard"]["N"]) for i in raw if "due_shard" in i}
    assert partitions == {name: shard_of(name, 8) for name in names}


def test_a_deploy_with_more_shards_widens_what_ticks_read_before_the_next_tick(
    store: Store, clock: FakeClock
) -> None:
    narrow = Store(store.tasks_table, store.executions_table, client=store.client, due_shards=8)
    assert narrow.open_tick(clock.now).due_partitions == 8
    wide = Store(store.tasks_table, store.executions_table, client=store.client, due_shards=32)

    wide.widen_due_partitions()
    # A dispatcher still on the old count reads the new partitions from its next tick on, and a
    # repeat of the widening (a retried deploy), or one with fewer shards, changes nothing.
    assert narrow.open_tick(clock.advance(minutes=1)).due_partitions == 32
    wide.widen_due_partitions()
    narrow.widen_due_partitions()
    assert narrow.open_tick(clock.advance(minutes=1)).due_partitions == 32
    # A late duplicate of a tick reads them all too
    assert narrow.open_tick(clock.now - timedelta(minutes=1)).due_partitions == 32


# --- the two functions, loaded from the template as `sam local invoke` would ------------------


def _in_partition(partition: int, count: int) -> list[str]:
    names = (f"job-{number:03d}" for number in itertools.count())
    return list(itertools.islice((n for n in names if shard_of(n, 8) == partition), count))


def _worker_at_nine(
    store: Store,
    clock: FakeClock,
    sam_function: Callable[[str], ModuleType],
    names: list[str],
) -> tuple[ModuleType, QueuedLambda]:
    """The template's worker, ``names`` registered before 09:00, the clock just after it (the
    sample shard event's tick), and Lambda's control plane queued: the adapter edge."""
    clock.now = datetime(2026, 11, 2, 8, 59, tzinfo=UTC)
    for name in names:
        register(store, clock, name)
    worker_app = sam_function("DispatchWorkerFunction")
    lambda_api = QueuedLambda()
    worker_app.dispatcher().attempts.invoker = lambda_api
    clock.now = datetime(2026, 11, 2, 9, 0, 4, tzinfo=UTC)
    return worker_app, lambda_api


def test_the_dispatcher_function_hands_a_busy_tick_to_the_dispatch_worker_function(
    store: Store,
    process_clock: FakeClock,
    sam_function: Callable[[str], ModuleType],
    lambda_context: Any,
    transformed_template: dict[str, Any],
) -> None:
    # Given 12 tasks due at 08:01 and a dispatcher that keeps at most 4 for itself
    clock = process_clock
    names = _fleet(store, clock, 12)
    dispatcher_app = sam_function("DispatcherFunction")
    worker_app = sam_function("DispatchWorkerFunction")
    # Lambda's control plane, the adapter edge: the tasks' invokes and the hand-offs
    lambda_api, handoffs = QueuedLambda(), QueuedLambda()
    coordinator = dispatcher_app.dispatcher()
    coordinator.attempts.invoker = lambda_api
    # The template names the worker by reference, which only a deploy resolves.
    variables = transformed_template["Resources"]["DispatcherFunction"]["Properties"][
        "Environment"
    ]["Variables"]
    assert variables["DISPATCH_WORKER_FUNCTION"] == {"Ref": WORKER}
    coordinator.hand_off = ShardHandOff(handoffs, WORKER)
    coordinator.inline_limit = 4
    worker_app.dispatcher().attempts.invoker = lambda_api
    clock.advance(minutes=1, seconds=2)

    # When the tick comes, and Lambda delivers what it sent to the worker
    answer = dispatcher_app.handler({"scheduled_time": "2026-11-02T08:01:00Z"}, lambda_context)
    handed = handoffs.take()
    answers = [worker_app.handler(event, lambda_context) for _, event in handed]

    # Then one event per busy shard went to the template's worker, and the workers ran it all
    busy = {shard_of(name, 8) for name in names}
    assert answer["handed_off"] == len(busy)
    assert answer["claimed"] == 0
    assert {function for function, _ in handed} == {WORKER}
    assert sorted(event["shard"] for _, event in handed) == sorted(busy)
    assert sum(a["claimed"] for a in answers) == 12
    assert sorted(task for task, _, _ in lambda_api.slots_invoked()) == names


def test_the_dispatch_worker_function_runs_the_sample_shard(
    store: Store,
    process_clock: FakeClock,
    sam_function: Callable[[str], ModuleType],
    load_event: Callable[[str], Any],
    lambda_context: Any,
) -> None:
    names = _in_partition(3, 3)
    worker_app, lambda_api = _worker_at_nine(store, process_clock, sam_function, names)

    answer = worker_app.handler(load_event("dispatch_worker_shard"), lambda_context)

    assert (answer["status"], answer["claimed"], answer["continued"]) == ("dispatched", 3, False)
    assert sorted(lambda_api.slots_invoked()) == [(n, "2026-11-02T09:00:00Z", 1) for n in names]


def test_a_worker_short_of_time_hands_its_shard_to_a_continuation_of_itself(
    store: Store,
    process_clock: FakeClock,
    sam_function: Callable[[str], ModuleType],
    load_event: Callable[[str], Any],
    lambda_context: Any,
) -> None:
    names = _in_partition(3, 2)
    worker_app, lambda_api = _worker_at_nine(store, process_clock, sam_function, names)
    event = load_event("dispatch_worker_shard")

    # An invocation already in its last seconds claims nothing and starts a continuation...
    ending = dataclasses.replace(lambda_context, remaining_time_in_millis=9_000)
    answer = worker_app.handler(event, ending)

    assert (answer["claimed"], answer["unfinished"], answer["continued"]) == (0, True, True)
    [(function, sent)] = lambda_api.take()
    assert function == lambda_context.invoked_function_arn
    assert sent == {**event, "continuation": 1}
    # ...which, with its own full time, claims the shard
    assert worker_app.handler(sent, lambda_context)["claimed"] == 2
    # ...and the last continuation allowed starts none: the next tick carries on
    last = {**event, "continuation": MAX_CONTINUATIONS}
    assert worker_app.handler(last, ending)["continued"] is False
    assert [f for f, e in lambda_api.take() if "shard" in e] == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"tick": "yesterday"}, "tick:"),
        ({"partitions": [4]}, "partitions [4] belong to other shards"),
        ({"shard": None}, "shard:"),
        ({"tick": "2026-11-01T09:00:00Z"}, "tick: the tick is dated 2026-11-01T09:00:00Z"),
    ],
)
def test_a_shard_event_the_dispatcher_did_not_send_is_refused_and_claims_nothing(
    store: Store,
    process_clock: FakeClock,
    sam_function: Callable[[str], ModuleType],
    load_event: Callable[[str], Any],
    lambda_context: Any,
    change: dict[str, Any],
    problem: str,
) -> None:
    [name] = _in_partition(3, 1)
    worker_app, lambda_api = _worker_at_nine(store, process_clock, sam_function, [name])

    answer = worker_app.handler({**load_event("dispatch_worker_shard"), **change}, lambda_context)

    assert answer["status"] == "rejected"
    assert any(problem in line for line in answer["problems"]), answer["problems"]
    assert store.executions(name) == []
    assert lambda_api.invoked == []
