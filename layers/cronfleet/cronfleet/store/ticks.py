"""The tick repository: the dispatcher's own heartbeat, and when it next has work.

The heartbeat lives on a reserved item of the tasks table (``DISPATCHER_ITEM``); a gap in it is
a ledger entry of that item, so `cronfleet audit` can report missed ticks.

The same item remembers how many partitions of the due index have ever been written
(``due_partitions``). Writers put a task in ``shard_of(task_id, DispatchShards)``; after the
parameter shrinks, tasks still sit in the higher partitions until their next claim moves them,
so a tick reads every partition ever written, never only the ones the current count names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cronfleet.lifecycle.slots import epoch, slot_key
from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet.store.records import text_of
from cronfleet.store.tables import (
    DISPATCHER_ITEM,
    DUE_INDEX,
    INFLIGHT_INDEX,
    INFLIGHT_SHARDS,
    Tables,
    Update,
    new_token,
    wire,
)


@dataclass(frozen=True)
class OpenedTick:
    previous: datetime | None  # the tick before this one; None for the first ever
    due_partitions: int  # the due index's partitions that may hold tasks: read them all


class TickRepository(Tables):
    def record_tick(self, tick: datetime) -> datetime | None:
        """Remember this tick; return the previous one, or None for the first ever."""
        return self.open_tick(tick).previous

    def open_tick(self, tick: datetime) -> OpenedTick:
        """Remember this tick; the previous one, and how many due partitions to read.

        A tick older than the one on record (a late duplicate) does not move it back, and
        reports no gap. The tick before is kept on the item too, so a repeat of this write
        after a lost response still reports the gap the first one saw.
        """
        token = new_token()
        update = Update()
        last = update.path("last_tick")
        partitions = update.path("due_partitions")
        update.set_expression("previous_tick", f"if_not_exists({last}, {update.value(0)})")
        update.set_expression(
            "due_partitions", f"if_not_exists({partitions}, {update.value(self.due_shards)})"
        )
        update.set("last_tick", epoch(tick)).set("tick_token", token).add("ticks", 1)
        condition = f"attribute_not_exists({last}) OR {last} < {update.value(epoch(tick))}"
        request = update.request(self.tasks_table, {"task_id": DISPATCHER_ITEM}, condition)
        request["ReturnValues"] = "ALL_OLD"
        written = self._write(
            self.client.update_item,
            request,
            already_done=lambda old: text_of(old, "tick_token") == token,
        )
        if written is None:  # a duplicate or late tick: no gap to report
            self.widen_due_partitions()
            return OpenedTick(tick, max(self.due_shards, self._recorded_due_partitions()))
        old = written.attributes
        if written.repeated:  # this write had committed: the item holds what it replaced
            previous = int(old.get("previous_tick", {}).get("N", "0"))
        else:
            previous = int(old.get("last_tick", {}).get("N", "0"))
        recorded = int(old.get("due_partitions", {}).get("N", "0"))
        if recorded < self.due_shards:
            self.widen_due_partitions()
        return OpenedTick(
            datetime.fromtimestamp(previous, tick.tzinfo) if previous else None,
            max(recorded, self.due_shards),
        )

    def widen_due_partitions(self) -> None:
        """Make sure ticks read every partition this store writes to.

        Called by a tick that finds fewer recorded, and by each deploy (the registry), so that
        a raised DispatchShards is read from the moment anything writes with it. The count
        only ever grows: a write that would lower it changes nothing.
        """
        update = Update().set("due_partitions", self.due_shards)
        partitions = update.path("due_partitions")
        condition = (
            f"attribute_not_exists({partitions}) OR {partitions} < {update.value(self.due_shards)}"
        )
        request = update.request(self.tasks_table, {"task_id": DISPATCHER_ITEM}, condition)
        self._write(self.client.update_item, request)

    def _recorded_due_partitions(self) -> int:
        item = self._call(
            self.client.get_item,
            TableName=self.tasks_table,
            Key={"task_id": wire(DISPATCHER_ITEM)},
            ProjectionExpression="due_partitions",
            ConsistentRead=True,
        ).get("Item", {})
        return int(item.get("due_partitions", {}).get("N", "0"))

    def record_tick_gap(
        self, previous: datetime, tick: datetime, missed_ticks: int, now: datetime
    ) -> None:
        self._call(
            self.client.put_item,
            TableName=self.executions_table,
            Item={
                "task_id": wire(DISPATCHER_ITEM),
                "slot": wire(slot_key(tick)),
                "status": wire(RunStatus.MISSED.value),
                "trigger": wire(Trigger.SCHEDULE.value),
                "attempt": wire(0),
                "gap_from": wire(slot_key(previous)),
                "missed_ticks": wire(missed_ticks),
                "recorded_at": wire(slot_key(now)),
                "expires_at": wire(self.expires_at(now)),
            },
        )

    def next_wakeup(self) -> datetime | None:
        """The earliest time a tick has work: a task's next slot or an in-flight deadline.

        Both indexes are sparse and sorted by that time, so it is one item per shard. A replay
        on a simulated clock uses it to skip the minutes in which every tick would be idle.
        """
        found = [
            at
            for table, index, partitions in (
                (self.tasks_table, DUE_INDEX, range(self.due_shards)),
                (self.executions_table, INFLIGHT_INDEX, range(INFLIGHT_SHARDS)),
            )
            if (at := self._earliest(table, index, partitions)) is not None
        ]
        return datetime.fromtimestamp(min(found), UTC) if found else None
