"""OGC API - Features over the store: Part 1 (core, GeoJSON, HTML, OpenAPI), Part 2
(coordinate systems), Part 3 (queryables and CQL2 filters), with ``sortby`` and
``properties``.

One collection per grid level of the store's code scheme, ``stations``,
``roads`` and one per boundary set (``警格``: another office's areas) for everyone; ``addresses`` and ``events`` (address-level, personal
data) only for the viewer role and above, and not even listed for others.
Coordinates are longitude/latitude (CRS84) unless ``crs`` asks for CGCS2000
(EPSG:4490, latitude first as EPSG defines it), WGS84 (EPSG:4326) or the
Chinese web-map systems GCJ-02 (Amap, Tencent) and BD-09 (Baidu), which have
no EPSG code: they are named by the URIs :data:`GCJ02` and :data:`BD09`.

Filters go to the store, which runs them in its database: the queryables as
query parameters (``?parent=350582106201``) and CQL2 (``filter=``, text or
JSON). A parameter the service does not know is refused (400), not ignored.
Every resource is also a page for people with ``f=html`` (or from a browser).
"""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from api.auth import Principal, principal
from api.dependencies import base_url, one_of
from api.encode import dumps, feature_collection
from api.html import page, wants_html
from api.problems import Problem, responses
from gridgeo import crs as gcrs
from gridgeo.schema import DEFAULT_SCHEME, CodeScheme
from gridgeo.store import FILTER_CONFORMANCE, FilterError

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
GCJ02 = "urn:gridgeo:def:crs:gcj02"
"""GCJ-02 (国测局坐标, Amap and Tencent): no EPSG code exists, so gridgeo names it with its own URN."""
BD09 = "urn:gridgeo:def:crs:bd09"
"""BD-09 (Baidu): likewise."""
SUPPORTED_CRS = [CRS84, EPSG4490, EPSG4326, GCJ02, BD09]
_LAT_FIRST = {EPSG4490, EPSG4326}
_ALIASES = {"crs84": CRS84, "epsg:4490": EPSG4490, "4490": EPSG4490, "cgcs2000": EPSG4490,
            "epsg:4326": EPSG4326, "4326": EPSG4326, "gcj02": GCJ02, "gcj-02": GCJ02, "bd09": BD09, "bd-09": BD09}
_SYSTEMS = {GCJ02: "gcj02", BD09: "bd09"}
_LONLAT_FILTER_CRS = {CRS84, EPSG4490, EPSG4326}
CRS_NAMES = [*SUPPORTED_CRS, *_ALIASES]
"""What a ``crs`` or ``bbox-crs`` may be: a supported CRS's URI or one of its short names
(given in any case); empty is the same as not given (CRS84)."""
FILTER_CRS_NAMES = [name for name in CRS_NAMES if (name if name in SUPPORTED_CRS else _ALIASES[name])
                    in _LONLAT_FILTER_CRS]
"""What a ``filter-crs`` may be: a longitude/latitude CRS."""

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    *FILTER_CONFORMANCE,
]
"""What the service implements, exactly (the CQL2 subset: gridgeo.store's filters)."""

ITEM_PARAMETERS = {"bbox", "bbox-crs", "limit", "offset", "crs", "datetime", "filter", "filter-lang",
                   "filter-crs", "sortby", "properties", "f"}
"""The query parameters of /items besides the queryables; any other is refused."""

MAX_TARGET = 65_535
"""The longest request target (path and query) the HTTP server reads (uvicorn's httptools
parser): past it the client gets the server's own plain-text 400, never this service's
answer. The longest values below keep every request the OpenAPI document allows within
it, a character taking up to 12 bytes percent-encoded (four UTF-8 bytes)."""
FILTER_LENGTH = 3000
"""The longest CQL2 filter, in characters (a polygon of about a hundred vertices)."""
LIST_LENGTH = 300
"""The longest ``sortby`` or ``properties``."""
VALUE_LENGTH = 100
"""The longest ``bbox``, ``datetime`` or value of a queryable."""


GEOJSON = "application/geo+json"

Format = Annotated[Literal["json", "geojson", "html"] | None, Query(description="json (default) or html")]

HTML = {200: {"content": {"text/html": {}}}}
"""A JSON resource that is also a page for people (``f=html``)."""
NOT_FOUND = responses(404)


class SchemaResponse(JSONResponse):
    """A JSON Schema document (the queryables)."""

    media_type = "application/schema+json"


def _crs_parameter(names: list[str], description: str, alias: str | None = None):
    """A CRS query parameter: one of ``names`` (empty or absent: CRS84)."""
    return Query(alias=alias, description=description + ": a CRS URI or a short name (any case); empty or "
                 "absent: CRS84", json_schema_extra=one_of(["", *names]))


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
    Collection("roads", "道路 Roads", "Road centre lines (walking network), one feature per segment.",
               filters=("segment_id", "road_id", "name", "class")),
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


_BOUNDARY_FILTERS = ("boundary_id", "name")


def collections_of(store) -> dict[str, Collection]:
    """The collections of a store: those of its code scheme, then one per boundary set
    (警格, 学区 ...: other offices' areas, public as the grids are)."""
    sets = {name: Collection(name, f"{name} Boundaries", f"The boundary set {name}: another office's areas "
                             "(police precincts, school catchments ...), to compare with the grids at /crosswalk.",
                             filters=_BOUNDARY_FILTERS)
            for name in store.boundary_sets()}
    return {**collections_for(store.scheme), **sets}


COLLECTIONS = collections_for(DEFAULT_SCHEME)
"""The collections of a store with the default scheme."""
FILTER_NAMES = sorted({f for c in COLLECTIONS.values() for f in c.filters})


def router() -> APIRouter:
    r = APIRouter(tags=["OGC API - Features"])

    @r.get("/conformance", summary="The OGC conformance classes the service implements", responses=HTML)
    def conformance(request: Request, f: Format = None):
        if wants_html(request, f):
            return _html(request, "collections.html", "符合性 Conformance",
                         description="This service conforms to these classes:",
                         collections=[{"title": c, "id": "", "description": "", "href": c, "items": c}
                                      for c in CONFORMANCE])
        return {"conformsTo": CONFORMANCE}

    @r.get("/collections", summary="The collections the caller may read", responses=HTML)
    def collections(request: Request, f: Format = None, who: Principal = Depends(principal)):
        services = request.app.state.services
        visible = [c for c in collections_of(services.store).values() if who.has(c.role)]
        docs = [_collection_doc(request, services, c) for c in visible]
        if wants_html(request, f):
            return _html(request, "collections.html", "数据集合 Collections",
                         description="The layers this service publishes; personal data only with a viewer key.",
                         collections=[{**d, "href": f"/collections/{d['id']}?f=html",
                                       "items": f"/collections/{d['id']}/items?f=html"} for d in docs])
        return {"links": [_link(request, "/collections", "self", "application/json"),
                          _link(request, "/collections", "alternate", "text/html", f="html")],
                "collections": docs, "crs": SUPPORTED_CRS}

    @r.get("/collections/{collection_id}", summary="One collection", responses={**NOT_FOUND, **HTML})
    def collection(collection_id: str, request: Request, f: Format = None, who: Principal = Depends(principal)):
        services = request.app.state.services
        c = _visible(collection_id, who, request)
        doc = _collection_doc(request, services, c)
        if wants_html(request, f):
            return _html(request, "collection.html", c.title, crumbs=[("数据集合", "/collections?f=html")],
                         collection=doc, extent=doc["extent"]["spatial"]["bbox"][0],
                         queryables=list(_queryables(services.store, c)), items=f"/collections/{c.id}/items?f=html",
                         queryables_href=f"/collections/{c.id}/queryables")
        return doc

    @r.get("/collections/{collection_id}/queryables", summary="The properties items can be filtered by",
           response_class=SchemaResponse, responses=NOT_FOUND)
    def queryables(collection_id: str, request: Request, who: Principal = Depends(principal)):
        c = _visible(collection_id, who, request)
        types = {"integer": "integer", "real": "number", "boolean": "boolean"}
        formats = {"datetime": "date-time", "date": "date"}
        props = {}
        for name, kind in _queryables(request.app.state.services.store, c).items():
            props[name] = {"type": types.get(kind, "string")}
            if kind in formats:
                props[name]["format"] = formats[kind]
        props["geometry"] = {"$ref": "https://geojson.org/schema/Geometry.json"}
        return JSONResponse({
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": base_url(request) + f"/collections/{c.id}/queryables",
            "type": "object",
            "title": c.title,
            "properties": props,
            "additionalProperties": False,
        }, media_type=SchemaResponse.media_type)

    @_get_and_head(r, "/collections/{collection_id}/items", summary="Features of a collection, a page at a time",
                   response_class=Response, responses={200: {"content": {GEOJSON: {}, "text/html": {}}}, **NOT_FOUND})
    def items(
        collection_id: str,
        request: Request,
        bbox: Annotated[str | None, Query(max_length=VALUE_LENGTH,
                                          description="minx,miny,maxx,maxy (CRS84 unless bbox-crs says)")] = None,
        bbox_crs: Annotated[str | None, _crs_parameter(CRS_NAMES, "The CRS of bbox", "bbox-crs")] = None,
        limit: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Features per page")] = None,
        offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
        crs: Annotated[str | None, _crs_parameter(CRS_NAMES, "Output CRS")] = None,
        datetime_: Annotated[str | None, Query(alias="datetime", max_length=VALUE_LENGTH,
                                               description="An instant or an interval start/end (RFC 3339, "
                                                           "'..' for open), on reported_at")] = None,
        filter_: Annotated[str | None, Query(alias="filter", max_length=FILTER_LENGTH,
                                             description="A CQL2 filter (OGC API - Features Part 3) on the "
                                                         "queryables, e.g. parent='350582106201'")] = None,
        filter_lang: Annotated[Literal["cql2-text", "cql2-json"] | None, Query(alias="filter-lang")] = None,
        filter_crs: Annotated[str | None, _crs_parameter(FILTER_CRS_NAMES, "The CRS of geometries in the filter",
                                                         "filter-crs")] = None,
        sortby: Annotated[str | None, Query(max_length=LIST_LENGTH, description="Properties to sort by, "
                                            "comma-separated, '-' for descending: -households,code")] = None,
        properties: Annotated[str | None, Query(max_length=LIST_LENGTH,
                                                description="The properties to return, comma-separated")] = None,
        f: Format = None,
        who: Principal = Depends(principal),
    ):
        services = request.app.state.services
        settings = services.settings
        store = services.store
        c = _visible(collection_id, who, request)
        available = _queryables(store, c)
        unknown = sorted(set(request.query_params) - ITEM_PARAMETERS - set(available))
        if unknown:
            raise Problem(400, "Bad Request", f"未知的查询参数 {unknown} — unknown query parameter(s) {unknown}: {c.id} "
                          f"takes {sorted(ITEM_PARAMETERS)} and its queryables {sorted(available)}")
        where = {k: v for k, v in request.query_params.items() if k in available}
        long = sorted(k for k, v in where.items() if len(v) > VALUE_LENGTH)
        if long:
            raise Problem(400, "Bad Request", f"{long}：取值最多 {VALUE_LENGTH} 个字符 — {long}: a queryable's "
                          f"value is at most {VALUE_LENGTH} characters")
        if datetime_ and c.temporal:
            where[c.temporal] = _interval(datetime_)
        if filter_crs and _crs(filter_crs, "filter-crs") not in _LONLAT_FILTER_CRS:
            raise Problem(400, "Bad Request", f"filter-crs {filter_crs!r}：过滤条件中的几何须为经纬度 — geometries "
                          "in a filter are longitude/latitude (CRS84, EPSG:4326 or EPSG:4490)")
        if filter_lang is not None and filter_ is None:
            raise Problem(400, "Bad Request", "有 filter-lang 却没有 filter — filter-lang without a filter")
        limit = settings.default_limit if limit is None else limit
        if limit > settings.max_limit:
            limit = settings.max_limit  # OGC: the server may serve fewer than asked
        out_crs = _crs(crs, "crs")
        box_crs = _crs(bbox_crs, "bbox-crs")  # checked with a bbox or without: a CRS we do not know is refused
        box = _bbox(bbox, box_crs) if bbox else None
        order = _list(sortby, "sortby", available, signed=True)
        chosen = _list(properties, "properties", available)
        key = _key(c.id, store)
        columns = None if chosen is None else list(dict.fromkeys([*chosen, key]))
        query = {"bbox": box, "where": where or None, "filter": filter_, "filter_lang": filter_lang or
                 ("cql2-json" if filter_ and filter_.lstrip().startswith("{") else None)}
        try:
            frame = store.read(c.id, **query, limit=limit, offset=offset, sortby=order, columns=columns)
            matched = store.count(c.id, **query)
        except FilterError:
            raise
        except ValueError as exc:  # a value that is not of its column's kind (the store says which)
            raise Problem(400, "Bad Request", str(exc)) from None
        if chosen is not None:
            frame = frame.drop(columns=[col for col in frame.columns if col not in chosen and col != key
                                        and col != frame.geometry.name])
        body = _feature_collection(frame.drop(columns=["revision"], errors="ignore") if chosen is not None else frame,
                                   c.id, out_crs, key, raw=True)
        if chosen is not None and key not in chosen:
            for feature in body["features"]:
                feature["properties"].pop(key, None)
        body["numberMatched"] = matched
        body["numberReturned"] = len(frame)
        body["timeStamp"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        body["links"] = _paging_links(request, offset, limit, len(frame), matched)
        if wants_html(request, f):
            shown = _feature_collection(frame, c.id, CRS84, key)
            return _html(request, "items.html", f"{c.title} · 要素", crumbs=[
                ("数据集合", "/collections?f=html"), (c.title, f"/collections/{c.id}?f=html")],
                geojson=shown, features=[{**feat, "href": f"/collections/{c.id}/items/{feat['id']}?f=html"}
                                         for feat in shown["features"]],
                columns=[col for col in (chosen or list(available)) if col in frame.columns][:12],
                matched=matched, returned=len(frame), filter=filter_,
                paging=[{"href": link["href"].replace("f=html", "") + "&f=html" if "?" in link["href"]
                         else link["href"] + "?f=html", "title": {"next": "下一页 next", "prev": "上一页 previous"}
                         [link["rel"]]} for link in body["links"] if link["rel"] in ("next", "prev")])
        return _geojson(body, out_crs, services.data_version, head=request.method == "HEAD")

    @_get_and_head(r, "/collections/{collection_id}/items/{feature_id}", summary="One feature",
                   response_class=Response, responses={200: {"content": {GEOJSON: {}, "text/html": {}}}, **NOT_FOUND})
    def item(collection_id: str, request: Request,
             feature_id: Annotated[str, Path(max_length=200, description="The feature's id")],
             crs: Annotated[str | None, _crs_parameter(CRS_NAMES, "Output CRS")] = None,
             f: Format = None, who: Principal = Depends(principal)):
        services = request.app.state.services
        c = _visible(collection_id, who, request)
        unknown = sorted(set(request.query_params) - {"crs", "f"})
        if unknown:
            raise Problem(400, "Bad Request", f"未知的查询参数 {unknown} — unknown query parameter(s) {unknown}: an "
                          "item takes crs and f")
        key = _key(c.id, services.store)
        out_crs = _crs(crs, "crs")
        frame = services.store.read(c.id, where={key: feature_id}, limit=1)
        if frame.empty:
            raise Problem(404, "Not Found", f"{c.id} 中没有要素 {feature_id!r} — {c.id} has no feature {feature_id!r}")
        feature = _feature_collection(frame, c.id, out_crs, key, raw=True)["features"][0]
        feature["links"] = [
            _link(request, f"/collections/{c.id}/items/{feature_id}", "self", GEOJSON),
            _link(request, f"/collections/{c.id}/items/{feature_id}", "alternate", "text/html", f="html"),
            _link(request, f"/collections/{c.id}", "collection", "application/json"),
        ]
        if wants_html(request, f):
            shown = _feature_collection(frame, c.id, CRS84, key)
            return _html(request, "item.html", f"{c.title} · {feature_id}", crumbs=[
                ("数据集合", "/collections?f=html"), (c.title, f"/collections/{c.id}?f=html"),
                ("要素", f"/collections/{c.id}/items?f=html")], geojson=shown,
                properties=list(shown["features"][0]["properties"].items()))
        return _geojson(feature, out_crs, services.data_version, head=request.method == "HEAD")

    return r


# --- helpers -----------------------------------------------------------------------


def _get_and_head(r: APIRouter, path: str, **options):
    """Register a function as GET and as HEAD of ``path``: two routes, so that each
    operation of the OpenAPI document has an id of its own."""

    def register(endpoint):
        for method in ("GET", "HEAD"):
            r.add_api_route(path, endpoint, methods=[method], **options)
        return endpoint

    return register


def _visible(collection_id: str, who: Principal, request: Request) -> Collection:
    c = collections_of(request.app.state.services.store).get(collection_id)
    if c is None:
        raise Problem(404, "Not Found", f"没有数据集合 {collection_id!r}（见 /collections）— no collection "
                      f"{collection_id!r}: see /collections")
    if not who.has(c.role):
        status = 401 if who.role == "anonymous" else 403
        raise Problem(status, "Unauthorized" if status == 401 else "Forbidden",
                      f"{collection_id} holds address-level data: it needs the {c.role} role")
    return c


def _link(request: Request, path: str, rel: str, type_: str, **params) -> dict:
    from urllib.parse import quote

    url = base_url(request) + quote(path, safe="/")  # a boundary set's name is Chinese: percent-encoded
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
            raise Problem(400, "Bad Request", f"datetime {value!r} 不是 RFC 3339 日期或时间 — datetime {value!r} "
                          "is not an RFC 3339 date or time") from None
        return stamp.tz_convert("Asia/Shanghai").tz_localize(None) if stamp.tzinfo else stamp

    if "/" in text:
        start, end = (instant(part.strip()) for part in text.split("/", 1))
        if start is not None and end is not None and start > end:
            raise Problem(400, "Bad Request", f"datetime {text!r} 的结束早于开始 — datetime {text!r} ends before it "
                          "starts")
        return slice(start, end)
    at = instant(text.strip())
    return slice(at, at + pd.Timedelta(seconds=1)) if at is not None else slice(None, None)


def _crs(value: str | None, parameter: str) -> str:
    """A CRS parameter's URI (None or empty: CRS84)."""
    if not value:
        return CRS84
    if value in SUPPORTED_CRS:
        return value
    found = _ALIASES.get(value.strip().lower())
    if found is None:
        raise Problem(400, "Bad Request", f"不支持 {parameter} {value!r}，可用 {SUPPORTED_CRS} — {parameter} {value!r} "
                      f"is not supported: use one of {SUPPORTED_CRS}")
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
    if bbox_crs in _SYSTEMS:
        xs, ys = _convert_xy([values[0], values[2]], [values[1], values[3]], bbox_crs)
        values = [xs[0], ys[0], xs[1], ys[1]]
    minx, miny, maxx, maxy = values
    if minx > maxx or miny > maxy:
        raise Problem(400, "Bad Request", "bbox must be minx,miny,maxx,maxy with min <= max")
    return minx, miny, maxx, maxy


def _convert_xy(xs, ys, system):
    fn = {GCJ02: gcrs.gcj02_to_wgs84, BD09: gcrs.bd09_to_wgs84}[system]
    return fn(np.asarray(xs, float), np.asarray(ys, float))


_KEYS = {"stations": "station_id", "roads": "segment_id", "addresses": "addr_id", "events": "event_id"}


def _key(collection_id: str, store) -> str:
    """The column that names a feature, unique in its collection (a road segment's own id:
    several segments make one road; a store loaded before segment ids falls back to road_id)."""
    if collection_id not in _KEYS and collection_id in store.boundary_sets():
        return "boundary_id"  # unique within its set
    key = _KEYS.get(collection_id, "code")
    if key == "segment_id" and key not in store.columns("roads"):
        return "road_id"
    return key


def _feature_collection(frame, collection_id: str, out_crs: str, key: str, *, raw: bool = False) -> dict:
    geoms = _output_geometries(np.asarray(frame.geometry.array), out_crs)
    return feature_collection(frame, id_column=key, geometries=geoms, digits=None, raw=raw)


def _output_geometries(geoms, out_crs: str):
    if out_crs in _SYSTEMS:
        geoms = gcrs.convert(geoms, "cgcs2000", _SYSTEMS[out_crs])
    if out_crs in _LAT_FIRST:
        geoms = shapely.transform(geoms, lambda c: c[:, ::-1])
    return geoms


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


def _geojson(body: dict, out_crs: str, version: int, *, head: bool = False) -> Response:
    content = dumps(body).encode("utf-8")
    headers = {"Content-Crs": f"<{out_crs}>", "ETag": f'W/"{version}"'}
    if head:  # the headers a GET would send, without its body
        return Response(None, media_type=GEOJSON, headers={**headers, "Content-Length": str(len(content))})
    return Response(content, media_type=GEOJSON, headers=headers)


def _html(request: Request, template: str, title: str, **context):
    settings = request.app.state.settings
    alternates = [{"href": str(request.url.remove_query_params("f").include_query_params(f="json")),
                   "title": "JSON"}]
    return page(template, title=title, service=settings.title, alternates=alternates,
                headers={"Vary": "Accept"}, **context)


def _queryables(store, c: Collection) -> dict[str, str]:
    """The properties of a collection a filter may name, with their kinds (all its columns)."""
    return store.columns(c.id)


def _list(text: str | None, parameter: str, available, *, signed: bool = False) -> list[str] | None:
    """A comma-separated list of properties, each one of ``available`` (``+``/``-`` allowed with ``signed``)."""
    if text is None:
        return None
    items = [part.strip() for part in text.split(",") if part.strip()]
    names = [item.lstrip("+-") if signed else item for item in items]
    unknown = [n for n in names if n not in available]
    if unknown or not items:
        raise Problem(400, "Bad Request", f"{parameter}: {unknown or text!r} not among the properties "
                      f"{sorted(available)}")
    return [item[1:] if item.startswith("+") else item for item in items] if signed else names
