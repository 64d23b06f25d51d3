"""The states a slot and its attempts go through, and why a slot was not run."""

from __future__ import annotations

from enum import StrEnum

# Lambda's longest timeout: no attempt can run longer.
LAMBDA_MAX_TIMEOUT_SECONDS = 900


class RunStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    RETRY_WAIT = "RETRY_WAIT"
    QUEUED = "QUEUED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    SKIPPED = "SKIPPED"
    MISSED = "MISSED"
    # An attempt's own status only, never a slot's: its code provably never started (the
    # function was never reached, or gave up before marking the attempt RUNNING). The slot
    # counts it as a failure: FAILED once no attempts are left.
    LOST = "LOST"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.TIMED_OUT,
        RunStatus.SKIPPED,
        RunStatus.MISSED,
    }
)
IN_FLIGHT_STATUSES = frozenset(
    {RunStatus.PENDING, RunStatus.RUNNING, RunStatus.RETRY_WAIT, RunStatus.QUEUED}
)


class Trigger(StrEnum):
    SCHEDULE = "schedule"  # the slot's own tick
    CATCHUP = "catchup"  # a slot dispatched late, after missed ticks
    MANUAL = "manual"  # `cronfleet trigger`, or a direct invoke such as `sam local invoke`


class SkipReason(StrEnum):
    OVERLAP = "overlap"  # the previous run was still going
    PAUSED = "paused"
    DISABLED = "disabled"  # Enabled: false, or removed from the template, for a while


def slot_status_of(attempt_status: RunStatus) -> RunStatus:
    """The final status a slot takes when its last attempt ends as ``attempt_status``."""
    return RunStatus.FAILED if attempt_status is RunStatus.LOST else attempt_status
