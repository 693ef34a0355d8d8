"""The built-in ``sqlite`` source and restore target.

Reading happens inside one read transaction, so a concurrent writer cannot make the backup
inconsistent. Every value keeps its storage class: TEXT that is not valid UTF-8 is read with
``surrogateescape`` and tagged by the encoder; the rowid of rowid tables is kept as a hidden
first column. Restore writes a new database file beside the target and puts it in place only
after everything succeeded.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import sqlite3
import stat
import urllib.parse
from pathlib import Path

import attrs
from typing import Any, Iterator, Sequence

from unibackup import hookimpl
from unibackup.errors import CorruptBackupError, SourceError, TransientError, UsageError
from unibackup.files import fsync_directory
from unibackup.resources import remove_leftovers
from unibackup.models import ColumnMapping, ColumnSchema, DatabaseSchema, SchemaObject, TableSchema
from unibackup.source import BatchSizer, RestorePlan, Source
from unibackup.values import EncodedRows, RawText, encode_batch

from . import sqlite_ddl
from . import sqlite_portable as portable

log = logging.getLogger(__name__)

SQLITE_MAGIC = b"SQLite format 3\x00"
ROWID_ALIASES = ("rowid", "_rowid_", "oid")
_CONTENT_OPTION = re.compile(r"\bcontent\s*=\s*(?:'((?:[^']|'')*)'|\"((?:[^\"]|\"\")*)\"|([^\s,)]*))", re.IGNORECASE)
_USING_MODULE = re.compile(r"\bUSING\s+([A-Za-z0-9_]+)", re.IGNORECASE)
_TRANSIENT_MESSAGES = ("database is locked", "database table is locked", "database is busy", "database schema has changed")


def _lenient_text(data: bytes) -> str:
    """Text that may not be UTF-8: invalid bytes become lone surrogates, which the encoder tags."""
    return data.decode("utf-8", "surrogateescape")


_IDENTIFIER = re.compile(r"'(?:[^']|'')*'|\"((?:[^\"]|\"\")*)\"|\[([^\]]*)\]|`((?:[^`]|``)*)`|([A-Za-z_][A-Za-z0-9_$]*)")


def _referenced_names(sql: str) -> set[str]:
    """Every identifier in a statement (lower case), string literals left out."""
    names = set()
    for match in _IDENTIFIER.finditer(sql):
        double, bracket, backtick, bare = match.groups()
        if double is not None:
            names.add(double.replace('""', '"').lower())
        elif bracket is not None:
            names.add(bracket.lower())
        elif backtick is not None:
            names.add(backtick.replace("``", "`").lower())
        elif bare is not None:
            names.add(bare.lower())
    return names


def _check_constraints(sql: str) -> list[str]:
    """The expressions of the CHECK constraints in a CREATE TABLE (SQLite syntax, as written)."""
    checks = []
    upper = sql.upper()
    position = 0
    while True:
        match = re.search(r"\bCHECK\s*\(", upper[position:])
        if match is None:
            return checks
        start = position + match.end()
        depth, index, quote_char = 1, start, None
        while index < len(sql) and depth:
            char = sql[index]
            if quote_char:
                if char == quote_char:
                    quote_char = None
            elif char in "'\"`[":
                quote_char = "]" if char == "[" else char
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            index += 1
        if depth:
            return checks
        checks.append(sql[start : index - 1].strip())
        position = index


def quote(name: str) -> str:
    """An identifier quoted for SQLite, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


def _translate(error: sqlite3.Error, what: str, path: str) -> Exception:
    """A sqlite3 error as a unibackup error with one clear line."""
    message = str(error)
    name = os.path.basename(path)
    if any(text in message for text in _TRANSIENT_MESSAGES):
        detail = "" if message == "database is locked" else f" ({message})"
        return TransientError(f"the database {name!r} is locked by another process{detail}")
    if "file is not a database" in message or "file is encrypted" in message:
        # the same class as a file that does not even start like one: the user named the wrong file
        return UsageError(f"{name!r} is not a SQLite database, or it is damaged ({message})")
    if "malformed" in message or "disk I/O error" in message:
        return SourceError(f"the database {name!r} is damaged: {message}", hint="check it with 'unibackup check'")
    if "unable to open" in message:
        return SourceError(f"cannot open {name!r}: {message}")
    if "no such module" in message:
        return SourceError(f"{what} needs a SQLite extension that is not loaded ({message})")
    return SourceError(f"{what} failed on {name!r}: {message}")


#: words of sqlite3 errors that are the machine's doing, not the backup's
_ENVIRONMENT_WORDS = ("disk", "full", "I/O", "readonly", "unable to open", "locked", "busy", "no such module", "out of memory", "interrupt")


def _translate_own_sql(error: sqlite3.Error, what: str, path: str) -> Exception:
    """An error of a same-engine restore while it runs the backup's own schema or writes its rows:
    SQLite refusing what the backup says of itself (a trigger on a table it lacks, a duplicate
    row id, a value a STRICT column refuses) is damage in the backup (exit 3); a full disk is not."""
    message = str(error)
    own = isinstance(error, (sqlite3.IntegrityError, sqlite3.OperationalError, sqlite3.ProgrammingError))
    if own and not any(word in message for word in _ENVIRONMENT_WORDS):
        return CorruptBackupError(f"{what}: SQLite refuses what the backup says ({message}); nothing was written", hint="the backup is damaged or hostile")
    return _translate(error, what, path)


def logical_type(declared: str) -> str:
    """The portable logical type of a declared SQLite column type (affinity rules, plus common names)."""
    text = declared.upper()
    if not text:
        return "any"
    if "BOOL" in text:
        return "boolean"
    if "INT" in text:
        return "integer"
    if any(word in text for word in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if "BLOB" in text:
        return "bytes"
    if any(word in text for word in ("REAL", "FLOA", "DOUB")):
        return "float"
    if "DATETIME" in text or "TIMESTAMP" in text:
        return "datetime"
    if "DATE" in text:
        return "date"
    if "TIME" in text:
        return "time"
    if "JSON" in text:
        return "json"
    if "UUID" in text:
        return "uuid"
    if "DEC" in text or "NUMERIC" in text or "MONEY" in text:
        return "decimal"
    return "any"


def _precision(declared: str) -> dict[str, Any]:
    match = re.search(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", declared)
    if not match:
        return {}
    options = {"length": int(match.group(1))}
    if match.group(2) is not None:
        options = {"precision": int(match.group(1)), "scale": int(match.group(2))}
    return options


def _content_option(sql: str) -> str | None:
    """The ``content=`` option of an FTS table: None when absent."""
    match = _CONTENT_OPTION.search(sql)
    if not match:
        return None
    for group in match.groups():
        if group is not None:
            return group
    return ""


def _is_restore_leftover(path: Path) -> bool:
    """A temporary restore target: empty, a SQLite database, or one whose first page was never
    written (a transaction that spilled pages to the file is cut off before its commit)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except OSError:
        return False
    return head == SQLITE_MAGIC or not head.strip(b"\0")


@attrs.frozen
class SQLiteSettings:
    """``[source.sqlite]``."""

    busy_timeout: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))  # seconds SQLite waits on a lock


class SQLiteSource(Source):
    """SQLite files: source (``sqlite:///path`` or a bare path) and restore target."""

    name = "sqlite"
    schemes = ("sqlite",)
    version = sqlite3.sqlite_version
    settings_type = SQLiteSettings

    def __init__(self, location: Any, settings: dict[str, Any] | None = None):
        super().__init__(location, settings)
        # a link is followed: a restore replaces the database it points to, not the link
        self.path = os.path.realpath(location.path)
        self._conn: sqlite3.Connection | None = None
        self._temporary: Path | None = None
        self._replace = False

    @classmethod
    def accepts_path(cls, path: str) -> bool:
        if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
            return False  # a device, a pipe or a socket is no database file (and opening a pipe hangs)
        try:
            with open(path, "rb") as handle:
                head = handle.read(len(SQLITE_MAGIC))
        except FileNotFoundError:
            return True  # a new database file for a restore
        except OSError:
            return False
        return head == SQLITE_MAGIC or head == b""

    # -- backup side -------------------------------------------------------------------------
    def open_snapshot(self) -> None:
        if not os.path.exists(self.path):
            raise UsageError(f"the source {self.path!r} does not exist")
        if os.path.isdir(self.path):
            raise UsageError(f"the source {self.path!r} is a directory, not a database file")
        uri = "file:" + urllib.parse.quote(self.path) + "?mode=ro"
        timeout = float(self.settings.get("busy_timeout", 1.0))
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout, check_same_thread=False)
        except sqlite3.Error as error:
            raise _translate(error, "opening", self.path) from None
        conn.text_factory = _lenient_text
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts here
        except sqlite3.Error as error:
            conn.close()
            raise _translate(error, "opening", self.path) from None
        self._conn = conn

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the SQLite source is not open")
        return self._conn

    def server_version(self) -> str:
        return sqlite3.sqlite_version

    def _pragma(self, name: str) -> Any:
        return self.conn.execute(f"PRAGMA main.{name}").fetchone()[0]

    def describe(self) -> DatabaseSchema:
        try:
            return self._describe()
        except sqlite3.Error as error:
            raise _translate(error, "reading the schema", self.path) from None

    def _describe(self) -> DatabaseSchema:
        conn = self.conn
        kinds = {row[1]: row for row in conn.execute("PRAGMA main.table_list")}
        sequences = {}
        if "sqlite_sequence" in kinds:
            sequences = dict(conn.execute("SELECT name, seq FROM main.sqlite_sequence"))
        master = conn.execute("SELECT type, name, tbl_name, sql FROM main.sqlite_master ORDER BY rowid").fetchall()
        tables: list[TableSchema] = []
        objects: list[SchemaObject] = []
        for kind, name, table_name, sql in master:
            if kind == "table":
                if name.startswith("sqlite_"):
                    continue
                listed = kinds.get(name)
                if listed is not None and listed[2] == "shadow":
                    owner = next((t.name for t in tables if t.options.get("shadow_data") and name.startswith(f"{t.name}_")), None)
                    if owner is None:
                        continue  # data of a virtual table, rebuilt through it
                    # a contentless FTS index exists only here: its shadow tables are its data
                    table = self._describe_table(name, sql, listed, sequences)
                    options = {**table.options, "shadow_of": owner, "same_engine_only": f"the index of SQLite full-text table {owner!r}"}
                    tables.append(attrs.evolve(table, kind="shadow", options=options))
                    continue
                tables.append(self._describe_table(name, sql, listed, sequences))
            elif sql is not None and kind in ("index", "view", "trigger"):
                objects.append(SchemaObject(kind=kind, name=name, sql=sql, table=table_name))
        settings = {
            "user_version": self._pragma("user_version"),
            "application_id": self._pragma("application_id"),
            "page_size": self._pragma("page_size"),
            "auto_vacuum": self._pragma("auto_vacuum"),
            "encoding": self._pragma("encoding"),
            "journal_mode": self._pragma("journal_mode"),
        }
        if "sqlite_stat1" in kinds:  # the planner's statistics (ANALYZE), kept as they are
            settings["sqlite_stat1"] = [list(row) for row in conn.execute("SELECT tbl, idx, stat FROM main.sqlite_stat1")]
        return DatabaseSchema(engine=self.name, tables=tuple(tables), objects=tuple(objects), settings=settings)

    def _describe_table(self, name: str, sql: str, listed: Any, sequences: dict[str, int]) -> TableSchema:
        conn = self.conn
        virtual = sql.upper().startswith("CREATE VIRTUAL TABLE")
        without_rowid = bool(listed[4]) if listed is not None else False
        strict = bool(listed[5]) if listed is not None else False
        info = conn.execute(f"PRAGMA main.table_xinfo({quote(name)})").fetchall()
        columns: list[ColumnSchema] = []
        generated: list[ColumnSchema] = []
        pk_columns = [row for row in info if row[5] > 0]
        for cid, column, declared, notnull, default, pk, hidden in info:
            declared = declared or ""
            schema = ColumnSchema(
                name=column,
                declared_type=declared,
                logical_type=logical_type(declared),
                nullable=not notnull,
                default=default,
                primary_key=pk,
                options=_precision(declared),
            )
            if hidden in (2, 3):
                generated.append(ColumnSchema(
                    name=column, declared_type=declared, logical_type=schema.logical_type, nullable=schema.nullable,
                    options={"stored": hidden == 3},
                ))
            elif hidden == 0:
                columns.append(schema)
        options: dict[str, Any] = {}
        if without_rowid:
            options["without_rowid"] = True
        if strict:
            options["strict"] = True
        if name in sequences:
            options["autoincrement_seq"] = sequences[name]
        has_data = True
        module = None
        if virtual:
            match = _USING_MODULE.search(sql)
            module = match.group(1).lower() if match else None
            options["module"] = module
        rowid_alias = len(pk_columns) == 1 and (pk_columns[0][2] or "").upper() == "INTEGER" and not without_rowid
        if rowid_alias and not virtual:
            # "INTEGER PRIMARY KEY DESC" is no alias: SQLite then backs the key with an index
            indexes = conn.execute(f"PRAGMA main.index_list({quote(name)})").fetchall()
            rowid_alias = not any(row[3] == "pk" for row in indexes)
        needs_rowid = (not virtual and not without_rowid and not rowid_alias) or (virtual and module and module.startswith("fts"))
        taken = {column.name.lower() for column in columns} | {column.name.lower() for column in generated}
        alias = next((a for a in ROWID_ALIASES if a not in taken), None)
        if needs_rowid:
            if alias is None:
                options["rowid_not_kept"] = "every rowid alias is a column name"
            else:
                columns.insert(0, ColumnSchema(name=alias, declared_type="INTEGER", logical_type="integer", nullable=False, hidden="rowid"))
        if virtual and module and module.startswith("fts"):
            content = _content_option(sql)
            if content is not None:
                has_data = False
                options["data_not_kept"] = (
                    "contentless FTS table; its index is kept in its shadow tables" if content == ""
                    else f"external-content FTS table over {content!r}; rebuilt after restore"
                )
                options["rebuild"] = content != ""
                options["shadow_data"] = content == ""
        if not virtual:
            options.update(self._constraints(name))
        row_estimate = self._row_estimate(name, without_rowid or virtual or alias is None, alias or "rowid") if has_data else 0
        return TableSchema(
            name=name,
            columns=tuple(columns),
            kind="virtual" if virtual else "table",
            create_sql=sql,
            row_estimate=row_estimate,
            has_data=has_data,
            generated_columns=tuple(generated),
            options=options,
        )

    def _constraints(self, name: str) -> dict[str, Any]:
        """Foreign keys, UNIQUE constraints and CHECKs of a table as portable data, for restores
        into other engines (a SQLite restore runs the table's own DDL instead)."""
        conn = self.conn
        found: dict[str, Any] = {}
        foreign: dict[int, dict[str, Any]] = {}
        for row in conn.execute(f"PRAGMA main.foreign_key_list({quote(name)})"):
            key_id, _seq, referenced, column, referenced_column, on_update, on_delete, _match = row
            entry = foreign.setdefault(key_id, {
                "columns": [], "referenced_table": referenced, "referenced_columns": [],
                "on_update": on_update, "on_delete": on_delete,
            })
            entry["columns"].append(column)
            entry["referenced_columns"].append(referenced_column)  # None: the referenced table's primary key
        if foreign:
            found["foreign_keys"] = [foreign[key] for key in sorted(foreign)]
        unique = []
        for _seq, index_name, is_unique, origin, _partial in conn.execute(f"PRAGMA main.index_list({quote(name)})"):
            if is_unique and origin == "u":
                unique.append([row[2] for row in conn.execute(f"PRAGMA main.index_info({quote(index_name)})")])
        if unique:
            found["unique"] = unique
        checks = _check_constraints(self._table_sql(name))
        if checks:
            found["checks"] = checks
        return found

    def _table_sql(self, name: str) -> str:
        row = self.conn.execute("SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        return row[0] if row else ""

    def _row_estimate(self, name: str, count_rows: bool, rowid: str = "rowid") -> int | None:
        """A cheap estimate: the rowid span for rowid tables (``rowid``: a name of the rowid that
        no column shadows), a count for the others."""
        try:
            if count_rows:
                return self.conn.execute(f"SELECT count(*) FROM main.{quote(name)}").fetchone()[0]
            low, high = self.conn.execute(f"SELECT min({rowid}), max({rowid}) FROM main.{quote(name)}").fetchone()
        except sqlite3.Error:
            return None
        if low is None:
            return 0
        span = int(high - low + 1)
        if span > self._most_rows_possible():  # sparse row ids: the span is no estimate at all
            return self._row_estimate(name, True)
        return span

    def _most_rows_possible(self) -> int:
        """More rows than any table of this file can hold (a row takes at least 4 bytes)."""
        pages, page_size = self._pragma("page_count"), self._pragma("page_size")
        return max(1, pages * page_size // 4)

    def _select(self, table: TableSchema) -> str:
        columns = ", ".join(column.name if column.hidden == "rowid" else quote(column.name) for column in table.columns)
        return f"SELECT {columns} FROM main.{quote(table.name)}"

    @staticmethod
    def _resume_column(table: TableSchema) -> int | None:
        """The position of the rowid in the row, when the table can be read in rowid order."""
        if table.kind != "table" or table.options.get("without_rowid"):
            return None
        for index, column in enumerate(table.columns):
            if column.hidden == "rowid":
                return index
        keys = [index for index, column in enumerate(table.columns) if column.primary_key]
        if len(keys) == 1 and table.columns[keys[0]].declared_type.upper() == "INTEGER":
            return keys[0]
        return None

    def read_batches(self, table: TableSchema, sizer: BatchSizer) -> Iterator[EncodedRows]:
        """Stream the rows. Text is decoded strictly (the fast path); when a value turns out not
        to be UTF-8, the table is read on from the last row sent with lenient decoding."""
        if not table.columns:
            return
        conn = self.conn
        key = self._resume_column(table)
        select = self._select(table)
        strict = key is not None
        last: Any = None
        try:
            while True:
                conn.text_factory = str if strict else _lenient_text
                if key is None:
                    cursor = conn.execute(select)
                else:
                    key_sql = table.columns[key].name if table.columns[key].hidden else quote(table.columns[key].name)
                    where = f" WHERE {key_sql} > ?" if last is not None else ""
                    cursor = conn.execute(f"{select}{where} ORDER BY {key_sql}", (last,) if last is not None else ())
                try:
                    while True:
                        rows = cursor.fetchmany(sizer.next_batch_size())
                        if not rows:
                            return
                        if key is not None:
                            last = rows[-1][key]
                        yield encode_batch(rows)
                except sqlite3.OperationalError as error:
                    if not strict or "decode" not in str(error):
                        raise
                    strict = False  # text that is not UTF-8: go on leniently from the last row sent
        except sqlite3.Error as error:
            raise _translate(error, f"reading table {table.name!r}", self.path) from None
        finally:
            conn.text_factory = _lenient_text

    def estimate_size(self) -> int:
        conn = self.conn
        pages = conn.execute("PRAGMA main.page_count").fetchone()[0] - conn.execute("PRAGMA main.freelist_count").fetchone()[0]
        return int(pages * conn.execute("PRAGMA main.page_size").fetchone()[0])

    def health_check(self) -> list[str]:
        try:
            problems = [row[0] for row in self.conn.execute("PRAGMA main.quick_check")]
        except sqlite3.Error as error:
            return [str(error)]
        if problems == ["ok"]:
            return []
        # one problem a line, without the "*** in database main ***" heading
        return [line.strip() for text in problems for line in str(text).splitlines() if line.strip() and not line.startswith("***")]

    # -- restore side ------------------------------------------------------------------------
    def _target_in_use(self) -> bool:
        """Whether the target file exists and holds anything."""
        if not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            return False
        try:
            conn = sqlite3.connect("file:" + urllib.parse.quote(self.path) + "?mode=ro", uri=True)
            try:
                return conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
            finally:
                conn.close()
        except sqlite3.Error:
            return True  # not a database we can read: never overwrite it without --force

    def map_columns(self, plan: RestorePlan) -> list[ColumnMapping]:
        """Cross-engine restore: each column's SQLite type and fidelity (see sqlite_portable)."""
        return portable.refuse_name_collisions(plan.tables, [portable.map_column(table, column) for table in plan.tables for column in table.columns])

    def _create_foreign_tables(self, plan: RestorePlan) -> list[str]:
        """Tables of another engine, from their portable schema; their own SQL is never run."""
        mappings = {(m.table, m.column): m for m in plan.mappings}
        keys = self._foreign_keys = portable.translate_foreign_schema(plan.tables, plan.schema.objects, plan.source_engine)
        for table in plan.tables:
            by_column = {column.name: mappings[(table.qualified_name, column.name)] for column in table.columns}
            try:
                self.conn.execute(portable.create_table_sql(table, by_column, keys))
            except sqlite3.Error as error:
                raise _translate(error, f"creating table {table.qualified_name!r}", self.path) from None
            self._converters[(table.namespace, table.name)] = portable.converters_for(table, plan.allow_lossy, self._lost)
        return []

    def open_restore(self, plan: RestorePlan) -> None:
        directory = os.path.dirname(self.path) or "."
        if not os.path.isdir(directory):
            raise UsageError(f"the directory of the target {self.path!r} does not exist")
        if os.path.isdir(self.path):
            raise UsageError(f"the target {self.path!r} is a directory")
        if self._target_in_use():
            if not plan.force:
                raise UsageError(f"the target {self.path!r} exists and is not empty", hint="use --force to replace it after a successful restore")
            self._replace = True
        elif os.path.exists(self.path):
            self._replace = True  # an empty file or an empty database: nothing to lose
        name = os.path.basename(self.path)
        remove_leftovers(Path(directory), _is_restore_leftover, final_name=name)  # of restores that were killed
        self._temporary = Path(directory) / f".{name}.unibackup-{os.getpid()}-{secrets.token_hex(4)}.tmp"
        settings = plan.schema.settings if plan.schema.engine == self.name else {}
        sqlite_ddl.check_settings(settings)
        try:
            conn = sqlite3.connect(self._temporary, isolation_level=None, check_same_thread=False)
            # The file is thrown away on failure, so the journal only has to serve savepoints.
            conn.execute("PRAGMA journal_mode=MEMORY")
            conn.execute("PRAGMA synchronous=OFF")
            if settings.get("page_size"):
                conn.execute(f"PRAGMA page_size={int(settings['page_size'])}")
            if settings.get("auto_vacuum") is not None:
                conn.execute(f"PRAGMA auto_vacuum={int(settings['auto_vacuum'])}")
            if settings.get("encoding") in ("UTF-8", "UTF-16le", "UTF-16be"):
                conn.execute(f"PRAGMA encoding='{settings['encoding']}'")
            conn.execute("BEGIN")
        except sqlite3.Error as error:
            if "unable to open" in str(error):  # the new file beside the target could not be made
                raise SourceError(f"cannot create the restore target beside {self.path!r}: the directory {directory!r} is not writable") from None
            raise _translate(error, "creating the restore target", self.path) from None
        except OSError as error:
            raise SourceError(f"cannot create the restore target beside {self.path!r}: {error.strerror}") from None
        self._conn = conn
        self._journal_mode = settings.get("journal_mode")
        self._inserts: dict[tuple[str | None, str], str] = {}
        self._converters: dict[tuple[str | None, str], list[Any]] = {}
        self._lost: dict[str, int] = {}  # values an --allow-lossy restore stored as NULL, by column

    def create_schema(self, plan: RestorePlan) -> list[str]:
        for table in plan.tables:
            sqlite_ddl.check_columns(table)
        if plan.source_engine != self.name:
            return self._create_foreign_tables(plan)
        # the backup's own SQL runs only if it creates exactly what it claims to (see sqlite_ddl)
        sqlite_ddl.check_schema(plan.tables, plan.schema.objects, plan.schema.settings)
        restored = {table.name for table in plan.tables}
        for table in plan.tables:
            sql = table.create_sql or ""
            if table.kind == "shadow" and table.options.get("shadow_of") in restored:
                sql = f"DELETE FROM main.{quote(table.name)}"  # its virtual table made it; the rows are the backup's
            try:
                self.conn.execute(sql)
            except sqlite3.Error as error:
                raise _translate_own_sql(error, f"creating table {table.name!r}", self.path) from None
        return []

    def _insert_sql(self, table: TableSchema) -> str:
        key = (table.namespace, table.name)
        sql = self._inserts.get(key)
        if sql is None:
            names = ", ".join(column.name if column.hidden == "rowid" else quote(column.name) for column in table.columns)
            marks = ", ".join("?" for _ in table.columns)
            sql = f"INSERT INTO main.{quote(self._table_name(table))} ({names}) VALUES ({marks})"
            self._inserts[key] = sql
        return sql

    def _table_name(self, table: TableSchema) -> str:
        return portable.sqlite_table_name(table) if (table.namespace, table.name) in self._converters else table.name

    def write_rows(self, table: TableSchema, rows: list[list[Any]]) -> None:
        if not table.has_data or not rows:
            return
        conn = self.conn
        converters = self._converters.get((table.namespace, table.name))
        if converters is not None:
            try:
                rows = portable.convert_rows(rows, converters)
            except portable.NotStorable as error:
                raise UsageError(str(error)) from None
        sql = self._insert_sql(table)
        try:
            conn.execute("SAVEPOINT batch")
            try:
                conn.executemany(sql, rows)
            except (sqlite3.ProgrammingError, sqlite3.InterfaceError, OverflowError):
                # A value the driver cannot bind as is (text that is not UTF-8): row by row.
                conn.execute("ROLLBACK TO batch")
                for row in rows:
                    self._insert_one(table, sql, row)
            conn.execute("RELEASE batch")
        except sqlite3.Error as error:
            if "datatype mismatch" in str(error) or "cannot store" in str(error):
                # a value the backup's own schema refuses: the backup is damaged or hostile
                raise CorruptBackupError(f"table {table.name!r} holds a value of the wrong type for its column ({error})") from None
            if converters is None:  # the backup's own rows into the backup's own schema
                raise _translate_own_sql(error, f"writing table {table.name!r}", self.path) from None
            raise _translate(error, f"writing table {table.name!r}", self.path) from None

    def _insert_one(self, table: TableSchema, sql: str, row: list[Any]) -> None:
        if not any(type(value) is RawText for value in row):
            try:
                self.conn.execute(sql, row)
            except OverflowError:
                raise SourceError(f"table {table.name!r} holds an integer beyond 64 bits, which SQLite cannot store") from None
            return
        names = ", ".join(column.name if column.hidden == "rowid" else quote(column.name) for column in table.columns)
        marks = ", ".join("CAST(? AS TEXT)" if type(value) is RawText else "?" for value in row)
        values = [value.data if type(value) is RawText else value for value in row]
        self.conn.execute(f"INSERT INTO main.{quote(self._table_name(table))} ({names}) VALUES ({marks})", values)

    def _set_sequence(self, table_name: str, value: int, *, keep_higher: bool = False) -> None:
        """``sqlite_sequence`` of ``table_name`` at ``value``; with ``keep_higher``, at the larger
        of it and what the restored rows left there."""
        conn = self.conn
        update = f"UPDATE main.sqlite_sequence SET seq = {'max(seq, ?)' if keep_higher else '?'} WHERE name = ?"
        if not conn.execute(update, (value, table_name)).rowcount:
            conn.execute("INSERT INTO main.sqlite_sequence (name, seq) VALUES (?, ?)", (table_name, value))

    def _finish_foreign_schema(self, plan: RestorePlan) -> list[str]:
        """After the rows of another engine's backup: its indexes, its counters, and the list of
        what stays behind."""
        keys = self._foreign_keys
        skipped = list(keys.skipped)
        for name, sql in keys.indexes:
            try:
                self.conn.execute(sql)
            except sqlite3.IntegrityError as error:  # rows the source engine let in (say, a collation's equal values)
                skipped.append(f"index {name} (the rows break it in SQLite: {error})")
            except sqlite3.Error as error:
                raise _translate(error, "creating the indexes", self.path) from None
        for counter in keys.high_water.values():
            self._set_sequence(counter.table, counter.handed_out, keep_higher=True)
        return skipped + portable.lost_values(self._lost) + [
            f"{obj.kind} {obj.namespace + '.' if obj.namespace else ''}{obj.name}"
            f"{f' on {obj.table}' if obj.table and obj.table != obj.name else ''} ({plan.source_engine} SQL cannot run in SQLite)"
            for obj in plan.schema.objects
            if id(obj) not in keys.handled
            and not (obj.kind == "schema" and obj.name in portable.DEFAULT_NAMESPACES)  # its tables keep bare names
        ]

    def finish_schema(self, plan: RestorePlan) -> list[str]:
        if plan.source_engine != self.name:
            return self._finish_foreign_schema(plan)
        conn = self.conn
        selected = {table.name for table in plan.tables}
        try:
            for table in plan.tables:
                seq = table.options.get("autoincrement_seq")
                if seq is not None:
                    self._set_sequence(table.name, seq)
                if table.options.get("rebuild"):
                    conn.execute(f"INSERT INTO main.{quote(table.name)} ({quote(table.name)}) VALUES ('rebuild')")
            skipped = []
            for table in plan.tables:  # a partial restore: a key that points out of it is kept, and said
                for key in table.options.get("foreign_keys") or ():
                    referenced = str(key.get("referenced_table"))
                    if referenced.lower() not in {name.lower() for name in selected}:
                        skipped.append(
                            f"table {referenced} that foreign key {table.name}({', '.join(map(str, key.get('columns') or ()))}) references "
                            f"(not restored; the key stays in {table.name!r}'s definition, and PRAGMA foreign_key_check reports its rows)"
                        )
            # views before triggers: an INSTEAD OF trigger is defined on a view
            views = {obj.name for obj in plan.schema.objects if obj.kind == "view"}
            missing = {t.name.lower() for t in plan.schema.tables} - {name.lower() for name in selected}
            for kind in ("index", "view", "trigger"):
                for obj in plan.schema.objects:
                    if obj.kind != kind or not obj.sql:
                        continue
                    if kind != "view" and obj.table not in selected and obj.table not in views:
                        skipped.append(f"{kind} {obj.name} (its table was not restored)")
                        continue
                    uses = sorted(_referenced_names(obj.sql) & missing) if missing and kind != "index" else []
                    if uses:
                        # a partial restore: this object would fail as soon as it is used
                        skipped.append(f"{kind} {obj.name} (it uses {uses[0]!r}, which was not restored)")
                        if kind == "view":
                            missing.add(obj.name.lower())
                        continue
                    conn.execute(obj.sql)
            settings = plan.schema.settings
            if settings.get("user_version") is not None:
                conn.execute(f"PRAGMA user_version={int(settings['user_version'])}")
            if settings.get("application_id") is not None:
                conn.execute(f"PRAGMA application_id={int(settings['application_id'])}")
            existing = {row[0] for row in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")}
            statistics = [row for row in settings.get("sqlite_stat1") or () if row and row[0] in existing]
            if statistics:
                conn.execute("ANALYZE main.sqlite_master")  # creates sqlite_stat1, analyses nothing
                conn.execute("DELETE FROM main.sqlite_stat1")
                conn.executemany("INSERT INTO main.sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", statistics)
        except sqlite3.Error as error:
            raise _translate_own_sql(error, "finishing the schema", self.path) from None
        return skipped

    def commit(self) -> None:
        conn = self.conn
        try:
            conn.execute("COMMIT")
            journal_mode = "wal" if self._journal_mode == "wal" else "delete"
            conn.execute(f"PRAGMA journal_mode={journal_mode}")
            conn.close()
        except sqlite3.Error as error:
            raise _translate(error, "committing the restore", self.path) from None
        self._conn = None
        assert self._temporary is not None
        with open(self._temporary, "rb+") as handle:
            self._take_over_ownership(handle.fileno())
            os.fsync(handle.fileno())
        self._clear_old_journals()
        if self._replace:
            os.replace(self._temporary, self.path)
        else:
            try:
                os.link(self._temporary, self.path)
            except FileExistsError:
                if os.path.getsize(self.path) != 0:
                    raise UsageError(f"the target {self.path!r} appeared during the restore; it was left alone") from None
                os.replace(self._temporary, self.path)
            else:
                os.unlink(self._temporary)
        self._temporary = None
        fsync_directory(Path(self.path).parent)

    def _take_over_ownership(self, fd: int) -> None:
        """A database that replaces another keeps the old one's mode and, where we may, its owner
        and group: a restore must not open up a file that was private."""
        try:
            old = os.stat(self.path)
        except OSError:
            return  # a new file: the process's umask decides, as for any file it creates
        os.fchmod(fd, stat.S_IMODE(old.st_mode))
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except PermissionError:
            pass  # not root: the restored file is ours, with the old mode

    def _clear_old_journals(self) -> None:
        """The target's ``-wal``, ``-shm`` and ``-journal`` files belong to the old database, and
        SQLite would replay them onto the restored one as soon as it is opened. An old database
        that another process is using is refused; otherwise SQLite resolves its own hot journal or
        WAL first, then whatever is left is removed, before the restored file takes the name."""
        leftovers = [f"{self.path}{suffix}" for suffix in ("-wal", "-journal", "-shm")]
        if not any(os.path.exists(path) for path in leftovers):
            return
        if os.path.isfile(self.path) and os.path.getsize(self.path) > 0:
            uri = "file:" + urllib.parse.quote(self.path) + "?mode=rw"
            timeout = float(self.settings.get("busy_timeout", 1.0))
            try:
                old = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout)
            except sqlite3.Error:
                old = None
            if old is not None:
                try:
                    old.execute("PRAGMA locking_mode=EXCLUSIVE")
                    old.execute("BEGIN EXCLUSIVE")  # rolls back a hot journal; fails while others use it
                    old.execute("ROLLBACK")
                    old.execute("PRAGMA journal_mode=DELETE")  # folds a WAL into the old file
                except sqlite3.Error as error:
                    if any(text in str(error) for text in _TRANSIENT_MESSAGES):
                        raise UsageError(
                            f"the target {self.path!r} is in use by another process; it was left as it was",
                            hint="close the programs using it and restore again",
                        ) from None
                    # not a database SQLite can use: its journal files are nobody's
                finally:
                    old.close()
        for path in leftovers:
            try:
                size = os.path.getsize(path)
                os.unlink(path)
            except FileNotFoundError:
                continue
            if size and not path.endswith("-shm"):
                log.warning("removed %s, left by the database the restore replaces", os.path.basename(path))

    def _close_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    def rollback(self) -> None:
        self._close_connection()
        if self._temporary is not None:
            for suffix in ("", "-journal", "-wal", "-shm"):
                try:
                    os.unlink(f"{self._temporary}{suffix}")
                except OSError:
                    pass
            self._temporary = None

    def close(self) -> None:
        if self._temporary is not None:
            self.rollback()
        self._close_connection()


@hookimpl
def unibackup_register_sources() -> list[type[Source]]:
    return [SQLiteSource]
