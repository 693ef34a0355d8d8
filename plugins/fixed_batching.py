"""The ``fixed`` batching strategy: the same number of rows every time (``batching.batch_rows``)."""

from __future__ import annotations

from unibackup import hookimpl
from unibackup.batching import BatchingStrategy


class FixedBatching(BatchingStrategy):
    """Always ``batch_rows`` rows; predictable, but blind to row width."""

    name = "fixed"

    def next_batch_size(self) -> int:
        return int(self.settings.get("batch_rows", 1000))

    def observe(self, rows: int, encoded_bytes: int) -> None:
        pass


@hookimpl
def unibackup_register_batching_strategies() -> list[type[BatchingStrategy]]:
    return [FixedBatching]
