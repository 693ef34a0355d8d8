"""The ``postgresql`` source: one read-only repeatable-read snapshot, rows streamed by COPY.

Each table's rows leave the server already encoded: ``COPY (SELECT <row JSON>) TO STDOUT`` yields
one finished row line per message (see :mod:`.encoding`), so the client only gathers lines into
batches of the size the batching strategy asks for. Memory stays at one batch.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import psycopg

from unibackup.errors import SourceError, UnibackupError, UsageError
from unibackup.models import ColumnMapping, DatabaseSchema, TableSchema
from unibackup.source import BatchSizer, Location, RestorePlan, Source

from .catalog import Catalog, read_catalog
from .connection import connect, copy_block, operation_error
from .encoding import copy_out_sql, tag_raw_text
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
        self._reading = False  # will_read() ran: a real backup, not a size sample

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
        except UnibackupError:
            raise
        except psycopg.Error as error:
            raise operation_error(error, "reading the schema", self._conn) from None
        self._catalog = catalog
        self._table_bytes = size
        return catalog.schema

    def will_read(self, tables: Sequence[TableSchema]) -> None:
        """Lock the tables the backup reads and read their sequences' values: only what the
        backup holds needs a privilege."""
        if self._catalog is None:
            raise RuntimeError("describe() must run before will_read()")
        try:
            self._catalog.prepare_read(self.conn, list(tables))
        except UnibackupError:
            raise
        except psycopg.Error as error:
            raise operation_error(error, "locking the tables", self._conn) from None
        self._reading = True

    def read_batches(self, table: TableSchema, sizer: BatchSizer) -> Iterator[Any]:
        if self._catalog is None:
            raise RuntimeError("describe() must run before read_batches()")
        key = (table.namespace, table.name)
        query = self._catalog.row_queries.get(key)
        if query is None or (key in self._catalog.unreadable and not self._reading):
            return  # a size sample (preflight, estimate) passes over a table the user may not read
        conn = self.conn
        finished = False
        # SQL_ASCII text may be any bytes: read without conversion (which would insist on UTF-8),
        # and tag the values that are not UTF-8
        sql_ascii = self._catalog.schema.settings.get("server_encoding") == "SQL_ASCII"
        batch = _raw_batch if sql_ascii else _batch
        try:
            # A reader may stop early (a size sample); cancelling a COPY aborts what it ran in, so
            # each table is read inside a savepoint that is rolled back then. The snapshot stays.
            conn.execute("SAVEPOINT unibackup_read")
            if sql_ascii:
                conn.execute("SET client_encoding = 'SQL_ASCII'")
            with conn.cursor() as cursor, copy_block(cursor, copy_out_sql(query)) as copy:
                wanted = sizer.next_batch_size()
                buffer = bytearray()
                count = 0
                for data in copy:
                    buffer += data
                    count += 1
                    if count >= wanted or len(buffer) >= MAX_BATCH_BYTES:
                        yield batch(buffer, count)
                        buffer = bytearray()
                        count = 0
                        wanted = sizer.next_batch_size()
                if count:
                    yield batch(buffer, count)
            if sql_ascii:
                conn.execute("SET client_encoding = 'UTF8'")
            conn.execute("RELEASE SAVEPOINT unibackup_read")
            finished = True
        except psycopg.Error as error:
            raise operation_error(error, f"reading table {table.qualified_name!r}", conn) from None
        except ValueError as error:  # from tag_raw_text
            raise SourceError(f"reading table {table.qualified_name!r} failed: {error}") from None
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


def _raw_batch(buffer: bytearray, count: int) -> Any:
    return _batch(bytearray(tag_raw_text(bytes(buffer))), count)


def _batch(buffer: bytearray, count: int) -> Any:
    if EncodedRows is not None:
        return EncodedRows(bytes(buffer), count)
    return bytes(buffer).split(b"\n")[:-1]
