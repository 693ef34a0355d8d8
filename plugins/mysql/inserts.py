"""The ``INSERT`` statements of a restore, built as bytes and sized to the server's packet.

PyMySQL writes binary values as hexadecimal (twice their size), so a value the server holds may
not fit in one statement when it is sent back. Here binary values are sent as they are, with
only the quote and the backslash escaped (the server reads a statement by its length, so any
byte may stand inside a string literal), and the rows are packed into multi-row statements that
never exceed ``max_allowed_packet``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import attrs

from unibackup.display import human_size
from unibackup.errors import SourceError

#: The most a multi-row statement holds (a single row may take up to the whole packet).
STATEMENT_BYTES = 4 * 1024 * 1024
#: What a packet holds besides the statement (the command byte, with room to spare).
PACKET_MARGIN = 1024


def binary_literal(data: bytes) -> bytes:
    """``_binary'...'`` holding ``data`` byte for byte."""
    return b"_binary'" + data.replace(b"\\", b"\\\\").replace(b"'", b"\\'") + b"'"


@attrs.frozen
class Packer:
    """Packs rows into ``INSERT`` statements that fit the server's ``max_allowed_packet``."""

    packet: int  # the server's max_allowed_packet
    literal: Callable[[Any], str]  # PyMySQL's escaping of a non-binary value

    @property
    def statement_limit(self) -> int:
        return max(64 * 1024, min(STATEMENT_BYTES, self.packet - PACKET_MARGIN))

    def value(self, value: Any) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return binary_literal(bytes(value))
        return self.literal(value).encode("utf-8")

    def row(self, row: Sequence[Any]) -> bytes:
        return b"(" + b", ".join(self.value(value) for value in row) + b")"

    def statements(self, prefix: bytes, rows: Sequence[Sequence[Any]], table: str) -> Iterator[bytes]:
        """``prefix`` (``INSERT INTO ... VALUES ``) with as many rows as fit each statement; a row
        that cannot fit even alone is an error naming the table and ``max_allowed_packet``."""
        parts: list[bytes] = []
        size = len(prefix)
        for row in rows:
            literal = self.row(row)
            if len(prefix) + len(literal) > self.packet - PACKET_MARGIN:
                raise too_large(table, len(prefix) + len(literal), self.packet)
            if parts and size + 2 + len(literal) > self.statement_limit:
                yield prefix + b", ".join(parts)
                parts, size = [], len(prefix)
            parts.append(literal)
            size += len(literal) + 2
        if parts:
            yield prefix + b", ".join(parts)


def too_large(table: str, size: int, packet: int) -> SourceError:
    return SourceError(
        f"writing table {table!r}: a row needs a statement of {human_size(size)}, more than the server's "
        f"max_allowed_packet ({human_size(packet)})",
        hint="raise max_allowed_packet on the server (SET GLOBAL max_allowed_packet = ...) and restore again",
    )


def insert_prefix(table: str, columns: Sequence[str], quote: Callable[[str], str]) -> bytes:
    names = ", ".join(quote(name) for name in columns)
    return f"INSERT INTO {quote(table)} ({names}) VALUES ".encode("utf-8")
