"""The service at city scale from its start: first answers, a publish, memory; tipg as the peer.

The city-scale sample (19 towns, 5,128 units, 800,000 addresses, 816,000
events) is loaded into a GeoPackage store and into PostGIS. For each store,
``gridgeo serve`` (one worker, the default GRIDGEO_PREPARE=background) is
measured from process start (the map's requests asked one after the other
from the first answer on, then readiness):

1. **first start after a load**: nothing prepared yet. Seconds from process
   start to the first answer (``/health``), to ``/health`` saying ready (the
   derived data of the version prepared by the background process), to the
   first tile, to ``/map/config.json``, to the one map's coverage view
   (``/coverage?minutes=15`` and ``/map/served/15.json``), and to the
   stations' service areas ``/coverage/areas?minutes=15`` (prepared after the
   rest: 503 with Retry-After meanwhile).
2. **restart**: the same process started again on the prepared store; the
   same figures (the map's first answers come from the answers the first
   start kept, :mod:`api.boot`, while the app is being built).
3. **publish**: a planner renames one level-2 grid and publishes it through
   ``/plans``; seconds until the new version is served (``/health``), and
   meanwhile, requests of the map (config, figures, a tile, the coverage view)
   back to back: the longest answer and every status seen (a blank answer
   would be a 503 or an error).
4. **memory**: resident memory (VmRSS) of the worker after a scripted use of
   the one map (tiles of every level at every zoom, figures of every level,
   units, coverage view and areas, search, labels, event heat with filters),
   and after an hour-equivalent of such requests (``--hour`` requests, 6,000 by
   default: a few leaders' hour on the one map, heavy answers included), with
   its peak (VmHWM).

The peer: tipg (FastAPI + PostGIS OGC Tiles, installed into its own venv as
``benchmarks/tiles.py`` does) on the same PostGIS tables, started fresh:
process start to first answer and its first tile.

Run ``python benchmarks/startup.py`` (``--help`` for options). PostGIS is a
throwaway server, started and stopped as the tests do theirs. Targets (the
issue): after a restart each figure under 1 s and the first tile no slower
than tipg's; a publish served within 30 s with no blank or mixed answer;
under 1 GB per worker.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import city_sample, report, stop_process  # noqa: E402
from tiles import VIEWS, _database, _tipg_python, tile_mix  # noqa: E402

PAGE = ["/map/config.json", "/vocabulary", "/tiles"]
FIRST = ("grid2", 14, 0, 0)  # the first tile asked of each server: a level-2 tile of the mix (set in main)
TILE = ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hour", type=int, default=6_000, help="requests in the hour-equivalent run")
    parser.add_argument("--stores", default="geopackage,postgis", help="which stores to measure")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--prepared", metavar="GPKG", help="a city GeoPackage already loaded and prepared (e.g. by "
                        "an earlier run): a copy of it is measured from the restart on, GeoPackage only")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    city = _prepared_city(args.prepared) if args.prepared else city_sample()
    mix = tile_mix(city.grids, per_zoom=40, seed=args.seed)
    global FIRST, TILE
    FIRST = next(t for t in mix if t[0] == "grid2" and t[1] == 14)
    TILE = "/tiles/{}/{}/{}/{}.mvt".format(*FIRST)
    work = Path(tempfile.mkdtemp(prefix="gridgeo-bench-startup-"))
    keys = _keys(work)
    script = _map_script(city, mix)
    if args.prepared:
        shutil.copyfile(args.prepared, work / "city.gpkg")
        results = {"geopackage": _measure(str(work / "city.gpkg"), city, work, keys, script, args, load=False)}
        report("geopackage (prepared copy)", list(results["geopackage"].items()))
        print(f"\n(server logs in {work})")
        return
    url, drop = _database()
    results = {}
    try:
        stores = args.stores.split(",")
        if "geopackage" in stores:
            results["geopackage"] = _measure(str(work / "city.gpkg"), city, work, keys, script, args)
        if "postgis" in stores:
            results["postgis"] = _measure(url, city, work, keys, script, args)
            results["tipg"] = _tipg(url, work, city, mix)
    finally:
        drop()
    for store, figures in results.items():
        report(f"{store}", [(k, v) for k, v in figures.items()])
    print(json.dumps(results, indent=1, ensure_ascii=False), file=open(work / "results.json", "w"))
    print(f"\n(results and server logs in {work})")


# --- one store --------------------------------------------------------------------------------------


def _prepared_city(path):
    """What the measurement needs of the city (its grids) read from a prepared store."""
    import types

    import gridgeo.store

    with gridgeo.store.open(path) as store:
        return types.SimpleNamespace(grids=store.read("grids"))


def _measure(url, city, work, keys, script, args, load=True) -> dict:
    import gridgeo.store

    name = "postgis" if url.startswith("postgresql") else "geopackage"
    out = {}
    if load:
        start = time.perf_counter()
        with gridgeo.store.open(url, create=True) as store:
            store.load({"grids": city.grids, "stations": city.stations, "addresses": city.addresses,
                        "events": city.events, "roads": city.roads}, author="bench", progress=False)
        print(f"{name}: loaded the city in {time.perf_counter() - start:.1f} s", flush=True)
    first = _start(url, work, keys, f"{name}-first")  # a prepared store's first start has nothing kept
    try:
        for key, value in first.timeline().items():
            out[f"first start {'after a load' if load else 'of the prepared store'}: {key}"] = f"{value:.2f} s"
    finally:
        first.stop()
    again = _start(url, work, keys, f"{name}-restart")
    try:
        for key, value in again.timeline().items():
            out[f"restart: {key}"] = f"{value:.2f} s"
        for key, value in again.publish(city).items():
            out[f"publish: {key}"] = value
        again.run_script(script)
        out["memory after a scripted use of the one map"] = again.memory()
        done = again.hour(script, args.hour)
        out[f"memory after {done:,} more requests (an hour-equivalent)"] = again.memory()
    finally:
        again.stop()
    print(f"{name}: " + json.dumps(out, ensure_ascii=False, indent=1), flush=True)
    return out


class _Service:
    """``gridgeo serve`` on a free port, timed from the moment its process starts."""

    def __init__(self, url, work, keys, label):
        from api_fixture import free_port

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.keys = keys
        self.log = open(work / f"{label}.log", "w")
        env = {**{k: v for k, v in os.environ.items() if k != "GRIDGEO_TILE_CACHE"},
               "GRIDGEO_ANSWER_CACHE": str(work / "answers"),  # api.boot's answers kept across restarts
               "GRIDGEO_KEYS_FILE": keys["file"], "GRIDGEO_PREPARE": "background", "GRIDGEO_VERSION_TTL": "0.5",
               # one client here stands for the many users of the one map: no per-client rate limits
               "GRIDGEO_RATE_ASSIGN": "0", "GRIDGEO_RATE_AREAS": "0", "GRIDGEO_RATE_ITEMS": "0",
               "GRIDGEO_SELF_PUBLISH": "1"}  # the planner publishes their own plan after its report
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "gridgeo", "serve", "--store", url, "--port",
                                      str(self.port)], env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.client = httpx.Client(base_url=self.base, timeout=600)
        self.url = url

    def since(self) -> float:
        return time.perf_counter() - self.started

    def until(self, path, ok=(200, 204), timeout=1800) -> float:
        """Seconds from process start until ``path`` answers one of ``ok``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited: see {self.log.name}")
            try:
                response = self.client.get(path)
                if response.status_code in ok:
                    return self.since()
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{path} did not answer within {timeout} s")

    def timeline(self) -> dict:
        """Seconds from process start to each answer, asked one after the other from the first
        answer on, as the map asks (it does not wait for readiness); then to readiness."""
        out = {"first answer (/health)": self.until("/health")}
        out["first tile"] = self.until(TILE)
        out["/map/config.json"] = self.until("/map/config.json")
        out["coverage view (/coverage?minutes=15, /map/served/15.json)"] = max(
            self.until("/coverage?minutes=15"), self.until("/map/served/15.json"))
        out["/coverage/areas?minutes=15"] = self.until("/coverage/areas?minutes=15")
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            health = self.client.get("/health").json()
            if health["ready"] and health["status"] != "starting":
                break
            time.sleep(0.1)
        out["app built and ready (/health)"] = self.since()
        return out

    def publish(self, city) -> dict:
        import gridgeo.store

        grid2 = city.grids[city.grids["level"] == "grid2"]
        village = grid2["parent"].iloc[100][:12]
        headers = {"X-API-Key": self.keys["planner"]}
        before = self.client.get("/health").json()["served_version"]
        plan = self.client.post("/plans", json={"name": "bench", "parent": village, "level": "grid2"},
                                headers=headers)
        plan.raise_for_status()
        plan_id = plan.json()["plan"]["id"]
        with gridgeo.store.open(self.url) as store:  # the planner's edit: one grid renamed
            draft = store.plan(plan_id)
            first = draft.read().iloc[:1]
            draft.save(first.assign(name=first["name"] + "（新）"), author="bench")
        unit = {"code": first["code"].iloc[0]}
        seen, longest, stop = {}, [0.0, ""], threading.Event()

        def load():
            paths = ["/map/config.json", f"/stats/unit/{unit['code']}", TILE,
                     "/coverage?minutes=15", "/stats/grid2"]
            with httpx.Client(base_url=self.base, timeout=600) as client:
                while not stop.is_set():
                    for path in paths:
                        t = time.perf_counter()
                        status = client.get(path).status_code
                        took = time.perf_counter() - t
                        seen[status] = seen.get(status, 0) + 1
                        if took > longest[0]:
                            longest[:] = [took, path]

        report = self.client.get(f"/plans/{plan_id}/report", headers=headers)  # read before publishing
        report.raise_for_status()
        threading.Thread(target=load, daemon=True).start()
        time.sleep(2)
        t = time.perf_counter()
        published = self.client.post(f"/plans/{plan_id}/publish", json={"acknowledge": report.json()["version"]},
                                     headers=headers)
        published.raise_for_status()
        new = published.json()["data_version"]
        while self.client.get("/health").json()["served_version"] != new:
            time.sleep(0.1)
        served = time.perf_counter() - t
        time.sleep(1)
        stop.set()
        return {"versions": f"{before} -> {new}", "new version served after": f"{served:.1f} s",
                "longest answer meanwhile": f"{longest[0]:.2f} s ({longest[1]})",
                "statuses meanwhile": json.dumps(seen)}

    def run_script(self, script) -> None:
        for path in script:
            response = self.client.get(path)
            if response.status_code not in (200, 204):
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")

    def hour(self, script, total) -> int:
        paths = Path(self.log.name).with_suffix(".paths")
        paths.write_text("".join(p + "\n" for p in script))
        lua = HERE / "tiles_wrk.lua"
        done = 0
        while done < total:
            out = subprocess.run(["wrk", "-t1", "-c4", "-d20s", "--timeout", "120s", "-s", str(lua), self.base, "--",
                                  str(paths), "loop"], capture_output=True, text=True)
            line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
            if not line:
                raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
            result = json.loads(line[-1])
            if result["errors"]:
                raise RuntimeError(f"wrk saw errors: {result}")
            done += result["answers"]
        return done

    def memory(self) -> str:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss = int(fields["VmRSS"].split()[0]) / 1024
        peak = int(fields["VmHWM"].split()[0]) / 1024
        return f"{rss:.0f} MB resident (peak {peak:.0f} MB)"

    def stop(self) -> None:
        self.client.close()
        stop_process(self.proc, self.log)


def _start(url, work, keys, label) -> _Service:
    return _Service(url, work, keys, label)


def _keys(work) -> dict:
    from api.keys import KeyStore

    path = work / "keys.json"
    store = KeyStore(path)
    return {"file": str(path), "planner": store.add("bench", "planner")}


def _map_script(city, mix) -> list[str]:
    """The requests of a leader's session on the one map, in order."""
    rng = np.random.default_rng(3)
    units = city.grids.sample(60, random_state=3)["code"].tolist()
    levels = ["town", "village", "grid1", "grid2", "grid3"]
    paths = list(PAGE) + [f"/tiles/{lv}.json" for lv in levels]
    paths += [f"/map/labels/{lv}.json" for lv in levels] + [f"/stats/{lv}" for lv in levels]
    paths += [f"/tiles/{level}/{z}/{x}/{y}.mvt" for level, z, x, y in mix]
    paths += [f"/stats/unit/{code}" for code in units]
    paths += [f"/coverage?minutes={m}&level={lv}" for m in (5, 10, 15) for lv in ("village", "grid2")]
    paths += [f"/map/served/{m}.json" for m in (5, 10, 15)] + ["/coverage/areas?minutes=15"]
    paths += [f"/search?q={quote(q)}" for q in ("村", "社区", "网格", "3505821")]  # wrk sends paths as they are
    paths += ["/events/heat", "/events/heat?cell=500", "/events/heat?category=dispute",
              "/events/heat?from=2025-03-01&to=2025-04-01", "/stats/grid2/breaks?field=households"]
    order = rng.permutation(len(paths) - len(PAGE)) + len(PAGE)
    return list(PAGE) + [paths[i] for i in order]


# --- the peer ----------------------------------------------------------------------------------------


def _tipg(url, work, city, mix) -> dict:
    import psycopg

    from api_fixture import free_port

    python = _tipg_python()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {VIEWS}")
        for level in city.grids["level"].unique():
            conn.execute(f"CREATE OR REPLACE VIEW {VIEWS}.{level} AS SELECT fid AS id, code, name, level, parent, "
                         f"geom FROM public.grids WHERE level = '{level}'")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(work / "tipg.log", "w")
    env = {**os.environ, "DATABASE_URL": url, "TIPG_DB_SCHEMAS": json.dumps([VIEWS])}
    started = time.perf_counter()
    proc = subprocess.Popen([str(python), "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1", "--port",
                             str(port), "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        with httpx.Client(base_url=base, timeout=600) as client:
            while True:
                try:
                    client.get("/")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            up = time.perf_counter() - started
            _, z, x, y = FIRST
            client.get(f"/collections/{VIEWS}.grid2/tiles/WebMercatorQuad/{z}/{x}/{y}").raise_for_status()
            first = time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        log.close()
    return {"tipg: first answer": f"{up:.2f} s", "tipg: first tile": f"{first:.2f} s (from process start)"}


if __name__ == "__main__":
    main()
