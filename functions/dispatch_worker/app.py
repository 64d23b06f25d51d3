"""Dispatch worker: claims and invokes one shard of a busy tick; short of time, hands the rest
of the shard to a continuation of itself."""

from __future__ import annotations

from dataclasses import asdict
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from cronfleet.dispatch.events import ShardEvent
from cronfleet.dispatch.runtime import dispatcher_from_environment, ending
from cronfleet.dispatch.service import Dispatcher, tick_out_of_range
from cronfleet.dispatch.shards import ShardHandOff
from cronfleet.environment import current_environment
from cronfleet.handlers import lambda_handler, rejected
from cronfleet.invoker import InvokeError
from cronfleet.observability import count, logger

environment = current_environment()  # a missing variable fails the cold start, by name


@cache
def dispatcher() -> Dispatcher:
    """Built on the first shard and reused, as the dispatcher's own.

    Its AWS calls are not traced one by one, as the dispatcher's are: a busy shard makes tens of
    thousands a minute, and a subsegment each would cost CPU on every claim and invoke. The
    invocation itself is traced, and each run's trace decision still goes out on its Invoke.
    """
    return dispatcher_from_environment(environment)


@lambda_handler(correlation_id_path="tick", metrics_flushed=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        shard = ShardEvent.model_validate(event)
    except ValidationError as exc:
        return rejected("Malformed shard event; nothing dispatched", exc)
    work = dispatcher()
    problem = tick_out_of_range(shard.tick, work.clock())
    if problem is not None:  # not an event the dispatcher sent in the last minutes
        logger.error(
            "Shard event for a tick out of range; nothing dispatched", extra={"reason": problem}
        )
        return {"status": "rejected", "problems": [f"tick: {problem}"]}

    report = work.dispatch_shard(shard.tick, shard.partitions, out_of_time=ending(context))
    continued = shard.continued() if report.unfinished else None
    if report.unfinished and continued is None:
        logger.error(
            "Shard still busy after its last continuation; the next tick carries on",
            extra={"shard": shard.shard, "continuation": shard.continuation},
        )
    elif continued is not None:
        try:
            ShardHandOff(work.invoker, context.invoked_function_arn).send(continued)
        except InvokeError as exc:  # its tasks stay due: the next tick's worker claims them
            logger.error("Could not start a continuation", extra={"error": str(exc)})
            continued = None
    count("Invoked", report.invoked)
    count("InvokeFailures", report.invoke_failures)
    count("ShardContinuations", int(continued is not None))
    if report.errors:
        logger.error("Some tasks could not be dispatched", extra={"errors": report.errors})
    summary = {
        **asdict(report),
        "shard": shard.shard,
        "continuation": shard.continuation,
        "continued": continued is not None,
    }
    logger.info("Shard dispatched", extra={"report": summary})
    return {"status": "dispatched", **summary}
