"""Connecting to a MySQL or MariaDB server through PyMySQL, and its errors as one clear line.

PyMySQL is imported only when a connection is made, so that the plugin loads (and says what is
missing) on an installation without the ``mysql`` extra.
"""

from __future__ import annotations

import datetime
import functools
import getpass
import os
import re
import uuid
from typing import Any

from unibackup.errors import SourceError, TransientError, UnibackupError, UsageError
from unibackup.source import Location
from unibackup.values import JsonText, RawText, Tagged

DEFAULT_PORT = 3306
PASSWORD_ENV = "MYSQL_PWD"

#: Server error codes after which the same operation may succeed when tried again.
TRANSIENT_CODES = frozenset({
    1040,  # too many connections
    1053,  # server shutdown in progress
    1205,  # lock wait timeout
    1213,  # deadlock
    1317,  # query interrupted
    1412,  # table definition changed during the snapshot
    1927,  # connection killed (MariaDB)
    2006,  # server has gone away
    2013,  # lost connection during query
    4031,  # disconnected by the server for inactivity (MySQL 8)
})
PRIVILEGE_CODES = frozenset({1044, 1142, 1143, 1227, 1370, 1449, 1698, 3530})
#: The options a MySQL URL may carry after ``?``.
QUERY_OPTIONS = ("unix_socket", "socket")
_ERRNO_REASON = re.compile(r"\[Errno (-?\d+)\]\s*([^)]*)")


def pymysql_module() -> Any:
    """The PyMySQL module, or a usage error saying how to install it."""
    try:
        import pymysql
    except ImportError:
        raise UsageError("the mysql source needs PyMySQL", hint="install it with: pip install 'unibackup[mysql]'") from None
    return pymysql


def server_label(location: Location) -> str:
    """Where the server is, as shown in messages (never with credentials)."""
    socket_path = unix_socket(location)
    if socket_path:
        return f"the socket {socket_path}"
    return f"{location.host or 'localhost'}:{location.port or DEFAULT_PORT}"


def check_options(location: Location) -> None:
    """Refuse an option the URL may not carry (a typo must not silently connect otherwise)."""
    unknown = sorted(key for key in location.query if key not in QUERY_OPTIONS)
    if unknown:
        raise UsageError(
            f"the MySQL URL has an unknown option {unknown[0]!r}", hint=f"the known options are {', '.join(QUERY_OPTIONS)}"
        )


def unix_socket(location: Location) -> str | None:
    return location.query.get("unix_socket") or location.query.get("socket") or None


def resolve_password(location: Location, settings: dict[str, Any]) -> str:
    """The password: from the URL, else the ``password_file`` setting, else ``MYSQL_PWD``, else none."""
    if location.password is not None:
        return location.password
    path = settings.get("password_file")
    if path:
        try:
            with open(os.path.expanduser(str(path)), encoding="utf-8") as handle:
                return handle.readline().rstrip("\r\n")
        except OSError as error:
            raise UsageError(f"cannot read the password file {str(path)!r}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"the password file {str(path)!r} is not UTF-8 text") from None
    return os.environ.get(PASSWORD_ENV, "")


def _utc_naive(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def _refuse(value: Any, mapping: Any = None) -> str:
    tag = value.tag if isinstance(value, Tagged) else type(value).__name__
    raise TypeError(f"a value tagged {tag} has no MySQL form")


@functools.cache
def conversions() -> dict[Any, Any]:
    """PyMySQL converters that keep every value exact, both ways.

    Reading: TIMESTAMP values come back aware (UTC, the session's time zone); zero and other
    invalid dates stay the server's text; DECIMAL is a :class:`~decimal.Decimal`; TIME is a
    ``timedelta`` (beyond 24 h and negative included). Writing: aware datetimes are turned into
    UTC, JSON text and raw text keep their bytes, tagged values no encoder knows are refused.
    """
    pymysql = pymysql_module()
    converters = pymysql.converters
    field = pymysql.constants.FIELD_TYPE
    table = dict(converters.conversions)

    def timestamp(text: str) -> Any:
        value = converters.convert_datetime(text)
        if isinstance(value, datetime.datetime):
            return value.replace(tzinfo=datetime.timezone.utc)
        return value

    table[field.TIMESTAMP] = timestamp
    table.pop(field.SET, None)  # SET stays MySQL's text ("a,b"), not a Python set
    table.pop(field.ENUM, None)
    table.pop(field.BIT, None)  # BIT is read as an integer by the SELECT itself
    escape_str = converters.escape_str
    escape_bytes = converters.escape_bytes
    escape_datetime = converters.escape_datetime
    table[datetime.datetime] = lambda value, mapping=None: escape_datetime(_utc_naive(value), mapping)
    table[JsonText] = lambda value, mapping=None: escape_str(value.text, mapping)
    table[RawText] = lambda value, mapping=None: escape_bytes(value.data, mapping)
    table[uuid.UUID] = lambda value, mapping=None: escape_str(str(value), mapping)
    table[bytearray] = lambda value, mapping=None: escape_bytes(bytes(value), mapping)
    table[memoryview] = lambda value, mapping=None: escape_bytes(bytes(value), mapping)
    table[Tagged] = _refuse
    return table


def connect(location: Location, settings: dict[str, Any], *, database: str | None, what: str) -> Any:
    """A new connection in autocommit mode, utf8mb4, with the session's time zone at UTC."""
    check_options(location)
    pymysql = pymysql_module()
    user = location.user or settings.get("user") or getpass.getuser()
    try:
        conn = pymysql.connect(
            host=location.host or "localhost",
            port=location.port or DEFAULT_PORT,
            unix_socket=unix_socket(location),
            user=user,
            password=resolve_password(location, settings),
            database=database,
            charset="utf8mb4",
            conv=conversions(),
            autocommit=True,
            connect_timeout=float(settings.get("connect_timeout", 10)),
            read_timeout=_optional_float(settings.get("read_timeout")),
            write_timeout=_optional_float(settings.get("write_timeout")),
            local_infile=False,
        )
    except pymysql.err.MySQLError as error:
        raise translate(error, what, location) from None
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION time_zone = '+00:00'")
    except pymysql.err.MySQLError as error:
        conn.close()
        raise translate(error, what, location) from None
    return conn


def _optional_float(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def error_code(error: BaseException) -> int:
    args = getattr(error, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def _error_text(error: BaseException) -> str:
    args = getattr(error, "args", ())
    if len(args) >= 2:
        return " ".join(str(args[1]).split())
    return " ".join(str(error).split()) or type(error).__name__


def _connect_reason(text: str) -> str:
    match = _ERRNO_REASON.search(text)
    if not match:
        return text
    number, reason = int(match.group(1)), match.group(2).strip().rstrip(")")
    if number in (-2, -3, -5) or "not known" in reason or "resolution" in reason:
        return "unknown host"
    if number == 111 or "refused" in reason.lower():
        return "connection refused"
    if "timed out" in reason.lower():
        return "timed out"
    return reason.lower() or text


def _lost_connection(error: BaseException) -> bool:
    if isinstance(error, (OSError, EOFError)):
        return True
    return type(error).__name__ == "InterfaceError"  # PyMySQL's "the connection is already closed"


def translate(error: BaseException, what: str, location: Location) -> UnibackupError:
    """A PyMySQL (or socket) error as a unibackup error with one clear line; never a password."""
    code = error_code(error)
    text = _error_text(error)
    server = server_label(location)
    if code == 2003 or code == 2005:
        return SourceError(f"cannot connect to the MySQL server at {server}: {_connect_reason(text)}")
    if code == 1045:
        return SourceError(f"the MySQL server at {server} refused the login of user {location.user or getpass.getuser()!r}", hint="check the user name and password")
    if code == 1049:
        return SourceError(f"the database {location.database!r} does not exist on the MySQL server at {server}")
    if code in PRIVILEGE_CODES:
        return SourceError(f"{what}: missing privilege on {server}: {text}")
    if code in TRANSIENT_CODES or _lost_connection(error):
        reason = text if code else "the connection is closed"
        return TransientError(f"{what}: the connection to the MySQL server at {server} was interrupted ({reason})")
    return SourceError(f"{what} failed on {server}: {text}" + (f" (error {code})" if code else ""))


def quote(name: str) -> str:
    """An identifier quoted for MySQL, whatever characters it holds."""
    return "`" + name.replace("`", "``") + "`"
