"""The tick repository's contract: the dispatcher's heartbeat, its gaps, the next time with work."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from cronfleet.store.dynamodb import Store
from cronfleet.store.tables import DISPATCHER_ITEM
from cronfleet.store.ticks import TickRepository
from tests.support import register

if TYPE_CHECKING:
    from tests.integration.conftest import FakeClock


@pytest.fixture
def ticks(repository_on: Callable[[type[TickRepository]], TickRepository]) -> TickRepository:
    return repository_on(TickRepository)


def test_each_tick_reports_the_one_before_and_a_late_duplicate_moves_nothing_back(
    ticks: TickRepository, clock: FakeClock
) -> None:
    # Given the ticks of 08:00 and 08:05 (four ticks missed between them)
    first = ticks.record_tick(clock.now)
    second = ticks.record_tick(clock.now + timedelta(minutes=5))

    # When the tick of 08:03 arrives late
    late = ticks.record_tick(clock.now + timedelta(minutes=3))

    # Then the first tick had none before it, the second reports 08:00, and the late one
    # reports no gap and leaves 08:05 on record
    assert first is None
    assert second == clock.now
    assert late == clock.now + timedelta(minutes=3)
    item = ticks.client.get_item(
        TableName=ticks.tasks_table, Key={"task_id": {"S": DISPATCHER_ITEM}}, ConsistentRead=True
    )["Item"]
    assert int(item["last_tick"]["N"]) == int((clock.now + timedelta(minutes=5)).timestamp())


def test_a_tick_gap_is_a_missed_entry_of_the_dispatchers_item(
    ticks: TickRepository,
    clock: FakeClock,
    raw_ledger: Callable[[str], list[dict[str, Any]]],
) -> None:
    # Given a gap from 08:00 to 08:05
    # When it is recorded
    ticks.record_tick_gap(clock.now, clock.now + timedelta(minutes=5), 4, clock.now)

    # Then the dispatcher's ledger holds one MISSED entry naming where the gap began
    [entry] = raw_ledger(DISPATCHER_ITEM)
    assert entry["status"]["S"] == "MISSED"
    assert (entry["gap_from"]["S"], entry["missed_ticks"]["N"]) == ("2026-11-02T08:00:00Z", "4")


def test_the_next_wakeup_is_the_earliest_due_slot_or_in_flight_deadline(
    store: Store, ticks: TickRepository, clock: FakeClock
) -> None:
    # Given nothing at all, then an hourly task (due 09:00) and a manual run (to start by 08:03)
    nothing = ticks.next_wakeup()
    register(store, clock, "hourly", Schedule="0 * * * *")
    due_only = ticks.next_wakeup()
    task = register(store, clock, "report", Schedule="0 12 * * *")
    store.create_manual_execution(task, "2026-11-02T08:00:00Z#manual-1", clock.now)

    # When the next wakeup is asked for
    both = ticks.next_wakeup()

    # Then it is none, then the due slot, then the earlier in-flight deadline
    assert nothing is None
    assert due_only == clock.now + timedelta(hours=1)
    assert both == clock.now + timedelta(minutes=3)
