"""The format-migrator interface: turn a stream of an older format version into the next one."""

from __future__ import annotations

import abc
from typing import BinaryIO, ClassVar, Iterator


class FormatMigrator(abc.ABC):
    """Reads a stream of ``from_version`` and yields the bytes of ``to_version``."""

    name: ClassVar[str]
    from_version: ClassVar[int]
    to_version: ClassVar[int]
    version: ClassVar[str] = ""

    @classmethod
    @abc.abstractmethod
    def recognises(cls, head: bytes) -> bool:
        """Whether the decompressed stream starting with ``head`` is of ``from_version``."""

    @abc.abstractmethod
    def migrate(self, stream: BinaryIO) -> Iterator[bytes]:
        """Yield the migrated stream in chunks; raise ``CorruptBackupError`` on damaged input."""
