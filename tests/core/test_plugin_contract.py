"""Plug-ins refuse typos: a config class per plug-in, no ``**kwargs``, one constructor, declared inputs checked.

Each check runs where a plug-in registers (decorator, lazy entry, entry point on first lookup) so
a plug-in that could swallow a mistyped option, or a metric that reads an input it does not
declare, never loads.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from skyloom.config import ConfigError
from skyloom.eval.metrics import METRICS, PerItemMetric
from skyloom.eval.metrics.inputs import check_declared_inputs
from skyloom.plugins import REGISTRIES, listing, registry
from skyloom.registry import NoOptions, Registry, RegistryError
from tests.core.test_plugins import install_plugin, skyloom


@dataclass(frozen=True)
class SpeedOptions:
    speed: float = 1.0
    label: str = "x"


def test_build_is_the_constructor_and_a_typo_names_the_closest_key():
    reg: Registry = Registry("widget")

    @reg.register("fast")
    class Fast:
        config_class = SpeedOptions

        def __init__(self, owner: str, config: SpeedOptions, *, colour: str = "red") -> None:
            self.owner, self.config, self.colour = owner, config, colour

    w = reg.build("fast", "me", options={"speed": 2}, colour="blue")
    assert (w.owner, w.config, w.colour) == ("me", SpeedOptions(speed=2.0), "blue")
    assert reg.build("fast", "me").config == SpeedOptions()  # no options: the defaults
    with pytest.raises(ConfigError, match=r"widget 'fast': unknown config key 'sped' in widgets\.fast; "
                                          r"valid keys: label, speed \(did you mean 'speed'\?\)"):
        reg.build("fast", "me", options={"sped": 2}, where="widgets.fast")
    with pytest.raises(ConfigError, match=r"widgets\.fast\.speed: expected a number, got 'quick'"):
        reg.build("fast", "me", options={"speed": "quick"}, where="widgets.fast")


def test_registration_refuses_a_plugin_that_could_swallow_a_typo():
    reg: Registry = Registry("widget")
    with pytest.raises(RegistryError, match=r"widget 'bare' \(from .*\) has no config_class"):
        @reg.register("bare")
        class Bare:
            def __init__(self) -> None: ...

    @dataclass  # not frozen
    class Loose:
        speed: float = 1.0

    with pytest.raises(RegistryError, match="must be a frozen dataclass"):
        reg.register("loose")(type("L", (), {"config_class": Loose}))
    with pytest.raises(RegistryError, match=r"its constructor takes \*\*kw, which would swallow a mistyped option"):
        @reg.register("kw")
        class Swallows:
            config_class = SpeedOptions

            def __init__(self, config: Any = None, **kw: Any) -> None: ...

    assert reg.names() == []  # nothing half-registered
    # a plain lookup table (not plug-ins) opts out explicitly
    table: Registry = Registry("colour", configured=False)
    table.register("red")(lambda: (255, 0, 0))
    assert table.build("red") == (255, 0, 0)


def test_a_lazy_entry_is_checked_when_first_imported(tmp_path, monkeypatch):
    (tmp_path / "lazy_widgets.py").write_text("class NoConfig:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry = Registry("widget")
    reg.register_lazy("nc", "lazy_widgets:NoConfig")
    assert "lazy_widgets" not in sys.modules
    with pytest.raises(RegistryError, match=r"widget 'nc' \(from lazy_widgets\) has no config_class"):
        reg.get("nc")


def test_an_entry_point_without_config_class_names_its_distribution(tmp_path, monkeypatch):
    src = "class Sloppy:\n    def __init__(self, cfg, **options):\n        self.options = options\n"
    site = install_plugin(tmp_path / "site", module="sloppy_plugin", source=src,
                          entry_points="[test.widgets]\nsloppy = sloppy_plugin:Sloppy\n")
    monkeypatch.syspath_prepend(str(site))
    reg: Registry = Registry("widget", group="test.widgets")
    assert reg.names() == ["sloppy"]  # listed without importing it
    with pytest.raises(RegistryError, match=r"widget 'sloppy' \(from sloppy-plugin\) has no config_class"):
        reg.get("sloppy")


class _Base(PerItemMetric):
    config_class = NoOptions

    def score_video(self, video: np.ndarray, **kw: Any) -> float:
        return 0.0


def test_declared_inputs_are_checked_against_what_update_reads():
    class ReadsPrompts(PerItemMetric):  # colour_motion before the fix: reads prompts, declares none
        name, config_class = "reads", NoOptions

        def update(self, videos: Any, prompts: list[str] | None = None, item_ids: list[str] | None = None) -> None:
            super().update(videos, item_ids=item_ids, prompts=prompts)

        def score_video(self, video: np.ndarray, prompts: str = "") -> float:
            return float(len(prompts))

    with pytest.raises(RegistryError, match=r"update\(\) reads prompts but its inputs/optional_inputs do not "
                                            r"declare it"):
        check_declared_inputs("reads", ReadsPrompts)

    class DeclaresReference(PerItemMetric):  # declares an input update() has no parameter for
        name, config_class = "decl", NoOptions
        inputs = ("videos", "item_ids", "reference")

        def update(self, videos: Any, item_ids: list[str] | None = None) -> None:
            super().update(videos, item_ids=item_ids)

        def score_video(self, video: np.ndarray) -> float:
            return 0.0

    with pytest.raises(RegistryError, match="declares reference but update"):
        check_declared_inputs("decl", DeclaresReference)

    class ScoresPrompts(PerItemMetric):  # the per-item shape: update forwards, score_video reads
        name, config_class = "scores", NoOptions
        inputs = ("videos", "item_ids", "prompts")

        def score_video(self, video: np.ndarray, prompts: str = "") -> float:
            return float(len(prompts))

    check_declared_inputs("scores", ScoresPrompts)
    with pytest.raises(RegistryError, match=r"update\(\) reads prompts but"):
        check_declared_inputs("scores", type("Undeclared", (ScoresPrompts,), {"inputs": ("videos", "item_ids")}))
    # the metric registry runs the check when a metric registers
    reg: Registry = Registry("metric", check=check_declared_inputs)
    with pytest.raises(RegistryError, match=r"metric 'reads' \(from .*\): update\(\) reads prompts"):
        reg.register("reads")(ReadsPrompts)


def test_every_builtin_declares_its_options_and_builds_from_them():
    rows = listing(builtin_only=True)
    assert {r["kind"] for r in rows} == set(REGISTRIES)
    assert [r for r in rows if "error" in r] == []
    for r in rows:
        cls = registry(r["kind"]).config_class(r["name"])
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, r
    # every built-in metric is built by METRICS.build from its defaults, and refuses a typo of a real key
    for name in METRICS.names():
        m = METRICS.build(name, extractor=None) if METRICS.get(name).default_extractor else METRICS.build(name)
        assert m.config == METRICS.config_class(name)()
        fields = [f.name for f in dataclasses.fields(METRICS.config_class(name))]
        if fields:
            typo = fields[0][:-1] + "X"
            with pytest.raises(ConfigError, match=f"did you mean '{fields[0]}'"):
                METRICS.build(name, options={typo: 1})
    assert METRICS.build("warping_error", options={"protocol": "rgb-sum"}).protocol == "rgb-sum"
    with pytest.raises(ConfigError, match="unknown warping-error protocol 'lai'"):
        METRICS.build("warping_error", options={"protocol": "lai"})


def test_a_mistyped_metric_setting_exits_2_from_the_cli(tmp_path):
    from skyloom.video import write_video
    from tests.conftest import moving_square_video

    write_video(tmp_path / "v" / "a.mp4", moving_square_video(T=8, H=16, W=16), fps=8)
    env = {**os.environ, "SKYLOOM_NO_PROGRESS": "1"}
    r = skyloom(["eval", "score", "--metric", "temporal_flickering", "--videos", str(tmp_path / "v"), "--option",
                 "protocl=all"], env, code=2)
    assert "unknown config key 'protocl' in --option" in r.stderr and "did you mean 'protocol'" in r.stderr
    r = skyloom(["eval", "score", "--metric", "temporal_flickering", "--videos", str(tmp_path / "v"),
                 "--extractor", "clip"], env, code=2)
    assert "takes no --extractor" in r.stderr
    out = json.loads(skyloom(["eval", "score", "--metric", "temporal_flickering", "--videos", str(tmp_path / "v"),
                              "--option", "protocol=all", "--json"], env).stdout)
    assert out["n"] == 1 and out["details"]["protocol"] == "all"
