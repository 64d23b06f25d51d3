"""One set of versions everywhere: the layer `sam build` makes runs what the tests ran.

constraints.txt pins the development environment (make, CI); layers/cronfleet/requirements.txt
is what SAM installs into the Lambda layer. Both come from `make lock`; these tests catch a hand
edit or a half-done upgrade that would let them drift apart.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

# Only the CLI uses these; they have no business in Lambda.
CLI_ONLY = {"typer", "rich", "pyyaml"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return _normalise(match.group(0))


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"{path.name}: not an exact pin: {raw!r}"
        assert ";" not in version, f"{path.name}: environment markers are not expected: {raw!r}"
        pins[_normalise(name)] = version.strip()
    return pins


@pytest.fixture(scope="module")
def constraints(repo_root: Path) -> dict[str, str]:
    return _pins(repo_root / "constraints.txt")


@pytest.fixture(scope="module")
def layer_pins(repo_root: Path) -> dict[str, str]:
    return _pins(repo_root / "layers" / "cronfleet" / "requirements.txt")


@pytest.fixture(scope="module")
def pyproject(repo_root: Path) -> dict[str, object]:
    return tomllib.loads((repo_root / "pyproject.toml").read_text())


def test_every_layer_pin_equals_the_pin_in_constraints(
    layer_pins: dict[str, str], constraints: dict[str, str]
) -> None:
    mismatches = {
        name: (version, constraints.get(name))
        for name, version in layer_pins.items()
        if constraints.get(name) != version
    }

    assert mismatches == {}, "layer pin != constraints.txt pin (run `make lock`)"


def test_layer_ships_each_declared_dependency(
    layer_pins: dict[str, str], pyproject: dict[str, object]
) -> None:
    declared = pyproject["tool"]["cronfleet"]["layer"]["dependencies"]  # type: ignore[index]

    missing = {_requirement_name(d) for d in declared} - set(layer_pins)

    assert missing == set()


def test_layer_leaves_out_what_only_the_cli_uses(layer_pins: dict[str, str]) -> None:
    assert set(layer_pins) & CLI_ONLY == set()


def test_a_layer_botocore_comes_with_the_boto3_released_with_it(
    layer_pins: dict[str, str],
) -> None:
    # The X-Ray SDK puts botocore in the layer, where it shadows the runtime's. The runtime's
    # boto3 would then run on a botocore it was not released with; the layer carries both.
    assert layer_pins["botocore"] == layer_pins["boto3"]
    assert "s3transfer" in layer_pins


def test_every_dependency_is_pinned(
    constraints: dict[str, str], pyproject: dict[str, object]
) -> None:
    project = pyproject["project"]
    declared = [
        *project["dependencies"],  # type: ignore[index]
        *project["optional-dependencies"]["dev"],  # type: ignore[index]
    ]

    unpinned = {_requirement_name(d) for d in declared} - set(constraints)

    assert unpinned == set()


def test_this_environment_runs_the_pinned_versions(constraints: dict[str, str]) -> None:
    # The venv `make` builds installs with -c constraints.txt; a stale venv shows up here.
    stale = {}
    for name, pinned in constraints.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            stale[name] = (pinned, None)
            continue
        if installed != pinned:
            stale[name] = (pinned, installed)

    assert stale == {}, "re-run `make` to reinstall the venv from constraints.txt"
