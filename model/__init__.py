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
    "load_pipeline": "model.pipeline", "VideoPipeline": "model.pipeline",
    "run": "model.train:train", "TrainResult": "model.train",
    "run_ray": "model.ray_train", "TrainConfig": "model.config",
    "VideoDiT": "model.dit", "RectifiedFlow": "model.schedule", "FlowSampler": "model.sampler",
    "build_text_encoder": "model.text", "build_autoencoder": "model.autoencoder",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod, _, attr = _LAZY[name].partition(":")
        return getattr(importlib.import_module(mod), attr or name)
    raise AttributeError(f"module 'model' has no attribute {name!r}")
