"""The local stack: DynamoDB Local with the template's tables, and its tasks registered.

``cronfleet run`` starts one in a state directory (``.cronfleet/`` by default) and writes
``stack.json`` there, so a second terminal can attach to the same stack with the operator
commands (``cronfleet status --local``). Data lives under the state directory (``dynamodb/``)
and survives restarts: a pause, the history and the next runs are still there next time, as
after a deploy. The commands that only read also read it while no stack runs
(:mod:`cronfleet_tools.local.stopped`).

One stack at a time per state directory: the stack holds ``runner.lock`` there (``flock``) from
``start()`` to ``stop()``, and a second one is refused with the holder's pid. The kernel drops
the lock when its holder dies, however it dies, so a ``stack.json`` found while the lock is free
was left by a stack that was killed, and is replaced; the DynamoDB Local such a stack may have
left on the data is stopped first (see :mod:`cronfleet_tools.local.dynamodb_local`). A command
reading the stopped stack holds the lock too, for a few seconds, and says so in it: a start
then waits for it (up to :data:`READER_WAIT_SECONDS`) instead of being refused.

Tasks are applied the way a deploy applies them: each ``Custom::ScheduledTask`` goes through the
registry's custom-resource code as a Create or Update request, and a task that left the
template gets a Delete.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from cronfleet.errors import CronfleetError
from cronfleet.registry.custom_resource import CustomResourceEvent, respond
from cronfleet.registry.ownership import TaskOwner
from cronfleet.registry.secrets import SecretScope
from cronfleet.registry.wiring import WiringCheck
from cronfleet.store import Store
from cronfleet.store.schedules import API_OWNER_PREFIX
from cronfleet_tools.local import STACK_FILE
from cronfleet_tools.local.dynamodb_local import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    DynamoDBLocal,
    DynamoDBLocalError,
    create_table,
    template_tables,
)
from cronfleet_tools.local.functions import environment_resolver
from cronfleet_tools.local.lockfile import LockFile, LockHeld
from cronfleet_tools.template import TemplateValidation, load_template, validate_template
from cronfleet_tools.template.wiring import template_wiring_check

RUNNER_LOCK = "runner.lock"
DATA_DIR = "dynamodb"  # DynamoDB Local's -dbPath, under the state directory
# In runner.lock's record of a command reading a stopped stack: which command it is.
READER_KEY = "reading"
# A reader holds the lock for as long as its engine takes to start and its command to read.
READER_WAIT_SECONDS = 60.0
TABLE_PREFIX = "cronfleet-local-"
LOCAL_STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/cronfleet-local/local"


class LocalStackError(CronfleetError, RuntimeError):
    """The local stack cannot be started or reached; the message says what to do."""


@dataclass(frozen=True)
class LocalStackInfo:
    """What ``stack.json`` tells a second terminal about a running local stack."""

    endpoint_url: str
    region: str
    tasks_table: str
    executions_table: str
    template: str
    pid: int
    topic_endpoint_url: str = ""  # where the functions publish alerts (the runner prints them)
    env_vars: str | None = None  # the --env-vars file the runner was given
    state_dir: str = ".cronfleet"
    # Where the functions read their secrets (SSM and Secrets Manager, cronfleet_tools.local
    # .secrets), and the CA bundle they trust (cronfleet_tools.local.trust), if one was given.
    secrets_endpoint_url: str = ""
    ca_bundle: str = ""
    # The template's REST API, served by the runner (cronfleet_tools.local.api): the stage's
    # URL, as ScheduleApiUrl is on AWS. Empty when the template has no API.
    api_url: str = ""
    # Lambda's Invoke for the functions that invoke others (cronfleet_tools.local
    # .lambda_endpoint), served by the runner.
    lambda_endpoint_url: str = ""

    def store(self) -> Store:
        # DynamoDB Local accepts any credentials; these keep botocore from looking for real ones.
        os.environ.setdefault("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        return Store.connect(
            self.tasks_table,
            self.executions_table,
            endpoint_url=self.endpoint_url,
            region=self.region,
            interactive=True,
        )


def read_stack_file(state_dir: Path) -> LocalStackInfo | None:
    """What ``stack.json`` in ``state_dir`` says, None without one, an error if it is not one."""
    path = state_dir / STACK_FILE
    try:
        return LocalStackInfo(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
        raise LocalStackError(f"{path}: not a cronfleet stack file ({exc})") from None


def attach(state_dir: Path) -> LocalStackInfo:
    """The running local stack of ``state_dir``, or a clear error if there is none."""
    info = read_stack_file(state_dir)
    if info is None:
        raise LocalStackError(
            f"no local stack is running in {state_dir}/: start one with `make run` "
            "(or `cronfleet run`), or pass --state-dir"
        )
    if not _alive(info.pid):
        raise LocalStackError(
            f"the local stack in {state_dir}/ is not running (its process {info.pid} is gone); "
            "start it with `make run`"
        )
    return info


@dataclass(frozen=True)
class AppliedTask:
    task_id: str
    request: str  # Create, Update or Delete


class LocalStack:
    def __init__(
        self,
        state_dir: Path,
        template_path: Path,
        *,
        topic_endpoint_url: str = "",
        env_vars: Path | None = None,
        secrets_endpoint_url: str = "",
        ca_bundle: Path | None = None,
        api_url: str = "",
        lambda_endpoint_url: str = "",
    ) -> None:
        self.state_dir = state_dir
        self.api_url = api_url
        self.lambda_endpoint_url = lambda_endpoint_url
        self.template_path = template_path
        self.topic_endpoint_url = topic_endpoint_url
        self.secrets_endpoint_url = secrets_endpoint_url
        self.ca_bundle = ca_bundle
        self.env_vars = env_vars
        self.info: LocalStackInfo | None = None
        self.template: dict[str, Any] = load_template(template_path)
        self.dynamodb = DynamoDBLocal(
            db_path=state_dir / DATA_DIR, log_path=state_dir / "dynamodb.log"
        )
        self.tables = {
            logical_id: f"{TABLE_PREFIX}{logical_id}"
            for logical_id, _ in template_tables(self.template)
        }
        self._store: Store | None = None
        self._wiring: WiringCheck | None = None
        self._wiring_read = False
        self._lock = LockFile(state_dir / RUNNER_LOCK)

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> Self:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            # A command reading the stopped stack is done in seconds: worth waiting for. So is
            # a holder that has not written its record yet, which is only ever a moment.
            self._lock.acquire(
                wait_while=lambda record: READER_KEY in record or "pid" not in record,
                timeout=READER_WAIT_SECONDS,
            )
        except LockHeld as held:
            if READER_KEY in held.record:
                raise LocalStackError(
                    f"the local stack in {self.state_dir}/ is still being read by "
                    f"`{held.record[READER_KEY]}` (process {held.pid}) after "
                    f"{READER_WAIT_SECONDS:g} s; try again when it is done"
                ) from None
            raise LocalStackError(
                f"a local stack is already running in {self.state_dir}/ (process "
                f"{held.pid if held.pid is not None else '(unknown)'}); stop it, or use another "
                "--state-dir"
            ) from None
        try:
            self._start()
        except DynamoDBLocalError as exc:
            self.stop()
            raise LocalStackError(str(exc)) from exc
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        stack_file = self.state_dir / STACK_FILE
        # The lock is ours, so a stack file here belongs to a stack that is gone (killed): its
        # pid may even be someone else's by now. A new one is written once the stack is up.
        stack_file.unlink(missing_ok=True)
        self.dynamodb.start()
        client = self.dynamodb.client()
        existing = set(client.list_tables()["TableNames"])
        for logical_id, properties in template_tables(self.template):
            if self.tables[logical_id] not in existing:
                # Without TTL: DynamoDB Local expires items by the real clock, and a replay of a
                # past week writes expiry times (simulated time + retention) already past, so
                # entries would vanish mid-run. Local history is kept until the state dir goes.
                schema = {k: v for k, v in properties.items() if k != "TimeToLiveSpecification"}
                create_table(client, self.tables[logical_id], schema)
        self._store = Store(
            self.tables["TasksTable"], self.tables["ExecutionsTable"], client=client
        )
        info = LocalStackInfo(
            endpoint_url=self.dynamodb.endpoint_url,
            region=REGION,
            tasks_table=self.tables["TasksTable"],
            executions_table=self.tables["ExecutionsTable"],
            template=str(self.template_path.resolve()),
            pid=os.getpid(),
            topic_endpoint_url=self.topic_endpoint_url,
            env_vars=str(self.env_vars.resolve()) if self.env_vars else None,
            state_dir=str(self.state_dir.resolve()),
            secrets_endpoint_url=self.secrets_endpoint_url,
            ca_bundle=str(self.ca_bundle.resolve()) if self.ca_bundle else "",
            api_url=self.api_url,
            lambda_endpoint_url=self.lambda_endpoint_url,
        )
        # Whole or not at all: a second terminal may read it at any moment.
        partial = stack_file.with_name(f".{STACK_FILE}.{os.getpid()}")
        partial.write_text(json.dumps(asdict(info), indent=2) + "\n")
        partial.replace(stack_file)
        self.info = info

    def stop(self) -> None:
        """Stop the engine and remove stack.json. Harmless if this stack is not running, as
        after a refused start: the stack.json there is the running stack's, and stays."""
        if not self._lock.held:
            return
        try:
            (self.state_dir / STACK_FILE).unlink(missing_ok=True)
            self.dynamodb.stop()
        finally:
            self._lock.release()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def store(self) -> Store:
        if self._store is None:
            raise LocalStackError("the local stack is not started")
        return self._store

    # --- deploying the template's tasks ------------------------------------------------------

    def validate(self) -> TemplateValidation:
        return validate_template(self.template)

    def apply_tasks(
        self, validation: TemplateValidation, now: datetime, *, store: Store | None = None
    ) -> list[AppliedTask]:
        """Register every task of the template and remove the ones it no longer has.

        ``store``: the registry's (held to its role); the stack's own by default.
        """
        registry = store or self.store
        applied = []
        known = {task.task_id: task for task in self.store.list_tasks()}
        for definition in validation.tasks:
            logical_id = validation.declarations[definition.task_id].logical_id
            existing = known.get(definition.task_id)
            request_type = "Update" if existing and not existing.deleted else "Create"
            properties = definition.model_dump(mode="json", by_alias=True, exclude_none=True)
            self._request(request_type, logical_id, definition.task_id, properties, now, registry)
            applied.append(AppliedTask(definition.task_id, request_type))
        wanted = {definition.task_id for definition in validation.tasks}
        for task_id, task in sorted(known.items()):
            made_by_the_api = (task.owner or "").startswith(API_OWNER_PREFIX)
            if task_id not in wanted and not task.deleted and not made_by_the_api:
                # The Delete comes from the resource that declared the task, as on AWS; a
                # schedule made through the API was declared by no template, and stays.
                owner = TaskOwner.from_key(task.owner) if task.owner else None
                declared_by = owner.logical_id if owner is not None else task_id
                self._request("Delete", declared_by, task_id, None, now, registry)
                applied.append(AppliedTask(task_id, "Delete"))
        return applied

    def _wiring_check(self) -> WiringCheck | None:
        """The registry's check that each task's function can run it, answered from the
        template as Lambda and IAM answer it on AWS (transformed once per stack)."""
        if not self._wiring_read:
            self._wiring = template_wiring_check(self.template, names=self.tables)
            self._wiring_read = True
        return self._wiring

    def _secret_scope(self) -> SecretScope | None:
        """The registry's view of what the HTTP function may read, resolved as it is locally."""
        for resource in self.template.get("Resources", {}).values():
            variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
            if "HTTP_SECRET_ARN_PREFIXES" in variables:
                value = environment_resolver(self.template, {})(
                    variables["HTTP_SECRET_ARN_PREFIXES"]
                )
                return SecretScope.parse(value) if value else None
        return None

    def _request(
        self,
        request_type: str,
        logical_id: str,
        task_id: str,
        properties: dict[str, Any] | None,
        now: datetime,
        registry: Store,
    ) -> None:
        event = scheduled_task_request(
            request_type,
            logical_id,
            stack_id=LOCAL_STACK_ID,
            response_url="http://127.0.0.1/cronfleet-local",  # answered here, not sent
            properties=properties,
            physical_id=None if request_type == "Create" else task_id,
        )
        response = respond(
            event,
            CustomResourceEvent.model_validate(event),
            registry,
            now,
            secret_scope=self._secret_scope(),
            wiring=self._wiring_check(),
        )
        if response.status != "SUCCESS":
            raise LocalStackError(f"{logical_id}: the registry refused it: {response.reason}")


def scheduled_task_request(
    request_type: str,
    logical_id: str,
    *,
    stack_id: str,
    response_url: str,
    properties: dict[str, Any] | None = None,
    physical_id: str | None = None,
    old_properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """CloudFormation's request to the registry for one ``Custom::ScheduledTask``.

    ``properties`` go as given: CloudFormation sends every scalar as a string
    (``cronfleet_tools.template.intrinsics.as_cloudformation_sends``).
    """
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ResponseURL": response_url,
        "StackId": stack_id,
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": logical_id,
        "ResourceType": "Custom::ScheduledTask",
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    if properties is not None:
        event["ResourceProperties"] = properties
    if old_properties is not None:
        event["OldResourceProperties"] = old_properties
    return event


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
