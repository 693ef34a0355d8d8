"""The ``gzip`` compressor: slower and larger than zstd, readable everywhere."""

from __future__ import annotations

import gzip
import struct
import zlib
from typing import BinaryIO

from unibackup import hookimpl
from unibackup.compression import Compressor, CompressWriter, seal_payload


class _GzipWriter(CompressWriter):
    def __init__(self, raw: BinaryIO, level: int):
        self._stream = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level, mtime=0)

    def write(self, data: bytes) -> None:
        self._stream.write(data)

    def finish(self) -> None:
        self._stream.close()  # writes the gzip trailer; leaves ``raw`` open


class GzipCompressor(Compressor):
    """gzip (DEFLATE), levels 1-9 (default 6)."""

    name = "gzip"
    suffix = ".gz"
    magic = (b"\x1f\x8b",)
    default_level = 6
    min_level = 1
    max_level = 9
    version = zlib.ZLIB_VERSION

    @classmethod
    def seal(cls, digest: bytes) -> bytes:
        """An empty gzip member whose extra field (subfield ``UB``) carries the seal; gzip
        decompresses a file of several members as their concatenation, so it adds nothing."""
        payload = seal_payload(digest)
        extra = b"UB" + struct.pack("<H", len(payload)) + payload
        header = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff" + struct.pack("<H", len(extra)) + extra
        return header + b"\x03\x00" + struct.pack("<II", 0, 0)  # an empty final block, CRC-32 and size 0

    def open_writer(self, raw: BinaryIO, level: int | None) -> CompressWriter:
        return _GzipWriter(raw, level if level is not None else self.default_level)

    def open_reader(self, raw: BinaryIO) -> BinaryIO:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]


@hookimpl
def unibackup_register_compressors() -> list[type[Compressor]]:
    return [GzipCompressor]
