"""docs/costs.md is generated: it must be exactly what its inputs give, and its arithmetic must
agree with a hand computation of one line of each kind.

The hand computations below use their own measured figures (round numbers, not the committed
JSON's) and pin every assumption they depend on, so they check the formulas, not the inputs of
the day.
"""

from __future__ import annotations

import copy

import pytest

from scripts import costs

MEASURED = {
    "hours": 24,
    "tasks": 20,
    "ticks": 1440,
    "runs": {"successful": 1000, "failed": 20, "skipped": 0, "unfinished": 0},
    "per_run": {
        "successful": {
            "table_writes": 9.0,
            "index_writes": 11.0,
            "transaction_table_writes": 8.0,
            "transaction_index_writes": 10.0,
            "reads": 1.5,
            "calls": 4.0,
            "empty_queries": 0.0,
        },
        "failed": {
            "table_writes": 17.0,
            "index_writes": 20.0,
            "transaction_table_writes": 15.0,
            "transaction_index_writes": 18.0,
            "reads": 3.3,
            "calls": 8.0,
            "empty_queries": 0.0,
        },
    },
    "per_idle_tick": {
        "table_writes": 1.0,
        "index_writes": 0.0,
        "transaction_table_writes": 0.0,
        "transaction_index_writes": 0.0,
        "reads": 0.0,
        "calls": 13.0,
        "empty_queries": 12.0,
    },
    "per_busy_tick": {"writes": 1.0, "reads_beyond_due_items": 0.0},
    "lambda_per_run": {
        "successful": {"task_invocations": 1.0, "recorder_invocations": 0.0},
        "failed": {"task_invocations": 2.0, "recorder_invocations": 0.25},
    },
    "sns_per_run": {"successful": 0.0, "failed": 0.3},
    "sns_by_kind": {"TIMED_OUT": 6},
    "deploy_per_task": {
        "create": {"table_writes": 2.0, "index_writes": 2.0, "reads": 2.0},
        "update": {"table_writes": 2.0, "index_writes": 2.0, "reads": 2.0},
    },
    "steps": {},
    "dynamodb_local_reports": {
        "operations_reporting_units": {"GetItem": 1},
        "operations_reporting_index_units": {"Query": 1},
        "errors_without_units": {},
    },
}

# 0.10 * 43,800 + 0.20 * 8,760 + 0.20 * 2,920 + 0.30 * 730 + 0.15 * 43,800/1,440
# + 0.05 * 43,800/10,080, by hand.
RUNS_PER_TASK = 4380 + 1752 + 584 + 219 + 4.5625 + 0.217262
TICKS = 43_800


@pytest.fixture
def inputs() -> costs.Inputs:
    committed = costs.load()
    raw = copy.deepcopy(committed.raw)
    raw["config"].update(
        per_task_metrics=False,
        trace_sample_rate=0.05,
        traced_runs_join_tick=False,
        transaction_index_rate="transactional",
        empty_query_rru=0.5,
        dispatcher_tracing="Active",
        dashboard=False,
    )
    raw["assumptions"].update(
        failed_run_share=0.02,
        deploys_per_month=4,
        dispatcher_seconds_per_tick=0.30,
        dispatcher_seconds_per_run=0.0015,
        dispatcher_memory_gb=0.5,
        task_wrapper_seconds=0.25,
        task_memory_gb=0.25,
        log_kb_per_tick=1.5,
        log_kb_per_invocation=1.5,
        log_kb_per_run_metrics=0.5,
        dispatcher_metric_months=5.1,
        run_metrics_with_data=2,
        history_days=90,
        history_kb_per_entry=0.5,
        task_item_kb=2.0,
    )
    return costs.Inputs(raw, costs.Measured.from_json(MEASURED))


def fleet_of(inputs: costs.Inputs, tasks: int) -> costs.Fleet:
    return costs.fleet(inputs, {"tasks": tasks, "alert_emails_per_publish": 1})


def test_the_committed_document_is_what_its_inputs_give() -> None:
    # given the committed inputs and measurement, when the document is regenerated
    text = costs.render(costs.load())
    # then it is the committed file, byte for byte: edit the inputs and run `make cost`
    assert text == costs.DOCUMENT.read_text()


def test_runs_a_month_follow_the_mix(inputs: costs.Inputs) -> None:
    assert costs.runs_per_task(inputs) == pytest.approx(RUNS_PER_TASK, rel=1e-7)
    assert fleet_of(inputs, 10).runs == pytest.approx(10 * RUNS_PER_TASK, rel=1e-7)


def test_dynamodb_writes_blend_the_measured_runs_and_add_ticks_and_deploys(
    inputs: costs.Inputs,
) -> None:
    runs = 10 * RUNS_PER_TASK
    per_run = 0.98 * (9 + 11) + 0.02 * (17 + 20)  # 20.34
    units = runs * per_run + TICKS * 1 + 10 * 4 * 4
    line = fleet_of(inputs, 10).line("DynamoDB writes")
    assert line.dollars == pytest.approx(units * 0.625 / 1e6, rel=1e-6)
    assert "69,398 runs \u00d7 20.34" in line.arithmetic


def test_transaction_index_copies_at_the_standard_rate_cost_half(inputs: costs.Inputs) -> None:
    standard = inputs.with_config(transaction_index_rate="standard")
    per_run = 0.98 * (20 - 10 / 2) + 0.02 * (37 - 18 / 2)  # 15.26
    assert costs.per_run(standard).writes == pytest.approx(per_run)


def test_dynamodb_reads_bill_empty_queries_at_the_minimum(inputs: costs.Inputs) -> None:
    runs = 100 * RUNS_PER_TASK
    units = runs * (0.98 * 1.5 + 0.02 * 3.3) + TICKS * (12 * 0.5) + 100 * 4 * 2
    line = fleet_of(inputs, 100).line("DynamoDB reads")
    assert line.dollars == pytest.approx(units * 0.125 / 1e6, rel=1e-6)


def test_the_dispatcher_line_grows_with_the_runs_per_tick(inputs: costs.Inputs) -> None:
    # 69,397,798 runs / 43,800 ticks = 1,584.4 a tick: 0.30 + 1.5 ms * 1,584.4 = 2.68 s
    gb_seconds = TICKS * 2.68 * 0.5
    expected = TICKS * 0.20 / 1e6 + gb_seconds * 0.0000133334
    line = fleet_of(inputs, 10_000).line("Lambda: dispatcher")
    assert line.dollars == pytest.approx(expected, rel=1e-6)
    assert "58,692 GB-s" in line.arithmetic


def test_task_invocations_count_the_retries(inputs: costs.Inputs) -> None:
    invocations = 100 * RUNS_PER_TASK * (0.98 * 1 + 0.02 * 2)
    expected = invocations * 0.20 / 1e6 + invocations * 0.25 * 0.25 * 0.0000133334
    line = fleet_of(inputs, 100).line("Lambda: task invocations")
    assert line.dollars == pytest.approx(expected, rel=1e-6)


def test_metrics_off_are_the_dispatchers_and_the_fleets(inputs: costs.Inputs) -> None:
    line = fleet_of(inputs, 10_000).line("CloudWatch custom metrics")
    assert line.dollars == pytest.approx((5.1 + 2) * 0.30)


def test_per_task_metrics_are_billed_by_the_tier_for_the_hours_with_data(
    inputs: costs.Inputs,
) -> None:
    # 80% of tasks have data every hour; daily ones 30.42 of 730 hours, weekly ones 4.35
    per_task = 2 * (0.80 + 0.15 * (43_800 / 1_440) / 730 + 0.05 * (43_800 / 10_080) / 730)
    months = 5.1 + 2 + 10_000 * per_task
    expected = 10_000 * 0.30 + (months - 10_000) * 0.10
    line = costs.metrics_line(inputs, 10_000, per_task=True)
    assert line.dollars == pytest.approx(expected, rel=1e-9)


def test_xray_counts_ticks_the_recorder_and_the_sampled_runs(inputs: costs.Inputs) -> None:
    runs = 100 * RUNS_PER_TASK
    traced = 0.98 * 0.05 + 0.02 * (0.05 + 1)  # retries are always traced
    traces = TICKS + runs * 0.02 * 0.25 + runs * traced
    line = fleet_of(inputs, 100).line("X-Ray")
    assert line.dollars == pytest.approx(traces * 5.00 / 1e6, rel=1e-6)


def test_xray_counts_no_ticks_when_the_dispatcher_is_not_traced(inputs: costs.Inputs) -> None:
    runs = 100 * RUNS_PER_TASK
    traced = 0.98 * 0.05 + 0.02 * (0.05 + 1)
    traces = runs * 0.02 * 0.25 + runs * traced  # the recorder's, and the sampled runs
    passthrough = inputs.with_config(dispatcher_tracing="PassThrough")
    line = fleet_of(passthrough, 100).line("X-Ray")
    assert line.dollars == pytest.approx(traces * 5.00 / 1e6, rel=1e-6)
    assert line.arithmetic.startswith("0 ticks + ")


def test_the_dashboard_is_billed_only_when_the_stack_has_one(inputs: costs.Inputs) -> None:
    off = fleet_of(inputs, 10)
    on = fleet_of(inputs.with_config(dashboard=True), 10)
    assert off.line("CloudWatch dashboard").dollars == 0.0
    assert on.line("CloudWatch dashboard").dollars == 3.00
    assert on.total == pytest.approx(off.total + 3.00)


def test_logs_count_ticks_and_every_invocation(inputs: costs.Inputs) -> None:
    runs = 10 * RUNS_PER_TASK
    invocations = runs * 1.02 + runs * 0.005
    gb = (TICKS * 1.5 + invocations * 1.5) / 1e6
    line = fleet_of(inputs, 10).line("CloudWatch Logs")
    assert line.dollars == pytest.approx(gb * (0.50 + 0.03), rel=1e-6)


def test_storage_keeps_ninety_days_of_entries(inputs: costs.Inputs) -> None:
    runs = 10 * RUNS_PER_TASK
    gb = (runs * 90 / (730 / 24) * 0.5 + 10 * 2.0) / 1e6
    line = fleet_of(inputs, 10).line("DynamoDB storage")
    assert line.dollars == pytest.approx(gb * 0.45, rel=1e-6)


def test_sns_publishes_and_emails_follow_the_failed_runs(inputs: costs.Inputs) -> None:
    publishes = 10_000 * RUNS_PER_TASK * 0.02 * 0.3
    line = fleet_of(inputs, 10_000).line("SNS")
    assert line.dollars == pytest.approx(publishes * 0.50 / 1e6 + publishes * 2.00 / 1e5, rel=1e-6)


def test_the_total_and_the_cost_per_million_runs(inputs: costs.Inputs) -> None:
    fleet = fleet_of(inputs, 100)
    assert fleet.total == pytest.approx(sum(line.dollars for line in fleet.lines))
    assert fleet.per_million_runs == pytest.approx(fleet.total / (100 * RUNS_PER_TASK) * 1e6)


def test_the_busy_minute_projection(inputs: costs.Inputs) -> None:
    minute = costs.busy_minute(inputs)
    assert minute.per_shard == 12_500
    assert minute.cpu_seconds == pytest.approx(12_500 * 1.895 / 1000 * 1.25)  # 29.6 s
    assert minute.waiting_seconds == pytest.approx(12_500 * 0.030 / 32)  # 11.7 s
    assert minute.shard_seconds == pytest.approx(30.6)
    assert minute.worker_dollars == pytest.approx(8 * 30.6 * 1.769 * 0.0000133334)
