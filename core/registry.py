"""Registries of interchangeable implementations, one per plugin kind, looked up by name."""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

import attrs

from .errors import PluginError

T = TypeVar("T")


@attrs.frozen
class Entry(Generic[T]):
    """One registered implementation and the plugin that provided it."""

    name: str
    implementation: T
    plugin: str


class Registry(Generic[T]):
    """Implementations of one kind by name; duplicates and unknown names are errors."""

    def __init__(self, kind: str, unavailable: dict[str, str] | None = None):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        # names that a failed or blocked plugin would have provided, with the reason
        self._unavailable = dict(unavailable or {})

    def add(self, name: str, implementation: T, plugin: str) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r} registers a {self.kind} without a name")
        existing = self._entries.get(name)
        if existing is not None:
            raise PluginError(
                f"two plugins register the {self.kind} {name!r}: {existing.plugin!r} and {plugin!r}",
                hint="disable one of them in unibackup.toml [plugins] disable",
            )
        self._entries[name] = Entry(name, implementation, plugin)

    def mark_unavailable(self, name: str, reason: str) -> None:
        self._unavailable.setdefault(name, reason)

    def get(self, name: str) -> T:
        return self.entry(name).implementation

    def entry(self, name: str) -> Entry[T]:
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        if name in self._unavailable:
            raise PluginError(f"the {self.kind} {name!r} is unavailable: {self._unavailable[name]}")
        known = ", ".join(sorted(self._entries)) or "none"
        raise PluginError(f"unknown {self.kind} {name!r}", hint=f"known: {known}")

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
