"""One HTTP call, hop by hop: every address checked before it is dialled, redirects followed
with the same checks, the answer read within bounds and judged by its status and ``success``."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import httpx
from pydantic import JsonValue

from cronfleet.http_task.outcomes import (
    HttpCallFailed,
    HttpCallRejected,
    HttpCallResult,
    HttpCallTimedOut,
    HttpTargetRefused,
)
from cronfleet.http_task.redaction import SecretRedactor, display_url
from cronfleet.http_task.secret import read_secret
from cronfleet.lifecycle.wrapper import NonRetryableError
from cronfleet.registry.definition import HttpTarget
from cronfleet.registry.url_safety import classify_address, display_address, url_refusal

logger = logging.getLogger("cronfleet.http_task")


MAX_REDIRECTS = 5
BODY_PREVIEW_BYTES = 1024
# Read at most this much of an answer: enough for any JSON status document, and a runaway
# (or decompression-bomb) body cannot exhaust the Lambda's memory.
MAX_BODY_BYTES = 1024 * 1024

USER_AGENT = "cronfleet-http/1"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_4XX = frozenset({408, 429})

# httpx logs every request's URL, query included, at INFO; httpcore logs raw response headers at
# DEBUG. Either can carry a secret (a ?key=..., a server echoing the token back), so while a call
# runs their records are dropped; this module logs each hop itself, redacted.
_TRANSPORT_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
_calling: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "cronfleet_http_call", default=False
)


class _QuietDuringCalls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _calling.get()


_QUIET = _QuietDuringCalls()
for _name in _TRANSPORT_LOGGERS:
    if _QUIET not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_QUIET)

Address = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
SecretResolver = Callable[[str], str]


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def call_http_target(
    target: HttpTarget,
    *,
    secret_resolver: SecretResolver = read_secret,
    transport: httpx.BaseTransport | None = None,
    resolver: Resolver | None = None,
    timeout_seconds: float | None = None,
) -> HttpCallResult:
    """Make the call ``target`` describes and judge its answer.

    Returns the result on success; raises :class:`HttpCallFailed` (retryable) or a
    :class:`NonRetryableError` subclass otherwise (see the module docstring for which is which).
    ``timeout_seconds`` lowers the target's own timeout, for a run whose deadline is closer.
    """
    secret: str | None = None
    if target.secret_arn:
        try:
            secret = secret_resolver(target.secret_arn).strip()
        except NonRetryableError:
            raise
        except Exception as exc:  # any failure to read it may be throttling or a blip
            # The read failed, so its error holds no secret value; the ARN is not secret.
            raise HttpCallFailed(
                f"could not read the secret {target.secret_arn}: {type(exc).__name__}: {exc}"
            ) from None
        if not secret or any(ord(char) < 0x20 or ord(char) == 0x7F for char in secret):
            # A line break in a header value would start a header of its own.
            raise NonRetryableError(
                f"the secret {target.secret_arn} is empty or contains control characters"
            )
        if not secret.isascii():
            # httpx writes header values as ASCII; refusing here says why, once and for all.
            raise NonRetryableError(
                f"the secret {target.secret_arn} contains non-ASCII characters, which an "
                "Authorization header cannot carry"
            )
    call = _Call(
        target,
        redact=SecretRedactor(secret),
        secret=secret,
        resolver=resolver or _system_resolver,
        timeout=min(timeout_seconds or target.timeout_seconds, target.timeout_seconds),
    )

    @contextlib.contextmanager
    def hop_client() -> Iterator[httpx.Client]:
        # One client per hop: connections are pooled by address, and a TLS connection verified
        # for one name must not carry a redirect to another name served from the same address.
        client = httpx.Client(
            transport=transport or httpx.HTTPTransport(verify=_tls_context(), retries=0),
            follow_redirects=False,
            # Proxy variables would route the pinned connection elsewhere; see the docstring.
            trust_env=False,
        )
        try:
            yield client
        finally:
            if transport is None:  # an injected transport belongs to the caller
                client.close()

    quiet = _calling.set(True)
    try:
        return call.run(hop_client)
    except (HttpCallFailed, NonRetryableError) as exc:
        # Every message is redacted where it is written; this is the guarantee that a message
        # built from a server's words (a Location, a resolver's error) cannot carry the secret.
        _redact_exception(exc, call.redact)
        raise
    except Exception as exc:
        # A failure this module did not foresee (a library's, or a bug): its text may quote the
        # request, so it goes on redacted, as a retryable failure like any unexpected error,
        # with its traceback for whoever debugs it.
        raise HttpCallFailed(
            f"{target.method} {display_url(target.url, call.redact)}: "
            f"{type(exc).__name__}: {call.redact(str(exc))}"
        ).with_traceback(exc.__traceback__) from None
    finally:
        _calling.reset(quiet)


def _redact_exception(exc: BaseException, redact: SecretRedactor) -> None:
    exc.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in exc.args)
    if isinstance(exc, HttpTargetRefused):
        exc.url, exc.reason = redact(exc.url), redact(exc.reason)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle takes milliseconds; a warm Lambda loads it once.
    return httpx.create_ssl_context()


class _Call:
    def __init__(
        self,
        target: HttpTarget,
        *,
        redact: SecretRedactor,
        secret: str | None,
        resolver: Resolver,
        timeout: float,
    ) -> None:
        self.target = target
        self.redact = redact
        self.secret = secret
        self.resolver = resolver
        self.timeout = timeout

    def run(self, hop_client: Callable[[], AbstractContextManager[httpx.Client]]) -> HttpCallResult:
        started = time.monotonic()
        deadline = started + self.timeout
        try:
            url = httpx.URL(self.target.url)
        except httpx.InvalidURL as exc:
            shown = display_url(self.target.url, self.redact)
            raise HttpTargetRefused(shown, self.redact(f"is not a valid URL: {exc}")) from None
        origin = _origin(url)
        method = self.target.method
        body = self.target.body
        for redirects in range(MAX_REDIRECTS + 1):
            shown = display_url(url, self.redact)
            address = self.check(url, shown, redirects)
            with hop_client() as client:
                request = self.build(
                    client, url, address, method, body, with_secret=_origin(url) == origin
                )
                status, location, raw, truncated = self.send(client, request, shown, deadline)
            result = self.result(method, shown, status, started, redirects, raw, truncated)
            logger.info(
                "HTTP target answered",
                extra={"method": method, "url": shown, "status": status, "hop": redirects},
            )
            if status in _REDIRECTS and status not in self.target.expected_status and location:
                if redirects == MAX_REDIRECTS:
                    raise HttpCallRejected(
                        f"{method} {self.redact(self.target_shown)} redirected more than "
                        f"{MAX_REDIRECTS} times; last hop {shown}",
                        result=result,
                    )
                try:
                    url = url.join(location)
                except httpx.InvalidURL:
                    raise HttpCallRejected(
                        f"{method} {shown} redirected to an invalid Location", result=result
                    ) from None
                if status == 303 or (status in (301, 302) and method not in ("GET", "HEAD")):
                    method, body = ("HEAD" if method == "HEAD" else "GET"), None
                continue
            return self.judge(result, raw, truncated)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    @property
    def target_shown(self) -> str:
        return display_url(self.target.url)

    def check(self, url: httpx.URL, shown: str, redirects: int) -> Address:
        """Refuse a hop the target may not call; return the checked address to connect to."""
        where = f" (redirect {redirects})" if redirects else ""
        refusal = url_refusal(
            str(url),
            allow_insecure_http=self.target.allow_insecure_http,
            allow_private_network=self.target.allow_private_network,
        )
        if refusal:
            # The refusal names the host, which a Location header chose: it is redacted too.
            raise HttpTargetRefused(shown + where, self.redact(refusal.removeprefix("refused: ")))
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            answers = [ip_address(answer.partition("%")[0]) for answer in self.resolver(host, port)]
        except (OSError, UnicodeError, ValueError) as exc:
            raise HttpCallFailed(
                self.redact(f"could not resolve {host} for {shown}{where}: {exc}")
            ) from None
        if not answers:
            raise HttpCallFailed(
                self.redact(f"could not resolve {host} for {shown}{where}: no addresses")
            )
        for answer in answers:
            verdict = classify_address(answer)
            if verdict is None:
                continue
            said = self.redact(f"{host} resolves to {display_address(answer)}")
            said += f", {verdict.what}{verdict.detail}"
            if verdict.always:
                raise HttpTargetRefused(shown + where, f"{said}, never a task's target")
            if not self.target.allow_private_network:
                raise HttpTargetRefused(
                    shown + where, f"{said}; set AllowPrivateNetwork: true to call it on purpose"
                )
        # Lambda's default networking has no IPv6 egress; prefer IPv4 when the name has both.
        return next((a for a in answers if isinstance(a, IPv4Address)), answers[0])

    def build(
        self,
        client: httpx.Client,
        url: httpx.URL,
        address: Address,
        method: str,
        body: JsonValue,
        *,
        with_secret: bool,
    ) -> httpx.Request:
        host = url.raw_host.decode("ascii")
        host_header = f"[{host}]" if ":" in host else host
        if url.port is not None:
            host_header += f":{url.port}"
        headers = {**self.target.headers, "Host": host_header}
        if not any(name.lower() == "user-agent" for name in headers):
            headers["User-Agent"] = USER_AGENT
        if with_secret and self.secret:
            headers["Authorization"] = f"Bearer {self.secret}"
        extensions: dict[str, Any] = {}
        if url.scheme == "https":
            # The certificate is checked against this name, not against the pinned address.
            extensions["sni_hostname"] = host
        return client.build_request(
            method,
            url.copy_with(host=str(address)),
            headers=headers,
            json=body,
            extensions=extensions,
        )

    def send(
        self, client: httpx.Client, request: httpx.Request, shown: str, deadline: float
    ) -> tuple[int, str | None, bytes, bool]:
        """Send one hop; return its status, Location, up to MAX_BODY_BYTES of body, truncated."""
        method = request.method
        left = deadline - time.monotonic()
        if left <= 0:
            raise HttpCallTimedOut(f"{method} {shown}: no answer within {self.timeout:g} s")
        request.extensions["timeout"] = httpx.Timeout(left).as_dict()
        try:
            response = client.send(request, stream=True)
            try:
                chunks: list[bytes] = []
                size = 0
                truncated = False
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        truncated = True
                        break
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("deadline passed while reading the body")
                raw = b"".join(chunks)[:MAX_BODY_BYTES]
                return response.status_code, response.headers.get("location"), raw, truncated
            finally:
                response.close()
        except httpx.TimeoutException:
            raise HttpCallTimedOut(
                f"{method} {shown}: no answer within {self.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            # Not chained: the httpx error holds the request, Authorization header included.
            raise HttpCallFailed(
                f"{method} {shown}: {type(exc).__name__}: {self.redact(str(exc))}"
            ) from None

    def result(
        self,
        method: str,
        shown: str,
        status: int,
        started: float,
        redirects: int,
        raw: bytes,
        truncated: bool,
    ) -> HttpCallResult:
        # Redact before cutting, so a cut cannot leave half a secret behind.
        text, cut = self.redact.prefix(raw.decode("utf-8", "replace"), BODY_PREVIEW_BYTES)
        encoded = text.encode()
        preview = encoded[:BODY_PREVIEW_BYTES].decode("utf-8", "ignore")
        return HttpCallResult(
            method=method,
            url=shown,
            status=status,
            duration_ms=round((time.monotonic() - started) * 1000),
            redirects=redirects,
            body_preview=preview,
            body_truncated=truncated or cut or len(encoded) > BODY_PREVIEW_BYTES,
        )

    def judge(self, result: HttpCallResult, raw: bytes, truncated: bool) -> HttpCallResult:
        status = result.status
        what = f"{result.method} {result.url} answered {status}"
        brief = _brief(result.body_preview, self.redact)
        if status not in self.target.expected_status:
            expected = _describe_statuses(self.target.expected_status)
            message = f"{what}, expected {expected}{brief}"
            if status >= 500 or status in _RETRYABLE_4XX:
                raise HttpCallFailed(message, result=result)
            raise HttpCallRejected(message, result=result)
        field = self.target.success_field
        if field is not None:
            problem = _success_problem(raw, truncated, field, self.redact)
            if problem is not None:
                message = f"{what}, but {problem}{brief}"
                if 400 <= status < 500:
                    raise HttpCallRejected(message, result=result)
                raise HttpCallFailed(message, result=result)
        return result


def _origin(url: httpx.URL) -> tuple[str, bytes, int | None]:
    return url.scheme, url.raw_host, url.port


def _brief(preview: str, redact: SecretRedactor) -> str:
    # Joining the lines may bring a secret's pieces together again: redact once more, then cut.
    text, cut = redact.prefix(" ".join(preview.split()), 200)
    if not text:
        return ""
    return f"; body: {text}{'...' if cut else ''}"


def _describe_statuses(statuses: Sequence[int]) -> str:
    if list(statuses) == list(range(200, 300)):
        return "2xx"
    return ", ".join(map(str, statuses))


def _success_problem(raw: bytes, truncated: bool, field: str, redact: SecretRedactor) -> str | None:
    """Why the answer does not report success in ``field``, or None if it does."""
    if truncated:
        return f"the body is larger than {MAX_BODY_BYTES} bytes, so {field!r} cannot be read"
    try:
        document = json.loads(raw)
    except ValueError:
        return f"the body is not JSON, so {field!r} cannot be read"
    if not isinstance(document, dict):
        return f"the body is not a JSON object, so {field!r} cannot be read"
    if field not in document:
        return f"the JSON answer has no {field!r} field"
    if document[field] is not True:
        # The value is the server's: it may echo the secret, and a cut must not halve it.
        shown, _ = redact.prefix(json.dumps(document[field]), 50)
        return f"the JSON answer reports {field}: {shown}"
    return None
