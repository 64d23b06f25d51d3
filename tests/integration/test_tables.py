"""The template's tables, created from its own schema, behave the way the design relies on.

These run against DynamoDB Local, Amazon's engine, so a key schema or index mistake in
template.yaml shows up here instead of in a deployed stack.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from tests.integration.conftest import Tables

pytestmark = pytest.mark.integration

DUE_INDEX = "due-keys-index"
INFLIGHT_INDEX = "inflight-keys-index"
TENANT_INDEX = "tenant-index"


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _query_all(client: DynamoDBClient, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("query").paginate(**kwargs):
        items.extend(page["Items"])
    return items


def _due_now(client: DynamoDBClient, table: str, shard: int, now: int) -> set[str]:
    items = _query_all(
        client,
        TableName=table,
        IndexName=DUE_INDEX,
        KeyConditionExpression="due_shard = :shard AND due_at <= :now",
        ExpressionAttributeValues={":shard": _n(shard), ":now": _n(now)},
    )
    return {item["task_id"]["S"] for item in items}


def _shard_for(unique: str) -> int:
    # Tests share the session's tables; a shard of their own keeps their queries apart.
    return int(unique, 16) % 1_000_000_000


def test_due_index_finds_only_schedulable_tasks_that_are_due(
    dynamodb: DynamoDBClient, tables: Tables, unique: str
) -> None:
    # given: a paused task without index attributes, one due a minute ago, one due in an hour
    now = int(time.time())
    shard = _shard_for(unique)
    paused, due, later = f"paused-{unique}", f"due-{unique}", f"later-{unique}"
    dynamodb.put_item(TableName=tables.tasks, Item={"task_id": _s(paused)})
    dynamodb.put_item(
        TableName=tables.tasks,
        Item={"task_id": _s(due), "due_shard": _n(shard), "due_at": _n(now - 60)},
    )
    dynamodb.put_item(
        TableName=tables.tasks,
        Item={"task_id": _s(later), "due_shard": _n(shard), "due_at": _n(now + 3600)},
    )

    # when: the dispatcher asks its shard what is due
    found = _due_now(dynamodb, tables.tasks, shard, now)

    # then: only the due task comes back
    assert found == {due}


def test_due_index_is_sparse(dynamodb: DynamoDBClient, tables: Tables, unique: str) -> None:
    # given: a task that is due, and one that carries no due attributes
    shard = _shard_for(unique)
    indexed, unindexed = f"indexed-{unique}", f"unindexed-{unique}"
    dynamodb.put_item(
        TableName=tables.tasks,
        Item={"task_id": _s(indexed), "due_shard": _n(shard), "due_at": _n(1)},
    )
    dynamodb.put_item(TableName=tables.tasks, Item={"task_id": _s(unindexed)})

    # when: the whole index is read
    index_ids = {
        item["task_id"]["S"]
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=tables.tasks, IndexName=DUE_INDEX
        )
        for item in page["Items"]
    }

    # then: the task without due attributes is not in it at all
    assert indexed in index_ids
    assert unindexed not in index_ids


def test_pausing_a_task_removes_it_from_the_due_index(
    dynamodb: DynamoDBClient, tables: Tables, unique: str
) -> None:
    # given: a due task
    shard = _shard_for(unique)
    task_id = f"task-{unique}"
    dynamodb.put_item(
        TableName=tables.tasks,
        Item={"task_id": _s(task_id), "due_shard": _n(shard), "due_at": _n(100)},
    )
    assert _due_now(dynamodb, tables.tasks, shard, 200) == {task_id}

    # when: it is paused by removing its due attributes
    dynamodb.update_item(
        TableName=tables.tasks,
        Key={"task_id": _s(task_id)},
        UpdateExpression="REMOVE due_shard, due_at",
    )

    # then: the dispatcher no longer sees it
    assert _due_now(dynamodb, tables.tasks, shard, 200) == set()


def test_conditional_put_refuses_a_second_task_with_the_same_id(
    dynamodb: DynamoDBClient, tables: Tables, unique: str
) -> None:
    # given: a registered task
    task_id = f"task-{unique}"
    dynamodb.put_item(
        TableName=tables.tasks,
        Item={"task_id": _s(task_id), "schedule": _s("rate(1 hour)")},
        ConditionExpression="attribute_not_exists(task_id)",
    )

    # when: the same id is registered again under the same condition
    with pytest.raises(ClientError) as refused:
        dynamodb.put_item(
            TableName=tables.tasks,
            Item={"task_id": _s(task_id), "schedule": _s("rate(5 minutes)")},
            ConditionExpression="attribute_not_exists(task_id)",
        )

    # then: it is refused and the first definition is untouched
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    item = dynamodb.get_item(TableName=tables.tasks, Key={"task_id": _s(task_id)})["Item"]
    assert item["schedule"] == _s("rate(1 hour)")


def test_a_slot_can_be_claimed_only_once(
    dynamodb: DynamoDBClient, tables: Tables, unique: str
) -> None:
    # given: one dispatcher claimed the 09:00 slot of a task
    key = {"task_id": _s(f"task-{unique}"), "slot": _s("2025-01-06T09:00:00Z")}
    claim = "attribute_not_exists(task_id) AND attribute_not_exists(slot)"
    dynamodb.put_item(
        TableName=tables.executions,
        Item={**key, "status": _s("PENDING")},
        ConditionExpression=claim,
    )

    # when: a second dispatcher (or the same tick delivered twice) claims it too
    with pytest.raises(ClientError) as refused:
        dynamodb.put_item(
            TableName=tables.executions,
            Item={**key, "status": _s("PENDING")},
            ConditionExpression=claim,
        )

    # then: the second claim loses, so the slot runs once
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_inflight_index_holds_only_pending_and_running_executions(
    dynamodb: DynamoDBClient, tables: Tables, unique: str
) -> None:
    # given: a running execution past its deadline, and one that already succeeded
    now = int(time.time())
    shard = _shard_for(unique)
    task_id = f"task-{unique}"
    running = {"task_id": _s(task_id), "slot": _s("2025-01-06T09:00:00Z")}
    finished = {"task_id": _s(task_id), "slot": _s("2025-01-06T08:00:00Z")}
    dynamodb.put_item(
        TableName=tables.executions,
        Item={
            **running,
            "status": _s("RUNNING"),
            "inflight_shard": _n(shard),
            "deadline_at": _n(now - 5),
        },
    )
    dynamodb.put_item(
        TableName=tables.executions,
        Item={
            **finished,
            "status": _s("RUNNING"),
            "inflight_shard": _n(shard),
            "deadline_at": _n(now - 3600),
        },
    )
    dynamodb.update_item(
        TableName=tables.executions,
        Key=finished,
        UpdateExpression="SET #status = :done REMOVE inflight_shard, deadline_at",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":done": _s("SUCCEEDED")},
    )

    # when: the watchdog looks for overdue in-flight runs, without a scan
    overdue = _query_all(
        dynamodb,
        TableName=tables.executions,
        IndexName=INFLIGHT_INDEX,
        KeyConditionExpression="inflight_shard = :shard AND deadline_at <= :now",
        ExpressionAttributeValues={":shard": _n(shard), ":now": _n(now)},
    )

    # then: only the running one is found, as its keys alone; the finished one left the index
    assert overdue == [
        {
            "task_id": _s(task_id),
            "slot": _s("2025-01-06T09:00:00Z"),
            "inflight_shard": _n(shard),
            "deadline_at": _n(now - 5),
        }
    ]


def test_index_keys_must_have_the_template_types(
    dynamodb: DynamoDBClient, tables: Tables, unique: str
) -> None:
    # when: next-run time is written as a string instead of epoch seconds
    with pytest.raises(ClientError) as refused:
        dynamodb.put_item(
            TableName=tables.tasks,
            Item={
                "task_id": _s(f"task-{unique}"),
                "due_shard": _n(0),
                "due_at": _s("2025-01-06T09:00:00Z"),
            },
        )

    # then: DynamoDB refuses it rather than silently leaving the task out of the index
    assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_execution_history_expires_through_ttl_on_expires_at(
    dynamodb: DynamoDBClient, tables: Tables, template: dict[str, Any]
) -> None:
    # given: the TTL attribute the template declares
    declared = template["Resources"]["ExecutionsTable"]["Properties"]["TimeToLiveSpecification"]

    # when: the table built from the template is described
    ttl = dynamodb.describe_time_to_live(TableName=tables.executions)["TimeToLiveDescription"]

    # then: TTL is on, on expires_at
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    assert ttl["AttributeName"] == declared["AttributeName"] == "expires_at"


def _tenant_page(
    client: DynamoDBClient, table: str, tenant: str, external_id: str | None = None
) -> list[dict[str, Any]]:
    condition, values = "tenant = :tenant", {":tenant": _s(tenant)}
    if external_id is not None:
        condition += " AND begins_with(tenant_sort, :external)"
        values[":external"] = _s(f"{external_id}#")
    return _query_all(
        client,
        TableName=table,
        IndexName=TENANT_INDEX,
        KeyConditionExpression=condition,
        ExpressionAttributeValues=values,
    )


def test_tenant_index_lists_only_a_tenants_live_schedules_in_external_id_order(
    dynamodb: DynamoDBClient, tables: Tables, unique: str
) -> None:
    # given: two schedules of a tenant (one with an external id), one of another tenant, a
    # template task (no tenant) and a deleted schedule (its tenant_sort removed)
    tenant, other = f"acme-{unique}", f"globex-{unique}"
    rows = {
        f"s-b-{unique}": (tenant, f"project-42#s-b-{unique}"),
        f"s-a-{unique}": (tenant, f"#s-a-{unique}"),
        f"s-c-{unique}": (other, f"#s-c-{unique}"),
        f"s-d-{unique}": (tenant, f"project-7#s-d-{unique}"),
    }
    for task_id, (owner, sort) in rows.items():
        dynamodb.put_item(
            TableName=tables.tasks,
            Item={"task_id": _s(task_id), "tenant": _s(owner), "tenant_sort": _s(sort)},
        )
    dynamodb.put_item(TableName=tables.tasks, Item={"task_id": _s(f"template-{unique}")})
    dynamodb.update_item(
        TableName=tables.tasks,
        Key={"task_id": _s(f"s-d-{unique}")},
        UpdateExpression="SET deleted = :yes REMOVE tenant_sort",
        ExpressionAttributeValues={":yes": {"BOOL": True}},
    )

    # when: the API lists the tenant's schedules, then those of one external id
    listed = [item["task_id"]["S"] for item in _tenant_page(dynamodb, tables.tasks, tenant)]
    by_external = _tenant_page(dynamodb, tables.tasks, tenant, "project-42")

    # then: only the tenant's live schedules, those without an external id first
    assert listed == [f"s-a-{unique}", f"s-b-{unique}"]
    assert [item["task_id"]["S"] for item in by_external] == [f"s-b-{unique}"]


def test_tenant_index_holds_what_a_listed_schedule_shows_not_its_run_counters(
    dynamodb: DynamoDBClient, tables: Tables, unique: str
) -> None:
    # given: a schedule with its definition and state, and the counters runs keep on the item
    task_id, tenant = f"s-{unique}", f"acme-{unique}"
    dynamodb.put_item(
        TableName=tables.tasks,
        Item={
            "task_id": _s(task_id),
            "tenant": _s(tenant),
            "tenant_sort": _s(f"#{task_id}"),
            "definition": _s('{"Schedule": "rate(1 hour)"}'),
            "paused": {"BOOL": False},
            "next_run": _s("2025-01-06T10:00:00Z"),
            "owner": _s(f"api#{tenant}"),
            "version": _n(3),
            "stats_runs": _n(12),
            "dur_b4": _n(2),
        },
    )

    # when: it is read from the index
    (item,) = _tenant_page(dynamodb, tables.tasks, tenant)

    # then: the listed fields are there, the run counters are not
    assert item["definition"] == _s('{"Schedule": "rate(1 hour)"}')
    assert (item["owner"], item["version"]) == (_s(f"api#{tenant}"), _n(3))
    assert "stats_runs" not in item
    assert "dur_b4" not in item


def test_the_local_runtime_creates_the_indexes_of_a_new_stack_as_the_template_declares(
    dynamodb: DynamoDBClient, template: dict[str, Any], repo_root: Path, unique: str
) -> None:
    from cronfleet_tools.local.dynamodb_local import create_tables_from_template

    # given: the template's declarations of each table's indexes (those under Fn::If exist
    # only while a deployed stack upgrades, with PreviousIndexes=keep)
    declared = {
        table: {
            index["IndexName"]: index
            for index in template["Resources"][table]["Properties"]["GlobalSecondaryIndexes"]
            if "Fn::If" not in index
        }
        for table in ("TasksTable", "ExecutionsTable")
    }
    assert set(declared["TasksTable"]) == {"due-keys-index", TENANT_INDEX}
    assert set(declared["ExecutionsTable"]) == {"inflight-keys-index"}

    # when: the local runtime builds its tables from template.yaml
    names = create_tables_from_template(dynamodb, repo_root / "template.yaml", f"local-{unique}-")
    try:
        created = {
            table: {
                index["IndexName"]: index
                for index in dynamodb.describe_table(TableName=names[table])["Table"][
                    "GlobalSecondaryIndexes"
                ]
            }
            for table in declared
        }
    finally:
        for name in names.values():
            dynamodb.delete_table(TableName=name)

    # then: each table has exactly those indexes, with the declared keys and projection
    for table, indexes in declared.items():
        assert set(created[table]) == set(indexes)
        for name, index in indexes.items():
            assert created[table][name]["KeySchema"] == index["KeySchema"]
            projection = created[table][name]["Projection"]
            assert projection["ProjectionType"] == index["Projection"]["ProjectionType"]
            assert set(projection.get("NonKeyAttributes", ())) == set(
                index["Projection"].get("NonKeyAttributes", ())
            )
