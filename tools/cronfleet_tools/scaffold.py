"""``cronfleet new task``: a new task's files, and its resources inserted into template.yaml.

Everything is worked out and validated before anything is written: the new template text is
judged by ``validate_template`` (the deploy's rules, wiring included), so a bad schedule, an
unsafe URL or a name already taken leaves the project as it was. The template is edited as
text, not re-dumped, so its comments, order and quoting stay exactly as they were; the new
resources go after the last task it declares.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from cronfleet.errors import CronfleetError
from cronfleet.registry.problems import InvalidTemplate, Problem
from cronfleet_tools.template import parse_template, validate_template

DEFAULT_SCHEDULE = "cron(0 6 * * ? *)"
TASK_TYPE = "Custom::ScheduledTask"


class ScaffoldRefused(CronfleetError):
    """The new task cannot be added as asked; nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class NewTask:
    task_id: str
    task_logical_id: str
    function_logical_id: str | None  # None for an Http task: the built-in caller runs it
    template_path: Path
    template_text: str  # the whole template, the new resources inserted
    resource_lines: list[str]  # what was inserted
    files: dict[Path, str] = field(default_factory=dict)  # new files and their text

    def write(self) -> list[Path]:
        """Write the new files, then the template; the paths written, in that order."""
        written = []
        for path, text in self.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
        self.template_path.write_text(self.template_text)
        return [*written, self.template_path]


def plan_new_task(
    template_path: Path,
    name: str,
    *,
    schedule: str = DEFAULT_SCHEDULE,
    timezone: str = "UTC",
    http_url: str | None = None,
) -> NewTask:
    """The files and template edit that add task ``name``; raises ScaffoldRefused."""
    root = template_path.parent
    words = [word for word in re.split(r"[-_.\s]+", name) if word]
    base = "".join(word[:1].upper() + word[1:] for word in words)
    snake = "_".join(word.lower() for word in words)
    if not base or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", base):
        raise ScaffoldRefused(
            [
                f"NAME: {name!r} must be letters and digits, words joined by '-', '_' or '.', "
                "starting with a letter (it names the task, its function and its folder)"
            ]
        )
    text = template_path.read_text(encoding="utf-8")
    try:
        template = parse_template(text, source=template_path.name)
    except InvalidTemplate as exc:
        raise ScaffoldRefused([str(problem) for problem in exc.problems]) from None
    resources = template.get("Resources") or {}
    task_logical_id = f"{base}Task"
    function_logical_id = None if http_url else f"{base}Function"
    problems = [
        f"NAME: {name!r} would add resource {logical_id}, which {template_path.name} already has"
        for logical_id in (task_logical_id, function_logical_id)
        if logical_id is not None and logical_id in resources
    ]
    files = _files(root, snake, name, http_url)
    problems += [
        f"NAME: {name!r} would write {path.relative_to(root)}, which already exists"
        for path in files
        if path.exists()
    ]
    if problems:
        raise ScaffoldRefused(problems)

    lines = _resource_lines(
        task_logical_id, function_logical_id, name, snake, schedule, timezone, http_url
    )
    new_text = _insert(text, resources, lines)
    verdict = validate_template(parse_template(new_text, source=template_path.name))
    mine = [p for p in verdict.problems if p.logical_id in (task_logical_id, function_logical_id)]
    if mine:
        raise ScaffoldRefused([_as_option(problem) for problem in mine])
    return NewTask(
        task_id=name,
        task_logical_id=task_logical_id,
        function_logical_id=function_logical_id,
        template_path=template_path,
        template_text=new_text,
        resource_lines=lines,
        files=files,
    )


def _as_option(problem: Problem) -> str:
    """A problem of the new resources, named after the option that set the field."""
    option = {"Schedule": "--schedule", "Timezone": "--tz", "Name": "NAME"}.get(
        problem.field_path, "--http" if problem.field_path.startswith("Http") else ""
    )
    return f"{option}: {problem}" if option else str(problem)


def _resource_lines(
    task_logical_id: str,
    function_logical_id: str | None,
    name: str,
    snake: str,
    schedule: str,
    timezone: str,
    http_url: str | None,
) -> list[str]:
    lines = []
    if function_logical_id is not None:
        lines += [
            f"  {function_logical_id}:",
            "    Type: AWS::Serverless::Function",
            "    Properties:",
            f"      CodeUri: functions/{snake}/",
            "      Policies: [!Ref TaskFunctionPolicy]",
            "",
        ]
    lines += [
        f"  {task_logical_id}:",
        f"    Type: {TASK_TYPE}",
        "    Properties:",
        "      ServiceToken: !GetAtt RegistryFunction.Arn",
        "      ServiceTimeout: 60",
        f"      Name: {json.dumps(name)}",
        f"      Schedule: {json.dumps(schedule)}",
        f"      Timezone: {json.dumps(timezone)}",
    ]
    if function_logical_id is not None:
        lines.append(f"      Function: !GetAtt {function_logical_id}.Arn")
    else:
        lines += ["      Http:", f"        Url: {json.dumps(http_url)}", "        Method: GET"]
    return lines


def _insert(text: str, resources: dict[str, object], lines: list[str]) -> str:
    """``text`` with ``lines`` after the last task resource (else at the end of Resources)."""
    source = text.splitlines(keepends=True)
    tasks = [
        logical_id
        for logical_id, resource in resources.items()
        if isinstance(resource, dict) and resource.get("Type") == TASK_TYPE
    ]
    at = _end_of_block(source, f"  {tasks[-1]}:") if tasks else _end_of_resources(source)
    block = [line + "\n" for line in ["", *lines]]
    if at < len(source) and source[at].strip():
        block.append("\n")  # keep a blank line before what follows
    if source and not source[-1].endswith("\n"):
        source[-1] += "\n"
    return "".join(source[:at] + block + source[at:])


def _end_of_block(source: list[str], header: str) -> int:
    """The line after the last line of the resource that starts at ``header``."""
    start = next(i for i, line in enumerate(source) if line.rstrip() == header)
    end = start + 1
    for i in range(start + 1, len(source)):
        line = source[i]
        if line.strip() and not line.startswith("   "):
            break  # the next resource, a comment above it, or the next section
        if line.strip():
            end = i + 1
    return end


def _end_of_resources(source: list[str]) -> int:
    start = next(i for i, line in enumerate(source) if line.rstrip() == "Resources:")
    end = start + 1
    for i in range(start + 1, len(source)):
        if source[i].strip() and not source[i].startswith((" ", "#")):
            break
        if source[i].strip():
            end = i + 1
    return end


def _files(root: Path, snake: str, name: str, http_url: str | None) -> dict[Path, str]:
    if http_url is not None:
        # The built-in HTTP caller runs the task: only an event to try it with.
        event = {
            "cronfleet": {
                "version": 1,
                "task_id": name,
                "slot": "2026-01-01T06:00:00Z",
                "attempt": 1,
                "deadline": "2026-01-01T06:04:00Z",
                "trigger": "manual",
                "payload": {"http": {"Url": http_url, "Method": "GET"}},
            }
        }
        return {root / "events" / f"{snake}.json": json.dumps(event, indent=2) + "\n"}
    return {
        root / "functions" / snake / "app.py": _APP.format(name=name),
        root / "events" / f"{snake}.json": json.dumps({"note": f"a {name} run"}, indent=2) + "\n",
        root / "tests" / "unit" / f"test_{snake}_task.py": _TEST.format(name=name, snake=snake),
    }


_APP = '''"""{name}: a scheduled task. The wrapper records every run of it in the ledger."""

from __future__ import annotations

from typing import Any

from cronfleet import TaskContext, scheduled_task
from cronfleet.handlers import lambda_handler
from cronfleet.observability import logger


@lambda_handler(correlation_id_path="cronfleet.task_id")
@scheduled_task
def handler(task: TaskContext) -> dict[str, Any]:
    # Your code here. Raise to fail the run (it is retried as the task's Retry says); raise
    # cronfleet.NonRetryableError for a failure no retry can help.
    logger.info("{name} ran", extra={{"slot": task.slot, "payload": task.payload}})
    return {{"ok": True}}
'''

_TEST = '''"""{name}'s handler, driven by events/{snake}.json as `sam local invoke` drives it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_a_run_of_{snake}_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    # given the task's code and its sample event, and no tables (a run that is not recorded)
    monkeypatch.delenv("TASKS_TABLE_NAME", raising=False)
    monkeypatch.delenv("EXECUTIONS_TABLE_NAME", raising=False)
    spec = importlib.util.spec_from_file_location(
        "{snake}_app", ROOT / "functions" / "{snake}" / "app.py"
    )
    assert spec is not None and spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    event = json.loads((ROOT / "events" / "{snake}.json").read_text())
    context = SimpleNamespace(
        function_name="{snake}",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:{snake}",
        aws_request_id="00000000-0000-0000-0000-000000000000",
        get_remaining_time_in_millis=lambda: 60_000,
    )

    # when the handler runs
    result = app.handler(event, context)

    # then the run succeeded with the code's result
    assert result["status"] == "SUCCEEDED", result
    assert result["result"] == {{"ok": True}}
'''
