"""`cronfleet import`: Vercel crons and crontab URL calls become Http tasks, ready to paste.

The cases come from the seed write-ups: their vercel.json and crontab files are copied verbatim
into tests/fixtures/migration, and their manual curl commands are the crontab lines with
literal tokens. "Ready to paste" has an independent oracle: `cronfleet validate` on a copy of
the repository's template.yaml with the output pasted under Resources.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from cronfleet_tools.cli.app import app
from cronfleet_tools.importers import (
    ImportedTask,
    import_crontab,
    import_file,
    render_resources,
    report_lines,
)
from cronfleet_tools.template import validate_template

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "migration"
BASE_URL = "https://app.example.com"
CRON_SECRET = "/cronfleet/cron-secret"

runner = CliRunner()


def run_import(*args: str | Path) -> Result:
    return runner.invoke(app, ["import", *map(str, args)])


def crontab(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "crontab"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def vercel_json(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vercel.json"
    path.write_text(text, encoding="utf-8")
    return path


def row(task: ImportedTask) -> tuple[str, str, str, str, str, str | None]:
    secret = task.secret.parameter_name if task.secret else None
    return (task.logical_id, task.schedule, task.timezone, task.method, task.url, secret)


def paste_into_repository_template(tmp_path: Path, resources: str) -> Path:
    """template.yaml with the import's output pasted right under `Resources:`."""
    template = (REPO / "template.yaml").read_text(encoding="utf-8")
    head, resources_line, rest = template.partition("\nResources:\n")
    assert resources_line, "template.yaml has no top-level Resources section"
    pasted = tmp_path / "template.yaml"
    pasted.write_text(head + resources_line + resources + "\n" + rest, encoding="utf-8")
    return pasted


def assert_pastes_cleanly(tmp_path: Path, resources: str, imported: int) -> None:
    before = len(validate_template(REPO / "template.yaml").tasks)
    pasted = paste_into_repository_template(tmp_path, resources)

    result = runner.invoke(app, ["validate", str(pasted)])

    assert result.exit_code == 0, result.output
    assert f"{before + imported} scheduled task(s), all valid" in flat(result.output)


def flat(text: str) -> str:
    """Text as one line, without the box rich draws around an error (it wraps anywhere)."""
    return " ".join(re.sub("[\u2500-\u257f]", " ", text).split())


def warnings_of(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


# --- The seeds' own files ----------------------------------------------------------------------

SEED000_AFTER = [
    ("OrchestratorTask", "0 * * * *", "UTC", "GET",
     f"{BASE_URL}/api/cron/orchestrator", CRON_SECRET),
    ("DailyIntelligenceDigestTask", "0 9 * * *", "UTC", "GET",
     f"{BASE_URL}/api/cron/daily-intelligence-digest", CRON_SECRET),
]  # fmt: skip
SEED000_BEFORE = [
    (f"{name}Task", schedule, "UTC", "GET", f"{BASE_URL}/api/cron/{path}", CRON_SECRET)
    for name, path, schedule in [
        ("ProactiveSpecWriter", "proactive-spec-writer", "0 9 * * *"),
        ("CompetitiveExtraction", "competitive-extraction", "0 9 * * *"),
        ("AnalyzeCompetitors", "analyze-competitors", "0 10 * * 0"),
        ("DetectFeatureGaps", "detect-feature-gaps", "0 9 * * *"),
        ("StrategicRecommendations", "strategic-recommendations", "0 9 * * *"),
        ("HunterScan", "hunter-scan", "0 * * * *"),
        ("ScrapeExternalReviews", "scrape-external-reviews", "0 10 * * 0"),
        ("CallsAnalyze", "calls-analyze", "0 * * * *"),
        ("DailyBackup", "daily-backup", "0 2 * * *"),
        ("DailyIntelligenceDigest", "daily-intelligence-digest", "0 9 * * *"),
    ]
]
SEED004_BASE_URL = "https://api.example.com"
WORKERS = f"{SEED004_BASE_URL}/api/v1/workers"
SEED004 = [
    (f"{name}Task", schedule, "UTC", method, f"{WORKERS}/{path}", CRON_SECRET)
    for name, path, schedule, method in [
        ("ResetCredits", "reset-credits", "0 0 * * *", "GET"),
        ("CheckExpirations", "check-expirations", "0 1 * * *", "GET"),
        ("AggregateAnalytics", "aggregate-analytics", "0 2 * * *", "GET"),
        ("SyncNewsletter", "sync-newsletter", "0 3 * * *", "GET"),
        ("ProcessSequences", "process-sequences", "0 */6 * * *", "GET"),
        ("UpdateSegments", "update-segments", "0 4 * * *", "GET"),
        ("AggregateHourly", "aggregate-hourly", "0 * * * *", "GET"),
        ("ComputeFunnels", "compute-funnels", "0 5 * * *", "GET"),
        ("RefreshCohorts", "refresh-cohorts", "0 6 * * 1", "GET"),
        ("Cleanup", "cleanup", "0 7 1 * *", "GET"),
        ("OrchestrationBatch", "orchestration/batch", "0 */6 * * *", "GET"),
        ("OrchestrationRetryFailed", "orchestration/retry-failed", "30 * * * *", "GET"),
        ("OrchestrationCleanup", "orchestration/cleanup", "0 8 * * 0", "POST"),
    ]
]  # fmt: skip

SEEDS = [
    pytest.param("seed000_vercel.json", BASE_URL, SEED000_AFTER, id="seed000 vercel.json"),
    pytest.param("seed000_vercel_before.json", BASE_URL, SEED000_BEFORE, id="seed000 before"),
    pytest.param("seed004_crontab", SEED004_BASE_URL, SEED004, id="seed004 crontab"),
]


@pytest.mark.parametrize(("fixture", "base_url", "expected"), SEEDS)
def test_a_seed_file_becomes_one_http_task_per_job(
    fixture: str, base_url: str, expected: list[tuple[str, ...]]
) -> None:
    result = import_file(FIXTURES / fixture, base_url=base_url)

    assert [row(task) for task in result.tasks] == expected
    assert result.warnings == []


@pytest.mark.parametrize(("fixture", "base_url", "expected"), SEEDS)
def test_a_seed_import_pasted_into_the_template_validates(
    fixture: str, base_url: str, expected: list[tuple[str, ...]], tmp_path: Path
) -> None:
    result = run_import(FIXTURES / fixture, "--base-url", base_url)

    assert result.exit_code == 0, result.output
    assert warnings_of(result) == []
    assert result.stdout.count("Type: Custom::ScheduledTask") == len(expected)
    assert result.stdout.count("ServiceToken: !GetAtt RegistryFunction.Arn") == len(expected)
    assert "DependsOn" not in result.stdout  # the registry's log group orders the deploy
    assert result.stdout.count("ServiceTimeout: 60") == len(expected)
    assert_pastes_cleanly(tmp_path, result.stdout, imported=len(expected))


def test_the_seed_crontab_keeps_its_json_body_and_its_token_becomes_a_parameter() -> None:
    result = import_file(FIXTURES / "seed004_crontab", base_url=SEED004_BASE_URL)

    cleanup = result.tasks[-1]
    assert cleanup.body == '{"retentionDays": 30}'  # from --post-data='{"retentionDays":30}'
    assert {task.secret.arn_template for task in result.tasks if task.secret} == {
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/cronfleet/cron-secret"
    }
    assert all(task.headers == {} for task in result.tasks)  # Authorization became SecretArn


def test_the_seed_crontab_without_a_base_url_names_every_line_it_cannot_translate() -> None:
    result = run_import(FIXTURES / "seed004_crontab")

    assert result.exit_code == 1
    warnings = warnings_of(result)
    lines = [4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 38, 41, 44]  # the entries of the fixture
    assert len(warnings) == len(lines)
    for warning, line in zip(warnings, lines, strict=True):
        assert warning.startswith(f"warning: seed004_crontab line {line}: not translated: ")
        assert "$API_URL" in warning
        assert "--base-url" in warning
    assert "Type:" not in result.stdout


def test_a_vercel_json_without_a_base_url_is_refused() -> None:
    result = run_import(FIXTURES / "seed000_vercel.json")

    assert result.exit_code == 2
    assert "--base-url" in result.output
    assert "Type:" not in result.stdout


# --- Tokens ------------------------------------------------------------------------------------

# The seeds' manual curl commands (000 and 004) as crontab lines, with their literal tokens.
TOKENS = [
    "YOUR_CRON_SECRET",
    "dev-admin-secret",
    "s3cr3t-header-value",
    "hunter2-password",
    "rawtoken-without-scheme",
    "sk_live_in_the_schedule",
    "from-the-crontab-itself",
]
TOKEN_CRONTAB = [
    '0 9 * * * curl -X GET "https://yourapp.com/api/cron/proactive-spec-writer" '
    '-H "Authorization: Bearer YOUR_CRON_SECRET"',
    "0 * * * * curl -X POST https://yourapp.com/api/v1/workers/orchestration/project/"
    'PROJECT_UUID/analyze-github -H "Authorization: Bearer dev-admin-secret" '
    "-H \"Content-Type: application/json\" -d '{\"periodHours\": 24}'",
    "*/5 * * * * curl -X POST http://localhost:3003/api/v1/workers/reset-credits "
    '-H "Authorization: Bearer dev-admin-secret"',
    '0 0 * * * curl -fsS -H "X-Cron-Secret: s3cr3t-header-value" https://yourapp.com/api/sms/drip/run',
    "0 1 * * * curl -u admin:hunter2-password https://yourapp.com/api/basic",
    '0 2 * * * curl -H "Authorization: rawtoken-without-scheme" https://yourapp.com/api/raw',
    '* * Bearer sk_live_in_the_schedule * curl https://yourapp.com/api/x',
    "CRON_SECRET=from-the-crontab-itself",
    '0 3 * * * wget -qO- --header="Authorization: Bearer $CRON_SECRET" https://yourapp.com/api/env',
]  # fmt: skip


def test_tokens_never_reach_the_output_nor_a_warning(tmp_path: Path) -> None:
    result = run_import(crontab(tmp_path, *TOKEN_CRONTAB))

    assert result.exit_code == 1
    for token in TOKENS:
        assert token not in result.stdout
        assert token not in result.stderr
    assert result.stdout.count("SecretArn: !Sub arn:${AWS::Partition}:ssm:") == 4


def test_each_distinct_token_gets_its_own_parameter(tmp_path: Path) -> None:
    result = import_file(crontab(tmp_path, *TOKEN_CRONTAB))

    assert [(task.logical_id, task.secret and task.secret.name) for task in result.tasks] == [
        ("CronProactiveSpecWriterTask", "bearer-token-1"),
        ("V1WorkersOrchestrationProjectPROJECTUUIDAnalyzeGithubTask", "bearer-token-2"),
        ("SmsDripRunTask", "bearer-token-3"),
        ("EnvTask", "cron-secret"),
    ]
    analyze = result.tasks[1]
    assert (analyze.method, analyze.body) == ("POST", '{"periodHours": 24}')
    assert analyze.headers == {"Content-Type": "application/json"}


def test_a_secret_looking_header_moves_to_the_parameter_with_a_warning(tmp_path: Path) -> None:
    result = run_import(crontab(tmp_path, *TOKEN_CRONTAB))

    (drip,) = [warning for warning in warnings_of(result) if "line 4:" in warning]
    assert "imported as SmsDripRunTask, but its X-Cron-Secret header looks secret" in drip
    assert "X-Cron-Secret" not in result.stdout


def test_the_token_import_still_pastes_cleanly(tmp_path: Path) -> None:
    result = run_import(crontab(tmp_path, *TOKEN_CRONTAB))

    assert_pastes_cleanly(tmp_path, result.stdout, imported=4)


# --- Tokens in URLs (hostile fixtures) ---------------------------------------------------------

# Every made-up token in tests/fixtures/migration/hostile_*; none may be printed, anywhere.
HOSTILE_TOKENS = [
    "slackPathTokenZ9", "T0HOSTILE/B0HOSTILE/slackPathTokenZ9", "tQueryTok9", "tokenQueryTok1",
    "keyQueryTok2", "sigQueryTok3", "accessQueryTok4", "secretQueryTok5",
    "8f14e45fceea167a5a36dedd4bea2543", "T000/B000/XXXX", "XXXX", "discordPathTok-AbC_123",
    "112233445566778899/discordPathTok", "basicPassTok6", "0f8e3a52-9c1b-4d7e-8a6f-2b3c4d5e6f70",
    "a1B2c3D4e5F6g7H8", "firstWordTok7", "5d41402abc4b2a76b9719d911017c592", "bearerMovesTok8",
    "vercelQueryTok1", "vercelQueryTok2", "vercelFragmentTok3", "vercelQueryTok4",
    "9f86d081884c7d659a2feaa0c55ad015", "c4ca4238a0b923820dcc509a6f75849b",
]  # fmt: skip
# Each: a word on the line of hostile_crontab, and what its warning must say.
HOSTILE_CRONTAB_WARNINGS = {
    "SLACK_HOOK=": "SLACK_HOOK is set here, but no imported task uses it",
    "?t=": "its URL carries a credential in the query (t=...), which would sit in the template",
    "?token=": "carries a credential in the query (token=...)",
    "&key=": "carries a credential in the query (key=...)",
    "?sig=": "carries a credential in the query (sig=...)",
    "?access_token=": "carries a credential in the query (access_token=...)",
    "?secret=": "carries a credential in the query (secret=...)",
    "?cb=": "carries a credential in the query (cb=...)",  # a random value under any name
    "/T000/": "its URL is a Slack webhook, whose path is its credential "
    "(https://hooks.slack.com/services/***)",
    "discord.com": "its URL is a Discord webhook, whose path is its credential "
    "(https://discord.com/api/webhooks/***)",
    "$SLACK_HOOK": "its URL is a Slack webhook",  # the token came from a variable
    "basicUser": "its URL https://api.example.com/cron/basic carries user:password@ credentials",
    "hc-ping.com": "its URL is a Healthchecks.io ping URL, whose path is its credential",
    "/cron/run/": "what looks like a token in its path (https://api.example.com/cron/run/***)",
    "firstWordTok7": "it runs 'https://hooks.slack.com/services/***', not curl or wget",
    "X-Trace": "its X-Trace header's value looks like a token",
}  # fmt: skip


def line_of(path: Path, word: str) -> int:
    (number,) = [n for n, line in enumerate(path.read_text().splitlines(), 1) if word in line]
    return number


def test_a_hostile_crontab_prints_no_token_on_stdout_or_stderr() -> None:
    result = run_import(FIXTURES / "hostile_crontab")

    assert result.exit_code == 1
    for token in HOSTILE_TOKENS:
        assert token not in result.stdout
        assert token not in result.stderr


def test_each_url_borne_token_refuses_its_line_with_the_reason_and_the_token_masked() -> None:
    path = FIXTURES / "hostile_crontab"

    warnings = warnings_of(run_import(path))

    expected = {
        f"warning: hostile_crontab line {line_of(path, word)}: not translated: ": reason
        for word, reason in HOSTILE_CRONTAB_WARNINGS.items()
    }
    assert len(warnings) == len(expected)
    for prefix, reason in expected.items():
        (warning,) = [warning for warning in warnings if warning.startswith(prefix)]
        assert reason in warning


def test_a_bearer_token_moves_to_a_parameter_and_only_its_name_is_printed(tmp_path: Path) -> None:
    path = FIXTURES / "hostile_crontab"

    result = run_import(path)

    assert "  MovesTask:" in result.stdout
    assert "parameter/cronfleet/bearer-token-1" in result.stdout
    line = line_of(path, "bearerMovesTok8")
    assert (
        "note:   aws ssm put-parameter --type SecureString --name /cronfleet/bearer-token-1 "
        f"--value '<the token written on hostile_crontab line {line}>'   # used by MovesTask"
    ) in result.stderr
    assert_pastes_cleanly(tmp_path, result.stdout, imported=1)


def test_a_hostile_vercel_json_prints_no_token_and_names_each_entry() -> None:
    result = run_import(FIXTURES / "hostile_vercel.json", "--base-url", BASE_URL)

    assert result.exit_code == 1
    for token in HOSTILE_TOKENS:
        assert token not in result.output
    assert "  DigestTask:" in result.stdout
    assert result.stdout.count("Type: Custom::ScheduledTask") == 1
    prefix = "warning: hostile_vercel.json crons"
    assert [warning.split(": not translated: ")[0] for warning in warnings_of(result)] == [
        f"{prefix}[1] (/api/cron/ping)",
        f"{prefix}[2] (/api/cron/ping)",
        f"{prefix}[3] (/api/cron/ping)",
        f"{prefix}[4] (/api/cron/***)",
        f"{prefix}[5] (/api/cron/***)",
        f"{prefix}[6] (api/cron/no-slash)",
    ]
    assert "a credential in the fragment (access_token=...)" in result.stderr
    assert "its schedule '0 25 * * *' is not valid" in result.stderr


@pytest.mark.parametrize(
    ("base_url", "token", "reason"),
    [
        ("https://app.example.com/?v=aB3dE5gH7jK9mN1p", "aB3dE5gH7jK9mN1p", "the query (v=...)"),
        ("https://app.example.com/?x=1#t=fragTok42", "fragTok42", "the fragment (t=...)"),
        ("https://hooks.slack.com/services/T9/B9/baseHookTok0", "baseHookTok0", "Slack webhook"),
        ("https://me:basePassTok1@app.example.com", "basePassTok1", "user:password@"),
        ("https://app.example.com/?page=2", "page=2", "must not have a query"),
    ],
)
def test_a_base_url_carrying_a_token_is_refused_without_printing_it(
    base_url: str, token: str, reason: str
) -> None:
    result = run_import(FIXTURES / "seed000_vercel.json", "--base-url", base_url)

    assert result.exit_code == 2
    assert reason in flat(result.output)
    assert token not in result.output


def test_a_value_another_line_sends_as_a_credential_is_not_copied_into_a_task(
    tmp_path: Path,
) -> None:
    # Given a token refused on one line, and the same value in a plain header on another
    path = crontab(
        tmp_path,
        '0 1 * * * curl "https://app.example.com/a?token=plainword"',
        '0 2 * * * curl -H "X-Trace: plainword" https://app.example.com/b',
        "0 3 * * * curl https://app.example.com/c",
    )

    result = run_import(path)

    assert "plainword" not in result.output
    assert [w.split(": not translated: ")[1] for w in warnings_of(result)][1] == (
        "it carries a value this file uses as a credential elsewhere, which would sit in the "
        "template"
    )
    assert "  CTask:" in result.stdout


# Generated tokens: letters and digits mixed, as key generators write them.
generated_tokens = st.builds(
    lambda head, tail: head + tail,
    st.text(alphabet="abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ", min_size=5, max_size=20),
    st.text(alphabet="0123456789", min_size=5, max_size=20),
).flatmap(lambda token: st.permutations(token).map("".join))
URL_PLACES = [
    "https://app.example.com/api/cron/ping?{name}={token}",
    "https://app.example.com/api/cron/{token}/run",
    "https://hooks.slack.com/services/T01/B02/{token}",
    "https://discord.com/api/webhooks/1234/{token}",
    "https://me:{token}@app.example.com/api/cron/basic",
    "https://app.example.com/api/cron/ping#{name}={token}",
]


@settings(max_examples=150, deadline=None)
@given(
    token=generated_tokens,
    place=st.sampled_from(URL_PLACES),
    name=st.sampled_from(["t", "token", "key", "sig", "access_token", "id", "cb", "x"]),
    program=st.sampled_from(["curl -fsS", "wget -qO-"]),
)
def test_a_generated_token_anywhere_in_a_url_is_never_printed(
    token: str, place: str, name: str, program: str
) -> None:
    # Given a line calling a URL that carries the token, and one whose body quotes that URL
    url = place.format(token=token, name=name)
    call = f"0 1 * * * {program} '{url}'"
    quoting = f"0 2 * * * curl -d '{json.dumps({'u': url})}' https://app.example.com/b"

    result = import_crontab(f"{call}\n{quoting}\n")

    shown = render_resources(result) + "\n".join(report_lines(result))
    assert token not in shown
    assert result.tasks == []  # neither the call nor a body quoting the URL is carried over


@pytest.mark.parametrize(
    "value",
    [
        "reset-credits",
        "daily-intelligence-digest",
        "2024-01-01T00:00:00Z",
        "v2",
        "PROJECT_UUID",
        "sha256sum",
        "1234567890",
    ],
)
def test_ordinary_query_values_and_path_segments_are_carried_over(
    value: str, tmp_path: Path
) -> None:
    path = crontab(tmp_path, f'0 1 * * * curl "https://app.example.com/api/{value}?since={value}"')

    result = import_file(path)

    assert [task.url for task in result.tasks] == [
        f"https://app.example.com/api/{value}?since={value}"
    ]


# --- crontab conventions -----------------------------------------------------------------------


def test_crontab_timezones_nicknames_options_and_redirections_translate(tmp_path: Path) -> None:
    path = crontab(
        tmp_path,
        'MAILTO=""',
        "CRON_TZ=Europe/London",
        "APP=https://app.example.com",
        "# the nightly backup",
        '@daily curl -fsS -X POST -H "Authorization: Bearer $CRON_SECRET" '
        '-H "Content-Type: application/json" -d \'{"full": true}\' "$APP/api/cron/backup" '
        "> /dev/null 2>&1",
        '30 6 * * 1-5 wget -q -O- --header="Authorization: Bearer $CRON_SECRET" --timeout=120 '
        "$APP/api/cron/report",
        "TZ=America/New_York",
        "15 9 * * * curl --silent --request PUT --max-time 60 -H 'Accept: application/json' "
        "https://app.example.com/api/cron/sync 2>/dev/null",
    )

    result = import_file(path)

    assert [row(task) for task in result.tasks] == [
        ("BackupTask", "@daily", "Europe/London", "POST",
         "https://app.example.com/api/cron/backup", CRON_SECRET),
        ("ReportTask", "30 6 * * 1-5", "Europe/London", "GET",
         "https://app.example.com/api/cron/report", CRON_SECRET),
        ("SyncTask", "15 9 * * *", "America/New_York", "PUT",
         "https://app.example.com/api/cron/sync", None),
    ]  # fmt: skip
    backup, report, sync = result.tasks
    assert (backup.headers, backup.body) == ({"Content-Type": "application/json"}, '{"full": true}')
    assert (report.timeout_seconds, sync.timeout_seconds) == (120, 60)
    assert sync.headers == {"Accept": "application/json"}
    assert result.warnings == []
    assert not any("read in UTC" in note for note in result.notes)


def test_crontab_import_exits_0_and_pastes_cleanly(tmp_path: Path) -> None:
    path = crontab(
        tmp_path,
        "CRON_TZ=Asia/Tokyo",
        '@hourly wget -qO /dev/null --post-data=\'{"a": [1, "x"]}\' https://app.example.com/a',
    )

    result = run_import(path)

    assert result.exit_code == 0, result.output
    assert 'Schedule: "@hourly"' in result.stdout
    assert "Timezone: Asia/Tokyo" in result.stdout
    assert_pastes_cleanly(tmp_path, result.stdout, imported=1)


def test_schedules_are_read_in_utc_unless_told_and_the_note_says_so(tmp_path: Path) -> None:
    path = crontab(tmp_path, "0 9 * * * curl https://app.example.com/a")

    assumed = import_file(path)
    told = import_file(path, timezone="Europe/Paris")

    assert assumed.tasks[0].timezone == "UTC"
    assert any("read in UTC" in note for note in assumed.notes)
    assert told.tasks[0].timezone == "Europe/Paris"
    assert not any("read in UTC" in note for note in told.notes)


# Each: one crontab line (line 2 of the file), and words its warning must contain.
UNTRANSLATABLE_LINES = {
    "a local script": ("0 2 * * * /opt/scripts/backup.sh", "'/opt/scripts/backup.sh', not curl"),
    "@reboot": ("@reboot curl https://app.example.com/boot", "@reboot runs when the machine"),
    "6 fields": ("0 0 0 * * * curl https://app.example.com/x", "6 or more fields"),
    "7 fields": ("0 0 12 * * ? * curl https://app.example.com/x", "6 or more fields"),
    "out of range": ("0 25 * * * curl https://app.example.com/x", "hour field '25'"),
    "garbage schedule": (
        "every day at 9 curl https://app.example.com/x",
        "schedule 'every day at 9 curl' is not valid",
    ),
    "not an entry": ("hello world", "not a crontab entry"),
    "unknown nickname": ("@every 5m curl https://app.example.com/x", "'@every' is not supported"),
    "metadata service": (
        "0 2 * * * curl http://169.254.169.254/latest/meta-data/",
        "169.254.169.254 is the cloud instance metadata service",
    ),
    "plain http": ("0 2 * * * curl http://app.example.com/x", "must use https://"),
    "private address": ("0 2 * * * curl https://10.0.0.5/x", "10.0.0.5 is a private address"),
    "localhost": ("0 2 * * * curl https://localhost:3003/x", "localhost is the local machine"),
    "no scheme": ("0 2 * * * curl app.example.com/x", "has no scheme"),
    "token in query": (
        '0 2 * * * curl "https://app.example.com/hook?api_key=abcd1234"',
        "credential in the query (api_key=...)",
    ),
    "pipeline": ("0 2 * * * curl https://app.example.com/x | jq .", "pipeline (|)"),
    "list": ("0 2 * * * curl https://app.example.com/x && touch /tmp/ok", "pipeline (&&)"),
    "unescaped %": ("0 2 * * * curl https://app.example.com/x?d=%Y", "unescaped %"),
    "basic auth": ("0 2 * * * curl -u me:pw https://app.example.com/x", "basic authentication"),
    "not bearer": (
        '0 2 * * * curl -H "Authorization: Token abcd" https://app.example.com/x',
        "Authorization: Token ... that is not a Bearer token",
    ),
    "two secrets": (
        '0 2 * * * curl -H "Authorization: Bearer aaaa" -H "X-Api-Key: bbbb" '
        "https://app.example.com/x",
        "two secrets (Authorization and X-Api-Key)",
    ),
    "form body": ("0 2 * * * curl -d 'a=1&b=2' https://app.example.com/x", "body is not JSON"),
    "body from a file": ("0 2 * * * curl -d @body.json https://app.example.com/x", "from a file"),
    "secret in body": (
        "0 2 * * * curl -d '{\"password\": \"pw\"}' https://app.example.com/x",
        "fields that look secret (password)",
    ),
    "body on GET": (
        "0 2 * * * curl -X GET -d '{}' https://app.example.com/x",
        "invalid task: Http.Body: only POST, PUT and PATCH send a body",
    ),
    "unknown option": ("0 2 * * * curl --frobnicate https://app.example.com/x", "--frobnicate"),
    "two URLs": ("0 2 * * * curl https://app.example.com/a https://app.example.com/b", "2 URLs"),
    "no URL": ("0 2 * * * curl -fsS", "no URL"),
    "substitution": (
        "0 2 * * * curl https://app.example.com/$(date +\\%s)",
        "command substitution",
    ),
    "command environment": (
        "0 2 * * * HTTPS_PROXY=x curl https://app.example.com/x",
        "its command sets HTTPS_PROXY for itself",
    ),
    "unset URL variable": ("0 2 * * * curl $API_URL/x", "starts with $API_URL"),
    "unset header variable": (
        '0 2 * * * curl -H "X-Team: $TEAM" https://app.example.com/x',
        "$TEAM, which the crontab does not set",
    ),
    "unclosed quote": ('0 2 * * * curl "https://app.example.com/x', "No closing quotation"),
    "input file": ("0 2 * * * curl https://app.example.com/x < /tmp/in", "input from /tmp/in"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("line", "reason"), UNTRANSLATABLE_LINES.values(), ids=UNTRANSLATABLE_LINES.keys()
)
def test_an_untranslatable_line_is_named_with_its_reason_and_left_out(
    line: str, reason: str, tmp_path: Path
) -> None:
    result = run_import(crontab(tmp_path, "# from a migration", line))

    assert result.exit_code == 1, result.output
    (warning,) = warnings_of(result)
    assert warning.startswith("warning: crontab line 2: not translated: ")
    assert reason in warning
    assert "Type:" not in result.stdout


def test_assignments_no_task_uses_and_mailto_are_reported(tmp_path: Path) -> None:
    path = crontab(
        tmp_path,
        "SHELL=/bin/bash",
        "MAILTO=ops@example.com",
        "APP=https://app.example.com",
        "0 2 * * * curl $APP/x",
    )

    result = run_import(path)

    assert result.exit_code == 1
    assert warnings_of(result) == [
        "warning: crontab line 1: not translated: SHELL is set here, but no imported task uses "
        "it (an Http task has no environment)",
        "warning: crontab line 2: not translated: MAILTO=ops@example.com mailed each job's "
        "output; cronfleet sends alerts to the stack's SNS topic instead (the AlertEmail "
        "parameter)",
    ]
    assert "Url: https://app.example.com/x" in result.stdout  # APP was used: no warning


def test_an_invalid_cron_tz_blocks_the_lines_after_it(tmp_path: Path) -> None:
    path = crontab(
        tmp_path,
        "0 1 * * * curl https://app.example.com/before",
        "CRON_TZ=Europe/Londn",
        "0 2 * * * curl https://app.example.com/after",
    )

    result = run_import(path)

    assert result.exit_code == 1
    assert warnings_of(result) == [
        "warning: crontab line 2: not translated: CRON_TZ: unknown timezone 'Europe/Londn': use "
        "an IANA name such as 'Europe/London'; did you mean 'Europe/London'?",
        "warning: crontab line 3: not translated: the timezone set on line 2 is not valid",
    ]
    assert "Url: https://app.example.com/before" in result.stdout


def test_base_url_stands_in_for_one_variable_only(tmp_path: Path) -> None:
    path = crontab(tmp_path, "0 1 * * * curl $API_URL/a", "0 2 * * * curl $OTHER_URL/b")

    result = import_file(path, base_url="https://api.example.com/")

    assert [task.url for task in result.tasks] == ["https://api.example.com/a"]
    (warning,) = result.warnings
    assert "--base-url already stands in for $API_URL" in str(warning)


def test_a_caveat_keeps_the_task_but_still_exits_1(tmp_path: Path) -> None:
    path = crontab(
        tmp_path, "0 1 * * * curl -k https://app.example.com/a >> /var/log/a.log 2>&1 || true"
    )

    result = run_import(path)

    assert result.exit_code == 1
    assert "  ATask:" in result.stdout
    reasons = [warning.split(", but ", 1)[1] for warning in warnings_of(result)]
    assert [reason.split(";")[0] for reason in reasons] == [
        "it ignored the command's failure (|| true)",
        "its output went to /var/log/a.log",
        "-k turned off certificate checks",
    ]


# --- vercel.json -------------------------------------------------------------------------------


def test_vercel_entries_that_cannot_be_translated_are_named(tmp_path: Path) -> None:
    path = vercel_json(
        tmp_path,
        """{"crons": [
          {"path": "/api/cron/hunter-scan", "schedule": "0 * * * *"},
          {"schedule": "0 9 * * *"},
          {"path": "/api/cron/x", "schedule": "0 25 * * *"},
          {"path": "/api/cron/y", "schedule": "0 0 0 * * *"},
          {"path": "api/cron/z", "schedule": "0 1 * * *"},
          {"path": "/api/cron/w?token=abcd1234", "schedule": "0 1 * * *"},
          "nope",
          {"path": "/api/cron/hunter-scan", "schedule": "15 * * * *"}
        ]}""",
    )

    result = run_import(path, "--base-url", BASE_URL)

    assert result.exit_code == 1
    assert warnings_of(result) == [
        "warning: vercel.json crons[1]: not translated: it has no path",
        "warning: vercel.json crons[2] (/api/cron/x): not translated: its schedule '0 25 * * *' "
        "is not valid: hour field '25': 25 is out of range 0-23",
        "warning: vercel.json crons[3] (/api/cron/y): not translated: its schedule '0 0 0 * * *' "
        "is not valid: a cron expression has 5 fields (minute hour day-of-month month "
        "day-of-week), got 6; a seconds field is not supported (resolution is one minute), and "
        "AWS syntax with a year field is written cron(minute hour day-of-month month "
        "day-of-week year)",
        "warning: vercel.json crons[4] (api/cron/z): not translated: its path must start with "
        "'/', got 'api/cron/z'",
        "warning: vercel.json crons[5] (/api/cron/w): not translated: its URL carries a "
        "credential in the query (token=...), which would sit in the template; the HTTP caller "
        "sends a secret only as Authorization: Bearer",
        "warning: vercel.json crons[6]: not translated: must be an object, got a string",
    ]
    assert "abcd1234" not in result.output
    # The same path twice: two tasks, two ids.
    assert "  HunterScanTask:" in result.stdout
    assert "  HunterScan2Task:" in result.stdout
    assert_pastes_cleanly(tmp_path, result.stdout, imported=2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.json"], "does not exist"),
        (["malformed.json", "--base-url", BASE_URL],
         "is not valid JSON: Expecting ',' delimiter at line 4, column 5"),
        (["trailing-comma.json", "--base-url", BASE_URL], "at line 1, column 43"),
        (["no-crons.json", "--base-url", BASE_URL], "has no crons array"),
        (["crons-object.json", "--base-url", BASE_URL], "crons must be an array, got an object"),
        (["array.json", "--base-url", BASE_URL], "must be a JSON object with a crons array"),
        (["empty", "--base-url", BASE_URL], "is empty"),
        (["binary"], "is not UTF-8 text"),
        (["vercel.json"], "--base-url"),
        (["vercel.json", "--base-url", "http://169.254.169.254"], "metadata service"),
        (["vercel.json", "--base-url", "http://app.example.com"], "must use https://"),
        (["vercel.json", "--base-url", "https://app.example.com/?a=1"], "query or fragment"),
        (["vercel.json", "--base-url", BASE_URL, "--tz", "Europe/Paris"], "always in UTC"),
        (["crontab", "--tz", "Mars/Base"], "unknown timezone 'Mars/Base'"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_the_reason(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {
        "malformed.json": '{\n  "crons": [\n    {"path": "/a", "schedule": "0 * * * *"}\n'
        '    {"path": "/b", "schedule": "0 * * * *"}\n  ]\n}\n',
        "trailing-comma.json": '{"crons": [{"path": "/a", "schedule": "x"},]}',
        "no-crons.json": '{"functions": {}}',
        "crons-object.json": '{"crons": {}}',
        "array.json": "[]",
        "empty": "\n  \n",
        "vercel.json": '{"crons": []}',
        "crontab": "0 1 * * * curl https://app.example.com/a\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00")
    monkeypatch.chdir(tmp_path)

    result = run_import(*args)

    assert result.exit_code == 2, result.output
    assert message in flat(result.output)
    assert "Type:" not in result.stdout


def test_an_empty_crons_array_imports_nothing_and_exits_0(tmp_path: Path) -> None:
    result = run_import(vercel_json(tmp_path, '{"crons": []}'), "--base-url", BASE_URL)

    assert result.exit_code == 0
    assert "no job could be translated" in result.stdout


def test_every_line_of_a_crontab_is_either_imported_or_named(tmp_path: Path) -> None:
    lines = [
        *TOKEN_CRONTAB,
        *(line for line, _ in UNTRANSLATABLE_LINES.values()),
        "SHELL=/bin/sh",
        'MAILTO=""',
        "# a comment, and a blank line:",
        "",
    ]
    path = crontab(tmp_path, *lines)

    result = import_file(path)

    imported = {int(task.source.rsplit(" ", 1)[1]) for task in result.tasks}
    named = {int(warning.where.rsplit(" ", 1)[1]) for warning in result.warnings}
    silent = {  # nothing to translate: MAILTO="" only turns mail off
        number
        for number, line in enumerate(lines, 1)
        if not line or line.startswith("#") or line == 'MAILTO=""'
    }
    carried = {TOKEN_CRONTAB.index("CRON_SECRET=from-the-crontab-itself") + 1}  # by EnvTask
    assert imported | named | silent | carried == set(range(1, len(lines) + 1))
    assert not carried & named
