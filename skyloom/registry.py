"""One small registry for every pluggable part, open to other packages through entry points.

Metrics, feature extractors, captioners, text encoders, autoencoders, renderers, scene kinds and
ingest source kinds each have one :class:`Registry`. An entry comes from one of three places:

* a decorator in the module that defines it (``@METRICS.register("fvd")``);
* a lazy ``"package.module:attr"`` string (:meth:`Registry.register_lazy`), imported on first
  :meth:`Registry.get`, so optional heavy dependencies load only when used;
* an ``importlib.metadata`` entry point of the registry's group (``skyloom.metrics``,
  ``skyloom.captioners``, ...), declared by any installed distribution, as pytest and
  lm-evaluation-harness find their plug-ins. A plug-in is then one module plus one line of its
  ``pyproject.toml``::

      [project.entry-points."skyloom.metrics"]
      mymetric = "my_package.metrics:MyMetric"

Entry points are read once per registry, on the first lookup, and imported only when used.
Duplicate names are an error (naming both origins); an unknown name lists the closest ones.

An entry may bring its own options: a frozen dataclass in its ``config_class`` attribute.
:meth:`Registry.options` validates a plain mapping (from YAML or ``--set``) against it, so the
stage's config only needs a generic ``options`` mapping, never a field per plug-in.

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
import importlib.metadata
import logging
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from skyloom.errors import UserError

T = TypeVar("T")

logger = logging.getLogger(__name__)

BUILTIN = "skyloom"  # origin of entries registered by skyloom itself


class RegistryError(UserError, ValueError):
    """An unknown or duplicate registry name, or an entry that cannot be imported."""


def _import_target(target: str) -> Any:
    """Import ``"package.module:attr"`` (``attr`` may be dotted)."""
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """A name -> object mapping for one kind of plug-in.

    Args:
        kind: what the entries are ("renderer", "metric", ...), used in error messages.
        group: the ``importlib.metadata`` entry-point group other distributions register under
            (e.g. ``"skyloom.metrics"``); None for a registry closed to plug-ins.
    """

    def __init__(self, kind: str, group: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, T | str] = {}
        self._origins: dict[str, str] = {}
        self._entry_points_read = group is None

    # -- registration ---------------------------------------------------------------------
    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``; a duplicate name is an error."""

        def deco(obj: T) -> T:
            self._add(name, obj, getattr(obj, "__module__", "") or BUILTIN)
            return obj

        return deco

    def register_lazy(self, name: str, target: str) -> None:
        """Register ``"package.module:attr"``, imported on first :meth:`get`."""
        if ":" not in target:
            raise RegistryError(f"lazy {self.kind} {name!r}: target {target!r} must be 'module:attr'")
        self._add(name, target, target.partition(":")[0])

    def _add(self, name: str, obj: T | str, origin: str) -> None:
        existing = self._entries.get(name)
        if existing is not None and existing is not obj:
            # A lazy entry being resolved by its own module's decorator is not a duplicate.
            same_module = isinstance(existing, str) and existing.partition(":")[0] == origin
            if not (same_module and not isinstance(obj, str)):
                raise RegistryError(f"duplicate {self.kind} name {name!r}: {self._origins.get(name, '?')} "
                                    f"and {origin} both register it")
            origin = self._origins.get(name, origin)
        self._entries[name] = obj
        self._origins.setdefault(name, origin)

    def _read_entry_points(self) -> None:
        """Add the entry points of ``self.group`` (once); a name taken twice is an error."""
        if self._entry_points_read:
            return
        for ep in importlib.metadata.entry_points(group=self.group or ""):
            dist = getattr(ep.dist, "name", None) or "an installed distribution"
            where = f"entry point {ep.name!r} = {ep.value!r} of {dist} (group {self.group})"
            if ":" not in ep.value:
                raise RegistryError(f"{where}: the value must be 'module:attr'")
            if ep.name in self._entries:
                if self._entries[ep.name] == ep.value:  # skyloom's own entry, declared both ways
                    continue
                raise RegistryError(f"duplicate {self.kind} name {ep.name!r}: {where} clashes with the one from "
                                    f"{self._origins.get(ep.name, '?')}")
            self._entries[ep.name] = ep.value
            self._origins[ep.name] = dist
            logger.debug("%s %r from %s", self.kind, ep.name, where)
        self._entry_points_read = True  # not before: a clash stays an error on every lookup

    # -- lookup ---------------------------------------------------------------------------
    def get(self, name: str) -> T:
        """Return the entry for ``name``, importing it if lazy.

        Raises:
            RegistryError: unknown name (with the closest known names and the full list), or an
                entry whose module cannot be imported (with the import error).
        """
        self._read_entry_points()
        if name not in self._entries:
            known = sorted(self._entries)
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise RegistryError(f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(known) or '(none)'}")
        entry = self._entries[name]
        if isinstance(entry, str):
            try:
                obj = _import_target(entry)
            except (ImportError, AttributeError) as e:
                raise RegistryError(f"{self.kind} {name!r} ({entry}, from {self._origins.get(name, '?')}) cannot be "
                                    f"loaded: {type(e).__name__}: {e}") from e
            self._entries[name] = obj
            return obj
        return entry

    def names(self) -> list[str]:
        """Every registered name, entry points included (nothing is imported)."""
        self._read_entry_points()
        return sorted(self._entries)

    def origin(self, name: str) -> str:
        """Where ``name`` comes from: a module of skyloom or the distribution of its entry point."""
        self._read_entry_points()
        return self._origins.get(name, "?")

    def options(self, name: str, data: Mapping[str, Any] | None, where: str = "options") -> Any:
        """The entry's ``config_class`` instance built from ``data`` (keys and types checked).

        Args:
            name: a registered name.
            data: the options mapping (None or empty: the dataclass defaults).
            where: the config key the mapping came from, for error messages.

        Returns:
            The frozen dataclass, or None when the entry has no ``config_class`` and ``data`` is empty.

        Raises:
            skyloom.config.ConfigError: an unknown key or a wrong type (naming ``where``), or
                options given to an entry that takes none.
        """
        from skyloom.config import ConfigError, from_dict

        cls = getattr(self.get(name), "config_class", None)
        if cls is None:
            if data:
                raise ConfigError(f"{where}: {self.kind} {name!r} takes no options, got {', '.join(map(repr, data))}")
            return None
        return from_dict(cls, dict(data or {}), prefix=where)

    def build(self, name: str, *args: Any, options: Mapping[str, Any] | None = None, where: str = "options") -> Any:
        """Instantiate entry ``name`` as ``cls(*args)``, plus its checked options when it has a ``config_class``.

        The one way every registry builds a plug-in: its options are validated by :meth:`options`
        and passed as the last positional argument only to entries that declare them.
        """
        cls: Any = self.get(name)
        opts = self.options(name, options, where=where)
        return cls(*args) if opts is None else cls(*args, opts)

    def __contains__(self, name: object) -> bool:
        self._read_entry_points()
        return name in self._entries

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Registry({self.kind!r}, {self.names()})"


def config_kwargs(obj: Any, data: Mapping[str, Any] | None, where: str = "options") -> dict[str, Any]:
    """Keyword arguments for an entry built with keywords (metrics, feature extractors).

    When ``obj`` has a ``config_class`` the mapping is checked against it (unknown key or wrong type
    -> :class:`skyloom.config.ConfigError` naming ``where``) and its fields, defaults filled in,
    are returned; otherwise the mapping is passed on as it is.
    """
    data = dict(data or {})
    cls = getattr(obj, "config_class", None)
    if cls is None:
        return data
    import dataclasses

    from skyloom.config import from_dict

    opts = from_dict(cls, data, prefix=where)
    return {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}


def resolve(obj: Any) -> Any:
    """Return ``obj``; if a ``"module:attr"`` string, import it."""
    if isinstance(obj, str) and ":" in obj:
        return _import_target(obj)
    return obj
