"""Evaluate local diffusers video pipelines: ``skyloom eval --ckpt diffusers:PATH``.

:func:`load_diffusers_pipeline` loads a pipeline folder saved with ``save_pretrained``
(``model_index.json`` + one folder per component) with ``local_files_only=True``: nothing is
ever downloaded; a folder that misses a file fails to load with diffusers' own message. The
pipeline goes to the device given (``--device cuda``) in the dtype given (``SKYLOOM_DIFFUSERS_DTYPE``,
default float32 on CPU and bfloat16 on CUDA).

:class:`DiffusersVideoPipeline` adapts it to the contract of skyloom's generator workers
(:mod:`skyloom.eval.harness.generate`): ``generate(prompts, seeds, cond_frames=..., steps, guidance,
num_frames, width, height) -> uint8 (B, T, H, W, 3)``, one call per item with
``torch.Generator(device).manual_seed(seed)``, so a video depends only on its prompt and seed:

- the suite's ``steps``/``guidance`` become ``num_inference_steps``/``guidance_scale`` (unset:
  the pipeline's defaults);
- frame counts and sizes a video VAE cannot produce are rounded *up* to the next it can
  (``k * temporal_factor + 1`` frames, multiples of the spatial factor times the transformer's
  patch), then the video is trimmed to the first ``num_frames`` and resized (``INTER_AREA``) to
  the suite's size; both are recorded in :meth:`~DiffusersVideoPipeline.settings`;
- items with given frames (i2v, extension, physics continuation) need a pipeline whose
  ``__call__`` takes an ``image`` (image-to-video classes: ``WanImageToVideoPipeline``,
  ``LTXImageToVideoPipeline``, ``CogVideoXImageToVideoPipeline``, ...): it gets the first given
  frame, and the given frames replace the first generated ones (as skyloom's own pipeline
  returns them). A text-only class fails those items with a reason naming the class.

:func:`make_tiny_pipeline` builds a randomly initialised, few-kilobyte ``WanPipeline`` (tokenizer
made offline from the suites' words; ``skyloom eval tiny-diffusers OUT``) to check this path end
to end without weights.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

DTYPES = ("float32", "float16", "bfloat16")
DEFAULT_FPS = {"Wan": 16.0, "LTX": 24.0, "CogVideoX": 8.0, "HunyuanVideo": 24.0, "Mochi": 30.0}


def _dtype(device: str) -> Any:
    import torch

    name = os.environ.get("SKYLOOM_DIFFUSERS_DTYPE") or ("bfloat16" if str(device).startswith("cuda") else "float32")
    if name not in DTYPES:
        raise ValueError(f"SKYLOOM_DIFFUSERS_DTYPE={name!r} is not one of: {', '.join(DTYPES)}")
    return getattr(torch, name)


def load_diffusers_pipeline(path: str | os.PathLike, device: str = "cpu") -> DiffusersVideoPipeline:
    """Load a local diffusers video pipeline folder (never downloads); see the module docstring.

    Raises:
        ImportError: diffusers is not installed (``pip install 'skyloom[diffusers]'``).
        FileNotFoundError: no ``model_index.json`` in ``path``.
        ValueError: the pipeline is not a video pipeline (its ``__call__`` takes no ``num_frames``).
    """
    try:
        import diffusers
    except ImportError as e:
        raise ImportError("--ckpt diffusers:PATH needs diffusers: pip install 'skyloom[diffusers]'") from e
    folder = Path(path).expanduser()
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"{folder}: not a diffusers pipeline folder (no model_index.json)")
    pipe = diffusers.DiffusionPipeline.from_pretrained(str(folder), local_files_only=True, dtype=_dtype(device))
    if "num_frames" not in inspect.signature(pipe.__call__).parameters:
        raise ValueError(f"{folder}: {type(pipe).__name__} is not a video pipeline (its __call__ takes no num_frames)")
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return DiffusersVideoPipeline(pipe, folder, device)


class DiffusersVideoPipeline:
    """A diffusers pipeline behind skyloom's generator contract (module docstring)."""

    def __init__(self, pipe: Any, folder: Path, device: str = "cpu") -> None:
        self.pipe, self.folder, self.device = pipe, Path(folder), device
        cls = type(pipe).__name__
        self.name = f"diffusers/{cls}"
        params = inspect.signature(pipe.__call__).parameters
        self.takes_image = "image" in params
        self._defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
        self.num_frames = self._defaults.get("num_frames")
        self.height, self.width = self._defaults.get("height"), self._defaults.get("width")
        self.fps = next((v for k, v in DEFAULT_FPS.items() if cls.startswith(k)), 8.0)
        self.last_settings: dict[str, Any] = {}

    # -- geometry the VAE/transformer can make ----------------------------------------------
    def _factors(self) -> tuple[int, int]:
        """(temporal, spatial) multiples: frames ``k * t + 1``, sizes multiples of ``s``."""
        p = self.pipe
        t = getattr(p, "vae_scale_factor_temporal", None) or getattr(p, "vae_temporal_compression_ratio", None) or 1
        s = getattr(p, "vae_scale_factor_spatial", None) or getattr(p, "vae_spatial_compression_ratio", None) or 8
        patch = getattr(getattr(getattr(p, "transformer", None), "config", None), "patch_size", None) or 1
        if isinstance(patch, (list, tuple)):
            patch = patch[-1]
        return int(t), int(s) * int(patch)

    def native(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        """The smallest (frames, height, width) at least as large that the pipeline can generate."""
        t, s = self._factors()
        frames = num_frames if t <= 1 else math.ceil(max(num_frames - 1, 0) / t) * t + 1
        return frames, math.ceil(height / s) * s, math.ceil(width / s) * s

    def settings(self, steps: int | None = None, guidance: float | None = None) -> dict[str, Any]:
        return {"pipeline": type(self.pipe).__name__, "folder": str(self.folder), "steps": steps, "guidance": guidance,
                **self.last_settings}

    # -- generation -------------------------------------------------------------------------
    def generate(self, prompts: list[str], seeds: list[int], *, cond_frames: np.ndarray | None = None,
                 steps: int | None = None, guidance: float | None = None, num_frames: int | None = None,
                 width: int | None = None, height: int | None = None, fps: float | None = None) -> np.ndarray:
        """uint8 (B, T, H, W, 3), one pipeline call per item (see the module docstring)."""
        import torch

        if len(prompts) != len(seeds):
            raise ValueError(f"prompts ({len(prompts)}) and seeds ({len(seeds)}) must have the same length")
        if cond_frames is not None and not self.takes_image:
            raise ValueError(f"{type(self.pipe).__name__} is a text-to-video pipeline (its __call__ takes no image); "
                             "i2v, extension and physics items need an image-to-video pipeline folder")
        T = int(num_frames or self.num_frames or 16)
        H = int(height or (cond_frames.shape[2] if cond_frames is not None else None) or self.height)
        W = int(width or (cond_frames.shape[3] if cond_frames is not None else None) or self.width)
        nT, nH, nW = self.native(T, H, W)
        self.last_settings = {"requested": [T, H, W], "generated": [nT, nH, nW],
                              "trimmed": nT != T, "resized": (nH, nW) != (H, W)}
        kw: dict[str, Any] = {"num_frames": nT, "height": nH, "width": nW, "output_type": "np"}
        if steps is not None:
            kw["num_inference_steps"] = int(steps)
        if guidance is not None:
            kw["guidance_scale"] = float(guidance)
        out = []
        for i, (prompt, seed) in enumerate(zip(prompts, seeds)):
            gen = torch.Generator(device=self.device).manual_seed(int(seed))
            call = dict(kw)
            if cond_frames is not None:
                from PIL import Image

                call["image"] = Image.fromarray(_resize(cond_frames[i][:1], nW, nH)[0])
            with torch.no_grad():
                frames = self.pipe(prompt=prompt, generator=gen, **call).frames[0]
            v = _to_uint8(frames)[:T]  # (T, nH, nW, 3)
            v = _resize(v, W, H)
            if cond_frames is not None:
                k = cond_frames.shape[1]
                v[:k] = _resize(cond_frames[i], W, H)  # given frames are returned exactly as given
            out.append(v)
        return np.stack(out)  # (B, T, H, W, 3)


def _to_uint8(frames: Any) -> np.ndarray:
    """diffusers ``output_type="np"`` frames (float [0, 1], (T, H, W, 3)) -> uint8."""
    a = np.asarray(frames.float().cpu() if hasattr(frames, "float") else frames)
    if a.dtype == np.uint8:
        return a
    return (np.clip(a, 0, 1) * 255).round().astype(np.uint8)


def _resize(v: np.ndarray, width: int, height: int) -> np.ndarray:
    """:func:`skyloom.video.conform_clip` to ``height x width``, as a writable copy (given frames are pasted in)."""
    from skyloom.video import conform_clip

    return np.array(conform_clip(v, height=height, width=width))


# -- a tiny random pipeline, made offline ---------------------------------------------------------
def _offline_tokenizer(words: list[str]) -> Any:
    """A word-level fast tokenizer over ``words`` (T5's special tokens), built without any download."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for w in sorted(set(words)):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def make_tiny_pipeline(out: str | os.PathLike, words: list[str] | None = None, seed: int = 0) -> Path:
    """Save a randomly initialised tiny ``WanPipeline`` (T5 text encoder, offline tokenizer) to ``out``.

    Its videos are noise-like: it checks the diffusers path (loading, seeds, sizes, scoring), not
    a model. A few hundred kilobytes; generates a 9-frame 32x32 video in about a second on a CPU.
    """
    import re

    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    if words is None:
        from skyloom.eval.harness.suites import list_suites, load_suite

        words = []
        for name in list_suites():
            for p in load_suite(name, validate=False).prompts:
                words += re.findall(r"\w+|[^\w\s]", p.text.lower())
    tokenizer = _offline_tokenizer(words)
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=2,
                                           num_heads=4, relative_attention_num_buckets=8, pad_token_id=0,
                                           eos_token_id=1, decoder_start_token_id=0))
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                        in_channels=16, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32,
                                        num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                        rope_max_seq_len=32)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer, vae=vae,
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0))
    out = Path(out)
    pipe.save_pretrained(str(out))
    (out / "SKYLOOM_TINY.json").write_text(json.dumps({"what": "randomly initialised tiny WanPipeline for tests",
                                                       "seed": seed, "vocab": len(tokenizer)}) + "\n")
    return out
