"""Text encoders: prompts -> token features ``(B, L, D)`` + padding mask ``(B, L)``.

One interface, three built-in implementations, chosen by ``TextConfig.kind`` through the
``TEXT_ENCODERS`` registry (other packages add theirs under the ``skyloom.text_encoders`` entry
point; see :mod:`skyloom.registry`):

* ``tiny``: a small trainable transformer over open_clip's BPE tokenizer (the vocabulary ships
  inside the ``open_clip`` wheel, nothing is downloaded). Used by the CPU preset ``vdit-tiny``:
  its captions are short scene descriptions whose colour and shape words it learns from scratch.
* ``open_clip`` (default for ``vdit-s/b/xl``): the text tower of an open_clip CLIP model
  (per-token features after ``ln_final``, as in Stable Diffusion). ``pretrained`` is a local
  weights file (``.safetensors``, or a ``.pt/.bin`` state dict read with
  ``torch.load(weights_only=True)``), or an open_clip pretrained tag found in the local cache
  (``HF_HUB_OFFLINE=1``: nothing is downloaded). ``random-init`` builds the architecture with
  random weights (tests, benchmarks).
* ``t5``: a ``transformers`` T5 encoder from a local folder (optional dependency).
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import torch
from torch import nn

from skyloom.model.config import TextConfig
from skyloom.registry import NoOptions, Registry

logger = logging.getLogger(__name__)

TEXT_ENCODERS: Registry = Registry("text encoder", group="skyloom.text_encoders")


class TextEncoder(nn.Module):
    """Interface: ``encode(prompts) -> (features (B, L, dim), mask (B, L) bool)``.

    Built as ``cls(cfg: TextConfig, options)``: ``options`` is ``cfg.options`` checked against the
    class's ``config_class`` (a frozen dataclass, required; ``NoOptions`` when it takes none).
    """

    dim: int
    config_class: type | None = None

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


@functools.lru_cache(maxsize=4)
def _tokenizer(context_length: int):
    """open_clip's BPE tokenizer (vocabulary bundled in the wheel); built once, it is read-only."""
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=context_length)


def _clip_tokenize(prompts: list[str], context_length: int) -> torch.Tensor:
    return _tokenizer(context_length)(list(prompts), context_length=context_length)  # (B, L)


@TEXT_ENCODERS.register("tiny")
class TinyTextEncoder(TextEncoder):
    """Pre-norm transformer encoder (bidirectional) over BPE tokens; trained with the DiT."""

    config_class = NoOptions  # its settings are text.* (TextConfig)

    def __init__(self, cfg: TextConfig, options: NoOptions | None = None) -> None:
        super().__init__()
        self.cfg, self.dim = cfg, cfg.dim
        self.tok = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.pos = nn.Parameter(torch.zeros(cfg.max_length, cfg.dim))
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.01)
        layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, 4 * cfg.dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)
        # Frozen (trainable: false), the random-init encoder keeps prompts that differ in one word
        # apart; trained jointly with a tiny DiT it collapses them within ~100 steps (docs/model.md).
        self.requires_grad_(cfg.trainable)

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        dev = self.pos.device
        ids = _clip_tokenize(prompts, self.cfg.max_length).to(dev) % self.cfg.vocab_size  # (B, L)
        mask = ids != 0  # (B, L) True = real token (SOT/EOT always present)
        x = self.tok(ids) + self.pos  # (B, L, D)
        x = self.layers(x, src_key_padding_mask=~mask)
        return self.norm(x), mask


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A weights file as a state dict, never unpickling code."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch.load raises many types; re-raised naming the file
        raise ValueError(f"{path}: cannot load as a weights-only state dict ({type(e).__name__}: {e}); "
                         "pickled code is refused, convert it to .safetensors") from None
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    return sd


@TEXT_ENCODERS.register("open_clip")
class OpenCLIPTextEncoder(TextEncoder):
    """Token features of an open_clip CLIP text tower (frozen unless ``trainable``)."""

    config_class = NoOptions  # its settings are text.* (TextConfig)

    def __init__(self, cfg: TextConfig, options: NoOptions | None = None) -> None:
        super().__init__()
        import open_clip

        self.cfg = cfg
        src = cfg.pretrained
        if not src:
            raise ValueError("text.pretrained is empty: give a local open_clip weights file (.safetensors or .pt), "
                             "an open_clip pretrained tag already in the local cache, or 'random-init'")
        if src == "random-init" or Path(src).exists():
            model = open_clip.create_model(cfg.open_clip_model, pretrained=None)
            if src != "random-init":
                sd = _load_state_dict(Path(src))
                missing, unexpected = model.load_state_dict(sd, strict=False)
                text_missing = [k for k in missing if not k.startswith("visual.")]
                if text_missing:
                    raise ValueError(f"{src}: not a {cfg.open_clip_model} checkpoint; missing text weights "
                                     f"{text_missing[:5]}")
                logger.info("loaded open_clip %s text tower from %s", cfg.open_clip_model, src)
        else:
            os.environ["HF_HUB_OFFLINE"] = "1"
            try:
                model = open_clip.create_model(cfg.open_clip_model, pretrained=src)
            except Exception as e:  # noqa: BLE001 - open_clip raises many types; re-raised naming the setting
                raise ValueError(f"text.pretrained={src!r}: neither a file nor an open_clip tag in the local cache "
                                 f"({type(e).__name__}: {e}); nothing is downloaded at run time") from None
        self.token_embedding = model.token_embedding
        self.positional_embedding = model.positional_embedding
        self.transformer = model.transformer
        self.ln_final = model.ln_final
        self.register_buffer("attn_mask", model.attn_mask, persistent=False)
        self.context_length = int(model.context_length)
        self.dim = int(model.transformer.width)
        del model  # drop the image tower
        self.requires_grad_(cfg.trainable)

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        dev = self.token_embedding.weight.device
        ids = _clip_tokenize(prompts, self.context_length).to(dev)  # (B, 77)
        x = self.token_embedding(ids) + self.positional_embedding  # (B, 77, W)
        x = self.transformer(x, attn_mask=self.attn_mask)
        return self.ln_final(x), ids != 0  # (B, 77, W), (B, 77)


@TEXT_ENCODERS.register("t5")
class T5TextEncoder(TextEncoder):
    """``transformers`` T5 encoder loaded from a local folder (``text.pretrained``)."""

    config_class = NoOptions  # its settings are text.* (TextConfig)

    def __init__(self, cfg: TextConfig, options: NoOptions | None = None) -> None:
        super().__init__()
        try:
            from transformers import AutoTokenizer, T5EncoderModel
        except ImportError as e:
            raise ValueError("text.kind=t5 needs the optional 'transformers' package") from e
        if not cfg.pretrained or not Path(cfg.pretrained).is_dir():
            raise ValueError(f"text.pretrained={cfg.pretrained!r}: t5 needs a local model folder")
        self.cfg = cfg
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.pretrained, local_files_only=True)
        self.model = T5EncoderModel.from_pretrained(cfg.pretrained, local_files_only=True, use_safetensors=True)
        self.dim = int(self.model.config.d_model)
        self.requires_grad_(cfg.trainable)

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tok = self.tokenizer(list(prompts), padding="max_length", truncation=True, max_length=self.cfg.max_length,
                             return_tensors="pt").to(self.model.device)
        out = self.model(input_ids=tok.input_ids, attention_mask=tok.attention_mask).last_hidden_state  # (B, L, D)
        return out, tok.attention_mask.bool()


def build_text_encoder(cfg: TextConfig) -> TextEncoder:
    """Instantiate the encoder named by ``cfg.kind`` (its ``cfg.options`` checked against its ``config_class``).

    Raises:
        skyloom.registry.RegistryError: unknown ``text.kind`` (with the closest names).
        skyloom.config.ConfigError: options that do not fit the encoder's ``config_class``.
    """
    return TEXT_ENCODERS.build(cfg.kind, cfg, options=cfg.options, where="text.options")


def saves_weights(cfg: TextConfig) -> bool:
    """Whether checkpoints carry this encoder's weights: trainable, or randomly initialised (no
    ``pretrained`` to reload them from), which a frozen tiny or plug-in encoder is."""
    return cfg.trainable or cfg.pretrained in ("", "random-init")
