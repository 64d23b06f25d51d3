"""Schedules in words, for the CLI, the console and alert emails (``Schedule.describe()``).

Plain functions of plain values, so that this module needs nothing of the schedule engine and
cron-descriptor loads only when a description is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

from cron_descriptor import ExpressionDescriptor, Options

_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"))
_PLURALS = {"day-of-month": "days-of-month", "day-of-week": "days-of-week"}


def describe_interval(seconds: int) -> str:
    """``Every 15 minutes``, ``Every day``."""
    for size, unit in _UNITS:
        if seconds % size == 0:
            count = seconds // size
            return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
    raise AssertionError("rates are whole minutes")


def describe_cron(fields: Sequence[str], *, aws: bool, written: str) -> str:
    """A cron's fields in words (``At 09:00, Monday through Friday``); ``written`` as it was
    written when cron-descriptor cannot read it."""
    options = Options()
    options.use_24hour_time_format = True
    texts = list(fields)
    if aws:
        # cron-descriptor reads Quartz: a leading seconds field, and day-of-week 1-7 = SUN-SAT.
        # AWS's 'L' alone in day-of-week is Saturday, which it cannot read; 7 says the same.
        texts[4] = ",".join("7" if item.upper() == "L" else item for item in texts[4].split(","))
        expression = "0 " + " ".join(texts)
        options.day_of_week_start_index_zero = False
    else:
        expression = " ".join(texts)
        options.day_of_week_start_index_zero = True
    try:
        description: str = ExpressionDescriptor(expression, options).get_description()
    except Exception:
        # cron-descriptor reads a dialect close to ours, not ours: whatever it cannot read (or
        # any fault of its own) is shown as written rather than failing the caller, which may be
        # a status table, an alert email or `cronfleet next`.
        return written
    return description


def describe_hashed(hashed: Sequence[tuple[str, str]]) -> str:
    """``with H as minute 37 and hour 14``: what each H of a task resolved to."""
    parts = [
        f"{name} {text}" if text.isdigit() else f"{_PLURALS.get(name, name + 's')} {text}"
        for name, text in hashed
    ]
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"with H as {joined}"
