"""Events over time over HTTP: indicators per unit and period, trends, rankings and hot spots.

Wiring only: the rules are :mod:`gridgeo.events` (what each indicator counts)
and :mod:`gridgeo.disclosure` (what the public may see). Callers with a viewer
key (or higher) get every unit, any period (``month``, ``week``, ``day``,
``quarter``, ``year``, or ``span``: one period from ``from`` to ``to``), any
category. Anonymous callers get the public table: periods of
``GRIDGEO_HEAT_PERIOD`` (whole months by default), all categories together,
with every count of 1 to k-1 events (or one a subtraction along the hierarchy
would give away) ``null`` and the row's ``suppressed`` flag set; hot spots
without the units of 1 to k-1 events and without counts.

Everything is computed once per data version (the events placed in the
grids; the public table) and kept in memory, so a filter change is a
filter of a table or one vectorised pass over the placed events. The one
map asks ``/events/map`` once per filter change: the unit's periods, the
choropleth's level and (with ``ranking``) the ranking's level come from
that one pass (:func:`gridgeo.events.overview`), and the ranking it carries
is the answer ``/events/ranking`` gives for the same filter. A ranking inside
a unit is counted from that unit's events alone, as ``/events/ranking?unit=``
counts it (the whole level's table is not made for it).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request

from api import derived
from api.auth import Principal, principal
from api.dependencies import days, event_categories, event_level, event_period, ranking_level
from api.encode import table_records
from api.problems import Problem, responses
from gridgeo import disclosure
from gridgeo import events as gevents

HIDDEN = ("period_start", "period_end")
"""Columns of the library's tables the answers leave out (the label says the period)."""

Unit = Annotated[str | None, Query(max_length=64, description="Only this unit and the units inside it (a code)")]
Indicator = Annotated[str, Query(description="An indicator", json_schema_extra={"enum": list(gevents.INDICATORS)})]


def _indicator(value: str) -> str:
    if value not in gevents.INDICATORS:
        raise Problem(400, "Bad Request", f"indicator 只能是 {list(gevents.INDICATORS)} 之一 — no indicator "
                      f"{value!r}: use one of {list(gevents.INDICATORS)}")
    return value


def _known(unit: str, services) -> None:
    if not derived.grids(services)["code"].eq(unit).any():
        raise Problem(404, "Not Found", f"没有编码为 {unit!r} 的单元 — no unit with code {unit!r}")


def _within(table: pd.DataFrame, unit: str | None, services) -> pd.DataFrame:
    if not unit:
        return table
    _known(unit, services)
    return table[table["code"].str.startswith(unit)]  # a code's prefix is its parent's code


def _dated(table: pd.DataFrame, start, end) -> pd.DataFrame:
    keep = pd.Series(True, index=table.index)
    if start is not None:
        keep &= table["period_start"] >= pd.Timestamp(start)
    if end is not None:
        keep &= table["period_start"] < pd.Timestamp(end)
    return table[keep.to_numpy()]


def _rows(table: pd.DataFrame) -> list[dict]:
    return table_records(table.drop(columns=[c for c in HIDDEN if c in table.columns]).reset_index(drop=True))


def _library(call):
    try:
        return call()
    except gevents.EventsError as exc:  # fits the document; gridgeo.events' rule refuses it
        raise Problem(422, "Unprocessable Content", str(exc)) from None


def _series(services, who, level, period, start, end, category, indicator, unit):
    """The indicator per unit and period with its changes (what /trends answers and /ranking ranks):
    every unit for viewers, the public table for anyone else; and the minimum count applied (None)."""
    if who.has("viewer"):
        if unit:
            _known(unit, services)
        return _library(lambda: derived.event_trends(services, level=level, period=period, start=start, end=end,
                                                     category=category, indicator=indicator, unit=unit)), None
    derived.public_event_question(services, period, start, end, category, indicator)
    public = derived.public_indicators(services)
    table = _dated(gevents.changes(public[public["level"] == level], indicator), start, end)
    return _within(table, unit, services), services.settings.min_count


def _ranking(table: pd.DataFrame, level: str, indicator: str, at, k) -> dict:
    """The answer of /events/ranking (and the ``ranking`` of /events/map) from the indicator's series."""
    if table.empty:
        return {"level": level, "period": at, "indicator": indicator, "min_count": k, "rows": []}
    ranked = _library(lambda: gevents.ranked(table, indicator, at))
    return {"level": level, "period": ranked["period"].iloc[0] if len(ranked) else at, "indicator": indicator,
            "higher_is_better": gevents.HIGHER_IS_BETTER[indicator], "min_count": k, "rows": _rows(ranked)}


def router() -> APIRouter:
    r = APIRouter(tags=["events"], responses={**derived.PREPARING, **responses(400), **responses(404),
                                              **responses(422)})

    def indicator_table(request, who, level, period, start, end, category, unit=None):
        services = request.app.state.services
        if who.has("viewer"):
            if unit:
                _known(unit, services)
            table = _library(lambda: derived.event_indicators(
                services, level=level, period=None if period == "span" else period, start=start, end=end,
                category=category, unit=unit or None))
            return table.assign(suppressed=False), None
        derived.public_event_question(services, period, start, end, category)
        table = derived.public_indicators(services)
        return _dated(table[table["level"] == level], start, end), services.settings.min_count

    @r.get("/events/indicators", summary="Time indicators of the events per unit and period (CJ/T 292)")
    def indicators(request: Request, level: str = Depends(event_level), unit: Unit = None,
                   period: str = Depends(event_period), category: list[str] | None = Depends(event_categories),
                   span: tuple[date | None, date | None] = Depends(days), who: Principal = Depends(principal)):
        start, end = span
        table, k = indicator_table(request, who, level, period, start, end, category, unit)
        table = _within(table, unit, request.app.state.services)
        return {"level": level, "period": period, "min_count": k, "suppressed": int(table["suppressed"].sum()),
                "rows": _rows(table)}

    @r.get("/events/trends", summary="An indicator per unit and period, with the change from the period before "
                                     "(环比) and the year before (同比)")
    def trends(request: Request, level: str = Depends(event_level), unit: Unit = None,
               period: str = Depends(event_period), category: list[str] | None = Depends(event_categories),
               span: tuple[date | None, date | None] = Depends(days), indicator: Indicator = "received",
               who: Principal = Depends(principal)):
        start, end = span
        indicator = _indicator(indicator)
        services = request.app.state.services
        if period == "span":
            raise Problem(422, "Unprocessable Content", "trends need a period: month, week, day, quarter or year / 趋势须指定周期")
        table, k = _series(services, who, level, period, start, end, category, indicator, unit)
        return {"level": level, "period": period, "indicator": indicator, "min_count": k, "rows": _rows(table)}

    @r.get("/events/ranking", summary="The units of a level ranked by an indicator, with the change from the "
                                      "period before")
    def ranking(request: Request, level: str = Depends(event_level), unit: Unit = None,
                period: str = Depends(event_period), category: list[str] | None = Depends(event_categories),
                span: tuple[date | None, date | None] = Depends(days), indicator: Indicator = "closure_rate",
                at: Annotated[str | None, Query(max_length=16, description="The period ranked, by its label "
                                                "(2025-06); default the last")] = None,
                who: Principal = Depends(principal)):
        start, end = span
        indicator = _indicator(indicator)
        services = request.app.state.services
        if period == "span":
            raise Problem(422, "Unprocessable Content", "a ranking needs a period / 排名须指定周期")
        table, k = _series(services, who, level, period, start, end, category, indicator, unit)
        return _ranking(table, level, indicator, at, k)

    @r.get("/events/map", summary="What the one map shows for a filter, in one answer: the unit's (or the whole "
                                  "area's) indicators per period, one indicator of every unit of a level in one "
                                  "period with its classes, and (with `ranking`) the ranking of a level's units "
                                  "inside the unit, as /events/ranking")
    def event_map(request: Request, unit: Annotated[str | None, Query(
                      max_length=64, description="The unit whose indicators are given (a code); none: the whole area")] = None,
                  level: str = Depends(event_level), period: str = Depends(event_period),
                  category: list[str] | None = Depends(event_categories), indicator: Indicator = "closure_rate",
                  at: Annotated[str | None, Query(max_length=16, description="The period the units are coloured by, "
                                                  "by its label (2025-06, 2025-Q2, 2025); default the last")] = None,
                  scheme: Literal["quantiles", "natural_breaks", "fisher_jenks", "equal_interval"] = "fisher_jenks",
                  k: Annotated[int, Query(ge=2, le=9, description="How many classes")] = 5,
                  choropleth: Annotated[bool, Query(description="With every unit's value and the classes (false: "
                                                    "the unit's figures only)")] = True,
                  ranking: str | None = Depends(ranking_level),
                  ranking_indicator: Annotated[str, Query(description="The indicator the ranking orders by",
                                                          json_schema_extra={"enum": list(gevents.INDICATORS)})
                                               ] = "closure_rate",
                  who: Principal = Depends(principal)):
        services = request.app.state.services
        indicator = _indicator(indicator)
        if period == "span":
            raise Problem(422, "Unprocessable Content", "the map's figures need a period: month, week, day, quarter "
                          "or year / 须指定统计周期")
        if unit:
            _known(unit, services)
        ranking_indicator = _indicator(ranking_indicator)
        authorised = who.has("viewer")
        # the ranking's level joins the pass over every event only for the whole area: inside a unit it is
        # counted from the unit's events (derived.event_ranked), unless the choropleth's level is the same
        levels = [lv for lv, wanted in ((level, choropleth), (ranking, ranking is not None and not unit)) if wanted]
        if authorised:  # the cards', the choropleth's and the ranking's figures from one pass over the events
            series, tables = _library(lambda: derived.event_overview(services, unit=unit, levels=levels,
                                                                     period=period, category=category))
            level_table = dict(zip(dict.fromkeys(levels), tables))
            min_count = None
        else:
            derived.public_event_question(services, period, None, None, category, indicator if choropleth else None)
            series = derived.public_region(services, unit)
            min_count = services.settings.min_count
        periods = list(dict.fromkeys(series["period"]))
        if not periods:
            raise Problem(422, "Unprocessable Content", "没有事件数据 / the store holds no dated events")
        at = periods[-1] if at is None else at
        if at not in periods:
            raise Problem(422, "Unprocessable Content", f"没有周期 {at!r}，可用 {periods[0]} … {periods[-1]} — no "
                          f"{period} {at!r}: use one of {periods[0]} … {periods[-1]}")
        body = {"unit": unit or "", "level": series["level"].iloc[0] if len(series) else "", "period": period,
                "periods": periods, "at": at, "min_count": min_count,
                "series": _rows(series.drop(columns=["code", "name", "level", "parent"], errors="ignore")),
                "choropleth": None, "ranking": None}
        if choropleth:
            units = level_table[level] if authorised else derived.event_units(
                services, authorised=False, level=level, period=period, category=category)
            shown = _library(lambda: gevents.map_values(units, indicator, at))  # what the exports show too
            values = shown[gevents.MAP_FIELD + indicator]
            key = ("map", level, period, at, tuple(category or ()), indicator, min_count)
            classes = derived.classes(services, key, values.to_numpy(), scheme=scheme, k=k)
            body["choropleth"] = {"level": level, "indicator": indicator, "period": at,
                                  "higher_is_better": gevents.HIGHER_IS_BETTER[indicator], "scheme": scheme, "k": k,
                                  **classes, "values": dict(zip(shown.index,
                                                                [None if v != v else float(v) for v in values]))}
        if ranking is not None:
            key = ("ranked", ranking, period, tuple(category or ()), ranking_indicator, unit or "", min_count)
            if authorised:
                table = derived.event_ranked(services, level=ranking, period=period, category=category,
                                             indicator=ranking_indicator, unit=unit)
            else:
                table, _ = _series(services, who, ranking, period, None, None, category, ranking_indicator, unit)
            body["ranking"] = derived.memo(services, (*key, at), lambda: _ranking(
                table, ranking, ranking_indicator, at, min_count))  # the slider's periods each once
        return body

    @r.get("/events/hotspots", summary="Hot and cold spots of events per 100 households (Getis-Ord Gi* or local "
                                       "Moran's I, 999 permutations)")
    def hotspots(request: Request, level: str = Depends(event_level), unit: Unit = None,
                 method: Annotated[Literal["gi", "moran"], Query(description="gi (Getis-Ord Gi*) or moran (local Moran's I)",
                                              json_schema_extra={"enum": ["gi", "moran"]})] = "gi",
                 category: list[str] | None = Depends(event_categories),
                 span: tuple[date | None, date | None] = Depends(days), who: Principal = Depends(principal)):
        start, end = span
        services = request.app.state.services
        if method not in ("gi", "moran"):
            raise Problem(400, "Bad Request", f"method 只能是 gi 或 moran — method must be gi or moran, got {method!r}")
        if start is not None and end is not None and end <= start:
            raise Problem(422, "Unprocessable Content", f"to={end} 须晚于 from={start} — `to` (exclusive) must come after `from`")
        authorised = who.has("viewer")
        if not authorised:
            try:
                disclosure.aligned_period(start, end, services.settings.heat_period)
            except disclosure.DisclosureError as exc:
                raise Problem(422, "Unprocessable Content", str(exc)) from None
        table = _library(lambda: derived.event_hotspots(services, level=level, method=method, start=start, end=end,
                                                        category=category))
        k = None
        if not authorised:
            k = services.settings.min_count
            table = disclosure.public_hotspots(table, k)
        attrs = table.attrs
        table = _within(table, unit, services)
        return {"level": level, "method": method, "permutations": attrs.get("permutations"),
                "alpha": attrs.get("alpha"), "rate": attrs.get("rate"), "islands": attrs.get("islands", []),
                "min_count": k, "withheld": attrs.get("withheld", 0), "rows": _rows(table)}

    return r
