"""Fixtures shared by every test level: the repository, its template, its events, a Lambda context.

Network policy (see pytest's addopts): sockets are disabled for every test; tests marked
``integration`` (everything under tests/integration is marked automatically) may reach loopback
only, which is where DynamoDB Local listens.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

REPO_ROOT = Path(__file__).resolve().parent.parent
INTEGRATION_DIR = REPO_ROOT / "tests" / "integration"
E2E_DIR = REPO_ROOT / "tests" / "e2e"
LOOPBACK_HOSTS = ["127.0.0.1", "::1"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.integration)
        if item.path.is_relative_to(E2E_DIR):
            # End to end: the whole local stack, so a real engine too.
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.integration)
        if item.get_closest_marker("integration") and not item.get_closest_marker("allow_hosts"):
            item.add_marker(pytest.mark.allow_hosts(LOOPBACK_HOSTS))


@pytest.fixture(autouse=True)
def _cli_width_from_the_terminal() -> Iterator[None]:
    """After each test, the CLI's consoles ask the terminal (COLUMNS) for their width again.

    rich keeps a width once it is set, and undoing a monkeypatch of ``console.width`` sets the
    width it read before, fixed: a later test's COLUMNS would no longer count, and its tables
    would come out at another test's width.
    """
    yield
    common = sys.modules.get("cronfleet_tools.cli.common")
    if common is not None:
        for console in (common.console, common.error_console):
            console._width = None


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def load_template(path: Path) -> dict[str, Any]:
    """template.yaml as plain dicts and lists, short-form tags (!Ref, !GetAtt, !Sub...) expanded
    to their long form ({"Ref": ...}, {"Fn::GetAtt": [...]}), the way CloudFormation reads it."""
    document, problems = decode(str(path))
    if problems or document is None:
        raise ValueError(f"{path} does not parse: {[str(p) for p in problems]}")
    # cfn-lint returns node subclasses that carry line marks; plain data is safer to hand on.
    plain: dict[str, Any] = json.loads(json.dumps(document))
    return plain


@pytest.fixture(scope="session")
def _template_document(repo_root: Path) -> dict[str, Any]:
    return load_template(repo_root / "template.yaml")


@pytest.fixture
def template(_template_document: dict[str, Any]) -> dict[str, Any]:
    """The parsed template; each test gets its own copy and may change it."""
    return copy.deepcopy(_template_document)


@pytest.fixture(scope="session")
def events_dir(repo_root: Path) -> Path:
    return repo_root / "events"


@pytest.fixture(scope="session")
def load_event(events_dir: Path) -> Callable[[str], Any]:
    """Load events/<name>.json, the same file `sam local invoke -e` uses."""

    def load(name: str) -> Any:
        path = events_dir / (name if name.endswith(".json") else f"{name}.json")
        return json.loads(path.read_text())

    return load


@dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str = "cronfleet-test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:cronfleet-test-function"
    )
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"
    log_group_name: str = "/aws/lambda/cronfleet-test-function"
    log_stream_name: str = "2025/01/06/[$LATEST]0123456789abcdef0123456789abcdef"
    remaining_time_in_millis: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_time_in_millis


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()
