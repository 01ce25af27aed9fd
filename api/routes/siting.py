"""Where the next stations go, for planners: :mod:`gridgeo.siting` over HTTP.

- ``POST /siting/propose``: ``k`` new sites by maximal coverage (or the fewest
  that bring every household within the radius), the existing stations kept,
  in one unit (a town at most) or a box; the sites, the households gained per
  unit of a level, and the totals before and after.
- ``POST /siting/evaluate``: the same figures for any sites given as lon/lat
  (a proposal whose site was moved by hand), without solving.

Planner role or higher; a scoped planner proposes inside their own units.
Only aggregates go out (households and addresses per unit), never an address.
The work is bounded: at most :data:`MAX_SITES` sites, a scope of one town (or
a box of at most :data:`MAX_BOX_DEG` degrees a side), and HiGHS stops after
``GRIDGEO_SITING_TIME_S`` seconds with the best answer found (which then says
it is not proven optimal).
"""

from __future__ import annotations

from typing import Annotated, Literal

import geopandas as gpd
import numpy as np
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

import gridgeo
from api import derived
from api.auth import Principal, require
from api.encode import feature_collection, plain, records
from api.problems import Problem, responses
from gridgeo import coverage, siting
from gridgeo.review import covers

MAX_SITES = 20
"""The most sites a request proposes or evaluates."""

MAX_BOX_DEG = 0.25
"""The widest box (degrees, each side; about 25 km): a town or two, not a city."""

PLANNER = require("planner")
UNIT_COLUMNS = ["code", "name", "parent", "addresses", "households", "addresses_before", "addresses_after",
                "addresses_gained", "households_before", "households_after", "households_gained", "share_before",
                "share_after"]

Coordinate = Annotated[float, Field(allow_inf_nan=False)]
Pair = Annotated[list[Coordinate], Field(min_length=2, max_length=2)]


class Ground(BaseModel):
    """Where, how far and at which level: shared by both requests."""

    unit: str | None = Field(None, min_length=1, max_length=40, pattern=r"^\d+$",
                             description="The scope: a unit's code (a town at most). Give unit or bbox.",
                             examples=["350582106"])
    bbox: list[Coordinate] | None = Field(None, min_length=4, max_length=4,
                                          description="The scope: [west, south, east, north] in degrees, at most "
                                                      f"{MAX_BOX_DEG}° a side. Give unit or bbox.")
    minutes: float | None = Field(None, gt=0, le=60, description="Walking minutes: the life circles of GB 50180 (5, 10, 15 = 300, 500, "
                                                                 "1,000 m, as the coverage figures), other minutes at 4 km/h. "
                                                                 "Give minutes or radius_m (default 15 minutes).")
    radius_m: float | None = Field(None, gt=0, le=4000, description="Walking distance in metres along the roads")
    level: str = Field("grid2", min_length=1, max_length=40,
                       description="The level of the figures per unit (the scope's level or below)")

    def radius(self) -> float:
        if self.radius_m is not None:
            return float(self.radius_m)
        return coverage.circle_metres(float(self.minutes or 15))


class Propose(Ground):
    """Propose new sites."""

    k: int = Field(3, ge=1, le=MAX_SITES, description="How many new sites (method maximal)")
    method: Literal["maximal", "cover"] = Field(
        "maximal", description="maximal: the k sites bringing the most households within the radius; cover: the "
                               f"fewest sites bringing every household within it (at most {MAX_SITES})")


class Evaluate(Ground):
    """Judge given sites."""

    sites: list[Pair] = Field(..., max_length=MAX_SITES, description="[[lon, lat], ...] WGS84 (longitude first)",
                              examples=[[[118.47, 24.80], [118.45, 24.78]]])
    ids: list[Annotated[str, Field(min_length=1, max_length=60)]] | None = Field(
        None, max_length=MAX_SITES, description="One id per site, echoed back (default S1, S2 ...)")


def router() -> APIRouter:
    r = APIRouter(tags=["siting"], responses={**derived.PREPARING, **responses(404, 422)})

    @r.post("/siting/propose", summary="Propose new station sites, with the households gained per unit")
    def propose(body: Propose, request: Request, who: Principal = Depends(PLANNER)):
        """The new sites by walking distance along the roads (``gridgeo.siting.maximal_coverage``, or
        ``set_covering`` for ``method=cover``), the existing stations kept, candidates at the road
        junctions inside the scope. Answers the sites (GeoJSON, lon/lat), ``units`` (households and
        addresses within the radius per unit of ``level``: before, after, gained), ``totals``, and
        whether the answer is feasible and proven optimal."""
        services, where = _ground(request, body, who)
        _, stations, network, _ = _inputs(services)
        candidates = siting.candidate_sites(network, within=where.area)
        if candidates.empty:
            raise Problem(422, "Unprocessable Content", "范围内没有道路交叉口可作候选站点 — no road junction inside "
                                                        "the scope to propose as a site: choose a larger one")
        options = dict(radius_m=body.radius(), candidates=candidates, units=where.units, level=body.level,
                       assignment=where.assignment, time_limit_s=services.settings.siting_time_s)
        if body.method == "maximal":
            answer = siting.maximal_coverage(where.addresses, stations, network, k=body.k, **options)
        else:
            answer = siting.set_covering(where.addresses, stations, network, **options)
            if len(answer.sites) > MAX_SITES:
                raise Problem(422, "Unprocessable Content",
                              f"覆盖全部住户需要 {len(answer.sites)} 个新站点，超过上限 {MAX_SITES}：请缩小范围或加大半径 — "
                              f"covering every household needs {len(answer.sites)} new sites, more than "
                              f"{MAX_SITES}: choose a smaller scope or a larger radius")
        return _answer(answer, body)

    @r.post("/siting/evaluate", summary="The households gained per unit for given sites (a moved proposal)")
    def evaluate(body: Evaluate, request: Request, who: Principal = Depends(PLANNER)):
        """``gridgeo.siting.evaluate``: the figures of ``propose`` for any sites, without solving, so a
        site moved on the map is judged by the same rule as the ones proposed."""
        if body.ids is not None and len(body.ids) != len(body.sites):
            raise Problem(422, "Unprocessable Content", f"{len(body.ids)} 个编号对应 {len(body.sites)} 个站点：每个"
                          f"站点一个编号，或不给编号 — {len(body.ids)} ids for {len(body.sites)} sites: give one id "
                          "per site, or none")
        if body.ids is not None and len(set(body.ids)) != len(body.ids):
            raise Problem(422, "Unprocessable Content", "站点编号重复 — the site ids repeat: give each its own")
        services, where = _ground(request, body, who)
        _, stations, network, _ = _inputs(services)
        xy = np.array(body.sites, dtype=float).reshape(-1, 2)
        if len(xy) and not ((np.abs(xy[:, 0]) <= 180).all() and (np.abs(xy[:, 1]) <= 90).all()):
            raise Problem(422, "Unprocessable Content", "站点坐标须为经度 [-180, 180]、纬度 [-90, 90] — a site's "
                                                        "lon/lat is out of range: give [longitude, latitude]")
        far = _far_from(xy, where.area)
        if far:
            raise Problem(422, "Unprocessable Content",
                          f"第 {far[0] + 1} 个站点离范围超过 {MAX_BOX_DEG}° — site {far[0] + 1} is more than "
                          f"{MAX_BOX_DEG}° from the scope: place the sites in or near it")
        ids = body.ids or [f"S{i + 1}" for i in range(len(xy))]
        sites = gridgeo.crs.to_storage(gpd.GeoDataFrame({"site_id": ids}, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
                                                        crs="EPSG:4326"), name="sites")
        answer = siting.evaluate(where.addresses, stations, network, sites, radius_m=body.radius(),
                                 units=where.units, level=body.level, assignment=where.assignment)
        return _answer(answer, body)

    return r


def _inputs(services):
    made = derived.siting_inputs(services)
    if made is None:
        raise Problem(404, "Not Found", "选址需要地址、站点和道路数据 — siting needs addresses, stations and roads "
                                        "in the store")
    return made


def _ground(request: Request, body: Ground, who: Principal):
    """The scope of a request, checked against the caller's scopes and the bounds."""
    services = request.app.state.services
    if (body.unit is None) == (body.bbox is None):  # rules JSON Schema cannot state: 422, not 400
        raise Problem(422, "Unprocessable Content", "请给出范围：单元编码（unit）或经纬度框（bbox），二者之一 — give the "
                                                    "scope as unit (a code) or as bbox, one of them")
    if body.minutes is not None and body.radius_m is not None:
        raise Problem(422, "Unprocessable Content", "步行分钟（minutes）与距离（radius_m）只给一个 — give minutes or "
                                                    "radius_m, not both")
    units = derived.grids(services)
    scheme = services.store.scheme
    scopes = () if who.role == "admin" else tuple(who.scopes or ())
    if body.level not in set(units["level"]):
        raise Problem(422, "Unprocessable Content", f"没有层级 {body.level!r} — no level {body.level!r}: use one of "
                                                    f"{[lv for lv in scheme.names if lv in set(units['level'])]}")
    if body.unit is not None:
        row = units[units["code"] == body.unit]
        if row.empty:
            raise Problem(404, "Not Found", f"没有编码为 {body.unit} 的单元 — no unit has the code {body.unit}")
        names = list(scheme.names)
        if "town" in names and names.index(row["level"].iloc[0]) < names.index("town"):
            raise Problem(422, "Unprocessable Content", "选址范围最大为一个镇街 — the scope is one town at most: "
                                                        "choose a town, a village or a grid")
        if not covers(scopes, body.unit, scheme):
            raise Problem(403, "Forbidden", f"单元 {body.unit} 不在您的管辖范围内 — unit {body.unit} is outside "
                                            f"your scopes {list(scopes)}")
    else:
        west, south, east, north = body.bbox
        if not (west < east and south < north):
            raise Problem(422, "Unprocessable Content", "经纬度框须西 < 东、南 < 北 — bbox must be west < east and "
                                                        "south < north")
        if east - west > MAX_BOX_DEG or north - south > MAX_BOX_DEG:
            raise Problem(422, "Unprocessable Content", f"经纬度框每边最多 {MAX_BOX_DEG}° — the box is at most "
                                                        f"{MAX_BOX_DEG}° a side (a town or two): choose a smaller one")
        if scopes:
            raise Problem(403, "Forbidden", "有管辖范围的密钥请按单元选址 — a key with scopes proposes by unit "
                                            f"(one of {list(scopes)}), not by box")
    addresses, _, _, assignment = _inputs(services)
    try:
        where = siting.scope(addresses, units, unit=body.unit, bbox=body.bbox, level=body.level,
                             assignment=assignment, index=derived.index(services))
    except ValueError as exc:
        raise Problem(422, "Unprocessable Content", str(exc)) from None
    return services, where


def _far_from(xy, area) -> list[int]:
    import shapely

    if not len(xy):
        return []
    gap = shapely.distance(area, shapely.points(xy))
    return np.flatnonzero(gap > MAX_BOX_DEG).tolist()


def _answer(answer: siting.Siting, body: Ground) -> dict:
    sites = answer.sites.to_crs("EPSG:4326")
    return {
        "method": getattr(body, "method", "evaluate"),
        "radius_m": body.radius(),
        "level": body.level,
        "feasible": answer.feasible,
        "optimal": answer.details.get("optimal"),
        "message": answer.message,
        "sites": feature_collection(sites, ["site_id", "households_new", "addresses_new"]),
        "units": records(answer.per_unit[UNIT_COLUMNS]),
        "totals": plain(answer.totals),
    }
