"""gridgeo.assign: identical to an exact covers-join with the smallest-code rule.

The reference is geopandas' spatial join with ``predicate="covered_by"`` at
every level, followed by the documented rule applied in pandas with the
grids' own ``parent`` column: at each level, among the covering units whose
parent is the unit chosen above, the smallest code.
"""

import pickle

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import Point, box

import gridgeo
from gridgeo import crs as gcrs
from gridgeo.assignment import STATUSES, AssignIndex, assign
from gridgeo.schema import SchemaError


def covers_join(points, grids, scheme=gridgeo.schema.DEFAULT_SCHEME):
    """The reference answer: per level code (None where no unit) and tie."""
    levels = [lv for lv in scheme.names if lv in set(grids["level"])]
    pts = gpd.GeoDataFrame(geometry=points.geometry.to_numpy(), crs=points.crs)
    out = pd.DataFrame(index=pts.index)
    tie = np.zeros(len(pts), dtype=bool)
    above = None
    for lv in levels:
        units = grids.loc[grids["level"] == lv, ["code", "parent", "geometry"]]
        pairs = gpd.sjoin(pts, units, predicate="covered_by", how="inner")
        pairs = pairs[["code", "parent"]].rename_axis("point").reset_index()
        if above is not None:
            pairs = pairs[pairs["parent"].to_numpy() == above.reindex(pairs["point"]).to_numpy()]
        by_point = pairs.groupby("point")["code"]
        tie[by_point.size().index[by_point.size() > 1]] = True
        above = by_point.min().reindex(pts.index)
        out[lv] = above
    out["tie"] = tie
    out.index = points.index
    return out


def assert_same_as_reference(result, reference, levels):
    for lv in levels:
        got = result[lv].astype(object).where(result[lv].notna(), None).to_numpy()
        want = reference[lv].astype(object).where(reference[lv].notna(), None).to_numpy()
        wrong = np.flatnonzero(got != want)
        assert not len(wrong), f"{lv}: {len(wrong)} points differ, first {wrong[:5]}"
    expected = np.where(reference[levels[0]].isna(), "outside",
                        np.where(reference["tie"], "boundary", "inside"))
    np.testing.assert_array_equal(result["status"].astype(str).to_numpy(), expected)


def boundary_points(grids):
    """Every vertex and every edge midpoint of every unit, once each."""
    rings = shapely.get_rings(shapely.get_parts(grids.geometry.to_numpy()))
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    mids = (xy[:-1][same] + xy[1:][same]) / 2
    return np.unique(xy, axis=0), np.unique(mids, axis=0)


@pytest.fixture(scope="module")
def index(sample):
    return AssignIndex(sample.grids)


@pytest.fixture(scope="module")
def hard_points(sample):
    """Random points over the town and around it, every vertex, every edge
    midpoint, and both nudged by amounts from 1e-12 to 1e-7 degrees."""
    rng = np.random.default_rng(4)
    minx, miny, maxx, maxy = sample.grids.total_bounds
    n = 30_000
    random = np.c_[rng.uniform(minx - 0.005, maxx + 0.005, n), rng.uniform(miny - 0.005, maxy + 0.005, n)]
    vertices, mids = boundary_points(sample.grids)
    nudged = [where + step * rng.choice([-1.0, 1.0], size=where.shape)
              for where in (vertices, mids) for step in (1e-12, 1e-9, 1e-7)]
    xy = np.concatenate([random, vertices, mids, *nudged])
    return gpd.GeoDataFrame(geometry=shapely.points(xy), crs=4490)


@pytest.fixture(scope="module")
def reference(sample, hard_points):
    return covers_join(hard_points, sample.grids)


@pytest.mark.parametrize("cell_m", [None, 7.0, 20.0, 75.0, 300.0])
def test_identical_to_exact_covers_join(sample, hard_points, reference, cell_m):
    index = AssignIndex(sample.grids, cell_m=cell_m)
    result = assign(hard_points, index)
    assert_same_as_reference(result, reference, index.levels)
    # the hard cases are really there
    counts = result["status"].value_counts()
    assert counts["boundary"] > 4_000 and counts["outside"] > 1_000 and counts["inside"] > 20_000


def test_a_call_given_grids_builds_a_lighter_index_with_the_same_answers(sample, hard_points, reference):
    result = assign(hard_points, sample.grids)  # no quarters, no pieces: built inside
    assert_same_as_reference(result, reference, AssignIndex(sample.grids).levels)
    light = AssignIndex(sample.grids, _one_call=True)
    assert light._depth == 0 and not len(light._fast_lines) and light.nbytes < AssignIndex(sample.grids).nbytes


def test_every_shared_edge_point_goes_to_exactly_one_unit_the_smallest_code(sample, index):
    grid2 = sample.level("grid2")
    vertices, mids = boundary_points(grid2)
    points = gpd.GeoDataFrame(geometry=shapely.points(np.concatenate([vertices, mids])), crs=4490)
    result = assign(points, index)
    holders = gpd.sjoin(points, grid2[["code", "geometry"]], predicate="covered_by")
    smallest = holders.groupby(level=0)["code"].min()
    shared = holders.groupby(level=0).size() > 1
    # covered by some grid2 -> exactly that smallest code; shared -> status boundary
    assert (result.loc[smallest.index, "grid2"].astype(str) == smallest).all()
    assert (result.loc[shared[shared].index, "status"] == "boundary").all()
    assert shared.sum() > 1_000


def test_codes_nest_level_by_level(sample, hard_points, index):
    result = assign(hard_points, index)
    for upper, lower in zip(index.levels, index.levels[1:]):
        both = result[lower].notna()
        assert result.loc[both, upper].notna().all()
        assert all(low.startswith(up) for up, low in zip(result.loc[both, upper], result.loc[both, lower]))


def test_level3_only_where_there_are_plots(sample, index):
    result = assign(sample.addresses, index)
    in_plot = gpd.sjoin(sample.addresses, sample.level("grid3")[["code", "geometry"]],
                        predicate="covered_by")
    assert result["grid3"].notna().sum() == in_plot.index.nunique() > 0
    assert result["grid2"].notna().all() and (result["status"] == "inside").all()


def test_a_hierarchy_with_a_gap_and_overlapping_units(sample):
    """A faulty plan is answered exactly too, by the same rule: a grid2
    missing (a gap), a grid2 that also covers its neighbour (two units hold
    the same ground), a grid1 spilling over its neighbours."""
    grids = sample.grids.copy()
    grid2 = grids.index[grids["level"] == "grid2"]
    grids = grids.drop(grid2[5])
    grids.loc[grid2[7], "geometry"] = shapely.union(grids.loc[grid2[7], "geometry"],
                                                    grids.loc[grid2[8], "geometry"])
    grid1 = grids.index[grids["level"] == "grid1"][3]
    grids.loc[grid1, "geometry"] = grids.loc[grid1, "geometry"].buffer(2e-4)
    index = AssignIndex(grids)
    rng = np.random.default_rng(9)
    minx, miny, maxx, maxy = grids.total_bounds
    vertices, mids = boundary_points(grids)
    xy = np.concatenate([np.c_[rng.uniform(minx, maxx, 20_000), rng.uniform(miny, maxy, 20_000)],
                         vertices[::3], mids[::3]])
    points = gpd.GeoDataFrame(geometry=shapely.points(xy), crs=4490)
    assert_same_as_reference(assign(points, index), covers_join(points, grids), index.levels)


def test_snapping_gives_near_outside_points_to_the_nearest_unit(sample, index):
    town = sample.level("town")
    metric = gcrs.metric_crs(sample.grids)
    outline = town.to_crs(metric).geometry.iloc[0]
    rng = np.random.default_rng(3)
    on_edge = shapely.line_interpolate_point(outline.exterior, rng.uniform(0, outline.exterior.length, 300))
    centre = outline.centroid
    # pushed outwards from the centre by 2 to 30 m
    direction = shapely.get_coordinates(on_edge) - np.array([centre.x, centre.y])
    direction /= np.linalg.norm(direction, axis=1)[:, None]
    moved = shapely.get_coordinates(on_edge) + direction * rng.uniform(2, 30, (300, 1))
    metric_points = gpd.GeoSeries(shapely.points(moved), crs=metric)
    metric_points = metric_points[~metric_points.intersects(outline)]
    points = gpd.GeoDataFrame(geometry=metric_points.to_crs(4490), crs=4490)

    strict = assign(points, index)
    assert (strict["status"] == "outside").all() and strict["grid2"].isna().all()

    snapped = assign(points, index, tolerance_m=15.0)
    distance = metric_points.distance(outline).to_numpy()
    near = distance <= 15.0 - 1e-6
    far = distance > 15.0 + 1e-6
    assert near.sum() > 50 and far.sum() > 50
    assert (snapped["status"].to_numpy()[near] == "snapped").all()
    assert (snapped["status"].to_numpy()[far] == "outside").all()
    # the grid2 given is the nearest grid2, measured independently
    grid2 = sample.level("grid2").to_crs(metric)
    chosen = snapped[snapped["status"] == "snapped"]
    nearest = gpd.sjoin_nearest(metric_points.loc[chosen.index].to_frame("geometry"),
                                grid2[["code", "geometry"]], distance_col="d")
    nearest = nearest.sort_values(["d", "code"]).groupby(level=0)["code"].first()
    assert (chosen["grid2"].astype(str) == nearest.reindex(chosen.index)).all()


def test_bad_points_are_invalid_with_a_reason_and_never_lose_the_batch(index):
    geoms = [Point(118.47, 24.80), None, Point(), Point(np.nan, 24.8), Point(np.inf, 24.8),
             shapely.LineString([(118.47, 24.8), (118.48, 24.8)]), box(118.47, 24.79, 118.48, 24.8),
             Point(118.48, 24.79)]
    points = gpd.GeoDataFrame({"id": range(len(geoms))}, geometry=geoms, crs=4490,
                              index=pd.Index([f"p{i}" for i in range(len(geoms))]))
    result = assign(points, index)
    assert list(result.index) == list(points.index)
    assert result["status"].tolist() == ["inside"] + ["invalid"] * 6 + ["inside"]
    reasons = result["reason"].astype(object).tolist()
    assert pd.isna(reasons[0])
    assert reasons[1:7] == ["missing geometry", "empty point", "coordinate is NaN",
                            "coordinate is infinite",
                            "not a point but a LineString: assign takes points "
                            "(use .representative_point() for areas)",
                            "not a point but a Polygon: assign takes points "
                            "(use .representative_point() for areas)"]
    assert result["grid2"].iloc[1:7].isna().all() and result["grid2"].iloc[[0, 7]].notna().all()


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_points_in_gcj02_and_bd09(sample, index, system):
    pts = sample.addresses.iloc[::7]
    expected = assign(pts, index)
    moved = gcrs.convert(pts, "cgcs2000", system)
    result = assign(moved.set_crs(None, allow_override=True), index, crs=system)
    # a round trip through GCJ-02 moves points by < 1e-9 degrees: none of these is that close
    pd.testing.assert_frame_equal(result, expected)


def test_plain_dataframe_with_longitude_latitude(sample, index):
    pts = sample.addresses.iloc[::11]
    gcj = gcrs.convert(pts, "cgcs2000", "gcj02")
    table = pd.DataFrame({"addr_id": pts["addr_id"].to_numpy(), "经度": gcj.geometry.x.to_numpy(),
                          "纬度": gcj.geometry.y.to_numpy()}, index=pts.index)
    table.loc[table.index[0], "经度"] = np.nan
    result = assign(table, index, crs="gcj02")
    expected = assign(pts, index)
    assert result["status"].iloc[0] == "invalid"
    assert result["reason"].iloc[0].startswith("no usable longitude/latitude")
    pd.testing.assert_frame_equal(result.iloc[1:], expected.iloc[1:])


def test_grids_failing_the_schema_are_refused_with_its_message(grids_copy):
    grids_copy.loc[grids_copy.index[3], "code"] = "12345"
    with pytest.raises(SchemaError, match="is not a valid grids layer") as info:
        AssignIndex(grids_copy, name="plan.gpkg")
    assert "plan.gpkg" in str(info.value) and "12345" in str(info.value)


def test_options_are_checked(sample, index):
    pts = sample.addresses.iloc[:5]
    with pytest.raises(ValueError, match="on_boundary"):
        assign(pts, index, on_boundary="largest-area")
    with pytest.raises(ValueError, match="tolerance_m"):
        assign(pts, index, tolerance_m=-1)
    with pytest.raises(KeyError, match="grid9"):
        assign(pts, index, levels=["grid9"])
    with pytest.raises(TypeError, match="unexpected keyword"):
        assign(pts, index, predicate="within")
    only = assign(pts, index, levels=["grid2", "village"])
    assert list(only.columns) == ["village", "grid2", "status", "reason"]


def test_the_index_pickles_and_answers_the_same(sample, index, hard_points, reference):
    copy = pickle.loads(pickle.dumps(index))
    assert copy.token == index.token
    assert_same_as_reference(assign(hard_points, copy), reference, index.levels)
    assert 100_000 < index.nbytes < 10_000_000
    assert len(pickle.dumps(index)) < 2 * index.nbytes
    result = assign(sample.addresses.iloc[:10], sample.grids)  # grids work directly too
    assert result.equals(assign(sample.addresses.iloc[:10], index))


def test_columns_are_categorical_codes_of_each_level(index, sample):
    result = assign(sample.events.iloc[:100], index)
    for lv in index.levels:
        assert isinstance(result[lv].dtype, pd.CategoricalDtype)
        assert list(result[lv].cat.categories) == sorted(sample.level(lv)["code"])
    assert list(result["status"].cat.categories) == list(STATUSES)


def test_dask_on_a_local_cluster_matches_in_memory(sample, index):
    import dask_geopandas
    from distributed import Client, LocalCluster

    points = sample.events[["event_id", "geometry"]]
    expected = assign(points, index)
    parts = dask_geopandas.from_geopandas(points, npartitions=4)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster):
        lazy = assign(parts, index)
        assert lazy.npartitions == 4
        result = lazy.compute()
    pd.testing.assert_frame_equal(result, expected)


@pytest.fixture(scope="module")
def gcj_table(sample, tmp_path_factory):
    """A GBK CSV of addresses with longitude/latitude read off Amap (GCJ-02)."""
    pts = sample.addresses.iloc[::9]
    gcj = gcrs.convert(pts, "cgcs2000", "gcj02")
    table = pd.DataFrame({"编号": pts["addr_id"].to_numpy(), "地址": pts["address"].to_numpy(),
                          "经度": gcj.geometry.x.to_numpy(), "纬度": gcj.geometry.y.to_numpy()})
    table.loc[5, "纬度"] = np.nan
    path = tmp_path_factory.mktemp("cli") / "addresses.csv"
    table.to_csv(path, index=False, encoding="gbk")
    return path, pts


@pytest.mark.parametrize("engine", ["memory", "dask"])
def test_cli_assigns_a_gcj02_csv(gcj_table, index, engine, tmp_path):
    from typer.testing import CliRunner

    from gridgeo.cli import app

    path, pts = gcj_table
    out = tmp_path / "assigned.csv"
    args = ["assign", "sample_geojson", str(path), "-o", str(out), "--crs", "gcj02",
            "--engine", engine, "--batch", "500"]
    if engine == "dask":
        args += ["--workers", "2"]
    else:
        args += ["--cell-m", "150"]  # a coarse index answers the same
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    cell = "150" if engine == "memory" else f"{AssignIndex(index.grids).cell_m:g}"
    assert f"cells of {cell} m" in result.output
    written = pd.read_csv(out, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert list(written.columns) == ["编号", "地址", "经度", "纬度", *index.levels, "status", "reason"]
    assert (written["编号"] == pts["addr_id"].to_numpy()).all()
    expected = assign(pts, index)
    for column in [*index.levels, "status"]:
        want = expected[column].astype(object).where(expected[column].notna(), "").to_numpy().copy()
        want[5] = "invalid" if column == "status" else ""  # the row without a latitude
        np.testing.assert_array_equal(written[column].to_numpy(), want)
    assert "invalid" in result.output and f"{len(pts):,} points" in result.output


def test_cli_refuses_a_table_without_crs_and_keeps_an_existing_output(gcj_table, tmp_path):
    from typer.testing import CliRunner

    from gridgeo.cli import app

    path, _ = gcj_table
    result = CliRunner().invoke(app, ["assign", "sample_geojson", str(path), "-o", str(tmp_path / "a.csv")])
    assert result.exit_code == 2 and "--crs" in result.output
    existing = tmp_path / "b.csv"
    existing.write_text("keep me")
    result = CliRunner().invoke(app, ["assign", "sample_geojson", str(path), "-o", str(existing),
                                      "--crs", "gcj02"])
    assert result.exit_code == 2 and existing.read_text() == "keep me"


def test_cli_assigns_to_an_offices_own_grid_file(gcj_table, sample, tmp_path):
    """The grids as an office's GIS writes them (Chinese fields, level labels, codes in number
    fields, a GK zone): the same answers as the sample's own files."""
    from typer.testing import CliRunner

    from gridgeo.cli import app
    from office_files import grid_shapefile

    path, _ = gcj_table
    shp = grid_shapefile(tmp_path, sample.grids, name="晋江网格.shp")
    outs = {}
    for grids in (shp, "sample_geojson"):
        out = outs[str(grids)] = tmp_path / f"{len(outs)}.csv"
        result = CliRunner().invoke(app, ["assign", str(grids), str(path), "-o", str(out), "--crs", "gcj02"])
        assert result.exit_code == 0, result.output
    office, own = (pd.read_csv(o, dtype=str, keep_default_na=False) for o in outs.values())
    pd.testing.assert_frame_equal(office, own)
    assert (office["grid2"] != "").sum() > 0.9 * len(office)


def test_examples_in_the_docstrings_run():
    import doctest

    import gridgeo.assignment

    outcome = doctest.testmod(gridgeo.assignment)
    assert outcome.attempted > 0 and outcome.failed == 0


def test_points_in_a_projected_crs_and_a_crs_mistake(sample, index):
    pts = sample.addresses.iloc[::13]
    metric = pts.to_crs(gcrs.metric_crs(sample.grids))
    pd.testing.assert_frame_equal(assign(metric, index), assign(pts, index))
    swapped = gpd.GeoDataFrame(geometry=shapely.points(pts.geometry.y, pts.geometry.x), crs=4490)
    with pytest.raises(gcrs.CRSError, match="addresses.csv: longitude and latitude look swapped"):
        assign(swapped, index, name="addresses.csv")
