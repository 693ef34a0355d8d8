"""Retrying transient failures with exponential backoff and jitter.

Only errors classified :attr:`~unibackup.errors.ErrorClass.TRANSIENT` are retried; corrupt input
and user errors fail at once. The clock, sleep and random source are injectable, so tests drive
the strategy exactly and instantly.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, Callable, Protocol, TypeVar

import attrs

from .errors import ErrorClass, TransientError, UnibackupError

log = logging.getLogger(__name__)

T = TypeVar("T")


@attrs.frozen
class RetryAttempt:
    """A failed attempt that will be retried after ``delay`` seconds."""

    operation: str
    attempt: int
    delay: float
    elapsed: float
    error: str


class RetryStrategy(Protocol):
    """Runs a callable, retrying transient failures."""

    def call(self, fn: Callable[[], T], *, operation: str, on_retry: Callable[[RetryAttempt], None] | None = None) -> T: ...


class ExponentialBackoff:
    """Delay ``base_delay * 2**(n-1)``, capped at ``max_delay``, less up to ``jitter`` of it at random.

    Gives up after ``max_attempts`` attempts, or when the next delay would pass ``max_elapsed``
    seconds since the first attempt; the final error says how many attempts over how long.
    """

    def __init__(
        self,
        *,
        max_attempts: int = 5,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
        max_elapsed: float = 30.0,
        jitter: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        setting_prefix: str = "retry",
    ):
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_elapsed = max_elapsed
        self.jitter = jitter
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._setting_prefix = setting_prefix

    @classmethod
    def from_config(cls, policy: Any, setting_prefix: str, **overrides: Any) -> "ExponentialBackoff":
        """Build from a :class:`~unibackup.config.RetryPolicyConfig`."""
        return cls(
            max_attempts=policy.max_attempts,
            base_delay=policy.base_delay,
            max_delay=policy.max_delay,
            max_elapsed=policy.max_elapsed,
            jitter=policy.jitter,
            setting_prefix=setting_prefix,
            **overrides,
        )

    def delay_for(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        delay = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return delay * (1.0 - self.jitter * self._rand())

    def call(self, fn: Callable[[], T], *, operation: str, on_retry: Callable[[RetryAttempt], None] | None = None) -> T:
        start = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except UnibackupError as error:
                if error.error_class is not ErrorClass.TRANSIENT:
                    raise
                elapsed = self._clock() - start
                delay = self.delay_for(attempt)
                if attempt >= self.max_attempts or elapsed + delay > self.max_elapsed:
                    if attempt == 1:
                        raise
                    raise TransientError(
                        f"{error.message}; tried {attempt} times over {elapsed:.1f} s",
                        hint=f"try again or raise {self._setting_prefix}.max_attempts / max_elapsed",
                        error_class=ErrorClass.ENVIRONMENT,
                    ) from error
                retry = RetryAttempt(operation, attempt, delay, elapsed, error.message)
                log.warning("%s failed (attempt %d): %s; retrying in %.2f s", operation, attempt, error.message, delay)
                if on_retry is not None:
                    on_retry(retry)
                self._sleep(delay)
