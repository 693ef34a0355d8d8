"""The ``legacy-v1`` format migrator, and the ``unibackup migrate`` command.

Version 1 is the legacy layout (``docs/format-v1.md`` specifies it): one JSON document
``{"metadata": {...}, "data": {"<table>": [{column: value, ...}, ...]}}``, possibly gzip'd (the
core decompresses before a migrator sees the bytes). The migrator reads it incrementally with
ijson (its C backend when installed) and yields a version-2 stream written by the core's
:class:`~unibackup.format.BackupWriter`, so counts, digests and trailer are right and every
reader check applies to the result.

A version-2 header lists every table's schema before any row, so how the migrator streams depends
on what it knows when the rows begin:

- the metadata comes first and declares the columns of its tables (what the legacy tool wrote):
  the header is written from it and the rows are converted as they arrive; nothing is held;
- otherwise (no metadata, metadata after the data, or tables without declared columns) the rows are
  spooled, already encoded, to an anonymous temporary file while the columns are inferred (from
  the first row's keys, then any key seen later), and the version-2 stream is written from the
  spool at the end of the document. Memory stays flat either way; the spool costs disk.

``unibackup migrate OLD [-o NEW] [--compression NAME] [--level N]`` writes the migrated stream as
a new version-2 file with the rules of a backup (temporary file beside the target, fsync, atomic
rename, mode 0600, never an overwrite) and prints what was migrated and what was inferred.
"""

from __future__ import annotations

import binascii
import decimal
import logging
import math
import os
import re
import tempfile
import zlib
from pathlib import Path
from typing import IO, Any, BinaryIO, Iterator

import attrs
import click
import ijson
import orjson

from unibackup import __version__, hookimpl
from unibackup.display import counted, human_size
from unibackup.errors import CorruptBackupError, UsageError
from unibackup.locations import parse_location
from unibackup.files import BACKUP_MARK, SealingWriter, publish
from unibackup.format import FORMAT_VERSION, BackupReader, BackupWriter, RowBatch, TableStart
from unibackup.migration import FormatMigrator
from unibackup.models import (
    BackupHeader,
    BackupOptions,
    ColumnSchema,
    CompressionStats,
    DatabaseSchema,
    PluginRef,
    SchemaObject,
    SourceInfo,
    TableFooter,
    TableSchema,
    Trailer,
    to_dict,
)
from unibackup.compression import seal_length
from unibackup.values import decode_row, encode_batch, encode_row

log = logging.getLogger(__name__)

MIGRATOR_VERSION = "1.0"
#: the engine of a version-1 file whose metadata does not say (the legacy tool began with SQLite)
DEFAULT_ENGINE = "sqlite"
#: rows are handed to the writer in batches of about this many encoded bytes
BATCH_BYTES = 256 * 1024
BATCH_ROWS = 2000
#: an inferred column's logical type is guessed from its first non-null value in this many rows
GUESS_ROWS = 100
_HEAD = re.compile(rb'^(?:\xef\xbb\xbf)?\s*\{\s*"(?:metadata|data)"\s*:')
_SCALARS = frozenset({"string", "number", "boolean", "null"})
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
INFERRED = "columns inferred from the rows (first row's keys); declared types unknown"
DECLARED = "columns from the legacy metadata"


# -- values ----------------------------------------------------------------------------------------
def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def convert_value(value: Any) -> Any:
    """A version-1 value as the Python value a version-2 row holds."""
    kind = type(value)
    if kind is decimal.Decimal:
        return float(value)
    if kind is dict:
        if len(value) == 1:
            if "__bytes__" in value:
                try:
                    return binascii.a2b_base64(value["__bytes__"], strict_mode=True)
                except (binascii.Error, TypeError, ValueError):
                    raise CorruptBackupError("a __bytes__ value of the legacy file is not base64") from None
            if "__float__" in value:
                try:
                    return _NON_FINITE[value["__float__"]]
                except (KeyError, TypeError):
                    raise CorruptBackupError(f"a __float__ value of the legacy file is {value['__float__']!r}") from None
        return _json_text(value)  # a JSON column: kept as its JSON text
    if kind is list:
        return _json_text(value)
    return value


def guess_logical_type(value: Any) -> str:
    """The logical type of an inferred column, from its first value (after :func:`convert_value`)."""
    kind = type(value)
    if kind is bool:
        return "boolean"
    if kind is int:
        return "integer"
    if kind is float:
        return "float"
    if kind is bytes:
        return "bytes"
    if kind is str:
        return "text"
    return "any"


def logical_from_declared(declared: str) -> str:
    """The logical type of a declared column type of the legacy metadata (SQLite's affinity rules)."""
    text = declared.upper()
    if not text:
        return "any"
    for words, logical in (
        (("BOOL",), "boolean"),
        (("INT",), "integer"),
        (("CHAR", "CLOB", "TEXT"), "text"),
        (("BLOB",), "bytes"),
        (("REAL", "FLOA", "DOUB"), "float"),
        (("DATETIME", "TIMESTAMP"), "datetime"),
        (("DATE",), "date"),
        (("TIME",), "time"),
        (("JSON",), "json"),
        (("UUID",), "uuid"),
        (("DEC", "NUMERIC", "MONEY"), "decimal"),
    ):
        if any(word in text for word in words):
            return logical
    return "any"


# -- the event stream ------------------------------------------------------------------------------
def _next(events: Iterator[tuple[str, Any]]) -> tuple[str, Any]:
    """The next parser event; the document ending here is damage."""
    item = next(events, None)
    if item is None:
        raise CorruptBackupError("the legacy (version 1) file ends too early")
    return item


class _CountingStream:
    """The input as ijson reads it, counting the bytes consumed (to size the batches)."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        return data


def _skip(events: Iterator[tuple[str, Any]], event: str) -> None:
    """Pass over one value without building it (an unknown top-level member)."""
    depth = 1 if event in ("start_map", "start_array") else 0
    while depth:
        event, _ = _next(events)
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1


def _value(events: Iterator[tuple[str, Any]], event: str, value: Any) -> Any:
    """Build one JSON value from the event that starts it (metadata, nested column values)."""
    if event in _SCALARS:
        return float(value) if type(value) is decimal.Decimal else value
    if event == "start_map":
        built: dict[str, Any] = {}
        for event, value in events:
            if event == "end_map":
                return built
            key = value
            event, value = _next(events)
            built[key] = _value(events, event, value)
        raise CorruptBackupError("the legacy file ends inside an object")
    if event == "start_array":
        items = []
        for event, value in events:
            if event == "end_array":
                return items
            items.append(_value(events, event, value))
        raise CorruptBackupError("the legacy file ends inside an array")
    raise CorruptBackupError(f"the legacy file has an unexpected {event} where a value belongs")


def _rows(events: Iterator[tuple[str, Any]], table: str) -> Iterator[dict[str, Any]]:
    """The row objects of one table's array, one at a time, their values already converted
    (:func:`convert_value`). The hot loop of the migrator: the most frequent events first."""
    Decimal = decimal.Decimal
    for event, value in events:
        if event == "end_array":
            return
        if event != "start_map":
            raise CorruptBackupError(f"a row of table {table!r} in the legacy file is not a JSON object")
        row: dict[str, Any] = {}
        key = None
        for event, value in events:
            if event == "map_key":
                key = value
            elif event == "string":
                row[key] = value  # type: ignore[index]
            elif event == "number":
                row[key] = float(value) if type(value) is Decimal else value  # type: ignore[index]
            elif event == "end_map":
                break
            elif event == "start_map" or event == "start_array":
                row[key] = convert_value(_value(events, event, value))  # type: ignore[index]
            else:  # null, boolean
                row[key] = value  # type: ignore[index]
        yield row
    raise CorruptBackupError(f"the legacy file ends inside the rows of table {table!r}")


def _tables(events: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Iterator[dict[str, Any]]]]:
    """``(name, rows)`` for each table of the ``data`` object (whose start the caller consumed);
    each ``rows`` must be consumed before the next table."""
    for event, value in events:
        if event == "end_map":
            return
        name = value
        event, _ = _next(events)
        if event != "start_array":
            raise CorruptBackupError(f"the rows of table {name!r} in the legacy file are not an array")
        yield name, _rows(events, name)
    raise CorruptBackupError("the legacy file ends inside its data")


# -- the schema ------------------------------------------------------------------------------------
@attrs.define
class _Table:
    """What the migrator knows of one table while it reads."""

    name: str
    declared: tuple[ColumnSchema, ...] | None = None  # from the metadata
    create_sql: str | None = None
    row_count: int | None = None  # what the metadata claims
    spool_columns: list[str] = attrs.field(factory=list)  # spool order: first row's keys, then new keys
    first_values: dict[str, Any] = attrs.field(factory=dict)  # first non-null values, for the type guess
    rows: int = 0
    ragged: bool = False  # columns appeared after the first row: earlier spooled rows are shorter
    seen: bool = False  # present in the data

    def columns(self) -> tuple[ColumnSchema, ...]:
        if self.declared is not None:
            return self.declared
        return tuple(
            ColumnSchema(name=name, declared_type="", logical_type=guess_logical_type(self.first_values.get(name)))
            for name in self.spool_columns
        )


def _declared_columns(table: str, spec: Any) -> tuple[ColumnSchema, ...]:
    if not isinstance(spec, list) or not spec:
        raise CorruptBackupError(f"the legacy metadata of table {table!r} has no list of columns")
    columns = []
    for position, column in enumerate(spec, 1):
        if isinstance(column, str):
            column = {"name": column}
        if not isinstance(column, dict) or not isinstance(column.get("name"), str):
            raise CorruptBackupError(f"column {position} of table {table!r} in the legacy metadata has no name")
        declared = column.get("type") or ""
        if not isinstance(declared, str):
            raise CorruptBackupError(f"the type of column {column['name']!r} of table {table!r} in the legacy metadata is not text")
        primary_key = column.get("primary_key") or 0
        if primary_key is True:
            primary_key = 1
        default = column.get("default")
        columns.append(ColumnSchema(
            name=column["name"],
            declared_type=declared,
            logical_type=logical_from_declared(declared),
            nullable=bool(column.get("nullable", True)),
            default=None if default is None else str(default),
            primary_key=int(primary_key) if isinstance(primary_key, int) else 0,
        ))
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise CorruptBackupError(f"table {table!r} declares a column twice in the legacy metadata")
    return tuple(columns)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _create_sql(name: str, columns: tuple[ColumnSchema, ...]) -> str:
    """A ``CREATE TABLE`` for a table the legacy metadata gave no statement for (SQLite dialect)."""
    parts = []
    for column in columns:
        text = _quote(column.name)
        if column.declared_type:
            text += f" {column.declared_type}"
        if not column.nullable:
            text += " NOT NULL"
        parts.append(text)
    keys = sorted((c for c in columns if c.primary_key), key=lambda c: c.primary_key)
    if keys:
        parts.append(f"PRIMARY KEY ({', '.join(_quote(c.name) for c in keys)})")
    return f"CREATE TABLE {_quote(name)} ({', '.join(parts)})"


class _Metadata:
    """The legacy metadata, checked, with its tables in document order."""

    def __init__(self, raw: Any):
        if not isinstance(raw, dict):
            raise CorruptBackupError("the legacy file's metadata is not an object")
        version = raw.get("format_version", 1)
        if version != 1:
            raise CorruptBackupError(f"the legacy file says format_version {version!r}; the legacy-v1 migrator reads version 1")
        self.raw = raw
        self.engine = raw.get("engine") if isinstance(raw.get("engine"), str) else DEFAULT_ENGINE
        self.tables: dict[str, _Table] = {}
        tables = raw.get("tables") or {}
        if isinstance(tables, list):  # early writers listed only the names
            tables = {name: {} for name in tables if isinstance(name, str)}
        if not isinstance(tables, dict):
            raise CorruptBackupError("the legacy metadata's tables are neither an object nor a list")
        for name, spec in tables.items():
            if not isinstance(spec, dict):
                raise CorruptBackupError(f"the legacy metadata of table {name!r} is not an object")
            table = _Table(name)
            if spec.get("columns") is not None:
                table.declared = _declared_columns(name, spec["columns"])
            sql = spec.get("sql")
            table.create_sql = sql if isinstance(sql, str) and sql.strip() else None
            count = spec.get("row_count")
            table.row_count = count if isinstance(count, int) and not isinstance(count, bool) else None
            self.tables[name] = table

    def declares_everything(self) -> bool:
        return all(table.declared is not None for table in self.tables.values())

    def objects(self) -> tuple[SchemaObject, ...]:
        found = []
        for item in self.raw.get("objects") or ():
            if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("sql"), str):
                kind = item.get("type") if item.get("type") in ("index", "view", "trigger") else None
                if kind:
                    found.append(SchemaObject(kind=kind, name=item["name"], sql=item["sql"], table=item.get("table")))
        return tuple(found)

    def settings(self) -> dict[str, Any]:
        return {key: self.raw[key] for key in ("user_version", "application_id") if isinstance(self.raw.get(key), int)}


_NO_METADATA = _Metadata({})


def _table_schema(table: _Table, engine: str) -> TableSchema:
    columns = table.columns()
    create_sql = table.create_sql
    if create_sql is None and engine == DEFAULT_ENGINE:
        create_sql = _create_sql(table.name, columns)
    return TableSchema(
        name=table.name,
        columns=columns,
        create_sql=create_sql,
        row_estimate=table.row_count if table.row_count is not None else (table.rows if table.seen else None),
        options={"migration": DECLARED if table.declared is not None else INFERRED},
    )


def _header(metadata: _Metadata, tables: list[_Table], left_out: list[str]) -> BackupHeader:
    raw = metadata.raw
    settings = metadata.settings()
    if left_out:
        settings["legacy_v1_left_out"] = left_out
    source = raw.get("source") if isinstance(raw.get("source"), str) else ""
    return BackupHeader(
        created_at=raw.get("created_at") if isinstance(raw.get("created_at"), str) else "",
        tool_version=raw.get("tool_version") if isinstance(raw.get("tool_version"), str) else "",
        source=SourceInfo(engine=metadata.engine, identity=_identity(source), server_version=str(raw.get("server_version") or "")),
        options=BackupOptions(compression="none", batching="fixed"),
        compressor=PluginRef("compressor", "none"),
        schema=DatabaseSchema(
            engine=metadata.engine,
            tables=tuple(_table_schema(t, metadata.engine) for t in tables),
            objects=metadata.objects(),
            settings=settings,
        ),
        plugins=(PluginRef("migrator", LegacyV1Migrator.name, MIGRATOR_VERSION),),
    )


def _identity(source: str) -> str:
    """The legacy source without a password or secret query values (old files may hold a URL
    with one); a URL too malformed to parse keeps only the user of everything before its host."""
    scheme, separator, rest = source.partition("://")
    if not separator:
        return source  # a path or a name
    try:
        location = parse_location(source)
    except UsageError:
        location = None
    if location is not None and location.scheme != "sqlite":
        return location.identity
    if "@" in rest:
        user_info, _, host = rest.rpartition("@")  # a password may hold '@' and '/': the host follows the last '@'
        return f"{scheme}://{user_info.split(':', 1)[0]}@{host}"
    return source


# -- writing version 2 -----------------------------------------------------------------------------
class _Sink:
    """Collects what the writer writes, to be yielded as chunks."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: Any) -> None:
        self._parts.append(bytes(data))

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _ordered(row: dict[str, Any], columns: list[str], table: str) -> list[Any]:
    """The values of ``row`` in column order (a missing key is NULL, an unknown one damage)."""
    if list(row) == columns:  # the legacy tool wrote every key, in column order
        return list(row.values())
    values = [row.pop(name, None) for name in columns]
    if row:
        extra = next(iter(row))
        raise CorruptBackupError(f"a row of table {table!r} in the legacy file has the column {extra!r}, which its schema does not have")
    return values


class LegacyV1Migrator(FormatMigrator):
    """Version 1 (one JSON document) into version 2; see the module docstring."""

    name = "legacy-v1"
    from_version = 1
    to_version = 2
    version = MIGRATOR_VERSION

    @classmethod
    def recognises(cls, head: bytes) -> bool:
        return _HEAD.match(head) is not None

    def migrate(self, stream: BinaryIO) -> Iterator[bytes]:
        try:
            yield from self._migrate(_CountingStream(stream))
        except CorruptBackupError:
            raise
        except ijson.JSONError as error:
            text = str(error).strip()
            reason = text.splitlines()[0] if text else type(error).__name__
            raise CorruptBackupError(f"the legacy (version 1) file is not valid JSON: {reason}") from None
        except (EOFError, zlib.error, UnicodeDecodeError) as error:
            raise CorruptBackupError(f"the legacy (version 1) file cannot be read: {error}") from None

    def _migrate(self, stream: _CountingStream) -> Iterator[bytes]:
        events = iter(ijson.basic_parse(stream, use_float=False))
        if _next(events)[0] != "start_map":
            raise CorruptBackupError("the legacy file is not a JSON object")
        metadata: _Metadata | None = None
        spool: _Spool | None = None
        seen_data = False
        while True:
            event, key = _next(events)
            if event == "end_map":
                break
            event, value = _next(events)
            if key == "metadata":
                if metadata is not None:
                    raise CorruptBackupError("the legacy file has two metadata objects")
                metadata = _Metadata(_value(events, event, value))
            elif key == "data":
                if seen_data:
                    raise CorruptBackupError("the legacy file has two data objects")
                seen_data = True
                if event != "start_map":
                    raise CorruptBackupError("the legacy file's data is not an object of tables")
                tables = _tables(events)
                if metadata is not None and metadata.tables and metadata.declares_everything():
                    yield from _stream_tables(tables, metadata, stream)
                else:
                    spool = _Spool(metadata)
                    spool.fill(tables)
            else:
                _skip(events, event)  # an unknown top-level member
        if next(events, None) is not None:
            raise CorruptBackupError("the legacy file has data after its closing brace")
        if not seen_data:
            raise CorruptBackupError("the legacy file has no data object")
        if spool is not None:
            with spool:
                yield from spool.replay(metadata or _NO_METADATA)


def _table_order(metadata: _Metadata, seen: list[_Table]) -> list[_Table]:
    """Tables in data order, then the declared ones the data lacks (written empty)."""
    order = list(seen)
    names = {t.name for t in seen}
    order += [t for name, t in metadata.tables.items() if name not in names]
    return order


def _check_count(table: _Table) -> None:
    if table.row_count is not None and table.row_count != table.rows:
        raise CorruptBackupError(
            f"table {table.name!r} of the legacy file holds {table.rows} rows; its metadata says {table.row_count}"
        )


def _stream_tables(tables: Iterator[tuple[str, Iterator[dict[str, Any]]]], metadata: _Metadata, stream: _CountingStream) -> Iterator[bytes]:
    """The direct path: the header from the metadata, then each table converted as it arrives."""
    sink = _Sink()
    writer = BackupWriter(sink)
    header = _header(metadata, list(metadata.tables.values()), [])
    schemas = {t.name: t for t in header.schema.tables}
    writer.write_header(header)
    yield sink.drain()
    for name, rows in tables:
        table = metadata.tables.get(name)
        if table is None:
            raise CorruptBackupError(f"the legacy file holds rows of table {name!r}, which its metadata does not declare")
        if table.seen:
            raise CorruptBackupError(f"the legacy file holds table {name!r} twice")
        table.seen = True
        schema = schemas[name]
        columns = list(schema.column_names)
        writer.begin_table(schema)
        batch: list[list[Any]] = []
        batch_start = stream.count
        for row in rows:
            batch.append(_ordered(row, columns, name))
            # ijson reads ahead in chunks, so this bounds a batch to BATCH_BYTES plus one chunk
            if len(batch) >= BATCH_ROWS or stream.count - batch_start >= BATCH_BYTES:
                table.rows += writer.write_rows(encode_batch(batch))[0]
                batch, batch_start = [], stream.count
                yield sink.drain()
        if batch:
            table.rows += writer.write_rows(encode_batch(batch))[0]
        _check_count(table)
        writer.end_table()
        yield sink.drain()
    for table in metadata.tables.values():
        if not table.seen:
            _check_count(table)  # declared with rows, but the data lacks it
            writer.begin_table(schemas[table.name])
            writer.end_table()
    writer.write_trailer()
    yield sink.drain()


class _Spool:
    """The spooling path: rows encoded into an anonymous temporary file until the schema is known."""

    def __init__(self, metadata: _Metadata | None):
        self.metadata = metadata
        self.tables: list[_Table] = []
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="unibackup-legacy-v1-")

    def __enter__(self) -> "_Spool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._file.close()

    def fill(self, tables: Iterator[tuple[str, Iterator[dict[str, Any]]]]) -> None:
        names: set[str] = set()
        out = self._file
        try:
            for name, rows in tables:
                if name in names:
                    raise CorruptBackupError(f"the legacy file holds table {name!r} twice")
                names.add(name)
                known = self.metadata.tables.get(name) if self.metadata else None
                table = _Table(name) if known is None else known
                table.seen = True
                self.tables.append(table)
                columns = table.spool_columns
                positions: dict[str, int] = {}
                guessing = GUESS_ROWS
                for row in rows:
                    values = [None] * len(columns)
                    for key, value in row.items():
                        index = positions.get(key)
                        if index is None:
                            if table.rows:
                                table.ragged = True  # the rows before this one lack the column
                            index = positions[key] = len(columns)
                            columns.append(key)
                            values.append(None)
                        values[index] = value
                        if guessing and value is not None and table.first_values.get(key) is None:
                            table.first_values[key] = value
                    out.write(encode_row(values))
                    out.write(b"\n")
                    table.rows += 1
                    if guessing:
                        guessing -= 1
        except BaseException:
            self._file.close()
            raise
        out.flush()

    def replay(self, metadata: _Metadata) -> Iterator[bytes]:
        """The version-2 stream, now that the metadata (if any) is known."""
        for table in self.tables:
            known = metadata.tables.get(table.name)
            if known is not None and known is not table:  # the metadata came after the data
                table.declared, table.create_sql, table.row_count = known.declared, known.create_sql, known.row_count
            _check_count(table)
        present = {t.name for t in self.tables}
        order = _table_order(metadata, self.tables)
        left_out = [t.name for t in order if t.declared is None and not t.spool_columns]
        for table in order:
            if table.name not in present:
                _check_count(table)
        written = [t for t in order if t.name not in left_out]
        for name in left_out:
            log.warning("table %r of the legacy file has no rows and no declared columns; it is left out", name)
        sink = _Sink()
        writer = BackupWriter(sink)
        header = _header(metadata, written, left_out)
        writer.write_header(header)
        yield sink.drain()
        source = self._file
        source.seek(0)
        schemas = {t.name: t for t in header.schema.tables}
        for table in order:
            if table.name in left_out:
                self._skip(table.rows)
                continue
            schema = schemas[table.name]
            writer.begin_table(schema)
            if table.name in present:
                yield from self._copy(table, schema, writer, sink)
            writer.end_table()
            yield sink.drain()
        writer.write_trailer()
        yield sink.drain()

    def _skip(self, rows: int) -> None:
        for _ in range(rows):
            self._file.readline()

    def _copy(self, table: _Table, schema: TableSchema, writer: BackupWriter, sink: _Sink) -> Iterator[bytes]:
        spooled = tuple(table.spool_columns)
        final = schema.column_names
        as_is = spooled == final and not table.ragged
        if not as_is:
            unknown = [name for name in spooled if name not in final]
            if unknown:
                raise CorruptBackupError(
                    f"a row of table {table.name!r} in the legacy file has the column {unknown[0]!r}, which its schema does not have"
                )
            mapping = [spooled.index(name) if name in spooled else None for name in final]
        lines: list[bytes] = []
        size = 0
        readline = self._file.readline
        for _ in range(table.rows):
            line = readline()
            if not as_is:
                values = decode_row(line)
                values += [None] * (len(spooled) - len(values))
                line = encode_row([values[i] if i is not None else None for i in mapping]) + b"\n"
            lines.append(line[:-1])
            size += len(line)
            if size >= BATCH_BYTES:
                writer.write_rows(lines)
                lines, size = [], 0
                yield sink.drain()
        if lines:
            writer.write_rows(lines)


@hookimpl
def unibackup_register_migrators() -> list[type[FormatMigrator]]:
    return [LegacyV1Migrator]


# -- unibackup migrate -----------------------------------------------------------------------------
@attrs.frozen
class MigratedTable:
    name: str
    rows: int
    columns: tuple[str, ...]
    logical_types: tuple[str, ...]
    how: str  # where the columns came from


@attrs.frozen
class MigrationResult:
    """What ``unibackup migrate`` did."""

    source: str
    path: str
    format_version: int  # of the source
    migrated_by: tuple[str, ...]
    tables: int
    rows: int
    table_reports: tuple[MigratedTable, ...]
    compression: CompressionStats
    notes: tuple[str, ...] = ()


def default_target(old: Path, suffix: str) -> Path:
    """``legacy.json.gz`` becomes ``legacy.ubk.jsonl<suffix>`` beside it."""
    name = old.name
    for ending in (".gz", ".json"):
        if name.lower().endswith(ending) and len(name) > len(ending):
            name = name[: -len(ending)]
    return old.with_name(f"{name}{BACKUP_MARK}{suffix}")


def migrate_backup(service: Any, old: str, output: str | None = None, compression: str | None = None, level: int | None = None) -> MigrationResult:
    """Write ``old`` (an older format version) as a new version-2 file; see the module docstring."""
    compressor_cls = service.hooks.compressors.get(compression or service.config.backup.compression)
    try:
        level = compressor_cls.check_level(level)
    except ValueError as error:
        raise UsageError(str(error)) from None
    old_path = Path(old)
    # a directory when it is one, or when the name says so ("out/"): it is made if missing
    into_directory = output is not None and (output.endswith(("/", os.sep)) or Path(output).is_dir())
    if output is None:
        final = default_target(old_path, compressor_cls.suffix)
    elif into_directory:
        final = Path(output) / default_target(old_path, compressor_cls.suffix).name
    else:
        final = Path(output)
    if final.exists():
        raise UsageError(f"{final} already exists; migrate never overwrites a file")
    if not into_directory and not final.parent.is_dir():
        raise UsageError(f"the directory {str(final.parent)!r} does not exist")

    def body(context: Any, resources: Any) -> MigrationResult:
        with service.output_directory(final.parent):
            try:
                with service.open_backup(old_path) as opened:
                    if not opened.migrators:
                        raise UsageError(f"{old} is already format version {FORMAT_VERSION}; there is nothing to migrate")
                    temporary = resources.temp_path(final.parent, final.name)
                    copy = _copy_migrated(opened.splitter, temporary, compressor_cls, level, context)
                    format_version, migrated_by = opened.format_version, opened.migrators
                publish(temporary, final)
            except BaseException:
                resources.cleanup()  # the temporary goes before the directory made for it
                raise
        resources.keep(temporary)
        left_out = copy.header.schema.settings.get("legacy_v1_left_out") or ()
        return MigrationResult(
            source=str(old_path),
            path=str(final),
            format_version=format_version,
            migrated_by=migrated_by,
            tables=copy.trailer.tables,
            rows=copy.trailer.rows,
            table_reports=copy.tables,
            compression=CompressionStats(compressor_cls.name, level, copy.uncompressed_bytes, copy.compressed_bytes),
            notes=tuple(f"table {name!r} had no rows and no declared columns: left out" for name in left_out),
        )

    return service.run_operation("migrate", body, source=str(old_path), target=str(final))


@attrs.frozen
class _Copy:
    header: BackupHeader
    trailer: Trailer
    tables: tuple[MigratedTable, ...]
    uncompressed_bytes: int
    compressed_bytes: int


def _copy_migrated(splitter: Any, temporary: Path, compressor_cls: Any, level: int | None, context: Any) -> _Copy:
    """Copy the migrated stream into ``temporary`` through a new writer (sealed like a backup),
    checking every count and digest of the stream as it is read."""
    reader = BackupReader(splitter, check_digests=True)
    tables: list[MigratedTable] = []
    header: BackupHeader | None = None
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb", buffering=1 << 20) as raw:
        sealing = SealingWriter(raw)
        sink = compressor_cls().open_writer(sealing, level)
        writer = BackupWriter(sink)
        estimate = 0
        for record in reader:
            if isinstance(record, BackupHeader):
                header = attrs.evolve(
                    record,
                    compressor=PluginRef("compressor", compressor_cls.name, compressor_cls.version),
                    options=attrs.evolve(record.options, compression=compressor_cls.name, level=level),
                    sealed=seal_length(compressor_cls) > 0,
                )
                estimate = sum(t.row_estimate or 0 for t in header.schema.tables)
                writer.write_header(header)
            elif isinstance(record, TableStart):
                table = record.table
                context.emit(
                    "table_started", table=table.qualified_name, total_rows_estimate=table.row_estimate,
                    details={"index": len(tables) + 1, "tables": len(header.schema.tables), "operation_rows_estimate": estimate},  # type: ignore[union-attr]
                )
                writer.begin_table(table)
            elif isinstance(record, RowBatch):
                rows, written = writer.write_rows(record.lines)
                context.emit("batch_written", table=record.table.qualified_name, rows=rows, bytes=written)
            elif isinstance(record, TableFooter):
                writer.end_table()
                tables.append(MigratedTable(
                    name=table.qualified_name,
                    rows=record.rows,
                    columns=table.column_names,
                    logical_types=tuple(c.logical_type for c in table.columns),
                    how=str(table.options.get("migration", "")),
                ))
                context.emit("table_finished", table=table.qualified_name, rows=record.rows)
        assert header is not None  # the reader raises before a stream without one ends
        trailer = writer.write_trailer()
        if header.sealed:
            sink.finish_before_seal()
            raw.write(compressor_cls.seal(sealing.digest()))
        else:
            sink.finish()
        raw.flush()
        os.fsync(raw.fileno())
        size = raw.tell()
    return _Copy(header, trailer, tuple(tables), writer.bytes, size)


@click.command(name="migrate")
@click.argument("old", metavar="OLD")
@click.option("-o", "--output", metavar="NEW", help="The new file, or a directory for it (default: beside OLD, as NAME.ubk.jsonl.zst).")
@click.option("--compression", metavar="NAME", help="Compressor of the new file (default: backup.compression, zstd).")
@click.option("--level", type=int, help="Compression level.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def migrate_command(ctx: click.Context, old: str, output: str | None, compression: str | None, level: int | None, as_json: bool) -> None:
    """Write OLD, a backup of an older format version, as a new version-2 file.

    The path of the new file is the last line of standard output.
    """
    from unibackup.cli import CliState

    state = ctx.find_object(CliState)
    if state is None:  # pragma: no cover - the root command always sets it
        raise UsageError("migrate must run under the unibackup command")
    result = migrate_backup(state.service(), old, output, compression, level)
    if as_json:
        click.echo(orjson.dumps(to_dict(result), option=orjson.OPT_INDENT_2).decode())
        return
    if state.quiet:
        click.echo(result.path)
        return
    click.echo(
        f"migrated {result.source} (format version {result.format_version}, by {', '.join(result.migrated_by)}) "
        f"into format version {FORMAT_VERSION}:"
    )
    for table in result.table_reports:
        columns = ", ".join(f"{name} {kind}" for name, kind in zip(table.columns, table.logical_types))
        click.echo(f"  {table.name}: {table.rows} rows; {table.how}: {columns}")
    for note in result.notes:
        click.echo(f"  note: {note}")
    stats = result.compression
    click.echo(
        f"  {counted(result.tables, 'table')}, {counted(result.rows, 'row')}, "
        f"{human_size(stats.bytes_in)} -> {human_size(stats.bytes_out)} ({stats.compressor})"
    )
    click.echo(result.path)


@hookimpl
def unibackup_register_commands(cli: Any) -> None:
    cli.add_command(migrate_command)
