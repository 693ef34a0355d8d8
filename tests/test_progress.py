"""The progress display: what the line says, how often it is drawn, wrong estimates, and that it
never raises and leaves a clean line."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from typing import Any

import pytest

from unibackup.config import Config
from unibackup.errors import CancelledError
from unibackup.events import Event
from unibackup.hooks import dispatch
from unibackup.manager import get_plugin_manager
from unibackup.plugins.progress import ProgressDisplay, format_duration
from unibackup.service import BackupService


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def event(kind: str, **fields: Any) -> Event:
    return Event(kind=kind, operation_id="op1", operation="backup", **fields)


def display(width: int = 120) -> tuple[ProgressDisplay, io.StringIO, Clock]:
    stream, clock = io.StringIO(), Clock()
    return ProgressDisplay({}, stream=stream, clock=clock, width=width), stream, clock


def last_line(stream: io.StringIO) -> str:
    return stream.getvalue().rsplit("\r", 1)[-1].rstrip()


def drive(progress: ProgressDisplay, clock: Clock, *, batches: int, rows: int, size: int, step: float) -> None:
    for _ in range(batches):
        clock.now += step
        progress.handle(event("batch_written", table="orders", rows=rows, bytes=size))


def test_the_line_shows_table_counts_throughput_and_eta() -> None:
    progress, stream, clock = display()
    progress.handle(event("started"))
    progress.handle(event("table_started", table="customers", total_rows_estimate=1000, details={"index": 1, "tables": 2, "operation_rows_estimate": 11000}))
    progress.handle(event("table_started", table="orders", total_rows_estimate=10000, details={"index": 2, "tables": 2, "operation_rows_estimate": 11000}))
    drive(progress, clock, batches=10, rows=100, size=1_000_000, step=0.25)  # 400 rows/s, 4 MB/s
    line = last_line(stream)
    assert line.startswith("backup [2/2] orders: 1,000/10,000 rows (10%)"), line
    assert "400 rows/s" in line and "4.0 MB/s" in line
    assert "ETA 0:23" in line  # 9,000 rows left at 400 rows/s: 22.5 s
    assert "\n" not in stream.getvalue()


def test_redraws_at_most_five_times_a_second() -> None:
    progress, stream, clock = display()
    progress.handle(event("table_started", table="orders", total_rows_estimate=10**6))
    before = stream.getvalue().count("\r")
    drive(progress, clock, batches=1000, rows=10, size=100, step=0.001)  # 1000 batches in one second
    draws = stream.getvalue().count("\r") - before
    assert 4 <= draws <= 6


@pytest.mark.parametrize("estimate", [None, 0, 50])
def test_a_missing_or_wrong_estimate_gives_no_percentage_past_100_and_no_negative_eta(estimate: int | None) -> None:
    progress, stream, clock = display()
    progress.handle(event("table_started", table="orders", total_rows_estimate=estimate, details={"index": 1, "tables": 1, "operation_rows_estimate": estimate or 0}))
    drive(progress, clock, batches=20, rows=100, size=0, step=0.25)  # 2,000 rows: past any estimate
    text = stream.getvalue()
    assert "2,000 rows" in last_line(stream)
    assert "%" not in last_line(stream)
    for percent in re.findall(r"\((\d+)%\)", text):
        assert int(percent) <= 100
    assert "-" not in "".join(re.findall(r"ETA [^ ]+", text))
    assert "MB/s" not in text  # no bytes reported: no byte rate


def test_an_estimate_reached_never_shows_more_than_99_percent() -> None:
    progress, stream, clock = display()
    progress.handle(event("table_started", table="t", total_rows_estimate=1000))
    drive(progress, clock, batches=5, rows=199, size=10, step=0.3)
    assert "(99%)" in last_line(stream)
    drive(progress, clock, batches=1, rows=5, size=10, step=0.3)
    assert "1,000 rows" in last_line(stream) and "%" not in last_line(stream)


@pytest.mark.parametrize("final", ["finished", "failed", "cancelled"])
def test_the_line_is_cleared_when_the_operation_ends(final: str) -> None:
    progress, stream, clock = display()
    progress.handle(event("table_started", table="orders", total_rows_estimate=100))
    drive(progress, clock, batches=3, rows=10, size=10, step=0.3)
    progress.handle(event(final, message="boom" if final != "finished" else None))
    text = stream.getvalue()
    assert text.endswith("\r") and text.rsplit("\r", 2)[-2].strip() == ""
    length = len(stream.getvalue())
    progress.close()
    assert len(stream.getvalue()) == length  # nothing more to clear


def test_a_retry_clears_the_line_for_its_log_line() -> None:
    progress, stream, clock = display()
    progress.handle(event("table_started", table="orders", total_rows_estimate=100))
    progress.handle(event("retry", message="locked"))
    assert stream.getvalue().endswith("\r")


def test_the_line_fits_a_narrow_terminal() -> None:
    progress, stream, clock = display(width=40)
    progress.handle(event("table_started", table="a_table_with_a_really_long_name_indeed", total_rows_estimate=10**6, details={"index": 3, "tables": 9}))
    drive(progress, clock, batches=10, rows=1000, size=10**6, step=0.25)
    for line in stream.getvalue().split("\r"):
        assert len(line) <= 39


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError("the terminal went away")


def test_a_broken_terminal_never_raises_and_silences_the_display() -> None:
    clock = Clock()
    progress = ProgressDisplay({}, stream=BrokenStream(), clock=clock, width=80)
    progress.handle(event("table_started", table="orders", total_rows_estimate=100))
    drive(progress, clock, batches=5, rows=10, size=10, step=1)
    progress.handle(event("finished"))
    progress.close()


def test_format_duration() -> None:
    assert format_duration(7) == "0:07"
    assert format_duration(271) == "4:31"
    assert format_duration(3723) == "1:02:03"
    assert format_duration(-5) == "0:00"


def _backup(tmp_path: Path, make_db: Any, interactive: bool) -> None:
    db = make_db("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);", inserts=[("INSERT INTO t(v) VALUES (?)", [(f"value {i}" * 20,) for i in range(20_000)])])
    service = BackupService(Config(), get_plugin_manager(load_entrypoints=False), interactive=interactive)
    service.create_backup(str(db), tmp_path / "out")


def test_an_interactive_backup_draws_on_stderr_and_ends_on_a_clean_line(tmp_path: Path, make_db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _backup(tmp_path, make_db, interactive=True)
    err = capsys.readouterr().err
    assert "\rbackup t: " in err and "rows" in err
    assert err.endswith("\r") and err.rsplit("\r", 2)[-2].strip() == ""


def test_a_non_interactive_backup_draws_nothing(tmp_path: Path, make_db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _backup(tmp_path, make_db, interactive=False)
    assert "\r" not in capsys.readouterr().err


def test_handling_a_batch_is_cheap() -> None:
    progress, stream, clock = display()
    progress.handle(event("table_started", table="orders", total_rows_estimate=10**9))
    batch = event("batch_written", table="orders", rows=1000, bytes=250_000)
    started = time.perf_counter()
    for _ in range(100_000):
        clock.now += 0.0001
        progress.handle(batch)
    assert time.perf_counter() - started < 1.0  # under 10 µs a batch, drawing included


class CancelledWhileWriting(io.StringIO):
    def write(self, text: str) -> int:
        raise CancelledError("backup cancelled by SIGINT; nothing was left behind")


def test_a_cancellation_that_arrives_while_drawing_is_not_swallowed() -> None:
    clock = Clock()
    progress = ProgressDisplay({}, stream=CancelledWhileWriting(), clock=clock, width=80)
    listeners: list[Any] = [progress]
    with pytest.raises(CancelledError):
        dispatch(listeners, event("table_started", table="orders", total_rows_estimate=100), lambda listener, error: None)
    assert listeners == [progress]  # the listener was not dropped for it
