"""The translated tasks as YAML for ``Resources:``, and the report of what was left."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import yaml

from cronfleet_tools.importers.model import (
    SERVICE_TIMEOUT_SECONDS,
    ImportedTask,
    ImportResult,
)
from cronfleet_tools.template import (
    parse_template,
    validate_template,
)

# --- Rendering and validation ------------------------------------------------------------------


def render_resources(result: ImportResult) -> str:
    """The tasks as YAML for the Resources section of template.yaml (2-space indented)."""
    if not result.tasks:
        return f"# cronfleet import {result.source}: no job could be translated (see stderr).\n"
    lines = [
        (
            f"# cronfleet import {result.source}: {len(result.tasks)} Custom::ScheduledTask "
            "resource(s) to paste under"
        ),
        (
            "# Resources: in template.yaml. Tokens are not copied: each SecretArn names an SSM "
            "parameter"
        ),
        "# under /cronfleet/ that must hold the token (see the notes on stderr).",
    ]
    for task in result.tasks:
        lines += ["", *_resource_lines(task)]
    return "\n".join(lines) + "\n"


def _resource_lines(task: ImportedTask) -> list[str]:
    lines = [
        f"  {task.logical_id}:",
        "    Type: Custom::ScheduledTask",
        "    Properties:",
        "      ServiceToken: !GetAtt RegistryFunction.Arn",
        f"      ServiceTimeout: {SERVICE_TIMEOUT_SECONDS}",
        f"      Description: {_scalar(_description(task))}",
        f"      Schedule: {json.dumps(task.schedule)}",  # quoted, as template.yaml writes them
        f"      Timezone: {_scalar(task.timezone)}",
        "      Http:",
        f"        Url: {_scalar(task.url)}",
        f"        Method: {task.method}",
    ]
    if task.headers:
        lines.append("        Headers:")
        lines += [
            f"          {_scalar(name)}: {_scalar(value)}" for name, value in task.headers.items()
        ]
    if task.body is not None:
        # A JSON string keeps the body's types through CloudFormation, as Payload does.
        lines.append(f"        Body: {_scalar(task.body)}")
    if task.secret is not None:
        lines.append(f"        SecretArn: !Sub {task.secret.arn_template}")
    if task.timeout_seconds is not None:
        lines.append(f"        TimeoutSeconds: {task.timeout_seconds}")
    return lines


def _description(task: ImportedTask) -> str:
    text = f"Imported from {task.source}"
    # Description is at most 512 characters; a long Vercel path must not make the task invalid.
    return text if len(text) <= 200 else text[:197] + "..."


def _scalar(value: str) -> str:
    """A YAML scalar that reads back as exactly ``value``, on one line, quoted only if needed."""

    text = yaml.safe_dump(value, width=math.inf, allow_unicode=True).rstrip("\n")
    text = text.removesuffix("\n...")
    # JSON's double-quoted string is YAML too, and escapes any line break onto one line.
    return text if "\n" not in text else json.dumps(value, ensure_ascii=False)


# Just enough of a stack for the tasks' references to resolve, as they do in template.yaml.
_VALIDATION_STACK = """\
Resources:
  RegistryFunction:
    Type: AWS::Serverless::Function
    Properties: {Handler: app.handler, Runtime: python3.13, CodeUri: functions/registry/}
"""


def validation_problems(tasks: Sequence[ImportedTask]) -> dict[str, list[str]]:
    """Validate the rendered resources as `cronfleet validate` would: problems per logical id."""
    if not tasks:
        return {}
    text = _VALIDATION_STACK + "\n".join(line for task in tasks for line in _resource_lines(task))
    # A fragment, not a stack: its functions' wiring is the stack's, checked by validate.
    verdict = validate_template(parse_template(text, source="import"), wiring=False)
    problems: dict[str, list[str]] = {}
    for problem in verdict.problems:
        where = problem.field_path or "(resource)"
        problems.setdefault(problem.logical_id, []).append(f"{where}: {problem.reason}")
    return problems


def report_lines(result: ImportResult) -> list[str]:
    """What goes to stderr: warnings, then notes, then a one-line summary."""
    lines = [f"warning: {warning}" for warning in result.warnings]
    lines += [f"note: {note}" for note in result.notes]
    summary = f"{len(result.tasks)} task(s) imported from {result.source}"
    if result.warnings:
        summary += f"; {len(result.warnings)} warning(s) above: add or fix those jobs by hand"
    return [*lines, summary]
