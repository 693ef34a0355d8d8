"""Shared fixtures: a service with the default plugins only, and SQLite databases built in code."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable

import pytest

from unibackup.config import Config
from unibackup.manager import get_plugin_manager
from unibackup.service import BackupService

#: The real sample databases of the project (outside the repository; never copied into it).
SAMPLE_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SAMPLE_SUFFIXES = (".db", ".sqlite", ".mbtiles")
_PRIVATE_DIR = pytest.StashKey[Path]()


def sample_databases() -> list[Path]:
    """Every SQLite sample database under :data:`SAMPLE_DATA_DIR` (empty when it is absent)."""
    if not SAMPLE_DATA_DIR.is_dir():
        return []
    return sorted(p for p in SAMPLE_DATA_DIR.rglob("*") if p.is_file() and p.suffix.lower() in SAMPLE_SUFFIXES)


def pytest_configure(config: pytest.Config) -> None:
    """Module- and session-scoped fixtures run before the autouse fixtures below: give the whole
    run a private history file and cache first, so that no test ever writes into the user's."""
    import os
    import tempfile

    private = Path(tempfile.mkdtemp(prefix="unibackup-tests-"))
    config.stash[_PRIVATE_DIR] = private
    os.environ["UNIBACKUP_HISTORY_FILE"] = str(private / "history.jsonl")
    os.environ["UNIBACKUP_CACHE_DIR"] = str(private / "cache")


def pytest_unconfigure(config: pytest.Config) -> None:
    """The run's private history and cache go with it."""
    import shutil

    private = config.stash.get(_PRIVATE_DIR, None)
    if private is not None:
        shutil.rmtree(private, ignore_errors=True)


@pytest.fixture(autouse=True)
def _private_history(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test (and every ``unibackup`` it runs) records its history in a throwaway file."""
    path = tmp_path_factory.mktemp("history") / "history.jsonl"
    monkeypatch.setenv("UNIBACKUP_HISTORY_FILE", str(path))
    return path


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test (and every ``unibackup`` it runs) keeps its preflight cache in a throwaway directory."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("UNIBACKUP_CACHE_DIR", str(path))
    return path


@pytest.fixture
def service() -> BackupService:
    """A service with the default plugins only (no installed entry points) and default settings."""
    return BackupService(Config(), get_plugin_manager(load_entrypoints=False))


@pytest.fixture
def make_db(tmp_path: Path) -> Callable[..., Path]:
    """``make_db(script, name="source.db", inserts=[(sql, rows), ...])``: a SQLite file in the
    test's directory, built from a script and then ``executemany`` of each insert."""

    def build(script: str, name: str = "source.db", inserts: list[tuple[str, list]] | None = None) -> Path:
        path = tmp_path / name
        conn = sqlite3.connect(path)
        try:
            conn.executescript(script)
            for sql, rows in inserts or ():
                conn.executemany(sql, rows)
            conn.commit()
        finally:
            conn.close()
        return path

    return build
