"""`cronfleet validate` on a catalogue of bad task definitions, each with its own message.

Every case appends one task to tests/unit/templates/stack.yaml, writes the template to disk and
runs the command as a person would. The command must exit 1 and print the specific
`ExampleTask.<Field>: <reason>` line.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cronfleet.cli import app

STACK = (Path(__file__).parent / "templates" / "stack.yaml").read_text(encoding="utf-8")
TARGET = "Function: !GetAtt ReportFunction.Arn"  # ReportFunction has Timeout: 120
HTTP = "Http: {Url: https://api.example.com/cron"

# case: (the task's properties as written in template.yaml, the field named, words of the reason)
CATALOGUE: dict[str, tuple[str, str, list[str]]] = {
    "unknown timezone": (
        f"Schedule: 0 9 * * *\nTimezone: Europe/Londn\n{TARGET}",
        "Timezone",
        ["unknown timezone 'Europe/Londn'", "did you mean 'Europe/London'"],
    ),
    "hour out of range": (
        f"Schedule: 0 25 * * *\n{TARGET}",
        "Schedule",
        ["hour field '25': 25 is out of range 0-23"],
    ),
    "star in both AWS day fields": (
        f"Schedule: cron(0 9 * * * *)\n{TARGET}",
        "Schedule",
        ["'*' in both day fields", "needs '?' in one of them"],
    ),
    "question mark in both AWS day fields": (
        f"Schedule: cron(0 9 ? * ? *)\n{TARGET}",
        "Schedule",
        ["cannot both be '?'"],
    ),
    "sub-minute rate": (
        f"Schedule: rate(30 seconds)\n{TARGET}",
        "Schedule",
        ["resolution is one minute"],
    ),
    "seconds field": (
        f"Schedule: '*/30 * * * * *'\n{TARGET}",
        "Schedule",
        ["got 6", "a seconds field is not supported"],
    ),
    "schedule that never runs": (
        f"Schedule: 0 0 30 2 *\n{TARGET}",
        "Schedule",
        ["matches no date"],
    ),
    "one-time run with seconds": (
        f"Schedule: at(2027-01-01T09:00:30)\n{TARGET}",
        "Schedule",
        ["seconds must be 00"],
    ),
    "unknown function": (
        "Schedule: rate(5 minutes)\nFunction: !GetAtt ReportFn.Arn",
        "Function",
        ["'ReportFn' is not a resource of this template"],
    ),
    "target is not a function": (
        "Schedule: rate(5 minutes)\nFunction: !GetAtt TasksTable.Arn",
        "Function",
        ["'TasksTable' is not a Lambda function", "AWS::DynamoDB::Table"],
    ),
    "function outside the template": (
        "Schedule: rate(5 minutes)\n"
        "Function: arn:aws:lambda:eu-west-1:210987654321:function:billing-export",
        "Function",
        ["not a function of this template", "only this stack's functions"],
    ),
    "both Function and Http": (
        f"Schedule: rate(5 minutes)\n{TARGET}\n{HTTP}}}",
        "Function",
        ["either Function or Http, not both"],
    ),
    "neither Function nor Http": (
        "Schedule: rate(5 minutes)",
        "Function",
        ["required: set Function", "or Http"],
    ),
    "payload over the limit": (
        f'Schedule: rate(5 minutes)\n{TARGET}\nPayload: \'{{"blob": "{"x" * 250_000}"}}\'',
        "Payload",
        ["is 250011 bytes", "the limit is 245760 bytes"],
    ),
    "payload JSON that is not an object": (
        f"Schedule: rate(5 minutes)\n{TARGET}\nPayload: '[1, 2]'",
        "Payload",
        ["must be a JSON object", "got a list"],
    ),
    "payload that is not JSON": (
        f"Schedule: rate(5 minutes)\n{TARGET}\nPayload: '{{oops'",
        "Payload",
        ["is not valid JSON text"],
    ),
    "plain http URL": (
        "Schedule: rate(5 minutes)\nHttp: {Url: http://api.example.com/cron}",
        "Http.Url",
        ["must use https://", "AllowInsecureHttp"],
    ),
    "metadata service URL": (
        "Schedule: rate(5 minutes)\nHttp: {Url: https://169.254.169.254/latest/meta-data/}",
        "Http.Url",
        ["169.254.169.254 is the cloud instance metadata service"],
    ),
    "localhost URL": (
        "Schedule: rate(5 minutes)\nHttp: {Url: https://localhost:8443/cron}",
        "Http.Url",
        ["localhost is the local machine", "AllowPrivateNetwork"],
    ),
    "private address URL": (
        "Schedule: rate(5 minutes)\nHttp: {Url: https://10.0.0.1/cron}",
        "Http.Url",
        ["10.0.0.1 is a private address"],
    ),
    "IPv4-mapped IPv6 loopback URL": (
        "Schedule: rate(5 minutes)\nHttp: {Url: 'https://[::ffff:127.0.0.1]/cron'}",
        "Http.Url",
        ["is a loopback address"],
    ),
    "credentials in the URL": (
        "Schedule: rate(5 minutes)\nHttp: {Url: 'https://user:pass@api.example.com/cron'}",
        "Http.Url",
        ["must not contain credentials", "SecretArn"],
    ),
    "Authorization header in the template": (
        f"Schedule: rate(5 minutes)\n{HTTP}, Headers: {{Authorization: Bearer abc}}}}",
        "Http.Headers.Authorization",
        ["secrets must not sit in the template", "SecretArn"],
    ),
    "secret that is not an ARN": (
        f"Schedule: rate(5 minutes)\n{HTTP}, SecretArn: my-secret}}",
        "Http.SecretArn",
        ["must be a Secrets Manager secret ARN", "got 'my-secret'"],
    ),
    "unknown overlap policy": (
        f"Schedule: rate(5 minutes)\n{TARGET}\nOverlap: sometimes",
        "Overlap",
        ["'allow', 'skip' or 'queue_one'", "got 'sometimes'"],
    ),
    "unknown catch-up policy": (
        f"Schedule: rate(5 minutes)\n{TARGET}\nCatchup: maybe",
        "Catchup.Policy",
        ["'latest', 'all' or 'none'", "got 'maybe'"],
    ),
    "no attempts": (
        f"Schedule: rate(5 minutes)\n{TARGET}\nRetry: {{MaxAttempts: 0}}",
        "Retry.MaxAttempts",
        ["between 1 and 10, got 0"],
    ),
    "retries faster than the tick": (
        f"Schedule: rate(5 minutes)\n{TARGET}\nRetry: {{IntervalSeconds: 30}}",
        "Retry.IntervalSeconds",
        ["got 30", "one-minute tick"],
    ),
    "zero timeout": (
        f"Schedule: rate(5 minutes)\n{TARGET}\nTimeoutSeconds: 0",
        "TimeoutSeconds",
        ["between 1 and 900 seconds, got 0"],
    ),
    "timeout over the function's Timeout": (
        f"Schedule: rate(5 minutes)\n{TARGET}\nTimeoutSeconds: 300",
        "TimeoutSeconds",
        ["Timeout of function ReportFunction (120 seconds)", "would stop the run first"],
    ),
    "enabled that is not a boolean": (
        f"Schedule: rate(5 minutes)\n{TARGET}\nEnabled: perhaps",
        "Enabled",
        ["must be true or false, got 'perhaps'"],
    ),
    "misspelt field": (
        f"Schedule: rate(5 minutes)\n{TARGET}\nTimezon: UTC",
        "Timezon",
        ["unknown field; did you mean 'Timezone'?"],
    ),
    "description too long": (
        f"Schedule: rate(5 minutes)\n{TARGET}\nDescription: {'d' * 600}",
        "Description",
        ["at most 512 characters, got 600"],
    ),
    "task name with a space": (
        f"Schedule: rate(5 minutes)\n{TARGET}\nName: nightly backup",
        "Name",
        ["got 'nightly backup'"],
    ),
    "too many tags": (
        f"Schedule: rate(5 minutes)\n{TARGET}\n"
        "Tags: {" + ", ".join(f"k{i}: v" for i in range(51)) + "}",
        "Tags",
        ["at most 50 entries, got 51"],
    ),
}


def task(properties: str, logical_id: str = "ExampleTask") -> str:
    return (
        f"\n  {logical_id}:\n    Type: Custom::ScheduledTask\n    Properties:\n"
        "      ServiceToken: !GetAtt RegistryFunction.Arn\n"
        + textwrap.indent(properties, " " * 6)
        + "\n"
    )


def validate(tmp_path: Path, *tasks: str) -> tuple[int, list[str]]:
    template = tmp_path / "template.yaml"
    template.write_text(STACK + "".join(tasks), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(template)])
    return result.exit_code, result.output.splitlines()


def test_the_catalogue_covers_at_least_25_bad_definitions() -> None:
    assert len(CATALOGUE) >= 25


@pytest.mark.parametrize(("properties", "field", "words"), CATALOGUE.values(), ids=CATALOGUE)
def test_validate_names_the_field_and_the_reason(
    tmp_path: Path, properties: str, field: str, words: list[str]
) -> None:
    code, lines = validate(tmp_path, task(properties))
    assert code == 1
    prefix = f"ExampleTask.{field}: "
    matching = [line for line in lines if line.startswith(prefix)]
    assert len(matching) == 1, lines
    for word in words:
        assert word in matching[0], matching[0]


def test_duplicate_task_ids_are_named_on_both_tasks(tmp_path: Path) -> None:
    nightly = task(f"Schedule: rate(5 minutes)\n{TARGET}\nName: nightly")
    other = task(f"Schedule: rate(1 hour)\n{TARGET}\nName: Nightly", logical_id="OtherTask")
    code, lines = validate(tmp_path, nightly, other)
    assert code == 1
    assert any(line.startswith("ExampleTask.Name:") and "OtherTask" in line for line in lines)
    assert any(line.startswith("OtherTask.Name:") and "ExampleTask" in line for line in lines)


def test_a_duplicate_yaml_key_is_not_silently_dropped(tmp_path: Path) -> None:
    code, lines = validate(
        tmp_path, task(f"Schedule: rate(5 minutes)\n{TARGET}\nSchedule: rate(1 hour)")
    )
    assert code == 1
    assert any(
        line.startswith("ExampleTask.Schedule:") and "duplicate key 'Schedule'" in line
        for line in lines
    ), lines
