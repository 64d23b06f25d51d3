"""The DynamoDB adapter: the only code in cronfleet that talks to DynamoDB.

Three rules make every writer safe against every other, whatever the interleaving:

- **Conditional writes decide races.** Two dispatchers claiming one slot, a tick delivered
  twice, the same async event run twice: the condition picks the single winner, and the loser
  learns it from a ConditionalCheckFailed, never from a read-then-write race.
- **The task item has one version.** Every write to a task item bumps ``version``; a writer
  that decides what to write from what it read (a claim, a deploy, a resume) makes its write
  conditional on the version it read, and on a conflict reads again and decides again. So a
  deploy can never put back a slot a claim just took, and a pause can never be undone by a
  deploy that read the task before it.
- **A write recognises its own earlier commit.** A response can be lost after the write
  committed (a timeout, a dropped connection, a stalled engine), and botocore then sends the
  same request again. Transactions carry a ClientRequestToken, which DynamoDB uses to answer a
  repeat with the first result. A single-item write stores a token of its own on the item and
  asks for the item back when its condition fails: if the token is its own, the write had
  already happened and counts as done.

Changes that touch a task and its ledger together go through one transaction, so the ledger
and the task's counters cannot drift apart.
"""

from __future__ import annotations

import json
import math
import random
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from cronfleet.lifecycle.outcomes import AttemptOutcome, FinishResult
from cronfleet.lifecycle.slots import NextRun, SlotRange, epoch, slot_key, unscheduled_range
from cronfleet.lifecycle.states import RunStatus, SkipReason, Trigger, slot_status_of
from cronfleet.stats import bucket_attribute
from cronfleet.store.records import LAST_ALERT_PREFIX, ExecutionRecord, Item, TaskRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from cronfleet.dispatch.plan import SlotPlan
    from cronfleet.environment import CronfleetEnvironment
    from cronfleet.registry.definition import TaskDefinition

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
# After botocore's own retries, a write whose outcome is still unknown (the connection dropped,
# the engine stalled) is sent again this many times: the tokens make a repeat harmless.
UNKNOWN_OUTCOME_ATTEMPTS = 4
# A writer that lost a version race reads again and decides again, this many times at most.
VERSION_RACE_ATTEMPTS = 8

# botocore's standard retry mode backs off with jitter on throttling and transient errors.
# The pool matches the dispatcher's parallelism, so its threads never queue for a connection.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=10,
    max_pool_connections=32,
)

# Error codes after which DynamoDB may or may not have applied the write.
_UNKNOWN_OUTCOME_CODES = frozenset({"InternalServerError", "ServiceUnavailable"})
# Error codes after which it certainly did not, and trying again later may work.
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
    }
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


class TaskOwnershipConflict(RuntimeError):
    """The task is live and owned by another declaration (see cronfleet.registry.ownership)."""

    def __init__(self, task_id: str, owner: str) -> None:
        super().__init__(f"task '{task_id}' is owned by {owner}")
        self.task_id = task_id
        self.owner = owner


def shard_of(task_id: str, shards: int) -> int:
    # crc32 rather than hash(): the shard must be the same in every process.
    return zlib.crc32(task_id.encode()) % shards


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 20] + "... [truncated]"


def _new_token() -> str:
    return str(uuid.uuid4())  # 36 characters: what ClientRequestToken allows at most


def wire(value: Any) -> dict[str, Any]:
    """A Python value in DynamoDB's wire format; a value already in it passes through."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, frozenset | set):
        return {"SS": sorted(value)}
    if isinstance(value, dict):
        return value
    raise TypeError(f"no DynamoDB form for {type(value).__name__}")


class Update:
    """One UpdateExpression, built clause by clause, with its names and values.

    Every attribute name is aliased (``status`` and ``owner`` are DynamoDB reserved words, and
    a name never has to be checked against that list), and every value gets a placeholder.
    ``path()`` and ``value()`` give the aliases to write conditions with.
    """

    def __init__(self) -> None:
        self._clauses: dict[str, list[str]] = {"SET": [], "ADD": [], "REMOVE": [], "DELETE": []}
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def path(self, attribute_path: str) -> str:
        """``attempts[2].status`` -> ``#attempts[2].#status``."""
        aliased = []
        for part in attribute_path.split("."):
            name, bracket, index = part.partition("[")
            self.names[f"#{name}"] = name
            aliased.append(f"#{name}{bracket}{index}")
        return ".".join(aliased)

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = wire(value)
        return placeholder

    def set(self, attribute_path: str, value: Any) -> Update:
        self._clauses["SET"].append(f"{self.path(attribute_path)} = {self.value(value)}")
        return self

    def set_expression(self, attribute_path: str, expression: str) -> Update:
        """SET with a right-hand side written with ``path()`` and ``value()``."""
        self._clauses["SET"].append(f"{self.path(attribute_path)} = {expression}")
        return self

    def add(self, attribute_path: str, value: Any) -> Update:
        self._clauses["ADD"].append(f"{self.path(attribute_path)} {self.value(value)}")
        return self

    def remove(self, *attribute_paths: str) -> Update:
        self._clauses["REMOVE"] += [self.path(name) for name in attribute_paths]
        return self

    def delete(self, attribute_path: str, value: Any) -> Update:
        self._clauses["DELETE"].append(f"{self.path(attribute_path)} {self.value(value)}")
        return self

    def bump_version(self) -> Update:
        return self.add("version", 1)

    def version_is(self, seen: int) -> str:
        """The condition that the item is still at the version the writer read."""
        if seen == 0:  # never written with a version (new, or stored before versions existed)
            return f"attribute_not_exists({self.path('version')})"
        return f"{self.path('version')} = {self.value(seen)}"

    @property
    def expression(self) -> str:
        return " ".join(
            f"{verb} {', '.join(parts)}" for verb, parts in self._clauses.items() if parts
        )

    def request(self, table: str, key: Mapping[str, Any], condition: str | None) -> dict[str, Any]:
        """The arguments of an UpdateItem, or of a transaction's Update member."""
        request: dict[str, Any] = {
            "TableName": table,
            "Key": {name: wire(value) for name, value in key.items()},
            "UpdateExpression": self.expression,
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        if condition:
            request["ConditionExpression"] = condition
        return request


@dataclass
class _Decision:
    """A versioned write decided from one read of the task: its transaction, and what to say."""

    items: list[dict[str, Any]] = field(default_factory=list)
    unscheduled: SlotRange | None = None


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
    def from_environment(cls, environment: CronfleetEnvironment) -> Store:
        """The store of a function, on the tables its environment names."""
        return cls(
            environment.tasks_table_name,
            environment.executions_table_name,
            history_retention_days=environment.history_retention_days,
        )

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

    # --- calls, writes and transactions --------------------------------------------------------

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

    def _write(
        self,
        operation: Callable[..., Any],
        request: dict[str, Any],
        *,
        already_done: Callable[[Item], bool] | None = None,
    ) -> _Written | None:
        """One conditional single-item write; None when its condition did not hold.

        ``already_done`` looks at the item as it stood when the condition failed: True means
        this very write had committed before (its response was lost and it was sent again).
        """
        request = {**request, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        for attempt in range(UNKNOWN_OUTCOME_ATTEMPTS):
            try:
                response = self._call(operation, **request)
                return _Written(response.get("Attributes", {}), repeated=False)
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                if code == "ConditionalCheckFailedException":
                    old: Item | None = exc.response.get("Item")  # type: ignore[assignment]
                    if already_done is not None and old and already_done(old):
                        return _Written(old, repeated=True)
                    return None
                if code not in _UNKNOWN_OUTCOME_CODES | _TRANSIENT_CODES:
                    raise
                failure: Exception = exc
            except (ConnectionError, HTTPClientError) as exc:
                failure = exc
            _back_off(attempt)
        raise StoreError(f"DynamoDB did not confirm a write: {failure}") from failure

    def _transact(self, items: Sequence[Mapping[str, Any]]) -> bool:
        """Run a transaction; False when a condition failed (someone else won).

        One ClientRequestToken serves every try: DynamoDB answers a repeat of a transaction
        that already committed with success and changes nothing, and a cancelled one does not
        use the token up.
        """
        token = _new_token()
        for attempt in range(UNKNOWN_OUTCOME_ATTEMPTS + 4):
            try:
                self._call(
                    self.client.transact_write_items,
                    TransactItems=list(items),
                    ClientRequestToken=token,
                )
                return True
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                if code == "TransactionCanceledException":
                    reasons = [
                        reason.get("Code") for reason in exc.response.get("CancellationReasons", [])
                    ]
                    if "ConditionalCheckFailed" in reasons:
                        return False
                    if not {"TransactionConflict", "ThrottlingError"} & set(reasons):
                        raise
                    # Another transaction held one of the items for a moment: back off, retry.
                elif code not in _UNKNOWN_OUTCOME_CODES | _TRANSIENT_CODES:
                    raise
                failure: Exception = exc
            except (ConnectionError, HTTPClientError) as exc:
                failure = exc
            _back_off(attempt)
        raise StoreError(f"a transaction could not be completed: {failure}") from failure

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
            decision.items.append(self._ranged_final(task_id, decision.unscheduled, now, reason))
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

    # --- registry ----------------------------------------------------------------------------

    def register(
        self,
        definition: TaskDefinition,
        schedule_next: NextRun,
        now: datetime,
        *,
        owner: str,
    ) -> TaskRecord:
        """Write a definition, keeping runtime state: paused, counters, history, next run.

        ``schedule_next(t)`` gives the first slot strictly after ``t`` of the new schedule. A
        slot that was due but not yet dispatched is kept, so a deploy never drops a run. A task
        scheduled again after being disabled or removed gets one SKIPPED entry for the slots in
        between, in the same transaction. ``owner`` (a TaskOwner key) must own the task, or the
        task must be new, removed, or without a recorded owner; otherwise
        :class:`TaskOwnershipConflict` is raised and nothing is written.
        """
        task_id = definition.task_id

        def decide(current: TaskRecord | None) -> _Decision:
            live = current is not None and not current.deleted
            if live and current is not None and current.owner not in (None, owner):
                raise TaskOwnershipConflict(task_id, current.owner or "")
            update = Update().bump_version()
            update.set("definition", definition.model_dump_json(by_alias=True, exclude_none=True))
            update.set("updated_at", slot_key(now)).set("owner", owner).set("deleted", False)
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
                update.set("due_shard", shard_of(task_id, DUE_SHARDS)).set(
                    "due_at", epoch(next_run)
                )
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
            return self._decided(decision, task_id, update, condition, now, SkipReason.DISABLED)

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
            f"attribute_exists({update.path('task_id')}) AND "
            f"(attribute_not_exists({update.path('owner')}) OR "
            f"{update.path('owner')} = {update.value(owner)})"
        )
        written = self._write(
            self.client.update_item,
            update.request(self.tasks_table, {"task_id": task_id}, condition),
        )
        return written is not None

    def pause(self, task_id: str, now: datetime) -> None:
        """Stop scheduling a task; a deploy does not undo it. Raises if already paused."""
        token = _new_token()
        update = Update().bump_version().set("paused", True).set("paused_at", slot_key(now))
        update.set("pause_token", token).remove("due_shard", "due_at")
        condition = (
            f"attribute_exists({update.path('task_id')}) AND "
            f"{update.path('paused')} <> {update.value(True)}"
        )
        if self._write(
            self.client.update_item,
            update.request(self.tasks_table, {"task_id": task_id}, condition),
            already_done=lambda old: _text(old, "pause_token") == token,
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
                    update.set("due_shard", shard_of(task_id, DUE_SHARDS))
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

    def get_task(self, task_id: str) -> TaskRecord | None:
        response = self._call(
            self.client.get_item,
            TableName=self.tasks_table,
            Key={"task_id": wire(task_id)},
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
                ExpressionAttributeValues={":shard": wire(shard), ":tick": wire(epoch(tick))},
            ):
                due += [TaskRecord.from_item(item) for item in page]
        return due

    def claim(
        self, task: TaskRecord, plan: SlotPlan, *, now: datetime, start_grace: timedelta
    ) -> bool:
        """Claim one plan's slots of a task and advance its next run: one transaction.

        The condition on the task's version makes exactly one dispatcher win, and loses to a
        deploy, pause or finished run that changed the task since it was read (the caller
        reads again and plans again); the conditions on each execution item make a claim of a
        slot that already has an entry fail rather than overwrite it.
        """
        assert task.due_at is not None
        if plan.ledger_items > TRANSACTION_ITEMS - 1:
            raise ValueError(f"a claim holds at most {TRANSACTION_ITEMS - 1} ledger entries")
        expires = epoch(now + self.retention)
        timeout = task.definition.attempt_timeout_seconds()
        inflight_shard = shard_of(task.task_id, INFLIGHT_SHARDS)
        puts: list[dict[str, Any]] = []
        for slot, trigger in plan.runs:
            puts.append(
                {
                    "task_id": wire(task.task_id),
                    "slot": wire(slot_key(slot)),
                    "status": wire(RunStatus.PENDING.value),
                    "trigger": wire(trigger.value),
                    "attempt": wire(1),
                    "timeout_seconds": wire(timeout),
                    "attempts": {"L": [_attempt(1, RunStatus.PENDING, dispatched_at=now)]},
                    "inflight_shard": wire(inflight_shard),
                    "deadline_at": wire(epoch(now + start_grace)),
                    "expires_at": wire(expires),
                }
            )
        if plan.queued is not None:
            slot, trigger = plan.queued
            puts.append(
                {
                    "task_id": wire(task.task_id),
                    "slot": wire(slot_key(slot)),
                    "status": wire(RunStatus.QUEUED.value),
                    "trigger": wire(trigger.value),
                    "attempt": wire(0),
                    "timeout_seconds": wire(timeout),
                    "inflight_shard": wire(inflight_shard),
                    "deadline_at": wire(epoch(now)),
                    "expires_at": wire(expires),
                }
            )
        for slot in plan.skipped:
            puts.append(
                self._final_item(task.task_id, slot, RunStatus.SKIPPED, now, SkipReason.OVERLAP)
            )
        for slot in plan.missed:
            puts.append(self._final_item(task.task_id, slot, RunStatus.MISSED, now))
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
        if plan.missed_range is not None:
            claims.append(self._ranged_final(task.task_id, plan.missed_range, now))
        if plan.skipped_range is not None:
            claims.append(
                self._ranged_final(task.task_id, plan.skipped_range, now, SkipReason.OVERLAP)
            )

        update = Update().bump_version().set("last_dispatched_at", slot_key(now))
        if plan.next_due is not None:
            update.set("due_at", epoch(plan.next_due)).set("next_run", slot_key(plan.next_due))
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
        return self._transact([{"Update": advance}, *claims])

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
        token = _new_token()
        item: dict[str, Any] = {
            "task_id": wire(task.task_id),
            "slot": wire(slot),
            "status": wire(RunStatus.PENDING.value),
            "trigger": wire(Trigger.MANUAL.value),
            "attempt": wire(1),
            "timeout_seconds": wire(task.definition.attempt_timeout_seconds()),
            "attempts": {"L": [_attempt(1, RunStatus.PENDING, dispatched_at=now)]},
            "inflight_shard": wire(shard_of(task.task_id, INFLIGHT_SHARDS)),
            "deadline_at": wire(epoch(now + start_grace)),
            "expires_at": wire(epoch(now + self.retention)),
            "create_token": wire(token),
        }
        if payload is not None:
            item["payload"] = wire(json.dumps(payload, separators=(",", ":")))
        created = self._write(
            self.client.put_item,
            {
                "TableName": self.executions_table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(slot)",
            },
            already_done=lambda old: _text(old, "create_token") == token,
        )
        if created is None:
            raise TaskStateError(f"a run of '{task.task_id}' already exists at {slot}")

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
        """PENDING -> RUNNING. False: this attempt is not pending (a duplicate delivery).

        The delivery that starts the attempt leaves its own token on it, so a repeat of this
        very write (its response lost) is told apart from a second delivery of the event.
        """
        token = _new_token()
        index = attempt - 1
        update = Update()
        update.set("status", RunStatus.RUNNING.value)
        update.set(f"attempts[{index}].status", RunStatus.RUNNING.value)
        update.set(f"attempts[{index}].started_at", _iso(started))
        update.set(f"attempts[{index}].request_id", request_id)
        update.set(f"attempts[{index}].start_token", token)
        update.set("deadline_at", epoch(deadline + grace))
        condition = (
            f"{update.path('status')} = {update.value(RunStatus.PENDING.value)} AND "
            f"{update.path('attempt')} = {update.value(attempt)}"
        )
        written = self._write(
            self.client.update_item,
            update.request(self.executions_table, {"task_id": task_id, "slot": slot}, condition),
            already_done=lambda old: _attempt_field(old, index, "start_token") == token,
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
    ) -> FinishResult:
        """Record how an attempt ended: a retry is scheduled, or the slot becomes final.

        The execution update and the task's counters are one transaction, conditional on the
        attempt still being in flight, so exactly one of the wrapper, the recorder and the
        watchdog records it, and counters move exactly once.
        """
        index = attempt - 1
        update = Update()
        update.set(f"attempts[{index}].status", outcome.status.value)
        update.set(f"attempts[{index}].ended_at", _iso(outcome.ended_at))
        for name, text, limit in (
            ("error_type", outcome.error_type, 256),
            ("error_message", outcome.error_message, ERROR_MESSAGE_LIMIT),
            ("traceback", outcome.traceback, TRACEBACK_LIMIT),
        ):
            if text:
                update.set(f"attempts[{index}].{name}", _truncate(text, limit))
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
            f"{update.path('attempt')} = {update.value(attempt)} AND "
            f"{update.path('status')} IN ({statuses})"
        )
        execution_update = update.request(
            self.executions_table, {"task_id": task_id, "slot": slot}, condition
        )
        task_update = self._stats_update(task_id, slot, outcome, final)
        if not self._transact([{"Update": execution_update}, {"Update": task_update}]):
            return FinishResult(recorded=False)
        previous = consecutive_failures
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
        # Counters only move by ADD, so concurrent finishes of one task never lose a count.
        update = Update().bump_version()
        if outcome.ran_code and outcome.duration_ms is not None:
            update.add("duration_total_ms", outcome.duration_ms).add("duration_count", 1)
            update.add(bucket_attribute(outcome.duration_ms), 1)
        if final is not None:
            update.add("stats_runs", 1).delete("active_slots", frozenset({slot}))
            if final is RunStatus.SUCCEEDED:
                update.add("stats_succeeded", 1).set("consecutive_failures", 0)
                update.set("last_success_at", _iso(outcome.ended_at))
            else:
                update.add("stats_failed", 1).add("consecutive_failures", 1)
                update.set("last_failure_at", _iso(outcome.ended_at))
                if final is RunStatus.TIMED_OUT:
                    update.add("stats_timed_out", 1)
        # An update would otherwise create a bare task item for an unknown id.
        return update.request(
            self.tasks_table, {"task_id": task_id}, f"attribute_exists({update.path('task_id')})"
        )

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
                ExpressionAttributeValues={":shard": wire(shard), ":now": wire(epoch(now))},
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
                    ExpressionAttributeValues={":shard": wire(shard)},
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
        token = _new_token()
        update = Update().set("redispatched", True).set("redispatch_token", token)
        update.set("deadline_at", epoch(now + start_grace))
        condition = (
            f"{update.path('status')} = {update.value(RunStatus.PENDING.value)} AND "
            f"{update.path('attempt')} = {update.value(execution.attempt)} AND "
            f"(attribute_not_exists({update.path('redispatched')}) OR "
            f"{update.path('redispatched')} = {update.value(False)})"
        )
        written = self._write(
            self.client.update_item,
            update.request(self.executions_table, _execution_key(execution), condition),
            already_done=lambda old: _text(old, "redispatch_token") == token,
        )
        return written is not None

    def begin_next_attempt(
        self, execution: ExecutionRecord, *, now: datetime, start_grace: timedelta
    ) -> bool:
        """RETRY_WAIT (or QUEUED) -> PENDING with the next attempt number."""
        attempt = execution.attempt + 1
        token = _new_token()
        update = Update()
        update.set("status", RunStatus.PENDING.value).set("attempt", attempt)
        update.set("redispatched", False).set("deadline_at", epoch(now + start_grace))
        new_attempt = _attempt(attempt, RunStatus.PENDING, dispatched_at=now, token=token)
        update.set_expression(
            "attempts",
            f"list_append(if_not_exists({update.path('attempts')}, {update.value({'L': []})}), "
            f"{update.value({'L': [new_attempt]})})",
        )
        condition = (
            f"{update.path('status')} = {update.value(execution.status.value)} AND "
            f"{update.path('attempt')} = {update.value(execution.attempt)}"
        )
        request = update.request(self.executions_table, _execution_key(execution), condition)
        if execution.status is not RunStatus.QUEUED:
            written = self._write(
                self.client.update_item,
                request,
                already_done=lambda old: (
                    _attempt_field(old, attempt - 1, "dispatch_token") == token
                ),
            )
            return written is not None
        # A queued slot becomes the task's active run in the same transaction.
        promote = Update().bump_version().remove("queued_slot")
        promote.add("active_slots", frozenset({execution.slot}))
        promote_condition = (
            f"{promote.path('queued_slot')} = {promote.value(execution.slot)} AND "
            f"attribute_not_exists({promote.path('active_slots')})"
        )
        return self._transact(
            [
                {"Update": request},
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
                "error_message": wire(_truncate(outcome.error_message or "", ERROR_MESSAGE_LIMIT)),
            }
        }
        update = Update().set("crash_report", report).set("deadline_at", epoch(look_at))
        condition = (
            f"{update.path('status')} = {update.value(RunStatus.RUNNING.value)} AND "
            f"{update.path('attempt')} = {update.value(execution.attempt)}"
        )
        written = self._write(
            self.client.update_item,
            update.request(self.executions_table, _execution_key(execution), condition),
        )
        return written is not None

    def postpone(self, execution: ExecutionRecord, until: datetime) -> None:
        """Look at this execution again later (a queued slot whose predecessor still runs)."""
        update = Update().set("deadline_at", epoch(until))
        condition = f"{update.path('status')} = {update.value(execution.status.value)}"
        self._write(
            self.client.update_item,
            update.request(self.executions_table, _execution_key(execution), condition),
        )

    def record_alert_sent(self, task_id: str, kind: str, at: datetime) -> None:
        """Remember when an alert of this kind was last sent (TaskRecord.last_alerts).

        A plain update outside any transaction, and no version bump: it changes nothing any
        other writer decides on, and losing it costs at most an early re-alert.
        """
        update = Update().set(f"{LAST_ALERT_PREFIX}{kind}", at.isoformat())
        self._write(
            self.client.update_item,
            update.request(
                self.tasks_table,
                {"task_id": task_id},
                f"attribute_exists({update.path('task_id')})",
            ),
        )

    # --- the dispatcher's own heartbeat ------------------------------------------------------

    def record_tick(self, tick: datetime) -> datetime | None:
        """Remember this tick; return the previous one, or None for the first ever.

        A tick older than the one on record (a late duplicate) does not move it back. The tick
        before is kept on the item too, so a repeat of this write after a lost response still
        reports the gap the first one saw.
        """
        token = _new_token()
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
            already_done=lambda old: _text(old, "tick_token") == token,
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
                "expires_at": wire(epoch(now + self.retention)),
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
        values: dict[str, Any] = {":task": wire(task_id)}
        condition = "task_id = :task"
        if start is not None and end is not None:
            condition += " AND slot BETWEEN :start AND :end"
            values[":start"] = wire(slot_key(start))
            values[":end"] = wire(slot_key(end))
        elif start is not None:
            condition += " AND slot >= :start"
            values[":start"] = wire(slot_key(start))
        elif end is not None:
            condition += " AND slot <= :end"
            values[":end"] = wire(slot_key(end))
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
            Key={"task_id": wire(task_id), "slot": wire(slot)},
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

    # --- ledger entries that are final as soon as they are written -----------------------------

    def _final_item(
        self,
        task_id: str,
        slot: datetime,
        status: RunStatus,
        now: datetime,
        skip_reason: SkipReason | None = None,
    ) -> dict[str, Any]:
        item = {
            "task_id": wire(task_id),
            "slot": wire(slot_key(slot)),
            "status": wire(status.value),
            "trigger": wire(Trigger.SCHEDULE.value),
            "attempt": wire(0),
            "recorded_at": wire(slot_key(now)),
            "expires_at": wire(epoch(now + self.retention)),
        }
        if skip_reason is not None:
            item["skip_reason"] = wire(skip_reason.value)
        return item

    def _ranged_final(
        self,
        task_id: str,
        slots: SlotRange,
        now: datetime,
        skip_reason: SkipReason | None = None,
    ) -> dict[str, Any]:
        """One entry for a run of slots: SKIPPED with ``skip_reason``, else MISSED."""
        status = RunStatus.SKIPPED if skip_reason is not None else RunStatus.MISSED
        item = self._final_item(task_id, slots.first, status, now, skip_reason)
        item["range_until"] = wire(slot_key(slots.until))
        if slots.count is not None:
            item["slot_count"] = wire(slots.count)
        return {
            "Put": {
                "TableName": self.executions_table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(slot)",
            }
        }


@dataclass(frozen=True)
class _Written:
    attributes: Item  # what the write returned, or the item as its earlier commit left it
    repeated: bool  # the write had already committed; this was a repeat of it


def _back_off(attempt: int) -> None:
    time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))


def _text(item: Item, name: str) -> str | None:
    value = item.get(name)
    return value.get("S") if value is not None else None


def _attempt_field(item: Item, index: int, name: str) -> str | None:
    attempts = item.get("attempts", {}).get("L", [])
    if not 0 <= index < len(attempts):
        return None
    value = attempts[index].get("M", {}).get(name)
    return value.get("S") if value is not None else None


def _execution_key(execution: ExecutionRecord) -> dict[str, str]:
    return {"task_id": execution.task_id, "slot": execution.slot}


def bounded_result(result: Any) -> str:
    """A task's return value as JSON, cut to a size that keeps the item small."""
    text = json.dumps(result, default=str, separators=(",", ":"))
    if len(text.encode()) <= RESULT_LIMIT_BYTES:
        return text
    return json.dumps({"truncated": True, "preview": text[: RESULT_LIMIT_BYTES // 2]})


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _attempt(
    number: int, status: RunStatus, *, dispatched_at: datetime, token: str | None = None
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "attempt": wire(number),
        "status": wire(status.value),
        "dispatched_at": wire(_iso(dispatched_at)),
    }
    if token is not None:
        fields["dispatch_token"] = wire(token)
    return {"M": fields}
