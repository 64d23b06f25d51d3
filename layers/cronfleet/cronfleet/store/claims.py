"""The claim repository: which tasks are due, and the claim of their slots.

A claim is one transaction: the task advances to its next slot, on the condition that it is at
the version the dispatcher read, and every slot of the plan gets its ledger entry, on the
condition that it has none yet. So exactly one dispatcher wins a slot, and a deploy, pause or
finished run that changed the task since it was read makes the claim fail rather than undo it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cronfleet.lifecycle.slots import epoch, slot_key
from cronfleet.lifecycle.states import RunStatus, SkipReason, Trigger
from cronfleet.store.errors import TaskStateError
from cronfleet.store.ledger import attempt_entry, final_entry, new_entry, ranged_final_entry
from cronfleet.store.records import Item, TaskRecord, text_of
from cronfleet.store.tables import (
    DUE_INDEX,
    INFLIGHT_SHARDS,
    TRANSACTION_ITEMS,
    Tables,
    Update,
    new_token,
    shard_of,
    wire,
)

if TYPE_CHECKING:
    from cronfleet.dispatch.plan import SlotPlan


class ClaimRepository(Tables):
    def due_tasks(
        self, tick: datetime, partitions: Iterable[int] | None = None
    ) -> list[TaskRecord]:
        """Tasks whose next slot is at or before the tick: one query per partition.

        ``partitions``: the due index's partitions to read; this store's own by default.
        """
        if partitions is None:
            partitions = range(self.due_shards)
        return [
            TaskRecord.from_item(item)
            for item in self._sharded(self.tasks_table, DUE_INDEX, tick, partitions)
        ]

    def due_pages(self, tick: datetime, partition: int) -> Iterator[list[TaskRecord]]:
        """One partition's due tasks a page at a time, so claiming starts with the first page."""
        for page in self._index_pages(self.tasks_table, DUE_INDEX, tick, partition):
            yield _records(page)

    def first_due_page(
        self, tick: datetime, partition: int, limit: int
    ) -> tuple[list[TaskRecord], Iterator[list[TaskRecord]] | None]:
        """A partition's first ``limit`` due tasks, and its later pages; None when it has no
        more, so a caller learns cheaply whether the partition is busy."""
        first, rest = self._first_index_page(self.tasks_table, DUE_INDEX, tick, partition, limit)
        return _records(first), None if rest is None else (_records(page) for page in rest)

    def claim(
        self, task: TaskRecord, plan: SlotPlan, *, now: datetime, start_grace: timedelta
    ) -> bool:
        """Claim one plan's slots of a task and advance its next run: one transaction.

        False when another writer changed the task since it was read (the caller reads again
        and plans again) or a slot of the plan already has an entry.
        """
        assert task.due_at is not None
        if plan.ledger_items > TRANSACTION_ITEMS - 1:
            raise ValueError(f"a claim holds at most {TRANSACTION_ITEMS - 1} ledger entries")
        expires_at = self.expires_at(now)
        entries = [
            self._pending_entry(task, slot_key(slot), trigger, now, now + start_grace)
            for slot, trigger in plan.runs
        ]
        if plan.queued is not None:
            slot, trigger = plan.queued
            # Looked at from now on: it starts as soon as the run before it has ended.
            queued = self._in_flight_entry(
                task, slot_key(slot), trigger, RunStatus.QUEUED, now, now
            )
            entries.append({**queued, "attempt": wire(0)})
        entries += [
            final_entry(
                task.task_id,
                slot,
                RunStatus.SKIPPED,
                now=now,
                expires_at=expires_at,
                skip_reason=SkipReason.OVERLAP,
            )
            for slot in plan.skipped
        ]
        entries += [
            final_entry(task.task_id, slot, RunStatus.MISSED, now=now, expires_at=expires_at)
            for slot in plan.missed
        ]
        if plan.missed_range is not None:
            entries.append(
                ranged_final_entry(task.task_id, plan.missed_range, now=now, expires_at=expires_at)
            )
        if plan.skipped_range is not None:
            entries.append(
                ranged_final_entry(
                    task.task_id,
                    plan.skipped_range,
                    now=now,
                    expires_at=expires_at,
                    skip_reason=SkipReason.OVERLAP,
                )
            )

        update = Update().bump_version().set("last_dispatched_at", slot_key(now))
        if plan.next_due is not None:
            update.set("due_at", epoch(plan.next_due)).set("next_run", slot_key(plan.next_due))
            # A changed DispatchShards moves every task to its new partition at its next claim.
            if task.due_shard != self.due_shard_of(task.task_id):
                update.set("due_shard", self.due_shard_of(task.task_id))
        else:
            update.remove("due_at", "due_shard", "next_run")  # a finished one-time task
        if plan.catchup_through is not None:
            update.set("catchup_through", slot_key(plan.catchup_through))
        elif task.catchup_through is not None:
            update.remove("catchup_through")
        if plan.runs:
            update.add("active_slots", frozenset(slot_key(slot) for slot, _ in plan.runs))
        if plan.queued is not None:
            update.set("queued_slot", slot_key(plan.queued[0]))
        if plan.skipped_count:
            update.add("stats_skipped", plan.skipped_count)
        if plan.missed_count:
            update.add("stats_missed", plan.missed_count)
        advance = update.request(
            self.tasks_table, {"task_id": task.task_id}, update.version_is(task.version)
        )
        return self._transact(
            [{"Update": advance}, *(new_entry(self.executions_table, e) for e in entries)]
        )

    def create_manual_execution(
        self,
        task: TaskRecord,
        slot: str,
        now: datetime,
        *,
        start_grace: timedelta = timedelta(minutes=3),
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        """A run outside the schedule (``cronfleet trigger``, a direct invoke): its own slot.

        A ``payload`` given for this run is kept with it, for its retries.
        """
        token = new_token()
        item = self._pending_entry(task, slot, Trigger.MANUAL, now, now + start_grace)
        item["create_token"] = wire(token)
        if payload is not None:
            item["payload"] = wire(json.dumps(payload, separators=(",", ":")))
        created = self._write(
            self.client.put_item,
            new_entry(self.executions_table, item)["Put"],
            already_done=lambda old: text_of(old, "create_token") == token,
        )
        if created is None:
            raise TaskStateError(f"a run of '{task.task_id}' already exists at {slot}")

    def _pending_entry(
        self, task: TaskRecord, slot: str, trigger: Trigger, now: datetime, deadline: datetime
    ) -> dict[str, Any]:
        """A claimed slot whose first attempt is about to be invoked, and must start by
        ``deadline``."""
        item = self._in_flight_entry(task, slot, trigger, RunStatus.PENDING, now, deadline)
        item["attempt"] = wire(1)
        item["attempts"] = {"L": [attempt_entry(1, RunStatus.PENDING, dispatched_at=now)]}
        return item

    def _in_flight_entry(
        self,
        task: TaskRecord,
        slot: str,
        trigger: Trigger,
        status: RunStatus,
        now: datetime,
        look_at: datetime,
    ) -> dict[str, Any]:
        """An entry on the in-flight index, for the watchdog to look at from ``look_at``."""
        return {
            "task_id": wire(task.task_id),
            "slot": wire(slot),
            "status": wire(status.value),
            "trigger": wire(trigger.value),
            "timeout_seconds": wire(task.definition.attempt_timeout_seconds()),
            "inflight_shard": wire(shard_of(task.task_id, INFLIGHT_SHARDS)),
            "deadline_at": wire(epoch(look_at)),
            "expires_at": wire(self.expires_at(now)),
        }


def _records(items: Iterable[Item]) -> list[TaskRecord]:
    return [TaskRecord.from_item(item) for item in items]
