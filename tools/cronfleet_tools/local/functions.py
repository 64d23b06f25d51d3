"""The template's functions as `sam local invoke` sees them: handler, code, timeout, environment.

The environment is built the way SAM CLI builds it: Globals, then the function's own
variables, then the `--env-vars` file (its "Parameters" section for every function, then the
function's own section). As SAM CLI does, ``!Ref`` and ``!Sub`` resolve against parameter
defaults and the pseudo parameters of a local stack (account 123456789012, us-east-1); values
that only exist once deployed (a ``!GetAtt``, a resource without a local counterpart) are
empty. The local runner gives the resources it runs (tables, the alert topic, the HTTP
function) their local names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cronfleet.errors import CronfleetError
from cronfleet_tools.local.iam.resolving import LOCAL_STACK_NAME as LOCAL_STACK_NAME
from cronfleet_tools.template.intrinsics import as_mapping
from cronfleet_tools.template.reading import with_globals

# The pseudo parameters of the local stack, as SAM CLI gives them to `sam local invoke`.
PSEUDO_PARAMETERS = {
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::StackName": LOCAL_STACK_NAME,
    "AWS::URLSuffix": "amazonaws.com",
}

# Lambda's defaults, for a function (and Globals) that leaves them out.
DEFAULT_TIMEOUT_SECONDS = 3
DEFAULT_MEMORY_MB = 128


class InvalidEnvVars(CronfleetError, ValueError):
    """The --env-vars file is not what `sam local invoke --env-vars` accepts."""


@dataclass(frozen=True)
class LocalFunction:
    logical_id: str
    module: str  # the handler's module, e.g. "app"
    handler_name: str  # the callable in it, e.g. "handler"
    code_dir: Path
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str] = field(default_factory=dict)
    # The on-failure destination of asynchronous invokes (EventInvokeConfig), by logical id.
    on_failure: str | None = None
    max_retries: int = 2  # Lambda's default for asynchronous invokes

    @property
    def handler(self) -> str:
        return f"{self.module}.{self.handler_name}"


def load_env_vars(path: str | Path | None) -> dict[str, dict[str, str]]:
    """Read a `sam local invoke --env-vars` file: {"Parameters"|function: {NAME: value}}."""
    if path is None:
        return {}
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidEnvVars(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise InvalidEnvVars(
            f"{path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(document, dict):
        raise InvalidEnvVars(f"{path}: must be an object of sections, one per function")
    sections: dict[str, dict[str, str]] = {}
    for section, variables in document.items():
        if not isinstance(variables, dict):
            raise InvalidEnvVars(f"{path}: {section}: must be an object of variables")
        for name, value in variables.items():
            if not isinstance(value, str | int | float | bool):
                raise InvalidEnvVars(f"{path}: {section}.{name}: must be a string, not JSON")
        sections[section] = {name: _text(value) for name, value in variables.items()}
    return sections


def load_functions(
    template: Mapping[str, Any],
    root: Path,
    *,
    resolve: Mapping[str, str],
    env_vars: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, LocalFunction]:
    """Every ``AWS::Serverless::Function`` of the template, keyed by logical id.

    ``resolve`` gives the local value of a ``!Ref`` to a resource (a table's local name);
    parameters resolve to their defaults, and anything else to "".
    """
    env_vars = env_vars or {}
    value_of = environment_resolver(template, resolve)

    functions: dict[str, LocalFunction] = {}
    for logical_id, resource in with_globals(template).get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties", {})
        variables = properties.get("Environment", {}).get("Variables", {})
        environment = {name: value_of(value) for name, value in variables.items()}
        # SAM CLI only overrides variables the template declares.
        for section in ("Parameters", logical_id):
            environment.update(
                {k: v for k, v in env_vars.get(section, {}).items() if k in environment}
            )
        module, handler_name = str(properties["Handler"]).rsplit(".", 1)
        invoke_config = properties.get("EventInvokeConfig", {})
        destination = (
            as_mapping(invoke_config.get("DestinationConfig"))
            .get("OnFailure", {})
            .get("Destination")
        )
        functions[logical_id] = LocalFunction(
            logical_id=logical_id,
            module=module,
            handler_name=handler_name,
            code_dir=(root / str(properties["CodeUri"])).resolve(),
            timeout_seconds=int(properties.get("Timeout", DEFAULT_TIMEOUT_SECONDS)),
            memory_mb=int(properties.get("MemorySize", DEFAULT_MEMORY_MB)),
            environment=environment,
            on_failure=_function_of(destination),
            max_retries=int(invoke_config.get("MaximumRetryAttempts", 2)),
        )
    return functions


def environment_resolver(
    template: Mapping[str, Any], resolve: Mapping[str, str]
) -> Callable[[Any], str]:
    """How an environment value of ``template`` reads locally (see the module's docstring)."""
    parameters = template.get("Parameters", {})
    names = {
        **PSEUDO_PARAMETERS,
        **{name: _text(spec.get("Default", "")) for name, spec in parameters.items()},
        **resolve,
    }

    def value_of(value: Any) -> str:
        if isinstance(value, dict) and set(value) == {"Ref"}:
            return names.get(str(value["Ref"]), "")
        if (
            isinstance(value, dict)
            and set(value) == {"Fn::Sub"}
            and isinstance(value["Fn::Sub"], str)
        ):
            text = value["Fn::Sub"]
            wanted = re.findall(r"\$\{([^}!]+)\}", text)
            if any(name not in names for name in wanted):
                return ""  # it names something that only exists once deployed
            return re.sub(r"\$\{([^}!]+)\}", lambda match: names[match.group(1)], text)
        if isinstance(value, dict):
            return ""  # Fn::GetAtt and friends: deploy-time values
        return _text(value)

    return value_of


def _function_of(destination: Any) -> str | None:
    """The logical id behind ``!GetAtt Fn.Arn`` or ``!Ref Fn``, as a destination names it."""
    if isinstance(destination, dict) and "Fn::GetAtt" in destination:
        target = destination["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".")[0])
    if isinstance(destination, dict) and "Ref" in destination:
        return str(destination["Ref"])
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
