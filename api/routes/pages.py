"""The pages of the service and the files they load, all served from here.

Intranet deployments have no internet: Leaflet and its plugins come from the
npm registry at set-up (``make assets`` runs ``npm ci`` into
``api/static/node_modules``) and are served under ``/static/vendor/<package>/``;
the pages' own code is in ``api/static/app/``. Nothing is loaded from a CDN.

The one map (``/map``) reads the service's ordinary endpoints (vector tiles,
``/stats``, ``/coverage``, ``/events/heat``, ``/search``) plus three of its
own, here: ``/map/config.json`` (basemap, the levels, the whole city's
figures for the first breadcrumb), ``/map/labels/{level}.json`` (where names
are written) and ``/map/served/{minutes}.json`` (the ground a life circle
serves, one dissolved polygon instead of a thousand overlapping areas).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from api import derived
from api.dependencies import grid_level, path_minutes
from api.encode import dumps, feature_collection, plain
from api.problems import Problem, responses
from gridgeo import stats

STATIC = Path(__file__).resolve().parent.parent / "static"
APP = STATIC / "app"
NODE_MODULES = STATIC / "node_modules"

VENDOR = {
    "leaflet": "leaflet/dist",
    "leaflet.vectorgrid": "leaflet.vectorgrid/dist",
    "leaflet.heat": "leaflet.heat/dist",
    "leaflet-geoman": "@geoman-io/leaflet-geoman-free/dist",
    "echarts": "echarts/dist",
}
"""URL name -> the package folder served (only the built files, not the whole package)."""



def mount(app: FastAPI) -> None:
    """Serve the vendor packages and the pages' own files as static files."""
    for name, folder in VENDOR.items():
        app.mount(f"/static/vendor/{name}", StaticFiles(directory=NODE_MODULES / folder, check_dir=False),
                  name=f"vendor-{name}")
    app.mount("/static/app", StaticFiles(directory=APP, check_dir=False), name="app")


def router() -> APIRouter:
    r = APIRouter(tags=["pages"])

    @r.get("/map", summary="The one map (一张图): the leadership view", include_in_schema=False)
    def one_map():
        return _page("map.html")

    @r.get("/plan", summary="The planner's workbench", include_in_schema=False)
    def workbench():
        return _page("plan.html")

    @r.get("/map/config.json", summary="Settings of the map page: basemap, levels, the whole city",
           responses=derived.PREPARING)
    def map_config(request: Request):
        settings = request.app.state.settings
        basemap = None
        if settings.tianditu_key:
            basemap = {"kind": "tianditu", "key": settings.tianditu_key}
        elif settings.basemap:
            basemap = {"kind": "xyz", "url": settings.basemap, "attribution": settings.basemap_attribution}
        services = request.app.state.services
        data = services.derived("map:config", lambda kept: _data_config(services, kept))
        return JSONResponse({"basemap": basemap, "title": settings.title, **data})

    @r.get("/map/labels/{level}.json", summary="Where the map writes each unit's name: [[lat, lon, code, name, radius_m]]",
           responses={**responses(404), **derived.PREPARING})
    def labels(request: Request, level: str = Depends(grid_level)):
        return {"level": level, "labels": derived.labels(request.app.state.services, level)}

    @r.get("/map/served/{minutes}.json", summary="The ground a life circle serves (all stations, dissolved)",
           response_class=Response, responses={200: {"content": {"application/geo+json": {}}}, **responses(404), **derived.PREPARING})
    def served(request: Request, minutes: int = Depends(path_minutes)):
        services = request.app.state.services

        def build(kept):
            ground = kept.served(minutes)
            if ground is None:
                raise Problem(404, "Not Found", "服务范围需要站点和道路数据 — the ground served needs stations and "
                                    "roads in the store")
            return dumps(feature_collection(ground, ["circle", "stations"], raw=True))

        return Response(services.derived(f"map:served:{minutes}", build), media_type="application/geo+json")

    return r


def _page(name: str) -> FileResponse:
    missing = [n for n, folder in VENDOR.items() if not (NODE_MODULES / folder).is_dir()]
    if missing:
        raise Problem(503, "Service Unavailable",
                      f"the front-end packages {missing} are not installed: run `make assets` "
                      "(npm ci --prefix api/static) once at set-up")
    return FileResponse(APP / name, media_type="text/html; charset=utf-8")


def _data_config(services, kept) -> dict:
    """What the page needs to know of the data before its first tile (the page is public:
    its figures obey the minimum count, and it says what the heat map may show)."""
    figures = derived.public_figures(services)
    scheme = services.store.scheme
    levels = [lv for lv in scheme.levels if (figures["level"] == lv.name).any()]
    summary = kept.summary
    settings = services.settings
    root = None
    if levels:
        every = derived.public_figures(services, authorised=True)
        root = _root(every, levels[0].name, scheme, services.store.region)
        root["figures"] = _withheld(root["figures"], figures.attrs)
    return {
        "root": root,
        "min_count": settings.min_count,
        "heat": {"min_cell_m": settings.heat_min_cell, "period": settings.heat_period,
                 "min_count": settings.min_count},
        "main_level": scheme.main_level,
        "village_level": scheme.village_level,
        "levels": [{"name": lv.name, "label": lv.label, "label_en": lv.label_en, "full": lv.full,
                    "width": scheme.width(lv.name), "count": int((figures["level"] == lv.name).sum()),
                    "style": _style_of(scheme, lv)}
                   for lv in levels],
        "bounds": summary["bounds"],
        "events": summary["events"],
        "data_version": kept.version,
        "boundary_sets": services.store.boundary_sets(),  # other offices' areas: overlays (boundaries.js)
    }


def _style_of(scheme, level) -> str:
    """Which of the one map's level styles (style.json: town ... grid3) a level of
    any scheme is drawn with: its own when it has one, else by its place."""
    from gridgeo.schema import DEFAULT_SCHEME

    if level.name in DEFAULT_SCHEME.names:
        return level.name
    if scheme.index(level.name) == 0:
        return "town"
    if level.name == scheme.village_level:
        return "village"
    if level.name == scheme.main_level:
        return "grid2"
    return "grid1" if level.full else "grid3"


def _withheld(whole: dict, attrs: dict) -> dict:
    """The whole area's figures with those of a group the minimum count withholds there too
    (:func:`gridgeo.disclosure.public_figures` ``attrs["whole"]``) set to None."""
    from gridgeo.disclosure import GROUPS

    out = dict(whole)
    for group in GROUPS:
        if attrs.get("whole", {}).get(group.name):
            for column in (*group.counts, *group.rates):
                if column in out:
                    out[column] = None
    out["suppressed"] = any(attrs.get("whole", {}).values())
    return out


def _root(figures: pd.DataFrame, top: str, scheme, region: dict | None) -> dict:
    """The whole area above the top level (the city over its towns), its figures from gridgeo.stats."""
    towns = figures[figures["level"] == top]
    code = towns.index[0][: scheme.root_digits]
    name = region["name"] if region and region.get("code") == code else code
    return {"code": code, "name": name, "level": "city", "child_level": top,
            "figures": plain(stats.whole(figures, top), digits=4)}
