"""How a call ends: its result, or the error that says whether to try again."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import JsonValue

from cronfleet.errors import CronfleetError
from cronfleet.lifecycle.wrapper import NonRetryableError


class HttpTargetRefused(NonRetryableError):
    """A hop's URL or one of the addresses its host resolves to may not be called."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"refused to call {url}: {reason}")
        self.url = url
        self.reason = reason


class HttpCallFailed(CronfleetError):
    """The call failed in a way that may pass: 5xx, 408/429, network, ``success: false``."""

    def __init__(self, message: str, *, result: HttpCallResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class HttpCallTimedOut(HttpCallFailed):
    """No complete answer within ``TimeoutSeconds`` (across all hops)."""


class HttpCallRejected(NonRetryableError):
    """The server's answer says the same request will fail again: 4xx, unexpected status."""

    def __init__(self, message: str, *, result: HttpCallResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class HttpCallResult:
    """What the execution records about the call; every string in it is already redacted."""

    method: str
    url: str  # the final hop, query values redacted
    status: int
    duration_ms: int
    redirects: int
    body_preview: str  # at most BODY_PREVIEW_BYTES of UTF-8
    body_truncated: bool

    def as_record(self) -> dict[str, JsonValue]:
        return {
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "redirects": self.redirects,
            "body_preview": self.body_preview,
            "body_truncated": self.body_truncated,
        }
