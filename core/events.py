"""Pipeline events and the listener interface (progress display, monitor, history)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import attrs

EVENT_KINDS = (
    "started",
    "table_started",
    "batch_written",
    "retry",
    "table_finished",
    "finished",
    "failed",
    "cancelled",
    "warning",
    "plan",  # a cross-engine restore's fidelity report, before anything is written
)


@attrs.frozen
class Event:
    """Something that happened in an operation."""

    kind: str
    operation_id: str
    operation: str  # backup, restore, verify, ...
    at: float = attrs.field(factory=time.time)
    table: str | None = None
    rows: int = 0  # rows in this batch / table
    bytes: int = 0  # encoded bytes in this batch / table
    total_rows_estimate: int | None = None
    message: str | None = None
    details: dict[str, Any] = attrs.field(factory=dict)


class EventListener:
    """Receives every event of an operation. One instance serves one operation."""

    name: ClassVar[str]
    version: ClassVar[str] = ""
    #: listeners that only make sense for a person at a terminal set this
    interactive: ClassVar[bool] = False

    def __init__(self, settings: dict[str, Any] | None = None):
        self.settings = settings or {}

    def handle(self, event: Event) -> None:
        """React to one event; must not raise (errors are logged and the listener dropped)."""

    def summary(self) -> dict[str, Any]:
        """Figures this listener adds to the operation's final event.

        Called once, just before the finished, failed or cancelled event is sent; every listener
        then finds the result in that event's ``details["summary"][<listener name>]`` (the history
        recorder keeps the performance monitor's figures this way). Empty: nothing to add.
        """
        return {}

    def close(self) -> None:
        """The operation is over."""
