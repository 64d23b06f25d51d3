"""How long the local stack's DynamoDB Local lives: never longer than the runner that started it.

Each test starts `cronfleet run` as a person does, in a process of its own on a state directory
of its own, on a template with the tables and no tasks (so nothing runs, and nothing leaves the
machine), and watches the processes through /proc. The Java engine is found as the runner's
child, not through the runner's own records of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from cronfleet_tools.local import STACK_FILE
from cronfleet_tools.local.dynamodb_local import (
    ENGINE_LOCK,
    default_install_dir,
    find_jar,
    free_loopback_port,
)
from cronfleet_tools.local.lockfile import LockFile
from cronfleet_tools.template import load_template

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not Path("/proc/self/stat").exists(), reason="watches processes through /proc (Linux)"
    ),
]

REPO_ROOT = Path(__file__).resolve().parents[2]
CRONFLEET_RUN = [sys.executable, "-m", "cronfleet_tools", "run"]
# Bounds on waits, not expectations: a start takes a few seconds, a stop well under one.
GENEROUS_SECONDS = 120


# --- processes, as /proc shows them ------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    """A process by pid and start time, so a pid reused by another process is not mistaken
    for it."""

    pid: int
    started: str

    @classmethod
    def of(cls, pid: int) -> Process:
        stat = _stat(pid)
        assert stat is not None, f"process {pid} is not running"
        return cls(pid, stat[19])

    @property
    def alive(self) -> bool:
        # A zombie has exited: only its parent's wait is missing (and a killed runner's
        # orphans are reaped by whatever adopts them, or by nobody in some containers).
        stat = _stat(self.pid)
        return stat is not None and stat[19] == self.started and stat[0] not in "ZX"

    def argv(self) -> list[str]:
        return Path(f"/proc/{self.pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields from the state on (the name, in brackets, can hold spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def children_of(pid: int) -> list[Process]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == str(pid):
                found.append(Process(int(entry.name), stat[19]))
    return found


def java_on(db_path: Path) -> list[Process]:
    """Every live java whose command line names ``db_path``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, AssertionError):
                process = Process.of(int(entry.name))
                if process.alive and _is_java(process) and str(db_path) in process.argv():
                    found.append(process)
    return found


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GENEROUS_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"gave up after {GENEROUS_SECONDS}s waiting: {what}"
        time.sleep(0.2)


# --- a runner in a process of its own ------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's template, cut down to its tables: a stack with no tasks."""
    full = load_template(REPO_ROOT / "template.yaml")
    resources = {
        logical_id: resource
        for logical_id, resource in full["Resources"].items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }
    path = tmp_path_factory.mktemp("template") / "template.yaml"
    path.write_text(yaml.safe_dump({"Resources": resources}, sort_keys=False))
    return path


@dataclass
class Runner:
    process: subprocess.Popen[str]
    state_dir: Path
    output: Path

    @property
    def stack_file(self) -> Path:
        return self.state_dir / STACK_FILE

    def wait_until_up(self) -> Process:
        """Wait for its stack.json, then return its DynamoDB Local (its java child)."""
        wait_for(
            lambda: (
                stack_pid(self.state_dir) == self.process.pid or self.process.poll() is not None
            ),
            f"{self.stack_file} of process {self.process.pid}",
        )
        assert self.process.poll() is None, self.text()
        (java,) = [child for child in children_of(self.process.pid) if _is_java(child)]
        return java

    def wait(self) -> int:
        return self.process.wait(timeout=GENEROUS_SECONDS)

    def text(self) -> str:
        return self.output.read_text()


def stack_pid(state_dir: Path) -> int | None:
    """The runner pid in a state directory's stack.json."""
    try:
        return int(json.loads((state_dir / STACK_FILE).read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None  # not there yet, or half written


def _is_java(process: Process) -> bool:
    try:
        argv = process.argv()
    except OSError:
        return False
    return bool(argv) and Path(argv[0]).name == "java"  # a kernel thread's is empty


@pytest.fixture
def start_runner(template: Path, tmp_path: Path) -> Iterator[Callable[[Path], Runner]]:
    started: list[Runner] = []

    def start(state_dir: Path) -> Runner:
        output = tmp_path / f"runner-{len(started)}.out"
        with output.open("w") as sink:
            process = subprocess.Popen(
                [*CRONFLEET_RUN, "--template", str(template), "--state-dir", str(state_dir)],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=tmp_path,
                # its own session, as if in a terminal of its own: the signals are the test's
                start_new_session=True,
                env={**os.environ, "COLUMNS": "200"},
            )
        runner = Runner(process, state_dir, output)
        started.append(runner)
        return runner

    yield start
    for runner in started:
        if runner.process.poll() is None:
            runner.process.kill()
        runner.process.wait()


# --- the runner's signals ------------------------------------------------------------------------


def test_a_hangup_stops_the_runner_and_its_engine_and_removes_the_stack_file(
    start_runner: Callable[[Path], Runner], tmp_path: Path
) -> None:
    # given a running local stack
    runner = start_runner(tmp_path / ".cronfleet")
    engine = runner.wait_until_up()

    # when it is sent a hangup (`kill -HUP`, with no terminal to lose)
    runner.process.send_signal(signal.SIGHUP)

    # then it stops as on Ctrl-C: cleanly, its engine stopped, its stack file removed
    assert runner.wait() == 0, runner.text()
    assert "Stopped after" in runner.text()
    assert not engine.alive
    assert not runner.stack_file.exists()


def test_closing_its_terminal_stops_the_runner_and_its_engine_cleanly(
    template: Path, tmp_path: Path
) -> None:
    # given a local stack running in a terminal (a pseudo-terminal this test holds the other
    # end of), as `make run` does
    state_dir = tmp_path / ".cronfleet"
    controller, terminal = pty.openpty()

    def take_the_terminal() -> None:
        # In the child, once it leads a session of its own: the pty becomes its terminal.
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [*CRONFLEET_RUN, "--template", str(template), "--state-dir", str(state_dir)],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        cwd=tmp_path,
        start_new_session=True,
        preexec_fn=take_the_terminal,
    )
    os.close(terminal)
    try:
        shown = bytearray()

        def up() -> bool:
            # Keep reading what it shows: a terminal nobody reads fills up and blocks it.
            while select.select([controller], [], [], 0)[0]:
                try:
                    shown.extend(os.read(controller, 65536))
                except OSError:
                    break
            return stack_pid(state_dir) == process.pid or process.poll() is not None

        wait_for(up, f"the stack file of process {process.pid}")
        assert process.poll() is None, shown.decode(errors="replace")
        (engine,) = [child for child in children_of(process.pid) if _is_java(child)]

        # when the terminal closes (the kernel hangs up the session)
        os.close(controller)
        controller = -1

        # then the runner stops cleanly, though it can no longer print, and takes its engine
        # and its stack file with it
        assert process.wait(timeout=GENEROUS_SECONDS) == 0
        assert not engine.alive
        assert not (state_dir / STACK_FILE).exists()
    finally:
        if controller != -1:
            os.close(controller)
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_runner_killed_outright_takes_its_engine_with_it(
    start_runner: Callable[[Path], Runner], tmp_path: Path
) -> None:
    # given a running local stack
    runner = start_runner(tmp_path / ".cronfleet")
    engine = runner.wait_until_up()

    # when the runner is killed, with no chance to stop anything
    runner.process.kill()
    runner.wait()

    # then its DynamoDB Local does not outlive it
    wait_for(lambda: not engine.alive, f"DynamoDB Local (process {engine.pid}) to die")


@pytest.mark.parametrize("thread", ["main", "other"])
def test_an_engine_dies_with_the_process_that_started_it_from_any_thread(
    tmp_path: Path, thread: str
) -> None:
    # given a process that started a DynamoDB Local (from its main thread, or another one,
    # where the kernel's parent-death signal cannot be used and the engine watches its stdin)
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER_SCRIPT, str(tmp_path / "db"), thread],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert line.strip().isdigit(), line
        engine = Process.of(int(line))

        # when that process is killed
        owner.kill()
        owner.wait()

        # then the engine goes too
        wait_for(lambda: not engine.alive, f"DynamoDB Local (process {engine.pid}) to die")
    finally:
        if owner.poll() is None:
            owner.kill()
        owner.wait()


OWNER_SCRIPT = """
import sys, threading, time
from cronfleet_tools.local.dynamodb_local import DynamoDBLocal
engine = DynamoDBLocal(db_path=sys.argv[1])
if sys.argv[2] == "main":
    engine.start()
else:
    starter = threading.Thread(target=engine.start)
    starter.start()
    starter.join()
print(engine.pid, flush=True)
time.sleep(600)
"""


# --- one stack per state directory ---------------------------------------------------------------


def test_a_second_run_on_the_same_state_dir_is_refused_and_the_first_keeps_running(
    start_runner: Callable[[Path], Runner], tmp_path: Path
) -> None:
    # given a running local stack
    state_dir = tmp_path / ".cronfleet"
    first = start_runner(state_dir)
    engine = first.wait_until_up()

    # when a second `cronfleet run` starts on the same state directory
    second = start_runner(state_dir)

    # then it refuses, naming the running one's process and the directory
    assert second.wait() == 2, second.text()
    assert (
        f"a local stack is already running in {state_dir}/ (process {first.process.pid}); "
        "stop it, or use another --state-dir"
    ) in " ".join(second.text().split())
    assert java_on(state_dir / "dynamodb") == [engine]
    # and the first one carries on, its engine and stack file untouched
    assert first.process.poll() is None
    assert engine.alive
    assert json.loads(first.stack_file.read_text())["pid"] == first.process.pid


def test_a_state_dir_left_by_a_killed_runner_whose_engine_survived_is_recovered(
    start_runner: Callable[[Path], Runner], tmp_path: Path
) -> None:
    # given what a runner killed outright leaves when its engine survives it (as it did before
    # engines were tied to their runner, and may elsewhere than Linux): its stack.json, and
    # a DynamoDB Local still running on the data, recorded as that runner's engine
    state_dir = tmp_path / ".cronfleet"
    killed = start_runner(state_dir)
    killed.wait_until_up()
    killed.process.kill()
    killed.wait()
    stale = json.loads(killed.stack_file.read_text())
    with surviving_engine(state_dir / "dynamodb") as survivor:
        # when the next run starts on that state directory
        runner = start_runner(state_dir)
        engine = runner.wait_until_up()

        # then the surviving engine was stopped, and the new stack has its own engine on the
        # data and a stack file of its own
        survivor.wait(timeout=GENEROUS_SECONDS)
        assert java_on(state_dir / "dynamodb") == [engine]
        assert stale["pid"] == killed.process.pid
        assert json.loads(runner.stack_file.read_text())["pid"] == runner.process.pid

        # and it stops cleanly like any other
        runner.process.send_signal(signal.SIGTERM)
        assert runner.wait() == 0, runner.text()
        assert not engine.alive


@contextlib.contextmanager
def surviving_engine(db_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A DynamoDB Local on ``db_path`` tied to no owner, as the engine was started before this
    change, recorded in the data's lock as the engine of an owner that has gone."""
    jar = find_jar(default_install_dir())
    assert jar is not None
    process = subprocess.Popen(
        [
            *("java", f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar)),
            *("-dbPath", str(db_path), "-sharedDb", "-port", str(free_loopback_port())),
            "-disableTelemetry",
        ],
        cwd=jar.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        lock = LockFile(db_path / ENGINE_LOCK)
        lock.acquire()
        lock.release(engine=process.pid, db_path=str(db_path))
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_stale_stack_file_whose_pid_is_now_another_process_is_replaced(
    start_runner: Callable[[Path], Runner], tmp_path: Path
) -> None:
    # given the stack.json of a runner killed outright, whose pid has since been reused by
    # some other, live, process
    state_dir = tmp_path / ".cronfleet"
    killed = start_runner(state_dir)
    killed.wait_until_up()
    killed.process.kill()
    killed.wait()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        stale = json.loads(killed.stack_file.read_text())
        killed.stack_file.write_text(json.dumps({**stale, "pid": other.pid}))

        # when the next run starts there
        runner = start_runner(state_dir)
        runner.wait_until_up()

        # then it is not mistaken for a running stack: the new run is up, with its own file
        assert json.loads(runner.stack_file.read_text())["pid"] == runner.process.pid
        # and the other process was left alone
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
