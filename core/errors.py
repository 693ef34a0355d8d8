"""The errors a user can meet, each with its class and exit code.

Every failure that reaches the command line is an :class:`UnibackupError`: it carries one line of
message, an optional hint, and an :class:`ErrorClass` from which the exit code follows
(DESIGN: 0 success, 1 operation failed, 2 usage or configuration error, 3 backup invalid,
130 cancelled).
"""

from __future__ import annotations

import enum


class ErrorClass(enum.Enum):
    """Why an operation failed; decides retrying and the exit code."""

    TRANSIENT = "transient"  # may succeed on another try: locked database, dropped connection
    USER = "user"  # bad argument, unknown plugin, malformed configuration
    ENVIRONMENT = "environment"  # disk full, permission denied, server unreachable
    CORRUPT_INPUT = "corrupt-input"  # a backup that fails validation
    CANCELLED = "cancelled"  # SIGINT / SIGTERM
    BUG = "bug"  # anything unexpected


EXIT_SUCCESS = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INVALID_BACKUP = 3
EXIT_CANCELLED = 130

EXIT_CODES: dict[ErrorClass, int] = {
    ErrorClass.TRANSIENT: EXIT_FAILED,
    ErrorClass.USER: EXIT_USAGE,
    ErrorClass.ENVIRONMENT: EXIT_FAILED,
    ErrorClass.CORRUPT_INPUT: EXIT_INVALID_BACKUP,
    ErrorClass.CANCELLED: EXIT_CANCELLED,
    ErrorClass.BUG: EXIT_FAILED,
}


class UnibackupError(Exception):
    """A failure with a one-line message meant for the user."""

    error_class: ErrorClass = ErrorClass.ENVIRONMENT

    def __init__(self, message: str, *, hint: str | None = None, error_class: ErrorClass | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if error_class is not None:
            self.error_class = error_class

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.error_class]

    def user_line(self) -> str:
        """The single line shown on stderr."""
        line = self.message
        if self.hint:
            line = f"{line}; {self.hint}"
        return " ".join(line.split())


class UsageError(UnibackupError):
    """A bad argument, path or URL given by the user."""

    error_class = ErrorClass.USER


class ConfigError(UnibackupError):
    """A malformed configuration file; the message names the key path."""

    error_class = ErrorClass.USER


class PluginError(UnibackupError):
    """An unknown, duplicate or broken plugin."""

    error_class = ErrorClass.USER


class SourceError(UnibackupError):
    """The source or restore target cannot be read or written."""

    error_class = ErrorClass.ENVIRONMENT


class TransientError(UnibackupError):
    """A failure that may succeed when tried again (locked database, dropped connection)."""

    error_class = ErrorClass.TRANSIENT


class CorruptBackupError(UnibackupError):
    """The backup file is damaged, truncated, hostile or of an unknown format."""

    error_class = ErrorClass.CORRUPT_INPUT


class PreflightError(UnibackupError):
    """A check before the backup failed (disk space, memory, health): nothing was done."""

    error_class = ErrorClass.ENVIRONMENT


class CancelledError(UnibackupError):
    """The operation was cancelled by SIGINT or SIGTERM."""

    error_class = ErrorClass.CANCELLED
