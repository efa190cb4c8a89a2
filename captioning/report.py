"""Corpus-level caption reports: verification against ground truth and caption statistics."""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from typing import Any

from skyloom.captioning.verify import verify_caption
from skyloom.corpus import Corpus

_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z]+)*")


def verify_corpus(corpus: Corpus, captioner: str | None = None, kind: str | None = None) -> dict[str, Any]:
    """Precision/recall of every caption of every clip with ground truth, per (captioner, kind).

    Returns ``{"groups": {"captioner/kind": {n, precision (micro), recall (micro), macro_precision,
    macro_recall, hallucinated_clips}}, "clips": [...per caption reports...], "no_gt": n}``.
    """
    groups: dict[str, dict[str, Any]] = defaultdict(lambda: {"n": 0, "stated": 0, "truth": 0, "matched": 0,
                                                             "matched_p": 0.0, "p": [], "r": [],
                                                             "hallucinated_clips": 0})
    clips, no_gt = [], 0
    for rec in (r for batch in corpus.iter_records(4096, columns=["captions"]) for r in batch):
        caps = [c for c in rec.captions
                if (captioner is None or c.captioner == captioner) and (kind is None or c.kind == kind)]
        if not caps:
            continue
        try:
            gt = corpus.read_ground_truth(rec.id)
        except KeyError:
            no_gt += 1
            continue
        for c in caps:
            r = verify_caption(c.text, gt)
            g = groups[f"{c.captioner}/{c.kind}"]
            g["n"] += 1
            g["stated"] += r.n_caption_facts
            g["truth"] += r.n_gt_facts
            g["matched"] += r.n_matched
            g["matched_p"] += r.precision * r.n_caption_facts
            g["p"].append(r.precision)
            g["r"].append(r.recall)
            g["hallucinated_clips"] += bool(r.hallucinated)
            clips.append({"clip": rec.id, "captioner": c.captioner, "kind": c.kind, **r.to_dict()})
    out = {}
    for name, g in sorted(groups.items()):
        out[name] = {"n": g["n"], "precision": g["matched_p"] / g["stated"] if g["stated"] else 1.0,
                     "recall": g["matched"] / g["truth"] if g["truth"] else 1.0,
                     "macro_precision": statistics.fmean(g["p"]), "macro_recall": statistics.fmean(g["r"]),
                     "hallucinated_clips": g["hallucinated_clips"]}
    return {"corpus": str(corpus.root), "groups": out, "no_gt": no_gt, "clips": clips}


def caption_stats(corpus: Corpus) -> dict[str, Any]:
    """Per (captioner, kind): count, words per caption, vocabulary, distinct captions; corpus coverage."""
    by: dict[str, list[str]] = defaultdict(list)
    kinds: Counter[str] = Counter()
    covered: Counter[str] = Counter()
    for batch in corpus.iter_records(4096, columns=["captions", "source_kind"]):  # streamed: one batch of rows
        for r in batch:
            kinds[r.source_kind] += 1
            covered[r.source_kind] += bool(r.captions)
            for c in r.captions:
                by[f"{c.captioner}/{c.kind}"].append(c.text)
    groups = {}
    for name, texts in sorted(by.items()):
        words = [_WORD.findall(t.lower()) for t in texts]
        lengths = [len(w) for w in words]
        vocab = Counter(w for ws in words for w in ws)
        groups[name] = {
            "captions": len(texts), "words_mean": statistics.fmean(lengths), "words_median": statistics.median(lengths),
            "words_min": min(lengths), "words_max": max(lengths), "vocabulary": len(vocab),
            "type_token_ratio": len(vocab) / max(1, sum(lengths)),
            "distinct_fraction": len(set(texts)) / len(texts),
            "top_words": [w for w, _ in vocab.most_common(10)],
        }
    n = sum(kinds.values())
    return {"corpus": str(corpus.root), "clips": n, "captioned": sum(covered.values()),
            "coverage": sum(covered.values()) / n if n else 0.0,
            "coverage_by_source": {k: covered[k] / v for k, v in kinds.items()},
            "groups": groups, "quarantined": len(corpus.quarantined("caption"))}
