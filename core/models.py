"""The data the pipeline passes around, as attrs classes with cattrs (un)structuring.

Everything that goes into a backup header or a ``--json`` output is one of these models; the
single :data:`converter` turns them into plain dicts and back.
"""

from __future__ import annotations

from typing import Any, Iterable

import attrs
import cattrs

#: Portable logical types. A source maps each declared column type to one of these so that a
#: restore into another engine can pick the nearest type there.
LOGICAL_TYPES = (
    "integer",
    "float",
    "decimal",
    "boolean",
    "text",
    "bytes",
    "date",
    "time",
    "time_tz",
    "datetime",
    "datetime_tz",
    "interval",
    "uuid",
    "json",
    "array",
    "enum",
    "any",  # no declared type: any storage class (SQLite)
    "other",  # engine-specific (inet, tsvector, ranges, ...): kept as the engine's text form
)


@attrs.frozen
class ColumnSchema:
    """One column whose values appear in the row lines, in row order."""

    name: str
    declared_type: str
    logical_type: str = "any"
    nullable: bool = True
    default: str | None = None
    primary_key: int = 0  # 1-based position in the primary key; 0 when not part of it
    hidden: str | None = None  # "rowid" for a row identifier that is not a declared column
    options: dict[str, Any] = attrs.field(factory=dict)  # precision, scale, length, labels...


@attrs.frozen
class TableSchema:
    """A table: its columns in row order, and the engine's own DDL to recreate it."""

    name: str
    columns: tuple[ColumnSchema, ...]
    namespace: str | None = None
    kind: str = "table"  # table, virtual, partitioned, ...
    create_sql: str | None = None
    row_estimate: int | None = None
    has_data: bool = True  # False: the definition is kept, the rows are not (say why in options)
    generated_columns: tuple[ColumnSchema, ...] = ()  # recreated by the DDL, never in rows
    options: dict[str, Any] = attrs.field(factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}" if self.namespace else self.name

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


@attrs.frozen
class SchemaObject:
    """Anything that is not a table: index, view, trigger, sequence, type, function, ..."""

    kind: str
    name: str
    sql: str | None
    table: str | None = None
    namespace: str | None = None
    phase: str = "post-data"  # "pre-data": created before tables; "post-data": after the rows
    options: dict[str, Any] = attrs.field(factory=dict)


def sequence_high_water(objects: Iterable[SchemaObject], table: "TableSchema", column: str) -> tuple[int, SchemaObject] | None:
    """The largest value the sequence owned by ``table.column`` handed out, counting values given
    to rows deleted since, with that sequence (the options ``owned_by``, ``last_value`` and
    ``is_called`` of a ``sequence`` object); None when the backup keeps no such value."""
    for obj in objects:
        owner = obj.options.get("owned_by")
        if obj.kind == "sequence" and owner and list(owner) == [table.namespace, table.name, column]:
            last = obj.options.get("last_value")
            if type(last) is int:
                return (last if obj.options.get("is_called") else last - 1), obj
    return None


@attrs.frozen
class DatabaseSchema:
    """Every table and schema object of a database, plus database-wide settings."""

    engine: str
    tables: tuple[TableSchema, ...] = ()
    objects: tuple[SchemaObject, ...] = ()
    settings: dict[str, Any] = attrs.field(factory=dict)

    def table(self, qualified_name: str) -> TableSchema:
        for table in self.tables:
            if table.qualified_name == qualified_name or table.name == qualified_name:
                return table
        raise KeyError(qualified_name)


@attrs.frozen
class SourceInfo:
    """Where a backup came from; ``identity`` never carries credentials."""

    engine: str
    identity: str
    server_version: str = ""


@attrs.frozen
class PluginRef:
    """A plugin that took part in writing a backup."""

    kind: str
    name: str
    version: str = ""


@attrs.frozen
class BackupOptions:
    """The options a backup ran with; recorded in the header."""

    compression: str = "zstd"
    level: int | None = None
    batching: str = "adaptive"
    tables: tuple[str, ...] = ()
    exclude_tables: tuple[str, ...] = ()


@attrs.frozen
class BackupHeader:
    """Line 1 of a backup file."""

    created_at: str
    tool_version: str
    source: SourceInfo
    options: BackupOptions
    compressor: PluginRef
    schema: DatabaseSchema
    plugins: tuple[PluginRef, ...] = ()
    format: str = "unibackup"
    format_version: int = 2
    sealed: bool = False  # the file ends with the compressor's seal (SHA-256 of every byte before it)


@attrs.frozen
class TableFooter:
    """The line after a table's rows."""

    name: str
    rows: int
    digest: str
    namespace: str | None = None


@attrs.frozen
class Trailer:
    """The last line of a complete backup."""

    tables: int
    rows: int
    bytes: int  # uncompressed bytes before the trailer line
    digest: str  # digest of every byte before the trailer line


@attrs.frozen
class CompressionStats:
    """How much a compressor saved."""

    compressor: str
    level: int | None
    bytes_in: int
    bytes_out: int

    @property
    def ratio(self) -> float:
        return self.bytes_in / self.bytes_out if self.bytes_out else 0.0


@attrs.frozen
class PerformanceMetrics:
    """The basic figures of one run."""

    duration_s: float
    rows: int
    bytes_read: int
    bytes_written: int
    peak_rss_bytes: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.duration_s if self.duration_s > 0 else 0.0


@attrs.frozen
class BackupResult:
    """What ``create_backup`` returns."""

    path: str
    header: BackupHeader
    trailer: Trailer
    compression: CompressionStats
    metrics: PerformanceMetrics


@attrs.frozen
class ColumnMapping:
    """How one column moves into another engine (the cross-engine fidelity report)."""

    table: str
    column: str
    source_type: str  # the declared type in the backup
    logical_type: str
    target_type: str
    fidelity: str  # "exact", "approximated" or "impossible"
    note: str = ""  # how it is approximated, or why it is impossible


@attrs.frozen
class RestoreResult:
    """What ``restore_backup`` returns."""

    target: str
    tables: int
    rows: int
    metrics: PerformanceMetrics
    skipped: tuple[str, ...] = ()
    fidelity: tuple[ColumnMapping, ...] = ()  # empty for a same-engine restore


converter = cattrs.Converter(forbid_extra_keys=False)


def _exactly(kind: type, *also: type) -> Any:
    """A strict structure hook: a backup or record is read as written, never coerced ("3" is no int)."""

    def structure(value: Any, _: Any) -> Any:
        if type(value) is kind or type(value) in also:
            return kind(value)
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")

    return structure


for _kind, _also in ((str, ()), (int, ()), (float, (int,)), (bool, ())):
    converter.register_structure_hook(_kind, _exactly(_kind, *_also))


def to_dict(model: Any) -> dict[str, Any]:
    """Unstructure a model into plain JSON-ready data."""
    return converter.unstructure(model)


def from_dict(data: Any, model_type: type) -> Any:
    """Structure plain data into a model; raises ``cattrs`` errors on a mismatch (of a value's type too)."""
    return converter.structure(data, model_type)
