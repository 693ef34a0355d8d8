"""The ``postgresql`` source: one read-only repeatable-read snapshot, rows streamed by COPY.

Each table's rows leave the server already encoded: ``COPY (SELECT <row JSON>) TO STDOUT`` yields
one finished row line per message (see :mod:`.encoding`), so the client only gathers lines into
batches of the size the batching strategy asks for. Memory stays at one batch.
"""

from __future__ import annotations

from typing import Any, Iterator

import psycopg

from unibackup.errors import UnibackupError, UsageError
from unibackup.models import ColumnMapping, DatabaseSchema, TableSchema
from unibackup.source import BatchSizer, Location, RestorePlan, Source

from .catalog import Catalog, read_catalog
from .connection import connect, operation_error
from .encoding import copy_out_sql
from .restore import RestoreSession, map_columns

try:  # the batch type that carries finished lines; older cores take lists of lines
    from unibackup.values import EncodedRows
except ImportError:  # pragma: no cover
    EncodedRows = None  # type: ignore[assignment,misc]

#: Session settings that make the server's text output stable and exact.
SESSION_SETTINGS = (
    "SET client_encoding = 'UTF8'",
    "SELECT pg_catalog.set_config('search_path', '', false)",
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 1",
    "SET statement_timeout = 0",
    "SET idle_in_transaction_session_timeout = 0",
    "SET standard_conforming_strings = on",
    "SET client_min_messages = warning",
)


#: A batch is handed on early when its lines reach this size, whatever the row count asked for:
#: the strategy learns row sizes from the batches before, and a table's first rows may be huge.
MAX_BATCH_BYTES = 16 * 1024 * 1024


def configure_session(conn: psycopg.Connection, settings: dict[str, Any]) -> None:
    """Apply :data:`SESSION_SETTINGS` and the lock timeout."""
    for statement in SESSION_SETTINGS:
        conn.execute(statement)
    conn.execute("SELECT pg_catalog.set_config('lock_timeout', %s, false)", (str(settings.get("lock_timeout", "30s")),))


def schemas_of(location: Location) -> tuple[str, ...]:
    """The schemas named by ``?schema=a,b`` in the URL."""
    text = location.query.get("schema", "")
    return tuple(name.strip() for name in text.split(",") if name.strip())


class PostgreSQLSource(Source):
    """PostgreSQL databases: source (``postgresql://``) and restore target."""

    name = "postgresql"
    schemes = ("postgresql",)
    version = psycopg.__version__

    def __init__(self, location: Location, settings: dict[str, Any] | None = None):
        super().__init__(location, settings)
        if not location.database:
            raise UsageError(f"the PostgreSQL URL {location.identity!r} names no database", hint="postgresql://user@host:port/database")
        self._conn: psycopg.Connection | None = None
        self._catalog: Catalog | None = None
        self._table_bytes = 0
        self._restore: RestoreSession | None = None

    @property
    def conn(self) -> psycopg.Connection:
        if self._conn is None:
            raise RuntimeError("the PostgreSQL source is not open")
        return self._conn

    # -- backup side -------------------------------------------------------------------------
    def open_snapshot(self) -> None:
        conn = connect(self.location, self.settings)
        try:
            configure_session(conn, self.settings)
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn.execute("SELECT 1")  # the snapshot is taken by the first statement
        except psycopg.Error as error:
            conn.close()
            raise operation_error(error, "starting the snapshot", conn) from None
        self._conn = conn

    def server_version(self) -> str:
        version = self.conn.info.parameter_status("server_version") or str(self.conn.info.server_version)
        return f"PostgreSQL {version}"

    def describe(self) -> DatabaseSchema:
        try:
            catalog, size = read_catalog(self.conn, schemas_of(self.location))
            if catalog.relations:
                self.conn.execute(f"LOCK TABLE {', '.join(catalog.relations)} IN ACCESS SHARE MODE")
        except UnibackupError:
            raise
        except psycopg.Error as error:
            raise operation_error(error, "reading the schema", self._conn) from None
        self._catalog = catalog
        self._table_bytes = size
        return catalog.schema

    def read_batches(self, table: TableSchema, sizer: BatchSizer) -> Iterator[Any]:
        if self._catalog is None:
            raise RuntimeError("describe() must run before read_batches()")
        query = self._catalog.row_queries.get((table.namespace, table.name))
        if query is None:
            return
        conn = self.conn
        finished = False
        try:
            # A reader may stop early (a size sample); cancelling a COPY aborts what it ran in, so
            # each table is read inside a savepoint that is rolled back then. The snapshot stays.
            conn.execute("SAVEPOINT unibackup_read")
            with conn.cursor() as cursor, cursor.copy(copy_out_sql(query)) as copy:
                wanted = sizer.next_batch_size()
                buffer = bytearray()
                count = 0
                for data in copy:
                    buffer += data
                    count += 1
                    if count >= wanted or len(buffer) >= MAX_BATCH_BYTES:
                        yield _batch(buffer, count)
                        buffer = bytearray()
                        count = 0
                        wanted = sizer.next_batch_size()
                if count:
                    yield _batch(buffer, count)
            conn.execute("RELEASE SAVEPOINT unibackup_read")
            finished = True
        except psycopg.Error as error:
            raise operation_error(error, f"reading table {table.qualified_name!r}", conn) from None
        finally:
            if not finished and not conn.broken and not conn.closed:
                try:
                    conn.execute("ROLLBACK TO SAVEPOINT unibackup_read")
                except psycopg.Error:
                    pass

    def estimate_size(self) -> int:
        if self._catalog is None:
            self.describe()
        return self._table_bytes

    def health_check(self) -> list[str]:
        """Nothing beyond what reading the schema proved: the server checks its own pages, and a
        full check (amcheck) is far too slow for a preflight."""
        return []

    # -- restore side ------------------------------------------------------------------------
    def map_columns(self, plan: RestorePlan) -> list[ColumnMapping]:
        return map_columns(plan)

    def open_restore(self, plan: RestorePlan) -> None:
        self._restore = RestoreSession(self.location, self.settings, schemas_of(self.location))
        self._restore.open(plan)

    @property
    def restore_session(self) -> RestoreSession:
        if self._restore is None:
            raise RuntimeError("open_restore() must run first")
        return self._restore

    def create_schema(self, plan: RestorePlan) -> list[str]:
        return self.restore_session.create_schema(plan)

    def write_rows(self, table: TableSchema, rows: list[list[Any]]) -> None:
        self.restore_session.write_rows(table, rows)

    def finish_schema(self, plan: RestorePlan) -> list[str]:
        return self.restore_session.finish_schema(plan)

    def commit(self) -> None:
        self.restore_session.commit()

    def rollback(self) -> None:
        if self._restore is not None:
            self._restore.rollback()

    def close(self) -> None:
        if self._restore is not None:
            self._restore.close()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except psycopg.Error:
                pass


def _batch(buffer: bytearray, count: int) -> Any:
    if EncodedRows is not None:
        return EncodedRows(bytes(buffer), count)
    return bytes(buffer).split(b"\n")[:-1]
