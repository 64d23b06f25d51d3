"""The shapes of ledger entries, as the repositories write them to the executions table.

:mod:`cronfleet.store.records` reads the same attributes back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cronfleet.lifecycle.slots import SlotRange, slot_key
from cronfleet.lifecycle.states import RunStatus, SkipReason, Trigger
from cronfleet.store.tables import wire

RESULT_LIMIT_BYTES = 4096
ERROR_TYPE_LIMIT = 256
ERROR_MESSAGE_LIMIT = 2048
TRACEBACK_LIMIT = 8192


# A failed attempt's traceback is an entry of its own, beside the ledger rather than in its
# execution: up to 8 KB that every later write of the execution (the retry's dispatch, its start
# and its end) would otherwise rewrite, at a unit per KB each time. Its partition is the task id
# with this suffix, which no task id can end with, so a task's ledger queries never meet it.
TRACEBACKS_SUFFIX = "#tracebacks"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 20] + "... [truncated]"


def bounded_result(result: Any) -> str:
    """A task's return value as JSON, cut to a size that keeps the item small."""
    text = json.dumps(result, default=str, separators=(",", ":"))
    if len(text.encode()) <= RESULT_LIMIT_BYTES:
        return text
    return json.dumps({"truncated": True, "preview": text[: RESULT_LIMIT_BYTES // 2]})


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def execution_key(task_id: str, slot: str) -> dict[str, str]:
    return {"task_id": task_id, "slot": slot}


def traceback_key(task_id: str, slot: str, attempt: int) -> dict[str, str]:
    return {"task_id": f"{task_id}{TRACEBACKS_SUFFIX}", "slot": f"{slot}#{attempt}"}


def traceback_entry(
    table: str, task_id: str, slot: str, attempt: int, traceback: str, *, expires_at: int
) -> dict[str, Any]:
    """A transaction's Put of an attempt's traceback (see TRACEBACKS_SUFFIX)."""
    key = traceback_key(task_id, slot, attempt)
    item = {name: wire(value) for name, value in key.items()}
    item["traceback"] = wire(truncate(traceback, TRACEBACK_LIMIT))
    item["expires_at"] = wire(expires_at)
    return {"Put": {"TableName": table, "Item": item}}


def attempt_entry(
    number: int, status: RunStatus, *, dispatched_at: datetime, token: str | None = None
) -> dict[str, Any]:
    """One element of an execution's ``attempts`` list."""
    fields: dict[str, Any] = {
        "attempt": wire(number),
        "status": wire(status.value),
        "dispatched_at": wire(iso(dispatched_at)),
    }
    if token is not None:
        fields["dispatch_token"] = wire(token)
    return {"M": fields}


def final_entry(
    task_id: str,
    slot: datetime,
    status: RunStatus,
    *,
    now: datetime,
    expires_at: int,
    skip_reason: SkipReason | None = None,
) -> dict[str, Any]:
    """An entry that is final as soon as it is written: a SKIPPED or MISSED slot."""
    item = {
        "task_id": wire(task_id),
        "slot": wire(slot_key(slot)),
        "status": wire(status.value),
        "trigger": wire(Trigger.SCHEDULE.value),
        "attempt": wire(0),
        "recorded_at": wire(slot_key(now)),
        "expires_at": wire(expires_at),
    }
    if skip_reason is not None:
        item["skip_reason"] = wire(skip_reason.value)
    return item


def ranged_final_entry(
    task_id: str,
    slots: SlotRange,
    *,
    now: datetime,
    expires_at: int,
    skip_reason: SkipReason | None = None,
) -> dict[str, Any]:
    """One entry for a run of slots: SKIPPED with ``skip_reason``, else MISSED."""
    status = RunStatus.SKIPPED if skip_reason is not None else RunStatus.MISSED
    item = final_entry(
        task_id, slots.first, status, now=now, expires_at=expires_at, skip_reason=skip_reason
    )
    item["range_until"] = wire(slot_key(slots.until))
    if slots.count is not None:
        item["slot_count"] = wire(slots.count)
    return item


def new_entry(table: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """A transaction's Put of a ledger entry, refused if the slot already has one."""
    return {
        "Put": {
            "TableName": table,
            "Item": dict(item),
            "ConditionExpression": "attribute_not_exists(slot)",
        }
    }
