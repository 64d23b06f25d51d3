"""Every invocation the local Lambda ran, one JSON line each, in ``logs/invocations.jsonl``.

The runner hears of its own invocations through a callback. A run that ``cronfleet trigger
--local`` starts runs in that command's process, with a local Lambda of its own, so the runner
would never hear of it: each local Lambda also appends what it ran here, and the `make run`
window reads what other processes appended (:class:`JournalReader`). Each line says what the
window shows: the function, the run's ids, when the invocation began and ended, how it ended,
and its log file. Lines are short and written with one ``write`` to a file opened for
appending, so lines from several processes never interleave.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from cronfleet_tools.local.lambda_process import Invocation

JOURNAL_FILE = "invocations.jsonl"  # in the local Lambda's log directory

logger = logging.getLogger(__name__)


def _envelope_ids(event: Any) -> dict[str, Any] | None:
    """The run an invocation was for: a task's envelope, or the one in an on-failure record."""
    if not isinstance(event, dict):
        return None
    envelope = event.get("cronfleet")
    if isinstance(envelope, dict):
        return {key: envelope.get(key) for key in ("task_id", "slot", "attempt", "trigger")}
    return _envelope_ids(event.get("requestPayload"))


def journal_line(invocation: Invocation) -> str:
    result = invocation.result
    ids = _envelope_ids(invocation.event)
    return json.dumps(
        {
            "pid": os.getpid(),
            "function": invocation.function,
            "request_id": invocation.request_id,
            "run": ids,
            "started_at": invocation.started_at.isoformat(),
            "ended_at": invocation.ended_at.isoformat(),
            "duration_seconds": round(invocation.duration_seconds, 3),
            "status": result.get("status") if isinstance(result, dict) else None,
            "error_type": invocation.error_type,
            "error_message": (invocation.error_message or "")[:500] or None,
            "log_path": str(invocation.log_path) if invocation.log_path else None,
        },
        separators=(",", ":"),
    )


def append(journal: Path, invocation: Invocation) -> None:
    """Add the invocation to the journal; never raises (the journal only informs)."""
    try:
        with journal.open("a", encoding="utf-8") as sink:
            sink.write(journal_line(invocation) + "\n")
    except OSError:
        logger.warning("Could not journal an invocation", exc_info=True)


def invocation_of(entry: dict[str, Any]) -> Invocation:
    """A journal line as the Invocation it records (its event reduced to the run's ids)."""
    run = entry.get("run")
    status = entry.get("status")
    log_path = entry.get("log_path")
    return Invocation(
        function=entry["function"],
        request_id=entry["request_id"],
        event={"cronfleet": run} if run else {},
        started_at=datetime.fromisoformat(entry["started_at"]),
        ended_at=datetime.fromisoformat(entry["ended_at"]),
        duration_seconds=float(entry["duration_seconds"]),
        result={"status": status} if status else None,
        error_type=entry.get("error_type"),
        error_message=entry.get("error_message"),
        log_path=Path(log_path) if log_path else None,
    )


class JournalReader:
    """Reads what other processes add to a journal from now on."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.offset = journal.stat().st_size if journal.exists() else 0

    def others(self) -> list[Invocation]:
        """The invocations appended since the last call by processes other than this one."""
        try:
            with self.journal.open("rb") as source:
                source.seek(self.offset)
                data = source.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits
        self.offset += len(complete)
        found = []
        for raw in complete.splitlines():
            try:
                entry = json.loads(raw)
                if entry.get("pid") != os.getpid():
                    found.append(invocation_of(entry))
            except (ValueError, KeyError, TypeError):
                logger.warning("Not an invocation journal line: %r", raw[:200])
        return found
