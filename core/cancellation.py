"""Clean cancellation on SIGINT and SIGTERM.

Inside :func:`cancel_on_signals` the first SIGINT or SIGTERM raises :class:`Interrupted` where the
program is; ``finally`` blocks and context managers then remove temporary files and roll back.
Further signals during that clean-up are ignored so that it can finish.

:class:`Interrupted` is a ``KeyboardInterrupt``, not an ``Exception``: a signal lands anywhere,
and an ``except Exception`` on the way (a listener's guard, a probe that tolerates failure) must
not swallow it. The operation turns it into a :class:`CancelledError` (exit code 130).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``message`` says what was cancelled by which."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


#: the message of a signal that arrived, until the operation that caught it ends. Code that can
#: swallow the exception (a C extension turning it into another error) cannot lose the request:
#: :func:`raise_if_cancelled` at the pipeline's checkpoints raises it again.
_pending: list[str] = []


def raise_if_cancelled() -> None:
    """Raise :class:`Interrupted` when a signal arrived (a checkpoint between batches)."""
    if _pending:
        raise Interrupted(_pending[-1])


@contextlib.contextmanager
def cancel_on_signals(what: str) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into :class:`Interrupted` for the duration of ``what``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False
    depth = len(_pending)

    def handler(signum: int, frame: Any) -> None:
        nonlocal fired
        if fired:
            return
        fired = True
        name = signal.Signals(signum).name
        message = f"{what} cancelled by {name}; nothing was left behind"
        _pending.append(message)
        raise Interrupted(message)

    previous = {signum: signal.signal(signum, handler) for signum in _SIGNALS}
    try:
        yield
    finally:
        # The clean-up inside the block has run by now (further signals were ignored).
        for signum, old in previous.items():
            signal.signal(signum, old)
        del _pending[depth:]
