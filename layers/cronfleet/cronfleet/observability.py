"""The Powertools logger, metrics and tracer every cronfleet function shares, created once.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (template.yaml's Globals). Library modules log through the standard
``logging`` module under ``cronfleet.*``; those records propagate to this logger, so they come
out as the same structured JSON with the same correlation id.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

# Service and namespace are fixed when this module is first imported, which in tests and the
# local runner can be before a function's environment is in place: fall back to the product's
# own. The service name matters beyond labels: Powertools names its logger after it, and the
# library's `cronfleet.*` loggers reach its JSON handler only if that name is "cronfleet".
DEFAULT_SERVICE = "cronfleet"
DEFAULT_NAMESPACE = "Cronfleet"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE)

# Only botocore is traced (see trace_aws_calls): every DynamoDB, Lambda, SNS and SSM call becomes
# a subsegment. Patching everything the X-Ray SDK knows would import httpx and more into the
# dispatcher's cold start for nothing. Outside Lambda (tests, `sam local invoke`, the local
# runner) Powertools turns the tracer off itself, and patching is then a no-op.
tracer = Tracer(
    service=os.environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE,
    patch_modules=[],
)


def count(name: str, value: int) -> None:
    """A count metric of this invocation, published only when it is not zero.

    CloudWatch bills a custom metric for each hour in which it received data: a count that is
    zero nearly always (failures, missed ticks, hand-offs) costs next to nothing this way, and
    its alarms and graphs read no data as none. The dispatcher's heartbeat is the exception:
    its alarm treats missing data as the dispatcher having stopped, so it is always sent.
    """
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def trace_aws_calls() -> None:
    """Patch botocore so that AWS calls are traced; safe to call more than once.

    Called where a function first makes its AWS clients, not at import: the patch imports
    botocore's client machinery, which a function loads anyway when it makes its first client,
    and the dispatcher makes its clients on its first tick.
    """
    tracer.patch(["botocore"])


__all__ = ["MetricUnit", "count", "logger", "metrics", "trace_aws_calls", "tracer"]
