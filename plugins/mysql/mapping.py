"""Cross-engine restore into MySQL/MariaDB: the nearest MySQL type of each portable logical type,
how faithful it is, and the DDL of the tables, keys and indexes that follow from it.

Text is stored as utf8mb4 with a binary collation (no-pad where the server has one), so that
values compare and stay unique as they did in the source engines, which compare text by bytes.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

import attrs
import orjson

from unibackup.models import ColumnMapping, ColumnSchema, SchemaObject, TableSchema

from .connection import quote

EXACT, APPROXIMATED, IMPOSSIBLE = "exact", "approximated", "impossible"
MAX_VARCHAR = 16383  # utf8mb4 characters in a 65,535-byte row
KEY_VARCHAR = 768  # utf8mb4 characters in a 3,072-byte index key
MAX_VARBINARY = 65000
KEY_VARBINARY = 3072
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
_FOREIGN_SQL = re.compile(
    rf"(?:CONSTRAINT\s+({_NAME})\s+)?FOREIGN\s+KEY\s*\(([^)]*)\)\s*REFERENCES\s+({_QUALIFIED})\s*\(([^)]*)\)"
    r"((?:\s+ON\s+(?:DELETE|UPDATE)\s+(?:CASCADE|SET\s+NULL|SET\s+DEFAULT|RESTRICT|NO\s+ACTION))*)",
    re.IGNORECASE,
)
_UNIQUE_SQL = re.compile(rf"ADD\s+CONSTRAINT\s+({_NAME})\s+UNIQUE\s*\(([^)]*)\)", re.IGNORECASE)
_ACTION = re.compile(r"ON\s+(DELETE|UPDATE)\s+(CASCADE|SET\s+NULL|SET\s+DEFAULT|RESTRICT|NO\s+ACTION)", re.IGNORECASE)


@attrs.frozen
class TargetServer:
    """What the target server offers that changes the mapping."""

    mariadb: bool
    collation: str  # binary collation for text


def unquote(name: str) -> str:
    """An identifier as written by SQLite or PostgreSQL, without its quotes or schema."""
    parts = re.findall(_NAME, name.strip())
    last = parts[-1] if parts else name.strip()
    if last[:1] in ('"', "`"):
        return last[1:-1].replace(last[0] * 2, last[0])
    if last[:1] == "[":
        return last[1:-1]
    return last


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


def map_column(table: TableSchema, column: ColumnSchema, engine: str, server: TargetServer, in_key: bool) -> ColumnMapping:
    """The MySQL type of one column from another engine, and how faithful it is."""
    logical = column.logical_type
    declared = column.declared_type.strip().lower()
    size, scale = _size(column)
    options = column.options
    m = lambda target, fidelity=EXACT, note="": _mapping(table, column, target, fidelity, note)  # noqa: E731
    if is_hidden(column):
        if is_dropped(table, column):
            return m(NOT_KEPT, EXACT, f"{engine}'s internal row identifier; the primary key identifies the rows, its values are not kept")
        return m("BIGINT", EXACT, f"{engine}'s internal row identifier, kept as a column (the table has no primary key)")
    if logical == "integer":
        unsigned = bool(options.get("unsigned"))
        bits = int(options.get("bits") or options.get("bit_length") or 64)
        if bits >= 64 and unsigned:
            return m("BIGINT UNSIGNED")
        if engine == "postgresql" and declared in _PG_INTEGERS:
            return m(_PG_INTEGERS[declared])
        return m("BIGINT")
    if logical == "float":
        single = options.get("single") or (engine == "postgresql" and declared in _PG_SINGLE)
        return m("FLOAT" if single else "DOUBLE", EXACT, "NaN and ±Infinity have no MySQL form: a row holding one stops the restore")
    if logical == "decimal":
        if size is not None and scale is not None and size <= 65 and 0 <= scale <= 30:
            return m(f"DECIMAL({size},{scale})")
        if size is not None and scale is None and size <= 65:
            return m(f"DECIMAL({size},0)")
        return m("DECIMAL(65,30)", APPROXIMATED, "no precision that MySQL can declare: DECIMAL(65,30) holds 35 integer and 30 fractional digits; other values stop the restore")
    if logical == "boolean":
        return m("BOOLEAN", EXACT, "MySQL's BOOLEAN is TINYINT(1): true and false are stored as 1 and 0")
    if logical == "enum" and options.get("labels"):
        labels = ",".join("'" + str(label).replace("'", "''") + "'" for label in options["labels"])
        return m(f"ENUM({labels})")
    if logical in ("text", "enum"):
        if logical == "enum":
            return m("VARCHAR(255)", APPROXIMATED, "the enum's labels are unknown: stored as VARCHAR(255) text")
        note = "CHAR(n) becomes VARCHAR(n) so that trailing spaces are kept" if options.get("fixed") or declared.startswith(("char", "character(", "nchar", "bpchar")) else ""
        if engine == "sqlite" and size:
            note = "SQLite does not enforce declared lengths: a longer value stops the restore"
        if size and size <= MAX_VARCHAR:
            return m(f"VARCHAR({size})", EXACT, note)
        if in_key:
            return m(f"VARCHAR({KEY_VARCHAR})", APPROXIMATED, f"a key column needs a bounded length in MySQL: values longer than {KEY_VARCHAR} characters stop the restore")
        return m("LONGTEXT", EXACT, note)
    if logical == "bytes":
        if size and size <= MAX_VARBINARY and engine != "sqlite":
            return m(f"VARBINARY({size})")
        if in_key:
            return m(f"VARBINARY({KEY_VARBINARY})", APPROXIMATED, f"a key column needs a bounded length in MySQL: values longer than {KEY_VARBINARY} bytes stop the restore")
        return m("LONGBLOB")
    if logical == "date":
        return m("DATE", EXACT, "years 0001-9999 only: BC dates and infinity stop the restore" if engine == "postgresql" else "")
    if logical == "time":
        return m("TIME(6)")
    if logical == "time_tz":
        return m("TIME(6)", APPROXIMATED, "the UTC offset is dropped: MySQL has no time with time zone")
    if logical == "datetime":
        return m("DATETIME(6)")
    if logical == "datetime_tz":
        return m("DATETIME(6)", APPROXIMATED, "kept as the UTC instant in DATETIME(6): MySQL has no timestamp with time zone over the full range")
    if logical == "interval":
        return m("TIME(6)", APPROXIMATED, "MySQL TIME holds durations within ±838:59:59 without months: other values stop the restore")
    if logical == "uuid":
        return m("CHAR(36)", EXACT, "kept as its canonical text")
    if logical == "json":
        if server.mariadb:
            return m("JSON", EXACT, "MariaDB keeps the JSON text as it is")
        return m("JSON", APPROXIMATED, "MySQL normalises JSON text (key order, spacing, duplicate keys)")
    if logical == "array":
        return m("JSON", APPROXIMATED, "MySQL has no arrays: stored as a JSON array")
    if logical == "any":
        return m("LONGTEXT", APPROXIMATED, "no declared type: every value is stored as text (blobs that are not UTF-8 stop the restore)")
    return m("LONGTEXT", APPROXIMATED, f"no MySQL equivalent of {column.declared_type or logical}: kept as the source engine's text form")


def key_columns(table: TableSchema, objects: Iterable[SchemaObject]) -> set[str]:
    """Columns that take part in the primary key or in an index we may create."""
    names = {column.name for column in table.columns if column.primary_key}
    for obj in objects:
        if obj.kind == "index" and unquote(obj.table or "") == table.name:
            parsed = parse_index(obj)
            if parsed is not None and parsed[1]:
                names.update(parsed[0])
    return names


def map_tables(tables: Iterable[TableSchema], objects: tuple[SchemaObject, ...], engine: str, server: TargetServer) -> list[ColumnMapping]:
    mappings = []
    for table in tables:
        keys = key_columns(table, objects)
        for column in table.columns:
            mappings.append(map_column(table, column, engine, server, column.name in keys))
    return mappings


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


def parse_foreign_keys(sql: str) -> list[dict[str, Any]]:
    """The table-level foreign keys written in another engine's DDL."""
    keys = []
    for match in _FOREIGN_SQL.finditer(sql or ""):
        columns = _split_names(match.group(2))
        referenced = _split_names(match.group(4))
        if not columns or not referenced:
            continue
        actions = {kind.upper(): " ".join(action.upper().split()) for kind, action in _ACTION.findall(match.group(5) or "")}
        keys.append({
            "name": unquote(match.group(1)) if match.group(1) else None,
            "columns": columns,
            "referenced_table": unquote(match.group(3)),
            "referenced_columns": referenced,
            "on_delete": actions.get("DELETE"),
            "on_update": actions.get("UPDATE"),
        })
    return keys


def foreign_key_clause(key: dict[str, Any]) -> str:
    clause = ""
    if key.get("name"):
        clause = f"CONSTRAINT {quote(key['name'])} "
    clause += (
        f"FOREIGN KEY ({', '.join(quote(c) for c in key['columns'])}) REFERENCES {quote(key['referenced_table'])} "
        f"({', '.join(quote(c) for c in key['referenced_columns'])})"
    )
    for kind in ("on_delete", "on_update"):
        action = key.get(kind)
        if action and action.upper() != "NO ACTION":
            clause += f" ON {kind[3:].upper()} {action.upper()}"
    return clause


def unique_constraint(obj: SchemaObject) -> tuple[str, list[str]] | None:
    match = _UNIQUE_SQL.search(obj.sql or "")
    if match is None:
        return None
    columns = _split_names(match.group(2))
    return (unquote(match.group(1)), columns) if columns else None


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
