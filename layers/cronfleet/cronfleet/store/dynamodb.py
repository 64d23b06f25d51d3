"""The DynamoDB adapter, ``Store``: the only code in cronfleet that talks to DynamoDB.

It is one object made of six repositories over the same two tables (:mod:`.tables`):

========================  ======================================================  ===========
repository                what it writes and reads                                 its callers
========================  ======================================================  ===========
:mod:`.tasks`             register, deregister, pause, resume, read tasks         registry, CLI
:mod:`.claims`            due tasks, the claim of their slots, manual runs         dispatcher
:mod:`.attempts`          an attempt from PENDING to final, the in-flight index   lifecycle
:mod:`.ticks`             the dispatcher's heartbeat, the next time with work      dispatcher
:mod:`.history`           a task's ledger, read back                               CLI, audit
:mod:`.schedules`         a tenant's API schedules: index pages, quota counter     API
========================  ======================================================  ===========

Three rules make every writer safe against every other, whatever the interleaving:

- **Conditional writes decide races.** Two dispatchers claiming one slot, a tick delivered
  twice, the same async event run twice: the condition picks the single winner, and the loser
  learns it from a ConditionalCheckFailed, never from a read-then-write race.
- **The task item has one version.** Every write to a task item bumps ``version``; a writer
  that decides what to write from what it read (a claim, a deploy, a resume) makes its write
  conditional on the version it read, and on a conflict reads again and decides again. So a
  deploy can never put back a slot a claim just took, and a pause can never be undone by a
  deploy that read the task before it.
- **A write recognises its own earlier commit.** A response can be lost after the write
  committed (a timeout, a dropped connection, a stalled engine), and botocore then sends the
  same request again. Transactions carry a ClientRequestToken, which DynamoDB uses to answer a
  repeat with the first result. A single-item write stores a token of its own on the item and
  asks for the item back when its condition fails: if the token is its own, the write had
  already happened and counts as done.

Changes that touch a task and its ledger together go through one transaction, so the ledger
and the task's counters cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cronfleet.store.attempts import AttemptRepository
from cronfleet.store.claims import ClaimRepository
from cronfleet.store.history import HistoryRepository
from cronfleet.store.schedules import ScheduleRepository
from cronfleet.store.tables import CLIENT_CONFIG, DUE_SHARDS, INTERACTIVE_CONFIG
from cronfleet.store.tasks import TaskRepository
from cronfleet.store.ticks import TickRepository

if TYPE_CHECKING:
    from cronfleet.environment import CronfleetEnvironment


class Store(
    TaskRepository,
    ClaimRepository,
    AttemptRepository,
    TickRepository,
    HistoryRepository,
    ScheduleRepository,
):
    """Tasks and executions in the two tables of template.yaml."""

    @classmethod
    def from_environment(cls, environment: CronfleetEnvironment) -> Store:
        """The store of a function, on the tables its environment names."""
        return cls(
            environment.tasks_table_name,
            environment.executions_table_name,
            history_retention_days=environment.history_retention_days,
            due_shards=environment.dispatch_shards,
        )

    @classmethod
    def connect(
        cls,
        tasks_table: str,
        executions_table: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        interactive: bool = False,
        due_shards: int = DUE_SHARDS,
    ) -> Store:
        """A store on an explicit endpoint and region (DynamoDB Local, another region).

        ``interactive`` fails fast on a wrong endpoint: a person is waiting at the terminal.
        """
        import boto3

        client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint_url,
            region_name=region,
            config=INTERACTIVE_CONFIG if interactive else CLIENT_CONFIG,
        )
        return cls(tasks_table, executions_table, client=client, due_shards=due_shards)
