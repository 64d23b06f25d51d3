"""The example task handler, driven by the same event `sam local invoke` uses."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture
def example_task(repo_root: Path) -> ModuleType:
    # Every function's module is called `app`; load this one under a name of its own.
    path = repo_root / "functions" / "example_task" / "app.py"
    spec = importlib.util.spec_from_file_location("example_task_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_plain_event_runs_as_an_unrecorded_manual_run_without_tables(
    example_task: ModuleType,
    load_event: Any,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: the sample event from events/, and no tables configured (no DynamoDB at all)
    monkeypatch.delenv("TASKS_TABLE_NAME", raising=False)
    monkeypatch.delenv("EXECUTIONS_TABLE_NAME", raising=False)
    payload = load_event("example_task")

    # when: the handler runs, as `sam local invoke -e events/example_task.json` would
    with caplog.at_level(logging.INFO):
        result = example_task.handler(payload, lambda_context)

    # then: the code ran as a manual run, said it was not recorded, and echoed the payload.
    # (caplog, not capsys: Powertools binds its handler to whatever sys.stdout was when the
    # first Logger of a service was made.)
    assert result["status"] == "SUCCEEDED"
    assert result["recorded"] is False
    assert result["result"] == {"ok": True, "echo": payload}
    logged = [record.payload for record in caplog.records if hasattr(record, "payload")]
    assert logged == [payload]
    assert any("not recorded" in record.getMessage() for record in caplog.records)
