"""Which worker reads which partitions of the due index, and how a shard is handed to one.

The due index is written in ``DispatchShards`` partitions (``shard_of(task_id, shards)``). A
tick gives shard ``s`` every partition ``p`` with ``p % shards == s``, up to the number of
partitions ever written (:class:`~cronfleet.store.ticks.OpenedTick`). So the shards partition
the index: each partition has exactly one reader, whatever the shard count was when a task was
written, and a task claimed by one worker is never in another worker's partitions.

Claims still decide every race on their own (a conditional write per slot), so a shard read by
two invocations at once (a retried event, a continuation overlapping the next tick's worker)
loses nothing and runs nothing twice: the second one finds the slots taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cronfleet.dispatch.events import ShardEvent
    from cronfleet.invoker import Invoker


def shard_partitions(shards: int, due_partitions: int) -> list[tuple[int, ...]]:
    """For each shard, the due-index partitions it reads."""
    readable = max(shards, due_partitions)
    return [tuple(range(shard, readable, shards)) for shard in range(shards)]


@dataclass(frozen=True)
class ShardHandOff:
    """Gives a shard's work to a worker invocation: an asynchronous invoke of the worker."""

    invoker: Invoker
    worker_function: str  # the dispatch worker's name or ARN

    def send(self, event: ShardEvent) -> None:
        """Invoke the worker with the shard's event; raises InvokeError when Lambda refuses."""
        self.invoker.invoke(self.worker_function, event.model_dump(mode="json"))
