"""The local runtime's secrets file and CA setting: what they accept, and what they refuse.

The endpoint that serves the file is tested against real clients in
tests/integration/test_local_secrets.py; the CA bundle's use, by the HTTP caller against a
loopback HTTPS server, in tests/e2e/test_imported_http_task.py.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import certifi
import pytest
import trustme
from typer.testing import CliRunner, Result

from cronfleet_tools.cli.app import app
from cronfleet_tools.local.secrets import (
    InvalidSecretsFile,
    load_secrets,
    parameter_names,
    secret_names,
)
from cronfleet_tools.local.stack import LocalStackError
from cronfleet_tools.local.trust import (
    CA_BUNDLE_FILE,
    CA_FILE_VARIABLE,
    InvalidCaFile,
    ca_bundle_text,
    trusted_ca_from_environment,
    write_ca_bundle,
)


def secrets_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "secrets.json"
    path.write_text(text, encoding="utf-8")
    return path


# --- the secrets file ----------------------------------------------------------------------


def test_a_secrets_file_maps_names_to_secret_texts(tmp_path: Path) -> None:
    # given a file with an SSM parameter's name and a Secrets Manager secret's name
    document = {"/cronfleet/cron-secret": "tok-1", "cronfleet/partner-api": "tok-2"}
    path = secrets_file(tmp_path, json.dumps(document))

    # when it is loaded, then each name has its text
    assert load_secrets(path) == document


def test_a_missing_secrets_file_holds_no_secrets(tmp_path: Path) -> None:
    # given no file, when it is loaded, then there is nothing in it (and no error)
    assert load_secrets(tmp_path / "secrets.json") == {}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(
            '{"/cronfleet/cron-secret": "tok",}',
            "not JSON (Illegal trailing comma before end of object at line 1, column 33); it "
            'must be one object of names to secrets, such as {"/cronfleet/cron-secret": '
            '"the token"}',
            id="not JSON",
        ),
        pytest.param(
            '["/cronfleet/cron-secret", "tok"]',
            "must be one JSON object of names to secrets, not an array",
            id="not an object",
        ),
        pytest.param(
            '{"/cronfleet/cron-secret": 12345}',
            '"/cronfleet/cron-secret": must be a string (the secret\'s text), not a number',
            id="a number",
        ),
        pytest.param(
            '{"/cronfleet/cron-secret": {"value": "tok"}}',
            '"/cronfleet/cron-secret": must be a string (the secret\'s text), not an object',
            id="an object",
        ),
        pytest.param(
            '{"/cronfleet/cron-secret": "  "}',
            '"/cronfleet/cron-secret": must not be empty: the HTTP caller refuses an empty secret',
            id="empty value",
        ),
        pytest.param('{"": "tok"}', '"": a name must not be empty', id="empty name"),
        pytest.param(
            '{"/cronfleet/cron secret": "tok"}',
            '"/cronfleet/cron secret": a name must not contain whitespace',
            id="whitespace in a name",
        ),
        pytest.param(
            '{"arn:aws:ssm:us-east-1:123456789012:parameter/cronfleet/cron-secret": "tok"}',
            '"arn:aws:ssm:us-east-1:123456789012:parameter/cronfleet/cron-secret": write the '
            "name the ARN ends with (/cronfleet/cron-secret), not the ARN",
            id="an SSM ARN",
        ),
        pytest.param(
            '{"arn:aws:secretsmanager:us-east-1:1:secret:cronfleet/api-AbCdEf": "tok"}',
            '"arn:aws:secretsmanager:us-east-1:1:secret:cronfleet/api-AbCdEf": write the name '
            "the ARN ends with (cronfleet/api), not the ARN",
            id="a Secrets Manager ARN",
        ),
    ],
)
def test_a_malformed_secrets_file_is_refused_naming_the_entry_and_the_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    # given a secrets file with one mistake
    path = secrets_file(tmp_path, text)

    # when it is loaded
    with pytest.raises(InvalidSecretsFile) as refused:
        load_secrets(path)

    # then the error names the file, the entry and what is wrong with it
    assert str(refused.value) == f"{path}: {reason}"
    # and the runner reports it as a stack that cannot start
    assert isinstance(refused.value, LocalStackError)


def test_a_refused_secrets_file_never_shows_a_value(tmp_path: Path) -> None:
    # given a file whose second entry is wrong, next to a real-looking token
    path = secrets_file(tmp_path, '{"/cronfleet/a": "s3cret-value", "/cronfleet/b": 7}')

    # when it is refused, then the other entry's value is not in the message
    with pytest.raises(InvalidSecretsFile) as refused:
        load_secrets(path)
    assert "s3cret-value" not in str(refused.value)


# --- which key a request names -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("arn:aws:ssm:us-east-1:123456789012:parameter/cronfleet/cron-secret",
         ["/cronfleet/cron-secret", "cronfleet/cron-secret"]),
        ("/cronfleet/cron-secret", ["/cronfleet/cron-secret"]),
    ],
)  # fmt: skip
def test_an_ssm_name_or_arn_is_looked_up_under_the_parameters_name(
    name: str, keys: list[str]
) -> None:
    assert parameter_names(name) == keys


@pytest.mark.parametrize(
    ("secret_id", "keys"),
    [
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:cronfleet/api-AbCdEf",
         ["cronfleet/api-AbCdEf", "cronfleet/api"]),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:cronfleet/api",
         ["cronfleet/api"]),
        ("cronfleet/api", ["cronfleet/api"]),
    ],
)  # fmt: skip
def test_a_secret_id_is_looked_up_with_and_without_its_random_suffix(
    secret_id: str, keys: list[str]
) -> None:
    assert secret_names(secret_id) == keys


# --- the local CA --------------------------------------------------------------------------


def test_the_ca_setting_is_read_from_the_runners_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(CA_FILE_VARIABLE, raising=False)
    assert trusted_ca_from_environment() is None

    monkeypatch.setenv(CA_FILE_VARIABLE, str(tmp_path / "ca.pem"))
    assert trusted_ca_from_environment() == tmp_path / "ca.pem"


def test_the_bundle_holds_the_public_cas_and_the_local_one(tmp_path: Path) -> None:
    # given a local CA's certificate
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    # when the runner writes the bundle
    bundle = write_ca_bundle(ca_bundle_text(ca_file), tmp_path)

    # then it is in the state directory and verifies both the local CA and the public ones
    assert bundle == tmp_path / CA_BUNDLE_FILE
    text = bundle.read_text()
    assert ca.cert_pem.bytes().decode() in text
    assert Path(certifi.where()).read_text().strip() in text
    context = ssl.create_default_context(cafile=str(bundle))
    assert len(context.get_ca_certs()) > 100


def test_without_a_ca_an_earlier_runs_bundle_is_removed(tmp_path: Path) -> None:
    # given a bundle left by a run that had a CA
    (tmp_path / CA_BUNDLE_FILE).write_text("old")

    # when a run without one starts, then the bundle goes
    assert write_ca_bundle(None, tmp_path) is None
    assert not (tmp_path / CA_BUNDLE_FILE).exists()


def test_a_ca_file_that_is_not_a_certificate_is_refused_with_the_setting_and_reason(
    tmp_path: Path,
) -> None:
    # given a missing file, a key where the certificate belongs, and a damaged certificate
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    damaged = tmp_path / "damaged.pem"
    damaged.write_text("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")

    # then each is refused, naming the setting, the file and why
    with pytest.raises(InvalidCaFile, match=rf"^{CA_FILE_VARIABLE}: .*missing.pem: no such file"):
        ca_bundle_text(tmp_path / "missing.pem")
    with pytest.raises(InvalidCaFile, match=r"key.pem: holds no PEM certificate .*not its key"):
        ca_bundle_text(key)
    with pytest.raises(InvalidCaFile, match=r"damaged.pem: not a valid PEM certificate"):
        ca_bundle_text(damaged)


# --- `cronfleet run` -----------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def squeezed(text: str) -> str:
    """Text without whitespace: the error console wraps long lines, paths included."""
    return "".join(text.split())


def run_replay(state_dir: Path) -> Result:
    return CliRunner().invoke(
        app,
        [
            "run",
            "--template",
            str(REPO / "template.yaml"),
            "--state-dir",
            str(state_dir),
            "--start",
            "2026-11-01T00:00Z",
            "--until",
            "2026-11-01T00:01Z",
        ],
    )


def test_cronfleet_run_refuses_a_malformed_secrets_file_before_starting_anything(
    tmp_path: Path,
) -> None:
    # given a state directory whose secrets file has a number for a secret
    state_dir = tmp_path / ".cronfleet"
    state_dir.mkdir()
    secrets_file(state_dir, '{"/cronfleet/cron-secret": 12345}')

    # when the runner is started on it
    result = run_replay(state_dir)

    # then it stops with the entry and the reason, and started nothing
    assert result.exit_code == 2, result.output
    assert squeezed('"/cronfleet/cron-secret": must be a string') in squeezed(result.output)
    assert sorted(p.name for p in state_dir.iterdir()) == ["secrets.json"]


def test_cronfleet_run_refuses_a_ca_setting_that_names_no_file_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the CA setting names a file that is not there
    monkeypatch.setenv(CA_FILE_VARIABLE, str(tmp_path / "missing.pem"))

    # when the runner is started
    result = run_replay(tmp_path / ".cronfleet")

    # then it stops, naming the setting and the file, and created nothing
    assert result.exit_code == 2, result.output
    expected = f"{CA_FILE_VARIABLE}: {tmp_path / 'missing.pem'}: no such file"
    assert squeezed(expected) in squeezed(result.output)
    assert not (tmp_path / ".cronfleet").exists()
