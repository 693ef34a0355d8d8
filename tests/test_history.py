"""The history recorder and ``unibackup report``: what a record holds, where and how it is written,
and the trends and recommendations a synthetic history gives."""

from __future__ import annotations

import datetime
import json
import logging
import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import attrs
import pytest

from unibackup.cli import main
from unibackup.config import Config, MonitoringConfig
from unibackup.errors import UnibackupError
from unibackup.events import Event
from unibackup.manager import get_plugin_manager
from unibackup.plugins.history import (
    HISTORY_ENV,
    HistoryRecord,
    HistoryRecorder,
    append_record,
    history_path,
    read_history,
    without_credentials,
)
from unibackup.plugins.report import build_report, render_text
from unibackup.service import BackupService

MIB = 1024 * 1024


def service(config: Config | None = None) -> BackupService:
    return BackupService(config or Config(), get_plugin_manager(load_entrypoints=False))


@pytest.fixture
def db(make_db: Any) -> Path:
    return make_db("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);", inserts=[("INSERT INTO t(v) VALUES (?)", [(f"v{i}",) for i in range(3000)])])


# -- where ---------------------------------------------------------------------------------------------
def test_the_history_file_is_found_by_env_then_config_then_data_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(HISTORY_ENV, str(tmp_path / "env.jsonl"))
    assert history_path({"history_file": str(tmp_path / "conf.jsonl")}) == tmp_path / "env.jsonl"
    monkeypatch.delenv(HISTORY_ENV)
    assert history_path({"history_file": str(tmp_path / "conf.jsonl")}) == tmp_path / "conf.jsonl"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert history_path({}) == tmp_path / "data" / "unibackup" / "history.jsonl"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert history_path(None) == tmp_path / "home" / ".local" / "share" / "unibackup" / "history.jsonl"


# -- what a run records ----------------------------------------------------------------------------------
def test_a_backup_appends_one_record_with_its_figures(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "new" / "dir" / "history.jsonl"
    monkeypatch.setenv(HISTORY_ENV, str(path))
    result = service().create_backup(str(db), tmp_path / "out", compression="gzip")
    records, skipped = read_history(path)
    assert skipped == 0 and len(records) == 1
    record = records[0]
    assert record.operation == "backup" and record.outcome == "succeeded" and record.error is None
    assert record.source == f"sqlite://{db}" or record.source.endswith(str(db))
    assert record.rows == 3000 and record.bytes > 0 and record.tables == 1
    assert record.path == result.path and record.compressor == "gzip" and record.level == 6
    assert record.uncompressed_bytes == result.compression.bytes_in and record.compressed_bytes == result.compression.bytes_out
    assert record.peak_rss_bytes and record.peak_rss_bytes > 10 * MIB
    assert record.mean_cpu_percent is not None and record.duration_s > 0
    assert record.rows_per_second == pytest.approx(3000 / record.duration_s, rel=0.01)
    assert record.memory_budget_bytes == 512 * MIB and record.batch_bytes == 256 * 1024
    assert datetime.datetime.fromisoformat(record.started_at) <= datetime.datetime.fromisoformat(record.ended_at)
    assert record.ended_at.endswith("Z")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_failed_run_is_recorded_with_its_error(tmp_path: Path, _private_history: Path) -> None:
    with pytest.raises(UnibackupError):
        service().create_backup(str(tmp_path / "missing.db"), tmp_path / "out")
    (record,) = read_history(_private_history)[0]
    assert record.outcome == "failed" and record.error_class == "user"
    assert "does not exist" in record.error
    assert record.source == str(tmp_path / "missing.db")  # named, though it never opened


def test_a_run_that_fails_on_an_option_names_its_source(db: Path, tmp_path: Path, _private_history: Path) -> None:
    with pytest.raises(UnibackupError):
        service().create_backup(str(db), tmp_path / "out", batching="bogus")
    (record,) = read_history(_private_history)[0]
    assert record.outcome == "failed" and record.source == f"sqlite:///{str(db).lstrip('/')}"


def _final(kind: str, source: str | None = None, target: str | None = None, **details: Any) -> Event:
    operation = {"id": "op1", "kind": "restore", "source": source, "target": target, "started_at": 1000.0, "ended_at": 1004.0, "outcome": {"finished": "succeeded", "failed": "failed", "cancelled": "cancelled"}[kind], "error": None}
    return Event(kind=kind, operation_id="op1", operation="restore", at=1004.0, message="restore cancelled by SIGINT" if kind != "finished" else None, details={"operation": operation, "summary": {}, **details})


def test_a_cancelled_run_is_recorded(tmp_path: Path) -> None:
    recorder = HistoryRecorder({}, path=tmp_path / "h.jsonl")
    recorder.handle(Event(kind="batch_written", operation_id="op1", operation="restore", rows=10, bytes=0))
    recorder.handle(_final("cancelled", "backup.ubk.jsonl.zst", "sqlite:///data/t.db", **{"class": "cancelled"}))
    (record,) = read_history(tmp_path / "h.jsonl")[0]
    assert record.outcome == "cancelled" and record.error == "restore cancelled by SIGINT"
    assert record.duration_s == 4.0 and record.rows == 10 and record.rows_per_second == 2.5
    assert record.started_at == "1970-01-01T00:16:40.000Z"


def test_no_credentials_reach_the_history(tmp_path: Path) -> None:
    recorder = HistoryRecorder({}, path=tmp_path / "h.jsonl")
    recorder.handle(_final("finished", "postgresql://alice:hunter2@db.example:5432/app?sslmode=require&password=hunter2", "mysql://bob:pw%40x@h/d"))
    text = (tmp_path / "h.jsonl").read_text()
    assert "hunter2" not in text and "pw%40x" not in text and "pw@x" not in text
    (record,) = read_history(tmp_path / "h.jsonl")[0]
    assert record.source == "postgresql://alice@db.example:5432/app?sslmode=require"
    assert record.target == "mysql://bob@h/d"


def test_without_credentials() -> None:
    assert without_credentials(None) is None
    assert without_credentials("/plain/path.db") == "/plain/path.db"
    assert without_credentials("sqlite:///x.db") == "sqlite:///x.db"
    assert without_credentials("postgresql://u:p@h/db") == "postgresql://u@h/db"
    assert without_credentials("postgresql://:p@h/db") == "postgresql://h/db"
    assert without_credentials("mysql://h/db?token=abc&x=1") == "mysql://h/db?x=1"


def test_a_history_that_cannot_be_written_is_a_warning_not_a_failure(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(HISTORY_ENV, str(blocker / "history.jsonl"))
    with caplog.at_level(logging.WARNING, logger="unibackup.plugins.history"):
        result = service().create_backup(str(db), tmp_path / "out")
    assert Path(result.path).is_file()
    assert any("could not record the operation in the history" in r.getMessage() for r in caplog.records)


def test_monitoring_disabled_records_nothing(db: Path, tmp_path: Path, _private_history: Path) -> None:
    service(Config(monitoring=MonitoringConfig(enabled=False))).create_backup(str(db), tmp_path / "out")
    assert not _private_history.exists()


def _append_many(path: str, worker: int, count: int) -> None:
    for n in range(count):
        append_record(Path(path), record(n, id=f"w{worker}-{n}", error="x" * 3000))


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(str(path), worker, 200)) for worker in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    records, skipped = read_history(path)
    assert skipped == 0 and len(records) == 800
    assert len({r.id for r in records}) == 800


def test_unreadable_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    append_record(path, record(0))
    with open(path, "ab") as handle:
        handle.write(b'{"id": "cut short", "operat\n[1, 2]\n\n')
    append_record(path, record(1))
    records, skipped = read_history(path)
    assert [r.id for r in records] == ["r0", "r1"] and skipped == 2


# -- the report ------------------------------------------------------------------------------------------
BASE = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def record(n: int, **fields: Any) -> HistoryRecord:
    """The n-th run of a steady nightly backup: 1 GB of rows in 20 s, zstd to a third."""
    ended = BASE + datetime.timedelta(days=n)
    values: dict[str, Any] = dict(
        id=f"r{n}",
        operation="backup",
        outcome="succeeded",
        started_at=(ended - datetime.timedelta(seconds=20)).isoformat().replace("+00:00", "Z"),
        ended_at=ended.isoformat().replace("+00:00", "Z"),
        duration_s=20.0,
        source="sqlite:///srv/app.db",
        rows=10_000_000,
        bytes=1_000_000_000,
        compressor="zstd",
        level=3,
        uncompressed_bytes=1_000_000_000,
        compressed_bytes=300_000_000,
        peak_rss_bytes=80 * MIB,
        mean_cpu_percent=95.0,
        memory_budget_bytes=512 * MIB,
        batch_bytes=256 * 1024,
    )
    values.update(fields)
    duration = values["duration_s"]
    values.setdefault("rows_per_second", values["rows"] / duration)
    values.setdefault("mb_per_second", values["bytes"] / duration / 1e6)
    return HistoryRecord(**values)


def messages(report: Any, topic: str | None = None) -> list[str]:
    return [r.message for r in report.recommendations if topic is None or r.topic == topic]


def test_a_healthy_history_has_trends_and_no_recommendations() -> None:
    report = build_report([record(n) for n in range(8)])
    assert report.total_runs == 8 and messages(report) == []
    (trend,) = report.trends
    assert trend.runs == 8 and trend.throughput_unit == "MB/s"
    assert trend.latest_throughput == pytest.approx(50.0) and trend.median_throughput == pytest.approx(50.0)
    assert trend.throughput_change == pytest.approx(0.0) and trend.duration_change == pytest.approx(0.0)
    assert report.failures.failure_rate == 0.0
    assert "none: the recorded runs show no problem" in "\n".join(render_text(report, 10))


def test_a_throughput_drop_against_the_median_is_recommended_on() -> None:
    runs = [record(n) for n in range(6)] + [record(6, duration_s=100 / 3)]  # 50 -> 30 MB/s
    report = build_report(runs)
    (message,) = messages(report, "throughput")
    assert "throughput of backups of sqlite:///srv/app.db fell 40% against the median of the 6 runs before (30.0 vs 50.0 MB/s)" in message
    assert report.trends[0].duration_change == pytest.approx(2 / 3)


def test_too_few_runs_are_not_a_trend_worth_a_recommendation() -> None:
    report = build_report([record(0), record(1), record(2, duration_s=100)])
    assert messages(report) == [] and report.trends[0].throughput_change == pytest.approx(-0.8)


def test_a_duration_that_grew_with_the_data_is_explained() -> None:
    runs = [record(n) for n in range(5)] + [record(5, duration_s=40.0, rows=20_000_000, bytes=2_000_000_000)]
    (message,) = messages(build_report(runs), "duration")
    assert "take 100% longer than the median (40.0 vs 20.0 s) because the data grew 100%" in message


def test_peak_memory_near_the_budget_is_recommended_on() -> None:
    report = build_report([record(0), record(1, peak_rss_bytes=480 * MIB)])
    (message,) = messages(report, "memory")
    assert "came near the budget: 480 MiB, 94% of 512 MiB; lower batching.batch_bytes (now 256 kB)" in message


def test_a_slow_compressor_for_a_barely_smaller_file_is_recommended_against() -> None:
    runs = [record(n) for n in range(4)]
    runs += [record(4 + n, compressor="brotli", level=5, duration_s=100.0, compressed_bytes=291_000_000) for n in range(3)]
    (message,) = messages(build_report(runs), "compression")
    assert message.startswith("brotli is 5.0x slower than zstd on sqlite:///srv/app.db for a 3% smaller file")
    assert "prefer zstd" in message


def test_a_slower_compressor_that_saves_a_lot_is_left_alone() -> None:
    runs = [record(n) for n in range(3)] + [record(3 + n, compressor="brotli", duration_s=100.0, compressed_bytes=200_000_000) for n in range(3)]
    assert messages(build_report(runs), "compression") == []


def test_repeated_failures_are_recommended_on() -> None:
    runs = [record(n) for n in range(7)]
    runs += [record(7 + n, outcome="failed", error=f"the database 'app.db' is locked ({n})", error_class="transient", rows=0, bytes=0) for n in range(3)]
    report = build_report(runs)
    assert report.failures.failed == 3 and report.failures.failure_rate == pytest.approx(0.3)
    (subject,) = report.failures.by_subject
    assert subject.failed == 3 and subject.last_error == "the database 'app.db' is locked (2)"
    (message,) = messages(report, "failures")
    assert message.startswith("3 of the last 10 backups of sqlite:///srv/app.db failed; the latest error: the database 'app.db' is locked (2)")
    assert "raise retry.read.max_elapsed" in message


def test_frequent_retries_are_recommended_on() -> None:
    runs = [record(n, retries=2 if n % 2 else 0) for n in range(10)]
    (message,) = messages(build_report(runs), "retries")
    assert "needed retries in 5 of the last 10 runs (10 in all)" in message


def test_filters_and_last() -> None:
    runs = [record(n) for n in range(5)] + [record(5 + n, operation="restore", source="x.ubk.jsonl.zst", target="sqlite:///data/r.db", bytes=0) for n in range(3)]
    report = build_report(runs, last=2)
    assert [r.id for r in report.runs] == ["r7", "r6"] and report.total_runs == 8
    assert {(t.operation, t.subject) for t in report.trends} == {("backup", "sqlite:///srv/app.db"), ("restore", "sqlite:///data/r.db")}
    assert next(t for t in report.trends if t.operation == "restore").throughput_unit == "rows/s"
    only = build_report(runs, operation="backup")
    assert only.total_runs == 5 and {r.operation for r in only.runs} == {"backup"}
    assert build_report(runs, source="r.db").total_runs == 3


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UNIBACKUP_LOAD_PLUGINS", "")
    monkeypatch.delenv("UNIBACKUP_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_the_report_command(cli_env: None, _private_history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "report")
    assert code == 0 and "no runs recorded yet" in out
    for n in range(6):
        append_record(_private_history, record(n))
    append_record(_private_history, record(6, duration_s=100 / 3, peak_rss_bytes=500 * MIB))
    append_record(_private_history, record(7, operation="verify", outcome="failed", error="x is invalid: a line is cut", error_class="corrupt-input", rows=0, bytes=0))
    code, out, err = run(capsys, "report", "--last", "3")
    assert code == 0, err
    assert f"history: {_private_history} (8 runs)" in out
    assert out.count("2026-01-0") == 3  # three recent runs
    assert "failures: 1 of 8 runs failed (12%), 0 cancelled" in out
    assert "- throughput of backups of sqlite:///srv/app.db fell 40%" in out
    assert "- peak memory of the latest backup of sqlite:///srv/app.db came near the budget" in out
    code, out, err = run(capsys, "report", "--operation", "backup", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["total_runs"] == 7 and len(data["runs"]) == 7
    assert {r["topic"] for r in data["recommendations"]} == {"throughput", "memory"}
    assert data["trends"][0]["throughput_change"] == pytest.approx(-0.4)
    code, out, err = run(capsys, "report", "--source", "nosuchthing")
    assert code == 0, err
    assert "none of the 8 recorded runs matches the filter" in out


def test_a_real_backup_shows_in_the_report(db: Path, cli_env: None, _private_history: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "backup", str(db), "-o", "out")
    assert code == 0, err
    code, out, err = run(capsys, "report", "--json")
    data = json.loads(out)
    (run_,) = data["runs"]
    assert run_["operation"] == "backup" and run_["rows"] == 3000 and run_["outcome"] == "succeeded"
    assert attrs.fields_dict(HistoryRecord).keys() == run_.keys()
    assert os.path.basename(run_["path"]).startswith("source-")


def test_reading_can_keep_only_the_latest_records(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    for n in range(10):
        append_record(path, record(n))
    records, skipped = read_history(path, limit=3)
    assert [r.id for r in records] == ["r7", "r8", "r9"] and skipped == 0
