"""libpysal's Columbus tracts (data nobody here made) as 49 towns near Jinjiang: the tests' shared layout."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd


def columbus_towns() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """(the tracts as libpysal ships them, the tracts as towns ``350582100`` ...).

    The tracts' own units span about 5 x 4; an affine map (which keeps the topology: shared
    edges and vertices stay shared) lays them out as about 16 x 12 km in EPSG:4490.
    """
    from libpysal import examples

    tracts = gpd.read_file(examples.get_path("columbus.shp"))
    placed = tracts.geometry.affine_transform([0.03, 0, 0, 0.03, 118.3, 24.3]).to_numpy()
    grids = gpd.GeoDataFrame({"code": [f"350582{100 + i:03d}" for i in range(len(tracts))],
                              "name": [f"tract {int(v)}" for v in tracts["POLYID"]], "level": "town", "parent": ""},
                             geometry=placed, crs=4490)
    return tracts, grids


def events_at(points, rng) -> gpd.GeoDataFrame:
    """Events at ``points`` (EPSG:4490), reported through 2025, nine in ten closed some 30 hours later
    (lognormal), of three categories, drawn from ``rng`` in that order."""
    n = len(points)
    reported = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24, n), unit="h")
    closed = reported + pd.to_timedelta(rng.lognormal(np.log(30), 1, n), unit="h")
    closed = closed.where(rng.random(n) < 0.9, pd.NaT)
    return gpd.GeoDataFrame({"event_id": [f"c{i}" for i in range(n)],
                             "category": rng.choice(["dispute", "fire", "road"], n), "status": "open",
                             "reported_at": reported.astype("datetime64[s]"),
                             "closed_at": pd.to_datetime(closed).astype("datetime64[s]")},
                            geometry=points, crs=4490)
