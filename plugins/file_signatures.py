"""The ``file-signatures`` plugin: the first bytes of well-known compressed formats.

A file that no loaded compressor reads but that starts like one of these is reported as needing
a compressor plugin (exit 2), so that a good backup whose plugin is missing is never called
damaged (exit 3). Nothing is read through this table.
"""

from __future__ import annotations

from unibackup import hookimpl

SIGNATURES = {
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\x1f\x8b": "gzip",
    b"\xfd7zXZ\x00": "xz",
    b"BZh": "bzip2",
    b"\x04\x22\x4d\x18": "lz4",
}


@hookimpl
def unibackup_register_file_signatures() -> dict[bytes, str]:
    return dict(SIGNATURES)
