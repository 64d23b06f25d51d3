"""Which runs X-Ray traces, as the Invoke requests carry it: the exact X-Amzn-Trace-Id header a
real botocore Lambda client sends, captured just before it would leave the process."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from cronfleet.invoker import LambdaInvoker
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.lifecycle.states import Trigger
from cronfleet.registry.definition import parse_task_definition
from cronfleet.store import TaskRecord
from cronfleet.store.records import TaskStats
from cronfleet.tracing import TRACE_HEADER, TraceSampling, invoking, trace_header

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SAMPLED_CALLER = "Root=1-6745f000-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"


class CapturedLambda:
    """A botocore Lambda client whose Invokes are answered 202 here, headers kept."""

    def __init__(self, caller_header: str | None = None) -> None:
        self.client = boto3.client(
            "lambda", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
        )
        self.headers: list[str | None] = []
        if caller_header is not None:
            # What the X-Ray SDK's botocore patch puts on a traced caller's requests.
            def as_the_sdk(request: Any, **_: Any) -> None:
                request.headers[TRACE_HEADER] = caller_header

            self.client.meta.events.register("before-sign.lambda.Invoke", as_the_sdk)
        self.invoker = LambdaInvoker(self.client)  # registers its own hook first
        self.client.meta.events.register("before-send.lambda.Invoke", self._answer)

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        value = request.headers.get(TRACE_HEADER)
        self.headers.append(value.decode() if isinstance(value, bytes) else value)
        return AWSResponse(request.url, 202, {}, None)


def _task(consecutive_failures: int = 0) -> TaskRecord:
    definition = parse_task_definition("report", {"Schedule": "rate(1 minute)", "Function": "fn"})
    return TaskRecord(
        "report",
        definition.model_dump_json(by_alias=True, exclude_none=True),
        stats=TaskStats(consecutive_failures=consecutive_failures),
    )


def _sampled(header: str | None) -> str:
    assert header is not None
    fields = dict(part.split("=", 1) for part in header.split(";"))
    assert fields["Root"].startswith("1-")
    assert len(fields["Root"]) == 35  # 1-<8 hex>-<24 hex>
    return fields["Sampled"]


def _invoke(
    rate: float,
    *,
    task: TaskRecord | None = None,
    attempt: int = 1,
    trigger: Trigger = Trigger.SCHEDULE,
    caller: str | None = None,
) -> str | None:
    captured = CapturedLambda(caller)
    store: Any = None  # invoking never touches the store
    attempts = Attempts(store, captured.invoker, tracing=TraceSampling(rate, random.Random(1)))
    assert attempts.invoke(task or _task(), "2026-11-02T09:00:00Z", attempt, trigger, NOW)
    (header,) = captured.headers
    return header


def test_a_healthy_run_outside_the_sample_is_sent_untraced_under_a_root_of_its_own() -> None:
    assert _sampled(_invoke(0.0)) == "0"
    # even when the dispatcher itself is traced: it does not pass its decision on
    header = _invoke(0.0, caller=SAMPLED_CALLER)
    assert _sampled(header) == "0"
    assert header is not None
    assert "6745f000" not in header


@pytest.mark.parametrize(
    ("what", "kwargs"),
    [
        ("a retry", {"attempt": 2}),
        ("a manual run", {"trigger": Trigger.MANUAL}),
        ("a run of a failing task", {"task": _task(consecutive_failures=1)}),
    ],
)
def test_what_goes_wrong_is_always_traced(what: str, kwargs: dict[str, Any]) -> None:
    assert _sampled(_invoke(0.0, **kwargs)) == "1", what


def test_a_traced_run_joins_a_traced_callers_trace() -> None:
    assert _invoke(1.0, caller=SAMPLED_CALLER) == SAMPLED_CALLER
    # an untraced caller's header is not joined: the run gets a traced root of its own
    header = _invoke(1.0, caller=SAMPLED_CALLER.replace("Sampled=1", "Sampled=0"))
    assert _sampled(header) == "1"
    assert header is not None
    assert "6745f000" not in header


def test_the_healthy_runs_traced_are_the_configured_share() -> None:
    sampling = TraceSampling(0.05, random.Random(7))
    healthy = _task()

    traced = sum(sampling.traces(healthy, 1, Trigger.SCHEDULE) for _ in range(20_000))

    # 5% of 20,000 is 1,000, with a standard deviation of about 31: 6 of them either side
    assert 815 < traced < 1185


def test_an_invoke_outside_any_decision_keeps_the_callers_header() -> None:
    captured = CapturedLambda(SAMPLED_CALLER)
    captured.invoker.invoke("fn", {"ping": True})
    with invoking(None):
        captured.invoker.invoke("fn", {"ping": True})

    assert captured.headers == [SAMPLED_CALLER, SAMPLED_CALLER]


def test_the_header_format_is_x_rays() -> None:
    header = trace_header(True, None, NOW.timestamp())
    root = dict(part.split("=", 1) for part in header.split(";"))["Root"]
    assert root.split("-")[1] == f"{int(NOW.timestamp()):08x}"
    assert header.endswith(";Sampled=1")
