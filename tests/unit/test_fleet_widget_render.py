"""The fleet widget's HTML, rendered from pages built here: what untrusted text becomes, what
its buttons send, how a fleet is cut into pages and filtered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cronfleet.health import Health, TaskStatus
from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet.registry.definition import parse_task_definition
from cronfleet.stats import TaskStats
from cronfleet.store.records import TaskRecord
from cronfleet.widget.render import action_json, button, render_page, render_refusal
from cronfleet.widget.request import WidgetRefusal, WidgetRequest, parse_request
from cronfleet.widget.view import FleetPage, Pagination, TaskRow, matches, paginate
from tests.integration.fleet_widget_dom import WidgetDom

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
ENDPOINT = "arn:aws:lambda:us-east-1:123456789012:function:cronfleet-FleetWidgetFunction-A1B2"
HOSTILE = "<script>document.title='pwned'</script> & \"quoted\""


def _request(**params: Any) -> WidgetRequest:
    return parse_request({"widgetContext": {"widgetId": "widget-1"}} | params)


def _row(task_id: str, *, description: str = "", error: str | None = None, **kw: Any) -> TaskRow:
    status = TaskStatus(
        task_id=task_id,
        schedule="0 9 * * *",
        schedule_text="At 09:00",
        timezone="UTC",
        health=kw.get("health", Health.HEALTHY),
        consecutive_failures=kw.get("failures", 0),
        next_run=NOW + timedelta(hours=1),
        last_slot="2026-11-02T07:00:00Z",
        last_trigger=Trigger.SCHEDULE,
        last_status=RunStatus.FAILED if error else RunStatus.SUCCEEDED,
        last_duration_ms=120,
        last_error=error,
        runs=10,
        success_rate=0.9,
    )
    return TaskRow(status, description, kw.get("tenant"), kw.get("tags", {}), 1500.0)


def _page(*rows: TaskRow) -> FleetPage:
    return FleetPage(list(rows), Pagination(len(rows), 1, 20), len(rows), {}, NOW)


def test_untrusted_names_descriptions_and_errors_are_shown_as_text_never_as_markup() -> None:
    # given a task whose name, description and last error all hold markup, quotes and &
    row = _row("report&<b>x</b>", description=HOSTILE, error="ValueError: <b>bold</b> & 'so'")

    # when the page is rendered and read back as a browser would
    html = render_page(_page(row), ENDPOINT)
    dom = WidgetDom(html)

    # then no script, bold or other element came from them: each reads back as its own text
    plain = _row("plain", description="plain", error="ValueError: plain")
    assert dom.elements == WidgetDom(render_page(_page(plain), ENDPOINT)).elements
    assert "script" not in dom.elements
    assert "<script>" not in html
    (shown,) = dom.rows
    assert shown.task == "report&<b>x</b>"
    assert "report&<b>x</b>" in shown.cells[0]
    assert HOSTILE in shown.cells[0]
    assert "ValueError: <b>bold</b> & 'so'" in shown.text
    # and the confirmation, an attribute, holds the name quoted safely
    confirmations = [b.attributes.get("confirmation", "") for b in shown.buttons]
    assert "Start a manual run of report&<b>x</b> now?" in confirmations


def test_the_json_in_a_button_holds_no_markup_and_parses_back_to_its_parameters() -> None:
    # given parameters with every character HTML cares about
    params = {"action": "pause", "task": "</cwdb-action><script>x</script>&amp;\"'"}

    # when they become a button
    body = action_json(params)
    html = button("Pause", ENDPOINT, params, confirmation="Pause it?")

    # then the JSON text has no <, > or &, and parses back to exactly the parameters
    assert not set("<>&") & set(body)
    assert json.loads(body) == params
    (parsed,) = WidgetDom(html).buttons
    assert parsed.params == params
    assert parsed.attributes == {
        "action": "call",
        "endpoint": ENDPOINT,
        "display": "widget",
        "confirmation": "Pause it?",
    }
    assert parsed.label == "Pause"


def test_each_button_names_its_action_task_and_the_view_to_come_back_to() -> None:
    rows = [_row("a"), _row("b", health=Health.PAUSED)]
    page = FleetPage(rows, Pagination(45, 2, 20), 50, {"health": "healthy"}, NOW)

    dom = WidgetDom(render_page(page, ENDPOINT))

    assert dom.button("a", "Run now").params == {
        "action": "trigger",
        "task": "a",
        "page": 2,
        "page_size": 20,
        "health": "healthy",
    }
    assert dom.button("a", "Pause").params["action"] == "pause"
    assert dom.button("b", "Resume").params["action"] == "resume"
    assert [b.label for b in dom.row("b").buttons] == ["Run now", "Resume"]
    pager = {b.label: b.params for b in dom.buttons if b.label in ("Previous", "Next")}
    assert pager == {
        "Previous": {"page": 1, "page_size": 20, "health": "healthy"},
        "Next": {"page": 3, "page_size": 20, "health": "healthy"},
    }
    assert "Page 2 of 3" in dom.text


@pytest.mark.parametrize(
    ("total", "size", "pages"), [(0, 20, 1), (1, 20, 1), (20, 20, 1), (21, 20, 2), (45, 20, 3)]
)
def test_a_fleet_is_cut_into_whole_pages(total: int, size: int, pages: int) -> None:
    pagination = Pagination(total, pages, size)

    assert pagination.pages == pages
    assert pagination.has_previous is (pages > 1)
    assert not pagination.has_next
    assert pagination.first_index == (pages - 1) * size


def test_a_page_past_the_last_is_refused_unless_an_action_moved_the_last() -> None:
    with pytest.raises(WidgetRefusal) as refused:
        paginate(21, _request(page=3), clamp=False)

    assert refused.value.field == "page"
    assert "page 3 is past the last page, 2 (21 matching tasks, 20 a page)" in str(refused.value)
    assert paginate(21, _request(page=3), clamp=True).page == 2
    assert Pagination(21, 2, 20).window(list(range(21))) == [20]


def _task(name: str, tenant: str | None = None, **properties: Any) -> TaskRecord:
    definition = parse_task_definition(
        name, {"Schedule": "rate(1 hour)", "Function": "fn", **properties}, now=NOW
    )
    return TaskRecord(name, definition.model_dump_json(by_alias=True), tenant=tenant)


def test_filters_match_on_health_tenant_and_tag() -> None:
    failing = TaskRecord(
        "f",
        _task("f").definition_json,
        stats=TaskStats(runs=5, failed=5, consecutive_failures=5),
    )
    tagged = _task("t", tenant="acme", Tags={"team": "ops", "tier": ""})

    assert matches(failing, _request(health="failing"))
    assert not matches(tagged, _request(health="failing"))
    assert matches(tagged, _request(tenant="acme"))
    assert not matches(failing, _request(tenant="acme"))
    assert matches(tagged, _request(tag="team"))
    assert matches(tagged, _request(tag="team=ops"))
    assert not matches(tagged, _request(tag="team=web"))
    assert matches(tagged, _request(tag="tier="))


def test_the_filter_form_blank_fields_are_no_filter() -> None:
    request = parse_request(
        {
            "form": True,
            "widgetContext": {"forms": {"all": {"health": "paused", "tenant": " ", "tag": ""}}},
        }
    )

    assert request.filters == {"health": "paused"}


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ([], "event"),
        ({}, "widgetContext"),
        ({"widgetContext": {}, "action": "restart"}, "action"),
        ({"widgetContext": {}, "action": "resume"}, "task"),
        ({"widgetContext": {}, "page": "two"}, "page"),
        ({"widgetContext": {}, "page_size": 0}, "page_size"),
    ],
)
def test_a_malformed_event_is_refused_naming_its_field(event: Any, field: str) -> None:
    with pytest.raises(WidgetRefusal) as refused:
        parse_request(event)

    assert refused.value.field == field


def test_a_refusal_escapes_what_it_repeats() -> None:
    dom = WidgetDom(render_refusal("task", "no task '<i>x</i>' is registered", ENDPOINT))

    assert dom.refusal is not None
    assert dom.refusal["data-field"] == "task"
    assert "no task '<i>x</i>' is registered" in dom.refusal_text
    assert "i" not in dom.elements
    assert [b.params for b in dom.buttons] == [{"page": 1}]
