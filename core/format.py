"""Format version 2 of the backup file: writing it, and reading it back with every check.

The layout (``docs/format.md`` is the specification)::

    {"type":"header", ...}                     BackupHeader, with every table's schema
    {"type":"table","name":...}                per table: the table line,
    [...] [...] ...                            its rows, one JSON array each,
    {"type":"table_end","rows":N,"digest":...} and its footer
    {"type":"trailer","tables":T,"rows":R,"bytes":B,"digest":...}

Digests are ``sha256:<hex>``: a footer's covers the table's row lines (each with its newline), the
trailer's covers every byte before the trailer line.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from typing import Any, BinaryIO, Iterator, Sequence

import attrs
import cattrs
import orjson

from .errors import CorruptBackupError, UnibackupError
from .models import BackupHeader, TableFooter, TableSchema, Trailer, from_dict, to_dict
from .values import EncodedRows, decode_rows

FORMAT_NAME = "unibackup"
FORMAT_VERSION = 2
DIGEST_ALGORITHM = "sha256"


def _digest_text(hasher: "hashlib._Hash") -> str:
    return f"{DIGEST_ALGORITHM}:{hasher.hexdigest()}"


class _BackgroundSink:
    """Hashes and writes chunks in a worker thread, in order.

    Hashing and compressing release the GIL, so they overlap with reading and encoding the next
    batch. A failure in the worker (a full disk) is raised in the caller at its next call.
    """

    def __init__(self, sink: Any, depth: int = 4):
        self._sink = sink
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="unibackup-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                # polled, so that a stop is seen even when a signal broke the queue's hand-over
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stopping:
                    return
                continue
            try:
                if item is None or self._stopping:
                    return
                data, hashers = item
                if self._error is None:
                    for hasher in hashers:
                        hasher.update(data)
                    self._sink.write(data)
            except BaseException as error:  # handed to the caller
                self._error = error
            finally:
                self._queue.task_done()

    def _check(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, data: bytes | bytearray, hashers: tuple[Any, ...]) -> None:
        self._check()
        self._queue.put((data, hashers))

    def drain(self) -> None:
        """Wait until everything submitted is hashed and written."""
        self._queue.join()
        self._check()

    def close(self) -> None:
        """Stop the worker; what is still queued is dropped (the caller is failing or done)."""
        self._stopping = True
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout=10)
        while True:  # whatever the worker left: nobody waits for it any more
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            self._queue.task_done()


class BackupWriter:
    """Writes the lines of one backup into a byte sink, keeping counts and digests.

    With ``background=True`` hashing and writing run in a worker thread; call :meth:`close`
    (always, also on failure) to stop it.
    """

    def __init__(self, sink: Any, *, background: bool = False):
        self._sink = sink
        self._file_hash = hashlib.sha256()
        self._table_hash: Any = None
        self._table: TableSchema | None = None
        self._table_rows = 0
        self._worker = _BackgroundSink(sink) if background else None
        self.tables = 0
        self.rows = 0
        self.bytes = 0

    def close(self) -> None:
        """Stop the worker thread, if any; safe to call more than once. Writes after it go
        straight to the sink."""
        if self._worker is not None:
            worker, self._worker = self._worker, None
            worker.close()

    def _drain(self) -> None:
        if self._worker is not None:
            self._worker.drain()

    def _write(self, data: bytes | bytearray, *table_hash: Any) -> None:
        if self._worker is not None:
            self._worker.submit(data, (self._file_hash, *table_hash))
        else:
            for hasher in table_hash:
                hasher.update(data)
            self._file_hash.update(data)
            self._sink.write(data)
        self.bytes += len(data)

    def _write_record(self, record: dict[str, Any]) -> None:
        self._write(orjson.dumps(record) + b"\n")

    def write_header(self, header: BackupHeader) -> None:
        self._write_record({"type": "header", **to_dict(header)})

    def begin_table(self, table: TableSchema) -> None:
        if self._table is not None:
            raise RuntimeError("the previous table is not finished")
        self._table = table
        self._table_hash = hashlib.sha256()
        self._table_rows = 0
        self._write_record({"type": "table", "name": table.name, "namespace": table.namespace})

    def write_rows(self, batch: EncodedRows | Sequence[bytes]) -> tuple[int, int]:
        """Write a batch of encoded rows; returns (rows, bytes) written.

        ``batch`` is an :class:`~unibackup.values.EncodedRows` (newline-terminated lines) or a
        sequence of lines without newlines.
        """
        if isinstance(batch, EncodedRows):
            data, rows = batch.data, batch.rows
        else:
            if not batch:
                return 0, 0
            data, rows = b"\n".join(batch) + b"\n", len(batch)
        if not rows:
            return 0, 0
        self._write(data, self._table_hash)
        self._table_rows += rows
        return rows, len(data)

    def end_table(self) -> TableFooter:
        table = self._table
        if table is None:
            raise RuntimeError("no table is open")
        self._drain()
        footer = TableFooter(
            name=table.name, namespace=table.namespace, rows=self._table_rows, digest=_digest_text(self._table_hash)
        )
        self._write_record({"type": "table_end", **to_dict(footer)})
        self.tables += 1
        self.rows += self._table_rows
        self._table = None
        return footer

    def write_trailer(self) -> Trailer:
        if self._table is not None:
            raise RuntimeError("a table is still open")
        self._drain()
        trailer = Trailer(tables=self.tables, rows=self.rows, bytes=self.bytes, digest=_digest_text(self._file_hash))
        self._sink.write(orjson.dumps({"type": "trailer", **to_dict(trailer)}) + b"\n")
        return trailer


@attrs.frozen
class ReadLimits:
    """Limits that keep a hostile file from exhausting memory or disk."""

    max_line_bytes: int = 256 * 1024 * 1024
    max_decompressed_bytes: int | None = None
    max_ratio: float | None = 2000.0
    ratio_grace_bytes: int = 64 * 1024 * 1024  # the ratio is judged only past this many bytes


class LineSplitter:
    """Splits a decompressed stream into lines, enforcing :class:`ReadLimits`."""

    CHUNK = 1 << 20

    def __init__(self, stream: BinaryIO, limits: ReadLimits, compressed_bytes: Any = None, end_check: Any = None):
        self._stream = stream
        self._limits = limits
        self._compressed_bytes = compressed_bytes  # callable: compressed bytes read so far
        self._end_check = end_check  # callable(header): checks of the container once the trailer is read
        self.decompressed_bytes = 0

    def check_end(self, header: BackupHeader) -> None:
        """After the last line: what the container must satisfy (its seal, no bytes after it)."""
        if self._end_check is not None:
            self._end_check(header)

    def _check_limits(self) -> None:
        limits = self._limits
        total = self.decompressed_bytes
        if limits.max_decompressed_bytes is not None and total > limits.max_decompressed_bytes:
            raise CorruptBackupError(
                f"the backup decompresses to more than {limits.max_decompressed_bytes} bytes",
                hint="raise limits.max_decompressed_bytes if the file is trusted",
            )
        if limits.max_ratio and self._compressed_bytes is not None and total > limits.ratio_grace_bytes:
            compressed = max(1, self._compressed_bytes())
            if total / compressed > limits.max_ratio:
                raise CorruptBackupError(
                    f"the backup expands more than {limits.max_ratio:g} times (a decompression bomb?)",
                    hint="raise limits.max_ratio if the file is trusted",
                )

    def __iter__(self) -> Iterator[list[bytes]]:
        """Yield lists of complete lines (without newlines), a chunk at a time."""
        pending = b""
        max_line = self._limits.max_line_bytes
        while True:
            try:
                chunk = self._stream.read(self.CHUNK)
            except UnibackupError:  # already classified by a layer below
                raise
            except Exception as error:  # the codec found damaged data
                raise CorruptBackupError(f"the backup cannot be decompressed: {error}") from None
            if not chunk:
                break
            self.decompressed_bytes += len(chunk)
            self._check_limits()
            data = pending + chunk if pending else chunk
            lines = data.split(b"\n")
            pending = lines.pop()
            if len(pending) > max_line or (max_line < len(data) and lines and max(map(len, lines)) > max_line):
                raise CorruptBackupError(f"a line is longer than {max_line} bytes", hint="raise limits.max_line_bytes")
            if lines:
                yield lines
        if pending:
            raise CorruptBackupError("the backup ends in the middle of a line (truncated)")


@attrs.frozen
class TableStart:
    """The reader entered a table."""

    table: TableSchema


@attrs.frozen
class RowBatch:
    """Row lines of the current table; ``rows`` holds decoded values when asked for."""

    table: TableSchema
    lines: list[bytes]
    rows: list[list[Any]] | None = None


def _parse_record(line: bytes, what: str) -> dict[str, Any]:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise CorruptBackupError(f"the {what} line is not valid JSON") from None
    if type(record) is not dict:
        raise CorruptBackupError(f"the {what} line is not a JSON object")
    return record


def _structure(record: dict[str, Any], model: type, what: str) -> Any:
    try:
        return from_dict({key: value for key, value in record.items() if key != "type"}, model)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as error:
        raise CorruptBackupError(f"the {what} line is malformed ({type(error).__name__})") from None


def parse_header(line: bytes) -> BackupHeader:
    """The header of a version-2 file; raises :class:`CorruptBackupError` on anything else."""
    record = _parse_record(line, "header")
    if record.get("type") != "header" or record.get("format") != FORMAT_NAME:
        raise CorruptBackupError("the file is not a unibackup backup (no header line)")
    version = record.get("format_version")
    if version != FORMAT_VERSION:
        raise CorruptBackupError(
            f"the backup has format version {version!r}; this unibackup reads version {FORMAT_VERSION}",
            hint="upgrade unibackup, or run 'unibackup migrate' if it is older",
        )
    header = _structure(record, BackupHeader, "header")
    check_header_schema(header)
    return header


def check_header_schema(header: BackupHeader) -> None:
    """What every engine needs of the schema in a header: tables named once, columns named
    once per table, and no NUL character in a name (no engine has one)."""
    seen: set[tuple[str | None, str]] = set()
    for table in header.schema.tables:
        key = (table.namespace, table.name)
        if key in seen:
            raise CorruptBackupError(f"the header lists the table {table.qualified_name!r} twice")
        seen.add(key)
        names = [table.name, table.namespace or "", *(c.name for c in table.columns), *(c.name for c in table.generated_columns)]
        if any("\x00" in name for name in names):
            raise CorruptBackupError(f"a name in table {table.qualified_name[:60]!r} holds a NUL character")
        columns = [c.name for c in (*table.columns, *table.generated_columns)]
        if len(set(columns)) != len(columns):
            duplicate = next(name for name in columns if columns.count(name) > 1)
            raise CorruptBackupError(f"the table {table.qualified_name!r} names the column {duplicate!r} twice")
    for obj in header.schema.objects:
        if "\x00" in obj.name or "\x00" in (obj.sql or ""):
            raise CorruptBackupError(f"the {obj.kind} {obj.name[:60]!r} holds a NUL character")


class BackupReader:
    """Reads a version-2 stream and checks it as it goes.

    ``check_digests`` recomputes every footer and trailer digest; ``decode`` decodes each row's
    values (which also checks their types and the column count). Counts, structure and the
    trailer are always checked. Every problem raises :class:`CorruptBackupError`.
    """

    def __init__(self, splitter: LineSplitter, *, check_digests: bool = True, decode: bool = False):
        self._splitter = splitter
        self._check_digests = check_digests
        self._decode = decode
        self.header: BackupHeader | None = None
        self.trailer: Trailer | None = None
        self.footers: list[TableFooter] = []

    def __iter__(self) -> Iterator[BackupHeader | TableStart | RowBatch | TableFooter | Trailer]:
        check = self._check_digests
        file_hash = hashlib.sha256() if check else None
        file_bytes = 0
        tables_by_key: dict[tuple[str | None, str], TableSchema] = {}
        seen_tables: set[tuple[str | None, str]] = set()
        table: TableSchema | None = None
        table_hash: Any = None
        table_rows = 0
        total_rows = 0
        width = 0

        def account(data: bytes) -> None:
            nonlocal file_bytes
            file_bytes += len(data)
            if file_hash is not None:
                file_hash.update(data)

        for lines in self._splitter:
            index = 0
            count = len(lines)
            while index < count:
                line = lines[index]
                if self.trailer is not None:
                    raise CorruptBackupError("there is data after the trailer")
                if self.header is None:
                    self.header = parse_header(line)
                    tables_by_key = {(t.namespace, t.name): t for t in self.header.schema.tables}
                    account(line + b"\n")
                    index += 1
                    yield self.header
                    continue
                if line[:1] == b"[":
                    if table is None:
                        raise CorruptBackupError("a row line stands outside a table")
                    if not table.has_data:
                        raise CorruptBackupError(f"the table {table.qualified_name!r} has rows, but its header says it keeps none")
                    end = index
                    while end < count and lines[end][:1] == b"[":
                        end += 1
                    batch = lines[index:end]
                    data = b"\n".join(batch) + b"\n"
                    if check:
                        table_hash.update(data)
                    account(data)
                    table_rows += len(batch)
                    rows = None
                    if self._decode:
                        try:
                            rows = decode_rows(batch, width)
                        except CorruptBackupError as error:
                            raise CorruptBackupError(f"table {table.qualified_name!r}: {error.message}") from None
                    index = end
                    yield RowBatch(table, batch, rows)
                    continue
                record = _parse_record(line, "record")
                kind = record.get("type")
                if kind == "table":
                    if table is not None:
                        raise CorruptBackupError("a table starts before the previous one ended")
                    key = (record.get("namespace"), record.get("name"))
                    table = tables_by_key.get(key)  # type: ignore[arg-type]
                    if table is None:
                        raise CorruptBackupError(f"the table {record.get('name')!r} is not in the header")
                    if key in seen_tables:
                        raise CorruptBackupError(f"the table {table.qualified_name!r} appears twice")
                    expected = self.header.schema.tables[len(seen_tables)]  # type: ignore[union-attr]
                    if (expected.namespace, expected.name) != key:
                        raise CorruptBackupError(f"the table {table.qualified_name!r} comes where the header has {expected.qualified_name!r}")
                    seen_tables.add(key)
                    table_hash = hashlib.sha256() if check else None
                    table_rows = 0
                    width = len(table.columns)
                    account(line + b"\n")
                    index += 1
                    yield TableStart(table)
                elif kind == "table_end":
                    if table is None:
                        raise CorruptBackupError("a table footer stands outside a table")
                    footer = _structure(record, TableFooter, "table footer")
                    if (footer.namespace, footer.name) != (table.namespace, table.name):
                        raise CorruptBackupError(f"the footer of {table.qualified_name!r} names another table")
                    if footer.rows != table_rows:
                        raise CorruptBackupError(
                            f"table {table.qualified_name!r} has {table_rows} rows, its footer says {footer.rows}"
                        )
                    if check and footer.digest != _digest_text(table_hash):
                        raise CorruptBackupError(f"the rows of table {table.qualified_name!r} fail their digest")
                    total_rows += table_rows
                    self.footers.append(footer)
                    table = None
                    account(line + b"\n")
                    index += 1
                    yield footer
                elif kind == "trailer":
                    if table is not None:
                        raise CorruptBackupError(f"the trailer comes inside table {table.qualified_name!r}")
                    trailer = _structure(record, Trailer, "trailer")
                    if len(seen_tables) != len(tables_by_key):
                        missing = next(t for t in self.header.schema.tables if (t.namespace, t.name) not in seen_tables)  # type: ignore[union-attr]
                        raise CorruptBackupError(f"the table {missing.qualified_name!r} of the header is missing from the file")
                    if trailer.rows != total_rows or trailer.tables != len(self.footers):
                        raise CorruptBackupError(
                            f"the trailer counts {trailer.tables} tables and {trailer.rows} rows; "
                            f"the file holds {len(self.footers)} and {total_rows}"
                        )
                    if trailer.bytes != file_bytes:
                        raise CorruptBackupError("the trailer's byte count does not match the file")
                    if file_hash is not None and trailer.digest != _digest_text(file_hash):
                        raise CorruptBackupError("the backup fails its trailer digest")
                    self.trailer = trailer
                    index += 1
                    yield trailer
                else:
                    raise CorruptBackupError(f"a line has the unknown record type {kind!r}")
        if self.header is None:
            raise CorruptBackupError("the backup is empty")
        if self.trailer is None:
            raise CorruptBackupError("the backup has no trailer (incomplete or truncated)")
        self._splitter.check_end(self.header)
