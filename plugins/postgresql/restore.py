"""Restoring into PostgreSQL: the whole restore is one transaction, rows go in by COPY.

Same engine: the backup's own DDL is replayed (pre-data objects, tables, then the rows, then
post-data objects, sequence values and materialized view refreshes). Statements run in the
backup's order, each inside a savepoint; one that fails because something it needs does not
exist yet is put back and tried again once the others ran, so the order of functions, types,
views and tables never has to be solved up front.

Another engine: tables are created from the backup's column list with the nearest PostgreSQL
types (:func:`map_columns` says how faithful each is), and values are converted on the way in.

A target that already holds objects in the schemas the restore writes into is refused, unless
``force``: then those objects are dropped inside the same transaction, so a failed restore
leaves them as they were. A database that does not exist is created, and dropped again if the
restore fails.
"""

from __future__ import annotations

import datetime
import decimal
import logging
import re
import uuid
from typing import Any, Callable

import orjson
import psycopg

from psycopg import sql as psycopg_sql

from unibackup.errors import SourceError, UnibackupError, UsageError
from unibackup.models import ColumnMapping, ColumnSchema, SchemaObject, TableSchema
from unibackup.source import Location, RestorePlan

from .catalog import literal, qualified, quote
from .connection import RESTORE_PRIVILEGE_HINT, connect, end_copy
from .connection import operation_error as _operation_error
from .encoding import register_dumpers
from .mapping import (
    ENGINE_NAMES,
    NOT_KEPT,
    NulCharacter,
    Refused,
    check_sql,
    converter_for,
    default_sql,
    foreign_key_sql,
    map_columns,
    may_become_null,
    preview,
    target_type,
    unique_sql,
    value_kind,
)

__all__ = ["NOT_KEPT", "RestoreSession", "converter_for", "map_columns", "target_type"]

log = logging.getLogger(__name__)

ENGINE = "postgresql"

#: What a converter raises for a value the column's type cannot hold.
_CONVERSION_ERRORS = (Refused, ValueError, TypeError, OverflowError, decimal.InvalidOperation)

_IDENTIFIER = r'"(?:[^"]|"")+"|\[[^\]]+\]|`(?:[^`]|``)+`|[A-Za-z_][A-Za-z0-9_$]*'
_SIMPLE_INDEX = re.compile(
    rf"^\s*CREATE\s+(?P<unique>UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:(?:{_IDENTIFIER})\.)?(?P<name>{_IDENTIFIER})\s+"
    rf"ON\s+(?:(?:{_IDENTIFIER})\.)?(?P<table>{_IDENTIFIER})\s*\((?P<columns>[^()]*)\)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_INDEX_PART = re.compile(rf"^\s*(?P<column>{_IDENTIFIER})\s*(?P<order>ASC|DESC)?\s*$", re.IGNORECASE)

#: SQLSTATEs of a statement that needs something not created yet; it is tried again later.
_MISSING_DEPENDENCY = frozenset(
    {
        "42P01",  # undefined_table
        "42704",  # undefined_object (types)
        "42883",  # undefined_function
        "3F000",  # invalid_schema_name
        "42703",  # undefined_column
        "42830",  # invalid_foreign_key (the referenced key is not there yet)
        "55000",  # object_not_in_prerequisite_state (a materialized view not populated yet)
        "0A000",  # feature_not_supported (e.g. a view over a matview not populated)
    }
)

#: What a user without the CREATEDB privilege is told when the target database does not exist.
CREATEDB_HINT = "the user needs the CREATEDB privilege, or create the database first (empty) and restore into it"


def operation_error(error: psycopg.Error, what: str, conn: psycopg.Connection | None = None) -> UnibackupError:
    """:func:`.connection.operation_error` with the restore's privilege hint."""
    return _operation_error(error, what, conn, privilege_hint=RESTORE_PRIVILEGE_HINT)


_PRE_DATA_ORDER = {
    "schema": 0,
    "extension": 1,
    "type": 2,
    "domain": 3,
    "function": 4,
    "procedure": 4,
    "aggregate": 5,
    "sequence": 6,
    "table": 7,
    "partition": 8,
    "view": 9,
    "materialized_view": 9,
    "materialized view": 9,  # the kind's name in backups of unibackup 0.1.0
}
_POST_DATA_ORDER = {"constraint": 0, "index": 1, "foreign_key": 2, "foreign key": 2, "trigger": 3, "rule": 3, "refresh": 4}


class _Statement:
    __slots__ = ("label", "sql", "params")

    def __init__(self, label: str, sql: str, params: Any = None):
        self.label = label
        self.sql = sql
        self.params = params


class RestoreSession:
    """One restore into one database; see the module docstring."""

    def __init__(self, location: Location, settings: dict[str, Any], schemas: tuple[str, ...]):
        self.location = location
        self.settings = settings
        self.url_schemas = schemas
        self.conn: psycopg.Connection | None = None
        self.created_database = False
        self.in_transaction = False
        self._copy_context: Any = None
        self._copy: Any = None
        self._copy_table: tuple[str | None, str] | None = None
        self._cursor: Any = None
        self._converters: dict[tuple[str | None, str], Callable[[list[Any]], list[Any]]] = {}
        self._target_tables: dict[tuple[str | None, str], str] = {}
        self._copy_sql: dict[tuple[str | None, str], str] = {}
        self.same_engine = True
        self.partial = False
        self.target_schema = "public"
        self._foreign_post_data: list[_Attempt] = []
        self._identity: dict[tuple[str | None, str], str] = {}
        self._deferred_not_null: dict[tuple[str | None, str], list[str]] = {}
        self._defaults: list[tuple[TableSchema, ColumnSchema, ColumnMapping]] = []
        self._nulled: dict[tuple[str, str], list[Any]] = {}
        self._kept_columns: set[tuple[str, str]] = set()
        self._analyze: list[str] = []  # the tables that get rows, for ANALYZE before the commit
        self._sql_ascii = False  # the target stores any bytes: COPY runs with client_encoding SQL_ASCII

    # -- opening --------------------------------------------------------------------------------
    def open(self, plan: RestorePlan) -> None:
        from .source import configure_session

        self.same_engine = plan.source_engine == ENGINE
        self.partial = len(plan.tables) != len(plan.schema.tables)
        if self.same_engine:
            schemas = _backup_schemas(plan)
            if self.url_schemas and set(self.url_schemas) != set(schemas):
                raise UsageError(
                    f"the backup holds schema(s) {', '.join(schemas)}; restoring them under another name is not supported",
                    hint="leave ?schema= out of the target URL",
                )
        else:
            if len(self.url_schemas) > 1:
                raise UsageError("a restore target names one schema at most (?schema=name)")
            self.target_schema = self.url_schemas[0] if self.url_schemas else "public"
            schemas = [self.target_schema]
        self.conn = self._connect_or_create(plan)
        conn = self.conn
        self._sql_ascii = conn.info.parameter_status("server_encoding") == "SQL_ASCII"
        register_dumpers(conn, self._sql_ascii)
        try:
            configure_session(conn, self.settings)
            conn.execute("SET check_function_bodies = false")
            conn.execute("BEGIN")
            self.in_transaction = True
            existing = self._existing_objects(schemas)
        except psycopg.Error as error:
            raise operation_error(error, "preparing the restore target", conn) from None
        if existing:
            if not plan.force:
                kinds: dict[str, int] = {}
                for kind, _name in existing:
                    kinds[kind] = kinds.get(kind, 0) + 1
                summary = ", ".join(f"{count} {kind}{'s' if count > 1 else ''}" for kind, count in sorted(kinds.items()))
                raise UsageError(
                    f"the target database {self.location.database!r} is not empty: schema(s) {', '.join(schemas)} hold {summary}",
                    hint="use --force to replace them (dropped inside the restore transaction, kept if the restore fails)",
                )
            self._drop(existing)

    def _connect_or_create(self, plan: RestorePlan) -> psycopg.Connection:
        try:
            return connect(self.location, self.settings)
        except SourceError as error:
            if not error.message.startswith("the PostgreSQL database ") or not self.settings.get("create_database", True):
                raise
        database = self.location.database or ""
        maintenance = str(self.settings.get("maintenance_database", "postgres"))
        admin = connect(self.location, self.settings, database=maintenance)
        encoding = plan.schema.settings.get("server_encoding") if self.same_engine else None
        try:
            admin.execute(f"CREATE DATABASE {quote(database)} TEMPLATE template0 ENCODING {literal(encoding or 'UTF8')}")
        except psycopg.Error as error:
            raise _operation_error(error, f"creating the database {database!r}", admin, privilege_hint=CREATEDB_HINT) from None
        finally:
            admin.close()
        self.created_database = True
        try:
            return connect(self.location, self.settings)
        except UnibackupError:
            self._drop_created_database()
            raise

    def _existing_objects(self, schemas: list[str]) -> list[tuple[str, str]]:
        """Objects in ``schemas`` that are not part of an extension, as (kind, DROP target)."""
        member = "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = '{0}'::regclass AND d.objid = {1}.oid AND d.deptype IN ('e', 'i', 'a'))"
        rows = self.conn.execute(  # type: ignore[union-attr]
            "SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view' "
            "  WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' END, "
            "  pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) "
            "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND NOT c.relispartition AND "
            + member.format("pg_class", "c")
            + " UNION ALL "
            "SELECT CASE p.prokind WHEN 'a' THEN 'aggregate' WHEN 'p' THEN 'procedure' ELSE 'function' END, "
            "  pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname) || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' "
            "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = ANY(%(schemas)s) AND " + member.format("pg_proc", "p") + " UNION ALL "
            "SELECT CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END, pg_catalog.format_type(t.oid, NULL) "
            "FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = ANY(%(schemas)s) AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND "
            "  (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')) AND " + member.format("pg_type", "t"),
            {"schemas": schemas},
        ).fetchall()
        return [(kind, name) for kind, name in rows]

    def _drop(self, existing: list[tuple[str, str]]) -> None:
        order = ["materialized view", "view", "foreign table", "table", "sequence", "aggregate", "procedure", "function", "domain", "type"]
        commands = {"procedure": "ROUTINE"}
        try:
            for kind in order:
                for found_kind, name in existing:
                    if found_kind == kind:
                        self.conn.execute(f"DROP {commands.get(kind, kind.upper())} IF EXISTS {name} CASCADE")  # type: ignore[union-attr]
        except psycopg.Error as error:
            raise operation_error(error, "dropping the objects of the target (--force)", self.conn) from None

    # -- schema ---------------------------------------------------------------------------------
    def create_schema(self, plan: RestorePlan) -> list[str]:
        if not self.same_engine:
            return self._create_foreign_schema(plan)
        selected = {(table.namespace, table.name) for table in plan.tables}
        every_table = {(table.namespace, table.name) for table in plan.schema.tables}
        skipped: list[str] = []
        items: list[tuple[int, int, _Statement]] = []
        for position, obj in enumerate(plan.schema.objects):
            if obj.phase != "pre-data":
                continue
            reason = _skip_reason(obj, selected, every_table)
            if reason:
                skipped.append(reason)
                continue
            if obj.sql:
                items.append((_PRE_DATA_ORDER.get(obj.kind, 6), position, _Statement(f"{_kind(obj)} {_name(obj)}", obj.sql)))
        for position, table in enumerate(plan.tables):
            items.append((_PRE_DATA_ORDER["table"], position, _Statement(f"table {table.qualified_name}", table.create_sql or "")))
            if table.has_data:  # a partitioned table's ANALYZE covers its partitions
                self._analyze.append(qualified(table.namespace, table.name))
            self._copy_sql[(table.namespace, table.name)] = copy_in_sql(qualified(table.namespace, table.name), [c.name for c in table.columns])
        items.sort(key=lambda item: (item[0], item[1]))
        skipped.extend(self._run([statement for _, _, statement in items], "creating the schema"))
        return skipped

    def finish_schema(self, plan: RestorePlan) -> list[str]:
        self._end_copy()
        if not self.same_engine:
            return self._finish_foreign_schema(plan)
        selected = {(table.namespace, table.name) for table in plan.tables}
        every_table = {(table.namespace, table.name) for table in plan.schema.tables}
        items: list[tuple[int, int, _Statement]] = []
        skipped: list[str] = []
        for position, obj in enumerate(plan.schema.objects):
            if obj.phase != "post-data":
                continue
            reason = _skip_reason(obj, selected, every_table)
            if reason:
                skipped.append(reason)
                continue
            if obj.sql:
                items.append((_POST_DATA_ORDER.get(obj.kind, 3), position, _Statement(f"{_kind(obj)} {_name(obj)}", obj.sql)))
        for position, obj in enumerate(plan.schema.objects):
            if obj.kind != "sequence":
                continue
            name = qualified(obj.namespace, obj.name)
            owner = obj.options.get("owned_by")
            if owner and not obj.options.get("identity") and (owner[0], owner[1]) in selected:
                sql = f"ALTER SEQUENCE {name} OWNED BY {qualified(owner[0], owner[1])}.{quote(owner[2])}"
                items.append((5, position, _Statement(f"sequence {obj.name}", sql)))
            if obj.options.get("identity") and (not owner or (owner[0], owner[1]) not in selected):
                continue
            value = obj.options.get("last_value")
            if value is not None:
                sql = "SELECT pg_catalog.setval(%s::regclass, %s, %s)"
                items.append((6, position, _Statement(f"sequence {obj.name}", sql, (name, int(value), bool(obj.options.get("is_called"))))))
        items.sort(key=lambda item: (item[0], item[1]))
        skipped.extend(self._run([statement for _, _, statement in items], "finishing the schema"))
        return skipped

    def _run(self, statements: list[_Statement], what: str) -> list[str]:
        """Run ``statements``; one whose dependency is missing is retried after the others."""
        conn = self.conn
        assert conn is not None
        pending = statements
        skipped: list[str] = []
        while pending:
            retry: list[tuple[_Statement, psycopg.Error]] = []
            for statement in pending:
                try:
                    conn.execute("SAVEPOINT unibackup_statement")
                except psycopg.Error as error:
                    raise operation_error(error, what, conn) from None
                try:
                    conn.execute(statement.sql, statement.params)
                except psycopg.Error as error:
                    if conn.broken:
                        raise operation_error(error, what, conn) from None
                    try:
                        conn.execute("ROLLBACK TO SAVEPOINT unibackup_statement")
                    except psycopg.Error as inner:
                        raise operation_error(inner, what, conn) from None
                    if getattr(error, "sqlstate", None) in _MISSING_DEPENDENCY or self.partial:
                        retry.append((statement, error))
                        continue
                    raise operation_error(error, f"{what} ({statement.label})", conn) from None
                try:
                    conn.execute("RELEASE SAVEPOINT unibackup_statement")
                except psycopg.Error as error:
                    raise operation_error(error, what, conn) from None
            if len(retry) == len(pending):
                if self.partial:
                    skipped.extend(f"{statement.label} (needs what was not restored: {_first(error)})" for statement, error in retry)
                    break
                statement, error = retry[0]
                raise operation_error(error, f"{what} ({statement.label})", conn) from None
            pending = [statement for statement, _ in retry]
        return skipped

    # -- rows -----------------------------------------------------------------------------------
    def write_rows(self, table: TableSchema, rows: list[list[Any]]) -> None:
        if not rows:
            return
        key = (table.namespace, table.name)
        conn = self.conn
        assert conn is not None
        try:
            if self._copy_table != key:
                self._end_copy()
                sql = self._copy_sql.get(key)
                if sql is None:
                    raise SourceError(f"the table {table.qualified_name!r} was not created by this restore")
                if self._sql_ascii:  # text that is not UTF-8 goes in as its bytes
                    conn.execute("SET client_encoding = 'SQL_ASCII'")
                self._cursor = conn.cursor()
                self._copy_context = self._cursor.copy(sql)
                self._copy = self._copy_context.__enter__()
                self._copy_table = key
            convert = self._converters.get(key, _same_engine_rows)
            write_row = self._copy.write_row
            for row in convert(rows):
                write_row(row)
        except psycopg.Error as error:
            self._abandon_copy(error)
            raise operation_error(error, f"writing table {table.qualified_name!r}", conn) from None
        except UnibackupError as error:
            self._abandon_copy(error)
            raise
        except (ValueError, TypeError, OverflowError, decimal.InvalidOperation) as error:
            self._abandon_copy(error)
            raise SourceError(f"writing table {table.qualified_name!r} failed: {error}") from None

    def _end_copy(self) -> None:
        if self._copy_context is None:
            return
        context, self._copy_context, self._copy = self._copy_context, None, None
        table, self._copy_table = self._copy_table, None
        try:
            context.__exit__(None, None, None)
            if self._sql_ascii:
                self.conn.execute("SET client_encoding = 'UTF8'")  # type: ignore[union-attr]
        except psycopg.Error as error:
            name = f"{table[0]}.{table[1]}" if table and table[0] else (table[1] if table else "?")
            raise operation_error(error, f"writing table {name!r}", self.conn) from None
        finally:
            if self._cursor is not None:
                self._cursor.close()
                self._cursor = None

    def _abandon_copy(self, error: BaseException) -> None:
        context, self._copy_context, self._copy, self._copy_table = self._copy_context, None, None, None
        if context is not None and self.conn is not None:
            try:
                end_copy(context, error, self.conn)
            except Exception:  # the transaction is lost anyway; the first error is the one to show
                pass

    # -- ending ---------------------------------------------------------------------------------
    def commit(self) -> None:
        self._end_copy()
        conn = self.conn
        assert conn is not None
        self._analyze_tables()
        try:
            conn.execute("COMMIT")
        except psycopg.Error as error:
            raise operation_error(error, "committing the restore", conn) from None
        self.in_transaction = False
        self.created_database = False  # it is the restored database now

    def _analyze_tables(self) -> None:
        """``ANALYZE`` the restored tables inside the transaction (what pg_restore users are told
        to run afterwards), so that the planner and row estimates know them from the start."""
        conn = self.conn
        assert conn is not None
        try:
            existing = [name for (name,) in conn.execute(
                "SELECT name FROM unnest(%s::text[]) name WHERE pg_catalog.to_regclass(name) IS NOT NULL", (self._analyze,)
            )]
            if existing:
                conn.execute(f"ANALYZE {', '.join(existing)}")
        except psycopg.Error as error:
            raise operation_error(error, "analyzing the restored tables", conn) from None

    def rollback(self) -> None:
        conn = self.conn
        self._copy_context = None
        self._copy = None
        self._copy_table = None
        if conn is not None and not conn.closed:
            try:
                if self.in_transaction and not conn.broken:
                    conn.execute("ROLLBACK")
            except psycopg.Error:
                pass
            self.in_transaction = False
        if self.created_database:
            self.close()
            self._drop_created_database()

    def _drop_created_database(self) -> None:
        maintenance = str(self.settings.get("maintenance_database", "postgres"))
        try:
            admin = connect(self.location, self.settings, database=maintenance)
        except UnibackupError as error:
            log.warning("could not drop the database created for the restore: %s", error.user_line())
            return
        try:
            admin.execute(f"DROP DATABASE IF EXISTS {quote(self.location.database or '')} WITH (FORCE)")
            self.created_database = False
        except psycopg.Error as error:
            log.warning("could not drop the database created for the restore: %s", _first(error))
        finally:
            admin.close()

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    # -- another engine -------------------------------------------------------------------------
    def _create_foreign_schema(self, plan: RestorePlan) -> list[str]:
        mappings = {(m.table, m.column): m for m in (plan.mappings or tuple(map_columns(plan)))}
        statements = [_Statement(f"schema {self.target_schema}", f"CREATE SCHEMA IF NOT EXISTS {quote(self.target_schema)}")]
        skipped: list[str] = []
        self._kept_columns = {
            (table.name, column.name)
            for table in plan.tables
            for column in table.columns
            if (m := mappings.get((table.qualified_name, column.name))) is not None and m.target_type != NOT_KEPT
        }
        for table in plan.tables:
            target = qualified(self.target_schema, table.name)
            key = (table.namespace, table.name)
            definitions: list[str] = []
            kept: list[int] = []
            converters: list[Callable[[Any], Any]] = []
            columns: list[tuple[ColumnSchema, ColumnMapping, bool]] = []
            names: list[str] = []
            primary = sorted((c for c in table.columns if c.primary_key), key=lambda c: c.primary_key)
            for index, column in enumerate(table.columns):
                mapping = mappings.get((table.qualified_name, column.name))
                if mapping is None or mapping.target_type == NOT_KEPT:
                    continue  # not kept (a SQLite rowid of a table with a primary key)
                kept.append(index)
                names.append(column.name)
                converters.append(converter_for(mapping.logical_type, mapping.target_type, plan.source_engine))
                nullable = may_become_null(column, table, mapping, plan)
                columns.append((column, mapping, nullable))
                sql = f"{quote(column.name)} {mapping.target_type}"
                if len(primary) == 1 and primary[0] is column and mapping.target_type in ("bigint", "integer", "smallint"):
                    sql += " GENERATED BY DEFAULT AS IDENTITY"
                    self._identity[key] = column.name
                if column.logical_type == "enum" and column.options.get("labels"):
                    labels = [str(label) for label in column.options["labels"]]
                    if plan.source_engine == "mysql" and "" not in labels:
                        labels.append("")  # MySQL's error value of every ENUM, which a non-strict server stores
                    sql += f" CHECK ({quote(column.name)} IN ({', '.join(literal(label) for label in labels)}))"
                if not column.nullable or column.primary_key or column.hidden == "rowid":
                    if nullable and not column.primary_key:
                        # a value the type refuses may become NULL: NOT NULL is set after the rows
                        self._deferred_not_null.setdefault(key, []).append(column.name)
                    else:
                        sql += " NOT NULL"
                definitions.append(sql)
                if column.default is not None and not column.hidden and self._identity.get(key) != column.name:
                    self._defaults.append((table, column, mapping))
            for column in table.generated_columns:
                skipped.append(f"generated column {table.qualified_name}.{column.name} ({table.options.get('module') or plan.source_engine} expression not translated)")
            key_columns = [c.name for c in primary if (table.qualified_name, c.name) in mappings]
            if not key_columns and any(c.hidden == "rowid" for c in table.columns):
                key_columns = [next(c.name for c in table.columns if c.hidden == "rowid")]
            if key_columns:
                definitions.append(f"PRIMARY KEY ({', '.join(quote(name) for name in key_columns)})")
            statements.append(_Statement(f"table {table.qualified_name}", f"CREATE TABLE {target} ({', '.join(definitions)})"))
            self._copy_sql[key] = copy_in_sql(target, names)
            self._target_tables[key] = target
            self._analyze.append(target)
            self._converters[key] = self._row_converter(table, kept, converters, columns, plan)
            if not table.has_data:
                skipped.append(f"rows of {table.qualified_name} ({table.options.get('data_not_kept') or 'not in the backup'})")
        self._foreign_post_data, not_translated = _translate_objects(plan, self.target_schema, self._is_kept)
        skipped.extend(not_translated)
        self._run(statements, "creating the tables")
        return skipped

    def _is_kept(self, table: TableSchema, column: str) -> bool:
        return (table.name, column) in self._kept_columns

    def _row_converter(
        self, table: TableSchema, kept: list[int], converters: list[Callable[[Any], Any]],
        columns: list[tuple[ColumnSchema, ColumnMapping, bool]], plan: RestorePlan,
    ) -> Callable[[list[list[Any]]], Any]:
        pairs = list(zip(kept, converters))
        slow = list(zip(kept, converters, columns))
        refused = self._refused

        def convert_slowly(row: list[Any]) -> list[Any]:
            converted = []
            for index, fn, (column, mapping, nullable) in slow:
                value = row[index]
                try:
                    converted.append(fn(value))
                except _CONVERSION_ERRORS as error:
                    converted.append(refused(table, column, mapping, nullable, value, error, plan))
            return converted

        def convert(rows: list[list[Any]]) -> Any:
            for row in rows:
                try:
                    converted = [fn(row[index]) for index, fn in pairs]
                except _CONVERSION_ERRORS:
                    converted = convert_slowly(row)
                yield converted

        return convert

    def _refused(
        self, table: TableSchema, column: ColumnSchema, mapping: ColumnMapping, nullable: bool, value: Any, error: BaseException, plan: RestorePlan,
    ) -> None:
        """A value the column's type cannot hold: NULL and listed where the report said so,
        otherwise the end of the restore, in one line that names it."""
        why = str(error) if isinstance(error, Refused) else (str(error) or type(error).__name__)
        shown = f"{preview(value)} ({value_kind(value)}{': ' + why if why else ''})"
        if nullable:
            entry = self._nulled.setdefault((table.qualified_name, column.name), [0, [], mapping.target_type])
            entry[0] += 1
            if len(entry[1]) < 3:
                entry[1].append(shown)
            return None
        hint = None
        if isinstance(error, NulCharacter) and not plan.allow_lossy and not column.primary_key:
            hint = "--allow-lossy stores such values as NULL and lists them"
        elif plan.source_engine == "sqlite" and not plan.allow_lossy and not column.primary_key:
            hint = "SQLite does not enforce declared types; --allow-lossy stores such values as NULL and lists them"
        elif column.primary_key:
            hint = "a key column cannot be NULL: correct the value in the source"
        raise SourceError(
            f"table {table.qualified_name!r}, column {column.name!r}: {mapping.target_type} cannot hold the value {shown}; nothing was restored",
            hint=hint,
        )

    def _finish_foreign_schema(self, plan: RestorePlan) -> list[str]:
        conn = self.conn
        assert conn is not None
        notes: list[str] = []
        attempts: list[_Attempt] = []
        render = lambda value: psycopg_sql.Literal(value).as_string(conn)  # noqa: E731
        for table, column, mapping in self._defaults:
            sql, reason = default_sql(column, mapping, plan.source_engine, render)
            label = f"default of {table.qualified_name}.{column.name} ({column.default})"
            if sql is not None:
                target = self._target_tables[(table.namespace, table.name)]
                attempts.append(_Attempt(label, f"ALTER TABLE {target} ALTER COLUMN {quote(column.name)} SET DEFAULT {sql}"))
            elif reason is not None:
                notes.append(f"{label} ({reason})")
        attempts.extend(self._foreign_post_data)
        for table in plan.tables:
            key = (table.namespace, table.name)
            deferred = self._deferred_not_null.get(key)
            if not deferred:
                continue
            kept_not_null = [name for name in deferred if (table.qualified_name, name) not in self._nulled]
            for name in deferred:
                if (table.qualified_name, name) in self._nulled:
                    notes.append(f"NOT NULL of {table.qualified_name}.{name} (values of it became NULL)")
            if kept_not_null:
                sql = f"ALTER TABLE {self._target_tables[key]} " + ", ".join(f"ALTER COLUMN {quote(name)} SET NOT NULL" for name in kept_not_null)
                attempts.append(_Attempt(f"NOT NULL of {table.qualified_name} ({', '.join(kept_not_null)})", sql, required=True))
        attempts.sort(key=lambda attempt: attempt.order)
        notes.extend(self._attempt(attempts, "finishing the tables"))
        statements: list[_Statement] = []
        for table in plan.tables:
            key = (table.namespace, table.name)
            column_name = self._identity.get(key)
            target = self._target_tables.get(key)
            if column_name is None or target is None:
                continue
            column = quote(column_name)
            high = table.options.get("autoincrement_seq")  # SQLite never reuses a key up to it
            sql = (
                f"SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence(%s, %s), greatest(v, 1), coalesce(v >= 1, false)) "
                f"FROM (SELECT greatest(max({column}), %s::bigint) AS v FROM {target}) s"
            )
            statements.append(_Statement(f"identity of {table.qualified_name}", sql, (target, column_name, int(high) if isinstance(high, int) else None)))
        self._run(statements, "setting the identity columns")
        for (table_name, column_name), (count, examples, target_type) in self._nulled.items():
            what = "1 value" if count == 1 else f"{count} values"
            more = ", …" if count > len(examples) else ""
            notes.append(f"{what} of {table_name}.{column_name} stored as NULL ({target_type} cannot hold {'it' if count == 1 else 'them'}): {', '.join(examples)}{more}")
        return notes

    def _attempt(self, attempts: list["_Attempt"], what: str) -> list[str]:
        """Run each statement in a savepoint; one that fails is listed with PostgreSQL's reason
        (a foreign key that existing rows break is created NOT VALID instead), unless required."""
        conn = self.conn
        assert conn is not None
        notes: list[str] = []
        for attempt in attempts:
            error = self._try(attempt.sql)
            if error is None:
                continue
            if attempt.required:
                raise operation_error(error, f"{what} ({attempt.label})", conn) from None
            if attempt.not_valid and getattr(error, "sqlstate", None) == "23503":
                second = self._try(attempt.sql + " NOT VALID")
                if second is None:
                    notes.append(f"{attempt.label} (created NOT VALID: existing rows break it: {_detail(error)})")
                    continue
                error = second
            notes.append(f"{attempt.label} ({_first(error)})")
        return notes

    def _try(self, sql: str) -> psycopg.Error | None:
        conn = self.conn
        assert conn is not None
        try:
            conn.execute("SAVEPOINT unibackup_statement")
        except psycopg.Error as error:
            raise operation_error(error, "finishing the tables", conn) from None
        try:
            conn.execute(sql)
        except psycopg.Error as error:
            if conn.broken:
                raise operation_error(error, "finishing the tables", conn) from None
            try:
                conn.execute("ROLLBACK TO SAVEPOINT unibackup_statement")
            except psycopg.Error as inner:
                raise operation_error(inner, "finishing the tables", conn) from None
            return error
        try:
            conn.execute("RELEASE SAVEPOINT unibackup_statement")
        except psycopg.Error as error:
            raise operation_error(error, "finishing the tables", conn) from None
        return None


class _Attempt:
    """A statement that finishes another engine's tables; one that fails is listed, not fatal."""

    __slots__ = ("label", "sql", "order", "required", "not_valid")

    #: defaults, unique constraints and indexes, checks, NOT NULL, then foreign keys (they need the keys)
    ORDER = {"default": 0, "unique": 1, "index": 1, "check": 2, "not null": 3, "foreign key": 4}

    def __init__(self, label: str, sql: str, *, required: bool = False, not_valid: bool = False):
        self.label = label
        self.sql = sql
        self.required = required
        self.not_valid = not_valid
        self.order = next((rank for prefix, rank in self.ORDER.items() if label.lower().startswith(prefix)), 5)


def _detail(error: psycopg.Error) -> str:
    diag = getattr(error, "diag", None)
    detail = diag.message_detail if diag is not None else None
    return (detail or _first(error)).strip().rstrip(".")


def _unquote(identifier: str) -> str:
    if identifier[:1] == '"':
        return identifier[1:-1].replace('""', '"')
    if identifier[:1] == "`":
        return identifier[1:-1].replace("``", "`")
    if identifier[:1] == "[":
        return identifier[1:-1]
    return identifier


def _index_columns(obj: SchemaObject) -> tuple[list[str], bool] | None:
    """An index of another engine as (columns, unique), when it is a plain list of columns."""
    columns = obj.options.get("columns")
    if isinstance(columns, list) and columns and all(isinstance(c, str) for c in columns):
        if obj.options.get("index_type", "BTREE") not in ("BTREE", "HASH") or ("(" in (obj.sql or "").split(" ON ", 1)[-1].split("(", 1)[-1]):
            return None
        return list(columns), bool(obj.options.get("unique"))
    match = _SIMPLE_INDEX.match(obj.sql or "")
    if match is None:
        return None
    names: list[str] = []
    for part in match.group("columns").split(","):
        found = _INDEX_PART.match(part)
        if found is None:
            return None
        names.append(_unquote(found.group("column")) + (" DESC" if (found.group("order") or "").upper() == "DESC" else ""))
    return names, bool(match.group("unique"))


def _translate_objects(plan: RestorePlan, target_schema: str, kept: Callable[[TableSchema, str], bool]) -> tuple[list[_Attempt], list[str]]:
    """What PostgreSQL can have of another engine's constraints and objects: plain indexes,
    foreign keys, UNIQUE constraints and CHECKs that mean the same; the rest is listed as skipped,
    each with its reason."""
    tables = {table.name: table for table in plan.tables}
    in_backup = {table.name for table in plan.schema.tables}
    engine = ENGINE_NAMES.get(plan.source_engine, plan.source_engine)
    attempts: list[_Attempt] = []
    skipped: list[str] = []
    used_names: set[str] = set()

    def add(label: str, sql: str | None, **flags: Any) -> None:
        if sql is None:
            skipped.append(label)  # the label ends with the reason
        else:
            attempts.append(_Attempt(label, sql, **flags))

    for table in plan.tables:
        for key in table.options.get("foreign_keys") or ():
            label, sql = foreign_key_sql(table, key, tables, target_schema, kept)
            add(label, sql, not_valid=True)
        for columns in table.options.get("unique") or ():
            add(*unique_sql(table, list(columns), target_schema, kept))
        for expression in table.options.get("checks") or ():
            add(*check_sql(table, str(expression), target_schema))
    for obj in plan.schema.objects:
        kind = _kind(obj)
        on = f" on {obj.table}" if obj.table is not None and obj.table != obj.name else ""
        label = f"{kind} {_name(obj)}{on}"
        if obj.kind == "view":
            skipped.append(f"{label} (its SQL is {engine}'s: views of another engine are not recreated)")
            continue
        if obj.table is not None and obj.table in in_backup and obj.table not in tables:
            skipped.append(f"{label} (its table was not restored)")
            continue
        if obj.kind == "index" and obj.table is not None:
            index = _index_columns(obj)
            if index is not None:
                columns, unique = index
                name = obj.name if obj.name not in used_names else f"{obj.table}_{obj.name}"
                used_names.add(name)
                parts = ", ".join(quote(c[:-5]) + " DESC" if c.endswith(" DESC") else quote(c) for c in columns)
                sql = f"CREATE {'UNIQUE ' if unique else ''}INDEX {quote(name)} ON {qualified(target_schema, obj.table)} ({parts})"
                attempts.append(_Attempt(label, sql))
                continue
            skipped.append(f"{label} (not a plain list of columns: its SQL is {engine}'s, not translated)")
            continue
        if obj.kind in ("foreign_key", "foreign key") and obj.table in tables and obj.options.get("columns") and obj.options.get("referenced_table"):
            flabel, sql = foreign_key_sql(tables[obj.table], obj.options, tables, target_schema, kept)
            if sql is not None and obj.name:
                sql = sql.replace(" ADD FOREIGN KEY ", f" ADD CONSTRAINT {quote(obj.name)} FOREIGN KEY ", 1)
            add(flabel, sql, not_valid=True)
            continue
        if obj.kind == "check" and obj.table in tables and obj.options.get("expression"):
            clabel, sql = check_sql(tables[obj.table], str(obj.options["expression"]), target_schema)
            add(clabel, sql)
            continue
        reason = obj.options.get("skipped") or obj.options.get("not_kept")
        if reason is None:
            what = "triggers" if obj.kind == "trigger" else f"{kind}s"
            reason = f"its SQL is {engine}'s: {what} of another engine are not recreated"
        skipped.append(f"{label} ({reason})")
    return attempts, skipped


def _backup_schemas(plan: RestorePlan) -> list[str]:
    names = [name for name in plan.schema.settings.get("schemas", [])]
    for table in plan.tables:
        if table.namespace and table.namespace not in names:
            names.append(table.namespace)
    return names or ["public"]


def _name(obj: SchemaObject) -> str:
    if obj.kind == "schema" or not obj.namespace:
        return obj.name
    return f"{obj.namespace}.{obj.name}"


def _kind(obj: SchemaObject) -> str:
    """The object's kind in words ("foreign_key" -> "foreign key")."""
    return obj.kind.replace("_", " ")


def _first(error: BaseException) -> str:
    diag = getattr(error, "diag", None)
    message = diag.message_primary if diag is not None else None
    return message or str(error).strip().splitlines()[0]


def _skip_reason(obj: SchemaObject, selected: set[tuple[str | None, str]], tables: set[tuple[str | None, str]]) -> str | None:
    """Why ``obj`` is not restored, or None (``tables``: every table of the backup)."""
    if obj.sql is None and obj.kind != "sequence":
        return f"{_kind(obj)} {_name(obj)} ({obj.options.get('not_kept') or 'no definition in the backup'})"
    if obj.kind in ("view", "materialized_view", "materialized view", "schema", "extension", "type", "domain", "function", "procedure", "aggregate", "sequence"):
        return None
    if obj.table is not None and (obj.namespace, obj.table) in tables and (obj.namespace, obj.table) not in selected:
        on = f" on {obj.table}" if obj.table != obj.name else ""
        return f"{_kind(obj)} {_name(obj)}{on} (its table was not restored)"
    if obj.kind == "partition":
        parent = obj.options.get("parent") or ["", ""]
        if (parent[0], parent[1]) not in selected:
            return f"partition attachment of {_name(obj)} (the partitioned table was not restored)"
    return None


def copy_in_sql(target: str, columns: list[str]) -> str:
    """``COPY ... FROM STDIN`` into ``columns`` of ``target``. A table without columns takes
    ``COPY`` without a column list (``()`` is a syntax error): each empty line is one row."""
    names = f" ({', '.join(quote(name) for name in columns)})" if columns else ""
    return f"COPY {target}{names} FROM STDIN"


def _same_engine_rows(rows: list[list[Any]]) -> Any:
    return rows
