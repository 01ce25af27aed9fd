"""gridgeo.plan: diff between plans, the block-to-grid CSV, files, stores and the command line.

References: gridgeo.assign of the addresses to the grids before and after
(the from-to table), GDAL's ogrinfo reading the exported GeoPackage, the
store's own reads and publish validation.
"""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import gridgeo
import gridgeo.store as gstore
from gridgeo import plan
from gridgeo.plan import PlanError

VILLAGE = "350582106003"


@pytest.fixture(scope="module")
def state(sample):
    return plan.start(sample.grids, VILLAGE, roads=sample.roads, addresses=sample.addresses)


@pytest.fixture(scope="module")
def edited(state):
    """Split one grid, merge two others, paint a block: a plan with every kind of change."""
    pairs = plan.neighbours(state)
    a, b = pairs.iloc[0]["a"], pairs.iloc[0]["b"]
    grid = state.units.set_index("code").geometry[a]
    x = grid.centroid.x
    cut = shapely.LineString([(x, grid.bounds[1] - 0.01), (x, grid.bounds[3] + 0.01)])
    step = plan.split(state, a, cut)
    rest = plan.neighbours(step)
    rest = rest[~rest["a"].isin([a, b]) & ~rest["b"].isin([a, b])
                & ~rest["a"].isin(set(step.units["code"]) - set(state.units["code"]))
                & ~rest["b"].isin(set(step.units["code"]) - set(state.units["code"]))]
    step = plan.merge(step, [rest.iloc[0]["a"], rest.iloc[0]["b"]])
    pair = plan.neighbours(step)
    pair = pair[(pair["a"] == b) | (pair["b"] == b)].iloc[0]
    other = pair["a"] if pair["b"] == b else pair["b"]
    return plan.reassign(step, plan.border_blocks(step, other, b)[:1], b)


# --- diff ------------------------------------------------------------------------------------


def test_diff_of_a_plan_with_itself_is_empty(state, edited):
    for s in (state, edited):
        d = plan.diff(s, s)
        assert d.empty and d.moves.empty and set(d.units["change"]) == {"unchanged"}
        assert d.summary["households_moved"] == 0


def test_the_from_to_table_is_the_crosstab_of_assignments_before_and_after(state, edited, sample):
    d = plan.diff(state, edited)
    before = gridgeo.assign(sample.addresses, _with_parents(state, sample), levels=["grid2"])["grid2"]
    after = gridgeo.assign(sample.addresses, _with_parents(edited, sample), levels=["grid2"])["grid2"]
    hh = sample.addresses["households"]
    inside = before.notna()
    table = pd.DataFrame({"from_code": before[inside].astype(str), "to_code": after[inside].astype(str),
                          "households": hh[inside], "addresses": 1})
    table = table[table["from_code"] != table["to_code"]]
    expected = table.groupby(["from_code", "to_code"])[["addresses", "households"]].sum()
    got = d.moves.set_index(["from_code", "to_code"])[["addresses", "households"]]
    got = got[got["addresses"] > 0]
    pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index(), check_dtype=False)
    assert d.summary["households_moved"] == expected["households"].sum()
    moved_area = gpd.GeoSeries(d.moves.geometry, crs=4490).to_crs(state.metric_crs).area
    assert np.allclose(moved_area, d.moves["area_m2"], rtol=1e-9)


def test_diff_names_what_happened_to_each_grid(state, edited):
    d = plan.diff(state, edited)
    change = d.units.set_index("code")["change"]
    split, merged = edited.log[0], edited.log[1]
    assert change[split["code"]] == "split" and change[split["new"][0]] == "split"
    assert change[merged["into"]] == "merged"
    assert {change[c] for c in merged["codes"] if c != merged["into"]} == {"merged"}
    assert change[edited.log[2]["to"]] == "reshaped"
    totals = d.units[["households_before", "households_after"]].sum()
    assert totals["households_before"] == totals["households_after"] == state.blocks["households"].sum()
    renumbered = plan.diff(edited, plan.renumber(edited))
    assert set(renumbered.units["change"]) <= {"unchanged", "renumbered"} and renumbered.moves.empty


def test_diff_against_the_published_grids_as_a_frame(state, edited, sample):
    published = sample.grids[sample.grids["code"].str.startswith(VILLAGE)]
    as_frame = plan.diff(published, edited)
    as_state = plan.diff(state, edited)
    pd.testing.assert_frame_equal(as_frame.moves.drop(columns="geometry"), as_state.moves.drop(columns="geometry"))
    with pytest.raises(ValueError, match="not on the same blocks"):
        plan.diff(state, plan.start(sample.grids, "350582106201", roads=sample.roads))


def _with_parents(state, sample):
    parent = sample.grids[sample.grids["code"] == state.parent]
    return gpd.GeoDataFrame(pd.concat([parent, state.to_grids()], ignore_index=True), geometry="geometry", crs=4490)


# --- the block-to-grid CSV ---------------------------------------------------------------------


def test_csv_round_trip_is_lossless(edited, state, tmp_path):
    path = plan.to_csv(edited, tmp_path / "plan.csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    back = plan.read_csv(state, path)
    assert (back.assignment == edited.assignment).all()
    cols = ["code", "name", "level", "parent"]
    pd.testing.assert_frame_equal(back.units[cols], edited.units[cols])
    assert shapely.equals(back.units.geometry.array, edited.units.geometry.array).all()
    report = back.attrs["import"]
    assert report["unknown_blocks"] == report["missing_blocks"] == report["bad_codes"] == []
    assert report["errors"].empty
    assert plan.diff(back, edited).empty
    with pytest.raises(FileExistsError):
        plan.to_csv(edited, path)


def test_csv_import_reports_unknown_and_missing_blocks_and_bad_codes(state, sample):
    table = plan.to_csv(state)
    missing = table["block_id"].iloc[5]
    table = table[table["block_id"] != missing]
    table = pd.concat([table, pd.DataFrame([{"block_id": "350582106003-9999", "grid": state.units["code"][0],
                                              "grid_name": ""}])])
    table.loc[table.index[0], "grid"] = "3505821062010101"  # a grid of another village
    back = plan.read_csv(state, table)
    report = back.attrs["import"]
    assert report["unknown_blocks"] == ["350582106003-9999"]
    assert report["missing_blocks"] == [missing]
    assert report["bad_codes"] == ["3505821062010101"]
    unassigned = back.assignment[back.assignment == ""].index.tolist()
    assert sorted(unassigned) == sorted([missing, table["block_id"].iloc[0]])
    assert set(report["errors"]["kind"]) == {"uncovered"}
    summary = plan.impact(back).attrs["summary"]
    assert summary["unassigned_blocks"] == 2
    # the planner paints them back, one at a time: each edit is accepted though the plan still has gaps
    fixed = back
    for block in unassigned:
        grid = state.assignment[block]
        fixed = plan.reassign(fixed, [block], grid)
    assert (fixed.assignment == state.assignment).all()
    conflicting = pd.concat([plan.to_csv(state).iloc[:2], plan.to_csv(state).iloc[:1].assign(grid="x")])
    with pytest.raises(PlanError) as err:
        plan.read_csv(state, conflicting)
    assert err.value.reason == "conflicting_rows"


def test_csv_may_create_new_grids_under_a_parent_of_the_plan(state):
    table = plan.to_csv(state)
    first = state.units["code"][0]
    new = first[:-2] + "09"
    blocks = plan.border_blocks(state, first, plan.neighbours(state).iloc[0]["b"])[:1]
    table.loc[table["block_id"].isin(blocks), ["grid", "grid_name"]] = [new, "新建网格"]
    back = plan.read_csv(state, table)
    assert back.attrs["import"]["added"] == [new]
    assert back.units.set_index("code").loc[new, "name"] == "新建网格"


# --- files, stores and the command line -------------------------------------------------------------


def test_export_geopackage_is_read_by_gdal(edited, tmp_path):
    path = plan.export(edited, tmp_path / "plan.gpkg")
    info = subprocess.run(["ogrinfo", "-so", "-al", str(path)], capture_output=True, text=True, check=True).stdout
    assert "Layer name: grids" in info and "Layer name: blocks" in info
    assert f"Feature Count: {len(edited.to_grids())}" in info and f"Feature Count: {len(edited.blocks)}" in info
    back = gpd.read_file(path, layer="grids")
    assert back["code"].tolist() == edited.to_grids()["code"].tolist()
    geojson = plan.export(edited, tmp_path / "plan.geojson")
    assert len(gpd.read_file(geojson)) == len(edited.to_grids())


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request, tmp_path, sample):
    url = str(tmp_path / "plans.gpkg") if request.param == "gpkg" else request.getfixturevalue("postgis").new_database("plan")
    s = gstore.open(url, create=True)
    s.load({"grids": sample.grids, "roads": sample.roads, "addresses": sample.addresses}, author="网格办",
           progress=False)
    yield s
    s.close()


def test_a_plan_edited_saved_and_published_through_a_store(store, sample):
    created = store.create_plan("内坑镇网格调整", parent=VILLAGE, levels=["grid2"], author="张三")
    opened = plan.from_store(store, created.id)
    assert opened.editable == ("grid2",)
    draft = plan.suggest_division(opened)
    saved = plan.save(draft, store, author="张三")
    assert saved.attrs["store"]["revision"] > opened.attrs["store"]["revision"]
    in_store = store.plan(created.id).read().sort_values("code")
    assert in_store["code"].tolist() == draft.units["code"].tolist()
    assert shapely.equals(in_store.geometry.array, draft.units.geometry.array).all()
    # a second planner edits two grids meanwhile: the first one's edit of one of them is refused,
    # his edit of two others is saved alongside
    other = plan.from_store(store, created.id)
    pairs = plan.neighbours(other)
    first = pairs.iloc[0]
    second = pairs[~pairs["a"].isin(first[["a", "b"]]) & ~pairs["b"].isin(first[["a", "b"]])].iloc[0]
    plan.save(plan.reassign(other, plan.border_blocks(other, first["a"], first["b"])[:1], first["b"]), store,
              author="李四")
    with pytest.raises(gstore.StaleEditError, match="李四"):
        plan.save(plan.merge(saved, [first["a"], first["b"]]), store, author="张三")
    both = plan.save(plan.merge(saved, [second["a"], second["b"]]), store, author="张三")
    in_store = store.plan(created.id).read().set_index("code")
    assert second["b"] not in in_store.index and in_store.loc[first["b"], "author"] == "李四"
    assert in_store.loc[second["a"], "revision"] == both.attrs["store"]["revision"]
    store.plan(created.id).publish(author="张三")
    published = store.read("grid2", within=VILLAGE).sort_values("code")
    assert published["code"].tolist() == sorted(in_store.index)
    reopened = plan.start(store.read("grids", within=VILLAGE), VILLAGE, roads=sample.roads,
                          addresses=sample.addresses)
    assert plan.impact(reopened)["households"].sum() == plan.impact(draft)["households"].sum()


def test_cli_suggests_a_division_and_writes_the_plan(tmp_path):
    out = tmp_path / "draft.gpkg"
    res = subprocess.run([sys.executable, "-m", "gridgeo", "plan", "suggest", VILLAGE, "--output", str(out),
                          "--csv", str(tmp_path / "draft.csv")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "within" in res.stdout and out.exists()
    table = pd.read_csv(tmp_path / "draft.csv", dtype=str)
    assert table["grid"].str.startswith(VILLAGE).all()
    res = subprocess.run([sys.executable, "-m", "gridgeo", "plan", "suggest", "350582106999", "--output",
                          str(tmp_path / "x.gpkg")], capture_output=True, text=True)
    assert res.returncode != 0 and "350582106999" in res.stderr


def test_cli_imports_a_block_to_grid_csv_into_a_store_plan(tmp_path, sample, state):
    url = str(tmp_path / "cli.gpkg")
    with gstore.open(url, create=True) as s:
        s.load({"grids": sample.grids, "roads": sample.roads, "addresses": sample.addresses}, author="网格办",
               progress=False)
        plan_id = s.create_plan("导入", parent=VILLAGE, levels="grid2", author="张三").id
    draft = plan.suggest_division(state)
    plan.to_csv(draft, tmp_path / "draft.csv")
    res = subprocess.run([sys.executable, "-m", "gridgeo", "plan", "import", str(tmp_path / "draft.csv"),
                          "--store", url, "--plan", str(plan_id), "--author", "张三"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"plan {plan_id}: saved revision" in res.stdout
    with gstore.open(url) as s:
        units = s.plan(plan_id).read().sort_values("code")
    assert units["code"].tolist() == draft.units["code"].tolist()
    assert shapely.equals(units.geometry.array, draft.units.geometry.array).all()


@pytest.mark.parametrize("name", [".diff", ".exchange"])
def test_docstring_examples_run(name):
    module = importlib.import_module(f"gridgeo.plan{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0, module.__name__
