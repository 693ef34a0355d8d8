"""The batching-strategy interface: how many rows to read next, and when to pause."""

from __future__ import annotations

import abc
from typing import Any, ClassVar


class BatchingStrategy(abc.ABC):
    """Decides batch sizes from what it observes of rows and memory.

    One instance serves one backup. The pipeline calls :meth:`next_batch_size` before each fetch
    and :meth:`observe` after each batch, then sleeps :meth:`delay` seconds.
    """

    name: ClassVar[str]
    version: ClassVar[str] = ""

    def __init__(self, settings: dict[str, Any] | None = None):
        self.settings = settings or {}

    @abc.abstractmethod
    def next_batch_size(self) -> int:
        """Rows to fetch next (at least 1)."""

    @abc.abstractmethod
    def observe(self, rows: int, encoded_bytes: int) -> None:
        """Report a batch just written: its row count and encoded size."""

    def start_table(self, row_estimate: int | None) -> None:
        """A new table begins; strategies may reset what they learnt."""

    def delay(self) -> float:
        """Seconds to wait before the next fetch, to spare a busy server."""
        return float(self.settings.get("delay", 0.0) or 0.0)

    def should_collect_garbage(self) -> bool:
        """Whether the pipeline should run the garbage collector now."""
        return False
