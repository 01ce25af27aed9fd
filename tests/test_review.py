"""Trust: roles with scopes, review before publish, and the pre-publish report, over HTTP (in process).

The store holds the sample town (内坑镇, 350582106) and a second town made here from one of its
villages moved 12 km east and recoded (350582107, one village 350582107201), so that a planner
scoped to one town can be tried on the other's plans. Keys: planners and reviewers of either town,
a planner of two villages, a reviewer and an admin of the whole city, a viewer.

Every figure of the report is checked against an independent computation on the store's own rows:
households per grid and the from-to table by a point-in-polygon join of the addresses on the
published and the planned grids, pieces by the parts of each planned grid's polygon, stations by a
covers-join. A refused request must leave the store as it was (revisions, plans, their logs and
units).
"""

from __future__ import annotations

import doctest
import json
import subprocess
import sys

import geopandas as gpd
import networkx as nx
import pandas as pd
import pytest
import shapely
import shapely.affinity

import gridgeo.derived
import gridgeo.plan
import gridgeo.review
import gridgeo.store
from adjacency import edge_graph

TOWN, OTHER_TOWN = "350582106", "350582107"
VILLAGE = "350582106201"        # 前垵村, in the sample town
SECOND = "350582106203"         # 溪山村
THIRD = "350582106202"          # 庄厝村
FAR_VILLAGE = "350582107201"    # the second town's one village
SHIFT_DEG = 0.12                # how far east the second town lies


def moved_town(sample) -> dict:
    """One village of the sample, moved east and recoded as the only village of a second town."""
    def move(frame):
        out = frame.copy()
        out["geometry"] = [shapely.affinity.translate(g, xoff=SHIFT_DEG) for g in frame.geometry]
        return gpd.GeoDataFrame(out, geometry="geometry", crs=frame.crs)

    def recode(code):
        return OTHER_TOWN + code[len(TOWN):] if code.startswith(TOWN) else code

    grids = sample.grids
    inside = grids[grids["code"].str.startswith(VILLAGE)].copy()
    for col in ("code", "parent"):
        inside[col] = inside[col].map(recode).astype("str")
    town = grids[grids["code"] == TOWN].copy()
    town["code"], town["name"] = OTHER_TOWN, "东新镇"
    town["geometry"] = [grids.loc[grids["code"] == VILLAGE].geometry.iloc[0]]
    box = shapely.box(*grids.loc[grids["code"] == VILLAGE].total_bounds)
    roads = sample.roads[sample.roads.intersects(box)]
    roads = roads.assign(geometry=roads.geometry.intersection(box.buffer(0.002)))
    addresses = sample.addresses[sample.addresses.within(box)].copy()
    addresses["addr_id"] = "E" + addresses["addr_id"].astype("str")
    stations = sample.stations[sample.stations.within(box)].copy()
    stations["station_id"] = "E" + stations["station_id"].astype("str")
    stations["grid_code"] = stations["grid_code"].map(recode).astype("str")
    return {"grids": move(pd.concat([town, inside], ignore_index=True)), "roads": move(roads.reset_index(drop=True)),
            "addresses": move(addresses), "stations": move(stations)}


@pytest.fixture(scope="module")
def two_towns(sample, tmp_path_factory):
    far = moved_town(sample)
    path = tmp_path_factory.mktemp("review") / "gridgeo.gpkg"
    layers = {kind: gpd.GeoDataFrame(pd.concat([getattr(sample, kind), far[kind]], ignore_index=True),
                                     geometry="geometry", crs=4490)
              for kind in ("grids", "roads", "addresses", "stations")}
    with gridgeo.store.open(path, create=True) as store:
        store.load(layers, author="tests", progress=False)
        gridgeo.derived.build(store, progress=False)
    return path


PEOPLE = {
    "wang": ("王规划", "planner", [TOWN]),
    "chen": ("陈规划", "planner", [OTHER_TOWN]),
    "li": ("李规划", "planner", [VILLAGE, SECOND]),
    "zhou": ("周规划", "planner", [TOWN]),
    "zhao": ("赵审核", "reviewer", [TOWN]),
    "qian": ("钱审核", "reviewer", [OTHER_TOWN]),
    "sun": ("孙审核", "reviewer", []),
    "admin": ("管理员", "admin", []),
    "viewer": ("领导", "viewer", []),
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    from api.keys import KeyStore

    path = tmp_path_factory.mktemp("review-keys") / "keys.json"
    store = KeyStore(path)
    out = {"file": str(path)}
    for who, (name, role, scopes) in PEOPLE.items():
        out[who] = {"X-API-Key": store.add(name, role, scopes=scopes)}
    return out


def client(path, keys, **settings):
    from fastapi.testclient import TestClient

    from api import Settings, create_app

    return TestClient(create_app(Settings(store=str(path), keys_file=keys["file"], **settings)),
                      raise_server_exceptions=False)


@pytest.fixture(scope="module")
def api(two_towns, keys):
    with client(two_towns, keys) as c:
        c.store = two_towns
        yield c


# --- helpers ---------------------------------------------------------------------------------


def state_of(path) -> tuple:
    """What a refused request must leave as it was."""
    with gridgeo.store.open(path) as store:
        plans = store.plans()
        ids = [int(p) for p in plans["plan_id"]]
        return (store.revision, store.version, store.revisions().drop(columns="at").values.tolist(),
                plans.drop(columns=["created_at", "updated_at"]).values.tolist(),
                {p: store.plan(p).history().drop(columns="at").values.tolist() for p in ids},
                {p: store.plan(p).read().drop(columns="geometry").values.tolist() for p in ids})


def new_plan(api, headers, parent, name="审核测试") -> dict:
    r = api.post("/plans", json={"name": name, "parent": parent}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def working(state: dict) -> dict:
    return {"assignment": state["assignment"], "names": {u["code"]: u["name"] for u in state["units"]}}


def save(api, headers, opened: dict, state: dict) -> dict:
    r = api.post(f"/plans/{opened['plan']['id']}/save", headers=headers, json={
        **working(state), "base": opened["assignment"], "base_revision": opened["revision"],
        "base_names": working(opened)["names"]})
    assert r.status_code == 200, r.text
    return r.json()


def blocks_of(opened: dict) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame.from_features(opened["blocks"]["features"], crs=4490)


def cutting_move(opened: dict):
    """A block whose move to a neighbouring grid leaves its own grid in pieces: (block, from, to, pieces)."""
    graph = edge_graph(blocks_of(opened))
    assignment = opened["assignment"]
    for block, source in sorted(assignment.items()):
        rest = [b for b, g in assignment.items() if g == source and b != block]
        pieces = nx.number_connected_components(graph.subgraph(rest))
        targets = sorted({assignment[n] for n in graph.neighbors(block)} - {source})
        if pieces > 1 and targets:
            return block, source, targets[0], pieces
    raise AssertionError("no block cuts its grid in two")


def plain_move(opened: dict, avoid=(), assignment: dict | None = None):
    """A block that can go to a neighbouring grid leaving its own in one piece (of the
    plan as opened, or with ``assignment``), neither from nor to a grid in ``avoid``."""
    graph = edge_graph(blocks_of(opened))
    assignment = assignment or opened["assignment"]
    for block, source in sorted(assignment.items()):
        if source in avoid:
            continue
        rest = graph.subgraph([b for b, g in assignment.items() if g == source and b != block])
        targets = sorted({assignment[n] for n in graph.neighbors(block)} - {source} - set(avoid))
        if targets and rest.number_of_nodes() and nx.is_connected(rest):
            return block, source, targets[0]
    raise AssertionError("no block can move")


def painted(api, headers, opened, block, to, state=None) -> dict:
    """The page's state (``opened``, or ``state`` edited from it) with ``block`` painted into ``to``."""
    r = api.post(f"/plans/{opened['plan']['id']}/edit", headers=headers,
                 json={**working(state or opened), "op": "reassign", "blocks": [block], "to": to})
    assert r.status_code == 200, r.text
    return r.json()


def problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


# --- keys ---------------------------------------------------------------------------------------


def test_keys_carry_scopes_as_digests_and_old_keys_files_still_work(tmp_path):
    from api.keys import KeyStore, digest

    path = tmp_path / "keys.json"

    def run(*args):
        return subprocess.run([sys.executable, "-m", "gridgeo", "keys", *args, "--file", str(path)],
                              capture_output=True, text=True)

    made = run("add", "王规划", "--role", "planner", "--scope", "350582106", "--scope", "350582107201")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("gg_") and key not in path.read_text("utf-8")
    assert "350582106, 350582107201" in made.stderr
    found = KeyStore(path).lookup(key)
    assert (found.name, found.role, found.scopes) == ("王规划", "planner", ("350582106", "350582107201"))
    assert run("add", "赵审核", "--role", "reviewer").returncode == 0
    listed = run("list").stdout.splitlines()
    assert listed[0].split("\t")[:3] == ["王规划", "planner", "350582106,350582107201"]
    assert listed[1].split("\t")[:3] == ["赵审核", "reviewer", "(whole city)"]
    for bad in (("--role", "viewer", "--scope", "350582106"), ("--role", "admin", "--scope", "350582106"),
                ("--role", "planner", "--scope", "内坑镇")):
        refused = run("add", "某人", *bad)
        assert refused.returncode != 0 and "scope" in refused.stderr
    assert len(KeyStore(path).entries()) == 2
    # a keys file written before scopes: its keys cover the whole city
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"keys": [{"name": "老规划", "role": "planner", "sha256": digest("gg_old"),
                                         "created": "2024-01-01T00:00:00+00:00"}]}), "utf-8")
    assert KeyStore(old).lookup("gg_old").scopes == ()
    assert KeyStore(old).entries()[0]["scopes"] == []


def test_who_am_i(api, keys):
    assert api.get("/me", headers=keys["li"]).json() == {
        "name": "李规划", "role": "planner", "scopes": sorted([VILLAGE, SECOND]), "self_publish": False}
    assert api.get("/me").json()["role"] == "anonymous"


# --- scopes -------------------------------------------------------------------------------------


def test_a_planner_scoped_to_one_town_gets_403_on_another_towns_plan(api, keys):
    theirs = new_plan(api, keys["chen"], FAR_VILLAGE)
    pid = theirs["plan"]["id"]
    assert theirs["plan"]["can"] == ["edit", "save", "submit"]
    block, source, target = plain_move(theirs)
    before = state_of(api.store)
    attempts = {
        "create": lambda: api.post("/plans", json={"name": "越权", "parent": FAR_VILLAGE}, headers=keys["wang"]),
        "edit": lambda: api.post(f"/plans/{pid}/edit", headers=keys["wang"],
                                 json={**working(theirs), "op": "reassign", "blocks": [block], "to": target}),
        "save": lambda: api.post(f"/plans/{pid}/save", headers=keys["wang"], json={
            **working(theirs), "base": theirs["assignment"], "base_revision": theirs["revision"]}),
        "submit": lambda: api.post(f"/plans/{pid}/submit", headers=keys["wang"]),
        "withdraw": lambda: api.post(f"/plans/{pid}/withdraw", headers=keys["wang"]),
    }
    for action, attempt in attempts.items():
        body = problem(attempt(), 403)
        assert body["reason"] == "scope", (action, body)
        assert FAR_VILLAGE in body["detail"] and TOWN in body["detail"], body["detail"]
        assert body["codes"] == [FAR_VILLAGE, TOWN] and "不在其中" in body["message_zh"]
    # the other town's reviewer may neither approve nor return it; a reviewer of the whole city may see it
    assert problem(api.post(f"/plans/{pid}/return", headers=keys["zhao"], json={"comment": "不行"}), 403)[
        "reason"] == "scope"
    assert state_of(api.store) == before
    listed = {p["id"]: p for p in api.get("/plans", headers=keys["wang"]).json()["plans"]}
    assert listed[pid]["can"] == []  # read, but nothing to do
    assert api.get(f"/plans/{pid}", headers=keys["wang"]).status_code == 200
    # a planner of two villages: those two, not a third, not the town
    assert new_plan(api, keys["li"], SECOND)["plan"]["parent"] == SECOND
    body = problem(api.post("/plans", json={"name": "x", "parent": THIRD}, headers=keys["li"]), 403)
    assert THIRD in body["detail"] and VILLAGE in body["detail"] and SECOND in body["detail"]
    # the town's own planner, and the other town's, each in their own
    assert new_plan(api, keys["wang"], THIRD)["plan"]["can"] == ["edit", "save", "submit"]
    assert api.post(f"/plans/{pid}/submit", headers=keys["chen"]).status_code == 200


def test_an_upload_opens_plans_only_inside_the_planners_scope(api, keys, sample, tmp_path):
    far = moved_town(sample)["grids"]
    grid2 = far[far["level"] == "grid2"]
    data = grid2.to_json(drop_id=True, ensure_ascii=False).encode("utf-8")
    r = api.post("/imports", files={"file": ("grid2.geojson", data, "application/geo+json")}, headers=keys["wang"])
    assert r.status_code == 201, r.text
    before = state_of(api.store)
    body = problem(api.post(f"/imports/{r.json()['id']}/plans", json={"name": "越权导入"}, headers=keys["wang"]),
                   403)
    assert FAR_VILLAGE in body["detail"] and body["reason"] == "scope"
    assert state_of(api.store) == before
    assert api.post(f"/imports/{r.json()['id']}/plans", json={"name": "导入"},
                    headers=keys["chen"]).status_code == 201


# --- the review ---------------------------------------------------------------------------------


def test_a_submitted_plan_is_published_only_after_approval(api, keys, two_towns):
    opened = new_plan(api, keys["wang"], SECOND)
    pid = opened["plan"]["id"]
    block, source, target = plain_move(opened)
    saved = save(api, keys["wang"], opened, painted(api, keys["wang"], opened, block, target))
    with gridgeo.store.open(two_towns) as store:
        version = store.version
    # a draft: the planner may not publish it, nor may a reviewer (it is not approved)
    assert problem(api.post(f"/plans/{pid}/publish", headers=keys["wang"]), 403)["reason"] == "role"
    assert problem(api.post(f"/plans/{pid}/approve", headers=keys["zhao"]), 409)
    r = api.post(f"/plans/{pid}/submit", headers=keys["wang"], json={"message": "请审核溪山村"})
    assert r.status_code == 200 and r.json()["status"] == "submitted"
    assert r.json()["plan"]["can"] == ["edit", "withdraw"]
    # under review: no save, no publish; the planner may not approve; the other town's reviewer may not
    assert "withdraw" in problem(api.post(f"/plans/{pid}/save", headers=keys["wang"], json={
        **working(saved), "base": saved["assignment"], "base_revision": saved["revision"]}), 409)["detail"]
    assert problem(api.post(f"/plans/{pid}/publish", headers=keys["zhao"]), 409)
    assert problem(api.post(f"/plans/{pid}/approve", headers=keys["wang"]), 403)["reason"] == "role"
    assert problem(api.post(f"/plans/{pid}/approve", headers=keys["qian"]), 403)["reason"] == "scope"
    seen = {p["id"]: p for p in api.get("/plans?status=submitted", headers=keys["zhao"]).json()["plans"]}
    assert seen[pid]["can"] == ["edit", "return", "approve"] and seen[pid]["review"]["submitted_by"] == "王规划"
    report = api.get(f"/plans/{pid}/report", headers=keys["zhao"]).json()
    assert report["needs_acknowledgement"]  # the village has grids without a station
    approved = api.post(f"/plans/{pid}/approve", headers=keys["zhao"], json={"acknowledge": report["version"]})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["report"]["version"] == report["version"]
    assert approved.json()["plan"]["review"]["approved_by"] == "赵审核"
    with gridgeo.store.open(two_towns) as store:
        assert store.version == version  # approved is not published
    # approving changed no unit: the report, and its version, are the same
    assert api.get(f"/plans/{pid}/report", headers=keys["zhao"]).json()["version"] == report["version"]
    assert problem(api.post(f"/plans/{pid}/publish", headers=keys["wang"]), 403)["reason"] == "role"
    done = api.post(f"/plans/{pid}/publish", headers=keys["zhao"], json={"acknowledge": report["version"],
                                                                         "message": "发布溪山村"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "published" and done.json()["data_version"] > version
    inside = shapely.Point(*blocks_of(opened).set_index("block_id").geometry[block].representative_point().coords[0])
    items = api.get("/collections/grid2/items", params={"parent": source[:-2], "limit": 100}).json()
    shown = {f["properties"]["code"]: shapely.geometry.shape(f["geometry"]) for f in items["features"]}
    assert shown[target].covers(inside) and not shown[source].covers(inside)


def test_a_reviewer_does_not_approve_their_own_submission_but_another_or_an_admin_may(api, keys):
    mine = new_plan(api, keys["sun"], THIRD, name="孙的方案")
    pid = mine["plan"]["id"]
    assert api.post(f"/plans/{pid}/submit", headers=keys["sun"]).status_code == 200
    version = api.get(f"/plans/{pid}/report", headers=keys["sun"]).json()["version"]
    body = problem(api.post(f"/plans/{pid}/approve", headers=keys["sun"], json={"acknowledge": version}), 403)
    assert body["reason"] == "own_plan" and "GRIDGEO_SELF_PUBLISH" in body["detail"]
    assert api.post(f"/plans/{pid}/approve", headers=keys["zhao"], json={"acknowledge": version}).status_code == 200
    # an admin may do it all, anywhere, their own included
    far = new_plan(api, keys["admin"], FAR_VILLAGE, name="管理员的方案")
    fid = far["plan"]["id"]
    assert far["plan"]["can"] == ["edit", "save", "submit"]
    assert api.post(f"/plans/{fid}/submit", headers=keys["admin"]).status_code == 200
    version = api.get(f"/plans/{fid}/report", headers=keys["admin"]).json()["version"]
    assert api.post(f"/plans/{fid}/approve", headers=keys["admin"], json={"acknowledge": version}).status_code == 200
    assert api.post(f"/plans/{fid}/return", headers=keys["admin"], json={"comment": "再看看"}).status_code == 200


def test_a_return_carries_the_comment_to_the_planner_and_only_the_author_withdraws(api, keys):
    opened = new_plan(api, keys["wang"], VILLAGE)
    pid = opened["plan"]["id"]
    assert api.post(f"/plans/{pid}/submit", headers=keys["wang"]).status_code == 200
    assert problem(api.post(f"/plans/{pid}/return", headers=keys["zhao"], json={"comment": ""}), 400)
    assert problem(api.post(f"/plans/{pid}/return", headers=keys["zhao"], json={}), 400)
    assert problem(api.post(f"/plans/{pid}/withdraw", headers=keys["zhou"]), 403)["reason"] == "not_author"
    comment = "第1网格没有服务站点，请与第2网格合并后再提交"
    r = api.post(f"/plans/{pid}/return", headers=keys["zhao"], json={"comment": comment})
    assert r.status_code == 200 and r.json()["status"] == "draft"
    mine = api.get(f"/plans/{pid}", headers=keys["wang"]).json()
    assert mine["plan"]["status"] == "draft" and mine["plan"]["can"] == ["edit", "save", "submit"]
    assert mine["plan"]["review"]["comment"] == comment and mine["plan"]["review"]["returned_by"] == "赵审核"
    assert [(h["action"], h["author"], h["message"]) for h in mine["history"]][-1] == ("return", "赵审核", comment)
    # submitted again, the comment is answered; withdrawn by its author, it is a draft to change
    assert api.post(f"/plans/{pid}/submit", headers=keys["wang"]).status_code == 200
    assert api.get(f"/plans/{pid}", headers=keys["wang"]).json()["plan"]["review"]["comment"] is None
    assert api.post(f"/plans/{pid}/withdraw", headers=keys["wang"]).json()["status"] == "draft"


def test_publishing_without_acknowledging_warnings_is_refused_with_the_report(api, keys, two_towns):
    opened = new_plan(api, keys["chen"], FAR_VILLAGE, name="未确认")
    pid = opened["plan"]["id"]
    block, source, target = plain_move(opened)
    save(api, keys["chen"], opened, painted(api, keys["chen"], opened, block, target))
    assert api.post(f"/plans/{pid}/submit", headers=keys["chen"]).status_code == 200
    report = api.get(f"/plans/{pid}/report", headers=keys["qian"]).json()
    assert report["warnings"] and not report["errors"]
    before = state_of(two_towns)
    for acknowledge in (None, "", "0000000000000000"):
        body = problem(api.post(f"/plans/{pid}/approve", headers=keys["qian"], json={"acknowledge": acknowledge}),
                       409)
        assert body["reason"] == "acknowledgement_required" and body["report"] == report
        assert report["version"] in body["detail"] and "确认" in body["message_zh"]
    assert state_of(two_towns) == before
    assert api.post(f"/plans/{pid}/approve", headers=keys["qian"],
                    json={"acknowledge": report["version"]}).status_code == 200
    before = state_of(two_towns)
    body = problem(api.post(f"/plans/{pid}/publish", headers=keys["qian"]), 409)
    assert body["report"]["version"] == report["version"] and body["report"]["warnings"] == report["warnings"]
    assert state_of(two_towns) == before
    assert api.post(f"/plans/{pid}/publish", headers=keys["qian"],
                    json={"acknowledge": report["version"]}).status_code == 200


def test_the_workflow_log_lists_each_step_with_its_author(api, keys, two_towns):
    opened = new_plan(api, keys["wang"], THIRD, name="流程")
    pid = opened["plan"]["id"]
    block, source, target = plain_move(opened)
    save(api, keys["wang"], opened, painted(api, keys["wang"], opened, block, target))
    steps = [("wang", "submit", {"message": "第一次提交"}), ("zhao", "return", {"comment": "请说明调整原因"}),
             ("wang", "submit", {"message": "原因：道路改造"})]
    for who, step, body in steps:
        assert api.post(f"/plans/{pid}/{step}", headers=keys[who], json=body).status_code == 200
    version = api.get(f"/plans/{pid}/report", headers=keys["zhao"]).json()["version"]
    for step in ("approve", "publish"):
        r = api.post(f"/plans/{pid}/{step}", headers=keys["zhao"], json={"acknowledge": version})
        assert r.status_code == 200, r.text
    with gridgeo.store.open(two_towns) as store:
        log = store.plan(pid).history()
        revisions = store.revisions().set_index("revision")
    assert log[["action", "author"]].values.tolist() == [
        ["create", "王规划"], ["save", "王规划"], ["submit", "王规划"], ["return", "赵审核"], ["submit", "王规划"],
        ["approve", "赵审核"], ["publish", "赵审核"]]
    assert log["message"].tolist()[2:5] == ["第一次提交", "请说明调整原因", "原因：道路改造"]
    assert f"report {version} acknowledged" in log["message"].iloc[5]
    assert f"report {version} acknowledged" in log["message"].iloc[6]
    assert log["at"].is_monotonic_increasing
    assert [revisions.at[r, "author"] for r in log["revision"]] == log["author"].tolist()
    assert revisions.at[log["revision"].iloc[-1], "layers"] == "grids"
    shown = api.get(f"/plans/{pid}", headers=keys["wang"]).json()["history"]
    assert [[h["action"], h["author"]] for h in shown] == log[["action", "author"]].values.tolist()


def test_a_small_office_publishes_its_own_plan_after_acknowledging_the_report(two_towns, keys):
    with client(two_towns, keys, self_publish=True) as office:
        assert office.get("/me", headers=keys["wang"]).json()["self_publish"] is True
        mine = new_plan(office, keys["wang"], VILLAGE, name="小网格办")
        pid = mine["plan"]["id"]
        assert mine["plan"]["can"] == ["edit", "save", "submit", "publish"]
        block, source, target = plain_move(mine)
        save(office, keys["wang"], mine, painted(office, keys["wang"], mine, block, target))
        theirs = new_plan(office, keys["zhou"], SECOND, name="别人的")
        assert problem(office.post(f"/plans/{theirs['plan']['id']}/publish", headers=keys["wang"]), 403)[
            "reason"] == "role"
        body = problem(office.post(f"/plans/{pid}/publish", headers=keys["wang"]), 409)
        done = office.post(f"/plans/{pid}/publish", headers=keys["wang"],
                           json={"acknowledge": body["report"]["version"]})
        assert done.status_code == 200 and done.json()["status"] == "published", done.text
        with gridgeo.store.open(two_towns) as store:
            assert store.plan(pid).history()["action"].tolist() == ["create", "save", "publish"]


# --- the report ---------------------------------------------------------------------------------


def test_the_reports_numbers_are_those_of_an_independent_overlay(api, keys, two_towns):
    opened = new_plan(api, keys["wang"], VILLAGE, name="报告")
    pid = opened["plan"]["id"]
    block, source, target, pieces = cutting_move(opened)
    state = painted(api, keys["wang"], opened, block, target)
    other, other_from, other_to = plain_move(opened, avoid=(source, target), assignment=state["assignment"])
    state = painted(api, keys["wang"], opened, other, other_to, state)
    save(api, keys["wang"], opened, state)
    report = api.get(f"/plans/{pid}/report", headers=keys["zhao"]).json()

    with gridgeo.store.open(two_towns) as store:
        planned = store.plan(pid).read()
        published = store.read("grid2", within=VILLAGE)
        box = tuple(store.read("grids", where={"code": VILLAGE}).total_bounds)
        addresses = store.read("addresses", bbox=box)
        stations = store.read("stations", bbox=box)
        validation = store.plan(pid).validate()
    planned = planned[planned["level"] == "grid2"].reset_index(drop=True)
    village = store_unit(two_towns, VILLAGE)
    addresses = addresses[addresses.within(village)].reset_index(drop=True)

    def grid_of(grids):
        joined = gpd.sjoin(addresses[["addr_id", "households", "population", "geometry"]],
                           grids[["code", "geometry"]], predicate="within")
        assert joined["addr_id"].is_unique and len(joined) == len(addresses)  # each address in one grid
        return joined.set_index("addr_id")["code"]

    old, new = grid_of(published), grid_of(planned)
    table = addresses.set_index("addr_id")[["households", "population"]].assign(from_code=old, to_code=new)
    moved = table[table["from_code"] != table["to_code"]]
    expected = moved.groupby(["from_code", "to_code"])[["households", "population"]].sum()
    shown = {(m["from_code"], m["to_code"]): (m["households"], m["population"]) for m in report["moves"]}
    assert shown == {k: (int(v["households"]), int(v["population"])) for k, v in expected.iterrows()}
    assert report["summary"]["households_moved"] == int(moved["households"].sum()) > 0
    names = dict(zip(published["code"], published["name"]))
    assert all(m["from_name"] == names[m["from_code"]] and m["to_name"] == names[m["to_code"]]
               for m in report["moves"])

    households = table.groupby("to_code")["households"].sum().reindex(planned["code"]).fillna(0).astype(int)
    low, high = report["summary"]["band"]
    off = {c: int(h) for c, h in households.items() if not low <= h <= high}
    assert {w["code"]: w["value"] for w in report["warnings"] if w["kind"] == "off_band"} == off
    parts = {c: len(shapely.get_parts(g)) for c, g in zip(planned["code"], planned.geometry)}
    assert {w["code"]: w["value"] for w in report["warnings"] if w["kind"] == "non_contiguous"} == \
        {c: n for c, n in parts.items() if n > 1} == {source: pieces}
    covered = gpd.sjoin(planned[["code", "geometry"]], stations[["station_id", "geometry"]], predicate="covers")
    without = {c: int(households[c]) for c in planned["code"] if c not in set(covered["code"]) and households[c] > 0}
    assert {w["code"]: w["value"] for w in report["warnings"] if w["kind"] == "without_station"} == without
    assert report["summary"]["households_without_station"] == sum(without.values())
    new_kinds = {(w["kind"], w["code"]) for w in report["warnings"] if w["new"]}
    assert ("non_contiguous", source) in new_kinds
    assert "published in" in next(w["message_en"] for w in report["warnings"] if w["kind"] == "non_contiguous")
    # validation: its warnings are the report's (multipart only where no piece warning says it), its errors none
    flagged = validation[validation["severity"] == "warning"]
    flagged = flagged[~((flagged["kind"] == "multipart") & (flagged["code"] == source))]
    own = ("off_band", "non_contiguous", "without_station", "unassigned")
    assert sorted((w["kind"], w["code"]) for w in report["warnings"] if w["kind"] not in own) == \
        sorted(zip(flagged["kind"], flagged["code"]))
    assert report["errors"] == [] and report["summary"]["errors"] == 0
    assert report["summary"]["warnings"] == len(report["warnings"])
    changed = {c["code"]: c["change"] for c in report["changes"]}
    assert set(changed) == {source, target, other_from, other_to} and set(changed.values()) == {"reshaped"}
    # the version: the same report, the same version; one more save, another
    assert api.get(f"/plans/{pid}/report", headers=keys["wang"]).json()["version"] == report["version"]
    again = api.get(f"/plans/{pid}", headers=keys["wang"]).json()
    back = painted(api, keys["wang"], opened, other, other_from, again)
    save(api, keys["wang"], again, back)
    assert api.get(f"/plans/{pid}/report", headers=keys["wang"]).json()["version"] != report["version"]


def store_unit(path, code):
    with gridgeo.store.open(path) as store:
        return store.read("grids", where={"code": code}).geometry.iloc[0]


def test_docstring_examples_run():
    import importlib

    import api.keys

    for module in (gridgeo.review, importlib.import_module("gridgeo.plan.report"), api.keys):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0, module.__name__
