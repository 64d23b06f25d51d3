"""Reading a keys-only index's items by key: every key is answered, or the read fails loudly.

DynamoDB Local never leaves keys unprocessed, so the client here is a fake that does, as
DynamoDB does under throttling; what the store does with the answers is the logic under test.
"""

from __future__ import annotations

from typing import Any

import pytest

from cronfleet.store import StoreError
from cronfleet.store.tables import DUE_INDEX, Tables


class UnprocessingClient:
    """BatchGetItem that answers ``answered_per_call`` keys a call and leaves the rest
    unprocessed, as DynamoDB does when a partition throttles (0: it never answers)."""

    def __init__(self, items: dict[str, dict[str, Any]], answered_per_call: int) -> None:
        self.items = items
        self.answered_per_call = answered_per_call
        self.calls: list[list[str]] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, request),) = RequestItems.items()
        assert request["ConsistentRead"] is True
        assert len(request["Keys"]) <= 100
        asked = [key["task_id"]["S"] for key in request["Keys"]]
        self.calls.append(asked)
        answered, left = asked[: self.answered_per_call], asked[self.answered_per_call :]
        response: dict[str, Any] = {
            "Responses": {table: [self.items[name] for name in answered if name in self.items]}
        }
        if left:
            keys = [{"task_id": {"S": name}} for name in left]
            response["UnprocessedKeys"] = {table: {"Keys": keys}}
        return response


def _entry(name: str) -> dict[str, Any]:
    return {"task_id": {"S": name}, "due_shard": {"N": "0"}, "due_at": {"N": "60"}}


def _tables(client: UnprocessingClient) -> Tables:
    return Tables("tasks", "executions", client=client)  # type: ignore[arg-type]


def test_unprocessed_keys_are_asked_for_again_until_every_one_is_answered() -> None:
    names = [f"task-{n:03}" for n in range(150)]
    client = UnprocessingClient({n: {"task_id": {"S": n}} for n in names}, answered_per_call=40)

    items = _tables(client)._items_of("tasks", DUE_INDEX, [_entry(n) for n in names])

    # every item, in the entries' order, read 100 keys a call at most
    assert [item["task_id"]["S"] for item in items] == names
    assert client.calls[0] == names[:100]
    assert client.calls[1] == names[40:100]
    assert sum(len(call) for call in client.calls) > len(names)


def test_keys_never_answered_fail_the_read_instead_of_dropping_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("cronfleet.store.tables.time.sleep", lambda _: None)  # the back-off only
    client = UnprocessingClient({"task-a": {"task_id": {"S": "task-a"}}}, answered_per_call=0)

    with pytest.raises(StoreError, match="left 1 keys of tasks unread"):
        _tables(client)._items_of("tasks", DUE_INDEX, [_entry("task-a")])
