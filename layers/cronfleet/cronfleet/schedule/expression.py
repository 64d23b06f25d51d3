"""Parsing schedule expressions and answering "when does this run?".

Four syntaxes are accepted, all at one-minute resolution:

- Unix 5-field cron, ``0 9 * * 1-5`` (as in crontab files and vercel.json);
- AWS ``cron(minute hour day-of-month month day-of-week year)``, day-of-week 1-7 = SUN-SAT;
- ``rate(N minutes|hours|days)``, an elapsed-time interval;
- ``at(yyyy-mm-ddThh:mm:ss)``, one run at a local time.

Cron fields may hold ``H``, a value hashed from the task id (``hash_key``): see
:mod:`cronfleet.schedule.fields`.

Every run time is an aware UTC ``datetime`` on a whole minute.
"""

from __future__ import annotations

import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronfleet.schedule import timeline
from cronfleet.schedule.calendar import SEARCH_HORIZON_YEARS, WallCalendar
from cronfleet.schedule.errors import ScheduleError, quoted
from cronfleet.schedule.fields import CronSpec, ascii_number, parse_aws_cron, parse_unix_cron

# All matched with fullmatch: in Python regexes '$' also matches before a trailing newline.
_RATE = re.compile(r"rate\(\s*(?P<value>[^\s)]+)\s+(?P<unit>[A-Za-z]+)\s*\)")
_AT = re.compile(r"at\((?P<when>[^)]*)\)")
_AT_FORMAT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
# Could the expression hold an H item? An H that no letter touches: 'THU', 'hours' and '@hourly'
# do not count, so an expression without H is cached once, whatever the task.
_MAY_HASH = re.compile(r"(?<![A-Za-z])H(?![A-Za-z])", re.IGNORECASE)
_WRAPPED = re.compile(r"(?P<kind>[A-Za-z]+)\((?P<body>.*)\)", re.DOTALL)
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_SUB_MINUTE_UNITS = {"second", "seconds", "millisecond", "milliseconds"}
# EventBridge Scheduler's limit for a schedule expression.
MAX_EXPRESSION_LENGTH = 256
# The longest rate: one that runs at least once within the horizon a cron expression must match
# in. Longer ones would run beyond the engine's last year, or overflow a datetime.
MAX_RATE = timedelta(days=SEARCH_HORIZON_YEARS * 365)
# The engine answers from 1970 to the end of 2199, AWS cron's years, in every zone (UTC+14 starts
# 1970 on the last day of 1969, UTC-12 ends 2199 on the first day of 2200): no schedule has runs
# outside them, so no date arithmetic leaves datetime's range.
END_OF_TIME = datetime(2200, 1, 2, tzinfo=UTC)
START_OF_TIME = datetime(1969, 12, 31, tzinfo=UTC)
# Files of the system's zoneinfo directory that ZoneInfo loads but that are no IANA zone: the
# machine's own setting (localtime), tzcode's internal default (posixrules), a zone meaning
# "not configured" (Factory), and the copies of the database under posix/ and right/ (right/
# counts leap seconds, which shifts every run by about half a minute).
_NOT_IANA_ZONES = frozenset({"localtime", "posixrules", "Factory"})
_NOT_IANA_DIRECTORIES = frozenset({"posix", "right"})
# IANA names: ASCII letters, digits, '_', '-' and '+', in '/'-separated parts that each start
# with a letter. A name that is a path ('/etc/localtime', 'Europe/../UTC') is no zone name.
_IANA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z][A-Za-z0-9_+-]*)*")
_IANA_EXAMPLE = "use an IANA name such as 'Europe/London'"


def load_timezone(name: str) -> ZoneInfo:
    """Resolve an IANA timezone name, with a clear error for anything else."""
    if not isinstance(name, str) or not name.strip():
        raise ScheduleError(f"timezone is empty; {_IANA_EXAMPLE}")
    shown = quoted(name)
    if name in _NOT_IANA_ZONES or name.split("/", 1)[0] in _NOT_IANA_DIRECTORIES:
        raise ScheduleError(
            f"timezone {shown} is no IANA zone, only a file some systems keep with their zone "
            f"data; {_IANA_EXAMPLE}"
        )
    if not _IANA_NAME.fullmatch(name):
        raise ScheduleError(f"unknown timezone {shown}: {_IANA_EXAMPLE}{_suggestion(name)}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ScheduleError(
            f"unknown timezone {shown}: {_IANA_EXAMPLE}{_suggestion(name)}"
        ) from exc


# Zones the tz database keeps for old POSIX systems: fixed offsets that never change for daylight
# saving time, though their names read like the local time of places that do.
_FIXED_OFFSET_ZONES = {
    "EST": ("UTC-05:00", "America/New_York"),
    "MST": ("UTC-07:00", "America/Denver"),
}


def timezone_caveat(name: str) -> str | None:
    """Why a valid zone is seldom the one meant, or None: ``EST`` stays on UTC-05:00 all year,
    so a 09:00 job runs at 10:00 New York time all summer."""
    fixed = _FIXED_OFFSET_ZONES.get(name)
    if fixed is None:
        return None
    offset, meant = fixed
    return (
        f"timezone '{name}' is a fixed {offset} offset that never changes for daylight saving "
        f"time; for the local time of {meant.split('/')[-1].replace('_', ' ')}, which does, use "
        f"'{meant}'"
    )


def _suggestion(name: str) -> str:
    import difflib  # only on the error path

    if len(name) > 64:  # no zone name is that long; difflib on it would only be slow
        return ""
    candidates = available_timezones() - _NOT_IANA_ZONES
    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def _check_characters(expression: str) -> None:
    """Refuse anything but printable ASCII, spaces and tabs, naming the first offender.

    Python's number parsing reads Unicode digits (U+0665, an Arabic-Indic five, as 5; U+00B9,
    a superscript one, passes isdigit() and then fails int()), and its whitespace splitting
    takes no-break and ideographic spaces. No cron dialect does either.
    """
    for position, char in enumerate(expression, 1):
        if char == "\t" or " " <= char <= "~":
            continue
        code = f"U+{ord(char):04X}"
        if ord(char) < 0x20 or ord(char) == 0x7F:
            kind = "is a control character; a schedule is one line of text"
        elif char.isdigit() or unicodedata.category(char) == "Nd":
            kind = "is not an ASCII digit; write numbers with 0-9"
        elif char.isspace():
            kind = "is not an ASCII space; separate fields with spaces or tabs"
        else:
            kind = "is not ASCII; schedules are written in ASCII"
        raise ScheduleError(f"{char!r} ({code}) at position {position} {kind}")


class Schedule(ABC):
    """A parsed schedule in one timezone."""

    kind: str

    def __init__(self, expression: str, zone: ZoneInfo) -> None:
        self.expression = expression
        self.timezone = zone

    def next_run(self, after: datetime) -> datetime | None:
        """The first run strictly after ``after`` (aware), or None if there is none."""
        after = max(_require_aware(after), START_OF_TIME)
        if after >= END_OF_TIME:
            return None
        run = self._next_after(after)
        return run if run is not None and run < END_OF_TIME else None

    @abstractmethod
    def _next_after(self, after: datetime) -> datetime | None:
        """``next_run`` for an ``after`` within the engine's years."""

    @property
    def is_one_time(self) -> bool:
        return False

    @property
    def resolved_expression(self) -> str:
        """The expression with every ``H`` written as the values it resolved to."""
        return self.expression

    @property
    def hashed_fields(self) -> tuple[tuple[str, str], ...]:
        """(field name, resolved text) of each field that holds an ``H``."""
        return ()

    def iter_runs(self, after: datetime) -> Iterator[datetime]:
        current = self.next_run(_require_aware(after))
        while current is not None:
            yield current
            current = self.next_run(current)

    def next_runs(self, after: datetime, count: int) -> list[datetime]:
        """The next ``count`` runs strictly after ``after`` (fewer if the schedule ends)."""
        runs: list[datetime] = []
        for run in self.iter_runs(after):
            if len(runs) == count:
                break
            runs.append(run)
        return runs

    def runs_between(
        self, start: datetime, end: datetime, limit: int | None = None
    ) -> list[datetime]:
        """Every run in the interval ``(start, end]``, at most ``limit`` of them."""
        end = _require_aware(end)
        runs: list[datetime] = []
        for run in self.iter_runs(start):
            if run > end or (limit is not None and len(runs) == limit):
                break
            runs.append(run)
        return runs

    @abstractmethod
    def describe(self) -> str:
        """The schedule in words, e.g. ``At 09:00, Monday through Friday (Europe/London)``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expression!r}, {self.timezone.key!r})"


class CronSchedule(Schedule):
    kind = "cron"

    def __init__(self, expression: str, zone: ZoneInfo, spec: CronSpec, *, aws: bool) -> None:
        super().__init__(expression, zone)
        self.spec = spec
        self.is_aws = aws
        self.kind = "aws-cron" if aws else "cron"
        self._calendar = _wall_calendar(spec)

    def _next_after(self, after: datetime) -> datetime | None:
        return timeline.next_instant(
            self.timezone,
            after,
            self._calendar.next_after,
            fixed_time=self.spec.fixed_time,
        )

    def matches_wall_time(self, wall: datetime) -> bool:
        return self._calendar.matches(wall)

    @property
    def resolved_expression(self) -> str:
        if not self.spec.hashed:
            return self.expression
        fields = " ".join(self.spec.fields_text)
        return f"cron({fields})" if self.is_aws else fields

    @property
    def hashed_fields(self) -> tuple[tuple[str, str], ...]:
        return self.spec.hashed

    def describe(self) -> str:
        from cronfleet.schedule.describe import describe_cron, describe_hashed

        words = describe_cron(self.spec.fields_text, aws=self.is_aws, written=self.expression)
        if self.spec.hashed:
            words += f", {describe_hashed(self.spec.hashed)}"
        return f"{words} ({self.timezone.key})"


class RateSchedule(Schedule):
    """Every N minutes, hours or days of elapsed time.

    Slots are aligned to whole multiples of the interval since the Unix epoch, in UTC, so that
    every dispatcher computes the same slots without any stored anchor. Timezones and DST do
    not affect a rate: it measures elapsed time.
    """

    kind = "rate"

    def __init__(self, expression: str, zone: ZoneInfo, interval: timedelta) -> None:
        super().__init__(expression, zone)
        self.interval = interval

    def _next_after(self, after: datetime) -> datetime | None:
        seconds = int(self.interval.total_seconds())
        timestamp = int(after.timestamp() // seconds) * seconds + seconds
        return datetime.fromtimestamp(timestamp, UTC)

    def describe(self) -> str:
        from cronfleet.schedule.describe import describe_interval

        return describe_interval(int(self.interval.total_seconds()))


class AtSchedule(Schedule):
    """One run at a local wall-clock time.

    A time in a spring-forward gap runs at the first instant after the gap; a time in a
    repeated fall-back hour runs at its first occurrence: the fixed-time rules of cron.
    """

    kind = "at"

    def __init__(self, expression: str, zone: ZoneInfo, wall: datetime) -> None:
        super().__init__(expression, zone)
        self.wall = wall

    @property
    def is_one_time(self) -> bool:
        return True

    @cached_property
    def run_at(self) -> datetime:
        # From the engine's first instant: at(1970-01-01T00:00:00) east of UTC is still 1969.
        run = timeline.next_instant(self.timezone, START_OF_TIME, self._next_wall, fixed_time=True)
        assert run is not None  # years are 1970-2199, all after START_OF_TIME
        return run

    def _next_wall(self, wall: datetime) -> datetime | None:
        return self.wall if self.wall > wall else None

    def _next_after(self, after: datetime) -> datetime | None:
        return self.run_at if self.run_at > after else None

    def describe(self) -> str:
        return f"Once, at {self.wall:%Y-%m-%d %H:%M} ({self.timezone.key})"


def _require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no timezone; pass an aware datetime")
    return moment


def parse_schedule(
    expression: str, timezone: str | ZoneInfo = "UTC", *, hash_key: str | None = None
) -> Schedule:
    """Parse any supported expression. Raises :class:`ScheduleError` with a clear reason.

    ``hash_key`` is the task id that ``H`` in a cron field is hashed from; an expression with
    ``H`` and no ``hash_key`` raises :class:`~cronfleet.schedule.errors.MissingHashKey`.

    Schedules are immutable, so parses are cached: a dispatcher sees the same few expressions
    on every tick. The task id is part of the cache key only when the expression may hold an H.
    """
    if hash_key is not None and (
        not isinstance(expression, str) or not _MAY_HASH.search(expression)
    ):
        hash_key = None
    zone_name = timezone.key if isinstance(timezone, ZoneInfo) else timezone
    return _parse_cached(expression, zone_name, hash_key)


@lru_cache(maxsize=4096)
def _parse_cached(expression: str, timezone: str, hash_key: str | None) -> Schedule:
    return _parse(expression, load_timezone(timezone), hash_key)


def _parse(expression: str, zone: ZoneInfo, hash_key: str | None) -> Schedule:
    if not isinstance(expression, str) or not expression.strip():
        raise ScheduleError("schedule is empty")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ScheduleError(
            f"schedule is {len(expression)} characters long; at most {MAX_EXPRESSION_LENGTH}"
        )
    _check_characters(expression)
    text = expression.strip()
    wrapped = _WRAPPED.fullmatch(text)
    if wrapped is None:
        schedule: Schedule = _cron(text, zone, parse_unix_cron(text, hash_key=hash_key), aws=False)
    else:
        kind, body = wrapped["kind"].lower(), wrapped["body"].strip()
        if kind == "cron":
            schedule = _cron(text, zone, parse_aws_cron(body, hash_key=hash_key), aws=True)
        elif kind == "rate":
            schedule = RateSchedule(text, zone, _parse_rate(text))
        elif kind == "at":
            schedule = AtSchedule(text, zone, _parse_at(text))
        else:
            raise ScheduleError(
                f"'{wrapped['kind']}(...)' is not a schedule; use cron(...), rate(...), at(...)"
                " or a 5-field cron expression"
            )
    return schedule


@lru_cache(maxsize=4096)
def _wall_calendar(spec: CronSpec) -> WallCalendar:
    # Shared by every schedule of one spec: a fleet written 'H * * * *' is thousands of task ids
    # but at most 60 specs, and building a calendar (croniter's parse) is the costly part.
    return WallCalendar(spec)


@lru_cache(maxsize=4096)
def _runs_at_all(spec: CronSpec, zone: ZoneInfo, aws: bool) -> bool:
    # The search starts at a fixed instant so that validity does not depend on today's date.
    first_year = min(spec.years) if spec.years else 2000
    schedule = CronSchedule(" ".join(spec.fields_text), zone, spec, aws=aws)
    return schedule.next_run(datetime(first_year - 1, 12, 30, tzinfo=UTC)) is not None


def _cron(text: str, zone: ZoneInfo, spec: CronSpec, *, aws: bool) -> CronSchedule:
    schedule = CronSchedule(text, zone, spec, aws=aws)
    # An expression such as '0 0 30 2 *' parses but never runs: say so now, not never.
    if not _runs_at_all(spec, zone, aws):
        within = f"within {SEARCH_HORIZON_YEARS} years" if spec.years is None else "in its years"
        resolved = f" (resolved to '{schedule.resolved_expression}')" if spec.hashed else ""
        raise ScheduleError(f"'{text}'{resolved} matches no date {within}")
    return schedule


def _parse_rate(text: str) -> timedelta:
    match = _RATE.fullmatch(text)
    if match is None:
        raise ScheduleError(f"'{text}' is not a rate; write rate(N minutes|hours|days)")
    value_text, unit = match["value"], match["unit"].lower()
    if unit in _SUB_MINUTE_UNITS:
        raise ScheduleError(f"'{text}': resolution is one minute; use minutes, hours or days")
    singular = unit.removesuffix("s")
    if singular not in _RATE_UNITS:
        raise ScheduleError(f"'{text}': unit '{unit}' must be minutes, hours or days")
    count = ascii_number(value_text)
    if count is None or count < 1:
        raise ScheduleError(f"'{text}': '{value_text}' must be a whole number of 1 or more")
    seconds = _RATE_UNITS[singular]
    if count > MAX_RATE.total_seconds() // seconds:
        longest = int(MAX_RATE.total_seconds() // seconds)
        in_unit = f" ({longest} {singular}s)" if singular != "day" else ""
        raise ScheduleError(
            f"'{text}': the longest rate is {MAX_RATE.days} days{in_unit}, about "
            f"{SEARCH_HORIZON_YEARS} years"
        )
    return timedelta(seconds=count * seconds)


def _parse_at(text: str) -> datetime:
    match = _AT.fullmatch(text)
    when = match["when"].strip() if match else ""
    if not _AT_FORMAT.fullmatch(when):
        raise ScheduleError(f"'{text}' is not a one-time schedule; write at(yyyy-mm-ddThh:mm:ss)")
    try:
        wall = datetime.fromisoformat(when)
    except ValueError as exc:
        raise ScheduleError(f"'{text}': {exc}") from exc
    if wall.second:
        raise ScheduleError(f"'{text}': resolution is one minute; seconds must be 00")
    if not 1970 <= wall.year <= 2199:
        raise ScheduleError(f"'{text}': year {wall.year} is out of range 1970-2199")
    return wall
