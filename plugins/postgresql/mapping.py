"""Another engine's backup into PostgreSQL: column types, values, defaults and constraints.

:func:`map_columns` is the fidelity report: each column's PostgreSQL type, and whether every value
arrives exactly. The report says beforehand what happens to a value the type cannot hold, and the
restore does exactly that: it stops with one line naming the table, the column and the value, or,
where the report said so (``--allow-lossy``), stores NULL and lists the value afterwards.

SQLite keeps a type per value, not per column: a column declared ``NUMERIC`` may hold the text
``'hello'``, one declared ``DATETIME`` a Unix time. A value is converted only when its SQLite
storage class means the same thing in the PostgreSQL type (an integer into ``bigint``, text in one
of the date forms SQLite's date functions read into ``timestamp``, ...); any other value is refused,
never reinterpreted. Columns of ``STRICT`` tables hold only their declared class.

SQLite keeps defaults, foreign keys, UNIQUE and CHECK constraints inside its ``CREATE TABLE``; the
source hands them on as data (column ``default``, table ``options`` ``foreign_keys``, ``unique``,
``checks``). What has a PostgreSQL equivalent is recreated after the rows; what has none is
listed as skipped, with the reason.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
import re
import uuid
from typing import Any, Callable

import orjson

from unibackup.models import ColumnMapping, ColumnSchema, TableSchema
from unibackup.source import RestorePlan
from unibackup.values import JsonText, RawText, Tagged, duration_text

from .catalog import qualified, quote

NOT_KEPT = "(not kept)"
ENGINE_NAMES = {"sqlite": "SQLite", "mysql": "MySQL", "postgresql": "PostgreSQL"}

_INT64 = 2**63
_PREVIEW = 40


class Refused(ValueError):
    """A value the column's PostgreSQL type cannot hold; the message says why, when the value's
    kind alone does not (empty: "a text value in a bigint column")."""


def _note(text: str) -> str:
    return " ".join(text.split())


# -- how a value is named in messages -------------------------------------------------------------


def value_kind(value: Any) -> str:
    """The kind of a decoded value in the words of its source (SQLite's storage classes)."""
    kind = type(value)
    if kind is bool:
        return "boolean"
    if kind is int:
        return "integer"
    if kind is float:
        return "real"
    if kind is str:
        return "text"
    if kind is bytes:
        return "blob"
    if kind is RawText:
        return "text that is not UTF-8"
    if kind is decimal.Decimal:
        return "decimal"
    return kind.__name__


def preview(value: Any) -> str:
    """A value as a user may recognise it in one line: quoted text, blob hex, shortened."""
    kind = type(value)
    if kind is str:
        text = value if len(value) <= _PREVIEW else value[:_PREVIEW] + "…"
        return repr(text)
    if kind is bytes:
        shown = value[: _PREVIEW // 2].hex()
        return f"x'{shown}{'…' if len(value) > _PREVIEW // 2 else ''}' ({len(value)} bytes)"
    if kind is RawText:
        return f"{value.data[: _PREVIEW // 2]!r} ({len(value.data)} bytes)"
    text = repr(value) if kind is not decimal.Decimal else str(value)
    return text if len(text) <= _PREVIEW else text[:_PREVIEW] + "…"


# -- column types ---------------------------------------------------------------------------------


def _sqlite_strict(table: TableSchema) -> bool:
    return bool(table.options.get("strict"))


def _sqlite_caveat(table: TableSchema, column: ColumnSchema, allow_lossy: bool) -> str:
    """What the report says about values a non-STRICT SQLite column holds beside its type."""
    if _sqlite_strict(table) or column.hidden == "rowid":
        return ""
    what = "becomes NULL and is listed" if allow_lossy and not column.primary_key else "stops the restore, naming it"
    return f"SQLite does not enforce {column.declared_type}: a value stored as another class {what}"


def nul_note(allow_lossy: bool) -> str:
    """What the report says of every text column of another engine, whose text may hold a NUL
    character (U+0000) that no PostgreSQL text holds."""
    what = "becomes NULL and is listed" if allow_lossy else "stops the restore, naming it (with --allow-lossy: NULL, listed)"
    return f"a value with a NUL character, which PostgreSQL text cannot hold, {what}"


class NulCharacter(Refused):
    """Text with a NUL character (U+0000), which PostgreSQL text cannot hold."""

_MYSQL_TIME = (
    "MySQL TIME is a duration (it may pass 24 hours or be negative): kept as hours, minutes and seconds "
    "with no day field (838:59:59 stays 838:59:59)"
)


def target_type(column: ColumnSchema, table: TableSchema, source_engine: str, allow_lossy: bool = False) -> tuple[str, str, str]:
    """(PostgreSQL type, fidelity, note) for a column of another engine's backup."""
    if source_engine == "sqlite":
        return _sqlite_type(column, table, allow_lossy)
    logical = column.logical_type
    declared = column.declared_type.lower()
    options = column.options
    if logical == "integer":
        unsigned = options.get("unsigned") or "unsigned" in declared
        if unsigned and (options.get("bits") == 64 or "bigint" in declared or (options.get("bit_length") or 0) > 63):
            return "numeric(20,0)", "exact", "an unsigned 64-bit integer needs more than bigint"
        return "bigint", "exact", ""
    if logical == "float":
        return "double precision", "exact", ""
    if logical == "decimal":
        precision, scale = options.get("precision"), options.get("scale")
        if precision and 0 < int(precision) <= 1000:
            return f"numeric({int(precision)},{int(scale or 0)})", "exact", ""
        return "numeric", "exact", ""
    if logical == "boolean":
        return "boolean", "exact", ""
    if logical == "text":
        length = options.get("length")
        if length and "char" in declared and "text" not in declared:
            return f"varchar({int(length)})", "exact", nul_note(allow_lossy)
        return "text", "exact", nul_note(allow_lossy)
    if logical == "bytes":
        return "bytea", "exact", ""
    zero_dates = (
        "a zero or invalid MySQL date (0000-00-00, 2024-02-30) has no PostgreSQL value: it becomes NULL and is listed; other dates are exact"
    )
    if logical == "date":
        if source_engine == "mysql":
            return "date", "approximated", zero_dates
        return "date", "exact", ""
    if logical == "time":
        if source_engine == "mysql":
            return "interval", "exact", _MYSQL_TIME
        return "time", "exact", ""
    if logical == "time_tz":
        return "time with time zone", "exact", ""
    if logical == "datetime":
        precision = options.get("precision", options.get("fsp"))
        kind = f"timestamp({int(precision)})" if precision is not None and 0 <= int(precision) <= 6 else "timestamp"
        if source_engine == "mysql":
            return kind, "approximated", zero_dates
        return kind, "exact", ""
    if logical == "datetime_tz":
        precision = options.get("precision", options.get("fsp"))
        kind = f"timestamp({int(precision)}) with time zone" if precision is not None and 0 <= int(precision) <= 6 else "timestamp with time zone"
        if source_engine == "mysql":
            return kind, "approximated", zero_dates
        return kind, "exact", "stored as an instant; shown in the session's time zone"
    if logical == "interval":
        return "interval", "exact", _MYSQL_TIME if source_engine == "mysql" else ""
    if logical == "uuid":
        return "uuid", "exact", ""
    if logical == "json":
        return "json", "exact", "json keeps the document's exact text"
    if logical == "enum":
        if source_engine == "mysql":
            return "text", "exact", "an enum becomes text with a CHECK on its labels and on '', MySQL's error value of every ENUM"
        return "text", "exact", "an enum becomes text with a CHECK on its labels"
    if logical == "array":
        return "jsonb", "approximated", "an array of another engine is stored as a JSON array"
    if logical == "any":
        return "text", "approximated", "a column without a type: every value is stored as text (BLOBs as \\x hex)"
    return "text", "approximated", _note(f"{column.declared_type or 'this type'} has no PostgreSQL equivalent; its text form is stored")


#: SQLite logical type -> (PostgreSQL type, note beside the caveat).
_SQLITE_TYPES: dict[str, tuple[str, str]] = {
    "integer": ("bigint", ""),
    "float": ("double precision", ""),
    "decimal": ("numeric", ""),
    "boolean": ("boolean", "0 and 1 become false and true"),
    "text": ("text", ""),
    "bytes": ("bytea", ""),
    "date": ("date", "text YYYY-MM-DD"),
    "datetime": ("timestamp", "text in SQLite's date-time forms; one with a UTC offset is stored as its UTC time"),
    "time": ("time", "text HH:MM[:SS[.fff]]"),
    "uuid": ("uuid", ""),
    "json": ("json", "json keeps the document's exact text"),
}


def _sqlite_type(column: ColumnSchema, table: TableSchema, allow_lossy: bool) -> tuple[str, str, str]:
    if column.hidden == "rowid":
        if any(c.primary_key for c in table.columns):
            return NOT_KEPT, "exact", "SQLite's internal rowid; the primary key identifies the rows, the rowid values are not kept"
        return "bigint", "exact", "SQLite's rowid, kept as a column"
    logical = column.logical_type
    if _sqlite_strict(table):
        # STRICT: the declared type is enforced (INT, INTEGER, REAL, TEXT, BLOB, ANY)
        strict = {"integer": "bigint", "float": "double precision", "text": "text", "bytes": "bytea"}
        if logical in strict:
            return strict[logical], "exact", nul_note(allow_lossy) if logical == "text" else ""
    if logical in _SQLITE_TYPES:
        kind, note = _SQLITE_TYPES[logical]
        if logical == "decimal" and column.options.get("precision"):
            note = f"SQLite does not enforce the precision of {column.declared_type}: numeric holds every value exactly"
        if logical == "text":
            note = nul_note(allow_lossy)
        parts = [part for part in (note, _sqlite_caveat(table, column, allow_lossy)) if part]
        return kind, "exact", "; ".join(parts)
    if logical == "any" and not column.declared_type.strip():
        return "text", "approximated", "a column without a type: every value is stored as text (numbers as their text, BLOBs as \\x hex)"
    return "text", "approximated", _note(
        f"{column.declared_type} is no type SQLite knows (any value may be in it): every value is stored as text "
        "(numbers as their text, BLOBs as \\x hex)"
    )


def map_columns(plan: RestorePlan) -> list[ColumnMapping]:
    """The cross-engine fidelity report: every column of every table to restore."""
    mappings: list[ColumnMapping] = []
    for table in plan.tables:
        for column in table.columns:
            kind, fidelity, note = target_type(column, table, plan.source_engine, plan.allow_lossy)
            mappings.append(
                ColumnMapping(
                    table=table.qualified_name,
                    column=column.name,
                    source_type=column.declared_type,
                    logical_type=column.logical_type,
                    target_type=kind,
                    fidelity=fidelity,
                    note=note,
                )
            )
    return mappings


def may_become_null(column: ColumnSchema, table: TableSchema, mapping: ColumnMapping, plan: RestorePlan) -> bool:
    """Whether the report lets a value of this column that the type refuses become NULL."""
    if column.primary_key or column.hidden:
        return False
    if plan.allow_lossy and (mapping.target_type == "text" or mapping.target_type.startswith("varchar")):
        return True  # a NUL character, which no PostgreSQL text holds
    if plan.source_engine == "sqlite":
        return plan.allow_lossy and not _sqlite_strict(table) and mapping.logical_type not in ("any", "other")
    return plan.source_engine == "mysql" and mapping.fidelity == "approximated" and mapping.logical_type in ("date", "datetime", "datetime_tz")


# -- values ---------------------------------------------------------------------------------------


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise NulCharacter("PostgreSQL text cannot hold a NUL character")
    return text


def _as_text(value: Any) -> Any:
    kind = type(value)
    if value is None:
        return value
    if kind is str:
        return _no_nul(value)
    if kind is RawText:
        raise Refused("text that is not valid UTF-8 cannot be stored in PostgreSQL")
    if kind is bytes:
        return "\\x" + value.hex()
    if kind is float:
        return repr(value)
    if kind is JsonText:
        return value.text
    if kind is Tagged:
        return _no_nul(value.payload if isinstance(value.payload, str) else orjson.dumps(value.payload).decode())
    if kind is list:
        return _no_nul(orjson.dumps(value, default=str).decode())
    if kind is bool:
        return "true" if value else "false"
    return str(value)


def _as_integer(value: Any) -> Any:
    if type(value) is float and value.is_integer():
        return int(value)
    if type(value) is bool:
        return int(value)
    return _plain(value)


def _as_boolean(value: Any) -> Any:
    if type(value) is int:
        if value in (0, 1):
            return bool(value)
        raise Refused(f"{value} is not a boolean")
    return _plain(value)


def _as_bytes(value: Any) -> Any:
    if type(value) is str:
        return value.encode("utf-8")
    if type(value) is RawText:
        return value.data
    return value


def _as_json(value: Any) -> Any:
    if value is None or type(value) is str:
        return value
    if type(value) is JsonText:
        return value.text
    return orjson.dumps(value, default=str).decode()


def _as_time(value: Any) -> Any:
    if type(value) is datetime.timedelta:
        if datetime.timedelta(0) <= value < datetime.timedelta(days=1):
            return (datetime.datetime.min + value).time()
        raise Refused(f"the time {value} is outside 00:00-24:00")
    return _plain(value)


def _as_interval(value: Any) -> Any:
    """A duration as hours, minutes and seconds (``-838:59:59``), never with a day field:
    PostgreSQL keeps days apart from hours, and a day added to a timestamptz across a DST change
    is not 24 hours."""
    if type(value) is datetime.timedelta:
        return duration_text(value)
    return _plain(value)


def _as_uuid(value: Any) -> Any:
    if type(value) is bytes and len(value) == 16:
        return uuid.UUID(bytes=value)
    return _plain(value)


def _mysql_date(value: Any) -> Any:
    if type(value) is str:  # MySQL's own text: a zero or invalid date that no date type holds
        raise Refused("a zero or invalid MySQL date has no PostgreSQL value")
    return value


def _mysql_default_date(value: Any) -> Any:
    """A MySQL date default, written as text: a real date, or refused (a zero date)."""
    if type(value) is not str:
        raise Refused("not a date")
    try:
        if len(value) <= 10:
            return datetime.date.fromisoformat(value)
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        raise Refused("a zero or invalid MySQL date has no PostgreSQL value") from None


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind is JsonText:
        return value.text
    if kind is RawText:
        raise Refused("text that is not valid UTF-8 cannot be stored in PostgreSQL")
    if kind is Tagged:
        return value.payload if isinstance(value.payload, str) else str(value.payload)
    if kind is list:
        return orjson.dumps(value, default=str).decode()
    return value


def converter_for(logical: str, target: str, source_engine: str = "") -> Callable[[Any], Any]:
    """How a decoded value of ``logical`` type becomes a value for a ``target`` column."""
    if source_engine == "sqlite" and logical not in ("any", "other"):
        found = _SQLITE_CONVERTERS.get(target)
        if found is not None:
            return found
    if source_engine == "mysql" and logical in ("date", "datetime", "datetime_tz"):
        return _mysql_date
    if target in ("text",) or target.startswith("varchar"):
        return _as_text
    if target in ("bigint", "integer", "smallint"):
        return _as_integer
    if target == "boolean":
        return _as_boolean
    if target == "bytea":
        return _as_bytes
    if target in ("json", "jsonb"):
        return _as_json
    if target == "time":
        return _as_time
    if target == "interval":
        return _as_interval
    if target == "uuid":
        return _as_uuid
    return _plain


# SQLite: a value is taken only in a storage class that means the same in the target type.


def _refuse(value: Any, target: str) -> Refused:
    return Refused("")  # the kind of the value says it all


def _sqlite_bigint(value: Any) -> Any:
    kind = type(value)
    if value is None or (kind is int and -_INT64 <= value < _INT64):
        return value
    if kind is float and value.is_integer() and -_INT64 <= value < _INT64:
        return int(value)
    if kind is int:
        raise Refused("the integer is beyond bigint")
    raise _refuse(value, "bigint")


def _sqlite_double(value: Any) -> Any:
    kind = type(value)
    if value is None or kind is float:
        return value
    if kind is int and float(value) == value:
        return float(value)
    if kind is int:
        raise Refused("the integer has more digits than double precision keeps")
    raise _refuse(value, "double precision")


def _sqlite_numeric(value: Any) -> Any:
    kind = type(value)
    if value is None or kind is int or kind is decimal.Decimal:
        return value
    if kind is float:
        if math.isnan(value):
            return decimal.Decimal("NaN")
        if math.isinf(value):
            return decimal.Decimal("Infinity" if value > 0 else "-Infinity")
        return decimal.Decimal(repr(value))  # the shortest text that reads back as the same double
    raise _refuse(value, "numeric")


def _sqlite_boolean(value: Any) -> Any:
    kind = type(value)
    if value is None or kind is bool:
        return value
    if (kind is int or kind is float) and value in (0, 1):
        return bool(value)
    if kind is int or kind is float:
        raise Refused(f"{value!r} is neither 0 nor 1")
    raise _refuse(value, "boolean")


def _sqlite_text(value: Any) -> Any:
    kind = type(value)
    if value is None:
        return value
    if kind is str:
        return _no_nul(value)
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value)
    raise _refuse(value, "text")


def _sqlite_bytea(value: Any) -> Any:
    if value is None or type(value) is bytes:
        return value
    raise _refuse(value, "bytea")


_NUMBER_AS_DATE = "SQLite reads a number as a Julian day, an application may mean Unix time: not guessed"
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?")
_OFFSET = re.compile(r"(?:\s*(Z|z|[+-]\d{2}:\d{2}))?")


def _fraction(digits: str | None) -> int:
    if not digits:
        return 0
    if len(digits) > 6 and digits[6:].strip("0"):
        raise Refused("it has more than microsecond precision")
    return int(digits[:6].ljust(6, "0"))


def parse_sqlite_datetime(text: str) -> datetime.datetime:
    """A date-time in one of the forms SQLite's date functions read: ``YYYY-MM-DD``, with
    ``[T ]HH:MM[:SS[.fff]]`` and a ``Z`` or ``±HH:MM`` offset (then converted to UTC, as SQLite does)."""
    date = _DATE.match(text)
    if date is None:
        raise Refused("it is not in a date-time form SQLite reads")
    position = date.end()
    hour = minute = second = micro = 0
    if position < len(text) and text[position] in "T ":
        time = _TIME.match(text, position + 1)
        if time is None:
            raise Refused("it is not in a date-time form SQLite reads")
        hour, minute = int(time.group(1)), int(time.group(2))
        second = int(time.group(3) or 0)
        micro = _fraction(time.group(4))
        position = time.end()
    offset = _OFFSET.match(text, position)
    if offset is None or offset.end() != len(text):
        raise Refused("it is not in a date-time form SQLite reads")
    try:
        value = datetime.datetime(int(date.group(1)), int(date.group(2)), int(date.group(3)), hour, minute, second, micro)
    except ValueError as error:
        raise Refused(f"it is not a valid date-time ({error})") from None
    zone = offset.group(1)
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        delta = datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        try:
            value = value - sign * delta
        except OverflowError:
            raise Refused("it is out of range once taken to UTC") from None
    return value


def _sqlite_timestamp(value: Any) -> Any:
    if value is None:
        return None
    if type(value) is str:
        return parse_sqlite_datetime(value)
    if type(value) in (int, float):
        raise Refused(_NUMBER_AS_DATE)
    raise _refuse(value, "timestamp")


def _sqlite_date(value: Any) -> Any:
    if value is None:
        return None
    if type(value) is str:
        if _DATE.fullmatch(value) is None:
            raise Refused("it is not a date YYYY-MM-DD")
        return parse_sqlite_datetime(value).date()
    if type(value) in (int, float):
        raise Refused(_NUMBER_AS_DATE)
    raise _refuse(value, "date")


def _sqlite_time(value: Any) -> Any:
    if value is None:
        return None
    if type(value) is str:
        found = _TIME.fullmatch(value)
        if found is None:
            raise Refused("it is not a time HH:MM[:SS[.fff]]")
        try:
            return datetime.time(int(found.group(1)), int(found.group(2)), int(found.group(3) or 0), _fraction(found.group(4)))
        except ValueError as error:
            raise Refused(f"it is not a valid time ({error})") from None
    raise _refuse(value, "time")


def _sqlite_uuid(value: Any) -> Any:
    if value is None:
        return None
    if type(value) is bytes and len(value) == 16:
        return uuid.UUID(bytes=value)
    if type(value) is str:
        try:
            return uuid.UUID(value)
        except ValueError:
            raise Refused("it is not a UUID") from None
    raise _refuse(value, "uuid")


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _sqlite_json(value: Any) -> Any:
    kind = type(value)
    if value is None:
        return None
    if kind is str:
        try:
            json.loads(value, parse_constant=_no_constant)
        except ValueError:
            raise Refused("it is not a JSON document") from None
        return value
    if kind is int or (kind is float and math.isfinite(value)):
        return repr(value)
    raise _refuse(value, "json")


_SQLITE_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "bigint": _sqlite_bigint,
    "double precision": _sqlite_double,
    "numeric": _sqlite_numeric,
    "boolean": _sqlite_boolean,
    "text": _sqlite_text,
    "bytea": _sqlite_bytea,
    "date": _sqlite_date,
    "timestamp": _sqlite_timestamp,
    "time": _sqlite_time,
    "uuid": _sqlite_uuid,
    "json": _sqlite_json,
}


def sqlite_any_as_text(value: Any) -> Any:
    """A column without a type (approximated): every value as text, BLOBs as ``\\x`` hex."""
    return _as_text(value)


# -- defaults -------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_HEX = re.compile(r"[+-]?0[xX][0-9a-fA-F]+")
_BLOB = re.compile(r"[xX]'((?:[0-9a-fA-F]{2})*)'")
_NOW = {"current_timestamp", "current_date", "current_time", "current_timestamp()", "now()", "localtimestamp", "localtimestamp()"}


def _strip_parentheses(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    quote_char = None
    for char in text:
        if quote_char:
            if char == quote_char:
                quote_char = None
        elif char in "'\"":
            quote_char = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0 and quote_char is None


def _string_literal(text: str, quote_char: str, backslashes: bool) -> str | None:
    if len(text) < 2 or text[0] != quote_char or text[-1] != quote_char:
        return None
    body = text[1:-1]
    doubled = quote_char * 2
    if body.replace(doubled, "").count(quote_char):
        return None
    body = body.replace(doubled, quote_char)
    if backslashes:
        if "\\" in body.replace("\\\\", ""):
            return None  # another escape: MySQL's meaning is not reproduced here
        body = body.replace("\\\\", "\\")
    return body


def default_value(text: str, source_engine: str) -> tuple[str, Any] | None:
    """A default written as a literal, as ("value", the value as stored) or ("now", keyword);
    ``None`` when it is an expression."""
    text = _strip_parentheses(text)
    lower = text.lower()
    if lower == "null":
        return "value", None
    if lower in ("true", "false"):
        return "value", 1 if lower == "true" else 0
    if lower in _NOW or re.fullmatch(r"current_timestamp\(\d\)|now\(\d\)", lower):
        return "now", lower.split("(")[0]
    if _HEX.fullmatch(text):
        return "value", int(text, 16)
    if _NUMBER.fullmatch(text):
        return "value", int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    blob = _BLOB.fullmatch(text)
    if blob:
        return "value", bytes.fromhex(blob.group(1))
    mysql = source_engine == "mysql"
    string = _string_literal(text, "'", mysql)
    if string is None and source_engine == "sqlite":
        string = _string_literal(text, '"', False)  # a double-quoted default is a string in SQLite
    if string is not None:
        return "value", string
    return None


def _numeric_affinity(value: Any) -> Any:
    """A text default in a numeric SQLite column is stored as the number it spells, if it spells one."""
    if type(value) is str and _NUMBER.fullmatch(value.strip()):
        text = value.strip()
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    return value


_NOW_SQL = {
    # SQLite writes the current UTC time as text, to the second
    ("sqlite", "current_timestamp", "timestamp"): "pg_catalog.date_trunc('second', pg_catalog.now() AT TIME ZONE 'UTC')",
    ("sqlite", "current_timestamp", "text"): "pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')",
    ("sqlite", "current_date", "date"): "(pg_catalog.now() AT TIME ZONE 'UTC')::date",
    ("sqlite", "current_date", "timestamp"): "pg_catalog.date_trunc('day', pg_catalog.now() AT TIME ZONE 'UTC')",
    ("sqlite", "current_date", "text"): "pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    ("sqlite", "current_time", "time"): "pg_catalog.date_trunc('second', pg_catalog.now() AT TIME ZONE 'UTC')::time",
    ("sqlite", "current_time", "text"): "pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'HH24:MI:SS')",
}


def default_sql(column: ColumnSchema, mapping: ColumnMapping, source_engine: str, literal: Callable[[Any], str]) -> tuple[str | None, str | None]:
    """The PostgreSQL default for a column of another engine: (SQL, None), (None, None) when there
    is nothing to set, or (None, why) when it cannot be carried over. ``literal`` renders a value."""
    text = column.default
    if text is None or mapping.target_type == NOT_KEPT:
        return None, None
    parsed = default_value(text, source_engine)
    if parsed is None:
        return None, f"{ENGINE_NAMES.get(source_engine, source_engine)} expression, not translated"
    what, value = parsed
    target = mapping.target_type
    if what == "now":
        base = target.split("(")[0]
        if source_engine == "sqlite":
            sql = _NOW_SQL.get((source_engine, value if value != "now" else "current_timestamp", base))
            if sql is None:
                return None, f"SQLite's {value} is text that a {target} column would not take"
            return sql, None
        if base in ("timestamp", "timestamp with time zone") or target.startswith("timestamp"):
            return ("LOCALTIMESTAMP" if "with time zone" not in target else "CURRENT_TIMESTAMP"), None
        if base == "date" and value == "current_date":
            return "CURRENT_DATE", None
        return None, f"{value} into {target} is not translated"
    if value is None:
        return None, None  # DEFAULT NULL: what a column without a default does
    if source_engine == "sqlite":
        if mapping.logical_type in ("integer", "float", "decimal", "boolean", "date", "datetime", "time", "json"):
            value = _numeric_affinity(value)
        convert = _SQLITE_CONVERTERS.get(target) or (sqlite_any_as_text if target == "text" else None)
    elif source_engine == "mysql" and mapping.logical_type in ("date", "datetime", "datetime_tz"):
        convert = _mysql_default_date
    else:
        convert = converter_for(mapping.logical_type, target, source_engine)
        if target in ("bigint", "numeric(20,0)") or target.startswith("numeric") or target == "double precision":
            value = _numeric_affinity(value)
    if convert is None:
        return None, f"no default of this kind for {target}"
    try:
        converted = convert(value)
    except (Refused, ValueError, TypeError, OverflowError, decimal.InvalidOperation) as error:
        return None, f"{preview(value)}: {error}"
    if converted is None:
        return None, None
    return literal(converted), None


# -- constraints ----------------------------------------------------------------------------------


def _columns_by_name(table: TableSchema) -> dict[str, str]:
    """Column names as SQLite looks them up: ASCII letters without case."""
    return {column.name.lower(): column.name for column in table.columns if not column.hidden}


def _rule(action: Any) -> str:
    rule = " ".join(str(action or "").upper().split())
    return rule if rule in ("CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT") else ""


def foreign_key_sql(
    table: TableSchema, key: dict[str, Any], tables: dict[str, TableSchema], target_schema: str, kept: Callable[[TableSchema, str], bool]
) -> tuple[str, str | None]:
    """(label, SQL or None) for one structured foreign key; the label says what it is, and why not
    when the SQL is None (``label (reason)``)."""
    columns = [str(c) for c in key.get("columns") or []]
    referenced_name = key.get("referenced_table")
    label = f"foreign key of {table.qualified_name} ({', '.join(columns)}) to {referenced_name}"
    referenced = tables.get(str(referenced_name)) if referenced_name is not None else None
    if referenced is None:
        lowered = {name.lower(): value for name, value in tables.items()}
        referenced = lowered.get(str(referenced_name).lower())
    if referenced is None:
        return f"{label} (the referenced table was not restored)", None
    if key.get("referenced_schema"):
        return f"{label} (it references another schema)", None
    wanted = list(key.get("referenced_columns") or [])
    if not wanted or any(c is None for c in wanted):
        primary = [c.name for c in sorted((c for c in referenced.columns if c.primary_key), key=lambda c: c.primary_key)]
        if len(primary) != len(columns) or (wanted and any(c is not None for c in wanted)):
            return f"{label} (it names no columns and {referenced.qualified_name} has no primary key of {len(columns)} column(s))", None
        wanted = primary
    own, theirs = _columns_by_name(table), _columns_by_name(referenced)
    try:
        source_columns = [own[c.lower()] for c in columns]
        target_columns = [theirs[str(c).lower()] for c in wanted]
    except KeyError as missing:
        return f"{label} (no column {missing.args[0]!r})", None
    if len(source_columns) != len(target_columns) or not source_columns:
        return f"{label} (its column lists do not match)", None
    if not all(kept(table, c) for c in source_columns) or not all(kept(referenced, c) for c in target_columns):
        return f"{label} (a column of it is not kept)", None
    actions = ""
    for clause in ("on_delete", "on_update"):
        rule = _rule(key.get(clause))
        if rule:
            actions += f" {clause.replace('_', ' ').upper()} {rule}"
    label = f"foreign key of {table.qualified_name} ({', '.join(source_columns)}) to {referenced.qualified_name} ({', '.join(target_columns)})"
    sql = (
        f"ALTER TABLE {qualified(target_schema, table.name)} ADD FOREIGN KEY ({', '.join(quote(c) for c in source_columns)}) "
        f"REFERENCES {qualified(target_schema, referenced.name)} ({', '.join(quote(c) for c in target_columns)}){actions}"
    )
    return label, sql


def unique_sql(table: TableSchema, columns: list[Any], target_schema: str, kept: Callable[[TableSchema, str], bool]) -> tuple[str, str | None]:
    own = _columns_by_name(table)
    names = [own.get(str(c).lower()) for c in columns]
    label = f"unique constraint of {table.qualified_name} ({', '.join(str(c) for c in columns)})"
    if not names or any(name is None for name in names):
        return f"{label} (not a list of the table's columns)", None
    if not all(kept(table, name) for name in names):  # type: ignore[arg-type]
        return f"{label} (a column of it is not kept)", None
    return label, f"ALTER TABLE {qualified(target_schema, table.name)} ADD UNIQUE ({', '.join(quote(n) for n in names)})"  # type: ignore[arg-type]


# SQLite CHECK expressions: only what means the same in PostgreSQL is translated.
_TOKEN = re.compile(
    r"""\s+|(?P<string>'(?:[^']|'')*')|(?P<quoted>"(?:[^"]|"")+"|\[[^\]]+\]|`(?:[^`]|``)+`)"""
    r"""|(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_$]*)"""
    r"""|(?P<op>==|!=|<>|<=|>=|\|\||[-+*/%<>=(),])"""
)
_CHECK_KEYWORDS = {"and": "AND", "or": "OR", "not": "NOT", "is": "IS", "null": "NULL", "in": "IN", "between": "BETWEEN",
                   "notnull": "IS NOT NULL", "isnull": "IS NULL", "true": "TRUE", "false": "FALSE"}
_CHECK_FUNCTIONS = {"length", "lower", "upper", "abs"}


def check_sql(table: TableSchema, expression: str, target_schema: str) -> tuple[str, str | None]:
    """(label, SQL or None) for one SQLite CHECK expression; the label ends with the reason when
    the expression uses something that does not mean the same in PostgreSQL."""
    shown = expression if len(expression) <= 60 else expression[:60] + "…"
    label = f"check of {table.qualified_name} ({shown})"
    columns = _columns_by_name(table)
    parts: list[str] = []
    position = 0
    while position < len(expression):
        token = _TOKEN.match(expression, position)
        if token is None:
            return f"{label} (SQLite syntax not translated: {expression[position:position + 20]!r})", None
        position = token.end()
        kind = token.lastgroup
        text = token.group(0)
        if kind is None:
            continue
        if kind == "string" or kind == "number":
            parts.append(text)
        elif kind == "op":
            parts.append("=" if text == "==" else text)
        elif kind == "quoted":
            name = text[1:-1].replace(text[0] * 2, text[0]) if text[0] in "\"`" else text[1:-1]
            if name.lower() not in columns:
                return f"{label} ({text} is not a column: SQLite would read it as a string)", None
            parts.append(quote(columns[name.lower()]))
        else:
            word = text.lower()
            following = expression[position:].lstrip()[:1]
            if word in _CHECK_FUNCTIONS and following == "(":
                parts.append(word)
            elif word in columns:
                parts.append(quote(columns[word]))
            elif word in _CHECK_KEYWORDS:
                parts.append(_CHECK_KEYWORDS[word])
            else:
                return f"{label} ({text.upper()} does not mean the same in PostgreSQL, or is not translated)", None
    return label, f"ALTER TABLE {qualified(target_schema, table.name)} ADD CHECK ({' '.join(parts)})"
