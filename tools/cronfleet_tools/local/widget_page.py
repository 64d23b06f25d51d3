"""The dashboard's fleet widget as a page of the local stack: `cronfleet run --widget-page PATH`.

The local stack has no dashboard, so the runner writes the widget's HTML, as the widget's
function renders it for a dashboard view, into a page a browser can open (reload it to see the
latest). It is rewritten on the run's first and last moments and after ticks, at most every few
seconds of real time, so a fast replay spends its time on the replay. The buttons are there as on
the dashboard but do nothing in a plain browser: CloudWatch is what turns them into calls.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cronfleet.widget.render import page_document
from cronfleet.widget.request import MAX_PAGE_SIZE
from cronfleet.widget.service import FleetWidget

if TYPE_CHECKING:
    from cronfleet.dispatch.service import TickReport
    from cronfleet.lifecycle.attempts import Attempts
    from cronfleet.store import Store
    from cronfleet_tools.local.lambda_process import Invocation
    from cronfleet_tools.local.runner import Reporter
    from cronfleet_tools.local.stack import AppliedTask, LocalStack
    from cronfleet_tools.local.topic import PublishedMessage

# Not a function a browser can call: the page's buttons name it only so they read as on AWS.
LOCAL_ENDPOINT = "arn:aws:lambda:local:000000000000:function:FleetWidgetFunction"
VIEW = {"widgetContext": {"dashboardName": "local", "widgetId": "local"}}
MIN_INTERVAL_SECONDS = 5.0


def _no_actions() -> Attempts:
    raise AssertionError("the local page only views the fleet")


def write_widget_page(store: Store, path: Path, now: datetime) -> None:
    """The widget's page for ``store`` at ``now``, replacing ``path`` whole (never half-written
    when a browser reloads it)."""
    event = VIEW | {"page_size": MAX_PAGE_SIZE}  # a local fleet fits one page
    html = FleetWidget(store, _no_actions).answer(
        event, now, endpoint=LOCAL_ENDPOINT, request_id="local"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(page_document(html, title="cronfleet fleet (local stack)"))
    os.replace(partial, path)


class WidgetPageReporter:
    """The runner's reporter, which also keeps the widget's page up to date."""

    def __init__(
        self,
        reporter: Reporter,
        path: Path,
        now: Callable[[], datetime],
        *,
        interval: float = MIN_INTERVAL_SECONDS,
    ) -> None:
        self.reporter = reporter
        self.path = path
        self.now = now
        self.interval = interval
        self._store: Store | None = None
        self._written_at: float | None = None

    def started(self, stack: LocalStack, applied: list[AppliedTask]) -> None:
        self.reporter.started(stack, applied)
        self._store = stack.store
        self._write(force=True)

    def ticked(self, report: TickReport) -> None:
        self.reporter.ticked(report)
        self._write()

    def invocation(self, invocation: Invocation) -> None:
        self.reporter.invocation(invocation)

    def alert(self, message: PublishedMessage) -> None:
        self.reporter.alert(message)

    def finished(self) -> None:
        self._write(force=True)
        self.reporter.finished()

    def _write(self, *, force: bool = False) -> None:
        if self._store is None:
            return
        moment = time.monotonic()
        recent = self._written_at is not None and moment - self._written_at < self.interval
        if recent and not force:
            return
        write_widget_page(self._store, self.path, self.now())
        self._written_at = moment
