"""Other boundaries against the grids: police precincts, school catchments, communities.

Offices draw their own areas (警格, 学区, 社区). Where they cut the grids
differently, work falls between two stools (警网融合). This module says
exactly how another layer of areas and one level of the grids overlap:

- :func:`crosswalk`: one row per overlapping pair (grid, other unit): the
  overlap, its area and shares, the households and people in it, and which
  unit of each layer holds most of the other; ``attrs["summary"]`` counts per
  layer the units that nest, that are split, the slivers;
- :func:`nesting`: one row per unit of either layer: does it nest in one unit
  of the other layer, is it split, or partly outside;
- :func:`misalignment`: where the two layers nearly but not quite agree
  (slivers, gaps), located, with households affected and a suggestion, in the
  columns of :func:`gridgeo.validate`'s report;
- :func:`carry`: any figure of the grids given to the other layer's units, by
  the points inside each overlap or prorated by households or area;
- :func:`align`: a first draft of the other layer snapped to the grid edges,
  with what moved and the households affected.

The rules, stated once
----------------------
All measuring happens in the metric CRS :func:`gridgeo.crs.metric_crs`
chooses for the grids (a CGCS2000 Gauss-Krüger zone, or a transverse Mercator
centred on them), never in degrees. Results come back in EPSG:4490.

- An **overlap** is the intersection of a grid and an other unit with an
  area above :data:`MIN_OVERLAP_M2` (0.01 m²: a shared edge reprojected
  leaves nanometre-wide intersections, which are not overlaps). Polygons that
  only touch do not overlap.
- A **sliver** is an overlap smaller than ``sliver_area`` (default 100 m²)
  or narrower than ``sliver_width`` (default 5 m): drawing noise rather than
  a real split. Its width is ``2 * area / perimeter`` (exact for a long strip,
  half the side for a square), so a strip along a boundary drawn 3 m off is a
  sliver whatever its length.
- A unit **nests** in the unit of the other layer holding most of its area
  (its ``main``) when every other overlap of it is a sliver and the part of it
  outside the other layer is a sliver too (within the same thresholds); it is
  **whole units** (the other layer's units only) when two or more of its
  overlaps are not slivers and each of those is a grid that nests in it (a
  precinct made of whole grids: aligned, only larger); **split** when two or
  more of its overlaps are not slivers otherwise (a grid divided between two
  precincts is split even when both lie inside it: its work is divided); **partly outside** when one overlap is
  not a sliver and the part outside the other layer is not either;
  **outside** when none of its overlaps is more than a sliver.
- **Households and population in an overlap** come from the addresses, not
  from areas: each address is assigned to both layers with
  :func:`gridgeo.assign` (the rule there: a point on a shared edge goes to
  the smallest code; the other layer's units are taken in the order of their
  ids), and an overlap holds the addresses assigned to its grid and its other
  unit. An address on the edge of both layers may so fall in a pair whose
  polygons only touch: that pair is listed with zero area rather than the
  address lost.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgeo import crs as gcrs
from gridgeo.assignment import AssignIndex, _storage_points, assign
from gridgeo.schema import DEFAULT_SCHEME, CodeScheme, Level, check

__all__ = ["crosswalk", "with_names", "workbook", "index_other", "nesting", "misalignment", "carry", "align",
           "DIFF_COLUMNS", "CrosswalkError", "PAIR_COLUMNS", "UNIT_COLUMNS", "MIN_OVERLAP_M2", "REPORT_COLUMNS",
           "MISALIGNMENT_KINDS", "DEFAULT_SLIVER_AREA", "DEFAULT_SLIVER_WIDTH", "WORKBOOK_SHEETS"]

#: Intersections of at most this many m² are no overlap: far below any
#: drawing's precision, they are what reprojecting a shared edge leaves.
MIN_OVERLAP_M2 = 0.01
#: Overlaps smaller than this many m² are slivers.
DEFAULT_SLIVER_AREA = 100.0
#: Overlaps narrower than this many metres (``2 * area / perimeter``) are slivers.
DEFAULT_SLIVER_WIDTH = 5.0

#: The columns of :func:`crosswalk`'s table, in order.
PAIR_COLUMNS = ("code", "other", "area_m2", "share_of_grid", "share_of_other", "addresses",
                "households", "population", "sliver", "main_of_grid", "main_of_other", "geometry")
#: The columns of :func:`nesting`'s table, in order.
UNIT_COLUMNS = ("layer", "unit", "area_m2", "main", "main_share", "parts", "outside_m2", "status",
                "households", "geometry")
STATUSES = ("nests", "whole units", "split", "partly outside", "outside")

_COUNTS = ("households", "population")


class CrosswalkError(ValueError):
    """A layer the crosswalk cannot use, said in Chinese and English: which
    file, which column or rows, and what to do."""

    def __init__(self, zh: str, en: str):
        self.message_zh, self.message_en = zh, en
        super().__init__(f"{en}\n{zh}")


# ----------------------------------------------------------------------------
# the layers, checked and measured
# ----------------------------------------------------------------------------


@dataclass
class _Layers:
    """Both layers in storage and in metres, and the overlaps between them."""

    codes: np.ndarray  # grid codes (str), sorted
    grids: gpd.GeoDataFrame  # the level's grids, EPSG:4490, in code order
    ids: np.ndarray  # other ids, sorted
    other: gpd.GeoDataFrame  # the other layer, EPSG:4490, in id order
    other_id: str
    grid_m: np.ndarray
    other_m: np.ndarray
    metric: pyproj.CRS
    to_storage: pyproj.Transformer
    grid_area: np.ndarray
    other_area: np.ndarray
    gi: np.ndarray  # overlapping pairs: grid position, other position
    oi: np.ndarray
    pieces: np.ndarray  # the overlaps, in metres
    whole: np.ndarray  # per overlap: 1 the whole grid, 2 the whole other unit, 0 a cut


def _layers(grids, other, *, level, other_id, other_crs, scheme, name, other_name):
    grids = _grid_level(grids, level, scheme, name)
    other, other_id = _other_layer(other, other_id, other_crs, other_name)
    metric = gcrs.metric_crs(grids)
    grid_m = np.asarray(grids.to_crs(metric).geometry.array, dtype=object)
    other_m = np.asarray(other.to_crs(metric).geometry.array, dtype=object)
    gi, oi, pieces, whole = _overlaps(grid_m, other_m)
    keep = shapely.area(pieces) > MIN_OVERLAP_M2
    gi, oi, pieces, whole = gi[keep], oi[keep], pieces[keep], whole[keep]
    order = np.lexsort((oi, gi))
    to_storage = pyproj.Transformer.from_crs(metric, gcrs.STORAGE_CRS, always_xy=True)
    return _Layers(grids["code"].to_numpy(dtype=object), grids,
                   other[other_id].to_numpy(dtype=object), other, other_id, grid_m, other_m, metric,
                   to_storage, shapely.area(grid_m), shapely.area(other_m), gi[order], oi[order],
                   pieces[order], whole[order])


def _overlaps(grid_m, other_m):
    """(grid positions, other positions, intersections, whole) of every pair
    whose polygons may overlap: an STRtree query of the boxes, then
    ``shapely.intersection`` on the arrays, computed only where neither
    polygon covers the other (then the overlap is that polygon: ``whole`` 1
    for the grid, 2 for the other unit) and they do more than touch. Pairs
    whose boxes share at most :data:`MIN_OVERLAP_M2` cannot overlap and are
    not tested; a polygon can only cover one whose box its box holds
    (prepared predicates, cheaper than the overlay)."""
    gi, oi = shapely.STRtree(other_m).query(grid_m)
    gb, ob = shapely.bounds(grid_m)[gi], shapely.bounds(other_m)[oi]
    common = (np.minimum(gb[:, 2], ob[:, 2]) - np.maximum(gb[:, 0], ob[:, 0])).clip(0) * \
        (np.minimum(gb[:, 3], ob[:, 3]) - np.maximum(gb[:, 1], ob[:, 1])).clip(0)
    roomy = common > MIN_OVERLAP_M2
    gi, oi, gb, ob = gi[roomy], oi[roomy], gb[roomy], ob[roomy]
    shapely.prepare(other_m)
    shapely.prepare(grid_m)
    pieces = np.full(len(gi), None, dtype=object)
    whole = np.zeros(len(gi), dtype=np.int8)
    holds = lambda a, b: (a[:, 0] <= b[:, 0]) & (a[:, 1] <= b[:, 1]) & (a[:, 2] >= b[:, 2]) & (a[:, 3] >= b[:, 3])  # noqa: E731
    maybe = np.flatnonzero(holds(ob, gb))
    whole[maybe[shapely.covers(other_m[oi[maybe]], grid_m[gi[maybe]])]] = 1
    maybe = np.flatnonzero(holds(gb, ob) & (whole == 0))
    whole[maybe[shapely.covers(grid_m[gi[maybe]], other_m[oi[maybe]])]] = 2
    pieces[whole == 1] = grid_m[gi[whole == 1]]
    pieces[whole == 2] = other_m[oi[whole == 2]]
    rest = np.flatnonzero(whole == 0)
    rest = rest[shapely.intersects(grid_m[gi[rest]], other_m[oi[rest]])]
    rest = rest[~shapely.touches(grid_m[gi[rest]], other_m[oi[rest]])]
    pieces[rest] = _polygonal(shapely.intersection(grid_m[gi[rest]], other_m[oi[rest]]))
    cut = pieces != None  # noqa: E711 (elementwise on an object array)
    return gi[cut], oi[cut], pieces[cut], whole[cut]


def _grid_level(grids, level, scheme, name):
    if not isinstance(grids, gpd.GeoDataFrame):
        raise TypeError(f"grids should be a GeoDataFrame, got {type(grids).__name__}")
    if "level" not in grids.columns:
        raise CrosswalkError(f"{name} 没有 level 列：请给出带层级的网格（code、name、level、parent）",
                             f"{name} has no level column: give grids with code, name, level, parent")
    chosen = grids[grids["level"].astype(str) == level]
    if not len(chosen):
        present = sorted(set(grids["level"].astype(str)))
        raise CrosswalkError(f"{name} 没有 {level} 层的网格（有：{present}）：请用 level= 选一个已有的层级",
                             f"{name} holds no {level} units (it holds {present}): choose one with level=")
    chosen = gcrs.to_storage(check(chosen, "grids", scheme=scheme, name=name), name=name)
    _refuse_bad_polygons(chosen, "code", name)
    return chosen.sort_values("code").reset_index(drop=True)


def _other_layer(other, other_id, other_crs, name):
    if not isinstance(other, gpd.GeoDataFrame):
        raise TypeError(f"other should be a GeoDataFrame, got {type(other).__name__}")
    if not len(other):
        raise CrosswalkError(f"{name} 是空的：没有可比对的区域", f"{name} holds no areas to compare")
    if other_id is None:
        other = other.copy()
        other_id = "other"
        other[other_id] = other.index.astype(str)
    elif other_id not in other.columns:
        raise CrosswalkError(
            f"{name} 没有 {other_id!r} 列（有：{list(other.columns)}）：请用 other_id= 指定编号列",
            f"{name} has no column {other_id!r} (it has {list(other.columns)}): name its id column "
            "with other_id=")
    ids = other[other_id]
    missing = ids.isna() | (ids.astype(str).str.strip() == "")
    if missing.any():
        rows = list(other.index[missing][:10])
        raise CrosswalkError(f"{name} 第 {rows} 行的 {other_id} 为空：请补上编号",
                             f"{name} rows {rows} have no {other_id}: fill in their ids")
    other = other.copy()
    other[other_id] = ids.astype(str)
    dup = other[other_id][other[other_id].duplicated(keep=False)]
    if len(dup):
        value = dup.iloc[0]
        rows = list(other.index[other[other_id] == value])
        raise CrosswalkError(f"{name} 的 {other_id} {value!r} 出现在第 {rows} 行：编号必须唯一，请合并或改号",
                             f"{name}: {other_id} {value!r} is used by rows {rows}; ids must be unique: "
                             "merge those areas or renumber them")
    if other.crs is None and other_crs is None:
        raise CrosswalkError(f"{name} 没有坐标系：请用 other_crs= 说明（wgs84、cgcs2000、gcj02、bd09 或 EPSG 代码）",
                             f"{name} has no coordinate system: say what it is with other_crs= "
                             "(wgs84, cgcs2000, gcj02, bd09 or an EPSG code)")
    other = gcrs.to_storage(other, source=other_crs, name=name)
    _refuse_bad_polygons(other, other_id, name)
    return other.sort_values(other_id).reset_index(drop=True), other_id


def _refuse_bad_polygons(frame, id_column, name):
    geoms = np.asarray(frame.geometry.array, dtype=object)
    kind = shapely.get_type_id(geoms)
    bad = (kind != 3) & (kind != 6) | shapely.is_empty(geoms)
    if bad.any():
        ids = list(frame[id_column][bad][:10])
        raise CrosswalkError(f"{name} 中 {id_column} 为 {ids} 的要素不是面（或为空）：请删除或重画",
                             f"{name}: the features with {id_column} {ids} are not polygons (or are "
                             "empty): remove or redraw them")
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        ids = list(frame[id_column][invalid][:10])
        why = shapely.is_valid_reason(geoms[invalid][0])
        raise CrosswalkError(f"{name} 中 {id_column} 为 {ids} 的面无效（{why}）：请先修复（gridgeo repair 或 QGIS 的“修复几何”）",
                             f"{name}: the polygons with {id_column} {ids} are invalid ({why}): repair "
                             "them first (gridgeo repair, or QGIS's Fix geometries)")


def _polygonal(geoms):
    """The polygonal part of each geometry (intersections may add lines, points)."""
    kind = shapely.get_type_id(geoms)
    mixed = np.flatnonzero(kind == 7)
    if not mixed.size:
        return geoms
    geoms = geoms.copy()
    parts, owner = shapely.get_parts(geoms[mixed], return_index=True)
    parts, inner = shapely.get_parts(parts, return_index=True)  # multipolygons in a collection
    owner = owner[inner]
    polygon = shapely.get_type_id(parts) == 3
    rebuilt = np.full(len(mixed), shapely.Polygon(), dtype=object)
    parts, owner = parts[polygon], owner[polygon]
    count = np.bincount(owner, minlength=len(mixed))
    single = count[owner] == 1  # most: one polygon and a stray line, taken as it is
    rebuilt[owner[single]] = parts[single]
    if (~single).any():
        found = np.unique(owner[~single])
        rebuilt[found] = shapely.multipolygons(parts[~single], indices=np.searchsorted(found, owner[~single]))
    geoms[mixed] = rebuilt
    return geoms


# ----------------------------------------------------------------------------
# addresses to both layers
# ----------------------------------------------------------------------------


def _address_pairs(layers: _Layers, addresses, indexes, name):
    """Per (grid position, other position): addresses, households, population.

    Each address is assigned to both layers by :func:`gridgeo.assign`'s rule, its
    coordinates read (and converted to EPSG:4490) once for both: the answers of
    ``assign(addresses, index)`` and ``assign(addresses, other_index)``."""
    index, other = indexes
    grid_index = index if index is not None else AssignIndex(layers.grids)
    if not isinstance(grid_index, AssignIndex):
        raise TypeError(f"index should be an AssignIndex of the grids, got {type(grid_index).__name__}")
    level = str(layers.grids["level"].iloc[0])
    grid_index._output_levels([level])  # a KeyError naming the levels when the index lacks it
    other = _other_index(layers.other, layers.other_id) if other is None else _check_other_index(other, layers)
    _, x, y, reason = _storage_points(addresses, crs=None, lon=None, lat=None, name=name)
    usable = np.flatnonzero(reason == 0)
    x, y = x[usable], y[usable]
    # the index's level positions -> this table's grid positions (the same codes, sorted alike or not)
    to_grid = np.r_[pd.Index(layers.codes).get_indexer(grid_index.codes[level].astype(object)), -1]
    grid_pos = to_grid[grid_index._ancestor[grid_index.levels.index(level)][grid_index._locate(x, y)[0]]]
    other_pos = other._ancestor[0][other._locate(x, y)[0]].astype(np.int64)  # positions in id order
    both = (grid_pos >= 0) & (other_pos >= 0)
    counts = {"addresses": np.ones(both.sum())}
    for column in _COUNTS:
        counts[column] = (pd.to_numeric(addresses[column], errors="coerce").fillna(0).to_numpy(float)[usable][both]
                          if column in addresses.columns else np.zeros(both.sum()))
    n_other = len(layers.ids)
    key = grid_pos[both].astype(np.int64) * n_other + other_pos[both]
    pairs, inverse = np.unique(key, return_inverse=True)
    sums = {k: np.bincount(inverse, weights=v, minlength=len(pairs)) for k, v in counts.items()}
    index = pd.MultiIndex.from_arrays([pairs // n_other, pairs % n_other], names=["g", "o"])
    return pd.DataFrame(sums, index=index)


def index_other(other, *, other_id=None, other_crs=None, name="other"):
    """An :class:`~gridgeo.AssignIndex` of another layer, to reuse across crosswalks.

    :func:`crosswalk` assigns the addresses to the other layer's units with
    such an index; it builds one per call unless given one (``other_index=``)
    built here from the same layer (checked: same ids, same polygons).

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> index = gridgeo.crosswalk.index_other(s.precincts, other_id="precinct_id")
    >>> table = gridgeo.crosswalk(s.grids, s.precincts, other_id="precinct_id",
    ...                           addresses=s.addresses, other_index=index)
    >>> int(table["households"].sum()) == int(s.addresses["households"].sum())
    True
    """
    frame, other_id = _other_layer(other, other_id, other_crs, name)
    return _other_index(frame, other_id)


def _other_index(other, other_id):
    """An AssignIndex of the other layer: one partial level whose codes are
    the units' positions (in id order, so ties go to the smallest id)."""
    n = len(other)
    width = max(1, len(str(n - 1)))
    scheme = CodeScheme(levels=(Level("other", width, False, "其他区域", "other area"),), root_digits=0,
                        village_level="other")
    frame = gpd.GeoDataFrame({"code": [str(i).zfill(width) for i in range(n)],
                              "name": other[other_id].to_numpy(dtype=object), "level": "other", "parent": ""},
                             geometry=other.geometry.array, crs=gcrs.STORAGE_CRS)
    return AssignIndex(frame, scheme=scheme, name="other")


def _check_other_index(index, layers: _Layers):
    if not isinstance(index, AssignIndex) or index.levels != ("other",):
        raise TypeError("other_index should come from gridgeo.crosswalk.index_other(other, ...)")
    same = (len(index.grids) == len(layers.ids)
            and (index.grids["name"].to_numpy(dtype=object) == layers.ids).all()
            and shapely.equals_exact(np.asarray(index.grids.geometry.array, dtype=object),
                                     np.asarray(layers.other.geometry.array, dtype=object), 0.0).all())
    if not same:
        raise ValueError("other_index was built from another version of the other layer: build it again "
                         "with gridgeo.crosswalk.index_other")
    return index


def crosswalk(grids, other, *, level="grid2", other_id=None, addresses=None, index=None, other_index=None,
              other_crs=None, sliver_area=DEFAULT_SLIVER_AREA, sliver_width=DEFAULT_SLIVER_WIDTH,
              scheme: CodeScheme = DEFAULT_SCHEME, name="grids", other_name="other", summary: bool = True):
    """How another layer of areas overlaps one level of the grids: one row per overlapping pair.

    The rules (overlap, sliver, nesting, households by assignment) are stated
    once in the module notes of :mod:`gridgeo.crosswalk`.

    Parameters
    ----------
    grids : GeoDataFrame
        Grids (``code``, ``name``, ``level``, ``parent``); only `level` is used.
    other : GeoDataFrame
        The other layer's polygons (police precincts, catchments ...), in any
        CRS :func:`gridgeo.crs.to_storage` knows (or say it with `other_crs`).
    level : str, default "grid2"
        The level of the grids to compare with.
    other_id : str, optional
        The column naming the other layer's units (default: its index).
    addresses : GeoDataFrame, optional
        Address points with ``households`` and ``population`` counts (missing
        columns count 0). Without them those columns are 0.
    index : AssignIndex, optional
        An index of the grids (any levels including `level`) to reuse.
    other_index : AssignIndex, optional
        An index of the other layer from :func:`index_other`, to reuse.
    other_crs : str, optional
        What the other layer's coordinates are, overriding its CRS
        (``"gcj02"`` for an Amap-drawn layer).
    sliver_area : float, default 100
        Overlaps below this many m² are slivers.
    sliver_width : float, default 5
        Overlaps narrower than this many metres are slivers.
    scheme : CodeScheme
    name, other_name : str
        What to call the layers in messages (their file names).
    summary : bool, default True
        Whether to place every unit (:func:`nesting`) for ``attrs["summary"]``;
        False leaves it out (the table is the same).

    Returns
    -------
    GeoDataFrame
        EPSG:4490, columns :data:`PAIR_COLUMNS`: ``code`` (the grid),
        ``other`` (the other unit's id), ``area_m2``, ``share_of_grid`` and
        ``share_of_other`` (the overlap's area over each unit's),
        ``addresses``, ``households`` and ``population`` in the overlap,
        ``sliver``, ``main_of_grid`` (this other unit holds most of the grid)
        and ``main_of_other`` (this grid holds most of the other unit),
        geometry (the overlap). Sorted by code, then other.
        ``attrs["summary"]`` holds, per layer (``"grids"``, ``"other"``), the
        counts of :func:`nesting`'s statuses and of slivers, the thresholds
        and the metric CRS.

    Raises
    ------
    CrosswalkError
        If a layer cannot be used (no such level, no such id column, ids
        missing or repeated, non-polygons, invalid polygons, no CRS).

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> table = gridgeo.crosswalk(s.grids, s.precincts, other_id="precinct_id",
    ...                           addresses=s.addresses)
    >>> bool((table.groupby("code")["share_of_grid"].sum() <= 1 + 1e-9).all())
    True
    >>> int(table["households"].sum()) == int(s.addresses["households"].sum())
    True
    """
    layers, options, table, units = _prepared(grids, other, addresses, (index, other_index), level=level,
                                              other_id=other_id, other_crs=other_crs, scheme=scheme, name=name,
                                              other_name=other_name, sliver_area=sliver_area,
                                              sliver_width=sliver_width, units=summary)
    out = gpd.GeoDataFrame(table[list(PAIR_COLUMNS)], geometry="geometry", crs=gcrs.STORAGE_CRS)
    if summary:
        out.attrs["summary"] = _summary(units, table, layers, options)
    out.attrs["level"] = level
    return out


def with_names(table, grids, other, *, other_id: str, other_name: str = "name"):
    """A crosswalk table with the names people read: ``grid_name`` after ``code`` and
    ``other_name`` after ``other`` (empty where a layer has no name for the unit).

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> table = gridgeo.crosswalk(s.grids, s.precincts, other_id="precinct_id")
    >>> named = with_names(table, s.grids, s.precincts, other_id="precinct_id")
    >>> list(named.columns[:4]), bool(named["other_name"].str.endswith("警格").all())
    (['code', 'grid_name', 'other', 'other_name'], True)
    """
    out = table.copy()
    grid_names = pd.Series(grids["name"].astype(str).to_numpy(), index=grids["code"].astype(str).to_numpy())
    grid_names = grid_names[~grid_names.index.duplicated()]
    names = other[other_name].astype(str).to_numpy() if other_name in other.columns else np.full(len(other), "")
    other_names = pd.Series(names, index=other[other_id].astype(str).to_numpy())
    other_names = other_names[~other_names.index.duplicated()]
    out.insert(out.columns.get_loc("code") + 1, "grid_name",
               grid_names.reindex(out["code"].astype(str)).fillna("").to_numpy())
    out.insert(out.columns.get_loc("other") + 1, "other_name",
               other_names.reindex(out["other"].astype(str)).fillna("").to_numpy())
    out["grid_name"] = out["grid_name"].astype("str")
    out["other_name"] = out["other_name"].astype("str")
    return out


WORKBOOK_SHEETS = ("crosswalk", "misalignment")
"""The sheets of :func:`workbook`: the table of pieces and the places to look at."""


def workbook(table, report) -> bytes:
    """An Excel workbook (.xlsx) of a crosswalk table and its misalignment report: one
    sheet each (:data:`WORKBOOK_SHEETS`), a row per piece or place, the columns as in
    the frames, without geometry (the GeoJSON and the map locate them). Written with
    openpyxl.

    Examples
    --------
    >>> import io, openpyxl, gridgeo
    >>> s = gridgeo.sample.load()
    >>> table = gridgeo.crosswalk(s.grids, s.precincts, other_id="precinct_id")
    >>> report = gridgeo.crosswalk.misalignment(s.grids, s.precincts, other_id="precinct_id")
    >>> book = openpyxl.load_workbook(io.BytesIO(workbook(table, report)))
    >>> book.sheetnames, book["crosswalk"].max_row == len(table) + 1
    (['crosswalk', 'misalignment'], True)
    """
    import io

    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as book:
        for sheet, frame in zip(WORKBOOK_SHEETS, (table, report)):
            plain = pd.DataFrame(frame.drop(columns=[c for c in ("geometry",) if c in frame.columns]))
            plain.to_excel(book, sheet_name=sheet, index=False)
    return buffer.getvalue()


def _thresholds(sliver_area, sliver_width):
    options = {"sliver_area": float(sliver_area), "sliver_width": float(sliver_width)}
    for key, value in options.items():
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{key} should be a non-negative number of metres, got {value!r}")
    return options


def _is_sliver(geoms, options):
    area = shapely.area(geoms)
    perimeter = shapely.length(geoms)
    width = np.divide(2.0 * area, perimeter, out=np.zeros_like(area), where=perimeter > 0)
    return (area < options["sliver_area"]) | (width < options["sliver_width"])


def _pairs(layers: _Layers, addresses, index, options, other_name):
    gi, oi = layers.gi, layers.oi
    area = shapely.area(layers.pieces)
    counts = pd.DataFrame({"addresses": 0.0, **{c: 0.0 for c in _COUNTS}},
                          index=pd.MultiIndex.from_arrays([gi, oi], names=["g", "o"]))
    geoms = layers.pieces
    if addresses is not None:
        found = _address_pairs(layers, addresses, index, "addresses")
        extra = found.index.difference(counts.index)
        if len(extra):  # addresses on edges of polygons that only touch
            gi = np.concatenate([gi, extra.get_level_values(0)])
            oi = np.concatenate([oi, extra.get_level_values(1)])
            area = np.concatenate([area, np.zeros(len(extra))])
            geoms = np.concatenate([geoms, shapely.intersection(layers.grid_m[extra.get_level_values(0)],
                                                                layers.other_m[extra.get_level_values(1)])])
            counts = pd.concat([counts, pd.DataFrame(0.0, index=extra, columns=counts.columns)])
        counts = counts.add(found.reindex(counts.index, fill_value=0.0), fill_value=0.0)
    counts = counts.reindex(pd.MultiIndex.from_arrays([gi, oi]))
    table = pd.DataFrame({
        "code": layers.codes[gi].astype(str),
        "other": layers.ids[oi].astype(str),
        "area_m2": area,
        "share_of_grid": area / layers.grid_area[gi],
        "share_of_other": area / layers.other_area[oi],
        **{c: counts[c].to_numpy().round().astype(np.int64) for c in ("addresses", *_COUNTS)},
        "sliver": _is_sliver(geoms, options),
        "_g": gi, "_o": oi,
    })
    table["main_of_grid"] = _is_main(table, "_g")
    table["main_of_other"] = _is_main(table, "_o")
    # a whole polygon is the layer's own (no round trip through metres); the cuts are transformed
    kind = np.r_[layers.whole, np.zeros(len(geoms) - len(layers.whole), dtype=np.int8)]
    stored = np.empty(len(geoms), dtype=object)
    stored[kind == 1] = np.asarray(layers.grids.geometry.array, dtype=object)[gi[kind == 1]]
    stored[kind == 2] = np.asarray(layers.other.geometry.array, dtype=object)[oi[kind == 2]]
    stored[kind == 0] = _storage(layers, geoms[kind == 0])
    table["geometry"] = stored
    table = table.sort_values(["code", "other"], kind="stable").reset_index(drop=True)
    return table


def _is_main(table, key):
    """True on the row holding the largest area of each unit (ties: first in order)."""
    order = np.lexsort((table["_g" if key == "_o" else "_o"].to_numpy(), -table["area_m2"].to_numpy(),
                        table[key].to_numpy()))
    first = np.r_[True, table[key].to_numpy()[order][1:] != table[key].to_numpy()[order][:-1]]
    main = np.zeros(len(table), dtype=bool)
    main[order[first]] = True
    return main


def _storage(layers: _Layers, geoms):
    return np.asarray(shapely.transform(geoms, lambda xy: np.column_stack(
        layers.to_storage.transform(xy[:, 0], xy[:, 1]))), dtype=object)


# ----------------------------------------------------------------------------
# nesting
# ----------------------------------------------------------------------------


def nesting(grids, other, *, level="grid2", other_id=None, addresses=None, index=None, other_index=None, other_crs=None,
            sliver_area=DEFAULT_SLIVER_AREA, sliver_width=DEFAULT_SLIVER_WIDTH,
            scheme: CodeScheme = DEFAULT_SCHEME, name="grids", other_name="other"):
    """Whether each unit of either layer nests in one unit of the other.

    Parameters are those of :func:`crosswalk`; the rule (nests, split, partly
    outside, outside) is stated once in the module notes.

    Returns
    -------
    GeoDataFrame
        EPSG:4490, columns :data:`UNIT_COLUMNS`, one row per unit of both
        layers: ``layer`` (``"grids"`` or ``"other"``), ``unit`` (code or id),
        ``area_m2``, ``main`` (the unit of the other layer holding most of it;
        missing when none does), ``main_share``, ``parts`` (overlaps that are
        not slivers), ``outside_m2`` (its area outside the other layer),
        ``status`` (``nests``, ``whole units``, ``split``, ``partly outside``,
        ``outside``),
        ``households`` (in the unit, from the addresses; 0 without them),
        geometry (the unit).

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> units = gridgeo.crosswalk.nesting(s.grids, s.precincts, other_id="precinct_id")
    >>> sorted(units["layer"].unique())
    ['grids', 'other']
    """
    layers, options, table, units = _prepared(grids, other, addresses, (index, other_index), level=level,
                                              other_id=other_id, other_crs=other_crs, scheme=scheme, name=name,
                                              other_name=other_name, sliver_area=sliver_area,
                                              sliver_width=sliver_width)
    return units


def _prepared(grids, other, addresses, indexes, *, level, other_id, other_crs, scheme, name, other_name,
              sliver_area, sliver_width, units=True):
    """The two layers read, the thresholds, the overlapping pairs and each unit's place: what
    :func:`crosswalk`, :func:`nesting` and :func:`misalignment` all start from."""
    layers = _layers(grids, other, level=level, other_id=other_id, other_crs=other_crs, scheme=scheme,
                     name=name, other_name=other_name)
    options = _thresholds(sliver_area, sliver_width)
    table = _pairs(layers, addresses, indexes, options, other_name)
    return layers, options, table, _units(layers, table, options) if units else None


def _units(layers: _Layers, table, options):
    frames = []
    for layer, key, ids, areas, geoms, partner in (
            ("grids", "_g", layers.codes, layers.grid_area, layers.grids.geometry.array, "other"),
            ("other", "_o", layers.ids, layers.other_area, layers.other.geometry.array, "code")):
        n = len(ids)
        pos = table[key].to_numpy()
        covered = np.bincount(pos, weights=table["area_m2"].to_numpy(), minlength=n)
        parts = np.bincount(pos[~table["sliver"].to_numpy()], minlength=n)
        households = np.bincount(pos, weights=table["households"].to_numpy(), minlength=n)
        main_rows = table[table["main_of_grid" if key == "_g" else "main_of_other"]]
        main = pd.Series(main_rows[partner].to_numpy(), index=main_rows[key].to_numpy()).reindex(range(n))
        main_share = (pd.Series(main_rows["area_m2"].to_numpy(), index=main_rows[key].to_numpy())
                      .reindex(range(n)).fillna(0.0).to_numpy() / areas)
        outside = np.maximum(areas - covered, 0.0)
        # the part outside the other layer is a sliver when small in area, or
        # narrow: measured exactly only where it is large enough to matter
        outside_sliver = outside < options["sliver_area"]
        check = np.flatnonzero(~outside_sliver)
        if check.size:
            mine = layers.grid_m if key == "_g" else layers.other_m
            theirs = layers.other_m if key == "_g" else layers.grid_m
            outside_sliver[check] = _outside_is_sliver(mine, theirs, check, options)
        status = np.select(
            [parts >= 2, (parts == 1) & outside_sliver, parts == 1],
            ["split", "nests", "partly outside"], "outside")
        # a unit whose only real part is not its main one cannot nest there
        frames.append(pd.DataFrame({
            "layer": layer, "unit": ids.astype(str), "area_m2": areas, "main": main.to_numpy(),
            "main_share": main_share, "parts": parts, "outside_m2": outside, "status": status,
            "households": households.round().astype(np.int64), "geometry": np.asarray(geoms, dtype=object)}))
    units = pd.concat(frames, ignore_index=True)
    _whole_units(units, table)
    units["main"] = units["main"].astype("str")
    return gpd.GeoDataFrame(units, geometry="geometry", crs=gcrs.STORAGE_CRS)


def _whole_units(units, table):
    """Mark as ``whole units`` the split units of the other layer whose every
    real overlap is a grid nesting in them (changes `units` in place)."""
    real = table[~table["sliver"]]
    for layer, mine, theirs in (("other", "other", "code"),):
        partner_layer = "other" if layer == "grids" else "grids"
        partners = units[units["layer"] == partner_layer].set_index("unit")
        nests_in = partners["main"].where(partners["status"] == "nests")
        ok = (nests_in.reindex(real[theirs].to_numpy()).to_numpy(dtype=object) == real[mine].to_numpy(dtype=object))
        whole = pd.Series(ok, index=real[mine].to_numpy()).groupby(level=0).all()
        split = (units["layer"] == layer) & (units["status"] == "split")
        units.loc[split & units["unit"].map(whole).fillna(False).astype(bool), "status"] = "whole units"


def _outside_is_sliver(mine, theirs, positions, options):
    """For each unit of `mine` at `positions`: is its part outside every unit
    of `theirs` made only of slivers?"""
    tree = shapely.STRtree(theirs)
    q, t = tree.query(mine[positions], predicate="intersects")
    result = np.ones(len(positions), dtype=bool)
    for k in range(len(positions)):  # only units with a large uncovered area: few
        near = theirs[t[q == k]]
        rest = shapely.difference(mine[positions[k]], shapely.union_all(near)) if len(near) else mine[positions[k]]
        parts = shapely.get_parts(_polygonal(np.array([rest], dtype=object))[0])
        result[k] = bool(_is_sliver(parts, options).all()) if len(parts) else True
    return result


def _summary(units, table, layers, options):
    summary = {}
    for layer in ("grids", "other"):
        mine = units[units["layer"] == layer]
        summary[layer] = {"units": int(len(mine)),
                          **{s: int((mine["status"] == s).sum()) for s in STATUSES}}
    summary["pairs"] = int(len(table))
    summary["slivers"] = int(table["sliver"].sum())
    summary.update(options)
    summary["metric_crs"] = layers.metric.srs
    return summary


# ----------------------------------------------------------------------------
# misalignment
# ----------------------------------------------------------------------------

#: The columns of :func:`misalignment`'s report, in order (those of
#: :func:`gridgeo.validate`'s report where they mean the same).
REPORT_COLUMNS = ("kind", "severity", "code", "other", "codes", "level", "area_m2", "households",
                  "message_zh", "message_en", "geometry")
#: The kinds of :func:`misalignment`'s rows, in report order.
MISALIGNMENT_KINDS = ("sliver", "gap", "overhang", "uncovered", "beyond", "split", "not_nested")


def misalignment(grids, other, *, level="grid2", other_id=None, addresses=None, index=None, other_index=None,
                 other_crs=None, sliver_area=DEFAULT_SLIVER_AREA, sliver_width=DEFAULT_SLIVER_WIDTH,
                 scheme: CodeScheme = DEFAULT_SCHEME, name="grids", other_name="other"):
    """Where two layers nearly but not quite agree, located, with what to do.

    Parameters are those of :func:`crosswalk` (slivers as defined there).

    Returns
    -------
    GeoDataFrame
        EPSG:4490, columns :data:`REPORT_COLUMNS`, one row per place:

        - ``sliver``: an overlap of a grid and an other unit that is only a
          sliver: the other unit's edge runs within a few metres of the grid's
          but not on it. Suggestion: snap the other layer's edge to the grid
          edge (:func:`align` drafts it).
        - ``gap``: a narrow strip of the grids that no other unit covers (an
          edge drawn a few metres inside); ``overhang``: a narrow strip of the
          other layer outside every grid. Suggestion: snap.
        - ``uncovered``: a wide part of the grids no other unit covers;
          ``beyond``: a wide part of the other layer outside the grids. Said,
          not judged: the other office may cover less on purpose.
        - ``split``: a grid split between several other units (``codes``
          names them), with the households on each side;
        - ``not_nested``: an other unit crossing grid edges; ``codes`` names
          the grids that would have to change for it to nest (or whose edges
          its own would have to follow).

        ``code`` is the grid (empty for rows about the other layer alone),
        ``other`` the other unit (empty when none), ``households`` those of
        the addresses in the located geometry (0 without addresses),
        ``severity`` is ``"warning"`` for every kind: the layers belong to
        different offices, and the report says where they should talk.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> report = gridgeo.crosswalk.misalignment(s.grids, s.precincts, other_id="precinct_id",
    ...                                         addresses=s.addresses)
    >>> set(report["kind"]) <= set(gridgeo.crosswalk.MISALIGNMENT_KINDS)
    True
    """
    layers, options, table, units = _prepared(grids, other, addresses, (index, other_index), level=level,
                                              other_id=other_id, other_crs=other_crs, scheme=scheme, name=name,
                                              other_name=other_name, sliver_area=sliver_area,
                                              sliver_width=sliver_width)
    rows = [_sliver_rows(table, level), _gap_rows(layers, addresses, options, level),
            _split_rows(table, units, level), _not_nested_rows(table, units, level)]
    report = pd.concat([r for r in rows if len(r)] or [pd.DataFrame(columns=list(REPORT_COLUMNS))],
                       ignore_index=True)
    report["kind"] = pd.Categorical(report["kind"], categories=list(MISALIGNMENT_KINDS))
    report = report.sort_values(["kind", "code", "other"], kind="stable").reset_index(drop=True)
    report["kind"] = report["kind"].astype("str")
    for column in ("households",):
        report[column] = report[column].astype(np.int64)
    report = gpd.GeoDataFrame(report[list(REPORT_COLUMNS)], geometry="geometry", crs=gcrs.STORAGE_CRS)
    report.attrs["summary"] = {k: int((report["kind"] == k).sum()) for k in MISALIGNMENT_KINDS}
    return report


def _row(kind, code, other, codes, level, area, households, zh, en, geometry):
    return dict(kind=kind, severity="warning", code=code, other=other, codes=codes, level=level,
                area_m2=float(area), households=int(households), message_zh=zh, message_en=en,
                geometry=geometry)


def _sliver_rows(table, level):
    rows = []
    for r in table[table["sliver"] & (table["area_m2"] > 0)].itertuples():
        rows.append(_row(
            "sliver", r.code, r.other, f"{r.code},{r.other}", level, r.area_m2, r.households,
            f"网格 {r.code} 与 {r.other} 只重叠一条 {r.area_m2:,.1f} 平方米的细条（{r.households} 户）："
            f"两者边界相差几米但不重合。建议把 {r.other} 的边界吸附到网格边界上（crosswalk.align 可起草）。",
            f"grid {r.code} and {r.other} overlap in a sliver of {r.area_m2:,.1f} m² ({r.households} "
            f"households): their edges run within a few metres but do not meet. Snap {r.other}'s edge "
            "to the grid edge (crosswalk.align drafts it).", r.geometry))
    return pd.DataFrame(rows)


def _gap_rows(layers: _Layers, addresses, options, level):
    grid_union = shapely.union_all(layers.grid_m)
    other_union = shapely.union_all(layers.other_m)
    found = []
    for side, geom in (("grids", shapely.difference(grid_union, other_union)),
                       ("other", shapely.difference(other_union, grid_union))):
        parts = shapely.get_parts(_polygonal(np.array([geom], dtype=object))[0])
        parts = parts[shapely.area(parts) > 0]
        found += [(side, p) for p in parts]
    if not found:
        return pd.DataFrame()
    sides = np.array([f[0] for f in found])
    parts = np.array([f[1] for f in found], dtype=object)
    narrow = _is_sliver(parts, options)
    households = _households_in(layers, parts, addresses)
    near_grid = _near(layers.grid_m, parts)
    near_other = _near(layers.other_m, parts)
    geoms = _storage(layers, parts)
    rows = []
    for k in range(len(parts)):
        grids_here = ",".join(layers.codes[near_grid[k]].astype(str))
        others_here = ",".join(layers.ids[near_other[k]].astype(str))
        first_grid = str(layers.codes[near_grid[k][0]]) if len(near_grid[k]) else ""
        first_other = str(layers.ids[near_other[k][0]]) if len(near_other[k]) else ""
        area, hh = shapely.area(parts[k]), households[k]
        codes = ",".join(x for x in (grids_here, others_here) if x)
        if sides[k] == "grids" and narrow[k]:
            rows.append(_row("gap", first_grid, first_other, codes, level, area, hh,
                             f"网格 {grids_here} 边上有一条 {area:,.1f} 平方米的细缝不属于任何区域（{hh} 户）："
                             f"{others_here or '相邻区域'} 的边界画在网格边界里面几米。建议把它吸附到网格边界上。",
                             f"a strip of {area:,.1f} m² along grid(s) {grids_here} lies in no area of the other "
                             f"layer ({hh} households): {others_here or 'the neighbouring area'} was drawn a few "
                             "metres inside the grid edge. Snap it to the grid edge.", geoms[k]))
        elif sides[k] == "grids":
            rows.append(_row("uncovered", first_grid, "", codes, level, area, hh,
                             f"网格 {grids_here} 中有 {area:,.1f} 平方米不属于任何区域（{hh} 户）：请确认是否应由某个区域负责。",
                             f"{area:,.1f} m² of grid(s) {grids_here} lie in no area of the other layer ({hh} "
                             "households): check whether one of its areas should cover them.", geoms[k]))
        elif narrow[k]:
            rows.append(_row("overhang", first_grid, first_other, codes, level, area, hh,
                             f"{others_here} 的边上有一条 {area:,.1f} 平方米的细条伸出网格范围（{hh} 户）："
                             "边界画出网格边界几米。建议把它吸附到网格边界上。",
                             f"a strip of {area:,.1f} m² of {others_here} lies outside every grid ({hh} "
                             "households): its edge was drawn a few metres beyond the grid edge. Snap it to "
                             "the grid edge.", geoms[k]))
        else:
            rows.append(_row("beyond", "", first_other, codes, level, area, hh,
                             f"{others_here} 有 {area:,.1f} 平方米在网格范围之外（{hh} 户）：请确认范围是否正确。",
                             f"{area:,.1f} m² of {others_here} lie beyond the grids ({hh} households): check "
                             "its extent.", geoms[k]))
    return pd.DataFrame(rows)


def _near(geoms, parts, distance=0.01):
    """For each part, the positions of `geoms` within `distance` metres of it, sorted."""
    q, t = shapely.STRtree(geoms).query(parts, predicate="dwithin", distance=distance)
    order = np.lexsort((t, q))
    q, t = q[order], t[order]
    return np.split(t, np.searchsorted(q, np.arange(1, len(parts))))


def _households_in(layers: _Layers, parts, addresses):
    """Households of the addresses inside each part (each address once)."""
    if addresses is None or not len(parts):
        return np.zeros(len(parts), dtype=np.int64)
    points = gcrs.to_storage(addresses, name="addresses").to_crs(layers.metric)
    geoms = np.asarray(points.geometry.array, dtype=object)
    q, t = shapely.STRtree(parts).query(geoms, predicate="intersects")
    first = np.r_[True, q[1:] != q[:-1]] if len(q) else np.zeros(0, dtype=bool)
    q, t = q[first], t[first]
    hh = (pd.to_numeric(points["households"], errors="coerce").fillna(0).to_numpy(float)
          if "households" in points.columns else np.zeros(len(points)))
    return np.bincount(t, weights=hh[q], minlength=len(parts)).round().astype(np.int64)


def _split_rows(table, units, level):
    rows = []
    grids = units[(units["layer"] == "grids") & (units["status"] == "split")]
    real = table[~table["sliver"]]
    for g in grids.itertuples():
        mine = real[real["code"] == g.unit]
        sides = "、".join(f"{o}（{h} 户）" for o, h in zip(mine["other"], mine["households"]))
        sides_en = ", ".join(f"{o} ({h} households)" for o, h in zip(mine["other"], mine["households"]))
        main = g.main
        rows.append(_row("split", g.unit, main, ",".join([g.unit, *mine["other"]]), level, g.area_m2,
                         g.households,
                         f"网格 {g.unit} 被 {len(mine)} 个区域分开：{sides}。建议两方商定：把网格整个归入 {main}，"
                         "或按区域边界调整网格。",
                         f"grid {g.unit} is split between {len(mine)} areas: {sides_en}. Agree with the other "
                         f"office: give the whole grid to {main}, or redraw the grid along their edge.", g.geometry))
    return pd.DataFrame(rows)


def _not_nested_rows(table, units, level):
    rows = []
    others = units[(units["layer"] == "other") & ~units["status"].isin(["nests", "whole units"])]
    real = table[~table["sliver"]]
    for o in others.itertuples():
        mine = real[(real["other"] == o.unit) & (real["share_of_grid"] < 1 - 1e-9)]
        crossing = list(mine["code"])
        moved = int(mine["households"].sum())
        rows.append(_row("not_nested", "", o.unit, ",".join(crossing), level, o.area_m2, moved,
                         f"{o.unit} 不嵌套在网格中（{o.status}）：它跨过网格 {'、'.join(crossing) or '（无）'} 的边界，"
                         f"这些网格在它里面的部分共 {moved} 户。要让它嵌套，需调整这些网格，或让它的边界沿网格边界走。",
                         f"{o.unit} does not nest in the grids ({o.status}): it crosses the edges of grid(s) "
                         f"{', '.join(crossing) or '(none)'}, whose parts inside it hold {moved} households. For it "
                         "to nest, those grids would have to change, or its edge follow theirs.", o.geometry))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------
# carry
# ----------------------------------------------------------------------------


def carry(table, figures=None, *, by="households", points=None, columns=(), category=None):
    """Figures of the grids given to the other layer's units.

    Two ways, as ``maup.assign`` and ``maup.prorate``:

    - **by the points** (`points` given: events, addresses, units): each
      point counts in the overlap holding it (the first in the table's order
      when it lies on an edge between two), so an other unit gets exactly the
      points inside it and inside the grids;
    - **prorated** (`figures` given): each grid's figure is shared among its
      overlaps in proportion to their households (``by="households"``, the
      addresses the crosswalk was given; a grid with none in any overlap is
      shared by area) or their area (``by="area"``). The shares of a grid sum
      to 1 over its overlaps, so the carried figures **sum to the grid
      figures**: a grid with no overlap at all keeps its figure on a row
      whose index is missing (``<NA>``) rather than losing it.

    Parameters
    ----------
    table : GeoDataFrame
        :func:`crosswalk`'s table.
    figures : DataFrame, optional
        Numeric figures per grid, indexed by grid code (or with a ``code``
        column): households, events, coverage counts ...
    by : {"households", "area"}
    points : GeoDataFrame, optional
        Points to count (and sum `columns` of) per other unit.
    columns : sequence of str
        Numeric columns of `points` to sum.
    category : str, optional
        A column of `points` to count per value (events by category).

    Returns
    -------
    DataFrame
        Indexed by the other unit's id (``other``): the carried figures; by
        the points, ``count``, the sums of `columns` and one count column per
        category value. ``attrs["outside"]`` counts the points in no overlap.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> table = gridgeo.crosswalk(s.grids, s.precincts, other_id="precinct_id",
    ...                           addresses=s.addresses)
    >>> per_grid = gridgeo.assign(s.events, s.grids, levels="grid2").groupby("grid2", observed=True).size()
    >>> carried = gridgeo.crosswalk.carry(table, per_grid.rename("events").to_frame())
    >>> int(carried["events"].sum()) == int(per_grid.sum())
    True
    """
    if (figures is None) == (points is None):
        raise TypeError("give either figures (prorated) or points (counted inside each overlap)")
    if points is not None:
        return _carry_points(table, points, columns, category)
    if by not in ("households", "area"):
        raise ValueError(f"by={by!r}: use 'households' or 'area'")
    if isinstance(figures, pd.Series):
        figures = figures.to_frame()
    if "code" in figures.columns:
        figures = figures.set_index("code")
    figures = figures.select_dtypes("number")
    figures.index = figures.index.astype(str)
    weights = _weights(table, by)
    codes = table["code"].to_numpy(dtype=object)
    values = figures.reindex(codes).fillna(0.0).to_numpy(float) * weights[:, None]
    carried = pd.DataFrame(values, columns=figures.columns).groupby(table["other"].to_numpy()).sum()
    lost = figures.index.difference(pd.Index(codes))
    if len(lost):
        carried.loc[pd.NA] = figures.loc[lost].sum()
    carried.index.name = "other"
    return carried


def _weights(table, by):
    codes = table["code"].to_numpy(dtype=object)
    area = table["area_m2"].to_numpy(float)
    area_total = pd.Series(area).groupby(codes).transform("sum").to_numpy()
    by_area = np.divide(area, area_total, out=np.zeros_like(area), where=area_total > 0)
    if by == "area":
        return by_area
    hh = table["households"].to_numpy(float)
    hh_total = pd.Series(hh).groupby(codes).transform("sum").to_numpy()
    return np.where(hh_total > 0, np.divide(hh, hh_total, out=np.zeros_like(hh), where=hh_total > 0), by_area)


def _carry_points(table, points, columns, category):
    stored = gcrs.to_storage(points, name="points")
    geoms = np.asarray(stored.geometry.array, dtype=object)
    q, t = shapely.STRtree(np.asarray(table.geometry.array, dtype=object)).query(geoms, predicate="intersects")
    order = np.lexsort((t, q))
    q, t = q[order], t[order]
    first = np.r_[True, q[1:] != q[:-1]] if len(q) else np.zeros(0, dtype=bool)
    q, t = q[first], t[first]
    other = table["other"].to_numpy(dtype=object)[t]
    data = {"count": np.ones(len(q))}
    for column in columns:
        data[column] = pd.to_numeric(stored[column], errors="coerce").fillna(0).to_numpy(float)[q]
    frame = pd.DataFrame(data)
    if category is not None:
        dummies = pd.get_dummies(stored[category].astype(str).to_numpy()[q], dtype=float)
        frame = pd.concat([frame, dummies], axis=1)
    carried = frame.groupby(other).sum()
    carried = carried.reindex(pd.unique(table["other"])).fillna(0.0).sort_index()
    carried.index.name = "other"
    carried.attrs["outside"] = int(len(points) - len(q))
    return carried


# ----------------------------------------------------------------------------
# align
# ----------------------------------------------------------------------------

#: The columns of :func:`align`'s diff, in order.
DIFF_COLUMNS = ("other", "area_before_m2", "area_after_m2", "moved_m2", "households_in",
                "households_out", "geometry")


def align(grids, other, *, level="grid2", other_id=None, tolerance_m=5.0, addresses=None,
          other_crs=None, scheme: CodeScheme = DEFAULT_SCHEME, name="grids", other_name="other"):
    """A first draft of the other layer with its edges snapped to the grid edges.

    In the grids' metric CRS, a vertex of the other layer that is not on a
    grid edge but ends a segment running along one (both ends and the middle
    within `tolerance_m` metres of the grid edges) moves onto the nearest
    grid vertex within `tolerance_m`, else onto the nearest point of a grid
    edge. Vertices of edges that leave the grid edges (a precinct following a
    road the grids do not) stay. A vertex moves the same way in every polygon holding
    it, so units that shared an edge still share it (``shapely.snap`` on each
    polygon alone would not: neighbours snapped apart leave new overlaps and
    gaps). Repeated vertices are dropped; a polygon the moves make invalid is
    fixed with ``shapely.make_valid``, keeping its polygonal parts. Edges
    farther than `tolerance_m` from any grid edge stay where they are, and no
    vertex is added: a draft for the other office to check, not a decision.

    Parameters
    ----------
    tolerance_m : float, default 5
        How far an edge may move.
    addresses : GeoDataFrame, optional
        Counts the households that change unit in the diff.
    Others as in :func:`crosswalk`.

    Returns
    -------
    aligned : GeoDataFrame
        The other layer, its columns unchanged and its polygons snapped, in
        EPSG:4490, in the order of the ids.
    diff : GeoDataFrame
        EPSG:4490, columns :data:`DIFF_COLUMNS`: per unit that moved, its
        area before and after, the area that changed hands (``moved_m2``,
        the symmetric difference), the households of the addresses that come
        into it and that leave it (0 without addresses), geometry (what
        moved).

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> aligned, diff = gridgeo.crosswalk.align(s.grids, s.precincts, other_id="precinct_id")
    >>> len(aligned) == len(s.precincts) and bool((diff["moved_m2"] > 0).all())
    True
    """
    tolerance_m = float(tolerance_m)
    if not (np.isfinite(tolerance_m) and tolerance_m >= 0):
        raise ValueError(f"tolerance_m should be a non-negative number of metres, got {tolerance_m!r}")
    layers = _layers(grids, other, level=level, other_id=other_id, other_crs=other_crs, scheme=scheme,
                     name=name, other_name=other_name)
    snapped = _snap_vertices(layers.other_m, layers.grid_m, tolerance_m)
    broken = ~shapely.is_valid(snapped)
    if broken.any():
        snapped[broken] = _polygonal(shapely.make_valid(snapped[broken]))
    moved = ~shapely.equals_exact(snapped, layers.other_m, 0.0)
    aligned = layers.other.copy()
    aligned_geoms = np.asarray(aligned.geometry.array, dtype=object).copy()
    aligned_geoms[moved] = _storage(layers, snapped[moved])
    aligned = aligned.set_geometry(gpd.GeoSeries(aligned_geoms, index=aligned.index, crs=gcrs.STORAGE_CRS))
    k = np.flatnonzero(moved)
    change = shapely.symmetric_difference(layers.other_m[k], snapped[k])
    hh_in, hh_out = np.zeros(len(k), dtype=np.int64), np.zeros(len(k), dtype=np.int64)
    if addresses is not None and len(k):
        hh_in, hh_out = _households_moved(layers, aligned, addresses, k)
    diff = gpd.GeoDataFrame({
        "other": layers.ids[k].astype(str), "area_before_m2": layers.other_area[k],
        "area_after_m2": shapely.area(snapped[k]), "moved_m2": shapely.area(change),
        "households_in": hh_in, "households_out": hh_out,
        "geometry": _storage(layers, _polygonal(change))}, geometry="geometry", crs=gcrs.STORAGE_CRS)
    return aligned, diff


def _snap_vertices(geoms, grid_geoms, tolerance):
    """Move the near-miss vertices of `geoms` onto the grid edges (the rule
    is stated in :func:`align`)."""
    rings = shapely.get_rings(geoms)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    unique, inverse = np.unique(coords, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    points = shapely.points(unique)
    edges = shapely.boundary(grid_geoms)
    tree = shapely.STRtree(edges)
    q, t = tree.query_nearest(points, max_distance=tolerance, all_matches=False, return_distance=False)
    distance = np.full(len(points), np.inf)
    distance[q] = shapely.distance(points[q], edges[t])
    # segments of the rings, and whether each lies along a grid edge within the tolerance
    same_ring = ring[1:] == ring[:-1]
    a, b = inverse[:-1][same_ring], inverse[1:][same_ring]
    middle = shapely.points((unique[a] + unique[b]) / 2)
    mq, mt = tree.query_nearest(middle, max_distance=tolerance, all_matches=False)
    middle_near = np.zeros(len(middle), dtype=bool)
    middle_near[mq] = True
    along = (distance[a] <= tolerance) & (distance[b] <= tolerance) & middle_near
    movable = np.zeros(len(points), dtype=bool)
    movable[a[along]] = True
    movable[b[along]] = True
    movable &= distance > 1e-6  # already on a grid edge: stays
    target = unique.copy()
    rest = np.flatnonzero(movable)
    corners = shapely.points(np.unique(shapely.get_coordinates(grid_geoms), axis=0))
    cq, ct = shapely.STRtree(corners).query_nearest(points[rest], max_distance=tolerance, all_matches=False)
    target[rest[cq]] = shapely.get_coordinates(corners[ct])
    rest = np.setdiff1d(rest, rest[cq])
    if rest.size:
        eq, et = tree.query_nearest(points[rest], max_distance=tolerance, all_matches=False)
        near = shapely.line_interpolate_point(edges[et], shapely.line_locate_point(edges[et], points[rest][eq]))
        target[rest[eq]] = shapely.get_coordinates(near)
    moved = shapely.set_coordinates(np.array(geoms, dtype=object).copy(), target[inverse])
    return shapely.remove_repeated_points(moved)


def _households_moved(layers: _Layers, aligned, addresses, moved):
    """Households coming into and leaving each moved unit: the addresses
    assigned to it after and not before, and before and not after."""
    before = assign(addresses, _other_index(layers.other, layers.other_id), name="addresses")["other"]
    after = assign(addresses, _other_index(aligned, layers.other_id), name="addresses")["other"]
    b = np.where(before.isna(), -1, before.cat.codes.to_numpy().astype(np.int64))
    a = np.where(after.isna(), -1, after.cat.codes.to_numpy().astype(np.int64))
    hh = (pd.to_numeric(addresses["households"], errors="coerce").fillna(0).to_numpy(float)
          if "households" in addresses.columns else np.zeros(len(addresses)))
    changed = a != b
    n = len(layers.ids)
    into = np.bincount(a[changed & (a >= 0)], weights=hh[changed & (a >= 0)], minlength=n)
    out = np.bincount(b[changed & (b >= 0)], weights=hh[changed & (b >= 0)], minlength=n)
    return into[moved].round().astype(np.int64), out[moved].round().astype(np.int64)


class _CallableModule(types.ModuleType):
    """``gridgeo.crosswalk`` is this module and its main verb at once:
    ``gridgeo.crosswalk(grids, other)`` and ``gridgeo.crosswalk.carry(...)``."""

    def __call__(self, *args, **kwargs):
        return crosswalk(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
