"""The plan package's shared internals, with plain names: what state, edits, division,
exchange, diff and impact each need of the others.

Nothing here is public API; the modules of :mod:`gridgeo.plan` import these
instead of each other's private helpers, and this module imports none of them.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo import crs as gcrs
from gridgeo.plan.errors import PlanError

AREA_RTOL = 1e-6      # a unit and the blocks labelled with it may differ by this share of its area
SHARED_MIN_M = 1e-6   # blocks sharing less boundary than this (a corner) are not neighbours
GRID_COLUMNS = ("code", "name", "level", "parent")


def prefixes(codes, width) -> np.ndarray:
    return np.array([c[:width] for c in codes], dtype=object)


def union(geoms):
    if not len(geoms):
        return shapely.Polygon()
    if len(geoms) == 1:
        return geoms[0]
    return shapely.coverage_union_all(geoms)


def shared_edges(geoms):
    """Pairs of blocks sharing an edge (not just a corner) and its length."""
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    length = shapely.length(shapely.intersection(shapely.boundary(geoms[i]), shapely.boundary(geoms[j])))
    edge = length > SHARED_MIN_M
    return i[edge], j[edge], length[edge]


def unit_rows(units) -> gpd.GeoDataFrame:
    cols = list(GRID_COLUMNS) + [c for c in units.columns if c not in GRID_COLUMNS and c != units.geometry.name]
    out = gpd.GeoDataFrame(units[cols].reset_index(drop=True), geometry=units.geometry.array,
                           crs=gcrs.STORAGE_CRS)
    return out.sort_values("code").reset_index(drop=True)


def labels(topo, units, level) -> np.ndarray:
    """Each block's unit of the level ("" for none); refuse units that cut blocks."""
    codes = np.full(len(topo.ids), "", dtype=object)
    if not len(units):
        return codes
    inner = shapely.point_on_surface(topo.geoms)
    blk, unit = shapely.STRtree(units.geometry.array).query(inner, predicate="within")
    codes[blk] = units["code"].to_numpy(dtype=object)[unit]
    metric_units = units.to_crs(topo.metric).area.to_numpy()
    labelled = pd.Series(topo.area).groupby(codes).sum()
    for code, area in zip(units["code"], metric_units):
        got = labelled.get(code, 0.0)
        if abs(got - area) > AREA_RTOL * area + 1e-3:
            raise PlanError("blocks_do_not_follow",
                            f"{level} unit {code} is not a union of whole blocks ({area:,.0f} m², its blocks "
                            f"{got:,.0f} m²): cut the blocks along the grids too, with "
                            "gridgeo.plan.blocks(..., boundaries=grids), or pass roads= and no blocks",
                            f"网格 {code} 不是整图块之和：请以网格边界一并切分图块"
                            "（gridgeo.plan.blocks(..., boundaries=grids)）", codes=[code])
    return codes


def validation(state) -> gpd.GeoDataFrame:
    from gridgeo.validation import validate

    grids = pd.concat([state._context[state._context["code"] == state.parent], state.to_grids()],
                      ignore_index=True)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=gcrs.STORAGE_CRS)
    levels = [lv for lv in state.scheme.names if lv in set(grids["level"]) and lv != scope_level(state)]
    return validate(grids, levels=levels, scheme=state.scheme, name=f"plan of {state.parent}")


def scope_level(state) -> str:
    return state._context.loc[state._context["code"] == state.parent, "level"].iloc[0]


def new_rows(state, codes, names=None) -> gpd.GeoDataFrame:
    """Rows for new units of the level: named ``<village>第<n>网格`` unless `names` says; other columns empty."""
    names = names or {}
    rows = []
    for code in codes:
        parent = state.scheme.parent_code(code)
        rows.append({"code": code, "name": names.get(code) or f"{state._village_name(parent)}第"
                     f"{state.scheme.sequence(code)}网格", "level": state.level, "parent": parent})
    frame = pd.DataFrame(rows, columns=[c for c in state.units.columns if c != "geometry"])
    frame = frame.astype({c: t for c, t in state.units.dtypes.items() if c != "geometry"}, errors="ignore")
    return gpd.GeoDataFrame(frame, geometry=[None] * len(frame), crs=state.units.crs)


def check_state(state):
    """Refuse anything but a plan state (gridgeo.plan.start(...))."""
    from gridgeo.plan.state import PlanState  # here, not at the top: state imports this module

    if not isinstance(state, PlanState):
        raise TypeError(f"expected a PlanState (gridgeo.plan.start(...)), got {type(state).__name__}")


def checked_band(band):
    try:
        low, high = (float(v) for v in band)
    except (TypeError, ValueError):
        raise ValueError(f"band should be (low, high), got {band!r}") from None
    if not 0 <= low <= high:
        raise ValueError(f"band should be (low, high) with 0 <= low <= high, got {band!r}")
    return low, high
