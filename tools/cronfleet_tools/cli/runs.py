"""What one run did: ``cronfleet logs`` and what ``cronfleet trigger`` prints once a run ends.

A run is a task and a slot. Its log lines come from the local stack's files, or, with
``--stack``, from the stack's log group in CloudWatch Logs (:mod:`cronfleet_tools.run_logs`).
``--follow`` reads the ledger and the lines again every few seconds until the run has ended.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Protocol

import typer

from cronfleet.lifecycle.slots import MANUAL_MARK, slot_key
from cronfleet.lifecycle.states import RunStatus
from cronfleet_tools.cli.common import (
    PLAIN,
    StackChoice,
    console,
    error_console,
    fail,
    on_a_stack,
    parse_time,
    refuse,
)

if TYPE_CHECKING:
    from cronfleet.store import ExecutionRecord, Store, TaskRecord
    from cronfleet_tools.run_logs.lines import LogLine
    from cronfleet_tools.stack_target import ManualRun, Target

# A manual run that ended in one of these (or is waiting to retry) did not succeed.
FAILED_STATES = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.RETRY_WAIT})
# The runs `logs` looks through for the last one that ran, when no --slot is given.
LOOKBACK = 20
# How often --follow looks again: a local file is cheap to read; CloudWatch is charged per call.
LOCAL_POLL_SECONDS = 0.5
CLOUDWATCH_POLL_SECONDS = 2.0
# Lambda writes END and REPORT after the ledger says the attempt ended, and CloudWatch Logs
# takes a few seconds to make lines searchable: `trigger` waits this long for them.
SETTLE_SECONDS = 10.0
# Replaced by tests, which would not wait.
sleep: Callable[[float], None] = time.sleep

# 2026-11-02T09:00:00Z, or a manual run's 2026-11-02T09:00:00Z#manual-1a2b3c4d.
_SLOT = re.compile(rf"^(?P<time>[^#]+?)(?P<manual>{MANUAL_MARK}[0-9a-f]{{8}})?$")
SLOT_EXAMPLES = (
    "such as 2026-11-02T09:00:00Z, or a manual run's 2026-11-02T09:00:00Z#manual-1a2b3c4d"
)

TaskArgument = Annotated[str, typer.Argument(metavar="TASK", help="The task's name (its id).")]


class RunLogs(Protocol):
    """Where a run's lines are read from: the local stack's files, or CloudWatch Logs."""

    def where(self) -> str: ...
    def lines(self, execution: ExecutionRecord, since: datetime | None = None) -> list[LogLine]: ...


def parse_slot_option(text: str) -> str:
    """A --slot as the ledger keys it; exit 2 naming --slot when it is not one."""
    match = _SLOT.match(text.strip())
    try:
        if match is None:
            raise ValueError(text)
        datetime.fromisoformat(match.group("time").replace("Z", "+00:00"))
    except ValueError:
        refuse("--slot", f"{text!r} is not a slot: give one as `history` shows it, {SLOT_EXAMPLES}")
    moment = parse_time(match.group("time"), "--slot")  # and in the years schedules run in
    return slot_key(moment) + (match.group("manual") or "")


def run_logs_for(on: StackChoice, task: TaskRecord) -> RunLogs:
    """The lines of ``task``'s runs, where the stack ``on`` names keeps them."""
    if on.stack is None:
        from cronfleet_tools.run_logs.local import LocalRunLogs

        return LocalRunLogs(on.state_dir)
    from cronfleet_tools.run_logs.cloudwatch import LogsUnavailable, for_stack

    try:
        logs, note = for_stack(on.stack, on.region, task)
    except LogsUnavailable as exc:
        fail(str(exc))
    if note:
        error_console.print(note, **PLAIN)
    return logs


def read_lines(
    logs: RunLogs, execution: ExecutionRecord, since: datetime | None = None
) -> list[LogLine]:
    from cronfleet_tools.run_logs.cloudwatch import LogsUnavailable

    try:
        return logs.lines(execution, since)
    except LogsUnavailable as exc:
        fail(str(exc))


def print_lines(lines: list[LogLine], previous: str | None = None) -> str | None:
    """Print ``lines`` as a person reads them; the source of the last one."""
    from cronfleet_tools.run_logs.lines import with_headings

    for text in with_headings(lines, previous):
        console.print(text, style="bold" if text.startswith("── ") else "", **PLAIN)
    return lines[-1].source if lines else previous


def settled_lines(logs: RunLogs, execution: ExecutionRecord) -> list[LogLine]:
    """The lines of a run that has just ended, once its last attempt's REPORT (or END) line is
    there, or after SETTLE_SECONDS: whatever has arrived by then."""
    last = execution.current
    request = last.request_id if last is not None else None
    waited = 0.0
    while True:
        lines = read_lines(logs, execution)
        done = request is None or any(
            request in line.message and line.message.startswith(("REPORT", "END")) for line in lines
        )
        if done or waited >= SETTLE_SECONDS:
            return lines
        sleep(CLOUDWATCH_POLL_SECONDS)
        waited += CLOUDWATCH_POLL_SECONDS


def _run_to_show(store: Store, task_id: str, slot: str | None) -> ExecutionRecord:
    from cronfleet_tools.health import time_order

    recent = sorted(
        store.executions(task_id, newest_first=True, limit=LOOKBACK), key=time_order, reverse=True
    )
    if slot is not None:
        execution = store.get_execution(task_id, slot)
        if execution is None:
            known = ", ".join(run.slot for run in recent[:3])
            hint = f"; its last runs: {known}" if known else "; it has no runs yet"
            refuse("--slot", f"no run of {task_id} at {slot}{hint}")
        return execution
    for execution in recent:
        if execution.attempts:
            return execution
    fail(f"{task_id} has made no attempt in its last {LOOKBACK} runs, so it has no log lines")


def _summary(execution: ExecutionRecord) -> str:
    attempts = len(execution.attempts)
    text = f"Run {execution.task_id} {execution.slot}: {execution.status.value}"
    if attempts:
        text += f", {attempts} attempt{'s' if attempts != 1 else ''}"
    return text


@on_a_stack
def logs(
    task: TaskArgument,
    on: StackChoice,
    slot: Annotated[
        str | None,
        typer.Option(
            "--slot",
            metavar="SLOT",
            help="The run, by its slot as `history` shows it (default: the last that ran).",
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Go on printing new lines until the run has ended."),
    ] = False,
) -> None:
    """A run's log lines: every attempt's, and every line about the run, in time order."""
    from cronfleet_tools.cli.operate import registered_task

    wanted = parse_slot_option(slot) if slot is not None else None  # before anything is read
    # A stopped local stack can be read too: its ledger, and the log files it left.
    with on.reading("logs") as target:
        record = registered_task(target, task)
        execution = _run_to_show(target.store, record.task_id, wanted)
        source = run_logs_for(on, record)
        console.print(f"{_summary(execution)}; lines from {source.where()}", style="dim", **PLAIN)
        if not execution.attempts and execution.status.is_final:
            reason = f" ({execution.skip_reason})" if execution.skip_reason else ""
            console.print(f"It ran nothing{reason}, so it has no log lines.", **PLAIN)
            return
        if follow:
            _follow(target.store, execution, source, on.stack is None)
            return
    lines = read_lines(source, execution)
    if not lines:
        console.print("No log lines yet.", style="dim", **PLAIN)
    print_lines(lines)


def _follow(store: Store, execution: ExecutionRecord, logs: RunLogs, local: bool) -> None:
    """Print the run's lines as they come, until it has ended and its last lines are in."""
    poll = LOCAL_POLL_SECONDS if local else CLOUDWATCH_POLL_SECONDS
    seen: set[str] = set()
    since: datetime | None = None
    previous: str | None = None
    ended_looks = 0
    try:
        while True:
            fresh = [line for line in read_lines(logs, execution, since) if line.key not in seen]
            previous = print_lines(fresh, previous)
            seen |= {line.key for line in fresh}
            stamps = [line.timestamp for line in fresh if line.timestamp is not None]
            since = max([*stamps, *([since] if since else [])], default=None)
            if execution.status.is_final:
                # One more look after the end: END, REPORT and the recorder come after it.
                ended_looks += 1
                if ended_looks > 1:
                    break
            sleep(poll)
            execution = store.get_execution(execution.task_id, execution.slot) or execution
    except KeyboardInterrupt:
        return
    console.print(_summary(execution), style="dim", **PLAIN)


def show_outcome(execution: ExecutionRecord) -> None:
    """What a run gave back, or why it failed, and when it tries again."""
    from cronfleet import clock
    from cronfleet_tools.views import compact_json, next_attempt_at, when

    attempt = execution.current
    if attempt is None:
        return
    if attempt.error_type:
        console.print(
            f"Error: {attempt.error_type}: {attempt.error_message or ''}", style="red", **PLAIN
        )
    elif attempt.result is not None:
        console.print(f"Result: {compact_json(attempt.result)}", **PLAIN)
    due = next_attempt_at(execution)
    if due is not None:
        console.print(
            f"Attempt {execution.attempt + 1} is due {when(due, clock.now())}.",
            style="yellow",
            **PLAIN,
        )


def is_waiting(execution: ExecutionRecord | None) -> bool:
    """The run's current attempt has not ended yet."""
    return execution is None or execution.status in (RunStatus.PENDING, RunStatus.RUNNING)


# How long `trigger` waits for a deployed run past the task's own timeout: Lambda takes a
# moment to start an asynchronous invoke.
WAIT_MARGIN_SECONDS = 60


def wait_for_attempt(
    store: Store, task_id: str, slot: str, seconds: float
) -> ExecutionRecord | None:
    """The run once its current attempt has ended, or as it is after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        execution = store.get_execution(task_id, slot)
        left = deadline - time.monotonic()
        if not is_waiting(execution) or left <= 0:
            return execution
        sleep(min(CLOUDWATCH_POLL_SECONDS, left))


def report_manual_run(
    on: StackChoice,
    target: Target,
    task: TaskRecord,
    run: ManualRun,
    execution: ExecutionRecord | None,
    *,
    waited: bool,
    as_json: bool,
) -> bool:
    """Print what a manual run did (its outcome and log lines, once it ended); whether it
    succeeded, or, not waited for, was taken."""
    import json

    from cronfleet_tools.views import execution_json

    ended = execution is not None and not is_waiting(execution)
    lines = read_lines_of_run(on, task, execution) if waited and ended else []
    follow = f"cronfleet logs {task.task_id} --slot {run.slot} {target.option_text} --follow"
    if as_json:
        document = execution_json(execution, task.definition.payload) if execution else {}
        document = {"task": task.task_id, "invoked": run.invoked, "slot": run.slot, **document}
        if waited:
            document["log_lines"] = [line.as_json() for line in lines]
        typer.echo(json.dumps(document, indent=2, default=str))
    else:
        state = execution.status.value if execution else "unknown"
        console.print(f"Manual run of {task.task_id}: slot {run.slot}, {state}", **PLAIN)
        for invocation in run.invocations:  # a local Lambda that failed outside the wrapper
            if invocation.failed:
                console.print(
                    f"  {invocation.function}: {invocation.error_type}: {invocation.error_message}",
                    style="red",
                    **PLAIN,
                )
        if execution is not None and ended and waited:
            show_outcome(execution)
            print_lines(lines)
        elif run.invoked and not waited:
            console.print(f"Started; follow it with: {follow}", style="dim", **PLAIN)
        elif run.invoked:
            console.print(
                f"It has not ended yet; follow it with: {follow}", style="yellow", **PLAIN
            )
    if not run.invoked:
        return False
    if not waited:
        return execution is None or execution.status not in FAILED_STATES
    return ended and execution is not None and execution.status not in FAILED_STATES


def read_lines_of_run(
    on: StackChoice, task: TaskRecord, execution: ExecutionRecord | None
) -> list[LogLine]:
    if execution is None or not execution.attempts:
        return []
    logs = run_logs_for(on, task)
    return settled_lines(logs, execution) if on.stack is not None else read_lines(logs, execution)
