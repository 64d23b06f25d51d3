"""Resolving intrinsic functions offline, as far as a template allows.

Pseudo parameters take placeholder values of the right shape. A value that exists only once the
stack deploys (``!If``, ``!ImportValue``, a parameter without a default, most resource
attributes) resolves to :class:`DeployTimeValue`, so its field is judged by the registry at
deploy time instead.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from cronfleet.errors import CronfleetError

if TYPE_CHECKING:
    pass


FUNCTION_RESOURCE_TYPES = frozenset({"AWS::Serverless::Function", "AWS::Lambda::Function"})
# Lambda's default when neither the function nor SAM's Globals set a Timeout.
DEFAULT_FUNCTION_TIMEOUT_SECONDS = 3

# Offline, pseudo parameters take placeholder values of the right shape: enough for an ARN
# built with !Sub to be checked, and plainly not real in a preview.
PLACEHOLDER_ACCOUNT_ID = "123456789012"
PLACEHOLDER_REGION = "us-east-1"
PSEUDO_PARAMETERS = {
    "AWS::AccountId": PLACEHOLDER_ACCOUNT_ID,
    "AWS::Region": PLACEHOLDER_REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "stack",
    "AWS::StackId": f"arn:aws:cloudformation:{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT_ID}"
    ":stack/stack/00000000-0000-0000-0000-000000000000",
}
_NO_VALUE = "AWS::NoValue"


_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
# A prefix match on purpose: the name is what precedes a version or alias qualifier.
FUNCTION_NAME_IN = re.compile(
    r"(?:arn:[^:]*:lambda:[^:]*:[^:]*:function:|[0-9]{12}:function:)?([^:]+)"
)
_INDEX = re.compile(r"[0-9]{1,9}")

# --- Resolving intrinsic functions offline ---------------------------------------------------


class DeployTime(CronfleetError):
    """A value CloudFormation only knows while it deploys the stack."""


class BadReference(CronfleetError):
    """A reference to something the template does not declare; CloudFormation would refuse it."""


class _Unset:
    """`!Ref AWS::NoValue`: the property is left out."""


UNSET = _Unset()


class DeployTimeValue:
    """Stands in for a deploy-time value: every validator rejects it, and the problem is dropped."""

    def __repr__(self) -> str:
        return "<deploy-time value>"


class Resolver:
    """Evaluates the intrinsic functions a template can answer on its own."""

    def __init__(self, template: Mapping[str, Any]) -> None:
        self.parameters = as_mapping(template.get("Parameters"))
        self.resources = as_mapping(template.get("Resources"))
        self.mappings = as_mapping(template.get("Mappings"))
        self.function_globals = as_mapping(as_mapping(template.get("Globals")).get("Function"))
        # Resources whose name is being resolved, so that a FunctionName or TopicName that
        # refers to its own resource does not recurse forever.
        self._naming: set[str] = set()

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            (key, argument), *_ = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                return self.get_att(argument)
            if key == "Fn::Sub":
                return self.sub(argument)
            if key == "Fn::Join":
                return self._join(self.resolve(argument))
            if key == "Fn::Select":
                return self._select(self.resolve(argument))
            if key == "Fn::Split":
                return self._split(self.resolve(argument))
            if key == "Fn::FindInMap":
                return self._find_in_map(self.resolve(argument))
            if key == "Fn::Base64":
                return self._base64(self.resolve(argument))
            if key.startswith("Fn::") or key == "Condition":
                raise DeployTime(key)
        if isinstance(value, dict):
            resolved = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not UNSET}
        if isinstance(value, list):
            return [item for item in map(self.resolve, value) if item is not UNSET]
        return value

    def ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise BadReference(f"Ref takes a name, got {name!r}")
        if name == _NO_VALUE:
            return UNSET
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name.startswith("AWS::"):
            raise DeployTime(name)
        if name in self.parameters:
            return self._parameter_default(name)
        resource = self.resource(name)
        kind = resource.get("Type")
        properties = as_mapping(resource.get("Properties"))
        if kind in FUNCTION_RESOURCE_TYPES:
            return self.function_name(name)
        if kind == "AWS::SNS::Topic":
            return self._arn("sns", self._named(properties, "TopicName", name))
        if kind == "AWS::SecretsManager::Secret":
            return self._arn("secretsmanager", f"secret:{self._named(properties, 'Name', name)}")
        if kind == "AWS::SSM::Parameter":
            return self._named(properties, "Name", name)
        raise DeployTime(f"Ref {name}, an {kind}")

    def get_att(self, argument: Any) -> Any:
        name, attribute = get_att_parts(argument)
        resource = self.resource(name)
        kind = resource.get("Type")
        if kind in FUNCTION_RESOURCE_TYPES and attribute == "Arn":
            return self._arn("lambda", f"function:{self.function_name(name)}")
        if kind == "AWS::SNS::Topic" and attribute in ("TopicArn", "TopicName"):
            topic = self._named(as_mapping(resource.get("Properties")), "TopicName", name)
            return self._arn("sns", topic) if attribute == "TopicArn" else topic
        raise DeployTime(f"GetAtt {name}.{attribute}, an {kind}")

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else _pair(argument)
        if not isinstance(text, str) or not isinstance(variables, dict):
            raise BadReference("Fn::Sub takes a string, or a string and a mapping of variables")

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} is how !Sub writes a literal ${Literal}
                return "${" + name[1:] + "}"
            if name in variables:
                value = self.resolve(variables[name])
            elif "." in name:
                value = self.get_att(name)
            else:
                value = self.ref(name)
            if not isinstance(value, str):
                raise DeployTime(f"${{{name}}} in Fn::Sub")
            return value

        return _SUB_VARIABLE.sub(substitute, text)

    def resource(self, name: str) -> Mapping[str, Any]:
        resource = self.resources.get(name)
        if not isinstance(resource, Mapping):
            raise BadReference(f"'{name}' is not a resource or parameter of this template")
        return resource

    def function_name(self, logical_id: str) -> str:
        """The name Ref gives: FunctionName if the template sets it, else the logical id."""
        properties = as_mapping(self.resources[logical_id].get("Properties"))
        return self._named(properties, "FunctionName", logical_id)

    def function_timeout(self, logical_id: str) -> int | None:
        """A function's Timeout: its own, SAM's Globals (SAM functions only), else Lambda's 3 s."""
        resource = self.resources[logical_id]
        properties = as_mapping(resource.get("Properties"))
        timeout = properties.get("Timeout")
        if timeout is None and resource.get("Type") == "AWS::Serverless::Function":
            timeout = self.function_globals.get("Timeout")
        if timeout is None:
            return DEFAULT_FUNCTION_TIMEOUT_SECONDS
        try:
            return whole_number(self.resolve(timeout))  # None: unknown offline, not compared
        except (DeployTime, BadReference):
            return None

    def _parameter_default(self, name: str) -> Any:
        parameter = as_mapping(self.parameters[name])
        kind = str(parameter.get("Type", "String"))
        if kind.startswith("AWS::SSM::Parameter::Value"):
            raise DeployTime(f"parameter {name}, read from SSM")
        if "Default" not in parameter:
            raise DeployTime(f"parameter {name}, which has no Default")
        default = as_cloudformation_sends(parameter["Default"])
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            return [item.strip() for item in str(default).split(",")]
        return default

    def _named(self, properties: Mapping[str, Any], key: str, logical_id: str) -> str:
        if logical_id in self._naming:
            # The name refers to itself: CloudFormation refuses the template (a circular
            # dependency), which is not a task's problem; the logical id stands in.
            return logical_id
        self._naming.add(logical_id)
        try:
            name = self.resolve(properties.get(key, logical_id))
        except (DeployTime, BadReference):
            return logical_id
        finally:
            self._naming.discard(logical_id)
        return name if isinstance(name, str) else logical_id

    @staticmethod
    def _arn(service: str, resource: str) -> str:
        return f"arn:aws:{service}:{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT_ID}:{resource}"

    def _join(self, argument: Any) -> str:
        separator, items = _pair(argument)
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise DeployTime("Fn::Join")
        return str(separator).join(items)

    def _select(self, argument: Any) -> Any:
        index, items = _pair(argument)
        if (
            not isinstance(items, list)
            or not _INDEX.fullmatch(str(index))
            or int(index) >= len(items)
        ):
            raise BadReference(f"Fn::Select index {index!r} is out of range")
        return items[int(index)]

    def _split(self, argument: Any) -> list[str]:
        separator, text = _pair(argument)
        if not isinstance(text, str):
            raise DeployTime("Fn::Split")
        return text.split(str(separator))

    def _find_in_map(self, argument: Any) -> Any:
        if not isinstance(argument, list) or len(argument) != 3:
            raise BadReference("Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey]")
        found: Any = self.mappings
        for key in argument:
            if not isinstance(found, Mapping) or key not in found:
                raise BadReference(f"Fn::FindInMap: no '{key}' in Mappings")
            found = found[key]
        return as_cloudformation_sends(found)

    def _base64(self, argument: Any) -> str:
        if not isinstance(argument, str):
            raise DeployTime("Fn::Base64")
        return base64.b64encode(argument.encode()).decode()


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _pair(argument: Any) -> tuple[Any, Any]:
    if not isinstance(argument, list) or len(argument) != 2:
        raise BadReference(f"expected a list of two items, got {argument!r}")
    return argument[0], argument[1]


def get_att_parts(argument: Any) -> tuple[str, str]:
    # !GetAtt Fn.Arn, !GetAtt [Fn, Arn], and the long form with either shape.
    if isinstance(argument, str) and "." in argument:
        name, attribute = argument.split(".", 1)
        return name, attribute
    if (
        isinstance(argument, list)
        and len(argument) == 2
        and all(isinstance(a, str) for a in argument)
    ):
        return argument[0], argument[1]
    raise BadReference(f"Fn::GetAtt takes Resource.Attribute, got {argument!r}")


def as_cloudformation_sends(value: Any) -> Any:
    """Scalars as a custom resource receives them: strings, booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {
            as_cloudformation_sends(key): as_cloudformation_sends(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [as_cloudformation_sends(item) for item in value]
    return value


def intrinsic_references(value: Any) -> Iterator[str]:
    """Every logical id or parameter a value mentions (Ref, GetAtt, names inside Sub)."""
    if isinstance(value, list):
        for item in value:
            yield from intrinsic_references(item)
        return
    if not isinstance(value, dict):
        return
    if len(value) == 1:
        (key, argument), *_ = value.items()
        if key == "Ref" and isinstance(argument, str):
            yield argument
            return
        if key == "Fn::GetAtt":
            with contextlib.suppress(BadReference):
                yield get_att_parts(argument)[0]
            return
        if key == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else [*argument, {}][:2]
            for name in _SUB_VARIABLE.findall(text if isinstance(text, str) else ""):
                if not name.startswith("!") and name not in as_mapping(variables):
                    yield name.split(".", 1)[0]
            yield from intrinsic_references(list(as_mapping(variables).values()))
            return
    yield from intrinsic_references(list(value.values()))


def whole_number(value: Any) -> int | None:
    # ASCII digits only: int() would read '٣٠' (Arabic-Indic digits) as 30.
    text = str(value)
    return int(text) if _INDEX.fullmatch(text) else None
