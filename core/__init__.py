"""unibackup: logical database backups as one compressed, checksummed, versioned JSON-Lines file.

Plugins write ``from unibackup import hookimpl``; embedding code uses :class:`BackupService`.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("unibackup")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from .markers import hookimpl, hookspec  # noqa: E402
from .service import BackupService  # noqa: E402

__all__ = ["BackupService", "hookimpl", "hookspec", "__version__"]
