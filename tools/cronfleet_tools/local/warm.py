"""Warm function workers: the sandboxes the local Lambda keeps between invocations.

Lambda runs a function's first invocation in a new execution environment (a cold start: the
init phase imports the handler) and later ones, when it can, in an environment that is idle
and already initialised (a warm start). Locally a sandbox is a worker process, started as
`python -m cronfleet_tools.local.bootstrap --serve` with the function's environment; this
module keeps them, per function, and the bootstrap runs inside them. What Lambda does with a
sandbox after an invocation, the local Lambda does with a worker:

- a result, or an error the handler raised: the worker is kept for the next invocation;
- a timeout, or a runtime that exits (a crash, ``os._exit``, a kill, out of memory), or an
  init error: the worker is discarded, and the next invocation starts a new one. (AWS: "If
  the Lambda function crashes or times out during the Invoke phase, Lambda resets the
  execution environment.")

A worker only ever serves the function, handler, code and environment it was started with
(:class:`Setup`); an invocation whose environment differs gets a new worker, and idle workers
of the old one are stopped. The handler's module stays imported, so its module-level state
(clients, caches, counters) persists between warm invocations, as in a Lambda sandbox. One
difference: Lambda freezes an idle sandbox, and a worker is not frozen, so a thread the handler
left running goes on between invocations; what it prints then goes nowhere, as it would reach
no invocation's log.

The parent and a worker speak over two pipes of their own, so the function's stdout and
stderr stay free for its logs: frames of JSON (:func:`~cronfleet_tools.local.bootstrap
.send_message`), the parent's requests one way, ``ready``/``init_error`` and each
invocation's ``outcome`` the other. A worker whose parent dies sees its requests end and
exits: no worker outlives the local Lambda that started it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cronfleet_tools.local.bootstrap import (
    CLOCK_VARIABLE,
    FRAME_HEADER,
    SERVE,
    encode_message,
)

# An idle worker asked to stop (its requests closed) has this long to exit on its own.
STOP_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class Setup:
    """What a worker is started with, so what it can serve: one function, as configured."""

    function: str
    handler: str
    code_dir: Path
    python: str
    # The process's environment, less the clock, which each invocation sets for itself.
    environment: tuple[tuple[str, str], ...]

    @classmethod
    def of(
        cls, function: str, handler: str, code_dir: Path, python: str, environment: dict[str, str]
    ) -> Setup:
        fixed = sorted((k, v) for k, v in environment.items() if k != CLOCK_VARIABLE)
        return cls(function, handler, code_dir, python, tuple(fixed))


@dataclass(eq=False)
class Worker:
    """One warm worker process, seen from the parent."""

    setup: Setup
    process: subprocess.Popen[bytes]
    _requests: int  # the parent's end of each pipe
    _responses: int
    _closed: bool = field(default=False, init=False)

    @classmethod
    def start(cls, setup: Setup, environment: dict[str, str], log: IO[bytes]) -> Worker:
        """Start a worker whose output, until its first request is done, goes to ``log``."""
        requests_read, requests_write = os.pipe()
        responses_read, responses_write = os.pipe()
        try:
            process = subprocess.Popen(
                [
                    setup.python,
                    "-m",
                    "cronfleet_tools.local.bootstrap",
                    SERVE,
                    setup.handler,
                    str(requests_read),
                    str(responses_write),
                ],
                cwd=setup.code_dir,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(requests_read, responses_write),
                # Its own session, as a cold invocation's: Ctrl-C stops the runner, which then
                # stops its workers; and a timeout kills everything the handler started.
                start_new_session=True,
            )
        except BaseException:
            for fd in (requests_write, responses_read):
                os.close(fd)
            raise
        finally:
            os.close(requests_read)
            os.close(responses_write)
        return cls(setup, process, requests_write, responses_read)

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, request: dict[str, Any]) -> bool:
        """Hand the worker a request; False if it is gone."""
        if self.process.poll() is not None:  # it exited while idle (killed from outside)
            return False
        data = encode_message(request)
        try:
            while data:
                written = os.write(self._requests, data)
                data = data[written:]
        except OSError:  # BrokenPipeError: it exited while idle
            return False
        return True

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The worker's next message; None if it exited first. TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        header = self._read(FRAME_HEADER.size, deadline)
        if header is None:
            return None
        (length,) = FRAME_HEADER.unpack(header)
        payload = self._read(length, deadline)
        if payload is None:
            return None
        message: dict[str, Any] = json.loads(payload)
        return message

    def _read(self, size: int, deadline: float) -> bytes | None:
        data = bytearray()
        while len(data) < size:
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([self._responses], [], [], max(0.0, remaining))
            if not readable:
                raise TimeoutError
            chunk = os.read(self._responses, size - len(data))
            if not chunk:
                return None
            data += chunk
        return bytes(data)

    def kill(self) -> None:
        """End the worker and anything it started: its session is its sandbox."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def reap(self) -> int:
        """The exit status of a worker that has exited (its output pipe ended)."""
        try:
            return self.process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:  # it closed the pipe yet lives on: no sandbox left
            self.kill()
            return self.process.returncode

    def stop(self) -> None:
        """Ask an idle worker to exit (its requests end), and make sure it does."""
        self._close_requests()
        try:
            self.process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
        self.close()

    def _close_requests(self) -> None:
        if self._requests >= 0:
            os.close(self._requests)
            self._requests = -1

    def close(self) -> None:
        """Release the parent's ends of the pipes (by the one thread that owns the worker)."""
        if not self._closed:
            self._closed = True
            self._close_requests()
            os.close(self._responses)


class WarmWorkers:
    """The idle workers of one local Lambda, by function, and every worker it started.

    At most ``keep`` idle workers of a function are kept (the local Lambda's concurrency);
    one more coming back from an invocation is stopped. After :meth:`shutdown` nothing is kept.
    """

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._idle: dict[str, list[Worker]] = {}
        self._started: set[Worker] = set()
        self._closed = False
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._closed

    def take(self, setup: Setup) -> Worker | None:
        """An idle worker for ``setup``, now busy; None if there is none (a cold start)."""
        with self._lock:
            if self._closed:
                return None
            idle = self._idle.get(setup.function, [])
            # The function's configuration changed: its old workers will never serve again.
            stale = [worker for worker in idle if worker.setup != setup]
            fitting = [worker for worker in idle if worker.setup == setup]
            # The most recently used first, as Lambda tends to reuse its warmest sandbox.
            found = fitting.pop() if fitting else None
            self._idle[setup.function] = fitting
            for worker in stale:
                self._started.discard(worker)
        for worker in stale:
            worker.stop()
        return found

    def add(self, worker: Worker) -> bool:
        """Count a newly started (busy) worker in; False, and it is killed, after shutdown."""
        with self._lock:
            if not self._closed:
                self._started.add(worker)
                return True
        worker.kill()
        worker.close()
        return False

    def release(self, worker: Worker) -> None:
        """A worker whose invocation ended normally: kept idle for the next one, if wanted."""
        with self._lock:
            idle = self._idle.setdefault(worker.setup.function, [])
            keep = not self._closed and worker in self._started and len(idle) < self.keep
            if keep:
                idle.append(worker)
            else:
                self._started.discard(worker)
        if not keep:
            worker.stop()

    def discard(self, worker: Worker, *, exited: bool = False) -> int:
        """A worker that timed out, crashed or failed its init: gone for good. Its exit status."""
        with self._lock:
            self._started.discard(worker)
        if exited:
            status = worker.reap()
        else:
            worker.kill()
            status = worker.process.returncode
        worker.close()
        return status

    def pids(self) -> set[int]:
        with self._lock:
            return {worker.pid for worker in self._started}

    def shutdown(self, *, kill: bool = False) -> None:
        """Stop the idle workers, and from now on every worker that comes back. With ``kill``,
        busy workers are killed too; the invocations they ran then end as crashes."""
        with self._lock:
            self._closed = True
            idle = [worker for workers in self._idle.values() for worker in workers]
            self._idle.clear()
            busy = [worker for worker in self._started if worker not in idle] if kill else []
            self._started.difference_update(idle)
        for worker in busy:
            worker.kill()  # its invocation's thread sees the end, and closes the pipes
        for worker in idle:
            if kill:
                worker.kill()
                worker.close()
            else:
                worker.stop()
