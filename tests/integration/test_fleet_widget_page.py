"""The fleet widget as a page in a browser: a simulated week of a small mixed fleet, rendered by
the widget's function and opened in headless Chromium.

The week runs on DynamoDB Local with the real dispatcher and task wrapper on a simulated clock:
a sync every hour, a nightly report that fails twice, an export that keeps failing, a cleanup
paused mid-week, and a task whose description is a script and whose error holds markup. The
widget's HTML for it goes into a minimal page (a stand-in for the dashboard's frame) under
.local/widget/, and Chromium dumps the DOM it built and a screenshot of the window.

Chromium is needed: `make test` installs it (`make chromium`) and sets CRONFLEET_REQUIRE_CHROMIUM,
under which a missing browser fails the test. Run on its own without either, the test is skipped
with that reason.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
import zlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from cronfleet.dispatch.service import Dispatcher
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.lifecycle.wrapper import NonRetryableError, TaskContext, scheduled_task
from cronfleet.widget.render import page_document
from tests.integration.fleet_widget_dom import WidgetDom
from tests.support import register

if TYPE_CHECKING:
    from cronfleet.store import Store
    from tests.integration.conftest import FakeClock, QueuedLambda

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTPUT = REPO_ROOT / ".local" / "widget"
WINDOW = (1400, 900)
TITLE = "cronfleet fleet"
SCRIPT = "<script>document.title='pwned'</script>"
MARKUP_ERROR = "upstream answered <b>502</b> & gave up"
ONCE = {"MaxAttempts": 1}


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = "headless Chromium is not installed (make chromium installs it)"
    if os.environ.get("CRONFLEET_REQUIRE_CHROMIUM"):
        pytest.fail(f"{reason}; CRONFLEET_REQUIRE_CHROMIUM is set, as make test sets it")
    pytest.skip(f"{reason}; set CRONFLEET_REQUIRE_CHROMIUM=1 to fail instead")


def _simulated_week(store: Store, clock: FakeClock, queue: QueuedLambda) -> None:
    """Register the fleet, then tick every hour for seven days, delivering each invoke."""
    register(store, clock, "hourly-sync", Schedule="0 * * * *", Function="sync-fn")
    register(store, clock, "nightly-report", Schedule="0 2 * * *", Function="report-fn", Retry=ONCE)
    register(store, clock, "export", Schedule="0 */6 * * *", Function="export-fn", Retry=ONCE)
    register(store, clock, "cleanup", Schedule="0 3 * * *", Function="cleanup-fn")
    register(
        store,
        clock,
        "greeter",
        Schedule="0 12 * * *",
        Function="greeter-fn",
        Description=f"Says hello {SCRIPT}",
        Tags={"team": "web"},
    )

    @scheduled_task(store=store, clock=clock)
    def sync(task: TaskContext) -> dict[str, int]:
        time.sleep((clock.now.hour % 4) / 100)  # 0 to 30 ms: a spread for the p95
        return {"rows": clock.now.hour}

    @scheduled_task(store=store, clock=clock)
    def report(task: TaskContext) -> str:
        if clock.now.day in (4, 6):  # two nights of seven fail
            raise NonRetryableError(MARKUP_ERROR)
        return "sent"

    @scheduled_task(store=store, clock=clock)
    def export(task: TaskContext) -> None:
        if clock.now.day >= 7:  # from Saturday on, every run fails
            raise ConnectionError("the bucket <b>refused</b> the upload")

    @scheduled_task(store=store, clock=clock)
    def cleanup(task: TaskContext) -> None:
        return None

    @scheduled_task(store=store, clock=clock)
    def greeter(task: TaskContext) -> str:
        return "hello"

    handlers: dict[str, Callable[..., Any]] = {
        "sync-fn": sync,
        "report-fn": report,
        "export-fn": export,
        "cleanup-fn": cleanup,
        "greeter-fn": greeter,
    }
    dispatcher = Dispatcher(Attempts(store, queue, clock=clock))
    start = clock.now
    for hour in range(1, 7 * 24 + 1):
        tick = clock.now = start + timedelta(hours=hour)
        dispatcher.tick(tick)
        for function, event in queue.take():
            handlers[function](event, None)
        if hour == 3 * 24:  # Thursday morning: someone pauses the cleanup
            store.pause("cleanup", clock.now)


def _png_size_and_colours(png: bytes) -> tuple[tuple[int, int], int]:
    """The image's size and how many distinct colours it holds, read with zlib and struct: an
    8-bit RGB or RGBA PNG, as Chromium writes its screenshots."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, chunks, header = 8, [], b""
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        data = png[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = data
        elif kind == b"IDAT":
            chunks.append(data)
        position += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8, depth
    assert colour_type in (2, 6), colour_type
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    previous = bytearray(stride)
    colours: set[bytes] = set()
    for row in range(height):
        offset = row * (stride + 1)
        kind, line = raw[offset], bytearray(raw[offset + 1 : offset + 1 + stride])
        for i in range(stride):  # undo the scanline's filter (PNG spec, section 9)
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                nearest = min(
                    (abs(guess - left), 0, left),
                    (abs(guess - up), 1, up),
                    (abs(guess - corner), 2, corner),
                )
                line[i] = (line[i] + nearest[2]) & 0xFF
        colours.update(bytes(line[i : i + 3]) for i in range(0, stride, channels))
        previous = line
    return (width, height), len(colours)


def test_a_week_of_a_mixed_fleet_renders_as_a_page_chromium_shows_safely(
    store: Store,
    process_clock: FakeClock,
    lambda_queue: QueuedLambda,
    sam_function: Callable[[str], ModuleType],
    load_event: Callable[[str], Any],
    lambda_context: Any,
) -> None:
    chromium = _chromium()  # before the week: a missing browser should not cost a replay

    # given a week of the fleet, run by the dispatcher and the task wrapper
    _simulated_week(store, process_clock, lambda_queue)

    # when the widget's function answers the dashboard's view, held to its role
    widget = sam_function("FleetWidgetFunction")
    html = widget.handler(load_event("fleet_widget"), lambda_context)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page_file = OUTPUT / "fleet-widget.html"
    screenshot = OUTPUT / "fleet-widget.png"
    page_file.write_text(page_document(html, title=TITLE))
    screenshot.unlink(missing_ok=True)

    # and Chromium opens the page: its DOM after any script would have run, and a screenshot
    browser = [
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ]
    url = page_file.resolve().as_uri()
    dumped = subprocess.run(
        [*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    subprocess.run(
        [*browser, f"--screenshot={screenshot}", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    (OUTPUT / "fleet-widget.dom.html").write_text(dumped)
    dom = WidgetDom(dumped)

    # then there is one row per task, each with its health after the week
    assert [row.task for row in dom.rows] == [
        "cleanup",
        "export",
        "greeter",
        "hourly-sync",
        "nightly-report",
    ]
    health = {row.task: row.cells[8] for row in dom.rows}
    assert health == {
        "cleanup": "paused",
        "export": "failing",
        "greeter": "healthy",
        "hourly-sync": "healthy",
        "nightly-report": "healthy",
    }
    assert "168" not in dom.row("hourly-sync").cells[7]  # failures in a row, not runs
    assert dom.row("hourly-sync").cells[5] == "100%"
    assert dom.row("nightly-report").cells[5] == "71%"  # 5 of 7 nights
    # the script did not run: the title is the page's, the script shown as text, no element
    assert dom.title == TITLE
    assert "script" not in dom.elements
    assert f"Says hello {SCRIPT}" in dom.row("greeter").cells[0]
    # an error's markup is text too: read as markup, its tags would be gone from the text
    assert "ConnectionError: the bucket <b>refused</b> the upload" in dom.row("export").text
    # each button calls this function back, with its action and task
    run_now = dom.button("export", "Run now")
    assert run_now.attributes["endpoint"] == lambda_context.invoked_function_arn
    assert run_now.attributes["action"] == "call"
    assert run_now.attributes["confirmation"] == "Start a manual run of export now?"
    assert run_now.params == {"action": "trigger", "task": "export", "page": 1, "page_size": 20}
    assert dom.button("cleanup", "Resume").params["action"] == "resume"
    assert dom.button("greeter", "Pause").params["action"] == "pause"
    # and the screenshot is a PNG of the window, with a table's worth of colours on it
    size, colours = _png_size_and_colours(screenshot.read_bytes())
    assert size == WINDOW
    assert colours > 50, f"the screenshot looks blank: {colours} colours"
