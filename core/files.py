"""Backup files on disk: names, atomic publication, and opening one for reading.

Opening recognises the compressor from the file's bytes (not its name) and the format version
from the decompressed head; an older version is migrated on the fly into the current one.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

import attrs

from .compression import Compressor, seal_length
from .errors import CorruptBackupError, UnibackupError, UsageError
from .format import FORMAT_VERSION, LineSplitter, ReadLimits
from .migration import FormatMigrator

BACKUP_MARK = ".ubk.jsonl"
HEAD_BYTES = 64 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_V2_HEAD = b'{"type":"header"'


def backup_file_name(display_name: str, created: datetime.datetime, suffix: str) -> str:
    """``<source>-<UTC timestamp>.ubk.jsonl[.suffix]``, with the source name made file-safe."""
    safe = _UNSAFE.sub("_", display_name).strip("._") or "backup"
    stamp = created.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{safe}-{stamp}{BACKUP_MARK}{suffix}"


def is_backup_name(name: str) -> bool:
    return BACKUP_MARK in name and not name.startswith(".")


def fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def publish(temporary: Path, final: Path) -> None:
    """Give a finished, fsynced temporary file its final name; never overwrite an existing file."""
    try:
        os.link(temporary, final)
    except FileExistsError:
        raise UsageError(f"{final} already exists; a backup never overwrites a file") from None
    except OSError:
        # file systems without hard links: check, then rename (a narrow race, still no overwrite of
        # anything that existed when we looked)
        if final.exists():
            raise UsageError(f"{final} already exists; a backup never overwrites a file") from None
        os.rename(temporary, final)
    else:
        os.unlink(temporary)
    fsync_directory(final.parent)


class SealingWriter:
    """Passes a compressor's output to ``raw`` and digests it, for the seal that follows it."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._hash = hashlib.sha256()

    def write(self, data: Any) -> int:
        self._hash.update(data)
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()

    def digest(self) -> bytes:
        return self._hash.digest()


class UnrecognisedFileError(CorruptBackupError):
    """No loaded compressor or format migrator recognises the file; ``head`` holds its first
    bytes, for the caller to tell a missing plugin from damage."""

    def __init__(self, message: str, *, head: bytes = b"", hint: str | None = None):
        super().__init__(message, hint=hint)
        self.head = head


class _CountingReader(io.RawIOBase):
    """Counts the compressed bytes read (for the decompression-ratio limit) and digests all but
    the last ``seal_size`` bytes of the file, which are kept apart to be compared with the seal."""

    def __init__(self, raw: BinaryIO, size: int = 0, seal_size: int = 0):
        self._raw = raw
        self.count = 0
        self._digested_end = size - seal_size if seal_size else None
        self._hash = hashlib.sha256()
        self.tail = bytearray()

    def readable(self) -> bool:
        return True

    def _account(self, data: Any) -> None:
        start = self.count
        self.count += len(data)
        end = self._digested_end
        if end is None:
            return
        cut = max(0, min(len(data), end - start))
        if cut:
            self._hash.update(data[:cut])
        if cut < len(data):
            self.tail += data[cut:]

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._account(data)
        return n

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._account(data)
        return data

    def drain(self) -> int:
        """Read what the decompressor left unread; return how many bytes that was."""
        left = 0
        while True:
            data = self._raw.read(1 << 20)
            if not data:
                return left
            left += len(data)
            self._account(data)

    def digest(self) -> bytes:
        return self._hash.digest()


def _end_check(path: Path, compressor_cls: type[Compressor] | None, counting: _CountingReader) -> Callable[[Any], None]:
    """What must hold once a version-2 stream has been read to its trailer: the seal, when the
    header says the file has one, matches; otherwise nothing follows the compressed stream."""

    def check(header: Any) -> None:
        left = counting.drain()
        if header.sealed and compressor_cls is not None and compressor_cls.name == header.compressor.name:
            if compressor_cls.seal(counting.digest()) != bytes(counting.tail):
                raise CorruptBackupError(
                    f"{path.name!r} fails its {compressor_cls.name} seal: the file was changed, truncated or extended after it was written",
                    hint=f"a file recompressed by another tool can be used once decompressed (its {compressor_cls.name} seal is gone)",
                )
        elif left:
            raise CorruptBackupError(f"{left} bytes follow the end of the compressed data in {path.name!r}")

    return check


class _ChunkStream(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (a migrator's output)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._buffer))
        buffer[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


class _Prefixed(io.RawIOBase):
    """A stream with bytes already read put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _read_head(stream: BinaryIO, size: int) -> bytes:
    parts = []
    remaining = size
    while remaining > 0:
        try:
            data = stream.read(remaining)
        except UnibackupError:  # already classified by a layer below
            raise
        except Exception as error:
            raise CorruptBackupError(f"the backup cannot be decompressed: {error}") from None
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


@attrs.frozen
class OpenedBackup:
    """A backup opened for reading: its decompressed lines and how it was stored."""

    path: Path
    compressor: type[Compressor] | None  # None: stored uncompressed
    format_version: int
    migrators: tuple[str, ...]
    splitter: LineSplitter
    compressed_size: int


def recognise_compressor(
    head: bytes, compressors: Iterable[type[Compressor]], looks_plain: Callable[[bytes], bool]
) -> type[Compressor] | None:
    """Magic numbers first, then an uncompressed stream, then compressors that probe (brotli has
    no magic). None means uncompressed."""
    candidates = list(compressors)
    for compressor in candidates:
        if compressor.magic and compressor.recognises(head):
            return compressor
    if looks_plain(head):
        return None
    for compressor in candidates:
        if not compressor.magic and compressor.suffix and compressor.recognises(head):
            return compressor
    return None


@contextlib.contextmanager
def open_backup(
    path: str | os.PathLike[str],
    compressors: Iterable[type[Compressor]],
    migrators: Iterable[type[FormatMigrator]],
    limits: ReadLimits,
) -> Iterator[OpenedBackup]:
    """Open ``path``: recognise compression and format version, migrate older versions."""
    path = Path(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode) and not path.is_dir():
            raise UsageError(f"{str(path)!r} is not a regular file")  # a pipe would hang, a device never ends
        raw = open(path, "rb")
    except FileNotFoundError:
        raise UsageError(f"the backup {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"{str(path)!r} is a directory, not a backup file") from None
    except PermissionError:
        raise UsageError(f"permission denied reading {str(path)!r}") from None
    with raw:
        size = os.fstat(raw.fileno()).st_size
        head = raw.read(HEAD_BYTES)
        raw.seek(0)
        if not head:
            raise CorruptBackupError(f"the backup {path.name!r} is empty")
        migrators = list(migrators)

        def looks_plain(data: bytes) -> bool:
            return data.startswith(_V2_HEAD) or any(m.recognises(data) for m in migrators)

        compressor_cls = recognise_compressor(head, compressors, looks_plain)
        counting = _CountingReader(raw, size, seal_length(compressor_cls) if compressor_cls is not None else 0)
        if compressor_cls is None:
            if head.lstrip()[:1] not in (b"{", b"[") and not looks_plain(head):  # a migrator's own layout
                raise UnrecognisedFileError(f"{path.name!r} is neither a unibackup file nor compressed by a known compressor", head=head[:64])
            stream: BinaryIO = counting  # type: ignore[assignment]
        else:
            stream = compressor_cls().open_reader(counting)  # type: ignore[arg-type]
        decompressed_head = _read_head(stream, HEAD_BYTES)
        stream = _Prefixed(decompressed_head, stream)  # type: ignore[assignment]
        version = FORMAT_VERSION
        applied: list[str] = []
        if not decompressed_head.startswith(_V2_HEAD):
            migrator_classes = {m.from_version: m for m in migrators}
            current = None
            for migrator_cls in migrators:
                if migrator_cls.recognises(decompressed_head):
                    current = migrator_cls
                    break
            if current is None:
                raise CorruptBackupError(f"{path.name!r} is not a unibackup backup of any format version this installation reads")
            version = current.from_version
            while current is not None:
                stream = _ChunkStream(current().migrate(stream))  # type: ignore[assignment]
                applied.append(current.name)
                current = migrator_classes.get(current.to_version) if current.to_version < FORMAT_VERSION else None
        end_check = None if applied else _end_check(path, compressor_cls, counting)
        splitter = LineSplitter(stream, limits, lambda: counting.count, end_check)
        yield OpenedBackup(path, compressor_cls, version, tuple(applied), splitter, size)
