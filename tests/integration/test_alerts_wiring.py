"""Alerts wired into the lifecycle, on DynamoDB Local, with SNS stubbed at botocore's edge.

A real boto3 SNS client under botocore's Stubber sits inside the SnsNotifier: every Publish the
engine makes must have been expected, and ``assert_no_pending_responses`` proves that nothing
expected was left unsent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from cronfleet.alerts.alerter import Alerter
from cronfleet.alerts.render import ConsoleLinks
from cronfleet.alerts.sns import SnsNotifier
from cronfleet.dispatch.service import Dispatcher
from cronfleet.invoker import InvokeError
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.lifecycle.states import RunStatus
from cronfleet.lifecycle.wrapper import NonRetryableError, TaskContext, scheduled_task
from tests.support import register

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

    from cronfleet.store import Store
    from tests.integration.conftest import FakeClock, QueuedLambda

pytestmark = pytest.mark.integration

TOPIC = "arn:aws:sns:us-east-1:123456789012:cronfleet-alerts"
DASHBOARD = "cronfleet-dashboard"


class Sns:
    """A real SNS client under a Stubber, recording the parameters of every Publish."""

    def __init__(self) -> None:
        self.client: SNSClient = boto3.client(
            "sns",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.stub = Stubber(self.client)
        self.published: list[dict[str, Any]] = []
        self.client.meta.events.register("provide-client-params.sns.Publish", self._capture)

    def _capture(self, params: dict[str, Any], **_: Any) -> None:
        self.published.append(dict(params))

    def expect(self, kind: str, task: str, severity: str, subject: str) -> None:
        self.stub.add_response(
            "publish",
            {"MessageId": f"message-{len(self.published) + 1}"},
            {
                "TopicArn": TOPIC,
                "Subject": subject,
                "Message": ANY,
                "MessageStructure": "json",
                "MessageAttributes": {
                    "event": {"DataType": "String", "StringValue": kind},
                    "task": {"DataType": "String", "StringValue": task},
                    "severity": {"DataType": "String", "StringValue": severity},
                },
            },
        )

    def message(self, index: int = -1) -> tuple[dict[str, Any], str]:
        """The JSON body and the email body of a published alert."""
        bodies = json.loads(self.published[index]["Message"])
        return json.loads(bodies["default"]), bodies["email"]


@pytest.fixture
def sns() -> Iterator[Sns]:
    sns = Sns()
    with sns.stub:
        yield sns
    sns.stub.assert_no_pending_responses()


def alerter_for(store: Store, clock: FakeClock, sns: Sns | None) -> Alerter:
    notifier = SnsNotifier(sns.client, topic_arn=TOPIC) if sns is not None else None
    links = ConsoleLinks(
        region="us-east-1", dashboard_name=DASHBOARD, executions_table=store.executions_table
    )
    return Alerter(store, notifier, links, clock=clock)


def test_failing_is_alerted_once_at_the_threshold_and_recovery_once(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    sns: Sns,
) -> None:
    register(store, clock, "nightly", Alerts={"AfterConsecutiveFailures": 2})
    alerter = alerter_for(store, clock, sns)
    fail = [True]

    @scheduled_task(store=store, clock=clock, alerter=alerter)
    def nightly(task: TaskContext) -> None:
        if fail[0]:
            raise NonRetryableError("the export format is not supported")

    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock, alerter=alerter))

    def run_once() -> None:
        dispatcher.tick(clock.advance(minutes=1))
        lambda_queue.deliver(nightly)

    # the first failure is below the threshold: nothing is sent
    run_once()
    assert sns.published == []

    # the second crosses it: exactly one FAILING alert
    sns.expect("FAILING", "nightly", "critical", "[cronfleet] nightly is failing (2 in a row)")
    run_once()
    sns.stub.assert_no_pending_responses()
    assert len(sns.published) == 1
    body, email = sns.message()
    assert body["event"] == "FAILING"
    assert body["severity"] == "critical"
    assert body["task_id"] == "nightly"
    assert body["slot"] == "2026-11-02T08:02:00Z"
    assert body["attempt"] == 1
    assert (body["consecutive_failures"], body["threshold"], body["repeat"]) == (2, 2, False)
    assert body["error"]["type"] == "NonRetryableError"
    assert body["error"]["message"] == "the export format is not supported"
    assert "Traceback" in body["error"]["traceback"]
    links = body["links"]
    assert links["dashboard"].endswith(f"#dashboards/dashboard/{DASHBOARD}")
    assert "$252Faws$252Flambda$252Freport-fn" in links["logs"]
    assert "sk=2026-11-02T08%3A02%3A00Z" in links["execution"]
    assert "Task:     nightly" in email
    task = store.get_task("nightly")
    assert task is not None
    assert task.last_alerts["FAILING"] == clock.now

    # still failing: no flood
    run_once()
    run_once()
    assert len(sns.published) == 1
    task = store.get_task("nightly")
    assert task is not None
    assert task.stats.consecutive_failures == 4

    # a success after the streak: exactly one RECOVERED
    fail[0] = False
    sns.expect("RECOVERED", "nightly", "info", "[cronfleet] nightly recovered after 4 failures")
    run_once()
    assert len(sns.published) == 2
    body, _ = sns.message()
    assert (body["event"], body["consecutive_failures"], body["error"]) == ("RECOVERED", 4, None)
    task = store.get_task("nightly")
    assert task is not None
    assert set(task.last_alerts) == {"FAILING", "RECOVERED"}


def test_a_task_still_failing_is_alerted_again_once_the_realert_interval_has_passed(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    sns: Sns,
) -> None:
    register(
        store,
        clock,
        "sync",
        Retry={"MaxAttempts": 1},
        Alerts={"AfterConsecutiveFailures": 1, "RealertAfterSeconds": 300},
    )
    alerter = alerter_for(store, clock, sns)

    @scheduled_task(store=store, clock=clock, alerter=alerter)
    def sync(task: TaskContext) -> None:
        raise RuntimeError("the partner API answers 503")

    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock, alerter=alerter))

    def run_once() -> None:
        dispatcher.tick(clock.advance(minutes=1))
        lambda_queue.deliver(sync)

    # the first failure crosses the threshold of 1: one alert, sent through the real store
    sns.expect("FAILING", "sync", "critical", "[cronfleet] sync is failing (1 in a row)")
    run_once()
    first_alert = clock.now
    # four more failures within the five minutes: nothing more
    for _ in range(4):
        run_once()
    assert len(sns.published) == 1

    # the failure five minutes after the alert is due a repeat, which says so
    sns.expect("FAILING", "sync", "critical", "[cronfleet] sync is still failing (6 in a row)")
    run_once()
    assert clock.now - first_alert == timedelta(minutes=5)
    assert len(sns.published) == 2
    body, _ = sns.message()
    assert (body["repeat"], body["consecutive_failures"]) == (True, 6)
    assert body["last_alert_at"] == first_alert.isoformat().replace("+00:00", "Z")
    task = store.get_task("sync")
    assert task is not None
    assert task.last_alerts["FAILING"] == clock.now

    # and the clock starts again from the repeat
    for _ in range(4):
        run_once()
    assert len(sns.published) == 2


def test_missed_slots_raise_one_missed_alert(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    sns: Sns,
) -> None:
    register(store, clock, "minutely", Catchup={"Policy": "latest"}, Overlap="allow")
    dispatcher = Dispatcher(
        Attempts(store, lambda_queue, clock=clock, alerter=alerter_for(store, clock, sns))
    )
    dispatcher.tick(clock.advance(minutes=1))  # 08:01
    sns.expect("MISSED", "minutely", "warning", "[cronfleet] minutely missed 4 runs")
    dispatcher.tick(clock.advance(minutes=5))  # 08:06: 08:02-08:05 were missed

    assert len(sns.published) == 1
    body, _ = sns.message()
    assert body["missed"] == {
        "count": 4,
        "first_slot": "2026-11-02T08:02:00Z",
        "last_slot": "2026-11-02T08:05:00Z",
    }


def test_a_long_outage_raises_one_missed_alert_for_the_whole_range(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    sns: Sns,
) -> None:
    # a quarter-hourly task with the default maximum lateness of one hour
    register(store, clock, "q", Schedule="*/15 * * * *", Catchup={"Policy": "latest"})
    dispatcher = Dispatcher(
        Attempts(store, lambda_queue, clock=clock, alerter=alerter_for(store, clock, sns))
    )
    dispatcher.tick(clock.now)  # 08:00 runs; then the dispatcher is down until 11:00
    sns.expect("MISSED", "q", "warning", "[cronfleet] q missed 11 runs")
    clock.now = clock.now.replace(hour=11)
    dispatcher.tick(clock.now)

    assert len(sns.published) == 1
    body, email = sns.message()
    assert body["missed"] == {
        "count": 11,
        "first_slot": "2026-11-02T08:15:00Z",
        "last_slot": "2026-11-02T10:45:00Z",
    }
    assert "Slots:    2026-11-02T08:15:00Z .. 2026-11-02T10:45:00Z" in email


def test_a_run_that_never_starts_raises_lost_once(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    sns: Sns,
) -> None:
    register(store, clock, "report", Schedule="5 8 * * *", Retry={"MaxAttempts": 1})
    dispatcher = Dispatcher(
        Attempts(store, lambda_queue, clock=clock, alerter=alerter_for(store, clock, sns))
    )
    clock.now = clock.now.replace(minute=5)
    dispatcher.tick(clock.now)
    lambda_queue.take()  # the invoke never starts the function
    dispatcher.tick(clock.advance(minutes=4))  # past the start grace: sent once more
    lambda_queue.take()  # and lost again
    sns.expect(
        "LOST", "report", "warning", "[cronfleet] report lost a run (attempt 1 never started)"
    )
    report = dispatcher.tick(clock.advance(minutes=4))

    assert report.watchdog.lost == 1
    assert len(sns.published) == 1
    body, _ = sns.message()
    assert (body["slot"], body["attempt"]) == ("2026-11-02T08:05:00Z", 1)
    assert "never started" in body["reason"]
    dispatcher.tick(clock.advance(minutes=4))  # nothing more to say
    assert len(sns.published) == 1


class Refusing:
    """Lambda's control plane refusing every invoke (the adapter edge)."""

    def invoke(self, function: str, event: dict[str, Any]) -> None:
        raise InvokeError("TooManyRequestsException", "Rate Exceeded.")


def test_a_refused_invoke_raises_dispatch_failed(store: Store, clock: FakeClock, sns: Sns) -> None:
    register(store, clock, "report", Schedule="5 8 * * *")
    dispatcher = Dispatcher(
        Attempts(store, Refusing(), clock=clock, alerter=alerter_for(store, clock, sns))
    )
    sns.expect(
        "DISPATCH_FAILED",
        "report",
        "critical",
        "[cronfleet] report could not be invoked (TooManyRequestsException)",
    )
    clock.now = datetime(2026, 11, 2, 8, 5, tzinfo=clock.now.tzinfo)
    report = dispatcher.tick(clock.now)

    assert report.invoke_failures == 1
    assert len(sns.published) == 1
    body, _ = sns.message()
    assert body["error"]["type"] == "TooManyRequestsException"
    assert body["error"]["message"] == "Rate Exceeded."
    assert body["slot"] == "2026-11-02T08:05:00Z"


def test_without_a_topic_alerts_are_logged_not_published(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    sns: Sns,
    caplog: pytest.LogCaptureFixture,
) -> None:
    register(store, clock, "nightly", Alerts={"AfterConsecutiveFailures": 1})
    alerter = alerter_for(store, clock, None)

    @scheduled_task(store=store, clock=clock, alerter=alerter)
    def nightly(task: TaskContext) -> None:
        raise NonRetryableError("nope")

    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock, alerter=alerter))
    with caplog.at_level(logging.INFO, logger="cronfleet.alerts.alerter"):
        dispatcher.tick(clock.advance(minutes=1))
        (result,) = lambda_queue.deliver(nightly)

    assert result["status"] == RunStatus.FAILED.value
    logged = [r for r in caplog.records if r.name == "cronfleet.alerts.alerter"]
    assert len(logged) == 1
    alert = logged[0].alert  # type: ignore[attr-defined]
    assert (alert["event"], alert["task_id"], alert["consecutive_failures"]) == (
        "FAILING",
        "nightly",
        1,
    )
    json.dumps(alert)  # one JSON line
    assert sns.published == []
    task = store.get_task("nightly")
    assert task is not None
    assert "FAILING" in task.last_alerts


def test_a_delivery_error_is_logged_and_the_run_still_recorded(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    sns: Sns,
    caplog: pytest.LogCaptureFixture,
) -> None:
    register(store, clock, "nightly", Alerts={"AfterConsecutiveFailures": 1})
    alerter = alerter_for(store, clock, sns)

    @scheduled_task(store=store, clock=clock, alerter=alerter)
    def nightly(task: TaskContext) -> None:
        raise NonRetryableError("nope")

    sns.stub.add_client_error("publish", "AuthorizationError", "not allowed")
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock, alerter=alerter))
    dispatcher.tick(clock.advance(minutes=1))
    with caplog.at_level(logging.ERROR, logger="cronfleet.alerts.alerter"):
        (result,) = lambda_queue.deliver(nightly)

    assert result["status"] == RunStatus.FAILED.value
    assert any("could not be delivered" in r.getMessage() for r in caplog.records)
    task = store.get_task("nightly")
    assert task is not None
    assert task.stats.consecutive_failures == 1
    assert task.last_alerts == {}


@pytest.mark.parametrize(
    ("per_task", "dimension_sets"),
    [
        # Off, the default: the fleet's metrics only, four for any number of tasks.
        (False, [["service"]]),
        # On: the same again, dimensioned by task, a metric-month each per task.
        (True, [["service"], ["service", "task"]]),
    ],
)
def test_run_metrics_are_the_fleets_and_per_task_only_when_asked(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    per_task: bool,
    dimension_sets: list[list[str]],
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "cronfleet")
    register(store, clock, "nightly")
    alerter = Alerter(store, metrics_namespace="Cronfleet", per_task_metrics=per_task, clock=clock)

    @scheduled_task(store=store, clock=clock, alerter=alerter)
    def nightly(task: TaskContext) -> None:
        return None

    Dispatcher(Attempts(store, lambda_queue, clock=clock)).tick(clock.advance(minutes=1))
    capsys.readouterr()
    lambda_queue.deliver(nightly)

    emitted = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith('{"_aws"')
    ]
    seen = sorted(
        (
            directive["Metrics"][0]["Name"],
            sorted(directive["Dimensions"][0]),
            directive["Metrics"][0]["Unit"],
        )
        for entry in emitted
        for directive in entry["_aws"]["CloudWatchMetrics"]
    )
    assert seen == sorted(
        (name, dimensions, unit)
        for name, unit in (("RunSucceeded", "Count"), ("RunDuration", "Milliseconds"))
        for dimensions in dimension_sets
    )
    assert all(e["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Cronfleet" for e in emitted)
    assert [e["task"] for e in emitted if "task" in e] == ["nightly"] * (2 if per_task else 0)


def test_a_run_past_its_deadline_raises_stuck_once(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    sns: Sns,
    code_started: Callable[..., None],
) -> None:
    register(store, clock, "slow", Schedule="5 8 * * *", TimeoutSeconds="60")
    dispatcher = Dispatcher(
        Attempts(store, lambda_queue, clock=clock, alerter=alerter_for(store, clock, sns))
    )
    clock.now = clock.now.replace(minute=5)
    dispatcher.tick(clock.now)
    ((_, event),) = lambda_queue.take()
    code_started(event, timeout=timedelta(seconds=60))
    sns.expect("STUCK", "slow", "critical", "[cronfleet] slow is stuck (attempt 1)")

    report = dispatcher.tick(clock.advance(minutes=4))  # past deadline and grace, no word

    assert report.watchdog.timed_out == 1
    assert len(sns.published) == 1
    body, _ = sns.message()
    assert (body["slot"], body["attempt"]) == ("2026-11-02T08:05:00Z", 1)


def test_a_timeout_reported_by_lambda_raises_timed_out(
    store: Store,
    clock: FakeClock,
    lambda_queue: QueuedLambda,
    sns: Sns,
    load_event: Any,
) -> None:
    from cronfleet.lifecycle.recorder import FailureDestinationRecord, record_failure

    register(store, clock, "report", Schedule="5 8 * * *")
    alerter = alerter_for(store, clock, sns)
    dispatcher = Dispatcher(Attempts(store, lambda_queue, clock=clock, alerter=alerter))
    clock.now = clock.now.replace(minute=5)
    dispatcher.tick(clock.now)
    ((_, event),) = lambda_queue.take()
    record = load_event("recorder_timeout")
    record["requestPayload"] = event
    # the wrapper started the attempt in that Lambda request; two minutes later Lambda timed
    # it out and reported it
    assert store.start_attempt(
        "report",
        event["cronfleet"]["slot"],
        1,
        request_id=record["requestContext"]["requestId"],
        started=clock.now,
        deadline=clock.now + timedelta(minutes=2),
        grace=timedelta(minutes=2),
    )
    record["timestamp"] = (clock.now + timedelta(minutes=2)).isoformat()
    sns.expect("TIMED_OUT", "report", "warning", "[cronfleet] report timed out (attempt 1)")

    result = record_failure(
        Attempts(store, alerter=alerter), FailureDestinationRecord.model_validate(record)
    )

    assert result.recorded
    assert len(sns.published) == 1
    body, email = sns.message()
    assert body["error"]["type"] == "Sandbox.Timedout"
    assert "Task timed out" in email
