"""Figure 7's meter against DynamoDB Local: what the engine reports for each operation it
counts, and the figure end to end on a short window. No timing is asserted."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from benchmarks import run_cost
from cronfleet.store import Store

if TYPE_CHECKING:
    from cronfleet_tools.local.dynamodb_local import DynamoDBLocal
    from tests.integration.conftest import Tables

# 1,500 bytes of payload: a 2 KB write (2 units), a 4 KB read (1 unit strongly consistent).
BODY = {"S": "x" * 1500}


def _metered(dynamodb_local: DynamoDBLocal, tables: Tables) -> tuple[run_cost.Meter, Any]:
    """A meter, and a store's client whose every call it counts (as role "t")."""
    meter = run_cost.Meter()
    store = meter.attach(
        Store(tables.tasks, tables.executions, client=dynamodb_local.client()), "t"
    )
    return meter, store.client


def test_local_reports_table_and_index_units_for_every_operation_the_engine_uses(
    dynamodb_local: DynamoDBLocal, tables: Tables, unique: str
) -> None:
    # given a store whose client the meter hooks
    meter, client = _metered(dynamodb_local, tables)
    task, other = f"cost-{unique}", f"cost-{unique}-b"
    due = {"due_shard": {"N": "0"}, "due_at": {"N": "1"}}

    # when it writes and reads an item the due index holds, in each way the engine can
    client.put_item(TableName=tables.tasks, Item={"task_id": {"S": task}, "body": BODY, **due})
    client.update_item(
        TableName=tables.tasks,
        Key={"task_id": {"S": task}},
        UpdateExpression="SET due_at = :at",
        ExpressionAttributeValues={":at": {"N": "2"}},
    )
    client.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": tables.tasks,
                    "Key": {"task_id": {"S": task}},
                    "UpdateExpression": "SET due_at = :at",
                    "ExpressionAttributeValues": {":at": {"N": "3"}},
                }
            },
            {
                "Put": {
                    "TableName": tables.executions,
                    "Item": {"task_id": {"S": task}, "slot": {"S": "s"}},
                }
            },
        ]
    )
    client.batch_write_item(
        RequestItems={tables.tasks: [{"PutRequest": {"Item": {"task_id": {"S": other}, **due}}}]}
    )
    client.delete_item(TableName=tables.tasks, Key={"task_id": {"S": other}})
    client.get_item(TableName=tables.tasks, Key={"task_id": {"S": task}}, ConsistentRead=True)
    client.query(
        TableName=tables.tasks,
        IndexName="due-keys-index",
        KeyConditionExpression="due_shard = :s AND due_at <= :at",
        ExpressionAttributeValues={":s": {"N": "0"}, ":at": {"N": "3"}},
    )

    # then every call reported units, index copies included: a put writes the keys-only
    # entry (1: the 1.5 KB body is not copied), a changed index key is a delete and a put (2),
    # a transaction counts double, a transaction returns a list of capacities (one per table)
    # and both are counted
    units = meter.steps[("t", "PutItem")]
    assert (units.table_writes, units.index_writes) == (2.0, 1.0)
    units = meter.steps[("t", "UpdateItem")]
    assert (units.table_writes, units.index_writes) == (2.0, 2.0)
    units = meter.steps[("t", "TransactWriteItems")]
    assert units.table_writes == 2 * 2.0 + 2 * 1.0
    assert units.index_writes == units.transaction_index_writes == 2 * 2.0
    units = meter.steps[("t", "BatchWriteItem")]
    assert (units.table_writes, units.index_writes) == (1.0, 1.0)
    units = meter.steps[("t", "DeleteItem")]
    assert (units.table_writes, units.index_writes) == (1.0, 1.0)
    assert meter.steps[("t", "GetItem")].reads == 1.0
    assert meter.steps[("t", "Query due-keys-index")].reads > 0
    assert set(meter.operations) == {
        "PutItem",
        "UpdateItem",
        "TransactWriteItems",
        "BatchWriteItem",
        "DeleteItem",
        "GetItem",
        "Query",
    }


def test_a_write_that_keeps_the_index_keys_writes_nothing_to_the_keys_only_indexes(
    dynamodb_local: DynamoDBLocal, tables: Tables, unique: str
) -> None:
    # given a due task and an in-flight execution, each in its keys-only index
    meter, client = _metered(dynamodb_local, tables)
    task = {"task_id": {"S": f"cost-{unique}"}}
    execution = {**task, "slot": {"S": "2026-11-02T09:00:00Z"}}
    client.put_item(
        TableName=tables.tasks, Item={**task, "due_shard": {"N": "0"}, "due_at": {"N": "1"}}
    )
    client.put_item(
        TableName=tables.executions,
        Item={**execution, "inflight_shard": {"N": "0"}, "deadline_at": {"N": "1"}},
    )

    # when a finished run rewrites the task's counters and the execution's attempts, as
    # every run's last write does, without touching either index's keys
    for table, key in ((tables.tasks, task), (tables.executions, execution)):
        client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET body = :body ADD version :one",
            ExpressionAttributeValues={":body": BODY, ":one": {"N": "1"}},
        )

    # then only the tables are written, 2 units each for the 1.5 KB items
    units = meter.steps[("t", "UpdateItem")]
    assert (units.table_writes, units.index_writes) == (4.0, 0.0)


def test_local_reports_nothing_for_an_empty_query_or_a_refused_write(
    dynamodb_local: DynamoDBLocal, tables: Tables, unique: str
) -> None:
    meter, client = _metered(dynamodb_local, tables)

    client.query(
        TableName=tables.tasks,
        IndexName="due-keys-index",
        KeyConditionExpression="due_shard = :s",
        ExpressionAttributeValues={":s": {"N": "63"}},
    )
    client.put_item(TableName=tables.tasks, Item={"task_id": {"S": f"cost-{unique}"}})
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        client.put_item(
            TableName=tables.tasks,
            Item={"task_id": {"S": f"cost-{unique}"}},
            ConditionExpression="attribute_not_exists(task_id)",
        )

    query = meter.steps[("t", "Query due-keys-index")]
    assert (query.reads, query.empty_queries) == (0.0, 1)
    assert meter.steps[("t", "PutItem")].unreported == 1
    assert meter.errors == {"t PutItem ConditionalCheckFailedException": 1}


def test_the_figure_attributes_a_short_window_to_runs_and_ticks(
    dynamodb_local: DynamoDBLocal,
) -> None:
    result = run_cost.measure(dynamodb_local, hours=0.5, say=lambda _: None)

    assert result.ticks == 30
    assert result.runs["successful"] > 30  # two tasks every minute, more on the quarter hours
    success = result.per_run["successful"]
    assert success["table_writes"] > 0
    assert success["index_writes"] > 0
    assert success["reads"] > 0
    assert result.lambda_per_run["successful"]["task_invocations"] == 1.0
    # an idle tick: the heartbeat, then 8 due-index and 4 in-flight queries that find nothing
    assert result.per_idle_tick["table_writes"] == 1.0
    assert result.per_idle_tick["calls"] == 13
    assert result.per_idle_tick["empty_queries"] == 12
    assert run_cost.coverage(result) >= run_cost.COVERAGE_TARGET
