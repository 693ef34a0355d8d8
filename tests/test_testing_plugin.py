"""The ``unibackup.testing`` pytest plugin: its fixtures work, and it loads cheaply."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from sqlite_contents import assert_same_database, contents
from unibackup import hookimpl
from unibackup.testing import SAMPLE_TABLES, RoundTrip, make_sample_sqlite_db
from unibackup.validation import ValidationReport, Validator


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("UNIBACKUP_") and key != "PYTEST_ADDOPTS"}


def test_the_plugin_is_loaded_through_its_entry_point(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("unibackup")
    assert plugin is not None and plugin.__name__ == "unibackup.testing"


def test_a_project_without_conftest_gets_the_fixtures(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text(
        textwrap.dedent(
            """
            def test_uses_every_fixture(unibackup_plugin_manager, unibackup_service, sample_sqlite_db, backup_round_trip):
                assert unibackup_service.host is unibackup_plugin_manager
                trip = backup_round_trip(compression="gzip")
                assert trip.backup.is_file() and trip.backup.name.endswith(".ubk.jsonl.gz")
            """
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mine.py"],
        cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_importing_it_does_not_load_the_pipeline() -> None:
    code = (
        "import sys, unibackup.testing\n"
        "heavy = [m for m in ('unibackup.service', 'unibackup.cli', 'click', 'orjson', 'zstandard', 'brotli', 'psutil') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ""


def test_plugin_manager_holds_the_default_plugins_only(unibackup_plugin_manager) -> None:
    origins = {status.origin for status in unibackup_plugin_manager.statuses}
    assert origins == {"default"}
    assert unibackup_plugin_manager.status_of("sqlite").status == "loaded"


def test_each_test_gets_its_own_plugin_manager(unibackup_plugin_manager) -> None:
    # a plugin registered by another test must not be here
    assert unibackup_plugin_manager.manager.get_plugin("throwaway-compressor") is None


def test_service_keeps_its_history_out_of_the_home_directory(unibackup_service, unibackup_config, tmp_path_factory) -> None:
    assert unibackup_service.config is unibackup_config
    history = Path(unibackup_config.monitoring.history_file)
    assert history.is_relative_to(tmp_path_factory.getbasetemp())


def test_sample_database_has_every_storage_class_and_schema_object(sample_sqlite_db: Path) -> None:
    conn = sqlite3.connect(sample_sqlite_db)
    try:
        kinds = {(kind, name) for kind, name in conn.execute("SELECT type, name FROM sqlite_master")}
        assert {("table", name) for name in SAMPLE_TABLES} <= kinds
        assert {("index", "orders_by_customer"), ("view", "customer_totals"), ("trigger", "orders_keep_balance")} <= kinds
        assert ("table", "sqlite_sequence") in kinds
        classes = {row[0] for row in conn.execute("SELECT typeof(value) FROM measurements")}
        assert classes == {"integer", "real", "text", "blob", "null"}
        assert conn.execute("SELECT max(value), min(value) FROM measurements WHERE typeof(value) = 'integer'").fetchone() == (2**63 - 1, -(2**63))
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
    finally:
        conn.close()


def test_sample_database_is_deterministic_and_never_overwrites(tmp_path: Path) -> None:
    first = make_sample_sqlite_db(tmp_path / "a.db", rows=20, seed=3)
    second = make_sample_sqlite_db(tmp_path / "b.db", rows=20, seed=3)
    assert contents(first) == contents(second)
    assert contents(make_sample_sqlite_db(tmp_path / "c.db", rows=20, seed=4)) != contents(first)
    with pytest.raises(FileExistsError):
        make_sample_sqlite_db(first)


def test_round_trip_restores_the_sample_exactly(backup_round_trip, sample_sqlite_db: Path) -> None:
    trip = backup_round_trip()
    assert isinstance(trip, RoundTrip)
    assert trip.source == str(sample_sqlite_db)
    assert trip.backup.is_file() and trip.backup.name.endswith(".ubk.jsonl.zst")
    assert trip.verification.valid and trip.verification.level == "full"
    assert trip.restore_result.rows == trip.backup_result.trailer.rows > 0
    assert_same_database(sample_sqlite_db, trip.restored)


def test_round_trip_takes_backup_options_and_another_source(backup_round_trip, tmp_path: Path) -> None:
    source = make_sample_sqlite_db(tmp_path / "other.db", rows=5)
    trip = backup_round_trip(source, tmp_path / "into.db", compression="none", batching="fixed", tables=("customers",), verify_level="quick")
    assert trip.restored == str(tmp_path / "into.db")
    assert trip.backup_result.header.options.batching == "fixed"
    assert [t.name for t in trip.backup_result.header.schema.tables] == ["customers"]
    conn = sqlite3.connect(trip.restored)
    try:
        assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 5
    finally:
        conn.close()


def test_round_trip_with_a_plugin_registered_by_the_test(unibackup_plugin_manager, backup_round_trip, sample_sqlite_db) -> None:
    from unibackup.plugins.gzip import GzipCompressor

    class ThrowawayCompressor(GzipCompressor):
        name = "throwaway"
        suffix = ".throwaway"

    plugin = types.SimpleNamespace(unibackup_register_compressors=hookimpl(lambda: [ThrowawayCompressor]))
    unibackup_plugin_manager.manager.register(plugin, name="throwaway-compressor")
    try:
        trip = backup_round_trip(compression="throwaway")
    finally:
        unibackup_plugin_manager.manager.unregister(name="throwaway-compressor")
    assert trip.backup.name.endswith(".ubk.jsonl.throwaway")
    assert_same_database(sample_sqlite_db, trip.restored)


def test_round_trip_fails_the_test_when_the_backup_does_not_verify(unibackup_plugin_manager, backup_round_trip) -> None:
    class Refuses(Validator):
        name = "refuses"

        def validate(self, path, service):
            return ValidationReport(path, self.name, False)

    plugin = types.SimpleNamespace(unibackup_register_validators=hookimpl(lambda: [Refuses]))
    unibackup_plugin_manager.manager.register(plugin, name="refusing-validator")
    with pytest.raises(pytest.fail.Exception, match="does not verify"):
        backup_round_trip(verify_level="refuses")


def test_the_command_line_environment_keeps_the_history_out_of_the_home_directory(unibackup_cli_env: dict[str, str], sample_sqlite_db: Path, tmp_path: Path) -> None:
    assert not any(key.startswith("UNIBACKUP_") for key in unibackup_cli_env if key not in ("UNIBACKUP_HISTORY_FILE", "UNIBACKUP_CACHE_DIR"))
    history = Path(unibackup_cli_env["UNIBACKUP_HISTORY_FILE"])
    assert not history.exists() and Path.home() not in history.parents
    run = subprocess.run(
        [sys.executable, "-m", "unibackup", "backup", str(sample_sqlite_db), "-o", str(tmp_path)],
        env=unibackup_cli_env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert history.read_text().count("\n") == 1  # the run went into the private history
