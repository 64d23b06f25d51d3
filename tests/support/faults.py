"""Faults injected into a real boto3 client, below the store: what DynamoDB and the network do.

:class:`FaultInjector` hooks botocore's ``before-send`` event of a client, so every call the
store makes goes through it on its way to DynamoDB Local, retries included, exactly as botocore
sends them. For each call it decides, from its own seeded random generator (the same seed and
the same sequence of calls give the same faults), whether to let it through or to:

- ``lost_response``: send the request (it commits), then drop the response: botocore sees a
  closed connection and sends the same request again;
- ``throttle``: answer ThrottlingException without sending (nothing commits);
- ``internal_error``: answer InternalServerError, half the time after the request committed
  and half the time before, as DynamoDB's own 500s leave the outcome unknown;
- ``stall``: hold the request, then send it (it commits) and time out, as a stalled engine does
  to a client whose read timeout is shorter than the stall;
- ``late_original``: time out at once, and deliver the original request later from another
  thread, after botocore's retry has gone through: the stale one arrives second;
- ``crash``: send the request (it commits), then kill the caller with :class:`SimulatedCrash`,
  a BaseException that no ``except Exception`` stops, so the process "dies" between two writes.

Faults apply to writes (and, but for the ones that commit, to reads when ``reads`` is set).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})


class FaultKind(StrEnum):
    LOST_RESPONSE = "lost_response"
    THROTTLE = "throttle"
    INTERNAL_ERROR = "internal_error"
    STALL = "stall"
    LATE_ORIGINAL = "late_original"
    CRASH = "crash"


COMMITTING = frozenset(
    {FaultKind.LOST_RESPONSE, FaultKind.STALL, FaultKind.LATE_ORIGINAL, FaultKind.CRASH}
)


class SimulatedCrash(BaseException):
    """The process died here (after the write it was sending had committed)."""


@dataclass
class FaultInjector:
    """Seeded faults at ``rate`` per call, spread over ``kinds`` by ``weights``."""

    seed: int
    rate: float = 0.05
    kinds: tuple[FaultKind, ...] = tuple(FaultKind)
    weights: tuple[float, ...] | None = None
    reads: bool = False
    stall_seconds: float = 0.05
    injected: Counter[FaultKind] = field(default_factory=Counter)
    calls: int = 0
    # Faults to inject next, in order, each on the next call of its operation (None: any write).
    forced: list[tuple[str | None, FaultKind]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._http = URLLib3Session()
        self._late: list[threading.Thread] = []

    def attach(self, client: Any) -> FaultInjector:
        client.meta.events.register("before-send.dynamodb", self._before_send)
        return self

    def force(self, *kinds: FaultKind, on: str | None = None, times: int = 1) -> None:
        """Inject exactly these faults, whatever the rate: on the next writes, or on the next
        calls of operation ``on`` (a read too), each ``times`` times."""
        with self._lock:
            self.forced.extend((on, kind) for kind in kinds for _ in range(times))

    def settle(self) -> None:
        """Wait for every late original request to have been delivered."""
        for thread in list(self._late):
            thread.join()

    def _choose(self, operation: str) -> tuple[FaultKind | None, bool]:
        """The fault for this call, if any, and whether a 500 comes after the commit."""
        with self._lock:
            self.calls += 1
            write = operation in WRITES
            commit_first = self._random.random() < 0.5
            kind: FaultKind | None = None
            planned = next(
                (
                    index
                    for index, (on, _) in enumerate(self.forced)
                    if on == operation or (on is None and write)
                ),
                None,
            )
            if planned is not None:
                kind = self.forced.pop(planned)[1]
            elif (write or self.reads) and self._random.random() < self.rate:
                kinds = [k for k in self.kinds if write or k not in COMMITTING]
                weights = None
                if self.weights is not None:
                    weights = [
                        w for k, w in zip(self.kinds, self.weights, strict=True) if k in kinds
                    ]
                kind = self._random.choices(kinds, weights=weights)[0] if kinds else None
            if kind is not None:
                self.injected[kind] += 1
            return kind, commit_first

    def _before_send(self, request: Any, event_name: str = "", **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        kind, commit_first = self._choose(operation)
        if kind is None:
            return None
        if kind is FaultKind.THROTTLE:
            return _error_response(400, "ThrottlingException", "Rate of requests exceeds")
        if kind is FaultKind.INTERNAL_ERROR:
            if commit_first:
                self._http.send(request)
            return _error_response(500, "InternalServerError", "Internal server error")
        if kind is FaultKind.LATE_ORIGINAL:
            late = threading.Thread(target=self._deliver_late, args=(request,), daemon=True)
            self._late.append(late)
            late.start()
            raise ReadTimeoutError(endpoint_url=request.url)
        if kind is FaultKind.STALL:
            time.sleep(self.stall_seconds)
        self._http.send(request)  # it commits; the caller never hears
        if kind is FaultKind.CRASH:
            raise SimulatedCrash(f"crashed after {operation} committed")
        if kind is FaultKind.STALL:
            raise ReadTimeoutError(endpoint_url=request.url)
        raise ConnectionClosedError(endpoint_url=request.url)

    def _deliver_late(self, request: Any) -> None:
        time.sleep(self.stall_seconds)
        self._http.send(request)


def _error_response(status: int, code: str, message: str) -> AWSResponse:
    body = f'{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}'
    return AWSResponse(
        url="",
        status_code=status,
        headers={"x-amzn-requestid": "injected", "content-type": "application/x-amz-json-1.0"},
        raw=_Raw(body.encode()),
    )


class _Raw:
    """Just enough of a urllib3 response for botocore to read a body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: Any, **__: Any) -> Iterable[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        body, self._body = self._body, b""
        return body


def before_next(client: Any, operation: str, action: Any) -> None:
    """Run ``action()`` once, just before ``client`` next sends ``operation``: an interleaving
    (another writer's change landing between this writer's read and its write)."""
    done = False

    def run_first(**_: Any) -> None:
        nonlocal done
        if not done:
            done = True
            action()

    client.meta.events.register(f"before-send.dynamodb.{operation}", run_first)
