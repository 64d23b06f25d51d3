"""Weekly digest: publishes last week's runs of every task to the alert topic.

Per task: runs, success rate, p95 duration, failures (cronfleet.digest). Email subscribers get
a readable summary; other protocols get JSON.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from cronfleet import TaskContext, scheduled_task
from cronfleet.alerts.sns import SnsNotifier
from cronfleet.digest import WEEK, render_digest, summarize_week
from cronfleet.environment import current_environment
from cronfleet.handlers import lambda_handler
from cronfleet.lifecycle.slots import parse_slot
from cronfleet.observability import logger, trace_aws_calls
from cronfleet.store import Store

environment = current_environment()


@cache
def store() -> Store:
    trace_aws_calls()
    return Store.from_environment(environment)


@lambda_handler(correlation_id_path="cronfleet.task_id")
@scheduled_task
def handler(task: TaskContext) -> dict[str, Any]:
    # The week ends at the slot this run stands for (a manual run's slot carries a suffix).
    end = parse_slot(task.slot.split("#", 1)[0])
    weeks = summarize_week(store(), end)
    request = render_digest(weeks, end - WEEK, end)
    if environment.alert_topic_arn is None:
        logger.info("Weekly digest (no topic configured)", extra={"digest": request})
        return {"tasks": len(weeks), "published": False}
    message_id = SnsNotifier(topic_arn=environment.alert_topic_arn).send(request)
    return {"tasks": len(weeks), "published": True, "message_id": message_id}
