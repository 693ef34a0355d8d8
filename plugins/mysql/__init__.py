"""The built-in ``mysql`` source and restore target, for MySQL and MariaDB servers (PyMySQL).

``mysql://user[:password]@host[:port]/database`` (``mariadb://`` is the same); the password may
also come from the ``password_file`` setting or ``MYSQL_PWD``. See ``docs/mysql.md``.
"""

from __future__ import annotations

from unibackup import hookimpl
from unibackup.source import Source

from .source import MySQLSource

__all__ = ["MySQLSource"]


@hookimpl
def unibackup_register_sources() -> list[type[Source]]:
    return [MySQLSource]
