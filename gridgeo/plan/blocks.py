"""Road-bounded building blocks: the atoms a planner paints grids with.

A block is a face of the road network inside a parent unit (a village, a
level-1 grid, a park): the roads and the parent's boundary, noded and
polygonised. Every grid boundary drawn along roads is then a union of whole
blocks, so an edit can move blocks between grids and every level stays an
exact coverage of its parent.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo import crs as gcrs
from gridgeo.schema import COUNT_COLUMNS, check, reading_order

__all__ = ["blocks", "BLOCK_COLUMNS"]

BLOCK_COLUMNS = ("block_id", "parent", "addresses", "households", "population", "units", "area_m2", "geometry")
"""The columns of :func:`blocks` (the count columns only for the counts the addresses have)."""


def blocks(parent, roads, addresses=None, *, boundaries=None, min_area_m2=1.0, crs=None,
           name="parent") -> gpd.GeoDataFrame:
    """Road-bounded blocks inside one or more parent units, with their household sums.

    The roads, the parents' boundaries and any extra `boundaries` are noded
    together and polygonised; every face inside a parent is a block of that
    parent. Blocks are numbered in reading order (north to south, west to
    east) inside each parent, so the same inputs always give the same ids.

    Parameters
    ----------
    parent : GeoDataFrame, GeoSeries or shapely (Multi)Polygon
        The unit(s) to cut into blocks. A frame with a ``code`` column (grid
        units) gets blocks per unit, named after its code.
    roads : GeoDataFrame or GeoSeries of lines
        The street network (a road layer as :func:`gridgeo.sample.load` gives
        it). Lines ending inside a block (dead ends) bound nothing.
    addresses : GeoDataFrame, optional
        Standard addresses: their count, and their ``households``,
        ``population`` and ``units`` where present, are summed per block.
    boundaries : GeoDataFrame or GeoSeries of polygons, optional
        More edges that bound blocks, typically the current grids when they
        do not all follow roads, so that each of them is a union of blocks.
    min_area_m2 : float, default 1.0
        Faces smaller than this are slivers (a parent boundary drawn a
        hair's breadth off the road, two carriageways digitised apart):
        each joins the block it shares the longest edge with.
    crs : str, int or pyproj.CRS, optional
        The coordinate system of a bare shapely `parent` (default CGCS2000,
        EPSG:4490). Frames say their own.
    name : str, default "parent"
        What to call `parent` in error messages.

    Returns
    -------
    GeoDataFrame
        One row per block in EPSG:4490, ordered by parent then id, with the
        columns of :data:`BLOCK_COLUMNS`: ``block_id`` (``<parent code>-0001``
        ...; ``0001`` ... without codes), ``parent`` (the unit's code, ``""``
        without codes), ``addresses`` and the sums of the count columns the
        addresses have (without addresses: none of these), ``area_m2``.

    Raises
    ------
    gridgeo.crs.CRSError, gridgeo.schema.SchemaError
        If an input has no coordinate system or does not fit the schema.

    Notes
    -----
    The boundary rule for addresses: a point inside a block counts in it; a
    point on the edge between blocks counts in the first of them in id order;
    a point outside every parent is not counted.

    Blocks are formed in the storage coordinates (EPSG:4490), where the
    stored grids and roads share their vertices exactly: projecting there and
    back would move the vertices shared with neighbouring units. Only areas
    are measured in metres, in :func:`gridgeo.crs.metric_crs` of the parents.
    Faces of at least `min_area_m2` are blocks however small (the sample
    has blocks of 3 m² where streets meet at a sharp angle).

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> village = s.level("village").iloc[[0]]
    >>> b = gridgeo.plan.blocks(village, s.roads, s.addresses)
    >>> b["block_id"].iloc[0]
    '350582106216-0001'
    >>> b.geometry.union_all().equals(village.geometry.iloc[0])
    True
    """
    parents = _parent_units(parent, crs, name)
    lines = gcrs.to_storage(_as_frame(roads, "roads"), name="roads").geometry.array
    extra = None if boundaries is None else gcrs.to_storage(_as_frame(boundaries, "boundaries"),
                                                          name="boundaries").geometry.array
    faces, owner = _faces(parents.geometry.array, lines, extra)
    metric = gcrs.metric_crs(parents)
    metric_faces = np.asarray(gpd.GeoSeries(faces, crs=gcrs.STORAGE_CRS).to_crs(metric).array)
    faces, metric_faces, owner = _without_slivers(faces, metric_faces, owner, float(min_area_m2))
    out = _numbered(faces, metric_faces, owner, parents)
    if addresses is not None:
        out = with_sums(out, addresses)
    return out


def _as_frame(data, what):
    if isinstance(data, gpd.GeoSeries):
        return gpd.GeoDataFrame(geometry=data)
    if not isinstance(data, gpd.GeoDataFrame):
        raise TypeError(f"{what} should be a GeoDataFrame or GeoSeries, got {type(data).__name__}")
    return data


def _parent_units(parent, crs, name):
    """The parents as a frame in EPSG:4490 with a ``code`` column ("" without codes)."""
    if isinstance(parent, shapely.Geometry):
        frame = gcrs.to_storage(gpd.GeoDataFrame(geometry=[parent]), source=crs or "cgcs2000", name=name)
    else:
        frame = gcrs.to_storage(_as_frame(parent, name), name=name)
    kinds = set(frame.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"} or frame.geometry.is_empty.any():
        raise ValueError(f"{name} should hold polygons, got {sorted(map(str, kinds))}: pass the unit(s) to cut "
                         "into blocks (a village, a level-1 grid, a park)")
    codes = frame["code"].astype("str") if "code" in frame.columns else pd.Series("", index=frame.index)
    return gpd.GeoDataFrame({"code": codes.to_numpy()}, geometry=frame.geometry.array, crs=gcrs.STORAGE_CRS)


def _faces(parents, lines, extra):
    """Every face of the noded roads and boundaries inside a parent, and its parent's position."""
    tree = shapely.STRtree(lines)
    near = np.unique(tree.query(parents, predicate="intersects")[1])
    edges = [lines[near], shapely.boundary(parents)]
    if extra is not None:
        edges.append(shapely.boundary(extra))
    noded = shapely.union_all(np.concatenate(edges))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    inside, owner = shapely.STRtree(parents).query(shapely.point_on_surface(faces), predicate="within")
    first = np.unique(inside, return_index=True)[1]  # parents that overlap share a face with the first only
    return faces[inside[first]], owner[first]


def _without_slivers(faces, metric_faces, owner, min_area):
    """Faces below `min_area` merged into the face of the same parent sharing the longest edge with them."""
    area = shapely.area(metric_faces)
    small = np.flatnonzero(area < min_area)
    if not len(small) or len(small) == len(faces):
        return faces, metric_faces, owner
    s, other = shapely.STRtree(metric_faces).query(metric_faces[small], predicate="intersects")
    sliver = small[s]
    keep = (owner[other] == owner[sliver]) & (area[other] >= min_area)
    sliver, other = sliver[keep], other[keep]
    shared = shapely.length(shapely.intersection(shapely.boundary(metric_faces[sliver]),
                                                 shapely.boundary(metric_faces[other])))
    pairs = pd.DataFrame({"sliver": sliver, "into": other, "shared": shared})
    pairs = pairs[pairs["shared"] > 0].sort_values(["sliver", "shared"]).groupby("sliver").tail(1)
    faces, metric_faces = faces.copy(), metric_faces.copy()
    for into, group in pairs.groupby("into"):
        members = np.concatenate([[into], group["sliver"].to_numpy()])
        faces[into] = shapely.coverage_union_all(faces[members])
        metric_faces[into] = shapely.coverage_union_all(metric_faces[members])
    gone = np.zeros(len(faces), dtype=bool)
    gone[pairs["sliver"].to_numpy()] = True
    return faces[~gone], metric_faces[~gone], owner[~gone]


def _numbered(faces, metric_faces, owner, parents):
    codes = parents["code"].to_numpy(dtype=object)[owner]
    seq = np.zeros(len(faces), dtype=np.int64)
    for code in pd.unique(codes):  # numbering is per parent
        mine = np.flatnonzero(codes == code)
        seq[mine] = reading_order(metric_faces[mine]) + 1
    ids = [f"{c}-{s:04d}" if c else f"{s:04d}" for c, s in zip(codes, seq)]
    out = gpd.GeoDataFrame({"block_id": ids, "parent": codes, "area_m2": shapely.area(metric_faces)},
                           geometry=faces, crs=gcrs.STORAGE_CRS)
    out["block_id"] = out["block_id"].astype("str")
    out["parent"] = out["parent"].astype("str")
    return out.sort_values(["parent", "block_id"]).reset_index(drop=True)


def with_sums(out, addresses):
    """The blocks with the sums of the addresses in each (see :func:`blocks`)."""
    points = check(gcrs.to_storage(addresses, name="addresses"), "addresses", name="addresses")
    where = point_blocks(out.geometry.array, points.geometry.array)
    inside = where >= 0
    n = len(out)
    sums = {"addresses": np.bincount(where[inside], minlength=n)}
    for col in COUNT_COLUMNS:
        if col in points.columns:
            values = pd.to_numeric(points[col], errors="coerce").fillna(0).to_numpy()[inside]
            total = np.bincount(where[inside], weights=values, minlength=n)
            sums[col] = np.rint(total).astype(np.int64) if np.all(values == np.rint(values)) else total
    for pos, (col, values) in enumerate(sums.items()):
        out.insert(2 + pos, col, values)
    return out


def point_blocks(block_geoms, points) -> np.ndarray:
    """For each point, the position of the first block covering it, -1 for none."""
    found = np.full(len(points), -1, dtype=np.int64)
    if not len(points) or not len(block_geoms):
        return found
    pt, blk = shapely.STRtree(block_geoms).query(points, predicate="intersects")
    order = np.lexsort((blk, pt))
    pt, blk = pt[order], blk[order]
    first = np.unique(pt, return_index=True)[1]
    found[pt[first]] = blk[first]
    return found
