"""Example scheduled task: logs the payload it was given and echoes it back.

It stands in for a team's own job. A later change wraps it in the layer's task wrapper, which
records the run; the function itself stays this small.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("Example task ran", extra={"payload": event})
    return {"ok": True, "echo": event}
