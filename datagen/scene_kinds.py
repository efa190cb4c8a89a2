"""Scene kinds: what draws a render job's scene specs (``RenderConfig.scene_kind``).

A scene kind turns (the preset's ``scene`` section, a seed, the preset name, the scene index)
into a scene spec: plain data in the format :func:`skyloom.datagen.scenes.validate_spec` checks,
which every renderer consumes. The built-in ``objects`` kind is
:func:`skyloom.datagen.scenes.sample_spec` (objects on a floor, optional physics probes). Another
package adds a kind under the ``skyloom.scene_kinds`` entry point; its own settings come from
``RenderConfig.scene_options``, checked against its ``config_class`` (required).

Example:
    >>> from skyloom.datagen.scenes import SceneConfig
    >>> kind = build_scene_kind("objects")
    >>> kind.sample(SceneConfig(), seed=7, preset="demo", index=0)["preset"]
    'demo'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from skyloom.datagen.scenes import SceneConfig, check_scene_config, sample_spec
from skyloom.registry import NoOptions, Registry

SCENE_KINDS: Registry[type[SceneKind]] = Registry("scene kind", group="skyloom.scene_kinds")


class SceneKind:
    """Base class of a scene kind: :meth:`check` a preset's scene section, :meth:`sample` one spec.

    Built as ``cls(options)``: ``options`` is ``scene_options`` checked against the kind's
    ``config_class`` (a frozen dataclass, required; ``NoOptions`` when it takes none).
    """

    config_class: ClassVar[type | None] = None

    def check(self, scene: SceneConfig) -> None:
        """Validate the preset's ``scene`` section (raise a ``ValueError`` naming the key)."""
        check_scene_config(scene)

    def sample(self, scene: SceneConfig, seed: int, preset: str, index: int) -> dict[str, Any]:
        """The spec of scene ``index`` drawn with ``seed`` (same arguments -> same spec)."""
        raise NotImplementedError


@SCENE_KINDS.register("objects")
class ObjectsScene(SceneKind):
    """Objects (shapes, colours, materials) dropped, thrown or rolled on a floor; optional physics probes."""

    config_class = NoOptions  # its settings are the preset's scene section

    def __init__(self, options: NoOptions | None = None) -> None:
        pass

    def sample(self, scene: SceneConfig, seed: int, preset: str, index: int) -> dict[str, Any]:
        return sample_spec(scene, seed, preset=preset, index=index)


def build_scene_kind(name: str, options: Mapping[str, Any] | None = None) -> SceneKind:
    """Scene kind ``name`` with its ``options`` checked against its ``config_class``.

    Raises:
        skyloom.registry.RegistryError: unknown name (with the closest names).
        skyloom.config.ConfigError: options that do not fit the kind's ``config_class``.
    """
    return SCENE_KINDS.build(name, options=options, where="scene_options")
