"""``unibackup.testing``: pytest fixtures for people who write unibackup plugins.

unibackup installs this module as a pytest plugin (entry point group ``pytest11``), so in any
environment where unibackup is installed these fixtures are there without a ``conftest.py``:

``unibackup_plugin_manager``
    A :class:`~unibackup.manager.PluginHost` holding the default plugins only: installed entry
    points are not loaded, so a test sees the same plugins on every machine. Register the plugin
    under test with ``unibackup_plugin_manager.manager.register(module, name="...")``.
``unibackup_config``
    The :class:`~unibackup.config.Config` the service runs with: defaults, with the performance
    history kept in the test's temporary directory and no preflight cache. Override it in a
    ``conftest.py`` to test other settings.
``unibackup_service``
    A :class:`~unibackup.BackupService` over those two.
``sample_sqlite_db``
    The path of a small SQLite database made for the test (see :func:`make_sample_sqlite_db`).
``backup_round_trip``
    A function: back up a source, verify the backup, restore it; returns a :class:`RoundTrip`.

A compressor plugin's test can be this short::

    import my_plugin

    def test_round_trip(unibackup_plugin_manager, backup_round_trip):
        unibackup_plugin_manager.manager.register(my_plugin, name="mine")
        trip = backup_round_trip(compression="mine")
        assert trip.backup.name.endswith(".ubk.jsonl.mine")

Register plugins before the service is first used: it builds its registries on first use.

This module is imported by every pytest run in the environment, so it imports nothing heavy at
the top; the fixtures import what they need when they run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import attrs
import pytest

if TYPE_CHECKING:
    from .config import Config
    from .manager import PluginHost
    from .models import BackupResult, RestoreResult
    from .service import BackupService
    from .validation import ValidationReport

__all__ = ["RoundTrip", "make_sample_sqlite_db"]

#: The tables of :func:`make_sample_sqlite_db`, in creation order.
SAMPLE_TABLES = ("customers", "orders", "documents", "measurements")

_SAMPLE_SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT UNIQUE,
    balance REAL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    total NUMERIC(10, 2),
    placed_at TEXT NOT NULL
);
CREATE TABLE documents (
    name TEXT PRIMARY KEY,
    body BLOB,
    note TEXT
) WITHOUT ROWID;
CREATE TABLE measurements (
    sensor TEXT,
    value,
    taken_at INTEGER
);
CREATE INDEX orders_by_customer ON orders (customer_id);
CREATE VIEW customer_totals AS
    SELECT c.id, c.name, count(o.id) AS orders, sum(o.total) AS spent
    FROM customers AS c LEFT JOIN orders AS o ON o.customer_id = c.id GROUP BY c.id;
CREATE TRIGGER orders_keep_balance AFTER INSERT ON orders
BEGIN
    UPDATE customers SET balance = coalesce(balance, 0) - NEW.total WHERE id = NEW.customer_id;
END;
"""

_NAMES = ("Ada", "Zoë", "Łukasz", "Søren", "Алиса", "Μαρία", "さくら", "李雷", "محمد", "Ünal 🎉")


def make_sample_sqlite_db(path: str | os.PathLike[str], rows: int = 50, seed: int = 1) -> Path:
    """Write a small SQLite database to ``path`` (which must not exist) and return its path.

    Four tables: a rowid table, an AUTOINCREMENT table with a foreign key, a WITHOUT ROWID table
    and a table with an untyped column; an index, a view and a trigger; ``user_version`` 7. The
    values cover every storage class and their edges: 64-bit integers at both ends, ``-0.0``,
    ±Infinity, text with NUL characters, emoji and bytes that are not UTF-8, empty and binary
    BLOBs, and NULLs. The same ``rows`` and ``seed`` always give the same database.
    """
    import random
    import sqlite3

    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists")
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(_SAMPLE_SCHEMA)
        with conn:
            conn.executemany(
                "INSERT INTO customers VALUES (?, ?, ?, ?)",
                [
                    (i, f"{_NAMES[i % len(_NAMES)]} {i}", None if i % 7 == 0 else f"c{i}@example.org", None if i % 5 == 0 else rng.uniform(-100, 100))
                    for i in range(1, rows + 1)
                ],
            )
            conn.executemany(
                "INSERT INTO orders (customer_id, total, placed_at) VALUES (?, ?, ?)",
                [(rng.randrange(1, rows + 1), round(rng.uniform(1, 500), 2), f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T12:00:00Z") for i in range(rows * 2)],
            )
            conn.execute("DELETE FROM orders WHERE id = (SELECT max(id) FROM orders)")  # AUTOINCREMENT remembers it
            conn.executemany(
                "INSERT INTO documents VALUES (?, ?, ?)",
                [(f"doc-{i:03d}", rng.randbytes(rng.randrange(0, 2048)), None if i % 3 else "nul\x00inside") for i in range(rows)],
            )
            edges: list[Any] = [2**63 - 1, -(2**63), 0, -0.0, float("inf"), float("-inf"), 1.5e-308, "text ✓", b"\x00\xff", b"", None]
            conn.executemany(
                "INSERT INTO measurements VALUES (?, ?, ?)",
                [(f"sensor-{i % 4}", edges[i % len(edges)], 1_700_000_000 + i) for i in range(rows)],
            )
            conn.execute("INSERT INTO measurements VALUES (CAST(X'C3A9FF' AS TEXT), CAST(X'FE' AS TEXT), NULL)")
        conn.execute("PRAGMA user_version = 7")
    finally:
        conn.close()
    return path


@attrs.frozen
class RoundTrip:
    """What :func:`backup_round_trip` did: the files, and what each step reported."""

    source: str  # what was backed up: a path or a URL
    backup: Path  # the backup file
    restored: str  # where it was restored: a path or a URL
    backup_result: "BackupResult"
    verification: "ValidationReport"
    restore_result: "RestoreResult"


@pytest.fixture
def unibackup_plugin_manager() -> "PluginHost":
    """A plugin host with the default plugins only (installed entry points are not loaded)."""
    from .manager import get_plugin_manager

    return get_plugin_manager(load_entrypoints=False)


@pytest.fixture
def unibackup_config(tmp_path_factory: pytest.TempPathFactory) -> "Config":
    """Default settings, with the performance history kept out of the user's home and no
    preflight cache (which would live there too)."""
    from .config import Config, MonitoringConfig, PreflightConfig

    history = tmp_path_factory.mktemp("unibackup-history") / "history.jsonl"
    return Config(monitoring=MonitoringConfig(history_file=str(history)), preflight=PreflightConfig(cache_seconds=0))


@pytest.fixture
def unibackup_cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment for running the ``unibackup`` command in a test: none of the caller's
    ``UNIBACKUP_*`` settings (which could hide or block plugins), and the history and the
    preflight cache in a temporary directory, never the user's."""
    private = tmp_path_factory.mktemp("unibackup-cli")
    env = {key: value for key, value in os.environ.items() if not key.startswith("UNIBACKUP_")}
    env["UNIBACKUP_HISTORY_FILE"] = str(private / "history.jsonl")
    env["UNIBACKUP_CACHE_DIR"] = str(private / "cache")
    return env


@pytest.fixture
def unibackup_service(unibackup_config: "Config", unibackup_plugin_manager: "PluginHost") -> "BackupService":
    """A :class:`~unibackup.BackupService` with ``unibackup_config`` and ``unibackup_plugin_manager``."""
    from .service import BackupService

    return BackupService(unibackup_config, unibackup_plugin_manager)


@pytest.fixture
def sample_sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the small sample database of :func:`make_sample_sqlite_db`."""
    return make_sample_sqlite_db(tmp_path_factory.mktemp("unibackup-sample") / "sample.db")


@pytest.fixture
def backup_round_trip(request: pytest.FixtureRequest, unibackup_service: "BackupService", tmp_path_factory: pytest.TempPathFactory) -> Callable[..., RoundTrip]:
    """``backup_round_trip(source=None, target=None, *, service=None, verify_level="full", **options)``.

    Backs up ``source`` (default: ``sample_sqlite_db``) with ``options`` (``compression``,
    ``level``, ``batching``, ``tables``, ``exclude_tables``), verifies the backup at
    ``verify_level``, and restores it into ``target`` (default: a new SQLite file). Fails the test
    when the backup does not verify or the restore writes another number of rows.
    """

    def round_trip(
        source: str | os.PathLike[str] | None = None,
        target: str | os.PathLike[str] | None = None,
        *,
        service: "BackupService | None" = None,
        verify_level: str = "full",
        **options: Any,
    ) -> RoundTrip:
        service = service or unibackup_service
        if source is None:
            source = request.getfixturevalue("sample_sqlite_db")
        work = tmp_path_factory.mktemp("unibackup-round-trip")
        result = service.create_backup(str(source), work / "backups", **options)
        report = service.verify_backup(result.path, verify_level)
        if not report.valid:
            pytest.fail(f"the backup {result.path} does not verify ({verify_level}): {[f.message for f in report.findings]}")
        if target is None:
            target = work / "restored.db"
        restored = service.restore_backup(result.path, str(target))
        if restored.rows != result.trailer.rows:
            pytest.fail(f"the restore wrote {restored.rows} rows; the backup holds {result.trailer.rows}")
        return RoundTrip(str(source), Path(result.path), str(target), result, report, restored)

    return round_trip
