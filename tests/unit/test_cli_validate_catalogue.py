"""A catalogue of bad task definitions, each refused with its own `<LogicalId>.<Field>: <reason>`.

Every case is one task's properties, written the way CloudFormation hands them to the registry:
PascalCase names and every scalar a string. Each case goes through both doors a definition can
come in by, and must be refused the same way at both:

- `cronfleet validate`, as a person runs it: the cases are rendered as YAML, one task resource
  each, into one template (tests/unit/templates/stack.yaml plus the tasks), and the command runs
  once on it;
- `parse_task_definition`, as the registry Lambda calls it at deploy time, with the properties
  as CloudFormation sends them (the task's target resolved to its ARN).

A few cases exist only at one door: checks that need the whole template (is the target a function
of this stack?), and the registry's own check of a literal function name. Problems that spoil the
whole template (YAML syntax, nesting, aliases, duplicate keys) each get a template of their own.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cronfleet import clock
from cronfleet.registry.definition import parse_task_definition
from cronfleet.registry.problems import InvalidTaskDefinition
from cronfleet_tools.cli.app import app
from cronfleet_tools.cli.common import EXIT_INTERNAL_ERROR
from cronfleet_tools.template import parse_template

STACK = (Path(__file__).parent / "templates" / "stack.yaml").read_text(encoding="utf-8")
# Every case is judged at this instant, at both doors.
NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Tag:
    """A short-form intrinsic function in the template, such as `!GetAtt ReportFunction.Arn`."""

    tag: str
    value: str | tuple[Any, ...]


# The task's function: ReportFunction has a Timeout of 120 seconds. CloudFormation resolves the
# GetAtt to this ARN before the registry sees it.
TARGET = Tag("!GetAtt", "ReportFunction.Arn")
TARGET_ARN = "arn:aws:lambda:us-east-1:123456789012:function:ReportFunction"


@dataclass(frozen=True)
class Case:
    name: str
    properties: dict[str, Any]
    field: str
    words: tuple[str, ...]
    # Where the case applies: template checks never reach the registry, and a literal function
    # name is refused earlier, and differently, by the template check.
    doors: frozenset[str] = frozenset({"validate", "registry"})
    resource_type: str = "Custom::ScheduledTask"


def fn(**properties: Any) -> dict[str, Any]:
    """A valid function task with some properties changed (None removes one)."""
    merged = {"Schedule": "rate(5 minutes)", "Function": TARGET, **properties}
    return {key: value for key, value in merged.items() if value is not None}


def http(**target: Any) -> dict[str, Any]:
    """A valid Http task with some Http properties changed."""
    return {
        "Schedule": "rate(5 minutes)",
        "Http": {"Url": "https://api.example.com/cron", **target},
    }


def nested(depth: int) -> dict[str, Any]:
    """An object nested `depth` levels deep, the innermost holding one string."""
    value: dict[str, Any] = {"leaf": "1"}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


CASES: list[Case] = []


def case(
    name: str,
    properties: dict[str, Any],
    field: str,
    *words: str,
    doors: tuple[str, ...] = ("validate", "registry"),
    resource_type: str = "Custom::ScheduledTask",
) -> None:
    CASES.append(Case(name, properties, field, words, frozenset(doors), resource_type))


# --- Schedules: Unix cron, field by field ------------------------------------------------------

UNIX_FIELDS = [
    # (field, position, lowest, highest, a name the field does not know)
    ("minute", 0, 0, 59, None),
    ("hour", 1, 0, 23, None),
    ("day-of-month", 2, 1, 31, None),
    ("month", 3, 1, 12, "JANUARY"),
    ("day-of-week", 4, 0, 7, "MONDAY"),
]


def unix(position: int, text: str) -> str:
    fields = ["0", "9", "*", "*", "*"]
    fields[position] = text
    return " ".join(fields)


for name, position, low, high, unknown in UNIX_FIELDS:
    if low > 0:
        case(
            f"unix {name} below its range",
            fn(Schedule=unix(position, str(low - 1))),
            "Schedule",
            f"{name} field '{low - 1}'",
            f"out of range {low}-{high}",
        )
    case(
        f"unix {name} above its range",
        fn(Schedule=unix(position, str(high + 1))),
        "Schedule",
        f"{name} field '{high + 1}'",
        f"{high + 1} is out of range {low}-{high}",
    )
    case(
        f"unix {name} of 5,000 digits",
        fn(Schedule=unix(position, "9" * 200)),
        "Schedule",
        f"{name} field '999",
        "...",
        f"is out of range {low}-{high}",
    )
    case(
        f"unix {name} negative",
        fn(Schedule=unix(position, "-1")),
        "Schedule",
        f"{name} field '-1'",
        "has no value before '-'",
    )
    case(
        f"unix {name} step of zero",
        fn(Schedule=unix(position, "*/0")),
        "Schedule",
        f"{name} field '*/0'",
        "increment '0' must be a whole number of 1 or more",
    )
    case(
        f"unix {name} step that is a word",
        fn(Schedule=unix(position, "*/x")),
        "Schedule",
        f"{name} field '*/x'",
        "increment 'x'",
    )
    case(
        f"unix {name} empty list item",
        fn(Schedule=unix(position, "1,,2")),
        "Schedule",
        f"{name} field '1,,2'",
        "has an empty list item",
    )
    case(
        f"unix {name} range without an end",
        fn(Schedule=unix(position, "1-")),
        "Schedule",
        f"{name} field '1-'",
        "range '1-' has no end",
    )
    case(
        f"unix {name} backwards range",
        fn(Schedule=unix(position, f"{high}-{low + 1}")),
        "Schedule",
        f"range {high}-{low + 1} runs backwards",
    )
    word = unknown or "X"
    case(
        f"unix {name} unknown word",
        fn(Schedule=unix(position, word)),
        "Schedule",
        f"{name} field '{word}'",
        f"'{word}' is not a number",
    )

for count in (1, 4, 7):
    case(
        f"unix cron with {count} fields",
        fn(Schedule=" ".join(["*"] * count)),
        "Schedule",
        f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), got {count}",
    )
case(
    "unix cron with a seconds field",
    fn(Schedule="*/30 * * * * *"),
    "Schedule",
    "got 6",
    "a seconds field is not supported",
)
case("unix L alone in day-of-week", fn(Schedule="0 9 * * L"), "Schedule", "'L' alone is AWS syntax")
case(
    "unix W in day-of-week",
    fn(Schedule="0 9 * * 1W"),
    "Schedule",
    "'W' belongs in the day-of-month",
)
case("unix # in day-of-month", fn(Schedule="0 9 1#2 * *"), "Schedule", "belongs in the day-of-week")
case("unix sixth weekday of a month", fn(Schedule="0 9 * * 1#6"), "Schedule", "between #1 and #5")
case("unix zeroth weekday of a month", fn(Schedule="0 9 * * 1#0"), "Schedule", "between #1 and #5")
case(
    "unix question mark inside a list",
    fn(Schedule="0 9 1,? * *"),
    "Schedule",
    "'?' must stand alone",
)
for nickname in ("@reboot", "@every_5m", "@sometimes"):
    case(
        f"nickname {nickname}",
        fn(Schedule=nickname),
        "Schedule",
        f"'{nickname}' is not supported",
        "@daily",
    )
for impossible in ("0 0 30 2 *", "0 0 31 4 *", "0 0 31 6 *", "0 0 31 9 *", "0 0 31 11 *"):
    case(
        f"unix {impossible} that never runs",
        fn(Schedule=impossible),
        "Schedule",
        f"'{impossible}' matches no date within 100 years",
    )
case("empty schedule", fn(Schedule=""), "Schedule", "schedule is empty")
case("blank schedule", fn(Schedule="   "), "Schedule", "schedule is empty")
case(
    "schedule over EventBridge's length",
    fn(Schedule="0 " + "1," * 150 + "2 * * *"),
    "Schedule",
    "characters long; at most 256",
)
case("missing schedule", fn(Schedule=None), "Schedule", "required")
case(
    "unknown wrapper",
    fn(Schedule="every(5 minutes)"),
    "Schedule",
    "'every(...)' is not a schedule",
)

# --- Schedules: AWS cron -----------------------------------------------------------------------

AWS_FIELDS = [
    ("minute", 0, 0, 59),
    ("hour", 1, 0, 23),
    ("day-of-month", 2, 1, 31),
    ("month", 3, 1, 12),
    ("day-of-week", 4, 1, 7),
    ("year", 5, 1970, 2199),
]


def aws(position: int, text: str) -> str:
    fields = ["0", "9", "?", "*", "MON", "*"] if position == 4 else ["0", "9", "*", "*", "?", "*"]
    fields[position] = text
    return f"cron({' '.join(fields)})"


for name, position, low, high in AWS_FIELDS:
    if low > 0:
        case(
            f"aws {name} below its range",
            fn(Schedule=aws(position, str(low - 1))),
            "Schedule",
            f"{name} field '{low - 1}'",
            f"out of range {low}-{high}",
        )
    case(
        f"aws {name} above its range",
        fn(Schedule=aws(position, str(high + 1))),
        "Schedule",
        f"{name} field '{high + 1}'",
        f"out of range {low}-{high}",
    )
    case(
        f"aws {name} of 200 digits",
        fn(Schedule=aws(position, "7" * 200)),
        "Schedule",
        f"{name} field '777",
        "is out of range",
    )
    case(
        f"aws {name} empty list item",
        fn(Schedule=aws(position, "1,")),
        "Schedule",
        f"{name} field '1,'",
        "has an empty list item",
    )
    case(
        f"aws {name} unknown word",
        fn(Schedule=aws(position, "SOON")),
        "Schedule",
        f"{name} field 'SOON'",
        "'SOON' is not a number",
    )

case(
    "aws star in both day fields",
    fn(Schedule="cron(0 9 * * * *)"),
    "Schedule",
    "'*' in both day fields",
    "needs '?' in one of them",
)
case(
    "aws question mark in both day fields",
    fn(Schedule="cron(0 9 ? * ? *)"),
    "Schedule",
    "cannot both be '?'",
)
case(
    "aws both day fields set",
    fn(Schedule="cron(0 9 1 * MON *)"),
    "Schedule",
    "both day fields set",
)
for count in (5, 7):
    case(
        f"aws cron with {count} fields",
        fn(Schedule=f"cron({' '.join(['0'] * (count - 2) + ['?', '*'])})"),
        "Schedule",
        f"cron(...) has 6 fields (minute hour day-of-month month day-of-week year), got {count}",
    )
case(
    "aws step in day-of-week",
    fn(Schedule="cron(0 9 ? * 1/2 *)"),
    "Schedule",
    "'/' increments are not allowed in this field",
)
case("aws W in day-of-week", fn(Schedule="cron(0 9 ? * 2W *)"), "Schedule", "'W' belongs")
case("aws L offset", fn(Schedule="cron(0 9 L-2 * ? *)"), "Schedule", "'L' is not a number")
case("aws sixth weekday", fn(Schedule="cron(0 9 ? * 2#6 *)"), "Schedule", "between #1 and #5")
case(
    "aws February 30th",
    fn(Schedule="cron(0 0 30 2 ? *)"),
    "Schedule",
    "matches no date within 100 years",
)
case(
    "aws February 29th in a year that has none",
    fn(Schedule="cron(0 0 29 2 ? 2027)"),
    "Schedule",
    "matches no date in its years",
)
for years in ("2020", "2019-2025", "2000,2010", "1990-2000/5"):
    case(
        f"aws years {years} all over",
        fn(Schedule=f"cron(0 9 * * ? {years})"),
        "Schedule",
        "has no run after now (it is now 2026-11-02T08:00:00Z)",
        "has no runs left",
    )
case(
    "aws last run of this year already past",
    fn(Schedule="cron(0 9 1 1 ? 2026)"),
    "Schedule",
    "has no run after now",
    "its last year, 2026",
)
case(
    "a 6-field cron without cron(...)",
    fn(Schedule="0 9 * * ? *"),
    "Schedule",
    "AWS syntax with a year field is written cron(",
)

# --- Schedules: rate ---------------------------------------------------------------------------

for value in ("0", "00", "-5", "five", "1.5", "+5", "0x10", "1e3"):
    case(
        f"rate of {value}",
        fn(Schedule=f"rate({value} minutes)"),
        "Schedule",
        f"'{value}' must be a whole number of 1 or more",
    )
for unit in ("seconds", "second", "milliseconds"):
    case(
        f"rate in {unit}",
        fn(Schedule=f"rate(30 {unit})"),
        "Schedule",
        "resolution is one minute",
    )
for unit in ("weeks", "months", "years", "fortnights"):
    case(
        f"rate in {unit}",
        fn(Schedule=f"rate(2 {unit})"),
        "Schedule",
        f"unit '{unit}' must be minutes, hours or days",
    )
for text in ("rate(5)", "rate()", "rate(minutes)", "rate(5 minutes 3)"):
    case(f"malformed {text}", fn(Schedule=text), "Schedule", "is not a rate")
for amount, unit in (
    ("99999999999999999999999", "minutes"),
    ("3000000", "days"),
    ("36501", "days"),
    ("876001", "hours"),
    ("52560001", "minutes"),
    ("9" * 200, "days"),
):
    case(
        f"rate of {amount[:24]} {unit}",
        fn(Schedule=f"rate({amount} {unit})"),
        "Schedule",
        "the longest rate is 36500 days",
    )

# --- Schedules: at -----------------------------------------------------------------------------

for when in (
    "2020-01-01T00:00:00",
    "2026-11-01T09:00:00",
    "2026-11-02T07:59:00",
    "1970-01-01T00:00:00",
):
    case(
        f"at {when} in the past",
        fn(Schedule=f"at({when})"),
        "Schedule",
        "is in the past",
        "it is now 2026-11-02T08:00:00Z",
        "would never run",
    )
case(
    "at exactly now",
    fn(Schedule="at(2026-11-02T08:00:00)"),
    "Schedule",
    "is in the past (2026-11-02T08:00:00Z",
)
case(
    "at in the past in its own timezone",
    fn(Schedule="at(2026-11-02T08:30:00)", Timezone="Europe/Berlin"),
    "Schedule",
    "is in the past (2026-11-02T07:30:00Z",
    "it is now 2026-11-02T08:00:00Z",
)
case("at with seconds", fn(Schedule="at(2027-01-01T09:00:30)"), "Schedule", "seconds must be 00")
for when in (
    "2027-01-01 09:00:00",
    "2027-01-01T09:00",
    "2027-01-01",
    "2027-01-01T09:00:00Z",
    "2027-01-01T09:00:00+01:00",
    "27-01-01T09:00:00",
    "tomorrow",
):
    case(
        f"at written as {when}",
        fn(Schedule=f"at({when})"),
        "Schedule",
        "write at(yyyy-mm-ddThh:mm:ss)",
    )
for when, reason in (
    ("2027-02-30T09:00:00", "day is out of range for month"),
    ("2027-13-01T09:00:00", "month must be in 1..12"),
    ("2027-01-01T24:00:00", "hour must be in 0..23"),
    ("2027-01-01T09:60:00", "minute must be in 0..59"),
    ("2200-01-01T00:00:00", "year 2200 is out of range 1970-2199"),
    ("1969-12-31T23:00:00", "year 1969 is out of range 1970-2199"),
):
    case(f"at {when}", fn(Schedule=f"at({when})"), "Schedule", reason)

# --- Schedules: characters no syntax accepts ----------------------------------------------------

STRANGE_CHARACTERS = [
    ("Arabic-Indic five", "\u0665", "is not an ASCII digit"),
    ("superscript one", "\u00b9", "is not an ASCII digit"),
    ("fullwidth five", "\uff15", "is not an ASCII digit"),
    ("Devanagari five", "\u096b", "is not an ASCII digit"),
    ("no-break space", "\u00a0", "is not an ASCII space"),
    ("ideographic space", "\u3000", "is not an ASCII space"),
    ("line feed", "\n", "is a control character"),
    ("NUL", "\x00", "is a control character"),
    ("zero-width space", "\u200b", "is not ASCII"),
    ("fullwidth asterisk", "\uff0a", "is not ASCII"),
]
SYNTAXES = [
    ("unix", "{c} 9 * * *", "0 9 * * *"),
    ("aws", "cron({c} 9 ? * MON *)", "cron(0 9 ? * MON *)"),
    ("rate", "rate({c} minutes)", "rate(5 minutes)"),
    ("at", "at(2027-01-0{c}T09:00:00)", "at(2027-01-05T09:00:00)"),
]
for label, char, reason in STRANGE_CHARACTERS:
    for syntax, template, _ in SYNTAXES:
        expression = template.format(c=char)
        case(
            f"{syntax} with a {label}",
            fn(Schedule=expression),
            "Schedule",
            f"(U+{ord(char):04X}) at position {expression.index(char) + 1} {reason}",
        )

# --- Timezones ---------------------------------------------------------------------------------

for zone in ("Mars/Olympus", "Europe/Londn", "America/NewYork", "Etc/GMT+15", "GMT+1", "EST5"):
    case(f"unknown timezone {zone}", fn(Timezone=zone), "Timezone", f"unknown timezone '{zone}'")
case(
    "misspelt timezone gets a suggestion",
    fn(Timezone="Europe/Londn"),
    "Timezone",
    "did you mean 'Europe/London'?",
)
for zone in ("localtime", "posixrules", "Factory", "posix/Europe/London", "right/UTC"):
    case(
        f"zoneinfo file {zone}",
        fn(Timezone=zone),
        "Timezone",
        f"timezone '{zone}' is no IANA zone",
    )
for zone in (
    "Europe/../UTC",
    "../UTC",
    "/etc/localtime",
    "/usr/share/zoneinfo/UTC",
    "Europe//London",
    "Europe/London/",
    " UTC",
    "UTC ",
    "Europe/Lon don",
    "zone.tab",
):
    case(f"timezone path {zone!r}", fn(Timezone=zone), "Timezone", "unknown timezone", "IANA name")
case("timezone with a newline", fn(Timezone="UTC\n"), "Timezone", "unknown timezone 'UTC\\n'")
case(
    "timezone in the wrong case",
    fn(Timezone="europe/london"),
    "Timezone",
    "unknown timezone 'europe/london'",
    "did you mean 'Europe/London'?",
)
case("empty timezone", fn(Timezone=""), "Timezone", "timezone is empty")
case("timezone not a string", fn(Timezone={"Name": "UTC"}), "Timezone", "must be a string")

# --- Retry -------------------------------------------------------------------------------------

for value, words in (
    ("0", ("between 1 and 10", "got 0")),
    ("11", ("between 1 and 10", "got 11")),
    ("-1", ("between 1 and 10", "got -1")),
    ("two", ("must be a whole number", "'two'")),
    ("3.5", ("must be a whole number", "'3.5'")),
    ("\u0663", ("must be a whole number",)),
):
    case(f"MaxAttempts {value}", fn(Retry={"MaxAttempts": value}), "Retry.MaxAttempts", *words)
for value, words in (
    ("30", ("between 60 and 86400 seconds", "got 30", "one-minute tick")),
    ("59", ("got 59",)),
    ("86401", ("got 86401",)),
    ("soon", ("must be a whole number",)),
):
    case(
        f"IntervalSeconds {value}",
        fn(Retry={"IntervalSeconds": value, "MaxDelaySeconds": "86400"}),
        "Retry.IntervalSeconds",
        *words,
    )
for value, words in (
    ("0.5", ("between 1.0 and 10.0", "got 0.5")),
    ("11", ("got 11",)),
    ("fast", ("must be a number", "'fast'")),
    ("nan", ("between 1.0 and 10.0", "got nan")),
):
    case(f"BackoffRate {value}", fn(Retry={"BackoffRate": value}), "Retry.BackoffRate", *words)
for value, words in (
    ("59", ("between 60 and 86400 seconds", "got 59")),
    ("86401", ("got 86401",)),
    ("forever", ("must be a whole number",)),
):
    case(
        f"MaxDelaySeconds {value}",
        fn(Retry={"MaxDelaySeconds": value}),
        "Retry.MaxDelaySeconds",
        *words,
    )
case(
    "MaxDelaySeconds below IntervalSeconds",
    fn(Retry={"IntervalSeconds": "600", "MaxDelaySeconds": "300"}),
    "Retry.MaxDelaySeconds",
    "at least IntervalSeconds (600)",
    "got 300",
)
case(
    "IntervalSeconds above the default MaxDelaySeconds",
    fn(Retry={"IntervalSeconds": "7200"}),
    "Retry.MaxDelaySeconds",
    "(the default; set MaxDelaySeconds as well)",
)
for value in ("RANDOM", "full", "DECORRELATED"):
    case(
        f"JitterStrategy {value}",
        fn(Retry={"JitterStrategy": value}),
        "Retry.JitterStrategy",
        "'FULL' or 'NONE'",
    )
case(
    "misspelt retry field",
    fn(Retry={"MaxAttemps": "2"}),
    "Retry.MaxAttemps",
    "did you mean 'MaxAttempts'?",
)
case("retry that is not a mapping", fn(Retry="3"), "Retry", "must be a mapping, got '3'")

# --- Overlap and catch-up ----------------------------------------------------------------------

for value in ("sometimes", "Skip", "queue", "queue-one", "", "SKIP"):
    case(
        f"overlap {value!r}",
        fn(Overlap=value),
        "Overlap",
        "'allow', 'skip' or 'queue_one'",
        f"got {value!r}",
    )
for value in ("maybe", "ALL", "every", ""):
    case(
        f"catch-up {value!r}",
        fn(Catchup=value),
        "Catchup.Policy",
        "'latest', 'all' or 'none'",
    )
case(
    "catch-up mapping with an unknown policy",
    fn(Catchup={"Policy": "most"}),
    "Catchup.Policy",
    "got 'most'",
)
for value, words in (
    ("59", ("between 60 and 604800 seconds", "got 59")),
    ("604801", ("got 604801",)),
    ("an hour", ("must be a whole number",)),
):
    case(
        f"MaxLatenessSeconds {value}",
        fn(Catchup={"Policy": "all", "MaxLatenessSeconds": value}),
        "Catchup.MaxLatenessSeconds",
        *words,
    )
for value, words in (
    ("0", ("between 1 and 1000", "got 0")),
    ("1001", ("got 1001",)),
    ("many", ("must be a whole number",)),
):
    case(
        f"MaxRuns {value}",
        fn(Catchup={"Policy": "all", "MaxRuns": value}),
        "Catchup.MaxRuns",
        *words,
    )
case(
    "misspelt catch-up field",
    fn(Catchup={"Policy": "all", "MaxRun": "5"}),
    "Catchup.MaxRun",
    "did you mean 'MaxRuns'?",
)

# --- Alerts ------------------------------------------------------------------------------------

for value, words in (
    ("0", ("between 1 and 100", "got 0")),
    ("101", ("got 101",)),
    ("three", ("must be a whole number",)),
):
    case(
        f"AfterConsecutiveFailures {value}",
        fn(Alerts={"AfterConsecutiveFailures": value}),
        "Alerts.AfterConsecutiveFailures",
        *words,
    )
for value in ("sometimes", "2", "enabled"):
    case(
        f"OnRecovery {value}",
        fn(Alerts={"OnRecovery": value}),
        "Alerts.OnRecovery",
        "must be true or false",
    )
for value, words in (("0", ("between 1 and 86400",)), ("86401", ("got 86401",))):
    case(
        f"SlowerThanSeconds {value}",
        fn(Alerts={"SlowerThanSeconds": value}),
        "Alerts.SlowerThanSeconds",
        *words,
    )
for value, words in (("59", ("between 60 and 604800",)), ("604801", ("got 604801",))):
    case(
        f"RealertAfterSeconds {value}",
        fn(Alerts={"RealertAfterSeconds": value}),
        "Alerts.RealertAfterSeconds",
        *words,
    )
for value in (
    "arn:aws:sqs:eu-west-1:123456789012:alerts",
    "alerts",
    "arn:aws:sns:eu-west-1:123456789012:alerts\n",
    "arn:aws:sns:eu-west-1:12345678901:alerts",
):
    case(
        f"TopicArn {value!r}",
        fn(Alerts={"TopicArn": value}),
        "Alerts.TopicArn",
        "must be an SNS topic ARN",
    )
case(
    "misspelt alerts field",
    fn(Alerts={"OnRecover": "true"}),
    "Alerts.OnRecover",
    "did you mean 'OnRecovery'?",
)

# --- Http: URL, method, secret and the rest ----------------------------------------------------

for url, words in (
    ("http://api.example.com/cron", ("must use https://", "AllowInsecureHttp")),
    ("ftp://files.example.com/x", ("https://", "ftp://")),
    ("https://localhost:8443/cron", ("localhost is the local machine", "AllowPrivateNetwork")),
    ("https://10.0.0.1/cron", ("10.0.0.1 is a private address",)),
    ("https://192.168.1.10/cron", ("private address",)),
    ("https://169.254.169.254/latest/meta-data/", ("cloud instance metadata service",)),
    ("https://[::1]/cron", ("loopback",)),
    ("https://[::ffff:127.0.0.1]/cron", ("loopback",)),
    ("https://2130706433/cron", ("loopback",)),
    ("https://user:pass@api.example.com/cron", ("must not contain credentials", "SecretArn")),
    ("https://api.example.com/" + "a" * 2100, ("must be at most 2048 characters",)),
):
    case(f"url {url[:40]}", http(Url=url), "Http.Url", *words)
# The credentials endpoints in every spelling stay refused even with AllowPrivateNetwork, and
# private and loopback addresses in every spelling without it.
_CREDENTIALS = {
    "[::a9fe:a9fe]": "metadata service",
    "[::ffff:a9fe:a9fe]": "metadata service",
    "[::ffff:0:a9fe:a9fe]": "metadata service",
    "[64:ff9b::a9fe:a9fe]": "metadata service",
    "[64:ff9b:1::a9fe:a9fe]": "metadata service",
    "[2002:a9fe:a9fe::1]": "metadata service",
    "[2001:0:4136:e378:8000:63bf:5601:5601]": "metadata service",
    "[fd00:ec2::254]": "metadata service",
    "0xa9fea9fe": "metadata service",
    "2852039166": "metadata service",
    "0251.0376.0251.0376": "metadata service",
    "169.254.43518": "metadata service",
    "169.254.169.254.": "metadata service",
    "169.254.170.2": "ECS task metadata service",
    "169.254.170.23": "EKS Pod Identity credentials service",
    "[fd00:ec2::23]": "EKS Pod Identity credentials service",
}
for host, service in _CREDENTIALS.items():
    for opted_in in ("true", "false"):
        case(
            f"credentials endpoint {host} (AllowPrivateNetwork {opted_in})",
            http(Url=f"https://{host}/latest/meta-data/", AllowPrivateNetwork=opted_in),
            "Http.Url",
            service,
            "never a task's target",
        )
for host, words in (
    ("[::ffff:10.0.0.1]", ("private address", "embedded as IPv4-mapped")),
    ("[64:ff9b::a00:1]", ("private address", "embedded by NAT64")),
    ("[::7f00:1]", ("loopback address", "embedded as IPv4-compatible")),
    ("0x7f000001", ("loopback address",)),
    ("127.1", ("loopback address",)),
    ("[2002:c0a8:101::]", ("private address", "embedded by 6to4")),
    ("localhost.", ("the local machine",)),
    ("[fe80::1]", ("link-local",)),
    ("172.16.5.4", ("private address",)),
    ("100.64.0.1", ("AllowPrivateNetwork",)),
):
    case(
        f"private spelling {host}",
        http(Url=f"https://{host}/cron"),
        "Http.Url",
        *words,
        "AllowPrivateNetwork",
    )
case(
    "missing url",
    {"Schedule": "rate(5 minutes)", "Http": {"Method": "GET"}},
    "Http.Url",
    "required",
)
for method in ("FETCH", "get", "", "CONNECT", "TRACE"):
    case(
        f"method {method!r}",
        http(Method=method),
        "Http.Method",
        "'GET', 'POST', 'PUT', 'PATCH', 'DELETE' or 'HEAD'",
    )
for method in ("GET", "DELETE", "HEAD"):
    case(
        f"body on a {method}",
        http(Method=method, Body='{"dryRun": true}'),
        "Http.Body",
        "only POST, PUT and PATCH send a body",
        f"Method is {method}",
    )
for secret in (
    "my-secret",
    "arn:aws:s3:::bucket/token",
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:token\n",
    "arn:aws:ssm:eu-west-1:123456789012:token",
    "arn:aws:secretsmanager:eu-west-1:1234:secret:token",
):
    case(
        f"secret {secret!r}",
        http(SecretArn=secret),
        "Http.SecretArn",
        "must be a Secrets Manager secret ARN",
    )
for value, words in (
    ("0", ("between 1 and 900 seconds", "got 0")),
    ("901", ("got 901",)),
    ("half a minute", ("must be a whole number",)),
):
    case(f"http timeout {value}", http(TimeoutSeconds=value), "Http.TimeoutSeconds", *words)
case(
    "http timeout longer than the run's",
    {**http(), "TimeoutSeconds": "20"},
    "Http.TimeoutSeconds",
    "must not exceed the task's TimeoutSeconds (20), got 30",
)
for status, where in (("99", "[0]"), ("600", "[0]"), ("ok", "[0]")):
    case(
        f"expected status {status}",
        http(ExpectedStatus=status),
        f"Http.ExpectedStatus{where}",
        "between 100 and 599" if status != "ok" else "must be a whole number",
    )
case(
    "second expected status out of range",
    http(ExpectedStatus=["200", "700"]),
    "Http.ExpectedStatus[1]",
    "got 700",
)
case("no expected status", http(ExpectedStatus=[]), "Http.ExpectedStatus", "at least 1 entry")
for field_name in ("a b", "1st", "ok\n", "", "x" * 129):
    case(
        f"success field {field_name[:10]!r}",
        http(SuccessField=field_name),
        "Http.SuccessField",
        "must be the name of a field in the JSON response",
    )
for flag in ("AllowInsecureHttp", "AllowPrivateNetwork"):
    case(f"{flag} maybe", http(**{flag: "maybe"}), f"Http.{flag}", "must be true or false")
case("misspelt http field", http(Methd="POST"), "Http.Methd", "did you mean 'Method'?")
case(
    "http that is not a mapping",
    fn(Function=None, Http="https://a.example"),
    "Http",
    "must be a mapping",
)

# --- Http: headers that could never be sent ----------------------------------------------------

for name in ("Authorization", "authorization", "Proxy-Authorization"):
    case(
        f"header {name}",
        http(Headers={name: "Bearer abc"}),
        f"Http.Headers.{name}",
        "secrets must not sit in the template",
        "SecretArn",
    )
for name, why in (
    ("Host", "the host comes from Url"),
    ("Content-Length", "the HTTP client computes it"),
    ("Transfer-Encoding", "the HTTP client computes it"),
):
    case(f"header {name}", http(Headers={name: "x"}), f"Http.Headers.{name}", why)
for label, name, shown in (
    ("a space", "X Cron", "' '"),
    ("a colon", "X-Cron:", "':'"),
    ("a line feed", "X-Cron\n", "'\\n'"),
    ("a carriage return", "X-Cron\r", "'\\r'"),
    ("a non-ASCII letter", "X-Crön", "'ö'"),
    ("a slash", "X/Cron", "'/'"),
    ("brackets", "X[Cron]", "'['"),
    ("a NUL", "X\x00Cron", "'\\x00'"),
):
    path = f"Http.Headers.{name}".replace("\n", "\\n").replace("\r", "\\r").replace("\x00", "\\x00")
    case(
        f"header name with {label}",
        http(Headers={name: "1"}),
        path,
        "is not a valid HTTP header name",
        f"{shown} is not allowed",
    )
case(
    "empty header name",
    http(Headers={"": "1"}),
    'Http.Headers.""',
    "a header name must not be empty",
)
for label, value, words in (
    ("a CR LF", "a\r\nX-Injected: 1", ("line breaks", "'\\r' at position 2")),
    ("a line feed", "a\nb", ("line breaks", "'\\n' at position 2")),
    ("a NUL", "a\x00b", ("control characters", "'\\x00' at position 2")),
    ("a DEL", "a\x7fb", ("control characters", "'\\x7f' at position 2")),
    ("a bell", "\x07", ("control characters", "'\\x07' at position 1")),
    ("a vertical tab", "a\x0bb", ("control characters", "'\\x0b'")),
    ("a form feed", "a\x0cb", ("control characters", "'\\x0c'")),
    ("a Latin-1 letter", "caf\u00e9", ("must be ASCII", "'é' at position 4")),
    ("an emoji", "ok \U0001f600", ("must be ASCII",)),
    ("a no-break space", "a\u00a0b", ("must be ASCII",)),
    ("a leading space", " token", ("must not start or end with a space or tab",)),
    ("a trailing space", "token ", ("must not start or end with a space or tab",)),
    ("a leading tab", "\ttoken", ("must not start or end with a space or tab",)),
    ("a trailing tab", "token\t", ("must not start or end with a space or tab",)),
):
    case(
        f"header value with {label}", http(Headers={"X-Cron": value}), "Http.Headers.X-Cron", *words
    )
case(
    "headers differing only in case",
    http(Headers={"X-Cron": "1", "x-cron": "2"}),
    "Http.Headers",
    "'X-Cron' and 'x-cron' are one header",
    "sent twice",
)
case(
    "headers over 8 KiB in all",
    http(Headers={f"X-Part-{index}": "v" * 400 for index in range(25)}),
    "Http.Headers",
    "bytes as sent ('Name: value' lines); at most 8192 bytes",
)
case(
    "more than 50 headers",
    http(Headers={f"X-{index}": "v" for index in range(51)}),
    "Http.Headers",
    "at most 50 entries, got 51",
)

# --- Http: body --------------------------------------------------------------------------------


def post(body: Any) -> dict[str, Any]:
    return http(Method="POST", Body=body)


case("body that is not JSON", post("{oops"), "Http.Body", "is not valid JSON text")
case("body with NaN", post('{"ratio": NaN}'), "Http.Body", "holds NaN, which is not JSON")
case("body with Infinity", post("[Infinity]"), "Http.Body", "holds Infinity")
case("body with a huge exponent", post('{"n": 1e999}'), "Http.Body", "too large for a JSON number")
case("body with a key twice", post('{"a": 1, "a": 2}'), "Http.Body", "has the key 'a' twice")
case("body nested 65 deep", post("[" * 65 + "]" * 65), "Http.Body", "nests deeper than 64 levels")
case(
    "body nested 100,000 deep",
    post("[" * 100_000 + "]" * 100_000),
    "Http.Body",
    "nests deeper than 64 levels",
)
case("body mapping nested 70 deep", post(nested(70)), "Http.Body", "nests deeper than 64 levels")
case(
    "body over 100 KiB",
    post({"blob": "x" * 102_400}),
    "Http.Body",
    "is 102411 bytes as sent (compact JSON, UTF-8); at most 102400 bytes",
)
case(
    "body whose escapes overflow the invoke",
    post({"blob": "\u00e9" * 50_000}),
    "Http.Body",
    "makes a run's invoke event",
    "over Lambda's limit of 262144 bytes",
    "Http.Body 300011",
)
case(
    "body with a lone surrogate",
    post('{"a": "\\ud800"}'),
    "Http.Body",
    "holds a lone surrogate (U+D800)",
)

# --- Payload -----------------------------------------------------------------------------------

for text, got in (("[1, 2]", "a list"), ('"hello"', "'hello'"), ("5", "5"), ("null", "null")):
    case(
        f"payload JSON {text}",
        fn(Payload=text),
        "Payload",
        "must be a JSON object",
        f"got {got}",
    )
for text, words in (
    ("{oops", ("is not valid JSON text",)),
    ("", ("is not valid JSON text",)),
    ('{"a": NaN}', ("holds NaN",)),
    ('{"a": -Infinity}', ("holds -Infinity",)),
    ('{"a": 1e400}', ("too large for a JSON number",)),
    ('{"a": 1, "a": 2}', ("has the key 'a' twice in one object",)),
    ('{"a": {"b": 1, "b": 1}}', ("has the key 'b' twice",)),
    ('{"n": ' + "7" * 5000 + "}", ("holds a number of 5000 digits; at most 4300",)),
    ('{"a": "\\udc00"}', ("holds a lone surrogate (U+DC00)",)),
    ('{"a":' * 65 + "1" + "}" * 65, ("nests deeper than 64 levels",)),
    ("[" * 100_000 + "]" * 100_000, ("nests deeper than 64 levels",)),
    ('{"a":' * 100_000 + "1" + "}" * 100_000, ("nests deeper than 64 levels",)),
):
    case(
        f"payload text {text[:24]!r} ({len(text)} characters)", fn(Payload=text), "Payload", *words
    )
case("payload mapping nested 65 deep", fn(Payload=nested(65)), "Payload", "nests deeper than 64")
case("payload with a lone surrogate", fn(Payload={"a": "\udfff"}), "Payload", "lone surrogate")
case("payload that is a list", fn(Payload=["a"]), "Payload", "must be a JSON object", "got a list")
for label, filler, count in (
    ("ASCII", "x", 262_100),
    ("Latin-1 letters", "\u00e9", 44_000),
    ("emoji", "\U0001f600", 22_000),
    ("control characters", "\x01", 44_000),
):
    case(
        f"payload of {label} over the invoke limit",
        fn(Payload={"blob": filler * count}),
        "Payload",
        "makes a run's invoke event",
        "over Lambda's limit of 262144 bytes (256 KiB) for an asynchronous invoke",
        "Payload ",
    )
case(
    "payload and body together over the invoke limit",
    {**post({"blob": "b" * 90_000}), "Payload": {"blob": "p" * 180_000}},
    "Payload",
    "makes a run's invoke event",
    "Payload 180011, Http.Body 90011",
)
case(
    "payload key http in an Http task",
    {**http(), "Payload": {"http": "mine"}},
    "Payload",
    "must not have a key 'http' in an Http task",
)

# --- Names, flags and the rest of the task -----------------------------------------------------

for label, value in (
    ("a space", "nightly backup"),
    ("65 characters", "n" * 65),
    ("a leading dash", "-nightly"),
    ("a leading dot", ".nightly"),
    ("a slash", "nightly/backup"),
    ("a colon", "nightly:backup"),
    ("a trailing newline", "nightly\n"),
    ("a non-ASCII letter", "n\u00e4chtlich"),
    ("a hash", "nightly#1"),
    ("nothing", ""),
):
    case(
        f"name with {label}",
        fn(Name=value),
        "Name",
        "must be 1 to 64 letters, digits, '_', '.' or '-'",
    )
for value in ("perhaps", "2", "", "enabled", "null"):
    case(f"enabled {value!r}", fn(Enabled=value), "Enabled", "must be true or false")
case(
    "description over 512",
    fn(Description="d" * 513),
    "Description",
    "at most 512 characters, got 513",
)
case("description that is a mapping", fn(Description={"a": "b"}), "Description", "must be a string")
case(
    "description with a lone surrogate",
    fn(Description="caf\udce9"),
    "Description",
    "holds a lone surrogate",
)
for value, words in (
    ("0", ("between 1 and 900 seconds", "got 0")),
    ("901", ("got 901", "Lambda's limit")),
    ("ten minutes", ("must be a whole number",)),
    ("1.5", ("must be a whole number",)),
    ("\u0665", ("must be a whole number",)),
):
    case(f"timeout {value!r}", fn(TimeoutSeconds=value), "TimeoutSeconds", *words)
for value in ("0", "3601", "forever"):
    case(f"service timeout {value}", fn(ServiceTimeout=value), "ServiceTimeout", value)
case(
    "too many tags",
    fn(Tags={f"k{index}": "v" for index in range(51)}),
    "Tags",
    "at most 50 entries, got 51",
)
case("tag key too long", fn(Tags={"k" * 129: "v"}), "Tags." + "k" * 129, "at most 128 characters")
case("empty tag key", fn(Tags={"": "v"}), 'Tags.""', "must not be empty")
case("tag value too long", fn(Tags={"owner": "o" * 257}), "Tags.owner", "at most 256 characters")
case("tag value that is a list", fn(Tags={"owner": ["a"]}), "Tags.owner", "must be a string")
case(
    "tag value with a lone surrogate", fn(Tags={"owner": "\ud83d"}), "Tags.owner", "lone surrogate"
)
for name, guess in (
    ("Timezon", "Timezone"),
    ("schedule", "Schedule"),
    ("Payloads", "Payload"),
    ("Retries", "Retry"),
    ("Alert", "Alerts"),
):
    case(
        f"unknown field {name}",
        {**fn(), name: "x"},
        name,
        f"unknown field; did you mean '{guess}'?",
    )
case("unknown field with no guess", {**fn(), "Colour": "blue"}, "Colour", "expected one of")
case(
    "both Function and Http",
    {**fn(), "Http": {"Url": "https://api.example.com/cron"}},
    "Function",
    "set either Function or Http, not both",
)
case(
    "neither Function nor Http", fn(Function=None), "Function", "required: set Function", "or Http"
)

# --- Literal function names: the registry's own check ------------------------------------------

for value in (
    "my function!",
    "report\n",
    "arn:aws:lambda:eu-west-1:123456789012:function:a b",
    "f" * 141,
):
    case(
        f"function {value[:20]!r}",
        fn(Function=value),
        "Function",
        "must be a Lambda function name or ARN",
        doors=("registry",),
    )

# --- Template checks: what only the whole template can answer ----------------------------------

for label, target, words in (
    ("an unknown resource", Tag("!GetAtt", "ReportFn.Arn"), ("'ReportFn' is not a resource",)),
    ("an unknown Ref", Tag("!Ref", "Reprot"), ("'Reprot' is not a resource",)),
    ("a table", Tag("!GetAtt", "TasksTable.Arn"), ("'TasksTable' is not a Lambda function",)),
    ("a parameter", Tag("!Ref", "ExternalFunctionArn"), ("refers to parameter",)),
    (
        "the wrong attribute",
        Tag("!GetAtt", "ReportFunction.Version"),
        ("use !GetAtt ReportFunction.Arn",),
    ),
    ("a literal logical id", "ReportFunction", ("is the literal text 'ReportFunction'",)),
    (
        "a function elsewhere",
        "arn:aws:lambda:eu-west-1:210987654321:function:x",
        ("not a function of this template",),
    ),
):
    case(f"target is {label}", fn(Function=target), "Function", *words, doors=("validate",))
for function, timeout, seconds in (
    ("ReportFunction", "300", 120),
    ("DigestFunction", "60", 30),
    ("CleanupFunction", "10", 3),
):
    case(
        f"timeout over the Timeout of {function}",
        fn(Function=Tag("!GetAtt", f"{function}.Arn"), TimeoutSeconds=timeout),
        "TimeoutSeconds",
        f"Timeout of function {function} ({seconds} seconds)",
        "Lambda would stop the run first",
        doors=("validate",),
    )
for index in ("5", "\u00b9", "-1"):
    case(
        f"select index {index!r}",
        fn(Schedule=Tag("!Select", (index, ("0 9 * * *", "0 10 * * *")))),
        "Schedule",
        f"Fn::Select index {index!r} is out of range",
        doors=("validate",),
    )
for resource_type in ("AWS::CloudFormation::CustomResource", "Custom::Cron"):
    for label, properties, field_name, words in (
        (
            "an hour out of range",
            fn(Schedule="0 25 * * *"),
            "Schedule",
            ("25 is out of range 0-23",),
        ),
        ("a past at()", fn(Schedule="at(2025-01-01T00:00:00)"), "Schedule", ("is in the past",)),
        ("localtime", fn(Timezone="localtime"), "Timezone", ("is no IANA zone",)),
        (
            "a header with a newline",
            http(Headers={"X-A": "1\n2"}),
            "Http.Headers.X-A",
            ("line breaks",),
        ),
    ):
        case(
            f"{resource_type} with {label}",
            properties,
            field_name,
            *words,
            doors=("validate",),
            resource_type=resource_type,
        )


# --- Running the catalogue ---------------------------------------------------------------------


def logical_id(index: int) -> str:
    return f"Case{index:03d}"


class _TemplateDumper(yaml.SafeDumper):
    pass


def _represent_tag(dumper: yaml.SafeDumper, tag: Tag) -> yaml.Node:
    if isinstance(tag.value, tuple):
        return dumper.represent_sequence(tag.tag, [_plain(item) for item in tag.value])
    return dumper.represent_scalar(tag.tag, tag.value)


def _plain(value: Any) -> Any:
    return [_plain(item) for item in value] if isinstance(value, tuple) else value


_TemplateDumper.add_representer(Tag, _represent_tag)


def as_yaml(properties: dict[str, Any]) -> str:
    return yaml.dump(
        properties, Dumper=_TemplateDumper, allow_unicode=True, width=10**9, sort_keys=False
    )


def resource(index: int, item: Case) -> str:
    return (
        f"\n  {logical_id(index)}:\n    Type: {item.resource_type}\n    Properties:\n"
        "      ServiceToken: !GetAtt RegistryFunction.Arn\n"
        + textwrap.indent(as_yaml(item.properties), " " * 6)
    )


def as_cloudformation_sends(value: Any) -> Any:
    """The properties the registry receives: the target's GetAtt resolved to its ARN."""
    if value == TARGET:
        return TARGET_ARN
    if isinstance(value, dict):
        return {key: as_cloudformation_sends(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_cloudformation_sends(item) for item in value]
    return value


AT_VALIDATE = [(index, item) for index, item in enumerate(CASES) if "validate" in item.doors]
AT_REGISTRY = [(index, item) for index, item in enumerate(CASES) if "registry" in item.doors]


@pytest.fixture
def judged_now() -> Iterator[None]:
    clock.use(lambda: NOW)
    try:
        yield
    finally:
        clock.use(None)


@pytest.fixture(scope="module")
def validate_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, list[str]]:
    """`cronfleet validate` run once on a template holding every case, at NOW."""
    template = tmp_path_factory.mktemp("catalogue") / "template.yaml"
    text = STACK + "".join(resource(index, item) for index, item in AT_VALIDATE)
    template.write_text(text, encoding="utf-8")
    clock.use(lambda: NOW)
    try:
        result = CliRunner().invoke(app, ["validate", str(template)])
    finally:
        clock.use(None)
    return result.exit_code, result.output.splitlines()


def test_the_catalogue_holds_at_least_300_bad_definitions() -> None:
    assert len(CASES) >= 300
    assert len({item.name for item in CASES}) == len(CASES), "case names must be unique"


def test_each_case_renders_as_yaml_that_reads_back_as_what_the_registry_is_given() -> None:
    # Given the cases both doors see, rendered into the template the command reads
    both = [(index, item) for index, item in AT_VALIDATE if "registry" in item.doors]
    text = STACK + "".join(resource(index, item) for index, item in both)

    # When the template is read back, with the target's GetAtt standing for its ARN
    resources = parse_template(text)["Resources"]

    # Then each task holds exactly the properties the registry is given
    for index, item in both:
        properties = dict(resources[logical_id(index)]["Properties"])
        del properties["ServiceToken"]
        if properties.get("Function") == {"Fn::GetAtt": ["ReportFunction", "Arn"]}:
            properties["Function"] = TARGET_ARN
        assert properties == as_cloudformation_sends(item.properties), item.name


@pytest.mark.parametrize(("index", "item"), AT_VALIDATE, ids=[item.name for _, item in AT_VALIDATE])
def test_validate_refuses_the_case_with_one_line_naming_its_field_and_reason(
    validate_output: tuple[int, list[str]], index: int, item: Case
) -> None:
    # Given the command's verdict on the template of every case
    code, lines = validate_output

    # Then it is a rejection, and this task has exactly one problem: the expected one
    assert code == 1
    mine = [line for line in lines if line.startswith(f"{logical_id(index)}.")]
    assert len(mine) == 1, mine
    prefix = f"{logical_id(index)}.{item.field}: "
    assert mine[0].startswith(prefix), mine[0][:300]
    for word in item.words:
        assert word in mine[0].removeprefix(prefix), (word, mine[0][:300])


@pytest.mark.parametrize(("index", "item"), AT_REGISTRY, ids=[item.name for _, item in AT_REGISTRY])
def test_the_registry_refuses_the_case_with_the_same_line(index: int, item: Case) -> None:
    # Given the properties as CloudFormation sends them to the registry
    properties = as_cloudformation_sends(item.properties)

    # When the registry parses them at NOW
    with pytest.raises(InvalidTaskDefinition) as refused:
        parse_task_definition(logical_id(index), properties, now=NOW)

    # Then exactly one problem, on the field, for the reason
    lines = [str(problem) for problem in refused.value.problems]
    assert len(lines) == 1, lines
    prefix = f"{logical_id(index)}.{item.field}: "
    assert lines[0].startswith(prefix), lines[0][:300]
    for word in item.words:
        assert word in lines[0].removeprefix(prefix), (word, lines[0][:300])


def test_every_case_gives_the_same_line_at_both_doors(
    validate_output: tuple[int, list[str]],
) -> None:
    # Given the command's lines and the registry's, for the cases both doors see
    _, lines = validate_output
    by_task = {line.split(".", 1)[0]: line for line in lines}

    for index, item in AT_VALIDATE:
        if "registry" not in item.doors:
            continue
        with pytest.raises(InvalidTaskDefinition) as refused:
            parse_task_definition(
                logical_id(index), as_cloudformation_sends(item.properties), now=NOW
            )
        # Then the registry's verdict reads exactly as the command's
        assert [str(p) for p in refused.value.problems] == [by_task[logical_id(index)]], item.name


# --- Problems that spoil the whole template ----------------------------------------------------

TASK = "Schedule: rate(5 minutes)\nFunction: !GetAtt ReportFunction.Arn\n"


def validate_text(tmp_path: Path, text: str) -> tuple[int, list[str]]:
    template = tmp_path / "template.yaml"
    template.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(template)])
    return result.exit_code, result.output.splitlines()


def with_task(properties: str) -> str:
    return (
        STACK
        + "\n  BadTask:\n    Type: Custom::ScheduledTask\n    Properties:\n"
        + "      ServiceToken: !GetAtt RegistryFunction.Arn\n"
        + textwrap.indent(properties, " " * 6)
    )


def alias_bomb() -> str:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    return TASK + "Payload:\n" + textwrap.indent("\n".join(levels), "  ") + "\n"


WHOLE_TEMPLATE_CASES = {
    "YAML nested 3,000 deep": (
        with_task(TASK + "Payload: " + "[" * 3000 + "]" * 3000 + "\n"),
        "template.yaml: line ",
        ["nested deeper than 100 levels"],
    ),
    "YAML mappings nested 3,000 deep": (
        with_task(TASK + "Payload: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n"),
        "template.yaml: line ",
        ["nested deeper than 100 levels"],
    ),
    "an alias to a value that contains it": (
        with_task(TASK + "Payload: &loop {again: *loop}\n"),
        "template.yaml: line ",
        ["an alias refers to a value that contains it"],
    ),
    "aliases that expand to a billion values": (
        with_task(alias_bomb()),
        "template.yaml: ",
        ["its aliases expand it to more than 1,000,000 values"],
    ),
    "aliases that nest deeper than the limit": (
        with_task(
            TASK
            + "Payload:\n  a: &d1 "
            + "[" * 60
            + "x"
            + "]" * 60
            + "\n  b: &d2 "
            + "[" * 50
            + "*d1"
            + "]" * 50
            + "\n"
        ),
        "template.yaml: ",
        ["its aliases nest it deeper than 100 levels"],
    ),
    "a duplicate key": (
        with_task(TASK + "Schedule: rate(1 hour)\n"),
        "BadTask.Schedule: ",
        ["duplicate key 'Schedule'", "keep only the last one"],
    ),
    "a YAML syntax error": (
        with_task(TASK + "Payload: [unclosed\n"),
        "template.yaml: line ",
        ["column"],
    ),
    "a tab for indentation": (
        with_task(TASK + "Retry:\n\tMaxAttempts: 2\n"),
        "template.yaml: line ",
        [],
    ),
}


@pytest.mark.parametrize(
    ("text", "prefix", "words"), WHOLE_TEMPLATE_CASES.values(), ids=WHOLE_TEMPLATE_CASES
)
def test_a_template_wide_problem_is_one_line_not_a_crash(
    tmp_path: Path, text: str, prefix: str, words: list[str]
) -> None:
    # When
    code, lines = validate_text(tmp_path, text)

    # Then a rejection (never an internal error), with the line naming where and why
    assert code == 1, lines[-3:]
    assert len(lines) == 1, lines
    assert lines[0].startswith(prefix), lines[0][:300]
    for word in words:
        assert word in lines[0], lines[0][:300]


def test_duplicate_task_ids_are_named_on_both_tasks(tmp_path: Path) -> None:
    text = with_task(TASK + "Name: nightly\n") + (
        "\n  OtherTask:\n    Type: Custom::ScheduledTask\n    Properties:\n"
        "      ServiceToken: !GetAtt RegistryFunction.Arn\n"
        + textwrap.indent(TASK + "Name: Nightly\n", " " * 6)
    )

    code, lines = validate_text(tmp_path, text)

    assert code == 1
    assert any(line.startswith("BadTask.Name:") and "OtherTask" in line for line in lines)
    assert any(line.startswith("OtherTask.Name:") and "BadTask" in line for line in lines)


def test_a_generic_custom_resource_of_another_service_is_not_a_task(tmp_path: Path) -> None:
    # Given a generic custom resource whose ServiceToken is some other function
    text = STACK + (
        "\n  Unrelated:\n    Type: AWS::CloudFormation::CustomResource\n    Properties:\n"
        "      ServiceToken: !GetAtt ReportFunction.Arn\n      Schedule: not a schedule\n"
    )

    # When
    code, lines = validate_text(tmp_path, text)

    # Then it is none of validate's business
    assert (code, lines) == (0, [f"{tmp_path / 'template.yaml'}: 0 scheduled task(s), all valid."])


def test_a_crash_inside_validate_is_an_internal_error_not_a_rejection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a fault inside the checks themselves (here, a bug standing in for any)
    def broken(template: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("cronfleet_tools.cli.schedules.validate_template", broken)
    template = tmp_path / "template.yaml"
    template.write_text(STACK, encoding="utf-8")

    # When
    result = CliRunner().invoke(app, ["validate", str(template)])

    # Then its own exit status, and words that say it is no verdict on the template
    assert result.exit_code == EXIT_INTERNAL_ERROR == 3
    assert "Internal error in cronfleet validate (RuntimeError)" in result.output
    assert "not a verdict on the input" in result.output
