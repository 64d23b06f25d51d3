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


def test_example_task_echoes_its_payload_and_logs_it(
    example_task: ModuleType,
    load_event: Any,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given: the sample event from events/
    payload = load_event("example_task")

    # when: the handler runs
    with caplog.at_level(logging.INFO):
        result = example_task.handler(payload, lambda_context)

    # then: it echoes the payload and logs one line carrying it. (caplog, not capsys: Powertools
    # binds its handler to whatever sys.stdout was when the first Logger of a service was made.)
    assert result == {"ok": True, "echo": payload}
    logged = [record.payload for record in caplog.records if hasattr(record, "payload")]
    assert logged == [payload]
