"""The schedules API's store work: creating many schedules, and listing one tenant's.

Both sides run against the same DynamoDB Local with the same parallelism, on fresh tables:

- **create**: ``ScheduleService.create`` (validation, the versioned register with the tenant's
  counter in its transaction, the read back) against a bare boto3 ``TransactWriteItems`` of the
  same two items per schedule, already built: the least any create could write.
- **list** (median of seven rounds, the two sides alternated): one tenant's schedules page by
  page through ``ScheduleService.page`` (100 a page, decoded into records, cursors encoded)
  against a bare ``Query`` loop on ``tenant-index`` with the same page size.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from benchmarks.fleet import fresh_tables
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.schedules.models import ScheduleCreate
from cronfleet.schedules.service import ScheduleService
from cronfleet.store import Store
from cronfleet.store.schedules import TENANT_INDEX, TENANT_ITEM_PREFIX, api_owner

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

FUNCTIONS = {"ReportFunction": "bench-report-fn"}
PAGE = 100
NOW = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SchedulesFigure:
    created: int
    create_seconds: float
    bare_create_seconds: float
    listed: int
    list_seconds: float
    bare_list_seconds: float

    @property
    def create_ratio(self) -> float:
        return self.create_seconds / self.bare_create_seconds

    @property
    def list_ratio(self) -> float:
        return self.list_seconds / self.bare_list_seconds


def _parallel(count: int, workers: int, one: Callable[[int], Any]) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - started


def measure(client: DynamoDBClient, created: int, listed: int, workers: int) -> SchedulesFigure:
    """Create ``created`` schedules over tenants of ``listed`` each, then list one tenant."""
    body = {
        "schedule": "cron(0 9 * * ? *)",
        "timezone": "America/New_York",
        "function": "ReportFunction",
        "externalId": "project-1",
    }
    with fresh_tables(client, "schedules") as tables, fresh_tables(client, "bare") as bare:
        store = Store(tables.tasks, tables.executions, client=client)
        service = ScheduleService(
            store,
            attempts=lambda: Attempts(store, None),  # type: ignore[arg-type] - never triggers
            functions=FUNCTIONS,
            quota=listed,
            now=lambda: NOW,
        )

        def create(index: int) -> None:
            tenant = f"tenant-{index // listed}"
            service.create(tenant, ScheduleCreate.model_validate(body))

        create_seconds = _parallel(created, workers, create)
        (first,), _ = store.tenant_page("tenant-0", external_id=None, limit=1, start=None)
        prototype = client.get_item(TableName=tables.tasks, Key={"task_id": {"S": first.task_id}})[
            "Item"
        ]

        def bare_create(index: int) -> None:
            tenant = f"tenant-{index // listed}"
            task_id = f"s-{uuid.uuid4().hex[:24]}"
            item = {
                **prototype,
                "task_id": {"S": task_id},
                "tenant": {"S": tenant},
                "tenant_sort": {"S": f"project-1#{task_id}"},
                "owner": {"S": api_owner(tenant)},
            }
            client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": bare.tasks,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(task_id)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": bare.tasks,
                            "Key": {"task_id": {"S": f"{TENANT_ITEM_PREFIX}{tenant}"}},
                            "UpdateExpression": "ADD schedules :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                ]
            )

        bare_create_seconds = _parallel(created, workers, bare_create)

        def service_page(cursor: Any) -> tuple[list[Any], Any]:
            return service.page(
                "tenant-0", external_id=None, enabled=None, limit=PAGE, cursor=cursor
            )

        def bare_page(start: Any) -> tuple[list[Any], Any]:
            request: dict[str, Any] = {
                "TableName": bare.tasks,
                "IndexName": TENANT_INDEX,
                "Limit": PAGE,
                "KeyConditionExpression": "tenant = :t",
                "ExpressionAttributeValues": {":t": {"S": "tenant-0"}},
            }
            if start:
                request["ExclusiveStartKey"] = start
            response = client.query(**request)
            return response["Items"], response.get("LastEvaluatedKey")

        # Alternated, round by round, so that the machine's load falls on both sides alike.
        rounds = [
            (_list_once(service_page, listed), _list_once(bare_page, listed))
            for _ in range(LIST_ROUNDS)
        ]
    return SchedulesFigure(
        created,
        create_seconds,
        bare_create_seconds,
        listed,
        statistics.median(mine for mine, _ in rounds),
        statistics.median(theirs for _, theirs in rounds),
    )


LIST_ROUNDS = 7  # the median of these: the first list on new tables warms the engine up


def _list_once(page: Callable[[Any], tuple[list[Any], Any]], expected: int) -> float:
    started = time.perf_counter()
    cursor, seen = None, 0
    while True:
        items, cursor = page(cursor)
        seen += len(items)
        if not cursor:
            break
    elapsed = time.perf_counter() - started
    if seen != expected:
        raise AssertionError(f"listed {seen} schedules, expected {expected}")
    return elapsed
