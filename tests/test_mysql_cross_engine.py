"""MySQL/MariaDB as a cross-engine restore target (SQLite -> MySQL, PostgreSQL -> MySQL), and MySQL
Chinook through SQLite and back, with the fidelity report checked."""

from __future__ import annotations

import datetime
import decimal
import sqlite3
from pathlib import Path

import pytest

from unibackup.models import ColumnSchema, DatabaseSchema, SchemaObject, TableSchema
from unibackup.plugins.mysql import mapping
from unibackup.plugins.mysql.mapping import NOT_KEPT, TargetServer
from unibackup.source import RestorePlan

from mysql_support import CHINOOK_SQLITE, Inspector, chinook, databases, url_for

pytestmark = pytest.mark.mysql
__all__ = ["chinook", "databases"]  # fixtures

MARIADB = TargetServer(mariadb=True, collation="utf8mb4_nopad_bin")
MYSQL = TargetServer(mariadb=False, collation="utf8mb4_0900_bin")


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


def mysql_rows(database: str, table: str, columns: list[str]) -> list[tuple]:
    with Inspector(database) as inspector:
        names = ", ".join(f"`{c}`" for c in columns)
        return sorted(tuple(normalised(v) for v in row) for row in inspector.rows(f"SELECT {names} FROM `{table}`"))


def sqlite_rows(path: Path, table: str, columns: list[str]) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        names = ", ".join(f'"{c}"' for c in columns)
        return sorted(tuple(normalised(v) for v in row) for row in conn.execute(f'SELECT {names} FROM "{table}"'))
    finally:
        conn.close()


def test_sqlite_chinook_into_mysql(service, databases, tmp_path):
    if not CHINOOK_SQLITE.exists():
        pytest.skip("the Chinook SQLite sample is not there")
    path = service.create_backup(str(CHINOOK_SQLITE), tmp_path).path
    target = databases.new("from_sqlite", create=False)
    result = service.restore_backup(path, url_for(target))

    report = {(m.table, m.column): m for m in result.fidelity}
    assert all(m.fidelity == "exact" for m in result.fidelity), [m for m in result.fidelity if m.fidelity != "exact"]
    assert report[("Invoice", "Total")].target_type == "DECIMAL(10,2)"
    assert report[("Track", "Name")].target_type == "VARCHAR(200)"
    assert report[("Invoice", "InvoiceDate")].target_type == "DATETIME(6)"
    assert report[("PlaylistTrack", "rowid")].target_type == NOT_KEPT
    assert not [s for s in result.skipped if s.startswith(("index", "foreign"))], result.skipped

    schema = service.inspect_backup(path).header.schema
    for table in schema.tables:
        columns = [c.name for c in table.columns if c.hidden != "rowid"]
        assert mysql_rows(target, table.name, columns) == sqlite_rows(CHINOOK_SQLITE, table.name, columns), table.name
    with Inspector(target) as inspector:
        foreign = inspector.rows("SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s", (target,))[0][0]
        assert foreign == 11
        indexes = {name for (name,) in inspector.rows("SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s", (target,))}
        assert "IFK_TrackAlbumId" in indexes
        # the integer keys count on from the restored rows, as SQLite's did
        highest = inspector.rows("SELECT MAX(ArtistId) FROM Artist")[0][0]
        inspector.rows("INSERT INTO Artist (Name) VALUES ('new')")
        assert inspector.rows("SELECT LAST_INSERT_ID()")[0][0] == highest + 1


def test_mysql_chinook_through_sqlite_and_back(service, chinook, databases, tmp_path):
    first = service.create_backup(url_for(chinook), tmp_path / "mysql").path
    middle = tmp_path / "chinook.sqlite"
    into_sqlite = service.restore_backup(first, str(middle), allow_lossy=True)
    assert into_sqlite.fidelity  # the report was made
    assert ("Invoice", "Total") in {(m.table, m.column) for m in into_sqlite.fidelity}

    second = service.create_backup(str(middle), tmp_path / "sqlite").path
    target = databases.new("round", create=False)
    back = service.restore_backup(second, url_for(target), allow_lossy=True)
    assert back.fidelity
    assert not [s for s in back.skipped if s.startswith(("index", "foreign"))], back.skipped

    schema = service.inspect_backup(first).header.schema
    for table in schema.tables:
        columns = list(table.column_names)
        assert mysql_rows(target, table.name, columns) == mysql_rows(chinook, table.name, columns), table.name


def test_postgresql_chinook_into_mysql(service, databases, tmp_path):
    pg_support = pytest.importorskip("pg_support")
    if "postgresql" not in [entry.name for entry in service.hooks.sources]:
        pytest.skip("the postgresql source plugin is not there")
    made = pg_support.Databases()
    pg_support.admin_connect().close()
    try:
        source = made.new("chinook_to_mysql")
        pg_support.load_script(source, pg_support.CHINOOK / "Chinook_PostgreSql.sql", strip_database_lines=True)
        path = service.create_backup(pg_support.url_for(source), tmp_path).path
        tables = [name for (_, name) in pg_support.run_sql(source, pg_support.TABLES_SQL)]
        expected = {}
        for table in tables:
            columns = [name for (name,) in pg_support.run_sql(
                source, "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (f'public."{table}"',)
            )]
            rows = pg_support.run_sql(source, f'SELECT {", ".join(chr(34) + c + chr(34) for c in columns)} FROM public."{table}"')
            expected[table] = (columns, sorted(tuple(normalised(v) for v in row) for row in rows))
    finally:
        made.drop_all()
    target = databases.new("from_pg", create=False)
    result = service.restore_backup(path, url_for(target), allow_lossy=True)
    # PostgreSQL's timestamps may hold infinity and its numerics NaN, which MySQL has not: said before the restore
    approximated = {(m.table.split(".")[-1], m.column): m.logical_type for m in result.fidelity if m.fidelity != "exact"}
    assert set(approximated.values()) == {"datetime", "decimal"}, approximated
    assert ("invoice", "invoice_date") in approximated and ("track", "unit_price") in approximated
    assert not [s for s in result.skipped if s.startswith(("index", "foreign"))], result.skipped
    for table, (columns, rows) in expected.items():
        assert mysql_rows(target, table, columns) == rows, table
    with Inspector(target) as inspector:
        assert inspector.rows("SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s", (target,))[0][0] > 0


def _report(*columns: ColumnSchema, engine: str = "postgresql", server: TargetServer = MARIADB, objects: tuple[SchemaObject, ...] = ()):
    table = TableSchema(name="t", columns=columns)
    plan = RestorePlan(schema=DatabaseSchema(engine=engine, tables=(table,), objects=objects), tables=(table,), source_engine=engine)
    return [(m.target_type, m.fidelity) for m in mapping.map_tables(plan.tables, plan.schema.objects, plan.source_engine, server)]


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (ColumnSchema("a", "integer", "integer"), ("INT", "exact")),
        (ColumnSchema("a", "bigint", "integer"), ("BIGINT", "exact")),
        (ColumnSchema("a", "numeric(20,0)", "integer", options={"unsigned": True, "bits": 64}), ("BIGINT UNSIGNED", "exact")),
        (ColumnSchema("a", "real", "float"), ("FLOAT", "approximated")),  # NaN, ±Infinity
        (ColumnSchema("a", "double precision", "float"), ("DOUBLE", "approximated")),
        (ColumnSchema("a", "numeric(10,2)", "decimal", options={"precision": 10, "scale": 2}), ("DECIMAL(10,2)", "approximated")),  # NaN
        (ColumnSchema("a", "numeric", "decimal"), ("DECIMAL(65,30)", "approximated")),
        (ColumnSchema("a", "boolean", "boolean"), ("BOOLEAN", "exact")),
        (ColumnSchema("a", "character(5)", "text", options={"length": 5, "fixed": True}), ("VARCHAR(5)", "exact")),
        (ColumnSchema("a", "text", "text"), ("LONGTEXT", "exact")),
        (ColumnSchema("a", "text", "text", primary_key=1), ("VARCHAR(768)", "approximated")),
        (ColumnSchema("a", "bytea", "bytes"), ("LONGBLOB", "exact")),
        (ColumnSchema("a", "date", "date"), ("DATE", "approximated")),  # infinity, BC
        (ColumnSchema("a", "time", "time"), ("TIME(6)", "exact")),
        (ColumnSchema("a", "time with time zone", "time_tz"), ("TIME(6)", "approximated")),
        (ColumnSchema("a", "timestamp", "datetime"), ("DATETIME(6)", "approximated")),
        (ColumnSchema("a", "timestamp with time zone", "datetime_tz"), ("DATETIME(6)", "approximated")),
        (ColumnSchema("a", "interval", "interval"), ("TIME(6)", "approximated")),
        (ColumnSchema("a", "uuid", "uuid"), ("CHAR(36)", "exact")),
        (ColumnSchema("a", "json", "json"), ("JSON", "exact")),
        (ColumnSchema("a", "integer[]", "array"), ("JSON", "approximated")),
        (ColumnSchema("a", "mood", "enum", options={"labels": ["sad", "it's ok"]}), ("ENUM('sad','it''s ok')", "exact")),
        (ColumnSchema("a", "mood", "enum"), ("VARCHAR(255)", "approximated")),
        (ColumnSchema("a", "tsvector", "other"), ("LONGTEXT", "approximated")),
        (ColumnSchema("a", "", "any"), ("LONGTEXT", "approximated")),
    ],
)
def test_column_mapping(column, expected):
    assert _report(column) == [expected]


def test_json_is_exact_on_mariadb_only():
    column = ColumnSchema("a", "json", "json")
    assert _report(column, server=MARIADB) == [("JSON", "exact")]
    assert _report(column, server=MYSQL) == [("JSON", "approximated")]


def test_a_column_in_a_unique_index_gets_a_bounded_type():
    index = SchemaObject("index", "t_a", 'CREATE UNIQUE INDEX "t_a" ON "t" ("a")', table="t")
    assert _report(ColumnSchema("a", "TEXT", "text"), engine="sqlite", objects=(index,)) == [("VARCHAR(768)", "approximated")]


def test_foreign_keys_and_indexes_of_other_engines_are_read():
    assert mapping.parse_foreign_keys('CREATE TABLE [Album] ([ArtistId] INTEGER, FOREIGN KEY ([ArtistId]) REFERENCES [Artist] ([ArtistId]) ON DELETE NO ACTION)') == [
        {"name": None, "columns": ["ArtistId"], "referenced_table": "Artist", "referenced_columns": ["ArtistId"], "on_delete": "NO ACTION", "on_update": None}
    ]
    index = SchemaObject("index", "ix", "CREATE INDEX ix ON public.album USING btree (artist_id, \"Title\" DESC)", table="album")
    assert mapping.parse_index(index) == (["artist_id", "Title"], False)
    partial = SchemaObject("index", "ix", "CREATE INDEX ix ON public.album USING btree (artist_id) WHERE (artist_id > 1)", table="album")
    assert mapping.parse_index(partial) is None
    expression = SchemaObject("index", "ix", "CREATE INDEX ix ON public.album USING btree (lower(title))", table="album")
    assert mapping.parse_index(expression) is None
