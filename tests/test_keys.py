"""API keys as people hold them: HTTP Basic for desktop clients, and a keys file that breaks.

- QGIS's authentication manager and GDAL send HTTP Basic and nothing else to an
  OGC API: the key as the password (any user name) reads the restricted
  collections; GDAL is the client here, as a planner's QGIS would be.
- A keys file that cannot be read is reported once in the log and by ``gridgeo
  keys list``; keyed requests get a 503 problem, anonymous ones go on, and the
  file is never written over.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from api_fixture import Server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_a_corrupt_keys_file_refuses_keys_and_is_never_written_over(tmp_path, caplog):
    from api.keys import KeyStore, KeysUnavailable

    path = tmp_path / "keys.json"
    keys = KeyStore(path)
    viewer = keys.add("王领导", "viewer")
    good = path.read_bytes()
    path.write_text('{"keys": [{"name": "王领导", "role": "viewer", "sha2', "utf-8")  # cut short by a full disk
    broken = path.read_bytes()
    with caplog.at_level(logging.ERROR, logger="gridgeo.api.keys"):
        for _ in range(3):
            with pytest.raises(KeysUnavailable, match="keys.json"):
                keys.lookup(viewer)
    assert len([r for r in caplog.records if "cannot be read" in r.getMessage()]) == 1  # once, not per request
    with pytest.raises(KeysUnavailable):
        keys.add("李规划", "planner")  # an empty list written over the file would lose every key
    with pytest.raises(KeysUnavailable):
        KeyStore(path).remove("王领导")
    assert path.read_bytes() == broken
    # a file that is JSON but not keys is no better
    path.write_text('{"keys": [{"name": "王领导"}]}', "utf-8")
    with pytest.raises(KeysUnavailable, match="name, role and sha256"):
        KeyStore(path).lookup(viewer)
    # mended: the same store reads it again
    path.write_bytes(good)
    assert keys.lookup(viewer).name == "王领导" and keys.problem is None


@pytest.fixture
def keyed_server(sample_store, tmp_path):
    from api.keys import KeyStore

    path = tmp_path / "keys.json"
    made = {"viewer": KeyStore(path).add("王领导", "viewer")}
    server = Server(str(sample_store), env={"GRIDGEO_KEYS_FILE": str(path)})
    yield server, path, made
    server.stop()


def test_keyed_requests_get_503_while_the_keys_file_is_unreadable_and_anonymous_ones_go_on(keyed_server):
    server, path, made = keyed_server
    viewer = {"X-API-Key": made["viewer"]}
    assert httpx.get(f"{server.url}/collections/addresses/items?limit=1", headers=viewer, timeout=60).status_code == 200
    # the document says so where a client reads how to send a key (not on each operation: 503 there
    # means the data is being prepared, and says so exactly where it may be)
    schemes = httpx.get(f"{server.url}/openapi.json", timeout=60).json()["components"]["securitySchemes"]
    assert "cannot read its keys file" in schemes["APIKeyHeader"]["description"], schemes
    good = path.read_bytes()
    time.sleep(0.01)  # a new modification time, as an editor's save would give
    path.write_text("{ this is not json", "utf-8")
    for _ in range(3):
        r = httpx.get(f"{server.url}/collections/addresses/items?limit=1", headers=viewer, timeout=60)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "keys.json" not in r.text  # the log says which file; the caller does not learn paths
        assert r.headers["retry-after"]
    public = httpx.get(f"{server.url}/stats/grid2", timeout=60)
    assert public.status_code == 200 and public.json()["units"]
    assert httpx.get(f"{server.url}/collections/addresses/items?limit=1", timeout=60).status_code in (401, 403, 404)
    # `gridgeo keys list` says what is wrong instead of a traceback
    listed = subprocess.run([sys.executable, "-m", "gridgeo", "keys", "list", "--file", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 2 and "cannot be read" in listed.stderr and "Traceback" not in listed.stderr
    assert server.output().count("cannot be read") == 1, server.output()[-2000:]
    path.write_bytes(good)
    assert httpx.get(f"{server.url}/collections/addresses/items?limit=1", headers=viewer, timeout=60).status_code == 200


def test_http_basic_with_the_key_as_password_reads_the_restricted_collections(keyed_server, sample):
    server, _, made = keyed_server
    url = f"{server.url}/collections/addresses/items?limit=5"
    assert httpx.get(url, auth=("qgis", made["viewer"]), timeout=60).status_code == 200
    assert httpx.get(url, auth=("", made["viewer"]), timeout=60).status_code == 200
    assert httpx.get(url, auth=("王领导", "gg_wrong"), timeout=60).status_code == 401
    assert httpx.get(url, timeout=60).status_code in (401, 403, 404)

    if shutil.which("ogrinfo") is None:
        pytest.skip("GDAL (ogrinfo) is not installed")
    env = {**os.environ, "GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": f"qgis:{made['viewer']}"}
    res = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{server.url}", "addresses"], capture_output=True,
                         text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr
    count = re.search(r"Feature Count: (\d+)", res.stdout)
    assert count and int(count.group(1)) == len(sample.addresses)
    # without the key GDAL does not see the layer at all
    res = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{server.url}", "addresses"], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode != 0 or "Feature Count" not in res.stdout
