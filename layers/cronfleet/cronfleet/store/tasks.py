"""The task repository: what the registry, the CLI and the alerter write to a task item.

Writers that decide from what they read (register, resume) go through :meth:`_versioned`: read,
decide a transaction conditional on the version read, run it, and on a conflict read again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cronfleet.lifecycle.slots import NextRun, SlotRange, epoch, slot_key, unscheduled_range
from cronfleet.lifecycle.states import SkipReason
from cronfleet.store.errors import StoreError, TaskNotFound, TaskOwnershipConflict, TaskStateError
from cronfleet.store.ledger import new_entry, ranged_final_entry
from cronfleet.store.records import LAST_ALERT_PREFIX, TaskRecord, text_of
from cronfleet.store.tables import (
    DISPATCHER_ITEM,
    Tables,
    Update,
    new_token,
    wire,
)

if TYPE_CHECKING:
    from cronfleet.registry.definition import TaskDefinition

# A writer that lost a version race reads again and decides again, this many times at most.
VERSION_RACE_ATTEMPTS = 8
# Items of the tasks table that are no task: the dispatcher's heartbeat, a tenant's counter.
# No task id can start with it (ids start with a letter or digit).
_NOT_A_TASK = "#"
assert DISPATCHER_ITEM.startswith(_NOT_A_TASK)


@dataclass
class _Decision:
    """A versioned write decided from one read of the task: its transaction, and what to say."""

    items: list[dict[str, Any]] = field(default_factory=list)
    unscheduled: SlotRange | None = None


class TaskRepository(Tables):
    def get_task(self, task_id: str) -> TaskRecord | None:
        response = self._call(
            self.client.get_item,
            TableName=self.tasks_table,
            Key={"task_id": wire(task_id)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None or task_id.startswith(_NOT_A_TASK):
            return None
        return TaskRecord.from_item(item)

    def list_tasks(self) -> list[TaskRecord]:
        """Every task, for the CLI and the audit. A scan: never on the dispatch path."""
        tasks = []
        for page in self._paginate(self.client.scan, TableName=self.tasks_table):
            tasks += [
                TaskRecord.from_item(item)
                for item in page
                if not item["task_id"]["S"].startswith(_NOT_A_TASK)
            ]
        return sorted(tasks, key=lambda task: task.task_id)

    def register(
        self,
        definition: TaskDefinition,
        schedule_next: NextRun,
        now: datetime,
        *,
        owner: str,
        attributes: Mapping[str, str] | None = None,
        admit: Callable[[TaskRecord | None], list[dict[str, Any]]] | None = None,
    ) -> TaskRecord:
        """Write a definition, keeping runtime state: paused, counters, history, next run.

        ``schedule_next(t)`` gives the first slot strictly after ``t`` of the new schedule. A
        slot that was due but not yet dispatched is kept, so a deploy never drops a run. A task
        scheduled again after being disabled or removed gets one SKIPPED entry for the slots in
        between, in the same transaction. ``owner`` (a TaskOwner key) must own the task, or the
        task must be new, removed, or without a recorded owner; otherwise
        :class:`TaskOwnershipConflict` is raised and nothing is written.

        ``attributes`` are set on the item too (an API schedule's tenant and index keys), and
        ``admit(current)``, called on every decision with the task as read, may refuse by
        raising or add items to the transaction (a tenant's counter, within its quota).
        """
        task_id = definition.task_id

        def decide(current: TaskRecord | None) -> _Decision:
            live = current is not None and not current.deleted
            if live and current is not None and current.owner not in (None, owner):
                raise TaskOwnershipConflict(task_id, current.owner or "")
            update = Update().bump_version()
            update.set("definition", definition.model_dump_json(by_alias=True, exclude_none=True))
            update.set("updated_at", slot_key(now)).set("owner", owner).set("deleted", False)
            for name, value in (attributes or {}).items():
                update.set(name, value)
            update.set_expression(
                "created_at",
                f"if_not_exists({update.path('created_at')}, {update.value(slot_key(now))})",
            )
            keep_from = now
            if current is not None and current.due_at is not None and current.due_at <= epoch(now):
                keep_from = datetime.fromtimestamp(current.due_at - 1, UTC)
            next_run = schedule_next(keep_from)
            paused = current.paused if live and current is not None else False
            stays_unscheduled = paused or not definition.enabled
            if (
                stays_unscheduled
                and current is not None
                and current.due_at is None
                and current.next_run is not None
                and current.next_run <= now
            ):
                # Paused or disabled, and staying so: the slot the task stopped at stays its next
                # run, so that resuming or enabling it records every slot since as skipped,
                # however many deploys come in between.
                next_run = current.next_run
            if next_run is not None:
                update.set("next_run", slot_key(next_run))
            else:
                update.remove("next_run")
            scheduled = definition.enabled and not paused and next_run is not None
            if scheduled and next_run is not None:
                update.set("due_shard", self.due_shard_of(task_id)).set("due_at", epoch(next_run))
            else:
                update.remove("due_shard", "due_at", "catchup_through")
            if not live:
                update.set("paused", False)
            decision = _Decision()
            if current is not None and scheduled:
                was_unscheduled = current.deleted or not current.definition.enabled
                if was_unscheduled and not current.paused:
                    decision.unscheduled = unscheduled_range(
                        schedule_next, current.next_run, next_run
                    )
            if decision.unscheduled is not None:
                update.add("stats_skipped", decision.unscheduled.count or 1)
            condition = (
                update.version_is(current.version)
                if current is not None
                else f"attribute_not_exists({update.path('task_id')})"
            )
            decided = self._decided(decision, task_id, update, condition, now, SkipReason.DISABLED)
            decided.items += admit(current) if admit is not None else []
            return decided

        task, _ = self._versioned(task_id, decide)
        assert task is not None
        return task

    def deregister(self, task_id: str, now: datetime, *, owner: str) -> bool:
        """Take a task out of scheduling; its item, counters and history stay.

        Only the owner's Delete takes it out (a task with no recorded owner counts as anyone's);
        False when the task is unknown or another declaration owns it. Repeating it is harmless.
        """
        update = Update().bump_version().set("deleted", True).set("updated_at", slot_key(now))
        update.remove("due_shard", "due_at", "catchup_through")
        condition = (
            f"{update.exists('task_id')} AND "
            f"(attribute_not_exists({update.path('owner')}) OR {update.equals('owner', owner)})"
        )
        return self._update(self.tasks_table, {"task_id": task_id}, update, condition) is not None

    def pause(self, task_id: str, now: datetime) -> None:
        """Stop scheduling a task; a deploy does not undo it. Raises if already paused."""
        token = new_token()
        update = Update().bump_version().set("paused", True).set("paused_at", slot_key(now))
        update.set("pause_token", token).remove("due_shard", "due_at")
        condition = (
            f"{update.exists('task_id')} AND {update.path('paused')} <> {update.value(True)}"
        )
        if self._update(
            self.tasks_table,
            {"task_id": task_id},
            update,
            condition,
            already_done=lambda old: text_of(old, "pause_token") == token,
        ):
            return
        if self.get_task(task_id) is None:
            raise TaskNotFound(task_id)
        raise TaskStateError(f"task '{task_id}' is already paused")

    def resume(self, task_id: str, schedule_next: NextRun, now: datetime) -> TaskRecord:
        """Schedule a paused task again from now on.

        The slots that fell while it was paused are recorded as one SKIPPED (paused) ledger
        entry, so the ledger still has an entry for every slot.
        """

        def decide(task: TaskRecord | None) -> _Decision | None:
            if task is None:
                raise TaskNotFound(task_id)
            if not task.paused:
                raise TaskStateError(f"task '{task_id}' is not paused")
            next_run = schedule_next(now)
            update = Update().bump_version().set("paused", False).set("updated_at", slot_key(now))
            update.remove("paused_at")
            if next_run is not None:
                update.set("next_run", slot_key(next_run))
                if task.definition.enabled and not task.deleted:
                    update.set("due_shard", self.due_shard_of(task_id))
                    update.set("due_at", epoch(next_run))
            decision = _Decision(
                unscheduled=unscheduled_range(schedule_next, task.next_run, next_run or now)
            )
            if decision.unscheduled is not None and decision.unscheduled.count is not None:
                update.add("stats_skipped", decision.unscheduled.count)
            condition = update.version_is(task.version)
            return self._decided(decision, task_id, update, condition, now, SkipReason.PAUSED)

        resumed, _ = self._versioned(task_id, decide)
        assert resumed is not None
        return resumed

    def record_alert_sent(self, task_id: str, kind: str, at: datetime) -> None:
        """Remember when an alert of this kind was last sent (TaskRecord.last_alerts).

        A plain update outside any transaction, and no version bump: it changes nothing any
        other writer decides on, and losing it costs at most an early re-alert.
        """
        update = Update().set(f"{LAST_ALERT_PREFIX}{kind}", at.isoformat())
        self._update(self.tasks_table, {"task_id": task_id}, update, update.exists("task_id"))

    def _decided(
        self,
        decision: _Decision,
        task_id: str,
        update: Update,
        condition: str,
        now: datetime,
        reason: SkipReason,
    ) -> _Decision:
        """The transaction of a versioned task write: the task's update, and the ranged SKIPPED
        entry for the slots it let pass unscheduled, if any."""
        decision.items.append(
            {"Update": update.request(self.tasks_table, {"task_id": task_id}, condition)}
        )
        if decision.unscheduled is not None:
            entry = ranged_final_entry(
                task_id,
                decision.unscheduled,
                now=now,
                expires_at=self.expires_at(now),
                skip_reason=reason,
            )
            decision.items.append(new_entry(self.executions_table, entry))
        return decision

    def _versioned(
        self, task_id: str, decide: Callable[[TaskRecord | None], _Decision | None]
    ) -> tuple[TaskRecord | None, _Decision | None]:
        """Read the task, decide a transaction from it, run it; read and decide again when
        another writer changed the task in between. ``decide`` returns None for "nothing to
        write" and raises for "refused"; its transaction must be conditional on the version
        it read."""
        for _ in range(VERSION_RACE_ATTEMPTS):
            current = self.get_task(task_id)
            decision = decide(current)
            if decision is None:
                return current, None
            if self._transact(decision.items):
                return self.get_task(task_id), decision
        raise StoreError(f"task '{task_id}' kept changing while being written; try again")
