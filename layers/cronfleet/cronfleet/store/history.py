"""The history repository: a task's ledger, read back for the CLI, the audit and the digest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cronfleet.lifecycle.slots import slot_key
from cronfleet.store.ledger import execution_key, traceback_key
from cronfleet.store.records import ExecutionRecord, text_of
from cronfleet.store.tables import Tables, wire


class HistoryRepository(Tables):
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

    def traceback(self, task_id: str, slot: str, attempt: int) -> str | None:
        """The traceback a failed attempt left, kept beside its execution; None if none.

        An entry recorded before tracebacks moved out has it in its attempt instead.
        """
        response = self._call(
            self.client.get_item,
            TableName=self.executions_table,
            Key={
                name: wire(value) for name, value in traceback_key(task_id, slot, attempt).items()
            },
        )
        item = response.get("Item")
        if item is not None:
            return text_of(item, "traceback")
        execution = self.get_execution(task_id, slot)
        if execution is None or not 0 < attempt <= len(execution.attempts):
            return None
        return execution.attempts[attempt - 1].traceback

    def get_execution(self, task_id: str, slot: str) -> ExecutionRecord | None:
        response = self._call(
            self.client.get_item,
            TableName=self.executions_table,
            Key={name: wire(value) for name, value in execution_key(task_id, slot).items()},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return ExecutionRecord.from_item(item) if item else None
