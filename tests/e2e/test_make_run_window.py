"""What the `make run` window shows while a person works in another terminal.

`cronfleet run` is started as `make run` starts it, in a process of its own, on a template with
one task that never comes due by itself. A second process, `cronfleet trigger --local`, runs
that task, as a person would from another terminal: the run happens in the second process, and
the window must show it all the same, in time order with everything else it prints.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from cronfleet_tools.local import STACK_FILE
from cronfleet_tools.template import load_template

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
CRONFLEET = [sys.executable, "-m", "cronfleet_tools"]
GENEROUS_SECONDS = 120  # a bound on waits, not an expectation
# What the stack needs to run a task: the tables, the registry, the dispatcher, the recorder,
# the example task's function, the HTTP function the dispatcher names, the alert topic, the task
# functions' policy and the log group.
KEPT_RESOURCES = {
    "TasksTable",
    "TaskFunctionPolicy",
    "FunctionLogGroup",
    "ExecutionsTable",
    "RegistryFunction",
    "DispatcherFunction",
    "RecorderFunction",
    "ExampleTaskFunction",
    "HttpTaskFunction",
    "AlertTopic",
}


def write_template(directory: Path) -> Path:
    """The repository's stack with one task, due once a year at 06:00 on 1 January."""
    template = load_template(REPO_ROOT / "template.yaml")
    resources = {k: v for k, v in template["Resources"].items() if k in KEPT_RESOURCES}
    for resource in resources.values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = str(REPO_ROOT / resource["Properties"]["CodeUri"])
    resources["WindowTask"] = {
        "Type": "Custom::ScheduledTask",
        "Properties": {
            "ServiceToken": {"Fn::GetAtt": ["RegistryFunction", "Arn"]},
            "Schedule": "cron(0 6 1 1 ? *)",
            "Function": {"Fn::GetAtt": ["ExampleTaskFunction", "Arn"]},
            "Payload": {"from": "another terminal"},
        },
    }
    template["Resources"] = resources
    for section in ("Outputs", "Conditions"):
        template.pop(section, None)
    path = directory / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + GENEROUS_SECONDS
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up after {GENEROUS_SECONDS}s waiting: {what}"
        time.sleep(0.2)


def stack_pid(state_dir: Path) -> int | None:
    try:
        return int(json.loads((state_dir / STACK_FILE).read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture
def window(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, Path]]:
    """A running `cronfleet run`, its state directory, and the file its window is written to."""
    state_dir = tmp_path / ".cronfleet"
    shown = tmp_path / "window.txt"
    with shown.open("w") as sink:
        process = subprocess.Popen(
            [
                *CRONFLEET,
                "run",
                "--template",
                str(write_template(tmp_path)),
                "--state-dir",
                str(state_dir),
                "--verbose",
            ],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
            start_new_session=True,
            env={**os.environ, "COLUMNS": "200"},
        )
    try:
        wait_for(
            lambda: stack_pid(state_dir) == process.pid or process.poll() is not None,
            "the runner's stack.json",
        )
        assert process.poll() is None, shown.read_text()
        yield process, state_dir, shown
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=GENEROUS_SECONDS)


def test_a_run_triggered_from_another_terminal_shows_in_the_window_in_time_order(
    window: tuple[subprocess.Popen[str], Path, Path],
) -> None:
    process, state_dir, shown = window

    # When a person triggers the task from another terminal
    triggered = subprocess.run(
        [*CRONFLEET, "trigger", "WindowTask", "--local", "--state-dir", str(state_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=GENEROUS_SECONDS,
        check=False,
    )
    assert triggered.returncode == 0, triggered.stdout + triggered.stderr
    assert triggered.stderr == ""  # nothing but the run, in either terminal
    slot = json.loads(triggered.stdout)["slot"]

    # Then the window shows the run, said to come from `cronfleet trigger`, with how it ended
    line = re.compile(
        rf"^(\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d) ExampleTaskFunction WindowTask {re.escape(slot)} "
        r"#1 \(cronfleet trigger\)  SUCCEEDED  \d+\.\d s$",
        re.MULTILINE,
    )
    wait_for(lambda: line.search(shown.read_text()), f"the window to show the run of {slot}")

    # and every line it printed reads in time order, the run's stamped with when it ended
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=GENEROUS_SECONDS) == 0
    text = shown.read_text()
    stamps = [
        datetime.fromisoformat(match)
        for match in re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ", text, re.MULTILINE)
    ]
    assert len(stamps) >= 2, text  # the first tick, and the run
    assert "unpublished metrics" not in text
    assert stamps == sorted(stamps), text
    match = line.search(text)
    assert match is not None
    run_ended = datetime.fromisoformat(match.group(1))
    trigger_ended = datetime.fromisoformat(
        json.loads(triggered.stdout)["attempts"][0]["ended_at"].replace("Z", "+00:00")
    ).replace(tzinfo=None, microsecond=0)
    assert abs((run_ended - trigger_ended).total_seconds()) <= 2, (run_ended, trigger_ended)
