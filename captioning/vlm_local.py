"""Local vision-language model captioner (``transformers``), loaded from a folder; never downloads.

Any checkpoint that ``AutoProcessor`` + ``AutoModelForImageTextToText`` load (LLaVA, Qwen2-VL,
SmolVLM/Idefics3, ...) works: frames are sampled uniformly, shown as one grid image or as several
images (``frames.layout``), the prompt goes through the processor's chat template, and the batch
is generated with left padding. Empty or refused answers are per-clip failures. The weights hash
(sha256 over the weight files) is recorded with every caption.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

from skyloom.captioning.base import (
    CAPTIONERS,
    Captioner,
    CaptionFailure,
    ClipInput,
    Outcome,
    check_answer,
    frame_images,
)
from skyloom.captioning.config import CaptionConfig
from skyloom.registry import NoOptions

logger = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def weights_hash(folder: str | Path) -> str:
    """sha256 over the sorted weight files of a checkpoint folder (names and contents)."""
    from skyloom.fsutil import sha256_file

    files = sorted(p for p in Path(folder).iterdir() if p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder}: no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0" + sha256_file(p).encode())
    return h.hexdigest()


@CAPTIONERS.register("vlm-local")
class LocalVLMCaptioner(Captioner):
    """Captions from a local ``transformers`` VLM (one model load per actor)."""

    name = "vlm-local"
    needs = "frames"
    kinds = ("vlm",)
    config_class = NoOptions  # its settings are the job's vlm_local section

    def __init__(self, cfg: CaptionConfig | None = None, options: NoOptions | None = None) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.cfg = (cfg or CaptionConfig()).vlm_local
        path = Path(self.cfg.model_path)
        if not self.cfg.model_path or not (path / "config.json").exists():
            raise FileNotFoundError(f"vlm_local.model_path {self.cfg.model_path!r}: not a model folder with "
                                    "config.json (set --set vlm_local.model_path=/path/to/checkpoint; "
                                    "nothing is downloaded)")
        dtype = getattr(torch, self.cfg.dtype)
        self.processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, local_files_only=True)
        self.model.to(self.cfg.device).eval()
        tok = getattr(self.processor, "tokenizer", None)
        if tok is not None:
            tok.padding_side = "left"
        arch = json.loads((path / "config.json").read_text()).get("model_type", "vlm")
        self.model_id = f"{arch}:{path.name}"
        self.weights_hash = weights_hash(path)
        self.template_version = self.cfg.template_version
        self.generate_batch = max(1, self.cfg.generate_batch)

    @classmethod
    def available(cls, cfg: CaptionConfig) -> bool:
        return bool(cfg.vlm_local.model_path) and Path(cfg.vlm_local.model_path).exists()

    def _prompt(self, n_images: int) -> str:
        content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": self.cfg.prompt}]
        messages = [{"role": "user", "content": content}]
        if getattr(self.processor, "chat_template", None):
            return self.processor.apply_chat_template(messages, add_generation_prompt=True)
        token = getattr(self.processor, "image_token", "<image>")
        return f"{token * n_images}\n{self.cfg.prompt}\n"

    def generate(self, items: list[ClipInput]) -> list[str]:
        """Raw answers for a batch of clips (one forward pass of ``generate``)."""
        import torch
        from PIL import Image

        fc = self.cfg.frames
        images = [[Image.fromarray(im) for im in frame_images(it.frames, fc.num_frames, fc.layout, fc.tile_size)]
                  for it in items]
        texts = [self._prompt(len(ims)) for ims in images]
        inputs = self.processor(images=images, text=texts, return_tensors="pt", padding=True).to(self.cfg.device)
        gen = {"max_new_tokens": self.cfg.max_new_tokens, "do_sample": self.cfg.do_sample,
               "num_beams": self.cfg.num_beams}
        if self.cfg.do_sample:
            gen.update({"temperature": self.cfg.temperature, "top_p": self.cfg.top_p})
        with torch.inference_mode():
            out = self.model.generate(**inputs, **gen)  # (B, L_in + L_new)
        new = out[:, inputs["input_ids"].shape[1]:]  # (B, L_new)
        return self.processor.batch_decode(new, skip_special_tokens=True)

    def caption_batch(self, items: list[ClipInput]) -> list[Outcome]:
        outs: list[Outcome] = []
        ok = []
        for it in items:
            if it.frames is None or len(it.frames) == 0:
                outs.append(Outcome(it.clip_id, {}, "no frames"))
            else:
                ok.append(it)
        for s in range(0, len(ok), self.generate_batch):
            chunk = ok[s:s + self.generate_batch]
            t0 = time.perf_counter()
            try:
                answers = self.generate(chunk)
            except Exception as e:  # noqa: BLE001 - a failing batch: every clip in it is recorded with the reason
                logger.warning("vlm-local batch failed: %s", e)
                outs.extend(Outcome(it.clip_id, {}, f"generation failed: {type(e).__name__}: {e}") for it in chunk)
                continue
            per = (time.perf_counter() - t0) / len(chunk)
            for it, ans in zip(chunk, answers):
                try:
                    outs.append(Outcome(it.clip_id, {"vlm": check_answer(ans)}, seconds=per))
                except CaptionFailure as e:
                    outs.append(Outcome(it.clip_id, {}, str(e), per))
        return outs
