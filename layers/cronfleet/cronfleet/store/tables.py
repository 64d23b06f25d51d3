"""The two tables and the one way to talk to them: calls, writes, transactions, index queries.

Every repository of the store is built on :class:`Tables`. It holds what they share: the
client, the table names, the retention of history, one wrapper for calls, single-item writes
and transactions (each of which recognises its own earlier commit), one helper for the sharded
indexes, and :class:`Update`, the one builder of update expressions.
"""

from __future__ import annotations

import random
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from cronfleet.lifecycle.slots import epoch
from cronfleet.store.errors import StoreError
from cronfleet.store.records import Item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# The due index is written in as many partitions as the stack has dispatch shards (the
# DispatchShards parameter), each read by its own worker. 8 keeps every partition far below
# DynamoDB's ~1,000 writes a second at 100,000 tasks due in one minute, and an idle tick's
# empty queries cost nothing worth measuring.
DUE_SHARDS = 8
# DispatchShards' largest allowed value: a tick's shard events list partitions below it.
MAX_DUE_SHARDS = 64
INFLIGHT_SHARDS = 4
DISPATCHER_ITEM = "#dispatcher"  # a task id no definition can take (names start alphanumeric)
# DynamoDB allows 100 items per transaction; one is the task itself.
TRANSACTION_ITEMS = 100
# After botocore's own retries, a write whose outcome is still unknown (the connection dropped,
# the engine stalled) is sent again this many times: the tokens make a repeat harmless.
UNKNOWN_OUTCOME_ATTEMPTS = 4

# botocore's standard retry mode backs off with jitter on throttling and transient errors.
# The pool matches the dispatcher's parallelism, so its threads never queue for a connection.
# No client-side parameter validation: every request is built by the store, never from user
# input, and DynamoDB validates it anyway. Checking ~90 shapes of each claim transaction in
# Python was about a sixth of a dispatch worker's CPU per task (make bench, figure 5).
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=10,
    max_pool_connections=32,
    parameter_validation=False,
)
# For a person at a terminal: a wrong endpoint fails in seconds, not after eight retries.
INTERACTIVE_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=10
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
_RETRYABLE_CODES = _UNKNOWN_OUTCOME_CODES | _TRANSIENT_CODES

T = TypeVar("T")


def shard_of(task_id: str, shards: int) -> int:
    # crc32 rather than hash(): the shard must be the same in every process.
    return zlib.crc32(task_id.encode()) % shards


def new_token() -> str:
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

    def equals(self, attribute_path: str, value: Any) -> str:
        """The condition ``attribute = value``."""
        return f"{self.path(attribute_path)} = {self.value(value)}"

    def exists(self, attribute_path: str) -> str:
        return f"attribute_exists({self.path(attribute_path)})"

    def in_flight_as(self, status: str, attempt: int) -> str:
        """The condition that an execution is still in ``status`` on attempt ``attempt``."""
        return f"{self.equals('status', status)} AND {self.equals('attempt', attempt)}"

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


@dataclass(frozen=True)
class ShardedIndex:
    """A sparse, keys-only index whose entries spread over numbered partitions, sorted by a
    time. An entry holds the table's key and the index's own two attributes, nothing else."""

    name: str
    shard_key: str
    time_key: str  # epoch seconds
    table_key: tuple[str, ...]  # the table's key attributes, by which an entry's item is read


DUE_INDEX = ShardedIndex("due-keys-index", "due_shard", "due_at", ("task_id",))
INFLIGHT_INDEX = ShardedIndex(
    "inflight-keys-index", "inflight_shard", "deadline_at", ("task_id", "slot")
)
# BatchGetItem reads at most 100 keys a call.
BATCH_GET_KEYS = 100


@dataclass(frozen=True)
class Written:
    attributes: Item  # what the write returned, or the item as its earlier commit left it
    repeated: bool  # the write had already committed; this was a repeat of it


class Tables:
    """The tasks table and the executions table of template.yaml, and how to call them."""

    def __init__(
        self,
        tasks_table: str,
        executions_table: str,
        *,
        client: DynamoDBClient | None = None,
        history_retention_days: int = 90,
        due_shards: int = DUE_SHARDS,
    ) -> None:
        if not 1 <= due_shards <= MAX_DUE_SHARDS:
            raise ValueError(f"due_shards must be from 1 to {MAX_DUE_SHARDS}, not {due_shards}")
        if client is None:
            import boto3  # deferred: creating a client is a cold-start cost worth paying once

            client = boto3.client("dynamodb", config=CLIENT_CONFIG)
        self.client = client
        self.tasks_table = tasks_table
        self.executions_table = executions_table
        self.retention = timedelta(days=history_retention_days)
        # The partition a task's next run is written to: see due_shard_of.
        self.due_shards = due_shards

    def due_shard_of(self, task_id: str) -> int:
        """The due-index partition this store writes a task's next run to."""
        return shard_of(task_id, self.due_shards)

    def expires_at(self, now: datetime) -> int:
        """When an entry written now leaves the ledger (the table's TTL attribute)."""
        return epoch(now + self.retention)

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
    ) -> Written | None:
        """One conditional single-item write; None when its condition did not hold.

        ``already_done`` looks at the item as it stood when the condition failed: True means
        this very write had committed before (its response was lost and it was sent again).
        """
        request = {**request, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}

        def send() -> Written | None:
            try:
                response = self._call(operation, **request)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                old: Item | None = exc.response.get("Item")  # type: ignore[assignment]
                if already_done is not None and old and already_done(old):
                    return Written(old, repeated=True)
                return None
            return Written(response.get("Attributes", {}), repeated=False)

        return _until_answered(send, UNKNOWN_OUTCOME_ATTEMPTS, "DynamoDB did not confirm a write")

    def _update(
        self,
        table: str,
        key: Mapping[str, Any],
        update: Update,
        condition: str | None,
        *,
        already_done: Callable[[Item], bool] | None = None,
    ) -> Written | None:
        """One conditional UpdateItem through :meth:`_write`."""
        return self._write(
            self.client.update_item,
            update.request(table, key, condition),
            already_done=already_done,
        )

    def _transact(self, items: Sequence[Mapping[str, Any]]) -> bool:
        """Run a transaction; False when a condition failed (someone else won).

        One ClientRequestToken serves every try: DynamoDB answers a repeat of a transaction
        that already committed with success and changes nothing, and a cancelled one does not
        use the token up.
        """
        token = new_token()

        def send() -> bool:
            try:
                self._call(
                    self.client.transact_write_items,
                    TransactItems=list(items),
                    ClientRequestToken=token,
                )
            except ClientError as exc:
                if "ConditionalCheckFailed" in _cancellation_reasons(exc):
                    return False
                raise
            return True

        return _until_answered(
            send, UNKNOWN_OUTCOME_ATTEMPTS + 4, "a transaction could not be completed"
        )

    def _paginate(
        self, operation: Callable[..., Any], **kwargs: Any
    ) -> Iterator[list[Mapping[str, Any]]]:
        while True:
            response = self._call(operation, **kwargs)
            yield response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _sharded(
        self, table: str, index: ShardedIndex, until: datetime, partitions: Iterable[int]
    ) -> Iterator[Item]:
        """The items of every index entry whose time is at or before ``until``: one query per
        shard, then the items themselves."""
        for partition in partitions:
            for page in self._index_pages(table, index, until, partition):
                yield from page

    def _items_of(self, table: str, index: ShardedIndex, entries: Sequence[Item]) -> list[Item]:
        """The current items of index entries, in the entries' order: BatchGetItem, strongly
        consistent, so a writer plans on the latest commit and not on the index's lagging copy.

        An item deleted since it was indexed is left out. Keys DynamoDB leaves unprocessed
        (throttling) are asked for again, backing off, until every one is answered.
        """
        found: dict[tuple[str, ...], Item] = {}
        keys = [{name: entry[name] for name in index.table_key} for entry in entries]
        for start in range(0, len(keys), BATCH_GET_KEYS):
            pending: Any = keys[start : start + BATCH_GET_KEYS]
            for attempt in range(UNKNOWN_OUTCOME_ATTEMPTS * 4):
                response: Any = self._call(
                    self.client.batch_get_item,
                    RequestItems={table: {"Keys": pending, "ConsistentRead": True}},
                )
                for item in response.get("Responses", {}).get(table, []):
                    found[_key_of(item, index)] = item
                pending = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
                if not pending:
                    break
                _back_off(attempt)
            else:
                raise StoreError(f"DynamoDB left {len(pending)} keys of {table} unread")
        current = (found.get(_key_of(entry, index)) for entry in entries)
        return [item for item in current if item is not None]

    def _index_pages(
        self,
        table: str,
        index: ShardedIndex,
        until: datetime,
        partition: int,
        *,
        after: Mapping[str, Any] | None = None,
    ) -> Iterator[list[Item]]:
        """The items of one partition's entries up to ``until``, a page at a time, in the
        index's time order (from just ``after`` an entry, if given). Each page is read by key
        (:meth:`_items_of`): what it yields is the items as they are now, and an entry's item
        may have moved on since it was indexed.
        """
        request = _index_query(table, index, until, partition)
        if after is not None:
            request["ExclusiveStartKey"] = after
        for entries in self._paginate(self.client.query, **request):
            # A keys-only page holds thousands of entries: read and hand on 100 at a time, so
            # a dispatch worker starts claiming after the first read, not after all of them.
            for start in range(0, len(entries), BATCH_GET_KEYS):
                yield self._items_of(table, index, entries[start : start + BATCH_GET_KEYS])

    def _first_index_page(
        self, table: str, index: ShardedIndex, until: datetime, partition: int, limit: int
    ) -> tuple[list[Item], Iterator[list[Item]] | None]:
        """The items of a partition's first ``limit`` entries up to ``until``, and the rest of
        its pages, or None when the query says there are no more entries.

        A caller learns how busy a partition is from one small read. Whether there is more is
        the query's answer, not the count of items: an item deleted since it was indexed is
        left out of the page, and a short page is not proof of a last one.
        """
        response = self._call(
            self.client.query, **_index_query(table, index, until, partition), Limit=limit
        )
        first = self._items_of(table, index, response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return first, None
        rest = self._index_pages(table, index, until, partition, after=response["LastEvaluatedKey"])
        return first, rest

    def _earliest(self, table: str, index: ShardedIndex, partitions: Iterable[int]) -> int | None:
        """The earliest time in the index: the first item of each shard, one item read each."""
        earliest: int | None = None
        for shard in partitions:
            items = self._call(
                self.client.query,
                TableName=table,
                IndexName=index.name,
                KeyConditionExpression=f"{index.shard_key} = :shard",
                ExpressionAttributeValues={":shard": wire(shard)},
                ProjectionExpression=index.time_key,
                Limit=1,
            )["Items"]
            if items:
                at = int(items[0][index.time_key]["N"])
                earliest = at if earliest is None else min(earliest, at)
        return earliest


def _index_query(
    table: str, index: ShardedIndex, until: datetime, partition: int
) -> dict[str, Any]:
    """The Query of one partition's entries whose time is at or before ``until``."""
    return {
        "TableName": table,
        "IndexName": index.name,
        "KeyConditionExpression": f"{index.shard_key} = :shard AND {index.time_key} <= :until",
        "ExpressionAttributeValues": {":shard": wire(partition), ":until": wire(epoch(until))},
    }


def _key_of(item: Item, index: ShardedIndex) -> tuple[str, ...]:
    return tuple(next(iter(item[name].values())) for name in index.table_key)


def _cancellation_reasons(exc: ClientError) -> set[str]:
    """Why DynamoDB cancelled a transaction, one code per item; empty for any other error."""
    if exc.response["Error"]["Code"] != "TransactionCanceledException":
        return set()
    reasons = exc.response.get("CancellationReasons", [])
    return {reason.get("Code", "None") for reason in reasons}


def _retryable(exc: ClientError) -> bool:
    """An error after which trying again may work: a transient one, a lost outcome, or a
    transaction that another held one of its items for a moment."""
    if exc.response["Error"]["Code"] in _RETRYABLE_CODES:
        return True
    return bool({"TransactionConflict", "ThrottlingError"} & _cancellation_reasons(exc))


def _until_answered(send: Callable[[], T], tries: int, failing: str) -> T:
    """``send()`` until DynamoDB answers it; each repeat is safe, as every write carries a
    token that recognises its own earlier commit."""
    for attempt in range(tries):
        try:
            return send()
        except ClientError as exc:
            if not _retryable(exc):
                raise
            failure: Exception = exc
        except (ConnectionError, HTTPClientError) as exc:
            failure = exc
        _back_off(attempt)
    raise StoreError(f"{failing}: {failure}") from failure


def _back_off(attempt: int) -> None:
    time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
