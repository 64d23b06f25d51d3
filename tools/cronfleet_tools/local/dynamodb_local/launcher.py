"""The launcher class: the jar's own server, bound to loopback, exiting with its owner.

The jar has no bind-address option, so this small class (``LAUNCHER_SOURCE``, compiled once with
the runtime's own compiler module) builds the server with the jar's own code and sets its
connector's host to loopback before it starts.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from cronfleet_tools.local.dynamodb_local.errors import DynamoDBLocalError

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


def die_with_parent() -> Callable[[], None] | None:
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
