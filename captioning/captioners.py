"""The scene-graph captioner: exact captions of synthetic clips from their ground truth."""

from __future__ import annotations

from skyloom.captioning.base import CAPTIONERS, Captioner, ClipInput
from skyloom.captioning.config import CaptionConfig
from skyloom.captioning.scene_graph import caption_gt
from skyloom.captioning.vocab import TEMPLATE_VERSION
from skyloom.registry import NoOptions


@CAPTIONERS.register("scene-graph")
class SceneGraphCaptioner(Captioner):
    """Dense and short captions from ``skyloom-gt`` ground truth (exact by construction, seeded)."""

    name = "scene-graph"
    needs = "gt"
    config_class = NoOptions  # its settings are the job's scene_graph section

    def __init__(self, cfg: CaptionConfig | None = None, options: NoOptions | None = None) -> None:
        cfg = cfg or CaptionConfig()
        self.seed = cfg.scene_graph.seed
        self.kinds = tuple(cfg.scene_graph.kinds)
        self.model_id = "scene-graph"
        self.weights_hash = ""
        self.template_version = TEMPLATE_VERSION

    def caption_one(self, item: ClipInput) -> dict[str, str]:
        if item.gt is None:
            raise ValueError(f"clip {item.clip_id!r} has no ground truth; scene-graph captions need gt/<id>.json")
        return caption_gt(item.gt, item.clip_id, self.seed, self.kinds)

    @classmethod
    def caption_kinds(cls, cfg: CaptionConfig) -> tuple[str, ...]:
        return tuple(cfg.scene_graph.kinds)
