"""Task definitions, one resource at a time: what is accepted, what is refused, and the words.

The registry Lambda receives properties the way CloudFormation sends them to a custom resource:
names in PascalCase and every scalar as a string. Most cases here are written that way.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronfleet import clock
from cronfleet.registry.definition import (
    DEFINITION_LIMIT_BYTES,
    MAX_JSON_DEPTH,
    PAYLOAD_LIMIT_BYTES,
    TASK_ITEM_RUNTIME_MARGIN_BYTES,
    TaskDefinition,
    largest_invoke_bytes,
    parse_task_definition,
    stored_definition_bytes,
)
from cronfleet.registry.problems import InvalidTaskDefinition, Problem
from cronfleet.registry.url_safety import address_refusal, url_refusal

LOGICAL_ID = "ExampleTask"
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:cronfleet-report"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cron-token-AbCdEf"


def function_task(**overrides: Any) -> dict[str, Any]:
    """A valid Function task, as CloudFormation would send it, with some properties changed."""
    properties: dict[str, Any] = {
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:cronfleet-registry",
        "Schedule": "0 9 * * 1-5",
        "Function": FUNCTION_ARN,
    }
    properties.update(overrides)
    return {key: value for key, value in properties.items() if value is not None}


def http_task(**http: Any) -> dict[str, Any]:
    """A valid Http task, with some Http properties changed."""
    target: dict[str, Any] = {"Url": "https://api.example.com/cron/daily-digest"}
    target.update(http)
    return function_task(Function=None, Http=target)


def problem_lines(properties: Any, logical_id: str = LOGICAL_ID) -> list[str]:
    with pytest.raises(InvalidTaskDefinition) as refused:
        parse_task_definition(logical_id, properties)
    return [str(problem) for problem in refused.value.problems]


# Each case: (properties, the field named in the problem, words its reason must contain).
BAD_DEFINITIONS = {
    "unknown timezone": (
        function_task(Timezone="Mars/Olympus"),
        "Timezone",
        ["unknown timezone", "Mars/Olympus"],
    ),
    "hour out of range": (function_task(Schedule="0 25 * * *"), "Schedule", ["hour", "25"]),
    "aws cron with * in both day fields": (
        function_task(Schedule="cron(0 9 * * * *)"),
        "Schedule",
        ["both", "day"],
    ),
    "aws cron with ? in both day fields": (
        function_task(Schedule="cron(0 9 ? * ? *)"),
        "Schedule",
        ["both", "?"],
    ),
    "seconds resolution": (
        function_task(Schedule="rate(30 seconds)"),
        "Schedule",
        ["one minute"],
    ),
    "both Function and Http": (
        function_task(Http={"Url": "https://api.example.com/cron"}),
        "Function",
        ["either Function or Http", "not both"],
    ),
    "neither Function nor Http": (
        function_task(Function=None),
        "Function",
        ["required", "Function", "Http"],
    ),
    "payload over the limit": (
        function_task(Payload={"blob": "x" * PAYLOAD_LIMIT_BYTES}),
        "Payload",
        ["makes a run's invoke event", f"limit of {PAYLOAD_LIMIT_BYTES} bytes"],
    ),
    "payload JSON text of an array": (
        function_task(Payload="[1, 2, 3]"),
        "Payload",
        ["must be a JSON object", "got a list"],
    ),
    "payload text that is not JSON": (
        function_task(Payload="{count: 5}"),
        "Payload",
        ["not valid JSON"],
    ),
    "plain http URL": (
        http_task(Url="http://api.example.com/cron"),
        "Http.Url",
        ["https://", "AllowInsecureHttp"],
    ),
    "ftp URL": (http_task(Url="ftp://files.example.com/x"), "Http.Url", ["https://", "ftp://"]),
    "instance metadata URL": (
        http_task(Url="https://169.254.169.254/latest/meta-data/"),
        "Http.Url",
        ["169.254.169.254", "metadata"],
    ),
    "instance metadata, IPv4-mapped IPv6": (
        http_task(Url="https://[::ffff:169.254.169.254]/latest/"),
        "Http.Url",
        ["metadata", "embedded"],
    ),
    "instance metadata even when private networks are allowed": (
        http_task(Url="https://[fd00:ec2::254]/latest/", AllowPrivateNetwork="true"),
        "Http.Url",
        ["metadata", "never"],
    ),
    "localhost URL": (
        http_task(Url="https://localhost:8443/cron"),
        "Http.Url",
        ["localhost", "local machine", "AllowPrivateNetwork"],
    ),
    "private address URL": (
        http_task(Url="https://10.0.0.1/cron"),
        "Http.Url",
        ["10.0.0.1", "private address", "AllowPrivateNetwork"],
    ),
    "loopback in decimal notation": (
        http_task(Url="https://2130706433/cron"),
        "Http.Url",
        ["loopback"],
    ),
    "credentials in the URL": (
        http_task(Url="https://cron:hunter2@api.example.com/run"),
        "Http.Url",
        ["credentials", "SecretArn"],
    ),
    "Authorization header": (
        http_task(Headers={"Authorization": "Bearer abc"}),
        "Http.Headers.Authorization",
        ["not allowed", "SecretArn"],
    ),
    "secret that is not a secret ARN": (
        http_task(SecretArn="arn:aws:s3:::my-bucket/token"),
        "Http.SecretArn",
        ["Secrets Manager", "SSM parameter", "arn:aws:s3:::my-bucket/token"],
    ),
    "body on a GET": (http_task(Body={"dryRun": True}), "Http.Body", ["POST", "GET"]),
    "status code out of range": (
        http_task(ExpectedStatus=["200", "700"]),
        "Http.ExpectedStatus[1]",
        ["between 100 and 599", "700"],
    ),
    "request timeout longer than the run": (
        function_task(Function=None, TimeoutSeconds="20", Http={"Url": "https://a.example/x"}),
        "Http.TimeoutSeconds",
        ["TimeoutSeconds (20)", "got 30"],
    ),
    "overlap sometimes": (
        function_task(Overlap="sometimes"),
        "Overlap",
        ["'allow', 'skip' or 'queue_one'", "sometimes"],
    ),
    "catchup maybe": (
        function_task(Catchup="maybe"),
        "Catchup.Policy",
        ["'latest', 'all' or 'none'", "maybe"],
    ),
    "catchup bound of zero runs": (
        function_task(Catchup={"Policy": "all", "MaxRuns": "0"}),
        "Catchup.MaxRuns",
        ["between 1 and 1000", "got 0"],
    ),
    "no attempt at all": (
        function_task(Retry={"MaxAttempts": "0"}),
        "Retry.MaxAttempts",
        ["between 1 and 10", "got 0"],
    ),
    "too many attempts": (
        function_task(Retry={"MaxAttempts": "11"}),
        "Retry.MaxAttempts",
        ["between 1 and 10", "got 11"],
    ),
    "retry sooner than the tick": (
        function_task(Retry={"IntervalSeconds": "30"}),
        "Retry.IntervalSeconds",
        ["between 60 and 86400 seconds", "got 30", "one-minute tick"],
    ),
    "maximum delay below the interval": (
        function_task(Retry={"IntervalSeconds": "600", "MaxDelaySeconds": "300"}),
        "Retry.MaxDelaySeconds",
        ["at least IntervalSeconds (600)", "got 300"],
    ),
    "unknown jitter strategy": (
        function_task(Retry={"JitterStrategy": "DECORRELATED"}),
        "Retry.JitterStrategy",
        ["'FULL' or 'NONE'"],
    ),
    "timeout of zero": (
        function_task(TimeoutSeconds="0"),
        "TimeoutSeconds",
        ["between 1 and 900 seconds", "got 0"],
    ),
    "timeout over Lambda's limit": (
        function_task(TimeoutSeconds="901"),
        "TimeoutSeconds",
        ["between 1 and 900 seconds", "got 901"],
    ),
    "timeout that is not a number": (
        function_task(TimeoutSeconds="ten minutes"),
        "TimeoutSeconds",
        ["whole number", "ten minutes"],
    ),
    "enabled perhaps": (function_task(Enabled="perhaps"), "Enabled", ["true or false", "perhaps"]),
    "misspelt property": (
        function_task(Timezon="Europe/Paris"),
        "Timezon",
        ["unknown field", "did you mean 'Timezone'?"],
    ),
    "property in the wrong case": (
        function_task(timezone="Europe/Paris"),
        "timezone",
        ["unknown field", "did you mean 'Timezone'?"],
    ),
    "misspelt nested property": (
        function_task(Retry={"MaxAttemps": "2"}),
        "Retry.MaxAttemps",
        ["unknown field", "did you mean 'MaxAttempts'?"],
    ),
    "description too long": (
        function_task(Description="d" * 513),
        "Description",
        ["at most 512 characters", "got 513"],
    ),
    "name with a space": (
        function_task(Name="daily digest"),
        "Name",
        ["letters, digits", "'daily digest'"],
    ),
    "name too long": (function_task(Name="n" * 65), "Name", ["1 to 64"]),
    "too many tags": (
        function_task(Tags={f"tag{i}": "x" for i in range(51)}),
        "Tags",
        ["at most 50 entries", "got 51"],
    ),
    "tag value too long": (
        function_task(Tags={"owner": "o" * 257}),
        "Tags.owner",
        ["at most 256 characters"],
    ),
    "alerts topic that is not a topic": (
        function_task(Alerts={"TopicArn": "arn:aws:sqs:eu-west-1:123456789012:alerts"}),
        "Alerts.TopicArn",
        ["SNS topic ARN"],
    ),
    "function that is no function name": (
        function_task(Function="my function!"),
        "Function",
        ["Lambda function name or ARN"],
    ),
}


@pytest.mark.parametrize(
    ("properties", "field", "words"),
    list(BAD_DEFINITIONS.values()),
    ids=list(BAD_DEFINITIONS),
)
def test_a_bad_definition_is_refused_with_one_line_naming_the_field_and_the_reason(
    properties: dict[str, Any], field: str, words: list[str]
) -> None:
    # When
    lines = problem_lines(properties)

    # Then: exactly one problem, on the field, saying why
    assert len(lines) == 1, lines
    prefix = f"{LOGICAL_ID}.{field}: "
    assert lines[0].startswith(prefix), lines[0]
    for word in words:
        assert word in lines[0].removeprefix(prefix), lines[0]


def test_the_catalogue_of_bad_definitions_is_at_least_thirty_cases() -> None:
    assert len(BAD_DEFINITIONS) >= 30


def test_every_problem_of_a_resource_is_reported_at_once() -> None:
    # Given a definition wrong in six places, one of them the missing target
    properties = function_task(
        Function=None,
        Timezone="Mars/Olympus",
        Schedule="0 25 * * *",
        Enabled="perhaps",
        Retry={"MaxAttempts": "11", "IntervalSeconds": "30"},
        Overlap="sometimes",
    )

    # When
    lines = problem_lines(properties)

    # Then
    assert [line.split(":", 1)[0] for line in lines] == [
        "ExampleTask.Enabled",
        "ExampleTask.Function",
        "ExampleTask.Overlap",
        "ExampleTask.Retry.IntervalSeconds",
        "ExampleTask.Retry.MaxAttempts",
        "ExampleTask.Schedule",
        "ExampleTask.Timezone",
    ]


def test_a_schedule_is_checked_even_when_its_timezone_is_unknown() -> None:
    lines = problem_lines(function_task(Timezone="Nowhere/City", Schedule="rate(5 minutes)"))

    assert [line.split(":", 1)[0] for line in lines] == ["ExampleTask.Timezone"]


def test_a_logical_id_that_cannot_be_a_task_id_asks_for_a_name() -> None:
    lines = problem_lines(function_task(), logical_id="T" * 70)

    assert len(lines) == 1
    assert lines[0].startswith(f"{'T' * 70}.Name: defaults to the logical id, which must be")
    assert lines[0].endswith("; set Name")


def test_properties_that_are_not_a_mapping_are_refused() -> None:
    assert problem_lines("Schedule: rate(5 minutes)") == [
        "ExampleTask: properties must be a mapping, got 'Schedule: rate(5 minutes)'"
    ]


def test_problems_read_as_logical_id_field_and_reason_and_sort_that_way() -> None:
    problems = [
        Problem("TaskB", "Schedule", "bad"),
        Problem("TaskA", "Timezone", "bad"),
        Problem("TaskA", "", "properties must be a mapping"),
        Problem("TaskA", "Retry.MaxAttempts", "bad"),
    ]

    error = InvalidTaskDefinition(problems)

    assert str(error).splitlines() == [
        "TaskA: properties must be a mapping",
        "TaskA.Retry.MaxAttempts: bad",
        "TaskA.Timezone: bad",
        "TaskB.Schedule: bad",
    ]


# --- Good definitions ---------------------------------------------------------------------------


def test_a_minimal_definition_gets_the_documented_defaults() -> None:
    # When
    task = parse_task_definition(LOGICAL_ID, {"Schedule": "rate(5 minutes)", "Function": "report"})

    # Then
    assert task.task_id == LOGICAL_ID
    assert task.timezone == "UTC"
    assert task.enabled is True
    assert task.description == ""
    assert task.timeout_seconds is None
    assert task.payload == {}
    assert task.overlap == "skip"
    assert (task.catchup.policy, task.catchup.max_lateness_seconds, task.catchup.max_runs) == (
        "latest",
        3600,
        24,
    )
    retry = task.retry
    assert (
        retry.max_attempts,
        retry.interval_seconds,
        retry.backoff_rate,
        retry.max_delay_seconds,
        retry.jitter_strategy,
    ) == (3, 60, 2.0, 3600, "FULL")
    alerts = task.alerts
    assert (alerts.after_consecutive_failures, alerts.on_recovery) == (3, True)
    assert (alerts.slower_than_seconds, alerts.topic_arn, alerts.realert_after_seconds) == (
        None,
        None,
        None,
    )
    assert task.tags == {}


def test_strings_from_cloudformation_become_numbers_and_booleans() -> None:
    # Given properties as CloudFormation delivers them: every scalar a string
    properties = function_task(
        Enabled="false",
        TimeoutSeconds="120",
        Retry={"MaxAttempts": "3", "BackoffRate": "1.5", "MaxDelaySeconds": "600"},
        Catchup={"Policy": "all", "MaxRuns": "12"},
        Alerts={"OnRecovery": "False", "SlowerThanSeconds": "90"},
    )

    # When
    task = parse_task_definition(LOGICAL_ID, properties)

    # Then
    assert task.enabled is False
    assert task.timeout_seconds == 120
    assert (task.retry.max_attempts, task.retry.backoff_rate) == (3, 1.5)
    assert task.retry.max_delay_seconds == 600
    assert (task.catchup.policy, task.catchup.max_runs) == ("all", 12)
    assert (task.alerts.on_recovery, task.alerts.slower_than_seconds) == (False, 90)


def test_a_payload_given_as_json_text_keeps_its_types() -> None:
    as_text = parse_task_definition(
        LOGICAL_ID, function_task(Payload='{"count": 5, "dryRun": false, "tags": ["a"]}')
    )
    # A mapping arrives with its scalars turned into strings by CloudFormation.
    as_mapping = parse_task_definition(
        LOGICAL_ID, function_task(Payload={"count": "5", "dryRun": "false", "tags": ["a"]})
    )

    assert as_text.payload == {"count": 5, "dryRun": False, "tags": ["a"]}
    assert as_mapping.payload == {"count": "5", "dryRun": "false", "tags": ["a"]}


def test_a_payload_is_measured_as_lambda_receives_it_with_non_ascii_escaped() -> None:
    # Given the size of a run's invoke event with an empty filler, and "é", which the invoke's
    # JSON escapes to the 6 bytes \u00e9 (2 bytes in UTF-8)
    def at(filler: str) -> dict[str, Any]:
        return function_task(Payload={"p": filler})

    frame = largest_invoke_bytes(parse_task_definition(LOGICAL_ID, at("")))
    escaped, plain = divmod(PAYLOAD_LIMIT_BYTES - frame, 6)
    filler = "\u00e9" * escaped + "x" * plain

    # When the event is exactly at the limit, and one byte over it
    task = parse_task_definition(LOGICAL_ID, at(filler))
    over = problem_lines(at(filler + "x"))

    # Then the first is accepted, and the second refused, with its size
    assert largest_invoke_bytes(task) == PAYLOAD_LIMIT_BYTES
    assert len(over) == 1
    assert over[0].startswith(
        f"ExampleTask.Payload: makes a run's invoke event {PAYLOAD_LIMIT_BYTES + 1} bytes, over "
        f"Lambda's limit of {PAYLOAD_LIMIT_BYTES} bytes (256 KiB) for an asynchronous invoke"
    )
    # UTF-8 would have counted it at about a third of that
    assert len(json.dumps({"p": filler}, ensure_ascii=False).encode()) < PAYLOAD_LIMIT_BYTES / 2


def test_catchup_accepts_the_short_string_form() -> None:
    task = parse_task_definition(LOGICAL_ID, function_task(Catchup="none"))

    assert task.catchup.policy == "none"
    assert task.catchup.max_lateness_seconds == 3600


def test_an_http_task_gets_its_defaults() -> None:
    task = parse_task_definition(LOGICAL_ID, http_task(SecretArn=SECRET_ARN))

    assert task.function is None
    assert task.http is not None
    assert task.http.method == "GET"
    assert task.http.timeout_seconds == 30
    assert task.http.expected_status == list(range(200, 300))
    assert task.http.secret_arn == SECRET_ARN
    assert (task.http.allow_insecure_http, task.http.allow_private_network) == (False, False)


def test_an_http_task_can_opt_in_to_plain_http_and_private_networks() -> None:
    properties = http_task(
        Url="http://10.0.0.1:8080/cron",
        AllowInsecureHttp="true",
        AllowPrivateNetwork="true",
        Method="POST",
        Body='{"dryRun": true}',
        ExpectedStatus="204",
        SuccessField="success",
        SecretArn="arn:aws:ssm:eu-west-1:123456789012:parameter/cron/token",
        Headers={"X-Cron-Source": "cronfleet"},
    )

    task = parse_task_definition(LOGICAL_ID, properties)

    assert task.http is not None
    assert task.http.body == {"dryRun": True}
    assert task.http.expected_status == [204]
    assert task.http.success_field == "success"


def test_cloudformation_bookkeeping_properties_are_accepted_and_not_kept() -> None:
    task = parse_task_definition(LOGICAL_ID, function_task(ServiceTimeout="300"))

    stored = task.model_dump(by_alias=True)

    assert task.service_timeout == 300
    assert "ServiceToken" not in stored
    assert "ServiceTimeout" not in stored


def test_a_stored_definition_validates_again_to_the_same_task() -> None:
    original = parse_task_definition(
        LOGICAL_ID,
        http_task(Method="POST", Body={"kind": "digest"}, Headers={"X-Source": "cronfleet"}),
    )

    stored = json.loads(original.model_dump_json(by_alias=True))
    again = TaskDefinition.model_validate(stored)

    assert again.model_dump() == original.model_dump()


def test_the_compiled_schedule_runs_in_the_task_timezone() -> None:
    task = parse_task_definition(
        LOGICAL_ID, function_task(Schedule="0 9 * * 1-5", Timezone="Europe/Paris")
    )

    assert "Europe/Paris" in task.compiled_schedule().describe()


# --- Literal URL hosts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "refusal"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("0.0.0.0", "the unspecified address"),
        ("169.254.169.254", "the cloud instance metadata service"),
        ("fd00:ec2::254", "the cloud instance metadata service"),
        ("169.254.10.10", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a private address"),
        ("100.64.0.1", "not a public address"),
        ("224.0.0.1", "a multicast address"),
        ("::ffff:10.0.0.1", "a private address (embedded in ::ffff:10.0.0.1)"),
        ("64:ff9b::7f00:1", "a loopback address (embedded in 64:ff9b::7f00:1)"),
        ("2002:a9fe:a9fe::", "the cloud instance metadata service (embedded in 2002:a9fe:a9fe::)"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_addresses_a_task_may_not_call_by_default(address: str, refusal: str | None) -> None:
    assert address_refusal(ip_address(address)) == refusal


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://0x7f.1/", "loopback"),
        ("https://0177.0.0.1/", "loopback"),
        ("https://127.1/", "loopback"),
        ("https://localhost./", "local machine"),
        ("https://admin.localhost/", "local machine"),
        ("https://[::]/", "unspecified"),
        ("https://999.1.1.1/", "not a valid IPv4 address"),
        ("https:///path-only", "must name a host"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://example.com/a b", "whitespace"),
        ("api.example.com/cron", "no scheme"),
    ],
)
def test_urls_refused_for_what_their_host_or_shape_says(url: str, words: str) -> None:
    refusal = url_refusal(url, allow_insecure_http=False, allow_private_network=False)

    assert refusal is not None
    assert words in refusal


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/cron?job=digest",
        "https://8.8.8.8/",
        "https://[2606:4700:4700::1111]:8443/",
        "https://1password.example/",  # a name whose first label is numeric-looking
    ],
)
def test_public_urls_pass_the_definition_time_check(url: str) -> None:
    assert url_refusal(url, allow_insecure_http=False, allow_private_network=False) is None


# --- What a run sends, and what the registry stores ---------------------------------------------


class RecordingInvoker:
    """Keeps each invoke's Payload as LambdaInvoker would send it."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def invoke(self, function: str, event: dict[str, Any]) -> None:
        self.payloads.append(json.dumps(event, separators=(",", ":")).encode())


@pytest.mark.parametrize(
    "properties",
    [
        function_task(Payload={"text": "caf\u00e9 \U0001f600", "n": 5}),
        http_task(Method="POST", Body={"b": "\u00e9"}, Headers={"X-Source": "cronfleet"}),
    ],
    ids=["function task", "http task"],
)
def test_the_measured_invoke_event_is_never_smaller_than_what_the_dispatcher_sends(
    properties: dict[str, Any],
) -> None:
    # Given a task, and the invoke events the dispatcher builds for every attempt and trigger
    from cronfleet.lifecycle.attempts import Attempts
    from cronfleet.lifecycle.states import Trigger
    from cronfleet.store import TaskRecord

    definition = parse_task_definition(LOGICAL_ID, properties)
    task = TaskRecord(LOGICAL_ID, definition.model_dump_json(by_alias=True, exclude_none=True))
    invoker = RecordingInvoker()
    # The store is touched only when an invoke fails, which the recording invoker never does.
    attempts = Attempts(None, invoker, http_function="cronfleet-http")  # type: ignore[arg-type]
    now = datetime(2026, 11, 2, 8, tzinfo=UTC)
    for attempt in range(1, 11):
        for trigger in Trigger:
            attempts.invoke(task, "2026-11-02T08:00:00Z", attempt, trigger, now)

    # When the registry measures the task's largest invoke event
    measured = largest_invoke_bytes(definition)

    # Then every event sent fits in it, and the largest differs only by the longest manual
    # slot suffix the envelope accepts ('#manual-' and 32 hex digits)
    sizes = [len(payload) for payload in invoker.payloads]
    assert max(sizes) <= measured
    assert measured - max(sizes) == len("#manual-") + 32
    assert all(json.loads(payload)["cronfleet"]["payload"] for payload in invoker.payloads)


def test_the_largest_definition_every_limit_admits_still_fits_its_task_item() -> None:
    # Given a task at the edge of every limit: 4-byte characters wherever text is free, and a
    # payload that fills the invoke event
    wide = "\U0001f600"
    properties = function_task(
        Description=wide * 512,
        Tags={f"{chr(0x1F600 + n)}{wide * 127}": wide * 256 for n in range(50)},
        Alerts={"TopicArn": "arn:aws:sns:eu-west-1:123456789012:" + "t" * 256},
    )
    frame = largest_invoke_bytes(parse_task_definition(LOGICAL_ID, properties))
    properties["Payload"] = {"p": "x" * (PAYLOAD_LIMIT_BYTES - frame - len('{"p":""}') + 2)}

    # When
    task = parse_task_definition(LOGICAL_ID, properties)

    # Then it is admitted, with the room DynamoDB's item needs for the task's state to spare
    assert largest_invoke_bytes(task) == PAYLOAD_LIMIT_BYTES
    assert stored_definition_bytes(task) <= DEFINITION_LIMIT_BYTES
    assert DEFINITION_LIMIT_BYTES + TASK_ITEM_RUNTIME_MARGIN_BYTES == 400 * 1024


def test_json_nested_64_levels_is_accepted_and_65_refused() -> None:
    def nested(depth: int) -> str:
        return '{"a":' * depth + "1" + "}" * depth

    task = parse_task_definition(LOGICAL_ID, function_task(Payload=nested(64)))
    lines = problem_lines(function_task(Payload=nested(65)))

    assert json.dumps(task.payload).count("{") == 64
    assert lines == [
        f"ExampleTask.Payload: nests deeper than {MAX_JSON_DEPTH} levels of objects and arrays"
    ]


def test_payload_text_is_read_without_json_s_silent_liberties() -> None:
    # Python's json takes NaN and keeps the last of two equal keys; pydantic would then store
    # NaN as null. Both are refused, each with its reason.
    assert problem_lines(function_task(Payload='{"a": NaN}')) == [
        "ExampleTask.Payload: holds NaN, which is not JSON (no JSON number is NaN or infinite)"
    ]
    assert problem_lines(function_task(Payload='{"a": 1, "a": 2}')) == [
        "ExampleTask.Payload: has the key 'a' twice in one object: JSON would silently keep "
        "only the last"
    ]


# --- Admitted now, not judged again later -------------------------------------------------------


def test_a_one_time_task_is_admitted_before_its_time_and_refused_after_it() -> None:
    properties = function_task(Schedule="at(2026-12-25T09:00:00)", Timezone="Europe/Paris")
    before = datetime(2026, 12, 25, 7, 59, tzinfo=UTC)
    after = datetime(2026, 12, 25, 8, 0, tzinfo=UTC)

    task = parse_task_definition(LOGICAL_ID, properties, now=before)
    with pytest.raises(InvalidTaskDefinition) as refused:
        parse_task_definition(LOGICAL_ID, properties, now=after)

    assert task.compiled_schedule().next_run(before) == after
    assert [str(p) for p in refused.value.problems] == [
        "ExampleTask.Schedule: 'at(2026-12-25T09:00:00)' is in the past (2026-12-25T08:00:00Z; "
        "it is now 2026-12-25T08:00:00Z): a one-time task would never run; set a time in the "
        "future"
    ]


def test_the_time_of_admission_defaults_to_cronfleet_s_clock() -> None:
    properties = function_task(Schedule="at(2030-01-01T00:00:00)")
    clock.use(lambda: datetime(2031, 1, 1, tzinfo=UTC))
    try:
        lines = problem_lines(properties)
    finally:
        clock.use(None)

    assert len(lines) == 1
    assert "it is now 2031-01-01T00:00:00Z" in lines[0]


def test_a_stored_definition_is_not_judged_again_by_the_rules_of_admission() -> None:
    # Given a one-time task admitted before its run, stored, and read back after it
    admitted = parse_task_definition(
        LOGICAL_ID,
        function_task(Schedule="at(2026-12-25T09:00:00)"),
        now=datetime(2026, 12, 1, tzinfo=UTC),
    )
    stored = admitted.model_dump_json(by_alias=True, exclude_none=True)

    # When it is read back, as the dispatcher does, long after its run
    clock.use(lambda: datetime(2027, 6, 1, tzinfo=UTC))
    try:
        again = TaskDefinition.model_validate_json(stored)
    finally:
        clock.use(None)

    # Then it still loads, and simply has no more runs
    assert again.model_dump() == admitted.model_dump()
    assert again.compiled_schedule().next_run(datetime(2027, 6, 1, tzinfo=UTC)) is None


# --- Headers the HTTP caller can send -----------------------------------------------------------


def can_be_sent(name: str, value: str) -> bool:
    """Whether httpx and h11, the HTTP caller's client, put this header on the wire."""
    import h11
    import httpx

    try:
        request = httpx.Request("GET", "https://api.example.com/cron", headers={name: value})
        connection = h11.Connection(h11.CLIENT)
        connection.send(h11.Request(method="GET", target="/cron", headers=request.headers.raw))
    except (h11.LocalProtocolError, UnicodeEncodeError):
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(
    name=st.text(st.characters(max_codepoint=0x17F, exclude_categories=["Cs"]), max_size=12),
    value=st.text(st.characters(max_codepoint=0x17F, exclude_categories=["Cs"]), max_size=12),
)
def test_every_header_the_registry_admits_can_be_sent(name: str, value: str) -> None:
    try:
        parse_task_definition(LOGICAL_ID, http_task(Headers={name: value}))
    except InvalidTaskDefinition:
        return
    assert can_be_sent(name, value), (name, value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Cron", " padded"),
        ("X-Cron", "trail\t"),
        ("X-Cron", "a\x00b"),
        ("X-Cron", "a\nb"),
        ("X-Cron", "caf\u00e9"),
        ("X Cron", "1"),
        ("", "1"),
        ("X-Cr\u00f6n", "1"),
    ],
)
def test_headers_the_http_client_would_refuse_are_refused_at_admission(
    name: str, value: str
) -> None:
    assert not can_be_sent(name, value)
    assert len(problem_lines(http_task(Headers={name: value}))) == 1
