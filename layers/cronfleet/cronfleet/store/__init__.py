"""Storage of tasks and executions: DynamoDB behind one adapter, ``Store``."""

from cronfleet.store.dynamodb import Store
from cronfleet.store.errors import StoreError, TaskNotFound, TaskOwnershipConflict, TaskStateError
from cronfleet.store.ledger import bounded_result
from cronfleet.store.records import AttemptRecord, ExecutionRecord, TaskRecord
from cronfleet.store.tables import DISPATCHER_ITEM, DUE_SHARDS, INFLIGHT_SHARDS, shard_of

__all__ = [
    "DISPATCHER_ITEM",
    "DUE_SHARDS",
    "INFLIGHT_SHARDS",
    "AttemptRecord",
    "ExecutionRecord",
    "Store",
    "StoreError",
    "TaskNotFound",
    "TaskOwnershipConflict",
    "TaskRecord",
    "TaskStateError",
    "bounded_result",
    "shard_of",
]
