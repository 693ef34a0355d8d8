"""Constraints of another engine's tables, read for a restore into MySQL/MariaDB.

A table's foreign keys, UNIQUE constraints and CHECKs come from its portable options when the
source wrote them (``options["foreign_keys"]``, ``options["unique"]``, ``options["checks"]``,
see ``docs/format.md``), else from its ``CREATE TABLE`` text (backups made before the options
existed), plus the source's ``foreign_key``/``constraint``/``index`` objects.

A CHECK expression is only carried over when it is made of what reads the same in both
engines (columns, literals, comparisons, ``AND``/``OR``/``NOT``, ``IS [NOT] NULL``,
``BETWEEN``, ``IN``, ``+ - *``), and does not compare text with numbers; anything else is
reported as skipped with the reason.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, NamedTuple

import attrs

from unibackup.models import ColumnSchema, SchemaObject, TableSchema

from .connection import quote

#: The object kinds a foreign key may have (the PostgreSQL source used "foreign key" once).
FOREIGN_KEY_KINDS = frozenset({"foreign_key", "foreign key"})
ACTIONS = ("CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION")

_TOKEN = re.compile(
    r"""(?P<space>\s+|--[^\n]*|/\*.*?(?:\*/|\Z))
    |(?P<blob>[xX]'[^']*')
    |(?P<string>'(?:[^']|'')*')
    |(?P<ident>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])
    |(?P<number>0[xX][0-9A-Fa-f]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<word>[^\W\d][\w$]*)
    |(?P<op><=|>=|==|!=|<>|<<|>>|\|\||::|.)""",
    re.VERBOSE | re.DOTALL,
)


class Token(NamedTuple):
    kind: str  # blob, string, ident, number, word, op
    text: str
    start: int
    end: int

    @property
    def name(self) -> str:
        """An identifier or word without its quotes."""
        if self.kind == "ident":
            inner = self.text[1:-1]
            return inner if self.text[0] == "[" else inner.replace(self.text[0] * 2, self.text[0])
        if self.kind == "string":
            return self.text[1:-1].replace("''", "'")
        return self.text

    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


def tokenize(sql: str) -> list[Token]:
    tokens = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup or "op"
        if kind != "space":
            tokens.append(Token(kind, match.group(), match.start(), match.end()))
    return tokens


def _group(tokens: list[Token], start: int) -> int:
    """The index just after the parenthesised group that opens at ``tokens[start]``."""
    depth = 0
    for index in range(start, len(tokens)):
        if tokens[index].text == "(":
            depth += 1
        elif tokens[index].text == ")":
            depth -= 1
            if depth == 0:
                return index + 1
    return len(tokens)


def _split(tokens: list[Token]) -> list[list[Token]]:
    """Items separated by commas at depth 0."""
    items: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        if token.text == "," and depth == 0:
            items.append([])
        else:
            items[-1].append(token)
    return [item for item in items if item]


def _names(tokens: list[Token]) -> list[str] | None:
    """``a, "b" COLLATE x DESC`` as plain names; None when an item is an expression."""
    names = []
    for item in _split(tokens):
        if item[0].kind not in ("ident", "word", "string"):
            return None
        rest = [t.upper() for t in item[1:]]
        while rest and rest[-1] in ("ASC", "DESC"):
            rest.pop()
        if len(rest) == 2 and rest[0] == "COLLATE":
            rest = []
        if rest:
            return None
        names.append(item[0].name)
    return names


def _foreign_key(tokens: list[Token], position: int, columns: list[str], sql: str) -> tuple[dict[str, Any], int]:
    """``REFERENCES t [(cols)] [ON DELETE ...] ...`` starting at ``tokens[position]`` (the word REFERENCES)."""
    position += 1
    table = tokens[position].name if position < len(tokens) else ""
    position += 1
    if position + 1 < len(tokens) and tokens[position].text == "." and tokens[position + 1].kind in ("ident", "word"):
        table = tokens[position + 1].name  # schema.table: the table
        position += 2
    referenced: list[str | None] = [None] * len(columns)
    if position < len(tokens) and tokens[position].text == "(":
        end = _group(tokens, position)
        referenced = list(_names(tokens[position + 1 : end - 1]) or [])
        position = end
    key: dict[str, Any] = {"columns": columns, "referenced_table": table, "referenced_columns": referenced, "on_delete": None, "on_update": None}
    while position < len(tokens):
        word = tokens[position].upper()
        if word == "ON" and position + 2 < len(tokens):
            kind = tokens[position + 1].upper()
            action = tokens[position + 2].upper()
            position += 3
            if action in ("SET", "NO") and position < len(tokens):
                action = f"{action} {tokens[position].upper()}"
                position += 1
            if kind in ("DELETE", "UPDATE"):
                key[f"on_{kind.lower()}"] = action
        elif word == "MATCH":
            position += 2
        elif word in ("NOT", "DEFERRABLE", "INITIALLY", "DEFERRED", "IMMEDIATE"):
            position += 1
        else:
            break
    return key, position


def parse_create_table(sql: str) -> dict[str, Any]:
    """Foreign keys, UNIQUE constraints and CHECK expressions written in a ``CREATE TABLE``
    (SQLite's or PostgreSQL's syntax), in the structure of the portable table options."""
    tokens = tokenize(sql or "")
    found: dict[str, list[Any]] = {"foreign_keys": [], "unique": [], "checks": []}
    opening = next((index for index, token in enumerate(tokens) if token.text == "("), None)
    head = [t.upper() for t in tokens[:opening]] if opening is not None else []
    if "TABLE" not in head or "AS" in head or "VIRTUAL" in head:
        return found
    body = tokens[opening + 1 : _group(tokens, opening) - 1]
    for item in _split(body):
        first = item[0].upper()
        if first in ("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "EXCLUDE"):
            _table_constraint(item, sql, found)
        else:
            _column_constraints(item, sql, found)
    return found


def _check_text(item: list[Token], position: int, sql: str) -> tuple[str | None, int]:
    if position < len(item) and item[position].text == "(":
        end = _group(item, position)
        if end - 1 < len(item):
            return sql[item[position].end : item[end - 1].start].strip(), end
    return None, position + 1


def _table_constraint(item: list[Token], sql: str, found: dict[str, list[Any]]) -> None:
    position = 2 if item[0].upper() == "CONSTRAINT" else 0
    if position >= len(item):
        return
    word = item[position].upper()
    if word == "CHECK":
        text, _ = _check_text(item, position + 1, sql)
        if text:
            found["checks"].append(text)
    elif word in ("UNIQUE", "FOREIGN"):
        name = item[1].name if position == 2 else None
        start = position + (2 if word == "FOREIGN" else 1)
        if start < len(item) and item[start].upper() == "KEY":  # UNIQUE KEY (MySQL's spelling)
            start += 1
        if start >= len(item) or item[start].text != "(":
            return
        end = _group(item, start)
        columns = _names(item[start + 1 : end - 1])
        if not columns:
            return
        if word == "UNIQUE":
            found["unique"].append(columns)
        elif end < len(item) and item[end].upper() == "REFERENCES":
            key, _ = _foreign_key(item, end, columns, sql)
            found["foreign_keys"].append({"name": name, **key})


def _column_constraints(item: list[Token], sql: str, found: dict[str, list[Any]]) -> None:
    column = item[0].name
    position = 1
    while position < len(item):
        token = item[position]
        word = token.upper()
        if token.text == "(":
            position = _group(item, position)  # a type's size or a DEFAULT (expression)
        elif word == "UNIQUE":
            found["unique"].append([column])
            position += 1
        elif word == "CHECK":
            text, position = _check_text(item, position + 1, sql)
            if text:
                found["checks"].append(text)
        elif word == "REFERENCES":
            key, position = _foreign_key(item, position, [column], sql)
            found["foreign_keys"].append(key)
        elif word in ("DEFAULT", "COLLATE") and position + 1 < len(item) and item[position + 1].text != "(":
            position += 2  # the literal or name that follows cannot be a keyword of ours
        else:
            position += 1


# -- what a table has, from its options, its DDL and the objects -----------------------------------


@attrs.define
class ForeignKey:
    columns: list[str]
    referenced_table: str
    referenced_columns: list[str | None]
    on_delete: str | None = None
    on_update: str | None = None
    name: str | None = None
    referenced_schema: str | None = None

    def label(self, table: str) -> str:
        named = f" {self.name}" if self.name else ""
        return f"foreign key{named} of {table} ({', '.join(self.columns)}) -> {self.referenced_table}"


@attrs.define
class Constraints:
    """A table's keys as a restore into MySQL sees them (column names as the table spells them)."""

    primary: list[str]
    unique: list[list[str]]  # UNIQUE constraints (not indexes)
    foreign_keys: list[ForeignKey]
    checks: list[str]
    indexes: list[tuple[SchemaObject, list[str], bool]]  # plain column indexes: (object, columns, unique)
    other: list[SchemaObject]  # objects of the table that are none of these (skipped, with a reason)

    def full_keys(self) -> list[tuple[str, list[str]]]:
        """Every key MySQL must index whole (no prefix), with what it is: the primary key, UNIQUE
        constraints and indexes, and the columns of each foreign key (InnoDB indexes them)."""
        keys = [("primary key", self.primary)] if self.primary else []
        keys += [("unique key", columns) for columns in self.unique]
        keys += [("unique index", columns) for _, columns, unique in self.indexes if unique]
        keys += [("foreign key", key.columns) for key in self.foreign_keys]
        return keys


def by_table(objects: Iterable[SchemaObject]) -> dict[str, list[SchemaObject]]:
    """The objects that may belong to a table, by the table's name (see :func:`belongs_to`)."""
    grouped: dict[str, list[SchemaObject]] = {}
    for obj in objects:
        if obj.table and obj.kind not in _NOT_PARTS:
            grouped.setdefault(unquote(obj.table), []).append(obj)
    return grouped


_NOT_PARTS = frozenset({"view", "materialized view", "materialized_view"})


def belongs_to(obj: SchemaObject, table: TableSchema) -> bool:
    """Whether ``obj`` is a part of ``table`` (a view never is, whatever table it names)."""
    if not obj.table or obj.kind in _NOT_PARTS or unquote(obj.table) != table.name:
        return False
    return obj.namespace is None or table.namespace is None or obj.namespace == table.namespace


_NAME = re.compile(r'"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`|[^\s."\[`]+')


def unquote(name: str) -> str:
    """An identifier as written by SQLite or PostgreSQL, without its quotes or schema."""
    parts = _NAME.findall(name.strip())
    last = parts[-1] if parts else name.strip()
    if last[:1] in ('"', "`"):
        return last[1:-1].replace(last[0] * 2, last[0])
    if last[:1] == "[":
        return last[1:-1]
    return last


def _object_foreign_key(obj: SchemaObject) -> ForeignKey | None:
    options = obj.options
    if options.get("columns") and options.get("referenced_table"):
        return ForeignKey(
            columns=list(options["columns"]), referenced_table=str(options["referenced_table"]),
            referenced_columns=list(options.get("referenced_columns") or [None] * len(options["columns"])),
            on_delete=options.get("on_delete"), on_update=options.get("on_update"), name=obj.name,
            referenced_schema=options.get("referenced_schema"),
        )
    tokens = tokenize(obj.sql or "")
    for index, token in enumerate(tokens):
        if token.upper() == "FOREIGN" and index + 2 < len(tokens) and tokens[index + 2].text == "(":
            end = _group(tokens, index + 2)
            columns = _names(tokens[index + 3 : end - 1])
            if columns and end < len(tokens) and tokens[end].upper() == "REFERENCES":
                key, _ = _foreign_key(tokens, end, columns, obj.sql or "")
                return ForeignKey(name=obj.name, **key)
    return None


def _object_unique(obj: SchemaObject) -> list[str] | None:
    """The columns of a UNIQUE constraint object (``ALTER TABLE ... ADD CONSTRAINT n UNIQUE (a, b)``)."""
    if obj.options.get("contype") not in (None, "u"):
        return None
    tokens = tokenize(obj.sql or "")
    for index, token in enumerate(tokens):
        if token.upper() == "UNIQUE" and index + 1 < len(tokens) and tokens[index + 1].text == "(":
            end = _group(tokens, index + 1)
            if end < len(tokens) and tokens[end].upper() not in ("INCLUDE", "WITH", "USING", "WHERE"):
                return None
            return _names(tokens[index + 2 : end - 1])
    return None


def _structured_keys(value: Any) -> list[ForeignKey]:
    keys = []
    for entry in value if isinstance(value, list) else ():
        if isinstance(entry, dict) and entry.get("columns") and entry.get("referenced_table"):
            columns = [str(c) for c in entry["columns"]]
            referenced = entry.get("referenced_columns") or [None] * len(columns)
            keys.append(ForeignKey(
                columns=columns, referenced_table=str(entry["referenced_table"]), referenced_columns=list(referenced),
                on_delete=entry.get("on_delete"), on_update=entry.get("on_update"), name=entry.get("name"),
                referenced_schema=entry.get("referenced_schema"),
            ))
    return keys


def table_constraints(table: TableSchema, objects: Iterable[SchemaObject], parse_index: Any) -> Constraints:
    """Everything that makes a key of ``table``: from its options, its DDL and its objects."""
    options = table.options
    parsed = parse_create_table(table.create_sql or "") if not all(k in options for k in ("foreign_keys", "unique", "checks")) else {}
    spelled = {column.name.lower(): column.name for column in table.columns}

    def own(columns: Iterable[Any]) -> list[str]:
        return [spelled.get(str(name).lower(), str(name)) for name in columns]

    primary = [c.name for c in sorted((c for c in table.columns if c.primary_key), key=lambda c: c.primary_key)]
    foreign = _structured_keys(options["foreign_keys"]) if "foreign_keys" in options else _structured_keys(parsed.get("foreign_keys"))
    unique = [own(cols) for cols in (options["unique"] if "unique" in options else parsed.get("unique", [])) if cols]
    checks = [str(c) for c in (options["checks"] if "checks" in options else parsed.get("checks", []))]
    indexes: list[tuple[SchemaObject, list[str], bool]] = []
    other: list[SchemaObject] = []
    for obj in objects:
        if not belongs_to(obj, table):
            continue
        if obj.kind in FOREIGN_KEY_KINDS or (obj.kind == "constraint" and "FOREIGN KEY" in (obj.sql or "").upper()):
            key = _object_foreign_key(obj)
            if key is not None:
                foreign.append(key)
                continue
        elif obj.kind in ("constraint", "unique"):
            columns = _object_unique(obj)
            if columns:
                unique.append(own(columns))
                continue
            if "PRIMARY KEY" in (obj.sql or "").upper() and obj.options.get("contype") in (None, "p"):
                continue  # the primary key is made from the columns
        elif obj.kind == "check":
            expression = obj.options.get("expression")
            if expression:
                checks.append(str(expression))
                continue
        elif obj.kind == "index":
            index = parse_index(obj)
            if index is not None:
                indexes.append((obj, own(index[0]), index[1]))
                continue
        other.append(obj)
    for key in foreign:
        key.columns = own(key.columns)
    seen: set[tuple[str, ...]] = {tuple(primary)} if primary else set()
    distinct_unique = []
    for columns in unique:
        if tuple(columns) not in seen:
            seen.add(tuple(columns))
            distinct_unique.append(columns)
    signatures: set[tuple[Any, ...]] = set()
    distinct_foreign = []
    for key in foreign:
        signature = (tuple(key.columns), key.referenced_table.lower(), tuple(str(c).lower() for c in key.referenced_columns))
        if signature not in signatures:
            signatures.add(signature)
            distinct_foreign.append(key)
    return Constraints(primary, distinct_unique, distinct_foreign, list(dict.fromkeys(checks)), indexes, other)


# -- CHECK expressions ------------------------------------------------------------------------------

_KEYWORDS = frozenset({"AND", "OR", "NOT", "IS", "NULL", "BETWEEN", "IN", "TRUE", "FALSE"})
_OPERATORS = {"(": "(", ")": ")", ",": ",", "=": "=", "==": "=", "!=": "!=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "+": "+", "-": "-", "*": "*"}
_ORDERING = frozenset({"<", "<=", ">", ">=", "BETWEEN"})
_NUMERIC = frozenset({"integer", "decimal", "float", "boolean"})


def translate_check(expression: str, columns: dict[str, tuple[ColumnSchema, str]], engine: str, collated: bool) -> tuple[str | None, str]:
    """A CHECK expression of another engine in MySQL's syntax, or None and why it cannot be.

    ``columns``: the table's columns by lower-case name (with their MySQL types); ``collated``:
    the source's DDL gives text columns a collation of their own.
    """
    tokens = tokenize(expression)
    if tokens and tokens[0].upper() == "CHECK":
        tokens = tokens[1:]
    out: list[str] = []
    classes: set[str] = set()
    ordering = False
    for index, token in enumerate(tokens):
        following = tokens[index + 1].text if index + 1 < len(tokens) else ""
        word = token.upper()
        if token.kind == "word" and word in _KEYWORDS:
            out.append(word)
            ordering = ordering or word in _ORDERING
            if word in ("TRUE", "FALSE"):
                classes.add("number")
        elif token.kind in ("word", "ident"):
            if following == "(":
                return None, f"it calls {token.name}(), which is not the same function in MySQL"
            entry = columns.get(token.name.lower())
            if entry is None:
                return None, f"{token.name!r} is not one of its columns"
            column, target = entry
            if column.logical_type in _NUMERIC:
                classes.add("number")
            elif column.logical_type == "text":
                classes.add("text")
            else:
                return None, f"it compares {column.logical_type} values, which the engines compare differently"
            out.append(quote(column.name))
        elif token.kind == "string":
            classes.add("text")
            out.append("'" + token.name.replace("\\", "\\\\").replace("'", "''") + "'")
        elif token.kind == "number" and not token.text.lower().startswith("0x"):
            classes.add("number")
            out.append(token.text)
        elif token.kind == "op" and token.text in _OPERATORS:
            out.append(_OPERATORS[token.text])
            ordering = ordering or token.text in _ORDERING
        else:
            return None, f"{token.text!r} does not mean the same in MySQL"
    if not out:
        return None, "it is empty"
    if classes >= {"text", "number"}:
        return None, f"it mixes text and numbers, which {engine} and MySQL compare differently"
    if "text" in classes and ordering and (engine != "sqlite" or collated):
        return None, "it orders text, which depends on the source's collation"
    return " ".join(out), ""
