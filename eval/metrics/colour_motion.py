"""Colour-and-motion correctness of the prompted object: did the model draw *the prompted colour*, and does it move?

A measured criterion for tiny text-to-video models on the synthetic ball corpora (``balls-single``,
``balls-bounce``), where CLIP-style scores cannot tell a grey frame from a ball. Per video:

1. **Segment** saturated colours in HSV (OpenCV ranges: H in [0, 180), S and V in [0, 255]): a pixel
   is coloured when ``S >= min_saturation`` and ``V >= min_value``, and it is the colour whose hue range
   holds its hue (:data:`skyloom.colours.HUE_RANGES`, the one colour vocabulary: eight hue colours that
   cover the hue circle once). The sky-blue backdrop (S ~ 90) and the grey floor (S ~ 0) stay out.
2. **Track** the largest 8-connected blob of the prompted colour in every frame; it is *present* when its
   area is ``>= min_area`` px.
3. The video is **correct** when all four hold:

   * share: the prompted colour's pixels / all coloured pixels (whole video) ``>= min_share`` (0.6);
   * presence: the blob is present in ``>= min_presence`` (0.5) of the frames;
   * coherence: in ``>= min_coherent`` (0.5) of the consecutive frame pairs where it is present in
     either frame, it is present in both and its centroid moves ``<= max_step`` px (5);
   * travel: its centroid gets ``>= min_travel`` px (2) away from where it first appeared.

Pixel thresholds are for 32 x 32 frames and scale with ``min(H, W) / 32`` (areas with its square).
The score of a set is the correct fraction; the ``colour-motion`` suite asks 4 colours x 4 seeds.
Calibration (tests/eval/test_colour_motion.py): rendered ``balls-single`` clips with their own captions
score high, the same clips with shuffled captions near the chance of a matching colour, noise and
grey frames 0; a text-blind model (the same video for every colour) scores at most 1/4 per seed.

Example:
    >>> import numpy as np
    >>> v = np.full((8, 32, 32, 3), 200, np.uint8)
    >>> for t in range(8):
    ...     v[t, 10:16, 4 + 2 * t:10 + 2 * t] = (230, 25, 25)  # a red square moving right 2 px a frame
    >>> judge_video(v, "a red ball rolls to the right").correct
    True
    >>> judge_video(v, "a blue ball rolls to the right").correct
    False
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from skyloom.colours import CAPTION_COLOURS, COLOURS, HUE_RANGES
from skyloom.eval.metrics.base import METRICS, PerItemMetric

# Phrases of background colours that contain a colour's word ("sky blue" backdrop, "light grey" floor, ...).
_COLOUR_WORDS = "|".join(w for c in CAPTION_COLOURS for w in COLOURS[c].words)
_BACKGROUND_PHRASES = re.compile(rf"\b(sky|dark|light|navy|pale)[ -]({_COLOUR_WORDS})\b")
REFERENCE_SIZE = 32  # the pixel thresholds below are for min(H, W) = 32


@dataclass(frozen=True)
class ColourMotionConfig:
    """Thresholds of the criterion (pixel values for 32 x 32 frames; see the module docstring)."""

    min_saturation: int = 120  # HSV S (0-255): the sky-blue backdrop is ~90, balls > 200
    min_value: int = 60  # HSV V: leaves out near-black pixels whose hue is noise
    min_area: float = 4.0  # px of the largest blob for the colour to count as present in a frame
    min_share: float = 0.6  # prompted colour's share of all coloured pixels
    min_presence: float = 0.5  # fraction of frames with the blob present
    max_step: float = 5.0  # px a frame: a larger jump is not coherent motion
    min_coherent: float = 0.5  # fraction of coherent consecutive pairs
    min_travel: float = 2.0  # px from the first position: a static blob does not count as moving


@dataclass(frozen=True)
class ColourMotionResult:
    """What :func:`judge_video` measured on one video."""

    colour: str
    share: float
    presence: float
    coherent: float
    travel: float
    correct: bool


def prompted_colour(prompt: str, colours: tuple[str, ...] = tuple(HUE_RANGES)) -> str:
    """The first hue colour named in ``prompt`` (background phrases such as "sky blue" skipped).

    Raises:
        ValueError: the prompt names none of ``colours``.
    """
    text = _BACKGROUND_PHRASES.sub(" ", prompt.lower())
    hits = [(m.start(), c) for c in colours for w in COLOURS[c].words
            for m in re.finditer(rf"\b{re.escape(w)}\b", text)]
    if not hits:
        raise ValueError(f"prompt {prompt!r} names no ball colour; colour_motion needs one of {', '.join(colours)}")
    return min(hits)[1]


def colour_masks(video: np.ndarray, cfg: ColourMotionConfig = ColourMotionConfig()) -> dict[str, np.ndarray]:
    """Per-colour masks of saturated pixels: uint8 (T, H, W, 3) RGB -> {colour: bool (T, H, W)}."""
    import cv2

    v = np.asarray(video)
    if v.ndim != 4 or v.shape[-1] != 3 or v.dtype != np.uint8:
        raise ValueError(f"video must be uint8 (T, H, W, 3), got {v.dtype} {v.shape}")
    hsv = cv2.cvtColor(v.reshape(-1, v.shape[2], 3), cv2.COLOR_RGB2HSV).reshape(v.shape)  # (T, H, W, 3)
    h, s, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    vivid = (s >= cfg.min_saturation) & (val >= cfg.min_value)  # (T, H, W)
    out = {}
    for c, ranges in HUE_RANGES.items():
        in_range = np.zeros_like(vivid)
        for lo, hi in ranges:
            in_range |= (h >= lo) & (h < hi)
        out[c] = vivid & in_range
    return out


def largest_blob(mask: np.ndarray) -> tuple[float, float, float]:
    """(area, row, column) of the largest 8-connected blob of a bool (H, W) mask; (0, nan, nan) if empty."""
    import cv2

    n, _labels, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return 0.0, math.nan, math.nan
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return float(stats[k, cv2.CC_STAT_AREA]), float(centroids[k, 1]), float(centroids[k, 0])


def track_stats(areas: np.ndarray, centres: np.ndarray, min_area: float, max_step: float) -> tuple[float, float, float]:
    """(presence, coherent fraction, travel) of a blob track: areas (T,), centres (T, 2) in px.

    presence = mean(area >= min_area); coherent = among consecutive pairs with the blob present in
    either frame, the fraction present in both with a centroid step <= max_step; travel = the largest
    distance of the centroid from its first present position.
    """
    present = areas >= min_area  # (T,)
    presence = float(present.mean()) if len(present) else 0.0
    either = present[1:] | present[:-1]  # (T-1,)
    both = present[1:] & present[:-1]
    step = np.linalg.norm(centres[1:] - centres[:-1], axis=1)  # (T-1,) nan where absent
    ok = both & (np.nan_to_num(step, nan=np.inf) <= max_step)
    coherent = float(ok.sum() / either.sum()) if either.any() else 0.0
    if not present.any():
        return presence, coherent, 0.0
    first = centres[np.argmax(present)]
    travel = float(np.nanmax(np.linalg.norm(centres[present] - first, axis=1)))
    return presence, coherent, travel


def judge_video(video: np.ndarray, prompt: str, cfg: ColourMotionConfig = ColourMotionConfig()) -> ColourMotionResult:
    """Measure one uint8 (T, H, W, 3) video against the colour its prompt names (module docstring)."""
    colour = prompted_colour(prompt)
    masks = colour_masks(video, cfg)
    total = sum(int(m.sum()) for m in masks.values())
    share = float(masks[colour].sum() / total) if total else 0.0
    scale = min(video.shape[1], video.shape[2]) / REFERENCE_SIZE
    blobs = np.array([largest_blob(f) for f in masks[colour]])  # (T, 3): area, row, col
    presence, coherent, travel = track_stats(blobs[:, 0], blobs[:, 1:], cfg.min_area * scale ** 2,
                                             cfg.max_step * scale)
    correct = (share >= cfg.min_share and presence >= cfg.min_presence and coherent >= cfg.min_coherent
               and travel >= cfg.min_travel * scale)
    return ColourMotionResult(colour=colour, share=share, presence=presence, coherent=coherent, travel=travel,
                              correct=bool(correct))


@METRICS.register("colour_motion")
class ColourMotion(PerItemMetric):
    """Fraction of videos whose prompted-colour ball is drawn, present and moving coherently.

    Weight-free (HSV segmentation and connected components); settings are the fields of
    :class:`ColourMotionConfig`. ``update(videos, prompts=[...])``; per video 1.0 (correct) or 0.0,
    with ``share``, ``presence``, ``coherent`` and ``travel`` averaged in ``details``.

    Example:
        >>> import numpy as np
        >>> m = ColourMotion()
        >>> m.update(np.zeros((2, 8, 32, 32, 3), np.uint8), prompts=["a red ball", "a blue ball"])
        >>> m.compute().value
        0.0
    """

    name = "colour_motion"
    version = "2"  # 2: hue ranges of skyloom.colours (8 colours covering the hue circle); 1 had 4 ranges with gaps
    default_extractor = None
    inputs = ("videos", "item_ids", "prompts")  # suites and `eval score` pass each video's prompt
    config_class = ColourMotionConfig  # settings checked (keys and types) like every plug-in's

    def __init__(self, config: ColourMotionConfig | None = None) -> None:
        self.cfg = config or ColourMotionConfig()
        super().__init__(self.cfg, extractor=None)
        self._identity = {"extractor": "hsv-segmentation", "weights": "none",
                          "preprocessing": {"colour_space": "OpenCV HSV", "hue_ranges": HUE_RANGES,
                                            "reference_size": REFERENCE_SIZE, **asdict(self.cfg)}}

    def update(self, videos: Any, prompts: list[str] | None = None, item_ids: list[str] | None = None) -> None:
        if prompts is None:
            raise ValueError(f"{self.name} needs prompts: update(videos, prompts=[...])")
        super().update(videos, item_ids=item_ids, prompts=list(prompts))

    def score_video(self, video: np.ndarray, prompts: str = "") -> tuple[float, dict[str, float]]:
        r = judge_video(video, prompts, self.cfg)
        return float(r.correct), {"share": r.share, "presence": r.presence, "coherent": r.coherent,
                                  "travel": r.travel}
