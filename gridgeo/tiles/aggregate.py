"""Events as counts per grid unit or hexagon: the public form of events.

A public map never shows an event or an address as a point: where a
resident reported a dispute is personal data. :func:`event_counts` keeps
only how many events fall in each unit (or hexagon), optionally split by a
category column, and drops every record-level attribute.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgeo.crs import STORAGE_CRS, metric_crs, to_storage
from gridgeo.schema import DEFAULT_SCHEME, CodeScheme, check

__all__ = ["event_counts", "event_cells"]

_UNIT_COLUMNS = ["code", "name", "level", "parent"]
# the vertices of a pointy-top hexagon around its centre, in lattice units (see _hexagon_polygons)
_HEX_LATTICE = np.array([(1, 1), (0, 2), (-1, 1), (-1, -1), (0, -2), (1, -1)])


def event_counts(events, grids=None, *, level: str = "grid2", hexagon: float | None = None, by=None,
                 scheme: CodeScheme = DEFAULT_SCHEME, source=None):
    """Count events per grid unit of one level, or per hexagon.

    The rule: an event counts once, in the unit that contains it; one on a
    boundary shared by several units counts for the unit with the smallest
    code. With ``hexagon``, an event counts in the hexagon whose centre is
    nearest (a point exactly between two centres goes to the one that
    numpy's round-half-to-even picks). Events outside every unit, or with no
    location, are not counted; how many there were is in ``attrs``.

    Parameters
    ----------
    events : GeoDataFrame
        Checked with :func:`gridgeo.schema.check` (kind ``"events"``).
    grids : GeoDataFrame, optional
        The units to count in (required unless ``hexagon`` is given). With
        ``hexagon`` they only choose the metric CRS the hexagons are drawn in.
    level : str, default "grid2"
        The level whose units are counted in (``"grid3"``, ``"grid2"``...).
    hexagon : float, optional
        Count in regular hexagons instead, this many metres apart (centre to
        centre, i.e. across flats), drawn in :func:`gridgeo.crs.metric_crs`
        of the grids (or of the events without grids).
    by : str, optional
        A column of ``events`` (``"category"``, ``"status"``) to split the
        count by: one more column ``events_<value>`` per value.
    scheme : CodeScheme
    source : optional
        The events' coordinate system when the frame does not say it.

    Returns
    -------
    GeoDataFrame
        In EPSG:4490. Per unit: ``code``, ``name``, ``level``, ``parent``,
        ``events`` and the ``events_<value>`` columns, every unit of the level
        (zero where nothing happened). Per hexagon: ``cell`` (``"q_r"``, axial
        coordinates), the counts, one row per hexagon holding at least one
        event. No record-level attribute (id, time, text) survives. ``attrs``
        holds ``outside`` and ``unlocated``.

    Examples
    --------
    >>> from gridgeo import sample
    >>> s = sample.load()
    >>> counts = event_counts(s.events, s.grids, level="grid2", by="status")
    >>> list(counts.columns)
    ['code', 'name', 'level', 'parent', 'events', 'events_closed', 'events_in_progress', 'events_open', 'geometry']
    >>> int(counts["events"].sum()) + counts.attrs["outside"] + counts.attrs["unlocated"] == len(s.events)
    True
    """
    events = check(to_storage(events, source=source, name="events"), "events", name="events")
    if by is not None and by not in events.columns:
        raise ValueError(f"by={by!r} is not a column of the events; they have {list(events.columns)}")
    if grids is not None:
        grids = check(to_storage(grids, name="grids"), "grids", scheme=scheme, name="grids")
    located = ~(shapely.is_missing(events.geometry.array) | shapely.is_empty(events.geometry.array))
    points = np.asarray(events.geometry.array, dtype=object)[located]
    values = None if by is None else events[by][located].astype("str").to_numpy()

    if hexagon is not None:
        frame, owner = _hexagons(points, grids, hexagon)
    elif grids is None:
        raise ValueError("event_counts needs the grids to count in, or hexagon=<metres> to count in hexagons")
    else:
        frame, owner = _units(points, grids, level, scheme)
    counted = owner >= 0
    result = _with_counts(frame, owner[counted], None if values is None else values[counted], by)
    result.attrs = {"outside": int((~counted).sum()), "unlocated": int((~located).sum())}
    return result


# --- steps ----------------------------------------------------------------------


def event_cells(events, *, cell_m: float = 100.0, crs=None, category=None, start=None, end=None) -> pd.DataFrame:
    """Events counted on a square grid of ``cell_m`` metres: the heat layer of the one map.

    The rule: the square cells of side ``cell_m`` tile the metric CRS from its
    origin; an event counts in the cell holding it (one on a cell's west or
    south edge belongs to that cell). Only cells with an event are listed,
    each by its centre, so no answer carries an event's own position or
    attributes.

    Parameters
    ----------
    events : GeoDataFrame
        Events (``category`` and ``reported_at`` when filtering by them).
    cell_m : float, default 100
        The side of a cell, in metres.
    crs : pyproj.CRS, optional
        The metric CRS of the cells (default: :func:`gridgeo.crs.metric_crs` of the events).
    category : str or list of str, optional
        Only these categories.
    start, end : date or timestamp, optional
        Only events reported from ``start`` (included) until ``end`` (excluded).

    Returns
    -------
    DataFrame
        ``lat``, ``lon`` (the cell's centre, EPSG:4490, 6 decimals) and ``count``.

    Examples
    --------
    >>> from gridgeo import sample
    >>> s = sample.load()
    >>> cells = event_cells(s.events, cell_m=500)
    >>> int(cells["count"].sum()) == len(s.events), bool((cells["count"] > 0).all())
    (True, True)
    """
    import geopandas as gpd

    from gridgeo.crs import metric_crs

    if not cell_m > 0:
        raise ValueError(f"cell_m must be a positive number of metres, got {cell_m!r}")
    keep = np.ones(len(events), dtype=bool)
    if category:
        keep &= events["category"].isin(category if isinstance(category, list) else [category]).to_numpy()
    if start is not None:
        keep &= (events["reported_at"] >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        keep &= (events["reported_at"] < pd.Timestamp(end)).to_numpy()
    chosen = events[keep]
    chosen = chosen[chosen.geometry.notna().to_numpy() & ~chosen.geometry.is_empty.to_numpy()]
    if chosen.empty:
        return pd.DataFrame({"lat": [], "lon": [], "count": []})
    crs = crs or metric_crs(chosen)
    points = chosen.geometry.to_crs(crs)
    xy = np.column_stack([points.x, points.y])
    cells, counts = np.unique(np.floor(xy / cell_m).astype(np.int64), axis=0, return_counts=True)
    centres = gpd.GeoSeries(gpd.points_from_xy((cells[:, 0] + 0.5) * cell_m, (cells[:, 1] + 0.5) * cell_m),
                            crs=crs).to_crs(4490)
    return pd.DataFrame({"lat": np.round(centres.y.to_numpy(), 6), "lon": np.round(centres.x.to_numpy(), 6),
                         "count": counts.astype(np.int64)})


def _units(points, grids, level, scheme):
    """The level's units (by code) and, for every point, the row of its unit or -1."""
    scheme.level(level)  # an unknown level raises, naming the known ones
    units = grids[grids["level"] == level].sort_values("code").reset_index(drop=True)
    if units.empty:
        raise ValueError(f"the grids hold no {level!r} units; their levels are {sorted(set(grids['level']))}")
    tree = shapely.STRtree(np.asarray(units.geometry.array, dtype=object))
    point_idx, unit_idx = tree.query(points, predicate="intersects")
    # on a shared boundary several units hit: keep the smallest row, i.e. the smallest code
    order = np.lexsort((unit_idx, point_idx))
    point_idx, unit_idx = point_idx[order], unit_idx[order]
    first = np.r_[True, point_idx[1:] != point_idx[:-1]] if len(point_idx) else np.zeros(0, bool)
    owner = np.full(len(points), -1, dtype=np.int64)
    owner[point_idx[first]] = unit_idx[first]
    frame = gpd.GeoDataFrame(units[_UNIT_COLUMNS], geometry=units.geometry.array, crs=STORAGE_CRS)
    return frame, owner


def _hexagons(points, grids, spacing):
    """The hexagons holding at least one point and, for every point, its hexagon's row."""
    if not spacing > 0:
        raise ValueError(f"hexagon must be a positive distance in metres, got {spacing!r}")
    metric = metric_crs(grids if grids is not None else shapely.total_bounds(points))
    to_metric = pyproj.Transformer.from_crs(STORAGE_CRS, metric, always_xy=True)
    x, y = to_metric.transform(shapely.get_x(points), shapely.get_y(points))
    q, r = _axial(np.asarray(x), np.asarray(y), spacing / np.sqrt(3.0))
    cells, owner = np.unique(np.stack([q, r], axis=1), axis=0, return_inverse=True)
    polygons = _hexagon_polygons(cells[:, 0], cells[:, 1], spacing / np.sqrt(3.0))
    frame = gpd.GeoDataFrame(
        {"cell": pd.array([f"{a}_{b}" for a, b in cells.tolist()], dtype="str")},
        geometry=gpd.GeoSeries(polygons, crs=metric).to_crs(STORAGE_CRS).array, crs=STORAGE_CRS)
    return frame, owner.reshape(-1).astype(np.int64)


def _axial(x, y, size):
    """Axial coordinates (q, r) of the pointy-top hexagon of circumradius ``size`` holding each point."""
    qf = (np.sqrt(3.0) / 3.0 * x - y / 3.0) / size
    rf = (2.0 / 3.0 * y) / size
    sf = -qf - rf
    q, r, s = np.round(qf), np.round(rf), np.round(sf)
    dq, dr, ds = np.abs(q - qf), np.abs(r - rf), np.abs(s - sf)
    fix_q = (dq > dr) & (dq > ds)
    fix_r = ~fix_q & (dr > ds)
    q = np.where(fix_q, -r - s, q)
    r = np.where(fix_r, -q - s, r)
    return q.astype(np.int64), r.astype(np.int64)


def _hexagon_polygons(q, r, size):
    # vertices on the lattice (i * size*sqrt(3)/2, j * size/2): neighbours share
    # bit-identical vertices, so the hexagons form an exact coverage
    i = (2 * q + r)[:, None] + _HEX_LATTICE[:, 0]
    j = (3 * r)[:, None] + _HEX_LATTICE[:, 1]
    ring = np.stack([i * (size * np.sqrt(3.0) / 2.0), j * (size / 2.0)], axis=-1)
    return shapely.polygons(ring)


def _with_counts(frame, owner, values, by):
    n = len(frame)
    counts = {"events": np.bincount(owner, minlength=n)}
    if by is not None:
        categories, codes = np.unique(values, return_inverse=True)
        table = np.bincount(owner * len(categories) + codes.reshape(-1),
                            minlength=n * len(categories)).reshape(n, len(categories))
        for j, value in enumerate(categories):
            counts[f"events_{value}"] = table[:, j]
    out = frame.drop(columns=frame.geometry.name).assign(**{k: v.astype(np.int64) for k, v in counts.items()})
    return gpd.GeoDataFrame(out, geometry=frame.geometry.array, crs=STORAGE_CRS)
