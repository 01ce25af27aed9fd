"""The service the way it runs (GRIDGEO_PREPARE=background): real `gridgeo serve` processes on
one store. A store never prepared is prepared by a background process while the service says so
(/health, 503 with Retry-After, the map's waiting screen in Chromium); a restarted service serves
at once; a publish is served when its version is complete, every answer from one version,
never a blank; two services on one store serve one version from one copy."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest

import gridgeo.store as gstore
from api_fixture import Server
from browser_fixture import screenshot
from gridgeo import derived

BACKGROUND = {"GRIDGEO_PREPARE": "background", "GRIDGEO_VERSION_TTL": "0.2"}
VILLAGE = "350582106201"


def _unprepared(sample_store, tmp_path):
    path = tmp_path / "fresh.gpkg"
    shutil.copy(sample_store, path)
    with gstore.open(path) as store:
        store.drop_derived(before=store.version + 1)
        assert store.derived_versions() == []
    return path


def _wait(url, check, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = httpx.get(url + "/health", timeout=10).json()
        if check(health):
            return health
        time.sleep(0.3)
    raise AssertionError(f"not reached within {timeout} s: {health}")


@pytest.mark.browser
def test_a_store_never_prepared_is_prepared_in_the_background(sample_store, tmp_path, open_page):
    path = _unprepared(sample_store, tmp_path)
    server = Server(str(path), env=BACKGROUND, warm=())
    try:
        health = httpx.get(server.url + "/health").json()
        assert health["status"] == "preparing" and not health["ready"] and health["preparing"] == 1
        busy = httpx.get(server.url + "/stats/grid2")
        assert busy.status_code == 503 and int(busy.headers["Retry-After"]) > 0
        assert busy.headers["content-type"] == "application/problem+json" and busy.json()["preparing"]
        # the OGC features read the store itself: they never wait
        assert httpx.get(server.url + "/collections/grid2/items?limit=1").status_code == 200
        # the one map says it is waiting rather than showing a blank map ...
        page, _ = open_page(server.url + "/map", ready=None)
        page.wait_for_selector("#preparing:not([hidden])", timeout=20_000)
        assert "正在准备数据" in page.inner_text("#preparing")
        screenshot(page, "map-preparing.png")
        # ... and draws the town when the data is ready, without a reload
        page.wait_for_function("document.body.dataset.ready === '1'", timeout=180_000)
        assert page.locator("#preparing").is_hidden()
        health = _wait(server.url, lambda h: h["ready"])
        assert health["served_version"] == health["data_version"] == 1
        assert httpx.get(server.url + "/stats/grid2").status_code == 200
        log = server.output()
    finally:
        server.stop()
    assert "preparing data version 1 in the background" in log
    with gstore.open(path) as store:
        assert store.derived_versions() == [1]


def test_a_restarted_service_serves_at_once_and_a_publish_when_it_is_ready(sample_store, tmp_path, api_keys):
    path = tmp_path / "prepared.gpkg"
    shutil.copy(sample_store, path)  # prepared, as `gridgeo prepare` leaves a store
    # a small office: the planner publishes their own plan after acknowledging its report
    env = {**BACKGROUND, "GRIDGEO_KEYS_FILE": api_keys["file"], "GRIDGEO_SELF_PUBLISH": "1"}
    planner = {"X-API-Key": api_keys["planner"]}
    server = Server(str(path), env=env, warm=())
    try:
        first = httpx.get(server.url + "/health").json()
        assert first["ready"] and first["served_version"] == 1  # the first answer, no preparing
        tile = httpx.get(server.url + "/tiles/grid2/14/13583/7025.mvt")
        assert tile.status_code in (200, 204)
        config = httpx.get(server.url + "/map/config.json").json()
        assert config["data_version"] == 1
        # a planner renames a grid and publishes
        plan = httpx.post(server.url + "/plans", json={"name": "改名", "parent": VILLAGE, "level": "grid2"},
                          headers=planner, timeout=120)
        assert plan.status_code in (200, 201), plan.text
        plan_id = plan.json()["plan"]["id"]
        with gstore.open(path) as store:
            p = store.plan(plan_id)
            unit = p.read().iloc[:1]
            code = unit["code"].iloc[0]
            before = httpx.get(server.url + f"/stats/unit/{code}").json()["figures"]["name"]
            p.save(unit.assign(name="新的名字"), author="网格办张三")
        report = httpx.get(server.url + f"/plans/{plan_id}/report", headers=planner, timeout=120).json()
        assert [c["code"] for c in report["changes"]] == [code] and report["changes"][0]["name_after"] == "新的名字"
        published = httpx.post(server.url + f"/plans/{plan_id}/publish", json={"acknowledge": report["version"]},
                               headers=planner, timeout=120)
        assert published.status_code == 200, published.text
        new = published.json()["data_version"]
        assert new > 1
        # until the new version is complete the old one is served, whole: never a 503, never a mix
        seen = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            config = httpx.get(server.url + "/map/config.json")
            names = httpx.get(server.url + f"/stats/unit/{code}")
            assert config.status_code == 200 and names.status_code == 200
            renamed = names.json()["figures"]["name"] == "新的名字"
            seen.append((config.json()["data_version"], renamed))
            if seen[-1][0] == new and renamed:
                break
            time.sleep(0.2)
        versions = [v for v, _ in seen]
        assert versions[-1] == new and versions == sorted(versions), seen  # old, then new, never back
        health = httpx.get(server.url + "/health").json()
        assert health["served_version"] == health["data_version"] == new
        assert before != "新的名字" and seen[0] == (1, False)
    finally:
        log = server.stop()
    assert "preparing data version 1" not in log  # it never prepared what the store kept
    # restart: the new version is served from the first answer
    again = Server(str(path), env=env, warm=())
    try:
        health = httpx.get(again.url + "/health").json()
        assert health["ready"] and health["served_version"] == new
        assert httpx.get(again.url + f"/stats/unit/{code}").json()["figures"]["name"] == "新的名字"
    finally:
        log = again.stop()
    assert "preparing data version" not in log


def test_two_services_on_one_store_serve_one_version_from_one_copy(sample_store, tmp_path):
    path = tmp_path / "shared.gpkg"
    shutil.copy(sample_store, path)
    a = Server(str(path), env=BACKGROUND, warm=())
    b = Server(str(path), env=BACKGROUND, warm=())
    try:
        with gstore.open(path) as store:  # another process (the CLI) changes the stations
            stations = store.read("stations").drop(columns=["revision", "author"], errors="ignore")
            stations.loc[0, "name"] = "新站"
            new = store.load({"stations": stations}, author="网格办", progress=False)
        for server in (a, b):
            health = _wait(server.url, lambda h: h["served_version"] == new)
            assert health["data_version"] == new
        assert httpx.get(a.url + "/map/config.json").json()["data_version"] == \
            httpx.get(b.url + "/map/config.json").json()["data_version"] == new
        with gstore.open(path) as store:
            kept = derived.Derived(store, new)
            # one copy in the store, made once: the items whose inputs did not change were copied
            assert kept.manifest["items"]["grids"].get("copied_from") == 1
            assert "copied_from" not in kept.manifest["items"]["served"]
            assert store.derived_versions() == [1, new]
        logs = a.output() + b.output()
    finally:
        a.stop()
        b.stop()
    assert logs.count(f"serving data version {new}") == 2
