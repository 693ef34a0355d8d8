"""The ``mysql`` source and restore target: MySQL and MariaDB through PyMySQL.

Backup: one connection, one ``REPEATABLE READ`` transaction started ``WITH CONSISTENT
SNAPSHOT``, rows streamed through an unbuffered cursor in the sizes the batching strategy asks
for, the session's time zone at ``+00:00`` so that TIMESTAMP values are plain UTC instants.

Restore: MySQL cannot roll DDL back, so the target database must be new or empty. Tables (and
sequences and routines) are created first, the rows are loaded in one transaction with foreign
key and unique checks off, then come foreign keys, ``AUTO_INCREMENT`` counters, views, triggers
and events. On any failure everything this restore created is dropped again (the database
itself when the restore created it); what cannot be dropped is named in the warning.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Iterator, Sequence

import attrs

from unibackup.errors import SourceError, TransientError, UnibackupError, UsageError
from unibackup.models import ColumnMapping, ColumnSchema, DatabaseSchema, SchemaObject, TableSchema
from unibackup.source import BatchSizer, Location, RestorePlan, Source
from unibackup.values import JsonText, encode_batch

from . import mapping
from .connection import PRIVILEGE_CODES, TRANSIENT_CODES, check_options, connect, error_code, pymysql_module, quote, server_label, translate
from .inserts import Packer, insert_prefix
from .constraints import FOREIGN_KEY_KINDS, Constraints, ForeignKey, belongs_to, by_table, table_constraints, translate_check
from .schema import Catalog, ServerInfo
from .types import read_expression

log = logging.getLogger(__name__)

#: The restore session: keep AUTO_INCREMENT zeros, refuse engine substitution, fail rather than
#: truncate, and accept the zero and invalid dates that a same-engine backup may hold.
RESTORE_SQL_MODE = "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,STRICT_ALL_TABLES,ALLOW_INVALID_DATES"
_DROP = {
    "table": "TABLE", "view": "VIEW", "sequence": "SEQUENCE", "procedure": "PROCEDURE", "function": "FUNCTION", "event": "EVENT",
}
#: The session for a row holding an ENUM's error value (''), which only a non-strict mode stores;
#: the server's warnings then show that nothing else in the row was changed.
ENUM_ERROR_SQL_MODE = "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES"
#: Server errors about one value that the column cannot hold (out of range, too long, not a
#: number or a date, not valid text, a CHECK it fails).
DATA_ERRORS = frozenset({1048, 1264, 1265, 1292, 1366, 1367, 1406, 1411, 3140, 3819, 4025})
_ERROR_COLUMN = re.compile(r"for column (?:`(?:[^`]|``)*`\.)*(?:`((?:[^`]|``)*)`|'(.*)')\s+at row \d+")
_LOSSY_HINT = "the MySQL column cannot hold this value; with --allow-lossy it is stored as NULL"


@attrs.define
class _Writer:
    """How the rows of one table are inserted."""

    prefix: bytes  # INSERT INTO ... VALUES
    keep: list[int] | None = None  # the positions of the row values that have a column here
    convert: list[tuple[int, Callable[[Any], Any]]] = attrs.Factory(list)
    columns: list[ColumnSchema] = attrs.Factory(list)  # cross-engine: the columns of the rows as written
    targets: list[str] = attrs.Factory(list)  # cross-engine: their MySQL types
    error_enums: dict[int, str] = attrs.Factory(dict)  # same engine: ENUM columns without a '' label, by position


@attrs.define
class _Lost:
    """Values of one column stored as NULL because the column could not hold them (--allow-lossy)."""

    count: int = 0
    reason: str = ""


def _wrap_json(rows: Sequence[tuple[Any, ...]], positions: list[int]) -> list[list[Any]]:
    wrapped = []
    for row in rows:
        values = list(row)
        for position in positions:
            if values[position] is not None:
                values[position] = JsonText(values[position])
        wrapped.append(values)
    return wrapped


def _detach(cursor: Any, result: Any = None) -> None:
    """Forget a half-read unbuffered result, so that nothing tries to read it from a dead socket."""
    result = result if result is not None else getattr(cursor, "_result", None)
    if result is not None:
        result.unbuffered_active = False
        result.has_next = False
    cursor.connection = None


def _short(text: str) -> str:
    """A server's message about a value without its ``for column ... at row n`` tail."""
    return re.sub(r"\s+for column .*$", "", " ".join(text.split()))


def _type_family(target: str) -> str:
    """What must match between the two columns of a foreign key: the type, less a string's length."""
    if target == "CHAR(36)":
        return target  # ASCII, not utf8mb4
    return re.sub(r"^(?:VAR)?(CHAR|BINARY)\(\d+\)$", r"\1", target)


class MySQLSource(Source):
    """MySQL and MariaDB servers (``mysql://user[:password]@host[:port]/database``)."""

    name = "mysql"
    schemes = ("mysql",)

    def __init__(self, location: Location, settings: dict[str, Any] | None = None):
        super().__init__(location, settings)
        check_options(location)  # a usage error before anything runs, not a failed check
        self._conn: Any = None
        self._server: ServerInfo | None = None
        self._warned = False
        self._hidden: str | None = None
        # restore state
        self._created_database = False
        self._created: list[tuple[str, str]] = []
        self._writers: dict[tuple[str | None, str], _Writer] = {}
        self._target_server: mapping.TargetServer | None = None
        self._cursor: Any = None
        self._packer: Packer | None = None
        self._done = False
        self._lossy = False
        self._lost: dict[tuple[str, str], _Lost] = {}

    # -- plumbing ------------------------------------------------------------------------------
    @property
    def database(self) -> str:
        if not self.location.database:
            raise UsageError("the MySQL URL names no database", hint="write mysql://user@host[:port]/database")
        return self.location.database

    @property
    def conn(self) -> Any:
        if self._conn is None:
            raise SourceError(f"the connection to the MySQL server at {server_label(self.location)} is closed")
        return self._conn

    def _query(self, sql: str, args: tuple[Any, ...] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts keyed by upper-case column names."""
        with self.conn.cursor() as cursor:
            cursor.execute(sql, args)
            if cursor.description is None:
                return []
            names = [str(column[0]).upper() for column in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def _execute(self, sql: str, args: Any = None) -> None:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, args)

    def _server_info(self) -> ServerInfo:
        row = self._query("SELECT VERSION() AS version, @@GLOBAL.sql_mode AS sql_mode, @@lower_case_table_names AS lctn")[0]
        version = str(row["VERSION"])
        return ServerInfo(version=version, mariadb="mariadb" in version.lower(), sql_mode=str(row["SQL_MODE"]), lower_case_table_names=int(row["LCTN"] or 0))

    def _translate(self, error: BaseException, what: str) -> UnibackupError:
        return translate(error, what, self.location)

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (pymysql_module().err.MySQLError, OSError)

    def _abandon(self) -> None:
        """Drop a connection whose state is unknown (a result half read, a failed statement)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    # -- backup side -------------------------------------------------------------------------
    def open_snapshot(self) -> None:
        database = self.database
        self._conn = connect(self.location, self.settings, database=database, what="connecting")
        try:
            self._server = self._server_info()
            self._execute("SET SESSION sql_mode = ''")  # the plain, backquoted form of SHOW CREATE
            self._execute("SET SESSION net_write_timeout = %s", (int(self.settings.get("net_write_timeout", 600)),))
            self._execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            self._execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        except self._errors() as error:
            self._abandon()
            raise self._translate(error, "starting the snapshot") from None

    def server_version(self) -> str:
        if self._server is None:
            try:
                self._server = self._server_info()
            except self._errors() as error:
                raise self._translate(error, "reading the server version") from None
        return self._server.version

    def describe(self) -> DatabaseSchema:
        self.server_version()
        assert self._server is not None
        try:
            schema = Catalog(self._query, self.database, self._server).describe()
        except self._errors() as error:
            raise self._translate(error, "reading the schema") from None
        self._hidden = next((item for item in schema.settings.get("not_backed_up", ()) if item.startswith("tables the backup user may not see")), None)
        return schema

    def will_read(self, tables: Sequence[TableSchema]) -> None:
        """Warn, once, about what the snapshot cannot cover in the tables this backup reads."""
        if self._warned:
            return
        self._warned = True
        if self._hidden:
            log.warning("not in the backup: %s; grant SELECT on the database to back them up", self._hidden)
        mariadb = self._server is not None and self._server.mariadb
        for table in tables:
            if "not_in_snapshot" in table.options:
                log.warning("table %s: %s", table.name, table.options["not_in_snapshot"])
            if "system_versioned" in table.options:
                log.warning("table %s is system-versioned: %s", table.name, table.options["system_versioned"])
            for column in table.columns:
                if mariadb and any("?" in label for label in column.options.get("labels", ())):
                    log.warning(
                        "column %s.%s: MariaDB shows ENUM/SET label characters beyond U+FFFF as '?'; "
                        "if a label holds one, restoring a value that uses it fails", table.name, column.name,
                    )

    def read_batches(self, table: TableSchema, sizer: BatchSizer) -> Iterator[Sequence[bytes]]:
        if not table.columns:
            return
        expressions = ", ".join(read_expression(column.name, str(column.options.get("data_type", ""))) for column in table.columns)
        json_positions = [index for index, column in enumerate(table.columns) if column.logical_type == "json"]
        pymysql = pymysql_module()
        cursor = self.conn.cursor(pymysql.cursors.SSCursor)
        finished = failed = False
        try:
            cursor.execute(f"SELECT {expressions} FROM {quote(table.name)}")
            while True:
                rows = cursor.fetchmany(sizer.next_batch_size())
                if not rows:
                    break
                yield encode_batch(_wrap_json(rows, json_positions) if json_positions else rows)
            finished = True
        except self._errors() as error:
            failed = True
            raise self._translate(error, f"reading table {table.name!r}") from None
        except UnicodeDecodeError as error:
            failed = True
            raise SourceError(f"table {table.name!r} holds text that is not valid in its character set ({error.reason})") from None
        finally:
            if finished:
                cursor.close()
            elif failed:
                _detach(cursor)
                self._abandon()
            else:  # the reader stopped early (a size sample): stop the server, keep the snapshot
                self._stop_reading(cursor)

    def _stop_reading(self, cursor: Any) -> None:
        """End a half-read result without reading the rest of the table.

        ``KILL QUERY`` from a second connection stops the server; what it had already sent is read
        up to its "interrupted" answer. The connection and its snapshot stay usable; when anything
        goes wrong the connection is dropped instead.
        """
        pymysql = pymysql_module()
        conn = self._conn
        result = getattr(cursor, "_result", None)
        try:
            if conn is not None and result is not None and result.unbuffered_active:
                side = connect(self.location, self.settings, database=None, what="stopping a read")
                try:
                    with side.cursor() as other:
                        other.execute("KILL QUERY %s", (conn.thread_id(),))
                finally:
                    side.close()
            try:
                cursor.close()
            except pymysql.err.OperationalError as error:
                if error_code(error) != 1317:  # query interrupted: what KILL QUERY answers
                    raise
                _detach(cursor, result)
                conn._result = None
            for attempt in (1, 2):  # a KILL that arrived after the rows interrupts the next statement
                try:
                    self._execute("SELECT 1")
                    break
                except pymysql.err.OperationalError as error:
                    if error_code(error) != 1317 or attempt == 2:
                        raise
        except Exception:
            _detach(cursor, result)
            self._abandon()

    def estimate_size(self) -> int:
        try:
            row = self._query("SELECT COALESCE(SUM(DATA_LENGTH), 0) AS size FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (self.database,))[0]
        except self._errors() as error:
            raise self._translate(error, "estimating the size") from None
        return int(row["SIZE"])

    def health_check(self) -> list[str]:
        """Nothing to check cheaply: the server keeps its own tables consistent.

        What a backup cannot cover (tables of engines without transactions, objects the user may
        not read) is logged as a warning by :meth:`describe` and recorded in the header instead.
        """
        return []

    # -- restore side ------------------------------------------------------------------------
    def _probe_target(self) -> mapping.TargetServer:
        """Whether the target is MariaDB, and its binary text collation (a short connection)."""
        if self._target_server is not None:
            return self._target_server
        own = self._conn is None
        if own:
            self._conn = connect(self.location, self.settings, database=None, what="connecting to the restore target")
        try:
            server = self._server_info()
            available = {row["COLLATION_NAME"] for row in self._query(
                "SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN ('utf8mb4_0900_bin', 'utf8mb4_nopad_bin', 'utf8mb4_bin')"
            )}
        except self._errors() as error:
            raise self._translate(error, "inspecting the restore target") from None
        finally:
            if own:
                self._abandon()
        collation = next(name for name in ("utf8mb4_0900_bin", "utf8mb4_nopad_bin", "utf8mb4_bin") if name in available or name == "utf8mb4_bin")
        self._target_server = mapping.TargetServer(mariadb=server.mariadb, collation=collation)
        return self._target_server

    def map_columns(self, plan: RestorePlan) -> list[ColumnMapping]:
        return mapping.map_tables(plan.tables, plan.schema.objects, plan.source_engine, self._probe_target())

    def open_restore(self, plan: RestorePlan) -> None:
        database = self.database
        self._lossy = plan.allow_lossy and plan.source_engine != self.name
        self._conn = connect(self.location, self.settings, database=None, what="connecting to the restore target")
        try:
            self._server = self._server_info()
            self._check_target(database, plan)
            if not self._query("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (database,)):
                settings = plan.schema.settings if plan.source_engine == self.name else {}
                charset = settings.get("character_set") or "utf8mb4"
                collation = settings.get("collation") or (self._probe_target().collation if plan.source_engine != self.name else None)
                clause = f" CHARACTER SET {charset}" + (f" COLLATE {collation}" if collation else "")
                self._execute(f"CREATE DATABASE {quote(database)}{clause}")
                self._created_database = True
            self._execute(f"USE {quote(database)}")
            self._execute("SET SESSION sql_mode = %s", (RESTORE_SQL_MODE,))
            # unique_checks = 0 with foreign_key_checks = 0 lets MariaDB load an empty table in bulk,
            # where a failed statement undoes every row of the table: a restore that stores what a
            # column refuses as NULL (--allow-lossy) must be able to undo just that statement
            self._execute("SET SESSION foreign_key_checks = 0, unique_checks = %s", (1 if self._lossy else 0,))
            packet = int(self._query("SELECT @@max_allowed_packet AS packet")[0]["PACKET"])
        except self._errors() as error:
            raise self._translate(error, f"preparing the database {database!r}") from None
        self._cursor = self.conn.cursor()
        self._packer = Packer(packet=packet, literal=self.conn.escape)

    def _check_target(self, database: str, plan: RestorePlan) -> None:
        row = self._query(
            "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s)"
            " + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s)"
            " + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s) AS n",
            (database, database, database),
        )[0]
        if int(row["N"]):
            raise UsageError(
                f"the target database {database!r} on {server_label(self.location)} is not empty ({int(row['N'])} objects)",
                hint="MySQL cannot roll back DDL, so unibackup restores only into a new or empty database"
                + ("; --force cannot replace a MySQL database" if plan.force else "; drop it or name another"),
            )

    def _run_ddl(self, sql: str, what: str) -> None:
        try:
            self._execute(sql)
        except self._errors() as error:
            raise self._translate(error, what) from None

    def _with_session(self, obj: SchemaObject, what: str) -> None:
        """Create ``obj`` under the SQL mode and collation it was defined with, then reset the session."""
        options = obj.options
        try:
            if options.get("sql_mode") is not None:
                self._execute("SET SESSION sql_mode = %s", (options["sql_mode"],))
            if options.get("collation_connection"):
                self._execute("SET SESSION collation_connection = %s", (options["collation_connection"],))
            if options.get("time_zone"):
                self._execute("SET SESSION time_zone = %s", (options["time_zone"],))
            self._execute(obj.sql)
        except self._errors() as error:
            raise self._translate(error, what) from None
        finally:
            try:
                self._execute("SET NAMES utf8mb4")
                self._execute("SET SESSION sql_mode = %s, time_zone = '+00:00'", (RESTORE_SQL_MODE,))
            except self._errors():
                pass

    def create_schema(self, plan: RestorePlan) -> list[str]:
        skipped = [f"not in the backup: {item}" for item in plan.schema.settings.get("not_backed_up", [])] if plan.source_engine == self.name else []
        if plan.source_engine == self.name:
            for obj in plan.schema.objects:
                if obj.kind == "sequence" and obj.sql:
                    self._run_ddl(obj.sql, f"creating sequence {obj.name!r}")
                    self._created.append(("sequence", obj.name))
                    if obj.options.get("next_value") is not None:
                        self._run_ddl(f"SELECT SETVAL({quote(obj.name)}, {int(obj.options['next_value'])}, 0)", f"setting sequence {obj.name!r}")
            for table in plan.tables:
                self._run_ddl(table.create_sql or "", f"creating table {table.name!r}")
                self._created.append(("table", table.name))
            for obj in plan.schema.objects:
                if obj.kind in ("procedure", "function") or (obj.phase == "pre-data" and obj.kind != "sequence"):
                    if not obj.sql:
                        skipped.append(f"{obj.kind} {obj.name} ({obj.options.get('skipped', 'no definition in the backup')})")
                        continue
                    self._with_session(obj, f"creating {obj.kind} {obj.name!r}")
                    self._created.append((obj.kind, obj.name))
        else:
            skipped.extend(self._create_foreign_tables(plan))
        try:
            self.conn.begin()
        except self._errors() as error:
            raise self._translate(error, "starting the load transaction") from None
        return skipped

    def _create_foreign_tables(self, plan: RestorePlan) -> list[str]:
        server = self._probe_target()
        skipped: list[str] = []
        by_table: dict[str, dict[str, ColumnMapping]] = {}
        for item in plan.mappings:
            by_table.setdefault(item.table, {})[item.column] = item
        names: dict[str, str] = {}
        for table in plan.tables:
            if table.name in names:
                raise UsageError(f"the tables {names[table.name]!r} and {table.qualified_name!r} would both be named {table.name!r} in MySQL")
            names[table.name] = table.qualified_name
            columns = by_table.get(table.qualified_name) or {m.column: m for m in mapping.map_tables([table], plan.schema.objects, plan.source_engine, server)}
            sql = mapping.create_table_sql(table, columns, plan.source_engine, server, skipped)
            skipped.extend(
                f"generated column {table.qualified_name}.{column.name} ({table.options.get('module') or plan.source_engine} expression not translated)"
                for column in table.generated_columns
            )
            self._run_ddl(sql, f"creating table {table.name!r}")
            self._created.append(("table", table.name))
            keep = [index for index, column in enumerate(table.columns) if not mapping.is_dropped(table, column)]
            kept = [table.columns[index] for index in keep]
            targets = [columns[column.name].target_type for column in kept]
            convert = []
            for position, (column, target) in enumerate(zip(kept, targets)):
                converter = mapping.value_converter(column, target, plan.source_engine, server)
                if converter is not None:
                    convert.append((position, converter))
            self._writers[(table.namespace, table.name)] = _Writer(
                prefix=insert_prefix(table.name, [column.name for column in kept], quote),
                keep=keep if len(keep) != len(table.columns) else None,
                convert=convert,
                columns=kept,
                targets=targets,
            )
        return skipped

    def _same_engine_writer(self, table: TableSchema) -> _Writer:
        """The writer of a MySQL table; it knows the ENUM columns that may hold the error value ''."""
        error_enums = {
            position: column.name for position, column in enumerate(table.columns)
            if column.options.get("data_type") == "enum" and "" not in column.options.get("labels", [""])
        }
        return _Writer(prefix=insert_prefix(table.name, list(table.column_names), quote), error_enums=error_enums)

    def _insert(self, table: TableSchema, writer: _Writer, rows: list[list[Any]]) -> None:
        """The rows in statements that fit the server's packet."""
        assert self._packer is not None
        for statement in self._packer.statements(writer.prefix, rows, table.name):
            self._cursor.execute(statement)

    def write_rows(self, table: TableSchema, rows: list[list[Any]]) -> None:
        if not rows or not table.has_data:
            return
        writer = self._writers.get((table.namespace, table.name))
        if writer is None:
            writer = self._same_engine_writer(table)
            self._writers[(table.namespace, table.name)] = writer
        if writer.keep is not None:
            rows = [[row[index] for index in writer.keep] for row in rows]
        for row in rows if writer.convert else ():
            for position, convert in writer.convert:
                if row[position] is not None:
                    try:
                        row[position] = convert(row[position])
                    except mapping.Unfit as unfit:
                        row[position] = self._lose(table, writer, position, str(unfit))
        errors: list[list[Any]] = []
        if writer.error_enums:
            errors = [row for row in rows if any(row[position] == "" for position in writer.error_enums)]
            if errors:
                rows = [row for row in rows if not any(row[position] == "" for position in writer.error_enums)]
        lossy = self._lossy and bool(writer.columns)
        try:
            if lossy:
                self._cursor.execute("SAVEPOINT unibackup_batch")
            if rows:
                self._insert(table, writer, rows)
            for row in errors:
                self._insert_enum_error(table, writer, row)
        except self._errors() as error:
            if lossy and error_code(error) in DATA_ERRORS:
                self._write_one_by_one(table, writer, rows)
                return
            raise self._value_error(error, table, writer) from None
        except (TypeError, ValueError) as error:
            raise SourceError(f"writing table {table.name!r}: {error}") from None

    def _insert_enum_error(self, table: TableSchema, writer: _Writer, row: list[Any]) -> None:
        """A row holding the error value '' of an ENUM (stored by a non-strict server for a value
        that was not a label): inserted under a non-strict mode, which stores '' again; the
        server's warnings must name those ENUM columns only, else the row is refused."""
        expected = sorted(writer.error_enums[position] for position in writer.error_enums if row[position] == "")
        self._cursor.execute("SET SESSION sql_mode = %s", (ENUM_ERROR_SQL_MODE,))
        try:
            self._insert(table, writer, [row])
            self._cursor.execute("SHOW WARNINGS")
            warnings = list(self._cursor.fetchall())
        finally:
            self._cursor.execute("SET SESSION sql_mode = %s", (RESTORE_SQL_MODE,))
        remaining = list(expected)
        for _level, code, message in warnings:
            match = _ERROR_COLUMN.search(str(message))
            name = (match.group(1).replace("``", "`") if match.group(1) is not None else match.group(2)) if match else None
            if int(code) != 1265 or name not in remaining:  # something else was changed: refuse the row
                raise SourceError(f"writing table {table.name!r}: {' '.join(str(message).split())} (error {code})", hint=(
                    f"the row holds the ENUM error value '' of {', '.join(expected)}, which only a non-strict mode stores"
                ))
            remaining.remove(name)
        if remaining:
            raise SourceError(f"writing table {table.name!r}: the ENUM error value '' of {', '.join(remaining)} was not stored as it was")

    def _value_error(self, error: BaseException, table: TableSchema, writer: _Writer) -> UnibackupError:
        """A write error; one about a value of another engine's backup says what --allow-lossy does."""
        translated = self._translate(error, f"writing table {table.name!r}")
        if writer.columns and error_code(error) in DATA_ERRORS and not self._lossy:
            translated.hint = _LOSSY_HINT
        return translated

    def _lose(self, table: TableSchema, writer: _Writer, position: int, reason: str) -> None:
        """``None`` for a value the column cannot hold (counted), when --allow-lossy allows it."""
        column = writer.columns[position]
        where = f"table {table.name!r}, column {column.name!r} ({writer.targets[position]})"
        if not self._lossy:
            raise SourceError(f"{where}: {reason}", hint=_LOSSY_HINT)
        if not column.nullable or column.primary_key:
            raise SourceError(f"{where}: {reason}; the column is NOT NULL, so the value cannot be stored as NULL either")
        lost = self._lost.setdefault((table.qualified_name, column.name), _Lost(reason=reason))
        lost.count += 1
        return None

    def _write_one_by_one(self, table: TableSchema, writer: _Writer, rows: list[list[Any]]) -> None:
        """A batch that held a value the target refused (--allow-lossy): row by row, each refused
        value stored as NULL, from the savepoint taken before the batch."""
        names = {column.name: position for position, column in enumerate(writer.columns)}
        try:
            self._cursor.execute("ROLLBACK TO SAVEPOINT unibackup_batch")
            for row in rows:
                for _ in range(len(row) + 1):
                    try:
                        self._insert(table, writer, [row])
                        break
                    except pymysql_module().err.MySQLError as error:
                        if error_code(error) not in DATA_ERRORS:
                            raise
                        text = str(error.args[1]) if len(error.args) > 1 else str(error)
                        match = _ERROR_COLUMN.search(text)
                        name = (match.group(1).replace("``", "`") if match.group(1) is not None else match.group(2)) if match else None
                        position = names.get(name) if name is not None else None
                        if position is None or row[position] is None:
                            raise
                        row[position] = self._lose(table, writer, position, _short(text))
                else:
                    raise SourceError(f"writing table {table.name!r}: a row the target refuses whatever is left out of it")
        except self._errors() as error:
            raise self._value_error(error, table, writer) from None

    def lossy_report(self) -> list[str]:
        """The values stored as NULL because their column could not hold them, one line a column."""
        return [
            f"{lost.count} value{'s' if lost.count != 1 else ''} of {table}.{column} stored as NULL ({'the first: ' if lost.count > 1 else ''}{lost.reason})"
            for (table, column), lost in self._lost.items()
        ]

    def finish_schema(self, plan: RestorePlan) -> list[str]:
        try:
            self.conn.commit()  # what follows is DDL, which MySQL commits by itself
        except self._errors() as error:
            raise self._translate(error, "committing the rows") from None
        if plan.source_engine != self.name:
            return self._finish_foreign(plan)
        selected = {table.name for table in plan.tables}
        complete = selected >= {table.name for table in plan.schema.tables}
        skipped: list[str] = []
        keys: dict[str, list[str]] = {}
        for obj in plan.schema.objects:
            if obj.kind not in FOREIGN_KEY_KINDS or obj.options.get("inline"):
                continue
            referenced = obj.options.get("referenced_table")
            if obj.table not in selected or (referenced not in selected and not obj.options.get("referenced_schema")):
                skipped.append(f"foreign key {obj.name} of {obj.table} (references a table that was not restored)")
                continue
            keys.setdefault(str(obj.table), []).append(obj.options.get("clause") or (obj.sql or "").split(" ADD ", 1)[-1])
        for table_name, clauses in keys.items():
            self._run_ddl(f"ALTER TABLE {quote(table_name)} " + ", ".join(f"ADD {clause}" for clause in clauses), f"adding the foreign keys of {table_name!r}")
        for table in plan.tables:
            counter = table.options.get("auto_increment")
            if counter is not None:
                self._run_ddl(f"ALTER TABLE {quote(table.name)} AUTO_INCREMENT = {int(counter)}", f"setting the AUTO_INCREMENT of {table.name!r}")
        skipped.extend(self._create_views([obj for obj in plan.schema.objects if obj.kind == "view"], complete))
        for obj in plan.schema.objects:
            if obj.kind not in ("trigger", "event"):
                continue
            if not obj.sql:
                skipped.append(f"{obj.kind} {obj.name} ({obj.options.get('skipped', 'no definition in the backup')})")
                continue
            if obj.kind == "trigger" and obj.table not in selected:
                skipped.append(f"trigger {obj.name} (its table {obj.table} was not restored)")
                continue
            self._with_session(obj, f"creating {obj.kind} {obj.name!r}")
            if obj.kind == "event":
                self._created.append(("event", obj.name))
        known = {"sequence", "procedure", "function", "view", "trigger", "event", "index", "check", *FOREIGN_KEY_KINDS}
        for obj in plan.schema.objects:
            if obj.kind not in known and obj.phase != "pre-data":  # pre-data ones were reported already
                skipped.append(f"{obj.kind} {obj.name} ({obj.options.get('skipped', 'not restored by this version')})")
        return skipped

    def _create_views(self, views: list[SchemaObject], complete: bool) -> list[str]:
        """Views in dependency order; one that fails is tried again after the others."""
        skipped = []
        pending = [view for view in views if view.sql]
        skipped.extend(f"view {view.name} ({view.options.get('skipped', 'no definition in the backup')})" for view in views if not view.sql)
        while pending:
            failed: list[tuple[SchemaObject, UnibackupError]] = []
            for view in pending:
                try:
                    self._with_session(view, f"creating view {view.name!r}")
                except UnibackupError as error:
                    failed.append((view, error))
                    continue
                self._created.append(("view", view.name))
            if len(failed) == len(pending):
                if complete:
                    raise failed[0][1]
                skipped.extend(f"view {view.name} (it needs what was not restored: {error.message})" for view, error in failed)
                break
            pending = [view for view, _ in failed]
        return skipped

    def _finish_foreign(self, plan: RestorePlan) -> list[str]:
        """Indexes, UNIQUE constraints, foreign keys and CHECKs of another engine's tables; what
        cannot move, or what MySQL refuses, is listed with the reason."""
        skipped: list[str] = []
        selected = {table.name: table for table in plan.tables}
        targets = {(m.table, m.column): m.target_type for m in plan.mappings}
        grouped = by_table(plan.schema.objects)
        found = {table.name: table_constraints(table, grouped.get(table.name, ()), mapping.parse_index) for table in plan.tables}
        in_backup = {table.name: table for table in plan.schema.tables}
        for obj in plan.schema.objects:
            owner = mapping.unquote(obj.table) if obj.table else None
            if owner in selected and belongs_to(obj, selected[owner]):
                continue
            if owner in in_backup and belongs_to(obj, in_backup[owner]):
                skipped.append(f"{obj.kind} {obj.name} on {mapping.unquote(obj.table or '')} (its table was not restored)")
            else:
                skipped.append(f"{obj.kind} {obj.name} ({obj.options.get('skipped') or plan.source_engine + ' SQL cannot run on MySQL'})")
        for table in plan.tables:
            constraints = found[table.name]
            clauses: list[tuple[str, str]] = []
            names: set[str] = set()
            for obj, columns, unique in constraints.indexes:
                label = f"index {obj.name} on {table.name}"
                parts = self._index_parts(table, columns, unique, targets)
                if parts is None:
                    skipped.append(f"{label} (a unique index over unbounded text cannot be created in MySQL)")
                    continue
                descending = mapping.descending_columns(obj)
                parts = [f"{part} DESC" if column in descending else part for part, column in zip(parts, columns)]
                name = mapping.unquote(obj.name)[:64]
                if name.lower() in names:
                    name = ""
                names.add(name.lower())
                kind = "UNIQUE INDEX" if unique else "INDEX"
                clauses.append((label, f"ADD {kind} {quote(name) + ' ' if name else ''}({', '.join(parts)})"))
            for columns in constraints.unique:
                label = f"unique constraint of {table.name} ({', '.join(columns)})"
                missing = [name for name in columns if not self._has_column(table, name)]
                if missing:
                    skipped.append(f"{label} (no column {missing[0]!r})")
                    continue
                if any(obj_columns == columns for _, obj_columns, unique in constraints.indexes if unique):
                    continue
                clauses.append((label, f"ADD UNIQUE KEY ({', '.join(quote(name) for name in columns)})"))
            for obj in constraints.other:
                reason = obj.options.get("skipped") or (
                    "not a plain column index MySQL can take" if obj.kind == "index" else f"{plan.source_engine} SQL cannot run on MySQL"
                )
                skipped.append(f"{obj.kind} {obj.name} on {table.name} ({reason})")
            skipped.extend(self._alter_each(table.name, clauses))
        used: set[str] = set()
        for table in plan.tables:
            clauses = []
            for key in found[table.name].foreign_keys:
                clause, reason = self._foreign_key_clause(table, key, selected, found, targets, used)
                if clause is None:
                    skipped.append(f"{key.label(table.name)} ({reason})")
                else:
                    clauses.append((key.label(table.name), clause))
            skipped.extend(self._alter_each(table.name, clauses))
        for table in plan.tables:
            columns = {c.name.lower(): (c, targets.get((table.qualified_name, c.name), "")) for c in table.columns if not mapping.is_dropped(table, c)}
            collated = "COLLATE" in (table.create_sql or "").upper()
            for expression in found[table.name].checks:
                label = f"check ({' '.join(expression.split())}) of {table.name}"
                sql, reason = translate_check(expression, columns, plan.source_engine, collated)
                if sql is None:
                    skipped.append(f"{label} (not carried over: {reason})")
                    continue
                skipped.extend(self._alter_each(table.name, [(label, f"ADD CHECK ({sql})")]))
        for table in plan.tables:
            counter = mapping.next_auto_increment(table, plan.schema.objects, plan.source_engine)
            if counter is not None:
                self._run_ddl(f"ALTER TABLE {quote(table.name)} AUTO_INCREMENT = {counter}", f"setting the AUTO_INCREMENT of {table.name!r}")
        skipped.extend(self.lossy_report())
        return skipped

    @staticmethod
    def _has_column(table: TableSchema, name: str | None) -> bool:
        return any(column.name == name and not mapping.is_dropped(table, column) for column in table.columns)

    @staticmethod
    def _index_parts(table: TableSchema, columns: list[str], unique: bool, targets: dict[tuple[str, str], str]) -> list[str] | None:
        """The key parts of an index: unbounded text (and, when the key would be too long, any
        text) indexed by a prefix that makes the key fit; None for a unique index that cannot."""
        types = [targets.get((table.qualified_name, column), "") for column in columns]
        parts = []
        for column, target in zip(columns, types):
            kind, size = mapping.key_part_bytes(target)
            if kind == "text" and size is None:
                size = mapping.INDEX_PREFIX * 4
            elif kind == "bytes" and size is None:
                size = mapping.INDEX_PREFIX
            parts.append((kind, size))
        shares = mapping.share_key_bytes(parts)
        result = []
        for column, target, (kind, wanted), share in zip(columns, types, parts, shares):
            bounded = mapping.key_part_bytes(target)[1] is not None
            if share is not None and (not bounded or share < (wanted or 0)):
                if unique:
                    return None
                length = share // 4 if kind == "text" else share
                result.append(f"{quote(column)}({max(1, length)})")
            else:
                result.append(quote(column))
        return result

    def _foreign_key_clause(
        self, table: TableSchema, key: ForeignKey, selected: dict[str, TableSchema], found: dict[str, Constraints],
        targets: dict[tuple[str, str], str], used: set[str],
    ) -> tuple[str | None, str]:
        """``ADD CONSTRAINT ... FOREIGN KEY ...`` for a key of another engine, or None and why not."""
        if key.referenced_schema:
            return None, f"it references a table of another schema, {key.referenced_schema}.{key.referenced_table}"
        name = key.referenced_table
        parent = selected.get(name) or next((t for t in selected.values() if t.name.lower() == name.lower()), None)
        if parent is None:
            return None, f"references {name}, which was not restored"
        spelled = {c.name.lower(): c.name for c in parent.columns if not mapping.is_dropped(parent, c)}
        parent_keys = found[parent.name]
        referenced = list(key.referenced_columns)
        if all(c is None for c in referenced):
            referenced = list(parent_keys.primary)  # no column named: the primary key
        if len(referenced) != len(key.columns) or any(c is None for c in referenced):
            return None, f"its columns do not match a key of {parent.name}"
        referenced = [spelled.get(str(c).lower(), str(c)) for c in referenced]
        missing = [c for c in key.columns if not self._has_column(table, c)] + [c for c in referenced if not self._has_column(parent, c)]
        if missing:
            return None, f"no column {missing[0]!r}"
        columns = list(key.columns)
        candidates = [parent_keys.primary, *parent_keys.unique, *(c for _, c, unique in parent_keys.indexes if unique)]
        match = next((c for c in candidates if c and sorted(c) == sorted(referenced)), None)
        if match is not None:  # the order of the key, as InnoDB needs
            pairs = dict(zip(referenced, columns))
            referenced, columns = list(match), [pairs[c] for c in match]
        elif not any(c[: len(referenced)] == referenced for c in [parent_keys.primary, *parent_keys.unique, *(c for _, c, _ in parent_keys.indexes)]):
            return None, f"({', '.join(referenced)}) is not a key of {parent.name}"
        actions = ""
        for kind in ("on_delete", "on_update"):
            action = " ".join(str(getattr(key, kind) or "NO ACTION").upper().split())
            if action not in ("CASCADE", "SET NULL", "RESTRICT", "NO ACTION"):
                return None, f"{kind.replace('_', ' ').upper()} {action}: InnoDB has no such action"
            if action == "SET NULL" and any(not c.nullable or c.primary_key for c in table.columns if c.name in columns):
                return None, f"{kind.replace('_', ' ').upper()} SET NULL on a NOT NULL column"
            if action != "NO ACTION":
                actions += f" {kind.replace('_', ' ').upper()} {action}"
        for child, parent_column in zip(columns, referenced):
            mine, theirs = targets.get((table.qualified_name, child), ""), targets.get((parent.qualified_name, parent_column), "")
            if _type_family(mine) != _type_family(theirs):
                return None, f"{table.name}.{child} is {mine} and {parent.name}.{parent_column} is {theirs} in MySQL, which a foreign key cannot join"
        named = ""
        if key.name and len(key.name) <= 64 and key.name.lower() not in used:
            used.add(key.name.lower())
            named = f"CONSTRAINT {quote(key.name)} "
        clause = (
            f"ADD {named}FOREIGN KEY ({', '.join(quote(c) for c in columns)}) REFERENCES {quote(parent.name)} "
            f"({', '.join(quote(c) for c in referenced)}){actions}"
        )
        return clause, ""

    def _alter_each(self, table_name: str, clauses: list[tuple[str, str]]) -> list[str]:
        """``ALTER TABLE`` with all the clauses at once; when MySQL refuses, one by one, and what it
        refuses is listed (``label (MySQL refused it: ...)``) instead of failing the restore."""
        if not clauses:
            return []
        head = f"ALTER TABLE {quote(table_name)} "
        refused = self._try_ddl(head + ", ".join(clause for _, clause in clauses), f"altering table {table_name!r}")
        if refused is None:
            return []
        if len(clauses) == 1:
            return [f"{clauses[0][0]} (MySQL refused it: {refused})"]
        skipped = []
        for label, clause in clauses:
            refused = self._try_ddl(head + clause, f"altering table {table_name!r}")
            if refused is not None:
                skipped.append(f"{label} (MySQL refused it: {refused})")
        return skipped

    def _try_ddl(self, sql: str, what: str) -> str | None:
        """Run DDL; the server's message when it refuses the definition (None: done). A lost
        connection, a missing privilege and the like still fail the restore."""
        try:
            self._execute(sql)
        except self._errors() as error:
            code = error_code(error)
            translated = self._translate(error, what)
            if not code or code in TRANSIENT_CODES or code in PRIVILEGE_CODES or isinstance(translated, TransientError):
                raise translated from None
            return " ".join(str(error.args[1] if len(error.args) > 1 else error).split())
        return None

    def commit(self) -> None:
        try:
            self.conn.commit()
        except self._errors() as error:
            raise self._translate(error, "committing the restore") from None
        self._done = True

    def rollback(self) -> None:
        if self._done:
            return
        database = self.location.database or ""
        if not self._created_database and not self._created:
            self._abandon()
            return
        try:
            if self._conn is not None:
                try:
                    self.conn.rollback()
                except self._errors():
                    self._abandon()
            if self._conn is None:
                self._conn = connect(self.location, self.settings, database=None, what="cleaning up the restore target")
            self._execute("SET SESSION foreign_key_checks = 0")
            if self._created_database:
                self._execute(f"DROP DATABASE IF EXISTS {quote(database)}")
            else:
                self._execute(f"USE {quote(database)}")
                for kind, name in reversed(self._created):
                    self._execute(f"DROP {_DROP[kind]} IF EXISTS {quote(name)}")
        except (UnibackupError, *self._errors()) as error:
            reason = error.message if isinstance(error, UnibackupError) else str(error.args[-1] if error.args else error)
            left = f"the database {database!r}, which it had created" if self._created_database else f"{len(self._created)} objects in the database {database!r}"
            raise SourceError(f"the restore failed and could not remove {left} on {server_label(self.location)} ({reason})", hint="drop them before restoring again") from None
        finally:
            self._abandon()
        self._created_database = False
        self._created = []

    def close(self) -> None:
        self._cursor = None
        self._abandon()
