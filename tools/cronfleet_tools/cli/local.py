"""``cronfleet run``: the whole stack on this machine, live or as a replay."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cronfleet import clock
from cronfleet_tools.cli.common import (
    DEFAULT_STATE_DIR,
    StateDirOption,
    console,
    error_console,
    parse_optional_time,
    refuse,
)


def _parse_speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        refuse("--speed", f"{text!r} is neither a number nor 'max'")
    if not 0 < speed <= 100_000:
        refuse("--speed", f"{text} is out of range: more than 0, at most 100000, or 'max'")
    return speed


def run_local(
    template: Annotated[
        Path, typer.Option("--template", help="The SAM template with the tasks.")
    ] = Path("template.yaml"),
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    env_vars: Annotated[
        Path | None,
        typer.Option(
            "--env-vars", help="Environment overrides, as for `sam local invoke --env-vars`."
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--start", help="Replay from this time on a simulated clock (ISO-8601)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="End of the replay, inclusive (ISO-8601).")
    ] = None,
    speed: Annotated[
        str,
        typer.Option("--speed", help="Simulated minutes per real minute, or 'max' (replays only)."),
    ] = "60",
    trigger_all: Annotated[
        bool,
        typer.Option(
            "--trigger-all/--no-trigger-all",
            help="Start with one manual run of every enabled task.",
        ),
    ] = False,
    cold: Annotated[
        bool,
        typer.Option(
            "--cold",
            help="A new process for every invocation, as `sam local invoke` runs one, instead "
            "of warm workers kept between invocations as Lambda keeps sandboxes.",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show idle ticks too.")] = False,
    widget_page: Annotated[
        Path | None,
        typer.Option(
            "--widget-page",
            metavar="PATH",
            help="Keep the dashboard's fleet widget, as its function renders it, in this HTML "
            "file (rewritten after ticks, at most every 5 seconds).",
        ),
    ] = None,
) -> None:
    """Run the whole stack locally: DynamoDB Local, the dispatcher, the task functions.

    Live, it ticks at each minute boundary until Ctrl-C. With --start and --until it replays
    that window on a simulated clock; slots keep their logical times.

    A function's first invocation starts its process (a cold start); later ones reuse an idle
    one of the same function, whose module state persists, as in a Lambda sandbox. A timeout or
    a crash discards it. --cold starts a new process for every invocation instead.

    Http tasks read their secrets from secrets.json in the state directory (a JSON object of
    parameter or secret names to values); CRONFLEET_LOCAL_CA_FILE names a CA the functions
    trust besides the public ones, for HTTPS servers on this machine.
    """
    from cronfleet.registry.problems import InvalidTemplate
    from cronfleet_tools.local.console import ConsoleReporter
    from cronfleet_tools.local.functions import InvalidEnvVars
    from cronfleet_tools.local.runner import LocalRunner, Reporter, RunOptions, TemplateProblems
    from cronfleet_tools.local.stack import LocalStackError

    if not template.is_file():
        refuse("--template", f"{template}: no such file")
    begin = parse_optional_time(start, "--start")
    end = parse_optional_time(until, "--until")
    options = RunOptions(
        template=template,
        state_dir=state_dir,
        env_vars=env_vars,
        start=begin,
        until=end,
        speed=_parse_speed(speed),
        trigger_all=trigger_all,
        cold=cold,
    )
    reporter: Reporter = ConsoleReporter(console, clock.now, verbose=verbose)
    if widget_page is not None:
        from cronfleet_tools.local.widget_page import WidgetPageReporter

        reporter = WidgetPageReporter(reporter, widget_page, clock.now)
    try:
        runner = LocalRunner(options, reporter)
    except ValueError as exc:
        refuse("--start" if "start" in str(exc) else "--until", str(exc))

    try:
        with runner.stop_on_signals():
            summary = runner.run()
    except (TemplateProblems, InvalidTemplate) as exc:
        error_console.print(f"{template} has problems; nothing was started:", markup=False)
        error_console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(code=1) from None
    except InvalidEnvVars as exc:
        refuse("--env-vars", str(exc))
    except LocalStackError as exc:
        error_console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(code=2) from None
    console.print(
        f"Stopped after {summary.ticks} tick(s), {summary.invocations} invocation(s), "
        f"{summary.alerts} alert(s). Data kept in {state_dir}/.",
        style="dim",
    )
