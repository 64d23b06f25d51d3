"""The built-in HTTP caller, without a network: refusal rules, secret redaction, outcomes.

DNS is an injected resolver and the server is ``httpx.MockTransport``, so each test states the
answers it depends on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cronfleet.http_task import (
    BODY_PREVIEW_BYTES,
    MAX_REDIRECTS,
    HttpCallFailed,
    HttpCallRejected,
    HttpCallTimedOut,
    HttpTargetRefused,
    call_http_target,
    display_url,
    read_secret,
    run_http_task,
)
from cronfleet.lifecycle.states import Trigger
from cronfleet.lifecycle.wrapper import NonRetryableError, TaskContext
from cronfleet.registry.definition import HttpTarget

PUBLIC_IP = "93.184.215.14"
SECRET = "s3cr3t-T0ken/with+chars"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cron-token-AbCdEf"

Handler = Callable[[httpx.Request], httpx.Response]


def target(url: str = "https://api.example.com/cron", **fields: Any) -> HttpTarget:
    return HttpTarget.model_validate({"Url": url, **fields})


def dns(table: dict[str, Sequence[str]]) -> Callable[[str, int], Sequence[str]]:
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise OSError(f"no such host: {host}")
        return table[host]

    return resolve


PUBLIC_DNS = dns({"api.example.com": [PUBLIC_IP], "other.example.org": ["93.184.215.15"]})


def answer(status: int = 200, **kwargs: Any) -> Handler:
    return lambda request: httpx.Response(status, **kwargs)


def call(
    http: HttpTarget,
    handler: Handler,
    *,
    resolver: Callable[[str, int], Sequence[str]] = PUBLIC_DNS,
    secret: str = SECRET,
) -> Any:
    return call_http_target(
        http,
        secret_resolver=lambda arn: secret,
        transport=httpx.MockTransport(handler),
        resolver=resolver,
    )


def never_called(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"a refused target was contacted: {request.url}")


# --- Refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.5", "a private address"),
        ("169.254.169.254", "the cloud instance metadata service"),
        ("::ffff:127.0.0.1", "a loopback address (127.0.0.1 embedded as IPv4-mapped)"),
        ("127.0.0.1", "a loopback address"),
        ("fd00:ec2::254", "the cloud instance metadata service"),
    ],
)
def test_a_public_name_resolving_to_a_non_public_address_is_refused(
    address: str, reason: str
) -> None:
    # Given a name that looks public but resolves inside the network
    resolver = dns({"api.example.com": [address]})

    # When it is called, then nothing is contacted and the refusal says why
    with pytest.raises(HttpTargetRefused) as refused:
        call(target(), never_called, resolver=resolver)
    assert refused.value.url == "https://api.example.com/cron"
    assert f"api.example.com resolves to {address}, {reason}" in str(refused.value)
    assert isinstance(refused.value, NonRetryableError)


def test_one_refused_address_among_public_ones_refuses_the_call() -> None:
    resolver = dns({"api.example.com": [PUBLIC_IP, "10.0.0.5"]})

    with pytest.raises(HttpTargetRefused, match=r"resolves to 10\.0\.0\.5, a private address"):
        call(target(), never_called, resolver=resolver)


def test_allow_private_network_lets_a_private_address_through() -> None:
    seen: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        return httpx.Response(200)

    result = call(
        target(AllowPrivateNetwork=True), server, resolver=dns({"api.example.com": ["10.0.0.5"]})
    )

    assert result.status == 200
    assert seen == ["10.0.0.5"]


@pytest.mark.parametrize("address", ["169.254.169.254", "::ffff:169.254.169.254", "169.254.170.2"])
def test_allow_private_network_never_lets_the_metadata_service_through(address: str) -> None:
    resolver = dns({"api.example.com": [address]})

    with pytest.raises(HttpTargetRefused, match=r"metadata service.*never a task's target"):
        call(target(AllowPrivateNetwork=True), never_called, resolver=resolver)


# Each: an address a resolver may answer, and what a connection to it reaches.
EMBEDDED_CREDENTIAL_ENDPOINTS = {
    "IPv4-compatible": ("::a9fe:a9fe", "(169.254.169.254 embedded as IPv4-compatible)"),
    "NAT64 local-use": ("64:ff9b:1::a9fe:a9fe", "(169.254.169.254 embedded by local-use NAT64)"),
    "NAT64 well-known": ("64:ff9b::a9fe:a9fe", "(169.254.169.254 embedded by NAT64)"),
    "6to4": ("2002:a9fe:a9fe::", "(169.254.169.254 embedded by 6to4)"),
    "Teredo": (
        "2001:0:4136:e378:8000:63bf:5601:5601",
        "(169.254.169.254 embedded as the Teredo client)",
    ),
    "ISATAP": ("2600:1f18::200:5efe:a9fe:a9fe", "(169.254.169.254 embedded by ISATAP)"),
    "SIIT": ("::ffff:0:a9fe:a9fe", "(169.254.169.254 embedded as IPv4-translated)"),
    "IMDS IPv6 with a zone": ("fd00:ec2::254%eth0", "the cloud instance metadata service"),
    "EKS Pod Identity": ("169.254.170.23", "the EKS Pod Identity credentials service"),
    "EKS Pod Identity IPv6": ("fd00:ec2::23", "the EKS Pod Identity credentials service"),
}


@pytest.mark.parametrize(
    ("address", "said"),
    EMBEDDED_CREDENTIAL_ENDPOINTS.values(),
    ids=EMBEDDED_CREDENTIAL_ENDPOINTS.keys(),
)
def test_a_name_resolving_to_a_credentials_endpoint_in_any_spelling_is_refused_even_opted_in(
    address: str, said: str
) -> None:
    # Given a task that opted in to private networks, and a name resolving to the metadata
    # service (or a credentials endpoint) written as some other address
    resolver = dns({"api.example.com": [address]})

    # When it is called, then nothing is contacted and the refusal names what it reaches
    with pytest.raises(HttpTargetRefused) as refused:
        call(target(AllowPrivateNetwork=True), never_called, resolver=resolver)
    assert said in refused.value.reason
    assert refused.value.reason.endswith("never a task's target")


@pytest.mark.parametrize(
    "location",
    [
        "http://2852039166/latest/meta-data/",
        "http://0xa9fea9fe/latest/meta-data/",
        # (Octal, "0251.0376.0251.0376", never gets here: httpx rejects the Location itself.)
        "http://169.254.43518/latest/meta-data/",
        "http://169.254.169.254./latest/meta-data/",
        "http://[::a9fe:a9fe]/latest/meta-data/",
        "http://[64:ff9b:1::a9fe:a9fe]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://169.254.170.2/v2/credentials/x",
        "http://169.254.170.23/v1/credentials",
        "http://[fd00:ec2::23]/v1/credentials",
    ],
)
def test_a_redirect_to_a_credentials_endpoint_in_any_spelling_is_refused(location: str) -> None:
    hops: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        hops.append(str(request.url))
        return httpx.Response(302, headers={"Location": location})

    http = target(AllowInsecureHttp=True, AllowPrivateNetwork=True)

    with pytest.raises(HttpTargetRefused, match=r"never a task's target") as refused:
        call(http, server)
    assert refused.value.url.endswith("(redirect 1)")
    assert hops == [f"https://{PUBLIC_IP}/cron"]


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("2600::200:5efe:a00:1", "a private address (10.0.0.1 embedded by ISATAP)"),
        ("::a00:1", "a private address (10.0.0.1 embedded as IPv4-compatible)"),
        ("64:ff9b:1::7f00:1", "a loopback address (127.0.0.1 embedded by local-use NAT64)"),
    ],
)
def test_a_name_resolving_to_an_embedded_private_address_is_refused_unless_opted_in(
    address: str, said: str
) -> None:
    resolver = dns({"api.example.com": [address]})

    with pytest.raises(HttpTargetRefused) as refused:
        call(target(), never_called, resolver=resolver)
    assert f"api.example.com resolves to {address}, {said}" in refused.value.reason
    assert refused.value.reason.endswith("set AllowPrivateNetwork: true to call it on purpose")
    assert call(target(AllowPrivateNetwork=True), answer(204), resolver=resolver).status == 204


def test_a_url_the_http_client_cannot_parse_is_refused_not_retried() -> None:
    # Given a host that passes the definition's checks but that IDNA 2008 rejects
    http = target("https://\u2603.example/cron?key=abc")

    with pytest.raises(HttpTargetRefused, match="is not a valid URL") as refused:
        call(http, never_called)
    assert refused.value.url == "https://\u2603.example/cron"  # the query is not shown


def test_plain_http_is_refused_unless_allowed() -> None:
    # An HttpTarget cannot even be built with an http:// URL by default; a target built
    # without validation (a stale envelope, a hand-made model) is refused by the caller too.
    insecure = HttpTarget.model_construct(
        **{**target().model_dump(), "url": "http://api.example.com/cron"}
    )
    with pytest.raises(HttpTargetRefused, match="must use https://"):
        call(insecure, never_called)

    result = call(target("http://api.example.com/cron", AllowInsecureHttp=True), answer(204))
    assert result.status == 204


def test_a_redirect_to_the_metadata_service_is_refused() -> None:
    first = answer(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    http = target(AllowInsecureHttp=True, AllowPrivateNetwork=True)

    with pytest.raises(HttpTargetRefused) as refused:
        call(http, first)
    assert refused.value.url == "http://169.254.169.254/latest/meta-data/ (redirect 1)"
    assert "metadata service" in refused.value.reason


def test_a_redirect_to_a_name_resolving_privately_is_refused() -> None:
    hops: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        hops.append(request.headers["host"])
        return httpx.Response(301, headers={"Location": "https://internal.example.com/admin"})

    resolver = dns({"api.example.com": [PUBLIC_IP], "internal.example.com": ["192.168.1.9"]})
    with pytest.raises(HttpTargetRefused, match=r"internal.example.com resolves to 192.168.1.9"):
        call(target(), server, resolver=resolver)
    assert hops == ["api.example.com"]


def test_an_https_target_redirecting_to_plain_http_is_refused() -> None:
    first = answer(302, headers={"Location": "http://api.example.com/cron"})

    with pytest.raises(HttpTargetRefused, match=r"\(redirect 1\): must use https://"):
        call(target(), first)


def test_the_connection_goes_to_the_checked_address_with_the_name_in_host_and_sni() -> None:
    # The address that was checked is the one connected to: a second DNS answer (rebinding)
    # never gets a say.
    answers = iter([[PUBLIC_IP], ["10.0.0.5"]])
    seen: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    call(target("https://api.example.com:8443/cron"), server, resolver=lambda h, p: next(answers))

    (request,) = seen
    assert request.url.host == PUBLIC_IP
    assert request.url.port == 8443
    assert request.headers["host"] == "api.example.com:8443"
    assert request.extensions["sni_hostname"] == "api.example.com"


def test_a_name_that_does_not_resolve_is_a_retryable_failure() -> None:
    with pytest.raises(HttpCallFailed, match=r"could not resolve api\.example\.com"):
        call(target(), never_called, resolver=dns({}))


def test_more_than_five_redirects_are_not_followed() -> None:
    count = 0

    def loop(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return httpx.Response(302, headers={"Location": f"/cron?hop={count}"})

    with pytest.raises(HttpCallRejected, match=f"redirected more than {MAX_REDIRECTS} times"):
        call(target(), loop)
    assert count == MAX_REDIRECTS + 1


# --- Redirect semantics -------------------------------------------------------------------


def test_a_303_turns_a_post_into_a_get_without_body_and_307_keeps_it() -> None:
    seen: list[tuple[str, str, bytes]] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.content))
        if request.url.path == "/start":
            return httpx.Response(307, headers={"Location": "/again"})
        if request.url.path == "/again":
            return httpx.Response(303, headers={"Location": "/done"})
        return httpx.Response(200)

    http = target("https://api.example.com/start", Method="POST", Body={"full": True})
    result = call(http, server)

    assert seen == [
        ("POST", "/start", b'{"full":true}'),
        ("POST", "/again", b'{"full":true}'),
        ("GET", "/done", b""),
    ]
    assert result.redirects == 2
    assert result.url == "https://api.example.com/done"


def test_the_secret_is_sent_only_to_the_first_urls_origin() -> None:
    seen: dict[str, str | None] = {}

    def server(request: httpx.Request) -> httpx.Response:
        host = request.headers["host"]
        seen[host] = request.headers.get("authorization")
        if host == "api.example.com":
            return httpx.Response(302, headers={"Location": "https://other.example.org/x"})
        return httpx.Response(200)

    call(target(SecretArn=SECRET_ARN), server)

    assert seen == {"api.example.com": f"Bearer {SECRET}", "other.example.org": None}


def test_a_redirect_status_listed_as_expected_is_the_answer() -> None:
    result = call(target(ExpectedStatus=[302]), answer(302, headers={"Location": "/elsewhere"}))

    assert (result.status, result.redirects) == (302, 0)


# --- Outcome classification ---------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_server_errors_and_later_statuses_are_retryable(status: int) -> None:
    with pytest.raises(HttpCallFailed, match=f"answered {status}, expected 2xx") as failed:
        call(target(), answer(status, text="upstream down"))
    assert not isinstance(failed.value, NonRetryableError)
    assert failed.value.result is not None
    assert failed.value.result.body_preview == "upstream down"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_client_errors_are_not_retryable(status: int) -> None:
    with pytest.raises(HttpCallRejected, match=f"answered {status}, expected 2xx"):
        call(target(), answer(status))


def test_a_status_outside_expected_status_is_not_retryable() -> None:
    with pytest.raises(HttpCallRejected, match="answered 202, expected 200, 204"):
        call(target(ExpectedStatus=[200, 204]), answer(202))


def test_success_field_true_succeeds() -> None:
    result = call(target(SuccessField="success"), answer(200, json={"success": True, "n": 3}))

    assert result.status == 200
    assert json.loads(result.body_preview) == {"success": True, "n": 3}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"success": False, "error": "db locked"}, "reports success: false"),
        ({"success": "yes"}, 'reports success: "yes"'),
        ({"ok": True}, "has no 'success' field"),
        ([1, 2], "not a JSON object"),
        ("<html>maintenance</html>", "not JSON"),
    ],
)
def test_success_field_not_true_is_a_retryable_failure(body: Any, problem: str) -> None:
    content = body if isinstance(body, str) else json.dumps(body)
    with pytest.raises(HttpCallFailed, match=problem) as failed:
        call(target(SuccessField="success"), answer(200, text=content))
    assert not isinstance(failed.value, NonRetryableError)


def test_success_false_with_an_expected_4xx_status_is_not_retryable() -> None:
    http = target(SuccessField="success", ExpectedStatus=[200, 409])

    with pytest.raises(HttpCallRejected, match=r"answered 409, but .* success: false"):
        call(http, answer(409, json={"success": False}))


def test_timeouts_and_connection_errors_are_retryable() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(HttpCallTimedOut, match="no answer within 30 s"):
        call(target(), slow)
    with pytest.raises(HttpCallFailed, match="ConnectError: connection refused"):
        call(target(), refused)


def test_the_result_records_status_duration_final_url_and_a_bounded_preview() -> None:
    result = call(
        target("https://api.example.com/cron?key=abc&verbose"), answer(200, text="é" * 4000)
    )

    record = result.as_record()
    assert record["status"] == 200
    assert isinstance(record["duration_ms"], int)
    assert record["url"] == "https://api.example.com/cron?key=***&verbose"
    assert len(result.body_preview.encode()) <= BODY_PREVIEW_BYTES
    assert result.body_preview == "é" * (BODY_PREVIEW_BYTES // 2)
    assert record["body_truncated"] is True


# --- Secret redaction ---------------------------------------------------------------------


def echo_secret(status: int) -> Handler:
    def server(request: httpx.Request) -> httpx.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        body = {"success": False, "you_sent": token, "escaped": json.dumps(token)[1:-1]}
        return httpx.Response(status, text=json.dumps(body), headers={"Location": f"/x?t={token}"})

    return server


@pytest.mark.parametrize("status", [200, 401, 500])
def test_the_secret_never_appears_in_errors_logs_or_results(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    http = target(SecretArn=SECRET_ARN, SuccessField="success")

    with pytest.raises((HttpCallFailed, HttpCallRejected)) as failed:
        call(http, echo_secret(status))

    error = failed.value
    assert isinstance(error, HttpCallFailed | HttpCallRejected)
    assert error.result is not None
    escaped = json.dumps(SECRET)[1:-1]
    for text in (str(error), repr(error), repr(error.result), json.dumps(error.result.as_record())):
        assert SECRET not in text
        assert escaped not in text
    assert "***" in error.result.body_preview
    assert SECRET not in caplog.text


def test_a_secret_cut_by_the_preview_limit_leaves_no_fragment() -> None:
    padding = "x" * (BODY_PREVIEW_BYTES - 5)

    result = call(target(SecretArn=SECRET_ARN), answer(200, text=padding + SECRET))

    assert SECRET[:5] not in result.body_preview
    assert result.body_preview.startswith(padding)


def test_a_secret_with_a_line_break_is_refused_without_showing_it() -> None:
    with pytest.raises(NonRetryableError, match="control characters") as refused:
        call(target(SecretArn=SECRET_ARN), never_called, secret="abc\r\nX-Evil: 1")
    assert "abc" not in str(refused.value)


def test_a_secret_that_cannot_be_read_is_a_retryable_failure() -> None:
    def unavailable(arn: str) -> str:
        raise RuntimeError("ThrottlingException")

    with pytest.raises(HttpCallFailed, match=f"could not read the secret {SECRET_ARN}"):
        call_http_target(
            target(SecretArn=SECRET_ARN),
            secret_resolver=unavailable,
            transport=httpx.MockTransport(never_called),
            resolver=PUBLIC_DNS,
        )


def test_read_secret_uses_secrets_manager_or_ssm_with_caching_and_decryption(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aws_lambda_powertools.utilities import parameters

    calls: list[tuple[str, str, dict[str, Any]]] = []

    def get_secret(name: str, **options: Any) -> bytes:
        calls.append(("sm", name, options))
        return b"bin"

    def get_parameter(name: str, **options: Any) -> str:
        calls.append(("ssm", name, options))
        return "txt"

    monkeypatch.setattr(parameters, "get_secret", get_secret)
    monkeypatch.setattr(parameters, "get_parameter", get_parameter)
    ssm_arn = "arn:aws:ssm:us-east-1:123456789012:parameter/cron/token"

    assert read_secret(SECRET_ARN) == "bin"
    assert read_secret(ssm_arn) == "txt"
    assert calls == [
        ("sm", SECRET_ARN, {"max_age": 300}),
        ("ssm", ssm_arn, {"decrypt": True, "max_age": 300}),
    ]


def test_display_url_hides_query_values_and_fragments() -> None:
    shown = display_url("https://api.example.com/p?token=abc&a=1&flag#frag")

    assert shown == "https://api.example.com/p?token=***&a=***&flag"


# --- The task function --------------------------------------------------------------------


def context(payload: dict[str, Any]) -> TaskContext:
    return TaskContext(
        task_id="ping",
        slot="2026-01-05T09:00:00Z",
        attempt=1,
        trigger=Trigger.SCHEDULE,
        payload=payload,
        deadline=datetime.now(UTC) + timedelta(minutes=5),
    )


def test_the_task_function_needs_an_http_target_in_the_payload() -> None:
    with pytest.raises(NonRetryableError, match="no 'http' object"):
        run_http_task(context({}))


def test_the_task_function_validates_the_payloads_target_again() -> None:
    payload = {"http": {"Url": "http://169.254.169.254/", "AllowInsecureHttp": True}}

    with pytest.raises(NonRetryableError, match=r"Http target is invalid: .*metadata service"):
        run_http_task(context(payload))
