"""What every function's handler shares: one decorator stack, one way to report a bad event.

A handler in ``functions/<name>/app.py`` validates its environment, parses its event, calls the
library and maps the result. The parts every one of them needs are here::

    @lambda_handler(correlation_id_path="scheduled_time", metrics=True)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError

Handler = TypeVar("Handler", bound=Callable[..., Any])

# The Powertools objects (cronfleet.observability) are imported where they are used: they read
# their settings from the environment when created, and the task wrapper, which uses
# problem_lines and correlate, is imported before a function's environment is in place in
# tests and the local runtime.


def lambda_handler(
    *, correlation_id_path: str, metrics_flushed: bool = False
) -> Callable[[Handler], Handler]:
    """Powertools around a handler, in the same order in every function: the logger (with the
    correlation id read from the event at ``correlation_id_path``), then, for a function that
    emits metrics, their flush, then the tracer.

    No cold-start metric: it would be one more custom metric per function, billed for every hour
    with a cold start, for what each REPORT line already says (``Init Duration``)."""

    from cronfleet.observability import logger, metrics, tracer

    def decorate(handler: Handler) -> Handler:
        wrapped: Any = tracer.capture_lambda_handler(handler)
        if metrics_flushed:
            wrapped = metrics.log_metrics(wrapped)
        decorated: Handler = logger.inject_lambda_context(correlation_id_path=correlation_id_path)(
            wrapped
        )
        return decorated

    return decorate


def correlate(correlation_id: str) -> None:
    """Every later log line of this invocation carries ``correlation_id`` (a run's id, say)."""
    from cronfleet.observability import logger

    logger.set_correlation_id(correlation_id)


def problem_lines(error: ValidationError) -> list[str]:
    """A pydantic error as ``field.path: reason`` lines, one per problem."""
    return [
        f"{'.'.join(map(str, detail['loc']))}: {detail['msg']}" if detail["loc"] else detail["msg"]
        for detail in error.errors(include_url=False)
    ]


def rejected(message: str, error: ValidationError) -> dict[str, Any]:
    """Log a malformed event with ``message`` and its problems, and answer it: it changes
    nothing."""
    from cronfleet.observability import logger

    problems = problem_lines(error)
    logger.error(message, extra={"problems": problems})
    return {"status": "rejected", "problems": problems}
