"""A vercel.json ``crons`` array: each path joined to the deployment's URL, on UTC."""

from __future__ import annotations

import json

from cronfleet_tools.importers.importer import Importer, checked_base_url, json_kind
from cronfleet_tools.importers.model import (
    VERCEL_SECRET_VARIABLE,
    ImportInputError,
    ImportResult,
)


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
        raise ImportInputError(f"crons must be an array, got {json_kind(crons)}")
    if base_url is None:
        raise ImportInputError(
            "Vercel cron paths are relative to the deployment; pass the URL they are served "
            "from, such as --base-url https://your-app.vercel.app",
            option="--base-url",
        )
    base = checked_base_url(base_url)
    importer = Importer(source)
    secret = importer.secrets.for_variable(VERCEL_SECRET_VARIABLE)
    for index, entry in enumerate(crons):
        importer.vercel_entry(index, entry, base, secret)
    return importer.finish()
