"""Who owns a task: the one declaration allowed to change or delete it.

A task's owner is the stack resource that declared it: the stack id (an ARN, unique even
between two stacks of the same name deployed one after the other) plus the resource's logical
id. The registry records it when the task is first registered and then refuses any other
declaration of the same name while the task is live: a second resource or a second stack gets a
clear error instead of silently taking the task over. A Delete only takes out a task its own
resource owns, so CloudFormation's "create the new resource, then delete the old one" order
can never unschedule a task another resource still declares.

A task with no owner on record was registered before owners were recorded; the next
declaration to register it adopts it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cronfleet.errors import CronfleetError

_STACK_PREFIX = "stack:"


@dataclass(frozen=True)
class TaskOwner:
    stack_id: str
    logical_id: str

    @property
    def key(self) -> str:
        """How the owner is stored on the task item: compared whole, never parsed for access."""
        return f"{_STACK_PREFIX}{self.stack_id}#{self.logical_id}"

    @classmethod
    def from_key(cls, key: str) -> TaskOwner | None:
        if not key.startswith(_STACK_PREFIX) or "#" not in key:
            return None
        stack_id, _, logical_id = key.removeprefix(_STACK_PREFIX).rpartition("#")
        return cls(stack_id, logical_id)

    @property
    def stack_name(self) -> str:
        # arn:aws:cloudformation:<region>:<account>:stack/<name>/<uuid>
        parts = self.stack_id.split(":", 5)
        if len(parts) == 6 and parts[5].startswith("stack/"):
            return parts[5].split("/")[1]
        return self.stack_id

    def describe(self) -> str:
        return f"resource {self.logical_id} of stack {self.stack_name}"


def describe_owner(key: str | None) -> str:
    """An owner key in words, for error messages and the CLI."""
    if key is None:
        return "no recorded owner"
    owner = TaskOwner.from_key(key)
    return owner.describe() if owner is not None else key


class TaskOwnedElsewhere(CronfleetError):
    """A declaration tried to register a task that another live declaration owns."""

    def __init__(self, task_id: str, owner_key: str, claimant: TaskOwner) -> None:
        self.task_id = task_id
        self.owner_key = owner_key
        self.claimant = claimant
        owner = TaskOwner.from_key(owner_key)
        same_stack = owner is not None and owner.stack_id == claimant.stack_id
        if same_stack:
            advice = (
                f"a task has one owner. To move it to {claimant.logical_id}, first deploy with "
                f"{owner.logical_id if owner else 'the old resource'} removed (history and "
                "counters are kept), or give this resource a different Name"
            )
        else:
            advice = "a task has one owner; give this resource a different Name"
        super().__init__(
            f"Name '{task_id}' is already declared by {describe_owner(owner_key)}: {advice}"
        )
