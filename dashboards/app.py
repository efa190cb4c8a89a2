"""The FastAPI app behind ``skyloom dashboard``: one page, JSON payloads, read-only media files.

Routes (all GET):

- ``/``: the page (:func:`skyloom.dashboards.page.render_page`)
- ``/api/overview``, ``/api/leaderboard``, ``/api/training``, ``/api/corpus``
- ``/api/compare?source=0&suite=S&evals=a,b``, ``/api/paired?source=0&a=A&b=B&metric=M``
- ``/files/<root>/<relpath>``: a video or image inside a configured directory only
  (:class:`skyloom.dashboards.paths.SafeRoots`; 403 outside, 404 missing; HTTP range requests for seeking)
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from skyloom.dashboards.page import clean, render_page
from skyloom.dashboards.paths import MEDIA_TYPES, PathRefused
from skyloom.dashboards.sources import Dashboard

log = logging.getLogger(__name__)


def create_app(dash: Dashboard, title: str = "skyloom dashboard") -> FastAPI:
    """A FastAPI app serving ``dash`` read-only."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    subtitle = " · ".join(str(d) for d in dash.run_dirs)

    def js(payload: dict[str, Any]) -> JSONResponse:
        return JSONResponse(clean(payload), headers={"Cache-Control": "no-store"})

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

    @app.get("/api/compare")
    def compare(suite: str, evals: str, source: int = Query(0)) -> JSONResponse:
        ids = [e for e in evals.split(",") if e]
        try:
            return js(dash.compare(source, suite, ids))
        except KeyError as e:
            raise HTTPException(404, str(e.args[0] if e.args else e)) from None

    @app.get("/api/paired")
    def paired(a: str, b: str, metric: str, source: int = Query(0)) -> JSONResponse:
        try:
            return js(dash.paired(source, a, b, metric))
        except KeyError as e:
            raise HTTPException(404, str(e.args[0] if e.args else e)) from None

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
