"""The one error type of the schedule engine."""


class ScheduleError(ValueError):
    """An expression or timezone that cannot be scheduled.

    The message is meant for people: it says what is wrong and where, for example
    ``hour field '25': 25 is out of range 0-23``.
    """
