"""The cronfleet command, driven the way a person types it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cronfleet_tools.cli.app import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("expression", "timezone", "after", "expected_runs"),
    [
        (
            "30 1 * * *",
            "America/New_York",
            "2026-10-31T12:00:00Z",
            [
                {"utc": "2026-11-01T05:30:00Z", "local": "2026-11-01T01:30:00-04:00"},
                {"utc": "2026-11-02T06:30:00Z", "local": "2026-11-02T01:30:00-05:00"},
            ],
        ),
        (
            "cron(0 9 ? * 2#1 *)",
            "Europe/London",
            "2026-11-01T00:00:00Z",
            [
                {"utc": "2026-11-02T09:00:00Z", "local": "2026-11-02T09:00:00+00:00"},
                {"utc": "2026-12-07T09:00:00Z", "local": "2026-12-07T09:00:00+00:00"},
            ],
        ),
        (
            "rate(90 minutes)",
            "Asia/Kolkata",
            "2026-11-01T00:00:00Z",
            [
                {"utc": "2026-11-01T01:30:00Z", "local": "2026-11-01T07:00:00+05:30"},
                {"utc": "2026-11-01T03:00:00Z", "local": "2026-11-01T08:30:00+05:30"},
            ],
        ),
        (
            "at(2026-12-25T09:00:00)",
            "Europe/Paris",
            "2026-11-01T00:00:00Z",
            [{"utc": "2026-12-25T08:00:00Z", "local": "2026-12-25T09:00:00+01:00"}],
        ),
    ],
)
def test_next_json_has_the_documented_shape_for_every_syntax(
    expression: str, timezone: str, after: str, expected_runs: list[dict[str, str]]
) -> None:
    code, output = invoke(
        "next", expression, "--tz", timezone, "--after", after, "-n", "2", "--json"
    )
    assert code == 0, output
    report = json.loads(output)
    assert list(report) == ["expression", "timezone", "description", "runs"]
    assert report["expression"] == expression
    assert report["timezone"] == timezone
    assert report["description"]
    assert report["runs"] == expected_runs


def test_next_reads_an_after_without_offset_in_the_schedule_timezone() -> None:
    code, output = invoke(
        "next", "0 9 * * *", "--tz", "Asia/Tokyo", "--after", "2026-11-01T08:59", "--json"
    )
    assert code == 0
    assert json.loads(output)["runs"][0]["local"] == "2026-11-01T09:00:00+09:00"


def test_next_prints_a_readable_table() -> None:
    code, output = invoke("next", "0 9 * * 1-5", "--tz", "Europe/London", "--after", "2026-10-23")
    assert code == 0
    assert "At 09:00, Monday through Friday (Europe/London)" in output
    assert "2026-10-23T08:00:00Z" in output  # BST
    assert "2026-10-26T09:00:00Z" in output  # GMT after the clocks went back


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["next", "0 25 * * *"], "hour field '25': 25 is out of range 0-23"),
        (["next", "rate(10 seconds)"], "resolution is one minute"),
        (["next", "0 9 * * *", "--tz", "Mars/Base"], "unknown timezone 'Mars/Base'"),
        (["next", "0 9 * * *", "--after", "yesterday"], "'yesterday' is not an ISO-8601 time"),
        (["next", "0 9 * * *", "-n", "0"], "-n"),
        (["next", "0 9 * * *", "-n", "5000"], "-n"),
        (["validate", "no-such-template.yaml"], "does not exist"),
    ],
)
def test_bad_input_exits_2_naming_the_argument(args: list[str], message: str) -> None:
    code, output = invoke(*args)
    assert code == 2
    assert message in " ".join(output.split())  # rich may wrap the error box


def test_validate_accepts_the_repository_template() -> None:
    code, output = invoke("validate", str(REPO / "template.yaml"))
    assert code == 0, output
    assert "all valid" in output


# A registry and a worker function: enough stack for the tasks a test appends.
TEMPLATE_WITH_A_WORKER = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Registry:
    Type: AWS::Serverless::Function
    Properties: {Handler: app.handler, Runtime: python3.13, CodeUri: x/}
  Worker:
    Type: AWS::Serverless::Function
    Properties: {Handler: app.handler, Runtime: python3.13, CodeUri: x/, Timeout: 60}
"""


def test_validate_prints_one_line_per_problem_and_exits_1(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        TEMPLATE_WITH_A_WORKER
        + """  Nightly:
    Type: Custom::ScheduledTask
    Properties:
      ServiceToken: !GetAtt Registry.Arn
      Schedule: "0 25 * * *"
      Timezone: Europe/Londn
      Function: !GetAtt Worker.Arn
  Hourly:
    Type: Custom::ScheduledTask
    Properties:
      ServiceToken: !GetAtt Registry.Arn
      Schedule: rate(1 hour)
      Function: !GetAtt Missing.Arn
"""
    )
    code, output = invoke("validate", str(template))
    assert code == 1
    lines = output.strip().splitlines()
    assert any(
        line.startswith("Nightly.Timezone: unknown timezone 'Europe/Londn'") for line in lines
    )
    assert any(line.startswith("Hourly.Function:") and "Missing" in line for line in lines)
    assert all("." in line.split(":")[0] for line in lines)


def test_preview_lists_upcoming_runs_of_every_task() -> None:
    code, output = invoke(
        "preview", str(REPO / "template.yaml"), "--after", "2026-11-20T00:00:00Z", "--json"
    )
    assert code == 0, output
    previews = {item["task"]: item for item in json.loads(output)}
    assert previews["ExampleTask"]["runs"][0]["local"] == "2026-11-20T09:00:00+00:00"
    assert previews["HourlyDigestTask"]["runs"][0]["utc"] == "2026-11-20T01:00:00Z"


def test_version_prints_the_installed_distributions_version() -> None:
    from importlib.metadata import version

    # When the version is asked for
    code, output = invoke("--version")

    # Then it is the version pip installed, and nothing else runs
    assert code == 0
    assert output == f"cronfleet {version('cronfleet')}\n"


def _in_a_new_terminal(command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as a fresh shell in the repository would: no virtualenv on PATH."""
    return subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_hint_make_run_prints_names_a_command_that_works_in_a_new_terminal() -> None:
    # Given the command the local stack's banner names, worked out in a shell without the venv
    hint = _in_a_new_terminal(
        f"{sys.executable} -c 'from cronfleet_tools.local.console import cronfleet_command; "
        "print(cronfleet_command())'"
    ).stdout.strip()

    # When another new terminal runs it
    ran = _in_a_new_terminal(f"{hint} --version")

    # Then it is the project's own cronfleet, by its path, and it runs
    assert hint != "cronfleet"
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("cronfleet ")


def test_the_hint_uses_the_bare_name_when_this_cronfleet_is_on_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cronfleet_tools.local.console import cronfleet_command

    # Given a PATH whose first cronfleet is this installation's
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")

    # Then the banner can say just `cronfleet`
    assert cronfleet_command() == "cronfleet"


def test_every_commands_help_ends_with_an_example_it_accepts() -> None:
    import shlex

    import typer.main

    from cronfleet_tools.cli.app import EXAMPLES

    group = typer.main.get_command(app)
    commands = {}
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        # A group's commands are named as typed: "new task".
        subcommands = getattr(command, "commands", None)
        if subcommands:
            commands.update({f"{name} {sub}": cmd for sub, cmd in subcommands.items()})
        else:
            commands[name] = command

    # Given every command of the app
    assert set(commands) == set(EXAMPLES)
    for name, command in commands.items():
        # When its help is printed
        code, output = invoke(*name.split(), "--help")

        # Then it ends with its example, and every option the example uses is one it has
        assert code == 0, output
        assert f"Example: cronfleet {name}" in output
        options = {opt for param in command.params for opt in param.opts}
        used = {word for word in shlex.split(EXAMPLES[name]) if word.startswith("-")}
        assert used <= options, (name, used - options)


def test_the_example_of_next_runs_as_printed() -> None:
    import shlex

    from cronfleet_tools.cli.app import EXAMPLES

    # Given the example `next --help` prints
    arguments = shlex.split(EXAMPLES["next"])[1:]

    # When it is run
    code, output = invoke(*arguments)

    # Then it previews three runs at 09:00 London time
    assert code == 0, output
    assert output.count("T09:00:00+0") == 3


LEGACY_ZONE_TEMPLATE = (
    TEMPLATE_WITH_A_WORKER
    + """  Morning:
    Type: Custom::ScheduledTask
    Properties:
      ServiceToken: !GetAtt Registry.Arn
      Schedule: "0 9 * * *"
      Timezone: %s
      Function: !GetAtt Worker.Arn
"""
)


@pytest.mark.parametrize(
    ("zone", "meant"), [("EST", "America/New_York"), ("MST", "America/Denver")]
)
def test_a_fixed_offset_zone_is_accepted_with_a_warning_naming_the_zone_meant(
    tmp_path: Path, zone: str, meant: str
) -> None:
    # Given a task on EST, a fixed offset that never moves for daylight saving time
    template = tmp_path / "template.yaml"
    template.write_text(LEGACY_ZONE_TEMPLATE % zone)

    # When the template is validated, and the zone previewed with `next`
    validated = CliRunner().invoke(app, ["validate", str(template)])
    previewed = CliRunner().invoke(app, ["next", "0 9 * * *", "--tz", zone, "-n", "1"])

    # Then both accept it, and both warn, on stderr, with the DST zone meant
    for result in (validated, previewed):
        assert result.exit_code == 0, result.output
        assert f"timezone '{zone}' is a fixed" in " ".join(result.stderr.split())
        assert f"use '{meant}'" in result.stderr
    assert "Morning.Timezone: timezone" in " ".join(validated.stderr.split())
    assert "all valid" in validated.stdout


def test_an_iana_zone_that_follows_daylight_saving_time_gets_no_warning(tmp_path: Path) -> None:
    # Given the same task on America/New_York
    template = tmp_path / "template.yaml"
    template.write_text(LEGACY_ZONE_TEMPLATE % "America/New_York")

    # When it is validated
    result = CliRunner().invoke(app, ["validate", str(template)])

    # Then there is nothing to warn about
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
