"""PostgreSQL failures as a user meets them: one line on stderr, the documented exit code, no
password anywhere, no backup file that looks complete but is not, no half-restored target."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import pytest

from pg_support import (  # noqa: F401  (fixtures)
    Databases,
    admin_connect,
    cli,
    empty_config,
    databases,
    iter_lines,
    make_service,
    pagila,
    pg_server,
    run_sql,
    table_fingerprints,
    unique_name,
    url_for,
)
from unibackup.errors import UnibackupError
from unibackup.events import EventListener

pytestmark = pytest.mark.postgres


def assert_one_line_failure(result, code: int, *fragments: str) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("unibackup: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


class FakeServer:
    """Speaks just enough of the PostgreSQL protocol to ask for a password and refuse it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.passwords: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read(self, conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    self._session(conn)
                except (ConnectionError, OSError, struct.error):
                    pass

    def _session(self, conn: socket.socket) -> None:
        while True:
            length, code = struct.unpack("!ii", self._read(conn, 8))
            if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: not here
                conn.sendall(b"N")
                continue
            self._read(conn, length - 8)
            break
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        kind, length = struct.unpack("!ci", self._read(conn, 5))
        self.passwords.append(self._read(conn, length - 4).rstrip(b"\0").decode())
        fields = b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"alice\"\0\0"
        conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def fake_server():
    server = FakeServer()
    yield server
    server.close()


def test_wrong_password(fake_server: FakeServer, tmp_path: Path) -> None:
    secret = "wrong-Pa55word-in-url"
    result = cli("backup", f"postgresql://alice:{secret}@127.0.0.1:{fake_server.port}/db", "-o", str(tmp_path))
    line = assert_one_line_failure(result, 1, "refused the password", "'alice'")
    assert secret not in result.stdout + result.stderr
    assert fake_server.passwords[-1] == secret
    assert not list(tmp_path.iterdir())


def test_password_file_and_pgpassword(fake_server: FakeServer, tmp_path: Path) -> None:
    password_file = tmp_path / "pw"
    password_file.write_text("from-the-file\n")
    out = tmp_path / "out"
    url = f"postgresql://alice@127.0.0.1:{fake_server.port}/db"
    result = cli("backup", url, "--password-file", str(password_file), "-o", str(out))
    assert_one_line_failure(result, 1, "refused the password")
    assert fake_server.passwords[-1] == "from-the-file"
    assert "from-the-file" not in result.stdout + result.stderr
    result = cli("backup", url, "-o", str(out), env={"PGPASSWORD": "from-the-environment"})
    assert_one_line_failure(result, 1, "refused the password")
    assert fake_server.passwords[-1] == "from-the-environment"
    result = cli("backup", url, "--password-file", str(tmp_path / "missing"), "-o", str(out))
    assert_one_line_failure(result, 2, "password file")


def test_wrong_host_port_and_database(pg_server: str, tmp_path: Path) -> None:
    assert_one_line_failure(cli("backup", "postgresql://postgres@no-such-host.invalid/db", "-o", str(tmp_path)), 1, "cannot resolve")
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert_one_line_failure(cli("backup", f"postgresql://postgres@127.0.0.1:{port}/db", "-o", str(tmp_path)), 1, "connection refused")
    missing = unique_name("missing")
    assert_one_line_failure(cli("backup", url_for(missing), "-o", str(tmp_path)), 1, f"{missing!r} does not exist")
    assert_one_line_failure(cli("backup", url_for("") , "-o", str(tmp_path)), 2, "names no database")
    assert not list(tmp_path.iterdir())


def test_missing_privilege(databases: Databases, tmp_path: Path) -> None:
    name = databases.new("privilege")
    role = unique_name("role")
    run_sql(name, "CREATE TABLE secret (id int); INSERT INTO secret VALUES (1)")
    with admin_connect() as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        url = url_for(name).replace("//postgres@", f"//{role}@", 1) if "//postgres@" in url_for(name) else None
        if url is None:
            pytest.skip("the test server URL does not name the postgres user")
        line = assert_one_line_failure(cli("backup", url, "-o", str(tmp_path)), 1, "missing privilege", "secret")
        assert role in url and "Traceback" not in line
    finally:
        databases.drop_all()
        with admin_connect() as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_password_never_in_output_or_file(pagila: str, tmp_path: Path) -> None:
    secret = "Sup3r-secret-value"
    url = url_for(pagila).replace("//postgres@", f"//postgres:{secret}@", 1)
    if secret not in url:
        pytest.skip("the test server URL does not name the postgres user")
    result = cli("backup", url, "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip().splitlines()[-1]
    assert secret not in result.stdout + result.stderr
    assert all(secret.encode() not in line for line in iter_lines(path))
    result = cli("info", path)
    assert secret not in result.stdout + result.stderr


class KillOnce(EventListener):
    """Terminates the backup's connection from another session after its first batch."""

    name = "kill-once"

    def __init__(self, database: str):
        super().__init__()
        self.database = database
        self.killed = 0
        self.retries = 0

    def handle(self, event) -> None:
        if event.kind == "retry":
            self.retries += 1
        if event.kind == "batch_written" and event.operation == "backup" and not self.killed:
            with admin_connect() as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                    "WHERE datname = %s AND application_name = 'unibackup' AND pid <> pg_backend_pid()",
                    (self.database,),
                )
            self.killed += 1


def _service_with(listener, **config):
    from unibackup.config import parse_config
    from unibackup.manager import get_plugin_manager
    from unibackup.service import BackupService

    return BackupService(parse_config(config), get_plugin_manager(load_entrypoints=False), listeners=[listener])


def test_terminated_backend_is_retried(pagila: str, tmp_path: Path) -> None:
    listener = KillOnce(pagila)
    service = _service_with(listener, batching={"batch_rows": 100}, retry={"read": {"base_delay": 0.01}})
    result = service.create_backup(url_for(pagila), tmp_path, batching="fixed")
    assert listener.killed == 1 and listener.retries >= 1
    assert make_service().verify_backup(result.path, "full").valid
    assert [p.name for p in tmp_path.iterdir()] == [Path(result.path).name]
    undisturbed = make_service().create_backup(url_for(pagila), tmp_path / "undisturbed")
    assert result.trailer.rows == undisturbed.trailer.rows


def test_terminated_backend_without_retries_leaves_nothing(pagila: str, tmp_path: Path) -> None:
    listener = KillOnce(pagila)
    service = _service_with(listener, batching={"batch_rows": 100}, retry={"read": {"max_attempts": 1}})
    with pytest.raises(UnibackupError) as raised:
        service.create_backup(url_for(pagila), tmp_path, batching="fixed")
    assert "connection to PostgreSQL was lost" in raised.value.user_line()
    assert "\n" not in raised.value.user_line()
    assert list(tmp_path.iterdir()) == []


def test_non_empty_target_and_force(pagila: str, databases: Databases, tmp_path: Path) -> None:
    result = cli("backup", url_for(pagila), "-o", str(tmp_path))
    path = result.stdout.strip().splitlines()[-1]
    target = databases.new("force")
    run_sql(target, "CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (42)")
    assert_one_line_failure(cli("restore", path, url_for(target)), 2, "not empty", "--force")
    # a backup that turns out damaged half way: the forced restore rolls back, the old contents stay
    damaged = tmp_path / "damaged.ubk.jsonl.zst"
    data = Path(path).read_bytes()
    damaged.write_bytes(data[: len(data) * 2 // 3])
    result = cli("restore", str(damaged), url_for(target), "--force")
    assert result.returncode == 3, result.stderr
    assert run_sql(target, "SELECT id FROM keep_me") == [(42,)]
    result = cli("restore", path, url_for(target), "--force")
    assert result.returncode == 0, result.stderr
    assert run_sql(target, "SELECT to_regclass('public.keep_me')") == [(None,)]
    assert table_fingerprints(target) == table_fingerprints(pagila)


def test_failed_restore_drops_the_database_it_created(pagila: str, databases: Databases, tmp_path: Path) -> None:
    path = make_service().create_backup(url_for(pagila), tmp_path).path
    damaged = tmp_path / "damaged.ubk.jsonl.zst"
    data = Path(path).read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    target = databases.adopt(unique_name("created"))
    result = cli("restore", str(damaged), url_for(target))
    assert result.returncode == 3, result.stderr
    assert run_sql("postgres", "SELECT count(*) FROM pg_database WHERE datname = %s", (target,)) == [(0,)]


def test_missing_driver_says_what_to_install(tmp_path: Path) -> None:
    """Without psycopg, a postgresql:// URL is one usage line naming both ways to install it."""
    import os
    import subprocess
    import sys

    code = "import sys; sys.modules['psycopg'] = None; from unibackup.cli import main; sys.argv[0] = 'unibackup'; main()"
    env = {**os.environ, "UNIBACKUP_CONFIG": empty_config()}
    result = subprocess.run(
        [sys.executable, "-c", code, "backup", "postgresql://nobody@127.0.0.1:1/none", "-o", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    line = assert_one_line_failure(result, 2, "PostgreSQL support needs the psycopg driver")
    assert "pip install 'unibackup[postgresql]'" in line
    assert "(or pip install '.[postgresql]' from a source checkout)" in line


@pytest.fixture
def login_role(pg_server: str):
    """A role that logs in (trust authentication) with no privileges, dropped at the end."""
    role = unique_name("role")
    if "//postgres@" not in url_for("x"):
        pytest.skip("the test server URL does not name the postgres user")
    with admin_connect() as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield role
    finally:
        with admin_connect() as conn:  # the test dropped the databases holding its grants
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def as_role(url: str, role: str) -> str:
    return url.replace("//postgres@", f"//{role}@", 1)


def test_backup_needs_privileges_only_on_what_it_holds(databases: Databases, login_role: str, tmp_path: Path) -> None:
    name = databases.new("partial_privilege")
    run_sql(name, f"""
        CREATE TABLE dup (id serial PRIMARY KEY, v text); INSERT INTO dup (v) VALUES ('a'), ('b');
        CREATE TABLE t (id serial, v text); INSERT INTO t (v) VALUES ('x');
        CREATE TABLE big (id bigint); INSERT INTO big SELECT generate_series(1, 100);
        CREATE VIEW dup_view AS SELECT v FROM dup;
        GRANT SELECT ON public.dup, public.dup_id_seq TO "{login_role}";
    """)
    url = as_role(url_for(name), login_role)
    try:
        result = cli("backup", url + "?schema=public", "--table", "dup", "-o", str(tmp_path))
        assert result.returncode == 0, result.stderr
        path = result.stdout.strip().splitlines()[-1]
        header = make_service().inspect_backup(path).header
        assert [t.name for t in header.schema.tables] == ["dup"]
        sequences = {o.name: o.options for o in header.schema.objects if o.kind == "sequence"}
        assert (sequences["dup_id_seq"]["last_value"], sequences["dup_id_seq"]["is_called"]) == (2, True)
        assert "last_value" not in sequences["t_id_seq"]  # the user may not read it, and the backup does not need it
        target = databases.new("partial_restored", create=False)
        assert cli("restore", path, url_for(target)).returncode == 0
        assert run_sql(target, "SELECT v FROM dup ORDER BY id") == [("a",), ("b",)]
        assert run_sql(target, "SELECT nextval('dup_id_seq')") == [(3,)]
        # a table asked for that the user may not read: one line naming it and the privilege
        result = cli("backup", url, "--table", "dup", "--table", "big", "-o", str(tmp_path / "denied"))
        assert_one_line_failure(result, 1, "'public.big'", "SELECT privilege", login_role)
        # the whole database: the first table it may not read
        assert_one_line_failure(cli("backup", url, "-o", str(tmp_path / "all")), 1, "'public.big'", "SELECT privilege")
    finally:
        databases.drop_all()


def test_restore_without_createdb_says_so(pagila: str, databases: Databases, login_role: str, tmp_path: Path) -> None:
    path = make_service().create_backup(url_for(pagila), tmp_path).path
    target = databases.adopt(unique_name("no_createdb"))
    result = cli("restore", path, as_role(url_for(target), login_role))
    line = assert_one_line_failure(result, 1, "permission denied to create database", "CREATEDB", "create the database first")
    assert "SELECT" not in line
    assert run_sql("postgres", "SELECT count(*) FROM pg_database WHERE datname = %s", (target,)) == [(0,)]


class KillRestore(EventListener):
    """Terminates the restore's connection from another session after the first batch of a
    large table, so that the COPY still open finds the connection lost while it writes."""

    name = "kill-restore"

    def __init__(self, database: str):
        super().__init__()
        self.database = database
        self.killed = 0

    def handle(self, event) -> None:
        if event.kind == "batch_written" and event.operation == "restore" and event.table == "public.rental" and not self.killed:
            with admin_connect() as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.database,),
                )
            self.killed += 1


def test_terminated_restore_is_one_message(pagila: str, databases: Databases, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = make_service(batching={"batch_rows": 100}).create_backup(url_for(pagila), tmp_path, batching="fixed").path
    target = databases.new("killed_restore")
    listener = KillRestore(target)
    with caplog.at_level("WARNING"), pytest.raises(UnibackupError) as raised:
        _service_with(listener, batching={"batch_rows": 100}).restore_backup(path, url_for(target))
    assert listener.killed == 1
    assert "connection to PostgreSQL was lost" in raised.value.user_line()
    # psycopg logs "error ignored terminating <psycopg.Copy [BAD]>" when asked to end a COPY on a
    # lost connection: that would be a second line on stderr
    assert [record.getMessage() for record in caplog.records] == []
