"""Typed config: presets, ``--set`` overrides checked against the dataclass, resolved config saved."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from skyloom import config
from skyloom.config import ConfigError


@dataclass(frozen=True)
class Opt:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.99)


@dataclass(frozen=True)
class Cfg:
    steps: int = 10
    name: str = "x"
    mode: Literal["fast", "exact"] = "fast"
    resize: int | None = None
    tags: list[str] = field(default_factory=list)
    opt: Opt = field(default_factory=Opt)
    flag: bool = False


def test_overrides_are_typed_and_nested():
    c = config.apply_overrides(Cfg(), ["steps=20", "opt.lr=0.5", "opt.betas=[0.8, 0.9]", "tags=[a, b]",
                                        "mode=exact", "resize=64", "flag=true"])
    assert c == Cfg(steps=20, mode="exact", resize=64, tags=["a", "b"], opt=Opt(lr=0.5, betas=(0.8, 0.9)), flag=True)
    assert config.apply_overrides(c, ["resize=null"]).resize is None
    assert config.apply_overrides(Cfg(), ["name=123"]).name == "123"
    assert config.apply_overrides(Cfg(), ["opt.lr=1"]).opt.lr == 1.0 and isinstance(
        config.apply_overrides(Cfg(), ["opt.lr=1"]).opt.lr, float)


@pytest.mark.parametrize("override,message", [
    ("step=3", r"unknown config key 'step'; valid keys: .*steps"),
    ("opt.lrr=3", r"unknown config key 'lrr' in opt; valid keys: betas, lr"),
    ("steps=fast", r"steps: expected an integer, got 'fast'"),
    ("steps=1.5", r"steps: expected an integer"),
    ("mode=slow", r"mode: 'slow' is not one of 'fast', 'exact'"),
    ("flag=3", r"flag: expected true/false"),
    ("opt.betas=[1, 2, 3]", r"opt.betas: expected 2 items, got 3"),
    ("opt=3", r"opt: expected a mapping for Opt"),
    ("steps", r"must look like key.sub=value"),
    ("=3", r"empty key"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        config.apply_overrides(Cfg(), [override])


def test_presets_from_configs_dir_and_paths(tmp_path, monkeypatch):
    (tmp_path / "grp").mkdir()
    (tmp_path / "grp" / "small.yaml").write_text("steps: 5\nopt:\n  lr: 0.1\n")
    (tmp_path / "grp" / "typo.yaml").write_text("stepz: 5\n")
    monkeypatch.setenv("SKYLOOM_CONFIGS", str(tmp_path))
    assert config.load(Cfg, "small", ["steps=6"], group="grp") == Cfg(steps=6, opt=Opt(lr=0.1))
    assert config.load(Cfg, tmp_path / "grp" / "small.yaml") == Cfg(steps=5, opt=Opt(lr=0.1))
    assert config.list_presets("grp") == ["small", "typo"]
    with pytest.raises(ConfigError, match=r"unknown grp preset 'big'.*Available: small, typo"):
        config.load(Cfg, "big", group="grp")
    with pytest.raises(ConfigError, match=r"typo.yaml: unknown config key 'stepz'"):
        config.load(Cfg, "typo", group="grp")


def test_resolved_config_round_trips(tmp_path):
    c = config.apply_overrides(Cfg(), ["opt.lr=0.25", "tags=[x]"])
    p = config.save_resolved(c, tmp_path / "out" / "config.yaml")
    assert yaml.safe_load(p.read_text())["opt"] == {"lr": 0.25, "betas": [0.9, 0.99]}
    assert config.load(Cfg, p) == c


def test_every_shipped_preset_parses():
    """Every YAML under configs/ is valid YAML holding a mapping (stage tests check their own types)."""
    files = sorted(config.configs_dir().rglob("*.yaml"))
    for f in files:
        assert isinstance(config.load_yaml(f), dict), f
