"""The held-out paraphrase suite (colour-motion-paraphrase, issue 26): never in a training caption, same facts.

"Training captions" are every caption the scene-graph captioner can write for the scenes of the
datagen presets the demo renders (read from configs/demo.yaml, so the test follows the demo when
its corpus changes): real scene specs of each preset (``sample_spec``: colours, sizes, materials,
floor, background, lighting, camera) with every motion-label sequence the captioner verbalises
(the specs are not simulated here, so the motions are enumerated, a superset of what rendering gives),
both caption kinds, many caption seeds; the named lighting presets of the captioner are added too.
"""

from __future__ import annotations

import itertools
import random
import re
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from skyloom.captioning.facts import ObjectFacts, SceneFacts
from skyloom.captioning.scene_graph import LIGHT, realise
from skyloom.captioning.verify import parse_caption
from skyloom.colours import BALL_COLOURS
from skyloom.config import packaged_configs
from skyloom.eval.harness.suites import load_suite
from skyloom.eval.metrics.colour_motion import prompted_colour

WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")
MOTION_WORDS = ("fall", "bounce", "roll", "slide", "rest", "enter", "leave", "tip", "static")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def demo_render_presets() -> list[str]:
    """The ``--preset`` of every ``datagen render`` stage of the shipped demo."""
    demo = yaml.safe_load((packaged_configs() / "demo.yaml").read_text())
    presets = []
    for stage in demo["stages"]:
        a = [str(x) for x in stage["args"]]
        if a[:2] == ["datagen", "render"]:
            presets.append(a[a.index("--preset") + 1] if "--preset" in a else "balls-bounce")
    assert presets, "the demo renders no corpus?"
    return presets


@lru_cache(maxsize=1)
def training_captions(specs_per_preset: int = 40, seeds: int = 2) -> tuple[str, ...]:
    from skyloom.cli_common import load_config
    from skyloom.datagen.render import RenderConfig, sample_specs

    rng = random.Random(0)
    sequences = [(m,) for m in MOTION_WORDS] + list(itertools.permutations(MOTION_WORDS, 2))
    out: list[str] = []
    for preset in demo_render_presets():
        cfg = load_config(RenderConfig, "datagen", preset, [])
        for i, spec in enumerate(sample_specs(cfg, specs_per_preset, seed=1)):
            # every one- and two-label sequence (the short caption states the first two), plus a few of three
            for motions in sequences + [tuple(rng.sample(MOTION_WORDS, 3)) for _ in range(3)]:
                objs = tuple(ObjectFacts(
                    name=o["name"], shape=o["shape"], colour=o["colour"], size=o.get("size_name", ""),
                    material=o.get("material", ""), start=rng.choice(("left", "centre", "right")),
                    start_height=rng.choice(("air", "floor")), motions=motions,
                    direction=rng.choice(("left", "right", "")), bounces=rng.randint(0, 3)) for o in spec["objects"])
                lighting = spec["lighting"] if i % 4 else {"preset": rng.choice(sorted(LIGHT))}
                facts = SceneFacts(objects=objs, camera=spec["camera"]["motion"], lighting=lighting,
                                   floor=spec["floor"], background=spec["background"])
                for kind in ("short", "dense"):
                    out.extend(realise(facts, kind, seed=rng.randrange(2**32)) for _ in range(seeds))
    return tuple(out)


@lru_cache(maxsize=1)
def caption_trigrams() -> frozenset[tuple[str, ...]]:
    grams = set()
    for c in training_captions():
        w = words(c)
        grams.update(zip(w, w[1:], w[2:]))
    return frozenset(grams)


def paraphrases() -> list:
    return load_suite("colour-motion-paraphrase").prompts


def test_the_caption_sample_covers_what_the_demo_trains_on():
    """The enumerated captions include the demo corpus's own caption shapes (else the checks below are empty)."""
    caps = training_captions()
    assert len(caps) > 1000
    assert any("drops and bounces" in c for c in caps)
    assert any(re.search(r"^A (?:\w+ )?red ball .*static camera", c) for c in caps)  # the short caption's shape
    assert any("key light" in c for c in caps) and any("studio" in c for c in caps)


def found_in_captions(text: str, joined: str) -> list[str]:
    """The prompt, or any of its clauses of five words or more, that occurs in a training caption."""
    parts = [text] + [c for c in re.split(r"[.;,:]", text) if len(words(c)) >= 5]
    return [p for p in parts if " ".join(words(p)) in joined]


def test_no_paraphrase_occurs_in_any_training_caption():
    joined = "\n".join(" ".join(words(c)) for c in training_captions())
    for p in paraphrases():
        assert found_in_captions(p.text, joined) == [], p.id


def test_the_check_finds_the_in_distribution_prompts():
    """Negative control: colour-motion's own prompts are the short caption's words, and the checks say so.

    Every word trigram of each occurs in the captions; the whole sentence (which needs one particular
    draw of synonyms and the optional size word) is found for at least one colour in this sample.
    """
    joined = "\n".join(" ".join(words(c)) for c in training_captions())
    seen = caption_trigrams()
    prompts = load_suite("colour-motion").prompts
    for p in prompts:
        w = words(p.text)
        assert all(g in seen for g in zip(w, w[1:], w[2:])), p.id
    assert any(found_in_captions(p.text, joined) for p in prompts)


def test_paraphrases_are_new_sentence_shapes_most_trigrams_unseen():
    seen = caption_trigrams()
    for p in paraphrases():
        w = words(p.text)
        grams = list(zip(w, w[1:], w[2:]))
        unseen = [g for g in grams if g not in seen]
        assert len(unseen) / len(grams) >= 0.6, (p.id, [g for g in grams if g in seen])


def test_paraphrases_name_the_same_colour_and_motions_as_colour_motion():
    base = {prompted_colour(p.text): p.text for p in load_suite("colour-motion").prompts}
    assert set(base) == set(BALL_COLOURS)
    by_colour: dict[str, int] = {}
    for p in paraphrases():
        colour = prompted_colour(p.text)  # what the metric judges
        by_colour[colour] = by_colour.get(colour, 0) + 1
        got, want = parse_caption(p.text), parse_caption(base[colour])  # the captioner's own fact parser
        assert got.objects == want.objects == [(colour, "sphere")], p.id
        assert {m[2] for m in got.motions} == {m[2] for m in want.motions} == {"fall", "bounce"}, p.id
        assert not got.collisions and not got.counts, p.id
    assert by_colour == {c: 4 for c in BALL_COLOURS}


def test_suite_measures_like_colour_motion():
    """Same generation settings and metrics, so the paraphrase number compares with the criterion's."""
    a, b = load_suite("colour-motion"), load_suite("colour-motion-paraphrase")
    assert a.generation == b.generation and a.metrics == b.metrics and a.primary == b.primary == "colour_motion"
    assert len(b.items()) == 32
    shapes = {p.category for p in b.prompts}
    assert len(shapes) == 4
    texts = [p.text for p in b.prompts]
    assert not set(texts) & {p.text for p in a.prompts}


@pytest.mark.parametrize("colour", BALL_COLOURS)
def test_each_shape_is_one_template_across_colours(colour):
    """The four paraphrase shapes differ only in the colour word (the colour is the only varied fact)."""
    b = load_suite("colour-motion-paraphrase").prompts
    red = {p.category: p.text for p in b if prompted_colour(p.text) == "red"}
    mine = {p.category: p.text for p in b if prompted_colour(p.text) == colour}
    assert {k: v.replace(colour, "red") for k, v in mine.items()} == red


def test_demo_render_presets_is_read_from_the_demo():
    assert set(demo_render_presets()) <= {p.stem for p in (packaged_configs() / "datagen").glob("*.yaml")}
    assert list(itertools.chain(demo_render_presets()))
    assert Path(packaged_configs() / "demo.yaml").exists()
