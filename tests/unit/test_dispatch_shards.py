"""Which worker reads which due partitions, and the shard event a worker accepts (pure logic)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from cronfleet.dispatch.events import MAX_CONTINUATIONS, ShardEvent
from cronfleet.dispatch.shards import shard_partitions
from cronfleet.handlers import problem_lines
from cronfleet.store import shard_of
from cronfleet.store.tables import MAX_DUE_SHARDS

SHARD_COUNTS = (1, 2, 4, 8, 16, 32, 64)


@pytest.mark.parametrize("shards", SHARD_COUNTS)
@pytest.mark.parametrize("written", SHARD_COUNTS)
def test_every_partition_ever_written_has_exactly_one_reader(shards: int, written: int) -> None:
    # Tasks were written under one shard count (``written``), the stack now has another.
    assignment = shard_partitions(shards, written)

    readers = Counter(partition for partitions in assignment for partition in partitions)
    assert len(assignment) == shards
    assert set(readers) == set(range(max(shards, written)))
    assert set(readers.values()) == {1}
    # A task written under either count is read by exactly one shard.
    for number in range(500):
        task_id = f"task-{number}"
        for count in (shards, written):
            holders = [s for s, parts in enumerate(assignment) if shard_of(task_id, count) in parts]
            assert len(holders) == 1


def test_shard_events_of_a_tick_round_trip_as_the_worker_reads_them() -> None:
    for shard, partitions in enumerate(shard_partitions(8, 16)):
        event = ShardEvent(
            tick="2026-11-02T09:00:00Z", shard=shard, shards=8, partitions=partitions
        )
        sent = event.model_dump(mode="json")
        assert sent["tick"] == "2026-11-02T09:00:00Z"
        assert ShardEvent.model_validate(sent) == event


def test_continuations_count_up_to_their_limit_and_no_further() -> None:
    event = ShardEvent(tick="2026-11-02T09:00:00Z", shard=0, shards=1, partitions=(0,))
    chain = [event]
    while (following := chain[-1].continued()) is not None:
        chain.append(following)

    assert [e.continuation for e in chain] == list(range(MAX_CONTINUATIONS + 1))
    assert {(e.tick, e.shard, e.partitions) for e in chain} == {(event.tick, 0, (0,))}


GOOD: dict[str, Any] = {
    "tick": "2026-11-02T09:00:00Z",
    "shard": 3,
    "shards": 8,
    "partitions": [3, 11],
    "continuation": 0,
}


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"tick": "2026-11-02T09:00:00"}, "tick", "timezone"),
        ({"tick": "soon"}, "tick", "datetime"),
        ({"shard": -1}, "shard", "greater than or equal to 0"),
        ({"shards": 0}, "shards", "greater than or equal to 1"),
        ({"shards": MAX_DUE_SHARDS + 1}, "shards", f"less than or equal to {MAX_DUE_SHARDS}"),
        ({"partitions": []}, "partitions", "at least 1 item"),
        ({"partitions": [3, 64]}, "partitions.1", "less than 64"),
        ({"partitions": [3, 4]}, "", "partitions [4] belong to other shards"),
        ({"partitions": [3, 3]}, "", "listed more than once"),
        ({"shard": 9}, "", "shard 9 does not exist among 8 shards"),
        ({"continuation": MAX_CONTINUATIONS + 1}, "continuation", "less than or equal to"),
        ({"extra": 1}, "extra", "Extra inputs are not permitted"),
    ],
)
def test_a_malformed_shard_event_is_refused_naming_the_field_and_the_reason(
    change: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        ShardEvent.model_validate({**GOOD, **change})

    [line] = problem_lines(raised.value)
    assert line.startswith(f"{field}: " if field else "Value error"), line
    assert reason in line
