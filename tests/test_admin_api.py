"""The administrator's endpoints over real HTTP (``gridgeo serve`` on 127.0.0.1): rollback and
the audit trail.

The grids are changed by a plan published through the library while the service runs, and
rolled back over HTTP; what the service shows afterwards (features, figures, vector tiles) is
compared with what it showed before the change and with the sample itself.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import httpx
import mapbox_vector_tile
import morecantile
import pytest
import shapely
import shapely.geometry

import gridgeo.audit
import gridgeo.store
from api_fixture import Server
from test_rollback import NEW_CODE, X, Y, move_grid, rename

OTHER_VILLAGE = "350582106201"


@pytest.fixture(scope="module")
def store_path(sample_store, tmp_path_factory):
    path = tmp_path_factory.mktemp("admin-api") / "gridgeo.gpkg"
    shutil.copy(sample_store, path)
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    from api.keys import KeyStore

    path = tmp_path_factory.mktemp("admin-keys") / "keys.json"
    store = KeyStore(path)
    out = {"file": str(path), "admin": store.add("管理员", "admin"), "planner": store.add("网格办张三", "planner"),
           "viewer": store.add("领导", "viewer")}
    made = subprocess.run([sys.executable, "-m", "gridgeo", "keys", "add", "李审核", "--role", "admin", "--file",
                           str(path), "--author", "管理员"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    return out


@pytest.fixture(scope="module")
def service(store_path, keys):
    s = Server(str(store_path), env={"GRIDGEO_KEYS_FILE": keys["file"]})
    yield s
    log = s.stop()
    assert "Traceback" not in log and " 500 " not in log, log[-3000:]  # no request failed unexpectedly


def as_(keys, role):
    return {"X-API-Key": keys[role]}


def wait_for_version(service, version):
    """Until the service serves the store's new data version (it looks at most once a second,
    and prepares the version's derived data in the request that looks: GRIDGEO_PREPARE=inline)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        health = httpx.get(f"{service.url}/health", timeout=300).json()
        if health["data_version"] == version and health["served_version"] == version:
            return
        time.sleep(0.2)
    raise AssertionError(f"the service did not see data version {version}")


def grid2_of(service, parent):
    r = httpx.get(f"{service.url}/collections/grid2/items", params={"parent": parent, "limit": 100}, timeout=60)
    assert r.status_code == 200, r.text
    return {f["properties"]["code"]: shapely.geometry.shape(f["geometry"]) for f in r.json()["features"]}


def unit(service, code):
    r = httpx.get(f"{service.url}/stats/unit/{code}", timeout=300)
    assert r.status_code == 200, r.text
    return r.json()


def tile_codes(service, point):
    tile = morecantile.tms.get("WebMercatorQuad").tile(point.x, point.y, 15)
    r = httpx.get(f"{service.url}/tiles/grid2/{tile.z}/{tile.x}/{tile.y}.mvt", timeout=300)
    assert r.status_code == 200, r.text
    return {f["properties"]["code"] for f in mapbox_vector_tile.decode(r.content)["grid2"]["features"]}


def test_only_an_admin_may_roll_back_or_read_the_audit_trail(service, keys, store_path):
    url = service.url
    assert httpx.get(f"{url}/admin/audit").status_code == 401
    for role in ("viewer", "planner"):
        assert httpx.get(f"{url}/admin/audit", headers=as_(keys, role)).status_code == 403
        assert httpx.get(f"{url}/admin/rollback", params={"to": 0}, headers=as_(keys, role)).status_code == 403
        r = httpx.post(f"{url}/admin/rollback", json={"to": 0}, headers=as_(keys, role))
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    with gridgeo.store.open(store_path) as store:
        assert store.revision == 1


def test_a_rollback_over_http_restores_the_grids_and_the_one_map_follows(service, keys, store_path, sample):
    url, admin = service.url, as_(keys, "admin")
    before = {parent: grid2_of(service, parent) for parent in (X, Y)}
    figures_before = {code: unit(service, code) for code in (X, Y)}
    with gridgeo.store.open(store_path) as store:
        moved, published = move_grid(store)
    wait_for_version(service, published)
    point = before[Y][moved].representative_point()
    assert NEW_CODE in grid2_of(service, X) and moved not in grid2_of(service, Y)
    assert NEW_CODE in {c["code"] for c in unit(service, X)["children"]}
    assert NEW_CODE in tile_codes(service, point)

    preview = httpx.get(f"{url}/admin/rollback", params={"to": 1}, headers=admin, timeout=60).json()
    units = {"added": [moved], "changed": [X, Y], "removed": [NEW_CODE]}
    assert preview["version"] == published and preview["units"] == units and "refusal" not in preview
    assert preview["layers"] == {"grids": {"added": 1, "changed": 2, "removed": 1}}

    r = httpx.post(f"{url}/admin/rollback", json={"to": 1, "message": "撤销一级网格调整", "version": published},
                   headers=admin, timeout=300)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["revision"] == published + 1 == done["data_version"] and done["author"] == "管理员"
    assert done["changes"]["to"] == 1 and done["changes"]["units"] == units
    assert done["summary"].startswith("to revision 1; grids +1 ~2 -1")

    # the features are the grids as they were before the change, and as the sample has them
    after = {parent: grid2_of(service, parent) for parent in (X, Y)}
    assert {p: sorted(g) for p, g in after.items()} == {p: sorted(g) for p, g in before.items()}
    truth = sample.grids.set_index("code").geometry
    for parent in (X, Y):
        for code, geometry in after[parent].items():
            assert geometry.equals_exact(before[parent][code], tolerance=0)
            assert shapely.hausdorff_distance(geometry, truth[code]) < 2e-7  # the service writes 7 decimals
    # the one map's figures and tiles follow the new data version
    for code in (X, Y):
        now = unit(service, code)
        assert now["figures"] == figures_before[code]["figures"]
        assert sorted(c["code"] for c in now["children"]) == sorted(c["code"] for c in figures_before[code]["children"])
    codes = tile_codes(service, point)
    assert moved in codes and NEW_CODE not in codes
    assert httpx.get(f"{url}/health").json()["served_version"] == published + 1

    # refusals: problems with the reason in both languages, and nothing written
    r = httpx.post(f"{url}/admin/rollback", json={"to": 1}, headers=admin, timeout=60)
    assert r.status_code == 422 and r.json()["reason"] == "nothing_to_change" and r.json()["message_zh"]
    r = httpx.post(f"{url}/admin/rollback", json={"to": 999}, headers=admin, timeout=60)
    assert r.status_code == 422 and r.json()["reason"] == "not_a_revision" and "999" in r.json()["detail"]
    # the level-1 grids of the change alone: the level-2 grid moved back into Y would lie in X
    r = httpx.post(f"{url}/admin/rollback", json={"to": published, "layers": ["grid1"]}, headers=admin, timeout=60)
    problem = r.json()
    assert r.status_code == 422 and problem["reason"] == "invalid_result"
    assert [(e["kind"], e["code"]) for e in problem["errors"]] == [("wrong_parent", moved)]
    for body in ({"to": -1}, {"to": 2**63}, {"to": "x"}, {"to": 1, "layers": []}):
        r = httpx.post(f"{url}/admin/rollback", json=body, headers=admin)
        assert r.status_code == 400, (body, r.text)
    r = httpx.post(f"{url}/admin/rollback", json={"to": 1, "layers": ["parks"]}, headers=admin)
    assert r.status_code == 404 and "no layer 'parks'" in r.json()["detail"]
    with gridgeo.store.open(store_path) as store:
        assert store.revision == published + 1

    # a rollback stated on a version the data have moved past is a 409 naming what moved
    with gridgeo.store.open(store_path) as store:
        _, renamed = rename(store, OTHER_VILLAGE, "又改名", author="网格办李四")
    r = httpx.post(f"{url}/admin/rollback", json={"to": published, "version": published + 1}, headers=admin,
                   timeout=60)
    assert r.status_code == 409, r.text
    assert [(c["revision"], c["author"]) for c in r.json()["conflicts"]] == [(renamed, "网格办李四")]
    with gridgeo.store.open(store_path) as store:
        assert store.version == renamed

    # the audit trail lists each step with its author, newest first
    r = httpx.get(f"{url}/admin/audit", headers=admin, timeout=60)
    assert r.status_code == 200, r.text
    trail = r.json()
    steps = [(e["action"], e["author"]) for e in trail["entries"]]
    assert steps[:6] == [("publish", "网格办李四"), ("save-plan", "网格办李四"), ("create-plan", "网格办李四"),
                         ("rollback", "管理员"), ("publish", "张三"), ("save-plan", "张三")]
    assert steps[-2:] == [("key-add", "管理员"), ("load", "tests")]
    assert trail["numberMatched"] == len(trail["entries"]) == 9
    rollback = trail["entries"][3]
    assert rollback["revision"] == published + 1 and rollback["message"] == "撤销一级网格调整"
    assert rollback["what"]["to"] == 1 and rollback["what"]["units"] == units and rollback["source"] == "store"
    key = trail["entries"][-2]
    assert key["source"] == "keys" and key["what"]["key"] == {"name": "李审核", "role": "admin", "scopes": []}
    assert keys["admin"] not in r.text  # never a key

    only = httpx.get(f"{url}/admin/audit", params={"action": ["rollback", "key-add"]}, headers=admin).json()
    assert [e["action"] for e in only["entries"]] == ["rollback", "key-add"]
    mine = httpx.get(f"{url}/admin/audit", params={"author": "张三"}, headers=admin).json()
    assert {e["action"] for e in mine["entries"]} == {"create-plan", "save-plan", "publish"}
    since = trail["entries"][3]["at"]
    recent = httpx.get(f"{url}/admin/audit", params={"since": since}, headers=admin).json()
    assert [e["action"] for e in recent["entries"]][-1] == "rollback" and recent["numberMatched"] == 4
    page = httpx.get(f"{url}/admin/audit", params={"limit": 2, "offset": 3}, headers=admin).json()
    assert [e["entry"] for e in page["entries"]] == [e["entry"] for e in trail["entries"][3:5]]
    assert page["numberMatched"] == 9 and page["numberReturned"] == 2
    for since in ("yesterday", "0001-01-01T00:00:00+08:00"):
        r = httpx.get(f"{url}/admin/audit", params={"since": since}, headers=admin)
        assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json", r.text

    # a keys' log that cannot be read: the store's trail, and the reason said
    with gridgeo.audit.keys_log_path(keys["file"]).open("a", encoding="utf-8") as f:
        f.write("{cut short\n")
    r = httpx.get(f"{url}/admin/audit", headers=admin)
    assert r.status_code == 200 and "keys.log.jsonl, line 2" in r.json()["problems"][0]
    assert [e["source"] for e in r.json()["entries"]] == ["store"] * 8
