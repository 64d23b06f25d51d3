"""The field rules of a definition: limits, JSON decoding, ids, timezones, ARNs and headers.

Each rule is a pydantic validator that raises with a reason a person can act on.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from cronfleet.lifecycle.slots import MANUAL_MARK
from cronfleet.lifecycle.states import LAMBDA_MAX_TIMEOUT_SECONDS, Trigger
from cronfleet.schedule import ScheduleError, load_timezone

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
LONGEST_SLOT = f"2026-01-01T00:00:00Z{MANUAL_MARK}{'f' * 32}"
LONGEST_TRIGGER = max(Trigger, key=len)
ADMITTED_AT = "admitted_at"
# Set when the schedule is the one the task was already admitted with (a deploy that changes
# something else): a one-time task that has run keeps deploying, though its at() is past.
SCHEDULE_KNOWN = "schedule_known"

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
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def invalid(reason: str) -> PydanticCustomError:
    # The reason travels in the context, so braces in echoed user input are never formatted.
    return PydanticCustomError("invalid_value", "{reason}", {"reason": reason})


def between(low: float, high: float, *, unit: str = "", why: str = "") -> AfterValidator:
    """A range check whose message gives both bounds and, where it is not obvious, why."""

    def check(value: float) -> float:
        if low <= value <= high:
            return value
        because = f": {why}" if why else ""
        raise invalid(f"must be between {low} and {high}{unit}, got {value}{because}")

    return AfterValidator(check)


_LAMBDA_TIMEOUT_RANGE = between(1, LAMBDA_MAX_TIMEOUT_SECONDS, unit=" seconds")


def describe(value: object) -> str:
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
        raise _RefusedJson(f"holds {describe(text)}, too large for a JSON number to carry")
    return number


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_JSON_NUMBER_DIGITS:
        raise _RefusedJson(
            f"holds a number of {len(text.lstrip('-'))} digits; at most {_MAX_JSON_NUMBER_DIGITS}"
        )
    return int(text)


def _too_deep() -> PydanticCustomError:
    return invalid(f"nests deeper than {MAX_JSON_DEPTH} levels of objects and arrays")


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
            raise invalid(f"holds {item}, which is not JSON (no JSON number is NaN or infinite)")
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
        raise invalid(
            f"holds a lone surrogate ({code}) at position {exc.start + 1}, which is not Unicode "
            "text: write the character itself, or both halves of its surrogate pair"
        ) from None


def decode_json_text(value: object) -> object:
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
        raise invalid(str(exc)) from None
    except RecursionError:
        # Python's parser recurses once per level; this is only nesting far beyond the limit.
        raise _too_deep() from None
    except json.JSONDecodeError as exc:
        raise invalid(f"is not valid JSON text: {exc}") from None
    return _checked_json(decoded)


def decode_payload(value: object) -> object:
    # A JSON string is accepted on purpose. CloudFormation turns every scalar under a custom
    # resource's properties into a string, so `Payload: {count: 5}` reaches the registry as
    # {"count": "5"}; `Payload: '{"count": 5}'` reaches it as text that decodes to a number.
    decoded = decode_json_text(value)
    if not isinstance(decoded, Mapping):
        got = describe(decoded)
        raise invalid(f"must be a JSON object (a mapping, or JSON text of one), got {got}")
    return decoded


def one_or_many(value: object) -> object:
    return [value] if isinstance(value, str | int) else value


def check_task_id(value: str) -> str:
    if not TASK_ID_PATTERN.fullmatch(value):
        raise invalid(
            "must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit, "
            f"got {describe(value)}"
        )
    return value


@functools.cache
def _installed_zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(value: str) -> str:
    try:
        load_timezone(value)
    except ScheduleError as exc:
        raise invalid(str(exc)) from None
    # On a case-insensitive file system (macOS) ZoneInfo loads 'europe/london' too; Lambda's
    # does not, so the deploy would fail where this check passed.
    installed = _installed_zone_names()
    if installed and value not in installed:
        same_but_case = {name.lower(): name for name in installed}.get(value.lower())
        hint = f"; did you mean '{same_but_case}'?" if same_but_case else ""
        raise invalid(f"unknown timezone {describe(value)}: IANA names are case-sensitive{hint}")
    return value


def check_function(value: str) -> str:
    if not _FUNCTION_PATTERN.fullmatch(value):
        raise invalid(f"must be a Lambda function name or ARN, got {describe(value)}")
    return value


def check_secret_arn(value: str) -> str:
    if not _SECRET_ARN_PATTERN.fullmatch(value):
        raise invalid(
            "must be a Secrets Manager secret ARN (arn:aws:secretsmanager:...:secret:...) or an "
            f"SSM parameter ARN (arn:aws:ssm:...:parameter/...), got {describe(value)}"
        )
    return value


def check_topic_arn(value: str) -> str:
    if not _TOPIC_ARN_PATTERN.fullmatch(value):
        raise invalid(f"must be an SNS topic ARN (arn:aws:sns:...), got {describe(value)}")
    return value


def check_header_name(name: str) -> str:
    # What h11, httpx's HTTP/1.1 layer, sends: an RFC 9110 token, in ASCII.
    if not name:
        raise invalid("a header name must not be empty")
    if not _HEADER_NAME_PATTERN.fullmatch(name):
        bad = next(char for char in name if not _HEADER_NAME_PATTERN.fullmatch(char))
        raise invalid(
            f"is not a valid HTTP header name: {bad!r} is not allowed (a name is ASCII letters, "
            "digits and !#$%&'*+-.^_`|~)"
        )
    why = _FORBIDDEN_HEADERS.get(name.lower())
    if why:
        raise invalid(f"header not allowed: {why}")
    return name


def check_header_value(value: str) -> str:
    # httpx encodes header values as ASCII, and h11 refuses NUL, CR, LF, vertical tab and form
    # feed, and whitespace at either end. Other control characters it lets through, but RFC 9110
    # forbids them and servers refuse them. A CR or LF would also start a header of its own.
    for position, char in enumerate(value, 1):
        if char == "\t" or " " <= char <= "~":
            continue
        if char in "\r\n":
            raise invalid(
                f"must not contain line breaks or control characters: {char!r} at position "
                f"{position} would end the header and start another"
            )
        if ord(char) < 0x20 or ord(char) == 0x7F:
            raise invalid(
                f"must not contain line breaks or control characters: {char!r} at position "
                f"{position}"
            )
        raise invalid(
            f"must be ASCII: the HTTP client cannot send {char!r} at position {position} "
            "(percent-encode it, or send it in the Body)"
        )
    if value != value.strip(" \t"):
        raise invalid("must not start or end with a space or tab: HTTP refuses them there")
    return value


def check_success_field(value: str) -> str:
    if not _JSON_FIELD_PATTERN.fullmatch(value):
        raise invalid(f"must be the name of a field in the JSON response, got {describe(value)}")
    return value


def admitted_at(info: ValidationInfo) -> datetime | None:
    """The time a definition is admitted at, or None when a stored one is read back."""
    context = info.context
    moment = context.get(ADMITTED_AT) if isinstance(context, Mapping) else None
    return moment if isinstance(moment, datetime) else None


def json_bytes(value: object, *, ascii_only: bool) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=ascii_only).encode())


def shorthand(key: str) -> Callable[[object], object]:
    """Accept `Field: value` as short for `Field: {key: value}`."""

    def expand(value: object) -> object:
        return {key: value} if isinstance(value, str) else value

    return expand
