"""The HTML face of the OGC resources, for people: the same answers as the JSON, from templates.

As pygeoapi does, every OGC resource (collections, a collection, its items, an
item) is also a page when asked with ``f=html`` or by a browser
(``Accept: text/html``); the routes hand the same data to :func:`page`. The
pages load Leaflet from the service itself, never from a CDN.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

__all__ = ["wants_html", "page"]

_TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENV = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html"]))


def wants_html(request: Request, f: str | None) -> bool:
    """True for ``f=html``, or without ``f`` when the client prefers HTML to JSON (a browser)."""
    if f is not None:
        return f == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "json" not in accept.split("text/html")[0]


def page(name: str, *, title: str, service: str, crumbs=(), alternates=(), headers=None, **context) -> HTMLResponse:
    """A template rendered as the answer; ``geojson`` in the context is written as JSON for the map."""
    if "geojson" in context:
        context["geojson"] = json.dumps(context["geojson"], ensure_ascii=False).replace("</", "<\\/")
    text = _ENV.get_template(name).render(title=title, service=service, crumbs=list(crumbs),
                                          alternates=list(alternates), **context)
    return HTMLResponse(text, headers=headers)
