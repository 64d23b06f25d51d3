"""How an attempt ended, and what recording it changed: the values every writer of the ledger
passes around (the wrapper, the recorder, the watchdog, the store)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cronfleet.lifecycle.states import RunStatus


@dataclass(frozen=True)
class AttemptOutcome:
    """How an attempt ended, as recorded by the wrapper, the recorder or the watchdog."""

    status: RunStatus  # SUCCEEDED, FAILED, TIMED_OUT or LOST (its code never started)
    ended_at: datetime
    duration_ms: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    result: Any = None
    ran_code: bool = True  # False for invoke failures and lost runs: no duration to count


@dataclass(frozen=True)
class FinishResult:
    recorded: bool  # False: the attempt was already finished (a duplicate)
    final_status: RunStatus | None = None
    previous_consecutive_failures: int = 0
    consecutive_failures: int = 0

    @classmethod
    def recorded_as(cls, final: RunStatus | None, previous_failures: int) -> FinishResult:
        """A recorded finish: a success resets the run of failures, a failure extends it, and
        a retry (no final status yet) leaves it as it was."""
        if final is None:
            consecutive = previous_failures
        elif final is RunStatus.SUCCEEDED:
            consecutive = 0
        else:
            consecutive = previous_failures + 1
        return cls(True, final, previous_failures, consecutive)
