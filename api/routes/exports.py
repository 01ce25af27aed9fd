"""Print and export: the one map's view as PNG or PDF, and the figures of a selection as Excel.

Wiring only: the printed map is :func:`gridgeo.printing.print_map`, the
workbook :func:`gridgeo.workbook.figures_workbook`. Both read the figures a
caller may see (``/stats``: every figure for a viewer key, the public
aggregates under the minimum count for anyone else), so an export never shows
more than the page does. A print is heavy (a few seconds of drawing): callers
without a key are rate-limited (``GRIDGEO_RATE_PRINT``, see :mod:`api.limits`).
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response

from api import derived
from api.auth import Principal, principal
from api.dependencies import optional_level
from api.problems import Problem, responses
from gridgeo.printing import PrintError, print_map
from gridgeo.store.errors import NotFound
from gridgeo.workbook import figures_workbook

MEDIA = {"png": "image/png", "pdf": "application/pdf"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ERRORS = {**responses(400, 404, 422), **derived.PREPARING}
BBOX = r"^-?[0-9]+(\.[0-9]+)?(,-?[0-9]+(\.[0-9]+)?){3}$"
"""Four decimal numbers: what a bbox may look like (its values are then checked: a 422 if out of order)."""

UnitCode = Annotated[str | None, Query(max_length=64, description="A unit's code: it and the units under it")]


def _attachment(name: str) -> dict:
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or not (-180 <= box[0] < box[2] <= 180 and -90 <= box[1] < box[3] <= 90):
        raise Problem(422, "Unprocessable Content", f"bbox {text!r} 不是有效范围 — is not west,south,east,north "
                                                    "in degrees with west < east and south < north")
    return box


def _unit(figures, code: str | None) -> None:
    if code is not None and code not in figures.index:
        raise Problem(404, "Not Found", f"没有编码为 {code!r} 的单元 — no unit with code {code!r}")


def router() -> APIRouter:
    r = APIRouter(tags=["export"])

    @r.get("/export/figures.xlsx", summary="The figures of a selection as an Excel workbook (as /stats)",
           response_class=Response, responses={200: {"content": {XLSX: {}}}, **ERRORS})
    def figures_xlsx(request: Request, unit: UnitCode = None, level: str = Depends(optional_level),
                     who: Principal = Depends(principal)):
        """With ``unit``: that unit and its children (the one map's panel). Without: every unit of ``level``."""
        services = request.app.state.services
        figures = derived.public_figures(services, authorised=who.has("viewer"))
        _unit(figures, unit)
        if unit is not None:
            chosen = figures[(figures.index == unit) | (figures["parent"] == unit)]
            title, name = figures.at[unit, "name"], f"{figures.at[unit, 'name']}-指标.xlsx"
        else:
            chosen = figures[figures["level"] == level]
            title, name = level, f"{level}-指标.xlsx"
        body = figures_workbook(chosen, title=title, version=services.version,
                                min_count=figures.attrs.get("min_count"), scheme=services.store.scheme)
        return Response(body, media_type=XLSX, headers=_attachment(name))

    def printed(request: Request, fmt: Literal["png", "pdf"], level: str, unit, field, bbox, scheme, k, lang,
                      stations: bool, who: Principal):
        services = request.app.state.services
        figures = derived.public_figures(services, authorised=who.has("viewer"))
        _unit(figures, unit)
        if field is not None and field not in figures.columns:
            raise Problem(422, "Unprocessable Content", f"没有指标 {field!r} — no figure {field!r}: use one of "
                                                        f"{[c for c in derived.PUBLIC_FIGURES if c in figures.columns]}")
        grids = derived.grids(services)
        points = None
        if stations:
            try:
                points = services.derived("stations", lambda kept: services.store.read("stations"))
            except NotFound:
                points = None

        try:
            made = print_map(grids, level=level, figures=figures, field=field, unit=unit, bbox=_bbox(bbox),
                             stations=points, scheme=scheme, k=k, version=services.version, language=lang,
                             min_count=figures.attrs.get("min_count"), code_scheme=services.store.scheme)
        except PrintError as exc:
            raise Problem(404, "Not Found", str(exc)) from exc
        body = made.png() if fmt == "png" else made.pdf()
        place = figures.at[unit, "name"] if unit is not None else level
        return Response(body, media_type=MEDIA[fmt], headers=_attachment(f"{place}-地图.{fmt}"))

    def printer(fmt):
        def route(request: Request, level: str = Depends(optional_level), unit: UnitCode = None,
                  field: Annotated[str | None, Query(max_length=64, description="The figure coloured (as /stats)",
                                                     json_schema_extra={"enum": derived.PUBLIC_FIGURES})] = None,
                  bbox: Annotated[str | None, Query(max_length=200, pattern=BBOX,
                                                    description="The view: west,south,east,north in degrees")] = None,
                  scheme: Literal["quantiles", "natural_breaks", "fisher_jenks", "equal_interval"] = "fisher_jenks",
                  k: Annotated[int, Query(ge=2, le=9)] = 5, lang: Literal["zh", "en"] = "zh",
                  stations: bool = True, who: Principal = Depends(principal)):
            return printed(request, fmt, level, unit, field, bbox, scheme, k, lang, stations, who)
        return route

    for fmt in ("png", "pdf"):
        r.add_api_route(f"/export/map.{fmt}", printer(fmt), methods=["GET"], response_class=Response,
                        summary=f"The view as {fmt.upper()}: title, legend, scale bar, north arrow, date, data version",
                        responses={200: {"content": {MEDIA[fmt]: {}}}, **ERRORS})
    return r
