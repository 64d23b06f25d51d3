"""The dashboard's fleet widget: a CloudWatch custom widget listing every task with its health,
with buttons to run, pause and resume each.

CloudWatch invokes it, with the viewer's own credentials, only while someone has the dashboard
open; it answers with HTML (:mod:`cronfleet.widget`).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cronfleet import clock
from cronfleet.environment import current_environment
from cronfleet.handlers import lambda_handler
from cronfleet.lifecycle.attempts import manual_runs
from cronfleet.observability import trace_aws_calls
from cronfleet.store import Store
from cronfleet.widget.service import FleetWidget

environment = current_environment()  # a missing variable fails the cold start, by name


@cache
def widget() -> FleetWidget:
    """Built on the first view and reused: creating boto3 clients is most of a cold start."""
    trace_aws_calls()
    store = Store.from_environment(environment)
    return FleetWidget(
        store,
        attempts=manual_runs(store, environment.http_function_name),
    )


@lambda_handler(correlation_id_path="widgetContext.widgetId")
def handler(event: dict[str, Any], context: LambdaContext) -> str:
    return widget().answer(
        event,
        clock.now(),
        endpoint=context.invoked_function_arn,
        request_id=context.aws_request_id,
    )
