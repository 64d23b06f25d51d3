"""``cronfleet schedules`` through the local stack's API over HTTP, as a person at a second
terminal would use it while `make run` runs: ``--local`` finds the API in ``stack.json`` and
signs with the local key, the runner checks the signature and runs the API function.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cronfleet_tools.cli.app import app
from cronfleet_tools.local.runner import RunOptions
from tests.support.local_api import RunningStack, running, template_without_tasks

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    directory = tmp_path_factory.mktemp("cli-local-api")
    options = RunOptions(
        template=template_without_tasks(directory),
        state_dir=directory / ".cronfleet",
        ca_file=None,
    )
    with running(options) as running_stack:
        yield running_stack


def test_a_schedule_is_created_listed_updated_and_deleted_through_the_local_api(
    stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the local stack's state directory, and no AWS keys of the person's own
    state_dir = Path(stack.info.state_dir)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def cli(*args: str) -> tuple[int, str]:
        where = ["--local", "--state-dir", str(state_dir), "--tenant", "acme"]
        result = runner.invoke(app, ["schedules", *args, *where])
        return result.exit_code, result.output

    # when a schedule is created with a deduplication key, twice
    create = (
        "create", "--schedule", "cron(0 9 * * ? *)", "--tz", "Europe/London",
        "--function", "ExampleTaskFunction", "--external-id", "project-42",
        "--dedup-key", "p42-daily", "--json",
    )  # fmt: skip
    code, first = cli(*create)
    assert code == 0, first
    code, again = cli(*create)
    assert code == 0, again
    made, found = json.loads(first), json.loads(again)

    # then the second found the first
    assert (made["created"], found["created"], found["id"]) == (True, False, made["id"])
    assert made["timezone"] == "Europe/London"

    # when it is listed, disabled, then deleted
    code, listed = cli("list", "--external-id", "project-42", "--json")
    assert code == 0, listed
    code, updated = cli("update", made["id"], "--disabled", "--json")
    assert code == 0, updated
    deleted = cli("delete", made["id"])
    gone = cli("delete", made["id"])

    # then each did what it says, and the API's 404 reads as its message
    assert [item["id"] for item in json.loads(listed)] == [made["id"]]
    assert json.loads(updated)["enabled"] is False
    assert deleted == (0, f"Deleted schedule {made['id']} of tenant acme.\n")
    assert gone[0] == 1
    assert gone[1].startswith("Error: no schedule")


def test_the_operator_commands_work_on_a_schedule_made_through_the_api(
    stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a schedule made through the local API
    state_dir = Path(stack.info.state_dir)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    local = ["--local", "--state-dir", str(state_dir)]
    made = runner.invoke(
        app,
        [
            *("schedules", "create", "--schedule", "rate(1 day)"),
            *("--function", "ExampleTaskFunction", "--payload", '{"report": "ops"}'),
            *("--tenant", "ops", "--json", *local),
        ],
    )
    assert made.exit_code == 0, made.output
    schedule_id = json.loads(made.output)["id"]

    def cli(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, [*args, *local])
        return result.exit_code, result.output

    # when an operator looks at it, pauses, resumes and triggers it, as any task
    status = cli("status", "--json")
    described = cli("describe", schedule_id)
    paused = cli("pause", schedule_id)
    resumed = cli("resume", schedule_id)
    triggered = cli("trigger", schedule_id)
    history = cli("history", schedule_id, "--json")

    # then each command treats it as a task of the stack
    assert status[0] == 0, status[1]
    assert schedule_id in {task["task"] for task in json.loads(status[1])}
    assert described[0] == 0, described[1]
    assert "Every day" in described[1]
    assert paused[0] == 0, paused[1]
    assert resumed[0] == 0, resumed[1]
    assert triggered[0] == 0, triggered[1]
    assert "SUCCEEDED" in triggered[1]
    assert history[0] == 0, history[1]
    (run,) = json.loads(history[1])
    assert (run["trigger"], run["status"]) == ("manual", "SUCCEEDED")
