"""A plug-in is one module plus entry points: an out-of-tree package adds a metric, a captioner and a
text encoder, and each is used from the installed ``skyloom`` executable.

The package is "installed" the way pip lays out a wheel (the module plus a ``.dist-info`` folder with
``METADATA`` and ``entry_points.txt``) in a folder put on ``PYTHONPATH``; skyloom finds it only
through ``importlib.metadata`` entry points, never by name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from skyloom.corpus import Corpus
from skyloom.registry import Registry, RegistryError
from skyloom.video import read_video, write_video
from tests.conftest import moving_square_video
from tests.model.helpers import make_square_corpus

SKYLOOM = Path(sys.executable).with_name("skyloom")

PLUGIN = '''
"""skyloom-testplugin: one module, three plug-ins (found through entry points only)."""
from dataclasses import dataclass

import torch
from torch import nn

from skyloom.captioning.base import Captioner
from skyloom.eval.metrics import PerItemMetric
from skyloom.model.text import TextEncoder


@dataclass(frozen=True)
class WordsOptions:
    scale: float = 1.0


class PromptWords(PerItemMetric):
    """scale * words in the prompt + mean pixel / 255."""

    name = "mymetric"
    inputs = ("videos", "item_ids", "prompts")
    config_class = WordsOptions

    def __init__(self, config=None):
        self.scale = (config or WordsOptions()).scale
        super().__init__(config, extractor=None)

    def score_video(self, video, prompts=""):
        return self.scale * len(prompts.split()) + float(video.mean()) / 255.0


@dataclass(frozen=True)
class ShoutOptions:
    prefix: str = "LOOK"
    repeat: int = 1


class ShoutCaptioner(Captioner):
    name = "myplugin"
    needs = "frames"
    kinds = ("shout",)
    config_class = ShoutOptions

    def __init__(self, cfg, options):
        self.opts = options
        self.model_id, self.template_version = "shout-v1", "shout-1"

    def caption_one(self, item):
        words = " ".join([self.opts.prefix] * self.opts.repeat)
        return {"shout": f"{words} {len(item.frames)} frames"}


@dataclass(frozen=True)
class HashOptions:
    buckets: int = 97


class HashTextEncoder(TextEncoder):
    """Each word hashed into one of `buckets` learned embeddings."""

    config_class = HashOptions

    def __init__(self, cfg, options):
        super().__init__()
        self.dim, self.buckets = cfg.dim, options.buckets
        self.emb = nn.Embedding(options.buckets, cfg.dim)

    def encode(self, prompts):
        ids = [[sum(map(ord, w)) % self.buckets for w in (p.split() + [""] * 6)[:6]] for p in prompts]
        ids = torch.tensor(ids, device=self.emb.weight.device)  # (B, 6)
        return self.emb(ids), torch.ones_like(ids, dtype=torch.bool)  # (B, 6, D), (B, 6)
'''

ENTRY_POINTS = """
[skyloom.metrics]
mymetric = skyloom_testplugin:PromptWords

[skyloom.captioners]
myplugin = skyloom_testplugin:ShoutCaptioner

[skyloom.text_encoders]
mytext = skyloom_testplugin:HashTextEncoder
"""


def install_plugin(site: Path, module: str = "skyloom_testplugin", source: str = PLUGIN,
                   entry_points: str = ENTRY_POINTS) -> Path:
    """Lay out an installed distribution (module + dist-info) in ``site``, as pip would."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    return site


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    site = install_plugin(tmp_path_factory.mktemp("plugin") / "site")
    env = {**os.environ, "PYTHONPATH": str(site), "SKYLOOM_NO_PROGRESS": "1"}
    env.pop("RAY_ADDRESS", None)
    return env


def skyloom(args: list[str], env: dict[str, str], code: int = 0) -> subprocess.CompletedProcess:
    r = subprocess.run([str(SKYLOOM), *args], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == code, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "Traceback" not in r.stdout + r.stderr
    return r


def test_registry_reads_entry_points_lazily_and_refuses_duplicates(tmp_path, monkeypatch):
    site = install_plugin(tmp_path / "site", module="colour_plugin", source="RED = (255, 0, 0)\n",
                          entry_points="[test.colours]\nred = colour_plugin:RED\ngreen = colour_plugin:GREEN\n")
    monkeypatch.syspath_prepend(str(site))
    reg: Registry = Registry("colour", group="test.colours", configured=False)
    assert "colour_plugin" not in sys.modules
    assert reg.names() == ["green", "red"] and reg.origin("red") == "colour-plugin"
    assert "colour_plugin" not in sys.modules  # listed, not imported
    assert reg.get("red") == (255, 0, 0)
    with pytest.raises(RegistryError, match=r"colour 'green' \(colour_plugin:GREEN, from colour-plugin\) cannot be "
                                            r"loaded: AttributeError"):
        reg.get("green")
    with pytest.raises(RegistryError, match=r"unknown colour 'rde'\. Did you mean 'red'\?"):
        reg.get("rde")
    clash: Registry = Registry("colour", group="test.colours", configured=False)
    clash.register("red")(lambda: 0)  # a built-in of the same name as the plug-in's
    with pytest.raises(RegistryError, match=r"duplicate colour name 'red': entry point 'red' = "
                                            r"'colour_plugin:RED' of colour-plugin"):
        clash.names()
    with pytest.raises(RegistryError, match="duplicate colour name 'red'"):  # on every lookup, not only the first
        clash.get("green")


@pytest.mark.slow  # several runs of the installed executable (torch import each)
def test_plugin_metric_in_eval_score_and_in_a_suite(tmp_path, plugin_env):
    gen = tmp_path / "gen"
    prompts = {"a": "a red square moves right", "b": "a blue square"}
    vids = {}
    for i, stem in enumerate(prompts):
        write_video(gen / f"{stem}.mp4", moving_square_video(T=8, H=16, W=16, seed=i), fps=8)
        vids[stem] = read_video(gen / f"{stem}.mp4")
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    r = skyloom(["eval", "score", "--metric", "mymetric", "--videos", str(gen), "--prompts",
                 str(tmp_path / "prompts.json"), "--option", "scale=2", "--json"], plugin_env)
    res = json.loads(r.stdout)
    want = {s: 2.0 * len(p.split()) + float(vids[s].mean()) / 255.0 for s, p in prompts.items()}
    assert res["name"] == "mymetric" and res["n"] == 2
    assert res["per_item"] == pytest.approx(want, rel=1e-12)
    assert res["value"] == pytest.approx(np.mean(list(want.values())), rel=1e-12)
    # its declared inputs drive eval score: without --prompts it says what is missing
    r = skyloom(["eval", "score", "--metric", "mymetric", "--videos", str(gen)], plugin_env, code=2)
    assert "metric 'mymetric' needs prompts" in r.stderr and "--prompts" in r.stderr
    # settings are checked against the plug-in's own dataclass
    r = skyloom(["eval", "score", "--metric", "mymetric", "--videos", str(gen), "--prompts",
                 str(tmp_path / "prompts.json"), "--option", "scael=2"], plugin_env, code=2)
    assert "unknown config key 'scael' in --option" in r.stderr and "valid keys: scale" in r.stderr
    # a suite names it like a built-in
    suite = tmp_path / "plug.yaml"
    suite.write_text(textwrap.dedent("""
        format: skyloom-suite
        name: plug
        version: 1
        seeds: [0]
        generation: {num_frames: 8, steps: 2, batch_size: 2}
        prompts:
          - {id: red, text: "a red square moves right"}
          - {id: blue, text: "a blue square"}
        metrics:
          - {name: mymetric, settings: {scale: 0.5}}
          - {name: temporal_flickering}
    """))
    r = skyloom(["eval", "suites", str(suite)], plugin_env)
    assert "mymetric" in r.stderr + r.stdout
    # `skyloom plugins` shows the three entries beside the built-ins, with the distribution they come from
    rows = json.loads(skyloom(["plugins", "--json"], plugin_env).stdout)
    mine = {(r["kind"], r["name"], r["group"]) for r in rows if r["origin"] == "skyloom-testplugin"}
    assert mine == {("metric", "mymetric", "skyloom.metrics"), ("captioner", "myplugin", "skyloom.captioners"),
                    ("text encoder", "mytext", "skyloom.text_encoders")}
    assert {r["name"] for r in rows if r["kind"] == "metric"} >= {"fvd", "clipsim", "mymetric"}


@pytest.mark.slow  # several runs of the installed executable (torch import each)
def test_plugin_captioner_from_the_cli(tmp_path, plugin_env):
    corpus = make_square_corpus(tmp_path / "corpus", n=3, captions=False)
    base = ["caption", str(corpus.root), "--captioner", "myplugin", "--set", "executor=local"]
    skyloom([*base, "--set", "options.myplugin.prefix=HEY", "--set", "options.myplugin.repeat=2"], plugin_env)
    caps = {r.id: r.captions for r in Corpus(corpus.root).records()}
    assert len(caps) == 3
    for cs in caps.values():
        assert [(c.captioner, c.kind, c.text, c.model_id) for c in cs] == [("myplugin", "shout", "HEY HEY 8 frames",
                                                                            "shout-v1")]
    r = skyloom([*base, "--set", "options.myplugin.volume=11"], plugin_env, code=2)
    assert "unknown config key 'volume' in options.myplugin" in r.stderr
    r = skyloom(["caption", str(corpus.root), "--captioner", "myplugn", "--set", "executor=local"], plugin_env, code=2)
    assert "unknown captioner 'myplugn'. Did you mean 'myplugin'?" in r.stderr


@pytest.mark.slow  # several runs of the installed executable (torch import each)
def test_plugin_text_encoder_trains_and_reloads(tmp_path, plugin_env):
    corpus = make_square_corpus(tmp_path / "corpus", n=4, T=8, size=16)
    run = tmp_path / "run"
    tiny = ["--set", "data.buckets=[{height: 16, width: 16, num_frames: 8, batch_size: 2}]", "--set", "dit.dim=32",
            "--set", "dit.depth=1", "--set", "dit.heads=2", "--set", "dit.text_dim=16", "--set", "text.dim=16",
            "--set", "num_threads=1", "--set", "data.caption_kinds=[short]"]
    args = ["train", str(corpus.root), "--out", str(run), "--steps", "1", *tiny]
    r = skyloom([*args, "--set", "text.kind=mytxt"], plugin_env, code=2)
    assert "unknown text encoder 'mytxt'. Did you mean 'mytext'?" in r.stderr and not run.exists()
    skyloom([*args, "--set", "text.kind=mytext", "--set", "text.options.buckets=31"], plugin_env)
    ckpt = sorted((run / "checkpoints").glob("step-*"))[-1]
    saved = json.loads((ckpt / "text_encoder" / "config.json").read_text())
    assert saved["kind"] == "mytext" and saved["options"] == {"buckets": 31}
    from safetensors.numpy import load_file

    assert load_file(str(ckpt / "text_encoder" / "model.safetensors"))["emb.weight"].shape == (31, 16)
    # the checkpoint rebuilds the plug-in's encoder when sampled
    out = tmp_path / "s.mp4"
    skyloom(["sample", "--ckpt", str(run), "--prompt", "a red square", "--out", str(out), "--steps", "2"], plugin_env)
    assert read_video(out).shape[1:] == (16, 16, 3)
