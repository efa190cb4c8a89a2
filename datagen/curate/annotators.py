"""Per-clip annotators: camera motion, on-screen text, technical quality, aesthetic score.

Each annotator is registered in :data:`ANNOTATORS` (entry-point group ``skyloom.annotators``) and
states its ``columns`` (name -> Arrow type), a ``version`` and the ``tool`` that computes it; the
annotation job (:mod:`skyloom.datagen.curate.annotate`) writes its values as columns of
``annotations.parquet`` with ``<name>_version`` = ``"<version>; <tool>"``. An annotator receives
the clip's decoded frames, uint8 ``(T, H, W, 3)`` at ``fps`` (the clip's own frames, evenly
thinned to at most ``AnnotateConfig.max_frames``), and returns a dict of its columns.

* ``camera_motion``: a global affine motion model fitted (iteratively reweighted least squares)
  to dense optical flow (:func:`skyloom.optical_flow.dense_flow`, DIS) between consecutive frames:
  translation, zoom (divergence) and the erratic part of the translation, classified as
  ``static``, ``pan_left``/``pan_right`` (the camera turns left: the picture moves right),
  ``tilt_up``/``tilt_down`` (the camera turns up: the picture moves down), ``zoom_in``/``zoom_out``
  or ``shake``. Rates are in frame widths per second.
* ``text``: Tesseract OCR (through pytesseract; Debian ``tesseract-ocr``) on a few frames,
  upscaled: ``text_area`` is the largest fraction of a frame covered by recognised word boxes
  (Open-Sora filters on OCR text area), ``text_words`` their number, ``text`` the words.
* ``technical``: weights-free quality: ``sharpness`` (variance of the Laplacian on a 256-px-wide
  grey frame, Pech-Pacheco et al. 2000), ``exposure`` (mean luma in [0, 1]) with ``dark_fraction``
  and ``bright_fraction`` (luma below 16 / above 239), ``colourfulness`` (Hasler & Süsstrunk
  2003: sigma_rgyb + 0.3 mu_rgyb) and ``blockiness`` (mean luma step across 8x8 block boundaries
  over the mean step inside blocks, at the decoded resolution; ~1 for clean video, higher
  for blocky compression; Wang, Bovik & Evans 2000 measure the same boundary excess).
* ``aesthetic``: the LAION improved aesthetic predictor's MLP (768-1024-128-64-16-1 on L2-normalised
  CLIP ViT-L/14 image embeddings, christophschuhmann/improved-aesthetic-predictor) on a few frames;
  runs only when its MLP weights are given (``options.aesthetic.mlp_weights``), or with random
  weights for tests (``random_init``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from skyloom.registry import Registry

ANNOTATORS: Registry[type] = Registry("annotator", group="skyloom.annotators")
CAMERA_MOTIONS = ("static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out", "shake")


class Annotator:
    """Base class: ``name``, ``version``, ``columns``; ``tool`` (str) and ``annotate(frames, fps)``."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = ""
    columns: ClassVar[dict[str, pa.DataType]] = {}
    config_class: ClassVar[type | None] = None

    @property
    def tool(self) -> str:
        return ""

    def annotate(self, frames: np.ndarray, fps: float) -> dict[str, Any]:
        raise NotImplementedError


def _grey(frame: np.ndarray, width: int | None = None) -> np.ndarray:
    import cv2

    g = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    if width and g.shape[1] != width:
        h = max(8, round(g.shape[0] * width / g.shape[1]))
        g = cv2.resize(g, (width, h), interpolation=cv2.INTER_AREA if width < g.shape[1] else cv2.INTER_LINEAR)
    return g


# -- camera motion ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CameraMotionOptions:
    """Options of ``camera_motion``.

    Attributes:
        width: frames are downscaled to this width for the flow.
        static_rate: translation below this (frame widths per second) is no pan or tilt.
        static_zoom: zoom below this (edge displacement, frame widths per second: 0.02 is a 4%
            change of scale per second) is no zoom; a camera with neither is ``static``.
        shake_ratio: erratic translation (mean size of frame-to-frame changes) above this multiple
            of the steady one is ``shake``.
    """

    width: int = 160
    static_rate: float = 0.04
    static_zoom: float = 0.015
    shake_ratio: float = 1.5


def global_motion(flow: np.ndarray, iters: int = 3) -> np.ndarray:
    """Affine motion of a flow field ``(H, W, 2)`` in pixels: ``[tx, ty, zoom, rot]`` with tx, ty the
    translation at the centre (pixels) and zoom/rot the divergence/curl per pixel, fitted by least
    squares, then twice more on the points within 2x the median residual (moving objects drop out)."""
    H, W = flow.shape[:2]
    step = max(1, min(H, W) // 24)
    ys, xs = np.mgrid[step // 2:H:step, step // 2:W:step]
    u, v = flow[ys, xs, 0].ravel(), flow[ys, xs, 1].ravel()
    x, y = (xs.ravel() - (W - 1) / 2), (ys.ravel() - (H - 1) / 2)
    one, zero = np.ones_like(x), np.zeros_like(x)
    # u = tx + z*x - r*y ; v = ty + z*y + r*x (similarity model: translation, zoom, rotation)
    A = np.concatenate([np.stack([one, zero, x, -y], 1), np.stack([zero, one, y, x], 1)])  # (2n, 4)
    b = np.concatenate([u, v])
    keep = np.ones(len(b) // 2, bool)
    p = np.zeros(4)
    for _ in range(iters):
        k2 = np.concatenate([keep, keep])
        p, *_ = np.linalg.lstsq(A[k2], b[k2], rcond=None)
        res = np.hypot(*(A @ p - b).reshape(2, -1))
        keep = res <= max(2 * np.median(res), 0.05)
    return p


@ANNOTATORS.register("camera_motion")
class CameraMotion(Annotator):
    name = "camera_motion"
    version = "camera_motion/1"
    columns = {"camera_motion": pa.string(), "camera_pan": pa.float64(), "camera_tilt": pa.float64(),
               "camera_zoom": pa.float64(), "camera_shake": pa.float64()}
    config_class = CameraMotionOptions

    def __init__(self, options: CameraMotionOptions | None = None) -> None:
        self.opt = options or CameraMotionOptions()
        self._cache: dict = {}

    @property
    def tool(self) -> str:
        import cv2

        return f"opencv {cv2.__version__} DIS medium, similarity model"

    def annotate(self, frames: np.ndarray, fps: float) -> dict[str, Any]:
        from skyloom.optical_flow import dense_flow

        greys = [_grey(f, min(self.opt.width, f.shape[1])) for f in frames]
        w = greys[0].shape[1]
        if len(greys) < 2:
            return {"camera_motion": "static", "camera_pan": 0.0, "camera_tilt": 0.0, "camera_zoom": 0.0,
                    "camera_shake": 0.0}
        p = np.array([global_motion(dense_flow(a, b, "dis", "medium", cache=self._cache))
                      for a, b in zip(greys[:-1], greys[1:], strict=True)])  # (T-1, 4)
        t = p[:, :2] / w * fps  # translation, frame widths / s, (T-1, 2)
        zoom = float(np.median(p[:, 2])) * fps / 2  # edge displacement, frame widths / s (half a width out)
        steady = np.median(t, axis=0)
        erratic = float(np.mean(np.linalg.norm(np.diff(t, axis=0), axis=1))) / np.sqrt(2) if len(t) > 2 else 0.0
        out = {"camera_pan": float(-steady[0]), "camera_tilt": float(steady[1]), "camera_zoom": zoom,
               "camera_shake": float(erratic)}
        out["camera_motion"] = classify_camera(out, self.opt)
        return out


def classify_camera(m: dict[str, float], opt: CameraMotionOptions) -> str:
    """The label of a clip's camera motion rates (see the module docstring)."""
    pan, tilt, zoom, shake = m["camera_pan"], m["camera_tilt"], m["camera_zoom"], m["camera_shake"]
    steady = max(abs(pan), abs(tilt), abs(zoom))
    if shake > opt.static_rate and shake > opt.shake_ratio * steady:
        return "shake"
    moves, zooms = max(abs(pan), abs(tilt)) >= opt.static_rate, abs(zoom) >= opt.static_zoom
    if not moves and not zooms:
        return "static"
    # a zoom's edge displacement is compared with a pan's at its own threshold's scale
    if zooms and (not moves or abs(zoom) / opt.static_zoom >= max(abs(pan), abs(tilt)) / opt.static_rate):
        return "zoom_in" if zoom > 0 else "zoom_out"
    if abs(pan) >= abs(tilt):
        return "pan_right" if pan > 0 else "pan_left"
    return "tilt_up" if tilt > 0 else "tilt_down"


# -- on-screen text --------------------------------------------------------------------------
@dataclass(frozen=True)
class TextOptions:
    """Options of ``text``.

    Attributes:
        frames: frames OCR'd per clip (spread evenly).
        height: frames are upscaled (never down) to at least this height before OCR (Tesseract
            reads text of ~20 px and more).
        min_confidence: words below this Tesseract confidence (0-100) are ignored.
        psm: Tesseract page segmentation mode (11: sparse text, as captions and logos are).
        bright_level: grey level (0-255) from which a pixel counts as bright text in the second reading.
    """

    frames: int = 3
    height: int = 480
    min_confidence: float = 60.0
    psm: int = 11
    bright_level: int = 200


def text_boxes(frame: np.ndarray, opt: TextOptions | None = None) -> list[tuple[int, int, int, int, str]]:
    """Words Tesseract reads in an RGB frame: ``(x, y, w, h, text)`` in the frame's pixels.

    The frame is upscaled to ``opt.height`` and read twice: as grey, and as a binary image of its
    bright pixels (dark on white: overlaid captions and logos are mostly white or yellow text with
    a dark edge, which Tesseract reads poorly on a busy picture); the words of both are kept,
    overlapping boxes once.
    """
    import cv2
    import pytesseract

    opt = opt or TextOptions()
    H, W = frame.shape[:2]
    s = max(1.0, opt.height / H)
    img = cv2.resize(frame, (round(W * s), round(H * s)), interpolation=cv2.INTER_CUBIC) if s > 1 else frame
    grey = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    bright = np.where(grey >= opt.bright_level, 0, 255).astype(np.uint8)
    out: list[tuple[int, int, int, int, str]] = []
    for view in (grey, bright):
        d = pytesseract.image_to_data(view, config=f"--psm {opt.psm}", output_type=pytesseract.Output.DICT)
        for x, y, w, h, conf, txt in zip(d["left"], d["top"], d["width"], d["height"], d["conf"], d["text"],
                                         strict=True):
            word = str(txt).strip()
            if float(conf) < opt.min_confidence or sum(ch.isalnum() for ch in word) < 2:
                continue
            box = (int(x / s), int(y / s), int(np.ceil(w / s)), int(np.ceil(h / s)), word)
            if not any(_overlap(box, b) > 0.5 for b in out):
                out.append(box)
    return out


def _overlap(a: tuple, b: tuple) -> float:
    """Intersection over the smaller box of two ``(x, y, w, h, ...)`` boxes."""
    iw = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return iw * ih / max(1, min(a[2] * a[3], b[2] * b[3]))


@ANNOTATORS.register("text")
class OnScreenText(Annotator):
    name = "text"
    version = "text/1"
    columns = {"text_area": pa.float64(), "text_words": pa.int32(), "text": pa.string()}
    config_class = TextOptions

    def __init__(self, options: TextOptions | None = None) -> None:
        from skyloom.config import ConfigError

        self.opt = options or TextOptions()
        try:
            import pytesseract

            self._version = str(pytesseract.get_tesseract_version())
        except Exception as e:  # noqa: BLE001 - ImportError, TesseractNotFoundError, ...: one clear message
            raise ConfigError(f"annotator 'text' needs Tesseract ({type(e).__name__}: {e}); install the Debian "
                              "package tesseract-ocr and pytesseract, or leave 'text' out of --annotators") from None

    @property
    def tool(self) -> str:
        return f"tesseract {self._version} psm {self.opt.psm} via pytesseract"

    def annotate(self, frames: np.ndarray, fps: float) -> dict[str, Any]:
        idx = np.unique(np.linspace(0, len(frames) - 1, self.opt.frames).round().astype(int))
        best, words = 0.0, []
        for i in idx:
            boxes = text_boxes(frames[i], self.opt)
            mask = np.zeros(frames[i].shape[:2], bool)
            for x, y, w, h, _ in boxes:
                mask[y:y + h, x:x + w] = True
            best = max(best, float(mask.mean()))
            if len(boxes) > len(words):
                words = [b[4] for b in boxes]
        return {"text_area": best, "text_words": len(words), "text": " ".join(words)[:500]}


# -- technical quality -----------------------------------------------------------------------
def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness of an RGB image: sigma_rgyb + 0.3 mu_rgyb, with
    rg = R - G, yb = (R + G)/2 - B (0 for a grey image; ~100+ for very colourful ones)."""
    f = rgb.astype(np.float64)
    rg = f[..., 0] - f[..., 1]
    yb = 0.5 * (f[..., 0] + f[..., 1]) - f[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def blockiness(grey: np.ndarray, block: int = 8) -> float:
    """Mean absolute luma step across ``block``-pixel boundaries over the mean step elsewhere
    (both axes): ~1 without blocking artefacts, above 1 with them."""
    g = grey.astype(np.float64)
    ratios = []
    for d in (np.abs(np.diff(g, axis=1)), np.abs(np.diff(g, axis=0)).T):  # steps between column j and j+1
        n = d.shape[1]
        at = (np.arange(n) % block) == block - 1
        if at.sum() == 0 or (~at).sum() == 0:
            continue
        inside = d[:, ~at].mean()
        ratios.append(d[:, at].mean() / max(inside, 1e-3))
    return float(np.mean(ratios)) if ratios else 1.0


def sharpness(grey: np.ndarray, width: int = 256) -> float:
    """Variance of the Laplacian of a grey frame resized to ``width`` (resolution-independent)."""
    import cv2

    g = grey
    if g.shape[1] != width:
        h = max(8, round(g.shape[0] * width / g.shape[1]))
        g = cv2.resize(g, (width, h), interpolation=cv2.INTER_AREA if width < g.shape[1] else cv2.INTER_CUBIC)
    return float(cv2.Laplacian(g.astype(np.float64), cv2.CV_64F).var())


@dataclass(frozen=True)
class TechnicalOptions:
    """Options of ``technical``: ``frames`` scored per clip (spread evenly)."""

    frames: int = 8


@ANNOTATORS.register("technical")
class Technical(Annotator):
    name = "technical"
    version = "technical/1"
    columns = {"sharpness": pa.float64(), "exposure": pa.float64(), "dark_fraction": pa.float64(),
               "bright_fraction": pa.float64(), "colourfulness": pa.float64(), "blockiness": pa.float64()}
    config_class = TechnicalOptions

    def __init__(self, options: TechnicalOptions | None = None) -> None:
        self.opt = options or TechnicalOptions()

    @property
    def tool(self) -> str:
        import cv2

        return f"skyloom weights-free ({self.opt.frames} frames), opencv {cv2.__version__}"

    def annotate(self, frames: np.ndarray, fps: float) -> dict[str, Any]:
        idx = np.unique(np.linspace(0, len(frames) - 1, self.opt.frames).round().astype(int))
        rows = []
        for i in idx:
            g = _grey(frames[i])
            luma = g.astype(np.float64) / 255.0
            rows.append((sharpness(g), luma.mean(), (g < 16).mean(), (g > 239).mean(), colourfulness(frames[i]),
                         blockiness(g)))
        m = np.mean(np.array(rows, dtype=np.float64), axis=0)
        return dict(zip(self.columns, map(float, m), strict=True))


# -- aesthetic -------------------------------------------------------------------------------
@dataclass(frozen=True)
class AestheticOptions:
    """Options of ``aesthetic``.

    Attributes:
        mlp_weights: the predictor's weights (the LAION ``sac+logos+ava1-l14-linearMSE.pth`` state
            dict, or safetensors with the same keys); required unless ``random_init``.
        clip: CLIP extractor name (``clip`` = open_clip; the predictor expects ViT-L-14).
        clip_model: open_clip model name (``tiny``: a tiny random ViT for tests).
        clip_weights: local CLIP weights (a file or an open_clip pretrained tag in its cache).
        random_init: random MLP and CLIP weights (tests only; scores then mean nothing).
        frames: frames scored per clip; the clip's score is their mean.
    """

    mlp_weights: str = ""
    clip: str = "clip"
    clip_model: str = "ViT-L-14"
    clip_weights: str = ""
    random_init: bool = False
    frames: int = 4


def aesthetic_mlp(dim: int = 768):
    """The improved-aesthetic-predictor MLP (layers named as in its state dict: ``layers.0``, ...)."""
    import torch.nn as nn

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.Sequential(nn.Linear(dim, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                                        nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))

        def forward(self, x):
            return self.layers(x)

    return MLP()


@ANNOTATORS.register("aesthetic")
class Aesthetic(Annotator):
    name = "aesthetic"
    version = "aesthetic/1"
    columns = {"aesthetic": pa.float64()}
    config_class = AestheticOptions

    def __init__(self, options: AestheticOptions | None = None) -> None:
        import torch

        from skyloom.config import ConfigError
        from skyloom.eval.features.base import get_extractor, weights_hash

        self.opt = o = options or AestheticOptions()
        if not o.random_init and not o.mlp_weights:
            raise ConfigError("annotator 'aesthetic' needs options.aesthetic.mlp_weights (the LAION predictor's "
                              "weights file); random_init=true is for tests only")
        kw: dict[str, Any] = {"random_init": True} if o.random_init and not o.clip_weights else \
            {"pretrained": o.clip_weights}
        if o.clip == "clip":
            kw["model_name"] = o.clip_model
            if o.clip_model == "tiny":  # tests: ViT-B-32's layer types at tiny widths, random weights
                from skyloom.eval.features.clip import TINY_VIT_B_32

                kw.update(model_name="ViT-B-32", model_cfg=TINY_VIT_B_32)
        self.clip = get_extractor(o.clip, **kw)
        self.mlp = aesthetic_mlp(self.clip.dim).eval()
        if o.mlp_weights:
            if not os.path.exists(o.mlp_weights):
                raise ConfigError(f"options.aesthetic.mlp_weights: {o.mlp_weights} does not exist")
            if o.mlp_weights.endswith(".safetensors"):
                from safetensors.torch import load_file

                state = load_file(o.mlp_weights)
            else:
                state = torch.load(o.mlp_weights, map_location="cpu", weights_only=True)
            self.mlp.load_state_dict(state)
            self._mlp_hash = weights_hash(o.mlp_weights)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                self.mlp = aesthetic_mlp(self.clip.dim).eval()
            self._mlp_hash = "random-init"

    @property
    def tool(self) -> str:
        return (f"LAION improved-aesthetic-predictor MLP {self._mlp_hash[:16]} on {self.clip.name} "
                f"{self.clip.weights[:16]}")

    def annotate(self, frames: np.ndarray, fps: float) -> dict[str, Any]:
        import torch

        idx = np.unique(np.linspace(0, len(frames) - 1, self.opt.frames).round().astype(int))
        emb = self.clip.encode_frames(frames[idx])  # (k, D), L2-normalised
        with torch.no_grad():
            s = self.mlp(torch.as_tensor(np.asarray(emb), dtype=torch.float32)).squeeze(-1)
        return {"aesthetic": float(s.mean())}
