"""The options of curl and wget that a translated task can carry, and those it cannot."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from cronfleet_tools.importers.display import masked
from cronfleet_tools.importers.model import (
    DEFAULT_HTTP_TIMEOUT_SECONDS,
    MAX_HTTP_TIMEOUT_SECONDS,
    Untranslatable,
)

# --- curl and wget -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Program:
    """The command-line options of curl or wget that an import understands."""

    name: str
    short: Mapping[str, str]  # -X -> canonical name
    long: Mapping[str, str]  # --request -> canonical name
    takes_value: frozenset[str]  # canonical names
    # Options with no equivalent, and why; the line is not translated.
    refused: Mapping[str, str]
    # Options that only shape the program's own output, or behaviour the HTTP caller has too.
    ignored: frozenset[str]
    equals_form: bool  # --name=value (wget); curl reads the value from the next word
    words: Mapping[str, str] = field(default_factory=dict)  # wget's -nv is one option


_BASIC_AUTH = (
    "basic authentication has no equivalent: the HTTP caller sends a secret only as Bearer"
)
_FILE_BODY = "it reads the body from a file"

_CURL = Program(
    name="curl",
    short={
        "X": "method", "H": "header", "d": "data", "u": "user", "m": "timeout", "o": "output",
        "A": "user-agent", "e": "referer", "b": "cookie", "c": "cookie-jar", "w": "write-out",
        "E": "cert", "x": "proxy", "F": "form", "T": "upload-file", "s": "silent",
        "S": "show-error", "f": "fail", "L": "location", "v": "verbose", "k": "insecure",
        "I": "head", "G": "get", "i": "include", "n": "netrc", "4": "ipv4", "6": "ipv6",
        "#": "progress-bar", "N": "no-buffer", "q": "disable",
    },
    long={
        "request": "method", "header": "header", "data": "data", "data-binary": "data",
        "data-ascii": "data", "data-raw": "data-raw", "data-urlencode": "data-urlencode",
        "json": "json", "user": "user", "max-time": "timeout", "connect-timeout": "connect-timeout",
        "output": "output", "user-agent": "user-agent", "referer": "referer", "cookie": "cookie",
        "cookie-jar": "cookie-jar", "write-out": "write-out", "cert": "cert", "proxy": "proxy",
        "form": "form", "upload-file": "upload-file", "silent": "silent",
        "show-error": "show-error", "fail": "fail", "fail-with-body": "fail",
        "location": "location", "verbose": "verbose", "insecure": "insecure", "head": "head",
        "get": "get", "include": "include", "netrc": "netrc", "ipv4": "ipv4", "ipv6": "ipv6",
        "progress-bar": "progress-bar", "no-buffer": "no-buffer", "compressed": "compressed",
        "no-progress-meter": "silent", "http1.1": "http-version", "http2": "http-version",
        "retry": "retry", "retry-delay": "retry-delay", "retry-max-time": "retry-delay",
        "retry-all-errors": "retry-all", "retry-connrefused": "retry-all", "url": "url",
        "oauth2-bearer": "oauth2-bearer", "disable": "disable", "stderr": "stderr",
    },
    takes_value=frozenset({
        "method", "header", "data", "data-raw", "data-urlencode", "json", "user", "timeout",
        "connect-timeout", "output", "user-agent", "referer", "cookie", "cookie-jar",
        "write-out", "cert", "proxy", "form", "upload-file", "retry", "retry-delay", "url",
        "oauth2-bearer", "stderr",
    }),
    refused={
        "user": _BASIC_AUTH,
        "netrc": _BASIC_AUTH,
        "cookie": "cookies have no equivalent",
        "cert": "client certificates have no equivalent",
        "proxy": "the HTTP caller uses no proxy",
        "form": "multipart form bodies have no equivalent: the HTTP caller sends JSON",
        "data-urlencode": "form-encoded bodies have no equivalent: the HTTP caller sends JSON",
        "upload-file": _FILE_BODY,
        "get": "-G moves the data into the query; write it in the URL",
    },
    ignored=frozenset({
        "silent", "show-error", "fail", "location", "verbose", "include", "ipv4", "ipv6",
        "progress-bar", "no-buffer", "compressed", "http-version", "connect-timeout",
        "cookie-jar", "write-out", "disable", "stderr", "retry-delay", "retry-all",
    }),
    equals_form=False,
)  # fmt: skip

_WGET = Program(
    name="wget",
    short={
        "q": "quiet", "O": "output", "o": "log", "a": "log", "T": "timeout", "t": "retry",
        "U": "user-agent", "S": "server-response", "v": "verbose", "4": "ipv4", "6": "ipv6",
    },
    long={
        "quiet": "quiet", "verbose": "verbose", "no-verbose": "verbose",
        "server-response": "server-response", "output-document": "output", "output-file": "log",
        "append-output": "log", "timeout": "timeout", "read-timeout": "timeout",
        "connect-timeout": "connect-timeout", "dns-timeout": "connect-timeout", "tries": "retry",
        "user-agent": "user-agent", "header": "header", "post-data": "data-raw",
        "body-data": "body-data", "post-file": "body-file", "body-file": "body-file",
        "method": "method", "no-check-certificate": "insecure", "spider": "head",
        "user": "user", "password": "user", "http-user": "user", "http-password": "user",
        "ask-password": "ask-password", "no-cache": "no-cache", "max-redirect": "max-redirect",
        "content-on-error": "content-on-error", "retry-connrefused": "retry-all",
        "waitretry": "retry-delay", "inet4-only": "ipv4", "inet6-only": "ipv6",
        "load-cookies": "cookie", "certificate": "cert",
    },
    takes_value=frozenset({
        "output", "log", "timeout", "connect-timeout", "retry", "user-agent", "header",
        "data-raw", "body-data", "body-file", "method", "user", "max-redirect", "retry-delay",
        "cookie", "cert",
    }),
    refused={
        "user": _BASIC_AUTH,
        "ask-password": _BASIC_AUTH,
        "body-file": _FILE_BODY,
        "cookie": "cookies have no equivalent",
        "cert": "client certificates have no equivalent",
    },
    ignored=frozenset({
        "quiet", "verbose", "server-response", "connect-timeout", "no-cache", "max-redirect",
        "content-on-error", "retry-all", "retry-delay", "ipv4", "ipv6",
    }),
    equals_form=True,
    words={"-nv": "verbose"},
)  # fmt: skip
PROGRAMS = {"curl": _CURL, "wget": _WGET}


@dataclass
class CurlCall:
    """One curl or wget call, as its options describe it (words still hold variable marks)."""

    program: str
    urls: list[str] = field(default_factory=list)
    method: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    json: bool = False
    bearer: str | None = None
    timeout: str | None = None
    caveats: list[str] = field(default_factory=list)


def read_call(program: Program, arguments: list[str]) -> CurlCall:
    call = CurlCall(program.name)
    for name, spelled, value in _options(program, arguments, call.urls):
        if name in program.refused:
            raise Untranslatable(f"{program.name} {spelled}: {program.refused[name]}")
        if name in program.ignored:
            continue
        _apply(call, name, spelled, value)
    return call


def _apply(call: CurlCall, name: str, spelled: str, value: str | None) -> None:
    """Apply one understood option (value is set exactly for the options that take one)."""
    text = value or ""
    match name:
        case "method":
            call.method = text.upper()
        case "header":
            header, colon, header_value = text.partition(":")
            if not colon or not header.strip():
                raise Untranslatable(f"its header {masked(header)!r} is not 'Name: value'")
            call.headers.append((header.strip(), header_value.strip()))
        case "data" | "json" if text.startswith("@"):
            raise Untranslatable(f"{call.program} {spelled}: {_FILE_BODY}")
        case "data" | "data-raw" | "json" | "body-data":
            call.data.append(text)
            call.json = call.json or name == "json"
            if name != "body-data" and call.method is None:
                call.method = "POST"  # as curl -d and wget --post-data do
        case "head":
            call.method = "HEAD"
        case "url":
            call.urls.append(text)
        case "user-agent":
            call.headers.append(("User-Agent", text))
        case "referer":
            call.headers.append(("Referer", text))
        case "oauth2-bearer":
            call.bearer = text
        case "timeout":
            call.timeout = text
        case "output" | "log" if text in ("-", "/dev/null"):
            pass
        case "output":
            call.caveats.append(
                f"its output went to {masked(text)} ({spelled}); cronfleet keeps a preview of the "
                "answer in its ledger instead"
            )
        case "log":
            call.caveats.append(
                f"{call.program} logged to {masked(text)} ({spelled}); cronfleet logs each run "
                "instead"
            )
        case "insecure":
            call.caveats.append(
                f"{spelled} turned off certificate checks; the HTTP caller always verifies them"
            )
        case "retry":
            call.caveats.append(
                f"{spelled} {text} is replaced by the task's Retry policy (3 attempts, a minute "
                "apart, by default)"
            )
        case _:  # every name in the option tables is refused, ignored or handled above
            raise AssertionError(f"unhandled {call.program} option {name}")


def _options(
    program: Program, arguments: list[str], positional: list[str]
) -> Iterator[tuple[str, str, str | None]]:
    """(canonical name, as spelled, value) per option; other words go to ``positional``."""
    queue = list(arguments)
    while queue:
        word = queue.pop(0)
        if word == "--":
            positional.extend(queue)
            return
        if word in program.words:
            yield program.words[word], word, None
        elif word.startswith("--"):
            spelled, equals, value = word[2:].partition("=")
            option = f"--{spelled}"
            name = program.long.get(spelled)
            # curl has no --name=value form: it would read an option called "name=value".
            if name is None or (equals and not program.equals_form):
                raise Untranslatable(f"{program.name} option {option} is not understood")
            if name in program.takes_value:
                yield name, option, value if equals else _value(program, option, queue)
            elif equals:
                raise Untranslatable(f"{program.name} option {option} takes no value")
            else:
                yield name, option, None
        elif word.startswith("-") and len(word) > 1:
            yield from _short_options(program, word, queue)
        else:
            positional.append(word)


def _short_options(
    program: Program, word: str, queue: list[str]
) -> Iterator[tuple[str, str, str | None]]:
    """-fsSL is -f -s -S -L; in -XPOST or -qO- the value follows its letter."""
    for position, letter in enumerate(word[1:], 1):
        name = program.short.get(letter)
        if name is None:
            raise Untranslatable(f"{program.name} option -{letter} is not understood")
        if name in program.takes_value:
            attached = word[position + 1 :]
            yield name, f"-{letter}", attached or _value(program, f"-{letter}", queue)
            return
        yield name, f"-{letter}", None


def _value(program: Program, spelled: str, queue: list[str]) -> str:
    if not queue:
        raise Untranslatable(f"{program.name} option {spelled} needs a value")
    return queue.pop(0)


def timeout_of(call: CurlCall) -> int | None:
    if call.timeout is None:
        return None
    try:
        seconds = math.ceil(float(call.timeout))
    except (ValueError, OverflowError):
        seconds = 0
    if 1 <= seconds <= MAX_HTTP_TIMEOUT_SECONDS:
        return seconds
    call.caveats.append(
        f"its timeout {masked(call.timeout)!r} is outside 1-{MAX_HTTP_TIMEOUT_SECONDS} s; "
        f"the default {DEFAULT_HTTP_TIMEOUT_SECONDS} s applies"
    )
    return None
