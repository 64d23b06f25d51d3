"""Schedule syntax: what each form means, and the errors for what is not allowed."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from cronfleet.schedule import ScheduleError, parse_schedule
from cronfleet.schedule.fields import parse_unix_cron


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def runs(expression: str, after: datetime, count: int, timezone: str = "UTC") -> list[str]:
    schedule = parse_schedule(expression, timezone)
    return [run.strftime("%a %Y-%m-%d %H:%M") for run in schedule.next_runs(after, count)]


# AWS's own documented examples (EventBridge "Cron expressions reference"), with their meanings
# restated as concrete run times. 2026-01-01 is a Thursday.
AWS_DOCUMENTED_EXAMPLES = [
    (
        "cron(0 10 * * ? *)",  # Run at 10:00 am (UTC) every day
        ["Thu 2026-01-01 10:00", "Fri 2026-01-02 10:00", "Sat 2026-01-03 10:00"],
    ),
    (
        "cron(15 12 * * ? *)",  # Run at 12:15 pm (UTC) every day
        ["Thu 2026-01-01 12:15", "Fri 2026-01-02 12:15", "Sat 2026-01-03 12:15"],
    ),
    (
        "cron(0 18 ? * MON-FRI *)",  # Run at 6:00 pm (UTC) every Monday through Friday
        ["Thu 2026-01-01 18:00", "Fri 2026-01-02 18:00", "Mon 2026-01-05 18:00"],
    ),
    (
        "cron(0 8 1 * ? *)",  # Run at 8:00 am (UTC) every first day of the month
        ["Thu 2026-01-01 08:00", "Sun 2026-02-01 08:00", "Sun 2026-03-01 08:00"],
    ),
    (
        "cron(0/15 * * * ? *)",  # Run every 15 minutes
        ["Thu 2026-01-01 00:15", "Thu 2026-01-01 00:30", "Thu 2026-01-01 00:45"],
    ),
    (
        "cron(0/10 * ? * MON-FRI *)",  # Run every 10 minutes Monday through Friday
        ["Thu 2026-01-01 00:10", "Thu 2026-01-01 00:20", "Thu 2026-01-01 00:30"],
    ),
    (
        "cron(15 10 ? * 6L 2026-2027)",  # 10:15 am on the last Friday of each month, in years
        ["Fri 2026-01-30 10:15", "Fri 2026-02-27 10:15", "Fri 2026-03-27 10:15"],
    ),
    (
        "cron(0 9 ? * 2#1 *)",  # 9:00 am on the first Monday of each month
        ["Mon 2026-01-05 09:00", "Mon 2026-02-02 09:00", "Mon 2026-03-02 09:00"],
    ),
]


@pytest.mark.parametrize(("expression", "expected"), AWS_DOCUMENTED_EXAMPLES)
def test_aws_documented_examples_mean_what_aws_says(expression: str, expected: list[str]) -> None:
    assert runs(expression, utc(2026, 1, 1), 3) == expected


def test_aws_every_five_minutes_in_working_hours_ends_at_five_fifty_five() -> None:
    # "Run every 5 minutes Monday through Friday between 8:00 am and 5:55 pm (UTC)"
    schedule = parse_schedule("cron(0/5 8-17 ? * MON-FRI *)")
    day = schedule.runs_between(utc(2026, 1, 2), utc(2026, 1, 3))
    assert len(day) == 10 * 12
    assert (day[0], day[-1]) == (utc(2026, 1, 2, 8, 0), utc(2026, 1, 2, 17, 55))
    assert schedule.next_run(day[-1]) == utc(2026, 1, 5, 8, 0)  # Friday -> Monday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(15 8 LW * ? *)", ["Fri 2026-01-30 08:15", "Fri 2026-02-27 08:15"]),  # last weekday
        ("cron(15 8 L * ? *)", ["Sat 2026-01-31 08:15", "Sat 2026-02-28 08:15"]),
        ("cron(0 9 3W * ? *)", ["Fri 2026-01-02 09:00", "Tue 2026-02-03 09:00"]),  # Sat 3rd -> Fri
        ("cron(0 9 1W * ? *)", ["Thu 2026-01-01 09:00", "Mon 2026-02-02 09:00"]),  # never leaves
        ("cron(0 12 ? * L *)", ["Sat 2026-01-03 12:00", "Sat 2026-01-10 12:00"]),  # L = Saturday
        ("cron(0 12 ? * SUN *)", ["Sun 2026-01-04 12:00", "Sun 2026-01-11 12:00"]),
        ("cron(0 12 ? * 1 *)", ["Sun 2026-01-04 12:00", "Sun 2026-01-11 12:00"]),  # 1 = SUN
        ("cron(0 12 ? * 7 *)", ["Sat 2026-01-03 12:00", "Sat 2026-01-10 12:00"]),  # 7 = SAT
        ("cron(0 12 1 JAN,JUL ? *)", ["Thu 2026-01-01 12:00", "Wed 2026-07-01 12:00"]),
        ("cron(0 0 1 1 ? 2028,2030)", ["Sat 2028-01-01 00:00", "Tue 2030-01-01 00:00"]),
        ("cron(0 22-1 ? * FRI *)", ["Fri 2026-01-02 00:00", "Fri 2026-01-02 01:00"]),  # wraps
    ],
)
def test_aws_special_characters(expression: str, expected: list[str]) -> None:
    assert runs(expression, utc(2026, 1, 1), 2) == expected


def test_aws_year_field_ends_the_schedule() -> None:
    schedule = parse_schedule("cron(0 0 1 1 ? 2027)")
    assert schedule.next_runs(utc(2026, 6, 1), 5) == [utc(2027, 1, 1)]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 9 * * 1-5", ["Thu 2026-01-01 09:00", "Fri 2026-01-02 09:00", "Mon 2026-01-05 09:00"]),
        ("0 10 * * 0", ["Sun 2026-01-04 10:00", "Sun 2026-01-11 10:00", "Sun 2026-01-18 10:00"]),
        ("0 10 * * 7", ["Sun 2026-01-04 10:00", "Sun 2026-01-11 10:00", "Sun 2026-01-18 10:00"]),
        ("0 10 * * sun", ["Sun 2026-01-04 10:00", "Sun 2026-01-11 10:00", "Sun 2026-01-18 10:00"]),
        ("*/20 * * * *", ["Thu 2026-01-01 00:20", "Thu 2026-01-01 00:40", "Thu 2026-01-01 01:00"]),
        (
            "0 0 1 feb-mar *",
            ["Sun 2026-02-01 00:00", "Sun 2026-03-01 00:00", "Mon 2027-02-01 00:00"],
        ),
        # Vixie's rule: both day fields restricted means either one matches.
        ("30 4 1,15 * 5", ["Thu 2026-01-01 04:30", "Fri 2026-01-02 04:30", "Fri 2026-01-09 04:30"]),
        ("0 2 * * *", ["Thu 2026-01-01 02:00", "Fri 2026-01-02 02:00", "Sat 2026-01-03 02:00"]),
        ("@hourly", ["Thu 2026-01-01 01:00", "Thu 2026-01-01 02:00", "Thu 2026-01-01 03:00"]),
        ("@weekly", ["Sun 2026-01-04 00:00", "Sun 2026-01-11 00:00", "Sun 2026-01-18 00:00"]),
        ("0 8 * * 5L", ["Fri 2026-01-30 08:00", "Fri 2026-02-27 08:00", "Fri 2026-03-27 08:00"]),
        ("0 8 * * 1#2", ["Mon 2026-01-12 08:00", "Mon 2026-02-09 08:00", "Mon 2026-03-09 08:00"]),
    ],
)
def test_unix_cron(expression: str, expected: list[str]) -> None:
    assert runs(expression, utc(2026, 1, 1), 3) == expected


def test_rate_is_aligned_to_the_epoch_so_every_dispatcher_agrees() -> None:
    assert runs("rate(5 minutes)", utc(2026, 1, 1, 0, 2), 2) == [
        "Thu 2026-01-01 00:05",
        "Thu 2026-01-01 00:10",
    ]
    assert runs("rate(1 hour)", utc(2026, 1, 1, 0, 2), 1) == ["Thu 2026-01-01 01:00"]
    # 2026-01-01 is day 20,454 since the epoch, an even day and so a slot of rate(2 days).
    assert (datetime(2026, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).days == 20454
    assert runs("rate(2 days)", utc(2026, 1, 1), 1) == ["Sat 2026-01-03 00:00"]
    assert runs("rate(1 minute)", utc(2026, 1, 1, 0, 0, 30), 1) == ["Thu 2026-01-01 00:01"]


def test_rate_ignores_timezone_and_dst() -> None:
    # A rate measures elapsed time: across New York's spring-forward it keeps its stride.
    schedule = parse_schedule("rate(30 minutes)", "America/New_York")
    gap = schedule.runs_between(utc(2026, 3, 8, 6, 0), utc(2026, 3, 8, 8, 0))
    assert [b - a for a, b in itertools.pairwise(gap)] == [timedelta(minutes=30)] * 3


def test_at_runs_once_in_its_timezone() -> None:
    schedule = parse_schedule("at(2026-12-25T09:00:00)", "Europe/Paris")
    assert schedule.is_one_time
    assert schedule.next_runs(utc(2026, 1, 1), 3) == [utc(2026, 12, 25, 8, 0)]
    assert schedule.next_run(utc(2026, 12, 25, 8, 0)) is None


def test_runs_between_is_exclusive_of_start_and_inclusive_of_end() -> None:
    schedule = parse_schedule("0 * * * *")
    assert schedule.runs_between(utc(2026, 1, 1, 1), utc(2026, 1, 1, 3)) == [
        utc(2026, 1, 1, 2),
        utc(2026, 1, 1, 3),
    ]
    assert len(schedule.runs_between(utc(2026, 1, 1), utc(2026, 2, 1), limit=5)) == 5


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        parse_schedule("0 * * * *").next_run(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 25 * * *", "hour field '25': 25 is out of range 0-23"),
        ("60 * * * *", "minute field '60': 60 is out of range 0-59"),
        ("0 0 0 * *", "day-of-month field '0': 0 is out of range 1-31"),
        ("0 0 * 13 *", "month field '13': 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week field '8': 8 is out of range 0-7"),
        ("0 0 * FOO *", "month field 'FOO': 'FOO' is not a number or one of JAN"),
        ("0 0 * * FRI-MON", "range 5-1 runs backwards"),
        ("*/0 * * * *", "increment '0' must be a whole number of 1 or more"),
        ("0 0 1,,2 * *", "has an empty list item"),
        ("0 0 * * L", "'L' alone is AWS syntax for Saturday"),
        ("0 0 * * 1#6", "'#6' must be between #1 and #5"),
        ("0 0 1#2 * *", "belongs in the day-of-week field"),
        ("0 0 * * 3W", "'W' belongs in the day-of-month field"),
        ("0 9 * *", "a cron expression has 5 fields"),
        ("*/30 * * * * *", "a seconds field is not supported (resolution is one minute)"),
        ("@reboot", "'@reboot' is not supported"),
        ("0 0 30 2 *", "matches no date"),
        ("cron(0 10 * * * *)", "'*' in both day fields; AWS cron needs '?' in one of them"),
        ("cron(0 10 1 * MON *)", "both day fields set; AWS cron needs '?'"),
        ("cron(0 10 ? * ? *)", "cannot both be '?'"),
        ("cron(0 10 * * ?)", "cron(...) has 6 fields"),
        ("cron(0 0 10 * * ? *)", "a seconds field is not supported"),
        ("cron(0 10 ? * 0 *)", "day-of-week field '0': 0 is out of range 1-7"),
        ("cron(0 10 ? * */2 *)", "'/' increments are not allowed in this field"),
        ("cron(0 0 1 1 ? 1969)", "year field '1969': 1969 is out of range 1970-2199"),
        ("cron(0 0 31 2 ? *)", "matches no date"),
        ("cron(0 0 1 1 ? 2020)", None),  # the past is a valid, finished schedule
        ("rate(30 seconds)", "resolution is one minute"),
        ("rate(0 minutes)", "must be a whole number of 1 or more"),
        ("rate(5 weeks)", "unit 'weeks' must be minutes, hours or days"),
        ("rate(five minutes)", "'five' must be a whole number"),
        ("at(2026-01-01T10:00:30)", "seconds must be 00"),
        ("at(2026-01-01 10:00)", "write at(yyyy-mm-ddThh:mm:ss)"),
        ("at(2026-02-30T10:00:00)", "day is out of range for month"),
        ("every(5 minutes)", "'every(...)' is not a schedule"),
        ("", "schedule is empty"),
    ],
)
def test_invalid_expressions_say_what_is_wrong(expression: str, message: str | None) -> None:
    if message is None:
        assert parse_schedule(expression).next_run(utc(2026, 1, 1)) is None
        return
    with pytest.raises(ScheduleError) as error:
        parse_schedule(expression)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("timezone", "message"),
    [
        ("Europe/Londn", "unknown timezone 'Europe/Londn'"),
        ("Mars/Olympus_Mons", "use an IANA name such as 'Europe/London'"),
        ("", "timezone is empty"),
        ("../../etc/passwd", "unknown timezone"),
    ],
)
def test_unknown_timezones_are_rejected(timezone: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(")):
        parse_schedule("0 0 * * *", timezone)


def test_unknown_timezone_suggests_the_closest_name() -> None:
    with pytest.raises(ScheduleError, match="did you mean 'Europe/London'"):
        parse_schedule("0 0 * * *", "Europe/Londn")


@pytest.mark.parametrize(
    ("expression", "timezone", "description"),
    [
        ("0 9 * * 1-5", "Europe/London", "At 09:00, Monday through Friday (Europe/London)"),
        ("cron(15 10 ? * 6L *)", "UTC", "At 10:15, on the last Friday of the month (UTC)"),
        ("cron(0 9 ? * 2#1 *)", "UTC", "At 09:00, on the first Monday of the month (UTC)"),
        ("rate(1 hour)", "UTC", "Every hour"),
        ("rate(90 minutes)", "UTC", "Every 90 minutes"),
        ("rate(2 days)", "UTC", "Every 2 days"),
        ("at(2026-12-25T09:00:00)", "Europe/Paris", "Once, at 2026-12-25 09:00 (Europe/Paris)"),
    ],
)
def test_descriptions_read_like_english(expression: str, timezone: str, description: str) -> None:
    assert parse_schedule(expression, timezone).describe() == description


# --- Input no cron dialect reads, which Python's own parsing would ----------------------------

NON_ASCII_DIGITS = {
    "superscript one": "\u00b9",  # str.isdigit() says yes, int() fails: was a crash
    "Arabic-Indic five": "\u0665",  # int() reads it as 5: was silently accepted
    "fullwidth five": "\uff15",
}


@pytest.mark.parametrize("digit", NON_ASCII_DIGITS.values(), ids=NON_ASCII_DIGITS)
@pytest.mark.parametrize(
    "template",
    [
        "{d} 9 * * *",
        "0 9 1{d} * *",
        "cron(0 {d} ? * MON *)",
        "cron(0 9 ? * 2#{d} *)",
        "rate({d} minutes)",
        "at(2027-01-0{d}T09:00:00)",
    ],
)
def test_only_ascii_digits_count_in_every_syntax(template: str, digit: str) -> None:
    expression = template.format(d=digit)

    with pytest.raises(ScheduleError) as refused:
        parse_schedule(expression)

    position = expression.index(digit) + 1
    assert str(refused.value) == (
        f"{digit!r} (U+{ord(digit):04X}) at position {position} is not an ASCII digit; "
        "write numbers with 0-9"
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0\u00a09 * * *", "'\\xa0' (U+00A0) at position 2 is not an ASCII space"),
        ("0 9 * * *\n", "'\\n' (U+000A) at position 10 is a control character"),
        ("cron(0 9 ? * MON *)\n", "at position 20 is a control character"),
        ("rate(5 minutes)\r", "'\\r' (U+000D) at position 16 is a control character"),
        ("0 9 * * \u2013", "(U+2013) at position 9 is not ASCII"),
    ],
)
def test_other_characters_outside_printable_ascii_are_named(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as refused:
        parse_schedule(expression)

    assert message in str(refused.value)


def test_a_tab_still_separates_fields_as_in_a_crontab() -> None:
    assert parse_schedule("0\t9 * * *").next_run(utc(2026, 1, 1)) == utc(2026, 1, 1, 9)


@pytest.mark.parametrize("fields", ["0 " + "9" * 5000 + " * * *", "0 9 * * 2#" + "1" * 5000])
def test_fields_of_thousands_of_digits_are_refused_not_a_crash(fields: str) -> None:
    # Longer than any schedule may be, so straight to the field parser: int() would raise
    # ValueError beyond Python's 4300 digits.
    with pytest.raises(ScheduleError):
        parse_unix_cron(fields)


def test_a_step_of_thousands_of_digits_is_a_step_past_the_field_as_any_other() -> None:
    assert parse_unix_cron("*/" + "7" * 5000 + " * * * *").minutes == (0,)


def test_a_field_of_hundreds_of_digits_is_out_of_range_and_echoed_briefly() -> None:
    with pytest.raises(ScheduleError) as refused:
        parse_schedule("0 " + "9" * 200 + " * * *")

    assert str(refused.value) == (f"hour field '{'9' * 37}...': {'9' * 37}... is out of range 0-23")


def test_an_expression_longer_than_eventbridge_takes_is_refused() -> None:
    with pytest.raises(ScheduleError, match="schedule is 257 characters long; at most 256"):
        parse_schedule("0 9 * * " + "1," * 124 + "1")


# --- Rates and the engine's years ---------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "rate(99999999999999999999999 minutes)",
        "rate(3000000 days)",
        "rate(36501 days)",
        "rate(876001 hours)",
        "rate(52560001 minutes)",
    ],
)
def test_a_rate_longer_than_100_years_is_refused(expression: str) -> None:
    with pytest.raises(ScheduleError, match="the longest rate is 36500 days"):
        parse_schedule(expression)


def test_the_longest_rate_runs_within_the_engine_s_years() -> None:
    schedule = parse_schedule("rate(36500 days)")

    assert schedule.next_runs(utc(1970, 1, 1), 5) == [utc(2069, 12, 7), utc(2169, 11, 13)]


@pytest.mark.parametrize(
    "expression",
    ["rate(1 minute)", "0 0 * * *", "cron(0 0 ? * MON *)", "@yearly", "0 0 29 2 *"],
)
@pytest.mark.parametrize("timezone", ["Pacific/Kiritimati", "UTC", "Etc/GMT+12"])
def test_runs_stop_a_day_after_2199_ends_in_utc(expression: str, timezone: str) -> None:
    schedule = parse_schedule(expression, timezone)

    last = schedule.next_run(utc(2199, 12, 31, 23, 59))
    assert last is None or last < utc(2200, 1, 2)
    assert schedule.next_run(utc(2200, 1, 2)) is None
    assert schedule.next_run(datetime(9999, 12, 31, 23, 59, tzinfo=UTC)) is None


def test_a_question_about_the_distant_past_is_answered_from_1970() -> None:
    assert parse_schedule("0 0 1 1 *").next_run(datetime(1, 1, 1, tzinfo=UTC)) == utc(1970, 1, 1)


def test_a_one_time_run_on_new_year_1970_east_of_utc_has_its_instant() -> None:
    # Midnight in Tokyo is 15:00 UTC on the last day of 1969.
    schedule = parse_schedule("at(1970-01-01T00:00:00)", "Asia/Tokyo")

    assert schedule.next_run(datetime(1969, 12, 31, tzinfo=UTC)) == utc(1969, 12, 31, 15)


# --- Timezones that are not IANA zones ----------------------------------------------------------


@pytest.mark.parametrize(
    "timezone", ["localtime", "posixrules", "Factory", "posix/Europe/London", "right/UTC"]
)
def test_files_of_the_zoneinfo_directory_are_not_timezones(timezone: str) -> None:
    with pytest.raises(ScheduleError) as refused:
        parse_schedule("0 0 * * *", timezone)

    assert str(refused.value) == (
        f"timezone '{timezone}' is no IANA zone, only a file some systems keep with their zone "
        "data; use an IANA name such as 'Europe/London'"
    )


@pytest.mark.parametrize(
    "timezone", ["Europe/../UTC", "/etc/localtime", "Europe//London", "UTC ", "zone.tab"]
)
def test_paths_are_not_timezone_names(timezone: str) -> None:
    with pytest.raises(ScheduleError, match="unknown timezone"):
        parse_schedule("0 0 * * *", timezone)


@pytest.mark.parametrize("timezone", ["US/Eastern", "EST5EDT", "Etc/GMT+5", "GB", "Etc/UTC"])
def test_backward_compatible_iana_names_are_timezones(timezone: str) -> None:
    assert parse_schedule("0 0 * * *", timezone).timezone.key == timezone


# --- Descriptions never fail ---------------------------------------------------------------------


def test_aws_l_alone_in_day_of_week_is_described_as_saturday() -> None:
    assert parse_schedule("cron(0 0 ? * L *)").describe() == "At 00:00, only on Saturday (UTC)"


def test_what_cron_descriptor_cannot_read_is_shown_as_written() -> None:
    # cron-descriptor raises FormatError on a step inside a day-of-week list.
    assert parse_schedule("0 9 * * 1,*/3", "Europe/Paris").describe() == (
        "0 9 * * 1,*/3 (Europe/Paris)"
    )
