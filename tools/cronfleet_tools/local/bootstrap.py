"""The runtime inside a local function's process: `python -m cronfleet_tools.local.bootstrap`.

It plays the part of Lambda's Python runtime for the local runner: import the handler (the
init phase), call it with the event and a Lambda-like context, and report the result or the
error in the runtime's own error shape. The parent enforces the timeouts, so a hung handler
cannot outlive them. It runs in one of two ways:

- Once (``--cold``, and before warm workers): arguments HANDLER REQUEST_ID RESULT_FILE READY_FD
  TIMEOUT_SECONDS. Tell the parent it is ready on READY_FD, read the event from stdin, write
  the outcome to RESULT_FILE, exit.
- As a warm worker, a sandbox Lambda keeps between invocations: arguments ``--serve`` HANDLER
  REQUESTS_FD RESPONSES_FD. Messages go both ways as frames (:func:`send_message`). The first
  request arrives before the init phase, which runs once and is answered with ``ready`` (or
  ``init_error``, and the worker exits); then each request is answered with its ``outcome``.
  Each invocation's output goes to its own log file, and the clock is set to its own start.
  The handler's module, and anything it keeps at module level, stays loaded between them, as
  in a Lambda sandbox. End of the requests (the parent closed them, or died) ends the worker.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import struct
import sys
import time
import traceback
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from cronfleet.errors import CronfleetError

CLOCK_VARIABLE = "CRONFLEET_LOCAL_CLOCK"  # the simulated time at which the invocation began
ENFORCEMENT_VARIABLE = "CRONFLEET_LOCAL_IAM"  # the function's role (cronfleet_tools.local.iam)
SERVE = "--serve"  # the first argument of a warm worker
# A frame between the parent and a warm worker: the length of a JSON document, then the
# document. Lengths, not newlines, so an event or a result of any size needs no escaping.
FRAME_HEADER = struct.Struct(">I")


class LocalContext:
    """The attributes and method of Lambda's context object that handlers use."""

    def __init__(self, request_id: str, timeout_seconds: int) -> None:
        name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.aws_request_id = request_id
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{name}"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _use_simulated_clock(origin: str | None) -> None:
    if not origin:
        return
    from cronfleet import clock

    simulated_start = datetime.fromisoformat(origin)
    real_start = time.monotonic()
    # Inside one invocation the simulated clock runs at real speed from the tick's time.
    clock.use(lambda: simulated_start + timedelta(seconds=time.monotonic() - real_start))


class InitError(CronfleetError):
    """An init failure with the type and message Lambda's Python runtime gives it."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _load_handler(module_name: str, handler_name: str) -> Any:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InitError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from exc
    except SyntaxError as exc:
        raise InitError(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}"
        ) from exc
    # Any other exception at import is reported as itself, as Lambda does.
    try:
        return getattr(module, handler_name)
    except AttributeError:
        raise InitError(
            "Runtime.HandlerNotFound", f"Handler '{handler_name}' missing on module '{module_name}'"
        ) from None


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": exc.error_type if isinstance(exc, InitError) else type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _enforce_role() -> None:
    policy_file = os.environ.get(ENFORCEMENT_VARIABLE)
    if policy_file:
        # The function's role, as AWS enforces it: before the handler makes its first client.
        from cronfleet_tools.local.iam import enforce_in_this_process

        enforce_in_this_process(policy_file)


def _invoke(handler: Any, event: Any, request_id: str, timeout: int) -> dict[str, Any]:
    context = LocalContext(request_id, timeout)
    try:
        return {"result": handler(event, context)}
    except Exception as exc:
        return _error(exc)


def main(argv: list[str]) -> int:
    handler_path, request_id, result_file, ready_fd, timeout = argv
    result_path = Path(result_file)
    module_name, handler_name = handler_path.rsplit(".", 1)
    sys.path.insert(0, os.getcwd())  # the function's code directory, as in /var/task
    _use_simulated_clock(os.environ.get(CLOCK_VARIABLE))
    _enforce_role()
    try:
        handler = _load_handler(module_name, handler_name)
    except Exception as exc:  # an init error, reported as Lambda reports it
        result_path.write_text(json.dumps(_error(exc)))
        return 1
    finally:
        os.write(int(ready_fd), b"R")
        os.close(int(ready_fd))
    event = json.loads(sys.stdin.read() or "{}")
    outcome = _invoke(handler, event, request_id, int(timeout))
    sys.stdout.flush()
    result_path.write_text(json.dumps(outcome, default=str))
    return 0


# --- a warm worker ---------------------------------------------------------------------------


def send_message(stream: BinaryIO, message: dict[str, Any]) -> None:
    stream.write(encode_message(message))
    stream.flush()


def encode_message(message: dict[str, Any]) -> bytes:
    payload = json.dumps(message, default=str).encode()
    return FRAME_HEADER.pack(len(payload)) + payload


def receive_message(stream: BinaryIO) -> dict[str, Any] | None:
    """The next frame, or None at the end of the stream."""
    header = stream.read(FRAME_HEADER.size)
    if len(header) < FRAME_HEADER.size:
        return None
    (length,) = FRAME_HEADER.unpack(header)
    payload = stream.read(length)
    if len(payload) < length:
        return None
    message: dict[str, Any] = json.loads(payload)
    return message


def _write_output(path: str) -> None:
    """Point this process's stdout and stderr (fds 1 and 2, so child processes and C code
    too) at ``path``: each invocation has its own log file, as each has its own process cold."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(ValueError, OSError):  # a handler may have closed it
            stream.flush()
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
    finally:
        os.close(target)


def _begin(request: dict[str, Any]) -> float:
    sys.stdout.write(f"START RequestId: {request['request_id']} Version: $LATEST\n")
    clock = request.get("clock")
    if clock:
        # Read by whatever looks, as at a cold start, where it is the process's environment.
        os.environ[CLOCK_VARIABLE] = clock
    _use_simulated_clock(clock)
    return time.monotonic()


def _end(request: dict[str, Any], began: float) -> None:
    elapsed_ms = (time.monotonic() - began) * 1000
    sys.stdout.write(f"END RequestId: {request['request_id']} Duration: {elapsed_ms:.2f} ms\n")
    sys.stdout.flush()


def serve(handler_path: str, requests_fd: int, responses_fd: int) -> int:
    # The handler's own child processes must not hold the parent's pipes open.
    os.set_inheritable(requests_fd, False)
    os.set_inheritable(responses_fd, False)
    requests = os.fdopen(requests_fd, "rb")
    responses = os.fdopen(responses_fd, "wb")
    request = receive_message(requests)
    if request is None:
        return 0
    # The first invocation's log is already this process's output: the init phase's lines
    # belong to it, as they do at a cold start.
    began = _begin(request)
    module_name, handler_name = handler_path.rsplit(".", 1)
    sys.path.insert(0, os.getcwd())
    _enforce_role()
    try:
        handler = _load_handler(module_name, handler_name)
    except Exception as exc:  # an init error, reported as Lambda reports it; no sandbox kept
        _end(request, began)
        send_message(responses, {"init_error": _error(exc)})
        return 1
    send_message(responses, {"ready": True})
    while request is not None:
        outcome = _invoke(handler, request["event"], request["request_id"], request["timeout"])
        # Encoded before END, so a result that cannot be sent ends the process as it does cold.
        reply = encode_message({"outcome": outcome})
        _end(request, began)
        # Between invocations a Lambda sandbox is frozen: nothing it prints lands in a log.
        _write_output(os.devnull)
        responses.write(reply)
        responses.flush()
        request = receive_message(requests)
        if request is not None:
            _write_output(request["log"])
            began = _begin(request)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == [SERVE]:
        sys.exit(serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    # The START and END lines Lambda writes around each invocation's log.
    sys.stdout.write(f"START RequestId: {sys.argv[2]} Version: $LATEST\n")
    started = time.monotonic()
    status = main(sys.argv[1:])
    elapsed_ms = (time.monotonic() - started) * 1000
    sys.stdout.write(f"END RequestId: {sys.argv[2]} Duration: {elapsed_ms:.2f} ms\n")
    sys.exit(status)
