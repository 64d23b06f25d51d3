"""Judging every task of a template with the rules a deploy applies.

Each task is checked by the same ``parse_task_definition`` the registry Lambda runs, on the input
CloudFormation would send it, plus the checks only the whole template can answer: does
``Function`` name a function of this stack, does ``TimeoutSeconds`` fit inside that function's
Timeout, are task ids unique, may the HTTP function read each secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cronfleet.registry.definition import TaskDefinition, parse_task_definition
from cronfleet.registry.problems import InvalidTaskDefinition, InvalidTemplate, Problem
from cronfleet.registry.secrets import SecretScope
from cronfleet.schedule import timezone_caveat
from cronfleet_tools.local.iam import LOCAL_STACK_NAME
from cronfleet_tools.template.intrinsics import (
    FUNCTION_NAME_IN,
    FUNCTION_RESOURCE_TYPES,
    PSEUDO_PARAMETERS,
    UNSET,
    BadReference,
    DeployTime,
    DeployTimeValue,
    Resolver,
    as_cloudformation_sends,
    as_mapping,
    get_att_parts,
    intrinsic_references,
    whole_number,
)
from cronfleet_tools.template.reading import dotted, load_template
from cronfleet_tools.template.wiring import template_wiring_check

TASK_RESOURCE_TYPE = "Custom::ScheduledTask"
# The registry registers whatever custom resource names it as its ServiceToken, whatever the
# resource's type: a generic custom resource, or one of another Custom:: name, is a task too.
GENERIC_CUSTOM_RESOURCE_TYPE = "AWS::CloudFormation::CustomResource"
# The stack's registry function, as template.yaml names it: found by name when no
# Custom::ScheduledTask points at it.
REGISTRY_FUNCTION_ID = "RegistryFunction"

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
    # Valid, but seldom what is meant (a fixed-offset zone such as EST); shown, never refused.
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_template(
    template: str | os.PathLike[str] | Mapping[str, Any], *, wiring: bool = True
) -> TemplateValidation:
    """Validate every scheduled task of a template (a path, or a template already loaded).

    ``wiring``: also check that each task's function can run it, as the registry does at deploy
    (see cronfleet.registry.wiring); off for a fragment that is not a whole stack.
    """
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

    resolver = Resolver(template)
    checked = [
        _check_task(resolver, logical_id, resource)
        for logical_id, resource in _task_resources(resources)
    ]
    problems = [problem for task in checked for problem in task.problems]
    problems += _duplicate_task_ids(checked)
    problems += _unreadable_secrets(template, checked)
    if wiring:
        problems += _miswired(template, checked, problems)
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
        warnings=[
            Problem(declaration.logical_id, "Timezone", caveat)
            for definition, declaration in valid
            if (caveat := timezone_caveat(definition.timezone)) is not None
        ],
    )


def _miswired(
    template: Mapping[str, Any], checked: list[_CheckedTask], found: list[Problem]
) -> list[Problem]:
    """The registry's wiring check of each task not refused already (one problem per field)."""
    try:
        check = template_wiring_check(template)
    except InvalidTemplate as exc:
        return exc.problems
    if check is None:
        return []
    refused = {(problem.logical_id, problem.field_path) for problem in found}
    problems = []
    for task in checked:
        if task.definition is None or task.declaration is None:
            continue
        if any(problem.logical_id == task.logical_id for problem in task.problems):
            continue
        definition = task.definition
        if task.declaration.function_logical_id is not None:
            definition = definition.model_copy(
                update={"function": task.declaration.function_logical_id}
            )
        problems += [
            problem
            for problem in check.problems(task.logical_id, definition, LOCAL_STACK_NAME)
            if (problem.logical_id, problem.field_path) not in refused
        ]
    return problems


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
    for resource in as_mapping(template.get("Resources")).values():
        environment = as_mapping(
            as_mapping(as_mapping(resource).get("Properties")).get("Environment")
        )
        value = as_mapping(environment.get("Variables")).get("HTTP_SECRET_ARN_PREFIXES")
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
        as_mapping(item.get("Properties")).get("ServiceToken")
        for _, item in declared
        if item.get("Type") == TASK_RESOURCE_TYPE
    ]
    registries = {
        name
        for name in [REGISTRY_FUNCTION_ID, *intrinsic_references(scheduled_tokens)]
        if as_mapping(resources.get(name)).get("Type") in FUNCTION_RESOURCE_TYPES
    }

    def is_task(resource: Mapping[str, Any]) -> bool:
        kind = resource.get("Type")
        if kind == TASK_RESOURCE_TYPE:
            return True
        if kind != GENERIC_CUSTOM_RESOURCE_TYPE and not (
            isinstance(kind, str) and kind.startswith("Custom::")
        ):
            return False
        token = as_mapping(resource.get("Properties")).get("ServiceToken")
        return token is not None and (
            token in scheduled_tokens or not registries.isdisjoint(intrinsic_references(token))
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


def _check_task(resolver: Resolver, logical_id: str, resource: Mapping[str, Any]) -> _CheckedTask:
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
    requested = whole_number(properties.get("TimeoutSeconds"))
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
    resolver: Resolver,
    logical_id: str,
    raw: Mapping[str, Any],
    task: _CheckedTask,
    deferred_paths: list[str],
) -> dict[str, Any]:
    """Resolve intrinsics field by field, so one deploy-time value hides only its own field."""

    def walk(value: Any, path: tuple[str | int, ...]) -> Any:
        if _is_intrinsic(value):
            try:
                return as_cloudformation_sends(resolver.resolve(value))
            except DeployTime as exc:
                deferred_paths.append(dotted(path))
                task.deferred.append(
                    Problem(
                        logical_id,
                        dotted(path),
                        f"known only at deploy time ({exc}); the registry checks it then",
                    )
                )
            except BadReference as exc:
                deferred_paths.append(dotted(path))
                task.problems.append(Problem(logical_id, dotted(path), str(exc)))
            return DeployTimeValue()
        if isinstance(value, dict):
            walked = {
                str(as_cloudformation_sends(key)): walk(
                    item, (*path, str(as_cloudformation_sends(key)))
                )
                for key, item in value.items()
            }
            return {key: item for key, item in walked.items() if item is not UNSET}
        if isinstance(value, list):
            return [walk(item, (*path, index)) for index, item in enumerate(value)]
        return as_cloudformation_sends(value)

    return {key: walk(value, (key,)) for key, value in raw.items() if key != "Function"}


def _is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = next(iter(value))
    return key in ("Ref", "Condition") or (isinstance(key, str) and key.startswith("Fn::"))


def _function_target(
    resolver: Resolver, logical_id: str, value: Any, task: _CheckedTask
) -> tuple[str | None, Any]:
    """Which template function a task's Function names, and the value the registry would see.

    The dispatcher may invoke only this stack's functions (its IAM policy lists them), so the
    target must be one of them: a literal ARN, a parameter or an import is refused here rather
    than failing every run after the deploy.
    """

    def refuse(reason: str) -> tuple[None, Any]:
        task.problems.append(Problem(logical_id, "Function", reason))
        return None, "placeholder"  # keeps parse_task_definition from reporting the target again

    references = list(dict.fromkeys(intrinsic_references(value)))
    functions = []
    for name in references:
        if name in PSEUDO_PARAMETERS or name.startswith("AWS::"):
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
        attribute = get_att_parts(value["Fn::GetAtt"])[1]
        if attribute != "Arn":
            return refuse(f"use !GetAtt {function_id}.Arn, not .{attribute}")
    try:
        resolved = resolver.resolve(value)
    except (DeployTime, BadReference):
        return function_id, resolver.function_name(function_id)
    match = FUNCTION_NAME_IN.match(resolved) if isinstance(resolved, str) else None
    if match is None or match.group(1) != resolver.function_name(function_id):
        return refuse(f"does not resolve to function {function_id} (got {resolved!r})")
    return function_id, resolved


def _literal_function(
    resolver: Resolver, value: Any, refuse: Callable[[str], tuple[None, Any]]
) -> tuple[str | None, Any]:
    if not isinstance(value, str):
        kind = next(iter(value)) if isinstance(value, dict) and value else type(value).__name__
        return refuse(
            f"must name a function of this template (!GetAtt <Function>.Arn), got {kind}: "
            "the dispatcher may invoke only this stack's functions"
        )
    match = FUNCTION_NAME_IN.match(value)
    name = match.group(1) if match else value
    for logical_id, resource in resolver.resources.items():
        if not isinstance(resource, Mapping) or resource.get("Type") not in FUNCTION_RESOURCE_TYPES:
            continue
        declared = as_mapping(resource.get("Properties")).get("FunctionName")
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
