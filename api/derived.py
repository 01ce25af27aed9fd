"""What the endpoints read of the derived data served (:mod:`gridgeo.derived`).

Each function takes the :class:`~api.services.Services` and returns a value
read from the version served, kept in memory until the version changes. All
the work is gridgeo's, done once per version by ``gridgeo prepare``: these
functions only say which item feeds which endpoint.

Every one of them raises :class:`api.services.Preparing` while no version is
complete (a store never prepared): a route that reads through this module
answers 503 then, and says so in its ``responses`` (:data:`PREPARING`).
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pyproj

import gridgeo
from api.problems import responses
from gridgeo.derived import COVERAGE_MINUTES, TILE_FIGURES  # noqa: F401 - the endpoints' vocabulary
from gridgeo.tiles import TileCache, TileSet, event_cells

PUBLIC_FIGURES = [
    "addresses", "households", "population", "units", "workers", "households_per_worker",
    "events", "events_per_1000", "stations", "band", "share_5min", "share_10min", "share_15min",
    "has_station",
]
"""Figures per unit published to everyone: aggregates only."""

PREPARING = responses(503)
"""The OpenAPI ``responses`` of a route that reads the derived data: a 503 with ``Retry-After``."""

CLASSED_FIGURES = [f for f in PUBLIC_FIGURES if f != "band"]
"""The public figures that are numbers (a flag counts as 0 or 1): what class breaks are made of."""


def grids(services) -> gpd.GeoDataFrame:
    """The grids of the version served."""
    return services.derived("grids", lambda kept: kept.grids())


def index(services) -> gridgeo.AssignIndex:
    return services.derived("index", lambda kept: gridgeo.AssignIndex(grids(services), scheme=services.store.scheme))


def metric(services) -> pyproj.CRS | None:
    """The one metric CRS of the published data (from the grids)."""
    def build(kept):
        wkt = kept.summary.get("metric_crs")
        return pyproj.CRS.from_wkt(wkt) if wkt else None
    return services.derived("metric", build)


def summary(services) -> dict:
    return services.kept.summary


def nearest(services, *, bbox=None) -> gpd.GeoDataFrame | None:
    """Every address's nearest station by walking distance (all kinds), read for a box only."""
    return services.kept.nearest(bbox=bbox)


def coverage_per_unit(services) -> pd.DataFrame | None:
    return services.derived("coverage_per_unit", lambda kept: kept.coverage())


def figures(services) -> pd.DataFrame:
    """stats.figures of the published data, with the coverage shares joined in."""
    return services.derived("figures", lambda kept: kept.figures())


def public_figures(services) -> pd.DataFrame:
    def build(kept):
        f = figures(services)
        keep = ["name", "level", "parent", *[c for c in PUBLIC_FIGURES if c in f.columns]]
        out = pd.DataFrame(f[keep])
        out.index.name = "code"
        return out
    return services.derived("public_figures", build)


def service_areas(services) -> gpd.GeoDataFrame | None:
    """The stations' service areas (None while still being prepared: see ``Derived.pending``)."""
    return services.derived("service_areas", lambda kept: kept.service_areas())


def served(services, minutes: int) -> gpd.GeoDataFrame | None:
    return services.derived(f"served:{minutes}", lambda kept: kept.served(minutes))


def uncovered(services, minutes: int) -> gpd.GeoDataFrame | None:
    return services.derived(f"uncovered:{minutes}", lambda kept: kept.uncovered(minutes))


def labels(services, level: str) -> list:
    return services.derived(f"labels:{level}", lambda kept: kept.labels(level))


def tiles(services) -> TileSet:
    """The tile set of the one map: grid levels with figures, stations, event counts."""
    def build(kept):
        settings = services.settings
        cache = TileCache(max_bytes=settings.tile_cache_bytes, directory=settings.tile_cache)
        tileset = kept.tiles(cache=cache)
        cache.retain(tileset.version)
        return tileset
    return services.derived("tiles", build)


def events_heat(services, *, category=None, start=None, end=None, cell_m: float = 100.0) -> list[list[float]]:
    """Event counts on a square grid of ``cell_m`` metres: [lat, lon, count] per cell
    (:func:`gridgeo.tiles.event_cells`), in the published data's metric CRS."""
    events = services.derived("events", lambda kept: kept.events())
    crs = metric(services)
    if events.empty or crs is None:
        return []
    keep = pd.Series(True, index=events.index)
    if category:
        keep &= events["category"].isin(category)
    if start is not None:
        keep &= events["reported_at"] >= pd.Timestamp(start)
    if end is not None:
        keep &= events["reported_at"] < pd.Timestamp(end)
    chosen = events[keep.to_numpy()]
    points = gpd.GeoDataFrame(chosen[["category", "reported_at"]],
                              geometry=gpd.points_from_xy(chosen["x"], chosen["y"]), crs=crs)
    cells = event_cells(points, cell_m=cell_m, crs=crs)
    return [[float(a), float(b), int(n)] for a, b, n in zip(cells["lat"], cells["lon"], cells["count"])]
