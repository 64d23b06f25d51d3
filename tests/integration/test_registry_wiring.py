"""At deploy, the registry refuses a task whose function cannot run it, with validate's lines.

Lambda's and IAM's control planes have no local engine, so their clients are botocore Stubbers
that expect the exact requests the registry must make (configuration, tags, invoke config,
policy simulation: reads only, never the code) and answer as the services answer. The task
store is DynamoDB Local: a refused task must leave nothing registered, an accepted one is.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cronfleet.registry.custom_resource import CustomResourceEvent, respond
from cronfleet.registry.deployed_wiring import DeployedFunctions
from cronfleet.registry.wiring import WiringCheck
from cronfleet.store import Store

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STACK = "cronfleet-prod"
STACK_ID = f"arn:aws:cloudformation:eu-west-1:210987654321:stack/{STACK}/abc"
PREFIX = "arn:aws:lambda:eu-west-1:210987654321:function:"
FUNCTION_ARN = f"{PREFIX}cronfleet-prod-ReportFunction-AbC"
HTTP_FUNCTION = "cronfleet-prod-HttpTaskFunction-XyZ"
RECORDER = f"{PREFIX}cronfleet-prod-RecorderFunction-QrS"
ROLE = "arn:aws:iam::210987654321:role/cronfleet-prod-ReportFunctionRole-1"
TABLES = "arn:aws:dynamodb:eu-west-1:210987654321:table/"
TASK_TAGS = {"cronfleet:role": "task", "cronfleet:stack": STACK, "lambda:createdBy": "SAM"}
SECRET = "arn:aws:ssm:eu-west-1:210987654321:parameter/cronfleet/partner-token"


class ControlPlane:
    """Stubbed Lambda and IAM clients, and the requests they expect, in order."""

    def __init__(self, tasks_table: str, executions_table: str) -> None:
        keys = {"aws_access_key_id": "stubbed", "aws_secret_access_key": "stubbed"}
        self.lambda_client = boto3.client("lambda", region_name="eu-west-1", **keys)
        self.iam_client = boto3.client("iam", region_name="us-east-1", **keys)
        self.lambda_stub = Stubber(self.lambda_client)
        self.iam_stub = Stubber(self.iam_client)
        self.tables = (TABLES + tasks_table, TABLES + executions_table)
        self.sleeps: list[float] = []
        self.now = 1000.0  # the registry's monotonic clock

    def function(
        self,
        name: str = FUNCTION_ARN,
        *,
        tags: dict[str, str] | None = None,
        invoke: dict[str, Any] | None = None,
    ) -> None:
        arn = name if name.startswith("arn:") else PREFIX + name
        self.lambda_stub.add_response(
            "get_function_configuration",
            {"FunctionName": arn.rsplit(":", 1)[-1], "FunctionArn": arn, "Role": ROLE},
            {"FunctionName": name},
        )
        self.lambda_stub.add_response(
            "list_tags", {"Tags": TASK_TAGS if tags is None else tags}, {"Resource": arn}
        )
        if invoke is None:
            self.lambda_stub.add_client_error(
                "get_function_event_invoke_config",
                "ResourceNotFoundException",
                "The function has no EventInvokeConfig",
                404,
                expected_params={"FunctionName": name},
            )
        else:
            self.lambda_stub.add_response(
                "get_function_event_invoke_config", invoke, {"FunctionName": name}
            )

    def simulation(self, denied: set[str] = frozenset(), *, secret: bool = False) -> None:  # type: ignore[assignment]
        asks = [
            (self.tables[0], ["dynamodb:GetItem", "dynamodb:UpdateItem"]),
            (self.tables[1], ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"]),
        ]
        if secret:
            asks.append((SECRET, ["ssm:GetParameter"]))
        for resource, actions in asks:
            self.iam_stub.add_response(
                "simulate_principal_policy",
                {
                    "EvaluationResults": [
                        {
                            "EvalActionName": action,
                            "EvalResourceName": resource,
                            "EvalDecision": "implicitDeny" if action in denied else "allowed",
                        }
                        for action in actions
                    ],
                    "IsTruncated": False,
                },
                {"PolicySourceArn": ROLE, "ActionNames": actions, "ResourceArns": [resource]},
            )

    def check(self) -> WiringCheck:
        return WiringCheck(
            source=DeployedFunctions(
                self.lambda_client,
                self.iam_client,
                sleep=self.sleeps.append,
                monotonic=lambda: self.now,
            ),
            recorder_arn=RECORDER,
            tasks_table_arn=self.tables[0],
            executions_table_arn=self.tables[1],
            http_function=HTTP_FUNCTION,
        )


WIRED = {
    "MaximumRetryAttempts": 0,
    "MaximumEventAgeInSeconds": 360,
    "DestinationConfig": {"OnFailure": {"Destination": RECORDER}},
}


@pytest.fixture
def plane(store: Store) -> Iterator[ControlPlane]:
    plane = ControlPlane(store.tasks_table, store.executions_table)
    with plane.lambda_stub, plane.iam_stub:
        yield plane
        # then every request the registry had to make was made, and no other
        plane.lambda_stub.assert_no_pending_responses()
        plane.iam_stub.assert_no_pending_responses()


def _create(store: Store, check: WiringCheck, **properties: Any) -> tuple[str, str | None, str]:
    task_id = f"Report{uuid.uuid4().hex[:8]}"
    event = {
        "RequestType": "Create",
        "ResponseURL": "https://cloudformation-custom-resource-response.s3.amazonaws.com/x",
        "StackId": STACK_ID,
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "ReportTask",
        "ResourceType": "Custom::ScheduledTask",
        "ResourceProperties": {
            "ServiceToken": f"{PREFIX}cronfleet-prod-RegistryFunction-1",
            "Name": task_id,
            "Schedule": "cron(0 6 * * ? *)",
            **properties,
        },
    }
    response = respond(event, CustomResourceEvent.model_validate(event), store, NOW, wiring=check)
    return response.status, response.reason, task_id


def test_a_task_whose_function_is_wired_as_a_task_is_registered(
    store: Store, plane: ControlPlane
) -> None:
    # given a function tagged as a task of this stack, without Lambda retries, failing over to
    # the recorder, whose role may record runs
    plane.function(invoke=WIRED)
    plane.simulation()

    # when CloudFormation creates its task
    status, reason, task_id = _create(store, plane.check(), Function=FUNCTION_ARN)

    # then the task is registered, after reads alone
    assert (status, reason) == ("SUCCESS", None)
    assert store.get_task(task_id) is not None
    assert plane.sleeps == []


MISWIRED = {
    "not tagged as a task of this stack": (
        {
            "tags": {"cronfleet:role": "task", "cronfleet:stack": "cronfleet-staging"},
            "invoke": WIRED,
        },
        set(),
        "function cronfleet-prod-ReportFunction-AbC is not tagged as a task of this stack "
        "(cronfleet:role: task and cronfleet:stack: !Ref AWS::StackName), so the dispatcher may "
        "not invoke it",
    ),
    "Lambda's own retries": (
        {"invoke": {**WIRED, "MaximumRetryAttempts": 1}},
        set(),
        "function cronfleet-prod-ReportFunction-AbC lets Lambda retry a failed run 1 times "
        "(EventInvokeConfig.MaximumRetryAttempts); it must be 0: cronfleet retries each slot "
        "itself, and Lambda's retries would rerun the task unrecorded",
    ),
    "no ledger permissions": (
        {"invoke": WIRED},
        {"dynamodb:PutItem"},
        "function cronfleet-prod-ReportFunction-AbC lacks the ledger permissions "
        "(dynamodb:PutItem on the tasks and executions tables), so it could not record its "
        "runs: add TaskFunctionPolicy to its Policies",
    ),
}


@pytest.mark.parametrize("defect", list(MISWIRED))
def test_a_miswired_function_fails_the_deploy_with_the_line_validate_prints(
    store: Store, plane: ControlPlane, defect: str
) -> None:
    # given a function with one wiring defect (settled: re-read, it says the same)
    function, denied, reason = MISWIRED[defect]
    retries_wrong = "invoke" in function and function["invoke"]["MaximumRetryAttempts"] != 0
    for _ in range(6 if retries_wrong else 1):
        plane.function(**function)
    plane.simulation(denied)

    # when CloudFormation creates its task
    status, answer, task_id = _create(store, plane.check(), Function=FUNCTION_ARN)

    # then the deploy fails with the one line, and nothing is registered
    assert status == "FAILED"
    assert answer == f"ReportTask.Function: {reason}"
    assert store.get_task(task_id) is None


def test_an_invoke_config_created_alongside_the_task_is_waited_for(
    store: Store, plane: ControlPlane
) -> None:
    # given CloudFormation still creating the function's EventInvokeConfig: not there on the
    # first two reads
    plane.function(invoke=None)
    plane.function(invoke=None)
    plane.function(invoke=WIRED)
    plane.simulation()

    # when the task is created
    status, reason, _ = _create(store, plane.check(), Function=FUNCTION_ARN)

    # then the registry read again after short pauses, and registered the task
    assert (status, reason) == ("SUCCESS", None)
    assert plane.sleeps == [1.0, 2.0]


def test_a_function_that_never_gets_a_destination_is_refused_within_the_settling_time(
    store: Store, plane: ControlPlane
) -> None:
    # given a function with no EventInvokeConfig at all, on every read
    for _ in range(6):
        plane.function(invoke=None)
    plane.simulation()

    # when the task is created
    status, reason, _ = _create(store, plane.check(), Function=FUNCTION_ARN)

    # then it is refused for both defaults Lambda applies, after at most 20 s of pauses
    assert status == "FAILED"
    assert reason is not None
    assert reason.splitlines() == [
        "ReportTask.Function: function cronfleet-prod-ReportFunction-AbC has no on-failure "
        "destination to the recorder (EventInvokeConfig.DestinationConfig.OnFailure): a crash "
        "or a timeout would leave its run unrecorded until the watchdog gives it up",
        "ReportTask.Function: function cronfleet-prod-ReportFunction-AbC lets Lambda retry a "
        "failed run 2 times (EventInvokeConfig.MaximumRetryAttempts); it must be 0: cronfleet "
        "retries each slot itself, and Lambda's retries would rerun the task unrecorded",
    ]
    assert plane.sleeps == [1.0, 2.0, 4.0, 6.0, 7.0]
    assert sum(plane.sleeps) <= 20


def test_an_http_task_is_refused_when_the_http_function_may_not_read_its_secret(
    store: Store, plane: ControlPlane
) -> None:
    # given the HTTP function, wired as a task, but its role denies reading the task's secret
    plane.function(HTTP_FUNCTION, invoke=WIRED)
    plane.simulation({"ssm:GetParameter"}, secret=True)

    # when an Http task naming that secret is created
    status, reason, task_id = _create(
        store,
        plane.check(),
        Http={"Url": "https://partner.example.com/sync", "SecretArn": SECRET},
    )

    # then the deploy fails on the task's SecretArn
    assert status == "FAILED"
    assert reason == (
        f"ReportTask.Http.SecretArn: the HTTP function {HTTP_FUNCTION} may not read {SECRET} "
        "(its role does not allow ssm:GetParameter on it), so every run would fail"
    )
    assert store.get_task(task_id) is None


def test_a_function_the_registry_may_not_read_fails_the_deploy_saying_why(
    store: Store, plane: ControlPlane
) -> None:
    # given Lambda denying the registry the function's configuration
    plane.lambda_stub.add_client_error(
        "get_function_configuration",
        "AccessDeniedException",
        "User is not authorized to perform: lambda:GetFunctionConfiguration",
        403,
        expected_params={"FunctionName": FUNCTION_ARN},
    )

    # when the task is created
    status, reason, task_id = _create(store, plane.check(), Function=FUNCTION_ARN)

    # then the deploy fails on the task's Function, with Lambda's own words
    assert status == "FAILED"
    assert reason == (
        f"ReportTask.Function: cannot check how {FUNCTION_ARN} is wired: AccessDeniedException: "
        "User is not authorized to perform: lambda:GetFunctionConfiguration"
    )
    assert store.get_task(task_id) is None


def test_a_deploys_tasks_on_one_function_read_it_once_and_a_later_deploy_reads_it_again(
    store: Store, plane: ControlPlane
) -> None:
    # given one warm registry, and a function read and simulated once
    check = plane.check()
    plane.function(invoke=WIRED)
    plane.simulation()

    # when a deploy creates three tasks on it within a few seconds
    answers = []
    for _ in range(3):
        answers.append(_create(store, check, Function=FUNCTION_ARN)[:2])
        plane.now += 5

    # then all are registered on the one read (the stubs hold no more answers than that)
    assert answers == [("SUCCESS", None)] * 3
    plane.lambda_stub.assert_no_pending_responses()
    plane.iam_stub.assert_no_pending_responses()

    # and a deploy a minute later, after the function lost its ledger permissions, sees that
    plane.now += 60
    plane.function(invoke=WIRED)
    plane.simulation({"dynamodb:UpdateItem"})
    status, reason, _ = _create(store, check, Function=FUNCTION_ARN)
    assert status == "FAILED"
    assert reason is not None
    assert "lacks the ledger permissions (dynamodb:UpdateItem" in reason
