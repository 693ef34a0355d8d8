"""Restoring backups of other engines into SQLite: type mapping, DDL and value conversion.

Each column's portable logical type picks the nearest SQLite type. The fidelity report says,
column by column, whether the values come back exact or approximated (and how). Nothing here
runs the other engine's SQL: indexes, views, triggers and functions of another engine are
listed as skipped.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any, Callable

import orjson

from unibackup.models import ColumnMapping, ColumnSchema, TableSchema
from unibackup.values import JsonText, RawText, Tagged

_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)

#: logical type -> (SQLite declared type, fidelity, note)
_MAPPING: dict[str, tuple[str, str, str]] = {
    "integer": ("INTEGER", "exact", ""),
    "float": ("REAL", "exact", "NaN, which SQLite cannot store, is refused (NULL with --allow-lossy)"),
    "decimal": ("NUMERIC", "approximated", "stored as INTEGER or REAL (binary floating point, about 15 significant digits)"),
    "boolean": ("BOOLEAN", "exact", "stored as 0/1"),
    "text": ("TEXT", "exact", ""),
    "bytes": ("BLOB", "exact", ""),
    "date": ("DATE", "exact", "ISO 8601 text"),
    "time": ("TIME", "exact", "ISO 8601 text"),
    "time_tz": ("TIME", "exact", "ISO 8601 text with offset"),
    "datetime": ("DATETIME", "exact", "ISO 8601 text"),
    "datetime_tz": ("DATETIME", "exact", "ISO 8601 text with offset"),
    "interval": ("TEXT", "approximated", "kept as text in the source engine's notation"),
    "uuid": ("TEXT", "exact", "canonical text form"),
    "json": ("JSON", "exact", "the exact JSON text"),
    "array": ("TEXT", "approximated", "kept as a JSON array in text"),
    "enum": ("TEXT", "approximated", "the label as text; the set of labels is not enforced"),
    "any": ("", "exact", ""),
    "other": ("TEXT", "approximated", "kept as text in the source engine's notation"),
}


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sqlite_table_name(table: TableSchema, default_namespaces: frozenset[str] = frozenset({"public"})) -> str:
    """The table's name in SQLite: bare in the default namespace, ``ns.name`` otherwise."""
    if table.namespace and table.namespace not in default_namespaces:
        return f"{table.namespace}.{table.name}"
    return table.name


def _is_unsigned_64(column: ColumnSchema) -> bool:
    declared = column.declared_type.lower()
    return "unsigned" in declared and "bigint" in declared


def map_column(table: TableSchema, column: ColumnSchema) -> ColumnMapping:
    """How one column of another engine lands in SQLite."""
    target, fidelity, note = _MAPPING.get(column.logical_type, ("TEXT", "approximated", "unknown logical type, kept as text"))
    if column.logical_type == "integer" and _is_unsigned_64(column):
        # no affinity: an INTEGER column would turn the text of a large value into a REAL
        target, fidelity, note = "", "approximated", "values above 2^63-1 are stored as text"
    if column.logical_type == "decimal":
        scale = column.options.get("scale")
        precision = column.options.get("precision")
        if scale == 0 and precision is not None and precision <= 18:
            target, fidelity, note = "INTEGER", "exact", ""
        elif precision is not None and precision <= 15:
            note = "stored as REAL; exact for values of at most 15 significant digits"
    return ColumnMapping(
        table=table.qualified_name,
        column=column.name,
        source_type=column.declared_type,
        logical_type=column.logical_type,
        target_type=target or "(none)",
        fidelity=fidelity,
        note=note,
    )


def create_table_sql(table: TableSchema, mappings: dict[str, ColumnMapping]) -> str:
    """A CREATE TABLE for ``table`` from its portable schema (no foreign engine SQL is run)."""
    parts = []
    for column in table.columns:
        mapping = mappings[column.name]
        declared = mapping.target_type if mapping.target_type != "(none)" else ""
        definition = f"{quote(column.name)} {declared}".rstrip()
        if not column.nullable:
            definition += " NOT NULL"
        parts.append(definition)
    keys = sorted((c for c in table.columns if c.primary_key), key=lambda c: c.primary_key)
    if keys:
        parts.append("PRIMARY KEY (" + ", ".join(quote(c.name) for c in keys) + ")")
    return f"CREATE TABLE {quote(sqlite_table_name(table))} (\n  " + ",\n  ".join(parts) + "\n)"


def duration_text(value: datetime.timedelta) -> str:
    """``[-]H:MM:SS[.ffffff]`` with as many hours as it takes (MySQL's TIME notation, which
    PostgreSQL reads as an interval too), rather than Python's "-2 days, 22:59:59"."""
    total = value.days * 86_400_000_000 + value.seconds * 1_000_000 + value.microseconds
    sign = "-" if total < 0 else ""
    total = abs(total)
    seconds, micro = divmod(total, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    fraction = f".{micro:06d}" if micro else ""
    return f"{sign}{hours}:{minutes:02d}:{seconds:02d}{fraction}"


def _to_text(value: Any) -> Any:
    if value is None or type(value) in (str, RawText):
        return value
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, JsonText):
        return value.text
    if isinstance(value, (uuid.UUID, decimal.Decimal, int, float)):
        return str(value)
    if isinstance(value, datetime.timedelta):
        return duration_text(value)
    if isinstance(value, Tagged):
        payload = value.payload
        return payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    if isinstance(value, bytes):
        return value
    return orjson.dumps(value, default=str).decode()


def _to_number(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        if value.is_nan():
            return None
        if value == value.to_integral_value() and _INT64_MIN <= value <= _INT64_MAX:
            return int(value)
        return float(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
        return str(value)
    if isinstance(value, str):
        return value
    return value


def _to_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    return value


def _to_array(value: Any) -> Any:
    if isinstance(value, list):
        return orjson.dumps(value, default=_json_default).decode()
    return _to_text(value)


def _json_default(value: Any) -> Any:
    converted = _to_text(value)
    if isinstance(converted, bytes):
        return converted.hex()
    return converted


def _identity_unless_special(value: Any) -> Any:
    if value is None or type(value) in (int, float, str, bytes, RawText):
        return value
    return _to_text(value)


_CONVERTERS: dict[str, Callable[[Any], Any] | None] = {
    "integer": _to_number,
    "float": None,
    "decimal": _to_number,
    "boolean": _to_boolean,
    "text": _identity_unless_special,
    "bytes": None,
    "json": _to_text,
    "array": _to_array,
    "any": _identity_unless_special,
}


class NotStorable(Exception):
    """A value SQLite cannot hold, met in a restore that may not approximate."""


def _float_converter(table: TableSchema, column: ColumnSchema, allow_lossy: bool) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value != value:  # NaN: SQLite stores it as NULL
            if allow_lossy:
                return None
            raise NotStorable(f"{table.qualified_name}.{column.name} holds NaN, which SQLite cannot store (add --allow-lossy to store NULL)")
        return value

    return convert


def converters_for(table: TableSchema, allow_lossy: bool = False) -> list[Callable[[Any], Any] | None]:
    """One converter per column (None where the decoded value binds as it is)."""
    return [
        _float_converter(table, column, allow_lossy) if column.logical_type == "float" else _CONVERTERS.get(column.logical_type, _to_text)
        for column in table.columns
    ]


def convert_rows(rows: list[list[Any]], converters: list[Callable[[Any], Any] | None]) -> list[list[Any]]:
    """Apply the converters; columns without one are left alone."""
    active = [(index, convert) for index, convert in enumerate(converters) if convert is not None]
    if not active:
        return rows
    for row in rows:
        for index, convert in active:
            value = row[index]
            if value is not None:
                row[index] = convert(value)
    return rows
