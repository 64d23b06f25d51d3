"""Which local wall-clock minutes a cron expression matches, ignoring DST.

croniter steps through the times of day and the months. The day rules (``L``, ``LW``, ``W``,
``#``, the last weekday of a month, Vixie's either-day rule, the AWS year field) are decided
here, because croniter lacks several of them and because they are where cron dialects differ.
"""

from __future__ import annotations

import calendar as _calendar
import threading
from datetime import date, datetime, time, timedelta

from croniter import croniter

from cronfleet.schedule.fields import CronSpec

# How far ahead a search for the next matching day may go. A schedule that matches nothing in
# this long (say, the 5th Monday of February in years that have none) is rejected at parse time.
SEARCH_HORIZON_YEARS = 100
_ONE_SECOND = timedelta(seconds=1)


def _last_day(year: int, month: int) -> int:
    return _calendar.monthrange(year, month)[1]


def _nearest_weekday(year: int, month: int, day: int) -> int | None:
    """Quartz 'nW': the weekday nearest to ``day``, never leaving the month."""
    last = _last_day(year, month)
    if day > last:
        return None
    weekday = date(year, month, day).weekday()
    if weekday < 5:
        return day
    if weekday == 5:  # Saturday: the Friday before, unless that is in the previous month
        return day - 1 if day > 1 else day + 2
    return day + 1 if day < last else day - 2  # Sunday: the Monday after, unless past the end


def _last_weekday_of_month(year: int, month: int) -> int:
    last = _last_day(year, month)
    weekday = date(year, month, last).weekday()
    return last - max(0, weekday - 4)


class WallCalendar:
    """Finds matching wall-clock minutes (naive datetimes) of one cron expression."""

    def __init__(self, spec: CronSpec) -> None:
        self._spec = spec
        minutes = ",".join(map(str, spec.minutes))
        hours = ",".join(map(str, spec.hours))
        months = ",".join(map(str, spec.months))
        # croniter walks minutes, hours and months; every day is a candidate for the day rules.
        self._times = croniter(f"{minutes} {hours} * {months} *", datetime(2000, 1, 1))
        # Parsing an expression is croniter's expensive part, so one iterator is kept and
        # re-positioned; the lock makes that safe when schedules are shared across threads.
        self._times_lock = threading.Lock()
        self._months = frozenset(spec.months)
        self._years = frozenset(spec.years) if spec.years is not None else None

    def matches_day(self, day: date) -> bool:
        dom, dow = self._spec.days_of_month, self._spec.days_of_week
        in_month = (
            day.day in dom.values
            or (dom.last_day and day.day == _last_day(day.year, day.month))
            or (dom.last_weekday and day.day == _last_weekday_of_month(day.year, day.month))
            or any(_nearest_weekday(day.year, day.month, n) == day.day for n in dom.nearest_weekday)
        )
        weekday = day.weekday()
        in_week = (
            weekday in dow.values
            or any(weekday == d and (day.day - 1) // 7 + 1 == n for d, n in dow.nth)
            or (weekday in dow.last and day.day + 7 > _last_day(day.year, day.month))
        )
        if self._spec.days_match_either:
            return in_month or in_week
        return in_month and in_week

    def matches(self, wall: datetime) -> bool:
        return (
            wall.minute in self._spec.minutes
            and wall.hour in self._spec.hours
            and wall.month in self._months
            and (self._years is None or wall.year in self._years)
            and self.matches_day(wall.date())
        )

    def next_day(self, start: date, horizon: date) -> date | None:
        """The first matching day on or after ``start``, or None before ``horizon``."""
        day = start
        while day < horizon:
            if self._years is not None and day.year not in self._years:
                later = [y for y in self._years if y > day.year]
                if not later:
                    return None
                day = date(min(later), 1, 1)
                continue
            if day.month not in self._months:
                day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
                continue
            if self.matches_day(day):
                return day
            day += timedelta(days=1)
        return None

    def next_after(self, wall: datetime) -> datetime | None:
        """The first matching wall-clock minute strictly after ``wall``."""
        horizon = date(min(wall.year + SEARCH_HORIZON_YEARS, 9999), 1, 1)
        candidate = self._next_time(wall)
        while True:
            day = self.next_day(candidate.date(), horizon)
            if day is None:
                return None
            if day == candidate.date():
                return candidate
            candidate = self._next_time(datetime.combine(day, time.min) - _ONE_SECOND)

    def _next_time(self, wall: datetime) -> datetime:
        with self._times_lock:
            self._times.set_current(wall, force=True)
            candidate: datetime = self._times.get_next(datetime)
        return candidate
