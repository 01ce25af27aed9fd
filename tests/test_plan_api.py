"""The plan endpoints over HTTP (in process), each figure checked against an
independent computation: an exact spatial join of the sample's addresses,
networkx on the blocks' shared edges, pandas crosstabs, and gridgeo.plan's
own verbs called directly for what the service must merely pass through.

The tests write plans and publish, so they work on their own copy of the
sample store with their own keys (two planners, a reviewer and a viewer); a
plan is published as the review goes: submitted, approved after its report,
published.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import networkx as nx
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

import gridgeo.crs
import gridgeo.plan
import gridgeo.store
from adjacency import edge_graph

VILLAGE = "350582106201"      # 前垵村: four level-2 grids, no level-3 plots
PARK_VILLAGE = "350582106205"  # 南塘村: four level-2 grids over level-3 enterprise plots
PUBLISHED_VILLAGE = "350582106203"  # the one the publish tests change


@pytest.fixture(scope="module")
def store_path(sample_store, tmp_path_factory):
    path = tmp_path_factory.mktemp("plan-api") / "gridgeo.gpkg"
    shutil.copy(sample_store, path)
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    from api.keys import KeyStore

    path = tmp_path_factory.mktemp("plan-keys") / "keys.json"
    store = KeyStore(path)
    return {"file": str(path), "zhang": store.add("网格办张三", "planner"), "li": store.add("网格办李四", "planner"),
            "viewer": store.add("领导", "viewer"), "wang": store.add("审核员王五", "reviewer")}


@pytest.fixture(scope="module")
def api(store_path, keys):
    from fastapi.testclient import TestClient

    from api import Settings, create_app

    with TestClient(create_app(Settings(store=str(store_path), keys_file=keys["file"])),
                    raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def zhang(keys):
    return {"X-API-Key": keys["zhang"]}


@pytest.fixture(scope="module")
def li(keys):
    return {"X-API-Key": keys["li"]}


@pytest.fixture(scope="module")
def wang(keys):
    """A reviewer."""
    return {"X-API-Key": keys["wang"]}


@pytest.fixture(scope="module")
def reference(sample):
    """gridgeo.plan's own state of the village, opened from the sample (not through the service)."""
    return gridgeo.plan.start(sample.grids, VILLAGE, roads=sample.roads, addresses=sample.addresses,
                              stations=sample.stations)


# --- helpers --------------------------------------------------------------------------------


def new_plan(api, headers, parent=VILLAGE, **options) -> dict:
    r = api.post("/plans", json={"name": "测试方案", "parent": parent, **options}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def working(state: dict) -> dict:
    return {"assignment": state["assignment"], "names": {u["code"]: u["name"] for u in state["units"]}}


def edit(api, headers, plan: dict, state: dict, **change):
    return api.post(f"/plans/{plan['plan']['id']}/edit", json={**working(state), **change}, headers=headers)


def figures(state: dict, column="households") -> dict:
    return {g["code"]: g[column] for g in state["impact"]["grids"]}


def reviewed(api, planner, reviewer, pid: int) -> dict:
    """Submit the plan, approve it after reading its report, acknowledging its version: the report."""
    assert api.post(f"/plans/{pid}/submit", headers=planner, json={"message": "请审核"}).status_code == 200
    report = api.get(f"/plans/{pid}/report", headers=reviewer).json()
    r = api.post(f"/plans/{pid}/approve", headers=reviewer, json={"acknowledge": report["version"]})
    assert r.status_code == 200, r.text
    return report


def blocks_frame(plan: dict) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame.from_features(plan["blocks"]["features"], crs=4490)


def block_households(plan: dict, sample) -> pd.Series:
    """Households per block by an exact spatial join of the sample's addresses on the blocks sent."""
    blocks = blocks_frame(plan)
    joined = gpd.sjoin(sample.addresses[["households", "geometry"]], blocks[["block_id", "geometry"]],
                       predicate="within")
    return joined.groupby("block_id")["households"].sum().reindex(blocks["block_id"]).fillna(0).astype(int)


def block_graph(plan: dict) -> nx.Graph:
    """Blocks joined when they share an edge (not just a corner), from the geometry sent."""
    return edge_graph(blocks_frame(plan))


def grid_pairs(graph: nx.Graph, assignment: dict) -> list[tuple[str, str]]:
    """Pairs of grids (a < b) sharing an edge, from the blocks' graph."""
    return sorted({tuple(sorted((assignment[u], assignment[v]))) for u, v in graph.edges
                   if assignment[u] != assignment[v]})


def neighbour_block(graph: nx.Graph, assignment: dict, source: str, target: str) -> str:
    """A block of ``source`` touching ``target`` whose loss leaves ``source`` in one piece."""
    mine = [b for b, g in assignment.items() if g == source]
    for block in sorted(mine):
        touches = any(assignment[n] == target for n in graph.neighbors(block))
        rest = graph.subgraph([b for b in mine if b != block])
        if touches and nx.is_connected(rest):
            return block
    raise AssertionError(f"no block of {source} can go to {target}")


# --- access -----------------------------------------------------------------------------------


def test_plans_are_for_planners_only(api, keys, zhang):
    assert api.get("/plans").status_code == 401
    assert api.get("/plans", headers={"X-API-Key": keys["viewer"]}).status_code == 403
    assert api.get("/plans", headers={"X-API-Key": "gg_not-a-key"}).status_code == 401
    assert api.post("/plans", json={"name": "x", "parent": VILLAGE},
                    headers={"X-API-Key": keys["viewer"]}).status_code == 403
    assert api.post("/plans/1/publish").status_code == 401
    page = api.get("/plan")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/app/plan.js" in page.text
    paths = api.get("/openapi.json").json()["paths"]
    assert "/plans/{plan_id}/edit" in paths and "/plan" not in paths
    assert api.get("/plans", headers=zhang).status_code == 200


# --- opening ----------------------------------------------------------------------------------------


def test_opening_a_village_gives_its_blocks_once_with_sums_and_no_address(api, zhang, sample):
    plan = new_plan(api, zhang)
    assert plan["plan"]["author"] == "网格办张三" and plan["plan"]["status"] == "draft"
    assert plan["plan"]["parent_name"] == "前垵村" and plan["level"] == "grid2"
    blocks = blocks_frame(plan)
    assert {k for f in plan["blocks"]["features"] for k in f["properties"]} == {
        "block_id", "addresses", "households", "population", "units"}
    # every block's households, and every grid's, are those of an exact spatial join
    assert blocks.set_index("block_id")["households"].equals(block_households(plan, sample).rename("households"))
    grid2 = sample.grids[(sample.grids["level"] == "grid2") & sample.grids["code"].str.startswith(VILLAGE)]
    joined = gpd.sjoin(sample.addresses[["households", "geometry"]], grid2[["code", "geometry"]], predicate="within")
    assert figures(plan) == joined.groupby("code")["households"].sum().to_dict()
    # the blocks tile the village (up to the 1e-6° the coordinates are rounded to), and the page is
    # told which grid each is in
    village = sample.grids.loc[sample.grids["code"] == VILLAGE].geometry.iloc[0]
    assert shapely.union_all(blocks.geometry.array).symmetric_difference(village).area < 1e-6 * village.length
    assert set(plan["assignment"]) == set(blocks["block_id"]) and set(plan["assignment"].values()) == set(grid2["code"])
    assert {f["properties"]["code"] for f in plan["published"]["features"]} == set(grid2["code"])
    listed = api.get("/plans", headers=zhang).json()["plans"]
    assert [p["authors"] for p in listed if p["id"] == plan["plan"]["id"]] == [["网格办张三"]]
    # opening it again gives the same state, without blocks moving
    again = api.get(f"/plans/{plan['plan']['id']}", headers=zhang).json()
    assert again["assignment"] == plan["assignment"] and again["revision"] == plan["revision"]


def test_a_new_plan_is_at_its_location_and_a_level_of_plots_is_refused(api, zhang):
    r = api.post("/plans", json={"name": "测试方案", "parent": VILLAGE}, headers=zhang)
    assert r.status_code == 201
    assert r.headers["location"].endswith(f"/plans/{r.json()['plan']['id']}")
    assert api.get(r.headers["location"], headers=zhang).json()["plan"] == r.json()["plan"]
    # level-3 grids are plots inside the level-2 ones, not painted from the road blocks: a 422
    # with the reason in both languages (it was a 500 before), and no plan left behind
    before = len(api.get("/plans", headers=zhang).json()["plans"])
    for parent in (VILLAGE, PARK_VILLAGE):
        refused = api.post("/plans", json={"name": "地块", "parent": parent, "level": "grid3"}, headers=zhang)
        assert refused.status_code == 422 and refused.json()["reason"] == "level_not_full", refused.text
        assert "地块" in refused.json()["message_zh"] and "plots" in refused.json()["message_en"]
    assert len(api.get("/plans", headers=zhang).json()["plans"]) == before


def test_a_suggested_start_is_gridgeos_division_saved_in_the_plan(api, zhang, reference, store_path):
    plan = new_plan(api, zhang, start="suggested")
    expected = gridgeo.plan.suggest_division(reference)
    assert plan["assignment"] == expected.assignment.to_dict()
    assert figures(plan) == dict(zip(expected.units["code"], gridgeo.plan.impact(expected)["households"]))
    with gridgeo.store.open(store_path) as store:
        stored = store.plan(plan["plan"]["id"]).read()
    assert sorted(stored.loc[stored["level"] == "grid2", "code"]) == sorted(expected.units["code"])
    assert plan["impact"]["summary"]["within"] == int((gridgeo.plan.impact(expected)["band"] == "within").sum())


# --- edits --------------------------------------------------------------------------------------


def test_painting_a_block_moves_exactly_its_households(api, zhang, sample, reference):
    plan = new_plan(api, zhang)
    graph = block_graph(plan)
    source, target = sorted(set(plan["assignment"].values()))[:2]
    block = neighbour_block(graph, plan["assignment"], source, target)
    r = edit(api, zhang, plan, plan, op="reassign", blocks=[block], to=target)
    assert r.status_code == 200, r.text
    after = r.json()
    moved = int(block_households(plan, sample)[block])
    assert moved > 0
    assert figures(after)[source] == figures(plan)[source] - moved
    assert figures(after)[target] == figures(plan)[target] + moved
    assert after["assignment"][block] == target and after["log"]["edit"] == "reassign"
    # the service passes gridgeo.plan's own numbers through, every figure of every grid
    expected = gridgeo.plan.impact(gridgeo.plan.reassign(reference, [block], target))
    for column in ("households", "population", "units", "stations", "pieces", "band"):
        assert figures(after, column) == dict(zip(expected["code"], expected[column].astype(object)))
    # nothing is stored by an edit
    assert api.get(f"/plans/{plan['plan']['id']}", headers=zhang).json()["assignment"] == plan["assignment"]


def test_an_edit_gridgeo_refuses_is_a_422_with_its_message_and_changes_nothing(api, zhang, store_path):
    plan = new_plan(api, zhang)
    graph = block_graph(plan)
    codes = sorted(set(plan["assignment"].values()))
    far = next((b, c) for b, g in plan["assignment"].items() for c in codes
               if g != c and not any(plan["assignment"][n] == c for n in graph.neighbors(b))
               and not any(plan["assignment"][m] == c for n in graph.neighbors(b) for m in graph.neighbors(n)))
    r = edit(api, zhang, plan, plan, op="reassign", blocks=[far[0]], to=far[1])
    assert r.status_code == 422
    problem = r.json()
    assert problem["reason"] == "not_neighbours" and far[0] in problem["blocks"]
    assert "不相邻" in problem["message_zh"] and far[1] in problem["detail"]
    assert edit(api, zhang, plan, plan, op="merge", codes=[codes[0]]).status_code == 422
    assert edit(api, zhang, plan, plan, op="split", to=codes[0], line={"type": "Point", "coordinates": [0, 0]}
                ).status_code == 422
    odd = {**plan, "assignment": {**plan["assignment"], "no-such-block": codes[0]}}
    assert edit(api, zhang, plan, odd, op="renumber").status_code == 422
    with gridgeo.store.open(store_path) as store:
        assert store.plan(plan["plan"]["id"]).revision == plan["revision"]


def test_split_along_a_line_and_merge_back(api, zhang, reference):
    plan = new_plan(api, zhang)
    code = sorted(set(plan["assignment"].values()))[0]
    grid = reference.units.loc[reference.units["code"] == code].geometry.iloc[0]
    x = grid.centroid.x
    line = shapely.LineString([(x, grid.bounds[1] - 0.01), (x, grid.bounds[3] + 0.01)])
    r = edit(api, zhang, plan, plan, op="split", to=code, line=json.loads(shapely.to_geojson(line)))
    assert r.status_code == 200, r.text
    split = r.json()
    new = split["log"]["new"]
    assert len(new) == 1 and len(split["units"]) == len(plan["units"]) + 1
    expected = gridgeo.plan.split(reference, code, line)
    assert split["assignment"] == expected.assignment.to_dict()
    assert figures(split)[code] + figures(split)[new[0]] == figures(plan)[code]
    assert {f["properties"]["code"] for f in split["grids"]["features"]} == set(figures(split))
    merged = edit(api, zhang, plan, split, op="merge", codes=[code, new[0]], to=code).json()
    assert merged["assignment"] == plan["assignment"] and figures(merged) == figures(plan)


def test_a_grid_cut_in_two_is_flagged_at_once(api, zhang):
    plan = new_plan(api, zhang)
    graph = block_graph(plan)
    assignment = plan["assignment"]
    for block, source in sorted(assignment.items()):
        mine = [b for b, g in assignment.items() if g == source]
        pieces = nx.number_connected_components(graph.subgraph([b for b in mine if b != block]))
        targets = sorted({assignment[n] for n in graph.neighbors(block)} - {source})
        if pieces > 1 and targets:
            break
    else:
        raise AssertionError("no block cuts its grid in two")
    after = edit(api, zhang, plan, plan, op="reassign", blocks=[block], to=targets[0]).json()
    row = next(g for g in after["impact"]["grids"] if g["code"] == source)
    assert row["contiguous"] is False and row["pieces"] == pieces
    assert after["impact"]["summary"]["non_contiguous"] == [source]


def test_the_diff_and_its_from_to_table_are_the_crosstab_of_assignments(api, zhang, sample):
    plan = new_plan(api, zhang)
    graph = block_graph(plan)
    pairs = grid_pairs(graph, plan["assignment"])
    first = pairs[0]
    second = next(p for p in pairs if p[0] not in first)
    state = plan
    for source, target in (first, second):
        block = neighbour_block(graph, state["assignment"], source, target)
        state = edit(api, zhang, plan, state, op="reassign", blocks=[block], to=target).json()
    r = api.post(f"/plans/{plan['plan']['id']}/diff", json=working(state), headers=zhang)
    assert r.status_code == 200
    diff = r.json()
    households = block_households(plan, sample)
    table = pd.DataFrame({"from_code": pd.Series(plan["assignment"]), "to_code": pd.Series(state["assignment"]),
                          "households": households})
    table = table[table["from_code"] != table["to_code"]]
    expected = table.groupby(["from_code", "to_code"])["households"].sum().to_dict()
    moves = {(f["properties"]["from_code"], f["properties"]["to_code"]): f["properties"]["households"]
             for f in diff["moves"]["features"]}
    assert moves == expected
    assert diff["summary"]["households_moved"] == sum(expected.values())
    changes = {u["code"]: u["change"] for u in diff["units"]}
    assert {c for c, kind in changes.items() if kind == "reshaped"} == set(first) | set(second)
    assert {c for c, kind in changes.items() if kind == "unchanged"} == set(changes) - set(first) - set(second)
    assert api.get(f"/plans/{plan['plan']['id']}/diff", headers=zhang).json()["summary"]["households_moved"] == 0


# --- saving and publishing --------------------------------------------------------------------------


def test_a_stale_save_is_refused_naming_the_unit_and_who_changed_it(api, zhang, li, store_path):
    plan = new_plan(api, zhang, parent=PARK_VILLAGE)  # with level-3 plots, recoded when their block moves
    pid = plan["plan"]["id"]
    graph = block_graph(plan)
    codes = sorted(set(plan["assignment"].values()))
    first = edit(api, zhang, plan, plan, op="reassign", to=codes[0],
                 blocks=[neighbour_block(graph, plan["assignment"], codes[1], codes[0])]).json()
    saved = api.post(f"/plans/{pid}/save", headers=zhang, json={
        **working(first), "base": plan["assignment"], "base_revision": plan["revision"], "message": "张三的调整"})
    assert saved.status_code == 200, saved.text
    saved = saved.json()
    assert saved["revision"] > plan["revision"] and saved["assignment"] == first["assignment"]
    with gridgeo.store.open(store_path) as store:
        before = store.plan(pid).read()
        history = store.plan(pid).history()
    assert history["author"].iloc[-1] == "网格办张三" and history["message"].iloc[-1] == "张三的调整"
    # 李四 opened the plan before 张三 saved, and changes one of the same grids
    second = edit(api, li, plan, plan, op="reassign", to=codes[1],
                  blocks=[neighbour_block(graph, plan["assignment"], codes[0], codes[1])]).json()
    stale = api.post(f"/plans/{pid}/save", headers=li, json={
        **working(second), "base": plan["assignment"], "base_revision": plan["revision"]})
    assert stale.status_code == 409
    problem = stale.json()
    assert "网格办张三" in problem["detail"] and {c["author"] for c in problem["conflicts"]} == {"网格办张三"}
    assert {c["code"] for c in problem["conflicts"]} <= {codes[0], codes[1]}
    with gridgeo.store.open(store_path) as store:
        after = store.plan(pid).read()
        assert store.plan(pid).revision == saved["revision"]
    assert after.drop(columns="geometry").equals(before.drop(columns="geometry"))
    assert bool(np.all(shapely.equals(after.geometry.array, before.geometry.array)))


def test_saves_of_different_grids_both_keep_their_work(api, zhang, li):
    plan = new_plan(api, zhang)
    pid = plan["plan"]["id"]
    graph = block_graph(plan)
    pairs = grid_pairs(graph, plan["assignment"])
    (p, q), (r_, s) = next((e, f) for e in pairs for f in pairs if not set(e) & set(f))
    mine = edit(api, zhang, plan, plan, op="reassign", to=q,
                blocks=[neighbour_block(graph, plan["assignment"], p, q)]).json()
    theirs = edit(api, li, plan, plan, op="reassign", to=s,
                  blocks=[neighbour_block(graph, plan["assignment"], r_, s)]).json()
    base = {"base": plan["assignment"], "base_revision": plan["revision"]}
    assert api.post(f"/plans/{pid}/save", headers=zhang, json={**working(mine), **base}).status_code == 200
    both = api.post(f"/plans/{pid}/save", headers=li, json={**working(theirs), **base})
    assert both.status_code == 200, both.text
    merged = both.json()["assignment"]
    for block in plan["assignment"]:
        expected = {mine["assignment"][block], theirs["assignment"][block]} - {plan["assignment"][block]}
        assert merged[block] == (expected.pop() if expected else plan["assignment"][block])


def test_exports_of_the_working_state_and_of_the_saved_plan(api, zhang, reference, tmp_path):
    plan = new_plan(api, zhang)
    pid = plan["plan"]["id"]
    graph = block_graph(plan)
    a, b = sorted(set(plan["assignment"].values()))[:2]
    state = edit(api, zhang, plan, plan, op="reassign", to=b,
                 blocks=[neighbour_block(graph, plan["assignment"], a, b)]).json()
    csv = api.post(f"/plans/{pid}/export?format=csv", json=working(state), headers=zhang)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.content.startswith("\ufeff".encode())  # Excel reads the Chinese names right
    table = pd.read_csv(io.BytesIO(csv.content), dtype=str, encoding="utf-8-sig")
    assert dict(zip(table["block_id"], table["grid"])) == state["assignment"]
    gpkg = api.get(f"/plans/{pid}/export?format=gpkg", headers=zhang)
    assert "attachment" in gpkg.headers["content-disposition"]
    path = tmp_path / "plan.gpkg"
    path.write_bytes(gpkg.content)
    assert [name for name, _ in pyogrio.list_layers(path)] == ["grids", "blocks"]
    grids = gpd.read_file(path, layer="grids")
    saved = grids[grids["level"] == "grid2"].set_index("code").geometry
    published = reference.units.set_index("code").geometry
    assert bool(np.all(shapely.equals(saved.loc[published.index].array, published.array)))
    geojson = api.post(f"/plans/{pid}/export?format=geojson", json=working(state), headers=zhang)
    frame = gpd.read_file(io.BytesIO(geojson.content))
    grid2 = frame[frame["level"] == "grid2"].set_index("code")
    assert grid2.loc[b].geometry.area > published.loc[b].area


def test_publishing_shows_the_new_grids_in_collections_figures_and_tiles(api, zhang, wang, sample):
    import morecantile

    plan = new_plan(api, zhang, parent=PUBLISHED_VILLAGE)
    pid = plan["plan"]["id"]
    graph = block_graph(plan)
    a, b = sorted(set(plan["assignment"].values()))[:2]
    block = neighbour_block(graph, plan["assignment"], a, b)
    state = edit(api, zhang, plan, plan, op="reassign", to=b, blocks=[block]).json()
    version = api.get("/health").json()["data_version"]
    assert api.get(f"/stats/unit/{b}").json()["figures"]["households"] == figures(plan)[b]
    tile = morecantile.tms.get("WebMercatorQuad").tile(*shapely.centroid(
        blocks_frame(plan).set_index("block_id").geometry[block]).coords[0], 16)
    api.get(f"/tiles/grid2/{tile.z}/{tile.x}/{tile.y}.mvt")  # cached before the publish
    saved = api.post(f"/plans/{pid}/save", headers=zhang, json={
        **working(state), "base": plan["assignment"], "base_revision": plan["revision"]}).json()
    report = reviewed(api, zhang, wang, pid)
    assert api.get("/health").json()["data_version"] == version  # approved is not published
    r = api.post(f"/plans/{pid}/publish", headers=wang, json={"message": "测试发布",
                                                               "acknowledge": report["version"]})
    assert r.status_code == 200, r.text
    assert r.json()["data_version"] > version and api.get("/health").json()["data_version"] > version
    assert api.get(f"/plans/{pid}", headers=zhang).json()["plan"]["status"] == "published"
    # the one map's sources show the new boundary at once
    items = api.get("/collections/grid2/items", params={"parent": f"{PUBLISHED_VILLAGE}01", "limit": 100}).json()
    features = {f["properties"]["code"]: shapely.geometry.shape(f["geometry"]) for f in items["features"]}
    inside = shapely.Point(*blocks_frame(plan).set_index("block_id").geometry[block].representative_point().coords[0])
    assert features[b].covers(inside) and not features[a].covers(inside)
    grid = next(f for f in saved["grids"]["features"] if f["properties"]["code"] == b)
    assert features[b].symmetric_difference(shapely.geometry.shape(grid["geometry"])).area < 1e-6 * features[b].length
    assert api.get(f"/stats/unit/{b}").json()["figures"]["households"] == figures(state)[b]
    decoded = mapbox_vector_tile.decode(api.get(f"/tiles/grid2/{tile.z}/{tile.x}/{tile.y}.mvt").content)
    households = {f["properties"]["code"]: f["properties"]["households"] for f in decoded["grid2"]["features"]}
    assert households[b] == figures(state)[b]
    # a published plan is read only
    assert api.post(f"/plans/{pid}/save", headers=zhang, json={
        **working(plan), "base": state["assignment"], "base_revision": saved["revision"]}).status_code == 409


def test_a_plan_that_fails_validation_is_neither_approved_nor_published_422(api, zhang, wang, keys, store_path):
    plan = new_plan(api, zhang)
    pid = plan["plan"]["id"]
    with gridgeo.store.open(store_path) as store:  # a unit shrunk by hand, outside the workbench
        units = store.plan(pid).read().iloc[:1]
        metric = gridgeo.crs.metric_crs(units)
        shrunk = units.geometry.to_crs(metric).buffer(-30).to_crs(units.crs)
        store.plan(pid).save(units.assign(geometry=shrunk), author="网格办李四")
    with gridgeo.store.open(store_path) as store:
        version = store.version
        expected = store.plan(pid).validate()  # what the store's publish would refuse
    expected = expected[expected["severity"] == "error"]
    assert len(expected)
    assert api.post(f"/plans/{pid}/submit", headers=zhang).status_code == 200
    report = api.get(f"/plans/{pid}/report", headers=wang).json()
    for step in ("approve", "publish"):
        r = api.post(f"/plans/{pid}/{step}", headers=wang, json={"acknowledge": report["version"]})
        if step == "publish":  # not approved: a publish is refused before any report
            assert r.status_code == 409 and "approved" in r.json()["detail"]
            continue
        assert r.status_code == 422
        problem = r.json()
        assert problem["title"] == "ReportHasErrors" and problem["errors"]
        assert problem["report"]["version"] == report["version"]
        assert all(e["severity"] == "error" and e["message_zh"] and e["message_en"] for e in problem["errors"])
        assert sorted((e["code"], e["kind"]) for e in problem["errors"]) == sorted(zip(expected["code"],
                                                                                      expected["kind"]))
        assert any(units["code"].iloc[0].startswith(e["code"]) for e in problem["errors"])  # the unit or its parent
    with gridgeo.store.open(store_path) as store:
        assert store.version == version and store.plan(pid).status == "submitted"
        # the store's own publish still refuses it, whatever calls it
        with pytest.raises(gridgeo.store.PublishError):
            store.plan(pid).publish(author="审核员王五")
        assert store.version == version


def test_a_save_that_changes_nothing_writes_nothing_and_a_rename_is_saved(api, zhang, store_path):
    plan = new_plan(api, zhang)
    pid = plan["plan"]["id"]
    with gridgeo.store.open(store_path) as store:
        before = (store.revision, len(store.revisions()), len(store.plan(pid).history()))
    same = api.post(f"/plans/{pid}/save", headers=zhang, json={
        **working(plan), "base": plan["assignment"], "base_revision": plan["revision"]})
    assert same.status_code == 200, same.text
    assert same.json()["saved"] is False and same.json()["revision"] == plan["revision"]
    with gridgeo.store.open(store_path) as store:
        assert (store.revision, len(store.revisions()), len(store.plan(pid).history())) == before

    # a name changed on the page, and nothing else: saved, as the page sends it (with the names it opened)
    code = plan["units"][0]["code"]
    renamed = edit(api, zhang, plan, plan, op="rename", to=code, name="  东区网格 ")
    assert renamed.status_code == 200, renamed.text
    renamed = renamed.json()
    assert {u["code"]: u["name"] for u in renamed["units"]}[code] == "东区网格"
    assert renamed["log"]["edit"] == "rename" and renamed["assignment"] == plan["assignment"]
    assert edit(api, zhang, plan, plan, op="rename", to=code, name=" ").json()["reason"] == "empty_name"
    saved = api.post(f"/plans/{pid}/save", headers=zhang, json={
        **working(renamed), "base": plan["assignment"], "base_revision": plan["revision"],
        "base_names": working(plan)["names"]})
    assert saved.status_code == 200 and saved.json()["saved"] is True
    assert saved.json()["revision"] > plan["revision"]
    with gridgeo.store.open(store_path) as store:
        units = store.plan(pid).read().set_index("code")
        history = store.plan(pid).history()
    assert units.at[code, "name"] == "东区网格" and units.at[code, "author"] == "网格办张三"
    assert (units.drop(index=code)["revision"] == plan["revision"]).all()  # only the renamed grid was written
    assert history["action"].iloc[-1] == "save" and history["codes"].iloc[-1] == code
    reopened = api.get(f"/plans/{pid}", headers=zhang).json()
    assert {u["code"]: u["name"] for u in reopened["units"]}[code] == "东区网格"
    # a client that does not send the names it started from: the plan's names are the base
    other = plan["units"][1]["code"]
    names = {**working(reopened)["names"], other: "西区网格"}
    again = api.post(f"/plans/{pid}/save", headers=zhang, json={
        "assignment": reopened["assignment"], "names": names, "base": reopened["assignment"],
        "base_revision": reopened["revision"]}).json()
    assert again["saved"] is True and {u["code"]: u["name"] for u in again["units"]}[other] == "西区网格"
    # and saving that state once more writes nothing
    last = api.post(f"/plans/{pid}/save", headers=zhang, json={
        "assignment": again["assignment"], "names": names, "base": again["assignment"],
        "base_revision": again["revision"], "base_names": names}).json()
    assert last["saved"] is False and last["revision"] == again["revision"]


def test_blocks_erased_into_the_holding_pen_are_painted_back_and_a_save_with_any_left_is_refused(
        api, zhang, store_path):
    plan = new_plan(api, zhang)
    pid = plan["plan"]["id"]
    block, grid = sorted(plan["assignment"].items())[3]
    erased = edit(api, zhang, plan, plan, op="unassign", blocks=[block])
    assert erased.status_code == 200, erased.text
    erased = erased.json()
    assert erased["assignment"][block] == "" and erased["log"]["edit"] == "unassign"
    assert {b: g for b, g in erased["assignment"].items() if b != block} == \
        {b: g for b, g in plan["assignment"].items() if b != block}
    # the grid's figures lose the block's households, and no grid holds it
    hh = {g["code"]: g["households"] for g in plan["impact"]["grids"]}
    hh_after = {g["code"]: g["households"] for g in erased["impact"]["grids"]}
    block_hh = next(f["properties"]["households"] for f in plan["blocks"]["features"]
                    if f["properties"]["block_id"] == block)
    assert hh_after[grid] == hh[grid] - block_hh and sum(hh_after.values()) == sum(hh.values()) - block_hh
    # a save with a block in the pen is refused, naming it, and the store is left byte-identical
    before = Path(store_path).read_bytes()
    refused = api.post(f"/plans/{pid}/save", headers=zhang, json={
        **working(erased), "base": plan["assignment"], "base_revision": plan["revision"]})
    assert refused.status_code == 422 and refused.json()["reason"] == "blocks_unassigned"
    assert refused.json()["blocks"] == [block] and "待分配区" in refused.json()["message_zh"]
    assert Path(store_path).read_bytes() == before
    # painted back into its grid: the plan is the plan it was
    back = edit(api, zhang, plan, erased, op="reassign", blocks=[block], to=grid).json()
    assert back["assignment"] == plan["assignment"]
