"""Alerts: raised on health transitions only, and published as the exact SNS request."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from cronfleet.alerts.alerter import links_for
from cronfleet.alerts.policy import (
    DISPATCHER_ALERT_ID,
    Alert,
    AlertKind,
    AttemptFinished,
    DispatchFailed,
    RunAbandoned,
    Severity,
    SlotsMissed,
    decide_alerts,
    realert_due,
)
from cronfleet.alerts.render import (
    MESSAGE_LIMIT_BYTES,
    ConsoleLinks,
    LocalLinks,
    render,
    subject,
)
from cronfleet.alerts.sns import AlertDeliveryError, SnsNotifier
from cronfleet.environment import CronfleetEnvironment
from cronfleet.lifecycle.outcomes import AttemptOutcome, FinishResult
from cronfleet.lifecycle.slots import slot_key
from cronfleet.lifecycle.states import RunStatus
from cronfleet.registry.definition import AlertPolicy

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
STACK_TOPIC = "arn:aws:sns:us-east-1:123456789012:cronfleet-alerts"
TASK_TOPIC = "arn:aws:sns:us-east-1:123456789012:backup-team"
LINKS = ConsoleLinks(
    region="us-east-1",
    dashboard_name="cronfleet-dashboard",
    log_group="/aws/lambda/cronfleet-NightlyBackup",
    executions_table="cronfleet-Executions",
)

F, S, TO = RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.TIMED_OUT


def policy(**properties: Any) -> AlertPolicy:
    return AlertPolicy.model_validate(properties)


class Task:
    """A task's runs as the store counts them: a final failure adds one, a success resets.

    Alerts that are "sent" are remembered, as the caller will, for re-alert decisions.
    """

    def __init__(self, alert_policy: AlertPolicy, task_id: str = "nightly-backup") -> None:
        self.policy = alert_policy
        self.task_id = task_id
        self.failures = 0
        self.last_alerts: dict[AlertKind, datetime] = {}
        self.now = T0

    def run(
        self,
        status: RunStatus,
        *,
        duration_ms: int = 1000,
        final: bool = True,
        attempt: int = 1,
        recorded: bool = True,
    ) -> list[Alert]:
        previous = self.failures
        if recorded and final:
            self.failures = 0 if status is S else previous + 1
        outcome = AttemptOutcome(
            status=status,
            ended_at=self.now,
            duration_ms=duration_ms,
            error_type=None if status is S else "RuntimeError",
            error_message=None if status is S else "disk full",
            traceback=None if status is S else "Traceback (most recent call last): ...",
        )
        result = (
            FinishResult(True, status if final else None, previous, self.failures)
            if recorded
            else FinishResult(recorded=False)
        )
        event = AttemptFinished(self.task_id, slot_key(self.now), attempt, outcome, result)
        alerts = decide_alerts(self.policy, event, last_alerts=self.last_alerts)
        for alert in alerts:
            self.last_alerts[alert.kind] = alert.occurred_at
        self.now += timedelta(minutes=15)
        return alerts

    def runs(self, statuses: Sequence[RunStatus]) -> list[list[AlertKind]]:
        return [[alert.kind for alert in self.run(status)] for status in statuses]


# --- FAILING ----------------------------------------------------------------------------------


def test_a_task_alerts_once_when_its_failures_reach_the_threshold() -> None:
    task = Task(policy())  # AfterConsecutiveFailures defaults to 3

    kinds = task.runs([F, F, F, F, F, F])

    assert kinds == [[], [], [AlertKind.FAILING], [], [], []]


def test_the_failing_alert_says_how_many_in_a_row_and_carries_the_error() -> None:
    task = Task(policy(AfterConsecutiveFailures=2))
    task.run(F)

    [alert] = task.run(F)

    assert alert.severity is Severity.CRITICAL
    assert (alert.consecutive_failures, alert.threshold, alert.repeat) == (2, 2, False)
    assert (alert.error_type, alert.error_message) == ("RuntimeError", "disk full")
    assert (alert.task_id, alert.slot, alert.attempt) == (
        "nightly-backup",
        "2026-11-02T02:15:00Z",
        1,
    )


def test_a_threshold_of_one_alerts_on_the_first_failure() -> None:
    assert Task(policy(AfterConsecutiveFailures=1)).runs([F, F]) == [[AlertKind.FAILING], []]


def test_retries_within_a_slot_do_not_count_towards_the_threshold() -> None:
    task = Task(policy(AfterConsecutiveFailures=1))

    retried = task.run(F, final=False)  # a retry was scheduled: the slot is not final yet
    final = task.run(F, attempt=2)

    assert (retried, [a.kind for a in final]) == ([], [AlertKind.FAILING])


def test_a_duplicate_finish_raises_nothing() -> None:
    task = Task(policy(AfterConsecutiveFailures=1))

    assert task.run(F, recorded=False) == []


def test_a_flapping_task_below_the_threshold_never_alerts() -> None:
    task = Task(policy())

    kinds = task.runs([F, S, F, F, S, F, S, F, F, S])

    assert kinds == [[]] * 10


def test_a_still_failing_task_realerts_once_the_interval_has_passed() -> None:
    task = Task(policy(AfterConsecutiveFailures=2, RealertAfterSeconds=3600))

    # Runs every 15 minutes: the alert at 02:15, then nothing for an hour, then again.
    kinds = task.runs([F] * 10)

    assert [number for number, alerts in enumerate(kinds) if alerts] == [1, 5, 9]
    assert {kind for alerts in kinds for kind in alerts} == {AlertKind.FAILING}
    repeat = task.last_alerts[AlertKind.FAILING]
    assert repeat == T0 + timedelta(minutes=15 * 9)


def test_a_realert_says_it_repeats_and_when_the_last_alert_was() -> None:
    task = Task(policy(AfterConsecutiveFailures=1, RealertAfterSeconds=900))
    [first] = task.run(F)

    [again] = task.run(F)

    assert (again.repeat, again.last_alert_at, again.consecutive_failures) == (
        True,
        first.occurred_at,
        2,
    )
    assert subject(again) == "[cronfleet] nightly-backup is still failing (2 in a row)"


def test_realert_rule() -> None:
    hourly = policy(RealertAfterSeconds=3600)

    assert not realert_due(policy(), T0, T0 + timedelta(days=30))  # never without an interval
    assert not realert_due(hourly, T0, T0 + timedelta(minutes=59, seconds=59))
    assert realert_due(hourly, T0, T0 + timedelta(hours=1))
    assert realert_due(hourly, None, T0)  # past the threshold, no alert on record: say so once


# --- RECOVERED --------------------------------------------------------------------------------


def test_recovery_alerts_once_after_the_task_was_failing() -> None:
    task = Task(policy())

    kinds = task.runs([F, F, F, F, S, S])

    assert kinds == [[], [], [AlertKind.FAILING], [], [AlertKind.RECOVERED], []]


def test_the_recovery_alert_is_informational_and_counts_the_failures_it_ended() -> None:
    task = Task(policy(AfterConsecutiveFailures=2))
    task.runs([F, F, F])

    [alert] = task.run(S)

    assert (alert.severity, alert.consecutive_failures, alert.error_type) == (
        Severity.INFO,
        3,
        None,
    )
    assert subject(alert) == "[cronfleet] nightly-backup recovered after 3 failures"


def test_no_recovery_alert_when_on_recovery_is_off() -> None:
    assert Task(policy(OnRecovery=False)).runs([F, F, F, S]) == [[], [], [AlertKind.FAILING], []]


def test_no_recovery_alert_when_the_task_was_not_failing() -> None:
    assert Task(policy()).runs([F, F, S]) == [[], [], []]


# --- TIMED_OUT, SLOW --------------------------------------------------------------------------


def test_a_timeout_alerts_even_when_a_retry_follows() -> None:
    task = Task(policy())

    [alert] = task.run(TO, final=False)

    assert (alert.kind, alert.severity) == (AlertKind.TIMED_OUT, Severity.WARNING)
    assert subject(alert) == "[cronfleet] nightly-backup timed out (attempt 1)"


def test_the_timeout_that_crosses_the_threshold_raises_failing_only() -> None:
    task = Task(policy(AfterConsecutiveFailures=2))

    kinds = task.runs([TO, TO, TO])

    # Once the task is failing, FAILING speaks for its timeouts: no flood.
    assert kinds == [[AlertKind.TIMED_OUT], [AlertKind.FAILING], []]


def test_a_slow_successful_run_alerts() -> None:
    task = Task(policy(SlowerThanSeconds=60))

    [alert] = task.run(S, duration_ms=90_500)

    assert (alert.kind, alert.duration_ms, alert.slower_than_seconds) == (
        AlertKind.SLOW,
        90_500,
        60,
    )
    assert subject(alert) == "[cronfleet] nightly-backup was slow (90s, limit 60s)"


def test_runs_within_the_limit_or_without_one_are_not_slow() -> None:
    assert Task(policy(SlowerThanSeconds=60)).run(S, duration_ms=60_000) == []
    assert Task(policy()).run(S, duration_ms=10**9) == []


def test_a_slow_recovery_raises_both() -> None:
    task = Task(policy(AfterConsecutiveFailures=1, SlowerThanSeconds=1))
    task.run(F)

    kinds = [alert.kind for alert in task.run(S, duration_ms=5000)]

    assert kinds == [AlertKind.RECOVERED, AlertKind.SLOW]


# --- MISSED, DISPATCH_FAILED, STUCK, LOST ---------------------------------------------------


def test_missed_slots_alert_with_their_count_and_range() -> None:
    event = SlotsMissed("report", "2026-11-02T00:00:00Z", "2026-11-02T01:45:00Z", 8, T0)

    [alert] = decide_alerts(policy(), event)

    assert (alert.kind, alert.severity, alert.missed_count) == (
        AlertKind.MISSED,
        Severity.WARNING,
        8,
    )
    assert (alert.first_missed_slot, alert.last_missed_slot) == (
        "2026-11-02T00:00:00Z",
        "2026-11-02T01:45:00Z",
    )
    assert subject(alert) == "[cronfleet] report missed 8 runs"


@pytest.mark.parametrize(
    "code", ["TooManyRequestsException", "ResourceNotFoundException", "AccessDeniedException"]
)
def test_a_refused_invoke_alerts_with_the_lambda_error(code: str) -> None:
    event = DispatchFailed("report", "2026-11-02T02:00:00Z", 1, code, "refused", T0)

    [alert] = decide_alerts(policy(TopicArn=TASK_TOPIC), event)

    assert (alert.kind, alert.severity, alert.error_type) == (
        AlertKind.DISPATCH_FAILED,
        Severity.CRITICAL,
        code,
    )
    assert alert.topic_arn == TASK_TOPIC
    assert subject(alert) == f"[cronfleet] report could not be invoked ({code})"


@pytest.mark.parametrize(
    ("never_started", "kind"), [(True, AlertKind.LOST), (False, AlertKind.STUCK)]
)
def test_the_watchdog_giving_up_alerts(never_started: bool, kind: AlertKind) -> None:
    event = RunAbandoned("report", "2026-11-02T02:00:00Z", 2, never_started, T0, "no heartbeat")

    [alert] = decide_alerts(policy(), event)

    assert (alert.kind, alert.attempt, alert.reason) == (kind, 2, "no heartbeat")


# --- links ------------------------------------------------------------------------------------


def test_console_links_use_the_console_url_formats() -> None:
    alert = Alert(
        AlertKind.FAILING, "nightly-backup", T0, slot="2026-11-02T02:00:00Z", request_id="r-1"
    )

    links = LINKS.for_alert(alert)

    console = "https://us-east-1.console.aws.amazon.com"
    assert links == {
        "logs": f"{console}/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/"
        "$252Faws$252Flambda$252Fcronfleet-NightlyBackup"
        "/log-events$3FfilterPattern$3D$2522r-1$2522",
        "dashboard": f"{console}/cloudwatch/home?region=us-east-1"
        "#dashboards/dashboard/cronfleet-dashboard",
        "execution": f"{console}/dynamodbv2/home?region=us-east-1#edit-item?itemMode=2"
        "&pk=nightly-backup&sk=2026-11-02T02%3A00%3A00Z&table=cronfleet-Executions",
    }


def test_links_that_cannot_be_built_are_left_out() -> None:
    alert = Alert(AlertKind.MISSED, "report", T0)

    assert ConsoleLinks(region="eu-west-1").for_alert(alert) == {}
    assert LINKS.for_alert(alert)["logs"].endswith("cronfleet-NightlyBackup")


def _environment(**variables: str) -> CronfleetEnvironment:
    return CronfleetEnvironment.load(
        {"TASKS_TABLE_NAME": "tasks", "EXECUTIONS_TABLE_NAME": "executions", **variables}
    )


def test_on_a_stack_whose_functions_share_a_log_group_every_alert_links_to_it() -> None:
    # Given the recorder of a stack whose functions all log to /aws/lambda/cronfleet-prod
    environment = _environment(
        AWS_REGION="eu-west-1",
        AWS_LAMBDA_FUNCTION_NAME="cronfleet-prod-RecorderFunction-1A2B",
        AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/cronfleet-prod",
    )
    alert = Alert(AlertKind.TIMED_OUT, "nightly", T0, slot="2026-11-02T02:00:00Z", request_id="r-1")

    # When it links an alert about a task of another function
    links = links_for(environment)
    assert links is not None
    urls = links.for_function(
        "arn:aws:lambda:eu-west-1:1:function:cronfleet-prod-Nightly"
    ).for_alert(alert)

    # Then the logs link opens the shared group, narrowed to the run's request
    assert urls["logs"] == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        "#logsV2:log-groups/log-group/$252Faws$252Flambda$252Fcronfleet-prod"
        "/log-events$3FfilterPattern$3D$2522r-1$2522"
    )


def test_a_function_with_a_log_group_of_its_own_links_to_the_task_functions() -> None:
    # Given a function that logs to its own group (Lambda's default)
    environment = _environment(
        AWS_REGION="eu-west-1",
        AWS_LAMBDA_FUNCTION_NAME="cronfleet-prod-RecorderFunction-1A2B",
        AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/cronfleet-prod-RecorderFunction-1A2B",
    )
    alert = Alert(AlertKind.TIMED_OUT, "nightly", T0, slot="2026-11-02T02:00:00Z")

    links = links_for(environment)
    assert links is not None
    urls = links.for_function("cronfleet-prod-Nightly").for_alert(alert)

    # Then the logs link opens the task function's group, where its lines are
    assert urls["logs"].endswith("$252Faws$252Flambda$252Fcronfleet-prod-Nightly")


def test_a_local_alert_links_to_the_runs_log_file_and_the_commands_that_show_it(
    tmp_path: Path,
) -> None:
    # Given the local runtime's environment, and the log file of the failed attempt's request
    state_dir = tmp_path / ".cronfleet"
    log_file = state_dir / "logs" / "ExampleTaskFunction" / "r-1.log"
    log_file.parent.mkdir(parents=True)
    log_file.write_text("START RequestId: r-1 Version: $LATEST\n")
    environment = _environment(
        AWS_REGION="us-east-1",
        CRONFLEET_LOCAL_STATE_DIR=str(state_dir),
        CRONFLEET_LOCAL_CLI=".venv/bin/cronfleet",
    )
    slot = "2026-11-02T02:00:00Z#manual-1a2b3c4d"
    alert = Alert(AlertKind.FAILING, "nightly", T0, slot=slot, request_id="r-1", attempt=1)

    # When the alert is rendered with the links of the local runtime
    links = links_for(environment)
    assert links is not None
    email = json.loads(render(alert, links.for_function("ExampleTaskFunction"))["Message"])["email"]

    # Then its email links to the file, and to commands that show the run and the history,
    # and to nothing on AWS
    assert "On this machine:" in email
    assert f"  logs: {log_file}" in email
    assert (
        f"  run: .venv/bin/cronfleet logs nightly --slot '{slot}' --local --state-dir {state_dir}"
    ) in email
    assert (
        f"  history: .venv/bin/cronfleet history nightly --local --state-dir {state_dir}" in email
    )
    assert "console.aws.amazon.com" not in email


def test_a_local_alert_links_no_file_that_is_not_there_nor_a_run_of_the_dispatcher(
    tmp_path: Path,
) -> None:
    links = LocalLinks(str(tmp_path))

    # An alert whose request left no file here: no logs link
    failing = Alert(AlertKind.FAILING, "nightly", T0, slot="2026-11-02T02:00:00Z", request_id="r-9")
    assert set(links.for_alert(failing)) == {"run", "history"}
    # The dispatcher's own alert names no task to show
    clamped = Alert(AlertKind.TICK_CLAMPED, DISPATCHER_ALERT_ID, T0, slot="2026-11-02T02:00:00Z")
    assert links.for_alert(clamped) == {}


# --- subject and size limits ------------------------------------------------------------------


def test_a_long_task_id_and_foreign_text_give_a_valid_subject() -> None:
    long_id = "nightly-backup-" + "x" * 185
    assert len(long_id) == 200
    alert = Alert(
        AlertKind.DISPATCH_FAILED,
        long_id,
        T0,
        error_type="エラー\n型 ✗",
        error_message="échec: 磁盘已满 🔥\n" * 5000,
    )

    text = subject(alert)

    assert len(text) <= 99  # SNS: fewer than 100 characters
    assert all(" " <= ch <= "~" for ch in text)  # printable ASCII, so no line breaks either
    assert text.startswith("[cronfleet] nightly-backup-xxx")
    assert text.endswith("xxx... could not be invoked (??? ? ?)")


def test_an_error_type_too_long_for_the_subject_is_cut_at_the_end() -> None:
    alert = Alert(AlertKind.DISPATCH_FAILED, "report", T0, error_type="Timeout" * 100)

    text = subject(alert)

    assert len(text) <= 99
    assert text.startswith("[cronfleet] report could not be invoked (TimeoutTimeout")
    assert text.endswith("...")


def test_a_long_task_id_gives_way_so_the_verdict_still_fits() -> None:
    alert = Alert(AlertKind.FAILING, "t" * 200, T0, consecutive_failures=3)

    text = subject(alert)

    assert len(text) == 99
    assert text.endswith("... is failing (3 in a row)")


def test_accents_in_a_subject_are_folded_not_dropped() -> None:
    alert = Alert(AlertKind.DISPATCH_FAILED, "report", T0, error_type="Erreur\tdécodée")

    assert subject(alert) == "[cronfleet] report could not be invoked (Erreur decodee)"


def test_huge_errors_are_truncated_and_the_message_stays_far_under_the_sns_limit() -> None:
    nasty = '\x01"\\🔥é'  # the characters that grow most when escaped twice
    alert = Alert(
        AlertKind.FAILING,
        "t" * 200,
        T0,
        slot="2026-11-02T02:00:00Z",
        attempt=3,
        error_type=nasty * 10_000,
        error_message=nasty * 100_000,
        traceback=nasty * 1_000_000,
        request_id="r-1",
    )

    request = render(alert, LINKS)

    assert alert.error_message is not None
    assert alert.error_message.endswith("[truncated]")
    assert len(alert.error_message) == 2048
    assert alert.traceback is not None
    assert len(alert.traceback) == 4096
    assert len(request["Message"].encode()) < MESSAGE_LIMIT_BYTES / 2


# --- the SNS request --------------------------------------------------------------------------


@pytest.fixture
def sns() -> Any:
    return boto3.client(
        "sns",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def sent(sns: Any) -> Iterator[list[dict[str, Any]]]:
    """The Publish parameters as the client received them, for reading the message body."""
    calls: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    sns.meta.events.register("provide-client-params.sns.Publish", capture)
    yield calls
    sns.meta.events.unregister("provide-client-params.sns.Publish", capture)


def attributes(event: str, task: str, severity: str) -> dict[str, Any]:
    return {
        "event": {"DataType": "String", "StringValue": event},
        "task": {"DataType": "String", "StringValue": task},
        "severity": {"DataType": "String", "StringValue": severity},
    }


def test_a_failing_alert_is_published_as_the_exact_sns_request(
    sns: Any, sent: list[dict[str, Any]]
) -> None:
    # Given a task crossing its threshold on attempt 2 of the 02:00 slot
    task = Task(policy(AfterConsecutiveFailures=1))
    outcome = AttemptOutcome(
        status=F,
        ended_at=T0,
        duration_ms=4200,
        error_type="RuntimeError",
        error_message="disk full",
        traceback="Traceback (most recent call last):\n  ...\nRuntimeError: disk full",
    )
    event = AttemptFinished(
        "nightly-backup",
        "2026-11-02T02:00:00Z",
        2,
        outcome,
        FinishResult(True, F, 0, 1),
        request_id="8f5e-req",
    )
    [alert] = decide_alerts(task.policy, event)

    # When it is published
    with Stubber(sns) as stub:
        stub.add_response(
            "publish",
            {"MessageId": "m-1"},
            {
                "TopicArn": STACK_TOPIC,
                "Subject": "[cronfleet] nightly-backup is failing (1 in a row)",
                "Message": ANY,
                "MessageStructure": "json",
                "MessageAttributes": attributes("FAILING", "nightly-backup", "critical"),
            },
        )
        message_id = SnsNotifier(sns, topic_arn=STACK_TOPIC).publish(alert, LINKS)
        stub.assert_no_pending_responses()

    # Then the message holds a JSON body for machines and a text body for people
    assert message_id == "m-1"
    bodies = json.loads(sent[0]["Message"])
    assert set(bodies) == {"default", "email"}
    document = json.loads(bodies["default"])
    assert document["event"] == "FAILING"
    assert document["severity"] == "critical"
    assert (document["task_id"], document["slot"], document["attempt"]) == (
        "nightly-backup",
        "2026-11-02T02:00:00Z",
        2,
    )
    assert document["occurred_at"] == "2026-11-02T02:00:00Z"
    assert (document["consecutive_failures"], document["threshold"]) == (1, 1)
    assert document["error"]["type"] == "RuntimeError"
    assert document["error"]["message"] == "disk full"
    assert document["links"] == LINKS.for_alert(alert)
    assert "8f5e-req" in document["links"]["logs"]
    email = bodies["email"]
    assert email.startswith("The task has failed 1 time in a row (alert threshold: 1).")
    for line in (
        "Task:     nightly-backup",
        "Slot:     2026-11-02T02:00:00Z",
        "Attempt:  2",
        "  RuntimeError: disk full",
        "RuntimeError: disk full",
        f"  dashboard: {LINKS.dashboard()}",
        f"  logs: {LINKS.logs('8f5e-req')}",
        f"  execution: {LINKS.execution('nightly-backup', '2026-11-02T02:00:00Z')}",
    ):
        assert line in email.splitlines()


def test_a_recovery_is_published_to_the_tasks_own_topic(
    sns: Any, sent: list[dict[str, Any]]
) -> None:
    # Given a failing task of its own topic that succeeds again
    task = Task(policy(AfterConsecutiveFailures=2, TopicArn=TASK_TOPIC))
    task.runs([F, F])
    [alert] = task.run(S)

    # When it is published
    with Stubber(sns) as stub:
        stub.add_response(
            "publish",
            {"MessageId": "m-2"},
            {
                "TopicArn": TASK_TOPIC,
                "Subject": "[cronfleet] nightly-backup recovered after 2 failures",
                "Message": ANY,
                "MessageStructure": "json",
                "MessageAttributes": attributes("RECOVERED", "nightly-backup", "info"),
            },
        )
        SnsNotifier(sns, topic_arn=STACK_TOPIC).publish(alert, LINKS)
        stub.assert_no_pending_responses()

    # Then both bodies say it recovered, with no error
    bodies = json.loads(sent[0]["Message"])
    document = json.loads(bodies["default"])
    assert (document["event"], document["severity"], document["error"]) == (
        "RECOVERED",
        "info",
        None,
    )
    assert document["consecutive_failures"] == 2
    assert bodies["email"].startswith("The task succeeded again after 2 failures in a row.")
    assert "Error:" not in bodies["email"]


def test_a_missed_alert_shows_the_slot_range_in_the_email(
    sns: Any, sent: list[dict[str, Any]]
) -> None:
    event = SlotsMissed("report", "2026-11-02T00:00:00Z", "2026-11-02T01:45:00Z", 8, T0)
    [alert] = decide_alerts(policy(), event)

    with Stubber(sns) as stub:
        stub.add_response("publish", {"MessageId": "m-3"}, None)
        SnsNotifier(sns, topic_arn=STACK_TOPIC).publish(alert)

    bodies = json.loads(sent[0]["Message"])
    assert json.loads(bodies["default"])["missed"] == {
        "count": 8,
        "first_slot": "2026-11-02T00:00:00Z",
        "last_slot": "2026-11-02T01:45:00Z",
    }
    assert "Slots:    2026-11-02T00:00:00Z .. 2026-11-02T01:45:00Z" in bodies["email"]


@pytest.mark.parametrize("code", ["NotFound", "AuthorizationError", "KMSAccessDenied"])
def test_a_refused_publish_becomes_an_alert_delivery_error(sns: Any, code: str) -> None:
    alert = Alert(AlertKind.MISSED, "report", T0, missed_count=1)

    with Stubber(sns) as stub:
        stub.add_client_error("publish", service_error_code=code, service_message="refused")
        with pytest.raises(AlertDeliveryError) as error:
            SnsNotifier(sns, topic_arn=STACK_TOPIC).publish(alert)

    assert (error.value.code, error.value.message) == (code, "refused")
    assert error.value.__cause__ is not None


def test_the_sns_client_is_created_only_when_an_alert_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[str] = []
    client = object()

    def fake_client(name: str, **_: Any) -> object:
        created.append(name)
        return client

    monkeypatch.setattr(boto3, "client", fake_client)

    notifier = SnsNotifier(topic_arn=STACK_TOPIC)
    assert created == []

    first, second = notifier.client, notifier.client
    assert first is second is client
    assert created == ["sns"]


def test_an_api_schedules_alert_carries_its_tenant_for_subscription_filters(
    sns: Any, sent: list[dict[str, Any]]
) -> None:
    # Given a FAILING alert of a schedule a tenant made through the API
    task = Task(policy(AfterConsecutiveFailures=1))
    outcome = AttemptOutcome(status=F, ended_at=T0, error_type="RuntimeError", error_message="x")
    event = AttemptFinished(
        "s-0123", "2026-11-02T02:00:00Z", 1, outcome, FinishResult(True, F, 0, 1)
    )
    [alert] = decide_alerts(task.policy, event)
    alert = dataclasses.replace(alert, tenant="acme")

    # When it is published
    with Stubber(sns) as stub:
        stub.add_response(
            "publish",
            {"MessageId": "m-2"},
            {
                "TopicArn": STACK_TOPIC,
                "Subject": ANY,
                "Message": ANY,
                "MessageStructure": "json",
                "MessageAttributes": {
                    **attributes("FAILING", "s-0123", "critical"),
                    "tenant": {"DataType": "String", "StringValue": "acme"},
                },
            },
        )
        SnsNotifier(sns, topic_arn=STACK_TOPIC).publish(alert, LINKS)
        stub.assert_no_pending_responses()

    # Then the tenant is an attribute a filter policy can match, and in the JSON body too
    document = json.loads(json.loads(sent[0]["Message"])["default"])
    assert document["tenant"] == "acme"
