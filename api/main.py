"""The app factory: settings in, a FastAPI application out."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import pyogrio
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse

import gridgeo
from api.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (default: from the environment).

    Examples
    --------
    >>> app = create_app(Settings(store="data/gridgeo.gpkg"))
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.settings = settings
        yield

    app = FastAPI(
        title=settings.title,
        description=settings.description,
        version=gridgeo.__version__,
        lifespan=lifespan,
    )
    app.state.settings = settings
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"])

    @app.get("/health", tags=["service"], summary="Liveness and what the service holds")
    def health():
        return {"status": "ok", "version": gridgeo.__version__, "store": _store_name(settings.store)}

    @app.get("/", tags=["service"], summary="Landing page: what the service holds")
    def landing(request: Request):
        layers = _layers(settings.store)
        body = {
            "title": settings.title,
            "description": settings.description,
            "layers": layers,
            "links": [
                {"rel": "self", "href": str(request.url), "type": "application/json"},
                {"rel": "service-desc", "href": str(request.url_for("openapi")), "type": "application/vnd.oai.openapi+json;version=3.0"},
                {"rel": "service-doc", "href": str(request.url_for("swagger_ui_html")), "type": "text/html"},
            ],
        }
        if "text/html" in request.headers.get("accept", "") or request.query_params.get("f") == "html":
            return HTMLResponse(_landing_html(body))
        return JSONResponse(body)

    return app


def _store_name(store: str) -> str:
    # never show credentials of a database URL
    if "://" in store and "@" in store:
        scheme, rest = store.split("://", 1)
        return f"{scheme}://…@{rest.split('@', 1)[1]}"
    return store


def _layers(store: str) -> list[dict]:
    path = Path(store)
    if not path.exists():
        return []
    out = []
    for name, geometry_type in pyogrio.list_layers(path):
        info = pyogrio.read_info(path, layer=name)
        out.append({"name": str(name), "geometry_type": str(geometry_type), "features": int(info["features"])})
    return out


def _landing_html(body: dict) -> str:
    rows = "".join(
        f"<tr><td>{layer['name']}</td><td>{layer['geometry_type']}</td><td>{layer['features']:,}</td></tr>"
        for layer in body["layers"]
    )
    links = "".join(f'<li><a href="{link["href"]}">{link["rel"]}</a></li>' for link in body["links"])
    return f"""<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>{body['title']}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em 1em;text-align:left}}</style></head>
<body><h1>{body['title']}</h1><p>{body['description']}</p>
<table><tr><th>layer</th><th>geometry</th><th>features</th></tr>{rows}</table><ul>{links}</ul></body></html>"""
