"""Validation of a grid hierarchy: what is wrong, where, and how to fix it.

:func:`validate` checks a grid layer (every level in one frame, as
:func:`gridgeo.sample.load` gives it, or any part of it) and returns a report
a planner can act on: one row per problem, with a geometry that locates it.
:func:`repair` fixes the geometric problems so that every full level tiles its
parent again, logs every change, and lists every problem it leaves with the
reason and what to do. :func:`summarize` counts a report. Each message says
what :func:`repair` does about its kind, if anything (:data:`KINDS`).

All measuring (areas, widths, distances, tolerances) happens in the metric
CRS :func:`gridgeo.crs.metric_crs` chooses for the whole frame (a CGCS2000
Gauss-Krüger zone or a centred transverse Mercator); report and repaired
frame come back in EPSG:4490.

The report
----------
A GeoDataFrame in EPSG:4490 with these columns (:data:`REPORT_COLUMNS`), in
this order, whatever the input:

=============  ==============================================================
``kind``       what is wrong, one of :data:`KINDS` (``"overlap"``, ``"gap"``...)
``severity``   ``"error"`` or ``"warning"`` (fixed per kind); a layer with an
               error must not be published
``code``       the unit the problem is about; for ``gap``, ``uncovered`` and
               ``sequence_gap`` the parent whose children are at fault
``codes``      every unit involved, comma-joined, ``code`` first (a plain
               string so that the report writes to GeoJSON, GeoPackage and
               Shapefile alike: ``report["codes"].str.split(",")``)
``level``      the level checked (for ``gap``: the level that leaves it)
``parent``     the parent code of the units involved (``""`` at the top)
``area_m2``    the area of the located problem in m² (NaN when not areal)
``message_zh`` what is wrong and what to do, in Chinese
``message_en`` the same in English
``geometry``   where: the overlap, the gap, the invalid edges, the stray
               parts, the part that sticks out, the unit itself
=============  ==============================================================

Rows are sorted errors first, then by level (top first), kind (in the order
of :data:`KINDS`) and code. ``report.attrs["summary"]`` holds
:func:`summarize` of the report plus the number of units checked, the levels
and the metric CRS used.

The checks
----------
Geometry: missing or empty geometries, wrong types (a GeometryCollection,
however nested, is a ``wrong_type`` and the polygons it holds are what every
other check sees), invalid polygons (with GEOS's reason and the edges at
fault; a MultiPolygon with an empty part counts as invalid), duplicate
vertices, slivers.
Topology, per level: overlaps between units of the same level; edges that do
not match their neighbour's (GEOS coverage validation); and for full levels,
gaps under each parent (narrower than ``gap_width``: ``gap``; wider:
``uncovered``). Nesting: the part of a unit outside its parent when it is
more than ``tolerance`` metres out; a unit lying mostly in another parent than
the one it names. Shape: multipart units, holes that no other unit fills,
non-compact units (Polsby-Popper). Codes: unknown levels, malformed,
duplicated, prefixed by another code than the parent's, parents that do not
exist, gaps in sequence numbers, names repeated under one parent.

A partial level (``Level.full`` False, level-3 enterprise plots by default)
gets every check but gaps.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgeo.crs import STORAGE_CRS, metric_crs, to_storage
from gridgeo.schema import DEFAULT_SCHEME, CodeScheme, check, normalise_codes

__all__ = [
    "Kind",
    "KINDS",
    "REPORT_COLUMNS",
    "LOG_COLUMNS",
    "validate",
    "repair",
    "summarize",
]


@dataclass(frozen=True)
class Kind:
    """One kind of problem the report may hold.

    Attributes
    ----------
    name : str
        The value of the report's ``kind`` column.
    severity : {"error", "warning"}
    label_zh, label_en : str
        Short names for maps and summaries.
    advice_zh, advice_en : str
        What to do by hand; the last sentence of every message of this kind.
    repaired : bool
        Whether :func:`repair` attempts to fix it.
    repair_zh, repair_en : str
        What :func:`repair` does about it, and when it does not (empty when it
        does nothing); said in brackets after the advice.
    """

    name: str
    severity: str
    label_zh: str
    label_en: str
    advice_zh: str
    advice_en: str
    repaired: bool = False
    repair_zh: str = ""
    repair_en: str = ""


KINDS = {k.name: k for k in (
    # geometry
    Kind("empty", "error", "几何为空", "empty geometry",
         "请重新绘制该单元的边界", "draw the unit's boundary again"),
    Kind("wrong_type", "error", "几何类型错误", "wrong geometry type",
         "网格必须是面（Polygon 或 MultiPolygon）", "a grid must be a Polygon or MultiPolygon", True,
         "gridgeo.repair 保留其中的面；不含面的须重新绘制",
         "gridgeo.repair keeps the polygons it holds; one holding none must be drawn again"),
    Kind("invalid", "error", "无效多边形", "invalid polygon",
         "请修正标出的边", "fix the marked edges", True,
         "gridgeo.repair 会用 make_valid 修复", "gridgeo.repair applies make_valid"),
    Kind("duplicate_vertex", "warning", "重复顶点", "duplicate vertices",
         "删除重复的顶点", "remove the repeated vertices", True,
         "gridgeo.repair 会删除", "gridgeo.repair removes them"),
    Kind("sliver", "error", "碎片", "sliver",
         "将碎片并入相邻单元或删除", "merge the sliver into its neighbour or delete it", True,
         "gridgeo.repair 删除碎片部分及没有下级单元的碎片单元",
         "gridgeo.repair removes sliver parts, and sliver units with no units below them"),
    # topology
    Kind("overlap", "error", "重叠", "overlap",
         "将重叠部分只划给其中一个单元", "give the overlap to one unit only", True,
         "gridgeo.repair 划给共用边界较长者，但不处理画得完全相同的两个单元和位于另一上级内的单元",
         "gridgeo.repair gives it to the one sharing the longer border, but not between two units drawn "
         "identically nor to or from a unit lying in another parent than it names"),
    Kind("gap", "error", "缝隙", "gap",
         "将缝隙并入相邻单元", "give the gap to a neighbour", True,
         "gridgeo.repair 并入共用边界最长者", "gridgeo.repair gives it to the one sharing the longest border"),
    Kind("uncovered", "error", "未覆盖区域", "uncovered area",
         "补画单元或扩大相邻单元以覆盖该区域", "draw a unit there or extend the neighbours to cover it", True,
         "上级在图层中且其下有单元时，gridgeo.repair 将其分给相邻单元",
         "when the parent is in the layer and has units, gridgeo.repair shares it among the units around it"),
    Kind("edge_mismatch", "error", "边界不吻合", "edges do not match",
         "使相邻单元的共用边界顶点完全一致", "make shared edges use identical vertices", True,
         "gridgeo.repair 会吸附对齐", "gridgeo.repair snaps them"),
    # nesting
    Kind("outside_parent", "error", "超出上级", "outside its parent",
         "将超出部分裁去或修正上级边界", "clip the part outside or correct the parent's boundary", True,
         "gridgeo.repair 会裁去超出部分", "gridgeo.repair clips it off"),
    Kind("wrong_parent", "error", "上级错误", "wrong parent",
         "修正该单元的上级（parent）及编码", "correct the unit's parent (and its code)"),
    # shape
    Kind("multipart", "warning", "多部件", "multipart",
         "确认分离的部分确属该单元，不属于的划给所属单元或删除",
         "check that the separate parts belong to this unit; give those that do not to their unit or delete them"),
    Kind("hole", "warning", "空洞", "hole",
         "确认空洞确实不属于任何单元", "check that the hole belongs to no unit"),
    Kind("non_compact", "warning", "形状狭长", "non-compact",
         "检查边界是否画错", "check the boundary for a drawing mistake"),
    # codes
    Kind("unknown_level", "error", "未知层级", "unknown level",
         "将 level 改为编码方案中的层级", "set level to one of the scheme's levels"),
    Kind("bad_code", "error", "编码格式错误", "malformed code",
         "按编码规则重新编码", "give the unit a code of the right form"),
    Kind("duplicate_code", "error", "编码重复", "duplicate code",
         "为每个单元分配唯一编码", "give each unit its own code"),
    Kind("bad_parent", "error", "上级无效", "bad parent",
         "将 parent 改为上一层级中存在的单元编码",
         "set parent to the code of an existing unit of the level above"),
    Kind("code_prefix", "error", "编码前缀错误", "code prefix",
         "编码应以上级编码开头", "a code must start with its parent's code"),
    Kind("sequence_gap", "warning", "序号不连续", "sequence gap",
         "确认缺号是有意保留的", "check that the missing numbers are meant to be missing"),
    Kind("duplicate_name", "warning", "名称重复", "duplicate name",
         "为同一上级下的单元取不同名称", "give units under one parent different names"),
)}
"""Every kind of problem, in report order: ``KINDS["overlap"].severity``."""

REPORT_COLUMNS = ("kind", "severity", "code", "codes", "level", "parent", "area_m2",
                  "message_zh", "message_en", "geometry")
"""The columns of a :func:`validate` report, in order."""

LOG_COLUMNS = ("step", "kind", "severity", "code", "level", "parent", "area_gained_m2", "area_lost_m2",
               "message_zh", "message_en", "geometry")
"""The columns of a :func:`repair` log, in order."""

_AREA_EPS = 0.01    # m²: smaller overlaps and gaps are floating-point noise of overlays
_LENGTH_EPS = 1e-3  # m: closer vertices are duplicates; shorter edges are noise
_NEAR = 0.01        # m: neighbours' edges closer than this but not identical do not match
_EMPTY = shapely.Polygon()
_POLYGON, _MULTIPOLYGON = 3, 6
_MULTI_TYPES = (4, 5, 6, 7)  # MultiPoint, MultiLineString, MultiPolygon, GeometryCollection
_TYPE_NAMES = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                        "MultiLineString", "MultiPolygon", "GeometryCollection"])

# GEOS's reasons for invalidity (is_valid_reason), in Chinese
_REASONS_ZH = {
    "Self-intersection": "自相交",
    "Ring Self-intersection": "环自相交",
    "Too few points": "顶点过少",
    "Hole lies outside shell": "内环在外环之外",
    "Holes are nested": "内环嵌套",
    "Interior is disconnected": "内部不连通",
    "Nested shells": "外环嵌套",
    "Duplicate Rings": "环重复",
    "Invalid Coordinate": "坐标无效",
    "Ring is not closed": "环未闭合",
    "Empty part": "含有空的部分",  # gridgeo's own: a MultiPolygon with an empty part
}
_REASON = re.compile(r"^(?P<reason>[^\[]+)(?:\[(?P<x>\S+) (?P<y>\S+)\])?")


# ----------------------------------------------------------------------------
# validate
# ----------------------------------------------------------------------------


def validate(grids, *, levels=None, gap_width=2.0, sliver_area=100.0, tolerance=1.0,
             compactness=0.1, scheme: CodeScheme = DEFAULT_SCHEME, source=None, name="grids",
             progress=False, client=None):
    """Check a grid hierarchy and report every problem, where it is and what to do.

    Parameters
    ----------
    grids : GeoDataFrame
        Grid units of one or more levels (``code``, ``name``, ``level``,
        ``parent``, polygons), in any CRS :func:`gridgeo.crs.to_storage`
        accepts. Units of levels not checked still serve as parents.
    levels : list of str, optional
        The levels to check (default: every level present).
    gap_width : float, default 2.0
        Metres. An uncovered piece of a parent narrower than this is a
        ``gap`` (a drawing slip between neighbours); a wider one is
        ``uncovered``. Both are errors.
    sliver_area : float, default 100.0
        Square metres. A unit, or a part of a multipart unit, smaller than
        this is a ``sliver``.
    tolerance : float, default 1.0
        Metres. A unit may stick out of its parent by up to this distance
        before ``outside_parent`` is reported.
    compactness : float, default 0.1
        Units with a Polsby-Popper score ``4πA/P²`` below this (a circle
        scores 1, a 1 × 30 strip 0.1) are reported ``non_compact``.
    scheme : CodeScheme
        Levels, whether each is full or partial, and code widths.
    source : str, int or pyproj.CRS, optional
        The coordinate system of `grids` when it does not say (or says
        wrong), as in :func:`gridgeo.crs.to_storage`.
    name : str, default "grids"
        What to call the input in error messages (a file name).
    progress : bool, default False
        Show a progress bar (tqdm, on stderr) over the checks (over the
        parts, with a `client`).
    client : distributed.Client, optional
        Check on this Dask cluster, one task per top-level unit (see Notes);
        the report is the in-memory one.

    Returns
    -------
    GeoDataFrame
        The report, one row per problem, columns :data:`REPORT_COLUMNS` (see
        the module documentation), in EPSG:4490;
        ``report.attrs["summary"]`` as :func:`summarize` gives it, plus
        ``units``, ``levels`` and ``metric_crs``.

    Raises
    ------
    gridgeo.schema.SchemaError
        If a required column or the CRS is missing: the frame cannot be
        checked at all. Every other problem is a row of the report.
    ValueError
        If an option is out of range or `levels` names an unknown level.

    See Also
    --------
    repair : fixes the geometric problems.
    summarize : counts a (filtered) report.

    Notes
    -----
    The rules at the edges: a unit exactly on its parent's boundary is
    inside; overlaps and gaps smaller than 0.01 m² are floating-point noise
    and ignored; vertices closer than 1 mm are duplicates; edges of
    neighbours that are not identical but cross or run closer than 1 cm are
    ``edge_mismatch`` (the rest of a coverage-invalid edge already shows as an
    overlap or gap). A unit whose
    parent is not in the frame is checked against its siblings only (gaps
    enclosed by them), so one village's grids can be checked alone. A unit
    lying mostly (> 50 %) in another parent is reported ``wrong_parent``, not
    ``outside_parent``, and counts as covering the parent it lies in. Sequence
    numbers run from 1 without a gap; for levels of three digits or more each
    hundred above the first is a series of its own, numbered without a gap from
    its first number (GB/T 10114 numbers streets 001–099 and towns from 100,
    communities 001–199 and villages from 200).

    With a `client`, the units are split as :mod:`gridgeo.distribute` splits
    them: one part per unit of the top level present, holding it and every
    unit below it. Each part is checked on a worker with a halo: every unit
    lying within a metre of one of its units (holes filled), and their
    parents up to the top, so that an overlap, a mismatched edge or a
    neighbour across the partition is seen exactly as in memory; a part
    reports only the problems of its own units (an overlap belongs to the
    smaller code, a gap to its parent). The client checks the codes (they
    need every code at once) and the gaps the top-level units enclose
    between them, and hands every gap to the parts before they look at
    edges (an edge at a gap is the gap's). The rows and their order are the
    in-memory ones. A frame whose codes are empty or not unique, or whose
    checked units do not all reach a top-level unit by their parents, is
    checked as one task.

    Examples
    --------
    >>> import gridgeo
    >>> from gridgeo import sample
    >>> grids = sample.load().grids
    >>> report = gridgeo.validate(grids)
    >>> report.attrs["summary"]["errors"]
    0
    >>> broken = grids.copy()
    >>> first, second = broken.index[broken["level"] == "grid2"][:2]
    >>> broken.loc[first, "geometry"] = broken.loc[second, "geometry"]  # drawn twice
    >>> sorted(set(gridgeo.validate(broken, levels=["grid2"])["kind"]))
    ['overlap', 'uncovered']
    """
    frame = _checked_grids(grids, source=source, scheme=scheme, name=name)
    options = _Options.checked(gap_width=gap_width, sliver_area=sliver_area,
                               tolerance=tolerance, compactness=compactness)
    levels = _levels_to_check(frame, levels, scheme)
    if client is not None:
        return _validate_on(client, frame, scheme, levels, options, progress)
    run = _Run(_Hierarchy.build(frame, scheme, levels), options)
    steps = (_code_problems, *_unit_steps(), _edge_problems)
    pieces = [step(run) for step in _progress(steps, progress, "validating")]
    return _report(pieces, run.h)


def summarize(report) -> dict:
    """Count the problems of a report (or of any filtered part of it).

    Parameters
    ----------
    report : DataFrame
        A :func:`validate` report, possibly filtered.

    Returns
    -------
    dict
        ``errors`` and ``warnings`` (int), ``valid`` (True when there is no
        error), ``by_kind`` ({kind: count}, in :data:`KINDS` order) and
        ``by_level`` ({level: {"error": n, "warning": n}}).

    Examples
    --------
    >>> import gridgeo
    >>> from gridgeo import sample
    >>> report = gridgeo.validate(sample.load().grids, levels=["grid1"])
    >>> summarize(report)["valid"]
    True
    """
    severity = report["severity"]
    errors = int((severity == "error").sum())
    counts = report["kind"].value_counts()
    by_level = {}
    for (level, sev), n in report.groupby(["level", "severity"]).size().items():
        by_level.setdefault(level, {"error": 0, "warning": 0})[sev] = int(n)
    return {
        "errors": errors,
        "warnings": int((severity == "warning").sum()),
        "valid": errors == 0,
        "by_kind": {k: int(counts[k]) for k in KINDS if k in counts.index},
        "by_level": by_level,
    }


# --- input --------------------------------------------------------------------


def _checked_grids(grids, *, source, scheme, name):
    """`grids` in EPSG:4490 with text codes, or a SchemaError/CRSError."""
    if not isinstance(grids, gpd.GeoDataFrame):
        raise TypeError(f"{name} should be a GeoDataFrame, got {type(grids).__name__}")
    frame = to_storage(grids, source=source, name=name)
    check(frame.iloc[:0], "grids", scheme=scheme, name=name)  # columns; rows are the report's job
    frame = frame.copy()
    if "name" in frame.columns:
        frame["name"] = frame["name"].astype(object).where(frame["name"].notna(), "").astype("str")
    return normalise_codes(frame)


def _levels_to_check(frame, levels, scheme):
    if levels is None:
        present = set(frame["level"])
        return tuple(lv for lv in scheme.names if lv in present)
    if isinstance(levels, str):
        levels = [levels]
    unknown = [lv for lv in levels if lv not in scheme.names]
    if unknown:
        raise ValueError(f"levels={unknown} are not levels of the scheme: expected some of {list(scheme.names)}")
    return tuple(lv for lv in scheme.names if lv in set(levels))


@dataclass(frozen=True)
class _Options:
    gap_width: float = 2.0
    sliver_area: float = 100.0
    tolerance: float = 1.0
    compactness: float = 0.1

    @classmethod
    def checked(cls, **values):
        return cls(**{k: _non_negative(k, v) for k, v in values.items()})


def _non_negative(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f"{key} must be a non-negative number, got {value!r}")
    return float(value)


def _progress(steps, progress, desc, unit="check"):
    if not progress:
        return steps
    from tqdm.auto import tqdm

    return tqdm(steps, desc=desc, unit=unit, file=sys.stderr, leave=False)


@dataclass
class _Hierarchy:
    """The frame as arrays, in the metric CRS, with each unit's parent found."""

    frame: gpd.GeoDataFrame
    scheme: CodeScheme
    levels: tuple
    metric: pyproj.CRS
    geoms: np.ndarray      # metric, as given (None, empty, invalid and all)
    polys: np.ndarray      # metric, valid and polygonal (empty when nothing is): topology runs on these
    code: np.ndarray
    level: np.ndarray
    parent: np.ndarray
    name: np.ndarray
    known: np.ndarray      # level is one of the scheme's
    checked: np.ndarray    # level is one of `levels`
    full: np.ndarray       # level is a full level
    parent_level: np.ndarray   # "" at the top or for unknown levels
    parent_pos: np.ndarray     # position of the parent unit, -1 when not in the frame
    alive: np.ndarray = None   # has polygons to work on
    code_form: tuple = None    # see _well_formed

    @classmethod
    def build(cls, frame, scheme, levels, metric=None):
        n = len(frame)
        # with nothing to measure any metric CRS will do
        if metric is None:
            metric = metric_crs(frame) if n and not frame.geometry.is_empty.all() else pyproj.CRS.from_epsg(4549)
        geoms = np.asarray(frame.geometry.to_crs(metric).array, dtype=object)
        code, level, parent = (frame[c].to_numpy(dtype=object) for c in ("code", "level", "parent"))
        names = frame["name"].to_numpy(dtype=object) if "name" in frame.columns else np.full(n, "", object)
        known = np.isin(level, scheme.names)
        parent_of = {lv: (scheme.parent_level(lv) or "") for lv in scheme.names}
        parent_level = np.array([parent_of.get(lv, "") for lv in level], dtype=object)
        full_of = {lv.name: lv.full for lv in scheme.levels}
        return cls(
            frame=frame, scheme=scheme, levels=levels, metric=metric, geoms=geoms,
            polys=_usable_polygons(geoms), code=code, level=level, parent=parent, name=names,
            known=known, checked=np.isin(level, levels) & known,
            full=np.array([full_of.get(lv, False) for lv in level], dtype=bool),
            parent_level=parent_level,
            parent_pos=_parent_positions(code, level, parent, parent_level),
        )

    def __post_init__(self):
        self.alive = ~shapely.is_empty(self.polys)

    def label_zh(self, i):
        return [f"{c}（{n}）" if n else c for c, n in zip(self.code[i], self.name[i])]

    def label_en(self, i):
        return [f"{c} ({n})" if n else c for c, n in zip(self.code[i], self.name[i])]

    def level_label(self, level, lang):
        try:
            lv = self.scheme.level(level)
        except KeyError:
            return level
        return (lv.label if lang == "zh" else lv.label_en) or level


def _usable_polygons(geoms):
    """Valid polygonal versions of `geoms`: the area their polygons cover
    (see :func:`_covered_area`), empty polygons for what has none; valid
    polygons and multipolygons stay as they are."""
    types = shapely.get_type_id(geoms)
    polys = geoms.copy()
    fix = (types >= 0) & (~np.isin(types, (_POLYGON, _MULTIPOLYGON)) | ~shapely.is_valid(geoms)
                          | _has_empty_parts(geoms))
    if fix.any():
        polys[fix] = _covered_area(geoms[fix])
    polys[types < 0] = _EMPTY
    return polys


def _covered_area(geoms):
    """The area the polygons of each geometry cover, as a valid Polygon or
    MultiPolygon: the polygons taken out of collections (however nested;
    lines, points and empty parts dropped), each made valid on its own
    (``make_valid``: a bow-tie becomes two triangles), then those of one
    geometry unioned (parts that overlap, touch along an edge or fill
    another's hole become one; ``make_valid(method="structure")``)."""
    parts, owner = _flat_parts(np.asarray(geoms, dtype=object))
    keep = (shapely.get_type_id(parts) == _POLYGON) & ~shapely.is_empty(parts)
    valid, at = shapely.get_parts(_polygonal(shapely.make_valid(parts[keep])), return_index=True)
    out = _collect(valid, owner[keep][at], len(geoms))
    several = shapely.get_type_id(out) == _MULTIPOLYGON
    if several.any():
        out[several] = _polygonal(shapely.make_valid(out[several], method="structure"))
    return out


def _has_empty_parts(geoms):
    """True for a non-empty MultiPolygon with an empty part (GEOS calls it
    valid; shapefiles cannot hold it, and coverage operations trip on it)."""
    out = np.zeros(len(geoms), dtype=bool)
    multi = np.flatnonzero((shapely.get_type_id(geoms) == _MULTIPOLYGON) & ~shapely.is_empty(geoms))
    if len(multi):
        parts, owner = shapely.get_parts(geoms[multi], return_index=True)
        out[multi] = np.bincount(owner, shapely.is_empty(parts), minlength=len(multi)) > 0
    return out


def _parent_positions(code, level, parent, parent_level):
    first = pd.Series(np.arange(len(code)), index=pd.Index(code, dtype=object))
    first = first[~first.index.duplicated()]
    pos = first.reindex(pd.Index(parent, dtype=object)).fillna(-1).to_numpy(dtype=np.int64)
    found = pos >= 0
    right_level = np.zeros(len(code), dtype=bool)
    right_level[found] = level[pos[found]] == parent_level[found]
    return np.where(found & right_level & (parent_level != ""), pos, -1)


@dataclass
class _Run:
    """One validation: the hierarchy, the options and what earlier steps found."""

    h: _Hierarchy
    options: _Options
    overlaps: tuple = (np.zeros(0, int), np.zeros(0, int), np.zeros(0, object))  # (i, j, geometry)
    geo_parent: np.ndarray = None    # parent position by geometry (wrong_parent units corrected)
    gaps: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # gap and uncovered pieces
    own: np.ndarray = None           # on Dask: the part's own units (the others are its halo)
    top: str = None                  # on Dask: the top level, whose enclosed gaps the client finds

    def rows(self, kind, unit=None, *, geometry, zh, en, code=None, codes=None, level=None,
             parent=None, area=None):
        """Report rows of one kind; `unit` (positions) supplies the defaults."""
        n = len(geometry)
        if n == 0:
            return None
        h, k = self.h, KINDS[kind]
        if unit is not None:
            unit = np.asarray(unit, dtype=np.int64)
            code = h.code[unit] if code is None else code
            level = h.level[unit] if level is None else level
            parent = h.parent[unit] if parent is None else parent
        codes = code if codes is None else [c if isinstance(c, str) else ",".join(c) for c in codes]
        return pd.DataFrame({
            "kind": kind,
            "severity": k.severity,
            "code": np.asarray(code, dtype=object),
            "codes": np.asarray(codes, dtype=object),
            "level": np.asarray(level, dtype=object),
            "parent": np.asarray(parent, dtype=object),
            "area_m2": np.full(n, np.nan) if area is None else np.asarray(area, dtype=float),
            "message_zh": [f"{m}。{_advice(k, 'zh')}。" for m in zh],
            "message_en": [f"{m}. {_advice(k, 'en')}." for m in en],
            "geometry": np.asarray(geometry, dtype=object),
        })


def _advice(kind, lang):
    """The last sentence of a report message: what to do, and what repair does."""
    if lang == "zh":
        return f"{kind.advice_zh}（{kind.repair_zh}）" if kind.repair_zh else kind.advice_zh
    return _sentence(f"{kind.advice_en} ({kind.repair_en})" if kind.repair_en else kind.advice_en)


def _sentence(text):
    """`text` with a capital first letter, but for a name such as gridgeo.repair."""
    return text if text.startswith("gridgeo") else text[:1].upper() + text[1:]


def _report(pieces, h):
    pieces = [p for p in pieces if p is not None and len(p)]
    if pieces:
        table = pd.concat(pieces, ignore_index=True)
    else:
        table = pd.DataFrame({c: pd.Series(dtype=object) for c in REPORT_COLUMNS})
        table["area_m2"] = table["area_m2"].astype(float)
    report = gpd.GeoDataFrame(table, geometry="geometry", crs=h.metric).to_crs(STORAGE_CRS)
    order = pd.DataFrame({
        "severity": report["severity"].map({"error": 0, "warning": 1}),
        "level": report["level"].map({lv: i for i, lv in enumerate(h.scheme.names)}).fillna(99),
        "kind": report["kind"].map({k: i for i, k in enumerate(KINDS)}),
        "code": report["code"],
    })
    report = report.iloc[np.lexsort([order[c].to_numpy() for c in reversed(order.columns)])]
    report = report.reset_index(drop=True)[list(REPORT_COLUMNS)]
    for col in ("kind", "severity", "code", "codes", "level", "parent", "message_zh", "message_en"):
        report[col] = report[col].astype("str")
    report.attrs["summary"] = {**summarize(report), "units": int(h.checked.sum()),
                               "levels": list(h.levels), "metric_crs": _crs_text(h.metric)}
    return report


def _crs_text(crs):
    return crs.name if crs.name != "unknown" else crs.srs


# --- geometry helpers ---------------------------------------------------------------


def _polygonal(geoms):
    """The polygonal part of each geometry: a Polygon, a MultiPolygon or an
    empty Polygon (lines, points and empty parts dropped, collections opened
    however deeply nested, the polygons in the order they come)."""
    geoms = np.asarray(geoms, dtype=object)
    parts, owner = _flat_parts(geoms)
    keep = (shapely.get_type_id(parts) == _POLYGON) & ~shapely.is_empty(parts)
    return _collect(parts[keep], owner[keep], len(geoms))


def _flat_parts(geoms):
    """Every simple part of `geoms` (multi-geometries and collections opened,
    nested ones too) and the position of the geometry it belongs to, in input
    order: owners ascending, parts in the order they are stored."""
    parts, owner = geoms, np.arange(len(geoms))
    multi = np.isin(shapely.get_type_id(parts), _MULTI_TYPES)
    while multi.any():
        # each collection is replaced in place by its parts, so that the order holds
        count = np.where(multi, shapely.get_num_geometries(parts), 1)
        start = np.cumsum(count) - count
        sub, sub_of = shapely.get_parts(parts[multi], return_index=True)
        rank = np.arange(len(sub_of)) - np.searchsorted(sub_of, sub_of)
        flat = np.empty(count.sum(), dtype=object)
        flat_owner = np.empty(count.sum(), dtype=np.int64)
        flat[start[~multi]], flat_owner[start[~multi]] = parts[~multi], owner[~multi]
        at = start[np.flatnonzero(multi)[sub_of]] + rank
        flat[at], flat_owner[at] = sub, owner[multi][sub_of]
        parts, owner = flat, flat_owner
        multi = np.isin(shapely.get_type_id(parts), _MULTI_TYPES)
    return parts, owner


def _collect(parts, owner, n):
    """Polygons `parts` gathered per `owner` into n geometries: the polygon
    itself when one, a MultiPolygon when several (its parts in the order
    given), empty when none. `owner` need not be sorted."""
    out = np.full(n, _EMPTY, dtype=object)
    if len(parts) == 0:
        return out
    # shapely.multipolygons(..., indices=) wants its indices sorted
    order = np.argsort(owner, kind="stable")
    parts, owner = np.asarray(parts, dtype=object)[order], np.asarray(owner)[order]
    counts = np.bincount(owner, minlength=n)
    single = counts[owner] == 1
    out[owner[single]] = parts[single]
    many = ~single
    if many.any():
        uniq, dense = np.unique(owner[many], return_inverse=True)
        out[uniq] = shapely.multipolygons(parts[many], indices=dense)
    return out


def _ring_coordinates(geoms):
    """Coordinates of every ring of polygonal `geoms`: (xy, owner, ring id)."""
    parts, part_owner = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    return xy, part_owner[ring_part[ring]], ring


def _interior_rings(polygons):
    """The holes of `polygons` as rings, and the polygon each belongs to."""
    rings, owner = shapely.get_rings(polygons, return_index=True)
    interior = np.ones(len(rings), dtype=bool)
    interior[np.unique(owner, return_index=True)[1]] = False  # each polygon's first ring is its shell
    return rings[interior], owner[interior]


def _segments(geoms):
    """Every edge of polygonal `geoms`: (start xy, end xy, owner)."""
    xy, owner, ring = _ring_coordinates(geoms)
    same = ring[1:] == ring[:-1]
    return xy[:-1][same], xy[1:][same], owner[:-1][same]


def _width(geoms):
    """Twice the radius of the largest circle inside each polygon, in metres."""
    return 2.0 * shapely.length(shapely.maximum_inscribed_circle(geoms))


def _m2(area):
    return f"{area:,.1f}"


def _union_per_group(geoms, groups):
    """shapely.union_all of `geoms` per group label: (labels, unions)."""
    # shapely has no grouped union: one GEOS call per group (groups are few)
    order = np.argsort(groups, kind="stable")
    labels, starts = np.unique(groups[order], return_index=True)
    chunks = np.split(geoms[order], starts[1:])
    return labels, np.array([shapely.union_all(c) for c in chunks] or [], dtype=object)


def _subtract_per_owner(geoms, owner, cuts):
    """geoms[owner[k]] minus cuts[k], for every k (several cuts per geometry)."""
    geoms = geoms.copy()
    if len(owner) == 0:
        return geoms
    rank = pd.Series(owner).groupby(owner).cumcount().to_numpy()
    for r in range(rank.max() + 1):  # one vectorised difference per round
        sel = rank == r
        geoms[owner[sel]] = shapely.difference(geoms[owner[sel]], cuts[sel])
    return geoms


def _pairs_between(tree_geoms, query_geoms, predicate="intersects", distance=None):
    """(query index, tree index) pairs from an STRtree query."""
    if len(tree_geoms) == 0 or len(query_geoms) == 0:
        return np.zeros(0, int), np.zeros(0, int)
    q, t = shapely.STRtree(tree_geoms).query(query_geoms, predicate=predicate, distance=distance)
    return q, t


# --- the checks: codes ----------------------------------------------------------------


def _unit_steps():
    return (_geometry_problems, _shape_problems, _overlap_problems, _nesting_problems, _gap_problems)


def _code_problems(run):
    return _concat([_unknown_levels(run), _bad_codes(run), _duplicate_codes(run), _bad_parents(run),
                    _code_prefixes(run), _sequence_gaps(run), _duplicate_names(run)])


def _concat(pieces):
    pieces = [p for p in pieces if p is not None and len(p)]
    return pd.concat(pieces, ignore_index=True) if pieces else None


def _locator(h, i):
    """Geometry to show a unit by: its polygons, else whatever it has."""
    i = np.asarray(i, dtype=np.int64)
    polys = h.polys[i]
    return np.where(shapely.is_empty(polys), h.geoms[i], polys)


def _unknown_levels(run):
    h = run.h
    bad = np.flatnonzero(~h.known)
    expected = "、".join(h.scheme.names)
    return run.rows("unknown_level", bad, geometry=_locator(h, bad), parent=h.parent[bad],
                    zh=[f"{c} 的层级“{lv}”不在编码方案中（应为 {expected}）"
                        for c, lv in zip(h.code[bad], h.level[bad])],
                    en=[f"{c} has level {lv!r}, which is not one of {', '.join(h.scheme.names)}"
                        for c, lv in zip(h.code[bad], h.level[bad])])


def _well_formed(h):
    """(all digits, length, expected length) of every code."""
    if h.code_form is None:
        width = {lv: h.scheme.width(lv) for lv in h.scheme.names}
        codes = pd.Series(h.code, dtype="str")
        h.code_form = (codes.str.isdigit().to_numpy(dtype=bool), codes.str.len().to_numpy(),
                       np.array([width.get(lv, -1) for lv in h.level]))
    return h.code_form


def _bad_codes(run):
    h = run.h
    digits, lengths, width = _well_formed(h)
    bad = np.flatnonzero(h.checked & (~digits | (lengths != width)))
    zh, en = [], []
    for i in bad:
        if not digits[i]:
            zh.append(f"第 {h.frame.index[i]} 行的编码“{h.code[i]}”不是纯数字")
            en.append(f"row {h.frame.index[i]}: code {h.code[i]!r} is not all digits")
        else:
            zh.append(f"{h.code[i]} 为{h.level_label(h.level[i], 'zh')}，"
                      f"编码应为 {width[i]} 位，实为 {lengths[i]} 位")
            en.append(f"{h.code[i]} is a {h.level[i]} code, which has {width[i]} digits, not {lengths[i]}")
    return run.rows("bad_code", bad, geometry=_locator(h, bad), zh=zh, en=en)


def _duplicate_codes(run):
    h = run.h
    codes = pd.Series(h.code)
    dup = codes.duplicated(keep=False).to_numpy() & (codes != "").to_numpy()
    groups = pd.Series(np.flatnonzero(dup)).groupby(h.code[dup])
    firsts, members = [], []
    for _, pos in groups:
        pos = pos.to_numpy()
        if h.checked[pos].any():
            firsts.append(pos[0])
            members.append(pos)
    if not firsts:
        return None
    owner = np.concatenate([np.full(len(m), k) for k, m in enumerate(members)])
    geometry = _collect_any(h, np.concatenate(members), owner, len(members))
    rows = [", ".join(map(str, h.frame.index[m])) for m in members]
    return run.rows("duplicate_code", firsts, geometry=geometry,
                    codes=[[h.code[firsts[k]]] * len(m) for k, m in enumerate(members)],
                    zh=[f"编码 {h.code[f]} 被第 {r} 行重复使用" for f, r in zip(firsts, rows)],
                    en=[f"code {h.code[f]} is used by rows {r}" for f, r in zip(firsts, rows)])


def _collect_any(h, units, owner, n):
    """The polygons of `units` gathered per owner (for locating groups)."""
    parts, part_owner = shapely.get_parts(h.polys[units], return_index=True)
    return _collect(parts, owner[part_owner], n)


def _bad_parents(run):
    h = run.h
    present_levels = set(h.level)
    code_level = dict(zip(h.code[::-1], h.level[::-1]))  # first occurrence wins
    zh, en, bad = [], [], []
    for i in np.flatnonzero(h.checked & (h.parent_pos < 0)):
        code, parent, plevel = h.code[i], h.parent[i], h.parent_level[i]
        if not plevel:
            if parent and parent != code[: h.scheme.root_digits]:
                bad.append(i)
                zh.append(f"{code} 为最高层级，不应有上级，却写为 {parent}")
                en.append(f"{code} is at the top level and has no parent, but parent is {parent}")
            continue
        plabel_zh, level_zh = h.level_label(plevel, "zh"), h.level_label(h.level[i], "zh")
        if not parent:
            bad.append(i)
            zh.append(f"{code} 没有填写上级（应为某个{plabel_zh}）")
            en.append(f"{code} has no parent: a {h.level[i]} needs a {plevel}")
        elif parent in code_level:
            bad.append(i)
            zh.append(f"{code} 的上级 {parent} 是{h.level_label(code_level[parent], 'zh')}，"
                      f"{level_zh}的上级应为{plabel_zh}")
            en.append(f"the parent of {code}, {parent}, is a {code_level[parent]}; "
                      f"a {h.level[i]}'s parent must be a {plevel}")
        elif plevel in present_levels:
            bad.append(i)
            zh.append(f"{code} 的上级 {parent} 不存在")
            en.append(f"the parent of {code}, {parent}, does not exist")
    return run.rows("bad_parent", bad, geometry=_locator(h, bad), zh=zh, en=en)


def _code_prefixes(run):
    h = run.h
    digits, lengths, width = _well_formed(h)
    ok = h.checked & digits & (lengths == width)
    root = h.scheme.root
    wrong_parent = np.array([bool(p) and h.parent_level[i] != "" and not c.startswith(p)
                             for i, (c, p) in enumerate(zip(h.code, h.parent))], dtype=bool)
    wrong_root = np.array([bool(root) and not c.startswith(root) for c in h.code], dtype=bool)
    bad = np.flatnonzero(ok & (wrong_parent | wrong_root))
    zh = [f"{h.code[i]} 不以上级编码 {h.parent[i]} 开头" if wrong_parent[i]
          else f"{h.code[i]} 不以区县编码 {root} 开头" for i in bad]
    en = [f"{h.code[i]} does not start with its parent's code {h.parent[i]}" if wrong_parent[i]
          else f"{h.code[i]} does not start with the county code {root}" for i in bad]
    return run.rows("code_prefix", bad, geometry=_locator(h, bad), zh=zh, en=en)


def _sequence_gaps(run):
    h = run.h
    digits, lengths, width = _well_formed(h)
    units = np.flatnonzero(h.checked & digits & (lengths == width))
    if len(units) == 0:
        return None
    step = np.array([h.scheme.level(lv).digits for lv in h.level[units]])
    seq = np.array([int(c[-d:]) for c, d in zip(h.code[units], step)])
    series = np.where(step >= 3, seq // 100, 0)
    table = pd.DataFrame({"parent": h.parent[units], "level": h.level[units], "series": series,
                          "seq": seq, "unit": units})
    table = table.sort_values(["parent", "level", "series", "seq"]).drop_duplicates(["parent", "level", "seq"])
    # a series numbers from 1, or (hundreds above the first) from its first number
    by_series = table.groupby(["parent", "level", "series"])["seq"]
    first = np.where(table["series"] == 0, 1, by_series.transform("min"))
    previous = by_series.shift()
    table["previous"] = previous.fillna(pd.Series(first - 1, index=table.index)).astype(int)
    holes = table[table["seq"] - table["previous"] > 1]
    if holes.empty:
        return None
    spans = [str(a) if a == b else f"{a}–{b}" for a, b in zip(holes["previous"] + 1, holes["seq"] - 1)]
    missing = pd.Series(spans, index=holes.index).groupby([holes["parent"], holes["level"]]).agg(", ".join)
    keys = list(missing.index)
    sibling = table.groupby(["parent", "level"])["unit"].apply(np.asarray)
    members = [sibling[k] for k in keys]
    parent_pos = h.parent_pos[[m[0] for m in members]]
    owner = np.concatenate([np.full(len(m), k) for k, m in enumerate(members)])
    geometry = _collect_any(h, np.concatenate(members), owner, len(members))
    geometry = np.where(parent_pos >= 0, h.polys[np.maximum(parent_pos, 0)], geometry)
    parents = [p for p, _ in keys]
    levels = [lv for _, lv in keys]
    return run.rows("sequence_gap", None, geometry=geometry, code=parents, level=levels, parent=parents,
                    zh=[f"{p or '顶层'} 下的{h.level_label(lv, 'zh')}缺少序号 {m}"
                        for (p, lv), m in missing.items()],
                    en=[f"the {lv} units under {p or 'the top'} skip sequence number(s) {m}"
                        for (p, lv), m in missing.items()])


def _duplicate_names(run):
    h = run.h
    units = np.flatnonzero(h.checked & (h.name != ""))
    table = pd.DataFrame({"parent": h.parent[units], "level": h.level[units], "name": h.name[units],
                          "unit": units})
    table = table[table.duplicated(["parent", "level", "name"], keep=False)]
    if table.empty:
        return None
    table = table.assign(code=h.code[table["unit"]]).sort_values("code")
    groups = table.groupby(["parent", "level", "name"])["unit"].apply(np.asarray)
    members = list(groups)
    owner = np.concatenate([np.full(len(m), k) for k, m in enumerate(members)])
    geometry = _collect_any(h, np.concatenate(members), owner, len(members))
    firsts = [m[0] for m in members]
    return run.rows("duplicate_name", firsts, geometry=geometry, codes=[h.code[m] for m in members],
                    zh=[f"{p or '顶层'} 下有 {len(m)} 个单元同名“{nm}”：{'、'.join(h.code[m])}"
                        for (p, _, nm), m in zip(groups.index, members)],
                    en=[f"{len(m)} units under {p or 'the top'} are named {nm!r}: {', '.join(h.code[m])}"
                        for (p, _, nm), m in zip(groups.index, members)])


# --- the checks: geometry ---------------------------------------------------------------


def _geometry_problems(run):
    return _concat([_empty_geometries(run), _wrong_types(run), _invalid_polygons(run),
                    _duplicate_vertices(run)])


def _empty_geometries(run):
    h = run.h
    types = shapely.get_type_id(h.geoms)
    bad = np.flatnonzero(h.checked & ((types < 0) | shapely.is_empty(h.geoms)))
    where = h.parent_pos[bad]
    geometry = np.full(len(bad), None, dtype=object)
    located = where >= 0
    geometry[located] = shapely.point_on_surface(h.polys[where[located]])
    what_zh = ["几何缺失" if types[i] < 0 else "几何为空" for i in bad]
    what_en = ["has no geometry" if types[i] < 0 else "has an empty geometry" for i in bad]
    return run.rows("empty", bad, geometry=geometry,
                    zh=[f"{lab} {w}（位置取其上级内一点）" if loc else f"{lab} {w}"
                        for lab, w, loc in zip(h.label_zh(bad), what_zh, located)],
                    en=[f"{lab} {w}" + (" (shown at a point of its parent)" if loc else "")
                        for lab, w, loc in zip(h.label_en(bad), what_en, located)])


def _wrong_types(run):
    h = run.h
    types = shapely.get_type_id(h.geoms)
    bad = np.flatnonzero(h.checked & (types >= 0) & ~shapely.is_empty(h.geoms)
                         & ~np.isin(types, (_POLYGON, _MULTIPOLYGON)))
    if len(bad) == 0:
        return None
    has_area = ~shapely.is_empty(h.polys[bad])
    inner = _polygonal(h.geoms[bad])  # the polygons it holds, as drawn
    reason = np.where(shapely.is_valid(inner), "", shapely.is_valid_reason(inner))
    what = [_REASON.match(r)["reason"].strip() if r else "" for r in reason]
    kinds = _TYPE_NAMES[types[bad]]
    return run.rows("wrong_type", bad, geometry=h.geoms[bad],
                    zh=[f"{lab} 的几何是 {t}" + (f"（其中含有面，合为一个 MultiPolygon 时无效：{_REASONS_ZH.get(w, w)}）"
                                                if a and w else "（其中含有面）" if a else "（其中没有面）")
                        for lab, t, a, w in zip(h.label_zh(bad), kinds, has_area, what)],
                    en=[f"{lab} is a {t}" + (f" (holding polygons, not valid as one MultiPolygon: {w})" if a and w
                                             else " (holding polygons)" if a else " (holding no polygon)")
                        for lab, t, a, w in zip(h.label_en(bad), kinds, has_area, what)])


def _invalid_polygons(run):
    h = run.h
    types = shapely.get_type_id(h.geoms)
    polygonal = h.checked & np.isin(types, (_POLYGON, _MULTIPOLYGON)) & ~shapely.is_empty(h.geoms)
    bad = np.flatnonzero(polygonal & (~shapely.is_valid(h.geoms) | _has_empty_parts(h.geoms)))
    if len(bad) == 0:
        return None
    reasons = np.where(shapely.is_valid(h.geoms[bad]), "Empty part", shapely.is_valid_reason(h.geoms[bad]))
    parsed = [_REASON.match(r) for r in reasons]
    what = [m["reason"].strip() for m in parsed]
    xy = np.array([(float(m["x"]), float(m["y"])) if m["x"] else (np.nan, np.nan) for m in parsed])
    geometry = _edges_at(h.geoms[bad], xy)
    where_en = [f" at ({x:.1f}, {y:.1f}) in {_crs_text(h.metric)}" if np.isfinite(x) else "" for x, y in xy]
    return run.rows("invalid", bad, geometry=geometry,
                    zh=[f"{lab} 不是有效多边形：{_REASONS_ZH.get(w, w)}"
                        for lab, w in zip(h.label_zh(bad), what)],
                    en=[f"{lab} is not a valid polygon: {w}{where}"
                        for lab, w, where in zip(h.label_en(bad), what, where_en)])


def _edges_at(geoms, xy):
    """The edges of each geometry passing through its point xy (the edges GEOS
    blames); the point itself when none does, the boundary when xy is NaN."""
    start, end, owner = _segments(geoms)
    p = xy[owner]
    d = end - start
    t = np.clip(np.einsum("ij,ij->i", p - start, d) / np.maximum(np.einsum("ij,ij->i", d, d), 1e-300), 0, 1)
    near = np.hypot(*(start + t[:, None] * d - p).T) < _LENGTH_EPS
    lines = shapely.linestrings(np.stack([start[near], end[near]], axis=1))
    out = np.full(len(geoms), None, dtype=object)
    if near.any():
        uniq, dense = np.unique(owner[near], return_inverse=True)
        out[uniq] = shapely.multilinestrings(lines, indices=dense)
    missing = np.array([g is None for g in out], dtype=bool)
    has_point = np.isfinite(xy[:, 0])
    out[missing & has_point] = shapely.points(xy[missing & has_point])
    out[missing & ~has_point] = shapely.boundary(geoms[missing & ~has_point])
    return out


def _duplicate_vertices(run):
    h = run.h
    units = np.flatnonzero(h.checked & h.alive)
    drawn = h.geoms[units]
    collections = ~np.isin(shapely.get_type_id(drawn), (_POLYGON, _MULTIPOLYGON))
    drawn[collections] = _polygonal(drawn[collections])  # the polygons a collection holds, as drawn
    xy, owner, ring = _ring_coordinates(drawn)
    same_ring = ring[1:] == ring[:-1]
    repeated = same_ring & (np.hypot(*(xy[1:] - xy[:-1]).T) < _LENGTH_EPS)
    if not repeated.any():
        return None
    where, counts = np.unique(owner[:-1][repeated], return_counts=True)
    uniq, dense = np.unique(owner[:-1][repeated], return_inverse=True)
    points = shapely.multipoints(xy[1:][repeated], indices=dense)
    bad = units[where]
    return run.rows("duplicate_vertex", bad, geometry=points,
                    zh=[f"{lab} 有 {n} 处重复顶点（相距不到 1 毫米）"
                        for lab, n in zip(h.label_zh(bad), counts)],
                    en=[f"{lab} repeats a vertex {n} time(s) (less than 1 mm apart)"
                        for lab, n in zip(h.label_en(bad), counts)])


# --- the checks: shape ---------------------------------------------------------------


def _shape_problems(run):
    return _concat([_slivers_and_parts(run), _holes(run), _non_compact(run)])


def _slivers_and_parts(run):
    h, limit = run.h, run.options.sliver_area
    units = np.flatnonzero(h.checked & h.alive)
    parts, owner = shapely.get_parts(h.polys[units], return_index=True)
    area = shapely.area(parts)
    sliver = area < limit
    out = []

    has_sliver = np.flatnonzero(np.bincount(owner, sliver, minlength=len(units)) > 0)
    if len(has_sliver):
        geometry = _collect(parts[sliver], owner[sliver], len(units))[has_sliver]
        sliver_area = np.bincount(owner, np.where(sliver, area, 0), minlength=len(units))[has_sliver]
        n_parts = np.bincount(owner, minlength=len(units))[has_sliver]
        n_slivers = np.bincount(owner, sliver, minlength=len(units))[has_sliver].astype(int)
        bad = units[has_sliver]
        whole = n_parts == n_slivers
        out.append(run.rows(
            "sliver", bad, geometry=geometry, area=sliver_area,
            zh=[f"{lab} 面积仅 {_m2(a)} 平方米，小于碎片阈值 {_m2(limit)} 平方米" if w
                else f"{lab} 有 {k} 个碎片部分，共 {_m2(a)} 平方米（每块小于 {_m2(limit)} 平方米）"
                for lab, a, w, k in zip(h.label_zh(bad), sliver_area, whole, n_slivers)],
            en=[f"{lab} is a sliver of {_m2(a)} m², below sliver_area={_m2(limit)} m²" if w
                else f"{lab} has {k} sliver part(s) of {_m2(a)} m² in all (each below {_m2(limit)} m²)"
                for lab, a, w, k in zip(h.label_en(bad), sliver_area, whole, n_slivers)]))

    # the parts that are not slivers: more than one is a multipart unit; the
    # largest is the unit, the others are located as its stray parts
    big = np.flatnonzero(~sliver)
    n_big = np.bincount(owner[big], minlength=len(units))
    order = big[np.lexsort((-area[big], owner[big]))]
    rank = pd.Series(owner[order]).groupby(owner[order]).cumcount().to_numpy()
    stray = order[rank > 0]
    multi = np.flatnonzero(n_big >= 2)
    if len(multi):
        geometry = _collect(parts[stray], owner[stray], len(units))[multi]
        stray_area = np.bincount(owner[stray], area[stray], minlength=len(units))[multi]
        bad = units[multi]
        out.append(run.rows(
            "multipart", bad, geometry=geometry, area=stray_area,
            zh=[f"{lab} 由 {n} 块互不相连的部分组成，除最大一块外共 {_m2(a)} 平方米"
                for lab, n, a in zip(h.label_zh(bad), n_big[multi], stray_area)],
            en=[f"{lab} has {n} separate parts; those besides the largest cover {_m2(a)} m²"
                for lab, n, a in zip(h.label_en(bad), n_big[multi], stray_area)]))
    return _concat(out)


def _holes(run):
    """Holes no unit of the same level fills, where the gap check does not
    already cover them (partial levels, the top level, absent parents)."""
    h = run.h
    alone = ~h.full | (h.parent_level == "") | (h.parent_pos < 0)
    units = np.flatnonzero(h.checked & h.alive & alone)
    if len(units) == 0:
        return None
    parts, part_owner = shapely.get_parts(h.polys[units], return_index=True)
    rings, ring_part = _interior_rings(parts)
    if len(rings) == 0:
        return None
    holes = shapely.polygons(rings)
    hole_unit = units[part_owner[ring_part]]
    same_level = np.flatnonzero(h.alive)
    q, t = _pairs_between(h.polys[same_level], holes)
    t = same_level[t]
    keep = (h.level[t] == h.level[hole_unit[q]]) & (t != hole_unit[q])
    q, t = q[keep], t[keep]
    filled = np.bincount(q, shapely.area(shapely.intersection(holes[q], h.polys[t])), minlength=len(holes))
    open_area = shapely.area(holes) - filled
    bad = np.flatnonzero(open_area > _AREA_EPS)
    unit = hole_unit[bad]
    return run.rows("hole", unit, geometry=holes[bad], area=open_area[bad],
                    zh=[f"{lab} 有一个 {_m2(a)} 平方米的空洞，不属于任何同级单元"
                        for lab, a in zip(h.label_zh(unit), open_area[bad])],
                    en=[f"{lab} has a hole of {_m2(a)} m² that no other unit of its level fills"
                        for lab, a in zip(h.label_en(unit), open_area[bad])])


def _non_compact(run):
    h, limit = run.h, run.options.compactness
    units = np.flatnonzero(h.checked & h.alive)
    polys = h.polys[units]
    score = 4 * np.pi * shapely.area(polys) / np.maximum(shapely.length(polys), 1e-300) ** 2
    low = np.flatnonzero(score < limit)
    bad = units[low]
    return run.rows("non_compact", bad, geometry=h.polys[bad],
                    zh=[f"{lab} 形状狭长，紧凑度（Polsby-Popper）仅 {s:.3f}，低于 {limit}"
                        for lab, s in zip(h.label_zh(bad), score[low])],
                    en=[f"{lab} is very elongated: Polsby-Popper {s:.3f} below compactness={limit}"
                        for lab, s in zip(h.label_en(bad), score[low])])


# --- the checks: topology ---------------------------------------------------------------


def _overlap_problems(run):
    """Overlaps between any two units of one level (siblings or not)."""
    h = run.h
    units = np.flatnonzero(h.checked & h.alive)
    polys = h.polys[units]
    pairs = [np.zeros((2, 0), dtype=int)]
    for level in h.levels:  # one tree per level: units overlap their ancestors by design
        mine = np.flatnonzero(h.level[units] == level)
        q, t = _pairs_between(polys[mine], polys[mine])
        pairs.append(np.stack([mine[q], mine[t]]))
    q, t = np.concatenate(pairs, axis=1)
    q, t = q[q < t], t[q < t]
    order = np.lexsort((t, q))  # in the frame's order, whatever the trees' (a part on Dask has its own)
    q, t = q[order], t[order]
    inner = shapely.relate_pattern(polys[q], polys[t], "T********")
    q, t = q[inner], t[inner]
    shared = _polygonal(shapely.intersection(polys[q], polys[t]))
    area = shapely.area(shared)
    real = area > _AREA_EPS
    i, j, shared, area = units[q[real]], units[t[real]], shared[real], area[real]
    swap = h.code[i] > h.code[j]
    i, j = np.where(swap, j, i), np.where(swap, i, j)
    run.overlaps = (i, j, shared)
    share_i = area / shapely.area(h.polys[i])
    share_j = area / shapely.area(h.polys[j])
    return run.rows(
        "overlap", i, geometry=shared, area=area, codes=list(zip(h.code[i], h.code[j])),
        zh=[f"{a} 与 {b} 重叠 {_m2(s)} 平方米（占前者 {pi:.1%}、后者 {pj:.1%}）"
            for a, b, s, pi, pj in zip(h.label_zh(i), h.label_zh(j), area, share_i, share_j)],
        en=[f"{a} and {b} overlap by {_m2(s)} m² ({pi:.1%} of the first, {pj:.1%} of the second)"
            for a, b, s, pi, pj in zip(h.label_en(i), h.label_en(j), area, share_i, share_j)])


def _edge_problems(run):
    """Edges that do not match their neighbour's (GEOS coverage validation,
    gaps thinner than 1 cm counting as mismatched edges), but for the segments
    at an overlap or a gap the report already holds."""
    h = run.h
    i, j, shared = run.overlaps
    overlap_owner = np.concatenate([i, j, np.full(len(run.gaps), -1)])
    overlaps = np.concatenate([shared, shared, run.gaps])
    pieces = []
    for level in h.levels:
        units = np.flatnonzero(h.checked & h.alive & (h.level == level))
        if len(units) < 2:
            continue
        edges = shapely.coverage_invalid_edges(h.polys[units], gap_width=_NEAR)
        flagged = np.flatnonzero(~shapely.is_empty(edges))
        if len(flagged) == 0:
            continue
        # GEOS returns whole segments: drop those touching an overlap of their unit
        segments, owner = _line_segments(edges[flagged])
        owner = units[flagged[owner]]
        s, o = _pairs_between(overlaps, segments, predicate="dwithin", distance=_LENGTH_EPS)
        explained = np.zeros(len(segments), dtype=bool)
        explained[s[(overlap_owner[o] == owner[s]) | (overlap_owner[o] < 0)]] = True
        keep = ~explained
        bad, dense = np.unique(owner[keep], return_inverse=True)
        lines = shapely.line_merge(shapely.multilinestrings(segments[keep], indices=dense)) if keep.any() else []
        length = shapely.length(lines)
        pieces.append(run.rows(
            "edge_mismatch", bad, geometry=lines,
            zh=[f"{lab} 有 {n:,.1f} 米边界与相邻单元的顶点不一致"
                for lab, n in zip(h.label_zh(bad), length)],
            en=[f"{n:,.1f} m of the edges of {lab} do not match their neighbours' vertices"
                for lab, n in zip(h.label_en(bad), length)]))
    return _concat(pieces)


def _line_segments(lines):
    """Every two-point segment of `lines`, and the line it comes from."""
    parts, part_owner = shapely.get_parts(lines, return_index=True)
    xy, at = shapely.get_coordinates(parts, return_index=True)
    same = at[1:] == at[:-1]
    segments = shapely.linestrings(np.stack([xy[:-1][same], xy[1:][same]], axis=1)) if same.any() else \
        np.zeros(0, dtype=object)
    return segments, part_owner[at[:-1][same]]


# --- the checks: nesting ---------------------------------------------------------------


def _nesting_problems(run):
    """Units outside their parent: mostly in another one (wrong_parent), or
    sticking out by more than the tolerance (outside_parent)."""
    h = run.h
    run.geo_parent = h.parent_pos.copy()
    alive = h.alive
    units = np.flatnonzero(h.checked & alive & (h.parent_pos >= 0))
    units = units[alive[h.parent_pos[units]]]
    parents = h.parent_pos[units]
    shapely.prepare(h.polys[parents])
    out = ~shapely.covered_by(h.polys[units], h.polys[parents])
    units, parents = units[out], parents[out]
    if len(units) == 0:
        return None
    outside = _polygonal(shapely.difference(h.polys[units], h.polys[parents]))
    area = shapely.area(h.polys[units])
    share_in = 1.0 - shapely.area(outside) / area

    best, best_area = _largest_parent(h, units[share_in < 0.5])
    wrong = np.zeros(len(units), dtype=bool)
    wrong[share_in < 0.5] = (best >= 0) & (best != parents[share_in < 0.5]) & (best_area > 0.5 * area[share_in < 0.5])
    best_all = np.full(len(units), -1)
    best_all[share_in < 0.5] = best
    share_best = np.zeros(len(units))
    share_best[share_in < 0.5] = best_area / area[share_in < 0.5]
    run.geo_parent[units[wrong]] = best_all[wrong]

    distance = _farthest_out(outside, h.polys[parents])
    sticks_out = ~wrong & (distance > run.options.tolerance)
    w, s = np.flatnonzero(wrong), np.flatnonzero(sticks_out)
    return _concat([
        run.rows("wrong_parent", units[w], geometry=h.polys[units[w]], area=share_best[w] * area[w],
                 codes=list(zip(h.code[units[w]], h.code[parents[w]], h.code[best_all[w]])),
                 zh=[f"{u} 有 {b:.0%} 位于 {o} 内，上级却写为 {p}" for u, b, o, p in
                     zip(h.label_zh(units[w]), share_best[w], h.label_zh(best_all[w]), h.label_zh(parents[w]))],
                 en=[f"{u} lies {b:.0%} in {o}, but its parent is given as {p}" for u, b, o, p in
                     zip(h.label_en(units[w]), share_best[w], h.label_en(best_all[w]), h.label_en(parents[w]))]),
        run.rows("outside_parent", units[s], geometry=outside[s], area=shapely.area(outside[s]),
                 codes=list(zip(h.code[units[s]], h.code[parents[s]])),
                 zh=[f"{u} 有 {_m2(a)} 平方米超出上级 {p}，"
                     f"最远超出 {d:,.1f} 米（容差 {run.options.tolerance} 米）"
                     for u, a, p, d in zip(h.label_zh(units[s]), shapely.area(outside[s]),
                                           h.label_zh(parents[s]), distance[s])],
                 en=[f"{_m2(a)} m² of {u} lies outside its parent {p}, up to {d:,.1f} m out "
                     f"(tolerance {run.options.tolerance} m)"
                     for u, a, p, d in zip(h.label_en(units[s]), shapely.area(outside[s]),
                                           h.label_en(parents[s]), distance[s])]),
    ])


def _largest_parent(h, units):
    """For each unit, the unit of its parent level it shares most area with:
    (position or -1, shared area)."""
    best = np.full(len(units), -1)
    best_area = np.zeros(len(units))
    if len(units) == 0:
        return best, best_area
    candidates = np.flatnonzero(h.alive)
    q, t = _pairs_between(h.polys[candidates], h.polys[units])
    t = candidates[t]
    keep = h.level[t] == h.parent_level[units[q]]
    q, t = q[keep], t[keep]
    shared = shapely.area(shapely.intersection(h.polys[units[q]], h.polys[t]))
    table = pd.DataFrame({"q": q, "t": t, "shared": shared}).sort_values(["q", "shared"])
    top = table.groupby("q").tail(1)
    best[top["q"].to_numpy()] = top["t"].to_numpy()
    best_area[top["q"].to_numpy()] = top["shared"].to_numpy()
    return best, best_area


def _farthest_out(outside, parents):
    """How far the farthest vertex of each outside part is from its parent."""
    xy, owner = shapely.get_coordinates(outside, return_index=True)
    distance = np.zeros(len(outside))
    if len(xy):
        np.maximum.at(distance, owner, shapely.distance(shapely.points(xy), parents[owner]))
    return distance


# --- the checks: gaps -------------------------------------------------------------------


def _gap_problems(run):
    """Parts of a parent no child covers, for every full level below the top;
    gaps enclosed by units whose parent is not in the frame, and by the
    top-level units."""
    h = run.h
    pieces, parent_of_piece, levels = [], [], []
    for level in h.levels:
        lv = h.scheme.level(level)
        if not lv.full:
            continue
        units = np.flatnonzero(h.checked & h.alive & (h.level == level))
        owner = run.geo_parent[units]
        if h.scheme.parent_level(level):
            p, g = _uncovered_parents(run, level, units[owner >= 0], owner[owner >= 0])
            pieces.append(p), parent_of_piece.append(g), levels.append(np.full(len(p), level, dtype=object))
        orphans = units[owner < 0]
        if run.own is not None:  # a part on Dask: its own groups; the top's are the client's
            orphans = orphans[run.own[orphans]] if level != run.top else orphans[:0]
        p, g = _enclosed_gaps(h, orphans)
        pieces.append(p), parent_of_piece.append(g), levels.append(np.full(len(p), level, dtype=object))
    if not pieces:
        return None
    run.gaps = np.concatenate(pieces)
    return _gap_rows(run, run.gaps, np.concatenate(parent_of_piece), np.concatenate(levels))


def _uncovered_parents(run, level, children, owner):
    """Pieces of the parents of `level` not covered by their children, and the
    parent code of each piece."""
    h = run.h
    parents = np.flatnonzero(h.alive & (h.level == h.scheme.parent_level(level))
                             & (True if run.own is None else run.own))
    if len(parents) == 0:
        return np.zeros(0, object), np.zeros(0, object)
    # the cheap test first: children inside their parent, not overlapping each
    # other, whose areas add up to the parent's leave no gap
    shapely.prepare(h.polys[owner])
    inside = shapely.covered_by(h.polys[children], h.polys[owner])
    covered = np.zeros(len(h.code))
    np.add.at(covered, owner, np.where(inside, shapely.area(h.polys[children]), np.inf))
    parent_area = shapely.area(h.polys[parents])
    suspect = np.abs(parent_area - covered[parents]) > np.maximum(_AREA_EPS, 1e-9 * parent_area)
    i, j, _ = run.overlaps
    overlapping = np.unique(run.geo_parent[i][(run.geo_parent[i] == run.geo_parent[j]) & (h.level[i] == level)])
    suspect |= np.isin(parents, overlapping)
    suspect = parents[suspect]
    if len(suspect) == 0:
        return np.zeros(0, object), np.zeros(0, object)
    mine = np.isin(owner, suspect)
    labels, unions = _union_per_group(h.polys[children[mine]], owner[mine])
    union_of = dict(zip(labels, unions))
    cover = np.array([union_of.get(p, _EMPTY) for p in suspect], dtype=object)
    gaps = _polygonal(shapely.difference(h.polys[suspect], cover))
    parts, part_owner = shapely.get_parts(gaps, return_index=True)
    real = shapely.area(parts) > _AREA_EPS
    return parts[real], h.code[suspect[part_owner[real]]]


def _enclosed_gaps(h, units):
    """Holes of the union of each group of siblings (same parent code) that
    no other unit of their level fills."""
    if len(units) == 0:
        return np.zeros(0, object), np.zeros(0, object)
    key = h.parent[units].astype(str)
    labels, unions = _union_per_group(h.polys[units], key)
    parts, part_owner = shapely.get_parts(unions, return_index=True)
    rings, ring_part = _interior_rings(parts)
    holes = shapely.polygons(rings) if len(rings) else np.zeros(0, object)
    group = labels[part_owner[ring_part]] if len(rings) else np.zeros(0, object)
    level = h.level[units[0]]
    others = np.flatnonzero(h.alive & (h.level == level))
    q, t = _pairs_between(h.polys[others], holes)
    holes = _subtract_per_owner(holes, q, h.polys[others[t]])
    parts, part_owner = shapely.get_parts(_polygonal(holes), return_index=True)
    real = shapely.area(parts) > _AREA_EPS
    top_code = np.array([h.code[units[0]][: h.scheme.root_digits]], dtype=object)
    group = np.where(group[part_owner[real]] == "", top_code, group[part_owner[real]]) if real.any() else group[:0]
    return parts[real], group


def _gap_rows(run, pieces, parent_codes, levels):
    h = run.h
    if len(pieces) == 0:
        return None
    width = _width(pieces)
    area = shapely.area(pieces)
    # the neighbours: units of the level that touch the piece, under its parent
    units = np.flatnonzero(h.alive)
    q, t = _pairs_between(h.polys[units], pieces)
    t = units[t]
    geo_parent_code = np.where(run.geo_parent[t] >= 0, h.code[np.maximum(run.geo_parent[t], 0)], h.parent[t])
    keep = (h.level[t] == levels[q]) & ((geo_parent_code == parent_codes[q]) | (h.parent_level[t] == ""))
    neighbours = pd.Series(h.code[t[keep]]).groupby(q[keep]).agg(lambda c: sorted(set(c)))
    near = [neighbours.get(k, []) for k in range(len(pieces))]
    narrow = width < run.options.gap_width
    position = pd.Series(np.arange(len(h.code)), index=h.code)
    position = position[~position.index.duplicated()]
    pos = position.reindex(parent_codes).fillna(-1).to_numpy(dtype=int)
    name_of = np.where(pos >= 0, h.name[np.maximum(pos, 0)], "")
    # a scheme without digits above the top level (root_digits=0) leaves the top's gaps no code
    lab_zh = [f"{c}（{n}）" if n else c or "顶层单元围成的区域" for c, n in zip(parent_codes, name_of)]
    lab_en = [f"{c} ({n})" if n else c or "the area the top-level units enclose"
              for c, n in zip(parent_codes, name_of)]
    level_zh = [h.level_label(lv, "zh") for lv in levels]
    # a parent with no children at all: the whole parent is uncovered
    whole = np.array([not n for n in near]) & (pos >= 0)
    if whole.any():
        whole &= np.abs(area - shapely.area(h.polys[np.maximum(pos, 0)])) <= np.maximum(_AREA_EPS, 1e-9 * area)
    out = []
    for kind, sel in (("gap", narrow), ("uncovered", ~narrow)):
        k = np.flatnonzero(sel)
        out.append(run.rows(
            kind, None, geometry=pieces[k], area=area[k], code=parent_codes[k], level=levels[k],
            parent=parent_codes[k], codes=[[parent_codes[x], *near[x]] for x in k],
            zh=[_gap_text_zh(kind, lab_zh[x], level_zh[x], area[x], width[x], near[x], whole[x]) for x in k],
            en=[_gap_text_en(kind, lab_en[x], levels[x], area[x], width[x], near[x], whole[x]) for x in k]))
    return _concat(out)


def _gap_text_zh(kind, parent, level, area, width, near, whole):
    if whole:
        return f"{parent} 没有任何{level}"
    beside = f"（相邻：{'、'.join(near)}）" if near else ""
    if kind == "gap":
        return f"{parent} 的{level}之间有一条宽约 {width:,.2f} 米、面积 {_m2(area)} 平方米的缝隙" + beside
    return f"{parent} 有 {_m2(area)} 平方米未被任何{level}覆盖{beside}"


def _gap_text_en(kind, parent, level, area, width, near, whole):
    if whole:
        return f"{parent} has no {level} unit at all"
    beside = f" (next to {', '.join(near)})" if near else ""
    if kind == "gap":
        return (f"a gap about {width:,.2f} m wide and {_m2(area)} m² in area between the {level} units "
                f"of {parent}{beside}")
    return f"{_m2(area)} m² of {parent} is covered by no {level} unit{beside}"


# ----------------------------------------------------------------------------
# validate on Dask
# ----------------------------------------------------------------------------

_HALO_M = 1.0  # metres around each unit's bounding box: far beyond _NEAR and _LENGTH_EPS


def _validate_on(client, frame, scheme, levels, options, progress):
    """:func:`validate` on a Dask cluster (its Notes): the same report."""
    from gridgeo import distribute

    h = _Hierarchy.build(frame, scheme, levels)
    run = _Run(h, options)
    top = next((lv for lv in scheme.names if lv in set(h.level)), None)
    owner = distribute.top_owner(frame, top) if top is not None else np.full(len(frame), None)
    placed = np.array([o is not None for o in owner], dtype=bool)
    if not len(frame) or (h.code == "").any() or not pd.Index(h.code).is_unique or (h.checked & ~placed).any():
        task = client.submit(_whole, frame, scheme, levels, options, pure=False)
        return _report(task.result(), h)
    code_rows = _code_problems(run)
    top_pieces, top_rows = _top_gaps(run, top)
    parts = _parts(h, owner, placed, top)
    shared = dict(scheme=scheme, levels=levels, options=options, metric=h.metric, top=top)
    states = [client.submit(_part_state, frame.iloc[rows], own, pure=False, **shared) for rows, own in parts]
    gaps = client.gather([client.submit(_part_gaps, state, pure=False) for state in states])
    every_gap = np.concatenate([*gaps, top_pieces])
    tasks = [client.submit(_part_rows, state, every_gap, pure=False) for state in states]
    if progress:
        from distributed import as_completed

        for _ in _progress(as_completed(tasks), progress, "validating", unit="part"):
            pass
    rows = client.gather(tasks)
    return _report([code_rows, top_rows, *rows], h)


def _whole(frame, scheme, levels, options):
    """Every check of the whole frame in one task: the report's pieces."""
    run = _Run(_Hierarchy.build(frame, scheme, levels), options)
    return [step(run) for step in (_code_problems, *_unit_steps(), _edge_problems)]


def _top_gaps(run, top):
    """The gaps the top-level units enclose between them (they span the
    parts): the pieces and their report rows, as :func:`_gap_problems`."""
    h = run.h
    none = np.zeros(0, object)
    if top not in h.levels or not h.scheme.level(top).full:
        return none, None
    units = np.flatnonzero(h.checked & h.alive & (h.level == top))
    orphans = units[h.parent_pos[units] < 0]  # a top-level unit has no parent in the frame
    pieces, groups = _enclosed_gaps(h, orphans)
    if not len(pieces):
        return none, None
    run.geo_parent = h.parent_pos.copy()  # only the top level's neighbours count, which have no parent
    return pieces, _gap_rows(run, pieces, groups, np.full(len(pieces), top, dtype=object))


def _parts(h, owner, placed, top):
    """Per top-level unit, in code order: (rows of the frame, own units among
    them), the rows being its units, the halo and the halo's parents up to
    the top. The halo of a unit is every unit within `_HALO_M` of it, its
    holes filled (its overlaps, neighbours, parents, what fills its holes);
    for a unit whose parent is not in the frame, every unit within
    `_HALO_M` of the bounding box of all its siblings (any unit there may
    fill a gap they enclose together)."""
    tops, part = np.unique(owner[placed].astype(str), return_inverse=True)
    part_of = np.full(len(h.code), -1)
    part_of[placed] = part
    alive = np.flatnonzero(h.alive)
    tree = shapely.STRtree(h.polys[alive])
    orphan = (h.parent_pos[alive] < 0) & (h.level[alive] != top)
    pieces, piece_of = shapely.get_parts(h.polys[alive[~orphan]], return_index=True)
    shells = shapely.polygons(shapely.get_exterior_ring(pieces))
    bounds = shapely.bounds(shells)
    boxes = shapely.box(bounds[:, 0] - _HALO_M, bounds[:, 1] - _HALO_M, bounds[:, 2] + _HALO_M,
                        bounds[:, 3] + _HALO_M)
    piece, other = tree.query(boxes)  # boxes meeting boxes: the distance is tested where it matters
    near = alive[~orphan][piece_of[piece]]
    across = np.flatnonzero(part_of[near] != part_of[alive[other]])
    shapely.prepare(shells)
    far = across[~shapely.dwithin(shells[piece[across]], h.polys[alive[other[across]]], _HALO_M)]
    keep = np.ones(len(near), dtype=bool)
    keep[far] = False  # within a part, or near a unit of another part
    near, other = near[keep], other[keep]
    if orphan.any():
        bounds = pd.DataFrame(shapely.bounds(h.polys[alive[orphan]]), columns=["x0", "y0", "x1", "y1"])
        grouped = bounds.groupby([h.parent[alive[orphan]], h.level[alive[orphan]]])
        boxes = shapely.box(grouped["x0"].transform("min") - _HALO_M, grouped["y0"].transform("min") - _HALO_M,
                            grouped["x1"].transform("max") + _HALO_M, grouped["y1"].transform("max") + _HALO_M)
        box_of, in_box = tree.query(boxes, predicate="intersects")
        near, other = np.r_[near, alive[orphan][box_of]], np.r_[other, in_box]
    keys = part_of[near] * len(h.code) + alive[other]
    keys = keys[part_of[near] >= 0]
    while True:  # the parents of the halo, up the hierarchy
        unit = keys % len(h.code)
        parent = h.parent_pos[unit]
        more = np.setdiff1d((keys // len(h.code) * len(h.code) + parent)[parent >= 0], keys)
        if not len(more):
            break
        keys = np.union1d(keys, more)
    keys = np.union1d(keys, part_of[placed] * len(h.code) + np.flatnonzero(placed))
    which, unit = keys // len(h.code), keys % len(h.code)
    starts = np.searchsorted(which, np.arange(len(tops) + 1))
    out = []
    for p in range(len(tops)):
        rows = unit[starts[p]:starts[p + 1]]  # sorted: the frame's order
        out.append((rows, part_of[rows] == p))
    return out


def _part_state(frame, own, *, scheme, levels, options, metric, top):
    """A part checked on a worker, but for its edges (they wait for every gap)."""
    run = _Run(_Hierarchy.build(frame, scheme, levels, metric=metric), options, own=own, top=top)
    run.pieces = [step(run) for step in _unit_steps()]
    return run


def _part_gaps(run):
    return run.gaps


def _part_rows(run, every_gap):
    """The part's report rows about its own units, its edges checked with every gap."""
    run.gaps = every_gap
    rows = _concat([*run.pieces, _edge_problems(run)])
    if rows is None:
        return None
    return rows[rows["code"].isin(run.h.code[run.own])].reset_index(drop=True)


# ----------------------------------------------------------------------------
# repair
# ----------------------------------------------------------------------------


def repair(grids, report=None, *, gap_width=2.0, sliver_area=100.0, tolerance=1.0, snap_distance=0.01,
           split_holes=True, scheme: CodeScheme = DEFAULT_SCHEME, source=None, name="grids",
           progress=False):
    """Fix the geometric problems of a report so that every full level tiles its parent again.

    The rules, applied level by level from the top, only where the report
    says something is wrong (and below units that change):

    1. invalid polygons are made valid (``shapely.make_valid``), the polygons
       of wrong-typed geometries kept, repeated vertices removed (a unit with
       an invalid polygon the report does not list stays as it is, unless a
       later step changes it: it then comes back valid);
    2. sliver parts are removed, and sliver units without children dropped:
       in a full level whose parent is in the frame their area goes to the
       neighbour sharing the longest border (step 5);
    3. a unit is clipped to its parent;
    4. the units under one parent are cleaned as a coverage
       (``shapely.coverage_clean``, GEOS 3.14): vertices closer than
       `snap_distance` are snapped together, each overlap goes to the unit
       sharing the longest border with it, gaps narrower than `gap_width`
       (and, at any level, than 1 cm) likewise;
    5. what of the parent is still uncovered goes to the child sharing the
       longest border with it; a piece wider than `gap_width` touching several
       children is split among them along the line of equal distance to their
       borders (a Voronoi split), when `split_holes`;
    6. edges shared across parents are snapped to match, where a unit changed
       or the report lists an ``edge_mismatch``.

    Units named in a ``wrong_parent`` row are left alone (their area counts as
    covering the parent they lie in); two units drawn identically keep their
    overlap; codes, names, multipart units, holes, non-compact shapes and
    empty geometries need a planner (:data:`KINDS` marks what repair
    attempts). The input is never changed.

    Parameters
    ----------
    grids : GeoDataFrame
        As for :func:`validate`.
    report : GeoDataFrame, optional
        A :func:`validate` report of `grids`, filtered to the rows to fix if
        you like. Default: ``validate(grids)`` with the options given here.
    gap_width, sliver_area, tolerance : float
        As for :func:`validate` (metres, square metres, metres).
    snap_distance : float, default 0.01
        Metres: vertices this close are made one.
    split_holes : bool, default True
        Split wide uncovered pieces among the children around them; False
        gives each piece whole to the child sharing the longest border.
    scheme, source, name, progress
        As for :func:`validate`.

    Returns
    -------
    repaired : GeoDataFrame
        A copy of `grids` in EPSG:4490 with repaired geometries (units not
        changed keep their geometry bit for bit; vertices that were there keep
        their coordinates), without the dropped sliver units.
    log : GeoDataFrame
        One row per change (:data:`LOG_COLUMNS`): ``step``, the report
        ``kind`` it answers and that kind's ``severity``, the unit's ``code``,
        ``level`` and ``parent``, the area it gained and lost (m²), a message
        in Chinese and English, and the changed area as geometry
        (EPSG:4490). The steps, in order: ``make_valid``, ``keep_polygons``,
        ``remove_duplicate_vertices``, ``remove_slivers``, ``drop_unit``,
        ``clip_to_parent``, ``clean_coverage``, ``fill_gap``,
        ``match_edges``. Then every problem the repaired frame still has
        (validated again with the same options), errors first, then
        warnings, one row each with step ``"not_repaired"``, the report's
        ``kind``, ``severity``, ``code`` and location, and a message saying
        what is wrong, why it is left (repair does not fix that kind; the
        report given did not list it; it arose during the repair; the unit
        holds no polygon, lies in another parent, is drawn identically to
        another; the parent is not in the frame or has no unit to take the
        area; or repair could not fix it) and what to do by hand. Areas are
        NaN there.

    See Also
    --------
    validate

    Notes
    -----
    After ``repair``, :func:`validate` with the same options finds no error of
    the kinds :data:`KINDS` marks ``repaired`` among the units it changed,
    except those the log lists as ``not_repaired`` (a parent with no child
    left to receive its area, an orphan group's wide hole). A Python loop
    runs over the parents with problems, never over all units.

    Examples
    --------
    >>> import gridgeo
    >>> from gridgeo import sample
    >>> grids = sample.load().grids
    >>> broken = grids[grids["code"] != "3505821062010101"]  # a level-2 grid dropped
    >>> report = gridgeo.validate(broken)
    >>> list(report.loc[report["severity"] == "error", "kind"])
    ['uncovered']
    >>> repaired, log = gridgeo.repair(broken, report)
    >>> sorted(set(log["step"]))
    ['fill_gap', 'match_edges', 'not_repaired']
    >>> gridgeo.validate(repaired).attrs["summary"]["errors"]
    0
    >>> left = log[log["step"] == "not_repaired"].iloc[0]  # the number 1 is still missing
    >>> left["kind"], left["severity"]
    ('sequence_gap', 'warning')
    >>> print(left["message_en"])  # doctest: +ELLIPSIS
    Not repaired: the grid2 units under 35058210620101 skip sequence number(s) 1. gridgeo.repair does not fix ...
    """
    frame = _checked_grids(grids, source=source, scheme=scheme, name=name)
    options = _Options.checked(gap_width=gap_width, sliver_area=sliver_area, tolerance=tolerance,
                               compactness=0.0)
    snap_distance = _non_negative("snap_distance", snap_distance)
    if report is None:
        report = validate(frame, gap_width=gap_width, sliver_area=sliver_area, tolerance=tolerance,
                          scheme=scheme, name=name)
    _check_report(report)
    h = _Hierarchy.build(frame, scheme, _levels_to_check(frame, None, scheme))
    chosen = not _whole_report(report, h.levels)
    nesting = _Run(h, options)
    _nesting_problems(nesting)  # which units lie mostly in another parent than they name
    work = _Repair(h, report, nesting.geo_parent, options, snap_distance, split_holes)
    work.fix_geometries()
    work.remove_slivers()
    for level in _progress(h.levels, progress, "repairing", unit="level"):
        work.repair_level(level)
    repaired = work.result()
    remaining = validate(repaired, gap_width=gap_width, sliver_area=sliver_area, tolerance=tolerance,
                         scheme=scheme, name=name)
    return repaired, work.log(remaining, chosen=chosen)


def _whole_report(report, levels):
    """True if `report` is a whole :func:`validate` report of every level
    (not filtered: its rows still add up to the summary it carries)."""
    summary = report.attrs.get("summary") if hasattr(report, "attrs") else None
    return bool(summary) and summary.get("levels") == list(levels) \
        and summarize(report)["by_kind"] == summary.get("by_kind")


def _check_report(report):
    missing = [c for c in ("kind", "code", "codes", "level", "parent") if c not in getattr(report, "columns", [])]
    if missing:
        raise ValueError(
            f"report should be what gridgeo.validate returns; it lacks the column(s) {missing}"
        )


# the steps of a repair, and the report kind each answers
_STEPS = {
    "make_valid": ("invalid", "修复为有效多边形", "made valid"),
    "keep_polygons": ("wrong_type", "只保留面部分", "kept the polygons only"),
    "remove_duplicate_vertices": ("duplicate_vertex", "删除重复顶点", "removed repeated vertices"),
    "remove_slivers": ("sliver", "删除碎片部分", "removed sliver parts"),
    "drop_unit": ("sliver", "删除碎片单元，面积并入相邻单元",
                  "dropped the sliver unit; its area goes to a neighbour"),
    "clip_to_parent": ("outside_parent", "裁去超出上级的部分", "clipped to its parent"),
    "clean_coverage": ("overlap", "消除重叠、吸附边界、并入窄缝",
                       "resolved overlaps, snapped edges, closed narrow gaps"),
    "fill_gap": ("uncovered", "并入未覆盖区域", "took in an uncovered piece"),
    "match_edges": ("edge_mismatch", "与相邻单元对齐边界", "matched its edges to its neighbours'"),
}


class _Repair:
    """The state of one repair: the units' geometries (metric) as they change,
    which units changed, what is left to do per level, and the log."""

    def __init__(self, h, report, geo_parent, options, snap, split):
        self.h, self.options, self.snap, self.split = h, options, snap, split
        self.geoms = h.polys.copy()
        self.alive = h.alive.copy()
        self.touched = np.zeros(len(h.code), dtype=bool)
        self.records = []
        position = pd.Series(np.arange(len(h.code)), index=pd.Index(h.code, dtype=object))
        self.position = position[~position.index.duplicated()]
        self.todo = {lv: set() for lv in h.scheme.names}
        self.given = set(zip(report["kind"], report["code"]))
        self.units = {kind: set() for kind in KINDS}
        # a unit lying mostly in another parent than it names is left alone:
        # it counts as covering the parent it lies in
        moved = np.flatnonzero(geo_parent != h.parent_pos)
        self.lies_in = dict(zip(moved, geo_parent[moved]))
        for kind, codes, level, parent in zip(report["kind"], report["codes"], report["level"], report["parent"]):
            codes = [c for c in str(codes).split(",") if c]
            at = self._positions(codes)
            if kind in ("gap", "uncovered"):
                self.todo.setdefault(level, set()).add(parent)
            elif kind in KINDS and KINDS[kind].repaired:
                mine = [i for i in at if i >= 0 and h.level[i] == level]
                self.units[kind].update(mine)
                for i in mine:
                    self.todo.setdefault(level, set()).add(h.parent[i])

    def _positions(self, codes):
        return self.position.reindex(pd.Index(codes, dtype=object)).fillna(-1).astype(int).tolist()

    # --- the steps ---------------------------------------------------------------

    def fix_geometries(self):
        h = self.h
        types = shapely.get_type_id(h.geoms)
        # invalid units were made valid when the hierarchy was built (no other
        # step can work on them); those the report lists come back so, and logged
        listed = np.array(sorted(self.units["invalid"] | self.units["wrong_type"]), dtype=int)
        remade = listed[self.alive[listed] & (h.polys[listed] != h.geoms[listed])] if len(listed) else listed
        polygonal = np.isin(types[remade], (_POLYGON, _MULTIPOLYGON))
        self._record("make_valid", remade[polygonal], h.geoms[remade[polygonal]], self.geoms[remade[polygonal]])
        self._record("keep_polygons", remade[~polygonal], h.geoms[remade[~polygonal]],
                     self.geoms[remade[~polygonal]])
        self.touched[remade] = True
        units = np.array(sorted(self.units["duplicate_vertex"]), dtype=int)
        units = units[self.alive[units]] if len(units) else units
        cleaned = _polygonal(shapely.make_valid(shapely.remove_repeated_points(self.geoms[units], _LENGTH_EPS)))
        self._update("remove_duplicate_vertices", units, cleaned)

    def remove_slivers(self):
        h, limit = self.h, self.options.sliver_area
        units = np.array(sorted(self.units["sliver"]), dtype=int)
        if len(units) == 0:
            return
        units = units[self.alive[units]]
        parts, owner = shapely.get_parts(self.geoms[units], return_index=True)
        keep = shapely.area(parts) >= limit
        kept = _collect(parts[keep], owner[keep], len(units))
        whole = shapely.is_empty(kept)
        has_children = np.isin(h.code[units], h.parent[self.alive])
        drop = whole & ~has_children
        self._update("remove_slivers", units[~whole], kept[~whole])
        self._record("drop_unit", units[drop], self.geoms[units[drop]], np.full(drop.sum(), _EMPTY, object))
        self.geoms[units[drop]] = _EMPTY
        self.alive[units[drop]] = False
        self.touched[units[drop]] = True

    def repair_level(self, level):
        h = self.h
        full = h.scheme.level(level).full
        plevel = h.scheme.parent_level(level)
        groups = sorted(self.todo.get(level, ()))
        members = self.alive & (h.level == level)
        for parent_code in groups:  # only the parents with problems
            kids = np.flatnonzero(members & (h.parent == parent_code))
            kids = np.array([k for k in kids if k not in self.lies_in], dtype=int)
            at = self.position.get(parent_code, -1)
            parent = self.geoms[at] if at >= 0 and plevel and h.level[at] == plevel and self.alive[at] else None
            if parent is not None:
                self._clip(kids, parent)
            self._clean("clean_coverage", kids, parent, max(self.options.gap_width, _NEAR) if full else _NEAR)
            if full and parent is not None:
                cover = np.array([u for u, p in self.lies_in.items() if p == at], dtype=int)
                if self._fill(kids, parent, cover):
                    self._clean("match_edges", kids, parent, _NEAR)
        self._match_edges(level, np.flatnonzero(members & np.isin(h.parent, groups)))
        child = h.scheme.child_level(level)
        if child:
            self.todo[child].update(h.code[self.touched & (h.level == level)])

    def _clip(self, kids, parent):
        shapely.prepare(parent)
        out = kids[~shapely.covered_by(self.geoms[kids], parent)]
        clipped = _polygonal(shapely.intersection(self.geoms[out], parent))
        lost = shapely.area(self.geoms[out]) - shapely.area(clipped)
        self._update("clip_to_parent", out[lost > _AREA_EPS], clipped[lost > _AREA_EPS])

    def _clean(self, step, kids, parent, gap_width):
        if len(kids) == 0:
            return
        members = list(self.geoms[kids])
        if parent is not None:
            # the outside of the parent takes part, so that the children are
            # snapped to the parent's boundary and never pushed across it
            frame = shapely.box(*shapely.bounds(parent)).buffer(10 * (gap_width + self.snap) + 1.0)
            members.append(shapely.difference(frame, parent))
        cleaned = shapely.coverage_clean(np.array(members, dtype=object), gap_width=gap_width,
                                         snapping_distance=self.snap)
        cleaned = _keep_covered_units(self.geoms[kids], _polygonal(cleaned[: len(kids)]))
        self._update(step, kids, cleaned)

    def _fill(self, kids, parent, cover):
        """Give what of the parent no child covers to the children: True if any."""
        covered = shapely.union_all(self.geoms[np.concatenate([kids, cover]).astype(int)])
        pieces = shapely.get_parts(_polygonal([shapely.difference(parent, covered)]))
        pieces = pieces[shapely.area(pieces) > _AREA_EPS]
        if len(pieces) == 0 or len(kids) == 0:
            return False
        q, t = _pairs_between(self.geoms[kids], pieces)
        border = shapely.length(shapely.intersection(shapely.boundary(pieces[q]), self.geoms[kids[t]]))
        touching = border > _LENGTH_EPS
        q, t, border = q[touching], t[touching], border[touching]
        width = _width(pieces)
        gains = {}
        for k, piece in enumerate(pieces):  # one loop step per piece to give away
            mine = np.flatnonzero(q == k)
            if len(mine) == 0:
                continue
            neighbours = kids[t[mine]]
            if self.split and width[k] >= self.options.gap_width and len(neighbours) > 1:
                shares = _split_by_nearest(piece, self.geoms[neighbours])
            else:
                shares = [piece if n == np.argmax(border[mine]) else _EMPTY for n in range(len(neighbours))]
            for unit, share in zip(neighbours, shares):
                if not shapely.is_empty(share):
                    gains.setdefault(unit, []).append(share)
        if not gains:
            return False
        units = np.array(sorted(gains), dtype=int)
        grown = _polygonal([shapely.union_all([self.geoms[u], *gains[u]]) for u in units])
        self._update("fill_gap", units, grown)
        return True

    def _match_edges(self, level, units):
        """Snap the edges of `units` that changed or were reported as not
        matching and of their neighbours of the level (under any parent) together."""
        listed = np.isin(units, list(self.units["edge_mismatch"]))
        units = units[self.alive[units] & (self.touched[units] | listed)]
        if len(units) == 0:
            return
        level_units = np.flatnonzero(self.alive & (self.h.level == level))
        q, t = _pairs_between(self.geoms[level_units], self.geoms[units])
        near = np.union1d(units, level_units[t])
        if shapely.coverage_is_valid(self.geoms[near], gap_width=_NEAR):
            return
        cleaned = _polygonal(shapely.coverage_clean(self.geoms[near], gap_width=_NEAR,
                                                    snapping_distance=self.snap))
        self._update("match_edges", near, _keep_covered_units(self.geoms[near], cleaned))

    # --- bookkeeping ---------------------------------------------------------------

    def _update(self, step, units, new):
        """Set the geometry of `units` to `new` where it differs, and log it."""
        units = np.asarray(units, dtype=int)
        if len(units) == 0:
            return
        old = self.geoms[units]
        new = np.asarray(new, dtype=object)
        same = shapely.equals(old, new) & (shapely.get_num_coordinates(old) == shapely.get_num_coordinates(new))
        changed = ~same
        self._record(step, units[changed], old[changed], new[changed])
        self.geoms[units[changed]] = new[changed]
        self.touched[units[changed]] = True

    def _record(self, step, units, old, new):
        if len(units) == 0:
            return
        h = self.h
        kind, zh, en = _STEPS[step]
        old = _usable_polygons(np.asarray(old, dtype=object))  # as drawn, it may be a collection or invalid
        gained = _polygonal(shapely.difference(new, old))
        lost = _polygonal(shapely.difference(old, new))
        where = _polygonal(shapely.union(gained, lost))
        where = np.where(shapely.is_empty(where), np.where(shapely.is_empty(new), old, new), where)
        g, l = shapely.area(gained), shapely.area(lost)
        if step == "clean_coverage":  # what the cleaning did to this unit
            kind = np.where(l > _AREA_EPS, "overlap", np.where(g > _AREA_EPS, "gap", "edge_mismatch"))
        self.records.append(pd.DataFrame({
            "step": step, "kind": kind, "severity": pd.Series(kind, index=range(len(units)), dtype=object).map(
                {k: v.severity for k, v in KINDS.items()}).to_numpy(dtype=object),
            "code": h.code[units], "level": h.level[units],
            "parent": h.parent[units], "area_gained_m2": g, "area_lost_m2": l,
            "message_zh": [f"{lab}：{zh}（增加 {_m2(a)} 平方米，减少 {_m2(b)} 平方米）"
                           for lab, a, b in zip(h.label_zh(units), g, l)],
            "message_en": [f"{lab}: {en} (gained {_m2(a)} m², lost {_m2(b)} m²)"
                           for lab, a, b in zip(h.label_en(units), g, l)],
            "geometry": where,
        }))

    def result(self):
        h = self.h
        changed = np.flatnonzero(self.touched & self.alive)
        out = h.frame.copy()
        geometry = out.geometry.array.copy()
        geometry[changed] = _to_storage_keeping_vertices(self.geoms[changed], h)
        out[out.geometry.name] = geometry
        keep = self.alive | ~self.touched  # dropped units go; empty ones never touched stay
        return out[keep]

    def log(self, remaining, *, chosen):
        """The changes, then every problem `remaining` (the repaired frame's
        report) still holds, errors and warnings, with why it is left and what
        to do; `chosen`: whether the caller chose the report rows to fix (else
        the report held every problem of the input)."""
        why_zh, why_en = zip(*(self._why_left(row, chosen) for row in remaining.itertuples(index=False))) \
            if len(remaining) else ((), ())
        problem_zh = [_problem(m, KINDS[k], "zh") for m, k in zip(remaining["message_zh"], remaining["kind"])]
        problem_en = [_problem(m, KINDS[k], "en") for m, k in zip(remaining["message_en"], remaining["kind"])]
        left = pd.DataFrame({
            "step": "not_repaired", "kind": remaining["kind"].to_numpy(dtype=object),
            "severity": remaining["severity"].to_numpy(dtype=object),
            "code": remaining["code"].to_numpy(dtype=object),
            "level": remaining["level"].to_numpy(dtype=object), "parent": remaining["parent"].to_numpy(dtype=object),
            "area_gained_m2": np.nan, "area_lost_m2": np.nan,
            "message_zh": [f"未修复：{m}。{w}。{KINDS[k].advice_zh}。"
                           for m, w, k in zip(problem_zh, why_zh, remaining["kind"])],
            "message_en": [f"Not repaired: {m}. {_sentence(w)}. {_sentence(KINDS[k].advice_en)}."
                           for m, w, k in zip(problem_en, why_en, remaining["kind"])],
            "geometry": np.asarray(remaining.to_crs(self.h.metric).geometry.array, dtype=object),
        })
        table = pd.concat([*self.records, left], ignore_index=True)
        log = gpd.GeoDataFrame(table, geometry="geometry", crs=self.h.metric).to_crs(STORAGE_CRS)
        for col in ("step", "kind", "severity", "code", "level", "parent", "message_zh", "message_en"):
            log[col] = log[col].astype("str")
        return log[list(LOG_COLUMNS)]

    def _why_left(self, row, chosen):
        """(zh, en): why the problem of report row `row` is still there, as far as is known."""
        h, kind = self.h, KINDS[row.kind]
        if not kind.repaired:
            return (f"gridgeo.repair 不修复此类问题（{kind.label_zh}），须人工修正",
                    f"gridgeo.repair does not fix problems of this kind ({kind.label_en}): fix it by hand")
        if (row.kind, row.code) not in self.given:
            if chosen:
                return ("交给 gridgeo.repair 的报告中没有这一问题，未作处理",
                        "it was not in the report gridgeo.repair was given, so nothing was done about it")
            return "它是在修复过程中出现的", "it arose during the repair"
        at = [i for i in self._positions([c for c in row.codes.split(",") if c]) if i >= 0]
        if row.kind == "wrong_type" and at and not self.alive[at[0]]:
            return "其中没有可保留的面", "it holds no polygon to keep"
        if row.kind in ("overlap", "edge_mismatch", "outside_parent") and any(i in self.lies_in for i in at):
            return ("涉及的单元大部分位于另一上级内（见 wrong_parent），gridgeo.repair 不改动这样的单元",
                    ("a unit involved lies mostly in another parent than it names (see wrong_parent), "
                     "and gridgeo.repair leaves such units alone"))
        if row.kind == "overlap" and len(at) == 2 and shapely.equals(self.geoms[at[0]], self.geoms[at[1]]):
            return ("两个单元画得完全相同，gridgeo.repair 无法判断重叠部分归谁",
                    "the two units are drawn identically, so gridgeo.repair cannot tell whose the overlap is")
        if row.kind in ("gap", "uncovered"):
            parent = self.position.get(row.code, -1)
            if row.level in h.scheme.names and not h.scheme.parent_level(row.level):
                return ("这些单元已是最高层级，没有上级边界可供填补，gridgeo.repair 只能并入窄缝",
                        ("these units are the top level, so there is no parent outline to fill to: "
                         "gridgeo.repair closes narrow gaps only"))
            if parent < 0 or h.level[parent] != h.scheme.parent_level(row.level):
                return ("上级不在图层中，gridgeo.repair 只能并入窄缝，无从填补更宽的缺口",
                        ("the parent is not in the layer, so gridgeo.repair can close narrow gaps only, "
                         "not fill wider pieces"))
            if not (self.alive & (h.level == row.level) & (h.parent == row.code)).any():
                return (f"该上级下没有可以接收这块面积的{h.level_label(row.level, 'zh')}",
                        f"the parent has no {row.level} unit to take the area")
        return "gridgeo.repair 未能修复", "gridgeo.repair could not fix it"


def _problem(message, kind, lang):
    """A report message without its last sentence (the advice): what is wrong."""
    tail = f"。{_advice(kind, 'zh')}。" if lang == "zh" else f". {_advice(kind, 'en')}."
    return message[: -len(tail)] if message.endswith(tail) else message.rstrip("。.")


def _keep_covered_units(before, cleaned):
    """`cleaned`, but a unit the cleaning emptied (one drawn over entirely by
    a sibling) keeps its area, taken back from the others; two units drawn
    identically stay as they were, for a planner."""
    emptied = shapely.is_empty(cleaned) & ~shapely.is_empty(before)
    if not emptied.any():
        return cleaned
    out = cleaned.copy()
    out[emptied] = before[emptied]
    others = np.flatnonzero(~emptied)
    out[others] = _polygonal(shapely.difference(cleaned[others], shapely.union_all(before[emptied])))
    lost = others[shapely.is_empty(out[others]) & ~shapely.is_empty(before[others])]
    out[lost] = before[lost]
    return out


def _split_by_nearest(piece, neighbours):
    """Split `piece` among `neighbours` (polygons sharing its border): each
    point goes to the neighbour whose shared border is nearest (a Voronoi
    diagram of points along the shared borders)."""
    spacing = float(np.clip(np.sqrt(piece.area) / 25.0, 0.5, 10.0))
    shared = shapely.segmentize(shapely.intersection(piece.boundary, neighbours), spacing)
    xy, owner = shapely.get_coordinates(shared, return_index=True)
    xy, first = np.unique(xy, axis=0, return_index=True)  # junctions: one owner
    owner = owner[first]
    if len(np.unique(owner)) < 2:
        return [piece if k == (owner[0] if len(owner) else 0) else _EMPTY for k in range(len(neighbours))]
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=piece, ordered=True))
    return [shapely.intersection(shapely.union_all(cells[owner == k]), piece) if (owner == k).any() else _EMPTY
            for k in range(len(neighbours))]


def _to_storage_keeping_vertices(geoms, h):
    """Metric `geoms` back in EPSG:4490, every vertex that came from the input
    at its input coordinates exactly (so that unchanged neighbours still share
    it bit for bit); new vertices are projected back."""
    metric_xy = shapely.get_coordinates(h.geoms)
    storage_xy = shapely.get_coordinates(np.asarray(h.frame.geometry.array, dtype=object))
    keys, first = np.unique(metric_xy[:, 0] + 1j * metric_xy[:, 1], return_index=True)
    back = pyproj.Transformer.from_crs(h.metric, STORAGE_CRS, always_xy=True)

    def transform(xy):
        out = np.column_stack(back.transform(xy[:, 0], xy[:, 1]))
        if len(keys):
            wanted = xy[:, 0] + 1j * xy[:, 1]
            at = np.clip(np.searchsorted(keys, wanted), 0, len(keys) - 1)
            hit = keys[at] == wanted
            out[hit] = storage_xy[first[at[hit]]]
        return out

    return shapely.transform(geoms, transform)
