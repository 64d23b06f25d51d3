"""The watchdog pass, run with every tick: nothing in flight is left to hang.

It looks only at executions whose "look again" time has passed, found through the sparse
in-flight index, never by scanning history:

- PENDING past the start grace: the function never started. Invoke it once more; if it still
  has not started, the attempt is LOST (its code provably never ran), a failure that follows
  the retry policy.
- RUNNING past its deadline plus a grace period: TIMED_OUT (the recorder usually got there
  first, with Lambda's own error). RUNNING with a crash Lambda reported shortly after the
  start, which the recorder held rather than trust at once: concluded with that crash now.
- RETRY_WAIT whose backoff has elapsed: dispatch the next attempt.
- QUEUED (overlap ``queue_one``): dispatch once the previous run has finished.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cronfleet.lifecycle.attempts import START_GRACE, Attempts
from cronfleet.lifecycle.outcomes import AttemptOutcome, FinishResult
from cronfleet.lifecycle.states import RunStatus
from cronfleet.store import ExecutionRecord, TaskRecord

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

QUEUE_RECHECK = timedelta(minutes=1)


@dataclass
class WatchdogReport:
    redispatched: int = 0
    lost: int = 0
    timed_out: int = 0
    crashed: int = 0  # crashes Lambda reported, confirmed (see cronfleet.lifecycle.recorder)
    retried: int = 0
    released: int = 0  # queued slots dispatched


class Watchdog:
    def __init__(self, attempts: Attempts) -> None:
        self.attempts = attempts
        self.store = attempts.store
        self.alerter = attempts.alerter

    def sweep(self, now: datetime) -> WatchdogReport:
        report = WatchdogReport()
        for execution in self.store.overdue_executions(now):
            try:
                self._look_at(execution, now, report)
            except Exception:  # one bad record must not stop the sweep
                logger.exception(
                    "Watchdog could not handle an execution",
                    extra={"task_id": execution.task_id, "slot": execution.slot},
                )
        return report

    def _look_at(self, execution: ExecutionRecord, now: datetime, report: WatchdogReport) -> None:
        task = self.store.get_task(execution.task_id)
        if task is None:
            logger.warning(
                "In-flight execution of an unknown task", extra={"task_id": execution.task_id}
            )
            return
        if execution.status is RunStatus.PENDING:
            if not execution.redispatched:
                if self.store.mark_redispatched(execution, now=now, start_grace=START_GRACE):
                    report.redispatched += 1
                    self._invoke(task, execution, execution.attempt, now)
                return
            lost = AttemptOutcome(
                status=RunStatus.LOST,
                ended_at=now,
                error_type="Lost",
                error_message="the function never started, even after a second invoke",
                ran_code=False,
            )
            if self._give_up(task, execution, lost, RunStatus.PENDING):
                report.lost += 1
        elif execution.status is RunStatus.RUNNING and execution.crash_report is not None:
            # Lambda reported a crash and the run has not ended since: it was that run's.
            status, error_type, message = execution.crash_report
            crashed = AttemptOutcome(
                status=RunStatus(status),
                ended_at=now,
                error_type=error_type,
                error_message=message,
                ran_code=False,
            )
            result = self.attempts.conclude(
                task,
                execution.slot,
                execution.attempt,
                crashed,
                from_statuses=(RunStatus.RUNNING,),
            )
            if result.recorded:
                report.crashed += 1
        elif execution.status is RunStatus.RUNNING and _before_its_own_deadline(execution, now):
            # Looked at by the claim's start deadline, and still within its function's timeout:
            # the attempt's start left the index key alone, to save a rewrite of the entry.
            assert execution.running_deadline_at is not None
            self.store.postpone(execution, execution.running_deadline_at)
        elif execution.status is RunStatus.RUNNING:
            overran = AttemptOutcome(
                status=RunStatus.TIMED_OUT,
                ended_at=now,
                error_type="TimedOut",
                error_message="no result by the attempt's deadline",
                ran_code=False,
            )
            if self._give_up(task, execution, overran, RunStatus.RUNNING):
                report.timed_out += 1
        elif execution.status is RunStatus.RETRY_WAIT:
            if self.store.begin_next_attempt(execution, now=now, start_grace=START_GRACE):
                report.retried += 1
                self._invoke(task, execution, execution.attempt + 1, now)
        elif execution.status is RunStatus.QUEUED:
            if task.is_busy:
                self.store.postpone(execution, now + QUEUE_RECHECK)
            elif self.store.begin_next_attempt(execution, now=now, start_grace=START_GRACE):
                report.released += 1
                self._invoke(task, execution, 1, now)

    def _abandoned(
        self,
        task: TaskRecord,
        execution: ExecutionRecord,
        outcome: AttemptOutcome,
        result: FinishResult,
        *,
        never_started: bool,
    ) -> None:
        if self.alerter is not None:
            self.alerter.run_abandoned(
                task,
                execution.slot,
                execution.attempt,
                outcome,
                result,
                never_started=never_started,
                reason=outcome.error_message or "",
            )

    def _give_up(
        self,
        task: TaskRecord,
        execution: ExecutionRecord,
        outcome: AttemptOutcome,
        expected: RunStatus,
    ) -> bool:
        """Conclude an attempt the watchdog stopped waiting for; False if someone else did."""
        # Its own alerts (LOST or STUCK, with what it means for the task) follow, not the
        # plain ones of a finished attempt.
        result = self.attempts.conclude(
            task,
            execution.slot,
            execution.attempt,
            outcome,
            from_statuses=(expected,),
            alert=False,
        )
        if result.recorded:
            never_started = expected is RunStatus.PENDING
            self._abandoned(task, execution, outcome, result, never_started=never_started)
        return result.recorded

    def _invoke(
        self, task: TaskRecord, execution: ExecutionRecord, attempt: int, now: datetime
    ) -> None:
        self.attempts.invoke(
            task, execution.slot, attempt, execution.trigger, now, payload=execution.payload
        )


def _before_its_own_deadline(execution: ExecutionRecord, now: datetime) -> bool:
    deadline = execution.running_deadline_at
    return deadline is not None and deadline > now
