"""The fleet widget as `sam local invoke` loads it, held to its role in template.yaml.

Every DynamoDB call the handler makes is checked against the widget function's statements in the
transformed template (the ``sam_function`` fixture), so a permission the template forgot fails
here as it would on AWS. Lambda's Invoke is the one stand-in (a recording queue): whether the
role may invoke a function is judged in tests/unit/test_template_widget.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from cronfleet.lifecycle.attempts import Attempts
from cronfleet.lifecycle.states import RunStatus, SkipReason, Trigger
from tests.integration.fleet_widget_dom import WidgetDom
from tests.support import register

if TYPE_CHECKING:
    from cronfleet.store import Store
    from tests.integration.conftest import FakeClock, QueuedLambda

pytestmark = pytest.mark.integration

ENDPOINT = "arn:aws:lambda:us-east-1:123456789012:function:cronfleet-test-function"


@pytest.fixture
def fleet(store: Store, process_clock: FakeClock) -> list[str]:
    """A small fleet: an hourly report, a daily digest, and a paused cleanup."""
    register(store, process_clock, "report", Schedule="0 * * * *", Description="Sales & <returns>")
    register(store, process_clock, "digest", Schedule="0 9 * * *", Timezone="Europe/Paris")
    register(store, process_clock, "cleanup", Schedule="30 2 * * *", Tags={"team": "ops"})
    store.pause("cleanup", process_clock.now)
    return ["cleanup", "digest", "report"]


@pytest.fixture
def widget(
    sam_function: Callable[[str], ModuleType],
    lambda_context: Any,
    load_event: Callable[[str], Any],
    lambda_queue: QueuedLambda,
    fleet: list[str],
) -> Callable[..., WidgetDom]:
    """Call the widget with the sample event plus ``params``, as a button's call would be."""
    module = sam_function("FleetWidgetFunction")
    sample = load_event("fleet_widget")
    answers: list[str] = []

    def call(**params: Any) -> WidgetDom:
        event = copy.deepcopy(sample) | params
        answer = module.handler(event, lambda_context)
        assert isinstance(answer, str)
        answers.append(answer)
        # Invokes queued, once the first call has made the clients under the role.
        service = module.widget()
        service.actions.attempts = lambda: Attempts(service.store, lambda_queue)
        return WidgetDom(answer)

    call.answers = answers  # type: ignore[attr-defined]
    return call


def test_a_page_shows_one_row_per_task_from_their_counters(
    widget: Callable[..., WidgetDom], fleet: list[str]
) -> None:
    # when the sample event (the dashboard's view) is answered
    page = widget()

    # then every task has its row, in name order, with its schedule in words and its health
    assert [row.task for row in page.rows] == fleet
    assert "paused" in page.row("cleanup").text
    assert "At 09:00" in page.row("digest").text
    assert "Europe/Paris" in page.row("digest").text
    assert "Sales & <returns>" in page.row("report").text  # escaped on the way, read back as text
    assert "returns" not in page.elements
    # and each row has the buttons its state allows, calling this function back
    assert [button.label for button in page.row("report").buttons] == ["Run now", "Pause"]
    assert [button.label for button in page.row("cleanup").buttons] == ["Run now", "Resume"]
    assert page.button("report", "Pause").attributes["endpoint"] == ENDPOINT


def test_run_now_starts_a_manual_run_recorded_in_the_ledger(
    widget: Callable[..., WidgetDom], store: Store, lambda_queue: QueuedLambda
) -> None:
    # given the page, and its Run now button for the report
    params = widget().button("report", "Run now").params

    # when the button is pressed (its confirmation accepted)
    page = widget(**params)

    # then the run is in the ledger as manual, PENDING until the function starts, and invoked
    (run,) = store.executions("report", newest_first=True, limit=5)
    assert run.trigger is Trigger.MANUAL
    assert run.status is RunStatus.PENDING
    assert [(task, attempt) for task, _, attempt in lambda_queue.slots_invoked()] == [("report", 1)]
    assert f"Started a manual run of report (slot {run.slot})" in page.text
    assert [row.task for row in page.rows] == ["cleanup", "digest", "report"]


def test_pause_and_resume_change_the_task_as_the_cli_does(
    widget: Callable[..., WidgetDom], store: Store, process_clock: FakeClock
) -> None:
    # when the digest is paused from its row
    paused_page = widget(**widget().button("digest", "Pause").params)
    paused = store.get_task("digest")

    # then it is paused since now, and its row offers a resume instead
    assert paused is not None
    assert paused.paused
    assert paused.paused_at == "2026-11-02T08:00:00Z"
    assert [button.label for button in paused_page.row("digest").buttons] == ["Run now", "Resume"]

    # when, two days on, it is resumed
    process_clock.advance(days=2)
    resumed_page = widget(**paused_page.button("digest", "Resume").params)
    resumed = store.get_task("digest")

    # then it is scheduled again, and the slots it missed are one SKIPPED (paused) entry
    assert resumed is not None
    assert not resumed.paused
    assert resumed.updated_at == "2026-11-04T08:00:00Z"
    assert resumed.next_run is not None
    assert resumed.next_run.isoformat() == "2026-11-05T08:00:00+00:00"  # 09:00 in Paris
    (skipped,) = store.executions("digest", newest_first=True, limit=5)
    assert skipped.status is RunStatus.SKIPPED
    assert skipped.skip_reason == SkipReason.PAUSED
    assert "Resumed digest." in resumed_page.text


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"action": "reboot", "task": "report"}, "action", "Input should be"),
        ({"action": "pause"}, "task", "the pause action needs a task"),
        ({"action": "trigger", "task": "nosuch"}, "task", "no task 'nosuch' is registered"),
        ({"action": "pause", "task": "cleanup"}, "action", "already paused"),
        ({"action": "resume", "task": "report"}, "action", "is not paused"),
        ({"page": 3}, "page", "page 3 is past the last page, 1"),
        ({"page": 0}, "page", "greater than or equal to 1"),
        ({"page_size": 1000}, "page_size", "less than or equal to 100"),
        ({"health": "sickly"}, "health", "Input should be"),
    ],
)
def test_a_bad_request_is_refused_by_name_and_changes_nothing(
    widget: Callable[..., WidgetDom],
    store: Store,
    lambda_queue: QueuedLambda,
    params: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    # given the fleet as it stands
    widget()
    before = {task.task_id: task.version for task in store.list_tasks()}

    # when a request with a bad parameter comes in
    answer = widget(**params)

    # then the answer names the parameter and why, and nothing was changed or run
    assert answer.refusal is not None
    assert answer.refusal["data-field"] == field
    assert reason in answer.refusal_text
    assert "Nothing was changed" in answer.refusal_text
    assert answer.rows == []
    assert {task.task_id: task.version for task in store.list_tasks()} == before
    assert store.executions("report", newest_first=True, limit=5) == []
    assert lambda_queue.invoked == []


def test_an_event_without_its_widget_context_is_refused(
    sam_function: Callable[[str], ModuleType], lambda_context: Any, fleet: list[str]
) -> None:
    module = sam_function("FleetWidgetFunction")

    answer = WidgetDom(module.handler({"page": 1}, lambda_context))

    assert answer.refusal is not None
    assert answer.refusal["data-field"] == "widgetContext"
    assert "Field required" in answer.refusal_text


def test_describe_answers_the_widgets_documentation_in_markdown(
    sam_function: Callable[[str], ModuleType], lambda_context: Any
) -> None:
    module = sam_function("FleetWidgetFunction")

    documentation = module.handler({"describe": True}, lambda_context)

    assert documentation.startswith("## cronfleet fleet")
    assert "**page_size**" in documentation


def test_filters_and_pages_narrow_the_fleet(
    widget: Callable[..., WidgetDom], load_event: Callable[[str], Any]
) -> None:
    # given the widget's form filled in: paused tasks, any tenant (a blank field)
    context = load_event("fleet_widget")["widgetContext"]
    context["forms"]["all"] = {"health": "paused", "tenant": "", "tag": ""}

    # when the fleet is shown a task a page, then filtered by health, tag and the form
    first = widget(page_size=1)
    second = widget(**first.buttons[-1].params)  # the pager's Next
    paused = widget(health="paused")
    tagged = widget(tag="team=ops")
    untagged = widget(tag="team=web")
    filtered = widget(form=True, page=1, page_size=20, widgetContext=context)

    # then each shows what it asked for
    assert [row.task for row in first.rows] == ["cleanup"]
    assert "Page 1 of 3" in first.text
    assert first.buttons[-1].label == "Next"
    assert [row.task for row in second.rows] == ["digest"]
    assert [button.label for button in second.buttons[-2:]] == ["Previous", "Next"]
    assert [row.task for row in paused.rows] == ["cleanup"]
    assert [row.task for row in tagged.rows] == ["cleanup"]
    assert untagged.rows == []
    assert "0 of 3 tasks match" in untagged.text
    assert [row.task for row in filtered.rows] == ["cleanup"]
    assert "1 of 3 tasks match" in filtered.text


class _Recorder:
    """A runner's reporter that only remembers what it was told."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def started(self, stack: Any, applied: Any) -> None:
        self.calls.append("started")

    def ticked(self, report: Any) -> None:
        self.calls.append("ticked")

    def invocation(self, invocation: Any) -> None:
        self.calls.append("invocation")

    def alert(self, message: Any) -> None:
        self.calls.append("alert")

    def finished(self) -> None:
        self.calls.append("finished")


def test_the_local_runner_keeps_the_widget_page_without_slowing_its_ticks(
    store: Store, process_clock: FakeClock, fleet: list[str], tmp_path: Any
) -> None:
    from cronfleet_tools.local.widget_page import WidgetPageReporter

    # given `cronfleet run --widget-page` wrapping the console's reporter
    page = tmp_path / "fleet.html"
    inner = _Recorder()
    reporter = WidgetPageReporter(inner, page, process_clock, interval=3600)
    stack = type("Stack", (), {"store": store})()

    # when the run starts, ticks twice (the second within the interval) and finishes
    reporter.started(stack, [])
    first = page.read_text()
    store.pause("report", process_clock.now)
    reporter.ticked(None)  # type: ignore[arg-type]
    unchanged = page.read_text()
    reporter.finished()
    last = WidgetDom(page.read_text())

    # then the console heard everything, and the page is the widget's, rewritten at the ends
    assert inner.calls == ["started", "ticked", "finished"]
    assert [row.task for row in WidgetDom(first).rows] == fleet
    assert unchanged == first
    assert last.title == "cronfleet fleet (local stack)"
    assert "paused" in last.row("report").text
