"""Keeping a secret out of every string a call records or logs, in any encoding of it.

A server may echo the token back, percent-encoded, as HTML entities or in base64; each form is
matched and masked before anything leaves the call.
"""

from __future__ import annotations

import base64
import bisect
import functools
import html
import html.entities
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

REDACTED = "***"


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
