"""Parsing source and target locations: a bare path, ``sqlite:///path`` or a server URL."""

from __future__ import annotations

import re
import urllib.parse

from .errors import UsageError
from .source import Location

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def parse_location(text: str) -> Location:
    """Parse what the user typed; a Windows drive letter or a path without scheme stays a path."""
    if not text:
        raise UsageError("an empty source or target was given")
    match = _SCHEME.match(text)
    if match is None or len(match.group(1)) == 1:
        return Location(raw=text, scheme="", path=text)
    scheme = match.group(1).lower()
    # normalise driver suffixes people type out of habit: postgresql+psycopg://, mysql+pymysql://
    base_scheme = scheme.split("+", 1)[0]
    if base_scheme == "postgres":
        base_scheme = "postgresql"
    if base_scheme == "mariadb":
        base_scheme = "mysql"
    rest = text[match.end():]
    if base_scheme == "sqlite":
        # sqlite:///abs/path, sqlite:relative/path, sqlite://relative (tolerated)
        if rest.startswith("///"):
            path = "/" + rest[3:].lstrip("/")
        elif rest.startswith("//"):
            path = rest[2:]
        else:
            path = rest
        path = urllib.parse.unquote(path.split("?", 1)[0])
        if not path:
            raise UsageError(f"the SQLite URL {text!r} names no file")
        return Location(raw=text, scheme="sqlite", path=path)
    try:
        parsed = urllib.parse.urlsplit(text)
        port = parsed.port
    except ValueError as error:
        raise UsageError(f"the URL is malformed: {error}") from None
    query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
    database = urllib.parse.unquote(parsed.path.lstrip("/")) or None
    return Location(
        raw=text,
        scheme=base_scheme,
        host=parsed.hostname,
        port=port,
        user=urllib.parse.unquote(parsed.username) if parsed.username else None,
        password=urllib.parse.unquote(parsed.password) if parsed.password is not None else None,
        database=database,
        query=query,
    )
