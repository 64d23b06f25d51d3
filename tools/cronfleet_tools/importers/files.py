"""Which importer reads a file: a vercel.json (a JSON object) or a crontab (anything else)."""

from __future__ import annotations

from pathlib import Path

from cronfleet_tools.importers.crontab import import_crontab
from cronfleet_tools.importers.model import ImportInputError, ImportResult
from cronfleet_tools.importers.vercel import import_vercel

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
