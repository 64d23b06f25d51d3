"""Reading template.yaml as CloudFormation does: short and long intrinsic forms, duplicate keys
refused, and alias bombs and runaway nesting stopped before they cost anything."""

from __future__ import annotations

import copy
import functools
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from cronfleet.registry.problems import InvalidTemplate, Problem

_SHORT_FORM_TAGS = (
    "And", "Base64", "Cidr", "Equals", "FindInMap", "GetAZs", "If", "ImportValue", "Join",
    "Length", "Not", "Or", "Select", "Split", "Sub", "ToJsonString", "Transform",
)  # fmt: skip

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
    return Problem(logical_id, dotted(rest), reason)


def dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def with_globals(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template with SAM's ``Globals`` merged into each resource, as ``sam deploy`` and
    ``sam local`` merge them: SAM's own merge (a function's value wins, maps merge key by key,
    lists concatenate), so each function reads as the properties it really gets."""
    from samtranslator.plugins.globals.globals import Globals, InvalidGlobalsSectionException

    merged = copy.deepcopy(dict(template))
    try:
        section = Globals(merged)
    except InvalidGlobalsSectionException as exc:
        raise InvalidTemplate([Problem("Globals", "", exc.message)]) from None
    resources = merged.get("Resources")
    for logical_id, resource in resources.items() if isinstance(resources, dict) else ():
        if isinstance(resource, dict) and isinstance(resource.get("Properties", {}), dict):
            resource["Properties"] = section.merge(
                str(resource.get("Type")), resource.get("Properties", {}), str(logical_id)
            )
    merged.pop("Globals", None)
    return merged
