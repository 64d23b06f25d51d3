"""The schedules repository: what only schedules made through the API have.

An API schedule is a task item like a template task's, owned by ``api#<tenant>`` instead of a
stack's resource, so a deploy and the API can never write each other's tasks (the registry's
ownership check refuses both ways). Beside the task it keeps:

- ``tenant`` and ``tenant_sort`` (``<externalId>#<id>``), the keys of ``tenant-index``, so a
  tenant's schedules are listed from the index, filtered by external id with ``begins_with``,
  never scanned. A deleted schedule drops ``tenant_sort`` and so leaves the index; its item and
  history stay, as a removed template task's do.
- one counter item per tenant (``#tenant#<tenant>``), changed in the same transaction as the
  create or delete it counts, its condition holding the tenant's quota.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cronfleet.errors import CronfleetError
from cronfleet.lifecycle.slots import slot_key
from cronfleet.store.records import ExecutionRecord, Item, TaskRecord
from cronfleet.store.tables import Tables, Update, wire

TENANT_INDEX = "tenant-index"
TENANT_ITEM_PREFIX = "#tenant#"  # a task id no definition can take (ids start alphanumeric)
API_OWNER_PREFIX = "api#"


def api_owner(tenant: str) -> str:
    """The owner key of a tenant's API schedules (compare TaskOwner.key of a template task)."""
    return f"{API_OWNER_PREFIX}{tenant}"


def tenant_sort(external_id: str | None, schedule_id: str) -> str:
    return f"{external_id or ''}#{schedule_id}"


class QuotaExceeded(CronfleetError):
    """The tenant already has as many schedules as its quota allows."""

    def __init__(self, tenant: str, quota: int) -> None:
        super().__init__(f"tenant '{tenant}' already has {quota} schedules, its quota")
        self.tenant = tenant
        self.quota = quota


class ScheduleRepository(Tables):
    def tenant_page(
        self,
        tenant: str,
        *,
        external_id: str | None,
        limit: int,
        start: Item | None,
    ) -> tuple[list[TaskRecord], Item | None]:
        """One page of a tenant's live schedules from ``tenant-index``, in external-id order,
        and the key to continue from (None at the end)."""
        values: dict[str, Any] = {":tenant": wire(tenant)}
        condition = "tenant = :tenant"
        if external_id is not None:
            condition += " AND begins_with(tenant_sort, :external)"
            values[":external"] = wire(f"{external_id}#")
        request: dict[str, Any] = {
            "TableName": self.tasks_table,
            "IndexName": TENANT_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "Limit": limit,
        }
        if start is not None:
            request["ExclusiveStartKey"] = start
        response = self._call(self.client.query, **request)
        records = [TaskRecord.from_item(item) for item in response.get("Items", [])]
        return records, response.get("LastEvaluatedKey")

    def schedules_of(self, tenant: str) -> int:
        """How many live schedules the tenant has, by its counter."""
        response = self._call(
            self.client.get_item,
            TableName=self.tasks_table,
            Key={"task_id": wire(f"{TENANT_ITEM_PREFIX}{tenant}")},
            ConsistentRead=True,
        )
        count = response.get("Item", {}).get("schedules")
        return int(count["N"]) if count is not None else 0

    def counted(self, tenant: str, change: int, *, quota: int | None = None) -> dict[str, Any]:
        """The transaction item that changes the tenant's counter by ``change``; with a quota,
        on the condition that the count stays within it."""
        update = Update().add("schedules", change)
        condition = None
        if quota is not None:
            limit = update.value(quota - change)
            condition = (
                f"attribute_not_exists({update.path('schedules')}) OR "
                f"{update.path('schedules')} <= {limit}"
            )
        key = {"task_id": f"{TENANT_ITEM_PREFIX}{tenant}"}
        return {"Update": update.request(self.tasks_table, key, condition)}

    def delete_schedule(self, schedule_id: str, tenant: str, now: datetime) -> bool:
        """Take a tenant's schedule out of scheduling and out of its list, and count it out, in
        one transaction. False when it is not the tenant's live schedule (already deleted, a
        retry of this delete after its response was lost, another owner's, or unknown)."""
        update = Update().bump_version().set("deleted", True).set("updated_at", slot_key(now))
        update.remove("due_shard", "due_at", "catchup_through", "tenant_sort")
        condition = (
            f"{update.exists('task_id')} AND {update.equals('owner', api_owner(tenant))} AND "
            f"{update.path('deleted')} <> {update.value(True)}"
        )
        items = [
            {"Update": update.request(self.tasks_table, {"task_id": schedule_id}, condition)},
            self.counted(tenant, -1),
        ]
        return self._transact(items)

    def execution_page(
        self, task_id: str, *, limit: int, before_slot: str | None
    ) -> tuple[list[ExecutionRecord], str | None]:
        """One page of a task's ledger, newest first, and the slot to continue before."""
        values: dict[str, Any] = {":task": wire(task_id)}
        condition = "task_id = :task"
        if before_slot is not None:
            condition += " AND slot < :before"
            values[":before"] = wire(before_slot)
        response = self._call(
            self.client.query,
            TableName=self.executions_table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )
        records = [ExecutionRecord.from_item(item) for item in response.get("Items", [])]
        more = "LastEvaluatedKey" in response and records
        return records, records[-1].slot if more else None
