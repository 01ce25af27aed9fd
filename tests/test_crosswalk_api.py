"""The boundary set 警格 over HTTP: its collection, its tiles, the crosswalk and its workbook.

References are independent of the service: the library's own
:func:`gridgeo.crosswalk.crosswalk` on the sample, and a plain geopandas overlay in
metres with the addresses joined to both layers (``gpd.sjoin``), as
tests/test_crosswalk.py computes it; the workbook read back with openpyxl; GDAL as
an OGC API - Features client of a real ``gridgeo serve``.
"""

from __future__ import annotations

import io
import json
import subprocess

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely

import gridgeo
from gridgeo import crs as gcrs

SET = "警格"


@pytest.fixture(scope="module")
def reference(sample):
    """Pieces of the sample's grid2 and precincts by geopandas alone: areas in metres, and the
    households of the addresses inside both (each address joined to each layer)."""
    metric = gcrs.metric_crs(sample.level("grid2"))
    grids = sample.level("grid2").to_crs(metric)[["code", "geometry"]]
    other = sample.precincts.to_crs(metric)[["precinct_id", "geometry"]]
    pieces = gpd.overlay(grids, other, how="intersection", keep_geom_type=True)
    pieces["area"] = pieces.area
    pieces = pieces.groupby(["code", "precinct_id"])["area"].sum()
    pieces = pieces[pieces > 0.01].to_frame()
    pieces["share_of_grid"] = pieces["area"] / grids.set_index("code").area.reindex(
        pieces.index.get_level_values(0)).to_numpy()
    pieces["share_of_other"] = pieces["area"] / other.set_index("precinct_id").area.reindex(
        pieces.index.get_level_values(1)).to_numpy()
    addr = sample.addresses
    in_grid = gpd.sjoin(addr, sample.level("grid2")[["code", "geometry"]], predicate="within")["code"]
    in_other = gpd.sjoin(addr, sample.precincts[["precinct_id", "geometry"]], predicate="within")["precinct_id"]
    both = pd.DataFrame({"code": in_grid, "other": in_other}).dropna()
    households = addr.loc[both.index, "households"].groupby([both["code"], both["other"]]).sum()
    pieces["households"] = households.reindex(pieces.index).fillna(0).astype(int).to_numpy()
    pieces.index.names = ["code", "other"]
    return pieces


@pytest.fixture(scope="module")
def library(sample):
    return gridgeo.crosswalk(sample.grids, sample.precincts, other_id="precinct_id", addresses=sample.addresses)


def _rows(client, headers=None, **params):
    r = client.get("/crosswalk", params={"boundaries": SET, **params}, headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_crosswalk_equals_the_library_and_an_overlay(client, api_keys, reference, library, sample):
    body = _rows(client, {"X-API-Key": api_keys["viewer"]}, level="grid2")
    assert body["boundaries"] == SET and body["level"] == "grid2" and body["min_count"] is None
    got = pd.DataFrame(body["rows"]).set_index(["code", "other"]).sort_index()
    # the library, row for row
    lib = library.set_index(["code", "other"]).sort_index()
    assert list(got.index) == list(lib.index)
    for column in ("area_m2", "share_of_grid", "share_of_other"):
        np.testing.assert_allclose(got[column], lib[column], rtol=1e-6, atol=1e-6)
    for column in ("addresses", "households", "population", "sliver", "main_of_grid", "main_of_other"):
        assert got[column].tolist() == lib[column].tolist(), column
    # an independent overlay: the same pieces, areas and shares, the households of the addresses in both
    assert set(got.index) == set(reference.index)
    ref = reference.reindex(got.index)
    np.testing.assert_allclose(got["area_m2"], ref["area"], rtol=1e-6)
    np.testing.assert_allclose(got["share_of_grid"], ref["share_of_grid"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["share_of_other"], ref["share_of_other"], rtol=1e-5, atol=1e-6)
    assert got["households"].tolist() == ref["households"].tolist()
    assert int(got["households"].sum()) == int(sample.addresses["households"].sum())
    # the names people read
    names = sample.precincts.set_index("precinct_id")["name"]
    assert (got["other_name"] == names.reindex(got.index.get_level_values(1)).to_numpy()).all()
    grid_names = sample.grids.set_index("code")["name"]
    assert (got["grid_name"] == grid_names.reindex(got.index.get_level_values(0)).to_numpy()).all()


def test_one_grids_pieces_are_the_precincts_it_falls_in(client, api_keys, library):
    split = library.groupby("code")["other"].count()
    code = split[split > 1].index[0]  # a grid two or more precincts cut
    body = _rows(client, {"X-API-Key": api_keys["viewer"]}, code=code)
    assert {r["other"] for r in body["rows"]} == set(library.loc[library["code"] == code, "other"])
    assert sum(r["share_of_grid"] for r in body["rows"]) == pytest.approx(1.0, abs=1e-5)


def test_the_public_sees_piece_counts_under_the_minimum_count(client, library):
    body = _rows(client)
    assert body["min_count"] == 10
    got = pd.DataFrame(body["rows"])
    assert len(got) == len(library)
    shown = got["households"].dropna()
    assert ((shown == 0) | (shown >= 10)).all() and got["suppressed"].any()
    # what is shown is exact; what a grid holds outside its shown pieces is never a small count
    lib = library.set_index(["code", "other"])
    for r in got[got["households"].notna()].itertuples():
        assert r.households == lib.loc[(r.code, r.other), "households"]
    withheld = got.groupby("code")["suppressed"].agg(["all", "any"])
    assert (withheld["all"] == withheld["any"]).all()  # a grid's pieces are withheld together
    small = lib[(lib["households"] > 0) & (lib["households"] < 10)].reset_index()["code"]
    assert got.loc[got["code"].isin(small), "households"].isna().all()
    # areas and shares count nobody: always shown
    assert got["area_m2"].notna().all() and got["share_of_grid"].notna().all()


def test_the_misalignment_is_located_and_for_viewers(client, api_keys, sample):
    r = client.get("/crosswalk/misalignment", params={"boundaries": SET})
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    r = client.get("/crosswalk/misalignment", params={"boundaries": SET}, headers={"X-API-Key": api_keys["viewer"]})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = gridgeo.crosswalk.misalignment(sample.grids, sample.precincts, other_id="precinct_id",
                                              addresses=sample.addresses)
    assert len(body["features"]) == len(expected) > 0
    assert [f["properties"]["kind"] for f in body["features"]] == expected["kind"].tolist()
    assert [f["properties"]["households"] for f in body["features"]] == expected["households"].tolist()
    first = body["features"][0]
    assert first["properties"]["message_zh"] and first["properties"]["message_en"]
    assert "Snap" in " ".join(f["properties"]["message_en"] for f in body["features"])  # the suggestion
    geom = shapely.geometry.shape(first["geometry"])
    assert geom.distance(expected.geometry.iloc[0]) < 1e-6


def test_the_workbook_equals_the_json(client, api_keys):
    key = {"X-API-Key": api_keys["viewer"]}
    assert client.get("/crosswalk", params={"boundaries": SET, "format": "xlsx"}).status_code == 401
    r = client.get("/crosswalk", params={"boundaries": SET, "format": "xlsx"}, headers=key)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["crosswalk", "misalignment"]

    def sheet(name):
        rows = list(book[name].values)
        return pd.DataFrame(rows[1:], columns=rows[0])

    table = sheet("crosswalk")
    rows = pd.DataFrame(_rows(client, key)["rows"])
    assert list(table.columns) == list(rows.columns)
    assert table[["code", "other", "grid_name", "other_name"]].astype(str).values.tolist() == \
        rows[["code", "other", "grid_name", "other_name"]].astype(str).values.tolist()
    for column in ("households", "population", "addresses"):
        assert table[column].tolist() == rows[column].tolist()
    np.testing.assert_allclose(table["area_m2"].astype(float), rows["area_m2"], rtol=1e-6)
    report = sheet("misalignment")
    features = client.get("/crosswalk/misalignment", params={"boundaries": SET}, headers=key).json()["features"]
    assert report["kind"].tolist() == [f["properties"]["kind"] for f in features]
    assert report["message_zh"].tolist() == [f["properties"]["message_zh"] for f in features]


def test_unknown_sets_and_levels_are_problems(client):
    r = client.get("/crosswalk", params={"boundaries": "学区"})
    assert r.status_code == 404 and "学区" in r.json()["detail"]
    r = client.get("/crosswalk", params={"boundaries": SET, "level": "grid9"})
    assert r.status_code == 404


def test_the_set_is_a_collection_and_a_tile_layer(client, sample):
    listed = [c["id"] for c in client.get("/collections").json()["collections"]]
    assert SET in listed
    doc = client.get(f"/collections/{SET}").json()
    assert any(link["rel"] == "items" and "%E8%AD%A6%E6%A0%BC" in link["href"] for link in doc["links"])
    items = client.get(f"/collections/{SET}/items", params={"limit": 100}).json()
    assert items["numberMatched"] == len(sample.precincts)
    assert sorted(f["id"] for f in items["features"]) == sorted(sample.precincts["precinct_id"])
    one = sample.precincts.iloc[3]
    item = client.get(f"/collections/{SET}/items/{one['precinct_id']}").json()
    assert shapely.geometry.shape(item["geometry"]).equals_exact(
        shapely.force_2d(shapely.multipolygons([one.geometry]) if one.geometry.geom_type == "Polygon"
                         else one.geometry), 1e-9)
    picked = client.get(f"/collections/{SET}/items", params={"filter": f"name = '{one['name']}'"}).json()
    assert [f["id"] for f in picked["features"]] == [one["precinct_id"]]
    layers = [layer["id"] for layer in client.get("/tiles").json()["layers"]]
    assert "boundaries" in layers
    assert client.get("/tiles/boundaries.json").status_code == 200


def test_gdal_reads_the_set_as_an_ogc_client(server, sample):
    out = subprocess.run(["ogrinfo", "-ro", "-so", "-al", f"OAPIF:{server.url}/collections/{SET}"],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:  # an ogrinfo that cannot take one collection's URL: the landing page and the layer
        out = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{server.url}", SET],
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"Feature Count: {len(sample.precincts)}" in out.stdout
    import pyogrio

    frame = pyogrio.read_dataframe(f"OAPIF:{server.url}", layer=SET)
    assert sorted(frame["boundary_id"]) == sorted(sample.precincts["precinct_id"])


# --- the team of a grid ------------------------------------------------------------------------


def test_viewers_see_the_team_and_the_public_only_what_the_office_publishes(client, api_keys, sample, api_settings):
    roster = sample.roster()
    grid2 = sample.level("grid2")
    code = grid2["code"].iloc[5]
    r = client.get(f"/grids/{code}/team", headers={"X-API-Key": api_keys["viewer"]})
    assert r.status_code == 200, r.text
    members = r.json()["members"]
    mine = roster[roster["grid_code"] == code]
    assert sorted((m["role"], m["name"], m["phone"]) for m in members) == \
        sorted(map(tuple, mine[["role", "name", "phone"]].values.tolist()))
    assert members[0]["role"] == "网格长" and members[-1]["role"] == "警格民警"
    assert members[-1]["role_en"] == "police officer, deputy grid head"
    # each person's figures are the sums over every grid they serve (the police officer serves several),
    # counted here from the addresses and events alone
    expected = _person_figures(sample, roster, grid2)
    got = {(m["name"], m["phone"]): {k: m[k] for k in ("grids", "households", "events", "overdue")}
           for m in members}
    assert got == {(n, p): expected[(n, p)] for n, p in got}
    officer = next(m for m in members if m["role"] == "警格民警")
    assert officer["grids"] > 1 and officer["households"] > members[0]["households"]
    assert sum(m["overdue"] for m in members) > 0  # the check can fail: some overdue events are counted
    # the public: no name, no phone, whatever it asks
    public = client.get(f"/grids/{code}/team").json()
    assert public == {"code": code, "office": None}
    text = json.dumps(public, ensure_ascii=False)
    assert not any(name in text for name in mine["name"]) and not any(p in text for p in mine["phone"])
    assert client.get("/grids/350582999/team").status_code == 404


def _person_figures(sample, roster, grid2):
    """{(name, phone): grids, households, events, overdue} by plain pandas and geopandas: addresses and
    events joined to the level-2 grids ('within'), and an event overdue when it is open one second
    after the last report (not closed, or closed later) and that instant is past its report time plus
    its category's limit in hours (gridgeo.events' table of limits)."""
    from gridgeo.events import DEFAULT_TIME_LIMITS, OTHER_TIME_LIMIT

    units = grid2[["code", "geometry"]]
    households = gpd.sjoin(sample.addresses, units, predicate="within").groupby("code")["households"].sum()
    events = gpd.sjoin(sample.events, units, predicate="within")
    reported = pd.to_datetime(events["reported_at"])
    closed = pd.to_datetime(events["closed_at"])
    now = reported.max() + pd.Timedelta(seconds=1)
    hours = events["category"].map(DEFAULT_TIME_LIMITS).fillna(OTHER_TIME_LIMIT)
    late = (reported < now) & (closed.isna() | (closed >= now)) & (reported + pd.to_timedelta(hours, unit="h") < now)
    count, overdue = events.groupby("code").size(), events[late].groupby("code").size()
    out = {}
    for (name, phone), rows in roster.groupby(["name", "phone"]):
        codes = sorted(set(rows["grid_code"]))
        out[(name, phone)] = {"grids": len(codes),
                              "households": int(households.reindex(codes).fillna(0).sum()),
                              "events": int(count.reindex(codes).fillna(0).sum()),
                              "overdue": int(overdue.reindex(codes).fillna(0).sum())}
    return out


def test_the_office_chooses_what_the_public_sees_of_a_team(api_settings, sample):
    from fastapi.testclient import TestClient

    from api import create_app

    settings = api_settings.model_copy(update={"team_office": "内坑镇网格服务中心", "team_phone": "0595-85000000"})
    code = sample.level("grid2")["code"].iloc[0]
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        body = c.get(f"/grids/{code}/team").json()
    assert body == {"code": code, "office": {"name": "内坑镇网格服务中心", "phone": "0595-85000000"}}


def test_the_one_maps_staffing_comes_from_the_roster(client, api_keys, sample):
    """The figures the service keeps (gridgeo.derived) count the roster's full-time and part-time grid
    workers, counted here by code prefix, not the grids' bare ``workers`` column."""
    roster = sample.roster()
    workers = roster[roster["role"].isin(["专职网格员", "兼职网格员"])]["grid_code"].to_numpy(dtype=str)
    bare = sample.grids.set_index("code")["workers"]
    for level in ("grid2", "village"):
        body = client.get(f"/stats/{level}", headers={"X-API-Key": api_keys["viewer"]}).json()
        served = pd.DataFrame(body["units"]).set_index("code")
        expected = pd.Series({c: int(np.char.startswith(workers, c).sum()) for c in served.index})
        assert served["workers"].astype(int).to_dict() == expected.to_dict()
        np.testing.assert_allclose(served["households_per_worker"].astype(float),
                                   served["households"].astype(float) / expected.reindex(served.index),
                                   rtol=1e-5)  # the service writes 4 decimals
        if level == "grid2":  # the part-time workers make the difference
            assert (expected != bare.reindex(expected.index).astype(int)).any()
