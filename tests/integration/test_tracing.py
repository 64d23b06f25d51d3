"""X-Ray tracing as it happens in Lambda: the segments a task function sends to the daemon.

In Lambda the X-Ray SDK sends each finished subsegment as a UDP datagram to the daemon at
AWS_XRAY_DAEMON_ADDRESS, under the trace of the invocation (_X_AMZN_TRACE_ID). Here the
example task function runs in its own process with that environment (Lambda's, not `sam local
invoke`'s, which turns tracing off), and a UDP socket plays the daemon.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cronfleet import clock
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.store import Store
from cronfleet_tools.local.dynamodb_local import ACCESS_KEY, SECRET_KEY, DynamoDBLocal
from cronfleet_tools.local.functions import load_functions
from cronfleet_tools.local.lambda_process import LocalLambda
from cronfleet_tools.template import load_template, validate_template
from tests.support import TEST_OWNER

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
TRACE_ROOT = "1-6740a5e0-5f2b8a4c9d3e1f0a2b3c4d5e"


@pytest.fixture
def daemon() -> Iterator[socket.socket]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.5)
    yield listener
    listener.close()


def _received(daemon: socket.socket) -> list[dict[str, Any]]:
    """Every segment document the SDK sent: a JSON header line, then the segment."""
    documents = []
    while True:
        try:
            datagram = daemon.recv(65536)
        except TimeoutError:
            return documents
        header, _, body = datagram.decode().partition("\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        documents.append(json.loads(body))


def test_a_task_run_is_traced_with_its_ids_and_its_dynamodb_calls(
    store: Store, dynamodb_local: DynamoDBLocal, daemon: socket.socket, tmp_path: Path
) -> None:
    template = load_template(REPO_ROOT / "template.yaml")
    (definition,) = [t for t in validate_template(template).tasks if t.task_id == "ExampleTask"]
    now = clock.now()
    store.register(definition, definition.compiled_schedule().next_run, now, owner=TEST_OWNER.key)
    task = store.get_task("ExampleTask")
    assert task is not None
    functions = load_functions(
        template,
        REPO_ROOT,
        resolve={"TasksTable": store.tasks_table, "ExecutionsTable": store.executions_table},
    )
    lambdas = LocalLambda(
        functions,
        runtime_environment={
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_local.endpoint_url,
            # Lambda's environment rather than sam local's: tracing on, a sampled trace.
            "AWS_SAM_LOCAL": "",
            "_X_AMZN_TRACE_ID": f"Root={TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=1",
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
        },
        log_dir=tmp_path,
    )

    # when a manual run of the example task goes through the function, as in Lambda
    slot, invoked = Attempts(store, lambdas).start_manual_run(task, now, payload={"traced": True})
    lambdas.drain()
    lambdas.shutdown()

    # then the run succeeded, and its subsegments reached the daemon under the invocation's trace
    assert invoked
    execution = store.get_execution("ExampleTask", slot)
    assert execution is not None
    assert execution.status.value == "SUCCEEDED"
    segments = _received(daemon)
    assert segments
    assert {segment["trace_id"] for segment in segments} == {TRACE_ROOT}
    # the task's code has its own subsegment, annotated for X-Ray's search
    (code,) = [segment for segment in segments if segment["name"] == "## ExampleTask"]
    assert code["annotations"] == {"task_id": "ExampleTask", "slot": slot, "attempt": 1}
    # and every DynamoDB call of the run is a subsegment, with its operation and table
    calls = [segment for segment in segments if segment.get("namespace") == "aws"]
    operations = {(call["name"].lower(), call["aws"]["operation"]) for call in calls}
    assert ("dynamodb", "UpdateItem") in operations  # the attempt starts
    assert ("dynamodb", "TransactWriteItems") in operations  # and is concluded
    assert {call["aws"].get("table_name") for call in calls} >= {store.executions_table}
    # the task's result is not copied into the trace (POWERTOOLS_TRACER_CAPTURE_RESPONSE)
    assert "traced" not in json.dumps(segments)
