"""Who answers for each grid (警网融合): ``GET /grids/{code}/team``.

Viewers (and higher roles) get the grid's team from the published roster
(:func:`gridgeo.roster.team`): each person's role (Chinese and English), name,
phone and the figures of every grid they serve (how many grids, households,
population, events, and events overdue now). The
public gets only what the office publishes (:func:`gridgeo.roster.public_team`:
the office's name and service number, ``GRIDGEO_TEAM_OFFICE`` and
``GRIDGEO_TEAM_PHONE``; by default nothing): never a name or a phone.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from api import derived
from api.auth import Principal, principal
from api.encode import records
from api.problems import Problem, responses
from gridgeo import roster as groster


def router() -> APIRouter:
    r = APIRouter(tags=["roster"], responses={**responses(404), **derived.PREPARING})

    @r.get("/grids/{code}/team", summary="A grid's team: names and phones for viewers, the office's published "
                                         "number for the public")
    def team(request: Request, code: Annotated[str, Path(max_length=64, description="A unit's code")],
             who: Principal = Depends(principal)):
        services = request.app.state.services
        figures = derived.figures(services)
        if code not in figures.index:
            raise Problem(404, "Not Found", f"没有编码为 {code!r} 的单元 — no unit with code {code!r}")
        settings = services.settings
        if not who.has("viewer"):
            return groster.public_team(code, office=settings.team_office, phone=settings.team_phone)
        placed = derived.placed_events(services)
        # overdue now: the indicators over one period (none without a dated event: no span to count in)
        dated = len(placed) - placed.attrs["undated"]
        overdue = derived.event_indicators(services, level=None, period=None) if dated else None
        members = groster.team(derived.roster(services), code, figures=figures, indicators=overdue)
        return {"code": code, "name": str(figures.at[code, "name"]), "members": records(members)}

    return r
