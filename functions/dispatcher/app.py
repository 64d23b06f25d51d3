"""Dispatcher: each scheduler tick opens the tick, dispatches or hands off its shards, and runs
the watchdog."""

from __future__ import annotations

from dataclasses import asdict
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from cronfleet.dispatch.events import TickEvent
from cronfleet.dispatch.runtime import dispatcher_from_environment, ending
from cronfleet.dispatch.service import Dispatcher
from cronfleet.environment import current_environment
from cronfleet.handlers import lambda_handler, rejected
from cronfleet.observability import MetricUnit, count, logger, metrics, trace_aws_calls

environment = current_environment()  # a missing variable fails the cold start, by name


@cache
def dispatcher() -> Dispatcher:
    """Built on the first tick and reused: creating boto3 clients is most of a cold start."""
    trace_aws_calls()
    return dispatcher_from_environment(environment)


@lambda_handler(correlation_id_path="scheduled_time", metrics_flushed=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        tick = TickEvent.model_validate(event)
    except ValidationError as exc:
        return rejected("Malformed tick event; nothing dispatched", exc)

    report = dispatcher().tick(tick.scheduled_time, out_of_time=ending(context))
    metrics.add_metric(name="DispatcherHeartbeat", unit=MetricUnit.Count, value=1)
    count("Invoked", report.invoked)
    count("InvokeFailures", report.invoke_failures)
    count("MissedTicks", report.missed_ticks)
    count("ShardsHandedOff", report.handed_off)
    count("TicksClamped", int(report.clamped_from is not None))
    if report.errors:
        logger.error("Some tasks could not be dispatched", extra={"errors": report.errors})
    summary = asdict(report)
    summary["tick"] = report.tick.isoformat()
    if report.clamped_from is not None:
        summary["clamped_from"] = report.clamped_from.isoformat()
    logger.info("Tick dispatched", extra={"report": summary})
    return {"status": "dispatched", **summary}
