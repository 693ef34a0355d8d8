"""The one typed facade through which the core calls plugin hooks."""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

import click

from .batching import BatchingStrategy
from .compression import Compressor
from .errors import CancelledError, PluginError, UsageError
from .events import Event, EventListener
from .migration import FormatMigrator
from .manager import PluginHost
from .registry import Registry
from .source import Location, Source
from .validation import Validator

log = logging.getLogger(__name__)


class Hooks:
    """Registries built from the registration hooks, and the calls the core makes."""

    def __init__(self, host: PluginHost):
        self.host = host
        self._manager = host.manager

    def _build(self, hook_name: str, kind: str, base: type) -> Registry[Any]:
        registry: Registry[Any] = Registry(kind)
        for plugin_name, reason in self.host.unavailable().items():
            registry.mark_unavailable(plugin_name, reason)
        hook = getattr(self._manager.hook, hook_name)
        # each implementation is called on its own (to know which plugin registered what), which
        # bypasses pluggy's tracing: UNIBACKUP_TRACE_PLUGINS output is written here instead
        trace = self._manager.trace.root.get("hook")
        for impl in hook.get_hookimpls():
            try:
                classes = impl.function() or []
            except Exception as error:
                trace(f"{hook_name} [{impl.plugin_name}] failed: {error!r}")
                log.warning("plugin %r failed in %s: %s", impl.plugin_name, hook_name, error)
                continue
            trace(f"{hook_name} [{impl.plugin_name}] -> {[getattr(cls, 'name', cls) for cls in classes]}")
            for cls in classes:
                if not (isinstance(cls, type) and issubclass(cls, base)):
                    raise PluginError(f"plugin {impl.plugin_name!r} registers {cls!r}, which is not a {base.__name__}")
                registry.add(getattr(cls, "name", ""), cls, impl.plugin_name)
        return registry

    @functools.cached_property
    def sources(self) -> Registry[type[Source]]:
        return self._build("unibackup_register_sources", "source", Source)

    @functools.cached_property
    def compressors(self) -> Registry[type[Compressor]]:
        return self._build("unibackup_register_compressors", "compressor", Compressor)

    @functools.cached_property
    def batching_strategies(self) -> Registry[type[BatchingStrategy]]:
        return self._build("unibackup_register_batching_strategies", "batching strategy", BatchingStrategy)

    @functools.cached_property
    def validators(self) -> Registry[type[Validator]]:
        return self._build("unibackup_register_validators", "validator", Validator)

    @functools.cached_property
    def migrators(self) -> Registry[type[FormatMigrator]]:
        return self._build("unibackup_register_migrators", "format migrator", FormatMigrator)

    @functools.cached_property
    def listeners(self) -> Registry[type[EventListener]]:
        return self._build("unibackup_register_listeners", "event listener", EventListener)

    @functools.cached_property
    def file_signatures(self) -> dict[bytes, str]:
        """First bytes -> compressed format name, from every plugin (a failing one is logged)."""
        signatures: dict[bytes, str] = {}
        trace = self._manager.trace.root.get("hook")
        for impl in self._manager.hook.unibackup_register_file_signatures.get_hookimpls():
            try:
                found = dict(impl.function() or {})
            except Exception as error:
                log.warning("plugin %r failed in unibackup_register_file_signatures: %s", impl.plugin_name, error)
                continue
            trace(f"unibackup_register_file_signatures [{impl.plugin_name}] -> {sorted(set(found.values()))}")
            signatures.update(found)
        return signatures

    def source_for(self, location: Location) -> type[Source]:
        """The source class serving ``location``'s scheme (a bare path: the first that accepts it)."""
        if location.scheme:
            for entry in self.sources:
                if location.scheme in entry.implementation.schemes:
                    return entry.implementation
            schemes = sorted({scheme for entry in self.sources for scheme in entry.implementation.schemes})
            raise UsageError(
                f"no source plugin serves URLs of scheme {location.scheme!r}",
                hint=f"known schemes: {', '.join(schemes) or 'none'}",
            )
        for entry in self.sources:
            if entry.implementation.accepts_path(location.path):
                return entry.implementation
        raise UsageError(f"{location.path!r} is not a database file any source plugin can read or write")

    def register_commands(self, cli: click.Group) -> dict[str, list[str]]:
        """Let plugins add commands; a failing plugin is logged, not fatal. Returns the names of
        the commands each plugin added (for ``unibackup plugins``)."""
        trace = self._manager.trace.root.get("hook")
        added: dict[str, list[str]] = {}
        for impl in self._manager.hook.unibackup_register_commands.get_hookimpls():
            trace(f"unibackup_register_commands [{impl.plugin_name}]")
            before = set(cli.commands)
            try:
                impl.function(cli=cli)
            except Exception as error:
                log.warning("plugin %r failed to add commands: %s", impl.plugin_name, error)
            added[impl.plugin_name] = sorted(set(cli.commands) - before)
        return added


def dispatch(listeners: list[EventListener], event: Event, on_error: Callable[[EventListener, Exception], None]) -> None:
    """Hand ``event`` to every listener; a listener that raises is reported and dropped.

    A cancellation (SIGINT/SIGTERM arrives while a listener runs) is the operation's, not the
    listener's: it goes on up."""
    for listener in list(listeners):
        try:
            listener.handle(event)
        except CancelledError:
            raise
        except Exception as error:
            listeners.remove(listener)
            on_error(listener, error)
