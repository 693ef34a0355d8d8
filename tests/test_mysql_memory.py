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


def _run(*args: str) -> dict:
    run = subprocess.run([*UNIBACKUP, "-q", *args, "--json"], capture_output=True, text=True, timeout=120, env={**os.environ, "UNIBACKUP_CONFIG": os.devnull})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_backup_and_restore_memory_does_not_grow_with_the_data(databases, tmp_path):
    source = databases.new("memory")
    conn = connect(source)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB)")
        cursor.execute("CREATE TABLE tiny (id INT PRIMARY KEY)")
        cursor.execute("INSERT INTO tiny VALUES (1)")
        for start in range(0, ROWS, 40):
            cursor.executemany("INSERT INTO blobs VALUES (%s, %s)", [(n, os.urandom(ROW_BYTES)) for n in range(start, start + 40)])
    conn.close()

    small = _run("backup", url_for(source), "--table", "tiny", "-o", str(tmp_path / "small"))
    large = _run("backup", url_for(source), "-o", str(tmp_path / "large"))
    assert large["trailer"]["rows"] == ROWS + 1
    data = ROWS * ROW_BYTES
    grown = large["metrics"]["peak_rss_bytes"] - small["metrics"]["peak_rss_bytes"]
    # streamed: about 6 MiB of growth (buffers, batch); a buffered cursor grows by 19 MiB or more
    assert grown < data * 3 / 8, f"the backup's memory grew by {grown / 2**20:.0f} MiB for {data / 2**20:.0f} MiB of rows"

    target = databases.new("memory_copy", create=False)
    restored = _run("restore", large["path"], url_for(target))
    assert restored["rows"] == ROWS + 1
    assert restored["metrics"]["peak_rss_bytes"] < small["metrics"]["peak_rss_bytes"] + data / 2
