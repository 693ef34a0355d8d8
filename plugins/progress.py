"""The ``progress`` listener: one line on stderr for a person watching a backup or restore.

It shows the operation, the table (``[2/5] orders``), rows done against the estimate, the
throughput (rows/s, MB/s over the last few seconds) and an ETA, and redraws at most five times a
second with a carriage return. The line is cleared when the operation ends, so that the command's
own output (or its error line) starts on a clean line.

Estimates come from the source's statistics and can be missing or wrong: a table that outgrows its
estimate shows its row count without a percentage, and the ETA never goes negative. The display
never raises: a terminal that went away silences it.

It is ``interactive``: the service starts it only when stderr is a terminal and ``--quiet`` is not
given.
"""

from __future__ import annotations

import collections
import shutil
import sys
import time
from typing import Any, Callable, TextIO

from unibackup import hookimpl
from unibackup.errors import CancelledError
from unibackup.events import Event, EventListener

#: seconds between two redraws (at most five a second)
REDRAW_INTERVAL = 0.2
#: seconds of history the throughput is measured over
RATE_WINDOW = 5.0
_FINAL = frozenset({"finished", "failed", "cancelled"})
_MB = 1_000_000


def format_count(value: float) -> str:
    """12,345 / 1.2M: counts short enough for one line."""
    if value >= 10_000_000:
        return f"{value / 1_000_000:.1f}M"
    return f"{int(value):,}"


def format_rate(value: float) -> str:
    if value >= 100_000:
        return f"{value / 1000:.0f}k"
    if value >= 10_000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def format_duration(seconds: float) -> str:
    """0:07, 4:31, 1:02:03."""
    seconds = max(0, int(seconds + 0.5))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressDisplay(EventListener):
    """Draws the progress line; see the module docstring."""

    name = "progress"
    version = "1.0"
    interactive = True

    def __init__(
        self,
        settings: dict[str, Any] | None = None,
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        width: int | None = None,
    ):
        super().__init__(settings)
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._fixed_width = width
        self._operation = ""
        self._table: str | None = None
        self._index = 0
        self._tables = 0
        self._table_rows = 0
        self._table_estimate: int | None = None
        self._operation_estimate: int | None = None
        self._estimated_so_far = 0  # the estimates of the tables started so far
        self._rows = 0
        self._bytes = 0
        self._started: float | None = None
        self._window: collections.deque[tuple[float, int, int]] = collections.deque()
        self._last_draw = float("-inf")
        self._drawn = 0  # characters on the line now
        self._silent = False

    # -- events ----------------------------------------------------------------------------------
    def handle(self, event: Event) -> None:
        if self._silent:
            return
        try:
            self._handle(event)
        except CancelledError:  # Ctrl-C arrived while drawing: it is the operation's
            raise
        except Exception:  # a closed or broken terminal: stop drawing, never disturb the operation
            self._silent = True

    def _handle(self, event: Event) -> None:
        kind = event.kind
        now = self._clock()
        if self._started is None:
            self._started = now
            self._window.append((now, 0, 0))
        if kind == "batch_written":
            self._table_rows += event.rows
            self._rows += event.rows
            self._bytes += event.bytes
            if now - self._last_draw >= REDRAW_INTERVAL:
                self._draw(now)
        elif kind == "table_started":
            self._table = event.table
            self._table_rows = 0
            self._table_estimate = event.total_rows_estimate
            self._estimated_so_far += event.total_rows_estimate or 0
            details = event.details or {}
            self._index = int(details.get("index") or self._index + 1)
            self._tables = int(details.get("tables") or 0)
            estimate = details.get("operation_rows_estimate")
            if estimate is not None:
                self._operation_estimate = int(estimate)
            self._draw(now)
        elif kind == "started":
            self._operation = event.operation
        elif kind in ("retry", "warning"):
            self.clear()  # the log line that goes with it starts on a clean line
        elif kind in _FINAL:
            self.clear()

    def close(self) -> None:
        if not self._silent:
            try:
                self.clear()
            except Exception:
                self._silent = True

    # -- drawing ---------------------------------------------------------------------------------
    def _width(self) -> int:
        if self._fixed_width is not None:
            return self._fixed_width
        return shutil.get_terminal_size((80, 24)).columns

    def _rates(self, now: float) -> tuple[float, float]:
        """Rows/s and bytes/s over the last :data:`RATE_WINDOW` seconds."""
        window = self._window
        window.append((now, self._rows, self._bytes))
        while len(window) > 2 and now - window[1][0] >= RATE_WINDOW:
            window.popleft()
        then, rows, size = window[0]
        elapsed = now - then
        if elapsed <= 0:
            return 0.0, 0.0
        return (self._rows - rows) / elapsed, (self._bytes - size) / elapsed

    def remaining_rows(self) -> int | None:
        """Rows still to come by the estimates; None when nothing is known."""
        if self._table_estimate is None and self._operation_estimate is None:
            return None
        remaining = max(0, (self._table_estimate or 0) - self._table_rows)
        if self._operation_estimate is not None:
            remaining += max(0, self._operation_estimate - self._estimated_so_far)
        return remaining

    def line(self, now: float) -> str:
        """The text of the progress line at ``now`` (without the carriage return)."""
        rows_per_s, bytes_per_s = self._rates(now)
        position = f"[{self._index}/{self._tables}] " if self._tables > 1 else ""
        table = self._table or ""
        estimate = self._table_estimate
        if estimate and self._table_rows < estimate:
            percent = min(99, int(100 * self._table_rows / estimate))
            counts = f"{format_count(self._table_rows)}/{format_count(estimate)} rows ({percent}%)"
        else:
            counts = f"{format_count(self._table_rows)} rows"
        parts = [counts, f"{format_rate(rows_per_s)} rows/s"]
        if self._bytes:
            parts.append(f"{bytes_per_s / _MB:.1f} MB/s")
        remaining = self.remaining_rows()
        if remaining is not None and rows_per_s > 0 and self._rows:
            parts.append(f"ETA {format_duration(remaining / rows_per_s)}")
        tail = "  ".join(parts)
        head = f"{self._operation} {position}".lstrip()
        width = max(20, self._width() - 1)
        room = width - len(head) - len(tail) - 2
        if room < len(table):
            table = table[: max(0, room - 1)] + "…" if room > 1 else ""
        text = f"{head}{table}: {tail}" if table else f"{head}{tail}"
        return text[:width]

    def _draw(self, now: float) -> None:
        text = self.line(now)
        padding = " " * max(0, self._drawn - len(text))
        self._stream.write(f"\r{text}{padding}")
        self._stream.flush()
        self._drawn = len(text)
        self._last_draw = now

    def clear(self) -> None:
        """Blank the line and put the cursor at its start."""
        if self._drawn:
            self._stream.write("\r" + " " * self._drawn + "\r")
            self._stream.flush()
            self._drawn = 0


@hookimpl
def unibackup_register_listeners() -> list[type[EventListener]]:
    return [ProgressDisplay]
