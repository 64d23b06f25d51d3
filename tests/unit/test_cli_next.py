"""`cronfleet next` and `preview` on any valid expression: they answer, and never crash.

Describing a schedule goes through cron-descriptor, which reads a dialect close to ours but not
ours; whatever it cannot read must not fail the command.
"""

from __future__ import annotations

import itertools
import json
import random
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cronfleet.schedule import ScheduleError, parse_schedule
from cronfleet_tools.cli.app import app
from cronfleet_tools.cli.common import EXIT_INTERNAL_ERROR

runner = CliRunner()
AFTER = "2026-01-01T00:00:00Z"
ZONES = ["UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]


def next_json(expression: str, timezone: str = "UTC", count: int = 3) -> tuple[int, str]:
    result = runner.invoke(
        app, ["next", expression, "--tz", timezone, "--after", AFTER, "-n", str(count), "--json"]
    )
    return result.exit_code, result.output


def unboxed(output: str) -> str:
    """The text of typer's error box, without its borders and line breaks."""
    return " ".join(output.replace("│", " ").split())


def items(draw: st.DrawFn, choices: list[str]) -> str:
    return ",".join(draw(st.lists(st.sampled_from(choices), min_size=1, max_size=3, unique=True)))


MINUTES = ["0", "*", "*/7", "5/10", "0-59/30", "15", "59", "10-20"]
HOURS = ["*", "0", "9", "9-17/2", "3/4", "23"]
MONTHS = ["*", "1", "12", "FEB", "3/2", "JAN-MAR", "jun"]
DAYS = ["1", "15", "L", "LW", "15W", "1W", "31", "*/3", "5/7", "1-10"]
UNIX_WEEKDAYS = ["0", "7", "1-5", "5L", "1#2", "SUN", "fri", "0-6/2", "*/3", "6#5", "MON-FRI"]
AWS_WEEKDAYS = ["1", "7", "L", "6L", "2#1", "SUN", "FRI", "2-6", "6-2", "7L", "1#5"]
YEARS = ["*", "2027", "2027-2030", "2030/3"]


@st.composite
def valid_expressions(draw: st.DrawFn) -> str:
    """Expressions in every syntax, with every special character, kept only when they parse."""
    kind = draw(st.sampled_from(["unix", "aws", "rate", "at", "nickname"]))
    if kind == "unix":
        day = draw(st.sampled_from(["*", "?"])) if draw(st.booleans()) else items(draw, DAYS)
        weekday = "*" if draw(st.booleans()) else items(draw, UNIX_WEEKDAYS)
        minute, hour = items(draw, MINUTES), items(draw, HOURS)
        expression = f"{minute} {hour} {day} {items(draw, MONTHS)} {weekday}"
    elif kind == "aws":
        day, weekday = (
            ("?", items(draw, AWS_WEEKDAYS)) if draw(st.booleans()) else (items(draw, DAYS), "?")
        )
        minute, hour, month = items(draw, MINUTES), items(draw, HOURS), items(draw, MONTHS)
        expression = f"cron({minute} {hour} {day} {month} {weekday} {draw(st.sampled_from(YEARS))})"
    elif kind == "rate":
        unit = draw(st.sampled_from(["minute", "minutes", "hour", "hours", "day", "days"]))
        expression = f"rate({draw(st.integers(1, 36500 if 'day' in unit else 100_000))} {unit})"
    elif kind == "at":
        moment = draw(st.datetimes(min_value=datetime(2026, 1, 2), max_value=datetime(2199, 1, 1)))
        expression = f"at({moment:%Y-%m-%dT%H:%M}:00)"
    else:
        expression = draw(st.sampled_from(["@yearly", "@monthly", "@weekly", "@daily", "@hourly"]))
    try:
        parse_schedule(expression)
    except ScheduleError:
        assume(False)
    return expression


@settings(max_examples=150, deadline=None)
@given(expression=valid_expressions(), timezone=st.sampled_from(ZONES))
def test_next_answers_every_valid_expression_with_a_description(
    expression: str, timezone: str
) -> None:
    # When
    code, output = next_json(expression, timezone)

    # Then
    assert code == 0, output
    report = json.loads(output)
    assert report["description"].strip()
    utc_runs = [run["utc"] for run in report["runs"]]
    assert utc_runs == sorted(set(utc_runs))


def generated_expressions() -> list[str]:
    """A fixed sample of every combination of the choices above, for a repeatable sweep."""
    rng = random.Random(20261102)
    unix = [
        f"{m} {h} {d} {mo} {w}"
        for m, h, d, mo, w in itertools.product(
            MINUTES[:4], HOURS[:3], ["*", *DAYS], MONTHS[:3], ["*", *UNIX_WEEKDAYS, "0,*/3"]
        )
    ]
    aws = [
        f"cron({m} {h} {d} {mo} {w} {y})"
        for m, h, (d, w), mo, y in itertools.product(
            MINUTES[:3],
            HOURS[:3],
            [("?", w) for w in AWS_WEEKDAYS] + [(d, "?") for d in DAYS],
            MONTHS[:3],
            YEARS,
        )
    ]
    return rng.sample(unix, 160) + rng.sample(aws, 160)


def test_next_answers_a_generated_sweep_of_expressions() -> None:
    # Given a sweep of expressions, with the two shapes cron-descriptor cannot read
    expressions = [*generated_expressions(), "cron(0 0 ? * L *)", "0 9 * * 1,*/3"]
    valid = []
    for expression in expressions:
        try:
            parse_schedule(expression)
        except ScheduleError:
            continue
        valid.append(expression)

    # When each is previewed
    failures = {}
    for expression in valid:
        code, output = next_json(expression, count=1)
        if code != 0 or not json.loads(output)["description"].strip():
            failures[expression] = output[-300:]

    # Then every one answered
    assert len(valid) > 300
    assert failures == {}


def test_next_describes_aws_last_day_of_week_as_saturday() -> None:
    # cron-descriptor raised FormatError on it, and the command crashed.
    result = runner.invoke(app, ["next", "cron(0 0 ? * L *)", "--after", AFTER, "-n", "1"])

    assert result.exit_code == 0
    assert result.output.splitlines()[0] == "cron(0 0 ? * L *): At 00:00, only on Saturday (UTC)"


def test_next_shows_as_written_what_cannot_be_described() -> None:
    code, output = next_json("0 9 * * 1,*/3", count=1)

    assert code == 0
    assert json.loads(output)["description"] == "0 9 * * 1,*/3 (UTC)"


@pytest.mark.parametrize("after", ["0001-01-01T00:00:00Z", "1969-12-30T00:00:00Z", "9999-01-01"])
def test_next_refuses_a_time_outside_the_years_schedules_run_in(after: str) -> None:
    result = runner.invoke(app, ["next", "rate(5 minutes)", "--after", after])

    assert result.exit_code == 2
    assert "outside the years schedules run in, 1970 to 2199" in unboxed(result.output)


def test_next_near_the_end_of_the_engine_s_years_lists_what_is_left() -> None:
    result = runner.invoke(
        app, ["next", "0 0 1 * *", "--after", "2199-10-15T00:00:00Z", "-n", "10"]
    )

    assert result.exit_code == 0
    assert "The schedule ends after these 3 run(s)." in result.output


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("\u0665 * * * *", "is not an ASCII digit"),
        ("\u00b9 * * * *", "is not an ASCII digit"),
        ("rate(99999999999999999999999 minutes)", "the longest rate is 36500 days"),
    ],
)
def test_next_refuses_what_used_to_crash_it_as_bad_input(expression: str, message: str) -> None:
    result = runner.invoke(app, ["next", expression])

    assert result.exit_code == 2
    assert message in unboxed(result.output)


def test_a_crash_inside_next_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a fault inside the engine (a bug standing in for any)
    def broken(expression: str, timezone: object, *, hash_key: str | None = None) -> None:
        raise RecursionError("a bug")

    monkeypatch.setattr("cronfleet_tools.cli.schedules.parse_schedule", broken)

    result = runner.invoke(app, ["next", "rate(5 minutes)"])

    assert result.exit_code == EXIT_INTERNAL_ERROR
    assert "Internal error in cronfleet next (RecursionError)" in result.output


def test_preview_exits_1_for_an_invalid_template_and_prints_its_problems(tmp_path: Path) -> None:
    stack = (Path(__file__).parent / "templates" / "stack.yaml").read_text(encoding="utf-8")
    template = tmp_path / "template.yaml"
    template.write_text(
        stack + "\n  Bad:\n    Type: AWS::CloudFormation::CustomResource\n    Properties:\n"
        "      ServiceToken: !GetAtt RegistryFunction.Arn\n      Schedule: rate(5 minutes)\n"
        "      Timezone: localtime\n      Function: !GetAtt ReportFunction.Arn\n",
        encoding="utf-8",
    )

    result = runner.invoke(app, ["preview", str(template)])

    assert result.exit_code == 1
    assert result.output.startswith("Bad.Timezone: timezone 'localtime' is no IANA zone")


def test_the_help_of_validate_documents_its_exit_statuses() -> None:
    result = runner.invoke(app, ["validate", "--help"])

    help_text = " ".join(result.output.split())
    assert "Exits 0 when valid, 1 when not, 2 for bad usage, 3 for an internal error" in help_text
