"""The administrator's endpoints (role ``admin``): the audit trail, and rollback.

- ``GET /admin/audit``: who changed what, and when, newest first: the store's
  trail (:meth:`gridgeo.store.Store.audit`) and the key changes logged beside
  the keys file (:func:`gridgeo.audit.trail`), filtered by ``since``, ``until``,
  ``author``, ``action`` (repeatable) and ``plan_id``, paged by ``limit`` and
  ``offset``.
- ``GET /admin/rollback?to=REV``: what a rollback to that revision would
  change (:meth:`~gridgeo.store.Store.rollback_preview`); nothing is written.
- ``POST /admin/rollback`` ``{"to": REV, "message": "...", "layers": [...],
  "version": V}``: the rollback (:meth:`~gridgeo.store.Store.rollback`), as
  one new revision by the caller; the answer names it and what it changed. A
  refusal is a 422 problem with the reason in both languages (and the
  validation errors); with ``version`` (the preview's), a change of the
  published data since is a 409. The one map follows the new data version as
  after a publish.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

import gridgeo.audit
from api.auth import Principal, require
from api.dependencies import MAX_ID
from api.encode import plain, records
from api.problems import Problem, responses

ADMIN = require("admin")


class Rollback(BaseModel):
    to: int = Field(..., ge=0, le=MAX_ID, description="The revision whose published data to restore")
    message: str = Field("", max_length=2000, description="Why (kept in the audit trail)")
    layers: list[str] | None = Field(None, min_length=1, description="Only these layers (grids, grid levels, "
                                                                     "stations, addresses, events, roads); default all")
    version: int | None = Field(None, ge=0, le=MAX_ID, description="The data version the preview showed: if the "
                                                                  "published data changed since, 409")


def router() -> APIRouter:
    r = APIRouter(tags=["admin"])

    @r.get("/admin/audit", summary="The audit trail: who changed what, and when (newest first)",
           responses=responses(400))
    def audit(request: Request,
              since: Annotated[datetime | None, Query(description="From this time (UTC without a zone)")] = None,
              until: Annotated[datetime | None, Query(description="Before this time")] = None,
              author: Annotated[str | None, Query(max_length=200)] = None,
              action: Annotated[list[str] | None, Query(description="Only these actions (repeatable)")] = None,
              plan_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
              limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
              offset: Annotated[int, Query(ge=0)] = 0,
              who: Principal = Depends(ADMIN)):
        services = request.app.state.services
        options = dict(since=since, until=until, author=author, action=action or None, plan_id=plan_id)
        problems = []
        try:
            trail = gridgeo.audit.trail(services.store, services.settings.keys_file, **options)
        except gridgeo.audit.KeysLogError as exc:  # the store's trail, and why not the keys' log
            problems.append(str(exc))
            trail = gridgeo.audit.trail(services.store, **options)
        except ValueError as exc:  # a time the store cannot compare
            raise Problem(400, "Bad Request", str(exc)) from None
        newest = trail.iloc[::-1]
        page = newest.iloc[offset:offset + limit].assign(at=lambda t: t["at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        body = {"entries": records(page, digits=None), "numberMatched": len(trail), "numberReturned": len(page)}
        if problems:
            body["problems"] = problems
        return body

    @r.get("/admin/rollback", summary="What a rollback to a revision would change (nothing is written)",
           responses=responses(404, 422))
    def preview(request: Request, to: Annotated[int, Query(ge=0, le=MAX_ID)],
                layers: Annotated[list[str] | None, Query()] = None, who: Principal = Depends(ADMIN)):
        return plain(request.app.state.services.store.rollback_preview(to, layers=layers or None))

    @r.post("/admin/rollback", summary="Roll the published data back to a revision, as one new revision",
            responses=responses(404, 409, 422))
    def rollback(body: Rollback, request: Request, who: Principal = Depends(ADMIN)):
        services = request.app.state.services
        revision = services.store.rollback(body.to, author=who.name, message=body.message, layers=body.layers,
                                           base_version=body.version)
        services.forget()  # plan bases follow at once, the map when the new version is prepared
        entry = services.store.audit(revision=revision).iloc[0]
        return plain({"revision": revision, "to": body.to, "author": who.name, "data_version": services.data_version,
                      "changes": entry["what"], "summary": entry["summary"]})

    return r
