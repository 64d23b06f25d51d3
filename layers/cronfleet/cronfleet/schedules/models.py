"""The schedules API's bodies: what a caller sends and what it gets back, in camelCase.

A request body maps field for field to a task definition's properties (``schedule`` to
``Schedule``, ``retry.maxAttempts`` to ``Retry.MaxAttempts``), and the definition's own rules
judge it (``parse_task_definition``, as for a template task). These models only check shapes:
unknown fields, types, and the identifiers this API adds.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Identifiers end up in key attributes and index keys: no '#', which separates their parts.
TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
EXTERNAL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
SCHEDULE_ID_PATTERN = r"^s-[0-9a-f]{24}$"

Tenant = Annotated[str, StringConstraints(pattern=TENANT_PATTERN)]
ExternalId = Annotated[str, StringConstraints(pattern=EXTERNAL_PATTERN)]
ScheduleId = Annotated[str, StringConstraints(pattern=SCHEDULE_ID_PATTERN)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class HttpTargetBody(_Body):
    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    headers: dict[str, str] | None = None
    body: str | None = None
    secret_arn: str | None = Field(None, alias="secretArn")
    timeout_seconds: int | None = Field(None, alias="timeoutSeconds")
    expected_status: list[int] | None = Field(None, alias="expectedStatus")
    success_field: str | None = Field(None, alias="successField")
    allow_insecure_http: bool | None = Field(None, alias="allowInsecureHttp")
    allow_private_network: bool | None = Field(None, alias="allowPrivateNetwork")


class RetryBody(_Body):
    max_attempts: int | None = Field(None, alias="maxAttempts")
    interval_seconds: int | None = Field(None, alias="intervalSeconds")
    backoff_rate: float | None = Field(None, alias="backoffRate")
    max_delay_seconds: int | None = Field(None, alias="maxDelaySeconds")
    jitter_strategy: Literal["FULL", "NONE"] | None = Field(None, alias="jitterStrategy")


class CatchupBody(_Body):
    policy: Literal["latest", "all", "none"] | None = None
    max_lateness_seconds: int | None = Field(None, alias="maxLatenessSeconds")
    max_runs: int | None = Field(None, alias="maxRuns")


class AlertsBody(_Body):
    after_consecutive_failures: int | None = Field(None, alias="afterConsecutiveFailures")
    on_recovery: bool | None = Field(None, alias="onRecovery")
    slower_than_seconds: int | None = Field(None, alias="slowerThanSeconds")
    realert_after_seconds: int | None = Field(None, alias="realertAfterSeconds")


class ScheduleFields(_Body):
    """The fields a schedule is made of; PATCH sends any of them."""

    schedule: str | None = None
    timezone: str | None = None
    function: str | None = Field(
        None, description="One of the stack's task functions, by logical id (see the allow-list)."
    )
    http: HttpTargetBody | None = None
    payload: dict[str, Any] | None = None
    retry: RetryBody | None = None
    overlap: Literal["allow", "skip", "queue_one"] | None = None
    catchup: Literal["latest", "all", "none"] | CatchupBody | None = None
    alerts: AlertsBody | None = None
    timeout_seconds: int | None = Field(None, alias="timeoutSeconds")
    description: str | None = None
    enabled: bool | None = None
    external_id: ExternalId | None = Field(None, alias="externalId")


class ScheduleCreate(ScheduleFields):
    schedule: str
    deduplication_key: ExternalId | None = Field(
        None,
        alias="deduplicationKey",
        description="Creating again with the same key updates that schedule, never a second.",
    )


class ScheduleUpdate(ScheduleFields):
    pass


class TriggerBody(_Body):
    payload: dict[str, Any] | None = None


class Schedule(BaseModel):
    """A schedule as the API returns it: its fields as stored (defaults filled in), and what
    the service keeps about it."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    tenant: str
    external_id: str | None = Field(None, alias="externalId")
    deduplication_key: str | None = Field(None, alias="deduplicationKey")
    schedule: str
    timezone: str
    function: str | None = None
    http: dict[str, Any] | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    retry: dict[str, Any] = Field(default_factory=dict)
    overlap: str
    catchup: dict[str, Any] = Field(default_factory=dict)
    alerts: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: int | None = Field(None, alias="timeoutSeconds")
    description: str = ""
    enabled: bool
    paused: bool
    next_run: str | None = Field(None, alias="nextRun")
    created_at: str | None = Field(None, alias="createdAt")
    updated_at: str | None = Field(None, alias="updatedAt")
    described_as: str | None = Field(None, alias="describedAs")
    next_runs: list[str] | None = Field(None, alias="nextRuns")
    created: bool | None = None


class SchedulePage(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    items: list[Schedule]
    next_cursor: str | None = Field(None, alias="nextCursor")


class TriggeredRun(BaseModel):
    slot: str
    status: str


class Attempt(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    attempt: int
    status: str
    started_at: str | None = Field(None, alias="startedAt")
    finished_at: str | None = Field(None, alias="finishedAt")
    duration_ms: float | None = Field(None, alias="durationMs")
    request_id: str | None = Field(None, alias="requestId")
    result: Any = None
    error_type: str | None = Field(None, alias="errorType")
    error_message: str | None = Field(None, alias="errorMessage")


class Execution(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    slot: str
    status: str
    trigger: str
    attempts: list[Attempt]


class ExecutionPage(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    items: list[Execution]
    next_cursor: str | None = Field(None, alias="nextCursor")


class Stats(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    runs: int
    succeeded: int
    failed: int
    success_rate: float | None = Field(None, alias="successRate")
    average_duration_ms: float | None = Field(None, alias="averageDurationMs")
    p95_duration_ms: float | None = Field(None, alias="p95DurationMs")
    consecutive_failures: int = Field(alias="consecutiveFailures")
    last_success_at: str | None = Field(None, alias="lastSuccessAt")
    last_failure_at: str | None = Field(None, alias="lastFailureAt")


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# The definition's PascalCase properties for this API's camelCase fields, one level deep:
# nested keys are mapped the same way (maxAttempts -> MaxAttempts), payload, headers and body
# never (they are the caller's own data).
_OPAQUE = {"Payload", "Headers", "Body"}


def to_properties(fields: dict[str, Any]) -> dict[str, Any]:
    """A request's fields (by alias, unset ones left out) as a task definition's properties."""

    def pascal(key: str) -> str:
        return key[:1].upper() + key[1:]

    def convert(value: Any, key: str) -> Any:
        if key in _OPAQUE or not isinstance(value, dict):
            return value
        return {pascal(k): convert(v, pascal(k)) for k, v in value.items()}

    properties = {pascal(key): convert(value, pascal(key)) for key, value in fields.items()}
    if isinstance(properties.get("Catchup"), str):
        properties["Catchup"] = {"Policy": properties["Catchup"]}
    return properties


def to_field(field_path: str) -> str:
    """A definition problem's field (``Retry.MaxAttempts``) as this API names it."""
    parts = re.split(r"(\.|\[)", field_path)
    out, opaque = [], False
    for part in parts:
        if part in (".", "[") or opaque or not part:
            out.append(part)
            continue
        out.append(part[:1].lower() + part[1:])
        opaque = part in _OPAQUE
    return "".join(out)
