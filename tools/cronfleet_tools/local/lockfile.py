"""An exclusive lock on a file, held for a process's life, with a note of who holds it.

The lock is ``flock``: the kernel drops it when its holder exits, however it exits (SIGKILL, a
crash), so a lock that cannot be taken always means a live holder, never a stale file. The
file's content is a small JSON record the holder writes (its pid, what it started); it stays
after the holder is gone, which is how the next holder learns what a crashed one left behind.

The file is never deleted: a process that opened it just before the unlink would lock an
inode nobody else can see, and two processes would each believe they hold the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from cronfleet.errors import CronfleetError


class LockHeld(CronfleetError, RuntimeError):
    """Someone else holds the lock; ``record`` is what they wrote in it (maybe nothing yet)."""

    def __init__(self, path: Path, record: dict[str, Any]) -> None:
        super().__init__(f"{path} is locked by process {record.get('pid', '(unknown)')}")
        self.path = path
        self.record = record

    @property
    def pid(self) -> int | None:
        pid = self.record.get("pid")
        return pid if isinstance(pid, int) else None


# How often a waiting acquire() tries again: holders worth waiting for are gone in seconds.
WAIT_POLL_SECONDS = 0.1


class LockFile:
    """``acquire()`` returns the record the previous holder left; ``write()`` replaces it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(
        self,
        record: Mapping[str, Any] | None = None,
        *,
        wait_while: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 0.0,
    ) -> dict[str, Any]:
        """Take the lock and write ``record`` (with our pid) in it, in one step, so nobody
        ever sees the lock ours without it. While the holder's record satisfies
        ``wait_while``, try again for up to ``timeout`` seconds; then raise :class:`LockHeld`.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._acquire(record or {})
            except LockHeld as held:
                if wait_while is None or not wait_while(held.record):
                    raise
                if time.monotonic() >= deadline:
                    raise
                time.sleep(WAIT_POLL_SECONDS)

    def _acquire(self, record: Mapping[str, Any]) -> dict[str, Any]:
        if self._file is not None:
            raise RuntimeError(f"{self.path} is already locked by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Opened without truncating: the record is only read, and replaced, once the lock is
        # ours. os.open makes the descriptor non-inheritable, so no child process (the Java
        # engine, a function) holds the lock on after we are gone.
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        handle = os.fdopen(descriptor, "r+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            record = _read(handle)
            handle.close()
            raise LockHeld(self.path, record) from None
        except BaseException:
            handle.close()
            raise
        self._file = handle
        previous = _read(handle)
        self.write(**record)
        return previous

    def write(self, **record: Any) -> None:
        """Replace the record (the holder's pid is always in it)."""
        if self._file is None:
            raise RuntimeError(f"{self.path} is not locked by this object")
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps({"pid": os.getpid(), **record}) + "\n")
        self._file.flush()

    def release(self, **record: Any) -> None:
        """Leave ``record`` (a clean stop leaves just the pid) and unlock. Harmless if not held."""
        if self._file is None:
            return
        try:
            with contextlib.suppress(OSError):
                self.write(**record)
        finally:
            handle, self._file = self._file, None
            handle.close()  # closing the only descriptor of it releases the flock


def _read(handle: IO[str]) -> dict[str, Any]:
    handle.seek(0)
    try:
        record = json.loads(handle.read() or "{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return record if isinstance(record, dict) else {}
