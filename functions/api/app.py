"""Schedules API: create, change and read schedules at run time (REST, IAM-authorised).

The routes, validation and error bodies live in :mod:`cronfleet.schedules.api`; the rules in
:mod:`cronfleet.schedules.service`.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cronfleet.environment import current_environment
from cronfleet.handlers import lambda_handler
from cronfleet.lifecycle.attempts import manual_runs
from cronfleet.observability import trace_aws_calls
from cronfleet.schedules.api import build_api
from cronfleet.schedules.service import ScheduleService
from cronfleet.store import Store

environment = current_environment()  # a missing variable fails the cold start, by name


@cache
def service() -> ScheduleService:
    """Built on the first request and reused: creating boto3 clients is most of a cold start."""
    trace_aws_calls()
    store = Store.from_environment(environment)
    return ScheduleService(
        store,
        attempts=manual_runs(store, environment.http_function_name),
        functions=json.loads(environment.api_task_functions or "{}"),
        quota=environment.api_tenant_quota,
    )


api = build_api(service)


@lambda_handler(correlation_id_path="requestContext.requestId")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return api.resolve(event, context)
