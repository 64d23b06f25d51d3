"""A run's log lines on the local stack: the files the local Lambda writes.

Each invocation writes everything its process prints to
``<state dir>/logs/<FunctionLogicalId>/<request id>.log`` (see
:mod:`cronfleet_tools.local.lambda_process`): Lambda's ``START`` and ``END`` lines, the
Powertools JSON lines and whatever the code printed. The ledger names each attempt's request,
so a run's lines are its attempts' files, in attempt order.
"""

from __future__ import annotations

from pathlib import Path

from cronfleet.store import ExecutionRecord
from cronfleet_tools.run_logs.lines import LogLine, is_metrics, parsed, powertools_time

LOG_DIR = "logs"  # under the state directory


class LocalRunLogs:
    def __init__(self, state_dir: Path) -> None:
        self.log_dir = state_dir / LOG_DIR

    def where(self) -> str:
        return f"{self.log_dir}/"

    def log_file(self, request_id: str) -> Path | None:
        """The log of one invocation, whichever function ran it."""
        found = sorted(self.log_dir.glob(f"*/{request_id}.log"))
        return found[0] if found else None

    def lines(self, execution: ExecutionRecord, since: object = None) -> list[LogLine]:
        """Every line the run's attempts wrote so far (``since`` is for sources that query by
        time; a local file is read whole, its lines told apart by number)."""
        lines: list[LogLine] = []
        for attempt in execution.attempts:
            if not attempt.request_id:
                continue
            path = self.log_file(attempt.request_id)
            if path is None:
                continue
            started = (attempt.started_at or attempt.dispatched_at or "")[:10]
            source = (
                f"attempt {attempt.attempt}, {path.parent.name}, request {attempt.request_id}"
                + (f", {started}" if started else "")
            )
            try:
                text = path.read_text(errors="replace")
            except FileNotFoundError:
                continue
            # A line still being written has no newline yet: it is read on the next look.
            complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
            for number, message in enumerate(complete.splitlines()):
                if is_metrics(message):
                    continue
                document = parsed(message)
                stamp = document.get("timestamp") if document else None
                lines.append(
                    LogLine(
                        key=f"{path}:{number}",
                        timestamp=powertools_time(stamp) if isinstance(stamp, str) else None,
                        source=source,
                        message=message,
                    )
                )
        return lines
