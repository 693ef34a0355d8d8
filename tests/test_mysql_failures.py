"""What a user meets when something is wrong: one line, the documented exit code, no secrets,
and a restore target left as it was."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import zstandard

from unibackup.errors import CorruptBackupError, SourceError

from mysql_support import UNIBACKUP, Inspector, database_exists, databases, run_script, url_for

pytestmark = pytest.mark.mysql
__all__ = ["databases"]  # fixture

SECRET = "S3cret-never-shown"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([*UNIBACKUP, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def _one_line(run: subprocess.CompletedProcess, code: int, *words: str) -> str:
    assert run.returncode == code, run.stderr
    assert run.stderr.startswith("unibackup: error: ")
    assert run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr
    for word in words:
        assert word in run.stderr
    assert SECRET not in run.stderr and SECRET not in run.stdout
    return run.stderr


@pytest.fixture
def small(databases):
    name = databases.new("small")
    run_script(name, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO t VALUES (1, 'x'), (2, 'y');"
               "CREATE TABLE u (id INT PRIMARY KEY); INSERT INTO u VALUES (1); CREATE VIEW v AS SELECT id FROM t;")
    return name


def test_wrong_host(tmp_path):
    _one_line(_cli("backup", url_for("test", port=1, password=SECRET), "-o", str(tmp_path)), 1, "cannot connect", "127.0.0.1:1", "connection refused")
    _one_line(_cli("backup", url_for("test", host="no-such-host.invalid"), "-o", str(tmp_path)), 1, "unknown host")
    assert list(tmp_path.iterdir()) == []


def test_wrong_password(databases, small, tmp_path):
    user = databases.user("right-password", f"SELECT, SHOW VIEW ON `{small}`.*")
    _one_line(_cli("backup", url_for(small, user=user, password=SECRET), "-o", str(tmp_path)), 1, "refused the login", repr(user))
    _one_line(_cli("restore", "nothing.ubk.jsonl", url_for(small, user=user, password=SECRET)), 2)  # the file first


def test_missing_database(tmp_path):
    _one_line(_cli("backup", url_for("ubt_no_such_database", password=None), "-o", str(tmp_path)), 1, "'ubt_no_such_database' does not exist")


def test_missing_privilege(databases, small, tmp_path):
    user = databases.user(SECRET)  # may log in, may not read the database
    _one_line(_cli("backup", url_for(small, user=user, password=SECRET), "-o", str(tmp_path)), 1, "missing privilege", small)
    assert list(tmp_path.iterdir()) == []


def test_url_without_database(tmp_path):
    _one_line(_cli("backup", url_for("").rstrip("/"), "-o", str(tmp_path)), 2, "names no database")


def test_password_from_file_and_environment(databases, small, tmp_path):
    user = databases.user(SECRET, f"SELECT, SHOW VIEW ON `{small}`.*")
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    by_file = _cli("backup", url_for(small, user=user), "--password-file", str(secret_file), "-o", str(tmp_path / "a"))
    assert by_file.returncode == 0, by_file.stderr
    by_env = _cli("backup", url_for(small, user=user), "-o", str(tmp_path / "b"), env={"MYSQL_PWD": SECRET})
    assert by_env.returncode == 0, by_env.stderr
    for run in (by_file, by_env):
        path = Path(run.stdout.strip().splitlines()[-1])
        data = zstandard.ZstdDecompressor().stream_reader(path.open("rb")).read()
        assert SECRET.encode() not in data
        assert SECRET not in run.stdout + run.stderr
        info = _cli("info", str(path))
        assert info.returncode == 0 and f"mysql://{user}@" in info.stdout and SECRET not in info.stdout
    _one_line(_cli("backup", url_for(small, user=user), "--password-file", str(tmp_path / "missing"), "-o", str(tmp_path)), 2, "password file")


def test_what_the_user_may_not_read_is_reported_not_dropped(service, databases, small, tmp_path):
    user = databases.user(SECRET, f"SELECT ON `{small}`.*")  # no SHOW VIEW: the view's definition is hidden
    result = service.create_backup(url_for(small, user=user, password=SECRET), tmp_path)
    header = service.inspect_backup(result.path).header
    assert any("view v" in item for item in header.schema.settings["not_backed_up"])
    target = databases.new("small_copy", create=False)
    restored = service.restore_backup(result.path, url_for(target))
    assert any(item.startswith("not in the backup: view v") for item in restored.skipped)


def _corrupt_last_table(path: str) -> Path:
    """A copy of the backup in which a row of the last table was changed (its digest no longer matches)."""
    data = zstandard.ZstdDecompressor().stream_reader(open(path, "rb")).read()
    lines = data.split(b"\n")
    last_table = max(i for i, line in enumerate(lines) if line.startswith(b'{"type":"table"'))
    lines[last_table + 1] = lines[last_table + 1].replace(b"1", b"7", 1)
    broken = Path(path).with_name("broken.ubk.jsonl.zst")
    broken.write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(lines)))
    return broken


def test_a_backup_that_fails_validation_leaves_nothing(service, databases, small, tmp_path):
    result = service.create_backup(url_for(small), tmp_path)
    broken = _corrupt_last_table(result.path)

    new_target = databases.new("never", create=False)
    with pytest.raises(CorruptBackupError):
        service.restore_backup(broken, url_for(new_target))
    assert not database_exists(new_target)  # the restore created it, so it dropped it again

    empty_target = databases.new("empty")
    with pytest.raises(CorruptBackupError):
        service.restore_backup(broken, url_for(empty_target))
    assert database_exists(empty_target)
    with Inspector(empty_target) as inspector:
        assert inspector.rows("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (empty_target,))[0][0] == 0

    cli = _cli("restore", str(broken), url_for(new_target))
    _one_line(cli, 3)
    assert not database_exists(new_target)


def test_a_value_the_target_refuses_stops_the_restore_cleanly(service, databases, tmp_path):
    """MariaDB reports ENUM labels beyond U+FFFF as '?', so such a label cannot be recreated:
    the restore fails on the value (strict mode), never stores something else."""
    source = databases.new("enum4")
    run_script(source, "CREATE TABLE t (id INT PRIMARY KEY, e ENUM('plain', 'elephant 🐘')) DEFAULT CHARSET=utf8mb4;"
               "INSERT INTO t VALUES (1, 'plain'), (2, 'elephant 🐘');")
    with Inspector(source) as inspector:
        if "?" not in inspector.rows("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 't' AND COLUMN_NAME = 'e'", (source,))[0][0]:
            pytest.skip("this server reports ENUM labels exactly")
    result = service.create_backup(url_for(source), tmp_path)
    target = databases.new("enum4_copy", create=False)
    with pytest.raises(SourceError, match="writing table 't'.*column 'e'"):
        service.restore_backup(result.path, url_for(target))
    assert not database_exists(target)


def test_an_unknown_url_option_is_a_usage_error(service, databases, small, tmp_path):
    """A misspelt option (unix_sockt) must not silently connect through TCP."""
    typo = url_for(small) + ("&" if "?" in url_for(small) else "?") + "unix_sockt=/x"
    line = _one_line(_cli("backup", typo, "-o", str(tmp_path / "out")), 2, "unknown option 'unix_sockt'", "unix_socket, socket")
    assert "/x" not in line.split("'unix_sockt'")[0]
    _one_line(_cli("check", typo), 2, "unix_sockt")
    backup = service.create_backup(url_for(small), tmp_path).path
    target = databases.new("typo", create=False)
    _one_line(_cli("restore", backup, url_for(target) + "?sockett=/x"), 2, "unknown option 'sockett'")
    assert not database_exists(target)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_row_larger_than_max_allowed_packet_is_one_clear_line(databases, make_db, tmp_path):
    with Inspector(databases.new("packet")) as inspector:
        packet = inspector.rows("SELECT @@max_allowed_packet")[0][0]
    path = make_db("CREATE TABLE big (id INTEGER PRIMARY KEY, v BLOB);", inserts=[
        ("INSERT INTO big VALUES (?, ?)", [(1, b"small"), (2, b"x" * (packet + 1))]),
    ])
    backup = _cli("backup", str(path), "-o", str(tmp_path / "out"))
    assert backup.returncode == 0, backup.stderr
    target = databases.new("packet_copy", create=False)
    run = _cli("restore", backup.stdout.strip().splitlines()[-1], url_for(target))
    assert run.returncode == 1, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("unibackup: error: ")]
    assert errors == [run.stderr.splitlines()[-1]] and "Traceback" not in run.stderr  # after the fidelity report
    assert "writing table 'big'" in errors[0] and "max_allowed_packet" in errors[0] and "gone away" not in errors[0]
    assert not database_exists(target)


def test_tables_the_user_may_not_see_are_announced(service, databases, small, tmp_path):
    """MySQL hides a table the user has no privilege on (and answers a SELECT of it as of a missing
    table), so it cannot be named; a user without SELECT on the whole database is told so."""
    partial = databases.user(SECRET, f"SELECT ON `{small}`.`t`")
    run = _cli("backup", url_for(small, user=partial, password=SECRET), "-o", str(tmp_path / "partial"))
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "no SELECT privilege on the database" in warnings[0] and small in warnings[0], run.stderr
    header = service.inspect_backup(run.stdout.strip().splitlines()[-1]).header
    assert [table.name for table in header.schema.tables] == ["t"]
    assert any(item.startswith("tables the backup user may not see") for item in header.schema.settings["not_backed_up"])

    whole = databases.user(SECRET, f"SELECT, SHOW VIEW ON `{small}`.*")
    run = _cli("backup", url_for(small, user=whole, password=SECRET), "-o", str(tmp_path / "whole"))
    assert run.returncode == 0 and "WARNING" not in run.stderr, run.stderr
