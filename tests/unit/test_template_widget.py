"""template.yaml's fleet widget: its function, its role and its place on the dashboard, judged on
the transformed template (what `sam deploy` submits)."""

from __future__ import annotations

import json
import re
from typing import Any

from cronfleet_tools.local import iam

LAMBDA_FUNCTION = "AWS::Lambda::Function"
TASK_TAG = {"Key": "cronfleet:role", "Value": "task"}


def _functions(transformed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in transformed["Resources"].items()
        if resource["Type"] == LAMBDA_FUNCTION
    }


def test_the_fleet_widget_may_invoke_exactly_this_stacks_task_functions(
    transformed: dict[str, Any],
) -> None:
    # given the stack under a long name, next to a sibling stack whose name starts the same way
    stack = "cronfleet-production-eu-west-1-billing-team"
    functions = _functions(transformed)
    names = {logical_id: f"{stack[:20]}-{logical_id}-A1B2C3" for logical_id in functions}
    naming = iam.Naming(names, stack_name=stack)
    tags = iam.function_tags(transformed, naming)
    sibling = f"{stack}-staging-ExampleTaskFunction-Z9Y8X7"
    tags[sibling] = {"cronfleet:role": "task", "cronfleet:stack": f"{stack}-staging"}
    widget = iam.function_policies(transformed, naming)["FleetWidgetFunction"]
    calls = iam.Calls(naming, tags)
    tasks = {
        logical_id
        for logical_id, function in functions.items()
        if TASK_TAG in function.get("Tags", [])
    }

    # when its Run now button invokes a function
    def may_invoke(function: str) -> bool:
        (needed,) = calls.needed("lambda", "Invoke", {"FunctionName": function})
        return widget.allows(needed.action, needed.resource, needed.context)

    # then it reaches every task function of this stack, the HTTP caller included...
    assert {"ExampleTaskFunction", "HttpTaskFunction", "WeeklyDigestFunction"} <= tasks
    assert [task for task in tasks if not may_invoke(names[task])] == []
    # ...and nothing else: not the machinery, not itself, not the sibling's tasks
    others = [logical_id for logical_id in functions if logical_id not in tasks]
    assert "FleetWidgetFunction" in others
    assert [other for other in others if may_invoke(names[other])] == []
    assert not may_invoke(sibling)


def test_the_fleet_widget_is_core_and_never_retried_or_recorded(
    transformed: dict[str, Any],
) -> None:
    # when the function and its asynchronous invoke settings are read
    function = transformed["Resources"]["FleetWidgetFunction"]["Properties"]
    (config,) = [
        resource["Properties"]
        for resource in transformed["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventInvokeConfig"
        and resource["Properties"]["FunctionName"] == {"Ref": "FleetWidgetFunction"}
    ]

    # then it is tagged core, so no dispatcher, trigger or widget button can invoke it as a task
    assert {"Key": "cronfleet:role", "Value": "core"} in function["Tags"]
    assert TASK_TAG not in function["Tags"]
    # and a view is not a task's attempt: nothing for the recorder, no retried trigger
    assert not config.get("DestinationConfig")
    assert config["MaximumRetryAttempts"] == 0


def test_the_fleet_widget_deletes_nothing_and_writes_only_the_stacks_tables(
    transformed: dict[str, Any],
) -> None:
    (role,) = [
        resource["Properties"]
        for logical_id, resource in transformed["Resources"].items()
        if logical_id == "FleetWidgetFunctionRole"
    ]
    actions = [
        action
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    ]

    assert [action for action in actions if "Delete" in action or action.endswith("*")] == []
    assert set(actions) <= {
        "dynamodb:Scan",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "lambda:InvokeFunction",
    }


def test_the_dashboard_shows_the_fleet_widget_backed_by_its_function(
    template: dict[str, Any],
) -> None:
    # given the dashboard's body, each ${...} kept as the name it substitutes
    body = template["Resources"]["CronfleetDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    dashboard = json.loads(re.sub(r"\$\{([^}]+)\}", r"\1", body))

    # when its custom widgets are read
    (widget,) = [widget for widget in dashboard["widgets"] if widget["type"] == "custom"]

    # then the one there is backed by the fleet widget function, a row of the grid to itself
    assert widget["properties"]["endpoint"] == "FleetWidgetFunction.Arn"
    assert widget["properties"]["params"] == {"page_size": 20}
    assert (widget["x"], widget["width"]) == (0, 24)
