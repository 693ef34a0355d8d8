"""``BackupService``: the API that the command line and embedding code use.

It wires the plugins (through the plugin manager) into the pipelines, and runs every operation
inside an operation context, with tracked resources and clean cancellation.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import attrs

from . import __version__
from .backup import run_backup
from .cancellation import cancel_on_signals
from .config import Config, plugin_settings
from .errors import ConfigError, PluginError, UnibackupError, UsageError
from .estimate import sample_source
from .events import EventListener
from .files import BACKUP_MARK, UnrecognisedFileError, OpenedBackup, backup_file_name, is_backup_name, open_backup
from .format import BackupReader, ReadLimits
from .hooks import Hooks
from .locations import parse_location
from .models import BackupHeader, BackupOptions, BackupResult, RestoreResult, Trailer
from .operations import OperationContext, classify
from .preflight import PreflightReport, run_preflight
from .manager import PluginHost, get_plugin_manager
from .resources import ResourceManager, remove_leftovers
from .restore import run_restore
from .source import Location, RestorePlan
from .validation import ValidationReport

log = logging.getLogger(__name__)

T = TypeVar("T")


@attrs.frozen
class BackupSummary:
    """One row of ``unibackup list``."""

    path: str
    size: int
    compressor: str | None
    format_version: int | None
    created_at: str | None
    source: str | None
    engine: str | None
    tables: int | None
    error: str | None = None


@attrs.frozen
class BackupInfo:
    """What ``unibackup info`` shows."""

    path: str
    size: int
    compressor: str | None
    format_version: int
    migrated_by: tuple[str, ...]
    header: BackupHeader
    trailer: Trailer | None
    table_rows: dict[str, int]


@attrs.frozen
class SizeEstimate:
    """What ``unibackup estimate`` shows."""

    source: str
    engine: str
    tables: int
    rows: int
    source_bytes: int
    estimated_backup_bytes: dict[str, int]  # per compressor
    per_table: dict[str, int]  # row estimates
    uncompressed_bytes: int = 0  # the JSON Lines stream, before compression
    sampled_rows: int = 0
    ratios: dict[str, float] = attrs.field(factory=dict)  # measured on the sample


class BackupService:
    """Backup, restore, verify, list, inspect and estimate, with the plugins of ``host``."""

    def __init__(
        self,
        config: Config | None = None,
        host: PluginHost | None = None,
        *,
        listeners: list[EventListener] | None = None,
        interactive: bool = False,
    ):
        self.config = config or Config()
        if host is None:
            host = get_plugin_manager(
                disabled=self.config.plugins.disable,
                allow_only=self.config.plugins.allow_only,
                strict=self.config.plugins.strict,
            )
        self.host = host
        self.hooks = Hooks(host)
        self.version = __version__
        self._extra_listeners = listeners or []
        self._depth = 0  # operations running now; more than one: nested
        self.interactive = interactive

    # -- plumbing ------------------------------------------------------------------------------
    def resolve_location(self, text: str, *, for_restore: bool = False) -> Location:
        """Parse a source or target; a bare path becomes a location of the engine that accepts it."""
        location = parse_location(text)
        if location.scheme:
            if location.host is None and location.path and not os.path.isabs(location.path):
                # a file URL with a relative path (sqlite:app.db): named absolutely, like a bare path
                return attrs.evolve(location, path=os.path.abspath(location.path))
            return location
        path = location.path
        if not for_restore and not os.path.exists(path):
            raise UsageError(f"the source {path!r} does not exist")
        if not for_restore and os.path.isdir(path):
            raise UsageError(f"the source {path!r} is a directory, not a database file")
        if for_restore and os.path.isdir(path):
            raise UsageError(f"the target {path!r} is a directory; name a database file (in it, for example)")
        if for_restore and not os.path.exists(path):
            candidates = [e.implementation for e in self.hooks.sources if e.implementation.accepts_path("")]
            scheme = candidates[0].schemes[0] if candidates else ""
        else:
            scheme = self.hooks.source_for(location).schemes[0]
        return attrs.evolve(location, scheme=scheme, path=os.path.abspath(path))

    def _identity_of(self, text: str) -> str | None:
        """How the history names a source, even for a run that fails before it is opened (a bad
        option, a missing file): its identity, or the absolute path; None for a broken URL."""
        try:
            return self.resolve_location(text).identity
        except UnibackupError:
            pass
        try:
            location = parse_location(text)
        except UnibackupError:
            return None
        return location.identity if location.scheme else os.path.abspath(text)

    def source_settings(self, source_cls: type) -> dict[str, Any]:
        """``[source.<name>]`` for ``source_cls``, checked (see :func:`~unibackup.config.plugin_settings`).

        A ``[source.X]`` table for an engine no plugin provides is an error too: a misspelt
        engine name must not pass silently.
        """
        known = set(self.hooks.sources.names())
        unknown = sorted(set(self.config.source) - known)
        if unknown:
            where = f" in {self.config.path}" if self.config.path else ""
            raise ConfigError(f"bad configuration{where}: source.{unknown[0]}: no source plugin is named {unknown[0]!r}", hint=f"known: {', '.join(sorted(known))}")
        return plugin_settings(self.config, "source", source_cls.name, getattr(source_cls, "settings_type", None))

    def read_limits(self) -> ReadLimits:
        limits = self.config.limits
        return ReadLimits(max_line_bytes=limits.max_line_bytes, max_decompressed_bytes=limits.max_decompressed_bytes, max_ratio=limits.max_ratio)

    @contextlib.contextmanager
    def open_backup(self, path: str | os.PathLike[str]) -> Iterator[OpenedBackup]:
        """Open a backup for reading, whatever its compression and format version."""
        compressors = [entry.implementation for entry in self.hooks.compressors]
        migrators = [entry.implementation for entry in self.hooks.migrators]
        try:
            with open_backup(path, compressors, migrators, self.read_limits()) as opened:
                yield opened
        except UnrecognisedFileError as error:
            raise self._why_unrecognised(error, Path(path).name, compressors) from None

    def _why_unrecognised(self, error: UnrecognisedFileError, name: str, compressors: list[type]) -> UnibackupError:
        """A file no loaded plugin reads: a missing plugin (exit 2) when its first bytes or its
        name say which compressor wrote it and that one is not loaded; damage (exit 3) otherwise,
        with the plugins that are not loaded as a hint."""
        missing = self.host.unavailable(("failed", "blocked"))  # not those left out on purpose
        loaded = {compressor.name for compressor in compressors}
        looks_like = next((fmt for magic, fmt in self.hooks.file_signatures.items() if error.head.startswith(magic)), None)
        if looks_like is not None and looks_like not in loaded:  # a loaded one that says no: damage
            hints = [f"install or enable a compressor plugin that reads {looks_like}", *missing.values()]
            return PluginError(f"{name!r} is {looks_like}-compressed, and no loaded compressor reads it", hint="; ".join(hints))
        suffix = name[name.index(BACKUP_MARK) + len(BACKUP_MARK):] if BACKUP_MARK in name else ""
        if suffix and suffix not in {compressor.suffix for compressor in compressors}:
            hints = [f"install or enable the compressor plugin that writes {suffix!r} files", *missing.values()]
            return PluginError(f"{error.message}; no loaded compressor writes files ending in {suffix!r}", hint="; ".join(hints))
        if not missing:
            return error
        return UnrecognisedFileError(error.message, hint="if it is a backup, it may need a plugin that is not loaded: " + "; ".join(missing.values()))

    def batching_settings(self) -> dict[str, Any]:
        return attrs.asdict(self.config.batching)

    def unique_backup_path(self, directory: Path, display_name: str, created: datetime.datetime, suffix: str) -> Path:
        return directory / backup_file_name(display_name, created, suffix)

    def _listeners(self) -> list[EventListener]:
        listeners: list[EventListener] = []
        for entry in self.hooks.listeners:
            cls = entry.implementation
            if cls.interactive and not self.interactive:
                continue
            try:
                listeners.append(cls({"monitoring": attrs.asdict(self.config.monitoring), "batching": attrs.asdict(self.config.batching)}))
            except Exception as error:
                log.warning("event listener %r failed to start: %s", entry.name, error)
        return listeners + list(self._extra_listeners)

    def run_operation(self, kind: str, body: Callable[[OperationContext, ResourceManager], T], *, source: str | None = None, target: str | None = None) -> T:
        """Run ``body(context, resources)`` as one operation of ``kind`` (for plugin commands).

        The same machinery as backup and restore: listeners and events, tracked temporary files,
        clean cancellation, and errors classified into one user-facing line.
        """
        return self._run(kind, body, source=source, target=target)

    def _run(self, kind: str, body: Callable[[OperationContext, ResourceManager], T], *, source: str | None = None, target: str | None = None) -> T:
        """Run ``body`` as one operation: context, events, resources, cancellation, classified errors.

        An operation run inside another (the trial restore of a deep verify) is part of it: it
        gets no listeners of its own, so it shows no progress and leaves no history of its own.
        """
        nested = self._depth > 0
        context = OperationContext(kind=kind, source=source, target=target, listeners=[] if nested else self._listeners())
        resources = ResourceManager()
        self._depth += 1
        try:
            with cancel_on_signals(kind):
                try:
                    context.start()
                    result = body(context, resources)
                except (Exception, KeyboardInterrupt) as error:
                    resources.cleanup()
                    classified = classify(error)
                    context.fail(classified)
                    if classified is error:
                        raise
                    raise classified from error
                leaks = resources.cleanup()
                for leak in leaks:
                    context.emit("warning", message=f"resource leak: {leak}")
                context.finish(result=result)
                return result
        finally:
            self._depth -= 1

    # -- operations ----------------------------------------------------------------------------
    def create_backup(
        self,
        source: str,
        output_dir: str | os.PathLike[str] | None = None,
        *,
        compression: str | None = None,
        level: int | None = None,
        batching: str | None = None,
        tables: tuple[str, ...] = (),
        exclude_tables: tuple[str, ...] = (),
    ) -> BackupResult:
        """Back up ``source`` into a new file in ``output_dir``; returns where and what."""
        defaults = self.config.backup
        for registry, asked in ((self.hooks.compressors, compression), (self.hooks.batching_strategies, batching)):
            if asked is not None and not asked.strip():  # "" must not quietly mean the default
                raise UsageError(f"an empty {registry.kind} name was given; known: {', '.join(entry.name for entry in registry)}")
        notes: list[str] = []
        chosen_compression = self._available(self.hooks.compressors, compression, defaults.compression, notes)
        options = BackupOptions(
            compression=chosen_compression,
            level=level if level is not None else (defaults.level if chosen_compression == defaults.compression else None),
            batching=self._available(self.hooks.batching_strategies, batching, defaults.batching, notes),
            tables=tuple(tables),
            exclude_tables=tuple(exclude_tables) + tuple(t for t in defaults.exclude_tables if t not in exclude_tables),
        )
        if level is None and options.level is not None and options.compression in self.hooks.compressors:
            try:  # a level from the file: say which key holds it
                self.hooks.compressors.get(options.compression).check_level(options.level)
            except ValueError as error:
                where = f" in {self.config.path}" if self.config.path else ""
                raise ConfigError(f"bad configuration{where}: backup.level: {error}") from None
        directory = Path(output_dir if output_dir is not None else defaults.output_dir)

        def body(context: OperationContext, resources: ResourceManager) -> BackupResult:
            for note in notes:
                context.emit("warning", message=note)
            with self.output_directory(directory):
                if self.config.preflight.enabled:
                    run_preflight(self, source, directory, options.compression, on_retry=context.retrying).raise_for_failure()
                remove_leftovers(directory, self._is_our_temporary)
                return run_backup(self, source, directory, options, context, resources)

        return self._run("backup", body, source=self._identity_of(source))

    @staticmethod
    def _available(registry: Any, asked: str | None, default: str, notes: list[str]) -> str:
        """``asked`` as is (a missing plugin is then an error naming it); the configured default
        when it is available; otherwise the first available one, with a warning."""
        if asked or default in registry or not len(registry):
            return asked or default
        fallback = next(iter(registry)).name
        note = f"the default {registry.kind} {default!r} is unavailable; using {fallback!r} instead"
        try:
            registry.entry(default)
        except UnibackupError as error:
            note = f"{error.message}; using the {registry.kind} {fallback!r} instead"
        log.warning("%s", note)
        notes.append(note)
        return fallback

    def check_source(self, source: str, output_dir: str | os.PathLike[str] | None = None, *, compression: str | None = None) -> PreflightReport:
        """Run the preflight checks of a backup of ``source`` alone, afresh (``unibackup check``)."""
        directory = Path(output_dir if output_dir is not None else self.config.backup.output_dir)
        name = compression or self.config.backup.compression
        identity = self.resolve_location(source).identity

        def body(context: OperationContext, resources: ResourceManager) -> PreflightReport:
            return run_preflight(self, source, directory, name, use_cache=False, on_retry=context.retrying)

        return self._run("check", body, source=identity)

    @contextlib.contextmanager
    def output_directory(self, directory: Path) -> Iterator[Path]:
        """Make sure ``directory`` exists and is writable, creating what is missing (mode 0700),
        for the duration of the block; a block that fails leaves no directory it made behind."""
        created = self._prepare_output_dir(directory)
        try:
            yield directory
        except BaseException:
            for path in created:  # deepest first; one that is not empty stops the removal
                try:
                    path.rmdir()
                except OSError:
                    break
            raise

    def _prepare_output_dir(self, directory: Path) -> list[Path]:
        """Make sure ``directory`` exists and is writable; return the directories made, deepest first."""
        if directory.exists() and not directory.is_dir():
            raise UsageError(f"the output directory {str(directory)!r} is a file")
        created: list[Path] = []
        if not directory.exists():
            try:
                for missing in reversed([directory, *directory.parents]):
                    if not missing.exists():
                        missing.mkdir(mode=0o700)  # every directory we create is private
                        created.insert(0, missing)
            except OSError as error:
                raise UsageError(f"cannot create the output directory {str(directory)!r}: {error.strerror}") from None
        if not os.access(directory, os.W_OK | os.X_OK):
            raise UsageError(f"the output directory {str(directory)!r} is not writable")
        return created

    def _is_our_temporary(self, path: Path) -> bool:
        """A leftover is ours when it is empty or opens as the start of a backup."""
        try:
            if path.stat().st_size == 0:
                return True
            with self.open_backup(path) as opened:
                for lines in opened.splitter:
                    return lines[0].startswith(b'{"type":"header"')
        except (UnibackupError, OSError):
            return False
        return False

    def restore_backup(
        self,
        backup: str | os.PathLike[str],
        target: str,
        *,
        tables: tuple[str, ...] = (),
        force: bool = False,
        allow_lossy: bool = False,
        on_plan: Callable[[RestorePlan], None] | None = None,
    ) -> RestoreResult:
        """Restore ``backup`` into ``target``, validating as it streams; nothing is written on failure.

        ``on_plan`` sees a cross-engine restore's plan (with its fidelity report) before anything
        is written.
        """

        def body(context: OperationContext, resources: ResourceManager) -> RestoreResult:
            return run_restore(self, str(backup), target, tuple(tables), force, allow_lossy, context, resources, on_plan)

        return self._run("restore", body, source=str(backup))

    def verify_backup(self, backup: str | os.PathLike[str], level: str = "full") -> ValidationReport:
        """Validate ``backup`` at ``level`` (quick, full, deep); a damaged file gives ``valid=False``."""
        validator_cls = self.hooks.validators.get(level)

        def body(context: OperationContext, resources: ResourceManager) -> ValidationReport:
            return validator_cls().validate(str(backup), self)

        return self._run("verify", body, source=str(backup))

    def inspect_backup(self, backup: str | os.PathLike[str], *, read_all: bool = True) -> BackupInfo:
        """Header, trailer and per-table row counts of ``backup`` (checked as it is read)."""
        with self.open_backup(backup) as opened:
            reader = BackupReader(opened.splitter, check_digests=False)
            table_rows: dict[str, int] = {}
            header = None
            for record in reader:
                if isinstance(record, BackupHeader):
                    header = record
                    if not read_all:
                        break
                elif hasattr(record, "digest") and hasattr(record, "name"):
                    name = f"{record.namespace}.{record.name}" if record.namespace else record.name
                    table_rows[name] = record.rows
            assert header is not None
            compressor = opened.compressor.name if opened.compressor else "none"
            return BackupInfo(str(opened.path), opened.compressed_size, compressor, opened.format_version, opened.migrators, header, reader.trailer, table_rows)

    def list_backups(self, directory: str | os.PathLike[str] = ".") -> list[BackupSummary]:
        """Every backup file in ``directory``, newest first; unreadable ones say why."""
        directory = Path(directory)
        if not directory.is_dir():
            raise UsageError(f"{str(directory)!r} is not a directory")
        summaries = []
        for path in sorted(directory.iterdir()):
            if not path.is_file() or not is_backup_name(path.name):
                continue
            try:
                info = self.inspect_backup(path, read_all=False)
                header = info.header
                summaries.append(
                    BackupSummary(str(path), info.size, info.compressor, info.format_version, header.created_at, header.source.identity, header.source.engine, len(header.schema.tables))
                )
            except UnibackupError as error:
                summaries.append(BackupSummary(str(path), path.stat().st_size, None, None, None, None, None, None, error.user_line()))
        summaries.sort(key=lambda s: s.created_at or "", reverse=True)
        return summaries

    def estimate(self, source: str) -> SizeEstimate:
        """Rows, and the backup's size with each compressor, measured on a sample of every table."""
        location = self.resolve_location(source)
        source_cls = self.hooks.source_for(location)
        reader = source_cls(location, self.source_settings(source_cls))
        try:
            reader.open_snapshot()
            schema = reader.describe()
            size = reader.estimate_size()
            sample = sample_source(reader, schema, [entry.implementation for entry in self.hooks.compressors])
        finally:
            reader.close()
        rows = sum(t.row_estimate or 0 for t in schema.tables)
        per_table = {t.qualified_name: t.row_estimate or 0 for t in schema.tables}
        return SizeEstimate(
            location.identity, source_cls.name, len(schema.tables), rows, size, sample.estimated_backup_bytes, per_table,
            uncompressed_bytes=sample.estimated_json_bytes, sampled_rows=sample.sampled_rows, ratios=sample.ratios,
        )
