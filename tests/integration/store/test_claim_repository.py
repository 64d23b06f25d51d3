"""The claim repository's contract: what is due, the claim of a plan's slots, manual runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from cronfleet.dispatch.plan import SlotPlan
from cronfleet.lifecycle.slots import SlotRange
from cronfleet.lifecycle.states import Trigger
from cronfleet.store import TaskStateError
from cronfleet.store.claims import ClaimRepository
from cronfleet.store.dynamodb import Store
from cronfleet.store.tables import DUE_INDEX
from tests.support import register

if TYPE_CHECKING:
    from tests.integration.conftest import FakeClock

GRACE = timedelta(minutes=3)


@pytest.fixture
def claims(repository_on: Callable[[type[ClaimRepository]], ClaimRepository]) -> ClaimRepository:
    return repository_on(ClaimRepository)


def test_due_tasks_finds_every_task_due_by_the_tick_whatever_its_shard(
    store: Store, claims: ClaimRepository, clock: FakeClock
) -> None:
    # Given twenty per-minute tasks (spread over the due-index's shards) and one hourly task
    for number in range(20):
        register(store, clock, f"minutely-{number}")
    register(store, clock, "hourly", Schedule="0 * * * *")

    # When the tick of 08:01 asks what is due
    due = claims.due_tasks(clock.now + timedelta(minutes=1))

    # Then every per-minute task is, and the hourly one (due at 09:00) is not
    assert sorted(task.task_id for task in due) == sorted(f"minutely-{n}" for n in range(20))


def test_due_entries_are_read_back_as_the_items_are_now_in_index_order(
    store: Store, claims: ClaimRepository, clock: FakeClock
) -> None:
    # Given three due tasks' keys-only entries, as a page of the due index holds them, and one
    # of the tasks deleted and another changed since the entries were read
    for name in ("first", "second", "third"):
        register(store, clock, name)
    tick = clock.now + timedelta(minutes=1)
    entries = [
        {"task_id": {"S": name}, "due_shard": {"N": "0"}, "due_at": {"N": "1"}}
        for name in ("third", "first", "second")
    ]
    store.client.delete_item(TableName=store.tasks_table, Key={"task_id": {"S": "first"}})
    store.pause("second", clock.now)

    # When the entries' items are read
    items = claims._items_of(store.tasks_table, DUE_INDEX, entries)

    # Then the deleted one is left out, the others come in the entries' order, as they are now
    assert [item["task_id"]["S"] for item in items] == ["third", "second"]
    assert items[1]["paused"] == {"BOOL": True}
    assert "due_at" not in items[1]
    # and a due tick reads only what is still due
    assert [task.task_id for task in claims.due_tasks(tick)] == ["third"]


def test_a_claim_writes_its_entries_and_advances_the_task_and_a_stale_claim_writes_nothing(
    store: Store,
    claims: ClaimRepository,
    clock: FakeClock,
    raw_ledger: Callable[[str], list[dict[str, Any]]],
) -> None:
    # Given a per-minute task due at 08:01, read by two dispatchers
    register(store, clock, "report")
    [seen] = claims.due_tasks(clock.now + timedelta(minutes=1))
    slot = clock.now + timedelta(minutes=1)
    plan = SlotPlan(
        runs=[(slot, Trigger.SCHEDULE)],
        missed_range=SlotRange(slot - timedelta(minutes=30), slot, 30),
        next_due=slot + timedelta(minutes=1),
    )

    # When both claim the plan from what they read
    first = claims.claim(seen, plan, now=slot, start_grace=GRACE)
    second = claims.claim(seen, plan, now=slot, start_grace=GRACE)

    # Then exactly one wins; the table has its PENDING run and its MISSED range, no more
    assert (first, second) == (True, False)
    entries = {item["slot"]["S"]: item for item in raw_ledger("report")}
    assert entries["2026-11-02T08:01:00Z"]["status"]["S"] == "PENDING"
    assert entries["2026-11-02T07:31:00Z"]["status"]["S"] == "MISSED"
    assert len(entries) == 2
    task = store.get_task("report")
    assert task is not None
    assert task.next_run == slot + timedelta(minutes=1)
    assert task.active_slots == {"2026-11-02T08:01:00Z"}
    assert task.stats.missed == 30


def test_a_plan_larger_than_a_transaction_is_refused_before_anything_is_sent(
    store: Store, claims: ClaimRepository, clock: FakeClock
) -> None:
    # Given a task and a plan of 100 ledger entries (a transaction holds 99 and the task)
    register(store, clock, "report")
    [seen] = claims.due_tasks(clock.now + timedelta(minutes=1))
    slots = [clock.now + timedelta(minutes=n) for n in range(1, 101)]
    plan = SlotPlan(runs=[(slot, Trigger.SCHEDULE) for slot in slots], next_due=slots[-1])

    # When it is claimed, then it is refused by its size, and the task has not moved
    with pytest.raises(ValueError, match="at most 99 ledger entries"):
        claims.claim(seen, plan, now=clock.now, start_grace=GRACE)
    task = store.get_task("report")
    assert task is not None
    assert task.version == seen.version


def test_a_manual_run_gets_its_own_slot_once_with_the_payload_kept(
    store: Store,
    claims: ClaimRepository,
    clock: FakeClock,
    raw_ledger: Callable[[str], list[dict[str, Any]]],
) -> None:
    # Given a task
    task = register(store, clock, "report")
    slot = "2026-11-02T08:00:00Z#manual-1"

    # When a manual run is created with a payload, and created again at the same slot
    claims.create_manual_execution(task, slot, clock.now, payload={"day": "monday"})
    with pytest.raises(TaskStateError, match="already exists"):
        claims.create_manual_execution(task, slot, clock.now)

    # Then one PENDING manual entry exists, with the payload
    [entry] = raw_ledger("report")
    assert entry["trigger"]["S"] == Trigger.MANUAL.value
    assert entry["status"]["S"] == "PENDING"
    assert entry["payload"]["S"] == '{"day":"monday"}'
