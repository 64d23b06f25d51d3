"""Example scheduled task: logs the payload it was given and echoes it back.

It stands in for a team's own job: copy this folder, put your code in the function, and declare
a Custom::ScheduledTask for it in template.yaml. The wrapper records every run in the ledger.
"""

from __future__ import annotations

from typing import Any

from cronfleet import TaskContext, scheduled_task
from cronfleet.handlers import lambda_handler
from cronfleet.observability import logger


@lambda_handler(correlation_id_path="cronfleet.task_id")
@scheduled_task
def handler(task: TaskContext) -> dict[str, Any]:
    logger.info("Example task ran", extra={"task_id": task.task_id, "payload": task.payload})
    return {"ok": True, "echo": task.payload}
