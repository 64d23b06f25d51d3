"""Auditing the ledger: every expected slot ends in exactly one final state, or is in flight.

This checks the ledger's invariant ("a ledger entry for every slot", docs/semantics.md) for a
window ``(start, end]``. The schedule and the ledger are both sorted by slot, so they are
compared in one merge-walk of two streams (:func:`reconcile`): memory stays bounded by one chunk
of the ledger, however long the window, and no set of slots is ever built.

Which slots are expected, for one task:

- the runs of its *current* schedule in ``(start, end]``;
- only after it was registered (``created_at``), and only before it was deleted (a deleted task's
  ``updated_at`` is when it was deleted);
- only up to ``now`` minus :data:`TICK_GRACE`: a younger slot's tick may still be running;
- **paused or disabled tasks.** The engine writes nothing for the slots of a paused or disabled
  task, and the tasks table keeps no history of when that started. The rule is therefore
  simple: if the task is paused (or disabled) *now*, its slots after its last scheduled ledger
  entry are counted as ``paused`` (or ``disabled``), not as gaps. Slots up to that entry are
  expected as usual. Once the task is resumed, the ranged SKIPPED (paused) entry the store writes
  covers those slots like any other range.

What the walk reports (:class:`FindingKind`):

- ``gap``: an expected slot with no ledger entry (consecutive ones become one finding);
- ``unexpected``: an entry whose slot is not a slot of the schedule;
- ``overlapping``: a slot covered by two entries (a ranged entry and a single one, say);
- ``duplicate_run``: an entry with more than one SUCCEEDED attempt: the code ran twice;
- ``stuck``: an entry still in flight more than :data:`STUCK_AFTER` past its deadline. The
  invariant allows in-flight entries, so this one is informational: it does not fail the audit.

Two more look at the task item, not the window, because each would silently stop a task:

- ``busy_without_entry``: the task counts a slot as running (or queued) that has no in-flight
  ledger entry; with overlap ``skip`` every later slot would be skipped for it;
- ``wedged``: the task's next slot is long overdue and already has a ledger entry, so every
  claim of it fails and nothing after it is ever dispatched.

Manual runs (``cronfleet trigger``, a direct invoke: trigger ``manual``, slot ``...Z#manual-...``)
are outside the schedule; they are counted and otherwise ignored. They are counted over the whole
window up to ``now``: neither the registration nor the tick grace applies, since a manual run is
in the ledger before it is invoked. The dispatcher's own heartbeat partition (``#dispatcher``) is
not a task: the ticks at which it noticed missed ticks are listed as information.

:attr:`AuditReport.scope` says what was checked once these rules have cut the window: the span
of the slots audited, how many, and how many manual runs up to when.

Known limits, each a consequence of what the tables record:

- the audit compares with the task's current schedule and timezone; after a schedule change,
  older entries show up as unexpected and older slots as gaps (pick a window after the change);
- a task disabled or paused for a while and then resumed shows the slots in between as gaps,
  since nothing records that interval; likewise a task deleted and registered again;
- a ranged entry that begins before the window is found by looking at the last entry before the
  window; an older range reaching as far would not be seen.

Modules: :mod:`.findings` names what is found, :mod:`.reconcile` walks the two streams,
:mod:`.ledger` reads the ledger, :mod:`.report` audits a task and the fleet.
"""

from cronfleet_tools.audit.findings import (
    LEDGER_CHUNK,
    TICK_GRACE,
    Finding,
    FindingKind,
    SlotCounts,
)
from cronfleet_tools.audit.reconcile import iter_findings, reconcile
from cronfleet_tools.audit.report import AuditReport, AuditScope, TaskAudit, audit, audit_task

__all__ = [
    "LEDGER_CHUNK",
    "TICK_GRACE",
    "AuditReport",
    "AuditScope",
    "Finding",
    "FindingKind",
    "SlotCounts",
    "TaskAudit",
    "audit",
    "audit_task",
    "iter_findings",
    "reconcile",
]
