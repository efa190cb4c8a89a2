"""Prompt upsampling: a short user prompt expanded into the dense caption style of training.

Sora and DALL-E 3 rewrite short prompts into the long captions their models were trained on. Here
the default is rule-based and shares everything with the scene-graph captioner: the prompt is
read by the verification parser (:func:`skyloom.captioning.verify.parse_caption`) into scene facts, the
facts the user did not give (size, material, start, floor, light, camera) are drawn from a seeded
RNG, and :func:`skyloom.captioning.scene_graph.realise` writes the dense paragraph, so prompts at
inference read exactly like captions at training. An OpenAI-compatible LLM endpoint can do the
rewrite instead (``mode="llm"``), with a few dense captions as examples.

Example:
    >>> text = upsample("a red ball bouncing", seed=0)
    >>> p = parse_caption(text)  # the upsampled prompt states the user's facts, in caption words
    >>> p.objects, sorted({m for _, _, m in p.motions})
    ([('red', 'sphere')], ['bounce', 'fall'])
"""

from __future__ import annotations

import logging
import random
import re

from skyloom.captioning.facts import ObjectFacts, SceneFacts
from skyloom.captioning.scene_graph import LIGHT, _setting, realise
from skyloom.captioning.verify import parse_caption
from skyloom.captioning.vocab import CAMERA, COLOURS, MATERIALS, SIZES
from skyloom.motion import implied_labels

logger = logging.getLogger(__name__)

FLOORS = ({"colour": "grey", "material": "concrete"}, {"material": "wood"}, {"colour": "white", "material": "checker"},
          {"colour": "beige", "material": "tiled"})
BACKGROUNDS = ({"kind": "sky", "colour": "light blue"}, {"kind": "plain", "colour": "white"},
               {"kind": "gradient", "colour": "dark grey"})
SYSTEM_PROMPT = ("You rewrite short video prompts into one dense caption in the style below: every object "
                 "with size, colour, material and shape, where it starts and how it moves, then the camera "
                 "and the lighting. Keep what the user asked for; add only plausible details. Answer with the "
                 "caption only.")


def prompt_facts(prompt: str, seed: int = 0) -> SceneFacts | None:
    """Scene facts stated by ``prompt``, with seeded defaults for what it leaves open (None: no object)."""
    rng = random.Random(seed)
    parsed = parse_caption(prompt)
    if not parsed.objects:
        return None
    low = prompt.lower()
    objs: list[ObjectFacts] = []
    names: dict[tuple, list[str]] = {}
    used_colours = {k[0] for k in parsed.objects if k[0]}
    for i, key in enumerate(parsed.objects):  # plural mentions ("two balls") appear once per object
        colour = key[0] or rng.choice([c for c in COLOURS[:8] if c not in used_colours] or list(COLOURS[:8]))
        used_colours.add(colour)
        names.setdefault(key, []).append(f"obj{i}")
        attrs = {f[0]: f[2] for f in parsed.attributes if f[1] == key}
        motions = implied_labels([f[2] for f in parsed.motions if f[1] == key])  # a bounce needs a fall first
        partners = [p for f in parsed.collisions if key in f[1] for p in f[1] if p != key]
        if partners:
            motions.append("collide")
        if not motions:
            motions = ["static"]
        direction = "left" if re.search(r"\bleft\b", low) else "right" if re.search(r"\bright\b", low) else ""
        objs.append(ObjectFacts(
            name=f"obj{i}", shape=key[1], colour=colour, size=attrs.get("size") or rng.choice(list(SIZES)),
            material=attrs.get("material") or rng.choice(list(MATERIALS)[:4]),
            start=rng.choice(("left", "centre", "right")),
            start_height="air" if motions[0] == "fall" else "floor", motions=tuple(motions),
            collides_with=tuple(map(str, partners)), direction=direction if {"roll", "slide"} & set(motions) else "",
        ))
    # collision partners were parsed as keys; turn them into object names
    keyname = {str(k): v[0] for k, v in names.items()}
    objs = [ObjectFacts(**{**o.__dict__, "collides_with": tuple(keyname[p] for p in o.collides_with if p in keyname)})
            for o in objs]
    light = (next((k for k in LIGHT if re.search(rf"\b{k}\b", low)), None)
             or rng.choice(("studio", "daylight", "sunset")))
    return SceneFacts(objects=tuple(objs), camera=parsed.camera or "static", lighting={"preset": light},
                      floor=dict(rng.choice(FLOORS)), background=dict(rng.choice(BACKGROUNDS)))


def upsample(prompt: str, seed: int = 0, mode: str = "rules", endpoint=None) -> str:
    """Expand ``prompt`` into a dense caption (same seed, same text for ``mode="rules"``).

    Args:
        prompt: the user's short prompt, e.g. ``"a red ball bouncing"``.
        seed: chooses the unstated details and the phrasing.
        mode: ``"rules"`` (default, offline) or ``"llm"`` (OpenAI-compatible chat endpoint).
        endpoint: :class:`skyloom.captioning.config.EndpointConfig` for ``mode="llm"``.

    Raises:
        ValueError: empty prompt or unknown mode.
    """
    if not prompt or not prompt.strip():
        raise ValueError("prompt is empty; give a short description such as 'a red ball bouncing'")
    if mode not in ("rules", "llm"):
        raise ValueError(f"unknown upsampling mode {mode!r}; valid: rules, llm")
    if mode == "llm":
        from skyloom.captioning.vlm_endpoint import EndpointClient

        if endpoint is None or not endpoint.base_url:
            raise ValueError("mode='llm' needs an endpoint with base_url (e.g. --set endpoint.base_url=http://host:8000/v1)")
        examples = [upsample(p, seed=s) for s, p in enumerate(("a blue cube sliding", "two balls colliding"))]
        messages = [{"role": "system", "content": SYSTEM_PROMPT + "\n\nExamples:\n" + "\n".join(examples)},
                    {"role": "user", "content": prompt.strip()}]
        return EndpointClient(endpoint).chat(messages)
    facts = prompt_facts(prompt, seed)
    if facts is None:  # nothing the scene vocabulary knows: keep the prompt, add the scene's frame
        rng = random.Random(seed)
        parsed = parse_caption(prompt)
        low = prompt.lower()
        light_key = next((k for k in LIGHT if re.search(rf"\b{k}\b", low)), None) or rng.choice(list(LIGHT))
        stub = SceneFacts(objects=(), camera=parsed.camera or "static", floor=dict(rng.choice(FLOORS)))
        floor, _ = _setting(stub, rng)
        text = prompt.strip().rstrip(".")
        cam = rng.choice(CAMERA[stub.camera])
        return f"{text[0].upper()}{text[1:]}, on {floor}. {cam} The scene is lit by {rng.choice(LIGHT[light_key])}."
    return realise(facts, "dense", seed)
