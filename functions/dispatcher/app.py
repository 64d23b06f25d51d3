"""Dispatcher: each scheduler tick claims the due slots, invokes them and runs the watchdog."""

from __future__ import annotations

from dataclasses import asdict
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from cronfleet.alerts.alerter import Alerter
from cronfleet.dispatch.events import TickEvent
from cronfleet.dispatch.service import Dispatcher
from cronfleet.environment import current_environment
from cronfleet.handlers import lambda_handler, rejected
from cronfleet.invoker import LambdaInvoker
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.observability import MetricUnit, logger, metrics, trace_aws_calls
from cronfleet.store import Store

environment = current_environment()  # a missing variable fails the cold start, by name


@cache
def dispatcher() -> Dispatcher:
    """Built on the first tick and reused: creating boto3 clients is most of a cold start."""
    trace_aws_calls()
    store = Store.from_environment(environment)
    attempts = Attempts(
        store,
        LambdaInvoker(),
        alerter=Alerter.from_environment(store, environment),
        http_function=environment.http_function_name,
    )
    return Dispatcher(attempts)


@lambda_handler(correlation_id_path="scheduled_time", metrics_flushed=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        tick = TickEvent.model_validate(event)
    except ValidationError as exc:
        return rejected("Malformed tick event; nothing dispatched", exc)

    report = dispatcher().tick(tick.scheduled_time)
    metrics.add_metric(name="DispatcherHeartbeat", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="DueTasks", unit=MetricUnit.Count, value=report.due_tasks)
    metrics.add_metric(name="Invoked", unit=MetricUnit.Count, value=report.invoked)
    metrics.add_metric(name="InvokeFailures", unit=MetricUnit.Count, value=report.invoke_failures)
    metrics.add_metric(name="MissedTicks", unit=MetricUnit.Count, value=report.missed_ticks)
    metrics.add_metric(
        name="TicksClamped", unit=MetricUnit.Count, value=int(report.clamped_from is not None)
    )
    if report.errors:
        logger.error("Some tasks could not be dispatched", extra={"errors": report.errors})
    summary = asdict(report)
    summary["tick"] = report.tick.isoformat()
    if report.clamped_from is not None:
        summary["clamped_from"] = report.clamped_from.isoformat()
    logger.info("Tick dispatched", extra={"report": summary})
    return {"status": "dispatched", **summary}
