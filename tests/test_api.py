"""The service in-process: OGC API Features, tiles, figures, coverage, assignment,
roles, and problem responses. Every number is checked against the library."""

import json
import subprocess
import sys

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely

import gridgeo
from gridgeo import stats


# --- the service itself ------------------------------------------------------------


def test_health_and_landing(client, sample):
    assert client.get("/health").json()["status"] == "ok"
    body = client.get("/").json()
    rels = {link["rel"] for link in body["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= rels
    layers = {layer["name"]: layer["features"] for layer in body["layers"]}
    assert layers["grid2"] == (sample.grids["level"] == "grid2").sum()
    html = client.get("/", headers={"accept": "text/html"}).text
    assert "<table>" in html and "grid2" in html


def test_library_imports_without_the_web_framework():
    code = ("import sys, gridgeo, gridgeo.schema, gridgeo.crs, gridgeo.io, gridgeo.sample, gridgeo.cli, "
            "gridgeo.assignment, gridgeo.stats, gridgeo.validation, gridgeo.store, gridgeo.tiles, "
            "gridgeo.coverage, gridgeo.network; "
            "bad = [m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- OGC API Features ----------------------------------------------------------------


def test_conformance_and_collections(client):
    conf = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    ids = [c["id"] for c in client.get("/collections").json()["collections"]]
    assert ids == ["town", "village", "grid1", "grid2", "grid3", "stations", "roads", "警格"]  # the sample's precincts
    grid2 = client.get("/collections/grid2").json()
    assert {link["rel"] for link in grid2["links"]} >= {"self", "items"}
    west, south, east, north = grid2["extent"]["spatial"]["bbox"][0]
    assert 118.3 < west < east < 118.6 and 24.7 < south < north < 24.9


def test_items_page_through_every_feature(client, sample):
    expected = set(sample.grids.loc[sample.grids["level"] == "grid2", "code"])
    seen, url = [], "/collections/grid2/items?limit=50"
    while url:
        page = client.get(url).json()
        assert page["numberMatched"] == len(expected)
        assert page["numberReturned"] == len(page["features"]) <= 50
        seen += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) and set(seen) == expected


def test_items_geometry_and_properties_match_the_sample(client, sample):
    code = sample.grids.loc[sample.grids["level"] == "grid2", "code"].iloc[5]
    feature = client.get(f"/collections/grid2/items/{code}").json()
    source = sample.grids.set_index("code").loc[code]
    assert feature["properties"]["name"] == source["name"]
    served = shapely.geometry.shape(feature["geometry"])
    assert shapely.symmetric_difference(served, source.geometry).area < 1e-12
    assert client.get("/collections/grid2/items/nonexistent").status_code == 404


def test_filters_and_bbox_against_an_independent_query(client, sample):
    g = sample.grids
    parent = g.loc[g["level"] == "grid1", "code"].iloc[3]
    body = client.get(f"/collections/grid2/items?parent={parent}&limit=1000").json()
    assert {f["id"] for f in body["features"]} == set(g.loc[g["parent"] == parent, "code"])
    box = (118.45, 24.78, 118.47, 24.80)
    body = client.get("/collections/grid2/items?limit=1000&bbox=" + ",".join(map(str, box))).json()
    grid2 = g[g["level"] == "grid2"]
    assert {f["id"] for f in body["features"]} == set(grid2.loc[grid2.intersects(shapely.box(*box)), "code"])
    kinds = client.get("/collections/stations/items?kind=grid2_station&limit=1000").json()
    assert kinds["numberMatched"] == (sample.stations["kind"] == "grid2_station").sum()


@pytest.mark.parametrize("crs, uri, expected", [
    ("http://www.opengis.net/def/crs/EPSG/0/4490", "http://www.opengis.net/def/crs/EPSG/0/4490",
     lambda lon, lat: (lat, lon)),
    ("gcj02", "urn:gridgeo:def:crs:gcj02", lambda lon, lat: tuple(float(v) for v in gridgeo.crs.wgs84_to_gcj02(lon, lat))),
    ("urn:gridgeo:def:crs:bd09", "urn:gridgeo:def:crs:bd09",
     lambda lon, lat: tuple(float(v) for v in gridgeo.crs.wgs84_to_bd09(lon, lat))),
])
def test_output_crs(client, sample, crs, uri, expected):
    station = sample.stations.iloc[0]
    body = client.get(f"/collections/stations/items/{station['station_id']}", params={"crs": crs})
    assert body.status_code == 200
    got = body.json()["geometry"]["coordinates"]
    want = expected(station.geometry.x, station.geometry.y)
    assert np.allclose(got, want, atol=2e-7)
    assert body.headers["content-crs"] == f"<{uri}>"  # every advertised CRS is a URI


@pytest.mark.parametrize("url, status", [
    ("/collections/grid2/items?limit=0", 400),
    ("/collections/grid2/items?limit=abc", 400),
    ("/collections/grid2/items?bbox=1,2,3", 400),
    ("/collections/grid2/items?bbox=3,2,1,0", 400),
    ("/collections/grid2/items?crs=EPSG:3857", 400),
    ("/collections/grid2/items?kind=x", 400),
    ("/collections/nowhere/items", 404),
    ("/stats/grid9", 404),
    ("/stats/grid2/breaks?field=name", 400),
    ("/tiles/grid2/30/0/0.mvt", 404),
    ("/tiles/grid2/3/9/0.mvt", 404),
    ("/coverage?minutes=7", 400),
])
def test_bad_parameters_get_a_problem_not_a_500(client, url, status):
    r = client.get(url)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == status and r.json()["detail"]


def test_limit_is_capped(client):
    from api.settings import Settings

    r = client.get("/collections/roads/items", params={"limit": 10**6})
    assert r.status_code == 200 and r.json()["numberReturned"] == min(Settings().max_limit, 10**6,
                                                                        r.json()["numberMatched"])


# --- roles and personal data --------------------------------------------------------------


def test_address_level_collections_need_a_role(client, api_keys, sample):
    for collection in ("addresses", "events"):
        r = client.get(f"/collections/{collection}/items")
        assert r.status_code == 401 and "viewer" in r.json()["detail"]
        assert "addr_id" not in r.text and "event_id" not in r.text
    r = client.get("/collections/addresses/items?limit=5", headers={"X-API-Key": api_keys["viewer"]})
    assert r.status_code == 200 and r.json()["numberMatched"] == len(sample.addresses)
    listed = [c["id"] for c in client.get("/collections", headers={"X-API-Key": api_keys["viewer"]}).json()
              ["collections"]]
    assert "addresses" in listed and "events" in listed
    assert client.get("/collections/events/items", headers={"Authorization": "Bearer wrong"}).status_code == 401


# --- figures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def library_figures(sample):
    return stats.figures(sample.grids, addresses=sample.addresses, events=sample.events, stations=sample.stations)


def test_stats_per_level_equal_the_library(client, library_figures):
    body = client.get("/stats/grid2").json()
    served = pd.DataFrame(body["units"]).set_index("code")
    lib = library_figures[library_figures["level"] == "grid2"]
    assert body["count"] == len(lib)
    for col in ("households", "population", "events", "stations"):
        assert (served[col].astype(int) == lib[col].astype(int).reindex(served.index)).all(), col
    assert "addr_id" not in json.dumps(body) and "address" not in served.columns


def test_unit_drill_down(client, sample, library_figures):
    grid2 = sample.grids[sample.grids["level"] == "grid2"].iloc[10]
    body = client.get(f"/stats/unit/{grid2['parent']}").json()
    assert [c["level"] for c in body["chain"]] == ["town", "village"]
    assert {c["code"] for c in body["children"]} == set(sample.grids.loc[sample.grids["parent"] == grid2["parent"],
                                                                         "code"])
    assert body["figures"]["households"] == int(library_figures.loc[grid2["parent"], "households"])
    assert sum(c["households"] for c in body["children"]) == body["figures"]["households"]
    village = sample.grids.set_index("code").geometry.loc[grid2["parent"]]
    assert body["bbox"] == pytest.approx(list(village.bounds), abs=1e-7)
    leaf = client.get(f"/stats/unit/{grid2['code']}").json()  # a unit without children
    assert leaf["children"] == [] and leaf["bbox"] == pytest.approx(list(grid2.geometry.bounds), abs=1e-7)
    assert client.get("/stats/unit/123").status_code == 404


def test_class_breaks_are_mapclassify(client, library_figures):
    import mapclassify

    body = client.get("/stats/grid2/breaks?field=households&k=5&scheme=natural_breaks").json()
    values = library_figures.loc[library_figures["level"] == "grid2", "households"].to_numpy(float)
    assert body["bins"][-1] == values.max()
    assert sum(body["counts"]) == len(values)
    q = client.get("/stats/grid2/breaks?field=households&k=4").json()
    assert np.allclose(q["bins"], mapclassify.Quantiles(values, k=4).bins)
    # Fisher-Jenks, computed with numpy loops by gridgeo: mapclassify's own answer
    fj = client.get("/stats/grid2/breaks?field=households&k=5&scheme=fisher_jenks").json()
    reference = mapclassify.FisherJenks(values, k=5)
    assert np.allclose(fj["bins"], reference.bins) and fj["counts"] == [int(c) for c in reference.counts]


def test_search_by_chinese_name_and_code(client, sample):
    village = sample.grids[sample.grids["level"] == "village"].iloc[0]
    found = client.get("/search", params={"q": village["name"]}).json()["results"]
    assert found[0]["code"] == village["code"]
    by_code = client.get("/search", params={"q": village["code"]}).json()["results"]
    assert by_code[0]["code"] == village["code"] and all(r["code"].startswith(village["code"]) for r in by_code)


def test_event_heat_is_an_aggregate(client, api_keys, sample):
    params = {"category": "fire", "from": "2025-03-01", "to": "2025-04-01"}
    ev = sample.events
    chosen = ev[(ev["category"] == "fire") & (ev["reported_at"] >= "2025-03-01") & (ev["reported_at"] < "2025-04-01")]
    for headers in ({}, {"X-API-Key": api_keys["viewer"]}):
        body = client.get("/events/heat", params=params, headers=headers).json()
        assert sum(c[2] for c in body["cells"]) == len(chosen) > 10  # the month's fires make blocks of >= 10
        assert set(body) == {"cell_m", "cells", "max", "min_count", "period", "withheld"}
    # anonymous: cells of the smallest public size at least, whole months, every cell at least k
    assert body["min_count"] is None and body["cell_m"] == 100
    public = client.get("/events/heat", params=params).json()
    assert public["min_count"] == 10 and public["cell_m"] == 250 and min(c[2] for c in public["cells"]) >= 10


# --- tiles -----------------------------------------------------------------------------------------


def test_tiles_decode_to_the_grids(client, sample):
    import morecantile

    tj = client.get("/tiles/grid2.json").json()
    assert tj["tilejson"] == "3.0.0" and tj["vector_layers"][0]["id"] == "grid2"
    assert "households" in tj["vector_layers"][0]["fields"]
    grid2 = sample.grids[sample.grids["level"] == "grid2"]
    centre = grid2.geometry.iloc[0].representative_point()
    tile = morecantile.tms.get("WebMercatorQuad").tile(centre.x, centre.y, 14)
    r = client.get(f"/tiles/grid2/{tile.z}/{tile.x}/{tile.y}.mvt")
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    decoded = mapbox_vector_tile.decode(r.content)["grid2"]["features"]
    codes = {f["properties"]["code"] for f in decoded}
    bounds = morecantile.tms.get("WebMercatorQuad").bounds(tile)
    assert codes == set(grid2.loc[grid2.intersects(shapely.box(*bounds)), "code"])
    assert client.get(f"/tiles/grid2/{tile.z}/{tile.x}/{tile.y}.mvt",
                      headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert client.get("/tiles/grid2/12/0/0.mvt").status_code == 204


@pytest.mark.parametrize("renderers", [1, 3])
def test_tiles_are_drawn_as_many_at_a_time_as_the_settings_say(api_settings, sample, monkeypatch, renderers):
    """GRIDGEO_TILE_RENDERERS bounds the tiles a worker draws at once: 24 first requests at the same
    time are drawn at most that many together (and as many when allowed), each equal to the tile set's
    own drawing of it."""
    import asyncio
    import threading
    import time

    import httpx
    import morecantile

    from api import create_app
    from api import derived as api_derived
    from gridgeo.tiles import TileSet

    tms = morecantile.tms.get("WebMercatorQuad")
    west, south, east, north = sample.grids.total_bounds
    addresses = list(tms.tiles(west, south, east, north, [15]))[:24]
    drawing, most, lock, draw = [0], [0], threading.Lock(), TileSet.tile

    def counted(self, *args, **kwargs):
        with lock:
            drawing[0] += 1
            most[0] = max(most[0], drawing[0])
        try:
            time.sleep(0.05)  # long enough for the others to arrive
            return draw(self, *args, **kwargs)
        finally:
            with lock:
                drawing[0] -= 1

    app = create_app(api_settings.model_copy(update={"tile_renderers": renderers}))
    tileset = api_derived.tiles(app.state.services)
    monkeypatch.setattr(TileSet, "tile", counted)

    async def fetch_all():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await asyncio.gather(*(c.get(f"/tiles/grid2/{t.z}/{t.x}/{t.y}.mvt") for t in addresses))

    done = {}  # in a thread of its own: a browser test's event loop may be running in this one
    runner = threading.Thread(target=lambda: done.update(answers=asyncio.run(fetch_all())))
    runner.start()
    runner.join(120)
    answers = done["answers"]
    assert most[0] == renderers
    for t, answer in zip(addresses, answers):
        assert answer.status_code in (200, 204)
        active = tileset._active(["grid2"], t.z, t.x, t.y)  # drawn again, not read from the cache
        assert answer.content == (tileset.render_sources(active, t.z, t.x, t.y) if active else b"")


def test_a_cached_tile_is_answered_as_it_was_rendered(client, sample):
    import morecantile

    from api.routes.tiles import _from_cache

    grid1 = sample.grids[sample.grids["level"] == "grid1"]
    point = grid1.geometry.iloc[-1].representative_point()
    full = morecantile.tms.get("WebMercatorQuad").tile(point.x, point.y, 15)
    for z, x, y, status in [(full.z, full.x, full.y, 200), (15, 0, 0, 204)]:  # a tile with units, an empty one
        rendered = client.get(f"/tiles/grid1/{z}/{x}/{y}.mvt")  # a miss: FastAPI's route renders it
        scope = {"method": "GET", "headers": [], "app": client.app,
                 "path_params": {"layer": "grid1", "z": str(z), "x": str(x), "y": str(y), "ext": "pbf"}}
        assert _from_cache(scope) is not None  # now the cache answers, before FastAPI's machinery
        cached = client.get(f"/tiles/grid1/{z}/{x}/{y}.pbf")
        assert rendered.status_code == cached.status_code == status
        assert cached.content == rendered.content and dict(cached.headers) == dict(rendered.headers)
        etag = {"If-None-Match": rendered.headers["etag"]}
        assert client.get(f"/tiles/grid1/{z}/{x}/{y + 1}.mvt", headers=etag).status_code != 304  # not its ETag
        fast = client.get(f"/tiles/grid1/{z}/{x}/{y}.mvt", headers=etag)
        assert fast.status_code == 304 and fast.content == b""
        assert {k: v for k, v in fast.headers.items() if k != "content-length"} == {
            k: v for k, v in rendered.headers.items() if k not in ("content-length", "content-type")}
    # what is not a plain tile address is FastAPI's to parse or refuse, as before
    assert client.get("/tiles/grid1/15/+0/0.mvt").status_code == 204
    for bad in ("/tiles/grid1/15/99999/0.mvt", "/tiles/grid9/15/0/0.mvt", "/tiles/grid1/15/0/0.png",
                "/tiles/grid1/15/x/0.mvt"):
        assert client.get(bad).status_code in (400, 404), bad


def test_event_tiles_carry_counts_only(client):

    tj = client.get("/tiles/events.json").json()
    fields = tj["vector_layers"][0]["fields"]
    assert "events" in fields and not {"event_id", "reported_at", "status"} & set(fields)


# --- coverage and assignment ------------------------------------------------------------------------------


def test_coverage_per_unit_matches_the_library(client, sample):
    from gridgeo import coverage, network

    body = client.get("/coverage?minutes=15&level=village").json()
    net = network.build(sample.roads, metric=gridgeo.crs.metric_crs(sample.grids))
    cov = coverage.nearest_station(sample.addresses, sample.stations, net)
    lib = coverage.per_grid(cov, sample.grids, stations=sample.stations, levels=["village"]).set_index("code")
    served = pd.DataFrame(body["units"]).set_index("code")
    shown = served["households_15min"].notna()
    assert shown.sum() >= len(served) - 5
    assert (served.loc[shown, "households_15min"] == lib.loc[served.index[shown], "households_15min"]).all()
    # what is withheld counts fewer than 10 households not reached (or protects one that does)
    left_out = lib.loc[served.index, "households"] - lib.loc[served.index, "households_15min"]
    assert not shown[(left_out > 0) & (left_out < 10)].any()
    assert body["min_count"] == 10
    assert all(f["properties"]["addresses"] >= 10 for f in body["uncovered"]["features"])


def test_service_areas(client, sample):
    body = client.get("/coverage/areas", params={"minutes": 5, "kind": "grid2_station"}).json()
    ids = {f["properties"]["station_id"] for f in body["features"]}
    assert ids <= set(sample.stations.loc[sample.stations["kind"] == "grid2_station", "station_id"])
    assert len(ids) > 0.9 * (sample.stations["kind"] == "grid2_station").sum()


def test_assign_batch_in_gcj02_equals_the_library(client, sample):
    pts = sample.addresses.geometry.iloc[:300]
    lon, lat = gridgeo.crs.wgs84_to_gcj02(pts.x.to_numpy(), pts.y.to_numpy())
    body = client.post("/assign", json={"points": np.column_stack([lon, lat]).tolist(), "crs": "gcj02",
                                        "ids": sample.addresses["addr_id"].iloc[:300].tolist()}).json()
    lib = gridgeo.assign(gpd.GeoDataFrame(geometry=pts, crs=4490), sample.grids)
    assert [r["grid2"] for r in body["results"]] == lib["grid2"].astype(object).tolist()
    assert body["results"][0]["id"] == sample.addresses["addr_id"].iloc[0]


def test_assign_refuses_a_batch_over_the_cap(client):
    from api.settings import Settings

    n = Settings().max_assign + 1
    r = client.post("/assign", json={"points": [[118.47, 24.8]] * n})
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")


def test_keys_cli_keeps_only_digests(tmp_path):
    from api.keys import KeyStore

    path = tmp_path / "keys.json"
    run = lambda *a: subprocess.run([sys.executable, "-m", "gridgeo", "keys", *a, "--file", str(path)],
                                    capture_output=True, text=True)
    key = run("add", "王主任", "--role", "planner").stdout.strip()
    assert key.startswith("gg_") and key not in path.read_text()
    assert KeyStore(path).lookup(key).role == "planner"
    assert "王主任\tplanner" in run("list").stdout
    assert run("add", "x", "--role", "boss").returncode != 0
    assert run("remove", "王主任").returncode == 0 and KeyStore(path).lookup(key) is None


def test_a_running_service_sees_keys_added_and_removed(tmp_path):
    from api.keys import KeyStore

    path = tmp_path / "keys.json"
    service = KeyStore(path)  # what the service holds, opened before any key exists
    key = subprocess.run([sys.executable, "-m", "gridgeo", "keys", "add", "李网格员", "--role", "viewer",
                          "--file", str(path)], capture_output=True, text=True, check=True).stdout.strip()
    assert service.lookup(key).name == "李网格员"
    KeyStore(path).remove("李网格员")
    assert service.lookup(key) is None


def test_events_datetime_interval(client, api_keys, sample):
    key = {"X-API-Key": api_keys["viewer"]}
    body = client.get("/collections/events/items", headers=key,
                      params={"datetime": "2025-03-01/2025-03-08", "limit": 10000}).json()
    ev = sample.events
    expected = ev[(ev["reported_at"] >= "2025-03-01") & (ev["reported_at"] < "2025-03-08")]
    assert body["numberMatched"] == len(expected) > 0
    assert {f["id"] for f in body["features"]} == set(expected["event_id"])
    open_end = client.get("/collections/events/items", headers=key, params={"datetime": "2025-12-25/.."}).json()
    assert open_end["numberMatched"] == (ev["reported_at"] >= "2025-12-25").sum()
    assert client.get("/collections/events/items", headers=key, params={"datetime": "soon"}).status_code == 400
