"""The time cronfleet's code runs on.

In Lambda this is the real UTC clock. The local runner replays a day or a week in seconds on a
simulated clock; it installs that clock in every process it starts, so a run's start, its
deadline, its retry time and its alerts all carry the simulated time its slot belongs to.
Components that take a ``clock`` argument default to :func:`now`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def _real_time() -> datetime:
    return datetime.now(UTC)


_source: Callable[[], datetime] = _real_time


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return _source()


def use(source: Callable[[], datetime] | None) -> None:
    """Run this process on another clock (None: back to real time). Local runner only."""
    global _source
    _source = source or _real_time
