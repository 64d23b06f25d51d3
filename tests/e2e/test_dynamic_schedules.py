"""Dynamic schedules end to end: made through the API, run by the local runtime, read back.

The runner replays a week, Sunday 2026-11-01 00:00Z to Sunday the 8th 15:00Z, at full speed;
it starts on the day US clocks fall back (02:00 EDT becomes 01:00 EST at 06:00Z). Before its
first tick (the reporter's ``started``, with the stack and its API up), one project's three
schedules are created through the local API with :class:`cronfleet.client.CronfleetClient`,
signed with the local key:

- daily 09:00 America/New_York: 14:00Z every day, 09:00 EST after the change;
- weekly Monday 09:00 UTC: the 2nd at 09:00Z;
- monthly on the 1st 10:30 UTC: the 1st at 10:30Z.

The dispatcher runs them as it runs the template's tasks; after the last tick (``finished``,
the stack still up) their executions and stats are read through the API.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from cronfleet.client import CronfleetClient, Execution, Schedule, Stats
from cronfleet_tools.local.dynamodb_local import REGION
from cronfleet_tools.local.runner import LocalRunner, RunOptions, RunSummary
from cronfleet_tools.local.stack import LocalStack
from tests.support.local_api import LOCAL_CREDENTIALS, Recorder, template_without_tasks

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)  # a Sunday, the 1st of the month
UNTIL = datetime(2026, 11, 8, 15, 0, tzinfo=UTC)  # a week on, after 09:00 in New York
# The daily schedule's slots, by an engine independent of ours.
DAILY_SLOTS = [
    slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for slot in itertools.takewhile(
        lambda at: at <= UNTIL,
        CronSim("0 9 * * *", START.astimezone(ZoneInfo("America/New_York"))),
    )
]
TENANT = "acme"
PROJECT = "project-42"
SEED = {
    "daily": {"schedule": "cron(0 9 * * ? *)", "timezone": "America/New_York"},
    "weekly": {"schedule": "cron(0 9 ? * MON *)", "timezone": "UTC"},
    "monthly": {"schedule": "cron(30 10 1 * ? *)", "timezone": "UTC"},
}


@dataclass
class Project:
    """What the API said: the schedules as created, then their runs and stats at the end."""

    created: dict[str, Schedule] = field(default_factory=dict)
    executions: dict[str, list[Execution]] = field(default_factory=dict)
    stats: dict[str, Stats] = field(default_factory=dict)
    listed: list[Schedule] = field(default_factory=list)


@dataclass(frozen=True)
class Replay:
    summary: RunSummary
    recorder: Recorder
    project: Project


def client_of(stack: LocalStack) -> CronfleetClient:
    assert stack.info is not None
    return CronfleetClient(stack.info.api_url, region=REGION, credentials=LOCAL_CREDENTIALS)


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Replay:
    directory = tmp_path_factory.mktemp("dynamic-schedules")
    project = Project()

    def create(stack: LocalStack) -> None:
        with client_of(stack) as api:
            for name, fields in SEED.items():
                project.created[name] = api.create_schedule(
                    TENANT,
                    function="ExampleTaskFunction",
                    external_id=PROJECT,
                    deduplication_key=f"{PROJECT}-{name}",
                    payload={"report": name},
                    **fields,
                )

    def read(stack: LocalStack) -> None:
        with client_of(stack) as api:
            project.listed = list(api.iter_schedules(TENANT, external_id=PROJECT))
            for name, schedule in project.created.items():
                project.executions[name] = list(api.iter_executions(TENANT, schedule.id))
                project.stats[name] = api.get_stats(TENANT, schedule.id)

    recorder = Recorder(on_started=create, on_finished=read)
    options = RunOptions(
        template=template_without_tasks(directory),
        state_dir=directory / ".cronfleet",
        start=START,
        until=UNTIL,
        speed=None,
        ca_file=None,
    )
    summary = LocalRunner(options, recorder).run()
    return Replay(summary, recorder, project)


def test_the_three_schedules_are_created_for_the_project_with_their_first_runs(
    replay: Replay,
) -> None:
    # given the seed's schedules created through the API at the replay's start
    created = replay.project.created

    # then each was created, for the project, first due at its first slot in the window
    assert all(schedule.created for schedule in created.values())
    assert {name: schedule.next_run for name, schedule in created.items()} == {
        "daily": datetime(2026, 11, 1, 14, 0, tzinfo=UTC),
        "weekly": datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        "monthly": datetime(2026, 11, 1, 10, 30, tzinfo=UTC),
    }
    assert sorted(schedule.id for schedule in replay.project.listed) == sorted(
        schedule.id for schedule in created.values()
    )


def test_the_local_runtime_runs_each_schedule_at_its_slots(replay: Replay) -> None:
    # given the replayed window
    # when each schedule's executions are read through the API
    slots = {
        name: sorted(execution.slot for execution in executions)
        for name, executions in replay.project.executions.items()
    }

    # then each ran at its slots: 09:00 New York is 14:00Z on both sides of the change
    assert len(DAILY_SLOTS) == 8
    assert {slot[11:] for slot in DAILY_SLOTS} == {"14:00:00Z"}
    assert slots == {
        "daily": DAILY_SLOTS,
        "weekly": ["2026-11-02T09:00:00Z"],
        "monthly": ["2026-11-01T10:30:00Z"],
    }


def test_every_run_succeeded_with_the_schedule_s_payload(replay: Replay) -> None:
    # given the executions read through the API
    for name, executions in replay.project.executions.items():
        for execution in executions:
            # then each run was the schedule's, once, succeeding with its payload
            assert (execution.status, execution.trigger) == ("SUCCEEDED", "schedule")
            (attempt,) = execution.attempts
            assert attempt.result == {"ok": True, "echo": {"report": name}}


def test_the_stats_count_the_runs_of_each_schedule(replay: Replay) -> None:
    # when the stats are read through the API at the end
    counts = {
        name: (stats.runs, stats.succeeded, stats.failed)
        for name, stats in replay.project.stats.items()
    }

    # then they count the runs above
    assert counts == {"daily": (8, 8, 0), "weekly": (1, 1, 0), "monthly": (1, 1, 0)}


def test_the_task_function_ran_once_per_slot_and_the_api_for_each_request(
    replay: Replay,
) -> None:
    # given what the runner reported
    runs = replay.recorder.runs_of("ExampleTaskFunction")

    # then the task function ran once per slot, on the replay's clock at each slot
    assert sorted(run.started_at.strftime("%Y-%m-%dT%H:%M:00Z") for run in runs) == sorted(
        [*DAILY_SLOTS, "2026-11-02T09:00:00Z", "2026-11-01T10:30:00Z"]
    )
    # and the API's function once per request the client made
    assert len(replay.recorder.runs_of("ApiFunction")) >= len(SEED) * 3 + 1
    assert replay.summary.skipped_minutes > 0  # the replay jumped over the idle minutes


def test_every_tick_of_the_replay_is_reported_without_errors(replay: Replay) -> None:
    # given the replay has ended
    # then every tick was reported, and none found an error
    assert replay.summary.ticks == len(replay.recorder.ticks) > 0
    assert all(not report.errors for report in replay.recorder.ticks)
