"""Stores: the same suite against a GeoPackage file and a real PostGIS server.

References are independent of the store: the sample frames themselves, shapely
predicates and pandas filters on them, GDAL reading the GeoPackage, SQLite's
own R-tree check.
"""

from __future__ import annotations

import doctest
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import gridgeo.crs
import gridgeo.store as gstore
from gridgeo.store import ConflictError, PublishError, StaleEditError
from store_fixture import sample_layers

KEYS = {"grids": "code", "stations": "station_id", "addresses": "addr_id", "events": "event_id",
        "roads": "road_id"}


def _busiest_village(store):
    grid2 = store.read("grid2", columns=["code"])
    return grid2["code"].str[:12].value_counts().index[0]


def _mergeable_pair(units, grids):
    """Two neighbouring units of one parent without children: merging them keeps the grids valid."""
    parents = set(grids["parent"])
    free = units[~units["code"].isin(parents)]
    for _, group in free.groupby("parent"):
        rows = list(group.itertuples())
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                if a.geometry.intersection(b.geometry).length > 0:
                    return a, b
    raise AssertionError("no two neighbouring childless units under one parent")


def _comparable(frame, key):
    out = frame.drop(columns=[c for c in ("revision", "author") if c in frame.columns])
    return out.sort_values([key]).reset_index(drop=True)


# --- reading and loading ------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KEYS))
def test_every_layer_round_trips_with_its_chinese_text(store, sample, kind):
    original = sample_layers(sample)[kind]
    key = KEYS[kind]
    got = store.read(kind)
    assert (got["revision"] == 1).all()
    if kind == "roads":  # every segment gets an id of its own: the road's, numbered (several make one road)
        assert got["segment_id"].is_unique and (got["segment_id"].str.rsplit("-", n=1).str[0] == got["road_id"]).all()
        got = got.drop(columns="segment_id")
    got = _comparable(got, key)
    expected = original.sort_values([key], kind="stable").reset_index(drop=True)
    if kind == "roads":  # one road is several segments: order them the same way
        got = got.sort_values([key, "name"], kind="stable")
        got = got.iloc[np.lexsort((shapely.get_x(shapely.centroid(got.geometry.array)), got[key]))]
        expected = expected.iloc[np.lexsort((shapely.get_x(shapely.centroid(expected.geometry.array)),
                                             expected[key]))]
        got, expected = got.reset_index(drop=True), expected.reset_index(drop=True)
    assert list(got.columns.drop("geometry")) == list(expected.columns.drop("geometry"))
    for column in expected.columns.drop("geometry"):
        left, right = got[column], expected[column]
        if pd.api.types.is_datetime64_any_dtype(right):
            assert (left.to_numpy("datetime64[s]") == right.to_numpy("datetime64[s]")).all() or \
                left.isna().equals(right.isna())
            pd.testing.assert_series_equal(left.astype("datetime64[s]"), right.astype("datetime64[s]"),
                                           check_names=False)
        else:
            assert left.astype(object).where(left.notna(), None).tolist() == \
                right.astype(object).where(right.notna(), None).tolist(), column
    assert got.crs.to_epsg() == 4490
    assert shapely.equals(got.geometry.array, expected.geometry.array).all()
    if kind in ("grids", "stations"):
        assert got["name"].str.contains(r"[\u4e00-\u9fff]").any()


def test_bbox_within_parent_where_and_paging_match_independent_filters(store, sample):
    box = (118.45, 24.76, 118.48, 24.79)
    addresses = sample.addresses
    expected = set(addresses["addr_id"][shapely.intersects(addresses.geometry.array, shapely.box(*box))])
    got = store.read("addresses", bbox=box)
    assert set(got["addr_id"]) == expected and len(got) == len(expected)
    assert store.count("addresses", bbox=box) == len(expected)
    grids = sample.grids
    edge = grids[grids["level"] == "grid2"].geometry.iloc[0].bounds  # a box touching polygons' edges
    hit = grids["code"][shapely.intersects(grids.geometry.array, shapely.box(*edge))]
    assert set(store.read("grids", bbox=edge)["code"]) == set(hit)

    village = _busiest_village(store)
    inside = grids[grids["code"].str.startswith(village)]
    assert sorted(store.read("grids", within=village)["code"]) == sorted(inside["code"])
    assert sorted(store.read("grid2", within=village)["code"]) == \
        sorted(inside.loc[inside["level"] == "grid2", "code"])
    children = grids[grids["parent"] == village]
    assert sorted(store.read("grids", parent=village)["code"]) == sorted(children["code"])
    stations = sample.stations
    assert sorted(store.read("stations", within=village)["station_id"]) == \
        sorted(stations.loc[stations["grid_code"].str.startswith(village), "station_id"])

    kinds = store.read("stations", where={"kind": ["park_station", "campus_station"]})
    assert sorted(kinds["station_id"]) == sorted(
        stations.loc[stations["kind"].isin(["park_station", "campus_station"]), "station_id"])
    assert store.count("grids", level="grid2", where={"workers": None}) == \
        int((grids["level"].eq("grid2") & grids["workers"].isna()).sum())

    pages = [store.read("events", limit=5000, offset=o)["event_id"] for o in range(0, 12000, 5000)]
    assert pd.concat(pages).tolist() == sorted(sample.events["event_id"])
    assert store.counts() == {"grids": 278, "town": 1, "village": 28, "grid1": 31, "grid2": 128, "grid3": 90,
                              "stations": 104, "addresses": 18000, "events": 12000, "roads": 5593,
                              "boundaries": 0, "roster": 0}
    with pytest.raises(gstore.NotFound, match="on 'colour': its columns are 'station_id'"):
        store.read("stations", where={"colour": "red"})


def test_typed_and_range_filters_and_refused_paging(store, sample):
    events = sample.events
    january = store.read("events", where={"reported_at": slice("2025-01-01", "2025-02-01"),
                                          "status": "closed"})
    expected = events[(events["reported_at"] >= "2025-01-01") & (events["reported_at"] < "2025-02-01")
                      & (events["status"] == "closed")]
    assert sorted(january["event_id"]) == sorted(expected["event_id"]) and len(expected) > 100
    grids = sample.grids
    workers = int(grids["workers"].dropna().iloc[0])
    assert store.count("grids", where={"workers": str(workers)}) == int((grids["workers"] == workers).sum())
    households = sample.addresses["households"]
    assert store.count("addresses", where={"households": slice(5, None)}) == int((households >= 5).sum())
    with pytest.raises(ValueError, match="cannot filter column 'workers' \\(integer\\) on 'many'"):
        store.read("grids", where={"workers": "many"})
    with pytest.raises(ValueError, match="limit must be a whole number"):
        store.read("events", limit=-1)
    with pytest.raises(ValueError, match="offset must be a whole number"):
        store.read("events", offset=2.5)
    with pytest.raises(ValueError, match="minx <= maxx"):
        store.count("events", bbox=(118.6, 24.7, 118.5, 24.8))


def test_history_reads_give_the_data_as_it_was(store, sample):
    stations = sample.stations
    first = store.read("stations")
    before = pd.Timestamp.now(tz="UTC")
    moved = stations.iloc[:30].copy()
    moved["name"] = moved["name"] + "（迁址）"
    moved["geometry"] = moved.geometry.translate(0.001, 0)
    revision = store.load({"stations": moved}, author="李四", progress=False)
    assert revision == 2 and store.version == 2 and store.layer_version("grids") == 1

    assert len(store.read("stations")) == 30
    old = store.read("stations", at=1)
    pd.testing.assert_frame_equal(old.drop(columns="geometry"), first.drop(columns="geometry"))
    assert shapely.equals(old.geometry.array, first.geometry.array).all()
    assert len(store.read("stations", at=before)) == 104
    assert store.count("stations", at=1, within=stations["grid_code"].iloc[0][:12]) == \
        int(stations["grid_code"].str.startswith(stations["grid_code"].iloc[0][:12]).sum())

    code = moved["station_id"].iloc[0]
    versions = store.history("stations", code=code)
    assert versions["revision"].tolist() == [1, 2]
    assert versions["author"].tolist() == ["网格办", "李四"]
    assert versions["retired"].tolist()[0] == 2 and pd.isna(versions["retired"].tolist()[1])
    assert versions["name"].tolist() == [stations["name"].iloc[0], moved["name"].iloc[0]]
    log = store.revisions()
    assert log["author"].tolist() == ["网格办", "李四"] and log["layers"].tolist()[1] == "stations"


def _boxes_for(frame):
    """Boxes inside, across, around and beside a layer's data, and boxes whose edges pass
    through a feature or miss it by less than a float32 R-tree box can tell."""
    minx, miny, maxx, maxy = frame.total_bounds
    midx, midy = (minx + maxx) / 2, (miny + maxy) / 2
    w, h = maxx - minx, maxy - miny
    x0, y0, x1, y1 = frame.geometry.iloc[len(frame) // 2].bounds
    tiny = 1e-9  # far below float32's 8e-6 at longitude 118
    return {
        "inside": (midx - w / 10, midy - h / 10, midx + w / 10, midy + h / 10),
        "across the west half": (minx - 0.01, miny - 0.01, midx, maxy + 0.01),
        "around everything": (minx - 1, miny - 1, maxx + 1, maxy + 1),
        "exactly the data's bounds": (minx, miny, maxx, maxy),
        "beside the data": (maxx + 0.01, miny, maxx + 0.02, maxy),
        "a corner on a feature's corner": (x1, y1, x1 + w / 20, y1 + h / 20),
        "just past a feature's corner": (x1 + tiny, y1 + tiny, x1 + w / 20, y1 + h / 20),
        "just short of a feature": (x0 - w / 20, y0 - h / 20, x0 - tiny, y0 - tiny),
        "a line through a feature": (x0, y0 - h / 20, x0, y1 + h / 20),
    }


@pytest.mark.parametrize("layer", ["addresses", "grid2", "roads"])
def test_bbox_counts_and_pages_are_exact_against_shapely(store, layer):
    """numberMatched is a promise: with a bbox, count and read agree with shapely's
    ``intersects`` on the same layer, for boxes inside, across and around the data and
    at a feature's very edge (where the GeoPackage's R-tree alone cannot tell)."""
    key = {"addresses": "addr_id", "grid2": "code", "roads": "segment_id"}[layer]
    frame = store.read(layer, columns=[key])
    for name, box in _boxes_for(frame).items():
        hit = sorted(frame[key][shapely.intersects(frame.geometry.array, shapely.box(*box))])
        assert store.count(layer, bbox=box) == len(hit), name
        assert store.read(layer, bbox=box, columns=[key])[key].tolist() == hit, name
        assert store.read(layer, bbox=box, columns=[key], limit=3, offset=1)[key].tolist() == hit[1:4], name
        assert store.count(layer, bbox=box, where={"revision": 1}) == len(hit), name
        assert store.count(layer, bbox=box, where={"revision": 2}) == 0, name
        assert store.count(layer, bbox=box, at=1) == len(hit), name


def test_a_box_around_a_geopackage_layer_leaves_out_rows_without_a_geometry(loaded_gpkg, tmp_path):
    path = tmp_path / "store.gpkg"
    shutil.copy(loaded_gpkg, path)
    everything = (100, 0, 140, 60)
    with gstore.open(path) as store:
        before = store.count("addresses", bbox=everything)
        gone = store.read("addresses", columns=["addr_id"], limit=2)["addr_id"].tolist()
        store._db.query("UPDATE addresses SET geom = NULL WHERE addr_id = ?", (gone[0],))
        store._db.query("UPDATE addresses SET geom = ? WHERE addr_id = ?",
                        (store._db.encode([shapely.Point()])[0], gone[1]))  # an empty point
        assert store.count("addresses") == before
        assert store.count("addresses", bbox=everything) == before - 2
        got = store.read("addresses", bbox=everything, columns=["addr_id"])["addr_id"]
        assert len(got) == before - 2 and not set(gone) & set(got)


def test_bbox_and_code_queries_use_the_indexes(store, backend):
    village = _busiest_village(store)
    box = (118.45, 24.76, 118.48, 24.79)
    by_box = store._select("addresses", ["addr_id", "revision"], [], [], revision=None, bbox=box,
                           limit=None, offset=0)
    conds, params = store._conditions("grids", store.columns("grids"), where=None, parent=None,
                                      within=village, levels=None)
    by_code = store._select("grids", ["code", "revision"], conds, params, revision=None, bbox=None,
                            limit=None, offset=0)
    plans = []
    for sql, params in (by_box, by_code):
        if backend == "gpkg":
            rows = store._db.query("EXPLAIN QUERY PLAN " + sql, params)
        else:
            with store._db.write() as tx:  # the tables are small: make the planner show what it can use
                tx.execute("SET LOCAL enable_seqscan = off")
                rows = tx.query("EXPLAIN " + sql, params)
        plans.append(" ".join(str(r[-1]) for r in rows))
    spatial = "rtree_addresses_geom VIRTUAL TABLE INDEX" if backend == "gpkg" else "addresses_geom_gist"
    assert spatial in plans[0], plans[0]
    assert "grids_code" in plans[1], plans[1]


def test_append_refuses_a_published_key(store, sample):
    with pytest.raises(gstore.StoreError, match=sample.stations["station_id"].iloc[0]):
        store.load({"stations": sample.stations.iloc[:3]}, author="李四", mode="append", progress=False)
    assert store.version == 1


# --- plans --------------------------------------------------------------------------


def test_publish_replaces_the_units_and_keeps_history(store, sample):
    village = _busiest_village(store)
    plan = store.create_plan("合并网格", parent=village, levels=["grid2"], author="张三")
    units = plan.read()
    assert sorted(units["code"]) == sorted(store.read("grid2", within=village)["code"])
    a, b = _mergeable_pair(units, sample.grids)
    merged = units[units["code"] == a.code].copy()
    merged["geometry"] = [shapely.union(a.geometry, b.geometry)]
    merged["name"] = "合并后的网格"
    plan.save(merged, author="张三", remove={b.code: int(b.revision)})
    assert plan.changes()["change"].tolist() == ["changed", "removed"]
    before = store.read("grids")
    version = plan.publish(author="张三")

    assert store.version == version and plan.status == "published"
    after = store.read("grids")
    assert set(before["code"]) - set(after["code"]) == {b.code}
    row = after[after["code"] == a.code].iloc[0]
    assert row["name"] == "合并后的网格" and row["revision"] == version
    assert row.geometry.equals(shapely.union(a.geometry, b.geometry))
    untouched = after[~after["code"].isin([a.code, b.code])]
    assert (untouched["revision"] == 1).all()
    as_was = store.read("grids", at=version - 1)
    pd.testing.assert_frame_equal(as_was.drop(columns="geometry"), before.drop(columns="geometry"))
    assert store.history("grids", code=b.code)["retired"].tolist() == [version]
    assert plan.history()["action"].tolist() == ["create", "save", "publish"]
    with pytest.raises(gstore.PlanStateError, match="published"):
        plan.save(merged, author="张三", base_revision=version)


def _state(store) -> tuple:
    """Everything a refused or empty step must leave as it was: the revision counter, the log
    of revisions and every plan's row, log and units."""
    plans = store.plans()
    logs = {int(p): store.plan(int(p)).history().drop(columns="at").values.tolist() for p in plans["plan_id"]}
    units = {int(p): store.plan(int(p)).read().drop(columns="geometry").values.tolist() for p in plans["plan_id"]}
    return (store.revision, store.version, store.revisions().drop(columns="at").values.tolist(),
            plans.drop(columns=["created_at", "updated_at"]).values.tolist(), logs, units)


def test_a_save_that_changes_nothing_writes_nothing(store):
    village = _busiest_village(store)
    plan = store.create_plan("原样保存", parent=village, levels="grid2", author="张三")
    units = plan.read()
    before = _state(store)
    assert plan.save(units, author="李四") == plan.revision
    assert plan.save(None, author="李四") == plan.revision
    assert _state(store) == before
    # of three units sent, only the one renamed is written
    revision = plan.save(units.iloc[:3].assign(name=["东区网格", *units["name"].iloc[1:3]]), author="李四")
    assert revision == store.revision and revision > before[0]
    after = plan.read().set_index("code")
    assert after.loc[units["code"].iloc[0], ["name", "revision", "author"]].tolist() == ["东区网格", revision, "李四"]
    assert (after.drop(index=units["code"].iloc[0])["revision"] < revision).all()
    assert plan.history()["codes"].iloc[-1] == units["code"].iloc[0]


def test_review_steps_are_logged_with_who_and_the_comment_and_only_a_draft_is_saved(store):
    village = _busiest_village(store)
    plan = store.create_plan("送审", parent=village, levels="grid2", author="张三")
    unit = plan.read().iloc[:1]
    plan.save(unit.assign(name="改名网格"), author="张三")
    plan.submit(author="张三", message="请审核")
    assert plan.status == "submitted"
    before = _state(store)
    with pytest.raises(gstore.PlanStateError, match="withdraw"):
        plan.save(unit.assign(name="再改", revision=plan.revision), author="张三")
    with pytest.raises(gstore.PlanStateError):
        plan.rebase(author="张三")
    with pytest.raises(gstore.PlanStateError, match="submitted"):
        plan.submit(author="张三")
    with pytest.raises(ValueError, match="comment"):
        plan.send_back(author="王审核", comment="  ")
    assert plan.edited_revision == plan.revision - 1  # the save; submitting changed no unit
    with pytest.raises(gstore.PlanStateError, match="changed since"):
        plan.approve(author="王审核", revision=plan.edited_revision - 1)
    assert _state(store) == before
    plan.send_back(author="王审核", comment="北边两个网格户数不足，请合并")
    assert plan.status == "draft"
    with pytest.raises(gstore.PlanStateError, match="draft"):
        plan.approve(author="王审核")
    plan.submit(author="张三")
    plan.withdraw(author="张三", message="再调整一下")
    plan.save(unit.assign(name="再改", revision=plan.revision), author="张三")
    plan.submit(author="张三")
    edited = plan.edited_revision
    approved = plan.approve(author="王审核", report="0123abcd", revision=edited)
    assert plan.status == "approved" and plan.revision == approved and plan.edited_revision == edited
    version = plan.publish(author="王审核", report="0123abcd", revision=edited)
    assert plan.status == "published" and store.version == version
    log = plan.history()
    assert log[["action", "author"]].values.tolist() == [
        ["create", "张三"], ["save", "张三"], ["submit", "张三"], ["return", "王审核"], ["submit", "张三"],
        ["withdraw", "张三"], ["save", "张三"], ["submit", "张三"], ["approve", "王审核"], ["publish", "王审核"]]
    assert log["message"].iloc[3] == "北边两个网格户数不足，请合并" and log["message"].iloc[2] == "请审核"
    assert "report 0123abcd acknowledged" in log["message"].iloc[-2]
    assert "report 0123abcd acknowledged" in log["message"].iloc[-1]
    assert log["at"].is_monotonic_increasing and log["revision"].is_monotonic_increasing
    actions = store.revisions().set_index("revision")["action"]
    assert [actions[r] for r in log["revision"]] == [
        "create-plan", "save-plan", "submit-plan", "return-plan", "submit-plan", "withdraw-plan", "save-plan",
        "submit-plan", "approve-plan", "publish"]
    assert store.read("grids", where={"code": unit["code"].iloc[0]})["name"].tolist() == ["再改"]
    assert store.plans(status="published")["plan_id"].tolist() == [plan.id]


def test_a_publish_that_fails_validation_changes_nothing(store):
    village = _busiest_village(store)
    plan = store.create_plan("越界", parent=village, levels="grid2", author="张三")
    unit = plan.read().iloc[:1].copy()
    metric = gridgeo.crs.metric_crs(unit)
    unit["geometry"] = unit.geometry.to_crs(metric).buffer(300).to_crs(unit.crs)  # over its neighbours
    plan.save(unit, author="张三")
    before, version = store.read("grids"), store.version
    with pytest.raises(PublishError) as caught:
        plan.publish(author="张三")
    kinds = set(caught.value.report.query("severity == 'error'")["kind"])
    assert "overlap" in kinds and unit["code"].iloc[0] in str(caught.value)
    assert store.version == version and plan.status == "draft"
    after = store.read("grids")
    pd.testing.assert_frame_equal(after.drop(columns="geometry"), before.drop(columns="geometry"))
    assert shapely.equals(after.geometry.array, before.geometry.array).all()


def test_a_stale_edit_is_refused_naming_the_unit_and_who_changed_it(store):
    village = _busiest_village(store)
    plan = store.create_plan("调整", parent=village, levels="grid2", author="张三")
    seen_by_li = plan.read()
    seen_by_wang = plan.read()
    plan.save(seen_by_li.iloc[[0]].assign(name="李四改的名字"), author="李四")
    with pytest.raises(StaleEditError) as caught:
        plan.save(seen_by_wang.iloc[[0]].assign(name="王五改的名字"), author="王五")
    message = str(caught.value)
    assert seen_by_wang["code"].iloc[0] in message and "李四" in message
    assert caught.value.conflicts[0]["author"] == "李四"
    # a different unit, based on the same old read, is nobody else's work: it is saved
    plan.save(seen_by_wang.iloc[[1]].assign(name="王五改的名字"), author="王五")
    now = plan.read().set_index("code")
    assert now.loc[seen_by_li["code"].iloc[0], "name"] == "李四改的名字"
    assert now.loc[seen_by_wang["code"].iloc[1], "name"] == "王五改的名字"
    # an edit that states no revision for an existing unit is refused too (one that changes
    # nothing in it writes nothing: there is nobody's work to lose)
    with pytest.raises(StaleEditError, match="say which revision"):
        plan.save(seen_by_li.drop(columns="revision").iloc[[2]].assign(name="王五又改"), author="王五")
    unchanged = plan.revision
    assert plan.save(seen_by_li.drop(columns="revision").iloc[[2]], author="王五") == unchanged == plan.revision
    plan.save(remove=[seen_by_li["code"].iloc[3]], author="李四", base_revision=plan.revision)
    with pytest.raises(StaleEditError, match="removed by 李四"):
        plan.save(seen_by_wang.iloc[[3]], author="王五")


def test_the_second_plan_of_a_parent_is_refused_until_rebased(store, sample):
    village = _busiest_village(store)
    first = store.create_plan("甲", parent=village, levels="grid2", author="张三")
    second = store.create_plan("乙", parent=village, levels="grid2", author="李四")
    units = first.read()
    first.save(units.iloc[[0]].assign(name="甲改"), author="张三")
    second.save(second.read().iloc[[1]].assign(name="乙改"), author="李四")
    published = first.publish(author="张三")
    with pytest.raises(ConflictError, match="rebase"):
        second.publish(author="李四")
    assert store.version == published
    second.rebase(author="李四")  # different units: nothing to resolve
    rebased = second.read().set_index("code")
    assert rebased.loc[units["code"].iloc[0], "name"] == "甲改"
    second.publish(author="李四")
    names = store.read("grid2", within=village).set_index("code")["name"]
    assert names[units["code"].iloc[0]] == "甲改" and names[units["code"].iloc[1]] == "乙改"

    third = store.create_plan("丙", parent=village, levels="grid2", author="王五")
    fourth = store.create_plan("丁", parent=village, levels="grid2", author="赵六")
    code = units["code"].iloc[2]
    third.save(third.read().set_index("code").loc[[code]].reset_index().assign(name="丙改"), author="王五")
    fourth.save(fourth.read().set_index("code").loc[[code]].reset_index().assign(name="丁改"), author="赵六")
    third.publish(author="王五")
    with pytest.raises(ConflictError, match=code):
        fourth.rebase(author="赵六")
    fourth.rebase(author="赵六", prefer="plan")
    fourth.publish(author="赵六")
    assert store.read("grids", where={"code": code})["name"].iloc[0] == "丁改"


def test_a_rebase_takes_in_units_other_plans_removed_and_added(store, sample):
    village = _busiest_village(store)
    original = store.read("grid2", within=village)
    a, b = _mergeable_pair(original, sample.grids)
    others = original[~original["code"].isin([a.code, b.code])]["code"].tolist()

    merger = store.create_plan("合并", parent=village, levels="grid2", author="张三")
    bystander = store.create_plan("改名甲", parent=village, levels="grid2", author="李四")
    merged = merger.read().set_index("code").loc[[a.code]].reset_index()
    merger.save(merged.assign(geometry=[shapely.union(a.geometry, b.geometry)]), author="张三",
                remove=[b.code], base_revision=merger.revision)
    bystander.save(bystander.read().set_index("code").loc[[others[0]]].reset_index().assign(name="改名一"),
                   author="李四")
    merger.publish(author="张三")
    with pytest.raises(ConflictError):
        bystander.publish(author="李四")
    bystander.rebase(author="李四")
    units = bystander.read().set_index("code")
    assert b.code not in units.index and units.loc[a.code].geometry.equals(shapely.union(a.geometry, b.geometry))
    bystander.publish(author="李四")

    restorer = store.create_plan("复原", parent=village, levels="grid2", author="王五")
    late = store.create_plan("改名乙", parent=village, levels="grid2", author="赵六")
    back = original.set_index("code").loc[[a.code, b.code]].reset_index().drop(columns="revision")
    back["revision"] = [restorer.read().set_index("code").loc[a.code, "revision"], None]
    restorer.save(back, author="王五")
    assert restorer.changes().set_index("code")["change"].to_dict() == {a.code: "changed", b.code: "added"}
    late.save(late.read().set_index("code").loc[[others[1]]].reset_index().assign(name="改名二"), author="赵六")
    restorer.publish(author="王五")
    late.rebase(author="赵六")
    units = late.read().set_index("code")
    assert units.loc[b.code].geometry.equals(b.geometry) and units.loc[a.code].geometry.equals(a.geometry)
    late.publish(author="赵六")

    final = store.read("grid2", within=village).set_index("code")
    assert sorted(final.index) == sorted(original["code"])
    assert final.loc[others[0], "name"] == "改名一" and final.loc[others[1], "name"] == "改名二"
    assert final.loc[b.code].geometry.equals(b.geometry)


def test_concurrent_writers_do_not_lose_an_edit(url):
    with gstore.open(url) as setup:
        village = _busiest_village(setup)
        plan_id = setup.create_plan("并发", parent=village, levels="grid2", author="张三").id
        units = setup.plan(plan_id).read()
    writers = 6
    barrier = threading.Barrier(writers)
    outcome = {}

    def edit(i):
        with gstore.open(url) as mine:
            plan = mine.plan(plan_id)
            # writers 0..3 edit units of their own; 4 and 5 both edit unit 0's neighbour, 4
            row = units.iloc[[i if i < 4 else 4]].assign(name=f"编辑{i}")
            barrier.wait()
            try:
                plan.save(row, author=f"writer{i}")
                outcome[i] = "saved"
            except StaleEditError as exc:
                outcome[i] = exc

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(outcome[i] == "saved" for i in range(4))
    contested = [outcome[4], outcome[5]]
    assert contested.count("saved") == 1
    loser = next(o for o in contested if o != "saved")
    with gstore.open(url) as check:
        names = check.plan(plan_id).read().set_index("code")["name"]
    for i in range(4):
        assert names[units["code"].iloc[i]] == f"编辑{i}"
    winner = 4 if outcome[4] == "saved" else 5
    assert names[units["code"].iloc[4]] == f"编辑{winner}"
    assert f"writer{winner}" in str(loser) and units["code"].iloc[4] in str(loser)


# --- crashes ------------------------------------------------------------------------

_PAUSE = """
import sys, time
from gridgeo.store._store import Store
_changed = Store.record_change
def _pause(*args, **kwargs):
    _changed(*args, **kwargs)        # the rows are written, the transaction is open
    print("PAUSED", flush=True)
    time.sleep(600)
Store.record_change = staticmethod(_pause)
import gridgeo.crs
import gridgeo.store as gstore
store = gstore.open(sys.argv[1])
"""


def _kill_when_paused(script, *args):
    child = subprocess.Popen([sys.executable, "-c", _PAUSE + textwrap.dedent(script), *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.strip() == "PAUSED", child.stderr.read()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL


def test_a_process_killed_in_the_middle_of_a_publish_leaves_the_store_unchanged(url, store):
    village = _busiest_village(store)
    plan = store.create_plan("崩溃", parent=village, levels="grid2", author="张三")
    plan.save(plan.read().iloc[:3].assign(name="不应发布"), author="张三")
    before, version = store.read("grids"), store.version
    store.close()

    _kill_when_paused(f"store.plan({plan.id}).publish(author='张三')", url)

    with gstore.open(url) as after:
        assert after.version == version and after.plan(plan.id).status == "draft"
        grids = after.read("grids")
        pd.testing.assert_frame_equal(grids.drop(columns="geometry"), before.drop(columns="geometry"))
        after.plan(plan.id).publish(author="张三")  # and it still works
        assert after.read("grids", where={"code": list(plan.read()["code"][:3])})["name"].eq("不应发布").all()


def test_a_process_killed_in_the_middle_of_a_bulk_load_leaves_the_store_unchanged(url, store, tmp_path):
    more = store.read("addresses").drop(columns="revision")
    more["addr_id"] = "X" + more["addr_id"]
    more["address"] = more["address"] + "（新）"
    source = tmp_path / "addresses.parquet"
    more.to_parquet(source)
    before, version = store.read("addresses", columns=["addr_id"]), store.version
    store.close()

    _kill_when_paused("""
        import geopandas
        store.load({"addresses": geopandas.read_parquet(sys.argv[2])}, author="李四", progress=False)
    """, url, str(source))

    with gstore.open(url) as after:
        assert after.version == version and after.count("addresses") == len(before)
        assert after.read("addresses", columns=["addr_id"])["addr_id"].tolist() == before["addr_id"].tolist()
        assert after.count("addresses", bbox=(118.3, 24.6, 118.6, 24.9)) == len(before)
        assert after.load({"addresses": more}, author="李四", progress=False) == version + 1


# --- the store itself ---------------------------------------------------------------


def test_bulk_load_of_the_sample_into_an_empty_store(empty_url, sample):
    with gstore.open(empty_url, create=True) as store:
        assert store.version == 0 and store.counts()["addresses"] == 0
        big = pd.concat([sample.addresses.assign(addr_id=sample.addresses["addr_id"] + f"-{i}")
                         for i in range(3)], ignore_index=True)
        big = gpd.GeoDataFrame(big, crs=sample.addresses.crs)
        store.load({"addresses": big}, author="李四", progress=False)
        assert store.count("addresses") == 54_000
        box = (118.44, 24.77, 118.47, 24.80)
        expected = int(shapely.intersects(big.geometry.array, shapely.box(*box)).sum())
        assert store.count("addresses", bbox=box) == expected
        assert store.extent("addresses") == pytest.approx(tuple(big.total_bounds), abs=1e-5)


def test_the_geopackage_is_a_geopackage_for_gdal_and_qgis(sample, loaded_gpkg, tmp_path):
    import sqlite3

    import pyogrio

    layers = dict(pyogrio.list_layers(loaded_gpkg))
    for level in ("town", "village", "grid1", "grid2", "grid3"):
        assert layers[level] == "MultiPolygon"
        assert pyogrio.read_info(loaded_gpkg, layer=level)["features"] == int((sample.grids["level"] == level).sum())
    box = (118.45, 24.76, 118.48, 24.79)
    via_gdal = pyogrio.read_dataframe(loaded_gpkg, layer="addresses", bbox=box)
    exact = via_gdal[shapely.intersects(via_gdal.geometry.array, shapely.box(*box))]
    with gstore.open(loaded_gpkg) as store:
        assert sorted(exact["addr_id"]) == sorted(store.read("addresses", bbox=box)["addr_id"])
    events = pyogrio.read_dataframe(loaded_gpkg, layer="events")
    assert (events.sort_values("event_id")["reported_at"].to_numpy("datetime64[s]")
            == sample.events.sort_values("event_id")["reported_at"].to_numpy("datetime64[s]")).all()
    conn = sqlite3.connect(loaded_gpkg)
    for table in ("grids", "stations", "addresses", "events", "roads", "grids_history", "plan_units"):
        assert conn.execute(f"SELECT rtreecheck('rtree_{table}_geom')").fetchone() == ("ok",)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    if shutil.which("ogrinfo"):  # GDAL's own command line, another build of GDAL
        out = subprocess.run(["ogrinfo", "-ro", "-so", str(loaded_gpkg), "grid2"], capture_output=True,
                             text=True, check=True).stdout
        assert "Feature Count: 128" in out


def test_schema_version_and_migrations(url, backend, monkeypatch):
    from gridgeo.store import _store

    with gstore.open(url) as store:
        assert store.schema_version == gstore.SCHEMA_VERSION
        with store._db.write() as tx:
            tx.execute("UPDATE gridgeo_meta SET value = ? WHERE key = 'schema_version'",
                       (str(gstore.SCHEMA_VERSION + 1),))
    with pytest.raises(gstore.SchemaVersionError, match="upgrade gridgeo"):
        gstore.open(url)

    def add_column(store, tx):
        store._db.add_column(tx, "stations", "opened", "date")

    monkeypatch.setattr(_store, "SCHEMA_VERSION", gstore.SCHEMA_VERSION + 1)
    monkeypatch.setitem(_store.MIGRATIONS, gstore.SCHEMA_VERSION + 1, add_column)
    with gstore.open(url) as store:  # the store says it is already at the new version: nothing to run
        assert "opened" not in store.columns("stations")
        with store._db.write() as tx:
            tx.execute("UPDATE gridgeo_meta SET value = ? WHERE key = 'schema_version'",
                       (str(gstore.SCHEMA_VERSION),))
    with gstore.open(url) as store:  # an older store is brought up to date when opened
        assert store.schema_version == gstore.SCHEMA_VERSION + 1
        assert store.columns("stations")["opened"] == "date"


def test_opening_what_is_not_a_store_says_what_to_do(tmp_path, sample):
    with pytest.raises(gstore.NotAStoreError, match="create=True"):
        gstore.open(tmp_path / "missing.gpkg")
    other = tmp_path / "other.gpkg"
    sample.stations.to_file(other, driver="GPKG", engine="pyogrio")
    with pytest.raises(gstore.NotAStoreError, match="not a gridgeo store"):
        gstore.open(other)
    with pytest.raises(gstore.NotAStoreError, match=".gpkg file or a postgresql"):
        gstore.open(tmp_path / "grids.geojson")


def test_cli_loads_a_sample_or_files_and_respects_if_missing(empty_url, backend, tmp_path, sample):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "gridgeo", "load", *args, "--store", empty_url,
                               "--no-progress", "--author", "测试"], capture_output=True, text=True)

    res = run("sample_geojson")
    assert res.returncode == 0, res.stderr
    assert "loaded sample_geojson" in res.stdout
    res = run("sample_geojson", "--if-missing")
    assert res.returncode == 0 and "nothing to do" in res.stdout
    res = run("sample_geojson/grid2.geojson", "sample_geojson/stations.geojson")
    assert res.returncode == 0, res.stderr
    assert "nothing changed" in res.stdout  # the same files again: no new version for services to redo
    with gstore.open(empty_url) as store:
        assert store.version == store.revision == 1
    grid2 = gstore.open(empty_url).read("grid2").drop(columns=["revision", "author"], errors="ignore")
    grid2["name"] = grid2["name"] + "（新）"
    changed = tmp_path / "grid2.geojson"
    grid2.to_file(changed, driver="GeoJSON", engine="pyogrio")
    res = run(str(changed), "sample_geojson/stations.geojson")
    assert res.returncode == 0, res.stderr
    with gstore.open(empty_url) as store:
        # a file of one level replaces that level only: the other levels stay as they were
        counts = store.counts()
        assert store.version == 2 and counts["grid2"] == 128
        assert (counts["town"], counts["village"], counts["grid1"], counts["grid3"]) == (1, 28, 31, 90)
        assert store.count("grid2", where={"revision": 2}) == 128 and store.count("grid1", where={"revision": 1}) == 31
        assert store.revisions()["author"].tolist() == ["测试", "测试"]
        assert store.revisions().iloc[-1]["layers"] == "grids"  # the stations were the same
    res = run("sample_geojson/metadata.json")
    assert res.returncode == 1 and "metadata.json cannot be read as a layer" in res.stdout
    assert "nothing was loaded" in res.stderr
    log = subprocess.run([sys.executable, "-m", "gridgeo", "revisions", "--store", empty_url],
                         capture_output=True, text=True, check=True).stdout
    assert "测试" in log and "published data at revision 2" in log


def test_docstring_examples_run():
    import gridgeo.store._store
    import gridgeo.store.plans

    for module in (gstore, gridgeo.store._store, gridgeo.store.plans):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__


def _derived_rows(store, names):
    """``(version, name, holds its bytes, source)`` of the derived rows of ``names``, as the table has them."""
    marks = ", ".join("?" * len(names))
    rows = store._db.query(f"SELECT version, name, data IS NOT NULL, source FROM gridgeo_derived WHERE name IN "
                           f"({marks}) ORDER BY version, name", list(names))
    return [(int(v), n, bool(held), None if s is None else int(s)) for v, n, held, s in rows]


def test_derived_items_kept_unchanged_by_a_newer_version_are_held_once(url):
    """copy_derived keeps an item for a newer version by reference to the row holding its bytes (never to
    another reference); replacing that row first gives its bytes to the newest version referring to it;
    dropping older versions keeps it while a kept version refers to it. Every version reads what was
    written for it, byte for byte, whatever happens to the others."""
    one, bee = os.urandom(5000), os.urandom(300)
    with gstore.open(url) as store:
        store.put_derived(1, {"a": one, "b": bee}, complete=True)
        store.copy_derived(1, 2, ["a", "b"])
        store.copy_derived(2, 3, ["a"])  # a copy of a copy refers to the row holding the bytes
        assert _derived_rows(store, ["a", "b"]) == [(1, "a", True, None), (1, "b", True, None),
                                                    (2, "a", False, 1), (2, "b", False, 1), (3, "a", False, 1)]
        assert [store.get_derived(v, "a") for v in (1, 2, 3)] == [one, one, one]
        assert store.get_derived(2, "b") == bee and store.get_derived(3, "b") is None
        assert store.derived_names(2) == ["a", "b"]

        store.put_derived(1, {"a": b"new"})  # version 1's item replaced: 2 and 3 keep what they kept
        assert [store.get_derived(v, "a") for v in (1, 2, 3)] == [b"new", one, one]
        assert _derived_rows(store, ["a"]) == [(1, "a", True, None), (2, "a", False, 3), (3, "a", True, None)]

        store.drop_derived(before=2)  # version 1 goes; its "b" stays, outside any version, for version 2
        assert store.derived_versions() == [] and store.get_derived(1, "a") is None
        assert store.get_derived(2, "b") == bee and [store.get_derived(v, "a") for v in (2, 3)] == [one, one]
        store.drop_derived(before=3)  # version 2 goes, and with it the last reference to version 1's "b"
        assert _derived_rows(store, ["a", "b"]) == [(3, "a", True, None)] and store.get_derived(3, "a") == one
        store.drop_derived(before=4)
        assert _derived_rows(store, ["a", "b"]) == []


def test_a_store_of_schema_version_4_gains_derived_data_by_reference(url):
    with gstore.open(url) as store:
        store.put_derived(1, {"a": b"kept"}, complete=True)
        with store._db.write() as tx:  # as gridgeo wrote it before references: no source column
            tx.execute("CREATE TABLE derived_copy AS SELECT version, name, data, at FROM gridgeo_derived")
            tx.execute("DROP TABLE gridgeo_derived")
            tx.execute("ALTER TABLE derived_copy RENAME TO gridgeo_derived")
            tx.execute("UPDATE gridgeo_meta SET value = '4' WHERE key = 'schema_version'")
        assert "source" not in store._db.table_columns("gridgeo_derived")
    with gstore.open(url) as store:
        assert store.schema_version == gstore.SCHEMA_VERSION == 5
        assert store.get_derived(1, "a") == b"kept" and store.derived_versions() == [1]
        store.copy_derived(1, 2, ["a"])
        assert _derived_rows(store, ["a"]) == [(1, "a", True, None), (2, "a", False, 1)]
