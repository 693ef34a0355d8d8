"""The resource manager: temporary paths tracked and removed on every exit, leaks reported with
where they were made, and leftovers of crashed runs found, recognised and removed."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unibackup.config import Config
from unibackup.events import Event, EventListener
from unibackup.manager import get_plugin_manager
from unibackup.resources import ResourceManager, find_leftovers, remove_leftovers
from unibackup.service import BackupService


def dead_pid() -> int:
    """The id of a process that has ended (and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def leftover(directory: Path, final: str, pid: int, content: bytes = b"", age: float = 0.0) -> Path:
    path = directory / f".{final}.unibackup-{pid}-0badc0de.tmp"
    path.write_bytes(content)
    if age:
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
    return path


def test_temporary_paths_are_named_beside_their_target_and_removed(tmp_path: Path) -> None:
    resources = ResourceManager()
    path = resources.temp_path(tmp_path, "shop-20260101T000000000000Z.ubk.jsonl.zst")
    assert path.parent == tmp_path
    assert path.name.startswith(f".shop-20260101T000000000000Z.ubk.jsonl.zst.unibackup-{os.getpid()}-")
    assert path.name.endswith(".tmp")
    path.write_bytes(b"partial")
    directory = resources.temp_path(tmp_path, "scratch")
    directory.mkdir()
    (directory / "inside").write_text("x")
    assert resources.cleanup() == []
    assert list(tmp_path.iterdir()) == []


def test_a_kept_path_survives_clean_up(tmp_path: Path) -> None:
    resources = ResourceManager()
    path = resources.temp_path(tmp_path, "final")
    path.write_text("done")
    final = tmp_path / "final"
    path.rename(final)
    resources.keep(path)
    resources.cleanup()
    assert final.read_text() == "done"


@pytest.mark.parametrize("failure", [RuntimeError("a bug"), KeyboardInterrupt()])
def test_temporaries_go_when_the_block_fails(tmp_path: Path, failure: BaseException) -> None:
    with pytest.raises(type(failure)):
        with ResourceManager() as resources:
            resources.temp_path(tmp_path, "x").write_text("partial")
            raise failure
    assert list(tmp_path.iterdir()) == []


def test_leaks_are_reported_with_where_they_were_made_and_closed(caplog: pytest.LogCaptureFixture) -> None:
    class Connection:
        closed = False

        def close(self) -> None:
            self.closed = True

    resources = ResourceManager()
    released, leaked = Connection(), Connection()
    resources.track(released, "a released connection")
    resources.track(leaked, "a test connection")  # this line is where it was made
    resources.release(released)
    with caplog.at_level(logging.WARNING, logger="unibackup.resources"):
        leaks = resources.cleanup()
    assert len(leaks) == 1
    assert leaks[0].startswith("a test connection opened at test_resources.py:")
    assert leaks[0].endswith("was left open")
    assert leaked.closed and not released.closed
    assert caplog.records[0].getMessage() == f"resource leak: {leaks[0]}"


def test_an_operation_reports_a_leak_as_a_warning_event(tmp_path: Path) -> None:
    class Recorder(EventListener):
        name = "recorder"

        def __init__(self) -> None:
            super().__init__()
            self.events: list[Event] = []

        def handle(self, event: Event) -> None:
            self.events.append(event)

    recorder = Recorder()
    service = BackupService(Config(), get_plugin_manager(load_entrypoints=False), listeners=[recorder])
    handle = open(tmp_path / "f", "w")

    def body(context, resources):
        resources.track(handle, "a file handle")
        return "done"

    assert service.run_operation("leaky", body) == "done"
    warnings = [e.message for e in recorder.events if e.kind == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith("resource leak: a file handle opened at ")
    assert handle.closed
    assert recorder.events[-1].kind == "finished"


def test_leftovers_of_dead_processes_are_found_and_live_ones_are_not(tmp_path: Path) -> None:
    dead = leftover(tmp_path, "a.ubk.jsonl.zst", dead_pid())
    live = leftover(tmp_path, "b.ubk.jsonl.zst", os.getppid())  # our parent is alive and was there before
    mine = ResourceManager()
    in_use = mine.temp_path(tmp_path, "c.ubk.jsonl.zst")
    in_use.write_bytes(b"")
    (tmp_path / "not-a-temporary.tmp").write_bytes(b"")
    try:
        assert find_leftovers(tmp_path) == [dead]
        assert find_leftovers(tmp_path, "a.ubk.jsonl.zst") == [dead]
        assert find_leftovers(tmp_path, "other") == []
        assert live.exists()
    finally:
        mine.cleanup()


def test_a_reused_process_id_does_not_protect_an_old_leftover(tmp_path: Path) -> None:
    """In a container every run may get the same process id: a file older than the process that
    now has its writer's id is a leftover (here: our own id, on a file older than this process)."""
    old = leftover(tmp_path, "a.ubk.jsonl.zst", os.getpid(), age=10 * 24 * 3600)
    assert find_leftovers(tmp_path) == [old]


def test_remove_leftovers_removes_only_what_is_confirmed_ours(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pid = dead_pid()
    ours = leftover(tmp_path, "a.ubk.jsonl.zst", pid, b"ours")
    foreign = leftover(tmp_path, "b.ubk.jsonl.zst", pid, b"someone else's")
    with caplog.at_level(logging.WARNING, logger="unibackup.resources"):
        removed = remove_leftovers(tmp_path, lambda path: path.read_bytes() == b"ours")
    assert removed == [ours] and not ours.exists() and foreign.exists()
    assert caplog.records[0].getMessage() == f"removed {ours.name}, left by an interrupted unibackup run"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t(v) VALUES (?)", [(f"row {i}" * 20,) for i in range(3000)])
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("compression", ["zstd", "gzip", "brotli", "none"])
def test_a_backup_removes_partial_backups_of_crashed_runs_by_name_and_header(source: Path, tmp_path: Path, compression: str) -> None:
    service = BackupService(Config(), get_plugin_manager(load_entrypoints=False))
    out = tmp_path / "out"
    complete = Path(service.create_backup(str(source), out, compression=compression).path).read_bytes()
    pid = dead_pid()
    partial = leftover(out, f"shop-x.ubk.jsonl{Path('x' + compression).suffix}", pid, complete[: len(complete) // 2])
    empty = leftover(out, "shop-y.ubk.jsonl.zst", pid)
    stranger = leftover(out, "shop-z.ubk.jsonl.zst", pid, b"\x00\x01 not a backup at all" * 10)
    service.create_backup(str(source), out, compression=compression)
    assert not partial.exists() and not empty.exists()
    assert stranger.exists()  # named like ours, but its content is not: left alone
