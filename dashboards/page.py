"""The one HTML page of the dashboard, with its CSS and JavaScript inlined.

The live app serves it with ``data=None`` (the page then fetches ``api/<name>``); the static
report passes every payload, which is embedded as JSON in ``<script id="skyloom-data">``.
"""

from __future__ import annotations

import json
import math
from functools import cache
from html import escape
from importlib import resources
from typing import Any


@cache
def asset(name: str) -> str:
    """Text of a packaged file in ``dashboards/static/``."""
    return resources.files("skyloom.dashboards").joinpath("static", name).read_text(encoding="utf-8")


def clean(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by None (JSON has no NaN; the pages show "–")."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def json_for_script(obj: Any) -> str:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>`` or ``<!--`` break-out)."""
    text = json.dumps(clean(obj), separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(data: dict[str, Any] | None, title: str = "skyloom dashboard", subtitle: str = "") -> str:
    """The dashboard page; ``data`` embeds every payload (static report) or None (live app)."""
    page = asset("index.html")
    parts = {"__TITLE__": escape(title), "__SUBTITLE__": escape(subtitle), "__CSS__": asset("app.css"),
             "__DATA__": "null" if data is None else json_for_script(data),
             "__CHARTS_JS__": asset("charts.js"), "__APP_JS__": asset("app.js")}
    # Replace the placeholders in one pass so that embedded data can never inject another one.
    import re

    return re.sub("|".join(map(re.escape, parts)), lambda m: parts[m.group(0)], page)
