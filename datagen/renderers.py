"""The renderer registry and what a renderer backend returns.

``RENDERERS.build(name, options=renderer_options)`` -> a backend, built as ``cls(config)``. A backend
has ``name``, ``version``, a ``config_class`` frozen dataclass (its settings, given as
``renderer_options`` in the render config and checked against it), ``render(spec) -> RenderOutput``
and ``close()``. Every backend shows the same simulation
(:mod:`skyloom.datagen.simulate`) and returns the ground truth assembled by
:mod:`skyloom.datagen.groundtruth`. Entries are lazy, so importing this module loads neither
MuJoCo nor the UnrealCV client.

Example:
    >>> from skyloom.datagen.renderers import RENDERERS
    >>> RENDERERS.names()
    ['mujoco', 'unrealcv']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from skyloom.registry import Registry

RENDERERS: Registry = Registry("renderer", group="skyloom.renderers")
RENDERERS.register_lazy("mujoco", "skyloom.datagen.mujoco_render:MujocoRenderer")
RENDERERS.register_lazy("unrealcv", "skyloom.datagen.unrealcv_render:UnrealCVRenderer")


@dataclass
class RenderOutput:
    """What a backend returns for one scene."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    segmentation: np.ndarray  # (T, H, W) uint8, 0 = background, seg_id = object index + 1
    depth: np.ndarray  # (T, H, W) float32 metres
    gt: dict[str, Any]
