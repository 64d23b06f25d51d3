"""A week of the first seed's schedule, replayed by `cronfleet run` on a simulated clock.

The seed runs an hourly job, daily jobs at 02:00 and 09:00, and a weekly job on Sunday at 10:00.
Here they run in America/New_York over the week in which clocks spring forward (Sunday
2026-03-08, 02:00 EST becomes 03:00 EDT), so the counts are not those of a plain week:

- hourly: 7 x 24 local hours, less the hour that does not exist: 167 runs;
- daily 02:00: 7 runs; on the 8th 02:00 does not exist and, as in Vixie cron, the job runs at
  the first minute after the gap (03:00 EDT = 07:00Z);
- daily 09:00: 7; weekly Sunday 10:00: 1.

The command runs as a person runs it, in its own process; the ledger is read afterwards from
the DynamoDB Local data it left in its state directory, and audited with `cronfleet audit`.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from typer.testing import CliRunner

from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet.store import Store
from cronfleet_tools.cli.app import app
from cronfleet_tools.local.dynamodb_local import DynamoDBLocal
from cronfleet_tools.local.stack import TABLE_PREFIX
from cronfleet_tools.local.topic import read_journal
from cronfleet_tools.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
START = "2026-03-05T04:59Z"  # one minute before 00:00 EST on Thursday the 5th
UNTIL = "2026-03-12T03:59Z"  # 23:59 EDT on Wednesday the 11th
ZONE = "America/New_York"

# The two 09:00 runs that fail. On the 6th only the first attempt fails and the retry succeeds:
# no alert. On the 9th every attempt fails: the task is failing (alert), and recovers on the
# 10th (alert).
RETRIED_SLOT = "2026-03-06T14:00:00Z"
FAILED_SLOT = "2026-03-09T13:00:00Z"

FLAKY_FUNCTION = """
from cronfleet import NonRetryableError, TaskContext, scheduled_task


@scheduled_task
def handler(task: TaskContext) -> dict:
    # CloudFormation hands custom resources every value as a string, the payload's included.
    failures = int(task.payload.get("fail", {}).get(task.slot, 0))
    if task.attempt <= failures:
        raise RuntimeError(f"injected failure of {task.slot}, attempt {task.attempt}")
    return {"ok": True}
"""


def _seed_tasks() -> dict[str, Any]:
    def task(description: str, schedule: str, **extra: Any) -> dict[str, Any]:
        return {
            "Type": "Custom::ScheduledTask",
            "Properties": {
                "ServiceToken": {"Fn::GetAtt": ["RegistryFunction", "Arn"]},
                "Description": description,
                "Schedule": schedule,
                "Timezone": ZONE,
                "Function": {"Fn::GetAtt": ["FlakyFunction", "Arn"]},
                **extra,
            },
        }

    return {
        "HourlyTasks": task("hunter-scan, calls-analyze", "0 * * * *"),
        "BackupTask": task("daily-backup", "0 2 * * *"),
        "MorningTasks": task(
            "the morning tasks and the intelligence digest",
            "0 9 * * *",
            Payload={"fail": {RETRIED_SLOT: 1, FAILED_SLOT: 2}},
            Retry={"MaxAttempts": 2, "IntervalSeconds": 60},
            Alerts={"AfterConsecutiveFailures": 1, "OnRecovery": True},
        ),
        "WeeklyTasks": task("analyze-competitors, scrape-external-reviews", "0 10 * * 0"),
    }


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the week once; the tests below read what it left."""
    root = tmp_path_factory.mktemp("week")
    (root / "flaky").mkdir()
    (root / "flaky" / "app.py").write_text(FLAKY_FUNCTION)

    template = load_template(REPO_ROOT / "template.yaml")
    resources = template["Resources"]
    for logical_id in [k for k, v in resources.items() if v["Type"] == "Custom::ScheduledTask"]:
        del resources[logical_id]
    # A task function wired as the example task is (its tag, its ledger permissions, its
    # on-failure destination), with other code: the stack's IAM holds it to that role.
    flaky = copy.deepcopy(resources["ExampleTaskFunction"])
    flaky["Properties"].update(CodeUri="flaky/", Handler="app.handler", Timeout=30)
    resources["FlakyFunction"] = flaky
    for resource in resources.values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and properties["CodeUri"] != "flaky/":
            properties["CodeUri"] = str(REPO_ROOT / properties["CodeUri"])
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = str(REPO_ROOT / properties["ContentUri"])
    resources.update(_seed_tasks())
    (root / "template.yaml").write_text(yaml.safe_dump(template, sort_keys=False))

    state = root / ".cronfleet"
    command = [
        *(sys.executable, "-m", "cronfleet_tools", "run"),
        *("--template", str(root / "template.yaml"), "--state-dir", str(state)),
        *("--start", START, "--until", UNTIL, "--speed", "max"),
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=1500, cwd=root)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]

    with DynamoDBLocal(db_path=state / "dynamodb") as dynamodb:
        store = Store(
            f"{TABLE_PREFIX}TasksTable", f"{TABLE_PREFIX}ExecutionsTable", client=dynamodb.client()
        )
        yield {
            "store": store,
            "dynamodb": dynamodb,
            "output": finished.stdout,
            "alerts": read_journal(state / "alerts.jsonl"),
        }


def _scheduled(store: Store, task_id: str) -> list[Any]:
    return [e for e in store.executions(task_id) if e.trigger is Trigger.SCHEDULE]


def test_each_task_ran_exactly_as_often_as_its_schedule_says_in_a_dst_week(
    replay: dict[str, Any],
) -> None:
    # Given the seed tasks replayed through the week of the spring DST change
    store: Store = replay["store"]

    # When the scheduled runs of each are counted
    counts = {task: len(_scheduled(store, task)) for task in _seed_tasks()}

    # Then each ran as often as its schedule says: 23 hours on the 8th
    assert counts == {"HourlyTasks": 167, "BackupTask": 7, "MorningTasks": 7, "WeeklyTasks": 1}


def test_the_hour_that_does_not_exist_is_skipped_and_the_0200_job_runs_after_the_gap(
    replay: dict[str, Any],
) -> None:
    # Given the week replayed
    store: Store = replay["store"]

    # When the hourly and the 02:00 slots are read
    hourly = {e.slot for e in _scheduled(store, "HourlyTasks")}
    backups = [e.slot for e in _scheduled(store, "BackupTask")]

    # Then 01:00 EST is 06:00Z; the next local hour is 03:00 EDT, 07:00Z: an hour apart in real
    # time, while the local day of the 8th has only 23 hours.
    assert {"2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z"} <= hourly
    local_days = Counter(
        datetime.fromisoformat(slot).astimezone(ZoneInfo(ZONE)).date().day for slot in hourly
    )
    assert local_days == {5: 24, 6: 24, 7: 24, 8: 23, 9: 24, 10: 24, 11: 24}
    assert backups == [
        "2026-03-05T07:00:00Z",
        "2026-03-06T07:00:00Z",
        "2026-03-07T07:00:00Z",
        "2026-03-08T07:00:00Z",  # 02:00 does not exist: run at 03:00 EDT
        "2026-03-09T06:00:00Z",  # 02:00 EDT from here on
        "2026-03-10T06:00:00Z",
        "2026-03-11T06:00:00Z",
    ]


def test_every_run_succeeded_but_the_one_with_every_attempt_failed(
    replay: dict[str, Any],
) -> None:
    # Given the week replayed, with one morning run failing on every attempt
    store: Store = replay["store"]

    # When the final state of every scheduled run is counted
    statuses = Counter((task, e.status) for task in _seed_tasks() for e in _scheduled(store, task))

    # Then that one failed and every other run succeeded
    assert statuses == {
        ("HourlyTasks", RunStatus.SUCCEEDED): 167,
        ("BackupTask", RunStatus.SUCCEEDED): 7,
        ("MorningTasks", RunStatus.SUCCEEDED): 6,
        ("MorningTasks", RunStatus.FAILED): 1,
        ("WeeklyTasks", RunStatus.SUCCEEDED): 1,
    }


def test_injected_failures_are_retried(replay: dict[str, Any]) -> None:
    # Given the week replayed, with failures injected into two morning runs
    store: Store = replay["store"]

    # When those two runs are read
    retried = store.get_execution("MorningTasks", RETRIED_SLOT)
    failed = store.get_execution("MorningTasks", FAILED_SLOT)

    # Then one succeeded on its retry, the other failed both attempts with the error kept
    assert retried is not None
    assert failed is not None
    assert [a.status for a in retried.attempts] == [RunStatus.FAILED, RunStatus.SUCCEEDED]
    assert [a.status for a in failed.attempts] == [RunStatus.FAILED, RunStatus.FAILED]
    assert failed.attempts[-1].error_type == "RuntimeError"
    assert "injected failure of 2026-03-09T13:00:00Z, attempt 2" in str(
        failed.attempts[-1].error_message
    )
    # The retry waited its interval after the first attempt ended, on the simulated clock, and
    # started at the first tick after that.
    first_end = datetime.fromisoformat(str(retried.attempts[0].ended_at))
    second_start = datetime.fromisoformat(str(retried.attempts[1].started_at))
    assert 60 <= (second_start - first_end).total_seconds() < 60 + 60 + 5


def test_the_failure_and_the_recovery_are_alerted_once_each(replay: dict[str, Any]) -> None:
    # Given the week replayed, with one run failing for good
    # When the alerts the topic received are listed
    alerts = [(m.event, m.task) for m in replay["alerts"]]

    # Then FAILING came once and RECOVERED once, about that task
    assert alerts == [("FAILING", "MorningTasks"), ("RECOVERED", "MorningTasks")]
    failing = replay["alerts"][0]
    assert "MorningTasks" in failing.subject
    assert "injected failure" in failing.text


def test_the_ledger_audits_clean(replay: dict[str, Any]) -> None:
    # Given the week replayed
    dynamodb: DynamoDBLocal = replay["dynamodb"]

    # When `cronfleet audit` checks the ledger of the whole week
    result = CliRunner().invoke(
        app,
        [
            "audit",
            *("--tasks-table", f"{TABLE_PREFIX}TasksTable"),
            *("--executions-table", f"{TABLE_PREFIX}ExecutionsTable"),
            *("--endpoint-url", dynamodb.endpoint_url, "--region", dynamodb.region_name),
            *("--since", "2026-03-05T04:59:00", "--until", "2026-03-12T03:59:00"),
            "--json",
        ],
        env={"AWS_ACCESS_KEY_ID": "cronfleetlocal", "AWS_SECRET_ACCESS_KEY": "cronfleetlocal"},
    )

    # Then every expected slot has exactly one entry
    report = json.loads(result.stdout)
    assert result.exit_code == 0, result.stdout
    assert report["ok"] is True
    expected = {task["task_id"]: task["counts"]["expected"] for task in report["tasks"]}
    assert expected == {"BackupTask": 7, "HourlyTasks": 167, "MorningTasks": 7, "WeeklyTasks": 1}


def test_the_replay_skipped_idle_minutes_and_said_how_it_went(replay: dict[str, Any]) -> None:
    # Given the week replayed at --speed max
    # When its summary line is read
    output: str = replay["output"]

    # Then it says how it went
    assert "Stopped after" in output
    # One tick per slot, retry or watchdog look, not one per minute of the week (10,080).
    ticks = int(output.split("Stopped after ", 1)[1].split(" tick", 1)[0])
    assert 170 <= ticks < 400


def test_slots_keep_their_logical_times(replay: dict[str, Any]) -> None:
    # Given the week replayed on a simulated clock
    store: Store = replay["store"]

    # When the weekly run is read
    weekly = _scheduled(store, "WeeklyTasks")[0]
    started = datetime.fromisoformat(str(weekly.attempts[0].started_at))

    # Then its slot and its start are the simulated times, not the wall clock's
    assert weekly.slot == "2026-03-08T14:00:00Z"  # Sunday 10:00 EDT
    assert datetime(2026, 3, 8, 14, tzinfo=UTC) <= started < datetime(2026, 3, 8, 14, 1, tzinfo=UTC)
