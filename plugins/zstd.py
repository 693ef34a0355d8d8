"""The ``zstd`` compressor (the default): fast, multi-threaded, with frame checksums."""

from __future__ import annotations

import struct
from typing import BinaryIO

import zstandard

from unibackup import hookimpl
from unibackup.compression import Compressor, CompressWriter, seal_payload

#: The seal's skippable frame (decoders skip frames with magic 0x184D2A50-0x184D2A5F).
_SEAL_FRAME_MAGIC = 0x184D2A5B


class _ZstdWriter(CompressWriter):
    def __init__(self, raw: BinaryIO, level: int):
        compressor = zstandard.ZstdCompressor(level=level, threads=-1, write_checksum=True)
        self._stream = compressor.stream_writer(raw, closefd=False, write_return_read=True)

    def write(self, data: bytes) -> None:
        self._stream.write(data)

    def finish(self) -> None:
        self._stream.close()


_FRAME_MAGIC = 0xFD2FB528
_SKIPPABLE_MASK = 0xFFFFFFF0
_SKIPPABLE_MAGIC = 0x184D2A50


class _FrameBoundaryChecker:
    """Passes the compressed bytes through while walking the frame and block headers.

    The zstd stream reader ends quietly on a stream cut inside a frame; this walker notices,
    so that a truncated file is always reported (a frame's end and checksum must be present).
    Only headers are parsed: a few operations per 128 KiB block.
    """

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._need = 4  # header bytes to collect before the next decision
        self._header = bytearray()
        self._state = "magic"
        self._skip = 0  # payload bytes to pass over
        self._checksum = False
        self.frames = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if not data:
            if self._state != "magic" or self._header or self._skip or self.frames == 0:
                raise EOFError("the zstd stream ends inside a frame (truncated)")
            return data
        self._walk(memoryview(data))
        return data

    def _walk(self, view: memoryview) -> None:
        position, end = 0, len(view)
        while position < end:
            if self._skip:
                step = min(self._skip, end - position)
                self._skip -= step
                position += step
                continue
            take = min(self._need - len(self._header), end - position)
            self._header += view[position : position + take]
            position += take
            if len(self._header) == self._need:
                header = bytes(self._header)
                self._header.clear()
                self._decide(header)

    def _decide(self, header: bytes) -> None:
        """Act on a complete header; set the state (and bytes to skip) that come next."""
        state = self._state
        if state == "magic":
            magic = int.from_bytes(header, "little")
            if magic == _FRAME_MAGIC:
                self._state, self._need = "descriptor", 1
            elif magic & _SKIPPABLE_MASK == _SKIPPABLE_MAGIC:
                self._state, self._need = "skippable-size", 4
            else:
                raise ValueError("data after the last zstd frame is not a zstd frame")
        elif state == "skippable-size":
            self._skip = int.from_bytes(header, "little")
            self.frames += 1
            self._state, self._need = "magic", 4
        elif state == "descriptor":
            descriptor = header[0]
            single_segment = bool(descriptor & 0x20)
            self._checksum = bool(descriptor & 0x04)
            fcs_flag = descriptor >> 6
            fcs = (1 if single_segment else 0) if fcs_flag == 0 else (2, 4, 8)[fcs_flag - 1]
            rest = (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 0x03] + fcs
            self._state, self._need = ("frame-header", rest) if rest else ("block", 3)
        elif state == "frame-header":
            self._state, self._need = "block", 3
        elif state == "block":
            value = int.from_bytes(header, "little")
            last, kind, size = value & 1, (value >> 1) & 3, value >> 3
            if kind == 3:
                raise ValueError("a zstd block has the reserved type")
            self._skip = 1 if kind == 1 else size
            if not last:
                self._state, self._need = "block", 3
            elif self._checksum:
                self._state, self._need = "checksum", 4
            else:
                self.frames += 1
                self._state, self._need = "magic", 4
        elif state == "checksum":
            self.frames += 1
            self._state, self._need = "magic", 4

    def close(self) -> None:
        pass


class ZstdCompressor(Compressor):
    """Zstandard, levels 1-22 (default 3), using every core."""

    name = "zstd"
    suffix = ".zst"
    magic = (b"\x28\xb5\x2f\xfd",)
    default_level = 3
    min_level = 1
    max_level = 22
    version = zstandard.__version__

    @classmethod
    def seal(cls, digest: bytes) -> bytes:
        """A skippable frame after the data frame; ``zstd -d`` and every decoder pass over it."""
        payload = seal_payload(digest)
        return struct.pack("<II", _SEAL_FRAME_MAGIC, len(payload)) + payload

    def open_writer(self, raw: BinaryIO, level: int | None) -> CompressWriter:
        return _ZstdWriter(raw, level if level is not None else self.default_level)

    def open_reader(self, raw: BinaryIO) -> BinaryIO:
        checked = _FrameBoundaryChecker(raw)
        return zstandard.ZstdDecompressor().stream_reader(checked, read_size=1 << 20, read_across_frames=True, closefd=False)  # type: ignore[return-value]


@hookimpl
def unibackup_register_compressors() -> list[type[Compressor]]:
    return [ZstdCompressor]
