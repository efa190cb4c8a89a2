"""One small registry for every pluggable part (renderers, sources, captioners, extractors,
metrics, text encoders).

Decorator registration, an error on duplicate names, "did you mean" on unknown names, and lazy
entries (``"package.module:attr"``) so optional heavy dependencies load only when used.

Example:
    >>> from skyloom.registry import Registry
    >>> COLOURS = Registry("colour")
    >>> @COLOURS.register("red")
    ... def red():
    ...     return (255, 0, 0)
    >>> COLOURS.get("red")()
    (255, 0, 0)
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from skyloom.errors import UserError

T = TypeVar("T")


class RegistryError(UserError, ValueError):
    """An unknown or duplicate registry name."""


class Registry(Generic[T]):
    """A name -> object mapping for one kind of plug-in.

    Args:
        kind: what the entries are ("renderer", "metric", ...), used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``; a duplicate name is an error."""

        def deco(obj: T) -> T:
            self._add(name, obj)
            return obj

        return deco

    def register_lazy(self, name: str, target: str) -> None:
        """Register ``"package.module:attr"``, imported on first :meth:`get`."""
        if ":" not in target:
            raise RegistryError(f"lazy {self.kind} {name!r}: target {target!r} must be 'module:attr'")
        self._add(name, target)

    def _add(self, name: str, obj: T | str) -> None:
        existing = self._entries.get(name)
        if existing is not None and existing is not obj:
            # A lazy entry being resolved by its own module's decorator is not a duplicate.
            if not (isinstance(existing, str) and not isinstance(obj, str)):
                raise RegistryError(f"duplicate {self.kind} name {name!r}")
        self._entries[name] = obj

    def get(self, name: str) -> T:
        """Return the entry for ``name``, importing it if lazy.

        Raises:
            RegistryError: unknown name, with the closest known names and the full list.
        """
        if name not in self._entries:
            known = sorted(self._entries)
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise RegistryError(f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(known) or '(none)'}")
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            obj = getattr(importlib.import_module(module), attr)
            self._entries[name] = obj
            return obj
        return entry

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Registry({self.kind!r}, {self.names()})"


def resolve(obj: Any) -> Any:
    """Return ``obj``; if a ``"module:attr"`` string, import it."""
    if isinstance(obj, str) and ":" in obj:
        module, _, attr = obj.partition(":")
        return getattr(importlib.import_module(module), attr)
    return obj
