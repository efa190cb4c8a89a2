"""What the dashboard answers, and to whom: a Host-header allow list and path-free error bodies.

A page served from another site can point its own DNS name at 127.0.0.1 (DNS rebinding) and then
read ``http://evil.example:8765/api/...`` as same-origin: the browser sends ``Host:
evil.example``. Checking the Host header against the names the dashboard is reached by closes
that door. By default only the loopback names are accepted (``localhost``, ``127.0.0.1``,
``::1``); ``skyloom dashboard --allow-host NAME`` adds more (``*`` accepts any, for use behind a
proxy that checks it).

Error bodies (404, 400, ...) never carry absolute server paths: :func:`scrub_paths` turns every
absolute path in a message into its last component (``…/results.sqlite``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from skyloom.errors import InvalidInputError

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")

# An absolute POSIX path (optionally behind a URL scheme such as sqlite:///), or a Windows drive path.
_ABS_PATH = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*:/+)?(?<![\w.~-])/(?:[^\s'\"<>,;:()\[\]]+/)*([^\s'\"<>,;:()\[\]/]*)"
                       r"|[A-Za-z]:\\(?:[^\s'\"<>\\]+\\)*([^\s'\"<>\\]*)")


def scrub_paths(text: str) -> str:
    """``text`` with every absolute path replaced by ``…/<last component>``.

    Example:
        >>> scrub_paths("no evaluation 'x' in sqlite:////srv/runs/a/results.sqlite")
        "no evaluation 'x' in …/results.sqlite"
    """
    return _ABS_PATH.sub(lambda m: "…/" + (m.group(1) or m.group(2) or ""), text)


def host_name(header: str) -> str:
    """The host part of a ``Host`` header, lower-case, without port or IPv6 brackets."""
    h = header.strip().lower()
    if h.startswith("["):  # [::1]:8765
        return h[1:h.index("]")] if "]" in h else h
    if h.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        h = h.split(":", 1)[0]
    return h.rstrip(".")


def normalise_hosts(hosts: Iterable[str]) -> tuple[str, ...]:
    """Allowed host names as :func:`host_name` writes them; ``*`` stays ``*``.

    Raises:
        ValueError: an empty name, or one with a scheme or path (``http://x``, ``x/y``).
    """
    out = []
    for h in hosts:
        if h == "*":
            out.append(h)
            continue
        if not h or "/" in h or " " in h:
            raise InvalidInputError(f"--allow-host {h!r}: give a host name or address (e.g. myhost.lan, 10.0.0.5), "
                                    "without scheme, port or path")
        out.append(host_name(h))
    return tuple(dict.fromkeys(out))


class HostGuard:
    """ASGI middleware: requests whose Host header is not allowed get 400 and never reach the app."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str] = LOCAL_HOSTS) -> None:
        self.app = app
        self.allowed = frozenset(normalise_hosts(allowed))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "*" not in self.allowed:
            headers = dict(scope.get("headers") or [])
            host = host_name(headers.get(b"host", b"").decode("latin-1"))
            if host not in self.allowed:
                resp = PlainTextResponse("host not allowed: start skyloom dashboard with --allow-host NAME to "
                                         "reach it under another name", status_code=400)
                await resp(scope, receive, send)
                return
        await self.app(scope, receive, send)
