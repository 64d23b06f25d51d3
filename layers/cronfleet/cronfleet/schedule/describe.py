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
    fields = list(schedule.spec.fields_text)
    if schedule.is_aws:
        # cron-descriptor reads Quartz: a leading seconds field, and day-of-week 1-7 = SUN-SAT.
        # AWS's 'L' alone in day-of-week is Saturday, which it cannot read; 7 says the same.
        fields[4] = ",".join("7" if item.upper() == "L" else item for item in fields[4].split(","))
        expression = "0 " + " ".join(fields)
        options.day_of_week_start_index_zero = False
    else:
        expression = " ".join(fields)
        options.day_of_week_start_index_zero = True
    try:
        description: str = ExpressionDescriptor(expression, options).get_description()
    except Exception:
        # cron-descriptor reads a dialect close to ours, not ours: whatever it cannot read (or
        # any fault of its own) is shown as written rather than failing the caller, which may be
        # a status table, an alert email or `cronfleet next`.
        return schedule.expression
    return description
