"""Task definitions: what one ``Custom::ScheduledTask`` resource declares, validated.

The models mirror the resource's CloudFormation properties (PascalCase aliases, snake_case
attributes). Two callers share them: the registry Lambda, on the properties CloudFormation
resolved at deploy time, and ``cronfleet validate``, on the template before any deploy. Both go
through :func:`parse_task_definition`, so a definition is judged the same way in both places.

CloudFormation hands every scalar property of a custom resource to its handler as a string
(``TimeoutSeconds: 60`` arrives as ``"60"``, ``Enabled: false`` as ``"false"``), so fields use
pydantic's lax mode, which turns such strings into numbers and booleans and still rejects
garbage. Validation is all-or-nothing: either a complete, valid :class:`TaskDefinition`, or
:class:`InvalidTaskDefinition` listing every problem of the resource at once, so a person fixes
a definition in one round trip rather than one deploy per mistake.

Some rules judge a definition at the moment it is admitted rather than its shape: a schedule
must still have a run after now (an ``at()`` in the past would never run), and what a run sends
and what the registry stores must fit Lambda's and DynamoDB's limits. :func:`parse_task_definition`
applies them, with the time of the check; a definition read back from the tasks table is not
judged again by them, so a task stored before a limit was added keeps loading.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, Self, get_args
from zoneinfo import available_timezones

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
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from cronfleet import clock
from cronfleet.lifecycle.envelope import ExecutionEnvelope
from cronfleet.lifecycle.slots import MANUAL_MARK, slot_key
from cronfleet.lifecycle.states import LAMBDA_MAX_TIMEOUT_SECONDS, Trigger
from cronfleet.registry.problems import InvalidTaskDefinition, Problem
from cronfleet.registry.url_safety import url_refusal
from cronfleet.schedule import Schedule, ScheduleError, load_timezone, parse_schedule
from cronfleet.schedule.expression import AtSchedule, CronSchedule

# Lambda's limit on the Payload of an asynchronous invoke (InvocationType=Event), which carries a
# run's whole execution envelope. It is measured on the JSON the dispatcher sends, where every
# non-ASCII character is escaped (6 bytes, or 12 for one outside the Basic Multilingual Plane).
PAYLOAD_LIMIT_BYTES = 256 * 1024
# An Http task's request body as the HTTP caller sends it (compact JSON, UTF-8): 100 KiB is the
# smallest default among the servers cron routes run on (Express's JSON body limit, "100kb").
BODY_LIMIT_BYTES = 100 * 1024
# An Http task's own headers, as "Name: value" lines: API Gateway accepts 10 KB of request
# headers and Node.js 16 KiB, and the caller adds Host, User-Agent and the SecretArn's token.
HEADERS_LIMIT_BYTES = 8 * 1024
# DynamoDB's item limit, and what the task item keeps free for everything but the definition:
# counters, the 64 duration buckets, timestamps, alert times, and the set of in-flight slots,
# which catch-up `all` with overlap `allow` can fill with up to MaxRuns (1000) slot keys of 20 to
# 36 bytes. 64 KiB holds all of that with room to spare.
TASK_ITEM_LIMIT_BYTES = 400 * 1024
TASK_ITEM_RUNTIME_MARGIN_BYTES = 64 * 1024
DEFINITION_LIMIT_BYTES = TASK_ITEM_LIMIT_BYTES - TASK_ITEM_RUNTIME_MARGIN_BYTES
# No payload a person writes nests this deep, and the parsers on the way (Python's json,
# pydantic, the task's own code) have recursion limits not far beyond it.
MAX_JSON_DEPTH = 64
MAX_ATTEMPTS = 10

# The longest values a run's envelope carries besides the payload: a manual slot with the
# longest suffix the envelope accepts (its deadline is as long as the time before the suffix),
# the last attempt, the longest trigger name.
_LONGEST_SLOT = f"2026-01-01T00:00:00Z{MANUAL_MARK}{'f' * 32}"
_LONGEST_TRIGGER = max(Trigger, key=len)
_ADMITTED_AT = "admitted_at"
# Set when the schedule is the one the task was already admitted with (a deploy that changes
# something else): a one-time task that has run keeps deploying, though its at() is past.
_SCHEDULE_KNOWN = "schedule_known"

# Task ids appear in DynamoDB keys, log lines, metric dimensions and CLI commands. Every pattern
# here is used with fullmatch: with re.match, '$' would also accept a trailing newline.
TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

# Lambda's own FunctionName pattern (Invoke API): a name, a partial ARN or a full ARN, with an
# optional version or alias qualifier.
_FUNCTION_PATTERN = re.compile(
    r"(arn:aws[a-zA-Z-]*:lambda:)?([a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]:)?([0-9]{12}:)?"
    r"(function:)?[a-zA-Z0-9_.-]{1,140}(:(\$LATEST|[a-zA-Z0-9_-]{1,128}))?"
)
_SECRET_ARN_PATTERN = re.compile(
    r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+"
    r"|arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:parameter/[A-Za-z0-9/_.-]+"
)
_TOPIC_ARN_PATTERN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}")
# RFC 9110 token characters.
_HEADER_NAME_PATTERN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_JSON_FIELD_PATTERN = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]{0,127}")
# Python refuses to turn longer digit strings into an int (sys.int_info.default_max_str_digits).
_MAX_JSON_NUMBER_DIGITS = 4300

# Secrets never sit in a template (they would be readable by anyone who can read the stack),
# and the HTTP client computes the framing headers itself.
_FORBIDDEN_HEADERS = {
    "authorization": "secrets must not sit in the template; put the token in SecretArn",
    "proxy-authorization": "secrets must not sit in the template; put the token in SecretArn",
    "host": "the host comes from Url",
    "content-length": "the HTTP client computes it",
    "transfer-encoding": "the HTTP client computes it",
}

OverlapPolicy = Literal["allow", "skip", "queue_one"]
CatchupMode = Literal["latest", "all", "none"]
JitterStrategy = Literal["FULL", "NONE"]
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _invalid(reason: str) -> PydanticCustomError:
    # The reason travels in the context, so braces in echoed user input are never formatted.
    return PydanticCustomError("invalid_value", "{reason}", {"reason": reason})


def _between(low: float, high: float, *, unit: str = "", why: str = "") -> AfterValidator:
    """A range check whose message gives both bounds and, where it is not obvious, why."""

    def check(value: float) -> float:
        if low <= value <= high:
            return value
        because = f": {why}" if why else ""
        raise _invalid(f"must be between {low} and {high}{unit}, got {value}{because}")

    return AfterValidator(check)


_LAMBDA_TIMEOUT_RANGE = _between(1, LAMBDA_MAX_TIMEOUT_SECONDS, unit=" seconds")


def _describe(value: object) -> str:
    """Show a rejected input briefly; a person needs to recognise it, not to read all of it."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "null"
    return repr(value)


class _RefusedJson(ValueError):
    """JSON text that would not survive the trip to the task; the message is for people."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) < len(keys):
        twice = next(key for index, key in enumerate(keys) if key in keys[:index])
        raise _RefusedJson(
            f"has the key {twice!r} twice in one object: JSON would silently keep only the last"
        )
    return dict(pairs)


def _not_a_json_number(constant: str) -> float:
    raise _RefusedJson(f"holds {constant}, which is not JSON (no JSON number is NaN or infinite)")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _RefusedJson(f"holds {_describe(text)}, too large for a JSON number to carry")
    return number


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_JSON_NUMBER_DIGITS:
        raise _RefusedJson(
            f"holds a number of {len(text.lstrip('-'))} digits; at most {_MAX_JSON_NUMBER_DIGITS}"
        )
    return int(text)


def _too_deep() -> PydanticCustomError:
    return _invalid(f"nests deeper than {MAX_JSON_DEPTH} levels of objects and arrays")


def _checked_json(value: object) -> object:
    """Refuse what a JSON document cannot carry faithfully, without recursing into it.

    A value may come from JSON text or from a mapping (a template's YAML, CloudFormation's
    event), so the walk is the same for both: nesting depth, NaN and infinities (pydantic would
    store them as null), and lone surrogates (not Unicode: DynamoDB and the invoke refuse them).
    """
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_unicode(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise _invalid(f"holds {item}, which is not JSON (no JSON number is NaN or infinite)")
        elif isinstance(item, Mapping | list | tuple):
            if depth > MAX_JSON_DEPTH:
                raise _too_deep()
            children = [*item.keys(), *item.values()] if isinstance(item, Mapping) else item
            pending.extend((child, depth + 1) for child in children)
    return value


def _check_unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = f"U+{ord(text[exc.start]):04X}"
        raise _invalid(
            f"holds a lone surrogate ({code}) at position {exc.start + 1}, which is not Unicode "
            "text: write the character itself, or both halves of its surrogate pair"
        ) from None


def _decode_json_text(value: object) -> object:
    """Read a string as JSON text, so a value declared as a JSON string keeps its types."""
    if not isinstance(value, str):
        return _checked_json(value)
    try:
        decoded = json.loads(
            value,
            object_pairs_hook=_unique_keys,
            parse_constant=_not_a_json_number,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except _RefusedJson as exc:
        raise _invalid(str(exc)) from None
    except RecursionError:
        # Python's parser recurses once per level; this is only nesting far beyond the limit.
        raise _too_deep() from None
    except json.JSONDecodeError as exc:
        raise _invalid(f"is not valid JSON text: {exc}") from None
    return _checked_json(decoded)


def _decode_payload(value: object) -> object:
    # A JSON string is accepted on purpose. CloudFormation turns every scalar under a custom
    # resource's properties into a string, so `Payload: {count: 5}` reaches the registry as
    # {"count": "5"}; `Payload: '{"count": 5}'` reaches it as text that decodes to a number.
    decoded = _decode_json_text(value)
    if not isinstance(decoded, Mapping):
        got = _describe(decoded)
        raise _invalid(f"must be a JSON object (a mapping, or JSON text of one), got {got}")
    return decoded


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str | int) else value


def _check_task_id(value: str) -> str:
    if not TASK_ID_PATTERN.fullmatch(value):
        raise _invalid(
            "must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit, "
            f"got {_describe(value)}"
        )
    return value


@functools.cache
def _installed_zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_timezone(value: str) -> str:
    try:
        load_timezone(value)
    except ScheduleError as exc:
        raise _invalid(str(exc)) from None
    # On a case-insensitive file system (macOS) ZoneInfo loads 'europe/london' too; Lambda's
    # does not, so the deploy would fail where this check passed.
    installed = _installed_zone_names()
    if installed and value not in installed:
        same_but_case = {name.lower(): name for name in installed}.get(value.lower())
        hint = f"; did you mean '{same_but_case}'?" if same_but_case else ""
        raise _invalid(f"unknown timezone {_describe(value)}: IANA names are case-sensitive{hint}")
    return value


def _check_function(value: str) -> str:
    if not _FUNCTION_PATTERN.fullmatch(value):
        raise _invalid(f"must be a Lambda function name or ARN, got {_describe(value)}")
    return value


def _check_secret_arn(value: str) -> str:
    if not _SECRET_ARN_PATTERN.fullmatch(value):
        raise _invalid(
            "must be a Secrets Manager secret ARN (arn:aws:secretsmanager:...:secret:...) or an "
            f"SSM parameter ARN (arn:aws:ssm:...:parameter/...), got {_describe(value)}"
        )
    return value


def _check_topic_arn(value: str) -> str:
    if not _TOPIC_ARN_PATTERN.fullmatch(value):
        raise _invalid(f"must be an SNS topic ARN (arn:aws:sns:...), got {_describe(value)}")
    return value


def _check_header_name(name: str) -> str:
    # What h11, httpx's HTTP/1.1 layer, sends: an RFC 9110 token, in ASCII.
    if not name:
        raise _invalid("a header name must not be empty")
    if not _HEADER_NAME_PATTERN.fullmatch(name):
        bad = next(char for char in name if not _HEADER_NAME_PATTERN.fullmatch(char))
        raise _invalid(
            f"is not a valid HTTP header name: {bad!r} is not allowed (a name is ASCII letters, "
            "digits and !#$%&'*+-.^_`|~)"
        )
    why = _FORBIDDEN_HEADERS.get(name.lower())
    if why:
        raise _invalid(f"header not allowed: {why}")
    return name


def _check_header_value(value: str) -> str:
    # httpx encodes header values as ASCII, and h11 refuses NUL, CR, LF, vertical tab and form
    # feed, and whitespace at either end. Other control characters it lets through, but RFC 9110
    # forbids them and servers refuse them. A CR or LF would also start a header of its own.
    for position, char in enumerate(value, 1):
        if char == "\t" or " " <= char <= "~":
            continue
        if char in "\r\n":
            raise _invalid(
                f"must not contain line breaks or control characters: {char!r} at position "
                f"{position} would end the header and start another"
            )
        if ord(char) < 0x20 or ord(char) == 0x7F:
            raise _invalid(
                f"must not contain line breaks or control characters: {char!r} at position "
                f"{position}"
            )
        raise _invalid(
            f"must be ASCII: the HTTP client cannot send {char!r} at position {position} "
            "(percent-encode it, or send it in the Body)"
        )
    if value != value.strip(" \t"):
        raise _invalid("must not start or end with a space or tab: HTTP refuses them there")
    return value


def _check_success_field(value: str) -> str:
    if not _JSON_FIELD_PATTERN.fullmatch(value):
        raise _invalid(f"must be the name of a field in the JSON response, got {_describe(value)}")
    return value


def _admitted_at(info: ValidationInfo) -> datetime | None:
    """The time a definition is admitted at, or None when a stored one is read back."""
    context = info.context
    moment = context.get(_ADMITTED_AT) if isinstance(context, Mapping) else None
    return moment if isinstance(moment, datetime) else None


def _json_bytes(value: object, *, ascii_only: bool) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=ascii_only).encode())


def _shorthand(key: str) -> Callable[[object], object]:
    """Accept `Field: value` as short for `Field: {key: value}`."""

    def expand(value: object) -> object:
        return {key: value} if isinstance(value, str) else value

    return expand


class _Properties(BaseModel):
    """CloudFormation properties: PascalCase aliases, nothing unknown, immutable once valid."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)


class RetryPolicy(_Properties):
    """Retries within one slot. Names follow Step Functions' Retry, which AWS users know."""

    max_attempts: Annotated[
        int, _between(1, MAX_ATTEMPTS, why="total attempts, including the first")
    ] = Field(3, alias="MaxAttempts")
    interval_seconds: Annotated[
        int,
        _between(60, 86400, unit=" seconds", why="retries are dispatched on the one-minute tick"),
    ] = Field(60, alias="IntervalSeconds")
    backoff_rate: Annotated[float, _between(1.0, 10.0)] = Field(2.0, alias="BackoffRate")
    max_delay_seconds: Annotated[int, _between(60, 86400, unit=" seconds")] = Field(
        3600, alias="MaxDelaySeconds", validate_default=True
    )
    jitter_strategy: JitterStrategy = Field("FULL", alias="JitterStrategy")

    @field_validator("max_delay_seconds")
    @classmethod
    def _not_below_interval(cls, value: int, info: ValidationInfo) -> int:
        interval = info.data.get("interval_seconds")
        if interval is not None and value < interval:
            default = " (the default; set MaxDelaySeconds as well)" if value == 3600 else ""
            raise _invalid(f"must be at least IntervalSeconds ({interval}), got {value}{default}")
        return value


class CatchupPolicy(_Properties):
    """What to run for the slots missed while the scheduler was down."""

    policy: CatchupMode = Field("latest", alias="Policy")
    max_lateness_seconds: Annotated[int, _between(60, 604800, unit=" seconds")] = Field(
        3600, alias="MaxLatenessSeconds"
    )
    # The bound of `all`: a week of downtime on a per-minute task must not become 10,080 runs.
    max_runs: Annotated[int, _between(1, 1000)] = Field(24, alias="MaxRuns")


class AlertPolicy(_Properties):
    """When the stack's SNS topic (or TopicArn) hears about this task."""

    after_consecutive_failures: Annotated[int, _between(1, 100)] = Field(
        3, alias="AfterConsecutiveFailures"
    )
    on_recovery: bool = Field(True, alias="OnRecovery")
    slower_than_seconds: Annotated[int, _between(1, 86400, unit=" seconds")] | None = Field(
        None, alias="SlowerThanSeconds"
    )
    topic_arn: Annotated[str, AfterValidator(_check_topic_arn)] | None = Field(
        None, alias="TopicArn"
    )
    realert_after_seconds: Annotated[int, _between(60, 604800, unit=" seconds")] | None = Field(
        None, alias="RealertAfterSeconds"
    )


HeaderName = Annotated[str, AfterValidator(_check_header_name)]
HeaderValue = Annotated[
    str, StringConstraints(max_length=8192), AfterValidator(_check_header_value)
]
StatusCode = Annotated[int, _between(100, 599)]
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
    body: Annotated[JsonValue, BeforeValidator(_decode_json_text)] = Field(None, alias="Body")
    secret_arn: Annotated[str, AfterValidator(_check_secret_arn)] | None = Field(
        None, alias="SecretArn"
    )
    timeout_seconds: Annotated[int, _between(1, LAMBDA_MAX_TIMEOUT_SECONDS, unit=" seconds")] = (
        Field(30, alias="TimeoutSeconds")
    )
    expected_status: Annotated[list[StatusCode], BeforeValidator(_one_or_many)] = Field(
        default_factory=lambda: list(range(200, 300)), alias="ExpectedStatus", min_length=1
    )
    # Seed APIs answer 200 with {"success": false, ...} on failure; this names that flag.
    success_field: Annotated[str, AfterValidator(_check_success_field)] | None = Field(
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
            raise _invalid(refusal)
        return url

    @field_validator("headers")
    @classmethod
    def _sendable_headers(cls, headers: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        first: dict[str, str] = {}
        for name in headers:
            if name.lower() in first:
                raise _invalid(
                    f"'{first[name.lower()]}' and '{name}' are one header (names ignore case): "
                    "it would be sent twice"
                )
            first[name.lower()] = name
        size = sum(len(f"{name}: {value}\r\n") for name, value in headers.items())
        if _admitted_at(info) and size > HEADERS_LIMIT_BYTES:
            raise _invalid(
                f"are {size} bytes as sent ('Name: value' lines); at most {HEADERS_LIMIT_BYTES} "
                "bytes (8 KiB): servers refuse larger request headers, and the HTTP caller adds "
                "Host, User-Agent and the SecretArn's token"
            )
        return headers

    @field_validator("body")
    @classmethod
    def _body_needs_method(cls, body: JsonValue, info: ValidationInfo) -> JsonValue:
        method = info.data.get("method")
        if body is not None and method is not None and method not in _METHODS_WITH_BODY:
            raise _invalid(f"only POST, PUT and PATCH send a body; Method is {method}")
        if _admitted_at(info) is None or body is None:
            return body
        # Measured as httpx sends it: compact JSON, UTF-8, non-ASCII unescaped.
        size = _json_bytes(body, ascii_only=False)
        if size > BODY_LIMIT_BYTES:
            raise _invalid(
                f"is {size} bytes as sent (compact JSON, UTF-8); at most {BODY_LIMIT_BYTES} "
                "bytes (100 KiB, the smallest default body limit of common servers)"
            )
        return body


class TaskDefinition(_Properties):
    """One scheduled task, as declared by a ``Custom::ScheduledTask`` resource."""

    # CloudFormation sends these with every custom resource; they say nothing about the task.
    service_token: str | None = Field(None, alias="ServiceToken", exclude=True)
    service_timeout: Annotated[int, _between(1, 3600, unit=" seconds")] | None = Field(
        None, alias="ServiceTimeout", exclude=True
    )

    name: Annotated[str, AfterValidator(_check_task_id)] = Field(alias="Name")
    description: str = Field("", alias="Description", max_length=512)
    enabled: bool = Field(True, alias="Enabled")
    # Timezone precedes Schedule: the schedule is checked in it.
    timezone: Annotated[str, AfterValidator(_check_timezone)] = Field("UTC", alias="Timezone")
    schedule: str = Field(alias="Schedule")
    # None means the target's own timeout (the function's Timeout, or Http.TimeoutSeconds).
    timeout_seconds: (
        Annotated[
            int, _between(1, LAMBDA_MAX_TIMEOUT_SECONDS, unit=" seconds", why="Lambda's limit")
        ]
        | None
    ) = Field(None, alias="TimeoutSeconds")
    function: Annotated[str, AfterValidator(_check_function)] | None = Field(None, alias="Function")
    http: HttpTarget | None = Field(None, alias="Http")
    # After Http: the Payload check reads it.
    payload: Annotated[dict[str, JsonValue], BeforeValidator(_decode_payload)] = Field(
        default_factory=dict, alias="Payload"
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy, alias="Retry")
    overlap: OverlapPolicy = Field("skip", alias="Overlap")
    catchup: Annotated[CatchupPolicy, BeforeValidator(_shorthand("Policy"))] = Field(
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
        """The schedule engine's view of Schedule in Timezone (both already validated)."""
        return parse_schedule(self.schedule, self.timezone)

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, expression: str, info: ValidationInfo) -> str:
        # An invalid Timezone is reported on its own; the expression is still checked, in UTC.
        try:
            schedule = parse_schedule(expression, info.data.get("timezone", "UTC"))
        except ScheduleError as exc:
            raise _invalid(str(exc)) from None
        now = _admitted_at(info)
        known = isinstance(info.context, Mapping) and info.context.get(_SCHEDULE_KNOWN)
        if now is not None and not known and schedule.next_run(now) is None:
            raise _invalid(_never_runs_again(schedule, now))
        return expression

    @field_validator("payload")
    @classmethod
    def _payload_keeps_its_keys(
        cls, payload: dict[str, JsonValue], info: ValidationInfo
    ) -> dict[str, JsonValue]:
        if "http" in payload and info.data.get("http") is not None:
            raise _invalid(
                "must not have a key 'http' in an Http task: the HTTP caller receives its target "
                "there, which would replace the key's value; rename the key"
            )
        return payload

    @model_validator(mode="after")
    def _target_deadline_and_sizes(self, info: ValidationInfo) -> Self:
        problems: list[InitErrorDetails] = []
        target_problem = _target_problem(function=self.function, http=self.http)
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
        if _admitted_at(info) is not None:
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
        slot=_LONGEST_SLOT,
        attempt=MAX_ATTEMPTS,
        deadline=_LONGEST_SLOT.partition(MANUAL_MARK)[0],
        trigger=_LONGEST_TRIGGER,
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
    parts = [(path, _json_bytes(value, ascii_only=in_invoke)) for path, value in candidates]
    return sorted(parts, key=lambda part: -part[1])[:3]


def _target_problem(*, function: object, http: object) -> str | None:
    if function is not None and http is not None:
        return "set either Function or Http, not both"
    if function is None and http is None:
        return "required: set Function (a Lambda function of this stack) or Http (a URL to call)"
    return None


def _line_error(loc: tuple[str, ...], value: object, reason: str) -> InitErrorDetails:
    return {"type": _invalid(reason), "loc": loc, "input": value}


def parse_task_definition(
    logical_id: str,
    properties: Mapping[str, Any],
    *,
    now: datetime | None = None,
    schedule_known: bool = False,
) -> TaskDefinition:
    """Validate the properties of one ``Custom::ScheduledTask`` resource.

    ``properties`` are CloudFormation property names and values, as the registry receives them
    (scalars may be strings). ``Name`` defaults to ``logical_id``. ``now`` (default:
    :func:`cronfleet.clock.now`) is the time the definition is admitted at: its schedule must
    have a run after it, unless ``schedule_known``: the schedule (and timezone) are those the
    task was admitted with before. Raises :class:`InvalidTaskDefinition` carrying every
    problem of the resource.
    """
    if not isinstance(properties, Mapping):
        raise InvalidTaskDefinition(
            [Problem(logical_id, "", f"properties must be a mapping, got {_describe(properties)}")]
        )
    data = dict(properties)
    named_after_resource = "Name" not in data
    if named_after_resource:
        data["Name"] = logical_id
    try:
        # By alias only: CloudFormation property names are PascalCase, and a lower-case
        # `timezone` in a template is a typo to report, not a second spelling to accept.
        return TaskDefinition.model_validate(
            data,
            by_alias=True,
            by_name=False,
            context={
                _ADMITTED_AT: clock.now() if now is None else now,
                _SCHEDULE_KNOWN: schedule_known,
            },
        )
    except ValidationError as exc:
        problems = problems_from_validation_error(logical_id, exc)
    # The model checks its target only once every field is valid (pydantic runs model-level
    # checks last); checking the raw properties too reports a missing or doubled target along
    # with the other problems, rather than on the next deploy.
    target_problem = _target_problem(function=data.get("Function"), http=data.get("Http"))
    if target_problem:
        problems.append(Problem(logical_id, "Function", target_problem))
    if named_after_resource:
        problems = [
            Problem(
                p.logical_id,
                p.field_path,
                f"defaults to the logical id, which {p.reason}; set Name",
            )
            if p.field_path == "Name"
            else p
            for p in problems
        ]
    raise InvalidTaskDefinition(problems)


def problems_from_validation_error(logical_id: str, error: ValidationError) -> list[Problem]:
    """Turn pydantic's errors on a TaskDefinition into ``<LogicalId>.<Field>: <reason>`` lines."""
    problems = []
    for detail in error.errors(include_url=False):
        loc = _aliased(part for part in detail["loc"] if part != "[key]")
        if detail["type"] == "extra_forbidden":
            loc = (*loc[:-1], detail["loc"][-1])  # an unknown name stays as it was written
        problems.append(Problem(logical_id, _field_path(loc), _reason(detail, loc)))
    return sorted(set(problems))


def _field_path(loc: Sequence[str | int]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            part = part or '""'  # an empty key, such as an empty header name
            path += f".{part}" if path else part
    return path


def _reason(detail: ErrorDetails, loc: Sequence[str | int]) -> str:
    kind, got, ctx = detail["type"], detail["input"], detail.get("ctx", {})
    match kind:
        case "missing":
            return "required"
        case "extra_forbidden":
            return _unknown_field_reason(str(loc[-1]), _known_fields(loc[:-1]))
        case "bool_parsing" | "bool_type":
            return f"must be true or false, got {_describe(got)}"
        case "int_parsing" | "int_type" | "int_from_float":
            return f"must be a whole number, got {_describe(got)}"
        case "float_parsing" | "float_type" | "finite_number":
            return f"must be a number, got {_describe(got)}"
        case "string_type":
            return f"must be a string, got {_describe(got)}"
        case "string_unicode":
            return "holds a lone surrogate, which is not Unicode text: write the character itself"
        case "dict_type" | "model_type" | "model_attributes_type":
            return f"must be a mapping, got {_describe(got)}"
        case "list_type":
            return f"must be a list, got {_describe(got)}"
        case "literal_error":
            return f"must be one of {ctx['expected']}, got {_describe(got)}"
        case "string_too_short":
            return "must not be empty"
        case "string_too_long":
            return f"must be at most {ctx['max_length']} characters, got {len(got)}"
        case "too_long":
            return f"must have at most {ctx['max_length']} entries, got {len(got)}"
        case "too_short":
            return f"must have at least {ctx['min_length']} entry"
        case _:
            return detail["msg"]


def _aliased(loc: Iterable[str | int]) -> tuple[str | int, ...]:
    """Spell a location with property names (pydantic uses attribute names for defaults)."""
    model: type[BaseModel] | None = TaskDefinition
    path: list[str | int] = []
    for part in loc:
        field = _field_named(model, part) if model is not None else None
        if field is None:
            model = None
            path.append(part)
        else:
            model = _model_in(field.annotation)
            path.append(field.alias or part)
    return tuple(path)


def _field_named(model: type[BaseModel], part: str | int) -> FieldInfo | None:
    fields = model.model_fields
    if isinstance(part, int):
        return None
    return fields.get(part) or next((f for f in fields.values() if f.alias == part), None)


def _known_fields(loc: Sequence[str | int]) -> list[str]:
    """The property names accepted at a location, for did-you-mean suggestions."""
    model: type[BaseModel] | None = TaskDefinition
    for part in loc:
        field = _field_named(model, part) if model is not None else None
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    return [field.alias for field in model.model_fields.values() if field.alias]


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _unknown_field_reason(name: str, known: list[str]) -> str:
    same_but_case = {field.lower(): field for field in known}.get(name.lower())
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    guess = same_but_case or (close[0] if close else None)
    if guess:
        return f"unknown field; did you mean '{guess}'?"
    if known:
        return f"unknown field; expected one of {', '.join(sorted(known))}"
    return "unknown field"
