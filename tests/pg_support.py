"""Helpers for the PostgreSQL tests: a server from ``UNIBACKUP_TEST_POSTGRES_URL``, throwaway
databases, the sample data sets, and table-by-table comparison done by SQL on both sides.

Without a reachable server the tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import pytest

try:
    import psycopg
except ImportError:  # pragma: no cover
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("psycopg is not installed", allow_module_level=True)

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PAGILA = DATA / "pagila"
CHINOOK = DATA / "chinook"
UNIBACKUP = [sys.executable, "-m", "unibackup"]


def server_url() -> str:
    return os.environ.get("UNIBACKUP_TEST_POSTGRES_URL", DEFAULT_URL)


def url_for(database: str, base: str | None = None, query: str = "") -> str:
    """The server URL with another database (and an optional query string)."""
    parts = urllib.parse.urlsplit(base or server_url())
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + database, query or parts.query, ""))


def unavailable(reason: str) -> None:
    """Skip, or fail under CI, where these tests must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL tests cannot run under CI: {reason}")
    pytest.skip(reason)


def admin_connect(database: str | None = None) -> "psycopg.Connection":
    url = url_for(database) if database else server_url()
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.Error as error:
        unavailable(f"no PostgreSQL server at {url_for(database or '')}: {str(error).strip().splitlines()[0]}")
        raise


def unique_name(prefix: str) -> str:
    return f"ubt_{prefix}_{os.getpid()}_{secrets.token_hex(3)}"


def create_database(name: str) -> None:
    with admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Databases:
    """Creates uniquely named databases and drops them all at the end."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def new(self, prefix: str = "db", create: bool = True) -> str:
        name = unique_name(prefix)
        self.names.append(name)
        if create:
            create_database(name)
        return name

    def adopt(self, name: str) -> str:
        """Drop ``name`` at the end too (a database that a restore creates)."""
        self.names.append(name)
        return name

    def drop_all(self) -> None:
        for name in reversed(self.names):
            drop_database(name)
        self.names.clear()


def run_sql(database: str, sql: str, params: Any = None) -> list[tuple]:
    with admin_connect(database) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def load_script(database: str, *scripts: Path, strip_database_lines: bool = False) -> None:
    """Run SQL scripts with psql (they use psql's COPY ... FROM stdin)."""
    if shutil.which("psql") is None:
        unavailable("psql is not installed")
    for script in scripts:
        if not script.exists():
            pytest.skip(f"the sample data {script.name} is not there")
        text = script.read_text(encoding="utf-8")
        if strip_database_lines:
            text = "\n".join(
                line
                for line in text.splitlines()
                if not line.startswith("\\c") and "DATABASE" not in line.upper().split("--")[0]
            )
        result = subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url_for(database)],
            input=text,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise AssertionError(f"loading {script.name} failed: {result.stderr[-2000:]}")


TABLES_SQL = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY 1, 2
"""


def table_fingerprints(database: str) -> dict[str, tuple[int, str]]:
    """Per table: the row count and an order-independent hash of the rows' text, computed by SQL."""
    result = {}
    with admin_connect(database) as conn:
        conn.execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 1")
        for namespace, name in conn.execute(TABLES_SQL).fetchall():
            relation = f'"{namespace}"."{name}"'
            (populated,) = conn.execute("SELECT relispopulated FROM pg_class WHERE oid = %s::regclass", (relation,)).fetchone()
            if not populated:
                result[f"{namespace}.{name}"] = (-1, "not populated")
                continue
            count, digest = conn.execute(
                f"SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '') FROM (SELECT md5(t::text) AS h FROM ONLY {relation} t) s"
            ).fetchone()
            result[f"{namespace}.{name}"] = (count, digest)
    return result


def sequence_values(database: str) -> dict[str, tuple[int, bool]]:
    rows = run_sql(
        database,
        "SELECT n.nspname || '.' || c.relname, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'S' ORDER BY 1",
    )
    values = {}
    with admin_connect(database) as conn:
        for name, oid in rows:
            namespace, relname = name.split(".", 1)
            last, called = conn.execute(f'SELECT last_value, is_called FROM "{namespace}"."{relname}"').fetchone()
            values[name] = (last, called)
    return values


def schema_objects(database: str) -> list[tuple[str, str, str]]:
    """Every user object as (kind, schema, name[, definition]) from the catalogs."""
    return sorted(
        tuple(row)
        for row in run_sql(
            database,
            """
            SELECT 'relation:' || c.relkind::text, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
            UNION ALL SELECT 'constraint:' || con.contype::text, n.nspname, con.conname || ' ' || pg_get_constraintdef(con.oid)
              FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
              WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
            UNION ALL SELECT 'index', n.nspname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
            UNION ALL SELECT 'function:' || p.prokind::text, n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
            UNION ALL SELECT 'trigger', c.relname, t.tgname || ' ' || pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
              WHERE NOT t.tgisinternal
            UNION ALL SELECT 'type:' || t.typtype::text, n.nspname, t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
              WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
            UNION ALL SELECT 'view', n.nspname, c.relname || ' ' || pg_get_viewdef(c.oid) FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            UNION ALL SELECT 'partition', c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relispartition AND c.relkind IN ('r', 'p')
            UNION ALL SELECT 'default', c.relname, a.attname || ' ' || pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
              JOIN pg_class c ON c.oid = d.adrelid JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
              JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
            UNION ALL SELECT 'column', c.relname, a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text || ' ' || a.attidentity::text || a.attgenerated::text
              FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
            """,
        )
    )


def assert_same_database(source: str, target: str) -> None:
    """Rows, sequence values and schema objects are the same in both databases."""
    before, after = table_fingerprints(source), table_fingerprints(target)
    assert after.keys() == before.keys()
    different = {name: (before[name], after[name]) for name in before if before[name] != after[name]}
    assert not different, f"tables differ: {different}"
    assert sequence_values(target) == sequence_values(source)
    source_objects, target_objects = schema_objects(source), schema_objects(target)
    missing = sorted(set(source_objects) - set(target_objects))
    extra = sorted(set(target_objects) - set(source_objects))
    assert not missing and not extra, f"schema objects differ: missing {missing[:5]}, extra {extra[:5]}"


_EMPTY_CONFIG: list[str] = []


def empty_config() -> str:
    """An empty configuration file (made once per test process, removed at exit), so that no
    ``unibackup.toml`` of the machine takes part; the configuration must be a regular file."""
    if not _EMPTY_CONFIG:
        handle, path = tempfile.mkstemp(prefix="unibackup-empty-", suffix=".toml")
        os.close(handle)
        atexit.register(os.unlink, path)
        _EMPTY_CONFIG.append(path)
    return _EMPTY_CONFIG[0]


def cli(*args: str, env: dict[str, str] | None = None, cwd: str | os.PathLike[str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``unibackup`` as a user would."""
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("UNIBACKUP_CONFIG", empty_config())
    return subprocess.run([*UNIBACKUP, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout)


def iter_lines(path: str) -> Iterator[bytes]:
    import zstandard

    with open(path, "rb") as handle, zstandard.ZstdDecompressor().stream_reader(handle) as reader:
        buffer = b""
        while chunk := reader.read(1 << 20):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            yield from lines


# -- fixtures (import them by name into a test module) -------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The server URL, once it answered; skips (or fails under CI) when it does not."""
    with admin_connect():
        pass
    return server_url()


@pytest.fixture
def databases(pg_server: str) -> Iterator[Databases]:
    made = Databases()
    try:
        yield made
    finally:
        made.drop_all()


def _sample_database(prefix: str, scripts: list[Path], strip: bool) -> Iterator[str]:
    for script in scripts:
        if not script.exists():
            pytest.skip(f"the sample data {script} is not there")
    made = Databases()
    name = made.new(prefix)
    try:
        load_script(name, *scripts, strip_database_lines=strip)
        yield name
    finally:
        made.drop_all()


@pytest.fixture(scope="session")
def pagila(pg_server: str) -> Iterator[str]:
    """A database with Pagila loaded; shared by the session, never written to by tests."""
    yield from _sample_database("pagila", [PAGILA / "pagila-schema.sql", PAGILA / "pagila-data.sql"], False)


@pytest.fixture(scope="session")
def chinook(pg_server: str) -> Iterator[str]:
    """A database with Chinook loaded (its DROP/CREATE DATABASE and \\c lines left out)."""
    yield from _sample_database("chinook", [CHINOOK / "Chinook_PostgreSql.sql"], True)


def make_service(**config: Any) -> Any:
    """A service with the default plugins only; ``config`` overrides sections of the settings."""
    from unibackup.config import parse_config
    from unibackup.manager import get_plugin_manager
    from unibackup.service import BackupService

    return BackupService(parse_config(config), get_plugin_manager(load_entrypoints=False))
