"""Task definitions read from template.yaml, before any deploy.

``cronfleet validate`` runs here. It reads the SAM template the way CloudFormation does (short
and long intrinsic forms, duplicate keys refused), finds every ``Custom::ScheduledTask`` (and
every other custom resource whose ServiceToken is the registry, which a deploy registers too), and
judges each one with the same :func:`parse_task_definition` the registry Lambda runs at deploy
time, on the same input: values resolved as far as a template allows, and scalars turned into
strings, exactly as CloudFormation hands them to a custom resource. On top of that come the
checks only the whole template can answer: does ``Function`` name a function of this stack, does
``TimeoutSeconds`` fit inside that function's Timeout, are task ids unique.

Values that exist only once the stack deploys (``!If``, ``!ImportValue``, a parameter without a
default, most resource attributes) cannot be judged offline. Such fields are listed in
``TemplateValidation.deferred``, and the registry validates them at deploy time.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cronfleet.registry.definition import TaskDefinition, parse_task_definition
from cronfleet.registry.problems import InvalidTaskDefinition, InvalidTemplate, Problem
from cronfleet.registry.secrets import SecretScope

if TYPE_CHECKING:
    import yaml

TASK_RESOURCE_TYPE = "Custom::ScheduledTask"
# The registry registers whatever custom resource names it as its ServiceToken, whatever the
# resource's type: a generic custom resource, or one of another Custom:: name, is a task too.
GENERIC_CUSTOM_RESOURCE_TYPE = "AWS::CloudFormation::CustomResource"
# The stack's registry function, as template.yaml names it: found by name when no
# Custom::ScheduledTask points at it.
REGISTRY_FUNCTION_ID = "RegistryFunction"
FUNCTION_RESOURCE_TYPES = frozenset({"AWS::Serverless::Function", "AWS::Lambda::Function"})
# Lambda's default when neither the function nor SAM's Globals set a Timeout.
DEFAULT_FUNCTION_TIMEOUT_SECONDS = 3

# Offline, pseudo parameters take placeholder values of the right shape: enough for an ARN
# built with !Sub to be checked, and plainly not real in a preview.
PLACEHOLDER_ACCOUNT_ID = "123456789012"
PLACEHOLDER_REGION = "us-east-1"
_PSEUDO_PARAMETERS = {
    "AWS::AccountId": PLACEHOLDER_ACCOUNT_ID,
    "AWS::Region": PLACEHOLDER_REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "stack",
    "AWS::StackId": f"arn:aws:cloudformation:{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT_ID}"
    ":stack/stack/00000000-0000-0000-0000-000000000000",
}
_NO_VALUE = "AWS::NoValue"

_SHORT_FORM_TAGS = (
    "And", "Base64", "Cidr", "Equals", "FindInMap", "GetAZs", "If", "ImportValue", "Join",
    "Length", "Not", "Or", "Select", "Split", "Sub", "ToJsonString", "Transform",
)  # fmt: skip
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
# A prefix match on purpose: the name is what precedes a version or alias qualifier.
_FUNCTION_NAME_IN = re.compile(
    r"(?:arn:[^:]*:lambda:[^:]*:[^:]*:function:|[0-9]{12}:function:)?([^:]+)"
)
_INDEX = re.compile(r"[0-9]{1,9}")
# CloudFormation takes a template of at most 1 MB, so no deployable template holds more values
# than this once its aliases are expanded; more is an alias bomb. Nesting: no template needs as
# many levels, and PyYAML (and the checks after it) recurse once or twice per level.
MAX_TEMPLATE_VALUES = 1_000_000
MAX_TEMPLATE_DEPTH = 100


# --- Reading the YAML ----------------------------------------------------------------------


_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


@functools.cache
def _loader_class() -> type[yaml.SafeLoader]:
    """PyYAML's safe loader, taught CloudFormation's short-form tags.

    Two YAML 1.1 habits are dropped because they change what a task receives: timestamps
    (`2024-01-01` stays the string a custom resource is handed) and yes/no/on/off booleans (a
    payload key `on:` stays "on"). Only true and false are booleans, as in YAML 1.2.
    """
    import yaml  # a CLI dependency: the Lambda layer does not ship PyYAML

    class TemplateLoader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
            # PyYAML composes one level per recursion: thousands of levels would end in a
            # RecursionError rather than a problem with its line.
            self.depth += 1
            try:
                if self.depth > MAX_TEMPLATE_DEPTH:
                    raise yaml.composer.ComposerError(
                        problem=f"nested deeper than {MAX_TEMPLATE_DEPTH} levels; no template "
                        "needs that many",
                        problem_mark=self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                    )
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    TemplateLoader.yaml_implicit_resolvers = {
        first: [pair for pair in resolvers if pair[0] not in (_BOOL_TAG, _TIMESTAMP_TAG)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def long_form(key: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
        """Turn `!Tag value` into `{key: value}`, the long form the rest of this module reads."""

        def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
            value: Any
            if isinstance(node, yaml.ScalarNode):
                value = loader.construct_scalar(node)
            elif isinstance(node, yaml.SequenceNode):
                value = loader.construct_sequence(node, deep=True)
            else:
                value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
            if key == "Fn::GetAtt" and isinstance(value, str):
                value = value.split(".", 1)  # !GetAtt Fn.Arn; attribute names may hold dots
            return {key: value}

        return construct

    TemplateLoader.add_implicit_resolver(
        _BOOL_TAG, re.compile(r"(?:true|True|TRUE|false|False|FALSE)\Z"), list("tTfF")
    )
    TemplateLoader.add_constructor("!Ref", long_form("Ref"))
    TemplateLoader.add_constructor("!Condition", long_form("Condition"))
    TemplateLoader.add_constructor("!GetAtt", long_form("Fn::GetAtt"))
    for tag in _SHORT_FORM_TAGS:
        TemplateLoader.add_constructor(f"!{tag}", long_form(f"Fn::{tag}"))
    return TemplateLoader


def load_template(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a CloudFormation/SAM template; raises InvalidTemplate for what YAML lets slip."""
    path = Path(path)
    return parse_template(path.read_text(encoding="utf-8"), source=path.name)


def parse_template(text: str, *, source: str = "template.yaml") -> dict[str, Any]:
    """Read a template from its text. ``source`` names it in problems that have no resource."""
    import yaml  # imported late: see _loader_class

    loader = _loader_class()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InvalidTemplate([Problem(source, "", "the template is empty")])
        # PyYAML keeps the last of two equal keys without a word; CloudFormation refuses the
        # template. A second `Schedule:` silently winning is exactly the bug to catch early.
        duplicates = list(_duplicate_keys(node, (), set()))
        if duplicates:
            raise InvalidTemplate(duplicates)
        expansion = _expansion_problem(node)
        if expansion:
            raise InvalidTemplate([Problem(source, "", expansion)])
        document = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise InvalidTemplate([Problem(source, "", f"{where}{exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise InvalidTemplate([Problem(source, "", f"not valid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if not isinstance(document, dict):
        raise InvalidTemplate([Problem(source, "", "must be a mapping at the top level")])
    return document


def _duplicate_keys(
    node: yaml.Node, path: tuple[str | int, ...], visited: set[int]
) -> Iterator[Problem]:
    import yaml  # imported late: see _loader_class

    if id(node) in visited:  # an alias met again; its keys were checked the first time
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, str] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            mark = key_node.start_mark
            line = f"line {mark.line + 1}, column {mark.column + 1}"
            if key is not None and key in first_line:
                yield _problem_at(
                    (*path, key),
                    f"duplicate key '{key}' at {line} (first at {first_line[key]}): "
                    "YAML would silently keep only the last one",
                )
            elif key is not None:
                first_line[key] = line
            yield from _duplicate_keys(
                value_node, (*path, key if key is not None else "?"), visited
            )
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*path, index), visited)


def _children(node: yaml.Node) -> list[yaml.Node]:
    import yaml  # imported late: see _loader_class

    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _expansion_problem(root: yaml.Node) -> str | None:
    """What is wrong with the document its aliases make, if anything: a value that contains
    itself, more values than any deployable template, or nesting deeper than the limit.

    Aliases share nodes, so this walks each node once (without recursing) and adds up what it
    stands for.
    """
    shape: dict[int, tuple[int, int]] = {}  # node id: (values, depth) once expanded
    in_progress: set[int] = set()
    pending: list[tuple[yaml.Node, bool]] = [(root, False)]
    while pending:
        node, children_done = pending.pop()
        if children_done:
            children = [shape[id(child)] for child in _children(node)]
            values = min(1 + sum(v for v, _ in children), MAX_TEMPLATE_VALUES + 1)
            shape[id(node)] = (values, 1 + max((d for _, d in children), default=0))
            in_progress.discard(id(node))
            continue
        if id(node) in shape:
            continue
        if id(node) in in_progress:
            mark = node.start_mark
            return (
                f"line {mark.line + 1}, column {mark.column + 1}: an alias refers to a value that "
                "contains it; CloudFormation has no values that contain themselves"
            )
        in_progress.add(id(node))
        pending.append((node, True))
        pending.extend((child, False) for child in _children(node) if id(child) not in shape)
    values, depth = shape[id(root)]
    if values > MAX_TEMPLATE_VALUES:
        return (
            f"its aliases expand it to more than {MAX_TEMPLATE_VALUES:,} values; CloudFormation "
            "takes at most 1 MB of template"
        )
    if depth > MAX_TEMPLATE_DEPTH:
        return f"its aliases nest it deeper than {MAX_TEMPLATE_DEPTH} levels"
    return None


def _problem_at(path: tuple[str | int, ...], reason: str) -> Problem:
    """Attribute a template location to a resource and a field, as task problems are."""
    if len(path) >= 2 and path[0] == "Resources":
        logical_id, rest = str(path[1]), path[2:]
        if len(rest) > 1 and rest[0] == "Properties":
            rest = rest[1:]
    else:
        logical_id, rest = str(path[0]), path[1:]
    return Problem(logical_id, _dotted(rest), reason)


def _dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


# --- Resolving intrinsic functions offline ---------------------------------------------------


class _DeployTime(Exception):
    """A value CloudFormation only knows while it deploys the stack."""


class _BadReference(Exception):
    """A reference to something the template does not declare; CloudFormation would refuse it."""


class _Unset:
    """`!Ref AWS::NoValue`: the property is left out."""


_UNSET = _Unset()


class _DeployTimeValue:
    """Stands in for a deploy-time value: every validator rejects it, and the problem is dropped."""

    def __repr__(self) -> str:
        return "<deploy-time value>"


class _Resolver:
    """Evaluates the intrinsic functions a template can answer on its own."""

    def __init__(self, template: Mapping[str, Any]) -> None:
        self.parameters = _mapping(template.get("Parameters"))
        self.resources = _mapping(template.get("Resources"))
        self.mappings = _mapping(template.get("Mappings"))
        self.function_globals = _mapping(_mapping(template.get("Globals")).get("Function"))
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
                raise _DeployTime(key)
        if isinstance(value, dict):
            resolved = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not _UNSET}
        if isinstance(value, list):
            return [item for item in map(self.resolve, value) if item is not _UNSET]
        return value

    def ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise _BadReference(f"Ref takes a name, got {name!r}")
        if name == _NO_VALUE:
            return _UNSET
        if name in _PSEUDO_PARAMETERS:
            return _PSEUDO_PARAMETERS[name]
        if name.startswith("AWS::"):
            raise _DeployTime(name)
        if name in self.parameters:
            return self._parameter_default(name)
        resource = self.resource(name)
        kind = resource.get("Type")
        properties = _mapping(resource.get("Properties"))
        if kind in FUNCTION_RESOURCE_TYPES:
            return self.function_name(name)
        if kind == "AWS::SNS::Topic":
            return self._arn("sns", self._named(properties, "TopicName", name))
        if kind == "AWS::SecretsManager::Secret":
            return self._arn("secretsmanager", f"secret:{self._named(properties, 'Name', name)}")
        if kind == "AWS::SSM::Parameter":
            return self._named(properties, "Name", name)
        raise _DeployTime(f"Ref {name}, an {kind}")

    def get_att(self, argument: Any) -> Any:
        name, attribute = _get_att_parts(argument)
        resource = self.resource(name)
        kind = resource.get("Type")
        if kind in FUNCTION_RESOURCE_TYPES and attribute == "Arn":
            return self._arn("lambda", f"function:{self.function_name(name)}")
        if kind == "AWS::SNS::Topic" and attribute in ("TopicArn", "TopicName"):
            topic = self._named(_mapping(resource.get("Properties")), "TopicName", name)
            return self._arn("sns", topic) if attribute == "TopicArn" else topic
        raise _DeployTime(f"GetAtt {name}.{attribute}, an {kind}")

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else _pair(argument)
        if not isinstance(text, str) or not isinstance(variables, dict):
            raise _BadReference("Fn::Sub takes a string, or a string and a mapping of variables")

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
                raise _DeployTime(f"${{{name}}} in Fn::Sub")
            return value

        return _SUB_VARIABLE.sub(substitute, text)

    def resource(self, name: str) -> Mapping[str, Any]:
        resource = self.resources.get(name)
        if not isinstance(resource, Mapping):
            raise _BadReference(f"'{name}' is not a resource or parameter of this template")
        return resource

    def function_name(self, logical_id: str) -> str:
        """The name Ref gives: FunctionName if the template sets it, else the logical id."""
        properties = _mapping(self.resources[logical_id].get("Properties"))
        return self._named(properties, "FunctionName", logical_id)

    def function_timeout(self, logical_id: str) -> int | None:
        """A function's Timeout: its own, SAM's Globals (SAM functions only), else Lambda's 3 s."""
        resource = self.resources[logical_id]
        properties = _mapping(resource.get("Properties"))
        timeout = properties.get("Timeout")
        if timeout is None and resource.get("Type") == "AWS::Serverless::Function":
            timeout = self.function_globals.get("Timeout")
        if timeout is None:
            return DEFAULT_FUNCTION_TIMEOUT_SECONDS
        try:
            return _whole_number(self.resolve(timeout))  # None: unknown offline, not compared
        except (_DeployTime, _BadReference):
            return None

    def _parameter_default(self, name: str) -> Any:
        parameter = _mapping(self.parameters[name])
        kind = str(parameter.get("Type", "String"))
        if kind.startswith("AWS::SSM::Parameter::Value"):
            raise _DeployTime(f"parameter {name}, read from SSM")
        if "Default" not in parameter:
            raise _DeployTime(f"parameter {name}, which has no Default")
        default = _as_cloudformation_sends(parameter["Default"])
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
        except (_DeployTime, _BadReference):
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
            raise _DeployTime("Fn::Join")
        return str(separator).join(items)

    def _select(self, argument: Any) -> Any:
        index, items = _pair(argument)
        if (
            not isinstance(items, list)
            or not _INDEX.fullmatch(str(index))
            or int(index) >= len(items)
        ):
            raise _BadReference(f"Fn::Select index {index!r} is out of range")
        return items[int(index)]

    def _split(self, argument: Any) -> list[str]:
        separator, text = _pair(argument)
        if not isinstance(text, str):
            raise _DeployTime("Fn::Split")
        return text.split(str(separator))

    def _find_in_map(self, argument: Any) -> Any:
        if not isinstance(argument, list) or len(argument) != 3:
            raise _BadReference("Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey]")
        found: Any = self.mappings
        for key in argument:
            if not isinstance(found, Mapping) or key not in found:
                raise _BadReference(f"Fn::FindInMap: no '{key}' in Mappings")
            found = found[key]
        return _as_cloudformation_sends(found)

    def _base64(self, argument: Any) -> str:
        if not isinstance(argument, str):
            raise _DeployTime("Fn::Base64")
        return base64.b64encode(argument.encode()).decode()


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _pair(argument: Any) -> tuple[Any, Any]:
    if not isinstance(argument, list) or len(argument) != 2:
        raise _BadReference(f"expected a list of two items, got {argument!r}")
    return argument[0], argument[1]


def _get_att_parts(argument: Any) -> tuple[str, str]:
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
    raise _BadReference(f"Fn::GetAtt takes Resource.Attribute, got {argument!r}")


def _as_cloudformation_sends(value: Any) -> Any:
    """Scalars as a custom resource receives them: strings, booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {
            _as_cloudformation_sends(key): _as_cloudformation_sends(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_as_cloudformation_sends(item) for item in value]
    return value


def _intrinsic_references(value: Any) -> Iterator[str]:
    """Every logical id or parameter a value mentions (Ref, GetAtt, names inside Sub)."""
    if isinstance(value, list):
        for item in value:
            yield from _intrinsic_references(item)
        return
    if not isinstance(value, dict):
        return
    if len(value) == 1:
        (key, argument), *_ = value.items()
        if key == "Ref" and isinstance(argument, str):
            yield argument
            return
        if key == "Fn::GetAtt":
            with contextlib.suppress(_BadReference):
                yield _get_att_parts(argument)[0]
            return
        if key == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else [*argument, {}][:2]
            for name in _SUB_VARIABLE.findall(text if isinstance(text, str) else ""):
                if not name.startswith("!") and name not in _mapping(variables):
                    yield name.split(".", 1)[0]
            yield from _intrinsic_references(list(_mapping(variables).values()))
            return
    yield from _intrinsic_references(list(value.values()))


# --- Validating the template ---------------------------------------------------------------


@dataclass(frozen=True)
class TaskDeclaration:
    """Where a valid task sits in the template, and what it runs there."""

    logical_id: str
    # The template function the dispatcher invokes, or None for an Http task.
    function_logical_id: str | None
    # The deadline of one attempt: TimeoutSeconds, else the function's Timeout (or, for an Http
    # task, Http.TimeoutSeconds). None when the function's Timeout is only known at deploy time.
    timeout_seconds: int | None


@dataclass(frozen=True)
class TemplateValidation:
    """The verdict on a template: its valid tasks, and every problem, sorted."""

    tasks: list[TaskDefinition] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Keyed by task id, one per entry of `tasks`.
    declarations: dict[str, TaskDeclaration] = field(default_factory=dict)
    # Fields whose value only exists at deploy time; not problems, but not checked here.
    deferred: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_template(template: str | os.PathLike[str] | Mapping[str, Any]) -> TemplateValidation:
    """Validate every scheduled task of a template (a path, or a template already loaded)."""
    if not isinstance(template, Mapping):
        try:
            template = load_template(template)
        except InvalidTemplate as exc:
            return TemplateValidation(problems=exc.problems)
    resources = template.get("Resources")
    if not isinstance(resources, Mapping):
        return TemplateValidation(
            problems=[Problem("Resources", "", "must be a mapping of resources")]
        )

    resolver = _Resolver(template)
    checked = [
        _check_task(resolver, logical_id, resource)
        for logical_id, resource in _task_resources(resources)
    ]
    problems = [problem for task in checked for problem in task.problems]
    problems += _duplicate_task_ids(checked)
    problems += _unreadable_secrets(template, checked)
    failed = {problem.logical_id for problem in problems}
    valid = [
        (task.definition, task.declaration)
        for task in sorted(checked, key=lambda task: task.logical_id)
        if task.definition and task.declaration and task.logical_id not in failed
    ]
    return TemplateValidation(
        tasks=[definition for definition, _ in valid],
        problems=sorted(set(problems)),
        declarations={definition.task_id: declaration for definition, declaration in valid},
        deferred=sorted(problem for task in checked for problem in task.deferred),
    )


def _unreadable_secrets(template: Mapping[str, Any], checked: list[_CheckedTask]) -> list[Problem]:
    """Http tasks naming a secret the stack's HTTP function may not read (see
    cronfleet.registry.secrets). Offline the account and region are not known yet: they match
    anything here, and the deploy checks them."""
    scope = _secret_scope(template)
    if scope is None:
        return []
    problems = []
    for task in checked:
        http = task.definition.http if task.definition is not None else None
        refusal = scope.refusal(http.secret_arn) if http and http.secret_arn else None
        if refusal is not None:
            problems.append(Problem(task.logical_id, "Http.SecretArn", refusal))
    return problems


def _secret_scope(template: Mapping[str, Any]) -> SecretScope | None:
    for resource in _mapping(template.get("Resources")).values():
        environment = _mapping(_mapping(_mapping(resource).get("Properties")).get("Environment"))
        value = _mapping(environment.get("Variables")).get("HTTP_SECRET_ARN_PREFIXES")
        if isinstance(value, Mapping) and isinstance(value.get("Fn::Sub"), str):
            value = re.sub(r"\$\{AWS::(Partition|Region|AccountId)\}", "*", value["Fn::Sub"])
        if isinstance(value, str) and value.strip():
            return SecretScope.parse(value)
    return None


def _task_resources(resources: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The resources a deploy registers as tasks.

    Every ``Custom::ScheduledTask``, and every other custom resource (a generic
    ``AWS::CloudFormation::CustomResource``, or any ``Custom::`` type) whose ServiceToken names
    the registry: the function a ``Custom::ScheduledTask`` names as its ServiceToken, the
    stack's ``RegistryFunction``, or the same token a ``Custom::ScheduledTask`` has.
    """
    declared = [(str(name), item) for name, item in resources.items() if isinstance(item, Mapping)]
    scheduled_tokens = [
        _mapping(item.get("Properties")).get("ServiceToken")
        for _, item in declared
        if item.get("Type") == TASK_RESOURCE_TYPE
    ]
    registries = {
        name
        for name in [REGISTRY_FUNCTION_ID, *_intrinsic_references(scheduled_tokens)]
        if _mapping(resources.get(name)).get("Type") in FUNCTION_RESOURCE_TYPES
    }

    def is_task(resource: Mapping[str, Any]) -> bool:
        kind = resource.get("Type")
        if kind == TASK_RESOURCE_TYPE:
            return True
        if kind != GENERIC_CUSTOM_RESOURCE_TYPE and not (
            isinstance(kind, str) and kind.startswith("Custom::")
        ):
            return False
        token = _mapping(resource.get("Properties")).get("ServiceToken")
        return token is not None and (
            token in scheduled_tokens or not registries.isdisjoint(_intrinsic_references(token))
        )

    return [(name, item) for name, item in declared if is_task(item)]


@dataclass
class _CheckedTask:
    logical_id: str
    task_id: str
    definition: TaskDefinition | None = None
    declaration: TaskDeclaration | None = None
    problems: list[Problem] = field(default_factory=list)
    deferred: list[Problem] = field(default_factory=list)


def _check_task(resolver: _Resolver, logical_id: str, resource: Mapping[str, Any]) -> _CheckedTask:
    raw = resource.get("Properties", {})
    task = _CheckedTask(logical_id, task_id=logical_id)
    if not isinstance(raw, Mapping):
        task.problems.append(Problem(logical_id, "Properties", "must be a mapping of properties"))
        return task

    deferred_paths: list[str] = []
    properties = _resolve_properties(resolver, logical_id, raw, task, deferred_paths)
    function_id: str | None = None
    if "Function" in raw:
        function_id, properties["Function"] = _function_target(
            resolver, logical_id, raw["Function"], task
        )
    if isinstance(properties.get("Name"), str):
        task.task_id = properties["Name"]

    try:
        task.definition = parse_task_definition(logical_id, properties)
    except InvalidTaskDefinition as exc:
        task.problems += [p for p in exc.problems if not _under_any(p.field_path, deferred_paths)]

    function_timeout = resolver.function_timeout(function_id) if function_id else None
    requested = _whole_number(properties.get("TimeoutSeconds"))
    if any(problem.field_path == "TimeoutSeconds" for problem in task.problems):
        requested = None  # already refused on its own (over Lambda's 900 seconds, say)
    if requested is not None and function_timeout is not None and requested > function_timeout:
        task.problems.append(
            Problem(
                logical_id,
                "TimeoutSeconds",
                f"must not exceed the Timeout of function {function_id} ({function_timeout} "
                f"seconds), got {requested}: Lambda would stop the run first",
            )
        )
    if task.definition is not None:
        definition = task.definition
        if definition.timeout_seconds is not None:
            effective: int | None = definition.timeout_seconds
        elif definition.http is not None:
            effective = definition.http.timeout_seconds
        else:
            effective = function_timeout
        task.declaration = TaskDeclaration(logical_id, function_id, effective)
    return task


def _resolve_properties(
    resolver: _Resolver,
    logical_id: str,
    raw: Mapping[str, Any],
    task: _CheckedTask,
    deferred_paths: list[str],
) -> dict[str, Any]:
    """Resolve intrinsics field by field, so one deploy-time value hides only its own field."""

    def walk(value: Any, path: tuple[str | int, ...]) -> Any:
        if _is_intrinsic(value):
            try:
                return _as_cloudformation_sends(resolver.resolve(value))
            except _DeployTime as exc:
                deferred_paths.append(_dotted(path))
                task.deferred.append(
                    Problem(
                        logical_id,
                        _dotted(path),
                        f"known only at deploy time ({exc}); the registry checks it then",
                    )
                )
            except _BadReference as exc:
                deferred_paths.append(_dotted(path))
                task.problems.append(Problem(logical_id, _dotted(path), str(exc)))
            return _DeployTimeValue()
        if isinstance(value, dict):
            walked = {
                str(_as_cloudformation_sends(key)): walk(
                    item, (*path, str(_as_cloudformation_sends(key)))
                )
                for key, item in value.items()
            }
            return {key: item for key, item in walked.items() if item is not _UNSET}
        if isinstance(value, list):
            return [walk(item, (*path, index)) for index, item in enumerate(value)]
        return _as_cloudformation_sends(value)

    return {key: walk(value, (key,)) for key, value in raw.items() if key != "Function"}


def _is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = next(iter(value))
    return key in ("Ref", "Condition") or (isinstance(key, str) and key.startswith("Fn::"))


def _function_target(
    resolver: _Resolver, logical_id: str, value: Any, task: _CheckedTask
) -> tuple[str | None, Any]:
    """Which template function a task's Function names, and the value the registry would see.

    The dispatcher may invoke only this stack's functions (its IAM policy lists them), so the
    target must be one of them: a literal ARN, a parameter or an import is refused here rather
    than failing every run after the deploy.
    """

    def refuse(reason: str) -> tuple[None, Any]:
        task.problems.append(Problem(logical_id, "Function", reason))
        return None, "placeholder"  # keeps parse_task_definition from reporting the target again

    references = list(dict.fromkeys(_intrinsic_references(value)))
    functions = []
    for name in references:
        if name in _PSEUDO_PARAMETERS or name.startswith("AWS::"):
            continue
        if name in resolver.parameters:
            return refuse(
                f"refers to parameter '{name}'; name a function of this template instead "
                "(!GetAtt <Function>.Arn): the dispatcher may invoke only this stack's functions"
            )
        resource = resolver.resources.get(name)
        if not isinstance(resource, Mapping):
            return refuse(f"'{name}' is not a resource of this template")
        if resource.get("Type") not in FUNCTION_RESOURCE_TYPES:
            return refuse(f"'{name}' is not a Lambda function (its Type is {resource.get('Type')})")
        functions.append(name)

    if len(functions) > 1:
        return refuse(f"refers to several functions ({', '.join(functions)}); name one")
    if not functions:
        return _literal_function(resolver, value, refuse)

    (function_id,) = functions
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        attribute = _get_att_parts(value["Fn::GetAtt"])[1]
        if attribute != "Arn":
            return refuse(f"use !GetAtt {function_id}.Arn, not .{attribute}")
    try:
        resolved = resolver.resolve(value)
    except (_DeployTime, _BadReference):
        return function_id, resolver.function_name(function_id)
    match = _FUNCTION_NAME_IN.match(resolved) if isinstance(resolved, str) else None
    if match is None or match.group(1) != resolver.function_name(function_id):
        return refuse(f"does not resolve to function {function_id} (got {resolved!r})")
    return function_id, resolved


def _literal_function(
    resolver: _Resolver, value: Any, refuse: Callable[[str], tuple[None, Any]]
) -> tuple[str | None, Any]:
    if not isinstance(value, str):
        kind = next(iter(value)) if isinstance(value, dict) and value else type(value).__name__
        return refuse(
            f"must name a function of this template (!GetAtt <Function>.Arn), got {kind}: "
            "the dispatcher may invoke only this stack's functions"
        )
    match = _FUNCTION_NAME_IN.match(value)
    name = match.group(1) if match else value
    for logical_id, resource in resolver.resources.items():
        if not isinstance(resource, Mapping) or resource.get("Type") not in FUNCTION_RESOURCE_TYPES:
            continue
        declared = _mapping(resource.get("Properties")).get("FunctionName")
        if isinstance(declared, str) and declared == name:
            return str(logical_id), value  # the literal FunctionName of a template function
        if logical_id == value:
            return refuse(f"is the literal text '{value}'; write !GetAtt {value}.Arn")
    return refuse(
        f"{value!r} is not a function of this template; the dispatcher may invoke only this "
        "stack's functions (use !GetAtt <Function>.Arn)"
    )


def _duplicate_task_ids(checked: list[_CheckedTask]) -> list[Problem]:
    # Task ids are compared ignoring case: people type them in CLI commands and read them in
    # log groups and dashboards, where `Report` and `report` would be taken for one task.
    by_key: dict[str, list[_CheckedTask]] = {}
    for task in checked:
        by_key.setdefault(task.task_id.lower(), []).append(task)
    problems = []
    for group in by_key.values():
        for task in group if len(group) > 1 else []:
            others = ", ".join(sorted(other.logical_id for other in group if other is not task))
            problems.append(
                Problem(
                    task.logical_id,
                    "Name",
                    f"task id '{task.task_id}' is also used by {others} "
                    "(task ids must be unique, ignoring case)",
                )
            )
    return problems


def _under_any(field_path: str, prefixes: list[str]) -> bool:
    return any(
        field_path == prefix or field_path.startswith((f"{prefix}.", f"{prefix}["))
        for prefix in prefixes
    )


def _whole_number(value: Any) -> int | None:
    # ASCII digits only: int() would read '٣٠' (Arabic-Indic digits) as 30.
    text = str(value)
    return int(text) if _INDEX.fullmatch(text) else None
