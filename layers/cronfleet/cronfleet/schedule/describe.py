"""Human-readable schedules, for the CLI, the console and alert emails."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cron_descriptor import ExpressionDescriptor, Options

if TYPE_CHECKING:
    from cronfleet.schedule.expression import CronSchedule, Schedule

_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"))


def describe(schedule: Schedule) -> str:
    """For example ``At 09:00, Monday through Friday (Europe/London)``."""
    from cronfleet.schedule.expression import AtSchedule, CronSchedule, RateSchedule

    zone = schedule.timezone.key
    if isinstance(schedule, RateSchedule):
        return _describe_interval(int(schedule.interval.total_seconds()))
    if isinstance(schedule, AtSchedule):
        return f"Once, at {schedule.wall:%Y-%m-%d %H:%M} ({zone})"
    assert isinstance(schedule, CronSchedule)
    return f"{_describe_cron(schedule)} ({zone})"


def _describe_interval(seconds: int) -> str:
    for size, unit in _UNITS:
        if seconds % size == 0:
            count = seconds // size
            return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
    raise AssertionError("rates are whole minutes")


def _describe_cron(schedule: CronSchedule) -> str:
    options = Options()
    options.use_24hour_time_format = True
    if schedule.is_aws:
        # cron-descriptor reads Quartz: a leading seconds field, and day-of-week 1-7 = SUN-SAT.
        expression = "0 " + " ".join(schedule.spec.fields_text)
        options.day_of_week_start_index_zero = False
    else:
        expression = " ".join(schedule.spec.fields_text)
        options.day_of_week_start_index_zero = True
    description: str = ExpressionDescriptor(expression, options).get_description()
    return description
