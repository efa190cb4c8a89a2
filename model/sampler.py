"""Samplers for rectified flow: the readable unrolled ODE loop, with classifier-free guidance.

Integrates ``dx/dt = v(x, t)`` from t = 1 (noise) to t = 0 (data) on the schedule's (shifted)
grid with Euler or Heun (2nd order, Karras et al. 2022, arXiv 2206.00364 Alg. 1).

Classifier-free guidance (Ho & Salimans 2022, arXiv 2207.12598): the network is trained with
captions dropped to "" part of the time, so it predicts both ``v_c`` (with text) and ``v_u``
(without); sampling uses ``v = v_u + g (v_c - v_u)``. g = 1 is the plain conditional model
(one forward pass); g > 1 trades diversity for prompt adherence.

Given frames (image-to-video, extension): where ``given_mask`` is set, the state is reset to
the given clean latent after every step and its per-frame time is 0, so those frames come out
exactly as given.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from skyloom.errors import InvalidInputError
from skyloom.model.schedule import RectifiedFlow

VelocityFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
METHODS = ("euler", "heun")


def guided_velocity(model: VelocityFn, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor,
                    text_mask: torch.Tensor, null_text: torch.Tensor | None, null_mask: torch.Tensor | None,
                    guidance: float) -> torch.Tensor:
    """CFG velocity ``v_u + g (v_c - v_u)``; x (B, C, T, H, W), t (B, T), text (B, L, D)."""
    if guidance == 1.0 or null_text is None or null_mask is None:
        return model(x, t, text, text_mask)
    L = max(text.shape[1], null_text.shape[1])
    text, null_text = (torch.nn.functional.pad(z, (0, 0, 0, L - z.shape[1])) for z in (text, null_text))
    text_mask, null_mask = (torch.nn.functional.pad(m, (0, L - m.shape[1])) for m in (text_mask, null_mask))
    v = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([text, null_text]),
              torch.cat([text_mask, null_mask]))  # (2B, C, T, H, W) in one batched pass
    v_c, v_u = v.chunk(2)
    return v_u + guidance * (v_c - v_u)


class FlowSampler:
    """Euler/Heun sampler over a :class:`RectifiedFlow` schedule."""

    def __init__(self, schedule: RectifiedFlow, method: str = "euler", steps: int = 30, guidance: float = 4.0) -> None:
        if method not in METHODS:
            raise InvalidInputError(f"unknown sampler method {method!r}; valid: {', '.join(METHODS)}")
        self.schedule, self.method, self.steps, self.guidance = schedule, method, steps, guidance

    @torch.no_grad()
    def sample(self, model: VelocityFn, noise: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
               null_text: torch.Tensor | None = None, null_mask: torch.Tensor | None = None, *,
               given: torch.Tensor | None = None, given_mask: torch.Tensor | None = None,
               steps: int | None = None, guidance: float | None = None, num_tokens: int | None = None,
               method: str | None = None) -> torch.Tensor:
        """Integrate from ``noise`` (B, C, T, H, W) at t = 1 to a clean latent at t = 0.

        Args:
            given: clean latent (B, C, T, H, W) whose frames with ``given_mask`` (B, T) are kept.
            num_tokens: token count for the schedule's shift (default: latent voxels / 1).
        """
        steps = steps or self.steps
        g = self.guidance if guidance is None else guidance
        method = method or self.method
        if method not in METHODS:
            raise InvalidInputError(f"unknown sampler method {method!r}; valid: {', '.join(METHODS)}")
        B, _, T = noise.shape[:3]
        ts = self.schedule.timesteps(steps, num_tokens or noise[0, 0].numel())  # (steps+1,) float64
        keep = torch.zeros(B, T, dtype=torch.bool, device=noise.device) if given_mask is None else given_mask.bool()
        km = keep[:, None, :, None, None]  # (B, 1, T, 1, 1)

        def clamp(x: torch.Tensor) -> torch.Tensor:
            return torch.where(km, given, x) if given is not None else x

        def v_at(x: torch.Tensor, t: float) -> torch.Tensor:
            tt = torch.where(keep, 0.0, t).to(noise.dtype)  # (B, T): given frames at t = 0
            return guided_velocity(model, x, tt, text, text_mask, null_text, null_mask, g)

        x = clamp(noise)
        for i in range(steps):
            t, t_next = float(ts[i]), float(ts[i + 1])
            dt = t_next - t  # negative
            v = v_at(x, t)
            x_next = x + dt * v
            if method == "heun" and t_next > 0:
                x_next = x + dt * 0.5 * (v + v_at(clamp(x_next), t_next))
            x = clamp(x_next)
        return x
