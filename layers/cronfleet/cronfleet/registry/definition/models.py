"""The models of a task definition, mirroring the resource's CloudFormation properties, and
the rules that judge a definition as a whole (its target, the sizes it sends and stores)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from cronfleet.lifecycle.envelope import ExecutionEnvelope
from cronfleet.lifecycle.slots import MANUAL_MARK, slot_key
from cronfleet.lifecycle.states import LAMBDA_MAX_TIMEOUT_SECONDS
from cronfleet.registry.definition.checks import (
    BODY_LIMIT_BYTES,
    DEFINITION_LIMIT_BYTES,
    HEADERS_LIMIT_BYTES,
    LONGEST_SLOT,
    LONGEST_TRIGGER,
    MAX_ATTEMPTS,
    METHODS_WITH_BODY,
    PAYLOAD_LIMIT_BYTES,
    SCHEDULE_KNOWN,
    TASK_ITEM_LIMIT_BYTES,
    TASK_ITEM_RUNTIME_MARGIN_BYTES,
    CatchupMode,
    HttpMethod,
    JitterStrategy,
    OverlapPolicy,
    admitted_at,
    between,
    check_function,
    check_header_name,
    check_header_value,
    check_secret_arn,
    check_success_field,
    check_task_id,
    check_timezone,
    check_topic_arn,
    decode_json_text,
    decode_payload,
    invalid,
    json_bytes,
    one_or_many,
    shorthand,
)
from cronfleet.registry.url_safety import url_refusal
from cronfleet.schedule import Schedule, ScheduleError, parse_schedule
from cronfleet.schedule.expression import AtSchedule, CronSchedule

# The task id that H in a schedule is hashed from while the Name itself is invalid (and reported).
_STAND_IN_TASK_ID = "task"


class _Properties(BaseModel):
    """CloudFormation properties: PascalCase aliases, nothing unknown, immutable once valid."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)


class RetryPolicy(_Properties):
    """Retries within one slot. Names follow Step Functions' Retry, which AWS users know."""

    max_attempts: Annotated[
        int, between(1, MAX_ATTEMPTS, why="total attempts, including the first")
    ] = Field(3, alias="MaxAttempts")
    interval_seconds: Annotated[
        int,
        between(60, 86400, unit=" seconds", why="retries are dispatched on the one-minute tick"),
    ] = Field(60, alias="IntervalSeconds")
    backoff_rate: Annotated[float, between(1.0, 10.0)] = Field(2.0, alias="BackoffRate")
    max_delay_seconds: Annotated[int, between(60, 86400, unit=" seconds")] = Field(
        3600, alias="MaxDelaySeconds", validate_default=True
    )
    jitter_strategy: JitterStrategy = Field("FULL", alias="JitterStrategy")

    @field_validator("max_delay_seconds")
    @classmethod
    def _not_below_interval(cls, value: int, info: ValidationInfo) -> int:
        interval = info.data.get("interval_seconds")
        if interval is not None and value < interval:
            default = " (the default; set MaxDelaySeconds as well)" if value == 3600 else ""
            raise invalid(f"must be at least IntervalSeconds ({interval}), got {value}{default}")
        return value


class CatchupPolicy(_Properties):
    """What to run for the slots missed while the scheduler was down."""

    policy: CatchupMode = Field("latest", alias="Policy")
    max_lateness_seconds: Annotated[int, between(60, 604800, unit=" seconds")] = Field(
        3600, alias="MaxLatenessSeconds"
    )
    # The bound of `all`: a week of downtime on a per-minute task must not become 10,080 runs.
    max_runs: Annotated[int, between(1, 1000)] = Field(24, alias="MaxRuns")


class AlertPolicy(_Properties):
    """When the stack's SNS topic (or TopicArn) hears about this task."""

    after_consecutive_failures: Annotated[int, between(1, 100)] = Field(
        3, alias="AfterConsecutiveFailures"
    )
    on_recovery: bool = Field(True, alias="OnRecovery")
    slower_than_seconds: Annotated[int, between(1, 86400, unit=" seconds")] | None = Field(
        None, alias="SlowerThanSeconds"
    )
    topic_arn: Annotated[str, AfterValidator(check_topic_arn)] | None = Field(
        None, alias="TopicArn"
    )
    realert_after_seconds: Annotated[int, between(60, 604800, unit=" seconds")] | None = Field(
        None, alias="RealertAfterSeconds"
    )


HeaderName = Annotated[str, AfterValidator(check_header_name)]
HeaderValue = Annotated[str, StringConstraints(max_length=8192), AfterValidator(check_header_value)]
StatusCode = Annotated[int, between(100, 599)]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128)]
TagValue = Annotated[str, StringConstraints(max_length=256)]


class HttpTarget(_Properties):
    """A call made by the built-in HTTP caller instead of a task function."""

    # The two opt-ins come first: the Url check below reads them.
    allow_insecure_http: bool = Field(False, alias="AllowInsecureHttp")
    allow_private_network: bool = Field(False, alias="AllowPrivateNetwork")
    url: str = Field(alias="Url")
    method: HttpMethod = Field("GET", alias="Method")
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict, alias="Headers", max_length=50
    )
    body: Annotated[JsonValue, BeforeValidator(decode_json_text)] = Field(None, alias="Body")
    secret_arn: Annotated[str, AfterValidator(check_secret_arn)] | None = Field(
        None, alias="SecretArn"
    )
    timeout_seconds: Annotated[int, between(1, LAMBDA_MAX_TIMEOUT_SECONDS, unit=" seconds")] = (
        Field(30, alias="TimeoutSeconds")
    )
    expected_status: Annotated[list[StatusCode], BeforeValidator(one_or_many)] = Field(
        default_factory=lambda: list(range(200, 300)), alias="ExpectedStatus", min_length=1
    )
    # Seed APIs answer 200 with {"success": false, ...} on failure; this names that flag.
    success_field: Annotated[str, AfterValidator(check_success_field)] | None = Field(
        None, alias="SuccessField"
    )

    @field_validator("url")
    @classmethod
    def _safe_url(cls, url: str, info: ValidationInfo) -> str:
        refusal = url_refusal(
            url,
            allow_insecure_http=info.data.get("allow_insecure_http", False),
            allow_private_network=info.data.get("allow_private_network", False),
        )
        if refusal:
            raise invalid(refusal)
        return url

    @field_validator("headers")
    @classmethod
    def _sendable_headers(cls, headers: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        first: dict[str, str] = {}
        for name in headers:
            if name.lower() in first:
                raise invalid(
                    f"'{first[name.lower()]}' and '{name}' are one header (names ignore case): "
                    "it would be sent twice"
                )
            first[name.lower()] = name
        size = sum(len(f"{name}: {value}\r\n") for name, value in headers.items())
        if admitted_at(info) and size > HEADERS_LIMIT_BYTES:
            raise invalid(
                f"are {size} bytes as sent ('Name: value' lines); at most {HEADERS_LIMIT_BYTES} "
                "bytes (8 KiB): servers refuse larger request headers, and the HTTP caller adds "
                "Host, User-Agent and the SecretArn's token"
            )
        return headers

    @field_validator("body")
    @classmethod
    def _body_needs_method(cls, body: JsonValue, info: ValidationInfo) -> JsonValue:
        method = info.data.get("method")
        if body is not None and method is not None and method not in METHODS_WITH_BODY:
            raise invalid(f"only POST, PUT and PATCH send a body; Method is {method}")
        if admitted_at(info) is None or body is None:
            return body
        # Measured as httpx sends it: compact JSON, UTF-8, non-ASCII unescaped.
        size = json_bytes(body, ascii_only=False)
        if size > BODY_LIMIT_BYTES:
            raise invalid(
                f"is {size} bytes as sent (compact JSON, UTF-8); at most {BODY_LIMIT_BYTES} "
                "bytes (100 KiB, the smallest default body limit of common servers)"
            )
        return body


class TaskDefinition(_Properties):
    """One scheduled task, as declared by a ``Custom::ScheduledTask`` resource."""

    # CloudFormation sends these with every custom resource; they say nothing about the task.
    service_token: str | None = Field(None, alias="ServiceToken", exclude=True)
    service_timeout: Annotated[int, between(1, 3600, unit=" seconds")] | None = Field(
        None, alias="ServiceTimeout", exclude=True
    )

    name: Annotated[str, AfterValidator(check_task_id)] = Field(alias="Name")
    description: str = Field("", alias="Description", max_length=512)
    enabled: bool = Field(True, alias="Enabled")
    # Timezone precedes Schedule: the schedule is checked in it.
    timezone: Annotated[str, AfterValidator(check_timezone)] = Field("UTC", alias="Timezone")
    schedule: str = Field(alias="Schedule")
    # None means the target's own timeout (the function's Timeout, or Http.TimeoutSeconds).
    timeout_seconds: (
        Annotated[
            int, between(1, LAMBDA_MAX_TIMEOUT_SECONDS, unit=" seconds", why="Lambda's limit")
        ]
        | None
    ) = Field(None, alias="TimeoutSeconds")
    function: Annotated[str, AfterValidator(check_function)] | None = Field(None, alias="Function")
    http: HttpTarget | None = Field(None, alias="Http")
    # After Http: the Payload check reads it.
    payload: Annotated[dict[str, JsonValue], BeforeValidator(decode_payload)] = Field(
        default_factory=dict, alias="Payload"
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy, alias="Retry")
    overlap: OverlapPolicy = Field("skip", alias="Overlap")
    catchup: Annotated[CatchupPolicy, BeforeValidator(shorthand("Policy"))] = Field(
        default_factory=CatchupPolicy, alias="Catchup"
    )
    alerts: AlertPolicy = Field(default_factory=AlertPolicy, alias="Alerts")
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, alias="Tags", max_length=50)

    @property
    def task_id(self) -> str:
        return self.name

    def attempt_timeout_seconds(self) -> int:
        """An attempt's deadline: TimeoutSeconds, else the HTTP timeout, else Lambda's maximum."""
        if self.timeout_seconds is not None:
            return self.timeout_seconds
        if self.http is not None:
            return self.http.timeout_seconds
        return LAMBDA_MAX_TIMEOUT_SECONDS

    def compiled_schedule(self) -> Schedule:
        """The schedule engine's view of Schedule in Timezone (both already validated), with
        any ``H`` hashed from the task id."""
        return parse_schedule(self.schedule, self.timezone, hash_key=self.task_id)

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, expression: str, info: ValidationInfo) -> str:
        # An invalid Timezone is reported on its own; the expression is still checked, in UTC.
        # So is an invalid Name: H is then checked with a stand-in id, rather than reported as
        # having none.
        try:
            schedule = parse_schedule(
                expression,
                info.data.get("timezone", "UTC"),
                hash_key=info.data.get("name", _STAND_IN_TASK_ID),
            )
        except ScheduleError as exc:
            raise invalid(str(exc)) from None
        now = admitted_at(info)
        known = isinstance(info.context, Mapping) and info.context.get(SCHEDULE_KNOWN)
        if now is not None and not known and schedule.next_run(now) is None:
            raise invalid(_never_runs_again(schedule, now))
        return expression

    @field_validator("payload")
    @classmethod
    def _payload_keeps_its_keys(
        cls, payload: dict[str, JsonValue], info: ValidationInfo
    ) -> dict[str, JsonValue]:
        if "http" in payload and info.data.get("http") is not None:
            raise invalid(
                "must not have a key 'http' in an Http task: the HTTP caller receives its target "
                "there, which would replace the key's value; rename the key"
            )
        return payload

    @model_validator(mode="after")
    def _target_deadline_and_sizes(self, info: ValidationInfo) -> Self:
        problems: list[InitErrorDetails] = []
        target_problem = target_refusal(function=self.function, http=self.http)
        if target_problem:
            problems.append(_line_error(("Function",), self.function, target_problem))
        deadline = self.timeout_seconds
        request_timeout = self.http.timeout_seconds if self.http is not None else None
        if deadline is not None and request_timeout is not None and request_timeout > deadline:
            problems.append(
                _line_error(
                    ("Http", "TimeoutSeconds"),
                    request_timeout,
                    f"must not exceed the task's TimeoutSeconds ({deadline}), "
                    f"got {request_timeout}: the run would be stopped first",
                )
            )
        if admitted_at(info) is not None:
            problems += _size_problems(self)
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self


def _never_runs_again(schedule: Schedule, now: datetime) -> str:
    when = f"it is now {slot_key(now)}"
    if isinstance(schedule, AtSchedule):
        return (
            f"'{schedule.expression}' is in the past ({slot_key(schedule.run_at)}; {when}): "
            "a one-time task would never run; set a time in the future"
        )
    if isinstance(schedule, CronSchedule) and schedule.spec.years:
        return (
            f"'{schedule.expression}' has no run after now ({when}): its last year, "
            f"{max(schedule.spec.years)}, has no runs left"
        )
    return f"'{schedule.expression}' has no run after now ({when})"


def invoke_payload(
    definition: TaskDefinition, payload: dict[str, JsonValue] | None = None
) -> dict[str, JsonValue]:
    """What a run's function receives as its payload: an Http task's target travels in it.

    The dispatcher builds the same (``cronfleet.lifecycle.attempts``); ``payload`` replaces
    the task's own, as a manual run's does.
    """
    payload = definition.payload if payload is None else payload
    if definition.http is None:
        return payload
    target = definition.http.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {**payload, "http": target}


def largest_invoke_bytes(definition: TaskDefinition) -> int:
    """The size of the largest invoke event a run of this task can send, as Lambda counts it.

    The event is the execution envelope serialised as the dispatcher's invoker does (compact
    JSON, non-ASCII escaped), with the longest values its other fields can take.
    """
    envelope = ExecutionEnvelope(
        task_id=definition.task_id,
        slot=LONGEST_SLOT,
        attempt=MAX_ATTEMPTS,
        deadline=LONGEST_SLOT.partition(MANUAL_MARK)[0],
        trigger=LONGEST_TRIGGER,
        payload=invoke_payload(definition),
    )
    return len(json.dumps(envelope.to_event(), separators=(",", ":")).encode())


def stored_definition_bytes(definition: TaskDefinition) -> int:
    """What the definition takes of its task item: the attribute's name and its JSON value."""
    stored = definition.model_dump_json(by_alias=True, exclude_none=True)
    return len("definition") + len(stored.encode())


def _size_problems(definition: TaskDefinition) -> list[InitErrorDetails]:
    problems: list[InitErrorDetails] = []
    invoke_bytes = largest_invoke_bytes(definition)
    if invoke_bytes > PAYLOAD_LIMIT_BYTES:
        parts = _largest_parts(definition, in_invoke=True)
        breakdown = ", ".join(f"{'.'.join(path)} {size}" for path, size in parts)
        problems.append(
            _line_error(
                parts[0][0],
                None,
                f"makes a run's invoke event {invoke_bytes} bytes, over Lambda's limit of "
                f"{PAYLOAD_LIMIT_BYTES} bytes (256 KiB) for an asynchronous invoke; sizes are "
                f"of the JSON Lambda receives, where a non-ASCII character takes 6 or 12 bytes "
                f"(largest parts, in bytes: {breakdown})",
            )
        )
    stored_bytes = stored_definition_bytes(definition)
    # The invoke limit is the smaller one for what both hold: say the stored size only when it
    # is the one to fix.
    if not problems and stored_bytes > DEFINITION_LIMIT_BYTES:
        parts = _largest_parts(definition, in_invoke=False)
        problems.append(
            _line_error(
                parts[0][0],
                None,
                f"makes the stored definition {stored_bytes} bytes; the task's DynamoDB item "
                f"holds at most {DEFINITION_LIMIT_BYTES} bytes of it ({TASK_ITEM_LIMIT_BYTES} "
                f"bytes per item, less {TASK_ITEM_RUNTIME_MARGIN_BYTES} for the task's state)",
            )
        )
    return problems


def _largest_parts(
    definition: TaskDefinition, *, in_invoke: bool
) -> list[tuple[tuple[str, ...], int]]:
    """The properties that weigh most, heaviest first (at most three), as each JSON counts them.

    ``in_invoke`` weighs only what a run's invoke event carries (Payload and Http), escaped as
    Lambda receives it; otherwise every property, in UTF-8 as DynamoDB stores it.
    """
    dumped = definition.model_dump(mode="json", by_alias=True, exclude_none=True)
    http = dumped.pop("Http", {})
    candidates: list[tuple[tuple[str, ...], Any]] = [
        ((name,), value) for name, value in dumped.items()
    ]
    candidates += [(("Http", name), value) for name, value in http.items()]
    if in_invoke:
        candidates = [(path, value) for path, value in candidates if path[0] in ("Payload", "Http")]
    parts = [(path, json_bytes(value, ascii_only=in_invoke)) for path, value in candidates]
    return sorted(parts, key=lambda part: -part[1])[:3]


def target_refusal(*, function: object, http: object) -> str | None:
    if function is not None and http is not None:
        return "set either Function or Http, not both"
    if function is None and http is None:
        return "required: set Function (a Lambda function of this stack) or Http (a URL to call)"
    return None


def _line_error(loc: tuple[str, ...], value: object, reason: str) -> InitErrorDetails:
    return {"type": invalid(reason), "loc": loc, "input": value}
