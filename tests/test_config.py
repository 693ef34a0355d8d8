"""``unibackup.toml``: where it is found, how the command line overrides it, and errors that name
the key path."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from unibackup.config import CONFIG_ENV, Config, find_config_file, load_config, parse_config
from unibackup.errors import ConfigError

from test_cli import run


@pytest.fixture
def three_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A config file for each place, each choosing another compressor."""
    places = {"explicit": "gzip", "env": "brotli", "cwd": "none"}
    paths = {}
    for place, compression in places.items():
        directory = tmp_path / place
        directory.mkdir()
        path = directory / "unibackup.toml"
        path.write_text(f'[backup]\ncompression = "{compression}"\n')
        paths[place] = path
    monkeypatch.chdir(paths["cwd"].parent)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    return paths


def test_discovery_order(three_configs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_config_file(None) == three_configs["cwd"].parent.resolve() / "unibackup.toml"
    monkeypatch.setenv(CONFIG_ENV, str(three_configs["env"]))
    assert find_config_file(None) == three_configs["env"]
    assert find_config_file(str(three_configs["explicit"])) == three_configs["explicit"]
    assert load_config(str(three_configs["explicit"])).backup.compression == "gzip"
    assert load_config(None).backup.compression == "brotli"
    monkeypatch.delenv(CONFIG_ENV)
    assert load_config(None).backup.compression == "none"
    monkeypatch.chdir(three_configs["cwd"].parent.parent)
    assert find_config_file(None) is None and load_config(None) == Config()


def test_discovery_order_on_the_command_line(three_configs: dict[str, Path], make_db) -> None:
    db = make_db("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
    cwd = three_configs["cwd"].parent

    def suffix(*args: str, env: dict[str, str] | None = None) -> str:
        proc = run(*args, "backup", str(db), "-o", "out", cwd=cwd, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip().splitlines()[-1].rsplit(".ubk.jsonl", 1)[1]

    env = {CONFIG_ENV: str(three_configs["env"])}
    assert suffix() == ""  # ./unibackup.toml: none
    assert suffix(env=env) == ".br"  # $UNIBACKUP_CONFIG beats the current directory
    assert suffix("--config", str(three_configs["explicit"]), env=env) == ".gz"  # --config beats both


def test_command_line_options_override_the_file(tmp_path: Path, make_db) -> None:
    db = make_db("CREATE TABLE t(x); CREATE TABLE skipped(y);")
    (tmp_path / "unibackup.toml").write_text(
        '[backup]\ncompression = "gzip"\nlevel = 1\noutput_dir = "from-config"\nbatching = "fixed"\nexclude_tables = ["skipped"]\n'
    )
    from_file = run("backup", str(db), "--json", cwd=tmp_path)
    assert from_file.returncode == 0, from_file.stderr
    assert '"from-config/' in from_file.stdout and '"level": 1' in from_file.stdout and '"tables": 1' in from_file.stdout
    overridden = run("backup", str(db), "-o", "cli-dir", "--compression", "zstd", "--level", "5", "--json", cwd=tmp_path)
    assert overridden.returncode == 0, overridden.stderr
    assert '"cli-dir/' in overridden.stdout and '"compressor": "zstd"' in overridden.stdout and '"level": 5' in overridden.stdout
    missing = run("--config", "nowhere.toml", "list", cwd=tmp_path)
    assert missing.returncode == 2 and "nowhere.toml" in missing.stderr


def test_a_full_config_parses() -> None:
    config = parse_config(
        {
            "plugins": {"disable": ["brotli"], "allow_only": ["xz"], "strict": True},
            "backup": {"output_dir": "/backups", "compression": "gzip", "level": 9, "batching": "fixed", "exclude_tables": ["a"]},
            "batching": {"batch_rows": 500, "batch_bytes": 65536, "delay": 0, "memory_budget_mb": 64},
            "retry": {"read": {"max_attempts": 2, "base_delay": 1}},
            "source": {"sqlite": {"busy_timeout": 5}},
        },
        "unibackup.toml",
    )
    assert config.plugins.disable == ("brotli",) and config.backup.level == 9
    assert config.retry.read.base_delay == 1.0 and config.batching.delay == 0.0
    assert config.source == {"sqlite": {"busy_timeout": 5}} and config.path == "unibackup.toml"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"backup": {"level": "high"}}, "backup.level: expected an integer"),
        ({"backup": {"level": 3.5}}, "backup.level: expected an integer"),
        ({"backup": {"levell": 3}}, "backup.levell: unknown key"),
        ({"nonsense": {}}, "nonsense: unknown key"),
        ({"backup": {"compression": 3}}, "backup.compression: expected a string"),
        ({"plugins": {"disable": "zstd"}}, "plugins.disable: expected an array"),
        ({"plugins": {"strict": "yes"}}, "plugins.strict: expected true or false"),
        ({"backup": {"exclude_tables": [1]}}, "backup.exclude_tables"),
        ({"batching": {"batch_bytes": 10}}, "batching.batch_bytes: must be >= 1024"),
        ({"retry": {"read": {"jitter": 2.0}}}, "retry.read.jitter: must be <= 1"),
        ({"limits": {"max_decompressed_bytes": 0}}, "limits.max_decompressed_bytes: must be >= 1024"),
        ({"limits": {"max_ratio": 0}}, "limits.max_ratio: must be >= 1"),
        ({"batching": {"min_rows": 100, "max_rows": 1}}, "batching.max_rows: must be >= min_rows (100)"),
        ({"retry": {"read": {"max_attempts": 2, "nope": 1}}}, "retry.read.nope: unknown key"),
        ({"retry": {"read": 5}}, "retry.read"),
        ({"backup": 5}, "backup"),
    ],
)
def test_bad_keys_and_values_name_the_key_path(data: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(data, "unibackup.toml")
    line = raised.value.user_line()
    assert expected in line and "unibackup.toml" in line and "\n" not in line
    assert raised.value.exit_code == 2


@pytest.mark.parametrize(
    "table, message",
    [
        ('[source.sqlite]\nbusy_timeout = "x"\n', "source.sqlite.busy_timeout"),
        ("[source.sqlite]\nnope = 1\n", "source.sqlite.nope: unknown key"),
        ("[source.nosuchengine]\nx = 1\n", "source.nosuchengine: no source plugin is named"),
    ],
)
def test_source_settings_are_checked_against_the_plugin(tmp_path, table, message):
    from unibackup import BackupService
    from unibackup.config import load_config
    from unibackup.errors import ConfigError

    path = tmp_path / "unibackup.toml"
    path.write_text(table)
    database = tmp_path / "s.db"
    sqlite3.connect(database).execute("CREATE TABLE t (a)").connection.close()
    with pytest.raises(ConfigError) as error:
        BackupService(load_config(str(path))).create_backup(str(database), tmp_path / "out")
    assert message in error.value.user_line()
    assert error.value.exit_code == 2


def test_a_configuration_file_that_is_not_utf8_or_not_a_file(tmp_path):
    import os

    from unibackup.config import load_config
    from unibackup.errors import ConfigError

    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(str(binary))
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="is not a regular file"):  # opening it would wait for a writer
        load_config(str(fifo))
