"""The built-in HTTP caller: what runs a task declared with ``Http`` instead of ``Function``.

It replaces the crontab ``wget`` line and the hosted cron pinger: one call, with an optional
Bearer secret, judged by its status and, optionally, a ``success`` flag in its JSON answer.

Where the target comes from
    The built-in Lambda is one function shared by every ``Http`` task, so the target cannot live
    in the function's environment. The dispatcher puts the task's validated ``Http`` properties
    in the execution envelope's payload under the reserved key ``"http"``
    (:data:`HTTP_PAYLOAD_KEY`); :func:`run_http_task` reads them from
    ``TaskContext.payload["http"]`` and validates them again as an :class:`HttpTarget`, so a
    stale or hand-made envelope is judged by the same rules as a deployed definition.

Refusing dangerous targets (server-side request forgery)
    A scheduled call runs with the stack's network position, so every hop (the first URL and
    each redirect) is checked twice: the URL itself (:func:`url_refusal`: scheme, literal
    addresses, ``localhost``, credentials), then every address its host resolves to
    (:func:`address_refusal`). One refused address refuses the hop. ``AllowPrivateNetwork``
    lets private and loopback addresses through, never the cloud metadata service; the
    opt-ins belong to the target and apply to every hop alike, so a public URL that redirects
    into the private network is refused unless the task opted in. The connection is then made
    to the address that was checked (the URL's host is replaced by it, with ``Host`` and the
    TLS server name set to the real name, so certificates are still verified against the
    name): a second DNS answer cannot swap in another address between check and connect
    (DNS rebinding). Proxies from the environment are ignored for the same reason.

Redirects
    Followed by hand, at most :data:`MAX_REDIRECTS`, so each hop is checked. 301/302/303 turn a
    POST (or PUT, PATCH, DELETE) into a GET without body, as browsers do; 307/308 repeat the
    request. The Bearer secret goes only to the origin (scheme, host, port) of the first URL.
    A redirect status listed in ``ExpectedStatus`` is an answer, not followed.

Outcome (what the task wrapper records and whether the slot retries)
    - a status in ``ExpectedStatus`` (default 2xx) succeeds, unless ``SuccessField`` is set and
      the JSON answer does not carry ``true`` in it;
    - 5xx, 408, 429, timeouts, DNS and connection failures raise :class:`HttpCallFailed`
      (retryable): they describe a server or network that may recover. 408 and 429 are 4xx,
      but they say "later", not "never";
    - any other 4xx, an unexpected status, too many redirects and refusals raise
      :class:`HttpCallRejected` or :class:`HttpTargetRefused`, both :class:`NonRetryableError`:
      the same request will be refused again;
    - ``SuccessField`` not ``true`` (``{"success": false}``, a missing field, a body that is not
      JSON) raises :class:`HttpCallFailed`, like a 5xx: the seed APIs answer that way for
      transient trouble. When the status is 4xx (a 4xx listed in ``ExpectedStatus``) it is
      :class:`HttpCallRejected`, consistent with the status rule.

Secrets
    ``SecretArn`` is read through Powertools Parameters with caching and sent as
    ``Authorization: Bearer <secret>``. The value is redacted (as ``***``) from everything this
    module produces: log lines, error messages, the recorded result and its body preview, and
    the URLs it reports. Errors from httpx are re-raised as our own without chaining, so a
    recorded traceback carries no request object. Query values are redacted from reported URLs
    too, because tokens travel there (``?key=...``).
"""

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
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import httpx
from pydantic import JsonValue, ValidationError

from cronfleet.registry import HttpTarget
from cronfleet.registry.url_safety import METADATA_REASON, address_refusal, url_refusal
from cronfleet.task import NonRetryableError, TaskContext, scheduled_task

__all__ = [
    "HTTP_PAYLOAD_KEY",
    "MAX_REDIRECTS",
    "HttpCallFailed",
    "HttpCallRejected",
    "HttpCallResult",
    "HttpCallTimedOut",
    "HttpTargetRefused",
    "call_http_target",
    "http_task_handler",
    "read_secret",
    "run_http_task",
]

logger = logging.getLogger("cronfleet.http_task")

HTTP_PAYLOAD_KEY = "http"
MAX_REDIRECTS = 5
BODY_PREVIEW_BYTES = 1024
# Read at most this much of an answer: enough for any JSON status document, and a runaway
# (or decompression-bomb) body cannot exhaust the Lambda's memory.
MAX_BODY_BYTES = 1024 * 1024
# Powertools Parameters cache: a warm Lambda calling every minute reads the secret every few
# minutes, and a rotated secret is picked up within that time.
SECRET_MAX_AGE_SECONDS = 300
REDACTED = "***"
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


class HttpTargetRefused(NonRetryableError):
    """A hop's URL or one of the addresses its host resolves to may not be called."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"refused to call {url}: {reason}")
        self.url = url
        self.reason = reason


class HttpCallFailed(Exception):
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


def read_secret(arn: str) -> str:
    """Read a Bearer secret from Secrets Manager or SSM Parameter Store, cached by Powertools."""
    # Imported here: Powertools Parameters pulls in boto3, which only Http tasks with a secret
    # need, and cold start is a product metric.
    from aws_lambda_powertools.utilities import parameters

    if ":ssm:" in arn:
        # GetParameter accepts the parameter's ARN as its name.
        value = parameters.get_parameter(arn, decrypt=True, max_age=SECRET_MAX_AGE_SECONDS)
    else:
        value = parameters.get_secret(arn, max_age=SECRET_MAX_AGE_SECONDS)
    return _secret_text(arn, value)


def _secret_text(arn: str, value: object) -> str:
    # The stubs say str, but a binary secret (SecretBinary) arrives as bytes.
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str):
        raise NonRetryableError(f"secret {arn} is not a text value")
    return value


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class _Redactor:
    """Replaces the secret (and its JSON-escaped form, for bodies that echo it) in any text."""

    def __init__(self, secret: str | None) -> None:
        forms = set()
        if secret:
            forms.add(secret)
            forms.add(json.dumps(secret)[1:-1])
        # Longest first, so a form that contains another is replaced whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, REDACTED)
        return text

    def __repr__(self) -> str:
        return f"_Redactor({REDACTED})"


def display_url(url: httpx.URL | str, redact: Callable[[str], str] = str) -> str:
    """A URL fit for a log line or a record: no credentials, no fragment, query values hidden."""
    parsed = httpx.URL(str(url))
    query = parsed.query.decode("ascii", "replace")
    parts = []
    for pair in query.split("&") if query else []:
        name, has_value, _ = pair.partition("=")
        parts.append(f"{name}={REDACTED}" if has_value else name)
    shown = parsed.copy_with(username=None, password=None, fragment=None, query=None)
    text = str(shown) + (f"?{'&'.join(parts)}" if parts else "")
    return redact(text)


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
    call = _Call(
        target,
        redact=_Redactor(secret),
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
    finally:
        _calling.reset(quiet)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle takes milliseconds; a warm Lambda loads it once.
    return httpx.create_ssl_context()


class _Call:
    def __init__(
        self,
        target: HttpTarget,
        *,
        redact: _Redactor,
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
        url = httpx.URL(self.target.url)
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
            raise HttpTargetRefused(shown + where, refusal.removeprefix("refused: "))
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            answers = [ip_address(answer.partition("%")[0]) for answer in self.resolver(host, port)]
        except (OSError, UnicodeError, ValueError) as exc:
            raise HttpCallFailed(
                f"could not resolve {host} for {shown}{where}: {self.redact(str(exc))}"
            ) from None
        if not answers:
            raise HttpCallFailed(f"could not resolve {host} for {shown}{where}: no addresses")
        for answer in answers:
            reason = address_refusal(answer)
            if reason is None:
                continue
            if reason.startswith(METADATA_REASON):
                raise HttpTargetRefused(
                    shown + where, f"{host} resolves to {answer}, {reason}, never a task's target"
                )
            if not self.target.allow_private_network:
                raise HttpTargetRefused(
                    shown + where,
                    f"{host} resolves to {answer}, {reason}; "
                    "set AllowPrivateNetwork: true to call it on purpose",
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
        # Redact the whole text before cutting it, so a cut cannot leave half a secret behind.
        text = self.redact(raw.decode("utf-8", "replace"))
        encoded = text.encode()
        preview = encoded[:BODY_PREVIEW_BYTES].decode("utf-8", "ignore")
        return HttpCallResult(
            method=method,
            url=shown,
            status=status,
            duration_ms=round((time.monotonic() - started) * 1000),
            redirects=redirects,
            body_preview=preview,
            body_truncated=truncated or len(encoded) > BODY_PREVIEW_BYTES,
        )

    def judge(self, result: HttpCallResult, raw: bytes, truncated: bool) -> HttpCallResult:
        status = result.status
        what = f"{result.method} {result.url} answered {status}"
        brief = _brief(result.body_preview)
        if status not in self.target.expected_status:
            expected = _describe_statuses(self.target.expected_status)
            message = f"{what}, expected {expected}{brief}"
            if status >= 500 or status in _RETRYABLE_4XX:
                raise HttpCallFailed(message, result=result)
            raise HttpCallRejected(message, result=result)
        field = self.target.success_field
        if field is not None:
            problem = _success_problem(raw, truncated, field)
            if problem is not None:
                message = f"{what}, but {problem}{brief}"
                if 400 <= status < 500:
                    raise HttpCallRejected(message, result=result)
                raise HttpCallFailed(message, result=result)
        return result


def _origin(url: httpx.URL) -> tuple[str, bytes, int | None]:
    return url.scheme, url.raw_host, url.port


def _brief(preview: str) -> str:
    text = " ".join(preview.split())
    if not text:
        return ""
    return f"; body: {text[:200]}{'...' if len(text) > 200 else ''}"


def _describe_statuses(statuses: Sequence[int]) -> str:
    if list(statuses) == list(range(200, 300)):
        return "2xx"
    return ", ".join(map(str, statuses))


def _success_problem(raw: bytes, truncated: bool, field: str) -> str | None:
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
        return f"the JSON answer reports {field}: {json.dumps(document[field])[:50]}"
    return None


def run_http_task(task: TaskContext) -> dict[str, JsonValue]:
    """The built-in HTTP task: call the target the dispatcher put in ``payload["http"]``."""
    raw = task.payload.get(HTTP_PAYLOAD_KEY)
    if not isinstance(raw, dict):
        raise NonRetryableError(
            f"the execution payload has no {HTTP_PAYLOAD_KEY!r} object; "
            "the built-in HTTP caller runs only tasks declared with Http"
        )
    try:
        target = HttpTarget.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'Http'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise NonRetryableError(f"the payload's Http target is invalid: {problems}") from None
    # Finish before the attempt's deadline, so the outcome is recorded rather than cut off.
    left = max(task.remaining_time().total_seconds(), 1.0)
    return call_http_target(target, timeout_seconds=left).as_record()


http_task_handler = scheduled_task(run_http_task)
