"""Chinook on MySQL/MariaDB: backup, verify, restore into a fresh database, compare table by table."""

from __future__ import annotations

import subprocess

import pytest

from unibackup.models import to_dict

from mysql_support import (
    UNIBACKUP,
    assert_same_database,
    chinook,
    data_fingerprint,
    database_exists,
    databases,
    run_sql,
    url_for,
)

pytestmark = pytest.mark.mysql
__all__ = ["chinook", "databases"]  # fixtures


def test_chinook_round_trip(service, chinook, databases, tmp_path):
    result = service.create_backup(url_for(chinook), tmp_path)
    assert result.trailer.tables == 11
    assert result.trailer.rows == sum(count for count, _ in data_fingerprint(chinook).values())
    report = service.verify_backup(result.path, "full")
    assert report.valid, report.findings

    target = databases.new("chinook_copy", create=False)
    restored = service.restore_backup(result.path, url_for(target))
    assert restored.rows == result.trailer.rows
    assert not restored.skipped
    assert_same_database(chinook, target)


def test_chinook_header_records_the_snapshot(service, chinook, tmp_path):
    result = service.create_backup(url_for(chinook), tmp_path)
    header = to_dict(service.inspect_backup(result.path).header)
    assert header["source"]["engine"] == "mysql"
    assert header["source"]["identity"] == url_for(chinook)
    settings = header["schema"]["settings"]
    assert settings["time_zone"] == "+00:00"
    kinds = sorted({obj["kind"] for obj in header["schema"]["objects"]})
    assert kinds == ["foreign_key", "index"]
    foreign = [obj for obj in header["schema"]["objects"] if obj["kind"] == "foreign_key"]
    assert len(foreign) == 11
    for table in header["schema"]["tables"]:
        assert "FOREIGN KEY" not in table["create_sql"]  # created after the rows
        assert "AUTO_INCREMENT=" not in table["create_sql"]


def test_chinook_through_the_command_line(chinook, databases, tmp_path):
    backup = subprocess.run([*UNIBACKUP, "-q", "backup", url_for(chinook), "-o", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert backup.returncode == 0, backup.stderr
    path = backup.stdout.strip().splitlines()[-1]
    verify = subprocess.run([*UNIBACKUP, "verify", path], capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr
    target = databases.new("chinook_cli", create=False)
    restore = subprocess.run([*UNIBACKUP, "-q", "restore", path, url_for(target)], capture_output=True, text=True, timeout=120)
    assert restore.returncode == 0, restore.stderr
    assert "15607 rows" in restore.stdout
    assert_same_database(chinook, target)

    again = subprocess.run([*UNIBACKUP, "restore", path, url_for(target)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "is not empty" in again.stderr
    assert_same_database(chinook, target)  # untouched


def test_restore_of_a_subset_lists_what_it_skipped(service, chinook, databases, tmp_path):
    result = service.create_backup(url_for(chinook), tmp_path)
    target = databases.new("chinook_part", create=False)
    restored = service.restore_backup(result.path, url_for(target), tables=("Track", "Album"))
    assert restored.tables == 2
    skipped = "\n".join(restored.skipped)
    assert "foreign key FK_TrackGenreId of Track" in skipped
    assert "FK_TrackAlbumId" not in skipped
    assert run_sql(target, "SELECT COUNT(*) FROM `Track`")[0][0] == 3503
    assert database_exists(target)
