"""Everything a SQLite database holds, in a form two databases can be compared by.

Read through Python's ``sqlite3`` (never the CLI) with ``text_factory=bytes``, so text that is not
UTF-8 compares byte for byte; every value is kept as ``(typeof, repr)`` so that ``-0.0`` differs
from ``0.0`` and an INTEGER 1 from a REAL 1.0.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect_ro(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    conn.text_factory = bytes
    return conn


def _text(value: Any) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def master_rows(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """``sqlite_master`` as a sorted list of (type, name, tbl_name, sql)."""
    return sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"), key=repr)


def table_rows(conn: sqlite3.Connection, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` as a sorted list of tuples of (typeof, repr(value)), rowid first
    for rowid tables; generated columns are included (they prove the DDL was recreated)."""
    listed = {_text(row[1]): row for row in conn.execute("PRAGMA main.table_list")}
    entry = listed[table]
    columns = [_text(row[1]) for row in conn.execute(f"PRAGMA main.table_xinfo({_quote(table)})") if row[6] != 1]
    exprs = [_quote(c) for c in columns]
    without_rowid = bool(entry[4])
    # sqlite_sequence's own rowids only record the order in which tables first got a row
    if not without_rowid and table != "sqlite_sequence":
        taken = {c.lower() for c in columns}
        alias = next((a for a in ("rowid", "_rowid_", "oid") if a not in taken), None)
        if alias is not None:
            exprs.insert(0, alias)
    select = ", ".join(f"typeof({e}), {e}" for e in exprs)
    rows = []
    for raw in conn.execute(f"SELECT {select} FROM main.{_quote(table)}"):
        rows.append(tuple((raw[i], repr(raw[i + 1])) for i in range(0, len(raw), 2)))
    return sorted(rows, key=repr)


def data_tables(conn: sqlite3.Connection) -> list[str]:
    """Tables whose rows are data: ordinary and virtual tables, not shadow or internal ones
    (``sqlite_sequence`` is data: its high-water marks must survive)."""
    names = []
    for row in conn.execute("PRAGMA main.table_list"):
        name, kind = _text(row[1]), _text(row[2])
        if kind in ("table", "virtual") and (not name.startswith("sqlite_") or name == "sqlite_sequence"):
            names.append(name)
    return sorted(names)


def _statistics(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """The planner's statistics (``ANALYZE``), empty when there are none."""
    if conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()[0] == 0:
        return []
    return sorted(conn.execute("SELECT tbl, idx, stat FROM sqlite_stat1"), key=repr)


def contents(path: str | Path) -> dict[str, Any]:
    """The whole comparable content of the database at ``path``."""
    conn = connect_ro(path)
    try:
        return {
            "master": master_rows(conn),
            "user_version": conn.execute("PRAGMA user_version").fetchone()[0],
            "application_id": conn.execute("PRAGMA application_id").fetchone()[0],
            "tables": {name: table_rows(conn, name) for name in data_tables(conn)},
            "statistics": _statistics(conn),
        }
    finally:
        conn.close()


def integrity(path: str | Path) -> list[str]:
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def assert_same_database(original: str | Path, restored: str | Path) -> None:
    """Fail with a readable difference when ``restored`` does not hold what ``original`` holds."""
    before, after = contents(original), contents(restored)
    assert after["master"] == before["master"]
    assert after["user_version"] == before["user_version"]
    assert after["application_id"] == before["application_id"]
    assert after["statistics"] == before["statistics"]
    assert sorted(after["tables"]) == sorted(before["tables"])
    for name, rows in before["tables"].items():
        assert after["tables"][name] == rows, f"table {name!r} differs"
    assert integrity(restored) == ["ok"]
