"""The schedules API's routes, on Powertools' Event Handler, with request validation on.

The handler in ``functions/api/app.py`` only builds this resolver and hands it each event.
Tenants are in the path (``/tenants/{tenant}/...``), so one IAM policy can let a principal
manage only its own tenant's schedules (``execute-api:Invoke`` on
``.../tenants/${aws:PrincipalTag/tenant}/*``). Every error is ``{"error": {"code", "message",
"field"}}`` and never carries internals: an unexpected one is logged and answered as 500 with
the request's id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from cronfleet.lifecycle.slots import slot_key
from cronfleet.schedules.models import (
    EXTERNAL_PATTERN,
    SCHEDULE_ID_PATTERN,
    TENANT_PATTERN,
    ErrorBody,
    Execution,
    ExecutionPage,
    Schedule,
    ScheduleCreate,
    SchedulePage,
    ScheduleUpdate,
    Stats,
    TriggerBody,
    TriggeredRun,
)
from cronfleet.schedules.service import (
    InvalidCursor,
    InvalidSchedule,
    ScheduleConflict,
    ScheduleNotFound,
    ScheduleService,
    schedule_fields,
)
from cronfleet.store import TaskStateError
from cronfleet.store.records import ExecutionRecord, TaskRecord
from cronfleet.store.schedules import QuotaExceeded

logger = logging.getLogger(__name__)

TenantPath = Annotated[str, Path(pattern=TENANT_PATTERN, description="The schedules' tenant.")]
IdPath = Annotated[str, Path(pattern=SCHEDULE_ID_PATTERN, description="A schedule's id.")]
Limit = Annotated[int, Query(ge=1, le=100, description="Items per page.")]
Cursor = Annotated[str | None, Query(max_length=2048, description="From the previous page.")]
BASE = "/tenants/<tenant>/schedules"
PATH_FIELDS = {"schedule_id": "id"}


def error(status: int, code: str, message: str, field: str | None = None) -> Response[str]:
    body = ErrorBody.model_validate({"error": {"code": code, "message": message, "field": field}})
    return Response(status, "application/json", body.model_dump_json())


def _json(status: int, model: Any) -> Response[str]:
    return Response(status, "application/json", model.model_dump_json(by_alias=True))


def build_api(service: Callable[[], ScheduleService]) -> APIGatewayRestResolver:
    """The resolver; ``service`` is called once per request (it is cached by the caller)."""
    app = APIGatewayRestResolver(enable_validation=True)

    def render(task: TaskRecord, *, created: bool | None = None, next_count: int = 0) -> Schedule:
        schedules = service()
        fields = schedule_fields(task, schedules.functions)
        described, runs = schedules.next_runs(task, next_count) if next_count else (None, None)
        return Schedule.model_validate(
            {
                **fields,
                "id": task.task_id,
                "tenant": task.tenant,
                "externalId": task.external_id,
                "deduplicationKey": task.dedup_key,
                "paused": task.paused,
                "nextRun": slot_key(task.next_run) if task.next_run else None,
                "createdAt": task.created_at,
                "updatedAt": task.updated_at,
                "describedAs": described,
                "nextRuns": [slot_key(run) for run in runs] if runs is not None else None,
                "created": created,
            }
        )

    def invalid_request(exc: RequestValidationError) -> Response[str]:
        first = exc.errors()[0]
        location = [str(part) for part in first.get("loc", ())]
        if first.get("type") == "json_invalid":
            return error(400, "malformed_body", "the body is not JSON")
        where, *rest = location or ["body"]
        field = ".".join(rest) if where == "body" else ".".join(rest) or where
        # Named as the API names it: the path's {schedule_id} is the schedule's "id".
        field = PATH_FIELDS.get(field, field)
        return error(422, "invalid", str(first.get("msg", "invalid")), field or None)

    def unexpected(exc: Exception) -> Response[str]:
        logger.exception("Unexpected error in the schedules API")
        request_id = app.current_event.request_context.request_id
        return error(500, "internal", f"internal error; request id {request_id}")

    # Each domain error, as the status and code it is answered with.
    answers: list[tuple[type[Exception], Callable[[Any], Response[str]]]] = [
        (RequestValidationError, invalid_request),
        (InvalidSchedule, lambda exc: error(422, "invalid", exc.message, exc.field)),
        (InvalidCursor, lambda exc: error(400, "invalid_cursor", str(exc), "cursor")),
        (ScheduleNotFound, lambda exc: error(404, "not_found", str(exc))),
        (ScheduleConflict, lambda exc: error(409, "conflict", str(exc))),
        (TaskStateError, lambda exc: error(409, "conflict", str(exc))),
        (QuotaExceeded, lambda exc: error(409, "quota_exceeded", str(exc))),
        (Exception, unexpected),
    ]
    for kind, answer in answers:
        app.exception_handler(kind)(answer)

    @app.post(BASE, responses={201: {"description": "Created"}})
    def create(tenant: TenantPath, body: Annotated[ScheduleCreate, Body()]) -> Response[str]:
        stored = service().create(tenant, body)
        return _json(201 if stored.created else 200, render(stored.task, created=stored.created))

    @app.get(BASE)
    def list_schedules(
        tenant: TenantPath,
        external_id: Annotated[
            str | None, Query(alias="externalId", pattern=EXTERNAL_PATTERN)
        ] = None,
        enabled: Annotated[bool | None, Query()] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[str]:
        records, next_cursor = service().page(
            tenant, external_id=external_id, enabled=enabled, limit=limit, cursor=cursor
        )
        page = SchedulePage(items=[render(r) for r in records], next_cursor=next_cursor)
        return _json(200, page)

    @app.get(f"{BASE}/<schedule_id>")
    def get(
        tenant: TenantPath,
        schedule_id: IdPath,
        next_count: Annotated[int, Query(alias="next", ge=0, le=50)] = 5,
    ) -> Response[str]:
        return _json(200, render(service().get(tenant, schedule_id), next_count=next_count))

    @app.patch(f"{BASE}/<schedule_id>")
    def update(
        tenant: TenantPath, schedule_id: IdPath, body: Annotated[ScheduleUpdate, Body()]
    ) -> Response[str]:
        return _json(200, render(service().update(tenant, schedule_id, body).task))

    @app.delete(f"{BASE}/<schedule_id>")
    def delete(tenant: TenantPath, schedule_id: IdPath) -> Response[str]:
        service().delete(tenant, schedule_id)
        return Response(204, "application/json", "")

    @app.post(f"{BASE}/<schedule_id>/pause")
    def pause(tenant: TenantPath, schedule_id: IdPath) -> Response[str]:
        return _json(200, render(service().pause(tenant, schedule_id)))

    @app.post(f"{BASE}/<schedule_id>/resume")
    def resume(tenant: TenantPath, schedule_id: IdPath) -> Response[str]:
        return _json(200, render(service().resume(tenant, schedule_id)))

    @app.post(f"{BASE}/<schedule_id>/trigger", responses={202: {"description": "Started"}})
    def trigger(
        tenant: TenantPath, schedule_id: IdPath, body: Annotated[TriggerBody | None, Body()] = None
    ) -> Response[str]:
        payload = body.payload if body is not None else None
        slot, invoked = service().trigger(tenant, schedule_id, payload)
        run = TriggeredRun(slot=slot, status="started" if invoked else "invoke_failed")
        return _json(202, run)

    @app.get(f"{BASE}/<schedule_id>/executions")
    def executions(
        tenant: TenantPath, schedule_id: IdPath, limit: Limit = 20, cursor: Cursor = None
    ) -> Response[str]:
        records, next_cursor = service().executions(tenant, schedule_id, limit=limit, cursor=cursor)
        page = ExecutionPage(
            items=[Execution.model_validate(_execution(r)) for r in records],
            next_cursor=next_cursor,
        )
        return _json(200, page)

    @app.get(f"{BASE}/<schedule_id>/stats")
    def stats(tenant: TenantPath, schedule_id: IdPath) -> Response[str]:
        counted = service().get(tenant, schedule_id).stats
        return _json(
            200,
            Stats(
                runs=counted.runs,
                succeeded=counted.succeeded,
                failed=counted.failed,
                success_rate=counted.success_rate,
                average_duration_ms=counted.average_duration_ms,
                p95_duration_ms=counted.p95_duration_ms,
                consecutive_failures=counted.consecutive_failures,
                last_success_at=counted.last_success_at,
                last_failure_at=counted.last_failure_at,
            ),
        )

    @app.get("/openapi.json")
    def openapi() -> Response[str]:
        document = app.get_openapi_json_schema(title="cronfleet schedules", version="1")
        return Response(200, "application/json", document)

    return app


def _execution(record: ExecutionRecord) -> dict[str, Any]:
    return {
        "slot": record.slot,
        "status": record.status.value,
        "trigger": record.trigger.value,
        "attempts": [
            {
                "attempt": attempt.attempt,
                "status": attempt.status.value,
                "startedAt": attempt.started_at,
                "finishedAt": attempt.ended_at,
                "durationMs": attempt.duration_ms,
                "requestId": attempt.request_id,
                "result": attempt.result,
                "errorType": attempt.error_type,
                "errorMessage": attempt.error_message,
            }
            for attempt in record.attempts
        ],
    }


def json_body(response: dict[str, Any]) -> Any:
    """A proxy response's body, parsed (for callers and tests)."""
    return json.loads(response["body"]) if response.get("body") else None
