"""Importing existing cron jobs: a ``vercel.json`` ``crons`` array, or a crontab of URL calls.

``cronfleet import FILE`` turns each job into a ``Custom::ScheduledTask`` with an ``Http``
target, printed as YAML to paste under ``Resources:`` in template.yaml. It translates only what
it can carry over faithfully. Everything else (a local script, @reboot, a plain-HTTP or private
URL, basic auth, a form body, an environment variable no task uses...) becomes a warning that
names the line or entry and the reason, and is left out of the output: nothing is dropped
silently, and nothing is guessed.

Secrets
    A token never reaches the output, nor a warning. A token the job sent in a header moves to
    the task's secret; one it sent in the URL (user info, a query value, a webhook path) cannot
    move, as the endpoint reads it there, so the job is refused with the token masked (see
    :func:`_check_url`). Every URL in the input is read for tokens before anything is quoted,
    and no task may carry a value the file uses as a token. Each task names, in ``SecretArn``,
    an SSM SecureString parameter under ``/cronfleet/`` (the only parameters
    ``HttpTaskFunction`` may read), written with ``!Sub`` so the template stays free of account
    ids and regions. SSM
    rather than Secrets Manager because a parameter's ARN is exact: a secret's ARN ends in a
    random suffix that exists only once the secret does, and the partial ARN is ambiguous for a
    name such as ``cron-secret``, whose last six letters look like that suffix.

Validation
    Every resource is rendered, then checked as text by :func:`validate_template`, the checks
    ``cronfleet validate`` and a deploy apply. A task that would fail them is reported and left
    out, so a paste can only fail for reasons outside the output (a logical id the template
    already uses).
"""

from __future__ import annotations

import json
import math
import posixpath
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import get_args
from urllib.parse import unquote, unquote_plus, urlsplit

from cronfleet.lifecycle.states import LAMBDA_MAX_TIMEOUT_SECONDS
from cronfleet.registry.definition import HttpMethod, HttpTarget
from cronfleet.registry.url_safety import url_refusal
from cronfleet.schedule import ScheduleError, load_timezone, parse_schedule
from cronfleet_tools.template import (
    PLACEHOLDER_ACCOUNT_ID,
    PLACEHOLDER_REGION,
    parse_template,
    validate_template,
)

__all__ = [
    "ImportInputError",
    "ImportResult",
    "ImportWarning",
    "ImportedTask",
    "SecretReference",
    "import_crontab",
    "import_file",
    "import_vercel",
    "render_resources",
    "report_lines",
]

# HttpTaskFunction's IAM policy reads parameter/cronfleet/* and secret:cronfleet/* only.
SECRET_PREFIX = "cronfleet/"
# Vercel sends `Authorization: Bearer $CRON_SECRET` with every cron request.
VERCEL_SECRET_VARIABLE = "CRON_SECRET"
# The CloudFormation wait for the registry's answer, as on the template's own tasks.
SERVICE_TIMEOUT_SECONDS = 60
DEFAULT_HTTP_TIMEOUT_SECONDS: int = HttpTarget.model_fields["timeout_seconds"].default
MAX_HTTP_TIMEOUT_SECONDS = LAMBDA_MAX_TIMEOUT_SECONDS
HTTP_METHODS: tuple[str, ...] = get_args(HttpMethod)
# Task ids default to the logical id and may be 64 characters long; 60 leave room for "Task".
_MAX_ID_STEM = 60


class ImportInputError(ValueError):
    """The input cannot be imported at all (exit 2): not JSON, no crons array, a bad option."""

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class SecretReference:
    """An SSM SecureString parameter under /cronfleet/ that holds a token the old job sent."""

    name: str  # "cron-secret" is the parameter /cronfleet/cron-secret
    holds: str  # what to store in it, in words; never the token itself

    @property
    def parameter_name(self) -> str:
        return f"/{SECRET_PREFIX}{self.name}"

    @property
    def arn_template(self) -> str:
        """The ARN as a !Sub string: resolved per account and region at deploy time."""
        return (
            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:"
            f"parameter/{SECRET_PREFIX}{self.name}"
        )

    @property
    def arn_offline(self) -> str:
        """What `cronfleet validate` resolves :attr:`arn_template` to."""
        return (
            f"arn:aws:ssm:{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT_ID}:"
            f"parameter/{SECRET_PREFIX}{self.name}"
        )


@dataclass(frozen=True)
class ImportedTask:
    """One job, translated: the properties of its Custom::ScheduledTask resource."""

    logical_id: str
    source: str  # "crontab line 4", "vercel.json crons[2]"
    schedule: str
    timezone: str
    url: str
    method: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None  # JSON text
    secret: SecretReference | None = None
    timeout_seconds: int | None = None


@dataclass(frozen=True)
class ImportWarning:
    """Something not translated, or translated with a change the user must know about."""

    position: int  # line number or entry index, for ordering
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class ImportResult:
    source: str
    tasks: list[ImportedTask]
    warnings: list[ImportWarning]
    notes: list[str]

    @property
    def ok(self) -> bool:
        """True when every job was translated as it was."""
        return not self.warnings


class _Untranslatable(Exception):
    """A line or entry that cannot be carried over; the message says why.

    ``secrets`` are values the line carries that no output may quote (a URL's token), for the
    importer to mask wherever else they appear.
    """

    def __init__(self, message: str, *, secrets: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.secrets = tuple(secrets)


# --- Entry points ------------------------------------------------------------------------------


def import_file(
    path: Path, *, base_url: str | None = None, timezone: str | None = None
) -> ImportResult:
    """Read a vercel.json (a JSON object) or a crontab (anything else) and translate its jobs."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportInputError(f"is not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise ImportInputError("is empty: expected a vercel.json or a crontab")
    # A crontab line never starts with '{' or '['; a vercel.json always does. Deciding by that
    # (not by parsing) means a broken vercel.json is reported as broken JSON, with its position.
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("{", "["):
        if timezone is not None:
            raise ImportInputError(
                "Vercel cron schedules are always in UTC; --tz applies to crontabs only",
                option="--tz",
            )
        return import_vercel(text, source=path.name, base_url=base_url)
    return import_crontab(text, source=path.name, base_url=base_url, timezone=timezone)


def import_vercel(text: str, *, source: str = "vercel.json", base_url: str | None) -> ImportResult:
    """Translate the ``crons`` array of a vercel.json; paths are joined to ``base_url``."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportInputError(
            f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    if not isinstance(document, dict):
        raise ImportInputError("must be a JSON object with a crons array, as vercel.json is")
    if "crons" not in document:
        raise ImportInputError("has no crons array: there is nothing to import")
    crons = document["crons"]
    if not isinstance(crons, list):
        raise ImportInputError(f"crons must be an array, got {_json_kind(crons)}")
    if base_url is None:
        raise ImportInputError(
            "Vercel cron paths are relative to the deployment; pass the URL they are served "
            "from, such as --base-url https://your-app.vercel.app",
            option="--base-url",
        )
    base = _checked_base_url(base_url)
    importer = _Importer(source)
    secret = importer.secrets.for_variable(VERCEL_SECRET_VARIABLE)
    for index, entry in enumerate(crons):
        importer.vercel_entry(index, entry, base, secret)
    return importer.finish()


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
    base = _checked_base_url(base_url) if base_url is not None else None
    if timezone is not None:
        try:
            load_timezone(timezone)
        except ScheduleError as exc:
            raise ImportInputError(str(exc), option="--tz") from None
    importer = _Importer(source)
    importer.scan(text)
    crontab = _Crontab(importer, base, timezone)
    for number, line in enumerate(text.splitlines(), 1):
        crontab.line(number, line)
    return importer.finish(crontab.assignments)


def _checked_base_url(base_url: str) -> str:
    try:
        _check_url(base_url)
    except _Untranslatable as exc:
        # The opt-ins the registry suggests are not the import's to set: the URL must change.
        raise ImportInputError(str(exc).split("; set ")[0], option="--base-url") from None
    parts = urlsplit(base_url)
    if parts.query or parts.fragment:
        raise ImportInputError(
            f"{_shown_url(base_url)} must not have a query or fragment: paths are appended to it",
            option="--base-url",
        )
    return base_url.rstrip("/")


def _json_kind(value: object) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return kinds.get(type(value), "a number")


# --- Common to both formats --------------------------------------------------------------------


@dataclass
class _Draft:
    """A translated job before its logical id is known and its resource validated."""

    position: int
    task: ImportedTask
    caveats: list[str] = field(default_factory=list)
    # The crontab assignments (by line number) whose values the task carries.
    uses: frozenset[int] = frozenset()
    # Its timezone is the assumed local time of the cron daemon, not one the file set.
    default_timezone: bool = False


class _Secrets:
    """One parameter per distinct token: named after its variable, or numbered if literal."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], SecretReference] = {}
        self._literals = 0

    def for_variable(self, variable: str, holds: str | None = None) -> SecretReference:
        stem = re.sub(r"[^a-z0-9]+", "-", variable.lower()).strip("-") or "token"
        return self._get(("variable", variable), stem, holds or f"the value of ${variable}")

    def for_literal(self, token: str, where: str) -> SecretReference:
        key = ("literal", token)
        if key not in self._by_key:
            self._literals += 1
        return self._get(key, f"bearer-token-{self._literals}", f"the token written on {where}")

    def _get(self, key: tuple[str, str], stem: str, holds: str) -> SecretReference:
        if key not in self._by_key:
            taken = {secret.name for secret in self._by_key.values()}
            name, number = stem, 2
            while name in taken:
                name, number = f"{stem}-{number}", number + 1
            self._by_key[key] = SecretReference(name, holds)
        return self._by_key[key]


class _Importer:
    """Collects drafts and warnings, then assigns logical ids and validates the resources."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.secrets = _Secrets()
        self.drafts: list[_Draft] = []
        self.warnings: list[ImportWarning] = []
        # Every token and secret value seen, so that no warning can echo one.
        self.secret_values: set[str] = set()

    def warn(self, position: int, where: str, reason: str) -> None:
        self.warnings.append(ImportWarning(position, where, reason))

    def scan(self, text: str) -> None:
        """Collect the tokens of every URL written anywhere in ``text``, before any is quoted.

        A warning about one line may quote a word from it (a schedule that swallowed a URL, a
        program name that is a URL); whatever the reason, the token in it is masked.
        """
        for url in _URL_IN_TEXT.findall(text):
            for token in _url_tokens(url):
                self.secret_values.update(token.values)

    def refused(self, position: int, where: str, exc: _Untranslatable) -> None:
        self.secret_values.update(exc.secrets)
        self.warn(position, where, f"not translated: {exc}")

    def vercel_entry(
        self, index: int, entry: object, base_url: str, secret: SecretReference
    ) -> None:
        where = f"{self.source} crons[{index}]"
        if not isinstance(entry, dict):
            got = _json_kind(entry)
            self.warn(index, where, f"not translated: must be an object, got {got}")
            return
        path, schedule = entry.get("path"), entry.get("schedule")
        if isinstance(path, str) and path:
            self.scan(f"{base_url}/{path.lstrip('/')}")
            # A query or fragment may carry a token; a token in the path is masked at the end.
            where += f" ({re.split('[?#]', path, maxsplit=1)[0]})"
        problems = []
        if not isinstance(path, str) or not path:
            problems.append("it has no path")
        elif not path.startswith("/"):
            problems.append(
                f"its path must start with '/', got {re.split('[?#]', path, maxsplit=1)[0]!r}"
            )
        schedule_text = schedule.strip() if isinstance(schedule, str) else ""
        if not schedule_text:
            problems.append("it has no schedule")
        else:
            try:
                parse_schedule(schedule_text, "UTC")
            except ScheduleError as exc:
                problems.append(f"its schedule {_shown(schedule_text)!r} is not valid: {exc}")
        url = base_url + path if isinstance(path, str) and path.startswith("/") else ""
        if url:
            try:
                _check_url(url)
            except _Untranslatable as exc:
                self.secret_values.update(exc.secrets)
                problems.append(str(exc))
        if problems:
            self.warn(index, where, "not translated: " + "; ".join(problems))
            return
        others = sorted(str(key) for key in entry if key not in ("path", "schedule"))
        caveats = [f"its keys {', '.join(others)} have no equivalent"] if others else []
        # Vercel runs cron jobs in UTC, with a GET and `Authorization: Bearer $CRON_SECRET`.
        task = ImportedTask("", where, schedule_text, "UTC", url, "GET", secret=secret)
        self.drafts.append(_Draft(index, task, caveats))

    def finish(self, assignments: Sequence[tuple[str, _Assignment]] = ()) -> ImportResult:
        # The last gate before stdout: no task may carry a value the file uses as a credential
        # anywhere (a header copied as it was, a path that repeats another line's token).
        carried = []
        for draft in self.drafts:
            if self.quotes_a_secret(draft.task):
                self.warn(
                    draft.position,
                    draft.task.source,
                    "not translated: it carries a value this file uses as a credential "
                    "elsewhere, which would sit in the template",
                )
            else:
                carried.append(draft)
        drafts = _with_logical_ids(carried)
        problems = _validation_problems([draft.task for draft in drafts])
        kept: list[_Draft] = []
        for draft in drafts:
            task = draft.task
            if task.logical_id in problems:
                reasons = "; ".join(problems[task.logical_id])
                self.warn(draft.position, task.source, f"not translated: invalid task: {reasons}")
                continue
            kept.append(draft)
            for caveat in draft.caveats:
                self.warn(
                    draft.position, task.source, f"imported as {task.logical_id}, but {caveat}"
                )
        # A crontab assignment whose value an emitted task carries is translated; any other
        # would be lost, since an Http task has no environment.
        used = {line for draft in kept for line in draft.uses}
        for name, assignment in assignments:
            if assignment.line not in used:
                self.warn(
                    assignment.line,
                    f"{self.source} line {assignment.line}",
                    f"not translated: {name} is set here, but no imported task uses it (an Http "
                    "task has no environment)",
                )
        warnings = [
            replace(warning, where=self.redact(warning.where), reason=self.redact(warning.reason))
            for warning in sorted(self.warnings, key=lambda warning: warning.position)
        ]
        tasks = [draft.task for draft in kept]
        defaulted = any(draft.default_timezone for draft in kept)
        notes = [self.redact(note) for note in _notes(tasks, defaulted)]
        return ImportResult(self.source, tasks, warnings, notes)

    def quotes_a_secret(self, task: ImportedTask) -> bool:
        carried = [task.url, task.body or "", *task.headers, *task.headers.values()]
        return any(self.redact(text) != text for text in carried)

    def redact(self, text: str) -> str:
        """Replace every token seen anywhere in the input, in case a warning quotes one."""
        # Very short values would blank out ordinary words; no real token is that short.
        for value in sorted(self.secret_values, key=len, reverse=True):
            if len(value) >= 4:
                text = text.replace(value, "***")
        return text


def _notes(tasks: Sequence[ImportedTask], defaulted_timezone: bool) -> list[str]:
    """What the user must do before deploying, and which defaults now apply."""
    notes = []
    secrets = list(dict.fromkeys(task.secret for task in tasks if task.secret))
    if secrets:
        notes.append(
            "before deploying, store each token in an SSM SecureString parameter under "
            "/cronfleet/ (the only ones the HTTP caller may read):"
        )
        for secret in secrets:
            users = [task.logical_id for task in tasks if task.secret == secret]
            notes.append(
                f"  aws ssm put-parameter --type SecureString --name {secret.parameter_name} "
                f"--value '<{secret.holds}>'   # used by {_listed(users)}"
            )
    if defaulted_timezone:
        notes.append(
            "schedules without CRON_TZ are read in UTC; a crontab runs in its machine's local "
            "time, which the file does not say: pass --tz <zone> if that was not UTC"
        )
    if any(task.timeout_seconds is None for task in tasks):
        notes.append(
            f"each call may take {DEFAULT_HTTP_TIMEOUT_SECONDS} s (Http.TimeoutSeconds): raise it "
            f"for jobs that run longer (at most {MAX_HTTP_TIMEOUT_SECONDS})"
        )
    if tasks:
        notes.append(
            "a call that fails with a 5xx or a timeout is retried (Retry: 3 attempts by default, "
            "a minute or more apart), which the old scheduler did not do: set "
            "Retry: {MaxAttempts: 1} on a job that must not repeat"
        )
    return notes


def _listed(names: Sequence[str]) -> str:
    return (
        ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:3])} and {len(names) - 3} more"
    )


def _check_url(url: str) -> None:
    """Refuse what the registry would refuse, and URLs that carry a credential in the open.

    An Http task sends its one secret as ``Authorization: Bearer``; a token that the old job
    sent inside the URL cannot move there (the endpoint reads it where it was), and left in the
    URL it would sit in the template, in the registry and in every log line. So such a job is
    refused, named by its line, with the token masked.
    """
    tokens = _url_tokens(url)
    userinfo = [token for token in tokens if token.kind == "userinfo"]
    if userinfo:
        raise _Untranslatable(
            f"its URL {_shown_url(url)} carries user:password@ credentials (basic "
            "authentication), which would sit in the template; the HTTP caller sends a secret "
            "only as Authorization: Bearer",
            secrets=userinfo[0].values,
        )
    # The host first: "must use https://" would hide that the metadata service is never allowed.
    refusal = url_refusal(
        url, allow_insecure_http=True, allow_private_network=False
    ) or url_refusal(url, allow_insecure_http=False, allow_private_network=False)
    if refusal:
        raise _Untranslatable(
            f"its URL {_shown_url(url)} {refusal}",
            secrets=tuple(value for token in tokens for value in token.values),
        )
    if tokens:
        token = tokens[0]
        said = f"its URL {token.described}"
        if token.kind != "query":  # the query is never shown; a path is, masked
            said += f" ({_shown_url(url)})"
        advice = "" if token.kind == "query" else " (a task function can read it from SSM)"
        raise _Untranslatable(
            f"{said}, which would sit in the template; the HTTP caller sends a secret only as "
            f"Authorization: Bearer{advice}",
            secrets=tuple(value for token in tokens for value in token.values),
        )


def _shown_url(url: str) -> str:
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
        {value for token in _url_tokens(url) for value in token.values}, key=len, reverse=True
    ):
        shown = shown.replace(value, "***")
    return shown


# --- Tokens carried in URLs ----------------------------------------------------------------------


@dataclass(frozen=True)
class _UrlToken:
    """A credential a URL carries: where, in words, and the values to keep out of any output."""

    kind: str  # "userinfo", "query", "webhook", "path"
    described: str  # after "its URL": "carries a credential in the query (t=...)"; no value
    values: tuple[str, ...]


# Query parameters that carry tokens under short names, besides those _looks_secret knows.
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
_URL_IN_TEXT = re.compile(r"(?i)\bhttps?://[^\s'\"<>`\\]+")
# A run of letters and digits that looks random rather than like a word or a date.
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")


def _url_tokens(url: str) -> list[_UrlToken]:
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
        if username and (not password or _looks_random(unquote(username))):
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
    random = [segment for segment in path.split("/") if _looks_random(unquote(segment))]
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
        named = _looks_secret(decoded_name) or decoded_name.lower() in _TOKEN_QUERY_NAMES
        if equals and value and (named or _looks_random(decoded)):
            described = f"carries a credential in the {part} ({decoded_name}=...)"
            tokens.append(_UrlToken("query", described, (value, decoded)))
        elif not equals and _looks_random(decoded_name):  # ?<token>, a bare key
            described = f"carries a token as its {part}"
            tokens.append(_UrlToken("query", described, (name, decoded_name)))
    return tokens


def _looks_random(value: str) -> bool:
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
    r"secret|token|passw|pwd|api[-_]?key|signature|credential|auth(?!or)|cookie|session", re.I
)
_SECRET_SUFFIX = re.compile(r"(?:^|[-_.])(?:key|sig|code)$", re.I)


def _looks_secret(name: str) -> bool:
    """A header, query parameter, body field or variable whose name suggests a credential."""
    return bool(_SECRET_WORDS.search(name) or _SECRET_SUFFIX.search(name))


def _secret_fields(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if _looks_secret(str(key)):
                yield str(key)
            yield from _secret_fields(item)
    elif isinstance(value, list):
        for item in value:
            yield from _secret_fields(item)


def _random_values(value: object, name: str = "(body)") -> Iterator[tuple[str, str]]:
    """(field, value) for each string in a JSON body that looks like a generated token."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _random_values(item, str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _random_values(item, name)
    elif isinstance(value, str) and _looks_random(value):
        yield name, value


# --- Logical ids -------------------------------------------------------------------------------


def _with_logical_ids(drafts: Sequence[_Draft]) -> list[_Draft]:
    """PascalCase ids from the URL paths, without the prefix they all share, unique, + "Task".

    `/api/v1/workers/reset-credits` next to `/api/v1/workers/cleanup` gives ResetCreditsTask
    and CleanupTask. The id is also the task id (no Name is emitted), so ids are unique
    ignoring case, as task ids must be, and short enough for one (64 characters).
    """
    paths = [
        [part for part in urlsplit(d.task.url).path.split("/") if _words(part)] for d in drafts
    ]
    shared = 0
    while (
        paths and all(len(path) > shared for path in paths) and len({p[shared] for p in paths}) == 1
    ):
        shared += 1
    taken: set[str] = set()
    named = []
    for draft, path in zip(drafts, paths, strict=True):
        words = [word for part in (path[shared:] or path[-1:]) for word in _words(part)]
        if not words:  # the site's root: name it after the host
            words = [w for w in _words(urlsplit(draft.task.url).hostname or "") if w != "www"]
        stem = "".join(word[0].upper() + word[1:] for word in words).removesuffix("Task") or "Http"
        if stem[0].isdigit():
            stem = "Http" + stem
        stem = stem[:_MAX_ID_STEM]
        logical_id, number = f"{stem}Task", 2
        while logical_id.lower() in taken:
            logical_id, number = f"{stem}{number}Task", number + 1
        taken.add(logical_id.lower())
        named.append(replace(draft, task=replace(draft.task, logical_id=logical_id)))
    return named


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]+", text)


# --- Rendering and validation ------------------------------------------------------------------


def render_resources(result: ImportResult) -> str:
    """The tasks as YAML for the Resources section of template.yaml (2-space indented)."""
    if not result.tasks:
        return f"# cronfleet import {result.source}: no job could be translated (see stderr).\n"
    lines = [
        f"# cronfleet import {result.source}: {len(result.tasks)} Custom::ScheduledTask "
        "resource(s) to paste under",
        "# Resources: in template.yaml. Tokens are not copied: each SecretArn names an SSM "
        "parameter",
        "# under /cronfleet/ that must hold the token (see the notes on stderr).",
    ]
    for task in result.tasks:
        lines += ["", *_resource_lines(task)]
    return "\n".join(lines) + "\n"


def _resource_lines(task: ImportedTask) -> list[str]:
    lines = [
        f"  {task.logical_id}:",
        "    Type: Custom::ScheduledTask",
        "    DependsOn: RegistryFunctionLogGroup",
        "    Properties:",
        "      ServiceToken: !GetAtt RegistryFunction.Arn",
        f"      ServiceTimeout: {SERVICE_TIMEOUT_SECONDS}",
        f"      Description: {_scalar(_description(task))}",
        f"      Schedule: {json.dumps(task.schedule)}",  # quoted, as template.yaml writes them
        f"      Timezone: {_scalar(task.timezone)}",
        "      Http:",
        f"        Url: {_scalar(task.url)}",
        f"        Method: {task.method}",
    ]
    if task.headers:
        lines.append("        Headers:")
        lines += [
            f"          {_scalar(name)}: {_scalar(value)}" for name, value in task.headers.items()
        ]
    if task.body is not None:
        # A JSON string keeps the body's types through CloudFormation, as Payload does.
        lines.append(f"        Body: {_scalar(task.body)}")
    if task.secret is not None:
        lines.append(f"        SecretArn: !Sub {task.secret.arn_template}")
    if task.timeout_seconds is not None:
        lines.append(f"        TimeoutSeconds: {task.timeout_seconds}")
    return lines


def _description(task: ImportedTask) -> str:
    text = f"Imported from {task.source}"
    # Description is at most 512 characters; a long Vercel path must not make the task invalid.
    return text if len(text) <= 200 else text[:197] + "..."


def _scalar(value: str) -> str:
    """A YAML scalar that reads back as exactly ``value``, on one line, quoted only if needed."""
    import yaml  # a CLI dependency: the Lambda layer does not ship PyYAML

    text = yaml.safe_dump(value, width=math.inf, allow_unicode=True).rstrip("\n")
    text = text.removesuffix("\n...")
    # JSON's double-quoted string is YAML too, and escapes any line break onto one line.
    return text if "\n" not in text else json.dumps(value, ensure_ascii=False)


# Just enough of a stack for the tasks' references to resolve, as they do in template.yaml.
_VALIDATION_STACK = """\
Resources:
  RegistryFunction:
    Type: AWS::Serverless::Function
    Properties: {Handler: app.handler, Runtime: python3.13, CodeUri: functions/registry/}
  RegistryFunctionLogGroup:
    Type: AWS::Logs::LogGroup
"""


def _validation_problems(tasks: Sequence[ImportedTask]) -> dict[str, list[str]]:
    """Validate the rendered resources as `cronfleet validate` would: problems per logical id."""
    if not tasks:
        return {}
    text = _VALIDATION_STACK + "\n".join(line for task in tasks for line in _resource_lines(task))
    verdict = validate_template(parse_template(text, source="import"))
    problems: dict[str, list[str]] = {}
    for problem in verdict.problems:
        where = problem.field_path or "(resource)"
        problems.setdefault(problem.logical_id, []).append(f"{where}: {problem.reason}")
    return problems


def report_lines(result: ImportResult) -> list[str]:
    """What goes to stderr: warnings, then notes, then a one-line summary."""
    lines = [f"warning: {warning}" for warning in result.warnings]
    lines += [f"note: {note}" for note in result.notes]
    summary = f"{len(result.tasks)} task(s) imported from {result.source}"
    if result.warnings:
        summary += f"; {len(result.warnings)} warning(s) above: add or fix those jobs by hand"
    return [*lines, summary]


# --- Crontab -----------------------------------------------------------------------------------

# Vixie cron: `NAME = value`, the value optionally quoted. No entry starts with a letter.
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
# A 6th schedule-like field: seconds (Quartz, node-cron) or years (AWS).
_CRON_FIELD = re.compile(r"[0-9*?/,LW#-]*[0-9*?][0-9*?/,LW#-]*")
_USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]*\$?")
_TIMEZONE_VARIABLES = ("CRON_TZ", "TZ")


@dataclass(frozen=True)
class _Assignment:
    line: int
    value: str


class _Crontab:
    """Reads a crontab line by line: assignments apply to the entries after them, as in cron."""

    def __init__(self, importer: _Importer, base_url: str | None, timezone: str | None) -> None:
        self.importer = importer
        self.base_url = base_url
        # The variable --base-url stands in for: one, so that two URL variables are never merged.
        self.base_url_variable: str | None = None
        self.timezone = timezone or "UTC"
        # Neither --tz nor a CRON_TZ line said which timezone the cron daemon ran in.
        self.assumed_timezone = timezone is None
        self.bad_timezone_line: int | None = None
        self.environment: dict[str, _Assignment] = {}
        self.assignments: list[tuple[str, _Assignment]] = []

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
        except _Untranslatable as exc:
            self.importer.refused(number, where, exc)
            return
        self.importer.drafts.append(draft)

    def assign(self, number: int, where: str, name: str, value: str) -> None:
        if _looks_secret(name):
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
        self.environment[name] = _Assignment(number, value)
        self.assignments.append((name, self.environment[name]))

    def entry(self, number: int, where: str, line: str) -> _Draft:
        schedule, command = _split_entry(line)
        if self.bad_timezone_line is not None:
            raise _Untranslatable(f"the timezone set on line {self.bad_timezone_line} is not valid")
        try:
            parse_schedule(schedule, self.timezone)
        except ScheduleError as exc:
            raise _Untranslatable(
                f"its schedule {_shown(schedule)!r} is not valid: {exc}"
            ) from None
        if re.search(r"(?<!\\)%", command):
            raise _Untranslatable(
                "its command has an unescaped %: cron ends the command there and feeds the rest "
                "to its input; write \\% where a % belongs to the URL"
            )
        words, caveats = _command_words(command.replace("\\%", "%"))
        program, arguments = _program(words)
        call = _read_call(program, arguments)
        uses: set[int] = set()
        task = self.translate(call, where, schedule, uses)
        return _Draft(number, task, caveats + call.caveats, frozenset(uses), self.assumed_timezone)

    def translate(self, call: _Call, where: str, schedule: str, uses: set[int]) -> ImportedTask:
        if not call.urls:
            raise _Untranslatable(f"{call.program} is given no URL")
        if len(call.urls) > 1:
            raise _Untranslatable(f"{call.program} calls {len(call.urls)} URLs; a task calls one")
        url = self.url(call.urls[0], uses)
        secret, headers = self.headers(call, where, uses)
        body = self.body(call, uses)
        method = call.method or ("POST" if call.data else "GET")
        if method not in HTTP_METHODS:
            raise _Untranslatable(
                f"its method {_shown(method)} is not one of {', '.join(HTTP_METHODS)}"
            )
        if call.json and not any(name.lower() == "accept" for name in headers):
            headers["Accept"] = "application/json"  # curl --json sends it
        timeout = _timeout(call)
        return ImportedTask(
            "", where, schedule, self.timezone, url, method, headers, body, secret, timeout
        )

    def expand(self, word: str, uses: set[int]) -> str:
        """Substitute the crontab's variables, as the shell would; an unset one is refused."""

        def value(match: re.Match[str]) -> str:
            assignment = self.environment.get(match[1])
            if assignment is None:
                raise _Untranslatable(f"it uses ${match[1]}, which the crontab does not set")
            uses.add(assignment.line)
            return assignment.value

        return _MARKED.sub(value, word)

    def url(self, word: str, uses: set[int]) -> str:
        leading = _MARKED.match(word)
        if leading and leading[1] not in self.environment:
            name = leading[1]
            if self.base_url is None:
                raise _Untranslatable(
                    f"its URL starts with ${name}, which the crontab does not set: pass "
                    f"--base-url https://... to stand in for ${name}"
                )
            if self.base_url_variable not in (None, name):
                raise _Untranslatable(
                    f"its URL starts with ${name}, but --base-url already stands in for "
                    f"${self.base_url_variable}; set {name}=https://... in the crontab"
                )
            self.base_url_variable = name
            word = self.base_url + word[leading.end() :]
        for variable in _MARKED.findall(word):
            if _looks_secret(variable):
                raise _Untranslatable(
                    f"its URL carries ${variable}, which would sit in the template; the HTTP "
                    "caller sends a secret only as Authorization: Bearer"
                )
        url = self.expand(word, uses)
        if not urlsplit(url).scheme:
            raise _Untranslatable(
                f"its URL {_shown_url(url)} has no scheme (curl would use http://)"
            )
        _check_url(url)
        return url

    def headers(
        self, call: _Call, where: str, uses: set[int]
    ) -> tuple[SecretReference | None, dict[str, str]]:
        """Plain headers are kept; the one secret moves to a parameter the task reads."""
        secret: SecretReference | None = None
        secret_from = ""
        headers: dict[str, str] = {}

        def take(token: str, carrier: str) -> SecretReference:
            nonlocal secret, secret_from
            found = self.secret(token, where, uses)
            if secret is not None and found != secret:
                raise _Untranslatable(
                    f"it sends two secrets ({secret_from} and {carrier}); an Http task sends one, "
                    "as Authorization: Bearer"
                )
            secret, secret_from = found, carrier
            return found

        for name, value in call.headers:
            lowered = name.lower()
            if lowered in _REFUSED_HEADERS:
                raise _Untranslatable(f"it sends a {name} header: {_REFUSED_HEADERS[lowered]}")
            if lowered == "authorization":
                bearer = re.fullmatch(r"(?i)bearer\s+(\S.*)", value.strip())
                if bearer is None:
                    self.importer.secret_values.add(value.strip())
                    # Name the scheme (Basic, Token...), never a bare token written without one.
                    scheme = re.fullmatch(r"([A-Za-z][A-Za-z0-9-]{0,19})\s+\S.*", value.strip())
                    sent = f"Authorization: {scheme[1]} ..." if scheme else "an Authorization value"
                    raise _Untranslatable(
                        f"it sends {sent} that is not a Bearer token; the HTTP caller sends a "
                        "secret only as Authorization: Bearer"
                    )
                take(bearer[1].strip(), "Authorization")
            elif _looks_secret(name) or any(_looks_secret(v) for v in _MARKED.findall(value)):
                reference = take(value.strip(), name)
                call.caveats.append(
                    f"its {name} header looks secret: the value moves to "
                    f"{reference.parameter_name}, which the HTTP caller sends as "
                    f"Authorization: Bearer, not as {name}; make sure the endpoint accepts that"
                )
            else:
                expanded = self.expand(value, uses)
                if _looks_random(expanded):
                    # A token under a name that does not say so: moving it to Bearer would be
                    # a guess, and copying it would print it.
                    raise _Untranslatable(
                        f"its {name} header's value looks like a token, which would sit in the "
                        "template; the HTTP caller sends a secret only as Authorization: Bearer",
                        secrets=(expanded,),
                    )
                headers[name] = expanded
        if call.bearer is not None:
            take(call.bearer, "--oauth2-bearer")
        return secret, headers

    def secret(self, token: str, where: str, uses: set[int]) -> SecretReference:
        variable = _MARKED.fullmatch(token)
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
        unset = [name for name in _MARKED.findall(token) if name not in self.environment]
        literal = token if unset else self.expand(token, uses)
        self.importer.secret_values.add(literal)
        return self.importer.secrets.for_literal(literal, where)

    def body(self, call: _Call, uses: set[int]) -> str | None:
        if not call.data:
            return None
        # curl joins several -d with '&' (form fields); --json pieces are concatenated.
        text = ("" if call.json else "&").join(call.data)
        for variable in _MARKED.findall(text):
            if _looks_secret(variable):
                raise _Untranslatable(
                    f"its body carries ${variable}, which would sit in the template"
                )
        text = self.expand(text, uses)
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            raise _Untranslatable(
                "its body is not JSON (form data?); the HTTP caller sends JSON bodies only"
            ) from None
        fields = sorted(set(_secret_fields(body)))
        if fields:
            raise _Untranslatable(
                f"its body has fields that look secret ({', '.join(fields)}), which would sit "
                "in the template"
            )
        random = dict(_random_values(body))
        if random:
            raise _Untranslatable(
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
            raise _Untranslatable("@reboot runs when the machine starts; no schedule matches that")
        if not command.strip():
            raise _Untranslatable(f"{nickname} has no command")
        return nickname, command
    parts = line.split(None, 5)
    if len(parts) < 6:
        raise _Untranslatable("is not a crontab entry: expected 5 schedule fields and a command")
    schedule, command = " ".join(parts[:5]), parts[5]
    sixth = command.split(None, 1)[0]
    if _CRON_FIELD.fullmatch(sixth):
        raise _Untranslatable(
            f"its schedule has 6 or more fields ('{_shown(schedule)} {sixth} ...'); a crontab "
            "has 5 (minute hour day-of-month month day-of-week): seconds and years have no place"
        )
    return schedule, command


# --- Shell commands ----------------------------------------------------------------------------

# A variable the shell would expand, kept through shlex as \0NAME\0 (see _mark_expansions).
_MARKED = re.compile("\x00([A-Za-z_][A-Za-z0-9_]*)\x00")
_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*)")
_OPERATOR_CHARS = ";&|<>()"
_REDIRECTIONS = frozenset({">", ">>", ">|", "&>", "&>>", ">&", "<", "<<", "<<<", "<>", "<&"})
# Headers that have no place in a translated task, and why.
_REFUSED_HEADERS = {
    "cookie": "a session cookie is a secret the HTTP caller cannot send",
    "proxy-authorization": "the HTTP caller uses no proxy",
    "host": "the host comes from the URL",
}


# An Authorization value in a word a warning quotes (a schedule that swallowed part of a command).
_SCHEME_TOKEN = re.compile(r"(?i)\b(bearer|basic|digest)\s+[^\s\"',;]+")


def _shown(word: str) -> str:
    """A word as a warning quotes it: variables as $NAME, Authorization values and URLs' tokens
    hidden."""
    word = _URL_IN_TEXT.sub(lambda url: _shown_url(url.group()), word)
    return _SCHEME_TOKEN.sub(r"\1 ***", _MARKED.sub(r"$\1", word))


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
            raise _Untranslatable("its command uses a command substitution (`...`)")
        elif char == "$":
            variable = _VARIABLE.match(command, index + 1)
            if variable:
                out.append(f"\x00{variable[1] or variable[2]}\x00")
                index = variable.end()
                continue
            following = command[index + 1 : index + 2]
            if following == "(":
                raise _Untranslatable("its command uses a command substitution $(...)")
            if following == "{":
                raise _Untranslatable("its command uses a parameter expansion ${...}")
            if following and (following.isdigit() or following in "@*#?$!-"):
                raise _Untranslatable(f"its command uses the shell parameter ${following}")
        elif char == "#" and quote is None and (index == 0 or command[index - 1].isspace()):
            break
        out.append(char)
        index += 1
    return "".join(out)


def _command_words(command: str) -> tuple[list[str], list[str]]:
    """The words of a single shell command, without its redirections; and the caveats."""
    marked = _mark_expansions(command)
    lexer = shlex.shlex(marked, posix=True, punctuation_chars=_OPERATOR_CHARS)
    lexer.whitespace_split = True
    lexer.commenters = ""  # handled above: shlex would also cut a '#' inside a word
    try:
        tokens = list(lexer)
    except ValueError as exc:  # "No closing quotation"
        raise _Untranslatable(f"its command cannot be read: {exc}") from None
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
            raise _Untranslatable(
                f"its command is a shell list or pipeline ({token}); only a single curl or wget "
                "command translates"
            )
        if index + 1 == len(tokens):
            raise _Untranslatable(f"its command ends in a redirection ({token}) without a target")
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
            raise _Untranslatable(f"its command reads its input from {_shown(target)}")
        else:
            caveats.append(
                f"its output went to {_shown(target)}; cronfleet keeps each run's status and "
                "a preview of the answer in its ledger instead"
            )
        index += 2
    return words, caveats


def _program(words: list[str]) -> tuple[_Program, list[str]]:
    if not words:
        raise _Untranslatable("it has no command")
    first = words[0]
    # /etc/crontab and /etc/cron.d lines name a user before the command; a URL call does not
    # depend on which user makes it.
    if len(words) > 1 and posixpath.basename(words[1]) in _PROGRAMS and _USER_NAME.fullmatch(first):
        words = words[1:]
        first = words[0]
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", first, re.DOTALL):
        name = first.split("=", 1)[0]
        raise _Untranslatable(
            f"its command sets {name} for itself; an Http task has no environment"
        )
    program = _PROGRAMS.get(posixpath.basename(first))
    if program is None:
        raise _Untranslatable(
            f"it runs {_shown(first)!r}, not curl or wget: only URL calls become Http tasks (run "
            "a script from a task function instead)"
        )
    return program, words[1:]


# --- curl and wget -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Program:
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

_CURL = _Program(
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

_WGET = _Program(
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
_PROGRAMS = {"curl": _CURL, "wget": _WGET}


@dataclass
class _Call:
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


def _read_call(program: _Program, arguments: list[str]) -> _Call:
    call = _Call(program.name)
    for name, spelled, value in _options(program, arguments, call.urls):
        if name in program.refused:
            raise _Untranslatable(f"{program.name} {spelled}: {program.refused[name]}")
        if name in program.ignored:
            continue
        _apply(call, name, spelled, value)
    return call


def _apply(call: _Call, name: str, spelled: str, value: str | None) -> None:
    """Apply one understood option (value is set exactly for the options that take one)."""
    text = value or ""
    match name:
        case "method":
            call.method = text.upper()
        case "header":
            header, colon, header_value = text.partition(":")
            if not colon or not header.strip():
                raise _Untranslatable(f"its header {_shown(header)!r} is not 'Name: value'")
            call.headers.append((header.strip(), header_value.strip()))
        case "data" | "json" if text.startswith("@"):
            raise _Untranslatable(f"{call.program} {spelled}: {_FILE_BODY}")
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
                f"its output went to {_shown(text)} ({spelled}); cronfleet keeps a preview of the "
                "answer in its ledger instead"
            )
        case "log":
            call.caveats.append(
                f"{call.program} logged to {_shown(text)} ({spelled}); cronfleet logs each run "
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
    program: _Program, arguments: list[str], positional: list[str]
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
                raise _Untranslatable(f"{program.name} option {option} is not understood")
            if name in program.takes_value:
                yield name, option, value if equals else _value(program, option, queue)
            elif equals:
                raise _Untranslatable(f"{program.name} option {option} takes no value")
            else:
                yield name, option, None
        elif word.startswith("-") and len(word) > 1:
            yield from _short_options(program, word, queue)
        else:
            positional.append(word)


def _short_options(
    program: _Program, word: str, queue: list[str]
) -> Iterator[tuple[str, str, str | None]]:
    """-fsSL is -f -s -S -L; in -XPOST or -qO- the value follows its letter."""
    for position, letter in enumerate(word[1:], 1):
        name = program.short.get(letter)
        if name is None:
            raise _Untranslatable(f"{program.name} option -{letter} is not understood")
        if name in program.takes_value:
            attached = word[position + 1 :]
            yield name, f"-{letter}", attached or _value(program, f"-{letter}", queue)
            return
        yield name, f"-{letter}", None


def _value(program: _Program, spelled: str, queue: list[str]) -> str:
    if not queue:
        raise _Untranslatable(f"{program.name} option {spelled} needs a value")
    return queue.pop(0)


def _timeout(call: _Call) -> int | None:
    if call.timeout is None:
        return None
    try:
        seconds = math.ceil(float(call.timeout))
    except (ValueError, OverflowError):
        seconds = 0
    if 1 <= seconds <= MAX_HTTP_TIMEOUT_SECONDS:
        return seconds
    call.caveats.append(
        f"its timeout {_shown(call.timeout)!r} is outside 1-{MAX_HTTP_TIMEOUT_SECONDS} s; "
        f"the default {DEFAULT_HTTP_TIMEOUT_SECONDS} s applies"
    )
    return None
