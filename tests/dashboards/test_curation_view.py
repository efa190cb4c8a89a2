"""The corpus view's annotations: the payload is `corpus stats`'s, and the browser draws one chart each."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    from skyloom.corpus import Corpus
    from skyloom.datagen.curate.annotate import AnnotateConfig, run_annotate
    from skyloom.datagen.curate.dedup import DedupConfig, run_dedup
    from tests.dashboards.fixtures import make_corpus

    root = make_corpus(tmp_path_factory.mktemp("curated"))
    c = Corpus(root)
    run_annotate(c, AnnotateConfig(annotators=("camera_motion", "technical"), executor="local"))
    run_dedup(c, DedupConfig(executor="local"))
    return root


def test_corpus_payload_carries_each_annotations_distribution(curated, tmp_path):
    from skyloom.corpus import Corpus
    from skyloom.dashboards import Dashboard
    from skyloom.datagen.curate.select import annotation_stats
    from tests.dashboards.fixtures import make_corpus

    (c,) = Dashboard([], corpora=[curated]).corpus()["corpora"]
    assert c["annotations"] == annotation_stats(Corpus(curated))["annotations"]
    assert {"camera_motion", "sharpness", "blockiness", "duplicate"} <= set(c["annotations"])
    assert sum(c["annotations"]["sharpness"]["hist"]["counts"]) == 6
    (plain,) = Dashboard([], corpora=[make_corpus(tmp_path)]).corpus()["corpora"]
    assert plain["annotations"] == {}  # no curation files: nothing to show, nothing computed


@pytest.mark.browser
def test_corpus_view_draws_the_annotations(curated, page):
    from skyloom.dashboards import Dashboard, create_app, serve_in_thread
    from tests.dashboards.conftest import open_view

    with serve_in_thread(create_app(Dashboard([], corpora=[curated]))) as url:
        open_view(page, url, "corpus")
        page.wait_for_selector(".charts.annotations svg")
        labels = page.eval_on_selector_all(".charts.annotations svg",
                                           "els => els.map(e => e.getAttribute('aria-label'))")
        assert {"sharpness", "camera_motion", "colourfulness"} <= set(labels)
        assert "highest:" in page.inner_text(".charts.annotations")
