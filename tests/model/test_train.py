"""Training loop, checkpoints, resume, pickle refusal, the pipeline API and the CLI."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from skyloom.model.checkpoint import CheckpointError
from skyloom.model.pipeline import load_pipeline
from skyloom.model.train import train
from skyloom.rundir import RunDir
from tests.model.helpers import make_square_corpus, tiny_cfg


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_square_corpus(tmp_path_factory.mktemp("model") / "corpus", n=6)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """A run trained for 40 steps (shared by the pipeline tests)."""
    out = tmp_path_factory.mktemp("model") / "run"
    res = train(tiny_cfg(steps=40, ckpt_every=20), corpus.root, out, progress_bar=False)
    return out, res


def test_loss_decreases_and_run_directory_is_complete(trained):
    out, res = trained
    losses = [v for _, v in res.losses]
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:5])
    rd = RunDir(out)
    steps = [s for s, _ in rd.checkpoints()]
    assert steps == [0, 20, 40]  # step-0 "before" checkpoint always written
    m = rd.metrics("train")
    assert [x["step"] for x in m] == list(range(1, 41))
    assert {"loss", "lr", "samples_per_s", "tokens_per_s", "grad_norm"} <= set(m[0])
    ck = rd.latest_checkpoint()
    for comp in ("dit", "text_encoder", "ema"):
        assert (ck / comp / "config.json").exists() and (ck / comp / "model.safetensors").exists()
    assert json.loads((ck / "vae" / "config.json").read_text())["kind"] == "identity"
    assert (ck / "state" / "optimizer.pt").exists() and (out / "config.yaml").exists()


def test_resume_after_kill_matches_uninterrupted_run(corpus, tmp_path):
    cfg = tiny_cfg(steps=8, ckpt_every=3)
    full = train(cfg, corpus.root, tmp_path / "a", progress_bar=False)

    class Killed(Exception):
        pass

    def kill_at_5(step, loss):
        if step == 5:  # dies after step 5; the last checkpoint is step 3
            raise Killed

    with pytest.raises(Killed):
        train(cfg, corpus.root, tmp_path / "b", on_step=kill_at_5, progress_bar=False)
    assert [s for s, _ in RunDir(tmp_path / "b").checkpoints()] == [0, 3]
    resumed = train(cfg, corpus.root, tmp_path / "b", progress_bar=False)
    assert [s for s, _ in resumed.losses] == [4, 5, 6, 7, 8]
    np.testing.assert_allclose([v for _, v in resumed.losses], [v for _, v in full.losses[3:]], rtol=0, atol=1e-6)
    # metrics after the checkpoint were truncated and rewritten: one line per step, same curve
    ma, mb = RunDir(tmp_path / "a").metrics("train"), RunDir(tmp_path / "b").metrics("train")
    assert [x["step"] for x in mb] == list(range(1, 9))
    np.testing.assert_allclose([x["loss"] for x in mb], [x["loss"] for x in ma], atol=1e-6)
    # final weights agree too
    from safetensors.torch import load_file

    wa = load_file(str(RunDir(tmp_path / "a").latest_checkpoint() / "dit" / "model.safetensors"))
    wb = load_file(str(RunDir(tmp_path / "b").latest_checkpoint() / "dit" / "model.safetensors"))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def test_checkpoint_round_trip_and_pickle_refusal(trained, tmp_path):
    import shutil

    out, _ = trained
    ck = RunDir(out).latest_checkpoint()
    pipe = load_pipeline(ck, use_ema=False)
    from safetensors.torch import load_file

    sd = load_file(str(ck / "dit" / "model.safetensors"))
    assert all(torch.equal(pipe.dit.state_dict()[k], v) for k, v in sd.items())
    # A checkpoint whose weights are a pickle (with code) is refused, and the code never runs.
    bad = tmp_path / "bad"
    shutil.copytree(ck, bad)
    (bad / "dit" / "model.safetensors").unlink()
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (bad / "dit" / "model.bin").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match="refusing pickled"):
        load_pipeline(bad)
    # Training state is read with weights_only=True: a code-carrying optimizer.pt is refused.
    from skyloom.model.checkpoint import load_state_file

    (bad / "state" / "optimizer.pt").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match="refused"):
        load_state_file(bad / "state" / "optimizer.pt")
    assert not marker.exists()


def test_pipeline_is_deterministic_and_keeps_given_frames(trained):
    out, _ = trained
    pipe = load_pipeline(out)
    assert (pipe.num_frames, pipe.height, pipe.width, pipe.fps) == (8, 16, 16, 8.0)
    prompts = ["a red square moves right", "a blue square moves right"]
    a = pipe.generate(prompts, [1, 2], steps=4)
    b = pipe.generate(prompts, [1, 2], steps=4)
    assert a.shape == (2, 8, 16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a[0], pipe.generate(prompts[:1], [3], steps=4)[0])
    first = pipe.generate(prompts[:1], [1], steps=4)  # batch composition does not matter
    assert np.abs(first[0].astype(int) - a[0].astype(int)).max() <= 1
    rng = np.random.default_rng(0)
    cond = rng.integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    i2v = pipe.generate(prompts, [1, 2], cond_frames=cond[:, :1], steps=4)
    ext = pipe.generate(prompts, [1, 2], cond_frames=cond, steps=4, guidance=2.0)
    assert np.array_equal(i2v[:, :1], cond[:, :1]) and np.array_equal(ext[:, :3], cond)
    with pytest.raises(ValueError, match="cond_frames"):
        pipe.generate(prompts, [1, 2], cond_frames=cond[:1])


def test_cli_train_resume_and_sample(corpus, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from skyloom.cli import app
    from skyloom.config import save_resolved
    from skyloom.video import read_metadata, read_video

    preset = save_resolved(tiny_cfg(steps=3, ckpt_every=2), tmp_path / "tiny.yaml")
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", str(corpus.root), "--out", str(run), "--preset", str(preset)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["train", str(corpus.root), "--out", str(run), "--steps", "4"])  # resume
    assert r.exit_code == 0, r.output
    assert [s for s, _ in RunDir(run).checkpoints()] == [0, 2, 3, 4]
    assert "steps: 4" in (run / "config.yaml").read_text()
    out = tmp_path / "s.mp4"
    r = CliRunner().invoke(app, ["sample", "--ckpt", str(run), "--prompt", "a red square", "--seed", "7",
                                 "--steps", "3", "--guidance", "2.5", "--out", str(out)])
    assert r.exit_code == 0, r.output
    meta = read_metadata(out)
    assert meta["seed"] == 7 and meta["steps"] == 3 and meta["guidance"] == 2.5 and meta["mode"] == "t2v"
    assert read_video(out).shape == (8, 16, 16, 3)
    import cv2

    png = tmp_path / "first.png"
    cv2.imwrite(str(png), np.full((16, 16, 3), 200, np.uint8))
    r = CliRunner().invoke(app, ["sample", "--ckpt", str(run), "--prompt", "x", "--image", str(png), "--steps", "2",
                                 "--out", str(tmp_path / "i.mp4")])
    assert r.exit_code == 0, r.output
    assert read_metadata(tmp_path / "i.mp4")["mode"] == "i2v"
    r = CliRunner().invoke(app, ["train", str(corpus.root), "--out", str(tmp_path / "r2"), "--preset", "nope"])
    assert r.exit_code != 0


def test_vae_stage_trains_and_feeds_a_latent_dit(corpus, tmp_path):
    from skyloom.model.config import AEConfig, Bucket, DataConfig, DiTConfig

    ae = AEConfig(kind="vae", latent_channels=4, base_channels=8, spatial_factor=4, temporal_factor=2)
    data = DataConfig(buckets=(Bucket(16, 16, 5, 2),))
    res = train(tiny_cfg(steps=2, stage="vae", ae=ae, data=data), corpus.root, tmp_path / "vae", progress_bar=False)
    assert (res.last_checkpoint / "vae" / "model.safetensors").exists()
    with pytest.raises(CheckpointError, match="VAE checkpoint"):
        load_pipeline(tmp_path / "vae")
    dit = DiTConfig(in_channels=4, dim=32, depth=1, heads=2, text_dim=32, patch=(1, 2, 2))
    cfg = tiny_cfg(steps=2, ae=AEConfig(**{**ae.__dict__, "ckpt": str(tmp_path / "vae")}), data=data, dit=dit)
    train(cfg, corpus.root, tmp_path / "dit", progress_bar=False)
    pipe = load_pipeline(tmp_path / "dit")
    v = pipe.generate(["a red square"], [0], steps=2, cond_frames=np.zeros((1, 1, 16, 16, 3), np.uint8))
    assert v.shape == (1, 5, 16, 16, 3) and np.array_equal(v[0, 0], np.zeros((16, 16, 3), np.uint8))
