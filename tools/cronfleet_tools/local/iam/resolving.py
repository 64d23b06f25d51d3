"""The SAM template, transformed as AWS would, and its values resolved with local names."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cronfleet.errors import CronfleetError

PARTITION = "aws"
REGION = "us-east-1"
ACCOUNT = "123456789012"
# The name of the local stack, as SAM CLI gives it to `sam local invoke`.
LOCAL_STACK_NAME = "cronfleet-local"

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
        translator.translate(
            sam,
            parameter_values=parameters,
            feature_toggle=_NoFeatures(),
            get_managed_policy_map=dict,
        )
    )
    # The translator counts what it did, for a publisher that here publishes nothing; left
    # unpublished, the counts make it warn on stderr when it is collected, in the middle of
    # whatever the command prints.
    translator.metrics.publish()
    return result


class _NoFeatures:
    """The hosted transform's feature flags, unknown offline: all off, as the translator's
    default has them, but without the warning the default prints on stderr for each flag it is
    asked about (an API with an OpenApiVersion asks). The translator only calls is_enabled."""

    def is_enabled(self, feature_name: str) -> bool:
        return False


# --- resolving the template's values -------------------------------------------------------------


@dataclass(frozen=True)
class Naming:
    """What the template's logical ids are called here: physical names, and the pseudo
    parameters a policy's ``Fn::Sub`` refers to."""

    names: Mapping[str, str]  # logical id -> physical name (a table's, a function's, a topic's)
    stack_name: str = LOCAL_STACK_NAME
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
