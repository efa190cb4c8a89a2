"""VLM captioners: a tiny random LLaVA loaded from disk, and a local OpenAI-compatible server."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from skyloom.captioning.base import ClipInput, frame_images
from skyloom.captioning.config import (
    CaptionConfig,
    EndpointConfig,
    FramesConfig,
    VLMLocalConfig,
)
from skyloom.captioning.runner import run
from skyloom.captioning.vlm_endpoint import EndpointCaptioner
from skyloom.captioning.vlm_local import LocalVLMCaptioner, weights_hash
from skyloom.corpus import Corpus
from tests.captioning.conftest import add_clip


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory):
    from skyloom.captioning.tiny_vlm import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


def test_frame_layouts():
    frames = np.zeros((10, 20, 30, 3), np.uint8)
    grid = frame_images(frames, 4, "grid", 16)
    assert len(grid) == 1 and grid[0].shape == (32, 32, 3)
    multi = frame_images(frames, 3, "multi", 16)
    assert len(multi) == 3 and multi[0].shape == (16, 16, 3)
    with pytest.raises(ValueError, match="layout"):
        frame_images(frames, 3, "mosaic", 16)


@pytest.mark.parametrize("layout", ["grid", "multi"])
def test_local_vlm_batch_equals_single(tiny_llava, layout):
    frames = FramesConfig(num_frames=4, layout=layout, tile_size=32)

    def mk(gb):
        return LocalVLMCaptioner(CaptionConfig(vlm_local=VLMLocalConfig(
            model_path=str(tiny_llava), max_new_tokens=6, frames=frames, generate_batch=gb)))

    items = [ClipInput(f"c{i}", 8, frames=np.random.default_rng(i).integers(0, 255, (8, 40, 40, 3), np.uint8))
             for i in range(3)]
    batched, single = mk(3).caption_batch(items), mk(1).caption_batch(items)
    assert [o.clip_id for o in batched] == ["c0", "c1", "c2"]
    for a, b in zip(batched, single):  # greedy decoding: left padding must not change the answer
        assert (a.captions, a.error) == (b.captions, b.error)
        assert a.captions or a.error == "empty answer from the model"


def test_local_vlm_job_records_provenance(tiny_llava, mixed_corpus):
    cfg = CaptionConfig(corpus=str(mixed_corpus.root), executor="local",
                        vlm_local=VLMLocalConfig(model_path=str(tiny_llava), max_new_tokens=5,
                                                 frames=FramesConfig(num_frames=4, tile_size=32)))
    res = run(cfg)  # auto: scene-graph for synthetic clips, the local VLM for licensed ones
    assert res.captioned.get("scene-graph") == 4
    assert res.captioned.get("vlm-local", 0) + res.failed.get("vlm-local", 0) == 2
    for rec in mixed_corpus.records(source_kind="licensed"):
        for c in rec.captions:
            assert c.captioner == "vlm-local" and c.kind == "vlm" and c.model_id.startswith("llava:")
            assert c.weights_hash == weights_hash(tiny_llava) and len(c.weights_hash) == 64
    with pytest.raises(FileNotFoundError, match="model_path"):
        LocalVLMCaptioner(CaptionConfig(vlm_local=VLMLocalConfig(model_path=str(tiny_llava / "nope"))))


# -- OpenAI-compatible endpoint ---------------------------------------------------------------------
COLOURS = {"ok": (220, 30, 30), "empty": (30, 220, 30), "refuse": (30, 30, 220), "error": (255, 255, 255),
           "slow": (0, 0, 0), "flaky": (230, 230, 20)}


class _Server:
    """Speaks chat completions; behaviour chosen by the mean colour of the first image."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inflight = self.max_inflight = 0
        self.calls: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self._answer(body)

            def _answer(self, body):
                assert self.path == "/v1/chat/completions" and body["model"] == "tiny"
                parts = body["messages"][-1]["content"]
                url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
                img = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
                rgb = img[..., ::-1].reshape(-1, 3).mean(0)
                kind = min(COLOURS, key=lambda k: np.abs(rgb - COLOURS[k]).sum())
                # Requests in flight as the client sees them: counted until just before the answer is written
                # (a client that has its answer may send the next one at once), and never the slow one, which
                # the client abandons at its timeout while this thread still sleeps.
                counted = kind != "slow"
                with outer.lock:
                    n = outer.calls[kind] = outer.calls.get(kind, 0) + 1
                    if counted:
                        outer.inflight += 1
                        outer.max_inflight = max(outer.max_inflight, outer.inflight)
                try:
                    time.sleep(0.05)
                    if kind == "slow":
                        time.sleep(1.0)
                finally:
                    if counted:
                        with outer.lock:
                            outer.inflight -= 1
                if kind == "error" or (kind == "flaky" and n == 1):
                    return self._send(500, {"error": {"message": "internal error"}})
                text = {"ok": "A red square fills the frame.", "empty": "", "flaky": "A yellow frame.",
                        "refuse": "I'm sorry, but I can't help with that."}.get(kind, "late")
                self._send(200, {"id": "x", "object": "chat.completion", "model": "tiny", "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]})

            def _send(self, code, payload):
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server():
    s = _Server()
    yield s
    s.close()


def test_endpoint_failures_are_recorded_and_job_goes_on(chat_server, tmp_path):
    corpus = Corpus.create(tmp_path / "c")
    for kind, colour in COLOURS.items():
        add_clip(corpus, f"clip-{kind}", np.full((6, 32, 32, 3), colour, np.uint8), "licensed")
    ep = EndpointConfig(base_url=chat_server.url, model="tiny", timeout_s=0.4, max_retries=1, backoff_s=0.01,
                        max_concurrency=2, frames=FramesConfig(num_frames=2, layout="multi", tile_size=32))
    res = run(CaptionConfig(corpus=str(corpus.root), captioner="vlm-endpoint", executor="local", batch_size=8,
                            endpoint=ep))
    assert res.captioned == {"vlm-endpoint": 2}  # ok, and flaky after one retry
    assert corpus.get("clip-ok").caption("vlm") == "A red square fills the frame."
    assert corpus.get("clip-flaky").caption("vlm") == "A yellow frame."
    reasons = {q["item"]: q["reason"] for q in corpus.quarantined("caption")}
    assert set(reasons) == {"clip-empty", "clip-refuse", "clip-error", "clip-slow"}
    assert "empty answer" in reasons["clip-empty"]
    assert "refused" in reasons["clip-refuse"]
    assert "HTTP 500" in reasons["clip-error"] and "2 attempts" in reasons["clip-error"]
    assert "timeout" in reasons["clip-slow"]
    assert chat_server.calls["error"] == 2 and chat_server.calls["flaky"] == 2
    assert chat_server.max_inflight <= 2  # concurrency limit
    cap = corpus.get("clip-ok").captions[0]
    assert cap.model_id == f"endpoint:tiny@{chat_server.url}" and cap.template_version == "vlm-1"


def test_endpoint_messages_and_refusal_field(chat_server):
    c = EndpointCaptioner(CaptionConfig(endpoint=EndpointConfig(base_url=chat_server.url, model="tiny")))
    msgs = c.messages(ClipInput("x", 8, frames=np.zeros((4, 16, 16, 3), np.uint8)))
    assert msgs[0]["role"] == "system"
    urls = [p for p in msgs[1]["content"] if p["type"] == "image_url"]
    assert len(urls) == 1 and urls[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    from skyloom.captioning.base import CaptionFailure
    from skyloom.captioning.vlm_endpoint import _answer

    with pytest.raises(CaptionFailure, match="refused"):
        _answer({"choices": [{"message": {"content": None, "refusal": "no"}, "finish_reason": "stop"}]})
    with pytest.raises(CaptionFailure, match="malformed"):
        _answer({"nothing": 1})
    with pytest.raises(ValueError, match="base_url"):
        EndpointCaptioner(CaptionConfig())


def test_upsample_with_llm_endpoint():
    from skyloom.captioning.base import CaptionFailure
    from skyloom.captioning.upsample import upsample

    seen: list[dict] = []
    answers = ["A small red rubber ball falls and bounces. The camera is static.", "I'm sorry, I cannot do that."]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            data = json.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": answers[len(seen) - 1]}}]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data.encode())

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        ep = EndpointConfig(base_url=f"http://127.0.0.1:{httpd.server_address[1]}/v1", model="llm", max_retries=0)
        assert upsample("a red ball bouncing", mode="llm", endpoint=ep) == answers[0]
        system, user = seen[0]["messages"]
        assert user == {"role": "user", "content": "a red ball bouncing"}
        assert "Examples:" in system["content"] and "camera" in system["content"].lower()
        with pytest.raises(CaptionFailure, match="refused"):
            upsample("a red ball bouncing", mode="llm", endpoint=ep)
        with pytest.raises(ValueError, match="base_url"):
            upsample("a red ball", mode="llm")
    finally:
        httpd.shutdown()
        httpd.server_close()
