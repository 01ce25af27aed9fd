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

import threading
from collections import OrderedDict

import geopandas as gpd
import pandas as pd
import pyproj

import gridgeo
from api.problems import responses
from gridgeo import disclosure
from gridgeo import events as gevents
from gridgeo.derived import COVERAGE_MINUTES, TILE_FIGURES  # noqa: F401 - the endpoints' vocabulary
from gridgeo.tiles import TileCache, TileSet, event_cells

PUBLIC_FIGURES = [
    "addresses", "households", "population", "units", "workers", "households_per_worker",
    "events", "events_per_1000", "stations", "band", "share_5min", "share_10min", "share_15min",
    "has_station",
]
"""Figures per unit of the ``/stats`` answers: aggregates only (for anonymous callers with
the minimum count of :mod:`gridgeo.disclosure` applied)."""

COVERAGE_FIGURES = [*(f"households_{m}min" for m in COVERAGE_MINUTES), "farthest_m"]
"""Figures per unit that only ``/coverage`` answers with."""

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


def unit_figures(services, *, authorised: bool) -> pd.DataFrame:
    """Figures per unit (:data:`PUBLIC_FIGURES` and :data:`COVERAGE_FIGURES`) as a caller may see
    them: every figure for an authorised caller (viewer and up); for anyone else those of
    :func:`gridgeo.disclosure.public_figures` with the service's minimum count. Either way a
    ``suppressed`` column, and ``attrs["min_count"]`` (None: nothing suppressed)."""
    def build(kept):
        f = figures(services)
        keep = ["name", "level", "parent", *[c for c in PUBLIC_FIGURES if c in f.columns]]
        table = pd.DataFrame(f[keep])
        table.index.name = "code"
        cov = coverage_per_unit(services)
        if cov is not None:  # the counts the shares come from: audited with them
            counts = cov.set_index("code")[[c for c in COVERAGE_FIGURES if c in cov.columns]]
            table = table.join(counts)
        if authorised:
            table["suppressed"] = False
            table.attrs = {"min_count": None}
            return table
        k = services.settings.min_count
        public = disclosure.public_figures(table, k)
        out = public[[c for c in table.columns if c in public.columns] + ["suppressed"]]
        out.attrs = dict(public.attrs)
        return out
    return services.derived("figures:authorised" if authorised else "figures:public", build)


def public_figures(services, *, authorised: bool = False) -> pd.DataFrame:
    """:data:`PUBLIC_FIGURES` per unit as a caller may see them (see :func:`unit_figures`)."""
    def build(kept):
        table = unit_figures(services, authorised=authorised)
        out = table[[c for c in table.columns if c not in COVERAGE_FIGURES]]
        out.attrs = dict(table.attrs)
        return out
    return services.derived("public_figures:authorised" if authorised else "public_figures", build)


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
    """The tile set of the one map: grid levels with figures, stations, event counts.

    Tiles are public whoever asks (a shared cache hands them to anyone), so
    they carry the public figures: those of :func:`unit_figures` for an
    anonymous caller, tagged with the minimum count in their version."""
    def build(kept):
        settings = services.settings
        cache = TileCache(max_bytes=settings.tile_cache_bytes, directory=settings.tile_cache)
        tileset = kept.tiles(cache=cache, figures=unit_figures(services, authorised=False),
                             tag=f"k{settings.min_count}")
        cache.retain(tileset.version)
        return tileset
    return services.derived("tiles", build)


def event_blocks(services) -> pd.DataFrame:
    """The events cut into blocks of at least k (:func:`gridgeo.disclosure.event_blocks`),
    made once per version with the service's minimum count and shortest period."""
    def build(kept):
        settings = services.settings
        events = services.derived("events", lambda kept: kept.events())
        return disclosure.event_blocks(events, settings.min_count, period=settings.heat_period)
    return services.derived("event_blocks", build)


def public_heat(services, *, category=None, start=None, end=None, cell_m: float) -> pd.DataFrame:
    """The public heat map (:func:`gridgeo.disclosure.heat`): ``lat``, ``lon``, ``count``, and
    what was withheld in ``attrs``."""
    return disclosure.heat(event_blocks(services), cell_m=cell_m, crs=metric(services), category=category,
                           start=start, end=end)


def events_heat(services, *, category=None, start=None, end=None, cell_m: float = 100.0) -> list[list[float]]:
    """Event counts on a square grid of ``cell_m`` metres: [lat, lon, count] per cell
    (:func:`gridgeo.tiles.event_cells`), in the published data's metric CRS: every event,
    for authorised callers."""
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


# --- events over time (gridgeo.events) ------------------------------------------------------------


def placed_events(services) -> gevents.Placed:
    """The published events (with their closing and step times) placed in the grids, once per version."""
    def build(kept):
        store = services.store
        at = None if store.layer_version("events") <= kept.version else kept.version
        frame = store.read("events", at=at)
        return gevents.place(frame, index(services))
    return services.derived("events:placed", build)


def memo(services, key: tuple, build):
    """``build()`` kept for the version served under ``key``, the last :data:`MEMO_SIZE` only
    (questions with free parameters: dates, categories)."""
    table = services.derived("events:memo", lambda kept: OrderedDict())
    with _MEMO_LOCK:
        if key in table:
            table.move_to_end(key)
            return table[key]
    value = build()
    with _MEMO_LOCK:
        table[key] = value
        while len(table) > MEMO_SIZE:
            table.popitem(last=False)
    return value


MEMO_SIZE = 64
"""How many answers to questions with free parameters a worker keeps per version."""
_MEMO_LOCK = threading.Lock()


def public_indicators(services) -> pd.DataFrame:
    """Every unit's indicators per period of the public heat map (``GRIDGEO_HEAT_PERIOD``), for all
    categories, under the minimum count (:func:`gridgeo.disclosure.public_indicators`): made once per
    version; anonymous questions are filters of it."""
    def build(kept):
        table = gevents.indicators(placed_events(services), period=services.settings.heat_period)
        return disclosure.public_indicators(table, services.settings.min_count)
    return services.derived("events:public", build)


def event_indicators(services, *, level, period, start=None, end=None, category=None) -> pd.DataFrame:
    """:func:`gridgeo.events.indicators` of one level, every unit (for authorised callers)."""
    key = ("indicators", level, period, start, end, tuple(category or ()))
    return memo(services, key, lambda: gevents.indicators(placed_events(services), level=level, period=period,
                                                          start=start, end=end, category=category))


def event_hotspots(services, *, level, method="gi", start=None, end=None, category=None) -> pd.DataFrame:
    """:func:`gridgeo.events.hotspots` of a level: events per 100 households (999 permutations, seed 0)."""
    key = ("hotspots", level, method, start, end, tuple(category or ()))
    return memo(services, key, lambda: gevents.hotspots(placed_events(services), level=level, base=figures(services),
                                                        method=method, start=start, end=end, category=category))
