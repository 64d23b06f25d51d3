"""``cronfleet describe TASK``: one task whole, as a person asks about it.

Its definition in words, its next runs, its counters, its health and its last runs. The same
facts come as a table for people and as a dict for ``--json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from cronfleet.http_task import display_url
from cronfleet.lifecycle.slots import slot_key
from cronfleet.registry.definition import TaskDefinition
from cronfleet.store import ExecutionRecord, TaskRecord
from cronfleet_tools.health import TaskStatus, task_status, time_order
from cronfleet_tools.views import (
    HEALTH_STYLES,
    duration,
    execution_json,
    history_table,
    when,
)

NEXT_RUNS = 5
LAST_RUNS = 5


@dataclass(frozen=True)
class TaskDescription:
    task: TaskRecord
    status: TaskStatus
    next_runs: list[datetime]
    last_runs: list[ExecutionRecord]

    @classmethod
    def of(
        cls, task: TaskRecord, last_runs: list[ExecutionRecord], now: datetime
    ) -> TaskDescription:
        """``last_runs``: the task's newest ledger entries, newest first."""
        scheduled = task.definition.enabled and not task.paused and not task.deleted
        schedule = task.definition.compiled_schedule()
        upcoming = schedule.next_runs(now, NEXT_RUNS) if scheduled else []
        latest = max(last_runs, key=time_order) if last_runs else None
        return cls(task, task_status(task, latest), upcoming, last_runs)

    def facts(self) -> list[tuple[str, str]]:
        """The definition and the counters, as (label, text) lines."""
        definition = self.task.definition
        stats = self.task.stats
        schedule = definition.schedule
        resolved = definition.compiled_schedule().resolved_expression
        if resolved != schedule:
            schedule += f", for this task {resolved}"  # the values its H resolved to
        return [
            ("Schedule", f"{schedule}: {self.status.schedule_text}"),
            ("Timezone", definition.timezone),
            ("State", self._state()),
            ("Target", _target(definition)),
            ("Timeout", f"{definition.attempt_timeout_seconds()} s per attempt"),
            ("Retry", _retry(definition)),
            ("Overlap", definition.overlap),
            ("Catch-up", _catchup(definition)),
            ("Payload", json.dumps(definition.payload) if definition.payload else "none"),
            ("Alerts", _alerts(definition)),
            ("Runs", _runs(self.task)),
            (
                "Duration",
                f"average {duration(_rounded(stats.average_duration_ms))}, "
                f"p95 {duration(_rounded(stats.p95_duration_ms))}",
            ),
        ]

    def _state(self) -> str:
        task = self.task
        if task.deleted:
            return "removed from the template; its history stays"
        if task.paused:
            return f"paused since {task.paused_at or 'an unknown time'}"
        if not task.definition.enabled:
            return "disabled in the template"
        return "scheduled"

    def render(self, now: datetime) -> RenderableType:
        health = self.status.health.value
        if self.status.consecutive_failures:
            health += f" ({self.status.consecutive_failures} in a row)"
        title = Text.assemble(
            (self.task.task_id, "bold"), "  ", (health, HEALTH_STYLES[self.status.health])
        )
        facts = Table.grid(padding=(0, 2))
        facts.add_column(style="bold", no_wrap=True)
        # A word longer than the terminal (a long URL) is cut with an ellipsis, not folded.
        facts.add_column(overflow="ellipsis")
        if self.task.definition.description:
            facts.add_row("About", self.task.definition.description)
        for label, text in self.facts():
            facts.add_row(label, text)
        upcoming = "\n".join(when(run, now) for run in self.next_runs) or "none"
        facts.add_row("Next runs", upcoming)
        parts: list[RenderableType] = [title, facts]
        if self.last_runs:
            parts.append(
                history_table(self.task.task_id, self.last_runs, self.task.definition.payload)
            )
        else:
            parts.append(Text("No runs yet.", style="dim"))
        return Group(*parts)

    def as_json(self) -> dict[str, Any]:
        stats = self.task.stats
        return {
            **self.status.as_json(),
            "definition": self.task.definition.model_dump(mode="json", by_alias=True),
            "resolved_schedule": self.task.definition.compiled_schedule().resolved_expression,
            "paused": self.task.paused,
            "removed": self.task.deleted,
            "next_runs": [slot_key(run) for run in self.next_runs],
            "stats": {
                "runs": stats.runs,
                "succeeded": stats.succeeded,
                "failed": stats.failed,
                "timed_out": stats.timed_out,
                "skipped": stats.skipped,
                "missed": stats.missed,
                "consecutive_failures": stats.consecutive_failures,
                "success_rate": stats.success_rate,
                "average_duration_ms": stats.average_duration_ms,
                "p95_duration_ms": stats.p95_duration_ms,
                "last_success_at": stats.last_success_at,
                "last_failure_at": stats.last_failure_at,
            },
            # In time order, as the table shows them.
            "last_runs": [
                execution_json(run, self.task.definition.payload)
                for run in sorted(self.last_runs, key=time_order)
            ],
        }


def _target(definition: TaskDefinition) -> str:
    if definition.http is not None:
        http = definition.http
        text = f"{http.method} {display_url(http.url)}, answer within {http.timeout_seconds} s"
        if http.secret_arn:
            text += f"; Bearer secret from {_arn_name(http.secret_arn)}"
        return text
    return f"function {_arn_name(definition.function or '').removeprefix('function:')}"


def _arn_name(arn: str) -> str:
    """What an ARN names, without the partition, region and account that make it longer than
    a terminal is wide (``--json`` has the ARN whole): ``function:nightly-backup``, ``secret:
    cronfleet/nightly-AbCdEf``, ``parameter/cronfleet/token``. Anything else as it is."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return arn
    return parts[5]


def _retry(definition: TaskDefinition) -> str:
    retry = definition.retry
    if retry.max_attempts == 1:
        return "no retry: 1 attempt"
    return (
        f"up to {retry.max_attempts} attempts, {retry.interval_seconds} s apart, "
        f"x{retry.backoff_rate:g} each time (at most {retry.max_delay_seconds} s), "
        f"{retry.jitter_strategy.lower()} jitter"
    )


def _catchup(definition: TaskDefinition) -> str:
    catchup = definition.catchup
    text = f"{catchup.policy}, for slots up to {catchup.max_lateness_seconds} s late"
    if catchup.policy == "all":
        text += f", at most {catchup.max_runs} runs"
    return text


def _alerts(definition: TaskDefinition) -> str:
    alerts = definition.alerts
    parts = [f"after {alerts.after_consecutive_failures} failure(s) in a row"]
    if alerts.on_recovery:
        parts.append("on recovery")
    if alerts.slower_than_seconds is not None:
        parts.append(f"when slower than {alerts.slower_than_seconds} s")
    if alerts.realert_after_seconds is not None:
        parts.append(f"again every {alerts.realert_after_seconds} s while failing")
    parts.append(f"to {alerts.topic_arn or 'the stack topic'}")
    return ", ".join(parts)


def _runs(task: TaskRecord) -> str:
    stats = task.stats
    rate = f"{stats.success_rate:.1%}" if stats.success_rate is not None else "-"
    text = (
        f"{stats.runs} finished: {stats.succeeded} succeeded, {stats.failed} failed "
        f"({stats.timed_out} timed out); success rate {rate}; "
        f"{stats.skipped} skipped, {stats.missed} missed"
    )
    if stats.last_success_at:
        text += f"; last success {stats.last_success_at}"
    if stats.last_failure_at:
        text += f"; last failure {stats.last_failure_at}"
    return text


def _rounded(value: float | None) -> int | None:
    return None if value is None else round(value)
