"""Warm workers: the local Lambda keeps a function's process between invocations, as Lambda keeps
a sandbox, and discards it when Lambda would (a timeout, a crash, an init error).

Each test function is a throwaway ``app.py`` that reports its process id and a module-level
counter, so whether an invocation was a cold start (a new process, the counter back at 1) or a
warm one (the same process, the counter carried on) is read from what the handler saw.
"""

from __future__ import annotations

import os
import signal
import textwrap
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cronfleet_tools.local.bootstrap import CLOCK_VARIABLE
from cronfleet_tools.local.functions import load_functions
from cronfleet_tools.local.lambda_process import Invocation, LocalLambda

pytestmark = pytest.mark.integration

# Counts its invocations at module level and reports them with its pid; the event says what
# else to do: sleep, exit the process, raise, or print a line.
COUNTING_CODE = """
    import os, time

    from cronfleet import clock

    INVOCATIONS = 0


    def handler(event, context):
        global INVOCATIONS
        INVOCATIONS += 1
        if event.get("print"):
            print(event["print"])
        if event.get("sleep"):
            time.sleep(event["sleep"])
        if event.get("exit") is not None:
            os._exit(event["exit"])
        if event.get("raise"):
            raise ValueError(event["raise"])
        return {
            "pid": os.getpid(),
            "invocations": INVOCATIONS,
            "n": event.get("n"),
            "now": clock.now().isoformat(),
            "environment": dict(os.environ),
            "request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
        }
"""


def template_of(tmp_path: Path, code: str = COUNTING_CODE, **properties: Any) -> dict[str, Any]:
    code_dir = tmp_path / "fn"
    code_dir.mkdir(exist_ok=True)
    (code_dir / "app.py").write_text(textwrap.dedent(code))
    resource = {"CodeUri": "fn", "Handler": "app.handler", "Timeout": 5, **properties}
    return {"Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": resource}}}


class SettableClock:
    """The runner's clock in a replay: the time of the tick being handled."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def local_lambda(tmp_path: Path) -> Iterator[Callable[..., LocalLambda]]:
    """Build LocalLambdas over a template's functions; each is shut down (killed) afterwards."""
    started: list[LocalLambda] = []

    def build(template: dict[str, Any], **options: Any) -> LocalLambda:
        functions = load_functions(template, tmp_path, resolve={})
        service = LocalLambda(
            functions, options.pop("runtime_environment", {}), tmp_path / "logs", **options
        )
        started.append(service)
        return service

    yield build
    for service in started:
        service.shutdown(kill=True)


def succeeded(invocation: Invocation) -> dict[str, Any]:
    assert not invocation.failed, (invocation.error_type, invocation.error_message)
    result: dict[str, Any] = invocation.result
    return result


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def zombie_or_gone(pid: int) -> bool:
    """Whether the process has exited (reaped or not yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in {"Z", "X"}


# --- reuse, and when a worker is discarded ---------------------------------------------------


def test_the_first_invocation_starts_a_process_and_later_ones_reuse_it(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    service = local_lambda(template_of(tmp_path))

    first, second, third = (succeeded(service.run("Fn", {"n": n})) for n in range(3))

    # the same process served all three, and its module-level state carried on (as in Lambda)
    assert first["pid"] == second["pid"] == third["pid"]
    assert [first["invocations"], second["invocations"], third["invocations"]] == [1, 2, 3]
    assert [first["n"], second["n"], third["n"]] == [0, 1, 2]
    # each invocation had its own request id and its own remaining time
    assert len({first["request_id"], second["request_id"], third["request_id"]}) == 3
    assert all(0 < seen["remaining_ms"] <= 5000 for seen in (first, second, third))
    assert service.worker_pids() == {first["pid"]}


def test_a_timeout_discards_the_worker_and_the_next_invocation_starts_afresh(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    service = local_lambda(template_of(tmp_path, Timeout=1))
    before = succeeded(service.run("Fn", {}))

    timed_out = service.run("Fn", {"sleep": 30})
    after = succeeded(service.run("Fn", {}))

    assert timed_out.error_type == "Sandbox.Timedout"
    assert timed_out.error_message is not None
    assert timed_out.error_message.endswith("Task timed out after 1.00 seconds")
    assert not alive(before["pid"])
    assert after["pid"] != before["pid"]
    assert after["invocations"] == 1  # a new sandbox: its module state starts over


def test_a_crash_discards_the_worker(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    service = local_lambda(template_of(tmp_path))
    before = succeeded(service.run("Fn", {}))

    crashed = service.run("Fn", {"exit": 3})
    after = succeeded(service.run("Fn", {}))

    assert crashed.error_type == "Runtime.ExitError"
    assert crashed.error_message == (
        f"RequestId: {crashed.request_id} Error: Runtime exited with error: exit status 3"
    )
    assert not alive(before["pid"])
    assert (after["pid"] != before["pid"], after["invocations"]) == (True, 1)


def test_an_unhandled_exception_keeps_the_worker(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    service = local_lambda(template_of(tmp_path))
    before = succeeded(service.run("Fn", {}))

    failed = service.run("Fn", {"raise": "n must be positive"})
    after = succeeded(service.run("Fn", {}))

    # reported as Lambda reports a function error, and the sandbox lives on
    assert (failed.error_type, failed.error_message) == ("ValueError", "n must be positive")
    assert after["pid"] == before["pid"]
    assert after["invocations"] == 3


def test_an_idle_worker_killed_from_outside_is_replaced_without_failing_the_invocation(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    service = local_lambda(template_of(tmp_path))
    before = succeeded(service.run("Fn", {}))
    os.kill(before["pid"], signal.SIGKILL)
    while not zombie_or_gone(before["pid"]):
        threading.Event().wait(0.01)

    after = succeeded(service.run("Fn", {}))

    assert after["pid"] != before["pid"]
    assert after["invocations"] == 1


def test_an_init_error_keeps_no_worker(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    service = local_lambda(template_of(tmp_path, "import cronfleet_no_such_module\n"))

    first, second = service.run("Fn", {}), service.run("Fn", {})

    for invocation in (first, second):
        assert invocation.error_type == "Runtime.ImportModuleError"
    assert service.worker_pids() == set()


def test_a_changed_environment_gets_a_new_worker(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    service = local_lambda(template_of(tmp_path, Environment={"Variables": {"MODE": "one"}}))
    before = succeeded(service.run("Fn", {}))

    service.functions["Fn"].environment["MODE"] = "two"
    after = succeeded(service.run("Fn", {}))

    assert (before["environment"]["MODE"], after["environment"]["MODE"]) == ("one", "two")
    assert after["pid"] != before["pid"]
    assert not alive(before["pid"])  # the old configuration's worker will not serve again


def test_a_worker_serves_its_own_function_only(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    # given two functions with the same code
    template = template_of(tmp_path)
    template["Resources"]["Other"] = template["Resources"]["Fn"]
    service = local_lambda(template)

    # when they are invoked in turn
    seen = [(name, succeeded(service.run(name, {}))) for name in ("Fn", "Other", "Fn", "Other")]

    # then each has a process of its own, reused for its own invocations only
    pids = {name: {result["pid"] for n, result in seen if n == name} for name in ("Fn", "Other")}
    assert len(pids["Fn"]) == len(pids["Other"]) == 1
    assert pids["Fn"] != pids["Other"]
    assert [result["invocations"] for _, result in seen] == [1, 1, 2, 2]
    assert {result["environment"]["AWS_LAMBDA_FUNCTION_NAME"] for _, result in seen} == {
        "Fn",
        "Other",
    }


# --- what each warm invocation sees ----------------------------------------------------------


def test_each_warm_invocation_reads_the_simulated_clock_from_its_own_start(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    # given a replay whose second invocation is a day later, and a third back at the start
    start = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    clock = SettableClock(start)
    service = local_lambda(template_of(tmp_path), clock=clock, simulated=True)

    seen = []
    for at in (start, start + timedelta(days=1), start):
        clock.at = at
        seen.append(succeeded(service.run("Fn", {})))

    # then one process served them all, and each saw the time its own invocation began
    assert len({result["pid"] for result in seen}) == 1
    for at, result in zip((start, start + timedelta(days=1), start), seen, strict=True):
        now = datetime.fromisoformat(result["now"])
        assert at <= now < at + timedelta(minutes=1)
        assert result["environment"][CLOCK_VARIABLE] == at.isoformat()


def test_a_warm_invocation_sees_the_environment_a_cold_one_sees(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    template = template_of(tmp_path, Environment={"Variables": {"OWN": "from-the-function"}})
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    clock = SettableClock(start)
    options = {"clock": clock, "simulated": True, "runtime_environment": {"ENDPOINT": "local"}}
    warm = local_lambda(template, **options)
    cold = local_lambda(template, warm=False, **options)

    succeeded(warm.run("Fn", {}))  # the cold start of the warm worker
    clock.at = start + timedelta(hours=1)
    warm_seen = succeeded(warm.run("Fn", {}))
    cold_seen = succeeded(cold.run("Fn", {}))

    # the same variables, but for the one that says when each invocation began
    assert warm_seen["invocations"] == 2
    assert cold_seen["invocations"] == 1
    assert warm_seen["environment"].pop(CLOCK_VARIABLE) == clock.at.isoformat()
    assert cold_seen["environment"].pop(CLOCK_VARIABLE) == clock.at.isoformat()
    assert warm_seen["environment"] == cold_seen["environment"]
    assert warm_seen["environment"]["OWN"] == "from-the-function"


def test_two_warm_invocations_write_two_logs_each_with_its_own_start_and_end(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    service = local_lambda(template_of(tmp_path))

    first = service.run("Fn", {"print": "the first one"})
    second = service.run("Fn", {"print": "the second one"})

    assert succeeded(first)["pid"] == succeeded(second)["pid"]
    for invocation, line, other in (
        (first, "the first one", "the second one"),
        (second, "the second one", "the first one"),
    ):
        assert invocation.log_path == tmp_path / "logs" / "Fn" / f"{invocation.request_id}.log"
        log = invocation.log_path.read_text().splitlines()
        assert log[0] == f"START RequestId: {invocation.request_id} Version: $LATEST"
        assert line in log
        assert other not in log
        assert log[-1].startswith(f"END RequestId: {invocation.request_id} Duration: ")


def test_cold_gives_every_invocation_a_new_process(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    service = local_lambda(template_of(tmp_path), warm=False)

    seen = [succeeded(service.run("Fn", {})) for _ in range(3)]

    assert len({result["pid"] for result in seen}) == 3
    assert [result["invocations"] for result in seen] == [1, 1, 1]
    assert service.worker_pids() == set()
    assert not any(alive(result["pid"]) for result in seen)


# --- concurrency and shutdown ----------------------------------------------------------------


def test_parallel_invokes_use_at_most_the_concurrency_in_workers(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    # given a local Lambda that runs two invocations at a time
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def record(invocation: Invocation) -> None:
        with lock:
            results.append(succeeded(invocation))

    service = local_lambda(template_of(tmp_path), max_concurrency=2, on_invocation=record)

    # when eight invokes of one function arrive at once
    for n in range(8):
        service.invoke("Fn", {"n": n, "sleep": 0.2})
    assert service.drain(timeout=60)

    # then each ran once with its own event, on no more than two processes, reused
    assert sorted(result["n"] for result in results) == list(range(8))
    pids = {result["pid"] for result in results}
    assert 1 <= len(pids) <= 2
    # each worker counted its own invocations, one after another: it served them in turn
    for pid in pids:
        counts = sorted(result["invocations"] for result in results if result["pid"] == pid)
        assert counts == list(range(1, len(counts) + 1))
    assert service.worker_pids() == pids


def test_shutdown_leaves_no_worker_alive(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    service = local_lambda(template_of(tmp_path), max_concurrency=3)
    for n in range(6):
        service.invoke("Fn", {"n": n, "sleep": 0.2})
    assert service.drain(timeout=60)
    pids = service.worker_pids()
    assert pids
    assert all(alive(pid) for pid in pids)

    service.shutdown()

    assert service.worker_pids() == set()
    assert not any(alive(pid) for pid in pids)  # stopped and reaped: no zombie either


def test_shutdown_with_kill_ends_a_busy_worker_too(
    tmp_path: Path, local_lambda: Callable[..., LocalLambda]
) -> None:
    pid_file = tmp_path / "pid"
    code = COUNTING_CODE.replace(
        "INVOCATIONS += 1",
        "INVOCATIONS += 1\n"
        "        if event.get('pid_file'):\n"
        "            open(event['pid_file'], 'w').write(str(os.getpid()))",
    )
    service = local_lambda(template_of(tmp_path, code, Timeout=60))
    idle = succeeded(service.run("Fn", {}))["pid"]
    service.invoke("Fn", {"pid_file": str(pid_file), "sleep": 60})
    service.invoke("Fn", {"sleep": 60})
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while (not pid_file.exists() or len(service.worker_pids()) < 2) and datetime.now(
        UTC
    ) < deadline:
        threading.Event().wait(0.05)
    pids = service.worker_pids() | {idle}

    service.shutdown(kill=True)

    assert len(pids) == 2  # the first worker, now busy, and a second one started for the other
    assert not any(alive(pid) for pid in pids)
    assert not service.busy()


def test_cronfleet_run_cold_asks_the_runner_for_a_process_per_invocation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a runner that only records the options `cronfleet run` gives it
    from cronfleet_tools.cli.app import app
    from cronfleet_tools.local import runner

    given = []

    class RecordingRunner:
        def __init__(self, options: runner.RunOptions, reporter: object) -> None:
            given.append(options)

        def stop_on_signals(self) -> Any:
            import contextlib

            return contextlib.nullcontext()

        def run(self) -> runner.RunSummary:
            return runner.RunSummary()

    monkeypatch.setattr(runner, "LocalRunner", RecordingRunner)
    template = Path(__file__).resolve().parents[2] / "template.yaml"
    arguments = ["run", "--template", str(template), "--state-dir", str(tmp_path)]

    # when it runs with and without --cold
    for extra in (["--cold"], []):
        result = CliRunner().invoke(app, [*arguments, *extra])
        assert result.exit_code == 0, result.output

    # then --cold asks for a process per invocation, and warm workers are the default
    assert [options.cold for options in given] == [True, False]
