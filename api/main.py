"""The app factory: settings in, a FastAPI application out.

The whole service is assembled here: the services the endpoints share
(the store, API keys, caches of derived data), middleware (request log with
timings, body and rate limits from :mod:`api.limits`, CORS, compression), the
routers, and the mapping of domain errors to problem responses.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse

import gridgeo
import gridgeo.store
from api import auth, dependencies, limits, problems
from api import derived as api_derived
from api.dependencies import base_url, cache_control, one_value_each
from api.limits import BodyLimit, RateLimit
from api.routes import (admin, analysis, crosswalk, events, exports, features, figures, imports, pages, plans, roster,
                        siting, tiles)
from api.services import Preparing, Services
from api.settings import Settings
from gridgeo.crs import CRSError
from gridgeo.events import EventsError
from gridgeo.plan import PlanError
from gridgeo.review import AccessError, AcknowledgementRequired, ReportHasErrors
from gridgeo.schema import SchemaError

log = logging.getLogger("gridgeo.api")

DOMAIN_ERRORS = {
    gridgeo.store.NotFound: 404,
    gridgeo.store.StaleEditError: 409,
    gridgeo.store.ConflictError: 409,
    gridgeo.store.PlanStateError: 409,
    gridgeo.store.PublishError: 422,
    gridgeo.store.RollbackError: 422,
    gridgeo.store.FilterError: 400,
    SchemaError: 422,
    PlanError: 422,
    CRSError: 400,
    EventsError: 422,  # the request fits the document; a rule of gridgeo.events refuses it
    AccessError: 403,
    AcknowledgementRequired: 409,
    ReportHasErrors: 422,
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (default: from the environment).

    Examples
    --------
    >>> app = create_app(Settings(store="data/gridgeo.gpkg"))   # doctest: +SKIP
    """
    settings = settings or Settings()
    services = Services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services.start(warm=api_derived.warm)
        yield
        services.close()

    app = FastAPI(
        title=settings.title,
        description=settings.description,
        version=gridgeo.__version__,
        lifespan=lifespan,
        # every route knows its caller, so a key the service does not know is refused everywhere,
        # and takes each of its single-valued query parameters once
        dependencies=[Depends(auth.principal), Depends(one_value_each)],
        responses=problems.responses(401),
    )
    app.state.services = services
    app.state.settings = settings

    app.add_middleware(BodyLimit, max_bytes=settings.max_body, uploads={"/imports": settings.max_upload})
    app.add_middleware(RateLimit, settings=settings, keys=services.keys)  # before the body is read
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["X-API-Key", "Authorization", "Content-Type", "If-None-Match"],
                           expose_headers=["Retry-After"])
    app.add_middleware(RequestLog, traffic=services.traffic)
    problems.install(app, DOMAIN_ERRORS)

    @app.exception_handler(Preparing)
    async def _preparing(request: Request, exc: Preparing):
        return problems.problem_response(503, "Service Unavailable", str(exc), instance=request.url.path,
                                         headers={"Retry-After": str(exc.retry_after)}, preparing=True)

    @app.get("/health", tags=["service"], summary="Liveness, readiness and the data version served")
    def health():
        # no path or URL of the store: callers are anonymous
        state = services.state()
        return {"status": "ok" if state["ready"] else "preparing", "version": gridgeo.__version__,
                "store": "postgis" if gridgeo.store.is_postgis(settings.store) else "geopackage", **state}

    @app.get("/", tags=["service"], summary="Landing page: what the service holds and where")
    def landing(request: Request):
        base = base_url(request)
        body = {
            "title": settings.title,
            "description": settings.description,
            "links": [
                {"rel": "self", "href": f"{base}/", "type": "application/json", "title": "this document"},
                {"rel": "service-desc", "href": f"{base}/openapi.json",
                 "type": "application/vnd.oai.openapi+json;version=3.0", "title": "the API definition"},
                {"rel": "service-doc", "href": f"{base}/docs", "type": "text/html", "title": "the API documentation"},
                {"rel": "conformance", "href": f"{base}/conformance", "type": "application/json",
                 "title": "OGC conformance classes"},
                {"rel": "data", "href": f"{base}/collections", "type": "application/json", "title": "collections"},
                {"rel": "alternate", "href": f"{base}/map", "type": "text/html", "title": "一张图 the one map"},
            ],
            "layers": [{"name": name, "features": n} for name, n in services.store.counts().items()
                       if name in features.collections_of(services.store)],
        }
        headers = {"Cache-Control": cache_control(request), "Vary": "Host, Accept"}
        if "text/html" in request.headers.get("accept", "") or request.query_params.get("f") == "html":
            return HTMLResponse(_landing_html(body), headers=headers)
        return JSONResponse(body, headers=headers)

    app.include_router(features.router())
    app.include_router(tiles.router())
    app.include_router(figures.router())
    app.include_router(analysis.router())
    app.include_router(siting.router())
    app.include_router(events.router())
    app.include_router(crosswalk.router())
    app.include_router(roster.router())
    app.include_router(pages.router())
    app.include_router(plans.router())
    app.include_router(imports.router())
    app.include_router(admin.router())
    app.include_router(exports.router())
    pages.mount(app)
    app.openapi = lambda: _openapi(app)
    return app


def _openapi(app: FastAPI) -> dict:
    """FastAPI's OpenAPI document, saying what the service does: the errors each
    operation answers as problem bodies (:func:`api.problems.document`), the key as
    optional where no role is needed (:func:`api.auth.document`), the parameters that
    may be sent empty (:func:`api.dependencies.document`), the operations a rate limit
    applies to (:func:`api.limits.document`), and every public
    collection's items path written out with its queryables as query parameters (OGC
    API - Features Part 3's queryables-query-parameters): clients such as GDAL read a
    collection's filters from its own path, not from the templated one."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    problems.document(schema)
    auth.document(schema, app)
    dependencies.document(schema)
    limits.document(schema, app.state.settings)
    template = schema["paths"].get("/collections/{collection_id}/items")
    services = app.state.services
    if template is not None:
        for collection in features.collections_of(services.store).values():
            if collection.role != "anonymous":
                continue
            operation = json.loads(json.dumps(template["get"]))
            operation["operationId"] = f"items_{collection.id}"
            operation["summary"] = f"{collection.title}: features, filtered by any queryable"
            operation["parameters"] = [p for p in operation["parameters"] if p["name"] != "collection_id"]
            operation["responses"].pop("404", None)  # the collection is there
            known = {p["name"] for p in operation["parameters"]}
            types = {"integer": {"type": "integer", "minimum": -2**63, "maximum": 2**63 - 1},  # the store's integers
                     "real": {"type": "number"}, "boolean": {"type": "boolean"}}
            text = {"type": "string", "maxLength": features.VALUE_LENGTH}
            for name, kind in services.store.columns(collection.id).items():
                if name not in known:
                    operation["parameters"].append({"name": name, "in": "query", "required": False,
                                                    "schema": types.get(kind, text),
                                                    "description": f"{name} equals this value (a queryable)"})
            schema["paths"][f"/collections/{collection.id}/items"] = {"get": operation}
    app.openapi_schema = schema
    return schema


class RequestLog:
    """Log every request with its status and time, and count it in flight in ``traffic``
    (:class:`api.services.Traffic`) while it is answered (pure ASGI: cheap on the tile path)."""

    def __init__(self, app, traffic=None):
        self.app = app
        self.traffic = traffic

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500}

        async def _send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        traffic = self.traffic
        if traffic is not None:
            traffic.enter()
        try:
            await self.app(scope, receive, _send)
        finally:
            if traffic is not None:
                traffic.leave()
            ms = (time.perf_counter() - start) * 1000
            log.info("%s %s %d %.1fms", scope["method"], scope["path"], status["code"], ms)


def _landing_html(body: dict) -> str:
    from html import escape

    rows = "".join(f"<tr><td>{escape(layer['name'])}</td><td>{layer['features']:,}</td></tr>"
                   for layer in body["layers"])
    links = "".join(f'<li><a href="{escape(link["href"])}">{escape(link["title"])}</a></li>'
                    for link in body["links"])
    return f"""<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>{escape(body['title'])}</title>
<style>body{{font-family:"Noto Sans CJK SC",sans-serif;margin:2em}}td,th{{padding:.2em 1em;text-align:left}}</style>
</head><body><h1>{escape(body['title'])}</h1><p>{escape(body['description'])}</p>
<table><tr><th>layer</th><th>features</th></tr>{rows}</table><ul>{links}</ul></body></html>"""
