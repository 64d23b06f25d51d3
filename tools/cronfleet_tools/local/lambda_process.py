"""Run the template's functions locally, in sandboxes of their own, as Lambda would.

:class:`LocalLambda` is the local stand-in for the Lambda service:

- :meth:`LocalLambda.run` is a synchronous invoke. The function's first invocation is a cold
  start: a new Python process imports the handler with the function's environment (the init
  phase, limited to 10 seconds). Later ones go to an idle process of the same function, a warm
  worker, as Lambda reuses a sandbox (:mod:`cronfleet_tools.local.warm`); a timeout or a crash
  discards it. With ``warm=False`` (``cronfleet run --cold``) every invocation gets a new
  process, which runs the handler once. Either way the function's timeout is enforced by
  killing the process, which is reported as Lambda reports it (``Sandbox.Timedout``), and each
  invocation's output goes to its own log file.
- :meth:`LocalLambda.invoke` is ``InvocationType=Event``: the invoke returns at once, the run
  happens on a worker thread, and a failed run (an unhandled error, a crash, a timeout) goes to
  the function's on-failure destination as the record Lambda sends, after the configured
  retries. It is the :class:`~cronfleet.invoker.Invoker` the local dispatcher uses.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cronfleet.invoker import InvokeError
from cronfleet_tools.local.bootstrap import CLOCK_VARIABLE
from cronfleet_tools.local.functions import LocalFunction
from cronfleet_tools.local.warm import Setup, WarmWorkers, Worker

logger = logging.getLogger(__name__)

INIT_TIMEOUT_SECONDS = 10  # Lambda's limit on the init phase
TIMED_OUT = "Sandbox.Timedout"


@dataclass(frozen=True)
class Invocation:
    """What one invocation did: its result, or the error Lambda would report."""

    function: str
    request_id: str
    event: Any
    started_at: datetime  # on the clock the runner runs on
    ended_at: datetime
    duration_seconds: float
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    log_path: Path | None = None

    @property
    def failed(self) -> bool:
        return self.error_type is not None

    @property
    def timed_out(self) -> bool:
        return self.error_type == TIMED_OUT

    def failure_record(self, function_arn: str, attempts: int) -> dict[str, Any]:
        """The record Lambda sends an on-failure destination (see events/recorder_*.json)."""
        return {
            "version": "1.0",
            # When the invocation failed, as Lambda stamps it; the recorder takes it as the end.
            "timestamp": self.ended_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "requestContext": {
                "requestId": self.request_id,
                "functionArn": f"{function_arn}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": self.event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {
                "errorMessage": self.error_message or "",
                "errorType": self.error_type or "Unhandled",
            },
        }


@dataclass
class LocalLambda:
    functions: Mapping[str, LocalFunction]
    # Variables every function gets on top of its own: credentials, endpoints, region.
    runtime_environment: Mapping[str, str]
    log_dir: Path
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    simulated: bool = False  # pass the clock's time to the function (a replay)
    max_concurrency: int = 4
    on_invocation: Callable[[Invocation], None] | None = None
    python: str = sys.executable
    region: str = "us-east-1"
    # Lambda's own check before it hands a failure to a function's on-failure destination: the
    # failing function's role must allow invoking it (logical id of the source, destination).
    authorize_destination: Callable[[str, str], None] | None = None
    # Keep warm workers between invocations, as Lambda keeps sandboxes (cronfleet_tools.local
    # .warm); False (`--cold`): a new process for every invocation.
    warm: bool = True
    _pool: ThreadPoolExecutor | None = field(default=None, init=False)
    _pending: set[Future[None]] = field(default_factory=set, init=False)
    _processes: set[subprocess.Popen[bytes]] = field(default_factory=set, init=False)
    _closing: bool = field(default=False, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _settled: threading.Condition = field(init=False)  # the last pending invoke is done
    _workers: WarmWorkers = field(init=False)

    def __post_init__(self) -> None:
        self._settled = threading.Condition(self._lock)
        self._workers = WarmWorkers(keep=self.max_concurrency)

    # --- InvocationType=RequestResponse ------------------------------------------------------

    def run(self, name: str, event: Any) -> Invocation:
        function = self.function(name)
        request_id = str(uuid.uuid4())
        log_path = self.log_dir / function.logical_id / f"{request_id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started_at = self.clock()
        environment = self._environment(function, started_at)
        began = time.monotonic()
        outcome = None
        if self.warm:
            outcome = self._run_warm(function, request_id, event, environment, log_path)
        if outcome is None:  # --cold, or after shutdown: a process of its own
            outcome = self._run_cold(function, request_id, event, environment, log_path)
        invocation = Invocation(
            function=function.logical_id,
            request_id=request_id,
            event=event,
            started_at=started_at,
            ended_at=self.clock(),
            duration_seconds=time.monotonic() - began,
            result=outcome.get("result"),
            error_type=outcome.get("errorType"),
            error_message=outcome.get("errorMessage"),
            log_path=log_path,
        )
        # Journalled for the `make run` window, which shows runs other processes started too.
        # (Imported here: the journal reads Invocations back, so it imports this module.)
        from cronfleet_tools.local.journal import JOURNAL_FILE, append

        append(self.log_dir / JOURNAL_FILE, invocation)
        if self.on_invocation is not None:
            self.on_invocation(invocation)
        return invocation

    def _run_cold(
        self,
        function: LocalFunction,
        request_id: str,
        event: Any,
        environment: dict[str, str],
        log_path: Path,
    ) -> dict[str, Any]:
        """One invocation in a process of its own, which exits after it."""
        result_path = log_path.with_suffix(".result.json")
        read_end, write_end = os.pipe()
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    self.python,
                    "-m",
                    "cronfleet_tools.local.bootstrap",
                    function.handler,
                    request_id,
                    str(result_path),
                    str(write_end),
                    str(function.timeout_seconds),
                ],
                cwd=function.code_dir,
                env=environment,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_end,),
                # Its own session: Ctrl-C in the terminal stops the runner, which then stops
                # the runs it started, rather than every run dying mid-write on its own.
                start_new_session=True,
            )
        os.close(write_end)
        with self._lock:
            self._processes.add(process)
        try:
            outcome = self._wait(process, function, read_end, json.dumps(event).encode())
        finally:
            os.close(read_end)
            with self._lock:
                self._processes.discard(process)
        if outcome is None:  # the process finished on its own
            outcome = self._read_result(result_path, process.returncode, request_id)
        result_path.unlink(missing_ok=True)
        return outcome

    def _run_warm(
        self,
        function: LocalFunction,
        request_id: str,
        event: Any,
        environment: dict[str, str],
        log_path: Path,
    ) -> dict[str, Any] | None:
        """One invocation in a warm worker of the function (:mod:`cronfleet_tools.local.warm`),
        started for it if none is idle; None once the workers are shut down."""
        setup = Setup.of(
            function.logical_id, function.handler, function.code_dir, self.python, environment
        )
        request = {
            "request_id": request_id,
            "event": event,
            "timeout": function.timeout_seconds,
            "clock": environment.get(CLOCK_VARIABLE),
            "log": str(log_path),
        }
        worker = self._workers.take(setup)
        if worker is not None:
            log_path.write_bytes(b"")  # the worker appends; readers find the file at once
            if worker.send(request):
                return self._finish(worker, function, request_id)
            # It died while idle (killed from outside): a new sandbox serves the invocation.
            self._workers.discard(worker, exited=True)
        if self._workers.closed:
            return None
        with log_path.open("wb") as log:
            worker = Worker.start(setup, environment, log)
        if not self._workers.add(worker):
            return None
        worker.send(request)  # read first thing; if the worker is gone, receive says so
        try:
            ready = worker.receive(INIT_TIMEOUT_SECONDS)
        except TimeoutError:
            self._workers.discard(worker)
            return {
                "errorType": "Runtime.InitError",
                "errorMessage": f"Init did not finish within {INIT_TIMEOUT_SECONDS} seconds",
            }
        if ready is None:
            return _exit_error(request_id, self._workers.discard(worker, exited=True))
        if "init_error" in ready:  # reported as Lambda reports it; the worker exits
            self._workers.discard(worker, exited=True)
            init_error: dict[str, Any] = ready["init_error"]
            return init_error
        return self._finish(worker, function, request_id)

    def _finish(self, worker: Worker, function: LocalFunction, request_id: str) -> dict[str, Any]:
        """Wait for a busy worker's outcome within the function's timeout; keep the worker
        unless the sandbox is gone (a timeout, a crash), as Lambda keeps it."""
        try:
            message = worker.receive(function.timeout_seconds)
        except TimeoutError:
            self._workers.discard(worker)
            return self._timed_out(function)
        if message is None:  # the runtime exited: killed, out of memory, os._exit()
            return _exit_error(request_id, self._workers.discard(worker, exited=True))
        self._workers.release(worker)
        outcome: dict[str, Any] = message["outcome"]
        return outcome

    def _wait(
        self, process: subprocess.Popen[bytes], function: LocalFunction, ready: int, event: bytes
    ) -> dict[str, Any] | None:
        """Feed the event, enforce the init and run time limits; an outcome if one was hit."""
        readable, _, _ = select.select([ready], [], [], INIT_TIMEOUT_SECONDS)
        if not readable:
            _kill(process)
            return {
                "errorType": "Runtime.InitError",
                "errorMessage": f"Init did not finish within {INIT_TIMEOUT_SECONDS} seconds",
            }
        assert process.stdin is not None
        try:
            process.stdin.write(event)
            process.stdin.close()
        except BrokenPipeError:
            pass  # the init failed and the process is gone; its result says why
        try:
            process.wait(timeout=function.timeout_seconds)
        except subprocess.TimeoutExpired:
            _kill(process)
            return self._timed_out(function)
        return None

    def _timed_out(self, function: LocalFunction) -> dict[str, Any]:
        ended = self.clock().astimezone(UTC).isoformat(timespec="milliseconds")
        return {
            "errorType": TIMED_OUT,
            "errorMessage": f"{ended.replace('+00:00', 'Z')} Task timed out after "
            f"{function.timeout_seconds:.2f} seconds",
        }

    @staticmethod
    def _read_result(path: Path, returncode: int, request_id: str) -> dict[str, Any]:
        try:
            outcome: dict[str, Any] = json.loads(path.read_text())
            return outcome
        except (FileNotFoundError, json.JSONDecodeError):
            # Killed, out of memory, or os._exit(): no result, as when a Lambda runtime dies.
            return _exit_error(request_id, returncode)

    def _environment(self, function: LocalFunction, started_at: datetime) -> dict[str, str]:
        layer = Path(__file__).resolve().parents[2]  # layers/cronfleet, as /opt/python
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join([str(function.code_dir), str(layer)]),
            "PYTHONUNBUFFERED": "1",
            "TZ": "UTC",
            # As in `sam local invoke`'s container. The X-Ray SDK reads LAMBDA_TASK_ROOT to know
            # it is in Lambda; elsewhere it builds a sampling client on import (~0.2 s).
            "AWS_SAM_LOCAL": "true",
            "LAMBDA_TASK_ROOT": str(function.code_dir),
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_LAMBDA_FUNCTION_NAME": function.logical_id,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout_seconds),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.logical_id}",
            **function.environment,
            **self.runtime_environment,
        }
        if self.simulated:
            environment[CLOCK_VARIABLE] = started_at.isoformat()
        return environment

    def function(self, name: str) -> LocalFunction:
        """A function by logical id, or by the name or ARN a task definition gives."""
        logical_id = name.rsplit(":function:", 1)[-1].split(":", 1)[0]
        try:
            return self.functions[logical_id]
        except KeyError:
            raise InvokeError(
                "ResourceNotFoundException", f"Function not found in the template: {name}"
            ) from None

    def function_arn(self, logical_id: str) -> str:
        return f"arn:aws:lambda:{self.region}:123456789012:function:{logical_id}"

    # --- InvocationType=Event ----------------------------------------------------------------

    def invoke(self, function: str, event: dict[str, Any]) -> None:
        target = self.function(function)  # an unknown function fails the invoke, as in Lambda
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="lambda")
            future = self._pool.submit(self._run_event, target, event)
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)
            self._settled.notify_all()

    def _run_event(self, function: LocalFunction, event: dict[str, Any]) -> None:
        attempts = 0
        while True:
            attempts += 1
            invocation = self.run(function.logical_id, event)
            if not invocation.failed or attempts > function.max_retries or self._closing:
                break
        if invocation.failed and function.on_failure and not self._closing:
            record = invocation.failure_record(self.function_arn(function.logical_id), attempts)
            if self.authorize_destination is not None:
                try:
                    self.authorize_destination(function.logical_id, function.on_failure)
                except Exception:
                    # As on AWS: the failure is not delivered, and only the logs say why.
                    logger.exception(
                        "On-failure destination not invoked: the function's role may not",
                        extra={"function": function.logical_id, "destination": function.on_failure},
                    )
                    return
            self.run(function.on_failure, record)

    def busy(self) -> bool:
        with self._lock:
            return bool(self._pending)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued invoke (and its on-failure record) is done."""
        # Woken by the last invoke's end, not polled: a replay drains after each of its
        # thousands of ticks, and each poll's wait would add to every one.
        with self._lock:
            return self._settled.wait_for(lambda: not self._pending, timeout)

    def shutdown(self, *, kill: bool = False) -> None:
        """Stop taking invokes; wait for the runs under way, or with ``kill`` end them now.

        A killed run records nothing, as when a Lambda sandbox disappears: its attempt stays
        RUNNING until the watchdog times it out on a later tick. The warm workers are stopped
        either way; a run after this one gets a process of its own, as with ``--cold``.
        """
        with self._lock:
            pool, self._pool = self._pool, None
            self._closing = kill
            processes = list(self._processes) if kill else []
        for process in processes:
            _kill(process)
        if kill:
            self._workers.shutdown(kill=True)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._workers.shutdown()

    def worker_pids(self) -> set[int]:
        """The processes of the warm workers, idle or busy (for tests and the benchmark)."""
        return self._workers.pids()


def _exit_error(request_id: str, returncode: int) -> dict[str, Any]:
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: "
        f"exit status {returncode}",
    }


def _kill(process: subprocess.Popen[bytes]) -> None:
    """End the invocation and anything it started: its session is its sandbox."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
