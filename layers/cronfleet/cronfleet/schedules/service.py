"""Schedules made at run time, through the API: tasks like the template's, owned by a tenant.

Every schedule is validated by the task definition's own rules and registered with the same
versioned write as a deploy (``Store.register``), under the owner ``api#<tenant>``: the
dispatcher, the ledger, alerts and the audit treat it as any task, and neither a deploy nor
another tenant can change it. Its target is one of the stack's task functions, by an
allow-list, or an Http target (with the HTTP caller's URL guard).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cronfleet import clock
from cronfleet.errors import CronfleetError
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.registry.definition import TaskDefinition, parse_task_definition
from cronfleet.registry.problems import InvalidTaskDefinition, Problem
from cronfleet.schedules.models import (
    SCHEDULE_ID_PATTERN,
    ScheduleCreate,
    ScheduleFields,
    to_field,
    to_properties,
)
from cronfleet.store import Store, TaskOwnershipConflict
from cronfleet.store.records import ExecutionRecord, TaskRecord
from cronfleet.store.schedules import QuotaExceeded, api_owner, tenant_sort

MAX_NEXT_RUNS = 50


class ScheduleNotFound(CronfleetError):
    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"no schedule '{schedule_id}'")


class ScheduleConflict(CronfleetError):
    pass


class InvalidSchedule(CronfleetError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidCursor(CronfleetError):
    pass


@dataclass(frozen=True)
class Stored:
    """A schedule as stored, and whether this request created it."""

    task: TaskRecord
    created: bool = False


@dataclass
class ScheduleService:
    store: Store
    attempts: Callable[[], Attempts]  # made on the first trigger: only it invokes
    functions: Mapping[str, str]  # the allow-list: logical id -> function name
    quota: int
    now: Callable[[], datetime] = clock.now

    # --- writes ------------------------------------------------------------------------------

    def create(self, tenant: str, body: ScheduleCreate) -> Stored:
        """Create a schedule; with a deduplication key, the tenant's one schedule of that key
        (created the first time, updated after), never a second."""
        key = body.deduplication_key
        schedule_id = _id_for(tenant, key) if key else f"s-{uuid.uuid4().hex[:24]}"
        fields = body.model_dump(by_alias=True, exclude_unset=True, exclude_none=True)
        fields.pop("deduplicationKey", None)
        fields.pop("externalId", None)
        return self._write(tenant, schedule_id, fields, body.external_id, key, creating=True)

    def update(self, tenant: str, schedule_id: str, body: ScheduleFields) -> Stored:
        """Change the fields given; the others keep their values."""
        current = self._own(tenant, schedule_id)
        fields = _fields_of(current.definition, self.functions)
        changes = body.model_dump(by_alias=True, exclude_unset=True)
        external_id = changes.pop("externalId", current.external_id)
        if "http" in changes and changes["http"] is not None:
            fields.pop("function", None)
        if "function" in changes and changes["function"] is not None:
            fields.pop("http", None)
        fields.update({name: value for name, value in changes.items() if value is not None})
        for name in [name for name, value in changes.items() if value is None]:
            fields.pop(name, None)  # an explicit null puts the field back to its default
        return self._write(
            tenant, schedule_id, fields, external_id, current.dedup_key, creating=False
        )

    def delete(self, tenant: str, schedule_id: str) -> None:
        self._own(tenant, schedule_id)
        # False only when a concurrent delete (or this one's own retry) already took it out.
        self.store.delete_schedule(schedule_id, tenant, self.now())

    def pause(self, tenant: str, schedule_id: str) -> TaskRecord:
        self._own(tenant, schedule_id)
        self.store.pause(schedule_id, self.now())
        return self._own(tenant, schedule_id)

    def resume(self, tenant: str, schedule_id: str) -> TaskRecord:
        task = self._own(tenant, schedule_id)
        return self.store.resume(
            schedule_id, task.definition.compiled_schedule().next_run, self.now()
        )

    def trigger(
        self, tenant: str, schedule_id: str, payload: dict[str, Any] | None
    ) -> tuple[str, bool]:
        """Start a manual run now; its slot, and whether Lambda accepted the invoke."""
        task = self._own(tenant, schedule_id)
        return self.attempts().start_manual_run(task, self.now(), payload=payload)

    # --- reads -------------------------------------------------------------------------------

    def get(self, tenant: str, schedule_id: str) -> TaskRecord:
        return self._own(tenant, schedule_id)

    def page(
        self,
        tenant: str,
        *,
        external_id: str | None,
        enabled: bool | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[TaskRecord], str | None]:
        """One page of the tenant's schedules (a page filtered by ``enabled`` may hold fewer
        than ``limit``; follow the cursor until it is None)."""
        start = _decode_cursor(cursor, tenant) if cursor else None
        records, last = self.store.tenant_page(
            tenant, external_id=external_id, limit=limit, start=start
        )
        if enabled is not None:
            records = [r for r in records if r.definition.enabled is enabled]
        return records, _encode_cursor(last) if last else None

    def executions(
        self, tenant: str, schedule_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[ExecutionRecord], str | None]:
        self._own(tenant, schedule_id)
        before = _decode_slot_cursor(cursor) if cursor else None
        records, last = self.store.execution_page(schedule_id, limit=limit, before_slot=before)
        return records, _encode_cursor({"slot": last}) if last else None

    def next_runs(self, task: TaskRecord, count: int) -> tuple[str, list[datetime]]:
        """The schedule in words, and its next ``count`` runs from now."""
        compiled = task.definition.compiled_schedule()
        return compiled.describe(), compiled.next_runs(self.now(), min(count, MAX_NEXT_RUNS))

    # --- the one write -----------------------------------------------------------------------

    def _write(
        self,
        tenant: str,
        schedule_id: str,
        fields: dict[str, Any],
        external_id: str | None,
        dedup_key: str | None,
        *,
        creating: bool,
    ) -> Stored:
        now = self.now()
        definition = self._definition(schedule_id, fields, now)
        attributes = {"tenant": tenant, "tenant_sort": tenant_sort(external_id, schedule_id)}
        if external_id is not None:
            attributes["external_id"] = external_id
        if dedup_key is not None:
            attributes["dedup_key"] = dedup_key
        outcome: dict[str, bool] = {}

        def admit(current: TaskRecord | None) -> list[dict[str, Any]]:
            new = current is None or current.deleted
            outcome["created"] = new
            if not new:
                return []
            if not creating:  # deleted meanwhile: an update brings nothing back
                raise ScheduleNotFound(schedule_id)
            if self.store.schedules_of(tenant) >= self.quota:
                raise QuotaExceeded(tenant, self.quota)
            return [self.store.counted(tenant, +1, quota=self.quota)]

        try:
            task = self.store.register(
                definition,
                definition.compiled_schedule().next_run,
                now,
                owner=api_owner(tenant),
                attributes=attributes,
                admit=admit,
            )
        except TaskOwnershipConflict:
            raise ScheduleConflict(
                f"'{schedule_id}' is a task declared elsewhere (a template's, or another "
                "tenant's); the API changes only its own schedules"
            ) from None
        return Stored(task, created=outcome.get("created", False))

    def _definition(
        self, schedule_id: str, fields: dict[str, Any], now: datetime
    ) -> TaskDefinition:
        fields = dict(fields)
        function = fields.get("function")
        if function is not None:
            if function not in self.functions:
                allowed = ", ".join(sorted(self.functions)) or "none"
                raise InvalidSchedule(
                    "function", f"must be one of this stack's task functions ({allowed})"
                )
            fields["function"] = self.functions[function]
        properties = to_properties(fields)
        properties["Name"] = schedule_id
        if isinstance(properties.get("Payload"), dict):
            # As CloudFormation would send it: a JSON string keeps the payload's types.
            properties["Payload"] = json.dumps(properties["Payload"])
        try:
            return parse_task_definition(schedule_id, properties, now=now)
        except InvalidTaskDefinition as exc:
            first: Problem = exc.problems[0]
            raise InvalidSchedule(to_field(first.field_path) or "body", first.reason) from None

    def _own(self, tenant: str, schedule_id: str) -> TaskRecord:
        """The tenant's live schedule; anything else (another tenant's, a template task, a
        deleted one) is not found, so an id never tells a caller what exists elsewhere."""
        task = self.store.get_task(schedule_id) if _is_schedule_id(schedule_id) else None
        if task is None or task.deleted or task.owner != api_owner(tenant):
            raise ScheduleNotFound(schedule_id)
        return task


def _id_for(tenant: str, key: str) -> str:
    return "s-" + hashlib.sha256(f"{tenant}\x00{key}".encode()).hexdigest()[:24]


def _is_schedule_id(value: str) -> bool:
    import re

    return re.fullmatch(SCHEDULE_ID_PATTERN, value) is not None


def _fields_of(definition: TaskDefinition, functions: Mapping[str, str]) -> dict[str, Any]:
    """A stored definition as this API's fields (the inverse of to_properties)."""
    dumped = definition.model_dump(by_alias=True, exclude_none=True, mode="json")
    for internal in ("Name", "Tags", "ServiceToken", "ServiceTimeout"):
        dumped.pop(internal, None)

    def camel(value: Any, key: str) -> Any:
        if key in ("Payload", "Headers", "Body") or not isinstance(value, dict):
            return value
        return {k[:1].lower() + k[1:]: camel(v, k) for k, v in value.items()}

    fields = {key[:1].lower() + key[1:]: camel(value, key) for key, value in dumped.items()}
    if "function" in fields:
        by_name = {name: logical for logical, name in functions.items()}
        fields["function"] = by_name.get(fields["function"], fields["function"])
    return fields


def schedule_fields(task: TaskRecord, functions: Mapping[str, str]) -> dict[str, Any]:
    return _fields_of(task.definition, functions)


def _encode_cursor(key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def _decode(cursor: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor("not a cursor this API returned") from None


def _decode_cursor(cursor: str, tenant: str) -> dict[str, Any]:
    key = _decode(cursor)
    expected = {"task_id", "tenant", "tenant_sort"}
    if not isinstance(key, dict) or set(key) != expected:
        raise InvalidCursor("not a cursor this API returned")
    values = {
        name: value.get("S") if isinstance(value, dict) else None for name, value in key.items()
    }
    if not all(isinstance(value, str) for value in values.values()) or values["tenant"] != tenant:
        raise InvalidCursor("not a cursor of this tenant's list")
    return {name: {"S": value} for name, value in values.items()}


def _decode_slot_cursor(cursor: str) -> str:
    key = _decode(cursor)
    if not isinstance(key, dict) or set(key) != {"slot"} or not isinstance(key["slot"], str):
        raise InvalidCursor("not a cursor this API returned")
    return str(key["slot"])
