"""Memory stays flat: rows are streamed (unbuffered cursor), never a table at a time."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from mysql_support import UNIBACKUP, connect, databases, url_for

pytestmark = pytest.mark.mysql
__all__ = ["databases"]  # fixture

ROWS = 320
ROW_BYTES = 100_000  # 32 MB of blobs, 43 MB once base64'd


def _run(*args: str, config: str) -> dict:
    run = subprocess.run([*UNIBACKUP, "-q", *args, "--json"], capture_output=True, text=True, timeout=120, env={**os.environ, "UNIBACKUP_CONFIG": config})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_backup_and_restore_memory_does_not_grow_with_the_data(databases, tmp_path):
    empty = databases.new("memory_base")  # the baseline: the same run over a database of one tiny table
    source = databases.new("memory")
    for database in (empty, source):
        conn = connect(database)
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE tiny (id INT PRIMARY KEY)")
            cursor.execute("INSERT INTO tiny VALUES (1)")
        conn.close()
    conn = connect(source)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB)")
        for start in range(0, ROWS, 40):
            cursor.executemany("INSERT INTO blobs VALUES (%s, %s)", [(n, os.urandom(ROW_BYTES)) for n in range(start, start + 40)])
    conn.close()

    # without compression, so that what is measured is the reading (zstd's own buffers are constant)
    config = tmp_path / "unibackup.toml"  # no settings (a configuration file must be a regular file)
    config.write_text("")
    small = _run("backup", url_for(empty), "--compression", "none", "-o", str(tmp_path / "small"), config=str(config))
    large = _run("backup", url_for(source), "--compression", "none", "-o", str(tmp_path / "large"), config=str(config))
    assert large["trailer"]["rows"] == ROWS + 1
    data = ROWS * ROW_BYTES
    grown = large["metrics"]["peak_rss_bytes"] - small["metrics"]["peak_rss_bytes"]
    # streamed: a few MiB at most (buffers, a batch); a buffered cursor holds the whole table
    assert grown < data / 4, f"the backup's memory grew by {grown / 2**20:.0f} MiB for {data / 2**20:.0f} MiB of rows"

    target = databases.new("memory_copy", create=False)
    restored = _run("restore", large["path"], url_for(target), config=str(config))
    assert restored["rows"] == ROWS + 1
    assert restored["metrics"]["peak_rss_bytes"] < small["metrics"]["peak_rss_bytes"] + data / 2
