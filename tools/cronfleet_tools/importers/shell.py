"""Shell words of a crontab command: expansions marked, operators and redirections refused.

Only a single curl or wget call is translated; anything else the shell would do is a caveat.
"""

from __future__ import annotations

import posixpath
import re
import shlex

from cronfleet_tools.importers.curl import PROGRAMS, Program
from cronfleet_tools.importers.display import masked
from cronfleet_tools.importers.model import Untranslatable

_USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]*\$?")

# --- Shell commands ----------------------------------------------------------------------------


_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*)")
_OPERATOR_CHARS = ";&|<>()"
_REDIRECTIONS = frozenset({">", ">>", ">|", "&>", "&>>", ">&", "<", "<<", "<<<", "<>", "<&"})
# Headers that have no place in a translated task, and why.
REFUSED_HEADERS = {
    "cookie": "a session cookie is a secret the HTTP caller cannot send",
    "proxy-authorization": "the HTTP caller uses no proxy",
    "host": "the host comes from the URL",
}


def _mark_expansions(command: str) -> str:
    """Mark each $NAME and ${NAME} the shell would expand as \\0NAME\\0.

    shlex splits words but does not expand them, and once it has removed the quotes a '$' from
    '...' (literal) looks like one from "..." (expanded); marking first keeps the difference.
    The same walk stops at an unquoted '#' that starts a word (a comment) and refuses
    substitutions, whose result cannot be known here.
    """
    out: list[str] = []
    quote: str | None = None
    index = 0
    while index < len(command):
        char = command[index]
        if quote == "'":
            quote = None if char == "'" else quote
        elif char == "\\" and index + 1 < len(command):
            escaped = command[index + 1]
            # In "...", shlex keeps the backslash of \$; the shell drops it.
            out.append(escaped if quote == '"' and escaped == "$" else char + escaped)
            index += 2
            continue
        elif char == "'" and quote is None:
            quote = "'"
        elif char == '"':
            quote = None if quote == '"' else '"'
        elif char == "`":
            raise Untranslatable("its command uses a command substitution (`...`)")
        elif char == "$":
            variable = _VARIABLE.match(command, index + 1)
            if variable:
                out.append(f"\x00{variable[1] or variable[2]}\x00")
                index = variable.end()
                continue
            following = command[index + 1 : index + 2]
            if following == "(":
                raise Untranslatable("its command uses a command substitution $(...)")
            if following == "{":
                raise Untranslatable("its command uses a parameter expansion ${...}")
            if following and (following.isdigit() or following in "@*#?$!-"):
                raise Untranslatable(f"its command uses the shell parameter ${following}")
        elif char == "#" and quote is None and (index == 0 or command[index - 1].isspace()):
            break
        out.append(char)
        index += 1
    return "".join(out)


def command_words(command: str) -> tuple[list[str], list[str]]:
    """The words of a single shell command, without its redirections; and the caveats."""
    marked = _mark_expansions(command)
    lexer = shlex.shlex(marked, posix=True, punctuation_chars=_OPERATOR_CHARS)
    lexer.whitespace_split = True
    lexer.commenters = ""  # handled above: shlex would also cut a '#' inside a word
    try:
        tokens = list(lexer)
    except ValueError as exc:  # "No closing quotation"
        raise Untranslatable(f"its command cannot be read: {exc}") from None
    caveats = []
    if len(tokens) >= 2 and tokens[-2] == "||" and tokens[-1] in ("true", ":"):
        tokens = tokens[:-2]
        caveats.append(
            "it ignored the command's failure (|| true); cronfleet records a failed call and alerts"
        )
    words: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if not all(char in _OPERATOR_CHARS for char in token):
            words.append(token)
            index += 1
            continue
        if token not in _REDIRECTIONS:
            raise Untranslatable(
                f"its command is a shell list or pipeline ({token}); only a single curl or wget "
                "command translates"
            )
        if index + 1 == len(tokens):
            raise Untranslatable(f"its command ends in a redirection ({token}) without a target")
        target = tokens[index + 1]
        # shlex splits `2>&1` into 2, >&, 1: a number written against the operator is the file
        # descriptor, not an argument of the command.
        if (
            words
            and words[-1].isdigit()
            and re.search(rf"(?<!\S){words[-1]}{re.escape(token)}", marked)
        ):
            words.pop()
        if target.isdigit() or target in ("-", "/dev/null"):
            pass  # 2>&1, >/dev/null: output joined or discarded, nothing is lost
        elif token.startswith("<"):
            raise Untranslatable(f"its command reads its input from {masked(target)}")
        else:
            caveats.append(
                f"its output went to {masked(target)}; cronfleet keeps each run's status and "
                "a preview of the answer in its ledger instead"
            )
        index += 2
    return words, caveats


def program_of(words: list[str]) -> tuple[Program, list[str]]:
    if not words:
        raise Untranslatable("it has no command")
    first = words[0]
    # /etc/crontab and /etc/cron.d lines name a user before the command; a URL call does not
    # depend on which user makes it.
    if len(words) > 1 and posixpath.basename(words[1]) in PROGRAMS and _USER_NAME.fullmatch(first):
        words = words[1:]
        first = words[0]
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", first, re.DOTALL):
        name = first.split("=", 1)[0]
        raise Untranslatable(f"its command sets {name} for itself; an Http task has no environment")
    program = PROGRAMS.get(posixpath.basename(first))
    if program is None:
        raise Untranslatable(
            f"it runs {masked(first)!r}, not curl or wget: only URL calls become Http tasks (run "
            "a script from a task function instead)"
        )
    return program, words[1:]
