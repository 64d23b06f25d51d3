"""Helpers shared by the test levels (importable as ``tests.support``: see pytest's pythonpath)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from cronfleet.registry.definition import parse_task_definition
from cronfleet.registry.ownership import TaskOwner

if TYPE_CHECKING:
    from cronfleet.store import TaskRecord
    from cronfleet.store.tasks import TaskRepository

# The stack resource that owns the tasks tests register (as one resource of one stack would).
TEST_STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/cronfleet-test/tests"
TEST_OWNER = TaskOwner(TEST_STACK_ID, "TestTasks")


class HasNow(Protocol):
    @property
    def now(self) -> datetime: ...


def register(store: TaskRepository, clock: HasNow, name: str, **properties: Any) -> TaskRecord:
    """Register a task as a deploy at ``clock.now`` would: its first slot is after that.

    A per-minute task on a function named ``report-fn`` unless ``properties`` say otherwise.
    """
    definition = parse_task_definition(
        name, {"Schedule": "rate(1 minute)", "Function": "report-fn", **properties}, now=clock.now
    )
    return store.register(
        definition, definition.compiled_schedule().next_run, clock.now, owner=TEST_OWNER.key
    )
