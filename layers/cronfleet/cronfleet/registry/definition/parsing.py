"""The one way in: properties as CloudFormation sends them, judged at the moment of admission."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import (
    ValidationError,
)

from cronfleet import clock
from cronfleet.registry.definition.checks import ADMITTED_AT, SCHEDULE_KNOWN, describe
from cronfleet.registry.definition.explain import problems_from_validation_error
from cronfleet.registry.definition.models import TaskDefinition, target_refusal
from cronfleet.registry.problems import InvalidTaskDefinition, Problem


def parse_task_definition(
    logical_id: str,
    properties: Mapping[str, Any],
    *,
    now: datetime | None = None,
    schedule_known: bool = False,
) -> TaskDefinition:
    """Validate the properties of one ``Custom::ScheduledTask`` resource.

    ``properties`` are CloudFormation property names and values, as the registry receives them
    (scalars may be strings). ``Name`` defaults to ``logical_id``. ``now`` (default:
    :func:`cronfleet.clock.now`) is the time the definition is admitted at: its schedule must
    have a run after it, unless ``schedule_known``: the schedule (and timezone) are those the
    task was admitted with before. Raises :class:`InvalidTaskDefinition` carrying every
    problem of the resource.
    """
    if not isinstance(properties, Mapping):
        raise InvalidTaskDefinition(
            [Problem(logical_id, "", f"properties must be a mapping, got {describe(properties)}")]
        )
    data = dict(properties)
    named_after_resource = "Name" not in data
    if named_after_resource:
        data["Name"] = logical_id
    try:
        # By alias only: CloudFormation property names are PascalCase, and a lower-case
        # `timezone` in a template is a typo to report, not a second spelling to accept.
        return TaskDefinition.model_validate(
            data,
            by_alias=True,
            by_name=False,
            context={
                ADMITTED_AT: clock.now() if now is None else now,
                SCHEDULE_KNOWN: schedule_known,
            },
        )
    except ValidationError as exc:
        problems = problems_from_validation_error(logical_id, exc)
    # The model checks its target only once every field is valid (pydantic runs model-level
    # checks last); checking the raw properties too reports a missing or doubled target along
    # with the other problems, rather than on the next deploy.
    target_problem = target_refusal(function=data.get("Function"), http=data.get("Http"))
    if target_problem:
        problems.append(Problem(logical_id, "Function", target_problem))
    if named_after_resource:
        problems = [
            Problem(
                p.logical_id,
                p.field_path,
                f"defaults to the logical id, which {p.reason}; set Name",
            )
            if p.field_path == "Name"
            else p
            for p in problems
        ]
    raise InvalidTaskDefinition(problems)
