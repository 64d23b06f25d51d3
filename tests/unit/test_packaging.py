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

# Only the tooling uses these; they have no business in Lambda.
CLI_ONLY = {"typer", "rich", "pyyaml", "aws-sam-translator"}


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


# --- two packages: the runtime in the layer, the tooling never --------------------------------

RUNTIME_PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "cronfleet" / "cronfleet"
TOOLING_PACKAGE = Path(__file__).resolve().parents[2] / "tools" / "cronfleet_tools"
# What the layer does not ship: importing any of them in Lambda is an ImportError.
TOOLING_IMPORTS = {"typer", "rich", "yaml", "samtranslator", "cronfleet_tools"}


def _modules(package: Path) -> dict[str, Path]:
    """Every module of a package, by dotted name."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imports(path: Path, *, module_level_only: bool) -> set[str]:
    """The modules a file imports; with ``module_level_only``, only those its import runs
    (not those inside functions, nor behind ``if TYPE_CHECKING:``)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes: list[ast.AST] = []
    if module_level_only:
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            nodes.extend(ast.walk(node) if isinstance(node, ast.If | ast.Try) else [node])
    else:
        nodes = list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_no_runtime_module_imports_the_tooling_or_what_only_it_uses() -> None:
    # Given every module of the runtime package, the layer's contents
    offenders = {
        name: sorted(
            imported
            for imported in _imports(path, module_level_only=False)
            if imported.split(".")[0] in TOOLING_IMPORTS
        )
        for name, path in _modules(RUNTIME_PACKAGE).items()
    }

    # Then none imports typer, rich, yaml, the SAM translator or the tooling package, even
    # lazily: in Lambda each would be an ImportError waiting for its first call
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_layer_holds_the_runtime_package_and_nothing_of_the_tooling(repo_root: Path) -> None:
    # Given what `sam build` puts in the layer (ContentUri: layers/cronfleet)
    content = repo_root / "layers" / "cronfleet"
    built = repo_root / ".aws-sam" / "build" / "CronfleetLayer" / "python"

    # Then the source holds the runtime package and its requirements only, and a built layer,
    # when there is one, has no tooling in it
    tracked = [p.name for p in content.iterdir() if not p.name.endswith(".egg-info")]
    assert sorted(tracked) == [
        "cronfleet",
        "requirements.txt",
    ]
    if built.is_dir():
        assert not (built / "cronfleet_tools").exists()
        shipped = {p.name for p in (built / "cronfleet").iterdir()}
        assert shipped.isdisjoint(
            {"cli.py", "local", "migration.py", "importers", "audit.py", "views.py"}
        )


def test_no_module_imports_one_that_imports_it_back() -> None:
    # Given the module-level imports of both packages (those that run when a module loads)
    modules = _modules(RUNTIME_PACKAGE) | _modules(TOOLING_PACKAGE)
    # (A module's own packages are not counted: Python loads them first, whatever it imports.)
    edges = {
        name: {
            imported
            for imported in _imports(path, module_level_only=True)
            if imported in modules and not name.startswith(f"{imported}.") and imported != name
        }
        for name, path in modules.items()
    }

    # Then there is no cycle among them
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(edges[name]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(modules):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_every_public_exception_shares_the_one_base_class() -> None:
    import importlib
    import inspect

    from cronfleet.errors import CronfleetError

    # Given every exception class a module of either package defines under a public name
    defined = {
        f"{name}.{cls.__name__}": cls
        for name in sorted(_modules(RUNTIME_PACKAGE) | _modules(TOOLING_PACKAGE))
        if not name.endswith("__main__")
        for cls in vars(importlib.import_module(name)).values()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and cls.__module__ == name
        and not cls.__name__.startswith("_")
    }

    # Then each is a CronfleetError, so `except CronfleetError` catches all that cronfleet
    # raises on purpose
    assert len(defined) >= 25
    assert (
        sorted(name for name, cls in defined.items() if not issubclass(cls, CronfleetError)) == []
    )


# A newcomer reads a module whole; past this it wants to be split by concept.
MODULE_LINE_LIMIT = 550


def test_no_module_of_either_package_is_longer_than_a_reader_holds_in_mind() -> None:
    # Given every module of both packages
    lengths = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in (_modules(RUNTIME_PACKAGE) | _modules(TOOLING_PACKAGE)).items()
    }

    # Then none is over the limit
    assert {name: n for name, n in lengths.items() if n > MODULE_LINE_LIMIT} == {}
