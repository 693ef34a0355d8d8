"""The ``history`` listener: one JSON line per finished, failed or cancelled operation.

Each line is a :class:`HistoryRecord`: what ran on what (identities only, never credentials), when,
how it ended, and its figures: rows, bytes, duration, throughput, and the performance monitor's
peak memory and mean CPU (taken from the final event's ``details["summary"]["monitor"]``, so the
recorder does not depend on the monitor being enabled). ``unibackup report`` reads the file.

Where the file is: ``UNIBACKUP_HISTORY_FILE``, then ``monitoring.history_file``, then
``$XDG_DATA_HOME/unibackup/history.jsonl`` (``~/.local/share/unibackup/history.jsonl``). The
file is created 0600 and its directory 0700. Each record is one ``write`` on a descriptor opened
with ``O_APPEND``, so runs that end at the same time never interleave their lines.
``monitoring.enabled = false`` records nothing.
"""

from __future__ import annotations

import collections
import datetime
import logging
import os
import urllib.parse
from pathlib import Path
from typing import Any

import attrs
import cattrs
import orjson

from unibackup import __version__, hookimpl
from unibackup.events import Event, EventListener
from unibackup.models import from_dict, to_dict
from unibackup.source import SECRET_QUERY_KEYS

log = logging.getLogger(__name__)

HISTORY_ENV = "UNIBACKUP_HISTORY_FILE"
HISTORY_FILE_NAME = "history.jsonl"
RECORD_VERSION = 1
_FINAL = frozenset({"finished", "failed", "cancelled"})
_OUTCOMES = {"finished": "succeeded", "failed": "failed", "cancelled": "cancelled"}


@attrs.frozen
class HistoryRecord:
    """One operation as the history keeps it."""

    id: str
    operation: str  # backup, restore, verify, migrate, ...
    outcome: str  # succeeded, failed, cancelled
    started_at: str  # ISO 8601, UTC
    ended_at: str
    duration_s: float
    source: str | None = None
    target: str | None = None
    error: str | None = None
    error_class: str | None = None
    rows: int = 0  # rows moved (counted from the batches)
    bytes: int = 0  # encoded row bytes moved (counted from the batches)
    rows_per_second: float = 0.0
    mb_per_second: float = 0.0
    tables: int | None = None
    path: str | None = None  # the backup file written, if any
    compressor: str | None = None
    level: int | None = None
    uncompressed_bytes: int | None = None
    compressed_bytes: int | None = None
    peak_rss_bytes: int | None = None
    mean_cpu_percent: float | None = None
    memory_budget_bytes: int | None = None
    batch_bytes: int | None = None
    retries: int = 0
    warnings: tuple[str, ...] = ()
    tool_version: str = ""
    record_version: int = RECORD_VERSION


def history_path(monitoring: dict[str, Any] | None = None) -> Path:
    """Where the history lives: the environment override, the configuration, the data directory."""
    override = os.environ.get(HISTORY_ENV)
    if override:
        return Path(override).expanduser()
    configured = (monitoring or {}).get("history_file")
    if configured:
        return Path(configured).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data_home) if os.path.isabs(data_home) else Path.home() / ".local" / "share"
    return base / "unibackup" / HISTORY_FILE_NAME


def without_credentials(identity: str | None) -> str | None:
    """``identity`` with any password or secret query parameter removed (a second line of defence:
    the core hands listeners identities that carry none)."""
    if not identity or "://" not in identity:
        return identity
    try:
        parts = urllib.parse.urlsplit(identity)
        password = parts.password
    except ValueError:
        return identity.split("://", 1)[0] + "://(unparsable)"
    netloc = parts.netloc
    if password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{hostport}" if user else hostport
    query = parts.query
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    public = [(k, v) for k, v in pairs if k.lower() not in SECRET_QUERY_KEYS]
    if password is None and len(public) == len(pairs):
        return identity  # nothing to remove: keep it exactly as it was
    query = urllib.parse.urlencode(public) if len(public) != len(pairs) else query
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _iso(timestamp: float | None) -> str:
    if timestamp is None:
        timestamp = datetime.datetime.now(datetime.timezone.utc).timestamp()
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def append_record(path: Path, record: HistoryRecord) -> None:
    """Append one record as one line: one ``write`` with ``O_APPEND``; file 0600, directory 0700."""
    line = orjson.dumps(to_dict(record)) + b"\n"
    directory = path.parent
    if not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        written = os.write(fd, line)
    finally:
        os.close(fd)
    if written != len(line):
        raise OSError(f"only {written} of {len(line)} bytes of the history record were written")


def read_history(path: Path, limit: int | None = None) -> tuple[list[HistoryRecord], int]:
    """The readable records of ``path`` in file order (the last ``limit`` of them, if given), and
    how many lines were skipped (a line cut short by a crash, or written by a newer unibackup in a
    shape this one cannot read)."""
    records: collections.deque[HistoryRecord] = collections.deque(maxlen=limit)
    skipped = 0
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return [], 0
    with handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                data = orjson.loads(line)
                records.append(from_dict(data, HistoryRecord))
            except (orjson.JSONDecodeError, cattrs.BaseValidationError, TypeError, ValueError, KeyError, AttributeError):
                skipped += 1
    return list(records), skipped


def _figure(obj: Any, *names: str) -> Any:
    """``obj.a.b`` or None (results are attrs models of the core; plugin results may differ)."""
    for name in names:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


class HistoryRecorder(EventListener):
    """Counts what the operation moved and appends its record when it ends."""

    name = "history"
    version = "1.0"

    def __init__(self, settings: dict[str, Any] | None = None, *, path: Path | None = None):
        super().__init__(settings)
        monitoring = self.settings.get("monitoring") or {}
        batching = self.settings.get("batching") or {}
        self.enabled = bool(monitoring.get("enabled", True))
        self.path = path if path is not None else history_path(monitoring)
        budget_mb = batching.get("memory_budget_mb")
        self._budget = int(budget_mb * 1024 * 1024) if budget_mb else None
        self._batch_bytes = batching.get("batch_bytes")
        self.rows = 0
        self.bytes = 0
        self.retries = 0
        self.warnings: list[str] = []
        self.record: HistoryRecord | None = None

    def handle(self, event: Event) -> None:
        kind = event.kind
        if kind == "batch_written":
            self.rows += event.rows
            self.bytes += event.bytes
        elif kind == "retry":
            self.retries += 1
        elif kind == "warning" and event.message and len(self.warnings) < 20:
            self.warnings.append(event.message)
        elif kind in _FINAL and self.enabled and self.record is None:
            self.record = self.build_record(event)
            try:
                append_record(self.path, self.record)
            except OSError as error:
                log.warning("could not record the operation in the history %s: %s", self.path, error)

    def build_record(self, event: Event) -> HistoryRecord:
        """The record of the operation that ``event`` (finished, failed or cancelled) ends."""
        details = event.details or {}
        operation = details.get("operation") or {}
        monitor = (details.get("summary") or {}).get("monitor") or {}
        result = details.get("result")
        started = operation.get("started_at")
        ended = operation.get("ended_at") or event.at
        duration = max(0.0, ended - started) if started is not None else float(monitor.get("duration_s") or 0.0)
        compression = _figure(result, "compression")
        tables = _figure(result, "trailer", "tables")
        if tables is None and isinstance(_figure(result, "tables"), int):
            tables = result.tables
        peak = monitor.get("peak_rss_bytes") or _figure(result, "metrics", "peak_rss_bytes")
        warnings = tuple(self.warnings) + tuple(w for w in monitor.get("memory_warnings") or () if w not in self.warnings)
        return HistoryRecord(
            id=event.operation_id,
            operation=event.operation,
            outcome=operation.get("outcome") or _OUTCOMES[event.kind],
            started_at=_iso(started),
            ended_at=_iso(ended),
            duration_s=round(duration, 6),
            source=without_credentials(operation.get("source")),
            target=without_credentials(operation.get("target")),
            error=event.message if event.kind != "finished" else None,
            error_class=details.get("class"),
            rows=self.rows,
            bytes=self.bytes,
            rows_per_second=round(self.rows / duration, 1) if duration > 0 else 0.0,
            mb_per_second=round(self.bytes / duration / 1_000_000, 3) if duration > 0 else 0.0,
            tables=tables if isinstance(tables, int) else None,
            path=_figure(result, "path") if isinstance(_figure(result, "path"), str) else None,
            compressor=_figure(compression, "compressor"),
            level=_figure(compression, "level"),
            uncompressed_bytes=_figure(compression, "bytes_in"),
            compressed_bytes=_figure(compression, "bytes_out"),
            peak_rss_bytes=int(peak) if peak else None,
            mean_cpu_percent=monitor.get("mean_cpu_percent"),
            memory_budget_bytes=self._budget,
            batch_bytes=self._batch_bytes,
            retries=self.retries,
            warnings=warnings,
            tool_version=__version__,
        )


@hookimpl
def unibackup_register_listeners() -> list[type[EventListener]]:
    return [HistoryRecorder]
