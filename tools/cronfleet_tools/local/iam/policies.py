"""Each function's role as a policy: its statements, and the tags of the function."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from cronfleet_tools.local.iam.resolving import Context, Naming, PolicyError, Resolver

# --- policies ------------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


_CONDITION_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda actual, wanted: actual == wanted,
    "StringNotEquals": lambda actual, wanted: actual != wanted,
    "StringEqualsIgnoreCase": lambda actual, wanted: actual.lower() == wanted.lower(),
    "StringLike": lambda actual, wanted: fnmatch.fnmatchcase(actual, wanted),
    "StringNotLike": lambda actual, wanted: not fnmatch.fnmatchcase(actual, wanted),
    "ArnEquals": lambda actual, wanted: actual == wanted,
    "ArnLike": lambda actual, wanted: fnmatch.fnmatchcase(actual, wanted),
}


@dataclass(frozen=True)
class Statement:
    effect: str  # Allow or Deny
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    sid: str = ""

    def matches(self, action: str, resource: str, context: Context) -> bool:
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in self.actions):
            return False
        if not any(fnmatch.fnmatchcase(resource, r) for r in self.resources):
            return False
        for operator, tests in self.conditions.items():
            compare = _CONDITION_OPERATORS.get(operator)
            if compare is None:
                return False  # an operator not modelled grants nothing, as if it failed
            for key, wanted in tests.items():
                actual = context.get(key)
                negated = operator.startswith(("StringNot", "ArnNot"))
                if actual is None:
                    if not negated:
                        return False
                    continue
                if not any(compare(actual, value) for value in wanted):
                    return False
        return True


@dataclass(frozen=True)
class Policy:
    """The statements of one function's role."""

    principal: str  # how a denial names the caller, as AWS does: its role
    statements: tuple[Statement, ...]

    def allows(self, action: str, resource: str, context: Context | None = None) -> bool:
        context = context or {}
        matching = [s for s in self.statements if s.matches(action, resource, context)]
        return bool(matching) and all(s.effect == "Allow" for s in matching)

    def check(self, action: str, resource: str, context: Context | None = None) -> None:
        """Raise AccessDeniedException, worded as AWS words it, unless the call is allowed."""
        if self.allows(action, resource, context):
            return
        message = (
            f"User: {self.principal} is not authorized to perform: {action} on resource: "
            f"{resource} because no identity-based policy allows the {action} action"
        )
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": message}},
            action.split(":", 1)[-1],
        )


def function_policies(transformed: Mapping[str, Any], naming: Naming) -> dict[str, Policy]:
    """Every Lambda function's policy, by logical id, from the transformed template."""
    resolver = Resolver(transformed, naming)
    policies: dict[str, Policy] = {}
    for logical_id, resource in transformed["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role_ref = resource["Properties"].get("Role")
        role_id = role_ref["Fn::GetAtt"][0] if isinstance(role_ref, dict) else None
        role = transformed["Resources"].get(role_id, {}).get("Properties", {}) if role_id else {}
        documents = [policy["PolicyDocument"] for policy in role.get("Policies", [])]
        documents += _template_managed_policies(transformed, role.get("ManagedPolicyArns", []))
        statements = [
            _statement(resolver, raw)
            for document in documents
            for raw in _as_list(document["Statement"])
        ]
        principal = (
            f"arn:{naming.partition}:sts::{naming.account}:assumed-role/"
            f"{naming.stack_name}-{role_id}/{resolver.name(logical_id)}"
        )
        policies[logical_id] = Policy(principal, tuple(statements))
    return policies


def _template_managed_policies(
    transformed: Mapping[str, Any], arns: list[Any]
) -> list[Mapping[str, Any]]:
    """The documents of the role's managed policies that the template itself declares
    (``!Ref TaskFunctionPolicy``). AWS's own managed policies (logging, X-Ray) are left out:
    nothing here calls those services with boto3."""
    documents = []
    for arn in arns:
        logical_id = arn.get("Ref") if isinstance(arn, Mapping) else None
        resource = transformed["Resources"].get(logical_id, {}) if logical_id else {}
        if resource.get("Type") == "AWS::IAM::ManagedPolicy":
            documents.append(resource["Properties"]["PolicyDocument"])
    return documents


def function_tags(transformed: Mapping[str, Any], naming: Naming) -> dict[str, dict[str, str]]:
    """Each function's tags by its local name, as Lambda evaluates them for ABAC."""
    resolver = Resolver(transformed, naming)
    tags: dict[str, dict[str, str]] = {}
    for logical_id, resource in transformed["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        pairs = resource["Properties"].get("Tags", [])
        tags[resolver.name(logical_id)] = {
            str(pair["Key"]): str(resolver.value(pair["Value"])) for pair in pairs
        }
    return tags


def _statement(resolver: Resolver, raw: Mapping[str, Any]) -> Statement:
    if "NotAction" in raw or "NotResource" in raw:
        raise PolicyError(f"NotAction/NotResource are not modelled: {raw}")
    conditions = {
        operator: {
            str(key): tuple(str(v) for v in _as_list(resolver.value(values)))
            for key, values in tests.items()
        }
        for operator, tests in raw.get("Condition", {}).items()
    }
    return Statement(
        effect=str(raw["Effect"]),
        actions=tuple(str(a) for a in _as_list(raw["Action"])),
        resources=tuple(str(resolver.value(r)) for r in _as_list(raw.get("Resource", "*"))),
        conditions=conditions,
        sid=str(raw.get("Sid", "")),
    )
