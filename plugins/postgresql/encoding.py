"""Row values between PostgreSQL and the backup's value encoding, in both directions.

Reading: the server builds each row line itself. Every column becomes a SQL expression that
yields the column's JSON text in the tagged encoding of :mod:`unibackup.values`, and the
expressions are concatenated into one JSON array per row inside ``COPY (SELECT ...) TO STDOUT``.
Values that a portable tag cannot hold exactly (dates before year 1 or after 9999, infinity,
``24:00:00``, intervals, ranges, network addresses...) are written as PostgreSQL's own text form,
a plain JSON string that the column's declared type casts back on a same-engine restore.

Writing: decoded values become the Python values that psycopg's ``COPY FROM STDIN`` writer
understands.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import orjson
import psycopg
from psycopg.adapt import Dumper

from unibackup.values import JsonText, RawText, Tagged

#: Logical type of each base type name (``pg_type.typname``); anything else is "other".
LOGICAL_TYPES: dict[str, str] = {
    "int2": "integer",
    "int4": "integer",
    "int8": "integer",
    "oid": "integer",
    "float4": "float",
    "float8": "float",
    "numeric": "decimal",
    "money": "decimal",
    "bool": "boolean",
    "text": "text",
    "varchar": "text",
    "bpchar": "text",
    "name": "text",
    "char": "text",
    "citext": "text",
    "bytea": "bytes",
    "date": "date",
    "time": "time",
    "timetz": "time_tz",
    "timestamp": "datetime",
    "timestamptz": "datetime_tz",
    "interval": "interval",
    "uuid": "uuid",
    "json": "json",
    "jsonb": "json",
}

#: Element types whose one-dimensional arrays (lower bound 1) are written as ``$array``.
PLAIN_ARRAY_ELEMENTS = frozenset({"int2", "int4", "int8", "text", "varchar", "bool"})

_TEXT = "to_json({x}::text)::text"



_EXPRESSIONS: dict[str, str] = {
    "int2": "{x}::text",
    "int4": "{x}::text",
    "int8": "{x}::text",
    "oid": "{x}::text",
    "bool": "{x}::text",
    "numeric": "'{{\"$decimal\":\"' || {x}::text || '\"}}'",
    "money": "'{{\"$decimal\":\"' || {x}::numeric::text || '\"}}'",
    "float4": "CASE {x}::text WHEN 'NaN' THEN '{{\"$float\":\"nan\"}}' WHEN 'Infinity' THEN '{{\"$float\":\"inf\"}}' "
    "WHEN '-Infinity' THEN '{{\"$float\":\"-inf\"}}' WHEN '-0' THEN '-0.0' ELSE {x}::text END",
    "bytea": "'{{\"$bytes\":\"' || translate(encode({x}, 'base64'), E'\\n', '') || '\"}}'",
    "uuid": "'{{\"$uuid\":\"' || {x}::text || '\"}}'",
    "json": "'{{\"$json\":' || to_json({x}::text)::text || '}}'",
    "jsonb": "'{{\"$json\":' || to_json({x}::text)::text || '}}'",
    "text": "to_json({x})::text",
    "varchar": "to_json({x})::text",
    "bpchar": "to_json({x})::text",
    "date": "CASE WHEN {x} BETWEEN '0001-01-01' AND '9999-12-31' THEN '{{\"$date\":\"' || {x}::text || '\"}}' "
    "ELSE to_json({x}::text)::text END",
    "timestamp": "CASE WHEN {x} BETWEEN '0001-01-01' AND '9999-12-31 23:59:59.999999' "
    "THEN '{{\"$datetime\":' || to_json({x})::text || '}}' ELSE to_json({x}::text)::text END",
    "timestamptz": "CASE WHEN {x} BETWEEN '0001-01-01 00:00:00+00' AND '9999-12-31 23:59:59.999999+00' "
    "THEN '{{\"$datetime\":' || to_json({x})::text || '}}' ELSE to_json({x}::text)::text END",
    "time": "CASE WHEN {x} < '24:00:00' THEN '{{\"$time\":\"' || {x}::text || '\"}}' ELSE to_json({x}::text)::text END",
}
_EXPRESSIONS["float8"] = _EXPRESSIONS["float4"]


def json_expression(column_sql: str, base_type: str, element_type: str | None = None, sql_ascii: bool = False) -> str:
    """The SQL expression giving one column's JSON text (``null`` for NULL).

    ``column_sql`` is the quoted column name; ``base_type`` the ``typname`` of the column's type
    with domains resolved; ``element_type`` the element ``typname`` of an array type. In a
    ``SQL_ASCII`` database (``sql_ascii``) an array whose text has bytes beyond ASCII is written in
    its text form, a single value that :func:`tag_raw_text` can tag when it is not UTF-8.
    """
    if element_type is not None:
        # An empty array (of any element type) has no dimensions and no element to misread: an
        # empty list, so that every reader sees a list and not PostgreSQL's text "{}".
        x = column_sql
        empty = f"WHEN pg_catalog.cardinality({x}) = 0 THEN '{{\"$array\":[]}}'"
        if element_type in PLAIN_ARRAY_ELEMENTS:
            ascii_only = f" AND {x}::text !~ '[\\x80-\\xff]'" if sql_ascii else ""
            expression = (
                f"CASE {empty} WHEN array_ndims({x}) = 1 AND array_lower({x}, 1) = 1{ascii_only} "
                f"THEN '{{\"$array\":' || to_json({x})::text || '}}' ELSE to_json({x}::text)::text END"
            )
        else:
            expression = f"CASE {empty} ELSE {_TEXT.format(x=x)} END"
    else:
        expression = _EXPRESSIONS.get(base_type, _TEXT).format(x=column_sql)
    return f"coalesce({expression}, 'null')"


def row_query(relation_sql: str, expressions: list[str]) -> str:
    """``SELECT`` of one text column per row: the row's JSON array, in the backup's row format."""
    if not expressions:
        return f"SELECT '[]' FROM {relation_sql}"
    body = " || ',' || ".join(expressions)
    return f"SELECT '[' || {body} || ']' FROM {relation_sql}"


def copy_out_sql(query: str) -> str:
    """``COPY`` that writes each row's JSON text as one raw line.

    CSV format with a quote and a delimiter that JSON never holds unescaped (control
    characters), so no value is quoted or escaped: each line is exactly the row's JSON text.
    """
    return f"COPY ({query}) TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')"


_JSON_STRING = re.compile(rb'"(?:[^"\\\\]|\\\\.)*"')


def tag_raw_text(lines: bytes) -> bytes:
    """Row lines read with ``client_encoding = SQL_ASCII`` (a ``SQL_ASCII`` database, whose text
    may be any bytes) in valid UTF-8: each string value that is not UTF-8 becomes a ``$text``
    value holding its exact bytes (``docs/format.md``); lines that are UTF-8 stay as they are.
    Raises ValueError for such bytes inside a tagged value's text (a ``json`` document), which no
    tag holds."""
    try:
        lines.decode("utf-8")
        return lines
    except UnicodeDecodeError:
        pass
    out = bytearray()
    for line in lines.split(b"\n")[:-1]:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            line = _JSON_STRING.sub(_tag_string, line)
        out += line + b"\n"
    return bytes(out)


def _tag_string(match: "re.Match[bytes]") -> bytes:
    token = match.group(0)
    try:
        token.decode("utf-8")
        return token
    except UnicodeDecodeError:
        pass
    before = match.string[: match.start()].rstrip()[-1:]
    if before not in (b"[", b","):  # a tag's payload ({"$json": "..."}): not a value of its own
        raise ValueError("bytes that are not UTF-8 inside a value that the backup format can only hold as UTF-8 text")
    data = json.loads(token.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    return b'{"$text":"' + base64.b64encode(data) + b'"}'


# -- writing ------------------------------------------------------------------------------------


class _JsonTextDumper(Dumper):
    """A JSON document kept as text: written as that text."""

    def dump(self, obj: JsonText) -> bytes:
        return obj.text.encode("utf-8")


class _TaggedDumper(Dumper):
    """A value of a tag this version does not know: its payload's text, for the column to cast."""

    def dump(self, obj: Tagged) -> bytes:
        payload = obj.payload
        return (payload if isinstance(payload, str) else orjson.dumps(payload).decode()).encode("utf-8")


class _RawTextDumper(Dumper):
    def dump(self, obj: RawText) -> bytes:
        raise ValueError("text that is not valid UTF-8 cannot be stored in PostgreSQL")


class _RawBytesDumper(Dumper):
    """Text that is not UTF-8, into a ``SQL_ASCII`` database: its exact bytes."""

    def dump(self, obj: RawText) -> bytes:
        return obj.data


class _Utf8StrDumper(Dumper):
    """Text into a ``SQL_ASCII`` database (whose COPY runs with ``client_encoding = SQL_ASCII``,
    which psycopg would encode as ASCII): its UTF-8 bytes, as they were read."""

    def dump(self, obj: str) -> bytes:
        return obj.encode("utf-8")


def register_dumpers(conn: psycopg.Connection, sql_ascii: bool = False) -> None:
    """Teach ``conn`` the value types of :mod:`unibackup.values`, so that ``Copy.write_row``
    takes decoded rows as they are, without a pass over every value in Python. ``sql_ascii``:
    the database stores any bytes (``SQL_ASCII``), so text that is not UTF-8 is written as is."""
    conn.adapters.register_dumper(JsonText, _JsonTextDumper)
    conn.adapters.register_dumper(Tagged, _TaggedDumper)
    conn.adapters.register_dumper(RawText, _RawBytesDumper if sql_ascii else _RawTextDumper)
    if sql_ascii:
        conn.adapters.register_dumper(str, _Utf8StrDumper)
