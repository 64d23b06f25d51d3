"""The benchmarks' own code, small, inside `make test`: each figure runs end to end and counts
what it claims to count. No timing is asserted (that is `make bench`'s job, never a test's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks import dispatch, fanout

if TYPE_CHECKING:
    from cronfleet_tools.local.dynamodb_local import DynamoDBLocal


def test_the_fanout_figure_dispatches_every_shard_and_projects_from_the_template(
    dynamodb_local: DynamoDBLocal,
) -> None:
    lines: list[str] = []

    result = fanout.measure(dynamodb_local, 400, lines.append, warm_up=20)

    assert result.handed_off == result.shards == 8
    assert sum(run.tasks for run in result.runs) == result.invoked == 400
    assert sorted(run.shard for run in result.runs) == list(range(8))
    assert result.cpu_ms_per_task > result.claims_only_cpu_ms > 0
    projection = result.projection()
    assert projection.memory_mb == fanout.worker_memory_mb() == 1769
    assert projection.tasks == max(run.tasks for run in result.runs)
    assert projection.shard_seconds == fanout.WORKER_COLD_START_SECONDS + max(
        projection.cpu_bound_seconds, projection.wait_bound_seconds
    )
    assert any("shard 7:" in line for line in lines)


def test_the_dispatch_figure_pairs_its_rounds(dynamodb_local: DynamoDBLocal) -> None:
    client = dynamodb_local.client()

    result = dispatch.dispatch_throughput(client, 60, 4, 3, lambda _: None)

    assert len(result.cronfleet) == len(result.baseline) == 3
    assert len(result.round_ratios) == 3
    assert min(result.round_ratios) <= result.ratio <= max(result.round_ratios)
