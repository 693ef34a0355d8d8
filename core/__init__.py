"""unibackup: logical database backups as one compressed, checksummed, versioned JSON-Lines file.

Plugins write ``from unibackup import hookimpl``; embedding code uses :class:`BackupService`.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("unibackup")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from typing import TYPE_CHECKING  # noqa: E402

from .markers import hookimpl, hookspec  # noqa: E402

if TYPE_CHECKING:
    from .service import BackupService

__all__ = ["BackupService", "hookimpl", "hookspec", "__version__"]


def __getattr__(name: str) -> object:
    # BackupService pulls in the whole pipeline; importing it on first use keeps
    # ``import unibackup`` (and so a plugin module or the ``unibackup.testing`` pytest plugin,
    # which every pytest run loads) cheap.
    if name == "BackupService":
        from .service import BackupService

        return BackupService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
