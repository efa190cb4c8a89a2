"""The torch device a ``--device`` option names, checked against this machine before any work starts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from skyloom.errors import DeviceError

if TYPE_CHECKING:
    import torch


def torch_device(name: str | torch.device | None, what: str = "--device") -> torch.device:
    """``name`` as a :class:`torch.device` this machine has; None picks ``cuda`` when there is a GPU, else ``cpu``.

    Raises:
        DeviceError: an unknown device string, ``cuda`` without a usable GPU, a GPU index past the
            last one, or ``mps`` off Apple silicon (one line naming ``what`` and the value).
    """
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"{what} {name!r} is not a torch device; valid: cpu, cuda, cuda:INDEX, mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"{what} {name!r}: no CUDA GPU is usable on this machine (torch "
                              f"{torch.__version__}, CUDA build {torch.version.cuda or 'none'}); use --device cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DeviceError(f"{what} {name!r}: this machine has {count} GPU(s) (cuda:0..cuda:{count - 1})")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError(f"{what} {name!r}: MPS is not available on this machine; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"{what} {name!r}: skyloom runs on cpu, cuda or mps")
    return dev
