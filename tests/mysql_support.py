"""Helpers for the MySQL/MariaDB tests: a server from ``UNIBACKUP_TEST_MYSQL_URL``, throwaway
databases, the Chinook sample, and table-by-table comparison done by SQL on both sides.

Without a reachable server the tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import pytest

pymysql = pytest.importorskip("pymysql")

DEFAULT_URL = "mysql://root@127.0.0.1:3306/test"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CHINOOK_MYSQL = DATA / "chinook" / "Chinook_MySql.sql"
CHINOOK_SQLITE = DATA / "chinook" / "Chinook_Sqlite.sqlite"
UNIBACKUP = [sys.executable, "-m", "unibackup"]
_DATABASE_LINES = re.compile(r"^\s*(?:DROP\s+DATABASE|CREATE\s+DATABASE|USE)\b[^;]*;", re.IGNORECASE | re.MULTILINE)


def server_url() -> str:
    return os.environ.get("UNIBACKUP_TEST_MYSQL_URL", DEFAULT_URL)


def url_for(database: str, *, user: str | None = None, password: str | None = None, port: int | None = None, host: str | None = None) -> str:
    """The server URL with another database (and optionally other credentials or address)."""
    parts = urllib.parse.urlsplit(server_url())
    netloc_user = user if user is not None else (urllib.parse.unquote(parts.username) if parts.username else "")
    secret = password if password is not None else (urllib.parse.unquote(parts.password) if parts.password else None)
    auth = urllib.parse.quote(netloc_user, safe="")
    if secret is not None:
        auth += ":" + urllib.parse.quote(secret, safe="")
    address = f"{host or parts.hostname or '127.0.0.1'}:{port or parts.port or 3306}"
    return urllib.parse.urlunsplit((parts.scheme, f"{auth}@{address}" if auth else address, "/" + database, parts.query, ""))


def unavailable(reason: str) -> None:
    """Skip, or fail under CI, where these tests must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"MySQL tests cannot run under CI: {reason}")
    pytest.skip(reason)


def connect(database: str | None = None, **extra: Any) -> Any:
    """An autocommit connection as the test server's user (UTC session, utf8mb4)."""
    parts = urllib.parse.urlsplit(server_url())
    try:
        conn = pymysql.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=urllib.parse.unquote(parts.username or "root"),
            password=urllib.parse.unquote(parts.password or ""),
            database=database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=5,
            **extra,
        )
    except pymysql.err.MySQLError as error:
        unavailable(f"no MySQL server at {parts.hostname}:{parts.port or 3306}: {error.args[-1]}")
        raise
    with conn.cursor() as cursor:
        cursor.execute("SET SESSION time_zone = '+00:00'")
    return conn


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def run_sql(database: str | None, *statements: str, params: Any = None) -> list[tuple]:
    """Run statements; the rows of the last one."""
    conn = connect(database)
    try:
        rows: list[tuple] = []
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement, params)
                rows = list(cursor.fetchall()) if cursor.description else []
        return rows
    finally:
        conn.close()


def run_script(database: str, text: str) -> None:
    """Run a script of many statements in one round trip."""
    conn = connect(database, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
    try:
        with conn.cursor() as cursor:
            cursor.execute(text)
            while cursor.nextset():
                pass
    finally:
        conn.close()


def unique_name(prefix: str) -> str:
    return f"ubt_{prefix}_{os.getpid()}_{secrets.token_hex(3)}"


def database_exists(name: str) -> bool:
    return bool(run_sql(None, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", params=(name,)))


class Databases:
    """Creates uniquely named databases (and users) and drops them all at the end."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.users: list[str] = []

    def new(self, prefix: str = "db", create: bool = True) -> str:
        name = unique_name(prefix)
        self.names.append(name)
        if create:
            run_sql(None, f"CREATE DATABASE {quote(name)} CHARACTER SET utf8mb4")
        return name

    def user(self, password: str, *grants: str) -> str:
        """A throwaway user with ``password`` and the given ``GRANT`` privileges clauses."""
        name = unique_name("u")[:32]
        self.users.append(name)
        run_sql(None, f"CREATE USER '{name}'@'%%' IDENTIFIED BY %s", params=(password,))
        for grant in grants:
            run_sql(None, f"GRANT {grant} TO '{name}'@'%'")
        return name

    def drop_all(self) -> None:
        for name in reversed(self.names):
            run_sql(None, f"DROP DATABASE IF EXISTS {quote(name)}")
        for user in self.users:
            run_sql(None, f"DROP USER IF EXISTS '{user}'@'%'")
        self.names.clear()
        self.users.clear()


@pytest.fixture
def databases() -> Iterator[Databases]:
    connect().close()  # skip (or fail under CI) before anything else
    created = Databases()
    try:
        yield created
    finally:
        created.drop_all()


def load_chinook(database: str) -> None:
    """Chinook's MySQL script, run into ``database`` (its own DROP/CREATE/USE lines removed)."""
    if not CHINOOK_MYSQL.exists():
        pytest.skip(f"the sample data {CHINOOK_MYSQL.name} is not there")
    run_script(database, _DATABASE_LINES.sub("", CHINOOK_MYSQL.read_text(encoding="utf-8-sig")))


@pytest.fixture(scope="module")
def chinook() -> Iterator[str]:
    """A database loaded with Chinook, shared (read-only) by the tests of a module."""
    connect().close()
    created = Databases()
    try:
        name = created.new("chinook")
        load_chinook(name)
        yield name
    finally:
        created.drop_all()


# -- comparison ------------------------------------------------------------------------------
_DEFINER = re.compile(r"\s*DEFINER\s*=\s*\S+@\S+", re.IGNORECASE)


class Inspector:
    """Reads one database's contents and schema through a single connection."""

    def __init__(self, database: str):
        self.database = database
        self.conn = connect(database)

    def __enter__(self) -> "Inspector":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.conn.close()

    def rows(self, sql: str, params: Any = None) -> list[tuple]:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []

    def tables(self) -> list[str]:
        rows = self.rows("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME", (self.database,))
        return [name for (name,) in rows]

    def stored_columns(self, table: str) -> list[tuple[str, str]]:
        """(name, data type) of the columns that hold data (generated ones are left out)."""
        rows = self.rows(
            "SELECT COLUMN_NAME, DATA_TYPE, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (self.database, table),
        )
        return [(name, data_type) for name, data_type, extra in rows if not any(word in extra.upper() for word in ("GENERATED", "PERSISTENT", "ROW START", "ROW END"))]

    def fingerprint(self, table: str) -> tuple[int, str]:
        """Row count and an order-independent hash of every value, computed by the server."""
        row = "CONCAT_WS(',', " + ", ".join(value_sql(name, data_type) for name, data_type in self.stored_columns(table)) + ")"
        count, digest = self.rows(f"SELECT COUNT(*), COALESCE(SUM(CAST(CONV(SUBSTRING(MD5({row}), 1, 15), 16, 10) AS UNSIGNED)), 0) FROM {quote(table)}")[0]
        return int(count), str(digest)

    def data(self) -> dict[str, tuple[int, str]]:
        return {table: self.fingerprint(table) for table in self.tables()}

    def auto_increments(self) -> dict[str, int | None]:
        result = {}
        for table in self.tables():
            create = self.rows(f"SHOW CREATE TABLE {quote(table)}")[0][1]
            match = re.search(r"\bAUTO_INCREMENT=(\d+)", create.rsplit("\n", 1)[-1])
            result[table] = int(match.group(1)) if match else None
        return result

    def objects(self) -> dict[str, str]:
        """Every schema object by kind and name, with its definition as the server shows it."""
        db = (self.database,)
        objects: dict[str, str] = {}
        for name, kind in self.rows("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", db):
            if kind == "VIEW":
                objects[f"view {name}"] = _DEFINER.sub("", self.rows(f"SHOW CREATE VIEW {quote(name)}")[0][1])
            elif kind == "SEQUENCE":
                objects[f"sequence {name}"] = self.rows(f"SHOW CREATE SEQUENCE {quote(name)}")[0][1]
            else:
                objects[f"table {name}"] = self.rows(f"SHOW CREATE TABLE {quote(name)}")[0][1]
        for name, kind in self.rows("SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s", db):
            objects[f"{kind.lower()} {name}"] = _DEFINER.sub("", self.rows(f"SHOW CREATE {kind} {quote(name)}")[0][2])
        for (name,) in self.rows("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s", db):
            objects[f"trigger {name}"] = _DEFINER.sub("", self.rows(f"SHOW CREATE TRIGGER {quote(name)}")[0][2])
        for (name,) in self.rows("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s", db):
            objects[f"event {name}"] = _DEFINER.sub("", self.rows(f"SHOW CREATE EVENT {quote(name)}")[0][3])
        return objects


def value_sql(name: str, data_type: str) -> str:
    """A column as exact bytes: floats widened to DOUBLE first (the server prints FLOAT with 6 digits)."""
    column = quote(name)
    if data_type in ("float", "double", "real"):
        column = f"({column} + 0E0)"
    return f"IFNULL(HEX(CAST({column} AS BINARY)), 'N')"


def data_fingerprint(database: str) -> dict[str, tuple[int, str]]:
    with Inspector(database) as inspector:
        return inspector.data()


def assert_same_database(original: str, restored: str) -> None:
    """Same tables and contents, AUTO_INCREMENT counters and schema objects (definitions included)."""
    with Inspector(original) as left, Inspector(restored) as right:
        assert right.data() == left.data()
        assert right.auto_increments() == left.auto_increments()
        assert right.objects() == left.objects()
