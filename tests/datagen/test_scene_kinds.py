"""Scene kinds: what draws a render job's specs; a kind from another package is found by entry point."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from skyloom.config import ConfigError, load
from skyloom.datagen import scene_kinds
from skyloom.datagen.render import RenderConfig, sample_specs
from skyloom.datagen.scenes import sample_spec, scene_seed, validate_spec
from skyloom.registry import Registry, RegistryError

ROW_KIND = '''
from dataclasses import dataclass

from skyloom.datagen.scene_kinds import ObjectsScene


@dataclass(frozen=True)
class RowOptions:
    spacing: float = 0.3


class RowScene(ObjectsScene):
    """The objects kind's scene with every object moved onto a row along x, at rest."""

    config_class = RowOptions

    def __init__(self, options):
        self.spacing = options.spacing

    def sample(self, scene, seed, preset, index):
        spec = super().sample(scene, seed, preset, index)
        for i, o in enumerate(spec["objects"]):
            o["position"] = [round(i * self.spacing, 6), 0.0, o["position"][2]]
            o["velocity"] = [0.0, 0.0, 0.0]
        return spec
'''


@pytest.fixture
def row_kind(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "row_scenes.py").write_text(textwrap.dedent(ROW_KIND))
    info = site / "row_scenes-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: row-scenes\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[skyloom.scene_kinds]\nrow = row_scenes:RowScene\n")
    monkeypatch.syspath_prepend(str(site))
    fresh: Registry = Registry("scene kind", group="skyloom.scene_kinds")  # reads the entry points anew
    fresh.register("objects")(scene_kinds.ObjectsScene)
    monkeypatch.setattr(scene_kinds, "SCENE_KINDS", fresh)
    return fresh


def test_default_kind_is_the_objects_sampler():
    cfg = load(RenderConfig, "balls-bounce", [], group="datagen")
    assert cfg.scene_kind == "objects"
    want = [sample_spec(cfg.scene, scene_seed(4, i), "balls-bounce", i) for i in range(3)]
    assert sample_specs(cfg, 3, seed=4) == want


def test_a_plugin_scene_kind_with_its_own_options(row_kind):
    assert row_kind.names() == ["objects", "row"] and row_kind.origin("row") == "row-scenes"
    cfg = load(RenderConfig, "balls-bounce", ["scene_kind=row", "scene_options.spacing=0.5", "scene.min_objects=3"],
               group="datagen")
    specs = sample_specs(cfg, 4, seed=1)
    assert specs == sample_specs(cfg, 4, seed=1)  # deterministic
    base = sample_specs(dataclasses.replace(cfg, scene_kind="objects", scene_options={}), 4, seed=1)
    for s, b in zip(specs, base):
        validate_spec(s)
        assert [o["position"][0] for o in s["objects"]] == [0.5 * i for i in range(len(s["objects"]))]
        assert [o["colour"] for o in s["objects"]] == [o["colour"] for o in b["objects"]]
    with pytest.raises(ConfigError, match=r"unknown config key 'spacng' in scene_options; valid keys: spacing"):
        sample_specs(dataclasses.replace(cfg, scene_options={"spacng": 1}), 1, seed=0)
    with pytest.raises(RegistryError, match=r"unknown scene kind 'rwo'\. Did you mean 'row'\?"):
        sample_specs(dataclasses.replace(cfg, scene_kind="rwo"), 1, seed=0)
