"""Caption planning streams the manifest's columns (issue 29): the clips it plans are exactly those a
record-by-record reading would, with the limit and overwrite options."""

from __future__ import annotations

from skyloom.captioning.config import CaptionConfig
from skyloom.captioning.runner import plan
from skyloom.corpus import Caption
from tests.core.test_corpus import make_record


def test_plan_matches_a_record_by_record_reading(tmp_corpus):
    recs = []
    for i in range(40):
        caps = ()
        if i % 4 == 1:
            caps = (Caption("heuristic", "heuristic", "done"),)
        elif i % 4 == 2:
            caps = (Caption("other", "heuristic", "someone else's"),)  # same kind, another captioner: still to do
        elif i % 4 == 3:
            caps = (Caption("heuristic", "short", "another kind"), Caption("x", "dense", "y"))
        recs.append(make_record(f"p{i:03d}", fps=8.0 + i, captions=caps))
    tmp_corpus.append(recs)
    cfg = CaptionConfig(corpus=str(tmp_corpus.root), captioner="heuristic")
    want = [(r.id, r.fps) for r in recs
            if ("heuristic", "heuristic") not in {(c.captioner, c.kind) for c in r.captions}]
    todo, skipped = plan(tmp_corpus, cfg)
    assert todo == {"heuristic": want} and skipped == {"heuristic": 10}
    todo, _ = plan(tmp_corpus, CaptionConfig(corpus=str(tmp_corpus.root), captioner="heuristic", limit=7))
    assert todo == {"heuristic": want[:7]}
    todo, skipped = plan(tmp_corpus, CaptionConfig(corpus=str(tmp_corpus.root), captioner="heuristic",
                                                   overwrite=True))
    assert todo == {"heuristic": [(r.id, r.fps) for r in recs]} and skipped == {}
