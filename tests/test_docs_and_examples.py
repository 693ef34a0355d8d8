"""The README, the docs and the examples stay true to the code.

A failure here names what a change to the code left undocumented (a command, option, config key,
header field, value tag or module) or what drifted apart (the README's commands and .ci/run).
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import attrs
import click
import pytest

from sqlite_contents import assert_same_database, contents
from unibackup import config as config_module
from unibackup.models import BackupHeader, ColumnSchema, DatabaseSchema, SchemaObject, TableSchema, TableFooter, Trailer

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"


def _shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def _readme_command(marker: str) -> str:
    for block in _shell_blocks(README):
        line = block.strip()
        if marker in line and "\n" not in line:
            return line
    raise AssertionError(f"README.md has no one-line command with {marker!r}")


# -- README and .ci/run -------------------------------------------------------------------------


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    command = _readme_command("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci.splitlines(), ".ci/run must run the README's test command, unchanged"
    assert ci.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in ci
    assert ci.rstrip().splitlines()[-1] == command, "the test command is the last line of .ci/run (its exit code is the script's)"


def test_readme_commands_install_the_example_plugin_and_make_the_sample() -> None:
    tests = _readme_command("pytest")
    assert "'.[test]'" in tests and "./examples/unibackup-xz" in tests
    try_it = _readme_command("make_sample_db.py")
    assert re.search(r"pip install \. ", try_it), "the try-it command installs the project non-editable"
    assert "unibackup backup sample.db" in try_it
    testpaths = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["testpaths"]
    assert "examples/unibackup-xz/tests" in testpaths


def test_readme_and_docs_link_to_files_that_exist() -> None:
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md")), ROOT / "examples" / "unibackup-xz" / "README.md"]
    missing = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                missing.append(f"{page.relative_to(ROOT)} -> {target}")
    # pages other engineers own may not be written yet; everything else must resolve
    pending = {"postgresql.md", "mysql.md", "troubleshooting.md", "hooks.md"}
    missing = [link for link in missing if Path(link.split(" -> ")[1]).name not in pending]
    assert not missing, missing


# -- pyproject ----------------------------------------------------------------------------------


def test_every_package_directory_is_listed_in_pyproject() -> None:
    """``pip install .`` installs only the packages listed; a subpackage left out is missing there."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    mapping = setuptools["package-dir"]
    for package, directory in mapping.items():
        for init in sorted((ROOT / directory).rglob("__init__.py")):
            relative = init.parent.relative_to(ROOT / directory)
            if "__pycache__" in relative.parts:
                continue
            name = ".".join([package, *relative.parts])
            if any(name.startswith(other + ".") or name == other for other in mapping if other != package and other.startswith(package + ".")) and package != name:
                continue  # mapped by a deeper package-dir entry
            assert name in listed, f"pyproject.toml [tool.setuptools] packages lacks {name!r} ({init.parent.relative_to(ROOT)})"


# -- configuration ------------------------------------------------------------------------------


def _config_keys(cls: type = config_module.Config, section: str = "") -> list[tuple[str, str]]:
    """(section, key) of every setting of the configuration, e.g. ("retry.read", "jitter")."""
    attrs.resolve_types(cls)
    keys = []
    for field in attrs.fields(cls):
        if cls is config_module.Config and field.name == "path":
            continue  # where the file was read from, not a setting
        if isinstance(field.type, type) and attrs.has(field.type):
            keys.extend(_config_keys(field.type, f"{section}.{field.name}" if section else field.name))
        else:
            keys.append((section or "(top level)", field.name))
    return keys


CONFIG_KEYS = _config_keys()


def test_config_keys_are_found() -> None:
    assert ("backup", "compression") in CONFIG_KEYS
    assert ("retry.write_file", "max_attempts") in CONFIG_KEYS
    assert ("(top level)", "source") in CONFIG_KEYS


def test_example_config_is_valid_and_holds_the_defaults() -> None:
    path = ROOT / "examples" / "unibackup.toml"
    parsed = config_module.load_config(str(path))
    assert attrs.evolve(parsed, source={}, path=None) == config_module.Config(), "examples/unibackup.toml must show the defaults"


def test_example_config_shows_every_key() -> None:
    text = (ROOT / "examples" / "unibackup.toml").read_text()
    sections = {}
    current = "(top level)"
    for line in text.splitlines():
        header = re.match(r"^#?\s*\[([\w.]+)\]\s*$", line)
        if header:
            current = header.group(1)
            continue
        key = re.match(r"^#?\s*(\w+)\s*=", line)
        if key:
            sections.setdefault(current, set()).add(key.group(1))
    missing = [f"{section}.{key}" for section, key in CONFIG_KEYS if section != "(top level)" and key not in sections.get(section, set())]
    assert not missing, f"examples/unibackup.toml lacks {missing}"
    assert any(section.startswith("source.") for section in sections)


def test_config_reference_documents_every_key() -> None:
    text = (DOCS / "config.md").read_text()
    missing = []
    for section, key in CONFIG_KEYS:
        if section == "(top level)":
            if f"[{key}." not in text:
                missing.append(key)
            continue
        heading = re.search(rf"^### .*`\[{re.escape(section)}\]`.*$", text, re.M)
        if heading is None:
            missing.append(f"[{section}]")
            continue
        body = text[heading.end():]
        following = re.search(r"^### ", body, re.M)
        body = body[: following.start()] if following else body
        if f"`{key}`" not in body:
            missing.append(f"{section}.{key}")
    assert not missing, f"docs/config.md does not document {missing}"


# -- command line -------------------------------------------------------------------------------


def test_cli_reference_documents_every_command_and_option() -> None:
    from unibackup.cli import cli

    text = (DOCS / "cli.md").read_text()
    # listing loads the plugin commands into the shared group: put it back as it was afterwards
    saved = (dict(cli.commands), cli.__dict__.get("_plugins_loaded"))
    try:
        ctx = click.Context(cli)
        commands = {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}
    finally:
        cli.commands.clear()
        cli.commands.update(saved[0])
        if saved[1] is None:
            cli.__dict__.pop("_plugins_loaded", None)
        else:
            cli._plugins_loaded = saved[1]
    missing = []
    for name, command in commands.items():
        section = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## )", text, re.M | re.S)
        if section is None:
            missing.append(name)
            continue
        for param in command.params:
            if isinstance(param, click.Option) and not any(f"`{opt}" in section.group(1) for opt in param.opts):
                missing.append(f"{name} {param.opts[-1]}")
    for param in cli.params:
        if isinstance(param, click.Option) and not any(f"`{opt}" in text for opt in param.opts):
            missing.append(param.opts[-1])
    assert not missing, f"docs/cli.md does not document {missing}"
    assert "TODO" not in text


# -- format -------------------------------------------------------------------------------------


def test_format_spec_names_every_header_field_and_value_tag() -> None:
    from unibackup.values import _DECODERS

    text = (DOCS / "format.md").read_text()
    models = (BackupHeader, TableSchema, ColumnSchema, SchemaObject, DatabaseSchema, TableFooter, Trailer)
    fields = {f"{model.__name__}.{field.name}" for model in models for field in attrs.fields(model) if f"`{field.name}`" not in text}
    assert not fields, f"docs/format.md does not describe {sorted(fields)}"
    tags = [tag for tag in _DECODERS if f"`{tag}`" not in text]
    assert not tags, f"docs/format.md does not describe the tags {tags}"


def test_architecture_lists_every_core_module() -> None:
    text = (DOCS / "architecture.md").read_text()
    modules = sorted(path.name for path in (ROOT / "core").glob("*.py"))
    missing = [name for name in modules if f"`{name}`" not in text]
    assert not missing, f"docs/architecture.md does not describe {missing}"


# -- the sample database ------------------------------------------------------------------------


def _make_sample(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "examples" / "make_sample_db.py"), str(path), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def bookshop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bookshop") / "sample.db"
    run = _make_sample(path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"wrote {path}:")
    return path


def test_sample_database_is_realistic(bookshop: Path) -> None:
    conn = sqlite3.connect(bookshop)
    try:
        objects = {(kind, name) for kind, name in conn.execute("SELECT type, name FROM sqlite_master")}
        tables = {name for kind, name in objects if kind == "table" and not name.startswith("sqlite_")}
        assert len(tables) >= 5
        assert {kind for kind, _ in objects} >= {"table", "index", "view", "trigger"}
        assert ("table", "sqlite_sequence") in objects  # AUTOINCREMENT
        assert conn.execute("SELECT count(*) FROM pragma_foreign_key_list('order_items')").fetchone()[0] >= 2
        rows = sum(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables)
        assert 3000 <= rows <= 20000
        assert conn.execute("SELECT count(*) FROM books WHERE typeof(cover) = 'blob'").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM books WHERE cover IS NULL").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM authors WHERE name <> CAST(CAST(name AS BLOB) AS TEXT) OR length(CAST(name AS BLOB)) > length(name)").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM book_sales").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM order_events").fetchone()[0] > 0  # written by the trigger
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def test_sample_database_is_deterministic(bookshop: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.db"
    assert _make_sample(again, "--seed", "7").returncode == 0
    assert contents(again) == contents(bookshop)
    other = tmp_path / "other.db"
    assert _make_sample(other, "--seed", "8").returncode == 0
    assert contents(other) != contents(bookshop)


def test_sample_script_replaces_its_own_database_but_no_other_file(tmp_path: Path) -> None:
    path = tmp_path / "sample.db"
    assert _make_sample(path, "--scale", "0.05").returncode == 0
    assert _make_sample(path, "--scale", "0.05").returncode == 0
    foreign = tmp_path / "precious.db"
    foreign.write_bytes(b"not mine")
    run = _make_sample(foreign)
    assert run.returncode == 1 and "not a sample database" in run.stderr
    assert foreign.read_bytes() == b"not mine"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("compression", ["zstd", "gzip", "brotli", "none"])
def test_sample_database_round_trips(bookshop: Path, backup_round_trip, compression: str) -> None:
    trip = backup_round_trip(bookshop, compression=compression)
    assert trip.backup_result.trailer.rows > 3000
    assert_same_database(bookshop, trip.restored)
