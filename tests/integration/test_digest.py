"""The weekly digest, from a real week of ledger on DynamoDB Local to the exact SNS request."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.stub import ANY, Stubber

from cronfleet.alerts.sns import SnsNotifier
from cronfleet.digest import render_digest, summarize_week
from cronfleet.dispatch.service import Dispatcher
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.lifecycle.wrapper import NonRetryableError, TaskContext, scheduled_task
from tests.support import register

if TYPE_CHECKING:
    from cronfleet.store import Store
    from tests.integration.conftest import FakeClock, QueuedLambda

pytestmark = pytest.mark.integration
TOPIC = "arn:aws:sns:us-east-1:123456789012:cronfleet-alerts"


def test_a_week_of_runs_becomes_one_digest_per_task(
    store: Store, clock: FakeClock, lambda_queue: QueuedLambda
) -> None:
    # given an hourly task that fails at 12:00, 16:00 and 20:00, and a healthy one, from 08:00
    register(store, clock, "hourly", Function="fn", Schedule="0 * * * *", Retry={"MaxAttempts": 1})
    register(store, clock, "quarterly", Function="fn", Schedule="*/15 * * * *")

    @scheduled_task(store=store, clock=clock)
    def work(task: TaskContext) -> None:
        if task.task_id == "hourly" and task.slot[11:13] in ("12", "16", "20"):
            raise NonRetryableError("the report source was empty")

    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock))
    start = clock.now
    for _ in range(12 * 4):  # 12 hours of quarter-hour ticks
        dispatcher.tick(clock.advance(minutes=15))
        lambda_queue.deliver(work)

    # when the digest covers the week up to now
    weeks = {week.task_id: week for week in summarize_week(store, clock.now + timedelta(minutes=1))}

    # then each task's figures are those of its ledger
    hourly, quarterly = weeks["hourly"], weeks["quarterly"]
    assert (hourly.runs, hourly.succeeded, hourly.failed) == (12, 9, 3)
    assert hourly.success_rate == 0.75
    assert [(f.slot[11:16], f.error_message) for f in hourly.recent_failures] == [
        ("12:00", "the report source was empty"),
        ("16:00", "the report source was empty"),
        ("20:00", "the report source was empty"),
    ]
    assert (quarterly.runs, quarterly.succeeded, quarterly.failed) == (48, 48, 0)
    assert quarterly.p95_duration_ms is not None
    assert start < clock.now

    # and the SNS request is exactly one publish with both protocol bodies
    request = render_digest(list(weeks.values()), clock.now - timedelta(days=7), clock.now)
    client = boto3.client(
        "sns", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_response(
            "publish",
            {"MessageId": "m-1"},
            {
                "TopicArn": TOPIC,
                "Subject": (
                    "[cronfleet] Weekly digest 2026-10-26 to 2026-11-02: 2 tasks, 1 with failures"
                ),
                "MessageStructure": "json",
                "Message": ANY,
                "MessageAttributes": {
                    "event": {"DataType": "String", "StringValue": "weekly_digest"},
                    "severity": {"DataType": "String", "StringValue": "info"},
                },
            },
        )
        assert SnsNotifier(client, topic_arn=TOPIC).send(request) == "m-1"
        stub.assert_no_pending_responses()
    message = json.loads(request["Message"])
    email = message["email"]
    assert "hourly: 12 runs, 75.0% succeeded" in email
    assert "3 failed (0 timed out)" in email
    assert "quarterly: 48 runs, 100.0% succeeded" in email
    document = json.loads(message["default"])
    assert {task["task_id"]: task["runs"] for task in document["tasks"]} == {
        "hourly": 12,
        "quarterly": 48,
    }
