"""How a caveat quotes what the input held: variables as ``$NAME``, tokens masked.

A token never reaches the output, nor a caveat.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from cronfleet_tools.importers.tokens import URL_IN_TEXT, url_tokens


def masked_url(url: str) -> str:
    """A URL as a warning may quote it: no query, fragment or user info, tokens masked."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unreadable)"
    if not parts.scheme:
        shown = repr(url.split("?", 1)[0].split("#", 1)[0].split("@")[-1])
    else:
        shown = f"{parts.scheme}://{host}{port}{parts.path}"
    for value in sorted(
        {value for token in url_tokens(url) for value in token.values}, key=len, reverse=True
    ):
        shown = shown.replace(value, "***")
    return shown


# A variable the shell would expand, kept through shlex as \0NAME\0 (see _mark_expansions).
MARKED = re.compile("\x00([A-Za-z_][A-Za-z0-9_]*)\x00")


# An Authorization value in a word a warning quotes (a schedule that swallowed part of a command).
_SCHEME_TOKEN = re.compile(r"(?i)\b(bearer|basic|digest)\s+[^\s\"',;]+")


def masked(word: str) -> str:
    """A word as a warning quotes it: variables as $NAME, Authorization values and URLs' tokens
    hidden."""
    word = URL_IN_TEXT.sub(lambda url: masked_url(url.group()), word)
    return _SCHEME_TOKEN.sub(r"\1 ***", MARKED.sub(r"$\1", word))
