"""What every command group shares: the consoles, the shared options and the one time parser.

Bad input exits with status 2 through ``typer.BadParameter``, which names the argument.
"""

from __future__ import annotations

import functools
import inspect
import json
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from cronfleet.schedule.expression import END_OF_TIME, START_OF_TIME

if TYPE_CHECKING:
    from cronfleet_tools.stack_target import Target

# No emoji codes anywhere: task ids, errors and every Secrets Manager ARN (':secret:') would
# otherwise print as pictures.
console = Console(emoji=False)
error_console = Console(stderr=True, emoji=False)

# Text printed as it is: problems echo template values, in which rich would otherwise read
# markup, and emoji codes (every Secrets Manager ARN holds ':secret:'), and wrap long lines.
PLAIN: dict[str, Any] = {"markup": False, "highlight": False, "emoji": False, "soft_wrap": True}

# Exit statuses of validate, next and preview (2, bad usage, is typer's own).
EXIT_INVALID = 1
EXIT_INTERNAL_ERROR = 3

DEFAULT_STATE_DIR = Path(".cronfleet")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LocalOption = Annotated[
    bool, typer.Option("--local", help="Act on the local stack that `make run` started.")
]
StateDirOption = Annotated[
    Path, typer.Option("--state-dir", help="The local stack's state directory.")
]
# On operator commands: naming a state directory can only mean its local stack.
ExplicitStateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help=f"The local stack's state directory; implies --local (default: {DEFAULT_STATE_DIR}).",
    ),
]
StackOption = Annotated[
    str | None,
    typer.Option("--stack", metavar="NAME", help="Act on this deployed CloudFormation stack."),
]
RegionOption = Annotated[
    str | None,
    typer.Option("--region", help="AWS region (default: from the AWS configuration)."),
]


def refuse(option: str, message: str) -> NoReturn:
    """Exit with status 2 and a message that names the option at fault."""
    raise typer.BadParameter(message, param_hint=option)


def payload_option(text: str | None) -> dict[str, Any] | None:
    """``--payload``: a JSON object, or exit 2 naming the option and what is wrong."""
    if text is None:
        return None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        refuse("--payload", f"not JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(payload, dict):
        refuse("--payload", f"must be a JSON object, not {type(payload).__name__}")
    return payload


def fail(message: str) -> NoReturn:
    """Exit with status 1 and ``Error: message``: the input was well formed, but the stack's
    state does not allow it (pausing a paused task), so it is no usage error."""
    plain(f"Error: {message}", stderr=True)
    raise typer.Exit(code=EXIT_INVALID)


def parse_time(text: str, option: str, zone: tzinfo = UTC) -> datetime:
    """An ISO-8601 time in the years schedules run in; without an offset it is read in ``zone``."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        refuse(option, f"'{text}' is not an ISO-8601 time such as 2026-11-01T09:00:00Z")
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
    if not START_OF_TIME <= moment < END_OF_TIME:
        refuse(option, f"'{text}' is outside the years schedules run in, 1970 to 2199")
    return moment


def parse_optional_time(text: str | None, option: str, zone: tzinfo = UTC) -> datetime | None:
    return None if text is None else parse_time(text, option, zone)


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def plain(message: str, *, stderr: bool = False) -> None:
    """Print ``message`` as it is, markup and all, on stdout or stderr."""
    (error_console if stderr else console).print(message, **PLAIN)


@contextmanager
def internal_errors(command: str) -> Iterator[None]:
    """Turn a fault of cronfleet itself into exit status 3 and a message that says so.

    Without this, an exception would exit 1, the status of a template with problems, and a
    crash would read as a verdict on the input.
    """
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise  # typer's own ways out: a verdict (1), bad usage (2), Ctrl-C
    except Exception as exc:
        traceback.print_exc()
        plain(
            f"Internal error in cronfleet {command} ({type(exc).__name__}): this is a bug in "
            "cronfleet, not a verdict on the input; please report it with the traceback above.",
            stderr=True,
        )
        raise typer.Exit(code=EXIT_INTERNAL_ERROR) from exc


@dataclass(frozen=True)
class StackChoice:
    """The stack a command acts on, as ``--local``, ``--state-dir``, ``--stack`` and ``--region``
    named it. The command resolves it when it is ready, after checking its own input."""

    local: bool
    state_dir: Path
    stack: str | None
    region: str | None

    def resolve(self) -> Target:
        # Deferred: resolving loads boto3, a second of start-up that `next` should not pay.
        from cronfleet_tools.stack_target import TargetError, resolve

        try:
            return resolve(
                local=self.local, state_dir=self.state_dir, stack=self.stack, region=self.region
            )
        except TargetError as exc:
            refuse(exc.option, str(exc))

    @contextmanager
    def reading(self, command: str) -> Iterator[Target]:
        """The stack for ``command`` (its name), which only reads, for as long as the block
        runs: a stopped local stack too, whose data is read with an engine of its own."""
        from cronfleet_tools.stack_target import TargetError, reading

        with ExitStack() as held:
            try:
                target = held.enter_context(
                    reading(
                        local=self.local,
                        state_dir=self.state_dir,
                        stack=self.stack,
                        region=self.region,
                        command=f"cronfleet {command}",
                    )
                )
            except TargetError as exc:
                refuse(exc.option, str(exc))
            if target.stopped:
                # On stderr: --json output stays a document. Next runs and health read as if
                # it ran; nothing runs until `make run` starts it again.
                plain(
                    f"Reading {target.description}: no runner is up; this is its data as "
                    "it was left.",
                    stderr=True,
                )
            yield target


_STACK_OPTIONS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=option)
    for name, option, default in (
        ("local", LocalOption, False),
        ("state_dir", ExplicitStateDirOption, None),
        ("stack", StackOption, None),
        ("region", RegionOption, None),
    )
]


def on_a_stack(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command the four options that name its stack, passed to it as ``on``, one
    :class:`StackChoice`: every operator command takes them, spelt and explained alike."""
    signature = inspect.signature(command, eval_str=True)
    own = [parameter for parameter in signature.parameters.values() if parameter.name != "on"]

    @functools.wraps(command)
    def with_stack(
        *args: Any,
        local: bool,
        state_dir: Path | None,
        stack: str | None,
        region: str | None,
        **kwargs: Any,
    ) -> None:
        choice = StackChoice(
            local or state_dir is not None, state_dir or DEFAULT_STATE_DIR, stack, region
        )
        command(*args, on=choice, **kwargs)

    # Typer reads a command's options from its signature: the command's own, then these four.
    with_stack.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*own, *_STACK_OPTIONS]
    )
    return with_stack
