"""Task definitions in template.yaml, checked before any deploy (what `cronfleet validate` runs).

Cases are written as YAML, appended to tests/unit/templates/stack.yaml, so the short-form tags
and PyYAML's quirks are part of every test.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from cronfleet.registry.problems import InvalidTemplate
from cronfleet_tools.template import (
    TaskDeclaration,
    TemplateValidation,
    load_template,
    parse_template,
    validate_template,
)

TEMPLATES = Path(__file__).parent / "templates"
STACK = (TEMPLATES / "stack.yaml").read_text(encoding="utf-8")
REPO_TEMPLATE = Path(__file__).parents[2] / "template.yaml"


def task_block(properties: str, logical_id: str = "ExampleTask") -> str:
    body = textwrap.indent(textwrap.dedent(properties).strip("\n"), " " * 6)
    return (
        f"\n  {logical_id}:\n"
        "    Type: Custom::ScheduledTask\n"
        "    Properties:\n"
        "      ServiceToken: !GetAtt RegistryFunction.Arn\n"
        f"{body}\n"
    )


def validate_with(*blocks: str) -> TemplateValidation:
    return validate_template(parse_template(STACK + "".join(blocks)))


def lines(problems: list[Any]) -> list[str]:
    return [str(problem) for problem in problems]


# Each case: (the task's properties, the field named in the problem, words its reason contains).
BAD_TEMPLATE_TASKS = {
    "function not in the template (GetAtt)": (
        "Schedule: rate(5 minutes)\nFunction: !GetAtt ReportFn.Arn",
        "Function",
        ["'ReportFn' is not a resource of this template"],
    ),
    "function not in the template (Ref)": (
        "Schedule: rate(5 minutes)\nFunction: !Ref Reprot",
        "Function",
        ["'Reprot' is not a resource of this template"],
    ),
    "target is a table": (
        "Schedule: rate(5 minutes)\nFunction: !GetAtt TasksTable.Arn",
        "Function",
        ["'TasksTable' is not a Lambda function", "AWS::DynamoDB::Table"],
    ),
    "target is a role": (
        "Schedule: rate(5 minutes)\nFunction: !Ref CleanupRole",
        "Function",
        ["'CleanupRole' is not a Lambda function", "AWS::IAM::Role"],
    ),
    "literal ARN of a function outside the template": (
        "Schedule: rate(5 minutes)\n"
        "Function: arn:aws:lambda:eu-west-1:210987654321:function:billing-export",
        "Function",
        ["billing-export", "not a function of this template", "only this stack's functions"],
    ),
    "logical id written as plain text": (
        "Schedule: rate(5 minutes)\nFunction: ReportFunction",
        "Function",
        ["literal text 'ReportFunction'", "!GetAtt ReportFunction.Arn"],
    ),
    "function passed in as a parameter": (
        "Schedule: rate(5 minutes)\nFunction: !Ref ExternalFunctionArn",
        "Function",
        ["parameter 'ExternalFunctionArn'", "only this stack's functions"],
    ),
    "function imported from another stack": (
        "Schedule: rate(5 minutes)\nFunction: !ImportValue billing-stack-export-function",
        "Function",
        ["Fn::ImportValue", "only this stack's functions"],
    ),
    "function attribute other than Arn": (
        "Schedule: rate(5 minutes)\nFunction: !GetAtt ReportFunction.SnapStartConfig",
        "Function",
        ["use !GetAtt ReportFunction.Arn"],
    ),
    "Sub naming some other function": (
        'Schedule: rate(5 minutes)\nFunction: !Sub "${ReportFunction}-canary"',
        "Function",
        ["does not resolve to function ReportFunction", "ReportFunction-canary"],
    ),
    "timeout over the function's own Timeout": (
        "Schedule: rate(5 minutes)\nFunction: !GetAtt ReportFunction.Arn\nTimeoutSeconds: 300",
        "TimeoutSeconds",
        ["Timeout of function ReportFunction (120 seconds)", "got 300", "stop the run"],
    ),
    "timeout over the Globals Timeout": (
        "Schedule: rate(5 minutes)\nFunction: !GetAtt DigestFunction.Arn\nTimeoutSeconds: 60",
        "TimeoutSeconds",
        ["Timeout of function DigestFunction (30 seconds)", "got 60"],
    ),
    "timeout over Lambda's default Timeout": (
        "Schedule: rate(5 minutes)\nFunction: !GetAtt CleanupFunction.Arn\nTimeoutSeconds: 10",
        "TimeoutSeconds",
        ["Timeout of function CleanupFunction (3 seconds)", "got 10"],
    ),
    "reference to a missing topic": (
        "Schedule: rate(5 minutes)\n"
        "Function: !GetAtt ReportFunction.Arn\n"
        "Alerts: {TopicArn: !Ref MissingTopic}",
        "Alerts.TopicArn",
        ["'MissingTopic' is not a resource or parameter of this template"],
    ),
    "schedule error inside a template": (
        "Schedule: 0 25 * * *\nFunction: !GetAtt ReportFunction.Arn",
        "Schedule",
        ["hour", "25"],
    ),
    "number written in YAML still checked": (
        "Schedule: rate(5 minutes)\nFunction: !GetAtt ReportFunction.Arn\nRetry: {MaxAttempts: 11}",
        "Retry.MaxAttempts",
        ["between 1 and 10", "got 11"],
    ),
    "duplicate YAML key in a task": (
        "Schedule: rate(5 minutes)\nFunction: !GetAtt ReportFunction.Arn\nSchedule: rate(1 hour)",
        "Schedule",
        ["duplicate key 'Schedule'", "silently keep only the last"],
    ),
}


@pytest.mark.parametrize(
    ("properties", "field", "words"),
    list(BAD_TEMPLATE_TASKS.values()),
    ids=list(BAD_TEMPLATE_TASKS),
)
def test_a_bad_task_in_a_template_is_refused_with_one_line_naming_the_field(
    properties: str, field: str, words: list[str]
) -> None:
    # When
    if "duplicate" in field or properties.count("Schedule:") > 1:
        with pytest.raises(InvalidTemplate) as refused:
            parse_template(STACK + task_block(properties))
        found = lines(refused.value.problems)
    else:
        result = validate_with(task_block(properties))
        found = lines(result.problems)
        assert result.tasks == []

    # Then
    assert len(found) == 1, found
    prefix = f"ExampleTask.{field}: "
    assert found[0].startswith(prefix), found[0]
    for word in words:
        assert word in found[0], found[0]


def test_the_fixture_stack_with_tasks_validates_clean() -> None:
    # When
    result = validate_template(TEMPLATES / "tasks.yaml")

    # Then
    assert result.problems == []
    assert result.deferred == []
    assert result.ok
    assert [task.task_id for task in result.tasks] == [
        "hourly-digest",
        "LongFormRollup",
        "NightlyCleanup",
        "PartnerSync",
        "WeekdayReport",
        "WeeklyRollup",
    ]


def test_each_task_resolves_to_its_function_and_effective_timeout() -> None:
    result = validate_template(TEMPLATES / "tasks.yaml")

    assert result.declarations == {
        # TimeoutSeconds given
        "WeekdayReport": TaskDeclaration("WeekdayReport", "ReportFunction", 90),
        # Globals.Function.Timeout
        "hourly-digest": TaskDeclaration("HourlyDigest", "DigestFunction", 30),
        # AWS::Lambda::Function without Timeout: Lambda's default
        "NightlyCleanup": TaskDeclaration("NightlyCleanup", "CleanupFunction", 3),
        # the function's own Timeout
        "WeeklyRollup": TaskDeclaration("WeeklyRollup", "ReportFunction", 120),
        "LongFormRollup": TaskDeclaration("LongFormRollup", "ReportFunction", 120),
        # Http.TimeoutSeconds
        "PartnerSync": TaskDeclaration("PartnerSync", None, 20),
    }


def test_offline_values_are_what_cloudformation_would_send() -> None:
    # Given
    tasks = {task.task_id: task for task in validate_template(TEMPLATES / "tasks.yaml").tasks}
    report, digest, cleanup = (
        tasks["WeekdayReport"],
        tasks["hourly-digest"],
        tasks["NightlyCleanup"],
    )
    partner = tasks["PartnerSync"]

    # Then: references become values of the right shape, with placeholder account and region
    assert report.function == "arn:aws:lambda:us-east-1:123456789012:function:ReportFunction"
    assert digest.function == "stack-digest"
    assert cleanup.function == "arn:aws:lambda:us-east-1:123456789012:function:cronfleet-cleanup"
    assert report.alerts.topic_arn == "arn:aws:sns:us-east-1:123456789012:AlertTopic"
    assert partner.http is not None
    assert partner.http.url == "https://partner.example.com/prod/sync"
    assert partner.http.secret_arn == (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:cron/api-token"
    )
    # and scalars become strings, except inside JSON text
    assert report.tags == {"team": "sales", "tier": "1"}
    assert report.payload == {"days": 1, "dryRun": False}
    assert digest.payload == {"stage": "prod", "region": "us-east-1"}
    assert partner.http.body == {"full": False}
    assert cleanup.enabled is False


def test_a_template_may_be_given_as_a_path_or_as_loaded_content() -> None:
    path = TEMPLATES / "tasks.yaml"

    assert validate_template(path) == validate_template(load_template(path))
    assert validate_template(str(path)) == validate_template(path)


def test_task_ids_must_be_unique_ignoring_case() -> None:
    # Given
    first = task_block("Name: Report\nSchedule: rate(1 hour)\nFunction: !Ref ReportFunction", "A")
    second = task_block("Name: report\nSchedule: rate(2 hours)\nFunction: !Ref ReportFunction", "B")

    # When
    result = validate_with(first, second)

    # Then
    assert lines(result.problems) == [
        "A.Name: task id 'Report' is also used by B (task ids must be unique, ignoring case)",
        "B.Name: task id 'report' is also used by A (task ids must be unique, ignoring case)",
    ]
    assert result.tasks == []


def test_a_name_may_collide_with_another_task_s_logical_id() -> None:
    unnamed = task_block("Schedule: rate(1 hour)\nFunction: !Ref ReportFunction", "Digest")
    named = task_block("Name: digest\nSchedule: rate(1 hour)\nFunction: !Ref DigestFunction", "B")

    result = validate_with(unnamed, named)

    assert [(problem.logical_id, problem.field_path) for problem in result.problems] == [
        ("B", "Name"),
        ("Digest", "Name"),
    ]


def test_two_resources_with_one_logical_id_are_refused_with_their_lines() -> None:
    # Given
    block = task_block("Schedule: rate(1 hour)\nFunction: !Ref ReportFunction")
    text = STACK + block + block
    first_line = STACK.count("\n") + 2
    second_line = first_line + block.count("\n")

    # When
    with pytest.raises(InvalidTemplate) as refused:
        parse_template(text)

    # Then
    assert lines(refused.value.problems) == [
        f"ExampleTask: duplicate key 'ExampleTask' at line {second_line}, column 3 "
        f"(first at line {first_line}, column 3): YAML would silently keep only the last one"
    ]


def test_duplicate_keys_outside_resources_are_named_by_section(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("Globals:\n  Function:\n    Timeout: 30\n    Timeout: 60\nResources: {}\n")

    result = validate_template(path)

    assert lines(result.problems) == [
        "Globals.Function.Timeout: duplicate key 'Timeout' at line 4, column 5 "
        "(first at line 3, column 5): YAML would silently keep only the last one"
    ]


def test_a_yaml_syntax_error_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("Resources:\n  Task:\n    Type: Custom::ScheduledTask\n   Properties: {}\n")

    result = validate_template(path)

    assert len(result.problems) == 1
    assert str(result.problems[0]).startswith("template.yaml: line 4, column 4: ")


def test_an_unknown_tag_is_a_problem_with_its_line() -> None:
    with pytest.raises(InvalidTemplate) as refused:
        parse_template("Resources:\n  Task: !Reff Something\n", source="stack.yaml")

    assert lines(refused.value.problems) == [
        "stack.yaml: line 2, column 9: could not determine a constructor for the tag '!Reff'"
    ]


def test_every_short_form_tag_loads_as_its_long_form() -> None:
    text = textwrap.dedent(
        """\
        Values:
          - !Ref Thing
          - !GetAtt Thing.Arn
          - !GetAtt Thing.Endpoint.Address
          - !GetAtt [Thing, Arn]
          - !Sub "${Thing}-x"
          - !Sub ["${A}-x", {A: !Ref Thing}]
          - !Join [",", [a, b]]
          - !If [IsProd, a, b]
          - !Select [0, [a, b]]
          - !ImportValue shared-export
          - !FindInMap [Map, Top, Second]
          - !Equals [a, b]
          - !Not [!Condition IsProd]
          - !And [!Condition A, !Condition B]
          - !Or [!Condition A, !Condition B]
          - !Base64 text
          - !Split [",", "a,b"]
          - !GetAZs ""
          - !Cidr [10.0.0.0/16, 4, 8]
        """
    )

    assert parse_template(text)["Values"] == [
        {"Ref": "Thing"},
        {"Fn::GetAtt": ["Thing", "Arn"]},
        {"Fn::GetAtt": ["Thing", "Endpoint.Address"]},
        {"Fn::GetAtt": ["Thing", "Arn"]},
        {"Fn::Sub": "${Thing}-x"},
        {"Fn::Sub": ["${A}-x", {"A": {"Ref": "Thing"}}]},
        {"Fn::Join": [",", ["a", "b"]]},
        {"Fn::If": ["IsProd", "a", "b"]},
        {"Fn::Select": [0, ["a", "b"]]},
        {"Fn::ImportValue": "shared-export"},
        {"Fn::FindInMap": ["Map", "Top", "Second"]},
        {"Fn::Equals": ["a", "b"]},
        {"Fn::Not": [{"Condition": "IsProd"}]},
        {"Fn::And": [{"Condition": "A"}, {"Condition": "B"}]},
        {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]},
        {"Fn::Base64": "text"},
        {"Fn::Split": [",", "a,b"]},
        {"Fn::GetAZs": ""},
        {"Fn::Cidr": ["10.0.0.0/16", 4, 8]},
    ]


def test_yaml_1_1_booleans_and_dates_stay_strings() -> None:
    loaded = parse_template("Payload: {on: yes, day: 2024-03-31, flag: true}\n")

    assert loaded["Payload"] == {"on": "yes", "day": "2024-03-31", "flag": True}


def test_intrinsics_a_template_can_answer_are_resolved_offline() -> None:
    # Given
    block = task_block(
        """
        Schedule: rate(1 hour)
        Function: !GetAtt ReportFunction.Arn
        Payload:
          joined: !Join ["-", [!Ref Stage, !Ref AWS::Region]]
          second: !Select [1, !Split [",", "a,b,c"]]
          batch: !FindInMap [Limits, !Ref Stage, Batch]
          encoded: !Base64 hello
          literal: !Sub ["${!NotAVariable}/${Env}", {Env: !Ref Stage}]
          dropped: !Ref AWS::NoValue
        """
    )
    template = parse_template(STACK + block)
    template["Mappings"] = {"Limits": {"prod": {"Batch": 500}}}

    # When
    result = validate_template(template)

    # Then
    assert result.problems == []
    (task,) = result.tasks
    assert task.payload == {
        "joined": "prod-us-east-1",
        "second": "b",
        "batch": "500",
        "encoded": "aGVsbG8=",
        "literal": "${NotAVariable}/prod",
    }


def test_a_lookup_the_template_cannot_answer_is_a_problem() -> None:
    block = task_block(
        "Schedule: rate(1 hour)\nFunction: !GetAtt ReportFunction.Arn\n"
        "Payload: {batch: !FindInMap [Limits, !Ref Stage, Batch]}"
    )

    result = validate_with(block)

    assert lines(result.problems) == [
        "ExampleTask.Payload.batch: Fn::FindInMap: no 'Limits' in Mappings"
    ]


def test_values_known_only_at_deploy_time_are_deferred_not_refused() -> None:
    # Given
    block = task_block(
        """
        Schedule: rate(1 hour)
        Function: !GetAtt ReportFunction.Arn
        Enabled: !If [IsProduction, true, false]
        Payload:
          table: !Ref TasksTable
        """
    )

    # When
    result = validate_with(block)

    # Then
    assert result.problems == []
    assert result.tasks == []
    assert lines(result.deferred) == [
        "ExampleTask.Enabled: known only at deploy time (Fn::If); the registry checks it then",
        "ExampleTask.Payload.table: known only at deploy time (Ref TasksTable, an "
        "AWS::DynamoDB::Table); the registry checks it then",
    ]


def test_a_deferred_field_does_not_hide_the_other_problems_of_its_task() -> None:
    block = task_block(
        "Schedule: rate(1 hour)\nFunction: !GetAtt ReportFunction.Arn\n"
        "Enabled: !If [IsProduction, true, false]\nOverlap: sometimes"
    )

    result = validate_with(block)

    assert [problem.field_path for problem in result.problems] == ["Overlap"]


def test_problems_are_sorted_by_logical_id_then_field() -> None:
    result = validate_with(
        task_block("Schedule: 0 25 * * *\nFunction: !Ref Nope", "Zulu"),
        task_block("Schedule: rate(1 hour)\nFunction: !Ref ReportFunction\nOverlap: x", "Alpha"),
        task_block("Timezone: Mars/Base\nSchedule: rate(1 hour)\nFunction: !Ref Nope", "Alpha2"),
    )

    assert [(problem.logical_id, problem.field_path) for problem in result.problems] == [
        ("Alpha", "Overlap"),
        ("Alpha2", "Function"),
        ("Alpha2", "Timezone"),
        ("Zulu", "Function"),
        ("Zulu", "Schedule"),
    ]


def test_a_template_without_resources_is_a_problem() -> None:
    assert lines(validate_template({"Parameters": {}}).problems) == [
        "Resources: must be a mapping of resources"
    ]


@pytest.mark.skipif(not REPO_TEMPLATE.exists(), reason="template.yaml is not written yet")
def test_the_repository_template_has_no_task_problems() -> None:
    result = validate_template(REPO_TEMPLATE)

    assert lines(result.problems) == []


# --- Custom resources of any type that the registry registers ------------------------------------


def resource_block(logical_id: str, resource_type: str, service_token: str, properties: str) -> str:
    body = textwrap.indent(textwrap.dedent(properties).strip("\n"), " " * 6)
    return (
        f"\n  {logical_id}:\n    Type: {resource_type}\n    Properties:\n"
        f"      ServiceToken: {service_token}\n{body}\n"
    )


VALID_TASK = "Schedule: rate(5 minutes)\nFunction: !GetAtt ReportFunction.Arn"
BAD_TASK = "Schedule: 0 25 * * *\nFunction: !GetAtt ReportFunction.Arn"


@pytest.mark.parametrize("resource_type", ["AWS::CloudFormation::CustomResource", "Custom::Cron"])
@pytest.mark.parametrize(
    "service_token",
    ["!GetAtt RegistryFunction.Arn", "!Sub '${RegistryFunction.Arn}'", "!Ref RegistryFunction"],
)
def test_a_custom_resource_of_another_type_served_by_the_registry_is_a_task(
    resource_type: str, service_token: str
) -> None:
    # Given two resources the registry would register, whatever their declared type
    result = validate_with(
        resource_block("GoodTask", resource_type, service_token, VALID_TASK),
        resource_block("BadTask", resource_type, service_token, BAD_TASK),
    )

    # Then both are judged: the bad one refused, the good one a task
    assert lines(result.problems) == ["BadTask.Schedule: hour field '25': 25 is out of range 0-23"]
    assert [task.task_id for task in result.tasks] == ["GoodTask"]
    assert result.declarations["GoodTask"].function_logical_id == "ReportFunction"


def test_the_registry_is_also_whatever_function_a_scheduled_task_names() -> None:
    # Given a registry under another name, named by a Custom::ScheduledTask and a generic resource
    registry = (
        "\n  TaskRegistry:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        "      CodeUri: functions/registry/\n      Handler: app.handler\n"
    )
    result = validate_with(
        registry,
        resource_block("Declared", "Custom::ScheduledTask", "!GetAtt TaskRegistry.Arn", VALID_TASK),
        resource_block("Generic", "Custom::Job", "!GetAtt TaskRegistry.Arn", BAD_TASK),
    )

    assert lines(result.problems) == ["Generic.Schedule: hour field '25': 25 is out of range 0-23"]


def test_a_literal_service_token_counts_when_a_scheduled_task_uses_the_same() -> None:
    token = "arn:aws:lambda:eu-west-1:123456789012:function:shared-cronfleet-registry"
    result = validate_with(
        resource_block("Declared", "Custom::ScheduledTask", token, VALID_TASK),
        resource_block("Generic", "AWS::CloudFormation::CustomResource", token, BAD_TASK),
        resource_block("Other", "AWS::CloudFormation::CustomResource", token + "-x", BAD_TASK),
    )

    assert lines(result.problems) == ["Generic.Schedule: hour field '25': 25 is out of range 0-23"]


def test_custom_resources_of_other_services_are_left_alone() -> None:
    result = validate_with(
        resource_block("Other", "Custom::Thing", "!GetAtt ReportFunction.Arn", "Colour: blue"),
        resource_block("Generic", "AWS::CloudFormation::CustomResource", "!Ref Stage", "X: y"),
    )

    assert (result.problems, result.tasks) == ([], [])


# --- Templates that would exhaust the reader -----------------------------------------------------


def test_nesting_deeper_than_the_limit_is_refused_with_its_line_not_a_recursion_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        STACK + task_block(f"{VALID_TASK}\nPayload: " + "[" * 3000 + "]" * 3000), encoding="utf-8"
    )

    result = validate_template(path)

    assert lines(result.problems) == [
        "template.yaml: line 82, column 112: nested deeper than 100 levels; no template needs "
        "that many"
    ]


def test_nesting_up_to_the_limit_is_read_and_one_more_level_is_not() -> None:
    # The root, Resources, the task and Properties are four levels; Tags' lists fill the rest.
    def with_lists(count: int) -> str:
        return STACK + task_block(f"{VALID_TASK}\nTags: " + "[" * count + "]" * count)

    document = parse_template(with_lists(96))
    with pytest.raises(InvalidTemplate, match="nested deeper than 100 levels"):
        parse_template(with_lists(97))

    assert document["Resources"]["ExampleTask"]["Properties"]["Tags"] == _nested_lists(95)


def _nested_lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    with pytest.raises(InvalidTemplate) as refused:
        parse_template(STACK + task_block(f"{VALID_TASK}\nPayload: &again {{a: [*again]}}"))

    assert lines(refused.value.problems) == [
        "template.yaml: line 82, column 16: an alias refers to a value that contains it; "
        "CloudFormation has no values that contain themselves"
    ]


def test_aliases_that_would_expand_past_any_deployable_template_are_refused() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    bomb = task_block(f"{VALID_TASK}\nPayload:\n" + textwrap.indent("\n".join(levels), "  "))

    with pytest.raises(InvalidTemplate) as refused:
        parse_template(STACK + bomb)

    assert lines(refused.value.problems) == [
        "template.yaml: its aliases expand it to more than 1,000,000 values; CloudFormation "
        "takes at most 1 MB of template"
    ]


def test_aliases_shared_a_few_times_are_read_as_usual() -> None:
    result = validate_with(
        task_block(f"{VALID_TASK}\nTags: &tags {{team: sales}}"),
        task_block(
            "Schedule: rate(1 hour)\nFunction: !GetAtt ReportFunction.Arn\nTags: *tags",
            logical_id="OtherTask",
        ),
    )

    assert result.ok
    assert [task.tags for task in result.tasks] == [{"team": "sales"}, {"team": "sales"}]


def test_a_function_whose_name_refers_to_itself_does_not_hang_the_check() -> None:
    looping = (
        "\n  LoopFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        "      FunctionName: !Sub '${LoopFunction}-x'\n      Handler: app.handler\n"
    )
    result = validate_with(
        looping, task_block("Schedule: rate(5 minutes)\nFunction: !GetAtt LoopFunction.Arn")
    )

    assert result.declarations["ExampleTask"].function_logical_id == "LoopFunction"


def test_a_timeout_refused_on_its_own_is_not_compared_with_the_function_s_too() -> None:
    result = validate_with(task_block(f"{VALID_TASK}\nTimeoutSeconds: 901"))

    assert lines(result.problems) == [
        "ExampleTask.TimeoutSeconds: must be between 1 and 900 seconds, got 901: Lambda's limit"
    ]


def _repository_template_with(task: dict[str, Any]) -> dict[str, Any]:
    from cronfleet_tools.template import load_template

    template = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
    template["Resources"]["SecretTask"] = task
    return template


@pytest.mark.parametrize(
    ("secret_arn", "problem"),
    [
        (
            "arn:aws:ssm:us-east-1:123456789012:parameter/billing/token",
            "(parameter/billing/token is not under parameter/cronfleet/)",
        ),
        (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:billing/token-AbCdEf",
            "(secret:billing/token-AbCdEf is not under secret:cronfleet/)",
        ),
        ("arn:aws:ssm:eu-west-1:210987654321:parameter/cronfleet/token", None),
    ],
)
def test_validate_refuses_a_secret_outside_what_the_http_function_may_read(
    secret_arn: str, problem: str | None
) -> None:
    # Given the repository's template with an Http task naming a Bearer secret
    task = {
        "Type": "Custom::ScheduledTask",
        "Properties": {
            "ServiceToken": {"Fn::GetAtt": ["RegistryFunction", "Arn"]},
            "Schedule": "rate(1 hour)",
            "Http": {"Url": "https://api.example.com/cron", "SecretArn": secret_arn},
        },
    }

    # When it is validated offline, before the account and region are known
    validation = validate_template(_repository_template_with(task))

    # Then a secret outside cronfleet/ is refused on its field; account and region wait for
    # the deploy, where the registry knows them
    found = [str(p) for p in validation.problems if p.logical_id == "SecretTask"]
    if problem is None:
        assert found == []
    else:
        (line,) = found
        assert line.startswith(
            f"SecretTask.Http.SecretArn: the HTTP function cannot read {secret_arn}"
        )
        assert problem in line
