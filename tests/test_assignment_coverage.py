"""The index reads whether a level is a valid coverage from its boundary segments.

``_certainly_a_coverage`` says a level's units certainly form a valid
coverage (no overlaps, shared edges matching segment for segment) from the
segments the index finds anyway, with GEOS's coverage validation deciding
only where it cannot tell. It must never say so of a level GEOS finds
invalid: checked here against ``shapely.coverage_is_valid`` on

- the town sample's levels, the hand-made hierarchy of
  tests/test_assignment_sides.py and Fujian's real county outlines (valid:
  the segments must tell, or the index gains nothing);
- libpysal's bundled polygon examples, as they ship (some overlap, some
  have invalid rings, some leave gaps or do not share their vertices);
- hand-made invalid cases, one per way a coverage can fail: a crossing, a
  T-junction, an edge running along another, a unit inside another (apart,
  touching it at a corner only, sharing an edge), a duplicate; and invalid
  polygons (a bow tie, a hole outside its shell), whose rings' orientation
  does not say where their interiors are;
- a lattice whose vertices are moved one at a time, at random, by amounts
  down to a millionth of a cell.
"""

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridgeo import assignment
from gridgeo.assignment import AssignIndex
from gridgeo.schema import PREFECTURE_SCHEME
from test_assignment_adaptive import fujian  # noqa: F401 (fixture)
from test_assignment_sides import SCHEME, layout_units


def certain(geoms, cell_m=None):
    """What the index reads of one level's units `geoms` (lon/lat polygons)."""
    geoms = np.array(geoms, dtype=object)
    shapely.prepare(geoms)
    segments = assignment._unique_segments(geoms)
    bounds = shapely.total_bounds(geoms)
    scale = assignment._metres_per_degree(bounds)
    cell_m = assignment._adapted_cell_m(segments[0], bounds, scale) if cell_m is None else cell_m
    raster = assignment._Raster.over(bounds, cell_m, scale)
    seg_cell, seg = assignment._segment_cells(segments[0], raster)
    validity = assignment._Validity(geoms, np.zeros(len(geoms), dtype=np.int8), [np.arange(len(geoms))],
                                    (*segments, seg_cell, seg))
    return validity.certain(0)


def assert_never_wrong(geoms, **options):
    """The segments' reading: never certain of a coverage GEOS finds invalid."""
    told = certain(geoms, **options)
    if told:
        assert shapely.coverage_is_valid(np.asarray(geoms, dtype=object))
    return told


def in_degrees(geoms):
    """Geometries moved into a lon/lat box of about 50 km (the check and GEOS
    are both run on the moved coordinates)."""
    geoms = np.asarray(geoms, dtype=object)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    k = 0.5 / max(maxx - minx, maxy - miny)
    return shapely.transform(geoms, lambda xy: np.c_[118.0 + (xy[:, 0] - minx) * k, 24.0 + (xy[:, 1] - miny) * k])


def square(x, y, size=1.0, step=0.001):
    return shapely.box(118.5 + x * step, 24.7 + y * step, 118.5 + (x + size) * step, 24.7 + (y + size) * step)


def test_the_sample_levels_are_read_as_coverages(sample):
    for level in sample.grids["level"].unique():
        geoms = sample.grids.loc[sample.grids["level"] == level].geometry.to_numpy()
        assert assert_never_wrong(geoms), level


def test_the_hand_made_levels_are_read_as_coverages():
    units = layout_units()
    for level in SCHEME.names:
        geoms = [g for _, lv, g in units if lv == level]
        for cell_m in (None, 3.0, 40.0):
            assert assert_never_wrong(geoms, cell_m=cell_m), (level, cell_m)


def test_fujian_levels_are_read_as_coverages(fujian):  # noqa: F811 (fixture)
    for level in PREFECTURE_SCHEME.names:
        geoms = fujian.loc[fujian["level"] == level].geometry.to_numpy()
        if len(geoms):
            told = assert_never_wrong(geoms)
            assert told == shapely.coverage_is_valid(geoms), level


LIBPYSAL = ["10740.shp", "Chicago77.shp", "columbus.shp", "G_utm.shp", "mexicojoin.shp", "sids2.shp",
            "stl_hom.shp", "tokyomet262.shp", "us48.shp", "vautm17n.shp", "virginia.shp", "lattice10x10.shp",
            "rook31.shp", "Polygon.shp", "Polygon_Holes.shp"]


@pytest.mark.parametrize("name", LIBPYSAL)
def test_libpysal_examples_as_they_ship(name):
    examples = pytest.importorskip("libpysal.examples")
    import pyogrio

    try:
        path = examples.get_path(name)
    except (KeyError, FileNotFoundError, AttributeError):
        pytest.skip(f"{name} is not bundled")
    geoms = in_degrees(pyogrio.read_dataframe(path).geometry.to_numpy())
    geoms = geoms[~shapely.is_empty(geoms)]
    assert_never_wrong(geoms)


def test_libpysal_examples_read_as_coverages_where_valid():
    """Where a bundled example is a valid coverage of valid polygons, the
    segments tell (lattice10x10, rook31, columbus and others)."""
    examples = pytest.importorskip("libpysal.examples")
    import pyogrio

    told, valid = [], []
    for name in LIBPYSAL:
        try:
            geoms = in_degrees(pyogrio.read_dataframe(examples.get_path(name)).geometry.to_numpy())
        except (KeyError, FileNotFoundError, AttributeError):
            continue
        geoms = geoms[~shapely.is_empty(geoms)]
        if shapely.is_valid(geoms).all() and shapely.coverage_is_valid(geoms):
            valid.append(name)
            if certain(geoms):
                told.append(name)
    assert len(valid) >= 3 and told == valid, (told, valid)


def invalid_cases():
    a = square(0, 0, 2)
    return {
        "overlap": [a, square(1, 1, 2)],
        "T-junction": [square(0, 0, 2), square(0, 2), square(1, 2)],
        "along an edge": [a, shapely.box(118.5 + 0.002, 24.7 + 0.0005, 118.5 + 0.003, 24.7 + 0.0015)],
        "island apart": [a, square(0.5, 0.5)],
        "inside, touching a vertex": [a, square(0, 0)],
        "inside, sharing an edge": [a, shapely.box(118.5, 24.7, 118.5 + 0.002, 24.7 + 0.001)],
        "inside, its vertices on the edge": [a, shapely.Polygon([(118.5, 24.7 + 0.001), (118.5 + 0.001, 24.7),
                                                                 (118.5 + 0.002, 24.7 + 0.001),
                                                                 (118.5 + 0.001, 24.7 + 0.002)])],
        "inside, touching a corner only": [a, shapely.Polygon([(118.5, 24.7), (118.5 + 0.001, 24.7 + 0.0005),
                                                               (118.5 + 0.0005, 24.7 + 0.001)])],
        "duplicate": [a, square(0, 0, 2)],
        "hole overfilled": [shapely.Polygon(square(0, 0, 4).exterior, [square(1, 1, 2).exterior]), square(0.5, 0.5, 3)],
        "hole outside its shell": [shapely.Polygon(square(0, 0).exterior, [square(3, 0).exterior]), square(3, 0)],
        "bow tie": [shapely.Polygon([(118.5, 24.7), (118.502, 24.702), (118.502, 24.7), (118.5, 24.702)]),
                    square(2, 0, 2)],
        "crossing inside a cell": [square(0, 0), shapely.Polygon([(118.5005, 24.7005), (118.5015, 24.7005),
                                                                  (118.5015, 24.7015)])],
    }


@pytest.mark.parametrize("case", list(invalid_cases()))
@pytest.mark.parametrize("cell_m", [None, 5.0, 500.0])
def test_invalid_coverages_are_never_taken_as_valid(case, cell_m):
    geoms = np.asarray(invalid_cases()[case], dtype=object)
    assert not shapely.is_valid(geoms).all() or not shapely.coverage_is_valid(geoms)
    assert not certain(geoms, cell_m=cell_m)


def lattice(n=6, step=0.001):
    xs = 118.5 + np.arange(n + 1) * step
    ys = 24.7 + np.arange(n + 1) * step
    return [shapely.Polygon([(xs[i], ys[j]), (xs[i + 1], ys[j]), (xs[i + 1], ys[j + 1]), (xs[i], ys[j + 1])])
            for i in range(n) for j in range(n)]


@pytest.mark.parametrize("seed", range(6))
def test_moved_vertices_against_geos(seed):
    """One vertex of one square moved (by 1e-9 to half a cell, possibly onto
    a neighbour's edge or vertex): the reading is never certain where GEOS
    finds the coverage invalid, and is certain of the untouched lattice."""
    rng = np.random.default_rng(seed)
    base = lattice()
    assert certain(base)
    told = invalid = 0
    for _ in range(40):
        geoms = list(base)
        k = rng.integers(len(geoms))
        xy = shapely.get_coordinates(geoms[k])
        v = rng.integers(4)
        step = rng.choice([1e-12, 1e-9, 1e-6, 5e-4, 1e-3])
        xy[v] += step * rng.choice([-1, 0, 1], size=2)
        if v == 0:
            xy[-1] = xy[0]
        if rng.random() < 0.3:  # moved onto the neighbours' shared vertex or edge midpoint
            xy[v] = np.round((xy[v] - (118.5, 24.7)) / 0.0005) * 0.0005 + (118.5, 24.7)
            if v == 0:
                xy[-1] = xy[0]
        geoms[k] = shapely.Polygon(xy)
        told += assert_never_wrong(geoms)
        invalid += not shapely.coverage_is_valid(np.asarray(geoms, dtype=object))
    assert told >= 5 and invalid >= 10  # some moves leave a valid coverage (a zero move, a vertex put back)


def test_an_index_of_an_invalid_level_stays_exact_without_geos_claims(monkeypatch):
    """When the segments do not tell, GEOS decides, as before."""
    calls = []
    real = shapely.coverage_is_valid

    def spy(geoms, *args, **kwargs):
        calls.append(len(geoms))
        return real(geoms, *args, **kwargs)

    monkeypatch.setattr(assignment.shapely, "coverage_is_valid", spy)
    units = layout_units()
    codes = [c for c, _, _ in units]
    grids = gpd.GeoDataFrame({"code": codes, "name": codes, "level": [lv for _, lv, _ in units],
                              "parent": [c[:-2] for c in codes]}, geometry=[g for _, _, g in units], crs=4490)
    AssignIndex(grids, scheme=SCHEME)
    assert calls == []  # every level read from its segments
    grids.loc[grids["code"] == "010202", "geometry"] = shapely.Polygon([(118.5011, 24.7011), (118.5019, 24.7015),
                                                                         (118.5013, 24.7019)])
    grids.loc[grids["code"] == "010201", "geometry"] = shapely.Polygon([(118.5012, 24.701), (118.502, 24.702),
                                                                         (118.5012, 24.702)])
    AssignIndex(grids, scheme=SCHEME)
    assert calls  # the overlapping plots: GEOS was asked


def test_hash_collisions_fall_back_to_exact_sorts(sample, monkeypatch):
    """Rows are numbered by a hash table of their hashes, each checked against
    its row: were every hash the same, the segments would be found by a sort
    of their rows and the vertices left to GEOS, with the same answers."""
    from test_assignment_adaptive import hard_points

    points = hard_points(sample.grids, 5_000, seed=2)
    expected = assignment.assign(points, AssignIndex(sample.grids))
    calls = []

    def colliding(values, *args, **kwargs):
        calls.append(len(values))
        return np.zeros(len(values), dtype=np.int64), np.asarray(values[:1])

    real = shapely.coverage_is_valid
    asked = []
    monkeypatch.setattr(assignment.pd, "factorize", colliding)
    monkeypatch.setattr(assignment.shapely, "coverage_is_valid", lambda g, *a, **k: asked.append(len(g)) or real(g))
    index = AssignIndex(sample.grids)
    assert calls and asked  # both fell back
    assert assignment.assign(points, index).equals(expected)
