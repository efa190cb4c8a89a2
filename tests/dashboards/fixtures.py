"""A small world for the dashboard tests, made through the real contracts.

Runs (``RunDir.create`` + ``log_metrics`` + ``begin_checkpoint``), a results store
(``skyloom.eval.results.store.ResultsStore`` write methods, CIs from
``skyloom.eval.results.stats.bootstrap_ci``), generated
videos (``skyloom.video.write_video``, 5 s at 8 fps, 64x64) and a corpus (``Corpus.append``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.conftest import moving_square_video

FPS = 8
SECONDS = 5
SUITE = "smoke"
PROMPTS = [("p0", "a red ball falls onto the floor", "drop"),
           ("p1", "a blue box slides to the right", "slide"),
           ("p2", "two spheres collide </script><b>x</b>", "collision"),
           ("p3", "a green cylinder rolls off a ramp", "roll"),
           ("p4", "a wooden box is thrown against a wall", "collision"),
           ("p5", "a metal sphere rests on the floor", "drop")]
# (eval id, run, step, colour, per-prompt clipsim): a0 is clearly worse; a40 and b40 tie within noise.
EVALS = [("smoke-a0", "run-a", 0, (200, 60, 60), [0.10, 0.12, 0.11, 0.09, 0.13, 0.10]),
         ("smoke-a40", "run-a", 40, (60, 200, 60), [0.30, 0.33, 0.29, 0.31, 0.28, 0.32]),
         ("smoke-b40", "run-b", 40, (60, 60, 220), [0.31, 0.32, 0.30, 0.29, 0.30, 0.31])]


def make_runs(root: Path) -> dict[str, Path]:
    """``root/runs/{run-a, run-b, run-empty}``, a store in run-a holding three evaluations."""
    from skyloom.eval.results.stats import bootstrap_ci
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir
    from skyloom.video import write_video

    runs = root / "runs"
    rd = {name: RunDir.create(runs / name, preset="vdit-tiny") for name in ("run-a", "run-b")}
    RunDir.create(runs / "run-empty")  # no metrics, no checkpoints, no results
    for i, r in enumerate(rd.values()):
        for step in range(0, 41, 2):
            r.log_metrics(step, loss=float(1.0 / (1 + 0.1 * step) + 0.05 * i), lr=1e-3, samples_per_s=10.0 + i)
        r.log_metrics(40, kind="eval", val_loss=0.5 + 0.1 * i)
        for step in (0, 40):
            with r.begin_checkpoint(step) as tmp:
                (tmp / "dit").mkdir()
                (tmp / "dit" / "config.json").write_text("{}")
    with open(rd["run-b"].metrics_path, "a") as f:  # a crash mid-write leaves a torn last line
        f.write('{"step": 42, "kind": "train", "loss": 0.')
    store = ResultsStore(rd["run-a"].results_db_url)
    for eid, run, step, colour, values in EVALS:
        ck = rd[run].checkpoint_dir(step)
        store.begin_eval(eid, suite=SUITE, checkpoint=str(ck), checkpoint_name=f"{run}@{step}", run_name=run,
                         step=step, config={"suite": {"primary_metric": "clipsim"}})
        items = []
        for (pid, prompt, cat), v in zip(PROMPTS, values):
            video = rd[run].eval_dir / SUITE / eid / "videos" / f"{pid}.mp4"
            video.parent.mkdir(parents=True, exist_ok=True)
            write_video(video, moving_square_video(T=FPS * SECONDS, H=64, W=64, colour=colour, seed=len(items)),
                        fps=FPS)
            items.append({"item_id": pid, "metric": "clipsim", "value": v, "video_path": str(video), "prompt": prompt,
                          "seed": 7, "category": cat})
        store.put_items(eid, items)
        ci = bootstrap_ci(values, seed=0)
        fvd = 100.0 - 150 * float(np.mean(values))
        store.put_scores(eid, [
            {"metric": "clipsim", "value": ci.estimate, "stderr": ci.stderr, "ci_low": ci.low, "ci_high": ci.high,
             "n": len(values), "higher_is_better": True, "extractor": "random-init"},
            {"metric": "fvd", "value": fvd, "ci_low": fvd - 5, "ci_high": fvd + 5, "n": 3, "higher_is_better": False},
            {"metric": "flicker", "value": 0.9 + step / 1000, "n": 6, "higher_is_better": True}])
        store.set_status(eid, "complete")
    store.close()
    return {"runs": runs, "run-a": rd["run-a"].root, "run-b": rd["run-b"].root}


def make_corpus(root: Path) -> Path:
    """A corpus of 6 short clips: 4 synthetic (CC0-1.0), 2 licensed (CC-BY-4.0), captions and scores."""
    from skyloom.corpus import Caption, ClipRecord, Corpus
    from skyloom.fsutil import sha256_file
    from skyloom.video import write_video

    c = Corpus.create(root / "corpus")
    recs = []
    for i in range(6):
        cid = f"clip-{i}"
        licensed = i >= 4
        path = c.clip_path(cid)
        write_video(path, moving_square_video(T=8, H=32, W=32 + 16 * licensed, seed=i), fps=FPS)
        recs.append(ClipRecord(
            id=cid, path=f"clips/{cid}.mp4", source_kind="licensed" if licensed else "synthetic",
            duration_s=1.0, fps=FPS, width=32 + 16 * licensed, height=32, num_frames=8,
            license_id="CC-BY-4.0" if licensed else "CC0-1.0",
            source_url=f"https://example.org/v/{i}" if licensed else f"skyloom://render/drop/{i}",
            author="Jane Doe" if licensed else "skyloom", attribution="Jane Doe, CC BY 4.0" if licensed else "",
            sha256=sha256_file(path), parent_id="src-0" if licensed else None,
            shot_start_s=float(i) if licensed else None, shot_end_s=float(i) + 1 if licensed else None,
            captions=(Caption("scene-graph", "short", f"a {'red' if i % 2 else 'blue'} square moves right {i}"),),
            quality={"aesthetic": 0.1 * (i + 1)}, split="val" if i == 0 else "train"))
    c.append(recs)
    return c.root


# -- the simulator beside the model: a physics evaluation, a ground-truth corpus, a real checkpoint --------
PHYSICS = {"preset": "physics-probe", "num_scenes": 2, "seed": 1000, "cond_frames": 4, "num_frames": 12,
           "perturb_scale": 0.01, "perturb_takes": 1, "category": "physics", "overrides": []}


def physics_specs() -> dict[str, dict]:
    """``{item_id: spec}`` of :data:`PHYSICS`, through the evaluation's own function."""
    from skyloom.config import from_dict
    from skyloom.eval.harness.probes import probe_specs
    from skyloom.eval.harness.suites import PhysicsSpec

    # the first num_scenes draws: what the dashboard shows for evaluations stored without a probe draw record
    return probe_specs(from_dict(PhysicsSpec, {**PHYSICS, "overrides": ()}), draws=PHYSICS["num_scenes"])


def make_physics_run(runs: Path) -> dict[str, Path]:
    """``runs/run-phys``: two evaluations of suite ``physics`` whose videos are the simulator's clip
    (``phys-good``) and the given frames held still (``phys-static``), stored the way ``skyloom eval`` does."""
    from skyloom import datagen
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir
    from skyloom.video import write_video

    run = RunDir.create(runs / "run-phys", preset="vdit-tiny")
    k = PHYSICS["cond_frames"]
    store = ResultsStore(run.results_db_url)
    clips = {iid: datagen.render_spec(spec)[0] for iid, spec in physics_specs().items()}  # (T, H, W, 3)
    for step, eid in ((0, "phys-static"), (10, "phys-good")):
        store.begin_eval(eid, suite="physics", checkpoint=str(run.checkpoint_dir(step)),
                         checkpoint_name=f"run-phys@{step}",
                         run_name="run-phys", step=step,
                         config={"suite": {"primary_metric": "physics_iq", "physics": PHYSICS}})
        items = []
        for iid, frames in clips.items():
            video = frames if eid == "phys-good" else np.repeat(frames[k - 1:k], len(frames), axis=0)
            if eid == "phys-static":
                video[:k] = frames[:k]
            path = run.eval_dir / "physics" / eid / "videos" / f"{iid}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_video(path, video, fps=8)
            items.append({"item_id": iid, "metric": "physics_iq", "value": 90.0 if eid == "phys-good" else 20.0,
                          "video_path": str(path), "prompt": f"probe {iid}", "seed": 0, "category": "physics"})
        store.put_items(eid, items)
        store.put_scores(eid, [{"metric": "physics_iq", "value": 90.0 if eid == "phys-good" else 20.0, "n": len(items),
                                "higher_is_better": True}])
        store.set_status(eid, "complete")
    store.close()
    return {"run-phys": run.root}


def make_gt_corpus(root: Path) -> Path:
    """A corpus of 2 rendered balls-bounce scenes written as ``skyloom datagen render`` writes them
    (clip, ``gt/<id>.json``, ``gt/<id>.npz``) with scene-graph captions, and 1 licensed clip."""
    from skyloom import datagen
    from skyloom.captioning import caption_gt
    from skyloom.config import load
    from skyloom.corpus import Caption, ClipRecord, Corpus
    from skyloom.datagen.render import RenderConfig, npz_bytes
    from skyloom.fsutil import atomic_write_bytes, sha256_file
    from skyloom.video import write_video

    c = Corpus.create(root / "gt-corpus")
    cfg = load(RenderConfig, "balls-bounce", ["scene.num_frames=12"], group="datagen")
    recs = []
    for i, spec in enumerate(datagen.sample_specs(cfg, 2, seed=3)):
        cid = f"sim-{i}"
        frames, gt = datagen.render_spec(spec)
        arrays = gt.pop("arrays_data")
        write_video(c.clip_path(cid), frames, fps=float(gt["fps"]))
        atomic_write_bytes(c.gt_path(cid, ".npz"), npz_bytes({"segmentation": arrays["segmentation"].astype(np.uint8),
                                                               "depth": arrays["depth"].astype(np.float16)}))
        gt["arrays"] = f"gt/{cid}.npz"
        c.write_ground_truth(cid, gt)
        caps = caption_gt(gt, cid)
        recs.append(ClipRecord(
            id=cid, path=f"clips/{cid}.mp4", source_kind="synthetic", duration_s=len(frames) / gt["fps"], fps=gt["fps"],
            width=gt["width"], height=gt["height"], num_frames=len(frames), license_id="CC0-1.0",
            source_url=f"skyloom://render/balls-bounce/{spec['seed']}", author="skyloom",
            attribution="Synthetic render by skyloom (CC0-1.0)", sha256=sha256_file(c.clip_path(cid)),
            gt_path=f"gt/{cid}.json", captions=tuple(Caption("scene-graph", k, t) for k, t in caps.items()),
            meta={"preset": "balls-bounce", "seed": spec["seed"]}))
    write_video(c.clip_path("real-0"), moving_square_video(T=8, H=32, W=32, seed=9), fps=FPS)
    recs.append(ClipRecord(
        id="real-0", path="clips/real-0.mp4", source_kind="licensed", duration_s=1.0, fps=FPS, width=32, height=32,
        num_frames=8, license_id="CC-BY-4.0", source_url="https://example.org/v/real", author="Jane Doe",
        attribution="Jane Doe, CC BY 4.0", sha256=sha256_file(c.clip_path("real-0")), source_page="https://example.org/p",
        parent_id="src-real", shot_start_s=2.0, shot_end_s=3.0))
    c.append(recs)
    return c.root


def make_tiny_checkpoints(runs: Path, corpus_root: Path) -> Path:
    """``runs/tiny``: a real vdit run trained 2 steps (checkpoints at steps 1 and 2), for the prompt box."""
    from skyloom.model.train import train
    from tests.model.helpers import make_square_corpus, tiny_cfg

    corpus = make_square_corpus(corpus_root, n=3)
    train(tiny_cfg(steps=2, ckpt_every=1), corpus.root, runs / "tiny", progress_bar=False)
    return runs / "tiny"
