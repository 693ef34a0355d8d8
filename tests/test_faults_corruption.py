"""Fault injection on backup files: at least 200 random single-byte changes and 50 truncations of a
real backup per compressor. ``verify --level full`` must find every one (exit code 3) and
``restore`` must write nothing, every time.

Most runs call the service in process (the same code the command line runs); a sample goes
through the command line. The counts are printed (``FAULTS ...`` lines) for the record.
"""

from __future__ import annotations

import collections
import os
import random
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from unibackup.config import Config
from unibackup.errors import UnibackupError
from unibackup.manager import get_plugin_manager
from unibackup.service import BackupService

pytestmark = pytest.mark.slow

COMPRESSORS = ("zstd", "gzip", "brotli", "none")
CHANGES = 200
TRUNCATIONS = 50
EDGE = 16  # the first and last bytes (container headers, checksums, seals) are always among the changes

SCRIPT = """
CREATE TABLE authors(id INTEGER PRIMARY KEY, name TEXT NOT NULL, born DATE, photo BLOB);
CREATE TABLE books(isbn TEXT PRIMARY KEY, author_id INTEGER REFERENCES authors(id), title TEXT, price NUMERIC(8,2)) WITHOUT ROWID;
CREATE TABLE "odd ""name"" ; [x]"("col;1" TEXT, "a'b" INT);
CREATE TABLE empty(x);
CREATE INDEX books_by_author ON books(author_id);
CREATE VIEW cheap AS SELECT title FROM books WHERE price < 10;
CREATE TRIGGER stamp AFTER INSERT ON authors BEGIN UPDATE authors SET born = born WHERE id = new.id; END;
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


@pytest.fixture(scope="module")
def service() -> BackupService:
    return BackupService(Config(), get_plugin_manager(load_entrypoints=False))


@pytest.fixture(scope="module")
def backups(tmp_path_factory: pytest.TempPathFactory, service: BackupService) -> dict[str, Path]:
    """One real backup per compressor of a small database with several tables, kinds and objects."""
    directory = tmp_path_factory.mktemp("damage")
    source = directory / "library.db"
    rng = random.Random(11)
    conn = sqlite3.connect(source)
    conn.executescript(SCRIPT)
    conn.executemany(
        "INSERT INTO authors(name, born, photo) VALUES (?, ?, ?)",
        [(f"author {i} é", f"19{i % 100:02d}-01-02", rng.randbytes(rng.randrange(0, 120))) for i in range(150)],
    )
    conn.executemany("INSERT INTO books VALUES (?, ?, ?, ?)", [(f"isbn-{i}", i % 150 + 1, f"title {i}", i * 0.25) for i in range(250)])
    conn.executemany('INSERT INTO "odd ""name"" ; [x]" VALUES (?, ?)', [(f"v{i};", i) for i in range(20)])
    conn.commit()
    conn.close()
    return {c: Path(service.create_backup(str(source), directory / c, compression=c).path) for c in COMPRESSORS}


def single_byte_changes(size: int, seed: int) -> list[tuple[int, int]]:
    """(offset, xor mask): every one of the first and last ``EDGE`` bytes, the rest at random."""
    rng = random.Random(seed)
    offsets = list(range(min(EDGE, size))) + list(range(max(0, size - EDGE), size))
    while len(offsets) < CHANGES:
        offsets.append(rng.randrange(size))
    return [(offset, rng.randrange(1, 256)) for offset in offsets]


def truncations(size: int, seed: int) -> list[int]:
    """Lengths to cut the file to: nothing, one byte, the last few bytes off, the rest at random."""
    rng = random.Random(seed)
    lengths = {0, 1, 2, size // 2} | {size - n for n in range(1, 9)}
    while len(lengths) < TRUNCATIONS:
        lengths.add(rng.randrange(1, size))
    return sorted(length for length in lengths if 0 <= length < size)


def _kind(message: str) -> str:
    """A finding without its particulars (names, numbers), to count the kinds of detection."""
    text = re.sub(r"'[^']*'", "'…'", message)
    text = re.sub(r"\d+", "N", text)
    return text.split(";")[0][:90]


@pytest.mark.parametrize("compression", COMPRESSORS)
def test_every_damaged_copy_fails_full_verify_and_restores_nothing(
    service: BackupService, backups: dict[str, Path], compression: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    original = backups[compression]
    data = original.read_bytes()
    assert service.verify_backup(original, "full").valid
    damaged = tmp_path / f"damaged{original.name[original.name.index('.ubk'):]}"
    target_dir = tmp_path / "target"
    target_dir.mkdir()
    target = target_dir / "restored.db"
    cases = [("change", offset, bytes(data[:offset]) + bytes([data[offset] ^ mask]) + data[offset + 1 :]) for offset, mask in single_byte_changes(len(data), 1)]
    cases += [("truncation", length, data[:length]) for length in truncations(len(data), 2)]
    missed: list[str] = []
    kinds: collections.Counter[str] = collections.Counter()
    for what, where, content in cases:
        damaged.write_bytes(content)
        checked = service.verify_backup(damaged, "full")
        if checked.valid:
            missed.append(f"{what} at {where}: verify passed")
            continue
        kinds[_kind(checked.findings[0].message)] += 1
        with pytest.raises(UnibackupError) as raised:
            service.restore_backup(damaged, str(target))
        if raised.value.exit_code != 3:
            missed.append(f"{what} at {where}: restore failed with exit code {raised.value.exit_code}: {raised.value.user_line()}")
        if list(target_dir.iterdir()):
            missed.append(f"{what} at {where}: restore left {[p.name for p in target_dir.iterdir()]}")
            for path in target_dir.iterdir():
                path.unlink()
    changes = sum(1 for case in cases if case[0] == "change")
    report(
        request,
        f"damage {compression}: {changes} single-byte changes + {len(cases) - changes} truncations of a {len(data)}-byte backup: "
        f"{len(cases) - len(missed)} caught by verify --level full and restore (exit 3, nothing written), {len(missed)} not caught; "
        f"first findings: {dict(kinds.most_common(4))}",
    )
    assert not missed, "\n".join(missed[:20])
    assert changes >= CHANGES and len(cases) - changes >= TRUNCATIONS


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIBACKUP_") or k in ("UNIBACKUP_CACHE_DIR", "UNIBACKUP_HISTORY_FILE")}
    env["UNIBACKUP_LOAD_PLUGINS"] = ""
    return subprocess.run([sys.executable, "-m", "unibackup", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("compression", COMPRESSORS)
def test_a_sample_through_the_command_line(backups: dict[str, Path], compression: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    original = backups[compression]
    data = original.read_bytes()
    rng = random.Random(compression)
    offset = rng.randrange(len(data))
    samples = {
        "changed": data[:offset] + bytes([data[offset] ^ 0x20]) + data[offset + 1 :],
        "cut": data[: rng.randrange(1, len(data))],
    }
    for name, content in samples.items():
        damaged = tmp_path / f"{name.replace(' ', '-')}{original.name[original.name.index('.ubk'):]}"
        damaged.write_bytes(content)
        verify = _cli("verify", "--level", "full", str(damaged))
        assert verify.returncode == 3, (name, verify.stdout, verify.stderr)
        assert verify.stderr.strip().splitlines()[-1].startswith(f"unibackup: error: {damaged} is invalid: ")
        target = tmp_path / "out" / "restored.db"
        target.parent.mkdir(exist_ok=True)
        restore = _cli("restore", str(damaged), str(target))
        assert restore.returncode == 3, (name, restore.stderr)
        assert len(restore.stderr.strip().splitlines()) == 1 and "Traceback" not in restore.stderr
        assert list(target.parent.iterdir()) == []
    report(request, f"damage {compression} via the command line: {len(samples)} damaged copies, verify and restore exit 3 each, nothing written")
