"""Rollback on both stores: the published data of an earlier revision again, as one new revision.

References are independent of the rollback: the sample frames as they were
loaded, the store's own history reads (``read(at=...)``), and the sets of
units the test itself changed. A refused rollback is checked byte for byte
(the GeoPackage file) or row for row (every PostGIS table).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

import gridgeo.store as gstore
from gridgeo.store import ConflictError, RollbackError

VILLAGE = "350582106004"           # two level-1 grids, each with level-2 grids and no level-3 plots
X, Y = "35058210600401", "35058210600402"
OTHER_VILLAGE = "350582106201"     # 前垵村: a plan there is not touched by a rollback of VILLAGE
NEW_CODE = X + "07"                # the level-2 grid moved from Y to X gets a code under X


# --- a history to roll back ---------------------------------------------------------------------


def move_grid(store, author="张三"):
    """Publish a plan that moves a level-2 grid of Y (one touching X) into X, with a code under X.

    Returns (the moved grid's old code, the revision published)."""
    plan = store.create_plan("调整一级网格", parent=VILLAGE, levels=["grid1", "grid2"], author=author)
    units = plan.read().set_index("code", drop=False)
    x = units.loc[X]
    moved = next(c for c in units.index if units.loc[c, "parent"] == Y
                 and units.loc[c].geometry.intersection(x.geometry).length > 0)
    x_kids = units[units["parent"] == X]
    y_kids = units[(units["parent"] == Y) & (units["code"] != moved)]
    new_x = units.loc[[X]].assign(geometry=[shapely.union_all([*x_kids.geometry, units.loc[moved].geometry])])
    new_y = units.loc[[Y]].assign(geometry=[shapely.union_all(list(y_kids.geometry))])
    new_unit = units.loc[[moved]].assign(code=NEW_CODE, parent=X, name="调入网格")
    edits = pd.concat([new_x, new_y, new_unit]).reset_index(drop=True)
    edits["revision"] = [plan.revision, plan.revision, None]
    plan.save(edits, author=author, remove={moved: plan.revision})
    return moved, plan.publish(author=author)


def rename(store, village, name, author="李四"):
    """Publish a plan renaming the first level-2 grid of a village; (its code, the revision)."""
    plan = store.create_plan("改名", parent=village, levels="grid2", author=author)
    unit = plan.read().iloc[[0]]
    plan.save(unit.assign(name=name), author=author)
    return unit["code"].iloc[0], plan.publish(author=author)


def move_stations(store, sample, author="王五"):
    """Load 30 stations renamed and moved 100 m east in place of all 104; the revision."""
    moved = sample.stations.iloc[:30].copy()
    moved["name"] = moved["name"] + "（迁址）"
    moved["geometry"] = moved.geometry.translate(0.001, 0)
    return store.load({"stations": moved}, author=author, progress=False)


def comparable(frame, key):
    out = pd.DataFrame(frame.drop(columns=[c for c in ("revision", "author", "geometry") if c in frame.columns]))
    for col in out.columns:  # the store keeps times to the microsecond, a sample file may say seconds
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].astype("datetime64[us]")
    return out.sort_values(key).reset_index(drop=True)


def geometries(frame, key):
    return frame.set_index(key).geometry


def assert_same_rows(a, b, key):
    """The same rows, value for value (a sample file's integers may be narrower than the store's) and
    geometry for geometry, coordinate for coordinate."""
    pd.testing.assert_frame_equal(comparable(a, key), comparable(b, key), check_dtype=False)
    ga, gb = geometries(a, key), geometries(b, key)
    assert sorted(ga.index) == sorted(gb.index)
    assert bool(np.all(shapely.equals_exact(ga.loc[sorted(ga.index)].array, gb.loc[sorted(ga.index)].array,
                                            tolerance=0)))


def as_loaded(frame):
    """A sample frame's polygons as the store keeps them: MultiPolygons of the same rings."""
    geoms = np.array(frame.geometry.array, dtype=object)  # a copy: the session's sample stays as it is
    single = shapely.get_type_id(geoms) == 3
    geoms[single] = [shapely.MultiPolygon([g]) for g in geoms[single]]
    return frame.set_geometry(geoms)


# --- restoring ------------------------------------------------------------------------------------


def test_a_rollback_restores_exactly_the_grids_and_stations_of_an_earlier_revision(store, sample):
    before_grids, before_stations = store.read("grids"), store.read("stations")
    moved, _ = move_grid(store)
    renamed, _ = rename(store, OTHER_VILLAGE, "改名的网格")
    stations = move_stations(store, sample)
    assert store.version == stations and store.count("stations") == 30

    preview = store.rollback_preview(1)
    assert "refusal" not in preview and preview["errors"] == [] and preview["version"] == stations
    revision = store.rollback(1, author="管理员", message="撤销调整")
    assert revision == store.version == store.revision == stations + 1

    # what the store publishes now is revision 1, as the store's history reads it ...
    for kind, key in (("grids", "code"), ("stations", "station_id")):
        assert_same_rows(store.read(kind), store.read(kind, at=1), key)
    # ... and as it was loaded, independently of the store
    assert_same_rows(store.read("grids"), as_loaded(sample.grids), "code")
    assert_same_rows(store.read("stations"), sample.stations, "station_id")
    assert_same_rows(store.read("grids"), before_grids, "code")
    assert_same_rows(store.read("stations"), before_stations, "station_id")

    # only what differed was written again; the rest keeps revision 1
    grids = store.read("grids").set_index("code")
    expected = {X, Y, moved, renamed}
    assert set(grids.index[grids["revision"] == revision]) == expected
    assert (grids.drop(index=list(expected))["revision"] == 1).all()
    assert store.count("addresses", where={"revision": 1}) == len(sample.addresses)
    assert store.count("stations", where={"revision": revision}) == 104  # 30 changed back, 74 put back
    # history keeps every version: the moved unit's new code retired by the rollback
    assert store.history("grids", code=NEW_CODE)["retired"].tolist() == [revision]
    assert store.history("grids", code=moved)["revision"].tolist() == [1, revision]

    # what it did, counted by the preview (pandas) and by the audit trail (SQL), and by hand
    units = {"added": [moved], "changed": sorted([X, Y, renamed]), "removed": [NEW_CODE]}
    layers = {"grids": {"added": 1, "changed": 3, "removed": 1}, "stations": {"added": 74, "changed": 30, "removed": 0}}
    assert preview["units"] == units and preview["layers"] == layers
    entry = store.audit(action="rollback").iloc[0]
    assert entry["author"] == "管理员" and entry["message"] == "撤销调整" and entry["revision"] == revision
    assert entry["what"]["to"] == 1 and entry["what"]["units"] == units and entry["what"]["layers"] == layers
    assert entry["what"]["levels"] == {"grid1": {"added": 0, "changed": 2, "removed": 0},
                                       "grid2": {"added": 1, "changed": 1, "removed": 1}}
    log = store.revisions().set_index("revision")
    assert log.loc[revision, "action"] == "rollback" and log.loc[revision, "layers"] == "grids,stations"

    # a rollback is a revision like any other: rolling it back gives the state before it
    again = store.rollback(revision - 1, author="管理员")
    assert_same_rows(store.read("grids"), store.read("grids", at=revision - 1), "code")
    assert_same_rows(store.read("stations"), store.read("stations", at=revision - 1), "station_id")
    assert store.count("stations") == 30 and again == store.version


def test_a_rollback_of_some_layers_leaves_the_others(store, sample):
    moved, _ = move_grid(store)
    move_stations(store, sample)
    grids = store.read("grids")
    revision = store.rollback(1, author="管理员", layers=["stations"])
    assert_same_rows(store.read("stations"), sample.stations, "station_id")
    assert_same_rows(store.read("grids"), grids, "code")
    assert store.audit(revision=revision)["what"].iloc[0]["layers_asked"] == ["stations"]
    assert list(store.audit(revision=revision)["what"].iloc[0]["layers"]) == ["stations"]


@pytest.mark.parametrize("one_pass", [False, True], ids=["by-row-id", "one-pass"])
def test_a_rollback_restores_points_and_roads_row_for_row(store, sample, one_pass, monkeypatch):
    from gridgeo.store import _rollback

    if one_pass:  # what a city's rollback of many rows does: retire them in one pass of the condition
        monkeypatch.setattr(_rollback, "_ONE_PASS", 1)
    events = sample.events.copy()
    events.loc[events.index[:100], "status"] = "已结案（误）"
    new_events = events.iloc[:20].assign(event_id=[f"NEW{i}" for i in range(20)])
    events = pd.concat([events.iloc[50:], new_events], ignore_index=True)  # 50 gone, 50 changed, 20 new
    store.load({"events": events}, author="王五", progress=False)  # replaces all: 11,900 rewritten as they were
    # the same road lines drawn the other way, appended: their segment ids repeat the published ones
    reversed_roads = sample.roads.iloc[:100].drop(columns="segment_id", errors="ignore")
    reversed_roads = reversed_roads.set_geometry(shapely.reverse(reversed_roads.geometry.array))
    store.load({"roads": reversed_roads}, author="王五", progress=False, mode="append")
    addresses = sample.addresses.iloc[:5].assign(addr_id=[f"NEWADDR{i}" for i in range(5)])
    store.load({"addresses": addresses}, author="王五", progress=False, mode="append")
    assert store.version == 4 and store.count("roads") == len(sample.roads) + 100

    preview = store.rollback_preview(1)
    revision = store.rollback(1, author="管理员")
    assert_same_rows(store.read("events"), sample.events, "event_id")
    assert_same_rows(store.read("addresses"), sample.addresses, "addr_id")
    assert_same_rows(store.read("roads"), store.read("roads", at=1), "segment_id")
    assert sorted(store.read("roads")["road_id"]) == sorted(sample.roads["road_id"])
    layers = store.audit(revision=revision)["what"].iloc[0]["layers"]
    assert layers == preview["layers"] == {
        "addresses": {"added": 0, "changed": 0, "removed": 5},
        "events": {"added": 50, "changed": 50, "removed": 20},
        "roads": {"added": 0, "changed": 0, "removed": 100}}
    # only what differed was written: the events rewritten as they were keep the load's revision
    assert store.count("events", where={"revision": revision}) == 100
    assert store.count("events", where={"revision": 2}) == len(sample.events) - 100


# --- refusing -------------------------------------------------------------------------------------------


def snapshot(url, backend):
    """Every byte of the GeoPackage (closed), or every row of every PostGIS table."""
    if backend == "gpkg":
        path = Path(url)
        assert not Path(f"{url}-wal").exists() or Path(f"{url}-wal").stat().st_size == 0
        return hashlib.sha256(path.read_bytes()).hexdigest()
    import psycopg

    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE' AND table_name <> 'spatial_ref_sys' ORDER BY 1")]
        return {t: conn.execute(f'SELECT count(*), md5(coalesce(string_agg(x::text, \'|\' ORDER BY x::text), \'\')) '
                                f'FROM "{t}" x').fetchone() for t in tables}


def test_a_refused_rollback_leaves_the_store_exactly_as_it_was(url, backend, sample):
    with gstore.open(url) as store:
        moved, published = move_grid(store)
        version = store.version
    before = snapshot(url, backend)
    with gstore.open(url) as store:
        cases = [
            (dict(to=published + 5), "not_a_revision", "has no revision"),
            (dict(to=-1), "not_a_revision", "没有版本"),
            (dict(to=published), "nothing_to_change", "无需回退"),
            (dict(to=0), "no_grids", "没有网格"),
            # the level-1 grids alone back: the moved level-2 grid, coded under X, lies in Y again
            (dict(to=1, layers=["grid1"]), "invalid_result", "校验错误"),
        ]
        for options, reason, words in cases:
            with pytest.raises(RollbackError, match=words) as caught:
                store.rollback(author="管理员", **options)
            assert caught.value.reason == reason and caught.value.message_zh and caught.value.message_en
            if reason != "not_a_revision":
                preview = store.rollback_preview(options["to"], layers=options.get("layers"))
                assert preview["refusal"]["reason"] == reason
        errors = caught.value.report.query("severity == 'error'")
        assert set(zip(errors["kind"], errors["code"])) == {("wrong_parent", NEW_CODE)}
        assert [e["kind"] for e in store.rollback_preview(1, layers=["grid1"])["errors"]] == errors["kind"].tolist()
        with pytest.raises(ConflictError, match="changed since version"):
            store.rollback(1, author="管理员", base_version=version - 1)
        with pytest.raises(TypeError, match="revision number"):
            store.rollback("1", author="管理员")
        with pytest.raises(ValueError, match="author"):
            store.rollback(1, author=" ")
        assert store.version == version
    assert snapshot(url, backend) == before
    with gstore.open(url) as store:  # and the same rollback, stated on the current version, goes through
        assert store.rollback(1, author="管理员", base_version=version) == version + 1


# --- plans -------------------------------------------------------------------------------------------------


def test_a_draft_plan_over_units_a_rollback_changes_must_be_rebased(store):
    moved, published = move_grid(store)
    affected = store.create_plan("后续调整", parent=VILLAGE, levels="grid2", author="李四")
    affected.save(affected.read().set_index("code").loc[[NEW_CODE]].reset_index().assign(name="再改名"),
                  author="李四")
    elsewhere = store.create_plan("别村", parent=OTHER_VILLAGE, levels="grid2", author="赵六")
    elsewhere.save(elsewhere.read().iloc[[0]].assign(name="别村改名"), author="赵六")

    preview = store.rollback_preview(1)
    assert [p["plan_id"] for p in preview["plans"]] == [affected.id]
    assert set(preview["plans"][0]["units"]) == {moved, NEW_CODE}  # grid2 units of the village it changes
    revision = store.rollback(1, author="管理员")
    assert [p["plan_id"] for p in store.audit(revision=revision)["what"].iloc[0]["plans"]] == [affected.id]

    # the rollback is a publish since the plan's base: its publish is refused, naming the units
    with pytest.raises(ConflictError) as caught:
        affected.publish(author="李四")
    assert {c["code"] for c in caught.value.conflicts} >= {moved, NEW_CODE}
    assert store.version == revision
    # its rebase meets the unit it edited, which the rollback removed: the planner chooses
    with pytest.raises(ConflictError, match=NEW_CODE):
        affected.rebase(author="李四")
    affected.rebase(author="李四", prefer="published")
    assert sorted(affected.read()["code"]) == sorted(store.read("grid2", within=VILLAGE)["code"])
    # a plan elsewhere goes on as if nothing happened
    elsewhere.publish(author="赵六")
    assert store.read("grids", where={"code": elsewhere.read()["code"].iloc[0]})["name"].iloc[0] == "别村改名"


# --- the command line ----------------------------------------------------------------------------------------


def run(*args, input=None):
    return subprocess.run([sys.executable, "-m", "gridgeo", *args], capture_output=True, text=True, input=input)


def test_cli_rollback_shows_what_it_changes_asks_and_refuses_clearly(url, sample):
    with gstore.open(url) as store:
        moved, published = move_grid(store)
    res = run("rollback", "--store", url, "--to", "1", "--author", "管理员", input="n\n")
    assert res.returncode == 1, res.stderr
    out = res.stdout
    assert "grids" in out and "grid1" in out and "grid2" in out
    assert all(code in out for code in (X, Y, moved, NEW_CODE))
    assert "nothing was changed" in res.stderr
    with gstore.open(url) as store:
        assert store.version == published

    res = run("rollback", "--store", url, "--to", "1", "--author", "管理员", "--message", "撤销", "--yes")
    assert res.returncode == 0, res.stderr
    with gstore.open(url) as store:
        assert store.version == published + 1
        assert f"revision {published + 1}" in res.stdout
        assert_same_rows(store.read("grids"), as_loaded(sample.grids), "code")
        assert store.audit(action="rollback")["message"].tolist() == ["撤销"]

    res = run("rollback", "--store", url, "--to", "1", "--yes")
    assert res.returncode == 1 and "无需回退" in res.stderr and "nothing would change" in res.stderr
    res = run("rollback", "--store", url, "--to", "99", "--yes")
    assert res.returncode == 1 and "has no revision 99" in res.stderr

    res = run("history", "--store", url, NEW_CODE)
    assert res.returncode == 0, res.stderr
    assert "张三" in res.stdout and "管理员" in res.stdout and str(published + 1) in res.stdout
