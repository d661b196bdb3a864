"""One lazy registry for named built-ins (probe sets, zoos, attribution methods).

An entry maps a name to ``"module:attribute"`` plus metadata; nothing is imported until the entry
is loaded, and no module registers anything as a side effect of being imported. Third-party
packages add entries through the entry-point group ``depara.<kind>`` (for example
``depara.zoos``), or a program calls :meth:`Registry.register`.

>>> reg = Registry("demo", [Entry("sqrt", "math:sqrt", "square root", (("cost", 1),))])
>>> reg.names(), reg.load("sqrt")(16.0), reg.get("sqrt").meta["cost"]
(['sqrt'], 4.0, 1)
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from depara_core.errors import DeparaError

__all__ = ["Entry", "Registry"]


@dataclass(frozen=True)
class Entry:
    """A registered name: where its object lives, what it is, and metadata (a tuple of pairs)."""

    name: str
    target: str
    description: str = ""
    metadata: tuple[tuple[str, Any], ...] = ()
    meta: Mapping[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if ":" not in self.target:
            raise ValueError(f"registry target {self.target!r} is not 'module:attribute'")
        object.__setattr__(self, "meta", MappingProxyType(dict(self.metadata)))

    def load(self) -> Any:
        """Import the entry's module and return its attribute."""
        module, _, attr = self.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


class Registry:
    """Named entries of one kind, in registration order; the kind names errors and entry points."""

    def __init__(self, kind: str, entries: Iterable[Entry] = (), group: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, Entry] = {e.name: e for e in entries}
        self._plugins_loaded = group is None
        self._lock = threading.Lock()

    def register(self, entry: Entry) -> None:
        """Add (or replace) an entry."""
        with self._lock:
            self._entries[entry.name] = entry

    def unregister(self, name: str) -> None:
        """Remove an entry if present."""
        with self._lock:
            self._entries.pop(name, None)

    def _plugins(self) -> None:
        if self._plugins_loaded:
            return
        with self._lock:
            if self._plugins_loaded:
                return
            for ep in importlib.metadata.entry_points(group=self.group):
                self._entries.setdefault(ep.name, Entry(ep.name, ep.value, f"{self.kind} from {ep.dist.name if ep.dist else 'a plugin'}"))
            self._plugins_loaded = True

    def names(self) -> list[str]:
        self._plugins()
        return list(self._entries)

    def entries(self) -> list[Entry]:
        self._plugins()
        return list(self._entries.values())

    def get(self, name: str) -> Entry:
        self._plugins()
        entry = self._entries.get(name)
        if entry is None:
            raise DeparaError(f"there is no {self.kind} {name!r}", f"choose one of: {', '.join(self._entries) or '(none)'}")
        return entry

    def load(self, name: str) -> Any:
        return self.get(name).load()
