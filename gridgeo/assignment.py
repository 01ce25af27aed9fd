"""Which unit, at every level, holds each point: addresses, units and events to nested grids.

:func:`assign` answers, for every point, the code of the town, the village
and the grids that hold it, and how it was decided. The answer is the one an
exact covers-join gives with the boundary rule below; an :class:`AssignIndex`,
built once per grid version, gets it without an exact geometric test for
most points.

The boundary rule
-----------------
Level by level from the top, a point goes to the unit with the **smallest
code** among the units of that level that **cover** it (hold it inside or on
their boundary) and lie inside the unit it got at the level above. A point
on the edge shared by two grids therefore belongs to exactly one of them,
never to none and never to both, and the codes of a point always nest (each
is the prefix of the next). A point that no unit of a level covers (outside
a partial level such as level-3 enterprise plots, or in a gap of a faulty
plan) has no code at that level and none below it.

How the index answers fast
--------------------------
The grids' extent is cut into square cells (laid out in longitude/latitude,
the storage coordinates) whose size adapts to the grids: by default about
sixteen cells per distinct boundary segment over the extent, so the index
grows with the grids' vertices, not with their extent (tens of metres for a
city of small grids, hundreds for a province of counties; ``cell_m``
overrides it). A cell that no unit boundary touches lies wholly inside one
unit (or none) at every level: the index stores that answer, and every
point falling in the cell gets it from one array lookup. A cell that more
than two distinct boundary segments touch is cut into quarters, and those
again (a quadtree, at most twice), so the index is fine only where the
boundaries are busy. A quarter that no boundary touches gets one stored
answer. The lines through the one or two boundary segments that touch
most other cells and quarters cut them into at most four pieces that no
boundary crosses: the index stores each piece's answer, and a point gets the
answer of its piece when Shewchuk's filtered orientation test is certain of its
side of each line (its sign is then exactly the one of GEOS's robust
predicates). A piece's answer is read from the units on its side of the
segments (each ring's orientation says on which side of its segments a
unit's interior lies), without testing a point, on every level whose units
are valid polygons forming a valid coverage (read from the segments
themselves: each side of a segment taken by one ring at most, segments
meeting only at their ends, the same unit on both sides of every sector
around a vertex, no ring's vertex inside a unit; GEOS's coverage
validation decides where that reading is not certain); elsewhere it is
found by testing a sample point of the piece exactly. The other points, near
junctions or on a boundary, are tested exactly with GEOS prepared
point-in-polygon tests against the few units whose boundary touches their
cell. When a level is exactly tiled by the one below it
(checked on the boundary segments), only the lower level is tested.

Cells and quarters are widened by a millionth of their size when
boundaries are rasterised, so floating-point rounding can never put a point
in a cell that is wrongly taken for whole; a point finds its quarter from
its cell coordinates scaled by powers of two, which is exact.

Notes
-----
Containment is planar, in the storage coordinates (EPSG:4490 longitude and
latitude), exactly as a covers-join of the stored data in geopandas or
PostGIS: a point on an edge between two vertices is on the boundary when it
is on the straight segment between them in degrees. Only the snapping
distance (``tolerance_m``) is measured in metres, in
:func:`gridgeo.crs.metric_crs` of the grids.
"""

from __future__ import annotations

import functools
import hashlib

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgeo import crs as gcrs
from gridgeo.schema import DEFAULT_SCHEME, CodeScheme, check, level_names

__all__ = ["assign", "AssignIndex", "STATUSES", "DEFAULT_CELL_M"]

#: The values of the ``status`` column, in the order of its categories.
STATUSES = ("inside", "boundary", "snapped", "outside", "invalid")
_INSIDE, _BOUNDARY, _SNAPPED, _OUTSIDE, _INVALID = range(5)

#: Default side of an index cell: None, adapted to the grids (see :class:`AssignIndex`).
DEFAULT_CELL_M = None
# The adapted cell: about this many cells per distinct boundary segment over
# the extent, and segments crossing at most about this many cells each.
_CELLS_PER_SEGMENT = 16.0
_CROSSINGS_PER_SEGMENT = 4.0

ON_BOUNDARY_RULES = ("smallest-code",)

# Cells are widened by this fraction of their side when boundaries are
# rasterised: far above the rounding error of the cell arithmetic (~1e-13).
_MARGIN = 1e-6
# Boundary segments are cut into pieces at most this many cells long before
# the cells around each piece are enumerated.
_PIECE_CELLS = 8.0
# Pairs of (segment piece, cell) tested at once while rasterising.
_CHUNK_PAIRS = 4_000_000

# Shewchuk's error bound of the fast orient2d: (3 + 16 eps) eps, eps = 2**-53
_CCW_ERRBOUND = (3.0 + 16.0 * 2.0**-53) * 2.0**-53
# Where, as fractions across a cell, sample points are tried (order set below).
# Corners first: a line through a cell leaves corners on both sides, so the
# pieces are mostly found at once.
_SAMPLES = sorted(((u, v) for u in (0.01, 0.25, 0.5, 0.75, 0.99) for v in (0.01, 0.25, 0.5, 0.75, 0.99)),
                  key=lambda f: (-abs(f[0] - 0.5) - abs(f[1] - 0.5), f))
_SAMPLE_FRACTIONS = np.asarray(_SAMPLES).T  # rows f_u, f_v
# Sample points tried at once while looking for the pieces' samples, and
# tested exactly at once for their answers.
_CHUNK_SAMPLES = 2**16
_CHUNK_POINTS = 2**16

# Cells cut by at most this many distinct segments are answered piece by piece;
# busier ones are cut into quarters, at most _DEPTH times.
_FEW_SEGMENTS = 2
_DEPTH = 2

_NONE = -1  # no unit
_MULTI = -2  # in the interior of several units (overlapping units of one level)
_MIXED = -3  # crossed by a unit boundary

_GEOMETRY_NAMES = ("Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                   "MultiLineString", "MultiPolygon", "GeometryCollection")
# why a point is `invalid`; index 0 means it is not
_REASONS = (
    None,
    "missing geometry",
    "no usable longitude/latitude (missing, not a number or infinite)",
    "empty point",
    "coordinate is NaN",
    "coordinate is infinite",
    "coordinates could not be converted to CGCS2000",
) + tuple(f"not a point but a {kind}: assign takes points (use .representative_point() for areas)"
          for kind in _GEOMETRY_NAMES[1:])
_MISSING, _NO_LONLAT, _EMPTY, _NAN, _INF, _UNCONVERTIBLE = range(1, 7)
_NOT_POINT = 6  # + geometry type id (1..7)


# ----------------------------------------------------------------------------
# assign
# ----------------------------------------------------------------------------


def assign(points, grids, *, levels=None, tolerance_m=0.0, on_boundary="smallest-code",
           crs=None, lon=None, lat=None, name="points"):
    """Assign points to the unit holding them at every level of nested grids.

    The rule, stated once: level by level from the top, a point goes to the
    unit with the smallest code among those that cover it (inside or on the
    boundary) within the unit it got at the level above. The answer is
    identical to an exact covers-join with that rule.

    Parameters
    ----------
    points : GeoDataFrame, GeoSeries, DataFrame, or their dask(-geopandas) versions
        Points in any coordinate system :func:`gridgeo.crs.to_storage` knows
        (their CRS, or `crs`). A plain DataFrame gives longitude and latitude
        columns (found by name, or `lon`/`lat`) and needs `crs`.
    grids : GeoDataFrame or AssignIndex
        The grids (checked with :func:`gridgeo.schema.check`), or an index
        built from them once: build one with :class:`AssignIndex` and reuse it
        for every batch against the same grid version. Given grids, an
        in-memory call builds a lighter index for itself (no quarters, and
        the points in cells a boundary crosses tested exactly: quicker to
        build, slower per point), with the same answers.
    levels : list of str, optional
        The levels to return (default: every level of the grids).
    tolerance_m : float, default 0
        A point outside every unit but within this many metres of one is
        ``snapped``: given, level by level, to the nearest unit (ties to the
        smallest code) within the unit it got above, when one is that near.
    on_boundary : {"smallest-code"}
        The boundary rule; the only one so far is the one stated above.
    crs : str, int or pyproj.CRS, optional
        What the coordinates are: ``"wgs84"``, ``"cgcs2000"``, ``"gcj02"``
        (Amap, Tencent), ``"bd09"`` (Baidu) or anything pyproj accepts;
        overrides the frame's own CRS. Required for a plain DataFrame.
    lon, lat : str, optional
        The coordinate columns of a plain DataFrame.
    name : str, default "points"
        What to call the points in error messages (a file name).

    Returns
    -------
    pandas.DataFrame or dask.dataframe.DataFrame
        Indexed like `points`; a Dask DataFrame when `points` is one. Columns:

        - one per level (``town``, ``village``, ``grid1``, ...), categorical,
          holding the unit's code, missing where no unit holds the point;
        - ``status``: ``inside`` (covered, no tie), ``boundary`` (on the
          boundary of two or more units of one level: decided by the rule),
          ``snapped``, ``outside`` (no top-level unit covers it) or
          ``invalid``;
        - ``reason``: why a point is ``invalid`` (missing, empty or non-point
          geometry, NaN or infinite coordinates), missing otherwise.

    Raises
    ------
    gridgeo.schema.SchemaError
        If `grids` fails the schema, with the schema's message.
    gridgeo.crs.CRSError
        If the points' coordinate system is unknown or does not fit them.

    See Also
    --------
    AssignIndex : the reusable index; its ``nbytes`` says its size.
    gridgeo.stats.figures : counts and sums per unit from the assignment.

    Notes
    -----
    Bad points never fail the batch: they come back ``invalid`` with the
    reason. A point on the outer edge of the territory is covered by one unit
    only and is ``inside``. Containment is planar in EPSG:4490, as in any
    covers-join of the stored data (see the module notes).

    On Dask, the index is built once on the client and broadcast to every
    worker of the current ``dask.distributed`` client (a single shared task
    without one); the points stay partitioned.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> index = gridgeo.AssignIndex(s.grids)
    >>> pts = gpd.GeoDataFrame(geometry=[Point(118.47, 24.80), Point(118.0, 24.0)], crs=4490)
    >>> out = gridgeo.assign(pts, index)
    >>> out["status"].tolist()
    ['inside', 'outside']
    >>> out.loc[0, "grid2"].startswith(out.loc[0, "grid1"])
    True
    """
    if on_boundary not in ON_BOUNDARY_RULES:
        raise ValueError(f"on_boundary={on_boundary!r} is not a rule gridgeo knows: use one of "
                         f"{list(ON_BOUNDARY_RULES)}")
    tolerance_m = float(tolerance_m)
    if not (np.isfinite(tolerance_m) and tolerance_m >= 0):
        raise ValueError(f"tolerance_m should be a non-negative number of metres, got {tolerance_m!r}")
    if isinstance(grids, AssignIndex):
        index = grids
    else:  # built for this call: a lighter index pays off sooner, unless Dask spreads many batches
        index = AssignIndex(grids, _one_call=not _is_dask(points))
    levels = index._output_levels(levels)
    options = dict(levels=levels, tolerance_m=tolerance_m, crs=crs, lon=lon, lat=lat, name=name)
    if _is_dask(points):
        return _assign_dask(points, index, options)
    return _assign_frame(points, index, **options)


def _assign_frame(points, index, *, levels, tolerance_m, crs, lon, lat, name):
    """The in-memory assignment of one frame (one partition on Dask)."""
    labels, x, y, reason = _storage_points(points, crs=crs, lon=lon, lat=lat, name=name)
    usable = reason == 0
    usable = slice(None) if usable.all() else usable  # no copies in the usual case
    unit, tie = index._locate(x[usable], y[usable])
    status = np.full(len(reason), _INVALID, dtype=np.int8)
    status[usable] = np.where(unit < 0, _OUTSIDE, np.where(tie, _BOUNDARY, _INSIDE))
    if isinstance(usable, slice):
        deepest = unit
    else:
        deepest = np.full(len(reason), _NONE, dtype=unit.dtype)
        deepest[usable] = unit
    if tolerance_m > 0:
        _snap_outside(index, x, y, deepest, status, tolerance_m)
    return index._frame(deepest, status, reason, labels, levels)


def _is_dask(points) -> bool:
    return type(points).__module__.split(".")[0] in ("dask", "dask_geopandas")


def _assign_dask(points, index, options):
    meta = _assign_frame(points._meta, index, **options)
    return points.map_partitions(_assign_partition, _broadcast(index), options, meta=meta)


def _assign_partition(points, index, options):
    return _assign_frame(points, index, **options)


def _broadcast(index):
    """The index as every worker will get it: scattered to all workers of the
    current distributed client, else one task of the graph shared by all."""
    import dask

    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        return dask.delayed(index, pure=True)
    return client.scatter(index, broadcast=True, hash=True)


# ----------------------------------------------------------------------------
# points
# ----------------------------------------------------------------------------


def _storage_points(points, *, crs, lon, lat, name):
    """(index labels, x, y, reason): EPSG:4490 coordinates of every usable
    point (NaN elsewhere) and, per point, 0 or the code of why it is unusable."""
    missing = _MISSING
    if isinstance(points, pd.DataFrame) and not isinstance(points, gpd.GeoDataFrame):
        from gridgeo.io import read_table

        points = read_table(points, lon=lon, lat=lat, crs=crs, errors="keep")
        crs, missing = None, _NO_LONLAT
    elif not isinstance(points, (gpd.GeoDataFrame, gpd.GeoSeries)):
        raise TypeError(f"{name} should be a GeoDataFrame, GeoSeries or a DataFrame with longitude "
                        f"and latitude columns, got {type(points).__name__}")
    series = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    geoms = np.asarray(series.array, dtype=object)
    reason, x, y = _unusable(geoms, missing)
    usable = reason == 0
    if usable.any() and not _already_stored(x[usable], y[usable], series.crs, points.attrs, crs, name):
        candidates = series if usable.all() else series[usable]
        candidates = candidates.copy(deep=False)
        candidates.attrs = dict(points.attrs)  # what convert() recorded on the frame
        stored = np.asarray(gcrs.to_storage(candidates, source=crs, name=name).array, dtype=object)
        x[usable], y[usable] = shapely.get_x(stored), shapely.get_y(stored)
        lost = usable & ~(np.isfinite(x) & np.isfinite(y))
        reason[lost] = _UNCONVERTIBLE
    return points.index, x, y, reason


def _already_stored(x, y, frame_crs, attrs, source, name):
    """True when :func:`gridgeo.crs.to_storage` accepts the points as they are.

    It decides from the CRS and checks the bounds; for points the bounds are
    those of x and y, so two corner points with the same CRS get the same
    verdict (and the same error) without it reading a million geometries.
    """
    corners = gpd.GeoSeries(shapely.points([x.min(), x.max()], [y.min(), y.max()]), crs=frame_crs)
    corners.attrs = dict(attrs)
    return gcrs.to_storage(corners, source=source, name=name) is corners


def _unusable(geoms, missing):
    """(reason, x, y): per geometry 0 if it is a usable point, else the code
    of the reason; and the coordinates (NaN where unusable)."""
    try:
        x, y = shapely.get_x(geoms), shapely.get_y(geoms)  # NaN for None and non-points
    except shapely.errors.GEOSException:  # GEOS refuses the x of an empty point
        x, y = np.full(len(geoms), np.nan), np.full(len(geoms), np.nan)
        filled = shapely.get_num_coordinates(geoms) > 0
        x[filled], y[filled] = shapely.get_x(geoms[filled]), shapely.get_y(geoms[filled])
    reason = np.zeros(len(geoms), dtype=np.int8)
    bad = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)))
    if bad.size:
        kind = shapely.get_type_id(geoms[bad])
        point = kind == 0
        empty = point & (shapely.get_num_coordinates(geoms[bad]) == 0)
        infinite = np.isinf(x[bad]) | np.isinf(y[bad])
        reason[bad] = np.select(
            [kind < 0, kind > 0, empty, point & infinite, point],
            [missing, _NOT_POINT + kind, _EMPTY, _INF, _NAN])
        x[bad], y[bad] = np.nan, np.nan
    return reason, x, y


# ----------------------------------------------------------------------------
# snapping
# ----------------------------------------------------------------------------


def _snap_outside(index, x, y, deepest, status, tolerance_m):
    """Give outside points within `tolerance_m` of a unit to the nearest one,
    level by level (ties to the smallest code); changes `deepest`, `status`."""
    outside = np.flatnonzero(status == _OUTSIDE)
    if not outside.size:
        return
    tree, geoms, transformer = index._metric()
    mx, my = transformer.transform(x[outside], y[outside])
    pts = shapely.points(mx, my)
    near_pt, near_unit = tree.query(pts, predicate="dwithin", distance=tolerance_m)
    distance = shapely.distance(geoms[near_unit], pts[near_pt])
    order = np.lexsort((near_unit, distance, near_pt))
    unit, _ = index._top_down(near_pt[order], near_unit[order], len(outside), first=0)
    snapped = unit >= 0
    deepest[outside[snapped]] = unit[snapped]
    status[outside[snapped]] = _SNAPPED


# ----------------------------------------------------------------------------
# the index
# ----------------------------------------------------------------------------


class AssignIndex:
    """A precomputed, reusable index of one grid version for :func:`assign`.

    Build it once per published grid version and reuse it for every batch:
    the API keeps one per version, a notebook one per plan. It pickles
    (without the lazily built metric copy used for snapping), so Dask
    broadcasts it to workers.

    Parameters
    ----------
    grids : GeoDataFrame
        Units of one or more levels (``code``, ``name``, ``level``,
        ``parent``, polygons), in any CRS :func:`gridgeo.crs.to_storage`
        knows; checked with :func:`gridgeo.schema.check`.
    cell_m : float, optional
        Side of the index cells in metres. By default it adapts to the
        grids: about 16 cells per distinct boundary segment over the extent
        (and never so small that segments cross more than about 4 cells each
        on average), so the index's size follows the number of vertices, not
        the extent. Smaller cells send fewer points to the exact test and
        take more memory.
    scheme : CodeScheme
        The levels and code widths.
    name : str, default "grids"
        What to call the grids in error messages.

    Attributes
    ----------
    grids : GeoDataFrame
        The grids as checked, in EPSG:4490, ordered by level then code.
    levels : tuple of str
        The levels of the grids, top first.
    scheme : CodeScheme
        The levels and code widths the grids were checked against.
    codes : dict of str to pandas.Index
        The codes of each level, sorted: the categories of the level columns.
    nbytes : int
        Memory held by the index: its arrays, the polygons' coordinates and
        the grids' codes (not GEOS's prepared-geometry caches).
    token : str
        A fingerprint of the grids (codes, geometries, cell size).

    Raises
    ------
    gridgeo.schema.SchemaError
        If `grids` fails the schema.

    Notes
    -----
    The index's size follows the grids' vertices, not their extent. For all
    of Jinjiang (5,128 units, 235,000 vertices, 67,000 distinct boundary
    segments) the adapted cells are about 35 m and the index takes about
    14 MB (``nbytes``; pickled the same); it then assigns a million points to
    all five levels about 25 times faster than a spatial join at every level.
    Building it costs a few such assignments (about 0.3 s of CPU on a
    two-core machine under a load of 5 to 7: about a seventh finding that the
    tested levels are valid coverages, which the pieces' answers rely on,
    from their segments and GEOS's polygon validation; an eighth each the
    distinct segments and reading the pieces' answers from the segments'
    sides; a tenth each the faces between the rasterised boundaries and the
    quadtree; a twelfth the schema and CRS checks; the rest the rasterised
    boundaries, the cells' candidates and the exact tests of whole
    quarters): build it once per grid version and reuse it. Fujian's 9
    prefectures and 84 counties (132,000 vertices of real outlines) get
    cells of about 540 m, a 7 MB index and a build of about 0.15 s of CPU
    with a 64 MB peak, where the fixed 20 m raster took 161.8 s. The town
    sample's takes 1.0 MB. See ``benchmarks/assign.py``.

    Examples
    --------
    >>> import gridgeo
    >>> index = gridgeo.AssignIndex(gridgeo.sample.load().grids)
    >>> index.levels
    ('town', 'village', 'grid1', 'grid2', 'grid3')
    >>> index.nbytes < 20_000_000
    True
    """

    def __init__(self, grids, *, cell_m=DEFAULT_CELL_M, scheme: CodeScheme = DEFAULT_SCHEME,
                 name="grids", _one_call=False):
        if cell_m is not None:
            cell_m = float(cell_m)
            if not (np.isfinite(cell_m) and cell_m > 0):
                raise ValueError(f"cell_m should be a positive number of metres (or None to adapt it "
                                 f"to the grids), got {cell_m!r}")
        grids = gcrs.to_storage(check(grids, "grids", scheme=scheme, name=name), name=name)
        if not len(grids):
            raise ValueError(f"{name} holds no units: nothing to assign to")
        self.scheme = scheme
        self.levels = tuple(level_names(grids, scheme))
        self._units(grids, scheme)
        segments = _unique_segments(self._geoms)
        bounds = grids.total_bounds
        scale = _metres_per_degree(bounds)
        # an index for one call (see assign): no quarters and no pieces. A
        # city's million points put one or two points in a crossed cell, so
        # testing them exactly costs less than answering the cell's pieces.
        self._one_call = bool(_one_call)
        self._max_depth = 0 if _one_call else _DEPTH
        self.cell_m = _adapted_cell_m(segments[0], bounds, scale) if cell_m is None else cell_m
        self._raster = _Raster.over(bounds, self.cell_m, scale)
        self._rasterise(*segments)
        self._token = None
        self._metric_cache = None

    @property
    def token(self) -> str:
        """A fingerprint of the grids (codes, geometries, cell size), made on first use."""
        if self._token is None:
            self._token = self._fingerprint()
        return self._token

    # --- building ---------------------------------------------------------

    def _units(self, grids, scheme):
        """Units sorted by level, then code: a unit's number orders its code."""
        rank = pd.Index(self.levels).get_indexer(grids["level"])
        order = np.lexsort((grids["code"].to_numpy(dtype=object), rank))
        if (order[1:] > order[:-1]).all():  # in order already (as stores read them): no copy to make
            self.grids = grids.reset_index(drop=True)
        else:
            self.grids = grids.iloc[order].reset_index(drop=True)
        codes = self.grids["code"].to_numpy(dtype=object)
        self._level = rank[order].astype(np.int8)
        self._start = np.searchsorted(self._level, np.arange(len(self.levels) + 1))
        self._geoms = np.asarray(self.grids.geometry.array, dtype=object)
        shapely.prepare(self._geoms)
        self.codes = {lv: pd.Index(codes[self._start[i]:self._start[i + 1]], dtype="str", name=lv)
                      for i, lv in enumerate(self.levels)}
        # the unit's parent: the unit of the level above whose code prefixes it
        self._parent = np.full(len(codes), _NONE, dtype=np.int64)
        parents = self.grids["parent"]
        for i in range(1, len(self.levels)):
            width = scheme.width(self.levels[i - 1])
            mine = slice(self._start[i], self._start[i + 1])
            if scheme.parent_level(self.levels[i]) == self.levels[i - 1]:
                prefixes = parents.iloc[mine]  # checked: the prefix of the level above's width
            else:  # a level skipped (towns and grid2 alone): the prefix of the level above
                prefixes = pd.Index(codes[mine].astype(str)).str[:width]
            found = self.codes[self.levels[i - 1]].get_indexer(prefixes)
            self._parent[mine] = np.where(found >= 0, found + self._start[i - 1], _NONE)
        # ancestor[l, u]: u's unit at level l, by position within level l (-1 none);
        # column -1 answers for "no unit"
        n = len(codes)
        self._ancestor = np.full((len(self.levels), n + 1), _NONE, dtype=_small_int(n))
        current = np.arange(n)
        for i in range(len(self.levels) - 1, -1, -1):
            here = (current >= 0) & (self._level[np.maximum(current, 0)] == i)
            self._ancestor[i, :n][here] = current[here] - self._start[i]
            current = np.where(here, self._parent[np.maximum(current, 0)], current)

    def _rasterise(self, segments, seg_of, unit_of, left, firsts):
        """Label every cell: a unit (or none) when one answer holds for all of
        it, else the candidates an exact test must choose among. The
        segments are those of :func:`_unique_segments`."""
        raster = self._raster
        n = len(self._geoms)
        owned, multiplicity = _counted(seg_of * n + unit_of)
        owner_start = np.searchsorted(owned // n, np.arange(len(segments) + 1))
        owner = owned % n
        seg_cell, seg = _segment_cells(segments, raster)
        valid = _Validity(self._geoms, self._level, self._level_units(),
                          (segments, seg_of, unit_of, left, firsts, seg_cell, seg))
        self._first_tested = self._tiled_levels(owned[multiplicity % 2 == 1], valid)
        count = owner_start[seg + 1] - owner_start[seg]
        crossed_cell = np.repeat(seg_cell, count)
        crossed_unit = owner[_expand(owner_start[seg], count)]
        # the levels above the first tested follow from it (see _tiled_levels):
        # their boundaries are boundaries of the level below, so their crossed
        # cells are among its crossed cells, and a whole cell's unit above is
        # the ancestor of its unit there
        per_level, entries = [], []
        for i, units in enumerate(self._level_units()):
            if i < self._first_tested:
                continue
            here = self._level[crossed_unit] == i
            cells, level_units = crossed_cell[here], crossed_unit[here]
            if not valid[i]:
                cells, level_units = _with_overlapping(cells, level_units, self._geoms[units], units)
            cell_unit, multi = _fill_faces(cells, self._geoms[units], units, raster)
            per_level.append(cell_unit)
            if i >= self._first_tested:
                entries.append((cells, level_units, False))
                entries.append((*multi, True))
        mixed = np.zeros(raster.size, dtype=bool)
        for cell_unit in per_level:
            mixed |= cell_unit < _NONE
        self._cell = self._pure_answers(per_level, mixed)
        for cell_unit in per_level:  # certain answers of mixed cells
            cells = np.flatnonzero(mixed & (cell_unit >= 0))
            entries.append((cells, cell_unit[cells], True))
        self._candidates(entries, mixed)
        if self._one_call:
            self._no_pieces()
        else:
            sides = self._sides(len(segments), seg_of, unit_of, left, valid)
            self._refine(seg_cell, seg, segments, valid, sides, per_level)

    def _level_units(self):
        return [np.arange(self._start[i], self._start[i + 1]) for i in range(len(self.levels))]

    def _tiled_levels(self, boundary, valid):
        """How many top levels are exactly tiled by the level below them.

        Level l is tiled when every unit of level l + 1 has a parent, level
        l + 1 has no overlapping units and each unit's boundary is exactly
        the segments that an odd number of its children have on theirs: then
        a point is covered by a unit if and only if one of its children
        covers it, so the answer at level l + 1 gives the one at level l, and
        only the levels from the returned one down need testing.

        The boundaries (the second and third conditions) are checked first,
        top down, as far as they hold, and overlaps only on the last level of
        that chain: when it has none, no level above it has any. (The
        boundary condition makes each parent, as a region, the sum modulo 2
        of its children; children that do not overlap make that sum their
        union, so two parents overlapping would make two of their children
        overlap.) Only when that level has overlaps are the levels above
        checked one by one.

        `boundary`: the (segment * units + unit) keys of segments on a unit's
        boundary (an odd number of times). `valid`: a :class:`_Validity`.
        """
        n = len(self._geoms)
        segment, unit = boundary // n, boundary % n
        level = self._level[unit]
        chain = 0  # levels 0 .. chain - 1 have the boundaries of their children
        for i in range(len(self.levels) - 1):
            children = self._parent[self._start[i + 1]:self._start[i + 2]]
            if (children < 0).any():
                break
            mine = level == i + 1
            key, count = _counted(segment[mine] * n + self._parent[unit[mine]])
            if not np.array_equal(key[count % 2 == 1], boundary[level == i]):
                break
            chain = i + 1
        if valid[chain]:
            valid.follows(range(chain))
            return chain
        for i in range(chain):
            if not valid[i + 1]:
                return i
        return chain  # not reached: level `chain` has overlaps

    def _pure_answers(self, per_level, mixed):
        """The deepest unit of every cell with one answer per level, by the
        rule; -1 for none, _MIXED where an exact test is needed."""
        chosen = per_level[0].copy()
        deepest = chosen.copy()
        for cell_unit in per_level[1:]:
            fits = (cell_unit >= 0) & (chosen >= 0)
            fits[fits] = self._parent[cell_unit[fits]] == chosen[fits]
            chosen = np.where(fits, cell_unit, _NONE)
            deepest = np.where(fits, chosen, deepest)
        deepest = np.maximum(deepest, _NONE)
        deepest[mixed] = _MIXED
        return deepest.astype(_small_int(len(self._geoms), negative=_MIXED))

    def _candidates(self, entries, mixed):
        """The candidates of every mixed cell, sorted by cell then unit: a CSR
        of (unit, certain) by the mixed cell's rank among the mixed cells."""
        n = len(self._geoms)
        cells = np.concatenate([np.asarray(c, dtype=np.int64) for c, _, _ in entries])
        units = np.concatenate([np.asarray(u, dtype=np.int64) for _, u, _ in entries])
        certain = np.concatenate([np.full(len(c), flag) for c, _, flag in entries])
        # the groups come sorted by cell: a stable sort of their keys, with the
        # flag as lowest bit, merges them (np.unique's sort would start afresh)
        key = _counted((cells * n + units) * 2 + certain)[0]
        if (key[1:] >> 1 == key[:-1] >> 1).any():  # one pair with both flags: the first given holds
            key, first = np.unique(cells * n + units, return_index=True)
            key = key * 2 + certain[first]
        cells, units, certain = key // (2 * n), key // 2 % n, (key & 1).astype(bool)
        self._mixed = _Rank(mixed)
        self._cand_start = np.r_[np.searchsorted(cells, np.flatnonzero(mixed)), len(cells)].astype(
            _small_int(len(cells)))
        self._cand_unit = units.astype(_small_int(n))
        self._cand_certain = certain

    def _refine(self, seg_cell, seg, segments, valid, sides, per_level):
        """The quadtree of the mixed cells, and the answer of each piece of
        its leaves that one or two boundary segments alone cut.

        A mixed cell that more than `_FEW_SEGMENTS` distinct segments touch
        is cut into four quarters, and each quarter that more than that
        touch again, down to `_DEPTH` times: the index is fine only where the
        boundaries are busy (vertices, junctions), coarse elsewhere. A
        quarter touched by no segment lies wholly inside the same units: one
        exact answer holds for all of it. The lines through the one or two
        segments touching a leaf cut it into at most four convex pieces,
        told apart by the side of each line a point is on; no boundary runs
        inside a piece (it lies on the lines), so each piece lies wholly
        inside the same units: one answer per piece holds for every point
        whose sides are certain. The answer is read from the units on the
        sides of the segments (:meth:`_piece_answers`: no point is tested,
        except one per leaf and level where a leaf no boundary of that level
        touches lies in a cell one crosses); where the sides cannot tell (the
        units of a level overlap or are not valid polygons, two lines of one
        level whose segments cross the other's line), it is found from a
        sample point of the piece tested exactly. Leaves still busier than
        that (junctions of three or more segments) are tested exactly. A
        segment shared by several units counts once. `sides`: see
        :meth:`_sides`; `per_level`: each tested level's answer per cell
        (see :func:`_fill_faces`).
        """
        raster = self._raster
        ends = (*raster.cell_space(segments[:, 0], segments[:, 1]),
                *raster.cell_space(segments[:, 2], segments[:, 3]))
        # the tree, level by level: pairs (node, segment) sorted by node
        nodes = self._mixed.count
        node, line = self._mixed.rank(seg_cell), seg
        cells = np.flatnonzero(_Rank.flags(self._mixed))
        fine = [(cells % raster.nx, cells // raster.nx)]  # cell coordinates of each node at its depth
        depth_start = [0, nodes]
        child = [np.full(nodes, -1, dtype=np.int64)]
        pairs = [(node, line)]
        for depth in range(1, self._max_depth + 1):
            count = np.bincount(node - depth_start[-2], minlength=depth_start[-1] - depth_start[-2])
            busy = np.flatnonzero(count > _FEW_SEGMENTS)
            if not busy.size:
                break
            first = depth_start[-1]
            child[-1][busy] = first + 4 * np.arange(len(busy))
            fu, fv = fine[-1]
            quarter = np.arange(4)
            fine.append(((2 * fu[busy][:, None] + quarter % 2).ravel(), (2 * fv[busy][:, None] + quarter // 2).ravel()))
            # the pairs of the busy nodes, each tried against the four quarters
            splits = np.full(depth_start[-1] - depth_start[-2], -1, dtype=np.int64)
            splits[busy] = np.arange(len(busy))
            parent = splits[node - depth_start[-2]]
            keep = parent >= 0
            parent, line = parent[keep], line[keep]
            sub = np.repeat(parent * 4, 4) + np.tile(quarter, len(parent))
            line = np.repeat(line, 4)
            touched = _touches(*(np.take(e, line) * 2.0**depth for e in ends), np.take(fine[-1][0], sub),
                               np.take(fine[-1][1], sub))
            order = np.argsort(sub[touched], kind="stable")
            node, line = first + sub[touched][order], line[touched][order]
            pairs.append((node, line))
            depth_start.append(first + 4 * len(busy))
            child.append(np.full(4 * len(busy), -1, dtype=np.int64))
        self._depth = len(depth_start) - 2
        total = depth_start[-1]
        self._child = np.concatenate(child).astype(_small_int(total))
        node = np.concatenate([n for n, _ in pairs])
        line = np.concatenate([ln for _, ln in pairs])
        depth = np.repeat(np.arange(len(depth_start) - 1), np.diff(depth_start))
        fu = np.concatenate([f[0] for f in fine])
        fv = np.concatenate([f[1] for f in fine])
        # the base cell's slot of every node (its candidates)
        parent = np.arange(total)
        inner = np.flatnonzero(self._child >= 0)
        parent[self._child[inner].astype(np.int64)[:, None] + np.arange(4)] = inner[:, None]
        slot = np.arange(total)
        for _ in range(self._depth):
            slot = parent[slot]
        count = np.bincount(node, minlength=total)
        first = np.cumsum(count) - count  # pairs are sorted by node
        leaf = (self._child < 0) & (count <= _FEW_SEGMENTS)
        lines = np.full((total, _FEW_SEGMENTS), -1, dtype=np.int64)
        for j in range(_FEW_SEGMENTS):
            has = leaf & (count > j)
            lines[has, j] = line[first[has] + j]
        answer = np.full((total, 2**_FEW_SEGMENTS), _MIXED,  # _MIXED: tested exactly
                         dtype=np.int32 if len(self._geoms) < 2**31 else np.int64)

        def at(rows, f_u, f_v):
            return raster.points_in_fine(fu[rows], fv[rows], depth[rows], f_u, f_v)

        # quarters no segment touches: one answer for all of it
        whole = np.flatnonzero(leaf & (count == 0) & (depth > 0))
        # leaves cut by one or two lines: one answer per piece, from the sides
        # of the segments where they tell, else found at the first of
        # _SAMPLES certainly in it
        cut = np.flatnonzero(leaf & (count > 0))
        # (rows are gathered with np.take: numpy's fancy indexing of rows is several times slower)
        cut_lines = np.take(lines, cut, axis=0)
        derived = self._piece_answers(segments, cut_lines, slot[cut], cells[slot[cut]],
                                      lambda rows: at(cut[rows], 0.5, 0.5), sides, per_level)
        answer[cut] = derived
        pieces = 2 ** (cut_lines >= 0).sum(axis=1)
        untold = ((derived == _MIXED) & (np.arange(2**_FEW_SEGMENTS) < pieces[:, None])).any(axis=1)
        cut = cut[untold]
        sample = _piece_samples(segments, np.take(lines, cut, axis=0), fu[cut], fv[cut], depth[cut], raster)
        rows, piece = np.nonzero(sample >= 0)
        # the points to answer: (node, piece, which sample), whole quarters by their centre
        target = np.r_[whole, cut[rows]]
        piece = np.r_[np.zeros(len(whole), dtype=np.int8), piece.astype(np.int8)]
        centre = np.full(len(whole), _SAMPLES.index((0.5, 0.5)), dtype=np.int8)
        which = np.r_[centre, sample[rows, piece[len(whole):]]]
        del rows, sample
        # these points lie off every boundary (no segment touches a whole
        # quarter, and a sample is certainly off its leaf's lines)
        single = [i for i in range(self._first_tested, len(self.levels)) if valid[i]]
        for lo in range(0, len(target), _CHUNK_POINTS):  # in chunks: the candidates of all would be large
            block = slice(lo, lo + _CHUNK_POINTS)
            x, y = at(target[block], *_SAMPLE_FRACTIONS[:, which[block]])
            deepest, tie = self._exact(x, y, slot[target[block]], single=single)
            # a tie off every boundary means overlapping units: left to the exact test
            answer[target[block], piece[block]] = np.where(tie, _MIXED, deepest)
        useful = (answer != _MIXED).any(axis=1)
        lines[~useful] = -1
        used = np.zeros(len(segments) + 1, dtype=bool)  # (a flag per segment: no sort)
        used[lines] = True
        used = np.flatnonzero(used[:-1])
        self._segments = np.ascontiguousarray(np.take(segments, used, axis=0).T)  # ax, ay, bx, by of answered leaves
        renumber = np.full(len(segments) + 1, -1, dtype=_small_int(len(used)))  # row -1: no line
        renumber[used] = np.arange(len(used))
        self._fast_lines = renumber[lines]
        self._fast_answer = answer.astype(_small_int(len(self._geoms), negative=_MIXED))

    def _sides(self, n_segments, seg_of, unit_of, left, valid):
        """The unit of each tested level on each side of each distinct segment.

        Returns an array of shape (tested levels, segments, 2): at ``[i, s,
        1]`` the unit of the i-th tested level whose interior lies left of
        segment s (from a to b), at ``[i, s, 0]`` the one right of it, _NONE
        where no unit of the level has s on that side of its boundary. A
        level whose units overlap (not a valid coverage: its units' shared
        edges then match segment for segment) or are not all valid polygons
        (whose rings' orientation then says where their interiors are) is
        _MIXED throughout: its sides tell nothing.
        """
        first = self._first_tested
        tested = len(self.levels) - first
        side_unit = np.full((tested, n_segments, 2), _NONE, dtype=np.int32 if len(self._geoms) < 2**31 else np.int64)
        level = self._level[unit_of].astype(np.int64) - first
        mine = level >= 0
        key = (level[mine] * n_segments + seg_of[mine]) * 2 + left[mine]
        side_unit.reshape(-1)[key] = unit_of[mine]
        twice = np.bincount(key, minlength=side_unit.size).reshape(tested, -1) > 1
        for i in range(tested):
            if twice[i].any() or not valid[first + i] or not valid.polygons_valid(first + i):
                side_unit[i] = _MIXED
        return side_unit

    def _piece_answers(self, segments, lines, slot, cells, centre, sides, per_level):
        """The deepest unit of each piece of leaves cut by one or two lines,
        read from the units on the sides of their segments, or _MIXED where
        the sides do not tell. Shape (leaves, 2**_FEW_SEGMENTS), pieces
        numbered as in :func:`_piece`.

        Level by level, on a level whose sides tell (see :meth:`_sides`; its
        units then neither overlap nor share an edge but segment for segment):

        - no line of the leaf is a boundary of the level: the leaf lies in
          one unit of the level or none, the one of its whole cell, else the
          one covering the leaf's centre (an exact test of one point);
        - one is: it crosses the whole leaf (a boundary ending in the leaf
          goes on along a second segment of the level touching the leaf), so
          each piece lies in the unit on its side of that line;
        - both are: a piece on the far side of one line from the other
          segment lies in the unit on that side of that line; the piece
          between them (the sector of a shared vertex, or a strip) in the
          unit on its side of both, which must agree. The side of one line
          that the other segment lies on is known when both its ends are
          certainly on that side, or one is and the other is a shared end;
          else the sides do not tell.

        Then the rule, top down: a piece's unit at a level must lie in its
        unit at the level above (off every boundary, a valid level holds a
        point in one unit at most). `centre(rows)` gives the lon/lat of the
        centres of the leaves `rows`.
        """
        first = self._first_tested
        n = len(lines)
        two = np.flatnonzero(lines[:, 1] >= 0)
        line0, line1 = lines[:, 0], lines[two, 1]
        bit = np.arange(2**_FEW_SEGMENTS)
        s0, s1 = bit & 1, bit >> 1
        # per leaf of `two`, the bit of each line's side holding the other segment (-1 untold, -2 not yet found)
        toward = np.full((len(two), 2), -2, dtype=np.int8)
        chosen = deepest = None
        for i in range(len(sides)):
            side_unit = sides[i]
            if side_unit[0, 0] == _MIXED:  # a level whose sides tell nothing
                answer = np.full((n, len(bit)), _MIXED, dtype=side_unit.dtype)
            else:
                on0 = np.take(side_unit, line0, axis=0)
                on1 = np.take(side_unit, line1, axis=0)
                own0 = (on0[:, 0] != _NONE) | (on0[:, 1] != _NONE)
                own1 = np.zeros(n, dtype=bool)
                own1[two] = (on1[:, 0] != _NONE) | (on1[:, 1] != _NONE)
                whole = per_level[i][cells].astype(side_unit.dtype)
                inside = np.flatnonzero(~own0 & ~own1 & (whole < _NONE))
                if inside.size:  # leaves in a cell this level crosses elsewhere
                    whole[inside] = self._covering(*centre(inside), slot[inside], first + i)
                answer = np.repeat(whole[:, None], len(bit), axis=1)
                rows = np.flatnonzero(own0 & ~own1)
                answer[rows] = np.take(on0, rows, axis=0)[:, s0]
                rows = np.flatnonzero(own1[two] & ~own0[two])  # of `two`
                answer[two[rows]] = np.take(on1, rows, axis=0)[:, s1]
                rows = np.flatnonzero(own1[two] & own0[two])
                new = rows[toward[rows, 0] == -2]  # sides found once for all levels
                if new.size:
                    first_segment = np.take(segments, line0[two[new]], axis=0)
                    second_segment = np.take(segments, line1[new], axis=0)
                    toward[new, 0] = _side_of(first_segment, second_segment)
                    toward[new, 1] = _side_of(second_segment, first_segment)
                if rows.size:
                    answer[two[rows]] = _between(toward[rows, 0], toward[rows, 1], np.take(on0, two[rows], axis=0),
                                                 np.take(on1, rows, axis=0))
            if chosen is None:
                chosen, deepest = answer, answer.copy()
                continue
            held = chosen >= 0
            fits = held & (answer >= 0) & (np.take(self._parent, np.maximum(answer, 0)) == chosen)
            untold_here = held & (answer == _MIXED)
            deepest = np.where(fits, answer, np.where(untold_here, _MIXED, deepest))
            chosen = np.where(fits, answer, np.where(untold_here, _MIXED, np.where(held, _NONE, chosen)))
        deepest[(lines[:, 1] < 0)[:, None] & (s1 > 0)] = _MIXED  # no such piece
        return deepest

    def _covering(self, x, y, slot, level):
        """The unit of `level` covering each point, among the candidates of
        its mixed cell (`slot`), or _NONE: exact tests, each point's
        candidates in code order until one covers it (the level's units must
        not overlap, and the points lie off its boundaries)."""
        start = self._cand_start[slot].astype(np.int64)
        count = self._cand_start[slot + 1] - start
        point = np.repeat(np.arange(len(x)), count)
        entry = _expand(start, count)
        unit = self._cand_unit[entry].astype(np.int64)
        here = np.flatnonzero(self._level[unit] == level)
        point, unit, covers = point[here], unit[here], self._cand_certain[entry[here]]
        # the level's units do not overlap (its sides are read): one covers a point at most
        self._first_cover(np.flatnonzero(~covers), np.flatnonzero(covers), point, unit, covers, x, y)
        held = np.flatnonzero(covers)  # by point, then code
        first = held[np.r_[True, point[held][1:] != point[held][:-1]]] if held.size else held
        out = np.full(len(x), _NONE, dtype=np.int64)
        out[point[first]] = unit[first]
        return out

    def _no_pieces(self):
        """The mixed cells of an index for one call: every one a leaf, its
        points tested exactly against its candidates."""
        self._depth = 0
        self._child = np.full(self._mixed.count, -1, dtype=np.int8)
        self._segments = np.zeros((4, 0))
        self._fast_lines = np.full((0, _FEW_SEGMENTS), -1, dtype=np.int8)
        self._fast_answer = np.full((0, 2**_FEW_SEGMENTS), _MIXED, dtype=np.int8)

    def _fingerprint(self) -> str:
        digest = hashlib.sha1(repr((self.levels, self.cell_m)).encode())
        for codes in self.codes.values():
            digest.update("\n".join(codes).encode())
        digest.update(b"".join(shapely.to_wkb(self._geoms)))
        return digest.hexdigest()

    # --- answering --------------------------------------------------------

    def _locate(self, x, y):
        """(deepest unit, tie) of EPSG:4490 points by the rule: the unit's
        number (-1 for none) and whether a boundary rule decided it."""
        cell = self._raster.cell_of(x, y)
        deepest = self._cell[cell]  # the raster's small integers hold every unit's number
        tie = np.zeros(len(x), dtype=bool)
        mixed = np.flatnonzero(deepest == _MIXED)
        if mixed.size:
            deepest[mixed], tie[mixed] = self._near_boundary(x[mixed], y[mixed], cell[mixed])
        return deepest, tie

    def _near_boundary(self, x, y, cell):
        """The rule for points in mixed cells: by the piece of the cell they
        are certainly in when one or two segments cut it, else by exact tests."""
        slot = self._mixed.rank(cell)
        if not len(self._fast_lines):  # an index without pieces (for one call)
            return self._exact(x, y, slot)
        node = self._leaf(x, y, slot)
        deepest = np.full(len(x), _MIXED, dtype=np.int64)
        tie = np.zeros(len(x), dtype=bool)
        fast = np.flatnonzero(self._fast_lines[node, 0] >= 0)
        piece = _piece(self._segments, np.take(self._fast_lines, node[fast], axis=0), x[fast], y[fast])
        known = piece >= 0
        deepest[fast[known]] = self._fast_answer[node[fast[known]], piece[known]]
        whole = np.flatnonzero(self._fast_lines[node, 0] < 0)  # quarters no segment touches
        deepest[whole] = self._fast_answer[node[whole], 0]
        rest = np.flatnonzero(deepest == _MIXED)
        deepest[rest], tie[rest] = self._exact(x[rest], y[rest], slot[rest])
        return deepest, tie

    def _leaf(self, x, y, slot):
        """The quadtree leaf holding each point of the mixed cells `slot`:
        its quarter at each depth, from the same cell coordinates (scaled by
        powers of two, which is exact) that placed it in its cell."""
        node = slot.astype(np.int64)
        if not self._depth:
            return node
        u, v = self._raster.cell_space(x, y)
        for depth in range(1, self._depth + 1):
            down = np.flatnonzero(self._child[node] >= 0)
            if not down.size:
                break
            scale = 2.0**depth
            quarter = (np.floor(u[down] * scale).astype(np.int64) & 1) + 2 * (np.floor(v[down] * scale).astype(np.int64) & 1)
            node[down] = self._child[node[down]] + quarter
        return node

    def _exact(self, x, y, slot, single=()):
        """The rule, applied with exact tests against the candidates of each
        point's mixed cell (`slot`: its rank among the mixed cells).

        Level by level from the first tested, only the candidates inside the
        unit a point got at the level above are tested: the rule could not
        choose the others. On the levels in `single`, at most one unit covers
        any of the points (the level's units do not overlap and the points
        lie off every boundary): there a point's candidates are tested in
        code order only until one covers it."""
        start = self._cand_start[slot]
        count = self._cand_start[slot + 1] - start
        point = np.repeat(np.arange(len(x)), count)
        entry = _expand(start, count)
        unit = self._cand_unit[entry].astype(np.int64)
        covers = self._cand_certain[entry].copy()
        level = self._level[unit]
        chosen = np.full(len(x), _NONE, dtype=np.int64)
        for i in range(self._first_tested, len(self.levels)):
            here = level == i
            if i > self._first_tested:
                here &= (self._parent[unit] == chosen[point]) & (chosen[point] >= 0)
            test = np.flatnonzero(here & ~covers)
            if i in single:
                self._first_cover(test, here & covers, point, unit, covers, x, y)
            else:
                covers[test] = shapely.intersects_xy(self._geoms[unit[test]], x[point[test]], y[point[test]])
            held = np.flatnonzero(here & covers)  # by point, then code: the first of a point is chosen
            first = held[np.r_[True, point[held][1:] != point[held][:-1]]] if held.size else held
            chosen = np.full(len(x), _NONE, dtype=np.int64)
            chosen[point[first]] = unit[first]
        return self._top_down(point[covers], unit[covers], len(x))

    def _first_cover(self, test, held, point, unit, covers, x, y):
        """Test the entries `test` (sorted by point, then code) in rounds, each
        point's next candidate per round, until one covers it or none is
        left; points already `held` (by a certain candidate) are not tested.
        Sets `covers` of the entries tested."""
        done = np.zeros(len(x), dtype=bool)
        done[point[held]] = True
        p = point[test]
        starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]]) if test.size else test
        rank = np.arange(len(test)) - np.repeat(starts, np.diff(np.r_[starts, len(test)]))
        for k in range(int(rank.max()) + 1 if test.size else 0):
            now = test[rank == k]
            now = now[~done[point[now]]]
            covers[now] = shapely.intersects_xy(self._geoms[unit[now]], x[point[now]], y[point[now]])
            done[point[now[covers[now]]]] = True

    def _top_down(self, point, unit, n, first=None):
        """Apply the rule to the (point, covering unit) pairs, sorted by point
        and, within a point, by preference: the deepest unit of every point
        (-1 for none) and whether two or more units of a level could hold it.

        The rule starts at level `first` (default: the first level tested,
        the ones above following from it) with no parent to lie in.
        """
        first = self._first_tested if first is None else first
        deepest = np.full(n, _NONE, dtype=np.int64)
        chosen = np.full(n, _NONE, dtype=np.int64)
        tie = np.zeros(n, dtype=bool)
        level = self._level[unit]
        for i in range(first, len(self.levels)):
            here = level == i
            if i > first:
                here &= (chosen[point] >= 0) & (self._parent[unit] == chosen[point])
            p, u = point[here], unit[here]
            chosen = np.full(n, _NONE, dtype=np.int64)
            if p.size:
                first_of_point = np.r_[True, p[1:] != p[:-1]]
                chosen[p[first_of_point]] = u[first_of_point]
                tie |= np.bincount(p, minlength=n) > 1
            deepest = np.where(chosen >= 0, chosen, deepest)
        return deepest, tie

    def _frame(self, deepest, status, reason, labels, levels):
        """The result: a categorical code column per level, status, reason."""
        columns = {}
        for lv in levels:
            position = self._ancestor[self.levels.index(lv)][deepest]
            columns[lv] = pd.Categorical.from_codes(position, categories=self.codes[lv], validate=False)
        columns["status"] = pd.Categorical.from_codes(status, categories=list(STATUSES), validate=False)
        reasons = pd.Index(_REASONS[1:], dtype="str")
        columns["reason"] = pd.Categorical.from_codes(reason.astype(np.int64) - 1, categories=reasons,
                                                      validate=False)
        return pd.DataFrame(columns, index=labels)

    def _output_levels(self, levels):
        if levels is None:
            return self.levels
        if isinstance(levels, str):
            levels = [levels]
        unknown = [lv for lv in levels if lv not in self.levels]
        if unknown:
            raise KeyError(f"level(s) {unknown} are not in the grids: they hold {list(self.levels)}")
        return tuple(lv for lv in self.levels if lv in levels)

    def _metric(self):
        """(STRtree, geometries, transformer) in the grids' metric CRS, for
        snapping; built on first use and not pickled."""
        if self._metric_cache is None:
            metric = gcrs.metric_crs(self._raster.bounds)
            series = gpd.GeoSeries(self._geoms, crs=gcrs.STORAGE_CRS).to_crs(metric)
            geoms = np.asarray(series.array, dtype=object)
            transformer = _from_storage(metric.srs)
            self._metric_cache = (shapely.STRtree(geoms), geoms, transformer)
        return self._metric_cache

    # --- size, pickling ---------------------------------------------------

    @property
    def nbytes(self) -> int:
        arrays = (self._cell, self._mixed.words, self._mixed.before, self._cand_start, self._cand_unit,
                  self._cand_certain, self._child, self._fast_lines, self._fast_answer, self._segments,
                  self._level, self._parent, self._ancestor, self._start)
        fixed = self.__dict__.get("_fixed_bytes")
        if fixed is None:  # the polygons and the text never change: measured once (a cache measures often)
            coordinates = int(shapely.get_num_coordinates(self._geoms).sum()) * 16
            attributes = self.grids.drop(columns=self.grids.geometry.name).memory_usage(deep=True).sum()
            codes = sum(c.memory_usage(deep=True) for c in self.codes.values())
            fixed = self._fixed_bytes = int(coordinates + attributes + codes)
        return int(sum(a.nbytes for a in arrays) + fixed)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_metric_cache"] = None
        del state["_geoms"]  # the polygons of `grids`, pickled once with it
        return state

    def __setstate__(self, state):
        if "_child" not in state:  # pickled before the quadtree: its mixed cells are all leaves
            state["_depth"] = 0
            state["_child"] = np.full(state["_mixed"].count, -1, dtype=np.int32)
        if "token" in state:  # pickled before the token was made on first use
            state["_token"] = state.pop("token")
        self.__dict__.update(state)
        self._geoms = np.asarray(self.grids.geometry.array, dtype=object)
        shapely.prepare(self._geoms)

    def __dask_tokenize__(self):
        return ("gridgeo.AssignIndex", self.token)

    def __repr__(self) -> str:
        units = ", ".join(f"{len(c)} {lv}" for lv, c in self.codes.items())
        return (f"<AssignIndex {units}; {self._raster.nx}x{self._raster.ny} cells of "
                f"{self.cell_m:g} m, {self._mixed.count:,} crossed by a boundary, "
                f"{len(self._child) - self._mixed.count:,} quarters; {self.nbytes / 1e6:.1f} MB>")


class _Validity:
    """Per level, whether its units overlap (``valid[i]`` is True when
    none do), found on first asking, or known to follow from the level below
    (:meth:`AssignIndex._tiled_levels`). A valid coverage has no overlaps;
    one whose edges merely do not match counts as overlapping, which only
    costs speed.

    A level of valid polygons (GEOS's is_valid, asked once per level) is
    first read from its distinct boundary segments
    (:func:`_certainly_a_coverage`: array arithmetic and one exact point
    test per ring); only where that is not certain does GEOS's coverage
    validation decide.
    `segments`: the distinct segments and ring entries of
    :func:`_unique_segments`, with the (cell, segment) pairs of
    :func:`_segment_cells`.
    """

    def __init__(self, geoms, level, level_units, segments):
        self._geoms, self._level, self._units, self._known = geoms, level, level_units, {}
        self._segments = segments
        self._polygons = {}

    def __getitem__(self, i):
        if i not in self._known:
            units = self._units[i]
            self._known[i] = len(units) < 2 or self.certain(i) or bool(shapely.coverage_is_valid(self._geoms[units]))
        return self._known[i]

    def polygons_valid(self, i):
        """Whether every unit of level i is a valid polygon (GEOS's is_valid)."""
        if i not in self._polygons:
            self._polygons[i] = bool(shapely.is_valid(self._geoms[self._units[i]]).all())
        return self._polygons[i]

    def certain(self, i):
        """Whether level i is certainly a valid coverage, read from its segments."""
        if not self.polygons_valid(i):
            return False
        segments, seg_of, unit_of, left, (x, y, ring_unit), seg_cell, cell_seg = self._segments
        mine = np.flatnonzero(self._level[unit_of] == i)
        rings = np.flatnonzero(self._level[ring_unit] == i)
        return _certainly_a_coverage(self._geoms[self._units[i]], segments, np.take(seg_of, mine),
                                     np.take(unit_of, mine), np.take(left, mine), seg_cell, cell_seg,
                                     (np.take(x, rings), np.take(y, rings)))

    def follows(self, levels):
        for i in levels:
            self._known[i] = True


class _Rank:
    """Which cells are mixed, as a bit per cell, and how many mixed cells come
    before a cell (a rank directory): the slot of a mixed cell in the
    per-mixed-cell arrays, in constant time and 1.4 bits per cell."""

    def __init__(self, flags):
        padded = np.zeros(-(-len(flags) // 64) * 64, dtype=bool)
        padded[:len(flags)] = flags
        self.words = np.packbits(padded, bitorder="little").view("<u8")
        counts = np.bitwise_count(self.words).astype(np.int64)
        self.before = (np.cumsum(counts) - counts).astype(np.int32 if counts.sum() < 2**31 else np.int64)
        self.count = int(counts.sum())

    @staticmethod
    def flags(rank):
        """Which cells are mixed, as booleans (padded to a multiple of 64)."""
        return np.unpackbits(rank.words.view(np.uint8), bitorder="little").astype(bool)

    def rank(self, cells):
        word = cells >> 6
        below = (np.uint64(1) << (cells & 63).astype(np.uint64)) - np.uint64(1)
        return self.before[word] + np.bitwise_count(self.words[word] & below).astype(np.int64)


def _small_int(largest, negative=-1):
    """The smallest signed integer type holding `largest` and `negative`."""
    return np.result_type(np.min_scalar_type(-abs(int(largest)) - 1), np.min_scalar_type(negative))


# ----------------------------------------------------------------------------
# a coverage, read from its segments
# ----------------------------------------------------------------------------

# Two directions at one vertex closer than this (radians) are not ordered by
# their angles (whose error is below 1e-15): such a vertex is left to GEOS.
_ANGLE_GAP = 1e-12


def _certainly_a_coverage(polygons, segments, seg_of, unit_of, left, seg_cell, cell_seg, firsts):
    """True when the units certainly form a valid coverage (no two overlap,
    and where they meet they share whole segments), read from their
    distinct boundary segments; False when that is not certain.

    The units must be valid polygons (each of their boundary segments then
    has their interior on one side, the side its ring's orientation says).
    They are then a valid coverage when all of these hold:

    1. no side of a distinct segment is the interior side of two rings (a
       segment is on one ring, or on two with their interiors on either side);
    2. two distinct segments meet, if at all, at an end of both (no crossing,
       no overlap, no end inside another segment): tested, with Shewchuk's
       filtered orientation, on every pair of segments touching a common
       raster cell (`seg_cell`, `cell_seg`: the pairs of
       :func:`_segment_cells`), which holds any point two segments share;
    3. around every vertex, the unit on the counter-clockwise side of each
       segment is the unit on the clockwise side of the next one (the sector
       between them lies in one unit or none);
    4. no ring's first vertex lies in the interior of a unit (GEOS's exact
       point-in-polygon test, one point per ring).

    With 1 and 2 the segments form a plane graph and each face's units are
    constant; with 3, along every boundary walk of a face the unit on its
    side is one and the same; a unit covering the face that is not that one
    would then hold the walk's whole connected component in its interior
    (3 forbids it to touch it), and with it a ring's first vertex, which 4
    forbids. So a face lies in one unit at most, the one its segments'
    sides name.

    Where a test is not certain (a filtered orientation of zero, two
    directions at a vertex within `_ANGLE_GAP`), False is returned and GEOS's
    validation decides.

    `seg_of`, `unit_of`, `left`: the ring entries of these units, `firsts`
    the x and y of their rings' first vertices (see :func:`_unique_segments`).
    """
    n_segments = len(segments)
    key = seg_of * 2 + left
    if (np.bincount(key, minlength=2 * n_segments) > 1).any():  # 1: a side taken twice
        return False
    side = np.full(2 * n_segments, _NONE, dtype=np.int64)
    side[key] = unit_of
    side = side.reshape(-1, 2)  # [s, 0]: the unit right of a -> b, [s, 1] left
    mine = np.zeros(n_segments, dtype=bool)
    mine[seg_of] = True
    if not _segments_meet_at_ends(segments, mine, seg_cell, cell_seg):  # 2
        return False
    if not _sectors_agree(segments, np.flatnonzero(mine), side):  # 3
        return False
    firsts = shapely.points(*firsts)  # 4
    point, unit = shapely.STRtree(polygons).query(firsts)  # boxes; then the prepared polygons' exact tests
    return not shapely.contains_properly(np.take(polygons, unit), np.take(firsts, point)).any()


def _segments_meet_at_ends(segments, mine, seg_cell, cell_seg):
    """Whether every two of the segments `mine` that touch a common cell
    certainly meet at most at an end of both."""
    keep = np.flatnonzero(mine[cell_seg])
    cell, seg = np.take(seg_cell, keep), np.take(cell_seg, keep)
    # the pairs (i < j) of segments in each cell
    start = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
    size = np.diff(np.r_[start, len(cell)])
    later = np.repeat(start + size, size) - np.arange(len(cell)) - 1  # entries after each in its cell
    first = np.repeat(np.arange(len(cell)), later)
    second = _expand(np.arange(1, len(cell) + 1), later)
    s = np.take(segments, np.take(seg, first), axis=0)
    t = np.take(segments, np.take(seg, second), axis=0)
    # boxes apart: never meet (exact comparisons; ax <= bx in every row)
    near = np.flatnonzero(~((s[:, 2] < t[:, 0]) | (t[:, 2] < s[:, 0])
                            | (np.maximum(s[:, 1], s[:, 3]) < np.minimum(t[:, 1], t[:, 3]))
                            | (np.maximum(t[:, 1], t[:, 3]) < np.minimum(s[:, 1], s[:, 3]))))
    sax, say, sbx, sby = np.take(s, near, axis=0).T
    tax, tay, tbx, tby = np.take(t, near, axis=0).T
    aa = (sax == tax) & (say == tay)
    ab = (sax == tbx) & (say == tby)
    ba = (sbx == tax) & (sby == tay)
    bb = (sbx == tbx) & (sby == tby)
    shared = aa | ab | ba | bb
    # sharing an end c: they meet elsewhere only if their other ends u, w lie
    # on one ray from c; certainly not when u, c, w turn, or when the angle
    # at c is obtuse
    at_a = aa | ab
    cx, cy = np.where(at_a, sax, sbx), np.where(at_a, say, sby)
    ux, uy = np.where(at_a, sbx, sax), np.where(at_a, sby, say)
    wx, wy = np.where(aa | ba, tbx, tax), np.where(aa | ba, tby, tay)
    turn = _orientation(cx, cy, ux, uy, wx, wy) != 0
    along = (ux - cx) * (wx - cx)
    across = (uy - cy) * (wy - cy)
    obtuse = along + across < -1e-14 * (np.abs(along) + np.abs(across))
    # sharing none: certainly apart when one's ends are strictly on one side of the other's line
    one = _orientation(sax, say, sbx, sby, tax, tay) * _orientation(sax, say, sbx, sby, tbx, tby)
    other = _orientation(tax, tay, tbx, tby, sax, say) * _orientation(tax, tay, tbx, tby, sbx, sby)
    return bool(np.where(shared, turn | obtuse, (one > 0) | (other > 0)).all())


def _sectors_agree(segments, mine, side):
    """Whether around every vertex of the segments `mine` the unit on the
    counter-clockwise side of each segment (``side``, as left and right of a
    -> b) is the one on the clockwise side of the next, counter-clockwise;
    False also where that order is not certain."""
    rows = np.take(segments, mine, axis=0)
    ax, ay, bx, by = rows.T
    labels = np.take(side, mine, axis=0)
    # half-edges: from a towards b (its ccw side is left of a -> b), from b towards a
    vx, vy = np.r_[ax, bx], np.r_[ay, by]
    dx, dy = np.r_[bx - ax, ax - bx], np.r_[by - ay, ay - by]
    ccw = np.r_[labels[:, 1], labels[:, 0]]
    cw = np.r_[labels[:, 0], labels[:, 1]]
    # the vertex of each half-edge, by a hash of its coordinates' bits (checked)
    bits = np.c_[vx, vy].view(np.uint64)
    mixed = bits * np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F], dtype=np.uint64)
    vertex, _ = pd.factorize(mixed[:, 0] ^ (mixed[:, 1] >> np.uint64(7)))
    n = len(vx)
    index = np.arange(n)
    one = np.full(vertex.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(one, vertex, index)
    if not (np.array_equal(vx, vx[one[vertex]]) and np.array_equal(vy, vy[one[vertex]])):
        return False  # two vertices with one hash: not read here
    degree = np.bincount(vertex)
    if (degree < 2).any():
        return False
    # two half-edges: each sector is the ccw side of one and the cw side of the other
    two = np.flatnonzero(degree[vertex] == 2)
    partner = np.bincount(vertex[two], weights=two, minlength=len(degree)).astype(np.int64)[vertex[two]] - two
    if not (np.array_equal(ccw[two], cw[partner]) and np.array_equal(cw[two], ccw[partner])):
        return False
    # more: in counter-clockwise order of their directions
    busy = np.flatnonzero(degree[vertex] > 2)
    if not busy.size:
        return True
    angle = np.arctan2(dy[busy], dx[busy])
    order = np.lexsort((angle, vertex[busy]))
    busy, angle = busy[order], angle[order]
    group = vertex[busy]
    start = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    last = np.r_[start[1:], len(busy)] - 1
    following = np.arange(1, len(busy) + 1)
    following[last] = start
    gap = angle[following] - angle
    gap[last] += 2 * np.pi
    return bool((gap > _ANGLE_GAP).all() and np.array_equal(ccw[busy], cw[busy[following]]))


# ----------------------------------------------------------------------------
# the raster
# ----------------------------------------------------------------------------


class _Raster:
    """Square cells of about `cell_m` metres over lon/lat bounds.

    Points and boundary vertices go to cell space with the same arithmetic,
    ``u = (x - x0) * kx``, which is monotonic: a point equal to a vertex gets
    exactly the vertex's cell coordinates.
    """

    def __init__(self, x0, y0, kx, ky, nx, ny, bounds):
        self.x0, self.y0, self.kx, self.ky = x0, y0, kx, ky
        self.nx, self.ny, self.size = nx, ny, nx * ny
        self.bounds = bounds

    @classmethod
    def over(cls, bounds, cell_m, scale=None):
        minx, miny, maxx, maxy = (float(b) for b in bounds)
        metre_x, metre_y = _metres_per_degree(bounds) if scale is None else scale
        dx, dy = cell_m / metre_x, cell_m / metre_y
        # two cells of margin all round: the border cells touch no unit
        nx = int(np.ceil((maxx - minx) / dx)) + 5
        ny = int(np.ceil((maxy - miny) / dy)) + 5
        return cls(minx - 2 * dx, miny - 2 * dy, 1.0 / dx, 1.0 / dy, nx, ny, (minx, miny, maxx, maxy))

    def cell_space(self, x, y):
        return (x - self.x0) * self.kx, (y - self.y0) * self.ky

    def cell_of(self, x, y):
        """Flat cell number of each (finite) point; a point beyond the raster
        gets a border cell, which lies outside every unit."""
        u, v = self.cell_space(x, y)
        u = np.clip(u, 0, self.nx - 1, out=u).astype(np.int64)
        v = np.clip(v, 0, self.ny - 1, out=v).astype(np.int64)
        return v * self.nx + u

    def points_in_fine(self, fu, fv, depth, f_u=0.5, f_v=0.5):
        """Lon/lat of the points at fractions across the cells (fu, fv) of a
        raster 2**depth times finer."""
        scale = 2.0**depth
        return self.x0 + (fu + f_u) / scale / self.kx, self.y0 + (fv + f_v) / scale / self.ky

    def points_in(self, cells, f_u=0.5, f_v=0.5):
        """Lon/lat of the points at fractions (f_u, f_v) across flat cells."""
        u, v = cells % self.nx + f_u, cells // self.nx + f_v
        return self.x0 + u / self.kx, self.y0 + v / self.ky


def _metres_per_degree(bounds):
    """Metres per degree of longitude and of latitude at the centre of
    `bounds`, in :func:`gridgeo.crs.metric_crs` of them."""
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    to_metric = _from_storage(gcrs.metric_crs((minx, miny, maxx, maxy)).srs)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    step = 1e-3
    mx, my = to_metric.transform([cx, cx + step, cx], [cy, cy, cy + step])
    return np.hypot(mx[1] - mx[0], my[1] - my[0]) / step, np.hypot(mx[2] - mx[0], my[2] - my[0]) / step


@functools.lru_cache(maxsize=32)
def _from_storage(srs):
    """The transformer from EPSG:4490 to the CRS `srs`, made once per CRS:
    making one costs more than an index's whole use of it (pyproj's
    transformers are thread-safe)."""
    return pyproj.Transformer.from_crs(gcrs.STORAGE_CRS, srs, always_xy=True)


def _adapted_cell_m(segments, bounds, scale, cells_per_segment=_CELLS_PER_SEGMENT):
    """The side of the cells, in metres, adapted to the grids: the larger of

    - the side giving `_CELLS_PER_SEGMENT` cells per distinct boundary
      segment over the extent (the raster's size), and
    - the side at which the segments cross about `_CROSSINGS_PER_SEGMENT`
      cells each on average (the boundary cells' number).

    Both bound the index by the number of boundary segments, whatever the
    extent: a city of small grids gets cells of tens of metres, a province
    of counties cells of hundreds.
    """
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    metre_x, metre_y = scale
    n = max(len(segments), 1)
    area = max((maxx - minx) * metre_x, 1e-9) * max((maxy - miny) * metre_y, 1e-9)
    length = np.hypot((segments[:, 2] - segments[:, 0]) * metre_x, (segments[:, 3] - segments[:, 1]) * metre_y).sum()
    side = max(np.sqrt(area / (cells_per_segment * n)), length / (_CROSSINGS_PER_SEGMENT * n))
    return float(f"{side:.3g}")  # a round figure, as a person would choose


def _unique_segments(geoms):
    """The distinct boundary segments of all units, and which unit has each
    segment of its rings on which distinct segment.

    Returns
    -------
    segments : ndarray of shape (n, 4)
        Rows (ax, ay, bx, by), a before b in (x, y) order, no zero-length one.
    segment, unit : ndarray
        For every segment of every ring, its row in `segments` and its unit,
        in the order of the rows.
    left : ndarray of bool
        For every segment of every ring, whether its polygon's interior lies
        left of its row's direction (a -> b): a shell's interior lies left of
        a counter-clockwise ring, a hole's right of it. Meaningful for valid
        polygons only.
    firsts : (x, y, unit)
        The first vertex of every ring, and its unit.
    """
    if (shapely.get_type_id(geoms) == 3).all():  # polygons only: their own parts
        parts, part_of = geoms, np.arange(len(geoms))
    else:
        parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    exterior = np.r_[True, ring_of[1:] != ring_of[:-1]]  # each part's rings: its shell, then its holes
    inward_left = exterior == shapely.is_ccw(rings)
    xy, vertex_of = shapely.get_coordinates(rings, return_index=True)
    same = vertex_of[1:] == vertex_of[:-1]
    begin = np.flatnonzero(np.r_[True, ~same])  # each ring's first vertex
    firsts = (np.take(xy[:, 0], begin), np.take(xy[:, 1], begin), part_of[ring_of[vertex_of[begin]]])
    start = np.flatnonzero(same)  # (rows are gathered with np.take: several times faster than fancy indexing)
    a, b = np.take(xy, start, axis=0), np.take(xy, start + 1, axis=0)
    ring = vertex_of[start]
    unit = part_of[ring_of[ring]]
    flip = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    left = inward_left[ring] ^ flip
    rows = np.empty((len(a), 4))
    rows[:, :2], rows[:, 2:] = a, b
    np.copyto(rows[:, :2], b, where=flip[:, None])
    np.copyto(rows[:, 2:], a, where=flip[:, None])
    keep = (rows[:, 0] != rows[:, 2]) | (rows[:, 1] != rows[:, 3])
    rows = np.compress(keep, rows, axis=0) + 0.0  # -0.0 becomes 0.0: equal coordinates, equal bits
    # distinct rows by their bit patterns: numbered by a hash table of a
    # 64-bit hash of the four keys (many times faster than np.unique(axis=0),
    # which sorts structured rows, and than sorting the hashes); rows with
    # the same hash must be the same row, else (never seen) a sort of all four
    bits = rows.view(np.int64)
    mixed = bits.view(np.uint64) * np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                                              0x27D4EB2F165667C5], dtype=np.uint64)
    digest = (mixed[:, 0] ^ (mixed[:, 1] >> np.uint64(7)) ^ (mixed[:, 2] << np.uint64(3))
              ^ (mixed[:, 3] >> np.uint64(11)))
    which = pd.factorize(digest)[0]  # in the order the rows first come
    first = np.full(int(which.max()) + 1 if len(which) else 0, len(which), dtype=np.int64)
    np.minimum.at(first, which, np.arange(len(which)))
    if not (bits == np.take(bits, first[which], axis=0)).all():
        order = np.lexsort(bits.T[::-1])
        ordered = bits[order]
        fresh = np.r_[True, (ordered[1:] != ordered[:-1]).any(axis=1)]
        which = np.empty(len(rows), dtype=np.int64)
        which[order] = np.cumsum(fresh) - 1
        first = order[fresh]
    # the ring entries in the order of their segments (which later sorts need):
    # a stable sort of numbers that come mostly in runs
    order = np.argsort(which, kind="stable")
    return (np.take(rows, first, axis=0), np.take(which, order), np.take(unit[keep], order),
            np.take(left[keep], order), firsts)


def _segment_cells(segments, raster):
    """Unique (cell, segment) pairs of the cells, widened by `_MARGIN`, that
    each segment touches, sorted by cell."""
    a_u, a_v = raster.cell_space(segments[:, 0], segments[:, 1])
    b_u, b_v = raster.cell_space(segments[:, 2], segments[:, 3])
    a_u, a_v, b_u, b_v, owner = _short_pieces(a_u, a_v, b_u, b_v, np.arange(len(segments)))
    n = max(len(segments), 1)
    keys = [np.zeros(0, dtype=np.int64)]
    cumulative = np.cumsum(_cells_around(a_u, a_v, b_u, b_v, raster, count_only=True))
    for lo, hi in _chunks(cumulative, _CHUNK_PAIRS):
        piece, cell = _cells_around(a_u[lo:hi], a_v[lo:hi], b_u[lo:hi], b_v[lo:hi], raster)
        # the pieces come by segment: ordered by cell, stably, they are
        # ordered by cell and segment
        order = _stable_order(cell)
        key = np.take(cell, order) * n + np.take(owner[lo:hi], np.take(piece, order))
        keys.append(key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key)
    key = keys[1] if len(keys) == 2 else _distinct(np.concatenate(keys))  # one chunk: sorted already
    return key // n, key % n


def _stable_order(keys):
    """The stable sorting order of non-negative integers: a radix sort,
    16 bits at a time (numpy sorts 16-bit integers stably in linear time)."""
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    shift = 16
    while len(keys) and int(keys.max()) >> shift:
        digit = (np.take(keys, order) >> shift & 0xFFFF).astype(np.uint16)
        order = np.take(order, np.argsort(digit, kind="stable"))
        shift += 16
    return order


def _distinct(keys):
    """The distinct integers of `keys`, sorted: np.unique by a plain sort,
    several times faster than its hash table on millions of keys."""
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


def _counted(keys):
    """The distinct integers of `keys`, sorted, and how often each occurs,
    for keys almost in order (runs in order, as a segment's entries by
    segment): a stable sort of such keys takes a fraction of np.unique's."""
    keys = np.sort(keys, kind="stable")
    fresh = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, dtype=np.int64)
    return keys[fresh], np.diff(np.r_[fresh, len(keys)])


def _expand(start, count):
    """The indices start[i] .. start[i] + count[i] - 1, for every i in turn."""
    return np.arange(count.sum()) - np.repeat(np.cumsum(count) - count - start, count)


def _orientation(a_x, a_y, b_x, b_y, p_x, p_y):
    """Which side of a -> b each p lies on: 1 left, -1 right, 0 when on the
    line or too close for floating point to tell.

    Shewchuk's filtered orient2d: a sign returned is the exact one (the one
    GEOS's robust predicates give), so only 0 needs an exact test. His bound
    uses |left| + |right| when both have one sign; |left + right| is that
    then, and smaller than |det| otherwise, when the sign is exact anyway.
    """
    left = (a_x - p_x) * (b_y - p_y)
    right = (a_y - p_y) * (b_x - p_x)
    det = left - right
    bound = np.abs(left + right, out=left)
    bound *= _CCW_ERRBOUND
    return (det > bound).view(np.int8) - (det < -bound).view(np.int8)


def _between(toward0, toward1, on_first, on_second):
    """The unit of one level in each piece of leaves whose two lines both
    are boundaries of that level (see AssignIndex._piece_answers): rows of
    pieces numbered as in :func:`_piece`, _MIXED where the sides do not tell.
    `toward0`: the bit of the first line's side that the second segment
    lies on, `toward1` the converse (-1: untold, see :func:`_side_of`);
    `on_first`, `on_second`: the level's units right and left of each."""
    bit = np.arange(2**_FEW_SEGMENTS)
    s0, s1 = bit & 1, bit >> 1
    by0, by1 = on_first[:, s0], on_second[:, s1]
    middle = np.where(by0 == by1, by0, _MIXED)  # the sector or strip between them: on both's side
    answer = np.where(s0 != toward0[:, None], by0, np.where(s1 != toward1[:, None], by1, middle))
    answer[(toward0 < 0) | (toward1 < 0)] = _MIXED
    return answer


def _side_of(line, segment):
    """Which side of the line through each row of `line` each row of
    `segment` lies on (rows ax, ay, bx, by): 1 left, 0 right, -1 when that is
    not certain (its ends on both sides, or on the line without being an end
    of `line`'s segment)."""
    sides = []
    for x, y in ((segment[:, 0], segment[:, 1]), (segment[:, 2], segment[:, 3])):
        side = _orientation(line[:, 0], line[:, 1], line[:, 2], line[:, 3], x, y)
        shared = ((x == line[:, 0]) & (y == line[:, 1])) | ((x == line[:, 2]) & (y == line[:, 3]))
        sides.append(np.where((side == 0) & ~shared, 2, side))  # 2: untold
    a, b = sides
    left = (a > 0) | (b > 0)
    right = (a < 0) | (b < 0)
    told = (a != 2) & (b != 2) & (left != right)
    return np.where(told, left.astype(np.int64), -1)


def _piece(segments, lines, x, y):
    """Which piece of its cell each point is in: bit j set when it is left of
    the line through segment ``lines[:, j]`` (-1: no line), or -1 when a side
    is uncertain (on a line, or too close to tell). `segments`: rows ax, ay,
    bx, by."""
    piece = np.zeros(len(x), dtype=np.int64)
    certain = np.ones(len(x), dtype=bool)
    for j in range(lines.shape[1]):
        rows = np.flatnonzero(lines[:, j] >= 0) if j else slice(None)  # every cell has a first line
        a_x, a_y, b_x, b_y = (coordinate[lines[rows, j]] for coordinate in segments)
        side = _orientation(a_x, a_y, b_x, b_y, x[rows], y[rows])
        certain[rows] &= side != 0
        piece[rows] |= (side > 0).astype(np.int64) << j
    return np.where(certain, piece, -1)


def _piece_samples(segments, lines, fu, fv, depth, raster):
    """Which of `_SAMPLES` stands for each piece of each leaf: the first
    (in their order) certainly in it, or -1 when none is.

    A leaf is the cell (fu, fv) of the raster 2**depth times finer, cut by
    the lines through the segments ``lines[:, j]`` (-1: no line); its piece
    numbers are those of :func:`_piece`. Returns an array of shape
    (leaves, 2**_FEW_SEGMENTS).
    """
    sample = np.full((len(lines), 2**_FEW_SEGMENTS), -1, dtype=np.int8)
    pieces = 2 ** (lines >= 0).sum(axis=1)  # at most; a leaf is done when all have a sample
    todo = np.arange(len(lines))
    # the four corners find most leaves' pieces; the other samples are tried
    # only on the leaves still missing one
    for first, last in ((0, 4), (4, len(_SAMPLES))):
        f_u, f_v = _SAMPLE_FRACTIONS[:, first:last]
        step = max(_CHUNK_SAMPLES // (last - first), 1)
        for lo in range(0, len(todo), step):
            rows = todo[lo:lo + step]
            x, y = raster.points_in_fine(fu[rows, None], fv[rows, None], depth[rows, None], f_u, f_v)
            piece = np.zeros(x.shape, dtype=np.int8)
            certain = np.ones(x.shape, dtype=bool)
            for j in range(lines.shape[1]):
                line = lines[rows, j]
                has = (line >= 0)[:, None]
                side = _orientation(*(segments[line, c][:, None] for c in range(4)), x, y)  # -1: any row
                certain &= (side != 0) | ~has
                piece |= ((side > 0) & has).view(np.int8) << j
            piece[~certain] = -1
            found = sample[rows]
            for p in range(found.shape[1]):
                match = (piece == p) & (found[:, p] < 0)[:, None]
                at = match.argmax(axis=1)
                hit = match[np.arange(len(at)), at]
                found[hit, p] = first + at[hit]
            sample[rows] = found
        todo = todo[(sample[todo] >= 0).sum(axis=1) < pieces[todo]]
    return sample


def _short_pieces(a_u, a_v, b_u, b_v, owner):
    """Cut segments into pieces at most `_PIECE_CELLS` cells long."""
    pieces = np.maximum(np.ceil(np.maximum(np.abs(b_u - a_u), np.abs(b_v - a_v)) / _PIECE_CELLS), 1)
    pieces = pieces.astype(np.int64)
    if (pieces == 1).all():
        return a_u, a_v, b_u, b_v, owner
    seg = np.repeat(np.arange(len(a_u)), pieces)
    k = _expand(np.zeros_like(pieces), pieces)
    t0, t1 = k / pieces[seg], (k + 1) / pieces[seg]
    du, dv = (b_u - a_u)[seg], (b_v - a_v)[seg]
    return (a_u[seg] + t0 * du, a_v[seg] + t0 * dv, a_u[seg] + t1 * du, a_v[seg] + t1 * dv, owner[seg])


def _chunks(cumulative, size):
    """(lo, hi) slices of items whose cumulative counts stay near `size`."""
    lo = 0
    while lo < len(cumulative):
        base = cumulative[lo - 1] if lo else 0
        hi = max(int(np.searchsorted(cumulative, base + size, side="right")), lo + 1)
        yield lo, hi
        lo = hi


def _touches(a_u, a_v, b_u, b_v, cu, cv):
    """Whether each segment, in cell coordinates, touches its cell (cu, cv)
    widened by `_MARGIN`: its bounding box meets the cell's, and its line
    leaves the cell's four corners not all on one side."""
    left, right = cu - _MARGIN, cu + 1 + _MARGIN
    low, high = cv - _MARGIN, cv + 1 + _MARGIN
    meets = ((np.minimum(a_u, b_u) <= right) & (np.maximum(a_u, b_u) >= left)
             & (np.minimum(a_v, b_v) <= high) & (np.maximum(a_v, b_v) >= low))
    du, dv = b_u - a_u, b_v - a_v
    side = [du * (y - a_v) - dv * (x - a_u) for x, y in ((left, low), (left, high), (right, low), (right, high))]
    positive = (side[0] > 0) & (side[1] > 0) & (side[2] > 0) & (side[3] > 0)
    negative = (side[0] < 0) & (side[1] < 0) & (side[2] < 0) & (side[3] < 0)
    return meets & ~(positive | negative)


def _cells_around(a_u, a_v, b_u, b_v, raster, count_only=False):
    """(piece, cell) of every cell, widened by `_MARGIN`, that a piece touches.

    The cells of each piece's bounding box are enumerated, and those that the
    piece's line leaves all four corners on one side of are dropped.
    """
    lo_u = np.clip(np.floor(np.minimum(a_u, b_u) - _MARGIN), 0, raster.nx - 1).astype(np.int64)
    hi_u = np.clip(np.floor(np.maximum(a_u, b_u) + _MARGIN), 0, raster.nx - 1).astype(np.int64)
    lo_v = np.clip(np.floor(np.minimum(a_v, b_v) - _MARGIN), 0, raster.ny - 1).astype(np.int64)
    hi_v = np.clip(np.floor(np.maximum(a_v, b_v) + _MARGIN), 0, raster.ny - 1).astype(np.int64)
    width = hi_u - lo_u + 1
    count = width * (hi_v - lo_v + 1)
    if count_only:
        return count
    piece = np.repeat(np.arange(len(a_u)), count)
    k = _expand(np.zeros_like(count), count)
    cu = lo_u[piece] + k % width[piece]
    cv = lo_v[piece] + k // width[piece]
    du, dv = (b_u - a_u)[piece], (b_v - a_v)[piece]
    left = cu - _MARGIN - a_u[piece]
    right = cu + 1 + _MARGIN - a_u[piece]
    low = cv - _MARGIN - a_v[piece]
    high = cv + 1 + _MARGIN - a_v[piece]
    side = [du * y - dv * x for x, y in ((left, low), (left, high), (right, low), (right, high))]
    positive = (side[0] > 0) & (side[1] > 0) & (side[2] > 0) & (side[3] > 0)
    negative = (side[0] < 0) & (side[1] < 0) & (side[2] < 0) & (side[3] < 0)
    touched = ~(positive | negative)
    return piece[touched], cv[touched] * raster.nx + cu[touched]


def _with_overlapping(cells, units, level_geoms, level_units):
    """Add, to each crossed cell, the units overlapping a unit crossing it.

    A unit can hold a crossed cell wholly without its own boundary touching
    it only if it overlaps the crossing unit; only needed when the level is
    not a valid coverage.
    """
    tree = shapely.STRtree(level_geoms)
    a, b = tree.query(level_geoms, predicate="intersects")
    keep = a != b
    a, b = a[keep], b[keep]
    overlap = shapely.relate_pattern(level_geoms[a], level_geoms[b], "T********")
    a, b = level_units[a[overlap]], level_units[b[overlap]]
    if not len(a):
        return cells, units
    order = np.argsort(a, kind="stable")
    a, b = a[order], b[order]
    lo, hi = np.searchsorted(a, units, side="left"), np.searchsorted(a, units, side="right")
    count = hi - lo
    return np.r_[cells, np.repeat(cells, count)], np.r_[units, b[_expand(lo, count)]]


def _fill_faces(crossed_cells, geoms, units, raster):
    """Label the cells no boundary of this level touches.

    Such cells form connected faces, each wholly inside the same units: one
    test of one cell per face gives the answer for all of it.

    Returns
    -------
    cell_unit : ndarray
        Per cell, the unit holding it, _NONE, _MULTI (inside several
        overlapping units) or _MIXED (crossed by a boundary).
    multi : (cells, units)
        The units holding each _MULTI cell.
    """
    from scipy import ndimage
    crossed = np.zeros(raster.size, dtype=bool)
    crossed[crossed_cells] = True
    faces, n_faces = ndimage.label(~crossed.reshape(raster.ny, raster.nx))
    faces = faces.ravel()
    # a cell of each face: labels are given in the order the faces are met,
    # so the first cell of each is where the running maximum reaches it (checked)
    member = np.searchsorted(np.maximum.accumulate(faces), np.arange(1, n_faces + 1))
    if len(member) != n_faces or not np.array_equal(faces[member], np.arange(1, n_faces + 1)):
        member = np.zeros(n_faces + 1, dtype=np.int64)
        member[faces] = np.arange(raster.size)
        member = member[1:]
    points = shapely.points(*raster.points_in(member))
    face, unit = shapely.STRtree(geoms).query(points)  # boxes; then the prepared polygons' exact tests
    hit = shapely.intersects(np.take(geoms, unit), np.take(points, face))
    face, unit = face[hit] + 1, unit[hit]
    holders = np.bincount(face, minlength=n_faces + 1)
    face_unit = np.full(n_faces + 1, _NONE, dtype=np.int32)
    face_unit[face[holders[face] == 1]] = units[unit[holders[face] == 1]]
    face_unit[holders > 1] = _MULTI
    face_unit[0] = _MIXED
    cell_unit = face_unit[faces]
    multi_face, multi_unit = face[holders[face] > 1], units[unit[holders[face] > 1]]
    if not len(multi_face):
        return cell_unit, (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    cells = np.flatnonzero(cell_unit == _MULTI)
    order = np.argsort(multi_face, kind="stable")
    multi_face, multi_unit = multi_face[order], multi_unit[order]
    lo = np.searchsorted(multi_face, faces[cells], side="left")
    count = np.searchsorted(multi_face, faces[cells], side="right") - lo
    return cell_unit, (np.repeat(cells, count), multi_unit[_expand(lo, count)])
