"""The xz plugin, as a user meets it: installed as a package, found through its entry point.

The fixtures (``backup_round_trip``, ``sample_sqlite_db``, ...) come from the ``unibackup.testing``
pytest plugin that unibackup installs.
"""

from __future__ import annotations

import importlib.metadata
import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unibackup.files import recognise_compressor
from unibackup.manager import get_plugin_manager
from unibackup.service import BackupService


def _installed() -> bool:
    return any(ep.name == "xz" and ep.value == "unibackup_xz" for ep in importlib.metadata.entry_points(group="unibackup"))


if not _installed():
    if os.environ.get("CI"):
        raise RuntimeError("unibackup-xz is not installed; install it with: pip install ./examples/unibackup-xz")
    pytest.skip("unibackup-xz is not installed (pip install ./examples/unibackup-xz)", allow_module_level=True)

from unibackup_xz import XzCompressor  # noqa: E402

XZ_MAGIC = b"\xfd7zXZ\x00"


@pytest.fixture
def unibackup_command(unibackup_cli_env: dict[str, str]):
    """Runs ``unibackup ARGS`` as a user would, with the entry points installed, without the
    caller's unibackup settings and without touching the user's history."""

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "unibackup", *args], cwd=cwd, env=unibackup_cli_env, capture_output=True, text=True, timeout=120)

    return run


@pytest.fixture
def xz_service(unibackup_config, monkeypatch) -> BackupService:
    """A service whose plugins are the defaults plus the xz entry point, loaded as a user's would be."""
    monkeypatch.delenv("UNIBACKUP_LOAD_PLUGINS", raising=False)
    host = get_plugin_manager(allow_only=["xz"])
    assert host.status_of("xz").status == "loaded", host.status_of("xz")
    return BackupService(unibackup_config, host)


def test_listed_by_unibackup_plugins(tmp_path: Path, unibackup_command) -> None:
    run = unibackup_command("plugins", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = {row["name"]: row for row in json.loads(run.stdout)}
    xz = rows["xz"]
    assert xz["status"] == "loaded"
    assert xz["origin"] == "entry point"
    assert xz["distribution"] == "unibackup-xz"
    assert xz["version"] == importlib.metadata.version("unibackup-xz")
    assert xz["provides"] == ["compressor:xz"]
    assert xz["hooks"] == ["unibackup_register_compressors"]


def test_disabled_by_distribution_name(tmp_path: Path, unibackup_command) -> None:
    (tmp_path / "unibackup.toml").write_text('[plugins]\ndisable = ["unibackup-xz"]\n')
    run = unibackup_command("plugins", "--all", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = {row["name"]: row for row in json.loads(run.stdout)}
    assert rows["xz"]["status"] == "blocked"


@pytest.mark.parametrize("level", [0, None, 9])
def test_round_trip(xz_service, backup_round_trip, level) -> None:
    trip = backup_round_trip(service=xz_service, compression="xz", level=level)
    assert trip.backup.name.endswith(".ubk.jsonl.xz")
    assert trip.backup_result.header.compressor.name == "xz"
    assert trip.backup_result.header.options.level == (6 if level is None else level)
    assert trip.backup.read_bytes().startswith(XZ_MAGIC)


def test_the_file_is_plain_xz(xz_service, backup_round_trip) -> None:
    trip = backup_round_trip(service=xz_service, compression="xz")
    lines = lzma.decompress(trip.backup.read_bytes()).splitlines()
    header, trailer = json.loads(lines[0]), json.loads(lines[-1])
    assert header["type"] == "header" and header["compressor"]["name"] == "xz"
    assert trailer["type"] == "trailer" and trailer["rows"] == trip.backup_result.trailer.rows


def test_recognised_by_its_bytes_not_its_name(xz_service, backup_round_trip, tmp_path: Path) -> None:
    trip = backup_round_trip(service=xz_service, compression="xz")
    renamed = tmp_path / "mystery.ubk.jsonl"
    renamed.write_bytes(trip.backup.read_bytes())
    compressors = [entry.implementation for entry in xz_service.hooks.compressors]
    assert recognise_compressor(renamed.read_bytes()[:64], compressors, lambda head: False) is XzCompressor
    assert xz_service.inspect_backup(renamed).compressor == "xz"
    assert xz_service.verify_backup(renamed, "full").valid


def test_damage_is_caught(xz_service, backup_round_trip, tmp_path: Path) -> None:
    trip = backup_round_trip(service=xz_service, compression="xz")
    data = bytearray(trip.backup.read_bytes())
    data[len(data) // 2] ^= 0x55
    damaged = tmp_path / "damaged.ubk.jsonl.xz"
    damaged.write_bytes(bytes(data))
    assert not xz_service.verify_backup(damaged, "full").valid


def test_levels_outside_0_to_9_are_refused(tmp_path: Path, sample_sqlite_db: Path, unibackup_command) -> None:
    run = unibackup_command("backup", str(sample_sqlite_db), "-o", str(tmp_path), "--compression", "xz", "--level", "10", cwd=tmp_path)
    assert run.returncode == 2
    assert "from 0 to 9" in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_command_line_backup_and_verify(tmp_path: Path, sample_sqlite_db: Path, unibackup_command) -> None:
    run = unibackup_command("backup", str(sample_sqlite_db), "-o", str(tmp_path / "out"), "--compression", "xz", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    path = run.stdout.strip().splitlines()[-1]
    assert path.endswith(".ubk.jsonl.xz")
    verify = unibackup_command("verify", path, cwd=tmp_path)
    assert verify.returncode == 0, verify.stderr
