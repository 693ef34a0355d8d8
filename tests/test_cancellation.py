"""Ctrl-C and SIGTERM: a backup or restore stops within about a second, leaves no partial file,
a restore target stays as it was, the exit code is 130 and one line says what was cancelled."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from unibackup.config import parse_config
from unibackup.errors import CancelledError
from unibackup.events import Event, EventListener
from unibackup.manager import get_plugin_manager
from unibackup.service import BackupService

pytestmark = pytest.mark.slow

#: A backup of a few thousand rows stretched over several seconds, without using the CPU.
SLOW = '[backup]\nbatching = "fixed"\n[batching]\nbatch_rows = 200\ndelay = 0.05\n'
PROMPT = 1.5  # seconds: "within about a second", with room for a busy machine


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIBACKUP_") or k in ("UNIBACKUP_CACHE_DIR", "UNIBACKUP_HISTORY_FILE")}
    env["UNIBACKUP_LOAD_PLUGINS"] = ""
    return env


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "unibackup", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())


def wait_for(condition, child: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert child.poll() is None, f"the child ended first: {child.stderr.read()}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def interrupt(child: subprocess.Popen, signum: int) -> tuple[int, float, list[str]]:
    """Send ``signum``; return the exit code, the seconds it took to exit, and the stderr lines."""
    sent = time.monotonic()
    child.send_signal(signum)
    code = child.wait(30)
    took = time.monotonic() - sent
    return code, took, child.stderr.read().strip().splitlines()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cancel") / "shop.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, price REAL)")
    conn.executemany("INSERT INTO items(name, price) VALUES (?, ?)", [(f"item {i}", i / 4) for i in range(20_000)])
    conn.commit()
    conn.close()
    return path


@pytest.fixture(scope="module")
def big_backup(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A backup whose restore takes about a second (300 000 rows)."""
    directory = tmp_path_factory.mktemp("cancel-big")
    source = directory / "big.db"
    conn = sqlite3.connect(source)
    conn.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, name TEXT, v REAL)")
    conn.executemany("INSERT INTO big(name, v) VALUES (?, ?)", ((f"name {i}", i / 2) for i in range(300_000)))
    conn.commit()
    conn.close()
    service = BackupService(parse_config({}), get_plugin_manager(load_entrypoints=False))
    return service.create_backup(str(source), directory / "backups").path


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_cancelled_backup_leaves_nothing_and_exits_130(small_db: Path, tmp_path: Path, signum: int) -> None:
    config = tmp_path / "slow.toml"
    config.write_text(SLOW)
    out = tmp_path / "backups"
    out.mkdir()
    (out / "keep.txt").write_text("someone else's file\n")
    child = start("--config", str(config), "backup", str(small_db), "-o", str(out))
    wait_for(lambda: any(p.name.endswith(".tmp") and ".ubk.jsonl" in p.name for p in out.iterdir()), child)
    time.sleep(0.5)  # well into the tables
    code, took, lines = interrupt(child, signum)
    name = signal.Signals(signum).name
    assert code == 130
    assert lines == [f"unibackup: error: backup cancelled by {name}; nothing was left behind"]
    assert took < PROMPT, f"took {took:.2f} s to stop"
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_cancelled_restore_leaves_the_target_as_it_was(big_backup: str, tmp_path: Path, signum: int) -> None:
    target = tmp_path / "live.db"
    conn = sqlite3.connect(target)
    conn.execute("CREATE TABLE precious(x)")
    conn.execute("INSERT INTO precious VALUES (42)")
    conn.commit()
    conn.close()
    before = digest(target)
    child = start("restore", big_backup, str(target), "--force")
    wait_for(lambda: any(p.name.startswith(".live.db.unibackup-") for p in tmp_path.iterdir()), child)
    time.sleep(0.2)
    code, took, lines = interrupt(child, signum)
    assert code == 130, lines
    assert lines == [f"unibackup: error: restore cancelled by {signal.Signals(signum).name}; nothing was left behind"]
    assert took < PROMPT, f"took {took:.2f} s to stop"
    assert digest(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.db"]


def test_a_cancelled_restore_into_a_new_file_creates_nothing(big_backup: str, tmp_path: Path) -> None:
    target = tmp_path / "new.db"
    child = start("restore", big_backup, str(target))
    wait_for(lambda: any(p.name.startswith(".new.db.unibackup-") for p in tmp_path.iterdir()), child)
    time.sleep(0.2)
    code, took, lines = interrupt(child, signal.SIGINT)
    assert code == 130 and len(lines) == 1 and took < PROMPT
    assert list(tmp_path.iterdir()) == []


def test_cancelling_while_waiting_for_a_locked_database(small_db: Path, tmp_path: Path) -> None:
    """A signal during the retry's backoff (or SQLite's busy wait) stops it too."""
    code = f"import sqlite3, time\nc = sqlite3.connect({str(small_db)!r}, isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\ntime.sleep(30)\n"
    locker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"
        child = start("backup", str(small_db), "-o", str(tmp_path / "out"))
        time.sleep(2.0)  # into the second or third attempt
        code_, took, lines = interrupt(child, signal.SIGTERM)
    finally:
        locker.kill()
        locker.wait()
    assert code_ == 130
    assert lines[-1] == "unibackup: error: backup cancelled by SIGTERM; nothing was left behind"
    assert all("retrying in" in line for line in lines[:-1])
    assert took < PROMPT
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


class Recorder(EventListener):
    name = "recorder"

    def __init__(self) -> None:
        super().__init__()
        self.kinds: list[str] = []

    def handle(self, event: Event) -> None:
        self.kinds.append(event.kind)


def test_in_process_a_signal_raises_cancelled_and_the_listeners_hear_it(small_db: Path, tmp_path: Path) -> None:
    import tomllib

    recorder = Recorder()
    service = BackupService(parse_config(tomllib.loads(SLOW)), get_plugin_manager(load_entrypoints=False), listeners=[recorder])
    timer = threading.Timer(0.8, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(CancelledError) as raised:
            service.create_backup(str(small_db), tmp_path / "out")
    finally:
        timer.cancel()
    assert raised.value.exit_code == 130
    assert recorder.kinds[0] == "started" and recorder.kinds[-1] == "cancelled"
    assert "batch_written" in recorder.kinds
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler was put back


class SlowListener(EventListener):
    """A listener that takes its time on every batch, and guards itself with ``except Exception``."""

    name = "slow"

    def __init__(self) -> None:
        super().__init__()
        self.kinds: list[str] = []

    def handle(self, event: Event) -> None:
        self.kinds.append(event.kind)
        if event.kind == "batch_written":
            try:
                time.sleep(0.1)
            except Exception:  # noqa: BLE001 - the point: a broad guard must not swallow the signal
                pass


def test_a_signal_that_lands_inside_a_listener_still_cancels(small_db: Path, tmp_path: Path) -> None:
    listener = SlowListener()
    service = BackupService(parse_config({"batching": {"batch_rows": 200}, "backup": {"batching": "fixed"}}), get_plugin_manager(load_entrypoints=False), listeners=[listener])
    timer = threading.Timer(0.6, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        with pytest.raises(CancelledError, match="backup cancelled by SIGTERM"):
            service.create_backup(str(small_db), tmp_path / "out")
    finally:
        timer.cancel()
    assert listener.kinds[-1] == "cancelled"
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_swallowed_signal_is_raised_again_at_the_next_checkpoint() -> None:
    """A C extension may turn the KeyboardInterrupt into an error of its own, which a caller then
    handles: the request to cancel must survive until the pipeline's next checkpoint."""
    from unibackup.cancellation import Interrupted, cancel_on_signals, raise_if_cancelled

    with pytest.raises(Interrupted, match="the test cancelled by SIGTERM"):
        with cancel_on_signals("the test"):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler raises here
            except KeyboardInterrupt:
                pass  # swallowed, as by a driver that turns it into its own error
            raise_if_cancelled()
            pytest.fail("the checkpoint did not raise")
    raise_if_cancelled()  # the operation that caught it has ended: nothing is pending any more
