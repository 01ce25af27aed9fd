"""Mapbox Vector Tiles with TileJSON for every layer of the one map.

``/tiles/{layer}/{z}/{x}/{y}.mvt`` (also ``.pbf``), ``/tiles/{layer}.json``
(TileJSON 3.0) and ``/tiles/{layer}/metadata.json`` (tippecanoe-style, so
GDAL's MVT driver and QGIS open ``MVT:http://host/tiles/{layer}``).

An empty tile is answered ``204 No Content``. Tiles carry an ETag (data
version and tile address), ``Last-Modified`` (when that version was
published) and ``Cache-Control``; ``If-None-Match`` gets ``304``. Tiles are
drawn from the geometry ``gridgeo prepare`` kept in the store for the version
served; rendered tiles are cached in memory (and on disk with
``GRIDGEO_TILE_CACHE``, shared by workers) per data version, so a publish
invalidates them.

Tiles are public whoever asks: they are served ``Cache-Control: public`` and
a shared cache between the service and its clients hands one copy to
everyone. So they carry the public figures for every caller, under the
minimum count (:mod:`gridgeo.disclosure`, ``GRIDGEO_MIN_COUNT``): a grid
feature's withheld figures are left out and its ``suppressed`` attribute is
true; the ``events`` layer carries each unit's event count only. Their
version (in ETags and cache keys) names the minimum count, so tiles made
with another never come back. Exact figures per unit are for viewer keys,
from ``/stats``.

The tile route is the hot path of the one map: a request the cache can
answer (a tile it holds, or a 304) is answered from the ASGI scope by
:class:`_TileRoute` without FastAPI's request, parameter and dependency
machinery; everything else (a first request, a miss to render, an address
that is not a tile) takes the ordinary route. Both build their answer with
the same functions, so the headers and statuses are the same either way.

A worker draws ``GRIDGEO_TILE_RENDERERS`` tiles at a time (default one), in a
thread beside the event loop, which goes on answering cached tiles and every
other request meanwhile. Drawing is many short GEOS calls that each let go of
the GIL: threads drawing side by side spend more time handing it over than
drawing. ``benchmarks/tiles.py``'s cold run on the city took 8.2 s of CPU with
anyio's 40 threads free to draw and 5.4 s with one (367 and 490 tiles/s; tipg
383-393 in the same runs).
"""

from __future__ import annotations

from email.utils import format_datetime
from typing import Annotated

import anyio
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from api import derived
from api.dependencies import base_url, cache_control
from api.problems import Problem, responses
from gridgeo.tiles.directory import metadata

MVT = "application/vnd.mapbox-vector-tile"
CACHE_CONTROL = "public, max-age=60, must-revalidate"
NOT_FOUND = responses(404)


def router() -> APIRouter:
    r = APIRouter(tags=["vector tiles"], responses=derived.PREPARING)  # every route reads the derived data

    @r.get("/tiles", summary="The tile layers")
    def layers(request: Request):
        tiles = derived.tiles(request.app.state.services)
        base = base_url(request)
        body = {"layers": [{"id": name, "tilejson": f"{base}/tiles/{name}.json", "minzoom": layer.minzoom,
                            "maxzoom": layer.maxzoom} for name, layer in tiles.layers.items()]}
        return JSONResponse(body, headers={"Cache-Control": cache_control(request), "Vary": "Host"})  # links

    @r.get("/tiles/{layer}.json", summary="TileJSON 3.0 of a layer", responses=NOT_FOUND)
    def tilejson(layer: str, request: Request):
        tiles = _tileset(request, layer)
        base = base_url(request)
        doc = tiles.tilejson([f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"], layers=[layer], name=layer)
        return JSONResponse(doc, headers={"Cache-Control": cache_control(request), "Vary": "Host"})

    @r.get("/tiles/{layer}", summary="A tile layer's TileJSON (also what GDAL's MVT driver opens)", responses=NOT_FOUND)
    def layer_root(layer: str, request: Request):
        return tilejson(layer, request)

    @r.get("/tiles/{layer}/metadata.json", summary="tippecanoe-style metadata (GDAL's MVT driver)",
           responses=NOT_FOUND)
    def tile_metadata(layer: str, request: Request):
        tiles = _tileset(request, layer)
        return JSONResponse(metadata(tiles, layers=[layer]), headers={"Cache-Control": CACHE_CONTROL})

    async def tile(layer: str, z: int, x: int, y: int, request: Request,
                   ext: Annotated[str, Path(description="mvt or pbf (the same tile)",
                                            json_schema_extra={"enum": ["mvt", "pbf"]})]):
        if ext not in ("mvt", "pbf"):
            raise Problem(404, "Not Found", f"tiles end in .mvt or .pbf, not .{ext}")
        if not _in_matrix(z, x, y):
            raise Problem(404, "Not Found", f"{z}/{x}/{y} is not a tile of WebMercatorQuad")
        services = request.app.state.services
        tiles = services.peek("tiles") or await anyio.to_thread.run_sync(lambda: _prepared(services))
        if layer not in tiles.layers:
            raise Problem(404, "Not Found", f"no tile layer {layer!r}: see /tiles")
        headers = _headers(services, tiles, layer, z, x, y)
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        cached = tiles.cached(z, x, y, layers=layer)
        if cached is None:
            cached = await anyio.to_thread.run_sync(lambda: tiles.tile(z, x, y, layers=layer),
                                                    limiter=_renderers(request.app))
            services.settle()  # a first tile of a zoom grew the tile set: keep the memory bound
        return _tile_response(cached, headers)

    r.add_api_route("/tiles/{layer}/{z}/{x}/{y}.{ext}", tile, methods=["GET"], route_class_override=_TileRoute,
                    summary="One vector tile (204 when empty)", response_class=Response,
                    responses={200: {"content": {MVT: {}}}, 204: {"description": "an empty tile"},
                               304: {"description": "not modified"}, **NOT_FOUND})
    return r


class _TileRoute(APIRoute):
    """The tile route, answering what the cache can answer straight from the ASGI scope."""

    async def handle(self, scope, receive, send):
        response = _from_cache(scope) if scope["method"] in ("GET", "HEAD") else None
        if response is None:
            return await super().handle(scope, receive, send)
        return await response(scope, receive, send)


def _from_cache(scope) -> Response | None:
    """The answer to a tile request that needs no rendering (a 304 or a cached tile), else None."""
    params = scope.get("path_params", {})
    address = [params.get(key, "") for key in ("z", "x", "y")]
    # anything but plain decimal numbers is left to FastAPI's parsing and its error answers,
    # and a request with a key to the app's check of the key (api.auth.principal)
    if params.get("ext") not in ("mvt", "pbf") or not all(v.isascii() and v.isdigit() for v in address):
        return None
    if _header(scope, b"x-api-key") or (_header(scope, b"authorization") or "").lower().startswith("bearer"):
        return None
    z, x, y = map(int, address)
    services = scope["app"].state.services
    tiles = services.peek("tiles")
    layer = params.get("layer")
    if tiles is None or layer not in tiles.layers or not _in_matrix(z, x, y):
        return None
    headers = _headers(services, tiles, layer, z, x, y)
    if _header(scope, b"if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    data = tiles.cached(z, x, y, layers=layer)
    return None if data is None else _tile_response(data, headers)


def _renderers(app) -> anyio.CapacityLimiter:
    """The app's limit on tiles drawn at the same time (``GRIDGEO_TILE_RENDERERS``), made on first use
    (in the event loop)."""
    limiter = getattr(app.state, "tile_renderers", None)
    if limiter is None:
        limiter = app.state.tile_renderers = anyio.CapacityLimiter(app.state.settings.tile_renderers)
    return limiter


def _in_matrix(z, x, y) -> bool:
    return 0 <= z <= 24 and 0 <= x < 2**z and 0 <= y < 2**z


def _headers(services, tiles, layer, z, x, y) -> dict:
    return {"ETag": tiles.etag(z, x, y, layers=layer), "Cache-Control": CACHE_CONTROL,
            "Last-Modified": _last_modified(services)}


def _tile_response(data: bytes, headers: dict) -> Response:
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MVT, headers=headers)


def _header(scope, name: bytes) -> str | None:
    """The first value of a request header, as Starlette's ``request.headers.get`` gives it."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _prepared(services):
    """The tile set of the version served (each zoom's geometry is read from the store on its first tile)."""
    return derived.tiles(services)


def _tileset(request: Request, layer: str):
    tiles = derived.tiles(request.app.state.services)
    if layer not in tiles.layers:
        raise Problem(404, "Not Found", f"no tile layer {layer!r}: see /tiles")
    return tiles


def _last_modified(services) -> str:
    def build(kept):
        log = services.store.revisions(since=kept.version - 1)
        at = log.loc[log["revision"] == kept.version, "at"]
        return format_datetime(at.iloc[0].to_pydatetime(), usegmt=True) if len(at) else \
            "Thu, 01 Jan 2026 00:00:00 GMT"

    return services.derived("last_modified", build)
