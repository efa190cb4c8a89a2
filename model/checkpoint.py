"""Checkpoint folders: one sub-folder per component plus the full training state.

Layout (inside ``RUN/checkpoints/step-XXXXXXXX/``, written atomically by
:meth:`skyloom.rundir.RunDir.begin_checkpoint`)::

    pipeline.json                  format, name, stage, fps, frames, size, schedule + sampler defaults
    dit/config.json                DiTConfig (constructor arguments)   dit/model.safetensors
    text_encoder/config.json       TextConfig                          text_encoder/model.safetensors
    vae/config.json                AEConfig (kind identity: no weights) vae/model.safetensors
    ema/config.json                {"decay", "components"}             ema/model.safetensors ("dit.*", "text_encoder.*")
    state/trainer.json             step, data-sampler position, elapsed time, seed
    state/optimizer.pt             optimizer state dict (tensors + numbers only)
    state/rng.pt                   torch RNG states

Loading never unpickles code: weights are safetensors, and ``state/*.pt`` are read with
``torch.load(weights_only=True)``, which refuses any pickled object other than tensors and
plain containers.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from skyloom.config import from_dict, to_dict
from skyloom.errors import UserError
from skyloom.fsutil import atomic_path, atomic_write_json
from skyloom.model.config import AEConfig, DiTConfig, TextConfig

PIPELINE_FORMAT = "skyloom-vdit"
PIPELINE_VERSION = 1


class CheckpointError(UserError, ValueError):
    """A checkpoint folder that is missing a file or holds something unsafe."""


def save_component(folder: Path, name: str, cfg: Any, module: nn.Module | None,
                   state: dict[str, torch.Tensor] | None = None) -> None:
    """Write ``<folder>/<name>/config.json`` and (if any weights) ``skyloom.model.safetensors``."""
    from safetensors.torch import save_file

    d = folder / name
    d.mkdir(parents=True, exist_ok=True)
    atomic_write_json(d / "config.json", to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg)
    sd = state if state is not None else (module.state_dict() if module is not None else None)
    if sd:
        with atomic_path(d / "model.safetensors") as tmp:  # the umask's mode, not safetensors' 0600
            save_file({k: v.detach().contiguous().cpu() for k, v in sd.items()}, str(tmp))


def read_config(folder: Path, name: str) -> dict[str, Any]:
    p = folder / name / "config.json"
    if not p.exists():
        raise CheckpointError(f"{folder}: component {name!r} has no config.json")
    return json.loads(p.read_text())


def load_weights(folder: Path, name: str) -> dict[str, torch.Tensor] | None:
    """The component's safetensors weights (None if it has none); refuses pickled weight files."""
    from safetensors.torch import load_file

    d = folder / name
    p = d / "model.safetensors"
    if p.exists():
        try:
            return load_file(str(p))
        except Exception as e:  # noqa: BLE001 - whatever safetensors raises on a bad file becomes one CheckpointError
            raise CheckpointError(f"{p}: not a valid safetensors file ({type(e).__name__}: {e})") from None
    pickles = [q.name for q in d.glob("*") if q.suffix in (".pt", ".pth", ".bin", ".ckpt", ".pkl")]
    if pickles:
        raise CheckpointError(f"{d}: weights must be model.safetensors; refusing pickled file(s) {pickles}")
    return None


def load_state_file(path: Path) -> Any:
    """``torch.load(weights_only=True)``: tensors and plain containers only, never code."""
    if not path.exists():
        raise CheckpointError(f"{path}: missing training state file")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any refusal or corruption in torch.load becomes one CheckpointError
        raise CheckpointError(f"{path}: refused to load ({type(e).__name__}: {e}); training state may only "
                              "hold tensors and plain containers") from None


def component_configs(folder: Path) -> tuple[DiTConfig | None, TextConfig | None, AEConfig]:
    dit = from_dict(DiTConfig, read_config(folder, "dit")) if (folder / "dit").is_dir() else None
    text = from_dict(TextConfig, read_config(folder, "text_encoder")) if (folder / "text_encoder").is_dir() else None
    ae = from_dict(AEConfig, read_config(folder, "vae"))
    return dit, text, ae


def read_pipeline_info(folder: Path) -> dict[str, Any]:
    p = folder / "pipeline.json"
    if not p.exists():
        raise CheckpointError(f"{folder}: no pipeline.json (not a skyloom model checkpoint)")
    info = json.loads(p.read_text())
    if info.get("format") != PIPELINE_FORMAT:
        raise CheckpointError(f"{p}: format {info.get('format')!r}, expected {PIPELINE_FORMAT!r}")
    return info


def load_ae(ae_cfg: AEConfig, folder: Path | None = None) -> nn.Module:
    """Build the autoencoder and load its weights from ``folder`` (a checkpoint) or ``ae_cfg.ckpt``."""
    from skyloom.model.autoencoder import build_autoencoder
    from skyloom.rundir import resolve_checkpoint

    ae = build_autoencoder(ae_cfg)
    if not any(True for _ in ae.parameters()):  # nothing to load (identity, weight-free plug-ins)
        return ae
    src = folder
    if src is None or load_weights(src, "vae") is None:
        if not ae_cfg.ckpt:
            raise CheckpointError(f"ae.kind={ae_cfg.kind} has weights but ae.ckpt is empty: train one with "
                                  "`skyloom train CORPUS --out VAE_RUN --preset vae`, then pass --set ae.ckpt=VAE_RUN")
        src = resolve_checkpoint(ae_cfg.ckpt)
    sd = load_weights(src, "vae")
    if sd is None:
        raise CheckpointError(f"{src}: has no vae/model.safetensors")
    ae.load_state_dict(sd)
    return ae


def component_state(state: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """The weights of component ``name`` in a state dict that holds several (keys ``"<name>.<param>"``).

    The trainable model (``dit``, ``text_encoder``) and the EMA shadow are such merged dicts; a
    component folder stores its own keys, without the prefix.
    """
    pre = name + "."
    return {k.removeprefix(pre): v for k, v in state.items() if k.startswith(pre)}


class EMA:
    """Exponential moving average of parameters (with the usual (1+n)/(10+n) warm-up)."""

    def __init__(self, modules: dict[str, nn.Module], decay: float) -> None:
        self.decay = decay
        self.shadow = {f"{m}.{k}": v.detach().clone().float()
                       for m, mod in modules.items() for k, v in mod.state_dict().items()}

    @torch.no_grad()
    def update(self, modules: dict[str, nn.Module], step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for m, mod in modules.items():
            for k, v in mod.state_dict().items():
                s = self.shadow[f"{m}.{k}"]
                if v.dtype.is_floating_point:
                    s.mul_(d).add_(v.detach().float(), alpha=1 - d)
                else:
                    s.copy_(v)

    def load(self, sd: dict[str, torch.Tensor]) -> None:
        missing = set(self.shadow) - set(sd)
        if missing:
            raise CheckpointError(f"EMA weights lack {sorted(missing)[:5]}")
        self.shadow = {k: sd[k].float().clone() for k in self.shadow}
