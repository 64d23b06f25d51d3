"""What both formats share: drafts of tasks, their secrets, the URL checks, the logical ids.

:class:`Importer` collects the drafts of one file and, in :meth:`Importer.finish`, validates
each rendered resource as a deploy would, so a task that would fail is reported and left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from cronfleet.registry.url_safety import url_refusal
from cronfleet.schedule import ScheduleError, parse_schedule
from cronfleet_tools.importers.display import masked, masked_url
from cronfleet_tools.importers.model import (
    DEFAULT_HTTP_TIMEOUT_SECONDS,
    MAX_HTTP_TIMEOUT_SECONDS,
    MAX_ID_STEM,
    Assignment,
    ImportCaveat,
    ImportedTask,
    ImportInputError,
    ImportResult,
    SecretReference,
    Untranslatable,
)
from cronfleet_tools.importers.render import validation_problems
from cronfleet_tools.importers.tokens import URL_IN_TEXT, url_tokens


def checked_base_url(base_url: str) -> str:
    try:
        check_url(base_url)
    except Untranslatable as exc:
        # The opt-ins the registry suggests are not the import's to set: the URL must change.
        raise ImportInputError(str(exc).split("; set ")[0], option="--base-url") from None
    parts = urlsplit(base_url)
    if parts.query or parts.fragment:
        raise ImportInputError(
            f"{masked_url(base_url)} must not have a query or fragment: paths are appended to it",
            option="--base-url",
        )
    return base_url.rstrip("/")


def json_kind(value: object) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return kinds.get(type(value), "a number")


# --- Common to both formats --------------------------------------------------------------------


@dataclass
class Draft:
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


class Importer:
    """Collects drafts and warnings, then assigns logical ids and validates the resources."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.secrets = _Secrets()
        self.drafts: list[Draft] = []
        self.warnings: list[ImportCaveat] = []
        # Every token and secret value seen, so that no warning can echo one.
        self.secret_values: set[str] = set()

    def warn(self, position: int, where: str, reason: str) -> None:
        self.warnings.append(ImportCaveat(position, where, reason))

    def scan(self, text: str) -> None:
        """Collect the tokens of every URL written anywhere in ``text``, before any is quoted.

        A warning about one line may quote a word from it (a schedule that swallowed a URL, a
        program name that is a URL); whatever the reason, the token in it is masked.
        """
        for url in URL_IN_TEXT.findall(text):
            for token in url_tokens(url):
                self.secret_values.update(token.values)

    def refused(self, position: int, where: str, exc: Untranslatable) -> None:
        self.secret_values.update(exc.secrets)
        self.warn(position, where, f"not translated: {exc}")

    def vercel_entry(
        self, index: int, entry: object, base_url: str, secret: SecretReference
    ) -> None:
        where = f"{self.source} crons[{index}]"
        if not isinstance(entry, dict):
            got = json_kind(entry)
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
                problems.append(f"its schedule {masked(schedule_text)!r} is not valid: {exc}")
        url = base_url + path if isinstance(path, str) and path.startswith("/") else ""
        if url:
            try:
                check_url(url)
            except Untranslatable as exc:
                self.secret_values.update(exc.secrets)
                problems.append(str(exc))
        if problems:
            self.warn(index, where, "not translated: " + "; ".join(problems))
            return
        others = sorted(str(key) for key in entry if key not in ("path", "schedule"))
        caveats = [f"its keys {', '.join(others)} have no equivalent"] if others else []
        # Vercel runs cron jobs in UTC, with a GET and `Authorization: Bearer $CRON_SECRET`.
        task = ImportedTask("", where, schedule_text, "UTC", url, "GET", secret=secret)
        self.drafts.append(Draft(index, task, caveats))

    def finish(self, assignments: Sequence[tuple[str, Assignment]] = ()) -> ImportResult:
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
        problems = validation_problems([draft.task for draft in drafts])
        kept: list[Draft] = []
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


def check_url(url: str) -> None:
    """Refuse what the registry would refuse, and URLs that carry a credential in the open.

    An Http task sends its one secret as ``Authorization: Bearer``; a token that the old job
    sent inside the URL cannot move there (the endpoint reads it where it was), and left in the
    URL it would sit in the template, in the registry and in every log line. So such a job is
    refused, named by its line, with the token masked.
    """
    tokens = url_tokens(url)
    userinfo = [token for token in tokens if token.kind == "userinfo"]
    if userinfo:
        raise Untranslatable(
            f"its URL {masked_url(url)} carries user:password@ credentials (basic "
            "authentication), which would sit in the template; the HTTP caller sends a secret "
            "only as Authorization: Bearer",
            secrets=userinfo[0].values,
        )
    # The host first: "must use https://" would hide that the metadata service is never allowed.
    refusal = url_refusal(
        url, allow_insecure_http=True, allow_private_network=False
    ) or url_refusal(url, allow_insecure_http=False, allow_private_network=False)
    if refusal:
        raise Untranslatable(
            f"its URL {masked_url(url)} {refusal}",
            secrets=tuple(value for token in tokens for value in token.values),
        )
    if tokens:
        token = tokens[0]
        said = f"its URL {token.described}"
        if token.kind != "query":  # the query is never shown; a path is, masked
            said += f" ({masked_url(url)})"
        advice = "" if token.kind == "query" else " (a task function can read it from SSM)"
        raise Untranslatable(
            f"{said}, which would sit in the template; the HTTP caller sends a secret only as "
            f"Authorization: Bearer{advice}",
            secrets=tuple(value for token in tokens for value in token.values),
        )


# --- Logical ids -------------------------------------------------------------------------------


def _with_logical_ids(drafts: Sequence[Draft]) -> list[Draft]:
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
        stem = stem[:MAX_ID_STEM]
        logical_id, number = f"{stem}Task", 2
        while logical_id.lower() in taken:
            logical_id, number = f"{stem}{number}Task", number + 1
        taken.add(logical_id.lower())
        named.append(replace(draft, task=replace(draft.task, logical_id=logical_id)))
    return named


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]+", text)
