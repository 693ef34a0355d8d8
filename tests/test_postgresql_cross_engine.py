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


def sqlite_foreign_keys(path: Path) -> set[tuple]:
    """(table, columns, referenced table, referenced columns) of every foreign key, lower case."""
    conn = sqlite3.connect(path)
    try:
        found: dict[tuple[str, int], list] = {}
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for key_id, _seq, referenced, column, referenced_column, *_ in conn.execute(f'PRAGMA foreign_key_list("{table}")'):
                entry = found.setdefault((table, key_id), [table.lower(), [], referenced.lower(), []])
                entry[1].append(column.lower())
                entry[3].append((referenced_column or "").lower())
        return {(t, tuple(c), r, tuple(rc)) for t, c, r, rc in found.values()}
    finally:
        conn.close()


def pg_foreign_keys(database: str) -> set[tuple]:
    rows = run_sql(
        database,
        "SELECT lower(c.relname), ARRAY(SELECT lower(a.attname) FROM unnest(k.conkey) WITH ORDINALITY u(n, i) "
        "  JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i), lower(r.relname), "
        "ARRAY(SELECT lower(a.attname) FROM unnest(k.confkey) WITH ORDINALITY u(n, i) "
        "  JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i) "
        "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid WHERE k.contype = 'f'",
    )
    return {(t, tuple(c), r, tuple(rc)) for t, c, r, rc in rows}


def test_sqlite_chinook_into_postgresql(databases: Databases, tmp_path: Path) -> None:
    if not CHINOOK_SQLITE.exists():
        pytest.skip("the Chinook SQLite sample is not there")
    service = make_service()
    path = service.create_backup(str(CHINOOK_SQLITE), tmp_path).path
    target = databases.adopt(pg_support.unique_name("from_sqlite"))
    result = service.restore_backup(path, url_for(target))
    report = {(m.table, m.column): m for m in result.fidelity}
    assert all(m.fidelity == "exact" for m in result.fidelity), [m for m in result.fidelity if m.fidelity != "exact"]
    # SQLite does not enforce NUMERIC(10,2): numeric without limits holds every value exactly
    assert report[("Invoice", "Total")].target_type == "numeric"
    assert report[("PlaylistTrack", "rowid")].target_type == NOT_KEPT
    assert report[("Track", "Name")].target_type == "text"
    # the indexes are plain column lists: they come along; nothing is dropped silently
    assert not [s for s in result.skipped if s.startswith("index")]
    indexes = {name for (name,) in run_sql(target, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert "IFK_TrackAlbumId" in indexes
    # every foreign key of the SQLite file is there, with what it references
    assert sqlite_foreign_keys(CHINOOK_SQLITE) == pg_foreign_keys(target)
    assert not [s for s in result.skipped if "foreign" in s], result.skipped
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
    total = next(m for m in into_sqlite.fidelity if (m.table, m.column) == ("public.invoice", "total"))
    assert total.fidelity == "exact" and "stored as REAL" in total.note  # numeric(10,2): a double holds each such number
    second = service.create_backup(str(middle), tmp_path / "sqlite").path
    target = databases.adopt(pg_support.unique_name("round"))
    back = service.restore_backup(second, url_for(target))
    assert all(m.fidelity == "exact" for m in back.fidelity)
    # the same rows; numeric(10,2) comes back as numeric (SQLite kept no scale), so values are
    # compared as numbers rather than by their text
    original = table_fingerprints(pg_chinook)
    assert {name.split(".", 1)[1]: count for name, (count, _) in original.items()} == {
        name.split(".", 1)[1]: count for name, (count, _) in table_fingerprints(target).items()
    }
    for name in original:
        table = name.split(".", 1)[1]
        assert sorted(tuple(normalised(v) for v in row) for row in run_sql(target, f'SELECT * FROM public."{table}"')) == sorted(
            tuple(normalised(v) for v in row) for row in run_sql(pg_chinook, f'SELECT * FROM public."{table}"')
        ), table


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
    result = service.restore_backup(path, url_for(target), allow_lossy=True)
    # a MySQL date column may hold zero dates, which PostgreSQL has not: reported, never "exact"
    lossy = {(m.table, m.column): m for m in result.fidelity if m.fidelity != "exact"}
    assert lossy and all(m.logical_type in ("date", "datetime", "datetime_tz") and "0000-00-00" in m.note for m in lossy.values()), lossy
    assert ("Invoice", "InvoiceDate") in lossy
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
        # a MySQL date may be a zero or invalid date, which PostgreSQL has not: NULL, reported
        (ColumnSchema("a", "date", "date"), ("date", "approximated")),
        (ColumnSchema("a", "datetime(6)", "datetime", options={"fsp": 6}), ("timestamp(6)", "approximated")),
        (ColumnSchema("a", "timestamp(3)", "datetime_tz", options={"fsp": 3}), ("timestamp(3) with time zone", "approximated")),
        (ColumnSchema("a", "enum('x','y')", "enum", options={"labels": ["x", "y"]}), ("text", "exact")),
        (ColumnSchema("a", "geometry", "other"), ("text", "approximated")),
        (ColumnSchema("a", "", "any"), ("text", "approximated")),
    ],
)
def test_column_mapping(column: ColumnSchema, expected: tuple[str, str]) -> None:
    (mapping,) = map_columns(_plan(column))
    assert (mapping.target_type, mapping.fidelity) == expected
    assert mapping.fidelity == "exact" or mapping.note


# -- SQLite: constraints, defaults, keys -----------------------------------------------------------

CONSTRAINTS_SQL = """
CREATE TABLE parent (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    qty INTEGER NOT NULL DEFAULT 5 CHECK (qty >= 0),
    note TEXT DEFAULT 'n/a',
    flag BOOLEAN DEFAULT TRUE,
    price DECIMAL(6,2) DEFAULT '1.50',
    made TEXT DEFAULT CURRENT_TIMESTAMP,
    computed INTEGER DEFAULT (abs(-3))
);
CREATE TABLE child (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id INTEGER REFERENCES parent (id) ON DELETE CASCADE,
    name TEXT,
    UNIQUE (parent_id, name),
    CHECK (name LIKE 'a%'),
    CHECK (length(name) < 10)
);
CREATE TABLE loose (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent);
CREATE VIEW parent_codes AS SELECT code FROM parent;
CREATE TRIGGER child_touch AFTER INSERT ON child BEGIN UPDATE parent SET qty = qty + 1 WHERE id = new.parent_id; END;
INSERT INTO parent (id, code) VALUES (1, 'p1'), (2, 'p2');
INSERT INTO child (parent_id, name) VALUES (1, 'apple'), (2, 'avocado');
DELETE FROM child WHERE id = 2;
INSERT INTO loose (id, parent_id) VALUES (1, 1), (2, 99);
"""


def sqlite_file(path: Path, script: str) -> Path:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(script)
        conn.commit()
    finally:
        conn.close()
    return path


def constraints_of(database: str) -> dict[str, set[tuple[str, str, bool]]]:
    found: dict[str, set[tuple[str, str, bool]]] = {}
    for table, kind, definition, valid in run_sql(
        database,
        "SELECT conrelid::regclass::text, contype::text, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace AND contype IN ('f', 'u', 'c')",
    ):
        found.setdefault(table, set()).add((kind, definition, valid))
    return found


def test_sqlite_constraints_and_defaults_come_across_or_are_listed(databases: Databases, tmp_path: Path) -> None:
    source = sqlite_file(tmp_path / "shop.db", CONSTRAINTS_SQL)
    service = make_service()
    path = service.create_backup(str(source), tmp_path).path
    target = databases.adopt(pg_support.unique_name("constraints"))
    result = service.restore_backup(path, url_for(target))
    skipped = list(result.skipped)
    found = constraints_of(target)
    assert ("f", "FOREIGN KEY (parent_id) REFERENCES parent(id) ON DELETE CASCADE", True) in found["child"]
    assert ("u", "UNIQUE (parent_id, name)", True) in found["child"]
    assert ("u", "UNIQUE (code)", True) in found["parent"]
    assert ("c", "CHECK ((qty >= 0))", True) in found["parent"]
    assert ("c", "CHECK ((length(name) < 10))", True) in found["child"]
    # a foreign key without columns names the parent's primary key; one the rows break is kept
    # (NOT VALID: new rows are checked) and said so
    assert ("f", "FOREIGN KEY (parent_id) REFERENCES parent(id) NOT VALID", False) in found["loose"]
    assert any(s.startswith("foreign key of loose (parent_id) to parent (id) (created NOT VALID: existing rows break it") for s in skipped), skipped
    # what does not mean the same in PostgreSQL is listed with its reason, never dropped silently
    assert any(s.startswith("check of child (name LIKE 'a%') (LIKE does not mean the same") for s in skipped), skipped
    assert any(s.startswith("default of parent.computed (") and s.endswith("(SQLite expression, not translated)") for s in skipped), skipped
    assert any(s.startswith("view parent_codes (its SQL is SQLite's: views of another engine are not recreated)") for s in skipped), skipped
    assert any(s.startswith("trigger child_touch on child (its SQL is SQLite's") for s in skipped), skipped
    assert not [s for s in skipped if "its table was not restored" in s], skipped
    assert all(s.endswith(")") for s in skipped), skipped
    # the literal defaults hold; SQLite's CURRENT_TIMESTAMP is UTC text to the second
    (note, flag, qty, price, made) = run_sql(target, "INSERT INTO parent (id, code) VALUES (3, 'p3') RETURNING note, flag, qty, price, made")[0]
    assert (note, flag, qty, price) == ("n/a", True, 5, decimal.Decimal("1.50"))
    assert len(made) == 19 and made[4] == "-" and made[10] == " "
    # AUTOINCREMENT never reuses a key up to its high-water mark (2, although the highest row is 1)
    (next_id,) = run_sql(target, "INSERT INTO child (parent_id, name) VALUES (1, 'apricot') RETURNING id")[0]
    assert next_id == 3
    # the keys and checks are enforced
    with pytest.raises(pg_support.psycopg.errors.CheckViolation):
        run_sql(target, "INSERT INTO parent (id, code, qty) VALUES (4, 'p4', -1)")
    with pytest.raises(pg_support.psycopg.errors.ForeignKeyViolation):
        run_sql(target, "INSERT INTO child (parent_id, name) VALUES (42, 'a')")


def test_sqlite_foreign_key_to_a_table_left_out_is_listed(databases: Databases, tmp_path: Path) -> None:
    source = sqlite_file(tmp_path / "shop.db", CONSTRAINTS_SQL)
    service = make_service()
    path = service.create_backup(str(source), tmp_path).path
    target = databases.adopt(pg_support.unique_name("subset"))
    result = service.restore_backup(path, url_for(target), tables=("child",))
    assert "foreign key of child (parent_id) to parent (the referenced table was not restored)" in result.skipped
    assert "trigger child_touch on child (its SQL is SQLite's: triggers of another engine are not recreated)" in result.skipped


def test_sqlite_keys_of_any_type_and_value(databases: Databases, tmp_path: Path) -> None:
    """A TEXT key gets no identity; keys of 0 and below, and empty tables, restore; the identity
    continues after the highest key."""
    source = sqlite_file(
        tmp_path / "keys.db",
        "CREATE TABLE demographics (code TEXT PRIMARY KEY, label TEXT);"
        "INSERT INTO demographics VALUES ('A', 'a');"
        "CREATE TABLE words (word TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID;"
        "CREATE TABLE negative (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO negative VALUES (-1, NULL), (0, 'zero');"
        "CREATE TABLE empty (id INTEGER PRIMARY KEY, v TEXT);",
    )
    service = make_service()
    path = service.create_backup(str(source), tmp_path).path
    target = databases.adopt(pg_support.unique_name("keys"))
    result = service.restore_backup(path, url_for(target))
    assert result.rows == 3
    assert run_sql(target, "INSERT INTO negative (v) VALUES ('next') RETURNING id")[0][0] == 1
    assert run_sql(target, "INSERT INTO empty (v) VALUES ('first') RETURNING id")[0][0] == 1


def _sample_params() -> list:
    from conftest import SAMPLE_DATA_DIR, sample_databases

    samples = sample_databases()
    if not samples:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no sample databases in {SAMPLE_DATA_DIR}"))]
    return [pytest.param(path, id=str(path.relative_to(SAMPLE_DATA_DIR))) for path in samples]


@pytest.mark.parametrize("sample", _sample_params())
def test_every_sqlite_sample_into_postgresql(sample: Path, databases: Databases, tmp_path: Path) -> None:
    """Every SQLite sample restores into PostgreSQL (--allow-lossy where the report approximates),
    with every row of every table, and every object it leaves out listed with a reason."""
    service = make_service()
    path = service.create_backup(str(sample), tmp_path).path
    target = databases.adopt(pg_support.unique_name("sample"))
    result = service.restore_backup(path, url_for(target), allow_lossy=True)
    schema = service.inspect_backup(path).header.schema
    tables = [t for t in schema.tables if not t.options.get("same_engine_only")]
    conn = sqlite3.connect(f"file:{sample}?mode=ro", uri=True)
    try:
        expected = {t.name: conn.execute(f'SELECT count(*) FROM "{t.name}"').fetchone()[0] for t in tables if t.has_data}
    finally:
        conn.close()
    restored = {t.name: run_sql(target, f'SELECT count(*) FROM public."{t.name}"')[0][0] for t in tables if t.has_data}
    assert restored == expected
    assert result.rows == sum(expected.values())
    assert all("(" in s and s.endswith(")") or ": " in s for s in result.skipped), result.skipped
    assert not [s for s in result.skipped if s.startswith("view") and "not restored" in s], result.skipped


# -- SQLite values of another storage class than the declared type --------------------------------

MIXED_SQL = """
CREATE TABLE readings (id INTEGER PRIMARY KEY, value NUMERIC, taken DATETIME, flag BOOLEAN NOT NULL, note TEXT);
INSERT INTO readings VALUES (1, 42, '2024-02-29 12:00:00', 1, 'fine');
INSERT INTO readings VALUES (2, 'hello, this text is longer than forty characters for sure', '2024-03-01T08:00:00Z', 0, x'00ff');
INSERT INTO readings VALUES (3, 1.5, 1727078780, 2, NULL);
"""


def error_line(result, code: int) -> str:
    """The one error line of a failed run (the fidelity report comes before it on stderr)."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("unibackup: error: ")]
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0], result.stderr
    return errors[0]


def test_sqlite_value_of_another_class_stops_the_restore_naming_it(databases: Databases, tmp_path: Path) -> None:
    source = sqlite_file(tmp_path / "mixed.db", MIXED_SQL)
    service = make_service()
    path = service.create_backup(str(source), tmp_path).path
    name = pg_support.unique_name("mixed")
    databases.adopt(name)
    report_only = map_columns(RestorePlan(schema=service.inspect_backup(path).header.schema,
                                          tables=service.inspect_backup(path).header.schema.tables, source_engine="sqlite"))
    value = next(m for m in report_only if m.column == "value")
    assert (value.target_type, value.fidelity) == ("numeric", "exact")
    assert "SQLite does not enforce NUMERIC" in value.note and "stops the restore" in value.note
    result = pg_support.cli("restore", path, url_for(name))
    line = error_line(result, 1)
    assert line.startswith("unibackup: error: table 'readings', column 'value': numeric cannot hold the value 'hello, this text is longer than forty ch…' (text)")
    assert "--allow-lossy" in line
    # the database the restore created is gone again
    assert not run_sql("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (name,))


def test_sqlite_values_of_another_class_become_null_and_are_listed_with_allow_lossy(databases: Databases, tmp_path: Path) -> None:
    source = sqlite_file(tmp_path / "mixed.db", MIXED_SQL)
    service = make_service()
    path = service.create_backup(str(source), tmp_path).path
    target = databases.adopt(pg_support.unique_name("mixed_lossy"))
    result = service.restore_backup(path, url_for(target), allow_lossy=True)
    assert all("becomes NULL and is listed" in m.note for m in result.fidelity if m.column in ("value", "taken", "flag", "note"))
    rows = run_sql(target, "SELECT id, value, taken, flag, note FROM readings ORDER BY id")
    assert rows == [
        (1, decimal.Decimal("42"), datetime.datetime(2024, 2, 29, 12, 0), True, "fine"),
        (2, None, datetime.datetime(2024, 3, 1, 8, 0), False, None),
        (3, decimal.Decimal("1.5"), None, None, None),
    ]
    skipped = "\n".join(result.skipped)
    assert "1 value of readings.value stored as NULL (numeric cannot hold it): 'hello, this text is longer than forty ch…' (text)" in skipped
    assert "1 value of readings.taken stored as NULL (timestamp cannot hold it): 1727078780 (integer: SQLite reads a number as a Julian day" in skipped
    assert "1 value of readings.flag stored as NULL (boolean cannot hold it): 2 (integer: 2 is neither 0 nor 1)" in skipped
    assert "1 value of readings.note stored as NULL (text cannot hold it): x'00ff' (2 bytes) (blob)" in skipped
    # flag was NOT NULL in SQLite: kept where no value became NULL, said so where one did
    assert "NOT NULL of readings.flag (values of it became NULL)" in skipped


MIXED_SAMPLE = pg_support.DATA / "duckdb_sqlite_fixtures" / "mixed_data_numeric.db"


def test_mixed_data_numeric_sample(databases: Databases, tmp_path: Path) -> None:
    if not MIXED_SAMPLE.exists():
        pytest.skip("the sample mixed_data_numeric.db is not there")
    service = make_service()
    path = service.create_backup(str(MIXED_SAMPLE), tmp_path).path
    name = databases.adopt(pg_support.unique_name("mixed_sample"))
    result = pg_support.cli("restore", path, url_for(name))
    assert "table 'tbl', column 'a': numeric cannot hold the value 'hello' (text)" in error_line(result, 1)
    assert not run_sql("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (name,))


# -- MySQL zero dates ------------------------------------------------------------------------------


def mysql_backup(service, tmp_path: Path, prefix: str, *statements: str) -> str:
    """A backup of a fresh MySQL/MariaDB database made by ``statements`` (dropped again)."""
    mysql_support = pytest.importorskip("mysql_support")
    if "mysql" not in [entry.name for entry in service.hooks.sources]:
        pytest.skip("the mysql source plugin is not there")
    made = mysql_support.Databases()
    mysql_support.connect().close()
    try:
        source = made.new(prefix)
        mysql_support.run_sql(source, *statements)
        return service.create_backup(mysql_support.url_for(source), tmp_path).path
    finally:
        made.drop_all()


def test_mysql_zero_dates_are_reported_and_become_null(databases: Databases, tmp_path: Path) -> None:
    service = make_service()
    path = mysql_backup(
        service, tmp_path, "zero_dates",
        "SET SESSION sql_mode = 'ALLOW_INVALID_DATES'",
        "CREATE TABLE events (id INT PRIMARY KEY, day DATE NOT NULL DEFAULT '0000-00-00', at DATETIME NULL, fine DATE NOT NULL)",
        "INSERT INTO events VALUES (1, '2024-02-29', '2024-02-29 10:00:00', '2024-01-01'), (2, '0000-00-00', '2024-02-30 00:00:00', '2024-01-02'),"
        " (3, '2024-00-10', NULL, '2024-01-03')",
    )
    name = pg_support.unique_name("zero_dates")
    databases.adopt(name)
    # reported approximated, with what happens; refused without --allow-lossy, before anything is written
    refused = pg_support.cli("restore", path, url_for(name))
    line = error_line(refused, 2)
    assert "would approximate 3 column(s)" in line and "0000-00-00" in line
    assert not run_sql("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    result = service.restore_backup(path, url_for(name), allow_lossy=True)
    report = {m.column: m for m in result.fidelity}
    assert report["day"].fidelity == "approximated" and "becomes NULL" in report["day"].note
    assert run_sql(name, "SELECT id, day, at, fine FROM events ORDER BY id") == [
        (1, datetime.date(2024, 2, 29), datetime.datetime(2024, 2, 29, 10, 0), datetime.date(2024, 1, 1)),
        (2, None, None, datetime.date(2024, 1, 2)),
        (3, None, None, datetime.date(2024, 1, 3)),
    ]
    skipped = "\n".join(result.skipped)
    assert "2 values of events.day stored as NULL (date cannot hold them): '0000-00-00' (text: a zero or invalid MySQL date" in skipped
    assert "1 value of events.at stored as NULL (timestamp(0) cannot hold it): '2024-02-30 00:00:00'" in skipped
    # NOT NULL stays where no value became NULL; where one did, it is said
    assert "NOT NULL of events.day (values of it became NULL)" in skipped
    assert run_sql(name, "SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = 'events'::regclass AND attname IN ('day', 'fine') ORDER BY 1") == [
        ("day", False), ("fine", True)
    ]
    assert any(s.startswith("default of events.day ('0000-00-00') (") for s in result.skipped), result.skipped


# -- PostgreSQL arrays into other engines ----------------------------------------------------------


def test_empty_arrays_arrive_as_empty_lists(databases: Databases, tmp_path: Path) -> None:
    """An empty array is a list like any other array, into SQLite and into MySQL's JSON, not the
    text '{}' (a JSON object); on PostgreSQL it stays an empty array of its type."""
    source = databases.new("arrays")
    run_sql(source, "CREATE TABLE t (id int PRIMARY KEY, ia integer[], ta text[], na numeric[])")
    run_sql(source, "INSERT INTO t VALUES (1, '{}', '{}', '{}'), (2, '{1,2}', '{a,b}', NULL)")
    service = make_service()
    path = service.create_backup(url_for(source), tmp_path).path
    into_sqlite = tmp_path / "arrays.sqlite"
    service.restore_backup(path, str(into_sqlite), allow_lossy=True)
    conn = sqlite3.connect(into_sqlite)
    try:
        rows = conn.execute("SELECT id, ia, ta, na FROM t ORDER BY id").fetchall()
    finally:
        conn.close()
    assert rows[0] == (1, "[]", "[]", "[]")
    assert rows[1][:3] == (2, "[1,2]", '["a","b"]')
    same = databases.adopt(pg_support.unique_name("arrays_back"))
    service.restore_backup(path, url_for(same))
    assert run_sql(same, "SELECT ia = '{}'::int[], ta = '{}'::text[], na = '{}'::numeric[], ia::text FROM t WHERE id = 1") == [(True, True, True, "{}")]
    mysql_support = pytest.importorskip("mysql_support")
    if "mysql" not in [entry.name for entry in service.hooks.sources]:
        pytest.skip("the mysql source plugin is not there")
    made = mysql_support.Databases()
    mysql_support.connect().close()
    try:
        target = made.new("arrays", create=False)
        service.restore_backup(path, mysql_support.url_for(target), allow_lossy=True)
        values = mysql_support.run_sql(target, "SELECT id, JSON_TYPE(ia), JSON_LENGTH(ia), JSON_TYPE(ta) FROM t ORDER BY id")
    finally:
        made.drop_all()
    assert [tuple(row) for row in values] == [(1, "ARRAY", 0, "ARRAY"), (2, "ARRAY", 2, "ARRAY")]


def test_text_with_a_nul_character_is_reported_and_stops_or_becomes_null(databases: Databases, tmp_path: Path) -> None:
    source = sqlite_file(tmp_path / "nul.db", """
        CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, tag TEXT);
        INSERT INTO notes VALUES (1, 'a' || char(0) || 'b', 'fine'), (2, 'plain', 'x' || char(0));
    """)
    service = make_service()
    path = service.create_backup(str(source), tmp_path).path
    schema = service.inspect_backup(path).header.schema
    body = next(m for m in map_columns(RestorePlan(schema=schema, tables=schema.tables, source_engine="sqlite")) if m.column == "body")
    assert "NUL character" in body.note and "stops the restore" in body.note
    name = databases.adopt(pg_support.unique_name("nul"))
    line = error_line(pg_support.cli("restore", path, url_for(name)), 1)
    assert "table 'notes', column 'body'" in line and "NUL character" in line and "--allow-lossy" in line
    result = service.restore_backup(path, url_for(name), allow_lossy=True)
    assert "becomes NULL and is listed" in next(m for m in result.fidelity if m.column == "body").note
    assert run_sql(name, "SELECT id, body, tag FROM notes ORDER BY id") == [(1, None, "fine"), (2, "plain", None)]
    assert any(s.startswith("1 value of notes.body stored as NULL") for s in result.skipped), result.skipped
    assert any(s.startswith("NOT NULL of notes.body") for s in result.skipped), result.skipped


def test_mysql_text_with_nul_and_time_beyond_a_day_into_postgresql(databases: Databases, tmp_path: Path) -> None:
    service = make_service()
    path = mysql_backup(
        service, tmp_path, "nul_time",
        "CREATE TABLE t (id int PRIMARY KEY, body text, d time(6))",
        "INSERT INTO t VALUES (1, concat('a', char(0), 'b'), '-838:59:59'), (2, 'plain', '24:00:00'), (3, NULL, '01:02:03.5')",
    )
    name = databases.adopt(pg_support.unique_name("from_mysql_nul"))
    line = error_line(pg_support.cli("restore", path, url_for(name)), 1)
    assert "column 'body'" in line and "NUL character" in line and "--allow-lossy" in line
    result = service.restore_backup(path, url_for(name), allow_lossy=True)
    report = {m.column: m for m in result.fidelity}
    assert report["body"].fidelity == "exact" and "NUL character" in report["body"].note
    assert report["d"].target_type == "interval" and "838:59:59 stays 838:59:59" in report["d"].note
    rows = run_sql(name, "SELECT id, body, d::text, extract(day FROM d)::int FROM t ORDER BY id")
    assert rows == [(1, None, "-838:59:59", 0), (2, "plain", "24:00:00", 0), (3, None, "01:02:03.5", 0)]
    # hours stay hours: a timestamptz across a DST change moves by exactly that many hours
    with pg_support.admin_connect(name) as conn:
        conn.execute("SET TimeZone = 'Europe/Berlin'")
        (moved,) = conn.execute("SELECT ('2024-03-30 12:00+01'::timestamptz + d)::text FROM t WHERE id = 2").fetchone()
    assert moved == "2024-03-31 13:00:00+02"  # "1 day" would give 12:00+02, 23 hours later


def test_the_mysql_enum_error_value_restores_into_postgresql(databases: Databases, tmp_path: Path) -> None:
    service = make_service()
    path = mysql_backup(
        service, tmp_path, "enum_error",
        "SET SESSION sql_mode = ''",
        "CREATE TABLE e (id int PRIMARY KEY, c enum('a','b'))",
        "INSERT INTO e VALUES (1, 'a'), (2, 'bogus'), (3, NULL)",  # 'bogus' is stored as '' (index 0)
    )
    name = databases.adopt(pg_support.unique_name("from_mysql_enum"))
    result = service.restore_backup(path, url_for(name))
    assert "MySQL's error value" in next(m for m in result.fidelity if m.column == "c").note
    assert run_sql(name, "SELECT id, c FROM e ORDER BY id") == [(1, "a"), (2, ""), (3, None)]
    with pytest.raises(Exception, match="check constraint"):
        run_sql(name, "INSERT INTO e VALUES (4, 'c')")  # the labels are still enforced
