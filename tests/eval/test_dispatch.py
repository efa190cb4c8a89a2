"""One dispatch for suites and ``eval score``: a metric's declared inputs decide what update() gets."""

from __future__ import annotations

import numpy as np
import pytest

from skyloom.eval.metrics import METRICS
from skyloom.eval.metrics import inputs as dispatch


class _Declared:
    name = "declared"
    inputs = ("videos", "item_ids", "reference")
    optional_inputs = ("specs",)


def test_update_kwargs_follow_the_declaration():
    vids = [np.zeros((4, 8, 8, 3), np.uint8), np.zeros((4, 8, 8, 3), np.uint8)]
    ref = np.full((4, 16, 16, 3), 200, np.uint8)
    items = [{"item_id": "a", "prompt": "p", "reference": ref, "specs": {"s": 1}},
             {"item_id": "b", "prompt": "q", "reference": ref}]
    kw = dispatch.update_kwargs(_Declared(), items, vids)
    # required inputs passed, the optional one left out because item b lacks it, prompts never asked for
    assert sorted(kw) == ["item_ids", "reference"] and kw["item_ids"] == ["a", "b"]
    assert [r.shape for r in kw["reference"]] == [(4, 8, 8, 3)] * 2 and int(kw["reference"][0][0, 0, 0, 0]) == 200
    assert sorted(dispatch.update_kwargs(_Declared(), items[:1], vids[:1])) == ["item_ids", "reference", "specs"]
    with pytest.raises(dispatch.MissingInputError, match=r"metric 'declared' needs reference .*missing for b"):
        dispatch.update_kwargs(_Declared(), [items[0], {"item_id": "b"}], vids)
    assert dispatch.missing_inputs(_Declared(), {"item_id": "c"}) == ["reference"]


def test_builtin_metrics_declare_what_their_update_takes():
    assert dispatch.required_inputs(METRICS.get("clipsim")) == ("videos", "item_ids", "prompts")
    assert dispatch.required_inputs(METRICS.get("physics_trajectory")) == ("videos", "item_ids", "reference",
                                                                          "ground_truth")
    assert dispatch.optional_inputs(METRICS.get("physics_iq")) == ("variance", "specs")
    assert [n for n in METRICS.names() if dispatch.is_set_metric(METRICS.get(n))] == ["fvd", "kvd"]
    import inspect

    for name in METRICS.names():  # every declared per-video input is a keyword of update()
        cls = METRICS.get(name)
        params = inspect.signature(cls.update).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        for inp in (*dispatch.required_inputs(cls), *dispatch.optional_inputs(cls)):
            if inp not in ("videos", "real_videos"):
                assert inp in params or takes_any, (name, inp)


def test_an_undeclared_input_name_is_refused():
    class Bad:
        name = "bad"
        inputs = ("videos", "captions")

    with pytest.raises(ValueError, match=r"metric 'bad' declares unknown inputs \['captions'\]; valid: videos"):
        dispatch.required_inputs(Bad)
