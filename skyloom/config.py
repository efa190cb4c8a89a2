"""Typed configuration: frozen dataclasses, YAML presets, ``--set a.b=value`` overrides.

Each stage defines one frozen dataclass (nested dataclasses for sub-sections). YAML presets in
``configs/<group>/<name>.yaml`` only serialise those dataclasses; every key is checked against
the dataclass fields and every value against the field's type, so a typo or a wrong type is an
error that names the key, not a silent default. The resolved config is written beside every
output with :func:`save_resolved`.

A preset may start from another: ``_base: vdit-s`` (a preset name of the same group, or a YAML
path relative to the including file) loads that preset first and applies this file's keys on
top, mappings merged key by key, everything else (lists included) replaced. Bases chain; a
cycle is an error naming the chain (:func:`load_preset`).

Example:
    >>> from dataclasses import dataclass, field
    >>> @dataclass(frozen=True)
    ... class Opt:
    ...     lr: float = 1e-3
    >>> @dataclass(frozen=True)
    ... class Cfg:
    ...     steps: int = 10
    ...     opt: Opt = field(default_factory=Opt)
    >>> apply_overrides(Cfg(), ["opt.lr=0.5", "steps=20"])
    Cfg(steps=20, opt=Opt(lr=0.5))
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from skyloom.errors import UserError

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[1]


class ConfigError(UserError, ValueError):
    """A config key or value that does not fit the stage's dataclass."""


def packaged_configs() -> Path:
    """The presets and suites shipped inside the installed package (``skyloom.configs``)."""
    return Path(str(importlib.resources.files("skyloom.configs")))


def preset_dirs() -> list[Path]:
    """Folders searched for presets, first match wins.

    User folders from ``$SKYLOOM_CONFIGS`` (``os.pathsep``-separated, each laid out as
    ``<group>/<name>.yaml``) come before the presets shipped in the package.
    """
    user = [Path(p) for p in os.environ.get("SKYLOOM_CONFIGS", "").split(os.pathsep) if p]
    return [*user, packaged_configs()]


def configs_dir() -> Path:
    """The first preset folder: ``$SKYLOOM_CONFIGS``'s first entry, else the packaged presets."""
    return preset_dirs()[0]


def preset_path(group: str, name: str | os.PathLike) -> Path:
    """Resolve a preset name (``<group>/<name>.yaml`` in :func:`preset_dirs`) or an explicit YAML path."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    if p.suffix in (".yaml", ".yml") or os.sep in str(name):
        raise ConfigError(f"{group} preset file {str(name)!r} does not exist")
    for d in preset_dirs():
        candidate = d / group / f"{name}.yaml"
        if candidate.exists():
            return candidate
    available = list_presets(group)
    close = difflib.get_close_matches(str(name), available, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ConfigError(f"unknown {group} preset {str(name)!r}.{hint} Available: {', '.join(available) or '(none)'}")


def list_presets(group: str) -> list[str]:
    """Preset names of ``group`` across every folder of :func:`preset_dirs`."""
    names: set[str] = set()
    for d in preset_dirs():
        if (d / group).is_dir():
            names.update(p.stem for p in (d / group).glob("*.yaml"))
    return sorted(names)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert ``value`` to type ``tp``; raise ConfigError naming ``key``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}: {value!r} does not match {_type_name(tp)}")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, allowed))}")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, prefix=key)
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        args = get_args(tp)
        vt = args[1] if args else Any
        return {k: _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any] | None, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a (possibly partial) mapping, checking keys and types."""
    data = dict(data or {})
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f" in {prefix}" if prefix else ""
        close = [c for k in unknown for c in difflib.get_close_matches(k, sorted(fields), n=1)]
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ConfigError(
            f"unknown config key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}{where}; "
            f"valid keys: {', '.join(sorted(fields)) or '(none)'}{hint}"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(value, hints[name], key)
    return cls(**kwargs)


def to_dict(cfg: Any) -> Any:
    """Plain YAML-serialisable form of a config dataclass (tuples become lists)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b=value"`` into (["a", "b"], value) with the value parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({e})") from None
    return key.split("."), value


def _set_path(d: dict[str, Any], path: list[str], value: Any) -> None:
    cur = d
    for p in path[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[p] = nxt
        cur = nxt
    cur[path[-1]] = value


def apply_overrides(cfg: T, overrides: list[str] | tuple[str, ...]) -> T:
    """Return a copy of ``cfg`` with ``a.b=value`` overrides applied and type-checked."""
    if not overrides:
        return cfg
    data = to_dict(cfg)
    for text in overrides:
        path, value = parse_override(text)
        _set_path(data, path, value)
    return from_dict(type(cfg), data)


def apply_values(cfg: T, values: dict[str, Any]) -> T:
    """Return a copy of ``cfg`` with dotted keys set to Python values, type-checked like overrides.

    For values that come from the command line as themselves (a path, a name): unlike an
    ``a.b=value`` override they are never parsed as YAML, so ``/data/cap #2`` keeps its ``#2``
    and a folder named ``on`` stays the string ``"on"``.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Cfg:
        ...     corpus: str = ""
        >>> apply_values(Cfg(), {"corpus": "on"})
        Cfg(corpus='on')
    """
    if not values:
        return cfg
    data = to_dict(cfg)
    for key, value in values.items():
        _set_path(data, key.split("."), str(value) if isinstance(value, Path) else value)
    return from_dict(type(cfg), data)


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {p} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level")
    return data


BASE_KEY = "_base"


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` applied: mappings merged key by key, any other value replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _base_path(base: str, including: Path, group: str | None, chain: list[Path]) -> Path:
    """The file a ``_base:`` names: a YAML path (relative to ``including``'s folder) or a preset name
    of ``group`` (user folders first; a file never bases itself, so a user preset may extend the
    shipped preset of the same name)."""
    p = Path(base)
    if p.suffix in (".yaml", ".yml") or "/" in base or os.sep in base:
        p = p if p.is_absolute() else including.parent / p
        if not p.exists():
            raise ConfigError(f"{including}: _base file {base!r} does not exist (looked for {p})")
        return p
    dirs = [d / group for d in preset_dirs()] if group else []
    candidates = [d / f"{base}.yaml" for d in [*dirs, including.parent]]
    found = [c for c in candidates if c.exists()]
    for c in found:
        if c.resolve() not in chain:
            return c
    if found:
        return found[0]  # only files of the chain: a cycle, reported by the caller
    where = f"{group} preset" if group else f"preset next to {including}"
    avail = list_presets(group) if group else sorted(q.stem for q in including.parent.glob("*.yaml"))
    close = difflib.get_close_matches(base, avail, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ConfigError(f"{including}: _base {base!r} is not a {where}.{hint} Available: {', '.join(avail) or '(none)'}")


def load_preset(path: str | os.PathLike, group: str | None = None) -> dict[str, Any]:
    """A preset file's mapping with its ``_base:`` chain resolved (see the module docstring).

    Raises:
        ConfigError: unreadable YAML, a ``_base`` that is not a name or path, one that does not
            exist, or a cycle (the message shows the chain).
    """
    chain: list[Path] = []
    layers: list[dict[str, Any]] = []
    p = Path(path)
    while True:
        if p.resolve() in chain:
            cycle = " -> ".join(str(c) for c in [*chain, p.resolve()])
            raise ConfigError(f"_base cycle: {cycle}")
        chain.append(p.resolve())
        data = load_yaml(p)
        base = data.pop(BASE_KEY, None)
        layers.append(data)
        if base is None:
            break
        if not isinstance(base, str) or not base.strip():
            raise ConfigError(f"{p}: _base must be a preset name or a YAML path, got {base!r}")
        p = _base_path(base.strip(), p, group, chain)
    merged: dict[str, Any] = {}
    for layer in reversed(layers):
        merged = deep_merge(merged, layer)
    return merged


def load(cls: type[T], preset: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = (),
         group: str | None = None) -> T:
    """Load ``cls`` from a preset (name in ``configs/<group>/`` or a YAML path, ``_base:`` resolved)
    plus overrides."""
    data: dict[str, Any] = {}
    if preset is not None:
        path = preset_path(group or "", preset) if group else Path(preset)
        data = load_preset(path, group)
        try:
            cfg = from_dict(cls, data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
    else:
        cfg = cls()
    return apply_overrides(cfg, list(overrides))


def save_resolved(cfg: Any, path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML (atomically) and return its path."""
    from skyloom.fsutil import atomic_write_text

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p, yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return p
