"""The task repository's contract: register, deregister, pause, resume, read, alert times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from cronfleet.registry.definition import parse_task_definition
from cronfleet.store import TaskNotFound, TaskOwnershipConflict, TaskStateError
from cronfleet.store.tables import DISPATCHER_ITEM
from cronfleet.store.tasks import TaskRepository
from tests.support import TEST_OWNER, register

if TYPE_CHECKING:
    from tests.integration.conftest import FakeClock


@pytest.fixture
def tasks(repository_on: Callable[[type[TaskRepository]], TaskRepository]) -> TaskRepository:
    return repository_on(TaskRepository)


def test_a_registered_task_reads_back_with_its_first_slot_owner_and_version(
    tasks: TaskRepository, clock: FakeClock
) -> None:
    # Given a quarter-hourly task registered at 08:00
    register(tasks, clock, "report", Schedule="*/15 * * * *")

    # When it is read back
    task = tasks.get_task("report")

    # Then it is due at its first slot after now, owned by its declaration, at version 1
    assert task is not None
    assert task.next_run == clock.now + timedelta(minutes=15)
    assert task.owner == TEST_OWNER.key
    assert task.version == 1
    assert task.definition.schedule == "*/15 * * * *"


def test_registering_again_keeps_a_pause_and_bumps_the_version(
    tasks: TaskRepository, clock: FakeClock
) -> None:
    # Given a registered task that was paused
    register(tasks, clock, "report")
    tasks.pause("report", clock.now)

    # When the same declaration registers it again (a deploy)
    clock.advance(minutes=5)
    again = register(tasks, clock, "report", Schedule="rate(5 minutes)")

    # Then the new schedule is stored, the task is still paused, and every write bumped it
    assert again.definition.schedule == "rate(5 minutes)"
    assert again.paused
    assert again.version == 3


def test_another_declaration_cannot_take_over_a_live_task_and_nothing_is_written(
    tasks: TaskRepository, clock: FakeClock
) -> None:
    # Given a task owned by one declaration
    register(tasks, clock, "report")
    definition = parse_task_definition("report", {"Schedule": "rate(1 hour)", "Function": "x"})

    # When another declaration registers the same id
    with pytest.raises(TaskOwnershipConflict, match="owned by"):
        tasks.register(
            definition, definition.compiled_schedule().next_run, clock.now, owner="other/Stack"
        )

    # Then the task is as it was
    task = tasks.get_task("report")
    assert task is not None
    assert (task.version, task.definition.schedule) == (1, "rate(1 minute)")


def test_pausing_twice_or_an_unknown_task_is_refused_by_name(
    tasks: TaskRepository, clock: FakeClock
) -> None:
    # Given a paused task
    register(tasks, clock, "report")
    tasks.pause("report", clock.now)

    # When it is paused again, or a task that does not exist is paused
    # Then each is refused with the reason, and the task keeps its one pause
    with pytest.raises(TaskStateError, match="'report' is already paused"):
        tasks.pause("report", clock.now)
    with pytest.raises(TaskNotFound, match="no task 'ghost'"):
        tasks.pause("ghost", clock.now)
    task = tasks.get_task("report")
    assert task is not None
    assert task.version == 2


def test_resuming_records_the_slots_of_the_pause_as_one_skipped_range(
    tasks: TaskRepository,
    clock: FakeClock,
    raw_ledger: Callable[[str], list[dict[str, Any]]],
) -> None:
    # Given a per-minute task paused at 08:00
    register(tasks, clock, "report")
    tasks.pause("report", clock.now)

    # When it is resumed ten minutes later
    clock.advance(minutes=10)
    definition = tasks.get_task("report")
    assert definition is not None
    resumed = tasks.resume("report", definition.definition.compiled_schedule().next_run, clock.now)

    # Then the table holds one SKIPPED (paused) entry for the ten slots, and the task is due next
    [entry] = raw_ledger("report")
    assert entry["status"]["S"] == "SKIPPED"
    assert entry["skip_reason"]["S"] == "paused"
    assert (entry["slot"]["S"], entry["range_until"]["S"]) == (
        "2026-11-02T08:01:00Z",
        "2026-11-02T08:11:00Z",
    )
    assert entry["slot_count"]["N"] == "10"
    assert resumed.next_run == clock.now + timedelta(minutes=1)
    assert not resumed.paused


def test_only_the_owner_deregisters_and_the_task_stays_readable(
    tasks: TaskRepository, clock: FakeClock
) -> None:
    # Given a registered task
    register(tasks, clock, "report")

    # When another owner and then its own owner take it out
    refused = tasks.deregister("report", clock.now, owner="other/Stack")
    removed = tasks.deregister("report", clock.now, owner=TEST_OWNER.key)

    # Then only the owner's removal counts, and the removed task is still there to read
    assert (refused, removed) == (False, True)
    task = tasks.get_task("report")
    assert task is not None
    assert task.deleted
    assert task.due_at is None


def test_the_list_of_tasks_is_sorted_and_leaves_out_the_dispatchers_own_item(
    tasks: TaskRepository, clock: FakeClock
) -> None:
    # Given two tasks and the dispatcher's heartbeat item in the same table
    register(tasks, clock, "zeta")
    register(tasks, clock, "alpha")
    tasks.client.put_item(
        TableName=tasks.tasks_table, Item={"task_id": {"S": DISPATCHER_ITEM}, "ticks": {"N": "1"}}
    )

    # When the tasks are listed
    listed = [task.task_id for task in tasks.list_tasks()]

    # Then the heartbeat item is not a task
    assert listed == ["alpha", "zeta"]
    assert tasks.get_task(DISPATCHER_ITEM) is None


def test_an_alert_time_is_recorded_only_on_a_task_that_exists(
    tasks: TaskRepository, clock: FakeClock
) -> None:
    # Given one registered task
    register(tasks, clock, "report")

    # When a FAILING alert is recorded for it, and one for a task that does not exist
    tasks.record_alert_sent("report", "FAILING", clock.now)
    tasks.record_alert_sent("ghost", "FAILING", clock.now)

    # Then the task remembers it, and no bare item appears for the unknown id
    task = tasks.get_task("report")
    assert task is not None
    assert task.last_alerts["FAILING"] == clock.now
    assert tasks.get_task("ghost") is None
