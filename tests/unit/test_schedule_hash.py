"""``H`` in cron fields: a value hashed from the task id, stable, spread, and checked.

The oracle for the hash is the algorithm as docs/semantics.md states it, recomputed here with
hashlib; the oracle for the runs is cronsim, on the plain expression the hash stands for.
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from cronfleet.registry.definition import parse_task_definition
from cronfleet.registry.problems import InvalidTaskDefinition
from cronfleet.schedule import MissingHashKey, ScheduleError, parse_schedule

AFTER = datetime(2026, 12, 1, tzinfo=UTC)  # a Tuesday
TASK_IDS = [f"task-{number:04d}" for number in range(1000)]
REPO = Path(__file__).resolve().parents[2]


def documented_draw(task_id: str, field: str) -> int:
    """docs/semantics.md: the first 8 bytes, big-endian, of SHA-256 of '<task id>:<field>'."""
    return int.from_bytes(hashlib.sha256(f"{task_id}:{field}".encode()).digest()[:8], "big")


def resolved(expression: str, task_id: str) -> str:
    return parse_schedule(expression, hash_key=task_id).resolved_expression


# --- the hash ----------------------------------------------------------------------------------


@pytest.mark.parametrize("task_id", ["nightly-backup", "ExampleTask", "s-0123456789abcdef01234567"])
def test_h_is_the_documented_hash_of_the_task_id_field_by_field(task_id: str) -> None:
    minute = documented_draw(task_id, "minute") % 60
    hour = documented_draw(task_id, "hour") % 24
    day = 1 + documented_draw(task_id, "day-of-month") % 28
    month = 1 + documented_draw(task_id, "month") % 12
    weekday = documented_draw(task_id, "day-of-week") % 7

    assert resolved("H 2 * * *", task_id) == f"{minute} 2 * * *"
    assert resolved("H H H H *", task_id) == f"{minute} {hour} {day} {month} *"
    assert resolved("0 0 * * H", task_id) == f"0 0 * * {weekday}"
    # AWS counts SUN=1: the same weekday as the Unix field for the same task
    assert resolved("cron(H H ? * H *)", task_id) == f"cron({minute} {hour} ? * {weekday + 1} *)"


def test_adding_h_to_the_hour_keeps_the_minute_a_task_had() -> None:
    for task_id in TASK_IDS[:50]:
        minute_only = parse_schedule("H * * * *", hash_key=task_id).next_run(AFTER)
        both = parse_schedule("H H * * *", hash_key=task_id).next_run(AFTER)
        assert minute_only is not None
        assert both is not None
        assert minute_only.minute == both.minute


def test_the_hash_is_the_same_in_another_process_with_another_hash_seed() -> None:
    # Given the resolved schedules of some task ids, in this process
    expressions = ["H H * * *", "H/15 * * * *", "cron(H(0-29)/10 H(22-2) ? * H *)", "0 0 H * *"]
    here = [
        resolved(expression, task_id) for task_id in TASK_IDS[:20] for expression in expressions
    ]
    script = (
        "from cronfleet.schedule import parse_schedule\n"
        f"for task_id in {TASK_IDS[:20]!r}:\n"
        f"    for expression in {expressions!r}:\n"
        "        print(parse_schedule(expression, hash_key=task_id).resolved_expression)\n"
    )
    for seed in ("0", "4242"):
        # When another interpreter, whose str hashes differ, resolves them
        environment = {**os.environ, "PYTHONHASHSEED": seed}
        other = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env=environment,
            cwd=REPO,
        )
        # Then it gets the same values
        assert other.stdout.splitlines() == here


# --- the spread --------------------------------------------------------------------------------


def binomial_tail_bound(trials: int, p: float, cells: int, risk: float) -> tuple[int, int]:
    """(low, high): a cell of ``cells`` equally likely ones, after ``trials`` draws, falls below
    low or above high with probability under ``risk`` for any of the cells (a union bound on the
    exact binomial tails)."""

    def pmf(k: int) -> float:
        return math.comb(trials, k) * p**k * (1 - p) ** (trials - k)

    high, tail = trials, 0.0
    while high > 0 and (tail + pmf(high)) * cells < risk:
        tail += pmf(high)
        high -= 1
    low, tail = 0, 0.0
    while low < trials and (tail + pmf(low)) * cells < risk:
        tail += pmf(low)
        low += 1
    return low, high


def test_a_thousand_tasks_on_h_spread_over_the_hour_like_a_uniform_draw() -> None:
    # Given 1,000 tasks, each 'H * * * *'
    minutes = Counter(int(resolved("H * * * *", task_id).split()[0]) for task_id in TASK_IDS)

    # Then they cover every minute (a uniform draw leaves one empty with a chance of 3 in a
    # million), and no minute holds more than a uniform draw would, but for a chance of one in
    # a million: 43, against 16.7 a minute on average
    low, high = binomial_tail_bound(len(TASK_IDS), 1 / 60, 60, 1e-6)
    assert high == 43
    assert len(minutes) == 60
    assert low <= min(minutes.values())
    assert max(minutes.values()) <= high
    # and the whole is as even as a uniform draw: Pearson's statistic within 59 +- 5 sd
    expected = len(TASK_IDS) / 60
    chi_square = sum((count - expected) ** 2 / expected for count in minutes.values())
    assert chi_square < 59 + 5 * math.sqrt(2 * 59)


def test_a_thousand_tasks_on_h_h_spread_over_the_day() -> None:
    slots = Counter(resolved("H H * * *", task_id).split()[1] for task_id in TASK_IDS)
    low, high = binomial_tail_bound(len(TASK_IDS), 1 / 24, 24, 1e-6)
    assert len(slots) == 24
    assert low <= min(slots.values())
    assert max(slots.values()) <= high


# --- ranges and steps, field by field ----------------------------------------------------------


def values_of(field_text: str) -> list[int]:
    """A resolved field (``37``, ``7,22,37,52``, ``3-57/6``) as its values."""
    values: list[int] = []
    for item in field_text.split(","):
        if "/" in item:
            span, step = item.split("/")
            start, end = map(int, span.split("-"))
            values += range(start, end + 1, int(step))
        else:
            values.append(int(item))
    return values


# (expression, the field's position, the values H may pick from, the step)
RANGES = [
    ("H * * * *", 0, range(60), None),
    ("H/15 * * * *", 0, range(60), 15),
    ("H/7 * * * *", 0, range(60), 7),
    ("H(0-29) * * * *", 0, range(30), None),
    ("H(0-29)/10 * * * *", 0, range(30), 10),
    ("H(45-59)/4 * * * *", 0, range(45, 60), 4),
    ("0 H * * *", 1, range(24), None),
    ("0 H/6 * * *", 1, range(24), 6),
    ("0 H(9-17) * * 1-5", 1, range(9, 18), None),
    ("0 0 H * *", 2, range(1, 29), None),
    ("0 0 H/10 * *", 2, range(1, 29), 10),
    ("0 0 H(1-31) * *", 2, range(1, 32), None),
    ("0 0 1 H *", 3, range(1, 13), None),
    ("0 0 1 H/3 *", 3, range(1, 13), 3),
    ("0 0 1 H(JAN-JUN) *", 3, range(1, 7), None),
    ("0 0 * * H", 4, range(7), None),
    ("0 0 * * H/2", 4, range(7), 2),
    ("0 0 * * H(MON-FRI)", 4, range(1, 6), None),
    ("cron(H 0 * * ? *)", 0, range(60), None),
    ("cron(0 H(8-17)/3 * * ? *)", 1, range(8, 18), 3),
    ("cron(0 0 H * ? *)", 2, range(1, 29), None),
    ("cron(0 0 ? * H *)", 4, range(1, 8), None),
    ("cron(0 0 ? * H(MON-FRI) *)", 4, range(2, 7), None),
]


@pytest.mark.parametrize(("expression", "position", "candidates", "step"), RANGES)
def test_h_picks_within_its_range_and_keeps_its_step(
    expression: str, position: int, candidates: range, step: int | None
) -> None:
    seen: set[int] = set()
    for task_id in TASK_IDS[:300]:
        text = resolved(expression, task_id).removeprefix("cron(").removesuffix(")")
        values = values_of(text.split()[position])
        seen.update(values)
        assert set(values) <= set(candidates), (task_id, values)
        if step is None:
            assert len(values) == 1
        else:
            # every step-th value from an offset below the step, to the end of the range
            offset = values[0] - candidates[0]
            assert 0 <= offset < step
            assert values == list(candidates)[offset::step]
    # and over 300 tasks every value it may pick is picked
    firsts = set(candidates) if step is None else set(list(candidates)[:step])
    assert firsts <= seen


def test_an_aws_range_that_wraps_past_midnight_is_hashed_within_it() -> None:
    hours = {resolved("cron(0 H(22-2) * * ? *)", task_id).split()[1] for task_id in TASK_IDS[:200]}
    assert hours == {"22", "23", "0", "1", "2"}


@pytest.mark.parametrize(
    ("expression", "zone"),
    [
        ("H H * * *", "UTC"),
        ("H/15 9-17 * * 1-5", "Europe/London"),
        ("H(0-29)/10 H(6-9) H * *", "America/New_York"),
        ("0 H * * H", "Australia/Sydney"),
    ],
)
def test_runs_are_those_of_the_plain_expression_by_an_independent_engine(
    expression: str, zone: str
) -> None:
    for task_id in TASK_IDS[:5]:
        schedule = parse_schedule(expression, zone, hash_key=task_id)
        local = AFTER.astimezone(ZoneInfo(zone))
        oracle = CronSim(schedule.resolved_expression, local)
        expected = [next(oracle).astimezone(UTC) for _ in range(20)]
        assert schedule.next_runs(AFTER, 20) == expected


def test_a_fixed_h_time_in_the_spring_forward_gap_runs_once_after_it() -> None:
    # A task whose H minute falls in New York's 02:xx, which 2026-03-08 skips
    schedule = parse_schedule("H 2 * * *", "America/New_York", hash_key="nightly-backup")
    day = schedule.runs_between(
        datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)
    )
    assert day == [datetime(2026, 3, 8, 7, 0, tzinfo=UTC)]  # 03:00 EDT, right after the gap


# --- what is refused ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("H/0 * * * *", "minute field 'H/0': increment '0' must be a whole number of 1 or more"),
        ("H(30-10) * * * *", "minute field 'H(30-10)': range 30-10 runs backwards"),
        ("H(0-99) * * * *", "minute field 'H(0-99)': 99 is out of range 0-59"),
        ("0 H(0-24) * * *", "hour field 'H(0-24)': 24 is out of range 0-23"),
        ("0 0 H(0-10) * *", "day-of-month field 'H(0-10)': 0 is out of range 1-31"),
        ("0 0 1 H(FOO-DEC) *", "month field 'H(FOO-DEC)': 'FOO' is not a number or one of JAN"),
        ("0 0 * * H(1-8)", "day-of-week field 'H(1-8)': 8 is out of range 0-7"),
        ("H/61 * * * *", "minute field 'H/61': increment 61 is more than the 60 values H picks"),
        ("H(0-9)/11 * * * *", "increment 11 is more than the 10 values H picks from (0-9)"),
        ("0 0 H/29 * *", "increment 29 is more than the 28 values H picks from (1-28)"),
        ("H/x * * * *", "minute field 'H/x': increment 'x' must be a whole number"),
        ("H5 * * * *", "minute field 'H5': 'H5' is no H form; write H, H/n, H(a-b) or H(a-b)/n"),
        ("H(0-29 * * * *", "minute field 'H(0-29': 'H(0-29' is no H form"),
        ("H() * * * *", "minute field 'H()': H(...) takes a range a-b, such as H(0-29)"),
        ("H(5) * * * *", "minute field 'H(5)': H(...) takes a range a-b"),
        ("5-H * * * *", "minute field '5-H': H begins an item of its own"),
        ("*/H * * * *", "minute field '*/H': increment 'H' must be a whole number"),
        ("0 0 HW * *", "day-of-month field 'HW': 'HW' is no H form"),
        ("0 0 * * H#2", "day-of-week field 'H#2': H begins an item of its own"),
        ("cron(0 0 ? * H/2 *)", "day-of-week field 'H/2': '/' increments are not allowed"),
        ("cron(0 0 1 1 ? H)", "year field 'H': H is not allowed in this field"),
        ("rate(H minutes)", "'rate(H minutes)': 'H' must be a whole number of 1 or more"),
        ("at(H)", "'at(H)' is not a one-time schedule"),
        ("0 0 H(30-31) 2 *", "matches no date within 100 years"),
    ],
)
def test_bad_h_is_refused_naming_the_field_and_the_reason(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as refused:
        parse_schedule(expression, hash_key="nightly-backup")
    assert message in str(refused.value)


def test_a_schedule_that_never_runs_says_what_its_h_resolved_to() -> None:
    with pytest.raises(ScheduleError, match=r"resolved to '0 0 (30|31) 2 \*'"):
        parse_schedule("0 0 H(30-31) 2 *", hash_key="nightly-backup")


@pytest.mark.parametrize("expression", ["H * * * *", "cron(0 H(8-17) ? * MON *)", "0 0 * * h"])
def test_h_without_a_task_id_is_refused_saying_so(expression: str) -> None:
    with pytest.raises(MissingHashKey, match="H is a value hashed from the task id, and no task"):
        parse_schedule(expression)


def test_a_malformed_h_is_reported_as_such_even_without_a_task_id() -> None:
    with pytest.raises(ScheduleError, match="H/0': increment '0'") as refused:
        parse_schedule("H/0 * * * *")
    assert not isinstance(refused.value, MissingHashKey)


@pytest.mark.parametrize(
    "expression", ["0 9 * * THU", "rate(5 hours)", "@hourly", "cron(0 9 ? * THU *)"]
)
def test_expressions_without_h_need_no_task_id(expression: str) -> None:
    assert parse_schedule(expression).next_run(AFTER) is not None


# --- the cache ---------------------------------------------------------------------------------


def test_parses_are_cached_per_task_id_only_when_the_expression_has_h() -> None:
    assert parse_schedule("H 2 * * *", hash_key="a") is parse_schedule("H 2 * * *", hash_key="a")
    assert parse_schedule("H 2 * * *", hash_key="a") is not parse_schedule(
        "H 2 * * *", hash_key="b"
    )
    # Without H the task id changes nothing, and a fleet shares one parse
    assert parse_schedule("0 2 * * THU", hash_key="a") is parse_schedule("0 2 * * THU")


# --- words -------------------------------------------------------------------------------------


def test_the_description_shows_what_h_resolved_to() -> None:
    minute = documented_draw("nightly-backup", "minute") % 60
    hour = documented_draw("nightly-backup", "hour") % 24

    plain = parse_schedule("H 2 * * *", hash_key="nightly-backup").describe()
    both = parse_schedule("H H * * *", "Europe/London", hash_key="nightly-backup").describe()

    assert plain == f"At 02:{minute:02d}, with H as minute {minute} (UTC)"
    assert both == (
        f"At {hour:02d}:{minute:02d}, with H as minute {minute} and hour {hour} (Europe/London)"
    )


def test_a_stepped_h_is_described_with_its_values() -> None:
    offset = documented_draw("nightly-backup", "minute") % 15
    values = ",".join(str(offset + 15 * n) for n in range(4))

    description = parse_schedule("H/15 * * * *", hash_key="nightly-backup").describe()

    assert description.endswith(f"with H as minutes {values} (UTC)")


# --- task definitions --------------------------------------------------------------------------

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:nightly"


def test_a_task_definition_hashes_h_from_its_name() -> None:
    task = parse_task_definition(
        "NightlyTask", {"Name": "nightly-backup", "Schedule": "H 2 * * *", "Function": FUNCTION}
    )
    minute = documented_draw("nightly-backup", "minute") % 60

    assert task.compiled_schedule().resolved_expression == f"{minute} 2 * * *"
    assert task.compiled_schedule().next_run(AFTER) == AFTER.replace(hour=2, minute=minute)


def test_a_task_without_a_name_hashes_h_from_its_logical_id() -> None:
    task = parse_task_definition("NightlyTask", {"Schedule": "H 2 * * *", "Function": FUNCTION})
    minute = documented_draw("NightlyTask", "minute") % 60
    assert task.compiled_schedule().resolved_expression == f"{minute} 2 * * *"


def test_a_bad_h_in_a_task_is_reported_on_its_schedule() -> None:
    with pytest.raises(InvalidTaskDefinition) as refused:
        parse_task_definition("NightlyTask", {"Schedule": "H(0-99) 2 * * *", "Function": FUNCTION})
    assert [str(problem) for problem in refused.value.problems] == [
        "NightlyTask.Schedule: minute field 'H(0-99)': 99 is out of range 0-59"
    ]


def test_an_invalid_name_is_the_only_problem_of_a_task_with_h() -> None:
    # The schedule is still checked, with a stand-in id, and not blamed for the missing one
    with pytest.raises(InvalidTaskDefinition) as refused:
        parse_task_definition(
            "NightlyTask", {"Name": "no spaces", "Schedule": "H 2 * * *", "Function": FUNCTION}
        )
    assert [problem.field_path for problem in refused.value.problems] == ["Name"]


@pytest.mark.parametrize(
    ("expression", "resolved_as"),
    [
        ("H 2 * * *", "58 2 * * *"),
        ("H/15 * * * *", "13,28,43,58 * * * *"),
        ("H(0-29) 9 * * *", "28 9 * * *"),
        ("H(0-29)/10 * * * *", "8,18,28 * * * *"),
    ],
)
def test_the_examples_of_docs_semantics_resolve_as_written(
    expression: str, resolved_as: str
) -> None:
    assert resolved(expression, "nightly-backup") == resolved_as
