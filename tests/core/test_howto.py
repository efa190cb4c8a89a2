"""docs/architecture.md's "How to add X" walk-through, run as written.

The module and the entry points are read from the doc's ``<!-- example: FILE -->`` blocks,
installed as a distribution the way pip lays out a wheel (see ``tests/core/test_plugins.py``), and
driven through the installed ``skyloom`` executable: the out-of-tree metric, feature extractor and
captioner are found by entry point, compute what they should, and a mistyped option of each is a
user error (exit 2) naming the closest valid key.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

from skyloom.corpus import Corpus
from skyloom.video import read_video, write_video
from tests.conftest import moving_square_video
from tests.core.test_plugins import install_plugin, skyloom
from tests.model.helpers import make_square_corpus

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def doc_examples() -> dict[str, str]:
    """``{file name: code}`` of every ``<!-- example: FILE -->`` fenced block of the doc."""
    blocks = re.findall(r"<!-- example: (\S+) -->\n```[a-z]*\n(.*?)```", DOC.read_text(), re.S)
    return dict(blocks)


@pytest.fixture(scope="module")
def example_env(tmp_path_factory) -> dict[str, str]:
    ex = doc_examples()
    assert set(ex) == {"skyloom_example.py", "entry_points.txt"}
    site = install_plugin(tmp_path_factory.mktemp("howto") / "site", module="skyloom_example",
                          source=ex["skyloom_example.py"], entry_points=ex["entry_points.txt"])
    env = {**os.environ, "PYTHONPATH": str(site), "SKYLOOM_NO_PROGRESS": "1"}
    env.pop("RAY_ADDRESS", None)
    return env


def test_the_walkthrough_plugins_are_listed_with_their_options_and_inputs(example_env):
    rows = json.loads(skyloom(["plugins", "--json"], example_env).stdout)
    mine = {(r["kind"], r["name"]): r for r in rows if r["origin"] == "skyloom-example"}
    assert set(mine) == {("metric", "brightness"), ("feature extractor", "mean-colour"),
                         ("captioner", "frame-count")}
    assert mine["metric", "brightness"]["config"] == [{"name": "scale", "type": "float", "default": 1.0}]
    assert mine["metric", "brightness"]["inputs"] == ["videos", "item_ids"]
    assert mine["metric", "brightness"]["higher_is_better"] is True
    assert mine["feature extractor", "mean-colour"]["config"] == [{"name": "frames", "type": "int", "default": 8}]
    assert mine["captioner", "frame-count"]["config"] == [{"name": "word", "type": "str", "default": "frames"}]
    assert all("error" not in r for r in rows), [r for r in rows if "error" in r]


@pytest.mark.slow  # several runs of the installed executable (torch import each)
def test_the_walkthrough_metric_and_extractor_from_the_cli(tmp_path, example_env):
    gen, real = tmp_path / "gen", tmp_path / "real"
    for i in range(6):
        write_video(gen / f"g{i}.mp4", moving_square_video(T=8, H=16, W=16, seed=i), fps=8)
        write_video(real / f"g{i}.mp4", moving_square_video(T=8, H=16, W=16, seed=100 + i), fps=8)
    g = {p.stem: read_video(p) for p in sorted(gen.glob("*.mp4"))}
    r = {p.stem: read_video(p) for p in sorted(real.glob("*.mp4"))}

    out = json.loads(skyloom(["eval", "score", "--metric", "brightness", "--videos", str(gen), "--option",
                              "scale=2", "--json"], example_env).stdout)
    want = {k: 2.0 * float(v.mean()) / 255.0 for k, v in g.items()}
    assert out["name"] == "brightness" and out["per_item"] == pytest.approx(want, rel=1e-12)
    assert out["value"] == pytest.approx(np.mean(list(want.values())), rel=1e-12)
    bad = skyloom(["eval", "score", "--metric", "brightness", "--videos", str(gen), "--option", "scael=2"],
                  example_env, code=2)
    assert "unknown config key 'scael'" in bad.stderr and "did you mean 'scale'" in bad.stderr

    # a built-in metric (FVD) on the plug-in extractor's features, against scipy's matrix square root
    out = json.loads(skyloom(["eval", "score", "--metric", "fvd", "--videos", str(gen), "--reference", str(real),
                              "--extractor", "mean-colour?frames=1", "--option", "num_frames=8", "--json"],
                             example_env).stdout)
    fx = np.stack([v[:1].mean(axis=(1, 2)).reshape(-1) / 255.0 for v in g.values()])  # (6, 3)
    rx = np.stack([v[:1].mean(axis=(1, 2)).reshape(-1) / 255.0 for v in r.values()])
    s1, s2 = np.cov(rx, rowvar=False, bias=True), np.cov(fx, rowvar=False, bias=True)
    ref = float(np.sum((rx.mean(0) - fx.mean(0)) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))
    assert out["extractor"] == "mean-colour-1" and out["n"] == 6
    assert out["value"] == pytest.approx(ref, rel=1e-6)
    bad = skyloom(["eval", "score", "--metric", "fvd", "--videos", str(gen), "--reference", str(real),
                   "--extractor", "mean-colour?frame=1", "--option", "num_frames=8"], example_env, code=2)
    assert "unknown config key 'frame'" in bad.stderr and "did you mean 'frames'" in bad.stderr


@pytest.mark.slow  # runs of the installed executable
def test_the_walkthrough_captioner_from_the_cli(tmp_path, example_env):
    corpus = make_square_corpus(tmp_path / "corpus", n=3, T=8, captions=False)
    base = ["caption", str(corpus.root), "--captioner", "frame-count", "--set", "executor=local"]
    skyloom([*base, "--set", "options.frame-count.word=frames"], example_env)
    caps = {r.id: [(c.captioner, c.kind, c.text, c.model_id) for c in r.captions]
            for r in Corpus(corpus.root).records()}
    assert list(caps.values()) == [[("frame-count", "count", "8 frames", "frame-count-1")]] * 3
    bad = skyloom([*base, "--set", "options.frame-count.wrod=x"], example_env, code=2)
    assert "unknown config key 'wrod' in options.frame-count" in bad.stderr and "did you mean 'word'" in bad.stderr
