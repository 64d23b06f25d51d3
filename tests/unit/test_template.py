"""template.yaml as an artefact: handlers resolve, logs are kept, events exist, IAM is scoped.

IAM is judged on the template the SAM transform produces (the same translator CloudFormation
runs), not on what we wrote: SAM policy templates expand to statements we never see otherwise.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cronfleet_tools.template import with_globals

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
LOG_GROUP = "AWS::Logs::LogGroup"
TABLE = "AWS::DynamoDB::Table"


def _resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each function's properties, Globals merged in as SAM merges them."""
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in _resources(with_globals(template), SERVERLESS_FUNCTION).items()
    }


def _event_stem(function_logical_id: str) -> str:
    """RegistryFunction -> registry, ExampleTaskFunction -> example_task."""
    name = function_logical_id.removesuffix("Function")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _references(value: Any) -> Iterator[str]:
    """Every logical id a fragment points at, through Ref, Fn::GetAtt or Fn::Sub."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                yield target
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                yield from (v.split(".")[0] for v in re.findall(r"\$\{([^}!]+)\}", text))
                if isinstance(inner, list):
                    yield from _references(inner[1])
            else:
                yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def test_template_declares_functions(template: dict[str, Any]) -> None:
    # A guard for the tests below: they loop over functions and would pass on none.
    assert {"RegistryFunction", "ExampleTaskFunction"} <= set(_functions(template))


def test_every_handler_resolves_to_a_function_in_its_code(
    template: dict[str, Any], repo_root: Path
) -> None:
    problems = []
    for logical_id, props in _functions(template).items():
        module, _, function = props["Handler"].rpartition(".")
        source = repo_root / props["CodeUri"] / f"{module.replace('.', '/')}.py"
        if not source.is_file():
            problems.append(f"{logical_id}: {source.relative_to(repo_root)} does not exist")
            continue
        defined = {
            node.name
            for node in ast.parse(source.read_text()).body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        if function not in defined:
            problems.append(
                f"{logical_id}: Handler {props['Handler']} but {source.relative_to(repo_root)} "
                f"defines no top-level function {function!r} (it has: {sorted(defined)})"
            )
    assert problems == []


def test_code_uris_are_function_folders_not_the_repository(template: dict[str, Any]) -> None:
    # `CodeUri: .` would package the whole repository, tests and venv included.
    for logical_id, props in _functions(template).items():
        assert props["CodeUri"].rstrip("/").startswith("functions/"), logical_id


def test_every_function_logs_to_the_stacks_log_group_with_retention(
    template: dict[str, Any], transformed: dict[str, Any]
) -> None:
    # One log group for every function, its retention set once: a function without it would
    # log to a group Lambda creates itself, kept forever. Every other log group of the stack
    # (the API's access logs) is kept as long.
    log_groups = _resources(template, LOG_GROUP)
    for logical_id, group in log_groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, logical_id
    log_group = log_groups["FunctionLogGroup"]["Properties"]
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}"}

    functions = _resources(transformed, "AWS::Lambda::Function")
    assert len(functions) == len(_functions(template))
    for logical_id, function in functions.items():
        assert function["Properties"]["LoggingConfig"] == {
            "LogGroup": {"Ref": "FunctionLogGroup"}
        }, logical_id


def test_every_function_has_a_sample_event(template: dict[str, Any], events_dir: Path) -> None:
    # Convention: events/<snake_case of the logical id without "Function">*.json, e.g.
    # ExampleTaskFunction -> events/example_task.json, RegistryFunction -> events/registry_*.json.
    for logical_id in _functions(template):
        stem = _event_stem(logical_id)
        samples = sorted(events_dir.glob(f"{stem}*.json"))
        assert samples, f"{logical_id}: no events/{stem}*.json for `sam local invoke -e`"


@pytest.mark.parametrize("request_type", ["create", "update", "delete"])
def test_registry_events_are_cloudformation_requests_for_a_scheduled_task(
    load_event: Any, template: dict[str, Any], request_type: str
) -> None:
    event = load_event(f"registry_{request_type}")

    assert event["RequestType"] == request_type.capitalize()
    assert event["ResourceType"] == "Custom::ScheduledTask"
    assert event["ResponseURL"].startswith("https://")
    assert ("PhysicalResourceId" in event) == (request_type != "create")
    assert ("OldResourceProperties" in event) == (request_type == "update")
    # CloudFormation hands every scalar to a custom resource as a string.
    properties = event["ResourceProperties"]
    assert all(isinstance(value, str | dict | list) for value in properties.values()), properties
    declared = template["Resources"][event["LogicalResourceId"]]["Properties"]
    assert properties["Schedule"] == declared["Schedule"]
    assert properties["ServiceTimeout"] == str(declared["ServiceTimeout"])


def _dynamodb_grants(transformed: dict[str, Any], role_id: str) -> dict[str, set[str]]:
    """The DynamoDB actions a function's role allows, by the table logical id they name."""
    resources = transformed["Resources"]
    role = resources[role_id]["Properties"]
    documents = [policy["PolicyDocument"] for policy in role.get("Policies", [])]
    # ... and the managed policies the template declares (TaskFunctionPolicy).
    documents += [
        resources[arn["Ref"]]["Properties"]["PolicyDocument"]
        for arn in role.get("ManagedPolicyArns", [])
        if isinstance(arn, dict) and "Ref" in arn
    ]
    granted: dict[str, set[str]] = {}
    for document in documents:
        for statement in document["Statement"]:
            dynamodb = {a for a in _as_list(statement["Action"]) if str(a).startswith("dynamodb:")}
            if not dynamodb:
                continue
            assert "*" not in _as_list(statement["Resource"]), statement
            (table,) = set(_references(statement["Resource"]))
            granted.setdefault(table, set()).update(dynamodb)
    return granted


def test_registry_reads_and_updates_tasks_and_only_puts_ledger_entries(
    transformed: dict[str, Any],
) -> None:
    # A registration is one transaction: a versioned update of the task and, for a task
    # scheduled again after a pause in its existence, one SKIPPED entry in the ledger. Without
    # PutItem on the ledger, re-enabling a task would fail its deploy on AWS.
    assert _dynamodb_grants(transformed, "RegistryFunctionRole") == {
        "TasksTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "ExecutionsTable": {"dynamodb:PutItem"},
    }


def test_task_functions_only_read_and_conditionally_write_items(
    transformed: dict[str, Any],
) -> None:
    # The task wrapper needs item reads and writes on the two tables, and nothing broader: no
    # scans, no queries, no deletes, no batch operations.
    assert _dynamodb_grants(transformed, "ExampleTaskFunctionRole") == {
        "TasksTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "ExecutionsTable": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"},
    }


def test_functions_run_on_the_layer_they_are_built_with(template: dict[str, Any]) -> None:
    function = template["Globals"]["Function"]
    layer = template["Resources"]["CronfleetLayer"]

    assert layer["Metadata"]["BuildMethod"] == function["Runtime"]
    assert layer["Metadata"]["BuildArchitecture"] in function["Architectures"]
    assert function["Runtime"] in layer["Properties"]["CompatibleRuntimes"]
    assert set(function["Architectures"]) <= set(layer["Properties"]["CompatibleArchitectures"])
    assert {"Ref": "CronfleetLayer"} in function["Layers"]


def test_tables_have_point_in_time_recovery_and_encryption(template: dict[str, Any]) -> None:
    tables = _resources(template, TABLE)
    assert set(tables) == {"TasksTable", "ExecutionsTable"}

    for logical_id, table in tables.items():
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"]["SSEEnabled"] is True, logical_id
        # A deploy must never throw away runtime state or history.
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_execution_history_expires_on_expires_at(template: dict[str, Any]) -> None:
    ttl = template["Resources"]["ExecutionsTable"]["Properties"]["TimeToLiveSpecification"]

    assert ttl == {"AttributeName": "expires_at", "Enabled": True}


def test_no_function_runs_before_its_log_group_exists(transformed: dict[str, Any]) -> None:
    # The registry runs while CloudFormation creates each task. Its log group is one of its
    # properties (LoggingConfig), so CloudFormation creates the group first, and a task needs
    # no DependsOn of its own.
    for logical_id, function in _resources(transformed, "AWS::Lambda::Function").items():
        assert "FunctionLogGroup" in set(_references(function["Properties"])), logical_id
    for logical_id, task in _resources(transformed, "Custom::ScheduledTask").items():
        assert "DependsOn" not in task, logical_id


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_registry_checks_secrets_against_what_the_http_function_may_read(
    template: dict[str, Any],
) -> None:
    # The registry refuses a task whose SecretArn the HTTP function could not read; its idea of
    # what that function may read must be the function's own policy, to the character.
    resources = template["Resources"]
    prefixes = resources["RegistryFunction"]["Properties"]["Environment"]["Variables"][
        "HTTP_SECRET_ARN_PREFIXES"
    ]["Fn::Sub"].split(",")
    readable = [
        statement["Resource"]["Fn::Sub"]
        for policy in resources["HttpTaskFunction"]["Properties"]["Policies"]
        for statement in policy.get("Statement", [])
        if statement.get("Sid", "").startswith("ReadCronfleetBearer")
    ]
    assert sorted(f"{prefix}*" for prefix in prefixes) == sorted(readable)


def test_the_registry_may_read_task_functions_wiring_but_not_their_code(
    transformed: dict[str, Any],
) -> None:
    # The registry checks each task's function before registering it: Lambda configuration,
    # tags and invoke config, and IAM's simulator for the role. Reads only; never the code
    # (GetFunction returns a link to it) and never a change.
    from cronfleet_tools.local import iam

    naming = iam.local_naming(transformed, {})
    registry = iam.function_policies(transformed, naming)["RegistryFunction"]
    function = "arn:aws:lambda:us-east-1:123456789012:function:cronfleet-local-ReportFunction-1"
    role = "arn:aws:iam::123456789012:role/cronfleet-local-ReportFunctionRole-1"

    for action in (
        "lambda:GetFunctionConfiguration",
        "lambda:ListTags",
        "lambda:GetFunctionEventInvokeConfig",
    ):
        assert registry.allows(action, function), action
    assert registry.allows("iam:SimulatePrincipalPolicy", role)
    for action in (
        "lambda:GetFunction",
        "lambda:UpdateFunctionConfiguration",
        "lambda:InvokeFunction",
    ):
        assert not registry.allows(action, function), action
    assert not registry.allows("iam:PutRolePolicy", role)
