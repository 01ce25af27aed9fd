"""gridgeo.validate on a Dask cluster gives the in-memory report, problems across the partition included.

The parts are the top-level units. With the town sample's town left out, its 28 villages are the top
level: 28 parts on a two-worker LocalCluster, whose shared edges are partition boundaries. Defects are
seeded across them (two villages overlapping, a gap between two villages, a village edge that no longer
matches its neighbour's) and inside them (two level-2 grids overlapping, a dropped grid); the reference is
:func:`gridgeo.validate` in memory, and the seeded problems are checked to be there.
"""

import numpy as np
import pandas as pd
import pytest
import shapely

import gridgeo
import gridgeo.sample
from gridgeo.validation import REPORT_COLUMNS
from test_validation import crs, to_metric, to_storage  # noqa: F401 - crs is a fixture


@pytest.fixture(scope="module")
def client(dask_client):
    return dask_client


def shared_vertices(frame, level, crs, *, clearance=40.0, count=2, apart=300.0):
    """Vertices of exactly two units of `level` (their codes and xy), `clearance` metres from every
    other unit of the level and from the outline of all of them, at least `apart` metres apart."""
    units = frame[frame["level"] == level].reset_index(drop=True)
    xy, owner = shapely.get_coordinates(units.geometry.array, return_index=True)
    table = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "owner": owner}).drop_duplicates()
    pairs = table[table.groupby(["x", "y"])["owner"].transform("size") == 2]
    pairs = pairs.groupby(["x", "y"])["owner"].apply(list)
    metric = units.to_crs(crs)
    outline = shapely.union_all(metric.geometry.array).boundary
    found, taken = [], []
    for (x, y), owners in pairs.items():
        point = to_metric(shapely.Point(x, y), crs)
        if metric.drop(index=owners).distance(point).min() < clearance or outline.distance(point) < clearance:
            continue
        if any(point.distance(p) < apart for p in taken) or set(owners) & {o for f in found for o in f[0]}:
            continue
        found.append((owners, units["code"].iloc[owners].tolist(), (x, y)))
        taken.append(point)
        if len(found) == count:
            return found
    raise AssertionError(f"not {count} vertices fit in the {level} level")


def move_vertex(frame, code, old, new):
    """`frame` with the vertex `old` of unit `code` (only) moved to `new`."""
    def move(xy):
        xy = xy.copy()
        xy[(xy[:, 0] == old[0]) & (xy[:, 1] == old[1])] = new
        return xy

    out = frame.copy()
    at = out.index[out["code"] == code][0]
    out.loc[at, "geometry"] = shapely.transform(out.loc[at, "geometry"], move)
    return out


def split_shared_edge(frame, code, other, xy):
    """`frame` with a vertex added to unit `code` half way along the edge from `xy` that it shares
    with `other`."""
    out = frame.copy()
    at = out.index[out["code"] == code][0]
    ring = np.asarray(out.loc[at, "geometry"].exterior.coords)
    theirs = {tuple(p) for p in shapely.get_coordinates(out.loc[out["code"] == other, "geometry"].iloc[0])}
    i = next(i for i in range(len(ring) - 1) if tuple(ring[i]) == tuple(xy))
    j = i + 1 if tuple(ring[i + 1]) in theirs else i - 1
    assert tuple(ring[j]) in theirs
    lo = min(i, j)
    ring = np.insert(ring, lo + 1, (ring[i] + ring[j]) / 2, axis=0)
    if lo == 0 and j == -1:
        raise AssertionError("the shared edge wraps around the ring's start")
    holes = [h.coords for h in out.loc[at, "geometry"].interiors]
    out.loc[at, "geometry"] = shapely.Polygon(ring, holes)
    return out


def moved(xy, into, distance, crs):
    """Storage coordinates `distance` metres from `xy` towards the inside (or, negative, the outside) of
    the metric polygon `into`, along the direction that goes deepest."""
    point = to_metric(shapely.Point(xy), crs)
    best, depth = None, -np.inf
    for angle in np.linspace(0, 2 * np.pi, 72, endpoint=False):
        p = shapely.Point(point.x + abs(distance) * np.cos(angle), point.y + abs(distance) * np.sin(angle))
        inside = into.contains(p)
        d = into.exterior.distance(p) if inside == (distance > 0) else -1
        if d > depth:
            best, depth = p, d
    back = to_storage(best, crs)
    return back.x, back.y


@pytest.fixture(scope="module")
def villages_broken(grids, crs):
    """The sample without its town (the villages are the top level, one part each), broken across and
    inside the parts. Returns the frame and the seeded (kind, codes) pairs."""
    frame = grids[grids["level"] != "town"].reset_index(drop=True)
    seeded = []
    (_, (a, b), xy_a), (_, (c, d), xy_g), (_, (g, k), xy_k) = shared_vertices(frame, "village", crs, count=3)
    # a village pushed 8 m into its neighbour: an overlap across the partition
    into_b = to_metric(frame.loc[frame["code"] == b, "geometry"].iloc[0], crs)
    frame = move_vertex(frame, a, xy_a, moved(xy_a, into_b, 8.0, crs))
    seeded.append(("overlap", {a, b}))
    # a village pulled 8 m back from its neighbour: a gap between two top-level units
    into_c = to_metric(frame.loc[frame["code"] == c, "geometry"].iloc[0], crs)
    frame = move_vertex(frame, c, xy_g, moved(xy_g, into_c, 8.0, crs))
    seeded.append(("uncovered", {c}))
    # a vertex added to one village only, half way along an edge it shares: edges that do not match
    frame = split_shared_edge(frame, g, k, xy_k)
    seeded.append(("edge_mismatch", {g}))
    # inside a part: two level-2 grids overlapping, one level-2 grid dropped
    [(_, (e, f), xy_e)] = shared_vertices(frame, "grid2", crs, count=1)
    into_f = to_metric(frame.loc[frame["code"] == f, "geometry"].iloc[0], crs)
    frame = move_vertex(frame, e, xy_e, moved(xy_e, into_f, 3.0, crs))
    seeded.append(("overlap", {e, f}))
    grid2 = frame[frame["level"] == "grid2"]
    dropped = grid2[~grid2["code"].isin([e, f])].iloc[5]
    frame = frame[frame["code"] != dropped["code"]].reset_index(drop=True)
    seeded.append(("sequence_gap", {dropped["parent"]}))
    return frame, seeded


def same_report(on_dask, in_memory):
    """Same columns, rows, order and values; geometries equal (exactly, or as sets of points for the
    lines GEOS returns in another order)."""
    assert list(on_dask.columns) == list(REPORT_COLUMNS)
    assert len(on_dask) == len(in_memory)
    plain = [c for c in REPORT_COLUMNS if c not in ("geometry", "area_m2")]
    pd.testing.assert_frame_equal(on_dask[plain], in_memory[plain])
    np.testing.assert_array_equal(on_dask["area_m2"].to_numpy(), in_memory["area_m2"].to_numpy())
    a, b = np.asarray(on_dask.geometry.array), np.asarray(in_memory.geometry.array)
    assert shapely.equals(a, b).all() | (shapely.is_empty(a) & shapely.is_empty(b)).all()
    assert on_dask.attrs["summary"] == in_memory.attrs["summary"]


def test_problems_across_and_inside_parts_are_reported_as_in_memory(villages_broken, client):
    frame, seeded = villages_broken
    in_memory = gridgeo.validate(frame)
    on_dask = gridgeo.validate(frame, client=client)
    same_report(on_dask, in_memory)
    # the seeded problems are there, across the partition too
    for kind, codes in seeded:
        rows = on_dask[on_dask["kind"] == kind]
        assert any(codes <= set(c.split(",")) for c in rows["codes"]), (kind, codes)
    village_overlap = on_dask[(on_dask["kind"] == "overlap") & (on_dask["level"] == "village")]
    assert len(village_overlap) == 1
    top_gap = on_dask[(on_dask["kind"].isin(["gap", "uncovered"])) & (on_dask["level"] == "village")]
    assert len(top_gap) == 1 and top_gap.iloc[0]["area_m2"] > 10


def test_the_clean_sample_and_the_province_are_valid_on_dask_too(grids, client):
    villages = grids[grids["level"] != "town"]
    same_report(gridgeo.validate(villages, client=client), gridgeo.validate(villages))
    province = gridgeo.sample.province(gridgeo.sample.load(), 2).grids
    report = gridgeo.validate(province, client=client)
    same_report(report, gridgeo.validate(province))
    assert report.attrs["summary"]["errors"] == 0


def test_levels_and_options_reach_the_parts(villages_broken, client):
    frame, _ = villages_broken
    options = dict(levels=["village", "grid2"], gap_width=20.0, sliver_area=5_000.0, compactness=0.3)
    same_report(gridgeo.validate(frame, client=client, **options), gridgeo.validate(frame, **options))


def test_a_frame_the_parts_cannot_hold_is_checked_as_one_task(villages_broken, client):
    frame, _ = villages_broken
    orphaned = frame.copy()
    grid1 = orphaned.index[orphaned["level"] == "grid1"][3]
    orphaned.loc[grid1, "parent"] = "999999999999"  # its parents no longer reach a top-level unit
    duplicated = frame.copy()
    duplicated.loc[duplicated.index[duplicated["level"] == "grid2"][7], "code"] = duplicated.loc[
        duplicated.index[duplicated["level"] == "grid2"][8], "code"]
    for broken in (orphaned, duplicated):
        same_report(gridgeo.validate(broken, client=client), gridgeo.validate(broken))


def test_one_grid_without_its_unit_on_dask(grids, crs, client):
    """The level-2 grids of one level-1 grid, without it, are the top level (their parent is not in the
    frame): an overlap and a gap between two of them cross the partition, and the gaps they enclose
    are found on the client."""
    grid1 = grids.loc[grids["level"] == "grid2", "parent"].value_counts().index[0]  # the most level-2 grids
    frame = grids[grids["code"].str.startswith(grid1) & (grids["code"] != grid1)].reset_index(drop=True)
    (_, (a, b), xy_a), (_, (c, _), xy_c) = shared_vertices(frame, "grid2", crs, clearance=10.0, apart=30.0)
    frame = move_vertex(frame, a, xy_a, moved(xy_a, to_metric(frame.loc[frame["code"] == b, "geometry"].iloc[0],
                                                              crs), 3.0, crs))
    frame = move_vertex(frame, c, xy_c, moved(xy_c, to_metric(frame.loc[frame["code"] == c, "geometry"].iloc[0],
                                                              crs), 3.0, crs))
    in_memory = gridgeo.validate(frame)
    assert {"overlap", "uncovered"} <= set(in_memory[in_memory["level"] == "grid2"]["kind"])
    same_report(gridgeo.validate(frame, client=client), in_memory)
