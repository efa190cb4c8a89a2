"""Curation of a corpus: near-duplicate and semantic dedup, annotations, filters, embeddings and search.

Public names (imported lazily):
    run_dedup(corpus, DedupConfig) -> DedupResult           mark near-duplicate groups (``corpus dedup``)
    run_annotate(corpus, AnnotateConfig) -> AnnotateResult  annotations.parquet (``corpus annotate``)
    ANNOTATORS                                              the annotator registry
    run_filter(corpus, rules, name) -> FilterResult         select clips by annotation (``corpus filter``)
    annotation_stats(corpus) -> dict                        distributions and extremes (``corpus stats``)
    run_embed / semantic_dedup / search                     embeddings.parquet, SemDeDup, nearest clips
    read_annotations(corpus) -> DataFrame                   manifest + annotations + dedup marks
    CurateConfig                                            the curation section of an ingest preset
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "run_dedup": "skyloom.datagen.curate.dedup", "DedupConfig": "skyloom.datagen.curate.dedup",
    "run_annotate": "skyloom.datagen.curate.annotate", "AnnotateConfig": "skyloom.datagen.curate.annotate",
    "read_annotations": "skyloom.datagen.curate.annotate",
    "ANNOTATORS": "skyloom.datagen.curate.annotators",
    "run_filter": "skyloom.datagen.curate.select", "annotation_stats": "skyloom.datagen.curate.select",
    "CurateConfig": "skyloom.datagen.curate.select",
    "run_embed": "skyloom.datagen.curate.embed", "semantic_dedup": "skyloom.datagen.curate.embed",
    "search": "skyloom.datagen.curate.embed", "EmbedConfig": "skyloom.datagen.curate.embed",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skyloom.datagen.curate' has no attribute {name!r}")
