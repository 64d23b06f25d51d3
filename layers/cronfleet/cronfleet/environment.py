"""The environment a cronfleet function runs in, validated once when the function starts.

Logic never reads ``os.environ``: handlers build this model and pass what it holds along. A
missing or malformed variable fails the cold start with a message naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cronfleet.errors import CronfleetError


class InvalidEnvironment(CronfleetError, ValueError):
    """A required variable is missing or malformed; the message names it."""


class CronfleetEnvironment(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    tasks_table_name: str = Field(alias="TASKS_TABLE_NAME", min_length=1)
    executions_table_name: str = Field(alias="EXECUTIONS_TABLE_NAME", min_length=1)
    history_retention_days: int = Field(90, alias="HISTORY_RETENTION_DAYS", ge=1, le=3650)
    # Which task a direct invoke (a plain event, as `sam local invoke` sends) runs as.
    task_id: str | None = Field(None, alias="CRONFLEET_TASK_ID")
    # The built-in function that runs tasks declared with an Http target.
    http_function_name: str | None = Field(None, alias="HTTP_FUNCTION_NAME")
    # Alerts: published to this topic when set; logged instead when absent (local runs).
    alert_topic_arn: str | None = Field(None, alias="ALERT_TOPIC_ARN")
    # Console links in alerts: the dashboard's name and the region everything lives in.
    dashboard_name: str | None = Field(None, alias="DASHBOARD_NAME")
    aws_region: str | None = Field(None, alias="AWS_REGION")
    # The registry: the ARN prefixes of the secrets the HTTP function may read (see
    # cronfleet.registry.secrets), so a task naming another secret fails its deploy.
    http_secret_arn_prefixes: str | None = Field(None, alias="HTTP_SECRET_ARN_PREFIXES")
    # The registry: the on-failure destination every task function must have (see
    # cronfleet.registry.wiring). Unset (`sam local invoke`), the wiring is not checked.
    recorder_function_arn: str | None = Field(None, alias="RECORDER_FUNCTION_ARN")
    # The schedules API: the task functions a schedule may name (a JSON object, logical id to
    # function name), and how many schedules one tenant may have.
    api_task_functions: str | None = Field(None, alias="API_TASK_FUNCTIONS")
    api_tenant_quota: int = Field(1000, alias="API_TENANT_QUOTA", ge=1)
    # The dispatch shards (the DispatchShards parameter): how many partitions of the due index
    # a task's next run is spread over, each read by its own dispatch worker.
    dispatch_shards: int = Field(8, alias="DISPATCH_SHARDS", ge=1, le=64)
    # The dispatcher: the function that dispatches one shard of a busy tick.
    dispatch_worker_function: str | None = Field(None, alias="DISPATCH_WORKER_FUNCTION")
    # Run metrics are emitted only when a namespace is configured; with a task dimension only
    # when per-task metrics are on (the PerTaskMetrics parameter), at $0.30 a metric-month.
    metrics_namespace: str | None = Field(None, alias="POWERTOOLS_METRICS_NAMESPACE")
    per_task_metrics: bool = Field(False, alias="CRONFLEET_PER_TASK_METRICS")
    # The share of healthy runs the dispatcher has X-Ray trace (cronfleet.tracing); retries,
    # manual runs and the runs of a failing task are always traced.
    trace_sample_rate: float = Field(1.0, alias="CRONFLEET_TRACE_SAMPLE_RATE", ge=0, le=1)
    # Set by Lambda: the function's name and the log group it logs to, its own by default, or
    # the one the stack's functions share (the links in alerts point at it).
    function_name: str | None = Field(None, alias="AWS_LAMBDA_FUNCTION_NAME")
    log_group_name: str | None = Field(None, alias="AWS_LAMBDA_LOG_GROUP_NAME")
    # Set by the local runtime only: the local stack's state directory, and the command that
    # runs `cronfleet` there, for alerts to link to the run's files instead of a console.
    local_state_dir: str | None = Field(None, alias="CRONFLEET_LOCAL_STATE_DIR")
    local_cli: str = Field("cronfleet", alias="CRONFLEET_LOCAL_CLI", min_length=1)

    @field_validator(
        "alert_topic_arn",
        "dashboard_name",
        "aws_region",
        "metrics_namespace",
        "http_function_name",
        "http_secret_arn_prefixes",
        "recorder_function_arn",
        "function_name",
        "log_group_name",
        "local_state_dir",
        "api_task_functions",
        "dispatch_worker_function",
        mode="before",
    )
    @classmethod
    def _empty_is_absent(cls, value: object) -> object:
        # CloudFormation can only set a variable, not leave it out: "" means "not configured".
        return None if isinstance(value, str) and not value.strip() else value

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> CronfleetEnvironment:
        try:
            return cls.model_validate(dict(os.environ if environ is None else environ))
        except ValidationError as exc:
            problems = "; ".join(
                f"{error['loc'][0]}: {error['msg']}" for error in exc.errors(include_url=False)
            )
            raise InvalidEnvironment(f"invalid function environment: {problems}") from exc


@lru_cache(maxsize=1)
def current_environment() -> CronfleetEnvironment:
    return CronfleetEnvironment.load()
