"""cronfleet benchmarks (`make bench`). Performance is measured here, never in timed tests.

Cold start: a Lambda's first invocation pays for its imports. The design's budget is that the
dispatcher's handler module imports within 1.5x of `import boto3` alone. Until the dispatcher
exists, the schedule engine (which every handler imports) is measured against the same baseline.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from dataclasses import dataclass

RUNS = 5
COLD_START_BUDGET = 1.5

# Timed inside a fresh interpreter, so only the import is measured: not interpreter start-up,
# and nothing is already cached in sys.modules by an earlier measurement.
_TIMER = """
import time
start = time.perf_counter()
import {module}
print(time.perf_counter() - start)
"""


@dataclass(frozen=True)
class ImportTime:
    module: str
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def measure_import(module: str, runs: int = RUNS) -> ImportTime:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _TIMER.format(module=module)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        samples.append(float(out.strip().splitlines()[-1]))
    return ImportTime(module, samples)


def cold_start() -> bool:
    """Import time of cronfleet.schedule against boto3; True when within budget."""
    # One throwaway run each, so the first measurement does not pay for a cold disk cache.
    measure_import("boto3", runs=1)
    measure_import("cronfleet.schedule", runs=1)
    baseline = measure_import("boto3")
    candidate = measure_import("cronfleet.schedule")
    ratio = candidate.median / baseline.median
    within = ratio <= COLD_START_BUDGET
    print(f"cold start: import time, median of {RUNS} fresh interpreters")
    for result in (baseline, candidate):
        runs = ", ".join(f"{s * 1000:.1f}" for s in result.samples)
        print(f"  {result.module:<20} {result.median * 1000:7.1f} ms   (runs: {runs})")
    verdict = "ok" if within else "OVER BUDGET"
    print(f"  ratio {ratio:.2f}x of boto3 (budget {COLD_START_BUDGET}x): {verdict}")
    return within


def main() -> int:
    results = [cold_start()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
