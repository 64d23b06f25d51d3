"""The built-in HTTP caller against a real HTTP server on loopback.

Loopback is a private address, so these targets opt in with ``AllowPrivateNetwork`` and
``AllowInsecureHttp`` (the server speaks plain HTTP); one test shows the same URL refused
without them. Where a test needs a *public* first hop, DNS is an injected resolver answering a
public address, and a forwarding transport plays the internet by carrying connections to that
address to the local server; every other hop is a real connection to a checked address.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from pydantic import JsonValue, ValidationError

from cronfleet.http_task import (
    HttpCallFailed,
    HttpCallRejected,
    HttpCallResult,
    HttpCallTimedOut,
    HttpTargetRefused,
    call_http_target,
    run_http_task,
)
from cronfleet.lifecycle.states import Trigger
from cronfleet.lifecycle.wrapper import NonRetryableError, TaskContext
from cronfleet.registry.definition import HttpTarget

SECRET = "loopback-s3cret-9f8e7d/+=&<'>"
SECRET_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/cronfleet/test-token"
PUBLIC_IP = "93.184.215.14"


@dataclass
class Seen:
    """What the server received: one (path, headers) per request."""

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


@dataclass
class LocalServer:
    port: int
    seen: Seen

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def make_handler(seen: Seen, port: Callable[[], int]) -> type[BaseHTTPRequestHandler]:
    flaky_calls = 0
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test output is not the place for an access log

        def do_GET(self) -> None:
            nonlocal flaky_calls
            with lock:
                seen.requests.append((self.path, dict(self.headers.items())))
            path = self.path.split("?")[0]
            if path == "/ok":
                self.reply(200, {"success": True, "ran": "nightly"})
            elif path == "/reports-failure":
                self.reply(200, {"success": False, "error": "database is locked"})
            elif path == "/flaky":
                with lock:
                    flaky_calls += 1
                    first = flaky_calls == 1
                self.reply(500, {"error": "warming up"}) if first else self.reply(200, {})
            elif path == "/needs-auth":
                self.reply(401, {"error": "bad token", "got": self.headers.get("Authorization")})
            elif path == "/echo":
                token = self.headers.get("Authorization", "")
                self.reply(200, {"success": True, "echo": token}, {"X-Echo": token})
            elif path == "/echo-encoded":
                # The token travels on in a Location, percent-encoded, to a page that echoes it
                # as servers do: HTML-escaped, JSON with "\\/", URL-encoded, in a Basic header.
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                self.redirect(f"/echoed?t={quote(token, safe='')}")
            elif path == "/echoed":
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                basic = base64.b64encode(f"cron:{token}".encode()).decode()
                page = {
                    "html": f"<p>Hello {html.escape(token)}</p>",
                    "json": json.dumps(token).replace("/", "\\/"),
                    "query": quote_plus(token),
                    "basic": f"Basic {basic}",
                    "asked": self.path,
                }
                self.reply(503, page)
            elif path == "/slow":
                time.sleep(2)
                self.reply(200, {})
            elif path == "/to-metadata":
                self.redirect("http://169.254.169.254/latest/meta-data/iam/")
            elif path == "/to-internal":
                self.redirect(f"http://db.internal.test:{port()}/private")
            elif path == "/private":
                self.reply(200, {"success": True, "secret": "internal data"})
            else:
                self.reply(404, {"error": "no such route"})

        def reply(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@pytest.fixture
def server() -> Iterator[LocalServer]:
    seen = Seen()
    ports: list[int] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(seen, lambda: ports[0]))
    # The slow route is still sleeping when a timeout test ends; do not wait for it.
    httpd.daemon_threads = True
    httpd.block_on_close = False
    ports.append(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield LocalServer(ports[0], seen)
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def opted_in(url: str, **fields: Any) -> HttpTarget:
    return HttpTarget.model_validate(
        {"Url": url, "AllowInsecureHttp": True, "AllowPrivateNetwork": True, **fields}
    )


def call(http: HttpTarget, **kwargs: Any) -> HttpCallResult:
    return call_http_target(http, secret_resolver=lambda arn: SECRET, **kwargs)


def dns(table: dict[str, Sequence[str]]) -> Callable[[str, int], Sequence[str]]:
    return lambda host, port: table[host]


class PublicInternet(httpx.BaseTransport):
    """Carries connections to PUBLIC_IP to the local server; anything else goes where it says."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inner = httpx.HTTPTransport(retries=0)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == PUBLIC_IP:
            request.url = request.url.copy_with(host="127.0.0.1", port=self.port)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


# --- Success and failure -------------------------------------------------------------------


def test_a_successful_call_records_status_duration_url_and_preview(server: LocalServer) -> None:
    result = call(opted_in(server.url("/ok?token=abc"), SuccessField="success"))

    assert result.status == 200
    assert result.url == server.url("/ok?token=***")
    assert json.loads(result.body_preview) == {"success": True, "ran": "nightly"}
    assert 0 <= result.duration_ms < 2000
    assert server.seen.paths() == ["/ok?token=abc"]


def test_the_same_loopback_url_is_refused_without_the_opt_ins(server: LocalServer) -> None:
    # Given the same URLs without AllowPrivateNetwork. A definition is refused on deploy
    # already; the caller refuses on its own too (a stale envelope, a hand-made payload).
    with pytest.raises(ValidationError, match="loopback address"):
        HttpTarget.model_validate({"Url": server.url("/ok"), "AllowInsecureHttp": True})
    no_opt_in = {"allow_private_network": False}
    plain = opted_in(server.url("/ok")).model_copy(update=no_opt_in)
    named = opted_in(server.url("/ok", host="cron.internal.test")).model_copy(update=no_opt_in)

    with pytest.raises(HttpTargetRefused, match="loopback address"):
        call(plain)
    # A name that resolves to loopback is refused after resolution...
    with pytest.raises(HttpTargetRefused, match=r"resolves to 127\.0\.0\.1, a loopback address"):
        call(named, resolver=dns({"cron.internal.test": ["127.0.0.1"]}))
    assert server.seen.requests == []

    # ...and with the opt-in the connection goes to the address that was checked, with the
    # name in Host (the name exists in no DNS: only the pinned address could have reached us).
    result = call(
        opted_in(server.url("/ok", host="cron.internal.test")),
        resolver=dns({"cron.internal.test": ["127.0.0.1"]}),
    )
    assert result.status == 200
    ((_, headers),) = server.seen.requests
    assert headers["Host"] == f"cron.internal.test:{server.port}"


def test_a_success_false_body_is_a_retryable_failure(server: LocalServer) -> None:
    with pytest.raises(HttpCallFailed, match="success: false") as failed:
        call(opted_in(server.url("/reports-failure"), SuccessField="success"))

    assert not isinstance(failed.value, NonRetryableError)
    assert "database is locked" in str(failed.value)
    assert failed.value.result is not None
    assert failed.value.result.status == 200


def test_a_500_is_retryable_and_the_next_call_succeeds(server: LocalServer) -> None:
    http = opted_in(server.url("/flaky"))

    with pytest.raises(HttpCallFailed, match="answered 500, expected 2xx") as failed:
        call(http)
    assert not isinstance(failed.value, NonRetryableError)

    assert call(http).status == 200
    assert server.seen.paths() == ["/flaky", "/flaky"]


def test_a_401_is_not_retryable(server: LocalServer) -> None:
    with pytest.raises(HttpCallRejected, match="answered 401, expected 2xx") as rejected:
        call(opted_in(server.url("/needs-auth")))

    assert isinstance(rejected.value, NonRetryableError)


def test_a_server_slower_than_the_timeout_is_a_retryable_timeout(server: LocalServer) -> None:
    started = time.monotonic()

    with pytest.raises(HttpCallTimedOut, match="no answer within 1 s") as timed_out:
        call(opted_in(server.url("/slow"), TimeoutSeconds=1))

    assert not isinstance(timed_out.value, NonRetryableError)
    assert time.monotonic() - started < 1.9


# --- Redirects -----------------------------------------------------------------------------


def test_a_redirect_to_the_metadata_service_is_refused_even_with_the_opt_ins(
    server: LocalServer,
) -> None:
    with pytest.raises(HttpTargetRefused, match="metadata service") as refused:
        call(opted_in(server.url("/to-metadata")))

    assert refused.value.url == "http://169.254.169.254/latest/meta-data/iam/ (redirect 1)"
    assert server.seen.paths() == ["/to-metadata"]


def test_the_opt_ins_cover_every_hop_so_a_public_target_cannot_redirect_inside(
    server: LocalServer,
) -> None:
    # Given a public name (first hop allowed without AllowPrivateNetwork) whose server
    # redirects to a name that resolves into the private network
    resolver = dns({"cron.example.com": [PUBLIC_IP], "db.internal.test": ["127.0.0.1"]})
    url = server.url("/to-internal", host="cron.example.com")
    public = HttpTarget.model_validate({"Url": url, "AllowInsecureHttp": True})

    # When the task did not opt in, the redirect is refused and the private server is untouched
    with pytest.raises(HttpTargetRefused) as refused:
        call(public, resolver=resolver, transport=PublicInternet(server.port))
    assert refused.value.url == f"http://db.internal.test:{server.port}/private (redirect 1)"
    assert "resolves to 127.0.0.1, a loopback address" in refused.value.reason
    assert server.seen.paths() == ["/to-internal"]

    # When the task opted in, the same redirect is followed: the opt-in is the target's
    result = call(opted_in(url), resolver=resolver, transport=PublicInternet(server.port))
    assert (result.status, result.redirects) == (200, 1)
    assert server.seen.paths() == ["/to-internal", "/to-internal", "/private"]


# --- The secret ----------------------------------------------------------------------------


def test_the_secret_is_sent_but_never_logged_raised_or_recorded(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    # Given servers that echo the Bearer token back in their bodies and headers
    result = call(opted_in(server.url("/echo"), SecretArn=SECRET_ARN, SuccessField="success"))
    with pytest.raises(HttpCallRejected) as rejected:
        call(opted_in(server.url("/needs-auth"), SecretArn=SECRET_ARN))

    # Then the secret reached the server...
    assert [h["Authorization"] for _, h in server.seen.requests] == [f"Bearer {SECRET}"] * 2
    # ...and appears nowhere the caller produces
    assert rejected.value.result is not None
    for text in (
        json.dumps(result.as_record()),
        repr(result),
        str(rejected.value),
        repr(rejected.value),
        json.dumps(rejected.value.result.as_record()),
        caplog.text,
    ):
        assert SECRET not in text
    assert "Bearer ***" in result.body_preview


def test_a_secret_echoed_encoded_is_never_logged_raised_or_recorded(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    # Given a real server that redirects with the token in the query, then echoes it encoded
    with pytest.raises(HttpCallFailed) as failed:
        call(opted_in(server.url("/echo-encoded"), SecretArn=SECRET_ARN))

    # Then the server did get it, and none of its encodings is in what the caller produced
    assert [h["Authorization"] for _, h in server.seen.requests] == [f"Bearer {SECRET}"] * 2
    assert server.seen.paths()[1] == f"/echoed?t={quote(SECRET, safe='')}"
    error = failed.value
    assert error.result is not None
    forms = [
        SECRET,
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        html.escape(SECRET),
        json.dumps(SECRET)[1:-1].replace("/", "\\/"),
        base64.b64encode(f"cron:{SECRET}".encode()).decode(),
    ]
    for text in (str(error), json.dumps(error.result.as_record()), caplog.text):
        for form in forms:
            assert form not in text
    assert error.result.url == server.url("/echoed?t=***")
    assert "Basic ***" in error.result.body_preview


# --- The task function ---------------------------------------------------------------------


def test_the_task_function_calls_the_target_from_the_envelope_payload(
    server: LocalServer,
) -> None:
    http: dict[str, JsonValue] = {
        "Url": server.url("/ok"),
        "AllowInsecureHttp": True,
        "AllowPrivateNetwork": True,
    }
    task = TaskContext(
        task_id="ping",
        slot="2026-01-05T09:00:00Z",
        attempt=1,
        trigger=Trigger.SCHEDULE,
        payload={"http": http},
        deadline=datetime.now(UTC) + timedelta(minutes=1),
    )

    record = run_http_task(task)

    assert record["status"] == 200
    assert record["url"] == server.url("/ok")
