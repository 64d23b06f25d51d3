"""The event EventBridge Scheduler sends the dispatcher each minute."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict


class TickEvent(BaseModel):
    """The schedule's Input in template.yaml.

    ``{"scheduled_time": "<aws.scheduler.scheduled-time>"}``: EventBridge Scheduler fills in
    the context attribute with the tick's scheduled time.

    The tick is the time the schedule was *due*, not the time the dispatcher happens to run, so
    a late or retried invocation still dispatches the right slots.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    scheduled_time: AwareDatetime
