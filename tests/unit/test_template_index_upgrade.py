"""The keys-only indexes reach a deployed stack in the order CloudFormation allows.

CloudFormation adds or removes at most one global secondary index per table per update, and it
cannot change an existing index's projection: a new projection is a new index. A stack deployed
with the earlier layout (due-index and inflight-index, whole-item copies) therefore upgrades in
two deploys: ``PreviousIndexes=keep`` adds the keys-only index beside the old one, and the next
deploy, with the default ``drop``, removes the old one. These tests replay that sequence on the
template's own index lists, the way CloudFormation compares them: by index name and definition.
"""

from __future__ import annotations

from typing import Any

import pytest

TABLES = ("TasksTable", "ExecutionsTable")

# What stacks deployed before the keys-only indexes have: each index exactly as declared then.
EARLIER_LAYOUT: dict[str, dict[str, dict[str, Any]]] = {
    "TasksTable": {
        "due-index": {
            "KeySchema": [
                {"AttributeName": "due_shard", "KeyType": "HASH"},
                {"AttributeName": "due_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        },
    },
    "ExecutionsTable": {
        "inflight-index": {
            "KeySchema": [
                {"AttributeName": "inflight_shard", "KeyType": "HASH"},
                {"AttributeName": "deadline_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        },
    },
}


def _indexes(template: dict[str, Any], table: str, previous: str) -> dict[str, dict[str, Any]]:
    """A table's indexes as CloudFormation resolves them for PreviousIndexes=``previous``."""
    keeps = template["Conditions"]["KeepsPreviousIndexes"]
    assert keeps == {"Fn::Equals": [{"Ref": "PreviousIndexes"}, "keep"]}
    resolved = {}
    for entry in template["Resources"][table]["Properties"]["GlobalSecondaryIndexes"]:
        if "Fn::If" in entry:
            condition, when_true, when_false = entry["Fn::If"]
            assert condition == "KeepsPreviousIndexes"
            entry = when_true if previous == "keep" else when_false
            if entry == {"Ref": "AWS::NoValue"}:
                continue
        resolved[entry["IndexName"]] = {k: v for k, v in entry.items() if k != "IndexName"}
    return resolved


def _earlier(template: dict[str, Any], table: str) -> dict[str, dict[str, Any]]:
    """The earlier layout: its whole-item index, and the table's indexes that did not change."""
    current = _indexes(template, table, "drop")
    unchanged = {name: index for name, index in current.items() if "keys" not in name}
    return {**unchanged, **EARLIER_LAYOUT[table]}


def _changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """Indexes added, removed, and changed in place (refused by CloudFormation)."""
    changed = {name for name in before.keys() & after.keys() if before[name] != after[name]}
    return after.keys() - before.keys(), before.keys() - after.keys(), changed


@pytest.mark.parametrize("table", TABLES)
def test_the_upgrade_adds_one_index_then_removes_one_and_changes_none_in_place(
    template: dict[str, Any], table: str
) -> None:
    earlier = _earlier(template, table)
    kept = _indexes(template, table, "keep")
    dropped = _indexes(template, table, "drop")

    # First deploy, PreviousIndexes=keep: the keys-only index is added, nothing else moves
    added, removed, changed = _changes(earlier, kept)
    assert (len(added), removed, changed) == (1, set(), set())
    (new_index,) = added
    assert kept[new_index]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    # ...with the same keys as the index it replaces, so both answer the same queries
    (old_index,) = EARLIER_LAYOUT[table]
    assert kept[new_index]["KeySchema"] == earlier[old_index]["KeySchema"]

    # Second deploy, PreviousIndexes=drop (the default): the whole-item index goes
    added, removed, changed = _changes(kept, dropped)
    assert (added, removed, changed) == (set(), {old_index}, set())

    # Straight from the earlier layout to the default would add one and remove one in a single
    # update, which CloudFormation refuses: that is what the parameter is for.
    added, removed, _ = _changes(earlier, dropped)
    assert (len(added), len(removed)) == (1, 1)


def test_a_new_stack_gets_only_the_keys_only_indexes(template: dict[str, Any]) -> None:
    assert template["Parameters"]["PreviousIndexes"]["Default"] == "drop"
    assert set(_indexes(template, "TasksTable", "drop")) == {"due-keys-index", "tenant-index"}
    assert set(_indexes(template, "ExecutionsTable", "drop")) == {"inflight-keys-index"}


def test_the_code_reads_the_keys_only_indexes(template: dict[str, Any]) -> None:
    from cronfleet.store.tables import DUE_INDEX, INFLIGHT_INDEX

    tasks = _indexes(template, "TasksTable", "drop")[DUE_INDEX.name]
    executions = _indexes(template, "ExecutionsTable", "drop")[INFLIGHT_INDEX.name]
    assert [key["AttributeName"] for key in tasks["KeySchema"]] == [
        DUE_INDEX.shard_key,
        DUE_INDEX.time_key,
    ]
    assert [key["AttributeName"] for key in executions["KeySchema"]] == [
        INFLIGHT_INDEX.shard_key,
        INFLIGHT_INDEX.time_key,
    ]
    # The table keys the store reads each entry's item by are the tables' own keys.
    for table, index in (("TasksTable", DUE_INDEX), ("ExecutionsTable", INFLIGHT_INDEX)):
        schema = template["Resources"][table]["Properties"]["KeySchema"]
        assert tuple(key["AttributeName"] for key in schema) == index.table_key
