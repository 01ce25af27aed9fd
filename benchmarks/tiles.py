"""Vector tiles over HTTP: the gridgeo service against tipg on the same PostGIS data.

The city-scale sample goes into a PostGIS store. Two servers answer tile
requests for the grid levels from it, each in its own fresh process with one
worker on 127.0.0.1:

- gridgeo: ``gridgeo serve --store postgresql://...``,
  ``/tiles/{level}/{z}/{x}/{y}.mvt``;
- tipg (the FastAPI + PostGIS OGC Features and Tiles server, installed from
  PyPI into its own venv, with its default settings), serving one view per
  grid level of the same ``grids`` table,
  ``/collections/tiles.{level}/tiles/WebMercatorQuad/{z}/{x}/{y}``.

The request mix: for every grid level and every zoom from 10 (or the level's
minzoom) to 16, up to ``--per-zoom`` tiles drawn at random among the tiles
that hold some of the level's units, shuffled together (a viewer zooming and
panning asks for about as many tiles at each zoom; the smallest zooms have
fewer tiles than that). wrk (one thread, ``--connections`` connections, the
Lua script ``tiles_wrk.lua``) asks each server for that list:

- cold: every tile once, in a server process that has answered only the one
  warm-up request (a tile outside the mix), so every tile is new to it;
- warm: the same list again and again for ``--warm-seconds``.

For each server the figures are medians over ``--repeat`` fresh processes,
the servers taking turns. The start-up is reported apart: process start to a
first answer, and to the first tile. The store is prepared (``gridgeo prepare``)
after the load, as a service prepares it on its first start, so gridgeo's first
tile is answered from the kept derived data: what every restart sees
(``benchmarks/startup.py`` measures the first start and the preparing itself).
Finally the first ``CHECKED`` tiles of the mix are fetched from both servers
and the units they show compared, so that both are seen to serve the same
data.

What is and is not the same:

- one worker process each (uvicorn, access log on: both servers' defaults);
  gridgeo renders in threads of that process, tipg's queries run in
  PostgreSQL's backend processes (asyncpg pool, up to 10 connections). On a
  2-core machine wrk takes one core and the servers (with PostgreSQL) the
  other;
- tipg keeps its defaults (no tile cache, 4096 extent, 256-unit buffer, no
  simplification); only ``DATABASE_URL`` and ``TIPG_DB_SCHEMAS`` (the schema
  of the views) are set;
- gridgeo's grid tiles carry the unit's figures too (households, population,
  coverage ...: seven attributes more than tipg's ``code``, ``name``,
  ``level``, ``parent``) and are simplified per zoom.

Run ``python benchmarks/tiles.py`` (``--help`` for the options). PostGIS is
a throwaway server, started and stopped as the tests do theirs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import httpx
import numpy as np
import shapely
import shapely.geometry

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import CACHE, city_sample, report  # noqa: E402

TIPG = "tipg==1.6.1"
TIPG_VENV = CACHE / "tipg-venv"
VIEWS = "tiles"  # the schema of tipg's views, one per grid level
WRK_SCRIPT = HERE / "tiles_wrk.lua"
LOWEST_ZOOM, HIGHEST_ZOOM = 10, 16
WARM_UP = ("town", 8, 212, 109)  # the tile holding Jinjiang at zoom 8, outside the mix
CHECKED = 60  # tiles of the mix whose content is compared between the servers
SHOWN = 64**2  # a unit is shown in a tile with more than 64 x 64 tile units (4 x 4 pixels) inside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh server processes per server")
    parser.add_argument("--per-zoom", type=int, default=150, help="tiles per level and zoom, at most")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--warm-seconds", type=float, default=10.0, help="length of each warm run")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    python = _tipg_python()
    city = city_sample()
    mix = tile_mix(city.grids, per_zoom=args.per_zoom, seed=args.seed)
    print(f"request mix: {len(mix):,} distinct tiles over {sorted({m[0] for m in mix})} at zooms "
          f"{LOWEST_ZOOM}-{HIGHEST_ZOOM}, {args.connections} connections, one wrk thread", flush=True)

    url, drop = _database()
    work = Path(tempfile.mkdtemp(prefix="gridgeo-bench-tiles-"))
    try:
        _load(url, city)
        servers = {
            "gridgeo": _Gridgeo(url, work, mix),
            "tipg": _Tipg(url, work, mix, python),
        }
        results = {name: [] for name in servers}
        for run in range(args.repeat):
            for name, target in servers.items():
                outcome = target.measure(connections=args.connections, warm_seconds=args.warm_seconds)
                results[name].append(outcome)
                print(f"run {run + 1} {name}: " + _line(outcome), flush=True)
    finally:
        drop()
    shutil.rmtree(work, ignore_errors=True)  # kept on failure: the servers' logs are there
    _report(results, len(mix), args)
    checked = mix[:CHECKED]
    differ = _different_units(checked, results["gridgeo"][-1]["answers"], results["tipg"][-1]["answers"])
    print(f"  content check: {len(checked) - len(differ)} of {len(checked)} tiles of the mix show the same units from "
          "both servers (units with more than 4 x 4 pixels inside the tile)")
    for (level, z, x, y), only_ours, only_theirs in differ:
        print(f"    {level} {z}/{x}/{y}: only from gridgeo {sorted(only_ours)}, only from tipg {sorted(only_theirs)}")


# --- the request mix ---------------------------------------------------------------------------------


def tile_mix(grids, *, per_zoom: int, seed: int) -> list[tuple[str, int, int, int]]:
    """``(level, z, x, y)`` of up to ``per_zoom`` non-empty tiles per level and zoom, shuffled."""
    from gridgeo.tiles import TMS, grid_layers

    rng = np.random.default_rng(seed)
    mix = []
    for layer in grid_layers(grids):
        mercator = layer.frame.geometry.to_crs(TMS.crs.srs).array
        tree = shapely.STRtree(mercator)
        west, south, east, north = layer.frame.total_bounds
        for z in range(max(LOWEST_ZOOM, layer.minzoom), min(HIGHEST_ZOOM, layer.maxzoom) + 1):
            tiles = list(TMS.tiles(west, south, east, north, [z]))
            boxes = shapely.box(*np.array([tuple(TMS.xy_bounds(t)) for t in tiles]).T)
            holding = np.unique(tree.query(boxes, predicate="intersects")[0])
            chosen = rng.choice(holding, size=min(per_zoom, len(holding)), replace=False)
            mix += [(layer.name, z, tiles[i].x, tiles[i].y) for i in sorted(chosen)]
    order = rng.permutation(len(mix))
    return [mix[i] for i in order]


# --- the data ------------------------------------------------------------------------------------------


def _database():
    """The URL of a new PostGIS database on a throwaway server, and the function that stops the server."""
    import postgis_fixture

    server = postgis_fixture._start(postgis_fixture._bindir())
    return server.new_database("bench_tiles"), lambda: postgis_fixture._stop(server)


def _load(url, city):
    """The city in a gridgeo store, and tipg's views: one per grid level, in schema ``tiles``."""
    import psycopg

    import gridgeo.derived
    import gridgeo.store

    start = time.perf_counter()
    with gridgeo.store.open(url, create=True) as store:
        store.load({"grids": city.grids, "stations": city.stations, "addresses": city.addresses,
                    "events": city.events, "roads": city.roads}, author="bench", progress=False)
        gridgeo.derived.build(store, progress=False)  # `gridgeo prepare`: tiles are drawn from what it keeps
    levels = list(city.grids["level"].unique())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {VIEWS}")
        for level in levels:
            conn.execute(f"CREATE VIEW {VIEWS}.{level} AS SELECT fid AS id, code, name, level, parent, geom "
                         f"FROM public.grids WHERE level = '{level}'")
        conn.execute("ANALYZE")
    print(f"loaded and prepared the city in PostGIS in {time.perf_counter() - start:.1f} s", flush=True)


def _tipg_python() -> Path:
    """The Python of tipg's own venv (made once in the cache): its pins must not move ours."""
    python = TIPG_VENV / "bin" / "python"
    ready = TIPG_VENV / ".installed"
    if not ready.exists() or ready.read_text() != TIPG:
        print(f"installing {TIPG} into {TIPG_VENV} ...", flush=True)
        venv.create(TIPG_VENV, with_pip=True, clear=True)
        run = subprocess.run([str(python), "-m", "pip", "install", "-q", TIPG, "uvicorn[standard]"],
                             capture_output=True, text=True)
        if run.returncode:
            sys.exit(f"could not install {TIPG}:\n{run.stdout}\n{run.stderr}")
        ready.write_text(TIPG)
    return python


# --- the servers -------------------------------------------------------------------------------------


class _Server:
    """A server process on a free loopback port, measured with wrk cold then warm."""

    name = "server"

    def __init__(self, url, work, mix):
        self.url = url
        self.work = work
        self.paths = work / f"{self.name}.paths"
        self.paths.write_text("".join(self.path(*tile) + "\n" for tile in mix))
        self.checked = mix[:CHECKED]

    def path(self, level, z, x, y) -> str:
        raise NotImplementedError

    def command(self, port) -> tuple[list[str], dict]:
        raise NotImplementedError

    def warm_up(self, base) -> float:
        """Seconds the one request before timing takes (a tile outside the mix)."""
        start = time.perf_counter()
        response = httpx.get(base + self.path(*WARM_UP), timeout=600)
        response.raise_for_status()
        return time.perf_counter() - start

    def measure(self, *, connections, warm_seconds) -> dict:
        from api_fixture import free_port

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        argv, env = self.command(port)
        log = open(self.work / f"{self.name}-{port}.log", "w")
        started = time.perf_counter()
        # memory cache only: a disk cache an earlier run left would make the cold run warm
        environ = {k: v for k, v in os.environ.items() if k != "GRIDGEO_TILE_CACHE"}
        proc = subprocess.Popen(argv, env={**environ, **env}, cwd=self.work, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            up = _wait_for(base, proc, log.name) - started
            first = self.warm_up(base)
            cold = _wrk(base, self.paths, "once", connections=connections)
            warm = _wrk(base, self.paths, "loop", connections=connections, seconds=warm_seconds)
            with httpx.Client(base_url=base, timeout=60) as client:
                answers = [client.get(self.path(*tile)).content for tile in self.checked]
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
        return {"start": up, "first": first, "cold": cold, "warm": warm, "answers": answers}


class _Gridgeo(_Server):
    name = "gridgeo"

    def path(self, level, z, x, y):
        return f"/tiles/{level}/{z}/{x}/{y}.mvt"

    def command(self, port):
        return ([sys.executable, "-m", "gridgeo", "serve", "--store", self.url, "--port", str(port),
                 "--workers", "1"], {})


class _Tipg(_Server):
    name = "tipg"

    def __init__(self, url, work, mix, python):
        self.python = python
        super().__init__(url, work, mix)

    def path(self, level, z, x, y):
        return f"/collections/{VIEWS}.{level}/tiles/WebMercatorQuad/{z}/{x}/{y}"

    def command(self, port):
        env = {"DATABASE_URL": self.url, "TIPG_DB_SCHEMAS": json.dumps([VIEWS])}
        return ([str(self.python), "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
                 "--workers", "1"], env)


def _wait_for(base, proc, log, timeout=120) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}: see {log}")
        try:
            httpx.get(base + "/", timeout=5)
            return time.perf_counter()
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not answer within {timeout} s: see {log}")


def _wrk(base, paths, mode, *, connections, seconds=600.0) -> dict:
    """wrk over the list (``once``: every tile once; ``loop``: for ``seconds``), its JSON line."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "60s",
            "-s", str(WRK_SCRIPT), base, "--", str(paths), mode]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if mode == "once":
        for line in proc.stderr:
            if "list done" in line:
                proc.send_signal(signal.SIGINT)  # wrk reports at once instead of sleeping out -d
                break
    out, err = proc.communicate()
    found = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode or not found:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}\n{err}")
    result = json.loads(found[-1])
    if result["errors"]:
        raise RuntimeError(f"wrk saw {result['errors']} errors against {base}: {result}")
    return result


def _different_units(tiles, ours, theirs) -> list:
    """The tiles where one server shows a unit the other leaves out: (tile, only ours, only theirs).

    A unit is shown with more than ``SHOWN`` tile units of it inside the tile,
    and left out with less than half that, so that a unit right at the
    threshold (simplified a little differently) does not count.
    """
    import mapbox_vector_tile

    def areas(data):
        layers = mapbox_vector_tile.decode(data) if data else {}
        features = next(iter(layers.values()))["features"] if layers else []
        inside = shapely.box(0, 0, 4096, 4096)
        return {f["properties"]["code"]: shapely.geometry.shape(f["geometry"]).intersection(inside).area
                for f in features}

    def only(a, b):
        return {code for code, area in a.items() if area > SHOWN and b.get(code, 0) < SHOWN / 2}

    differ = []
    for tile, a, b in zip(tiles, ours, theirs):
        a, b = areas(a), areas(b)
        if only(a, b) or only(b, a):
            differ.append((tile, only(a, b), only(b, a)))
    return differ


# --- the report ----------------------------------------------------------------------------------------


def _line(outcome) -> str:
    cold, warm = outcome["cold"], outcome["warm"]
    return (f"start {outcome['start']:.1f} s, first tile {outcome['first']:.1f} s; "
            f"cold {cold['per_second']:.0f}/s p50 {cold['p50_ms']:.1f} ms p95 {cold['p95_ms']:.1f} ms "
            f"{cold['statuses']}; warm {warm['per_second']:.0f}/s p50 {warm['p50_ms']:.2f} ms "
            f"p95 {warm['p95_ms']:.2f} ms")


def _report(results, tiles, args) -> None:
    def median(name, phase, key):
        return statistics.median(run[phase][key] for run in results[name])

    def start(name, key):
        return statistics.median(run[key] for run in results[name])

    header = f"{'server':<9} {'cold tiles/s':>12} {'p50 ms':>7} {'p95 ms':>7} {'warm tiles/s':>12} " \
             f"{'p50 ms':>7} {'p95 ms':>7} {'bytes/tile':>10}"
    print(f"\ntiles over HTTP: {tiles:,} distinct tiles, zooms {LOWEST_ZOOM}-{HIGHEST_ZOOM}, one worker process "
          f"each, wrk 1 thread x {args.connections} connections, medians of {args.repeat} runs")
    print(header)
    for name in results:
        print(f"{name:<9} {median(name, 'cold', 'per_second'):>12.0f} {median(name, 'cold', 'p50_ms'):>7.1f} "
              f"{median(name, 'cold', 'p95_ms'):>7.1f} {median(name, 'warm', 'per_second'):>12.0f} "
              f"{median(name, 'warm', 'p50_ms'):>7.2f} {median(name, 'warm', 'p95_ms'):>7.2f} "
              f"{median(name, 'cold', 'bytes') / median(name, 'cold', 'answers'):>10.0f}")
    rows = [
        ("cold throughput: gridgeo / tipg",
         f"{median('gridgeo', 'cold', 'per_second') / median('tipg', 'cold', 'per_second'):.2f}x (target >= 1)"),
        ("warm throughput: gridgeo / tipg",
         f"{median('gridgeo', 'warm', 'per_second') / median('tipg', 'warm', 'per_second'):.2f}x (target >= 10)"),
        ("warm p95: gridgeo", f"{median('gridgeo', 'warm', 'p95_ms'):.2f} ms (target < 10)"),
        ("gridgeo: process start to first answer", f"{start('gridgeo', 'start'):.1f} s"),
        ("gridgeo: first tile (from kept derived data)", f"{start('gridgeo', 'first'):.1f} s"),
        ("tipg: process start to first answer (catalog)", f"{start('tipg', 'start'):.1f} s"),
        ("tipg: first tile", f"{start('tipg', 'first'):.2f} s"),
    ]
    report("ratios and start-up (medians)", rows)


if __name__ == "__main__":
    main()
