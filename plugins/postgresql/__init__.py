"""The built-in ``postgresql`` source and restore target (psycopg 3).

Backup: one ``REPEATABLE READ READ ONLY`` transaction, the schema read from the catalogs, every
table's rows streamed by ``COPY`` with the server building each row line. Restore: one
transaction, the schema replayed, rows written by ``COPY FROM STDIN``; backups of other engines
are mapped column by column onto PostgreSQL types. See ``docs/postgresql.md``.

Without psycopg installed the plugin still registers, so that a ``postgresql://`` URL gets a
one-line answer saying what to install instead of a load warning on every run.
"""

from __future__ import annotations

from typing import Any

from unibackup import hookimpl
from unibackup.errors import UsageError
from unibackup.source import Location, Source

try:
    from .source import PostgreSQLSource
except ImportError as error:  # psycopg is an optional dependency
    _missing = str(error)

    class PostgreSQLSource(Source):  # type: ignore[no-redef]
        """Stands in for the real source when psycopg is missing."""

        name = "postgresql"
        schemes = ("postgresql",)

        def __init__(self, location: Location, settings: dict[str, Any] | None = None):
            raise UsageError(
                f"PostgreSQL support needs the psycopg driver ({_missing})",
                hint="pip install 'unibackup[postgresql]' (or pip install '.[postgresql]' from a source checkout)",
            )

        def open_snapshot(self) -> None: ...

        def server_version(self) -> str: ...

        def describe(self) -> Any: ...

        def read_batches(self, table: Any, sizer: Any) -> Any: ...


__all__ = ["PostgreSQLSource"]


@hookimpl
def unibackup_register_sources() -> list[type[Source]]:
    return [PostgreSQLSource]
