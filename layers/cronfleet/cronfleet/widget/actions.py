"""The widget's buttons: a manual run, a pause and a resume of one task.

Each does what the CLI's command of the same name does, through the same library calls, so it is
recorded the same way: ``trigger`` puts the run's PENDING entry in the ledger under its own
manual slot (Attempts.start_manual_run), ``pause`` sets ``paused``/``paused_at`` on the task,
``resume`` sets ``updated_at`` and puts the SKIPPED entry for the slots that fell while paused.
A dashboard's call carries no caller identity, so each action is also logged with the widget
invocation's request id and the dashboard and widget it came from: the request id finds the
CloudTrail record of the viewer's Invoke.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cronfleet.lifecycle.attempts import Attempts
from cronfleet.store import Store, TaskNotFound, TaskStateError
from cronfleet.store.records import TaskRecord
from cronfleet.widget.request import WidgetRefusal, WidgetRequest


@dataclass(frozen=True)
class ActionDone:
    action: str
    task_id: str
    notice: str  # what the widget says it did
    slot: str | None = None


class FleetActions:
    def __init__(self, store: Store, attempts: Callable[[], Attempts]) -> None:
        self.store = store
        # Built on the first trigger: a plain view needs no Lambda client.
        self.attempts = attempts

    def perform(self, request: WidgetRequest, now: datetime, *, request_id: str) -> ActionDone:
        from cronfleet.observability import logger

        assert request.task is not None, "the request model requires a task for an action"
        task = self._task(request.task)
        if request.action == "trigger":
            done = self._trigger(task, now)
        elif request.action == "pause":
            done = self._pause(task, now)
        else:
            done = self._resume(task, now)
        context = request.widget_context
        logger.info(
            "Fleet widget action",
            extra={
                "action": done.action,
                "task_id": done.task_id,
                "slot": done.slot,
                "request_id": request_id,
                "dashboard": context.dashboard_name,
                "widget_id": context.widget_id,
            },
        )
        return done

    def _task(self, task_id: str) -> TaskRecord:
        task = self.store.get_task(task_id)
        if task is None:
            raise WidgetRefusal("task", f"no task {task_id!r} is registered in this stack")
        return task

    def _trigger(self, task: TaskRecord, now: datetime) -> ActionDone:
        if task.deleted:
            raise WidgetRefusal(
                "task", f"task {task.task_id!r} was removed from the template; it cannot run"
            )
        slot, invoked = self.attempts().start_manual_run(task, now)
        notice = (
            f"Started a manual run of {task.task_id} (slot {slot})."
            if invoked
            else f"The manual run of {task.task_id} (slot {slot}) could not be invoked; "
            "the ledger records it as lost."
        )
        return ActionDone("trigger", task.task_id, notice, slot)

    def _pause(self, task: TaskRecord, now: datetime) -> ActionDone:
        try:
            self.store.pause(task.task_id, now)
        except TaskStateError as exc:
            raise WidgetRefusal("action", str(exc)) from exc
        except TaskNotFound as exc:
            raise WidgetRefusal("task", f"no task {task.task_id!r} is registered") from exc
        notice = f"Paused {task.task_id}: its slots are recorded as skipped until it is resumed."
        return ActionDone("pause", task.task_id, notice)

    def _resume(self, task: TaskRecord, now: datetime) -> ActionDone:
        try:
            self.store.resume(task.task_id, task.definition.compiled_schedule().next_run, now)
        except TaskStateError as exc:
            raise WidgetRefusal("action", str(exc)) from exc
        except TaskNotFound as exc:
            raise WidgetRefusal("task", f"no task {task.task_id!r} is registered") from exc
        return ActionDone("resume", task.task_id, f"Resumed {task.task_id}.")
