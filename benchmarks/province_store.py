"""A province in PostGIS: load, prepare, start, and one county's requests against the city's own store.

Two PostGIS stores on one throwaway server (started as the tests start
theirs), filled in the same run on the same machine:

- ``city``: the city sample (19 towns, 5,128 units, 1,700 stations, 54,000
  roads, addresses and events);
- ``province``: :func:`gridgeo.sample.province` of ``--cities`` copies of that
  city side by side, one county each. Copy 0 *is* the city, with the same
  codes and coordinates, so every request of the county below is the same URL
  on both services and must give the same answer.

``--fraction`` keeps every k-th address and event of the city (grids,
stations and roads whole) so that a run fits a shared two-core machine; the
figures say which.

For each store:

1. ``gridgeo load <sample directory> --store URL`` (the GeoParquet files the
   sample writes) in a child process: wall seconds and its peak resident
   memory (``/usr/bin/time``'s maximum RSS);
2. ``gridgeo prepare``: the same;
3. ``gridgeo serve`` (one worker) on the prepared store: seconds from process
   start to ``/health`` saying ready, to the first tile and to
   ``/map/config.json``, and until it has read ahead what the first requests
   ask (``/health`` no longer saying ``reading_ahead``: it reads in idle
   moments, so a service asked at once reads later).

Then, both having read ahead (the same state), both services run side by side and the county's requests alternate
between them (the machine's noise falls on both alike):

- ``tile``: distinct tiles of every grid level at z12-z14 inside the city,
  each asked once (cold: drawn, not cached), then all again (warm);
- ``items``: ``/collections/grid2/items?bbox=<the city's bbox>&limit=100``;
- ``unit``: ``/stats/unit/<town>`` for some towns;
- ``indicators``: ``/events/indicators?level=village&unit=<town>`` as a viewer
  (its first answer per service computes the level's table) and anonymously.

Every answer of the province's service is compared with the city's (the same
JSON; for tiles the same features, their ids aside: a feature's id is its row in
the layer): ``equal`` says so.
Latency is the median (and 90th percentile) wall time of the client's request
in milliseconds; ``ratio`` is province / city.

    python benchmarks/province_store.py [--cities 2] [--fraction 0.25] [--repeat 15]

``--base town`` builds both stores from the committed town sample instead: a
one-minute check that the script runs, not a measurement. Results:
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import city_sample, report, stop_process  # noqa: E402

import gridgeo.sample  # noqa: E402

ZOOMS = (12, 13, 14)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", type=int, default=2, help="cities in the province")
    parser.add_argument("--fraction", type=float, default=0.25, help="share of the addresses and events kept")
    parser.add_argument("--repeat", type=int, default=15, help="times each non-tile request is asked")
    parser.add_argument("--tiles", type=int, default=8, help="tiles per level and zoom")
    parser.add_argument("--base", choices=("city", "town"), default="city",
                        help="town: the committed town sample instead (a quick check of this script)")
    args = parser.parse_args()

    import postgis_fixture

    base = city_sample() if args.base == "city" else gridgeo.sample.load()
    step = max(1, round(1 / args.fraction))
    base.addresses = base.addresses.iloc[::step].reset_index(drop=True)
    base.events = base.events.iloc[::step].reset_index(drop=True)
    work = Path(tempfile.mkdtemp(prefix="gridgeo-bench-pgprov-"))
    server = postgis_fixture._start(postgis_fixture._bindir())
    services = {}
    figures: dict[str, dict] = {"city": {}, "province": {}}
    try:
        samples = {"city": gridgeo.sample.province(base, 1), "province": gridgeo.sample.province(base, args.cities)}
        urls = {}
        for name, sample in samples.items():
            print(f"{name}: {len(sample.grids):,} units, {len(sample.addresses):,} addresses, "
                  f"{len(sample.events):,} events, {len(sample.roads):,} roads, {len(sample.stations):,} stations",
                  flush=True)
            folder = sample.write(work / name, format="parquet")
            urls[name] = server.new_database(f"bench_{name}")
            figures[name]["load"] = _timed([sys.executable, "-m", "gridgeo", "load", str(folder), "--store",
                                            urls[name], "--no-progress", "--author", "bench"], work / f"{name}-load")
            figures[name]["prepare"] = _timed([sys.executable, "-m", "gridgeo", "prepare", "--store", urls[name],
                                               "--quiet"], work / f"{name}-prepare")
            figures[name]["tables"] = _sizes(urls[name])
            print(f"  {name}: {json.dumps(figures[name], ensure_ascii=False)}", flush=True)
        keys = _keys(work)
        city = samples["city"]
        tiles = _tiles(city.grids, args.tiles)
        for name in samples:
            services[name] = _Service(urls[name], work, keys, name)
            figures[name]["start"] = services[name].timeline(tiles[0])
            print(f"  {name}: start {json.dumps(figures[name]['start'])}", flush=True)
        for name, service in services.items():  # both in the same state: what the first requests ask, read
            figures[name]["start"]["read ahead"] = service.read_ahead()
        rows = _requests(services, city, tiles, keys, args.repeat)
    finally:
        for service in services.values():
            service.stop()
        postgis_fixture._stop(server)
    _print(figures, rows, args)
    print(f"\n(server logs in {work})")


# --- measuring ------------------------------------------------------------------------------------


def _timed(command, log) -> dict:
    """Wall seconds and peak resident memory (MB) of a child process."""
    with open(f"{log}.log", "w") as out:
        start = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M", *command], stdout=out, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - start
    text = Path(f"{log}.log").read_text("utf-8", errors="replace")
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n{text[-3000:]}")
    kb = int(text.rsplit("maxrss_kb=", 1)[1].split()[0])
    return {"seconds": round(seconds, 1), "peak_mb": round(kb / 1024)}


def _sizes(url) -> dict:
    """Rows of the layers, and the size of the database."""
    import psycopg

    with psycopg.connect(url) as conn:
        out = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
               for t in ("grids", "addresses", "events", "roads", "stations")}
        out["database_mb"] = round(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20)
    return out


def _tiles(grids, per_zoom) -> list[str]:
    """Distinct tile paths of every level at z12-z14 holding the city's units."""
    from tiles import tile_mix

    mix = [t for t in tile_mix(grids, per_zoom=per_zoom, seed=5) if t[1] in ZOOMS]
    return ["/tiles/{}/{}/{}/{}.mvt".format(*t) for t in mix]


def _keys(work) -> dict:
    from api.keys import KeyStore

    path = work / "keys.json"
    store = KeyStore(path)
    return {"file": str(path), "viewer": store.add("bench", "viewer")}


def _requests(services, city, tiles, keys, repeat) -> list[dict]:
    """Every request asked of both services in turn; wall times and whether the answers agree."""
    towns = city.grids.loc[city.grids["level"] == "town", "code"].tolist()[:5]
    x0, y0, x1, y1 = city.grids.total_bounds
    viewer = {"X-API-Key": keys["viewer"]}
    asks = [("tile (cold)", path, {}, 1) for path in tiles] + [("tile (warm)", path, {}, 1) for path in tiles]
    asks += [("items grid2 bbox=city limit=100", f"/collections/grid2/items?bbox={x0},{y0},{x1},{y1}&limit=100",
              {}, repeat)]
    asks += [("/stats/unit/<town>", f"/stats/unit/{t}", {}, max(1, repeat // len(towns))) for t in towns]
    asks += [("indicators viewer (first)", f"/events/indicators?level=village&unit={towns[0]}", viewer, 1)]
    asks += [("indicators viewer", f"/events/indicators?level=village&unit={t}", viewer,
              max(1, repeat // len(towns))) for t in towns]
    asks += [("indicators public", f"/events/indicators?level=village&unit={t}", {},
              max(1, repeat // len(towns))) for t in towns]
    rows = []
    for label, path, headers, times in asks:
        answers = {}
        for _ in range(times):
            for name, service in services.items():
                start = time.perf_counter()
                response = service.client.get(path, headers=headers)
                took = time.perf_counter() - start
                if response.status_code != 200:
                    raise RuntimeError(f"{name} {path}: {response.status_code} {response.text[:300]}")
                answers[name] = response
                rows.append({"request": label, "store": name, "ms": took * 1000})
        same = _same(answers["city"], answers["province"])
        rows.append({"request": label, "store": "equal", "ms": float(same)})
    return rows


def _same(a, b) -> bool:
    """Whether two answers say the same: JSON without its links and time stamp (the fields that differ
    printed, to the leaf); tiles decoded, the county's features only (a tile at the city's edge also holds
    the neighbouring county's units in the province: rightly), without the feature ids (a unit's row number
    in its layer, which differs in the province)."""
    if a.headers.get("content-type", "").startswith(("application/geo+json", "application/json")):
        ja, jb = a.json(), b.json()
        for j in (ja, jb):
            j.pop("links", None)
            j.pop("timeStamp", None)
        if ja != jb:
            found = _differences(ja, jb)
            print(f"    differs: {str(a.request.url.path)} {len(found)} field(s): {found[:8]}", flush=True)
        return ja == jb
    if a.content == b.content:
        return True
    import mapbox_vector_tile

    def features(content):
        layers = mapbox_vector_tile.decode(content) if content else {}
        return {name: [{k: v for k, v in f.items() if k != "id"} for f in layer["features"]
                       if str(f["properties"].get("code", COUNTY)).startswith(COUNTY)]
                for name, layer in layers.items()}
    fa, fb = features(a.content), features(b.content)
    if fa != fb:
        for name in fa:
            for x, y in zip(fa[name], fb.get(name, [])):
                if x != y:
                    keys = sorted(k for k in set(x["properties"]) | set(y["properties"])
                                  if x["properties"].get(k) != y["properties"].get(k))
                    print(f"    differs: {a.request.url.path} {name} {x['properties'].get('code')}: "
                          f"{[(k, x['properties'].get(k), y['properties'].get(k)) for k in keys]}"
                          f"{'' if x['geometry'] == y['geometry'] else ' and its geometry'}", flush=True)
                    break
    return fa == fb


COUNTY = "350582"
"""The county both services hold (copy 0 of the province is the city)."""


def _differences(a, b, path="") -> list:
    """(path, a's value, b's value) of every leaf where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [(path, a, b)]


class _Service:
    """``gridgeo serve`` on a free port, timed from the moment its process starts."""

    def __init__(self, url, work, keys, label):
        from api_fixture import free_port

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(work / f"{label}-serve.log", "w")
        env = {**{k: v for k, v in os.environ.items() if k != "GRIDGEO_TILE_CACHE"},
               "GRIDGEO_KEYS_FILE": keys["file"], "GRIDGEO_PREPARE": "background",
               "GRIDGEO_RATE_ASSIGN": "0", "GRIDGEO_RATE_AREAS": "0", "GRIDGEO_RATE_ITEMS": "0"}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "gridgeo", "serve", "--store", url, "--port",
                                      str(self.port)], env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.client = httpx.Client(base_url=self.base, timeout=600)

    def since(self) -> float:
        return time.perf_counter() - self.started

    def until(self, path, timeout=1800) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited: see {self.log.name}")
            try:
                if self.client.get(path).status_code == 200:
                    return round(self.since(), 2)
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{path} did not answer within {timeout} s")

    def timeline(self, tile) -> dict:
        out = {"first answer": self.until("/health")}
        while not self.client.get("/health").json()["ready"]:
            time.sleep(0.1)
        out["ready"] = round(self.since(), 2)
        out["first tile"] = self.until(tile)
        out["/map/config.json"] = self.until("/map/config.json")
        return out

    def read_ahead(self, timeout=300.0) -> float:
        """Seconds from the process's start until ``/health`` no longer says ``reading_ahead`` (the values
        the first requests ask for, read in the service's idle moments)."""
        deadline = time.perf_counter() + timeout
        while self.client.get("/health").json().get("reading_ahead") and time.perf_counter() < deadline:
            time.sleep(0.5)
        return round(self.since(), 2)

    def memory(self) -> str:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return f"{int(fields['VmRSS'].split()[0]) / 1024:.0f} MB"

    def stop(self) -> None:
        try:
            print(f"  {self.base}: worker resident memory {self.memory()}", flush=True)
        except (OSError, KeyError):
            pass
        self.client.close()
        stop_process(self.proc, self.log)


def _print(figures, rows, args) -> None:
    import pandas as pd

    lines = []
    for what in ("load", "prepare"):
        c, p = figures["city"][what], figures["province"][what]
        lines.append((f"{what}: seconds city / province", f"{c['seconds']} / {p['seconds']}  "
                      f"(x{p['seconds'] / c['seconds']:.2f} for x{args.cities} data)"))
        lines.append((f"{what}: peak MB city / province", f"{c['peak_mb']} / {p['peak_mb']}"))
    for key in figures["city"]["start"]:
        c, p = figures["city"]["start"][key], figures["province"]["start"][key]
        lines.append((f"start to {key}: s city / province", f"{c} / {p}  (x{p / c:.2f})"))
    lines.append(("database MB city / province", f"{figures['city']['tables']['database_mb']} / "
                                                f"{figures['province']['tables']['database_mb']}"))
    report(f"province of {args.cities} cities vs the city, PostGIS, fraction {args.fraction}", lines)
    frame = pd.DataFrame(rows)
    equal = frame[frame["store"] == "equal"].groupby("request")["ms"].min().astype(bool)
    times = frame[frame["store"] != "equal"]
    table = times.groupby(["request", "store"])["ms"].agg(median="median", p90=lambda s: np.percentile(s, 90),
                                                          n="size").unstack("store")
    out = pd.DataFrame({"city ms": table[("median", "city")], "province ms": table[("median", "province")],
                        "ratio": table[("median", "province")] / table[("median", "city")],
                        "city p90": table[("p90", "city")], "province p90": table[("p90", "province")],
                        "n": table[("n", "city")], "equal": equal})
    print("\nthe county's requests (median ms; ratio province / city)\n" + out.round(2).to_string())


if __name__ == "__main__":
    main()
