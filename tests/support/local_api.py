"""A local runner with its API up, for tests that call the API over HTTP as a client would.

:func:`running` starts :class:`~cronfleet_tools.local.runner.LocalRunner` live on a thread, as
`make run` does, and hands back what it wrote to ``stack.json`` (the API's URL) once it is up;
:func:`signed` sends one request signed with SigV4 for ``execute-api``, as botocore signs it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cronfleet.dispatch.service import TickReport
from cronfleet_tools.local.dynamodb_local import ACCESS_KEY, REGION, SECRET_KEY
from cronfleet_tools.local.lambda_process import Invocation
from cronfleet_tools.local.runner import LocalRunner, RunOptions
from cronfleet_tools.local.stack import AppliedTask, LocalStack, LocalStackInfo, read_stack_file
from cronfleet_tools.local.topic import PublishedMessage
from cronfleet_tools.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_CREDENTIALS = Credentials(ACCESS_KEY, SECRET_KEY)
START_TIMEOUT_SECONDS = 120.0


def signed(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    credentials: Credentials = LOCAL_CREDENTIALS,
    region: str = REGION,
    service: str = "execute-api",
    timeout: float = 60.0,
) -> httpx.Response:
    """Send one request signed as botocore signs it (``host``, the given headers, the body)."""
    wanted = dict(headers or {})
    if body and "Content-Type" not in wanted:
        wanted["Content-Type"] = "application/json"
    signing = AWSRequest(method=method, url=url, data=body, headers=wanted)
    SigV4Auth(credentials, service, region).add_auth(signing)
    return httpx.request(
        method, url, content=body or None, headers=dict(signing.headers.items()), timeout=timeout
    )


def template_without_tasks(directory: Path, **extra_resources: Any) -> Path:
    """The repository's template without its tasks (so nothing runs but what a test makes),
    code paths made absolute, written to ``directory``."""
    template = load_template(REPO_ROOT / "template.yaml")
    resources = {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] != "Custom::ScheduledTask"
    }
    for resource in resources.values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = str(REPO_ROOT / resource["Properties"]["CodeUri"])
    template["Resources"] = {**resources, **extra_resources}
    path = directory / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


@dataclass
class Recorder:
    """The runner's reporter: notes what happened; ``on_started``/``on_finished`` run on the
    runner's thread while the stack is up (before the first tick, after the last)."""

    on_started: Callable[[LocalStack], None] | None = None
    on_finished: Callable[[LocalStack], None] | None = None
    invocations: list[Invocation] = field(default_factory=list)
    ticks: list[TickReport] = field(default_factory=list)
    alerts: list[PublishedMessage] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    _stack: LocalStack | None = None

    def started(self, stack: LocalStack, applied: list[AppliedTask]) -> None:
        self._stack = stack
        self.ready.set()
        if self.on_started is not None:
            self.on_started(stack)

    def ticked(self, report: TickReport) -> None:
        self.ticks.append(report)

    def invocation(self, invocation: Invocation) -> None:
        self.invocations.append(invocation)

    def alert(self, message: PublishedMessage) -> None:
        self.alerts.append(message)

    def finished(self) -> None:
        if self.on_finished is not None and self._stack is not None:
            self.on_finished(self._stack)

    def runs_of(self, function: str) -> list[Invocation]:
        return [invocation for invocation in self.invocations if invocation.function == function]


@dataclass(frozen=True)
class RunningStack:
    info: LocalStackInfo
    recorder: Recorder
    runner: LocalRunner

    @property
    def api_url(self) -> str:
        return self.info.api_url


@contextlib.contextmanager
def running(options: RunOptions, recorder: Recorder | None = None) -> Iterator[RunningStack]:
    """The runner, live, on a thread until the block ends."""
    recorder = recorder or Recorder()
    runner = LocalRunner(options, recorder)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            runner.run()
        except BaseException as exc:
            failure.append(exc)
            recorder.ready.set()

    thread = threading.Thread(target=run, name="local-runner", daemon=True)
    thread.start()
    try:
        if not recorder.ready.wait(START_TIMEOUT_SECONDS):
            raise TimeoutError(f"the local stack did not start in {START_TIMEOUT_SECONDS:g} s")
        if failure:
            raise failure[0]
        info = read_stack_file(options.state_dir)
        assert info is not None, "the stack is up, so stack.json is written"
        yield RunningStack(info, recorder, runner)
    finally:
        runner.stop()
        thread.join(timeout=START_TIMEOUT_SECONDS)
    if failure:
        raise failure[0]
