"""Suite files: shipped suites validate against the real metric registry; bad files fail clearly."""

from __future__ import annotations

import pytest

from skyloom.eval.harness.suites import SuiteError, list_suites, load_suite

BASE = """
format: skyloom-suite
name: t
version: 2
primary_metric: clipsim
seeds: [0, 1]
prompts:
  - {id: a, text: "a red ball", category: colour}
  - {id: b, text: "a blue ball", seeds: [7]}
metrics:
  - {name: clipsim, extractor: tv}
  - {name: temporal_flickering}
extractors: {tv: pixels}
"""


def _write(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def test_shipped_suites_validate():
    from skyloom.eval.features.base import EXTRACTORS
    from skyloom.eval.metrics import METRICS

    assert {"smoke", "physics", "standard"} <= set(list_suites())
    for name in ("smoke", "physics", "standard", "colour-motion", "colour-motion-paraphrase"):
        s = load_suite(name, metric_names=METRICS.names(), extractor_names=EXTRACTORS.names())
        assert s.version >= 1 and s.primary in [m.key for m in s.metrics]
    smoke = load_suite("smoke")
    assert len(smoke.items()) <= 16 and smoke.generation.num_frames <= 8
    assert load_suite("physics").physics.num_scenes > 0


def test_items_seeds_and_versions(tmp_path):
    s = load_suite(_write(tmp_path, BASE), metric_names=["clipsim", "temporal_flickering"])
    assert [(i["item_id"], i["seed"]) for i in s.items()] == [("a-s0", 0), ("a-s1", 1), ("b-s7", 7)]
    assert s.extractor_for(s.metrics[0]) == "pixels" and s.extractor_for(s.metrics[1]) is None
    s2 = load_suite(_write(tmp_path, BASE.replace("a red ball", "a green ball")),
                    metric_names=["clipsim", "temporal_flickering"])
    assert s.version_tag.startswith("2+") and s.version_tag != s2.version_tag  # content changes are visible
    o = load_suite(_write(tmp_path, BASE), ["reference.corpus=/data/ref", "extractors.tv=indomain:/x"],
                   metric_names=["clipsim", "temporal_flickering"])
    assert o.reference.corpus == "/data/ref" and o.extractor_for(o.metrics[0]) == "indomain:/x"


@pytest.mark.parametrize("change, message", [
    (("{name: temporal_flickering}", "{name: temporal_flicker}"),
     r"unknown metric 'temporal_flicker'. Did you mean 'temporal_flickering'\?.*Valid metrics: clipsim, fvd"),
    (("version: 2", "version: 2\ncolour: red"), r"unknown config key 'colour'; valid keys: .*description"),
    (("seeds: [0, 1]", "seeds: [zero]"), r"seeds\[0\]: expected an integer"),
    (("{id: b,", "{id: a,"), r"duplicate prompt id\(s\) \['a'\]"),
    (("primary_metric: clipsim", "primary_metric: fvd"), r"primary_metric 'fvd' is not one of the suite's metrics"),
    (("{name: temporal_flickering}", "{name: temporal_flickering, subset: physics}"),
     r"scores physics scenes but physics.num_scenes is 0"),
    (("format: skyloom-suite", "format: other"), r"format is 'other'"),
    (("{id: a, text: \"a red ball\"", "{id: 'a b', text: \"a red ball\""), r"prompt id 'a b' must match"),
    (("extractors: {tv: pixels}", "extractors: {tv: pixls}"), r"unknown extractor 'pixls'; valid: .*pixels"),
])
def test_bad_suites_fail_with_clear_errors(tmp_path, change, message):
    p = _write(tmp_path, BASE.replace(*change))
    with pytest.raises(SuiteError, match=message) as e:
        load_suite(p, metric_names=["clipsim", "temporal_flickering", "fvd"], extractor_names=["pixels", "clip"])
    assert str(p) in str(e.value)


def test_unknown_suite_lists_available():
    with pytest.raises(SuiteError, match=r"unknown suite 'smok'.*Available: .*smoke"):
        load_suite("smok")


def test_a_mistyped_metric_setting_fails_when_the_suite_loads(tmp_path):
    ok = _write(tmp_path, BASE.replace("{name: temporal_flickering}", "{name: temporal_flickering, settings: "
                                                                      "{protocol: all}}"))
    assert load_suite(ok).metrics[-1].settings == {"protocol": "all"}  # stored as written
    p = _write(tmp_path, BASE.replace("{name: temporal_flickering}", "{name: temporal_flickering, settings: "
                                                                     "{protocl: all}}"))
    with pytest.raises(SuiteError, match=r"metric 'temporal_flickering' settings; valid keys: flow, protocol "
                                         r"\(did you mean 'protocol'\?\)") as e:
        load_suite(p)
    assert str(p) in str(e.value)
