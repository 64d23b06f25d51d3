"""The history repository's contract: a task's ledger read back, in order, windowed, limited."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from cronfleet.store.dynamodb import Store
from cronfleet.store.history import HistoryRepository
from tests.support import register

if TYPE_CHECKING:
    from tests.integration.conftest import FakeClock


@pytest.fixture
def history(
    repository_on: Callable[[type[HistoryRepository]], HistoryRepository],
) -> HistoryRepository:
    return repository_on(HistoryRepository)


@pytest.fixture
def five_runs(store: Store, clock: FakeClock) -> list[str]:
    """Five manual runs of one task, a minute apart from 08:00."""
    task = register(store, clock, "report")
    slots = []
    for minute in range(5):
        slot = f"2026-11-02T08:0{minute}:00Z#manual-{minute}"
        store.create_manual_execution(task, slot, clock.now + timedelta(minutes=minute))
        slots.append(slot)
    return slots


def test_the_ledger_reads_oldest_first_or_newest_first_with_a_limit(
    history: HistoryRepository, five_runs: list[str]
) -> None:
    # Given five runs
    # When the ledger is read in full, and the newest two
    everything = [e.slot for e in history.executions("report")]
    newest = [e.slot for e in history.executions("report", newest_first=True, limit=2)]

    # Then the order is the slots' own, and the limit holds
    assert everything == five_runs
    assert newest == five_runs[:-3:-1]


def test_a_window_of_slots_is_inclusive_at_both_ends(
    history: HistoryRepository, five_runs: list[str], clock: FakeClock
) -> None:
    # Given five runs from 08:00 to 08:04
    # When the window 08:01 to 08:03 is read (slot keys sort by time)
    window = history.executions(
        "report", clock.now + timedelta(minutes=1), clock.now + timedelta(minutes=3, seconds=59)
    )

    # Then the runs of 08:01, 08:02 and 08:03 are in it
    assert [e.slot for e in window] == five_runs[1:4]


def test_one_execution_reads_back_and_a_missing_one_is_none(
    history: HistoryRepository, five_runs: list[str]
) -> None:
    # Given five runs
    # When one of them, and a slot that has none, are read
    found = history.get_execution("report", five_runs[2])
    missing = history.get_execution("report", "2026-11-02T09:00:00Z")

    # Then the first is there with its first attempt, and the second is not
    assert found is not None
    assert found.attempt == 1
    assert missing is None
