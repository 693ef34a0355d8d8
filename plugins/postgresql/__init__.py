"""The built-in ``postgresql`` source and restore target (psycopg 3).

Backup: one ``REPEATABLE READ READ ONLY`` transaction, the schema read from the catalogs, every
table's rows streamed by ``COPY`` with the server building each row line. Restore: one
transaction, the schema replayed, rows written by ``COPY FROM STDIN``; backups of other engines
are mapped column by column onto PostgreSQL types. See ``docs/postgresql.md``.
"""

from __future__ import annotations

from unibackup import hookimpl
from unibackup.source import Source

from .source import PostgreSQLSource

__all__ = ["PostgreSQLSource"]


@hookimpl
def unibackup_register_sources() -> list[type[Source]]:
    return [PostgreSQLSource]
