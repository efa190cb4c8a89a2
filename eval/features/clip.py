"""open_clip frame/text extractor for CLIPSIM, CLIP-Temp and the consistency metrics.

Default model ViT-B-32 (the usual CLIPSIM model). Weights come from a local file or open_clip's
cache, never from the network: a pretrained tag (``openai``, ``laion2b_s34b_b79k``, ...) is
resolved to the file open_clip would have downloaded (Hugging Face hub cache or
``~/.cache/clip``) and loaded from there; if it is absent the constructor fails and says where
to put it. ``random_init=True`` (tests) builds the architecture with seeded random weights and
labels the result ``"random-init"``; ``model_cfg`` builds a custom (e.g. shrunk) configuration.

Activation: OpenAI's CLIP weights were trained with QuickGELU (``x·σ(1.702x)``) and give other
embeddings under GELU. open_clip applies it for the ``openai`` tag only; skyloom also detects OpenAI
weights given as a *file* (:func:`needs_quick_gelu`: OpenAI's TorchScript release format, a file
whose sha256 is the one in open_clip's OpenAI URL for the model, an open_clip Hugging Face cache
path of a QuickGELU tag, or a ``-quickgelu`` model name); ``quick_gelu=True/False`` overrides it.
``preprocessing["activation"]`` records which was used and why.

Preprocessing (``preprocess=``, recorded in ``.preprocessing``):

* ``open_clip`` (default; CLIPSIM): open_clip's own evaluation transform applied to each frame as a
  PIL image (``open_clip.image_transform``: PIL bicubic resize of the shortest side, the long side
  truncated ``int(size·long/short)``, centre crop, the tag's mean/std) — the preprocessing
  open_clip users get.
* ``vbench`` (VBench background consistency): VBench's ``clip_transform`` on float frames in
  [0, 255]: torchvision ``Resize(size, bicubic, antialias=False)`` (long side truncated), ``CenterCrop``
  (offset rounded), ``/255`` (no clamp), OpenAI mean/std.

Example:
    >>> ex = OpenCLIPExtractor(CLIPConfig(random_init=True, model_cfg=TINY_VIT_B_32))  # doctest: +SKIP
    >>> ex.encode_text(["a red ball falls"]).shape                          # doctest: +SKIP
    (1, 32)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from skyloom.errors import InputNotFoundError, InvalidInputError
from skyloom.eval.features.base import RANDOM_INIT, FrameTextExtractor, weights_hash

log = logging.getLogger(__name__)

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

# ViT-B-32's family shrunk for tests: same layer types, tiny widths (random init only).
PREPROCESS = ("open_clip", "vbench")
TINY_VIT_B_32: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 32, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def cached_pretrained_file(model_name: str, tag: str, cache_dir: str | None = None) -> Path | None:
    """The local file open_clip would load for (model, tag), or None if not in a cache."""
    import open_clip
    from open_clip import pretrained as op

    cfg = op.get_pretrained_cfg(model_name, tag)
    if not cfg:
        known = open_clip.list_pretrained_tags_by_model(model_name)
        raise InvalidInputError(f"unknown pretrained tag {tag!r} for {model_name}; known: {', '.join(known)}")
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, _, fname = cfg["hf_hub"].partition("/")
        names = [fname] if fname else [op.HF_SAFE_WEIGHTS_NAME, op.HF_WEIGHTS_NAME]
        for name in names:
            hit = try_to_load_from_cache(repo, name, cache_dir=cache_dir)
            if isinstance(hit, str) and os.path.isfile(hit):
                return Path(hit)
    if cfg.get("url"):
        root = Path(cache_dir or os.path.expanduser("~/.cache/clip"))
        p = root / os.path.basename(cfg["url"])
        if p.is_file():
            return p
    return None


def needs_quick_gelu(model_name: str, path: str | os.PathLike) -> tuple[bool, str]:
    """Whether a weights *file* holds OpenAI's CLIP weights (trained with QuickGELU), and why.

    Yes for a ``-quickgelu`` model name, a TorchScript archive (the format OpenAI released: a zip with
    ``constants.pkl``), a file whose sha256 is the one in open_clip's OpenAI URL for ``model_name``,
    or a path inside open_clip's Hugging Face cache folder of a tag whose config says ``quick_gelu``.
    """
    import zipfile

    import open_clip
    from open_clip import pretrained as op

    if "quickgelu" in model_name.lower():
        return True, "model name"
    try:
        with zipfile.ZipFile(path) as z:
            if any(n.endswith("constants.pkl") for n in z.namelist()):
                return True, "TorchScript archive: OpenAI's release format"
    except (zipfile.BadZipFile, OSError):
        pass
    try:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
    except Exception:  # noqa: BLE001 - a custom architecture name: no registry entry
        tags = []
    sha = None
    for tag in tags:
        cfg = op.get_pretrained_cfg(model_name, tag) or {}
        if not cfg.get("quick_gelu"):
            continue
        hub = (cfg.get("hf_hub") or "").strip("/")
        if hub and hub.replace("/", "--") in str(Path(path).resolve()):
            return True, f"open_clip cache of {model_name}/{tag}"
        if cfg.get("url") and len(parts := cfg["url"].split("/")) > 1:
            sha = sha or weights_hash(path)
            if sha in parts:
                return True, f"sha256 of OpenAI's {model_name}/{tag} release"
    return False, "weights file not recognised as OpenAI's"


@dataclass(frozen=True)
class CLIPConfig:
    """Options of the ``clip`` extractor."""

    model_name: str = "ViT-B-32"  # open_clip architecture
    pretrained: str | os.PathLike | None = None  # a weights file, or an open_clip tag found in the cache
    random_init: bool = False  # seeded random weights when pretrained is None (tests only)
    model_cfg: dict[str, Any] | None = None  # custom architecture (embed_dim, vision_cfg, text_cfg)
    seed: int = 0  # seed of the random init
    device: str = "cpu"
    batch_size: int = 32
    cache_dir: str | None = None  # where to look for tagged weights (open_clip's cache_dir)
    preprocess: str = "open_clip"  # "open_clip" (open_clip's transform) or "vbench" (VBench's clip_transform)
    quick_gelu: bool | None = None  # force QuickGELU / GELU; None: detect OpenAI weights (needs_quick_gelu)


class OpenCLIPExtractor(FrameTextExtractor):
    """CLIP image and text embeddings (L2-normalised) from open_clip (options: :class:`CLIPConfig`)."""

    config_class = CLIPConfig

    def __init__(self, config: CLIPConfig | None = None) -> None:
        import open_clip

        c = config or CLIPConfig()
        model_name, pretrained, random_init, model_cfg, seed = (c.model_name, c.pretrained, c.random_init,
                                                                c.model_cfg, c.seed)
        device, batch_size, cache_dir, preprocess = c.device, c.batch_size, c.cache_dir, c.preprocess
        quick_gelu = c.quick_gelu

        if preprocess not in PREPROCESS:
            raise InvalidInputError(f"preprocess must be one of {', '.join(PREPROCESS)}; got {preprocess!r}")
        self.preprocess = preprocess

        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        mean, std, tag = OPENAI_MEAN, OPENAI_STD, None
        activation = "GELU (random init)"
        if pretrained is None:
            if not random_init:
                raise InputNotFoundError(
                    f"CLIP {model_name}: no weights given. Pass pretrained=PATH (a checkpoint file) or a tag already "
                    "in open_clip's cache (e.g. 'openai'); skyloom never downloads. random_init=True for tests.")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                if model_cfg is not None:
                    cfg = dict(model_cfg)
                    self.model = open_clip.CLIP(cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"])
                else:
                    self.model = open_clip.create_model(model_name, pretrained=None)
            self.weights = RANDOM_INIT
            path = None
        else:
            p = Path(pretrained).expanduser()
            if p.is_file():
                path = p
            elif os.sep in str(pretrained) or str(pretrained).endswith((".pt", ".bin", ".safetensors")):
                raise InputNotFoundError(f"CLIP weights file {p} not found")
            else:
                tag = str(pretrained)
                path = cached_pretrained_file(model_name, tag, cache_dir)
                if path is None:
                    raise InputNotFoundError(
                        f"CLIP {model_name}/{tag} is not in open_clip's cache (HF hub cache or ~/.cache/clip) and "
                        "skyloom never downloads; fetch it once elsewhere and pass pretrained=PATH")
                from open_clip import pretrained as op

                pcfg = op.get_pretrained_cfg(model_name, tag)
                mean, std = pcfg.get("mean", mean), pcfg.get("std", std)
            if quick_gelu is not None:
                quick, why = bool(quick_gelu), "quick_gelu option"
            elif tag is not None:
                quick, why = bool(op.get_pretrained_cfg(model_name, tag).get("quick_gelu")) or \
                    "quickgelu" in model_name.lower(), f"tag {tag}"
            else:
                quick, why = needs_quick_gelu(model_name, path)
            activation = f"{'QuickGELU' if quick else 'GELU'} ({why})"
            self.model = open_clip.create_model(model_name, pretrained=str(path), force_quick_gelu=quick)
            self.weights = weights_hash(path)
        self.model.eval().to(self.device)
        visual = self.model.visual
        size = visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        ctx = int(getattr(self.model, "context_length", 77))
        self.tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=ctx)
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        if getattr(self.model, "text_projection", None) is not None:
            self.dim = int(self.model.text_projection.shape[1])
        else:
            self.dim = int(self.encode_text(["x"]).shape[1])
        label = "custom" if model_cfg is not None else model_name
        self.name = f"open_clip:{label}" + (f":{tag}" if tag else "")
        self._mean_std = (tuple(mean), tuple(std))
        resize = ("open_clip.image_transform on PIL (bicubic, shortest side, long side truncated)"
                  if preprocess == "open_clip" else "torchvision Resize bicubic antialias=False on [0,255] floats")
        self.preprocessing = {"protocol": preprocess, "resize": resize, "crop": "center",
                              "size": [self.image_size, self.image_size], "mean": list(mean), "std": list(std),
                              "input": "uint8 RGB frames", "output": "L2-normalised", "context_length": ctx,
                              "activation": activation}
        if model_cfg is not None:
            self.preprocessing["model_cfg"] = model_cfg

    def _pixels(self, frames: np.ndarray) -> torch.Tensor:
        """(N, 3, S, S) model input of uint8 (N, H, W, 3) frames under ``self.preprocess``."""
        if self.preprocess == "open_clip":
            from open_clip.transform import image_transform
            from PIL import Image

            tf = image_transform(self.image_size, is_train=False, mean=self._mean_std[0], std=self._mean_std[1])
            return torch.stack([tf(Image.fromarray(np.ascontiguousarray(f))) for f in frames])
        return vbench_clip_pixels(frames, self.image_size, self._mean_std)

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        return self._encode_frame_batches(frames, lambda b: self.model.encode_image(self._pixels(b).to(self.device)))

    def encode_text(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise ValueError("encode_text takes a list of strings, got one string")  # noqa: TRY004 - house style
        with torch.inference_mode():
            tok = self.tokenizer(list(texts)).to(self.device)  # (N, ctx)
            e = self.model.encode_text(tok)  # (N, D)
        return F.normalize(e.float(), dim=-1).double().cpu().numpy()


def vbench_clip_pixels(frames: np.ndarray, size: int, mean_std: tuple[tuple, tuple] = (OPENAI_MEAN, OPENAI_STD)
                       ) -> torch.Tensor:
    """VBench's ``clip_transform(size)`` on uint8 (N, H, W, 3) frames read as VBench reads them
    (``torch.Tensor(frames)``: float32 in [0, 255]) -> (N, 3, size, size)."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    x = torch.from_numpy(np.ascontiguousarray(frames)).float().permute(0, 3, 1, 2)  # (N, 3, H, W) in [0, 255]
    x = TF.resize(x, size, interpolation=InterpolationMode.BICUBIC, antialias=False)  # long side truncated
    x = TF.center_crop(x, [size, size]).div(255.0)  # offset rounded, no clamp
    return TF.normalize(x, list(mean_std[0]), list(mean_std[1]))
