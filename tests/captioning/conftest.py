"""Captioning fixtures: small corpora with synthetic (ground truth) and licensed clips."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from skyloom.captioning.fake_gt import make_gt
from skyloom.corpus import ClipRecord, Corpus
from skyloom.video import write_video
from tests.conftest import moving_square_video


def add_clip(corpus: Corpus, cid: str, frames: np.ndarray, kind: str, gt: dict | None = None, fps: float = 8.0) -> None:
    path = corpus.clip_path(cid)
    write_video(path, frames, fps=fps)
    gt_path = corpus.write_ground_truth(cid, gt) if gt is not None else None
    corpus.append([ClipRecord(
        id=cid, path=f"clips/{cid}.mp4", source_kind=kind, duration_s=len(frames) / fps, fps=fps,
        width=frames.shape[2], height=frames.shape[1], num_frames=len(frames),
        license_id="CC0-1.0" if kind == "synthetic" else "CC-BY-4.0", source_url=f"test://{cid}", author="test",
        attribution="", sha256=hashlib.sha256(path.read_bytes()).hexdigest(), gt_path=gt_path)])


def make_mixed_corpus(root, n_syn: int = 4, n_lic: int = 2) -> Corpus:
    c = Corpus.create(root)
    for i in range(n_syn):
        add_clip(c, f"syn-{i}", moving_square_video(T=8, H=32, W=32, seed=i), "synthetic", gt=make_gt(i))
    for i in range(n_lic):
        add_clip(c, f"lic-{i}", moving_square_video(T=8, H=32, W=32, colour=(40, 200, 40), seed=10 + i), "licensed")
    return c


@pytest.fixture
def mixed_corpus(tmp_path) -> Corpus:
    return make_mixed_corpus(tmp_path / "corpus")
