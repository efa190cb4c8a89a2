"""Rectified-flow noise schedule: owns timesteps, the noising path and the loss target.

Rectified flow (Liu et al. 2022, arXiv 2209.03003; SD3, Esser et al. 2024, arXiv 2403.03206):

* path ``x_t = (1 - t) x0 + t eps`` with ``eps ~ N(0, I)``, t in [0, 1] (t = 1 is pure noise);
* target velocity ``v = dx_t/dt = eps - x0`` (the network regresses it with an MSE);
* training t from the logit-normal ``t = sigmoid(N(m, s))`` (SD3 Sec. 3.1) and a resolution /
  length shift ``t' = a t / (1 + (a - 1) t)`` with ``a = sqrt(num_tokens / base_tokens)``
  (SD3 Sec. 5.3.2; Open-Sora 1.2): bigger videos carry more signal at a given noise level, so
  their t is pushed towards noise. The same shift bends the sampler's time grid.

Frames given as conditioning (image-to-video, extension) have t = 0 per frame: they stay
clean and are excluded from the loss (Open-Sora 1.1).
"""

from __future__ import annotations

import math

import torch

from skyloom.errors import InvalidInputError
from skyloom.model.config import ScheduleConfig


def apply_shift(t: torch.Tensor, shift: float) -> torch.Tensor:
    """``t' = a t / (1 + (a - 1) t)``: monotone map of [0, 1] onto itself (a > 1 -> noisier)."""
    return shift * t / (1 + (shift - 1) * t)


class RectifiedFlow:
    """The schedule object: timesteps, interpolation, target and loss.

    Example:
        >>> import torch
        >>> rf = RectifiedFlow(ScheduleConfig(shift=False))
        >>> x0, eps = torch.zeros(1, 3, 2, 4, 4), torch.ones(1, 3, 2, 4, 4)
        >>> float(rf.interpolate(x0, eps, torch.full((1, 2), 0.25)).mean())
        0.25
    """

    def __init__(self, cfg: ScheduleConfig | None = None) -> None:
        self.cfg = cfg or ScheduleConfig()

    def shift_for(self, num_tokens: int) -> float:
        """Resolution/length shift ``sqrt(num_tokens / base_tokens)`` (1 when disabled)."""
        return math.sqrt(num_tokens / self.cfg.shift_base_tokens) if self.cfg.shift else 1.0

    def sample_t(self, batch: int, num_tokens: int, generator: torch.Generator,
                 device: torch.device | str = "cpu") -> torch.Tensor:
        """Training times: logit-normal, then shifted. Returns (B,) in (0, 1)."""
        u = torch.randn(batch, generator=generator) * self.cfg.logit_std + self.cfg.logit_mean  # (B,)
        return apply_shift(torch.sigmoid(u), self.shift_for(num_tokens)).to(device)

    @staticmethod
    def interpolate(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x_t = (1 - t) x0 + t eps``; x0/eps (B, C, T, H, W), t per frame (B, T)."""
        tt = t[:, None, :, None, None].to(x0.dtype)  # (B, 1, T, 1, 1)
        return (1 - tt) * x0 + tt * eps

    @staticmethod
    def target(x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Velocity target ``v = eps - x0`` (B, C, T, H, W)."""
        return eps - x0

    @staticmethod
    def loss(v_pred: torch.Tensor, v_target: torch.Tensor, noisy: torch.Tensor,
             weight: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted MSE over noisy frames only; ``noisy`` (B, T) bool/float (given frames weigh 0),
        ``weight`` an optional per-pixel weight (B, 1, T, H, W) (the mean is taken under it)."""
        w = noisy.to(v_pred.dtype)[:, None, :, None, None]  # (B, 1, T, 1, 1)
        if weight is not None:
            w = w * weight.to(v_pred.dtype)  # (B, 1, T, H, W)
        se = (v_pred.float() - v_target.float()).pow(2) * w  # (B, C, T, H, W)
        denom = (w.expand_as(se).sum()).clamp_min(1.0)
        return se.sum() / denom

    def timesteps(self, steps: int, num_tokens: int) -> torch.Tensor:
        """Sampler time grid from 1 (noise) to 0 (data), shifted: (steps + 1,)."""
        if steps < 1:
            raise InvalidInputError(f"steps must be >= 1, got {steps}")
        return apply_shift(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64), self.shift_for(num_tokens))
