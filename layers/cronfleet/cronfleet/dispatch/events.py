"""The events the dispatcher's functions receive: the scheduler's tick, and a shard's work."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from cronfleet.store.tables import MAX_DUE_SHARDS

# How many times a worker may hand the rest of its shard on before the next tick takes over:
# each continuation has a worker's full time, so five carry a shard through about five minutes
# of claims, and a task that keeps failing cannot bounce from invocation to invocation.
MAX_CONTINUATIONS = 5


class TickEvent(BaseModel):
    """The schedule's Input in template.yaml.

    ``{"scheduled_time": "<aws.scheduler.scheduled-time>"}``: EventBridge Scheduler fills in
    the context attribute with the tick's scheduled time.

    The tick is the time the schedule was *due*, not the time the dispatcher happens to run, so
    a late or retried invocation still dispatches the right slots.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    scheduled_time: AwareDatetime


Partition = Annotated[int, Field(ge=0, lt=MAX_DUE_SHARDS)]


class ShardEvent(BaseModel):
    """What the dispatcher sends a dispatch worker: one shard of one tick's due tasks.

    The tick is the one the dispatcher opened (already checked against its clock). A
    continuation is the same event with ``continuation`` counted up: it reads its partitions
    again, and what the worker before it claimed is no longer due.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tick: AwareDatetime
    shard: int = Field(ge=0, lt=MAX_DUE_SHARDS)
    shards: int = Field(ge=1, le=MAX_DUE_SHARDS)
    partitions: tuple[Partition, ...] = Field(min_length=1, max_length=MAX_DUE_SHARDS)
    continuation: int = Field(0, ge=0, le=MAX_CONTINUATIONS)

    @model_validator(mode="after")
    def _partitions_are_the_shards(self) -> Self:
        # Another shard's partition would have two readers; the claims would still decide, but
        # the event is not one the dispatcher sends.
        if self.shard >= self.shards:
            raise ValueError(f"shard {self.shard} does not exist among {self.shards} shards")
        strays = [p for p in self.partitions if p % self.shards != self.shard]
        if strays:
            raise ValueError(
                f"partitions {strays} belong to other shards (a partition p is shard "
                f"p % {self.shards})"
            )
        if len(set(self.partitions)) != len(self.partitions):
            raise ValueError("partitions are listed more than once")
        return self

    def continued(self) -> ShardEvent | None:
        """The event of the next continuation; None when this one was the last allowed."""
        if self.continuation >= MAX_CONTINUATIONS:
            return None
        return self.model_copy(update={"continuation": self.continuation + 1})
