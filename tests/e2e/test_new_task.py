"""Adding a task as the README says: `cronfleet new task`, `cronfleet validate`, then a run.

The project is a copy of this repository's template, functions and events in a temporary
directory. The new task's own unit test is run too, as `make test` would run it there.
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cronfleet.lifecycle.states import RunStatus
from cronfleet.store import ExecutionRecord
from cronfleet_tools.cli.app import app
from cronfleet_tools.local.runner import LocalRunner, RunOptions
from cronfleet_tools.local.stack import AppliedTask, LocalStack

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


class LedgerReporter:
    """Reads the new task's ledger while the stack is still up; nothing else."""

    def __init__(self) -> None:
        self.stack: LocalStack | None = None
        self.ledger: list[ExecutionRecord] = []

    def started(self, stack: LocalStack, applied: list[AppliedTask]) -> None:
        self.stack = stack

    def ticked(self, report: object) -> None:
        pass

    def invocation(self, invocation: object) -> None:
        pass

    def alert(self, message: object) -> None:
        pass

    def finished(self) -> None:
        assert self.stack is not None
        self.ledger = self.stack.store.executions("nightly-report")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for part in ("functions", "events"):
        shutil.copytree(REPO_ROOT / part, tmp_path / part)
    shutil.copy(REPO_ROOT / "template.yaml", tmp_path / "template.yaml")
    return tmp_path


def test_a_task_added_with_new_task_validates_and_runs_locally(project: Path) -> None:
    template = project / "template.yaml"
    before = template.read_text()

    # given a task added with the scaffold
    added = CliRunner().invoke(
        app,
        [
            "new",
            "task",
            "nightly-report",
            "--schedule",
            "cron(0 6 * * ? *)",
            "--template",
            str(template),
        ],
    )
    assert added.exit_code == 0, added.output

    # then the template only gained the new resources: every line it had is kept, comments
    # and all, in order, and the task took at most 20 lines
    after = template.read_text().splitlines()
    edits = difflib.SequenceMatcher(a=before.splitlines(), b=after, autojunk=False).get_opcodes()
    changes = [(tag, j1, j2) for tag, _, _, j1, j2 in edits if tag != "equal"]
    assert [tag for tag, _, _ in changes] == ["insert"], changes
    ((_, first, last),) = changes
    inserted = after[first:last]
    assert len(inserted) <= 20, inserted
    assert "  NightlyReportFunction:" in inserted
    assert "  NightlyReportTask:" in inserted
    # and validate accepts it, wiring included
    validated = CliRunner().invoke(app, ["validate", str(template)])
    assert validated.exit_code == 0, validated.output
    assert "5 scheduled task(s), all valid" in validated.output
    # and the task's own unit test passes
    unit = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(project / "tests" / "unit" / "test_nightly_report_task.py"),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr

    # when the local runtime replays the hour around 06:00
    reporter = LedgerReporter()
    LocalRunner(
        RunOptions(
            template=template,
            state_dir=project / ".cronfleet",
            start=datetime(2026, 11, 2, 5, 58, tzinfo=UTC),
            until=datetime(2026, 11, 2, 6, 5, tzinfo=UTC),
            speed=None,
        ),
        reporter,
    ).run()

    # then the new task ran at 06:00, its code's result recorded
    (run,) = reporter.ledger
    assert run.slot == "2026-11-02T06:00:00Z"
    assert run.status == RunStatus.SUCCEEDED
    assert run.current is not None
    assert run.current.result == {"ok": True}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ExampleTask"], "would add resource ExampleTaskFunction, which template.yaml already"),
        (["report", "--schedule", "cron(0 6 * *)"], "--schedule: ReportTask.Schedule:"),
        (["report", "--tz", "Mars/Olympus"], "--tz: ReportTask.Timezone: unknown timezone"),
        (["ping", "--http", "https://169.254.169.254/"], "--http: PingTask.Http.Url: refused"),
        (["9lives"], "NAME: '9lives' must be letters and digits"),
        (["example-task"], "would write functions/example_task/app.py, which already exists"),
    ],
)
def test_a_task_that_cannot_be_added_names_the_option_and_writes_nothing(
    project: Path, args: list[str], message: str
) -> None:
    # given the project as it is
    template = project / "template.yaml"
    before = {path: path.read_bytes() for path in project.rglob("*") if path.is_file()}

    # when a task is added with one bad input
    result = CliRunner().invoke(app, ["new", "task", *args, "--template", str(template)])

    # then the command refuses with usage status, naming the option, and nothing changed
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert {path: path.read_bytes() for path in project.rglob("*") if path.is_file()} == before
