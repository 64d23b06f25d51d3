"""IAM, enforced here as AWS enforces it: each function's AWS calls checked against its role.

On AWS a missing permission fails a deploy or a run; locally nothing would, and a defect such
as a registry that cannot write the ledger would only show after deploying. So the local
runtime and the integration tests give each function the policy statements its role has in
the *transformed* template (what `sam deploy` submits, SAM policy templates expanded), and
every call its boto3 clients make is checked before it is sent:

- the IAM actions a call needs, per AWS's rules: a TransactWriteItems needs PutItem,
  UpdateItem, DeleteItem or ConditionCheckItem on each table it touches, a Query on an index
  needs Query on ``table/<name>/index/<index>``;
- the resource ARNs, built from the local names of the template's resources;
- ``aws:ResourceTag/<key>`` conditions, from the tags the template gives the target function.

A call no statement allows fails as AWS fails it, with AccessDeniedException. Only identity
policies are modelled: no permission boundaries, no SCPs, no resource policies, and managed
policies (logging, X-Ray) are left out because nothing here calls those services with boto3.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from cronfleet.errors import CronfleetError

PARTITION = "aws"
REGION = "us-east-1"
ACCOUNT = "123456789012"

Context = Mapping[str, str]  # condition keys (aws:ResourceTag/x) and their values


class PolicyError(CronfleetError, ValueError):
    """The template holds a policy this evaluator cannot read."""


def transform(template: Mapping[str, Any]) -> dict[str, Any]:
    """The CloudFormation template `sam deploy` would submit (code locations stubbed).

    The translator asks IAM for managed policy ARNs; offline there is nothing to ask, and no
    policy here names one. Its pseudo parameters come from a session in the local region.
    """
    import boto3.session
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    sam = copy.deepcopy(dict(template))
    # sam package would upload these; the translator only accepts S3 locations.
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://cronfleet-artifacts/function.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://cronfleet-artifacts/layer.zip"
    parameters: dict[str, Any] = {}
    to_py27_compatible_template(sam, parameters)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    result: dict[str, Any] = undo_mark_unicode_str_in_template(
        translator.translate(sam, parameter_values=parameters, get_managed_policy_map=dict)
    )
    return result


# --- resolving the template's values -------------------------------------------------------------


@dataclass(frozen=True)
class Naming:
    """What the template's logical ids are called here: physical names, and the pseudo
    parameters a policy's ``Fn::Sub`` refers to."""

    names: Mapping[str, str]  # logical id -> physical name (a table's, a function's, a topic's)
    stack_name: str = "cronfleet-local"
    region: str = REGION
    account: str = ACCOUNT
    partition: str = PARTITION
    parameters: Mapping[str, str] = field(default_factory=dict)


class Resolver:
    """Just enough of CloudFormation's intrinsic functions for IAM statements and tags."""

    def __init__(self, template: Mapping[str, Any], naming: Naming) -> None:
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.naming = naming
        self.parameters = {
            name: str(spec.get("Default", ""))
            for name, spec in template.get("Parameters", {}).items()
        } | dict(naming.parameters)

    def name(self, logical_id: str) -> str:
        return self.naming.names.get(logical_id, logical_id)

    def arn(self, logical_id: str) -> str:
        kind = self.resources.get(logical_id, {}).get("Type", "")
        n, name = self.naming, self.name(logical_id)
        prefix = f"arn:{n.partition}"
        arns = {
            "AWS::DynamoDB::Table": f"{prefix}:dynamodb:{n.region}:{n.account}:table/{name}",
            "AWS::Lambda::Function": f"{prefix}:lambda:{n.region}:{n.account}:function:{name}",
            "AWS::SNS::Topic": f"{prefix}:sns:{n.region}:{n.account}:{name}",
            "AWS::SQS::Queue": f"{prefix}:sqs:{n.region}:{n.account}:{name}",
            "AWS::KMS::Key": f"{prefix}:kms:{n.region}:{n.account}:key/{name}",
            "AWS::IAM::Role": f"{prefix}:iam::{n.account}:role/{name}",
        }
        if kind not in arns:
            # A resource the template does not have (a trimmed test template), or one no call
            # here can name: an ARN that matches nothing, so the statement grants nothing.
            return f"{prefix}:unresolved:{n.region}:{n.account}:{logical_id}"
        return arns[kind]

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Partition": self.naming.partition,
            "AWS::Region": self.naming.region,
            "AWS::AccountId": self.naming.account,
            "AWS::StackName": self.naming.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": (
                f"arn:{self.naming.partition}:cloudformation:{self.naming.region}:"
                f"{self.naming.account}:stack/{self.naming.stack_name}/local"
            ),
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self.resources.get(name, {}).get("Type")
        if kind == "AWS::SNS::Topic":  # a topic's Ref is its ARN
            return self.arn(name)
        return self.name(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute in ("TopicName", "QueueName", "Name"):
            return self.name(logical_id)
        raise PolicyError(f"Fn::GetAtt {logical_id}.{attribute} is not modelled")

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (function, argument), *_ = node.items()
            if function == "Ref":
                return self.ref(str(argument))
            if function == "Fn::GetAtt":
                target = argument if isinstance(argument, list) else str(argument).split(".", 1)
                return self.get_att(str(target[0]), str(target[1]))
            if function == "Fn::Sub":
                return self._sub(argument)
            if function == "Fn::Join":
                separator, parts = argument
                return str(separator).join(str(self.value(part)) for part in parts)
        return {key: self.value(value) for key, value in node.items()}

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        local = {name: str(self.value(value)) for name, value in variables.items()}

        def replace(name: str) -> str:
            if name in local:
                return local[name]
            logical_id, _, attribute = name.partition(".")
            return self.get_att(logical_id, attribute) if attribute else self.ref(name)

        out, rest = [], str(text)
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out += [before, replace(name) if not name.startswith("!") else "${" + name[1:] + "}"]
        out.append(rest)
        return "".join(out)


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
        statements = [
            _statement(resolver, raw)
            for policy in role.get("Policies", [])
            for raw in _as_list(policy["PolicyDocument"]["Statement"])
        ]
        principal = (
            f"arn:{naming.partition}:sts::{naming.account}:assumed-role/"
            f"{naming.stack_name}-{role_id}/{resolver.name(logical_id)}"
        )
        policies[logical_id] = Policy(principal, tuple(statements))
    return policies


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
    template: Mapping[str, Any], names: Mapping[str, str], *, stack_name: str = "cronfleet-local"
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


# --- enforcing it: in the runner's process, and in each function's -------------------------------

# A function process's policy file (read by cronfleet_tools.local.bootstrap, which keeps its own
# copy of the name so that a process not enforcing IAM never imports this module).
ENFORCEMENT_VARIABLE = "CRONFLEET_LOCAL_IAM"


@dataclass(frozen=True)
class Enforcement:
    """One function's role, and how to tell what its calls need, ready to check calls."""

    policy: Policy
    calls: Calls

    def attach(self, events: Any) -> Callable[[], None]:
        return enforce(events, self.policy, self.calls)

    def check_invoke(self, function: str) -> None:
        """Lambda's check of an Invoke (the dispatcher's, or an on-failure destination's)."""
        for needed in self.calls.needed("lambda", "Invoke", {"FunctionName": function}):
            self.policy.check(needed.action, needed.resource, needed.context)

    def to_json(self) -> dict[str, Any]:
        naming = self.calls.naming
        return {
            "principal": self.policy.principal,
            "statements": [
                {
                    "effect": s.effect,
                    "actions": list(s.actions),
                    "resources": list(s.resources),
                    "conditions": {
                        op: {k: list(v) for k, v in t.items()} for op, t in s.conditions.items()
                    },
                    "sid": s.sid,
                }
                for s in self.policy.statements
            ],
            "naming": {
                "names": dict(naming.names),
                "stack_name": naming.stack_name,
                "region": naming.region,
                "account": naming.account,
                "partition": naming.partition,
            },
            "tags": {name: dict(tags) for name, tags in self.calls.tags.items()},
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Enforcement:
        statements = tuple(
            Statement(
                effect=s["effect"],
                actions=tuple(s["actions"]),
                resources=tuple(s["resources"]),
                conditions={
                    op: {k: tuple(v) for k, v in t.items()} for op, t in s["conditions"].items()
                },
                sid=s["sid"],
            )
            for s in document["statements"]
        )
        naming = Naming(**document["naming"])
        return cls(Policy(document["principal"], statements), Calls(naming, document["tags"]))


def enforcements(transformed: Mapping[str, Any], naming: Naming) -> dict[str, Enforcement]:
    """Every function's enforcement, by logical id."""
    calls = Calls(naming, function_tags(transformed, naming))
    return {
        logical_id: Enforcement(policy, calls)
        for logical_id, policy in function_policies(transformed, naming).items()
    }


def enforce_in_this_process(path: str) -> None:
    """Hold every boto3 client this process will create to the policy in ``path`` (a function
    process of the local runtime, before its handler is imported)."""
    import json
    from pathlib import Path

    import boto3

    enforcement = Enforcement.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    enforcement.attach(boto3.DEFAULT_SESSION.events)


class CheckedInvoker:
    """An invoker (Lambda's Invoke API) that first checks the caller's role allows the call."""

    def __init__(self, inner: Any, enforcement: Enforcement) -> None:
        self.inner = inner
        self.enforcement = enforcement

    def invoke(self, function: str, event: dict[str, Any]) -> None:
        from cronfleet.invoker import InvokeError

        try:
            self.enforcement.check_invoke(function)
        except ClientError as exc:
            error = exc.response["Error"]
            raise InvokeError(error["Code"], error["Message"]) from exc
        self.inner.invoke(function, event)
