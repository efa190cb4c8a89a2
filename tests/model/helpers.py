"""Tiny corpora and configs shared by the model tests."""

from __future__ import annotations

from pathlib import Path

from skyloom.corpus import Caption, ClipRecord, Corpus
from skyloom.fsutil import sha256_file
from skyloom.model.config import Bucket, DataConfig, DiTConfig, OptimConfig, TextConfig, TrainConfig
from skyloom.video import write_video
from tests.conftest import moving_square_video

COLOURS = {"red": (255, 40, 40), "green": (40, 220, 40), "blue": (40, 40, 255)}


def make_square_corpus(root: Path, n: int = 6, T: int = 8, size: int = 16, captions: bool = True,
                       colours: dict[str, tuple[int, int, int]] | None = None, caption: str | None = None) -> Corpus:
    """Coloured squares moving right (``colours``: name -> RGB, default :data:`COLOURS`); caption
    'a <colour> square moves right', or ``caption`` for every clip."""
    c = Corpus.create(root)
    recs = []
    colours = colours or COLOURS
    names = list(colours)
    for i in range(n):
        name = names[i % len(names)]
        v = moving_square_video(T=T, H=size, W=size, colour=colours[name], seed=i)
        cid = f"sq{i:03d}"
        p = c.clip_path(cid)
        write_video(p, v, fps=8)
        caps = (Caption("test", "short", caption or f"a {name} square moves right"),) if captions else ()
        recs.append(ClipRecord(id=cid, path=f"clips/{cid}.mp4", source_kind="synthetic", duration_s=T / 8, fps=8.0,
                               width=size, height=size, num_frames=T, license_id="CC0-1.0",
                               source_url=f"skyloom://test/{i}", author="skyloom", attribution="",
                               sha256=sha256_file(p),
                               captions=caps))
    c.append(recs)
    return c


def tiny_cfg(steps: int = 6, **kw) -> TrainConfig:
    base = dict(steps=steps, log_every=1, ckpt_every=1000, ema_decay=0.9, num_threads=0,
                dit=DiTConfig(dim=32, depth=2, heads=2, text_dim=32, patch=(1, 4, 4)),
                text=TextConfig(dim=32, depth=1, heads=2, max_length=12, vocab_size=1024),
                data=DataConfig(buckets=(Bucket(16, 16, 8, 4),)),
                optim=OptimConfig(lr=2e-3, warmup_steps=1))
    base.update(kw)
    return TrainConfig(**base)
