"""The validators ``quick``, ``full`` and ``deep``.

- quick: the structure, the header, every table's footer count and the trailer (no digests).
- full: as quick, plus every digest and every value decoded and counted against its table.
- deep: as full, plus a trial restore into a throwaway SQLite database, compared row by row count.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from unibackup import hookimpl
from unibackup.errors import ErrorClass, UnibackupError
from unibackup.format import BackupReader, TableStart
from unibackup.models import TableFooter
from unibackup.validation import Finding, ValidationReport, Validator

if TYPE_CHECKING:
    from unibackup.service import BackupService


def _read_through(path: str, service: "BackupService", level: str, *, digests: bool, decode: bool) -> ValidationReport:
    """Read ``path`` through; damage becomes an invalid report that says how far the reading got
    (tables and rows before it, the table it was in, what the file was recognised as)."""
    tables = rows = 0
    table: str | None = None
    details: dict[str, object] = {}
    opened = None
    try:
        with service.open_backup(path) as opened:
            details = {
                "compressor": opened.compressor.name if opened.compressor else "none",
                "format_version": opened.format_version,
                "migrated_by": list(opened.migrators),
            }
            reader = BackupReader(opened.splitter, check_digests=digests, decode=decode)
            for record in reader:
                if isinstance(record, TableStart):
                    table = record.table.qualified_name
                elif isinstance(record, TableFooter):
                    tables += 1
                    rows += record.rows
                    table = None
            details["decompressed_bytes"] = opened.splitter.decompressed_bytes
    except UnibackupError as error:
        if error.exit_code != 3:  # not a damaged file: a missing one, a permission problem
            raise
        if opened is not None:
            details["decompressed_bytes"] = opened.splitter.decompressed_bytes
        return ValidationReport(path, level, False, tables, rows, (Finding("error", error.user_line(), table=table),), details)
    return ValidationReport(path, level, True, tables, rows, (), details)


class QuickValidator(Validator):
    name = "quick"
    description = "structure, header, counts and trailer"

    def validate(self, path: str, service: "BackupService") -> ValidationReport:
        return _read_through(path, service, self.name, digests=False, decode=False)


class FullValidator(Validator):
    name = "full"
    description = "every digest, count and value"

    def validate(self, path: str, service: "BackupService") -> ValidationReport:
        return _read_through(path, service, self.name, digests=True, decode=True)


class DeepValidator(Validator):
    name = "deep"
    description = "full, then a trial restore into a throwaway SQLite database"

    def validate(self, path: str, service: "BackupService") -> ValidationReport:
        report = _read_through(path, service, self.name, digests=True, decode=True)
        if not report.valid:
            return report
        with tempfile.TemporaryDirectory(prefix="unibackup-deep-") as directory:
            target = str(Path(directory) / "trial.sqlite")
            try:
                result = service.restore_backup(path, target, allow_lossy=True)
            except UnibackupError as error:
                if error.error_class is not ErrorClass.CORRUPT_INPUT:
                    # a full disk, a cancel, a bug: the trial did not run to the end, and says
                    # nothing about the backup, which must not be called invalid for it
                    raise UnibackupError(f"the trial restore could not finish: {error.message}", hint=error.hint, error_class=error.error_class) from error
                finding = Finding("error", f"the trial restore failed: {error.user_line()}")
                return ValidationReport(path, self.name, False, report.tables, report.rows, (finding,), report.details)
        findings = []
        if result.rows != report.rows:
            findings.append(Finding("error", f"the trial restore wrote {result.rows} rows, the backup holds {report.rows}"))
        for skipped in result.skipped:
            findings.append(Finding("warning", f"the trial restore skipped {skipped}"))
        valid = not any(f.severity == "error" for f in findings)
        return ValidationReport(path, self.name, valid, report.tables, report.rows, tuple(findings), report.details)


@hookimpl
def unibackup_register_validators() -> list[type[Validator]]:
    return [QuickValidator, FullValidator, DeepValidator]
