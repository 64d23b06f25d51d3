"""The SNS adapter: the only code in cronfleet's alerts that touches boto3."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cronfleet.alerts.render import AlertLinks, render
from cronfleet.errors import CronfleetError

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

    from cronfleet.alerts.policy import Alert

# One quick retry for a throttled or flaky Publish: an alert that still fails is the caller's
# to log, and must not hold up the dispatcher's tick.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=3,
    read_timeout=5,
)


class AlertDeliveryError(CronfleetError, RuntimeError):
    """SNS refused or could not take the alert (no topic, no permission, KMS, throttling)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SnsNotifier:
    """Publishes alerts to the stack's topic, or to the task's own (AlertPolicy.TopicArn)."""

    def __init__(self, client: SNSClient | None = None, *, topic_arn: str) -> None:
        self._client = client
        self.topic_arn = topic_arn

    @property
    def client(self) -> SNSClient:
        # Created on the first alert: most invocations never send one, so they skip the cost.
        if self._client is None:
            import boto3

            self._client = boto3.client("sns", config=CLIENT_CONFIG)
        return self._client

    def publish(self, alert: Alert, links: AlertLinks | None = None) -> str:
        """Send the alert; returns SNS's MessageId."""
        return self.send(render(alert, links), topic_arn=alert.topic_arn)

    def send(self, request: Mapping[str, Any], *, topic_arn: str | None = None) -> str:
        """Publish an already rendered message (Subject, Message, MessageStructure, ...)."""
        try:
            response = self.client.publish(TopicArn=topic_arn or self.topic_arn, **request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise AlertDeliveryError(
                error.get("Code", "ClientError"), error.get("Message", "")
            ) from exc
        except BotoCoreError as exc:
            raise AlertDeliveryError(type(exc).__name__, str(exc)) from exc
        return response["MessageId"]
