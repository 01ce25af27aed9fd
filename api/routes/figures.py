"""Figures per unit (public aggregates), drill-down, search, class breaks, event heat.

Everything here is an aggregate over units or cells, so it is open to
anonymous callers: no address, event or person appears in any answer. For
them the minimum count applies (:mod:`gridgeo.disclosure`, ``GRIDGEO_MIN_COUNT``):
a figure that counts fewer than k addresses, households, people or events,
or would give one away by subtraction, is ``null`` with the unit's
``suppressed`` flag set, and every answer says ``min_count``; the event heat
map counts whole months (``GRIDGEO_HEAT_PERIOD``) on cells of at least
``GRIDGEO_HEAT_MIN_CELL`` metres, from blocks of at least k events. Callers
with a viewer key (or higher) see every figure (``min_count: null``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Query, Request

from api import derived
from api.auth import Principal, principal
from api.dependencies import days, event_categories, grid_level
from api.encode import records
from api.problems import Problem, responses
from gridgeo import disclosure, stats
from gridgeo.schema import EVENT_CATEGORIES, STATION_KINDS


NOT_FOUND = {**responses(404), **derived.PREPARING}
"""No such level or unit, and the derived data being prepared."""


def router() -> APIRouter:
    r = APIRouter(tags=["figures"])

    @r.get("/stats/unit/{code}", summary="One unit: figures, parent chain (breadcrumbs) and children",
           responses=NOT_FOUND)
    def unit(code: str, request: Request, who: Principal = Depends(principal)):
        services = request.app.state.services
        figures = derived.public_figures(services, authorised=who.has("viewer"))
        if code not in figures.index:
            raise Problem(404, "Not Found", f"没有编码为 {code!r} 的单元 — no unit with code {code!r}")
        scheme = services.store.scheme
        level = figures.at[code, "level"]
        chain = [c for c in scheme.chain(code)[:-1] if c in figures.index]
        children = derived.children(services, code, authorised=who.has("viewer"))
        bounds = derived.unit_bounds(services)[code]
        return {
            "code": code,
            "level": level,
            "level_label": scheme.level(level).label,
            "bbox": [round(v, 7) for v in bounds],
            "figures": records(figures.loc[[code]])[0],
            "chain": [{"code": c, "name": figures.at[c, "name"], "level": figures.at[c, "level"]} for c in chain],
            "children": records(children),
            "child_level": scheme.child_level(level),
            "min_count": figures.attrs["min_count"],
        }

    @r.get("/stats/{level}", summary="Figures of every unit of a level", responses=NOT_FOUND)
    def level_figures(request: Request, level: str = Depends(grid_level),
                      parent: Annotated[str | None, Query(description="Only the children of this unit")] = None,
                      who: Principal = Depends(principal)):
        figures = derived.public_figures(request.app.state.services, authorised=who.has("viewer"))
        chosen = figures[figures["level"] == level]
        if parent:
            chosen = chosen[chosen["parent"] == parent]
        return {"level": level, "count": len(chosen), "min_count": figures.attrs["min_count"],
                "suppressed": int(chosen["suppressed"].sum()), "units": records(chosen)}

    @r.get("/stats/{level}/breaks", summary="Class breaks of a figure (mapclassify), for a choropleth",
           responses=NOT_FOUND)
    def breaks(request: Request, level: str = Depends(grid_level),
               field: Annotated[str, Query(description="A numeric figure, e.g. households",
                                           json_schema_extra={"enum": derived.CLASSED_FIGURES})] = "households",
               k: Annotated[int, Query(ge=2, le=9)] = 5,
               scheme: Literal["quantiles", "natural_breaks", "fisher_jenks", "equal_interval"] = "quantiles",
               who: Principal = Depends(principal)):
        from gridgeo import maps

        if field not in derived.CLASSED_FIGURES:
            raise Problem(400, "Bad Request", f"field {field!r} 不是数值指标 — is not a numeric figure: use one of "
                          f"{derived.CLASSED_FIGURES}")
        figures = derived.public_figures(request.app.state.services, authorised=who.has("viewer"))
        if field not in figures.columns:  # coverage shares need stations and addresses in the store
            raise Problem(404, "Not Found", f"本库没有指标 {field!r} — the store's data gives no figure {field!r}: "
                          f"it has {[c for c in derived.CLASSED_FIGURES if c in figures.columns]}")
        # suppressed figures are left out: breaks come from published values only
        values = pd.to_numeric(figures.loc[figures["level"] == level, field], errors="coerce").dropna()
        values = values[np.isfinite(values.to_numpy(dtype=float))]
        if values.empty:
            return {"level": level, "field": field, "scheme": scheme, "bins": [], "counts": []}
        # mapclassify's classes, computed as it does without importing it but for natural breaks (gridgeo.maps)
        bins, counts = maps.breaks(values.to_numpy(dtype=float), scheme=scheme, k=k)
        return {"level": level, "field": field, "scheme": scheme, "min": float(values.min()),
                "bins": [float(b) for b in bins], "counts": [int(c) for c in counts]}

    @r.get("/stats/{level}/balance", summary="How even the units of a level are (households)",
           responses=NOT_FOUND)
    def level_balance(request: Request, level: str = Depends(grid_level), who: Principal = Depends(principal)):
        services = request.app.state.services
        if who.has("viewer"):
            f, k = derived.figures(services), None
        else:  # over the units whose households are published: every value is theirs, nothing more
            public = derived.public_figures(services)
            shown = public[public["households"].notna()]
            f = shown.astype({c: "float64" for c in shown.columns
                              if pd.api.types.is_numeric_dtype(shown[c]) and not pd.api.types.is_bool_dtype(shown[c])})
            k = public.attrs["min_count"]
        table = stats.balance(f, scheme=services.store.scheme)
        if level not in table.index:
            raise Problem(404, "Not Found", f"层级 {level!r} 没有指标 — no figures for level {level!r}")
        return {**records(table.loc[[level]].reset_index())[0], "min_count": k}

    @r.get("/search", summary="Find units by code, name, pinyin or several words (gridgeo.search)",
           responses=derived.PREPARING)
    def search(request: Request, q: Annotated[str, Query(min_length=1, max_length=64)],
               limit: Annotated[int, Query(ge=1, le=100)] = 20):
        # names and codes only: a result carries no figure (the unit's page has them, under the same rule)
        found = derived.finder(request.app.state.services).find(q, limit=limit)
        return {"query": q, "results": [{"code": c, "name": n, "level": lv, "parent": p}
                                        for c, n, lv, p in zip(found["code"], found["name"], found["level"],
                                                               found["parent"])]}

    @r.get("/events/heat", summary="Event counts on a square grid of cells (an aggregate heat map)",
           responses={**derived.PREPARING, **responses(422)})
    def events_heat(request: Request, category: list[str] | None = Depends(event_categories),
                    span: tuple[date | None, date | None] = Depends(days),
                    cell: Annotated[float | None, Query(ge=50, le=2000, description=(
                        "Cell size in metres (default 100, or the smallest public cell, GRIDGEO_HEAT_MIN_CELL, "
                        "for anonymous callers)"))] = None,
                    who: Principal = Depends(principal)):
        start, end = span
        services = request.app.state.services
        settings = services.settings
        if who.has("viewer"):
            cell = 100.0 if cell is None else cell
            cells = derived.events_heat(services, category=category, start=start, end=end, cell_m=cell)
            return {"cell_m": cell, "cells": cells, "max": max((c[2] for c in cells), default=0),
                    "min_count": None, "period": "day", "withheld": {"groups": 0, "at_most": 0}}
        cell = settings.heat_min_cell if cell is None else cell
        if cell < settings.heat_min_cell:
            raise Problem(422, "Unprocessable Content",
                          f"公开的事件热力图格网至少 {settings.heat_min_cell:g} 米 / the public event heat map's "
                          f"cells are at least {settings.heat_min_cell:g} m (cell={cell:g}); a viewer key gives "
                          "smaller cells")
        try:
            disclosure.aligned_period(start, end, settings.heat_period)
        except disclosure.DisclosureError as exc:
            raise Problem(422, "Unprocessable Content", str(exc)) from None
        found = derived.public_heat(services, category=category, start=start, end=end, cell_m=cell)
        cells = [[float(a), float(b), int(n)] for a, b, n in zip(found["lat"], found["lon"], found["count"])]
        return {"cell_m": cell, "cells": cells, "max": max((c[2] for c in cells), default=0),
                "min_count": found.attrs["min_count"], "period": settings.heat_period,
                "withheld": {"groups": found.attrs["withheld_groups"], "at_most": found.attrs["withheld_at_most"]}}

    @r.get("/vocabulary", summary="Levels, station kinds and event categories with their labels")
    def vocabulary(request: Request):
        return {
            "levels": [{"name": lv.name, "label": lv.label, "label_en": lv.label_en, "full": lv.full}
                       for lv in request.app.state.services.store.scheme.levels],
            "station_kinds": {k: {"label": v[0], "label_en": v[1]} for k, v in STATION_KINDS.items()},
            "event_categories": {k: {"label": v[0], "label_en": v[1]} for k, v in EVENT_CATEGORIES.items()},
        }

    return r
