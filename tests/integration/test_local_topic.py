"""The local alert topic: a loopback SNS Publish endpoint that journals what would be emailed.

Alerts reach it the way they reach SNS: through the real notifier and a real botocore client,
pointed at the topic's endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.exceptions import ClientError

from cronfleet.alerts.policy import Alert, AlertKind
from cronfleet.alerts.sns import SnsNotifier
from cronfleet_tools.local.topic import TOPIC_ARN, LocalTopic, PublishedMessage, read_journal

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

pytestmark = pytest.mark.integration


@pytest.fixture
def received() -> list[PublishedMessage]:
    return []


@pytest.fixture
def topic(tmp_path: Path, received: list[PublishedMessage]) -> Iterator[LocalTopic]:
    topic = LocalTopic(tmp_path / "alerts.jsonl", received.append).start()
    yield topic
    topic.stop()


@pytest.fixture
def sns(topic: LocalTopic) -> SNSClient:
    return boto3.client(
        "sns",
        endpoint_url=topic.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="cronfleetlocal",
        aws_secret_access_key="cronfleetlocal",
    )


def test_an_alert_published_by_the_notifier_is_journalled_as_its_email(
    topic: LocalTopic, sns: SNSClient, received: list[PublishedMessage]
) -> None:
    # given an alert whose error text needs encoding on the way (&, =, %, non-ASCII)
    alert = Alert(
        AlertKind.FAILING,
        "nightly-export",
        datetime(2026, 11, 2, 9, 4, 1, tzinfo=UTC),
        slot="2026-11-02T09:00:00Z",
        attempt=3,
        error_type="QuotaExceeded",
        error_message="100% of quota used & limit=5 — retry after 10:00",
        consecutive_failures=3,
        threshold=3,
    )

    # when the notifier publishes it to the local topic
    message_id = SnsNotifier(sns, topic_arn=TOPIC_ARN).publish(alert)

    # then the journal holds what an email subscriber would read, with the alert's attributes
    (message,) = read_journal(topic.journal)
    assert message.message_id == message_id
    assert message.subject == "[cronfleet] nightly-export is failing (3 in a row)"
    assert message.text.startswith(
        "The task has failed 3 times in a row (alert threshold: 3).\n\n"
        "Task:     nightly-export\n"
        "Event:    FAILING (critical)\n"
        "When:     2026-11-02T09:04:01Z\n"
        "Slot:     2026-11-02T09:00:00Z\n"
        "Attempt:  3\n"
    )
    assert "Error:\n  QuotaExceeded: 100% of quota used & limit=5 — retry after 10:00\n" in (
        message.text
    )
    assert message.attributes == {
        "event": "FAILING",
        "task": "nightly-export",
        "severity": "critical",
    }
    assert (message.event, message.task) == ("FAILING", "nightly-export")
    # and the topic's callback got the same message
    assert received == [message]


def test_a_plain_publish_is_journalled_as_sent(topic: LocalTopic, sns: SNSClient) -> None:
    # given a message without MessageStructure=json: every protocol gets the text as it is
    response = sns.publish(TopicArn=TOPIC_ARN, Subject="Hello", Message="one line\nand another")

    (message,) = read_journal(topic.journal)
    assert message.message_id == response["MessageId"]
    assert (message.subject, message.text, message.attributes) == (
        "Hello",
        "one line\nand another",
        {},
    )


def test_each_publish_appends_to_the_journal(topic: LocalTopic, sns: SNSClient) -> None:
    for index in range(3):
        sns.publish(TopicArn=TOPIC_ARN, Message=f"message {index}")

    assert [message.text for message in read_journal(topic.journal)] == [
        "message 0",
        "message 1",
        "message 2",
    ]


def test_an_action_other_than_publish_is_refused_as_an_invalid_parameter(
    topic: LocalTopic, sns: SNSClient, received: list[PublishedMessage]
) -> None:
    with pytest.raises(ClientError) as refused:
        sns.list_topics()

    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "InvalidParameter"
    assert "only Publish is served locally, not 'ListTopics'" in error["Error"]["Message"]
    # and nothing was journalled
    assert read_journal(topic.journal) == []
    assert received == []


def test_a_journal_that_was_never_written_reads_as_empty(tmp_path: Path) -> None:
    assert read_journal(tmp_path / "alerts.jsonl") == []
