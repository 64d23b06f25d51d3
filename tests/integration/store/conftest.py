"""Contract tests of the store's repositories, each built alone on a fresh pair of tables.

Each repository is constructed on its own (not through ``Store``), so a test shows that the
repository keeps its contract with nothing but the shared ``Tables`` base under it. What a
repository wrote is read back with the raw client where it matters: an oracle independent of
the repository's own readers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from cronfleet.store import Store
from cronfleet.store.tables import Tables

RepositoryT = TypeVar("RepositoryT", bound=Tables)


@pytest.fixture
def repository_on(store: Store) -> Callable[[type[RepositoryT]], RepositoryT]:
    """Build one repository on the tables of the ``store`` fixture."""

    def build(kind: type[RepositoryT]) -> RepositoryT:
        return kind(store.tasks_table, store.executions_table, client=store.client)

    return build


@pytest.fixture
def raw_ledger(store: Store) -> Callable[[str], list[dict[str, Any]]]:
    """Every item of a task's ledger, straight from the executions table."""

    def read(task_id: str) -> list[dict[str, Any]]:
        response = store.client.query(
            TableName=store.executions_table,
            KeyConditionExpression="task_id = :task",
            ExpressionAttributeValues={":task": {"S": task_id}},
            ConsistentRead=True,
        )
        return list(response["Items"])

    return read
