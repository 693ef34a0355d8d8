"""Temporary files and other resources: tracked, removed on every exit, leaks reported.

Temporary files live beside their target and carry a recognisable name,
``.<final name>.unibackup-<pid>-<token>.tmp``, so that a later run can find the leftovers of a
crashed one (its process is gone) and remove them.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import traceback
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)

TEMP_MARK = ".unibackup-"
#: temporary paths that operations of this process are using right now (never leftovers, even when
#: a killed earlier run had the same process id, as happens in containers)
_IN_USE: set[Path] = set()
_TEMP_NAME = re.compile(r"^\.(?P<final>.+)\.unibackup-(?P<pid>\d+)-(?P<token>[0-9a-f]+)\.tmp$")


def _where() -> str:
    """The file and line that called the method that called this (``track``, ``temp_path``)."""
    frame = traceback.extract_stack(limit=3)[0]
    return f"{os.path.basename(frame.filename)}:{frame.lineno}"


class ResourceManager:
    """Creates and tracks temporary paths and open resources for one operation."""

    def __init__(self) -> None:
        self._temp_paths: dict[Path, str] = {}
        self._open: dict[int, tuple[str, str, Any]] = {}

    def temp_path(self, directory: Path, final_name: str) -> Path:
        """A fresh temporary path in ``directory``, removed at clean-up unless :meth:`keep` is called."""
        path = directory / f".{final_name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}.tmp"
        self._temp_paths[path] = _where()
        _IN_USE.add(path)
        return path

    def keep(self, path: Path) -> None:
        """``path`` was renamed into place (or removed): stop tracking it."""
        self._temp_paths.pop(path, None)
        _IN_USE.discard(path)

    def track(self, resource: Any, description: str) -> Any:
        """Remember an open resource (file, connection) until :meth:`release`."""
        self._open[id(resource)] = (description, _where(), resource)
        return resource

    def release(self, resource: Any) -> None:
        self._open.pop(id(resource), None)

    def cleanup(self) -> list[str]:
        """Remove every temporary path; return warnings about resources left open."""
        for path in list(self._temp_paths):
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            except OSError as error:
                log.warning("could not remove the temporary %s: %s", path, error)
            self._temp_paths.pop(path, None)
            _IN_USE.discard(path)
        leaks = []
        for description, where, resource in self._open.values():
            leaks.append(f"{description} opened at {where} was left open")
            close = getattr(resource, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # closing a leaked resource must not hide the real outcome
                    pass
        self._open.clear()
        for leak in leaks:
            log.warning("resource leak: %s", leak)
        return leaks

    def __enter__(self) -> "ResourceManager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()


def find_leftovers(directory: Path, final_name: str | None = None) -> list[Path]:
    """Temporary files in ``directory`` left by unibackup runs whose process is gone (only those
    meant to become ``final_name``, when given)."""
    found = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or (final_name is not None and match.group("final") != final_name):
            continue
        path = Path(entry.path)
        if path in _IN_USE or _writer_may_be_alive(int(match.group("pid")), entry):
            continue  # a run is writing it right now
        found.append(path)
    return found


def _writer_may_be_alive(pid: int, entry: os.DirEntry) -> bool:
    """Whether process ``pid`` may still be writing ``entry``: it exists and did not start after
    the file was last written (a process that did is another one that got the same id)."""
    try:
        started = psutil.Process(pid).create_time()
        modified = entry.stat().st_mtime
    except (psutil.Error, OSError):
        return False
    return started <= modified + 1.0


def remove_leftovers(directory: Path, is_ours: Any = None, final_name: str | None = None) -> list[Path]:
    """Remove what :func:`find_leftovers` finds (and ``is_ours(path)`` confirms); say so in the log."""
    removed = []
    for path in find_leftovers(directory, final_name):
        if is_ours is not None and not is_ours(path):
            continue
        try:
            path.unlink()
        except OSError as error:
            log.warning("could not remove the leftover %s: %s", path.name, error)
            continue
        log.warning("removed %s, left by an interrupted unibackup run", path.name)
        removed.append(path)
    return removed
