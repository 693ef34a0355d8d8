"""A damaged backup (truncated anywhere, one bit changed anywhere, bytes appended) fails
``verify --level full`` with exit code 3, and restoring it writes nothing."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from unibackup.errors import UnibackupError

COMPRESSORS = ("zstd", "gzip", "brotli", "none")
OFFSETS = 24  # per compressor and kind of damage, plus the file's first and last bytes


SCRIPT = """
CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT, photo BLOB, score REAL);
CREATE TABLE tags(tag TEXT PRIMARY KEY, n INT) WITHOUT ROWID;
CREATE TABLE empty(x);
CREATE INDEX people_name ON people(name);
"""


@pytest.fixture(scope="module")
def backups(tmp_path_factory) -> dict[str, Path]:
    """One small backup per compressor, made once."""
    import sqlite3

    from unibackup.config import Config
    from unibackup.manager import get_plugin_manager
    from unibackup.service import BackupService

    directory = tmp_path_factory.mktemp("corruption")
    source = directory / "source.db"
    conn = sqlite3.connect(source)
    conn.executescript(SCRIPT)
    rng = random.Random(7)
    conn.executemany(
        "INSERT INTO people VALUES (?, ?, ?, ?)",
        [(i, f"person {i} ü", rng.randbytes(rng.randrange(0, 200)), i / 7) for i in range(300)],
    )
    conn.executemany("INSERT INTO tags VALUES (?, ?)", [(f"tag{i}", i) for i in range(50)])
    conn.commit()
    conn.close()
    service = BackupService(Config(), get_plugin_manager(load_entrypoints=False))
    return {c: Path(service.create_backup(str(source), directory / c, compression=c).path) for c in COMPRESSORS}


def _offsets(size: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return sorted({0, 1, size - 5, size - 1} | {rng.randrange(size) for _ in range(OFFSETS)})


def _damaged_copies(original: Path, directory: Path) -> list[Path]:
    data = original.read_bytes()
    copies = []
    for length in _offsets(len(data), 1):
        path = directory / f"truncated-{length}{original.suffix}"
        path.write_bytes(data[:length])
        copies.append(path)
    # every byte counts, even those a decoder ignores (gzip's header time, the seal)
    for offset in sorted(set(_offsets(len(data), 2)) | {4, 5, 9}):
        changed = bytearray(data)
        changed[offset] ^= 0x01
        path = directory / f"flipped-{offset}{original.suffix}"
        path.write_bytes(bytes(changed))
        copies.append(path)
    for extra in (b"\n", b"\x00", data[-8:]):
        path = directory / f"appended-{len(copies)}{original.suffix}"
        path.write_bytes(data + extra)
        copies.append(path)
    return copies


def _restore_writes_nothing(service, backup: Path, target_dir: Path) -> None:
    target = target_dir / "restored.db"
    with pytest.raises(UnibackupError) as raised:
        service.restore_backup(backup, str(target))
    assert raised.value.exit_code == 3, raised.value.user_line()
    assert not target.exists()
    assert list(target_dir.iterdir()) == []  # no temporary file either


@pytest.mark.parametrize("compression", COMPRESSORS)
def test_damaged_backups_fail_full_verify_and_restore_nothing(service, backups, compression: str, tmp_path: Path) -> None:
    original = backups[compression]
    assert service.verify_backup(original, "full").valid
    damaged_dir, target_dir = tmp_path / "damaged", tmp_path / "target"
    damaged_dir.mkdir()
    target_dir.mkdir()
    for damaged in _damaged_copies(original, damaged_dir):
        report = service.verify_backup(damaged, "full")
        assert not report.valid, f"{damaged.name} passed full verification"
        assert report.findings and report.findings[0].severity == "error"
        _restore_writes_nothing(service, damaged, target_dir)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unibackup", *args], capture_output=True, text=True)


def test_cli_exit_code_3_and_nothing_written(backups, tmp_path: Path) -> None:
    original = backups["zstd"]
    data = original.read_bytes()
    truncated = tmp_path / "truncated.ubk.jsonl.zst"
    truncated.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.ubk.jsonl.zst"
    flipped.write_bytes(data[:100] + bytes([data[100] ^ 0x01]) + data[101:])
    for damaged in (truncated, flipped):
        verify = _cli("verify", "--level", "full", str(damaged))
        assert verify.returncode == 3, verify.stderr
        assert verify.stderr.strip().splitlines()[-1].startswith("unibackup: error: ")
        assert "Traceback" not in verify.stderr
        target = tmp_path / "out" / "restored.db"
        target.parent.mkdir(exist_ok=True)
        restore = _cli("restore", str(damaged), str(target))
        assert restore.returncode == 3, restore.stderr
        assert len(restore.stderr.strip().splitlines()) == 1 and "Traceback" not in restore.stderr
        assert list(target.parent.iterdir()) == []


@pytest.mark.parametrize("failure, exit_code", [("SourceError", 1), ("CancelledError", 130)])
def test_a_trial_restore_that_cannot_finish_never_calls_the_backup_invalid(backups, failure: str, exit_code: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk or a Ctrl-C during the deep level's trial restore is that failure (exit 1 or
    130), not "invalid" (exit 3): nobody should throw a good backup away for it."""
    from unibackup import errors
    from unibackup.config import Config
    from unibackup.manager import get_plugin_manager
    from unibackup.service import BackupService

    service = BackupService(Config(), get_plugin_manager(load_entrypoints=False))

    def failing_restore(*args, **kwargs):
        raise getattr(errors, failure)("writing table 't' failed on 'trial.sqlite': database or disk is full")

    monkeypatch.setattr(service, "restore_backup", failing_restore)
    with pytest.raises(UnibackupError) as raised:
        service.verify_backup(backups["zstd"], "deep")
    assert raised.value.exit_code == exit_code
    assert raised.value.user_line().startswith("the trial restore could not finish: ")
