"""Typed configuration of the model stage: one frozen dataclass per component.

YAML presets in ``configs/model/`` (``vdit-tiny``, ``vdit-s``, ``vdit-b``, ``vdit-xl``, ``vae``)
only serialise :class:`TrainConfig`; ``--set a.b=value`` overrides are type-checked by
:mod:`skyloom.config`. The component configs (:class:`DiTConfig`, :class:`TextConfig`,
:class:`AEConfig`) are also the ``config.json`` written beside each component's weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from skyloom.trackers import LogConfig


@dataclass(frozen=True)
class DiTConfig:
    """Spacetime-patch diffusion transformer (see :mod:`skyloom.model.dit`)."""

    in_channels: int = 3  # latent channels (3 for the pixel-space autoencoder)
    patch: tuple[int, int, int] = (1, 4, 4)  # (pt, ph, pw)
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    text_dim: int = 128  # width of the text encoder's token features
    attention: Literal["full", "factorised"] = "full"
    qk_norm: bool = True
    rope_theta: float = 10000.0
    grad_checkpointing: bool = False
    # "v": the network outputs the velocity. "x0": it outputs the clean latent and returns
    # v = (x_t - x0) / max(t, t_min) (JiT, Li & He 2025, arXiv 2511.13720): needed in pixel space
    # when a patch (pt*ph*pw*C values) is wider than the model, since noise cannot pass a bottleneck.
    prediction: Literal["v", "x0"] = "v"
    t_min: float = 0.05
    # Concatenate a "given frame" channel (1 where the frame's t == 0) to the input, so a patch
    # that mixes a given frame with noisy ones (pt > 1) still knows which of its frames is clean.
    given_channel: bool = False
    # Add a fixed 3D sin-cos absolute position embedding (t, h, w split of the width, as in
    # Latte / Open-Sora) to the patch tokens, on top of RoPE: with it the sky/floor layout forms
    # at once (vdit-tiny: -30% clean-frame error at high noise at step 100, docs/model.md).
    abs_pos: bool = False
    # Frame-wise reference path for continuation: the last given (t == 0) frame, repeated over
    # time, is concatenated to the input channels of every frame (zeros where no frame is given),
    # so every token sees, at its own pixels, what the given frames showed (colour, background):
    # the appearance is carried forward by the input instead of recovered through attention.
    ref_frame: bool = False
    # With ref_frame: the x0 prediction is the reference frame plus the network's output (zero at
    # init), so an untrained model continues with the last given frame frozen and training learns
    # the change; samples without a given frame are unaffected (their reference is 0).
    ref_residual: bool = False


@dataclass(frozen=True)
class TextConfig:
    """Text encoder (see :mod:`skyloom.model.text`).

    ``kind``: a name in ``skyloom.model.text.TEXT_ENCODERS``: ``tiny`` (small trainable transformer
    over open_clip's bundled BPE tokenizer, no download), ``open_clip`` (the text tower of an
    open_clip CLIP; ``pretrained`` = a local weights file or an open_clip pretrained tag already in
    the local cache), ``t5`` (transformers T5 encoder from a local folder in ``pretrained``), or one
    a plug-in registers under the ``skyloom.text_encoders`` entry point. ``options`` are that
    encoder's own settings, checked against its ``config_class``.
    """

    kind: str = "tiny"  # checked against the registry when the encoder is built
    max_length: int = 32
    dim: int = 128
    depth: int = 2
    heads: int = 4
    vocab_size: int = 49408
    open_clip_model: str = "ViT-B-32"
    pretrained: str = ""
    trainable: bool = True
    options: dict[str, Any] = field(default_factory=dict)  # the encoder's own config_class fields


@dataclass(frozen=True)
class AEConfig:
    """Video autoencoder (see :mod:`skyloom.model.autoencoder`).

    ``kind``: a name in ``skyloom.model.autoencoder.AUTOENCODERS``. ``identity``: pixel space
    (frames scaled to [-1, 1]). ``vae``: causal 3D conv VAE with ``temporal_factor`` x
    ``spatial_factor`` x ``spatial_factor`` compression; ``ckpt`` points to a run or checkpoint
    trained with ``skyloom train --stage vae`` (empty = random init, only for ``--stage vae``
    itself and benchmarks). Plug-ins register under the ``skyloom.autoencoders`` entry point;
    ``options`` are their own settings, checked against their ``config_class``.
    """

    kind: str = "identity"  # checked against the registry when the autoencoder is built
    ckpt: str = ""
    latent_channels: int = 4
    base_channels: int = 32
    spatial_factor: int = 8
    temporal_factor: int = 4
    scaling: float = 1.0
    kl_weight: float = 1e-6
    options: dict[str, Any] = field(default_factory=dict)  # a plug-in autoencoder's config_class fields


@dataclass(frozen=True)
class ScheduleConfig:
    """Rectified-flow schedule (see :mod:`skyloom.model.schedule`)."""

    logit_mean: float = 0.0
    logit_std: float = 1.0
    shift: bool = True  # resolution/length-dependent shift of t
    shift_base_tokens: int = 256  # token count at which the shift is 1


@dataclass(frozen=True)
class SamplerConfig:
    """Default sampler settings stored with the checkpoint (see :mod:`skyloom.model.sampler`)."""

    method: Literal["euler", "heun"] = "euler"
    steps: int = 30
    guidance: float = 4.0


@dataclass(frozen=True)
class Bucket:
    """One (resolution, frames, aspect) bucket with its own batch size."""

    height: int = 32
    width: int = 32
    num_frames: int = 16
    batch_size: int = 8


@dataclass(frozen=True)
class DataConfig:
    """Corpus -> training batches (see :mod:`skyloom.model.data`)."""

    buckets: tuple[Bucket, ...] = (Bucket(),)
    split: str = "train"
    frame_stride: int = 1
    # VLM captions are what real footage has; heuristic ones describe colours, not content.
    caption_kinds: tuple[str, ...] = ("dense", "short", "vlm")
    caption_mode: Literal["newest", "random"] = "newest"  # random: one of the kinds, drawn per step
    # Decoded clips are kept in an LRU cache of at most cache_mb MiB (per worker): 1 GiB holds every
    # clip of a 5k-clip corpus at 32 px, ~340 clips at vdit-b's buckets; a larger corpus streams from disk.
    cache_clips: bool = True  # false: no cache (every step decodes its clips)
    cache_mb: int = 1024
    max_clips: int = 0  # 0 = all (the first N by id; source=corpus only)
    # Where clips come from: "corpus" (the manifest's training index + clips/) or "wds" (stream the tar
    # shards of `skyloom corpus export-wds`: sequential reads, no manifest, each worker its own shards).
    source: Literal["corpus", "wds"] = "corpus"
    wds_dir: str = ""  # source=wds: the export folder ("" = CORPUS/shards; relative = to the corpus)
    shuffle_buffer: int = 256  # source=wds: samples held for shuffling within the stream (metadata only)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 3e-4
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.99
    warmup_steps: int = 50
    grad_clip: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``skyloom train`` needs; saved resolved as ``RUN/config.yaml``."""

    name: str = "vdit-tiny"
    stage: Literal["dit", "vae"] = "dit"
    seed: int = 0
    steps: int = 2000
    max_minutes: float = 0.0  # 0 = no wall-clock limit
    log_every: int = 10
    ckpt_every: int = 250
    keep_checkpoints: int = 0  # 0 = keep all; else the newest N (step 0 is always kept)
    text_dropout: float = 0.1  # captions replaced by "" (for classifier-free guidance)
    mask_prob: float = 0.5  # fraction of samples with given (clean) frames: i2v / extension
    # Prefix lengths (in video frames) an evaluation gives, e.g. the physics suite's 4 cond_frames:
    # of the masked samples, mask_prefix_share get a prefix of one of these lengths (drawn uniformly),
    # the rest the generic mix of skyloom.model.train.sample_given_mask.
    mask_prefixes: tuple[int, ...] = ()
    mask_prefix_share: float = 0.0
    # Loss weight on what changes after the given frames: in samples with given frames, pixels whose
    # clean value differs from the last given frame's (by > 0.1 on [-1, 1] in any channel: the moving
    # objects, where they go and where they were) weigh 1 + motion_weight. 0 = plain MSE.
    motion_weight: float = 0.0
    ema_decay: float = 0.999
    amp: bool = True  # bf16 autocast on GPU (ignored on CPU)
    # torch CPU threads: 0 = leave torch's default; -1 = auto (skyloom.model.threads.ThreadGovernor: the
    # CPUs actually free, from the kernel's idle counters, re-checked while training); N > 0 = exactly N.
    num_threads: int = 0
    threads_recheck_s: float = 10.0  # num_threads=-1: seconds between re-checks of the free CPUs
    fps: float = 8.0  # frame rate of generated videos
    fsdp: bool = False  # Ray Train: FSDP instead of DDP
    dit: DiTConfig = field(default_factory=DiTConfig)
    text: TextConfig = field(default_factory=TextConfig)
    ae: AEConfig = field(default_factory=AEConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    log: LogConfig = field(default_factory=LogConfig)  # TensorBoard event files beside metrics.jsonl; W&B/MLflow
