"""Worked DST examples: Vixie cron's rules, in both hemispheres and odd-sized shifts.

- A fixed-time job whose local time falls in the spring-forward gap runs once, right after it.
- A fixed-time job in the repeated fall-back hour runs once, at the first occurrence.
- Wildcard jobs (minute or hour field starting with '*') follow real elapsed time.

docs/semantics.md walks through the same examples.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cronfleet.schedule import parse_schedule


def local_runs(expression: str, zone: str, day: str) -> list[str]:
    """Every run on one local calendar day, as local times with their UTC offsets."""
    tz = ZoneInfo(zone)
    start = datetime.fromisoformat(day).replace(tzinfo=tz)
    end = start.replace(hour=23, minute=59)
    schedule = parse_schedule(expression, zone)
    runs = schedule.runs_between(start - timedelta(minutes=1), end)
    return [run.astimezone(tz).strftime("%H:%M%z") for run in runs]


@pytest.mark.parametrize(
    ("expression", "zone", "day", "expected"),
    [
        # New York springs forward at 02:00 EST -> 03:00 EDT on 2026-03-08.
        ("30 2 * * *", "America/New_York", "2026-03-08", ["03:00-0400"]),
        ("0,30 2 * * *", "America/New_York", "2026-03-08", ["03:00-0400"]),  # once, not twice
        # 02:00 does not exist, so it merges into the 03:00 run.
        ("0 2,3 * * *", "America/New_York", "2026-03-08", ["03:00-0400"]),
        ("30 2 * * *", "America/New_York", "2026-03-09", ["02:30-0400"]),
        (
            "0 1-4 * * *",
            "America/New_York",
            "2026-03-08",
            ["01:00-0500", "03:00-0400", "04:00-0400"],
        ),
        # Wildcard jobs simply have no runs in the missing hour.
        ("0 * * * *", "America/New_York", "2026-03-08", None),
        ("*/30 2 * * *", "America/New_York", "2026-03-08", []),
        # New York falls back at 02:00 EDT -> 01:00 EST on 2026-11-01.
        ("30 1 * * *", "America/New_York", "2026-11-01", ["01:30-0400"]),
        (
            "*/30 1 * * *",
            "America/New_York",
            "2026-11-01",
            ["01:00-0400", "01:30-0400", "01:00-0500", "01:30-0500"],
        ),
        # London: 01:00 GMT -> 02:00 BST on 2026-03-29, back on 2026-10-25.
        ("30 1 * * *", "Europe/London", "2026-03-29", ["02:00+0100"]),
        ("30 1 * * *", "Europe/London", "2026-10-25", ["01:30+0100"]),
        # Sydney, southern hemisphere: forward on 2026-10-04, back on 2026-04-05.
        ("30 2 * * *", "Australia/Sydney", "2026-10-04", ["03:00+1100"]),
        ("30 2 * * *", "Australia/Sydney", "2026-04-05", ["02:30+1100"]),
        # Lord Howe Island shifts by 30 minutes: 02:00 -> 02:30 and 02:00 -> 01:30.
        ("15 2 * * *", "Australia/Lord_Howe", "2026-10-04", ["02:30+1100"]),
        ("30 2 * * *", "Australia/Lord_Howe", "2026-10-04", ["02:30+1100"]),
        ("45 1 * * *", "Australia/Lord_Howe", "2026-04-05", ["01:45+1100"]),
        (
            "*/15 1 * * *",
            "Australia/Lord_Howe",
            "2026-04-05",
            ["01:00+1100", "01:15+1100", "01:30+1100", "01:45+1100", "01:30+1030", "01:45+1030"],
        ),
        # Santiago changes at midnight: 2026-09-06 starts at 01:00.
        ("0 0 * * *", "America/Santiago", "2026-09-06", ["01:00-0300"]),
    ],
)
def test_dst_worked_examples(
    expression: str, zone: str, day: str, expected: list[str] | None
) -> None:
    runs = local_runs(expression, zone, day)
    if expected is None:  # hourly: 23 runs, none at 02:xx
        assert len(runs) == 23
        assert not any(run.startswith("02:") for run in runs)
    else:
        assert runs == expected


def test_hourly_job_runs_every_real_hour_through_fall_back() -> None:
    runs = local_runs("0 * * * *", "America/New_York", "2026-11-01")
    assert len(runs) == 25
    assert runs[:4] == ["00:00-0400", "01:00-0400", "01:00-0500", "02:00-0500"]


def test_at_in_the_spring_forward_gap_runs_right_after_it() -> None:
    schedule = parse_schedule("at(2026-03-08T02:30:00)", "America/New_York")
    assert schedule.next_runs(datetime(2026, 1, 1, tzinfo=UTC), 2) == [
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT
    ]


def test_at_in_the_repeated_hour_runs_at_the_first_occurrence() -> None:
    schedule = parse_schedule("at(2026-11-01T01:30:00)", "America/New_York")
    assert schedule.next_runs(datetime(2026, 1, 1, tzinfo=UTC), 2) == [
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    ]


def test_aws_cron_follows_the_same_dst_rules() -> None:
    assert local_runs("cron(30 2 * * ? *)", "America/New_York", "2026-03-08") == ["03:00-0400"]
    assert local_runs("cron(30 1 * * ? *)", "America/New_York", "2026-11-01") == ["01:30-0400"]


def test_runs_are_the_same_whether_listed_or_stepped() -> None:
    schedule = parse_schedule("*/20 1-3 * * *", "America/New_York")
    start = datetime(2026, 10, 31, tzinfo=UTC)
    listed = schedule.runs_between(start, datetime(2026, 11, 3, tzinfo=UTC))
    stepped = schedule.next_runs(start, len(listed))
    assert listed == stepped
    assert all(schedule.next_run(a) == b for a, b in itertools.pairwise(listed))
