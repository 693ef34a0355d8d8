"""Property tests: random tables and values of every storage class survive backup and restore,
and ``encode_row``/``decode_row`` give back any Python value they accept."""

from __future__ import annotations

import datetime
import decimal
import math
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings, strategies as st

from unibackup.config import Config
from unibackup.manager import get_plugin_manager
from unibackup.service import BackupService
from unibackup.values import JsonText, RawText, decode_row, encode_batch, encode_row

from sqlite_contents import assert_same_database

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_SERVICE = BackupService(Config(), get_plugin_manager(load_entrypoints=False))


@attrs.frozen
class AsText:
    """Bytes to store as TEXT with CAST(? AS TEXT): text that need not be valid UTF-8."""

    data: bytes


# -- random SQLite tables ------------------------------------------------------------------------

DECLARED_TYPES = ("", "INTEGER", "INT", "BIGINT", "TEXT", "VARCHAR(20)", "REAL", "DOUBLE", "FLOAT", "BLOB",
                  "NUMERIC", "DECIMAL(10,2)", "BOOLEAN", "DATETIME", "DATE", "JSON", "ANY", "whatever type")

names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12
).filter(lambda name: not name.lower().startswith("sqlite_"))

sql_values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([-(2**63), 2**63 - 1, 0, -1, 2**53 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308]),
    st.text(),
    st.text(alphabet="\x00{}[]\"\\null$", max_size=10),
    st.binary(max_size=64).map(AsText),
    st.binary(max_size=300),
    st.sampled_from([b"", bytes(70_000), b"\x00\xff" * 5000]),
)


@st.composite
def tables(draw) -> dict[str, Any]:
    column_names = draw(st.lists(names, min_size=1, max_size=5, unique_by=str.lower))
    table_name = draw(names)
    strict = draw(st.booleans())
    types = [("ANY" if strict else draw(st.sampled_from(DECLARED_TYPES))) for _ in column_names]
    rows = draw(st.lists(st.tuples(*[sql_values for _ in column_names]), max_size=8))
    return {"name": table_name, "columns": list(zip(column_names, types)), "strict": strict, "rows": rows}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _build(path: Path, table: dict[str, Any]) -> None:
    conn = sqlite3.connect(path)
    try:
        columns = ", ".join(f"{_quote(name)} {declared}".rstrip() for name, declared in table["columns"])
        conn.execute(f"CREATE TABLE {_quote(table['name'])} ({columns}){' STRICT' if table['strict'] else ''}")
        names_sql = ", ".join(_quote(name) for name, _ in table["columns"])
        for row in table["rows"]:
            marks = ", ".join("CAST(? AS TEXT)" if isinstance(v, AsText) else "?" for v in row)
            values = [v.data if isinstance(v, AsText) else v for v in row]
            conn.execute(f"INSERT INTO {_quote(table['name'])} ({names_sql}) VALUES ({marks})", values)
        conn.commit()
    finally:
        conn.close()


@SETTINGS
@given(table=tables(), compression=st.sampled_from(["zstd", "none"]))
def test_random_tables_round_trip(table: dict[str, Any], compression: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory) / "random.db"
        _build(source, table)
        result = _SERVICE.create_backup(str(source), Path(directory) / "backups", compression=compression)
        assert _SERVICE.verify_backup(result.path, "full").valid
        restored = Path(directory) / "restored.db"
        _SERVICE.restore_backup(result.path, str(restored))
        assert_same_database(source, restored)


# -- encode_row / decode_row ---------------------------------------------------------------------

timezones = st.one_of(
    st.none(),
    st.just(datetime.timezone.utc),
    st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda m: datetime.timezone(datetime.timedelta(minutes=m))),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.sampled_from(["{", "[", "null", '{"$bytes":"AA=="}', "[1,2]", "true", "", "\x00"]),
    st.binary(),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.datetimes(timezones=timezones),
    st.dates(),
    st.times(timezones=timezones),
    st.timedeltas(),
    st.uuids(),
    st.binary(max_size=20).map(RawText),
    st.text(max_size=20).map(JsonText),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=12)


def _canonical(value: Any) -> Any:
    """A form in which equal values compare equal and different ones differ (types, -0.0, NaN)."""
    if isinstance(value, (list, tuple)):
        return ("array", [_canonical(v) for v in value])
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    if isinstance(value, decimal.Decimal):
        return ("decimal", str(value))
    if isinstance(value, (datetime.datetime, datetime.time)):
        return (type(value).__name__, value.isoformat(), str(value.tzinfo and value.utcoffset()))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ("bytes", bytes(value))
    if isinstance(value, uuid.UUID):
        # orjson writes a UUID natively as its text (the encoder never sees it); the column's
        # logical type "uuid" says what it is, so only the text has to survive
        return ("str", str(value))
    return (type(value).__name__, value)


@SETTINGS
@given(row=st.lists(values, max_size=8))
def test_encode_decode_row_round_trip(row: list[Any]) -> None:
    line = encode_row(row)
    assert b"\n" not in line
    assert _canonical(decode_row(line)) == _canonical(row)


@SETTINGS
@given(rows=st.lists(st.lists(values, min_size=1, max_size=4), max_size=6))
def test_encode_batch_matches_encode_row(rows: list[list[Any]]) -> None:
    batch = encode_batch(rows)
    assert batch.rows == len(rows)
    lines = bytes(batch.data).split(b"\n")
    assert lines.pop() == b""
    assert [_canonical(decode_row(line)) for line in lines] == [_canonical(row) for row in rows]


@SETTINGS
@given(text=st.binary(min_size=1, max_size=40))
def test_surrogateescaped_text_comes_back_as_its_bytes(text: bytes) -> None:
    decoded = text.decode("utf-8", "surrogateescape")
    (value,) = decode_row(encode_row([decoded]))
    assert (value.data if isinstance(value, RawText) else value.encode("utf-8")) == text


def test_special_numbers_are_tagged() -> None:
    line = encode_row([math.nan, math.inf, -math.inf, -0.0, 2**64, -(2**63) - 1, decimal.Decimal("-0.000")])
    assert b'"$float":"nan"' in line and b'"$float":"-inf"' in line and b'"$int":"18446744073709551616"' in line
    nan, inf, ninf, zero, big, small, dec = decode_row(line)
    assert math.isnan(nan) and inf == math.inf and ninf == -math.inf and math.copysign(1, zero) == -1
    assert (big, small, str(dec)) == (2**64, -(2**63) - 1, "-0.000")
    assert decode_row(encode_row([uuid.UUID(int=1)])) in ([uuid.UUID(int=1)], [str(uuid.UUID(int=1))])
