"""The Powertools logger and metrics every cronfleet function shares, created once.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (template.yaml's Globals). Library modules log through the standard
``logging`` module under ``cronfleet.*``; those records propagate to this logger, so they come
out as the same structured JSON with the same correlation id.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()

__all__ = ["MetricUnit", "logger", "metrics"]
