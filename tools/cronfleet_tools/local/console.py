"""What `cronfleet run` shows: a line per run, alerts as an email would read, and a live table.

On a terminal the status table stays at the bottom and refreshes every second; elsewhere (a
pipe, CI) the lines are printed as they come and the table once, at the end.

Lines are printed as things happen, each stamped with when it happened, so they read in time
order: a run's line when it ends (a long run's line comes after the ticks it outlasted), an
alert when it is published. Runs started from another terminal (`cronfleet trigger --local`)
run in that terminal's process; the window learns of them from the local Lambda's journal
(:mod:`cronfleet_tools.local.journal`), which it reads twice a second.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from cronfleet.dispatch.service import TickReport
from cronfleet.store import Store
from cronfleet_tools.health import fleet_status
from cronfleet_tools.local.journal import JOURNAL_FILE, JournalReader
from cronfleet_tools.local.lambda_process import Invocation
from cronfleet_tools.local.stack import AppliedTask, LocalStack
from cronfleet_tools.local.topic import PublishedMessage
from cronfleet_tools.views import STATUS_STYLES, status_table

SEVERITY_STYLES = {"critical": "bold red", "warning": "yellow", "info": "green"}
JOURNAL_POLL_SECONDS = 0.5
LOG_DIR = "logs"  # the local Lambda's, under the state directory (see runner.local_lambda)


class ConsoleReporter:
    def __init__(self, console: Console, clock: Callable[[], datetime], *, verbose: bool) -> None:
        self.console = console
        self.clock = clock
        self.verbose = verbose
        self.live: Live | None = None
        self.store: Store | None = None
        self._watching = threading.Event()
        self._watcher: threading.Thread | None = None

    # --- the Reporter protocol ---------------------------------------------------------------

    def started(self, stack: LocalStack, applied: list[AppliedTask]) -> None:
        self.store = stack.store
        counts: dict[str, int] = {}
        for task in applied:
            counts[task.request] = counts.get(task.request, 0) + 1
        changes = ", ".join(f"{n} {request.lower()}d" for request, n in sorted(counts.items()))
        self.console.print(
            f"[bold]cronfleet[/] local stack: DynamoDB Local at {stack.dynamodb.endpoint_url}, "
            f"state in {stack.state_dir}/; tasks from {stack.template_path}: {changes or 'none'}"
        )
        if stack.info is not None and stack.info.api_url:
            self.console.print(
                f"Schedule API at {stack.info.api_url} (requests signed with SigV4 for "
                "execute-api, key cronfleetlocal/cronfleetlocal, us-east-1)"
            )
        self.console.print(
            f"In another terminal: {cronfleet_command()} status --local "
            f"--state-dir {stack.state_dir}  "
            "(Ctrl-C here stops everything)",
            style="dim",
        )
        self._watch(JournalReader(stack.state_dir / LOG_DIR / JOURNAL_FILE))
        if self.console.is_terminal:
            self.live = Live(
                get_renderable=self._table,
                console=self.console,
                refresh_per_second=1,
                transient=True,
            )
            self.live.start()

    def ticked(self, report: TickReport) -> None:
        busy = report.claimed or report.missed or report.errors or report.skipped
        if not (busy or self.verbose):
            return
        parts = [f"{key} {value}" for key, value in _tick_counts(report).items() if value]
        self.console.print(
            f"{_clock(report.tick)} tick  " + (", ".join(parts) or "idle"),
            style="dim" if not report.errors else "red",
        )
        for error in report.errors:
            self.console.print(f"  {error}", style="red", markup=False)

    def invocation(self, invocation: Invocation, *, elsewhere: bool = False) -> None:
        """A line for an invocation that has ended, stamped with its end (see the module)."""
        line = Text(f"{_clock(invocation.ended_at)} ")
        line.append(invocation.function, style="bold")
        envelope = _envelope_of(invocation.event)
        if envelope:
            line.append(f" {envelope.get('task_id')} {envelope.get('slot')}")
            line.append(f" #{envelope.get('attempt')}")
        request = _api_request_of(invocation.event)
        if request:
            line.append(f" {request}")
        if elsewhere:
            line.append(" (cronfleet trigger)", style="cyan")
        if invocation.failed:
            line.append(f"  {invocation.error_type}: {invocation.error_message}", style="red")
        else:
            status = _result_status(invocation.result)
            line.append(f"  {status}", style=STATUS_STYLES.get(status, ""))  # type: ignore[call-overload]
        line.append(f"  {invocation.duration_seconds:.1f} s", style="dim")
        self.console.print(line)

    def alert(self, message: PublishedMessage) -> None:
        style = SEVERITY_STYLES.get(message.attributes.get("severity", ""), "yellow")
        self.console.print(
            Panel(
                Text(message.text.strip()),
                title=Text(f"{_clock(self.clock())} ALERT  {message.subject}", style=style),
                title_align="left",
                border_style=style,
            )
        )

    # --- the table ---------------------------------------------------------------------------

    def _table(self) -> RenderableType:
        if self.store is None:
            return Text("")
        try:
            return status_table(fleet_status(self.store), self.clock(), title="Tasks")
        except Exception as exc:  # the table must never take the runner down
            return Text(f"(status unavailable: {exc})", style="dim")

    def _watch(self, journal: JournalReader) -> None:
        """Print, as they are journalled, the invocations other processes ran."""

        def watch() -> None:
            while not self._watching.wait(JOURNAL_POLL_SECONDS):
                for invocation in journal.others():
                    self.invocation(invocation, elsewhere=True)

        self._watcher = threading.Thread(target=watch, name="journal", daemon=True)
        self._watcher.start()

    def finished(self) -> None:
        self._watching.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        if self.live is not None:
            self.live.stop()
            self.live = None
        if self.store is not None:
            self.console.print(self._table())


def cronfleet_command() -> str:
    """How to run `cronfleet` from a new terminal here: by name when that name on PATH is this
    very installation, else by its path (``.venv/bin/cronfleet`` after `make`), since a new
    terminal has no virtualenv activated."""
    script = Path(sys.executable).with_name("cronfleet")
    if not script.is_file():
        return f"{sys.executable} -m cronfleet_tools"
    on_path = shutil.which("cronfleet")
    if on_path is not None and os.path.samefile(on_path, script):
        return "cronfleet"
    relative = os.path.relpath(script)
    return relative if not relative.startswith("..") else str(script)


def _tick_counts(report: TickReport) -> dict[str, int]:
    return {
        "due": report.due_tasks,
        "invoked": report.invoked,
        "skipped": report.skipped,
        "missed": report.missed,
        "queued": report.queued,
        "invoke failures": report.invoke_failures,
        "missed ticks": report.missed_ticks,
    }


def _envelope_of(event: Any) -> dict[str, Any] | None:
    if not isinstance(event, dict):
        return None
    if "cronfleet" in event:
        envelope: dict[str, Any] = event["cronfleet"]
        return envelope
    payload = event.get("requestPayload")  # an on-failure record, on its way to the recorder
    return _envelope_of(payload)


def _api_request_of(event: Any) -> str | None:
    """The method and path of a request the local API ran the function for."""
    if isinstance(event, dict) and "httpMethod" in event and "requestContext" in event:
        return f"{event['httpMethod']} {event.get('path')}"
    return None


def _result_status(result: Any) -> str:
    if isinstance(result, dict) and "statusCode" in result:
        return f"HTTP {result['statusCode']}"  # the proxy response the local API answered
    if isinstance(result, dict):
        return str(result.get("status", "ok"))
    return "ok"


def _clock(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")
