"""The command line end to end: outputs, ``--json``, and one clear line for every bad input."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from unibackup.errors import UsageError


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m unibackup ARGS`` with the default plugins only and no stray configuration."""
    stray = ("UNIBACKUP_CONFIG", "UNIBACKUP_TRACE_PLUGINS")  # the throwaway history and cache stay
    environment = {k: v for k, v in os.environ.items() if k not in stray}
    environment["UNIBACKUP_LOAD_PLUGINS"] = ""
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "unibackup", *args], capture_output=True, text=True, cwd=cwd, env=environment)


def assert_one_error_line(proc: subprocess.CompletedProcess, exit_code: int, *fragments: str) -> str:
    """Exactly one line on stderr, no traceback, nothing on stdout, the documented exit code."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == exit_code, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("unibackup: error: ")
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.fixture
def db(make_db) -> Path:
    return make_db(
        "CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT); CREATE TABLE notes(t TEXT);",
        inserts=[("INSERT INTO books(title) VALUES (?)", [(f"book {i}",) for i in range(25)])],
    )


@pytest.fixture
def backup_file(db: Path, tmp_path: Path) -> Path:
    proc = run("backup", str(db), "-o", "backups", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path / proc.stdout.strip().splitlines()[-1]


def test_backup_prints_the_new_path_last_and_restores(db: Path, tmp_path: Path) -> None:
    proc = run("backup", str(db), "-o", "out", "--compression", "gzip", "--level", "9", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / proc.stdout.strip().splitlines()[-1]
    assert path.is_file() and path.parent == tmp_path / "out" and path.name.endswith(".ubk.jsonl.gz")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    restored = run("restore", str(path), "restored.db", cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert "25 rows" in restored.stdout


def test_sqlite_url_and_table_selection(db: Path, tmp_path: Path) -> None:
    proc = run("backup", f"sqlite:///{db}", "-o", "out", "--table", "books", "--batching", "fixed", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["trailer"]["tables"] == 1 and data["trailer"]["rows"] == 25
    excluded = run("backup", str(db), "-o", "out", "--exclude-table", "books", "--json", cwd=tmp_path)
    assert json.loads(excluded.stdout)["trailer"]["rows"] == 0


def test_python_dash_m_and_version(tmp_path: Path) -> None:
    proc = run("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("unibackup")
    assert run("--help", cwd=tmp_path).returncode == 0


def test_json_outputs_are_valid(db: Path, backup_file: Path, tmp_path: Path) -> None:
    verify = json.loads(run("verify", str(backup_file), "--json", cwd=tmp_path).stdout)
    assert verify["valid"] is True and verify["rows"] == 25 and verify["tables"] == 2
    listed = json.loads(run("list", str(backup_file.parent), "--json", cwd=tmp_path).stdout)
    assert [entry["path"] for entry in listed] == [str(backup_file)]
    assert listed[0]["engine"] == "sqlite" and listed[0]["tables"] == 2 and listed[0]["error"] is None
    info = json.loads(run("info", str(backup_file), "--json", cwd=tmp_path).stdout)
    assert info["table_rows"] == {"books": 25, "notes": 0} and info["trailer"]["rows"] == 25
    assert info["header"]["source"]["engine"] == "sqlite"
    estimate = json.loads(run("estimate", str(db), "--json", cwd=tmp_path).stdout)
    assert estimate["tables"] == 2 and set(estimate["estimated_backup_bytes"]) >= {"zstd", "gzip", "brotli", "none"}
    plugins = json.loads(run("plugins", "--all", "--json", cwd=tmp_path).stdout)
    rows = {row["name"]: row for row in plugins}
    assert rows["zstd"]["status"] == "loaded" and "compressor:zstd" in rows["zstd"]["provides"]
    assert rows["validators"]["hooks"] == ["unibackup_register_validators"]


def test_human_outputs(db: Path, backup_file: Path, tmp_path: Path) -> None:
    listed = run("list", str(backup_file.parent), cwd=tmp_path)
    assert backup_file.name in listed.stdout and "sqlite" in listed.stdout
    info = run("info", str(backup_file), cwd=tmp_path).stdout
    assert "complete:    yes" in info and "books: 25 rows" in info
    verify = run("verify", str(backup_file), cwd=tmp_path)
    assert verify.returncode == 0 and "valid (full)" in verify.stdout
    estimate = run("estimate", str(db), cwd=tmp_path).stdout
    assert "2 tables" in estimate and "zstd" in estimate
    empty = run("list", cwd=tmp_path)
    assert empty.returncode == 0 and "no backups" in empty.stderr


def test_missing_source(tmp_path: Path) -> None:
    assert_one_error_line(run("backup", "missing.db", cwd=tmp_path), 2, "missing.db", "does not exist")


def test_a_file_that_is_not_a_database_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello, not a database\n")
    assert_one_error_line(run("backup", "notes.txt", cwd=tmp_path), 2, "notes.txt")
    (tmp_path / "fake.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 2000)
    assert_one_error_line(run("backup", "fake.db", cwd=tmp_path), 2, "fake.db", "not a SQLite database")


def test_unknown_compressor_lists_the_known_ones(db: Path, tmp_path: Path) -> None:
    assert_one_error_line(run("backup", str(db), "--compression", "lz9", cwd=tmp_path), 2, "lz9", "zstd", "gzip", "brotli", "none")


def test_bad_levels(db: Path, tmp_path: Path) -> None:
    assert_one_error_line(run("backup", str(db), "--level", "99", cwd=tmp_path), 2, "1 to 22")
    assert_one_error_line(run("backup", str(db), "--compression", "none", "--level", "3", cwd=tmp_path), 2, "no level")
    assert_one_error_line(run("backup", str(db), "--level", "high", cwd=tmp_path), 2, "--level")
    assert_one_error_line(run("verify", "x", "--level", "extreme", cwd=tmp_path), 2, "--level")
    assert not list(tmp_path.glob("*.ubk.jsonl*"))


def test_unknown_batching_and_table(db: Path, tmp_path: Path) -> None:
    assert_one_error_line(run("backup", str(db), "--batching", "huge", cwd=tmp_path), 2, "huge", "adaptive", "fixed")
    assert_one_error_line(run("backup", str(db), "--table", "nope", cwd=tmp_path), 2, "nope", "books", "notes")


def test_output_directory_that_cannot_be_written(db: Path, tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("")
    assert_one_error_line(run("backup", str(db), "-o", "a_file/sub", cwd=tmp_path), 2, "a_file/sub")
    assert_one_error_line(run("backup", str(db), "-o", "a_file", cwd=tmp_path), 2, "a_file")
    if os.geteuid() == 0:
        return  # root writes anywhere: the permission case cannot be made here
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert_one_error_line(run("backup", str(db), "-o", "locked", cwd=tmp_path), 2, "locked", "not writable")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize(
    ("toml", "fragments"),
    [
        ('[backup]\nlevel = "high"\n', ("backup.level", "integer")),
        ("[backup]\nlevell = 3\n", ("backup.levell", "unknown key")),
        ("[batching]\nbatch_rows = 0\n", ("batching.batch_rows", ">= 1")),
        ('[plugins]\ndisable = "zstd"\n', ("plugins.disable", "array")),
        ("[backup\nlevel = 3\n", ("not valid TOML", "line 1")),
    ],
    ids=["wrong-type", "unknown-key", "out-of-range", "string-for-list", "not-toml"],
)
def test_malformed_config_names_the_key(db: Path, tmp_path: Path, toml: str, fragments: tuple[str, ...]) -> None:
    (tmp_path / "bad.toml").write_text(toml)
    assert_one_error_line(run("--config", "bad.toml", "backup", str(db), cwd=tmp_path), 2, "bad.toml", *fragments)


def test_debug_shows_the_traceback(db: Path, tmp_path: Path) -> None:
    proc = run("--debug", "backup", str(db), "--compression", "lz9", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and proc.stderr.strip().splitlines()[-1].startswith("unibackup: error: ")


def test_bad_backup_arguments(backup_file: Path, tmp_path: Path) -> None:
    assert_one_error_line(run("verify", "missing.ubk.jsonl.zst", cwd=tmp_path), 2, "missing.ubk.jsonl.zst")
    (tmp_path / "plain.txt").write_text("not a backup\n")
    assert_one_error_line(run("info", "plain.txt", cwd=tmp_path), 3, "plain.txt")
    assert_one_error_line(run("restore", str(backup_file), "out.db", "--table", "nope", cwd=tmp_path), 2, "nope")
    assert not (tmp_path / "out.db").exists()
    assert_one_error_line(run("restore", str(backup_file), "no/such/dir/out.db", cwd=tmp_path), 2, "does not exist")
    assert_one_error_line(run("list", "missing-dir", cwd=tmp_path), 2, "missing-dir")


def test_a_backup_never_overwrites_an_existing_file(service, db: Path, tmp_path: Path) -> None:
    existing = tmp_path / "taken.ubk.jsonl.zst"
    existing.write_bytes(b"precious")
    service.unique_backup_path = lambda *args: existing
    with pytest.raises(UsageError, match="already exists"):
        service.create_backup(str(db), tmp_path)
    assert existing.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.db", "taken.ubk.jsonl.zst"]


def test_standard_tools_read_every_line(db: Path, tmp_path: Path) -> None:
    import gzip
    import shutil

    import zstandard

    for compression, suffix in (("zstd", ".zst"), ("gzip", ".gz"), ("none", "")):
        proc = run("backup", str(db), "-o", "tools", "--compression", compression, cwd=tmp_path)
        path = tmp_path / proc.stdout.strip().splitlines()[-1]
        assert path.name.endswith(".ubk.jsonl" + suffix)
        if compression == "zstd" and shutil.which("zstd"):
            text = subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout
        elif compression == "zstd":
            text = zstandard.ZstdDecompressor().stream_reader(path.read_bytes(), read_across_frames=True).read()
        elif compression == "gzip":
            text = gzip.decompress(path.read_bytes())
        else:
            text = path.read_bytes()
        records = [json.loads(line) for line in text.decode("utf-8").splitlines()]
        assert records[0]["type"] == "header" and records[-1]["type"] == "trailer"
        assert sum(1 for r in records if isinstance(r, list)) == 25


def test_compression_is_recognised_from_the_bytes_not_the_name(service, db: Path, tmp_path: Path) -> None:
    for compression in ("zstd", "gzip", "brotli", "none"):
        path = Path(service.create_backup(str(db), tmp_path / compression, compression=compression).path)
        renamed = path.with_name(f"misleading-{compression}.ubk.jsonl.gz")
        path.rename(renamed)
        report = service.verify_backup(renamed, "full")
        assert report.valid and report.details["compressor"] == compression
        assert service.inspect_backup(renamed).table_rows == {"books": 25, "notes": 0}


def test_an_unknown_hook_is_a_usage_error(tmp_path: Path) -> None:
    assert_one_error_line(run("plugins", "--hook", "nosuchhook", cwd=tmp_path), 2, "unknown hook 'unibackup_nosuchhook'; known: ", "unibackup_register_compressors")
    short = run("plugins", "--hook", "register_compressors", "--json", cwd=tmp_path)
    assert short.returncode == 0 and {row["name"] for row in json.loads(short.stdout)} >= {"zstd", "gzip", "brotli", "none"}


def test_a_backup_whose_compressor_is_not_loaded_is_a_plugin_problem_not_damage(tmp_path: Path) -> None:
    """A good backup must never be called damaged (exit 3) only because its plugin is missing."""
    import lzma

    xz = tmp_path / "db-20260101T000000000000Z.ubk.jsonl.xz"
    xz.write_bytes(lzma.compress(b'{"type":"header","format":"unibackup","format_version":2}\n'))
    named = assert_one_error_line(run("verify", str(xz), cwd=tmp_path), 2, "is xz-compressed, and no loaded compressor reads it")
    renamed = tmp_path / "renamed.bin"
    renamed.write_bytes(xz.read_bytes())
    assert_one_error_line(run("verify", str(renamed), cwd=tmp_path), 2, "'renamed.bin' is xz-compressed")
    unknown = tmp_path / "db-20260101T000000000000Z.ubk.jsonl.lz9"
    unknown.write_bytes(b"\x00\x01 not a known format")
    assert_one_error_line(run("info", str(unknown), cwd=tmp_path), 2, "no loaded compressor writes files ending in '.lz9'")
    junk = tmp_path / "junk.ubk.jsonl.zst"
    junk.write_bytes(b"\x00\x01 not a known format")
    assert_one_error_line(run("verify", str(junk), cwd=tmp_path), 3, "is neither a unibackup file nor compressed by a known compressor")
    assert "install or enable" in named


def test_empty_names_directories_and_a_missing_password_file_are_usage_errors(db: Path, backup_file: Path, tmp_path: Path) -> None:
    assert_one_error_line(run("backup", str(db), "-o", "x", "--compression", "", cwd=tmp_path), 2, "an empty compressor name was given; known: zstd")
    assert_one_error_line(run("backup", str(db), "-o", "x", "--batching", " ", cwd=tmp_path), 2, "an empty batching strategy name")
    assert_one_error_line(run("backup", str(db), "-o", "x", "--password-file", "nope", cwd=tmp_path), 2, "the password file 'nope' does not exist")
    assert_one_error_line(run("backup", "sqlite:///", "-o", "x", cwd=tmp_path), 2, "is a directory, not a database file")
    (tmp_path / "adir").mkdir()
    assert_one_error_line(run("restore", str(backup_file), "adir", cwd=tmp_path), 2, "the target 'adir' is a directory")
    assert not (tmp_path / "x").exists()


def test_damage_stays_damage_when_a_compressor_is_disabled(backup_file: Path, tmp_path: Path) -> None:
    """A disabled plugin is a hint, not the verdict: a damaged zstd file is invalid (exit 3)."""
    (tmp_path / "unibackup.toml").write_text('[plugins]\ndisable = ["brotli"]\n')
    damaged = tmp_path / "prefixed.ubk.jsonl.zst"
    damaged.write_bytes(b"garbage" + backup_file.read_bytes())
    line = assert_one_error_line(run("verify", str(damaged), cwd=tmp_path), 3, "is neither a unibackup file nor compressed by a known compressor")
    assert "it may need a plugin that is not loaded: plugin 'brotli' blocked" in line


def test_plugins_shows_the_commands_a_plugin_adds(tmp_path: Path) -> None:
    rows = {row["name"]: row for row in json.loads(run("plugins", "--json", cwd=tmp_path).stdout)}
    assert rows["report"]["provides"] == ["command:report"]
    assert "command:migrate" in rows["legacy-v1"]["provides"]


def test_a_partial_backup_keeps_no_index_or_trigger_of_the_tables_it_leaves_out(make_db, tmp_path: Path) -> None:
    db = make_db(
        "CREATE TABLE a(x); CREATE TABLE b(y); CREATE INDEX a_x ON a(x); CREATE INDEX b_y ON b(y);"
        " CREATE TRIGGER b_t AFTER INSERT ON b BEGIN SELECT 1; END; CREATE VIEW v AS SELECT x FROM a;",
        name="partial.db",
    )
    proc = run("backup", str(db), "-o", "out", "--table", "a", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = run("info", json.loads(proc.stdout)["path"], "--json", cwd=tmp_path)
    objects = {obj["name"] for obj in json.loads(info.stdout)["header"]["schema"]["objects"]}
    assert objects == {"a_x", "v"}
