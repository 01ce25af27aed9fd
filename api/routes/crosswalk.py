"""Other offices' boundaries (警格, 学区 ...) against the grids: :mod:`gridgeo.crosswalk` over HTTP.

- ``GET /crosswalk?boundaries=警格&level=grid2``: one row per piece, a grid and a unit
  of the boundary set that overlap: ``code``, ``grid_name``, ``other``, ``other_name``,
  ``area_m2``, ``share_of_grid``, ``share_of_other``, the ``addresses``, ``households``
  and ``population`` in the piece, ``sliver``, ``main_of_grid``, ``main_of_other``;
  ``code=`` or ``other=`` keep one grid's or one unit's pieces (the one map's grid card).
  The counts are personal-data aggregates: anonymous callers get them under the minimum
  count (:func:`gridgeo.disclosure.public_crosswalk`), viewers exactly.
- ``GET /crosswalk/misalignment?boundaries=警格&level=grid2`` (viewer): the places where
  the two layers nearly agree, located (GeoJSON), each with its message and suggestion
  in Chinese and English (:func:`gridgeo.crosswalk.misalignment`).
- ``format=xlsx`` on ``/crosswalk`` (viewer): both as an Excel workbook, a sheet each.

Everything is computed once per data version and boundary set (:func:`api.derived.crosswalk`).
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api import derived
from api.auth import Principal, principal
from api.dependencies import optional_level
from api.encode import dumps, feature_collection, records
from api.problems import Problem, responses
from gridgeo import crosswalk as gcrosswalk

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ROLE = "viewer"
"""The role that sees the places to fix and the workbook: the messages count households."""

Boundaries = Annotated[str, Query(min_length=1, max_length=40, description="The boundary set (警格, 学区 ...): "
                                  "one of the store's, as /collections lists them")]
Code = Annotated[str | None, Query(max_length=64, description="Only this grid's pieces")]
Other = Annotated[str | None, Query(max_length=200, description="Only this unit's pieces (its boundary_id)")]
Format = Annotated[Literal["json", "xlsx"], Query(description="json (default) or xlsx (the table and the places to "
                                                              "fix, a sheet each; viewer)")]


def router() -> APIRouter:
    r = APIRouter(tags=["crosswalk"], responses={**responses(404, 422), **derived.PREPARING})

    @r.get("/crosswalk", summary="Which grids each unit of a boundary set cuts, and the households in each "
                                 "piece (format=xlsx: the workbook, viewer)",
           responses={200: {"content": {"application/json": {}, XLSX: {}}}, **responses(401, 403)})
    def table(request: Request, boundaries: Boundaries, level: str = Depends(optional_level), code: Code = None,
              other: Other = None, format: Format = "json", who: Principal = Depends(principal)):  # noqa: A002
        services = request.app.state.services
        boundary_set = _set(services, boundaries)
        if format == "xlsx":
            _check_role(who, "the workbook")
            pieces, report = _computed(services, boundary_set, level)
            name = quote(f"{boundary_set}-{level}-crosswalk.xlsx")
            return Response(gcrosswalk.workbook(pieces, report), media_type=XLSX,
                            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"})
        authorised = who.has(ROLE)
        if authorised:
            pieces = _computed(services, boundary_set, level)[0]
        else:
            _computed(services, boundary_set, level)  # refused (422) alike for every caller
            pieces = derived.public_crosswalk(services, boundary_set, level)
        chosen = _chosen(pieces, code, other)
        summary = pieces.attrs.get("summary", {})
        return {"boundaries": boundary_set, "level": level, "count": len(chosen),
                "min_count": None if authorised else services.settings.min_count,
                "summary": {layer: summary[layer] for layer in ("grids", "other") if layer in summary},
                "rows": records(chosen.drop(columns="geometry"), digits=6)}

    @r.get("/crosswalk/misalignment", summary="Where a boundary set and the grids nearly but not quite "
                                              "agree, located, with what to do (viewer)",
           response_class=Response, responses={200: {"content": {"application/geo+json": {}}},
                                               **responses(401, 403)})
    def misalignment(request: Request, boundaries: Boundaries, level: str = Depends(optional_level),
                     code: Code = None, other: Other = None, who: Principal = Depends(principal)):
        services = request.app.state.services
        boundary_set = _set(services, boundaries)
        _check_role(who, "the places to fix")
        report = _chosen(_computed(services, boundary_set, level)[1], code, other)
        body = feature_collection(report, [c for c in gcrosswalk.REPORT_COLUMNS if c != "geometry"], digits=6)
        body["boundaries"], body["level"] = boundary_set, level
        body["summary"] = {k: int((report["kind"] == k).sum()) for k in gcrosswalk.MISALIGNMENT_KINDS}
        return Response(dumps(body).encode("utf-8"), media_type="application/geo+json")

    return r


def _set(services, name: str) -> str:
    sets = services.store.boundary_sets()
    if name not in sets:
        raise Problem(404, "Not Found", f"没有边界集 {name!r}，库中有：{'、'.join(sets) or '无'}（用 gridgeo load "
                      f"--layer boundaries --name 载入）— no boundary set {name!r}; the store holds "
                      f"{', '.join(sets) or 'none'} (load one with gridgeo load --layer boundaries --name)")
    return name


def _check_role(who: Principal, what: str) -> None:
    if not who.has(ROLE):
        status = 401 if who.role == "anonymous" else 403
        raise Problem(status, "Unauthorized" if status == 401 else "Forbidden",
                      f"{what} count households in small places: it needs the {ROLE} role (an X-API-Key)")


def _computed(services, boundary_set: str, level: str):
    try:
        return derived.crosswalk(services, boundary_set, level)
    except gcrosswalk.CrosswalkError as exc:
        raise Problem(422, "Unprocessable Content", f"{exc.message_zh} — {exc.message_en}") from None


def _chosen(frame, code, other):
    keep = frame.index == frame.index
    if code is not None:
        keep &= (frame["code"] == code).to_numpy()
    if other is not None:
        keep &= (frame["other"] == other).to_numpy()
    return frame[keep]
