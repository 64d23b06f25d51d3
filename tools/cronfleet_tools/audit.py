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
are outside the schedule; they are counted and otherwise ignored. The dispatcher's own heartbeat
partition (``#dispatcher``) is not a task: the ticks at which it noticed missed ticks are listed
as information.

Known limits, each a consequence of what the tables record:

- the audit compares with the task's current schedule and timezone; after a schedule change,
  older entries show up as unexpected and older slots as gaps (pick a window after the change);
- a task disabled or paused for a while and then resumed shows the slots in between as gaps,
  since nothing records that interval; likewise a task deleted and registered again;
- a ranged entry that begins before the window is found by looking at the last entry before the
  window; an older range reaching as far would not be seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from cronfleet.lifecycle.slots import parse_slot, slot_key
from cronfleet.lifecycle.states import (
    FINAL_STATUSES,
    IN_FLIGHT_STATUSES,
    LAMBDA_MAX_TIMEOUT_SECONDS,
    RunStatus,
    Trigger,
)
from cronfleet.store import DISPATCHER_ITEM, ExecutionRecord, TaskNotFound, TaskRecord

# A slot younger than this may still be in its tick (claimed a moment from now): not yet expected.
TICK_GRACE = timedelta(minutes=5)
# In flight this long past the deadline at which the watchdog should have looked: it did not.
STUCK_AFTER = timedelta(hours=1)
# The ledger is read in chunks of this much schedule time: a week of a per-minute task is about
# 10,000 entries, a few megabytes decoded, whatever the length of the window.
LEDGER_CHUNK = timedelta(days=7)
# A task whose ledger is broken throughout would otherwise produce one finding per slot: the
# first ones are kept, the rest only counted.
MAX_FINDINGS_PER_TASK = 1000
MAX_TICK_GAPS = 1000
# Looking back for the last scheduled entry: the window grows by this factor per query, so even
# years of history take a handful of queries.
_LOOKBACK_FIRST = timedelta(days=1)
_LOOKBACK_GROWTH = 8
_LOOKBACK_PAGE = 100
_SECOND = timedelta(seconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Ledger(Protocol):
    """What the audit reads: :class:`cronfleet.store.Store` provides it."""

    def list_tasks(self) -> list[TaskRecord]: ...

    def get_task(self, task_id: str) -> TaskRecord | None: ...

    def get_execution(self, task_id: str, slot: str) -> ExecutionRecord | None: ...

    def executions(
        self,
        task_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[ExecutionRecord]: ...


class FindingKind(StrEnum):
    GAP = "gap"
    UNEXPECTED = "unexpected"
    OVERLAPPING = "overlapping"
    DUPLICATE_RUN = "duplicate_run"
    STUCK = "stuck"
    BUSY_WITHOUT_ENTRY = "busy_without_entry"
    WEDGED = "wedged"

    @property
    def informational(self) -> bool:
        return self is FindingKind.STUCK


@dataclass(frozen=True)
class Finding:
    """One breach of the invariant, at one slot or a run of consecutive slots."""

    kind: FindingKind
    task_id: str
    slot: str
    detail: str
    count: int = 1  # slots in the run (gaps and overlaps of consecutive slots are merged)
    last_slot: str | None = None  # the run's last slot, when count > 1

    @property
    def informational(self) -> bool:
        return self.kind.informational

    def __str__(self) -> str:
        where = self.slot if self.last_slot is None else f"{self.slot} .. {self.last_slot}"
        return f"{self.kind.value}: {self.task_id} {where}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "task_id": self.task_id,
            "slot": self.slot,
            "last_slot": self.last_slot,
            "count": self.count,
            "detail": self.detail,
            "informational": self.informational,
        }


@dataclass
class SlotCounts:
    """How one task's expected slots stand: ``expected == final + in_flight + gaps``."""

    expected: int = 0
    final: int = 0
    in_flight: int = 0
    gaps: int = 0
    paused: int = 0  # not expected: the task is paused (see the module's rule)
    disabled: int = 0  # not expected: the task is disabled
    manual: int = 0  # manual runs seen in the window, outside the schedule

    def to_json(self) -> dict[str, int]:
        return {
            "expected": self.expected,
            "final": self.final,
            "in_flight": self.in_flight,
            "gaps": self.gaps,
            "paused": self.paused,
            "disabled": self.disabled,
            "manual": self.manual,
        }


# --- the comparison: a merge-walk of two sorted streams ----------------------------------------


def reconcile(
    expected_slots: Iterable[datetime | str],
    items: Iterable[ExecutionRecord],
    *,
    task_id: str = "",
    now: datetime | None = None,
    carried: ExecutionRecord | None = None,
    counts: SlotCounts | None = None,
) -> list[Finding]:
    """Compare expected slots with ledger entries; both must be sorted by slot.

    ``carried`` is the last entry before the window, which may be a range (MISSED, or SKIPPED
    while paused) reaching into it. Any entry with ``range_until`` covers every expected slot
    from its ``slot`` up to, not including, ``range_until``. ``now`` enables the ``stuck``
    check. ``counts``, if given, is filled in as well.
    """
    return list(
        iter_findings(
            expected_slots, items, task_id=task_id, now=now, carried=carried, counts=counts
        )
    )


def iter_findings(
    expected_slots: Iterable[datetime | str],
    items: Iterable[ExecutionRecord],
    *,
    task_id: str = "",
    now: datetime | None = None,
    carried: ExecutionRecord | None = None,
    counts: SlotCounts | None = None,
) -> Iterator[Finding]:
    """:func:`reconcile` as a stream, in slot order: nothing is held but the current run."""
    walk = _Walk(task_id, now, counts if counts is not None else SlotCounts())
    yield from walk.run(expected_slots, items, carried)


def _key(slot: datetime) -> str:
    """``slot_key`` for a schedule's runs, at twice its speed: a year of minutes is 525,600."""
    return slot.astimezone(UTC).isoformat(timespec="seconds")[:19] + "Z"


def _is_manual(item: ExecutionRecord) -> bool:
    return item.trigger is Trigger.MANUAL or "#" in item.slot


def _covers(item: ExecutionRecord, key: str) -> bool:
    if item.range_until is None:
        return item.slot == key
    return item.slot <= key < item.range_until


def _describe(item: ExecutionRecord) -> str:
    if item.range_until is not None:
        return f"{item.status.value} range {item.slot} to {item.range_until}"
    return f"{item.status.value} at {item.slot}"


@dataclass
class _Run:
    """Consecutive slots with the same finding, reported once."""

    kind: FindingKind
    cause: tuple[str, ...]  # what the slots share: the entries that overlap there
    first: str
    last: str
    detail: str
    count: int = 1


class _Walk:
    def __init__(self, task_id: str, now: datetime | None, counts: SlotCounts) -> None:
        self.task_id = task_id
        self.now = now
        self.counts = counts
        self.run_open: _Run | None = None

    def run(
        self,
        expected_slots: Iterable[datetime | str],
        items: Iterable[ExecutionRecord],
        carried: ExecutionRecord | None,
    ) -> Iterator[Finding]:
        entries = (item for item in items if not self._skip_manual(item))
        pending = next(entries, None)
        # Ranges that began earlier and may still cover the coming slots (usually none).
        ranges: list[ExecutionRecord] = []
        if carried is not None and carried.range_until is not None and not _is_manual(carried):
            ranges.append(carried)
        for slot in expected_slots:
            key = slot if isinstance(slot, str) else _key(slot)
            # Entries before this slot sit where the schedule has no slot.
            while pending is not None and pending.slot < key:
                yield from self._stray(pending)
                if pending.range_until is not None:
                    ranges.append(pending)
                pending = next(entries, None)
            ranges = [entry for entry in ranges if entry.range_until and entry.range_until > key]
            own = None
            if pending is not None and pending.slot == key:
                own, pending = pending, next(entries, None)
                if own.range_until is not None:
                    ranges.append(own)
            covering = [entry for entry in ranges if _covers(entry, key)]
            if own is not None and own.range_until is None:
                covering.append(own)
            yield from self._settle(key, covering)
            if own is not None:
                yield from self._check_entry(own)
        yield from self._flush()
        while pending is not None:
            yield from self._stray(pending)
            pending = next(entries, None)

    def _stray(self, entry: ExecutionRecord) -> Iterator[Finding]:
        """An entry where the schedule has no slot."""
        yield from self._flush()
        yield self._finding(
            FindingKind.UNEXPECTED,
            entry.slot,
            f"{_describe(entry)}: not a slot of the task's schedule",
        )
        yield from self._check_entry(entry)

    def _skip_manual(self, item: ExecutionRecord) -> bool:
        if _is_manual(item):
            self.counts.manual += 1
            return True
        return False

    def _settle(self, key: str, covering: list[ExecutionRecord]) -> Iterator[Finding]:
        """Count one expected slot, and continue or close the current run of findings."""
        self.counts.expected += 1
        if not covering:
            self.counts.gaps += 1
            yield from self._extend(FindingKind.GAP, (), key, "no ledger entry")
            return
        if covering[0].status in FINAL_STATUSES:
            self.counts.final += 1
        else:
            self.counts.in_flight += 1
        if len(covering) == 1:
            yield from self._flush()
            return
        cause = tuple(entry.slot for entry in covering)
        detail = f"covered by {len(covering)} ledger entries: " + ", ".join(
            _describe(entry) for entry in covering
        )
        yield from self._extend(FindingKind.OVERLAPPING, cause, key, detail)

    def _extend(
        self, kind: FindingKind, cause: tuple[str, ...], key: str, detail: str
    ) -> Iterator[Finding]:
        current = self.run_open
        if current is not None and current.kind is kind and current.cause == cause:
            current.last, current.count = key, current.count + 1
            return
        yield from self._flush()
        self.run_open = _Run(kind, cause, key, key, detail)

    def _flush(self) -> Iterator[Finding]:
        current, self.run_open = self.run_open, None
        if current is None:
            return
        detail = current.detail
        if current.count > 1:
            detail += f" ({current.count} consecutive slots)"
        yield Finding(
            current.kind,
            self.task_id,
            current.first,
            detail,
            count=current.count,
            last_slot=current.last if current.count > 1 else None,
        )

    def _check_entry(self, entry: ExecutionRecord) -> Iterator[Finding]:
        """What is wrong with an entry on its own, wherever it sits."""
        succeeded = [a.attempt for a in entry.attempts if a.status is RunStatus.SUCCEEDED]
        if len(succeeded) > 1:
            yield from self._flush()
            numbers = ", ".join(map(str, succeeded))
            yield self._finding(
                FindingKind.DUPLICATE_RUN,
                entry.slot,
                f"attempts {numbers} all SUCCEEDED: the code ran more than once for this slot",
            )
        if self.now is None or entry.status not in IN_FLIGHT_STATUSES:
            return
        deadline = entry.deadline_at or _estimated_deadline(entry)
        if deadline is not None and self.now - deadline > STUCK_AFTER:
            yield from self._flush()
            hours = (self.now - deadline) / timedelta(hours=1)
            yield self._finding(
                FindingKind.STUCK,
                entry.slot,
                f"{entry.status.value} (attempt {entry.attempt}) {hours:.1f} h past its "
                f"deadline {slot_key(deadline)}: the watchdog has not settled it",
            )

    def _finding(self, kind: FindingKind, slot: str, detail: str) -> Finding:
        return Finding(kind, self.task_id, slot, detail)


def _estimated_deadline(entry: ExecutionRecord) -> datetime | None:
    try:
        slot = parse_slot(entry.slot)
    except ValueError:
        return None
    return slot + timedelta(seconds=entry.timeout_seconds or LAMBDA_MAX_TIMEOUT_SECONDS)


# --- reading the ledger ------------------------------------------------------------------------


def _floor_second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def ledger_entries(
    ledger: Ledger,
    task_id: str,
    after: datetime,
    until: datetime,
    *,
    chunk: timedelta = LEDGER_CHUNK,
) -> Iterator[ExecutionRecord]:
    """The entries of one task with slots in ``(after, until]``, in slot order, chunk by chunk."""
    # Slots are whole seconds (whole minutes, in fact), so (after, until] is the inclusive key
    # range [floor(after) + 1 s, floor(until)].
    chunk_start = _floor_second(after) + _SECOND
    last = _floor_second(until)
    while chunk_start <= last:
        chunk_end = min(last, chunk_start + chunk - _SECOND)
        yield from ledger.executions(task_id, chunk_start, chunk_end)
        chunk_start = chunk_end + _SECOND


def latest_scheduled_entry(
    ledger: Ledger, task_id: str, until: datetime, *, since: datetime = _EPOCH
) -> ExecutionRecord | None:
    """The newest entry that is not a manual run, with its slot in ``[since, until]``.

    It looks back a day first, then ever further, so a busy ledger costs one short query and an
    empty one a handful.
    """
    upper, span = _floor_second(until), _LOOKBACK_FIRST
    since = _floor_second(since)
    while upper >= since:
        lower = max(since, upper - span)
        records = ledger.executions(task_id, lower, upper, newest_first=True, limit=_LOOKBACK_PAGE)
        for record in records:
            if not _is_manual(record):
                return record
        if len(records) == _LOOKBACK_PAGE:
            # A full page of manual runs: carry on below the oldest of them. A manual slot
            # ``T#manual-...`` sorts after ``T``, so an upper bound of T excludes it.
            try:
                oldest = parse_slot(records[-1].slot.partition("#")[0])
            except ValueError:
                return None
            if oldest >= upper:
                return None
            upper = oldest
            continue
        upper, span = lower - _SECOND, span * _LOOKBACK_GROWTH
    return None


# --- the audit ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskAudit:
    """The audit of one task over the window."""

    task_id: str
    state: str  # active, paused, disabled or deleted
    audited_from: datetime | None  # the slots audited: (audited_from, audited_to]
    audited_to: datetime | None  # None for both when nothing of the window was expected
    counts: SlotCounts
    findings: tuple[Finding, ...]
    findings_omitted: int = 0  # beyond MAX_FINDINGS_PER_TASK: counted, not kept
    errors: int = 0  # findings (kept or omitted) that break the invariant

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "state": self.state,
            "audited_from": _iso(self.audited_from),
            "audited_to": _iso(self.audited_to),
            "ok": self.ok,
            "counts": self.counts.to_json(),
            "findings": len(self.findings) + self.findings_omitted,
            "findings_omitted": self.findings_omitted,
        }


@dataclass(frozen=True)
class AuditReport:
    start: datetime
    end: datetime
    now: datetime
    tasks: tuple[TaskAudit, ...]
    # Ticks at which the dispatcher noticed that earlier ticks never came: information only,
    # since the tasks' own ledgers say what became of their slots.
    tick_gaps: tuple[str, ...] = ()
    tick_gaps_total: int = 0

    @property
    def counts(self) -> SlotCounts:
        """Every task's counts added up."""
        total = SlotCounts()
        for task in self.tasks:
            for name, value in task.counts.to_json().items():
                setattr(total, name, getattr(total, name) + value)
        return total

    @property
    def ok(self) -> bool:
        return all(task.ok for task in self.tasks)

    @property
    def findings(self) -> list[Finding]:
        return [finding for task in self.tasks for finding in task.findings]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "window": {"since": _iso(self.start), "until": _iso(self.end), "now": _iso(self.now)},
            "counts": self.counts.to_json(),
            "tasks": [task.to_json() for task in self.tasks],
            "findings": [finding.to_json() for finding in self.findings],
            "dispatcher": {
                "tick_gaps": list(self.tick_gaps),
                "tick_gaps_total": self.tick_gaps_total,
            },
        }


def _iso(moment: datetime | None) -> str | None:
    return slot_key(moment) if moment is not None else None


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _check_window(start: datetime, end: datetime, now: datetime) -> None:
    for name, moment in (("start", start), ("end", end), ("now", now)):
        if moment.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware, got {moment.isoformat()}")
    if start >= end:
        raise ValueError(f"start ({slot_key(start)}) must be before end ({slot_key(end)})")


def _state(task: TaskRecord) -> str:
    if task.deleted:
        return "deleted"
    if task.paused:
        return "paused"
    return "active" if task.definition.enabled else "disabled"


def audit_task(
    ledger: Ledger, task: TaskRecord, start: datetime, end: datetime, now: datetime
) -> TaskAudit:
    """Audit one task's slots in ``(start, end]`` (see the module's rules)."""
    _check_window(start, end, now)
    definition = task.definition
    counts = SlotCounts()
    state = _state(task)
    created_at = _parse_time(task.created_at)
    after = start if created_at is None else max(start, created_at)
    until = min(end, now - TICK_GRACE)
    deleted_at = _parse_time(task.updated_at) if task.deleted else None
    if deleted_at is not None:
        # A slot at the very instant of deletion may or may not have been claimed: not required.
        until = min(until, deleted_at - _SECOND)
    task_findings = list(check_task_item(ledger, task, now))
    if after >= until:
        errors = sum(not finding.informational for finding in task_findings)
        return TaskAudit(
            task.task_id, state, None, None, counts, tuple(task_findings), errors=errors
        )

    schedule = definition.compiled_schedule()
    runs: Iterator[str] = (_key(run) for run in _runs_until(schedule.iter_runs(after), until))
    if task.paused or not definition.enabled:
        # The engine records nothing while paused or disabled: the slots after the last entry
        # are counted apart instead of as gaps.
        last = latest_scheduled_entry(
            ledger, task.task_id, max(end, now) + timedelta(days=1), since=_lower_bound(task)
        )
        kind = "paused" if task.paused else "disabled"
        runs = _count_tail(runs, last, counts, kind)
    carried = latest_scheduled_entry(ledger, task.task_id, after, since=_lower_bound(task))
    findings: list[Finding] = task_findings
    omitted = 0
    errors = sum(not finding.informational for finding in task_findings)
    for finding in iter_findings(
        runs,
        ledger_entries(ledger, task.task_id, after, until),
        task_id=task.task_id,
        now=now,
        carried=carried,
        counts=counts,
    ):
        errors += not finding.informational
        if len(findings) < MAX_FINDINGS_PER_TASK:
            findings.append(finding)
        else:
            omitted += 1
    return TaskAudit(
        task.task_id, state, after, until, counts, tuple(findings), omitted, errors=errors
    )


def check_task_item(ledger: Ledger, task: TaskRecord, now: datetime) -> Iterator[Finding]:
    """What is wrong with the task item itself: slots it is busy on that have no run, and a
    next slot that can never be claimed."""
    busy = sorted(task.active_slots | ({task.queued_slot} if task.queued_slot else set()))
    for slot in busy:
        entry = ledger.get_execution(task.task_id, slot)
        if entry is None or entry.status in FINAL_STATUSES:
            state = "has no ledger entry" if entry is None else f"is {entry.status.value}"
            yield Finding(
                FindingKind.BUSY_WITHOUT_ENTRY,
                task.task_id,
                slot,
                f"the task counts this slot as in flight, but it {state}: with overlap "
                "'skip' every later slot is skipped behind it",
            )
    if task.due_at is None or task.deleted or task.paused:
        return
    due = datetime.fromtimestamp(task.due_at, UTC)
    if now - due <= TICK_GRACE:
        return
    entry = ledger.get_execution(task.task_id, slot_key(due))
    if entry is not None:
        minutes = int((now - due) / timedelta(minutes=1))
        yield Finding(
            FindingKind.WEDGED,
            task.task_id,
            slot_key(due),
            f"the task's next slot is {minutes} minutes overdue and already has a ledger entry "
            f"({entry.status.value}): every claim of it fails, so nothing after it runs",
        )


def _lower_bound(task: TaskRecord) -> datetime:
    # Nothing of a task predates its registration; a day of slack covers clock skew.
    created = _parse_time(task.created_at)
    return created - timedelta(days=1) if created is not None else _EPOCH


def _runs_until(runs: Iterator[datetime], until: datetime) -> Iterator[datetime]:
    for run in runs:
        if run > until:
            return
        yield run


def _count_tail(
    runs: Iterator[str], last: ExecutionRecord | None, counts: SlotCounts, kind: str
) -> Iterator[str]:
    for key in runs:
        if last is not None and (key <= last.slot or _covers(last, key)):
            yield key
        else:
            setattr(counts, kind, getattr(counts, kind) + 1)


def audit(
    ledger: Ledger,
    task_ids: Iterable[str] | None,
    start: datetime,
    end: datetime,
    now: datetime,
) -> AuditReport:
    """Audit some tasks (``None``: every task, deleted ones included) over ``(start, end]``.

    Raises :class:`~cronfleet.store.TaskNotFound` for an unknown task id, ValueError for a bad
    window.
    """
    _check_window(start, end, now)
    if task_ids is None:
        tasks = ledger.list_tasks()
    else:
        tasks = []
        for task_id in task_ids:
            task = ledger.get_task(task_id)
            if task is None:
                raise TaskNotFound(task_id)
            tasks.append(task)
    audits = tuple(audit_task(ledger, task, start, end, now) for task in tasks)
    tick_gaps: list[str] = []
    total = 0
    if start < now:
        for entry in ledger_entries(ledger, DISPATCHER_ITEM, start, min(end, now)):
            total += 1
            if len(tick_gaps) < MAX_TICK_GAPS:
                tick_gaps.append(entry.slot)
    return AuditReport(start, end, now, audits, tuple(tick_gaps), total)
