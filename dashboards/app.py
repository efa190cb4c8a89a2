"""The FastAPI app behind ``skyloom dashboard``: one page, JSON payloads, read-only media files.

Routes (GET unless said otherwise):

- ``/``: the page (:func:`skyloom.dashboards.page.render_page`)
- ``/api/overview``, ``/api/leaderboard``, ``/api/training``, ``/api/corpus``
- ``/api/compare?source=0&suite=S&evals=a,b``, ``/api/paired?source=0&a=A&b=B&metric=M``
- ``/api/physics?source=0&suite=S&evals=a,b``: the simulator's videos and per-scene numbers
- ``/api/corpus/clips?corpus=0&offset=0&limit=100[&split=train&source_kind=licensed]``: a page of clip rows
- ``/api/clip?corpus=0&id=ID``, ``/api/segmentation?corpus=0&id=ID`` (PNG): the clip inspector
- ``/api/stamp``: fingerprint of the inputs (the page polls it to refresh itself)
- ``/api/checkpoints``, ``POST /api/sample`` (JSON body), ``/api/job?key=K``: the prompt box
- ``/files/<root>/<relpath>``: a video or image inside a configured directory only
  (:class:`skyloom.dashboards.paths.SafeRoots`; 403 outside, 404 missing; HTTP range requests for seeking)

Every request must carry an allowed Host header (:class:`skyloom.dashboards.guard.HostGuard`);
``POST /api/sample`` also needs a JSON content type and, when the browser sends one, an Origin
of the same host. Error bodies never contain absolute paths (:func:`~skyloom.dashboards.guard.scrub_paths`).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from skyloom.dashboards.guard import LOCAL_HOSTS, HostGuard, host_name, scrub_paths
from skyloom.dashboards.jobs import QueueFull
from skyloom.dashboards.page import clean, render_page
from skyloom.dashboards.paths import MEDIA_TYPES, PathRefused
from skyloom.dashboards.sampling import MAX_IMAGE_BYTES, SampleError
from skyloom.dashboards.sources import Dashboard

log = logging.getLogger(__name__)


def create_app(dash: Dashboard, title: str = "skyloom dashboard", allow_hosts: Sequence[str] = LOCAL_HOSTS) -> FastAPI:
    """A FastAPI app serving ``dash`` (read-only, apart from its own cache).

    Args:
        allow_hosts: host names the app answers to (Host header); ``*`` for any. Default: loopback names.
    """
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(HostGuard, allowed=allow_hosts)
    subtitle = " · ".join(str(d) for d in dash.run_dirs)

    def js(payload: dict[str, Any]) -> JSONResponse:
        return JSONResponse(clean(payload), headers={"Cache-Control": "no-store"})

    def not_found(e: KeyError) -> HTTPException:
        return HTTPException(404, str(e.args[0] if e.args else e))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": scrub_paths(str(exc.detail))}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(render_page(None, title=title, subtitle=subtitle))

    @app.get("/api/overview")
    def overview() -> JSONResponse:
        return js(dash.overview())

    @app.get("/api/leaderboard")
    def leaderboard() -> JSONResponse:
        return js(dash.leaderboard())

    @app.get("/api/training")
    def training() -> JSONResponse:
        return js(dash.training())

    @app.get("/api/corpus")
    def corpus() -> JSONResponse:
        return js(dash.corpus())

    @app.get("/api/corpus/clips")
    def corpus_clips(corpus: int = Query(0), offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=5000),
                     split: str | None = None, source_kind: str | None = None) -> JSONResponse:
        try:
            return js(dash.corpus_clips(corpus, offset, limit, split=split, source_kind=source_kind))
        except KeyError as e:
            raise not_found(e) from None

    @app.get("/api/compare")
    def compare(suite: str, evals: str, source: int = Query(0)) -> JSONResponse:
        ids = [e for e in evals.split(",") if e]
        try:
            return js(dash.compare(source, suite, ids))
        except KeyError as e:
            raise not_found(e) from None

    @app.get("/api/paired")
    def paired(a: str, b: str, metric: str, source: int = Query(0)) -> JSONResponse:
        try:
            return js(dash.paired(source, a, b, metric))
        except KeyError as e:
            raise not_found(e) from None

    @app.get("/api/physics")
    def physics(suite: str, evals: str, source: int = Query(0)) -> JSONResponse:
        try:
            return js(dash.physics(source, suite, [e for e in evals.split(",") if e]))
        except KeyError as e:
            raise not_found(e) from None
        except QueueFull as e:
            raise HTTPException(429, str(e)) from None

    @app.get("/api/clip")
    def clip(id: str, corpus: int = Query(0)) -> JSONResponse:
        try:
            return js(dash.clip(corpus, id))
        except KeyError as e:
            raise not_found(e) from None

    @app.get("/api/segmentation")
    def segmentation(id: str, corpus: int = Query(0)) -> Response:
        try:
            png = dash.segmentation(corpus, id)
        except KeyError as e:
            raise not_found(e) from None
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/stamp")
    def stamp() -> JSONResponse:
        return js(dash.stamp())

    @app.get("/api/checkpoints")
    def checkpoints() -> JSONResponse:
        return js(dash.checkpoints())

    @app.post("/api/sample")
    async def sample(request: Request) -> JSONResponse:
        # A cross-site page can POST a form but not JSON without a CORS preflight (which is never
        # answered), and a browser names the page's origin: both must point at this server.
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise HTTPException(415, "send the request as application/json")
        origin = request.headers.get("origin")
        if origin and host_name(urlsplit(origin).netloc) != host_name(request.headers.get("host", "")):
            raise HTTPException(403, "cross-origin request refused")
        raw = await request.body()
        if len(raw) > MAX_IMAGE_BYTES * 2:
            raise HTTPException(413, "request too large")
        try:
            body = json.loads(raw)
        except ValueError:
            raise HTTPException(400, "the request body is not valid JSON") from None
        try:
            return js(dash.sample(body))
        except SampleError as e:
            raise HTTPException(400, str(e)) from None
        except QueueFull as e:
            raise HTTPException(429, str(e)) from None

    @app.get("/api/job")
    def job(key: str) -> JSONResponse:
        try:
            return js(dash.job(key))
        except KeyError as e:
            raise not_found(e) from None

    @app.get("/files/{root}/{relpath:path}")
    def files(root: str, relpath: str) -> FileResponse:
        if not root.isdigit():
            raise HTTPException(404, "not found")
        try:
            path = dash.roots.resolve(int(root), relpath)
        except PathRefused as e:
            log.warning("refused file request %s/%s: %s", root, relpath, e)
            raise HTTPException(403, "forbidden") from None
        except FileNotFoundError:
            raise HTTPException(404, "not found") from None
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"))

    return app


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket on ``host:port`` (``port=0``: a free port, read it from ``getsockname()``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(app: FastAPI, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve ``app`` on the bound socket until interrupted."""
    import uvicorn

    uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False)).run(sockets=[sock])


@contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` in a background thread; yields its base URL and stops it on exit (tests, notebooks)."""
    import time

    import uvicorn

    sock = bind(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError("dashboard server did not start")
    h, p = sock.getsockname()[:2]
    try:
        yield f"http://{h}:{p}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
