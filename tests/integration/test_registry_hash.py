"""A schedule with H, registered on DynamoDB Local: a template task through the registry, and an
API schedule through the schedules service, each stored with the next run its own id hashes to.

The expected minute is the hash as docs/semantics.md states it, recomputed with hashlib.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from cronfleet.lifecycle.attempts import Attempts
from cronfleet.registry.custom_resource import CustomResourceEvent, respond
from cronfleet.schedules.models import ScheduleCreate
from cronfleet.schedules.service import ScheduleService
from cronfleet.store import Store
from tests.integration.conftest import QueuedLambda

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:cronfleet-ExampleTaskFunction-1"


def draw(task_id: str, field: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{task_id}:{field}".encode()).digest()[:8], "big")


def create_event(logical_id: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "RequestType": "Create",
        "ResponseURL": "https://cloudformation-custom-resource-response.s3.amazonaws.com/x",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/cronfleet/1",
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": logical_id,
        "ResourceType": "Custom::ScheduledTask",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:registry",
            "Function": FUNCTION,
            **properties,
        },
    }


def test_a_template_task_with_h_registers_with_the_run_its_name_hashes_to(
    store: Store, unique: str
) -> None:
    # Given a task declared 'H 2 * * *' under a Name of its own
    task_id = f"nightly-{unique}"
    event = create_event("NightlyTask", {"Name": task_id, "Schedule": "H 2 * * *"})

    # When the registry handles its Create
    response = respond(event, CustomResourceEvent.model_validate(event), store, NOW)

    # Then it is registered for the next 02:xx, at the minute its id hashes to
    assert response.status == "SUCCESS", response.reason
    task = store.get_task(task_id)
    assert task is not None
    minute = draw(task_id, "minute") % 60
    assert task.next_run == datetime(2026, 12, 2, 2, minute, tzinfo=UTC)
    assert task.definition.schedule == "H 2 * * *"  # stored as written, resolved when read


def test_a_template_task_without_a_name_hashes_its_logical_id(store: Store, unique: str) -> None:
    logical_id = f"Report{unique}"
    event = create_event(logical_id, {"Schedule": "cron(H H(13-14) * * ? *)"})

    response = respond(event, CustomResourceEvent.model_validate(event), store, NOW)

    assert response.status == "SUCCESS", response.reason
    task = store.get_task(logical_id)
    assert task is not None
    minute, hour = draw(logical_id, "minute") % 60, 13 + draw(logical_id, "hour") % 2
    assert task.next_run == datetime(2026, 12, 1, hour, minute, tzinfo=UTC)


def test_a_bad_h_fails_the_deploy_naming_the_field(store: Store, unique: str) -> None:
    event = create_event("BadTask", {"Name": f"bad-{unique}", "Schedule": "H(0-99) 2 * * *"})

    response = respond(event, CustomResourceEvent.model_validate(event), store, NOW)

    assert response.status == "FAILED"
    assert response.reason == "BadTask.Schedule: minute field 'H(0-99)': 99 is out of range 0-59"
    assert store.get_task(f"bad-{unique}") is None


def test_an_api_schedule_with_h_hashes_its_schedule_id(store: Store) -> None:
    # Given the schedules service
    service = ScheduleService(
        store,
        attempts=lambda: Attempts(store, QueuedLambda()),
        functions={"ExampleTaskFunction": "cronfleet-prod-ExampleTaskFunction-1"},
        quota=10,
        now=lambda: NOW,
    )
    body = ScheduleCreate.model_validate(
        {"schedule": "H H * * *", "function": "ExampleTaskFunction"}
    )

    # When a tenant creates an 'H H * * *' schedule
    stored = service.create(f"acme-{uuid.uuid4().hex[:8]}", body)

    # Then it is stored with the run its own id hashes to
    schedule_id = stored.task.task_id
    minute, hour = draw(schedule_id, "minute") % 60, draw(schedule_id, "hour") % 24
    day = 1 if (hour, minute) > (12, 0) else 2
    assert stored.task.next_run == datetime(2026, 12, day, hour, minute, tzinfo=UTC)
    described, runs = service.next_runs(stored.task, 2)
    assert f"with H as minute {minute} and hour {hour}" in described
    assert runs[0] == stored.task.next_run
