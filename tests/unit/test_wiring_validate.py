"""`cronfleet validate` refuses a task whose function cannot run it, as the deploy does.

Each defect is made in a copy of the repository's template, the way a person adding a task
would get it wrong, and judged through the command. The repository's template itself passes
(the control), so every refusal below is the defect's and nothing else's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cronfleet_tools.cli.app import app
from cronfleet_tools.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
Template = dict[str, Any]

TAGS = (
    "ExampleTask.Function: function ExampleTaskFunction is not tagged as a task of this stack "
    "(cronfleet:role: task and cronfleet:stack: !Ref AWS::StackName), so the dispatcher may "
    "not invoke it"
)
RETRIES = (
    "ExampleTask.Function: function ExampleTaskFunction lets Lambda retry a failed run 2 times "
    "(EventInvokeConfig.MaximumRetryAttempts); it must be 0: cronfleet retries each slot "
    "itself, and Lambda's retries would rerun the task unrecorded"
)
DESTINATION = (
    "ExampleTask.Function: function ExampleTaskFunction has no on-failure destination to the "
    "recorder (EventInvokeConfig.DestinationConfig.OnFailure): a crash or a timeout would "
    "leave its run unrecorded until the watchdog gives it up"
)
LEDGER = (
    "ExampleTask.Function: function ExampleTaskFunction lacks the ledger permissions "
    "(dynamodb:GetItem, dynamodb:UpdateItem, dynamodb:PutItem on the tasks and executions "
    "tables), so it could not record its runs: add TaskFunctionPolicy to its Policies"
)
SECRET = (
    "CheckIpTask.Http.SecretArn: the HTTP function HttpTaskFunction may not read "
    "arn:aws:ssm:us-east-1:123456789012:parameter/cronfleet/checkip-token (its role does not "
    "allow ssm:GetParameter on it), so every run would fail"
)


def _example(template: Template) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"]["ExampleTaskFunction"]["Properties"]
    return properties


def _untagged(template: Template) -> None:
    _example(template)["Tags"] = {"cronfleet:role": "worker"}


def _lambda_retries(template: Template) -> None:
    _example(template)["EventInvokeConfig"] = {"MaximumRetryAttempts": 2}


def _no_destination(template: Template) -> None:
    _example(template)["EventInvokeConfig"] = {"DestinationConfig": {"Ref": "AWS::NoValue"}}


def _no_ledger_permissions(template: Template) -> None:
    # What a function copied from another project has: a policy of its own, not the task's.
    _example(template)["Policies"] = [{"S3ReadPolicy": {"BucketName": "reports"}}]


def _unreadable_secret(template: Template) -> None:
    # The secret is under cronfleet/, where the registry's scope allows it, but the HTTP
    # function's role lost the statement that reads parameters.
    http = template["Resources"]["HttpTaskFunction"]["Properties"]
    statements = http["Policies"][1]["Statement"]
    http["Policies"][1]["Statement"] = [
        s for s in statements if s["Sid"] != "ReadCronfleetBearerParameters"
    ]
    template["Resources"]["CheckIpTask"]["Properties"]["Http"]["SecretArn"] = {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/"
        "cronfleet/checkip-token"
    }


DEFECTS: dict[str, tuple[Callable[[Template], None], list[str]]] = {
    "not tagged as a task": (_untagged, [TAGS, TAGS.replace("ExampleTask.", "HourlyDigestTask.")]),
    "Lambda's own retries": (
        _lambda_retries,
        [RETRIES, RETRIES.replace("ExampleTask.", "HourlyDigestTask.")],
    ),
    "no on-failure destination": (
        _no_destination,
        [DESTINATION, DESTINATION.replace("ExampleTask.", "HourlyDigestTask.")],
    ),
    "no ledger permissions": (
        _no_ledger_permissions,
        [LEDGER, LEDGER.replace("ExampleTask.", "HourlyDigestTask.")],
    ),
    "a secret the HTTP function may not read": (_unreadable_secret, [SECRET]),
}


def _validate(tmp_path: Path, template: Template) -> tuple[int, list[str]]:
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    result = CliRunner().invoke(app, ["validate", str(path)])
    return result.exit_code, result.output.splitlines()


def test_the_repositorys_template_is_wired_correctly(tmp_path: Path) -> None:
    # given the template as shipped, read back through YAML as the defects below are
    template = load_template(REPO_ROOT / "template.yaml")

    # when it is validated
    code, lines = _validate(tmp_path, template)

    # then every task is valid
    assert code == 0, lines
    assert lines[-1].endswith("all valid.")


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_a_task_whose_function_cannot_run_it_is_refused_with_one_line_per_task(
    tmp_path: Path, defect: str
) -> None:
    # given the template with one wiring defect
    template = copy.deepcopy(load_template(REPO_ROOT / "template.yaml"))
    make_defect, expected = DEFECTS[defect]
    make_defect(template)

    # when it is validated
    code, lines = _validate(tmp_path, template)

    # then the command fails with exactly the defect's lines, each naming task and field
    assert code == 1, lines
    problems = [line for line in lines if ": " in line and line.split(".", 1)[0].isidentifier()]
    assert problems == expected, lines
