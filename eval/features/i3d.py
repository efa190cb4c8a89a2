"""I3D (Inflated Inception-V1, 400 Kinetics classes) for FVD, and the StyleGAN-V TorchScript detector.

Carreira & Zisserman, "Quo Vadis, Action Recognition?" (CVPR 2017). The module and parameter
names follow the piergiaj/pytorch-i3d layout (``Conv3d_1a_7x7.conv3d.weight``,
``Conv3d_1a_7x7.bn.running_mean``, ``Mixed_3b.b1b.conv3d.weight``, ``logits.conv3d.bias``, ...)
so that the widely used ``i3d_pretrained_400.pt`` (VideoGPT, cd-fvd) loads with strict key
matching. Written from the paper's architecture and that naming scheme, not copied.

Reference FVD preprocessing (google-research ``frechet_video_distance``): uint8 RGB frames,
bilinear resize to 224×224, scaled to [-1, 1]; the feature is the 400 logits averaged over the
remaining time steps. Every conv uses TensorFlow "SAME" padding computed from the input size.

Geometry on non-square clips (``resize=``, recorded as ``preprocessing.geometry``): ``stretch``
(default) resizes straight to 224×224 as the TF reference does (``tf.image.resize_bilinear``,
aspect ratio not kept); ``videogpt-crop`` is VideoGPT's ``videogpt/data.py:preprocess`` (bilinear
resize of the short side to 224, the long side ``ceil``-ed, then a centre crop). On square clips
both are the same. The default protocol is therefore "VideoGPT's weights and BatchNorm eps with
the TF reference's geometry": on a non-square clip it matches neither VideoGPT's FVD (which crops)
nor the TF FVD (eps 1e-3) exactly; pass ``resize=videogpt-crop`` to match VideoGPT end to end.

BatchNorm eps is part of the protocol (``protocol=``, recorded in ``.preprocessing``): the
TF-hub/Sonnet I3D and piergiaj's port use 1e-3 (``tf-hub``); VideoGPT's conversion of the TF-hub
model, ``i3d_pretrained_400.pt``, is run by VideoGPT (``videogpt/fvd/pytorch_i3d.py``) and cd-fvd
with 1e-5 (``videogpt``), so that file reproduces their FVDs only with 1e-5. The extractor's default
is ``videogpt`` (the file the docs name); use ``tf-hub`` for weights converted to run with 1e-3.

Clips need at least 9 frames: the temporal size is halved (rounding up) three times before the
final 2×7×7 average pool, so ``ceil(ceil(ceil(T/2)/2)/2) >= 2``.

Example:
    >>> import numpy as np
    >>> ex = I3DExtractor(I3DConfig(random_init=True))  # doctest: +SKIP
    >>> ex.encode_videos(np.zeros((1, 16, 64, 64, 3), np.uint8)).shape  # doctest: +SKIP
    (1, 400)
"""

from __future__ import annotations

import logging
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from skyloom.errors import InputNotFoundError, InvalidInputError, UserError
from skyloom.eval.features.base import RANDOM_INIT, VideoExtractor, check_videos, weights_hash

log = logging.getLogger(__name__)

MIN_FRAMES = 9
# protocol -> BatchNorm eps: VideoGPT/cd-fvd run i3d_pretrained_400.pt with 1e-5; TF-hub/Sonnet/piergiaj use 1e-3
BN_EPS = {"videogpt": 1e-5, "tf-hub": 1e-3}
SIZE = 224
WEIGHTS_ENV = "SKYLOOM_I3D_WEIGHTS"
DEFAULT_WEIGHTS = Path("~/.cache/skyloom/i3d_pretrained_400.pt")
DEFAULT_TORCHSCRIPT = Path("~/.cache/skyloom/i3d_torchscript.pt")


@dataclass(frozen=True)
class I3DConfig:
    """Options of the ``i3d`` extractor."""

    weights: str | os.PathLike | None = None  # state dict; default $SKYLOOM_I3D_WEIGHTS or ~/.cache/skyloom/...
    random_init: bool = False  # seeded random weights when no weights are given (tests; labelled "random-init")
    seed: int = 0  # seed of the random init
    device: str = "cpu"
    batch_size: int = 4
    protocol: str = "videogpt"  # BatchNorm eps: "videogpt" 1e-5 (VideoGPT, cd-fvd) or "tf-hub" 1e-3
    resize: str = "stretch"  # non-square geometry: "stretch" (TF reference) or "videogpt-crop" (VideoGPT's preprocess)


@dataclass(frozen=True)
class TorchScriptI3DConfig:
    """Options of the ``i3d-torchscript`` extractor."""

    weights: str | os.PathLike | None = None  # the TorchScript file; default ~/.cache/skyloom/i3d_torchscript.pt
    device: str = "cpu"
    batch_size: int = 4
    dim: int = 400  # feature size the detector returns


class ClipTooShortError(UserError, ValueError):
    """A clip with fewer frames than I3D's temporal kernels need."""


def _same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    """TF 'SAME' padding (front, back) along one axis."""
    total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
    return total // 2, total - total // 2


class Unit3D(nn.Module):
    """Conv3d (no bias unless asked) + BatchNorm3d (eps ``bn_eps``, see ``BN_EPS``) + ReLU, SAME padding."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), bn: bool = True, relu: bool = True,
                 bias: bool = False, bn_eps: float = 1e-3) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride=stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=bn_eps, momentum=0.01) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W)
        pad: list[int] = []
        for dim in (2, 1, 0):  # F.pad order: W, H, T
            pad.extend(_same_pad(x.shape[2 + dim], self.kernel[dim], self.stride[dim]))
        x = self.conv3d(F.pad(x, pad))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.MaxPool3d):
    """Max pooling with TF 'SAME' padding (zeros, as the reference port pads)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W)
        k, s = cast(tuple[int, int, int], self.kernel_size), cast(tuple[int, int, int], self.stride)
        pad: list[int] = []
        for dim in (2, 1, 0):
            pad.extend(_same_pad(x.shape[2 + dim], k[dim], s[dim]))
        return super().forward(F.pad(x, pad))


class InceptionModule(nn.Module):
    """Four branches: 1x1; 1x1->3x3x3; 1x1->3x3x3; maxpool 3x3x3->1x1 (channels concatenated)."""

    def __init__(self, cin: int, c: tuple[int, int, int, int, int, int], bn_eps: float = 1e-3) -> None:
        super().__init__()
        self.b0 = Unit3D(cin, c[0], bn_eps=bn_eps)
        self.b1a = Unit3D(cin, c[1], bn_eps=bn_eps)
        self.b1b = Unit3D(c[1], c[2], (3, 3, 3), bn_eps=bn_eps)
        self.b2a = Unit3D(cin, c[3], bn_eps=bn_eps)
        self.b2b = Unit3D(c[3], c[4], (3, 3, 3), bn_eps=bn_eps)
        self.b3a = MaxPool3dSame(kernel_size=(3, 3, 3), stride=(1, 1, 1))
        self.b3b = Unit3D(cin, c[5], bn_eps=bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# (name, in_channels, branch widths) of the Inception blocks; pools sit between the groups.
_MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)), "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)), "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)), "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)), "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


class InceptionI3d(nn.Module):
    """Inception-V1 inflated to 3D; ``forward`` returns per-time-step logits (B, classes, T').

    ``bn_eps``: 1e-3 (TF-hub, piergiaj) or 1e-5 (VideoGPT/cd-fvd with ``i3d_pretrained_400.pt``).
    """

    def __init__(self, num_classes: int = 400, in_channels: int = 3, bn_eps: float = 1e-3) -> None:
        super().__init__()
        self.num_classes, self.bn_eps = num_classes, float(bn_eps)
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, (7, 7, 7), stride=(2, 2, 2), bn_eps=bn_eps)
        self.MaxPool3d_2a_3x3 = MaxPool3dSame(kernel_size=(1, 3, 3), stride=(1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64, bn_eps=bn_eps)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3), bn_eps=bn_eps)
        self.MaxPool3d_3a_3x3 = MaxPool3dSame(kernel_size=(1, 3, 3), stride=(1, 2, 2))
        self.Mixed_3b = InceptionModule(*_MIXED["Mixed_3b"], bn_eps=bn_eps)
        self.Mixed_3c = InceptionModule(*_MIXED["Mixed_3c"], bn_eps=bn_eps)
        self.MaxPool3d_4a_3x3 = MaxPool3dSame(kernel_size=(3, 3, 3), stride=(2, 2, 2))
        for n in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            self.add_module(n, InceptionModule(*_MIXED[n], bn_eps=bn_eps))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame(kernel_size=(2, 2, 2), stride=(2, 2, 2))
        self.Mixed_5b = InceptionModule(*_MIXED["Mixed_5b"], bn_eps=bn_eps)
        self.Mixed_5c = InceptionModule(*_MIXED["Mixed_5c"], bn_eps=bn_eps)
        self.avg_pool = nn.AvgPool3d(kernel_size=(2, 7, 7), stride=(1, 1, 1))
        self.dropout = nn.Dropout(0.5)
        self.logits = Unit3D(1024, num_classes, bn=False, relu=False, bias=True)

    _ORDER = ("Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
              "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
              "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, T, 224, 224) in [-1, 1]
        t, h, w = x.shape[2:]
        if t < MIN_FRAMES:
            raise ClipTooShortError(f"I3D needs clips of at least {MIN_FRAMES} frames, got {t}")
        if min(h, w) < 193:
            raise InvalidInputError(f"I3D needs frames of at least 193x193 (reference: 224), got {h}x{w}")
        for name in self._ORDER:
            x = getattr(self, name)(x)  # after Mixed_5c: (B, 1024, ceil(T/8), 7, 7)
        x = self.logits(self.dropout(self.avg_pool(x)))  # (B, classes, T', 1, 1)
        return x.flatten(2)  # (B, classes, T')


RESIZE_MODES = ("stretch", "videogpt-crop")


def i3d_preprocess(videos: np.ndarray, size: int = SIZE, resize: str = "stretch") -> torch.Tensor:
    """uint8 (N, T, H, W, 3) -> float32 (N, 3, T, size, size) in [-1, 1] (bilinear, no antialias).

    ``resize``: ``stretch`` (TF reference: straight to size×size) or ``videogpt-crop`` (VideoGPT:
    short side to ``size``, long side ``ceil(long·size/short)``, centre crop at ``(long - size)//2``).
    """
    if resize not in RESIZE_MODES:
        raise InvalidInputError(f"unknown I3D resize {resize!r}; valid: {', '.join(RESIZE_MODES)}")
    v = torch.from_numpy(np.ascontiguousarray(videos))  # (N, T, H, W, 3)
    n, t, h, w, _ = v.shape
    x = v.reshape(n * t, h, w, 3).permute(0, 3, 1, 2).float()  # (N·T, 3, H, W) in [0, 255]
    if resize == "videogpt-crop" and h != w:
        scale = size / min(h, w)
        target = (size, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), size)
        x = F.interpolate(x, size=target, mode="bilinear", align_corners=False, antialias=False)
        top, left = (target[0] - size) // 2, (target[1] - size) // 2
        x = x[:, :, top:top + size, left:left + size]  # (N·T, 3, size, size)
    elif (h, w) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    x = x / 127.5 - 1.0
    return x.reshape(n, t, 3, size, size).permute(0, 2, 1, 3, 4).contiguous()  # (N, 3, T, S, S)


GEOMETRY = {"stretch": "stretch to 224x224 (TF reference frechet_video_distance; aspect not kept)",
            "videogpt-crop": "short side to 224, centre crop (VideoGPT videogpt/data.py preprocess)"}
PREPROCESSING = {"input": "uint8 RGB", "resize": "bilinear", "size": [SIZE, SIZE], "antialias": False,
                 "align_corners": False, "range": [-1, 1], "feature": "logits (400) averaged over time",
                 "min_frames": MIN_FRAMES}


def _resolve_weights(path: str | os.PathLike | None, default: Path, what: str) -> Path | None:
    candidates = [Path(path).expanduser()] if path else [Path(p).expanduser() for p in
                                                         (os.environ.get(WEIGHTS_ENV), default) if p]
    for p in candidates:
        if p.is_file():
            return p
    if path:
        raise InputNotFoundError(f"{what} weights {path} not found (skyloom never downloads weights; "
                                 "copy the file there or pass random_init=True for tests)")
    return None


def _seeded_init(module: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv3d):
                fan_in = m.in_channels * math.prod(m.kernel_size)
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
                if m.bias is not None:
                    m.bias.zero_()


def is_torchscript(path: str | os.PathLike) -> bool:
    """True for a TorchScript archive (a zip with ``code/`` and ``constants.pkl``)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("constants.pkl") for n in names) and any("/code/" in n for n in names)


class _I3DBase(VideoExtractor):
    dim = 400

    def __init__(self, device: str = "cpu", batch_size: int = 4, resize: str = "stretch") -> None:
        if resize not in RESIZE_MODES:
            raise InvalidInputError(f"unknown I3D resize {resize!r}; valid: {', '.join(RESIZE_MODES)}")
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.resize = resize
        self.preprocessing = dict(PREPROCESSING)
        self.preprocessing["geometry"] = GEOMETRY[resize]

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_videos(self, videos: np.ndarray) -> np.ndarray:
        """uint8 (N, T, H, W, 3) -> float64 (N, 400): logits averaged over time.

        Raises:
            ClipTooShortError: T < 9.
        """
        v = np.asarray(videos)
        if v.ndim == 5 and v.shape[1] < MIN_FRAMES:
            raise ClipTooShortError(f"I3D needs clips of at least {MIN_FRAMES} frames (its temporal kernels "
                                    f"and pools shrink time 8x), got {v.shape[1]}; FVD uses 16")
        v = check_videos(v, min_frames=MIN_FRAMES)
        out = []
        with torch.inference_mode():
            for i in range(0, len(v), self.batch_size):
                x = i3d_preprocess(v[i:i + self.batch_size], resize=self.resize).to(self.device)  # (B, 3, T, S, S)
                out.append(self._logits(x).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim))


class I3DExtractor(_I3DBase):
    """I3D from a piergiaj-layout state dict (``i3d_pretrained_400.pt``) or random init.

    Args:
        weights: path to the state dict; default ``$SKYLOOM_I3D_WEIGHTS`` or
            ``~/.cache/skyloom/i3d_pretrained_400.pt``. A TorchScript file is accepted too and
            routed to :class:`TorchScriptI3DExtractor`'s loader.
        random_init: use seeded random weights when no weights are given (tests; labelled
            ``"random-init"``); otherwise a missing file is an error.
        seed: seed of the random init.
        protocol: ``videogpt`` (BatchNorm eps 1e-5, as VideoGPT and cd-fvd run
            ``i3d_pretrained_400.pt``; default) or ``tf-hub`` (eps 1e-3, TF-hub/Sonnet/piergiaj).
        resize: ``stretch`` (TF reference geometry; default) or ``videogpt-crop`` (VideoGPT's; module docstring).
    """

    config_class = I3DConfig

    def __init__(self, config: I3DConfig | None = None) -> None:
        c = config or I3DConfig()
        weights, random_init, seed, device, batch_size, protocol = (c.weights, c.random_init, c.seed, c.device,
                                                                    c.batch_size, c.protocol)
        resize = c.resize
        if protocol not in BN_EPS:
            raise InvalidInputError(f"unknown I3D protocol {protocol!r}; valid: {', '.join(BN_EPS)} "
                                    "(BatchNorm eps 1e-5 for VideoGPT's i3d_pretrained_400.pt, "
                                    "1e-3 for TF-hub equivalents)")
        super().__init__(device, batch_size, resize)
        eps = BN_EPS[protocol]
        path = None if (random_init and not weights) else _resolve_weights(weights, DEFAULT_WEIGHTS, "I3D")
        self.script: torch.jit.ScriptModule | None = None
        self.model: InceptionI3d | None = None
        if path is None:
            if not random_init:
                raise InputNotFoundError(
                    f"no I3D weights: pass weights=PATH, set ${WEIGHTS_ENV}, or put i3d_pretrained_400.pt at "
                    f"{DEFAULT_WEIGHTS} (skyloom never downloads weights); random_init=True for tests")
            self.model = InceptionI3d(400, bn_eps=eps)
            _seeded_init(self.model, seed)
            self.weights = RANDOM_INIT
            self.name = "i3d-k400"
        elif is_torchscript(path):
            self.script = load_torchscript(path, self.device)
            self.weights = weights_hash(path)
            self.name = "i3d-k400-torchscript"
            self.preprocessing["detector_kwargs"] = dict(TS_KWARGS)
            self.preprocessing["protocol"] = "stylegan-v-torchscript (BatchNorm eps inside the file)"
        else:
            self.model = InceptionI3d(400, bn_eps=eps)
            load_piergiaj_state_dict(self.model, path)
            self.weights = weights_hash(path)
            self.name = "i3d-k400"
        if self.model is not None:
            self.preprocessing.update(protocol=protocol, bn_eps=eps)
            self.model.eval().to(self.device)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.script is not None:
            return torchscript_features(self.script, x)
        if self.model is None:
            raise RuntimeError("I3D extractor has neither a TorchScript module nor a model")
        return self.model(x).mean(dim=2)  # (B, 400): logits averaged over time


def load_piergiaj_state_dict(model: InceptionI3d, path: str | os.PathLike) -> None:
    """Load ``i3d_pretrained_400.pt`` (piergiaj layout) with strict key matching.

    Raises:
        ValueError: the file is not a state dict of this layout (missing/unexpected keys listed).
    """
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise InvalidInputError(  # noqa: TRY004 - a bad file is a bad value (house style)
            f"{path}: expected a state dict (piergiaj InceptionI3d layout), got {type(sd).__name__}")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}  # saved from DataParallel
    missing, unexpected = [], []
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    if missing or unexpected:
        raise InvalidInputError(f"{path}: not a piergiaj-layout I3D state dict; missing {missing[:5]}"
                                f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                                f"{'...' if len(unexpected) > 5 else ''}")
    for k, v in own.items():  # old checkpoints predate BatchNorm's num_batches_tracked buffer
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = torch.zeros_like(v)
    model.load_state_dict(sd, strict=True)


# StyleGAN-V's detector is called on [-1, 1] 224² input with its own resizing/rescaling off.
TS_KWARGS = {"rescale": False, "resize": False, "return_features": True}


def load_torchscript(path: str | os.PathLike, device: torch.device | str = "cpu") -> torch.jit.ScriptModule:
    """Load a TorchScript I3D detector (StyleGAN-V ``i3d_torchscript.pt``) from a local path."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputNotFoundError(f"TorchScript detector {p} not found (skyloom never downloads weights)")
    try:
        return torch.jit.load(str(p), map_location=device).eval()
    except RuntimeError as e:
        raise InvalidInputError(f"{p}: not a loadable TorchScript module ({e})") from None


def torchscript_features(script: torch.jit.ScriptModule, x: torch.Tensor) -> torch.Tensor:
    """Call the detector with StyleGAN-V's keyword arguments (plain ``script(x)`` if it takes none);
    average any remaining time axis so the result is (B, D)."""
    try:
        y = script(x, **TS_KWARGS)
    except (RuntimeError, TypeError) as e:
        if "argument" not in str(e) and "keyword" not in str(e):
            raise
        y = script(x)
    return y.flatten(2).mean(dim=2) if y.ndim > 2 else y  # (B, D)


class TorchScriptI3DExtractor(_I3DBase):
    """The StyleGAN-V TorchScript I3D detector from a local path (default
    ``~/.cache/skyloom/i3d_torchscript.pt``), fed the reference [-1, 1] 224² clips."""

    config_class = TorchScriptI3DConfig

    def __init__(self, config: TorchScriptI3DConfig | None = None) -> None:
        c = config or TorchScriptI3DConfig()
        weights, dim = c.weights, c.dim
        super().__init__(c.device, c.batch_size)
        path = Path(weights).expanduser() if weights else DEFAULT_TORCHSCRIPT.expanduser()
        self.script = load_torchscript(path, self.device)
        self.weights = weights_hash(path)
        self.name = "i3d-k400-torchscript"
        self.dim = int(dim)
        self.preprocessing["detector_kwargs"] = dict(TS_KWARGS)
        self.preprocessing["protocol"] = "stylegan-v-torchscript (BatchNorm eps inside the file)"

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        y = torchscript_features(self.script, x)
        if y.ndim != 2 or y.shape[1] != self.dim:
            raise ValueError(f"TorchScript detector returned shape {tuple(y.shape)}, expected (B, {self.dim})")
        return y


def describe() -> dict[str, Any]:
    """Parameter count and preprocessing (for docs and ``--help``)."""
    m = InceptionI3d(400)
    return {"params": sum(p.numel() for p in m.parameters()), "preprocessing": PREPROCESSING}
