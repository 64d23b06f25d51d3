"""One run's log lines, wherever they were read, and how a person reads them.

A line is what a function wrote: a Powertools JSON line, Lambda's own ``START`` / ``END`` /
``REPORT`` text, or anything the code printed. :func:`readable` turns the JSON ones into
``09:00:01.120 INFO  Counted rows  rows=12``: the keys every line carries (the function, the
run's ids, the service) are left out, since the heading above the lines already says them.
Metric lines (Embedded Metric Format, written to the same stream) are not log lines, and are
never shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# What Powertools (and Lambda's JSON log format) put on every line, and the run's own ids:
# said once in the heading, not on each line.
_COMMON_KEYS = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "time",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "requestId",
        "correlation_id",
        "xray_trace_id",
        "sampling_rate",
        "exception",
        "exception_name",
        "stack_trace",
        "task_id",
        "slot",
    }
)
TIME_WIDTH = len("09:00:01.120")


@dataclass(frozen=True)
class LogLine:
    key: str  # what tells this line from every other: its event id, or its file and line number
    timestamp: datetime | None  # when it was written; None for a local line that does not say
    # The function, the attempt and the Lambda request that wrote it, and the day: the heading
    # over a group of lines, whose times say only the time of day.
    source: str
    message: str  # as written

    def as_json(self) -> dict[str, Any]:
        return {
            "timestamp": _iso(self.timestamp) if self.timestamp else None,
            "source": self.source,
            "message": self.message,
        }


def parsed(message: str) -> dict[str, Any] | None:
    """A JSON object line as a dict; None for a line of text."""
    text = message.strip()
    if not text.startswith("{"):
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def is_metrics(message: str) -> bool:
    """An Embedded Metric Format line: metrics CloudWatch extracts, not something logged."""
    document = parsed(message)
    return document is not None and "_aws" in document


def powertools_time(text: str) -> datetime | None:
    """Powertools' ``2026-11-02 09:00:01,120+0000`` (or ISO-8601), as a time."""
    for candidate in (text, text.replace(",", ".", 1)):
        try:
            moment = datetime.fromisoformat(candidate.replace("Z", "+00:00"))
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def readable(line: LogLine) -> list[str]:
    """The line as a person reads it: the time, then the level and the message, then what else
    it carries as ``key=value``; a traceback on the lines after it."""
    when = (
        line.timestamp.astimezone(UTC).strftime("%H:%M:%S.%f")[:TIME_WIDTH]
        if line.timestamp
        else ""
    )
    document = parsed(line.message)
    if document is None or "message" not in document:
        if document is not None and "type" in document:  # Lambda's JSON platform events
            record = document.get("record")
            return [f"{when:<{TIME_WIDTH}} {document['type']}  {_value(record)}".rstrip()]
        texts = line.message.rstrip("\n").splitlines() or [""]
        return [f"{when:<{TIME_WIDTH}} {texts[0]}".rstrip()] + [
            f"{'':<{TIME_WIDTH}} {text}".rstrip() for text in texts[1:]
        ]
    level = str(document.get("level", ""))
    text = f"{when:<{TIME_WIDTH}} {level:<5} {_value(document['message'])}"
    extras = [
        f"{key}={_value(value)}" for key, value in document.items() if key not in _COMMON_KEYS
    ]
    if extras:
        text += "  " + " ".join(extras)
    lines = [text.rstrip()]
    trace = document.get("exception") or document.get("stack_trace")
    if trace:
        trace_text = trace if isinstance(trace, str) else json.dumps(trace, indent=1)
        lines += [f"{'':<{TIME_WIDTH}}   {row}" for row in trace_text.splitlines()]
    return lines


def with_headings(lines: Iterable[LogLine], previous: str | None = None) -> Iterator[str]:
    """The readable lines, with a heading whenever the source changes (``previous``: the
    source of the line printed last, so a follow-up batch does not repeat its heading)."""
    for line in lines:
        if line.source != previous:
            yield f"── {line.source}"
            previous = line.source
        yield from readable(line)


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
