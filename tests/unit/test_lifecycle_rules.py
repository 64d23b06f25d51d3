"""The pure rules of a slot's life: retry backoff, catch-up and overlap planning, run stats."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronfleet.dispatch.plan import MAX_MISSED_ITEMS, plan_slots
from cronfleet.lifecycle.retry import retry_delay
from cronfleet.lifecycle.states import Trigger
from cronfleet.registry.definition import RetryPolicy, TaskDefinition, parse_task_definition
from cronfleet.stats import TaskStats, duration_bucket

TICK = datetime(2026, 11, 2, 11, 0, tzinfo=UTC)


def task(**properties: Any) -> TaskDefinition:
    return parse_task_definition("t", {"Schedule": "*/15 * * * *", "Function": "fn", **properties})


def at(hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return TICK.replace(hour=hour, minute=minute)


# --- retry backoff ---------------------------------------------------------------------------


def test_backoff_without_jitter_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(
        IntervalSeconds=60, BackoffRate=2, MaxDelaySeconds=300, JitterStrategy="NONE"
    )
    assert [retry_delay(policy, attempt) for attempt in range(1, 6)] == [60, 120, 240, 300, 300]


@settings(max_examples=200)
@given(attempt=st.integers(1, 9), seed=st.integers(0, 2**32))
def test_full_jitter_stays_between_the_interval_and_the_capped_backoff(
    attempt: int, seed: int
) -> None:
    policy = RetryPolicy(IntervalSeconds=60, BackoffRate=3, MaxDelaySeconds=3600)
    delay = retry_delay(policy, attempt, random.Random(seed))
    assert 60 <= delay <= min(3600, 60 * 3 ** (attempt - 1))


def test_full_jitter_spreads_retries_of_tasks_that_failed_together() -> None:
    policy = RetryPolicy(IntervalSeconds=60, BackoffRate=2, MaxDelaySeconds=3600)
    rng = random.Random(7)
    delays = {retry_delay(policy, 4, rng) for _ in range(50)}
    assert len(delays) > 25


# --- catch-up and overlap ----------------------------------------------------------------------


def test_an_on_time_slot_runs_on_schedule() -> None:
    definition = task()
    plan = plan_slots(
        definition, definition.compiled_schedule(), at("11:00"), TICK, busy=False, queue_taken=False
    )
    assert plan.runs == [(at("11:00"), Trigger.SCHEDULE)]
    assert (plan.missed, plan.missed_range, plan.next_due) == ([], None, at("11:15"))


@pytest.mark.parametrize(
    ("policy", "runs", "missed"),
    [
        ("latest", ["10:45"], ["10:15", "10:30"]),
        ("all", ["10:15", "10:30", "10:45"], []),
        ("none", [], ["10:15", "10:30", "10:45"]),
    ],
)
def test_catchup_policies_within_the_maximum_lateness(
    policy: str, runs: list[str], missed: list[str]
) -> None:
    # the tick is 10:50: 10:15, 10:30 and 10:45 were never dispatched (none is the tick's own)
    definition = task(Catchup={"Policy": policy})
    tick = at("10:50")
    plan = plan_slots(
        definition, definition.compiled_schedule(), at("10:15"), tick, busy=False, queue_taken=False
    )
    assert [(slot, trigger) for slot, trigger in plan.runs] == [
        (at(r), Trigger.CATCHUP) for r in runs
    ]
    assert plan.missed == [at(m) for m in missed]


def test_catchup_all_is_bounded_by_max_runs_keeping_the_latest() -> None:
    definition = task(Catchup={"Policy": "all", "MaxRuns": 2})
    plan = plan_slots(
        definition,
        definition.compiled_schedule(),
        at("10:15"),
        at("10:50"),
        busy=False,
        queue_taken=False,
    )
    assert [slot for slot, _ in plan.runs] == [at("10:30"), at("10:45")]
    assert plan.missed == [at("10:15")]


def test_many_missed_slots_become_one_ranged_entry() -> None:
    definition = task(
        Schedule="* * * * *", Catchup={"Policy": "latest", "MaxLatenessSeconds": 7200}
    )
    plan = plan_slots(
        definition, definition.compiled_schedule(), at("09:30"), TICK, busy=False, queue_taken=False
    )
    assert plan.runs == [(TICK, Trigger.SCHEDULE)]
    assert plan.missed == []
    assert plan.missed_range is not None
    assert (plan.missed_range.first, plan.missed_range.until, plan.missed_range.count) == (
        at("09:30"),
        TICK,
        90,
    )
    assert plan.missed_range.count > MAX_MISSED_ITEMS


@pytest.mark.parametrize(
    ("overlap", "queue_taken", "runs", "queued", "skipped"),
    [
        ("allow", False, 1, False, 0),
        ("skip", False, 0, False, 1),
        ("queue_one", False, 0, True, 0),
        ("queue_one", True, 0, False, 1),
    ],
)
def test_overlap_while_the_previous_run_is_going(
    overlap: str, queue_taken: bool, runs: int, queued: bool, skipped: int
) -> None:
    definition = task(Overlap=overlap)
    plan = plan_slots(
        definition, definition.compiled_schedule(), TICK, TICK, busy=True, queue_taken=queue_taken
    )
    assert (len(plan.runs), plan.queued is not None, len(plan.skipped)) == (runs, queued, skipped)


@settings(max_examples=150, deadline=None)
@given(
    due_minutes_ago=st.integers(0, 600),
    policy=st.sampled_from(["latest", "all", "none"]),
    lateness=st.sampled_from([60, 900, 3600]),
    busy=st.booleans(),
    overlap=st.sampled_from(["allow", "skip", "queue_one"]),
)
def test_every_slot_a_tick_passes_is_planned_exactly_once(
    due_minutes_ago: int, policy: str, lateness: int, busy: bool, overlap: str
) -> None:
    definition = task(
        Schedule="*/5 * * * *",
        Overlap=overlap,
        Catchup={"Policy": policy, "MaxLatenessSeconds": lateness},
    )
    schedule = definition.compiled_schedule()
    due = schedule.next_run(TICK - timedelta(minutes=due_minutes_ago, seconds=1))
    assert due is not None
    plan = plan_slots(definition, schedule, due, TICK, busy=busy, queue_taken=False)

    expected = [due, *schedule.runs_between(due, TICK)]
    planned = [slot for slot, _ in plan.runs] + plan.skipped + plan.missed
    if plan.queued:
        planned.append(plan.queued[0])
    if plan.missed_range:
        ranged = [s for s in expected if plan.missed_range.first <= s < plan.missed_range.until]
        assert plan.missed_range.count == len(ranged)
        planned += ranged
    assert sorted(planned) == expected  # nothing dropped, nothing twice
    assert plan.next_due == schedule.next_run(TICK)


# --- stats -------------------------------------------------------------------------------------


@settings(max_examples=100)
@given(st.lists(st.floats(min_value=1, max_value=900_000), min_size=1, max_size=500))
def test_p95_from_the_histogram_is_within_20_percent_above_the_exact_value(
    durations: list[float],
) -> None:
    buckets: dict[int, int] = {}
    for duration in durations:
        buckets[duration_bucket(duration)] = buckets.get(duration_bucket(duration), 0) + 1
    stats = TaskStats(duration_buckets=buckets)
    exact = sorted(durations)[math.ceil(0.95 * len(durations)) - 1]
    estimate = stats.p95_duration_ms
    assert estimate is not None
    assert max(exact, 10.0) <= estimate <= max(exact, 10.0) * 1.2 + 1e-6


def test_rates_and_averages_come_from_the_counters() -> None:
    stats = TaskStats(succeeded=9, failed=1, duration_total_ms=5000, duration_count=10)
    assert stats.success_rate == 0.9
    assert stats.average_duration_ms == 500
    assert TaskStats().success_rate is None
    assert TaskStats().p95_duration_ms is None
