"""Checking the SQL a backup carries before a SQLite restore runs it: a backup file is untrusted.

A same-engine restore recreates tables, indexes, views and triggers from the SQL text in the
backup's header. That text runs only when it is exactly one statement that creates the very
object the header names, in the main schema:

- ``CREATE [VIRTUAL] TABLE [IF NOT EXISTS] [main.]name (`` ... or ``USING`` ...
- ``CREATE [UNIQUE] INDEX [IF NOT EXISTS] [main.]name ON`` ...
- ``CREATE VIEW [IF NOT EXISTS] [main.]name`` ``AS`` or ``(`` ...
- ``CREATE TRIGGER [IF NOT EXISTS] [main.]name`` ``BEFORE``/``AFTER``/``INSTEAD``/an event ...

Anything else (another kind of statement, a second statement, a TEMP object, ``CREATE TABLE ...
AS SELECT``, another name, another schema) is refused as a damaged backup before a row is
written. Names are compared as SQLite compares them (ASCII letters without case).

The other values that end up in SQL text are checked too: a hidden row-id column must be named as
a row-id alias (it is written unquoted), and the settings turned into PRAGMAs must be integers.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any, Iterable

from unibackup.errors import CorruptBackupError
from unibackup.models import SchemaObject, TableSchema

ROWID_ALIASES = ("rowid", "_rowid_", "oid")
INTEGER_SETTINGS = ("page_size", "auto_vacuum", "user_version", "application_id")

_BARE_WORD = re.compile(r"[A-Za-z0-9_$\u0080-\U0010ffff]+")
_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

#: After CREATE: the keyword sequences that make each kind of object.
_HEADS: dict[str, tuple[tuple[str, ...], ...]] = {
    "table": (("TABLE",), ("VIRTUAL", "TABLE")),
    "index": (("INDEX",), ("UNIQUE", "INDEX")),
    "view": (("VIEW",),),
    "trigger": (("TRIGGER",),),
}
_TRIGGER_STARTS = ("BEFORE", "AFTER", "INSTEAD", "INSERT", "UPDATE", "DELETE")


def same_name(a: str, b: str) -> bool:
    """SQLite's identifier comparison: case-insensitive for ASCII letters only."""
    return a.translate(_ASCII_FOLD) == b.translate(_ASCII_FOLD)


def _refuse(what: str, reason: str) -> CorruptBackupError:
    return CorruptBackupError(
        f"the backup's SQL for {what} {reason}; it was not run and nothing was written",
        hint="the backup is damaged or hostile",
    )


def _tokens(sql: str, limit: int) -> list[tuple[str, str]]:
    """The first ``limit`` tokens as (kind, text): ``word``, ``quoted`` (unquoted text) or ``punct``.

    Spaces and comments are skipped; a quote, bracket or comment left open raises ``ValueError``.
    """
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(sql)
    while i < n and len(tokens) < limit:
        char = sql[i]
        if char.isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise ValueError("an unterminated comment")
            i = end + 2
        elif char in "\"'`":
            parts = []
            j = i + 1
            while True:
                k = sql.find(char, j)
                if k < 0:
                    raise ValueError("an unterminated quote")
                if sql[k + 1 : k + 2] == char:  # a doubled quote stands for itself
                    parts.append(sql[j : k + 1])
                    j = k + 2
                    continue
                parts.append(sql[j:k])
                i = k + 1
                break
            tokens.append(("quoted", "".join(parts)))
        elif char == "[":
            end = sql.find("]", i + 1)
            if end < 0:
                raise ValueError("an unterminated bracket")
            tokens.append(("quoted", sql[i + 1 : end]))
            i = end + 1
        else:
            match = _BARE_WORD.match(sql, i)
            if match:
                tokens.append(("word", match.group()))
                i = match.end()
            else:
                tokens.append(("punct", char))
                i += 1
    return tokens


def _is_word(token: tuple[str, str] | None, *words: str) -> bool:
    return token is not None and token[0] == "word" and token[1].upper() in words


def check_single_statement(sql: str, what: str) -> None:
    """``sql`` holds exactly one complete statement (a trailing semicolon and spaces allowed)."""
    for match in re.finditer(";", sql):
        if sqlite3.complete_statement(sql[: match.end()]):
            if sql[match.end() :].strip():
                raise _refuse(what, "holds more than one statement")
            return
    if not sqlite3.complete_statement(sql + "\n;"):
        raise _refuse(what, "is not a complete statement")


def check_create_sql(sql: Any, kind: str, name: str, what: str) -> None:
    """Raise :class:`CorruptBackupError` unless ``sql`` creates exactly the ``kind`` ``name``."""
    if not isinstance(sql, str) or not sql.strip():
        raise _refuse(what, "is missing")
    check_single_statement(sql, what)
    try:
        tokens = _tokens(sql, 12)
    except ValueError as error:
        raise _refuse(what, f"has {error}") from None
    tokens.append(("end", ""))
    position = 0

    def take() -> tuple[str, str]:
        nonlocal position
        token = tokens[min(position, len(tokens) - 1)]
        position += 1
        return token

    def peek(offset: int = 0) -> tuple[str, str]:
        return tokens[min(position + offset, len(tokens) - 1)]

    if not _is_word(take(), "CREATE"):
        raise _refuse(what, "is not a CREATE statement")
    for head in _HEADS[kind]:
        if all(_is_word(peek(k), word) for k, word in enumerate(head)):
            position += len(head)
            virtual = head[0] == "VIRTUAL"
            break
    else:
        raise _refuse(what, f"does not create a {kind} (a TEMP {kind}, or another kind of statement)")
    if _is_word(peek(), "IF") and _is_word(peek(1), "NOT") and _is_word(peek(2), "EXISTS"):
        position += 3
    found = take()
    if peek() == ("punct", "."):
        if found[0] not in ("word", "quoted") or not same_name(found[1], "main"):
            raise _refuse(what, f"creates the {kind} in the schema {found[1]!r}, not in the main database")
        position += 1
        found = take()
    if found[0] not in ("word", "quoted") or not same_name(found[1], name):
        raise _refuse(what, f"creates {found[1]!r}, not the {kind} {name!r} it belongs to")
    follow = peek()
    if kind == "table":
        allowed = _is_word(follow, "USING") if virtual else follow == ("punct", "(")
    elif kind == "index":
        allowed = _is_word(follow, "ON")
    elif kind == "view":
        allowed = _is_word(follow, "AS") or follow == ("punct", "(")
    else:
        allowed = _is_word(follow, *_TRIGGER_STARTS)
    if not allowed:
        raise _refuse(what, f"does not define the {kind} the usual way ({follow[1] or 'nothing'!r} follows its name)")


def check_columns(table: TableSchema) -> None:
    """A hidden row-id column is written unquoted, so its name must be a row-id alias."""
    for column in table.columns:
        if column.hidden == "rowid" and not any(same_name(column.name, alias) for alias in ROWID_ALIASES):
            raise CorruptBackupError(
                f"table {table.qualified_name!r} has a hidden row-id column named {column.name!r}, which is no row-id alias",
                hint="the backup is damaged or hostile",
            )


def check_settings(settings: dict[str, Any]) -> None:
    """The database settings that become PRAGMAs are integers (or absent)."""
    for key in INTEGER_SETTINGS:
        value = settings.get(key)
        if value is not None and type(value) is not int:
            raise CorruptBackupError(f"the backup's setting {key!r} is {value!r}, not an integer", hint="the backup is damaged or hostile")
    statistics = settings.get("sqlite_stat1")
    if statistics is not None:
        # rows of sqlite_stat1: [table, index or null, stat]
        if type(statistics) is not list or not all(
            type(row) is list and len(row) == 3 and type(row[0]) is str and (row[1] is None or type(row[1]) is str) and type(row[2]) is str
            for row in statistics
        ):
            raise CorruptBackupError("the backup's setting 'sqlite_stat1' is not a list of [table, index, stat] rows", hint="the backup is damaged or hostile")


def check_schema(tables: Iterable[TableSchema], objects: Iterable[SchemaObject], settings: dict[str, Any]) -> None:
    """Every check above, for a same-engine restore, before anything is created."""
    check_settings(settings)
    for table in tables:
        check_columns(table)
        check_create_sql(table.create_sql, "table", table.name, f"table {table.name!r}")
    for obj in objects:
        if obj.sql is None or obj.kind not in ("index", "view", "trigger"):
            continue  # the restore runs the SQL of these kinds only
        check_create_sql(obj.sql, obj.kind, obj.name, f"{obj.kind} {obj.name!r}")
