"""The schedule engine against an independent cron engine, cronsim.

Two oracles, neither of which shares code with cronfleet:

- cronsim's own iterator, for whole sequences of runs;
- a minute-by-minute reference that walks real time, reads the local wall clock from
  zoneinfo, asks cronsim's field matcher whether that wall time matches, and applies the
  documented DST rules literally. It is slow and obviously right, so it arbitrates DST days.

cronsim's iterator mis-steps on some DST days (docs/semantics.md lists them), so a
disagreement with it must fall within a day of a transition, where the reference decides.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cronfleet.schedule import Schedule, ScheduleError, parse_schedule
from cronfleet.schedule.expression import END_OF_TIME

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",  # southern hemisphere
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/Santiago",  # changes at midnight
    "America/Havana",  # changes at midnight
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/St_Johns",  # -03:30
    "Asia/Kolkata",  # no DST, half-hour offset
    "Antarctica/Troll",  # a two-hour DST shift
]
MINUTE = timedelta(minutes=1)


# --- expressions in the syntax both engines accept ------------------------------------------


@st.composite
def numeric_field(draw: st.DrawFn, low: int, high: int) -> str:
    start = draw(st.integers(low, high - 1))
    end = draw(st.integers(start + 1, high))  # cronsim reads 'a-a/n' as 'a/n'; avoid it
    step = draw(st.integers(1, max(1, (high - low) // 2)))
    return draw(
        st.sampled_from(
            [
                "*",
                f"*/{step}",
                f"{start}",
                f"{start}-{end}",
                f"{start}-{end}/{step}",
                f"{start},{end}",
                f"{start}/{step}",
            ]
        )
    )


@st.composite
def unix_expressions(draw: st.DrawFn) -> str:
    minute = draw(numeric_field(0, 59))
    hour = draw(st.one_of(numeric_field(0, 23), st.sampled_from(["*", "1", "2", "0-3", "1,2"])))
    day = draw(st.one_of(numeric_field(1, 31), st.sampled_from(["*", "*", "L", "LW", "1,L"])))
    month = draw(st.one_of(st.just("*"), numeric_field(1, 12), st.sampled_from(["JAN-MAR"])))
    weekday = draw(st.integers(0, 6))
    dow = draw(
        st.one_of(
            st.sampled_from(["*", "*", "MON-FRI", "SUN", f"{weekday}L"]),
            st.just(f"{weekday}#{draw(st.integers(1, 5))}"),
            numeric_field(0, 7),
        )
    )
    return f"{minute} {hour} {day} {month} {dow}"


instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31)).map(
    lambda moment: moment.replace(tzinfo=UTC)
)


# --- the minute-by-minute reference ----------------------------------------------------------


def reference_runs(
    expression: str, zone: ZoneInfo, start: datetime, end: datetime
) -> list[datetime]:
    """Runs in ``(start, end]`` by walking every real minute. Slow, literal, independent."""
    fields = CronSim(expression, datetime(2000, 1, 1))  # used only for its field matcher
    minute_text, hour_text = expression.split()[:2]
    fixed_time = not (minute_text.startswith("*") or hour_text.startswith("*"))

    def matches(wall: datetime) -> bool:
        return (
            wall.minute in fields.minutes
            and wall.hour in fields.hours
            and wall.month in fields.months
            and fields.match_day(wall.date())
        )

    def wall_clock(instant: datetime) -> datetime:
        return instant.astimezone(zone).replace(tzinfo=None)

    runs = []
    instant = start.replace(second=0, microsecond=0) + MINUTE
    while instant <= end:
        wall, previous_wall = wall_clock(instant), wall_clock(instant - MINUTE)
        skipped = []
        probe = previous_wall + MINUTE
        while probe < wall:  # wall times the clock jumped over
            skipped.append(probe)
            probe += MINUTE
        first_occurrence = wall.replace(tzinfo=zone, fold=0).astimezone(UTC) == instant
        if fixed_time:
            runs_now = (matches(wall) and first_occurrence) or any(map(matches, skipped))
        else:
            runs_now = matches(wall)
        if runs_now:
            runs.append(instant)
        instant += MINUTE
    return runs


@lru_cache(maxsize=256)
def transitions_in_year(zone: ZoneInfo, year: int) -> tuple[datetime, ...]:
    return tuple(
        transitions(zone, datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC))
    )


def transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Offset changes, located to within an hour: all these tests need is which day."""
    found, instant = [], start
    while instant < end:
        if (
            instant.astimezone(zone).utcoffset()
            != (instant + timedelta(hours=1)).astimezone(zone).utcoffset()
        ):
            found.append(instant + timedelta(hours=1))
        instant += timedelta(hours=1)
    return found


def near_transition(zone: ZoneInfo, moment: datetime) -> bool:
    return bool(transitions(zone, moment - timedelta(days=2), moment + timedelta(days=2)))


# --- tests ------------------------------------------------------------------------------------


def parse_or_prove_impossible(expression: str, zone_name: str) -> Schedule | None:
    """Parse, or, where cronfleet rejects an expression as never matching, check that claim
    day by day with cronsim's own matcher and return None."""
    try:
        return parse_schedule(expression, zone_name)
    except ScheduleError as error:
        if "matches no date" not in str(error):
            raise
    fields = CronSim(expression, datetime(2000, 1, 1))
    day = date(2000, 1, 1)
    while day.year < 2100:
        assert not (day.month in fields.months and fields.match_day(day)), day
        day += timedelta(days=1)
    return None


# Two days on which cronsim's iterator is wrong; see test_known_cronsim_defects... below.
LORD_HOWE_FALL_BACK = (
    "*/24 3 17-18/1 * SUN",
    "Australia/Lord_Howe",
    datetime(2026, 3, 30, 12, tzinfo=UTC),
)
SANTIAGO_MIDNIGHT = (
    "* 1-3 10,L 9,11 SUN",
    "America/Santiago",
    datetime(2027, 9, 4, 12, tzinfo=UTC),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression=unix_expressions(), zone_name=st.sampled_from(ZONES), after=instants)
@example(*LORD_HOWE_FALL_BACK)
@example(*SANTIAGO_MIDNIGHT)
@example("0 1 */7 3 0#1", "UTC", datetime(2027, 1, 1, tzinfo=UTC))  # its 25th run is past 2199
def test_agrees_with_cronsim(expression: str, zone_name: str, after: datetime) -> None:
    schedule = parse_or_prove_impossible(expression, zone_name)
    assume(schedule is not None)
    assert schedule is not None
    zone = ZoneInfo(zone_name)
    cronsim_runs = CronSim(expression, after.astimezone(zone))
    theirs = [next(cronsim_runs).astimezone(UTC) for _ in range(25)]
    # Schedules run in 1970 to 2199; cronsim goes on, so a sparse schedule ends earlier here.
    theirs = [run for run in theirs if run < END_OF_TIME]
    ours = schedule.next_runs(after, len(theirs))
    if ours == theirs:
        return
    first_difference = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b)
    disputed = min(ours[first_difference], theirs[first_difference])
    assert near_transition(zone, disputed), (
        f"{expression!r} in {zone_name} differs from cronsim away from any DST change"
    )
    window_start, window_end = disputed - timedelta(days=1), disputed + timedelta(days=1)
    assert schedule.runs_between(window_start, window_end) == reference_runs(
        expression, zone, window_start, window_end
    )


@st.composite
def dst_days(draw: st.DrawFn) -> tuple[str, datetime]:
    zone_name = draw(st.sampled_from([z for z in ZONES if z not in ("UTC", "Asia/Kolkata")]))
    zone = ZoneInfo(zone_name)
    year = draw(st.integers(2024, 2028))
    changes = transitions_in_year(zone, year)
    assume(changes)
    return zone_name, draw(st.sampled_from(changes))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression=unix_expressions(), zone_and_change=dst_days())
def test_dst_days_follow_the_minute_by_minute_reference(
    expression: str, zone_and_change: tuple[str, datetime]
) -> None:
    zone_name, change = zone_and_change
    start, end = change - timedelta(hours=30), change + timedelta(hours=30)
    schedule = parse_or_prove_impossible(expression, zone_name)
    assume(schedule is not None)
    assert schedule is not None
    ours = schedule.runs_between(start, end)
    assert ours == reference_runs(expression, ZoneInfo(zone_name), start, end)


@settings(max_examples=300, deadline=None)
@given(expression=unix_expressions(), zone_name=st.sampled_from(ZONES), after=instants)
def test_runs_increase_never_repeat_and_match_the_expression(
    expression: str, zone_name: str, after: datetime
) -> None:
    schedule = parse_or_prove_impossible(expression, zone_name)
    assume(schedule is not None)
    assert schedule is not None
    zone = ZoneInfo(zone_name)
    fields = CronSim(expression, datetime(2000, 1, 1))
    runs = schedule.next_runs(after, 30)
    assert all(a < b for a, b in zip([after, *runs], runs, strict=False))
    for run in runs:
        assert (run.second, run.microsecond) == (0, 0)
        wall = run.astimezone(zone)
        wall_matches = (
            wall.minute in fields.minutes
            and wall.hour in fields.hours
            and wall.month in fields.months
            and fields.match_day(wall.date())
        )
        # The only runs whose wall time does not match are fixed-time runs moved to the
        # instant right after a spring-forward gap.
        moved_out_of_a_gap = (run - MINUTE).astimezone(zone).utcoffset() != wall.utcoffset()
        assert wall_matches or moved_out_of_a_gap


@pytest.mark.parametrize(
    ("case", "cronsim_says", "reference_says"),
    [
        # After Lord Howe's 30-minute fall back, cronsim steps hours by real time and lands on
        # :30, so it skips 03:00 and 03:24 on that Sunday.
        (LORD_HOWE_FALL_BACK, "2026-04-05T03:48:00+10:30", "2026-04-05T03:00:00+10:30"),
        # Santiago's day starts at 01:00 when DST begins; cronsim skips that first hour.
        (SANTIAGO_MIDNIGHT, "2027-09-05T02:00:00-03:00", "2027-09-05T01:00:00-03:00"),
    ],
)
def test_known_cronsim_defects_are_settled_by_the_reference(
    case: tuple[str, str, datetime], cronsim_says: str, reference_says: str
) -> None:
    expression, zone_name, after = case
    zone = ZoneInfo(zone_name)
    assert next(CronSim(expression, after.astimezone(zone))).isoformat() == cronsim_says
    reference = reference_runs(expression, zone, after, after + timedelta(days=7))
    assert reference[0].astimezone(zone).isoformat() == reference_says
    assert parse_schedule(expression, zone_name).next_run(after) == reference[0]
