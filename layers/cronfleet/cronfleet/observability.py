"""The Powertools logger and metrics every cronfleet function shares, created once.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (template.yaml's Globals). Library modules log through the standard
``logging`` module under ``cronfleet.*``; those records propagate to this logger, so they come
out as the same structured JSON with the same correlation id.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

# Service and namespace are fixed when this module is first imported, which in tests and the
# local runner can be before a function's environment is in place: fall back to the product's
# own. The service name matters beyond labels: Powertools names its logger after it, and the
# library's `cronfleet.*` loggers reach its JSON handler only if that name is "cronfleet".
DEFAULT_SERVICE = "cronfleet"
DEFAULT_NAMESPACE = "Cronfleet"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE)

__all__ = ["MetricUnit", "logger", "metrics"]
