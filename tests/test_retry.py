"""The retry strategy, driven by a fake clock: exact delays, limits and messages, and no waiting.

Then the strategy inside a backup: transient failures of the connection and of the read are
retried (a read starts over in a fresh temporary file), every retry is logged and emitted as a
``retry`` event, and the final message says how many attempts over how long and which settings
to raise.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from unibackup.cli import main
from unibackup.config import RetryPolicyConfig, parse_config
from unibackup.errors import CorruptBackupError, ErrorClass, TransientError, UsageError
from unibackup.events import Event, EventListener
from unibackup.manager import get_plugin_manager
from unibackup.plugins.sqlite import SQLiteSource
from unibackup.retry import ExponentialBackoff, RetryAttempt
from unibackup.service import BackupService


class FakeClock:
    """``clock`` and ``sleep`` for the strategy: time passes only when someone sleeps or works."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """Fails with ``error`` ``failures`` times (each attempt taking ``cost`` seconds), then succeeds."""

    def __init__(self, clock: FakeClock, failures: int, error: Exception | None = None, cost: float = 0.0):
        self.clock = clock
        self.failures = failures
        self.error = error or TransientError("the database 'x.db' is locked by another process")
        self.cost = cost
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        self.clock.now += self.cost
        if self.calls <= self.failures:
            raise self.error
        return "done"


def strategy(clock: FakeClock, *, rand: float = 0.0, **settings: Any) -> ExponentialBackoff:
    return ExponentialBackoff(clock=clock.clock, sleep=clock.sleep, rand=lambda: rand, **settings)


def test_delays_double_from_the_base_delay_up_to_the_cap() -> None:
    clock = FakeClock()
    retry = strategy(clock, max_attempts=7, base_delay=0.5, max_delay=3.0, max_elapsed=1000)
    assert retry.call(Flaky(clock, 6), operation="read") == "done"
    assert clock.sleeps == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_jitter_takes_up_to_its_fraction_off_each_delay() -> None:
    clock = FakeClock()
    retry = strategy(clock, rand=1.0, max_attempts=4, base_delay=1.0, max_delay=10, jitter=0.5, max_elapsed=1000)
    retry.call(Flaky(clock, 3), operation="read")
    assert clock.sleeps == [0.5, 1.0, 2.0]
    half = strategy(FakeClock(), rand=0.5, base_delay=1.0, jitter=0.5)
    assert [half.delay_for(n) for n in (1, 2, 3)] == [0.75, 1.5, 3.0]


def test_gives_up_after_max_attempts_saying_how_many_over_how_long() -> None:
    clock = FakeClock()
    retry = strategy(clock, max_attempts=5, base_delay=0.2, max_delay=5.0, max_elapsed=30, setting_prefix="retry.read")
    flaky = Flaky(clock, failures=99, cost=1.0)  # each attempt waits a second for the lock
    with pytest.raises(TransientError) as raised:
        retry.call(flaky, operation="read")
    error = raised.value
    assert flaky.calls == 5
    assert clock.sleeps == pytest.approx([0.2, 0.4, 0.8, 1.6])
    # 5 attempts of 1 s plus 3.0 s of waiting
    assert error.user_line() == (
        "the database 'x.db' is locked by another process; tried 5 times over 8.0 s; "
        "try again or raise retry.read.max_attempts / max_elapsed"
    )
    # no outer strategy retries it again, and the exit code is that of an operation that failed
    assert error.error_class is ErrorClass.ENVIRONMENT and error.exit_code == 1
    assert isinstance(error.__cause__, TransientError)


def test_gives_up_early_when_the_next_wait_would_pass_max_elapsed() -> None:
    clock = FakeClock()
    retry = strategy(clock, max_attempts=100, base_delay=1.0, max_delay=100, max_elapsed=10)
    flaky = Flaky(clock, failures=99)
    with pytest.raises(TransientError, match=r"tried 4 times over 7\.0 s"):
        retry.call(flaky, operation="connect")
    assert clock.sleeps == [1.0, 2.0, 4.0]  # an 8 s wait would end past 10 s
    assert flaky.calls == 4


@pytest.mark.parametrize("error", [CorruptBackupError("damaged"), UsageError("bad path"), ValueError("a bug")])
def test_only_transient_errors_are_retried(error: Exception) -> None:
    clock = FakeClock()
    flaky = Flaky(clock, failures=1, error=error)
    with pytest.raises(type(error)) as raised:
        strategy(clock).call(flaky, operation="read")
    assert raised.value is error
    assert flaky.calls == 1 and clock.sleeps == []


def test_a_single_attempt_fails_with_the_error_as_it_was() -> None:
    clock = FakeClock()
    flaky = Flaky(clock, failures=1)
    with pytest.raises(TransientError) as raised:
        strategy(clock, max_attempts=1).call(flaky, operation="write_file")
    assert raised.value is flaky.error
    assert raised.value.error_class is ErrorClass.TRANSIENT


def test_every_retry_is_reported_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    seen: list[RetryAttempt] = []
    with caplog.at_level(logging.WARNING, logger="unibackup.retry"):
        strategy(clock, base_delay=0.25, max_delay=5).call(Flaky(clock, 3, cost=0.5), operation="connect", on_retry=seen.append)
    assert [(a.operation, a.attempt, a.delay, a.elapsed) for a in seen] == [
        ("connect", 1, 0.25, 0.5),
        ("connect", 2, 0.5, 1.25),
        ("connect", 3, 1.0, 2.25),
    ]
    assert all(a.error == "the database 'x.db' is locked by another process" for a in seen)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert messages[0] == "connect failed (attempt 1): the database 'x.db' is locked by another process; retrying in 0.25 s"


def test_policies_come_from_the_configuration_per_operation_kind() -> None:
    config = parse_config({"retry": {"read": {"max_attempts": 9, "base_delay": 0.1, "max_delay": 2, "max_elapsed": 60, "jitter": 0}}})
    assert config.retry.connect == RetryPolicyConfig()
    assert config.retry.write_file.max_attempts == 1
    clock = FakeClock()
    retry = ExponentialBackoff.from_config(config.retry.read, "retry.read", clock=clock.clock, sleep=clock.sleep)
    with pytest.raises(TransientError) as raised:
        retry.call(Flaky(clock, 99), operation="read")
    assert raised.value.user_line().endswith("tried 9 times over 9.1 s; try again or raise retry.read.max_attempts / max_elapsed")
    assert clock.sleeps == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]


# -- inside a backup --------------------------------------------------------------------------


class Recorder(EventListener):
    name = "recorder"

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "x.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t(v) VALUES (?)", [(f"value {i}",) for i in range(500)])
    conn.commit()
    conn.close()
    return path


def no_wait_service(recorder: Recorder, **retry: Any) -> BackupService:
    policy = {"base_delay": 0.0, "max_delay": 0.0, **retry}
    config = parse_config({"retry": {"connect": policy, "read": policy}, "preflight": {"enabled": False}})
    return BackupService(config, get_plugin_manager(load_entrypoints=False), listeners=[recorder])


def test_a_backup_retries_a_locked_connection_and_emits_retry_events(source: Path, tmp_path: Path, monkeypatch) -> None:
    opened = SQLiteSource.open_snapshot
    calls = {"n": 0}

    def flaky_open(self: SQLiteSource) -> None:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise TransientError(f"the database {source.name!r} is locked by another process")
        opened(self)

    monkeypatch.setattr(SQLiteSource, "open_snapshot", flaky_open)
    recorder = Recorder()
    result = no_wait_service(recorder).create_backup(str(source), tmp_path / "out")
    assert result.trailer.rows == 500
    retries = [e for e in recorder.events if e.kind == "retry"]
    assert [(e.details["operation"], e.details["attempt"]) for e in retries] == [("connect", 1), ("connect", 2)]
    assert retries[0].message == "the database 'x.db' is locked by another process"
    assert recorder.events[-1].kind == "finished"


def test_a_transient_failure_while_reading_starts_over_in_a_fresh_file(source: Path, tmp_path: Path, monkeypatch) -> None:
    read = SQLiteSource.read_batches
    calls = {"n": 0}

    def flaky_read(self: SQLiteSource, table: Any, sizer: Any):
        calls["n"] += 1
        if calls["n"] == 1:
            yield from []
            raise TransientError("the connection dropped")
        yield from read(self, table, sizer)

    monkeypatch.setattr(SQLiteSource, "read_batches", flaky_read)
    recorder = Recorder()
    service = no_wait_service(recorder)
    result = service.create_backup(str(source), tmp_path / "out")
    assert [(e.details["operation"], e.details["attempt"]) for e in recorder.events if e.kind == "retry"] == [("read", 1)]
    assert [p.name for p in (tmp_path / "out").iterdir()] == [Path(result.path).name]  # no temporary file left
    assert service.verify_backup(result.path).valid


def test_the_final_message_on_the_command_line(source: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    def locked(self: SQLiteSource) -> None:
        raise TransientError(f"the database {source.name!r} is locked by another process")

    monkeypatch.setattr(SQLiteSource, "open_snapshot", locked)
    config = tmp_path / "unibackup.toml"
    config.write_text("[retry.connect]\nmax_attempts = 3\nbase_delay = 0\nmax_delay = 0\n[preflight]\nenabled = false\n")
    monkeypatch.setenv("UNIBACKUP_LOAD_PLUGINS", "")
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "backup", str(source), "-o", str(tmp_path / "out")])
    assert exited.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == (
        "unibackup: error: the database 'x.db' is locked by another process; tried 3 times over 0.0 s; "
        "try again or raise retry.connect.max_attempts / max_elapsed"
    )
    assert [line for line in lines[:-1] if "retrying in" in line] == [
        "unibackup: WARNING: connect failed (attempt 1): the database 'x.db' is locked by another process; retrying in 0.00 s",
        "unibackup: WARNING: connect failed (attempt 2): the database 'x.db' is locked by another process; retrying in 0.00 s",
    ]
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
