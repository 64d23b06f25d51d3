"""The runtime inside one local invocation's process: `python -m cronfleet_tools.local.bootstrap`.

It plays the part of Lambda's Python runtime for the local runner: import the handler (the
init phase), tell the parent it is ready, call the handler once with the event from stdin and
a Lambda-like context, and write the result or the error, in the runtime's own error shape, to
the result file. The parent enforces the timeout, so a hung handler cannot outlive it.

Arguments: HANDLER REQUEST_ID RESULT_FILE READY_FD TIMEOUT_SECONDS.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cronfleet.errors import CronfleetError

CLOCK_VARIABLE = "CRONFLEET_LOCAL_CLOCK"  # the simulated time at which the invocation began
ENFORCEMENT_VARIABLE = "CRONFLEET_LOCAL_IAM"  # the function's role (cronfleet_tools.local.iam)


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


def _use_simulated_clock() -> None:
    origin = os.environ.get(CLOCK_VARIABLE)
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


def main(argv: list[str]) -> int:
    handler_path, request_id, result_file, ready_fd, timeout = argv
    result_path = Path(result_file)
    module_name, handler_name = handler_path.rsplit(".", 1)
    sys.path.insert(0, os.getcwd())  # the function's code directory, as in /var/task
    _use_simulated_clock()
    policy_file = os.environ.get(ENFORCEMENT_VARIABLE)
    if policy_file:
        # The function's role, as AWS enforces it: before the handler makes its first client.
        from cronfleet_tools.local.iam import enforce_in_this_process

        enforce_in_this_process(policy_file)
    try:
        handler = _load_handler(module_name, handler_name)
    except Exception as exc:  # an init error, reported as Lambda reports it
        result_path.write_text(json.dumps(_error(exc)))
        return 1
    finally:
        os.write(int(ready_fd), b"R")
        os.close(int(ready_fd))
    event = json.loads(sys.stdin.read() or "{}")
    context = LocalContext(request_id, int(timeout))
    try:
        outcome: dict[str, Any] = {"result": handler(event, context)}
    except Exception as exc:
        outcome = _error(exc)
    sys.stdout.flush()
    result_path.write_text(json.dumps(outcome, default=str))
    return 0


if __name__ == "__main__":
    # The START and END lines Lambda writes around each invocation's log.
    sys.stdout.write(f"START RequestId: {sys.argv[2]} Version: $LATEST\n")
    started = time.monotonic()
    status = main(sys.argv[1:])
    elapsed_ms = (time.monotonic() - started) * 1000
    sys.stdout.write(f"END RequestId: {sys.argv[2]} Duration: {elapsed_ms:.2f} ms\n")
    sys.exit(status)
