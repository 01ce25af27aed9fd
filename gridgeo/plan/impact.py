"""What a plan means for each grid: households, balance, contiguity, shape, stations, walking coverage."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from gridgeo.plan._kernel import checked_band as _checked_band
from gridgeo.plan.state import PlanState, start
from gridgeo.stats import BANDS

__all__ = ["impact", "DEFAULT_BAND"]

DEFAULT_BAND = (300, 500)
"""Households per urban level-2 grid (:data:`gridgeo.stats.DEFAULT_BANDS`)."""


def impact(plan, addresses=None, stations=None, *, band=DEFAULT_BAND, of: str = "households", minutes: int = 15,
           parent: str | None = None, roads=None, coverage=None, network=None) -> gpd.GeoDataFrame:
    """Figures of every grid of a plan, and how the plan does against the band.

    For a :class:`PlanState` everything comes from the sums its blocks
    carry (no spatial join: a village's impact takes a millisecond, so it
    can follow every edit). Grids as a GeoDataFrame are first opened with
    :func:`gridgeo.plan.start` (then `parent` and `roads` are needed).

    Parameters
    ----------
    plan : PlanState or GeoDataFrame
    addresses, stations : GeoDataFrame, optional
        Only for a GeoDataFrame plan (a state already holds them).
    band : (low, high), default (300, 500)
        Target of `of` per grid; bounds count as within.
    of : str, default "households"
        The figure the band is about (``households``, ``population``, ``units``).
    minutes : int, default 15
        The life circle whose walking coverage is reported, when the state
        has coverage (``start(..., coverage=...)`` or ``network=``).
    parent, roads, coverage, network
        For a GeoDataFrame plan: passed to :func:`gridgeo.plan.start`.

    Returns
    -------
    GeoDataFrame
        One row per grid, ordered by code, in EPSG:4490: ``code``, ``name``,
        ``level``, ``parent``, ``blocks``, ``addresses``, ``households``,
        ``population``, ``units`` (those the blocks have); ``band``
        (``under``, ``within``, ``over``) and ``off_band`` (how far `of` is
        below (negative) or above the band, 0 within); ``pieces`` (1 for a
        contiguous grid) and ``contiguous``; ``area_m2``, ``perimeter_m``,
        ``polsby_popper`` (4πA/P², 1 for a circle); with stations
        ``stations`` and ``has_station``; with coverage
        ``households_<m>min`` and ``share_<m>min``; the polygon.
        ``attrs["summary"]`` holds the plan's totals: ``grids``, ``within``,
        ``under``, ``over``, ``share_within``, ``min``, ``max``, ``cv``, ``non_contiguous``
        (codes), ``without_station`` (codes), ``share_<m>min``,
        ``unassigned_blocks`` and their ``unassigned_households``.

    Notes
    -----
    Grids touch only along shared edges: blocks meeting at a corner are not
    contiguous. Perimeters are the sums of the blocks' perimeters less twice
    the edges they share inside the grid, measured in the state's metric CRS.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, addresses=s.addresses,
    ...                            stations=s.stations)
    >>> table = gridgeo.plan.impact(state)
    >>> int(table["households"].iloc[0]), table["band"].iloc[0]
    (227, 'under')
    >>> int(table["households"].sum()) == int(state.blocks["households"].sum())
    True
    >>> table.attrs["summary"]["within"], table.attrs["summary"]["without_station"]
    (3, ['3505821062010101'])
    """
    state = plan if isinstance(plan, PlanState) else _opened(plan, parent, roads, addresses, stations, coverage,
                                                            network)
    if isinstance(plan, PlanState) and (addresses is not None or stations is not None):
        raise TypeError("a PlanState already holds its addresses and stations: pass them to gridgeo.plan.start")
    low, high = _checked_band(band)
    b = state._blocks
    units = state.units
    k = len(units)
    pos = pd.Index(units["code"]).get_indexer(state._codes)
    ok = pos >= 0
    table = pd.DataFrame({c: units[c].to_numpy() for c in ("code", "name", "level", "parent")})
    table["blocks"] = np.bincount(pos[ok], minlength=k)
    for col in b.sums.columns:
        total = np.bincount(pos[ok], weights=b.sums[col].to_numpy(dtype=float)[ok], minlength=k)
        table[col] = np.rint(total).astype(np.int64)
    if of not in table.columns:
        raise KeyError(f"the blocks have no {of!r} to balance: they have {list(b.sums.columns)}")
    value = table[of].to_numpy(dtype=float)
    table["band"] = pd.Categorical.from_codes(np.select([value < low, value > high], [0, 2], 1),
                                              categories=list(BANDS))
    table["off_band"] = np.where(value < low, value - low, np.where(value > high, value - high, 0.0))
    table["pieces"] = _pieces(b, pos, k)
    table["contiguous"] = table["pieces"] <= 1
    table["area_m2"] = np.bincount(pos[ok], weights=b.area[ok], minlength=k)
    table["perimeter_m"] = _perimeters(b, pos, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["polsby_popper"] = 4 * np.pi * table["area_m2"] / table["perimeter_m"] ** 2
    if "stations" in table.columns:
        table["has_station"] = table["stations"] > 0
    circle_col = f"households_{minutes}min"
    if circle_col in table.columns:
        with np.errstate(divide="ignore", invalid="ignore"):
            table[f"share_{minutes}min"] = table[circle_col] / table["households"].where(table["households"] > 0)
    out = gpd.GeoDataFrame(table, geometry=units.geometry.array, crs=units.crs)
    out.attrs["summary"] = _summary(out, state, ok, of, minutes, (low, high))
    return out


def _opened(plan, parent, roads, addresses, stations, coverage, network):
    if not isinstance(plan, gpd.GeoDataFrame):
        raise TypeError(f"plan should be a PlanState or a GeoDataFrame of grids, got {type(plan).__name__}")
    if parent is None:
        raise ValueError("the impact of grids as a GeoDataFrame needs parent= (the code of the unit planned) "
                         "and roads=, or open them first with gridgeo.plan.start")
    return start(plan, parent, roads=roads, addresses=addresses, stations=stations, coverage=coverage,
                 network=network)


def _internal(b, pos):
    """Mask of the block pairs inside one grid."""
    return (pos[b.pair_i] == pos[b.pair_j]) & (pos[b.pair_i] >= 0)


def _pieces(b, pos, k) -> np.ndarray:
    """Connected pieces of each grid (blocks joined by shared edges)."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components
    inside = _internal(b, pos)
    n = len(pos)
    graph = sparse.csr_matrix((np.ones(inside.sum()), (b.pair_i[inside], b.pair_j[inside])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    ok = pos >= 0
    pairs = np.unique(np.column_stack([pos[ok], component[ok]]), axis=0)
    return np.bincount(pairs[:, 0], minlength=k) if len(pairs) else np.zeros(k, dtype=np.int64)


def _perimeters(b, pos, k) -> np.ndarray:
    ok = pos >= 0
    inside = _internal(b, pos)
    total = np.bincount(pos[ok], weights=b.perimeter[ok], minlength=k)
    return total - 2 * np.bincount(pos[b.pair_i[inside]], weights=b.shared[inside], minlength=k)


def _summary(table, state, assigned, of, minutes, band) -> dict:
    value = table[of].to_numpy(dtype=float)
    counts = table["band"].value_counts()
    out = {
        "grids": len(table),
        "of": of,
        "band": band,
        **{name: int(counts.get(name, 0)) for name in BANDS},
        "share_within": float(counts.get("within", 0) / len(table)) if len(table) else float("nan"),
        "min": float(value.min()) if len(value) else float("nan"),
        "max": float(value.max()) if len(value) else float("nan"),
        "cv": float(value.std() / value.mean()) if len(value) and value.mean() > 0 else float("nan"),
        "non_contiguous": table.loc[~table["contiguous"], "code"].tolist(),
        "unassigned_blocks": int((~assigned).sum()),
    }
    if "households" in state._blocks.sums:
        out["unassigned_households"] = int(state._blocks.sums["households"].to_numpy()[~assigned].sum())
    if "has_station" in table.columns:
        out["without_station"] = table.loc[~table["has_station"], "code"].tolist()
    col = f"households_{minutes}min"
    if col in table.columns and table["households"].sum() > 0:
        out[f"share_{minutes}min"] = float(table[col].sum() / table["households"].sum())
    return out
