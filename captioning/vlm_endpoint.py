"""Captions from an OpenAI-compatible chat-completions endpoint (vLLM, SGLang, Ollama, ...).

Frames go as base64 data URLs (``image_url`` parts) beside the text prompt. Each request has a
timeout; timeouts, connection errors, 429 and 5xx answers are retried with exponential backoff
(``backoff_s``, 2x, 4x, ...); at most ``max_concurrency`` requests are in flight per actor. An
empty answer, a refusal (``message.refusal``, ``finish_reason="content_filter"`` or a refusal
sentence), a final error or timeout becomes that clip's recorded failure and the job goes on.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from skyloom.captioning.base import (
    CAPTIONERS,
    Captioner,
    CaptionFailure,
    ClipInput,
    Outcome,
    check_answer,
    frame_images,
)
from skyloom.captioning.config import CaptionConfig, EndpointConfig
from skyloom.registry import NoOptions

logger = logging.getLogger(__name__)

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def data_url(image: np.ndarray, fmt: str = "jpeg") -> str:
    """``data:image/...;base64,...`` of a uint8 RGB image ``(H, W, 3)``."""
    import cv2

    ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", image[..., ::-1])
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} image as {fmt}")
    return f"data:image/{fmt};base64,{base64.b64encode(buf.tobytes()).decode()}"


class EndpointClient:
    """A small chat-completions client with timeouts and retries (thread-safe)."""

    def __init__(self, cfg: EndpointConfig) -> None:
        import httpx

        if not cfg.base_url:
            raise ValueError("endpoint.base_url is empty (e.g. --set endpoint.base_url=http://127.0.0.1:8000/v1)")
        self.cfg = cfg
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"
        self.http = httpx.Client(headers=headers, timeout=httpx.Timeout(cfg.timeout_s))

    def chat(self, messages: list[dict[str, Any]]) -> str:
        """The assistant's answer (checked: not empty, not a refusal); raises CaptionFailure."""
        import httpx

        body = {"model": self.cfg.model, "messages": messages, "max_tokens": self.cfg.max_tokens,
                "temperature": self.cfg.temperature}
        last = ""
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                time.sleep(self.cfg.backoff_s * 2 ** (attempt - 1))
            try:
                r = self.http.post(self.url, json=body)
            except httpx.TimeoutException:
                last = f"timeout after {self.cfg.timeout_s:g} s"
                continue
            except httpx.TransportError as e:
                last = f"connection error: {type(e).__name__}: {e}"
                continue
            if r.status_code in RETRY_STATUS:
                last = f"HTTP {r.status_code}: {r.text[:200]}"
                continue
            if r.status_code >= 400:
                raise CaptionFailure(f"HTTP {r.status_code} from {self.url}: {r.text[:200]}")
            return _answer(r.json())
        raise CaptionFailure(f"{last} ({self.cfg.max_retries + 1} attempts)")


def _answer(payload: dict[str, Any]) -> str:
    try:
        choice = payload["choices"][0]
        msg = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise CaptionFailure(f"malformed chat-completions answer: {str(payload)[:200]}") from None
    if msg.get("refusal"):
        raise CaptionFailure(f"model refused: {str(msg['refusal'])[:120]!r}")
    if choice.get("finish_reason") == "content_filter":
        raise CaptionFailure("model refused: finish_reason=content_filter")
    content = msg.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return check_answer(content)


@CAPTIONERS.register("vlm-endpoint")
class EndpointCaptioner(Captioner):
    """Captions from a remote VLM behind an OpenAI-compatible API."""

    name = "vlm-endpoint"
    needs = "frames"
    kinds = ("vlm",)
    config_class = NoOptions  # its settings are the job's endpoint section

    def __init__(self, cfg: CaptionConfig | None = None, options: NoOptions | None = None) -> None:
        self.cfg = (cfg or CaptionConfig()).endpoint
        self.client = EndpointClient(self.cfg)
        self.model_id = f"endpoint:{self.cfg.model or 'default'}@{self.cfg.base_url}"
        self.weights_hash = ""  # unknown behind an API; the model id names the served model
        self.template_version = self.cfg.template_version

    @classmethod
    def available(cls, cfg: CaptionConfig) -> bool:
        return bool(cfg.endpoint.base_url)

    def messages(self, item: ClipInput) -> list[dict[str, Any]]:
        fc = self.cfg.frames
        images = frame_images(item.frames, fc.num_frames, fc.layout, fc.tile_size)
        parts: list[dict[str, Any]] = [{"type": "text", "text": self.cfg.prompt}]
        parts += [{"type": "image_url", "image_url": {"url": data_url(im, fc.image_format)}} for im in images]
        msgs = [{"role": "system", "content": self.cfg.system}] if self.cfg.system else []
        return msgs + [{"role": "user", "content": parts}]

    def _one(self, item: ClipInput) -> Outcome:
        t0 = time.perf_counter()
        try:
            if item.frames is None or len(item.frames) == 0:
                raise CaptionFailure("no frames")
            text = self.client.chat(self.messages(item))
            return Outcome(item.clip_id, {"vlm": text}, seconds=time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 - recorded per clip, the job goes on
            reason = str(e) if isinstance(e, CaptionFailure) else f"{type(e).__name__}: {e}"
            return Outcome(item.clip_id, {}, reason, time.perf_counter() - t0)

    def caption_batch(self, items: list[ClipInput]) -> list[Outcome]:
        with ThreadPoolExecutor(max_workers=max(1, self.cfg.max_concurrency)) as pool:
            return list(pool.map(self._one, items))
