"""Tokens carried in URLs: user info, query values and webhook paths that look secret.

Such a token cannot move to the task's secret (the endpoint reads it where it is), so a job
that carries one is refused with the token masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus, urlsplit

# --- Tokens carried in URLs ----------------------------------------------------------------------


@dataclass(frozen=True)
class _UrlToken:
    """A credential a URL carries: where, in words, and the values to keep out of any output."""

    kind: str  # "userinfo", "query", "webhook", "path"
    described: str  # after "its URL": "carries a credential in the query (t=...)"; no value
    values: tuple[str, ...]


# Query parameters that carry tokens under short names, besides those looks_secret knows.
_TOKEN_QUERY_NAMES = frozenset({"t", "k", "jwt", "hmac", "otp"})
# Services whose webhook URLs are their own credential: the path after the prefix is the token.
_WEBHOOK_URLS = (
    ("a Slack webhook", r"hooks\.slack\.com", r"/(?:services|workflows|triggers)/(?P<token>.+)"),
    (
        "a Discord webhook",
        r"(?:(?:ptb|canary)\.)?discord(?:app)?\.com",
        r"/api(?:/v\d+)?/webhooks/(?P<token>.+)",
    ),
    (
        "a Microsoft Teams webhook",
        r"[a-z0-9-]+\.webhook\.office\.com|outlook\.office(?:365)?\.com",
        r"/webhook(?:b2)?/(?P<token>.+)",
    ),
    ("a Zapier webhook", r"hooks\.zapier\.com", r"/hooks/catch/(?P<token>.+)"),
    (
        "an IFTTT webhook",
        r"maker\.ifttt\.com",
        r"/(?:trigger/[^/]+/(?:json/)?with/key|use)/(?P<token>.+)",
    ),
    ("a Telegram bot API URL", r"api\.telegram\.org", r"/(?:file/)?bot(?P<token>[^/]+).*"),
    ("a Healthchecks.io ping URL", r"hc-ping\.com|hchk\.io", r"/(?P<token>[^/]+).*"),
)
# A URL written anywhere in the input, for masking before anything is quoted.
URL_IN_TEXT = re.compile(r"(?i)\bhttps?://[^\s'\"<>`\\]+")
# A run of letters and digits that looks random rather than like a word or a date.
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")


def url_tokens(url: str) -> list[_UrlToken]:
    """Every credential ``url`` carries: user info, token-like query values, webhook paths."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        username, password = parts.username, parts.password
    except ValueError:
        return []
    tokens: list[_UrlToken] = []
    if username is not None or password is not None:
        # The password is the secret; a user name is one when it stands alone (a token used as
        # the name, https://<token>@host) or looks generated.
        hidden = [password] if password else []
        if username and (not password or looks_random(unquote(username))):
            hidden.append(username)
        hidden += [unquote(value) for value in hidden]
        tokens.append(_UrlToken("userinfo", "user:password@ credentials", tuple(hidden)))
    tokens += _query_tokens(parts.query, "query")
    tokens += _query_tokens(parts.fragment, "fragment")  # never sent, but copied all the same
    path = parts.path
    for service, hosts, paths in _WEBHOOK_URLS:
        webhook = re.fullmatch(paths, path) if re.fullmatch(hosts, host) else None
        if webhook:
            token = webhook["token"]
            pieces = [piece for piece in token.split("/") if len(piece) >= 4]
            described = f"is {service}, whose path is its credential"
            tokens.append(_UrlToken("webhook", described, (token, unquote(token), *pieces)))
            return tokens
    random = [segment for segment in path.split("/") if looks_random(unquote(segment))]
    if random:
        described = "carries what looks like a token in its path"
        unquoted = [unquote(segment) for segment in random]
        tokens.append(_UrlToken("path", described, (*random, *unquoted)))
    return tokens


def _query_tokens(query: str, part: str) -> list[_UrlToken]:
    tokens = []
    for pair in query.split("&") if query else []:
        name, equals, value = pair.partition("=")
        decoded_name, decoded = unquote_plus(name), unquote_plus(value)
        named = looks_secret(decoded_name) or decoded_name.lower() in _TOKEN_QUERY_NAMES
        if equals and value and (named or looks_random(decoded)):
            described = f"carries a credential in the {part} ({decoded_name}=...)"
            tokens.append(_UrlToken("query", described, (value, decoded)))
        elif not equals and looks_random(decoded_name):  # ?<token>, a bare key
            described = f"carries a token as its {part}"
            tokens.append(_UrlToken("query", described, (name, decoded_name)))
    return tokens


def looks_random(value: str) -> bool:
    """A value that reads like a generated token: a long run of mixed letters and digits.

    Words, slugs, dates and numbers do not ("reset-credits", "2024-01-01", "v2"); a UUID, a
    hex digest or a base64 key does. A false alarm leaves a job to be added by hand; a miss
    would print a token.
    """
    for run in _ALNUM_RUN.findall(value):
        letters = sum(char.isalpha() for char in run)
        digits = len(run) - letters
        if len(run) >= 32 or (len(run) >= 10 and letters >= 3 and digits >= 3):
            return True
    return False


_SECRET_WORDS = re.compile(
    r"secret|token|passw|pwd|api[-_]?key|signature|credential|auth(?!or)|cookie|session",
    re.IGNORECASE,
)
_SECRET_SUFFIX = re.compile(r"(?:^|[-_.])(?:key|sig|code)$", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    """A header, query parameter, body field or variable whose name suggests a credential."""
    return bool(_SECRET_WORDS.search(name) or _SECRET_SUFFIX.search(name))


def secret_fields(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if looks_secret(str(key)):
                yield str(key)
            yield from secret_fields(item)
    elif isinstance(value, list):
        for item in value:
            yield from secret_fields(item)


def random_values(value: object, name: str = "(body)") -> Iterator[tuple[str, str]]:
    """(field, value) for each string in a JSON body that looks like a generated token."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from random_values(item, str(key))
    elif isinstance(value, list):
        for item in value:
            yield from random_values(item, name)
    elif isinstance(value, str) and looks_random(value):
        yield name, value
