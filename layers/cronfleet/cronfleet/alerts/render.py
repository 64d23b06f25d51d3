"""An alert as people and machines read it: the subject, the email, the JSON, the links.

The links say where a reader goes next: on AWS, the console (:class:`ConsoleLinks`); in the
local runtime, which has no console, the run's log file and the commands that show the run
(:class:`LocalLinks`).
"""

from __future__ import annotations

import json
import re
import shlex
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from cronfleet.alerts.policy import DISPATCHER_ALERT_ID, Alert, AlertKind

# SNS says a Subject must be fewer than 100 characters, printable ASCII, without line breaks.
SUBJECT_LIMIT = 99
SUBJECT_PREFIX = "[cronfleet] "
MESSAGE_LIMIT_BYTES = 256 * 1024


# --- console links ------------------------------------------------------------------------------


def log_group_of(function: str | None) -> str | None:
    """The CloudWatch Logs group of a function given by name, ARN or partial ARN, when it logs
    to its own (Lambda's default)."""
    if not function:
        return None
    parts = function.split(":")
    if "function" in parts:
        name = parts[parts.index("function") + 1]
    elif len(parts) >= 7:  # arn:aws:lambda:region:account:function:name
        name = parts[6]
    else:
        name = parts[0]  # a name, perhaps with a :qualifier
    return f"/aws/lambda/{name}"


def _cw(text: str) -> str:
    """CloudWatch's fragment encoding: URL-encode twice, then write each '%' as '$'."""
    return quote(quote(text, safe=""), safe="").replace("%", "$")


@dataclass(frozen=True)
class ConsoleLinks:
    """Where a reader goes next. The URL formats are the console's, which AWS does not
    document as stable: verify them against a deployed stack when the console changes.

    - dashboard: ``https://{r}.console.aws.amazon.com/cloudwatch/home?region={r}
      #dashboards/dashboard/{name}``
    - logs: ``...cloudwatch/home?region={r}#logsV2:log-groups/log-group/{group}``, the group
      name (and the ``log-events?filterPattern=`` value) encoded as ``_cw`` does, so
      ``/aws/lambda/f`` becomes ``$252Faws$252Flambda$252Ff``
    - execution: ``https://{r}.console.aws.amazon.com/dynamodbv2/home?region={r}
      #edit-item?itemMode=2&pk={task}&sk={slot}&table={table}``
    """

    region: str
    dashboard_name: str | None = None
    log_group: str | None = None  # the task function's, e.g. /aws/lambda/nightly-backup
    executions_table: str | None = None
    # The one log group every function of the stack logs to, when they share one.
    shared_log_group: str | None = None

    heading: ClassVar[str] = "Console"

    def for_function(self, function: str | None) -> ConsoleLinks:
        """The links of a task run by ``function``: its logs are in the shared group, or in
        the function's own."""
        return replace(self, log_group=self.shared_log_group or log_group_of(function))

    def _base(self, service: str) -> str:
        region = quote(self.region, safe="")
        return f"https://{region}.console.aws.amazon.com/{service}/home?region={region}"

    def dashboard(self) -> str | None:
        if not self.dashboard_name:
            return None
        return f"{self._base('cloudwatch')}#dashboards/dashboard/{quote(self.dashboard_name)}"

    def logs(self, request_id: str | None = None) -> str | None:
        """The log group; narrowed to the run's lines when its Lambda request id is known."""
        if not self.log_group:
            return None
        url = f"{self._base('cloudwatch')}#logsV2:log-groups/log-group/{_cw(self.log_group)}"
        if request_id:
            url += f"/log-events$3FfilterPattern$3D{_cw(json.dumps(request_id))}"
        return url

    def execution(self, task_id: str, slot: str | None) -> str | None:
        if not self.executions_table or not slot:
            return None
        query = (
            f"itemMode=2&pk={quote(task_id, safe='')}&sk={quote(slot, safe='')}"
            f"&table={quote(self.executions_table, safe='')}"
        )
        return f"{self._base('dynamodbv2')}#edit-item?{query}"

    def for_alert(self, alert: Alert) -> dict[str, str]:
        links = {
            "logs": self.logs(alert.request_id),
            "dashboard": self.dashboard(),
            "execution": self.execution(alert.task_id, alert.slot),
        }
        return {name: url for name, url in links.items() if url}


@dataclass(frozen=True)
class LocalLinks:
    """Links of the local runtime: the attempt's log file (when it is there to open), and the
    commands that show the run and the task's history, for the stack in ``state_dir``, run as
    ``cli`` (the path `make run` prints, when `cronfleet` is not on PATH)."""

    state_dir: str
    cli: str = "cronfleet"

    heading: ClassVar[str] = "On this machine"

    def for_function(self, function: str | None) -> LocalLinks:
        return self  # a run's log file is found by its request id, whichever function ran it

    def log_file(self, request_id: str | None) -> str | None:
        if not request_id:
            return None
        found = sorted(Path(self.state_dir, "logs").glob(f"*/{request_id}.log"))
        return str(found[0]) if found else None

    def _command(self, *words: str) -> str:
        stack = ("--local", "--state-dir", self.state_dir)
        return " ".join([self.cli, *(shlex.quote(word) for word in (*words, *stack))])

    def for_alert(self, alert: Alert) -> dict[str, str]:
        links = {"logs": self.log_file(alert.request_id)}
        if alert.task_id != DISPATCHER_ALERT_ID:
            if alert.slot and alert.missed_count is None:
                links["run"] = self._command("logs", alert.task_id, "--slot", alert.slot)
            links["history"] = self._command("history", alert.task_id)
        return {name: link for name, link in links.items() if link}


AlertLinks = ConsoleLinks | LocalLinks


# --- rendering ------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ascii_line(text: str) -> str:
    """Printable ASCII on one line: accents folded (é -> e), anything else becomes '?'."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    folded = re.sub(r"\s+", " ", folded)
    return "".join(ch if " " <= ch <= "~" else "?" for ch in folded).strip()


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _headline(alert: Alert) -> str:
    """What happened, in the words that follow the task id."""
    match alert.kind:
        case AlertKind.FAILING:
            verb = "is still failing" if alert.repeat else "is failing"
            return f"{verb} ({alert.consecutive_failures} in a row)"
        case AlertKind.RECOVERED:
            failures = _plural(alert.consecutive_failures or 0, "failure")
            return f"recovered after {failures}"
        case AlertKind.TIMED_OUT:
            return f"timed out (attempt {alert.attempt})"
        case AlertKind.SLOW:
            seconds = round((alert.duration_ms or 0) / 1000)
            return f"was slow ({seconds}s, limit {alert.slower_than_seconds}s)"
        case AlertKind.MISSED:
            return f"missed {_plural(alert.missed_count or 0, 'run')}"
        case AlertKind.DISPATCH_FAILED:
            return f"could not be invoked ({alert.error_type})"
        case AlertKind.STUCK:
            return f"is stuck (attempt {alert.attempt})"
        case AlertKind.LOST:
            return f"lost a run (attempt {alert.attempt} never started)"
        case AlertKind.TICK_CLAMPED:
            return f"was sent a tick dated {alert.slot}"
    raise AssertionError(alert.kind)  # pragma: no cover


def subject(alert: Alert) -> str:
    """At most SUBJECT_LIMIT printable ASCII characters; a long task id gives way, so the
    verdict always fits."""
    verdict = " " + _ascii_line(_headline(alert))
    task = _ascii_line(alert.task_id)
    room = SUBJECT_LIMIT - len(SUBJECT_PREFIX) - len(verdict)
    if room < 16:  # a verdict made long by an odd error type: keep the task id, cut the tail
        return (SUBJECT_PREFIX + task + verdict)[: SUBJECT_LIMIT - 3].rstrip() + "..."
    if len(task) > room:
        task = task[: room - 3] + "..."
    return SUBJECT_PREFIX + task + verdict


def as_json(alert: Alert, links: Mapping[str, str]) -> dict[str, Any]:
    """The alert for machines: one stable shape, absent values as null."""
    return {
        "source": "cronfleet",
        "version": 1,
        "event": alert.kind.value,
        "severity": alert.severity.value,
        "task_id": alert.task_id,
        "tenant": alert.tenant,
        "slot": alert.slot,
        "attempt": alert.attempt,
        "occurred_at": _iso(alert.occurred_at),
        "repeat": alert.repeat,
        "last_alert_at": _iso(alert.last_alert_at),
        "error": (
            {
                "type": alert.error_type,
                "message": alert.error_message,
                "traceback": alert.traceback,
            }
            if alert.error_type or alert.error_message
            else None
        ),
        "consecutive_failures": alert.consecutive_failures,
        "threshold": alert.threshold,
        "duration_ms": alert.duration_ms,
        "slower_than_seconds": alert.slower_than_seconds,
        "missed": (
            {
                "count": alert.missed_count,
                "first_slot": alert.first_missed_slot,
                "last_slot": alert.last_missed_slot,
            }
            if alert.missed_count is not None
            else None
        ),
        "request_id": alert.request_id,
        "reason": alert.reason,
        "links": dict(links),
    }


_WHAT = {
    AlertKind.FAILING: "The task has failed {n} in a row (alert threshold: {t}).",
    AlertKind.RECOVERED: "The task succeeded again after {f} in a row.",
    AlertKind.TIMED_OUT: "An attempt ran past its timeout and was stopped.",
    AlertKind.SLOW: "A run succeeded but took {d:.1f}s, longer than the {s}s allowed.",
    AlertKind.MISSED: "{m} scheduled run(s) were missed and will not be run.",
    AlertKind.DISPATCH_FAILED: "cronfleet could not invoke the task's function.",
    AlertKind.STUCK: "The run did not finish and the watchdog gave up on it.",
    AlertKind.LOST: "The run's code never started; the attempt counts as failed.",
    AlertKind.TICK_CLAMPED: (
        "The dispatcher was sent a tick dated too far from its own clock to be the "
        "scheduler's, and dispatched its clock's current minute instead. Check what invokes "
        "the dispatcher."
    ),
}


def email_body(alert: Alert, links: Mapping[str, str], heading: str = ConsoleLinks.heading) -> str:
    what = _WHAT[alert.kind].format(
        n=_plural(alert.consecutive_failures or 0, "time"),
        t=alert.threshold,
        f=_plural(alert.consecutive_failures or 0, "failure"),
        d=(alert.duration_ms or 0) / 1000,
        s=alert.slower_than_seconds,
        m=alert.missed_count,
    )
    if alert.repeat:
        what += f" Still failing since the last alert at {_iso(alert.last_alert_at) or '?'}."
    lines = [
        what,
        "",
        f"Task:     {alert.task_id}",
        f"Event:    {alert.kind.value} ({alert.severity.value})",
        f"When:     {_iso(alert.occurred_at)}",
    ]
    if alert.missed_count is not None:
        lines.append(f"Slots:    {alert.first_missed_slot} .. {alert.last_missed_slot}")
    elif alert.slot:
        lines.append(f"Slot:     {alert.slot}")
    if alert.attempt is not None:
        lines.append(f"Attempt:  {alert.attempt}")
    if alert.request_id:
        lines.append(f"Request:  {alert.request_id}")
    if alert.reason:
        lines.append(f"Reason:   {alert.reason}")
    if alert.error_type or alert.error_message:
        lines += ["", "Error:", f"  {alert.error_type or 'Error'}: {alert.error_message or ''}"]
    if alert.traceback:
        lines += ["", "Traceback:", alert.traceback]
    if links:
        lines += ["", f"{heading}:"] + [f"  {name}: {url}" for name, url in links.items()]
    return "\n".join(lines) + "\n"


def render(alert: Alert, links: AlertLinks | None = None) -> dict[str, Any]:
    """The SNS Publish parameters for an alert, all but the TopicArn.

    MessageStructure=json: "email" subscribers get the plain text, every other protocol
    (SQS, Lambda, HTTPS, Chatbot) the "default" body, the alert as JSON.
    """
    urls = links.for_alert(alert) if links else {}
    message = json.dumps(
        {
            "default": json.dumps(as_json(alert, urls), ensure_ascii=False),
            "email": email_body(alert, urls, links.heading if links else ConsoleLinks.heading),
        },
        ensure_ascii=False,
    )
    if len(message.encode()) > MESSAGE_LIMIT_BYTES:  # pragma: no cover - the limits prevent it
        raise ValueError(f"alert message of {len(message.encode())} bytes is too large for SNS")
    attributes = {
        "event": {"DataType": "String", "StringValue": alert.kind.value},
        "task": {"DataType": "String", "StringValue": alert.task_id},
        "severity": {"DataType": "String", "StringValue": alert.severity.value},
    }
    if alert.tenant is not None:
        attributes["tenant"] = {"DataType": "String", "StringValue": alert.tenant}
    return {
        "Subject": subject(alert),
        "Message": message,
        "MessageStructure": "json",
        "MessageAttributes": attributes,
    }
