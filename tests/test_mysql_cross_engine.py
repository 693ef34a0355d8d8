"""MySQL/MariaDB as a cross-engine restore target (SQLite -> MySQL, PostgreSQL -> MySQL), and MySQL
Chinook through SQLite and back, with the fidelity report checked."""

from __future__ import annotations

import datetime
import decimal
import sqlite3
from pathlib import Path

import attrs
import orjson
import pytest

from unibackup.errors import SourceError, UsageError
from unibackup.models import ColumnSchema, DatabaseSchema, SchemaObject, TableSchema
from unibackup.plugins.mysql import mapping
from unibackup.plugins.mysql.mapping import NOT_KEPT, TargetServer
from unibackup.source import RestorePlan

from conftest import SAMPLE_DATA_DIR, sample_databases
from mysql_support import CHINOOK_SQLITE, Inspector, chinook, database_exists, databases, url_for

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


# -- constraints of SQLite tables, keys that must fit, values a column cannot hold -----------------

CONSTRAINED = """
CREATE TABLE parent (id INTEGER PRIMARY KEY, code TEXT UNIQUE, name TEXT NOT NULL CHECK (length(name) > 0), CHECK (id < 1000), CHECK (name <> ''));
CREATE TABLE child (
  id INTEGER PRIMARY KEY,
  parent_id INTEGER REFERENCES parent(id) ON DELETE CASCADE,
  qty INTEGER CHECK (qty >= 0 AND qty <= 1000000),
  a TEXT, b TEXT,
  label TEXT CHECK (label <> 'x' OR qty = 1) CHECK (label IN ('x', 'z')),
  other INTEGER REFERENCES gone(id),
  defaulted INTEGER DEFAULT 1 REFERENCES parent(id) ON DELETE SET DEFAULT,
  UNIQUE (a, b),
  CONSTRAINT fk_code FOREIGN KEY (a) REFERENCES parent (code) ON UPDATE CASCADE
);
"""


def _constraints(database: str) -> dict[str, list]:
    with Inspector(database) as inspector:
        return {
            "foreign": sorted(inspector.rows(
                "SELECT k.TABLE_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.DELETE_RULE, r.UPDATE_RULE"
                " FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r"
                " ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME"
                " WHERE k.TABLE_SCHEMA = %s AND k.REFERENCED_TABLE_NAME IS NOT NULL", (database,),
            )),
            "unique": sorted(inspector.rows(
                "SELECT TABLE_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) FROM information_schema.STATISTICS"
                " WHERE TABLE_SCHEMA = %s AND NON_UNIQUE = 0 AND INDEX_NAME <> 'PRIMARY' GROUP BY TABLE_NAME, INDEX_NAME", (database,),
            )),
            "checks": sorted(inspector.rows(
                "SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s", (database,),
            )),
        }


def test_sqlite_foreign_keys_unique_and_checks_come_across_or_are_listed(service, databases, make_db, tmp_path):
    path = make_db(CONSTRAINED, inserts=[
        ("INSERT INTO parent VALUES (?, ?, ?)", [(1, "p1", "one"), (2, "p2", "two")]),
        ("INSERT INTO child (id, parent_id, qty, a, b, label) VALUES (?, ?, ?, ?, ?, ?)", [(1, 1, 3, "p1", "y", "z"), (2, 2, 1, "p2", "y", "x")]),
    ])
    backup = service.create_backup(str(path), tmp_path).path
    target = databases.new("constraints", create=False)
    result = service.restore_backup(backup, url_for(target), allow_lossy=True)

    found = _constraints(target)
    assert found["foreign"] == [
        ("child", "a", "parent", "code", "RESTRICT", "CASCADE"),
        ("child", "parent_id", "parent", "id", "CASCADE", "RESTRICT"),
    ]
    assert found["unique"] == [("child", "a,b"), ("parent", "code")]
    assert found["checks"] == [("child", "`label` in ('x','z')"), ("child", "`qty` >= 0 and `qty` <= 1000000"), ("parent", "`name` <> ''")]
    skipped = "\n".join(result.skipped)
    # every constraint that did not come across is listed, with the reason
    assert "foreign key of child (other) -> gone (references gone, which was not restored)" in skipped
    assert "foreign key of child (defaulted) -> parent (ON DELETE SET DEFAULT: InnoDB has no such action)" in skipped
    assert "check (length(name) > 0) of parent (not carried over: it calls length()" in skipped
    assert "check (label <> 'x' OR qty = 1) of child (not carried over: it mixes text and numbers" in skipped
    assert "check (id < 1000) of parent (MySQL refused it: " in skipped  # MariaDB: not on an AUTO_INCREMENT column
    report = {(m.table, m.column): m for m in result.fidelity}
    assert report[("child", "a")].target_type == "VARCHAR(384)" and report[("child", "a")].fidelity == "approximated"
    assert report[("parent", "code")].target_type == "VARCHAR(768)"
    with Inspector(target) as inspector:
        assert inspector.rows("SELECT id, a, b, label FROM child ORDER BY id") == [(1, "p1", "y", "z"), (2, "p2", "y", "x")]


def test_constraints_of_old_backups_are_read_from_the_ddl():
    """Backups written before the SQLite source gave its constraints as options: from the DDL."""
    table = TableSchema(name="child", columns=(
        ColumnSchema("id", "INTEGER", "integer", primary_key=1), ColumnSchema("Parent_ID", "INTEGER", "integer"),
        ColumnSchema("a", "TEXT", "text"), ColumnSchema("b", "TEXT", "text"),
    ), create_sql=CONSTRAINED.split(";")[1])
    found = mapping.table_constraints(table, (), mapping.parse_index)
    assert [(k.columns, k.referenced_table, k.referenced_columns, k.on_delete, k.on_update) for k in found.foreign_keys] == [
        (["Parent_ID"], "parent", ["id"], "CASCADE", None),
        (["other"], "gone", ["id"], None, None),
        (["defaulted"], "parent", ["id"], "SET DEFAULT", None),
        (["a"], "parent", ["code"], None, "CASCADE"),
    ]
    assert found.unique == [["a", "b"]]
    assert found.checks == ["qty >= 0 AND qty <= 1000000", "label <> 'x' OR qty = 1", "label IN ('x', 'z')"]
    # the options, when the source wrote them, win; both object kinds of a foreign key are read
    with_options = attrs.evolve(table, options={"foreign_keys": [], "unique": [["b"]], "checks": []})
    objects = tuple(
        SchemaObject(kind, f"fk{n}", None, table="child", options={"columns": ["a"], "referenced_table": f"t{n}", "referenced_columns": ["x"]})
        for n, kind in enumerate(("foreign_key", "foreign key"))
    )
    found = mapping.table_constraints(with_options, objects, mapping.parse_index)
    assert found.unique == [["b"]] and found.checks == []
    assert [k.referenced_table for k in found.foreign_keys] == ["t0", "t1"]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("[Discount]>=(0) AND [Discount]<=(1)", "`Discount` >= ( 0 ) AND `Discount` <= ( 1 )"),
        ('"qty" BETWEEN 1 AND 10 OR qty IS NULL', "`qty` BETWEEN 1 AND 10 OR `qty` IS NULL"),
        ("name IN ('a', 'b\\c')", "`name` IN ( 'a' , 'b\\\\c' )"),
        ("CHECK ((qty = 1))", "( ( `qty` = 1 ) )"),
        ("length(name) > 0", None),
        ("name || 'x' = 'ax'", None),
        ("qty / 2 = 1", None),
        ("name > 5", None),
        ("name LIKE 'a%'", None),
        ("nosuch = 1", None),
    ],
)
def test_check_expressions_carried_over_only_when_they_read_the_same(expression, expected):
    from unibackup.plugins.mysql.constraints import translate_check

    columns = {
        "qty": (ColumnSchema("qty", "INTEGER", "integer"), "BIGINT"),
        "discount": (ColumnSchema("Discount", "REAL", "float"), "DOUBLE"),
        "name": (ColumnSchema("name", "TEXT", "text"), "VARCHAR(10)"),
    }
    assert translate_check(expression, columns, "sqlite", False)[0] == expected


def test_keys_share_the_3072_bytes():
    assert mapping.share_key_bytes([("text", None), ("text", None)]) == [1536, 1536]
    assert mapping.share_key_bytes([("fixed", 8), ("text", None)]) == [None, 3064]
    assert mapping.share_key_bytes([("text", 400), ("text", None), ("bytes", None)]) == [400, 1336, 1336]
    two = TableSchema(name="t", columns=(
        ColumnSchema("a", "TEXT", "text", primary_key=1, nullable=False), ColumnSchema("b", "TEXT", "text", primary_key=2, nullable=False),
        ColumnSchema("c", "INTEGER", "integer"), ColumnSchema("d", "VARCHAR(1000)", "text", options={"length": 1000}),
    ), options={"unique": [["c", "d"]]})
    report = {m.column: m for m in mapping.map_tables([two], (), "sqlite", MARIADB)}
    assert report["a"].target_type == report["b"].target_type == "VARCHAR(384)"
    assert report["a"].fidelity == "approximated" and "384" in report["a"].target_type and "stops the restore" in report["a"].note
    assert report["d"].target_type == "VARCHAR(766)" and "stored as NULL" in report["d"].note  # 8 bytes of c, 3064 for d


def test_northwind_into_mysql(service, databases, tmp_path):
    """The two-column TEXT primary key of CustomerCustomerDemo used to be 2 x VARCHAR(768): too long."""
    northwind = SAMPLE_DATA_DIR / "northwind_sqlite" / "northwind.db"
    if not northwind.exists():
        pytest.skip("the Northwind sample is not there")
    backup = service.create_backup(str(northwind), tmp_path).path
    target = databases.new("northwind", create=False)
    with pytest.raises(UsageError, match="VARCHAR.384"):  # the bounded keys are approximations
        service.restore_backup(backup, url_for(target))
    result = service.restore_backup(backup, url_for(target), allow_lossy=True)
    report = {(m.table, m.column): m for m in result.fidelity}
    assert report[("CustomerCustomerDemo", "CustomerID")].target_type == "VARCHAR(384)"
    assert report[("EmployeeTerritories", "TerritoryID")].target_type == "VARCHAR(766)"  # beside a BIGINT
    found = _constraints(target)
    assert len(found["foreign"]) == 13
    assert ("Order Details", "`Quantity` > 0") in found["checks"]
    assert not [line for line in result.skipped if line.startswith(("foreign key", "check", "unique", "index"))], result.skipped


SQLITE_SAMPLES = sample_databases()


@pytest.mark.parametrize("sample", SQLITE_SAMPLES or [None], ids=[p.name for p in SQLITE_SAMPLES] or ["absent"])
def test_every_sqlite_sample_restores_into_mysql(service, databases, tmp_path, sample):
    if sample is None:
        pytest.skip(f"no sample databases in {SAMPLE_DATA_DIR}")
    backup = service.create_backup(str(sample), tmp_path).path
    target = databases.new("sample", create=False)
    result = service.restore_backup(backup, url_for(target), allow_lossy=True)
    schema = service.inspect_backup(backup).header.schema
    conn = sqlite3.connect(f"file:{sample}?mode=ro", uri=True)
    try:
        expected = {
            table.name: conn.execute(f'SELECT count(*) FROM "{table.name}"').fetchone()[0]
            for table in schema.tables if table.has_data and not table.options.get("same_engine_only")
        }
    finally:
        conn.close()
    with Inspector(target) as inspector:
        restored = {name: inspector.rows(f"SELECT COUNT(*) FROM `{name}`")[0][0] for name in inspector.tables()}
    assert {name: restored.get(name) for name in expected} == expected
    assert result.rows == sum(expected.values())


def test_a_value_of_another_type_from_sqlite(service, databases, make_db, tmp_path):
    many = [(n, n, None, None, n) for n in range(3, 60003)] + [(60003, "late", None, None, 1)]  # a bad value in a later batch
    path = make_db("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, d DATETIME, k TEXT UNIQUE, must INTEGER NOT NULL);", inserts=[
        ("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [(1, 5, "2020-01-02 03:04:05", "a", 1), (2, "five", 1598313600, "k" * 800, 2), *many]),
    ])
    backup = service.create_backup(str(path), tmp_path).path
    plain = make_db("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER);", name="plain.db", inserts=[("INSERT INTO t VALUES (?, ?)", [(1, "five")])])
    plain_backup = service.create_backup(str(plain), tmp_path / "plain").path
    target = databases.new("loose", create=False)
    with pytest.raises(SourceError) as refused:  # exact for values of the declared type; this one is not
        service.restore_backup(plain_backup, url_for(target))
    assert "Incorrect integer value: 'five'" in refused.value.user_line() and "--allow-lossy" in refused.value.user_line()
    assert not database_exists(target)

    result = service.restore_backup(backup, url_for(target), allow_lossy=True)
    with Inspector(target) as inspector:
        assert inspector.rows("SELECT id, n, d, k FROM t WHERE id < 3 ORDER BY id") == [(1, 5, datetime.datetime(2020, 1, 2, 3, 4, 5), "a"), (2, None, None, None)]
        assert inspector.rows("SELECT COUNT(*), COUNT(n), SUM(n) FROM t") == [(60003, 60001, 5 + sum(range(3, 60003)))]
    skipped = "\n".join(result.skipped)
    assert "2 values of t.n stored as NULL (the first: Incorrect integer value: 'five')" in skipped
    assert "1 value of t.d stored as NULL (Incorrect datetime value: '1598313600')" in skipped
    assert "1 value of t.k stored as NULL (Data too long" in skipped


def test_a_key_value_longer_than_the_key_allows_stops_the_restore(service, databases, make_db, tmp_path):
    path = make_db("CREATE TABLE t (a TEXT, b TEXT, PRIMARY KEY (a, b));", inserts=[("INSERT INTO t VALUES (?, ?)", [("x" * 385, "y")])])
    backup = service.create_backup(str(path), tmp_path).path
    target = databases.new("long_key", create=False)
    with pytest.raises(SourceError, match=r"column 'a' \(VARCHAR\(384\)\): Data too long; the column is NOT NULL"):
        service.restore_backup(backup, url_for(target), allow_lossy=True)
    assert not database_exists(target)


def test_postgresql_intervals_dates_and_floats_into_mysql(service, databases, tmp_path):
    pg_support = pytest.importorskip("pg_support")
    if "postgresql" not in [entry.name for entry in service.hooks.sources]:
        pytest.skip("the postgresql source plugin is not there")
    made = pg_support.Databases()
    pg_support.admin_connect().close()
    try:
        source = made.new("pg_to_mysql_values")
        pg_support.run_sql(source, """
            CREATE TABLE t (id int PRIMARY KEY, iv interval, d date, ts timestamp, tz timestamptz, f float8, n numeric(10,2));
            INSERT INTO t VALUES
              (1, '1 day 2 hours', 'infinity', 'infinity', '-infinity', 1.5, 1),
              (2, '-1 days +02:00:00', '-infinity', '2020-01-01 10:00', '2020-01-01 10:00+02', 'NaN', 'NaN'),
              (3, '1 mon', '0044-03-15 BC', '-infinity', 'infinity', '-Infinity', 2),
              (4, '839 hours', '2020-02-29', NULL, NULL, NULL, NULL),
              (5, '-838:59:59', '2020-01-01', '1999-12-31 23:59:59.5', NULL, 0, 3);
        """)
        path = service.create_backup(pg_support.url_for(source), tmp_path).path
    finally:
        made.drop_all()
    target = databases.new("from_pg_values", create=False)
    with pytest.raises(UsageError, match="would approximate"):  # said before anything is written
        service.restore_backup(path, url_for(target))
    result = service.restore_backup(path, url_for(target), allow_lossy=True)
    report = {m.column: m for m in result.fidelity}
    for column in ("iv", "d", "ts", "tz", "f", "n"):
        assert report[column].fidelity == "approximated", report[column]
    assert "infinity and -infinity become 9999-12-31 and 0001-01-01" in report["d"].note
    with Inspector(target) as inspector:
        rows = inspector.rows("SELECT id, CAST(iv AS CHAR), d, ts, tz, f, n FROM t ORDER BY id")
    assert rows == [
        (1, "26:00:00.000000", datetime.date(9999, 12, 31), datetime.datetime(9999, 12, 31, 23, 59, 59, 999999), datetime.datetime(1, 1, 1), 1.5, decimal.Decimal("1.00")),
        (2, "-22:00:00.000000", datetime.date(1, 1, 1), datetime.datetime(2020, 1, 1, 10), datetime.datetime(2020, 1, 1, 8), None, None),
        (3, None, None, datetime.datetime(1, 1, 1), datetime.datetime(9999, 12, 31, 23, 59, 59, 999999), None, decimal.Decimal("2.00")),
        (4, None, datetime.date(2020, 2, 29), None, None, None, None),
        (5, "-838:59:59.000000", datetime.date(2020, 1, 1), datetime.datetime(1999, 12, 31, 23, 59, 59, 500000), None, 0.0, decimal.Decimal("3.00")),
    ]
    skipped = "\n".join(result.skipped)
    assert "2 values of public.t.iv stored as NULL (the first: the interval '1 mon' counts months" in skipped
    assert "1 value of public.t.d stored as NULL ('0044-03-15 BC' is outside the years 1-9999" in skipped
    assert "2 values of public.t.f stored as NULL" in skipped and "1 value of public.t.n stored as NULL" in skipped


def test_postgresql_intervals_are_read_in_every_style():
    parse = mapping.parse_interval
    assert parse("1 day 02:00:00") == (0, datetime.timedelta(days=1, hours=2))
    assert parse("-1 days +02:00:00") == (0, datetime.timedelta(hours=-22))
    assert parse("1 year 2 mons 3 days 04:05:06.789") == (14, datetime.timedelta(days=3, hours=4, minutes=5, seconds=6.789))
    assert parse("@ 1 day 2 hours 3 mins 4.5 secs ago") == (0, -datetime.timedelta(days=1, hours=2, minutes=3, seconds=4.5))
    assert parse("P1DT2H") == (0, datetime.timedelta(days=1, hours=2))
    assert parse("-00:00:00.000001") == (0, datetime.timedelta(microseconds=-1))
    assert parse("hello") is None and parse("1 day later") is None


def _pg_backup(service, tmp_path, name: str, script: str) -> str:
    pg_support = pytest.importorskip("pg_support")
    if "postgresql" not in [entry.name for entry in service.hooks.sources]:
        pytest.skip("the postgresql source plugin is not there")
    made = pg_support.Databases()
    pg_support.admin_connect().close()
    try:
        source = made.new(name)
        pg_support.run_sql(source, script)
        return service.create_backup(pg_support.url_for(source), tmp_path).path
    finally:
        made.drop_all()


def test_postgresql_arrays_times_reals_enums_and_generated_columns_into_mysql(service, databases, tmp_path):
    path = _pg_backup(service, tmp_path, "pg_to_mysql_arrays", """
        CREATE TYPE mood AS ENUM ('x', 'x ');
        CREATE TABLE a (id int PRIMARY KEY, x int[], u uuid[], t text[], n numeric[], tt timetz, r real, m mood,
                        int2 int2, gen int GENERATED ALWAYS AS (int2 * 2) STORED);
        INSERT INTO a (id, x, u, t, n, tt, r, m, int2) VALUES
          (1, '{{1,2},{3,NULL}}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}', '{{"a b","c\\"d"},{NULL,"NULL"}}', '{1.50,NaN}',
           '23:59:59.999999+14:59', 3.4028235e38, 'x ', 2),
          (2, '[0:1]={5,6}', '{}', '{plain}', NULL, '12:00-02:30', -3.4028235e38, 'x', NULL);
    """)
    target = databases.new("from_pg_arrays", create=False)
    result = service.restore_backup(path, url_for(target), allow_lossy=True)
    report = {m.column: m for m in result.fidelity}
    assert report["m"].target_type == "VARCHAR(2)" and report["m"].fidelity == "approximated" and "trailing spaces" in report["m"].note
    assert "nested" in report["x"].note and "null" in report["x"].note
    assert "offset is dropped" in report["tt"].note
    assert "generated column public.a.gen (postgresql expression not translated)" in result.skipped
    assert not [line for line in result.skipped if "stored as NULL" in line], result.skipped
    with Inspector(target) as inspector:
        rows = inspector.rows("SELECT id, x, u, t, n, CAST(tt AS CHAR), r + 0E0, m FROM a ORDER BY id")
        columns = [name for (name,) in inspector.rows("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'a'", (target,))]
    assert [(i, orjson.loads(x), orjson.loads(u), orjson.loads(t), n and orjson.loads(n)) for i, x, u, t, n, *_ in rows] == [
        (1, [[1, 2], [3, None]], ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", None], [["a b", 'c"d'], [None, "NULL"]], [1.5, "NaN"]),
        (2, [5, 6], [], ["plain"], None),
    ]
    assert [row[5:] for row in rows] == [("23:59:59.999999", 3.4028234663852886e38, "x "), ("12:00:00.000000", -3.4028234663852886e38, "x")]
    assert "gen" not in columns


def test_column_names_that_differ_only_by_case_are_refused_before_anything_is_written(service, databases, tmp_path):
    path = _pg_backup(service, tmp_path, "pg_to_mysql_case", 'CREATE TABLE c (id int PRIMARY KEY, "A" int, a int); INSERT INTO c VALUES (1, 2, 3);')
    target = databases.new("case", create=False)
    with pytest.raises(UsageError, match="cannot move into mysql: public.c.a .*names ignore case: 'a' and 'A'"):
        service.restore_backup(path, url_for(target), allow_lossy=True)
    assert not database_exists(target)


def test_auto_increment_continues_after_the_sources_high_water_mark(service, databases, make_db, tmp_path):
    """Keys handed out once (rows deleted since) are not handed out again, as in the source."""
    sqlite = make_db("CREATE TABLE s (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);", inserts=[
        ("INSERT INTO s VALUES (?, ?)", [(n, "x") for n in range(1, 1501)]),
        ("DELETE FROM s WHERE id > ?", [(1495,)]),
    ])
    backups = [service.create_backup(str(sqlite), tmp_path / "sqlite").path]
    backups.append(_pg_backup(service, tmp_path / "pg", "pg_to_mysql_serial", """
        CREATE TABLE s (id serial PRIMARY KEY, v text);
        INSERT INTO s (v) SELECT 'x' FROM generate_series(1, 1500);
        DELETE FROM s WHERE id > 1495;
    """))
    for backup in backups:
        target = databases.new("high_water", create=False)
        service.restore_backup(backup, url_for(target), allow_lossy=True)
        with Inspector(target) as inspector:
            assert inspector.rows("SELECT MAX(id) FROM s")[0][0] == 1495
            inspector.rows("INSERT INTO s (v) VALUES ('new')")
            assert inspector.rows("SELECT LAST_INSERT_ID()")[0][0] == 1501, backup


def test_sqlite_fractions_in_integer_and_decimal_columns_are_never_rounded_quietly(service, databases, make_db, tmp_path):
    """MySQL rounds 1.7 into an INT and 1.239 into a DECIMAL(5,2) even in strict mode."""
    path = make_db("CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, b BOOLEAN, d DECIMAL(5,2));", inserts=[
        ("INSERT INTO t VALUES (?, ?, ?, ?)", [(1, 1.7, 0.5, 1.239), (2, 2.0**63, 1, "1.2345"), (3, 3.0, 0, 3.5)]),
    ])
    backup = service.create_backup(str(path), tmp_path).path
    target = databases.new("fractions", create=False)
    with pytest.raises(SourceError) as refused:
        service.restore_backup(backup, url_for(target))
    assert "1.7 is not a whole number" in refused.value.user_line() and "--allow-lossy" in refused.value.user_line()
    assert not database_exists(target)
    result = service.restore_backup(backup, url_for(target), allow_lossy=True)
    with Inspector(target) as inspector:
        assert inspector.rows("SELECT id, i, b, d FROM t ORDER BY id") == [(1, None, None, None), (2, None, 1, None), (3, 3, 0, decimal.Decimal("3.50"))]
    skipped = "\n".join(result.skipped)
    assert "2 values of t.i stored as NULL (the first: 1.7 is not a whole number)" in skipped
    assert "2 values of t.d stored as NULL (the first: 1.239 has more than 2 fractional digits (DECIMAL(5,2)))" in skipped


def test_decimals_are_judged_by_their_digits_not_by_28_digit_arithmetic():
    from unibackup.plugins.mysql.mapping import Unfit, value_converter

    column = ColumnSchema("n", "numeric", "decimal")
    wide = value_converter(column, "DECIMAL(65,30)", "postgresql", MARIADB)
    for exact in ("0.5000000000000000000000000000000", "0.1234567890123456789012345678900", "0E-30", "1E+2", "-99999999999999999999999999999999999.999999999999999999999999999999"):
        assert wide(decimal.Decimal(exact)) == decimal.Decimal(exact)
    narrow = value_converter(column, "DECIMAL(5,2)", "postgresql", MARIADB)
    for fits in ("3.000", "999.990", "-999.99", "0E+10"):
        assert narrow(decimal.Decimal(fits)) == decimal.Decimal(fits)
    for unfit in ("999.995", "1000", "0.001", "0.1234567890123456789012345678901"):
        with pytest.raises(Unfit):
            narrow(decimal.Decimal(unfit))


def test_a_descending_index_stays_descending(service, databases, make_db, tmp_path):
    path = make_db("CREATE TABLE r (id INTEGER PRIMARY KEY, book INTEGER, rating INTEGER); CREATE INDEX by_book ON r (book, rating DESC);")
    backup = service.create_backup(str(path), tmp_path).path
    target = databases.new("descending", create=False)
    service.restore_backup(backup, url_for(target))
    with Inspector(target) as inspector:
        (row,) = inspector.rows("SHOW CREATE TABLE r")
    assert "KEY `by_book` (`book`,`rating` DESC)" in row[1]
