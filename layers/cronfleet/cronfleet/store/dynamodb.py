"""The DynamoDB adapter: the only code in cronfleet that talks to DynamoDB.

Every state change is a conditional write, so that duplicates are harmless: two dispatchers
claiming one slot, a tick delivered twice, the same async event run twice. The condition
decides the single winner, and the loser learns it from a ConditionalCheckFailed, never from
a read-then-write race. Changes that touch a task and its executions together go through one
transaction, so the ledger and the task's counters cannot drift apart.
"""

from __future__ import annotations

import json
import math
import random
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.config import Config
from botocore.exceptions import ClientError

from cronfleet.lifecycle import (
    RunStatus,
    SkipReason,
    Trigger,
    epoch,
    slot_key,
)
from cronfleet.stats import bucket_attribute
from cronfleet.store.records import LAST_ALERT_PREFIX, ExecutionRecord, TaskRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from cronfleet.dispatch.plan import SlotPlan
    from cronfleet.registry import TaskDefinition

# Enough partitions that next-run updates of many tasks never pile onto one hot key, few
# enough that a tick's empty queries cost nothing worth measuring.
DUE_SHARDS = 8
INFLIGHT_SHARDS = 4
DISPATCHER_ITEM = "#dispatcher"  # a task id no definition can take (names start alphanumeric)
# DynamoDB allows 100 items per transaction; one is the task itself.
TRANSACTION_ITEMS = 100
RESULT_LIMIT_BYTES = 4096
ERROR_MESSAGE_LIMIT = 2048
TRACEBACK_LIMIT = 8192

# botocore's standard retry mode backs off with jitter on throttling and transient errors.
# The pool matches the dispatcher's parallelism, so its threads never queue for a connection.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=10,
    max_pool_connections=32,
)

T = TypeVar("T")


class StoreError(RuntimeError):
    """A storage failure the caller cannot fix by retrying (missing table, bad permissions)."""


class TaskStateError(RuntimeError):
    """The task is not in a state that allows this (pausing a paused task, say)."""


class TaskNotFound(LookupError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task '{task_id}'")
        self.task_id = task_id


def shard_of(task_id: str, shards: int) -> int:
    # crc32 rather than hash(): the shard must be the same in every process.
    return zlib.crc32(task_id.encode()) % shards


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 20] + "... [truncated]"


@dataclass(frozen=True)
class AttemptOutcome:
    """How an attempt ended, as recorded by the wrapper, the recorder or the watchdog."""

    status: RunStatus  # SUCCEEDED, FAILED or TIMED_OUT
    ended_at: datetime
    duration_ms: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    result: Any = None
    ran_code: bool = True  # False for invoke failures and lost runs: no duration to count


@dataclass(frozen=True)
class FinishResult:
    recorded: bool  # False: the attempt was already finished (a duplicate)
    final_status: RunStatus | None = None
    previous_consecutive_failures: int = 0
    consecutive_failures: int = 0


class Store:
    """Tasks and executions in the two tables of template.yaml."""

    def __init__(
        self,
        tasks_table: str,
        executions_table: str,
        *,
        client: DynamoDBClient | None = None,
        history_retention_days: int = 90,
    ) -> None:
        if client is None:
            import boto3  # deferred: creating a client is a cold-start cost worth paying once

            client = boto3.client("dynamodb", config=CLIENT_CONFIG)
        self.client = client
        self.tasks_table = tasks_table
        self.executions_table = executions_table
        self.retention = timedelta(days=history_retention_days)
        self.items_read = 0  # what queries returned: `make bench` reports it

    @classmethod
    def connect(
        cls,
        tasks_table: str,
        executions_table: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        interactive: bool = False,
    ) -> Store:
        """A store on an explicit endpoint and region (DynamoDB Local, another region).

        ``interactive`` fails fast on a wrong endpoint: a person is waiting at the terminal.
        """
        import boto3

        config = CLIENT_CONFIG
        if interactive:
            config = Config(
                retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=10
            )
        client = boto3.client(
            "dynamodb", endpoint_url=endpoint_url, region_name=region, config=config
        )
        return cls(tasks_table, executions_table, client=client)

    # --- errors ----------------------------------------------------------------------------

    def _call(self, operation: Callable[..., T], **kwargs: Any) -> T:
        try:
            return operation(**kwargs)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "ResourceNotFoundException":
                raise StoreError(
                    f"table not found ({self.tasks_table}, {self.executions_table}): "
                    "check TASKS_TABLE_NAME and EXECUTIONS_TABLE_NAME"
                ) from exc
            if code == "AccessDeniedException":
                raise StoreError(f"access denied by IAM: {exc}") from exc
            raise

    def _conditional(self, operation: Callable[..., Any], **kwargs: Any) -> bool:
        """Run a conditional write; False when its condition did not hold (someone else won,
        or the state already moved on). Every other error propagates."""
        try:
            self._call(operation, **kwargs)
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    # --- registry ----------------------------------------------------------------------------

    def register(
        self,
        definition: TaskDefinition,
        schedule_next: Callable[[datetime], datetime | None],
        now: datetime,
    ) -> TaskRecord:
        """Write a definition, keeping runtime state: paused, counters, history, next run.

        ``schedule_next(t)`` gives the first slot strictly after ``t`` of the new schedule. A
        slot that was due but not yet dispatched is kept, so a deploy never drops a run.
        """
        for _ in range(5):
            current = self.get_task(definition.task_id)
            names = {"#def": "definition"}
            values: dict[str, Any] = {
                ":def": _s(definition.model_dump_json(by_alias=True, exclude_none=True)),
                ":now": _s(slot_key(now)),
                ":false": {"BOOL": False},
            }
            sets = [
                "#def = :def",
                "updated_at = :now",
                "created_at = if_not_exists(created_at, :now)",
                "deleted = :false",
            ]
            removes: list[str] = []
            keep_from = now
            if current is not None and current.due_at is not None and current.due_at <= epoch(now):
                keep_from = datetime.fromtimestamp(current.due_at - 1, now.tzinfo)
            next_run = schedule_next(keep_from)
            paused = current.paused if current is not None and not current.deleted else False
            if next_run is not None:
                sets.append("next_run = :next")
                values[":next"] = _s(slot_key(next_run))
            else:
                removes.append("next_run")
            if definition.enabled and not paused and next_run is not None:
                sets += ["due_shard = :shard", "due_at = :due"]
                values[":shard"] = _n(shard_of(definition.task_id, DUE_SHARDS))
                values[":due"] = _n(epoch(next_run))
            else:
                removes += ["due_shard", "due_at"]
            if current is None or current.deleted:
                sets.append("paused = :false")
            if current is None:
                condition = "attribute_not_exists(task_id)"
            else:
                condition = "updated_at = :seen"
                values[":seen"] = _s(current.updated_at or "")
            expression = (
                "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
            )
            try:
                self._call(
                    self.client.update_item,
                    TableName=self.tasks_table,
                    Key={"task_id": _s(definition.task_id)},
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    continue  # changed under us (a dispatcher advanced it): read again
                raise
            registered = self.get_task(definition.task_id)
            assert registered is not None
            self._record_unscheduled_gap(current, registered, schedule_next, now)
            return registered
        raise StoreError(f"task '{definition.task_id}' kept changing while being registered")

    def _record_unscheduled_gap(
        self,
        before: TaskRecord | None,
        after: TaskRecord,
        schedule_next: Callable[[datetime], datetime | None],
        now: datetime,
    ) -> None:
        """A task scheduled again after being disabled or removed gets one SKIPPED entry for
        the slots in between, so the ledger keeps an entry for every slot."""
        was_unscheduled = before is not None and (before.deleted or not before.definition.enabled)
        if not was_unscheduled or after.due_at is None or before is None or before.next_run is None:
            return
        until = after.next_run
        if until is None or before.next_run >= until:
            return
        item = _final_item(
            after.task_id,
            before.next_run,
            RunStatus.SKIPPED,
            _n(epoch(now + self.retention)),
            _s(slot_key(now)),
            skip_reason=SkipReason.DISABLED,
        )
        item["range_until"] = _s(slot_key(until))
        count = _count_slots(schedule_next, before.next_run, until)
        if count is not None:
            item["slot_count"] = _n(count)
        self._conditional(
            self.client.put_item,
            TableName=self.executions_table,
            Item=item,
            ConditionExpression="attribute_not_exists(slot)",
        )

    def deregister(self, task_id: str, now: datetime) -> None:
        """Take a task out of scheduling; its item, counters and history stay.

        A task never stored (a failed Create) is already gone: nothing to do.
        """
        self._conditional(
            self.client.update_item,
            TableName=self.tasks_table,
            Key={"task_id": _s(task_id)},
            UpdateExpression="SET deleted = :true, updated_at = :now REMOVE due_shard, due_at",
            ConditionExpression="attribute_exists(task_id)",
            ExpressionAttributeValues={":true": {"BOOL": True}, ":now": _s(slot_key(now))},
        )

    def pause(self, task_id: str, now: datetime) -> None:
        """Stop scheduling a task; a deploy does not undo it. Raises if already paused."""
        if self._conditional(
            self.client.update_item,
            TableName=self.tasks_table,
            Key={"task_id": _s(task_id)},
            UpdateExpression="SET paused = :true, paused_at = :now REMOVE due_shard, due_at",
            ConditionExpression="attribute_exists(task_id) AND paused <> :true",
            ExpressionAttributeValues={":true": {"BOOL": True}, ":now": _s(slot_key(now))},
        ):
            return
        if self.get_task(task_id) is None:
            raise TaskNotFound(task_id)
        raise TaskStateError(f"task '{task_id}' is already paused")

    def resume(
        self, task_id: str, schedule_next: Callable[[datetime], datetime | None], now: datetime
    ) -> TaskRecord:
        """Schedule a paused task again from now on.

        The slots that fell while it was paused are recorded as one SKIPPED (paused) ledger
        entry, so the ledger still has an entry for every slot.
        """
        task = self.get_task(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        if not task.paused:
            raise TaskStateError(f"task '{task_id}' is not paused")
        next_run = schedule_next(now)
        values: dict[str, Any] = {
            ":false": {"BOOL": False},
            ":true": {"BOOL": True},
            ":now": _s(slot_key(now)),
        }
        sets = ["paused = :false", "updated_at = :now"]
        removes = ["paused_at"]
        if next_run is not None:
            sets.append("next_run = :next")
            values[":next"] = _s(slot_key(next_run))
            if task.definition.enabled and not task.deleted:
                sets += ["due_shard = :shard", "due_at = :due"]
                values[":shard"] = _n(shard_of(task_id, DUE_SHARDS))
                values[":due"] = _n(epoch(next_run))
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.tasks_table,
                    "Key": {"task_id": _s(task_id)},
                    "UpdateExpression": "SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes),
                    "ConditionExpression": "paused = :true",
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        skipped_until = next_run or now
        if task.next_run is not None and task.next_run < skipped_until:
            item = _final_item(
                task_id,
                task.next_run,
                RunStatus.SKIPPED,
                _n(epoch(now + self.retention)),
                _s(slot_key(now)),
                skip_reason=SkipReason.PAUSED,
            )
            item["range_until"] = _s(slot_key(skipped_until))
            skipped = _count_slots(schedule_next, task.next_run, skipped_until)
            if skipped is not None:
                item["slot_count"] = _n(skipped)
                sets.append("stats_skipped = if_not_exists(stats_skipped, :zero) + :skipped")
                values[":zero"] = _n(0)
                values[":skipped"] = _n(skipped)
                items[0]["Update"]["UpdateExpression"] = (
                    "SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes)
                )
            items.append(
                {
                    "Put": {
                        "TableName": self.executions_table,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(slot)",
                    }
                }
            )
        if not self._transact(items):
            raise TaskStateError(f"task '{task_id}' changed while being resumed; try again")
        resumed = self.get_task(task_id)
        assert resumed is not None
        return resumed

    def get_task(self, task_id: str) -> TaskRecord | None:
        response = self._call(
            self.client.get_item,
            TableName=self.tasks_table,
            Key={"task_id": _s(task_id)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None or task_id == DISPATCHER_ITEM:
            return None
        return TaskRecord.from_item(item)

    def list_tasks(self) -> list[TaskRecord]:
        """Every task, for the CLI and the audit. A scan: never on the dispatch path."""
        tasks = []
        for page in self._paginate(self.client.scan, TableName=self.tasks_table):
            tasks += [
                TaskRecord.from_item(item)
                for item in page
                if item["task_id"]["S"] != DISPATCHER_ITEM
            ]
        return sorted(tasks, key=lambda task: task.task_id)

    # --- dispatch ----------------------------------------------------------------------------

    def due_tasks(self, tick: datetime) -> list[TaskRecord]:
        """Tasks whose next slot is at or before the tick: one query per shard, nothing else."""
        due: list[TaskRecord] = []
        for shard in range(DUE_SHARDS):
            for page in self._paginate(
                self.client.query,
                TableName=self.tasks_table,
                IndexName="due-index",
                KeyConditionExpression="due_shard = :shard AND due_at <= :tick",
                ExpressionAttributeValues={":shard": _n(shard), ":tick": _n(epoch(tick))},
            ):
                due += [TaskRecord.from_item(item) for item in page]
        return due

    def claim(
        self, task: TaskRecord, plan: SlotPlan, *, now: datetime, start_grace: timedelta
    ) -> bool:
        """Claim a tick's slots of one task and advance its next run, all or nothing.

        The condition on the task's ``due_at`` makes exactly one dispatcher win; the conditions
        on each execution item make a retried claim of a slot fail rather than overwrite it.
        """
        assert task.due_at is not None
        expires = _n(epoch(now + self.retention))
        now_text = _s(slot_key(now))
        puts: list[dict[str, Any]] = []
        run_slots = [slot_key(slot) for slot, _ in plan.runs]
        timeout = task_timeout(task.definition)
        for slot, trigger in plan.runs:
            puts.append(
                {
                    "task_id": _s(task.task_id),
                    "slot": _s(slot_key(slot)),
                    "status": _s(RunStatus.PENDING),
                    "trigger": _s(trigger),
                    "attempt": _n(1),
                    "timeout_seconds": _n(timeout),
                    "attempts": {"L": [_attempt(1, RunStatus.PENDING, dispatched_at=now)]},
                    "inflight_shard": _n(shard_of(task.task_id, INFLIGHT_SHARDS)),
                    "deadline_at": _n(epoch(now + start_grace)),
                    "expires_at": expires,
                }
            )
        if plan.queued is not None:
            slot, trigger = plan.queued
            puts.append(
                {
                    "task_id": _s(task.task_id),
                    "slot": _s(slot_key(slot)),
                    "status": _s(RunStatus.QUEUED),
                    "trigger": _s(trigger),
                    "attempt": _n(0),
                    "timeout_seconds": _n(timeout),
                    "inflight_shard": _n(shard_of(task.task_id, INFLIGHT_SHARDS)),
                    "deadline_at": _n(epoch(now)),
                    "expires_at": expires,
                }
            )
        for slot in plan.skipped:
            puts.append(
                _final_item(
                    task.task_id,
                    slot,
                    RunStatus.SKIPPED,
                    expires,
                    now_text,
                    skip_reason=SkipReason.OVERLAP,
                )
            )
        for slot in plan.missed:
            puts.append(_final_item(task.task_id, slot, RunStatus.MISSED, expires, now_text))
        if plan.missed_range is not None:
            missed = plan.missed_range
            item = _final_item(task.task_id, missed.first, RunStatus.MISSED, expires, now_text)
            item["range_until"] = _s(slot_key(missed.until))
            if missed.count is not None:
                item["slot_count"] = _n(missed.count)
            puts.append(item)

        names = {"#due": "due_at"}
        values: dict[str, Any] = {":old_due": _n(task.due_at), ":now": now_text}
        sets = ["last_dispatched_at = :now"]
        removes: list[str] = []
        adds: list[str] = []
        if plan.next_due is not None:
            sets += ["#due = :due", "next_run = :next"]
            values[":due"] = _n(epoch(plan.next_due))
            values[":next"] = _s(slot_key(plan.next_due))
        else:
            removes += ["#due", "due_shard", "next_run"]  # a finished one-time task
        if run_slots:
            adds.append("active_slots :runs")
            values[":runs"] = {"SS": run_slots}
        if plan.queued is not None:
            sets.append("queued_slot = :queued")
            values[":queued"] = _s(slot_key(plan.queued[0]))
        missed_count = len(plan.missed) + (plan.missed_range.count or 1 if plan.missed_range else 0)
        if plan.skipped:
            adds.append("stats_skipped :skipped")
            values[":skipped"] = _n(len(plan.skipped))
        if missed_count:
            adds.append("stats_missed :missed")
            values[":missed"] = _n(missed_count)
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        if adds:
            expression += " ADD " + ", ".join(adds)
        advance = {
            "Update": {
                "TableName": self.tasks_table,
                "Key": {"task_id": _s(task.task_id)},
                "UpdateExpression": expression,
                "ConditionExpression": "#due = :old_due",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }
        claims = [
            {
                "Put": {
                    "TableName": self.executions_table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(slot)",
                }
            }
            for item in puts
        ]
        first, rest = claims[: TRANSACTION_ITEMS - 1], claims[TRANSACTION_ITEMS - 1 :]
        if not self._transact([advance, *first]):
            return False
        # Only the winner of the first transaction gets here, so the rest cannot race.
        for start in range(0, len(rest), TRANSACTION_ITEMS):
            self._transact(rest[start : start + TRANSACTION_ITEMS])
        return True

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
        item: dict[str, Any] = {
            "task_id": _s(task.task_id),
            "slot": _s(slot),
            "status": _s(RunStatus.PENDING),
            "trigger": _s(Trigger.MANUAL),
            "attempt": _n(1),
            "timeout_seconds": _n(task_timeout(task.definition)),
            "attempts": {"L": [_attempt(1, RunStatus.PENDING, dispatched_at=now)]},
            "inflight_shard": _n(shard_of(task.task_id, INFLIGHT_SHARDS)),
            "deadline_at": _n(epoch(now + start_grace)),
            "expires_at": _n(epoch(now + self.retention)),
        }
        if payload is not None:
            item["payload"] = _s(json.dumps(payload, separators=(",", ":")))
        self._call(
            self.client.put_item,
            TableName=self.executions_table,
            Item=item,
            ConditionExpression="attribute_not_exists(slot)",
        )

    def _transact(self, items: Sequence[Mapping[str, Any]]) -> bool:
        """Run a transaction; False when a condition failed (someone else won)."""
        for attempt in range(6):
            try:
                self._call(self.client.transact_write_items, TransactItems=list(items))
                return True
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = [
                    reason.get("Code") for reason in exc.response.get("CancellationReasons", [])
                ]
                if "ConditionalCheckFailed" in reasons:
                    return False
                if "TransactionConflict" not in reasons and "ThrottlingError" not in reasons:
                    raise
                # Another transaction held one of the items for a moment: back off and retry.
                time.sleep(random.uniform(0, 0.05 * 2**attempt))
        raise StoreError("a transaction kept conflicting with others; giving up")

    # --- the run of one attempt ----------------------------------------------------------

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
        """PENDING -> RUNNING. False: this attempt is not pending (a duplicate delivery)."""
        return self._conditional(
            self.client.update_item,
            TableName=self.executions_table,
            Key={"task_id": _s(task_id), "slot": _s(slot)},
            UpdateExpression=(
                f"SET #status = :running, attempts[{attempt - 1}].#status = :running, "
                f"attempts[{attempt - 1}].started_at = :started, "
                f"attempts[{attempt - 1}].request_id = :request, deadline_at = :deadline"
            ),
            ConditionExpression="#status = :pending AND attempt = :attempt",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":running": _s(RunStatus.RUNNING),
                ":pending": _s(RunStatus.PENDING),
                ":attempt": _n(attempt),
                ":started": _s(_iso(started)),
                ":request": _s(request_id),
                ":deadline": _n(epoch(deadline + grace)),
            },
        )

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
    ) -> FinishResult:
        """Record how an attempt ended: a retry is scheduled, or the slot becomes final.

        The execution update and the task's counters are one transaction, conditional on the
        attempt still being in flight, so exactly one of the wrapper, the recorder and the
        watchdog records it, and counters move exactly once.
        """
        index = attempt - 1
        values: dict[str, Any] = {
            ":attempt": _n(attempt),
            ":ended": _s(_iso(outcome.ended_at)),
            ":outcome": _s(outcome.status),
        }
        sets = [
            f"attempts[{index}].#status = :outcome",
            f"attempts[{index}].ended_at = :ended",
        ]
        for name, value, limit in (
            ("error_type", outcome.error_type, 256),
            ("error_message", outcome.error_message, ERROR_MESSAGE_LIMIT),
            ("traceback", outcome.traceback, TRACEBACK_LIMIT),
        ):
            if value:
                sets.append(f"attempts[{index}].{name} = :{name}")
                values[f":{name}"] = _s(_truncate(value, limit))
        if outcome.duration_ms is not None:
            sets.append(f"attempts[{index}].duration_ms = :duration")
            values[":duration"] = _n(outcome.duration_ms)
        if outcome.result is not None:
            sets.append(f"attempts[{index}].#result = :result")
            values[":result"] = _s(bounded_result(outcome.result))
        removes: list[str] = []
        if retry_at is not None:
            sets += ["#status = :retry_wait", "deadline_at = :retry_at"]
            values[":retry_wait"] = _s(RunStatus.RETRY_WAIT)
            # Rounded up to the second: a retry never starts before its interval is over.
            values[":retry_at"] = _n(math.ceil(retry_at.timestamp()))
            final = None
        else:
            sets.append("#status = :outcome")
            removes += ["deadline_at", "inflight_shard"]
            final = outcome.status
        statuses = list(from_statuses)
        for number, status in enumerate(statuses):
            values[f":from{number}"] = _s(status)
        condition = (
            "attempt = :attempt AND #status IN ("
            + ", ".join(f":from{n}" for n in range(len(statuses)))
            + ")"
        )
        execution_update = {
            "Update": {
                "TableName": self.executions_table,
                "Key": {"task_id": _s(task_id), "slot": _s(slot)},
                "UpdateExpression": "SET "
                + ", ".join(sets)
                + (" REMOVE " + ", ".join(removes) if removes else ""),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {
                    "#status": "status",
                    **({"#result": "result"} if outcome.result is not None else {}),
                },
                "ExpressionAttributeValues": values,
            }
        }
        task_update = self._stats_update(task_id, slot, outcome, final)
        previous = consecutive_failures
        if not self._transact([execution_update, task_update]):
            return FinishResult(recorded=False)
        if final is None:
            consecutive = previous
        elif final is RunStatus.SUCCEEDED:
            consecutive = 0
        else:
            consecutive = previous + 1
        return FinishResult(True, final, previous, consecutive)

    def _stats_update(
        self, task_id: str, slot: str, outcome: AttemptOutcome, final: RunStatus | None
    ) -> dict[str, Any]:
        adds: list[str] = []
        sets: list[str] = []
        values: dict[str, Any] = {}
        names: dict[str, str] = {}
        if outcome.ran_code and outcome.duration_ms is not None:
            names["#bucket"] = bucket_attribute(outcome.duration_ms)
            adds += ["duration_total_ms :duration", "duration_count :one", "#bucket :one"]
            values[":duration"] = _n(outcome.duration_ms)
            values[":one"] = _n(1)
        if final is not None:
            values[":one"] = _n(1)
            values[":slot"] = {"SS": [slot]}
            values[":at"] = _s(_iso(outcome.ended_at))
            adds.append("stats_runs :one")
            if final is RunStatus.SUCCEEDED:
                adds.append("stats_succeeded :one")
                sets += ["consecutive_failures = :zero", "last_success_at = :at"]
                values[":zero"] = _n(0)
            else:
                adds += ["stats_failed :one", "consecutive_failures :one"]
                sets.append("last_failure_at = :at")
                if final is RunStatus.TIMED_OUT:
                    adds.append("stats_timed_out :one")
            expression_delete = " DELETE active_slots :slot"
        else:
            expression_delete = ""
        expression = ""
        if sets:
            expression += "SET " + ", ".join(sets) + " "
        if adds:
            expression += "ADD " + ", ".join(adds)
        expression += expression_delete
        if not expression.strip():
            # Nothing to count (a failed invoke that will be retried): still touch the item so
            # the transaction has its second member and the task must exist.
            expression = "SET updated_at = if_not_exists(updated_at, :never)"
            values[":never"] = _s("")
        update: dict[str, Any] = {
            "TableName": self.tasks_table,
            "Key": {"task_id": _s(task_id)},
            "UpdateExpression": expression.strip(),
            # An update would otherwise create a bare task item for an unknown id.
            "ConditionExpression": "attribute_exists(task_id)",
            "ExpressionAttributeValues": values,
        }
        if names:
            update["ExpressionAttributeNames"] = names
        return {"Update": update}

    # --- the watchdog ------------------------------------------------------------------------

    def overdue_executions(self, now: datetime) -> list[ExecutionRecord]:
        """In-flight executions whose deadline to be looked at has passed."""
        overdue: list[ExecutionRecord] = []
        for shard in range(INFLIGHT_SHARDS):
            for page in self._paginate(
                self.client.query,
                TableName=self.executions_table,
                IndexName="inflight-index",
                KeyConditionExpression="inflight_shard = :shard AND deadline_at <= :now",
                ExpressionAttributeValues={":shard": _n(shard), ":now": _n(epoch(now))},
            ):
                overdue += [ExecutionRecord.from_item(item) for item in page]
        return overdue

    def next_wakeup(self) -> datetime | None:
        """The earliest time a tick has work: a task's next slot or an in-flight deadline.

        Both indexes are sparse and sorted by that time, so it is one item per shard. A replay
        on a simulated clock uses it to skip the minutes in which every tick would be idle.
        """
        earliest: int | None = None
        searches = [
            (self.tasks_table, "due-index", "due_shard", "due_at", DUE_SHARDS),
            (
                self.executions_table,
                "inflight-index",
                "inflight_shard",
                "deadline_at",
                INFLIGHT_SHARDS,
            ),
        ]
        for table, index, shard_key, time_key, shards in searches:
            for shard in range(shards):
                items = self._call(
                    self.client.query,
                    TableName=table,
                    IndexName=index,
                    KeyConditionExpression=f"{shard_key} = :shard",
                    ExpressionAttributeValues={":shard": _n(shard)},
                    ProjectionExpression=time_key,
                    Limit=1,
                )["Items"]
                if items:
                    at = int(items[0][time_key]["N"])
                    earliest = at if earliest is None else min(earliest, at)
        return None if earliest is None else datetime.fromtimestamp(earliest, UTC)

    def mark_redispatched(
        self, execution: ExecutionRecord, *, now: datetime, start_grace: timedelta
    ) -> bool:
        """A PENDING attempt that never started gets one more invoke: claim that right once."""
        return self._update_execution(
            execution,
            "SET redispatched = :true, deadline_at = :deadline",
            "#status = :pending AND attempt = :attempt"
            " AND (attribute_not_exists(redispatched) OR redispatched = :false)",
            {
                ":true": {"BOOL": True},
                ":false": {"BOOL": False},
                ":pending": _s(RunStatus.PENDING),
                ":attempt": _n(execution.attempt),
                ":deadline": _n(epoch(now + start_grace)),
            },
        )

    def begin_next_attempt(
        self, execution: ExecutionRecord, *, now: datetime, start_grace: timedelta
    ) -> bool:
        """RETRY_WAIT (or QUEUED) -> PENDING with the next attempt number."""
        attempt = execution.attempt + 1
        values = {
            ":pending": _s(RunStatus.PENDING),
            ":attempt": _n(attempt),
            ":old_attempt": _n(execution.attempt),
            ":from": _s(execution.status),
            ":new": {"L": [_attempt(attempt, RunStatus.PENDING, dispatched_at=now)]},
            ":empty": {"L": []},
            ":deadline": _n(epoch(now + start_grace)),
            ":false": {"BOOL": False},
        }
        expression = (
            "SET #status = :pending, attempt = :attempt, redispatched = :false, "
            "attempts = list_append(if_not_exists(attempts, :empty), :new), deadline_at = :deadline"
        )
        condition = "#status = :from AND attempt = :old_attempt"
        if execution.status is not RunStatus.QUEUED:
            return self._update_execution(execution, expression, condition, values)
        # A queued slot becomes the task's active run in the same transaction.
        return self._transact(
            [
                {
                    "Update": {
                        "TableName": self.executions_table,
                        "Key": {"task_id": _s(execution.task_id), "slot": _s(execution.slot)},
                        "UpdateExpression": expression,
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": values,
                    }
                },
                {
                    "Update": {
                        "TableName": self.tasks_table,
                        "Key": {"task_id": _s(execution.task_id)},
                        "UpdateExpression": "REMOVE queued_slot ADD active_slots :slot",
                        "ConditionExpression": (
                            "queued_slot = :queued AND attribute_not_exists(active_slots)"
                        ),
                        "ExpressionAttributeValues": {
                            ":slot": {"SS": [execution.slot]},
                            ":queued": _s(execution.slot),
                        },
                    }
                },
            ]
        )

    def postpone(self, execution: ExecutionRecord, until: datetime) -> None:
        """Look at this execution again later (a queued slot whose predecessor still runs)."""
        self._update_execution(
            execution,
            "SET deadline_at = :until",
            "#status = :status",
            {":until": _n(epoch(until)), ":status": _s(execution.status)},
        )

    def record_alert_sent(self, task_id: str, kind: str, at: datetime) -> None:
        """Remember when an alert of this kind was last sent (TaskRecord.last_alerts).

        A plain update outside any transaction: losing it costs at most an early re-alert.
        """
        self._conditional(
            self.client.update_item,
            TableName=self.tasks_table,
            Key={"task_id": _s(task_id)},
            UpdateExpression="SET #sent = :at",
            ConditionExpression="attribute_exists(task_id)",
            ExpressionAttributeNames={"#sent": f"{LAST_ALERT_PREFIX}{kind}"},
            ExpressionAttributeValues={":at": _s(at.isoformat())},
        )

    def _update_execution(
        self, execution: ExecutionRecord, expression: str, condition: str, values: dict[str, Any]
    ) -> bool:
        return self._conditional(
            self.client.update_item,
            TableName=self.executions_table,
            Key={"task_id": _s(execution.task_id), "slot": _s(execution.slot)},
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )

    # --- the dispatcher's own heartbeat ------------------------------------------------------

    def record_tick(self, tick: datetime) -> datetime | None:
        """Remember this tick; return the previous one, or None for the first ever.

        A tick older than the one on record (a late duplicate) does not move it back.
        """
        try:
            response = self._call(
                self.client.update_item,
                TableName=self.tasks_table,
                Key={"task_id": _s(DISPATCHER_ITEM)},
                UpdateExpression="SET last_tick = :tick ADD ticks :one",
                ConditionExpression="attribute_not_exists(last_tick) OR last_tick < :tick",
                ExpressionAttributeValues={":tick": _n(epoch(tick)), ":one": _n(1)},
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return tick  # a duplicate or late tick: no gap to report
            raise
        previous = response.get("Attributes", {}).get("last_tick")
        return datetime.fromtimestamp(int(previous["N"]), tick.tzinfo) if previous else None

    def record_tick_gap(
        self, previous: datetime, tick: datetime, missed_ticks: int, now: datetime
    ) -> None:
        self._call(
            self.client.put_item,
            TableName=self.executions_table,
            Item={
                "task_id": _s(DISPATCHER_ITEM),
                "slot": _s(slot_key(tick)),
                "status": _s(RunStatus.MISSED),
                "trigger": _s(Trigger.SCHEDULE),
                "attempt": _n(0),
                "gap_from": _s(slot_key(previous)),
                "missed_ticks": _n(missed_ticks),
                "recorded_at": _s(slot_key(now)),
                "expires_at": _n(epoch(now + self.retention)),
            },
        )

    # --- history -----------------------------------------------------------------------------

    def executions(
        self,
        task_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[ExecutionRecord]:
        """The ledger of one task, optionally for slots in ``[start, end]``."""
        values: dict[str, Any] = {":task": _s(task_id)}
        condition = "task_id = :task"
        if start is not None and end is not None:
            condition += " AND slot BETWEEN :start AND :end"
            values[":start"] = _s(slot_key(start))
            values[":end"] = _s(slot_key(end))
        elif start is not None:
            condition += " AND slot >= :start"
            values[":start"] = _s(slot_key(start))
        elif end is not None:
            condition += " AND slot <= :end"
            values[":end"] = _s(slot_key(end))
        kwargs: dict[str, Any] = {
            "TableName": self.executions_table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
        }
        if limit is not None:
            kwargs["Limit"] = limit
        records: list[ExecutionRecord] = []
        for page in self._paginate(self.client.query, **kwargs):
            records += [ExecutionRecord.from_item(item) for item in page]
            if limit is not None and len(records) >= limit:
                return records[:limit]
        return records

    def get_execution(self, task_id: str, slot: str) -> ExecutionRecord | None:
        response = self._call(
            self.client.get_item,
            TableName=self.executions_table,
            Key={"task_id": _s(task_id), "slot": _s(slot)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return ExecutionRecord.from_item(item) if item else None

    def _paginate(
        self, operation: Callable[..., Any], **kwargs: Any
    ) -> Iterator[list[Mapping[str, Any]]]:
        while True:
            response = self._call(operation, **kwargs)
            items = response.get("Items", [])
            self.items_read += len(items)
            yield items
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def put_items(self, table: str, items: Sequence[Mapping[str, Any]]) -> None:
        """Batch-write items, resubmitting whatever DynamoDB leaves unprocessed."""
        for start in range(0, len(items), 25):
            requests: dict[str, Any] = {
                table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            }
            for attempt in range(10):
                response = self._call(self.client.batch_write_item, RequestItems=requests)
                requests = response.get("UnprocessedItems") or {}
                if not requests:
                    break
                time.sleep(random.uniform(0, 0.05 * 2**attempt))
            else:
                raise StoreError("DynamoDB kept leaving batch writes unprocessed; giving up")


def _count_slots(
    schedule_next: Callable[[datetime], datetime | None], first: datetime, until: datetime
) -> int | None:
    """Slots from ``first`` up to ``until``; None past 10,000 (left uncounted, not guessed)."""
    count, current = 0, first
    while current < until:
        count += 1
        if count > 10_000:
            return None
        following = schedule_next(current)
        if following is None:
            break
        current = following
    return count


def task_timeout(definition: TaskDefinition) -> int:
    """The attempt deadline: TimeoutSeconds, else the HTTP timeout, else Lambda's maximum."""
    if definition.timeout_seconds is not None:
        return definition.timeout_seconds
    if definition.http is not None:
        return definition.http.timeout_seconds
    return 900


def bounded_result(result: Any) -> str:
    """A task's return value as JSON, cut to a size that keeps the item small."""
    text = json.dumps(result, default=str, separators=(",", ":"))
    if len(text.encode()) <= RESULT_LIMIT_BYTES:
        return text
    return json.dumps({"truncated": True, "preview": text[: RESULT_LIMIT_BYTES // 2]})


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _attempt(number: int, status: RunStatus, *, dispatched_at: datetime) -> dict[str, Any]:
    return {
        "M": {"attempt": _n(number), "status": _s(status), "dispatched_at": _s(_iso(dispatched_at))}
    }


def _final_item(
    task_id: str,
    slot: datetime,
    status: RunStatus,
    expires: dict[str, str],
    now: dict[str, str],
    *,
    skip_reason: SkipReason | None = None,
) -> dict[str, Any]:
    item = {
        "task_id": _s(task_id),
        "slot": _s(slot_key(slot)),
        "status": _s(status),
        "trigger": _s(Trigger.SCHEDULE),
        "attempt": _n(0),
        "recorded_at": now,
        "expires_at": expires,
    }
    if skip_reason is not None:
        item["skip_reason"] = _s(skip_reason)
    return item
