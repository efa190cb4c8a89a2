"""In-domain evaluator: a small video-text contrastive model trained on a corpus, used as a
CLIP-like feature extractor when pretrained CLIP/I3D weights are not at hand.

Architecture: open_clip's ``CLIP`` (a tiny ViT image tower and a text transformer with the
bundled BPE tokenizer; Radford et al. 2021), randomly initialised, plus a one-layer temporal
transformer over the per-frame image embeddings (CLIP4Clip's "seqTransf" pooling, Luo et al.
2021), so that frame embeddings see their neighbours and motion ("bounces" vs "rolls") is
visible. The training logit of clip ``i`` and caption ``j`` is exactly CLIPSIM::

    s_ij = mean_t cos(e_it, u_j)        (e_it: contextual embedding of frame t, u_j: caption)

with the symmetric InfoNCE loss on ``exp(τ) · s`` (learned temperature), so the number the
``clipsim`` metric reports is the quantity the model was trained to rank.

As an extractor (``indomain:PATH`` in suites, or ``load_evaluator(PATH)``):
``encode_frames(frames (T, H, W, 3))`` treats the frames as *one clip in temporal order* and
returns contextual per-frame embeddings (``sequence_frames = True``; the feature cache keys
whole sequences), ``encode_videos`` the L2-normalised mean of those, ``encode_text`` the
caption embeddings. Its ``name`` is ``indomain:<abs path>`` and ``weights`` the sha256 of
``skyloom.model.safetensors``, so every number it produces is labelled with it.

Folder: ``OUT/config.json`` (EvaluatorConfig + corpus + training summary),
``OUT/model.safetensors``, ``OUT/heldout.json`` (caption-ranking accuracy on held-out clips).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skyloom.colours import BALL_COLOURS, CAPTION_COLOURS

logger = logging.getLogger(__name__)

FORMAT = "skyloom-indomain-evaluator"
# Wrong-motion substitutions: every target is a common motion word of the corpus captions, so the
# corrupted caption is in the evaluator's vocabulary (an unknown word would be too easy a negative).
MOTIONS = {"bounces": "rolls", "bouncing": "rolling", "bounce": "roll", "rolls": "bounces", "rolling": "bouncing",
           "roll": "bounce", "falls": "rolls", "falling": "rolling", "fall": "roll", "dropped": "thrown",
           "thrown": "dropped", "slides": "bounces", "sliding": "bouncing", "rests": "bounces", "resting": "bouncing"}


@dataclass(frozen=True)
class EvaluatorConfig:
    """``skyloom eval train-evaluator`` settings (tiny by default: minutes on 2 CPU cores)."""

    frames: int = 8  # frames sampled uniformly per clip
    size: int = 32  # frame side after resizing
    embed_dim: int = 64
    width: int = 64  # vision and text widths
    layers: int = 2
    patch_size: int = 8
    head_width: int = 32
    context_length: int = 77  # open_clip default: dense captions need it (motion comes late)
    temporal_layers: int = 1
    steps: int = 300
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    seed: int = 0
    val_fraction: float = 0.15  # held out by clip id when the corpus has no val/test split
    max_clips: int = 4000
    hard_negatives: bool = True  # NegCLIP-style wrong-colour / wrong-motion captions as extra negatives
    # Frame differences (x_t - x_{t-1}) as 3 more input channels of the image tower, so every patch
    # sees where and which way something moved; without them held-out motion ranking was at chance.
    motion_input: bool = True
    threads: int = 1  # torch threads while training (0 = leave as is; 1 avoids thrashing on busy machines)


def _build(cfg: EvaluatorConfig, vocab_size: int = 49408):
    import open_clip
    import torch
    from torch import nn

    class VideoTextModel(nn.Module):
        """open_clip CLIP towers + a temporal transformer over frame embeddings."""

        def __init__(self) -> None:
            super().__init__()
            self.clip = open_clip.CLIP(
                cfg.embed_dim,
                {"image_size": cfg.size, "layers": cfg.layers, "width": cfg.width, "patch_size": cfg.patch_size,
                 "head_width": cfg.head_width},
                {"context_length": cfg.context_length, "vocab_size": vocab_size, "width": cfg.width,
                 "heads": max(1, cfg.width // cfg.head_width), "layers": cfg.layers})
            if cfg.motion_input:  # RGB + frame difference: 6 input channels for the patch embedding
                self.clip.visual.conv1 = nn.Conv2d(6, cfg.width, kernel_size=cfg.patch_size, stride=cfg.patch_size,
                                                   bias=False)
            self.pos = nn.Parameter(torch.zeros(cfg.frames, cfg.embed_dim))
            layer = nn.TransformerEncoderLayer(cfg.embed_dim, max(1, cfg.embed_dim // 32), 2 * cfg.embed_dim,
                                               dropout=0.0, batch_first=True, norm_first=True)
            self.temporal = nn.TransformerEncoder(layer, cfg.temporal_layers, enable_nested_tensor=False)

        def frame_embeddings(self, x: torch.Tensor) -> torch.Tensor:
            """x (B, T, 3, S, S) float -> L2-normalised contextual frame embeddings (B, T, D)."""
            B, T = x.shape[:2]
            if cfg.motion_input:
                d = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)  # (B, T, 3, S, S)
                x = torch.cat([x, d], dim=2)  # (B, T, 6, S, S)
            f = self.clip.encode_image(x.flatten(0, 1)).view(B, T, -1)  # (B, T, D)
            pos = self.pos if T == self.pos.shape[0] else nn.functional.interpolate(
                self.pos.T[None], size=T, mode="linear", align_corners=True)[0].T  # (T, D)
            f = f + self.temporal(f + pos)  # residual: per-frame content + temporal context
            return nn.functional.normalize(f, dim=-1)

        def text_embeddings(self, tokens: torch.Tensor) -> torch.Tensor:
            return nn.functional.normalize(self.clip.encode_text(tokens), dim=-1)  # (N, D)

    return VideoTextModel()


def _preprocess(frames: np.ndarray, size: int):
    """uint8 (..., H, W, 3) -> float tensor (..., 3, size, size) in [-1, 1]."""
    import cv2
    import torch

    f = np.asarray(frames)
    lead = f.shape[:-3]
    flat = f.reshape(-1, *f.shape[-3:])
    if flat.shape[1:3] != (size, size):
        flat = np.stack([cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA) for x in flat])
    t = torch.from_numpy(np.ascontiguousarray(flat)).permute(0, 3, 1, 2).float() / 127.5 - 1  # (N, 3, S, S)
    return t.reshape(*lead, 3, size, size)


class Vocab:
    """open_clip's BPE token ids remapped to a compact vocabulary seen in the training captions.

    0 = padding, 1..K = known BPE ids, K+1 = unknown, K+2 = start, K+3 = end (the largest id, as
    open_clip's text pooling takes the argmax token as end of text). Keeps the text embedding
    (and the optimizer) small: a few hundred rows instead of 49,408.
    """

    def __init__(self, ids: list[int]) -> None:
        self.ids = sorted(set(int(i) for i in ids) - {0, 49406, 49407})
        k = len(self.ids)
        self.table = np.full(49408, k + 1, np.int64)
        self.table[0] = 0
        self.table[self.ids] = np.arange(1, k + 1)
        self.table[49406], self.table[49407] = k + 2, k + 3
        self.size = k + 4

    @classmethod
    def from_texts(cls, texts: list[str], context_length: int) -> Vocab:
        import open_clip

        toks = open_clip.tokenize([t.lower() for t in texts], context_length=context_length)
        return cls(np.unique(toks.numpy()).tolist())

    def encode(self, texts: list[str], context_length: int):
        import open_clip
        import torch

        toks = open_clip.tokenize([t.lower() for t in texts], context_length=context_length).numpy()  # (N, L)
        return torch.from_numpy(self.table[toks])  # (N, L)


# -- data -------------------------------------------------------------------------------------
def _clip_frames(corpus: Any, rec: Any, cfg: EvaluatorConfig) -> np.ndarray:
    from skyloom.video import sample_indices

    v = corpus.read_clip(rec.id, size=(cfg.size, cfg.size))  # (T, S, S, 3)
    return v[sample_indices(len(v), cfg.frames, "uniform")]  # (frames, S, S, 3)


def _load_corpus(path: str, cfg: EvaluatorConfig) -> tuple[list, list, Any]:
    from skyloom.corpus import Corpus

    corpus = Corpus(path)
    recs = [r for r in corpus.records() if r.captions][: cfg.max_clips]
    if len(recs) < 8:
        raise ValueError(f"corpus {path}: {len(recs)} captioned clip(s); the evaluator needs at least 8 "
                         "(run `skyloom caption` first)")
    held = [r for r in recs if r.split in ("val", "test")]
    if not held:
        from skyloom.corpus import assign_split

        held = [r for r in recs if assign_split(r.id, cfg.val_fraction, salt="evaluator") == "val"]
    held_ids = {r.id for r in held}
    train = [r for r in recs if r.id not in held_ids]
    return train, held, corpus


def _captions(rec: Any) -> list[str]:
    return [c.text for c in rec.captions if c.text and c.text.strip()]


# -- training ---------------------------------------------------------------------------------
def train_evaluator(corpus: str, out: str, cfg: EvaluatorConfig | None = None) -> dict[str, Any]:
    """Train on a captioned corpus's clips; write the evaluator folder; return a summary.

    Raises:
        ValueError: fewer than 8 captioned clips.
    """
    import torch

    cfg = cfg or EvaluatorConfig()
    t0 = time.perf_counter()
    old_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(corpus, out, cfg, t0)
    finally:
        torch.set_num_threads(old_threads)


def _train(corpus: str, out: str, cfg: EvaluatorConfig, t0: float) -> dict[str, Any]:
    import torch

    from skyloom.config import save_resolved, to_dict
    from skyloom.fsutil import atomic_write_json, sha256_file
    from skyloom.video import VideoError

    train, held, c = _load_corpus(corpus, cfg)
    clips, caps, skipped = [], [], []
    for r in train:
        try:
            clips.append(_clip_frames(c, r, cfg))
            caps.append(_captions(r))
        except VideoError as e:
            skipped.append({"id": r.id, "reason": str(e)})
    x_all = _preprocess(np.stack(clips), cfg.size)  # (N, F, 3, S, S)
    all_caps = [t for cs in caps for t in cs]
    vocab = Vocab.from_texts(all_caps + [t for _, t in _hard_negatives(all_caps, 0)], cfg.context_length)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # parameter init of open_clip layers
    model = _build(cfg, vocab.size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    rng = np.random.default_rng(cfg.seed)
    n = len(clips)
    losses = []
    model.train()
    for step in range(cfg.steps):
        idx = torch.randperm(n, generator=gen)[: min(cfg.batch_size, n)].numpy()
        texts = [caps[i][int(rng.integers(len(caps[i])))] for i in idx]
        e = model.frame_embeddings(x_all[idx])  # (B, F, D)
        u = model.text_embeddings(vocab.encode(texts, cfg.context_length))  # (B, D)
        sim = torch.einsum("bfd,cd->bc", e, u) / e.shape[1]  # (B, B): mean_t cos = CLIPSIM
        logits = model.clip.logit_scale.exp().clamp(max=100) * sim
        same = torch.tensor([[a == b for b in texts] for a in texts], dtype=torch.float32)  # duplicate captions
        target = same / same.sum(1, keepdim=True)
        v2t, v2t_target = logits, target
        negs = _hard_negatives(texts, step) if cfg.hard_negatives else []
        if negs:  # NegCLIP: each clip's own caption with a wrong colour / motion as extra negatives
            un = model.text_embeddings(vocab.encode([t for _, t in negs], cfg.context_length))  # (M, D)
            sim_n = torch.einsum("bfd,md->bm", e, un) / e.shape[1]  # (B, M)
            own = torch.zeros(len(texts), len(negs), dtype=torch.bool)
            own[[i for i, _ in negs], list(range(len(negs)))] = True
            # other clips' negatives are masked with a finite -1e4 (exp = 0): -inf would make the soft-target
            # cross-entropy 0 * -inf = nan (the gradients were finite, the logged loss was not)
            neg_logits = (model.clip.logit_scale.exp().clamp(max=100) * sim_n).masked_fill(~own, -1e4)
            v2t = torch.cat([logits, neg_logits], dim=1)  # (B, B + M)
            v2t_target = torch.cat([target, torch.zeros(len(texts), len(negs))], dim=1)
        loss = (torch.nn.functional.cross_entropy(v2t, v2t_target) +
                torch.nn.functional.cross_entropy(logits.T, target.T)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if step % 100 == 0 or step == cfg.steps - 1:
            logger.info("evaluator step %d/%d loss %.3f", step + 1, cfg.steps, losses[-1])
    model.eval()
    outp = Path(out)
    outp.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    from skyloom.fsutil import atomic_path

    with atomic_path(outp / "model.safetensors") as tmp:  # the umask's mode, not safetensors' 0600
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    summary = {"format": FORMAT, "version": 1, "config": to_dict(cfg), "corpus": str(Path(corpus).resolve()),
               "vocab": vocab.ids, "train_clips": n, "heldout_clips": len(held), "skipped": skipped,
               "final_loss": float(np.mean(losses[-20:])),
               "seconds": round(time.perf_counter() - t0, 1), "weights": sha256_file(outp / "model.safetensors")}
    atomic_write_json(outp / "config.json", summary)
    save_resolved(cfg, outp / "evaluator.yaml")
    ev = load_evaluator(outp)
    report = heldout_report(ev, [(_clip_frames(c, r, cfg), _captions(r)[0]) for r in held]) if held else {}
    atomic_write_json(outp / "heldout.json", report)
    if report:
        write_heldout_svg(report, outp / "heldout.svg")
    summary.update(path=str(outp.resolve()), heldout_accuracy=report.get("accuracy_any", float("nan")), heldout=report)
    return summary


# -- extractor --------------------------------------------------------------------------------
class InDomainExtractor:
    """A trained in-domain evaluator as a CLIP-like extractor (see the module docstring)."""

    kind = "video+frame"
    sequence_frames = True

    def __init__(self, path: str | os.PathLike, device: str = "cpu") -> None:
        import torch
        from safetensors.torch import load_file

        from skyloom.config import from_dict

        p = Path(path).expanduser().resolve()
        meta_path = p / "config.json"
        if not meta_path.exists() or not (p / "model.safetensors").exists():
            raise FileNotFoundError(f"{p}: not an in-domain evaluator folder (needs config.json and model.safetensors; "
                                    "train one with `skyloom eval train-evaluator CORPUS --out DIR`)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path}: format is {meta.get('format')!r}, expected {FORMAT!r}")
        # folders written before these options existed were trained without them
        self.cfg = from_dict(EvaluatorConfig, {"motion_input": False, "hard_negatives": False, **meta["config"]})
        self.vocab = Vocab(meta["vocab"])
        self.model = _build(self.cfg, self.vocab.size)
        self.model.load_state_dict(load_file(str(p / "model.safetensors")))
        self.model.eval().to(device)
        self.device = torch.device(device)
        self.path = str(p)
        self.name = f"indomain:{p}"
        self.weights = meta.get("weights") or "unknown"
        self.dim = self.cfg.embed_dim
        self.preprocessing = {"resize": "cv2 INTER_AREA", "size": [self.cfg.size, self.cfg.size], "range": [-1, 1],
                              "frames": "one clip in temporal order (contextual embeddings)"
                              + (f"; {self.cfg.frames} uniformly sampled, each frame takes the nearest one's embedding"
                                 if self.cfg.motion_input else ""),
                              "motion_input": self.cfg.motion_input,
                              "trained_frames": self.cfg.frames, "corpus": meta.get("corpus")}

    def identity(self) -> dict[str, Any]:
        return {"extractor": self.name, "weights": self.weights, "preprocessing": dict(self.preprocessing)}

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (T, H, W, 3), one clip -> contextual frame embeddings (T, D), L2-normalised."""
        import torch

        from skyloom.video import sample_indices

        f = np.asarray(frames)
        if f.ndim != 4 or f.shape[-1] != 3:
            raise ValueError(f"frames: expected uint8 (T, H, W, 3), got shape {f.shape}")
        T, n = len(f), self.cfg.frames
        # With frame differences the model must see frames as far apart as in training: the clip is
        # sampled like a training clip, and each frame gets the embedding of the nearest sampled one.
        idx = sample_indices(T, n, "uniform") if self.cfg.motion_input and T > n else np.arange(T)
        with torch.no_grad():
            e = self.model.frame_embeddings(_preprocess(f[idx], self.cfg.size)[None].to(self.device))[0]  # (n, D)
        e = e.cpu().numpy().astype(np.float64)
        return e[np.abs(np.arange(T)[:, None] - idx[None]).argmin(1)] if len(idx) != T else e  # (T, D)

    def encode_videos(self, videos: np.ndarray) -> np.ndarray:
        """uint8 (N, T, H, W, 3) -> (N, D): normalised mean of the contextual frame embeddings."""
        out = [self.encode_frames(v).mean(0) for v in np.asarray(videos)]
        v = np.asarray(out, np.float64).reshape(len(out), self.dim)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.no_grad():
            toks = self.vocab.encode(list(texts), self.cfg.context_length).to(self.device)  # (N, L)
            return self.model.text_embeddings(toks).cpu().numpy().astype(np.float64)

    def clipsim(self, video: np.ndarray, text: str) -> float:
        """mean_t cos(frame_t, text): exactly what the ``clipsim`` metric computes with this extractor."""
        return float((self.encode_frames(video) @ self.encode_text([text])[0]).mean())


def load_evaluator(path: str | os.PathLike, device: str = "cpu") -> InDomainExtractor:
    """Load an evaluator folder as an extractor named ``indomain:<abs path>``.

    Not an ``EXTRACTORS`` entry: :func:`skyloom.eval.features.base.get_extractor` resolves that name
    by reading the folder again on each use (so a retrained evaluator is never stale), and the
    folder is its only option.
    """
    return InDomainExtractor(path, device)


def _hard_negatives(texts: list[str], step: int) -> list[tuple[int, str]]:
    """(index of the clip, its caption with a wrong colour or a wrong motion) pairs."""
    out = []
    for i, t in enumerate(texts):
        for bad in (corrupt_colour(t, seed=step * 100003 + i), corrupt_motion(t)):
            if bad is not None and bad.lower() != t.lower():
                out.append((i, bad))
    return out


# -- held-out check: does CLIPSIM prefer the true caption? ------------------------------------
def corrupt_colour(caption: str, seed: int = 0) -> str | None:
    """The caption with every colour word swapped for another colour (None if it has none).

    Colours are the one vocabulary's (:mod:`skyloom.colours`): every caption colour it names, each
    replaced by a ball colour it does not name (any other caption colour when it names all four).
    """
    words = re.findall(r"[a-z]+", caption.lower())
    present = [c for c in CAPTION_COLOURS if c in words]
    if not present:
        return None
    rng = np.random.default_rng(seed)
    others = [c for c in BALL_COLOURS if c not in present] or [c for c in CAPTION_COLOURS if c not in present]
    out = caption
    for c in present:
        out = re.sub(rf"\b{c}\b", str(rng.choice(others)), out, flags=re.IGNORECASE)
    return out


def corrupt_motion(caption: str) -> str | None:
    """The caption with motion verbs swapped (bounces <-> rolls, falls -> slides, ...), None if none."""
    pattern = re.compile(r"\b(" + "|".join(MOTIONS) + r")\b", flags=re.IGNORECASE)
    out, n = pattern.subn(lambda m: MOTIONS[m.group(1).lower()], caption)  # one pass: no swapping back
    return out if n else None


def heldout_report(ex: InDomainExtractor, pairs: list[tuple[np.ndarray, str]]) -> dict[str, Any]:
    """Fraction of held-out clips whose true caption gets a higher CLIPSIM than the same caption
    with a wrong colour / a wrong motion (ties count as failures)."""
    wins: dict[str, list[bool]] = {"colour": [], "motion": []}
    margins: dict[str, list[float]] = {"colour": [], "motion": []}
    for i, (frames, cap) in enumerate(pairs):
        true = ex.clipsim(frames, cap)
        for kind, bad in (("colour", corrupt_colour(cap, seed=i)), ("motion", corrupt_motion(cap))):
            if bad is None or bad.lower() == cap.lower():
                continue
            m = true - ex.clipsim(frames, bad)
            wins[kind].append(m > 0)
            margins[kind].append(m)
    rep: dict[str, Any] = {"extractor": ex.name, "weights": ex.weights, "clips": len(pairs)}
    for k in wins:
        rep[f"n_{k}"] = len(wins[k])
        rep[f"accuracy_{k}"] = float(np.mean(wins[k])) if wins[k] else math.nan
        rep[f"mean_margin_{k}"] = float(np.mean(margins[k])) if margins[k] else math.nan
    allw = wins["colour"] + wins["motion"]
    rep["accuracy_any"] = float(np.mean(allw)) if allw else math.nan
    return rep


def write_heldout_svg(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """A bar chart of the held-out caption-ranking accuracies (chance = 0.5), as a small SVG."""
    from skyloom.fsutil import atomic_write_text

    W, H, x0, y0, bh = 460, 200, 150, 40, 120
    bars = [(f"wrong colour (n={report.get('n_colour', 0)})", report.get("accuracy_colour")),
            (f"wrong motion (n={report.get('n_motion', 0)})", report.get("accuracy_motion"))]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
             'font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="13">In-domain evaluator: true caption ranked '
             f'above a corrupted one ({report.get("clips", 0)} held-out clips)</text>']
    for i, (label, acc) in enumerate(bars):
        y = y0 + i * 60
        a = 0.0 if acc is None or math.isnan(acc) else float(acc)
        parts += [f'<text x="{x0 - 8}" y="{y + 22}" text-anchor="end">{label}</text>',
                  f'<rect x="{x0}" y="{y}" width="{a * 280:.1f}" height="34" fill="#4a7bd0"/>',
                  f'<text x="{x0 + a * 280 + 6:.1f}" y="{y + 22}">{a:.2f}</text>']
    parts += [f'<line x1="{x0 + 140}" y1="{y0 - 6}" x2="{x0 + 140}" y2="{y0 + bh}" '
              'stroke="#c33" stroke-dasharray="4 3"/>',
              f'<text x="{x0 + 140}" y="{y0 + bh + 14}" text-anchor="middle" fill="#c33">chance 0.5</text>',
              f'<line x1="{x0}" y1="{y0 - 6}" x2="{x0}" y2="{y0 + bh}" stroke="black"/>', "</svg>"]
    return atomic_write_text(path, "\n".join(parts) + "\n")
