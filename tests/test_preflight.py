"""Preflight and health checks before a backup, their cache, ``unibackup check``, and graceful
degradation when a plugin is missing."""

from __future__ import annotations

import errno
import importlib.metadata
import json
import logging
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from unibackup.cli import main
from unibackup.config import parse_config
from unibackup.errors import PluginError, PreflightError, SourceError, UsageError
from unibackup.events import Event, EventListener
from unibackup.manager import get_plugin_manager
from unibackup.plugins.sqlite import SQLiteSource
from unibackup.preflight import CACHE_DIR_ENV, cache_path
from unibackup.service import BackupService

CHECKS = ["source", "health", "output directory", "disk space", "memory"]


def make_service(settings: dict[str, Any] | None = None, **host: Any) -> BackupService:
    return BackupService(parse_config(settings or {}), get_plugin_manager(load_entrypoints=False, **host))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("CREATE INDEX t_v ON t(v)")
    conn.executemany("INSERT INTO t(v) VALUES (?)", [(f"value {i}",) for i in range(2000)])
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def damaged(source: Path) -> Path:
    """A database that opens and reads, but whose last b-tree page is broken (quick_check says so)."""
    data = bytearray(source.read_bytes())
    page = 4096
    last = len(data) // page - 1
    data[last * page + 8 : last * page + 40] = b"\xff" * 32
    source.write_bytes(bytes(data))
    return source


@pytest.fixture
def health_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the health checks run (the slow part that the cache saves)."""
    calls: list[str] = []
    real = SQLiteSource.health_check

    def counted(self: SQLiteSource) -> list[str]:
        calls.append(self.path)
        return real(self)

    monkeypatch.setattr(SQLiteSource, "health_check", counted)
    return calls


def test_all_checks_pass_for_a_healthy_source(source: Path, tmp_path: Path) -> None:
    report = make_service().check_source(str(source), tmp_path / "out")
    assert [c.name for c in report.checks] == CHECKS
    assert report.ok and report.failed == ()
    assert report.source == f"sqlite:///{str(source).lstrip('/')}"
    assert 0 < report.estimated_backup_bytes < 10 * report.source_bytes
    assert "does not exist yet" in report.checks[2].detail and not (tmp_path / "out").exists()


def test_a_damaged_database_stops_the_backup_before_any_work(damaged: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    service = make_service()
    report = service.check_source(str(damaged), out)
    health = report.checks[1]
    assert not health.ok and health.detail.startswith("the source fails its health check: On tree page ")
    assert "(and " in health.detail and "\n" not in health.detail
    with pytest.raises(PreflightError) as raised:
        service.create_backup(str(damaged), out)
    assert raised.value.exit_code == 1
    assert raised.value.user_line().startswith("preflight check 'health' failed: the source fails its health check: On tree page ")
    assert not out.exists()  # nothing written, not even the directory it would have made
    # without the checks the backup runs (and copes as it can)
    assert make_service({"preflight": {"enabled": False}}).create_backup(str(damaged), tmp_path / "unchecked")


def test_a_source_that_cannot_be_read_fails_with_its_own_error(tmp_path: Path) -> None:
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_bytes(b"SQLite format 3\x00" + b"\x07" * 5000)
    with pytest.raises((SourceError, UsageError)) as raised:
        make_service().create_backup(str(not_a_db), tmp_path / "out")
    assert "notes.db" in raised.value.user_line()
    with pytest.raises(UsageError, match="does not exist"):
        make_service().check_source(str(tmp_path / "missing.db"))


def test_not_enough_disk_space_for_the_estimate(source: Path, tmp_path: Path) -> None:
    service = make_service({"preflight": {"space_margin": 1e15}})
    out = tmp_path / "out"
    with pytest.raises(PreflightError) as raised:
        service.create_backup(str(source), out)
    line = raised.value.user_line()
    assert line.startswith("preflight check 'disk space' failed: ") and "MiB free in" in line and "the backup needs about" in line
    assert line.endswith("nothing was written; fix it, or set preflight.enabled = false to skip the checks")
    assert not out.exists() or list(out.iterdir()) == []


def test_not_enough_memory(source: Path, tmp_path: Path) -> None:
    service = make_service({"preflight": {"min_free_memory_mb": 10**9}})
    with pytest.raises(PreflightError, match="preflight check 'memory' failed: .* MiB of memory available, preflight.min_free_memory_mb asks for 1000000000 MiB"):
        service.create_backup(str(source), tmp_path / "out")
    # disabled, the same settings let it run
    assert make_service({"preflight": {"enabled": False, "min_free_memory_mb": 10**9}}).create_backup(str(source), tmp_path / "out")


def test_an_output_directory_that_takes_no_file(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any) -> int:
        if ".preflight.unibackup-" in str(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    out = tmp_path / "out"
    out.mkdir()
    report = make_service().check_source(str(source), out)
    assert [c.name for c in report.failed] == ["output directory"]
    assert "the file system is read-only" in report.checks[2].detail
    with pytest.raises(PreflightError, match="preflight check 'output directory' failed"):
        make_service().create_backup(str(source), out)
    assert not out.exists() or list(out.iterdir()) == []


def test_source_checks_are_cached_per_source(source: Path, tmp_path: Path, health_checks: list[str]) -> None:
    service = make_service()
    service.create_backup(str(source), tmp_path / "out")
    service.create_backup(str(source), tmp_path / "out")
    service.create_backup(str(source), tmp_path / "out", compression="gzip")  # another estimate: measured again
    assert len(health_checks) == 2
    cached = json.loads(cache_path().read_text())
    entry = cached[f"sqlite:///{str(source).lstrip('/')}"]
    assert set(entry["estimates"]) == {"zstd", "gzip"}
    # the source changed: checked again
    conn = sqlite3.connect(source)
    conn.execute("INSERT INTO t(v) VALUES ('new')")
    conn.commit()
    conn.close()
    service.create_backup(str(source), tmp_path / "out")
    assert len(health_checks) == 3
    # 'unibackup check' always checks afresh
    service.check_source(str(source))
    assert len(health_checks) == 4


def test_the_cache_expires_and_can_be_turned_off(source: Path, tmp_path: Path, health_checks: list[str]) -> None:
    make_service().create_backup(str(source), tmp_path / "out")
    data = json.loads(cache_path().read_text())
    for entry in data.values():
        entry["checked_at"] -= 301  # older than preflight.cache_seconds (300)
    cache_path().write_text(json.dumps(data))
    make_service().create_backup(str(source), tmp_path / "out")
    assert len(health_checks) == 2
    uncached = make_service({"preflight": {"cache_seconds": 0}})
    uncached.create_backup(str(source), tmp_path / "out")
    uncached.create_backup(str(source), tmp_path / "out")
    assert len(health_checks) == 4


def test_failures_are_never_cached(damaged: Path, tmp_path: Path, health_checks: list[str]) -> None:
    for _ in range(2):
        with pytest.raises(PreflightError):
            make_service().create_backup(str(damaged), tmp_path / "out")
    assert len(health_checks) == 2
    assert not cache_path().exists() or json.loads(cache_path().read_text()) == {}


def test_the_cache_is_private_and_where_the_environment_says(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_path() == tmp_path / "xdg" / "unibackup" / "preflight.json"
    old = os.umask(0)
    try:
        make_service().create_backup(str(source), tmp_path / "out")
    finally:
        os.umask(old)
    assert stat.S_IMODE(cache_path().stat().st_mode) == 0o600
    assert stat.S_IMODE(cache_path().parent.stat().st_mode) == 0o700


def test_a_cache_that_is_damaged_or_unwritable_is_ignored(source: Path, tmp_path: Path, health_checks: list[str]) -> None:
    cache_path().parent.mkdir(parents=True, exist_ok=True)
    cache_path().write_text("{not json")
    make_service().create_backup(str(source), tmp_path / "out")
    assert len(health_checks) == 1
    assert json.loads(cache_path().read_text())  # replaced by a good one


# -- unibackup check ------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


@pytest.fixture
def no_plugins_from_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIBACKUP_LOAD_PLUGINS", "")
    monkeypatch.delenv("UNIBACKUP_CONFIG", raising=False)


def test_check_command(source: Path, tmp_path: Path, capsys, no_plugins_from_elsewhere) -> None:
    code, out, err = run_cli(capsys, "check", str(source), "-o", str(tmp_path))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["ok"] * 5
    assert lines[1].startswith("ok      health            no problems found")
    code, out, _ = run_cli(capsys, "check", str(source), "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] is True and [c["name"] for c in data["checks"]] == CHECKS


def test_check_command_failing(damaged: Path, tmp_path: Path, capsys, no_plugins_from_elsewhere) -> None:
    code, out, err = run_cli(capsys, "check", str(damaged), "-o", str(tmp_path))
    assert code == 1
    assert "FAILED  health" in out
    assert err.splitlines() == [f"unibackup: error: sqlite:///{str(damaged).lstrip('/')}: check 'health' failed: " + out.split("FAILED  health            ")[1].splitlines()[0]]
    code, out, err = run_cli(capsys, "check", str(damaged), "--json")
    assert code == 1 and err == "" and json.loads(out)["ok"] is False
    code, out, err = run_cli(capsys, "check", str(tmp_path / "nothing.db"))
    assert code == 2 and err.startswith("unibackup: error: the source ") and out == ""


# -- graceful degradation -----------------------------------------------------------------------


class Warnings(EventListener):
    name = "warnings"

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def handle(self, event: Event) -> None:
        if event.kind == "warning":
            self.messages.append(event.message or "")


def test_a_default_compressor_that_is_blocked_falls_back_with_a_warning(source: Path, tmp_path: Path, caplog) -> None:
    warnings = Warnings()
    config = parse_config({"plugins": {"disable": ["zstd"]}, "backup": {"level": 19}})
    service = BackupService(config, get_plugin_manager(load_entrypoints=False, disabled=config.plugins.disable), listeners=[warnings])
    with caplog.at_level(logging.WARNING, logger="unibackup.service"):
        result = service.create_backup(str(source), tmp_path / "out")
    expected = "the compressor 'zstd' is unavailable: plugin 'zstd' blocked: disabled in config; using the compressor 'gzip' instead"
    assert warnings.messages == [expected]
    assert expected in [r.getMessage() for r in caplog.records]
    assert result.path.endswith(".ubk.jsonl.gz") and result.compression.compressor == "gzip"
    assert result.compression.level == 6  # the default's level (19) is not the fallback's
    assert service.verify_backup(result.path).valid


def test_a_compressor_asked_for_by_name_must_be_there(source: Path, tmp_path: Path) -> None:
    service = make_service(disabled=["brotli"])
    with pytest.raises(PluginError) as raised:
        service.create_backup(str(source), tmp_path / "out", compression="brotli")
    assert raised.value.user_line() == "the compressor 'brotli' is unavailable: plugin 'brotli' blocked: disabled in config"
    assert raised.value.exit_code == 2
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_on_the_command_line(source: Path, tmp_path: Path, capsys, no_plugins_from_elsewhere) -> None:
    config = tmp_path / "unibackup.toml"
    config.write_text('[plugins]\ndisable = ["zstd"]\n')
    code, out, err = run_cli(capsys, "--config", str(config), "backup", str(source), "-o", str(tmp_path / "out"))
    assert code == 0 and out.strip().endswith(".ubk.jsonl.gz")
    assert err.splitlines()[0] == "unibackup: WARNING: the compressor 'zstd' is unavailable: plugin 'zstd' blocked: disabled in config; using the compressor 'gzip' instead"
    code, out, err = run_cli(capsys, "--config", str(config), "backup", str(source), "-o", str(tmp_path / "out"), "--compression", "zstd")
    assert code == 2 and err == "unibackup: error: the compressor 'zstd' is unavailable: plugin 'zstd' blocked: disabled in config\n"


def test_a_plugin_that_failed_to_load(source: Path, tmp_path: Path) -> None:
    """A third-party compressor configured as the default whose package is broken: fall back;
    asked for by name: a clear error naming it and why."""
    broken = importlib.metadata.EntryPoint(name="lz4", value="unibackup_lz4_that_is_not_installed", group="unibackup")
    host = get_plugin_manager(entry_points=[broken])
    assert host.status_of("lz4").status == "failed"
    service = BackupService(parse_config({"backup": {"compression": "lz4"}}), host)
    result = service.create_backup(str(source), tmp_path / "out")
    assert result.compression.compressor == "zstd"
    with pytest.raises(PluginError) as raised:
        service.create_backup(str(source), tmp_path / "out", compression="lz4")
    assert raised.value.user_line().startswith("the compressor 'lz4' is unavailable: plugin 'lz4' failed: ModuleNotFoundError: ")
