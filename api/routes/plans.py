"""The plan endpoints for planners and reviewers, and the workbench page (``/plan``).

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
  outlines and the plan's history; and its ``context``: the units around
  its parent, the level-1 fences it may not paint across with every
  block's fence, and the pairs of blocks sharing an edge, from
  :mod:`gridgeo.plan.context`);
- ``POST /plans/{id}/edit``: reassign, unassign (the eraser: into the holding pen, which a save
  refuses with a 422 naming the blocks), add, merge, split, redraw, renumber, rename;
  a refusal is a 422 problem with gridgeo's message in both languages;
- ``GET|POST /plans/{id}/diff``: against the published grids, with the
  from-to table of households (the saved plan, or the page's working state);
- ``POST /plans/{id}/save``: optimistic concurrency, every unit written
  states the plan revision the page was based on; a stale save is a 409
  naming the unit and who changed it;
- the review (:mod:`gridgeo.review` says who may take which step, on the
  plans inside their key's scopes; a refusal is a 403 problem naming the unit
  and the scope, a step from the wrong status a 409):
  ``POST /plans/{id}/submit`` and ``/withdraw`` (planner, ``{"message"}``),
  ``POST /plans/{id}/return`` (reviewer, ``{"comment"}``, required),
  ``GET /plans/{id}/report`` (the pre-publish report of
  :func:`gridgeo.plan.report`, with its ``version``),
  ``POST /plans/{id}/approve`` (reviewer) and ``POST /plans/{id}/publish``
  (reviewer, an approved plan; with ``GRIDGEO_SELF_PUBLISH`` the planner who
  created it), both ``{"acknowledge": <report version>, "message"}``: a
  report with errors is a 422, one with warnings not acknowledged a 409,
  both bodies carrying the ``report``. A publish validates and replaces the
  grids atomically, then every derived cache is dropped so the one map and
  its tiles show the new grids;
- ``GET /me``: the caller's name, role, scopes and whether self-publish is on;
- ``GET|POST /plans/{id}/export?format=gpkg|geojson|csv``.

Every plan answer carries its ``review`` (who submitted, returned with which
comment, approved) and ``can``: the steps the caller may take now.

Blocks carry sums (households, population, units, addresses), never an
address.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from api.auth import Principal, principal, require
from api.dependencies import PlanId, base_url
from api.problems import responses
from api.workbench import EXPORTS, Workbench
from gridgeo.store.plans import STATUSES

PLANNER = require("planner")
REFUSED = responses(404, 422)
"""A plan's answers: no such plan (or unit), or gridgeo.plan refuses (its reason in both languages)."""
CHANGE_REFUSED = responses(404, 409, 422)
"""... and a change made stale by someone else's, or a plan no longer a draft."""
CREATED = {201: {"headers": {"Location": {"description": "The new plan: /plans/{id}",
                                          "schema": {"type": "string"}}}}}
FILES = {200: {"content": {media: {"schema": {"type": "object"} if media == "application/geo+json" else
                                    {"type": "string", "format": "binary"}} for media, _ in EXPORTS.values()}}}
"""What an export answers: the file, of its format's media type (GeoJSON is a JSON object)."""


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
    op: Literal["reassign", "unassign", "add", "merge", "split", "redraw", "renumber", "rename"]
    blocks: list[str] = Field(default_factory=list, description="reassign, unassign (into the holding pen), add: "
                                                                "the block ids")
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


class Step(BaseModel):
    message: str = Field("", max_length=2000, description="A note for the plan's log")


class Return(BaseModel):
    comment: str = Field(..., min_length=1, max_length=2000, description="What to change (the planner sees it)")


class Acknowledged(Step):
    acknowledge: str | None = Field(None, max_length=64, description="The version of the pre-publish report "
                                                                     "read (needed when it has warnings)")


Publish = Acknowledged


# --- routes ----------------------------------------------------------------------------


def router() -> APIRouter:
    r = APIRouter(tags=["plans"])

    def bench(request: Request) -> Workbench:
        return Workbench(request.app.state.services)

    @r.get("/me", summary="Who the key is: name, role, the units it covers, whether self-publish is on")
    def me(request: Request, who: Principal = Depends(principal)):
        return bench(request).me(who)

    @r.get("/plans", summary="The plans, with their authors, status, review, parent, revision and what the "
                             "caller may do")
    def plans(request: Request, status: Literal[STATUSES] | None = None, who: Principal = Depends(PLANNER)):
        return {"plans": bench(request).plans(status, who)}

    @r.post("/plans", status_code=201, summary="Start a plan of a unit's grids, from the published ones or "
                                               "from an automatic division", responses={**CREATED, **REFUSED})
    def create(body: NewPlan, request: Request, who: Principal = Depends(PLANNER)):
        wb = bench(request)
        wb.allow(who, "create", parent=body.parent)
        made = wb.create(name=body.name, parent=body.parent, level=body.level, start=body.start,
                         author=who.name, description=body.description, who=who)
        return JSONResponse(made, status_code=201, headers={"Location": f"{base_url(request)}/plans/{made['plan']['id']}"})

    @r.get("/plans/{plan_id}", summary="A plan as the workbench opens it: blocks, grids, figures, history",
           responses=REFUSED)
    def plan(plan_id: PlanId, request: Request, who: Principal = Depends(PLANNER)):
        wb = bench(request)
        return JSONResponse(wb.body(plan_id, wb.opened(plan_id), blocks=True, who=who))

    @r.post("/plans/{plan_id}/edit", summary="Apply one edit to the page's working state (nothing is stored)",
            responses=REFUSED)
    def edit(plan_id: PlanId, body: Edit, request: Request, who: Principal = Depends(PLANNER)):
        wb = bench(request)
        wb.allow(who, "edit", plan_id)
        return JSONResponse(wb.edit(plan_id, body.assignment, body.names, body.op, blocks=body.blocks, to=body.to,
                                    codes=body.codes, line=body.line, polygon=body.polygon, name=body.name))

    @r.get("/plans/{plan_id}/diff", summary="The saved plan against the published grids: changes, who moves",
           responses=REFUSED)
    def saved_diff(plan_id: PlanId, request: Request, who: Principal = Depends(PLANNER)):
        wb = bench(request)
        return JSONResponse(wb.diff(plan_id, wb.opened(plan_id)))

    @r.post("/plans/{plan_id}/diff", summary="The page's working state against the published grids",
            responses=REFUSED)
    def working_diff(plan_id: PlanId, body: Working, request: Request, who: Principal = Depends(PLANNER)):
        wb = bench(request)
        return JSONResponse(wb.diff(plan_id, wb.working(plan_id, body.assignment, body.names)))

    @r.post("/plans/{plan_id}/save", summary="Save the page's working state, refusing a stale save",
            responses=CHANGE_REFUSED)
    def save(plan_id: PlanId, body: Save, request: Request, who: Principal = Depends(PLANNER)):
        wb = bench(request)
        wb.allow(who, "save", plan_id)
        return JSONResponse(wb.save(plan_id, assignment=body.assignment, names=body.names, base=body.base,
                                    base_revision=body.base_revision, base_names=body.base_names,
                                    author=who.name, message=body.message, who=who))

    @r.get("/plans/{plan_id}/report", summary="The saved plan's pre-publish report: errors, warnings, changes, "
                                              "the from-to table, and its version", responses=REFUSED)
    def report(plan_id: PlanId, request: Request, who: Principal = Depends(PLANNER)):
        return JSONResponse(bench(request).report(plan_id).to_dict())

    @r.post("/plans/{plan_id}/submit", summary="Hand a draft in for review", responses=CHANGE_REFUSED)
    def submit(plan_id: PlanId, request: Request, body: Step | None = None, who: Principal = Depends(PLANNER)):
        return bench(request).step(plan_id, "submit", who, message=body.message if body else "")

    @r.post("/plans/{plan_id}/withdraw", summary="Take one's submitted or approved plan back to draft", responses=CHANGE_REFUSED)
    def withdraw(plan_id: PlanId, request: Request, body: Step | None = None, who: Principal = Depends(PLANNER)):
        return bench(request).step(plan_id, "withdraw", who, message=body.message if body else "")

    @r.post("/plans/{plan_id}/return", summary="Return a submitted plan to draft with a comment (reviewer)", responses=CHANGE_REFUSED)
    def send_back(plan_id: PlanId, body: Return, request: Request, who: Principal = Depends(PLANNER)):
        return bench(request).step(plan_id, "return", who, message=body.comment)

    @r.post("/plans/{plan_id}/approve", summary="Approve a submitted plan after its pre-publish report (reviewer)", responses=CHANGE_REFUSED)
    def approve(plan_id: PlanId, request: Request, body: Acknowledged | None = None,
                who: Principal = Depends(PLANNER)):
        body = body or Acknowledged()
        return bench(request).step(plan_id, "approve", who, message=body.message, acknowledge=body.acknowledge)

    @r.post("/plans/{plan_id}/publish", summary="Publish an approved plan after its pre-publish report, "
                                                "atomically", responses=CHANGE_REFUSED)
    def publish(plan_id: PlanId, request: Request, body: Publish | None = None, who: Principal = Depends(PLANNER)):
        body = body or Publish()
        return bench(request).step(plan_id, "publish", who, message=body.message, acknowledge=body.acknowledge)

    @r.get("/plans/{plan_id}/export", summary="The saved plan as GeoPackage, GeoJSON or block-to-grid CSV",
           response_class=Response, responses={**FILES, **REFUSED})
    def saved_export(plan_id: PlanId, request: Request, format: Literal["gpkg", "geojson", "csv"] = Query("gpkg"),
                     who: Principal = Depends(PLANNER)):
        wb = bench(request)
        return _download(*wb.download(wb.opened(plan_id), plan_id, format))

    @r.post("/plans/{plan_id}/export", summary="The page's working state as GeoPackage, GeoJSON or CSV",
            response_class=Response, responses={**FILES, **REFUSED})
    def working_export(plan_id: PlanId, body: Working, request: Request,
                       format: Literal["gpkg", "geojson", "csv"] = Query("gpkg"), who: Principal = Depends(PLANNER)):
        wb = bench(request)
        return _download(*wb.download(wb.working(plan_id, body.assignment, body.names), plan_id, format))

    return r


def _download(content: bytes, media: str, name: str) -> Response:
    return Response(content, media_type=media,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})
