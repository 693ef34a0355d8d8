"""PostgreSQL as a cross-engine restore target (SQLite → PostgreSQL, MySQL → PostgreSQL), and a
PostgreSQL database through SQLite and back, with the fidelity report checked."""

from __future__ import annotations

import datetime
import decimal
import sqlite3
from pathlib import Path

import pytest

import pg_support
from pg_support import Databases, databases, make_service, pg_server, run_sql, table_fingerprints, url_for  # noqa: F401
from pg_support import chinook as pg_chinook  # noqa: F401  (fixture)
from unibackup.models import ColumnSchema, DatabaseSchema, TableSchema
from unibackup.plugins.postgresql.restore import NOT_KEPT, map_columns
from unibackup.source import RestorePlan

pytestmark = pytest.mark.postgres

CHINOOK_SQLITE = pg_support.CHINOOK / "Chinook_Sqlite.sqlite"


def normalised(value):
    """A value as text that compares equal across engines when the value is the same."""
    if value is None:
        return None
    if isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
        number = decimal.Decimal(repr(value)) if isinstance(value, float) else decimal.Decimal(value)
        return format(number.normalize(), "f")
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def sqlite_rows(path: Path, table: str, columns: list[str]) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        names = ", ".join(f'"{c}"' for c in columns)
        return sorted(tuple(normalised(v) for v in row) for row in conn.execute(f'SELECT {names} FROM "{table}"'))
    finally:
        conn.close()


def pg_rows(database: str, table: str, columns: list[str]) -> list[tuple]:
    names = ", ".join(f'"{c}"' for c in columns)
    return sorted(tuple(normalised(v) for v in row) for row in run_sql(database, f'SELECT {names} FROM public."{table}"'))


def test_sqlite_chinook_into_postgresql(databases: Databases, tmp_path: Path) -> None:
    if not CHINOOK_SQLITE.exists():
        pytest.skip("the Chinook SQLite sample is not there")
    service = make_service()
    path = service.create_backup(str(CHINOOK_SQLITE), tmp_path).path
    target = databases.adopt(pg_support.unique_name("from_sqlite"))
    result = service.restore_backup(path, url_for(target))
    report = {(m.table, m.column): m for m in result.fidelity}
    assert all(m.fidelity == "exact" for m in result.fidelity), [m for m in result.fidelity if m.fidelity != "exact"]
    assert report[("Invoice", "Total")].target_type == "numeric(10,2)"
    assert report[("PlaylistTrack", "rowid")].target_type == NOT_KEPT
    assert report[("Track", "Name")].target_type == "text"
    # the indexes are plain column lists: they come along; nothing is dropped silently
    assert not [s for s in result.skipped if s.startswith("index")]
    indexes = {name for (name,) in run_sql(target, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert "IFK_TrackAlbumId" in indexes
    schema = service.inspect_backup(path).header.schema
    for table in schema.tables:
        columns = [c.name for c in table.columns if c.hidden != "rowid"]
        assert pg_rows(target, table.name, columns) == sqlite_rows(CHINOOK_SQLITE, table.name, columns), table.name
    # identity columns continue after the restored keys
    (highest,) = run_sql(target, 'SELECT max("ArtistId") FROM public."Artist"')[0]
    (next_id,) = run_sql(target, 'INSERT INTO public."Artist" ("Name") VALUES (\'new\') RETURNING "ArtistId"')[0]
    assert next_id == highest + 1


def test_postgresql_chinook_through_sqlite_and_back(pg_chinook: str, databases: Databases, tmp_path: Path) -> None:
    service = make_service()
    first = service.create_backup(url_for(pg_chinook), tmp_path / "pg").path
    middle = tmp_path / "chinook.sqlite"
    into_sqlite = service.restore_backup(first, str(middle), allow_lossy=True)
    lossy = {(m.table, m.column) for m in into_sqlite.fidelity if m.fidelity != "exact"}
    assert ("public.invoice", "total") in lossy  # numeric into SQLite is REAL: reported, accepted
    second = service.create_backup(str(middle), tmp_path / "sqlite").path
    target = databases.adopt(pg_support.unique_name("round"))
    back = service.restore_backup(second, url_for(target))
    assert all(m.fidelity == "exact" for m in back.fidelity)
    assert table_fingerprints(target) == table_fingerprints(pg_chinook)


def test_mysql_chinook_into_postgresql(databases: Databases, tmp_path: Path) -> None:
    mysql_support = pytest.importorskip("mysql_support")
    service = make_service()
    if "mysql" not in [entry.name for entry in service.hooks.sources]:
        pytest.skip("the mysql source plugin is not there")
    made = mysql_support.Databases()
    mysql_support.connect().close()
    try:
        source = made.new("chinook_to_pg")
        mysql_support.load_chinook(source)
        path = service.create_backup(mysql_support.url_for(source), tmp_path).path
        expected = {table: sorted(tuple(normalised(v) for v in row) for row in mysql_support.run_sql(source, f"SELECT * FROM `{table}`"))
                    for (table,) in mysql_support.run_sql(source, "SHOW TABLES")}
    finally:
        made.drop_all()
    target = databases.adopt(pg_support.unique_name("from_mysql"))
    result = service.restore_backup(path, url_for(target))
    assert result.fidelity and all(m.fidelity == "exact" for m in result.fidelity), [m for m in result.fidelity if m.fidelity != "exact"]
    assert not [s for s in result.skipped if s.startswith(("index", "foreign"))], result.skipped
    for table, rows in expected.items():
        assert sorted(tuple(normalised(v) for v in row) for row in run_sql(target, f'SELECT * FROM public."{table}"')) == rows, table
    foreign_keys = run_sql(target, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'")[0][0]
    assert foreign_keys > 0


def _plan(*columns: ColumnSchema, engine: str = "mysql") -> RestorePlan:
    table = TableSchema(name="t", columns=columns)
    return RestorePlan(schema=DatabaseSchema(engine=engine, tables=(table,)), tables=(table,), source_engine=engine)


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (ColumnSchema("a", "bigint unsigned", "integer", options={"unsigned": True, "bits": 64}), ("numeric(20,0)", "exact")),
        (ColumnSchema("a", "int", "integer", options={"bits": 32}), ("bigint", "exact")),
        (ColumnSchema("a", "decimal(65,30)", "decimal", options={"precision": 65, "scale": 30}), ("numeric(65,30)", "exact")),
        (ColumnSchema("a", "varchar(20)", "text", options={"length": 20}), ("varchar(20)", "exact")),
        (ColumnSchema("a", "time(6)", "interval", options={"fsp": 6}), ("interval", "exact")),
        (ColumnSchema("a", "datetime(6)", "datetime", options={"fsp": 6}), ("timestamp(6)", "exact")),
        (ColumnSchema("a", "timestamp(3)", "datetime_tz", options={"fsp": 3}), ("timestamp(3) with time zone", "exact")),
        (ColumnSchema("a", "enum('x','y')", "enum", options={"labels": ["x", "y"]}), ("text", "exact")),
        (ColumnSchema("a", "geometry", "other"), ("text", "approximated")),
        (ColumnSchema("a", "", "any"), ("text", "approximated")),
    ],
)
def test_column_mapping(column: ColumnSchema, expected: tuple[str, str]) -> None:
    (mapping,) = map_columns(_plan(column))
    assert (mapping.target_type, mapping.fidelity) == expected
    assert mapping.fidelity == "exact" or mapping.note
