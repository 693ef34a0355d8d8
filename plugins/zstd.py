"""The ``zstd`` compressor (the default): fast, multi-threaded, with frame checksums."""

from __future__ import annotations

from typing import BinaryIO

import zstandard

from unibackup import hookimpl
from unibackup.compression import Compressor, CompressWriter


class _ZstdWriter(CompressWriter):
    def __init__(self, raw: BinaryIO, level: int):
        compressor = zstandard.ZstdCompressor(level=level, threads=-1, write_checksum=True)
        self._stream = compressor.stream_writer(raw, closefd=False, write_return_read=True)

    def write(self, data: bytes) -> None:
        self._stream.write(data)

    def finish(self) -> None:
        self._stream.close()


class ZstdCompressor(Compressor):
    """Zstandard, levels 1-22 (default 3), using every core."""

    name = "zstd"
    suffix = ".zst"
    magic = (b"\x28\xb5\x2f\xfd",)
    default_level = 3
    min_level = 1
    max_level = 22
    version = zstandard.__version__

    def open_writer(self, raw: BinaryIO, level: int | None) -> CompressWriter:
        return _ZstdWriter(raw, level if level is not None else self.default_level)

    def open_reader(self, raw: BinaryIO) -> BinaryIO:
        return zstandard.ZstdDecompressor().stream_reader(raw, read_size=1 << 20, read_across_frames=True, closefd=False)  # type: ignore[return-value]


@hookimpl
def unibackup_register_compressors() -> list[type[Compressor]]:
    return [ZstdCompressor]
