"""The API function as `sam local invoke` loads it, held to its role in template.yaml.

Every DynamoDB call the handler makes is checked against the API function's statements in the
transformed template (the ``sam_function`` fixture), so a permission the template forgot fails
here, as it would on AWS; the events are the samples in events/. Lambda's Invoke is the one
stand-in (a recording queue): whether the role may invoke a function is judged in
tests/unit/test_template_api.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from cronfleet.lifecycle.attempts import Attempts
from tests.integration.conftest import QueuedLambda

pytestmark = pytest.mark.integration

EXAMPLE_FUNCTION = "cronfleet-local-ExampleTaskFunction"


def _request(
    sample: dict[str, Any],
    method: str,
    resource: str,
    schedule_id: str | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Another route's request, made from a sample event as API Gateway would make it."""
    event = copy.deepcopy(sample)
    parameters = dict(event["pathParameters"])
    if schedule_id is not None:
        parameters["id"] = schedule_id
    path = resource
    for name, value in parameters.items():
        path = path.replace(f"{{{name}}}", value)
    event.update(
        httpMethod=method,
        resource=resource,
        path=path,
        pathParameters=parameters,
        queryStringParameters=None,
        multiValueQueryStringParameters=None,
        body=None if body is None else json.dumps(body),
    )
    event["requestContext"].update(httpMethod=method, resourcePath=resource, path=f"/v1{path}")
    return event


@pytest.fixture
def api_app(sam_function: Callable[[str], ModuleType]) -> ModuleType:
    """The API function, allowed to run the example task."""
    module = sam_function("ApiFunction")
    # Locally the template's ${ExampleTaskFunction} has no name to resolve to (as under `sam
    # local invoke`): give the allow-list the one the local runtime would.
    allowed = json.dumps({"ExampleTaskFunction": EXAMPLE_FUNCTION})
    module.environment = module.environment.model_copy(update={"api_task_functions": allowed})
    return module


def _queue_invokes(module: ModuleType, queue: QueuedLambda) -> None:
    """Its invokes queued. Only once a request has made its clients: a client made outside a
    request is not held to the role."""
    service = module.service()
    service.attempts = lambda: Attempts(service.store, queue)


def test_a_schedule_is_created_listed_triggered_and_deleted_within_the_functions_role(
    api_app: ModuleType,
    load_event: Callable[[str], Any],
    lambda_context: Any,
    lambda_queue: QueuedLambda,
) -> None:
    # given the sample requests: a create and a list of tenant acme's schedules
    create, listing = load_event("api_create_schedule"), load_event("api_list_schedules")
    one = "/tenants/{tenant}/schedules/{id}"

    def call(event: dict[str, Any]) -> tuple[int, Any]:
        answer = api_app.handler(event, lambda_context)
        return answer["statusCode"], json.loads(answer["body"]) if answer["body"] else None

    # when the schedule is created, listed, triggered, read back, paused and deleted
    created_status, created = call(create)
    _queue_invokes(api_app, lambda_queue)
    listed_status, listed = call(listing)
    triggered_status, triggered = call(
        _request(create, "POST", f"{one}/trigger", created["id"], {"payload": {"n": 1}})
    )
    runs_status, runs = call(_request(create, "GET", f"{one}/executions", created["id"]))
    paused_status, paused = call(_request(create, "POST", f"{one}/pause", created["id"]))
    deleted_status, _ = call(_request(create, "DELETE", one, created["id"]))
    after_status, after = call(listing)

    # then every step succeeds with no call its role refuses...
    assert (created_status, created["tenant"], created["externalId"]) == (201, "acme", "project-42")
    assert listed_status == 200
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    assert triggered_status == 202
    assert [(function, event["cronfleet"]["slot"]) for function, event in lambda_queue.invoked] == [
        (EXAMPLE_FUNCTION, triggered["slot"])
    ]
    assert runs_status == 200
    assert [run["slot"] for run in runs["items"]] == [triggered["slot"]]
    assert (paused_status, paused["paused"]) == (200, True)
    # ...and the deleted schedule has left the tenant's list
    assert deleted_status == 204
    assert (after_status, after["items"]) == (200, [])
