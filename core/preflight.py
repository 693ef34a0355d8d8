"""Preflight and health checks: what must hold before a backup starts.

Before any work, a backup checks that the source opens and is readable, that it passes the
engine's quick health check, that the output directory exists and takes a new file, that its disk
has room for the estimated backup (with ``preflight.space_margin``), and that memory is
available (``preflight.min_free_memory_mb``). A failed check stops the run with the reason.

The source checks are the slow ones (a health check reads the whole database), so their passing
result is cached per source identity for ``preflight.cache_seconds`` in a small JSON file in the
user's cache directory (``$UNIBACKUP_CACHE_DIR``, else ``$XDG_CACHE_HOME/unibackup``, else
``~/.cache/unibackup``). The disk and memory checks are cheap and always run. Failures are never
cached.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import attrs
import psutil

from .compression import Compressor
from .errors import CancelledError, PreflightError, UnibackupError
from .estimate import sample_source
from .operations import classify
from .resources import ResourceManager
from .retry import ExponentialBackoff, RetryAttempt
from .source import Location, Source

if TYPE_CHECKING:
    from .service import BackupService

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "UNIBACKUP_CACHE_DIR"
CACHE_FILE_NAME = "preflight.json"

#: A backup (uncompressed) is never taken to be more than this many times the source's stored bytes.
MAX_EXPANSION = 4

# the names of the checks, in the order they run
SOURCE = "source"
HEALTH = "health"
OUTPUT_DIR = "output directory"
DISK_SPACE = "disk space"
MEMORY = "memory"


@attrs.frozen
class CheckResult:
    """One check: whether it passed, and what it found."""

    name: str
    ok: bool
    detail: str
    cached: bool = False
    error: UnibackupError | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class PreflightReport:
    """Every check run for one source (and output directory)."""

    source: str  # the identity: never a password
    checks: tuple[CheckResult, ...]
    source_bytes: int | None = None
    estimated_backup_bytes: int | None = None

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(check for check in self.checks if not check.ok)

    def raise_for_failure(self) -> None:
        """Raise the first failure: the source's own error as it is, or a :class:`PreflightError`."""
        for check in self.failed:
            if check.error is not None:
                raise check.error
            raise PreflightError(
                f"preflight check {check.name!r} failed: {check.detail}",
                hint="nothing was written; fix it, or set preflight.enabled = false to skip the checks",
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "ok": self.ok,
            "source_bytes": self.source_bytes,
            "estimated_backup_bytes": self.estimated_backup_bytes,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "cached": c.cached} for c in self.checks],
        }


def cache_path() -> Path:
    """Where the preflight cache lives (see the module docstring)."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit) / CACHE_FILE_NAME
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "unibackup" / CACHE_FILE_NAME


class PreflightCache:
    """Passing source checks by source identity, each valid for ``max_age`` seconds."""

    def __init__(self, path: Path, max_age: float, clock: Callable[[], float] = time.time):
        self.path = path
        self.max_age = max_age
        self._clock = clock

    def _load(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, identity: str, fingerprint: list[Any]) -> dict[str, Any] | None:
        """The cached entry, if it is young enough and the source's fingerprint still matches."""
        if self.max_age <= 0:
            return None
        entry = self._load().get(identity)
        if not isinstance(entry, dict) or entry.get("fingerprint") != fingerprint:
            return None
        checked_at = entry.get("checked_at")
        if not isinstance(checked_at, (int, float)) or not 0 <= self._clock() - checked_at <= self.max_age:
            return None
        return entry

    def put(self, identity: str, fingerprint: list[Any], **values: Any) -> None:
        """Remember a pass (dropping expired entries); a cache that cannot be written is skipped."""
        if self.max_age <= 0:
            return
        now = self._clock()
        data = {key: entry for key, entry in self._load().items() if isinstance(entry, dict) and now - entry.get("checked_at", 0) <= self.max_age}
        data[identity] = {"checked_at": now, "fingerprint": fingerprint, **values}
        directory = self.path.parent
        resources = ResourceManager()
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            temporary = resources.temp_path(directory, self.path.name)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
            os.replace(temporary, self.path)
            resources.keep(temporary)
        except OSError as error:
            log.debug("the preflight cache %s cannot be written: %s", self.path, error)
        finally:
            resources.cleanup()


def _fingerprint(location: Location) -> list[Any]:
    """What must not have changed for a cached result to stand: a file's size and mtime."""
    if location.path:
        try:
            stat = os.stat(location.path)
        except OSError:
            return []
        return [stat.st_size, stat.st_mtime_ns]
    return []


def _probe_source(
    source: Source, compressor: type[Compressor], retry: ExponentialBackoff, on_retry: Callable[[RetryAttempt], None] | None
) -> tuple[CheckResult, CheckResult, int, int]:
    """Open the source (retrying what is transient), read its schema and a sample of every table
    (which also estimates the backup's size), run its health check."""
    try:
        retry.call(source.open_snapshot, operation="connect", on_retry=on_retry)
        schema = source.describe()
        size = int(source.estimate_size() or 0)
        sample = sample_source(source, schema, [compressor])
    except CancelledError:
        raise
    except Exception as error:
        classified = classify(error)
        failed = CheckResult(SOURCE, False, classified.user_line(), error=classified)
        return failed, CheckResult(HEALTH, False, "not run: the source cannot be read"), 0, 0
    estimate = sample.estimated_backup_bytes.get(compressor.name, sample.estimated_json_bytes)
    if size > 0:  # row estimates can be wild (sparse row ids); the stored bytes bound the backup
        estimate = min(estimate, size * MAX_EXPANSION)
    opened = CheckResult(
        SOURCE, True, f"opened; read the schema ({len(schema.tables)} tables) and {sample.sampled_rows} sample rows; {_mib(size)} of data"
    )
    try:
        problems = source.health_check()
    except UnibackupError as error:
        problems = [error.user_line()]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return opened, CheckResult(HEALTH, False, f"the source fails its health check: {problems[0]}{more}"), size, estimate
    return opened, CheckResult(HEALTH, True, "no problems found"), size, estimate


def _existing_directory(directory: Path) -> Path:
    """``directory``, or its nearest ancestor that exists (where a backup would create it)."""
    for candidate in (directory, *directory.absolute().parents):
        if candidate.exists():
            return candidate
    return directory


def _check_output_dir(directory: Path) -> tuple[CheckResult, Path]:
    """The directory (or, when a backup would create it, its nearest existing ancestor) takes a
    new file: tried for real, as permissions can deceive. Returns the directory that was tried."""
    existing = _existing_directory(directory)
    if not existing.is_dir():
        return CheckResult(OUTPUT_DIR, False, f"{str(existing)!r} is not a directory"), existing
    resources = ResourceManager()
    try:
        probe = resources.temp_path(existing, "preflight")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as error:
        return CheckResult(OUTPUT_DIR, False, f"cannot create a file in {str(existing)!r}: {classify(error).user_line()}"), existing
    finally:
        resources.cleanup()
    if existing != directory:
        return CheckResult(OUTPUT_DIR, True, f"{str(directory)!r} does not exist yet; a backup creates it in {str(existing)!r}"), existing
    return CheckResult(OUTPUT_DIR, True, f"{str(directory)!r} is writable"), existing


def _check_space(directory: Path, needed: int, margin: float) -> CheckResult:
    try:
        free = shutil.disk_usage(directory).free
    except OSError as error:
        return CheckResult(DISK_SPACE, False, f"cannot tell the free space of {str(directory)!r}: {classify(error).user_line()}")
    wanted = int(needed * margin)
    if free < wanted:
        return CheckResult(
            DISK_SPACE, False,
            f"{_mib(free)} free in {str(directory)!r}, the backup needs about {_mib(needed)} (x{margin:g} margin: {_mib(wanted)})",
        )
    return CheckResult(DISK_SPACE, True, f"{_mib(free)} free, about {_mib(needed)} needed (x{margin:g} margin)")


def _check_memory(min_free_mb: int) -> CheckResult:
    available = psutil.virtual_memory().available
    if available < min_free_mb * 1024 * 1024:
        return CheckResult(MEMORY, False, f"{_mib(available)} of memory available, preflight.min_free_memory_mb asks for {min_free_mb} MiB")
    return CheckResult(MEMORY, True, f"{_mib(available)} available (at least {min_free_mb} MiB asked)")


def _mib(size: float) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def run_preflight(
    service: "BackupService",
    source_text: str,
    output_dir: Path | None,
    compressor: str,
    *,
    use_cache: bool = True,
    on_retry: Callable[[RetryAttempt], None] | None = None,
) -> PreflightReport:
    """Run every check for a backup of ``source_text`` into ``output_dir`` (``None``: source only).

    With ``use_cache``, a recent pass of the source checks is taken from the cache; a fresh pass
    is always written to it.
    """
    config = service.config.preflight
    location = service.resolve_location(source_text)
    source_cls = service.hooks.source_for(location)
    compressor_cls = service.hooks.compressors.get(compressor)
    identity = location.identity
    cache = PreflightCache(cache_path(), config.cache_seconds)
    fingerprint = _fingerprint(location)
    entry = cache.get(identity, fingerprint) if use_cache else None
    if entry is not None and isinstance(entry.get("estimates"), dict) and compressor in entry["estimates"]:
        size = int(entry.get("source_bytes") or 0)
        estimate = int(entry["estimates"][compressor])
        age = time.time() - entry["checked_at"]
        checks = [
            CheckResult(SOURCE, True, f"passed {age:.0f} s ago (cached for preflight.cache_seconds = {config.cache_seconds:g})", cached=True),
            CheckResult(HEALTH, True, f"passed {age:.0f} s ago", cached=True),
        ]
    else:
        source = source_cls(location, service.source_settings(source_cls))
        retry = ExponentialBackoff.from_config(service.config.retry.connect, "retry.connect")
        try:
            opened, health, size, estimate = _probe_source(source, compressor_cls, retry, on_retry)
        finally:
            source.close()
        checks = [opened, health]
        if opened.ok and health.ok:
            known = entry.get("estimates") if entry is not None else None  # other compressors' estimates still stand
            estimates = {**(known if isinstance(known, dict) else {}), compressor: estimate}
            cache.put(identity, fingerprint, source_bytes=size, estimates=estimates)
    if output_dir is not None:
        writable, tried = _check_output_dir(output_dir)
        checks.append(writable)
        if writable.ok:
            checks.append(_check_space(tried, estimate, config.space_margin))
    checks.append(_check_memory(config.min_free_memory_mb))
    report = PreflightReport(identity, tuple(checks), size, estimate)
    for check in report.checks:
        log.debug("preflight %s: %s: %s%s", check.name, "ok" if check.ok else "FAILED", check.detail, " (cached)" if check.cached else "")
    return report
