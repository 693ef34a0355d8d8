"""The hook specifications: every way a plugin can extend unibackup.

Grouped by pipeline phase. Registration hooks return a list of classes; each class carries a
stable ``name``, and the core builds one registry per kind from them.
"""

from __future__ import annotations

from typing import Any

from .markers import hookspec

# -- reading and writing databases -------------------------------------------------------------


@hookspec
def unibackup_register_sources() -> list[type]:
    """Register source readers / restore targets.

    :return: a list of :class:`unibackup.source.Source` subclasses; each sets ``name`` and the
        URL ``schemes`` it serves (a bare path goes to those whose ``accepts_path`` says yes).
    """


@hookspec
def unibackup_register_batching_strategies() -> list[type]:
    """Register batching strategies.

    :return: a list of :class:`unibackup.batching.BatchingStrategy` subclasses, chosen by
        ``name`` with ``--batching`` or ``backup.batching`` in ``unibackup.toml``.
    """


# -- the backup file ---------------------------------------------------------------------------


@hookspec
def unibackup_register_compressors() -> list[type]:
    """Register compressors.

    :return: a list of :class:`unibackup.compression.Compressor` subclasses, chosen by ``name``
        with ``--compression``; ``magic`` lets a reader recognise their output.
    """


@hookspec
def unibackup_register_file_signatures() -> dict[bytes, str]:
    """Name compressed formats by the bytes their files start with.

    Consulted only for a file that no loaded compressor reads: one that starts with a registered
    signature needs a compressor plugin for that format (a usage error naming it, exit 2) rather
    than being damaged (exit 3). Reading always goes through compressor plugins.

    :return: ``{first bytes: format name}``, e.g. ``{b"\\xfd7zXZ\\x00": "xz"}``.
    """


@hookspec
def unibackup_register_migrators() -> list[type]:
    """Register format migrators.

    :return: a list of :class:`unibackup.migration.FormatMigrator` subclasses, each turning
        format ``from_version`` into ``to_version``.
    """


@hookspec
def unibackup_register_validators() -> list[type]:
    """Register validators.

    :return: a list of :class:`unibackup.validation.Validator` subclasses; ``name`` is the level
        (``quick``, ``full``, ``deep``) chosen with ``verify --level``.
    """


# -- observing operations ----------------------------------------------------------------------


@hookspec
def unibackup_register_listeners() -> list[type]:
    """Register event listeners.

    :return: a list of :class:`unibackup.events.EventListener` subclasses; one instance of each
        receives every event of an operation (started, table_started, batch_written, retry,
        table_finished, finished, failed, cancelled, warning).
    """


# -- the command line --------------------------------------------------------------------------


@hookspec
def unibackup_register_commands(cli: Any) -> None:
    """Add commands to the command line.

    :param cli: the root :class:`click.Group`; call ``cli.add_command(...)``.
    """
