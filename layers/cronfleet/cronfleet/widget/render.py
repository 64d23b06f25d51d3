"""The widget's HTML: pure functions of a page, with every untrusted text escaped.

Task names, descriptions, tenants, tags and error texts come from whoever declared a task or
whatever its code raised: each goes through :func:`html.escape` on its way out. CloudWatch strips
scripts from a widget's HTML, but an unescaped ``<`` in a name would still break the table, and
the JSON inside a ``<cwdb-action>`` is parsed from the element's text, so it holds no ``<``,
``>`` or ``&`` at all (JSON's ``\\u003c`` escapes say the same to the parser).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from html import escape
from typing import Any, Literal

from cronfleet.health import Health
from cronfleet.lifecycle.slots import slot_key
from cronfleet.lifecycle.states import Trigger
from cronfleet.widget.view import FleetPage, TaskRow

DOCS = """\
## cronfleet fleet

Every task of this cronfleet stack, one row each: its schedule in words, next run, last run and
its result, success rate, p95 duration, failures in a row and health, all read from the task's
own counters. Each row has buttons to run the task now, pause it or resume it; each asks to be
confirmed, runs with this function's role, and is recorded as the `cronfleet` CLI records it.

### Widget parameters
Param | Description
---|---
**page_size** | Tasks a page, 1 to 100 (default 20)
**health** | Only tasks of this health: new, healthy, degraded, failing, paused, disabled, removed
**tenant** | Only the schedules of this tenant (the schedules API's)
**tag** | Only tasks with this tag: `key` or `key=value`

### Example parameters
``` yaml
page_size: 25
health: failing
```
"""

HEALTH_COLOURS = {
    Health.NEW: "#5f6b7a",
    Health.HEALTHY: "#037f0c",
    Health.DEGRADED: "#8d6605",
    Health.FAILING: "#d91515",
    Health.PAUSED: "#0972d3",
    Health.DISABLED: "#5f6b7a",
    Health.REMOVED: "#5f6b7a",
}

STYLE = """\
<style>
.cf-fleet { font-size: 13px; }
.cf-fleet table { width: 100%; border-collapse: collapse; }
.cf-fleet th, .cf-fleet td { padding: 4px 6px; text-align: left; vertical-align: top;
  border-bottom: 1px solid #e9ebed; }
.cf-fleet td.cf-num { text-align: right; white-space: nowrap; }
.cf-fleet .cf-muted { color: #5f6b7a; font-size: 12px; }
.cf-fleet .cf-error-text { color: #d91515; font-size: 12px; white-space: pre-wrap; }
.cf-fleet .cf-health { font-weight: bold; white-space: nowrap; }
.cf-fleet td.cf-actions { white-space: nowrap; }
.cf-fleet .cf-bar { margin: 4px 0 8px 0; }
.cf-fleet .cf-notice { padding: 6px; margin-bottom: 8px; border-left: 4px solid #037f0c; }
.cf-fleet .cf-refusal { padding: 6px; margin-bottom: 8px; border-left: 4px solid #d91515; }
.cf-fleet form { display: inline; }
</style>
"""


def action_json(params: Mapping[str, Any]) -> str:
    """A ``<cwdb-action>`` body: JSON whose text holds no character HTML would read as markup."""
    text = json.dumps(params, sort_keys=True, separators=(", ", ": "))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def button(
    label: str,
    endpoint: str,
    params: Mapping[str, Any],
    *,
    confirmation: str | None = None,
    primary: bool = False,
    display: Literal["widget", "popup"] = "widget",
) -> str:
    """A button that calls ``endpoint`` with ``params`` (``<cwdb-action>`` acts on the element
    just before it), asking ``confirmation`` first."""
    classes = "btn btn-primary" if primary else "btn"
    confirm = f' confirmation="{escape(confirmation)}"' if confirmation else ""
    return (
        f'<a class="{classes}">{escape(label)}</a>'
        f'<cwdb-action action="call" endpoint="{escape(endpoint)}" display="{display}"{confirm}>'
        f"{action_json(params)}</cwdb-action>"
    )


def when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = (moment - now).total_seconds()
    span = abs(seconds)
    if span < 60:
        relative = "now"
    else:
        for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
            if span >= size:
                amount = f"{int(span // size)}{unit}"
                break
        relative = f"in {amount}" if seconds > 0 else f"{amount} ago"
    return f"{moment.strftime('%Y-%m-%d %H:%M')} UTC ({relative})"


def duration(milliseconds: float | None) -> str:
    if milliseconds is None:
        return "-"
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    if milliseconds < 60_000:
        return f"{milliseconds / 1000:.1f} s"
    return f"{milliseconds / 60_000:.1f} min"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _last_run(row: TaskRow, now: datetime) -> str:
    status = row.status
    if status.last_slot is None:
        return '<span class="cf-muted">never ran</span>'
    result = status.last_status.value if status.last_status is not None else "-"
    trigger = " (manual)" if status.last_trigger is Trigger.MANUAL else ""
    slot = escape(status.last_slot)
    text = f'{escape(result)}{trigger}<br><span class="cf-muted">{slot}</span>'
    if status.last_error:
        text += f'<div class="cf-error-text">{escape(status.last_error)}</div>'
    return text


def _row(row: TaskRow, page: FleetPage, endpoint: str, state: dict[str, Any]) -> str:
    status = row.status
    name = escape(row.task_id)
    about = []
    if row.description:
        about.append(f'<div class="cf-muted">{escape(row.description)}</div>')
    labels = [f"tenant {row.tenant}"] if row.tenant else []
    labels += [f"{key}={value}" if value else key for key, value in sorted(row.tags.items())]
    if labels:
        about.append(f'<div class="cf-muted">{escape(", ".join(labels))}</div>')
    buttons = []
    if row.can_run:
        buttons.append(
            button(
                "Run now",
                endpoint,
                {"action": "trigger", "task": row.task_id} | state,
                confirmation=f"Start a manual run of {row.task_id} now?",
            )
        )
    if row.can_pause:
        buttons.append(
            button(
                "Pause",
                endpoint,
                {"action": "pause", "task": row.task_id} | state,
                confirmation=f"Pause {row.task_id}? Its slots are skipped until it is resumed.",
            )
        )
    if row.can_resume:
        buttons.append(
            button(
                "Resume",
                endpoint,
                {"action": "resume", "task": row.task_id} | state,
                confirmation=f"Resume {row.task_id}, scheduling it again from now on?",
            )
        )
    colour = HEALTH_COLOURS[status.health]
    cells = [
        f"<td><b>{name}</b>{''.join(about)}</td>",
        f"<td>{escape(status.schedule_text)}</td>",
        f"<td>{escape(status.timezone)}</td>",
        f"<td>{escape(when(status.next_run, page.now))}</td>",
        f"<td>{_last_run(row, page.now)}</td>",
        f'<td class="cf-num">{percent(status.success_rate)}</td>',
        f'<td class="cf-num">{duration(row.p95_duration_ms)}</td>',
        f'<td class="cf-num">{status.consecutive_failures}</td>',
        f'<td class="cf-health" style="color: {colour}">{escape(status.health.value)}</td>',
        f'<td class="cf-actions">{" ".join(buttons)}</td>',
    ]
    return f'<tr data-task="{name}">{"".join(cells)}</tr>'


HEADINGS = (
    "Task",
    "Schedule",
    "Timezone",
    "Next run",
    "Last run",
    "Success",
    "p95",
    "Failures in a row",
    "Health",
    "Actions",
)


def _filter_form(page: FleetPage, endpoint: str, page_size: int) -> str:
    chosen = page.filters.get("health", "")
    options = ['<option value="">any health</option>'] + [
        f'<option value="{health.value}"{" selected" if health.value == chosen else ""}>'
        f"{health.value}</option>"
        for health in Health
    ]
    tenant = escape(page.filters.get("tenant", ""))
    tag = escape(page.filters.get("tag", ""))
    clear = ""
    if page.filters:
        clear = " " + button("Clear", endpoint, {"page": 1, "page_size": page_size})
    return (
        f'<form><select name="health">{"".join(options)}</select> '
        f'<input name="tenant" placeholder="tenant" value="{tenant}"> '
        f'<input name="tag" placeholder="tag or tag=value" value="{tag}"> '
        + button("Filter", endpoint, {"form": True, "page": 1, "page_size": page_size})
        + clear
        + "</form>"
    )


def _pager(page: FleetPage, endpoint: str, state: Mapping[str, Any]) -> str:
    pagination = page.pagination
    parts = []
    if pagination.has_previous:
        parts.append(button("Previous", endpoint, dict(state) | {"page": pagination.page - 1}))
    parts.append(f"<span>Page {pagination.page} of {pagination.pages}</span>")
    if pagination.has_next:
        parts.append(button("Next", endpoint, dict(state) | {"page": pagination.page + 1}))
    return " ".join(parts)


def render_page(page: FleetPage, endpoint: str, *, notice: str | None = None) -> str:
    """The widget: a summary, the filter form, a page of rows and the pager."""
    pagination = page.pagination
    state: dict[str, Any] = {"page": pagination.page, "page_size": pagination.page_size}
    state |= page.filters
    summary = ", ".join(
        f"{count} {health.value}" for health in Health if (count := page.health_counts.get(health))
    )
    shown = (
        f"{pagination.total} of {page.fleet_size} tasks match"
        if page.filters
        else f"{page.fleet_size} tasks"
    )
    parts = [STYLE, '<div class="cf-fleet">']
    if notice:
        parts.append(f'<div class="cf-notice">{escape(notice)}</div>')
    parts.append(
        f'<div class="cf-bar"><b>{escape(shown)}</b>'
        f"{f' ({escape(summary)})' if summary else ''}"
        f' <span class="cf-muted">as of {escape(slot_key(page.now))}</span></div>'
    )
    parts.append(f'<div class="cf-bar">{_filter_form(page, endpoint, pagination.page_size)}</div>')
    head = "".join(f"<th>{heading}</th>" for heading in HEADINGS)
    body = "".join(_row(row, page, endpoint, state) for row in page.rows)
    if not page.rows:
        body = f'<tr><td colspan="{len(HEADINGS)}" class="cf-muted">No tasks to show.</td></tr>'
    parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    parts.append(f'<div class="cf-bar">{_pager(page, endpoint, state)}</div>')
    parts.append("</div>")
    return "".join(parts)


def render_refusal(field: str, reason: str, endpoint: str | None) -> str:
    """A refused request: the parameter at fault and why; nothing was changed."""
    back = ""
    if endpoint:
        back = " " + button("Back to the fleet", endpoint, {"page": 1})
    return (
        f'{STYLE}<div class="cf-fleet"><div class="cf-refusal" data-field="{escape(field)}">'
        f"<b>Refused:</b> <code>{escape(field)}</code>: {escape(reason)}. "
        f"Nothing was changed.{back}</div></div>"
    )


def page_document(widget_html: str, *, title: str = "cronfleet fleet") -> str:
    """The widget's HTML in a page of its own, a stand-in for the dashboard's frame around it,
    for a browser to open (the local stack's page, the page test's screenshot)."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        "<style>body { font-family: 'Amazon Ember', Helvetica, Arial, sans-serif; margin: 16px;"
        " color: #16191f; background: #ffffff; }"
        " .cwdb-frame { border: 1px solid #d5dbdb; padding: 12px; }"
        " .btn { display: inline-block; padding: 2px 10px; border: 1px solid #5f6b7a;"
        " border-radius: 12px; font-size: 12px; margin: 1px; cursor: pointer; }"
        " .btn-primary { background: #0972d3; color: #ffffff; border-color: #0972d3; }"
        " cwdb-action { display: none; }</style></head>"
        f'<body><h3>{escape(title)}</h3><div class="cwdb-frame">{widget_html}</div></body></html>'
    )
