"""The plugin-manager factory: default plugins, then entry points, each load isolated.

Defaults are ordinary plugin modules registered under a short name and blockable like any other
(except the essential ones). Third-party plugins come from entry points of group ``unibackup``.
A plugin that fails to load becomes a warning and a ``failed`` row in ``unibackup plugins``; it
is an error only when a run needs what it would have provided (``strict`` re-raises at once).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import sys
from typing import Any, Iterable

import attrs
import pluggy

from . import hookspecs
from .errors import PluginError
from .markers import PROJECT_NAME

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "unibackup"

#: (plugin name, module) of the plugins that ship with unibackup.
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("sqlite", "unibackup.plugins.sqlite"),
    ("mysql", "unibackup.plugins.mysql"),
    ("postgresql", "unibackup.plugins.postgresql"),
    ("zstd", "unibackup.plugins.zstd"),
    ("gzip", "unibackup.plugins.gzip"),
    ("brotli", "unibackup.plugins.brotli"),
    ("none", "unibackup.plugins.uncompressed"),
    ("file-signatures", "unibackup.plugins.file_signatures"),
    ("fixed", "unibackup.plugins.fixed_batching"),
    ("adaptive", "unibackup.plugins.adaptive_batching"),
    ("validators", "unibackup.plugins.validators"),
    ("legacy-v1", "unibackup.plugins.legacy_v1"),
    ("progress", "unibackup.plugins.progress"),
    ("monitor", "unibackup.plugins.monitor"),
    ("history", "unibackup.plugins.history"),
    ("report", "unibackup.plugins.report"),
)

#: Default plugins that cannot be disabled: without them no backup can be checked.
ESSENTIAL_PLUGINS = frozenset({"validators"})


@attrs.frozen
class PluginStatus:
    """One row of ``unibackup plugins``."""

    name: str
    origin: str  # "default" or "entry point"
    status: str  # "loaded", "blocked", "failed", "skipped"
    module: str = ""
    distribution: str | None = None
    version: str | None = None
    reason: str | None = None
    hooks: tuple[str, ...] = ()


class PluginHost:
    """A plugin manager with the load status of every plugin it considered."""

    def __init__(self, manager: pluggy.PluginManager, statuses: list[PluginStatus]):
        self.manager = manager
        self.statuses = statuses

    def status_of(self, name: str) -> PluginStatus | None:
        for status in self.statuses:
            if status.name == name:
                return status
        return None

    def unavailable(self, statuses: tuple[str, ...] = ("failed", "blocked", "skipped")) -> dict[str, str]:
        """Plugin names that are not loaded, with why (for 'unknown name' errors)."""
        return {
            status.name: f"plugin {status.name!r} {status.status}" + (f": {status.reason}" if status.reason else "")
            for status in self.statuses
            if status.status in statuses
        }


def _hooks_of(manager: pluggy.PluginManager, plugin: Any) -> tuple[str, ...]:
    return tuple(sorted(caller.name for caller in manager.get_hookcallers(plugin) or ()))


def _distribution_of(entry_point: importlib.metadata.EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def get_plugin_manager(
    *,
    load_entrypoints: bool = True,
    disabled: Iterable[str] = (),
    allow_only: Iterable[str] | None = None,
    strict: bool = False,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> PluginHost:
    """Build a plugin manager.

    :param load_entrypoints: load third-party plugins (tests pass False for a reproducible set).
    :param disabled: plugin names (default names, entry-point names or distribution names) to block.
    :param allow_only: when given, only these entry points load (``UNIBACKUP_LOAD_PLUGINS``
        overrides it; an empty value means defaults only).
    :param strict: re-raise a plugin's load error instead of recording it as failed.
    :param entry_points: the entry points to consider (tests fake them); default: installed ones.
    """
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    statuses: list[PluginStatus] = []
    blocked = set(disabled)
    matched: set[str] = set()

    env_allow = _env_list("UNIBACKUP_LOAD_PLUGINS")
    if env_allow is not None:
        allow_only = env_allow
    allowed = set(allow_only) if allow_only is not None else None

    for name, module_name in DEFAULT_PLUGINS:
        if name in blocked:
            matched.add(name)
            if name in ESSENTIAL_PLUGINS:
                log.warning("plugin %r is essential and cannot be disabled", name)
            else:
                manager.set_blocked(name)
                statuses.append(PluginStatus(name, "default", "blocked", module_name, "unibackup", reason="disabled in config"))
                continue
        try:
            module = importlib.import_module(module_name)
            manager.register(module, name=name)
        except Exception as error:
            if strict:
                raise
            log.warning("default plugin %r failed to load: %s", name, error)
            statuses.append(PluginStatus(name, "default", "failed", module_name, "unibackup", reason=str(error)))
            continue
        statuses.append(PluginStatus(name, "default", "loaded", module_name, "unibackup", _tool_version(), hooks=_hooks_of(manager, module)))

    if load_entrypoints:
        if entry_points is None:
            entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        for entry_point in entry_points:
            distribution, version = _distribution_of(entry_point)
            name = entry_point.name
            if name in blocked or (distribution and distribution in blocked):
                matched.update({name, distribution or name})
                manager.set_blocked(name)
                statuses.append(PluginStatus(name, "entry point", "blocked", entry_point.value, distribution, version, "disabled in config"))
                continue
            if allowed is not None and name not in allowed and distribution not in allowed:
                statuses.append(PluginStatus(name, "entry point", "skipped", entry_point.value, distribution, version, "not in the allow-only list"))
                continue
            if manager.get_plugin(name) is not None:
                reason = f"the name {name!r} is taken by another plugin"
                log.warning("plugin %r (%s) not loaded: %s", name, distribution, reason)
                statuses.append(PluginStatus(name, "entry point", "failed", entry_point.value, distribution, version, reason))
                continue
            try:
                plugin = entry_point.load()
                manager.register(plugin, name=name)
            except Exception as error:
                if strict:
                    raise PluginError(f"plugin {name!r} from {distribution or 'unknown distribution'} failed to load: {error}") from error
                log.warning("plugin %r from %s failed to load: %s", name, distribution or "an unknown distribution", error)
                statuses.append(PluginStatus(name, "entry point", "failed", entry_point.value, distribution, version, f"{type(error).__name__}: {error}"))
                continue
            statuses.append(PluginStatus(name, "entry point", "loaded", entry_point.value, distribution, version, hooks=_hooks_of(manager, plugin)))

    for name in sorted(blocked - matched):
        log.warning("plugins.disable names %r, which matches no plugin", name)

    _drop_plugins_with_unknown_hooks(manager, statuses, strict)

    if os.environ.get("UNIBACKUP_TRACE_PLUGINS"):
        manager.trace.root.setwriter(lambda text: sys.stderr.write(text))
        manager.enable_tracing()
    return PluginHost(manager, statuses)


def _drop_plugins_with_unknown_hooks(manager: pluggy.PluginManager, statuses: list[PluginStatus], strict: bool) -> None:
    """``check_pending``: a misspelled hook fails its plugin loudly, not the whole run."""
    while True:
        try:
            manager.check_pending()
            return
        except pluggy.PluginValidationError as error:
            name = manager.get_name(error.plugin)
            origin = next((s for s in statuses if s.name == name), None)
            if strict or origin is None or origin.origin == "default":
                raise PluginError(f"plugin {name!r} implements an unknown hook: {error}") from error
            log.warning("plugin %r implements an unknown hook and was not loaded: %s", name, error)
            manager.unregister(error.plugin)
            statuses[statuses.index(origin)] = attrs.evolve(origin, status="failed", reason=str(error), hooks=())


def _tool_version() -> str:
    from . import __version__

    return __version__
