"""`cronfleet run`: the whole stack on one machine, live or on a simulated clock.

- DynamoDB Local holds the tables (:mod:`cronfleet_tools.local.stack`); the template's tasks are
  applied through the registry's custom-resource code, as a deploy applies them.
- The dispatcher ticks once a minute with the event EventBridge Scheduler sends. It runs in
  this process, because a replay ticks up to ten thousand times; everything it invokes runs as
  Lambda would run it, in a process of its own: a function's first invocation starts one, and
  later ones reuse it while it is warm, as Lambda reuses a sandbox (``cold``: a new process
  every time, as `sam local invoke` runs it; :mod:`cronfleet_tools.local.lambda_process`),
  with failures sent on to the recorder.
- Alerts go through the real SNS notifier to a local topic that prints them
  (:mod:`cronfleet_tools.local.topic`).
- The template's REST API, if it has one, is served on a loopback port as
  `sam local start-api` serves it (:mod:`cronfleet_tools.local.api`); ``stack.json`` has its
  URL (``api_url``). A function that invokes another through the Lambda API reaches the
  runner's local Lambda (:mod:`cronfleet_tools.local.lambda_endpoint`).
- Http tasks read their secrets through Powertools, as deployed, from a local SSM and Secrets
  Manager endpoint serving ``secrets.json`` in the state directory
  (:mod:`cronfleet_tools.local.secrets`), and trust ``CRONFLEET_LOCAL_CA_FILE``'s CA besides
  the public ones (:mod:`cronfleet_tools.local.trust`).

On a simulated clock (``start``/``until``) slots keep their logical times. Each tick waits for
the runs it started, so a run sees the time its slot belongs to. At ``speed=None`` ("max") the
replay also skips the minutes in which nothing is due or in flight: the store says when the
next one is, and the skipped minutes are marked as ticked, not reported as missed ticks.

``stop_on_signals()`` ends a run cleanly on SIGINT, SIGTERM and SIGHUP: runs under way are
killed, DynamoDB Local is stopped and ``stack.json`` removed. A runner killed outright
(SIGKILL, a crash) takes its DynamoDB Local with it, and the next start cleans up after it
(:mod:`cronfleet_tools.local.stack`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from cronfleet import clock
from cronfleet.alerts.alerter import Alerter
from cronfleet.alerts.render import LocalLinks
from cronfleet.alerts.sns import SnsNotifier
from cronfleet.dispatch.events import TickEvent
from cronfleet.dispatch.service import Dispatcher, TickReport
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.registry.problems import Problem
from cronfleet.store import Store
from cronfleet_tools.local import iam
from cronfleet_tools.local.api import LocalApi, load_api
from cronfleet_tools.local.console import cronfleet_command
from cronfleet_tools.local.dynamodb_local import ACCESS_KEY, REGION, SECRET_KEY
from cronfleet_tools.local.functions import LOCAL_STACK_NAME, load_env_vars, load_functions
from cronfleet_tools.local.lambda_endpoint import LocalLambdaEndpoint
from cronfleet_tools.local.lambda_process import Invocation, LocalLambda
from cronfleet_tools.local.secrets import SECRETS_FILE, LocalSecrets, load_secrets
from cronfleet_tools.local.stack import AppliedTask, LocalStack, LocalStackError, LocalStackInfo
from cronfleet_tools.local.topic import TOPIC_ARN, LocalTopic, PublishedMessage
from cronfleet_tools.local.trust import (
    CA_BUNDLE_VARIABLE,
    ca_bundle_text,
    trusted_ca_from_environment,
    write_ca_bundle,
)
from cronfleet_tools.template import load_template, validate_template

MINUTE = timedelta(minutes=1)
DISPATCHER = "DispatcherFunction"
REGISTRY = "RegistryFunction"
# Ctrl-C, `kill` or a service manager, and the terminal going away. SIGHUP's default would end
# the runner on the spot, without stopping DynamoDB Local, which runs in its own session and so
# never sees the hangup itself.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class TemplateProblems(LocalStackError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


@dataclass(frozen=True)
class RunOptions:
    template: Path = Path("template.yaml")
    state_dir: Path = Path(".cronfleet")
    env_vars: Path | None = None
    start: datetime | None = None  # None: live, on the real clock
    until: datetime | None = None  # required with start
    speed: float | None = 1.0  # simulated minutes per real minute; None runs as fast as it can
    trigger_all: bool = False  # one manual run of every enabled task at startup
    concurrency: int = 4
    # A new process for every invocation, instead of warm workers kept between them
    # (cronfleet_tools.local.warm): slower, and no module state survives an invocation.
    cold: bool = False
    # A CA the functions trust besides the public ones (cronfleet_tools.local.trust).
    ca_file: Path | None = field(default_factory=trusted_ca_from_environment)


class Reporter(Protocol):
    """What the runner tells the person watching it."""

    def started(self, stack: LocalStack, applied: list[AppliedTask]) -> None: ...
    def ticked(self, report: TickReport) -> None: ...
    def invocation(self, invocation: Invocation) -> None: ...
    def alert(self, message: PublishedMessage) -> None: ...
    def finished(self) -> None: ...  # called while the stack is still up


class ReplayClock:
    """Simulated time: the tick being handled, plus the real time spent since it began."""

    def __init__(self, at: datetime) -> None:
        self.set(at)

    def set(self, at: datetime) -> None:
        self._at, self._since = at, time.monotonic()

    def __call__(self) -> datetime:
        return self._at + timedelta(seconds=time.monotonic() - self._since)


@dataclass
class RunSummary:
    ticks: int = 0
    skipped_minutes: int = 0
    invocations: int = 0
    alerts: int = 0
    applied: list[AppliedTask] = field(default_factory=list)


class LocalRunner:
    def __init__(self, options: RunOptions, reporter: Reporter) -> None:
        if (options.start is None) != (options.until is None):
            raise ValueError("--start and --until go together: a replay needs both ends")
        if options.start and options.until and options.until < options.start:
            raise ValueError("--until: must not be before --start")
        self.options = options
        self.reporter = reporter
        self.summary = RunSummary()
        self._stop = threading.Event()

    @property
    def simulated(self) -> bool:
        return self.options.start is not None

    def stop(self) -> None:
        """Ask the run loop to finish (another thread, or a signal handler)."""
        self._stop.set()

    @contextlib.contextmanager
    def stop_on_signals(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[None]:
        """Within the block, each of ``signals`` asks the run to finish; then the old handlers
        are back. A signal this process was started ignoring stays ignored: `nohup make run`
        must survive the terminal closing, as it asked to.

        A hangup means the terminal is gone, and writing to it fails (EIO): what the runner
        still prints on its way out (the final table, the summary) would end it with a
        traceback. So on SIGHUP, whichever of stdout and stderr was a terminal is pointed at
        /dev/null first.
        """
        terminals = [fd for fd in (1, 2) if os.isatty(fd)]  # a hung-up one no longer says so

        def stop(signum: int, frame: FrameType | None) -> None:
            if signum == signal.SIGHUP and terminals:
                devnull = os.open(os.devnull, os.O_WRONLY)
                try:
                    for fd in terminals:
                        os.dup2(devnull, fd)
                finally:
                    os.close(devnull)
            self.stop()

        previous = {
            signum: signal.getsignal(signum)
            for signum in signals
            if signal.getsignal(signum) is not signal.SIG_IGN
        }
        try:
            for signum in previous:
                signal.signal(signum, stop)
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def run(self) -> RunSummary:
        options = self.options
        replay = ReplayClock(_minute(options.start)) if options.start else None
        now: Callable[[], datetime] = replay or clock.now
        if replay is not None:
            # The validation, alerter, watchdog and registry read the same time: an at() that
            # is still ahead at the replay's start is a valid task of the replay.
            clock.use(replay)
        try:
            template = load_template(options.template)
            validation = validate_template(template)
            if validation.problems:
                raise TemplateProblems(validation.problems)
            api_definition = load_api(template)  # the template's REST API, if it has one
            env_vars = load_env_vars(options.env_vars)
            # Both are checked before anything starts, so a typo is one clear error.
            load_secrets(options.state_dir / SECRETS_FILE)
            ca_bundle = ca_bundle_text(options.ca_file) if options.ca_file else None
        except BaseException:
            clock.use(None)
            raise
        options.state_dir.mkdir(parents=True, exist_ok=True)
        topic = LocalTopic(options.state_dir / "alerts.jsonl", self._alerted)
        secrets = LocalSecrets(options.state_dir / SECRETS_FILE)
        api = LocalApi(api_definition) if api_definition is not None else None
        invoke_endpoint = LocalLambdaEndpoint()
        stack = LocalStack(
            options.state_dir,
            options.template,
            topic_endpoint_url=topic.endpoint_url,
            env_vars=options.env_vars,
            secrets_endpoint_url=secrets.endpoint_url,
            ca_bundle=write_ca_bundle(ca_bundle, options.state_dir),
            api_url=api.url if api is not None else "",
            lambda_endpoint_url=invoke_endpoint.endpoint_url,
        )
        try:
            with stack:
                topic.start()
                secrets.start()
                assert stack.info is not None
                roles = local_roles(stack.info, stack.template)
                lambdas = local_lambda(
                    stack.info,
                    stack.template,
                    env_vars,
                    clock=now,
                    simulated=self.simulated,
                    concurrency=options.concurrency,
                    on_invocation=self._invoked,
                    roles=roles,
                    warm=not options.cold,
                )
                try:
                    invoke_endpoint.start(lambdas)
                    if api is not None:
                        # As `sam local start-api`: each request runs its function synchronously.
                        api.start(lambdas)
                    dispatcher = self._dispatcher(stack, lambdas, topic, now, roles.get(DISPATCHER))
                    # The deploy runs as the registry function, under its own role.
                    registry = _store_as(stack, roles.get(REGISTRY))
                    self.summary.applied = stack.apply_tasks(validation, now(), store=registry)
                    self.reporter.started(stack, self.summary.applied)
                    if options.trigger_all:
                        self._trigger_all(stack, lambdas, dispatcher, now())
                    if replay is not None:
                        self._replay(stack, dispatcher, lambdas, replay)
                    else:
                        self._live(dispatcher)
                finally:
                    lambdas.shutdown(kill=self._stop.is_set())
                    try:
                        # May fail when the terminal is gone (SIGHUP): the topic still stops.
                        self.reporter.finished()
                    finally:
                        try:
                            topic.stop()
                        finally:
                            secrets.stop()
                            if api is not None:
                                api.stop()  # after the reporter's last look, as the topic
                            invoke_endpoint.stop()
        finally:
            if api is not None:
                api.stop()  # their ports, when the stack did not start
            invoke_endpoint.stop()
            clock.use(None)
        return self.summary

    # --- wiring ------------------------------------------------------------------------------

    def _dispatcher(
        self,
        stack: LocalStack,
        lambdas: LocalLambda,
        topic: LocalTopic,
        now: Callable[[], datetime],
        role: iam.Enforcement | None,
    ) -> Dispatcher:
        """The dispatcher, here in the runner's process, held to its own role as on AWS."""
        import boto3

        sns = boto3.client(
            "sns",
            endpoint_url=topic.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        if role is not None:
            role.attach(sns.meta.events)
        store = _store_as(stack, role)
        assert stack.info is not None
        notifier = SnsNotifier(sns, topic_arn=TOPIC_ARN)
        alerter = Alerter(store, notifier, local_links(stack.info), clock=now)
        http_function = http_function_of(lambdas)
        attempts = Attempts(
            store,
            iam.CheckedInvoker(lambdas, role) if role is not None else lambdas,
            clock=now,
            alerter=alerter,
            http_function=http_function,
        )
        return Dispatcher(attempts)

    def _trigger_all(
        self, stack: LocalStack, lambdas: LocalLambda, dispatcher: Dispatcher, now: datetime
    ) -> None:
        for task in stack.store.list_tasks():
            if task.deleted or task.paused or not task.definition.enabled:
                continue
            dispatcher.attempts.start_manual_run(task, now)

    # --- the tick loops ----------------------------------------------------------------------

    def _tick(self, dispatcher: Dispatcher, at: datetime) -> None:
        # The event EventBridge Scheduler sends, through the dispatcher's own event model.
        event = TickEvent.model_validate({"scheduled_time": at.isoformat().replace("+00:00", "Z")})
        report = dispatcher.tick(event.scheduled_time)
        self.summary.ticks += 1
        self.reporter.ticked(report)

    def _live(self, dispatcher: Dispatcher) -> None:
        while not self._stop.is_set():
            tick = _minute(clock.now())
            self._tick(dispatcher, tick)
            # Wake at the next minute boundary, like the scheduler; stop() ends the wait.
            self._stop.wait(max(0.0, (tick + MINUTE - clock.now()).total_seconds()))

    def _replay(
        self, stack: LocalStack, dispatcher: Dispatcher, lambdas: LocalLambda, replay: ReplayClock
    ) -> None:
        assert self.options.start is not None
        assert self.options.until is not None
        tick, until = _minute(self.options.start), _minute(self.options.until)
        pace = None if self.options.speed is None else 60.0 / self.options.speed
        while tick <= until and not self._stop.is_set():
            began = time.monotonic()
            replay.set(tick)
            self._tick(dispatcher, tick)
            lambdas.drain()
            following = tick + MINUTE
            if pace is None:
                wakeup = stack.store.next_wakeup()
                if wakeup is None or wakeup > following:
                    jump = min(_minute(wakeup, up=True) if wakeup else until + MINUTE, until)
                    if jump > following:
                        # Nothing is due or in flight in between: those ticks would be idle.
                        stack.store.record_tick(jump - MINUTE)
                        self.summary.skipped_minutes += int((jump - following) / MINUTE)
                        following = jump
            else:
                self._stop.wait(max(0.0, pace - (time.monotonic() - began)))
            tick = following

    # --- callbacks ---------------------------------------------------------------------------

    def _invoked(self, invocation: Invocation) -> None:
        self.summary.invocations += 1
        self.reporter.invocation(invocation)

    def _alerted(self, message: PublishedMessage) -> None:
        self.summary.alerts += 1
        self.reporter.alert(message)


def local_lambda(
    info: LocalStackInfo,
    template: dict[str, Any],
    env_vars: dict[str, dict[str, str]],
    *,
    clock: Callable[[], datetime] = clock.now,
    simulated: bool = False,
    concurrency: int = 4,
    on_invocation: Callable[[Invocation], None] | None = None,
    roles: dict[str, iam.Enforcement] | None = None,
    warm: bool = True,
) -> LocalLambda:
    """The local Lambda service of a running local stack: the template's functions, with the
    environment `sam local invoke` would give them, pointed at the stack's tables and topic."""
    resources = template["Resources"]
    # What a `!Ref` in an environment variable means here: the local tables, the local topic,
    # and functions by their logical ids (the names the local Lambda answers to).
    resolve = {
        "TasksTable": info.tasks_table,
        "ExecutionsTable": info.executions_table,
        **{
            logical_id: logical_id
            for logical_id, resource in resources.items()
            if resource.get("Type") == "AWS::Serverless::Function"
        },
        **{
            logical_id: TOPIC_ARN
            for logical_id, resource in resources.items()
            if resource.get("Type") == "AWS::SNS::Topic"
        },
    }
    functions = load_functions(
        template, Path(info.template).parent, resolve=resolve, env_vars=env_vars
    )
    roles = roles if roles is not None else local_roles(info, template)
    policy_dir = Path(info.state_dir) / "iam"
    policy_dir.mkdir(parents=True, exist_ok=True)
    for logical_id, function in functions.items():
        # Each function process is held to its own role, as on AWS (cronfleet_tools.local.iam).
        policy_file = policy_dir / f"{logical_id}.json"
        policy_file.write_text(json.dumps(roles[logical_id].to_json(), indent=1))
        function.environment[iam.ENFORCEMENT_VARIABLE] = str(policy_file)
    links = local_links(info)
    runtime_environment = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_ENDPOINT_URL_DYNAMODB": info.endpoint_url,
        "AWS_ENDPOINT_URL_SNS": info.topic_endpoint_url,
        # Alerts link to the run's files and commands here, not to a console there is none of.
        "CRONFLEET_LOCAL_STATE_DIR": links.state_dir,
        "CRONFLEET_LOCAL_CLI": links.cli,
    }
    if info.secrets_endpoint_url:
        # Powertools Parameters reads secrets through botocore, which honours these: the
        # HTTP caller's code is the deployed one, only the endpoint is local.
        runtime_environment["AWS_ENDPOINT_URL_SSM"] = info.secrets_endpoint_url
        runtime_environment["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = info.secrets_endpoint_url
    if info.ca_bundle:
        runtime_environment[CA_BUNDLE_VARIABLE] = info.ca_bundle
    if info.lambda_endpoint_url:
        # A function that invokes another (the schedules API's manual runs) reaches the
        # runner's LocalLambda, as `sam local start-lambda` serves them.
        runtime_environment["AWS_ENDPOINT_URL_LAMBDA"] = info.lambda_endpoint_url
    return LocalLambda(
        functions,
        runtime_environment=runtime_environment,
        log_dir=Path(info.state_dir) / "logs",
        clock=clock,
        simulated=simulated,
        max_concurrency=concurrency,
        on_invocation=on_invocation,
        region=info.region,
        authorize_destination=lambda source, target: roles[source].check_invoke(target),
        warm=warm,
    )


def local_links(info: LocalStackInfo) -> LocalLinks:
    """What the local stack's alerts link to: its state directory's files, and `cronfleet` run
    the way a new terminal here can run it."""
    return LocalLinks(info.state_dir, cronfleet_command())


def _store_as(stack: LocalStack, role: iam.Enforcement | None) -> Store:
    """A store on the stack's tables with a client of its own, held to ``role``."""
    if role is None:  # a template without that function: nothing to hold it to
        return stack.store
    client = stack.dynamodb.client()
    role.attach(client.meta.events)
    return Store(stack.store.tasks_table, stack.store.executions_table, client=client)


def local_roles(info: LocalStackInfo, template: dict[str, Any]) -> dict[str, iam.Enforcement]:
    """Every function's role from the transformed template, for the local stack's names."""
    names = {"TasksTable": info.tasks_table, "ExecutionsTable": info.executions_table}
    names |= {
        logical_id: TOPIC_ARN.rsplit(":", 1)[-1]
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::SNS::Topic"
    }
    naming = iam.local_naming(template, names, stack_name=LOCAL_STACK_NAME)
    return iam.enforcements(iam.transform(template), naming)


def http_function_of(lambdas: LocalLambda) -> str | None:
    """The built-in HTTP caller, as the template's dispatcher is told about it."""
    dispatcher = lambdas.functions.get(DISPATCHER)
    name = dispatcher.environment.get("HTTP_FUNCTION_NAME") if dispatcher else None
    return name or None


def _minute(moment: datetime, *, up: bool = False) -> datetime:
    floor = moment.astimezone(UTC).replace(second=0, microsecond=0)
    return floor + MINUTE if up and floor != moment else floor
