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

Every entry of a plug-in registry declares its options: a frozen dataclass in its ``config_class``
attribute (:class:`NoOptions` when it takes none). A class entry's constructor takes no ``**kwargs``.
Both are checked when the entry registers (a decorator, a lazy entry when first imported, an entry
point on its first lookup, naming the distribution), so a plug-in that could swallow a mistyped
option never loads. :meth:`Registry.build` is the one constructor: it checks a plain mapping (from
YAML, ``--set`` or ``--option``) against ``config_class`` -- an unknown key is a
:class:`skyloom.config.ConfigError` with "did you mean" -- and calls ``cls(*args, config, **kwargs)``.
A registry may add its own check (metrics: declared inputs against ``update``'s signature).

Example:
    >>> from skyloom.registry import Registry
    >>> COLOURS = Registry("colour", configured=False)  # a plain lookup table, not plug-ins
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
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from skyloom.errors import UserError

T = TypeVar("T")

logger = logging.getLogger(__name__)

BUILTIN = "skyloom"  # origin of entries registered by skyloom itself


class RegistryError(UserError, ValueError):
    """An unknown or duplicate registry name, or an entry that cannot be imported."""


@dataclass(frozen=True)
class NoOptions:
    """The ``config_class`` of a plug-in that takes no options: any key given is an unknown-key error."""


def check_config_class(obj: Any, what: str) -> type:
    """``obj``'s ``config_class`` (a frozen dataclass); a class's constructor must take no ``**kwargs``.

    Raises:
        RegistryError: no ``config_class``, one that is not a frozen dataclass, or a ``**kwargs``
            constructor (a mistyped option would be swallowed); the message names ``what``.
    """
    cls = getattr(obj, "config_class", None)
    if cls is None:
        raise RegistryError(f"{what} has no config_class: declare its options as a frozen dataclass "
                            "(skyloom.registry.NoOptions when it takes none)")
    params = getattr(cls, "__dataclass_params__", None)
    if not isinstance(cls, type) or params is None or not params.frozen:
        raise RegistryError(f"{what}: config_class {cls!r} must be a frozen dataclass (@dataclass(frozen=True))")
    if isinstance(obj, type):
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
            return cls
        var_kw = [p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
        if var_kw:
            raise RegistryError(f"{what}: its constructor takes **{var_kw[0]}, which would swallow a mistyped "
                                f"option; take the options as one {cls.__name__} argument")
    return cls


def with_config(config_class: type) -> Callable[[T], T]:
    """Decorator declaring a function entry's ``config_class`` (classes set the attribute instead).

    Example:
        >>> @with_config(NoOptions)
        ... def read_tsv(path): ...
        >>> read_tsv.config_class.__name__
        'NoOptions'
    """

    def deco(fn: T) -> T:
        fn.config_class = config_class  # type: ignore[attr-defined]
        return fn

    return deco


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
        configured: every entry must declare a ``config_class`` (see :func:`check_config_class`);
            False only for a plain lookup table whose entries take no options.
        check: a further check of each entry, ``check(name, obj)``, raising ``RegistryError``
            (run when the entry registers or is first imported).
    """

    def __init__(self, kind: str, group: str | None = None, *, configured: bool = True,
                 check: Callable[[str, Any], None] | None = None) -> None:
        self.kind = kind
        self.group = group
        self.configured = configured
        self._check = check
        self._entries: dict[str, T | str] = {}
        self._origins: dict[str, str] = {}
        self._entry_points_read = group is None

    # -- registration ---------------------------------------------------------------------
    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``; a duplicate name is an error."""

        def deco(obj: T) -> T:
            origin = getattr(obj, "__module__", "") or BUILTIN
            self._validate(name, obj, origin)
            self._add(name, obj, origin)
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

    def _validate(self, name: str, obj: Any, origin: str) -> None:
        """The registration checks: ``config_class`` (when configured) and the registry's own check."""
        what = f"{self.kind} {name!r} (from {origin})"
        if self.configured:
            check_config_class(obj, what)
        if self._check is not None:
            try:
                self._check(name, obj)
            except RegistryError as e:
                raise RegistryError(f"{what}: {e}") from None

    def _read_entry_points(self) -> None:
        """Add the entry points of ``self.group`` (once); a name taken twice is an error."""
        if self._entry_points_read:
            return
        for ep in importlib.metadata.entry_points(group=self.group):
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
            if self._entries[name] is entry:  # not registered by its module's own decorator: check it here
                self._validate(name, obj, self._origins.get(name, "?"))
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
            The frozen dataclass (None for a registry that is not ``configured``, when ``data`` is empty).

        Raises:
            skyloom.config.ConfigError: an unknown key (with the closest valid ones) or a wrong type,
                naming ``where`` and the entry.
        """
        from skyloom.config import ConfigError, from_dict

        if not self.configured:
            if data:
                raise ConfigError(f"{where}: {self.kind} {name!r} takes no options, got {', '.join(map(repr, data))}")
            return None
        cls = self.get(name).config_class
        try:
            return from_dict(cls, dict(data or {}), prefix=where)
        except ConfigError as e:
            raise ConfigError(f"{self.kind} {name!r}: {e}") from None

    def build(self, name: str, *args: Any, options: Mapping[str, Any] | None = None, where: str = "options",
              **kwargs: Any) -> Any:
        """Instantiate entry ``name`` as ``cls(*args, config, **kwargs)``: the one constructor of every plug-in.

        ``config`` is ``options`` checked by :meth:`options` (an instance of the entry's
        ``config_class``); ``args`` and ``kwargs`` are what the stage hands every entry of its kind
        (a captioner's job config, a metric's extractor), never options.

        Raises:
            RegistryError: an unknown name (with the closest names).
            skyloom.config.ConfigError: options that do not fit the entry's ``config_class``.
        """
        cls = self.get(name)
        config = self.options(name, options, where=where)
        return cls(*args, **kwargs) if config is None else cls(*args, config, **kwargs)

    def config_class(self, name: str) -> type | None:
        """The entry's ``config_class`` (imports it; None in a registry that is not ``configured``)."""
        return getattr(self.get(name), "config_class", None) if self.configured else None

    def __contains__(self, name: object) -> bool:
        self._read_entry_points()
        return name in self._entries

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Registry({self.kind!r}, {self.names()})"


def resolve(obj: Any) -> Any:
    """Return ``obj``; if a ``"module:attr"`` string, import it."""
    if isinstance(obj, str) and ":" in obj:
        return _import_target(obj)
    return obj
