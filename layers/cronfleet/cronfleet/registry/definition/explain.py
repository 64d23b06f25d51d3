"""A pydantic ValidationError as problem lines: ``<LogicalId>.<Field>: <reason>``, with field
names as the template spells them and a suggestion for a misspelt one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import get_args

from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from cronfleet.registry.definition.checks import describe
from cronfleet.registry.definition.models import TaskDefinition
from cronfleet.registry.problems import Problem


def problems_from_validation_error(logical_id: str, error: ValidationError) -> list[Problem]:
    """Turn pydantic's errors on a TaskDefinition into ``<LogicalId>.<Field>: <reason>`` lines."""
    problems = []
    for detail in error.errors(include_url=False):
        loc = _aliased(part for part in detail["loc"] if part != "[key]")
        if detail["type"] == "extra_forbidden":
            loc = (*loc[:-1], detail["loc"][-1])  # an unknown name stays as it was written
        problems.append(Problem(logical_id, _field_path(loc), _reason(detail, loc)))
    return sorted(set(problems))


def _field_path(loc: Sequence[str | int]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            part = part or '""'  # an empty key, such as an empty header name
            path += f".{part}" if path else part
    return path


def _reason(detail: ErrorDetails, loc: Sequence[str | int]) -> str:
    kind, got, ctx = detail["type"], detail["input"], detail.get("ctx", {})
    match kind:
        case "missing":
            return "required"
        case "extra_forbidden":
            return _unknown_field_reason(str(loc[-1]), _known_fields(loc[:-1]))
        case "bool_parsing" | "bool_type":
            return f"must be true or false, got {describe(got)}"
        case "int_parsing" | "int_type" | "int_from_float":
            return f"must be a whole number, got {describe(got)}"
        case "float_parsing" | "float_type" | "finite_number":
            return f"must be a number, got {describe(got)}"
        case "string_type":
            return f"must be a string, got {describe(got)}"
        case "string_unicode":
            return "holds a lone surrogate, which is not Unicode text: write the character itself"
        case "dict_type" | "model_type" | "model_attributes_type":
            return f"must be a mapping, got {describe(got)}"
        case "list_type":
            return f"must be a list, got {describe(got)}"
        case "literal_error":
            return f"must be one of {ctx['expected']}, got {describe(got)}"
        case "string_too_short":
            return "must not be empty"
        case "string_too_long":
            return f"must be at most {ctx['max_length']} characters, got {len(got)}"
        case "too_long":
            return f"must have at most {ctx['max_length']} entries, got {len(got)}"
        case "too_short":
            return f"must have at least {ctx['min_length']} entry"
        case _:
            return detail["msg"]


def _aliased(loc: Iterable[str | int]) -> tuple[str | int, ...]:
    """Spell a location with property names (pydantic uses attribute names for defaults)."""
    model: type[BaseModel] | None = TaskDefinition
    path: list[str | int] = []
    for part in loc:
        field = _field_named(model, part) if model is not None else None
        if field is None:
            model = None
            path.append(part)
        else:
            model = _model_in(field.annotation)
            path.append(field.alias or part)
    return tuple(path)


def _field_named(model: type[BaseModel], part: str | int) -> FieldInfo | None:
    fields = model.model_fields
    if isinstance(part, int):
        return None
    return fields.get(part) or next((f for f in fields.values() if f.alias == part), None)


def _known_fields(loc: Sequence[str | int]) -> list[str]:
    """The property names accepted at a location, for did-you-mean suggestions."""
    model: type[BaseModel] | None = TaskDefinition
    for part in loc:
        field = _field_named(model, part) if model is not None else None
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    return [field.alias for field in model.model_fields.values() if field.alias]


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _unknown_field_reason(name: str, known: list[str]) -> str:
    same_but_case = {field.lower(): field for field in known}.get(name.lower())
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    guess = same_but_case or (close[0] if close else None)
    if guess:
        return f"unknown field; did you mean '{guess}'?"
    if known:
        return f"unknown field; expected one of {', '.join(sorted(known))}"
    return "unknown field"
