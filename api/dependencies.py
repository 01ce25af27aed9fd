"""The query and path parameters routes share, as FastAPI dependencies.

A route declares what it takes (``level: str = Depends(grid_level)``) and gets
it checked: a grid level of the store's code scheme, a life circle, an output
coordinate system. Routes never borrow these checks from each other.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request

from api.derived import COVERAGE_MINUTES
from api.problems import Problem

__all__ = ["services", "scheme", "grid_level", "optional_level", "minutes", "path_minutes", "COVERAGE_MINUTES",
           "base_url", "cache_control", "PlanId", "MAX_ID"]

MAX_ID = 2**63 - 1
"""The largest id a store keeps (a 64-bit integer): a bigger one is no id at all."""

PlanId = Annotated[int, Path(ge=1, le=MAX_ID, description="A plan's id")]
"""A ``{plan_id}`` path parameter, bounded so that no id overflows the store."""


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
        raise Problem(404, "Not Found", f"no level {value!r}: use one of {list(names)}")
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


def minutes(minutes: Annotated[int, Query(description="The life circle: 5, 10 or 15 minutes' walk")] = 15) -> int:
    """A life circle: 5, 10 or 15 minutes (400 otherwise)."""
    if minutes not in COVERAGE_MINUTES:
        raise Problem(400, "Bad Request", f"minutes must be one of {list(COVERAGE_MINUTES)}, got {minutes}")
    return minutes


def path_minutes(minutes: Annotated[int, Path(description="The life circle: 5, 10 or 15")]) -> int:
    """A ``{minutes}`` path parameter, checked as :func:`minutes`."""
    if minutes not in COVERAGE_MINUTES:
        raise Problem(400, "Bad Request", f"minutes must be one of {list(COVERAGE_MINUTES)}, got {minutes}")
    return minutes
