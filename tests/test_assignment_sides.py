"""The index reads its pieces' answers from the sides of the boundary segments.

A leaf of the index cut by one or two boundary segments gets, for each of
its pieces, the unit on that piece's side of the segments (see
``AssignIndex._piece_answers``), without testing a point. Checked here:

- against the exact covers-join of tests/test_assignment.py, on a hand-made
  hierarchy holding the hard cases (a unit with a hole and the unit filling
  it, a multipolygon, units touching at a single point, a sliver a centimetre
  wide, diagonal edges, a plot identical to its block, plots whose edges run
  along their block's edge without sharing its vertices), at cell sizes that
  put the lines in the leaves in many ways; points exactly on vertices and
  edges and nudged off them;
- piece by piece, against the answer the index finds by testing a sample
  point of the piece exactly with GEOS (the path it takes when the sides do
  not tell): on the town sample, the hand-made hierarchy and Fujian's real
  county outlines;
- the strip between two segments of one level without a shared end, and
  the sector at a shared vertex;
- on levels where the sides cannot tell (invalid polygons, overlapping
  units): they are not used, and the answers stay exact;
- the side of a line that another segment lies on, in rational arithmetic.
"""

from fractions import Fraction

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridgeo import assignment
from gridgeo.assignment import _MIXED, AssignIndex, assign
from gridgeo.schema import DEFAULT_SCHEME, PREFECTURE_SCHEME, CodeScheme, Level
from test_assignment import assert_same_as_reference, covers_join
from test_assignment_adaptive import fujian, hard_points  # noqa: F401 (fixture)

SCHEME = CodeScheme(levels=(Level("zone", 2, True, "zone", "zone"), Level("block", 2, True, "block", "block"),
                            Level("plot", 2, False, "plot", "plot")), root_digits=0, village_level="block")

# the lattice step of the hand-made hierarchy: 0.001 degree, about 100 m
STEP = 0.001
# the sliver's width: 1e-7 degree, about a centimetre
SLIVER = 1e-7


def at(*ij):
    """Lon/lat of lattice points (i, j), computed the same way every time:
    equal lattice points are equal coordinates, bit for bit."""
    return [(118.5 + i * STEP, 24.7 + j * STEP) for i, j in ij]


def polygon(shell, *holes):
    return shapely.Polygon(at(*shell), [at(*h) for h in holes])


def layout_units():
    """(code, level, geometry) of the hand-made hierarchy, each level a valid coverage."""
    sliver = shapely.Polygon(at((9, 0)) + [(118.5 + 9 * STEP + SLIVER, 24.7 + 1.5 * STEP)] + at((9, 3)))
    z03 = shapely.MultiPolygon([polygon([(6, 0), (7, 0), (9, 0), (9, 3), (7.5, 3), (6, 3)]),
                                polygon([(6, 4), (7.5, 4), (9, 4), (9, 6), (6, 6)])])
    return [
        # a zone with a hole (drawn counter-clockwise, as its shell: orientation must not matter)
        ("01", "zone", polygon([(0, 0), (1, 0), (5, 0), (6, 0), (6, 3), (6, 4), (6, 6), (5, 6), (1, 6), (0, 6)],
                               [(2, 2), (4, 2), (4, 4), (2, 4)])),
        ("02", "zone", polygon([(2, 2), (4, 2), (4, 4), (2, 4)][::-1])),  # the island filling the hole, clockwise
        ("03", "zone", z03),  # a multipolygon
        ("04", "zone", polygon([(6, 3), (7.5, 3), (9, 3), (9, 4), (7.5, 4), (6, 4)])),
        ("05", "zone", polygon([(-3, 6), (0, 6), (0, 9), (-3, 9)])),  # touches zone 01 at one point
        ("06", "zone", sliver),
        ("07", "zone", polygon([(9, 4), (10, 3.6), (10, 4.4)])),  # touches 03 and 04 at one point
        ("0101", "block", polygon([(0, 0), (1, 0), (1, 6), (0, 6)])),
        ("0102", "block", polygon([(1, 0), (5, 0), (5, 6), (1, 6)], [(2, 2), (4, 2), (4, 4), (2, 4)][::-1])),
        ("0103", "block", polygon([(5, 0), (6, 0), (6, 3), (6, 4), (6, 6), (5, 6)])),
        ("0201", "block", polygon([(2, 2), (4, 2), (4, 4), (2, 4)])),  # the same as its zone
        ("0301", "block", z03.geoms[0]),
        ("0302", "block", z03.geoms[1]),
        ("0401", "block", polygon([(6, 3), (7.5, 3), (7.5, 4), (6, 4)])),
        ("0402", "block", polygon([(7.5, 3), (9, 3), (9, 4), (7.5, 4)])),
        ("0501", "block", polygon([(-3, 6), (0, 6), (-3, 9)])),  # split on the diagonal
        ("0502", "block", polygon([(0, 6), (0, 9), (-3, 9)])),
        ("0601", "block", sliver),
        ("0701", "block", polygon([(9, 4), (10, 3.6), (10, 4.4)])),
        ("010101", "plot", polygon([(0, 0), (1, 0), (1, 6), (0, 6)])),  # the same as its block
        ("010201", "plot", polygon([(1.2, 1), (2, 2), (1.2, 2)])),  # touches the hole at its corner
        ("010202", "plot", polygon([(2.5, 4.5), (4.5, 5.5), (2.5, 5.5)])),
        ("030101", "plot", polygon([(6, 0), (6.5, 0), (6.5, 1), (6, 1)])),  # along the block's edges
        ("030102", "plot", polygon([(7, 0), (8, 0), (8, 0.5)])),  # on the block's vertex (7, 0)
        ("040101", "plot", polygon([(6, 3), (7.5, 3.9), (7.4, 4)])),  # a thin diagonal plot
        # a strip 30 cm wide: leaves between its long edges hold two lines of one level, no shared end
        ("030103", "plot", polygon([(6.5, 2), (8.9, 2.1), (8.9, 2.103), (6.5, 2.003)])),
    ]


def frame(units):
    codes = [c for c, _, _ in units]
    return gpd.GeoDataFrame({"code": codes, "name": codes, "level": [lv for _, lv, _ in units],
                             "parent": [c[:-2] for c in codes]}, geometry=[g for _, _, g in units], crs=4490)


@pytest.fixture(scope="module")
def layout():
    grids = frame(layout_units())
    for lv in SCHEME.names:
        geoms = grids.loc[grids["level"] == lv].geometry.to_numpy()
        assert shapely.is_valid(geoms).all() and shapely.coverage_is_valid(geoms), lv
    return grids


def layout_points(grids, seed):
    """The hard points of the adaptive tests, and points on the lines through
    every edge just beyond its ends (where a line's side is not its segment's)."""
    points = hard_points(grids, 20_000, seed=seed)
    rings = shapely.get_rings(shapely.get_parts(grids.geometry.to_numpy()))
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    beyond = np.concatenate([b + (b - a) * t for t in (1e-9, 0.01, 0.3)] + [a - (b - a) * t for t in (1e-9, 0.3)])
    return gpd.GeoDataFrame(geometry=np.r_[points.geometry.to_numpy(), shapely.points(beyond)], crs=4490)


def sides_unused():
    """A patch making every leaf take the sampled path, as before the sides were read."""
    real = assignment.AssignIndex._piece_answers

    def untold(self, segments, lines, *args):
        return np.full((len(lines), 2**assignment._FEW_SEGMENTS), _MIXED, dtype=np.int64)

    return real, untold


def assert_pieces_agree(grids, scheme, monkeypatch, **options):
    """Every piece the sampled path answers gets the same answer from the
    sides, and the sides answer most pieces (without testing a point)."""
    index = AssignIndex(grids, scheme=scheme, **options)
    with monkeypatch.context() as patch:
        patch.setattr(assignment.AssignIndex, "_piece_answers", sides_unused()[1])
        sampled = AssignIndex(grids, scheme=scheme, **options)
    np.testing.assert_array_equal(index._child, sampled._child)
    known = sampled._fast_answer != _MIXED
    assert known.sum() > 100
    np.testing.assert_array_equal(index._fast_answer[known], sampled._fast_answer[known])
    # pieces the samples missed (too thin for all 25) are answered by the sides too
    assert (index._fast_answer != _MIXED).sum() >= known.sum()
    return index


@pytest.mark.parametrize("cell_m", [None, 3.0, 11.0, 40.0, 170.0])
def test_hard_layout_identical_to_covers_join(layout, cell_m):
    index = AssignIndex(layout, cell_m=cell_m, scheme=SCHEME)
    points = layout_points(layout, seed=int(cell_m or 1))
    result = assign(points, index)
    assert_same_as_reference(result, covers_join(points, layout, SCHEME), index.levels)
    counts = result["status"].value_counts()
    assert counts["boundary"] > 100 and counts["outside"] > 1_000 and counts["inside"] > 5_000


@pytest.mark.parametrize("cell_m", [None, 3.0, 40.0])
def test_hard_layout_pieces_agree_with_sampled_pieces(layout, monkeypatch, cell_m):
    assert_pieces_agree(layout, SCHEME, monkeypatch, cell_m=cell_m)


def test_town_pieces_agree_with_sampled_pieces(sample, monkeypatch):
    index = assert_pieces_agree(sample.grids, DEFAULT_SCHEME, monkeypatch)
    assert index._depth == 2


def test_fujian_pieces_agree_with_sampled_pieces(fujian, monkeypatch):  # noqa: F811 (fixture)
    assert_pieces_agree(fujian, PREFECTURE_SCHEME, monkeypatch)


def spy_sides(monkeypatch):
    seen = []
    real = assignment.AssignIndex._sides

    def spy(self, *args):
        seen.append(real(self, *args))
        return seen[-1]

    monkeypatch.setattr(assignment.AssignIndex, "_sides", spy)
    return seen


def test_sides_are_read_only_where_they_tell(layout, monkeypatch):
    """Sides are read on levels of valid polygons that do not overlap; a level
    with a self-intersecting block or two overlapping plots is answered by
    the sampled path, still exactly as the covers-join."""
    seen = spy_sides(monkeypatch)
    index = AssignIndex(layout, scheme=SCHEME)
    assert index._first_tested == 1  # zones follow from their blocks
    assert seen[-1].shape[0] == 2 and (seen[-1] != _MIXED).all()  # blocks' and plots' sides tell

    units = layout_units()
    # block 0101 drawn as a bow tie (self-intersecting) over the same square;
    # plot 010202 moved to overlap plot 010201
    bow = polygon([(0, 0), (1, 6), (1, 0), (0, 6)])
    units = [(c, lv, bow if c == "0101" else g) for c, lv, g in units]
    units = [(c, lv, polygon([(1.1, 1.1), (1.9, 1.5), (1.3, 1.9)]) if c == "010202" else g) for c, lv, g in units]
    broken = frame(units)
    for cell_m in (None, 11.0):
        index = AssignIndex(broken, cell_m=cell_m, scheme=SCHEME)
        side_unit = seen[-1]
        tested = SCHEME.names[index._first_tested:]
        told = {lv: bool((side_unit[i] != _MIXED).all()) for i, lv in enumerate(tested)}
        assert told.get("block") is False and told["plot"] is False, told
        points = layout_points(broken, seed=3)
        assert_same_as_reference(assign(points, index), covers_join(points, broken, SCHEME), index.levels)


def _exact_side(line, x, y):
    ax, ay, bx, by = (Fraction(float(c)) for c in line)
    det = (ax - Fraction(float(x))) * (by - Fraction(float(y))) - (ay - Fraction(float(y))) * (bx - Fraction(float(x)))
    return (det > 0) - (det < 0)


def test_the_side_of_a_segment_is_told_only_when_certain():
    """_side_of against rational arithmetic: told (1 left, 0 right) only when
    both ends are strictly on that side, or one is and the other is an end of
    the line's segment; untold (-1) otherwise: ends on both sides, an end on
    the line that is not shared, the same segment."""
    rng = np.random.default_rng(11)
    n = 4_000
    base = np.c_[118.5 + rng.uniform(0, 0.01, (n, 2)), 24.7 + rng.uniform(0, 0.01, (n, 2))][:, [0, 2, 1, 3]]
    other = np.c_[118.5 + rng.uniform(0, 0.01, (n, 2)), 24.7 + rng.uniform(0, 0.01, (n, 2))][:, [0, 2, 1, 3]]
    kind = np.arange(n) % 5
    # 1: sharing an end; 2: an end on the line (its midpoint, rounded); 3: collinear beyond; 4: the same
    other[kind == 1, :2] = base[kind == 1, 2:]
    mid = (base[:, :2] + base[:, 2:]) / 2
    other[kind == 2, :2] = mid[kind == 2]
    other[kind == 3, :2] = base[kind == 3, 2:] + (base[kind == 3, 2:] - base[kind == 3, :2])
    other[kind == 3, 2:] = base[kind == 3, 2:] + 2 * (base[kind == 3, 2:] - base[kind == 3, :2])
    other[kind == 4] = base[kind == 4]
    got = assignment._side_of(base, other)
    for row in range(n):
        ends = []
        for x, y in (other[row, :2], other[row, 2:]):
            side = _exact_side(base[row], x, y)
            shared = (x, y) in ((base[row, 0], base[row, 1]), (base[row, 2], base[row, 3]))
            ends.append(None if side == 0 and shared else side)
        signs = {e for e in ends if e is not None}
        told = 0 not in signs and len(signs) == 1
        if got[row] >= 0:  # told: then certainly so, and the right side
            assert told and got[row] == (1 if signs == {1} else 0), row
        else:  # untold: only near the line may a told case be untold
            assert not told or kind[row] in (2, 3), row
    assert (got[kind == 0] >= 0).mean() > 0.4 and (got[kind == 1] >= 0).all() and (got[kind == 4] == -1).all()


def test_the_strip_and_the_sector_are_both_read(layout, monkeypatch):
    """Leaves holding two segments of one level are read both ways: segments
    sharing an end (the sector at a vertex) and not (the 30 cm strip)."""
    seen = []
    real = assignment._side_of

    def spy(line, segment):
        told = real(line, segment)
        shared = np.zeros(len(line), dtype=bool)
        for x, y in ((segment[:, 0], segment[:, 1]), (segment[:, 2], segment[:, 3])):
            shared |= ((x == line[:, 0]) & (y == line[:, 1])) | ((x == line[:, 2]) & (y == line[:, 3]))
        seen.append((int((shared & (told >= 0)).sum()), int((~shared & (told >= 0)).sum())))
        return told

    monkeypatch.setattr(assignment, "_side_of", spy)
    AssignIndex(layout, cell_m=3.0, scheme=SCHEME)
    sector, strip = np.sum(seen, axis=0)
    assert sector > 50 and strip > 50, seen
