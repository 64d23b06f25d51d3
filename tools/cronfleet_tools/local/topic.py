"""A local stand-in for the alert topic: an SNS ``Publish`` endpoint on loopback.

The functions the local runner starts publish their alerts with the real SNS notifier, through
botocore, to this endpoint (``AWS_ENDPOINT_URL_SNS``). Each message is appended to
``alerts.jsonl`` in the state directory and handed to a callback that prints it, so what a
team would get by email is what the terminal shows.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:cronfleet-local-alerts"


@dataclass(frozen=True)
class PublishedMessage:
    subject: str
    text: str  # what an email subscriber reads
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str = ""

    @property
    def event(self) -> str:
        return self.attributes.get("event", "")

    @property
    def task(self) -> str:
        return self.attributes.get("task", "")


def parse_publish(form: dict[str, list[str]]) -> PublishedMessage:
    """A Publish request of SNS's query protocol, as botocore sends it."""
    values = {key: items[0] for key, items in form.items()}
    if values.get("Action") != "Publish":
        raise ValueError(f"Action: only Publish is served locally, not {values.get('Action')!r}")
    message = values.get("Message", "")
    text = message
    if values.get("MessageStructure") == "json":
        bodies: dict[str, Any] = json.loads(message)
        text = bodies.get("email", bodies.get("default", ""))
    attributes = {}
    index = 1
    while f"MessageAttributes.entry.{index}.Name" in values:
        prefix = f"MessageAttributes.entry.{index}"
        attributes[values[f"{prefix}.Name"]] = values.get(f"{prefix}.Value.StringValue", "")
        index += 1
    return PublishedMessage(
        subject=values.get("Subject", ""),
        text=text,
        attributes=attributes,
        message_id=str(uuid.uuid4()),
    )


class LocalTopic:
    """Serve Publish on a free loopback port until stopped."""

    def __init__(
        self, journal: Path, on_message: Callable[[PublishedMessage], None] | None = None
    ) -> None:
        self.journal = journal
        self.on_message = on_message
        self._write_lock = threading.Lock()
        topic = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                try:
                    message = parse_publish(form)
                except (ValueError, KeyError) as exc:
                    self._reply(400, _error_xml("InvalidParameter", str(exc)))
                    return
                topic.received(message)
                self._reply(200, _publish_xml(message.message_id))

            def _reply(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # requests are journalled, not logged

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalTopic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self, message: PublishedMessage) -> None:
        with self._write_lock, self.journal.open("a") as journal:
            journal.write(json.dumps(asdict(message)) + "\n")
        if self.on_message is not None:
            self.on_message(message)


def read_journal(path: Path) -> list[PublishedMessage]:
    if not path.exists():
        return []
    return [PublishedMessage(**json.loads(line)) for line in path.read_text().splitlines() if line]


def _publish_xml(message_id: str) -> str:
    return (
        '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
        f"<PublishResult><MessageId>{message_id}</MessageId></PublishResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</PublishResponse>"
    )


def _error_xml(code: str, message: str) -> str:
    return (
        '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
