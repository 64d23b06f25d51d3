"""The base of every exception cronfleet raises on purpose.

``except CronfleetError`` catches what cronfleet itself refused or could not do, and nothing
else. Each error also keeps the builtin it used to be (``ValueError``, ``RuntimeError``, ...),
so code that caught that builtin goes on catching it.
"""


class CronfleetError(Exception):
    """Something cronfleet refused, or could not do; the message says what and why."""
