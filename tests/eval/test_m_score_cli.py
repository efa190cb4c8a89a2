"""``skyloom eval score`` through typer: results JSON, skipped bad videos, clear errors."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from skyloom.eval.cli.score import score_videos
from skyloom.video import write_video
from tests.conftest import moving_square_video


def _app() -> typer.Typer:
    """The real `skyloom eval` group: its errors are mapped to exit codes by the root command."""
    from skyloom.cli import app

    return app


def _write(folder, n, colour=(255, 40, 40), T=16):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_video(folder / f"v{i}.mp4", moving_square_video(T, 32, 32, colour=colour, seed=i), fps=8)


def test_score_fvd_and_skips_broken(tmp_path):
    _write(tmp_path / "gen", 3)
    _write(tmp_path / "real", 3, colour=(40, 200, 40), T=20)
    (tmp_path / "gen" / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "fvd.json"
    r = CliRunner().invoke(_app(), ["eval", "score", "--metric", "fvd", "--videos", str(tmp_path / "gen"),
                                    "--reference", str(tmp_path / "real"), "--extractor", "pixels", "--json",
                                    "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["name"] == "fvd" and res["n"] == 3 and res["value"] > 0 and res["extractor"] == "pixels-8"
    assert [s["path"].endswith("broken.mp4") for s in res["details"]["skipped"]] == [True]


def test_score_clipsim_prompts_and_pixel_metric(tmp_path):
    _write(tmp_path / "gen", 2)
    r = CliRunner().invoke(_app(), ["eval", "score", "--metric", "temporal_flickering", "--videos",
                                    str(tmp_path / "gen" / "*.mp4")])
    assert r.exit_code == 2 and "static" in r.output, r.output  # VBench scores flickering on static videos only
    r = CliRunner().invoke(_app(), ["eval", "score", "--metric", "temporal_flickering", "--option", "protocol=all",
                                    "--videos", str(tmp_path / "gen" / "*.mp4"), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert set(res["per_item"]) == {"v0", "v1"} and 0.9 < res["value"] <= 1.0
    for args, msg in ((["--metric", "clipsim", "--videos", str(tmp_path / "gen")], "no weights"),
                      (["--metric", "warping_eror", "--videos", str(tmp_path / "gen")], "Did you mean 'warping_error'"),
                      (["--metric", "fvd", "--videos", str(tmp_path / "nothing")], "no videos")):
        r = CliRunner().invoke(_app(), ["eval", "score", *args])
        assert r.exit_code == 2, r.output  # one clean error line, not a traceback
        with pytest.raises((ValueError, FileNotFoundError), match=msg):
            score_videos(args[1], args[3])


def _skyloom() -> str:
    import shutil
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "skyloom"
    return str(exe) if exe.exists() else shutil.which("skyloom")


def test_installed_cli_dynamic_degree_and_static_flickering(tmp_path):
    """The installed executable: dynamic_degree on moving videos; flickering refuses them cleanly."""
    import subprocess

    _write(tmp_path / "gen", 2)
    r = subprocess.run([_skyloom(), "eval", "score", "--metric", "dynamic_degree", "--videos",
                        str(tmp_path / "gen"), "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["name"] == "dynamic_degree" and res["preprocessing"]["protocol"] == "vbench-opencv-dis"
    r = subprocess.run([_skyloom(), "eval", "score", "--metric", "temporal_flickering", "--videos",
                        str(tmp_path / "gen")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "static" in r.stderr and "Traceback" not in r.stderr


def test_dynamic_degree_reads_each_files_frame_rate(tmp_path):
    """A slow pan (1 px/frame, 64 px) filmed at 30 fps is dynamic, as VBench scores 30 fps clips (every 4th
    frame); the same frames declared 8 fps are not (issue 24: carphone and Big Buck Bunny came out static)."""
    from tests.eval.test_m_temporal import _textured

    slow = _textured(T=32, H=64, W=64, speed=1)
    for fps in (30, 8):
        (tmp_path / str(fps)).mkdir()
        write_video(tmp_path / str(fps) / "pan.mp4", slow, fps=fps, crf=0)
    res = {fps: score_videos("dynamic_degree", str(tmp_path / str(fps))) for fps in (30, 8)}
    assert {fps: r["value"] for fps, r in res.items()} == {30: 1.0, 8: 0.0}
    assert res[30]["preprocessing"]["fps"] == "each file's own"
    forced = score_videos("dynamic_degree", str(tmp_path / "8"), options={"fps": 30})  # --option fps=30 wins
    assert forced["value"] == 1.0


def test_ground_truth_not_in_the_skyloom_gt_format_is_a_user_error(tmp_path):
    """`--gt` files are checked with core's check_gt at the boundary: the installed CLI exits 2 with one
    line naming the file and the field, no traceback."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    _write(tmp_path / "gen", 1)
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "v0.json").write_text(json.dumps({"format": "something-else", "objects": [], "frames": []}))
    exe = shutil.which("skyloom", path=str(Path(sys.executable).parent))
    proc = subprocess.run([exe, "eval", "score", "--metric", "physics_trajectory", "--videos", str(tmp_path / "gen"),
                           "--reference", str(tmp_path / "gen"), "--gt", str(tmp_path / "gt")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "v0.json" in proc.stderr and "'format'" in proc.stderr, proc.stderr
