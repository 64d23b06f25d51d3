"""`make bench`: the performance figures of docs/architecture.md, side by side with their
baselines, in one run against one DynamoDB Local. Exits 1 when a figure misses its target.

1. Reads per tick: 100,000 registered tasks, 100 due; what ``Store.due_tasks`` reads.
2. Dispatch: 10,000 due tasks in one tick, ``Dispatcher`` with a no-op invoker, against a bare
   boto3 loop doing the same writes with the same parallelism.
3. Cold start: importing the dispatcher's handler module, against ``import boto3`` alone.
4. Schedules API: creating 10,000 schedules (1,000 per tenant) and listing one tenant's 1,000,
   against bare boto3 writes and index queries of the same items (benchmarks/schedules.py).
5. Local replay: the sample template replayed by `cronfleet run --speed max` with warm function
   workers, against ``--cold`` (a process per invocation), same window (benchmarks/local_replay.py).
6. Fan-out: 100,000 due tasks over the dispatch shards, each shard by a worker whose every
   Invoke takes 20 ms; CPU per task, and each shard's time projected for Lambda
   (benchmarks/fanout.py, the arithmetic in docs/costs.md).
7. Run cost: a simulated day of a mixed fleet, DynamoDB's reported units per run and per tick,
   written to benchmarks/results/run_cost.json for docs/costs.md (benchmarks/run_cost.py).

Performance is measured here, never in timed tests. ``--quick`` uses smaller numbers for a
smoke run; the default is the design's numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from botocore.config import Config

from benchmarks import cold_start, dispatch, fanout, local_replay, schedules
from cronfleet.dispatch.service import MAX_PARALLEL
from cronfleet_tools.local.dynamodb_local import DynamoDBLocal, DynamoDBLocalError


@dataclass(frozen=True)
class Sizes:
    registered: int = 100_000
    due: int = 100
    dispatched: int = 10_000
    import_runs: int = 21  # import times are noisy on a shared machine: a wider median
    schedules: int = 10_000
    per_tenant: int = 1_000
    fanned_out: int = 100_000


FULL = Sizes()
QUICK = Sizes(
    registered=10_000,
    due=100,
    dispatched=1_000,
    import_runs=7,
    schedules=1_000,
    per_tenant=200,
    fanned_out=8_000,
)

# The targets, as docs/architecture.md states them.
READS_PER_DUE_TARGET = 2.0  # "on the order of 100 items, not 100,000": at most 2 per due task
DISPATCH_TARGET = 1.1
# Each shard's projected time on Lambda, within what one worker invocation claims for.
FANOUT_TARGET_SECONDS = fanout.CLAIMING_WINDOW_SECONDS
COLD_START_TARGET = 1.5
# A create validates, reads the task and the tenant's counter, writes, and reads back: four
# calls where the bare side makes one. A list decodes every item into a record.
SCHEDULE_CREATE_TARGET = 4.0
SCHEDULE_LIST_TARGET = 2.0


@dataclass(frozen=True)
class Row:
    figure: str
    cronfleet: str
    baseline: str
    ratio: float
    target: str
    passed: bool


def say(line: str = "") -> None:
    print(line, flush=True)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smaller numbers ({QUICK.registered:,} registered, {QUICK.dispatched:,} dispatched)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed runs of each dispatch side (default 3)"
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=MAX_PARALLEL,
        help=f"dispatch workers on both sides (default {MAX_PARALLEL}, the dispatcher's own)",
    )
    parser.add_argument(
        "--only",
        choices=[
            "reads",
            "dispatch",
            "cold-start",
            "schedules",
            "local-replay",
            "fanout",
            "run-cost",
        ],
        action="append",
        help="run only this figure (repeatable)",
    )
    arguments = parser.parse_args(argv)
    if arguments.rounds < 3:
        parser.error("--rounds must be at least 3: a median and a spread need three rounds")
    return arguments


def reads_row(reads: dispatch.TickReads) -> Row:
    ratio = reads.items_read / reads.due
    say(
        f"  registered {reads.registered:,} tasks in {reads.seed_seconds:.1f} s "
        f"({reads.registered / reads.seed_seconds:,.0f} tasks/s, BatchWriteItem)"
    )
    say(
        f"  due_tasks: {reads.found} tasks found, {reads.items_read} items read, "
        f"{reads.queries} queries, {reads.seconds * 1000:.0f} ms"
    )
    return Row(
        "reads per tick",
        f"{reads.items_read:,} items, {reads.queries} queries",
        f"{reads.due:,} due of {reads.registered:,}",
        ratio,
        f"<= {READS_PER_DUE_TARGET:g}x due",
        ratio <= READS_PER_DUE_TARGET and reads.found == reads.due,
    )


def dispatch_row(result: dispatch.Throughput) -> Row:
    for label, runs in (("cronfleet", result.cronfleet), ("boto3", result.baseline)):
        median = result.median(runs)
        cpu = statistics.median(run.cpu_seconds for run in runs)
        say(
            f"  {label:<9} median {median:6.2f} s = {result.tasks / median:6.0f} tasks/s; "
            f"Python CPU {cpu:5.1f} s ({cpu / result.tasks * 1000:.2f} ms/task); "
            f"runs: {', '.join(f'{run.seconds:.2f}' for run in runs)}"
        )
    ratios = result.round_ratios
    say(
        f"  per round, cronfleet/boto3: {', '.join(f'{r:.2f}x' for r in ratios)}; median "
        f"{result.ratio:.2f}x, spread {min(ratios):.2f}x to {max(ratios):.2f}x"
    )
    return Row(
        f"dispatch {result.tasks:,} due",
        f"{result.median(result.cronfleet):.2f} s",
        f"{result.median(result.baseline):.2f} s bare boto3",
        result.ratio,
        f"<= {DISPATCH_TARGET:g}x (median of rounds)",
        result.ratio <= DISPATCH_TARGET,
    )


def fanout_row(result: fanout.Fanout) -> Row:
    projection = result.projection()
    say(
        f"  CPU per task {result.cpu_ms_per_task:.2f} ms: reading the due tasks "
        f"{result.reads_cpu_ms_per_task:.2f} ms, the claim {result.claims_only_cpu_ms:.2f} ms, "
        f"the Invoke the rest ({result.cpu_ms_per_task - result.claims_only_cpu_ms:.2f} ms)"
    )
    say(
        f"  here: slowest shard {result.slowest_shard_seconds:.1f} s, median "
        f"{result.median_shard_seconds:.1f} s ({result.invoked:,} invokes of 20 ms each)"
    )
    for line in projection.lines():
        say(f"  {line}")
    return Row(
        f"fan-out {result.tasks:,} due, {result.shards} shards",
        f"{projection.shard_seconds:.1f} s a shard on Lambda",
        f"{FANOUT_TARGET_SECONDS:.0f} s a worker claims",
        projection.shard_seconds / FANOUT_TARGET_SECONDS,
        "<= 1x (within the minute)",
        projection.shard_seconds <= FANOUT_TARGET_SECONDS,
    )


def cold_start_row(result: cold_start.ColdStart) -> Row:
    if not result.handler_exists:
        say(
            f"  NOTE: functions/dispatcher/app.py does not exist yet; measuring "
            f"{cold_start.FALLBACK_MODULE} in its place"
        )
    for times in (result.candidate, result.baseline, result.floor):
        samples = ", ".join(f"{sample * 1000:.0f}" for sample in times.samples)
        say(
            f"  {times.subject.label:<28} median {times.median * 1000:5.0f} ms wall, "
            f"{times.cpu_median * 1000:5.0f} ms CPU  (wall runs: {samples})"
        )
    say(f"  ratio {result.ratio:.2f}x wall, {result.cpu_ratio:.2f}x CPU (a cross-check under load)")
    own = (result.candidate.median - result.floor.median) * 1000
    say(
        f"  of which the dependencies alone are {result.floor_ratio:.2f}x; cronfleet's own "
        f"modules add {own:.0f} ms"
    )
    return Row(
        "cold start (import)",
        f"{result.candidate.median * 1000:.0f} ms {result.candidate.subject.label}",
        f"{result.baseline.median * 1000:.0f} ms import boto3",
        result.ratio,
        f"<= {COLD_START_TARGET:g}x",
        result.ratio <= COLD_START_TARGET,
    )


def schedules_rows(figure: schedules.SchedulesFigure) -> list[Row]:
    say(
        f"  create: {figure.create_seconds:.2f} s ({figure.created / figure.create_seconds:,.0f}"
        f"/s) vs bare {figure.bare_create_seconds:.2f} s; list: {figure.list_seconds * 1000:.0f}"
        f" ms vs bare {figure.bare_list_seconds * 1000:.0f} ms"
    )
    return [
        Row(
            f"create {figure.created:,} schedules",
            f"{figure.create_seconds:.2f} s",
            f"{figure.bare_create_seconds:.2f} s bare boto3",
            figure.create_ratio,
            f"<= {SCHEDULE_CREATE_TARGET:g}x",
            figure.create_ratio <= SCHEDULE_CREATE_TARGET,
        ),
        Row(
            f"list a tenant's {figure.listed:,}",
            f"{figure.list_seconds * 1000:.0f} ms",
            f"{figure.bare_list_seconds * 1000:.0f} ms bare boto3",
            figure.list_ratio,
            f"<= {SCHEDULE_LIST_TARGET:g}x",
            figure.list_ratio <= SCHEDULE_LIST_TARGET,
        ),
    ]


def print_table(rows: list[Row]) -> None:
    headers = ("figure", "cronfleet", "baseline", "ratio", "target", "result")
    cells = [
        (
            r.figure,
            r.cronfleet,
            r.baseline,
            f"{r.ratio:.2f}x",
            r.target,
            "PASS" if r.passed else "FAIL",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [headers, *cells]) for i in range(len(headers))]
    for row in [headers, *cells]:
        say("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    sizes = QUICK if arguments.quick else FULL
    figures = set(
        arguments.only
        or ["reads", "dispatch", "cold-start", "schedules", "local-replay", "fanout", "run-cost"]
    )
    started = time.perf_counter()
    say(
        f"cronfleet bench: Python {platform.python_version()}, {os.cpu_count()} CPUs"
        + (" -- QUICK: smaller numbers than the design's" if arguments.quick else "")
    )
    rows: list[Row] = []

    if figures & {"reads", "dispatch", "schedules", "fanout", "run-cost"}:
        try:
            engine = DynamoDBLocal(in_memory=True).start()
        except DynamoDBLocalError as exc:
            say(f"cannot start DynamoDB Local: {exc}")
            return 2
        with engine:
            say(f"DynamoDB Local at {engine.endpoint_url} (in memory)")
            # As many pooled connections as workers: botocore's default of 10 would make the
            # workers of either side wait for a connection, and measure that instead.
            client = engine.client(Config(max_pool_connections=max(arguments.parallel, 10)))
            if "reads" in figures:
                say(f"\n1. reads per tick: {sizes.registered:,} registered, {sizes.due} due")
                rows.append(reads_row(dispatch.reads_per_tick(client, sizes.registered, sizes.due)))
            if "dispatch" in figures:
                say(
                    f"\n2. dispatch: {sizes.dispatched:,} due tasks, {arguments.parallel} "
                    "workers, no-op invoker; Dispatcher.tick vs a bare boto3 TransactWriteItems "
                    "loop, fresh tables per run"
                )
                throughput = dispatch.dispatch_throughput(
                    client, sizes.dispatched, arguments.parallel, arguments.rounds, say
                )
                rows.append(dispatch_row(throughput))
            if "schedules" in figures:
                say(
                    f"\n4. schedules API: create {sizes.schedules:,} ({sizes.per_tenant:,} per "
                    f"tenant), list one tenant's {sizes.per_tenant:,}; {arguments.parallel} "
                    "workers; ScheduleService vs bare boto3"
                )
                figure = schedules.measure(
                    client, sizes.schedules, sizes.per_tenant, arguments.parallel
                )
                rows += schedules_rows(figure)
            if "fanout" in figures:
                say(
                    f"\n6. fan-out: {sizes.fanned_out:,} due tasks over the dispatch shards, "
                    f"each shard by a worker of {arguments.parallel} threads, every Invoke 20 ms"
                )
                rows.append(fanout_row(fanout.measure(engine, sizes.fanned_out, say)))
            if "run-cost" in figures:
                from benchmarks import run_cost

                rows += [
                    Row(*row)
                    for row in run_cost.report(quick=arguments.quick, say=say, engine=engine)
                ]

    if "cold-start" in figures:
        say(f"\n3. cold start: import time, median of {sizes.import_runs} fresh interpreters")
        rows.append(cold_start_row(cold_start.cold_start(sizes.import_runs)))

    if "local-replay" in figures:
        rows += [Row(*row) for row in local_replay.report(quick=arguments.quick, say=say)]

    say(f"\nThe performance figures, measured in {time.perf_counter() - started:.0f} s:")
    print_table(rows)
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
