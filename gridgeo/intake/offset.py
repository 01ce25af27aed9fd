"""Is a layer in the system it says it is in? Checked against layers known to be right.

GCJ-02 (Amap, Tencent) and BD-09 (Baidu) shift coordinates by a few hundred
metres from WGS84/CGCS2000, and nothing in a file says which it holds: a
station sheet collected on Amap and declared WGS84 lands 500-600 m off, in the
wrong grids, with no error anywhere. :func:`detect_offset` reads the layer
as each system in turn and measures how well it fits a trusted layer (the
store's published grids):

- points that name their unit (``grid_code``): the share that fall outside
  the unit they name;
- grid units: the share of their area outside the published unit of the same
  code, or, when there is none, outside the parent they name;
- areas naming no unit (another office's boundaries: police precincts): the
  share of their area outside the trusted units together (the top level).

That share is the *misfit*. The rule: a reading is better than the declared
one when its misfit is at most a third of the declared misfit, at least 2
points (of 100) lower, and the declared misfit is at least 2 %. Then the
declared system is wrong and the better reading says what to pass instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from gridgeo.crs import STORAGE_CRS, SYSTEMS, convert, metric_crs

__all__ = ["detect_offset"]

_MIN_MISFIT = 0.02
_FACTOR = 3.0


def detect_offset(layer, trusted, *, declared: str = "wgs84", code_column: str | None = None):
    """How well ``layer`` fits ``trusted`` read as each coordinate system.

    Parameters
    ----------
    layer : GeoDataFrame
        In EPSG:4490, as converted from the ``declared`` system. Points with
        a column naming their unit, or grid units with ``code`` (and
        ``parent``).
    trusted : GeoDataFrame
        Units known to be right (``code`` and polygons, EPSG:4490): the
        store's published grids.
    declared : {"wgs84", "cgcs2000", "gcj02", "bd09"}
        What the layer was read as.
    code_column : str, optional
        The column of ``layer`` naming each point's unit; by default
        ``grid_code`` for points and ``code``/``parent`` for units.

    Returns
    -------
    DataFrame
        One row per system: ``system``, ``misfit`` (share outside, 0-1),
        ``checked`` (rows that could be compared), ``shift_m`` (how far that
        reading moves the layer's centre from the declared one, metres).
        ``attrs["declared"]``, ``attrs["better"]`` (the system that fits
        better by the rule above, or None) and ``attrs["what"]`` (what was
        compared) come with it. Empty when nothing can be compared.

    Examples
    --------
    >>> import gridgeo
    >>> from gridgeo import sample
    >>> s = sample.load()
    >>> amap = gridgeo.crs.convert(s.stations, "cgcs2000", "gcj02")  # collected on Amap ...
    >>> as_wgs84 = amap.set_crs(4490, allow_override=True)           # ... declared WGS84
    >>> fit = detect_offset(as_wgs84, s.grids)
    >>> fit.attrs["better"], int(fit.set_index("system").loc["gcj02", "shift_m"])
    ('gcj02', 566)
    """
    earth_name = "wgs84" if declared == "wgs84" else "cgcs2000"
    declared = {"wgs84": "cgcs2000"}.get(declared, declared)
    if declared not in ("cgcs2000", "gcj02", "bd09"):
        raise ValueError(f"declared={declared!r}: one of {', '.join(SYSTEMS)}")
    columns = ["system", "misfit", "checked", "shift_m"]
    empty = pd.DataFrame(columns=columns)
    empty.attrs.update(declared=declared, better=None, what="")
    if layer is None or len(layer) == 0 or trusted is None or len(trusted) == 0:
        return empty
    units = trusted.set_index("code").geometry
    units = units[~units.index.duplicated()]
    measure, what = _measure(layer, units, code_column)
    if measure is None:
        return empty
    raw = layer if declared == "cgcs2000" else convert(layer, "cgcs2000", declared)
    raw = raw.set_crs(STORAGE_CRS, allow_override=True)
    centre = _centre(layer)
    rows = []
    for system in ("cgcs2000", "gcj02", "bd09"):
        reading = raw if system == "cgcs2000" else convert(raw, system, "cgcs2000")
        misfit, checked = measure(reading)
        moved = _centre(reading)
        rows.append({"system": system, "misfit": misfit, "checked": checked, "shift_m": _metres(centre, moved)})
    out = pd.DataFrame(rows, columns=columns)
    out.loc[out["system"] == "cgcs2000", "system"] = earth_name
    mine = out.iloc[["cgcs2000", "gcj02", "bd09"].index(declared)]
    best = out.loc[out["misfit"].idxmin()]
    better = None
    if (best["system"] != mine["system"] and mine["misfit"] >= _MIN_MISFIT
            and best["misfit"] <= mine["misfit"] / _FACTOR and mine["misfit"] - best["misfit"] >= _MIN_MISFIT):
        better = best["system"]
    out.attrs.update(declared=mine["system"], better=better, what=what)
    return out


def _measure(layer, units, code_column):
    """(a function: reading -> (misfit, checked), a description) or (None, "")."""
    geoms = layer.geometry.array
    types = set(pd.unique(shapely.get_type_id(np.asarray(geoms))))
    if types <= {0}:  # points
        column = code_column or ("grid_code" if "grid_code" in layer.columns else None)
        if column is None or column not in layer.columns:
            return None, ""
        codes = layer[column].astype(object).where(layer[column].notna(), "").astype(str).to_numpy()
        known = np.isin(codes, units.index.to_numpy(dtype=object))
        if known.sum() < 3:
            return None, ""
        targets = units.reindex(codes[known]).array

        def points(reading):
            inside = shapely.covers(np.asarray(targets), np.asarray(reading.geometry.array)[known])
            return float(1 - inside.mean()), int(known.sum())

        return points, f"points outside the unit their {column} names"
    if types <= {3, 6} and "code" not in layer.columns:  # another office's areas: within the grids' outline
        return _within_outline(layer, units)
    if types <= {3, 6}:  # polygons
        codes = layer["code"].astype(str).to_numpy()
        same = np.isin(codes, units.index.to_numpy(dtype=object))
        parents = layer["parent"].astype(str).to_numpy() if "parent" in layer.columns else np.array([""] * len(layer))
        use = np.where(same, codes, parents)
        known = np.isin(use, units.index.to_numpy(dtype=object)) & shapely.is_valid(np.asarray(geoms))
        if known.sum() == 0:
            return None, ""
        targets = np.asarray(units.reindex(use[known]).array)
        crs = metric_crs(layer)
        target_m = np.asarray(pd.Series(targets).pipe(lambda s: _to(s, crs)))

        def polygons(reading):
            mine = _to(pd.Series(np.asarray(reading.geometry.array)[known]), crs)
            area = shapely.area(mine)
            inside = shapely.area(shapely.intersection(mine, target_m))
            return float(1 - inside.sum() / area.sum()), int(known.sum())

        what = "area outside the published unit of the same code" if same.any() else \
            "area outside the parent each unit names"
        return polygons, what
    return None, ""


def _within_outline(layer, units):
    """The misfit of areas that name no unit (police precincts ...): the share of
    their area outside the union of the trusted units (give it the top level)."""
    geoms = np.asarray(layer.geometry.array)
    valid = shapely.is_valid(geoms)
    if not valid.any():
        return None, ""
    crs = metric_crs(layer)
    outline = shapely.union_all(_to(pd.Series(np.asarray(units.array)), crs))
    shapely.prepare(outline)

    def areas(reading):
        mine = _to(pd.Series(np.asarray(reading.geometry.array)[valid]), crs)
        inside = shapely.area(shapely.intersection(mine, outline))
        return float(1 - inside.sum() / shapely.area(mine).sum()), int(valid.sum())

    return areas, "area outside the published grids"


def _centre(frame):
    minx, miny, maxx, maxy = frame.total_bounds
    return shapely.Point((minx + maxx) / 2, (miny + maxy) / 2)


def _to(series, crs):
    import geopandas as gpd

    return np.asarray(gpd.GeoSeries(series.to_numpy(), crs=STORAGE_CRS).to_crs(crs).array)


def _metres(a, b) -> float:
    import pyproj

    geod = pyproj.Geod(ellps="GRS80")
    return float(geod.inv(a.x, a.y, b.x, b.y)[2])
