# The document's table rows are one line each, and its arithmetic is written with the multiplication sign.
# ruff: noqa: E501, RUF001
"""Generate docs/costs.md from what was measured and what is assumed.

Inputs: benchmarks/results/run_cost.json (figure 7 of `make bench`: DynamoDB's own units per
run and per tick, Lambda invocations and SNS publishes per run) and scripts/cost_inputs.toml
(prices, the task mix, the stack's configuration, the assumptions, and figure 6's busy minute).
The whole document is written, prose included, so that it can only change by changing an
input: tests/unit/test_costs_doc.py regenerates it and compares.

    python scripts/costs.py            # write docs/costs.md
    python scripts/costs.py --check    # exit 1 if docs/costs.md is not what the inputs give
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ROOT / "scripts" / "cost_inputs.toml"
RESULTS = ROOT / "benchmarks" / "results" / "run_cost.json"
DOCUMENT = ROOT / "docs" / "costs.md"
MINUTES_PER_HOUR = 60
SECONDS_PER_MONTH_HOUR = 3600


# --- the inputs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """What a run and a tick cost, from figure 7 (benchmarks/run_cost.py)."""

    success_table_writes: float
    success_index_writes: float
    success_transaction_index_writes: float
    success_reads: float
    failed_table_writes: float
    failed_index_writes: float
    failed_transaction_index_writes: float
    failed_reads: float
    tick_writes: float
    tick_reads: float
    tick_empty_queries: float
    success_invocations: float
    failed_invocations: float
    success_recorder: float
    failed_recorder: float
    success_sns: float
    failed_sns: float
    deploy_writes: float  # a redeploy, per task
    deploy_reads: float
    hours: float
    tasks: int
    runs: dict[str, int]
    steps: dict[str, dict[str, float]]
    reported: dict[str, Any]
    alerts: dict[str, int]  # SNS publishes of the replayed day, by kind

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measured:
        ok, failed = data["per_run"]["successful"], data["per_run"]["failed"]
        tick = data["per_idle_tick"]
        update = data["deploy_per_task"]["update"]
        return cls(
            success_table_writes=ok["table_writes"],
            success_index_writes=ok["index_writes"],
            success_transaction_index_writes=ok["transaction_index_writes"],
            success_reads=ok["reads"],
            failed_table_writes=failed["table_writes"],
            failed_index_writes=failed["index_writes"],
            failed_transaction_index_writes=failed["transaction_index_writes"],
            failed_reads=failed["reads"],
            tick_writes=tick["table_writes"] + tick["index_writes"],
            tick_reads=tick["reads"],
            tick_empty_queries=tick["empty_queries"],
            success_invocations=data["lambda_per_run"]["successful"]["task_invocations"],
            failed_invocations=data["lambda_per_run"]["failed"]["task_invocations"],
            success_recorder=data["lambda_per_run"]["successful"]["recorder_invocations"],
            failed_recorder=data["lambda_per_run"]["failed"]["recorder_invocations"],
            success_sns=data["sns_per_run"]["successful"],
            failed_sns=data["sns_per_run"]["failed"],
            deploy_writes=update["table_writes"] + update["index_writes"],
            deploy_reads=update["reads"],
            hours=data["hours"],
            tasks=data["tasks"],
            runs=data["runs"],
            steps=data["steps"],
            reported=data["dynamodb_local_reports"],
            alerts=data["sns_by_kind"],
        )


@dataclass(frozen=True)
class Inputs:
    raw: dict[str, Any]
    measured: Measured

    @property
    def prices(self) -> dict[str, Any]:
        return dict(self.raw["prices"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.raw["config"])

    @property
    def assume(self) -> dict[str, Any]:
        return dict(self.raw["assumptions"])

    @property
    def busy(self) -> dict[str, Any]:
        return dict(self.raw["busy_minute"])

    def with_config(self, **changes: Any) -> Inputs:
        raw = {**self.raw, "config": {**self.raw["config"], **changes}}
        return replace(self, raw=raw)


def load(inputs: Path = INPUTS, results: Path = RESULTS) -> Inputs:
    raw = tomllib.loads(inputs.read_text())
    return Inputs(raw, Measured.from_json(json.loads(results.read_text())))


# --- the model ---------------------------------------------------------------------------------


def ticks_a_month(inputs: Inputs) -> float:
    return float(inputs.raw["month"]["hours"] * MINUTES_PER_HOUR)


def runs_per_task(inputs: Inputs) -> float:
    minutes = ticks_a_month(inputs)
    return float(sum(mix["share"] * minutes / mix["period_minutes"] for mix in inputs.raw["mix"]))


def metric_months_per_task(inputs: Inputs) -> float:
    """Each run metric of a task is billed for the hours in which it had data."""
    hours = inputs.raw["month"]["hours"]
    minutes = ticks_a_month(inputs)
    share_of_hours = sum(
        mix["share"] * min(1.0, minutes / mix["period_minutes"] / hours)
        for mix in inputs.raw["mix"]
    )
    return float(inputs.assume["run_metrics_with_data"] * share_of_hours)


def metric_cost(metric_months: float, tiers: list[list[float]]) -> tuple[float, list[str]]:
    cost, left, parts = 0.0, metric_months, []
    for size, price in tiers:
        used = min(left, size)
        if used <= 0:
            break
        cost += used * price
        parts.append(f"{number(used, 1 if used < 1000 else 0)} × ${price:.2f}")
        left -= used
    return cost, parts


@dataclass(frozen=True)
class PerRun:
    """A run's cost, blended over successful and failed runs by the failed-run share."""

    writes: float
    reads: float
    invocations: float
    recorder: float
    publishes: float


def per_run(inputs: Inputs) -> PerRun:
    m, share = inputs.measured, inputs.assume["failed_run_share"]
    standard = inputs.config["transaction_index_rate"] == "standard"

    def writes(table: float, index: float, transaction_index: float) -> float:
        # Billed at the standard rate, a transaction's index copies cost half what Local reports.
        return table + index - (transaction_index / 2 if standard else 0.0)

    ok = writes(m.success_table_writes, m.success_index_writes, m.success_transaction_index_writes)
    failed = writes(m.failed_table_writes, m.failed_index_writes, m.failed_transaction_index_writes)

    def blend(a: float, b: float) -> float:
        return float((1 - share) * a + share * b)

    return PerRun(
        writes=blend(ok, failed),
        reads=blend(m.success_reads, m.failed_reads),
        invocations=blend(m.success_invocations, m.failed_invocations),
        recorder=blend(m.success_recorder, m.failed_recorder),
        publishes=blend(m.success_sns, m.failed_sns),
    )


def tick_reads(inputs: Inputs) -> float:
    m = inputs.measured
    return float(m.tick_reads + m.tick_empty_queries * inputs.config["empty_query_rru"])


@dataclass(frozen=True)
class Line:
    item: str
    arithmetic: str
    dollars: float


@dataclass(frozen=True)
class Fleet:
    tasks: int
    runs: float
    ticks: float
    lines: list[Line]
    metrics_on_line: Line
    metrics_off_line: Line
    xray_every: float  # the X-Ray line if every run were traced

    @property
    def total(self) -> float:
        return sum(line.dollars for line in self.lines)

    @property
    def per_million_runs(self) -> float:
        return self.total / self.runs * 1e6

    def line(self, item: str) -> Line:
        return next(line for line in self.lines if line.item.startswith(item))


def gb_seconds(count: float, seconds: float, memory_gb: float) -> float:
    return count * seconds * memory_gb


def lambda_line(
    inputs: Inputs,
    item: str,
    count_text: str,
    count: float,
    seconds: float,
    memory_gb: float,
    *,
    seconds_format: str = "g",
    gb_s_digits: int = 0,
) -> Line:
    """A function's requests and GB-seconds: ``count`` invocations of ``seconds`` each."""
    p = inputs.prices
    gb_s = gb_seconds(count, seconds, memory_gb)
    return Line(
        item,
        f"{count_text} × ${p['lambda_requests_per_million']:.2f}/M + {number(count)} × "
        f"{seconds:{seconds_format}} s × {memory_gb:g} GB = {number(gb_s, gb_s_digits)} GB-s × "
        f"${price(p['lambda_gb_second'])}",
        count * p["lambda_requests_per_million"] / 1e6 + gb_s * p["lambda_gb_second"],
    )


def fleet(inputs: Inputs, fleet_inputs: dict[str, Any]) -> Fleet:
    p, a, c = inputs.prices, inputs.assume, inputs.config
    tasks = fleet_inputs["tasks"]
    ticks = ticks_a_month(inputs)
    runs = tasks * runs_per_task(inputs)
    run = per_run(inputs)
    lines: list[Line] = []
    lines.append(
        Line(
            "EventBridge Scheduler",
            f"{number(ticks)} ticks × ${p['scheduler_per_million']:.2f}/M",
            ticks * p["scheduler_per_million"] / 1e6,
        )
    )
    tick_seconds = a["dispatcher_seconds_per_tick"] + a["dispatcher_seconds_per_run"] * runs / ticks
    invocations = runs * run.invocations
    recorder = runs * run.recorder
    lines += [
        lambda_line(
            inputs,
            "Lambda: dispatcher",
            number(ticks),
            ticks,
            round(tick_seconds, 2),
            a["dispatcher_memory_gb"],
            seconds_format=".2f",
        ),
        lambda_line(
            inputs,
            "Lambda: task invocations (wrapper only)",
            f"{number(runs)} runs × {run.invocations:.3f} = {number(invocations)}",
            invocations,
            a["task_wrapper_seconds"],
            a["task_memory_gb"],
        ),
        lambda_line(
            inputs,
            "Lambda: recorder",
            f"{number(runs)} runs × {run.recorder:.4f} = {number(recorder)}",
            recorder,
            a["recorder_seconds"],
            a["recorder_memory_gb"],
            gb_s_digits=1,
        ),
    ]
    deploys = tasks * a["deploys_per_month"]
    m = inputs.measured
    writes = runs * run.writes + ticks * m.tick_writes + deploys * m.deploy_writes
    lines.append(
        Line(
            "DynamoDB writes",
            f"{number(runs)} runs × {run.writes:.2f} + {number(ticks)} ticks × "
            f"{m.tick_writes:g} + {number(deploys)} task deploys × {m.deploy_writes:g} = "
            f"{number(writes)} WRU × ${p['dynamodb_write_per_million']}/M",
            writes * p["dynamodb_write_per_million"] / 1e6,
        )
    )
    reads = runs * run.reads + ticks * tick_reads(inputs) + deploys * m.deploy_reads
    lines.append(
        Line(
            "DynamoDB reads",
            f"{number(runs)} × {run.reads:.2f} + {number(ticks)} × {tick_reads(inputs):g} + "
            f"{number(deploys)} × {m.deploy_reads:g} = {number(reads)} RRU × "
            f"${p['dynamodb_read_per_million']}/M",
            reads * p["dynamodb_read_per_million"] / 1e6,
        )
    )
    storage = storage_gb(inputs, tasks, runs)
    lines.append(
        Line(
            "DynamoDB storage and PITR",
            f"{storage:.2f} GB × (${p['dynamodb_storage_gb_month']:.2f} + "
            f"${p['dynamodb_pitr_gb_month']:.2f})",
            storage * (p["dynamodb_storage_gb_month"] + p["dynamodb_pitr_gb_month"]),
        )
    )
    metrics_off = metrics_line(inputs, tasks, per_task=False)
    metrics_on = metrics_line(inputs, tasks, per_task=True)
    lines.append(metrics_on if c["per_task_metrics"] else metrics_off)
    lines.append(
        Line(
            "CloudWatch alarms",
            f"{a['alarm_metrics']} alarm metrics × ${p['alarm_metric_month']:.2f}",
            a["alarm_metrics"] * p["alarm_metric_month"],
        )
    )
    dashboards = 1 if c["dashboard"] else 0
    lines.append(
        Line(
            "CloudWatch dashboard",
            f"{dashboards} × ${p['dashboard_month']:.2f}"
            + ("" if dashboards else f" (`Dashboard=true`: ${p['dashboard_month']:.2f})"),
            dashboards * p["dashboard_month"],
        )
    )
    log_kb = a["log_kb_per_invocation"] + (
        a["log_kb_per_run_metrics"] if c["per_task_metrics"] else 0.0
    )
    logs_gb = (ticks * a["log_kb_per_tick"] + (invocations + recorder) * log_kb) / 1e6
    lines.append(
        Line(
            "CloudWatch Logs",
            f"({number(ticks)} × {a['log_kb_per_tick']:g} KB + {number(invocations + recorder)}"
            f" × {log_kb:g} KB) = {logs_gb:.2f} GB × (${p['logs_ingested_gb']:.2f} + "
            f"${p['logs_stored_gb_month']:.2f})",
            logs_gb * (p["logs_ingested_gb"] + p["logs_stored_gb_month"]),
        )
    )
    xray = xray_line(inputs, runs, recorder)
    lines.append(xray)
    publishes = runs * run.publishes
    emails = publishes * fleet_inputs["alert_emails_per_publish"]
    lines.append(
        Line(
            "SNS",
            f"{number(runs)} runs × {run.publishes:.4f} = {number(publishes)} publishes × "
            f"${p['sns_publishes_per_million']:.2f}/M + {number(emails)} emails × "
            f"${p['sns_emails_per_100k']:.2f}/100k",
            publishes * p["sns_publishes_per_million"] / 1e6
            + emails * p["sns_emails_per_100k"] / 1e5,
        )
    )
    lines.append(
        Line(
            "KMS",
            f"{a['kms_keys']} key × ${p['kms_key_month']:.2f}",
            a["kms_keys"] * p["kms_key_month"],
        )
    )
    lines.append(Line("SQS dead-letter queue", "idle", 0.0))
    every = xray_line(inputs.with_config(trace_sample_rate=1.0), runs, recorder).dollars
    return Fleet(tasks, runs, ticks, lines, metrics_on, metrics_off, every)


def storage_gb(inputs: Inputs, tasks: int, runs: float) -> float:
    a = inputs.assume
    kept = runs * a["history_days"] / (inputs.raw["month"]["hours"] / 24)
    return float((kept * a["history_kb_per_entry"] + tasks * a["task_item_kb"]) / 1e6)


def metrics_line(inputs: Inputs, tasks: int, *, per_task: bool) -> Line:
    a, p = inputs.assume, inputs.prices
    fleet_months = a["dispatcher_metric_months"] + a["run_metrics_with_data"]
    months = fleet_months + (tasks * metric_months_per_task(inputs) if per_task else 0.0)
    cost, parts = metric_cost(months, p["metric_tiers"])
    label = "CloudWatch custom metrics" + (", per-task on" if per_task else "")
    shown = number(months, 1 if months < 1000 else 0)
    return Line(label, f"{shown} metric-months: {' + '.join(parts)}", cost)


def xray_line(inputs: Inputs, runs: float, recorder: float) -> Line:
    """Traces: one per tick (DispatcherTracing=Active), the recorder's, and the traced runs."""
    c, p, m = inputs.config, inputs.prices, inputs.measured
    share = inputs.assume["failed_run_share"]
    ticks = ticks_a_month(inputs) if c["dispatcher_tracing"] == "Active" else 0
    rate = c["trace_sample_rate"]
    # A failed run's first attempt is sampled at the rate (its task may not be failing yet);
    # its retries always are.
    traced_per_run = (1 - share) * rate + share * (rate + max(0.0, m.failed_invocations - 1))
    traced_runs = runs * traced_per_run
    if c["traced_runs_join_tick"] and ticks:
        traces = ticks + recorder
        arithmetic = (
            f"{number(ticks)} ticks + {number(recorder)} recorder = {number(traces)} traces"
        )
    else:
        traces = ticks + recorder + traced_runs
        arithmetic = (
            f"{number(ticks)} ticks + {number(recorder)} recorder + {number(runs)} runs × "
            f"{traced_per_run:.4f} traced = {number(traces)} traces"
        )
    cost = traces * p["xray_per_million_traces"] / 1e6
    return Line("X-Ray", f"{arithmetic} × ${p['xray_per_million_traces']:.2f}/M", cost)


# --- the busy minute (figure 6) ------------------------------------------------------------------


@dataclass(frozen=True)
class BusyMinute:
    per_shard: int
    cpu_seconds: float
    waiting_seconds: float
    shard_seconds: float
    worker_gb_s: float
    worker_dollars: float
    partition_writes_per_second: float
    double_shards_seconds: float


def busy_minute(inputs: Inputs) -> BusyMinute:
    b, p = inputs.busy, inputs.prices
    per_shard = b["tasks"] // b["shards"]
    vcpus = min(1.0, b["worker_memory_mb"] / 1769)
    cpu = per_shard * b["cpu_ms_per_task"] / 1000 * b["lambda_cpu_slowdown"] / vcpus
    waiting = per_shard * (b["aws_claim_ms"] + b["invoke_ms"]) / 1000 / b["threads"]
    shard = b["worker_cold_start_seconds"] + round(max(cpu, waiting), 1)
    gb_s = b["shards"] * round(shard, 1) * b["worker_memory_mb"] / 1000
    half = per_shard // 2
    double = (
        b["worker_cold_start_seconds"]
        + half * b["cpu_ms_per_task"] / 1000 * b["lambda_cpu_slowdown"] / vcpus
    )
    return BusyMinute(
        per_shard=per_shard,
        cpu_seconds=cpu,
        waiting_seconds=waiting,
        shard_seconds=shard,
        worker_gb_s=gb_s,
        worker_dollars=gb_s * p["lambda_gb_second"],
        partition_writes_per_second=per_shard / cpu,
        double_shards_seconds=double,
    )


# --- formatting ----------------------------------------------------------------------------------


def number(value: float, decimals: int = 0) -> str:
    return f"{value:,.{decimals}f}"


def price(value: float) -> str:
    """A unit price as AWS writes it: 0.0000133334, never 1.33334e-05."""
    return f"{value:.10f}".rstrip("0").rstrip(".")


def money(value: float) -> str:
    return f"{value:,.2f}"


def rounded(value: float, to: int) -> str:
    """'about' figures: 3,612 -> 3,600 at to=100."""
    return number(round(value / to) * to)


# --- the document --------------------------------------------------------------------------------

WIDTH = 100


def reflow(text: str) -> str:
    """Wrap prose and list items at 100 columns, as the rest of docs/ is written; the figures
    put into sentences would otherwise leave them ragged. Headings, tables, comments and
    indented tables pass through."""
    out: list[str] = []
    paragraph: list[str] = []
    first, rest = "", ""

    def flush() -> None:
        nonlocal paragraph
        if paragraph:
            words = " ".join(line.strip() for line in paragraph)
            out.extend(
                textwrap.wrap(
                    words.removeprefix("- ") if first.endswith("- ") else words,
                    WIDTH,
                    initial_indent=first,
                    subsequent_indent=rest,
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            )
        paragraph = []

    for line in text.split("\n"):
        stripped = line.lstrip()
        margin = line[: len(line) - len(stripped)]
        if not stripped or stripped.startswith(("|", "#", "<!--")) or line.endswith("-->"):
            flush()
            out.append(line)
        elif stripped.startswith("- "):
            flush()
            first, rest = margin + "- ", margin + "  "
            paragraph = [line]
        else:
            if not paragraph:  # a paragraph of its own, at its own margin
                first = rest = margin
            paragraph.append(line)
    flush()
    return "\n".join(out)


def render(inputs: Inputs) -> str:
    default_on = bool(inputs.config["per_task_metrics"])
    on = inputs.with_config(per_task_metrics=True)
    off = inputs.with_config(per_task_metrics=False)
    fleets_on = [fleet(on, f) for f in inputs.raw["fleets"]]
    fleets_off = [fleet(off, f) for f in inputs.raw["fleets"]]
    # The totals follow the configuration; the other setting is shown beside them.
    fleets, others = (fleets_on, fleets_off) if default_on else (fleets_off, fleets_on)
    sections = [
        _summary(inputs, fleets, others, default_on),
        _prices(inputs),
        _assumptions(inputs),
        _one_run(inputs),
        *[
            _fleet_section(inputs, f, f_on, default_on)
            for f, f_on in zip(fleets, fleets_on, strict=True)
        ],
        _how_counted(inputs, fleets, fleets_on),
        _free_tier(inputs, fleets),
        _bringing_down(inputs, fleets_off, fleets_on),
        _not_included(inputs, fleets),
        _busy_minute(inputs),
        _limits(inputs),
        _comparison(inputs, fleets, others, default_on),
    ]
    text = "\n".join(section.rstrip("\n") + "\n" for section in sections)
    return reflow(text.replace("\n\n\n", "\n\n"))


def _summary(inputs: Inputs, fleets: list[Fleet], others: list[Fleet], on: bool) -> str:
    m = inputs.measured
    run = per_run(inputs)
    other = "off" if on else "on"
    rows = "\n".join(
        f"| {number(f.tasks)} | {number(f.runs)} | **${money(f.total)}** | "
        f"${money(f.per_million_runs)} | ${money(o.total)} |"
        for f, o in zip(fleets, others, strict=True)
    )
    big, big_other = fleets[-1], others[-1]
    setting = "on" if on else "off (the default)"
    writes = big.line("DynamoDB writes")
    share = writes.dollars / big.total
    following = sorted(
        (line for line in big.lines if line is not writes), key=lambda line: -line.dollars
    )[:2]
    next_lines = " and ".join(f"{line.item} at ${money(line.dollars)}" for line in following)
    return f"""# What cronfleet costs to run

<!-- Generated by scripts/costs.py from scripts/cost_inputs.toml and
benchmarks/results/run_cost.json: edit those and run `make cost`, not this file. -->

An estimate of the monthly AWS bill of a cronfleet stack in us-east-1, for fleets of 10, 100 and
10,000 tasks. It covers what cronfleet adds around your jobs: the tick, the dispatcher, the
ledger, the task wrapper's own work, alerts and monitoring. It does not cover the time your own
code runs (see [Not included](#not-included)).

| tasks | runs a month | total, list prices, no free tier | per million runs | with per-task metrics {other} |
| ---: | ---: | ---: | ---: | ---: |
{rows}

The DynamoDB units are measured: `make cost` replays {m.hours:g} simulated hours of a mixed
fleet of {m.tasks} tasks on DynamoDB Local with the real engine and sums the capacity DynamoDB
reports for every call (figure 7 of `make bench`, `benchmarks/run_cost.py`); a run costs
{run.writes:.2f} write units and {run.reads:.2f} read units on average. Durations, log volumes
and the share of failing runs are assumptions, stated below, so each line can be checked and
redone with your own numbers in `scripts/cost_inputs.toml`.

**What dominates.** With per-task metrics {setting}, DynamoDB writes:
${money(writes.dollars)} of the ${money(big.total)} at 10,000 tasks ({share:.0%}), then
{next_lines}. At 10 tasks most of the bill is fixed: the alarms
(${money(big.line("CloudWatch alarms").dollars)}), the custom metrics
(${money(big.line("CloudWatch custom metrics").dollars)}) and the KMS key ($1); the dashboard
(`Dashboard=true`) would add ${money(inputs.prices["dashboard_month"])}. Per-task metrics
(`PerTaskMetrics=true`) cost $0.30 a metric-month each; with them {other}, the 10,000-task bill is
${money(big_other.total)}. See [Bringing the cost down](#bringing-the-cost-down).
"""


def _prices(inputs: Inputs) -> str:
    p = inputs.prices
    tiers = p["metric_tiers"]
    return f"""## Prices used

us-east-1 list prices as of 2026, without discounts or free tier. AWS changes prices; check the
pricing pages before relying on a figure.

| service | price |
| --- | --- |
| EventBridge Scheduler | ${p["scheduler_per_million"]:.2f} per million invocations (14 million free a month) |
| Lambda, arm64 | ${p["lambda_requests_per_million"]:.2f} per million requests; ${price(p["lambda_gb_second"])} per GB-second |
| DynamoDB on-demand | ${p["dynamodb_write_per_million"]} per million write request units (WRU); ${p["dynamodb_read_per_million"]} per million read request units (RRU) |
| DynamoDB storage | ${p["dynamodb_storage_gb_month"]:.2f} per GB-month; point-in-time recovery ${p["dynamodb_pitr_gb_month"]:.2f} per GB-month |
| CloudWatch custom metrics | ${tiers[0][1]:.2f} per metric-month for the first {number(tiers[0][0])}, ${tiers[1][1]:.2f} for the next {number(tiers[1][0])}, ${tiers[2][1]:.2f} for the next {number(tiers[2][0])}, ${tiers[3][1]:.2f} above; billed by the hour, only for hours in which the metric received data |
| CloudWatch alarms | ${p["alarm_metric_month"]:.2f} per standard-resolution alarm metric per month |
| CloudWatch dashboards | ${p["dashboard_month"]:.2f} per dashboard per month |
| CloudWatch Logs | ${p["logs_ingested_gb"]:.2f} per GB ingested; ${p["logs_stored_gb_month"]:.2f} per GB-month stored |
| X-Ray | ${p["xray_per_million_traces"]:.2f} per million traces recorded (first 100,000 a month free) |
| SNS | ${p["sns_publishes_per_million"]:.2f} per million publishes; ${p["sns_emails_per_100k"]:.2f} per 100,000 email deliveries |
| KMS | ${p["kms_key_month"]:.2f} per customer-managed key per month; ${p["kms_per_10k_requests"]:.2f} per 10,000 requests |
| SQS | ${p["sqs_per_million"]:.2f} per million requests |
"""


def _assumptions(inputs: Inputs) -> str:
    a, c = inputs.assume, inputs.config
    ticks = ticks_a_month(inputs)
    minutes = ticks
    mix_rows = "\n".join(
        f"  | {mix['schedule']} | {mix['share']:.0%} | "
        f"{_runs_shown(minutes / mix['period_minutes'])} |"
        for mix in inputs.raw["mix"]
    )
    terms = " + ".join(
        f"{mix['share']:.2f} × {_runs_shown(minutes / mix['period_minutes'])}"
        for mix in inputs.raw["mix"]
    )
    ticks_traced = c["dispatcher_tracing"] == "Active"
    if not ticks_traced:
        join = "each traced run is a trace of its own: the dispatcher's ticks are not traced"
    elif c["traced_runs_join_tick"]:
        join = "each traced run joins the tick's trace, so a tick is one trace"
    else:
        join = (
            "each traced run is counted as a trace of its own, an upper bound: a traced run "
            "joins the tick's trace when the dispatcher's invocation was sampled, which with "
            "one invocation a minute under Lambda's reservoir of one a second it nearly always "
            "is; then a tick and its traced runs are one trace"
        )
    dispatcher = (
        "the dispatcher and its workers are traced (`DispatcherTracing=Active`: Lambda samples "
        "one invocation a second, so every tick is), and so are"
        if ticks_traced
        else "the dispatcher and its workers are not (`DispatcherTracing=PassThrough`, the "
        "default: Active would trace every tick, one a minute); traced are"
    )
    return f"""## Assumptions

- **A month** is {inputs.raw["month"]["hours"]} hours: {number(minutes)} minutes, so **{number(ticks)} dispatcher ticks**.
- **The task mix**, by share of tasks:

  | schedule | share | runs per task a month |
  | --- | ---: | ---: |
{mix_rows}

  That is {terms} = **{runs_per_task(inputs):,.1f} runs per task a month**.
- **Failures**: {a["failed_run_share"]:.0%} of runs fail at least one attempt (and are retried, or
  end failed). Their measured cost, retries, recorder invocations and alerts included, is
  blended in at that share.
- **Memory** is the template's: {a["dispatcher_memory_gb"] * 1024:.0f} MB for the dispatcher,
  {a["task_memory_gb"] * 1024:.0f} MB (the `Globals` value) for task functions and the recorder.
  All arm64.
- **Dispatcher duration**: {a["dispatcher_seconds_per_tick"]:g} s per tick, plus
  {a["dispatcher_seconds_per_run"] * 1000:g} ms of wall-clock time per run it dispatches (about
  40 to 50 ms of DynamoDB and Lambda calls per run, 32 in parallel). Estimated, not measured on
  AWS.
- **Task wrapper overhead**: {a["task_wrapper_seconds"]:g} s per invocation at
  {a["task_memory_gb"] * 1024:.0f} MB: the wrapper's DynamoDB calls plus a share of cold starts
  (runs of tasks that run every 15 minutes or less often, about 12% of runs in this mix, are
  assumed to start cold, at about 0.8 s each; Lambda bills the init phase). The recorder:
  {a["recorder_seconds"]:g} s per invocation.
- **Per-task metrics** are {"on" if c["per_task_metrics"] else "off"} in the totals
  (`PerTaskMetrics`, off by default); the other setting is shown beside every total.
- **X-Ray**: {dispatcher} the stack's other functions (`Tracing: Active`, a few invocations a
  day); a task run is traced when the dispatcher says so:
  every retry, every run of a failing task, and `TraceSampleRate` ({c["trace_sample_rate"]:g})
  of the rest. Here {join}.
- **Logs**: about {a["log_kb_per_tick"]:g} KB per tick (the `Tick dispatched` line, one EMF line,
  Lambda's `START`/`END`/`REPORT`) and about {a["log_kb_per_invocation"]:g} KB per invocation
  (Lambda's three lines, the wrapper's and the fleet's EMF run metrics, with some headroom);
  {a["log_kb_per_run_metrics"]:g} KB more per run with per-task metrics on. Your own log lines
  come on top. Stored for the default {a["log_retention_days"]} days; storage is counted on the
  uncompressed size, an upper bound.
- **History**: ledger entries are kept {a["history_days"]} days (`HistoryRetentionDays`), about
  {a["history_kb_per_entry"]:g} KB each with DynamoDB's per-item overhead; a task item is about
  {a["task_item_kb"]:g} KB.
- **Deploys**: {a["deploys_per_month"]} a month, each of which rewrites every task item (the
  registry's `Update`, measured).
- **Alerts**: every SNS publish is delivered to one email subscription.
"""


def _runs_shown(value: float) -> str:
    if value >= 100:
        return number(value)
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _one_run(inputs: Inputs) -> str:
    m, c = inputs.measured, inputs.config
    rows = []
    for name, units in m.steps.items():
        writes = units["table_writes"] + units["index_writes"]
        rows.append(
            f"| {name} | {number(units['calls'])} | {number(units['table_writes'], 1)} | "
            f"{number(units['index_writes'], 1)} | {number(units['reads'], 1)} |"
            if writes or units["reads"] or units["calls"]
            else ""
        )
    table = "\n".join(row for row in rows if row)
    ok_w = m.success_table_writes + m.success_index_writes
    failed_w = m.failed_table_writes + m.failed_index_writes
    ok_std = ok_w - m.success_transaction_index_writes / 2
    runs = m.runs
    skipped = runs.get("skipped", 0)
    skipped_text = (
        f", and {skipped:,} slots were skipped by the overlap policy while a retry of the slot "
        "before was still due (what recording them cost is counted in the failed runs' figures)"
        if skipped
        else ""
    )
    alerts_text = (
        ", ".join(f"{n:,} `{kind}`" for kind, n in sorted(m.alerts.items())) if m.alerts else "none"
    )
    reported = m.reported
    operations = ", ".join(f"`{op}`" for op in reported["operations_reporting_units"])
    index_ops = ", ".join(f"`{op}`" for op in reported["operations_reporting_index_units"])
    errors = reported["errors_without_units"]
    error_text = ", ".join(f"{n:,} `{name}`" for name, n in errors.items()) if errors else "none"
    # The registry makes sure ticks read every due partition on each deploy; once they do,
    # that write's condition fails by design.
    why_errors = (
        " (the registry's check of the due partitions on each deploy, refused once done)"
        if errors and all(name.startswith("registry UpdateItem") for name in errors)
        else ""
    )
    rate = (
        "at the transactional rate, as Local reports them"
        if c["transaction_index_rate"] == "transactional"
        else "at the standard rate (half what Local reports)"
    )
    return f"""## What one run costs in DynamoDB

Measured, not counted by hand: `make cost` (figure 7 of `make bench`, `benchmarks/run_cost.py`)
replays {m.hours:g} simulated hours of {m.tasks} tasks in the mix above on DynamoDB Local, with
the real dispatcher, watchdog, task wrapper, recorder, alerter and registry. Every DynamoDB
client they use asks for `ReturnConsumedCapacity=INDEXES`, and the units each answer reports
are added up per step and per run (the task and slot the request names). Some runs fail and
are retried, some time out and reach the recorder, one task fails every attempt until its
retries run out. The day had {runs["successful"]:,} runs that succeeded at their first attempt
and {runs["failed"]:,} that failed or were retried{skipped_text}; its alerts were {alerts_text}.

| per run | write units (WRU) | of which index copies | read units (RRU) |
| --- | ---: | ---: | ---: |
| a successful run | {ok_w:.2f} | {m.success_index_writes:.2f} | {m.success_reads:.2f} |
| a failed or retried run | {failed_w:.2f} | {m.failed_index_writes:.2f} | {m.failed_reads:.2f} |
| an idle tick | {m.tick_writes:g} | 0 | {m.tick_reads:g} reported, {tick_reads(inputs):g} billed |

Both sharded indexes are keys-only: the dispatcher and the watchdog read the items they find by
key (`BatchGetItem`, strongly consistent), so a run's end, which rewrites the task's counters,
writes nothing to the due index, and a run's start, which keeps the in-flight index key, writes
nothing to the in-flight index. A run's read units include its share of the due-index queries
and item reads that found it. Per run, a
successful one is {m.success_invocations:g} task invocation; a failed one
{m.failed_invocations:.2f} task invocations, {m.failed_recorder:.2f} recorder invocations and
{m.failed_sns:.2f} SNS publishes on average (a successful run: {m.success_sns:.4f}). A
redeploy writes {m.deploy_writes:g} WRU and reads {m.deploy_reads:g} RRU
per task.

The day's units by step (all runs and ticks together):

| role / step | calls | table WRU | index WRU | RRU |
| --- | ---: | ---: | ---: | ---: |
{table}

**What DynamoDB Local reports.** It returned capacity for every {operations} call, and index
units for {index_ops}: a write that changes an item writes its copy in each index that holds
it, and one that changes the index key is reported as a delete and a put
(`tests/integration/test_run_cost.py` checks this for `PutItem`, `UpdateItem`, `DeleteItem`,
`BatchWriteItem` and `TransactWriteItems` too). Three things it does not report, and how they
are handled here:

- **Index copies written by a transaction** are reported at the transactional rate, 2 units a
  KB, like the table's. The totals count them {rate}; at the standard rate a successful run
  would cost {ok_std:.2f} WRU instead of {ok_w:.2f} (`transaction_index_rate`).
- **A Query that finds nothing** is reported as 0 units; DynamoDB bills each request at least
  {c["empty_query_rru"]:g} RRU. An idle tick makes {m.tick_empty_queries:g} such queries (8 on the
  due index, 4 on the in-flight index), so it is billed {tick_reads(inputs):g} RRU.
- **A write refused by its condition** comes back as an error without `ConsumedCapacity`,
  though DynamoDB bills it. The replay had {error_text}, not counted{why_errors}.
"""


def _fleet_section(inputs: Inputs, f: Fleet, f_on: Fleet, default_on: bool) -> str:
    per_tick = f.runs / f.ticks
    if f.tasks >= 10_000:
        intro = (
            f"{number(f.runs)} runs a month, about {number(per_tick)} per tick on average; far "
            "more at minute 0 of each hour, when the 5-minute, 15-minute and hourly tasks all "
            "come due together."
        )
    else:
        intro = f"{number(f.runs)} runs a month, about {per_tick:.1f} per tick."
    rows = "\n".join(f"| {ln.item} | {ln.arithmetic} | {money(ln.dollars)} |" for ln in f.lines)
    other = f.metrics_off_line if default_on else f.metrics_on_line
    other_total = f_on.total if not default_on else f.total - f.metrics_on_line.dollars
    other_name = "off" if default_on else "on"
    return f"""## {number(f.tasks)} tasks

{intro}

| item | arithmetic | $/month |
| --- | --- | ---: |
{rows}
| **total** | | **{money(f.total)}** |
| per million runs | ${money(f.total)} / {number(f.runs)} runs × 1,000,000 | {money(f.per_million_runs)} |

With per-task metrics {other_name}: {other.arithmetic} = ${money(other.dollars)}, and more log
volume; total **${money(other_total)}**, ${money(other_total / f.runs * 1e6)} per million runs.
"""


def _how_counted(inputs: Inputs, fleets: list[Fleet], fleets_on: list[Fleet]) -> str:
    a = inputs.assume
    per_task = metric_months_per_task(inputs)
    big_on = fleets_on[-1]
    full, _ = metric_cost(
        a["dispatcher_metric_months"] + a["run_metrics_with_data"] + 4 * fleets[-1].tasks,
        inputs.prices["metric_tiers"],
    )
    hours = inputs.raw["month"]["hours"]
    return f"""### How the lines were counted

- **Custom metrics.** The dispatcher publishes `DispatcherHeartbeat` every minute and `Invoked`
  whenever a tick invoked something (every hour in this mix): {a["dispatcher_metric_months"]:g}
  metric-months. Its other counts (`InvokeFailures`, `MissedTicks`, `ShardsHandedOff`,
  `TicksClamped`, `ShardContinuations`) are sent only when they are not zero, so they are billed
  only for the hours in which something went wrong or a tick was busy, and are left out here. Every run publishes the fleet's
  `RunSucceeded` and `RunDuration` (`RunFailed` and `RunTimedOut` when it fails), without a task
  dimension: {a["run_metrics_with_data"]} more metric-months, `RunFailed` and `RunTimedOut`
  having data only in hours with failures and left out. With `PerTaskMetrics=true` each task
  publishes the same with a `task` dimension. A task that runs at least hourly has data in every
  hour, so its two metrics cost a full month each; a daily task's have data in about 30 of
  {hours} hours, a weekly task's in about 4: {per_task:.3f} metric-months per task. If every
  per-task metric were billed for the full month, all four of them, it would be
  ${money(full)} a month at {number(fleets[-1].tasks)} tasks instead of
  ${money(big_on.metrics_on_line.dollars)}.
- **Alarms.** `template.yaml` defines {a["alarms"]} alarms, some of which add up several
  metrics with metric math; one alarm metric is counted per metric they read:
  {a["alarm_metrics"]}. Counted per alarm it would be ${money(a["alarms"] * inputs.prices["alarm_metric_month"])}
  instead of ${money(a["alarm_metrics"] * inputs.prices["alarm_metric_month"])}.
- **DynamoDB.** The units per run, per tick and per deploy are figure 7's (see
  [What one run costs](#what-one-run-costs-in-dynamodb)), blended over successful and failed runs.
- **DynamoDB storage.** Entries kept {a["history_days"]} days: runs a month ×
  {a["history_days"]}/30.4 × {a["history_kb_per_entry"]:g} KB, plus {a["task_item_kb"]:g} KB per
  task item. PITR is billed on the table size.
- **KMS.** The key has automatic rotation on; AWS adds $1 a month after the first rotation and
  another after the second, so the key costs $1 the first year, $2 the second, $3 from the third.
  Its requests (SNS encrypting alerts) are a few thousand a month, under a cent. The tables use
  the AWS managed key, which has no monthly fee.
- **SQS.** The dead-letter queue receives messages only when ticks cannot be delivered.
"""


FREE = {
    "lambda_requests": 1_000_000,
    "lambda_gb_s": 400_000,
    "metrics": 10,
    "alarms": 10,
    "logs_gb": 5,
    "traces": 100_000,
    "emails": 1_000,
    "publishes": 1_000_000,
    "storage_gb": 25,
}


def free_tier_total(inputs: Inputs, f: Fleet) -> float:
    """The bill after the always-free allowances, line by line."""
    p, a = inputs.prices, inputs.assume
    run = per_run(inputs)
    invocations = f.ticks + f.runs * (run.invocations + run.recorder)
    tick_seconds = round(
        a["dispatcher_seconds_per_tick"] + a["dispatcher_seconds_per_run"] * f.runs / f.ticks, 2
    )
    gb_s = (
        f.ticks * tick_seconds * a["dispatcher_memory_gb"]
        + f.runs * run.invocations * a["task_wrapper_seconds"] * a["task_memory_gb"]
        + f.runs * run.recorder * a["recorder_seconds"] * a["recorder_memory_gb"]
    )
    lam = max(0.0, invocations - FREE["lambda_requests"]) * p["lambda_requests_per_million"] / 1e6
    lam += max(0.0, gb_s - FREE["lambda_gb_s"]) * p["lambda_gb_second"]
    scheduler = max(0.0, f.ticks - 14_000_000) * p["scheduler_per_million"] / 1e6
    metrics_months = a["dispatcher_metric_months"] + a["run_metrics_with_data"]
    if inputs.config["per_task_metrics"]:
        metrics_months += f.tasks * metric_months_per_task(inputs)
    metrics, _ = metric_cost(max(0.0, metrics_months - FREE["metrics"]), p["metric_tiers"])
    alarms = max(0, a["alarm_metrics"] - FREE["alarms"]) * p["alarm_metric_month"]
    logs = f.line("CloudWatch Logs")
    logs_gb = logs.dollars / (p["logs_ingested_gb"] + p["logs_stored_gb_month"])
    logs_cost = max(0.0, logs_gb - FREE["logs_gb"]) * p["logs_ingested_gb"] + (
        logs_gb * p["logs_stored_gb_month"]
    )
    traces = f.line("X-Ray").dollars / p["xray_per_million_traces"] * 1e6
    xray = max(0.0, traces - FREE["traces"]) * p["xray_per_million_traces"] / 1e6
    publishes = f.runs * run.publishes
    sns = max(0.0, publishes - FREE["publishes"]) * p["sns_publishes_per_million"] / 1e6
    sns += max(0.0, publishes - FREE["emails"]) * p["sns_emails_per_100k"] / 1e5
    storage = storage_gb(inputs, f.tasks, f.runs)
    ddb_storage = max(0.0, storage - FREE["storage_gb"]) * p["dynamodb_storage_gb_month"]
    ddb_storage += storage * p["dynamodb_pitr_gb_month"]
    return float(
        scheduler
        + lam
        + f.line("DynamoDB writes").dollars
        + f.line("DynamoDB reads").dollars
        + ddb_storage
        + metrics
        + alarms
        + logs_cost
        + xray
        + sns
        + f.line("KMS").dollars
    )


def _free_tier(inputs: Inputs, fleets: list[Fleet]) -> str:
    totals = [free_tier_total(inputs, f) for f in fleets]
    listed = ", ".join(
        f"${money(t)} at {number(f.tasks)} tasks (instead of ${money(f.total)})"
        for f, t in zip(fleets, totals, strict=True)
    )
    return f"""### Free tier

The always-free allowances (1 million Lambda requests and 400,000 GB-seconds, 14 million
Scheduler invocations, 10 custom metrics, 10 alarm metrics, 3 dashboards of up to 50 metrics,
5 GB of logs, 100,000 X-Ray traces, 1 million SNS publishes and 1,000 emails, 25 GB of DynamoDB
storage) bring the bill to {listed}. Within them, `Dashboard=true` costs nothing either, for an
account with fewer than three other dashboards. DynamoDB on-demand requests have no free tier.
Free-tier terms depend on the account and its age.
"""


def _bringing_down(inputs: Inputs, fleets: list[Fleet], fleets_on: list[Fleet]) -> str:
    small, mid, big = fleets
    metrics_saving = [on.total - off.total for on, off in zip(fleets_on, fleets, strict=True)]
    xray = big.line("X-Ray")
    joining = (
        " If traced runs join the tick's trace on your bill (see the assumption above), it is"
        " lower still."
        if inputs.config["dispatcher_tracing"] == "Active"
        else ""
    )
    return f"""## Bringing the cost down

- **Per-task metrics.** Off by default (`PerTaskMetrics`): every run still publishes the fleet's
  `RunSucceeded`, `RunFailed`, `RunTimedOut` and `RunDuration`, the failures alarm watches them,
  and each task's numbers stay on its item in the tasks table (the fleet widget,
  `cronfleet status`, the weekly digest). Turned on, they add ${money(metrics_saving[2])} a month
  at {number(big.tasks)} tasks, ${money(metrics_saving[1])} at {number(mid.tasks)} and
  ${money(metrics_saving[0])} at {number(small.tasks)}.
- **Tracing.** Task functions are traced only when the dispatcher asks (`TraceSampleRate`, and
  always for retries and failing tasks). The X-Ray line is ${money(xray.dollars)} at
  {number(big.tasks)} tasks; tracing every run (`TraceSampleRate=1`) would make it
  ${money(big.xray_every)}.{joining}
- **DynamoDB.** {_where_units_go(inputs)}
- **Schedules.** Tasks that do not need to run every minute are the cheapest saving of all: a
  per-minute task makes 43,800 runs a month, an hourly one 730.
"""


def _per_call(m: Measured, step: str) -> tuple[float, float]:
    """Table and index write units per call of a step of the replayed day."""
    units = m.steps[step]
    return units["table_writes"] / units["calls"], units["index_writes"] / units["calls"]


def _where_units_go(inputs: Inputs) -> str:
    """A successful run's write units, step by step, and what is left to cut."""
    m = inputs.measured
    claim, start, finish = (
        _per_call(m, step) for step in ("dispatcher / claim", "wrapper / start", "wrapper / finish")
    )
    ok_w = m.success_table_writes + m.success_index_writes
    return f"""A successful run costs {ok_w:.2f} write units: the claim
  {claim[0]:.2f} + {claim[1]:.2f} (a transaction of the task and its ledger entry, each under
  1 KB at 2 units, then the due-index key moving and the in-flight entry added), the start
  {start[0]:.2f} + {start[1]:.2f}, and the end {finish[0]:.2f} + {finish[1]:.2f} (a transaction
  of the entry and the task's counters, then the in-flight entry removed). The two transactions
  are where exactly-once lives: the claim advances the task only if its version is the one
  planned on and gives the slot its entry only if it has none, and the end moves the counters
  and frees the task for its next run only if the attempt is still the one in flight. Together
  they are {claim[0] + finish[0]:.0f} units of table writes that no projection or item size can lower; each would have
  to become two single writes, with a repair for a crash between them, to go under 10 units a
  run. Keys-only indexes and a start that keeps the index key took a successful run from 20 to
  {ok_w:.2f} units; a traceback is written once beside its execution, so a failing task's
  retries do not rewrite it."""


def _not_included(inputs: Inputs, fleets: list[Fleet]) -> str:
    a, p = inputs.assume, inputs.prices
    per_second = a["task_memory_gb"] * p["lambda_gb_second"]
    big = fleets[-1]
    return f"""## Not included

- **Your code's run time**: ${per_second:.7f} per second at {a["task_memory_gb"] * 1024:.0f} MB
  ({a["task_memory_gb"]:g} GB × ${price(p["lambda_gb_second"])}). At {number(big.tasks)} tasks, every
  second of average run time adds ${number(big.runs * per_second)} a month.
- **Secrets** for HTTP tasks: Secrets Manager charges $0.40 per secret a month and $0.05 per
  10,000 calls; the HTTP caller caches a secret for 5 minutes per Lambda instance.
- **Data transfer** out of AWS, for HTTP tasks that send large bodies.
- **The weekly digest**: one query per task over a week of its ledger, a few cents a month at
  100 tasks. At 10,000 tasks it would have to read about 16 million entries within its
  300-second timeout; as written it would very likely time out.
- **Logs Insights** queries: the dashboard's "Recent failures" widget scans the stack's log group
  for the dashboard's time range each time it loads, at $0.005 per GB scanned.
"""


def _busy_minute(inputs: Inputs) -> str:
    b, p = inputs.busy, inputs.prices
    bm = busy_minute(inputs)
    run = per_run(inputs)
    tasks = b["tasks"]
    writes = tasks * run.writes
    reads = tasks * run.reads
    invocations = tasks * run.invocations
    task_gb_s = (
        invocations * inputs.assume["task_wrapper_seconds"] * inputs.assume["task_memory_gb"]
    )
    lambda_dollars = (
        invocations * p["lambda_requests_per_million"] / 1e6 + task_gb_s * p["lambda_gb_second"]
    )
    publishes = tasks * run.publishes
    sns = (
        publishes * p["sns_publishes_per_million"] / 1e6
        + publishes * p["sns_emails_per_100k"] / 1e5
    )
    write_dollars = writes * p["dynamodb_write_per_million"] / 1e6
    read_dollars = reads * p["dynamodb_read_per_million"] / 1e6
    total = bm.worker_dollars + write_dollars + read_dollars + lambda_dollars + sns
    doubled = tasks // (b["shards"] * 2)
    return f"""## A busy minute: {number(tasks)} tasks due at once

A tick with more than 200 due tasks is handed to the dispatch workers, one per shard of the due
index (`DispatchShards`, {b["shards"]} by default), each claiming and invoking only its shard.
`make bench` (figure 6, `benchmarks/fanout.py`) measures it against DynamoDB Local: {number(tasks)}
tasks due in one minute, each worker with its {b["threads"]} threads and a Lambda client whose
every `Invoke` takes {b["invoke_ms"]} ms and answers 202, through botocore in full (so its CPU
counts). Measured on 2 CPUs (Intel Xeon):

| | measured |
| --- | ---: |
| the dispatcher: open the tick, read each partition's first page, hand off {b["shards"]} shards | {b["dispatcher_open_ms"]} ms |
| tasks per shard | {number(bm.per_shard)} |
| wall time per shard here (DynamoDB Local shares the two cores) | {b["shard_wall_seconds_min"]} to {b["shard_wall_seconds_max"]} s, median {b["shard_wall_seconds_median"]} s |
| CPU per task, all of it in the worker | {b["cpu_ms_per_task"]:.2f} ms |
| of which reading the due tasks | {b["reads_cpu_ms_per_task"]:.2f} ms |
| of which the claim (one `TransactWriteItems`) | {b["claim_cpu_ms_per_task"]:.2f} ms |
| of which the `Invoke` | {b["invoke_cpu_ms_per_task"]:.2f} ms |

Almost all of it is botocore and the HTTP stack, one request for the claim and one for the
invoke; cronfleet's own planning and records are a few hundredths of a millisecond. The cuts
behind these figures: claims start on the first page of the due index rather than after every
page is read; the store's and the invoker's clients skip botocore's client-side parameter
validation (about 0.1 ms a request: DynamoDB and Lambda validate anyway, and every request is
built by code); the envelope is built from values already validated, not validated again; a
claim writes the task's partition only when it changes; slot times are formatted and parsed
with `isoformat`/`fromisoformat` instead of `strftime`/`strptime`.

**Projected for Lambda.** A worker has {number(b["worker_memory_mb"])} MB, one whole vCPU; Python
uses one core at most, so more memory would not make it faster, and less would cost the same per
task, only slower.

| step | arithmetic | seconds |
| --- | --- | ---: |
| CPU, with a Lambda vCPU assumed up to {b["lambda_cpu_slowdown"] - 1:.0%} slower than a core here | {number(bm.per_shard)} × {b["cpu_ms_per_task"]:.2f} ms × {b["lambda_cpu_slowdown"]:g} / 1.00 vCPU | {bm.cpu_seconds:.1f} |
| waiting, overlapped by {b["threads"]} threads | {number(bm.per_shard)} × ({b["aws_claim_ms"]} ms claim + {b["invoke_ms"]} ms invoke) / {b["threads"]} | {bm.waiting_seconds:.1f} |
| a shard: cold start plus the larger of the two | {b["worker_cold_start_seconds"]:g} + {max(bm.cpu_seconds, bm.waiting_seconds):.1f} | **{bm.shard_seconds:.1f}** |

The shards run at once, so the minute's {number(tasks)} tasks are claimed and invoked about
{bm.shard_seconds:.0f} s after the tick, within the {b["claiming_window_seconds"]} s each worker
claims for before handing the rest to a continuation. The {b["aws_claim_ms"]} ms claim, the
{b["lambda_cpu_slowdown"] - 1:.0%} slower vCPU and the {b["worker_cold_start_seconds"]:g} s cold
start are assumptions, not measurements; on AWS the dashboard's "Dispatcher and worker duration
and errors" shows the real figure.

**DynamoDB's partition limits.** Each claim updates the task's due-index entry, in its shard's
partition: {number(bm.per_shard)} writes in about {bm.cpu_seconds:.0f} s is about
{rounded(bm.partition_writes_per_second, 10)} a second, under DynamoDB's
{number(b["partition_writes_per_second"])} write units a second per partition. At
{b["shards"] * 2} shards the same minute is {number(doubled)} per shard, about
{bm.double_shards_seconds:.0f} s.

**What a busy minute costs**, with the measured units per run:

| item | arithmetic | $ |
| --- | --- | ---: |
| the workers | {b["shards"]} × {bm.shard_seconds:.1f} s × {b["worker_memory_mb"] / 1000:.3f} GB = {number(bm.worker_gb_s)} GB-s × ${price(p["lambda_gb_second"])} | {bm.worker_dollars:.4f} |
| DynamoDB writes | {number(tasks)} runs × {run.writes:.2f} = {number(writes)} WRU × ${p["dynamodb_write_per_million"]}/M | {write_dollars:.4f} |
| DynamoDB reads | {number(tasks)} runs × {run.reads:.2f} = {number(reads)} RRU × ${p["dynamodb_read_per_million"]}/M | {read_dollars:.4f} |
| Lambda: task invocations (wrapper only) | {number(invocations)} × ${p["lambda_requests_per_million"]:.2f}/M + {number(task_gb_s)} GB-s × ${price(p["lambda_gb_second"])} | {lambda_dollars:.4f} |
| SNS | {number(publishes, 1)} publishes and emails | {sns:.4f} |
| **total** | | **{total:.4f}** |

The {b["shards"]} worker invocations are a fraction of a cent; the runs themselves, their ledger
writes above all, are what a busy minute costs.
"""


def _limits(inputs: Inputs) -> str:
    return """## At 10,000 tasks, cost is not the only limit

- CloudFormation accepts at most 500 resources per template, and each task is one
  `Custom::ScheduledTask` (a task function adds its role and invoke config). A fleet
  this size is declared across several stacks that share the registry's `ServiceToken`, and the
  dispatcher may invoke only functions named with this stack's prefix, so such tasks would be
  mostly `Http` tasks run by the built-in caller.
- In this mix, up to 8,000 tasks come due at minute 0 of every hour (1,000 per-minute, 2,000
  five-minute and 2,000 fifteen-minute tasks, and the 3,000 hourly ones if they run at minute
  0). The dispatch workers claim and invoke them within seconds (see
  [A busy minute](#a-busy-minute-100000-tasks-due-at-once)), so their runs start together,
  against a default quota of 1,000 concurrent executions per account: spread the schedules
  with `H` (`H * * * *` runs hourly at a minute of the task's own; `cronfleet preview
  template.yaml --herd` shows the busiest minutes), or raise the quota.
- The dashboard's per-task graphs show at most 500 tasks (CloudWatch's `SEARCH` limit).
"""


def _comparison(inputs: Inputs, fleets: list[Fleet], others: list[Fleet], on: bool) -> str:
    p = inputs.prices
    scheduler = [f.runs * p["scheduler_per_million"] / 1e6 for f in fleets]
    big, big_other = fleets[-1], others[-1]
    other = "off" if on else "on"
    return f"""## Compared with the alternatives

The seeds' teams came from these. Figures are list prices for the scheduling itself; the jobs'
own compute is extra in every case.

| option | 10 tasks | 100 tasks | 10,000 tasks | what you get |
| --- | ---: | ---: | ---: | --- |
| cronfleet | ${money(fleets[0].total)} | ${money(fleets[1].total)} | ${money(big.total)} | ledger, retries, overlap, catch-up, alerts, audit; ${money(big_other.total)} at 10,000 with per-task metrics {other} |
| EventBridge Scheduler alone, one schedule per task | ${money(scheduler[0])} | ${money(scheduler[1])} | ${money(scheduler[2])} | invocations only; the first 14 million a month are free |
| Vercel cron on Pro | $20 per member | $20 per member | not practical | a capped number of cron jobs per project; the invocations are function usage |
| cron-job.org | free | free | fair use | HTTP calls only, 30-second request timeout, one-minute minimum interval |
| t4g.nano VM with crontab | about $7.40 | about $7.40 | a bigger VM | one machine: $3.07 instance + $0.64 for 8 GB gp3 + $3.65 for a public IPv4 address |

- **EventBridge Scheduler alone** costs $1 per million invocations and nothing else. It gives
  no run history beyond Lambda's logs and metrics, no retries of a failed job beyond Lambda's
  two asynchronous retries, no overlap control, no alert on a task that starts failing, and in
  a spring-forward gap it skips the run. Every alarm you add to get alerts costs $0.10 a month.
- **Vercel cron** is billed as part of the Pro plan, $20 per member a month, with the number of
  cron jobs per project capped by plan; the seed team on the free plan had 2, and ran ten tasks
  in sequence from one hourly route. Schedules are in UTC. Vercel's documentation now marks
  cron jobs as a legacy feature moving to Vercel Schedules; check its current prices and
  limits.
- **cron-job.org** is free and keeps a history of responses and emails on failure, but calls
  only public URLs, gives up after 30 seconds, and has no retries with backoff, no overlap
  control and no catch-up.
- **A t4g.nano with crontab** is about $7.40 a month ($0.0042 an hour × 730, 8 GB of gp3 at
  $0.08, and $0.005 an hour for its public IPv4 address). It is one machine: when it is down
  or restarting, runs are missed and nothing records or reports it. At 10,000 tasks (a
  thousand `wget` processes starting every minute) you would size the machine up.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/costs.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--inputs", type=Path, default=INPUTS)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--output", type=Path, default=DOCUMENT)
    arguments = parser.parse_args(argv)
    text = render(load(arguments.inputs, arguments.results))
    if arguments.check:
        if arguments.output.read_text() != text:
            print(f"{arguments.output} is not what the inputs give: run `make cost`")
            return 1
        return 0
    arguments.output.write_text(text)
    print(f"wrote {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
