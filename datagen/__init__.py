"""datagen: build corpora. Synthetic scenes rendered with ground truth, and licensed clips ingested.

Public names (imported lazily, so ``import datagen`` stays light):
    run_render(cfg) -> RenderResult        render a preset's scenes into a corpus (Ray job)
    render_spec(spec) -> (frames, gt)      render one scene spec in-process, no corpus
    perturb_spec(spec, scale, seed)        tiny perturbations of a spec's initial conditions
    sample_specs(cfg, num, seed)           draw seeded scene specs from a preset
    run_ingest(cfg) -> IngestResult        ingest a source manifest of licensed clips (Ray Data)
    takedown(corpus, source)               remove everything derived from one source
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "run_render": "skyloom.datagen.render", "render_spec": "skyloom.datagen.render",
    "perturb_spec": "skyloom.datagen.render", "sample_specs": "skyloom.datagen.render",
    "RenderConfig": "skyloom.datagen.render",
    "run_ingest": "skyloom.datagen.ingest", "takedown": "skyloom.datagen.ingest",
    "IngestConfig": "skyloom.datagen.ingest",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'datagen' has no attribute {name!r}")
