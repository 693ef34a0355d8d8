"""Restoring backups of other engines into SQLite: type mapping, DDL and value conversion.

Each column's portable logical type picks the nearest SQLite type. The fidelity report says,
column by column, whether the values come back exact or approximated (and how). Nothing here
runs the other engine's SQL: plain indexes, UNIQUE and FOREIGN KEY constraints and literal
defaults are recreated in SQLite's words from what the schema says of them; views, triggers,
functions, CHECKs and every other expression are listed as skipped.
"""

from __future__ import annotations

import datetime
import decimal
import re
import uuid
from typing import Any, Callable

import attrs
import orjson

from unibackup.arrays import ArrayTextError, array_from_text
from unibackup.models import ColumnMapping, ColumnSchema, TableSchema, sequence_high_water
from unibackup.values import JsonText, RawText, Tagged, duration_text

_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)

#: logical type -> (SQLite declared type, fidelity, note)
_MAPPING: dict[str, tuple[str, str, str]] = {
    "integer": ("INTEGER", "exact", ""),
    "float": ("REAL", "exact", "NaN, which SQLite cannot store, is refused (NULL with --allow-lossy); -0.0 reads back as 0.0, equal to it"),
    "decimal": ("NUMERIC", "approximated", "stored as INTEGER or REAL (binary floating point, about 15 significant digits)"),
    "boolean": ("BOOLEAN", "exact", "stored as 0/1"),
    "text": ("TEXT", "exact", ""),
    "bytes": ("BLOB", "exact", ""),
    "date": ("DATE", "exact", "ISO 8601 text (a date outside years 1-9999 or infinity as its engine writes it)"),
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


#: namespaces whose tables keep their bare names in SQLite
DEFAULT_NAMESPACES = frozenset({"public"})


def sqlite_table_name(table: TableSchema, default_namespaces: frozenset[str] = DEFAULT_NAMESPACES) -> str:
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
            # a double holds every number of at most 15 significant digits: equal as a number
            target, fidelity, note = "NUMERIC", "exact", f"stored as REAL, which holds every value of {precision} digits as the same number (1.10 reads back as 1.1)"
        note = "; ".join(part for part in (note, "NaN, which SQLite cannot store, is refused (NULL with --allow-lossy)") if part)
    return ColumnMapping(
        table=table.qualified_name,
        column=column.name,
        source_type=column.declared_type,
        logical_type=column.logical_type,
        target_type=target or "(none)",
        fidelity=fidelity,
        note=note,
    )


def refuse_name_collisions(tables: tuple[TableSchema, ...], mappings: list[ColumnMapping]) -> list[ColumnMapping]:
    """SQLite compares table and column names without regard to case: tables ``T`` and ``t`` (or
    ``sales.t`` of two namespaces made alike), or columns ``A`` and ``a``, cannot both exist. The
    second of each is impossible, so that the plan refuses it before anything is written."""
    clashes: dict[tuple[str, str | None], str] = {}  # (table, column or None for all) -> why
    seen_tables: dict[str, TableSchema] = {}
    for table in tables:
        key = sqlite_table_name(table).lower()
        first = seen_tables.setdefault(key, table)
        if first is not table:
            clashes[(table.qualified_name, None)] = (
                f"the table's SQLite name {sqlite_table_name(table)!r} is the name of {first.qualified_name!r} (SQLite ignores case in names)"
            )
            continue
        seen_columns: dict[str, str] = {}
        for column in table.columns:
            other = seen_columns.setdefault(column.name.lower(), column.name)
            if other != column.name:
                clashes[(table.qualified_name, column.name)] = f"the column's name is the name of column {other!r} (SQLite ignores case in names)"
    if not clashes:
        return mappings
    return [
        attrs.evolve(m, fidelity="impossible", note=clashes.get((m.table, m.column)) or clashes[(m.table, None)])
        if (m.table, m.column) in clashes or (m.table, None) in clashes
        else m
        for m in mappings
    ]


def create_table_sql(table: TableSchema, mappings: dict[str, ColumnMapping], keys: "ForeignSchema | None" = None) -> str:
    """A CREATE TABLE for ``table`` from its portable schema (no foreign engine SQL is run), with
    the literal defaults and foreign keys of ``keys``."""
    parts = []
    counter = keys.high_water.get((table.namespace, table.name)) if keys else None
    counting = counter.column if counter else None
    for column in table.columns:
        mapping = mappings[column.name]
        declared = mapping.target_type if mapping.target_type != "(none)" else ""
        definition = f"{quote(column.name)} {declared}".rstrip()
        if column.name == counting:
            # SQLite's own counter: keys handed out once (to rows deleted since, too) never again
            definition = f"{quote(column.name)} INTEGER PRIMARY KEY AUTOINCREMENT"
        if not column.nullable:
            definition += " NOT NULL"
        default = keys.defaults.get((table.namespace, table.name, column.name)) if keys else None
        if default is not None:
            definition += f" DEFAULT {default}"
        parts.append(definition)
    primary = sorted((c for c in table.columns if c.primary_key), key=lambda c: c.primary_key)
    if primary and counting is None:
        parts.append("PRIMARY KEY (" + ", ".join(quote(c.name) for c in primary) + ")")
    if keys is not None:
        parts.extend(keys.clauses.get((table.namespace, table.name), ()))
    return f"CREATE TABLE {quote(sqlite_table_name(table))} (\n  " + ",\n  ".join(parts) + "\n)"


def _to_text(value: Any) -> Any:
    if value is None or type(value) in (str, RawText):
        return value
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")  # SQLite's own notation (its date functions read both)
    if isinstance(value, (datetime.date, datetime.time)):
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
        if not value.is_finite():  # ±Infinity: SQLite's REAL holds them (NaN never comes here)
            return float(value)
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


def _array_converter(column: ColumnSchema) -> Callable[[Any], Any]:
    """Arrays become JSON text; one kept in PostgreSQL's notation is read into a JSON array first."""
    element_type = column.options.get("element_logical_type")

    def convert(value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = array_from_text(value, element_type)
            except ArrayTextError:
                return value  # not an array's text after all: kept as it is
        if isinstance(value, list):
            return orjson.dumps(value, default=_json_default).decode()
        return _to_text(value)

    return convert


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
    "any": _identity_unless_special,
}


class NotStorable(Exception):
    """A value SQLite cannot hold, met in a restore that may not approximate."""


def _nan_converter(table: TableSchema, column: ColumnSchema, allow_lossy: bool, lost: dict[str, int], then: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """NaN (a float's, or a PostgreSQL numeric's) has no SQLite form: it stops the restore, or with
    ``allow_lossy`` becomes NULL and is counted in ``lost`` (by qualified column name)."""
    where = f"{table.qualified_name}.{column.name}"

    def convert(value: Any) -> Any:
        if value != value:  # NaN, of a float or a Decimal
            if not allow_lossy:
                raise NotStorable(f"{where} holds NaN, which SQLite cannot store (add --allow-lossy to store NULL)")
            lost[where] = lost.get(where, 0) + 1
            return None
        return then(value) if then is not None else value

    return convert


def lost_values(lost: dict[str, int]) -> list[str]:
    """The skipped lines of the values an --allow-lossy restore stored as NULL."""
    return [f"{count} value{'s' if count != 1 else ''} of {where} stored as NULL (NaN, which SQLite cannot store)" for where, count in lost.items()]


def converters_for(table: TableSchema, allow_lossy: bool = False, lost: dict[str, int] | None = None) -> list[Callable[[Any], Any] | None]:
    """One converter per column (None where the decoded value binds as it is); values stored as
    NULL under ``allow_lossy`` are counted in ``lost``."""
    lost = {} if lost is None else lost
    special = {
        "float": lambda column: _nan_converter(table, column, allow_lossy, lost, None),
        "decimal": lambda column: _nan_converter(table, column, allow_lossy, lost, _to_number),
        "array": _array_converter,
    }
    return [
        special[column.logical_type](column) if column.logical_type in special else _CONVERTERS.get(column.logical_type, _to_text)
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


# -- keys, indexes and defaults of other engines ------------------------------------------------
#
# Another engine's SQL never runs in SQLite. What its schema says in a form that can be read
# without doubt (the column lists of plain indexes, UNIQUE and FOREIGN KEY constraints, literal
# defaults) is recreated in SQLite's own words; everything else is listed as skipped, with why.

_IDENTIFIER = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_QUALIFIED = rf"(?:(?P<namespace>{_IDENTIFIER})\.)?(?P<name>{_IDENTIFIER})"
_PG_INDEX = re.compile(rf"^CREATE (?P<unique>UNIQUE )?INDEX {_IDENTIFIER} ON (?:ONLY )?{_QUALIFIED} USING btree \((?P<columns>[^()]*)\)$")
_PG_KEY_PART = re.compile(rf"^(?P<column>{_IDENTIFIER})(?: (?P<order>ASC|DESC))?(?: NULLS (?:FIRST|LAST))?$")
_PG_CONSTRAINT = re.compile(rf"\bADD CONSTRAINT {_IDENTIFIER} (?P<definition>.*)$", re.DOTALL)
_PG_UNIQUE = re.compile(r"^UNIQUE \((?P<columns>[^()]*)\)$")
_PG_FOREIGN_KEY = re.compile(rf"^FOREIGN KEY \((?P<columns>[^()]*)\) REFERENCES {_QUALIFIED}\((?P<referenced>[^()]*)\)(?P<actions>.*)$")
_FOREIGN_KEY_ACTIONS = re.compile(
    r"^(?: ON (?:DELETE|UPDATE) (?:CASCADE|RESTRICT|SET NULL|SET DEFAULT|NO ACTION)| MATCH (?:FULL|SIMPLE)"
    r"| (?:NOT )?DEFERRABLE(?: INITIALLY (?:DEFERRED|IMMEDIATE))?)*$"
)
#: a key part over a prefix of the values, `name`(n)
_MYSQL_PREFIX = re.compile(r"`(?:[^`]|``)+`\(\d+\)")
#: a key part the MySQL source writes as `name` [(prefix)] DESC
_MYSQL_DESCENDING = re.compile(r"`((?:[^`]|``)+)`(?:\(\d+\))? DESC\b")
_PG_CHECK_NAME = re.compile(rf"CONSTRAINT (?P<name>{_IDENTIFIER}) CHECK \(")
_STRING_DEFAULT = re.compile(r"^'(?P<text>(?:[^'\\]|'')*)'(?:::[A-Za-z][A-Za-z0-9_ .\"\[\]()]*)?$")
_NUMBER_DEFAULT = re.compile(r"^\(?(?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\)?(?:::[A-Za-z][A-Za-z0-9_ ]*)?$")
_RULES = {"CASCADE", "RESTRICT", "SET NULL", "SET DEFAULT", "NO ACTION"}


def _unquote(identifier: str) -> str:
    if identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier


def _pg_column_list(text: str) -> list[tuple[str, str]] | None:
    """``'a, "B c" DESC'`` -> ``[('a', ''), ('B c', ' DESC')]``; None for anything but plain columns."""
    parts = []
    for part in text.split(", "):
        match = _PG_KEY_PART.match(part.strip())
        if match is None:
            return None
        parts.append((_unquote(match.group("column")), f" {match.group('order')}" if match.group("order") else ""))
    return parts or None


@attrs.frozen
class Counter:
    """A counting key that becomes ``INTEGER PRIMARY KEY AUTOINCREMENT``, and the largest value
    the source handed out, for ``sqlite_sequence``."""

    column: str
    handed_out: int
    table: str  # the table's SQLite name


@attrs.frozen
class ForeignSchema:
    """What of another engine's keys, indexes and defaults SQLite gets, and what it does not."""

    #: per table (namespace, name): FOREIGN KEY clauses for its CREATE TABLE
    clauses: dict[tuple[str | None, str], list[str]]
    #: column defaults as SQLite literals, per (namespace, name, column)
    defaults: dict[tuple[str | None, str, str], str]
    #: (index name, CREATE INDEX statement), run after the rows
    indexes: list[tuple[str, str]]
    #: objects recreated or already kept (a primary key): never listed as skipped
    handled: set[int]
    skipped: list[str]
    #: per table (namespace, name): its counting key
    high_water: dict[tuple[str | None, str], Counter] = attrs.Factory(dict)


#: logical types whose literal defaults are written the same way as their values in SQLite
_LITERAL_DEFAULT_TYPES = frozenset({"integer", "float", "decimal", "boolean", "text", "enum", "uuid", "date"})


def _literal_default(default: str, engine: str) -> str | None:
    """A default that is a plain literal, as a SQLite literal; None for any expression."""
    text = default.strip()
    string = _STRING_DEFAULT.match(text)
    if string is not None and (engine != "mysql" or "\\" not in text):  # MySQL strings know backslash escapes
        if engine == "mysql" and "::" in text:
            return None
        return "'" + string.group("text") + "'"
    number = _NUMBER_DEFAULT.match(text)
    if number is not None:
        return number.group("number")
    if text.lower() in ("true", "false"):
        return "1" if text.lower() == "true" else "0"
    return None


def _high_water_mark(table: TableSchema, objects: tuple[Any, ...], engine: str) -> tuple[str, int, Any] | None:
    """The counting key of ``table`` (a single integer primary key fed by a sequence, an identity
    or AUTO_INCREMENT) with the largest value the source handed out, even to rows deleted since,
    and the sequence object that held it (None for MySQL's counter)."""
    keys = [column for column in table.columns if column.primary_key]
    if len(keys) != 1 or keys[0].logical_type != "integer" or _is_unsigned_64(keys[0]):
        return None  # an unsigned 64-bit key may pass SQLite's INTEGER: it keeps no affinity (see map_column)
    column = keys[0]
    if engine == "mysql":
        following = table.options.get("auto_increment")
        if column.options.get("auto_increment") and type(following) is int and following > 1:
            return column.name, following - 1, None
        return None
    mark = sequence_high_water(objects, table, column.name)
    return (column.name, *mark) if mark is not None and mark[0] >= 1 else None


class _Skipped(Exception):
    """An object that is not recreated, for ``reason`` (a foreign key to a table left out, a
    unique key over a prefix)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _translate_object(obj: Any, table: TableSchema, engine: str, restored_table: Any, add_index: Any, add_foreign_key: Any) -> bool:
    """Recreate one index or constraint of ``engine`` in SQLite's words; False when its SQL says
    more than plain columns (an expression, a WHERE, an operator class)."""
    done = False
    if engine == "postgresql":
        if obj.kind == "index":
            match = _PG_INDEX.match(obj.sql or "")
            columns = _pg_column_list(match.group("columns")) if match else None
            done = columns is not None and add_index(obj, table, columns, bool(match.group("unique")))  # type: ignore[union-attr]
        elif obj.kind in ("constraint", "foreign_key"):
            contype = obj.options.get("contype")
            definition_match = _PG_CONSTRAINT.search(obj.sql or "")
            definition = definition_match.group("definition").strip() if definition_match else ""
            if contype == "p":
                done = True  # the primary key is part of the CREATE TABLE
            elif contype == "u":
                unique = _PG_UNIQUE.match(definition)
                columns = _pg_column_list(unique.group("columns")) if unique else None
                done = columns is not None and add_index(obj, table, columns, True)
            elif contype == "f":
                key = _PG_FOREIGN_KEY.match(definition.removesuffix(" NOT VALID"))
                if key is not None and _FOREIGN_KEY_ACTIONS.match(key.group("actions")):
                    columns = _pg_column_list(key.group("columns"))
                    referenced = _pg_column_list(key.group("referenced"))
                    namespace = _unquote(key.group("namespace")) if key.group("namespace") else None
                    target = restored_table(namespace, _unquote(key.group("name")), table.namespace)
                    done = bool(columns and referenced) and add_foreign_key(
                        table, [c for c, _ in columns or ()], target, [c for c, _ in referenced or ()], key.group("actions")
                    )
    elif engine == "mysql":
        options = obj.options
        if obj.kind == "index" and str(options.get("index_type", "BTREE")).upper() in ("BTREE", "HASH") and options.get("columns"):
            descending = set(_MYSQL_DESCENDING.findall(obj.sql or ""))
            columns = [(str(c), " DESC" if str(c).replace("`", "``") in descending else "") for c in options["columns"]]
            if options.get("unique") and _MYSQL_PREFIX.search(obj.sql or ""):
                raise _Skipped("unique over a prefix of the values: SQLite indexes whole values, and a whole-value UNIQUE is weaker")
            done = add_index(obj, table, columns, bool(options.get("unique")))
        elif obj.kind == "foreign_key" and options.get("columns"):
            rules = [str(options.get("on_delete", "NO ACTION")).upper(), str(options.get("on_update", "NO ACTION")).upper()]
            if all(rule in _RULES for rule in rules):
                target = restored_table(options.get("referenced_schema"), str(options.get("referenced_table")), None)
                actions = f" ON DELETE {rules[0]} ON UPDATE {rules[1]}"
                done = add_foreign_key(table, list(options["columns"]), target, list(options.get("referenced_columns") or ()), actions)
    return done


def translate_foreign_schema(tables: tuple[TableSchema, ...], objects: tuple[Any, ...], engine: str) -> ForeignSchema:
    """Read another engine's keys, indexes and defaults into SQLite's terms (see above)."""
    by_name: dict[tuple[str | None, str], TableSchema] = {(t.namespace, t.name): t for t in tables}
    by_bare_name: dict[str, list[TableSchema]] = {}
    for t in tables:
        by_bare_name.setdefault(t.name, []).append(t)
    taken = {sqlite_table_name(t).lower() for t in tables}
    clauses: dict[tuple[str | None, str], list[str]] = {}
    defaults: dict[tuple[str | None, str, str], str] = {}
    indexes: list[tuple[str, str]] = []
    handled: set[int] = set()
    skipped: list[str] = []

    def restored_table(namespace: str | None, name: str, default_namespace: str | None) -> TableSchema | None:
        if namespace is not None:
            return by_name.get((namespace, name))
        if (default_namespace, name) in by_name:
            return by_name[(default_namespace, name)]
        candidates = by_bare_name.get(name, [])
        return candidates[0] if len(candidates) == 1 else None

    def index_name(wanted: str, table: TableSchema) -> str:
        name = wanted if wanted.lower() not in taken else f"{sqlite_table_name(table)}_{wanted}"
        while name.lower() in taken:
            name += "_"
        taken.add(name.lower())
        return name

    def add_index(obj: Any, table: TableSchema, columns: list[tuple[str, str]], unique: bool) -> bool:
        known = set(table.column_names)
        if not all(column in known for column, _ in columns):
            return False
        parts = ", ".join(quote(column) + order for column, order in columns)
        name = index_name(obj.name, table)
        indexes.append((name, f"CREATE {'UNIQUE ' if unique else ''}INDEX {quote(name)} ON {quote(sqlite_table_name(table))} ({parts})"))
        return True

    def add_foreign_key(table: TableSchema, columns: list[str], target: TableSchema | None, referenced: list[str], actions: str) -> bool:
        if target is None:
            raise _Skipped("it references a table that was not restored")
        if not all(c in table.column_names for c in columns) or not all(c in target.column_names for c in referenced):
            return False
        clause = (
            f"FOREIGN KEY ({', '.join(quote(c) for c in columns)}) REFERENCES {quote(sqlite_table_name(target))} "
            f"({', '.join(quote(c) for c in referenced)}){actions}"
        )
        clauses.setdefault((table.namespace, table.name), []).append(clause)
        return True

    for obj in objects:
        if not obj.table:
            continue
        table = restored_table(obj.namespace, obj.table, obj.namespace)
        if table is None:
            if obj.namespace is not None or not any(t.name == obj.table for t in tables):
                skipped.append(f"{obj.kind} {obj.namespace + '.' if obj.namespace else ''}{obj.name} on {obj.table} (its table was not restored)")
                handled.add(id(obj))
            continue
        try:
            done = _translate_object(obj, table, engine, restored_table, add_index, add_foreign_key)
        except _Skipped as skip:
            skipped.append(f"{obj.kind.replace('_', ' ')} {obj.name} on {table.qualified_name} ({skip.reason})")
            done = True
        if done:
            handled.add(id(obj))

    high_water: dict[tuple[str | None, str], Counter] = {}
    for table in tables:
        mark = _high_water_mark(table, objects, engine)
        if mark is not None and mark[1] > _INT64_MAX:
            skipped.append(f"the counter of {table.qualified_name}.{mark[0]} ({mark[1]} handed out, beyond SQLite's 64-bit range)")
            mark = None
        counters = [c.name for c in table.columns if c.options.get("auto_increment")]
        if engine == "mysql" and counters and (mark is None or counters != [mark[0]]):
            skipped.extend(
                f"AUTO_INCREMENT of {table.qualified_name}.{name} (SQLite counts only a single INTEGER PRIMARY KEY: new rows must give it a value)"
                for name in counters if mark is None or name != mark[0]
            )
        if mark is not None:
            column_name, handed_out, sequence = mark
            high_water[(table.namespace, table.name)] = Counter(column_name, handed_out, sqlite_table_name(table))
            if sequence is not None:
                handled.add(id(sequence))  # it lives on as the table's sqlite_sequence row
        for column in table.columns:
            if column.default is None:
                continue
            # only where a literal reads the same in SQLite as the values restored beside it
            # (a timestamp's offset, an array's braces and a blob's escapes do not)
            literal = _literal_default(column.default, engine) if column.logical_type in _LITERAL_DEFAULT_TYPES else None
            if literal is not None:
                defaults[(table.namespace, table.name, column.name)] = literal
            elif not column.default.lower().startswith("nextval("):  # a serial's sequence: SQLite has its own row ids
                skipped.append(f"default {table.qualified_name}.{column.name} ({engine} expression not translated: {column.default[:60]})")
        for column in table.generated_columns:
            skipped.append(f"generated column {table.qualified_name}.{column.name} ({engine} expression not translated)")
        if engine == "postgresql":
            for match in _PG_CHECK_NAME.finditer(table.create_sql or ""):
                skipped.append(f"check {table.qualified_name}.{_unquote(match.group('name'))} ({engine} expression not translated)")
    return ForeignSchema(clauses, defaults, indexes, handled, skipped, high_water)
