"""Which runs X-Ray traces: every run of a failing task, every retry and manual run, and a
sample of the rest.

Task functions are deployed with ``Tracing: PassThrough``: Lambda traces an invocation only when
its Invoke carries a trace header with ``Sampled=1``. The dispatcher decides per run and sends
the header, so a fleet pays for traces of what goes wrong, and of a share of what goes right
(``TraceSampleRate``), instead of Lambda's 1 a second and 5% of the rest of every function.

The decision travels from :meth:`~cronfleet.lifecycle.attempts.Attempts.invoke` to the Invoke
request on the thread that makes it, so the invoker's interface stays ``invoke(function,
event)``; :class:`~cronfleet.invoker.LambdaInvoker` writes the header just before the request
is sent (botocore does not sign ``X-Amzn-Trace-Id``, so changing it there is safe).
"""

from __future__ import annotations

import contextlib
import random
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cronfleet.lifecycle.states import Trigger

if TYPE_CHECKING:
    from cronfleet.store import TaskRecord

TRACE_HEADER = "X-Amzn-Trace-Id"

_chosen = threading.local()


@dataclass
class TraceSampling:
    """``rate``: the share of healthy first attempts traced, 0 to 1."""

    rate: float
    rng: random.Random = field(default_factory=random.Random)

    def traces(self, task: TaskRecord, attempt: int, trigger: Trigger) -> bool:
        if attempt > 1 or trigger is Trigger.MANUAL or task.stats.consecutive_failures > 0:
            return True  # a retry, someone looking, or a task that is failing: keep its trace
        return self.rng.random() < self.rate


@contextlib.contextmanager
def invoking(sampled: bool | None) -> Iterator[None]:
    """Invokes made on this thread inside the block carry this decision (None: no opinion)."""
    previous = getattr(_chosen, "sampled", None)
    _chosen.sampled = sampled
    try:
        yield
    finally:
        _chosen.sampled = previous


def chosen() -> bool | None:
    return getattr(_chosen, "sampled", None)


def trace_header(sampled: bool, inherited: str | None, now: float) -> str:
    """The header an Invoke carries for this decision.

    A traced run joins the caller's trace when the caller is itself sampled (the X-Ray SDK put
    that header on the request); otherwise it gets a trace of its own. An untraced run always
    gets a new root with ``Sampled=0``, so a traced dispatcher does not pass its decision on.
    """
    if sampled and inherited and "Sampled=1" in inherited.split(";"):
        return inherited
    root = f"1-{int(now):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Sampled={1 if sampled else 0}"
