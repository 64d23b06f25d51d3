"""The registry's wiring check (cronfleet.registry.wiring), answered from the template.

At deploy the registry reads a task function's tags, asynchronous-invoke settings and role from
Lambda and IAM. Before the deploy the same facts are in the template as ``sam deploy`` submits
it: the SAM transform expands Globals, policy templates and EventInvokeConfig into the
resources CloudFormation creates, and the role's statements are judged the way
:mod:`cronfleet_tools.local.iam` judges every local call. ``cronfleet validate``, the local
runtime's registry and ``make run`` all read wiring from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cronfleet.registry.problems import Problem
from cronfleet.registry.wiring import (
    LAMBDA_DEFAULT_RETRY_ATTEMPTS,
    FunctionWiring,
    Permission,
    StackWiring,
    UnreadableWiring,
    WiringCheck,
)
from cronfleet_tools.local import iam
from cronfleet_tools.template.intrinsics import as_mapping, intrinsic_references


@dataclass(frozen=True)
class TemplateFunction:
    name: str
    tags: Mapping[str, str]
    retry_attempts: int
    on_failure: str | None
    policy: iam.Policy
    naming: iam.Naming

    def denied(self, needed: Sequence[Permission]) -> list[Permission]:
        return [p for p in needed if not self.policy.allows(p.action, self._here(p.resource))]

    def _here(self, arn: str) -> str:
        """An ARN in the account and region this template is judged in. Before a deploy they
        are not known, so a task's literal ones match anything here; the deploy checks them."""
        parts = arn.split(":", 5)
        if len(parts) == 6 and parts[0] == "arn":
            parts[3] = self.naming.region if parts[3] else ""
            parts[4] = self.naming.account if parts[4] else ""
        return ":".join(parts)


class TemplateFunctions:
    """Every function of a transformed template, named as ``naming`` names them."""

    def __init__(self, transformed: Mapping[str, Any], naming: iam.Naming) -> None:
        self._resources = as_mapping(transformed.get("Resources"))
        self._naming = naming
        self._resolver = iam.Resolver(transformed, naming)
        self._policies = iam.function_policies(transformed, naming)
        self._tags = iam.function_tags(transformed, naming)
        self._invoke_configs = {
            str(as_mapping(properties.get("FunctionName")).get("Ref")): properties
            for resource in self._resources.values()
            if as_mapping(resource).get("Type") == "AWS::Lambda::EventInvokeConfig"
            for properties in [as_mapping(resource.get("Properties"))]
        }

    def logical_id(self, function: str) -> str | None:
        """The logical id of a function given by name, ARN or logical id."""
        name = function.rsplit(":function:", 1)[-1].split(":", 1)[0]
        for logical_id in self._policies:
            if name in (logical_id, self._resolver.name(logical_id)):
                return logical_id
        return None

    def wiring(self, function: str, stack: StackWiring) -> FunctionWiring:
        logical_id = self.logical_id(function)
        if logical_id is None:
            raise UnreadableWiring(f"{function} is not a function of this template")
        config = self._invoke_configs.get(logical_id, {})
        destination = as_mapping(as_mapping(config.get("DestinationConfig")).get("OnFailure"))
        target = destination.get("Destination")
        return TemplateFunction(
            name=logical_id,
            tags=self._tags.get(self._resolver.name(logical_id), {}),
            retry_attempts=int(config.get("MaximumRetryAttempts", LAMBDA_DEFAULT_RETRY_ATTEMPTS)),
            on_failure=str(self._resolver.value(target)) if target is not None else None,
            policy=self._policies[logical_id],
            naming=self._naming,
        )

    def arn(self, logical_id: str) -> str:
        return self._resolver.arn(logical_id)


def template_wiring_check(
    template: Mapping[str, Any],
    *,
    names: Mapping[str, str] | None = None,
    stack_name: str = iam.LOCAL_STACK_NAME,
) -> WiringCheck | None:
    """The registry's wiring check over ``template`` (as written, SAM or plain CloudFormation),
    or None when its registry checks no wiring (no RECORDER_FUNCTION_ARN), as at deploy.

    ``names``: local names of resources (a table's), as the local runtime gives them.
    Raises :class:`cronfleet.registry.problems.InvalidTemplate` when SAM cannot transform it.
    """
    environment = _registry_environment(template)
    recorder = _referenced(environment.get("RECORDER_FUNCTION_ARN"))
    if recorder is None:
        return None
    transformed = _transform(template)
    naming = iam.local_naming(transformed, names or {}, stack_name=stack_name)
    functions = TemplateFunctions(transformed, naming)
    tables = _referenced_tables(template)
    http = _referenced(environment.get("HTTP_FUNCTION_NAME"))
    return WiringCheck(
        source=functions,
        recorder_arn=functions.arn(recorder),
        tasks_table_arn=functions.arn(tables.get("TASKS_TABLE_NAME", "TasksTable")),
        executions_table_arn=functions.arn(tables.get("EXECUTIONS_TABLE_NAME", "ExecutionsTable")),
        http_function=functions.arn(http) if http else None,
    )


def _transform(template: Mapping[str, Any]) -> dict[str, Any]:
    from cronfleet.registry.problems import InvalidTemplate

    try:
        return iam.transform(template)
    except Exception as exc:  # the translator raises its own types, one per kind of defect
        reason = getattr(exc, "message", None) or str(exc)
        raise InvalidTemplate(
            [Problem("template", "", f"the SAM transform refused it: {reason}")]
        ) from None


def _registry_environment(template: Mapping[str, Any]) -> Mapping[str, Any]:
    resources = as_mapping(template.get("Resources"))
    registry = as_mapping(as_mapping(resources.get("RegistryFunction")).get("Properties"))
    return as_mapping(as_mapping(registry.get("Environment")).get("Variables"))


def _referenced(value: Any) -> str | None:
    references = list(intrinsic_references(value)) if value is not None else []
    return references[0] if references else None


def _referenced_tables(template: Mapping[str, Any]) -> dict[str, str]:
    """Which table each table-name variable of the functions' Globals names."""
    variables = as_mapping(
        as_mapping(
            as_mapping(as_mapping(template.get("Globals")).get("Function")).get("Environment")
        ).get("Variables")
    )
    found = {}
    for name in ("TASKS_TABLE_NAME", "EXECUTIONS_TABLE_NAME"):
        table = _referenced(variables.get(name))
        if table is not None:
            found[name] = table
    return found
