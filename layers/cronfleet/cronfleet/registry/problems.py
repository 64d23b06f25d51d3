"""Problems found in task definitions, and the errors that carry them.

A problem always names where it is (the resource's logical id and the field) and why, so a
failed deploy or a ``cronfleet validate`` run reads as a to-do list::

    ExampleTask.Timezone: unknown timezone 'Mars/Olympus': use an IANA name such as 'Europe/London'
    ExampleTask.Retry.MaxAttempts: must be at most 10, got 11
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cronfleet.errors import CronfleetError


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a definition.

    ``logical_id`` is the template resource the problem belongs to. Problems that belong to no
    task resource (a YAML syntax error, a duplicate key under ``Globals``) use the nearest thing
    a person can find instead: the file name or the top-level section.
    ``field_path`` is dotted (``Retry.MaxAttempts``, ``Http.Headers.Authorization``), with list
    positions in brackets (``Http.ExpectedStatus[0]``); it is empty for the resource as a whole.
    Field order makes problems sort by resource, then field, then reason.
    """

    logical_id: str
    field_path: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.logical_id}.{self.field_path}" if self.field_path else self.logical_id
        return _one_line(f"{where}: {self.reason}")


def _one_line(text: str) -> str:
    """Escape what would break a problem's line or hide in it: line breaks, control and
    invisible format characters, lone surrogates. Template keys and values can hold any of them.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


class DefinitionProblems(CronfleetError, ValueError):
    """Base of the errors that carry a list of problems, one line each in the message."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(set(problems))
        super().__init__("\n".join(str(problem) for problem in self.problems))


class InvalidTaskDefinition(DefinitionProblems):
    """A task definition that must not be stored: every problem of the resource, not the first."""


class InvalidTemplate(DefinitionProblems):
    """A template that cannot be read as CloudFormation YAML (syntax error, duplicate keys)."""
