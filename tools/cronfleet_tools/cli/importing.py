"""``cronfleet import``: existing cron jobs as ``Custom::ScheduledTask`` resources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cronfleet_tools.cli.common import error_console
from cronfleet_tools.importers import ImportInputError, import_file, render_resources, report_lines


def import_tasks(
    file: Annotated[
        Path,
        typer.Argument(
            help="A vercel.json (its crons array), or a crontab whose lines call URLs with curl "
            "or wget.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            metavar="URL",
            help="Where the app is served (https://...). Vercel cron paths are joined to it; in "
            "a crontab it stands in for an unset variable that starts a URL ($API_URL/...).",
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--tz", help="The crontab's timezone where no CRON_TZ line sets one (default: UTC)."
        ),
    ] = None,
) -> None:
    """Translate Vercel cron jobs or crontab URL calls into Custom::ScheduledTask resources.

    Prints YAML for the Resources of template.yaml; warnings and the steps left go to stderr.
    Exits 0 when every job was translated, 1 when some were not (each is named), 2 for bad input.
    """
    try:
        result = import_file(file, base_url=base_url, timezone=timezone)
    except ImportInputError as exc:
        if exc.option:
            raise typer.BadParameter(str(exc), param_hint=exc.option) from exc
        error_console.print(
            f"Cannot import {file}: {exc}", markup=False, highlight=False, soft_wrap=True
        )
        raise typer.Exit(code=2) from exc
    typer.echo(render_resources(result), nl=False)
    for line in report_lines(result):
        error_console.print(line, markup=False, highlight=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(code=1)
