"""Reading a MySQL/MariaDB database's schema: tables, keys, views, triggers, routines, events.

Tables keep the server's own ``SHOW CREATE TABLE`` text for a same-engine restore, less two
things that are set after the rows: foreign keys (separate ``foreign_key`` objects, so that load
order never matters) and the ``AUTO_INCREMENT=`` counter (``options["auto_increment"]``).
Definers are removed from views, triggers, routines and events: the restoring user becomes
their definer (the original is kept in ``options["definer"]``).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable

import attrs

from unibackup.models import ColumnSchema, DatabaseSchema, SchemaObject, TableSchema

from .connection import pymysql_module, quote
from .types import column_default, column_options, is_generated, logical_type

log = logging.getLogger(__name__)

TRANSACTIONAL_ENGINES = frozenset({"innodb", "xtradb", "rocksdb", "tokudb", "ndbcluster", "ndb"})
_IDENT = r"(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|[^\s@`']+)"
_DEFINER = re.compile(rf"\bDEFINER\s*=\s*(?:CURRENT_USER(?:\(\))?|{_IDENT}@{_IDENT})\s*", re.IGNORECASE)
_AUTO_INCREMENT = re.compile(r"\s+AUTO_INCREMENT=(\d+)")
_FOREIGN_KEY = re.compile(r"^\s*CONSTRAINT\s+`(?:[^`]|``)*`\s+FOREIGN\s+KEY\b", re.IGNORECASE)
_JSON_CHECK = re.compile(r"\bCHECK\s*\(\s*json_valid\(\s*`((?:[^`]|``)*)`\s*\)\s*\)", re.IGNORECASE)

Query = Callable[..., list[dict[str, Any]]]


@attrs.frozen
class ServerInfo:
    """What the server is and how it was set up."""

    version: str
    mariadb: bool
    sql_mode: str = ""
    lower_case_table_names: int = 0

    @property
    def flavor(self) -> str:
        return "mariadb" if self.mariadb else "mysql"


def strip_definer(sql: str) -> tuple[str, str | None]:
    """``CREATE DEFINER=`u`@`h` VIEW ...`` without its definer; and the definer removed."""
    match = _DEFINER.search(sql)
    if match is None:
        return sql, None
    definer = match.group(0).split("=", 1)[1].strip()
    return sql[: match.start()] + sql[match.end():], definer


def split_create_table(sql: str) -> tuple[str, list[str], list[str]] | None:
    """``SHOW CREATE TABLE`` text as (first line, one definition per item, the closing lines).

    None when the text is not laid out one definition per line (then it is left as it is).
    """
    lines = sql.split("\n")
    close = next((i for i in range(1, len(lines)) if lines[i].startswith(")")), None)
    if close is None or close < 2:
        return None
    body = lines[1:close]
    if not all(line.startswith("  ") for line in body):
        return None
    definitions = [line[:-1] if index < len(body) - 1 else line for index, line in enumerate(body)]
    if any(not line.endswith(",") for line in body[:-1]):
        return None
    return lines[0], definitions, lines[close:]


def join_create_table(head: str, definitions: list[str], tail: list[str]) -> str:
    return "\n".join([head, ",\n".join(definitions), *tail])


def view_order(views: dict[str, str]) -> list[str]:
    """View names ordered so that each comes after the views its definition names."""
    names = sorted(views)
    depends = {name: [other for other in names if other != name and quote(other) in views[name]] for name in names}
    ordered: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:  # a cycle can only come from a false match: keep going
            return
        state[name] = 1
        for other in depends[name]:
            visit(other)
        state[name] = 2
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered


class Catalog:
    """Reads the schema of one database through ``query(sql, args) -> rows as dicts``."""

    def __init__(self, query: Query, database: str, server: ServerInfo):
        self.query = query
        self.database = database
        self.server = server
        self.skipped: list[str] = []

    def _try(self, what: str, sql: str, args: tuple[Any, ...] = (), *, record: bool = True) -> list[dict[str, Any]] | None:
        """A query that may fail for want of a privilege or on an older server: None then."""
        try:
            return self.query(sql, args)
        except pymysql_module().err.MySQLError as error:
            code = error.args[0] if error.args else 0
            if code in (1044, 1142, 1227, 1370, 1064, 1109, 1146, 1356):
                reason = " ".join(str(error.args[1] if len(error.args) > 1 else error).split())
                if record:
                    log.warning("cannot read %s: %s", what, reason)
                    self.skipped.append(f"{what} ({reason})")
                return None
            raise

    def describe(self) -> DatabaseSchema:
        db = self.database
        tables = self.query(
            "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_ROWS, DATA_LENGTH, TABLE_COLLATION, CREATE_OPTIONS, TABLE_COMMENT"
            " FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME",
            (db,),
        )
        columns: dict[str, list[dict[str, Any]]] = {}
        for row in self.query("SELECT * FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION", (db,)):
            columns.setdefault(row["TABLE_NAME"], []).append(row)
        statistics: dict[str, list[dict[str, Any]]] = {}
        for row in self.query("SELECT * FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX", (db,)):
            statistics.setdefault(row["TABLE_NAME"], []).append(row)
        foreign = self._foreign_keys()
        checks = self._checks()

        table_schemas: list[TableSchema] = []
        objects: list[SchemaObject] = []
        views: dict[str, str] = {}
        view_rows: dict[str, dict[str, Any]] = {}
        for table in tables:
            name = table["TABLE_NAME"]
            kind = str(table["TABLE_TYPE"]).upper()
            if kind == "VIEW":
                view = self._view(name)
                if view is not None:
                    views[name], view_rows[name] = view
                continue
            if kind == "SEQUENCE":
                objects.append(self._sequence(name))
                continue
            schema, table_objects = self._table(table, columns.get(name, []), statistics.get(name, []), foreign.get(name, []), checks.get(name, []))
            table_schemas.append(schema)
            objects.extend(table_objects)
        objects.extend(self._routines())
        for name in view_order(views):
            sql = views[name]
            objects.append(SchemaObject(
                kind="view", name=name, sql=sql, options=view_rows[name] | {"depends_on": [v for v in views if v != name and quote(v) in sql]},
            ))
        objects.extend(self._triggers())
        objects.extend(self._events())
        schemata = self.query("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (db,))
        settings: dict[str, Any] = {
            "flavor": self.server.flavor,
            "time_zone": "+00:00",
            "sql_mode": self.server.sql_mode,
            "lower_case_table_names": self.server.lower_case_table_names,
        }
        if schemata:
            settings["character_set"] = schemata[0]["DEFAULT_CHARACTER_SET_NAME"]
            settings["collation"] = schemata[0]["DEFAULT_COLLATION_NAME"]
        hidden = self.hidden_tables()
        if hidden:
            self.skipped.append(hidden)
        if self.skipped:
            settings["not_backed_up"] = list(self.skipped)
        return DatabaseSchema(engine="mysql", tables=tuple(table_schemas), objects=tuple(objects), settings=settings)

    def hidden_tables(self) -> str | None:
        """Why some tables may be missing, when the user has no SELECT on the whole database.

        MySQL shows a user only the tables it has a privilege on, and answers a SELECT of any
        other the same whether it exists or not: such tables cannot be named, only announced.
        """
        rows = self._try(
            "privileges",
            "SELECT (SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE = 'SELECT')"
            " + (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE PRIVILEGE_TYPE = 'SELECT' AND %s LIKE TABLE_SCHEMA) AS n",
            (self.database,), record=False,
        )
        if not rows or int(rows[0]["N"] or 0):
            return None
        return (
            f"tables the backup user may not see (it has no SELECT privilege on the database {self.database!r} as a whole,"
            " and MySQL hides the tables it has no privilege on)"
        )

    # -- tables ------------------------------------------------------------------------------
    def _table(
        self,
        table: dict[str, Any],
        columns: list[dict[str, Any]],
        statistics: list[dict[str, Any]],
        foreign: list[dict[str, Any]],
        checks: list[dict[str, Any]],
    ) -> tuple[TableSchema, list[SchemaObject]]:
        name = table["TABLE_NAME"]
        create_sql = self.query(f"SHOW CREATE TABLE {quote(name)}")[0]
        sql = create_sql.get("CREATE TABLE") or list(create_sql.values())[1]
        json_columns = {match.group(1).replace("``", "`") for match in _JSON_CHECK.finditer(sql)}
        primary = {row["COLUMN_NAME"]: int(row["SEQ_IN_INDEX"]) for row in statistics if row["INDEX_NAME"] == "PRIMARY"}
        stored: list[ColumnSchema] = []
        generated: list[ColumnSchema] = []
        for column in columns:
            data_type = str(column["DATA_TYPE"]).lower()
            is_json = data_type == "json" or column["COLUMN_NAME"] in json_columns
            options = column_options(column, is_json)
            options["data_type"] = data_type
            schema = ColumnSchema(
                name=column["COLUMN_NAME"],
                declared_type="json" if is_json else str(column["COLUMN_TYPE"]),
                logical_type=logical_type(data_type, is_json),
                nullable=str(column["IS_NULLABLE"]).upper() == "YES",
                default=column_default(column, self.server.mariadb),
                primary_key=primary.get(column["COLUMN_NAME"], 0),
                options=options,
            )
            if is_generated(column):
                expression = column.get("GENERATION_EXPRESSION")
                generated.append(attrs.evolve(schema, options=options | {"expression": expression, "stored": "STORED" in str(column.get("EXTRA")).upper() or "PERSISTENT" in str(column.get("EXTRA")).upper()}))
            else:
                stored.append(schema)

        options: dict[str, Any] = {"engine": table["ENGINE"]}
        objects: list[SchemaObject] = []
        parts = split_create_table(sql)
        if parts is not None:
            head, definitions, tail = parts
            kept = [line for line in definitions if not _FOREIGN_KEY.match(line)]
            clauses = {self._constraint_name(line): line.strip() for line in definitions if _FOREIGN_KEY.match(line)}
            auto = _AUTO_INCREMENT.search(tail[0])
            sql = join_create_table(head, kept, [_AUTO_INCREMENT.sub("", tail[0], count=1), *tail[1:]])
        else:
            clauses = {}
            auto = next((_AUTO_INCREMENT.search(line) for line in sql.split("\n") if line.startswith(")")), None)
            log.warning("the definition of table %r is not laid out as expected; its foreign keys stay inside it", name)
        if auto is not None:
            options["auto_increment"] = int(auto.group(1))
        if "partitioned" in str(table.get("CREATE_OPTIONS") or "").lower():
            options["partitioned"] = True
        if str(table["TABLE_TYPE"]).upper() == "SYSTEM VERSIONED":
            options["system_versioned"] = "only the current rows are backed up"
        if table["ENGINE"] and str(table["ENGINE"]).lower() not in TRANSACTIONAL_ENGINES:
            options["not_in_snapshot"] = f"the {table['ENGINE']} engine has no transactions; the consistent snapshot does not cover it"
        objects.extend(self._indexes(name, statistics))
        objects.extend(self._foreign_key_objects(name, foreign, clauses, inline=parts is None))
        for check in checks:
            clause = str(check["CHECK_CLAUSE"])
            if check.get("LEVEL", "Table") == "Column" and _JSON_CHECK.search(f"CHECK ({clause})"):
                continue
            objects.append(SchemaObject(
                kind="check", name=check["CONSTRAINT_NAME"], table=name,
                sql=f"ALTER TABLE {quote(name)} ADD CONSTRAINT {quote(check['CONSTRAINT_NAME'])} CHECK ({clause})",
                options={"inline": True, "expression": clause},
            ))
        schema = TableSchema(
            name=name,
            columns=tuple(stored),
            create_sql=sql,
            row_estimate=int(table["TABLE_ROWS"]) if table["TABLE_ROWS"] is not None else None,
            generated_columns=tuple(generated),
            options=options,
        )
        return schema, objects

    @staticmethod
    def _constraint_name(line: str) -> str:
        match = re.match(r"\s*CONSTRAINT\s+`((?:[^`]|``)*)`", line)
        return match.group(1).replace("``", "`") if match else ""

    def _indexes(self, table: str, statistics: list[dict[str, Any]]) -> list[SchemaObject]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for row in statistics:
            if row["INDEX_NAME"] != "PRIMARY":
                grouped.setdefault(row["INDEX_NAME"], []).append(row)
        objects = []
        for index_name, rows in grouped.items():
            unique = not int(rows[0]["NON_UNIQUE"])
            index_type = str(rows[0].get("INDEX_TYPE") or "BTREE").upper()
            parts = []
            columns = []
            for row in rows:
                column = row.get("COLUMN_NAME")
                if column is None:  # a functional key part (MySQL 8)
                    parts.append(f"({row.get('EXPRESSION')})")
                    columns.append(None)
                    continue
                columns.append(column)
                part = quote(column)
                if row.get("SUB_PART") is not None:
                    part += f"({int(row['SUB_PART'])})"
                if str(row.get("COLLATION") or "A") == "D":
                    part += " DESC"
                parts.append(part)
            prefix = "UNIQUE " if unique else ("FULLTEXT " if index_type == "FULLTEXT" else ("SPATIAL " if index_type == "SPATIAL" else ""))
            objects.append(SchemaObject(
                kind="index", name=index_name, table=table,
                sql=f"CREATE {prefix}INDEX {quote(index_name)} ON {quote(table)} ({', '.join(parts)})",
                options={"inline": True, "unique": unique, "columns": columns, "index_type": index_type},
            ))
        return objects

    def _foreign_keys(self) -> dict[str, list[dict[str, Any]]]:
        rows = self.query(
            "SELECT k.CONSTRAINT_NAME, k.TABLE_NAME, k.COLUMN_NAME, k.ORDINAL_POSITION, k.REFERENCED_TABLE_SCHEMA,"
            " k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE"
            " FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r"
            " ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME"
            " WHERE k.TABLE_SCHEMA = %s AND k.REFERENCED_TABLE_NAME IS NOT NULL"
            " ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
            (self.database,),
        )
        grouped: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            grouped.setdefault(row["TABLE_NAME"], []).append(row)
        return grouped

    def _foreign_key_objects(self, table: str, rows: list[dict[str, Any]], clauses: dict[str, str], inline: bool) -> list[SchemaObject]:
        by_name: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_name.setdefault(row["CONSTRAINT_NAME"], []).append(row)
        objects = []
        for name, parts in by_name.items():
            first = parts[0]
            other_schema = first["REFERENCED_TABLE_SCHEMA"] if first["REFERENCED_TABLE_SCHEMA"] != self.database else None
            clause = clauses.get(name)
            if clause is None:
                target = (quote(other_schema) + "." if other_schema else "") + quote(first["REFERENCED_TABLE_NAME"])
                clause = (
                    f"CONSTRAINT {quote(name)} FOREIGN KEY ({', '.join(quote(p['COLUMN_NAME']) for p in parts)}) REFERENCES {target} "
                    f"({', '.join(quote(p['REFERENCED_COLUMN_NAME']) for p in parts)}) ON DELETE {first['DELETE_RULE']} ON UPDATE {first['UPDATE_RULE']}"
                )
            options: dict[str, Any] = {
                "columns": [p["COLUMN_NAME"] for p in parts],
                "referenced_table": first["REFERENCED_TABLE_NAME"],
                "referenced_columns": [p["REFERENCED_COLUMN_NAME"] for p in parts],
                "on_delete": first["DELETE_RULE"],
                "on_update": first["UPDATE_RULE"],
                "clause": clause,
            }
            if other_schema:
                options["referenced_schema"] = other_schema
            if inline:
                options["inline"] = True
            objects.append(SchemaObject(kind="foreign_key", name=name, table=table, sql=f"ALTER TABLE {quote(table)} ADD {clause}", options=options))
        return objects

    def _checks(self) -> dict[str, list[dict[str, Any]]]:
        rows = self._try(
            "check constraints",
            "SELECT * FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s ORDER BY CONSTRAINT_NAME",
            (self.database,),
            record=False,  # they are part of the table definitions anyway
        )
        if not rows:
            return {}
        if "TABLE_NAME" not in rows[0]:
            return self._mysql_checks()
        grouped: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            grouped.setdefault(row["TABLE_NAME"], []).append(row)
        return grouped

    def _mysql_checks(self) -> dict[str, list[dict[str, Any]]]:
        """MySQL 8 keeps the table of a check constraint in TABLE_CONSTRAINTS."""
        rows = self.query(
            "SELECT t.TABLE_NAME, c.CONSTRAINT_NAME, c.CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS c"
            " JOIN information_schema.TABLE_CONSTRAINTS t ON t.CONSTRAINT_SCHEMA = c.CONSTRAINT_SCHEMA AND t.CONSTRAINT_NAME = c.CONSTRAINT_NAME"
            " WHERE c.CONSTRAINT_SCHEMA = %s AND t.CONSTRAINT_TYPE = 'CHECK' ORDER BY c.CONSTRAINT_NAME",
            (self.database,),
        )
        grouped: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            grouped.setdefault(row["TABLE_NAME"], []).append(row)
        return grouped

    # -- other objects -----------------------------------------------------------------------
    def _view(self, name: str) -> tuple[str, dict[str, Any]] | None:
        rows = self._try(f"view {name}", f"SHOW CREATE VIEW {quote(name)}")
        if not rows:
            return None
        row = rows[0]
        sql, definer = strip_definer(str(row.get("CREATE VIEW") or list(row.values())[1]))
        options = {"definer": definer, "character_set_client": row.get("CHARACTER_SET_CLIENT"), "collation_connection": row.get("COLLATION_CONNECTION")}
        return sql, options

    def _sequence(self, name: str) -> SchemaObject:
        row = self.query(f"SHOW CREATE SEQUENCE {quote(name)}")[0]
        sql = str(row.get("CREATE TABLE") or list(row.values())[1])
        state = self.query(f"SELECT next_not_cached_value FROM {quote(name)}")
        options = {"next_value": int(state[0]["NEXT_NOT_CACHED_VALUE"])} if state else {}
        return SchemaObject(kind="sequence", name=name, sql=sql, phase="pre-data", options=options)

    def _routines(self) -> list[SchemaObject]:
        rows = self._try(
            "routines",
            "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
            (self.database,),
        ) or []
        objects = []
        for routine in rows:
            kind = str(routine["ROUTINE_TYPE"]).upper()
            name = routine["ROUTINE_NAME"]
            if kind not in ("PROCEDURE", "FUNCTION"):
                objects.append(SchemaObject(kind=kind.lower(), name=name, sql=None, phase="pre-data", options={"skipped": f"{kind.lower()} definitions are not backed up"}))
                continue
            shown = self._try(f"{kind.lower()} {name}", f"SHOW CREATE {kind} {quote(name)}")
            text = shown[0].get(f"CREATE {kind}") if shown else None
            if not text:
                reason = "no privilege to read its definition"
                if shown:
                    self.skipped.append(f"{kind.lower()} {name} ({reason})")
                objects.append(SchemaObject(kind=kind.lower(), name=name, sql=None, phase="pre-data", options={"skipped": reason}))
                continue
            sql, definer = strip_definer(str(text))
            objects.append(SchemaObject(kind=kind.lower(), name=name, sql=sql, phase="pre-data", options=_session_options(shown[0]) | {"definer": definer}))
        return objects

    def _triggers(self) -> list[SchemaObject]:
        rows = self._try(
            "triggers",
            "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION FROM information_schema.TRIGGERS"
            " WHERE TRIGGER_SCHEMA = %s ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER",
            (self.database,),
        ) or []
        objects = []
        for trigger in rows:
            name = trigger["TRIGGER_NAME"]
            shown = self._try(f"trigger {name}", f"SHOW CREATE TRIGGER {quote(name)}")
            if not shown:
                objects.append(SchemaObject(kind="trigger", name=name, sql=None, table=trigger["EVENT_OBJECT_TABLE"], options={"skipped": "no privilege to read its definition"}))
                continue
            sql, definer = strip_definer(str(shown[0].get("SQL ORIGINAL STATEMENT")))
            options = _session_options(shown[0]) | {"definer": definer, "timing": trigger["ACTION_TIMING"], "event": trigger["EVENT_MANIPULATION"]}
            objects.append(SchemaObject(kind="trigger", name=name, sql=sql, table=trigger["EVENT_OBJECT_TABLE"], options=options))
        return objects

    def _events(self) -> list[SchemaObject]:
        rows = self._try("events", "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s ORDER BY EVENT_NAME", (self.database,)) or []
        objects = []
        for event in rows:
            name = event["EVENT_NAME"]
            shown = self._try(f"event {name}", f"SHOW CREATE EVENT {quote(name)}")
            if not shown or not shown[0].get("CREATE EVENT"):
                objects.append(SchemaObject(kind="event", name=name, sql=None, options={"skipped": "no privilege to read its definition"}))
                continue
            sql, definer = strip_definer(str(shown[0]["CREATE EVENT"]))
            options = _session_options(shown[0]) | {"definer": definer, "time_zone": shown[0].get("TIME_ZONE")}
            objects.append(SchemaObject(kind="event", name=name, sql=sql, options=options))
        return objects


def _session_options(row: dict[str, Any]) -> dict[str, Any]:
    """The session settings an object was created under, as ``SHOW CREATE ...`` reports them."""
    return {
        "sql_mode": row.get("SQL_MODE"),
        "character_set_client": row.get("CHARACTER_SET_CLIENT"),
        "collation_connection": row.get("COLLATION_CONNECTION"),
    }
