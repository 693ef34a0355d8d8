"""The validator interface: check a backup at one level and report findings."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

if TYPE_CHECKING:
    from .service import BackupService


@attrs.frozen
class Finding:
    """One thing a validator found."""

    severity: str  # "error" or "warning"
    message: str
    table: str | None = None


@attrs.frozen
class ValidationReport:
    """The outcome of validating one backup at one level."""

    path: str
    level: str
    valid: bool
    tables: int = 0
    rows: int = 0
    findings: tuple[Finding, ...] = ()
    details: dict[str, Any] = attrs.field(factory=dict)


class Validator(abc.ABC):
    """Checks a backup file. ``name`` is the level it implements (quick, full, deep)."""

    name: ClassVar[str]
    version: ClassVar[str] = ""
    description: ClassVar[str] = ""

    @abc.abstractmethod
    def validate(self, path: str, service: "BackupService") -> ValidationReport:
        """Validate ``path``; a damaged file is a report with ``valid=False``, never an exception."""
