"""The performance monitor: sampling, the summary it hands to the final event, memory thresholds,
its thread, and the cost of a batch."""

from __future__ import annotations

import collections
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from unibackup.config import Config
from unibackup.events import Event, EventListener
from unibackup.manager import get_plugin_manager
from unibackup.plugins.monitor import MIB, PerformanceMonitor
from unibackup.service import BackupService

Memory = collections.namedtuple("Memory", "rss")
Times = collections.namedtuple("Times", "user system")


class FakeProcess:
    """What the monitor asks psutil, answered from settable numbers."""

    def __init__(self) -> None:
        self.rss = 50 * MIB
        self.cpu = 0.0  # seconds of CPU used
        self.percent = 0.0

    def memory_info(self) -> Memory:
        return Memory(self.rss)

    def cpu_percent(self, interval: Any = None) -> float:
        return self.percent

    def cpu_times(self) -> Times:
        return Times(self.cpu * 0.75, self.cpu * 0.25)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event(kind: str, **fields: Any) -> Event:
    return Event(kind=kind, operation_id="op1", operation="backup", **fields)


def monitor(budget_mb: int = 100, **monitoring: Any) -> tuple[PerformanceMonitor, FakeProcess, Clock, list[int], list[int]]:
    process, clock, collected, kernel_peak = FakeProcess(), Clock(), [], [0]
    settings = {"monitoring": {"sample_interval": 0.5, **monitoring}, "batching": {"memory_budget_mb": budget_mb}}
    instance = PerformanceMonitor(
        settings, process=process, clock=clock, peak_rss=lambda: kernel_peak[0], collect=lambda: collected.append(1), start_thread=False
    )
    return instance, process, clock, collected, kernel_peak


def test_the_summary_has_the_figures_of_the_operation() -> None:
    mon, process, clock, _, _ = monitor()
    mon.handle(event("started"))
    for n in range(10):
        clock.now += 0.5
        process.cpu += 0.25  # half a core
        process.rss = (50 + n) * MIB
        process.percent = 40.0 + n
        mon.handle(event("batch_written", table="t", rows=1000, bytes=2_000_000))
        mon.sample()
    mon.handle(event("retry", message="locked"))
    summary = mon.summary()
    assert summary["duration_s"] == pytest.approx(5.0)
    assert summary["rows"] == 10_000 and summary["bytes"] == 20_000_000 and summary["batches"] == 10
    assert summary["rows_per_second"] == pytest.approx(2000.0)
    assert summary["mb_per_second"] == pytest.approx(4.0)
    assert summary["peak_rss_bytes"] == 59 * MIB
    assert summary["mean_cpu_percent"] == pytest.approx(50.0)
    assert summary["peak_cpu_percent"] == pytest.approx(49.0)
    assert summary["samples"] == 12  # at the start, ten, and the last one
    assert summary["retries"] == 1
    assert summary["memory_budget_bytes"] == 100 * MIB
    assert mon.summary() == summary  # computed once


def test_a_batch_reads_the_kernel_peak_so_a_spike_between_samples_counts() -> None:
    mon, process, clock, _, kernel_peak = monitor(budget_mb=1000)
    kernel_peak[0] = 60 * MIB
    mon.handle(event("started"))
    kernel_peak[0] = 300 * MIB  # rose during the operation, between two samples
    mon.handle(event("batch_written", table="t", rows=1, bytes=1))
    assert mon.summary()["peak_rss_bytes"] == 300 * MIB


def test_an_earlier_peak_of_the_process_is_not_counted() -> None:
    mon, process, clock, _, kernel_peak = monitor()
    kernel_peak[0] = 900 * MIB  # an earlier operation in the same process
    mon.handle(event("started"))
    mon.handle(event("batch_written", table="t", rows=1, bytes=1))
    assert mon.summary()["peak_rss_bytes"] == 50 * MIB


def test_memory_near_the_budget_warns_once_and_collects_garbage(caplog: pytest.LogCaptureFixture) -> None:
    mon, process, clock, collected, _ = monitor(budget_mb=100)
    mon.handle(event("started"))
    caplog.set_level(logging.WARNING, logger="unibackup.plugins.monitor")
    process.rss = 85 * MIB  # past 80 %: a warning, no collection yet
    mon.sample()
    mon.sample()
    assert len(caplog.records) == 1 and "85 MiB, 85% of the budget of 100 MiB" in caplog.records[0].getMessage()
    assert collected == []
    process.rss = 95 * MIB  # past 90 %: collect, then not again within the cool-down
    mon.sample()
    clock.now += 1
    mon.sample()
    assert collected == [1]
    clock.now += 10
    mon.sample()
    assert collected == [1, 1]
    assert len(caplog.records) == 1
    summary = mon.summary()
    assert summary["gc_runs"] == 2 and len(summary["memory_warnings"]) == 1
    assert "lower batching.batch_bytes" in summary["memory_warnings"][0]


def test_the_ratios_are_configurable() -> None:
    mon, process, clock, collected, _ = monitor(budget_mb=100, memory_warning_ratio=0.5, memory_gc_ratio=0.6)
    mon.handle(event("started"))
    process.rss = 65 * MIB
    mon.sample()
    assert mon.warnings and collected == [1]


def test_the_thread_samples_in_the_background_and_stops_at_the_end() -> None:
    mon = PerformanceMonitor({"monitoring": {"sample_interval": 0.01}, "batching": {"memory_budget_mb": 100_000}})
    mon.handle(event("started"))
    thread = mon._thread
    assert thread is not None and thread.daemon and thread.is_alive()
    time.sleep(0.2)
    mon.handle(event("batch_written", table="t", rows=5, bytes=50))
    summary = mon.summary()
    mon.handle(event("finished"))
    mon.close()
    assert not thread.is_alive()
    assert summary["samples"] >= 5 and summary["peak_rss_bytes"] > 10 * MIB
    assert not [t for t in threading.enumerate() if t.name.startswith("unibackup-monitor")]


def test_a_disabled_monitor_measures_nothing() -> None:
    mon = PerformanceMonitor({"monitoring": {"enabled": False}})
    mon.handle(event("started"))
    mon.handle(event("batch_written", table="t", rows=5, bytes=50))
    assert mon._thread is None and mon.summary() == {}
    mon.close()


class FinalEvents(EventListener):
    name = "final-events"

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        if event.kind in ("finished", "failed", "cancelled"):
            self.events.append(event)


def test_a_backup_hands_the_summary_to_the_final_event(make_db: Any, tmp_path: Path) -> None:
    db = make_db("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);", inserts=[("INSERT INTO t(v) VALUES (?)", [(f"v{i}",) for i in range(5000)])])
    final = FinalEvents()
    service = BackupService(Config(), get_plugin_manager(load_entrypoints=False), listeners=[final])
    result = service.create_backup(str(db), tmp_path / "out")
    (finished,) = final.events
    summary = finished.details["summary"]["monitor"]
    assert summary["rows"] == 5000 == result.trailer.rows
    assert summary["bytes"] > 0 and summary["peak_rss_bytes"] > 0
    assert summary["duration_s"] > 0 and summary["mean_cpu_percent"] >= 0
    assert finished.details["operation"]["outcome"] == "succeeded"
    assert not [t for t in threading.enumerate() if t.name.startswith("unibackup-monitor")]


def test_a_failed_operation_still_stops_the_thread_and_summarises(tmp_path: Path) -> None:
    final = FinalEvents()
    service = BackupService(Config(), get_plugin_manager(load_entrypoints=False), listeners=[final])
    with pytest.raises(Exception):
        service.create_backup(str(tmp_path / "missing.db"), tmp_path / "out")
    (failed,) = final.events
    assert failed.kind == "failed" and "monitor" in failed.details["summary"]
    assert not [t for t in threading.enumerate() if t.name.startswith("unibackup-monitor")]


def test_handling_a_batch_is_cheap() -> None:
    mon = PerformanceMonitor({"monitoring": {"sample_interval": 60}, "batching": {"memory_budget_mb": 512}}, start_thread=False)
    mon.handle(event("started"))
    batch = event("batch_written", table="t", rows=1000, bytes=250_000)
    started = time.perf_counter()
    for _ in range(100_000):
        mon.handle(batch)
    assert time.perf_counter() - started < 1.0  # under 10 µs a batch (it is about 1 µs)
    mon.close()
