"""The audit trail on both stores, the keys' log, and ``gridgeo audit``.

What every entry says it changed is checked against what the test itself
did (the units it renamed or reshaped, the rows it loaded), counted
independently of the store.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import shapely

import gridgeo.audit
import gridgeo.store as gstore
from store_fixture import sample_layers

VILLAGE = "350582106201"


def started_elsewhere(multipolygon):
    """The same polygons, each outline starting at its second vertex."""
    parts = []
    for polygon in multipolygon.geoms:
        ring = list(polygon.exterior.coords)[:-1]
        parts.append(shapely.Polygon(ring[1:] + ring[:1], [list(r.coords) for r in polygon.interiors]))
    return shapely.MultiPolygon(parts)


def run(*args):
    env = {**os.environ, "COLUMNS": "200"}  # a table as wide as a terminal would show it
    return subprocess.run([sys.executable, "-m", "gridgeo", *args], capture_output=True, text=True, env=env)


def test_every_write_is_in_the_audit_trail_with_who_and_what(store, sample):
    # the load of the fixture: every row of every layer added, every unit by code
    first = store.audit().iloc[0]
    assert (first["action"], first["author"], first["revision"]) == ("load", "网格办", 1)
    assert first["what"]["layers"] == {kind: {"added": len(frame), "changed": 0, "removed": 0}
                                       for kind, frame in sample_layers(sample).items()}
    assert first["what"]["units"]["added"] == sorted(sample.grids["code"])
    assert first["what"]["levels"] == {lv: {"added": int(n), "changed": 0, "removed": 0}
                                       for lv, n in sample.grids["level"].value_counts().items()}
    assert list(first["what"]["levels"]) == ["town", "village", "grid1", "grid2", "grid3"]

    plan = store.create_plan("调整", parent=VILLAGE, levels="grid2", author="张三")
    units = plan.read()
    renamed, reshaped = units["code"].iloc[0], units["code"].iloc[1]
    edits = units.iloc[[0, 1]].copy()
    edits["name"] = [edits["name"].iloc[0] + "（新）", edits["name"].iloc[1]]
    # the same ground and vertices, its outline started at another vertex: a change of geometry only
    edits["geometry"] = [edits.geometry.iloc[0], started_elsewhere(edits.geometry.iloc[1])]
    assert shapely.equals(edits.geometry.iloc[1], units.geometry.iloc[1])
    assert not shapely.equals_exact(edits.geometry.iloc[1], units.geometry.iloc[1], tolerance=0)
    saved = plan.save(edits, author="李四", message="改名与加密顶点")
    submitted = plan.submit(author="李四", message="请审核")
    revision = store.revision
    viewed = store.audit_record("view-report", "王审核", {"report": "v3", "warnings": 2}, plan.id)
    assert store.revision == revision and isinstance(viewed, int)  # on record, without a revision
    plan.approve(author="王审核", report="v3")
    between = pd.Timestamp.now(tz="UTC")
    time.sleep(0.01)
    published = plan.publish(author="王审核")

    stations = sample.stations.copy()
    stations.loc[stations.index[:30], "name"] = stations["name"].iloc[:30] + "（迁址）"
    geometry = np.asarray(stations.geometry.array, dtype=object)
    geometry[30:35] = shapely.transform(geometry[30:35], lambda xy: xy + 1e-7)  # a centimetre east and north
    stations = stations.set_geometry(geometry)
    loaded = store.load({"stations": stations}, author="李四", progress=False)
    entries = len(store.audit())
    assert store.load({"stations": stations}, author="李四", progress=False) == loaded  # the same file again
    assert len(store.audit()) == entries  # changes nothing: no revision, no entry

    trail = store.audit()
    assert trail["action"].tolist() == ["load", "create-plan", "save-plan", "submit-plan", "view-report",
                                        "approve-plan", "publish", "load"]
    assert trail["author"].tolist() == ["网格办", "张三", "李四", "李四", "王审核", "王审核", "王审核", "李四"]
    assert trail["revision"].tolist()[-2:] == [published, loaded] and pd.isna(trail["revision"].iloc[4])
    assert trail["revision"].iloc[3] == submitted and trail["message"].iloc[3] == "请审核"
    by_action = trail.set_index("action")
    save = by_action.loc["save-plan"]
    assert save["revision"] == saved and save["message"] == "改名与加密顶点" and save["plan_id"] == plan.id
    assert sorted(save["what"]["plan"]["units"]) == sorted([renamed, reshaped])
    assert "layers" not in save["what"]  # a save changes no published data
    publish = by_action.loc["publish"]
    assert publish["what"]["layers"] == {"grids": {"added": 0, "changed": 2, "removed": 0}}
    assert publish["what"]["units"] == {"added": [], "changed": sorted([renamed, reshaped]), "removed": []}
    assert publish["what"]["levels"] == {"grid2": {"added": 0, "changed": 2, "removed": 0}}
    assert trail.iloc[-1]["what"]["layers"] == {"stations": {"added": 0, "changed": 35, "removed": 0}}
    assert trail.iloc[-1]["summary"] == "stations +0 ~35 -0"
    assert by_action.loc["view-report", "what"] == {"report": "v3", "warnings": 2}
    assert by_action.loc["view-report", "summary"] == "report: v3; warnings: 2"
    assert "layers" not in by_action.loc["approve-plan", "what"]  # a review step changes no published data

    # filters
    assert store.audit(author="李四")["action"].tolist() == ["save-plan", "submit-plan", "load"]
    assert store.audit(action=["publish", "approve-plan"])["author"].tolist() == ["王审核", "王审核"]
    assert store.audit(since=between)["action"].tolist() == ["publish", "load"]
    assert store.audit(until=between)["action"].tolist()[-1] == "approve-plan"
    assert store.audit(since=between.tz_convert("Asia/Shanghai").isoformat())["action"].tolist() == ["publish", "load"]
    assert store.audit(plan_id=plan.id)["action"].tolist() == ["create-plan", "save-plan", "submit-plan",
                                                               "view-report", "approve-plan", "publish"]
    assert store.audit(revision=published)["action"].tolist() == ["publish"]

    # what cannot be put on record
    for action in ("publish", "approve-plan"):
        with pytest.raises(ValueError, match="recorded by the store itself"):
            store.audit_record(action, "王审核", {})
    with pytest.raises(gstore.NotFound):
        store.audit_record("view-report", "李四", {}, plan_id=999)
    with pytest.raises(TypeError, match="JSON"):
        store.audit_record("view-report", "李四", {"units": {1, 2}})
    with pytest.raises(ValueError, match="author"):
        store.audit_record("view-report", "", {})
    assert len(store.audit()) == 8


def test_an_older_store_gets_its_audit_trail_when_migrated(url, backend):
    with gstore.open(url) as store:
        plan = store.create_plan("改名", parent=VILLAGE, levels="grid2", author="张三")
        plan.save(plan.read().iloc[[0]].assign(name="新名"), author="张三")
        plan.publish(author="李四")
        stations = store.read("stations").drop(columns="revision")
        store.load({"stations": stations.iloc[:50]}, author="王五", progress=False)
        expected = store.audit().drop(columns="entry")
        # a store written before the audit trail: no table, schema version 2
        with store._db.write() as tx:
            tx.execute("DROP TABLE gridgeo_audit")
            tx.execute("UPDATE gridgeo_meta SET value = '2' WHERE key = 'schema_version'")
    with gstore.open(url) as store:
        assert store.schema_version == gstore.SCHEMA_VERSION
        got = store.audit().drop(columns="entry")
    pd.testing.assert_frame_equal(got.drop(columns="what"), expected.drop(columns="what"))
    assert got["what"].tolist() == expected["what"].tolist()
    assert got["what"].iloc[-1]["layers"] == {"stations": {"added": 0, "changed": 0, "removed": 54}}
    assert got["what"].iloc[-2]["units"]["changed"] == [plan.read()["code"].iloc[0]]


# --- the keys' log and the command line ----------------------------------------------------------------


@pytest.fixture
def gpkg(loaded_gpkg, tmp_path):
    path = tmp_path / "store.gpkg"
    shutil.copy(loaded_gpkg, path)
    return str(path)


def test_key_changes_are_logged_beside_the_keys_file_and_read_with_the_store(gpkg, tmp_path):
    keys = tmp_path / "keys.json"
    made = run("keys", "add", "王规划", "--role", "planner", "--file", str(keys), "--author", "管理员")
    assert made.returncode == 0, made.stderr
    assert run("keys", "add", "李审核", "--role", "admin", "--file", str(keys), "--author", "管理员").returncode == 0
    with gstore.open(gpkg) as store:
        store.rollback(0, author="管理员", layers=["events"])
    assert run("keys", "remove", "王规划", "--file", str(keys), "--author", "李审核").returncode == 0

    log = gridgeo.audit.keys_log_path(keys)
    assert log.name == "keys.log.jsonl" and oct(log.stat().st_mode & 0o777) == "0o600"
    text = log.read_text("utf-8")
    key = made.stdout.strip()
    assert key not in text and hashlib.sha256(key.encode()).hexdigest() not in text  # never the key or its digest
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(e["action"], e["author"], e["what"]["key"]["name"]) for e in lines] == [
        ("key-add", "管理员", "王规划"), ("key-add", "管理员", "李审核"), ("key-remove", "李审核", "王规划")]

    res = run("audit", "--store", gpkg, "--keys-file", str(keys), "--json")
    assert res.returncode == 0, res.stderr
    entries = json.loads(res.stdout)
    assert [(e["source"], e["action"], e["author"]) for e in entries] == [
        ("store", "load", "网格办"), ("keys", "key-add", "管理员"), ("keys", "key-add", "管理员"),
        ("store", "rollback", "管理员"), ("keys", "key-remove", "李审核")]
    assert entries[3]["what"]["layers"] == {"events": {"added": 0, "changed": 0, "removed": 12000}}
    assert entries[4]["what"]["key"] == {"name": "王规划", "count": 1}
    res = run("audit", "--store", gpkg, "--keys-file", str(keys), "--author", "管理员", "--json")
    assert [e["action"] for e in json.loads(res.stdout)] == ["key-add", "key-add", "rollback"]
    res = run("audit", "--store", gpkg, "--keys-file", str(keys), "--action", "key-remove", "--action", "load",
              "--json")
    assert [e["action"] for e in json.loads(res.stdout)] == ["load", "key-remove"]
    res = run("audit", "--store", gpkg, "--json")  # without the keys file: the store's own trail
    assert [e["action"] for e in json.loads(res.stdout)] == ["load", "rollback"]

    table = run("audit", "--store", gpkg, "--keys-file", str(keys))
    assert table.returncode == 0, table.stderr
    for words in ("网格办", "李审核", "key-remove", "rollback", "events +0 ~0 -12000", "key 李审核 (admin)"):
        assert words in table.stdout, words

    with log.open("a", encoding="utf-8") as f:  # a line that is not an entry: said, with its place
        f.write("{not json\n")
    res = run("audit", "--store", gpkg, "--keys-file", str(keys))
    assert res.returncode == 2 and "line 4" in res.stderr and "keys.log.jsonl" in res.stderr
