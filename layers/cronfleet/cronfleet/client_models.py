"""What the schedules API returns, as :mod:`cronfleet.client` reads it: frozen pydantic models
with the API's camelCase names as aliases (``Schedule.next_run`` is ``nextRun``).

They are lenient on purpose: a field the server adds later is kept (``model_extra``), not
refused, so an older client goes on working against a newer stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    # Fields the server adds later are kept (in model_extra), not refused.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="allow"
    )


class HttpTarget(ApiModel):
    url: str
    method: str | None = None
    headers: dict[str, str] | None = None
    body: str | None = None
    secret_arn: str | None = None
    timeout_seconds: int | None = None
    expected_status: list[int] | None = None
    success_field: str | None = None


class RetryPolicy(ApiModel):
    max_attempts: int | None = None
    interval_seconds: int | None = None
    backoff_rate: float | None = None
    max_delay_seconds: int | None = None
    jitter_strategy: str | None = None


class AlertPolicy(ApiModel):
    after_consecutive_failures: int | None = None
    on_recovery: bool | None = None
    on_success: bool | None = None
    slower_than_seconds: int | None = None
    realert_after_seconds: int | None = None


class Schedule(ApiModel):
    id: str
    tenant: str
    schedule: str
    timezone: str = "UTC"
    external_id: str | None = None
    deduplication_key: str | None = None
    function: str | None = None
    http: HttpTarget | None = None
    payload: dict[str, Any] | None = None
    retry: RetryPolicy | None = None
    overlap: str | None = None
    catchup: str | dict[str, Any] | None = None
    alerts: AlertPolicy | None = None
    timeout_seconds: int | None = None
    description: str | None = None  # the caller's own words about it
    enabled: bool = True
    paused: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    next_run: datetime | None = None
    owner: str | None = None
    described_as: str | None = None  # get_schedule only: the schedule in words
    next_runs: list[datetime] | None = None  # get_schedule only
    created: bool | None = None  # create_schedule only: False when the key matched one


class TriggeredRun(ApiModel):
    slot: str
    status: str


class Attempt(ApiModel):
    attempt: int
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    request_id: str | None = None
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None


class Execution(ApiModel):
    slot: str
    status: str
    trigger: str | None = None
    attempts: list[Attempt] = []


class Stats(ApiModel):
    runs: int
    succeeded: int
    failed: int
    consecutive_failures: int = 0
    success_rate: float | None = None
    average_duration_ms: float | None = None
    p95_duration_ms: float | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None


ItemT = TypeVar("ItemT", bound=ApiModel)


@dataclass(frozen=True)
class Page(Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None
