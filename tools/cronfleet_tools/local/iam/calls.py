"""What each AWS call a function makes needs from its role, and the check of one call."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cronfleet_tools.local.iam.policies import Policy
from cronfleet_tools.local.iam.resolving import LOCAL_STACK_NAME, Context, Naming

# --- what a call needs ---------------------------------------------------------------------------

_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


@dataclass(frozen=True)
class Needed:
    action: str
    resource: str
    context: Context = field(default_factory=dict)


class Calls:
    """Maps one boto3 call to the permissions it needs, given what things are called here."""

    def __init__(self, naming: Naming, tags: Mapping[str, Mapping[str, str]]) -> None:
        self.naming = naming
        self.tags = tags

    def _arn(self, service: str, resource: str) -> str:
        n = self.naming
        return f"arn:{n.partition}:{service}:{n.region}:{n.account}:{resource}"

    def table(self, name: str, index: str | None = None) -> str:
        return self._arn("dynamodb", f"table/{name}" + (f"/index/{index}" if index else ""))

    def needed(self, service: str, operation: str, params: Mapping[str, Any]) -> list[Needed]:
        if service == "dynamodb":
            return self._dynamodb(operation, params)
        if service == "lambda" and operation == "Invoke":
            name = str(params["FunctionName"])
            if name.startswith("arn:"):
                arn = name
                name = name.split(":")[6]
            else:
                arn = self._arn("lambda", f"function:{name}")
            tags = {f"aws:ResourceTag/{k}": v for k, v in self.tags.get(name, {}).items()}
            return [Needed("lambda:InvokeFunction", arn, tags)]
        if service == "sns" and operation == "Publish":
            return [Needed("sns:Publish", str(params.get("TopicArn", "")))]
        if service == "ssm" and operation == "GetParameter":
            name = str(params["Name"])
            arn = (
                name
                if name.startswith("arn:")
                else self._arn("ssm", f"parameter/{name.lstrip('/')}")
            )
            return [Needed("ssm:GetParameter", arn)]
        if service == "secretsmanager" and operation == "GetSecretValue":
            secret = str(params["SecretId"])
            arn = (
                secret
                if secret.startswith("arn:")
                else self._arn("secretsmanager", f"secret:{secret}")
            )
            return [Needed("secretsmanager:GetSecretValue", arn)]
        return [Needed(f"{service}:{operation}", "*")]

    def _dynamodb(self, operation: str, params: Mapping[str, Any]) -> list[Needed]:
        if operation == "TransactWriteItems":
            needed = []
            for item in params["TransactItems"]:
                (kind, request), *_ = item.items()
                needed.append(
                    Needed(f"dynamodb:{_TRANSACT_ACTIONS[kind]}", self.table(request["TableName"]))
                )
            return needed
        if operation == "TransactGetItems":
            return [
                Needed("dynamodb:GetItem", self.table(item["Get"]["TableName"]))
                for item in params["TransactItems"]
            ]
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return [
                Needed(f"dynamodb:{operation}", self.table(name)) for name in params["RequestItems"]
            ]
        if "TableName" in params:
            return [
                Needed(
                    f"dynamodb:{operation}",
                    self.table(params["TableName"], params.get("IndexName")),
                )
            ]
        return [Needed(f"dynamodb:{operation}", "*")]


def enforce(events: Any, policy: Policy, calls: Calls) -> Callable[[], None]:
    """Check every call made through ``events`` (a boto3 Session's or a client's event
    system) against ``policy``. Returns a function that stops enforcing."""

    def check(model: Any, params: Mapping[str, Any], **_: Any) -> None:
        service = model.service_model.endpoint_prefix
        if service == "execute-api":
            return
        for needed in calls.needed(service, model.name, params):
            policy.check(needed.action, needed.resource, needed.context)

    events.register("before-parameter-build", check, unique_id=f"cronfleet-iam-{id(policy)}")

    def stop() -> None:
        events.unregister("before-parameter-build", check, unique_id=f"cronfleet-iam-{id(policy)}")

    return stop


def local_naming(
    template: Mapping[str, Any], names: Mapping[str, str], *, stack_name: str = LOCAL_STACK_NAME
) -> Naming:
    """Naming for a template whose functions are called by their logical ids unless named."""
    everything = {
        logical_id: names.get(logical_id, logical_id)
        for logical_id in template.get("Resources", {})
    }
    return Naming(everything, stack_name=stack_name)


def granted_actions(policy: Policy, resources: Iterable[str]) -> set[str]:
    """The actions some statement allows on any of ``resources``: for reports and tests."""
    return {
        action
        for statement in policy.statements
        if statement.effect == "Allow"
        and any(fnmatch.fnmatchcase(r, p) for r in resources for p in statement.resources)
        for action in statement.actions
    }
