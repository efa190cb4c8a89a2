"""``skyloom eval export``, ``--videos``, ``--calibrate`` and the boards, through the installed executable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from skyloom.video import write_video

ROOT = Path(__file__).resolve().parents[2]


def skyloom_exe() -> str:
    exe = Path(sys.executable).parent / "skyloom"
    return str(exe) if exe.exists() else (shutil.which("skyloom") or "skyloom")


def run_cli(args: list[str], cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([skyloom_exe(), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
                          check=False)


SUITE = """
format: skyloom-suite
name: cli-sub
version: 1
primary_metric: temporal_flickering
seeds: [0, 1]
generation: {num_frames: 8, width: 32, height: 32, fps: 8}
prompts:
  - {id: red, text: "a red ball bounces", category: colour}
  - {id: blue, text: "a blue ball rolls", category: motion}
metrics:
  - {name: temporal_flickering, settings: {protocol: all}}  # the variant that scores moving videos too
  - {name: warping_error, settings: {flow: dis}}
"""


def test_export_then_submit_folder_cli(tmp_path):
    suite = tmp_path / "cli-sub.yaml"
    suite.write_text(SUITE)
    r = run_cli(["eval", "export", "--suite", str(suite), "--out", str(tmp_path / "kit")])
    assert r.returncode == 0, r.stderr
    items = [json.loads(x) for x in (tmp_path / "kit" / "items.jsonl").read_text().splitlines()]
    assert [i["item_id"] for i in items] == ["red-s0", "red-s1", "blue-s0", "blue-s1"]
    sub = tmp_path / "sub"
    sub.mkdir()
    rng = np.random.default_rng(0)
    for it in items[:3]:  # blue-s1 missing
        write_video(sub / f"{it['item_id']}.mp4", rng.integers(0, 255, (it["frames"], 48, 48, 3), dtype=np.uint8),
                    fps=it["fps"])
    write_video(sub / "red-s0.mp4", np.zeros((4, 32, 32, 3), np.uint8), fps=8)  # too short
    db = tmp_path / "res.sqlite"
    r = run_cli(["eval", "--suite", str(suite), "--videos", str(sub), "--name", "ext", "--meta", "who=ada",
                 "--meta", "model=m", "--db", str(db), "--out", str(tmp_path / "out")])
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "blue-s1" in r.stdout and "missing" in r.stdout and "too short: 4" in r.stdout  # the check: stdout
    assert "resized from 48x48 to 32x32" in r.stdout
    lb = run_cli(["leaderboard", "--db", str(db), "--format", "json"])
    assert lb.returncode == 0, lb.stderr
    rows = json.loads(lb.stdout)["cli-sub"]["rows"]
    assert rows[0]["kind"] == "submission" and rows[0]["meta"]["who"] == "ada"
    assert rows[0]["n"] == 4 and rows[0]["n_scored"] == 2 and rows[0]["coverage"] == "2/4"  # failures count in n
    # bad input: clear errors, no traceback
    r = run_cli(["eval", "--suite", str(suite), "--videos", str(tmp_path / "nope"), "--name", "x", "--db", str(db)])
    assert r.returncode != 0 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(["eval", "--suite", str(suite), "--videos", str(sub), "--db", str(db)])
    assert r.returncode != 0 and "--name" in r.stderr
    r = run_cli(["eval", "--suite", str(suite), "--videos", str(sub), "--name", "x", "--mismatch", "stretch",
                 "--db", str(db)])
    assert r.returncode != 0 and "resize, refuse" in r.stderr


def test_loader_function_cli(tmp_path):
    """docs/eval.md way 3: any module:function loader, through the installed executable."""
    from tests.eval import fakes

    suite = tmp_path / "cli-sub.yaml"
    suite.write_text(SUITE)
    ck = fakes.make_checkpoint(tmp_path / "runs", "mine", 5)
    r = run_cli(["eval", "--suite", str(suite), "--ckpt", str(ck), "--set", f"pipeline_loader={fakes.LOADER}",
                 "--db", str(tmp_path / "r.sqlite"), "--executor", "local", "--json"])
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)["evals"][0]
    assert ev["status"] == "complete" and ev["generated"] == 4 and ev["scores"]["temporal_flickering"] > 0


def test_the_ways_onto_the_boards_each_make_their_own_entry(tmp_path):
    """docs/eval.md: a folder of videos (way 1) and a loader function on weights that are no skyloom checkpoint
    (way 3) land on one board as two entries with their own names; the loader's entry has no run or step, so the
    Training view never plots it as a run's (issue 27: way 3 used to need a skyloom checkpoint)."""
    from tests.eval import fakes

    suite = tmp_path / "cli-sub.yaml"
    suite.write_text(SUITE)
    weights = tmp_path / "their-weights"  # a plain folder that only the user's loader understands
    weights.mkdir()
    (weights / "fake.json").write_text("{}")
    db = tmp_path / "r.sqlite"
    r = run_cli(["eval", "--suite", str(suite), "--ckpt", str(weights), "--set", f"pipeline_loader={fakes.LOADER}",
                 "--db", str(db), "--out", str(tmp_path / "out"), "--executor", "local", "--json"])
    assert r.returncode == 0, r.stderr
    (ev,) = json.loads(r.stdout)["evals"]
    assert ev["status"] == "complete" and ev["generated"] == 4
    assert ev["checkpoint_name"] == f"their-weights ({fakes.LOADER})"
    vids = tmp_path / "sub"
    shutil.copytree(tmp_path / "out" / "cli-sub" / ev["eval_id"] / "videos", vids)
    r = run_cli(["eval", "--suite", str(suite), "--videos", str(vids), "--name", "their-videos", "--db", str(db),
                 "--out", str(tmp_path / "out")])
    assert r.returncode == 0, r.stderr
    lb = run_cli(["leaderboard", "--db", str(db), "--format", "json"])
    assert lb.returncode == 0, lb.stderr
    rows = {r["checkpoint_name"]: r for r in json.loads(lb.stdout)["cli-sub"]["rows"]}
    assert set(rows) == {f"their-weights ({fakes.LOADER})", "their-videos"}
    mine = rows[f"their-weights ({fakes.LOADER})"]
    assert mine["kind"] == "model" and mine["run_name"] is None and mine["step"] is None
    assert rows["their-videos"]["kind"] == "submission"
