"""Security: private files, no secret in any output, and backup files treated as untrusted input.

Hostile backups are crafted with the core's :class:`~unibackup.format.BackupWriter`, so their
digests are right: an attacker can do the same, and the checks must not rely on them.
"""

from __future__ import annotations

import io
import os
import secrets
import sqlite3
import stat
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any, Iterable

import orjson
import pytest
import zstandard

from unibackup.config import Config, parse_config
from unibackup.errors import UnibackupError
from unibackup.format import BackupWriter
from unibackup.locations import parse_location
from unibackup.manager import get_plugin_manager
from unibackup.models import (
    BackupHeader,
    BackupOptions,
    ColumnSchema,
    DatabaseSchema,
    PluginRef,
    SchemaObject,
    SourceInfo,
    TableSchema,
    to_dict,
)
from unibackup.service import BackupService

SECRET = "s3cr3t"


@pytest.fixture
def service() -> BackupService:
    return BackupService(Config(), get_plugin_manager(load_entrypoints=False))


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNIBACKUP_", "PG"))}
    for key in ("UNIBACKUP_CACHE_DIR", "UNIBACKUP_HISTORY_FILE"):
        env[key] = os.environ[key]
    env["UNIBACKUP_LOAD_PLUGINS"] = ""
    env.update(extra)
    return env


def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unibackup", *args], capture_output=True, text=True, env=child_env(**env))


def make_db(path: Path, script: str, rows: Iterable[tuple[str, list[tuple]]] = ()) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(script)
    for sql, values in rows:
        conn.executemany(sql, values)
    conn.commit()
    conn.close()
    return path


# -- private files ----------------------------------------------------------------------------


def test_backups_are_0600_and_created_directories_0700(tmp_path: Path, service: BackupService) -> None:
    source = make_db(tmp_path / "db.sqlite", "CREATE TABLE t(x); INSERT INTO t VALUES (1);")
    old = os.umask(0)  # the most permissive umask: the modes come from the tool itself
    try:
        result = service.create_backup(str(source), tmp_path / "a" / "b" / "c")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(result.path).st_mode) == 0o600
    for directory in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


# -- secrets ----------------------------------------------------------------------------------


def test_a_location_never_shows_its_password() -> None:
    location = parse_location(f"postgresql://alice:{SECRET}@db.example:5433/shop?sslmode=require&password={SECRET}&sslpassword={SECRET}")
    assert location.password == SECRET
    assert location.identity == "postgresql://alice@db.example:5433/shop?sslmode=require"
    assert SECRET not in repr(location) and SECRET not in location.display_name


def _private_files() -> str:
    """Everything unibackup wrote to the history and the cache of this test."""
    texts = []
    for key in ("UNIBACKUP_HISTORY_FILE", "UNIBACKUP_CACHE_DIR"):
        path = Path(os.environ[key])
        for file in [path] if path.is_file() else (path.rglob("*") if path.is_dir() else []):
            if file.is_file():
                texts.append(file.read_text(errors="replace"))
    return "\n".join(texts)


def test_no_password_in_any_output_when_the_server_is_unreachable(tmp_path: Path) -> None:
    url = f"postgresql://alice:{SECRET}@127.0.0.1:1/shop?application_name=test&password={SECRET}"
    password_file = tmp_path / "pw"
    password_file.write_text(f"{SECRET}\n")
    config = tmp_path / "unibackup.toml"
    config.write_text(f'[source.postgresql]\npassword_file = "{password_file}"\nconnect_timeout = 2\n')
    backup = tmp_path / "x.ubk.jsonl"
    runs = [
        cli("--debug", "backup", url, "-o", str(tmp_path / "out")),
        cli("backup", url, "-o", str(tmp_path / "out"), "--json"),
        cli("--debug", "check", url, "--json"),
        cli("--debug", "estimate", url, "--json"),
        cli("--debug", "--config", str(config), "backup", "postgresql://alice@127.0.0.1:1/shop", "-o", str(tmp_path / "out")),
        cli("--debug", "backup", "postgresql://alice@127.0.0.1:1/shop", "-o", str(tmp_path / "out"), PGPASSWORD=SECRET),
        cli("--debug", "restore", str(backup), url),
    ]
    for run in runs:
        assert run.returncode in (1, 2), run.stderr
        assert SECRET not in run.stdout + run.stderr, run.args
        if "--json" not in run.args:
            assert run.stderr.strip().splitlines()[-1].startswith("unibackup: error: "), run.stderr
    assert SECRET not in _private_files()


def test_no_password_in_a_real_backup_its_header_logs_history_or_json(tmp_path: Path) -> None:
    pg_support = pytest.importorskip("pg_support")
    admin = pg_support.admin_connect()
    admin.close()
    base = urllib.parse.urlsplit(pg_support.server_url())
    secret = base.password or f"{SECRET}-{secrets.token_hex(4)}"  # a trusting server ignores it
    databases = pg_support.Databases()
    name = databases.new("secret")
    try:
        pg_support.run_sql(name, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        netloc = f"{urllib.parse.quote(base.username or 'postgres')}:{urllib.parse.quote(secret)}@{base.hostname}:{base.port or 5432}"
        url = urllib.parse.urlunsplit((base.scheme, netloc, f"/{name}", base.query, ""))
        out = tmp_path / "out"
        made = cli("--debug", "backup", url, "-o", str(out), "--json")
        assert made.returncode == 0, made.stderr
        path = orjson.loads(made.stdout)["path"]
        shown = [made, cli("--debug", "info", path, "--json"), cli("list", str(out), "--json"), cli("--debug", "verify", path, "--json"), cli("check", url, "--json")]
        for run in shown:
            assert run.returncode == 0, run.stderr
            assert secret not in run.stdout + run.stderr, run.args
        raw = zstandard.ZstdDecompressor().stream_reader(open(path, "rb")).read()
        assert secret.encode() not in raw and b"@" + (base.hostname or "").encode() in raw  # the identity is there, without it
        assert secret not in _private_files()
    finally:
        databases.drop_all()


# -- hostile names ----------------------------------------------------------------------------

HOSTILE_NAMES = [
    'x"; DROP TABLE canary; --',
    "a'b",
    "[bracketed]",
    "semi;colon",
    "`tick`",
    ") ; DELETE FROM canary; SELECT (",
    "ünïcödé \u202e name",
    "select",
]


def test_hostile_table_and_column_names_restore_as_literal_names(tmp_path: Path, service: BackupService) -> None:
    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    script = "CREATE TABLE canary(x); INSERT INTO canary VALUES (1), (2);\n"
    rows = []
    for i, name in enumerate(HOSTILE_NAMES):
        columns = ", ".join(f"{q(c)} TEXT" for c in HOSTILE_NAMES if c != name) + f", {q(name)} INT"
        script += f"CREATE TABLE {q(name)} ({columns});\nCREATE INDEX {q('ix ' + name)} ON {q(name)}({q(name)});\n"
        marks = ", ".join("?" for _ in HOSTILE_NAMES)
        rows.append((f"INSERT INTO {q(name)} VALUES ({marks})", [tuple(f"{n}; DROP TABLE canary" for n in HOSTILE_NAMES[:-1]) + (i,)]))
    source = make_db(tmp_path / "hostile.db", script, rows)
    backup = service.create_backup(str(source), tmp_path / "out").path
    assert service.verify_backup(backup, "full").valid
    target = tmp_path / "restored.db"
    service.restore_backup(backup, str(target))

    def contents(path: Path) -> dict[str, Any]:
        conn = sqlite3.connect(path)
        try:
            names = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')"))
            tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
            return {
                "names": names,
                "columns": {t: [r[1] for r in conn.execute(f"PRAGMA table_info({q(t)})")] for t in tables},
                "rows": {t: conn.execute(f"SELECT * FROM {q(t)}").fetchall() for t in tables},
            }
        finally:
            conn.close()

    assert contents(target) == contents(source)
    assert contents(target)["rows"]["canary"] == [(1,), (2,)]


def _hostile_source(path: Path) -> Path:
    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    script = "CREATE TABLE canary(x INTEGER PRIMARY KEY); INSERT INTO canary VALUES (1), (2);\n"
    rows = []
    for i, name in enumerate(HOSTILE_NAMES):
        columns = ", ".join(f"{q(c)} TEXT" for c in HOSTILE_NAMES if c != name) + f", {q(name)} INT"
        script += f"CREATE TABLE {q(name)} ({columns});\n"
        marks = ", ".join("?" for _ in HOSTILE_NAMES)
        rows.append((f"INSERT INTO {q(name)} VALUES ({marks})", [tuple(f"{n}; DROP TABLE canary" for n in HOSTILE_NAMES[:-1]) + (i,)]))
    return make_db(path, script, rows)


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_hostile_names_restore_as_literal_names_into_a_server(engine: str, tmp_path: Path, service: BackupService) -> None:
    support = pytest.importorskip("pg_support" if engine == "postgresql" else "mysql_support")
    backup = service.create_backup(str(_hostile_source(tmp_path / "hostile.db")), tmp_path / "out").path
    databases = support.Databases()
    try:
        name = databases.new("hostile")  # skips without a server (fails under CI)
        url = support.url_for(name)
        result = service.restore_backup(backup, url, force=True, allow_lossy=True)
        assert result.tables == len(HOSTILE_NAMES) + 1
        if engine == "postgresql":
            listed = support.run_sql(name, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
            canary = support.run_sql(name, "SELECT x FROM canary ORDER BY x")
        else:
            listed = support.run_sql(None, f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{name}'")
            canary = support.run_sql(name, "SELECT x FROM canary ORDER BY x")
        assert sorted(row[0] for row in listed) == sorted([*HOSTILE_NAMES, "canary"])
        assert [row[0] for row in canary] == [1, 2]
    finally:
        databases.drop_all()


# -- crafted hostile backups ------------------------------------------------------------------


def header(tables: tuple[TableSchema, ...], objects: tuple[SchemaObject, ...] = (), settings: dict | None = None, **fields: Any) -> BackupHeader:
    values: dict[str, Any] = dict(
        created_at="2026-01-01T00:00:00.000000Z",
        tool_version="0.1.0",
        source=SourceInfo("sqlite", "sqlite:///crafted.db", "3.45.0"),
        options=BackupOptions(compression="none"),
        compressor=PluginRef("compressor", "none"),
        schema=DatabaseSchema("sqlite", tables, objects, settings or {}),
    )
    values.update(fields)
    return BackupHeader(**values)


def table(name: str = "t", create_sql: str | None = None, columns: tuple[str, ...] = ("a",), **options: Any) -> TableSchema:
    return TableSchema(
        name=name,
        columns=tuple(ColumnSchema(c, "TEXT", "text") for c in columns),
        create_sql=create_sql if create_sql is not None else f'CREATE TABLE "{name}"({", ".join(columns)})',
        **options,
    )


def craft(path: Path, head: BackupHeader, rows: dict[str, list[bytes]] | None = None, sink_wrapper: Any = None) -> Path:
    """A backup written by the core's writer: consistent counts and digests, whatever it says."""
    buffer = io.BytesIO()
    writer = BackupWriter(buffer)
    writer.write_header(head)
    for t in head.schema.tables:
        writer.begin_table(t)
        lines = (rows or {}).get(t.name, [orjson.dumps(["value"])])
        writer.write_rows(lines)
        writer.end_table()
    writer.write_trailer()
    data = buffer.getvalue()
    path.write_bytes(sink_wrapper(data) if sink_wrapper else data)
    return path


HOSTILE_SQL = {
    "a second statement": table(create_sql="CREATE TABLE t(a); DROP TABLE canary"),
    "an ATTACH": table(create_sql="ATTACH DATABASE 'ATTACHED.db' AS evil"),
    "a PRAGMA": table(create_sql="PRAGMA writable_schema = ON"),
    "another table's name": table(create_sql="CREATE TABLE other(a)"),
    "another schema": table(create_sql="CREATE TABLE temp.t(a)"),
    "a TEMP table": table(create_sql="CREATE TEMP TABLE t(a)"),
    "CREATE TABLE AS SELECT": table(create_sql="CREATE TABLE t AS SELECT sqlite_version() AS a"),
    "a comment hiding a second statement": table(create_sql="CREATE TABLE t(a) /* */; VACUUM INTO 'ATTACHED.db'"),
    "an unterminated string": table(create_sql="CREATE TABLE t(a DEFAULT 'x)"),
    "no SQL at all": table(create_sql=""),
    "a hidden row id that is SQL": TableSchema(
        name="t",
        columns=(ColumnSchema("a) SELECT 1 --", "INTEGER", "integer", hidden="rowid"), ColumnSchema("a", "TEXT")),
        create_sql="CREATE TABLE t(a)",
    ),
}
HOSTILE_OBJECTS = {
    "an index that drops": SchemaObject("index", "ix", "DROP TABLE t", table="t"),
    "an index of another name": SchemaObject("index", "ix", "CREATE INDEX other ON t(a)", table="t"),
    "a trigger with a second statement": SchemaObject("trigger", "tr", "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END; DROP TABLE t", table="t"),
    "a TEMP view": SchemaObject("view", "v", "CREATE TEMP VIEW v AS SELECT 1", table="v"),
    "a view that is an ATTACH": SchemaObject("view", "v", "ATTACH 'ATTACHED.db' AS v", table="v"),
}


def assert_refused(service: BackupService, backup: Path, tmp_path: Path, fragment: str = "") -> str:
    target_dir = tmp_path / "target"
    target_dir.mkdir(exist_ok=True)
    with pytest.raises(UnibackupError) as raised:
        service.restore_backup(backup, str(target_dir / "restored.db"))
    assert raised.value.exit_code == 3, raised.value.user_line()
    assert fragment in raised.value.user_line()
    assert list(target_dir.iterdir()) == []
    return raised.value.user_line()


@pytest.mark.parametrize("case", list(HOSTILE_SQL))
def test_hostile_table_sql_never_runs(case: str, tmp_path: Path, service: BackupService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # where a relative ATTACH would create its file
    backup = craft(tmp_path / "hostile.ubk.jsonl", header((HOSTILE_SQL[case],)), {"t": [orjson.dumps(["1", "x"]) if "hidden" in case else orjson.dumps(["x"])]})
    line = assert_refused(service, backup, tmp_path)
    assert "nothing was written" in line or "row-id" in line
    assert not (tmp_path / "ATTACHED.db").exists()


@pytest.mark.parametrize("case", list(HOSTILE_OBJECTS))
def test_hostile_index_trigger_and_view_sql_never_runs(case: str, tmp_path: Path, service: BackupService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    backup = craft(tmp_path / "hostile.ubk.jsonl", header((table(),), (HOSTILE_OBJECTS[case],)))
    assert_refused(service, backup, tmp_path, "was not run and nothing was written")
    assert not (tmp_path / "ATTACHED.db").exists()


def test_the_same_kinds_of_sql_written_plainly_restore(tmp_path: Path, service: BackupService) -> None:
    """The crafted files are refused for their SQL, not for being crafted."""
    objects = (
        SchemaObject("index", "ix", "CREATE INDEX ix ON t(a)", table="t"),
        SchemaObject("view", "v", "CREATE VIEW v AS SELECT a FROM t", table="v"),
        SchemaObject("trigger", "tr", "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END", table="t"),
    )
    tables = (table(create_sql='CREATE TABLE IF NOT EXISTS main."t" (a) -- a note; with a semicolon'),)
    backup = craft(tmp_path / "plain.ubk.jsonl", header(tables, objects, {"user_version": 7}))
    result = service.restore_backup(backup, str(tmp_path / "restored.db"))
    assert result.rows == 1


def test_a_setting_that_is_not_an_integer_is_refused(tmp_path: Path, service: BackupService) -> None:
    backup = craft(tmp_path / "hostile.ubk.jsonl", header((table(),), settings={"page_size": "4096; ATTACH 'x' AS y"}))
    assert_refused(service, backup, tmp_path, "'page_size'")


# -- damaged or hostile content: limits, JSON, versions, types ----------------------------------


def zstd_bomb(path: Path, megabytes: int = 80) -> Path:
    """A valid start (header, a table) and then rows of one repeated line: about 10 000 : 1."""
    head = header((table(),), compressor=PluginRef("compressor", "zstd"), options=BackupOptions(compression="zstd"))
    start = orjson.dumps({"type": "header", **to_dict(head)}) + b"\n" + orjson.dumps({"type": "table", "name": "t", "namespace": None}) + b"\n"
    line = orjson.dumps(["A" * 1000]) + b"\n"
    rows = line * (megabytes * 1024 * 1024 // len(line))
    compressor = zstandard.ZstdCompressor(level=3)
    path.write_bytes(compressor.compress(start) + compressor.compress(rows))
    return path


def test_a_decompression_bomb_is_stopped_by_the_ratio_limit(tmp_path: Path, service: BackupService) -> None:
    bomb = zstd_bomb(tmp_path / "bomb.ubk.jsonl.zst")
    assert bomb.stat().st_size < 20_000
    report = service.verify_backup(bomb, "full")
    assert not report.valid
    message = report.findings[0].message
    assert message == "the backup expands more than 2000 times (a decompression bomb?); raise limits.max_ratio if the file is trusted"
    assert_refused(service, bomb, tmp_path, "decompression bomb")


def test_the_decompressed_size_limit(tmp_path: Path) -> None:
    limited = BackupService(parse_config({"limits": {"max_decompressed_bytes": 1_000_000}}), get_plugin_manager(load_entrypoints=False))
    bomb = zstd_bomb(tmp_path / "bomb.ubk.jsonl.zst", megabytes=4)
    report = limited.verify_backup(bomb, "full")
    assert report.findings[0].message.startswith("the backup decompresses to more than 1000000 bytes")


def test_an_overlong_line_via_the_command_line(tmp_path: Path) -> None:
    backup = craft(tmp_path / "long.ubk.jsonl", header((table(),)), {"t": [orjson.dumps(["x" * 5000])]})
    config = tmp_path / "unibackup.toml"
    config.write_text("[limits]\nmax_line_bytes = 2048\n")
    verify = cli("--config", str(config), "verify", str(backup))
    assert verify.returncode == 3
    assert verify.stderr.strip().splitlines()[-1].endswith("is invalid: a line is longer than 2048 bytes; raise limits.max_line_bytes")
    target = tmp_path / "out" / "r.db"
    target.parent.mkdir()
    restore = cli("--config", str(config), "restore", str(backup), str(target))
    assert restore.returncode == 3 and restore.stderr.count("\n") == 1
    assert list(target.parent.iterdir()) == []


def _header_dict(**changes: Any) -> dict[str, Any]:
    data = {"type": "header", **to_dict(header((table(),)))}
    data.update(changes)
    return data


class _Raw:
    """A header that is whatever JSON the test says (the writer takes any model-like value)."""

    def __init__(self, data: dict[str, Any]):
        self.data = data


def craft_raw_header(path: Path, data: dict[str, Any], rows: list[bytes] | None = None) -> Path:
    buffer = io.BytesIO()
    writer = BackupWriter(buffer)
    writer._write_record(data)  # noqa: SLF001 - a hostile header, digests and all
    writer.begin_table(table())
    writer.write_rows(rows or [orjson.dumps(["v"])])
    writer.end_table()
    writer.write_trailer()
    path.write_bytes(buffer.getvalue())
    return path


DAMAGED = {
    "invalid JSON in a row": (None, [b'["unterminated'], "is not valid JSON"),
    "invalid JSON in the header": ("raw", None, "not valid JSON"),
    "an unknown format version": ({"format_version": 99}, None, "format version 99; this unibackup reads version 2"),
    "a count that is a string": ({"schema": {**to_dict(DatabaseSchema("sqlite", (table(),))), "tables": [{**to_dict(table()), "row_estimate": "12"}]}}, None, "the header line is malformed"),
    "a flag that is a string": ({"schema": {**to_dict(DatabaseSchema("sqlite", (table(),))), "tables": [{**to_dict(table()), "has_data": "no"}]}}, None, "the header line is malformed"),
    "a row that is not an array": (None, [b'{"a": 1}'], ""),
    "a tagged value of the wrong type": (None, [b'[{"$bytes": 5}]'], "malformed"),
    "a row of the wrong width": (None, [b'["a", "b"]'], "values, not 1"),
    "an integer tag holding a float": (None, [b'[{"$int": 1.9}]'], "a $int value is malformed"),
    "an integer tag with spaces": (None, [b'[{"$int": " 5"}]'], "a $int value is malformed"),
    "a decimal tag holding a tuple": (None, [b'[{"$decimal": [0, [1, 2], -1]}]'], "a $decimal value is malformed"),
    "a uuid tag in URN notation": (None, [b'[{"$uuid": "urn:uuid:12345678-1234-5678-1234-567812345678"}]'], "a $uuid value is malformed"),
    "a duration not in normal form": (None, [b'[{"$timedelta": [0, 90000, 0]}]'], "a $timedelta value is malformed"),
    "a string that spans two row lines": (None, [b'["x', b'"]'], "is not valid JSON"),
    "a decimal with an underscore": (None, [b'[{"$decimal": "1_000"}]'], "a $decimal value is malformed"),
    "a decimal spelt as Python's float": (None, [b'[{"$decimal": "inf"}]'], "a $decimal value is malformed"),
    "a week date": (None, [b'[{"$date": "2024-W09-4"}]'], "a $date value is malformed"),
    "a date as a datetime": (None, [b'[{"$datetime": "2024-05-06"}]'], "a $datetime value is malformed"),
    "a seventh fractional digit": (None, [b'[{"$datetime": "2024-05-06T07:08:09.1234567"}]'], "a $datetime value is malformed"),
    "a time without colons": (None, [b'[{"$time": "235959"}]'], "a $time value is malformed"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_content_is_exit_code_3_and_writes_nothing(case: str, tmp_path: Path, service: BackupService) -> None:
    changes, rows, fragment = DAMAGED[case]
    path = tmp_path / "damaged.ubk.jsonl"
    if changes == "raw":
        path.write_bytes(b'{"type":"header","format":"unibackup", oops}\n')
    else:
        craft_raw_header(path, _header_dict(**(changes or {})), rows)
    report = service.verify_backup(path, "full")
    assert not report.valid and fragment in report.findings[0].message
    assert_refused(service, path, tmp_path)


def test_a_value_its_strict_column_refuses_is_damage(tmp_path: Path, service: BackupService) -> None:
    strict = table(create_sql="CREATE TABLE t(a INTEGER) STRICT")
    backup = craft(tmp_path / "strict.ubk.jsonl", header((strict,)), {"t": [orjson.dumps(["not a number"])]})
    assert service.verify_backup(backup, "full").valid  # well-formed; only the schema knows better
    assert_refused(service, backup, tmp_path, "a value of the wrong type")


# -- a header and a body that contradict each other ---------------------------------------------


def craft_body(path: Path, head: BackupHeader, body: list[tuple[TableSchema, list[bytes]]]) -> Path:
    """A backup whose header says ``head`` and whose body holds the tables of ``body``, in that
    order, with consistent digests and counts: only the header and the body disagree."""
    buffer = io.BytesIO()
    writer = BackupWriter(buffer)
    writer.write_header(head)
    for t, lines in body:
        writer.begin_table(t)
        writer.write_rows(lines)
        writer.end_table()
    writer.write_trailer()
    path.write_bytes(buffer.getvalue())
    return path


ROW = orjson.dumps(["v"])
CONTRADICTIONS = {
    "a table named twice in the header": (
        header((table("t"), table("t"))), [(table("t"), [ROW])], "lists the table 't' twice"),
    "a column named twice": (
        header((table("t", columns=("a", "a")),)), [(table("t", columns=("a", "a")), [orjson.dumps(["v", "w"])])], "names the column 'a' twice"),
    "a NUL in a table name": (
        header((table("t\x00x", create_sql='CREATE TABLE "t"(a)'),)), [(table("t\x00x", create_sql='CREATE TABLE "t"(a)'), [ROW])], "NUL character"),
    "a NUL in a column name": (
        header((table("t", columns=("a\x00b",), create_sql='CREATE TABLE "t"(a)'),)), [(table("t", columns=("a\x00b",), create_sql='CREATE TABLE "t"(a)'), [ROW])], "NUL character"),
    "a NUL in an object's SQL": (
        header((table(),), (SchemaObject("index", "ix", "CREATE INDEX ix ON t(a)\x00; DROP TABLE t", table="t"),)), [(table(), [ROW])], "NUL character"),
    "tables out of the header's order": (
        header((table("a"), table("b"))), [(table("b"), [ROW]), (table("a"), [ROW])], "comes where the header has 'a'"),
    "a table of the header missing": (
        header((table("a"), table("b"))), [(table("a"), [ROW])], "'b' of the header is missing"),
    "rows for a table that keeps none": (
        header((table("t", has_data=False),)), [(table("t", has_data=False), [ROW])], "its header says it keeps none"),
}


@pytest.mark.parametrize("case", list(CONTRADICTIONS))
def test_a_header_the_body_contradicts_is_damage(case: str, tmp_path: Path, service: BackupService) -> None:
    head, body, fragment = CONTRADICTIONS[case]
    backup = craft_body(tmp_path / "contradiction.ubk.jsonl", head, body)
    report = service.verify_backup(backup, "full")
    assert not report.valid
    assert fragment in report.findings[0].message, report.findings[0].message
    assert_refused(service, backup, tmp_path)


def test_a_pipe_is_neither_a_backup_nor_a_database(tmp_path: Path) -> None:
    """Opening a FIFO for reading blocks until a writer comes: it must be refused, not opened."""
    fifo = tmp_path / "backup.ubk.jsonl.zst"
    os.mkfifo(fifo)
    for args in (("verify", str(fifo)), ("info", str(fifo)), ("restore", str(fifo), str(tmp_path / "r.db"))):
        result = subprocess.run([sys.executable, "-m", "unibackup", *args], capture_output=True, text=True, timeout=60, env=child_env())
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.strip() == f"unibackup: error: {str(fifo)!r} is not a regular file"
    backup = subprocess.run(
        [sys.executable, "-m", "unibackup", "backup", str(fifo), "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=60, env=child_env()
    )
    assert backup.returncode == 2, backup.stderr
    assert backup.stderr.count("\n") == 1 and "is not a database file" in backup.stderr
    assert not (tmp_path / "r.db").exists()


def test_a_restore_through_a_symbolic_link_replaces_the_database_it_points_to(tmp_path: Path, service: BackupService) -> None:
    source = make_db(tmp_path / "source.db", "CREATE TABLE t(a)", [("INSERT INTO t VALUES (?)", [(1,), (2,)])])
    backup = service.create_backup(str(source), tmp_path / "backups").path
    real = make_db(tmp_path / "real.db", "CREATE TABLE old(b)", [("INSERT INTO old VALUES (?)", [(9,)])])
    link = tmp_path / "link.db"
    link.symlink_to(real)
    service.restore_backup(backup, str(link), force=True)
    assert link.is_symlink() and os.readlink(link) == str(real)
    with sqlite3.connect(real) as conn:
        assert conn.execute("SELECT a FROM t ORDER BY a").fetchall() == [(1,), (2,)]
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'old'").fetchone() == (0,)


def test_row_lines_that_only_parse_when_joined_are_damage(tmp_path: Path, service: BackupService) -> None:
    """Three lines, each starting with '[' and ending with ']', none of them JSON on its own,
    that make three rows when glued together with commas."""
    lines = [b'[1],[2]', b'[[3]', b'[4]]']
    path = craft_raw_header(tmp_path / "glued.ubk.jsonl", _header_dict(), lines)
    report = service.verify_backup(path, "full")
    assert not report.valid and "is not valid JSON" in report.findings[0].message
    assert_refused(service, path, tmp_path)


ROWID_TABLE = TableSchema(
    name="t", columns=(ColumnSchema("rowid", "INTEGER", "integer", hidden="rowid"), ColumnSchema("a", "TEXT")), create_sql="CREATE TABLE t(a)"
)
SELF_CONTRADICTIONS = {
    "a duplicate row id": (header((ROWID_TABLE,)), {"t": [orjson.dumps([1, "x"]), orjson.dumps([1, "y"])]}, "UNIQUE constraint failed"),
    "tables t and T": (header((table("t"), table("T"))), None, "already exists"),
    "a trigger on a table the SQL does not create": (
        header((table(),), (SchemaObject("trigger", "tr", "CREATE TRIGGER tr AFTER INSERT ON missing BEGIN SELECT 1; END", table="t"),)), None, ""),
    "sqlite_stat1 that is a number": (header((table(),), settings={"sqlite_stat1": 5}), None, "'sqlite_stat1' is not a list"),
    "sqlite_stat1 rows of the wrong shape": (header((table(),), settings={"sqlite_stat1": [{"a": 1}]}), None, "'sqlite_stat1' is not a list"),
}


@pytest.mark.parametrize("case", list(SELF_CONTRADICTIONS))
def test_a_backup_whose_own_schema_sqlite_refuses_is_invalid(case: str, tmp_path: Path, service: BackupService) -> None:
    """What SQLite refuses of a SQLite backup's own schema and rows is damage (exit 3), not a
    failure of the machine (exit 1), and never a bug."""
    head, rows, fragment = SELF_CONTRADICTIONS[case]
    backup = craft(tmp_path / "contradiction.ubk.jsonl", head, rows)
    assert_refused(service, backup, tmp_path, fragment)
