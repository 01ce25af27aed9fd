"""The plan endpoints for planners, and the planner's workbench page (``/plan``).

A planner (role ``planner``; the key's name is the author of every change)
redraws the grids of one unit (a village) by painting its road-bounded
blocks into grids. The page keeps the working state itself: which grid each
block is in (the *assignment*) and the names of its grids. Every edit sends
that state with the edit (block ids, grid codes, a split line), the service
applies it with :mod:`gridgeo.plan` and answers with the new state and its
figures; nothing is stored until the planner saves. So an edit costs one
relabelling of blocks cached per unit and data version, never a spatial
join, and a stale save that is refused loses nothing: the edits are still in
the page.

- ``GET /plans``, ``POST /plans`` (from the published grids or from
  :func:`gridgeo.plan.suggest_division`), ``GET /plans/{id}`` (the blocks,
  once, with their sums; the assignment, grids, figures, the published
  outlines and the plan's history);
- ``POST /plans/{id}/edit``: reassign, add, merge, split, redraw, renumber;
  a refusal is a 422 problem with gridgeo's message in both languages;
- ``GET|POST /plans/{id}/diff``: against the published grids, with the
  from-to table of households (the saved plan, or the page's working state);
- ``POST /plans/{id}/save``: optimistic concurrency, every unit written
  states the plan revision the page was based on; a stale save is a 409
  naming the unit and who changed it;
- ``POST /plans/{id}/publish``: validation and the store's atomic publish,
  then every derived cache is dropped so the one map and its tiles show the
  new grids;
- ``GET|POST /plans/{id}/export?format=gpkg|geojson|csv``.

Blocks carry sums (households, population, units, addresses), never an
address.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

import gridgeo.plan
from api import derived
from api.routes import pages
from api.auth import Principal, require
from api.problems import Problem
from api.routes.analysis import _feature_collection
from api.routes.figures import _check_level, _records
from gridgeo.store import PublishError, StaleEditError

PLANNER = require("planner")

BLOCK_PROPERTIES = ["block_id", "addresses", "households", "population", "units"]
"""What a block tells the page: sums, never an address."""

IMPACT_COLUMNS = ["code", "name", "parent", "blocks", "addresses", "households", "population", "units", "stations",
                  "band", "off_band", "pieces", "contiguous", "area_m2", "polsby_popper", "has_station",
                  "share_15min"]
"""The figures per grid after every edit (:func:`gridgeo.plan.impact`)."""

DIFF_COLUMNS = ["code", "change", "related", "name_before", "name_after", "blocks_before", "blocks_after",
                "households_before", "households_after", "population_before", "population_after",
                "band_before", "band_after"]
MOVE_COLUMNS = ["from_code", "to_code", "blocks", "addresses", "households", "population", "units"]

EXPORTS = {
    "gpkg": ("application/geopackage+sqlite3", ".gpkg"),
    "geojson": ("application/geo+json", ".geojson"),
    "csv": ("text/csv; charset=utf-8", ".csv"),
}


# --- request bodies -------------------------------------------------------------------


class Working(BaseModel):
    """The page's working state: the grid of every block, and its grids' names."""

    assignment: dict[str, str] = Field(..., description="Grid code by block id (\"\" for an unassigned block), "
                                                        "for every block of the plan")
    names: dict[str, str] = Field(default_factory=dict, description="Grid name by code (names new grids)")


class NewPlan(BaseModel):
    name: str = Field(..., min_length=1, max_length=200)
    parent: str = Field(..., min_length=1, description="The unit whose grids are redrawn (a village)")
    level: str | None = Field(None, description="The level painted (default: the scheme's main level, grid2)")
    start: Literal["published", "suggested"] = Field(
        "published", description="Start from the published grids, or from gridgeo.plan.suggest_division of them")
    description: str = ""


class Edit(Working):
    op: Literal["reassign", "add", "merge", "split", "redraw", "renumber"]
    blocks: list[str] = Field(default_factory=list, description="reassign, add: the block ids")
    to: str | None = Field(None, description="reassign: the grid that takes the blocks; split, redraw: the grid "
                                             "cut or redrawn; merge: the grid that keeps its code; renumber: "
                                             "only the grids of this parent")
    codes: list[str] = Field(default_factory=list, description="merge: the grids joined")
    line: dict | None = Field(None, description="split: a GeoJSON LineString across the grid, lon/lat")
    polygon: dict | None = Field(None, description="redraw: a GeoJSON Polygon, the grid's new outline")
    name: str | None = Field(None, description="add: the new grid's name")


class Save(Working):
    base_revision: int = Field(..., description="The plan revision the page's edits are based on")
    base: dict[str, str] = Field(..., description="The assignment at that revision (what the page opened or "
                                                  "last saved): only the grids the edits changed are written")
    message: str = Field("", max_length=2000, description="What was done (the page's edit log)")


class Publish(BaseModel):
    message: str = Field("", max_length=2000)


# --- routes ----------------------------------------------------------------------------


def router() -> APIRouter:
    r = APIRouter(tags=["plans"])

    @r.get("/plan", summary="The planner's workbench", include_in_schema=False)
    def workbench():
        return pages._page("plan.html")

    @r.get("/plans", summary="The plans, with their authors, status, parent and revision")
    def plans(request: Request, status: Literal["draft", "published", "abandoned"] | None = None,
              who: Principal = Depends(PLANNER)):
        services = request.app.state.services
        table = services.store.plans(status=status)
        return {"plans": [_summary(services, row) for row in table.to_dict("records")]}

    @r.post("/plans", status_code=201, summary="Start a plan of a unit's grids, from the published ones or "
                                               "from an automatic division")
    def create(body: NewPlan, request: Request, who: Principal = Depends(PLANNER)):
        services = request.app.state.services
        level = body.level or services.store.scheme.main_level
        _check_level(level, request)
        levels = _levels_from(services, body.parent, level)
        try:
            plan = services.store.create_plan(body.name, parent=body.parent, levels=levels, author=who.name,
                                              description=body.description)
        except ValueError as exc:
            raise Problem(422, "Unprocessable Content", str(exc)) from None
        try:
            state = _opened(services, plan.id)
            if body.start == "suggested":
                draft = gridgeo.plan.suggest_division(state)
                state = gridgeo.plan.save(draft, services.store, author=who.name, message=draft.log[-1]["message"])
                state = _opened(services, plan.id)
        except Exception:
            plan.abandon(author=who.name, message="could not be opened in the workbench")
            raise
        return JSONResponse(_plan_body(services, plan.id, state, blocks=True), status_code=201)

    @r.get("/plans/{plan_id}", summary="A plan as the workbench opens it: blocks, grids, figures, history")
    def plan(plan_id: int, request: Request, who: Principal = Depends(PLANNER)):
        services = request.app.state.services
        return JSONResponse(_plan_body(services, plan_id, _opened(services, plan_id), blocks=True))

    @r.post("/plans/{plan_id}/edit", summary="Apply one edit to the page's working state (nothing is stored)")
    def edit(plan_id: int, body: Edit, request: Request, who: Principal = Depends(PLANNER)):
        services = request.app.state.services
        state = _working(services, plan_id, body)
        after = _applied(state, body)
        entry = after.log[-1] if after is not state else None
        return JSONResponse({**_state_body(after), "log": entry})

    @r.get("/plans/{plan_id}/diff", summary="The saved plan against the published grids: changes, who moves")
    def saved_diff(plan_id: int, request: Request, who: Principal = Depends(PLANNER)):
        services = request.app.state.services
        return JSONResponse(_diff_body(services, plan_id, _opened(services, plan_id)))

    @r.post("/plans/{plan_id}/diff", summary="The page's working state against the published grids")
    def working_diff(plan_id: int, body: Working, request: Request, who: Principal = Depends(PLANNER)):
        services = request.app.state.services
        return JSONResponse(_diff_body(services, plan_id, _working(services, plan_id, body)))

    @r.post("/plans/{plan_id}/save", summary="Save the page's working state, refusing a stale save")
    def save(plan_id: int, body: Save, request: Request, who: Principal = Depends(PLANNER)):
        services = request.app.state.services
        now = _working(services, plan_id, body)
        then = _working(services, plan_id, Working(assignment=body.base, names=body.names))
        state = _based_on(now, then, plan_id, body.base_revision)
        try:
            gridgeo.plan.save(state, services.store, author=who.name,
                              message=body.message or "saved from the workbench")
        except StaleEditError as exc:
            raise Problem(409, "StaleEditError", str(exc), conflicts=exc.conflicts) from None
        return JSONResponse(_plan_body(services, plan_id, _opened(services, plan_id), blocks=False))

    @r.post("/plans/{plan_id}/publish", summary="Validate the saved plan and publish it atomically")
    def publish(plan_id: int, request: Request, body: Publish | None = None, who: Principal = Depends(PLANNER)):
        services = request.app.state.services
        plan = services.store.plan(plan_id)
        try:
            revision = plan.publish(author=who.name, message=body.message if body else "")
        except PublishError as exc:
            raise Problem(422, "PublishError", str(exc), errors=_problems(exc.report)) from None
        services.forget()  # figures, tiles and plan bases follow the new grids at once
        return {"plan_id": plan_id, "status": "published", "revision": revision, "data_version": services.version}

    @r.get("/plans/{plan_id}/export", summary="The saved plan as GeoPackage, GeoJSON or block-to-grid CSV")
    def saved_export(plan_id: int, request: Request, format: Literal["gpkg", "geojson", "csv"] = Query("gpkg"),
                     who: Principal = Depends(PLANNER)):
        return _download(_opened(request.app.state.services, plan_id), plan_id, format)

    @r.post("/plans/{plan_id}/export", summary="The page's working state as GeoPackage, GeoJSON or CSV")
    def working_export(plan_id: int, body: Working, request: Request,
                       format: Literal["gpkg", "geojson", "csv"] = Query("gpkg"), who: Principal = Depends(PLANNER)):
        return _download(_working(request.app.state.services, plan_id, body), plan_id, format)

    return r


# --- opening a plan --------------------------------------------------------------------


def _base(services, parent: str, levels: list[str]) -> gridgeo.plan.PlanState:
    """The published grids of ``parent`` as a plan state: its blocks, their sums and
    the grids they are in, built once per data version and shared by every plan
    of the unit. Edits may change only the plan's ``levels``."""
    def build():
        grids = derived.grids(services)
        inside = grids[grids["code"].str.startswith(parent)]
        inside = inside.drop(columns=[c for c in ("revision", "author") if c in inside.columns])
        box = inside.loc[inside["code"] == parent].total_bounds
        return gridgeo.plan.start(
            inside, parent, level=_painted(levels, services.store.scheme), editable=levels,
            name=f"the published grids of {parent}", scheme=services.store.scheme,
            roads=_clipped(derived.layer(services, "roads"), box),
            addresses=_clipped(derived.layer(services, "addresses"), box),
            stations=_clipped(derived.layer(services, "stations"), box),
            coverage=_clipped(derived.nearest(services), box))
    return services.derived(f"plan:base:{parent}:{','.join(levels)}", build)


def _opened(services, plan_id: int) -> gridgeo.plan.PlanState:
    """The store's plan laid on the blocks of its unit (``attrs["store"]`` says its revision)."""
    info = _info(services, plan_id)
    base = _base(services, info["parent"], info["levels"])
    box = base.units.total_bounds
    return gridgeo.plan.from_store(services.store, plan_id, level=base.level, blocks=base.blocks.drop(columns="grid"),
                                   stations=_clipped(derived.layer(services, "stations"), box),
                                   coverage=_clipped(derived.nearest(services), box))


def _working(services, plan_id: int, body: Working) -> gridgeo.plan.PlanState:
    """The page's working state on the plan's blocks; refused when it does not fit them."""
    info = _info(services, plan_id)
    base = _base(services, info["parent"], info["levels"])
    table = pd.DataFrame({"block_id": list(body.assignment), "grid": list(body.assignment.values())}, dtype="str")
    table["grid_name"] = table["grid"].map(body.names).fillna("")
    state = gridgeo.plan.read_csv(base, table)
    report = state.attrs["import"]
    wrong = {k: report[k][:5] for k in ("unknown_blocks", "missing_blocks", "bad_codes") if len(report[k])}
    if wrong:
        raise Problem(422, "Unprocessable Content",
                      f"the assignment sent does not fit the blocks of plan {plan_id} ({wrong}): every block of "
                      "the plan needs one grid of its level. Reload the plan (GET /plans/{id}); the published "
                      "grids may have changed since the page opened it", **wrong)
    return state


def _info(services, plan_id: int) -> dict:
    info = services.store.plan(plan_id).info
    if not info["parent"]:
        raise Problem(422, "Unprocessable Content",
                      f"plan {plan_id} redraws the whole city: the workbench opens plans of one unit (a village)")
    return info


def _levels_from(services, parent: str, level: str) -> list[str]:
    """The level painted and the levels below it present in the parent (recoded when their block moves)."""
    grids = derived.grids(services)
    present = set(grids.loc[grids["code"].str.startswith(parent), "level"])
    names = services.store.scheme.names
    return [lv for lv in names[names.index(level):] if lv == level or lv in present]


def _painted(levels: list[str], scheme) -> str:
    """The level a plan paints: its deepest full level (as :func:`gridgeo.plan.from_store` opens it)."""
    full = [lv.name for lv in scheme.levels if lv.full and lv.name in levels]
    return full[-1] if full else levels[-1]


def _clipped(frame, box):
    """The rows of a layer touching a box (None stays None)."""
    if frame is None or frame.empty:
        return None if frame is None else frame
    x0, y0, x1, y1 = box
    return frame.cx[x0:x1, y0:y1]


# --- edits ---------------------------------------------------------------------------------


def _applied(state, body: Edit) -> gridgeo.plan.PlanState:
    """The edit applied with gridgeo; its refusal as a 422 problem in both languages."""
    verbs = {
        "reassign": lambda: gridgeo.plan.reassign(state, body.blocks, _needed(body.to, "to", body.op)),
        "add": lambda: gridgeo.plan.add(state, body.blocks, name=body.name or None),
        "merge": lambda: gridgeo.plan.merge(state, body.codes, into=body.to or None),
        "split": lambda: gridgeo.plan.split(state, _needed(body.to, "to", body.op),
                                            _shape(body.line, ("LineString", "MultiLineString"), "line")),
        "redraw": lambda: gridgeo.plan.redraw(state, _needed(body.to, "to", body.op),
                                              _shape(body.polygon, ("Polygon", "MultiPolygon"), "polygon")),
        "renumber": lambda: gridgeo.plan.renumber(state, body.to or None),
    }
    try:
        return verbs[body.op]()
    except gridgeo.plan.PlanError as exc:
        raise Problem(422, "PlanError", exc.message_en, **exc.to_dict()) from None
    except ValueError as exc:
        raise Problem(422, "Unprocessable Content", str(exc)) from None


def _needed(value, name: str, op: str):
    if not value:
        raise Problem(422, "Unprocessable Content", f"{op} needs {name!r}: the code of the grid it acts on")
    return value


def _shape(geojson: dict | None, kinds: tuple, name: str):
    if not geojson or geojson.get("type") not in kinds:
        raise Problem(422, "Unprocessable Content",
                      f"{name!r} should be a GeoJSON {' or '.join(kinds)} in longitude/latitude, "
                      f"got {None if not geojson else geojson.get('type')!r}")
    try:
        geometry = shapely.from_geojson(json.dumps(geojson))
    except shapely.errors.GEOSException as exc:
        raise Problem(422, "Unprocessable Content", f"{name!r} is not valid GeoJSON: {exc}") from None
    return geometry


def _based_on(now, then, plan_id: int, revision: int):
    """``now`` ready for :func:`gridgeo.plan.save`: based on ``then``, the plan at ``revision``,
    so that every unit it writes or removes states that revision."""
    grids = then.to_grids()
    grids = grids[grids["level"].isin(then.editable)].reset_index(drop=True)
    record = {"plan_id": int(plan_id), "revision": int(revision),
              "units": {code: int(revision) for code in grids["code"]}, "base": grids}
    return dataclasses.replace(now, attrs={**now.attrs, "store": record})


# --- answers ---------------------------------------------------------------------------------


def _state_body(state) -> dict:
    """What the page redraws after an edit: the assignment, the grids (with where
    their names go, [lat, lon]) and their figures."""
    from gridgeo.maps import label_points

    units = _records(pd.DataFrame(state.units[["code", "name", "parent"]]))
    points = label_points(state.units, scheme=state.scheme).geometry
    for unit, y, x in zip(units, points.y, points.x):
        unit["label"] = [round(float(y), 6), round(float(x), 6)]
    return {
        "assignment": state.assignment.to_dict(),
        "units": units,
        "grids": _feature_collection(state.units, ["code", "name"]),
        "impact": _impact(state),
    }


def _impact(state) -> dict:
    table = gridgeo.plan.impact(state)
    return {"grids": _records(pd.DataFrame(table[[c for c in IMPACT_COLUMNS if c in table.columns]])),
            "summary": _plain(table.attrs["summary"])}


def _plan_body(services, plan_id: int, state, *, blocks: bool) -> dict:
    info = services.store.plan(plan_id).info
    base = _base(services, info["parent"], info["levels"])
    body = {
        "plan": _summary(services, info),
        "level": state.level,
        "band": list(gridgeo.plan.DEFAULT_BAND),
        "revision": state.attrs["store"]["revision"],
        **_state_body(state),
        "published": _feature_collection(base.units, ["code", "name"]),
        "history": _records(services.store.plan(plan_id).history().assign(
            at=lambda h: h["at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))),
    }
    if blocks:
        body["blocks"] = _feature_collection(base.blocks, BLOCK_PROPERTIES)
    return body


def _summary(services, info: dict) -> dict:
    """One plan as the list shows it."""
    names = derived.grids(services).set_index("code")["name"]
    levels = info["levels"].split(",") if isinstance(info["levels"], str) else list(info["levels"])
    authors = services.store.plan(info["plan_id"]).history()["author"].unique().tolist()
    return {
        "id": int(info["plan_id"]), "name": info["name"], "parent": info["parent"],
        "parent_name": names.get(info["parent"], ""), "levels": levels, "status": info["status"],
        "author": info["author"], "authors": authors, "description": info["description"],
        "revision": int(info["revision"]), "base_revision": int(info["base_revision"]),
        "created_at": _when(info["created_at"]), "updated_at": _when(info["updated_at"]),
    }


def _when(value) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else ""


def _diff_body(services, plan_id: int, state) -> dict:
    info = _info(services, plan_id)
    published = _base(services, info["parent"], info["levels"])
    d = gridgeo.plan.diff(published, state)
    return {
        "summary": _plain(d.summary),
        "units": _records(pd.DataFrame(d.units[[c for c in DIFF_COLUMNS if c in d.units.columns]])),
        "moves": _feature_collection(d.moves, [c for c in MOVE_COLUMNS if c in d.moves.columns]),
    }


def _problems(report) -> list[dict]:
    errors = report[report["severity"] == "error"] if len(report) else report
    keep = [c for c in ("code", "level", "kind", "severity", "message_zh", "message_en") if c in errors.columns]
    return _records(pd.DataFrame(errors[keep]).reset_index(drop=True))


def _download(state, plan_id: int, format: str) -> Response:
    media, suffix = EXPORTS[format]
    name = f"plan-{plan_id}-{state.parent}{suffix}"
    if format == "csv":
        content = gridgeo.plan.to_csv(state).to_csv(index=False).encode("utf-8-sig")
    else:
        with tempfile.TemporaryDirectory(prefix="gridgeo-export-") as folder:
            content = Path(gridgeo.plan.export(state, Path(folder) / name)).read_bytes()
    return Response(content, media_type=media,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


def _plain(value):
    """JSON-ready: tuples to lists, numpy scalars to Python, NaN to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
