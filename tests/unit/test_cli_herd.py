"""`cronfleet next --task`, `preview` and `preview --herd` on schedules with H, and `describe`.

The herd's oracle counts the runs itself: each task's plain expression is worked out from the
hash as docs/semantics.md states it, and its runs are listed by cronsim.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from typer.testing import CliRunner

from cronfleet.registry.definition import parse_task_definition
from cronfleet.store import TaskRecord
from cronfleet_tools.cli.app import app
from cronfleet_tools.describing import TaskDescription

runner = CliRunner()
AFTER = datetime(2026, 12, 1, tzinfo=UTC)  # December: London is on GMT, UTC+0
WEEK = timedelta(days=7)

STACK = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Registry:
    Type: AWS::Serverless::Function
    Properties: {Handler: app.handler, Runtime: python3.13, CodeUri: x/}
  Worker:
    Type: AWS::Serverless::Function
    Properties: {Handler: app.handler, Runtime: python3.13, CodeUri: x/, Timeout: 60}
"""


def draw(task_id: str, field: str) -> int:
    """docs/semantics.md: the first 8 bytes, big-endian, of SHA-256 of '<task id>:<field>'."""
    return int.from_bytes(hashlib.sha256(f"{task_id}:{field}".encode()).digest()[:8], "big")


def unboxed(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


def task_yaml(logical_id: str, schedule: str, **properties: str) -> str:
    lines = [
        f"  {logical_id}:",
        "    Type: Custom::ScheduledTask",
        "    Properties:",
        "      ServiceToken: !GetAtt Registry.Arn",
        f'      Schedule: "{schedule}"',
        "      Function: !GetAtt Worker.Arn",
    ]
    lines += [f"      {name}: {value}" for name, value in properties.items()]
    return "\n".join(lines) + "\n"


# --- next --task -------------------------------------------------------------------------------


def test_next_with_a_task_shows_what_its_h_resolves_to() -> None:
    minute = draw("nightly-backup", "minute") % 60

    result = runner.invoke(
        app, ["next", "H 2 * * *", "--task", "nightly-backup", "--after", "2026-12-01", "-n", "2"]
    )

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"H 2 * * *: At 02:{minute:02d}, with H as minute {minute} (UTC)"
    assert lines[1] == f"For task nightly-backup: {minute} 2 * * *"
    assert f"2026-12-01T02:{minute:02d}:00Z" in result.output
    assert f"2026-12-02T02:{minute:02d}:00Z" in result.output


def test_next_json_with_a_task_has_the_resolved_spread() -> None:
    offset = draw("poller", "minute") % 15

    result = runner.invoke(
        app,
        ["next", "H/15 * * * *", "--task", "poller", "--after", "2026-12-01", "-n", "4", "--json"],
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert list(report) == ["expression", "timezone", "description", "task", "resolved", "runs"]
    assert report["task"] == "poller"
    assert report["resolved"] == ",".join(str(offset + 15 * n) for n in range(4)) + " * * * *"
    assert [run["utc"] for run in report["runs"]] == [
        f"2026-12-01T00:{offset + 15 * n:02d}:00Z" for n in range(4)
    ]


@pytest.mark.parametrize("expression", ["H 2 * * *", "cron(0 H(8-17) ? * MON *)"])
def test_next_on_h_without_a_task_is_a_usage_error_naming_task(expression: str) -> None:
    result = runner.invoke(app, ["next", expression])

    assert result.exit_code == 2
    message = unboxed(result.output)
    assert "Invalid value for --task" in message
    assert "H is a value hashed from the task id" in message
    assert "pass --task NAME" in message


def test_next_refuses_a_task_that_is_no_task_id() -> None:
    result = runner.invoke(app, ["next", "H 2 * * *", "--task", "two words"])

    assert result.exit_code == 2
    assert "'two words' is no task id" in unboxed(result.output)


def test_next_without_h_takes_a_task_and_shows_no_resolution() -> None:
    result = runner.invoke(app, ["next", "0 2 * * *", "--task", "nightly-backup", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["resolved"] == "0 2 * * *"
    assert report["description"] == "At 02:00 (UTC)"


# --- preview -----------------------------------------------------------------------------------


def test_preview_resolves_h_per_task_id(tmp_path: Path) -> None:
    # Given two tasks with one H schedule: one named, one known by its logical id
    template = tmp_path / "template.yaml"
    template.write_text(
        STACK
        + task_yaml("BackupTask", "H 2 * * *", Name="nightly-backup")
        + task_yaml("ReportTask", "H 2 * * *")
    )

    # When they are previewed
    result = runner.invoke(app, ["preview", str(template), "--after", "2026-12-01", "--json"])

    # Then each runs at the minute hashed from its own task id
    assert result.exit_code == 0, result.output
    previews = {item["task"]: item for item in json.loads(result.output)}
    for task_id in ("nightly-backup", "ReportTask"):
        minute = draw(task_id, "minute") % 60
        assert previews[task_id]["expression"] == "H 2 * * *"
        assert previews[task_id]["resolved"] == f"{minute} 2 * * *"
        assert previews[task_id]["runs"][0]["utc"] == f"2026-12-01T02:{minute:02d}:00Z"


def test_preview_table_says_what_h_resolves_to(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(STACK + task_yaml("ReportTask", "H 2 * * *"))
    minute = draw("ReportTask", "minute") % 60

    result = runner.invoke(app, ["preview", str(template), "--after", "2026-12-01"])

    assert result.exit_code == 0, result.output
    assert f"resolves to {minute} 2 * * *" in result.output


# --- preview --herd ----------------------------------------------------------------------------


def name_at_minute(prefix: str, minute: int) -> str:
    """A task id whose H minute is ``minute``: to make a herd on purpose."""
    return next(
        f"{prefix}-{n}" for n in range(100_000) if draw(f"{prefix}-{n}", "minute") % 60 == minute
    )


def herd_fleet() -> list[tuple[str, str, str, str, bool]]:
    """(logical id, task id, schedule, timezone, enabled), and the plain cron expression the
    oracle runs for each is worked out apart, in oracle_expression."""
    fleet = [(f"Zero{n}", f"zero-{n}", "0 2 * * *", "UTC", True) for n in range(7)]
    fleet.append(("London", "london", "0 2 * * *", "Europe/London", True))
    fleet.append(("Disabled", "disabled", "0 2 * * *", "UTC", False))
    # H tasks whose hash lands on 02:00, with the crowd, and others anywhere in the hour
    fleet += [
        (f"OnTheHour{n}", name_at_minute(f"on-the-hour{n}", 0), "H 2 * * *", "UTC", True)
        for n in range(2)
    ]
    fleet += [(f"Spread{n}", f"spread-{n}", "H H * * *", "UTC", True) for n in range(20)]
    fleet += [(f"Poll{n}", f"poll-{n}", "H/15 * * * *", "UTC", True) for n in range(4)]
    fleet.append(("HalfHourly", "half-hourly", "rate(30 minutes)", "UTC", True))
    fleet.append(("Weekday", "weekday", "cron(H(0-29)/10 2 ? * MON-FRI *)", "UTC", True))
    return fleet


def oracle_expression(task_id: str, schedule: str) -> str:
    minute, hour = draw(task_id, "minute"), draw(task_id, "hour")
    if schedule == "H 2 * * *":
        return f"{minute % 60} 2 * * *"
    if schedule == "H H * * *":
        return f"{minute % 60} {hour % 24} * * *"
    if schedule == "H/15 * * * *":
        return f"{minute % 15}-59/15 * * * *"
    if schedule == "rate(30 minutes)":
        return "*/30 * * * *"  # slots on whole multiples of 30 minutes since the epoch
    if schedule == "cron(H(0-29)/10 2 ? * MON-FRI *)":
        return f"{minute % 10}-29/10 2 * * 1-5"
    return schedule


def oracle_counts(fleet: list[tuple[str, str, str, str, bool]]) -> dict[datetime, list[str]]:
    tasks_at: dict[datetime, list[str]] = defaultdict(list)
    for _, task_id, schedule, zone, enabled in fleet:
        if not enabled:
            continue
        runs = CronSim(oracle_expression(task_id, schedule), AFTER.astimezone(ZoneInfo(zone)))
        for run in runs:
            utc = run.astimezone(UTC)
            if utc > AFTER + WEEK:
                break
            tasks_at[utc].append(task_id)
    return tasks_at


@pytest.fixture
def fleet_template(tmp_path: Path) -> Path:
    template = tmp_path / "template.yaml"
    text = STACK
    for logical_id, task_id, schedule, zone, enabled in herd_fleet():
        properties = {"Name": task_id, "Timezone": zone}
        if not enabled:
            properties["Enabled"] = "false"
        text += task_yaml(logical_id, schedule, **properties)
    template.write_text(text)
    return template


def test_herd_lists_the_busiest_minutes_and_their_tasks_as_an_independent_count_does(
    fleet_template: Path,
) -> None:
    # Given the oracle's count of every run of the week, per UTC minute
    tasks_at = oracle_counts(herd_fleet())
    expected = sorted(tasks_at.items(), key=lambda item: (-len(item[1]), item[0]))[:10]

    # When the herd is counted
    result = runner.invoke(
        app, ["preview", str(fleet_template), "--herd", "--after", "2026-12-01", "--json"]
    )

    # Then its busiest minutes, their counts and their tasks are the oracle's
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["busiest"] == [
        {
            "minute": minute.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "runs": len(names),
            "tasks": sorted(names),
        }
        for minute, names in expected
    ]
    # The busiest is 02:00 every day: seven at 0 2, London's (GMT in December), the two hashed
    # onto :00, the half-hourly rate, and a Poll task whose offset is 0 if there is one
    busiest = report["busiest"][0]
    assert busiest["minute"] == "2026-12-01T02:00:00Z"
    assert {"zero-0", "london", "half-hourly"} <= set(busiest["tasks"])
    assert "disabled" not in busiest["tasks"]
    assert report["tasks"] == len(herd_fleet()) - 1
    assert report["disabled"] == 1
    assert report["runs"] == sum(len(names) for names in tasks_at.values())
    assert report["minutes"] == len(tasks_at)
    assert (report["from"], report["until"]) == ("2026-12-01T00:00:00Z", "2026-12-08T00:00:00Z")


def test_herd_top_n_limits_the_minutes(fleet_template: Path) -> None:
    result = runner.invoke(
        app,
        ["preview", str(fleet_template), "--herd", "--top", "3", "--after", "2026-12-01", "--json"],
    )

    assert result.exit_code == 0, result.output
    busiest = json.loads(result.output)["busiest"]
    assert [item["minute"] for item in busiest] == [
        "2026-12-01T02:00:00Z",
        "2026-12-02T02:00:00Z",
        "2026-12-03T02:00:00Z",
    ]


def test_herd_table_names_a_few_tasks_a_minute_and_fits_80_columns(fleet_template: Path) -> None:
    tasks_at = oracle_counts(herd_fleet())
    crowd = sorted(tasks_at[datetime(2026, 12, 1, 2, 0, tzinfo=UTC)])

    result = runner.invoke(
        app, ["preview", str(fleet_template), "--herd", "--after", "2026-12-01"], terminal_width=80
    )

    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.output.splitlines()), result.output
    text = unboxed(result.output)
    assert "2026-12-01 02:00Z" in text
    assert f"{len(tasks_at[datetime(2026, 12, 1, 2, 0, tzinfo=UTC)])} " in text
    assert ", ".join(crowd[:5]) + f" and {len(crowd) - 5} more" in text
    assert "(1 disabled, not counted)" in text


def test_herd_of_a_quiet_week_says_so(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(STACK + task_yaml("Yearly", "0 0 1 1 *"))

    result = runner.invoke(app, ["preview", str(template), "--herd", "--after", "2026-03-01"])

    assert result.exit_code == 0, result.output
    assert "No runs in that week." in result.output


def test_top_without_herd_is_a_usage_error(fleet_template: Path) -> None:
    result = runner.invoke(app, ["preview", str(fleet_template), "--top", "3"])

    assert result.exit_code == 2
    assert "Invalid value for --top" in unboxed(result.output)


def test_herd_of_a_large_fleet_counts_each_shared_schedule_once(tmp_path: Path) -> None:
    # Given 2,000 per-minute tasks and 2,000 hashed hourly ones
    template = tmp_path / "template.yaml"
    text = STACK
    for n in range(2000):
        text += task_yaml(f"Minutely{n}", "* * * * *", Name=f"minutely-{n}")
        text += task_yaml(f"Hourly{n}", "H * * * *", Name=f"hourly-{n}")
    template.write_text(text)
    hourly = Counter(draw(f"hourly-{n}", "minute") % 60 for n in range(2000))
    minute, crowd = min(hourly.items(), key=lambda item: (-item[1], item[0]))

    # When the herd is counted
    result = runner.invoke(
        app, ["preview", str(template), "--herd", "--top", "1", "--after", "2026-12-01", "--json"]
    )

    # Then the busiest minute is the hourly tasks' busiest, plus every per-minute task
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["runs"] == 2000 * 7 * 24 * 60 + 2000 * 7 * 24
    [busiest] = report["busiest"]
    assert busiest["minute"] == f"2026-12-01T00:{minute:02d}:00Z"
    assert busiest["runs"] == 2000 + crowd


# --- describe ----------------------------------------------------------------------------------


def test_describe_shows_the_value_h_resolved_to() -> None:
    definition = parse_task_definition(
        "BackupTask",
        {
            "Name": "nightly-backup",
            "Schedule": "H 2 * * *",
            "Function": "arn:aws:lambda:us-east-1:123456789012:function:backup",
        },
    )
    record = TaskRecord("nightly-backup", definition.model_dump_json(by_alias=True))
    minute = draw("nightly-backup", "minute") % 60

    described = TaskDescription.of(record, [], AFTER)

    facts = dict(described.facts())
    assert facts["Schedule"] == (
        f"H 2 * * *, for this task {minute} 2 * * *: At 02:{minute:02d}, with H as minute "
        f"{minute} (UTC)"
    )
    assert described.as_json()["resolved_schedule"] == f"{minute} 2 * * *"
    assert described.next_runs[0] == AFTER.replace(hour=2, minute=minute)
