"""Alerts: which health transitions a task's owner hears about, and how they read.

Alerts follow transitions, not every failure. A task that fails every five minutes raises one
FAILING alert when its consecutive failures reach the threshold, then stays quiet until it
recovers (or, if RealertAfterSeconds is set, until that long has passed since the last one).

:func:`decide_alerts` is pure: the caller gives it the task's policy, the event (with the state
before and after it, as :class:`~cronfleet.store.FinishResult` reports) and when each kind of
alert was last sent; it returns the alerts to send. :func:`render` turns one alert into an SNS
request, and :class:`SnsNotifier` is the only code here that touches boto3.

===============  ========  ======================================================
kind             severity  raised when
===============  ========  ======================================================
FAILING          critical  consecutive failures cross the threshold (or re-alert)
RECOVERED        info      the first success after the task was failing
TIMED_OUT        warning   an attempt timed out while the task was not yet failing
SLOW             warning   a successful run took longer than SlowerThanSeconds
MISSED           warning   slots were missed
DISPATCH_FAILED  critical  an invoke was refused (throttled, no function, no access)
STUCK            critical  the watchdog gave up on a run that would not finish
LOST             warning   a run's code never started, even after a second invoke
TICK_CLAMPED     critical  the dispatcher was sent a tick dated far from its clock
===============  ========  ======================================================

TICK_CLAMPED is about the dispatcher, not a task: its task id is ``#dispatcher``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cronfleet.lifecycle import RunStatus

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

    from cronfleet.registry import AlertPolicy
    from cronfleet.store import AttemptOutcome, FinishResult

# SNS says a Subject must be fewer than 100 characters, printable ASCII, without line breaks.
SUBJECT_LIMIT = 99
SUBJECT_PREFIX = "[cronfleet] "
# Each error field is copied into both protocol bodies, the JSON one escaped twice (JSON text
# inside the JSON message), where a control character can take 7 bytes. These limits keep the
# worst case near 100 KB, well under SNS's 256 KB message limit.
ERROR_TYPE_LIMIT = 256
ERROR_MESSAGE_LIMIT = 2048
TRACEBACK_LIMIT = 4096
REASON_LIMIT = 512
MESSAGE_LIMIT_BYTES = 256 * 1024

# One quick retry for a throttled or flaky Publish: an alert that still fails is the caller's
# to log, and must not hold up the dispatcher's tick.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=3,
    read_timeout=5,
)


class AlertKind(StrEnum):
    FAILING = "FAILING"
    RECOVERED = "RECOVERED"
    TIMED_OUT = "TIMED_OUT"
    SLOW = "SLOW"
    MISSED = "MISSED"
    DISPATCH_FAILED = "DISPATCH_FAILED"
    STUCK = "STUCK"
    LOST = "LOST"
    TICK_CLAMPED = "TICK_CLAMPED"


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


SEVERITY = {
    AlertKind.FAILING: Severity.CRITICAL,
    AlertKind.RECOVERED: Severity.INFO,
    AlertKind.TIMED_OUT: Severity.WARNING,
    AlertKind.SLOW: Severity.WARNING,
    AlertKind.MISSED: Severity.WARNING,
    AlertKind.DISPATCH_FAILED: Severity.CRITICAL,
    AlertKind.STUCK: Severity.CRITICAL,
    AlertKind.LOST: Severity.WARNING,
    AlertKind.TICK_CLAMPED: Severity.CRITICAL,
}

# The task id of alerts about the dispatcher itself: no task can take it (ids start with a
# letter or digit), and it is the dispatcher's own item in the tasks table.
DISPATCHER_ALERT_ID = "#dispatcher"


class AlertDeliveryError(RuntimeError):
    """SNS refused or could not take the alert (no topic, no permission, KMS, throttling)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _clip(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    marker = "... [truncated]"
    return text[: limit - len(marker)] + marker


@dataclass(frozen=True)
class Alert:
    """One alert, with everything a reader needs to act on it. Error text is truncated here."""

    kind: AlertKind
    task_id: str
    occurred_at: datetime
    slot: str | None = None
    attempt: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    consecutive_failures: int | None = None
    threshold: int | None = None
    duration_ms: int | None = None
    slower_than_seconds: int | None = None
    missed_count: int | None = None
    first_missed_slot: str | None = None
    last_missed_slot: str | None = None
    request_id: str | None = None
    repeat: bool = False  # a re-alert of a task still failing
    last_alert_at: datetime | None = None  # the alert this one repeats
    reason: str | None = None  # the watchdog's words for STUCK and LOST
    topic_arn: str | None = None  # the task's own topic (AlertPolicy.TopicArn), if any
    severity: Severity = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", SEVERITY[self.kind])
        for name, limit in (
            ("error_type", ERROR_TYPE_LIMIT),
            ("error_message", ERROR_MESSAGE_LIMIT),
            ("traceback", TRACEBACK_LIMIT),
            ("reason", REASON_LIMIT),
        ):
            object.__setattr__(self, name, _clip(getattr(self, name), limit))


# --- events: what happened, with the state before and after ------------------------------------


@dataclass(frozen=True)
class AttemptFinished:
    """An attempt ended and was recorded (FinishResult holds the failures before and after)."""

    task_id: str
    slot: str
    attempt: int
    outcome: AttemptOutcome
    result: FinishResult
    request_id: str | None = None


@dataclass(frozen=True)
class SlotsMissed:
    task_id: str
    first_slot: str
    last_slot: str
    count: int
    at: datetime


@dataclass(frozen=True)
class DispatchFailed:
    task_id: str
    slot: str
    attempt: int
    error_type: str  # the Lambda error code: TooManyRequestsException, AccessDeniedException...
    error_message: str
    at: datetime


@dataclass(frozen=True)
class RunAbandoned:
    """The watchdog gave up on a run: LOST if it never started, STUCK if it never finished."""

    task_id: str
    slot: str
    attempt: int
    never_started: bool
    at: datetime
    reason: str = ""


AlertEvent = AttemptFinished | SlotsMissed | DispatchFailed | RunAbandoned


# --- the rules --------------------------------------------------------------------------------


def is_failing(policy: AlertPolicy, consecutive_failures: int) -> bool:
    return consecutive_failures >= policy.after_consecutive_failures


def realert_due(policy: AlertPolicy, last_alert_at: datetime | None, now: datetime) -> bool:
    """Whether a task that is still failing is due another FAILING alert.

    Never without RealertAfterSeconds. With it, the interval is counted from the last FAILING
    alert; if none is known (the threshold was lowered below the current streak, say), the task
    is due one now, and the caller records when it sent it.
    """
    if policy.realert_after_seconds is None:
        return False
    if last_alert_at is None:
        return True
    return now - last_alert_at >= timedelta(seconds=policy.realert_after_seconds)


def decide_alerts(
    policy: AlertPolicy,
    event: AlertEvent,
    *,
    last_alerts: Mapping[AlertKind, datetime] | None = None,
) -> list[Alert]:
    """The alerts an event raises under the task's policy: pure, no I/O.

    ``last_alerts`` holds when each kind of alert was last sent for this task; only FAILING
    re-alerts read it.
    """
    last = last_alerts or {}
    topic = policy.topic_arn
    if isinstance(event, SlotsMissed):
        return [
            Alert(
                AlertKind.MISSED,
                event.task_id,
                event.at,
                slot=event.first_slot,
                missed_count=event.count,
                first_missed_slot=event.first_slot,
                last_missed_slot=event.last_slot,
                topic_arn=topic,
            )
        ]
    if isinstance(event, DispatchFailed):
        return [
            Alert(
                AlertKind.DISPATCH_FAILED,
                event.task_id,
                event.at,
                slot=event.slot,
                attempt=event.attempt,
                error_type=event.error_type,
                error_message=event.error_message,
                topic_arn=topic,
            )
        ]
    if isinstance(event, RunAbandoned):
        kind = AlertKind.LOST if event.never_started else AlertKind.STUCK
        return [
            Alert(
                kind,
                event.task_id,
                event.at,
                slot=event.slot,
                attempt=event.attempt,
                reason=event.reason or None,
                topic_arn=topic,
            )
        ]
    return _decide_attempt(policy, event, last.get(AlertKind.FAILING))


def _decide_attempt(
    policy: AlertPolicy, event: AttemptFinished, last_failing_alert: datetime | None
) -> list[Alert]:
    result, outcome = event.result, event.outcome
    if not result.recorded:
        return []  # a duplicate: whoever recorded the attempt first decided its alerts
    now = outcome.ended_at

    def alert(kind: AlertKind, **extra: Any) -> Alert:
        return Alert(
            kind,
            event.task_id,
            now,
            slot=event.slot,
            attempt=event.attempt,
            request_id=event.request_id,
            topic_arn=policy.topic_arn,
            **extra,
        )

    error = {
        "error_type": outcome.error_type,
        "error_message": outcome.error_message,
        "traceback": outcome.traceback,
    }
    before, after = result.previous_consecutive_failures, result.consecutive_failures
    threshold = policy.after_consecutive_failures
    final = result.final_status

    if final is RunStatus.SUCCEEDED:
        alerts = []
        if policy.on_recovery and is_failing(policy, before):
            alerts.append(
                alert(AlertKind.RECOVERED, consecutive_failures=before, threshold=threshold)
            )
        limit = policy.slower_than_seconds
        duration = outcome.duration_ms
        if limit is not None and duration is not None and duration > limit * 1000:
            alerts.append(alert(AlertKind.SLOW, duration_ms=duration, slower_than_seconds=limit))
        return alerts

    # One failure raises at most one alert: FAILING speaks for the timeout that tipped it.
    if final is not None and after > before and is_failing(policy, after):
        crossed = not is_failing(policy, before)
        if not crossed and not realert_due(policy, last_failing_alert, now):
            return []  # still failing, already said so
        return [
            alert(
                AlertKind.FAILING,
                consecutive_failures=after,
                threshold=threshold,
                repeat=not crossed,
                last_alert_at=None if crossed else last_failing_alert,
                **error,
            )
        ]
    # A timeout is news until the task is known to be failing; from then on FAILING covers it.
    if outcome.status is RunStatus.TIMED_OUT and not is_failing(policy, before):
        return [alert(AlertKind.TIMED_OUT, consecutive_failures=after, **error)]
    return []


# --- console links ------------------------------------------------------------------------------


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


def email_body(alert: Alert, links: Mapping[str, str]) -> str:
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
        lines += ["", "Console:"] + [f"  {name}: {url}" for name, url in links.items()]
    return "\n".join(lines) + "\n"


def render(alert: Alert, links: ConsoleLinks | None = None) -> dict[str, Any]:
    """The SNS Publish parameters for an alert, all but the TopicArn.

    MessageStructure=json: "email" subscribers get the plain text, every other protocol
    (SQS, Lambda, HTTPS, Chatbot) the "default" body, the alert as JSON.
    """
    urls = links.for_alert(alert) if links else {}
    message = json.dumps(
        {
            "default": json.dumps(as_json(alert, urls), ensure_ascii=False),
            "email": email_body(alert, urls),
        },
        ensure_ascii=False,
    )
    if len(message.encode()) > MESSAGE_LIMIT_BYTES:  # pragma: no cover - the limits prevent it
        raise ValueError(f"alert message of {len(message.encode())} bytes is too large for SNS")
    return {
        "Subject": subject(alert),
        "Message": message,
        "MessageStructure": "json",
        "MessageAttributes": {
            "event": {"DataType": "String", "StringValue": alert.kind.value},
            "task": {"DataType": "String", "StringValue": alert.task_id},
            "severity": {"DataType": "String", "StringValue": alert.severity.value},
        },
    }


# --- the SNS adapter --------------------------------------------------------------------------


class SnsNotifier:
    """Publishes alerts to the stack's topic, or to the task's own (AlertPolicy.TopicArn)."""

    def __init__(self, client: SNSClient | None = None, *, topic_arn: str) -> None:
        self._client = client
        self.topic_arn = topic_arn

    @property
    def client(self) -> SNSClient:
        # Created on the first alert: most invocations never send one, so they skip the cost.
        if self._client is None:
            import boto3

            self._client = boto3.client("sns", config=CLIENT_CONFIG)
        return self._client

    def publish(self, alert: Alert, links: ConsoleLinks | None = None) -> str:
        """Send the alert; returns SNS's MessageId."""
        return self.send(render(alert, links), topic_arn=alert.topic_arn)

    def send(self, request: Mapping[str, Any], *, topic_arn: str | None = None) -> str:
        """Publish an already rendered message (Subject, Message, MessageStructure, ...)."""
        try:
            response = self.client.publish(TopicArn=topic_arn or self.topic_arn, **request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise AlertDeliveryError(
                error.get("Code", "ClientError"), error.get("Message", "")
            ) from exc
        except BotoCoreError as exc:
            raise AlertDeliveryError(type(exc).__name__, str(exc)) from exc
        return response["MessageId"]
