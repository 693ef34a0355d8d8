"""The ``brotli`` compressor: the smallest files, the slowest writes.

Brotli streams have no magic number, so a reader recognises one by decompressing the first bytes
and finding the start of a backup there.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO

import brotli

from unibackup import hookimpl
from unibackup.compression import Compressor, CompressWriter, seal_payload

_READ_SIZE = 1 << 18


class _BrotliWriter(CompressWriter):
    def __init__(self, raw: BinaryIO, level: int):
        self._raw = raw
        self._compressor = brotli.Compressor(quality=level, lgwin=24)

    def write(self, data: bytes) -> None:
        out = self._compressor.process(data)
        if out:
            self._raw.write(out)

    def finish(self) -> None:
        self._raw.write(self._compressor.finish())

    def finish_before_seal(self) -> None:
        # A flush ends on a byte boundary; the seal then brings the last meta-block.
        self._raw.write(self._compressor.flush())


class _BrotliReader(io.RawIOBase):
    """Decompresses with a bounded output buffer, so a hostile stream cannot balloon in memory."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._decompressor = brotli.Decompressor()
        self._pending = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            if self._decompressor.is_finished():
                return 0
            exhausted = False
            data = b""
            if self._decompressor.can_accept_more_data():
                data = self._raw.read(_READ_SIZE)
                exhausted = not data
            # With an output limit the decompressor may still hold input it has not turned into
            # output yet, even when it can accept more: drain it before calling the stream short.
            self._pending = self._decompressor.process(data, output_buffer_limit=1 << 20)
            if exhausted and not self._pending and not self._decompressor.is_finished():
                raise EOFError("the brotli stream ended before its end marker (truncated)")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


class BrotliCompressor(Compressor):
    """Brotli, quality 0-11 (default 5)."""

    name = "brotli"
    suffix = ".br"
    magic = ()
    default_level = 5
    min_level = 0
    max_level = 11
    version = getattr(brotli, "__version__", "")

    @classmethod
    def recognises(cls, head: bytes) -> bool:
        try:
            out = brotli.Decompressor().process(head[:4096], output_buffer_limit=64)
        except brotli.error:
            return False
        return out[:1] in (b"{", b"[")

    @classmethod
    def seal(cls, digest: bytes) -> bytes:
        """A metadata meta-block (skipped by decoders) with the seal, then the empty last meta-block.

        Bits, lowest first: ISLAST=0, MNIBBLES=0 (code 3), a reserved 0, MSKIPBYTES=1, then
        MSKIPLEN-1 in eight bits and zero fill; the payload; then ISLAST=1, ISLASTEMPTY=1 (0x03).
        """
        payload = seal_payload(digest)
        n = len(payload) - 1
        header = bytes([0b0110 | (1 << 4) | ((n & 0b11) << 6), n >> 2])
        return header + payload + b"\x03"

    def open_writer(self, raw: BinaryIO, level: int | None) -> CompressWriter:
        return _BrotliWriter(raw, level if level is not None else self.default_level)

    def open_reader(self, raw: BinaryIO) -> BinaryIO:
        return io.BufferedReader(_BrotliReader(raw), 1 << 20)  # type: ignore[return-value]


@hookimpl
def unibackup_register_compressors() -> list[type[Compressor]]:
    return [BrotliCompressor]
