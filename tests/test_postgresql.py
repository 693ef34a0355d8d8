"""PostgreSQL against a real server: sample databases and every type through backup → verify →
restore, compared by SQL on both sides; the snapshot under a concurrent writer; partitions."""

from __future__ import annotations

import datetime
import decimal
import threading
import time
import uuid
from pathlib import Path

import orjson
import pytest

from pg_support import (  # noqa: F401  (fixtures)
    Databases,
    admin_connect,
    assert_same_database,
    chinook,
    databases,
    iter_lines,
    make_service,
    pagila,
    pg_server,
    run_sql,
    table_fingerprints,
    url_for,
)
from unibackup.format import BackupReader
from unibackup.models import TableFooter
from unibackup.values import JsonText, decode_row

pytestmark = pytest.mark.postgres


def backup(database: str, directory: Path, **options) -> str:
    return make_service().create_backup(url_for(database), directory, **options).path


def restore(path: str, database: str, **options):
    return make_service().restore_backup(path, url_for(database), **options)


def rows_of(path: str) -> dict[str, list[list]]:
    """Every table's decoded rows, read straight from the file."""
    tables: dict[str, list[list]] = {}
    current = None
    for line in iter_lines(path):
        if line.startswith(b"{"):
            record = orjson.loads(line)
            if record.get("type") == "table":
                current = f"{record['namespace']}.{record['name']}"
                tables[current] = []
            continue
        if line.startswith(b"["):
            tables[current].append(decode_row(line))
    return tables


def header_of(path: str) -> dict:
    return orjson.loads(next(iter_lines(path)))


def comparable_schema(header: dict) -> dict:
    schema = header["schema"]
    tables = [{k: v for k, v in table.items() if k != "row_estimate"} for table in schema["tables"]]
    objects = sorted(schema["objects"], key=lambda o: (o["kind"], o["namespace"] or "", o["table"] or "", o["name"]))
    return {"tables": tables, "objects": objects}


@pytest.mark.parametrize("sample", ["pagila", "chinook"])
def test_sample_database_round_trip(sample: str, request: pytest.FixtureRequest, databases: Databases, tmp_path: Path) -> None:
    source = request.getfixturevalue(sample)
    path = backup(source, tmp_path)
    report = make_service().verify_backup(path, "full")
    assert report.valid, report.findings
    target = databases.adopt(f"{source}_restored")  # a database that does not exist: restore creates it
    result = restore(path, target)
    assert result.rows == report.rows > 0
    assert not result.skipped
    assert_same_database(source, target)
    # the restored database describes itself exactly as the original did
    again = backup(target, tmp_path / "again")
    assert comparable_schema(header_of(again)) == comparable_schema(header_of(path))


def test_pagila_schema_capture(pagila: str, tmp_path: Path) -> None:
    header = header_of(backup(pagila, tmp_path))
    schema = header["schema"]
    kinds = {}
    for obj in schema["objects"]:
        kinds.setdefault(obj["kind"], set()).add(obj["name"])
    assert {"mpaa_rating"} <= kinds["type"]
    assert {"year", "bıgınt"} <= kinds["domain"]
    assert "group_concat(text)" in kinds["aggregate"]
    assert "last_updated()" in kinds["function"]
    assert "rental_by_category" in kinds["materialized_view"]
    # object kinds are one word, as every engine writes them (MySQL: "foreign_key" too)
    assert "film_actor_film_id_fkey" in kinds["foreign_key"]
    assert all(" " not in kind for kind in kinds), sorted(kinds)
    assert all(obj["namespace"] is None for obj in schema["objects"] if obj["kind"] == "schema")
    assert "film_fulltext_trigger" in kinds["trigger"]
    assert "payment_p2022_01" in kinds["partition"]
    tables = {t["name"]: t for t in schema["tables"]}
    # a partitioned table's rows are read once, through the root; the partitions hold none
    assert tables["payment"]["kind"] == "partitioned" and tables["payment"]["has_data"]
    assert not tables["payment_p2022_01"]["has_data"]
    assert tables["payment_p2022_01"]["options"]["data_in"] == "public.payment"
    film = {c["name"]: c for c in tables["film"]["columns"]}
    assert film["rating"]["logical_type"] == "enum" and film["rating"]["options"]["labels"][0] == "G"
    assert film["special_features"]["logical_type"] == "array"
    assert film["release_year"]["options"]["domain"] == "public.year"
    assert film["rental_rate"]["logical_type"] == "decimal"
    assert film["rental_rate"]["options"] == {"precision": 4, "scale": 2}
    assert film["film_id"]["primary_key"] == 1
    sequences = {o["name"]: o for o in schema["objects"] if o["kind"] == "sequence"}
    (count,) = run_sql(pagila, "SELECT last_value FROM public.film_film_id_seq")[0]
    assert sequences["film_film_id_seq"]["options"]["last_value"] == count


def test_restore_subset_of_tables(pagila: str, databases: Databases, tmp_path: Path) -> None:
    path = backup(pagila, tmp_path)
    target = databases.new("subset")
    result = restore(path, target, tables=("actor", "film_actor"))
    assert result.rows == 200 + 5462
    assert any("film_actor_film_id_fkey" in s for s in result.skipped)  # it points at film, not restored
    fingerprints = table_fingerprints(target)
    assert fingerprints["public.actor"] == table_fingerprints(pagila)["public.actor"]


TYPES_SQL = r"""
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy ''quoted''');
CREATE DOMAIN positive AS numeric(10,2) CHECK (VALUE > 0);
CREATE TYPE pair AS (a integer, b text);
CREATE TABLE everything (
    id serial PRIMARY KEY,
    n numeric, n_scaled numeric(38,10), i2 smallint, i4 integer, i8 bigint,
    f4 real, f8 double precision, b boolean,
    t text, vc varchar(10), ch char(6), "Mixed ""Case"" col" text,
    by bytea, d date, ts timestamp, tstz timestamptz, tm time, tmtz timetz, iv interval,
    u uuid, j json, jb jsonb, ia integer[], ta text[], fa float8[],
    e mood, ea mood[], dom positive, inet_ inet, cidr_ cidr, mac macaddr, mac8 macaddr8,
    tsv tsvector, tsq tsquery, bits bit(5), vbits varbit, m money,
    r int4range, tr tstzrange, nr numrange, mr int4multirange,
    p point, x xml, comp pair, oid_ oid,
    g bigint GENERATED ALWAYS AS (i4::bigint * 2) STORED
);
CREATE TABLE ident (id bigint GENERATED ALWAYS AS IDENTITY (START WITH 100 INCREMENT BY 7), v text);
INSERT INTO ident (v) VALUES ('a'), ('b');
"""

TYPE_ROWS = [
    # edge values
    r"""(n, n_scaled, i2, i4, i8, f4, f8, b, t, vc, ch, "Mixed ""Case"" col", by, d, ts, tstz, tm, tmtz, iv, u, j, jb, ia, ta, fa,
        e, ea, dom, inet_, cidr_, mac, mac8, tsv, tsq, bits, vbits, m, r, tr, nr, mr, p, x, comp, oid_)
    VALUES ('NaN', 12345678901234567890.1234567890, -32768, 2147483647, -9223372036854775808,
        'NaN', 'Infinity', true, E'trailing  \n\ttab \\ "quote" ünï ☃ 😀', 'ten chars!', 'ab', 'x',
        E'\\x00ff10', 'infinity', '-infinity', 'infinity', '24:00:00', '23:59:59.999999-14:59', '-178000000 years',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1,   "a": [1, 2.50], "b": 3}', '{"b": 1, "a": [1, 2.50]}',
        '{{1,NULL},{3,4}}', '{"a,b","c\"d",NULL,"NULL",""}', '{NaN,Infinity,-0}',
        'happy ''quoted''', '{sad,ok}', 0.01, '2001:db8::1/64', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
        'a fat:2 cat:1,3', 'fat & !rat', B'10101', B'1', -92233720368547758.08, '[1,5)', '[2020-01-01 00:00+00,infinity)', '(,)',
        '{[1,3), [7,9)}', '(1.5,-2)', '<a x="1">text &amp; more</a>', '(1,"x, y")', 4294967295)""",
    # ordinary values
    """(n, n_scaled, i2, i4, i8, f4, f8, b, t, vc, ch, by, d, ts, tstz, tm, tmtz, iv, u, j, jb, ia, ta, fa, e, ea, dom, m, r)
    VALUES (-0.000000000000000000000000000001, -1.5, 0, 0, 9223372036854775807, '-0', '-0', false, '', '', 'abcdef', '',
        '2024-02-29', '2024-02-29 12:34:56.123456', '1999-12-31 23:59:59.999999+05:30', '00:00', '12:00+00',
        '1 year 2 mons 3 days 04:05:06.000001', '00000000-0000-0000-0000-000000000000', '[]', 'null', '{}', '{}', '{1e308,-1.5}',
        'sad', '{}', 12345678.99, 0, 'empty')""",
    # BC dates and years past 9999
    """(d, ts, tstz, f4, f8, ia, ta) VALUES ('4713-01-01 BC', '0001-01-01 00:00:00 BC', '10000-01-01 00:00+00', 3.4028235e38, 5e-324,
        '[0:2]={1,2,3}', '{{a,b},{c,NULL}}')""",
    "(n) VALUES (NULL)",
]


@pytest.fixture
def types_db(databases: Databases) -> str:
    name = databases.new("types")
    with admin_connect(name) as conn:
        conn.execute(TYPES_SQL)
        for row in TYPE_ROWS:
            conn.execute(f"INSERT INTO everything {row}")
    return name


def test_every_type_round_trips(types_db: str, databases: Databases, tmp_path: Path) -> None:
    path = backup(types_db, tmp_path)
    assert make_service().verify_backup(path, "full").valid
    target = databases.adopt(f"{types_db}_restored")
    restore(path, target)
    assert_same_database(types_db, target)
    # the text of json is kept to the byte; floats keep NaN, infinity and the sign of zero
    (j,) = run_sql(target, "SELECT j::text FROM everything WHERE n = 'NaN'")[0]
    assert j == '{"b": 1,   "a": [1, 2.50], "b": 3}'
    (f4, f8) = run_sql(target, "SELECT f4::text, f8::text FROM everything WHERE i2 = 0")[0]
    assert (f4, f8) == ("-0", "-0")
    (ch,) = run_sql(target, "SELECT ch || '|' FROM everything WHERE i2 = 0")[0]
    assert ch == "abcdef|"
    (ident_next,) = run_sql(target, "INSERT INTO ident (v) VALUES ('c') RETURNING id")[0]
    assert ident_next == 114


def test_values_are_tagged_for_other_readers(types_db: str, tmp_path: Path) -> None:
    """Portable values carry the generic tags; engine-specific ones are PostgreSQL's text."""
    rows = rows_of(backup(types_db, tmp_path))["public.everything"]
    header = header_of(next(tmp_path.glob("*.ubk.jsonl*")).as_posix())
    names = [c["name"] for c in header["schema"]["tables"][0]["columns"]]
    assert "g" not in names  # generated columns are rebuilt, never stored
    edge, ordinary, old, _ = (dict(zip(names, row)) for row in sorted(rows, key=lambda r: r[0]))
    assert edge["n"].is_nan() and isinstance(edge["n"], decimal.Decimal)
    assert edge["n_scaled"] == decimal.Decimal("12345678901234567890.1234567890")
    assert edge["i8"] == -(2**63) and ordinary["i8"] == 2**63 - 1
    assert edge["f4"] != edge["f4"] and edge["f8"] == float("inf")
    assert str(ordinary["f8"]) == "-0.0"
    assert edge["by"] == b"\x00\xff\x10" and ordinary["by"] == b""
    assert edge["t"] == 'trailing  \n\ttab \\ "quote" ünï ☃ 😀'
    assert edge["ch"] == "ab    "
    assert ordinary["d"] == datetime.date(2024, 2, 29)
    assert ordinary["ts"] == datetime.datetime(2024, 2, 29, 12, 34, 56, 123456)
    assert ordinary["tstz"] == datetime.datetime(1999, 12, 31, 18, 29, 59, 999999, tzinfo=datetime.timezone.utc)
    assert ordinary["tm"] == datetime.time(0, 0)
    assert edge["d"] == "infinity" and edge["ts"] == "-infinity" and edge["tm"] == "24:00:00"
    assert old["d"] == "4713-01-01 BC" and old["tstz"] == "10000-01-01 00:00:00+00"
    assert edge["u"] == uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    assert edge["j"] == JsonText('{"b": 1,   "a": [1, 2.50], "b": 3}')
    assert edge["ta"] == ["a,b", 'c"d', None, "NULL", ""]
    assert edge["ia"] == "{{1,NULL},{3,4}}"  # more than one dimension: the server's text
    # an empty array is an empty list for every reader, whatever its element type (not the text "{}")
    assert ordinary["ia"] == [] and ordinary["ta"] == [] and ordinary["ea"] == []
    assert edge["ea"] == "{sad,ok}"  # an enum element has no portable form: the server's text
    assert old["ia"] == "[0:2]={1,2,3}"
    assert edge["m"] == decimal.Decimal("-92233720368547758.08")
    assert edge["iv"] == "-178000000 years" and edge["r"] == "[1,5)" and edge["e"] == "happy 'quoted'"


def test_snapshot_is_one_point_in_time(databases: Databases) -> None:
    """A write committed between reading two tables is in neither: both come from one snapshot."""
    from unibackup.plugins.postgresql import PostgreSQLSource
    from unibackup.locations import parse_location

    name = databases.new("snapshot")
    run_sql(name, "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); INSERT INTO a VALUES (1); INSERT INTO b VALUES (1)")

    class Sizer:
        def next_batch_size(self) -> int:
            return 100

    source = PostgreSQLSource(parse_location(url_for(name)), {})
    source.open_snapshot()
    try:
        schema = source.describe()
        tables = {t.name: t for t in schema.tables}
        first = list(source.read_batches(tables["a"], Sizer()))
        run_sql(name, "INSERT INTO a VALUES (2); INSERT INTO b VALUES (2)")  # autocommit: committed now
        second = list(source.read_batches(tables["b"], Sizer()))
    finally:
        source.close()

    def lines(batches) -> list[bytes]:
        data = b"".join(bytes(batch.data) if hasattr(batch, "data") else b"".join(l + b"\n" for l in batch) for batch in batches)
        return data.splitlines()

    assert lines(first) == [b"[1]"] and lines(second) == [b"[1]"]


def test_concurrent_writer_is_all_or_nothing(databases: Databases, tmp_path: Path) -> None:
    """Transactions that each write one row into three tables, committed during the backup."""
    name = databases.new("writer")
    run_sql(
        name,
        "CREATE TABLE a (id int PRIMARY KEY, pad text); CREATE TABLE b (id int PRIMARY KEY, pad text); CREATE TABLE c (id int PRIMARY KEY, pad text);"
        "INSERT INTO a SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g;"
        "INSERT INTO b SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g;"
        "INSERT INTO c SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g;",
    )
    stop = threading.Event()
    committed = []

    def writer() -> None:
        with admin_connect(name) as conn:
            next_id = 3001
            while not stop.is_set():
                with conn.transaction():
                    for table in ("c", "b", "a"):  # the reverse of the backup's order
                        conn.execute(f"INSERT INTO {table} VALUES (%s, 'new')", (next_id,))
                committed.append(next_id)
                next_id += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(committed) < 5:
            time.sleep(0.01)
        service = make_service(batching={"batch_rows": 50, "delay": 0.002})
        path = service.create_backup(url_for(name), tmp_path, batching="fixed").path
        time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    ids = {table: {row[0] for row in rows} for table, rows in rows_of(path).items()}
    assert ids["public.a"] == ids["public.b"] == ids["public.c"]
    assert len(ids["public.a"]) > 3000  # some of the writer's rows are in
    assert max(committed) not in ids["public.a"]  # and the writer went on after the snapshot


def test_schema_parameter_limits_the_backup(databases: Databases, tmp_path: Path) -> None:
    name = databases.new("schemas")
    run_sql(name, "CREATE SCHEMA app; CREATE TABLE app.t (id int); CREATE TABLE public.other (id int); INSERT INTO app.t VALUES (1)")
    path = make_service().create_backup(url_for(name, query="schema=app"), tmp_path).path
    header = header_of(path)
    assert [t["namespace"] + "." + t["name"] for t in header["schema"]["tables"]] == ["app.t"]
    assert "schema=app" in header["source"]["identity"]
    target = databases.new("schemas_restored")
    restore(path, target)
    assert table_fingerprints(target) == {"app.t": table_fingerprints(name)["app.t"]}


def test_populated_materialized_view_is_refreshed(databases: Databases, tmp_path: Path) -> None:
    name = databases.new("matview")
    run_sql(
        name,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10);"
        "CREATE MATERIALIZED VIEW full_mv AS SELECT count(*) AS n FROM t;"
        "CREATE MATERIALIZED VIEW empty_mv AS SELECT id FROM t WITH NO DATA;"
        "CREATE UNIQUE INDEX ON full_mv (n);"
        "CREATE TABLE parent (id int, v text); CREATE TABLE child (extra int) INHERITS (parent);"
        "INSERT INTO parent VALUES (1, 'p'); INSERT INTO child VALUES (2, 'c', 3);",
    )
    path = backup(name, tmp_path)
    target = databases.new("matview_restored")
    restore(path, target)
    assert run_sql(target, "SELECT n FROM full_mv") == [(10,)]
    assert run_sql(target, "SELECT relispopulated FROM pg_class WHERE relname = 'empty_mv'") == [(False,)]
    # inheritance: the parent's own rows and the child's rows, each once
    assert sorted(run_sql(target, "SELECT id, v FROM parent")) == [(1, "p"), (2, "c")]
    assert_same_database(name, target)


def test_table_counts_match_footers(pagila: str, tmp_path: Path) -> None:
    """Each footer's count is the table's count on the server (partitions counted once)."""
    path = backup(pagila, tmp_path)
    service = make_service()
    with service.open_backup(path) as opened:
        footers = {f"{r.namespace}.{r.name}": r.rows for r in BackupReader(opened.splitter) if isinstance(r, TableFooter)}
    expected = {name: count for name, (count, _) in table_fingerprints(pagila).items() if not name.endswith("rental_by_category")}
    expected["public.payment"] = run_sql(pagila, "SELECT count(*) FROM public.payment")[0][0]
    for name in list(expected):
        if name.startswith("public.payment_p"):
            expected[name] = 0
    assert footers == expected


def test_tables_without_columns_restore_with_their_rows(databases: Databases, tmp_path: Path) -> None:
    source = databases.new("nocols")
    run_sql(source, """
        CREATE TABLE nocols ();
        INSERT INTO nocols DEFAULT VALUES; INSERT INTO nocols DEFAULT VALUES;
        CREATE TABLE only_generated (g int GENERATED ALWAYS AS (7) STORED);
        INSERT INTO only_generated DEFAULT VALUES; INSERT INTO only_generated DEFAULT VALUES; INSERT INTO only_generated DEFAULT VALUES;
    """)
    path = backup(source, tmp_path)
    target = databases.new("nocols_restored", create=False)
    make_service().restore_backup(path, url_for(target))
    assert run_sql(target, "SELECT count(*) FROM nocols") == [(2,)]
    assert run_sql(target, "SELECT g, count(*) FROM only_generated GROUP BY g") == [(7, 3)]
    assert_same_database(source, target)


def test_range_constructors_come_with_their_type(databases: Databases, tmp_path: Path) -> None:
    source = databases.new("ranges")
    run_sql(source, """
        CREATE TYPE floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);
        CREATE FUNCTION own(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
        CREATE TABLE r (v floatrange, m floatmultirange);
        INSERT INTO r VALUES (floatrange(1.5, 2.5), floatmultirange(floatrange(1, 2), floatrange(3, 4)));
    """)
    path = backup(source, tmp_path)
    functions = [o.name for o in make_service().inspect_backup(path).header.schema.objects if o.kind == "function"]
    assert functions == ["own(x integer)"]  # the constructors belong to the type
    target = databases.new("ranges_restored", create=False)
    make_service().restore_backup(path, url_for(target))
    assert_same_database(source, target)
    # recreated by CREATE TYPE, so still the type's own (dropped with it)
    internal = run_sql(target, "SELECT count(*) FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid "
                               "WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'i' AND p.proname IN ('floatrange', 'floatmultirange')")
    assert internal == [(5,)]


def test_estimate_counts_tables_never_analyzed_and_restore_analyzes(databases: Databases, tmp_path: Path) -> None:
    source = databases.new("estimate")
    run_sql(source, """
        CREATE TABLE analyzed (id int); INSERT INTO analyzed SELECT generate_series(1, 1000); ANALYZE analyzed;
        CREATE TABLE fresh (id int, x text) WITH (autovacuum_enabled = false);
        INSERT INTO fresh SELECT g, repeat('x', 20) FROM generate_series(1, 9023) g;
        CREATE TABLE parted (id int) PARTITION BY RANGE (id);
        CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100) WITH (autovacuum_enabled = false);
        INSERT INTO parted SELECT generate_series(0, 49);
    """)
    assert run_sql(source, "SELECT reltuples FROM pg_class WHERE relname = 'fresh'") == [(-1.0,)]
    estimate = make_service().estimate(url_for(source))
    assert estimate.per_table["public.fresh"] == 9023
    assert estimate.per_table["public.parted"] == 50
    assert estimate.rows == 1000 + 9023 + 50
    path = backup(source, tmp_path)
    target = databases.new("estimate_restored", create=False)
    make_service().restore_backup(path, url_for(target))
    assert dict(run_sql(target, "SELECT relname, reltuples FROM pg_class WHERE relname IN ('analyzed', 'fresh', 'parted_1')")) == {
        "analyzed": 1000.0, "fresh": 9023.0, "parted_1": 50.0,
    }
    assert make_service().estimate(url_for(target)).rows == 1000 + 9023 + 50


def test_sql_ascii_text_that_is_not_utf8_round_trips(databases: Databases, tmp_path: Path) -> None:
    source = databases.new("ascii", create=False)
    with admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{source}" ENCODING \'SQL_ASCII\' TEMPLATE template0 LC_COLLATE \'C\' LC_CTYPE \'C\'')
    raw = "convert_from(%s::bytea, 'SQL_ASCII')"
    run_sql(source, "CREATE TABLE t (id int, v text, c varchar(10), a text[], plain text[])")
    run_sql(source, f"INSERT INTO t VALUES (1, {raw}, {raw}, ARRAY[{raw}, 'ok'], ARRAY['x', 'y'])",
            (b"\x63\x61\xfe\x99\x20\xe9", b"\xff", b"\x80"))
    run_sql(source, f"INSERT INTO t VALUES (2, {raw}, 'plain', NULL, NULL)", ("café".encode(),))
    path = backup(source, tmp_path)
    lines = [orjson.loads(line) for line in iter_lines(path) if line.startswith(b"[")]
    assert lines[0][1] == {"$text": "Y2H+mSDp"}  # the exact bytes, tagged as text that is not UTF-8
    assert lines[0][4] == {"$array": ["x", "y"]}
    assert lines[1][1] == "café"
    assert make_service().verify_backup(path, "full").valid
    target = databases.new("ascii_restored", create=False)
    make_service().restore_backup(path, url_for(target))
    assert run_sql(target, "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()") == [(b"SQL_ASCII",)]  # psycopg gives SQL_ASCII text as bytes
    query = "SELECT id, v::bytea, c::bytea, a::text::bytea, plain FROM t ORDER BY id"
    assert run_sql(target, query) == run_sql(source, query)
