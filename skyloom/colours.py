"""The colour vocabulary of skyloom, defined once: name, rendered RGB, OpenCV hue range, surface words.

Every stage asks this module. Scenes draw objects, floors and backdrops in :attr:`Colour.rgb`
(:mod:`skyloom.datagen.scenes`); captions and their verification write and read
:attr:`Colour.words` (:mod:`skyloom.captioning.vocab`); the heuristic captioner names the dominant
hues of a clip, the ``colour_motion`` metric segments the prompted ball colour
(:mod:`skyloom.eval.metrics.colour_motion`), and the in-domain evaluator builds wrong-colour captions
(:mod:`skyloom.eval.features.indomain`), all from these entries.

**Hue ranges.** OpenCV's 8-bit HSV (H in [0, 180), S and V in [0, 255]). The eight hue colours
partition the hue circle, so every saturated pixel has exactly one name and every stage names it
alike. The four ball colours keep the ranges the ``colour_motion`` metric was calibrated with
(red, yellow, green, blue), except that red starts at 170, not 165, because the palette's pink is
hue 166; the four others fill what lay between, each holding the hue of the renderer's RGB
(MuJoCo writes material RGB without a gamma curve):

========  ==============  =====================  ==============================
name      rendered RGB    its OpenCV hue         range
========  ==============  =====================  ==============================
red       0.9 0.1  0.1    0                      [0, 10) and [170, 180)
orange    1.0 0.5  0.05   14                     [10, 18)
yellow    0.95 0.85 0.1   26                     [18, 38)
green     0.1 0.75 0.15   62                     [38, 88)
cyan      0.1 0.8  0.85   92                     [88, 98)
blue      0.1 0.25 0.95   115                    [98, 135)
purple    0.55 0.15 0.75  140                    [135, 152)
pink      1.0 0.45 0.7    166                    [152, 170)
========  ==============  =====================  ==============================

So hue 99 is blue, as ``colour_motion`` has always judged it (the heuristic captioner called it
cyan): keeping the calibrated blue range keeps that metric's judgements, and the rendered cyan,
92, stays 6 inside its own range. Greys, white, black, brown and the backdrop colours have no
hue range: a segmenter tells them apart by saturation and value, not hue.

Example:
    >>> hue_name(99)
    'blue'
    >>> COLOURS["grey"].words
    ('grey', 'gray')
    >>> canonical_colour("Gray")
    'grey'
"""

from __future__ import annotations

from dataclasses import dataclass

HUE_MAX = 180  # OpenCV 8-bit hue: degrees / 2


@dataclass(frozen=True)
class Colour:
    """One colour of the vocabulary.

    Attributes:
        name: the canonical name, as scene specs and ground truth store it (``"sky blue"``).
        rgb: linear RGB in [0, 1] that the renderers draw it in; None for a word captions know
            but scenes do not draw.
        hues: OpenCV hue intervals ``[lo, hi)`` (H in [0, 180)) that are this colour; empty for a
            colour told apart by saturation and value (greys, white, black, brown, backdrops).
        words: the single words captions write for it and parsers read back, the first preferred;
            empty for a floor or backdrop colour that captions do not name as one word (``"sky blue"``).
        ball: one of the four primary ball colours the small corpora and the ``colour-motion``
            suite use.
    """

    name: str
    rgb: tuple[float, float, float] | None
    hues: tuple[tuple[int, int], ...] = ()
    words: tuple[str, ...] = ()
    ball: bool = False


# Order is part of the contract: prompt upsampling draws from the first eight caption colours, the
# in-domain evaluator replaces a colour by one of the ball colours, in this order, with a seeded RNG.
_VOCABULARY = (
    Colour("red", (0.9, 0.1, 0.1), ((0, 10), (170, HUE_MAX)), ("red",), ball=True),
    Colour("green", (0.1, 0.75, 0.15), ((38, 88),), ("green",), ball=True),
    Colour("blue", (0.1, 0.25, 0.95), ((98, 135),), ("blue",), ball=True),
    Colour("yellow", (0.95, 0.85, 0.1), ((18, 38),), ("yellow",), ball=True),
    Colour("orange", (1.0, 0.5, 0.05), ((10, 18),), ("orange",)),
    Colour("purple", (0.55, 0.15, 0.75), ((135, 152),), ("purple", "violet")),
    Colour("pink", (1.0, 0.45, 0.7), ((152, 170),), ("pink",)),
    Colour("cyan", (0.1, 0.8, 0.85), ((88, 98),), ("cyan",)),
    Colour("magenta", None, (), ("magenta",)),
    Colour("white", (0.95, 0.95, 0.95), (), ("white",)),
    Colour("black", (0.05, 0.05, 0.05), (), ("black",)),
    Colour("grey", (0.55, 0.55, 0.55), (), ("grey", "gray")),
    Colour("brown", (0.45, 0.27, 0.1), (), ("brown",)),
    Colour("teal", None, (), ("teal",)),
    Colour("gold", None, (), ("gold",)),
    Colour("silver", None, (), ("silver",)),
    Colour("light grey", (0.78, 0.78, 0.78)),
    Colour("dark grey", (0.25, 0.25, 0.25)),
    Colour("beige", (0.85, 0.78, 0.62)),
    Colour("sky blue", (0.62, 0.78, 0.95)),
    Colour("dark blue", (0.05, 0.07, 0.25)),
)

COLOURS: dict[str, Colour] = {c.name: c for c in _VOCABULARY}
"""Every colour by canonical name, in vocabulary order."""

RENDER_RGB: dict[str, tuple[float, float, float]] = {c.name: c.rgb for c in _VOCABULARY if c.rgb is not None}
"""Name -> linear RGB of every colour a scene can draw (objects, floors, backdrops)."""

HUE_RANGES: dict[str, tuple[tuple[int, int], ...]] = {c.name: c.hues for c in _VOCABULARY if c.hues}
"""Name -> OpenCV hue intervals of the eight hue colours; together they cover [0, 180) once."""

CAPTION_COLOURS: tuple[str, ...] = tuple(c.name for c in _VOCABULARY if c.words)
"""Canonical names that captions state as one word (``"light grey"`` is a floor, not a caption colour)."""

BALL_COLOURS: tuple[str, ...] = tuple(c.name for c in _VOCABULARY if c.ball)
"""The four primary ball colours: ``("red", "green", "blue", "yellow")``."""

_WORDS: dict[str, str] = {w: c.name for c in _VOCABULARY for w in c.words}


def canonical_colour(word: str) -> str | None:
    """The canonical colour a caption word names (``"gray"`` -> ``"grey"``), None when it names none."""
    return _WORDS.get(word.lower())


def colour_phrases() -> tuple[str, ...]:
    """Canonical names of more than one word (``"sky blue"``, ``"light grey"``), longest first."""
    return tuple(sorted((c.name for c in _VOCABULARY if " " in c.name), key=lambda n: (-len(n), n)))


def hue_name(hue: int) -> str:
    """The hue colour of an OpenCV hue value (0-179)."""
    h = int(hue) % HUE_MAX
    for name, ranges in HUE_RANGES.items():
        if any(lo <= h < hi for lo, hi in ranges):
            return name
    raise AssertionError(f"hue {hue} in no range: HUE_RANGES must cover [0, {HUE_MAX})")  # checked by a test


__all__ = ["BALL_COLOURS", "CAPTION_COLOURS", "COLOURS", "HUE_MAX", "HUE_RANGES", "RENDER_RGB", "Colour",
           "canonical_colour", "colour_phrases", "hue_name"]
