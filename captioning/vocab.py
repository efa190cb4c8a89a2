"""The controlled vocabulary shared by scene-graph captions, verification and prompt upsampling.

One table per fact type maps canonical values (as written in ``skyloom-gt`` ground truth) to the
surface words captions use. The scene-graph captioner draws its synonyms from here, the
verification parser maps words back through the inverse tables, and the upsampler writes in the
same words, so the model sees one caption style at training and inference time.
"""

from __future__ import annotations

import re

from skyloom.colours import CAPTION_COLOURS, canonical_colour

TEMPLATE_VERSION = "sg-1"

# canonical shape (gt "shape") -> (singular nouns, plural nouns); the first is preferred.
SHAPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sphere": (("ball", "sphere"), ("balls", "spheres")),
    "box": (("cube", "box", "block"), ("cubes", "boxes", "blocks")),
    "cylinder": (("cylinder", "drum"), ("cylinders", "drums")),
    "capsule": (("capsule", "pill"), ("capsules", "pills")),
}
SIZES: dict[str, tuple[str, ...]] = {
    "small": ("small", "little", "tiny"),
    "medium": ("medium-sized", "mid-sized"),
    "large": ("large", "big"),
}
MATERIALS: dict[str, tuple[str, ...]] = {
    "rubber": ("rubber", "rubbery"),
    "wood": ("wooden",),
    "metal": ("metal", "metallic"),
    "plastic": ("plastic",),
    "glass": ("glass",),
    "stone": ("stone",),
    "cloth": ("cloth", "fabric"),
}
# Colours are the one vocabulary's (skyloom.colours): canonical names captions state, in its order;
# surface words (grey/gray, purple/violet) map back with skyloom.colours.canonical_colour.
COLOURS: tuple[str, ...] = CAPTION_COLOURS

# motion label (skyloom.motion.MOTION_LABELS, as the ground truth states them) -> verb phrases
# (third person); the parser also accepts the -ing/-ed forms.
MOTIONS: dict[str, tuple[str, ...]] = {
    "fall": ("falls", "drops", "tumbles down", "plunges"),
    "bounce": ("bounces", "rebounds", "bounces back up"),
    "roll": ("rolls", "rolls along"),
    "slide": ("slides", "glides", "skids"),
    "rest": ("comes to rest", "settles", "comes to a stop"),
    "tip": ("tips over", "topples over", "turns over"),
    "enter": ("enters the frame", "comes into view", "moves into view"),
    "leave": ("leaves the frame", "moves out of view", "exits the frame"),
    "static": ("stays still", "remains motionless", "sits still"),
    "collide": ("collides with", "hits", "bumps into", "strikes"),
}
CAMERA: dict[str, tuple[str, ...]] = {
    "static": ("The camera is static.", "The camera stays fixed.", "A locked-off camera watches the scene."),
    "orbit": ("The camera orbits around the scene.", "The camera slowly circles the scene.",
              "An orbiting camera circles the objects."),
    "pan": ("The camera pans across the scene.", "The camera pans slowly.",
            "A panning camera sweeps across the scene."),
    "dolly": ("The camera dollies in towards the objects.", "The camera moves in on the scene.",
              "A dolly shot moves the camera towards the objects."),
}
CAMERA_WORDS = {"static": ("static", "fixed", "locked-off", "stationary"), "orbit": ("orbits", "circles", "orbiting"),
                "pan": ("pans", "panning"), "dolly": ("dollies", "dolly", "moves in", "zooms")}
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
           "ten": 10, "single": 1, "pair": 2}
NUMBER_WORDS = {v: k for k, v in NUMBERS.items() if k not in ("single", "pair")}
GENERIC_NOUNS = ("object", "objects", "thing", "things", "shape", "shapes", "item", "items")


def _inverse(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {w: k for k, words in table.items() for w in words}


SHAPE_WORDS: dict[str, tuple[str, bool]] = {}  # surface noun -> (shape, plural)
for _shape, (_sing, _plur) in SHAPES.items():
    SHAPE_WORDS.update({w: (_shape, False) for w in _sing})
    SHAPE_WORDS.update({w: (_shape, True) for w in _plur})
SHAPE_WORDS.update({"cuboid": ("box", False), "cuboids": ("box", True), "crate": ("box", False),
                    "orb": ("sphere", False), "orbs": ("sphere", True)})
SIZE_WORDS = _inverse(SIZES) | {"huge": "large", "medium": "medium"}
MATERIAL_WORDS = _inverse(MATERIALS) | {"wood": "wood", "steel": "metal", "iron": "metal"}


def motion_pattern() -> list[tuple[re.Pattern[str], str]]:
    """Regexes (longest phrase first) that find motion verbs in text, any inflection."""
    extra = {"fall": ("fall", "falling", "fell", "dropping", "dropped", "drop"),
             "bounce": ("bounce", "bouncing", "bounced"),
             "roll": ("roll", "rolling", "rolled"),
             "slide": ("slide", "sliding", "slid", "gliding", "skidding"),
             "rest": ("rest", "resting", "settle", "settling", "settled", "stops", "stop", "stopping"),
             "tip": ("tip over", "tipping over", "tipped over", "topple", "topples", "toppling", "toppled"),
             "enter": ("enter the frame", "entering the frame", "entered the frame", "into view", "into the frame"),
             "leave": ("leave the frame", "leaving the frame", "left the frame", "out of frame", "out of view",
                       "exit the frame", "exiting the frame"),
             "static": ("still", "motionless", "stationary", "not moving", "at rest throughout"),
             "collide": ("collide with", "colliding with", "collided with", "collides", "collide", "hit", "hitting",
                         "knocks into", "knocking into", "crashes into", "crash into", "bumping into")}
    phrases = [(p, m) for m, ps in MOTIONS.items() for p in ps] + [(p, m) for m, ps in extra.items() for p in ps]
    phrases.sort(key=lambda pm: -len(pm[0]))
    return [(re.compile(rf"\b{re.escape(p)}\b"), m) for p, m in phrases]


def normalise_colour(word: str) -> str | None:
    """The canonical colour a caption word names (``"gray"`` -> ``"grey"``), None if it names none."""
    return canonical_colour(word)
