"""Configuration of the captioning stage (frozen dataclasses; presets in ``configs/caption/``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

DEFAULT_VLM_PROMPT = ("Describe this video in one dense paragraph: every object with its colour, shape, size and "
                      "material, where it starts and how it moves (falls, bounces, rolls, slides, collides, comes to "
                      "rest, leaves the frame), the camera motion, the lighting and the background.")


@dataclass(frozen=True)
class FramesConfig:
    """How frames are sampled from a clip and shown to a vision-language model."""

    num_frames: int = 4
    layout: Literal["grid", "multi"] = "grid"  # one grid image, or one image per frame
    tile_size: int = 224  # each frame is resized to tile_size x tile_size
    image_format: Literal["jpeg", "png"] = "jpeg"  # for the endpoint's data URLs


@dataclass(frozen=True)
class SceneGraphConfig:
    seed: int = 0
    kinds: tuple[str, ...] = ("short", "dense")


@dataclass(frozen=True)
class HeuristicConfig:
    num_frames: int = 8
    size: int = 96  # frames are resized to size x size before colour and flow statistics


@dataclass(frozen=True)
class VLMLocalConfig:
    """A local ``transformers`` vision-language model (AutoModelForImageTextToText) from a folder."""

    model_path: str = ""
    prompt: str = DEFAULT_VLM_PROMPT
    frames: FramesConfig = field(default_factory=FramesConfig)
    max_new_tokens: int = 160
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.9
    num_beams: int = 1
    generate_batch: int = 8  # clips per generate() call (1 = no batching)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = "cpu"
    template_version: str = "vlm-1"


@dataclass(frozen=True)
class EndpointConfig:
    """An OpenAI-compatible chat-completions endpoint (vLLM, SGLang, Ollama, ...)."""

    base_url: str = ""  # e.g. http://127.0.0.1:8000/v1
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"  # name of the environment variable holding the key (may be unset)
    prompt: str = DEFAULT_VLM_PROMPT
    system: str = "You are a precise video captioner. Describe only what is visible."
    frames: FramesConfig = field(default_factory=lambda: FramesConfig(tile_size=336))
    max_tokens: int = 256
    temperature: float = 0.2
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 1.0  # first retry waits backoff_s, then 2x, 4x, ...
    max_concurrency: int = 4
    template_version: str = "vlm-1"


@dataclass(frozen=True)
class UpsampleConfig:
    mode: Literal["rules", "llm"] = "rules"
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)


@dataclass(frozen=True)
class CaptionConfig:
    """One captioning job over a corpus.

    ``captioner``: a name in ``skyloom.captioning.base.CAPTIONERS`` (built-ins or plug-ins from the
    ``skyloom.captioners`` entry point), or ``"auto"``: ``scene-graph`` for synthetic clips with
    ground truth, otherwise the first available of ``auto_fallback`` (``vlm-local`` needs
    ``vlm_local.model_path``, ``vlm-endpoint`` needs ``endpoint.base_url``; ``heuristic`` is always
    available). ``options``: captioner name -> its own settings (checked against that captioner's
    ``config_class``), e.g. ``--set options.mycaptioner.prefix=hi``.
    """

    corpus: str = ""
    captioner: str = "auto"
    auto_fallback: tuple[str, ...] = ("vlm-local", "vlm-endpoint", "heuristic")
    executor: Literal["auto", "ray", "local"] = "auto"  # auto: Ray from ray_min_clips clips or with an address
    ray_min_clips: int = 512  # the auto executor's threshold (measured in docs/benchmarks.md)
    num_actors: int = 2
    cpus_per_actor: float = 1.0
    batch_size: int = 16
    write_every: int = 256  # clips per manifest revision (a crash redoes at most this many)
    limit: int = 0  # caption at most this many clips (0 = all)
    overwrite: bool = False  # re-caption clips that already have this captioner's captions
    ray_address: str | None = None
    scene_graph: SceneGraphConfig = field(default_factory=SceneGraphConfig)
    heuristic: HeuristicConfig = field(default_factory=HeuristicConfig)
    vlm_local: VLMLocalConfig = field(default_factory=VLMLocalConfig)
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    upsample: UpsampleConfig = field(default_factory=UpsampleConfig)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # plug-in captioners' own settings
