"""Every MySQL/MariaDB type of issue 4, with edge values, through backup -> restore on the same engine."""

from __future__ import annotations

import base64
import datetime
import decimal

import orjson
import pytest
import zstandard

from unibackup.errors import SourceError

from mysql_support import Inspector, connect, database_exists, databases, quote, url_for

pytestmark = pytest.mark.mysql
__all__ = ["databases"]  # fixture

COLUMNS = """
    id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    d65 DECIMAL(65,30), dsmall DECIMAL(5,2) UNSIGNED,
    ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
    i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED, bz INT(5) UNSIGNED ZEROFILL,
    f FLOAT, dbl DOUBLE,
    dt6 DATETIME(6), dt0 DATETIME, ts6 TIMESTAMP(6) NULL DEFAULT NULL, ts0 TIMESTAMP NULL DEFAULT NULL, d DATE,
    tm6 TIME(6), tm0 TIME, y YEAR,
    b1 BIT(1), b12 BIT(12), b64 BIT(64),
    e ENUM('small', 'médium', 'large ☃'), s SET('a', 'b', 'é'),
    j JSON,
    c CHAR(10), vc VARCHAR(100), tx TEXT, mt MEDIUMTEXT, lt LONGTEXT, l1 VARCHAR(20) CHARACTER SET latin1,
    bn BINARY(4), vb VARBINARY(16), bl BLOB, lb LONGBLOB
"""

TEXT = "emoji 😀 🐘, accents é ü ñ, CJK 中文, a 'quote', a \\ backslash, a\nnewline, a \t tab, a NUL \x00 byte, trailing spaces   "
BIG_BLOB = bytes(range(256)) * 400

ROWS = [
    {  # the largest values
        "d65": "99999999999999999999999999999999999.999999999999999999999999999999", "dsmall": "999.99",
        "ti": 127, "tiu": 255, "si": 32767, "siu": 65535, "mi": 8388607, "miu": 16777215,
        "i": 2147483647, "iu": 4294967295, "bi": 9223372036854775807, "biu": 18446744073709551615, "bz": 42,
        "f": 3.4028234663852886e38, "dbl": 1.7976931348623157e308,
        "dt6": "9999-12-31 23:59:59.999999", "dt0": "9999-12-31 23:59:59", "ts6": "2038-01-19 03:14:07.999999", "ts0": "2038-01-19 03:14:07",
        "d": "9999-12-31", "tm6": "838:59:59.000000", "tm0": "838:59:59", "y": 2155,
        "b1": 1, "b12": 4095, "b64": 18446744073709551615,
        "e": "large ☃", "s": "a,b,é", "j": '{"b": 1,  "a": [1, 2.50, "x"], "a": 3}',
        "c": "abcdefghij", "vc": "trailing  ", "tx": TEXT, "mt": TEXT * 10, "lt": TEXT * 100, "l1": "café ÿ",
        "bn": b"\x00\xff\x00\x01", "vb": b"\xff" * 16, "bl": bytes(range(256)), "lb": BIG_BLOB,
    },
    {  # the smallest values, zero dates and empty strings
        "d65": "-99999999999999999999999999999999999.999999999999999999999999999999", "dsmall": "0.00",
        "ti": -128, "tiu": 0, "si": -32768, "siu": 0, "mi": -8388608, "miu": 0,
        "i": -2147483648, "iu": 0, "bi": -9223372036854775808, "biu": 0, "bz": 0,
        "f": -1.1754943508222875e-38, "dbl": -2.2250738585072014e-308,
        "dt6": "0000-00-00 00:00:00.000000", "dt0": "0000-00-00 00:00:00", "ts6": "0000-00-00 00:00:00", "ts0": "1970-01-01 00:00:01",
        "d": "0000-00-00", "tm6": "-838:59:59.000000", "tm0": "-838:59:59", "y": 0,
        "b1": 0, "b12": 0, "b64": 0,
        "e": "médium", "s": "", "j": "[]",
        "c": "", "vc": "", "tx": "", "mt": "", "lt": "", "l1": "",
        "bn": b"\x00\x00\x00\x00", "vb": b"", "bl": b"", "lb": b"",
    },
    {  # values that need every digit
        "d65": "0.000000000000000000000000000001", "dsmall": "0.01",
        "ti": 0, "tiu": 1, "si": -1, "siu": 1, "mi": 1, "miu": 1, "i": -1, "iu": 1, "bi": -1, "biu": 9223372036854775808, "bz": 99999,
        "f": 1.0000001192092896, "dbl": 0.30000000000000004,
        "dt6": "2020-02-29 12:34:56.123456", "dt0": "2020-00-15 00:00:00", "ts6": "2020-06-15 10:20:30.000001", "ts0": "2000-01-01 00:00:00",
        "d": "2020-00-15", "tm6": "-00:00:00.000001", "tm0": "24:00:00", "y": 1901,
        "b1": 1, "b12": 2730, "b64": 9223372036854775808,
        "e": "small", "s": "é", "j": '{"nested":{"k":[true,false,null]},"big":1e400,"u":"\\u00e9😀"}',
        "c": "a", "vc": "😀" * 25, "tx": "x", "mt": "y", "lt": "z", "l1": "x",
        "bn": b"abcd", "vb": b"\x00", "bl": b"\x00", "lb": b"\x00\x01",
    },
    {},  # every column NULL
]


def _create(database: str) -> None:
    conn = connect(database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = ''")  # zero dates and zero-in-date dates need it
            cursor.execute(f"CREATE TABLE `types` ({COLUMNS}) DEFAULT CHARSET=utf8mb4")
            for row in ROWS:
                names = list(row)
                if names:
                    cursor.execute(
                        f"INSERT INTO `types` ({', '.join(quote(n) for n in names)}) VALUES ({', '.join(['%s'] * len(names))})",
                        [row[n] for n in names],
                    )
                else:
                    cursor.execute("INSERT INTO `types` () VALUES ()")
            cursor.execute("ALTER TABLE `types` AUTO_INCREMENT = 1000")
    finally:
        conn.close()


def exact_rows(database: str) -> list[tuple]:
    """Every value as Python sees it: floats widened to double, bits as integers, ordered by id."""
    with Inspector(database) as inspector:
        columns = inspector.stored_columns("types")
        expressions = []
        for name, data_type in columns:
            if data_type in ("float", "double"):
                expressions.append(f"{quote(name)} + 0E0")
            elif data_type == "bit":
                expressions.append(f"CAST({quote(name)} AS UNSIGNED)")
            else:
                expressions.append(f"CAST({quote(name)} AS BINARY)")
        return inspector.rows(f"SELECT {', '.join(expressions)} FROM `types` ORDER BY id")


def backup_rows(path: str, table: str) -> list[list]:
    """The row lines of ``table`` in a zstd backup, as plain JSON."""
    with open(path, "rb") as handle:
        data = zstandard.ZstdDecompressor().stream_reader(handle).read()
    rows, inside = [], False
    for line in data.splitlines():
        if line.startswith(b"{"):
            record = orjson.loads(line)
            inside = record.get("type") == "table" and record.get("name") == table
            continue
        if inside:
            rows.append(orjson.loads(line))
    return rows


def test_every_type_round_trips_exactly(service, databases, tmp_path):
    source = databases.new("types")
    _create(source)
    result = service.create_backup(url_for(source), tmp_path)
    assert service.verify_backup(result.path, "full").valid

    target = databases.new("types_copy", create=False)
    service.restore_backup(result.path, url_for(target))

    assert exact_rows(target) == exact_rows(source)
    with Inspector(source) as left, Inspector(target) as right:
        assert right.data() == left.data()
        assert right.auto_increments() == left.auto_increments() == {"types": 1000}
        assert right.objects() == left.objects()


def test_values_are_encoded_without_loss(service, databases, tmp_path):
    source = databases.new("types_enc")
    _create(source)
    result = service.create_backup(url_for(source), tmp_path)
    table = next(t for t in service.inspect_backup(result.path).header.schema.tables if t.name == "types")
    names = [column.name for column in table.columns]
    rows = [dict(zip(names, row)) for row in backup_rows(result.path, "types")]
    big, small, fine, empty = rows

    assert big["biu"] == 18446744073709551615 and type(big["biu"]) is int  # a plain JSON integer
    assert big["bi"] == 9223372036854775807 and small["bi"] == -9223372036854775808
    assert big["d65"] == {"$decimal": ROWS[0]["d65"]}
    tiny = decimal.Decimal(fine["d65"]["$decimal"])
    assert tiny == decimal.Decimal("1E-30") and tiny.as_tuple().exponent == -30  # the scale is kept
    assert fine["f"] == 1.0000001192092896  # FLOAT read as DOUBLE: all of its digits
    assert fine["dbl"] == 0.30000000000000004
    assert big["dt6"] == {"$datetime": "9999-12-31T23:59:59.999999"}
    assert big["ts6"] == {"$datetime": "2038-01-19T03:14:07.999999+00:00"}  # an instant, in UTC
    assert small["dt6"] == "0000-00-00 00:00:00.000000"  # zero dates: MySQL's own text
    assert small["d"] == "0000-00-00" and fine["d"] == "2020-00-15"
    assert big["tm6"] == {"$timedelta": [34, 82799, 0]}  # 838:59:59
    assert small["tm6"] == {"$timedelta": [-35, 3601, 0]}  # -838:59:59
    assert fine["tm6"] == {"$timedelta": [-1, 86399, 999999]}  # -00:00:00.000001
    assert big["y"] == 2155 and small["y"] == 0
    assert big["b12"] == 4095 and big["b64"] == 18446744073709551615 and fine["b12"] == 2730
    assert big["s"] == "a,b,é" and big["e"] == "large ☃"
    assert big["j"] == {"$json": ROWS[0]["j"]}  # the exact text: spacing, key order, duplicate keys
    assert fine["j"] == {"$json": ROWS[2]["j"]}
    assert big["tx"] == TEXT and fine["vc"] == "😀" * 25 and big["vc"] == "trailing  "
    assert big["l1"] == "café ÿ"
    assert big["bl"] == {"$bytes": base64.b64encode(bytes(range(256))).decode()}
    assert all(value is None for key, value in empty.items() if key != "id")
    column_types = {column.name: column for column in table.columns}
    assert column_types["ts6"].logical_type == "datetime_tz"
    assert column_types["tm6"].logical_type == "interval"
    assert column_types["j"].logical_type == "json" and column_types["j"].declared_type == "json"
    assert column_types["e"].options["labels"] == ["small", "médium", "large ☃"]
    assert column_types["biu"].options["unsigned"] is True
    assert column_types["d65"].options["precision"] == 65 and column_types["d65"].options["scale"] == 30


def test_timestamps_are_instants_whatever_the_session_time_zone(service, databases, tmp_path):
    source = databases.new("tz")
    conn = connect(source)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE t (id INT PRIMARY KEY, ts TIMESTAMP(6) NULL, dt DATETIME(6))")
        cursor.execute("SET SESSION time_zone = '+05:30'")
        cursor.execute("INSERT INTO t VALUES (1, '2021-03-04 05:36:07.5', '2021-03-04 05:36:07.5')")
    conn.close()
    result = service.create_backup(url_for(source), tmp_path)
    assert backup_rows(result.path, "t") == [[1, {"$datetime": "2021-03-04T00:06:07.500000+00:00"}, {"$datetime": "2021-03-04T05:36:07.500000"}]]
    target = databases.new("tz_copy", create=False)
    service.restore_backup(result.path, url_for(target))
    for database in (source, target):
        conn = connect(database)
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION time_zone = '+05:30'")
            cursor.execute("SELECT ts, dt FROM t")
            assert cursor.fetchall() == ((datetime.datetime(2021, 3, 4, 5, 36, 7, 500000), datetime.datetime(2021, 3, 4, 5, 36, 7, 500000)),)
        conn.close()


def test_decimal_values_keep_their_scale(service, databases, tmp_path):
    source = databases.new("dec")
    conn = connect(source)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE t (id INT PRIMARY KEY, v DECIMAL(65,30))")
        cursor.execute("INSERT INTO t VALUES (1, '0.000000123456789012345678901234'), (2, '-0.000000000000000000000000000001'), (3, 0)")
    conn.close()
    result = service.create_backup(url_for(source), tmp_path)
    target = databases.new("dec_copy", create=False)
    service.restore_backup(result.path, url_for(target))
    with Inspector(target) as inspector:
        values = [row[0] for row in inspector.rows("SELECT v FROM t ORDER BY id")]
    assert values == [decimal.Decimal("0.000000123456789012345678901234"), decimal.Decimal("-0.000000000000000000000000000001"), decimal.Decimal("0E-30")]


def test_spatial_uuid_inet6_and_invisible_columns(service, databases, tmp_path):
    source = databases.new("mariadb_types")
    with Inspector(source) as inspector:
        version = inspector.rows("SELECT VERSION()")[0][0].lower()
        if "mariadb" not in version:
            pytest.skip("UUID and INET6 are MariaDB types")
        inspector.rows(
            "CREATE TABLE g (id INT PRIMARY KEY, p POINT, g GEOMETRY, u UUID, i6 INET6, v VARCHAR(10) INVISIBLE DEFAULT 'd')"
        )
        inspector.rows(
            "INSERT INTO g (id, p, g, u, i6, v) VALUES (1, ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))', 4326),"
            " '123e4567-e89b-12d3-a456-426614174000', '2001:db8::1', 'hidden'), (2, NULL, NULL, NULL, NULL, NULL)"
        )
    result = service.create_backup(url_for(source), tmp_path)
    table = service.inspect_backup(result.path).header.schema.table("g")
    assert {c.name: c.logical_type for c in table.columns} == {"id": "integer", "p": "other", "g": "other", "u": "uuid", "i6": "other", "v": "text"}
    target = databases.new("mariadb_types_copy", create=False)
    service.restore_backup(result.path, url_for(target))
    query = "SELECT id, ST_AsText(p), ST_AsText(g), ST_SRID(g), u, i6, v FROM g ORDER BY id"
    with Inspector(source) as left, Inspector(target) as right:
        assert right.rows(query) == left.rows(query)
        assert right.objects() == left.objects()


def test_time_and_the_largest_unsigned_integer_as_documented(service, databases, tmp_path):
    """TIME is a $timedelta (negative and beyond 24 hours too), BIGINT UNSIGNED max a plain JSON integer."""
    source = databases.new("time_unsigned")
    conn = connect(source)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE t (id INT PRIMARY KEY, tm TIME, tm6 TIME(6), u BIGINT UNSIGNED)")
        cursor.execute("INSERT INTO t VALUES (1, '-25:00:01', '100:00:00.5', 18446744073709551615)")
    conn.close()
    result = service.create_backup(url_for(source), tmp_path)
    with open(result.path, "rb") as handle:
        data = zstandard.ZstdDecompressor().stream_reader(handle).read()
    assert b'[1,{"$timedelta":[-2,82799,0]},{"$timedelta":[4,14400,500000]},18446744073709551615]' in data.splitlines()
    assert backup_rows(result.path, "t") == [[1, {"$timedelta": [-2, 82799, 0]}, {"$timedelta": [4, 14400, 500000]}, 18446744073709551615]]


def test_the_enum_error_value_comes_back(service, databases, tmp_path):
    """A non-strict server stores '' (index 0) for a value that is no label; strict mode refuses
    to write it back, so such rows go in under a non-strict mode whose warnings are checked."""
    source = databases.new("enum0")
    conn = connect(source)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = ''")
            cursor.execute("CREATE TABLE e (id INT PRIMARY KEY, e ENUM('a', 'x''y'), n ENUM('b') NOT NULL, v VARCHAR(3))")
            cursor.execute("INSERT INTO e VALUES (1, 'x''y', 'b', 'abc'), (2, 'bogus', 'nope', 'def'), (3, NULL, 'b', NULL)")
    finally:
        conn.close()
    backup = service.create_backup(url_for(source), tmp_path).path
    target = databases.new("enum0_copy", create=False)
    service.restore_backup(backup, url_for(target))
    query = "SELECT id, e, e + 0, n, n + 0, v FROM e ORDER BY id"
    with Inspector(source) as left, Inspector(target) as right:
        assert right.rows(query) == left.rows(query)
        assert right.rows(query)[1] == (2, "", 0, "", 0, "def")


def test_a_long_blob_fits_the_servers_packet(service, databases, tmp_path):
    """PyMySQL writes binary values in hex (twice their size): a 10 MiB value did not fit a 16 MiB packet."""
    source = databases.new("big_blob")
    with Inspector(source) as inspector:
        packet = inspector.rows("SELECT @@max_allowed_packet")[0][0]
        size = min(10 * 1024 * 1024, packet * 2 // 3)
        inspector.rows("CREATE TABLE b (id INT PRIMARY KEY, v LONGBLOB)")
        # made by the server: the test's own (hex) statement would not fit either; zeros, quotes and backslashes
        inspector.rows("INSERT INTO b SELECT 1, REPEAT(UNHEX('00FF275C0A41'), %s)", (size // 6,))
        inspector.rows("INSERT INTO b VALUES (2, 'small')")
    backup = service.create_backup(url_for(source), tmp_path).path
    target = databases.new("big_blob_copy", create=False)
    service.restore_backup(backup, url_for(target))
    query = "SELECT id, LENGTH(v), MD5(v) FROM b ORDER BY id"
    with Inspector(source) as left, Inspector(target) as right:
        assert right.rows(query) == left.rows(query)
        assert right.rows(query)[0][1] >= packet // 2


def test_the_enum_error_value_never_lets_another_value_be_truncated(service, databases, tmp_path):
    """The row with '' goes in under a non-strict mode: any other warning stops the restore."""
    import attrs

    from unibackup.format import BackupWriter
    from unibackup.values import encode_batch

    source = databases.new("enum0_guard")
    with Inspector(source) as inspector:
        inspector.rows("CREATE TABLE e (e ENUM('a'), v VARCHAR(5))")
    header = service.inspect_backup(service.create_backup(url_for(source), tmp_path).path).header
    table = header.schema.tables[0]
    narrow = attrs.evolve(table, create_sql=table.create_sql.replace("varchar(5)", "varchar(2)"))  # a value it would truncate
    assert narrow.create_sql != table.create_sql
    path = tmp_path / "crafted.ubk.jsonl"
    with open(path, "wb") as handle:
        writer = BackupWriter(handle)
        writer.write_header(attrs.evolve(header, schema=attrs.evolve(header.schema, tables=(narrow,))))
        writer.begin_table(narrow)
        writer.write_rows(encode_batch([["", "hello"]]))
        writer.end_table()
        writer.write_trailer()
    target = databases.new("enum0_guard_copy", create=False)
    with pytest.raises(SourceError, match="writing table 'e': Data truncated for column 'v'"):
        service.restore_backup(str(path), url_for(target))
    assert not database_exists(target)
