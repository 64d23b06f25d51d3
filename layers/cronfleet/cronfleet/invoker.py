"""The Lambda adapter: asynchronous invokes of task functions."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Protocol

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cronfleet.errors import CronfleetError

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

# Retries here are botocore's, for throttling and transient faults on one call. An invoke that
# still fails is recorded on the execution and retried by cronfleet's own policy.
# Parameters are not validated client-side, as for the store (cronfleet.store.tables): the
# request is always this module's own, and Lambda validates it.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=3,
    read_timeout=10,
    max_pool_connections=32,  # the dispatcher invokes from up to 32 threads at once
    parameter_validation=False,
)


class InvokeError(CronfleetError):
    """The function could not be invoked: throttled, missing, or not permitted."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Invoker(Protocol):
    def invoke(self, function: str, event: dict[str, Any]) -> None: ...


class LambdaInvoker:
    """InvocationType=Event: Lambda queues the event and the dispatcher moves on at once."""

    def __init__(self, client: LambdaClient | None = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("lambda", config=CLIENT_CONFIG)
        self.client = client
        # Last before sending: after the X-Ray SDK has put the caller's own trace header on.
        client.meta.events.register("before-send.lambda.Invoke", _apply_trace_decision)

    def invoke(self, function: str, event: dict[str, Any]) -> None:
        try:
            self.client.invoke(
                FunctionName=function,
                InvocationType="Event",
                Payload=json.dumps(event, separators=(",", ":")).encode(),
            )
        except ClientError as exc:
            error = exc.response["Error"]
            raise InvokeError(error.get("Code", "ClientError"), error.get("Message", "")) from exc
        except BotoCoreError as exc:
            raise InvokeError(type(exc).__name__, str(exc)) from exc


class NoopInvoker:
    """Invokes nothing: for benchmarks of the dispatcher's own cost."""

    def invoke(self, function: str, event: dict[str, Any]) -> None:
        return None


def _apply_trace_decision(request: Any, **_: Any) -> None:
    """Send the run's trace decision (cronfleet.tracing) as the Invoke's trace header."""
    from cronfleet.tracing import TRACE_HEADER, chosen, trace_header

    sampled = chosen()
    if sampled is None:
        return
    inherited = request.headers.get(TRACE_HEADER)
    if isinstance(inherited, bytes):
        inherited = inherited.decode()
    request.headers[TRACE_HEADER] = trace_header(sampled, inherited, time.time())
