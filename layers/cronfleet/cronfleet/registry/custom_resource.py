"""The CloudFormation custom-resource protocol behind ``Custom::ScheduledTask``.

On Create and Update the definition is validated with :func:`parse_task_definition`, the same
rules as ``cronfleet validate``, then registered: the definition is written and the task's
runtime state (paused, counters, history, next run) is kept. A bad definition answers FAILED
with one line per problem, so the deploy stops and CloudFormation rolls back. Delete takes the
task out of scheduling and keeps its history.

Each task has one owner, the resource that declared it (stack id plus logical id, see
:mod:`cronfleet.registry.ownership`): a Create or Update of a live task another resource owns
is refused, and a Delete only takes out a task its own resource owns. That makes
CloudFormation's order of operations safe: it creates a replacement before it deletes what it
replaces, and a rollback deletes what a failed Create left.

Whatever happens, CloudFormation hears back: it otherwise waits for the resource's timeout
before it gives up, and the stack is stuck in the meantime.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from cronfleet import clock
from cronfleet.errors import CronfleetError
from cronfleet.registry.definition import TaskDefinition, parse_task_definition
from cronfleet.registry.ownership import TaskOwnedElsewhere, TaskOwner
from cronfleet.registry.problems import InvalidTaskDefinition, Problem
from cronfleet.registry.secrets import SecretScope
from cronfleet.registry.wiring import WiringCheck
from cronfleet.schedule import timezone_caveat
from cronfleet.store import Store, TaskOwnershipConflict

logger = logging.getLogger(__name__)

# CloudFormation refuses a response body over 4096 bytes, and the resource then waits out its
# timeout as if no answer came. Long problem lists are cut to fit.
RESPONSE_LIMIT_BYTES = 4096
RESPONSE_TIMEOUT_SECONDS = 10
RESPONSE_ATTEMPTS = 3

# Returned as the physical id of a Create that failed. CloudFormation sends a Delete for it
# while rolling back; ':' cannot occur in a task id, so that Delete can never remove a real
# task that happens to share the rejected definition's Name.
FAILED_CREATE_PREFIX = "failed-create:"


class MalformedCustomResourceEvent(CronfleetError, ValueError):
    """An event that cannot be answered: it carries no usable ResponseURL."""


class CustomResourceEvent(BaseModel):
    """What it takes to answer a CloudFormation custom resource request at all."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # A pre-signed S3 URL (https). Plain http is accepted for `sam local invoke` and tests.
    response_url: str = Field(alias="ResponseURL", pattern=r"^https?://\S+$")
    stack_id: str = Field("", alias="StackId")
    request_id: str = Field("", alias="RequestId")
    logical_resource_id: str = Field("", alias="LogicalResourceId")
    physical_resource_id: str | None = Field(None, alias="PhysicalResourceId")


class ScheduledTaskRequest(CustomResourceEvent):
    """A complete Create, Update or Delete request for a ``Custom::ScheduledTask``."""

    request_type: Literal["Create", "Update", "Delete"] = Field(alias="RequestType")
    stack_id: str = Field(alias="StackId", min_length=1)
    request_id: str = Field(alias="RequestId", min_length=1)
    logical_resource_id: str = Field(alias="LogicalResourceId", min_length=1)
    resource_type: str = Field("", alias="ResourceType")
    resource_properties: dict[str, Any] | None = Field(None, alias="ResourceProperties")
    old_resource_properties: dict[str, Any] | None = Field(None, alias="OldResourceProperties")

    @model_validator(mode="after")
    def _properties_to_validate(self) -> ScheduledTaskRequest:
        if self.request_type != "Delete" and self.resource_properties is None:
            raise PydanticCustomError(
                "missing_properties",
                "ResourceProperties: required for {request_type}",
                {"request_type": self.request_type},
            )
        return self


class CustomResourceResponse(BaseModel):
    """The body CloudFormation expects at the ResponseURL."""

    model_config = ConfigDict(serialize_by_alias=True, frozen=True)

    status: Literal["SUCCESS", "FAILED"] = Field(alias="Status")
    reason: str | None = Field(None, alias="Reason")
    physical_resource_id: str = Field(alias="PhysicalResourceId")
    stack_id: str = Field(alias="StackId")
    request_id: str = Field(alias="RequestId")
    logical_resource_id: str = Field(alias="LogicalResourceId")
    data: dict[str, str] | None = Field(None, alias="Data")

    def body(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


def answer(
    event: dict[str, Any],
    store: Store,
    log_stream: str,
    *,
    secret_scope: SecretScope | None = None,
    wiring: WiringCheck | None = None,
) -> CustomResourceResponse:
    """Handle one request and PUT the answer to CloudFormation's ResponseURL.

    Raises :class:`MalformedCustomResourceEvent` only when there is nobody to answer.
    """
    try:
        envelope = CustomResourceEvent.model_validate(event)
    except ValidationError as exc:
        # Nobody can be told: CloudFormation will wait out the resource's timeout. Fail the
        # invocation loudly so the cause is in the logs and in the Lambda error metrics.
        logger.error(
            "Cannot answer CloudFormation: the event has no usable ResponseURL",
            extra={"event_keys": sorted(event) if isinstance(event, dict) else None},
        )
        first = exc.errors()[0]
        raise MalformedCustomResourceEvent(
            "not a CloudFormation custom resource event: "
            + _request_problem(first["loc"], first["msg"])
        ) from exc

    try:
        response = respond(
            event,
            envelope,
            store,
            clock.now(),
            secret_scope=secret_scope,
            wiring=wiring,
            log_stream=log_stream,
        )
    except Exception as exc:  # CloudFormation must hear back, whatever went wrong
        logger.exception("Unexpected error; answering FAILED")
        response = _failed(
            envelope,
            _unchanged_physical_id(envelope),
            f"Internal error in the registry ({type(exc).__name__}); "
            f"see CloudWatch log stream {log_stream}",
        )
    response = fit_response_limit(response)
    # Logged before the PUT, so the answer is on record even when the URL cannot be reached
    # (as with the sample events under `sam local invoke`).
    logger.info("Answering CloudFormation", extra={"response": response.model_dump()})
    send_response(envelope.response_url, response)
    return response


def respond(
    event: dict[str, Any],
    envelope: CustomResourceEvent,
    store: Store,
    now: datetime,
    *,
    secret_scope: SecretScope | None = None,
    wiring: WiringCheck | None = None,
    log_stream: str = "",
) -> CustomResourceResponse:
    """Decide the answer to one request, and register or deregister the task.

    ``secret_scope``: the secrets the HTTP function may read; None skips that check.
    ``wiring``: how to check that the task's function can run it; None skips that check.
    """
    try:
        request = ScheduledTaskRequest.model_validate(event)
    except ValidationError as exc:
        lines = [_request_problem(error["loc"], error["msg"]) for error in exc.errors()]
        logger.error("Malformed custom resource request", extra={"problems": lines})
        return _failed(
            envelope, _unchanged_physical_id(envelope), "\n".join(["Malformed request:", *lines])
        )
    owner = TaskOwner(request.stack_id, request.logical_resource_id)

    if request.request_type == "Delete":
        # Delete must succeed even for ids it does not know (a failed Create's
        # FAILED_CREATE_PREFIX id, a task already gone, one another resource owns), or the
        # stack could never be deleted.
        physical_id = _unchanged_physical_id(request)
        if physical_id.startswith(FAILED_CREATE_PREFIX):
            return _succeeded(request, physical_id)
        if store.deregister(physical_id, now, owner=owner.key):
            logger.info(
                "Task taken out of scheduling; history kept", extra={"task_id": physical_id}
            )
        else:
            logger.info(
                "Not deregistered: no such task, or another resource owns it",
                extra={"task_id": physical_id, "resource": owner.logical_id},
            )
        return _succeeded(request, physical_id)

    try:
        definition = parse_task_definition(
            request.logical_resource_id,
            request.resource_properties or {},
            now=now,
            schedule_known=_same_schedule(request),
        )
        _check_secret(request.logical_resource_id, definition, secret_scope)
        if wiring is not None:
            stack_name = request.stack_id.split(":stack/", 1)[-1].split("/", 1)[0]
            miswired = wiring.problems(request.logical_resource_id, definition, stack_name)
            if miswired:
                raise InvalidTaskDefinition(miswired)
    except InvalidTaskDefinition as exc:
        lines = [str(problem) for problem in exc.problems]
        logger.info("Invalid task definition", extra={"problems": lines})
        return _failed(request, _unchanged_physical_id(request), "\n".join(lines))

    task_id = definition.task_id
    # What CloudFormation is told the resource is if this fails. A Create that fails is rolled
    # back with a Delete of that id, which removes the task only if this resource owns it, so
    # nothing a failed Create wrote is left scheduled.
    failure_id = task_id if request.request_type == "Create" else _unchanged_physical_id(request)
    if request.request_type == "Update" and request.physical_resource_id != task_id:
        # A new physical id tells CloudFormation the old task is replaced; it sends a Delete
        # for the old id once the stack update completes.
        logger.info("Task renamed", extra={"old": request.physical_resource_id, "new": task_id})
    caveat = timezone_caveat(definition.timezone)
    if caveat is not None:  # accepted, as `cronfleet validate` accepts it, but said
        warning = Problem(request.logical_resource_id, "Timezone", caveat)
        logger.warning("Task timezone is seldom the one meant", extra={"warning": str(warning)})
    try:
        # One versioned write of the definition fields: paused, counters and the pending next
        # run survive the deploy (see Store.register).
        store.register(definition, definition.compiled_schedule().next_run, now, owner=owner.key)
        # A deploy that raised DispatchShards writes into partitions the running dispatcher
        # may not read yet: record them now, not at the next tick.
        store.widen_due_partitions()
    except TaskOwnershipConflict as exc:
        reason = str(TaskOwnedElsewhere(task_id, exc.owner, owner))
        field = "Name" if "Name" in (request.resource_properties or {}) else ""
        problem = Problem(request.logical_resource_id, field, reason)
        logger.info("Task owned by another resource", extra={"problem": str(problem)})
        return _failed(request, failure_id, str(problem))
    except Exception as exc:
        logger.exception("Unexpected error while registering; answering FAILED")
        if failure_id != task_id:  # an Update to a new name: leave nothing of it behind
            _forget(store, task_id, now, owner)
        return _failed(
            request,
            failure_id,
            f"Internal error in the registry ({type(exc).__name__}); "
            f"see CloudWatch log stream {log_stream}",
        )
    logger.info("Task registered", extra={"task_id": task_id, "request": request.request_type})
    return _succeeded(request, task_id, data={"TaskId": task_id})


def _same_schedule(request: ScheduledTaskRequest) -> bool:
    """An Update that leaves Schedule and Timezone as they were admitted before."""
    if request.request_type != "Update" or request.old_resource_properties is None:
        return False
    new, old = request.resource_properties or {}, request.old_resource_properties
    return all(new.get(name) == old.get(name) for name in ("Schedule", "Timezone", "Name"))


def _check_secret(logical_id: str, definition: TaskDefinition, scope: SecretScope | None) -> None:
    secret_arn = definition.http.secret_arn if definition.http is not None else None
    if scope is None or secret_arn is None:
        return
    refusal = scope.refusal(secret_arn)
    if refusal is not None:
        raise InvalidTaskDefinition([Problem(logical_id, "Http.SecretArn", refusal)])


def _forget(store: Store, task_id: str, now: datetime, owner: TaskOwner) -> None:
    try:
        store.deregister(task_id, now, owner=owner.key)
    except Exception:
        logger.exception("Could not take back a failed registration", extra={"task_id": task_id})


def send_response(url: str, response: CustomResourceResponse) -> None:
    """PUT the response to the pre-signed URL, retrying briefly on network errors."""
    body = response.body()
    # The pre-signed S3 URL is signed without a content type; urllib would add one otherwise.
    headers = {"Content-Type": "", "Content-Length": str(len(body))}
    request = urllib.request.Request(url, data=body, headers=headers, method="PUT")
    for attempt in range(1, RESPONSE_ATTEMPTS + 1):
        try:
            # http(s) only: CustomResourceEvent checked the scheme.
            with urllib.request.urlopen(request, timeout=RESPONSE_TIMEOUT_SECONDS) as reply:
                logger.info(
                    "Answered CloudFormation",
                    extra={"status": response.status, "http_status": reply.status},
                )
                return
        except (urllib.error.URLError, OSError) as exc:
            logger.warning(
                "Could not answer CloudFormation", extra={"attempt": attempt, "error": str(exc)}
            )
            if attempt == RESPONSE_ATTEMPTS:
                raise
            time.sleep(attempt)


def fit_response_limit(response: CustomResourceResponse) -> CustomResourceResponse:
    """Drop trailing problem lines until the body fits CloudFormation's 4 KB limit."""
    if response.reason is None or len(response.body()) <= RESPONSE_LIMIT_BYTES:
        return response
    lines = response.reason.split("\n")
    for keep in range(len(lines) - 1, -1, -1):
        note = f"... and {len(lines) - keep} more; see the registry function's CloudWatch logs"
        shorter = response.model_copy(update={"reason": "\n".join([*lines[:keep], note])})
        if len(shorter.body()) <= RESPONSE_LIMIT_BYTES:
            return shorter
    return response.model_copy(update={"reason": response.reason[:1000]})


def _succeeded(
    request: CustomResourceEvent, physical_id: str, data: dict[str, str] | None = None
) -> CustomResourceResponse:
    return CustomResourceResponse(
        Status="SUCCESS",
        PhysicalResourceId=physical_id,
        StackId=request.stack_id,
        RequestId=request.request_id,
        LogicalResourceId=request.logical_resource_id,
        Data=data,
    )


def _failed(request: CustomResourceEvent, physical_id: str, reason: str) -> CustomResourceResponse:
    return CustomResourceResponse(
        Status="FAILED",
        Reason=reason,
        PhysicalResourceId=physical_id,
        StackId=request.stack_id,
        RequestId=request.request_id,
        LogicalResourceId=request.logical_resource_id,
    )


def _unchanged_physical_id(request: CustomResourceEvent) -> str:
    """The resource's existing physical id, or, for a Create, the failed-Create marker."""
    return request.physical_resource_id or f"{FAILED_CREATE_PREFIX}{request.request_id}"


def _request_problem(loc: tuple[int | str, ...], message: str) -> str:
    return f"{'.'.join(map(str, loc))}: {message}" if loc else message
