"""Schedule engine: parsing, DST-aware run times and human-readable descriptions."""

from cronfleet.schedule.errors import MissingHashKey, ScheduleError
from cronfleet.schedule.expression import (
    Schedule,
    load_timezone,
    parse_schedule,
    timezone_caveat,
)

__all__ = [
    "MissingHashKey",
    "Schedule",
    "ScheduleError",
    "load_timezone",
    "parse_schedule",
    "timezone_caveat",
]
