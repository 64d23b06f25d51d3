"""One DynamoDB Local process: started on loopback, answered for, and always stopped again."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from cronfleet_tools.local.lockfile import LockFile, LockHeld

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_dynamodb import DynamoDBClient, DynamoDBServiceResource

from cronfleet_tools.local.dynamodb_local.errors import (
    DataDirInUse,
    JarNotFound,
    JavaNotFound,
    JavaTooOld,
    StartupFailed,
)
from cronfleet_tools.local.dynamodb_local.install import (
    DYNAMODB_LOCAL_VERSION,
    INSTALL_DIR_ENV,
    INSTALL_JAVA,
    JAR_GLOB,
    MIN_JAVA_VERSION,
    default_install_dir,
    fetch,
    find_jar,
    java_version,
)
from cronfleet_tools.local.dynamodb_local.launcher import (
    LAUNCHER_CLASS,
    LOOPBACK,
    compile_launcher,
    die_with_parent,
)
from cronfleet_tools.local.dynamodb_local.leftovers import (
    STOP_TIMEOUT_SECONDS,
    engines_on,
    stop_leftover_engine,
)

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 60.0

LOG_TAIL_LINES = 30
REGION = "us-east-1"
# Dummy credentials, given explicitly: nothing from the developer's environment or ~/.aws is
# read, so a client of the local engine can never reach a real account.
ACCESS_KEY = "cronfleetlocal"
SECRET_KEY = "cronfleetlocal"  # not a secret: DynamoDB Local accepts any key

ENGINE_LOCK = "cronfleet-engine.lock"


def free_loopback_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class DynamoDBLocal:
    """One DynamoDB Local process; makes boto3 clients that talk to it and nothing else.

    ``in_memory`` (the default) starts empty and leaves nothing on disk; ``db_path`` keeps the
    data in that directory across restarts, and only one engine at a time may run on it
    (``DataDirInUse`` otherwise). ``port=None`` takes a free loopback port. With
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
        self._own_launcher: Path | None = None  # compiled where no cache could be written
        self._lock = LockFile(self.db_path / ENGINE_LOCK) if self.db_path is not None else None

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
        try:
            launcher = self._launcher(java)
            self._lock_data()
            return self._start(java, jar, launcher)
        except BaseException:
            self.stop()
            raise

    def _start(self, java: str, jar: Path, launcher: Path) -> Self:
        # A free port can be taken by someone else between choosing it and Java binding it;
        # only a port we chose ourselves is worth choosing again.
        tries = 1 if self.requested_port is not None else 3
        for attempt in range(1, tries + 1):
            port = self.requested_port or free_loopback_port()
            log_path = self._open_log_path()
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    self._command(java, jar, launcher, port),
                    cwd=jar.parent,
                    # A pipe whose write end only this process holds: the engine exits when it
                    # ends, which is when we are gone, by stop() or by SIGKILL alike.
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Out of the terminal's process group: Ctrl-C reaches the owner, which
                    # then stops the engine after its last writes, not in the middle of them.
                    start_new_session=True,
                    preexec_fn=die_with_parent(),
                )
            self._process, self._port = process, port
            atexit.register(self.stop)
            if self._lock is not None:
                self._lock.write(engine=process.pid, db_path=str(self.db_path))
            try:
                self._wait_until_ready(process, port, log_path)
                return self
            except StartupFailed as exc:
                self._stop_process()
                if attempt < tries and "Address already in use" in str(exc):
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Terminate the engine (kill it if it will not stop) and wait until it is gone."""
        self._stop_process()
        if self._lock is not None:
            self._lock.release()  # the record keeps our pid only: no engine left to stop
        self._remove_own_log()
        if self._own_launcher is not None:
            shutil.rmtree(self._own_launcher, ignore_errors=True)
            self._own_launcher = None

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
        return f"http://{LOOPBACK}:{self.port}"

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
            raise JavaNotFound(f"DynamoDB Local needs Java {MIN_JAVA_VERSION}+: {INSTALL_JAVA}")
        version = java_version(java)
        if version < MIN_JAVA_VERSION:
            raise JavaTooOld(
                f"DynamoDB Local needs Java {MIN_JAVA_VERSION}+, but {java} is Java {version}: "
                f"{INSTALL_JAVA}, or put a newer java first on PATH"
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

    def _command(self, java: str, jar: Path, launcher: Path, port: int) -> list[str]:
        storage = ["-inMemory"] if self.db_path is None else ["-dbPath", str(self.db_path)]
        # The launcher class instead of `-jar`: it binds to loopback (see LAUNCHER_SOURCE). The
        # jar's manifest still puts DynamoDBLocal_lib/*.jar on the class path.
        # -sharedDb: one database whatever credentials and region a client signs with, so data
        # kept in db_path is found again by any client.
        return [
            java,
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-Dcronfleet.exitWithOwner=true",
            "-cp",
            os.pathsep.join([str(launcher), str(jar)]),
            LAUNCHER_CLASS,
            *storage,
            "-sharedDb",
            "-port",
            str(port),
            "-disableTelemetry",
        ]

    def _launcher(self, java: str) -> Path:
        """A directory with the compiled launcher class: compiled once, kept next to the jar."""
        try:
            return compile_launcher(java, self.install_dir / "cronfleet-launcher")
        except OSError:
            # A read-only install directory: compile a private copy, removed at stop().
            self._own_launcher = Path(tempfile.mkdtemp(prefix="cronfleet-launcher-"))
            return compile_launcher(java, self._own_launcher)

    def _lock_data(self) -> None:
        """Lock db_path for this engine, after stopping any engine left on it by a dead owner."""
        if self._lock is None or self.db_path is None:
            return
        self.db_path.mkdir(parents=True, exist_ok=True)
        try:
            previous = self._lock.acquire()
        except LockHeld as held:
            raise DataDirInUse(self.db_path, held.pid) from None
        # The lock is ours, so whoever started an engine on this data is gone. Its engine may
        # still run: the pid it recorded, and (on Linux) any other DynamoDB Local on this very
        # db_path, such as one started before engines were locked. stop_leftover_engine checks
        # each is really that before it signals it.
        leftovers = set(engines_on(self.db_path))
        recorded = previous.get("engine")
        if isinstance(recorded, int):
            leftovers.add(recorded)
        for pid in sorted(leftovers):
            stop_leftover_engine(pid, self.db_path)

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
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()

    def _remove_own_log(self) -> None:
        if self._own_log is not None:
            self._own_log.unlink(missing_ok=True)
            self._own_log = None


def _answers(port: int) -> bool:
    """True once the engine answers an HTTP request: any status will do, even a refusal."""
    request = urllib.request.Request(
        f"http://{LOOPBACK}:{port}/",
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
