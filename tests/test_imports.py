"""Uploads on the workbench's API (POST /imports): an office's file checked against
the store, re-checked with an edited mapping, and opened as draft plans.

The files are written the way offices write them (tests/office_files.py). What the
report says is checked against independent computations: the overlap's area with a
shapely intersection, the draft's grids against the drawn units by area. An upload
never publishes: the store's published data stay byte-identical.
"""

from __future__ import annotations

import io
import shutil
import zipfile

import geopandas as gpd
import numpy as np
import pytest
import shapely

import gridgeo.crs
import gridgeo.io
import gridgeo.store
from office_files import digest, grid_shapefile, station_table

VILLAGE = "350582106201"  # 前垵村: four level-2 grids


@pytest.fixture(scope="module")
def imports(sample_store, tmp_path_factory):
    from fastapi.testclient import TestClient

    from api import Settings, create_app
    from api.keys import KeyStore

    folder = tmp_path_factory.mktemp("imports")
    store = folder / "gridgeo.gpkg"
    shutil.copy(sample_store, store)
    keys = KeyStore(folder / "keys.json")
    planner, viewer = keys.add("网格办张三", "planner"), keys.add("领导", "viewer")
    settings = Settings(store=str(store), keys_file=str(folder / "keys.json"), imports_dir=str(folder / "uploads"))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.store = store
        client.planner = {"X-API-Key": planner}
        client.viewer = {"X-API-Key": viewer}
        yield client


@pytest.fixture(scope="module")
def drawn(sample):
    """One village's level-2 grids as its office redrew them: the first grid drawn 60 m
    over its neighbours (an overlap a load refuses)."""
    grid2 = sample.grids[(sample.grids["level"] == "grid2") & sample.grids["code"].str.startswith(VILLAGE)].copy()
    metric = gridgeo.crs.metric_crs(grid2)
    first = grid2.index[0]
    grid2.loc[first, "geometry"] = gpd.GeoSeries([grid2.loc[first, "geometry"]], crs=4490).to_crs(metric) \
        .buffer(60).to_crs(4490).iloc[0]
    return grid2.reset_index(drop=True)


def zipped(folder, shp) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for part in sorted(shp.parent.glob(shp.stem + ".*")):
            archive.write(part, arcname=f"{shp.stem}/{part.name}")
    return buffer.getvalue()


def test_an_upload_is_checked_and_changes_nothing(imports, drawn, tmp_path):
    shp = grid_shapefile(tmp_path, drawn, name="前垵村二级网格.shp")
    before = digest(imports.store)
    r = imports.post("/imports", files={"file": ("前垵村二级网格.zip", zipped(tmp_path, shp), "application/zip")},
                     headers=imports.planner)
    assert r.status_code == 201, r.text
    report = r.json()
    assert report["kind"] == "grids" and report["counts"] == {"grid2": 4}
    assert report["mapping"]["columns"] == {"code": "网格编码", "name": "网格名称", "parent": "上级编码",
                                            "level": "网格等级"}
    assert report["mapping"]["crs"].endswith("4527") and report["columns"] == ["网格编码", "网格名称", "上级编码",
                                                                             "网格等级"]
    assert not report["ok"] and report["can_open"]
    assert report["changes"] == [{"collection": "grid2", "published": 128, "in_file": 4, "replaced": 4, "kept": 4,
                                  "added": 0, "removed": 0, "parents": 1}]
    overlaps = [f for f in report["located"]["features"] if f["properties"]["kind"] == "overlap"]
    assert overlaps and all(f["properties"]["severity"] == "error" for f in overlaps)
    # the located overlap is where the drawn grids overlap: an independent intersection
    first = drawn.geometry.iloc[0]
    others = shapely.union_all(drawn.geometry.iloc[1:].to_numpy())
    truth = shapely.intersection(first, others)
    found = shapely.union_all([shapely.geometry.shape(f["geometry"]) for f in overlaps])
    metric = gridgeo.crs.metric_crs(drawn)
    area = gpd.GeoSeries([truth, found, shapely.intersection(truth, found)], crs=4490).to_crs(metric).area
    assert area[2] / area[0] > 0.98 and area[2] / area[1] > 0.98
    assert len(report["units"]["features"]) == 4
    assert digest(imports.store) == before
    again = imports.get(f"/imports/{report['id']}", headers=imports.planner).json()
    assert again["counts"] == report["counts"] and again["errors"] == report["errors"]


def test_a_draft_from_an_upload_opens_on_the_workbench_and_publishes_nothing(imports, drawn, tmp_path):
    shp = grid_shapefile(tmp_path, drawn, name="前垵村二级网格.shp")
    parts = [("file", (p.name, p.read_bytes(), "application/octet-stream"))
             for p in sorted(tmp_path.glob("前垵村二级网格.*"))]
    r = imports.post("/imports", files=parts, headers=imports.planner)  # the parts of a shapefile, not a zip
    assert r.status_code == 201, r.text
    upload = r.json()
    with gridgeo.store.open(imports.store) as store:
        version = store.version
    r = imports.post(f"/imports/{upload['id']}/plans", json={"name": "前垵村导入"}, headers=imports.planner)
    assert r.status_code == 201, r.text
    plans = r.json()["plans"]
    assert [(p["parent"], p["levels"], p["status"]) for p in plans] == [(VILLAGE, ["grid2"], "draft")]
    opened = imports.get(f"/plans/{plans[0]['id']}", headers=imports.planner)
    assert opened.status_code == 200, opened.text
    body = opened.json()
    grids = {f["properties"]["code"]: shapely.geometry.shape(f["geometry"]) for f in body["grids"]["features"]}
    assert set(grids) == set(drawn["code"])
    # each draft grid is its drawn grid laid on the village's blocks: nearly the same ground, and
    # where the first grid was drawn over its neighbours, they keep their blocks
    metric = gridgeo.crs.metric_crs(drawn)
    over = shapely.union_all(drawn.geometry.iloc[1:].to_numpy())
    for i, (code, drawn_geom) in enumerate(zip(drawn["code"], drawn.geometry)):
        own = shapely.difference(drawn_geom, over) if i == 0 else drawn_geom
        pair = gpd.GeoSeries([grids[code], own], crs=4490).to_crs(metric)
        shared = pair.iloc[0].intersection(pair.iloc[1]).area
        assert shared / pair.iloc[0].area > 0.95 and shared / pair.iloc[1].area > 0.8, code
    # the draft's grids tile the village (the overlap is gone), and nothing was published
    village = shapely.union_all(list(grids.values()))
    assert shapely.area(shapely.intersection(grids[drawn["code"][0]],
                                             shapely.union_all([g for c, g in grids.items()
                                                                if c != drawn["code"][0]]))) < 1e-10
    assert village.area > 0
    with gridgeo.store.open(imports.store) as store:
        assert store.version == version
        units = store.plan(plans[0]["id"]).read()
    # laid on the blocks, the file is the published grids again (no block is mostly under the
    # 60 m the first grid was drawn over): a save of nothing is not written
    published = store_grids(imports.store, drawn["code"])
    assert all(shapely.equals(grids[c], published[c]) for c in drawn["code"])
    assert [h["action"] for h in body["history"]] == ["create"] and units["revision"].nunique() == 1


def store_grids(path, codes) -> dict:
    with gridgeo.store.open(path) as store:
        found = store.read("grids", where={"code": list(codes)})
    return dict(zip(found["code"], found.geometry))


def test_an_edited_mapping_is_checked_again(imports, sample, tmp_path):
    grids = sample.grids[(sample.grids["level"] == "grid1") & sample.grids["code"].str.startswith(VILLAGE)]
    odd = gpd.GeoDataFrame({"DM": grids["code"].to_numpy(), "XM": grids["name"].to_numpy()},
                           geometry=grids.geometry.to_numpy(), crs=4490)
    data = odd.to_json(drop_id=True, ensure_ascii=False).encode("utf-8")
    r = imports.post("/imports", files={"file": ("一级网格.geojson", data, "application/geo+json")},
                     headers=imports.planner)
    assert r.status_code == 201
    first = r.json()
    assert not first["ok"] and not first["can_open"]
    assert any(p["kind"] == "missing_column" for p in first["problems"]) and "name" in first["targets"]
    r = imports.post(f"/imports/{first['id']}/check", json={"columns": {"name": "XM"}}, headers=imports.planner)
    second = r.json()
    assert r.status_code == 200 and second["ok"], second["problems"]
    assert second["mapping"]["columns"] == {"code": "DM", "name": "XM"} and second["counts"] == {"grid1": 1}


def test_a_station_sheet_is_checked_but_opens_no_plan(imports, sample, tmp_path):
    path = tmp_path / "站点.xlsx"
    station_table(sample.stations, "gcj02").to_excel(path, index=False)
    r = imports.post("/imports", files={"file": ("站点.xlsx", path.read_bytes(), "application/octet-stream")},
                     data={"crs": "wgs84"}, headers=imports.planner)
    report = r.json()
    assert r.status_code == 201 and report["kind"] == "stations" and not report["can_open"]
    assert any(p["kind"] == "offset" and "--crs gcj02" in p["message_en"] for p in report["problems"])
    r = imports.post(f"/imports/{report['id']}/plans", json={"name": "x"}, headers=imports.planner)
    assert r.status_code == 422 and "only grid files" in r.json()["detail"]


def test_a_precinct_file_is_checked_as_a_named_boundary_set(imports, sample, tmp_path):
    path = tmp_path / "派出所辖区.geojson"
    gridgeo.io.write(gridgeo.crs.convert(sample.precincts, "cgcs2000", "gcj02").rename(
        columns={"precinct_id": "警格编号", "name": "警格名称"}), path)
    before = digest(imports.store)
    # drawn on Amap and declared WGS84: the offset against the store's grids says so
    r = imports.post("/imports", files={"file": ("派出所辖区.geojson", path.read_bytes(), "application/geo+json")},
                     data={"kind": "boundaries", "boundary_set": "学区", "crs": "wgs84"}, headers=imports.planner)
    report = r.json()
    assert r.status_code == 201 and report["kind"] == "boundaries", report
    assert any(p["kind"] == "offset" and "--crs gcj02" in p["message_en"] for p in report["problems"])
    r = imports.post(f"/imports/{report['id']}/check", json={"kind": "boundaries", "boundary_set": "学区",
                                                              "crs": "gcj02"}, headers=imports.planner)
    report = r.json()
    assert r.status_code == 200 and not [p for p in report["problems"] if p["severity"] == "error"], report
    assert report["mapping"]["columns"]["boundary_id"] == "警格编号"
    assert digest(imports.store) == before  # an upload never publishes


def test_uploads_are_for_planners_and_parts_must_make_one_shapefile(imports):
    files = {"file": ("a.geojson", b"{}", "application/geo+json")}
    assert imports.post("/imports", files=files).status_code == 401
    assert imports.post("/imports", files=files, headers=imports.viewer).status_code == 403
    two = [("file", ("a.geojson", b"{}", "application/json")), ("file", ("b.csv", b"x,y\n", "text/csv"))]
    r = imports.post("/imports", files=two, headers=imports.planner)
    assert r.status_code == 422 and "one shapefile" in r.json()["detail"]
    assert imports.get("/imports/0123456789abcdef", headers=imports.planner).status_code == 404
    assert imports.get("/imports/..%2F..%2Fetc", headers=imports.planner).status_code == 404


def test_docstring_examples_run():
    import doctest

    import gridgeo.intake.drafts
    import gridgeo.plan.exchange

    for module in (gridgeo.intake.drafts, gridgeo.plan.exchange):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__


def test_lay_keeps_every_block_where_the_drawing_puts_most_of_it(sample):
    """plan.lay against a brute-force reference: each block's owner by the largest overlap."""
    import gridgeo.plan

    state = gridgeo.plan.start(sample.grids, VILLAGE, roads=sample.roads)
    metric = gridgeo.crs.metric_crs(state.units)
    moved = state.units.to_crs(metric)
    moved["geometry"] = moved.geometry.translate(40, -25)  # drawn 47 m off
    laid = gridgeo.plan.lay(state, moved.to_crs(4490), rest="unassign")
    blocks = state.blocks.to_crs(metric)
    for block_id, geom in zip(blocks["block_id"], blocks.geometry):
        shares = {c: geom.intersection(g).area / geom.area for c, g in zip(moved["code"], moved.geometry)}
        best = max(shares, key=shares.get)
        want = best if shares[best] >= 0.5 else ""
        assert laid.assignment[block_id] == want, block_id
    assert np.isclose(laid.attrs["laid"]["laid_m2"].sum(),
                      blocks.area[laid.assignment.reindex(blocks["block_id"]).ne("").to_numpy()].sum())
