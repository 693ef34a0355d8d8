"""Connecting to PostgreSQL, and turning driver errors into one clear line each.

The password comes from the URL, the ``password_file`` setting (``--password-file``), or what
libpq finds itself (``PGPASSWORD``, ``~/.pgpass``); it is never part of a message.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import psycopg
from psycopg import errors as pg_errors

from unibackup.errors import SourceError, TransientError, UnibackupError, UsageError
from unibackup.source import Location

#: URL query keys that are ours, not libpq's.
OWN_QUERY_KEYS = frozenset({"schema"})

#: SQLSTATE classes and codes that may succeed when the whole operation is tried again.
_TRANSIENT_STATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
        "57P01",  # admin_shutdown (pg_terminate_backend)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up, shutting down)
        "53300",  # too_many_connections
        "08000",
        "08003",
        "08006",
        "08001",
        "08004",
    }
)
_TRANSIENT_TEXT = (
    "server closed the connection unexpectedly",
    "terminating connection",
    "connection has been closed",
    "the connection is closed",
    "the connection is lost",
    "consuming input failed",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
)


def read_password_file(path: str) -> str:
    """The password in the first line of ``path`` (``--password-file``)."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            line = handle.readline()
    except FileNotFoundError:
        raise UsageError(f"the password file {path!r} does not exist") from None
    except OSError as error:
        raise UsageError(f"cannot read the password file {path!r}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"the password file {path!r} is not UTF-8 text") from None
    return line.rstrip("\r\n")


def connection_params(location: Location, settings: dict[str, Any], database: str | None = None) -> dict[str, Any]:
    """libpq keywords for ``location`` (``database`` overrides the URL's database)."""
    params: dict[str, Any] = {key: value for key, value in location.query.items() if key not in OWN_QUERY_KEYS}
    if location.host:
        params["host"] = location.host
    if location.port:
        params["port"] = location.port
    if location.user:
        params["user"] = location.user
    dbname = database or location.database
    if dbname:
        params["dbname"] = dbname
    password = location.password
    if password is None and settings.get("password_file"):
        password = read_password_file(str(settings["password_file"]))
    if password is not None:
        params["password"] = password
    params.setdefault("connect_timeout", int(settings.get("connect_timeout", 10)))
    params.setdefault("application_name", "unibackup")
    return params


def describe_target(location: Location, database: str | None = None) -> str:
    """``user@host:port/db`` for messages: never a password."""
    host = location.host or "local socket"
    port = f":{location.port}" if location.port else ""
    user = f"{location.user}@" if location.user else ""
    return f"{user}{host}{port}/{database or location.database or ''}"


def connect(location: Location, settings: dict[str, Any], *, database: str | None = None, autocommit: bool = True) -> psycopg.Connection:
    """Open a connection, or raise a one-line :class:`UnibackupError`."""
    params = connection_params(location, settings, database)
    try:
        conn = psycopg.connect(autocommit=autocommit, **params)
    except psycopg.ProgrammingError as error:  # a bad libpq keyword in the URL's query
        raise UsageError(f"the PostgreSQL URL has an invalid option: {first_line(error)}") from None
    except psycopg.Error as error:
        raise connect_error(error, location, database) from None
    return conn


def first_line(error: BaseException) -> str:
    """The first meaningful line of a driver message."""
    text = str(error).strip()
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line
    return type(error).__name__


def _message(error: psycopg.Error) -> str:
    diag = getattr(error, "diag", None)
    primary = diag.message_primary if diag is not None else None
    if primary:
        return primary
    text = " ".join(str(error).split())
    for marker in ("FATAL:", "ERROR:"):
        if marker in text:
            return text.rsplit(marker, 1)[1].strip()
    return first_line(error)


def _server(location: Location) -> str:
    host = location.host or "the local socket"
    return f"{host}:{location.port}" if location.port else host


def connect_error(error: psycopg.Error, location: Location, database: str | None = None) -> UnibackupError:
    """What a failed connection attempt tells the user."""
    where = describe_target(location, database)
    state = getattr(error, "sqlstate", None)
    text = str(error)
    lowered = text.lower()
    dbname = database or location.database
    if state == "3D000" or ("database" in lowered and "does not exist" in lowered):
        return SourceError(f"the PostgreSQL database {dbname!r} does not exist on {_server(location)}")
    if state == "28P01" or "password authentication failed" in lowered:
        return SourceError(f"PostgreSQL refused the password for user {location.user or '(default)'!r} on {where}")
    if "no password supplied" in lowered or "fe_sendauth" in lowered:
        return SourceError(
            f"PostgreSQL wants a password for user {location.user or '(default)'!r} on {where}",
            hint="give it with --password-file, PGPASSWORD or ~/.pgpass",
        )
    if state == "28000" or "no pg_hba.conf entry" in lowered or ("role" in lowered and "does not exist" in lowered):
        return SourceError(f"PostgreSQL refused the connection to {where}: {_message(error)}")
    if state == "42501" or "permission denied" in lowered:
        return SourceError(f"no privilege to connect to {where}: {_message(error)}")
    if state in _TRANSIENT_STATES and state not in ("08001", "08006"):
        return TransientError(f"PostgreSQL at {where} is not accepting connections now: {_message(error)}")
    if "could not translate host name" in lowered or "name or service not known" in lowered or "nodename nor servname" in lowered:
        return SourceError(f"cannot resolve the PostgreSQL host {location.host!r}")
    if "connection refused" in lowered:
        return SourceError(f"no PostgreSQL server is listening at {_server(location)} (connection refused)")
    if "timeout expired" in lowered or "timed out" in lowered:
        return SourceError(f"the PostgreSQL server at {_server(location)} did not answer in time")
    return SourceError(f"cannot connect to PostgreSQL at {where}: {_message(error)}")


@contextlib.contextmanager
def copy_block(cursor: psycopg.Cursor, sql: str) -> Iterator[psycopg.Copy]:
    """``cursor.copy(sql)``, ended by :func:`end_copy` when the block fails."""
    manager = cursor.copy(sql)
    copy = manager.__enter__()
    try:
        yield copy
    except BaseException as error:
        end_copy(manager, error, cursor.connection)
        raise
    manager.__exit__(None, None, None)


def end_copy(manager: contextlib.AbstractContextManager[Any], error: BaseException, conn: psycopg.Connection) -> None:
    """End the ``cursor.copy()`` block ``manager`` that ``error`` interrupted. While the
    connection works, psycopg tells the server (``CopyFail``, or a cancel of ``COPY TO``); on a
    lost connection there is nobody to tell, and psycopg's attempt would only log a second message
    (``error ignored terminating <Copy>``) beside the one line the failure gets: the block is
    closed on this side only."""
    if conn.broken or conn.closed:
        try:
            manager.__exit__(None, None, None)
        except psycopg.Error:
            pass
        return
    manager.__exit__(type(error), error, error.__traceback__)


def is_transient(error: BaseException, conn: psycopg.Connection | None = None) -> bool:
    """Whether retrying the whole operation on a fresh connection may succeed."""
    state = getattr(error, "sqlstate", None)
    if state in _TRANSIENT_STATES:
        return True
    if isinstance(error, (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)):
        return True
    if conn is not None and conn.broken:
        return True
    lowered = str(error).lower()
    return isinstance(error, psycopg.OperationalError) and any(text in lowered for text in _TRANSIENT_TEXT)


#: What a user missing a privilege is told, on each side.
BACKUP_PRIVILEGE_HINT = "the user needs at least SELECT on every table backed up"
RESTORE_PRIVILEGE_HINT = "the user needs CREATE on the database, and must own what --force replaces"


def operation_error(
    error: psycopg.Error, what: str, conn: psycopg.Connection | None = None, *, privilege_hint: str = BACKUP_PRIVILEGE_HINT
) -> UnibackupError:
    """A failure while working on an open connection, as one line; ``privilege_hint`` says what
    a permission error needs."""
    message = _message(error)
    if is_transient(error, conn):
        return TransientError(f"{what} failed: the connection to PostgreSQL was lost or interrupted ({message})")
    state = getattr(error, "sqlstate", None)
    if state == "42501":
        return SourceError(f"{what} failed: missing privilege: {message}", hint=privilege_hint)
    if state in ("25006",):
        return SourceError(f"{what} failed: {message}")
    diag = getattr(error, "diag", None)
    context = diag.context if diag is not None else None
    if context:
        message = f"{message} ({first_line(Exception(context))})"
    return SourceError(f"{what} failed: {message}")
