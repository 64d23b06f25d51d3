"""Engines left behind by an owner that is gone: found by their data directory, and stopped."""

from __future__ import annotations

import itertools
import logging
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from cronfleet_tools.local.dynamodb_local.errors import DynamoDBLocalError
from cronfleet_tools.local.dynamodb_local.launcher import LAUNCHER_CLASS

logger = logging.getLogger(__name__)


STOP_TIMEOUT_SECONDS = 10.0

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
