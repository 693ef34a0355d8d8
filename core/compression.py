"""The compressor interface, and recognising a compressor from a file's first bytes."""

from __future__ import annotations

import abc
from typing import BinaryIO, ClassVar, Iterable


class Compressor(abc.ABC):
    """A streaming codec for whole backup files.

    ``magic`` lists byte prefixes that identify the compressor's output; ``suffix`` is added to
    file names (``.zst``); an empty suffix means the stream is stored as is.
    """

    name: ClassVar[str]
    suffix: ClassVar[str] = ""
    magic: ClassVar[tuple[bytes, ...]] = ()
    default_level: ClassVar[int | None] = None
    min_level: ClassVar[int | None] = None
    max_level: ClassVar[int | None] = None
    version: ClassVar[str] = ""

    @classmethod
    def recognises(cls, head: bytes) -> bool:
        """Whether ``head`` (the first bytes of a file) starts with this compressor's output."""
        return any(head.startswith(prefix) for prefix in cls.magic)

    @classmethod
    def check_level(cls, level: int | None) -> int | None:
        """The level to use; raises ``ValueError`` naming the accepted range."""
        if level is None:
            return cls.default_level
        if cls.min_level is None:
            raise ValueError(f"the {cls.name} compressor takes no level")
        if not cls.min_level <= level <= cls.max_level:  # type: ignore[operator]
            raise ValueError(f"the {cls.name} level must be from {cls.min_level} to {cls.max_level}")
        return level

    @abc.abstractmethod
    def open_writer(self, raw: BinaryIO, level: int | None) -> "CompressWriter":
        """A writer that compresses into ``raw``; closing it flushes without closing ``raw``."""

    @abc.abstractmethod
    def open_reader(self, raw: BinaryIO) -> BinaryIO:
        """A readable stream of the decompressed bytes of ``raw``."""

    @classmethod
    def seal(cls, digest: bytes) -> bytes | None:
        """The bytes that end a sealed file, carrying ``digest`` (SHA-256 of every byte before them).

        A seal is an element this compressor's own decoders skip (a skippable frame, an empty
        member, a metadata block), so standard tools still read the file. A reader recomputes the
        digest and compares the file's last bytes with this exactly: any change to the file, even
        in bits the decoder ignores, is caught. ``None`` (the default): no seal.
        """
        return None


class CompressWriter(abc.ABC):
    """What :meth:`Compressor.open_writer` returns."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def finish(self) -> None:
        """Write the end of the stream; ``raw`` stays open."""

    def finish_before_seal(self) -> None:
        """End the compressed data so that :meth:`Compressor.seal` can follow (default: :meth:`finish`)."""
        self.finish()


SEAL_PREFIX = b"unibackup-seal:sha256:"


def seal_payload(digest: bytes) -> bytes:
    """What a compressor's seal carries: a recognisable prefix and the digest in hex."""
    return SEAL_PREFIX + digest.hex().encode("ascii")


def seal_length(compressor: type[Compressor]) -> int:
    """How many bytes ``compressor``'s seal takes at the end of a file; 0 when it writes none."""
    seal = compressor.seal(bytes(32))
    return 0 if seal is None else len(seal)


def recognise(head: bytes, compressors: Iterable[type[Compressor]]) -> type[Compressor] | None:
    """The compressor whose magic starts ``head``, or None (a compressor without magic never matches)."""
    for compressor in compressors:
        if compressor.magic and compressor.recognises(head):
            return compressor
    return None
