"""The service from its first moment (api.boot): it listens at once, answers the map's public
requests from the answers kept for the version the store serves while the app is being built,
holds every other request until then, and never answers from another store, version or settings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import httpx
import pytest
import uvicorn

import gridgeo.store as gstore
from api import Settings, create_app
from api.boot import Boot
from api_fixture import free_port
from gridgeo import derived
from gridgeo._served import latest

TILE = "/tiles/grid2/14/13583/7025.mvt"


# --- which version a store serves, read without the store's libraries ----------------------------


def test_the_version_served_is_read_as_the_store_reads_it(url):
    """gridgeo._served.latest states gridgeo.derived.latest's rule in SQL; both agree in every state."""

    def agree(store):
        kept = derived.latest(store)
        found = latest(url)
        assert (None if found is None else found[0]) == (None if kept is None else kept.version)
        return found

    with gstore.open(url) as store:
        assert agree(store) is None  # loaded, nothing prepared
        first = derived.build(store, progress=False)
        one = agree(store)
        assert one[0] == first
        stations = store.read("stations").drop(columns=["revision", "author"], errors="ignore")
        stations.loc[0, "name"] = "新站"
        published = store.load({"stations": stations}, author="网格办", progress=False)
        assert published > first and agree(store) == one  # published, not prepared: the old one is served
        assert derived.build(store, progress=False) == published
        two = agree(store)
        assert two[0] == published and two[1] != one[1]
        assert latest(url, first) == one and latest(url, published + 5) is None
        store.drop_derived(before=published + 1)
        assert agree(store) is None
        derived.build(store, progress=False)  # the same version prepared again: another stamp
        again = agree(store)
        assert again[0] == published and again[1] != two[1]


def test_no_store_is_said(tmp_path):
    with pytest.raises(LookupError, match="no such store file"):
        latest(tmp_path / "missing.gpkg")
    (tmp_path / "notes.gpkg").write_text("会议纪要")
    with pytest.raises(LookupError, match="not a gridgeo store"):
        latest(tmp_path / "notes.gpkg")


# --- Boot in front of the app ---------------------------------------------------------------------


class _Served:
    """``Boot`` under a real uvicorn in a thread; the app is built when ``release()`` is called."""

    def __init__(self, store, answers, keys_file, built=True):
        self.gate = threading.Event()
        if built:
            self.gate.set()

        def build():
            self.gate.wait()
            return create_app(Settings(store=str(store), keys_file=keys_file))

        self.boot = Boot(str(store), build=build, cache=str(answers))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.boot, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def release(self):
        self.gate.set()

    def built(self, timeout=120):
        deadline = time.monotonic() + timeout
        while httpx.get(self.url + "/health").json()["status"] == "starting":
            assert time.monotonic() < deadline
            time.sleep(0.05)

    def stop(self):
        self.gate.set()
        self.server.should_exit = True
        self.thread.join(30)


def _files(answers):
    return sorted(str(p.relative_to(answers)) for p in answers.rglob("*") if p.is_file())


def _kept(answers, count, timeout=30, besides=()):
    deadline = time.monotonic() + timeout
    while len(set(_files(answers)) - set(besides)) < count:
        assert time.monotonic() < deadline, _files(answers)
        time.sleep(0.05)


def test_kept_answers_are_given_while_the_app_is_built_and_nothing_else(sample_store, tmp_path, api_keys,
                                                                        monkeypatch):
    monkeypatch.setenv("GRIDGEO_MIN_COUNT", "5")
    path = tmp_path / "city.gpkg"
    shutil.copy(sample_store, path)
    answers = tmp_path / "answers"
    viewer = {"X-API-Key": api_keys["viewer"]}
    first = _Served(path, answers, api_keys["file"])
    try:
        first.built()
        host = {"Host": "map.gridgeo.test"}  # the same in both runs: /tiles varies on it (its links)
        made = {p: httpx.get(first.url + p, headers=host) for p in (TILE, "/map/config.json", "/tiles", "/stats/grid2")}
        assert all(r.status_code == 200 for r in made.values()), {p: r.status_code for p, r in made.items()}
        assert all("age" not in r.headers for r in made.values())  # made by the app
        keyed = httpx.get(first.url + "/stats/grid2?f=json", headers=viewer)  # a viewer's: never kept
        assert keyed.status_code == 200
        assert httpx.get(first.url + "/collections/grid2/items?limit=1").status_code == 200  # not the map's
        _kept(answers, 4)
        time.sleep(0.5)
        assert len(_files(answers)) == 4
    finally:
        first.stop()

    again = _Served(path, answers, api_keys["file"], built=False)
    try:
        health = httpx.get(again.url + "/health").json()
        assert health["status"] == "starting" and health["ready"] is True and health["served_version"] == 1
        for p, before in made.items():
            r = httpx.get(again.url + p, headers=host, timeout=10)
            assert r.status_code == 200 and r.content == before.content, p
            assert int(r.headers["age"]) >= 0 and r.headers["content-type"] == before.headers["content-type"]
            assert r.headers.get("etag") == before.headers.get("etag")
        etag = made[TILE].headers["etag"]
        assert httpx.get(again.url + TILE, headers={"If-None-Match": etag}).status_code == 304
        # what was not kept, a caller with a key, another host for an answer that varies on it: they wait
        waiting = {}

        def ask(name, path, headers):
            waiting[name] = httpx.get(again.url + path, headers=headers, timeout=120)

        asks = [("viewer", "/stats/grid2", viewer), ("features", "/collections/grid2/items?limit=1", {}),
                ("host", "/tiles", {"Host": "grid.example.gov.cn"}),
                ("other tile", "/tiles/grid2/14/13584/7025.mvt", {})]
        threads = [threading.Thread(target=ask, args=a) for a in asks]
        for t in threads:
            t.start()
        time.sleep(1.0)
        assert waiting == {}  # held while the app is built
        again.release()
        for t in threads:
            t.join(120)
        assert {n: r.status_code for n, r in waiting.items()} == {"viewer": 200, "features": 200, "host": 200,
                                                                  "other tile": 200}
        assert all("age" not in r.headers for r in waiting.values())
        assert waiting["host"].json()["layers"][0]["tilejson"].startswith("http://grid.example.gov.cn/")
    finally:
        again.stop()

    # the same version prepared again (as a store made again at the same place) never reads them ...
    with gstore.open(path) as store:
        version = store.version
        store.drop_derived(before=version + 1)
        derived.build(store, progress=False)
    old = _files(answers)
    for early in (False, True):  # ... and its own answers, kept once the app has made them, are given
        remade = _Served(path, answers, api_keys["file"], built=False)
        try:
            answer = _asked_while_building(remade, TILE)
            assert (answer is not None) == early
            if early:
                assert answer.content == made[TILE].content and "age" in answer.headers
            else:
                _kept(answers, 1, besides=old)
        finally:
            remade.stop()
    # other settings never read them
    monkeypatch.setenv("GRIDGEO_MIN_COUNT", "7")
    other = _Served(path, answers, api_keys["file"], built=False)
    try:
        assert _asked_while_building(other, TILE) is None
    finally:
        other.stop()


def _asked_while_building(served, path):
    """The answer to ``path`` if it came before the app was built (None: it waited for the app)."""
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("r", httpx.get(served.url + path, timeout=120)))
    thread.start()
    thread.join(1.0)
    early = out.get("r")
    served.release()
    thread.join(120)
    assert out["r"].status_code in (200, 204)
    return early


def test_a_restarted_gridgeo_serve_answers_the_map_before_its_app_is_built(sample_store, tmp_path):
    path = tmp_path / "city.gpkg"
    shutil.copy(sample_store, path)
    env = {**os.environ, "GRIDGEO_ANSWER_CACHE": str(tmp_path / "answers")}
    paths = (TILE, "/map/config.json", "/coverage?minutes=15", "/map")

    log = tmp_path / "serve.log"

    def start():
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "gridgeo", "serve", "--store", str(path), "--port",
                                 str(port)], env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline
            try:
                return proc, url, httpx.get(url + "/health").json()
            except httpx.TransportError:
                time.sleep(0.02)

    proc, url, _ = start()
    try:
        made = {p: httpx.get(url + p, timeout=120) for p in paths}
        assert all(r.status_code == 200 for r in made.values())
    finally:
        proc.terminate()  # at once: the answers still waiting for a quiet moment are written on the way out
        proc.wait(30)
    _kept(tmp_path / "answers", len(paths), timeout=0)
    proc, url, health = start()
    try:
        assert health["status"] == "starting"  # the first answer comes before the app is built
        for p, before in made.items():
            r = httpx.get(url + p)
            assert r.status_code == 200 and "age" in r.headers and r.content == before.content, p
        deadline = time.monotonic() + 120
        while httpx.get(url + "/health").json()["status"] == "starting":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert "age" not in httpx.get(url + "/tiles/grid2/14/13584/7025.mvt").headers
    finally:
        proc.terminate()
        proc.wait(30)
    said = log.read_text()
    assert "answers kept for data version 1 are given" in said and "app built in" in said, said
    assert "Application shutdown complete" in said, said  # the app stopped in order too


def test_a_service_that_cannot_start_says_why_and_ends(tmp_path):
    log = tmp_path / "serve.log"
    (tmp_path / "notes.gpkg").write_text("会议纪要")
    with open(log, "w") as out:
        proc = subprocess.run([sys.executable, "-m", "gridgeo", "serve", "--store", str(tmp_path / "notes.gpkg"),
                               "--port", str(free_port())], stdout=out, stderr=subprocess.STDOUT, timeout=120,
                              env={**os.environ, "GRIDGEO_ANSWER_CACHE": str(tmp_path / "answers")})
    assert proc.returncode == 3
    assert "notes.gpkg" in log.read_text()


def test_a_serving_process_keeps_its_heap_small():
    """gridgeo serve limits glibc's arenas, keeps its mmap threshold fixed and sends Arrow's allocations
    to the system allocator, unless the environment says otherwise (api.boot.small_heap)."""
    # glibc's own account: after a 24 MB block is freed, is a 2 MB block still mapped on its own?
    code = ("import ctypes; from api.boot import small_heap; limited = small_heap(); import pyarrow as pa\n"
            "class Info(ctypes.Structure): _fields_ = [(n, ctypes.c_size_t) for n in "
            "('arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', "
            "'keepcost')]\n"
            "libc = ctypes.CDLL('libc.so.6'); libc.mallinfo2.restype = Info\n"
            "libc.malloc.restype = ctypes.c_void_p; libc.free.argtypes = [ctypes.c_void_p]\n"
            "libc.free(libc.malloc(24 << 20)); before = libc.mallinfo2().hblks; block = libc.malloc(2 << 20)\n"
            "print(limited, pa.default_memory_pool().backend_name, libc.mallinfo2().hblks - before)")
    # every glibc malloc setting out (dask.distributed sets MALLOC_TRIM_THRESHOLD_ for its workers,
    # which fixes the mmap threshold too)
    env = {k: v for k, v in os.environ.items()
           if k != "ARROW_DEFAULT_MEMORY_POOL" and not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    said = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert said.stdout.split() == ["True", "system", "1"]
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**env, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc", "MALLOC_ARENA_MAX": "4"})
    assert said.stdout.split() == ["False", "mimalloc", "1"]
    # left to glibc, the threshold follows the freed block: the 2 MB block comes from the heap
    said = subprocess.run([sys.executable, "-c", code.replace("small_heap()", "False")], env=env,
                          capture_output=True, text=True, check=True)
    assert said.stdout.split()[-1] == "0"


def test_what_answers_before_the_app_imports_none_of_its_libraries(sample_store, tmp_path):
    """The module's promise: boot, its kept answers and the version served are read without pandas, numpy,
    Arrow, FastAPI or gridgeo's store (what takes the app its seconds)."""
    code = ("import sys, api.boot; from gridgeo._served import latest; "
            f"api.boot.KeptAnswers.for_store({str(sample_store)!r}, {str(tmp_path)!r}); "
            f"print(latest({str(sample_store)!r})[0]); "
            "print(sorted(m for m in ('pandas', 'numpy', 'pyarrow', 'fastapi', 'geopandas', 'gridgeo.store') "
            "if m in sys.modules))")
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert said.stdout.split("\n")[:2] == ["1", "[]"]


# --- reading ahead takes the idle moments ---------------------------------------------------------


def test_reading_ahead_waits_while_requests_are_answered(sample_store, tmp_path, monkeypatch):
    """The warm-up reads the one map's values in a quiet moment: not while a request is in flight
    (a burst of first tiles after a restart is answered first), and at once when the service is idle."""
    from api import derived as api_derived
    from api.services import Services

    monkeypatch.setattr("api.services.QUIET_S", 0.1)
    path = tmp_path / "store.gpkg"
    shutil.copy(sample_store, path)
    services = Services(Settings(store=str(path), prepare="off"))  # the tests default to inline, which reads nothing ahead
    try:
        services.traffic.enter()  # a request being answered
        services.start(warm=api_derived.warm)
        time.sleep(1.0)
        version = services.kept.version
        assert services._warming.is_alive() and services.state()["reading_ahead"] is True  # (said in /health)
        assert (version, "tiles") not in services.kept_values  # nothing read ahead in the request's way
        services.traffic.leave()
        services._warming.join(timeout=120)
        assert not services._warming.is_alive() and "reading_ahead" not in services.state()
        read = {name for (v, name, *_) in services.kept_values.keys() if v == version}
        assert {"tiles", "public_figures:authorised", "coverage_per_unit", "uncovered:15", "served:15",
                "events:placed", "events:tally:month"} <= read
    finally:
        services.close()


def test_answers_are_written_in_the_quiet_moments(sample_store, tmp_path):
    """A served answer is queued, not written, while requests are being answered; the writer keeps it
    at the next quiet moment, whole (api.boot.KeptAnswers.later)."""
    from api.boot import KeptAnswers
    from api.services import Traffic

    answers = KeptAnswers.for_store(str(sample_store), str(tmp_path / "answers"))
    version = latest(str(sample_store))[0]
    traffic = Traffic()
    answers.quiet = lambda: traffic.wait_quiet(quiet=0.05)
    scope = {"method": "GET", "path": TILE, "query_string": b"", "headers": [(b"host", b"127.0.0.1")]}
    key = answers.key(scope)
    traffic.enter()
    # a 503 while the version is prepared is not kept, and leaves the address free for the 200 that follows
    answers.later(version, key, scope, 503, [(b"retry-after", b"30")], b"{}")
    assert not answers.has(version, key)
    answers.later(version, key, scope, 200, [(b"content-type", b"application/vnd.mapbox-vector-tile")], b"tile")
    time.sleep(0.5)
    folder = answers.folder(version)
    assert not (folder / key).exists()  # a request is in flight: nothing written yet ...
    assert answers.has(version, key)  # ... and the address is not kept twice meanwhile
    traffic.leave()
    assert answers.flush(timeout=10)  # what a stopping service waits for
    status, headers, body, _ = answers.get(version, key, scope)
    assert (status, body) == (200, b"tile")
    assert (b"content-type", b"application/vnd.mapbox-vector-tile") in headers
