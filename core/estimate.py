"""Estimating a backup's size by sampling: encode the first rows of every table, compress that
sample with every compressor, and extrapolate by the tables' row estimates.

Measured, not guessed: the sample goes through the very encoder and compressors a backup uses.
"""

from __future__ import annotations

import io
from typing import Iterable

import attrs

from .compression import Compressor
from .models import DatabaseSchema
from .source import Source
from .values import EncodedRows

SAMPLE_ROWS_PER_TABLE = 2000
SAMPLE_BYTES_PER_TABLE = 512 * 1024
SAMPLE_BYTES_TOTAL = 16 * 1024 * 1024


@attrs.frozen
class SampleEstimate:
    """What sampling found."""

    sampled_rows: int
    sampled_bytes: int
    estimated_json_bytes: int  # the uncompressed backup
    estimated_backup_bytes: dict[str, int]  # per compressor
    ratios: dict[str, float]  # uncompressed / compressed, measured on the sample


class _SampleSizer:
    """One row first, then as many as the table's sample budget still takes (at most 100 a
    fetch): rows may be megabytes each, and 100 of those would dwarf the backup's own batches."""

    def __init__(self) -> None:
        self.rows = 0
        self.bytes = 0

    def next_batch_size(self) -> int:
        if not self.rows:
            return 1
        per_row = max(1, self.bytes // self.rows)
        return max(1, min(100, (SAMPLE_BYTES_PER_TABLE - self.bytes) // per_row))


def _batch_bytes(batch: object) -> tuple[bytes, int]:
    if isinstance(batch, EncodedRows):
        return bytes(batch.data), batch.rows
    lines = list(batch)  # type: ignore[call-overload]
    return b"\n".join(lines) + b"\n", len(lines)


def sample_source(source: Source, schema: DatabaseSchema, compressors: Iterable[type[Compressor]]) -> SampleEstimate:
    """Sample ``source`` (already open) and estimate the backup size with each compressor."""
    sample = io.BytesIO()
    sampled_rows = 0
    estimated_json = 0
    for table in schema.tables:
        if not table.has_data or sample.tell() >= SAMPLE_BYTES_TOTAL:
            continue
        table_bytes = table_rows = 0
        sizer = _SampleSizer()
        for batch in source.read_batches(table, sizer):
            data, rows = _batch_bytes(batch)
            sample.write(data)
            table_bytes += len(data)
            table_rows += rows
            sizer.rows, sizer.bytes = table_rows, table_bytes
            if table_rows >= SAMPLE_ROWS_PER_TABLE or table_bytes >= SAMPLE_BYTES_PER_TABLE:
                break
        sampled_rows += table_rows
        if table_rows:
            estimate = table.row_estimate if table.row_estimate is not None else table_rows
            estimated_json += int(table_bytes / table_rows * max(estimate, table_rows))
    data = sample.getvalue()
    ratios: dict[str, float] = {}
    estimated: dict[str, int] = {}
    for compressor_cls in compressors:
        out = io.BytesIO()
        writer = compressor_cls().open_writer(out, compressor_cls.default_level)
        writer.write(data)
        writer.finish()
        ratio = len(data) / len(out.getvalue()) if data and out.getvalue() else 1.0
        ratios[compressor_cls.name] = round(ratio, 2)
        estimated[compressor_cls.name] = int(estimated_json / ratio) if ratio else estimated_json
    return SampleEstimate(sampled_rows, len(data), estimated_json, estimated, ratios)
