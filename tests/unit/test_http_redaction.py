"""The Bearer secret never leaves the HTTP caller, in any encoding a server may echo it in.

The encoders are the standard library's own (urllib.parse, html, json, base64), so the oracle
for "this is how a server would write it" is independent of the redactor's decoding.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cronfleet.http_task import (
    REDACTED,
    HttpCallFailed,
    HttpCallRejected,
    SecretRedactor,
    call_http_target,
)
from cronfleet.lifecycle.wrapper import NonRetryableError
from cronfleet.registry.definition import HttpTarget

PUBLIC_IP = "93.184.215.14"
SECRET_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/cronfleet/token"

Encoder = Callable[[str], str]


def json_string(text: str) -> str:
    return json.dumps(text)[1:-1]


def json_slashes(text: str) -> str:
    """What PHP's json_encode and many others write: '/' as '\\/'."""
    return json.dumps(text)[1:-1].replace("/", "\\/")


def json_ascii_everything(text: str) -> str:
    """Every character as \\uXXXX (UTF-16 units), as some encoders escape all they can."""
    units = text.encode("utf-16-be")
    return "".join(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2))


def go_json(text: str) -> str:
    """Go's encoding/json: <, > and & as \\u003c, \\u003e, \\u0026."""
    escaped = json.dumps(text, ensure_ascii=False)[1:-1]
    return escaped.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def html_decimal(text: str) -> str:
    return "".join(f"&#{ord(char)};" for char in text)


def html_hex(text: str) -> str:
    return "".join(f"&#X{ord(char):X};" for char in text)


def percent_lower(text: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda escape: escape.group().lower(), quote(text, safe=""))


def percent_everything(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode())


# One layer each, as a server writes it. base64 stands for a Basic-style echo of user:secret.
TEXT_ENCODERS: dict[str, Encoder] = {
    "raw": lambda text: text,
    "quote": quote,
    "quote, nothing safe": lambda text: quote(text, safe=""),
    "quote_plus": quote_plus,
    "percent, lower-case hex": percent_lower,
    "percent, every byte": percent_everything,
    "html.escape": html.escape,
    "html.escape without quotes": lambda text: html.escape(text, quote=False),
    "HTML decimal entities": html_decimal,
    "HTML hex entities": html_hex,
    "JSON": json_string,
    "JSON, ensure_ascii=False": lambda text: json.dumps(text, ensure_ascii=False)[1:-1],
    "JSON with \\/": json_slashes,
    "JSON \\u everything": json_ascii_everything,
    "Go JSON": go_json,
}
BASE64_ENCODERS: dict[str, Encoder] = {
    "base64": lambda text: base64.b64encode(text.encode()).decode(),
    "base64 of user:secret": lambda text: base64.b64encode(f"user:{text}".encode()).decode(),
    "base64 of id:secret, URL-safe, unpadded": lambda text: (
        base64.urlsafe_b64encode(f"id:{text}".encode()).decode().rstrip("=")
    ),
}

# Characters that each change under at least one encoder above, and a few that do not.
ALPHABET = "aZ9-_.~" + "/+=&<>\"' %\\#?:;@!$,[]{}" + "é€😀"
secrets = st.text(alphabet=ALPHABET, min_size=8, max_size=40)
# The innermost layer may be base64 (a Basic echo); up to two text layers go on top of it.
layers = st.tuples(
    st.sampled_from(sorted({**TEXT_ENCODERS, **BASE64_ENCODERS})),
    st.lists(st.sampled_from(sorted(TEXT_ENCODERS)), max_size=2),
)


def encode(secret: str, inner: str, outer: Sequence[str]) -> str:
    text = {**TEXT_ENCODERS, **BASE64_ENCODERS}[inner](secret)
    for name in outer:
        text = TEXT_ENCODERS[name](text)
    return text


@settings(max_examples=400, deadline=None)
@given(secret=secrets, encoding=layers)
@example(secret="s3cr3t-T0ken/with+chars", encoding=("JSON with \\/", []))
@example(secret="p&ss<w>rd'\"x", encoding=("html.escape", ["quote"]))
@example(secret="a b+c/d%e\\f", encoding=("quote_plus", ["JSON with \\/", "html.escape"]))
@example(secret="tok/en+==é😀", encoding=("base64 of user:secret", ["quote, nothing safe"]))
def test_the_secret_is_hidden_in_every_encoding_and_combination_of_them(
    secret: str, encoding: tuple[str, list[str]]
) -> None:
    # Given a server's answer that echoes the secret in some stack of encodings
    echoed = encode(secret, *encoding)
    text = f"«{echoed}»"

    # When the answer is redacted
    redacted = SecretRedactor(secret)(text)

    # Then the echo is gone, whole, and the text around it is left alone
    assert redacted == f"«{REDACTED}»", (echoed, redacted)


@settings(max_examples=200, deadline=None)
@given(secret=secrets, encoding=layers, cut=st.integers(0, 400))
def test_a_preview_cut_anywhere_keeps_no_part_of_an_echo(
    secret: str, encoding: tuple[str, list[str]], cut: int
) -> None:
    # Given a long answer with echoes of the secret, cut at an arbitrary length
    echoed = encode(secret, *encoding)
    text = ("«" * cut + echoed) * 3 + "»" * 2000

    # When only a prefix of it is kept
    preview, left_out = SecretRedactor(secret).prefix(text, cut + 10)

    # Then no character of any echo is in it: only the padding and redaction marks
    assert set(preview) <= {"«", "»", *REDACTED}
    assert left_out


def test_echoes_shrunk_by_redaction_do_not_pull_a_cut_echo_into_the_preview() -> None:
    # Given an answer that is nothing but echoes: redacting the first ones shortens the text,
    # which would bring the echo cut at the end of the searched window into the kept prefix
    secret = "abcdefgh"
    redact = SecretRedactor(secret)
    text = secret * (2 * redact.reach // len(secret))  # longer than the window searched

    preview, left_out = redact.prefix(text, 50)

    assert set(preview) == set(REDACTED)
    assert left_out


def test_text_without_the_secret_is_left_as_it_was() -> None:
    answer = '{"status": "ok", "url": "https://a.example/x?y=1&amp;z=%2F", "b": "dG9rZW4="}'

    assert SecretRedactor("s3cr3t-T0ken/with+chars")(answer) == answer


def test_a_secret_whose_case_an_echo_changed_is_hidden_too() -> None:
    # A host name is lowercased on its way through a URL parser.
    redact = SecretRedactor("Tok3nValueXYZ")

    assert redact("https://tok3nvaluexyz.evil.example/") == f"https://{REDACTED}.evil.example/"


# --- Through the HTTP caller ----------------------------------------------------------------


def target(**fields: Any) -> HttpTarget:
    return HttpTarget.model_validate(
        {"Url": "https://api.example.com/cron", "SecretArn": SECRET_ARN, **fields}
    )


def every_form(secret: str) -> list[str]:
    forms = [encode(secret, name, []) for name in {**TEXT_ENCODERS, **BASE64_ENCODERS}]
    forms += [encode(secret, "raw", [a, b]) for a in TEXT_ENCODERS for b in TEXT_ENCODERS]
    # A form of four characters or fewer may occur in any text (a short secret's "raw" is its own).
    return sorted({form for form in forms if len(form) > 4})


# What an Authorization header can carry: ASCII, no surrounding space (the caller strips it).
ascii_secrets = (
    st.text(alphabet=ALPHABET.encode("ascii", "ignore").decode(), min_size=8, max_size=40)
    .map(str.strip)
    .filter(lambda secret: len(secret) >= 8)
)


def echo_everywhere(request: httpx.Request) -> httpx.Response:
    """A server that echoes the token in its answer, every way it knows, and redirects once."""
    token = request.headers["authorization"].removeprefix("Bearer ")
    echoes = {name: encoder(token) for name, encoder in TEXT_ENCODERS.items()}
    echoes["basic"] = "Basic " + BASE64_ENCODERS["base64 of user:secret"](token)
    if request.url.path == "/cron":
        return httpx.Response(302, headers={"Location": f"/next/{quote(token)}?t={quote(token)}"})
    body = json.dumps({"success": token, "echo": echoes, "page": f"<p>{html.escape(token)}</p>"})
    return httpx.Response(500, text=body)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(secret=ascii_secrets)
def test_a_server_echoing_the_secret_in_any_encoding_leaks_it_nowhere(
    secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    caplog.set_level(logging.DEBUG)

    # Given a server that echoes the Bearer token in its body, in each encoding, after a
    # redirect whose Location carries it in its path and its query
    with pytest.raises(HttpCallFailed) as failed:
        call_http_target(
            target(SuccessField="success"),
            secret_resolver=lambda arn: secret,
            transport=httpx.MockTransport(echo_everywhere),
            resolver=lambda host, port: [PUBLIC_IP],
        )

    # Then neither the error, nor the record, nor any log line holds any form of it
    error = failed.value
    assert error.result is not None
    produced = [
        str(error),
        repr(error),
        json.dumps(error.result.as_record()),
        caplog.text,
        *(repr(vars(record)) for record in caplog.records),  # the structured fields too
    ]
    for text in produced:
        for form in every_form(secret):
            assert form not in text
    assert REDACTED in error.result.body_preview
    assert REDACTED in error.result.url


def test_a_secret_echoed_as_the_success_flag_is_hidden_in_the_error() -> None:
    secret = "flag-echo-T0ken/1234567890"

    with pytest.raises(HttpCallFailed) as failed:
        call_http_target(
            target(SuccessField="success"),
            secret_resolver=lambda arn: secret,
            transport=httpx.MockTransport(
                lambda request: httpx.Response(200, json={"success": "X" * 30 + secret})
            ),
            resolver=lambda host, port: [PUBLIC_IP],
        )

    message = str(failed.value)
    assert "reports success: " in message
    assert secret[:10] not in message
    assert secret not in message


def test_a_redirect_to_a_host_named_after_the_secret_is_reported_redacted() -> None:
    secret = "Tok3nInTheHost99"

    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": f"https://{secret}.attacker.example/"})

    def resolver(host: str, port: int) -> list[str]:
        if host == "api.example.com":
            return [PUBLIC_IP]
        raise OSError(f"no such host: {host}")

    with pytest.raises(HttpCallFailed) as failed:
        call_http_target(
            target(),
            secret_resolver=lambda arn: secret,
            transport=httpx.MockTransport(server),
            resolver=resolver,
        )

    assert "could not resolve" in str(failed.value)
    assert secret.lower() not in str(failed.value).lower()


def test_an_unforeseen_failure_quoting_the_request_is_retryable_and_redacted() -> None:
    secret = "unforeseen-T0ken/abc"

    def broken(request: httpx.Request) -> httpx.Response:
        # Not an httpx error: a transport (or a bug) failing in a way the caller did not expect.
        raise RuntimeError(f"cannot send {request.headers['authorization']}")

    with pytest.raises(HttpCallFailed) as failed:
        call_http_target(
            target(),
            secret_resolver=lambda arn: secret,
            transport=httpx.MockTransport(broken),
            resolver=lambda host, port: [PUBLIC_IP],
        )

    assert "RuntimeError: cannot send Bearer ***" in str(failed.value)
    assert not isinstance(failed.value, NonRetryableError)
    assert failed.value.__cause__ is None
    assert failed.value.__suppress_context__


def test_a_non_ascii_secret_is_refused_without_showing_it() -> None:
    with pytest.raises(NonRetryableError, match="non-ASCII") as refused:
        call_http_target(
            target(),
            secret_resolver=lambda arn: "pässwörd-123",
            transport=httpx.MockTransport(lambda request: httpx.Response(200)),
            resolver=lambda host, port: [PUBLIC_IP],
        )
    assert not isinstance(refused.value, HttpCallRejected)
    assert "pässwörd" not in str(refused.value)
