"""Mapbox Vector Tiles with TileJSON for every layer of the one map.

``/tiles/{layer}/{z}/{x}/{y}.mvt`` (also ``.pbf``), ``/tiles/{layer}.json``
(TileJSON 3.0) and ``/tiles/{layer}/metadata.json`` (tippecanoe-style, so
GDAL's MVT driver and QGIS open ``MVT:http://host/tiles/{layer}``).

An empty tile is answered ``204 No Content``. Tiles carry an ETag (data
version and tile address), ``Last-Modified`` (when that version was
published) and ``Cache-Control``; ``If-None-Match`` gets ``304``. Rendered
tiles are cached in memory (and on disk with ``GRIDGEO_TILE_CACHE``) per
data version, so a publish invalidates them.
"""

from __future__ import annotations

from email.utils import format_datetime

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api import derived
from api.problems import Problem
from gridgeo.tiles.directory import metadata

MVT = "application/vnd.mapbox-vector-tile"
CACHE_CONTROL = "public, max-age=60, must-revalidate"


def router() -> APIRouter:
    r = APIRouter(tags=["vector tiles"])

    @r.get("/tiles", summary="The tile layers")
    def layers(request: Request):
        tiles = derived.tiles(request.app.state.services)
        base = str(request.base_url).rstrip("/")
        return {"layers": [{"id": name, "tilejson": f"{base}/tiles/{name}.json", "minzoom": layer.minzoom,
                            "maxzoom": layer.maxzoom} for name, layer in tiles.layers.items()]}

    @r.get("/tiles/{layer}.json", summary="TileJSON 3.0 of a layer")
    def tilejson(layer: str, request: Request):
        tiles = _tileset(request, layer)
        base = str(request.base_url).rstrip("/")
        doc = tiles.tilejson([f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"], layers=[layer], name=layer)
        return JSONResponse(doc, headers={"Cache-Control": CACHE_CONTROL})

    @r.get("/tiles/{layer}", summary="A tile layer's TileJSON (also what GDAL's MVT driver opens)")
    def layer_root(layer: str, request: Request):
        return tilejson(layer, request)

    @r.get("/tiles/{layer}/metadata.json", summary="tippecanoe-style metadata (GDAL's MVT driver)")
    def tile_metadata(layer: str, request: Request):
        tiles = _tileset(request, layer)
        return JSONResponse(metadata(tiles, layers=[layer]), headers={"Cache-Control": CACHE_CONTROL})

    @r.get("/tiles/{layer}/{z}/{x}/{y}.{ext}", summary="One vector tile (204 when empty)",
           response_class=Response,
           responses={200: {"content": {MVT: {}}}, 204: {"description": "an empty tile"},
                      304: {"description": "not modified"}})
    async def tile(layer: str, z: int, x: int, y: int, ext: str, request: Request):
        if ext not in ("mvt", "pbf"):
            raise Problem(404, "Not Found", f"tiles end in .mvt or .pbf, not .{ext}")
        if not (0 <= z <= 24 and 0 <= x < 2**z and 0 <= y < 2**z):
            raise Problem(404, "Not Found", f"{z}/{x}/{y} is not a tile of WebMercatorQuad")
        services = request.app.state.services
        tiles = services.peek("tiles") or await anyio.to_thread.run_sync(lambda: derived.tiles(services))
        if layer not in tiles.layers:
            raise Problem(404, "Not Found", f"no tile layer {layer!r}: see /tiles")
        etag = tiles.etag(z, x, y, layers=layer)
        headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL,
                   "Last-Modified": _last_modified(request)}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        cached = tiles.cached(z, x, y, layers=layer)
        data = cached if cached is not None else await anyio.to_thread.run_sync(
            lambda: tiles.tile(z, x, y, layers=layer))
        if not data:
            return Response(status_code=204, headers=headers)
        return Response(data, media_type=MVT, headers=headers)

    return r


def _tileset(request: Request, layer: str):
    tiles = derived.tiles(request.app.state.services)
    if layer not in tiles.layers:
        raise Problem(404, "Not Found", f"no tile layer {layer!r}: see /tiles")
    return tiles


def _last_modified(request: Request) -> str:
    services = request.app.state.services

    def build():
        log = services.store.revisions()
        version = services.version
        at = log.loc[log["revision"] == version, "at"]
        return format_datetime(at.iloc[0].to_pydatetime(), usegmt=True) if len(at) else \
            "Thu, 01 Jan 2026 00:00:00 GMT"

    return services.derived("last_modified", build)
