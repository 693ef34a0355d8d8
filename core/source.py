"""The source-reader and restore-target interface that engine plugins implement.

A source plugin registers one class per engine through ``unibackup_register_sources``. The class
is chosen by the scheme of the location (``sqlite:``, ``postgresql:``, ``mysql:``; a bare path is
handed to the plugins whose :meth:`Source.accepts_path` says yes). One instance serves one
operation: a backup (``open_snapshot`` ... ``close``) or a restore (``open_restore`` ... ``close``).
"""

from __future__ import annotations

import abc
import urllib.parse
from typing import Any, ClassVar, Iterator, Protocol, Sequence

import attrs

from .models import ColumnMapping, DatabaseSchema, TableSchema
from .values import EncodedRows


@attrs.frozen
class Location:
    """A parsed source or target location. ``password`` never leaves this object."""

    raw: str = attrs.field(repr=False)  # as typed: it may hold a password
    scheme: str
    path: str = ""
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    database: str | None = None
    query: dict[str, str] = attrs.field(factory=dict, repr=lambda query: repr(_without_secrets(query)))

    @property
    def identity(self) -> str:
        """The location as it may be shown or recorded: no password, no secrets."""
        if self.host is None and self.scheme == "sqlite":
            return f"sqlite:///{self.path.lstrip('/')}" if self.path.startswith("/") else f"sqlite:{self.path}"
        netloc = self.host or ""
        if self.port:
            netloc = f"{netloc}:{self.port}"
        if self.user:
            netloc = f"{urllib.parse.quote(self.user, safe='')}@{netloc}"
        query = {key: value for key, value in self.query.items() if key.lower() not in SECRET_QUERY_KEYS}
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"{self.scheme}://{netloc}/{self.database or ''}{suffix}"

    @property
    def display_name(self) -> str:
        """A short name for file names: the database or file stem."""
        if self.database:
            return self.database
        stem = self.path.rstrip("/").rsplit("/", 1)[-1]
        for suffix in (".sqlite3", ".sqlite", ".db", ".mbtiles"):
            if stem.lower().endswith(suffix) and len(stem) > len(suffix):
                return stem[: -len(suffix)]
        return stem or self.scheme


SECRET_QUERY_KEYS = frozenset({"password", "passwd", "sslpassword", "secret", "token", "sslkey"})


def _without_secrets(query: dict[str, str]) -> dict[str, str]:
    return {key: ("***" if key.lower() in SECRET_QUERY_KEYS else value) for key, value in query.items()}


class BatchSizer(Protocol):
    """What a source asks before each fetch: how many rows to read next."""

    def next_batch_size(self) -> int: ...


@attrs.frozen
class RestorePlan:
    """What a restore target is asked to write."""

    schema: DatabaseSchema
    tables: tuple[TableSchema, ...]  # the tables selected for restore, in backup order
    source_engine: str
    force: bool = False
    allow_lossy: bool = False
    mappings: tuple[ColumnMapping, ...] = ()  # cross-engine only: from ``map_columns``
    target_engine: str = ""


class Source(abc.ABC):
    """An engine: read side (backup) and write side (restore target).

    Subclasses set :attr:`name` and :attr:`schemes`, and raise :class:`~unibackup.errors.UnibackupError`
    subclasses (``SourceError``, ``TransientError``, ``UsageError``) for failures a user can cause.
    """

    name: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]] = ()
    version: ClassVar[str] = ""
    #: an attrs class of the settings the source takes from ``[source.<name>]``: the core checks
    #: the table against it (unknown keys and wrong values name their key) and fills in defaults
    settings_type: ClassVar[type | None] = None

    def __init__(self, location: Location, settings: dict[str, Any] | None = None):
        self.location = location
        self.settings = settings or {}

    @classmethod
    def accepts_path(cls, path: str) -> bool:
        """Whether a bare file path (no scheme) is a database of this engine."""
        return False

    # -- backup side -------------------------------------------------------------------------
    @abc.abstractmethod
    def open_snapshot(self) -> None:
        """Connect and start one consistent read snapshot for the whole backup."""

    @abc.abstractmethod
    def server_version(self) -> str:
        """The engine's version string."""

    @abc.abstractmethod
    def describe(self) -> DatabaseSchema:
        """Every table (columns in row order) and schema object, with row-count estimates."""

    @abc.abstractmethod
    def read_batches(self, table: TableSchema, sizer: BatchSizer) -> Iterator["EncodedRows | Sequence[bytes]"]:
        """Yield the table's rows encoded (see :mod:`unibackup.values`), a batch at a time.

        Ask ``sizer.next_batch_size()`` before each fetch. Yield what
        :func:`~unibackup.values.encode_batch` returns (the fast path), or a sequence of lines
        without newlines.
        """

    def will_read(self, tables: Sequence[TableSchema]) -> None:
        """Called once per backup, after :meth:`describe`, with the tables the backup reads (not
        by the preflight or ``estimate``): the place to warn about what the backup cannot cover
        in them. Default: nothing."""

    def estimate_size(self) -> int:
        """Bytes the source's data takes on its side; the basis of size estimates."""
        return 0

    def health_check(self) -> list[str]:
        """Problems found by a quick consistency check of the source; empty when healthy."""
        return []

    # -- restore side ------------------------------------------------------------------------
    def map_columns(self, plan: "RestorePlan") -> list[ColumnMapping]:
        """Cross-engine restore only: each column's type here and how faithful it is.

        Called before anything is written when ``plan.source_engine`` is another engine. A mapping
        that is not ``exact`` makes the restore refuse unless ``plan.allow_lossy``; an
        ``impossible`` one always refuses.
        """
        raise NotImplementedError(f"{self.name} cannot restore backups of other engines")

    def open_restore(self, plan: RestorePlan) -> None:
        """Prepare the target (refuse a non-empty one unless ``plan.force``) and begin a transaction."""
        raise NotImplementedError(f"{self.name} cannot be a restore target")

    def create_schema(self, plan: RestorePlan) -> list[str]:
        """Create what must exist before the rows; return the names of objects skipped."""
        raise NotImplementedError

    def write_rows(self, table: TableSchema, rows: list[list[Any]]) -> None:
        """Insert a batch of decoded rows into ``table``."""
        raise NotImplementedError

    def finish_schema(self, plan: RestorePlan) -> list[str]:
        """Create what comes after the rows (indexes, triggers, views, keys, sequence values)."""
        raise NotImplementedError

    def commit(self) -> None:
        """Make the restore durable and visible (replace the old target only now)."""
        raise NotImplementedError

    def rollback(self) -> None:
        """Undo everything this restore did; the target is as it was before."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections and files; safe to call more than once."""
