"""The ``none`` compressor: plain JSON Lines, for piping into other tools."""

from __future__ import annotations

from typing import BinaryIO

from unibackup import hookimpl
from unibackup.compression import Compressor, CompressWriter


class _PlainWriter(CompressWriter):
    def __init__(self, raw: BinaryIO):
        self._raw = raw

    def write(self, data: bytes) -> None:
        self._raw.write(data)

    def finish(self) -> None:
        pass


class NoCompressor(Compressor):
    """No compression; a reader recognises the stream by its opening brace."""

    name = "none"
    suffix = ""

    def open_writer(self, raw: BinaryIO, level: int | None) -> CompressWriter:
        return _PlainWriter(raw)

    def open_reader(self, raw: BinaryIO) -> BinaryIO:
        return raw


@hookimpl
def unibackup_register_compressors() -> list[type[Compressor]]:
    return [NoCompressor]
