"""One consistent snapshot under concurrent writes, and a connection killed in the middle of a backup."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from unibackup.config import BatchingConfig, Config, PreflightConfig, RetryConfig, RetryPolicyConfig
from unibackup.events import Event, EventListener
from unibackup.manager import get_plugin_manager
from unibackup.service import BackupService

from mysql_support import UNIBACKUP, Databases, connect, databases, url_for
from test_mysql_types import backup_rows

pytestmark = pytest.mark.mysql
__all__ = ["databases"]  # fixture

SLOW = BatchingConfig(batch_rows=100, delay=0.01)
QUICK_RETRY = RetryPolicyConfig(max_attempts=3, base_delay=0.05, max_delay=0.1, max_elapsed=30)


class Recorder(EventListener):
    name = "recorder"

    def __init__(self) -> None:
        super().__init__({})
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)


def _service(config: Config, recorder: Recorder | None = None) -> BackupService:
    return BackupService(config, get_plugin_manager(load_entrypoints=False), listeners=[recorder] if recorder else None)


def _fill_pairs(database: str, rows: int, width: int = 500) -> None:
    conn = connect(database)
    try:
        with conn.cursor() as cursor:
            for table in ("a", "b"):
                cursor.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, pad TEXT) ENGINE=InnoDB")
                cursor.executemany(f"INSERT INTO {table} VALUES (%s, %s)", [(n, table * width) for n in range(1, rows + 1)])
    finally:
        conn.close()


@pytest.fixture
def pairs(databases):
    name = databases.new("pairs")
    _fill_pairs(name, 3000)
    return name


@pytest.fixture(scope="module")
def wide_pairs():
    """Enough data (20 MB in table b) that the server is still sending when the connection is killed."""
    connect().close()
    created = Databases()
    try:
        name = created.new("wide")
        conn = connect(name)
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE a (id INT PRIMARY KEY, pad TEXT) ENGINE=InnoDB")
            cursor.executemany("INSERT INTO a VALUES (%s, %s)", [(n, "a" * 100) for n in range(1, 101)])
            cursor.execute("CREATE TABLE b (id INT PRIMARY KEY, pad TEXT) ENGINE=InnoDB")
            for start in range(0, 4000, 500):
                cursor.executemany("INSERT INTO b VALUES (%s, %s)", [(n, "b" * 5000) for n in range(start + 1, start + 501)])
        conn.close()
        yield name
    finally:
        created.drop_all()


def test_writes_during_the_backup_are_wholly_in_or_out(pairs, tmp_path):
    """A writer moves rows between the tables in transactions while the backup reads them."""
    stop = threading.Event()
    started = threading.Event()
    committed: list[float] = []

    def writer() -> None:
        conn = connect(pairs)
        conn.autocommit(False)
        next_id = 100_000
        with conn.cursor() as cursor:
            while not stop.is_set():
                # each transaction adds a pair and removes a pair: a and b always hold the same ids
                cursor.execute("INSERT INTO a VALUES (%s, 'new')", (next_id,))
                cursor.execute("DELETE FROM b WHERE id = (SELECT MIN(id) FROM (SELECT id FROM b) x)")
                cursor.execute("INSERT INTO b VALUES (%s, 'new')", (next_id,))
                cursor.execute("DELETE FROM a WHERE id = (SELECT MIN(id) FROM (SELECT id FROM a) x)")
                conn.commit()
                committed.append(time.monotonic())
                next_id += 1
                started.set()
        conn.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert started.wait(10)
    service = _service(Config(batching=SLOW, preflight=PreflightConfig(enabled=False)))
    try:
        began = time.monotonic()
        result = service.create_backup(url_for(pairs), tmp_path, batching="fixed")
        ended = time.monotonic()
    finally:
        stop.set()
        thread.join(10)
    during = [t for t in committed if began < t < ended]
    assert len(during) > 10, "the writer did not run during the backup"

    a_ids = {row[0] for row in backup_rows(result.path, "a")}
    b_ids = {row[0] for row in backup_rows(result.path, "b")}
    assert len(a_ids) == 3000
    assert a_ids == b_ids  # every transaction is wholly in the snapshot or wholly out of it


def _killer(database: str, table: str, stop: threading.Event, killed: list[int]) -> None:
    """Kill the first connection seen reading ``table`` of ``database`` (as an operator would)."""
    conn = connect()
    try:
        with conn.cursor() as cursor:
            while not stop.is_set() and not killed:
                cursor.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND INFO LIKE %s AND ID <> CONNECTION_ID()",
                    (database, f"SELECT %FROM `{table}`%"),
                )
                row = cursor.fetchone()
                if row:
                    time.sleep(0.2)  # well inside the stream
                    cursor.execute(f"KILL CONNECTION {int(row[0])}")
                    killed.append(int(row[0]))
                    return
                time.sleep(0.01)
    finally:
        conn.close()


def test_a_killed_connection_is_retried_into_a_complete_backup(wide_pairs, tmp_path):
    pairs = wide_pairs
    recorder = Recorder()
    config = Config(batching=SLOW, preflight=PreflightConfig(enabled=False), retry=RetryConfig(read=QUICK_RETRY))
    service = _service(config, recorder)
    stop, killed = threading.Event(), []
    thread = threading.Thread(target=_killer, args=(pairs, "b", stop, killed), daemon=True)
    thread.start()
    try:
        result = service.create_backup(url_for(pairs), tmp_path, batching="fixed")
    finally:
        stop.set()
        thread.join(10)
    assert killed, "the backup's connection was never seen reading"
    retries = [event for event in recorder.events if event.kind == "retry"]
    assert retries and "interrupted" in str(retries[0].message)
    assert result.trailer.rows == 4100
    assert service.verify_backup(result.path, "full").valid
    assert os.listdir(tmp_path) == [os.path.basename(result.path)]  # the broken attempt left nothing


def test_a_killed_connection_without_retries_fails_cleanly(wide_pairs, tmp_path):
    pairs = wide_pairs
    (tmp_path / "unibackup.toml").write_text(
        "[batching]\nbatch_rows = 100\ndelay = 0.01\n[preflight]\nenabled = false\n[retry.read]\nmax_attempts = 1\n"
    )
    out = tmp_path / "out"
    stop, killed = threading.Event(), []
    thread = threading.Thread(target=_killer, args=(pairs, "b", stop, killed), daemon=True)
    thread.start()
    try:
        run = subprocess.run(
            [*UNIBACKUP, "--config", str(tmp_path / "unibackup.toml"), "-q", "backup", "--batching", "fixed", url_for(pairs), "-o", str(out)],
            capture_output=True, text=True, timeout=120,
        )
    finally:
        stop.set()
        thread.join(10)
    assert killed
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "interrupted" in run.stderr and "reading table 'b'" in run.stderr
    assert run.stdout == ""
    assert not out.exists() or list(out.iterdir()) == []  # no file, complete-looking or not
