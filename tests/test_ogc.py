"""OGC API - Features beyond the core, through independent clients and checked against pandas:
CQL2 filters (text and JSON) on the queryables, GDAL's -where, OWSLib, sortby, properties,
HTML pages in Chromium, HEAD, problem bodies for what the service does not know, and the
HTTP hygiene of links, health and errors.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from api_fixture import Server

SCHEMATHESIS = Path(__file__).with_name("schemathesis.toml")
"""Every check of schemathesis, and what the OpenAPI document cannot tell it (read the reasons there)."""

VILLAGE = "350582106201"


def test_cql2_text_and_json_select_exactly_what_pandas_selects(client, sample):
    grids = sample.grids
    want = sorted(grids.loc[grids["parent"] == VILLAGE, "code"])
    text = client.get("/collections/grid1/items", params={"filter": f"parent='{VILLAGE}'",
                                                          "filter-lang": "cql2-text"})
    assert text.status_code == 200, text.text
    assert sorted(f["id"] for f in text.json()["features"]) == want and text.json()["numberMatched"] == len(want)
    as_json = json.dumps({"op": "=", "args": [{"property": "parent"}, VILLAGE]})
    body = client.get("/collections/grid1/items", params={"filter": as_json, "filter-lang": "cql2-json"}).json()
    assert sorted(f["id"] for f in body["features"]) == want
    # a richer filter on the stations: kinds and a box, against pandas and shapely
    stations = sample.stations
    box = (118.44, 24.77, 118.49, 24.82)
    cql = (f"kind IN ('grid2_station','grid3_point') AND S_INTERSECTS(geometry, BBOX({','.join(map(str, box))}))")
    got = client.get("/collections/stations/items", params={"filter": cql, "limit": 1000}).json()
    inside = stations.geometry.intersects(__import__("shapely").box(*box))
    expected = stations.loc[stations["kind"].isin(["grid2_station", "grid3_point"]) & inside, "station_id"]
    assert sorted(f["id"] for f in got["features"]) == sorted(expected)


def test_sortby_properties_and_unknown_parameters(client, sample):
    grid2 = sample.grids[sample.grids["level"] == "grid2"]
    page = client.get("/collections/grid2/items", params={"sortby": "-code", "limit": 5, "properties": "name"}).json()
    assert [f["id"] for f in page["features"]] == sorted(grid2["code"], reverse=True)[:5]
    assert all(set(f["properties"]) == {"name"} for f in page["features"])
    for params, said in [({"colour": "red"}, "unknown query parameter"), ({"sortby": "height"}, "sortby"),
                         ({"properties": "secret"}, "properties"), ({"filter": "height > 3"}, "height"),
                         ({"filter": "parent = "}, "filter"), ({"filter-lang": "cql2-text"}, "without a filter"),
                         # past a 64-bit integer: found by schemathesis as a 500
                         ({"workers": "-5606594083790875146737810407424"}, "workers"),
                         ({"workers": "1e400"}, "workers"), ({"filter": "workers > 99999999999999999999"}, "workers")]:
        r = client.get("/collections/grid2/items", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.headers["content-type"] == "application/problem+json" and said in r.json()["detail"]


def test_head_unknown_routes_and_methods_answer_as_ogc_clients_expect(client):
    get = client.get("/collections/grid2/items?limit=3")
    head = client.head("/collections/grid2/items?limit=3")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(get.content)) and head.headers["etag"] == get.headers["etag"]
    for method, path, status in (("get", "/no/such/route", 404), ("delete", "/collections", 405),
                                 ("get", "/collections/nope", 404)):
        r = client.request(method.upper(), path)
        assert r.status_code == status
        assert r.headers["content-type"] == "application/problem+json" and r.json()["status"] == status
    conformance = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter" in conformance
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json" in conformance
    crs = client.get("/collections").json()["crs"]
    assert all(re.match(r"^(http://www\.opengis\.net/def/crs/|urn:gridgeo:def:crs:)", c) for c in crs)


def test_health_names_no_path_and_links_follow_the_public_url(client, api_settings):
    from fastapi.testclient import TestClient

    from api import create_app

    health = client.get("/health").json()
    assert health["store"] in ("geopackage", "postgis") and "/" not in json.dumps(health["store"])
    forged = client.get("/tiles/grid2.json", headers={"Host": "evil.example"})
    assert forged.headers["cache-control"].startswith("private")  # a forged host never reaches a shared cache
    public = api_settings.model_copy(update={"public_url": "https://grid.example.gov.cn/gridgeo"})
    with TestClient(create_app(public)) as other:
        tj = other.get("/tiles/grid2.json", headers={"Host": "evil.example"})
        assert tj.json()["tiles"][0].startswith("https://grid.example.gov.cn/gridgeo/tiles/grid2/")
        assert tj.headers["cache-control"].startswith("public")
        links = other.get("/collections").json()["links"]
        assert all(link["href"].startswith("https://grid.example.gov.cn/gridgeo/") for link in links)


def test_an_unexpected_error_closes_the_connection_and_says_nothing_internal(api_settings, monkeypatch):
    from fastapi.testclient import TestClient

    from api import create_app

    app = create_app(api_settings)
    with TestClient(app, raise_server_exceptions=False) as c:
        def broken(*args, **kwargs):
            raise RuntimeError("secret internal detail /srv/data")
        monkeypatch.setattr(app.state.services.store, "read", broken)
        r = c.get("/collections/grid2/items")
        assert r.status_code == 500 and r.headers["connection"] == "close"
        assert "secret" not in r.text and "request" in r.json()["detail"]
        assert c.get("/plans/9223372036854775808").status_code in (400, 401)  # 2^63 is no plan id, never a 500


def test_html_faces_of_the_ogc_resources_open_in_chromium(server, open_page, sample):
    from browser_fixture import screenshot

    for path in ("/collections?f=html", "/collections/grid2?f=html", f"/collections/grid2/items/{sample.grids.loc[sample.grids['level'] == 'grid2', 'code'].iloc[0]}?f=html"):
        r = httpx.get(server.url + path, timeout=120)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
    page, watch = open_page(server.url + f"/collections/grid1/items?f=html&filter=parent='{VILLAGE}'")
    drawn = page.evaluate("document.querySelectorAll('.leaflet-interactive').length")
    want = (sample.grids["parent"] == VILLAGE).sum()
    assert drawn == want and page.locator("table tr").count() == want + 1
    screenshot(page, "ogc-items-html.png")
    watch.check()


def test_gdal_where_and_owslib_get_the_same_features(server, sample):
    want = sorted(sample.grids.loc[sample.grids["parent"] == VILLAGE, "code"])
    res = subprocess.run(["ogrinfo", "-ro", "-al", "-q", f"OAPIF:{server.url}", "grid1", "-where",
                          f"parent = '{VILLAGE}'"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    got = sorted(set(re.findall(r"code \(String\) = (\d+)", res.stdout)))
    assert got == want
    # GDAL (3.6) sends a -where on a queryable to the server when the collection's own items path
    # in the OpenAPI document lists it as a query parameter: the server filtered, GDAL did not
    sent = [line for line in server.output().splitlines() if "/collections/grid1/items" in line]
    assert any(f"parent={VILLAGE}" in line for line in sent), sent[-5:]

    from owslib.ogcapi.features import Features

    api = Features(server.url)
    assert "grid1" in [c["id"] for c in api.collections()["collections"]]
    items = api.collection_items("grid1", filter=f"parent='{VILLAGE}'", limit=100)
    assert sorted(f["id"] for f in items["features"]) == want


def test_fuzzing_with_a_planner_key_finds_no_server_error(sample_store, sample, tmp_path):
    """schemathesis with a planner's key, every check, reaches the plan and import routes too:
    it finds nothing, and the server logs no 5xx."""
    from api.keys import KeyStore

    store = tmp_path / "fuzz.gpkg"
    shutil.copy(sample_store, store)
    keys = tmp_path / "keys.json"
    planner = KeyStore(keys).add("模糊测试", "planner")
    # the shared configuration, and real villages to start plans of now and then, so that the
    # fuzzing gets past "no such unit" into the plans (edits, saves, exports, publishes)
    villages = sorted(sample.grids.loc[sample.grids["level"] == "village", "code"])[:4]
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS.read_text("utf-8") + f"""
[dictionaries.villages]
values = {json.dumps(villages)}

[parameters]
"body.parent" = {{ dictionary = "villages", probability = 0.6 }}
""", "utf-8")
    server = Server(str(store), env={"GRIDGEO_KEYS_FILE": str(keys), "GRIDGEO_IMPORTS_DIR": str(tmp_path / "up")})
    try:
        res = subprocess.run(
            ["schemathesis", "--config-file", str(config), "run", f"{server.url}/openapi.json",
             "--max-examples", "5", "--request-timeout", "120", "--suppress-health-check", "all",
             "-H", f"X-API-Key: {planner}", "--report", "junit", "--report-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=1500, cwd=tmp_path,
            env={**os.environ, "PATH": f"{sys.prefix}/bin:{os.environ['PATH']}"})
    finally:
        log = server.stop()
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:] + log[-3000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", res.stdout)
    assert generated and generated.group(1) == generated.group(2), res.stdout[-3000:]
    print("schemathesis:", re.search(r"\d+ generated, .*", res.stdout).group(0))  # the figures, with -rP
    assert re.search(r'"POST /plans HTTP/1.1" 201', log), "no plan was started: the fuzzing never reached the plans"
    assert not re.search(r'" 5\d\d ', log), log[-3000:]
