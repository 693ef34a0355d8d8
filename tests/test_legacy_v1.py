"""The legacy-v1 migrator and ``unibackup migrate``: version-1 files (plain and gzip'd, metadata
before or after the data, declared or inferred columns) verify, restore and migrate; damaged ones
exit with code 3 and write nothing."""

from __future__ import annotations

import base64
import gzip
import io
import json
import math
import os
import sqlite3
import stat
import tracemalloc
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

from unibackup.cli import main
from unibackup.errors import CorruptBackupError
from unibackup.format import BackupReader, LineSplitter, ReadLimits, RowBatch
from unibackup.models import BackupHeader
from unibackup.plugins.legacy_v1 import INFERRED, LegacyV1Migrator, default_target

BLOB = bytes(range(256))

#: rows of the "vals" table as the legacy tool wrote them, and the Python values they stand for
V1_ROWS = [
    {"id": 1, "i": 2**63 - 1, "r": -0.0, "t": "héllo\x00wörld", "b": {"__bytes__": base64.b64encode(BLOB).decode()}, "n": None, "j": {"k": [1, 2, {"x": None}]}},
    {"id": 2, "i": -(2**63), "r": 1e300, "t": "", "b": {"__bytes__": ""}, "n": 1.5, "j": [1, "a"]},
    {"id": 3, "i": 0, "r": {"__float__": "Infinity"}, "t": "🙂 \"quoted\" ; DROP TABLE x", "b": None, "n": True, "j": None},
    {"id": 4, "i": -1, "r": {"__float__": "-Infinity"}, "t": "[not json", "b": {"__bytes__": "AA=="}, "n": "text", "j": "plain"},
]
PY_ROWS = [
    (1, 2**63 - 1, -0.0, "héllo\x00wörld", BLOB, None, '{"k":[1,2,{"x":null}]}'),
    (2, -(2**63), 1e300, "", b"", 1.5, '[1,"a"]'),
    (3, 0, math.inf, "🙂 \"quoted\" ; DROP TABLE x", None, True, None),
    (4, -1, -math.inf, "[not json", b"\x00", "text", "plain"),
]
COLUMNS = ("id", "i", "r", "t", "b", "n", "j")
TYPES = {"id": "INTEGER", "i": "INTEGER", "r": "REAL", "t": "TEXT", "b": "BLOB", "n": "", "j": "JSON"}
VALS_SQL = 'CREATE TABLE vals (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, n, j JSON)'
OTHER_ROWS = [{"k": f"key {n}", "v": n * 0.5} for n in range(30)]


def metadata(*, columns: bool = True, counts: bool = True) -> dict[str, Any]:
    tables: dict[str, Any] = {
        "vals": {"sql": VALS_SQL, "row_count": len(V1_ROWS)},
        "other": {"row_count": len(OTHER_ROWS)},
    }
    if columns:
        tables["vals"]["columns"] = [
            {"name": name, "type": TYPES[name], "nullable": name != "id", "primary_key": name == "id"} for name in COLUMNS
        ]
        tables["other"]["columns"] = [{"name": "k", "type": "TEXT"}, {"name": "v", "type": "REAL"}]
    if not counts:
        for spec in tables.values():
            spec.pop("row_count")
    return {
        "format_version": 1,
        "created_at": "2021-03-04T05:06:07Z",
        "tool_version": "0.9.3",
        "engine": "sqlite",
        "source": "sqlite:///srv/app.db",
        "tables": tables,
        "user_version": 7,
    }


def write_v1(path: Path, data: dict[str, list[dict[str, Any]]], meta: dict[str, Any] | None, *, metadata_last: bool = False, compress: bool = False) -> Path:
    """Write a version-1 document the way the legacy tool did: row by row, with json."""
    opener = gzip.open if compress else open
    with opener(path, "wb") as out:  # type: ignore[operator]
        out.write(b"{")
        members = []
        if meta is not None and not metadata_last:
            members.append("metadata")
        members.append("data")
        if meta is not None and metadata_last:
            members.append("metadata")
        for index, member in enumerate(members):
            if index:
                out.write(b",\n ")
            if member == "metadata":
                out.write(b'"metadata": ' + json.dumps(meta, allow_nan=False).encode())
                continue
            out.write(b'"data": {')
            for table_index, (table, rows) in enumerate(data.items()):
                out.write((", " if table_index else "").encode() + json.dumps(table).encode() + b": [")
                for row_index, row in enumerate(rows):
                    out.write((",\n  " if row_index else "\n  ").encode() + json.dumps(row, allow_nan=False).encode())
                out.write(b"]")
            out.write(b"}")
        out.write(b"}\n")
    return path


@pytest.fixture(autouse=True)
def _cli_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UNIBACKUP_LOAD_PLUGINS", "")
    monkeypatch.delenv("UNIBACKUP_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``unibackup ARGS`` in this process: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def table_rows(db: Path, table: str, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Every row with each value's repr and storage class, in key order."""
    typed = ", ".join(f'"{c}", typeof("{c}")' for c in columns)
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(f'SELECT {typed} FROM "{table}" ORDER BY 1').fetchall()
    finally:
        conn.close()
    return [tuple(repr(value) for value in row) for row in rows]


def expected_rows(create_sql: str, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], tmp_path: Path) -> list[tuple[Any, ...]]:
    """What SQLite itself makes of the same values in the same table."""
    path = tmp_path / f"expected-{table}-{len(os.listdir(tmp_path))}.db"
    conn = sqlite3.connect(path)
    conn.execute(create_sql)
    conn.executemany(f'INSERT INTO "{table}" VALUES ({", ".join("?" for _ in columns)})', rows)
    conn.commit()
    conn.close()
    return table_rows(path, table, columns)


LAYOUTS = {
    "metadata-first": dict(meta=metadata(), metadata_last=False),
    "metadata-last": dict(meta=metadata(), metadata_last=True),
    "metadata-without-columns": dict(meta=metadata(columns=False), metadata_last=False),
    "no-metadata": dict(meta=None, metadata_last=False),
}


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_v1_file_verifies_restores_and_migrates(layout: str, compress: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = LAYOUTS[layout]
    old = write_v1(tmp_path / ("legacy.json.gz" if compress else "legacy.json"), {"vals": V1_ROWS, "other": OTHER_ROWS}, spec["meta"], metadata_last=spec["metadata_last"], compress=compress)

    code, out, err = run(capsys, "verify", old, "--level", "full")
    assert code == 0, err
    assert f"2 tables, {len(V1_ROWS) + len(OTHER_ROWS)} rows" in out

    code, out, err = run(capsys, "restore", old, "restored.db")
    assert code == 0, err
    declared = spec["meta"] is not None and "columns" in spec["meta"]["tables"]["vals"]
    vals_sql = VALS_SQL if spec["meta"] is not None else 'CREATE TABLE vals (id, i, r, t, b, n, j)'
    expected = expected_rows(vals_sql, "vals", COLUMNS, PY_ROWS, tmp_path)
    assert table_rows(tmp_path / "restored.db", "vals", COLUMNS) == expected
    other = expected_rows("CREATE TABLE other (k TEXT, v REAL)" if declared else "CREATE TABLE other (k, v)", "other", ("k", "v"), [(r["k"], r["v"]) for r in OTHER_ROWS], tmp_path)
    assert table_rows(tmp_path / "restored.db", "other", ("k", "v")) == other
    conn = sqlite3.connect(tmp_path / "restored.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    if spec["meta"] is not None:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
    conn.close()

    code, out, err = run(capsys, "migrate", old)
    assert code == 0, err
    new = Path(out.strip().splitlines()[-1])
    assert new == default_target(old, ".zst") and new.name == "legacy.ubk.jsonl.zst"
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    assert f"vals: {len(V1_ROWS)} rows" in out
    assert ("inferred" in out) == (not declared)
    code, out, err = run(capsys, "verify", new, "--level", "full")
    assert code == 0, err
    code, out, err = run(capsys, "info", new)
    assert "format:      unibackup version 2" in out and "migrated" not in out
    code, out, err = run(capsys, "restore", new, "again.db")
    assert code == 0, err
    assert table_rows(tmp_path / "again.db", "vals", COLUMNS) == expected
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_info_says_the_file_was_migrated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write_v1(tmp_path / "old.json.gz", {"vals": V1_ROWS}, None, compress=True)
    code, out, _ = run(capsys, "info", old)
    assert code == 0
    assert "format:      unibackup version 1 (migrated by legacy-v1)" in out
    assert "compression: gzip" in out


def test_migrate_reports_what_was_inferred_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write_v1(tmp_path / "old.json", {"vals": V1_ROWS, "empty": []}, None)
    (tmp_path / "out").mkdir()
    code, out, err = run(capsys, "migrate", old, "-o", "out", "--compression", "gzip", "--level", "9", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["path"].endswith("out/old.ubk.jsonl.gz")
    assert report["format_version"] == 1 and report["migrated_by"] == ["legacy-v1"]
    assert report["tables"] == 1 and report["rows"] == len(V1_ROWS)
    (vals,) = report["table_reports"]
    assert vals["columns"] == list(COLUMNS) and vals["how"] == INFERRED
    assert vals["logical_types"] == ["integer", "integer", "float", "text", "bytes", "float", "text"]
    assert report["notes"] == ["table 'empty' had no rows and no declared columns: left out"]
    assert report["compression"]["compressor"] == "gzip" and report["compression"]["level"] == 9


def test_migrate_never_overwrites_and_refuses_a_current_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write_v1(tmp_path / "old.json", {"vals": V1_ROWS, "other": OTHER_ROWS}, metadata())
    target = tmp_path / "taken.ubk.jsonl.zst"
    target.write_bytes(b"precious")
    code, _, err = run(capsys, "migrate", old, "-o", target)
    assert code == 2 and "already exists" in err
    assert target.read_bytes() == b"precious"
    code, out, err = run(capsys, "migrate", old)
    assert code == 0, err
    code, _, err = run(capsys, "migrate", out.strip().splitlines()[-1], "-o", tmp_path / "again.ubk.jsonl.zst")
    assert code == 2 and "already format version 2" in err
    assert not (tmp_path / "again.ubk.jsonl.zst").exists()


def test_columns_added_later_and_reordered_by_late_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"b": 1}, {"b": 2, "a": "x"}, {"a": "y"}]
    old = write_v1(tmp_path / "ragged.json", {"t": rows}, None)
    assert run(capsys, "restore", old, "ragged.db")[0] == 0
    conn = sqlite3.connect(tmp_path / "ragged.db")
    assert conn.execute("SELECT b, a FROM t ORDER BY rowid").fetchall() == [(1, None), (2, "x"), (None, "y")]
    conn.close()
    meta = {"format_version": 1, "tables": {"t": {"columns": [{"name": "a", "type": "TEXT"}, {"name": "b", "type": "INTEGER"}], "row_count": 3}}}
    late = write_v1(tmp_path / "late.json", {"t": rows}, meta, metadata_last=True)
    assert run(capsys, "restore", late, "late.db")[0] == 0
    conn = sqlite3.connect(tmp_path / "late.db")
    assert [row[1] for row in conn.execute("PRAGMA table_info(t)")] == ["a", "b"]
    assert conn.execute("SELECT a, b FROM t ORDER BY rowid").fetchall() == [(None, 1), ("x", 2), ("y", None)]
    conn.close()


DAMAGED = {
    "truncated": lambda text: text[: len(text) // 2],
    "not JSON": lambda text: text.replace(b'"data": {', b'"data": {{', 1),
    "wrong row count": lambda text: text.replace(b'"row_count": 4', b'"row_count": 5', 1),
    "undeclared column": lambda text: text.replace(b'"id": 2,', b'"id": 2, "zz": 1,', 1),
    "row not an object": lambda text: text.replace(b'{"id": 3,', b'[{"id": 3,', 1).replace(b'"j": null}', b'"j": null}]', 1),
    "bad bytes": lambda text: text.replace(b'"AA=="', b'"A*=="', 1),
    "bad float marker": lambda text: text.replace(b'"-Infinity"', b'"minus"', 1),
    "bare NaN": lambda text: text.replace(b"1e+300", b"NaN", 1),
    "other format_version": lambda text: text.replace(b'"format_version": 1', b'"format_version": 3', 1),
    "trailing data": lambda text: text + b'{"more": 1}',
}


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_a_damaged_v1_file_exits_3_and_writes_nothing(damage: str, compress: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_v1(tmp_path / "good.json", {"vals": V1_ROWS, "other": OTHER_ROWS}, metadata())
    text = good.read_bytes()
    damaged = DAMAGED[damage](text)
    assert damaged != text
    old = tmp_path / ("bad.json.gz" if compress else "bad.json")
    old.write_bytes(gzip.compress(damaged) if compress else damaged)
    code, _, err = run(capsys, "verify", old)
    assert code == 3, err
    code, _, err = run(capsys, "restore", old, "target.db")
    assert code == 3, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, out, err = run(capsys, "migrate", old)
    assert code == 3, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["good.json", old.name])


def test_a_truncated_gzip_v1_file_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write_v1(tmp_path / "old.json.gz", {"vals": V1_ROWS * 50, "other": OTHER_ROWS}, metadata(counts=False), compress=True)
    data = old.read_bytes()
    old.write_bytes(data[: len(data) - 20])
    assert run(capsys, "verify", old)[0] == 3
    assert run(capsys, "restore", old, "t.db")[0] == 3
    assert not (tmp_path / "t.db").exists()


def test_recognises_v1_heads_only() -> None:
    assert LegacyV1Migrator.recognises(b'{"metadata": {"format_version": 1}')
    assert LegacyV1Migrator.recognises(b'\n  {\n "data" : {"t": []}}')
    assert LegacyV1Migrator.recognises(b'\xef\xbb\xbf{"data":{}}')
    assert not LegacyV1Migrator.recognises(b'{"type":"header","format":"unibackup"}')
    assert not LegacyV1Migrator.recognises(b'{"tables": {}}')
    assert not LegacyV1Migrator.recognises(b"SQLite format 3\x00")


# -- memory stays flat ---------------------------------------------------------------------------------
class _GeneratedV1(io.RawIOBase):
    """A version-1 document of ``rows`` rows, produced as it is read (never whole in memory)."""

    def __init__(self, rows: int, *, declared: bool):
        self._parts = self._generate(rows, declared)
        self._buffer = b""

    @staticmethod
    def _generate(rows: int, declared: bool) -> Iterator[bytes]:
        meta: dict[str, Any] = {"format_version": 1, "tables": {"big": {"row_count": rows}}}
        if declared:
            meta["tables"]["big"]["columns"] = [{"name": "id", "type": "INTEGER"}, {"name": "text", "type": "TEXT"}, {"name": "x", "type": "REAL"}]
        yield b'{"metadata": ' + orjson.dumps(meta) + b', "data": {"big": ['
        for n in range(rows):
            yield (b"," if n else b"") + orjson.dumps({"id": n, "text": f"row number {n} " * 4, "x": n / 7})
        yield b"]}}"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while len(self._buffer) < len(buffer):
            part = next(self._parts, None)
            if part is None:
                break
            self._buffer += part
        n = min(len(buffer), len(self._buffer))
        buffer[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def _peak_while_migrating(rows: int, declared: bool) -> tuple[int, int]:
    tracemalloc.start()
    try:
        stream = io.BufferedReader(_GeneratedV1(rows, declared=declared), 1 << 16)
        chunks = LegacyV1Migrator().migrate(stream)
        splitter = LineSplitter(_ChunkReader(chunks), ReadLimits())
        count = 0
        for record in BackupReader(splitter):
            if isinstance(record, RowBatch):
                count += len(record.lines)
        return tracemalloc.get_traced_memory()[1], count
    finally:
        tracemalloc.stop()


class _ChunkReader(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._buffer:
            self._buffer = next(self._chunks, b"")
            if not self._buffer:
                return 0
        n = min(len(buffer), len(self._buffer))
        buffer[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


@pytest.mark.parametrize("declared", [True, False], ids=["streamed", "spooled"])
def test_memory_stays_flat_as_the_v1_file_grows(declared: bool) -> None:
    small, small_rows = _peak_while_migrating(2_000, declared)
    large, large_rows = _peak_while_migrating(20_000, declared)
    assert (small_rows, large_rows) == (2_000, 20_000)
    # ten times the rows (2 MB more JSON, 7 MB more as Python rows) may cost a few batches more at most
    assert large < small + 2 * 1024 * 1024, (small, large)


def test_the_migrated_header_names_the_migrator_and_keeps_the_legacy_facts(tmp_path: Path) -> None:
    old = write_v1(tmp_path / "old.json", {"vals": V1_ROWS, "other": OTHER_ROWS}, {**metadata(), "source": "postgresql://bob:s3cret@db.example/app"})
    stream = open(old, "rb")
    with stream:
        first = next(iter(LegacyV1Migrator().migrate(stream)))
    header = orjson.loads(first.split(b"\n", 1)[0])
    assert header["created_at"] == "2021-03-04T05:06:07Z" and header["tool_version"] == "0.9.3"
    assert header["source"]["identity"] == "postgresql://bob@db.example/app"
    assert {"kind": "migrator", "name": "legacy-v1", "version": "1.0"} in header["plugins"]
    assert header["schema"]["settings"]["user_version"] == 7


def test_damage_raises_corrupt_backup_error_from_the_migrator() -> None:
    with pytest.raises(CorruptBackupError, match="not valid JSON"):
        list(LegacyV1Migrator().migrate(io.BytesIO(b'{"data": {"t": [{"a": 1}, ')))
    with pytest.raises(CorruptBackupError, match="no data object"):
        list(LegacyV1Migrator().migrate(io.BytesIO(b'{"metadata": {"format_version": 1}}')))


def test_a_quiet_migrate_prints_only_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write_v1(tmp_path / "old.json", {"vals": V1_ROWS}, None)
    code, out, err = run(capsys, "-q", "migrate", old)
    assert code == 0, err
    assert out == f"{tmp_path / 'old.ubk.jsonl.zst'}\n"


def test_migrate_into_a_directory_named_with_a_trailing_slash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write_v1(tmp_path / "old.json", {"vals": V1_ROWS}, None)
    code, out, err = run(capsys, "migrate", old, "-o", "made/deeper/", "--compression", "gzip")
    assert code == 0, err
    assert out.strip().splitlines()[-1] == "made/deeper/old.ubk.jsonl.gz"
    assert (tmp_path / "made" / "deeper" / "old.ubk.jsonl.gz").is_file()
    assert stat.S_IMODE((tmp_path / "made").stat().st_mode) == 0o700
    assert f"  1 table, {len(V1_ROWS)} rows, " in out
    broken = tmp_path / "broken.json"
    broken.write_text('{"metadata": {}, "data": {"t": [{"a": 1')
    code, _, err = run(capsys, "migrate", broken, "-o", "other/deeper/")
    assert code == 3, err
    assert not (tmp_path / "other").exists()  # a failed migration leaves no directory it made


@pytest.mark.parametrize("source", [
    "postgresql://alice:pa/ss@db.example/app",
    "postgresql://alice:p@ss@db.example/app",
    "postgresql://alice@db.example/app?user=alice&password=pa/ss",
    "mysql://alice:pa/ss@db.example:3306/app",
])
def test_a_legacy_source_never_shows_its_password(source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write_v1(tmp_path / "old.json", {"vals": V1_ROWS, "other": OTHER_ROWS}, {**metadata(), "source": source})
    code, out, err = run(capsys, "info", old, "--json")
    assert code == 0, err
    identity = json.loads(out)["header"]["source"]["identity"]
    assert identity.startswith(source.split("://")[0] + "://alice@db.example")
    code, out, err = run(capsys, "migrate", old, "-o", tmp_path / "new.ubk.jsonl.gz", "--compression", "gzip")
    assert code == 0, err
    assert b"pa/ss" not in gzip.decompress((tmp_path / "new.ubk.jsonl.gz").read_bytes()) and "ss" not in identity.split("@", 1)[0]
    assert "pa/ss" not in out + err and "p@ss" not in out + err
