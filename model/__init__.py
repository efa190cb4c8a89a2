"""model: a spacetime-patch diffusion transformer for text-to-video, image-to-video and extension.

Public names (imported lazily, so ``import model`` stays light):
    load_pipeline(ckpt, device="cpu") -> VideoPipeline   the generation API eval calls
    VideoPipeline                                       .generate(prompts, seeds, *, cond_frames, ...)
    run(cfg, corpus, out, ...) -> TrainResult           train (or resume) a DiT or the VAE in-process
    run_ray(cfg, corpus, out, ...) -> TrainResult       the same loop under Ray Train (DDP / FSDP)
    TrainConfig                                         the stage config (presets in configs/model/)
    VideoDiT, RectifiedFlow, FlowSampler                the network, the schedule, the sampler
    build_text_encoder, build_autoencoder               text encoders and video autoencoders
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "load_pipeline": "skyloom.model.pipeline", "VideoPipeline": "skyloom.model.pipeline",
    "run": "skyloom.model.train:train", "TrainResult": "skyloom.model.train",
    "run_ray": "skyloom.model.ray_train", "TrainConfig": "skyloom.model.config",
    "VideoDiT": "skyloom.model.dit", "RectifiedFlow": "skyloom.model.schedule", "FlowSampler": "skyloom.model.sampler",
    "build_text_encoder": "skyloom.model.text", "build_autoencoder": "skyloom.model.autoencoder",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod, _, attr = _LAZY[name].partition(":")
        return getattr(importlib.import_module(mod), attr or name)
    raise AttributeError(f"module 'model' has no attribute {name!r}")
