"""The grammar of cron fields, for Unix 5-field cron and AWS ``cron(...)``.

Parsing turns an expression into a :class:`CronSpec`: plain sets of allowed values plus the
few day rules that sets cannot express (``L``, ``W``, ``#``). Every rejection says which field
is wrong and why, because these messages end up in a failed ``sam deploy``.

``H`` (Jenkins' "hash") stands for a value picked from a hash of the task id, so that a fleet
written ``H * * * *`` spreads over the hour instead of all firing at :00. It is resolved here, at
parse time, into the plain values it stands for: everything after parsing (DST, the day rules)
sees an ordinary expression, the one :func:`resolved_field` writes out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from cronfleet.schedule.errors import MissingHashKey, ScheduleError, quoted


class Dialect(Enum):
    UNIX = "unix"
    AWS = "aws"


MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_WEEKDAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# Unix counts SUN=0 (and accepts 7 for Sunday too); AWS counts SUN=1 .. SAT=7.
UNIX_WEEKDAY_NAMES = {name: number for number, name in enumerate(_WEEKDAY_NAMES)}
AWS_WEEKDAY_NAMES = {name: number for number, name in enumerate(_WEEKDAY_NAMES, 1)}


@dataclass(frozen=True)
class DaysOfMonth:
    values: frozenset[int] = frozenset()
    last_day: bool = False  # L
    last_weekday: bool = False  # LW
    nearest_weekday: frozenset[int] = frozenset()  # nW
    is_star: bool = False  # '*', '*/n' or '?': Vixie's DOM_STAR


@dataclass(frozen=True)
class DaysOfWeek:
    """Weekdays counted Monday=0 .. Sunday=6, as ``date.weekday()`` does."""

    values: frozenset[int] = frozenset()
    nth: frozenset[tuple[int, int]] = frozenset()  # (weekday, n): the nth such day, 'd#n'
    last: frozenset[int] = frozenset()  # the last such weekday of the month, 'dL'
    is_star: bool = False


@dataclass(frozen=True)
class CronSpec:
    """A parsed cron expression, independent of its dialect."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: DaysOfMonth
    months: tuple[int, ...]
    days_of_week: DaysOfWeek
    years: tuple[int, ...] | None = None
    # Vixie cron treats a job as "wildcard" when its minute or hour field starts with '*'.
    # Wildcard jobs follow elapsed time across DST changes; fixed-time jobs run once.
    fixed_time: bool = True
    # Vixie's rule: when both day fields are restricted, a day matches if either matches.
    days_match_either: bool = False
    # The fields as written, each H replaced by the values it resolved to.
    fields_text: tuple[str, ...] = field(default=())
    # (field name, resolved text) of each field that holds an H, in field order.
    hashed: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class _FieldRange:
    name: str
    low: int
    high: int
    names: Mapping[str, int]
    wraps: bool = False  # AWS accepts ranges such as 22-2 that wrap past the maximum
    # What a bare H or H/n picks from, when that is not the whole field; None for no H at all.
    hash_range: tuple[int, int] | None = None
    hashable: bool = True


MINUTE = _FieldRange("minute", 0, 59, {})
HOUR = _FieldRange("hour", 0, 23, {})
# Days 1-28, as Jenkins: a day that exists in every month, so that no task id draws a 30th that
# February never has.
DAY_OF_MONTH = _FieldRange("day-of-month", 1, 31, {}, hash_range=(1, 28))
MONTH = _FieldRange("month", 1, 12, MONTH_NAMES)
# 0-6, as Jenkins: 7 is Sunday again, and would give Sunday twice the share of any other day.
UNIX_DAY_OF_WEEK = _FieldRange("day-of-week", 0, 7, UNIX_WEEKDAY_NAMES, hash_range=(0, 6))
AWS_DAY_OF_WEEK = _FieldRange("day-of-week", 1, 7, AWS_WEEKDAY_NAMES)
# A hashed year could be one already over: the deploy would refuse some task ids and not others.
YEAR = _FieldRange("year", 1970, 2199, {}, hashable=False)

# Matched with fullmatch, and digits spelt [0-9]: in Python regexes '$' also matches before a
# trailing newline, and '\d' matches any Unicode digit (U+0665, an Arabic-Indic five).
_NTH_WEEKDAY = re.compile(r"(?P<day>[A-Za-z]+|[0-9]+)#(?P<n>[0-9]+)")
_LAST_WEEKDAY = re.compile(r"(?P<day>[A-Za-z]+|[0-9]+)L", re.IGNORECASE)
_NEAREST_WEEKDAY = re.compile(r"(?P<day>[0-9]+)W", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]+")
_HASHED_ITEM = re.compile(r"[Hh](?:\((?P<range>[^()]*)\))?(?:/(?P<step>[^/]*))?")
_HASH_FORMS = "write H, H/n, H(a-b) or H(a-b)/n"
# Beyond every limit of the engine; digit strings longer than this stand for it, so int() never
# meets Python's limit on the length of a number (5,000 digits must be "out of range", not a
# crash).
BEYOND_ANY_LIMIT = 10**18


def ascii_number(text: str) -> int | None:
    """The value of a plain ASCII decimal number, or None.

    ``str.isdigit`` and ``int`` accept any Unicode digit (U+0665, an Arabic-Indic five, reads
    as 5; U+00B9, a superscript one, passes isdigit and then fails int), which no cron dialect
    does. Numbers of more than 18 digits come back as BEYOND_ANY_LIMIT.
    """
    if not _DIGITS.fullmatch(text):
        return None
    significant = text.lstrip("0") or "0"
    return int(significant) if len(significant) <= 18 else BEYOND_ANY_LIMIT


def _fail(spec: _FieldRange, text: str, reason: str) -> ScheduleError:
    return ScheduleError(f"{spec.name} field {quoted(text)}: {reason}")


def _value(spec: _FieldRange, token: str, text: str) -> int:
    number = ascii_number(token)
    if number is None:
        if token.upper() == "H":
            raise _fail(spec, text, f"H begins an item of its own; {_HASH_FORMS}")
        if token.upper() in spec.names:
            return spec.names[token.upper()]
        if spec.names:
            names = ", ".join(spec.names)
            raise _fail(spec, text, f"'{token}' is not a number or one of {names}")
        raise _fail(spec, text, f"'{token}' is not a number")
    if not spec.low <= number <= spec.high:
        raise _fail(
            spec, text, f"{quoted(token, quote=False)} is out of range {spec.low}-{spec.high}"
        )
    return number


def _range_values(spec: _FieldRange, start: int, end: int, step: int, text: str) -> list[int]:
    if start <= end:
        return list(range(start, end + 1, step))
    if not spec.wraps:
        raise _fail(spec, text, f"range {start}-{end} runs backwards; write it low-high")
    wrapped = list(range(start, spec.high + 1)) + list(range(spec.low, end + 1))
    return wrapped[::step]


def hash_draw(hash_key: str, field_name: str) -> int:
    """The number H resolves from in one field of one task: the first 8 bytes, big-endian, of
    the SHA-256 of ``<task id>:<field name>`` in UTF-8 (``nightly-backup:minute``).

    Not Python's ``hash()``, which differs from one process to the next; and one draw per field,
    so that adding an H to the hour leaves the minute a task already had.
    """
    digest = hashlib.sha256(f"{hash_key}:{field_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _is_hashed(item: str) -> bool:
    return item[:1] in ("H", "h")


def _hashed_values(
    spec: _FieldRange, item: str, text: str, *, allow_step: bool, hash_key: str | None
) -> list[int]:
    """``H`` (one value of the field's hash range), ``H/n`` (every n-th value from a hashed
    offset below n), ``H(a-b)`` and ``H(a-b)/n`` (the same within a-b)."""
    if not spec.hashable:
        raise _fail(spec, text, "H is not allowed in this field: a hashed year could be over")
    match = _HASHED_ITEM.fullmatch(item)
    if match is None:
        raise _fail(spec, text, f"{quoted(item)} is no H form; {_HASH_FORMS}")
    range_text, step_text = match["range"], match["step"]
    if range_text is None:
        low, high = spec.hash_range or (spec.low, spec.high)
        candidates = list(range(low, high + 1))
    else:
        start_text, dash, end_text = range_text.partition("-")
        if not (start_text and dash and end_text):
            raise _fail(spec, text, "H(...) takes a range a-b, such as H(0-29)")
        start, end = _value(spec, start_text, text), _value(spec, end_text, text)
        candidates = _range_values(spec, start, end, 1, text)
    step = 1
    if step_text is not None:
        if not allow_step:
            raise _fail(spec, text, "'/' increments are not allowed in this field")
        number = ascii_number(step_text)
        if number is None or number == 0:
            raise _fail(spec, text, f"increment '{step_text}' must be a whole number of 1 or more")
        if number > len(candidates):
            raise _fail(
                spec,
                text,
                f"increment {number} is more than the {len(candidates)} values H picks from "
                f"({candidates[0]}-{candidates[-1]})",
            )
        step = number
    if hash_key is None:
        raise MissingHashKey(
            f"{spec.name} field {quoted(text)}: H is a value hashed from the task id, and no "
            "task id was given"
        )
    draw = hash_draw(hash_key, spec.name)
    if step_text is None:
        return [candidates[draw % len(candidates)]]
    return candidates[draw % step :: step]


def _hashed_text(values: list[int]) -> str:
    """Resolved values as cron writes them: ``37``, ``7,22,37,52`` or ``3-57/6``."""
    steps = {later - earlier for earlier, later in itertools.pairwise(values)}
    if len(values) > 4 and len(steps) == 1 and min(steps) > 0:
        return f"{values[0]}-{values[-1]}/{steps.pop()}"
    return ",".join(map(str, values))


def resolved_field(
    spec: _FieldRange, text: str, *, allow_step: bool = True, hash_key: str | None
) -> str:
    """``text`` with each H item written as the values it resolves to (a valid field already)."""
    return ",".join(
        _hashed_text(_hashed_values(spec, item, text, allow_step=allow_step, hash_key=hash_key))
        if _is_hashed(item)
        else item
        for item in text.split(",")
    )


def _item_values(
    spec: _FieldRange, item: str, text: str, *, allow_step: bool, hash_key: str | None
) -> list[int]:
    if _is_hashed(item):
        return _hashed_values(spec, item, text, allow_step=allow_step, hash_key=hash_key)
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not allow_step:
            raise _fail(spec, text, "'/' increments are not allowed in this field")
        number = ascii_number(step_text)
        if number is None or number == 0:
            raise _fail(spec, text, f"increment '{step_text}' must be a whole number of 1 or more")
        step = number
    if base == "*":
        return list(range(spec.low, spec.high + 1, step))
    start_text, dash, end_text = base.partition("-")
    if not start_text:
        raise _fail(spec, text, f"'{item}' has no value before '-'")
    start = _value(spec, start_text, text)
    if dash:
        if not end_text:
            raise _fail(spec, text, f"range '{base}' has no end")
        return _range_values(spec, start, _value(spec, end_text, text), step, text)
    # AWS and Quartz read 'a/n' as "from a, every n"; Vixie cron rejects it, croniter accepts it.
    return list(range(start, spec.high + 1, step)) if slash else [start]


def _items(spec: _FieldRange, text: str) -> list[str]:
    if not text:
        raise _fail(spec, text, "is empty")
    items = text.split(",")
    if any(not item for item in items):
        raise _fail(spec, text, "has an empty list item")
    return items


def parse_values(
    spec: _FieldRange, text: str, *, allow_step: bool = True, hash_key: str | None = None
) -> tuple[int, ...]:
    """Parse a plain numeric field (minute, hour, month, year) into its sorted values."""
    values: set[int] = set()
    for item in _items(spec, text):
        values.update(_item_values(spec, item, text, allow_step=allow_step, hash_key=hash_key))
    return tuple(sorted(values))


def parse_days_of_month(text: str, dialect: Dialect, *, hash_key: str | None = None) -> DaysOfMonth:
    spec = _with_wrap(DAY_OF_MONTH, dialect)
    if text == "?":
        return DaysOfMonth(values=frozenset(range(1, 32)), is_star=True)
    values: set[int] = set()
    last_day = last_weekday = False
    nearest: set[int] = set()
    for item in _items(spec, text):
        upper = item.upper()
        if upper == "L":
            last_day = True
        elif upper == "LW":
            last_weekday = True
        elif match := _NEAREST_WEEKDAY.fullmatch(item):
            nearest.add(_value(spec, match["day"], text))
        elif "?" in item:
            raise _fail(spec, text, "'?' must stand alone in the field")
        elif "#" in item or upper.endswith("L"):
            raise _fail(spec, text, f"'{item}' belongs in the day-of-week field")
        else:
            values.update(_item_values(spec, item, text, allow_step=True, hash_key=hash_key))
    return DaysOfMonth(
        values=frozenset(values),
        last_day=last_day,
        last_weekday=last_weekday,
        nearest_weekday=frozenset(nearest),
        is_star=text.startswith("*"),
    )


def _day_of_week_spec(dialect: Dialect) -> _FieldRange:
    return _with_wrap(AWS_DAY_OF_WEEK if dialect is Dialect.AWS else UNIX_DAY_OF_WEEK, dialect)


def parse_days_of_week(text: str, dialect: Dialect, *, hash_key: str | None = None) -> DaysOfWeek:
    spec = _day_of_week_spec(dialect)
    if text == "?":
        return DaysOfWeek(values=frozenset(range(7)), is_star=True)
    values: set[int] = set()
    nth: set[tuple[int, int]] = set()
    last: set[int] = set()
    for item in _items(spec, text):
        if item.upper() == "L":
            if dialect is Dialect.UNIX:
                raise _fail(spec, text, "'L' alone is AWS syntax for Saturday; write 6 or SAT")
            values.add(_to_weekday(7, dialect))  # AWS: the last day of the week, Saturday
        elif match := _NTH_WEEKDAY.fullmatch(item):
            n = ascii_number(match["n"])
            if n is None or not 1 <= n <= 5:
                raise _fail(spec, text, f"{quoted('#' + match['n'])} must be between #1 and #5")
            nth.add((_to_weekday(_value(spec, match["day"], text), dialect), n))
        elif match := _LAST_WEEKDAY.fullmatch(item):
            last.add(_to_weekday(_value(spec, match["day"], text), dialect))
        elif "?" in item:
            raise _fail(spec, text, "'?' must stand alone in the field")
        elif item.upper().endswith("W"):
            raise _fail(spec, text, f"'{item}': 'W' belongs in the day-of-month field")
        else:
            allow_step = dialect is Dialect.UNIX  # AWS documents no '/' for day-of-week
            numbers = _item_values(spec, item, text, allow_step=allow_step, hash_key=hash_key)
            for number in numbers:
                values.add(_to_weekday(number, dialect))
    return DaysOfWeek(
        values=frozenset(values),
        nth=frozenset(nth),
        last=frozenset(last),
        is_star=text.startswith("*"),
    )


def _to_weekday(number: int, dialect: Dialect) -> int:
    """Convert a cron day-of-week number to ``date.weekday()`` (Monday=0 .. Sunday=6)."""
    sunday_zero = number - 1 if dialect is Dialect.AWS else number % 7
    return (sunday_zero - 1) % 7


def _with_wrap(spec: _FieldRange, dialect: Dialect) -> _FieldRange:
    if dialect is not Dialect.AWS:
        return spec
    return dataclasses.replace(spec, wraps=True)


def _resolved(
    specs: tuple[_FieldRange, ...], parts: list[str], hash_key: str | None, dialect: Dialect
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The fields with every H resolved, and which fields held one (all already parsed)."""
    fields_text = list(parts)
    hashed = []
    for index, (spec, text) in enumerate(zip(specs, parts, strict=True)):
        if any(_is_hashed(item) for item in text.split(",")):
            allow_step = not (spec.name == "day-of-week" and dialect is Dialect.AWS)
            fields_text[index] = resolved_field(
                spec, text, allow_step=allow_step, hash_key=hash_key
            )
            hashed.append((spec.name, fields_text[index]))
    return tuple(fields_text), tuple(hashed)


_UNIX_FIELDS = "minute hour day-of-month month day-of-week"
_AWS_FIELDS = "minute hour day-of-month month day-of-week year"

_NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def parse_unix_cron(expression: str, *, hash_key: str | None = None) -> CronSpec:
    text = _NICKNAMES.get(expression.strip().lower(), expression)
    if text.strip().startswith("@"):
        nicknames = ", ".join(_NICKNAMES)
        raise ScheduleError(f"'{expression.strip()}' is not supported; use one of {nicknames}")
    parts = text.split()
    if len(parts) != 5:
        hint = ""
        if len(parts) == 6:
            hint = (
                "; a seconds field is not supported (resolution is one minute), and AWS syntax"
                " with a year field is written cron(minute hour day-of-month month"
                " day-of-week year)"
            )
        raise ScheduleError(
            f"a cron expression has 5 fields ({_UNIX_FIELDS}), got {len(parts)}{hint}"
        )
    minute, hour, dom, month, dow = parts
    # The day fields first: their errors have always been reported before the others'.
    days_of_month = parse_days_of_month(dom, Dialect.UNIX, hash_key=hash_key)
    days_of_week = parse_days_of_week(dow, Dialect.UNIX, hash_key=hash_key)
    minutes = parse_values(MINUTE, minute, hash_key=hash_key)
    hours = parse_values(HOUR, hour, hash_key=hash_key)
    months = parse_values(MONTH, month, hash_key=hash_key)
    specs = (MINUTE, HOUR, DAY_OF_MONTH, MONTH, UNIX_DAY_OF_WEEK)
    fields_text, hashed = _resolved(specs, parts, hash_key, Dialect.UNIX)
    return CronSpec(
        minutes=minutes,
        hours=hours,
        days_of_month=days_of_month,
        months=months,
        days_of_week=days_of_week,
        # An H field is what it resolves to, plain values: never a wildcard, never a '*'.
        fixed_time=not (minute.startswith("*") or hour.startswith("*")),
        days_match_either=not (days_of_month.is_star or days_of_week.is_star),
        fields_text=fields_text,
        hashed=hashed,
    )


def parse_aws_cron(fields_text: str, *, hash_key: str | None = None) -> CronSpec:
    parts = fields_text.split()
    if len(parts) != 6:
        raise ScheduleError(
            f"cron(...) has 6 fields ({_AWS_FIELDS}), got {len(parts)}"
            + (
                "; a seconds field is not supported (resolution is one minute)"
                if len(parts) == 7
                else ""
            )
        )
    minute, hour, dom, month, dow, year = parts
    if dom == "?" and dow == "?":
        raise ScheduleError("day-of-month and day-of-week cannot both be '?'; use '*' in one")
    if dom != "?" and dow != "?":
        both = "'*' in both day fields" if dom == dow == "*" else "both day fields set"
        raise ScheduleError(
            f"day-of-month '{dom}' and day-of-week '{dow}': {both}; AWS cron needs '?' in"
            " one of them"
        )
    aws_minute, aws_hour, aws_dom, aws_month = (
        _with_wrap(s, Dialect.AWS) for s in (MINUTE, HOUR, DAY_OF_MONTH, MONTH)
    )
    minutes = parse_values(aws_minute, minute, hash_key=hash_key)
    hours = parse_values(aws_hour, hour, hash_key=hash_key)
    days_of_month = parse_days_of_month(dom, Dialect.AWS, hash_key=hash_key)
    months = parse_values(aws_month, month, hash_key=hash_key)
    days_of_week = parse_days_of_week(dow, Dialect.AWS, hash_key=hash_key)
    years = None if year == "*" else parse_values(YEAR, year, hash_key=hash_key)
    specs = (aws_minute, aws_hour, aws_dom, aws_month, _day_of_week_spec(Dialect.AWS), YEAR)
    resolved, hashed = _resolved(specs, parts, hash_key, Dialect.AWS)
    return CronSpec(
        minutes=minutes,
        hours=hours,
        days_of_month=days_of_month,
        months=months,
        days_of_week=days_of_week,
        years=years,
        fixed_time=not (minute.startswith("*") or hour.startswith("*")),
        # One day field is always '?', so the other one alone decides.
        days_match_either=False,
        fields_text=resolved,
        hashed=hashed,
    )
