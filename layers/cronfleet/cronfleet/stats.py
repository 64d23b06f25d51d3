"""Run statistics that are cheap to keep and cheap to read.

They live on the task's own item and are updated with atomic counters as each run finishes,
so reading them is one GetItem and never a scan of history. The p95 comes from a bounded
histogram of durations on logarithmic buckets: 20% wide, so a percentile is within 20% of the
truth, whatever the number of runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

BUCKET_PREFIX = "dur_b"
_SMALLEST_MS = 10.0  # everything faster lands in bucket 0
_GROWTH = 1.2
_BUCKETS = 64  # 10 ms * 1.2**63 is about 9.8 days: far beyond Lambda's 15 minutes


def duration_bucket(duration_ms: float) -> int:
    if duration_ms <= _SMALLEST_MS:
        return 0
    return min(_BUCKETS - 1, int(math.log(duration_ms / _SMALLEST_MS, _GROWTH)) + 1)


def bucket_upper_bound_ms(bucket: int) -> float:
    return _SMALLEST_MS * _GROWTH**bucket


def bucket_attribute(duration_ms: float) -> str:
    return f"{BUCKET_PREFIX}{duration_bucket(duration_ms)}"


@dataclass(frozen=True)
class TaskStats:
    runs: int = 0  # finished attempts that ran the task's code: succeeded, failed, timed out
    succeeded: int = 0
    failed: int = 0  # includes timed out and lost
    timed_out: int = 0
    skipped: int = 0
    missed: int = 0
    consecutive_failures: int = 0
    last_success_at: str | None = None
    last_failure_at: str | None = None
    duration_total_ms: int = 0
    duration_count: int = 0
    duration_buckets: Mapping[int, int] = field(default_factory=dict)

    @property
    def success_rate(self) -> float | None:
        finished = self.succeeded + self.failed
        return self.succeeded / finished if finished else None

    @property
    def average_duration_ms(self) -> float | None:
        return self.duration_total_ms / self.duration_count if self.duration_count else None

    def percentile_duration_ms(self, quantile: float) -> float | None:
        """The upper bound of the bucket holding that quantile: an over-estimate by < 20%."""
        total = sum(self.duration_buckets.values())
        if not total:
            return None
        rank = math.ceil(quantile * total)
        seen = 0
        for bucket in sorted(self.duration_buckets):
            seen += self.duration_buckets[bucket]
            if seen >= rank:
                return bucket_upper_bound_ms(bucket)
        raise AssertionError("rank is at most the total")

    @property
    def p95_duration_ms(self) -> float | None:
        return self.percentile_duration_ms(0.95)
