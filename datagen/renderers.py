"""The renderer registry: ``RENDERERS.get(name)(**settings)`` -> a backend.

A backend has ``name``, ``version``, ``render(spec) -> RenderOutput`` (frames, segmentation,
depth, ground truth; see :mod:`skyloom.datagen.mujoco_render`) and ``close()``. Entries are lazy, so
importing this module loads neither MuJoCo nor the UnrealCV client.

Example:
    >>> from datagen.renderers import RENDERERS
    >>> RENDERERS.names()
    ['mujoco', 'unrealcv']
"""

from __future__ import annotations

from skyloom.registry import Registry

RENDERERS: Registry = Registry("renderer", group="skyloom.renderers")
RENDERERS.register_lazy("mujoco", "skyloom.datagen.mujoco_render:MujocoRenderer")
RENDERERS.register_lazy("unrealcv", "skyloom.datagen.unrealcv_render:UnrealCVRenderer")
