"""OGC API - Features (Part 1 core, GeoJSON; Part 2 crs), over the store.

One collection per grid level (``town`` ... ``grid3``), ``stations`` and
``roads`` for everyone; ``addresses`` and ``events`` (address-level, personal
data) only for the viewer role and above, and not even listed for others.
Coordinates are longitude/latitude (CRS84) unless ``crs`` asks for CGCS2000
(EPSG:4490, latitude first as EPSG defines it), WGS84 (EPSG:4326) or the
Chinese web-map systems ``gcj02`` (Amap, Tencent) and ``bd09`` (Baidu).
"""

from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from typing import Annotated

import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from gridgeo import crs as gcrs
from gridgeo.schema import DEFAULT_SCHEME, CodeScheme
from api.auth import Principal, principal
from api.problems import Problem

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
GCJ02, BD09 = "gcj02", "bd09"
SUPPORTED_CRS = [CRS84, EPSG4490, EPSG4326, GCJ02, BD09]
_LAT_FIRST = {EPSG4490, EPSG4326}
_ALIASES = {"crs84": CRS84, "epsg:4490": EPSG4490, "4490": EPSG4490, "cgcs2000": EPSG4490,
            "epsg:4326": EPSG4326, "4326": EPSG4326, "gcj02": GCJ02, "gcj-02": GCJ02, "bd09": BD09, "bd-09": BD09}

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
]

GEOJSON = "application/geo+json"


class Collection:
    """How one store layer is published."""

    def __init__(self, id, title, description, *, role="anonymous", filters=(), temporal=None):
        self.id, self.title, self.description, self.role, self.filters = id, title, description, role, filters
        self.temporal = temporal  # the column a `datetime` query filters


_GRID_FILTERS = ("code", "name", "level", "parent")
_GRID_DESCRIPTIONS = {
    "town": "The towns and streets (镇街) of the city.",
    "village": "Villages (村) and communities (社区).",
    "grid1": "Level-1 grids.",
    "grid2": "Level-2 grids: the unit of a grid worker's daily round.",
    "grid3": "Level-3 grids, e.g. enterprise plots (专属网格).",
}
_OTHER_COLLECTIONS = [
    Collection("stations", "服务站点 Stations", "Service stations and service points.",
               filters=("station_id", "name", "kind", "grid_code")),
    Collection("roads", "道路 Roads", "Road centre lines (walking network).", filters=("road_id", "name", "class")),
    Collection("addresses", "标准地址 Standard addresses", "Address-level base data (一标三实); viewer role.",
               role="viewer", filters=("addr_id",)),
    Collection("events", "网格事件 Grid events", "Raw grid events; viewer role.", role="viewer",
               filters=("event_id", "category", "status"), temporal="reported_at"),
]


@functools.lru_cache(maxsize=8)
def collections_for(scheme: CodeScheme) -> dict[str, Collection]:
    """The collections of a store with this code scheme: one per grid level, then the other layers."""
    grids = [Collection(lv.name, f"{lv.label} {lv.label_en[:1].upper()}{lv.label_en[1:]}".strip(),
                        _GRID_DESCRIPTIONS.get(lv.name, f"{lv.label} ({lv.label_en}) units."), filters=_GRID_FILTERS)
             for lv in scheme.levels]
    return {c.id: c for c in [*grids, *_OTHER_COLLECTIONS]}


COLLECTIONS = collections_for(DEFAULT_SCHEME)
"""The collections of a store with the default scheme."""
FILTER_NAMES = sorted({f for c in COLLECTIONS.values() for f in c.filters})


def router() -> APIRouter:
    r = APIRouter(tags=["OGC API - Features"])

    @r.get("/conformance", summary="The OGC conformance classes the service implements")
    def conformance():
        return {"conformsTo": CONFORMANCE}

    @r.get("/collections", summary="The collections the caller may read")
    def collections(request: Request, who: Principal = Depends(principal)):
        services = request.app.state.services
        visible = [c for c in collections_for(services.store.scheme).values() if who.has(c.role)]
        return {
            "links": [_link(request, "/collections", "self", "application/json")],
            "collections": [_collection_doc(request, services, c) for c in visible],
            "crs": SUPPORTED_CRS,
        }

    @r.get("/collections/{collection_id}", summary="One collection")
    def collection(collection_id: str, request: Request, who: Principal = Depends(principal)):
        c = _visible(collection_id, who, request)
        return _collection_doc(request, request.app.state.services, c)

    @r.get("/collections/{collection_id}/queryables", summary="The properties items can be filtered by")
    def queryables(collection_id: str, request: Request, who: Principal = Depends(principal)):
        c = _visible(collection_id, who, request)
        kinds = request.app.state.services.store.columns(c.id)
        types = {"integer": "integer", "real": "number", "boolean": "boolean"}
        return JSONResponse({
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": str(request.url),
            "type": "object",
            "title": c.title,
            "properties": {f: {"type": types.get(kinds.get(f, "text"), "string")} for f in c.filters},
        }, media_type="application/schema+json")

    @r.get("/collections/{collection_id}/items", summary="Features of a collection, a page at a time",
           response_class=Response, responses={200: {"content": {GEOJSON: {}}}})
    def items(
        collection_id: str,
        request: Request,
        bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (CRS84 unless bbox-crs says)")] = None,
        bbox_crs: Annotated[str | None, Query(alias="bbox-crs")] = None,
        limit: Annotated[int | None, Query(ge=1, description="Features per page")] = None,
        offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
        crs: Annotated[str | None, Query(description="Output CRS: " + ", ".join(SUPPORTED_CRS))] = None,
        datetime_: Annotated[str | None, Query(alias="datetime", description="An instant or an interval "
                                               "start/end (RFC 3339, '..' for open), on reported_at")] = None,
        code: str | None = None, name: str | None = None, level: str | None = None, parent: str | None = None,
        kind: str | None = None, grid_code: str | None = None, station_id: str | None = None,
        category: str | None = None, status: str | None = None, road_id: str | None = None,
        addr_id: str | None = None, event_id: str | None = None,
        road_class: Annotated[str | None, Query(alias="class")] = None,
        who: Principal = Depends(principal),
    ):
        services = request.app.state.services
        settings = services.settings
        c = _visible(collection_id, who, request)
        given = {"code": code, "name": name, "level": level, "parent": parent, "kind": kind,
                 "grid_code": grid_code, "station_id": station_id, "category": category, "status": status,
                 "road_id": road_id, "addr_id": addr_id, "event_id": event_id, "class": road_class}
        where = {k: v for k, v in given.items() if v is not None}
        unknown = sorted(set(where) - set(c.filters))
        if unknown:
            raise Problem(400, "Bad Request", f"{c.id} cannot be filtered by {unknown}: use {list(c.filters)}")
        if datetime_ and c.temporal:
            where[c.temporal] = _interval(datetime_)
        limit = settings.default_limit if limit is None else limit
        if limit > settings.max_limit:
            limit = settings.max_limit  # OGC: the server may serve fewer than asked
        out_crs = _crs(crs, "crs")
        box = _bbox(bbox, _crs(bbox_crs, "bbox-crs")) if bbox else None
        store = services.store
        frame = store.read(c.id, bbox=box, where=where or None, limit=limit, offset=offset)
        matched = store.count(c.id, bbox=box, where=where or None)
        body = _feature_collection(frame, c.id, out_crs)
        body["numberMatched"] = matched
        body["numberReturned"] = len(frame)
        body["timeStamp"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        body["links"] = _paging_links(request, offset, limit, len(frame), matched)
        return _geojson(body, out_crs, services.version)

    @r.get("/collections/{collection_id}/items/{feature_id}", summary="One feature",
           response_class=Response, responses={200: {"content": {GEOJSON: {}}}})
    def item(collection_id: str, feature_id: str, request: Request,
             crs: Annotated[str | None, Query(description="Output CRS")] = None,
             who: Principal = Depends(principal)):
        services = request.app.state.services
        c = _visible(collection_id, who, request)
        key = {"stations": "station_id", "roads": "road_id", "addresses": "addr_id", "events": "event_id"}.get(
            c.id, "code")
        out_crs = _crs(crs, "crs")
        frame = services.store.read(c.id, where={key: feature_id}, limit=1)
        if frame.empty:
            raise Problem(404, "Not Found", f"{c.id} has no feature {feature_id!r}")
        feature = _feature_collection(frame, c.id, out_crs)["features"][0]
        feature["links"] = [
            _link(request, f"/collections/{c.id}/items/{feature_id}", "self", GEOJSON),
            _link(request, f"/collections/{c.id}", "collection", "application/json"),
        ]
        return _geojson(feature, out_crs, services.version)

    return r


# --- helpers -----------------------------------------------------------------------


def _visible(collection_id: str, who: Principal, request: Request) -> Collection:
    c = collections_for(request.app.state.services.store.scheme).get(collection_id)
    if c is None:
        raise Problem(404, "Not Found", f"no collection {collection_id!r}: see /collections")
    if not who.has(c.role):
        status = 401 if who.role == "anonymous" else 403
        raise Problem(status, "Unauthorized" if status == 401 else "Forbidden",
                      f"{collection_id} holds address-level data: it needs the {c.role} role")
    return c


def _link(request: Request, path: str, rel: str, type_: str, **params) -> dict:
    url = str(request.base_url).rstrip("/") + path
    if params:
        from urllib.parse import urlencode
        url += "?" + urlencode(params)
    return {"href": url, "rel": rel, "type": type_}


def _collection_doc(request: Request, services, c: Collection) -> dict:
    bounds = services.store.extent(c.id) or (118.0, 24.0, 119.0, 25.0)
    return {
        "id": c.id,
        "title": c.title,
        "description": c.description,
        "itemType": "feature",
        "crs": SUPPORTED_CRS,
        "storageCrs": CRS84,
        "extent": {"spatial": {"bbox": [list(bounds)], "crs": CRS84}},
        "links": [
            _link(request, f"/collections/{c.id}", "self", "application/json"),
            _link(request, f"/collections/{c.id}/items", "items", GEOJSON),
            _link(request, f"/collections/{c.id}/queryables", "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                  "application/schema+json"),
        ],
    }


def _interval(text: str):
    """OGC ``datetime``: an instant, or ``start/end`` with ``..`` (or nothing) for an open end."""

    def instant(value: str):
        if value in ("", ".."):
            return None
        try:
            stamp = pd.Timestamp(value)
        except ValueError:
            raise Problem(400, "Bad Request", f"datetime {value!r} is not an RFC 3339 date or time") from None
        return stamp.tz_convert("Asia/Shanghai").tz_localize(None) if stamp.tzinfo else stamp

    if "/" in text:
        start, end = (instant(part.strip()) for part in text.split("/", 1))
        if start is not None and end is not None and start > end:
            raise Problem(400, "Bad Request", f"datetime {text!r} ends before it starts")
        return slice(start, end)
    at = instant(text.strip())
    return slice(at, at + pd.Timedelta(seconds=1)) if at is not None else slice(None, None)


def _crs(value: str | None, parameter: str) -> str:
    if value is None:
        return CRS84
    if value in SUPPORTED_CRS:
        return value
    found = _ALIASES.get(value.strip().lower())
    if found is None:
        raise Problem(400, "Bad Request", f"{parameter} {value!r} is not supported: use one of {SUPPORTED_CRS}")
    return found


def _bbox(text: str, bbox_crs: str) -> tuple[float, float, float, float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise Problem(400, "Bad Request", f"bbox {text!r} is not four numbers: minx,miny,maxx,maxy") from None
    if len(values) != 4 or not all(np.isfinite(values)):
        raise Problem(400, "Bad Request", "bbox needs four finite numbers: minx,miny,maxx,maxy")
    if bbox_crs in _LAT_FIRST:
        values = [values[1], values[0], values[3], values[2]]
    if bbox_crs in (GCJ02, BD09):
        xs, ys = _convert_xy([values[0], values[2]], [values[1], values[3]], bbox_crs)
        values = [xs[0], ys[0], xs[1], ys[1]]
    minx, miny, maxx, maxy = values
    if minx > maxx or miny > maxy:
        raise Problem(400, "Bad Request", "bbox must be minx,miny,maxx,maxy with min <= max")
    return minx, miny, maxx, maxy


def _convert_xy(xs, ys, system):
    fn = {GCJ02: gcrs.gcj02_to_wgs84, BD09: gcrs.bd09_to_wgs84}[system]
    return fn(np.asarray(xs, float), np.asarray(ys, float))


def _feature_collection(frame, collection_id: str, out_crs: str) -> dict:
    key = {"stations": "station_id", "roads": "road_id", "addresses": "addr_id", "events": "event_id"}.get(
        collection_id, "code")
    geoms = _output_geometries(np.asarray(frame.geometry.array), out_crs)
    geometry_json = shapely.to_geojson(geoms)
    props = frame.drop(columns=frame.geometry.name)
    records = json.loads(props.to_json(orient="records", date_format="iso", force_ascii=False)) if len(props) else []
    features = [
        {"type": "Feature", "id": rec.get(key), "geometry": json.loads(g) if g else None, "properties": rec}
        for rec, g in zip(records, geometry_json)
    ]
    return {"type": "FeatureCollection", "features": features}


def _output_geometries(geoms, out_crs: str):
    if out_crs in (GCJ02, BD09):
        geoms = gcrs.convert(geoms, "cgcs2000", out_crs)
    if out_crs in _LAT_FIRST:
        geoms = shapely.transform(geoms, lambda c: c[:, ::-1])
    return shapely.transform(geoms, lambda c: np.round(c, 7))


def _paging_links(request: Request, offset: int, limit: int, returned: int, matched: int) -> list[dict]:
    params = dict(request.query_params)
    base = request.url.path
    links = [_link(request, base, "self", GEOJSON, **params)]
    if offset + returned < matched:
        links.append(_link(request, base, "next", GEOJSON, **{**params, "offset": offset + limit, "limit": limit}))
    if offset > 0:
        links.append(_link(request, base, "prev", GEOJSON,
                           **{**params, "offset": max(0, offset - limit), "limit": limit}))
    return links


def _geojson(body: dict, out_crs: str, version: int) -> Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    crs_header = f"<{out_crs}>" if out_crs.startswith("http") else out_crs
    return Response(content, media_type=GEOJSON, headers={"Content-Crs": crs_header, "ETag": f'W/"{version}"'})
