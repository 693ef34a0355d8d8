"""The backup pipeline: snapshot → batches → encode → compress → temporary file → trailer →
fsync → atomic rename.

Retries wrap the connection (``retry.connect``) and the whole attempt (``retry.read``): a
snapshot that broke cannot be resumed, so a transient failure while reading starts the backup
again in a fresh temporary file.
"""

from __future__ import annotations

import datetime
import errno
import gc
import logging
import os
import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .cancellation import raise_if_cancelled
from .errors import TransientError, UnibackupError, UsageError
from .compression import seal_length
from .files import SealingWriter, publish
from .format import BackupWriter
from .models import (
    BackupHeader,
    BackupOptions,
    BackupResult,
    CompressionStats,
    DatabaseSchema,
    PerformanceMetrics,
    PluginRef,
    SchemaObject,
    SourceInfo,
    TableSchema,
)
from .operations import OperationContext
from .resources import ResourceManager
from .retry import ExponentialBackoff
from .source import Source

if TYPE_CHECKING:
    from .service import BackupService

log = logging.getLogger(__name__)


def peak_rss_bytes() -> int:
    """The process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def select_tables(schema: DatabaseSchema, include: tuple[str, ...], exclude: tuple[str, ...]) -> tuple[TableSchema, ...]:
    """The tables to back up; an included name that matches nothing is a usage error."""
    tables = schema.tables
    if include:
        known = {t.qualified_name for t in tables} | {t.name for t in tables}
        missing = [name for name in include if name not in known]
        if missing:
            raise UsageError(f"no table named {missing[0]!r} in the source", hint=f"tables: {', '.join(sorted(t.qualified_name for t in tables)) or 'none'}")
        tables = tuple(t for t in tables if t.qualified_name in include or t.name in include)
    if exclude:
        known = {t.qualified_name for t in schema.tables} | {t.name for t in schema.tables}
        for name in exclude:
            if name not in known:
                log.warning("the table to leave out %r is not in the source", name)
        tables = tuple(t for t in tables if t.qualified_name not in exclude and t.name not in exclude)
    if schema.tables and not tables:
        raise UsageError("the table options leave no table to back up")
    return tables


class _Sizer:
    """Hands the strategy's batch size to the source, and counts what was asked."""

    def __init__(self, strategy: Any):
        self._strategy = strategy

    def next_batch_size(self) -> int:
        return max(1, int(self._strategy.next_batch_size()))


def _write_tables(
    writer: BackupWriter, header: BackupHeader, source: Source, tables: tuple[TableSchema, ...], strategy: Any, context: OperationContext
) -> None:
    """The header and every table: batches sized by the strategy, events for the listeners."""
    writer.write_header(header)
    sizer = _Sizer(strategy)
    rows_estimate = sum(t.row_estimate or 0 for t in tables if t.has_data)
    for index, table in enumerate(tables, 1):
        context.emit(
            "table_started", table=table.qualified_name, total_rows_estimate=table.row_estimate,
            details={"index": index, "tables": len(tables), "operation_rows_estimate": rows_estimate},
        )
        writer.begin_table(table)
        strategy.start_table(table.row_estimate)
        table_bytes = 0
        if table.has_data:
            for batch in source.read_batches(table, sizer):
                raise_if_cancelled()
                rows, written = writer.write_rows(batch)
                table_bytes += written
                strategy.observe(rows, written)
                context.emit("batch_written", table=table.qualified_name, rows=rows, bytes=written)
                if strategy.should_collect_garbage():
                    gc.collect()
                pause = strategy.delay()
                if pause > 0:
                    time.sleep(pause)
        footer = writer.end_table()
        context.emit("table_finished", table=table.qualified_name, rows=footer.rows, bytes=table_bytes)


def _write_file(
    service: "BackupService",
    source: Source,
    tables: tuple[TableSchema, ...],
    header: BackupHeader,
    temporary: Path,
    compressor: Any,
    level: int | None,
    strategy: Any,
    context: OperationContext,
) -> tuple[Any, int, int]:
    """Write the whole backup into ``temporary``; return the trailer, uncompressed and compressed sizes."""
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb", buffering=1 << 20) as raw:
        sealing = SealingWriter(raw)
        sink = compressor.open_writer(sealing, level)
        writer = BackupWriter(sink, background=True)
        try:
            _write_tables(writer, header, source, tables, strategy, context)
            trailer = writer.write_trailer()  # waits for the worker to write everything before it
        finally:
            writer.close()
        if header.sealed:
            sink.finish_before_seal()
            raw.write(type(compressor).seal(sealing.digest()))
        else:
            sink.finish()
        raw.flush()
        os.fsync(raw.fileno())
        size = raw.tell()
    return trailer, writer.bytes, size


#: Errors of giving a finished file its name that may pass (busy or stale network file systems).
_TRANSIENT_FILE_ERRORS = frozenset({errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ESTALE, errno.ETIMEDOUT})


def _publish(temporary: Path, final: Path) -> None:
    """:func:`publish`, with the failures that may pass classified as transient (``retry.write_file``)."""
    try:
        if final.exists() and temporary.exists() and os.path.samefile(temporary, final):
            os.unlink(temporary)  # an earlier attempt linked it, then failed to remove the temporary name
            return
        publish(temporary, final)
    except OSError as error:
        if error.errno in _TRANSIENT_FILE_ERRORS:
            raise TransientError(f"could not give the backup its final name: {error.strerror}") from error
        raise


#: kinds of schema object that exist only on their table (a sequence a table owns may still feed
#: the default of another one, and a view reads whatever it reads: those stay)
_TABLE_BOUND_KINDS = frozenset({"index", "trigger", "constraint", "foreign_key", "foreign key", "check", "rule"})


def objects_of(schema: DatabaseSchema, tables: tuple[TableSchema, ...]) -> tuple[SchemaObject, ...]:
    """The schema objects a backup of ``tables`` keeps: all but the indexes, triggers and
    constraints of the tables it leaves out."""
    kept = {(t.namespace, t.name) for t in tables}
    left_out = {(t.namespace, t.name) for t in schema.tables} - kept
    left_out_names = {name for _, name in left_out} - {name for _, name in kept}

    def belongs_to_left_out(obj: SchemaObject) -> bool:
        if obj.table is None or obj.kind not in _TABLE_BOUND_KINDS:
            return False
        if obj.namespace is not None:
            return (obj.namespace, obj.table) in left_out
        return obj.table in left_out_names

    return tuple(obj for obj in schema.objects if not belongs_to_left_out(obj))


def run_backup(
    service: "BackupService",
    source_text: str,
    output_dir: Path,
    options: BackupOptions,
    context: OperationContext,
    resources: ResourceManager,
) -> BackupResult:
    """Run one backup; see the module docstring."""
    hooks = service.hooks
    config = service.config
    started = time.monotonic()
    location = service.resolve_location(source_text)
    context.source = location.identity
    source_cls = hooks.source_for(location)
    compressor_entry = hooks.compressors.entry(options.compression)
    compressor_cls = compressor_entry.implementation
    try:
        level = compressor_cls.check_level(options.level)
    except ValueError as error:
        raise UsageError(str(error)) from None
    strategy_cls = hooks.batching_strategies.get(options.batching)
    source_settings = service.source_settings(source_cls)

    connect_retry = ExponentialBackoff.from_config(config.retry.connect, "retry.connect")
    read_retry = ExponentialBackoff.from_config(config.retry.read, "retry.read")
    write_retry = ExponentialBackoff.from_config(config.retry.write_file, "retry.write_file")

    on_retry = context.retrying

    def attempt() -> BackupResult:
        source = source_cls(location, source_settings)
        resources.track(source, f"{source_cls.name} connection")
        try:
            connect_retry.call(source.open_snapshot, operation="connect", on_retry=on_retry)
            schema = source.describe()
            tables = select_tables(schema, options.tables, options.exclude_tables)
            source.will_read(tables)
            schema_in_file = DatabaseSchema(engine=schema.engine, tables=tables, objects=objects_of(schema, tables), settings=schema.settings)
            created = datetime.datetime.now(datetime.timezone.utc)
            header = BackupHeader(
                created_at=created.isoformat(timespec="microseconds").replace("+00:00", "Z"),
                tool_version=service.version,
                source=SourceInfo(engine=source_cls.name, identity=location.identity, server_version=source.server_version()),
                options=attrs.evolve(options, level=level),
                compressor=PluginRef("compressor", compressor_cls.name, compressor_cls.version),
                schema=schema_in_file,
                sealed=seal_length(compressor_cls) > 0,
                plugins=(
                    PluginRef("source", source_cls.name, source_cls.version or service.version),
                    PluginRef("compressor", compressor_cls.name, compressor_cls.version or service.version),
                    PluginRef("batching", strategy_cls.name, strategy_cls.version or service.version),
                ),
            )
            final = service.unique_backup_path(output_dir, location.display_name, created, compressor_cls.suffix)
            temporary = resources.temp_path(output_dir, final.name)
            strategy = strategy_cls(service.batching_settings())
            trailer, uncompressed, compressed = _write_file(service, source, tables, header, temporary, compressor_cls(), level, strategy, context)
        finally:
            source.close()
            resources.release(source)
        raise_if_cancelled()  # the last moment a cancel can still leave nothing behind
        write_retry.call(lambda: _publish(temporary, final), operation="write_file", on_retry=on_retry)
        resources.keep(temporary)
        elapsed = time.monotonic() - started
        metrics = PerformanceMetrics(
            duration_s=elapsed,
            rows=trailer.rows,
            bytes_read=uncompressed,
            bytes_written=compressed,
            peak_rss_bytes=peak_rss_bytes(),
        )
        stats = CompressionStats(compressor_cls.name, level, uncompressed, compressed)
        return BackupResult(path=str(final), header=header, trailer=trailer, compression=stats, metrics=metrics)

    def clean_attempt() -> BackupResult:
        try:
            return attempt()
        except BaseException:
            resources.cleanup()
            raise

    return read_retry.call(clean_attempt, operation="read", on_retry=on_retry)

