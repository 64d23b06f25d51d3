"""Turning wall-clock matches into instants, with Vixie cron's DST rules.

Between two offset transitions a zone's wall clock runs in step with UTC, so within such a
*segment* a wall time maps to exactly one instant. DST only matters at the segment edges:

- spring forward (the offset grows): the wall times in the gap never happen. A fixed-time job
  scheduled in the gap runs once, at the first instant after the gap; a wildcard job (minute or
  hour field starting with ``*``) simply has no runs there, as real elapsed time dictates.
- fall back (the offset shrinks): the wall times of the repeated interval happen twice. A
  fixed-time job runs only at the first of them; a wildcard job runs at both.

``zoneinfo`` does not expose its transitions, so they are found by probing offsets and
bisecting, once per zone and year.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

# No zone has changed its offset twice within six hours since 1970, so probing at this step
# finds every transition; each is then located to the second by bisection.
_PROBE_STEP = 6 * 3600
_ONE_SECOND = timedelta(seconds=1)


def _offset_at(zone: ZoneInfo, timestamp: int) -> timedelta:
    offset = datetime.fromtimestamp(timestamp, zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has an offset
    return offset


@lru_cache(maxsize=2048)
def _transitions_in_year(zone: ZoneInfo, year: int) -> tuple[int, ...]:
    """Timestamps (UTC seconds) at which ``zone`` changes its offset during ``year``."""
    start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    found = []
    previous, previous_offset = start, _offset_at(zone, start)
    for probe in range(start + _PROBE_STEP, end + _PROBE_STEP, _PROBE_STEP):
        probe = min(probe, end)
        offset = _offset_at(zone, probe)
        if offset != previous_offset:
            low, high = previous, probe  # offset(low) == previous_offset != offset(high)
            while high - low > 1:
                middle = (low + high) // 2
                if _offset_at(zone, middle) == previous_offset:
                    low = middle
                else:
                    high = middle
            found.append(high)
        previous, previous_offset = probe, offset
    return tuple(t for t in found if t < end)


@dataclass(frozen=True)
class Segment:
    """A span of instants ``[start, end)`` during which ``zone`` keeps one UTC offset."""

    start: datetime
    end: datetime  # a transition, or an arbitrary cut at the end of the next year
    offset: timedelta
    offset_before: timedelta  # the offset just before ``start``

    @property
    def repeats_wall_times(self) -> bool:
        return self.offset < self.offset_before

    def wall(self, instant: datetime) -> datetime:
        return (instant.astimezone(UTC) + self.offset).replace(tzinfo=None)

    def instant(self, wall: datetime) -> datetime:
        return (wall - self.offset).replace(tzinfo=UTC)


def segment_at(zone: ZoneInfo, instant: datetime) -> Segment:
    """The offset segment that contains ``instant``."""
    timestamp = int(instant.timestamp())
    year = instant.astimezone(UTC).year
    earlier = [t for y in (year - 1, year) for t in _transitions_in_year(zone, y) if t <= timestamp]
    later = [t for y in (year, year + 1) for t in _transitions_in_year(zone, y) if t > timestamp]
    start = earlier[-1] if earlier else int(datetime(year - 1, 1, 1, tzinfo=UTC).timestamp())
    end = later[0] if later else int(datetime(year + 2, 1, 1, tzinfo=UTC).timestamp())
    return Segment(
        start=datetime.fromtimestamp(start, UTC),
        end=datetime.fromtimestamp(end, UTC),
        offset=_offset_at(zone, timestamp),
        offset_before=_offset_at(zone, start - 1),
    )


NextWall = Callable[[datetime], "datetime | None"]


def next_instant(
    zone: ZoneInfo, after: datetime, next_wall: NextWall, *, fixed_time: bool
) -> datetime | None:
    """The first run strictly after ``after``.

    ``next_wall(w)`` gives the first matching wall-clock time strictly after ``w`` (naive), or
    None when the schedule has no more runs.
    """
    after = after.astimezone(UTC)
    segment = segment_at(zone, after)
    search_from = segment.wall(after)
    while True:
        wall = next_wall(search_from)
        if wall is None:
            return None
        run = segment.instant(wall)
        if run < segment.end:
            repeated_until = (segment.start + segment.offset_before).replace(tzinfo=None)
            if fixed_time and segment.repeats_wall_times and wall < repeated_until:
                # This wall time already happened before the clocks went back: run once.
                search_from = repeated_until - _ONE_SECOND
                continue
            return run
        following = segment_at(zone, segment.end)
        if fixed_time and following.offset > segment.offset:
            gap_start = segment.wall(segment.end)
            gap_end = following.wall(segment.end)
            skipped = next_wall(gap_start - _ONE_SECOND)
            if skipped is not None and skipped < gap_end:
                return segment.end  # the first instant after the gap
        segment = following
        search_from = segment.wall(segment.start) - _ONE_SECOND
