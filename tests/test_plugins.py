"""The plugin manager and every hook: defaults, config disable, entry points faked through
``importlib.metadata`` distributions, isolation of broken plugins, and allow-only runs.

Every throwaway plugin is unregistered in ``finally``."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import lzma
import sys
import types
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import click
import pytest

from unibackup import hookimpl
from unibackup.batching import BatchingStrategy
from unibackup.compression import Compressor, CompressWriter
from unibackup.config import Config
from unibackup.errors import PluginError, UsageError
from unibackup.events import EventListener
from unibackup.locations import parse_location
from unibackup.manager import DEFAULT_PLUGINS, ESSENTIAL_PLUGINS, get_plugin_manager
from unibackup.migration import FormatMigrator
from unibackup.service import BackupService
from unibackup.validation import Finding, ValidationReport, Validator


# -- a good third-party compressor (stdlib lzma), and other throwaway plugin parts ---------------


class _LzmaWriter(CompressWriter):
    def __init__(self, raw: BinaryIO, level: int):
        self._raw = raw
        self._compressor = lzma.LZMACompressor(preset=level)

    def write(self, data: bytes) -> None:
        self._raw.write(self._compressor.compress(data))

    def finish(self) -> None:
        self._raw.write(self._compressor.flush())


class LzmaCompressor(Compressor):
    name = "test-lzma"
    suffix = ".testxz"
    magic = (b"\xfd7zXZ\x00",)
    default_level = 1
    min_level = 0
    max_level = 9

    def open_writer(self, raw: BinaryIO, level: int | None) -> CompressWriter:
        return _LzmaWriter(raw, level if level is not None else self.default_level)

    def open_reader(self, raw: BinaryIO) -> BinaryIO:
        return lzma.LZMAFile(raw, "rb")  # type: ignore[return-value]


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


class FakeDistribution(importlib.metadata.Distribution):
    """An installed distribution that exists only in memory, with ``unibackup`` entry points."""

    def __init__(self, name: str, version: str, entry_points: dict[str, str]):
        lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
        self._files = {
            "METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
            "entry_points.txt": f"[unibackup]\n{lines}",
        }

    def read_text(self, filename: str) -> str | None:
        return self._files.get(filename)

    def locate_file(self, path: Any) -> Any:
        return None


def entry_points(*distributions: FakeDistribution) -> list[importlib.metadata.EntryPoint]:
    return [ep for dist in distributions for ep in dist.entry_points if ep.group == "unibackup"]


@pytest.fixture
def fake_modules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, types.ModuleType]:
    """Importable plugin modules: a good compressor, a misspelled hook, a duplicate compressor
    name, and (on disk) one whose import raises."""
    good = _module("fake_ub_good", unibackup_register_compressors=hookimpl(lambda: [LzmaCompressor]))
    misspelled = _module("fake_ub_misspelled", unibackup_register_compresors=hookimpl(lambda: [LzmaCompressor]))

    class DuplicateGzip(LzmaCompressor):
        name = "gzip"

    duplicate = _module("fake_ub_duplicate", unibackup_register_compressors=hookimpl(lambda: [DuplicateGzip]))
    modules = {m.__name__: m for m in (good, misspelled, duplicate)}
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    (tmp_path / "fake_ub_broken.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return modules


GOOD = FakeDistribution("unibackup-testlzma", "1.2.3", {"test-lzma": "fake_ub_good"})
BROKEN = FakeDistribution("unibackup-broken", "0.1", {"broken": "fake_ub_broken"})
MISSPELLED = FakeDistribution("unibackup-typo", "0.1", {"typo": "fake_ub_misspelled"})
TAKEN_NAME = FakeDistribution("unibackup-gzip2", "0.1", {"gzip": "fake_ub_good"})
DUPLICATE = FakeDistribution("unibackup-dupzip", "0.1", {"dupzip": "fake_ub_duplicate"})


@pytest.fixture(autouse=True)
def _no_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNIBACKUP_LOAD_PLUGINS", raising=False)


# -- defaults ------------------------------------------------------------------------------------


def test_defaults_are_registered_under_short_names() -> None:
    host = get_plugin_manager(load_entrypoints=False)
    for name, module in DEFAULT_PLUGINS:
        status = host.status_of(name)
        assert status is not None and status.status == "loaded" and status.origin == "default", name
        assert host.manager.get_plugin(name).__name__ == module
    service = BackupService(Config(), host)
    assert set(service.hooks.compressors.names()) >= {"zstd", "gzip", "brotli", "none"}
    assert set(service.hooks.batching_strategies.names()) >= {"fixed", "adaptive"}
    assert set(service.hooks.validators.names()) >= {"quick", "full", "deep"}


def test_disable_blocks_a_default_and_its_names_become_unavailable(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="unibackup"):
        host = get_plugin_manager(load_entrypoints=False, disabled=["gzip", "no-such-plugin"])
    assert host.status_of("gzip").status == "blocked"
    assert host.manager.is_blocked("gzip")
    assert any("no-such-plugin" in r.getMessage() and "matches no plugin" in r.getMessage() for r in caplog.records)
    service = BackupService(Config(), host)
    with pytest.raises(PluginError, match="gzip.*unavailable.*blocked"):
        service.hooks.compressors.get("gzip")


def test_essential_plugin_cannot_be_disabled(caplog) -> None:
    (essential,) = ESSENTIAL_PLUGINS
    with caplog.at_level(logging.WARNING, logger="unibackup"):
        host = get_plugin_manager(load_entrypoints=False, disabled=[essential])
    assert host.status_of(essential).status == "loaded"
    assert any("essential" in r.getMessage() for r in caplog.records)


def test_unknown_names_list_the_known_ones() -> None:
    service = BackupService(Config(), get_plugin_manager(load_entrypoints=False))
    for registry, known in ((service.hooks.compressors, "zstd"), (service.hooks.batching_strategies, "adaptive"), (service.hooks.validators, "full")):
        with pytest.raises(PluginError) as raised:
            registry.get("nope")
        assert "nope" in raised.value.user_line() and known in raised.value.user_line()


# -- entry points ----------------------------------------------------------------------------------


def test_good_third_party_compressor_from_an_entry_point(fake_modules, make_db, tmp_path: Path) -> None:
    host = get_plugin_manager(entry_points=entry_points(GOOD))
    status = host.status_of("test-lzma")
    assert (status.status, status.origin, status.distribution, status.version) == ("loaded", "entry point", "unibackup-testlzma", "1.2.3")
    assert status.hooks == ("unibackup_register_compressors",)
    service = BackupService(Config(), host)
    source = make_db("CREATE TABLE t(x); INSERT INTO t VALUES ('hello'), (x'00ff');")
    result = service.create_backup(str(source), tmp_path / "out", compression="test-lzma", level=6)
    assert result.path.endswith(".ubk.jsonl.testxz")
    report = service.verify_backup(result.path, "full")
    assert report.valid and report.details["compressor"] == "test-lzma"


def test_a_plugin_whose_import_raises_fails_alone(fake_modules, make_db, tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="unibackup"):
        host = get_plugin_manager(entry_points=entry_points(BROKEN, GOOD))
    status = host.status_of("broken")
    assert status.status == "failed" and "boom at import" in status.reason and status.distribution == "unibackup-broken"
    assert any("broken" in r.getMessage() and "unibackup-broken" in r.getMessage() for r in caplog.records)
    assert host.status_of("test-lzma").status == "loaded"
    service = BackupService(Config(), host)
    source = make_db("CREATE TABLE t(x);")
    assert service.create_backup(str(source), tmp_path / "out").path  # the run does not need it
    with pytest.raises(PluginError, match="broken.*unavailable.*boom at import"):
        service.create_backup(str(source), tmp_path / "out", compression="broken")
    with pytest.raises(PluginError, match="boom at import"):
        get_plugin_manager(entry_points=entry_points(BROKEN), strict=True)


def test_a_misspelled_hook_fails_its_plugin(fake_modules) -> None:
    host = get_plugin_manager(entry_points=entry_points(MISSPELLED, GOOD))
    status = host.status_of("typo")
    assert status.status == "failed" and "unibackup_register_compresors" in status.reason
    assert host.manager.get_plugin("typo") is None
    assert host.status_of("test-lzma").status == "loaded"


def test_duplicates_are_errors_that_name_both(fake_modules) -> None:
    host = get_plugin_manager(entry_points=entry_points(TAKEN_NAME))
    assert host.status_of("gzip").origin == "default"
    taken = [s for s in host.statuses if s.name == "gzip" and s.origin == "entry point"]
    assert taken[0].status == "failed" and "taken" in taken[0].reason
    service = BackupService(Config(), get_plugin_manager(entry_points=entry_points(DUPLICATE)))
    with pytest.raises(PluginError) as raised:
        service.hooks.compressors
    assert "'gzip'" in raised.value.user_line() and "dupzip" in raised.value.user_line()


def test_disable_by_entry_point_or_distribution_name(fake_modules) -> None:
    for name in ("test-lzma", "unibackup-testlzma"):
        host = get_plugin_manager(entry_points=entry_points(GOOD), disabled=[name])
        assert host.status_of("test-lzma").status == "blocked"


def test_allow_only(fake_modules, monkeypatch: pytest.MonkeyPatch) -> None:
    host = get_plugin_manager(entry_points=entry_points(GOOD, BROKEN), allow_only=["unibackup-testlzma"])
    assert host.status_of("test-lzma").status == "loaded" and host.status_of("broken").status == "skipped"
    monkeypatch.setenv("UNIBACKUP_LOAD_PLUGINS", "broken")
    host = get_plugin_manager(entry_points=entry_points(GOOD, BROKEN), allow_only=["test-lzma"])
    assert host.status_of("test-lzma").status == "skipped" and host.status_of("broken").status == "failed"
    monkeypatch.setenv("UNIBACKUP_LOAD_PLUGINS", "")  # empty: the defaults only
    host = get_plugin_manager(entry_points=entry_points(GOOD, BROKEN))
    assert {s.name: s.status for s in host.statuses if s.origin == "entry point"} == {"test-lzma": "skipped", "broken": "skipped"}
    assert all(s.status == "loaded" for s in host.statuses if s.origin == "default")


# -- one test per hook ---------------------------------------------------------------------------


def _with_plugin(plugin: Any, name: str, body) -> Any:
    host = get_plugin_manager(load_entrypoints=False)
    host.manager.register(plugin, name=name)
    try:
        return body(BackupService(Config(), host))
    finally:
        host.manager.unregister(name=name)


def test_unibackup_register_compressors(make_db, tmp_path: Path) -> None:
    plugin = _module("lzma_plugin", unibackup_register_compressors=hookimpl(lambda: [LzmaCompressor]))
    source = make_db("CREATE TABLE t(x); INSERT INTO t VALUES (1);")

    def body(service: BackupService) -> None:
        path = service.create_backup(str(source), tmp_path / "out", compression="test-lzma").path
        assert Path(path).read_bytes().startswith(LzmaCompressor.magic[0])
        service.restore_backup(path, str(tmp_path / "restored.db"))

    _with_plugin(plugin, "lzma-plugin", body)


class TinyBatches(BatchingStrategy):
    name = "tiny"
    sizes: list[int] = []

    def next_batch_size(self) -> int:
        return 2

    def observe(self, rows: int, encoded_bytes: int) -> None:
        TinyBatches.sizes.append(rows)


def test_unibackup_register_batching_strategies(make_db, tmp_path: Path) -> None:
    plugin = _module("tiny_plugin", unibackup_register_batching_strategies=hookimpl(lambda: [TinyBatches]))
    source = make_db("CREATE TABLE t(x);", inserts=[("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])])
    TinyBatches.sizes = []
    _with_plugin(plugin, "tiny-plugin", lambda service: service.create_backup(str(source), tmp_path, batching="tiny"))
    assert TinyBatches.sizes == [2, 2, 1]


def test_unibackup_register_sources() -> None:
    from unibackup.plugins.sqlite import SQLiteSource

    class MemorySource(SQLiteSource):
        name = "memory-test"
        schemes = ("memtest",)

        @classmethod
        def accepts_path(cls, path: str) -> bool:
            return False

    plugin = _module("memory_plugin", unibackup_register_sources=hookimpl(lambda: [MemorySource]))

    def body(service: BackupService) -> None:
        assert service.hooks.source_for(parse_location("memtest://somewhere/db")) is MemorySource
        with pytest.raises(UsageError) as raised:
            service.hooks.source_for(parse_location("nosuch://x/y"))
        assert "memtest" in raised.value.user_line() and "sqlite" in raised.value.user_line()

    _with_plugin(plugin, "memory-plugin", body)


class ParanoidValidator(Validator):
    name = "paranoid"

    def validate(self, path: str, service: BackupService) -> ValidationReport:
        full = service.hooks.validators.get("full")().validate(path, service)
        return ValidationReport(path, self.name, False, full.tables, full.rows, (Finding("error", "never trusted"),))


def test_unibackup_register_validators(make_db, tmp_path: Path) -> None:
    plugin = _module("paranoid_plugin", unibackup_register_validators=hookimpl(lambda: [ParanoidValidator]))
    source = make_db("CREATE TABLE t(x); INSERT INTO t VALUES (1);")

    def body(service: BackupService) -> None:
        path = service.create_backup(str(source), tmp_path).path
        report = service.verify_backup(path, "paranoid")
        assert not report.valid and report.rows == 1 and report.findings[0].message == "never trusted"

    _with_plugin(plugin, "paranoid-plugin", body)


class PrefixedV0(FormatMigrator):
    """A made-up format version 0: the line ``TESTV0`` followed by a version-2 stream."""

    name = "test-v0"
    from_version = 0
    to_version = 2

    @classmethod
    def recognises(cls, head: bytes) -> bool:
        return head.startswith(b"TESTV0\n")

    def migrate(self, stream: BinaryIO) -> Iterator[bytes]:
        assert stream.read(7) == b"TESTV0\n"
        while chunk := stream.read(1 << 16):
            yield chunk


def test_unibackup_register_file_signatures(tmp_path: Path) -> None:
    """A file that starts like a registered format no loaded compressor reads needs a plugin
    (exit 2); without the signature the same bytes are damage (exit 3)."""
    plugin = _module("quux_plugin", unibackup_register_file_signatures=hookimpl(lambda: {b"QUUX\x01": "quux"}))
    odd = tmp_path / "odd.bin"
    odd.write_bytes(b"QUUX\x01 whatever follows")

    def body(service: BackupService) -> None:
        assert service.hooks.file_signatures[b"QUUX\x01"] == "quux"
        with pytest.raises(PluginError) as raised:
            service.verify_backup(odd, "full")
        assert raised.value.exit_code == 2
        assert raised.value.user_line().startswith("'odd.bin' is quux-compressed, and no loaded compressor reads it")

    _with_plugin(plugin, "quux-plugin", body)
    plain = BackupService(Config(), get_plugin_manager(load_entrypoints=False))
    report = plain.verify_backup(odd, "full")
    assert not report.valid and "neither a unibackup file nor compressed by a known compressor" in report.findings[0].message


def test_unibackup_register_migrators(make_db, tmp_path: Path) -> None:
    plugin = _module("v0_plugin", unibackup_register_migrators=hookimpl(lambda: [PrefixedV0]))
    source = make_db("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")

    def body(service: BackupService) -> None:
        path = Path(service.create_backup(str(source), tmp_path, compression="none").path)
        old = tmp_path / "old.ubk.jsonl"
        old.write_bytes(b"TESTV0\n" + path.read_bytes())
        report = service.verify_backup(old, "full")
        assert report.valid and report.rows == 2
        assert report.details["format_version"] == 0 and report.details["migrated_by"] == ["test-v0"]

    _with_plugin(plugin, "v0-plugin", body)


class RecordingListener(EventListener):
    name = "recorder"
    events: list[str] = []

    def handle(self, event) -> None:
        RecordingListener.events.append(event.kind)


def test_unibackup_register_listeners(make_db, tmp_path: Path) -> None:
    plugin = _module("recorder_plugin", unibackup_register_listeners=hookimpl(lambda: [RecordingListener]))
    source = make_db("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
    RecordingListener.events = []
    _with_plugin(plugin, "recorder-plugin", lambda service: service.create_backup(str(source), tmp_path))
    events = RecordingListener.events
    assert events[0] == "started" and events[-1] == "finished"
    assert {"table_started", "batch_written", "table_finished"} <= set(events)


@click.command(name="hello-test")
@click.argument("who")
def _hello(who: str) -> None:
    click.echo(f"hello {who}")


def _run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    from unibackup.cli import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


@pytest.fixture
def cli_with(monkeypatch: pytest.MonkeyPatch):
    """Run the real CLI in-process over these fake distributions (plugin commands reloaded)."""
    from unibackup import cli as cli_module

    def use(*distributions: FakeDistribution) -> None:
        fake = lambda group=None, **kw: entry_points(*distributions)  # noqa: E731
        monkeypatch.setattr(importlib.metadata, "entry_points", fake)
        monkeypatch.setattr(cli_module.cli, "_plugins_loaded", False)
        monkeypatch.setattr(cli_module.cli, "commands", dict(cli_module.cli.commands))

    return use


def test_unibackup_register_commands(fake_modules, monkeypatch, cli_with, capsys) -> None:
    commands = _module("fake_ub_commands", unibackup_register_commands=hookimpl(lambda cli: cli.add_command(_hello)))
    monkeypatch.setitem(sys.modules, "fake_ub_commands", commands)
    cli_with(FakeDistribution("unibackup-hello", "1.0", {"hello": "fake_ub_commands"}))
    code, out, err = _run_cli(["hello-test", "world"], capsys)
    assert (code, out) == (0, "hello world\n"), err


def test_plugins_all_json_shows_failed_rows(fake_modules, cli_with, capsys) -> None:
    cli_with(GOOD, BROKEN, MISSPELLED)
    code, out, err = _run_cli(["plugins", "--all", "--json"], capsys)
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["test-lzma"]["status"] == "loaded" and rows["test-lzma"]["provides"] == ["compressor:test-lzma"]
    assert rows["test-lzma"]["distribution"] == "unibackup-testlzma" and rows["test-lzma"]["version"] == "1.2.3"
    assert rows["broken"]["status"] == "failed" and "boom at import" in rows["broken"]["reason"]
    assert rows["typo"]["status"] == "failed"
    code, out, _ = _run_cli(["plugins", "--json"], capsys)
    assert {row["status"] for row in json.loads(out)} == {"loaded"}
