"""Cross-engine restore into MySQL/MariaDB: the nearest MySQL type of each portable logical type,
how faithful it is, and the DDL of the tables, keys and indexes that follow from it.

Text is stored as utf8mb4 with a binary collation (no-pad where the server has one), so that
values compare and stay unique as they did in the source engines, which compare text by bytes.
"""

from __future__ import annotations

import datetime
import decimal
import math
import re
import struct
from typing import Any, Callable, Iterable

import attrs
import orjson

from unibackup.arrays import ArrayTextError, array_from_text
from unibackup.models import ColumnMapping, ColumnSchema, SchemaObject, TableSchema, sequence_high_water

from .connection import quote
from .constraints import Constraints, by_table, parse_create_table, table_constraints, unquote

EXACT, APPROXIMATED, IMPOSSIBLE = "exact", "approximated", "impossible"
MAX_VARCHAR = 16383  # utf8mb4 characters in a 65,535-byte row
KEY_BYTES = 3072  # InnoDB's limit on the bytes of one index key (DYNAMIC rows), all its columns together
KEY_VARCHAR = KEY_BYTES // 4  # utf8mb4 characters in a key of one text column
MAX_VARBINARY = 65000
KEY_VARBINARY = KEY_BYTES
INDEX_PREFIX = 255  # characters of an unbounded text column in a plain (non-unique) index
#: What a TIME column holds (MariaDB takes the fraction up to 838:59:59.999999, MySQL 8 not).
TIME_LIMIT = datetime.timedelta(hours=838, minutes=59, seconds=59)
SQLITE_TYPES_NOTE = "SQLite does not enforce declared types: a value of another type stops the restore (--allow-lossy: NULL)"
SQLITE_LENGTHS_NOTE = "SQLite does not enforce declared lengths: a longer value stops the restore (--allow-lossy: NULL)"
_SIZE = re.compile(r"\(\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?\)")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_STRING = re.compile(r"^(?:[EN])?('(?:[^']|'')*')(?:::[\w\s.\"]+(?:\(\d+(?:,\d+)?\))?(?:\[\])?)?$", re.IGNORECASE)
_PG_INTEGERS = {"smallint": "SMALLINT", "int2": "SMALLINT", "smallserial": "SMALLINT", "integer": "INT", "int": "INT", "int4": "INT", "serial": "INT"}
_PG_SINGLE = ("real", "float4")

# An identifier as SQLite or PostgreSQL write it: "x", [x], `x` or bare; optionally qualified.
_NAME = r'(?:"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`|[A-Za-z_][\w$]*)'
_QUALIFIED = rf"{_NAME}(?:\s*\.\s*{_NAME})?"
_INDEX_SQL = re.compile(
    rf"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?({_QUALIFIED})\s+ON\s+(?:ONLY\s+)?({_QUALIFIED})"
    rf"\s*(?:USING\s+(\w+)\s*)?\((.*)\)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)


@attrs.frozen
class TargetServer:
    """What the target server offers that changes the mapping."""

    mariadb: bool
    collation: str  # binary collation for text


def _split_names(text: str) -> list[str] | None:
    """Plain column names from ``a, "b" ASC``; None when an item is an expression."""
    names = []
    for item in text.split(","):
        item = re.sub(r"\s+(ASC|DESC|COLLATE\s+\S+|NULLS\s+(?:FIRST|LAST))\s*$", "", item.strip(), flags=re.IGNORECASE)
        if not re.fullmatch(_NAME, item):
            return None
        names.append(unquote(item))
    return names


def _size(column: ColumnSchema) -> tuple[int | None, int | None]:
    options = column.options
    if "precision" in options:
        return options.get("precision"), options.get("scale")
    if "length" in options:
        return options.get("length"), None
    match = _SIZE.search(column.declared_type)
    if not match:
        return None, None
    return int(match.group(1)), int(match.group(2)) if match.group(2) is not None else None


NOT_KEPT = "(not kept)"


def is_hidden(column: ColumnSchema) -> bool:
    """A row identifier that the source engine adds (SQLite's rowid): not a declared column."""
    return column.hidden is not None


def is_dropped(table: TableSchema, column: ColumnSchema) -> bool:
    """A hidden row identifier of a table whose primary key identifies the rows: not restored."""
    return is_hidden(column) and any(other.primary_key for other in table.columns)


def _mapping(table: TableSchema, column: ColumnSchema, target: str, fidelity: str = EXACT, note: str = "") -> ColumnMapping:
    return ColumnMapping(
        table=table.qualified_name, column=column.name, source_type=column.declared_type, logical_type=column.logical_type,
        target_type=target, fidelity=fidelity, note=note,
    )


def _strict(table: TableSchema, column: ColumnSchema, engine: str) -> bool:
    """Whether the source engine held every value of the column to its declared type."""
    if engine != "sqlite" or table.options.get("strict"):
        return True
    keys = [c for c in table.columns if c.primary_key]
    return len(keys) == 1 and keys[0] is column and column.declared_type.strip().upper() == "INTEGER" and not table.options.get("without_rowid")


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def map_column(table: TableSchema, column: ColumnSchema, engine: str, server: TargetServer, in_key: bool) -> ColumnMapping:
    """The MySQL type of one column from another engine, and how faithful it is.

    ``in_key``: the column is part of a key, so it needs a bounded type (see :func:`map_tables`,
    which also makes every key of a table fit MySQL's limit).
    """
    logical = column.logical_type
    declared = column.declared_type.strip().lower()
    size, scale = _size(column)
    options = column.options
    loose = "" if _strict(table, column, engine) else SQLITE_TYPES_NOTE
    m = lambda target, fidelity=EXACT, note="": _mapping(table, column, target, fidelity, note)  # noqa: E731
    if is_hidden(column):
        if is_dropped(table, column):
            return m(NOT_KEPT, EXACT, f"{engine}'s internal row identifier; the primary key identifies the rows, its values are not kept")
        return m("BIGINT", EXACT, f"{engine}'s internal row identifier, kept as a column (the table has no primary key)")
    if logical == "integer":
        unsigned = bool(options.get("unsigned"))
        bits = int(options.get("bits") or options.get("bit_length") or 64)
        if bits >= 64 and unsigned:
            return m("BIGINT UNSIGNED", EXACT, loose)
        if engine == "postgresql" and declared in _PG_INTEGERS:
            return m(_PG_INTEGERS[declared])
        return m("BIGINT", EXACT, loose)
    if logical == "float":
        target = "FLOAT" if options.get("single") or (engine == "postgresql" and declared in _PG_SINGLE) else "DOUBLE"
        if engine == "postgresql":
            return m(target, APPROXIMATED, "NaN and ±Infinity have no MySQL form: they are stored as NULL; finite values are kept exactly")
        if loose:
            return m(target, EXACT, "SQLite does not enforce declared types, and MySQL has no ±Infinity: such a value stops the restore (--allow-lossy: NULL)")
        return m(target, EXACT, "NaN and ±Infinity have no MySQL form: a row holding one stops the restore (--allow-lossy: NULL)")
    if logical == "decimal":
        nan = "NaN has no MySQL form: it is stored as NULL" if engine == "postgresql" else ""
        fidelity = APPROXIMATED if nan else EXACT
        if size is not None and scale is not None and size <= 65 and 0 <= scale <= 30:
            return m(f"DECIMAL({size},{scale})", fidelity, nan or loose)
        if size is not None and scale is None and size <= 65:
            return m(f"DECIMAL({size},0)", fidelity, nan or loose)
        return m("DECIMAL(65,30)", APPROXIMATED, _join("no precision that MySQL can declare: DECIMAL(65,30) holds 35 integer and 30 fractional digits; other values are stored as NULL", nan))
    if logical == "boolean":
        return m("BOOLEAN", EXACT, _join("MySQL's BOOLEAN is TINYINT(1): true and false are stored as 1 and 0", loose))
    if logical == "enum" and options.get("labels"):
        problem = enum_label_problem([str(label) for label in options["labels"]])
        if problem:
            length = max(1, *(len(str(label)) for label in options["labels"]))
            target = f"VARCHAR({length})" if length <= MAX_VARCHAR else "LONGTEXT"
            return m(target, APPROXIMATED, f"{problem}: stored as {target} text (every label kept exactly, but not held to the labels)")
        labels = ",".join("'" + str(label).replace("'", "''") + "'" for label in options["labels"])
        return m(f"ENUM({labels})")
    if logical in ("text", "enum"):
        if logical == "enum":
            return m("VARCHAR(255)", APPROXIMATED, "the enum's labels are unknown: stored as VARCHAR(255) text")
        note = "CHAR(n) becomes VARCHAR(n) so that trailing spaces are kept" if options.get("fixed") or declared.startswith(("char", "character(", "nchar", "bpchar")) else ""
        if engine == "sqlite" and size:
            note = SQLITE_LENGTHS_NOTE
        if size and size <= MAX_VARCHAR:
            return m(f"VARCHAR({size})", EXACT, note)
        if in_key:
            return m(f"VARCHAR({KEY_VARCHAR})", APPROXIMATED, _key_note(column, f"VARCHAR({KEY_VARCHAR})", KEY_VARCHAR, "characters", "key"))
        return m("LONGTEXT", EXACT, note)
    if logical == "bytes":
        if size and size <= MAX_VARBINARY and engine != "sqlite":
            return m(f"VARBINARY({size})")
        if in_key:
            return m(f"VARBINARY({KEY_VARBINARY})", APPROXIMATED, _key_note(column, f"VARBINARY({KEY_VARBINARY})", KEY_VARBINARY, "bytes", "key"))
        return m("LONGBLOB")
    if engine == "postgresql" and logical in ("date", "datetime", "datetime_tz"):
        target, high, low = {
            "date": ("DATE", "9999-12-31", "0001-01-01"),
            "datetime": ("DATETIME(6)", "9999-12-31 23:59:59.999999", "0001-01-01 00:00:00"),
            "datetime_tz": ("DATETIME(6)", "9999-12-31 23:59:59.999999", "0001-01-01 00:00:00"),
        }[logical]
        utc = "kept as the UTC instant: MySQL has no timestamp with time zone over the full range; " if logical == "datetime_tz" else ""
        return m(target, APPROXIMATED, f"{utc}MySQL has no infinity and no years before 1 or after 9999: infinity and -infinity become {high} and {low}, other values outside are stored as NULL")
    if logical == "date":
        return m("DATE", EXACT, loose)
    if logical == "time":
        return m("TIME(6)", EXACT, loose)
    if logical == "time_tz":
        return m("TIME(6)", APPROXIMATED, "the UTC offset is dropped, the time of day is kept ('23:59:59+14:59' becomes 23:59:59): MySQL has no time with time zone")
    if logical == "datetime":
        return m("DATETIME(6)", EXACT, loose)
    if logical == "datetime_tz":
        return m("DATETIME(6)", APPROXIMATED, "kept as the UTC instant in DATETIME(6): MySQL has no timestamp with time zone over the full range")
    if logical == "interval":
        return m("TIME(6)", APPROXIMATED, "MySQL TIME holds durations within ±838:59:59 without months: such intervals are converted, others are stored as NULL")
    if logical == "uuid":
        return m("CHAR(36)", EXACT, _join("kept as its canonical text", loose))
    if logical == "json":
        if server.mariadb:
            return m("JSON", EXACT, _join("MariaDB keeps the JSON text as it is", loose))
        return m("JSON", APPROXIMATED, "MySQL normalises JSON text (key order, spacing, duplicate keys)")
    if logical == "array":
        element = str(options.get("element_logical_type") or "")
        form = _ARRAY_ELEMENTS.get(element, "strings (PostgreSQL's text of each)")
        return m("JSON", APPROXIMATED, f"MySQL has no arrays: stored as a JSON array (nested for more dimensions, NULL elements as null, elements as JSON {form}; lower bounds other than 1 are not kept)")
    if logical == "any":
        return m("LONGTEXT", APPROXIMATED, "no declared type: every value is stored as text (blobs that are not UTF-8 stop the restore)")
    return m("LONGTEXT", APPROXIMATED, f"no MySQL equivalent of {column.declared_type or logical}: kept as the source engine's text form")


_ARRAY_ELEMENTS = {
    "integer": "numbers", "float": "numbers (NaN and ±Infinity as strings)", "decimal": "numbers (NaN as a string)",
    "boolean": "true and false", "json": "JSON values",
}
#: The longest ENUM label MySQL takes, in characters.
MAX_ENUM_LABEL = 255


def enum_label_problem(labels: list[str]) -> str:
    """Why MySQL cannot declare an ENUM of exactly these labels ('' when it can)."""
    trailing = [label for label in labels if label != label.rstrip(" ")]
    if trailing:
        stripped = {label.rstrip(" ") for label in trailing}
        clash = [label for label in labels if label in stripped]
        label = trailing[0]
        then = f", the same as the label {clash[0]!r}" if clash else ""
        return f"MySQL removes trailing spaces from ENUM labels ({label!r} would become {label.rstrip(' ')!r}{then})"
    if any(len(label) > MAX_ENUM_LABEL for label in labels):
        return f"an ENUM label is longer than MySQL's {MAX_ENUM_LABEL} characters"
    return ""


def _key_note(column: ColumnSchema, target: str, length: int, unit: str, key: str) -> str:
    if column.nullable and not column.primary_key:
        then = "a longer value is stored as NULL"
    else:
        then = "a longer value stops the restore"
    return f"a key column needs a bounded length in MySQL: {target}, so that the {key} fits MySQL's {KEY_BYTES}-byte limit; {then}"


_FIXED_BYTES = {
    "TINYINT": 1, "BOOLEAN": 1, "SMALLINT": 2, "MEDIUMINT": 3, "INT": 4, "BIGINT": 8, "BIGINT UNSIGNED": 8,
    "FLOAT": 4, "DOUBLE": 8, "DATE": 3, "TIME(6)": 6, "DATETIME(6)": 8, "CHAR(36)": 36, "YEAR": 1,
}
_VARIABLE = re.compile(r"^(VARCHAR|VARBINARY)\((\d+)\)$")
_UNBOUNDED = ("LONGTEXT", "LONGBLOB", "JSON")


def key_part_bytes(target: str) -> tuple[str, int | None]:
    """How a column of MySQL type ``target`` counts in an index key: ("text" or "bytes", its bytes
    (None: unbounded)) for text and binary strings, ("fixed", bytes) for the others."""
    match = _VARIABLE.match(target)
    if match:
        kind = "text" if match.group(1) == "VARCHAR" else "bytes"
        return kind, int(match.group(2)) * (4 if kind == "text" else 1)
    if target in _UNBOUNDED:
        return ("bytes" if target == "LONGBLOB" else "text"), None
    if target.startswith("DECIMAL("):
        precision, scale = (int(x) for x in _SIZE.search(target).groups())  # type: ignore[union-attr]
        return "fixed", _decimal_bytes(precision - scale) + _decimal_bytes(scale)
    if target.startswith("ENUM("):
        return "fixed", 2
    return "fixed", _FIXED_BYTES.get(target, 8)


def _decimal_bytes(digits: int) -> int:
    return digits // 9 * 4 + (0, 1, 1, 2, 2, 3, 3, 4, 4)[digits % 9]


def share_key_bytes(parts: list[tuple[str, int | None]], budget: int = KEY_BYTES) -> list[int | None]:
    """The bytes each text or binary part of one key may take so that the whole key fits
    ``budget``: parts that need less keep what they need, the others share the rest equally
    (text in whole utf8mb4 characters). ``parts``: :func:`key_part_bytes` of each column; the
    answer is None for fixed parts."""
    remaining = budget - sum(size or 0 for kind, size in parts if kind == "fixed")
    flexible = sorted((index for index, (kind, _) in enumerate(parts) if kind != "fixed"), key=lambda i: (parts[i][1] is None, parts[i][1] or 0))
    shares: list[int | None] = [None] * len(parts)
    for order, index in enumerate(flexible):
        kind, wanted = parts[index]
        share = max(0, remaining) // (len(flexible) - order)
        given = share if wanted is None else min(wanted, share)
        if kind == "text":
            given -= given % 4
        shares[index] = given
        remaining -= given
    return shares


def map_tables(tables: Iterable[TableSchema], objects: tuple[SchemaObject, ...], engine: str, server: TargetServer) -> list[ColumnMapping]:
    """The fidelity report: each column's MySQL type. Text and binary columns of a key get a
    bounded type, sized so that every key of the table fits MySQL's 3072-byte limit."""
    mappings = []
    grouped = by_table(objects)
    for table in tables:
        constraints = table_constraints(table, grouped.get(table.name, ()), parse_index)
        mappings.extend(same_names(fit_keys(table, constraints, engine, server)))
    return mappings


def same_names(mappings: list[ColumnMapping]) -> list[ColumnMapping]:
    """A column whose name differs from an earlier one's only by case is impossible: MySQL
    column names ignore case, so the two would be one column (renaming would change the rows'
    meaning for whoever reads them by name)."""
    seen: dict[str, str] = {}
    result = []
    for item in mappings:
        key = item.column.lower()
        if item.target_type != NOT_KEPT and key in seen:
            item = attrs.evolve(item, fidelity=IMPOSSIBLE, note=(
                f"MySQL column names ignore case: {item.column!r} and {seen[key]!r} of {item.table} would be the same column"
            ))
        elif item.target_type != NOT_KEPT:
            seen[key] = item.column
        result.append(item)
    return result


def fit_keys(table: TableSchema, constraints: Constraints, engine: str, server: TargetServer) -> list[ColumnMapping]:
    """The columns of one table, the text and binary ones of its keys bounded to fit them."""
    columns = {column.name: column for column in table.columns if not is_dropped(table, column)}
    mapped = {column.name: map_column(table, column, engine, server, False) for column in table.columns}
    limits: dict[str, tuple[int, str]] = {}  # column -> (bytes, the key that sets them)
    for label, key in constraints.full_keys():
        if not key or not all(name in columns for name in key):
            continue
        parts = [key_part_bytes(mapped[name].target_type) for name in key]
        for name, share, (kind, wanted) in zip(key, share_key_bytes(parts), parts):
            if share is not None and (wanted is None or share < wanted) and share < limits.get(name, (1 << 62, ""))[0]:
                names = ", ".join(key)
                limits[name] = (share, f"{label} ({names})")
    result = []
    for column in table.columns:
        mapping = mapped[column.name]
        if column.name in limits:
            size, key = limits[column.name]
            kind, _ = key_part_bytes(mapping.target_type)
            length = size // 4 if kind == "text" else size
            target = f"VARCHAR({length})" if kind == "text" else f"VARBINARY({length})"
            note = _key_note(column, target, length, "characters" if kind == "text" else "bytes", key)
            mapping = attrs.evolve(mapping, target_type=target, fidelity=APPROXIMATED, note=note)
        result.append(mapping)
    return result


def _default_sql(column: ColumnSchema, target_type: str, mariadb: bool) -> str | None | bool:
    """A literal default in MySQL form; None: no default; False: one that cannot be carried over."""
    default = column.default
    if default is None or default.strip().upper() == "NULL":
        return None
    text = default.strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    if not mariadb and target_type.split("(")[0] in ("LONGTEXT", "LONGBLOB", "JSON"):
        return False
    if _NUMBER.match(text):
        return text
    match = _STRING.match(text)
    if match:
        inner = match.group(1)[1:-1].replace("''", "'")
        return "'" + inner.replace("\\", "\\\\").replace("'", "''") + "'"
    if text.upper() in ("TRUE", "FALSE") and target_type == "BOOLEAN":
        return text.upper()
    return False


def auto_increment_column(table: TableSchema, engine: str) -> str | None:
    """The column that counts up by itself in the source (serial, identity, SQLite's rowid alias)."""
    keys = [column for column in table.columns if column.primary_key and not is_dropped(table, column)]
    if len(keys) != 1 or keys[0].logical_type != "integer":
        return None
    column = keys[0]
    default = (column.default or "").lower()
    if "nextval(" in default or column.options.get("identity") or column.options.get("auto_increment"):
        return column.name
    if engine == "sqlite" and column.declared_type.strip().upper() == "INTEGER":
        return column.name
    return None


def next_auto_increment(table: TableSchema, objects: Iterable[SchemaObject], engine: str) -> int | None:
    """The next key the source would have handed out for the AUTO_INCREMENT column, when it
    kept a high-water mark beyond the rows (SQLite's sqlite_sequence, a PostgreSQL sequence):
    keys given out once, even of rows deleted since, are not given out again. None: none known
    (MySQL continues after the largest key)."""
    column = auto_increment_column(table, engine)
    if column is None:
        return None
    seq = table.options.get("autoincrement_seq")
    if isinstance(seq, int) and not isinstance(seq, bool):
        return seq + 1 if seq >= 0 else None
    mark = sequence_high_water(objects, table, column)
    return mark[0] + 1 if mark is not None and mark[0] >= 0 else None


def create_table_sql(table: TableSchema, mappings: dict[str, ColumnMapping], engine: str, server: TargetServer, skipped: list[str]) -> str:
    """``CREATE TABLE`` for a table of another engine, from its column mappings."""
    lines = []
    auto = auto_increment_column(table, engine)
    for column in table.columns:
        if is_dropped(table, column):
            continue
        target = mappings[column.name].target_type
        parts = [quote(column.name), target]
        if target == "CHAR(36)":
            parts.append("CHARACTER SET ascii COLLATE ascii_bin")
        if not column.nullable or column.primary_key or is_hidden(column):
            parts.append("NOT NULL")
        default = None if column.name == auto else _default_sql(column, target, server.mariadb)
        if default is False:
            skipped.append(f"default of {table.qualified_name}.{column.name} ({column.default}): not a literal MySQL can take")
        elif default is not None:
            parts.append(f"DEFAULT {default}")
        if column.name == auto:
            parts.append("AUTO_INCREMENT")
        lines.append("  " + " ".join(parts))
    primary = sorted((column for column in table.columns if column.primary_key), key=lambda c: c.primary_key)
    if primary:
        lines.append(f"  PRIMARY KEY ({', '.join(quote(column.name) for column in primary)})")
    body = ",\n".join(lines)
    return f"CREATE TABLE {quote(table.name)} (\n{body}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={server.collation}"


def parse_index(obj: SchemaObject) -> tuple[list[str], bool] | None:
    """(columns, unique) of an index of another engine; None when it is not a plain column index."""
    options = obj.options
    if options.get("columns") and all(isinstance(name, str) for name in options["columns"]):
        if options.get("index_type", "BTREE") not in ("BTREE", "HASH"):
            return None
        return list(options["columns"]), bool(options.get("unique"))
    match = _INDEX_SQL.match(obj.sql or "")
    if match is None:
        return None
    using = (match.group(4) or "btree").lower()
    columns_text = match.group(5)
    if using not in ("btree", "hash") or re.search(r"\)\s*WHERE\b", (obj.sql or ""), re.IGNORECASE) or re.search(r"\bWHERE\b", columns_text, re.IGNORECASE):
        return None
    columns = _split_names(columns_text)
    if columns is None:
        return None
    return columns, bool(match.group(1))


def descending_columns(obj: SchemaObject) -> set[str]:
    """The columns an index of another engine orders descending (``rating DESC``)."""
    match = _INDEX_SQL.match(obj.sql or "")
    if match is None:
        return set()
    found = set()
    for item in match.group(5).split(","):
        item = re.sub(r"\s+NULLS\s+(?:FIRST|LAST)\s*$", "", item.strip(), flags=re.IGNORECASE)
        descending = re.search(r"\s+DESC\s*$", item, re.IGNORECASE)
        if descending:
            found.add(unquote(re.sub(r"\s+COLLATE\s+\S+\s*$", "", item[: descending.start()].strip(), flags=re.IGNORECASE)))
    return found


def parse_foreign_keys(sql: str) -> list[dict[str, Any]]:
    """The foreign keys written in another engine's ``CREATE TABLE`` (table and column constraints)."""
    return [
        {"name": key.get("name"), **{k: key[k] for k in ("columns", "referenced_table", "referenced_columns", "on_delete", "on_update")}}
        for key in parse_create_table(sql).get("foreign_keys", [])
    ]


def json_text(value: Any) -> str:
    """A decoded array as JSON text (for MySQL, which has no arrays)."""
    return orjson.dumps(value, default=_json_default).decode()


def _json_default(value: Any) -> Any:
    text = getattr(value, "text", None)
    if isinstance(text, str):
        return orjson.Fragment(text)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


# -- values of another engine ----------------------------------------------------------------------


class Unfit(ValueError):
    """A value the MySQL column cannot hold; the message says why."""


_INTERVAL_UNIT = re.compile(r"(?<![\w.])([+-]?\d+(?:\.\d+)?)\s+(years?|mons?|months?|days?|hours?|mins?|minutes?|secs?|seconds?)\b", re.IGNORECASE)
_INTERVAL_TIME = re.compile(r"(?<![\w:])([+-])?(\d+):(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?(?![\w:])")
_ISO_INTERVAL = re.compile(
    r"^(-)?P(?:(-?\d+)Y)?(?:(-?\d+)M)?(?:(-?\d+)W)?(?:(-?\d+)D)?(?:T(?:(-?\d+)H)?(?:(-?\d+)M)?(?:(-?\d+(?:\.\d+)?)S)?)?$"
)


def parse_interval(text: str) -> tuple[int, datetime.timedelta] | None:
    """PostgreSQL's interval text (the ``postgres``, ``postgres_verbose`` or ``iso_8601`` style) as
    (months, the rest as a duration); None when it is not an interval."""
    text = text.strip()
    iso = _ISO_INTERVAL.match(text)
    if iso and text not in ("P", "-P", "PT"):
        sign = -1 if iso.group(1) else 1
        years, months, weeks, days, hours, minutes = (int(g or 0) for g in iso.groups()[1:7])
        seconds = decimal.Decimal(iso.group(8) or 0)
        duration = datetime.timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, microseconds=int(seconds * 1000000))
        return sign * (years * 12 + months), duration * sign
    body = text[1:].strip() if text.startswith("@") else text
    negate = body.lower().endswith(" ago")
    if negate:
        body = body[: -len(" ago")]
    months = 0
    duration = datetime.timedelta()
    consumed = _INTERVAL_UNIT.sub("", body)
    for amount, unit in _INTERVAL_UNIT.findall(body):
        number, unit = decimal.Decimal(amount), unit.lower()
        if unit.startswith(("year", "mon")):
            if number != number.to_integral_value():
                return None
            months += int(number) * (12 if unit.startswith("year") else 1)
            continue
        scale = {"d": 86400, "h": 3600, "m": 60, "s": 1}[unit[0]]
        duration += datetime.timedelta(microseconds=int(number * scale * 1000000))
    time = _INTERVAL_TIME.search(consumed)
    if time:
        sign = -1 if time.group(1) == "-" else 1
        seconds = decimal.Decimal(time.group(4) or 0)
        duration += sign * datetime.timedelta(hours=int(time.group(2)), minutes=int(time.group(3)), microseconds=int(seconds * 1000000))
        consumed = consumed[: time.start()] + consumed[time.end():]
    if consumed.strip() or (not time and not _INTERVAL_UNIT.search(body)):
        return None
    if negate:
        months, duration = -months, -duration
    return months, duration


def _as_time(limit: datetime.timedelta) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, str):
            parsed = parse_interval(value)
            if parsed is None:
                raise Unfit(f"{value!r} is not an interval")
            months, duration = parsed
            if months:
                raise Unfit(f"the interval {value!r} counts months, which MySQL TIME cannot")
            value = duration
        if isinstance(value, datetime.timedelta) and not -limit <= value <= limit:
            raise Unfit(f"the interval {value} is beyond MySQL TIME's ±838:59:59")
        return value

    return convert


_HIGHEST = {"date": datetime.date(9999, 12, 31), "datetime": datetime.datetime(9999, 12, 31, 23, 59, 59, 999999)}
_LOWEST = {"date": datetime.date(1, 1, 1), "datetime": datetime.datetime(1, 1, 1)}


def _as_date(kind: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, str):
            word = value.strip().lower()
            if word == "infinity":
                return _HIGHEST[kind]
            if word == "-infinity":
                return _LOWEST[kind]
            raise Unfit(f"{value!r} is outside the years 1-9999 of MySQL's {'DATE' if kind == 'date' else 'DATETIME'}")
        return value

    return convert


def _as_float(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise Unfit(f"{value} has no MySQL form")
    return value


def _as_single(value: Any) -> Any:
    """A single-precision float, read back as the double of its shortest text, rounded to the
    single it was (3.4028235e38 is FLT_MAX, which the double 3.4028235e38 is slightly above)."""
    value = _as_float(value)
    if isinstance(value, float):
        try:
            return struct.unpack("<f", struct.pack("<f", value))[0]
        except OverflowError:
            raise Unfit(f"{value} is beyond the range of MySQL's FLOAT") from None
    return value


_TIME_TZ = re.compile(r"^\s*(\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)\s*(?:[+-]\d{1,2}(?::?\d{2}){0,2}|Z)?\s*$", re.IGNORECASE)


def _as_time_of_day(value: Any) -> Any:
    """A time with time zone as the time of day, its UTC offset dropped."""
    if isinstance(value, datetime.time):
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        match = _TIME_TZ.match(value)
        if match is None:
            raise Unfit(f"{value!r} is not a time of day")
        return match.group(1)
    return value


def _as_decimal(value: Any) -> Any:
    if isinstance(value, decimal.Decimal) and not value.is_finite():
        raise Unfit(f"{value} has no MySQL form")
    return _as_float(value)


#: the range of each MySQL integer type a restore creates
_INTEGER_RANGES = {
    "TINYINT": (-(2**7), 2**7 - 1), "BOOLEAN": (-(2**7), 2**7 - 1), "SMALLINT": (-(2**15), 2**15 - 1),
    "MEDIUMINT": (-(2**23), 2**23 - 1), "INT": (-(2**31), 2**31 - 1), "BIGINT": (-(2**63), 2**63 - 1), "BIGINT UNSIGNED": (0, 2**64 - 1),
}


def _as_integer(target: str) -> Callable[[Any], Any]:
    """MySQL rounds a fraction into an integer column without a word even in strict mode (1.7
    becomes 2) and clamps what is out of range: such a value is unfit, not quietly changed."""
    low, high = _INTEGER_RANGES[target]

    def convert(value: Any) -> Any:
        if type(value) is bool:
            return int(value)
        if isinstance(value, (float, decimal.Decimal)):
            try:
                whole = int(value)
            except (ValueError, OverflowError):  # NaN, ±Infinity
                raise Unfit(f"{value} is not a whole number") from None
            if whole != value:
                raise Unfit(f"{value} is not a whole number")
            value = whole
        if isinstance(value, int) and not low <= value <= high:
            raise Unfit(f"{value} is beyond the range of {target}")
        return value

    return convert


def _as_decimal_of(precision: int, scale: int) -> Callable[[Any], Any]:
    """MySQL rounds a value with more fractional digits than DECIMAL(p,s) holds (1.239 becomes
    1.24) with only a note, even in strict mode: such a value is unfit, not quietly changed."""
    whole_digits = precision - scale

    def convert(value: Any) -> Any:
        value = _as_decimal(value)
        if isinstance(value, (bool, str)) or value is None:
            return value  # text is the server's to judge; it refuses what is not a number
        number = value if isinstance(value, decimal.Decimal) else decimal.Decimal(repr(value) if isinstance(value, float) else value)
        # by the digits alone: arithmetic would round to the context's 28 digits
        _, digits, exponent = number.as_tuple()
        assert isinstance(exponent, int)  # finite: _as_decimal refused the rest
        kept = list(digits)
        while len(kept) > 1 and kept[-1] == 0 and exponent < -scale:  # 0.5000 is 0.5
            kept.pop()
            exponent += 1
        if any(kept) and exponent < -scale:
            raise Unfit(f"{number} has more than {scale} fractional digits (DECIMAL({precision},{scale}))")
        if any(kept) and len(kept) + exponent > whole_digits:
            raise Unfit(f"{number} is beyond the range of DECIMAL({precision},{scale})")
        return value

    return convert


def _as_json(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json_text(value)
    return value


def _as_json_array(element: str) -> Callable[[Any], Any]:
    """PostgreSQL's array text (more dimensions, other bounds or element types) as a JSON array."""

    def convert(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(("{", "[")):
            try:
                return json_text(array_from_text(value, element))
            except ArrayTextError:
                raise Unfit(f"{value[:40]!r} is not a PostgreSQL array") from None
        return _as_json(value)

    return convert


def value_converter(column: ColumnSchema, target: str, engine: str, server: TargetServer) -> Callable[[Any], Any] | None:
    """How a decoded value of another engine becomes one for a MySQL column of type ``target``
    (raising :class:`Unfit` for one the column cannot hold); None: as it is."""
    logical = column.logical_type
    if logical == "array" and engine == "postgresql":
        return _as_json_array(str(column.options.get("element_logical_type") or ""))
    if logical in ("json", "array"):
        return _as_json
    if logical == "time_tz":
        return _as_time_of_day
    if target == "TIME(6)" and logical == "interval":
        return _as_time(TIME_LIMIT + datetime.timedelta(microseconds=999999) if server.mariadb else TIME_LIMIT)
    if engine == "postgresql" and logical in ("date", "datetime", "datetime_tz"):
        return _as_date("date" if logical == "date" else "datetime")
    if target == "FLOAT":
        return _as_single
    if target == "DOUBLE":
        return _as_float
    decimal_type = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", target)
    if decimal_type is not None:
        return _as_decimal_of(int(decimal_type.group(1)), int(decimal_type.group(2)))
    if target.startswith("DECIMAL"):
        return _as_decimal
    if target in _INTEGER_RANGES:
        return _as_integer(target)
    return None
