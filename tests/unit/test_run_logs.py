"""Reading a run's lines from CloudWatch Logs, and how a person reads a line.

CloudWatch Logs has no local engine: the adapter is driven against botocore's Stubber on a real
client, which checks every request it sends (log group, filter pattern, time window, page
token) and answers as the service does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cronfleet.lifecycle.states import RunStatus, Trigger
from cronfleet.store.records import AttemptRecord, ExecutionRecord
from cronfleet_tools.run_logs.cloudwatch import CloudWatchRunLogs, LogsUnavailable
from cronfleet_tools.run_logs.lines import LogLine, readable, with_headings

GROUP = "/aws/lambda/cronfleet-prod"
SLOT = "2026-11-02T09:00:00Z"
RUN_PATTERN = (
    '{ $.correlation_id = "NightlyExport#2026-11-02T09:00:00Z" || '
    '($.task_id = "NightlyExport" && $.slot = "2026-11-02T09:00:00Z") }'
)
FIRST, SECOND = "8f5e0a4c-0000-4000-8000-000000000001", "8f5e0a4c-0000-4000-8000-000000000002"
TASK_STREAM = "2026/11/02/cronfleet-prod-NightlyExportFunction-Ab12Cd[$LATEST]0a1b2c3d"
DISPATCHER_STREAM = "2026/11/02/cronfleet-prod-DispatcherFunction-Ef34Gh[$LATEST]4e5f6a7b"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def attempt(
    number: int, request: str | None, status: RunStatus, start: str, end: str | None
) -> AttemptRecord:
    return AttemptRecord(
        attempt=number,
        status=status,
        dispatched_at=start,
        started_at=start,
        ended_at=end,
        request_id=request,
    )


def run(status: RunStatus, *attempts: AttemptRecord) -> ExecutionRecord:
    return ExecutionRecord(
        task_id="NightlyExport",
        slot=SLOT,
        status=status,
        trigger=Trigger.SCHEDULE,
        attempt=len(attempts),
        attempts=attempts,
    )


def event(event_id: str, at: str, message: str, stream: str = TASK_STREAM) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "timestamp": ms(at),
        "ingestionTime": ms(at) + 500,
        "logStreamName": stream,
        "message": message,
    }


def powertools(message: str, request: str, **extra: Any) -> str:
    return json.dumps(
        {
            "level": "INFO",
            "message": message,
            "timestamp": "2026-11-02 09:00:01,120+0000",
            "service": "cronfleet",
            "function_request_id": request,
            "correlation_id": f"NightlyExport#{SLOT}",
            **extra,
        }
    )


@pytest.fixture
def stubbed() -> Iterator[tuple[CloudWatchRunLogs, Stubber]]:
    client = boto3.client(
        "logs",
        region_name="eu-west-1",
        aws_access_key_id="cronfleetlocal",
        aws_secret_access_key="cronfleetlocal",
    )
    with Stubber(client) as stubber:
        yield CloudWatchRunLogs(client, GROUP), stubber
        stubber.assert_no_pending_responses()


def test_a_finished_run_is_read_with_two_patterns_page_by_page_in_its_time_window(
    stubbed: tuple[CloudWatchRunLogs, Stubber],
) -> None:
    logs, stubber = stubbed
    # Given a run whose first attempt failed at 09:00:05 and whose second succeeded at 09:02:03
    execution = run(
        RunStatus.SUCCEEDED,
        attempt(1, FIRST, RunStatus.FAILED, "2026-11-02T09:00:00.200Z", "2026-11-02T09:00:05Z"),
        attempt(2, SECOND, RunStatus.SUCCEEDED, "2026-11-02T09:02:00Z", "2026-11-02T09:02:03Z"),
    )
    window = {
        "logGroupName": GROUP,
        "startTime": ms("2026-11-02T08:59:00.200Z"),  # a minute before its first dispatch
        "endTime": ms("2026-11-02T09:12:03Z"),  # ten minutes after it ended
    }
    # The JSON lines about the run, in two pages
    stubber.add_response(
        "filter_log_events",
        {
            "events": [
                event("e2", "2026-11-02T09:00:01.120Z", powertools("Exporting", FIRST)),
                event(
                    "e1",
                    "2026-11-02T09:00:00.100Z",
                    json.dumps(
                        {
                            "level": "INFO",
                            "message": "Invoked",
                            "task_id": "NightlyExport",
                            "slot": SLOT,
                            "attempt": 1,
                        }
                    ),
                    DISPATCHER_STREAM,
                ),
            ],
            "nextToken": "page-2",
        },
        {**window, "filterPattern": RUN_PATTERN},
    )
    stubber.add_response(
        "filter_log_events",
        {"events": [event("e6", "2026-11-02T09:02:02Z", powertools("Exported", SECOND, rows=12))]},
        {**window, "filterPattern": RUN_PATTERN, "nextToken": "page-2"},
    )
    # Every line of the two Lambda requests: Lambda's own, and a metric line, which is not shown
    stubber.add_response(
        "filter_log_events",
        {
            "events": [
                event(
                    "e0", "2026-11-02T09:00:00.900Z", f"START RequestId: {FIRST} Version: $LATEST\n"
                ),
                event("e2", "2026-11-02T09:00:01.120Z", powertools("Exporting", FIRST)),
                event("e3", "2026-11-02T09:00:05Z", f"END RequestId: {FIRST}\n"),
                event(
                    "e4",
                    "2026-11-02T09:00:05.001Z",
                    f"REPORT RequestId: {FIRST}\tDuration: 4000 ms\n",
                ),
                event(
                    "e5", "2026-11-02T09:02:00Z", f"START RequestId: {SECOND} Version: $LATEST\n"
                ),
                event(
                    "e7",
                    "2026-11-02T09:02:03Z",
                    json.dumps({"_aws": {"Timestamp": 1}, "RunSucceeded": [1.0], "x": SECOND}),
                ),
            ]
        },
        {**window, "filterPattern": f'?"{FIRST}" ?"{SECOND}"'},
    )

    # When the run's lines are read
    lines = logs.lines(execution)

    # Then each line comes once, in the order written, named by the attempt that wrote it
    assert [line.key for line in lines] == ["e1", "e0", "e2", "e3", "e4", "e5", "e6"]
    assert lines[0].source == "cronfleet-prod-DispatcherFunction-Ef34Gh, 2026-11-02"
    assert lines[1].source == (
        f"attempt 1, cronfleet-prod-NightlyExportFunction-Ab12Cd, request {FIRST}, 2026-11-02"
    )
    assert lines[6].source.startswith("attempt 2, cronfleet-prod-NightlyExportFunction-Ab12Cd")
    assert lines[1].message == f"START RequestId: {FIRST} Version: $LATEST"


def test_a_run_still_going_is_read_up_to_now_from_the_last_line_seen(
    stubbed: tuple[CloudWatchRunLogs, Stubber],
) -> None:
    logs, stubber = stubbed
    # Given a run whose attempt is still running, and lines seen up to 09:00:04
    execution = run(
        RunStatus.RUNNING, attempt(1, FIRST, RunStatus.RUNNING, "2026-11-02T09:00:00Z", None)
    )
    seen_until = datetime(2026, 11, 2, 9, 0, 4, tzinfo=UTC)
    for pattern in (RUN_PATTERN, f'?"{FIRST}"'):
        stubber.add_response(
            "filter_log_events",
            {"events": []},
            {
                "logGroupName": GROUP,
                "filterPattern": pattern,
                "startTime": ms("2026-11-02T09:00:04Z"),
            },
        )

    # When the lines from then on are read
    lines = logs.lines(execution, since=seen_until)

    # Then the window starts there and has no end (nothing new yet)
    assert lines == []


def test_a_run_that_ran_nothing_asks_cloudwatch_nothing(
    stubbed: tuple[CloudWatchRunLogs, Stubber],
) -> None:
    logs, _ = stubbed
    skipped = run(RunStatus.SKIPPED)

    assert logs.lines(skipped) == []


def test_a_log_group_that_does_not_exist_is_an_error_that_names_it(
    stubbed: tuple[CloudWatchRunLogs, Stubber],
) -> None:
    logs, stubber = stubbed
    execution = run(
        RunStatus.SUCCEEDED,
        attempt(1, None, RunStatus.SUCCEEDED, "2026-11-02T09:00:00Z", "2026-11-02T09:00:01Z"),
    )
    stubber.add_client_error(
        "filter_log_events",
        service_error_code="ResourceNotFoundException",
        service_message="The specified log group does not exist.",
        http_status_code=400,
    )

    with pytest.raises(LogsUnavailable) as refused:
        logs.lines(execution)

    assert str(refused.value) == (
        f"cannot read log group {GROUP} in eu-west-1: ResourceNotFoundException: no log group "
        f"{GROUP} (The specified log group does not exist.)"
    )


# --- a line as a person reads it ---------------------------------------------------------------


def line(
    message: str, at: datetime | None = None, source: str = "attempt 1, Fn, request r"
) -> LogLine:
    return LogLine(key=message, timestamp=at, source=source, message=message)


def test_a_powertools_line_reads_as_its_time_level_message_and_its_own_keys() -> None:
    at = datetime(2026, 11, 2, 9, 0, 1, 120000, tzinfo=UTC)
    text = powertools("Exported", FIRST, rows=12, table="orders", task_id="NightlyExport")

    assert readable(line(text, at)) == ["09:00:01.120 INFO  Exported  rows=12 table=orders"]


def test_a_logged_exception_reads_with_its_traceback_under_it() -> None:
    at = datetime(2026, 11, 2, 9, 0, 1, tzinfo=UTC)
    text = json.dumps(
        {
            "level": "ERROR",
            "message": "Task code failed",
            "exception": "Traceback:\n  boom",
            "exception_name": "RuntimeError",
        }
    )

    assert readable(line(text, at)) == [
        "09:00:01.000 ERROR Task code failed",
        "               Traceback:",
        "                 boom",
    ]


def test_lambdas_own_lines_read_as_written_under_a_heading_per_attempt() -> None:
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    lines = [
        line(f"START RequestId: {FIRST}", at, "attempt 1, Fn, request a"),
        line("a plain print line", None, "attempt 1, Fn, request a"),
        line(f"START RequestId: {SECOND}", at, "attempt 2, Fn, request b"),
    ]

    assert list(with_headings(lines)) == [
        "── attempt 1, Fn, request a",
        f"09:00:00.000 START RequestId: {FIRST}",
        "             a plain print line",
        "── attempt 2, Fn, request b",
        f"09:00:00.000 START RequestId: {SECOND}",
    ]
