"""How numbers are worded for people: sizes in binary units, counts with their noun."""

from __future__ import annotations


def human_size(size: float) -> str:
    """``1536`` -> ``'1.5 KiB'``; bytes below 1 KiB stay whole."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - the loop returns at TiB


def counted(number: int, noun: str) -> str:
    """``counted(1, 'table')`` -> ``'1 table'``, ``counted(3, 'row')`` -> ``'3 rows'``."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
