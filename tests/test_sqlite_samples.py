"""Every real sample database through backup (each compressor) -> full verify -> restore, compared
value by value with the original; and databases SQLite itself cannot read give one clear line."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SAMPLE_DATA_DIR, sample_databases
from sqlite_contents import assert_same_database

COMPRESSORS = ("zstd", "gzip", "brotli", "none")
SAMPLES = sample_databases()


def _sample_params() -> list:
    if not SAMPLES:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no sample databases in {SAMPLE_DATA_DIR}"))]
    return [pytest.param(path, id=str(path.relative_to(SAMPLE_DATA_DIR))) for path in SAMPLES]


def _sample(name: str) -> Path:
    found = [path for path in SAMPLES if path.name == name]
    if not found:
        pytest.skip(f"the sample {name} is not in {SAMPLE_DATA_DIR}")
    return found[0]


def _round_trip(service, source: Path, tmp_path: Path, compression: str = "zstd") -> Path:
    result = service.create_backup(str(source), tmp_path / "backups", compression=compression)
    report = service.verify_backup(result.path, "full")
    assert report.valid, report.findings
    assert report.rows == result.trailer.rows
    restored = tmp_path / "restored" / source.name
    restored.parent.mkdir()
    service.restore_backup(result.path, str(restored))
    return restored


@pytest.mark.parametrize("compression", COMPRESSORS)
@pytest.mark.parametrize("sample", _sample_params())
def test_sample_round_trip(service, sample: Path, compression: str, tmp_path: Path) -> None:
    restored = _round_trip(service, sample, tmp_path, compression)
    assert_same_database(sample, restored)
    if compression == "zstd":  # the deep level's trial restore, once per sample
        (backup,) = (tmp_path / "backups").iterdir()
        deep = service.verify_backup(backup, "deep")
        assert deep.valid and not [f for f in deep.findings if f.severity == "error"], deep.findings


def test_fts5_match_finds_the_row_after_restore(service, tmp_path: Path) -> None:
    restored = _round_trip(service, _sample("fts.db"), tmp_path)
    conn = sqlite3.connect(restored)
    try:
        assert conn.execute("SELECT rowid, sender, title FROM email WHERE email MATCH 'body'").fetchall() == [
            (1, "test@gmail.com", "Title")
        ]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()


def test_rtree_range_query_after_restore(service, tmp_path: Path) -> None:
    sample = _sample("rtree.db")
    restored = _round_trip(service, sample, tmp_path)
    query = "SELECT id FROM demo_index WHERE minX >= -81 AND maxX <= -80.7 AND minY >= 35.2 AND maxY <= 35.4 ORDER BY id"
    results = []
    for path in (sample, restored):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            results.append(conn.execute(query).fetchall())
            assert conn.execute("SELECT rtreecheck('demo_index')").fetchone() == ("ok",)
        finally:
            conn.close()
    assert results[0] == results[1] == [(28216,)]


def _unreadable_databases(tmp_path: Path) -> list[tuple[Path, int]]:
    """(file, exit code): not a database is a usage error (2), a damaged one a failure (1)."""
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    made = [(garbage, 2)]
    if SAMPLES:
        real = max(SAMPLES, key=lambda p: p.stat().st_size)
        data = real.read_bytes()
        truncated = tmp_path / "truncated.db"
        truncated.write_bytes(data[: len(data) // 3])
        made.append((truncated, 1))
    return made


def test_unreadable_database_is_one_clear_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for database, exit_code in _unreadable_databases(tmp_path):
        proc = subprocess.run(
            [sys.executable, "-m", "unibackup", "backup", str(database), "-o", str(out)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == exit_code, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("unibackup: error: ") and database.name in lines[0]
        assert "Traceback" not in proc.stderr and proc.stdout == ""
        assert not out.exists() or not any(out.iterdir())
