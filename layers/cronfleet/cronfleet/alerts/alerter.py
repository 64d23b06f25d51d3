"""Raising alerts and per-task metrics as the lifecycle records what happened.

:mod:`~cronfleet.alerts.policy` decides and :mod:`~cronfleet.alerts.render` writes; this
wires them to the engine. Every writer of the
ledger (the wrapper, the recorder, the dispatcher and its watchdog) may hold an
:class:`Alerter`. After a write, it tells the Alerter what happened; the Alerter asks
:func:`~cronfleet.alerts.policy.decide_alerts` with the task's policy and the alerts last
sent, sends each one (SNS, or one JSON log line when no topic is configured), and records
when it did on the task item. Sending is best effort: a delivery error is logged and never
undoes or breaks the recording of the run.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from cronfleet.alerts.policy import (
    DISPATCHER_ALERT_ID,
    Alert,
    AlertEvent,
    AlertKind,
    AttemptFinished,
    DispatchFailed,
    RunAbandoned,
    SlotsMissed,
    decide_alerts,
)
from cronfleet.alerts.render import AlertLinks, ConsoleLinks, LocalLinks, as_json, log_group_of
from cronfleet.alerts.sns import AlertDeliveryError, SnsNotifier
from cronfleet.clock import now as clock_now
from cronfleet.lifecycle.slots import slot_key
from cronfleet.lifecycle.states import RunStatus

if TYPE_CHECKING:
    from cronfleet.environment import CronfleetEnvironment
    from cronfleet.lifecycle.outcomes import AttemptOutcome, FinishResult
    from cronfleet.store import Store, TaskRecord

logger = logging.getLogger(__name__)

RUN_SUCCEEDED = "RunSucceeded"
RUN_FAILED = "RunFailed"
RUN_DURATION = "RunDuration"
RUN_TIMED_OUT = "RunTimedOut"
_KINDS = frozenset(kind.value for kind in AlertKind)


def links_for(environment: CronfleetEnvironment) -> AlertLinks | None:
    """Where an alert's reader goes next, from the function's environment: the local runtime's
    files and commands when it says it is the local runtime, else the AWS console."""
    if environment.local_state_dir:
        return LocalLinks(environment.local_state_dir, environment.local_cli)
    if not environment.aws_region:
        return None
    # Lambda names the function's log group in AWS_LAMBDA_LOG_GROUP_NAME. One that is not the
    # function's own (/aws/lambda/<name>, the default) is the log group the stack's functions
    # share, where the task's lines are too, whichever function raises the alert.
    group = environment.log_group_name
    shared = group if group and group != log_group_of(environment.function_name) else None
    return ConsoleLinks(
        region=environment.aws_region,
        dashboard_name=environment.dashboard_name,
        executions_table=environment.executions_table_name,
        shared_log_group=shared,
    )


class Alerter:
    """Sends the alerts a lifecycle event raises and emits the run metrics.

    ``notifier`` None: alerts are logged, one JSON line each, instead of published (local
    runs). ``metrics_namespace`` None: no metrics are emitted. Each run's metrics are the
    service's (no task dimension: four metrics for the whole fleet); ``per_task_metrics`` adds
    the same again with a ``task`` dimension, at CloudWatch's price per metric for every task.
    """

    def __init__(
        self,
        store: Store,
        notifier: SnsNotifier | None = None,
        links: AlertLinks | None = None,
        *,
        metrics_namespace: str | None = None,
        per_task_metrics: bool = False,
        clock: Callable[[], datetime] = clock_now,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.links = links
        self.metrics_namespace = metrics_namespace
        self.per_task_metrics = per_task_metrics
        self.clock = clock
        # The dispatcher raises alerts from its invoke threads; one publish at a time also
        # keeps the notifier's lazily created client from being built twice.
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, store: Store, environment: CronfleetEnvironment) -> Alerter:
        notifier = (
            SnsNotifier(topic_arn=environment.alert_topic_arn)
            if environment.alert_topic_arn
            else None
        )
        return cls(
            store,
            notifier,
            links_for(environment),
            metrics_namespace=environment.metrics_namespace,
            per_task_metrics=environment.per_task_metrics,
        )

    # --- what the lifecycle reports ----------------------------------------------------------

    def attempt_finished(
        self,
        task: TaskRecord,
        slot: str,
        attempt: int,
        outcome: AttemptOutcome,
        result: FinishResult,
        *,
        request_id: str | None = None,
    ) -> None:
        """An attempt was concluded (conclude_attempt's result); never raises."""
        if not result.recorded:
            return  # whoever recorded it first reported it
        self._emit_metrics(task.task_id, outcome, result)
        self._raise(task, AttemptFinished(task.task_id, slot, attempt, outcome, result, request_id))

    def slots_missed(
        self, task: TaskRecord, first_slot: str, last_slot: str, count: int, at: datetime
    ) -> None:
        self._raise(task, SlotsMissed(task.task_id, first_slot, last_slot, count, at))

    def dispatch_failed(
        self,
        task: TaskRecord,
        slot: str,
        attempt: int,
        error_type: str,
        error_message: str,
        at: datetime,
    ) -> None:
        self._raise(
            task, DispatchFailed(task.task_id, slot, attempt, error_type, error_message, at)
        )

    def run_abandoned(
        self,
        task: TaskRecord,
        slot: str,
        attempt: int,
        outcome: AttemptOutcome,
        result: FinishResult,
        *,
        never_started: bool,
        reason: str = "",
    ) -> None:
        """The watchdog concluded an attempt it gave up on: LOST or STUCK, plus what the
        failure means for the task's streak (FAILING, RECOVERED never). STUCK speaks for the
        timeout, so no separate TIMED_OUT is sent."""
        if not result.recorded:
            return
        self._emit_metrics(task.task_id, outcome, result)
        finished = AttemptFinished(task.task_id, slot, attempt, outcome, result)
        abandoned = RunAbandoned(
            task.task_id, slot, attempt, never_started, outcome.ended_at, reason
        )
        self._raise(task, finished, abandoned, drop=(AlertKind.TIMED_OUT,))

    def tick_clamped(self, sent: datetime, used: datetime, reason: str, at: datetime) -> None:
        """The dispatcher used its clock's minute for a tick too far from it; never raises."""
        alert = Alert(
            AlertKind.TICK_CLAMPED,
            DISPATCHER_ALERT_ID,
            at,
            slot=slot_key(sent),
            reason=f"{reason}; the tick of {slot_key(used)} was dispatched instead",
        )
        try:
            self._publish(alert, self.links)
        except Exception:  # alerts are best effort
            logger.exception("Could not raise the TICK_CLAMPED alert")

    # --- sending -------------------------------------------------------------------------------

    def _raise(
        self, task: TaskRecord, *events: AlertEvent, drop: tuple[AlertKind, ...] = ()
    ) -> None:
        try:
            policy = task.definition.alerts
            last = {AlertKind(kind): at for kind, at in task.last_alerts.items() if kind in _KINDS}
            alerts = [
                alert
                for event in events
                for alert in decide_alerts(policy, event, last_alerts=last)
                if alert.kind not in drop
            ]
            for alert in alerts:
                self._send(task, alert)
        except Exception:  # alerts are best effort: the run is recorded whatever happens here
            logger.exception("Could not raise alerts", extra={"task_id": task.task_id})

    def _links_for(self, task: TaskRecord) -> AlertLinks | None:
        return self.links.for_function(task.definition.function) if self.links else None

    def _publish(self, alert: Alert, links: AlertLinks | None) -> bool:
        """Publish (or, with no topic, log) one alert; False when SNS would not take it."""
        ids = {"task_id": alert.task_id, "alert": alert.kind.value, "slot": alert.slot}
        if self.notifier is None:
            urls = links.for_alert(alert) if links else {}
            logger.warning(
                "Alert (no topic configured, not published)",
                extra={"alert": as_json(alert, urls)},
            )
            return True
        try:
            with self._lock:
                message_id = self.notifier.publish(alert, links)
        except AlertDeliveryError as exc:
            logger.error(
                "Alert could not be delivered",
                extra={**ids, "error_code": exc.code, "error": exc.message},
            )
            return False
        logger.info("Alert published", extra={**ids, "message_id": message_id})
        return True

    def _send(self, task: TaskRecord, alert: Alert) -> None:
        if task.tenant is not None:
            alert = dataclasses.replace(alert, tenant=task.tenant)
        ids = {"task_id": alert.task_id, "alert": alert.kind.value, "slot": alert.slot}
        if not self._publish(alert, self._links_for(task)):
            return
        try:
            self.store.record_alert_sent(alert.task_id, alert.kind.value, self.clock())
        except Exception:
            logger.exception("Could not record when an alert was sent", extra=ids)

    # --- metrics ---------------------------------------------------------------------------------

    def _emit_metrics(self, task_id: str, outcome: AttemptOutcome, result: FinishResult) -> None:
        """RunSucceeded or RunFailed (and RunTimedOut), and RunDuration, as a run ends: for the
        service, and with a task dimension when per-task metrics are on."""
        if self.metrics_namespace is None or result.final_status is None:
            return
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        succeeded = result.final_status is RunStatus.SUCCEEDED
        emitted: list[tuple[str, MetricUnit, float]] = [
            (RUN_SUCCEEDED if succeeded else RUN_FAILED, MetricUnit.Count, 1)
        ]
        if result.final_status is RunStatus.TIMED_OUT:
            emitted.append((RUN_TIMED_OUT, MetricUnit.Count, 1))
        if outcome.duration_ms is not None:
            emitted.append((RUN_DURATION, MetricUnit.Milliseconds, outcome.duration_ms))
        dimensions: list[dict[str, str]] = [{}]
        if self.per_task_metrics:
            dimensions.append({"task": task_id})
        try:
            for extra in dimensions:
                for name, unit, value in emitted:
                    # One metric per context: the task dimension must not leak onto the
                    # service's metrics, which Powertools dimensions by service alone.
                    with single_metric(
                        name=name, unit=unit, value=value, namespace=self.metrics_namespace
                    ) as metric:
                        for key, dimension in extra.items():
                            metric.add_dimension(name=key, value=dimension)
        except Exception:
            logger.exception("Could not emit run metrics", extra={"task_id": task_id})
