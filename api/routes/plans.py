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
- ``POST /plans/{id}/edit``: reassign, add, merge, split, redraw, renumber, rename;
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

from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from api.auth import Principal, require
from api.dependencies import PlanId
from api.workbench import Workbench

PLANNER = require("planner")


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
    op: Literal["reassign", "add", "merge", "split", "redraw", "renumber", "rename"]
    blocks: list[str] = Field(default_factory=list, description="reassign, add: the block ids")
    to: str | None = Field(None, description="reassign: the grid that takes the blocks; split, redraw, rename: "
                                             "the grid cut, redrawn or renamed; merge: the grid that keeps its "
                                             "code; renumber: only the grids of this parent")
    codes: list[str] = Field(default_factory=list, description="merge: the grids joined")
    line: dict | None = Field(None, description="split: a GeoJSON LineString across the grid, lon/lat")
    polygon: dict | None = Field(None, description="redraw: a GeoJSON Polygon, the grid's new outline")
    name: str | None = Field(None, description="add: the new grid's name; rename: the grid's new name")


class Save(Working):
    base_revision: int = Field(..., description="The plan revision the page's edits are based on")
    base: dict[str, str] = Field(..., description="The assignment at that revision (what the page opened or "
                                                  "last saved): only the grids the edits changed are written")
    base_names: dict[str, str] | None = Field(None, description="The grids' names at that revision (default: "
                                                                "the names the plan holds now)")
    message: str = Field("", max_length=2000, description="What was done (the page's edit log)")


class Publish(BaseModel):
    message: str = Field("", max_length=2000)


# --- routes ----------------------------------------------------------------------------


def router() -> APIRouter:
    r = APIRouter(tags=["plans"])

    def bench(request: Request) -> Workbench:
        return Workbench(request.app.state.services)

    @r.get("/plans", summary="The plans, with their authors, status, parent and revision")
    def plans(request: Request, status: Literal["draft", "published", "abandoned"] | None = None,
              who: Principal = Depends(PLANNER)):
        return {"plans": bench(request).plans(status)}

    @r.post("/plans", status_code=201, summary="Start a plan of a unit's grids, from the published ones or "
                                               "from an automatic division")
    def create(body: NewPlan, request: Request, who: Principal = Depends(PLANNER)):
        return JSONResponse(bench(request).create(name=body.name, parent=body.parent, level=body.level,
                                                  start=body.start, author=who.name, description=body.description),
                            status_code=201)

    @r.get("/plans/{plan_id}", summary="A plan as the workbench opens it: blocks, grids, figures, history")
    def plan(plan_id: PlanId, request: Request, who: Principal = Depends(PLANNER)):
        wb = bench(request)
        return JSONResponse(wb.body(plan_id, wb.opened(plan_id), blocks=True))

    @r.post("/plans/{plan_id}/edit", summary="Apply one edit to the page's working state (nothing is stored)")
    def edit(plan_id: PlanId, body: Edit, request: Request, who: Principal = Depends(PLANNER)):
        return JSONResponse(bench(request).edit(plan_id, body.assignment, body.names, body.op, blocks=body.blocks,
                                                to=body.to, codes=body.codes, line=body.line,
                                                polygon=body.polygon, name=body.name))

    @r.get("/plans/{plan_id}/diff", summary="The saved plan against the published grids: changes, who moves")
    def saved_diff(plan_id: PlanId, request: Request, who: Principal = Depends(PLANNER)):
        wb = bench(request)
        return JSONResponse(wb.diff(plan_id, wb.opened(plan_id)))

    @r.post("/plans/{plan_id}/diff", summary="The page's working state against the published grids")
    def working_diff(plan_id: PlanId, body: Working, request: Request, who: Principal = Depends(PLANNER)):
        wb = bench(request)
        return JSONResponse(wb.diff(plan_id, wb.working(plan_id, body.assignment, body.names)))

    @r.post("/plans/{plan_id}/save", summary="Save the page's working state, refusing a stale save")
    def save(plan_id: PlanId, body: Save, request: Request, who: Principal = Depends(PLANNER)):
        return JSONResponse(bench(request).save(plan_id, assignment=body.assignment, names=body.names,
                                                base=body.base, base_revision=body.base_revision,
                                                base_names=body.base_names, author=who.name,
                                                message=body.message))

    @r.post("/plans/{plan_id}/publish", summary="Validate the saved plan and publish it atomically")
    def publish(plan_id: PlanId, request: Request, body: Publish | None = None, who: Principal = Depends(PLANNER)):
        return bench(request).publish(plan_id, author=who.name, message=body.message if body else "")

    @r.get("/plans/{plan_id}/export", summary="The saved plan as GeoPackage, GeoJSON or block-to-grid CSV")
    def saved_export(plan_id: PlanId, request: Request, format: Literal["gpkg", "geojson", "csv"] = Query("gpkg"),
                     who: Principal = Depends(PLANNER)):
        wb = bench(request)
        return _download(*wb.download(wb.opened(plan_id), plan_id, format))

    @r.post("/plans/{plan_id}/export", summary="The page's working state as GeoPackage, GeoJSON or CSV")
    def working_export(plan_id: PlanId, body: Working, request: Request,
                       format: Literal["gpkg", "geojson", "csv"] = Query("gpkg"), who: Principal = Depends(PLANNER)):
        wb = bench(request)
        return _download(*wb.download(wb.working(plan_id, body.assignment, body.names), plan_id, format))

    return r


def _download(content: bytes, media: str, name: str) -> Response:
    return Response(content, media_type=media,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})
