"""A run's log lines on a deployed stack, from CloudWatch Logs.

Every function of the stack logs to one log group, ``/aws/lambda/<StackName>`` (the stack's
``FunctionLogGroupName`` output), each in streams named ``YYYY/MM/DD/<function>[<version>]<id>``.
A run's lines are found there with two filter patterns, over the run's time window:

- the JSON lines about the run, from any function: the task wrapper sets ``correlation_id`` to
  the execution id (``<task>#<slot>``) on every line of the run, and the dispatcher and the
  recorder log ``task_id`` and ``slot``::

    { $.correlation_id = "Nightly#2026-11-02T02:00:00Z" || ($.task_id = "Nightly" && ...) }

- every line of the attempts' Lambda requests, by request id: Lambda's ``START``, ``END`` and
  ``REPORT`` lines, its timeout and crash messages, and what the code printed
  (``?"<request 1>" ?"<request 2>"``).

Both are read with ``FilterLogEvents``, page by page, and merged in time order.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cronfleet.errors import CronfleetError
from cronfleet.store import ExecutionRecord, TaskRecord
from cronfleet_tools.run_logs.lines import LogLine, is_metrics

# A boto3 CloudWatch Logs client (no type stubs for it are installed).
CloudWatchLogsClient = Any

# The stack's outputs read here (and, for the second, in cronfleet_tools.stack_target).
FUNCTION_LOG_GROUP_OUTPUT = "FunctionLogGroupName"
HTTP_FUNCTION_OUTPUT = "HttpTaskFunctionName"
# A run's lines start when its first attempt is dispatched; a minute earlier allows for clocks.
BEFORE = timedelta(minutes=1)
# After the ledger says a run ended, Lambda still writes END and REPORT, and a failure reaches
# the recorder after Lambda's own retries of the invoke (a minute, then two).
AFTER = timedelta(minutes=10)
# FilterLogEvents accepts a pattern of up to 1024 characters: enough request ids for every
# attempt a retry policy allows, and then some.
MAX_REQUESTS = 20
# YYYY/MM/DD/<function>[<version>]<environment id>: the function is the fourth part, up to '['.
_STREAM = re.compile(r"^\d{4}/\d{2}/\d{2}/(?P<function>[^\[]+)\[")


class LogsUnavailable(CronfleetError, RuntimeError):
    """CloudWatch Logs would not give the lines (no such log group, no permission)."""


def logs_client(region: str | None) -> CloudWatchLogsClient:
    """The CloudWatch Logs client the CLI reads with (tests replace it with a stubbed one)."""
    import boto3

    return boto3.client("logs", region_name=region)


def run_pattern(task_id: str, slot: str) -> str:
    """The JSON lines about one run, whichever function wrote them."""
    return (
        f'{{ $.correlation_id = "{task_id}#{slot}" || '
        f'($.task_id = "{task_id}" && $.slot = "{slot}") }}'
    )


def requests_pattern(request_ids: list[str]) -> str:
    """Every line that names one of these Lambda requests."""
    return " ".join(f'?"{request_id}"' for request_id in request_ids)


def _epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def window(execution: ExecutionRecord) -> tuple[datetime, datetime | None] | None:
    """When the run's lines can have been written: from its first dispatch, to a while after it
    ended (None: it goes on). None for a run that never ran anything."""
    starts = [
        moment
        for attempt in execution.attempts
        for moment in (_time(attempt.dispatched_at), _time(attempt.started_at))
        if moment is not None
    ]
    if not starts:
        return None
    if not execution.status.is_final:
        return min(starts) - BEFORE, None
    ends = [_time(attempt.ended_at) for attempt in execution.attempts]
    end = max([moment for moment in ends if moment is not None] + starts)
    return min(starts) - BEFORE, end + AFTER


class CloudWatchRunLogs:
    def __init__(self, client: CloudWatchLogsClient, log_group: str) -> None:
        self.client = client
        self.log_group = log_group

    def where(self) -> str:
        return f"log group {self.log_group} in {self.client.meta.region_name}"

    def patterns(self, execution: ExecutionRecord) -> list[str]:
        patterns = [run_pattern(execution.task_id, execution.slot)]
        requests = [a.request_id for a in execution.attempts if a.request_id][-MAX_REQUESTS:]
        if requests:
            patterns.append(requests_pattern(requests))
        return patterns

    def lines(self, execution: ExecutionRecord, since: datetime | None = None) -> list[LogLine]:
        """The run's lines, in time order; with ``since``, only those from then on."""
        span = window(execution)
        if span is None:
            return []
        start, end = span
        if since is not None:
            start = max(start, since)
        events: dict[str, dict[str, Any]] = {}
        for pattern in self.patterns(execution):
            for event in self._events(pattern, start, end):
                events.setdefault(event["eventId"], event)
        ordered = sorted(events.values(), key=lambda event: (event["timestamp"], event["eventId"]))
        return [
            self._line(event, execution)
            for event in ordered
            if not is_metrics(event.get("message", ""))
        ]

    def _events(self, pattern: str, start: datetime, end: datetime | None) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            "logGroupName": self.log_group,
            "filterPattern": pattern,
            "startTime": _epoch_ms(start),
        }
        if end is not None:
            request["endTime"] = _epoch_ms(end)
        events: list[dict[str, Any]] = []
        while True:
            try:
                page = self.client.filter_log_events(**request)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code, message = error.get("Code", "ClientError"), error.get("Message", "")
                if code == "ResourceNotFoundException":
                    message = f"no log group {self.log_group} ({message})"
                raise LogsUnavailable(f"cannot read {self.where()}: {code}: {message}") from None
            except BotoCoreError as exc:
                raise LogsUnavailable(f"cannot read {self.where()}: {exc}") from None
            events += [dict(event) for event in page.get("events", [])]
            token = page.get("nextToken")
            if not token:
                return events
            request["nextToken"] = token

    @staticmethod
    def _line(event: dict[str, Any], execution: ExecutionRecord) -> LogLine:
        stream = str(event.get("logStreamName", ""))
        match = _STREAM.match(stream)
        source = match.group("function") if match else stream
        message = str(event.get("message", ""))
        for attempt in execution.attempts:
            if attempt.request_id and attempt.request_id in message:
                source = f"attempt {attempt.attempt}, {source}, request {attempt.request_id}"
                break
        moment = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
        return LogLine(
            key=str(event["eventId"]),
            timestamp=moment,
            source=f"{source}, {moment:%Y-%m-%d}",
            message=message.rstrip("\n"),
        )


def for_stack(stack: str, region: str | None, task: TaskRecord) -> tuple[CloudWatchRunLogs, str]:
    """The log group of a deployed stack, read from its outputs, and a note for a stack from
    before its functions shared one ("" when there is nothing to say)."""
    import boto3

    from cronfleet.alerts.render import log_group_of

    try:
        cloudformation = boto3.client("cloudformation", region_name=region)
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except (BotoCoreError, ClientError) as exc:
        raise LogsUnavailable(f"cannot read the outputs of stack {stack!r}: {exc}") from None
    outputs = {
        output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])
    }
    client = logs_client(cloudformation.meta.region_name)
    if FUNCTION_LOG_GROUP_OUTPUT in outputs:
        return CloudWatchRunLogs(client, outputs[FUNCTION_LOG_GROUP_OUTPUT]), ""
    # Deployed before every function logged to one group: the task's function has its own.
    function = task.definition.function or outputs.get(HTTP_FUNCTION_OUTPUT)
    group = log_group_of(function)
    if group is None:
        raise LogsUnavailable(
            f"stack {stack!r} has no {FUNCTION_LOG_GROUP_OUTPUT} output, and the function of "
            f"{task.task_id} is not known: redeploy the stack"
        )
    note = (
        f"Note: stack {stack!r} has no {FUNCTION_LOG_GROUP_OUTPUT} output (deployed before its "
        f"functions shared one log group): reading {group}, the task function's own, which "
        "lacks the dispatcher's and the recorder's lines."
    )
    return CloudWatchRunLogs(client, group), note
