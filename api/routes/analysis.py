"""Coverage of stations and assignment of points, over HTTP.

``/coverage`` gives the walking-distance coverage per unit of a level and
the areas left out of a life circle (for anonymous callers under the minimum
count of :mod:`gridgeo.disclosure`: a unit's households reached, or not
reached, are ``null`` when they or a subtraction would count fewer than k,
and an area left out is shown only when it holds at least k addresses,
households and residents, or none); ``/coverage/areas`` the service areas
(isochrones) of the stations; ``POST /assign`` places a batch of points in
the published grids, in any coordinate system gridgeo knows.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

import gridgeo
from api import derived
from api.auth import Principal, principal
from api.dependencies import minutes as minutes_param
from api.dependencies import optional_level, station_kinds
from api.encode import dumps, feature_collection, records
from api.problems import Problem, responses
from api.services import Preparing
from gridgeo import disclosure


Coordinate = Annotated[float, Field(allow_inf_nan=False)]
Pair = Annotated[list[Coordinate], Field(min_length=2, max_length=2)]


class AssignRequest(BaseModel):
    """Points to place: ``[[lon, lat], ...]`` in ``crs``, with optional ids."""

    points: list[Pair] = Field(..., description="[[lon, lat], ...] (longitude first)",
                               examples=[[[118.47, 24.80], [118.45, 24.78]]])
    ids: list[str] | None = Field(None, description="One id per point, echoed back (as many as there are points)")
    crs: str = Field("wgs84", description="wgs84, cgcs2000, gcj02 (Amap, Tencent), bd09 (Baidu) or an EPSG code")
    tolerance_m: float = Field(0.0, ge=0, le=1000, description="Snap points up to this far outside to a unit")


def router() -> APIRouter:
    r = APIRouter(tags=["analysis"], responses=derived.PREPARING)  # every route reads the derived data

    @r.get("/coverage", summary="Walking-distance coverage per unit, and the areas left out",
           responses=responses(404))
    def coverage(request: Request, minutes: int = Depends(minutes_param), level: str = Depends(optional_level),
                 parent: Annotated[str | None, Query(description="Only the children of this unit")] = None,
                 who: Principal = Depends(principal)):
        services = request.app.state.services
        if derived.coverage_per_unit(services) is None:
            raise Problem(404, "Not Found", "coverage needs stations and addresses in the store")
        authorised = who.has("viewer")

        def build(kept):  # encoded once per version and parameters (kept within GRIDGEO_CACHE_MB)
            figures = derived.unit_figures(services, authorised=authorised)
            table = figures[figures["level"] == level]
            if parent:
                table = table[table["parent"] == parent]
            cols = ["name", "level", "parent", "households", f"households_{minutes}min",
                    f"share_{minutes}min", "stations", "has_station", "farthest_m", "suppressed"]
            units = records(pd.DataFrame(table[[c for c in cols if c in table.columns]]))
            areas = derived.uncovered(services, minutes)
            withheld = 0
            if areas is not None and not authorised:
                areas = disclosure.public_areas(areas, services.settings.min_count)
                withheld = areas.attrs["withheld"]
            return dumps({"minutes": minutes, "level": level, "min_count": figures.attrs["min_count"],
                          "units": units,
                          "uncovered": feature_collection(areas, ["addresses", "households", "population",
                                                                  "nearest_m"], raw=True),  # GEOS's text as it is
                          "uncovered_withheld": withheld}).encode()
        key = f"coverage:{minutes}:{level}:{parent or ''}:{'authorised' if authorised else 'public'}"
        return Response(services.derived(key, build), media_type="application/json")

    @r.get("/coverage/areas", summary="Service areas (isochrones) of the stations for a life circle",
           response_class=Response, responses={200: {"content": {"application/geo+json": {}}},
                                                304: {"description": "not modified"}, **responses(404)})
    def areas(request: Request, minutes: int = Depends(minutes_param),
              kind: list[str] | None = Depends(station_kinds)):
        services = request.app.state.services
        answer = derived.service_areas_body(services, minutes, kind)
        if answer is None and "service_areas" in services.kept.pending():
            raise Preparing(f"the service areas of data version {services.version} are being prepared "
                            "(minutes at city scale) / 服务范围正在计算，请稍候", retry_after=30)
        if answer is None:
            raise Problem(404, "Not Found", "service areas need stations and roads in the store")
        body, etag = answer
        headers = {"ETag": etag, "Cache-Control": "public, max-age=60, must-revalidate"}
        if etag in _tags(request.headers.get("if-none-match")):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/geo+json", headers=headers)

    @r.post("/assign", summary="Codes at every level for a batch of points", responses=responses(422))
    def assign(body: AssignRequest, request: Request):
        services = request.app.state.services
        limit = services.settings.max_assign
        if len(body.points) > limit:
            raise Problem(413, "Payload Too Large", f"at most {limit} points per request, got {len(body.points)}")
        if body.ids is not None and len(body.ids) != len(body.points):
            raise Problem(422, "Unprocessable Content", f"{len(body.ids)} 个编号对应 {len(body.points)} 个点：每点一个编号，"
                          f"或不给编号 — {len(body.ids)} ids for {len(body.points)} points: give one id per point, "
                          "or none")
        xy = np.array(body.points, dtype=float).reshape(-1, 2)
        frame = pd.DataFrame({"lon": xy[:, 0], "lat": xy[:, 1]})
        try:
            result = gridgeo.assign(frame, derived.index(services), crs=body.crs, lon="lon", lat="lat",
                                    tolerance_m=body.tolerance_m, name="request body")
        except gridgeo.crs.CRSError as exc:  # a name the document cannot list: any CRS PROJ knows is taken
            raise Problem(422, "Unprocessable Content", f"crs 不是 gridgeo 能转换的坐标系 — {exc}") from None
        levels = [lv for lv in services.store.scheme.names if lv in result.columns]
        out = []
        for i, row in enumerate(result.astype(object).where(result.notna(), None).to_dict("records")):
            item = {"id": body.ids[i] if body.ids else i, "status": row["status"]}
            item.update({lv: row[lv] for lv in levels})
            if row.get("reason"):
                item["reason"] = row["reason"]
            out.append(item)
        return {"count": len(out), "levels": levels, "results": out}

    return r


def _tags(header: str | None) -> list[str]:
    """The entity tags of an ``If-None-Match`` header (a weak one compares as its strong self)."""
    if not header:
        return []
    return [tag.strip().removeprefix("W/") for tag in header.split(",")]
