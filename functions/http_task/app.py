"""Built-in HTTP caller: runs every task declared with an ``Http`` target.

The dispatcher invokes it with the target in the execution payload; the call itself, with its
checks against dangerous addresses on every hop, is :mod:`cronfleet.http_task`.
"""

from __future__ import annotations

from pydantic import JsonValue

from cronfleet import TaskContext, scheduled_task
from cronfleet.handlers import lambda_handler
from cronfleet.http_task import run_http_task


@lambda_handler(correlation_id_path="cronfleet.task_id")
@scheduled_task
def handler(task: TaskContext) -> dict[str, JsonValue]:
    return run_http_task(task)
