"""The life of one scheduled slot: its states, its attempts, and the envelope a run receives.

Every slot of every task ends in exactly one final state. Attempts are retries within the slot,
each one recorded. Nothing here touches AWS: the store persists these rules, the dispatcher,
the task wrapper and the recorder apply them.

::

    claimed ──> PENDING ──> RUNNING ──> SUCCEEDED
                  │            │──────> FAILED / TIMED_OUT   (no attempts left, or not retryable)
                  │            `──────> RETRY_WAIT ──> PENDING (attempt + 1)
                  `── never started: re-dispatched once, then lost (a failed attempt)
    QUEUED (overlap queue_one) ──> PENDING
    SKIPPED (overlap skip, paused), MISSED (later than the maximum lateness): final at once
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from cronfleet.registry import RetryPolicy


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


# Slots are written as ISO-8601 UTC with a Z, so that they sort chronologically as strings.
SLOT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def slot_key(slot: datetime) -> str:
    return slot.astimezone(UTC).strftime(SLOT_FORMAT)


def parse_slot(text: str) -> datetime:
    return datetime.strptime(text, SLOT_FORMAT).replace(tzinfo=UTC)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def retry_delay(policy: RetryPolicy, failed_attempt: int, rng: random.Random | None = None) -> int:
    """Seconds to wait after ``failed_attempt`` failed: exponential backoff, capped, jittered.

    Full jitter (AWS's recommendation) spreads retries of many tasks that failed together,
    for example when a shared dependency was down, instead of retrying them in lockstep. The
    wait never drops below IntervalSeconds, so a retry is never immediate.
    """
    backoff = policy.interval_seconds * policy.backoff_rate ** (failed_attempt - 1)
    capped = min(float(policy.max_delay_seconds), backoff)
    if policy.jitter_strategy == "FULL":
        capped = (rng or random).uniform(
            policy.interval_seconds, max(capped, policy.interval_seconds)
        )
    return round(capped)


def attempts_left(policy: RetryPolicy, attempt: int) -> bool:
    return attempt < policy.max_attempts


class ExecutionEnvelope(BaseModel):
    """What a task function receives: which slot, which attempt, by when, and the payload.

    It travels under the ``cronfleet`` key of the invoke payload, so a plain test event (as
    `sam local invoke` sends) is told apart from a scheduled run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    task_id: Annotated[str, Field(min_length=1, max_length=64)]
    slot: str
    attempt: Annotated[int, Field(ge=1, le=10)]
    deadline: str  # ISO-8601 UTC: the attempt must finish by then
    trigger: Trigger
    payload: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("slot", "deadline")
    @classmethod
    def _iso_utc(cls, value: str) -> str:
        try:
            parse_slot(value)
        except ValueError as exc:
            raise ValueError(
                f"must be an ISO-8601 UTC time such as 2026-11-01T09:00:00Z, got {value!r}"
            ) from exc
        return value

    @property
    def slot_time(self) -> datetime:
        return parse_slot(self.slot)

    @property
    def deadline_time(self) -> datetime:
        return parse_slot(self.deadline)

    def to_event(self) -> dict[str, Any]:
        return {"cronfleet": self.model_dump(mode="json")}

    @classmethod
    def from_event(cls, event: Any) -> ExecutionEnvelope | None:
        """The envelope of a scheduled run, or None for a plain event (a manual run)."""
        if isinstance(event, dict) and "cronfleet" in event:
            return cls.model_validate(event["cronfleet"])
        return None


def attempt_deadline(started: datetime, timeout_seconds: int) -> datetime:
    return (started + timedelta(seconds=timeout_seconds)).replace(microsecond=0)
