"""The ``cronfleet`` Typer app: every command, registered explicitly from its group's module.

Output is a readable table by default and JSON with ``--json``. Bad input exits with status 2
and a message naming the argument.
"""

from __future__ import annotations

from typing import Annotated

import typer

import cronfleet
from cronfleet_tools.cli import audit, importing, local, operate, schedules

app = typer.Typer(
    name="cronfleet",
    help="A serverless cron orchestrator for AWS: preview schedules and validate tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"cronfleet {cronfleet.__version__}")
        raise typer.Exit


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """A serverless cron orchestrator for AWS: preview schedules and validate tasks."""


# Offline: schedules and templates.
app.command("next")(schedules.next_runs)
app.command("validate")(schedules.validate)
app.command("preview")(schedules.preview)
app.command("import")(importing.import_tasks)
# The local stack.
app.command("run")(local.run_local)
# A running stack, local or deployed.
app.command("status")(operate.status)
app.command("history")(operate.history)
app.command("trigger")(operate.trigger)
app.command("pause")(operate.pause)
app.command("resume")(operate.resume)
app.command("audit")(audit.audit_ledger)


def main() -> None:
    app()
