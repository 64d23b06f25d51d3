"""The ``cronfleet`` Typer app: every command, registered explicitly from its group's module.

Output is a readable table by default and JSON with ``--json``. Bad input exits with status 2
and a message naming the argument.
"""

from __future__ import annotations

from typing import Annotated

import typer

import cronfleet
from cronfleet_tools.cli import (
    audit,
    importing,
    local,
    operate,
    runs,
    scaffolding,
    schedules,
    schedules_api,
)

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


# One example per command, shown at the end of its --help.
EXAMPLES = {
    "next": "cronfleet next 'cron(0 9 ? * MON-FRI *)' --tz Europe/London -n 3",
    "validate": "cronfleet validate template.yaml",
    "preview": "cronfleet preview template.yaml --count 5 --json",
    "new task": "cronfleet new task nightly-report --schedule 'cron(0 6 * * ? *)' --tz UTC",
    "import": "cronfleet import crontab.txt --base-url https://api.example.com --tz UTC",
    "run": "cronfleet run --start 2026-03-07T00:00Z --until 2026-03-09T00:00Z --speed max",
    "status": "cronfleet status --local",
    "describe": "cronfleet describe ExampleTask --local",
    "history": "cronfleet history ExampleTask --stack cronfleet --limit 5",
    "trigger": 'cronfleet trigger ExampleTask --local --payload \'{"greeting": "hi"}\'',
    "logs": "cronfleet logs ExampleTask --stack cronfleet --slot 2026-11-02T09:00:00Z",
    "pause": "cronfleet pause ExampleTask --stack cronfleet",
    "resume": "cronfleet resume ExampleTask --stack cronfleet",
    "audit": "cronfleet audit --local --since 2026-11-01T00:00Z --json",
    "schedules create": (
        "cronfleet schedules create --stack cronfleet --tenant acme "
        "--schedule 'cron(0 9 * * ? *)' --function ExampleTaskFunction --dedup-key p42-daily"
    ),
    "schedules list": "cronfleet schedules list --local --tenant acme --external-id project-42",
    "schedules update": (
        "cronfleet schedules update s-3f9c0a1b2c3d4e5f60718293 --stack cronfleet --tenant acme "
        "--schedule 'cron(0 10 * * ? *)' --tz Europe/Berlin"
    ),
    "schedules delete": (
        "cronfleet schedules delete s-3f9c0a1b2c3d4e5f60718293 --tenant acme "
        "--api-url https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1"
    ),
}


new = typer.Typer(
    help="Scaffold something new in this project.", no_args_is_help=True, add_completion=False
)
app.add_typer(new, name="new")
dynamic = typer.Typer(
    help="A tenant's dynamic schedules, through the stack's schedules API (signed with SigV4).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(dynamic, name="schedules")


def _register(name: str, command: typer.models.CommandFunctionType) -> None:
    group, _, subcommand = name.rpartition(" ")
    on = {"": app, "new": new, "schedules": dynamic}[group]
    on.command(subcommand, epilog=f"Example: {EXAMPLES[name]}")(command)


# Offline: schedules and templates.
_register("next", schedules.next_runs)
_register("validate", schedules.validate)
_register("preview", schedules.preview)
_register("import", importing.import_tasks)
_register("new task", scaffolding.new_task)
# The local stack.
_register("run", local.run_local)
# A running stack, local or deployed.
_register("status", operate.status)
_register("describe", operate.describe)
_register("history", operate.history)
_register("trigger", operate.trigger)
_register("logs", runs.logs)
_register("pause", operate.pause)
_register("resume", operate.resume)
_register("audit", audit.audit_ledger)
# Dynamic schedules, through a stack's schedules API.
_register("schedules create", schedules_api.create)
_register("schedules list", schedules_api.list_schedules)
_register("schedules update", schedules_api.update)
_register("schedules delete", schedules_api.delete)


def main() -> None:
    app()
