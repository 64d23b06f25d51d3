"""The audit of a window: per task, and for the whole fleet with the dispatcher's tick gaps."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cronfleet.lifecycle.slots import slot_key
from cronfleet.lifecycle.states import (
    FINAL_STATUSES,
)
from cronfleet.store import DISPATCHER_ITEM, ExecutionRecord, TaskNotFound, TaskRecord
from cronfleet_tools.audit.findings import (
    EPOCH,
    MAX_FINDINGS_PER_TASK,
    MAX_TICK_GAPS,
    SECOND,
    TICK_GRACE,
    Finding,
    FindingKind,
    Ledger,
    SlotCounts,
)
from cronfleet_tools.audit.ledger import latest_scheduled_entry, ledger_entries
from cronfleet_tools.audit.reconcile import entry_covers, is_manual, iter_findings, ledger_key

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
    registered_at: datetime | None = None  # what cut the start of its slots, if anything did
    removed_at: datetime | None = None  # when it was deleted, which cut their end

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "state": self.state,
            "audited_from": _iso(self.audited_from),
            "audited_to": _iso(self.audited_to),
            "registered_at": _iso(self.registered_at),
            "removed_at": _iso(self.removed_at),
            "ok": self.ok,
            "counts": self.counts.to_json(),
            "findings": len(self.findings) + self.findings_omitted,
            "findings_omitted": self.findings_omitted,
        }


@dataclass(frozen=True)
class AuditScope:
    """What an audit checked, once its rules have cut the window it was asked for."""

    slots_from: datetime | None  # scheduled slots checked: (slots_from, slots_to] at the widest
    slots_to: datetime | None  # None for both when no task had a slot to check
    slots_checked: int  # expected slots, every task's
    not_expected: int  # slots of paused or disabled tasks, counted apart
    settle_cut: datetime  # now - TICK_GRACE: younger slots are not expected yet
    manual_runs: int  # manual runs in (start, manual_to]
    manual_to: datetime  # the end of the window, or now if that is earlier

    def to_json(self) -> dict[str, Any]:
        return {
            "since": _iso(self.slots_from),
            "until": _iso(self.slots_to),
            "scheduled_slots": self.slots_checked,
            "not_expected": self.not_expected,
            "manual_runs": self.manual_runs,
            "manual_runs_until": _iso(self.manual_to),
            "tick_grace_seconds": int(TICK_GRACE.total_seconds()),
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
    def scope(self) -> AuditScope:
        starts = [task.audited_from for task in self.tasks if task.audited_from is not None]
        ends = [task.audited_to for task in self.tasks if task.audited_to is not None]
        counts = self.counts
        return AuditScope(
            slots_from=min(starts, default=None),
            slots_to=max(ends, default=None),
            slots_checked=counts.expected,
            not_expected=counts.paused + counts.disabled,
            settle_cut=self.now - TICK_GRACE,
            manual_runs=counts.manual,
            manual_to=min(self.end, self.now),
        )

    @property
    def findings(self) -> list[Finding]:
        return [finding for task in self.tasks for finding in task.findings]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "window": {"since": _iso(self.start), "until": _iso(self.end), "now": _iso(self.now)},
            "audited": self.scope.to_json(),
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
        until = min(until, deleted_at - SECOND)
    # Only slots wait out the tick grace and the registration: a manual run is in the ledger
    # before it is invoked, so every one up to now is counted. The walk counts those among
    # the audited slots; the stretches either side of them are counted here.
    manual_to = min(end, now)
    registered_at = created_at if created_at is not None and created_at > start else None
    task_findings = list(check_task_item(ledger, task, now))
    if after >= until:
        errors = sum(not finding.informational for finding in task_findings)
        counts.manual = _manual_runs(ledger, task.task_id, [(start, manual_to)])
        return TaskAudit(
            task.task_id,
            state,
            None,
            None,
            counts,
            tuple(task_findings),
            errors=errors,
            registered_at=registered_at,
            removed_at=deleted_at,
        )

    schedule = definition.compiled_schedule()
    runs: Iterator[str] = (ledger_key(run) for run in _runs_until(schedule.iter_runs(after), until))
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
    counts.manual += _manual_runs(ledger, task.task_id, [(start, after), (until, manual_to)])
    return TaskAudit(
        task.task_id,
        state,
        after,
        until,
        counts,
        tuple(findings),
        omitted,
        errors,
        registered_at=registered_at,
        removed_at=deleted_at,
    )


def _manual_runs(ledger: Ledger, task_id: str, stretches: list[tuple[datetime, datetime]]) -> int:
    """The manual runs of a task with slots in each ``(after, until]`` of ``stretches``."""
    return sum(
        is_manual(entry)
        for after, until in stretches
        if after < until
        for entry in ledger_entries(ledger, task_id, after, until)
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
    return created - timedelta(days=1) if created is not None else EPOCH


def _runs_until(runs: Iterator[datetime], until: datetime) -> Iterator[datetime]:
    for run in runs:
        if run > until:
            return
        yield run


def _count_tail(
    runs: Iterator[str], last: ExecutionRecord | None, counts: SlotCounts, kind: str
) -> Iterator[str]:
    for key in runs:
        if last is not None and (key <= last.slot or entry_covers(last, key)):
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
