"""Performance figure 3 (docs/architecture.md): the dispatcher's cold start against boto3.

A Lambda's first invocation pays for its imports (and whatever its module does at import time:
reading the environment, creating clients). Each measurement runs in a fresh interpreter, the
same one that runs the benchmark, so nothing is already in ``sys.modules``; only the import
statement is timed, not interpreter start-up.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
HANDLER_DIR = REPO_ROOT / "functions" / "dispatcher"
# Until the handler exists, the module it will be built around stands in for it.
FALLBACK_MODULE = "cronfleet.dispatch.service"
# What the handler reads at import time, as template.yaml's Globals set it; dummy values. The
# Lambda variables matter: with them the Powertools Tracer is on and patches botocore at import,
# as in Lambda (outside Lambda it turns itself off, and the import would look cheaper).
HANDLER_ENVIRONMENT = {
    "LAMBDA_TASK_ROOT": str(HANDLER_DIR),
    "AWS_LAMBDA_FUNCTION_NAME": "cronfleet-DispatcherFunction",
    "TASKS_TABLE_NAME": "cronfleet-bench-tasks",
    "EXECUTIONS_TABLE_NAME": "cronfleet-bench-executions",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "cronfleet",
    "POWERTOOLS_METRICS_NAMESPACE": "Cronfleet",
}

_TIMER = """
import sys, time
sys.path[:0] = {path!r}
start, cpu_start = time.perf_counter(), time.process_time()
import {module}
print(time.perf_counter() - start, time.process_time() - cpu_start)
"""


@dataclass(frozen=True)
class Subject:
    label: str
    module: str
    path: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportTimes:
    subject: Subject
    samples: list[float]  # wall time: what a cold start waits for
    cpu_samples: list[float]  # CPU time: the same work, less exposed to a busy machine

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_samples)


@dataclass(frozen=True)
class ColdStart:
    candidate: ImportTimes
    baseline: ImportTimes
    handler_exists: bool
    floor: ImportTimes  # the dependencies alone (benchmarks/startup_floor.py)

    @property
    def ratio(self) -> float:
        return self.candidate.median / self.baseline.median

    @property
    def cpu_ratio(self) -> float:
        return self.candidate.cpu_median / self.baseline.cpu_median

    @property
    def floor_ratio(self) -> float:
        return self.floor.median / self.baseline.median


def dispatcher_subject() -> tuple[Subject, bool]:
    if (HANDLER_DIR / "app.py").is_file():
        # As Lambda loads it: `app` from the function's own directory, the layer on the path.
        return Subject("functions/dispatcher/app.py", "app", (str(HANDLER_DIR),)), True
    return Subject(FALLBACK_MODULE, FALLBACK_MODULE), False


def import_seconds(subject: Subject) -> tuple[float, float]:
    """Wall and CPU seconds of one import in a fresh interpreter."""
    # The developer's own AWS settings (a profile, a region) stay out of it.
    environment = {
        **{
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AWS_", "POWERTOOLS_"))
        },
        **HANDLER_ENVIRONMENT,
    }
    done = subprocess.run(
        [sys.executable, "-c", _TIMER.format(path=list(subject.path), module=subject.module)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO_ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {subject.label} failed:\n{done.stderr}")
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def cold_start(runs: int) -> ColdStart:
    candidate, handler_exists = dispatcher_subject()
    baseline = Subject("import boto3", "boto3")
    floor = Subject("dependencies alone", "benchmarks.startup_floor")
    subjects = (baseline, candidate, floor)
    # One throwaway run each, so the first sample does not pay for a cold disk cache or for
    # compiling bytecode; then alternate, so drift on a busy machine hits all sides alike.
    for subject in subjects:
        import_seconds(subject)
    times: dict[Subject, ImportTimes] = {
        subject: ImportTimes(subject, [], []) for subject in subjects
    }
    for _ in range(runs):
        for subject in subjects:
            wall, cpu = import_seconds(subject)
            times[subject].samples.append(wall)
            times[subject].cpu_samples.append(cpu)
    return ColdStart(times[candidate], times[baseline], handler_exists, times[floor])
