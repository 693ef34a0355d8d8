"""The ``adaptive`` batching strategy (the default): batches bounded by bytes, not rows.

It learns the encoded row size as it goes (a moving average that follows growth at once) and
sizes each batch to about ``batching.batch_bytes``. It also watches the process's memory: above
``batching.memory_budget_mb`` it halves its byte target and asks for a garbage collection, so a
table of very wide rows cannot push the process past its budget.
"""

from __future__ import annotations

import psutil

from unibackup import hookimpl
from unibackup.batching import BatchingStrategy

#: A table's first fetch is one row: its rows may be a megabyte each, and 64 of those blind
#: would hold more memory than the whole rest of the backup.
_FIRST_BATCH_ROWS = 1
#: After that a batch grows at most this many times the previous one while the size firms up.
_GROWTH = 8
_MEMORY_CHECK_EVERY = 16


class AdaptiveBatching(BatchingStrategy):
    """Row count = byte target / learnt row size, clamped to ``[min_rows, max_rows]``."""

    name = "adaptive"

    def __init__(self, settings: dict | None = None):
        super().__init__(settings)
        self.target_bytes = int(self.settings.get("batch_bytes", 256 * 1024))
        self._configured_target = self.target_bytes
        self.min_rows = int(self.settings.get("min_rows", 1))
        self.max_rows = int(self.settings.get("max_rows", 10000))
        self.memory_budget = int(self.settings.get("memory_budget_mb", 512)) * 1024 * 1024
        self.row_bytes: float | None = None
        self._last_rows = 0
        self._batches = 0
        self._collect = False
        self._process = psutil.Process()

    def start_table(self, row_estimate: int | None) -> None:
        self.row_bytes = None
        self._last_rows = 0

    def next_batch_size(self) -> int:
        if self.row_bytes is None:
            return max(self.min_rows, min(self.max_rows, _FIRST_BATCH_ROWS))
        rows = min(int(self.target_bytes / max(self.row_bytes, 1.0)), self._last_rows * _GROWTH)
        return max(self.min_rows, min(self.max_rows, rows))

    def observe(self, rows: int, encoded_bytes: int) -> None:
        if rows <= 0:
            return
        self._last_rows = rows
        size = encoded_bytes / rows
        if self.row_bytes is None or size > self.row_bytes:
            self.row_bytes = size  # follow growth at once: one wide batch must not be repeated
        else:
            self.row_bytes = 0.7 * self.row_bytes + 0.3 * size
        self._batches += 1
        if self._batches % _MEMORY_CHECK_EVERY == 0:
            self._check_memory()

    def _check_memory(self) -> None:
        rss = self._process.memory_info().rss
        if rss > self.memory_budget:
            self.target_bytes = max(16 * 1024, self.target_bytes // 2)
            self._collect = True
        elif rss < self.memory_budget // 2 and self.target_bytes < self._configured_target:
            self.target_bytes = min(self._configured_target, self.target_bytes * 2)

    def should_collect_garbage(self) -> bool:
        collect, self._collect = self._collect, False
        return collect


@hookimpl
def unibackup_register_batching_strategies() -> list[type[BatchingStrategy]]:
    return [AdaptiveBatching]
