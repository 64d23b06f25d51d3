"""Storage of tasks and executions: DynamoDB behind one adapter."""

from cronfleet.store.dynamodb import (
    DISPATCHER_ITEM,
    DUE_SHARDS,
    INFLIGHT_SHARDS,
    Store,
    StoreError,
    TaskNotFound,
    TaskOwnershipConflict,
    TaskStateError,
    bounded_result,
    shard_of,
)
from cronfleet.store.records import AttemptRecord, ExecutionRecord, TaskRecord

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
