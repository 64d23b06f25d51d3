"""The attempt repository: an execution's attempts, from PENDING to a final state.

Every transition is a write conditional on the state it leaves (status and attempt number), so
of the wrapper, the recorder and the watchdog exactly one makes it, and a repeat of a write
whose response was lost finds its own token and counts as done.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from cronfleet.lifecycle.outcomes import AttemptOutcome, FinishResult
from cronfleet.lifecycle.slots import epoch
from cronfleet.lifecycle.states import RunStatus, slot_status_of
from cronfleet.stats import bucket_attribute
from cronfleet.store.ledger import (
    ERROR_MESSAGE_LIMIT,
    ERROR_TYPE_LIMIT,
    attempt_entry,
    bounded_result,
    execution_key,
    iso,
    traceback_entry,
    truncate,
)
from cronfleet.store.records import ExecutionRecord, Item, attempt_text_of, text_of
from cronfleet.store.tables import (
    INFLIGHT_INDEX,
    INFLIGHT_SHARDS,
    Tables,
    Update,
    new_token,
    wire,
)


class AttemptRepository(Tables):
    def start_attempt(
        self,
        task_id: str,
        slot: str,
        attempt: int,
        *,
        request_id: str,
        started: datetime,
        deadline: datetime,
        grace: timedelta,
    ) -> bool:
        """PENDING -> RUNNING. False: this attempt is not pending (a duplicate delivery).

        The delivery that starts the attempt leaves its own token on it, so a repeat of this
        very write (its response lost) is told apart from a second delivery of the event.

        The attempt's own deadline goes to ``running_deadline_at``, not to the in-flight index's
        ``deadline_at``: a changed index key is a delete and a put of the index entry, two more
        units on every run. The watchdog still looks at the claim's start deadline, and a run
        that is still going then gets one postponement to its own deadline (Watchdog).
        """
        token = new_token()
        index = attempt - 1
        update = Update()
        update.set("status", RunStatus.RUNNING.value)
        update.set(f"attempts[{index}].status", RunStatus.RUNNING.value)
        update.set(f"attempts[{index}].started_at", iso(started))
        update.set(f"attempts[{index}].request_id", request_id)
        update.set(f"attempts[{index}].start_token", token)
        update.set("running_deadline_at", epoch(deadline + grace))
        written = self._update(
            self.executions_table,
            execution_key(task_id, slot),
            update,
            update.in_flight_as(RunStatus.PENDING.value, attempt),
            already_done=lambda old: attempt_text_of(old, index, "start_token") == token,
        )
        return written is not None

    def finish_attempt(
        self,
        task_id: str,
        slot: str,
        attempt: int,
        outcome: AttemptOutcome,
        *,
        retry_at: datetime | None,
        consecutive_failures: int,
        from_statuses: Iterable[RunStatus] = (RunStatus.PENDING, RunStatus.RUNNING),
        request_id: str | None = None,
    ) -> FinishResult:
        """Record how an attempt ended: a retry is scheduled, or the slot becomes final.

        The execution update and the task's counters are one transaction, conditional on the
        attempt still being in flight, so exactly one of the wrapper, the recorder and the
        watchdog records it, and counters move exactly once. A traceback is written beside the
        execution, in the same transaction (ledger.TRACEBACKS_SUFFIX). ``request_id``, the
        Lambda request that ended it, is kept when the attempt has none yet: a function that
        failed before its attempt started (an init error) leaves logs under that request, and
        nothing else would point at them.
        """
        index = attempt - 1
        update = Update()
        update.set(f"attempts[{index}].status", outcome.status.value)
        update.set(f"attempts[{index}].ended_at", iso(outcome.ended_at))
        if request_id:
            field = f"attempts[{index}].request_id"
            update.set_expression(
                field, f"if_not_exists({update.path(field)}, {update.value(request_id)})"
            )
        for name, text, limit in (
            ("error_type", outcome.error_type, ERROR_TYPE_LIMIT),
            ("error_message", outcome.error_message, ERROR_MESSAGE_LIMIT),
        ):
            if text:
                update.set(f"attempts[{index}].{name}", truncate(text, limit))
        if outcome.duration_ms is not None:
            update.set(f"attempts[{index}].duration_ms", outcome.duration_ms)
        if outcome.result is not None:
            update.set(f"attempts[{index}].result", bounded_result(outcome.result))
        update.remove("crash_report")
        final: RunStatus | None
        if retry_at is not None:
            update.set("status", RunStatus.RETRY_WAIT.value)
            # Rounded up to the second: a retry never starts before its interval is over.
            update.set("deadline_at", math.ceil(retry_at.timestamp()))
            final = None
        else:
            final = slot_status_of(outcome.status)
            update.set("status", final.value).remove("deadline_at", "inflight_shard")
        statuses = ", ".join(update.value(status.value) for status in from_statuses)
        condition = (
            f"{update.equals('attempt', attempt)} AND {update.path('status')} IN ({statuses})"
        )
        execution_update = update.request(
            self.executions_table, execution_key(task_id, slot), condition
        )
        task_update = self._stats_update(task_id, slot, outcome, final)
        writes = [{"Update": execution_update}, {"Update": task_update}]
        if outcome.traceback:
            expires_at = self.expires_at(outcome.ended_at)
            writes.append(
                traceback_entry(
                    self.executions_table,
                    task_id,
                    slot,
                    attempt,
                    outcome.traceback,
                    expires_at=expires_at,
                )
            )
        if not self._transact(writes):
            return FinishResult(recorded=False)
        return FinishResult.recorded_as(final, consecutive_failures)

    def _stats_update(
        self, task_id: str, slot: str, outcome: AttemptOutcome, final: RunStatus | None
    ) -> dict[str, Any]:
        # Counters only move by ADD, so concurrent finishes of one task never lose a count.
        update = Update().bump_version()
        if outcome.ran_code and outcome.duration_ms is not None:
            update.add("duration_total_ms", outcome.duration_ms).add("duration_count", 1)
            update.add(bucket_attribute(outcome.duration_ms), 1)
        if final is not None:
            update.add("stats_runs", 1).delete("active_slots", frozenset({slot}))
            if final is RunStatus.SUCCEEDED:
                update.add("stats_succeeded", 1).set("consecutive_failures", 0)
                update.set("last_success_at", iso(outcome.ended_at))
            else:
                update.add("stats_failed", 1).add("consecutive_failures", 1)
                update.set("last_failure_at", iso(outcome.ended_at))
                if final is RunStatus.TIMED_OUT:
                    update.add("stats_timed_out", 1)
        # An update would otherwise create a bare task item for an unknown id.
        return update.request(self.tasks_table, {"task_id": task_id}, update.exists("task_id"))

    def overdue_executions(self, now: datetime) -> list[ExecutionRecord]:
        """In-flight executions whose deadline to be looked at has passed.

        Read by key after the index query, so one that ended or moved its deadline since it was
        indexed is left out here rather than looked at on a stale copy.
        """
        items = self._sharded(self.executions_table, INFLIGHT_INDEX, now, range(INFLIGHT_SHARDS))
        return [
            ExecutionRecord.from_item(item) for item in items if _in_flight_by(item, epoch(now))
        ]

    def mark_redispatched(
        self, execution: ExecutionRecord, *, now: datetime, start_grace: timedelta
    ) -> bool:
        """A PENDING attempt that never started gets one more invoke: claim that right once."""
        token = new_token()
        update = Update().set("redispatched", True).set("redispatch_token", token)
        update.set("deadline_at", epoch(now + start_grace))
        condition = (
            f"{update.in_flight_as(RunStatus.PENDING.value, execution.attempt)} AND "
            f"(attribute_not_exists({update.path('redispatched')}) OR "
            f"{update.equals('redispatched', False)})"
        )
        written = self._update(
            self.executions_table,
            execution_key(execution.task_id, execution.slot),
            update,
            condition,
            already_done=lambda old: text_of(old, "redispatch_token") == token,
        )
        return written is not None

    def begin_next_attempt(
        self, execution: ExecutionRecord, *, now: datetime, start_grace: timedelta
    ) -> bool:
        """RETRY_WAIT (or QUEUED) -> PENDING with the next attempt number."""
        attempt = execution.attempt + 1
        token = new_token()
        update = Update()
        update.set("status", RunStatus.PENDING.value).set("attempt", attempt)
        update.set("redispatched", False).set("deadline_at", epoch(now + start_grace))
        new_attempt = attempt_entry(attempt, RunStatus.PENDING, dispatched_at=now, token=token)
        update.set_expression(
            "attempts",
            f"list_append(if_not_exists({update.path('attempts')}, {update.value({'L': []})}), "
            f"{update.value({'L': [new_attempt]})})",
        )
        key = execution_key(execution.task_id, execution.slot)
        condition = update.in_flight_as(execution.status.value, execution.attempt)
        if execution.status is not RunStatus.QUEUED:
            written = self._update(
                self.executions_table,
                key,
                update,
                condition,
                already_done=lambda old: (
                    attempt_text_of(old, attempt - 1, "dispatch_token") == token
                ),
            )
            return written is not None
        # A queued slot becomes the task's active run in the same transaction.
        promote = Update().bump_version().remove("queued_slot")
        promote.add("active_slots", frozenset({execution.slot}))
        promote_condition = (
            f"{promote.equals('queued_slot', execution.slot)} AND "
            f"attribute_not_exists({promote.path('active_slots')})"
        )
        return self._transact(
            [
                {"Update": update.request(self.executions_table, key, condition)},
                {
                    "Update": promote.request(
                        self.tasks_table, {"task_id": execution.task_id}, promote_condition
                    )
                },
            ]
        )

    def report_crash(
        self, execution: ExecutionRecord, outcome: AttemptOutcome, *, look_at: datetime
    ) -> bool:
        """Hold a crash Lambda reported for a RUNNING attempt, and have the watchdog look at
        ``look_at``: it concludes the attempt with this report unless the run ends first."""
        report = {
            "M": {
                "status": wire(outcome.status.value),
                "error_type": wire(outcome.error_type or ""),
                "error_message": wire(truncate(outcome.error_message or "", ERROR_MESSAGE_LIMIT)),
            }
        }
        update = Update().set("crash_report", report).set("deadline_at", epoch(look_at))
        written = self._update(
            self.executions_table,
            execution_key(execution.task_id, execution.slot),
            update,
            update.in_flight_as(RunStatus.RUNNING.value, execution.attempt),
        )
        return written is not None

    def postpone(self, execution: ExecutionRecord, until: datetime) -> None:
        """Look at this execution again later: a queued slot whose predecessor still runs, or
        a running attempt whose own deadline is later than the one it was looked at by."""
        update = Update().set("deadline_at", epoch(until))
        self._update(
            self.executions_table,
            execution_key(execution.task_id, execution.slot),
            update,
            update.in_flight_as(execution.status.value, execution.attempt),
        )


def _in_flight_by(item: Item, at: int) -> bool:
    """Whether an execution item is still in flight with its deadline at or before ``at``."""
    deadline = item.get("deadline_at")
    return "inflight_shard" in item and deadline is not None and int(deadline["N"]) <= at
