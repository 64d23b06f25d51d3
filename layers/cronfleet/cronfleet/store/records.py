"""What the store hands back: tasks and executions as plain records, decoded from DynamoDB."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from cronfleet.lifecycle.slots import from_epoch, parse_slot
from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet.stats import BUCKET_PREFIX, TaskStats

if TYPE_CHECKING:
    from cronfleet.registry.definition import TaskDefinition

LAST_ALERT_PREFIX = "last_alert_"  # last_alert_FAILING = "2026-11-02T08:01:00+00:00"

Item = Mapping[str, Mapping[str, Any]]  # a DynamoDB item in the low-level wire format


def text_of(item: Item, name: str) -> str | None:
    """A string attribute of an item, or None."""
    value = item.get(name)
    return value.get("S") if value is not None else None


def attempt_text_of(item: Item, index: int, name: str) -> str | None:
    """A string field of the ``index``-th element of an item's ``attempts`` list, or None."""
    attempts = item.get("attempts", {}).get("L", [])
    if not 0 <= index < len(attempts):
        return None
    return text_of(attempts[index].get("M", {}), name)


def _n(item: Item, name: str, default: int = 0) -> int:
    value = item.get(name)
    return int(value["N"]) if value is not None else default


def _bool(item: Item, name: str) -> bool:
    value = item.get(name)
    return bool(value["BOOL"]) if value is not None else False


@dataclass(frozen=True)
class TaskRecord:
    """A registered task: its definition and its runtime state."""

    task_id: str
    definition_json: str
    paused: bool = False
    deleted: bool = False
    next_run: datetime | None = None
    due_at: int | None = None  # epoch seconds; set only while the task is schedulable
    due_shard: int | None = None  # the due-index partition it is in, with due_at
    active_slots: frozenset[str] = frozenset()
    queued_slot: str | None = None
    stats: TaskStats = field(default_factory=TaskStats)
    created_at: str | None = None
    updated_at: str | None = None
    paused_at: str | None = None
    # Bumped by every write to the item; writers that act on what they read check it.
    version: int = 0
    owner: str | None = None  # TaskOwner.key of the declaration that owns the task
    # A claim too large for one transaction is written in chunks: every slot from due_at up to
    # and including this one was already decided to run, and the next chunk carries on.
    catchup_through: datetime | None = None
    # When each kind of alert was last sent for this task, by kind (AlertKind's values).
    last_alerts: Mapping[str, datetime] = field(default_factory=dict, hash=False, compare=False)
    # A schedule made through the API (cronfleet.schedules): its tenant, the caller's own id for
    # it, and the key that makes creating it again update it instead.
    tenant: str | None = None
    external_id: str | None = None
    dedup_key: str | None = None

    @cached_property
    def definition(self) -> TaskDefinition:
        # Imported here: an idle tick reads no definitions, so it need not load the models.
        from cronfleet.registry.definition import TaskDefinition

        return TaskDefinition.model_validate_json(self.definition_json)

    @property
    def is_busy(self) -> bool:
        return bool(self.active_slots)

    @classmethod
    def from_item(cls, item: Item) -> TaskRecord:
        next_run = text_of(item, "next_run")
        catchup_through = text_of(item, "catchup_through")
        due_at = item.get("due_at")
        due_shard = item.get("due_shard")
        return cls(
            task_id=item["task_id"]["S"],
            definition_json=item["definition"]["S"],
            paused=_bool(item, "paused"),
            deleted=_bool(item, "deleted"),
            next_run=parse_slot(next_run) if next_run else None,
            due_at=int(due_at["N"]) if due_at is not None else None,
            due_shard=int(due_shard["N"]) if due_shard is not None else None,
            active_slots=frozenset(item.get("active_slots", {}).get("SS", ())),
            queued_slot=text_of(item, "queued_slot"),
            stats=stats_from_item(item),
            created_at=text_of(item, "created_at"),
            updated_at=text_of(item, "updated_at"),
            paused_at=text_of(item, "paused_at"),
            version=_n(item, "version"),
            owner=text_of(item, "owner"),
            catchup_through=parse_slot(catchup_through) if catchup_through else None,
            last_alerts={
                name.removeprefix(LAST_ALERT_PREFIX): datetime.fromisoformat(value["S"])
                for name, value in item.items()
                if name.startswith(LAST_ALERT_PREFIX) and "S" in value
            },
            tenant=text_of(item, "tenant"),
            external_id=text_of(item, "external_id"),
            dedup_key=text_of(item, "dedup_key"),
        )


def stats_from_item(item: Item) -> TaskStats:
    return TaskStats(
        runs=_n(item, "stats_runs"),
        succeeded=_n(item, "stats_succeeded"),
        failed=_n(item, "stats_failed"),
        timed_out=_n(item, "stats_timed_out"),
        skipped=_n(item, "stats_skipped"),
        missed=_n(item, "stats_missed"),
        consecutive_failures=_n(item, "consecutive_failures"),
        last_success_at=text_of(item, "last_success_at"),
        last_failure_at=text_of(item, "last_failure_at"),
        duration_total_ms=_n(item, "duration_total_ms"),
        duration_count=_n(item, "duration_count"),
        duration_buckets={
            int(name.removeprefix(BUCKET_PREFIX)): int(value["N"])
            for name, value in item.items()
            if name.startswith(BUCKET_PREFIX)
        },
    )


@dataclass(frozen=True)
class AttemptRecord:
    attempt: int
    status: RunStatus
    dispatched_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_ms: int | None = None
    request_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    result: Any = None

    @classmethod
    def from_attribute(cls, value: Mapping[str, Any]) -> AttemptRecord:
        fields = value["M"]
        result = text_of(fields, "result")
        duration = fields.get("duration_ms")
        return cls(
            attempt=int(fields["attempt"]["N"]),
            status=RunStatus(fields["status"]["S"]),
            dispatched_at=text_of(fields, "dispatched_at"),
            started_at=text_of(fields, "started_at"),
            ended_at=text_of(fields, "ended_at"),
            duration_ms=int(duration["N"]) if duration is not None else None,
            request_id=text_of(fields, "request_id"),
            error_type=text_of(fields, "error_type"),
            error_message=text_of(fields, "error_message"),
            traceback=text_of(fields, "traceback"),
            result=json.loads(result) if result is not None else None,
        )


@dataclass(frozen=True)
class ExecutionRecord:
    """One slot of one task in the ledger, with every attempt made for it."""

    task_id: str
    slot: str
    status: RunStatus
    trigger: Trigger
    attempt: int
    attempts: tuple[AttemptRecord, ...] = ()
    timeout_seconds: int | None = None
    deadline_at: datetime | None = None  # when the watchdog next looks, while in flight
    # A running attempt's own deadline (its function's timeout, plus grace), set at its start.
    running_deadline_at: datetime | None = None
    redispatched: bool = False
    skip_reason: str | None = None
    # A MISSED record may stand for every slot from `slot` up to, not including, range_until.
    range_until: str | None = None
    slot_count: int = 1
    # A manual run's own payload (`cronfleet trigger --payload`), so its retries carry it too.
    payload_json: str | None = None
    # A crash Lambda reported for the running attempt, held until the watchdog confirms it
    # (see cronfleet.lifecycle.recorder): its status (FAILED or TIMED_OUT), error type and message.
    crash_report: tuple[str, str, str] | None = None

    @property
    def payload(self) -> dict[str, Any] | None:
        if self.payload_json is None:
            return None
        payload: dict[str, Any] = json.loads(self.payload_json)
        return payload

    @property
    def current(self) -> AttemptRecord | None:
        return self.attempts[-1] if self.attempts else None

    @classmethod
    def from_item(cls, item: Item) -> ExecutionRecord:
        deadline = item.get("deadline_at")
        running_deadline = item.get("running_deadline_at")
        timeout = item.get("timeout_seconds")
        return cls(
            task_id=item["task_id"]["S"],
            slot=item["slot"]["S"],
            status=RunStatus(item["status"]["S"]),
            trigger=Trigger(item["trigger"]["S"]),
            attempt=_n(item, "attempt"),
            attempts=tuple(
                AttemptRecord.from_attribute(value)
                for value in item.get("attempts", {}).get("L", ())
            ),
            timeout_seconds=int(timeout["N"]) if timeout is not None else None,
            deadline_at=from_epoch(int(deadline["N"])) if deadline is not None else None,
            running_deadline_at=(
                from_epoch(int(running_deadline["N"])) if running_deadline is not None else None
            ),
            redispatched=_bool(item, "redispatched"),
            skip_reason=text_of(item, "skip_reason"),
            range_until=text_of(item, "range_until"),
            slot_count=_n(item, "slot_count", 1),
            payload_json=text_of(item, "payload"),
            crash_report=_crash_report(item),
        )


def _crash_report(item: Item) -> tuple[str, str, str] | None:
    report = item.get("crash_report")
    if report is None:
        return None
    fields = report["M"]
    return (
        fields["status"]["S"],
        fields.get("error_type", {}).get("S", ""),
        fields.get("error_message", {}).get("S", ""),
    )
