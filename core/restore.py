"""The restore pipeline: open → recognise compression and version → migrate → validate while
streaming → write into the target in one transaction → commit only after the trailer checked out.

A backup that fails validation anywhere rolls the target back: nothing is written.
"""

from __future__ import annotations

import logging
import time

import attrs
from typing import TYPE_CHECKING, Callable, Iterator

from .backup import peak_rss_bytes
from .cancellation import raise_if_cancelled
from .errors import CorruptBackupError, ErrorClass, UnibackupError, UsageError
from .format import BackupReader, RowBatch, TableStart
from .models import BackupHeader, PerformanceMetrics, RestoreResult, TableFooter, to_dict
from .operations import OperationContext
from .resources import ResourceManager
from .source import RestorePlan
from .values import decode_rows

if TYPE_CHECKING:
    from .service import BackupService

log = logging.getLogger(__name__)


def run_restore(
    service: "BackupService",
    backup_path: str,
    target_text: str,
    tables: tuple[str, ...],
    force: bool,
    allow_lossy: bool,
    context: OperationContext,
    resources: ResourceManager,
    on_plan: Callable[[RestorePlan], None] | None = None,
) -> RestoreResult:
    """Restore ``backup_path`` into ``target_text``; see the module docstring."""
    started = time.monotonic()
    hooks = service.hooks
    location = service.resolve_location(target_text, for_restore=True)
    target_cls = hooks.source_for(location)
    context.target = location.identity
    with service.open_backup(backup_path) as opened:
        reader = BackupReader(opened.splitter, check_digests=True, decode=False)
        records = iter(reader)
        header = next(records)
        assert isinstance(header, BackupHeader)
        selected = header.schema.tables
        if tables:
            known = {t.qualified_name for t in selected} | {t.name for t in selected}
            missing = [name for name in tables if name not in known]
            if missing:
                raise UsageError(f"the backup has no table named {missing[0]!r}")
            selected = tuple(t for t in selected if t.qualified_name in tables or t.name in tables)
        same_engine_only: list[str] = []
        if header.source.engine != target_cls.name:
            # data only its own engine can use (say, the index of a full-text table) does not move
            same_engine_only = [f"table {t.qualified_name} ({t.options['same_engine_only']})" for t in selected if t.options.get("same_engine_only")]
            selected = tuple(t for t in selected if not t.options.get("same_engine_only"))
        wanted = {(t.namespace, t.name) for t in selected}
        plan = RestorePlan(schema=header.schema, tables=selected, source_engine=header.source.engine, force=force, allow_lossy=allow_lossy, target_engine=target_cls.name)
        target = target_cls(location, service.source_settings(target_cls))
        if plan.source_engine != target_cls.name:
            if plan.source_engine not in hooks.sources:
                # an engine unknown here: a damaged header is likelier than a plugin not installed
                _read_whole_backup(service, backup_path)
            plan = attrs.evolve(plan, mappings=tuple(target.map_columns(plan)))
            context.emit("plan", details={"mappings": [to_dict(m) for m in plan.mappings]})
            if on_plan is not None:
                on_plan(plan)
            check_fidelity(plan, target_cls.name)
        resources.track(target, f"{target_cls.name} restore target")
        rows = 0
        skipped: list[str] = list(same_engine_only)
        try:
            target.open_restore(plan)
            skipped.extend(target.create_schema(plan))
            current = None
            for record in records:
                raise_if_cancelled()
                if isinstance(record, TableStart):
                    current = record.table if (record.table.namespace, record.table.name) in wanted else None
                    if current is not None:
                        context.emit("table_started", table=current.qualified_name, total_rows_estimate=current.row_estimate)
                elif isinstance(record, RowBatch):
                    if current is None:
                        continue
                    decoded = _decode_batch(record)
                    target.write_rows(current, decoded)
                    rows += len(decoded)
                    context.emit("batch_written", table=current.qualified_name, rows=len(decoded))
                elif isinstance(record, TableFooter) and current is not None:
                    context.emit("table_finished", table=current.qualified_name, rows=record.rows)
                    current = None
            if reader.trailer is None:
                raise CorruptBackupError("the backup has no trailer (incomplete or truncated)")
            skipped.extend(target.finish_schema(plan))
            raise_if_cancelled()
            target.commit()
        except BaseException as failure:
            try:
                target.rollback()
            except Exception as error:  # the original failure matters more
                log.warning("rollback failed: %s", error)
            if isinstance(failure, UnibackupError) and failure.error_class not in _NOT_FROM_DAMAGE:
                _raise_if_damaged(records)  # a damaged backup is the root cause, not the write error
            raise
        finally:
            target.close()
            resources.release(target)
    metrics = PerformanceMetrics(
        duration_s=time.monotonic() - started,
        rows=rows,
        bytes_read=opened.splitter.decompressed_bytes,
        bytes_written=0,
        peak_rss_bytes=peak_rss_bytes(),
    )
    return RestoreResult(target=location.identity, tables=len(selected), rows=rows, metrics=metrics, skipped=tuple(skipped), fidelity=plan.mappings)


def check_fidelity(plan: RestorePlan, target_engine: str) -> None:
    """Refuse a cross-engine restore that would lose information (unless allowed)."""
    impossible = [m for m in plan.mappings if m.fidelity == "impossible"]
    if impossible:
        first = impossible[0]
        raise UsageError(
            f"{len(impossible)} column(s) cannot move into {target_engine}: {first.table}.{first.column} "
            f"({first.source_type}): {first.note or 'no equivalent type'}"
        )
    lossy = [m for m in plan.mappings if m.fidelity != "exact"]
    if lossy and not plan.allow_lossy:
        first = lossy[0]
        raise UsageError(
            f"restoring into {target_engine} would approximate {len(lossy)} column(s), first {first.table}.{first.column} "
            f"({first.source_type} -> {first.target_type}: {first.note})",
            hint="see the fidelity report above; add --allow-lossy to accept",
        )


def _read_whole_backup(service: "BackupService", backup_path: str) -> None:
    """Read and check the whole backup once; raises :class:`CorruptBackupError` if it is damaged."""
    with service.open_backup(backup_path) as opened:
        for _ in BackupReader(opened.splitter, check_digests=True, decode=False):
            pass


#: Failures that a damaged backup cannot cause: reading the rest of the file to find damage would
#: only keep a user waiting (Ctrl-C, or "use --force", after the whole backup was read).
_NOT_FROM_DAMAGE = (ErrorClass.CORRUPT_INPUT, ErrorClass.CANCELLED, ErrorClass.USER)


def _raise_if_damaged(records: Iterator[object]) -> None:
    """Read the rest of the backup (validating it) after a write failed; raise its damage if any."""
    try:
        for _ in records:
            pass
    except CorruptBackupError:
        raise
    except Exception:  # reading on failed for another reason: the original error stands
        return


def _decode_batch(batch: RowBatch) -> list[list]:
    try:
        return decode_rows(batch.lines, len(batch.table.columns))
    except CorruptBackupError as error:
        raise CorruptBackupError(f"table {batch.table.qualified_name!r}: {error.message}") from None
