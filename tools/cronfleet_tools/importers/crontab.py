"""A crontab: assignments, timezones and the curl or wget call of each entry, line by line."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from cronfleet.schedule import ScheduleError, load_timezone, parse_schedule
from cronfleet_tools.importers.curl import CurlCall, read_call, timeout_of
from cronfleet_tools.importers.display import MARKED, masked, masked_url
from cronfleet_tools.importers.importer import (
    Draft,
    Importer,
    check_url,
    checked_base_url,
)
from cronfleet_tools.importers.model import (
    HTTP_METHODS,
    Assignment,
    ImportedTask,
    ImportInputError,
    ImportResult,
    SecretReference,
    Untranslatable,
)
from cronfleet_tools.importers.shell import REFUSED_HEADERS, command_words, program_of
from cronfleet_tools.importers.tokens import (
    looks_random,
    looks_secret,
    random_values,
    secret_fields,
)


def import_crontab(
    text: str,
    *,
    source: str = "crontab",
    base_url: str | None = None,
    timezone: str | None = None,
) -> ImportResult:
    """Translate the curl and wget lines of a crontab.

    ``timezone`` is the cron daemon's local time (UTC when not given), which the file does not
    say; ``CRON_TZ=`` and ``TZ=`` lines override it for the lines after them. ``base_url``
    stands in for a variable the crontab uses but does not set, at the start of a URL
    (``$API_URL/api/...``), as a docker-compose environment would supply it.
    """
    base = checked_base_url(base_url) if base_url is not None else None
    if timezone is not None:
        try:
            load_timezone(timezone)
        except ScheduleError as exc:
            raise ImportInputError(str(exc), option="--tz") from None
    importer = Importer(source)
    importer.scan(text)
    crontab = _Crontab(importer, base, timezone)
    for number, line in enumerate(text.splitlines(), 1):
        crontab.line(number, line)
    return importer.finish(crontab.assignments)


# --- Crontab -----------------------------------------------------------------------------------

# Vixie cron: `NAME = value`, the value optionally quoted. No entry starts with a letter.
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
# A 6th schedule-like field: seconds (Quartz, node-cron) or years (AWS).
_CRON_FIELD = re.compile(r"[0-9*?/,LW#-]*[0-9*?][0-9*?/,LW#-]*")

_TIMEZONE_VARIABLES = ("CRON_TZ", "TZ")


class _Crontab:
    """Reads a crontab line by line: assignments apply to the entries after them, as in cron."""

    def __init__(self, importer: Importer, base_url: str | None, timezone: str | None) -> None:
        self.importer = importer
        self.base_url = base_url
        # The variable --base-url stands in for: one, so that two URL variables are never merged.
        self.base_url_variable: str | None = None
        self.timezone = timezone or "UTC"
        # Neither --tz nor a CRON_TZ line said which timezone the cron daemon ran in.
        self.assumed_timezone = timezone is None
        self.bad_timezone_line: int | None = None
        self.environment: dict[str, Assignment] = {}
        self.assignments: list[tuple[str, Assignment]] = []

    def line(self, number: int, raw: str) -> None:
        line = raw.strip()
        if not line or line.startswith("#"):
            return
        where = f"{self.importer.source} line {number}"
        assignment = _ASSIGNMENT.match(line)
        if assignment:
            self.assign(number, where, assignment[1], _unquoted(assignment[2]))
            return
        try:
            draft = self.entry(number, where, line)
        except Untranslatable as exc:
            self.importer.refused(number, where, exc)
            return
        self.importer.drafts.append(draft)

    def assign(self, number: int, where: str, name: str, value: str) -> None:
        if looks_secret(name):
            self.importer.secret_values.add(value)
        if name in _TIMEZONE_VARIABLES:
            try:
                load_timezone(value)
            except ScheduleError as exc:
                self.bad_timezone_line = number
                self.importer.warn(number, where, f"not translated: {name}: {exc}")
                return
            self.timezone, self.bad_timezone_line, self.assumed_timezone = value, None, False
            return
        if name == "MAILTO":
            if value:
                self.importer.warn(
                    number,
                    where,
                    f"not translated: MAILTO={value} mailed each job's output; cronfleet sends "
                    "alerts to the stack's SNS topic instead (the AlertEmail parameter)",
                )
            return  # MAILTO="" turned mail off: nothing is lost
        self.environment[name] = Assignment(number, value)
        self.assignments.append((name, self.environment[name]))

    def entry(self, number: int, where: str, line: str) -> Draft:
        schedule, command = _split_entry(line)
        if self.bad_timezone_line is not None:
            raise Untranslatable(f"the timezone set on line {self.bad_timezone_line} is not valid")
        try:
            parse_schedule(schedule, self.timezone)
        except ScheduleError as exc:
            raise Untranslatable(f"its schedule {masked(schedule)!r} is not valid: {exc}") from None
        if re.search(r"(?<!\\)%", command):
            raise Untranslatable(
                "its command has an unescaped %: cron ends the command there and feeds the rest "
                "to its input; write \\% where a % belongs to the URL"
            )
        words, caveats = command_words(command.replace("\\%", "%"))
        program, arguments = program_of(words)
        call = read_call(program, arguments)
        uses: set[int] = set()
        task = self.translate(call, where, schedule, uses)
        return Draft(number, task, caveats + call.caveats, frozenset(uses), self.assumed_timezone)

    def translate(self, call: CurlCall, where: str, schedule: str, uses: set[int]) -> ImportedTask:
        if not call.urls:
            raise Untranslatable(f"{call.program} is given no URL")
        if len(call.urls) > 1:
            raise Untranslatable(f"{call.program} calls {len(call.urls)} URLs; a task calls one")
        url = self.url(call.urls[0], uses)
        secret, headers = self.headers(call, where, uses)
        body = self.body(call, uses)
        method = call.method or ("POST" if call.data else "GET")
        if method not in HTTP_METHODS:
            raise Untranslatable(
                f"its method {masked(method)} is not one of {', '.join(HTTP_METHODS)}"
            )
        if call.json and not any(name.lower() == "accept" for name in headers):
            headers["Accept"] = "application/json"  # curl --json sends it
        timeout = timeout_of(call)
        return ImportedTask(
            "", where, schedule, self.timezone, url, method, headers, body, secret, timeout
        )

    def expand(self, word: str, uses: set[int]) -> str:
        """Substitute the crontab's variables, as the shell would; an unset one is refused."""

        def value(match: re.Match[str]) -> str:
            assignment = self.environment.get(match[1])
            if assignment is None:
                raise Untranslatable(f"it uses ${match[1]}, which the crontab does not set")
            uses.add(assignment.line)
            return assignment.value

        return MARKED.sub(value, word)

    def url(self, word: str, uses: set[int]) -> str:
        leading = MARKED.match(word)
        if leading and leading[1] not in self.environment:
            name = leading[1]
            if self.base_url is None:
                raise Untranslatable(
                    f"its URL starts with ${name}, which the crontab does not set: pass "
                    f"--base-url https://... to stand in for ${name}"
                )
            if self.base_url_variable not in (None, name):
                raise Untranslatable(
                    f"its URL starts with ${name}, but --base-url already stands in for "
                    f"${self.base_url_variable}; set {name}=https://... in the crontab"
                )
            self.base_url_variable = name
            word = self.base_url + word[leading.end() :]
        for variable in MARKED.findall(word):
            if looks_secret(variable):
                raise Untranslatable(
                    f"its URL carries ${variable}, which would sit in the template; the HTTP "
                    "caller sends a secret only as Authorization: Bearer"
                )
        url = self.expand(word, uses)
        if not urlsplit(url).scheme:
            raise Untranslatable(
                f"its URL {masked_url(url)} has no scheme (curl would use http://)"
            )
        check_url(url)
        return url

    def headers(
        self, call: CurlCall, where: str, uses: set[int]
    ) -> tuple[SecretReference | None, dict[str, str]]:
        """Plain headers are kept; the one secret moves to a parameter the task reads."""
        secret: SecretReference | None = None
        secret_from = ""
        headers: dict[str, str] = {}

        def take(token: str, carrier: str) -> SecretReference:
            nonlocal secret, secret_from
            found = self.secret(token, where, uses)
            if secret is not None and found != secret:
                raise Untranslatable(
                    f"it sends two secrets ({secret_from} and {carrier}); an Http task sends one, "
                    "as Authorization: Bearer"
                )
            secret, secret_from = found, carrier
            return found

        for name, value in call.headers:
            lowered = name.lower()
            if lowered in REFUSED_HEADERS:
                raise Untranslatable(f"it sends a {name} header: {REFUSED_HEADERS[lowered]}")
            if lowered == "authorization":
                bearer = re.fullmatch(r"(?i)bearer\s+(\S.*)", value.strip())
                if bearer is None:
                    self.importer.secret_values.add(value.strip())
                    # Name the scheme (Basic, Token...), never a bare token written without one.
                    scheme = re.fullmatch(r"([A-Za-z][A-Za-z0-9-]{0,19})\s+\S.*", value.strip())
                    sent = f"Authorization: {scheme[1]} ..." if scheme else "an Authorization value"
                    raise Untranslatable(
                        f"it sends {sent} that is not a Bearer token; the HTTP caller sends a "
                        "secret only as Authorization: Bearer"
                    )
                take(bearer[1].strip(), "Authorization")
            elif looks_secret(name) or any(looks_secret(v) for v in MARKED.findall(value)):
                reference = take(value.strip(), name)
                call.caveats.append(
                    f"its {name} header looks secret: the value moves to "
                    f"{reference.parameter_name}, which the HTTP caller sends as "
                    f"Authorization: Bearer, not as {name}; make sure the endpoint accepts that"
                )
            else:
                expanded = self.expand(value, uses)
                if looks_random(expanded):
                    # A token under a name that does not say so: moving it to Bearer would be
                    # a guess, and copying it would print it.
                    raise Untranslatable(
                        f"its {name} header's value looks like a token, which would sit in the "
                        "template; the HTTP caller sends a secret only as Authorization: Bearer",
                        secrets=(expanded,),
                    )
                headers[name] = expanded
        if call.bearer is not None:
            take(call.bearer, "--oauth2-bearer")
        return secret, headers

    def secret(self, token: str, where: str, uses: set[int]) -> SecretReference:
        variable = MARKED.fullmatch(token)
        if variable:
            name = variable[1]
            assignment = self.environment.get(name)
            if assignment is None:
                return self.importer.secrets.for_variable(name)
            # The crontab holds the token in clear; it goes to the parameter, not the template.
            uses.add(assignment.line)
            self.importer.secret_values.add(assignment.value)
            return self.importer.secrets.for_variable(
                name, f"the value of {name} (line {assignment.line})"
            )
        # A literal token, or one built from variables: keyed by what it expands to, or by its
        # spelling while some variable in it is unset.
        unset = [name for name in MARKED.findall(token) if name not in self.environment]
        literal = token if unset else self.expand(token, uses)
        self.importer.secret_values.add(literal)
        return self.importer.secrets.for_literal(literal, where)

    def body(self, call: CurlCall, uses: set[int]) -> str | None:
        if not call.data:
            return None
        # curl joins several -d with '&' (form fields); --json pieces are concatenated.
        text = ("" if call.json else "&").join(call.data)
        for variable in MARKED.findall(text):
            if looks_secret(variable):
                raise Untranslatable(
                    f"its body carries ${variable}, which would sit in the template"
                )
        text = self.expand(text, uses)
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            raise Untranslatable(
                "its body is not JSON (form data?); the HTTP caller sends JSON bodies only"
            ) from None
        fields = sorted(set(secret_fields(body)))
        if fields:
            raise Untranslatable(
                f"its body has fields that look secret ({', '.join(fields)}), which would sit "
                "in the template"
            )
        random = dict(random_values(body))
        if random:
            raise Untranslatable(
                f"its body has values that look like tokens ({', '.join(sorted(random))}), "
                "which would sit in the template",
                secrets=tuple(random.values()),
            )
        return json.dumps(body, ensure_ascii=False)


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _split_entry(line: str) -> tuple[str, str]:
    """The schedule (5 fields or a @nickname) and the command of a crontab entry."""
    if line.startswith("@"):
        nickname, *rest = line.split(None, 1)
        command = rest[0] if rest else ""
        if nickname.lower() == "@reboot":
            raise Untranslatable("@reboot runs when the machine starts; no schedule matches that")
        if not command.strip():
            raise Untranslatable(f"{nickname} has no command")
        return nickname, command
    parts = line.split(None, 5)
    if len(parts) < 6:
        raise Untranslatable("is not a crontab entry: expected 5 schedule fields and a command")
    schedule, command = " ".join(parts[:5]), parts[5]
    sixth = command.split(None, 1)[0]
    if _CRON_FIELD.fullmatch(sixth):
        raise Untranslatable(
            f"its schedule has 6 or more fields ('{masked(schedule)} {sixth} ...'); a crontab "
            "has 5 (minute hour day-of-month month day-of-week): seconds and years have no place"
        )
    return schedule, command
