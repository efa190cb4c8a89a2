"""The training loop of ``skyloom train``: a DiT (``stage=dit``) or the video VAE (``stage=vae``).

One function, :func:`train`, used in-process on a laptop and per worker under Ray Train
(:mod:`skyloom.model.ray_train`). What it does each step (``stage=dit``):

1. next batch from the resumable bucket sampler (:mod:`skyloom.model.data`), frames -> [-1, 1];
2. latents from the (frozen) autoencoder; captions dropped to "" with ``text_dropout`` (CFG);
3. per-frame conditioning mask in ``mask_prob`` of the steps (Open-Sora 1.1): image-to-video
   (first latent frame given), extension (a prefix given) or random frames; given frames get
   t = 0, stay clean and weigh 0 in the loss;
4. rectified-flow loss (:mod:`skyloom.model.schedule`), AdamW, grad clipping, EMA; bf16 autocast on GPU.

Every random draw comes from a generator seeded by (seed, step, rank), and the sampler
position, optimizer, EMA and RNG are in every checkpoint: resuming continues the same run
(on CPU the loss curve after resume equals the uninterrupted one). A step-0 checkpoint is
always written; metrics go to ``RUN/metrics.jsonl`` (kind ``train``).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from skyloom.config import ConfigError, save_resolved
from skyloom.devices import torch_device
from skyloom.fsutil import atomic_write_json
from skyloom.model.checkpoint import (
    EMA,
    PIPELINE_FORMAT,
    PIPELINE_VERSION,
    CheckpointError,
    component_state,
    load_ae,
    load_state_file,
    load_weights,
    save_component,
)
from skyloom.model.config import TrainConfig
from skyloom.model.data import make_loader
from skyloom.model.schedule import RectifiedFlow
from skyloom.model.threads import start_threads
from skyloom.rundir import RunDir

logger = logging.getLogger(__name__)


@dataclass
class Dist:
    """Distributed context (defaults: one in-process worker)."""

    rank: int = 0
    world_size: int = 1
    prepare: Callable[[nn.Module], nn.Module] | None = None  # DDP/FSDP wrapper (Ray Train)
    data_index: str | None = None  # the training index this worker reads its shard of (Ray Train: the driver's)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass
class TrainResult:
    run: Path
    step: int
    last_checkpoint: Path | None
    losses: list[tuple[int, float]] = field(default_factory=list)
    stopped: str = "steps"


class Denoiser(nn.Module):
    """DiT + text encoder as one module (one DDP wrapper, one optimizer)."""

    def __init__(self, dit: nn.Module, text_encoder: nn.Module) -> None:
        super().__init__()
        self.dit, self.text_encoder = dit, text_encoder

    def forward(self, x: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        text, mask = self.text_encoder.encode(prompts)  # (B, L, Dt), (B, L)
        return self.dit(x, t, text, mask)  # (B, C, T, H, W)


def to_unit(video: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1]."""
    v = torch.as_tensor(video).to(device)
    return v.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


def sample_given_mask(B: int, T: int, prob: float, g: torch.Generator, prefixes: tuple[int, ...] = (),
                      prefix_share: float = 0.0) -> torch.Tensor:
    """Per-frame conditioning mask (B, T) bool, True = given clean frame (Open-Sora 1.1 style).

    With probability ``prob`` a sample gets a mask. Of those, ``prefix_share`` get a prefix whose
    length is drawn uniformly from ``prefixes`` (the lengths an evaluation gives, in latent frames);
    the others: 40% image-to-video (frame 0), 40% extension (a random prefix of 1..T-1 frames), 20%
    random frames. At least one frame is always noisy. Without ``prefixes`` the draws are the same
    as before they existed (same generator calls), so older runs resume unchanged.
    """
    mask = torch.zeros(B, T, dtype=torch.bool)
    if T < 2:
        return mask
    u = torch.rand(B, 3, generator=g)  # (B, 3)
    pre = [k for k in prefixes if 1 <= k < T]
    v = torch.rand(B, 2, generator=g) if pre else None  # (B, 2): use a listed prefix?, which one
    for b in range(B):
        if u[b, 0] >= prob:
            continue
        kind = u[b, 1]
        if v is not None and v[b, 0] < prefix_share:
            mask[b, :pre[min(int(v[b, 1] * len(pre)), len(pre) - 1)]] = True
        elif kind < 0.4:
            mask[b, 0] = True
        elif kind < 0.8:
            mask[b, :1 + int(u[b, 2] * (T - 1))] = True
        else:
            mask[b] = torch.rand(T, generator=g) < 0.5
            mask[b, int(u[b, 2] * T)] = False
    return mask


def motion_weight(x0: torch.Tensor, given: torch.Tensor, extra: float, threshold: float = 0.1) -> torch.Tensor:
    """Per-pixel loss weight (B, 1, T, H, W): ``1 + extra`` where a sample with given frames differs
    from its last given frame (:func:`skyloom.model.dit.reference_frame`) by more than ``threshold``
    in any channel, else 1; samples with no given frame weigh 1 everywhere."""
    from skyloom.model.dit import reference_frame

    ref = reference_frame(x0, torch.where(given, 0.0, 1.0))  # (B, C, 1, H, W), 0 where nothing is given
    moving = ((x0 - ref).abs().amax(dim=1, keepdim=True) > threshold) & given.any(dim=1)[:, None, None, None, None]
    return 1.0 + extra * moving.to(x0.dtype)  # (B, 1, T, H, W)


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0]))


def lr_at(cfg: TrainConfig, step: int) -> float:
    w = cfg.optim.warmup_steps
    return cfg.optim.lr * min(1.0, (step + 1) / w) if w > 0 else cfg.optim.lr


def pick_device(device: str | torch.device | None) -> torch.device:
    """The device to train on: ``device`` checked against this machine, or cuda when there is a GPU."""
    return torch_device(device)


def check_train_config(cfg: TrainConfig) -> None:
    """The ranges torch would reject later with a bare error (or silently train on): one line naming the field."""
    o = cfg.optim
    checks = [("steps", cfg.steps >= 0, ">= 0"), ("optim.lr", o.lr > 0 and math.isfinite(o.lr), "a number > 0"),
              ("optim.weight_decay", o.weight_decay >= 0, ">= 0"), ("optim.beta1", 0 <= o.beta1 < 1, "in [0, 1)"),
              ("optim.beta2", 0 <= o.beta2 < 1, "in [0, 1)"), ("optim.warmup_steps", o.warmup_steps >= 0, ">= 0"),
              ("optim.grad_clip", o.grad_clip >= 0, ">= 0 (0: no clipping)"),
              ("ema_decay", 0 <= cfg.ema_decay <= 1, "in [0, 1]"),
              ("mask_prob", 0 <= cfg.mask_prob <= 1, "in [0, 1]"),
              ("mask_prefix_share", 0 <= cfg.mask_prefix_share <= 1, "in [0, 1]"),
              ("motion_weight", cfg.motion_weight >= 0, ">= 0"),
              ("mask_prefixes", all(k >= 1 for k in cfg.mask_prefixes), "frame counts >= 1")]
    for name, ok, valid in checks:
        if not ok:
            value = getattr(cfg, name) if "." not in name else getattr(o, name.split(".")[1])
            raise ConfigError(f"{name} must be {valid}, got {value}")


class Trainer:
    """State of one training run; :meth:`run` is the loop."""

    def __init__(self, cfg: TrainConfig, corpus: str | Path, out: str | Path, *, resume: bool = True,
                 device: str | torch.device | None = None, dist: Dist | None = None) -> None:
        self.cfg, self.dist = cfg, dist or Dist()
        check_train_config(cfg)
        self.device = pick_device(device)
        self.governor = start_threads(cfg.num_threads, cfg.threads_recheck_s)  # None unless num_threads = -1
        self.threads = torch.get_num_threads()
        self.run_dir = RunDir.create(out, corpus=str(corpus), preset=cfg.name, stage=cfg.stage) \
            if self.dist.is_main else None
        self.out = Path(out)
        self.loader = make_loader(corpus, cfg.data, cfg.seed, self.dist.rank, self.dist.world_size,
                                  index_path=self.dist.data_index)
        self.schedule = RectifiedFlow(cfg.schedule)
        torch.manual_seed(cfg.seed)  # parameter init only; every later draw uses step generators
        if cfg.stage == "vae":
            from skyloom.model.autoencoder import build_autoencoder

            if cfg.ae.kind != "vae":
                raise ConfigError("--stage vae needs ae.kind=vae (use --preset vae)")
            self.ae = build_autoencoder(cfg.ae).to(self.device)
            self.trainable: nn.Module = self.ae
            self.ema_modules: dict[str, nn.Module] = {}
        else:
            from skyloom.model.dit import VideoDiT
            from skyloom.model.text import build_text_encoder

            text = build_text_encoder(cfg.text)
            if text.dim != cfg.dit.text_dim:
                raise ConfigError(f"dit.text_dim={cfg.dit.text_dim} but the text encoder gives {text.dim}-d features")
            self.ae = load_ae(cfg.ae).to(self.device).eval().requires_grad_(False)
            if self.ae.latent_channels != cfg.dit.in_channels:
                raise ConfigError(f"dit.in_channels={cfg.dit.in_channels} but the autoencoder has "
                                  f"{self.ae.latent_channels} latent channels")
            self.trainable = Denoiser(VideoDiT(cfg.dit), text).to(self.device)
            self.ema_modules = {"dit": self.trainable.dit, "text_encoder": self.trainable.text_encoder}
        params = [p for p in self.trainable.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2),
                                     weight_decay=cfg.optim.weight_decay, foreach=True)
        self.ema = EMA(self.ema_modules, cfg.ema_decay) if self.ema_modules else None
        self.step, self.elapsed = 0, 0.0
        self.model = self.dist.prepare(self.trainable) if self.dist.prepare else self.trainable
        if resume and self.run_dir_latest() is not None:
            self.load(self.run_dir_latest())
        if self.dist.is_main:  # after the resume: a config the run's checkpoint refuses leaves config.yaml as it was
            save_resolved(cfg, Path(out) / "config.yaml")

    # -- checkpoints -----------------------------------------------------------------------
    def run_dir_latest(self) -> Path | None:
        return RunDir(self.out).latest_checkpoint() if (self.out / "run.json").exists() else None

    def save(self) -> Path | None:
        """Write a complete checkpoint of the current step (main worker only)."""
        cfg = self.cfg
        # Every rank calls state_dict (FSDP gathers the full weights here); rank 0 writes.
        sd = (self.model if self.cfg.fsdp and self.dist.prepare else self.trainable).state_dict()
        sd = {k.replace("_fsdp_wrapped_module.", "").removeprefix("module."): v for k, v in sd.items()}
        opt_sd = self._optim_state()
        if not self.dist.is_main:
            return None
        b = cfg.data.buckets[0]
        with self.run_dir.begin_checkpoint(self.step) as d:
            atomic_write_json(d / "pipeline.json", {
                "format": PIPELINE_FORMAT, "version": PIPELINE_VERSION, "name": cfg.name, "stage": cfg.stage,
                "step": self.step, "fps": cfg.fps, "num_frames": b.num_frames, "height": b.height, "width": b.width,
                "schedule": _plain(cfg.schedule), "sampler": _plain(cfg.sampler), "has_ema": self.ema is not None})
            if cfg.stage == "vae":
                save_component(d, "vae", cfg.ae, None, state=sd)
            else:
                from skyloom.model.text import saves_weights

                save_component(d, "dit", cfg.dit, None, component_state(sd, "dit"))
                tsd = component_state(sd, "text_encoder")
                save_component(d, "text_encoder", cfg.text, None, tsd if saves_weights(cfg.text) else None)
                save_component(d, "vae", cfg.ae, self.ae if cfg.ae.kind == "vae" else None)
                if self.ema is not None:
                    save_component(d, "ema", {"decay": cfg.ema_decay, "components": sorted(self.ema_modules)},
                                   None, self.ema.shadow)
            (d / "state").mkdir()
            torch.save(opt_sd, d / "state" / "optimizer.pt")
            torch.save({"cpu": torch.get_rng_state()}, d / "state" / "rng.pt")
            atomic_write_json(d / "state" / "trainer.json", {
                "step": self.step, "elapsed_s": self.elapsed, "seed": cfg.seed,
                "sampler": self.loader.sampler.state_dict(), "world_size": self.dist.world_size})
        self._prune()
        return self.run_dir.checkpoint_dir(self.step)

    def _optim_state(self) -> dict[str, Any]:
        if self.cfg.fsdp and self.dist.prepare is not None:
            from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

            return FSDP.optim_state_dict(self.model, self.opt)
        return self.opt.state_dict()

    def _prune(self) -> None:
        keep = self.cfg.keep_checkpoints
        if keep <= 0:
            return
        cks = [(s, p) for s, p in self.run_dir.checkpoints() if s != 0]
        for _, p in cks[:-keep]:
            shutil.rmtree(p, ignore_errors=True)

    def load(self, ckpt: Path) -> None:
        """Restore weights, optimizer, EMA, sampler position and RNG from ``ckpt``."""
        info = load_state_file(ckpt / "state" / "rng.pt")
        trainer = __import__("json").loads((ckpt / "state" / "trainer.json").read_text())
        opt_sd = load_state_file(ckpt / "state" / "optimizer.pt")
        try:
            if self.cfg.stage == "vae":
                self.trainable.load_state_dict(load_weights(ckpt, "vae"))
            else:
                self.trainable.dit.load_state_dict(load_weights(ckpt, "dit"))
                tsd = load_weights(ckpt, "text_encoder")
                if tsd is not None:
                    self.trainable.text_encoder.load_state_dict(tsd)
                if self.ema is not None:
                    self.ema.load(load_weights(ckpt, "ema"))
        except (RuntimeError, TypeError, KeyError) as e:  # another architecture in --out: the user's choice of --out
            lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
            first = lines[1] if len(lines) > 1 else lines[0] if lines else type(e).__name__  # the first mismatch
            raise CheckpointError(f"{ckpt}: cannot resume this run with the given config (it was trained with "
                                  f"another model shape: {first}); use the run's own config.yaml, or another --out") \
                from None
        if self.cfg.fsdp and self.dist.prepare is not None:
            from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

            opt_sd = FSDP.optim_state_dict_to_load(self.model, self.opt, opt_sd)
        self.opt.load_state_dict(opt_sd)
        torch.set_rng_state(info["cpu"])
        self.step, self.elapsed = int(trainer["step"]), float(trainer["elapsed_s"])
        self.loader.sampler.load_state_dict(trainer["sampler"])
        if self.dist.is_main:
            self.run_dir.truncate_metrics(self.step)
        logger.info("resumed from %s (step %d)", ckpt, self.step)

    # -- one step --------------------------------------------------------------------------
    def loss(self, video: np.ndarray, captions: list[str], g: torch.Generator) -> tuple[torch.Tensor, int]:
        """Loss of one batch and its token count."""
        cfg = self.cfg
        x = to_unit(video, self.device)  # (B, 3, T, H, W)
        if cfg.stage == "vae":
            loss, _ = self.ae.loss(x, g)
            return loss, x[0, 0].numel()
        with torch.no_grad():
            x0 = self.ae.encode(x).float()  # (B, C, T', H', W')
        B, _, T = x0.shape[:3]
        grid = self.trainable.dit.grid(tuple(x0.shape))
        n_tok = grid[0] * grid[1] * grid[2]
        drop = torch.rand(B, generator=g) < cfg.text_dropout
        prompts = ["" if d else c for c, d in zip(captions, drop.tolist())]
        t = self.schedule.sample_t(B, n_tok, g)  # (B,)
        prefixes = tuple(self.ae.given_latent_frames(k) for k in cfg.mask_prefixes)  # video -> latent frames
        given = sample_given_mask(B, T, cfg.mask_prob, g, prefixes, cfg.mask_prefix_share)  # (B, T)
        t_frames = torch.where(given, 0.0, t[:, None]).to(self.device)  # (B, T)
        eps = torch.randn(x0.shape, generator=g).to(self.device)  # (B, C, T, H, W)
        x_t = self.schedule.interpolate(x0, eps, t_frames)
        use_amp = cfg.amp and self.device.type == "cuda"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
            v = self.model(x_t, t_frames, prompts)
        weight = motion_weight(x0, given.to(self.device), cfg.motion_weight) if cfg.motion_weight > 0 else None
        return self.schedule.loss(v, self.schedule.target(x0, eps), ~given.to(self.device), weight), n_tok

    def run(self, on_step: Callable[[int, float], None] | None = None, progress_bar: bool = True) -> TrainResult:
        """Train until ``cfg.steps`` or ``cfg.max_minutes``; always leaves a checkpoint at the end.

        Metrics go to ``RUN/metrics.jsonl`` and to the trackers of ``cfg.log.report_to``.
        """
        from skyloom.trackers import Trackers

        self.trackers = Trackers(self.cfg.log, self.out, f"{self.out.name} ({self.cfg.name})", _plain(self.cfg),
                                 start_step=self.step) if self.dist.is_main else None
        try:
            return self._run(on_step, progress_bar)
        finally:
            if self.trackers is not None:
                self.trackers.close()

    def log_metrics(self, step: int, kind: str, **values: Any) -> None:
        """One metrics line: ``RUN/metrics.jsonl`` (the dashboard reads it) and every tracker."""
        self.run_dir.log_metrics(step, kind=kind, **values)
        if self.trackers is not None:
            self.trackers.log(step, kind, values)

    def _run(self, on_step: Callable[[int, float], None] | None, progress_bar: bool) -> TrainResult:
        from skyloom.cli_common import progress

        cfg = self.cfg
        last = self.run_dir_latest()
        if self.step == 0 and (last is None or not (last.name == "step-00000000")):
            last = self.save() or last  # the "before" checkpoint
        losses: list[tuple[int, float]] = []
        window: list[float] = []
        t_begin = t_start = t_log = time.perf_counter()  # t_begin: this invocation (max_minutes)
        n_samples = n_tokens = 0
        stopped = "steps"
        disable = not (progress_bar and self.dist.is_main) or None
        with progress(disable=disable) as bar:
            task = bar.add_task(f"train {cfg.name} ({cfg.stage})", total=cfg.steps, completed=self.step)
            while self.step < cfg.steps:
                if cfg.max_minutes > 0 and time.perf_counter() - t_begin >= cfg.max_minutes * 60:
                    stopped = "max_minutes"
                    break
                batch = next(self.loader)
                if self.governor is not None:  # follow the CPUs actually free (skyloom.model.threads)
                    self.threads = self.governor.maybe_adjust()
                g = step_generator(cfg.seed, self.step, self.dist.rank)
                lr = lr_at(cfg, self.step)
                for group in self.opt.param_groups:
                    group["lr"] = lr
                self.model.train()
                loss, n_tok = self.loss(batch.video, batch.captions, g)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss is {float(loss)} at step {self.step}; lower optim.lr")
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                gn = torch.nn.utils.clip_grad_norm_(self.trainable.parameters(),
                                                    cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else math.inf)
                self.opt.step()
                self.step += 1
                if self.ema is not None:
                    self.ema.update(self.ema_modules, self.step)
                lv = float(loss.detach())
                if self.trackers is not None:  # every optimizer step, at the step whose weights gave the loss
                    self.trackers.log_step(self.step - 1, {"step_loss": lv, "lr": lr})
                losses.append((self.step, lv))
                window.append(lv)
                n_samples += len(batch.captions) * self.dist.world_size
                n_tokens += n_tok * len(batch.captions) * self.dist.world_size
                bar.update(task, completed=self.step, description=f"train {cfg.name} loss {lv:.4f}")
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    now = time.perf_counter()
                    dt = max(now - t_log, 1e-9)
                    if self.dist.is_main:
                        self.log_metrics(self.step, kind="train", loss=float(np.mean(window)), lr=lr,
                                         samples_per_s=n_samples / dt, tokens_per_s=n_tokens / dt,
                                         grad_norm=float(gn), epoch=self.loader.sampler.epoch,
                                         threads=self.threads)
                    window, n_samples, n_tokens, t_log = [], 0, 0, now
                if on_step is not None:
                    on_step(self.step, lv)
                if self.step % cfg.ckpt_every == 0:
                    self.elapsed += time.perf_counter() - t_start
                    t_start = time.perf_counter()
                    last = self.save() or last
        self.elapsed += time.perf_counter() - t_start
        if last is None or last.name != f"step-{self.step:08d}":
            last = self.save() or last
        return TrainResult(run=self.out, step=self.step, last_checkpoint=last, losses=losses, stopped=stopped)


def _plain(cfg: Any) -> dict[str, Any]:
    from skyloom.config import to_dict

    return to_dict(cfg)


def train(cfg: TrainConfig, corpus: str | Path, out: str | Path, *, resume: bool = True, fresh: bool = False,
          device: str | torch.device | None = None, dist: Dist | None = None,
          on_step: Callable[[int, float], None] | None = None, progress_bar: bool = True) -> TrainResult:
    """Train (or resume) into run directory ``out``; see the module docstring.

    Args:
        fresh: delete ``out``'s checkpoints and metrics first (start over).
        on_step: called after every optimizer step with (step, loss).
    """
    out = Path(out)
    if fresh and (dist is None or dist.is_main):
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        (out / "metrics.jsonl").unlink(missing_ok=True)
    tr = Trainer(cfg, corpus, out, resume=resume and not fresh, device=device, dist=dist)
    return tr.run(on_step=on_step, progress_bar=progress_bar)
