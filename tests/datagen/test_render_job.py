"""The render Ray job: corpus rows, determinism, resume after a crash, quarantine, retries, CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from skyloom.config import load
from skyloom.corpus import Corpus
from skyloom.datagen.render import RenderConfig, run_render, sample_specs
from skyloom.fsutil import sha256_file


def tiny(out, **kw) -> RenderConfig:
    cfg = load(RenderConfig, "balls-bounce", [], group="datagen")
    scene = dataclasses.replace(cfg.scene, num_frames=8)
    return dataclasses.replace(cfg, out=str(out), num_scenes=6, scenes_per_task=1, flush_every=2, scene=scene, **kw)


def snapshot(root) -> dict:
    c = Corpus(root)
    out = {}
    for r in c.records():
        gt = c.read_ground_truth(r.id)
        arr = np.load(c.gt_path(r.id, ".npz"))
        out[r.id] = (r.sha256, sha256_file(c.clip_path(r.id)), r.source_sha256, r.split, json.dumps(gt, sort_keys=True),
                     arr["segmentation"].tobytes(), arr["depth"].tobytes())
    return out


def test_render_job_rows_determinism_and_resume(tmp_path, ray_local, monkeypatch):
    full = tiny(tmp_path / "a")
    res = run_render(full, show_progress=False)
    assert (res.rendered, res.failed, res.existing) == (6, 0, 0)
    c = Corpus(full.out)
    recs = c.records()
    assert [r.id for r in recs] == [f"balls-bounce-s0-{i:05d}" for i in range(6)]
    r = recs[0]
    spec = sample_specs(full, 1, seed=0)[0]
    assert r.license_id == "CC0-1.0" and r.author == "skyloom" and r.source_kind == "synthetic"
    assert r.source_url == f"skyloom://render/balls-bounce/{spec['seed']}"
    from skyloom.datagen.scenes import spec_sha256

    assert r.source_sha256 == spec_sha256(spec)
    assert (r.width, r.height, r.num_frames, r.fps) == (32, 32, 8, 8.0)
    assert r.meta["preset"] == "balls-bounce" and r.meta["renderer"] == "mujoco" and r.meta["seed"] == spec["seed"]
    assert r.meta["render_quality"] == {"shadowsize": 512, "offsamples": 0, "shadows": True}
    assert r.sha256 == sha256_file(c.clip_path(r.id))
    gt = c.read_ground_truth(r.id)
    assert gt["format"] == "skyloom-gt" and gt["spec"] == spec and gt["arrays"] == f"gt/{r.id}.npz"
    arr = np.load(c.gt_path(r.id, ".npz"))
    assert arr["segmentation"].dtype == np.uint8 and arr["depth"].dtype == np.float16
    assert arr["segmentation"].shape == (8, 32, 32)
    assert c.read_clip(r.id).shape == (8, 32, 32, 3)
    assert (tmp_path / "a" / "configs" / "render-balls-bounce-s0.yaml").exists()
    base = snapshot(full.out)

    # second corpus: render, delete some, crash mid-job (after some manifest appends), rerun
    part = tiny(tmp_path / "b")
    run_render(part, show_progress=False)
    cb = Corpus(part.out)
    cb.delete(["balls-bounce-s0-00001", "balls-bounce-s0-00004"], reason="test")
    cb.part_files()[0].unlink()  # lose the rows of 00000/00001 (their files stay, as after a crash before the append)
    cb.clip_path("balls-bounce-s0-00005").unlink()  # a row whose clip file went missing is rendered again
    calls = {"n": 0}
    real_append = Corpus.append

    def dying_append(self, records, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the driver is killed between two appends
        return real_append(self, records, **kw)

    monkeypatch.setattr(Corpus, "append", dying_append)
    with pytest.raises(KeyboardInterrupt):
        run_render(dataclasses.replace(part, num_scenes=6), show_progress=False)
    monkeypatch.setattr(Corpus, "append", real_append)
    res = run_render(part, show_progress=False)
    assert res.rendered + res.existing == 6 and res.rendered >= 1
    again = snapshot(part.out)
    assert again.keys() == base.keys()
    assert again == base  # same clips byte for byte, same ground truth, no duplicates, no gaps
    assert len(Corpus(part.out).records()) == 6
    assert run_render(part, show_progress=False).rendered == 0  # nothing left to do


def test_failed_scenes_are_quarantined_and_the_job_goes_on(tmp_path, ray_local):
    good, bad, boom = sample_specs(tiny(tmp_path), 3, seed=9)
    bad["objects"][0]["shape"] = "cone"
    boom["objects"][0]["velocity"] = [0.0, 0.0, -1e12]  # finite, valid, but the simulation explodes
    specs = tmp_path / "specs.jsonl"
    specs.write_text("\n".join([json.dumps(good), json.dumps(bad), "{not json", json.dumps(boom)]) + "\n")
    cfg = dataclasses.replace(tiny(tmp_path / "q"), specs_file=str(specs), preset="mixed")
    res = run_render(cfg, show_progress=False)
    assert (res.rendered, res.failed) == (1, 3)
    c = Corpus(cfg.out)
    assert c.ids() == {"mixed-s0-00000"}
    q = {row["item"]: row for row in c.quarantined("render")}
    assert set(q) == {"mixed-s0-00001", "mixed-s0-00002", "mixed-s0-00003"}
    assert q["mixed-s0-00001"]["kind"] == "invalid_spec" and "objects[0].shape" in q["mixed-s0-00001"]["reason"]
    assert "not valid JSON" in q["mixed-s0-00002"]["reason"]
    assert q["mixed-s0-00003"]["kind"] == "simulation" and "blew up" in q["mixed-s0-00003"]["reason"]
    res = run_render(cfg, show_progress=False)  # deterministic failures are not retried on resume
    assert (res.rendered, res.failed, res.existing) == (0, 0, 4)
    assert len(c.quarantined("render")) == 3
    bad["objects"][0]["shape"] = "sphere"  # the user fixes that spec: it renders and its entry goes
    specs.write_text("\n".join([json.dumps(good), json.dumps(bad), "{not json", json.dumps(boom)]) + "\n")
    res = run_render(cfg, show_progress=False)
    assert (res.rendered, res.failed) == (1, 0) and "mixed-s0-00001" in c.ids()
    assert {row["item"] for row in c.quarantined("render")} == {"mixed-s0-00002", "mixed-s0-00003"}


def test_worker_death_is_retried(tmp_path, ray_local):
    marker = tmp_path / "crashed-once"
    cfg = dataclasses.replace(tiny(tmp_path / "r"), num_scenes=2, max_retries=2, executor="ray")
    res = run_render(cfg, show_progress=False, _fault_marker=str(marker))
    assert marker.exists()  # a worker really died
    assert (res.rendered, res.failed) == (2, 0)
    assert len(Corpus(cfg.out).records()) == 2


def test_cli_render(tmp_path, ray_local):
    from typer.testing import CliRunner

    from skyloom.cli import app

    runner = CliRunner()
    out = tmp_path / "cli"
    r = runner.invoke(app, ["datagen", "render", "--preset", "physics-probe", "--num-scenes", "2", "--seed", "3",
                            "--out", str(out), "--set", "scene.num_frames=4", "--set", "scene.width=24"])
    assert r.exit_code == 0, r.output
    c = Corpus(out)
    assert [x.id for x in c.records()] == ["physics-probe-s3-00000", "physics-probe-s3-00001"]
    assert c.records()[0].width == 24 and c.records()[0].meta["probe"] == "drop"
    saved = (out / "configs" / "render-physics-probe-s3.yaml").read_text()
    assert "width: 24" in saved and "num_scenes: 2" in saved
    r = runner.invoke(app, ["datagen", "render", "--help"])
    assert r.exit_code == 0 and "--num-scenes" in r.output and "--ray-address" in r.output
    r = runner.invoke(app, ["datagen", "render", "--preset", "nope", "--out", str(out)])
    assert r.exit_code == 2 and "error: unknown datagen preset 'nope'" in r.output and "balls-bounce" in r.output
    r = runner.invoke(app, ["datagen", "render", "--out", str(out), "--set", "renderer=mujocoo"])
    assert r.exit_code == 2 and "did you mean 'mujoco'" in r.output.lower()


def test_resume_is_keyed_on_the_scene_spec_not_the_preset_name(tmp_path, ray_local):
    """A copy of balls-bounce.yaml with other colours (same `preset:` name, same seed) renders its own
    scenes into a corpus that has the originals; identical specs are skipped."""
    from skyloom.config import packaged_configs

    text = (packaged_configs() / "datagen" / "balls-bounce.yaml").read_text()
    assert "colours: [red, green, blue, yellow]" in text and "preset: balls-bounce" in text
    copy = tmp_path / "my-balls.yaml"
    copy.write_text(text.replace("colours: [red, green, blue, yellow]", "colours: [purple, orange, cyan, pink]"))
    corpus = tmp_path / "c"

    def cfg(path):
        c = load(RenderConfig, path, [], group="datagen")
        return dataclasses.replace(c, out=str(corpus), num_scenes=3, scenes_per_task=3,
                                   scene=dataclasses.replace(c.scene, num_frames=8))

    orig = run_render(cfg("balls-bounce"), show_progress=False)
    assert (orig.rendered, orig.existing) == (3, 0)
    first = snapshot(corpus)
    res = run_render(cfg(copy), show_progress=False)
    assert (res.rendered, res.existing, res.failed) == (3, 0, 0)
    c = Corpus(corpus)
    recs = {r.id: r for r in c.records()}
    assert len(recs) == 6
    new = [r for cid, r in recs.items() if cid not in first]
    assert len(new) == 3 and all(r.id.startswith("balls-bounce-s0-0000") and len(r.id.rsplit("-", 1)[1]) == 8
                                 for r in new)
    for r in new:  # the copy's own scenes, with its colours, and the originals untouched
        gt = c.read_ground_truth(r.id)
        assert r.source_sha256 == spec_sha256_of(gt["spec"]) and r.id.endswith(r.source_sha256[:8])
        assert {o["colour"] for o in gt["spec"]["objects"]} <= {"purple", "orange", "cyan", "pink"}
    assert {k: v for k, v in snapshot(corpus).items() if k in first} == first
    # both configs are kept: the copy's resolved config does not overwrite the original's
    saved = sorted(p.name for p in (corpus / "configs").glob("render-balls-bounce-s0*.yaml"))
    assert len(saved) == 2 and "render-balls-bounce-s0.yaml" in saved
    # identical specs: nothing to render for either preset, whatever the order
    assert [run_render(cfg(p), show_progress=False).rendered for p in (copy, "balls-bounce")] == [0, 0]
    assert len(Corpus(corpus).records()) == 6
    assert len(list((corpus / "configs").glob("render-balls-bounce-s0*.yaml"))) == 2


def spec_sha256_of(spec: dict) -> str:
    from skyloom.datagen.scenes import spec_sha256

    return spec_sha256(spec)
