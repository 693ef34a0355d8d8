"""Memory stays flat as data grows: backing up and restoring eight times more megabyte-wide rows
takes about the same peak memory (RSS of the ``unibackup`` process, from its ``--json`` metrics).

Not timed: only memory is asserted."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from unibackup.plugins.adaptive_batching import AdaptiveBatching

MB = 1 << 20
SMALL_BLOBS, BIG_BLOBS = 32, 256  # rows of 1 MiB each
SMALL_ROWS = 50_000


def _database(path: Path, blobs: int) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE narrow(id INTEGER PRIMARY KEY, name TEXT, value REAL)")
    conn.executemany("INSERT INTO narrow VALUES (?, ?, ?)", ((i, f"row {i}", i / 3) for i in range(SMALL_ROWS)))
    conn.execute("CREATE TABLE wide(id INTEGER PRIMARY KEY, data BLOB)")
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO wide SELECT i, randomblob(?) FROM n",
        (blobs, MB),
    )
    conn.execute("CREATE TABLE after_wide(x INTEGER)")
    conn.executemany("INSERT INTO after_wide VALUES (?)", ((i,) for i in range(1000)))
    conn.commit()
    conn.close()
    return path


def _peak_rss(*args: str, cwd: Path) -> tuple[int, dict]:
    environment = dict(os.environ, UNIBACKUP_LOAD_PLUGINS="")
    proc = subprocess.run([sys.executable, "-m", "unibackup", "-q", *args, "--json"], capture_output=True, text=True, cwd=cwd, env=environment)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    return result["metrics"]["peak_rss_bytes"], result


def test_backup_and_restore_memory_stays_flat(tmp_path: Path) -> None:
    peaks = {}
    for blobs in (SMALL_BLOBS, BIG_BLOBS):
        directory = tmp_path / str(blobs)
        directory.mkdir()
        source = _database(directory / "wide.db", blobs)
        backup_peak, result = _peak_rss("backup", str(source), "-o", "out", "--batching", "adaptive", cwd=directory)
        assert result["trailer"]["rows"] == SMALL_ROWS + blobs + 1000
        source.unlink()  # keep the disk use of the test down
        restore_peak, restored = _peak_rss("restore", result["path"], "restored.db", cwd=directory)
        assert restored["rows"] == SMALL_ROWS + blobs + 1000
        peaks[blobs] = (backup_peak, restore_peak)
    grown = (BIG_BLOBS - SMALL_BLOBS) * MB
    for index, what in enumerate(("backup", "restore")):
        small, big = peaks[SMALL_BLOBS][index], peaks[BIG_BLOBS][index]
        # 224 MiB more data: memory may move by noise and allocator slack, not with the data
        assert big - small < grown / 4, f"{what}: peak RSS {small / MB:.0f} MiB -> {big / MB:.0f} MiB"
        assert big < BIG_BLOBS * MB, f"{what}: peak RSS {big / MB:.0f} MiB for {BIG_BLOBS} MiB of rows"


def test_adaptive_batches_are_bounded_by_bytes() -> None:
    strategy = AdaptiveBatching({"batch_bytes": 256 * 1024, "max_rows": 10_000})
    strategy.start_table(None)
    assert strategy.next_batch_size() == 1  # a table's rows may be huge: learn their size first
    strategy.observe(1, 1_400_000)
    assert strategy.next_batch_size() == 1  # one 1.4 MB row already exceeds the byte target
    strategy.start_table(None)
    sizes = []
    for _ in range(8):
        rows = strategy.next_batch_size()
        sizes.append(rows)
        strategy.observe(rows, rows * 30)
    assert sizes[:5] == [1, 8, 64, 512, 4096]  # grows quickly, but never blind
    assert max(sizes) == 256 * 1024 // 30
    strategy.observe(100, 100 * 100_000)  # rows suddenly 100 kB wide: follow at once
    assert strategy.next_batch_size() == 2
