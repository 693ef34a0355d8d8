"""The ``xz`` compressor for unibackup: LZMA2 in the .xz container, from the standard library.

xz makes smaller files than zstd at a much slower pace; it suits backups that are written once
and kept for long. Install the package and the compressor is there::

    pip install unibackup-xz
    unibackup backup app.db --compression xz --level 9

This module is the whole plugin: a :class:`~unibackup.compression.Compressor` subclass, and a
hook implementation that registers it. The package's entry point (group ``unibackup``, name
``xz``) points at this module.
"""

from __future__ import annotations

import importlib.metadata
import lzma
from typing import BinaryIO

from unibackup import hookimpl
from unibackup.compression import Compressor, CompressWriter

try:
    __version__ = importlib.metadata.version("unibackup-xz")
except importlib.metadata.PackageNotFoundError:  # imported from a source tree
    __version__ = "0.0.0"


class _XzWriter(CompressWriter):
    """Compresses into ``raw`` as data arrives; ``finish`` writes the end of the stream."""

    def __init__(self, raw: BinaryIO, level: int):
        self._raw = raw
        self._compressor = lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=level)

    def write(self, data: bytes) -> None:
        out = self._compressor.compress(data)
        if out:
            self._raw.write(out)

    def finish(self) -> None:
        self._raw.write(self._compressor.flush())


class XzCompressor(Compressor):
    """xz (LZMA2 with a CRC64 check), presets 0-9 (default 6)."""

    name = "xz"
    suffix = ".xz"
    magic = (b"\xfd7zXZ\x00",)
    default_level = 6
    min_level = 0
    max_level = 9
    version = __version__

    def open_writer(self, raw: BinaryIO, level: int | None) -> CompressWriter:
        return _XzWriter(raw, self.default_level if level is None else level)

    def open_reader(self, raw: BinaryIO) -> BinaryIO:
        # LZMAFile reads concatenated streams, decompresses in bounded steps, and leaves ``raw``
        # open when it is closed.
        return lzma.LZMAFile(raw, mode="rb")  # type: ignore[return-value]


@hookimpl
def unibackup_register_compressors() -> list[type[Compressor]]:
    return [XzCompressor]
