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

import gridgeo.maps
from api import derived
from api.auth import Principal, principal
from api.dependencies import EVENT_PERIODS, event_categories, event_period, optional_level
from api.problems import Problem, responses
from gridgeo import events as gevents
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


EventField = Annotated[str | None, Query(max_length=16, description="For an event indicator (field=ev_...): the "
                                       "kind of period (month, week, day, quarter, year; the public: the heat "
                                       "map's)",
                                       json_schema_extra={"enum": [p for p in EVENT_PERIODS if p != "span"]})]
"""A map shows one period of a kind, so ``span`` is not among them (a 422 says why if given)."""
EventAt = Annotated[str | None, Query(max_length=16, description="For an event indicator: the period shown, by its "
                                      "label (2025-06); default the last")]
FIELDS = [*derived.PUBLIC_FIGURES, *(gevents.MAP_FIELD + x for x in gevents.INDICATORS)]
"""What a print or an export may show: the tiles' figures and the event indicators (as the one map names them)."""


def _event_question(field: str | None, period, at, category) -> bool:
    """Whether ``field`` is an event indicator; the event parameters refused for another figure."""
    if field is not None and field.startswith(gevents.MAP_FIELD):
        indicator = field[len(gevents.MAP_FIELD):]
        if indicator not in gevents.INDICATORS:
            raise Problem(422, "Unprocessable Content", f"没有事件指标 {field!r} — no event indicator {field!r}: use "
                          f"one of {[gevents.MAP_FIELD + x for x in gevents.INDICATORS]}")
        return True
    given = [name for name, value in (("period", period), ("at", at), ("category", category)) if value]
    if given:
        raise Problem(422, "Unprocessable Content", f"{given} 只用于事件指标 — {given} are for an event indicator "
                      f"(field=ev_closure_rate ...), not for field={field!r}: leave them out")
    return False


def _event_figures(request: Request, who: Principal, field: str, level: str, period, at, category, lang: str):
    """(figures, min_count, detail) of an event indicator: every unit of `level` in one period as the one map's
    choropleth shows it to this caller (/events/map: the same table, the same values), and the period and
    categories in words."""
    services = request.app.state.services
    authorised = who.has("viewer")
    period = event_period(period or services.settings.heat_period)
    if period == "span":
        raise Problem(422, "Unprocessable Content", "an event indicator's map needs a period: month, week, day, "
                      "quarter or year / 须指定统计周期")
    indicator = field[len(gevents.MAP_FIELD):]
    if not authorised:
        derived.public_event_question(services, period, None, None, category, indicator)
    try:
        units = derived.event_units(services, authorised=authorised, level=level, period=period, category=category)
        periods = list(dict.fromkeys(units["period"]))
        chosen = at if at is not None else (periods[-1] if periods else None)
        figures = gevents.map_values(units, indicator, chosen)
    except gevents.EventsError as exc:
        raise Problem(422, "Unprocessable Content", str(exc)) from None
    return figures, None if authorised else services.settings.min_count, gevents.map_caption(chosen, category, lang)


def router() -> APIRouter:
    r = APIRouter(tags=["export"])

    @r.get("/export/figures.xlsx", summary="The figures of a selection as an Excel workbook (as /stats)",
           response_class=Response, responses={200: {"content": {XLSX: {}}}, **ERRORS})
    def figures_xlsx(request: Request, unit: UnitCode = None, level: str = Depends(optional_level),
                     field: Annotated[str | None, Query(max_length=64, description="An event indicator (ev_...): "
                                                        "its values per unit of `level` (inside `unit`), as the "
                                                        "one map's choropleth")] = None,
                     period: EventField = None, at: EventAt = None,
                     category: list[str] | None = Depends(event_categories), lang: Literal["zh", "en"] = "zh",
                     who: Principal = Depends(principal)):
        """With ``unit``: that unit and its children (the one map's panel). Without: every unit of ``level``.
        With an event indicator (``field=ev_closure_rate``): its values in one period for every unit of
        ``level`` (inside ``unit``), as /events/map gives them to the caller."""
        services = request.app.state.services
        figures = derived.public_figures(services, authorised=who.has("viewer"))
        _unit(figures, unit)
        event = _event_question(field, period, at, category)
        if field is not None and not event:
            raise Problem(422, "Unprocessable Content", f"Excel 导出的 field 只用于事件指标 — field={field!r}: the "
                          "workbook holds every figure; field names an event indicator (ev_...)")
        if event:
            values, min_count, detail = _event_figures(request, who, field, level, period, at, category, lang)
            if unit is not None:
                values = values[values.index.str.startswith(unit)]  # a code's prefix is its parent's code
            place = figures.at[unit, "name"] if unit is not None else gridgeo.maps.level_label(level, lang, services.store.scheme)
            label = gevents.INDICATOR_NAMES[field[len(gevents.MAP_FIELD):]][1 if lang == "en" else 0]
            title = f"{place} · {label} · {detail}"
            columns = [field] + (["suppressed"] if min_count else [])
            body = figures_workbook(values, columns=columns, title=title, version=services.version,
                                    min_count=min_count, scheme=services.store.scheme)
            return Response(body, media_type=XLSX, headers=_attachment(f"{place}-{label}-{detail.split(' · ')[0]}.xlsx"))
        if unit is not None:
            chosen = figures[(figures.index == unit) | (figures["parent"] == unit)]
            title, name = figures.at[unit, "name"], f"{figures.at[unit, 'name']}-指标.xlsx"
        else:
            chosen = figures[figures["level"] == level]
            title = gridgeo.maps.level_label(level, lang, services.store.scheme)
            name = f"{title}-指标.xlsx"
        body = figures_workbook(chosen, title=title, version=services.version,
                                min_count=figures.attrs.get("min_count"), scheme=services.store.scheme)
        return Response(body, media_type=XLSX, headers=_attachment(name))

    def printed(request: Request, fmt: Literal["png", "pdf"], level: str, unit, field, bbox, scheme, k, lang,
                      stations: bool, who: Principal, period=None, at=None, category=None):
        services = request.app.state.services
        figures = derived.public_figures(services, authorised=who.has("viewer"))
        _unit(figures, unit)
        min_count, detail = figures.attrs.get("min_count"), None
        if _event_question(field, period, at, category):
            figures, min_count, detail = _event_figures(request, who, field, level, period, at, category, lang)
        elif field is not None and field not in figures.columns:
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
                             stations=points, scheme=scheme, k=k, detail=detail, version=services.version,
                             language=lang, min_count=min_count, code_scheme=services.store.scheme)
        except PrintError as exc:
            raise Problem(404, "Not Found", str(exc)) from exc
        body = made.png() if fmt == "png" else made.pdf()
        place = grids.set_index("code").at[unit, "name"] if unit is not None else level
        return Response(body, media_type=MEDIA[fmt], headers=_attachment(f"{place}-地图.{fmt}"))

    def printer(fmt):
        def route(request: Request, level: str = Depends(optional_level), unit: UnitCode = None,
                  field: Annotated[str | None, Query(max_length=64, description="The figure coloured (as /stats), "
                                                     "or an event indicator (ev_closure_rate ...: as /events/map)",
                                                     json_schema_extra={"enum": FIELDS})] = None,
                  bbox: Annotated[str | None, Query(max_length=200, pattern=BBOX,
                                                    description="The view: west,south,east,north in degrees")] = None,
                  scheme: Literal["quantiles", "natural_breaks", "fisher_jenks", "equal_interval"] = "fisher_jenks",
                  k: Annotated[int, Query(ge=2, le=9)] = 5, lang: Literal["zh", "en"] = "zh",
                  stations: bool = True, period: EventField = None, at: EventAt = None,
                  category: list[str] | None = Depends(event_categories), who: Principal = Depends(principal)):
            return printed(request, fmt, level, unit, field, bbox, scheme, k, lang, stations, who, period, at,
                           category)
        return route

    for fmt in ("png", "pdf"):
        r.add_api_route(f"/export/map.{fmt}", printer(fmt), methods=["GET"], response_class=Response,
                        summary=f"The view as {fmt.upper()}: title, legend, scale bar, north arrow, date, data version",
                        responses={200: {"content": {MEDIA[fmt]: {}}}, **ERRORS})
    return r
