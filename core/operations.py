"""Operation contexts, error classification and ``execute_safely``.

Every operation (backup, restore, verify, ...) runs inside an :class:`OperationContext` that is
logged and handed to the event listeners. :func:`classify` turns any exception into a
:class:`UnibackupError` with one user-facing line, from which the exit code follows.
"""

from __future__ import annotations

import errno
import logging
import time
import uuid
from typing import Any, Callable, Generic, TypeVar

import attrs

from .errors import CancelledError, ErrorClass, UnibackupError
from .events import Event, EventListener
from .hooks import dispatch
from .retry import RetryAttempt

log = logging.getLogger(__name__)

T = TypeVar("T")


_ERRNO_MESSAGES = {
    errno.ENOSPC: ("no space left on the device", "free some space or choose another output directory"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space or choose another output directory"),
    errno.EFBIG: ("the file grew past the size limit of this system", "choose another output directory"),
    errno.EACCES: ("permission denied", "check the permissions of the path"),
    errno.EPERM: ("operation not permitted", "check the permissions of the path"),
    errno.EROFS: ("the file system is read-only", "choose another output directory"),
    errno.ENOENT: ("no such file or directory", None),
    errno.EISDIR: ("is a directory", None),
    errno.ENOTDIR: ("not a directory", None),
    errno.EIO: ("an input/output error from the device", None),
}


def classify(error: BaseException) -> UnibackupError:
    """One user-facing error for any exception (a bug keeps its type name for ``--debug``)."""
    if isinstance(error, UnibackupError):
        return error
    if isinstance(error, KeyboardInterrupt):
        return CancelledError(getattr(error, "message", None) or "cancelled by SIGINT; nothing was left behind")
    if isinstance(error, OSError) and error.errno in _ERRNO_MESSAGES:
        message, hint = _ERRNO_MESSAGES[error.errno]
        where = f": {error.filename}" if error.filename else ""
        return UnibackupError(f"{message}{where}", hint=hint, error_class=ErrorClass.ENVIRONMENT)
    if isinstance(error, MemoryError):
        return UnibackupError("out of memory", hint="lower batching.batch_bytes or batching.memory_budget_mb")
    if isinstance(error, OSError):
        return UnibackupError(f"{error.strerror or error}", error_class=ErrorClass.ENVIRONMENT)
    return UnibackupError(
        f"unexpected error: {type(error).__name__}: {error}",
        hint="this is a bug in unibackup or a plugin; run with --debug for the traceback",
        error_class=ErrorClass.BUG,
    )


@attrs.frozen
class Outcome(Generic[T]):
    """A result or a classified error."""

    value: T | None = None
    error: UnibackupError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def execute_safely(fn: Callable[..., T], *args: Any, **kwargs: Any) -> Outcome[T]:
    """Call ``fn``; return its value, or the classified error instead of raising."""
    try:
        return Outcome(value=fn(*args, **kwargs))
    except (Exception, KeyboardInterrupt) as error:
        classified = classify(error)
        if classified is not error:
            classified.__cause__ = error
        return Outcome(error=classified)


@attrs.define
class OperationContext:
    """One operation: what, on what, when, how it ended; fans events out to listeners."""

    kind: str
    source: str | None = None  # identities only: never a password
    target: str | None = None
    id: str = attrs.field(factory=lambda: uuid.uuid4().hex[:12])
    started_at: float = attrs.field(factory=time.time)
    ended_at: float | None = None
    outcome: str | None = None  # "succeeded", "failed", "cancelled"
    error: str | None = None
    listeners: list[EventListener] = attrs.field(factory=list, repr=False)

    def emit(self, kind: str, **fields: Any) -> None:
        event = Event(kind=kind, operation_id=self.id, operation=self.kind, **fields)
        dispatch(self.listeners, event, self._listener_failed)

    def retrying(self, attempt: RetryAttempt) -> None:
        """A failed attempt that will be tried again: a ``retry`` event (the strategy logs it)."""
        details = {"operation": attempt.operation, "attempt": attempt.attempt, "delay": attempt.delay, "elapsed": attempt.elapsed}
        self.emit("retry", message=attempt.error, details=details)

    def _listener_failed(self, listener: EventListener, error: Exception) -> None:
        log.warning("event listener %r failed and was dropped: %s", getattr(listener, "name", listener), error)

    def start(self) -> None:
        log.info("%s %s started (source=%s target=%s)", self.kind, self.id, self.source, self.target)
        self.emit("started", details={"source": self.source, "target": self.target})

    def finish(self, **details: Any) -> None:
        self.ended_at = time.time()
        self.outcome = "succeeded"
        log.info("%s %s succeeded in %.2f s", self.kind, self.id, self.ended_at - self.started_at)
        self.emit("finished", details={**details, **self._final_details()})
        self._close_listeners()

    def fail(self, error: UnibackupError) -> None:
        self.ended_at = time.time()
        cancelled = error.error_class is ErrorClass.CANCELLED
        self.outcome = "cancelled" if cancelled else "failed"
        self.error = error.user_line()
        log.info("%s %s %s: %s", self.kind, self.id, self.outcome, self.error)
        self.emit("cancelled" if cancelled else "failed", message=self.error, details={"class": error.error_class.value, **self._final_details()})
        self._close_listeners()

    def _final_details(self) -> dict[str, Any]:
        """What every final event carries: the operation as it ended, and each listener's summary."""
        summaries: dict[str, Any] = {}
        for listener in self.listeners:
            try:
                figures = listener.summary()
            except Exception as error:
                log.warning("event listener %r failed to summarise: %s", getattr(listener, "name", listener), error)
                continue
            if figures:
                summaries[getattr(listener, "name", type(listener).__name__)] = figures
        return {"operation": self.to_dict(), "summary": summaries}

    def _close_listeners(self) -> None:
        for listener in self.listeners:
            try:
                listener.close()
            except Exception as error:
                log.warning("event listener %r failed to close: %s", getattr(listener, "name", listener), error)
        self.listeners = []

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "source": self.source,
            "target": self.target,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "outcome": self.outcome,
            "error": self.error,
        }
