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
    addresses in every spelling, ``localhost``, credentials), then every address its host
    resolves to (:func:`classify_address`, which also reads the IPv4 address an IPv6 address
    carries: IPv4-mapped, NAT64, 6to4, Teredo...). One refused address refuses the hop.
    ``AllowPrivateNetwork`` lets private and loopback addresses through, never the credentials
    endpoints (the instance metadata service, ECS and EKS credentials) however they are
    written; the opt-ins belong to the target and apply to every hop alike, so a public URL
    that redirects into the private network is refused unless the task opted in. The
    connection is then made to the address that was checked (the URL's host is replaced by it,
    with ``Host`` and the TLS server name set to the real name, so certificates are still
    verified against the name): a second DNS answer cannot swap in another address between
    check and connect (DNS rebinding). Proxies from the environment are ignored for the same
    reason.

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
    the URLs it reports; in each encoding a server may echo it in (see
    :class:`SecretRedactor`). Errors from httpx are re-raised as our own without chaining, so a
    recorded traceback carries no request object, and any other exception leaving the call is
    re-raised redacted. Query values are redacted from reported URLs too, because tokens travel
    there (``?key=...``).
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import contextvars
import functools
import html
import html.entities
import json
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import JsonValue, ValidationError

from cronfleet.errors import CronfleetError
from cronfleet.lifecycle.wrapper import NonRetryableError, TaskContext, scheduled_task
from cronfleet.registry.definition import HttpTarget
from cronfleet.registry.url_safety import classify_address, display_address, url_refusal

__all__ = [
    "HTTP_PAYLOAD_KEY",
    "MAX_REDIRECTS",
    "HttpCallFailed",
    "HttpCallRejected",
    "HttpCallResult",
    "HttpCallTimedOut",
    "HttpTargetRefused",
    "SecretRedactor",
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


class SecretRedactor:
    """Hides a secret in any text, in every encoding a server may echo it back in.

    A server that echoes the token it was sent rarely echoes it verbatim: an error page
    HTML-escapes it, a JSON encoder writes ``\\/`` or ``\\u0026``, a redirect carries it
    percent-encoded in its query, a debug endpoint shows ``Basic <base64>``, and these stack (a
    JSON string holding a URL-encoded value). So the secret is searched character by character,
    each character in any of its encodings (raw, ``%XX`` in either case and as UTF-8, ``+`` for a
    space, ``%uXXXX``, HTML entities named or numeric, JSON ``\\uXXXX`` and ``\\/``), in the
    text and in the text with up to three layers of those encodings peeled off (one family,
    URL, HTML or JSON, per layer, in every order); a run of base64 that carries the secret at
    any alignment is hidden whole. Matching ignores case, because some echoes change it (a host
    name is lowercased). Over-hiding a few characters of a log line costs nothing; leaving one
    encoding of the secret behind costs the secret.
    """

    def __init__(self, secret: str | None) -> None:
        self._matcher = _matcher(secret) if secret else None

    @property
    def reach(self) -> int:
        """The most characters one echo of the secret can take, in any encoding matched."""
        return self._matcher.reach if self._matcher else 0

    def __call__(self, text: str) -> str:
        if self._matcher is None or not text:
            return text
        return _replace_spans(text, self._matcher.spans(text), len(text))

    def prefix(self, text: str, limit: int) -> tuple[str, bool]:
        """At most ``limit`` characters of the redacted text, and whether any were left out.

        Only ``limit`` + :attr:`reach` characters are searched (a body may be a megabyte), and
        nothing from that window's last :attr:`reach` characters is kept unless the window is
        the whole text: an echo cut by the window's end could not have been recognised.
        """
        if self._matcher is None:
            return text[:limit], len(text) > limit
        window = text[: limit + self.reach]
        safe = len(window) if len(window) == len(text) else len(window) - self.reach
        redacted = _replace_spans(window, self._matcher.spans(window), safe)
        return redacted[:limit], len(redacted) > limit or safe < len(text)

    def __repr__(self) -> str:
        return f"SecretRedactor({REDACTED})"


# HTML5 names per character (both "amp;" and the legacy "amp" without a semicolon), longest
# first: a pattern tries them in this order, and "&amp" must not stop short of "&amp;".
_ENTITY_NAMES: dict[str, list[str]] = {}
for _entity, _char in sorted(html.entities.html5.items(), key=lambda item: -len(item[0])):
    if len(_char) == 1:
        _ENTITY_NAMES.setdefault(_char, []).append(_entity)
# One encoded character, per family of encodings: a layer of encoding is one encoder's work,
# so one family at a time is peeled off. Decoding them all at once would also decode what the
# layer below left as it was: an HTML-escaped secret that itself contains "\\/" would lose it.
_ENCODED_FAMILIES = (
    re.compile(r"(?P<percent>(?:%[0-9A-Fa-f]{2})+)|%[uU](?P<iis>[0-9A-Fa-f]{4})"),
    re.compile(r"(?P<entity>&(?:\#[xX][0-9A-Fa-f]{1,8}|\#[0-9]{1,9}|[A-Za-z][A-Za-z0-9]{1,31});?)"),
    re.compile(
        r"\\u(?P<json>[0-9A-Fa-f]{4}(?:\\u[dD][c-fC-F][0-9A-Fa-f]{2})?)|\\(?P<escaped>[/\"'\\])"
    ),
)
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]+=*")
_PEELED_LAYERS = 3
# Shorter base64 fragments would hide ordinary words; no real token encodes that short.
_MIN_BASE64_CORE = 6


@dataclass(frozen=True)
class _Matcher:
    pattern: re.Pattern[str]
    base64: re.Pattern[str] | None
    reach: int

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where the secret is in ``text``, in any encoding: (start, end) pairs, unsorted."""
        found: list[tuple[int, int]] = []
        # Each level: a text, and the layers peeled off the original to reach it.
        levels: list[tuple[str, list[_Layer]]] = [(text, [])]
        seen = {text}
        for depth in range(_PEELED_LAYERS + 1):
            deeper: list[tuple[str, list[_Layer]]] = []
            for level, layers in levels:
                for start, end in self._spans_in(level):
                    for layer in reversed(layers):
                        start, end = layer.parent_span(start, end)
                    found.append((start, end))
                if depth == _PEELED_LAYERS:
                    continue
                for family in _ENCODED_FAMILIES:
                    peeled = _peel(level, family)
                    if peeled is not None and peeled.text not in seen:
                        seen.add(peeled.text)
                        deeper.append((peeled.text, [*layers, peeled]))
            levels = deeper
        return found

    def _spans_in(self, text: str) -> Iterator[tuple[int, int]]:
        for match in self.pattern.finditer(text):
            yield match.span(1)
        if self.base64 is not None:
            for run in _BASE64_RUN.finditer(text):
                if self.base64.search(run.group()):
                    yield run.span()


@dataclass(frozen=True)
class _Layer:
    """A text with one layer of encodings decoded, and where each of its characters came from.

    The text is made of segments, each starting at ``starts[k]``: a run copied unchanged from
    the parent text at ``sources[k]`` (an int), or one decoded character whose encoding spans
    ``sources[k]`` (a pair) in the parent. Work is per encoded token, not per character.
    """

    text: str
    starts: list[int]
    sources: list[int | tuple[int, int]]

    def parent_span(self, start: int, end: int) -> tuple[int, int]:
        return self._parent(start)[0], self._parent(end - 1)[1]

    def _parent(self, index: int) -> tuple[int, int]:
        segment = bisect.bisect_right(self.starts, index) - 1
        source = self.sources[segment]
        if isinstance(source, int):
            at = source + index - self.starts[segment]
            return at, at + 1
        return source


@functools.lru_cache(maxsize=8)
def _matcher(secret: str) -> _Matcher:
    # Cached: a warm Lambda calling every minute builds the patterns for its secret once.
    # A lookahead, so that echoes are found even where they overlap: the last character of one
    # may take an encoding (JSON's \\ for a backslash) that borrows the next one's first.
    body = "".join(_char_pattern(char) for char in secret)
    pattern = re.compile(f"(?=({body}))", re.IGNORECASE)
    data = secret.encode()
    cores = set()
    for offset in range(3):  # the secret at each alignment inside a longer base64 text
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + data).decode("ascii")
            # Only the characters that depend on the secret's bits alone.
            core = encoded[-(-8 * offset // 6) : (8 * (offset + len(data))) // 6]
            if len(core) >= _MIN_BASE64_CORE:
                cores.add(core)
    alternatives = "|".join(map(re.escape, sorted(cores)))
    # The longest echo recognised: each character in its longest first encoding, then each
    # peeled layer writing every ASCII character it produced in at most 6 (&#x7B; \u007b).
    first = sum(_longest_form(char) for char in secret)
    reach = first * 6**_PEELED_LAYERS + 64
    return _Matcher(pattern, re.compile(alternatives) if cores else None, reach)


def _longest_form(char: str) -> int:
    code = ord(char)
    names = _ENTITY_NAMES.get(char, [])
    return max(
        3 * len(char.encode()),
        12 if code > 0xFFFF else 6,
        len(f"&#{code};") + 1,
        *(len(name) + 1 for name in names),
    )


def _char_pattern(char: str) -> str:
    """A regular expression matching one character in each encoding of it (longest first)."""
    code = ord(char)
    forms = ["".join(f"%{byte:02x}" for byte in char.encode())]
    if code <= 0xFFFF:
        forms += [f"%u{code:04x}", re.escape(f"\\u{code:04x}")]
    else:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        forms.append(re.escape(f"\\u{high:04x}\\u{low:04x}"))
    forms += [rf"&\#x0*{code:x};?", rf"&\#0*{code};?"]
    forms += [re.escape(f"&{name}") for name in _ENTITY_NAMES.get(char, ())]
    if char in "/\"'\\":
        forms.append(re.escape(f"\\{char}"))
    if char == " ":
        forms.append(r"\+")
    return "(?:" + "|".join([*forms, re.escape(char)]) + ")"


def _peel(text: str, family: re.Pattern[str]) -> _Layer | None:
    """Decode one family of encodings in ``text``; None when ``text`` has none of them."""
    pieces: list[str] = []
    starts: list[int] = []
    sources: list[int | tuple[int, int]] = []
    length = 0
    position = 0
    for match in family.finditer(text):
        if match.start() > position:
            pieces.append(text[position : match.start()])
            starts.append(length)
            sources.append(position)
            length += match.start() - position
        for char, start, end in _decoded(match):
            pieces.append(char)
            starts.append(length)
            sources.append((start, end))
            length += 1
        position = match.end()
    if not starts:
        return None
    if position < len(text):
        pieces.append(text[position:])
        starts.append(length)
        sources.append(position)
    return _Layer("".join(pieces), starts, sources)


def _decoded(match: re.Match[str]) -> Iterator[tuple[str, int, int]]:
    """The characters one encoded token stands for, each with its span in the text."""
    start, end = match.span()
    token = match.group()
    groups = match.groupdict()
    if groups.get("percent"):
        # UTF-8 may spread one character over several %XX; undecodable bytes stay as written.
        data = bytes.fromhex(token.replace("%", ""))
        index = 0
        while index < len(data):
            for size in (1, 2, 3, 4):
                try:
                    char = data[index : index + size].decode("utf-8")
                except UnicodeDecodeError:
                    continue
                yield char, start + 3 * index, start + 3 * (index + size)
                index += size
                break
            else:
                for offset in range(3):
                    at = start + 3 * index + offset
                    yield token[3 * index + offset], at, at + 1
                index += 1
        return
    if groups.get("iis"):
        decoded = chr(int(groups["iis"], 16))
    elif groups.get("entity"):
        decoded = html.unescape(token)
    elif groups.get("json"):
        decoded = token.encode("ascii").decode("unicode_escape", "replace")
        decoded = decoded.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    else:
        decoded = groups["escaped"]
    if len(decoded) == 1 and not 0xD800 <= ord(decoded) <= 0xDFFF:
        yield decoded, start, end
    else:  # not an encoding after all (an unknown entity name): the text as written
        for index in range(start, end):
            yield match.string[index], index, index + 1


def _replace_spans(text: str, spans: Sequence[tuple[int, int]], stop: int) -> str:
    """``text[:stop]`` with each span replaced by REDACTED, spans that overlap or touch as one."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces: list[str] = []
    position = 0
    for start, end in merged:
        if start >= stop:
            break
        pieces += [text[position:start], REDACTED]
        position = end
    pieces.append(text[position:stop])
    return "".join(pieces)


def display_url(url: httpx.URL | str, redact: Callable[[str], str] = str) -> str:
    """A URL fit for a log line or a record: no credentials, no fragment, query values hidden."""
    try:
        parsed = httpx.URL(str(url))
    except httpx.InvalidURL:
        # Not a URL httpx can call; what it says up to the query is still worth reporting.
        parts = urlsplit(str(url))
        where = parts.netloc.rpartition("@")[2]
        return redact(f"{parts.scheme}://{where}{parts.path}" if parts.scheme else parts.path)
    query = parsed.query.decode("ascii", "replace")
    names = []
    for pair in query.split("&") if query else []:
        name, has_value, _ = pair.partition("=")
        names.append(f"{name}={REDACTED}" if has_value else name)
    shown = parsed.copy_with(username=None, password=None, fragment=None, query=None)
    text = str(shown) + (f"?{'&'.join(names)}" if names else "")
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
