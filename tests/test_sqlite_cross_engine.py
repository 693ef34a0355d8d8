"""Restoring a backup written by another engine into SQLite: fidelity report, types, values."""

from __future__ import annotations

import datetime
import decimal
import sqlite3
import uuid

import pytest

from unibackup import BackupService
from unibackup.errors import UsageError
from unibackup.format import BackupWriter
from unibackup.models import BackupHeader, BackupOptions, ColumnSchema, DatabaseSchema, PluginRef, SchemaObject, SourceInfo, TableSchema
from unibackup.values import JsonText, encode_batch


def _foreign_backup(path, rows):
    columns = (
        ColumnSchema("id", "integer", "integer", nullable=False, primary_key=1),
        ColumnSchema("price", "numeric(10,2)", "decimal", options={"precision": 10, "scale": 2}),
        ColumnSchema("active", "boolean", "boolean"),
        ColumnSchema("born", "date", "date"),
        ColumnSchema("seen", "timestamp with time zone", "datetime_tz"),
        ColumnSchema("token", "uuid", "uuid"),
        ColumnSchema("doc", "json", "json"),
        ColumnSchema("tags", "text[]", "array"),
        ColumnSchema("photo", "bytea", "bytes"),
        ColumnSchema("name", "character varying(40)", "text"),
    )
    table = TableSchema(name="people", namespace="public", columns=columns, create_sql="CREATE TABLE public.people (...)")
    schema = DatabaseSchema(
        engine="postgresql",
        tables=(table,),
        objects=(SchemaObject("index", "people_name", "CREATE INDEX people_name ON public.people USING btree (name)", table="people", namespace="public"),),
    )
    header = BackupHeader(
        created_at="2026-01-01T00:00:00Z",
        tool_version="test",
        source=SourceInfo("postgresql", "postgresql://db.example/shop", "15"),
        options=BackupOptions(compression="none"),
        compressor=PluginRef("compressor", "none"),
        schema=schema,
    )
    with open(path, "wb") as handle:
        writer = BackupWriter(handle)
        writer.write_header(header)
        writer.begin_table(table)
        writer.write_rows(encode_batch(rows))
        writer.end_table()
        writer.write_trailer()


ROWS = [
    (
        1,
        decimal.Decimal("0.99"),
        True,
        datetime.date(2020, 2, 29),
        datetime.datetime(2021, 5, 1, 12, 30, 15, 123456, tzinfo=datetime.timezone.utc),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        JsonText('{"b": 1, "a": [true, null]}'),
        ["x", None, "z"],
        b"\x00\xffPNG",
        "Zoë ",
    ),
    (2, None, False, None, None, None, None, None, None, None),
]


def test_refuses_lossy_restore_without_allow_lossy(tmp_path):
    backup = tmp_path / "pg.ubk.jsonl"
    _foreign_backup(backup, ROWS)
    target = tmp_path / "out.db"
    seen = []
    with pytest.raises(UsageError) as error:
        BackupService().restore_backup(backup, str(target), on_plan=seen.append)
    assert "--allow-lossy" in error.value.user_line()
    assert not target.exists()
    fidelity = {m.column: m.fidelity for m in seen[0].mappings}
    assert fidelity["price"] == "approximated"
    assert fidelity["tags"] == "approximated"
    assert fidelity["token"] == "exact"
    assert fidelity["photo"] == "exact"


def test_restores_values_with_allow_lossy(tmp_path):
    backup = tmp_path / "pg.ubk.jsonl"
    _foreign_backup(backup, ROWS)
    target = tmp_path / "out.db"
    result = BackupService().restore_backup(backup, str(target), allow_lossy=True)
    assert result.rows == 2
    assert any("people_name" in skipped for skipped in result.skipped)
    conn = sqlite3.connect(target)
    row = conn.execute("SELECT id, price, active, born, seen, token, doc, tags, photo, name FROM people WHERE id = 1").fetchone()
    assert row == (
        1,
        0.99,
        1,
        "2020-02-29",
        "2021-05-01T12:30:15.123456+00:00",
        "12345678-1234-5678-1234-567812345678",
        '{"b": 1, "a": [true, null]}',
        '["x",null,"z"]',
        b"\x00\xffPNG",
        "Zoë ",
    )
    assert conn.execute("SELECT * FROM people WHERE id = 2").fetchone() == (2, None, 0, None, None, None, None, None, None, None)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _one_column_backup(path, column, values, engine="postgresql"):
    table = TableSchema(name="t", namespace="public", columns=(column,), create_sql="CREATE TABLE public.t (...)")
    header = BackupHeader(
        created_at="2026-01-01T00:00:00Z",
        tool_version="test",
        source=SourceInfo(engine, f"{engine}://db.example/x", ""),
        options=BackupOptions(compression="none"),
        compressor=PluginRef("compressor", "none"),
        schema=DatabaseSchema(engine=engine, tables=(table,)),
    )
    with open(path, "wb") as handle:
        writer = BackupWriter(handle)
        writer.write_header(header)
        writer.begin_table(table)
        writer.write_rows(encode_batch([(value,) for value in values]))
        writer.end_table()
        writer.write_trailer()


def test_nan_is_refused_unless_lossy(tmp_path):
    backup = tmp_path / "nan.ubk.jsonl"
    _one_column_backup(backup, ColumnSchema("x", "double precision", "float"), [1.5, float("nan")])
    with pytest.raises(UsageError) as error:
        BackupService().restore_backup(backup, str(tmp_path / "a.db"))
    assert "NaN" in error.value.user_line()
    assert not (tmp_path / "a.db").exists()
    BackupService().restore_backup(backup, str(tmp_path / "b.db"), allow_lossy=True)
    assert sqlite3.connect(tmp_path / "b.db").execute("SELECT x FROM t ORDER BY rowid").fetchall() == [(1.5,), (None,)]


def test_durations_and_unsigned_64_bit_integers(tmp_path):
    backup = tmp_path / "time.ubk.jsonl"
    _one_column_backup(backup, ColumnSchema("d", "time", "interval"), [datetime.timedelta(hours=-25, seconds=-1)], engine="mysql")
    BackupService().restore_backup(backup, str(tmp_path / "t.db"), allow_lossy=True)
    assert sqlite3.connect(tmp_path / "t.db").execute("SELECT d FROM t").fetchone() == ("-25:00:01",)
    backup = tmp_path / "big.ubk.jsonl"
    _one_column_backup(backup, ColumnSchema("n", "bigint unsigned", "integer"), [2**64 - 1, 7], engine="mysql")
    BackupService().restore_backup(backup, str(tmp_path / "n.db"), allow_lossy=True)
    rows = sqlite3.connect(tmp_path / "n.db").execute("SELECT n, typeof(n) FROM t ORDER BY rowid").fetchall()
    assert rows == [("18446744073709551615", "text"), (7, "integer")]
