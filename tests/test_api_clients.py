"""Independent clients against a real server on 127.0.0.1: GDAL's OAPIF and MVT
drivers, schemathesis on the OpenAPI document, and a sweep of every anonymous
path for address-level data."""

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import mapbox_vector_tile
import pytest
import gridgeo.store

PUBLIC = ["town", "village", "grid1", "grid2", "grid3", "stations", "roads"]


def _ogr(*args) -> str:
    res = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.gdal
def test_gdal_lists_the_public_collections(server):
    out = _ogr("-so", f"OAPIF:{server.url}")
    listed = re.findall(r"^\d+: (\w+) ", out, flags=re.M)
    assert listed == [*PUBLIC, "警格"]  # the sample's police precincts (test_crosswalk_api.py reads them)


@pytest.mark.gdal
@pytest.mark.parametrize("collection", PUBLIC)
def test_gdal_reads_every_feature_of_a_public_collection(server, sample_store, collection):
    options = ["-oo", "PAGE_SIZE=1000"] if collection == "roads" else []  # GDAL 3.6 pages by 10 by default
    out = _ogr("-al", "-q", *options, f"OAPIF:{server.url}", collection)
    with gridgeo.store.open(sample_store) as store:
        expected = store.read(collection)
    key = "station_id" if collection == "stations" else "road_id" if collection == "roads" else "code"
    got = re.findall(rf"^\s+{key} \(String\) = (\S+)$", out, flags=re.M)
    assert len(got) == len(expected)
    assert sorted(got) == sorted(expected[key])


@pytest.mark.gdal
def test_gdal_cannot_open_address_level_collections(server):
    res = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{server.url}/collections/addresses"],
                         capture_output=True, text=True)
    assert res.returncode != 0


@pytest.mark.gdal
def test_gdal_reads_the_vector_tiles(server, sample):
    out = _ogr("-al", "-q", f"MVT:{server.url}/tiles/grid2/13")
    codes = set(re.findall(r"^\s+code \(String\) = (\S+)$", out, flags=re.M))
    grid2 = set(sample.grids.loc[sample.grids["level"] == "grid2", "code"])
    assert codes == grid2  # every grid appears in some zoom-13 tile, and nothing else does


# --- schemathesis ------------------------------------------------------------------------


SCHEMATHESIS = Path(__file__).with_name("schemathesis.toml")
"""Every check of schemathesis, and what the OpenAPI document cannot tell it (read the reasons there)."""


def test_openapi_fuzz_finds_no_server_error(server, tmp_path):
    """schemathesis generates requests from the OpenAPI document and runs every check on the
    answers (no 5xx; status codes, media types and bodies as documented; valid data accepted,
    invalid refused; keys enforced; Allow headers): it finds nothing."""
    res = subprocess.run(
        ["schemathesis", "--config-file", str(SCHEMATHESIS), "run", f"{server.url}/openapi.json",
         "--max-examples", "6", "--request-timeout", "120", "--suppress-health-check", "all",
         "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
        env={**os.environ, "PATH": f"{sys.prefix}/bin:{os.environ['PATH']}"})
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", res.stdout)
    assert generated and generated.group(1) == generated.group(2) and int(generated.group(1)) > 300
    print("schemathesis:", re.search(r"\d+ generated, .*", res.stdout).group(0))  # the figures, with -rP


def test_the_longest_filter_the_document_allows_is_answered_by_the_service(server):
    """Not by the HTTP server's own plain-text 400 for a request target too long: a filter of
    four-byte characters at the documented maximum is a problem body of ours."""
    from api.routes.features import FILTER_LENGTH, LIST_LENGTH

    r = httpx.get(f"{server.url}/collections/grid2/items", timeout=60,
                  params={"filter": "😀" * FILTER_LENGTH, "sortby": "é" * LIST_LENGTH})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json", r.text[:200]
    r = httpx.get(f"{server.url}/collections/grid2/items", params={"filter": "a" * (FILTER_LENGTH + 1)}, timeout=60)
    assert r.status_code == 400 and "filter" in r.json()["detail"]


# --- personal data -------------------------------------------------------------------------


def _anonymous_paths(sample) -> list[str]:
    g = sample.grids
    grid2 = g[g["level"] == "grid2"].iloc[0]
    paths = ["/", "/health", "/conformance", "/collections", "/tiles", "/vocabulary", "/openapi.json",
             "/coverage?minutes=15&level=grid2", "/coverage?minutes=5&level=village",
             "/coverage/areas?minutes=10", "/events/heat", "/events/heat?cell=50",
             f"/stats/unit/{grid2['code']}", f"/stats/unit/{grid2['parent']}", "/search?q=村",
             "/stats/grid2/balance", "/stats/grid2/breaks"]
    for name in PUBLIC:
        paths += [f"/collections/{name}", f"/collections/{name}/items?limit=10000",
                  f"/collections/{name}/queryables"]
    for level in ("town", "village", "grid1", "grid2", "grid3"):
        paths.append(f"/stats/{level}")
    for layer in ("town", "village", "grid1", "grid2", "grid3", "stations", "events"):
        paths += [f"/tiles/{layer}.json", f"/tiles/{layer}/metadata.json"]
    paths += ["/collections/addresses/items", "/collections/events/items",
              f"/collections/addresses/items/{sample.addresses['addr_id'].iloc[0]}",
              f"/collections/events/items/{sample.events['event_id'].iloc[0]}"]
    return paths


def test_no_anonymous_path_reveals_address_level_data(server, sample):
    secrets = set(sample.addresses["addr_id"]) | set(sample.events["event_id"])
    texts = list(sample.addresses["address"].iloc[::97])
    pattern = re.compile(r"\b(?:3505821\d{8,}|E3505821\d+)\b")
    for path in _anonymous_paths(sample):
        r = httpx.get(server.url + path, timeout=300)
        assert r.status_code < 500, path
        found = {m for m in pattern.findall(r.text) if m in secrets}
        assert not found, f"{path} reveals {sorted(found)[:3]}"
        assert not any(t in r.text for t in texts), f"{path} reveals an address text"
        if path.startswith("/collections/addresses") or path.startswith("/collections/events"):
            assert r.status_code == 401
    # tiles at every zoom of the sample hold no record-level fields
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    west, south, east, north = sample.grids.total_bounds
    for layer in ("events", "stations", "grid2", "grid3"):
        for z in (11, 13, 15):
            for t in list(tms.tiles(west, south, east, north, [z]))[:40]:
                r = httpx.get(f"{server.url}/tiles/{layer}/{t.z}/{t.x}/{t.y}.mvt", timeout=60)
                if r.status_code == 204:
                    continue
                for decoded in mapbox_vector_tile.decode(r.content).values():
                    for feature in decoded["features"]:
                        props = feature["properties"]
                        assert not {"addr_id", "event_id", "address", "reported_at"} & set(props)
                        assert not (set(map(str, props.values())) & secrets)
