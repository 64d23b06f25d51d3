"""What the store raises when it refuses a write or cannot reach its tables."""

from __future__ import annotations

from cronfleet.errors import CronfleetError


class StoreError(CronfleetError, RuntimeError):
    """A storage failure the caller cannot fix by retrying (missing table, bad permissions)."""


class TaskStateError(CronfleetError, RuntimeError):
    """The task is not in a state that allows this (pausing a paused task, say)."""


class TaskNotFound(CronfleetError, LookupError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task '{task_id}'")
        self.task_id = task_id


class TaskOwnershipConflict(CronfleetError, RuntimeError):
    """The task is live and owned by another declaration (see cronfleet.registry.ownership)."""

    def __init__(self, task_id: str, owner: str) -> None:
        super().__init__(f"task '{task_id}' is owned by {owner}")
        self.task_id = task_id
        self.owner = owner
