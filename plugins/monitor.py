"""The ``monitor`` listener: a performance monitoring session per operation.

A background thread (a daemon, stopped when the operation ends) samples the process's resident
memory, CPU use and throughput every ``monitoring.sample_interval`` seconds. Every batch adds its
rows and bytes and reads the kernel's peak-RSS counter (a system call of well under a
microsecond), so a spike between two samples is not missed and the hot path stays cheap.

Memory is judged against ``batching.memory_budget_mb``: past ``monitoring.memory_warning_ratio`` of
it a warning is logged once (and kept in the summary); past ``monitoring.memory_gc_ratio`` the
garbage collector runs, at most once every :data:`GC_COOLDOWN` seconds.

At the end the monitor hands a :class:`MonitorSummary` to the operation's final event
(``details["summary"]["monitor"]``), where the history recorder finds it.
"""

from __future__ import annotations

import collections
import gc
import logging
import resource
import sys
import threading
import time
from typing import Any, Callable

import attrs
import psutil

from unibackup import hookimpl
from unibackup.events import Event, EventListener
from unibackup.models import to_dict

log = logging.getLogger(__name__)

MIB = 1024 * 1024
#: seconds between two garbage collections the monitor triggers
GC_COOLDOWN = 5.0
#: periodic samples kept for the summary's figures (a day at the default interval would be 172 800)
MAX_SAMPLES = 10_000
_FINAL = frozenset({"finished", "failed", "cancelled"})
# ru_maxrss is in kibibytes on Linux and the BSDs, in bytes on macOS
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


def kernel_peak_rss() -> int:
    """The process's peak resident memory so far, as the kernel counts it."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _MAXRSS_UNIT


@attrs.frozen
class Sample:
    """One periodic measurement."""

    at: float  # seconds since the session started
    rss_bytes: int
    cpu_percent: float
    rows: int
    bytes: int


@attrs.frozen
class MonitorSummary:
    """The performance figures of one operation (what the history records)."""

    duration_s: float
    rows: int
    bytes: int
    peak_rss_bytes: int
    mean_cpu_percent: float
    peak_cpu_percent: float
    rows_per_second: float
    mb_per_second: float
    samples: int
    batches: int
    retries: int = 0
    memory_budget_bytes: int | None = None
    memory_warnings: tuple[str, ...] = ()
    gc_runs: int = 0


class PerformanceMonitor(EventListener):
    """One monitoring session; see the module docstring."""

    name = "monitor"
    version = "1.0"

    def __init__(
        self,
        settings: dict[str, Any] | None = None,
        *,
        process: Any = None,
        clock: Callable[[], float] = time.monotonic,
        peak_rss: Callable[[], int] = kernel_peak_rss,
        collect: Callable[[], Any] = gc.collect,
        start_thread: bool = True,
    ):
        super().__init__(settings)
        monitoring = self.settings.get("monitoring") or {}
        batching = self.settings.get("batching") or {}
        self.enabled = bool(monitoring.get("enabled", True))
        self.interval = float(monitoring.get("sample_interval") or 0.5)
        budget_mb = batching.get("memory_budget_mb")
        self.budget = int(budget_mb * MIB) if budget_mb else None
        self.warn_at = int(self.budget * float(monitoring.get("memory_warning_ratio", 0.8))) if self.budget else None
        self.gc_at = int(self.budget * float(monitoring.get("memory_gc_ratio", 0.9))) if self.budget else None
        self._process = process
        self._clock = clock
        self._peak_rss = peak_rss
        self._collect = collect
        self._start_thread = start_thread
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started: float | None = None
        self._cpu_start = 0.0
        self._kernel_peak_start = 0
        self._kernel_peak_seen = 0
        self.rows = 0
        self.bytes = 0
        self.batches = 0
        self.retries = 0
        self.peak_rss_bytes = 0
        self.peak_cpu_percent = 0.0
        self.samples: collections.deque[Sample] = collections.deque(maxlen=MAX_SAMPLES)
        self.sample_count = 0
        self.warnings: list[str] = []
        self.gc_runs = 0
        self._last_gc = float("-inf")
        self._summary: MonitorSummary | None = None

    # -- the session -----------------------------------------------------------------------------
    def start(self) -> None:
        """Begin measuring (the ``started`` event does this)."""
        if self._started is not None or not self.enabled:
            return
        if self._process is None:
            self._process = psutil.Process()
        self._started = self._clock()
        self._cpu_start = self._cpu_seconds()
        self._process.cpu_percent(None)  # the next call measures from here
        self._kernel_peak_start = self._kernel_peak_seen = self._peak_rss()
        self.sample()
        if self._start_thread:
            self._thread = threading.Thread(target=self._run, name=f"unibackup-monitor-{id(self):x}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception as error:  # the process table went away, or psutil failed: stop sampling
                log.debug("monitor sampling stopped: %s", error)
                return

    def _cpu_seconds(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def sample(self) -> Sample:
        """Measure memory, CPU and throughput now (the thread calls this every interval)."""
        rss = int(self._process.memory_info().rss)
        cpu = float(self._process.cpu_percent(None))
        now = self._clock()
        with self._lock:
            sample = Sample(now - (self._started or now), rss, cpu, self.rows, self.bytes)
            self.samples.append(sample)
            self.sample_count += 1
            self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
            self.peak_cpu_percent = max(self.peak_cpu_percent, cpu)
        self._check_memory(rss, now)
        return sample

    def _check_memory(self, rss: int, now: float) -> None:
        if self.warn_at is not None and rss >= self.warn_at and not self.warnings:
            message = (
                f"memory use reached {rss / MIB:.0f} MiB, {100 * rss / self.budget:.0f}% of the budget of "  # type: ignore[operator]
                f"{self.budget / MIB:.0f} MiB; lower batching.batch_bytes or the compression level, or raise batching.memory_budget_mb"  # type: ignore[operator]
            )
            self.warnings.append(message)
            log.warning("%s", message)
        if self.gc_at is not None and rss >= self.gc_at and now - self._last_gc >= GC_COOLDOWN:
            self._last_gc = now
            self.gc_runs += 1
            self._collect()

    def stop(self) -> None:
        """Stop the sampling thread (idempotent)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(1.0, 2 * self.interval))
        self._thread = None

    # -- events ----------------------------------------------------------------------------------
    def handle(self, event: Event) -> None:
        kind = event.kind
        if kind == "batch_written":
            self.rows += event.rows
            self.bytes += event.bytes
            self.batches += 1
            if self._started is not None:
                peak = self._peak_rss()
                if peak > self._kernel_peak_seen:
                    # the kernel's peak rose during this operation: that is the memory in use now
                    self._kernel_peak_seen = peak
                    if peak > self.peak_rss_bytes:
                        self.peak_rss_bytes = peak
                    self._check_memory(peak, self._clock())
        elif kind == "started":
            self.start()
        elif kind == "retry":
            self.retries += 1
        elif kind in _FINAL:
            self.stop()

    def summary(self) -> dict[str, Any]:
        result = self.finish()
        return to_dict(result) if result is not None else {}

    def finish(self) -> MonitorSummary | None:
        """Stop sampling and compute the figures of the session (once)."""
        if self._summary is not None or self._started is None:
            return self._summary
        self.stop()
        try:
            self.sample()
            cpu_seconds = self._cpu_seconds() - self._cpu_start
        except Exception:
            cpu_seconds = 0.0
        duration = max(0.0, self._clock() - self._started)
        mean_cpu = 100.0 * cpu_seconds / duration if duration > 0 else 0.0
        self._summary = MonitorSummary(
            duration_s=round(duration, 6),
            rows=self.rows,
            bytes=self.bytes,
            peak_rss_bytes=self.peak_rss_bytes,
            mean_cpu_percent=round(mean_cpu, 1),
            peak_cpu_percent=round(self.peak_cpu_percent, 1),
            rows_per_second=round(self.rows / duration, 1) if duration > 0 else 0.0,
            mb_per_second=round(self.bytes / duration / 1_000_000, 3) if duration > 0 else 0.0,
            samples=self.sample_count,
            batches=self.batches,
            retries=self.retries,
            memory_budget_bytes=self.budget,
            memory_warnings=tuple(self.warnings),
            gc_runs=self.gc_runs,
        )
        return self._summary

    def close(self) -> None:
        self.stop()


@hookimpl
def unibackup_register_listeners() -> list[type[EventListener]]:
    return [PerformanceMonitor]
