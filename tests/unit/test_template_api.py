"""template.yaml's schedules API: every route signed, the routes of the contract, a role that
does only what the API does, and the tenant index the list reads.

Judged on the transformed template, as in test_template_monitoring: SAM writes the methods
into the REST API's OpenAPI body and the function's permissions and role from its events and
policies, and that output is what API Gateway and IAM enforce.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from cronfleet_tools.local import iam

LAMBDA_FUNCTION = "AWS::Lambda::Function"
TASK_TAG = {"Key": "cronfleet:role", "Value": "task"}

# The contract's routes (method, API Gateway path), the OpenAPI document included.
ROUTES = {
    ("POST", "/tenants/{tenant}/schedules"),
    ("GET", "/tenants/{tenant}/schedules"),
    ("GET", "/tenants/{tenant}/schedules/{id}"),
    ("PATCH", "/tenants/{tenant}/schedules/{id}"),
    ("DELETE", "/tenants/{tenant}/schedules/{id}"),
    ("POST", "/tenants/{tenant}/schedules/{id}/pause"),
    ("POST", "/tenants/{tenant}/schedules/{id}/resume"),
    ("POST", "/tenants/{tenant}/schedules/{id}/trigger"),
    ("GET", "/tenants/{tenant}/schedules/{id}/executions"),
    ("GET", "/tenants/{tenant}/schedules/{id}/stats"),
    ("GET", "/openapi.json"),
}
HTTP_METHODS = {
    "get",
    "put",
    "post",
    "delete",
    "patch",
    "head",
    "options",
    "x-amazon-apigateway-any-method",
}


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def _operations(transformed: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every operation of the schedules API's OpenAPI body, by (METHOD, path)."""
    body = transformed["Resources"]["ScheduleApi"]["Properties"]["Body"]
    return {
        (method.upper(), path): operation
        for path, item in body["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def _api_policy(transformed: dict[str, Any]) -> iam.Policy:
    return iam.function_policies(transformed, iam.local_naming(transformed, {}))["ApiFunction"]


def _stage(transformed: dict[str, Any]) -> dict[str, Any]:
    (stage,) = _of_type(transformed, "AWS::ApiGateway::Stage").values()
    return dict(stage["Properties"])


def test_every_method_of_the_api_requires_sigv4(transformed: dict[str, Any]) -> None:
    # given the REST API SAM generates: its methods are operations of its OpenAPI body
    body = transformed["Resources"]["ScheduleApi"]["Properties"]["Body"]

    # when every operation is read off it
    operations = _operations(transformed)

    # then each route has one, the OpenAPI document's too, and each is signed (SigV4)...
    assert len(operations) == len(ROUTES)
    scheme = body["components"]["securitySchemes"]["AWS_IAM"]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    for route, operation in operations.items():
        assert operation["security"] == [{"AWS_IAM": []}], route
    # ...and a method declared beside the body would need IAM too, on the one REST API
    methods = _of_type(transformed, "AWS::ApiGateway::Method")
    assert all(m["Properties"]["AuthorizationType"] == "AWS_IAM" for m in methods.values())
    assert set(_of_type(transformed, "AWS::ApiGateway::RestApi")) == {"ScheduleApi"}


def test_the_api_serves_exactly_the_contracts_routes_from_the_api_function(
    transformed: dict[str, Any],
) -> None:
    # when the routes are read off the deployed API
    operations = _operations(transformed)

    # then they are the contract's, each a Lambda proxy to the API function...
    assert set(operations) == ROUTES
    for route, operation in operations.items():
        integration = operation["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy", route
        assert "${ApiFunction.Arn}" in integration["uri"]["Fn::Sub"], route
        # ...invoked by API Gateway's own permission, not with the caller's credentials: a
        # caller needs execute-api:Invoke and nothing on Lambda
        assert "credentials" not in integration, route


def test_only_this_api_may_invoke_the_api_function(transformed: dict[str, Any]) -> None:
    # when the function's resource policy is read, one permission per route
    permissions = [
        resource["Properties"]
        for resource in _of_type(transformed, "AWS::Lambda::Permission").values()
        if resource["Properties"]["FunctionName"] == {"Ref": "ApiFunction"}
    ]

    # then each lets API Gateway invoke it for this API only
    assert len(permissions) == len(ROUTES)
    for permission in permissions:
        text, variables = permission["SourceArn"]["Fn::Sub"]
        assert permission["Principal"] == "apigateway.amazonaws.com"
        assert text.startswith("arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${__ApiId__}/")
        assert variables["__ApiId__"] == {"Ref": "ScheduleApi"}


def test_the_api_has_one_stage_v1_throttled_by_the_parameters(
    template: dict[str, Any], transformed: dict[str, Any]
) -> None:
    # given the parameters' defaults
    rate, burst = (
        template["Parameters"][name] for name in ("ApiThrottleRateLimit", "ApiThrottleBurstLimit")
    )

    # when the stages and deployments are read
    stage = _stage(transformed)
    deployments = _of_type(transformed, "AWS::ApiGateway::Deployment").values()

    # then there is one stage, v1, throttled for every method; no deployment names a second
    # one (which would be reachable without v1's throttling)
    assert stage["StageName"] == "v1"
    assert all("StageName" not in d["Properties"] for d in deployments)
    assert stage["MethodSettings"] == [
        {
            "ResourcePath": "/*",
            "HttpMethod": "*",
            "ThrottlingRateLimit": {"Ref": "ApiThrottleRateLimit"},
            "ThrottlingBurstLimit": {"Ref": "ApiThrottleBurstLimit"},
        }
    ]
    assert (rate["Default"], burst["Default"]) == (50, 100)


def test_access_logs_are_written_only_when_asked_for_and_kept_like_the_functions_logs(
    template: dict[str, Any], transformed: dict[str, Any]
) -> None:
    # given the log group and the switch (off: an account without API Gateway's CloudWatch
    # role refuses a stage with access logs, so the default deploys anywhere)
    group = template["Resources"]["ScheduleApiAccessLogGroup"]
    assert template["Parameters"]["ApiAccessLogs"]["Default"] == "false"

    # when the stage's access log setting is read
    condition, logging, otherwise = _stage(transformed)["AccessLogSetting"]["Fn::If"]

    # then it logs to that group only when switched on
    assert (condition, otherwise) == ("HasApiAccessLogs", {"Ref": "AWS::NoValue"})
    assert group["Condition"] == "HasApiAccessLogs"
    assert logging["DestinationArn"] == {"Fn::GetAtt": ["ScheduleApiAccessLogGroup", "Arn"]}
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    # one JSON object per request, naming the caller, never a body
    line = json.loads(logging["Format"])
    assert {"requestId", "status", "userArn", "resourcePath"} <= set(line)
    assert [value for value in line.values() if "body" in value.lower()] == []


def test_the_custom_domain_exists_only_when_its_parameters_are_given(
    template: dict[str, Any], transformed: dict[str, Any]
) -> None:
    # given the domain's parameters, empty by default
    parameters = template["Parameters"]
    assert parameters["ApiDomainName"]["Default"] == parameters["ApiCertificateArn"]["Default"]
    assert parameters["ApiDomainName"]["Default"] == ""

    # when its resources are read
    domain = transformed["Resources"]["ScheduleApiDomain"]
    mapping = transformed["Resources"]["ScheduleApiBasePathMapping"]

    # then both exist only under the condition, with a modern TLS policy
    assert domain["Condition"] == mapping["Condition"] == "HasApiDomain"
    assert domain["Properties"]["RegionalCertificateArn"] == {"Ref": "ApiCertificateArn"}
    assert domain["Properties"]["SecurityPolicy"] == "TLS_1_2"
    # the domain's root is the v1 stage: a base path would arrive in every event's path
    assert mapping["Properties"]["RestApiId"] == {"Ref": "ScheduleApi"}
    assert mapping["Properties"]["Stage"] == {"Ref": "ScheduleApiv1Stage"}
    assert "BasePath" not in mapping["Properties"]
    # and a half-given domain is refused before any change is made
    assert "ApiCustomDomainIsWhole" in template["Rules"]


def test_the_api_function_may_read_and_write_schedules_but_never_scan_or_delete(
    transformed: dict[str, Any],
) -> None:
    # given the API function's role, judged as IAM judges a call
    policy = _api_policy(transformed)
    resolver = iam.Resolver(transformed, iam.local_naming(transformed, {}))
    tasks, executions = resolver.arn("TasksTable"), resolver.arn("ExecutionsTable")
    tenant_index = f"{tasks}/index/tenant-index"

    # when what it may do on each table is listed
    on_tasks = iam.granted_actions(policy, [tasks])
    on_executions = iam.granted_actions(policy, [executions])

    # then it is exactly what the API does...
    assert on_tasks == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    }
    assert on_executions == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    }
    assert policy.allows("dynamodb:Query", tenant_index)
    # ...and nothing broader: no scans, no deletes, no batches, no other index
    for table in (tasks, tenant_index, executions):
        for action in ("Scan", "DeleteItem", "BatchWriteItem", "BatchGetItem", "DeleteTable"):
            assert not policy.allows(f"dynamodb:{action}", table), (action, table)
    assert not policy.allows("dynamodb:Query", tasks)
    assert not policy.allows("dynamodb:Query", f"{tasks}/index/due-keys-index")
    assert not policy.allows("dynamodb:Query", f"{executions}/index/inflight-keys-index")
    # ...and no service but the two it calls (no alerts, no secrets)
    services = {action.split(":")[0] for s in policy.statements for action in s.actions}
    assert services == {"dynamodb", "lambda"}


def test_the_api_functions_transactions_are_allowed_and_a_deleting_one_is_not(
    transformed: dict[str, Any],
) -> None:
    # given a create's transaction (the schedule, the tenant's counter; put, update and check
    # all allowed on the tasks table), a trigger Lambda refused (the attempt recorded LOST
    # with the task's counters), a list page and a trigger's PENDING entry
    naming = iam.local_naming(transformed, {})
    policy = _api_policy(transformed)
    calls = iam.Calls(naming, iam.function_tags(transformed, naming))
    create = [
        {"Put": {"TableName": "TasksTable", "Item": {}}},
        {"Update": {"TableName": "TasksTable", "Key": {}}},
        {"ConditionCheck": {"TableName": "TasksTable", "Key": {}}},
    ]
    lost = [
        {"Update": {"TableName": "ExecutionsTable", "Key": {}}},
        {"Update": {"TableName": "TasksTable", "Key": {}}},
    ]
    delete = [{"Delete": {"TableName": "TasksTable", "Key": {}}}]

    # when each call is turned into what IAM checks
    needed = [
        *calls.needed("dynamodb", "TransactWriteItems", {"TransactItems": create}),
        *calls.needed("dynamodb", "TransactWriteItems", {"TransactItems": lost}),
        *calls.needed(
            "dynamodb", "Query", {"TableName": "TasksTable", "IndexName": "tenant-index"}
        ),
        *calls.needed("dynamodb", "PutItem", {"TableName": "ExecutionsTable"}),
    ]
    (deleting,) = calls.needed("dynamodb", "TransactWriteItems", {"TransactItems": delete})

    # then every part of the API's own calls is allowed, and the delete is not
    assert [n for n in needed if not policy.allows(n.action, n.resource, n.context)] == []
    assert not policy.allows(deleting.action, deleting.resource, deleting.context)


def test_the_api_function_may_invoke_exactly_this_stacks_task_functions(
    transformed: dict[str, Any],
) -> None:
    # given the stack under a long name, next to a sibling stack whose name starts the same way
    stack = "cronfleet-production-eu-west-1-billing-team"
    functions = _of_type(transformed, LAMBDA_FUNCTION)
    names = {logical_id: f"{stack[:20]}-{logical_id}-A1B2C3" for logical_id in functions}
    naming = iam.Naming(names, stack_name=stack)
    tags = iam.function_tags(transformed, naming)
    sibling = f"{stack}-staging-ExampleTaskFunction-Z9Y8X7"
    tags[sibling] = {"cronfleet:role": "task", "cronfleet:stack": f"{stack}-staging"}
    api = iam.function_policies(transformed, naming)["ApiFunction"]
    calls = iam.Calls(naming, tags)
    tasks = {
        logical_id
        for logical_id, function in functions.items()
        if TASK_TAG in function["Properties"].get("Tags", [])
    }

    # when a trigger invokes a function
    def may_invoke(function: str) -> bool:
        (needed,) = calls.needed("lambda", "Invoke", {"FunctionName": function})
        return api.allows(needed.action, needed.resource, needed.context)

    # then it reaches every task function of this stack, the HTTP caller included...
    assert {"ExampleTaskFunction", "HttpTaskFunction", "WeeklyDigestFunction"} <= tasks
    assert [task for task in tasks if not may_invoke(names[task])] == []
    # ...and nothing else: not the machinery, not itself, not the sibling's tasks
    for core in ("RegistryFunction", "DispatcherFunction", "RecorderFunction", "ApiFunction"):
        assert not may_invoke(names[core]), core
    assert not may_invoke(sibling)


def test_the_api_function_is_core_not_a_task_and_fits_api_gateways_timeout(
    transformed: dict[str, Any],
) -> None:
    # when the function and its asynchronous invoke settings are read
    function = transformed["Resources"]["ApiFunction"]["Properties"]
    (config,) = [
        c["Properties"]
        for c in _of_type(transformed, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": "ApiFunction"}
    ]

    # then it is tagged core, so the dispatcher and a trigger can never invoke it
    assert {"Key": "cronfleet:role", "Value": "core"} in function["Tags"]
    assert TASK_TAG not in function["Tags"]
    # it is done before API Gateway gives up on it (29 seconds)
    assert function["Timeout"] <= 29
    # and a failed request is not a task's attempt: nothing for the recorder, no retries
    assert not config.get("DestinationConfig")
    assert config["MaximumRetryAttempts"] == 0


def test_the_api_allows_the_stacks_task_functions_by_logical_name_and_caps_each_tenant(
    template: dict[str, Any],
) -> None:
    # given the API function's environment
    variables = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    quota = template["Parameters"]["ApiTenantQuota"]

    # when the allow-list is read as the function reads it, each ${Ref} a function's name
    text = variables["API_TASK_FUNCTIONS"]["Fn::Sub"]
    allowed = json.loads(re.sub(r"\$\{(\w+)\}", r"\1", text))

    # then each name a caller may write is that function's logical id, a task of the stack
    assert allowed == {
        "ExampleTaskFunction": "ExampleTaskFunction",
        "WeeklyDigestFunction": "WeeklyDigestFunction",
    }
    for logical_id in allowed:
        own = template["Resources"][logical_id]["Properties"].get("Tags", {})
        assert (template["Globals"]["Function"]["Tags"] | own)["cronfleet:role"] == "task"
    assert variables["HTTP_FUNCTION_NAME"] == {"Ref": "HttpTaskFunction"}
    assert variables["API_TENANT_QUOTA"] == {"Ref": "ApiTenantQuota"}
    assert (quota["Default"], quota["MinValue"]) == (1000, 1)


def test_the_tenant_index_lists_a_tenants_schedules_by_external_id(
    template: dict[str, Any],
) -> None:
    # given the tasks table
    table = template["Resources"]["TasksTable"]["Properties"]
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}

    # when its indexes are read
    indexes = {
        index["IndexName"]: index
        for index in table["GlobalSecondaryIndexes"]
        if "Fn::If" not in index  # an index kept only while a stack upgrades
    }

    # then tenant-index is keyed by tenant, sorted by tenant_sort, both strings
    tenant_index = indexes["tenant-index"]
    assert tenant_index["KeySchema"] == [
        {"AttributeName": "tenant", "KeyType": "HASH"},
        {"AttributeName": "tenant_sort", "KeyType": "RANGE"},
    ]
    assert (types["tenant"], types["tenant_sort"]) == ("S", "S")
    # it holds what a listed schedule shows, none of the counters every run rewrites
    assert tenant_index["Projection"]["ProjectionType"] == "INCLUDE"
    assert set(tenant_index["Projection"]["NonKeyAttributes"]) == {
        "definition",
        "paused",
        "deleted",
        "next_run",
        "owner",
        "external_id",
        "created_at",
        "updated_at",
        "version",
    }
    # and every defined attribute is a key (CloudFormation refuses an unused definition)
    keys = {key["AttributeName"] for i in [table, *indexes.values()] for key in i["KeySchema"]}
    assert keys == set(types)


def test_the_outputs_give_the_api_url_and_id(template: dict[str, Any]) -> None:
    # when the outputs are read
    outputs = template["Outputs"]

    # then they give the stage's URL and the id an execute-api policy names
    assert outputs["ScheduleApiUrl"]["Value"] == {
        "Fn::Sub": "https://${ScheduleApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/v1"
    }
    assert outputs["ScheduleApiId"]["Value"] == {"Ref": "ScheduleApi"}
    assert outputs["ScheduleApiDomainUrl"]["Condition"] == "HasApiDomain"
    assert outputs["ScheduleApiDomainTarget"]["Condition"] == "HasApiDomain"


@pytest.mark.parametrize("name", ["api_create_schedule", "api_list_schedules"])
def test_the_api_sample_events_are_signed_rest_requests_for_a_declared_route(
    load_event: Any, name: str
) -> None:
    # when a sample event is loaded, as `sam local invoke -e` does
    event = load_event(name)
    context = event["requestContext"]

    # then it is a REST proxy event (v1) of a route the API declares, on stage v1
    assert (event["httpMethod"], event["resource"]) in ROUTES
    assert (context["httpMethod"], context["resourcePath"]) == (
        event["httpMethod"],
        event["resource"],
    )
    assert context["stage"] == "v1"
    assert context["path"] == f"/v1{event['path']}"
    tenant = event["pathParameters"]["tenant"]
    assert event["path"] == event["resource"].replace("{tenant}", tenant)
    # from a caller API Gateway identified by its IAM credentials
    assert context["identity"]["userArn"].startswith("arn:aws:sts::")
    if event["body"] is not None:
        assert isinstance(json.loads(event["body"]), dict)


def test_transforming_the_template_locally_asks_no_feature_flag_aloud(
    template: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # given the template, whose API sets an OpenApiVersion: the translator then asks its
    # feature flags, and its default warns, on a command's stderr, that it knows none

    # when the local tooling transforms it, as `make run` and `cronfleet validate` do
    with caplog.at_level(logging.WARNING):
        iam.transform(template)

    # then no flag lookup is heard
    flags = [r.getMessage() for r in caplog.records if r.name.startswith("samtranslator.feature")]
    assert flags == []
