"""The local stack for a command that only reads: the running one, or a stopped one's data.

`cronfleet run` keeps its tables in ``<state dir>/dynamodb/`` (DynamoDB Local's ``-dbPath``), and
they stay when it stops. ``status``, ``describe``, ``history`` and ``audit`` read a stopped stack
by starting a DynamoDB Local of their own on those files for as long as the command runs, and
stopping it again. A running stack is read through its ``stack.json``, as every command does.

Two locks keep a reader and a runner apart:

- ``runner.lock``, which a runner holds from start to stop. The reader takes it too, for its
  few seconds, with ``reading`` in its record: a `cronfleet run` started meanwhile waits for it
  instead of being refused (:mod:`cronfleet_tools.local.stack`). A reader that finds the lock
  held by a runner reads that runner's stack, once its ``stack.json`` is there.
- ``dynamodb/cronfleet-engine.lock``, held by every engine on those files
  (:mod:`cronfleet_tools.local.dynamodb_local`): never two engines on the same data.

Reading changes nothing in the directory: no ``stack.json`` is written (no stack runs there),
the engine's log is a temporary file (the runner's ``dynamodb.log`` stays as it was), and the
two lock files only get the reader's record, which the next runner reads past.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cronfleet.store import Store
from cronfleet_tools.local import STACK_FILE
from cronfleet_tools.local.dynamodb_local import DynamoDBLocal, DynamoDBLocalError
from cronfleet_tools.local.lockfile import LockFile, LockHeld
from cronfleet_tools.local.stack import (
    DATA_DIR,
    READER_KEY,
    READER_WAIT_SECONDS,
    RUNNER_LOCK,
    TABLE_PREFIX,
    LocalStackError,
    LocalStackInfo,
    attach,
    read_stack_file,
)

# The tables a runner creates, by their logical ids in the template (see LocalStack).
TASKS_TABLE = f"{TABLE_PREFIX}TasksTable"
EXECUTIONS_TABLE = f"{TABLE_PREFIX}ExecutionsTable"
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class ReadableStack:
    """A local stack's store, and the runner serving it: None when the stack is stopped and
    an engine of the reading command's own serves its data."""

    store: Store
    running: LocalStackInfo | None


@contextmanager
def read_local_stack(
    state_dir: Path, reader: str, *, wait_seconds: float = READER_WAIT_SECONDS
) -> Iterator[ReadableStack]:
    """The local stack of ``state_dir`` for ``reader`` (the command, as a person would type it).

    A state directory holding no stack, neither running nor stopped, is a LocalStackError that
    names it; so is a ``stack.json`` that is not one while a runner holds the directory.
    """
    data_dir = state_dir / DATA_DIR
    if not holds_data(data_dir):
        if read_stack_file(state_dir) is None:
            raise LocalStackError(
                f"no local stack in {state_dir}/: it has no {STACK_FILE} (a running stack) and "
                f"no {DATA_DIR}/ data (a stopped one); start one with `make run` (or "
                "`cronfleet run`), or pass the --state-dir it ran with"
            )
        # A stack file without data: a runner still starting, or a dead one's. attach() says.
        info = attach(state_dir)
        yield ReadableStack(info.store(), info)
        return
    lock = LockFile(state_dir / RUNNER_LOCK)
    running = _take_or_find_runner(lock, state_dir, reader, wait_seconds)
    if running is not None:
        yield ReadableStack(running.store(), running)
        return
    try:
        engine = DynamoDBLocal(db_path=data_dir)  # its log: a temporary file, removed at stop
        try:
            engine.start()
        except DynamoDBLocalError as exc:
            raise LocalStackError(
                f"cannot read the stopped local stack in {state_dir}/: {exc}"
            ) from exc
        try:
            yield ReadableStack(_store(engine, data_dir), None)
        finally:
            engine.stop()
    finally:
        lock.release()


def holds_data(data_dir: Path) -> bool:
    """Whether DynamoDB Local has kept a database in ``data_dir`` (one ``.db`` file per
    database; -sharedDb makes it one)."""
    return data_dir.is_dir() and any(data_dir.glob("*.db"))


def _take_or_find_runner(
    lock: LockFile, state_dir: Path, reader: str, wait_seconds: float
) -> LocalStackInfo | None:
    """Take ``lock`` (None: the stack is stopped, and stays so while we hold it), or return
    the runner that holds it. A holder without a stack file yet (a runner starting or stopping,
    another reader) is waited for, up to ``wait_seconds``."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            lock.acquire({READER_KEY: reader})
            return None
        except LockHeld as held:
            info = read_stack_file(state_dir)
            if info is not None and info.pid == held.pid:
                return info
            if time.monotonic() >= deadline:
                what = (
                    f"`{held.record[READER_KEY]}`"
                    if READER_KEY in held.record
                    else f"a runner that has written no {STACK_FILE}"
                )
                raise LocalStackError(
                    f"the local stack in {state_dir}/ is busy: {lock.path} has been held by "
                    f"{what} (process {held.pid if held.pid is not None else '(unknown)'}) for "
                    f"{wait_seconds:g} s; try again in a moment"
                ) from None
            time.sleep(POLL_SECONDS)
        except OSError as exc:
            raise LocalStackError(
                f"cannot read the stopped local stack in {state_dir}/: cannot lock "
                f"{lock.path} ({exc.strerror or exc})"
            ) from None


def _store(engine: DynamoDBLocal, data_dir: Path) -> Store:
    client = engine.client()
    found = set(client.list_tables()["TableNames"])
    missing = [name for name in (TASKS_TABLE, EXECUTIONS_TABLE) if name not in found]
    if missing:
        raise LocalStackError(
            f"the DynamoDB Local data in {data_dir}/ has no {' or '.join(missing)} table: it "
            "is not the data of a `cronfleet run`"
        )
    return Store(TASKS_TABLE, EXECUTIONS_TABLE, client=client)
