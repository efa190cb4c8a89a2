"""Scene-graph captions: exact, dense and varied captions of synthetic clips from ground truth.

:func:`realise` turns :class:`~skyloom.captioning.facts.SceneFacts` into text. Variety comes from a seeded
``random.Random`` choosing among phrasings, synonyms (from :mod:`skyloom.captioning.vocab`), sentence
orders and connectives, so two clips with the same scene read differently while one clip with one
seed always reads the same. Every sentence keeps one grammatical subject (an object or "it") and
names other objects only after a collision verb, which keeps the captions machine-checkable by
:mod:`skyloom.captioning.verify`.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from skyloom.captioning.facts import ObjectFacts, SceneFacts
from skyloom.captioning.vocab import (
    CAMERA,
    MATERIALS,
    MOTIONS,
    NUMBER_WORDS,
    SHAPES,
    SIZES,
    TEMPLATE_VERSION,
)
from skyloom.errors import InvalidInputError

KINDS = ("short", "dense")
PLACES = {"left": ("on the left", "at the left of the frame", "on the left side"),
          "centre": ("in the middle", "near the centre", "in the centre of the frame"),
          "right": ("on the right", "at the right of the frame", "on the right side")}
START_AIR = ("starts in mid-air", "begins high above the floor", "hangs in the air at first", "starts above the floor")
START_THROWN = ("is thrown", "is tossed into the scene", "is launched through the air")
START_FLOOR = ("starts on the floor", "begins on the ground", "is placed on the floor", "starts out on the ground")
TIMES = {2: "twice", 3: "three times", 4: "four times"}
LIGHT = {"studio": ("soft studio lighting", "even studio light"),
         "sunset": ("warm sunset light", "golden evening light"),
         "overcast": ("diffuse overcast light", "soft, cloudy daylight"),
         "night": ("dim night-time lighting", "low, cool night light"),
         "daylight": ("bright daylight", "clear daylight"), "sun": ("bright sunlight", "direct sunlight")}


def clip_seed(clip_id: str, seed: int) -> int:
    """Seed of one clip's caption: a hash of (captioner seed, clip id), stable across machines."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{clip_id}".encode()).digest()[:8], "big")


def noun(shape: str, rng: random.Random, plural: bool = False) -> str:
    sing, plur = SHAPES.get(shape, ((shape,), (shape + "s",)))
    return rng.choice(plur if plural else sing)


def object_phrase(o: ObjectFacts, rng: random.Random, full: bool = True, article: str = "a") -> str:
    """``"a small red rubber ball"`` (full) or ``"the red ball"`` (reference); material sometimes after the noun."""
    n = noun(o.shape, rng)
    if not full:
        return f"{article} {o.colour} {n}"
    size = rng.choice(SIZES.get(o.size, (o.size,))) if o.size else ""
    mat = rng.choice(MATERIALS.get(o.material, (o.material,))) if o.material else ""
    if mat and rng.random() < 0.3:
        mat_name = o.material if o.material in ("rubber", "wood", "metal", "plastic", "glass", "stone") else mat
        words = [w for w in (size, o.colour, n) if w]
        np_ = f"{' '.join(words)} made of {mat_name}"
    else:
        np_ = " ".join(w for w in (size, o.colour, mat, n) if w)
    if article == "a":
        article = "an" if np_[0] in "aeiou" else "a"
    return f"{article} {np_}"


def _motion_phrases(o: ObjectFacts, facts: SceneFacts, rng: random.Random) -> list[str]:
    out = []
    partners = list(o.collides_with)
    for m in o.motions:
        if m == "collide":
            names = []
            for p in partners:
                other = facts.by_name(p)
                if other is None:
                    names.append("another object")
                elif other.key == o.key:  # an identical-looking object: "the other red ball"
                    names.append(object_phrase(other, rng, full=False, article="the other"))
                else:
                    names.append(object_phrase(other, rng, full=False, article="the"))
            partners = []
            if names:
                out.append(f"{rng.choice(MOTIONS['collide'])} {' and '.join(names)}")
            continue
        verb = rng.choice(MOTIONS[m])
        if m == "bounce" and o.bounces > 1:
            verb = f"bounces {TIMES.get(o.bounces, 'several times')}"
        if m in ("roll", "slide") and o.direction:
            verb += rng.choice((f" to the {o.direction}", f" towards the {o.direction}"))
        if m == "static":
            verb += rng.choice(("", " throughout", " the whole time"))
        out.append(verb)
    return out


def _join(phrases: list[str], rng: random.Random) -> str:
    if len(phrases) == 1:
        return phrases[0]
    style = rng.randrange(3)
    if style == 0:
        return ", ".join(phrases[:-1]) + " and " + phrases[-1]
    if style == 1:
        return ", then ".join(phrases)
    return ", ".join(phrases[:-1]) + " before it " + phrases[-1]


def _setting(facts: SceneFacts, rng: random.Random) -> tuple[str, str]:
    floor = facts.floor or {}
    fl_words = [str(floor.get(k)) for k in ("colour", "color", "material", "texture") if floor.get(k)]
    fl = " ".join(dict.fromkeys(fl_words)) or "plain"
    fl = fl.replace("wood", "wooden") if "wooden" not in fl else fl
    bg = facts.background or {}
    bcol = bg.get("colour") or bg.get("color") or ""
    kind = bg.get("kind") or bg.get("type") or bg.get("name") or ""
    if kind == "sky":
        bgs = f"a {bcol} sky".replace("  ", " ")
    elif kind:
        bgs = f"a {bcol} {kind} backdrop".replace("  ", " ").replace("plain plain", "plain")
    else:
        bgs = f"a {bcol or 'neutral'} backdrop"
    return f"a {fl} floor", bgs


def _lighting(facts: SceneFacts, rng: random.Random) -> str:
    """A named preset (studio, sunset, ...) or a description of the key light's elevation and shadows."""
    li = facts.lighting or {}
    name = str(li.get("preset") or li.get("name") or li.get("kind") or li.get("type") or "")
    if name or "elevation" not in li:
        phrase = rng.choice(LIGHT.get(name, (f"{name} lighting" if name else "neutral lighting",)))
    else:
        el = float(li["elevation"])
        angle = "a high overhead" if el >= 55 else "an angled" if el >= 30 else "a low, raking"
        soft = "soft fill and " if float(li.get("ambient", 0)) >= 0.4 else ""
        shadows = rng.choice((" that casts clear shadows", " with crisp shadows")) if li.get("shadows") else ""
        phrase = f"{soft}{angle} key light{shadows}"
    inten = li.get("intensity")
    if isinstance(inten, (int, float)):
        if inten < 0.6 and "dim" not in phrase:
            phrase = "fairly dim " + phrase if not phrase.startswith(("a ", "an ")) else "fairly dim light: " + phrase
        elif inten > 1.0:
            phrase = "bright " + phrase if not phrase.startswith(("bright", "a ", "an ")) else phrase
    return phrase


def _count(n: int) -> str:
    return NUMBER_WORDS.get(n, str(n))


def dense(facts: SceneFacts, rng: random.Random) -> str:
    """A paragraph: setting, every object (attributes, start, motion), camera and lighting."""
    floor, bg = _setting(facts, rng)
    n = len(facts.objects)
    noun_n = "object" if n == 1 else "objects"
    opening = rng.choice((
        f"The scene shows {_count(n)} {noun_n} on {floor} against {bg}.",
        f"{_count(n).capitalize()} {noun_n} sit on {floor}, with {bg} behind them." if n > 1 else
        f"A single object appears on {floor}, with {bg} behind it.",
        f"On {floor} in front of {bg}, {_count(n)} {noun_n} can be seen.",
    ))
    sentences = [opening]
    order = list(facts.objects)
    if rng.random() < 0.5:
        rng.shuffle(order)
    for o in order:
        place = rng.choice(PLACES.get(o.start, (o.start,)))
        thrown = o.start_height == "air" and o.motions[:1] != ("fall",) and "static" not in o.motions
        start = rng.choice(START_FLOOR if o.start_height == "floor" else (START_THROWN if thrown else START_AIR))
        subj = object_phrase(o, rng, full=True)
        phrases = _motion_phrases(o, facts, rng)
        if not phrases:  # moving, but nothing the clip shows has a label (e.g. still rising at the end)
            sentences.append(f"{subj[0].upper()}{subj[1:]} {start} {place}.")
            continue
        moves = _join(phrases, rng)
        if rng.random() < 0.5:
            sentences.append(f"{subj[0].upper()}{subj[1:]} {start} {place}. It {moves}.")
        else:
            sentences.append(f"{subj[0].upper()}{subj[1:]} {start} {place} and {moves}.")
    light = _lighting(facts, rng)
    cam = rng.choice(CAMERA.get(facts.camera, (f"The camera motion is {facts.camera}.",)))
    tail = [cam, rng.choice((f"The scene is lit by {light}.", f"Everything is shown under {light}."))]
    if rng.random() < 0.5:
        tail.reverse()
    return " ".join(sentences + tail)


def short(facts: SceneFacts, rng: random.Random) -> str:
    """A prompt-like sentence: each object with its main motion, the camera and the light."""
    parts = []
    for o in facts.objects:
        main = [m for m in o.motions if m != "collide"][:2]
        verbs = " and ".join(rng.choice(MOTIONS[m]) for m in main) if main else "moves"  # "moves": no label
        size = rng.choice(SIZES.get(o.size, (o.size,))) if o.size and rng.random() < 0.5 else ""
        np_ = " ".join(w for w in (size, o.colour, noun(o.shape, rng)) if w)
        parts.append(f"{'an' if np_[0] in 'aeiou' else 'a'} {np_} {verbs}")
    body = ", ".join(parts[:-1]) + (" while " if len(parts) > 1 else "") + parts[-1] if parts else "an empty scene"
    cam = {"static": "static camera", "orbit": "orbiting camera", "pan": "panning camera", "dolly": "dolly-in camera"}
    floor, _ = _setting(facts, rng)
    text = f"{body} on {floor}, {cam.get(facts.camera, facts.camera + ' camera')}, {_lighting(facts, rng)}"
    return text[0].upper() + text[1:] + "."


def realise(facts: SceneFacts, kind: str = "dense", seed: int = 0) -> str:
    """Caption text of ``kind`` (``short`` or ``dense``) for ``facts``; same seed, same text."""
    if kind not in KINDS:
        raise InvalidInputError(f"unknown caption kind {kind!r}; valid: {', '.join(KINDS)}")
    rng = random.Random(seed)
    return dense(facts, rng) if kind == "dense" else short(facts, rng)


def caption_gt(gt: dict[str, Any], clip_id: str = "", seed: int = 0, kinds: tuple[str, ...] = KINDS) -> dict[str, str]:
    """Captions of every kind for one ground-truth dict (seed derived from clip id + seed)."""
    from skyloom.captioning.facts import scene_facts

    facts = scene_facts(gt)
    s = clip_seed(clip_id, seed)
    return {k: realise(facts, k, s + i) for i, k in enumerate(kinds)}


__all__ = ["KINDS", "TEMPLATE_VERSION", "caption_gt", "clip_seed", "realise"]
