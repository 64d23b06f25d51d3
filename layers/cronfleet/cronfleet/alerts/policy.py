"""Which health transitions raise which alerts: pure rules, no I/O (see the package's table).

:func:`decide_alerts` is given the task's policy, the event (with the state before and after
it, as :class:`~cronfleet.lifecycle.outcomes.FinishResult` reports) and when each kind of alert
was last sent; it returns the alerts to send.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from cronfleet.lifecycle.states import RunStatus

if TYPE_CHECKING:
    from cronfleet.lifecycle.outcomes import AttemptOutcome, FinishResult
    from cronfleet.registry.definition import AlertPolicy

# Each error field is copied into both protocol bodies, the JSON one escaped twice (JSON text
# inside the JSON message), where a control character can take 7 bytes. These limits keep the
# worst case near 100 KB, well under SNS's 256 KB message limit.
ERROR_TYPE_LIMIT = 256
ERROR_MESSAGE_LIMIT = 2048
TRACEBACK_LIMIT = 4096
REASON_LIMIT = 512


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
    # The tenant of a schedule made through the API: a message attribute, so a subscription's
    # filter policy can route one tenant's alerts to that tenant.
    tenant: str | None = None
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
