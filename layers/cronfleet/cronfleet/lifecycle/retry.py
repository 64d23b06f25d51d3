"""Retries within a slot: when the next attempt is due, and whether there is one."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cronfleet.registry.definition import RetryPolicy


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


def attempt_deadline(started: datetime, timeout_seconds: int) -> datetime:
    return (started + timedelta(seconds=timeout_seconds)).replace(microsecond=0)
