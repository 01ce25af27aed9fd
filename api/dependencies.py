"""The query and path parameters routes share, as FastAPI dependencies.

A route declares what it takes (``level: str = Depends(grid_level)``) and gets
it checked: a grid level of the store's code scheme, a life circle, station
kinds, event categories, a span of days. Routes never borrow these checks from
each other. Where a parameter is one of a fixed list, the OpenAPI document
lists it (``enum``), so what the document calls valid is what is served; an
empty kind or category is the same as none given (every kind), as a form with
nothing chosen sends it; :func:`document` says so in the OpenAPI document.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, get_args, get_origin

from fastapi import Path, Query, Request

from api.derived import COVERAGE_MINUTES
from api.problems import Problem
from gridgeo.schema import EVENT_CATEGORIES, STATION_KINDS

__all__ = ["services", "scheme", "grid_level", "optional_level", "minutes", "path_minutes", "COVERAGE_MINUTES",
           "station_kinds", "event_categories", "days", "event_period", "event_level", "one_value_each", "one_of", "document", "base_url",
           "cache_control", "PlanId", "MAX_ID"]

MAX_ID = 2**63 - 1
"""The largest id a store keeps (a 64-bit integer): a bigger one is no id at all."""

PlanId = Annotated[int, Path(ge=1, le=MAX_ID, description="A plan's id")]
"""A ``{plan_id}`` path parameter, bounded so that no id overflows the store."""


def one_of(values, *, string_format: str | None = None):
    """A parameter's ``json_schema_extra`` that lists the strings it may be (and their
    ``format``), whether it is optional (``anyOf`` with null) or a list of them.

    Examples
    --------
    >>> schema = {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]}
    >>> one_of(["", "fire"])(schema)
    >>> schema["anyOf"][0]["items"]
    {'type': 'string', 'enum': ['', 'fire']}
    """

    def extra(schema: dict) -> None:
        for branch in schema.get("anyOf", [schema]):
            target = branch.get("items", {}) if branch.get("type") == "array" else branch
            if target.get("type") == "string":
                if values is not None:
                    target["enum"] = list(values)
                if string_format is not None:
                    target["format"] = string_format

    return extra


def document(schema: dict) -> dict:
    """Mark, in the OpenAPI document (in place), every query parameter whose listed values
    include the empty one as taking an empty value (``allowEmptyValue``).

    ``kind=`` is what a form with nothing chosen sends; for a list parameter it is the
    list of one empty value, which the items' ``enum`` admits, but a client may as well
    read it as the empty string, which a list's schema alone does not. OpenAPI's
    ``allowEmptyValue`` says plainly that the parameter may be sent empty.

    Examples
    --------
    >>> kinds = {"anyOf": [{"type": "array", "items": {"type": "string", "enum": ["", "fire"]}},
    ...                    {"type": "null"}]}
    >>> doc = {"paths": {"/heat": {"get": {"parameters": [{"name": "kind", "in": "query", "schema": kinds}]}}}}
    >>> document(doc)["paths"]["/heat"]["get"]["parameters"][0]["allowEmptyValue"]
    True
    """
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and _lists_empty(parameter.get("schema", {})):
                    parameter["allowEmptyValue"] = True
    return schema


def _lists_empty(schema: dict) -> bool:
    """Whether a parameter's schema lists the empty string among its values (or its items')."""
    for branch in schema.get("anyOf", [schema]):
        target = branch.get("items", {}) if branch.get("type") == "array" else branch
        if "" in target.get("enum", []):
            return True
    return False


def base_url(request: Request) -> str:
    """The service's address for links: ``GRIDGEO_PUBLIC_URL``, else the request's own.

    A link made from the request's ``Host`` header is only as good as the
    header; :func:`cache_control` keeps such answers out of shared caches so
    that a forged host never reaches another client.
    """
    configured = request.app.state.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


def cache_control(request: Request, max_age: int = 60) -> str:
    """``Cache-Control`` of an answer that carries links: public only when the links
    come from the configured public URL."""
    scope = "public" if request.app.state.settings.public_url else "private"
    return f"{scope}, max-age={max_age}, must-revalidate"


def services(request: Request):
    """The service's shared store, keys and caches."""
    return request.app.state.services


def scheme(request: Request):
    """The code scheme of the store's grids."""
    return request.app.state.services.store.scheme


def _checked_level(value: str, request: Request) -> str:
    names = request.app.state.services.store.scheme.names
    if value not in names:
        raise Problem(404, "Not Found", f"没有层级 {value!r}，可用 {list(names)} — no level {value!r}: use one of "
                      f"{list(names)}")
    return value


def grid_level(request: Request, level: Annotated[str, Path(max_length=64, description="A grid level of the "
                                                                                        "store's code scheme")]) -> str:
    """A ``{level}`` path parameter: one of the store's grid levels (404 otherwise)."""
    return _checked_level(level, request)


def optional_level(request: Request,
                   level: Annotated[str | None, Query(max_length=64, description="A grid level (default: the "
                                                                                  "scheme's main level)")] = None) -> str:
    """A ``level`` query parameter, defaulting to the scheme's main level (grid2)."""
    return _checked_level(level or request.app.state.services.store.scheme.main_level, request)


def _life_circle(minutes: int) -> int:
    if minutes not in COVERAGE_MINUTES:
        raise Problem(400, "Bad Request", f"minutes 只能是 {list(COVERAGE_MINUTES)} 之一 — minutes must be one of "
                      f"{list(COVERAGE_MINUTES)}, got {minutes}")
    return minutes


def minutes(minutes: Annotated[int, Query(description="The life circle: 5, 10 or 15 minutes' walk",
                                          json_schema_extra={"enum": list(COVERAGE_MINUTES)})] = 15) -> int:
    """A life circle: 5, 10 or 15 minutes (400 otherwise)."""
    return _life_circle(minutes)


def path_minutes(minutes: Annotated[int, Path(description="The life circle: 5, 10 or 15",
                                              json_schema_extra={"enum": list(COVERAGE_MINUTES)})]) -> int:
    """A ``{minutes}`` path parameter, checked as :func:`minutes`."""
    return _life_circle(minutes)


def _chosen(given: list[str] | None, vocabulary: dict, what: str, parameter: str) -> list[str] | None:
    """The values of a list parameter of a fixed vocabulary; empty values are none; None for all."""
    chosen = [value for value in given or [] if value]
    unknown = sorted(set(chosen) - set(vocabulary))
    if unknown:
        raise Problem(400, "Bad Request", f"{parameter}: 没有这些{what[0]} {unknown}，可用 {list(vocabulary)} — "
                      f"unknown {what[1]} {unknown}: use {list(vocabulary)} (or none for all)")
    return chosen or None


def _vocabulary(values, description: str):
    return Query(description=description, json_schema_extra=one_of(["", *values]))


def station_kinds(kind: Annotated[list[str] | None, _vocabulary(
        STATION_KINDS, "Station kinds, repeated for several (none, or empty: every kind)")] = None) -> list[str] | None:
    """``kind`` query parameters: station kinds of :data:`gridgeo.schema.STATION_KINDS` (None: all)."""
    return _chosen(kind, STATION_KINDS, ("站点类型", "station kinds"), "kind")


def event_categories(category: Annotated[list[str] | None, _vocabulary(
        EVENT_CATEGORIES, "Event categories, repeated for several (none, or empty: every category)")] = None
        ) -> list[str] | None:
    """``category`` query parameters: categories of :data:`gridgeo.schema.EVENT_CATEGORIES` (None: all)."""
    return _chosen(category, EVENT_CATEGORIES, ("事件类别", "event categories"), "category")


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _day(value: str | None, parameter: str) -> date | None:
    if value is None:
        return None
    try:
        if not _DAY.match(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise Problem(400, "Bad Request", f"{parameter}={value!r} 不是日期，请写成 YYYY-MM-DD（如 2025-03-01）— "
                      f"{parameter}={value!r} is not a date: write it YYYY-MM-DD, e.g. 2025-03-01") from None


def days(start: Annotated[str | None, Query(alias="from", description="First day (inclusive), YYYY-MM-DD",
                                            json_schema_extra=one_of(None, string_format="date"))] = None,
         end: Annotated[str | None, Query(alias="to", description="Last day (exclusive), YYYY-MM-DD",
                                          json_schema_extra=one_of(None, string_format="date"))] = None
         ) -> tuple[date | None, date | None]:
    """``from`` and ``to``: days written YYYY-MM-DD, nothing else (400 otherwise)."""
    return _day(start, "from"), _day(end, "to")


def one_value_each(request: Request) -> None:
    """Refuse a query parameter given more than once where the route takes one value
    (``?minutes=5&minutes=15``): which one was meant cannot be known (400)."""
    names = [name for name, _ in request.query_params.multi_items()]
    repeated = {name for name in names if names.count(name) > 1}
    if not repeated:
        return
    route = request.scope.get("route")
    several = _list_parameters(route) if route is not None else set()
    refused = sorted(repeated - several)
    if refused:
        raise Problem(400, "Bad Request", f"查询参数 {refused} 只能出现一次 — the query parameter(s) {refused} "
                      "take one value: give each once")


def _list_parameters(route) -> set[str]:
    """The query parameters a route takes several of (declared as lists)."""

    def is_list(annotation) -> bool:
        return get_origin(annotation) in (list, tuple, set) or any(is_list(a) for a in get_args(annotation))

    found, pending = set(), [getattr(route, "dependant", None)]
    while pending:
        dependant = pending.pop()
        if dependant is not None:
            found.update(field.alias for field in dependant.query_params if is_list(field.field_info.annotation))
            pending.extend(dependant.dependencies)
    return found


EVENT_PERIODS = ("month", "week", "day", "quarter", "year", "span")
"""The ``period`` of the event indicators: a calendar period, or ``span`` (one period from ``from`` to ``to``)."""


def event_period(period: Annotated[str, Query(description="Periods of the indicators: month, week (ISO), day, "
                                                          "quarter, year, or span (one period from `from` to `to`)",
                                              json_schema_extra={"enum": list(EVENT_PERIODS)})] = "month") -> str:
    """A ``period`` of the event indicators (400 otherwise)."""
    if period not in EVENT_PERIODS:
        raise Problem(400, "Bad Request", f"period 只能是 {list(EVENT_PERIODS)} 之一 — period must be one of "
                      f"{list(EVENT_PERIODS)}, got {period!r}")
    return period


def ranking_level(request: Request,
                  ranking: Annotated[str | None, Query(max_length=64, description="With the ranking of the units "
                                                       "of this level inside the unit (as /events/ranking)")] = None
                  ) -> str | None:
    """The ``ranking`` level of /events/map: one of the store's levels (404 otherwise), or None (no ranking)."""
    return None if ranking is None else _checked_level(ranking, request)


def event_level(request: Request,
                level: Annotated[str | None, Query(max_length=64, description="A grid level (default: the "
                                                                               "scheme's main level)")] = None) -> str:
    """A ``level`` query parameter of the event routes: one of the store's levels (404 otherwise, as
    every ``level`` of the service)."""
    return _checked_level(level or request.app.state.services.store.scheme.main_level, request)
