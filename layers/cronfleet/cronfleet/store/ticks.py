"""The tick repository: the dispatcher's own heartbeat, and when it next has work.

The heartbeat lives on a reserved item of the tasks table (``DISPATCHER_ITEM``); a gap in it is
a ledger entry of that item, so `cronfleet audit` can report missed ticks.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cronfleet.lifecycle.slots import epoch, slot_key
from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet.store.records import text_of
from cronfleet.store.tables import (
    DISPATCHER_ITEM,
    DUE_INDEX,
    INFLIGHT_INDEX,
    Tables,
    Update,
    new_token,
    wire,
)


class TickRepository(Tables):
    def record_tick(self, tick: datetime) -> datetime | None:
        """Remember this tick; return the previous one, or None for the first ever.

        A tick older than the one on record (a late duplicate) does not move it back. The tick
        before is kept on the item too, so a repeat of this write after a lost response still
        reports the gap the first one saw.
        """
        token = new_token()
        update = Update()
        last = update.path("last_tick")
        update.set_expression("previous_tick", f"if_not_exists({last}, {update.value(0)})")
        update.set("last_tick", epoch(tick)).set("tick_token", token).add("ticks", 1)
        condition = f"attribute_not_exists({last}) OR {last} < {update.value(epoch(tick))}"
        request = update.request(self.tasks_table, {"task_id": DISPATCHER_ITEM}, condition)
        request["ReturnValues"] = "ALL_OLD"
        written = self._write(
            self.client.update_item,
            request,
            already_done=lambda old: text_of(old, "tick_token") == token,
        )
        if written is None:
            return tick  # a duplicate or late tick: no gap to report
        if written.repeated:  # this write had committed: the item holds what it replaced
            previous = int(written.attributes.get("previous_tick", {}).get("N", "0"))
        else:
            previous = int(written.attributes.get("last_tick", {}).get("N", "0"))
        return datetime.fromtimestamp(previous, tick.tzinfo) if previous else None

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
            for table, index in (
                (self.tasks_table, DUE_INDEX),
                (self.executions_table, INFLIGHT_INDEX),
            )
            if (at := self._earliest(table, index)) is not None
        ]
        return datetime.fromtimestamp(min(found), UTC) if found else None
