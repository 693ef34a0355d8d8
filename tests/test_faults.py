"""Fault injection: the process killed, the disk full, the database locked, a restore killed.

Each test runs the real command line in a child process and does to it what a bad day does;
then it checks that no data was lost: never a file under a final backup name that fails
verification, earlier backups untouched, leftovers removed by the next run, a restore target as
it was. The counts are printed (``FAULTS ...`` lines) for the record.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from unibackup.config import parse_config
from unibackup.files import is_backup_name
from unibackup.manager import get_plugin_manager
from unibackup.resources import find_leftovers
from unibackup.service import BackupService

pytestmark = pytest.mark.slow

#: Settings that stretch a small backup over about two seconds without using the CPU.
SLOW_BACKUP = """
[backup]
batching = "fixed"
[batching]
batch_rows = 250
delay = 0.015
"""


def report(request: pytest.FixtureRequest, line: str) -> None:
    """Print a ``FAULTS`` line in the test output, past the output capture (for the record)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:  # pragma: no cover
        print(f"FAULTS {line}")
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"FAULTS {line}")


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a ``unibackup`` child: default plugins only, the test's cache and history."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIBACKUP_")}
    for key in ("UNIBACKUP_CACHE_DIR", "UNIBACKUP_HISTORY_FILE"):
        if key in os.environ:
            env[key] = os.environ[key]
    env["UNIBACKUP_LOAD_PLUGINS"] = ""
    env.update(extra)
    return env


def unibackup(*args: str, prelude: str = "", **popen: Any) -> subprocess.Popen:
    """Start ``unibackup ARGS`` in a child; ``prelude`` is Python run first (to plant a fault)."""
    code = f"import sys\n{prelude}\nfrom unibackup.cli import main\nsys.argv[0] = 'unibackup'\nmain({list(args)!r})\n"
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(), **popen)


def make_source(path: Path, tables: int = 4, rows: int = 5000) -> Path:
    conn = sqlite3.connect(path)
    for t in range(tables):
        conn.execute(f"CREATE TABLE t{t}(id INTEGER PRIMARY KEY, name TEXT, value REAL, data BLOB)")
        conn.executemany(
            f"INSERT INTO t{t}(name, value, data) VALUES (?, ?, ?)",
            [(f"row {i} of table {t}", i / 3, bytes([i % 256]) * 40) for i in range(rows)],
        )
    conn.execute("CREATE INDEX t0_name ON t0(name)")
    conn.commit()
    conn.close()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def service_for(config_text: str = "") -> BackupService:
    import tomllib

    return BackupService(parse_config(tomllib.loads(config_text)), get_plugin_manager(load_entrypoints=False))


def final_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if is_backup_name(p.name))


def temporaries(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.endswith(".tmp"))


# -- SIGKILL during a backup ---------------------------------------------------------------------

#: Python run in the child before the command: SIGKILL itself at a precise point of the pipeline.
KILL_POINTS: dict[str, str] = {
    "in preflight": "import unibackup.service as s\n_f = s.run_preflight\ndef run_preflight(*a, **k):\n    kill()\ns.run_preflight = run_preflight",
    "removing leftovers": "import unibackup.service as s\ndef remove_leftovers(*a, **k):\n    kill()\ns.remove_leftovers = remove_leftovers",
    "after the header": "import unibackup.format as f\n_f = f.BackupWriter.begin_table\ndef begin_table(self, t):\n    kill()\nf.BackupWriter.begin_table = begin_table",
    "writing the trailer": "import unibackup.format as f\ndef write_trailer(self):\n    kill()\nf.BackupWriter.write_trailer = write_trailer",
    "before fsync": "import os\ndef fsync(fd):\n    kill()\nos.fsync = fsync",
    "after the final link": "import os\n_link = os.link\ndef link(a, b):\n    _link(a, b)\n    kill()\nos.link = link",
    "after publishing, before the directory fsync": "import unibackup.files as f\ndef fsync_directory(d):\n    kill()\nf.fsync_directory = fsync_directory",
}
_KILL = "import os, signal\ndef kill():\n    os.kill(os.getpid(), signal.SIGKILL)\n"


def check_directory(service: BackupService, directory: Path, earlier: dict[Path, str]) -> tuple[int, int]:
    """Every final-named file verifies; earlier backups are byte for byte as they were.

    Returns (new complete backups, temporary leftovers)."""
    for path, sha in earlier.items():
        assert path.exists() and digest(path) == sha, f"{path.name} was harmed"
    new = 0
    for path in final_files(directory):
        if path in earlier:
            continue
        checked = service.verify_backup(path, "full")
        assert checked.valid, f"{path.name} has a final name and fails verification: {checked.findings}"
        new += 1
    return new, len(temporaries(directory))


def test_sigkill_during_backup_never_leaves_a_bad_final_file(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    source = make_source(tmp_path / "shop.db", rows=2500)
    config = tmp_path / "slow.toml"
    config.write_text(SLOW_BACKUP)
    out = tmp_path / "backups"
    service = service_for()
    first = Path(service.create_backup(str(source), out).path)
    earlier = {first: digest(first)}

    # how long a whole run takes, to spread the kills over it
    started = time.monotonic()
    whole = unibackup("--config", str(config), "-q", "backup", str(source), "-o", str(out))
    assert whole.wait(60) == 0, whole.stderr.read()
    duration = time.monotonic() - started
    made = final_files(out)
    earlier.update({p: digest(p) for p in made if p not in earlier})

    runs = killed = completed = 0
    leftovers: set[str] = set()
    timed = 20
    moments = [0.05 + duration * 0.95 * i / (timed - 1) for i in range(timed)]
    for moment in moments:
        child = unibackup("--config", str(config), "-q", "backup", str(source), "-o", str(out))
        time.sleep(moment)
        child.send_signal(signal.SIGKILL)
        code = child.wait(60)
        runs += 1
        killed += code == -signal.SIGKILL
        completed += code == 0
        check_directory(service, out, earlier)
        leftovers.update(p.name for p in temporaries(out))
        earlier.update({p: digest(p) for p in final_files(out) if p not in earlier})
    for point, prelude in KILL_POINTS.items():
        child = unibackup("--config", str(config), "-q", "backup", str(source), "-o", str(out), prelude=_KILL + prelude)
        code = child.wait(60)
        runs += 1
        assert code == -signal.SIGKILL, f"{point}: {child.stderr.read()}"
        killed += 1
        check_directory(service, out, earlier)
        leftovers.update(p.name for p in temporaries(out))
        earlier.update({p: digest(p) for p in final_files(out) if p not in earlier})

    assert killed >= 20
    # the next run removes what the killed ones left, and succeeds
    result = service.create_backup(str(source), out)
    assert temporaries(out) == [] and find_leftovers(out) == []
    check_directory(service, out, {**earlier, Path(result.path): digest(Path(result.path))})
    report(
        request,
        f"backup SIGKILL: {runs} runs ({timed} at timed moments over {duration:.1f} s, {len(KILL_POINTS)} at pipeline points), "
        f"{killed} killed, {completed} finished first; {len(final_files(out))} final files, all valid, earlier ones unchanged; "
        f"{len(leftovers)} temporary leftovers seen, all removed by later runs",
    )


# -- the target fills up ---------------------------------------------------------------------


def test_a_file_size_limit_hit_mid_backup_fails_cleanly(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """RLIMIT_FSIZE in the child: past the limit every write fails with EFBIG, as on a full disk."""
    source = make_source(tmp_path / "big.db", tables=2, rows=4000)
    out = tmp_path / "backups"
    service = service_for()
    earlier = Path(service.create_backup(str(source), out, compression="none").path)
    assert earlier.stat().st_size > 400_000
    (out / "notes.txt").write_text("not a backup; must survive\n")
    before = {p.name: digest(p) for p in out.iterdir()}
    limit = 150_000  # the uncompressed backup is several times that

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    child = unibackup("backup", str(source), "-o", str(out), "--compression", "none", preexec_fn=small_files)
    code = child.wait(60)
    stderr = child.stderr.read()
    lines = stderr.strip().splitlines()
    assert code == 1, stderr
    assert lines == ["unibackup: error: the file grew past the size limit of this system; choose another output directory"]
    assert {p.name: digest(p) for p in out.iterdir()} == before  # no partial file, nothing else touched
    report(request, f"file-size limit: backup of {earlier.stat().st_size} bytes into a {limit}-byte limit: exit {code}, {lines[0]!r}; directory unchanged")


def test_no_space_left_mid_backup_fails_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC from a write in the middle of the file (the disk of the output directory is full)."""
    import errno

    from unibackup.errors import UnibackupError
    from unibackup.files import SealingWriter

    source = make_source(tmp_path / "db.db", tables=2, rows=3000)
    out = tmp_path / "backups"
    service = service_for()
    earlier = Path(service.create_backup(str(source), out).path)
    before = {p.name: digest(p) for p in out.iterdir()}
    written = {"bytes": 0}
    real_write = SealingWriter.write

    def write(self: SealingWriter, data: Any) -> int:
        written["bytes"] += len(data)
        if written["bytes"] > 20_000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, data)

    monkeypatch.setattr(SealingWriter, "write", write)
    with pytest.raises(UnibackupError) as raised:
        service.create_backup(str(source), out, compression="none")
    assert raised.value.exit_code == 1
    assert raised.value.user_line() == "no space left on the device; free some space or choose another output directory"
    assert {p.name: digest(p) for p in out.iterdir()} == before and earlier.exists()


# -- a locked database -----------------------------------------------------------------------


def hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    """A child holding an EXCLUSIVE lock on ``path`` for ``seconds``; returns once it holds it."""
    code = (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        f"time.sleep({seconds})\n"
        "c.execute('COMMIT')\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    return child


def test_a_database_locked_for_a_few_seconds_is_backed_up_after_retries(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from unibackup.events import Event, EventListener

    class Retries(EventListener):
        name = "retries"

        def __init__(self) -> None:
            super().__init__()
            self.events: list[Event] = []

        def handle(self, event: Event) -> None:
            if event.kind == "retry":
                self.events.append(event)

    source = make_source(tmp_path / "locked.db", tables=1, rows=1000)
    listener = Retries()
    service = BackupService(parse_config({}), get_plugin_manager(load_entrypoints=False), listeners=[listener])
    locker = hold_lock(source, 2.5)
    try:
        started = time.monotonic()
        result = service.create_backup(str(source), tmp_path / "out")
        elapsed = time.monotonic() - started
    finally:
        locker.wait(30)
    assert service.verify_backup(result.path).valid and result.trailer.rows == 1000
    assert listener.events, "the lock should have made at least one attempt fail"
    assert elapsed >= 2.0
    attempts = [e.details["attempt"] for e in listener.events]
    report(
        request,
        f"database locked 2.5 s: backup succeeded after {len(attempts) + 1} connection attempts "
        f"({len(attempts)} retry events) in {elapsed:.1f} s",
    )


def test_a_database_locked_longer_than_the_retry_budget_fails_with_the_count(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Default settings: 5 attempts (1 s busy timeout each) with backoff, then one clear line."""
    source = make_source(tmp_path / "x.db", tables=1, rows=100)
    out = tmp_path / "out"
    locker = hold_lock(source, 30)
    try:
        started = time.monotonic()
        child = unibackup("backup", str(source), "-o", str(out))
        code = child.wait(60)
        elapsed = time.monotonic() - started
    finally:
        locker.kill()
        locker.wait()
    stderr = child.stderr.read()
    lines = stderr.strip().splitlines()
    assert code == 1, stderr
    final = lines[-1]
    assert final.startswith("unibackup: error: the database 'x.db' is locked by another process; tried 5 times over "), final
    assert final.endswith(" s; try again or raise retry.connect.max_attempts / max_elapsed"), final
    retried = [line for line in lines[:-1] if "retrying in" in line]
    assert len(retried) == 4 and all(line.startswith("unibackup: WARNING: connect failed (attempt ") for line in retried)
    assert len(lines) == 5 and "Traceback" not in stderr
    assert not out.exists() or list(out.iterdir()) == []
    report(request, f"database locked for longer than the budget: exit {code} after {elapsed:.1f} s: {final!r}")


# -- SIGKILL during a restore ----------------------------------------------------------------


def table_rows(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}
    finally:
        conn.close()


RESTORE_KILL_POINTS: dict[str, str] = {
    "creating the schema": "import unibackup.plugins.sqlite as s\ndef create_schema(self, plan):\n    kill()\ns.SQLiteSource.create_schema = create_schema",
    "before commit": "import unibackup.plugins.sqlite as s\ndef commit(self):\n    kill()\ns.SQLiteSource.commit = commit",
    "committed, before the file replaces the target": "import os\ndef replace(a, b):\n    kill()\nos.replace = replace",
}


#: rows enough that a restore is still running at the latest timed kill (0.6 s in), with room for
#: a fast machine: about 1.2 s of restore here
RESTORE_ROWS = 1_000_000


def test_sigkill_during_restore_leaves_the_target_as_it_was(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    source = tmp_path / "source.db"
    conn = sqlite3.connect(source)
    conn.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, name TEXT, v REAL)")
    conn.executemany("INSERT INTO big(name, v) VALUES (?, ?)", ((f"name {i}", i / 2) for i in range(RESTORE_ROWS)))
    conn.commit()
    conn.close()
    service = service_for()
    backup = service.create_backup(str(source), tmp_path / "backups").path
    target = tmp_path / "target" / "live.db"
    target.parent.mkdir()
    conn = sqlite3.connect(target)
    conn.execute("CREATE TABLE precious(x)")
    conn.executemany("INSERT INTO precious VALUES (?)", [(i,) for i in range(100)])
    conn.commit()
    conn.close()
    original = digest(target)

    def temporaries_of_target() -> list[Path]:
        return [p for p in target.parent.iterdir() if p.name.startswith(".live.db.unibackup-")]

    runs = 0
    for offset in (0.0, 0.1, 0.25, 0.4, 0.6):
        child = unibackup("restore", backup, str(target), "--force")
        deadline = time.monotonic() + 20
        while not temporaries_of_target() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(offset)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        runs += 1
        assert digest(target) == original, f"killed {offset} s into the restore, the target changed"
    for point, prelude in RESTORE_KILL_POINTS.items():
        child = unibackup("restore", backup, str(target), "--force", prelude=_KILL + prelude)
        assert child.wait(60) == -signal.SIGKILL, f"{point}: {child.stderr.read()}"
        runs += 1
        assert digest(target) == original, f"killed {point}, the target changed"
    assert table_rows(target) == {"precious": 100}
    left = len(temporaries_of_target())
    # the next restore removes the leftovers of the killed ones and replaces the target
    service.restore_backup(backup, str(target), force=True)
    assert temporaries_of_target() == []
    assert table_rows(target) == {"big": RESTORE_ROWS}
    report(request, f"restore SIGKILL: {runs} runs killed ({runs - len(RESTORE_KILL_POINTS)} timed, {len(RESTORE_KILL_POINTS)} at pipeline points); target unchanged every time; {left} leftovers removed by the next restore")
