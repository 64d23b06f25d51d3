"""The one error type of the schedule engine."""

from cronfleet.errors import CronfleetError


class ScheduleError(CronfleetError, ValueError):
    """An expression or timezone that cannot be scheduled.

    The message is meant for people: it says what is wrong and where, for example
    ``hour field '25': 25 is out of range 0-23``.
    """


class MissingHashKey(ScheduleError):
    """An expression with ``H`` parsed without the task id its values are hashed from.

    Apart from the other errors so that a caller can name the input that was missing (the CLI's
    ``--task``) rather than blame the expression.
    """


def quoted(text: str, *, quote: bool = True) -> str:
    """Echo user input in a message: briefly, and on one line whatever it holds."""
    if len(text) > 40:
        text = text[:37] + "..."
    if not text.isprintable():
        return repr(text)
    return f"'{text}'" if quote else text
