"""The ledger audit without DynamoDB.

The merge-walk runs on hand-built ledgers; the rules deciding which slots are expected run on an
in-memory ledger that answers the audit's reads the way the DynamoDB store does.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cronfleet.lifecycle.slots import slot_key
from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet.registry.definition import parse_task_definition
from cronfleet.store import (
    DISPATCHER_ITEM,
    AttemptRecord,
    ExecutionRecord,
    TaskNotFound,
    TaskRecord,
)
from cronfleet_tools.audit import (
    LEDGER_CHUNK,
    Finding,
    FindingKind,
    SlotCounts,
    audit,
    audit_task,
    iter_findings,
    reconcile,
)

DAY = datetime(2026, 11, 2, tzinfo=UTC)


def at(hhmm: str, day: datetime = DAY) -> str:
    """A slot key on the test day: at("08:05") is 2026-11-02T08:05:00Z."""
    hours, minutes = map(int, hhmm.split(":"))
    return slot_key(day.replace(hour=hours, minute=minutes))


def moment(hhmm: str) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return DAY.replace(hour=hours, minute=minutes)


def every_5_minutes(first: str, last: str) -> list[str]:
    start, end = moment(first), moment(last)
    return [
        slot_key(start + timedelta(minutes=m)) for m in range(0, 1 + (end - start).seconds // 60, 5)
    ]


def entry(
    slot: str,
    status: RunStatus = RunStatus.SUCCEEDED,
    *,
    trigger: Trigger = Trigger.SCHEDULE,
    attempts: tuple[RunStatus, ...] | None = None,
    range_until: str | None = None,
    deadline_at: datetime | None = None,
    task_id: str = "report",
) -> ExecutionRecord:
    statuses = attempts if attempts is not None else ((status,) if status.is_final else ())
    return ExecutionRecord(
        task_id=task_id,
        slot=slot,
        status=status,
        trigger=trigger,
        attempt=max(len(statuses), 1),
        attempts=tuple(AttemptRecord(n, s) for n, s in enumerate(statuses, 1)),
        deadline_at=deadline_at,
        range_until=range_until,
    )


def kinds(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(finding.kind.value, finding.slot) for finding in findings]


# --- reconcile: the merge-walk -----------------------------------------------------------------


def test_a_ledger_with_one_final_entry_per_slot_is_clean() -> None:
    expected = every_5_minutes("08:00", "08:20")
    counts = SlotCounts()

    findings = reconcile(expected, [entry(slot) for slot in expected], counts=counts)

    assert findings == []
    assert (counts.expected, counts.final, counts.in_flight, counts.gaps) == (5, 5, 0, 0)


def test_an_expected_slot_without_an_entry_is_a_gap_naming_the_task_and_slot() -> None:
    expected = every_5_minutes("08:00", "08:20")
    counts = SlotCounts()

    findings = reconcile(
        expected,
        [entry(slot) for slot in expected if slot != at("08:10")],
        task_id="report",
        counts=counts,
    )

    assert [(f.kind, f.task_id, f.slot, f.count) for f in findings] == [
        (FindingKind.GAP, "report", at("08:10"), 1)
    ]
    assert (counts.expected, counts.final, counts.gaps) == (5, 4, 1)


def test_consecutive_gaps_are_reported_once_with_their_count() -> None:
    expected = every_5_minutes("08:00", "09:00")
    kept = {at("08:00"), at("09:00")}

    findings = reconcile(expected, [entry(slot) for slot in expected if slot in kept])

    (gap,) = findings
    assert (gap.kind, gap.slot, gap.last_slot, gap.count) == (
        FindingKind.GAP,
        at("08:05"),
        at("08:55"),
        11,
    )


def test_datetimes_and_slot_keys_are_both_accepted_as_expected_slots() -> None:
    findings = reconcile([moment("08:00"), moment("08:05")], [entry(at("08:00"))])

    assert kinds(findings) == [("gap", at("08:05"))]


def test_a_missed_range_covers_every_slot_up_to_but_not_including_its_end() -> None:
    expected = every_5_minutes("08:00", "08:30")
    ledger = [
        entry(at("08:00"), RunStatus.MISSED, range_until=at("08:20")),
        entry(at("08:20")),
        entry(at("08:25")),
        entry(at("08:30")),
    ]
    counts = SlotCounts()

    assert reconcile(expected, ledger, counts=counts) == []
    assert (counts.expected, counts.final, counts.gaps) == (7, 7, 0)


def test_a_skipped_range_written_on_resume_covers_the_paused_slots() -> None:
    expected = every_5_minutes("08:00", "08:30")
    paused = ExecutionRecord(
        task_id="report",
        slot=at("08:05"),
        status=RunStatus.SKIPPED,
        trigger=Trigger.SCHEDULE,
        attempt=0,
        skip_reason="paused",
        range_until=at("08:25"),
    )
    ledger = [entry(at("08:00")), paused, entry(at("08:25")), entry(at("08:30"))]

    assert reconcile(expected, ledger) == []


def test_a_range_ending_off_the_minute_covers_the_slot_before_it() -> None:
    # The dispatcher ends a range with nothing chosen at tick + 1 s.
    expected = every_5_minutes("08:00", "08:10")
    ledger = [entry(at("08:00"), RunStatus.MISSED, range_until="2026-11-02T08:10:01Z")]

    assert reconcile(expected, ledger) == []


def test_a_range_that_began_before_the_window_covers_the_window_s_first_slots() -> None:
    expected = every_5_minutes("08:00", "08:15")
    before = entry(at("07:30"), RunStatus.MISSED, range_until=at("08:10"))

    findings = reconcile(expected, [entry(at("08:10")), entry(at("08:15"))], carried=before)

    assert findings == []


def test_a_range_and_a_single_entry_on_one_slot_overlap() -> None:
    expected = every_5_minutes("08:00", "08:20")
    ledger = [
        entry(at("08:00"), RunStatus.MISSED, range_until=at("08:15")),
        entry(at("08:10")),  # a run recorded for a slot the range already closed
        entry(at("08:15")),
        entry(at("08:20")),
    ]
    counts = SlotCounts()

    findings = reconcile(expected, ledger, counts=counts)

    assert kinds(findings) == [("overlapping", at("08:10"))]
    assert "MISSED range" in findings[0].detail
    assert "SUCCEEDED at 2026-11-02T08:10:00Z" in findings[0].detail
    # The slot is counted once, so the totals still add up.
    assert counts.expected == counts.final + counts.in_flight + counts.gaps == 5


def test_two_overlapping_ranges_are_one_finding_for_the_slots_they_share() -> None:
    expected = every_5_minutes("08:00", "08:30")
    ledger = [
        entry(at("08:00"), RunStatus.MISSED, range_until=at("08:20")),
        entry(at("08:05"), RunStatus.MISSED, range_until=at("08:35")),
    ]

    (overlap,) = reconcile(expected, ledger)

    assert (overlap.kind, overlap.slot, overlap.last_slot, overlap.count) == (
        FindingKind.OVERLAPPING,
        at("08:05"),
        at("08:15"),
        3,
    )


def test_an_entry_at_a_time_that_is_not_a_slot_is_unexpected() -> None:
    expected = every_5_minutes("08:00", "08:10")
    ledger = [entry(at("08:00")), entry(at("08:03")), entry(at("08:05")), entry(at("08:10"))]
    ledger_after = [*ledger, entry(at("08:12"))]

    assert kinds(reconcile(expected, ledger)) == [("unexpected", at("08:03"))]
    assert kinds(reconcile(expected, ledger_after)) == [
        ("unexpected", at("08:03")),
        ("unexpected", at("08:12")),
    ]


def test_manual_runs_are_neither_gaps_nor_duplicates_nor_unexpected() -> None:
    expected = every_5_minutes("08:00", "08:10")
    manual = entry(
        "2026-11-02T08:03:00Z#manual-1a2b3c4d",
        trigger=Trigger.MANUAL,
        attempts=(RunStatus.SUCCEEDED, RunStatus.SUCCEEDED),
    )
    manual_on_a_slot = entry(f"{at('08:05')}#manual-5e6f7a8b", trigger=Trigger.MANUAL)
    ledger = [entry(at("08:00")), manual, entry(at("08:05")), manual_on_a_slot, entry(at("08:10"))]
    counts = SlotCounts()

    assert reconcile(expected, ledger, counts=counts) == []
    assert (counts.expected, counts.final, counts.manual) == (3, 3, 2)


def test_a_manual_run_does_not_fill_a_gap() -> None:
    expected = every_5_minutes("08:00", "08:05")
    manual = entry(f"{at('08:05')}#manual-1a2b3c4d", trigger=Trigger.MANUAL)

    assert kinds(reconcile(expected, [entry(at("08:00")), manual])) == [("gap", at("08:05"))]


def test_two_successful_attempts_of_one_slot_are_a_duplicate_run() -> None:
    expected = every_5_minutes("08:00", "08:05")
    twice = entry(
        at("08:05"), attempts=(RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SUCCEEDED)
    )
    retried = entry(at("08:00"), attempts=(RunStatus.FAILED, RunStatus.SUCCEEDED))

    findings = reconcile(expected, [retried, twice])

    assert kinds(findings) == [("duplicate_run", at("08:05"))]
    assert "attempts 1, 3" in findings[0].detail
    assert not findings[0].informational


def test_an_in_flight_slot_is_counted_as_in_flight_not_as_a_gap() -> None:
    expected = every_5_minutes("08:00", "08:10")
    now = moment("08:12")
    ledger = [
        entry(at("08:00")),
        entry(at("08:05"), RunStatus.RETRY_WAIT, deadline_at=now + timedelta(minutes=1)),
        entry(at("08:10"), RunStatus.RUNNING, deadline_at=now + timedelta(minutes=15)),
    ]
    counts = SlotCounts()

    assert reconcile(expected, ledger, now=now, counts=counts) == []
    assert (counts.expected, counts.final, counts.in_flight, counts.gaps) == (3, 1, 2, 0)


def test_an_entry_in_flight_long_past_its_deadline_is_stuck_for_information() -> None:
    expected = every_5_minutes("08:00", "08:00")
    ledger = [entry(at("08:00"), RunStatus.RUNNING, deadline_at=moment("08:20"))]

    assert reconcile(expected, ledger, now=moment("09:19")) == []
    (stuck,) = reconcile(expected, ledger, now=moment("10:20"))

    assert (stuck.kind, stuck.slot) == (FindingKind.STUCK, at("08:00"))
    assert stuck.informational
    assert "2.0 h past its deadline" in stuck.detail


def test_findings_come_out_while_the_streams_are_still_being_read() -> None:
    # An endless schedule: the walk must not read either stream to its end before answering.
    endless = (slot_key(moment("08:00") + timedelta(minutes=n)) for n in itertools.count())
    ledger = (entry(slot_key(moment("08:00") + timedelta(minutes=n))) for n in itertools.count())
    with_a_hole = (record for record in ledger if record.slot != at("08:30"))

    first = next(iter_findings(endless, with_a_hole, task_id="report"))

    assert (first.kind, first.slot) == (FindingKind.GAP, at("08:30"))


# --- audit_task and audit: which slots are expected, on an in-memory ledger --------------------


@dataclass
class MemoryLedger:
    """The three reads the audit makes, answered the way the DynamoDB store answers them."""

    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    entries: dict[str, list[ExecutionRecord]] = field(default_factory=dict)
    largest_read: int = 0
    reads: int = 0

    def add_task(self, name: str, schedule: str, **state: Any) -> TaskRecord:
        definition = parse_task_definition(
            name,
            {
                "Schedule": schedule,
                "Function": "fn",
                "Enabled": state.pop("enabled", True),
                "Timezone": state.pop("timezone", "UTC"),
            },
        )
        state.setdefault("created_at", "2026-11-01T00:00:00Z")
        task = TaskRecord(
            task_id=name,
            definition_json=definition.model_dump_json(by_alias=True, exclude_none=True),
            **state,
        )
        self.tasks[name] = task
        return task

    def add(self, *records: ExecutionRecord) -> None:
        for record in records:
            self.entries.setdefault(record.task_id, []).append(record)
        for partition in self.entries.values():
            partition.sort(key=lambda r: r.slot)

    def list_tasks(self) -> list[TaskRecord]:
        return sorted(self.tasks.values(), key=lambda task: task.task_id)

    def get_task(self, task_id: str) -> TaskRecord | None:
        return self.tasks.get(task_id)

    def executions(
        self,
        task_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[ExecutionRecord]:
        records = self.entries.get(task_id, [])
        if start is not None and end is not None:
            # BETWEEN on the sort key, which compares strings
            low = bisect.bisect_left(records, slot_key(start), key=lambda r: r.slot)
            high = bisect.bisect_right(records, slot_key(end), key=lambda r: r.slot)
            records = records[low:high]
        if newest_first:
            records = records[::-1]
        records = records[:limit] if limit is not None else records
        self.reads += 1
        self.largest_read = max(self.largest_read, len(records))
        return records


@pytest.fixture
def ledger() -> MemoryLedger:
    return MemoryLedger()


def test_slots_before_registration_and_within_the_tick_grace_are_not_expected(
    ledger: MemoryLedger,
) -> None:
    # given a task registered at 08:02, and a ledger complete up to 08:55
    task = ledger.add_task("report", "*/5 * * * *", created_at=at("08:02"))
    ledger.add(*(entry(slot) for slot in every_5_minutes("08:05", "08:55")))

    # when it is audited from 08:00 to 09:00, at 09:01
    result = audit_task(ledger, task, moment("08:00"), moment("09:00"), moment("09:01"))

    # then 08:00 (before it existed) and 09:00 (its tick may still run) are not expected
    assert result.ok
    assert (result.audited_from, result.audited_to) == (moment("08:02"), moment("08:56"))
    assert result.counts.expected == result.counts.final == 11


def test_a_gap_is_found_and_fails_the_report(ledger: MemoryLedger) -> None:
    ledger.add_task("report", "*/5 * * * *")
    ledger.add(*(entry(slot) for slot in every_5_minutes("08:05", "09:00") if slot != at("08:30")))

    report = audit(ledger, None, moment("08:00"), moment("09:00"), moment("10:00"))

    assert not report.ok
    assert [(f.kind, f.task_id, f.slot) for f in report.findings] == [
        (FindingKind.GAP, "report", at("08:30"))
    ]
    document = report.to_json()
    assert document["ok"] is False
    assert document["findings"][0]["slot"] == at("08:30")
    assert document["tasks"][0]["counts"]["gaps"] == 1


@pytest.mark.parametrize(
    ("state", "count"), [({"paused": True}, "paused"), ({"enabled": False}, "disabled")]
)
def test_a_paused_or_disabled_task_counts_its_slots_after_its_last_entry_apart(
    ledger: MemoryLedger, state: dict[str, Any], count: str
) -> None:
    # given a task that ran until 08:20 and was then paused (or disabled)
    task = ledger.add_task("report", "*/5 * * * *", **state)
    ledger.add(*(entry(slot) for slot in every_5_minutes("08:05", "08:20") if slot != at("08:10")))

    result = audit_task(ledger, task, moment("08:00"), moment("09:00"), moment("10:00"))

    # then the slots after 08:20 are counted apart, and the hole before it is still a gap
    assert kinds(list(result.findings)) == [("gap", at("08:10"))]
    assert (result.counts.expected, result.counts.gaps, getattr(result.counts, count)) == (4, 1, 8)
    assert result.state == count


def test_a_paused_task_whose_last_entry_is_a_range_keeps_the_slots_the_range_covers(
    ledger: MemoryLedger,
) -> None:
    task = ledger.add_task("report", "*/5 * * * *", paused=True)
    ledger.add(entry(at("08:05"), RunStatus.MISSED, range_until=at("08:30")))

    result = audit_task(ledger, task, moment("08:00"), moment("09:00"), moment("10:00"))

    assert result.ok
    assert (result.counts.expected, result.counts.final, result.counts.paused) == (5, 5, 7)


def test_a_deleted_task_is_audited_up_to_its_deletion(ledger: MemoryLedger) -> None:
    task = ledger.add_task("report", "*/5 * * * *", deleted=True, updated_at="2026-11-02T08:30:00Z")
    ledger.add(*(entry(slot) for slot in every_5_minutes("08:05", "08:25")))

    result = audit_task(ledger, task, moment("08:00"), moment("09:00"), moment("10:00"))

    assert result.ok
    assert result.state == "deleted"
    assert result.counts.expected == 5


def test_a_range_from_before_the_window_is_looked_up_and_covers_its_slots(
    ledger: MemoryLedger,
) -> None:
    task = ledger.add_task("report", "*/5 * * * *")
    ledger.add(
        entry(at("06:00"), RunStatus.MISSED, range_until=at("08:20")),
        *(entry(slot) for slot in every_5_minutes("08:20", "09:00")),
    )

    result = audit_task(ledger, task, moment("08:00"), moment("09:00"), moment("10:00"))

    assert result.ok
    assert result.counts.expected == result.counts.final == 12


def test_a_task_in_a_timezone_is_expected_at_its_local_times(ledger: MemoryLedger) -> None:
    task = ledger.add_task("morning", "0 9 * * *", timezone="Asia/Tokyo")
    ledger.add(entry(at("00:00"), task_id="morning"))  # 09:00 in Tokyo

    result = audit_task(
        ledger, task, DAY - timedelta(hours=1), DAY + timedelta(hours=23), DAY + timedelta(days=2)
    )

    assert result.ok
    assert result.counts.expected == 1


def test_an_unknown_task_is_refused_by_name(ledger: MemoryLedger) -> None:
    with pytest.raises(TaskNotFound, match="no task 'nope'"):
        audit(ledger, ["nope"], moment("08:00"), moment("09:00"), moment("10:00"))


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (moment("09:00"), moment("08:00"), "must be before end"),
        (moment("09:00"), moment("09:00"), "must be before end"),
        (datetime(2026, 11, 2, 8), moment("09:00"), "timezone-aware"),
    ],
)
def test_a_bad_window_is_refused(
    ledger: MemoryLedger, start: datetime, end: datetime, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        audit(ledger, None, start, end, moment("10:00"))


def test_the_dispatcher_s_missed_ticks_are_information_not_task_gaps(
    ledger: MemoryLedger,
) -> None:
    ledger.add_task("report", "*/5 * * * *")
    ledger.add(*(entry(slot) for slot in every_5_minutes("08:05", "09:00")))
    ledger.add(entry(at("08:40"), RunStatus.MISSED, task_id=DISPATCHER_ITEM))

    report = audit(ledger, None, moment("08:00"), moment("09:00"), moment("10:00"))

    assert report.ok
    assert [task.task_id for task in report.tasks] == ["report"]
    assert report.tick_gaps == (at("08:40"),)
    assert report.to_json()["dispatcher"] == {"tick_gaps": [at("08:40")], "tick_gaps_total": 1}


def test_a_long_window_of_a_per_minute_task_is_read_a_week_at_a_time(
    ledger: MemoryLedger,
) -> None:
    # given a per-minute task with three weeks of history, one entry missing
    task = ledger.add_task("busy", "rate(1 minute)", created_at="2026-10-01T00:00:00Z")
    start, weeks = datetime(2026, 10, 5, tzinfo=UTC), 3
    hole = slot_key(start + timedelta(days=10, minutes=7))
    minutes = (start + timedelta(minutes=n) for n in range(1, weeks * 7 * 1440 + 1))
    ledger.add(*(entry(key, task_id="busy") for key in map(slot_key, minutes) if key != hole))

    # when the three weeks are audited
    end = start + timedelta(weeks=weeks)
    result = audit_task(ledger, task, start, end, end + timedelta(days=1))

    # then the one gap is found, and no read returned more than a week of entries
    assert kinds(list(result.findings)) == [("gap", hole)]
    assert result.counts.expected == weeks * 7 * 1440
    assert ledger.largest_read == LEDGER_CHUNK / timedelta(minutes=1)
