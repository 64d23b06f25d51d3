"""``cronfleet new task``: scaffold a task, its function and test, and its template resources.

Bad input (a name taken, a schedule or URL the deploy would refuse) exits with status 2, one
line per problem naming the option, and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cronfleet_tools.cli.common import internal_errors, plain
from cronfleet_tools.scaffold import DEFAULT_SCHEDULE, ScaffoldRefused, plan_new_task

EXIT_USAGE = 2


def new_task(
    name: Annotated[str, typer.Argument(help="The task's id, e.g. nightly-report.")],
    schedule: Annotated[
        str,
        typer.Option("--schedule", help="cron(...), rate(...), at(...) or a Unix cron expression."),
    ] = DEFAULT_SCHEDULE,
    timezone: Annotated[
        str, typer.Option("--tz", help="IANA timezone the schedule is read in.")
    ] = "UTC",
    http: Annotated[
        str | None,
        typer.Option(
            "--http",
            metavar="URL",
            help="Call this HTTPS URL with the built-in HTTP caller instead of writing a function.",
        ),
    ] = None,
    template: Annotated[
        Path,
        typer.Option(
            "--template", exists=True, dir_okay=False, help="The SAM template to add the task to."
        ),
    ] = Path("template.yaml"),
) -> None:
    """Add a task: its function, event and unit test, and its resources in template.yaml."""
    with internal_errors("new task"):
        try:
            planned = plan_new_task(
                template, name, schedule=schedule, timezone=timezone, http_url=http
            )
        except ScaffoldRefused as refused:
            for problem in refused.problems:
                plain(problem, stderr=True)
            raise typer.Exit(code=EXIT_USAGE) from None
        written = planned.write()
    root = template.parent
    for path in written:
        plain(f"wrote {path.relative_to(root) if path.is_relative_to(root) else path}")
    plain(f"\nAdded to {template.name} ({len(planned.resource_lines)} lines):\n")
    plain("\n".join(planned.resource_lines))
    plain(
        f"\nNext: cronfleet validate {template.name}, then `make run` runs {planned.task_id}"
        f" on its schedule (`cronfleet trigger {planned.task_id}` runs it now)."
    )
