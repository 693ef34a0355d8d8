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
from unibackup.values import JsonText, RawText, encode_batch


def _write(path, schema, rows_per_table):
    """A backup of another engine holding ``schema``; ``rows_per_table`` in the order of its tables."""
    header = BackupHeader(
        created_at="2026-01-01T00:00:00Z",
        tool_version="test",
        source=SourceInfo(schema.engine, f"{schema.engine}://db.example/shop", "15"),
        options=BackupOptions(compression="none"),
        compressor=PluginRef("compressor", "none"),
        schema=schema,
    )
    with open(path, "wb") as sink:
        writer = BackupWriter(sink)
        writer.write_header(header)
        for table, rows in zip(schema.tables, rows_per_table, strict=True):
            writer.begin_table(table)
            writer.write_rows(encode_batch(rows))
            writer.end_table()
        writer.write_trailer()
    return path


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
        objects=(
            SchemaObject("index", "people_name", "CREATE INDEX people_name ON public.people USING btree (name)", table="people", namespace="public"),
            SchemaObject("index", "people_lower", "CREATE INDEX people_lower ON public.people USING btree (lower(name))", table="people", namespace="public"),
        ),
    )
    _write(path, schema, [rows])


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
    assert fidelity["price"] == "exact"  # numeric(10,2): a double holds every such number
    assert fidelity["tags"] == "approximated"
    assert fidelity["token"] == "exact"
    assert fidelity["photo"] == "exact"


def test_restores_values_with_allow_lossy(tmp_path):
    backup = tmp_path / "pg.ubk.jsonl"
    _foreign_backup(backup, ROWS)
    target = tmp_path / "out.db"
    result = BackupService().restore_backup(backup, str(target), allow_lossy=True)
    assert result.rows == 2
    assert any("people_lower" in skipped for skipped in result.skipped)  # an expression: not translated
    assert not any("people_name" in skipped for skipped in result.skipped)  # a plain column list: recreated
    conn = sqlite3.connect(target)
    assert conn.execute("SELECT sql FROM sqlite_master WHERE name = 'people_name'").fetchone() == ('CREATE INDEX "people_name" ON "people" ("name")',)
    row = conn.execute("SELECT id, price, active, born, seen, token, doc, tags, photo, name FROM people WHERE id = 1").fetchone()
    assert row == (
        1,
        0.99,
        1,
        "2020-02-29",
        "2021-05-01 12:30:15.123456+00:00",
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


def test_keys_indexes_and_literal_defaults_of_postgresql_are_recreated_and_the_rest_listed(tmp_path):
    authors = TableSchema(
        name="authors", namespace="public",
        columns=(ColumnSchema("id", "integer", "integer", nullable=False, primary_key=1), ColumnSchema("email", "text", "text")),
        create_sql='CREATE TABLE public.authors (id integer NOT NULL, email text, CONSTRAINT "email has @" CHECK ((email ~ \'@\'::text)))',
    )
    books = TableSchema(
        name="books", namespace="public",
        columns=(
            ColumnSchema("id", "integer", "integer", nullable=False, primary_key=1, default="nextval('books_id_seq'::regclass)"),
            ColumnSchema("author_id", "integer", "integer"),
            ColumnSchema("status", "text", "text", default="'new'::text"),
            ColumnSchema("stock", "integer", "integer", default="0"),
            ColumnSchema("added", "timestamp with time zone", "datetime_tz", default="now()"),
        ),
        generated_columns=(ColumnSchema("double_stock", "integer", "integer", options={"expression": "(stock * 2)"}),),
        create_sql="CREATE TABLE public.books (...)",
    )
    objects = (
        SchemaObject("constraint", "authors_pkey", "ALTER TABLE ONLY public.authors ADD CONSTRAINT authors_pkey PRIMARY KEY (id)", table="authors", namespace="public", options={"contype": "p"}),
        SchemaObject("constraint", "authors_email_key", "ALTER TABLE ONLY public.authors ADD CONSTRAINT authors_email_key UNIQUE (email)", table="authors", namespace="public", options={"contype": "u"}),
        SchemaObject("foreign_key", "books_author_fk", "ALTER TABLE ONLY public.books ADD CONSTRAINT books_author_fk FOREIGN KEY (author_id) REFERENCES public.authors(id) ON DELETE CASCADE NOT VALID", table="books", namespace="public", options={"contype": "f"}),
        SchemaObject("index", "books_by_status", 'CREATE INDEX books_by_status ON public.books USING btree (status DESC, "author_id")', table="books", namespace="public"),
        SchemaObject("index", "books_partial", "CREATE INDEX books_partial ON public.books USING btree (status) WHERE (stock > 0)", table="books", namespace="public"),
    )
    backup = _write(tmp_path / "pg.ubk.jsonl", DatabaseSchema("postgresql", (authors, books), objects), [
        [[1, "a@x"], [2, "b@x"]], [[1, 1, "old", 3, None]],
    ])
    target = tmp_path / "out.db"
    result = BackupService().restore_backup(backup, str(target), allow_lossy=True)
    conn = sqlite3.connect(target)
    sql = {name: text for name, text in conn.execute("SELECT name, sql FROM sqlite_master")}
    assert 'FOREIGN KEY ("author_id") REFERENCES "authors" ("id") ON DELETE CASCADE' in sql["books"]
    assert "\"status\" TEXT DEFAULT 'new'" in sql["books"] and '"stock" INTEGER DEFAULT 0' in sql["books"]
    assert sql["authors_email_key"] == 'CREATE UNIQUE INDEX "authors_email_key" ON "authors" ("email")'
    assert sql["books_by_status"] == 'CREATE INDEX "books_by_status" ON "books" ("status" DESC, "author_id")'
    conn.execute("INSERT INTO books (id, author_id) VALUES (2, 1)")
    assert conn.execute("SELECT status, stock FROM books WHERE id = 2").fetchone() == ("new", 0)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO authors VALUES (3, 'a@x')")
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    skipped = "\n".join(result.skipped)
    assert "default public.books.added (postgresql expression not translated: now())" in skipped
    assert "generated column public.books.double_stock (postgresql expression not translated)" in skipped
    assert "check public.authors.email has @ (postgresql expression not translated)" in skipped
    assert "index public.books_partial on books (postgresql SQL cannot run in SQLite)" in skipped
    assert "authors_pkey" not in skipped and "books_author_fk" not in skipped and "nextval" not in skipped


def test_arrays_in_postgresql_notation_become_json_arrays(tmp_path):
    table = TableSchema(
        name="a", namespace="public",
        columns=(
            ColumnSchema("matrix", "integer[]", "array", options={"element_type": "int4", "element_logical_type": "integer"}),
            ColumnSchema("ids", "uuid[]", "array", options={"element_type": "uuid", "element_logical_type": "uuid"}),
        ),
    )
    backup = _write(tmp_path / "pg.ubk.jsonl", DatabaseSchema("postgresql", (table,)), [
        [["{{1,2},{3,NULL}}", '[0:1]={00000000-0000-0000-0000-000000000001,"x y"}'], [["a"], None]],
    ])
    target = tmp_path / "out.db"
    BackupService().restore_backup(backup, str(target), allow_lossy=True)
    rows = sqlite3.connect(target).execute("SELECT matrix, ids, json_valid(matrix) FROM a ORDER BY rowid").fetchall()
    assert rows == [("[[1,2],[3,null]]", '["00000000-0000-0000-0000-000000000001","x y"]', 1), ('["a"]', None, 1)]


def test_text_that_is_not_utf8_lands_in_its_own_table_of_another_namespace(tmp_path):
    column = (ColumnSchema("a", "text", "text"),)
    tables = (TableSchema(name="t", namespace="public", columns=column), TableSchema(name="t", namespace="sales", columns=column))
    backup = _write(tmp_path / "pg.ubk.jsonl", DatabaseSchema("postgresql", tables), [[["pub"]], [["sales-ok"], [RawText(b"sales\xff")]]])
    target = tmp_path / "out.db"
    BackupService().restore_backup(backup, str(target))
    conn = sqlite3.connect(target)
    assert conn.execute('SELECT a FROM "t"').fetchall() == [("pub",)]
    assert conn.execute('SELECT CAST(a AS BLOB) FROM "sales.t" ORDER BY rowid').fetchall() == [(b"sales-ok",), (b"sales\xff",)]


@pytest.mark.parametrize("tables, refused", [
    ((TableSchema("T", (ColumnSchema("a", "text", "text"),), namespace="public"), TableSchema("t", (ColumnSchema("a", "text", "text"),), namespace="public")), "public.t.a"),
    ((TableSchema("t", (ColumnSchema("A", "text", "text"), ColumnSchema("a", "text", "text")), namespace="public"),), "public.t.a"),
])
def test_names_that_differ_only_by_case_are_refused_before_anything_is_written(tmp_path, tables, refused):
    backup = _write(tmp_path / "pg.ubk.jsonl", DatabaseSchema("postgresql", tables), [[] for _ in tables])
    target = tmp_path / "out.db"
    with pytest.raises(UsageError) as error:
        BackupService().restore_backup(backup, str(target), allow_lossy=True)
    assert f"cannot move into sqlite: {refused} " in error.value.user_line() and "SQLite ignores case in names" in error.value.user_line()
    assert not target.exists()


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_the_sources_high_water_mark_survives_into_sqlite(tmp_path, engine):
    """Keys handed out once (to rows deleted since, too) are never handed out again."""
    key = ColumnSchema("id", "integer", "integer", nullable=False, primary_key=1,
                       default="nextval('public.orders_id_seq'::regclass)" if engine == "postgresql" else None,
                       options={} if engine == "postgresql" else {"auto_increment": True})
    table = TableSchema("orders", (key, ColumnSchema("note", "text", "text")), namespace="public" if engine == "postgresql" else None,
                        options={} if engine == "postgresql" else {"auto_increment": 1501})
    objects = (
        SchemaObject("sequence", "orders_id_seq", None, namespace="public", options={"owned_by": ["public", "orders", "id"], "last_value": 1500, "is_called": True}),
    ) if engine == "postgresql" else ()
    backup = _write(tmp_path / "b.ubk.jsonl", DatabaseSchema(engine, (table,), objects), [[[1, "a"], [1495, "b"]]])
    target = tmp_path / "out.db"
    result = BackupService().restore_backup(backup, str(target), allow_lossy=True)
    assert not any("orders_id_seq" in skipped for skipped in result.skipped)  # it lives on in sqlite_sequence
    conn = sqlite3.connect(target)
    conn.execute("INSERT INTO orders (note) VALUES ('next')")
    assert conn.execute("SELECT id FROM orders WHERE note = 'next'").fetchone() == (1501,)


def test_a_partial_restore_lists_what_belongs_to_the_tables_left_out(tmp_path):
    column = (ColumnSchema("id", "integer", "integer", nullable=False, primary_key=1), ColumnSchema("a", "integer[]", "array", default="'{1,2}'::integer[]"))
    tables = (
        TableSchema("child", column, namespace="public"),
        TableSchema("child", column, namespace="Sch ema"),
        TableSchema("other", (ColumnSchema("id", "integer", "integer", primary_key=1), ColumnSchema("child_id", "integer", "integer")), namespace="Sch ema"),
    )
    objects = (
        SchemaObject("index", "public_child_a", "CREATE INDEX public_child_a ON public.child USING btree (a)", table="child", namespace="public"),
        SchemaObject("index", "schema_child_a", 'CREATE INDEX schema_child_a ON "Sch ema".child USING btree (a)', table="child", namespace="Sch ema"),
        SchemaObject("foreign_key", "other_child_fk", 'ALTER TABLE ONLY "Sch ema".other ADD CONSTRAINT other_child_fk FOREIGN KEY (child_id) REFERENCES public.child(id)',
                     table="other", namespace="Sch ema", options={"contype": "f"}),
    )
    backup = _write(tmp_path / "pg.ubk.jsonl", DatabaseSchema("postgresql", tables, objects), [[], [[1, "x"]], [[1, 1]]])
    target = tmp_path / "out.db"
    result = BackupService().restore_backup(backup, str(target), tables=("Sch ema.child", "Sch ema.other"), allow_lossy=True)
    skipped = "\n".join(result.skipped)
    assert "index public.public_child_a on child (its table was not restored)" in skipped
    assert "foreign key other_child_fk on Sch ema.other (it references a table that was not restored)" in skipped
    assert "schema_child_a" not in skipped  # recreated
    sql = dict(sqlite3.connect(target).execute("SELECT name, sql FROM sqlite_master"))
    assert "schema_child_a" in sql and "public_child_a" not in sql
    assert "DEFAULT" not in sql["Sch ema.child"]  # PostgreSQL's array notation is not the JSON the rows get


def test_nan_in_a_numeric_column_is_refused_or_null_and_listed(tmp_path):
    table = TableSchema("n", (ColumnSchema("id", "integer", "integer", primary_key=1), ColumnSchema("n", "numeric(5,2)", "decimal", options={"precision": 5, "scale": 2}),
                              ColumnSchema("f", "double precision", "float")), namespace="public")
    backup = _write(tmp_path / "pg.ubk.jsonl", DatabaseSchema("postgresql", (table,)), [
        [[1, decimal.Decimal("NaN"), float("nan")], [2, decimal.Decimal("1.25"), 1.5], [3, decimal.Decimal("NaN"), 2.5]],
    ])
    with pytest.raises(UsageError, match=r"public.n.n holds NaN, which SQLite cannot store"):
        BackupService().restore_backup(backup, str(tmp_path / "strict.db"))
    assert not (tmp_path / "strict.db").exists()
    result = BackupService().restore_backup(backup, str(tmp_path / "lossy.db"), allow_lossy=True)
    assert "2 values of public.n.n stored as NULL (NaN, which SQLite cannot store)" in result.skipped
    assert "1 value of public.n.f stored as NULL (NaN, which SQLite cannot store)" in result.skipped
    rows = sqlite3.connect(tmp_path / "lossy.db").execute("SELECT id, n, f FROM n ORDER BY id").fetchall()
    assert rows == [(1, None, None), (2, 1.25, 1.5), (3, None, 2.5)]


def test_a_counter_sqlite_cannot_keep_is_listed(tmp_path):
    unsigned = TableSchema("u", (ColumnSchema("id", "bigint unsigned", "integer", primary_key=1, options={"auto_increment": True, "unsigned": True}),),
                           options={"auto_increment": 18446744073709551614})
    beside = TableSchema("b", (ColumnSchema("k", "int", "integer", primary_key=1), ColumnSchema("n", "int", "integer", nullable=False, options={"auto_increment": True})),
                         options={"auto_increment": 8})
    huge = TableSchema("h", (ColumnSchema("id", "bigint", "integer", primary_key=1, options={"auto_increment": True}),), options={"auto_increment": 2**63 + 5})
    backup = _write(tmp_path / "my.ubk.jsonl", DatabaseSchema("mysql", (unsigned, beside, huge)), [[[18446744073709551613]], [[1, 7]], [[1]]])
    result = BackupService().restore_backup(backup, str(tmp_path / "out.db"), allow_lossy=True)
    skipped = "\n".join(result.skipped)
    assert "AUTO_INCREMENT of b.n (SQLite counts only a single INTEGER PRIMARY KEY" in skipped
    assert f"the counter of h.id ({2**63 + 4} handed out, beyond SQLite's 64-bit range)" in skipped
    conn = sqlite3.connect(tmp_path / "out.db")
    assert conn.execute("SELECT CAST(id AS TEXT) FROM u").fetchall() == [("18446744073709551613",)]


def test_a_descending_mysql_index_stays_descending(tmp_path):
    table = TableSchema("r", (ColumnSchema("id", "int", "integer", primary_key=1), ColumnSchema("book", "int", "integer"), ColumnSchema("rating", "int", "integer")))
    index = SchemaObject("index", "by_book", "CREATE INDEX `by_book` ON `r` (`book`, `rating` DESC)", table="r",
                         options={"inline": True, "unique": False, "columns": ["book", "rating"], "index_type": "BTREE"})
    backup = _write(tmp_path / "my.ubk.jsonl", DatabaseSchema("mysql", (table,), (index,)), [[]])
    BackupService().restore_backup(backup, str(tmp_path / "out.db"))
    sql = sqlite3.connect(tmp_path / "out.db").execute("SELECT sql FROM sqlite_master WHERE name = 'by_book'").fetchone()[0]
    assert sql == 'CREATE INDEX "by_book" ON "r" ("book", "rating" DESC)'


def test_a_unique_mysql_key_over_a_prefix_is_listed_not_weakened(tmp_path):
    table = TableSchema("p", (ColumnSchema("id", "int", "integer", primary_key=1), ColumnSchema("s", "varchar(20)", "text")))
    unique = SchemaObject("index", "s3", "CREATE UNIQUE INDEX `s3` ON `p` (`s`(3))", table="p",
                          options={"inline": True, "unique": True, "columns": ["s"], "index_type": "BTREE"})
    plain = SchemaObject("index", "s2", "CREATE INDEX `s2` ON `p` (`s`(2))", table="p",
                         options={"inline": True, "unique": False, "columns": ["s"], "index_type": "BTREE"})
    backup = _write(tmp_path / "my.ubk.jsonl", DatabaseSchema("mysql", (table,), (unique, plain)), [[]])
    result = BackupService().restore_backup(backup, str(tmp_path / "out.db"))
    assert "index s3 on p (unique over a prefix of the values: SQLite indexes whole values, and a whole-value UNIQUE is weaker)" in result.skipped
    names = {name for (name,) in sqlite3.connect(tmp_path / "out.db").execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "s2" in names and "s3" not in names  # a plain index over the whole value serves the same lookups
