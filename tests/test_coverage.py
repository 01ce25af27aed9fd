"""Coverage of stations against independent computations: networkx on a
graph built line by line with shapely, brute-force straight distances, and
geopandas spatial joins for the per-grid figures."""

import logging

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import Point

from gridgeo import coverage as gc
from gridgeo import network as gn
from test_network import reference_graph, roads_reaching


@pytest.fixture(scope="session")
def town_network(sample):
    return gn.build(sample.roads)


@pytest.fixture(scope="session")
def town_coverage(sample, town_network):
    return gc.nearest_station(sample.addresses, sample.stations, town_network)


@pytest.fixture(scope="session")
def town_grids(sample, town_coverage):
    return gc.per_grid(town_coverage, sample.grids, stations=sample.stations)


def expected_circle(distance, circles):
    out = pd.Series(pd.NA, index=range(len(distance)), dtype="Int64")
    for minutes, metres in sorted(circles.items(), reverse=True):
        out[distance <= metres] = minutes
    return out


def test_every_address_against_networkx(sample, town_network):
    graph, keys = reference_graph(sample.roads, town_network.crs,
                                  {"a": sample.addresses, "s": sample.stations})
    dist = nx.multi_source_dijkstra_path_length(graph, set(keys["s"]), weight="length")
    expected = np.array([dist.get(k, np.nan) for k in keys["a"]])

    cov = gc.nearest_station(sample.addresses, sample.stations, town_network, isolated="unreachable")

    np.testing.assert_allclose(cov["distance_m"].to_numpy(), expected, atol=1e-6)  # NaN where unreachable
    assert (cov["status"] == "unreachable").sum() == np.isnan(expected).sum() > 0
    np.testing.assert_allclose(cov["minutes"].to_numpy(), expected / (4000 / 60), atol=1e-6)
    want = expected_circle(expected, gc.GB50180_CIRCLES)
    assert cov["circle"].reset_index(drop=True).equals(want)
    assert cov.index.equals(sample.addresses.index) and cov.crs == sample.addresses.crs


def test_isolated_addresses_walk_from_the_connected_roads(sample, town_network, town_coverage):
    # the reference: the same graph on the roads of the stations' pieces only
    roads = roads_reaching(sample.roads, sample.stations)
    moved = town_coverage["status"] == "resnapped"
    graph, keys = reference_graph(roads, town_network.crs,
                                  {"a": sample.addresses[moved], "s": sample.stations})
    dist = nx.multi_source_dijkstra_path_length(graph, set(keys["s"]), weight="length")

    assert moved.sum() > 0
    np.testing.assert_allclose(town_coverage.loc[moved, "distance_m"], [dist[k] for k in keys["a"]], atol=1e-6)


def test_straight_line_is_the_brute_force_nearest(sample):
    """Straight lines on the ellipsoid: pyproj's geodesic from every address to every station."""
    import pyproj

    cov = gc.nearest_station(sample.addresses, sample.stations, method="straight")
    a = shapely.get_coordinates(sample.addresses.geometry.array)
    s = shapely.get_coordinates(sample.stations.geometry.array)
    lon_a, lon_s = np.broadcast_arrays(a[:, None, 0], s[None, :, 0])
    lat_a, lat_s = np.broadcast_arrays(a[:, None, 1], s[None, :, 1])
    d = np.asarray(pyproj.Geod(ellps="GRS80").inv(lon_a.ravel(), lat_a.ravel(), lon_s.ravel(), lat_s.ravel())[2])
    d = d.reshape(len(a), len(s))

    np.testing.assert_allclose(cov["distance_m"], d.min(axis=1), rtol=0, atol=1e-6)
    assert (cov["station_id"].astype(str).to_numpy() == sample.stations["station_id"].to_numpy()[d.argmin(axis=1)]).all()
    assert set(cov["status"]) == {"straight"}


def test_kinds_filter_uses_only_those_stations(sample, town_network, town_coverage):
    only = gc.nearest_station(sample.addresses, sample.stations, town_network, kinds="grid2_station")
    grid2 = sample.stations[sample.stations["kind"] == "grid2_station"]
    direct = gn.nearest(town_network, sample.addresses, grid2.set_index("station_id"))

    assert set(only["station_kind"].dropna()) == {"grid2_station"}
    reached = only["status"] == "ok"
    np.testing.assert_allclose(only.loc[reached, "distance_m"], direct.loc[reached, "distance_m"], atol=1e-9)
    assert (only["distance_m"] >= town_coverage["distance_m"] - 1e-9).all()


def test_unknown_kind_is_refused(sample, town_network):
    with pytest.raises(ValueError, match="unknown station kind.*grid2_station"):
        gc.nearest_station(sample.addresses, sample.stations, town_network, kinds="grid9_station")


def test_summary_counts_households_within_each_circle(sample, town_coverage):
    table = gc.summary(town_coverage)
    hh = sample.addresses["households"].to_numpy()
    for minutes, metres in gc.GB50180_CIRCLES.items():
        within = town_coverage["distance_m"].to_numpy() <= metres
        assert table.loc[minutes, "households"] == hh[within].sum()
        assert table.loc[minutes, "share_households"] == pytest.approx(hh[within].sum() / hh.sum())
    assert table["households"].is_monotonic_increasing


def test_per_grid_figures_match_a_spatial_join(sample, town_coverage, town_grids):
    grid2 = sample.level("grid2")
    joined = gpd.sjoin(town_coverage, grid2[["code", "geometry"]], predicate="within")
    assert joined.index.is_unique  # no address on a boundary: the join is unambiguous
    joined["in15"] = np.where(joined["distance_m"] <= 1000, joined["households"], 0)
    joined["far"] = joined["distance_m"].where(joined["households"] > 0)
    expected = joined.groupby("code").agg(households=("households", "sum"),
                                          households_15min=("in15", "sum"), farthest_m=("far", "max"))
    ours = town_grids[town_grids["level"] == "grid2"].set_index("code")

    pd.testing.assert_series_equal(ours["households"], expected["households"].reindex(ours.index).fillna(0)
                                   .astype(np.int64), check_names=False)
    pd.testing.assert_series_equal(ours["households_15min"], expected["households_15min"].reindex(ours.index)
                                   .fillna(0).astype(np.int64), check_names=False)
    np.testing.assert_allclose(ours["farthest_m"], expected["farthest_m"].reindex(ours.index), atol=1e-9)
    stations = gpd.sjoin(sample.stations, grid2[["code", "geometry"]], predicate="within")
    assert set(ours.index[ours["has_station"]]) == set(stations["code"])


def test_per_grid_rolls_up_across_levels(town_coverage, town_grids):
    counts = [c for c in town_grids.columns if c.startswith(("addresses", "households", "population", "unreachable"))]
    counts += ["stations"]
    by_code = town_grids.set_index("code")
    for child, parent in [("village", "town"), ("grid1", "village"), ("grid2", "grid1")]:
        kids = town_grids[town_grids["level"] == child]
        rolled = kids.groupby("parent")[counts].sum()
        pd.testing.assert_frame_equal(rolled, by_code.loc[rolled.index, counts], check_names=False)
        farthest = kids.groupby("parent")["farthest_m"].max()
        np.testing.assert_allclose(farthest, by_code.loc[farthest.index, "farthest_m"])
    town = by_code[by_code["level"] == "town"].iloc[0]
    table = gc.summary(town_coverage)
    assert town["households_15min"] == table.loc[15, "households"]
    assert town["share_5min"] == pytest.approx(table.loc[5, "share_households"])


def test_per_grid_takes_an_assignment(sample, town_coverage, town_grids):
    import gridgeo

    assignment = gridgeo.assign(sample.addresses, sample.grids, levels=["grid2"])
    again = gc.per_grid(town_coverage, sample.grids, assignment=assignment, levels=["grid2"])
    ours = town_grids[town_grids["level"] == "grid2"].reset_index(drop=True)
    pd.testing.assert_frame_equal(again, ours.drop(columns=["stations", "has_station"]))


def test_addresses_far_from_roads_are_kept_and_reported(sample, town_network, caplog):
    addresses = sample.addresses.iloc[:50].copy()
    addresses.loc[addresses.index[0], "geometry"] = Point(118.30, 24.80)  # ~15 km west, off every road
    with caplog.at_level(logging.WARNING, logger="gridgeo.coverage"):
        cov, report = gc.nearest_station(addresses, sample.stations, town_network, return_report=True)

    far = cov.iloc[0]
    assert len(cov) == 50 and far["status"] == "far_from_road"
    assert far["access_m"] > 10_000 and far["distance_m"] > far["access_m"]
    assert far["addr_id"] in set(report["problems"]["addr_id"])
    assert "far_from_road" in caplog.text


def test_a_search_limit_leaves_far_addresses_unreachable_not_dropped(sample, town_network, town_coverage):
    cov = gc.nearest_station(sample.addresses, sample.stations, town_network, limit_m=200)
    beyond = town_coverage["distance_m"] > 200
    assert len(cov) == len(sample.addresses)
    assert ((cov["status"] == "unreachable") == beyond).all()
    np.testing.assert_allclose(cov.loc[~beyond, "distance_m"], town_coverage.loc[~beyond, "distance_m"])


def test_network_method_needs_a_network(sample):
    with pytest.raises(ValueError, match="method='straight'"):
        gc.nearest_station(sample.addresses, sample.stations)


def test_service_areas_hold_the_addresses_they_serve(sample, town_network, town_coverage):
    stations = sample.stations.iloc[:20]
    areas = gc.service_areas(stations, town_network, resolution_m=25, trim_m=100)
    cov = gc.nearest_station(sample.addresses, stations, town_network)
    assert len(areas) == 20 * 3 and areas.crs == sample.stations.crs
    assert areas.geometry.is_valid.all()

    for minutes, metres in gc.GB50180_CIRCLES.items():
        area = areas[areas["circle"] == minutes].set_index("station_id").geometry
        # served well inside the circle, close to the road: inside their station's area
        sure = cov[(cov["distance_m"] <= metres - 25) & (cov["access_m"] <= 100)]
        inside = shapely.covers(area.loc[sure["station_id"].astype(str)].array, sure.geometry.array)
        assert inside.all()
        # nothing in an area is farther than the circle in a straight line from its station
        metric = town_network.crs
        reach = shapely.hausdorff_distance(
            area.to_crs(metric).array, stations.set_index("station_id").loc[area.index].to_crs(metric).geometry.array)
        assert (reach <= metres + 1e-6).all()


def test_uncovered_areas_hold_every_household_left_out(sample, town_coverage):
    areas = gc.uncovered_areas(town_coverage, minutes=10)
    left_out = town_coverage[(town_coverage["households"] > 0) & ~(town_coverage["distance_m"] <= 500)]
    joined = gpd.sjoin(left_out, areas[["geometry"]], predicate="within")

    assert areas.crs == town_coverage.crs and len(areas) > 1
    assert areas["households"].sum() == left_out["households"].sum()
    assert joined.index.is_unique and len(joined) == len(left_out)
    per_area = joined.groupby("index_right")["households"].sum()
    np.testing.assert_array_equal(per_area.reindex(areas.index).to_numpy(), areas["households"].to_numpy())
    assert areas["households"].is_monotonic_decreasing


def test_uncovered_areas_clip_to_the_town(sample, town_coverage):
    metric = town_coverage.attrs["metric_crs"]
    town = sample.level("town").to_crs(metric).geometry.iloc[0]
    clipped = gc.uncovered_areas(town_coverage, minutes=5, within=sample.level("town")).to_crs(metric)
    whole = gc.uncovered_areas(town_coverage, minutes=5).to_crs(metric)

    assert clipped.difference(town).area.sum() < 1.0  # m², vertices moved by the round trip to degrees
    assert whole.difference(town).area.sum() > 10_000
    assert clipped["households"].sum() == whole["households"].sum()


def test_cli_writes_the_grid_figures_and_the_uncovered_areas(tmp_path, town_grids):
    from typer.testing import CliRunner

    from gridgeo.cli import app

    result = CliRunner().invoke(app, ["coverage", "--out", str(tmp_path), "--minutes", "10"])
    assert result.exit_code == 0, result.output
    assert "households within each life circle" in result.output
    grids = gpd.read_file(tmp_path / "grids.geojson")
    uncovered = gpd.read_file(tmp_path / "uncovered_10min.geojson")
    assert grids["households_15min"].tolist() == town_grids["households_15min"].tolist()
    assert uncovered["households"].sum() == int(
        town_grids.loc[town_grids["level"] == "town", ["households", "households_10min"]].diff(axis=1).abs()
        .iloc[0, 1])


def test_cli_refuses_an_unknown_circle(tmp_path):
    from typer.testing import CliRunner

    from gridgeo.cli import app

    result = CliRunner().invoke(app, ["coverage", "--minutes", "20"])
    assert result.exit_code == 2 and "not a life circle" in result.output


def test_cli_reads_an_offices_station_sheet_as_gridgeo_load_reads_it(tmp_path, sample, town_grids):
    """A station sheet picked on Amap (GCJ-02, 高德经度/纬度, kinds as labels) under a Chinese
    name: the figures of the sample's own stations, within the few households whose walk ends
    within the sheet's rounding of 0.1 m of a circle's edge; the same sheet read as WGS84 moves
    every station some 500 m and the figures with it."""
    from typer.testing import CliRunner

    from gridgeo.cli import app
    from office_files import station_table

    def town_households(sheet, *crs):
        out = tmp_path / sheet.stem
        result = CliRunner().invoke(app, ["coverage", "--stations", str(sheet), "--out", str(out), *crs])
        assert result.exit_code == 0, result.output
        assert "read as gridgeo load reads it (station_id ← 站点编号" in result.stderr
        grids = gpd.read_file(out / "grids.geojson")
        town = grids[grids["level"] == "town"].iloc[0]
        return np.array([town[f"households_{m}min"] for m in (5, 10, 15)], dtype=float)

    amap = tmp_path / "服务站.xlsx"
    station_table(sample.stations, headers=("站点编号", "名称", "类型", "所属网格", "高德经度", "高德纬度")).to_excel(
        amap, index=False)
    plain = tmp_path / "stations_plain.xlsx"
    station_table(sample.stations).to_excel(plain, index=False)
    own = town_grids[town_grids["level"] == "town"].iloc[0]
    want = np.array([own[f"households_{m}min"] for m in (5, 10, 15)], dtype=float)
    assert np.abs(town_households(amap) - want).max() <= 0.001 * want.max()
    assert np.abs(town_households(plain, "--crs", "wgs84") - want).max() > 0.01 * want.max()
