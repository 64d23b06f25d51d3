"""Performance figure 5 (docs/architecture.md): replaying the sample template locally, with warm
function workers against a new process per invocation (``--cold``).

Each replay is ``cronfleet run --start ... --until ... --speed max`` on template.yaml, run as a
person runs it: its own process, a fresh state directory, its own DynamoDB Local. Its wall time
is the whole command's, DynamoDB Local's start and every tick of the dispatcher included, on
both sides alike. The invocations are read back from the local Lambda's journal
(``logs/invocations.jsonl``), so both sides are seen to have done the same work, and the time
spent inside the invocations is told apart from the rest.

A week of the sample is some 2,000 ticks and 2,200 invocations, nearly all of them its Http
task, which fails and is retried every 15 minutes where there is no network. Warm, that is two
or three minutes; cold, at two thirds of a second an invocation, some 23 minutes (measured once
on 2 CPUs: 134 s against 1,406 s). So the two sides are compared on one day, the week's Monday,
and the week itself is replayed warm, for its wall time; the cold week is estimated from the
day, and said to be. ``--quick`` compares eight
hours of that Monday and skips the week; there the fixed cost of any replay (``IDLE``: 5 to
8 s to start and stop) and the ticks weigh more, and a quick ratio falls short of a day's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "template.yaml"
JOURNAL = Path("logs") / "invocations.jsonl"  # under the state directory
TARGET = 5.0  # cold / warm: warm workers make a replay at least this many times faster


@dataclass(frozen=True)
class Window:
    start: str
    until: str  # inclusive, as --until is
    label: str


# A week from Monday 00:00 UTC, so the Monday-only weekly digest and the weekday greeting run.
# Each window opens a minute early: the tasks are registered at the replay's first minute, and
# a slot at that very minute is already behind them.
WEEK = Window("2026-03-01T23:59Z", "2026-03-08T23:59Z", "the week of Monday 2026-03-02")
DAY = Window("2026-03-01T23:59Z", "2026-03-02T23:59Z", "Monday 2026-03-02")
# One minute in which nothing is due: what any replay costs before and after its ticks (Python
# and DynamoDB Local starting, the tasks applied, everything stopped).
IDLE = Window("2026-03-02T00:01Z", "2026-03-02T00:01Z", "one idle minute")
# Eight hours with the weekly digest (08:00) and the greeting (09:00 London, GMT in March).
QUICK = Window("2026-03-02T01:59Z", "2026-03-02T09:59Z", "2026-03-02 02:00-10:00")


@dataclass(frozen=True)
class Replay:
    window: Window
    cold: bool
    seconds: float  # the command's wall time
    ticks: int
    invocations: int
    by_function: dict[str, int]
    # The invocations' own wall times, summed (up to four run at once, so this can exceed
    # the replay's): what warm workers change, the dispatcher's ticks are not in it.
    invocation_seconds: float

    @property
    def mode(self) -> str:
        return "cold" if self.cold else "warm"

    @property
    def mean_invocation_ms(self) -> float:
        return self.invocation_seconds / max(1, self.invocations) * 1000


def replay(window: Window, *, cold: bool) -> Replay:
    """One replay of ``window`` by `cronfleet run`, in a state directory of its own."""
    with tempfile.TemporaryDirectory(prefix="cronfleet-bench-replay-") as directory:
        state_dir = Path(directory)
        command = [
            *(sys.executable, "-m", "cronfleet_tools", "run"),
            *("--template", str(TEMPLATE), "--state-dir", str(state_dir)),
            *("--start", window.start, "--until", window.until, "--speed", "max"),
            *(["--cold"] if cold else []),
        ]
        began = time.perf_counter()
        done = subprocess.run(
            command,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
            # A fixed width, so the runner's console costs the same on both sides.
            env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1"},
        )
        seconds = time.perf_counter() - began
        if done.returncode != 0:
            raise RuntimeError(
                f"cronfleet run{' --cold' if cold else ''} failed ({done.returncode}):\n"
                f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
        journal_file = state_dir / JOURNAL  # none when nothing ran
        journal = journal_file.read_text().splitlines() if journal_file.exists() else []
    entries = [json.loads(line) for line in journal if line.strip()]
    return Replay(
        window,
        cold,
        seconds,
        _ticks(done.stdout),
        len(entries),
        dict(Counter(entry["function"] for entry in entries)),
        sum(float(entry["duration_seconds"]) for entry in entries),
    )


def _ticks(output: str) -> int:
    """The ticks the runner reports in its last words: "Stopped after N tick(s), ..."."""
    for line in reversed(output.splitlines()):
        if line.startswith("Stopped after "):
            return int(line.split()[2])
    return 0


@dataclass(frozen=True)
class LocalReplayFigure:
    warm: Replay
    cold: Replay  # the same window
    week: Replay | None  # the whole week, warm; None with --quick
    idle: Replay  # the fixed cost of a replay, warm

    @property
    def ratio_beyond_fixed(self) -> float:
        """The ratio of what the two replays spend beyond the fixed cost of any replay."""
        fixed = self.idle.seconds
        return (self.cold.seconds - fixed) / max(1e-9, self.warm.seconds - fixed)

    @property
    def ratio(self) -> float:
        """How many times longer the cold replay takes than the warm one, wall clock."""
        return self.cold.seconds / self.warm.seconds

    @property
    def invocation_ratio(self) -> float:
        return self.cold.invocation_seconds / self.warm.invocation_seconds

    @property
    def same_work(self) -> bool:
        return self.warm.by_function == self.cold.by_function


def measure(
    *, quick: bool, done: Callable[[Replay], None] = lambda replay: None
) -> LocalReplayFigure:
    """Both sides on the same window, then (unless ``quick``) the week warm; ``done`` hears of
    each replay as it ends, since the whole takes minutes."""
    window = QUICK if quick else DAY
    # Warm first: a cold disk cache (bytecode, DynamoDB Local's jar) then slows the side
    # expected to be fast, not the baseline.
    sides = []
    for cold in (False, True):
        sides.append(replay(window, cold=cold))
        done(sides[-1])
    week = None
    if not quick:
        week = replay(WEEK, cold=False)
        done(week)
    idle = replay(IDLE, cold=False)
    done(idle)
    return LocalReplayFigure(sides[0], sides[1], week, idle)


def report(
    *, quick: bool, say: Callable[[str], None]
) -> list[tuple[str, str, str, float, str, bool]]:
    """Measure, say what was measured, and give the rows of `make bench`'s table (figure,
    cronfleet, baseline, ratio, target, passed)."""
    window = QUICK if quick else DAY
    say(
        f"\n5. local replay: template.yaml, {window.label}, `cronfleet run --speed max`, "
        "warm workers vs --cold"
        + ("" if quick else f"; then {WEEK.label} warm (cold, most of half an hour)")
    )

    def done(side: Replay) -> None:
        functions = ", ".join(f"{name} {n}" for name, n in sorted(side.by_function.items()))
        say(
            f"  {side.mode} {side.window.label}: {side.seconds:6.1f} s wall, {side.ticks} ticks, "
            f"{side.invocations} invocations of {side.mean_invocation_ms:.0f} ms ({functions})"
        )

    figure = measure(quick=quick, done=done)
    if figure.week is not None:
        say(
            f"  a cold week, estimated as 7 cold Mondays (not measured): "
            f"{figure.cold.seconds * 7 / 60:.0f} min, against {figure.week.seconds / 60:.1f} "
            "min warm"
        )
    if not figure.same_work:
        say("  NOTE: the two sides ran different invocations; the ratio compares unlike work")
    say(
        f"  wall ratio {figure.ratio:.2f}x. Both sides also pay what warm workers do not change: "
        f"{figure.idle.seconds:.1f} s for any replay (start, apply, stop), and the dispatcher's "
        f"ticks against DynamoDB Local. Beyond the fixed cost {figure.ratio_beyond_fixed:.2f}x; "
        f"inside the invocations {figure.invocation_ratio:.1f}x"
    )
    return [
        (
            f"local replay, {window.label}",
            f"{figure.warm.seconds:.1f} s warm",
            f"{figure.cold.seconds:.1f} s --cold",
            figure.ratio,
            f">= {TARGET:g}x",
            figure.ratio >= TARGET and figure.same_work,
        ),
        (
            f"  its {figure.warm.invocations} invocations",
            f"{figure.warm.mean_invocation_ms:.0f} ms each warm",
            f"{figure.cold.mean_invocation_ms:.0f} ms each",
            figure.invocation_ratio,
            f">= {TARGET:g}x",
            figure.invocation_ratio >= TARGET and figure.same_work,
        ),
    ]
