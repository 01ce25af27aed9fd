"""What the service derives from the published data, once per data version.

Each function takes the :class:`~api.services.Services` and returns a
value that :meth:`Services.derived` caches until a publish changes the data
version. All the work is gridgeo's: these functions only say which library
call feeds which endpoint.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import pandas as pd

import gridgeo
import gridgeo.crs
from gridgeo import coverage, network, stats
from gridgeo.tiles import (DEFAULT_ZOOMS, TileCache, TileLayer, TileSet, event_cells, event_counts, grid_layers,
                           station_layer)

log = logging.getLogger("gridgeo.api")

COVERAGE_MINUTES = (5, 10, 15)

PUBLIC_FIGURES = [
    "addresses", "households", "population", "units", "workers", "households_per_worker",
    "events", "events_per_1000", "stations", "band", "share_5min", "share_10min", "share_15min",
    "has_station",
]
"""Figures per unit published to everyone: aggregates only."""

TILE_FIGURES = ["households", "population", "households_per_worker", "events_per_1000", "band", "share_15min",
                "stations"]
"""The figures carried in grid tiles, for styling without another request."""


def layer(services, name: str) -> gpd.GeoDataFrame:
    return services.derived(f"layer:{name}", lambda: services.store.read(name))


def grids(services) -> gpd.GeoDataFrame:
    return layer(services, "grids")


def index(services) -> gridgeo.AssignIndex:
    return services.derived("index", lambda: gridgeo.AssignIndex(grids(services), scheme=services.store.scheme))


def metric(services):
    """The one metric CRS of the published data (from the grids)."""
    return services.derived("metric", lambda: gridgeo.crs.metric_crs(grids(services)))


def walk_network(services):
    return services.derived("network", lambda: network.build(layer(services, "roads"), metric=metric(services)))


def nearest(services) -> gpd.GeoDataFrame:
    """Every address's nearest station by walking distance (all kinds)."""
    def build():
        addresses, stations = layer(services, "addresses"), layer(services, "stations")
        if addresses.empty or stations.empty:
            return None
        roads = layer(services, "roads")
        method = "network" if not roads.empty else "straight"
        return coverage.nearest_station(addresses, stations, walk_network(services) if method == "network"
                                        else None, method=method)
    return services.derived("nearest", build)


def coverage_per_unit(services) -> pd.DataFrame | None:
    def build():
        result = nearest(services)
        if result is None:
            return None
        return coverage.per_grid(result, index(services), stations=layer(services, "stations"))
    return services.derived("coverage_per_unit", build)


def figures(services) -> gpd.GeoDataFrame:
    """stats.figures of the published data, with the coverage shares joined in."""
    def build():
        f = stats.figures(index(services), addresses=layer(services, "addresses"),
                          events=layer(services, "events"), stations=layer(services, "stations"))
        cov = coverage_per_unit(services)
        if cov is not None:
            cov = cov.set_index("code") if "code" in cov.columns else cov
            share = [c for c in cov.columns if c.startswith("share_") or c in ("has_station", "farthest_m")]
            f = f.join(cov[share])
        return f
    return services.derived("figures", build)


def public_figures(services) -> pd.DataFrame:
    f = figures(services)
    keep = ["name", "level", "parent", *[c for c in PUBLIC_FIGURES if c in f.columns]]
    out = pd.DataFrame(f[keep])
    out.index.name = "code"
    return out


def service_areas(services) -> gpd.GeoDataFrame | None:
    def build():
        stations = layer(services, "stations")
        roads = layer(services, "roads")
        if stations.empty or roads.empty:
            return None
        return coverage.service_areas(stations, walk_network(services))
    return services.derived("service_areas", build)


def uncovered(services, minutes: int) -> gpd.GeoDataFrame | None:
    def build():
        result = nearest(services)
        if result is None:
            return None
        town = grids(services)
        town = town[town["level"] == town["level"].iloc[0]] if len(town) else town
        return coverage.uncovered_areas(result, minutes=minutes, within=town)
    return services.derived(f"uncovered:{minutes}", build)


def tiles(services) -> TileSet:
    """The tile set of the one map: grid levels with figures, stations, event counts."""
    def build():
        f = figures(services)
        carried = f[[c for c in TILE_FIGURES if c in f.columns]]
        scheme = services.store.scheme
        layers = list(grid_layers(grids(services), figures=carried, scheme=scheme))
        stations = layer(services, "stations")
        if not stations.empty:
            layers.append(station_layer(stations))
        events = layer(services, "events")
        if not events.empty:
            main = scheme.level(scheme.main_level)
            counts = event_counts(events, grids(services), level=main.name, by="category", scheme=scheme)
            lo, hi = DEFAULT_ZOOMS["events"]
            layers.append(TileLayer(counts, "events", minzoom=lo, maxzoom=hi,
                                    description=f"Grid events counted per {main.label_en}, by category"))
        settings = services.settings
        cache = TileCache(max_bytes=settings.tile_cache_bytes, directory=settings.tile_cache)
        tileset = TileSet(layers, version=str(services.version), cache=cache)
        cache.retain(tileset.version)
        return tileset
    return services.derived("tiles", build)


def events_heat(services, *, category=None, start=None, end=None, cell_m: float = 100.0) -> list[list[float]]:
    """Event counts on a square grid of ``cell_m`` metres: [lat, lon, count] per cell
    (:func:`gridgeo.tiles.event_cells`), in the published data's metric CRS."""
    cells = event_cells(layer(services, "events"), cell_m=cell_m, crs=metric(services), category=category,
                        start=start, end=end)
    return [[float(a), float(b), int(n)] for a, b, n in zip(cells["lat"], cells["lon"], cells["count"])]
