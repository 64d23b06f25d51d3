"""template.yaml's alerting, dashboard and IAM boundaries, judged on the transformed template.

The oracle for IAM is what the SAM translator emits (policy templates included), and the oracle
for metric names is the code that emits them: a dashboard widget or an alarm on a metric nobody
emits is a flat line that looks healthy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cronfleet_tools.local import iam

NAMESPACE = "Cronfleet"
TASK_TAG = ("cronfleet:role", "task")
ALARM = "AWS::CloudWatch::Alarm"
LAMBDA_FUNCTION = "AWS::Lambda::Function"

# Actions that only read; a `*` resource is tolerated for these and nothing else.
READ_ONLY_VERBS = ("Get", "List", "Describe", "BatchGet")


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_statements(transformed: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, role in _of_type(transformed, "AWS::IAM::Role").items():
        for policy in role.get("Policies", []):
            for statement in _as_list(policy["PolicyDocument"]["Statement"]):
                yield logical_id, statement


def _task_functions(transformed: dict[str, Any]) -> set[str]:
    return {
        logical_id
        for logical_id, function in _of_type(transformed, LAMBDA_FUNCTION).items()
        if {"Key": TASK_TAG[0], "Value": TASK_TAG[1]} in function.get("Tags", [])
    }


def _dashboard(template: dict[str, Any]) -> dict[str, Any]:
    """DashboardBody parsed as JSON, with every ${...} substitution replaced by a placeholder."""
    (dashboard,) = _of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["DashboardBody"]["Fn::Sub"]
    parsed: dict[str, Any] = json.loads(re.sub(r"\$\{[^}]+\}", "SUBSTITUTED", body))
    return parsed


def _emitted_metric_names(repo_root: Path) -> set[str]:
    # metrics.add_metric(name="X", ...) and cronfleet.observability.count("X", ...)
    pattern = re.compile(r"(?:add_metric\(\s*name\s*=\s*|\bcount\(\s*)[\"'](\w+)[\"']")
    return {
        name
        for folder in ("functions", "layers")
        for source in (repo_root / folder).rglob("*.py")
        for name in pattern.findall(source.read_text())
    }


def _cronfleet_metrics_in_dashboard(dashboard: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for widget in dashboard["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            if row and row[0] == NAMESPACE:
                names.add(row[1])
            for item in row:
                if isinstance(item, dict) and "expression" in item:
                    expression = item["expression"]
                    if "{" + NAMESPACE in expression:
                        names.update(re.findall(r'MetricName="(\w+)"', expression))
    return names


def _cronfleet_metrics_in_alarms(template: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for alarm in _of_type(template, ALARM).values():
        metrics = [alarm] + [
            q["MetricStat"]["Metric"] for q in alarm.get("Metrics", []) if "MetricStat" in q
        ]
        names.update(m["MetricName"] for m in metrics if m.get("Namespace") == NAMESPACE)
    return names


def test_every_alarm_notifies_the_alert_topic_on_alarm_and_on_recovery(
    template: dict[str, Any],
) -> None:
    alarms = _of_type(template, ALARM)
    assert alarms, "no alarms at all"

    for logical_id, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}], logical_id
        assert alarm["OKActions"] == [{"Ref": "AlertTopic"}], logical_id
        # A deliberate choice each time, never CloudWatch's default.
        assert alarm["TreatMissingData"] in {"breaching", "notBreaching"}, logical_id


def test_a_dispatcher_that_stops_ticking_raises_the_heartbeat_alarm(
    template: dict[str, Any],
) -> None:
    alarm = template["Resources"]["DispatcherHeartbeatAlarm"]["Properties"]

    # A stopped dispatcher emits nothing: silence must count as a missed heartbeat.
    assert alarm["TreatMissingData"] == "breaching"
    assert (alarm["Namespace"], alarm["MetricName"]) == (NAMESPACE, "DispatcherHeartbeat")
    # Powertools Metrics' default dimension, from POWERTOOLS_SERVICE_NAME.
    service = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": service}]
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert (alarm["Statistic"], alarm["Threshold"], alarm["Period"]) == ("Sum", 1, 60)
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 5


def test_alert_topic_is_encrypted_with_the_stacks_key(template: dict[str, Any]) -> None:
    topic = template["Resources"]["AlertTopic"]["Properties"]
    key = template["Resources"]["AlertKey"]

    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": ["AlertKey", "Arn"]}


def test_cloudwatch_alarms_may_use_the_key_and_publish_to_the_topic(
    template: dict[str, Any],
) -> None:
    # Without both grants an alarm on an encrypted topic fails to notify, silently.
    key_policy = template["Resources"]["AlertKey"]["Properties"]["KeyPolicy"]
    cloudwatch_key_actions = {
        action
        for statement in key_policy["Statement"]
        if statement["Effect"] == "Allow"
        and statement.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
        for action in _as_list(statement["Action"])
    }
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= cloudwatch_key_actions

    (topic_policy,) = _of_type(template, "AWS::SNS::TopicPolicy").values()
    assert topic_policy["Topics"] == [{"Ref": "AlertTopic"}]
    (publish,) = [
        statement
        for statement in topic_policy["PolicyDocument"]["Statement"]
        if statement.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
    ]
    assert _as_list(publish["Action"]) == ["sns:Publish"]
    assert publish["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_alert_email_is_subscribed_only_when_given(template: dict[str, Any]) -> None:
    (subscription,) = [
        resource
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::SNS::Subscription"
    ]
    assert subscription["Condition"] == "HasAlertEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert template["Parameters"]["AlertEmail"]["Default"] == ""


def test_no_role_grants_every_action_or_writes_to_every_resource(
    transformed: dict[str, Any],
) -> None:
    statements = list(_role_statements(transformed))
    assert statements, "the transformed template has no inline role policies"

    for role, statement in statements:
        actions = [str(action) for action in _as_list(statement["Action"])]
        assert not [a for a in actions if a == "*" or a.endswith(":*")], (role, statement)
        if "*" in _as_list(statement.get("Resource", [])):
            writes = [a for a in actions if not a.split(":")[-1].startswith(READ_ONLY_VERBS)]
            assert writes == [], (role, statement)


def _invoke_rights(
    transformed: dict[str, Any], function: str
) -> tuple[dict[str, str], Callable[[str], bool], list[str]]:
    """The generated names, whether ``function`` may invoke a name, and a sibling stack's task
    and dispatch worker, for a stack whose long name CloudFormation shortens in those names."""
    stack = "cronfleet-production-eu-west-1-billing-team"
    names = {
        logical_id: f"{stack[:20]}-{logical_id}-A1B2C3"
        for logical_id, resource in transformed["Resources"].items()
        if resource["Type"] == LAMBDA_FUNCTION
    }
    naming = iam.Naming(names, stack_name=stack)
    tags = iam.function_tags(transformed, naming)
    siblings = {
        f"{stack}-staging-ExampleTaskFunction-Z9Y8X7": "task",
        f"{stack}-staging-DispatchWorkerFunction-Z9Y8X7": "dispatch-worker",
    }
    for sibling, role in siblings.items():
        tags[sibling] = {"cronfleet:role": role, "cronfleet:stack": f"{stack}-staging"}
    policy = iam.function_policies(transformed, naming)[function]
    calls = iam.Calls(naming, tags)

    def may_invoke(name: str) -> bool:
        (needed,) = calls.needed("lambda", "Invoke", {"FunctionName": name})
        return policy.allows(needed.action, needed.resource, needed.context)

    return names, may_invoke, list(siblings)


@pytest.mark.parametrize(
    ("function", "machinery"),
    [
        # The dispatcher hands busy shards to the dispatch worker...
        ("DispatcherFunction", {"DispatchWorkerFunction"}),
        # ...and a worker short of time hands the rest to a continuation of itself.
        ("DispatchWorkerFunction", {"DispatchWorkerFunction"}),
    ],
)
def test_the_dispatchers_may_invoke_exactly_this_stacks_tasks_and_dispatch_worker(
    transformed: dict[str, Any], function: str, machinery: set[str]
) -> None:
    names, may_invoke, siblings = _invoke_rights(transformed, function)

    # Every task function of this stack can be invoked, whatever its name, and the worker...
    tasks = _task_functions(transformed)
    assert tasks
    assert all(may_invoke(names[task]) for task in tasks | machinery)
    # ...and nothing else: not the rest of the stack's machinery, not the sibling's functions
    others = [logical_id for logical_id in names if logical_id not in tasks | machinery]
    assert others
    assert [other for other in others if may_invoke(names[other])] == []
    assert [sibling for sibling in siblings if may_invoke(sibling)] == []


def test_functions_scheduled_as_tasks_are_exactly_the_tagged_ones(
    template: dict[str, Any], transformed: dict[str, Any]
) -> None:
    # The tag is what lets the dispatcher invoke a function: an untagged task could never run,
    # and a tagged dispatcher, registry or recorder could be invoked as if it were a task.
    # A task with an Http target runs in the built-in HTTP caller.
    scheduled = {
        task["Function"]["Fn::GetAtt"][0] if "Function" in task else "HttpTaskFunction"
        for task in _of_type(template, "Custom::ScheduledTask").values()
    }

    assert scheduled
    assert _task_functions(transformed) == scheduled


def test_every_task_function_fails_over_to_the_recorder_without_lambda_retries(
    transformed: dict[str, Any],
) -> None:
    configs = {
        config["FunctionName"]["Ref"]: config
        for config in _of_type(transformed, "AWS::Lambda::EventInvokeConfig").values()
    }
    tasks = _task_functions(transformed)
    assert tasks

    for logical_id in tasks:
        config = configs[logical_id]
        assert config["MaximumRetryAttempts"] == 0, logical_id
        assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": ["RecorderFunction", "Arn"]
        }, logical_id


def test_functions_that_alert_may_publish_to_the_topic_with_its_key(
    transformed: dict[str, Any],
) -> None:
    # Judged as IAM judges a call: each role's statements, inline and managed, evaluated for
    # the topic's and the key's ARNs.
    naming = iam.local_naming(transformed, {})
    policies = iam.function_policies(transformed, naming)
    resolver = iam.Resolver(transformed, naming)
    topic, key = resolver.arn("AlertTopic"), resolver.arn("AlertKey")
    other_topic = topic.replace(":AlertTopic", ":SomeoneElsesTopic")
    for function in ("DispatcherFunction", "RecorderFunction", *_task_functions(transformed)):
        policy = policies[function]
        assert policy.allows("sns:Publish", topic), f"{function} cannot publish alerts"
        assert not policy.allows("sns:Publish", other_topic), function
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            assert policy.allows(action, key), (function, action)
        assert iam.granted_actions(policy, [key]) == {"kms:GenerateDataKey", "kms:Decrypt"}


def test_dispatcher_ticks_that_cannot_be_delivered_go_to_an_alarmed_queue(
    template: dict[str, Any],
) -> None:
    tick = template["Resources"]["DispatcherFunction"]["Properties"]["Events"]["Tick"]
    queue = template["Resources"]["DispatcherDeadLetterQueue"]["Properties"]
    alarm = template["Resources"]["DispatcherDeadLetterAlarm"]["Properties"]

    assert tick["Properties"]["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": ["DispatcherDeadLetterQueue", "Arn"]}
    }
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DispatcherDeadLetterQueue", "QueueName"]}}
    ]


def test_dashboard_and_alarms_use_only_metrics_the_code_emits(
    template: dict[str, Any], repo_root: Path
) -> None:
    from cronfleet.alerts.alerter import RUN_DURATION, RUN_FAILED, RUN_SUCCEEDED, RUN_TIMED_OUT

    # Run metrics are emitted through single-metric contexts under these names.
    runs = {RUN_SUCCEEDED, RUN_FAILED, RUN_DURATION, RUN_TIMED_OUT}
    emitted = _emitted_metric_names(repo_root) | runs
    assert "DispatcherHeartbeat" in emitted, "the metric name scan found nothing: fix the regex"
    used = _cronfleet_metrics_in_dashboard(_dashboard(template)) | _cronfleet_metrics_in_alarms(
        template
    )
    assert used, "no Cronfleet metric found in the dashboard or alarms: fix the parser"

    assert used - emitted == set()


def test_dashboard_shows_every_alarm_and_recent_failures_of_every_function_on_the_path(
    template: dict[str, Any],
) -> None:
    body = template["Resources"]["CronfleetDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    dashboard = _dashboard(template)
    (alarm_widget,) = [w for w in dashboard["widgets"] if w["type"] == "alarm"]
    (log_widget,) = [w for w in dashboard["widgets"] if w["type"] == "log"]

    assert len(alarm_widget["properties"]["alarms"]) == len(_of_type(template, ALARM))
    for alarm in _of_type(template, ALARM):
        assert f"${{{alarm}.Arn}}" in body, f"{alarm} is missing from the alarm widget"
    # Every function logs to the stack's one log group: a new task is in the widget unedited.
    assert "SOURCE '${FunctionLogGroup}' | fields" in body
    assert 'filter level = "ERROR"' in log_widget["properties"]["query"]


def test_outputs_lead_to_the_dashboard_topic_and_dead_letter_queue(
    template: dict[str, Any],
) -> None:
    outputs = template["Outputs"]
    dashboard_name = template["Resources"]["CronfleetDashboard"]["Properties"]["DashboardName"]

    assert dashboard_name == {"Fn::Sub": "${AWS::StackName}-cronfleet"}
    # The functions link to the dashboard by the name they are given, when there is one.
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["DASHBOARD_NAME"] == {"Fn::If": ["HasDashboard", dashboard_name, ""]}
    assert template["Resources"]["CronfleetDashboard"]["Condition"] == "HasDashboard"
    assert outputs["DashboardUrl"]["Condition"] == "HasDashboard"
    assert template["Conditions"]["HasDashboard"] == {"Fn::Equals": [{"Ref": "Dashboard"}, "true"]}
    # Off by default: $3 a month at list price is most of a small fleet's bill (docs/costs.md).
    assert template["Parameters"]["Dashboard"]["Default"] == "false"
    assert variables["ALERT_TOPIC_ARN"] == {"Ref": "AlertTopic"}
    assert outputs["DashboardUrl"]["Value"]["Fn::Sub"].endswith(
        "#dashboards/dashboard/${CronfleetDashboard}"
    )
    assert outputs["AlertTopicArn"]["Value"] == {"Ref": "AlertTopic"}
    assert outputs["DispatcherDeadLetterQueueUrl"]["Value"] == {"Ref": "DispatcherDeadLetterQueue"}


def test_every_checkov_skip_says_why(template: dict[str, Any]) -> None:
    # `make checkov` must be clean; a finding may be skipped only with a reason beside it.
    skips = [
        (logical_id, skip)
        for logical_id, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert skip["id"].startswith("CKV_"), logical_id
        assert len(skip.get("comment", "").split()) >= 6, (logical_id, skip)


def test_task_functions_are_traced_when_the_dispatcher_says_and_the_stacks_own_always(
    transformed: dict[str, Any],
) -> None:
    functions = _of_type(transformed, LAMBDA_FUNCTION)
    tasks = _task_functions(transformed)
    modes = {name: f["TracingConfig"]["Mode"] for name, f in functions.items()}

    # A task function only when its Invoke carries Sampled=1 (cronfleet.tracing)...
    assert {modes[task] for task in tasks} == {"PassThrough"}
    # ...the dispatcher and its workers, which would trace every tick, as DispatcherTracing
    # says (PassThrough by default)...
    dispatch = {"DispatcherFunction", "DispatchWorkerFunction"}
    for name in dispatch:
        assert modes[name] == {"Ref": "DispatcherTracing"}
    assert transformed["Parameters"]["DispatcherTracing"]["Default"] == "PassThrough"
    # ...the stack's other functions at Lambda's rate...
    others = set(modes) - tasks - dispatch
    assert {modes[name] for name in others} == {"Active"}
    # ...and every role may send its segments, PassThrough ones included.
    roles = _of_type(transformed, "AWS::IAM::Role")
    for name in functions:
        arns = json.dumps(roles[f"{name}Role"]["ManagedPolicyArns"])
        assert "AWSXrayWriteOnlyAccess" in arns, name
