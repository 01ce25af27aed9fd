"""A province on Dask: assignment, figures, coverage, event indicators and validation for 1 to N cities.

The data are the province sample (:func:`gridgeo.sample.province`): copies of
the city sample (19 towns, 5,117 units, 54,000 roads, 1,700 stations, 800,000
addresses, 816,000 events) side by side, one county each. ``--fraction``
keeps every k-th address and event (the grids, roads and stations stay whole)
so that a run fits a shared two-core machine; the figures say which.

Every step runs three ways, one after the other in this process:

- ``memory``: the public function, in this process;
- ``dask-1``, ``dask-2``: the same function with ``client=`` a LocalCluster of
  1 or 2 worker processes (one thread each); assignment through dask-geopandas.

and every Dask answer is compared with the in-memory one (``equal``: frames
equal value for value; coverage's ``component`` column, -1 on Dask, left out).

The steps:

- ``assign``: ``gridgeo.assign(addresses, grids)`` (a one-off: index built inside);
- ``figures``: ``gridgeo.stats.figures(grids, addresses, events, stations)``;
- ``coverage``: ``gridgeo.coverage.nearest_station(addresses, stations, roads,
  limit_m=1000, isolated="unreachable")`` (the network built inside);
- ``indicators``: ``gridgeo.events.indicators(events, grids, period="month")``;
- ``validate``: ``gridgeo.validate(grids)`` (one task per town, with its halo;
  the report compared row for row, geometry aside).

Time is wall time of one run (these steps take seconds to minutes; the
machine is shared, so read the growth, not the third digit). Peak memory is
the largest resident set of this process and its worker processes together,
sampled every 50 ms during the step (the data held included: what the
machine must have).

    python benchmarks/province.py [--cities 1 2 4] [--fraction 0.25] [--workers 1 2] [--steps validate ...]

``--partitioned`` compares, instead, where the inputs are held, for
``figures`` and ``indicators`` on a LocalCluster of 2 workers:

- ``held``: the client reads the whole layers and gives the frames (it
  routes the points to their towns and ships each task its share);
- ``workers``: the layers are written once with
  :func:`gridgeo.distribute.partition` (timed apart: ``write``), and the
  client gives the stored layers; each task reads its town's file on its
  worker, the client holds the grids and the paths.

Each runs in a fresh client process of its own (so that nothing the other
read stays in it), and the figure that matters is the **client's** peak
memory: the resident set of that process alone, sampled every 50 ms, its
worker processes apart (their peak is given too). The two answers are
compared with each other (``equal``).

    python benchmarks/province.py --partitioned [--cities 1 2 4] [--fraction 0.05]

``--partition`` times :func:`gridgeo.distribute.partition` itself, the
layers given as GeoParquet files (row groups of ``--row-group`` rows):

- ``here``: in one process, which reads each file whole in its turn;
- ``cluster``: ``client=`` a LocalCluster of 2 workers (one thread each),
  slices of ``--row-group`` rows read, checked, placed and written by the
  workers, each town's pieces put together by a worker.

Each run is a fresh client process (the cluster started before the clock);
the two alternate ``--repeat`` times and the medians are given: the time, the
CPU time of the client and its workers (what the machine's load does not
change much), the client process's own peak (the LocalCluster's scheduler lives in it) and the
workers' peak. The datasets are compared file for file (``equal``).

    python benchmarks/province.py --partition [--cities 1 2] [--fraction 0.25] [--repeat 3]

``--store`` times ``figures`` (addresses, events, stations) and ``indicators``
(events, by month) of the layers kept in a store (:class:`gridgeo.distribute.StoreLayer`)
on a LocalCluster of 2 workers, for a GeoPackage and a PostGIS store (a
throwaway server, as the tests start theirs), each run a fresh client
process: its time, the client process's peak and the workers' peak, and the
rows the workers read through ``Store.read`` (counted on them). The answers of
every run are compared with the first's (``equal``).

``--events-order time`` writes the events' file in the order of their report
times, as an export of an events table comes (every town in every row group),
instead of town by town as the sample generates them.

``--libraries NAME=PATH ...`` (with ``--partition`` or ``--store``) runs the
client processes with each library on ``PYTHONPATH`` in turn, alternating
within each repeat: a before and after of a change in the same run (one
process mode, ``here``, runs with the first only).

    python benchmarks/province.py --store [--cities 1 2] [--fraction 0.25] [--repeat 3] \
        [--libraries before=../main after=.]
"""

from __future__ import annotations

import argparse
import threading
import time

import pandas as pd
import psutil

import gridgeo
import gridgeo.sample
from common import city_sample, report
from gridgeo import coverage, events, stats

LIMIT_M = 1000.0


class Peak:
    """The peak resident memory of this process and its children while the block runs (``mb``); and of
    this process alone (``alone_mb``) and its children alone (``children_mb``), each its own peak."""

    def __enter__(self):
        self.me = psutil.Process()
        self.peak = self.peak_alone = self.peak_children = 0
        self._sample()
        self.running = True
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        alone = children = 0
        try:
            alone = self.me.memory_info().rss
        except psutil.Error:
            pass
        for p in self.me.children(recursive=True):
            try:
                children += p.memory_info().rss
            except psutil.Error:
                pass
        self.peak = max(self.peak, alone + children)
        self.peak_alone = max(self.peak_alone, alone)
        self.peak_children = max(self.peak_children, children)

    def _watch(self):
        while self.running:
            self._sample()
            time.sleep(0.05)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self._sample()
        self.mb, self.alone_mb, self.children_mb = self.peak / 1e6, self.peak_alone / 1e6, self.peak_children / 1e6


def province(city, n, fraction):
    p = gridgeo.sample.province(city, n)
    step = max(1, round(1 / fraction))
    p.addresses = p.addresses.iloc[::step].reset_index(drop=True)
    p.events = p.events.iloc[::step].reset_index(drop=True)
    return p


def steps(p, client):
    def assign():
        if client is None:
            return gridgeo.assign(p.addresses, p.grids)
        import dask_geopandas

        parts = dask_geopandas.from_geopandas(p.addresses, chunksize=200_000)
        return gridgeo.assign(parts, p.grids).compute()

    return {
        "assign": assign,
        "figures": lambda: stats.figures(p.grids, addresses=p.addresses, events=p.events, stations=p.stations,
                                         client=client),
        "coverage": lambda: coverage.nearest_station(p.addresses, p.stations, p.roads, limit_m=LIMIT_M,
                                                     isolated="unreachable", client=client),
        "indicators": lambda: events.indicators(p.events, p.grids, period="month", client=client),
        "validate": lambda: gridgeo.validate(p.grids, client=client),
    }


def equal(name, got, expected):
    got, expected = pd.DataFrame(got), pd.DataFrame(expected)
    drop = [c for c in ("geometry",) + (("component",) if name == "coverage" else ()) if c in got.columns]
    try:
        pd.testing.assert_frame_equal(got.drop(columns=drop), expected.drop(columns=drop))
    except AssertionError as exc:
        print(f"    {name}: NOT EQUAL: {str(exc)[:300]}")
        return False
    return True


def run(p, engine, workers, expected, rows, chosen):
    from distributed import Client, LocalCluster

    cluster = client = None
    if engine != "memory":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        for name, fn in steps(p, client).items():
            if name not in chosen:
                continue
            with Peak() as peak:
                start = time.perf_counter()
                result = fn()
                seconds = time.perf_counter() - start
            same = "" if engine == "memory" else ("equal" if equal(name, result, expected[name]) else "DIFFERENT")
            if engine == "memory":
                expected[name] = result
            rows.append(dict(step=name, engine=engine, seconds=seconds, peak_mb=peak.mb, answer=same))
            print(f"  {engine:<7} {name:<10} {seconds:8.1f} s  {peak.mb:8.0f} MB  {same}", flush=True)
    finally:
        if client is not None:
            client.close()
            cluster.close()


# --- --partitioned: where the inputs are held ------------------------------------------------------

LAYERS = ("addresses", "events", "stations")


def announced(city, n, fraction, note=""):
    """The province of `n` cities (:func:`province`), its sizes printed."""
    p = province(city, n, fraction)
    print(f"\n{n} cities: {len(p.grids):,} units, {len(p.addresses):,} addresses, {len(p.events):,} events, "
          f"{len(p.stations):,} stations{note}", flush=True)
    return p


def partitioned(args, city):
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from gridgeo import distribute

    table = []
    for n in args.cities:
        p = announced(city, n, args.fraction)
        with tempfile.TemporaryDirectory(prefix="province-") as tmp:
            tmp = Path(tmp)
            p.grids.to_parquet(tmp / "grids.parquet")
            with Peak() as peak:
                start = time.perf_counter()
                distribute.partition(p.grids, {k: getattr(p, k) for k in LAYERS}, tmp / "ds")
                seconds = time.perf_counter() - start
            table.append(dict(cities=n, mode="write", step="partition", seconds=seconds, client_mb=peak.alone_mb,
                              workers_mb=float("nan"), answer=""))
            print(f"  write   partition  {seconds:8.1f} s  {peak.alone_mb:8.0f} MB (this process, the province "
                  "held)", flush=True)
            del p
            answers = {}
            for mode in ("held", "workers"):
                out = tmp / f"{mode}.json"
                subprocess.run([sys.executable, __file__, "--client-run", mode, str(tmp), str(out)], check=True)
                for row in json.loads(out.read_text()):
                    row.update(cities=n, mode=mode)
                    table.append(row)
                answers[mode] = {step: pd.read_parquet(tmp / f"{mode}-{step}.parquet")
                                 for step in ("figures", "indicators")}
            for step in ("figures", "indicators"):
                same = equal(step, answers["workers"][step], answers["held"][step])
                for row in table:
                    if row["cities"] == n and row["step"] == step and row["mode"] == "workers":
                        row["answer"] = "equal" if same else "DIFFERENT"
    frame = pd.DataFrame(table)
    for value, title in (("seconds", "seconds"), ("client_mb", "client process peak, MB (workers apart)"),
                         ("workers_mb", "worker processes peak, MB (together)")):
        print(f"\n{title} (columns: cities)\n"
              + frame.pivot_table(index=["step", "mode"], columns="cities", values=value).round(1).to_string())
    print("\nthe answers from the workers' reads equal the client-held ones:",
          bool((frame["answer"] != "DIFFERENT").all()))
    print("load average (1, 5, 15 min):", " ".join(f"{v:.1f}" for v in psutil.getloadavg()))


def client_run(mode, folder, out):
    """One client process: the inputs held (``held``) or read on the workers (``workers``)."""
    import json
    from pathlib import Path

    import geopandas as gpd
    from distributed import Client, LocalCluster

    from gridgeo import distribute

    folder = Path(folder)
    rows = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        with Peak() as peak:
            start = time.perf_counter()
            grids = gpd.read_parquet(folder / "grids.parquet")
            ds = distribute.dataset(folder / "ds")
            if mode == "held":
                layers = {k: gpd.read_parquet(folder / "ds" / k) .drop(columns="top", errors="ignore")
                          for k in LAYERS}
                for k in LAYERS:  # the points no town holds too: the client holds every input
                    aside = gpd.read_parquet(folder / "ds" / "unplaced" / f"{k}.parquet")
                    layers[k] = pd.concat([layers[k], aside]) if len(aside) else layers[k]
            else:
                layers = {k: ds[k] for k in LAYERS}
            seconds = time.perf_counter() - start
        rows.append(dict(step="read", seconds=seconds, client_mb=peak.alone_mb, workers_mb=peak.children_mb))
        runs = {"figures": lambda: stats.figures(grids, **layers, client=client),
                "indicators": lambda: events.indicators(layers["events"], grids, period="month", client=client)}
        for step, fn in runs.items():
            with Peak() as peak:
                start = time.perf_counter()
                result = fn()
                seconds = time.perf_counter() - start
            pd.DataFrame(result.drop(columns="geometry", errors="ignore")).to_parquet(
                folder / f"{mode}-{step}.parquet")
            rows.append(dict(step=step, seconds=seconds, client_mb=peak.alone_mb, workers_mb=peak.children_mb))
            print(f"  {mode:<7} {step:<10} {seconds:8.1f} s  client {peak.alone_mb:6.0f} MB  "
                  f"workers {peak.children_mb:6.0f} MB", flush=True)
    Path(out).write_text(json.dumps(rows))


# --- --partition: partition itself in one process vs on the cluster --------------------------------


def partition_runs(args, city):
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    table = []
    for n in args.cities:
        p = announced(city, n, args.fraction, f"; files in row groups of {args.row_group:,}")
        with tempfile.TemporaryDirectory(prefix="partition-") as tmp:
            tmp = Path(tmp)
            p.grids.to_parquet(tmp / "grids.parquet")
            if args.events_order == "time":  # as an export of the events table comes: every town in every slice
                p.events = p.events.sort_values("reported_at", kind="stable")
            for k in LAYERS:
                getattr(p, k).to_parquet(tmp / f"{k}.parquet", row_group_size=args.row_group)
            del p
            libraries = args.libraries or [("", None)]
            runs = [("here", *libraries[0])] + [(f"cluster{'@' + name if name else ''}", name, path)
                                                 for name, path in libraries]
            for i in range(args.repeat):
                for mode, _, path in runs:
                    out = tmp / f"{mode}-{i}.json"
                    subprocess.run([sys.executable, __file__, "--partition-run", mode.split("@")[0], str(tmp),
                                    f"{mode}-{i}", str(out), str(args.row_group)], check=True, env=_env(path))
                    row = json.loads(out.read_text())
                    row.update(cities=n, mode=mode, run=i)
                    table.append(row)
                    print(f"  {mode:<15} run {i}  {row['seconds']:7.1f} s  cpu {row['cpu_s']:6.1f} s  "
                          f"client {row['client_mb']:6.0f} MB  workers {row['workers_mb']:6.0f} MB", flush=True)
                    if i:
                        import shutil

                        shutil.rmtree(tmp / f"{mode}-{i}")
            same = all(same_dataset(tmp / f"{mode}-0", tmp / "here-0") for mode, _, _ in runs[1:])
            print(f"  the cluster's dataset is the one process's, file for file: {same}", flush=True)
            for row in table:
                if row["cities"] == n:
                    row["equal"] = same
    frame = pd.DataFrame(table)
    for value, title in (("seconds", "seconds (median)"),
                         ("cpu_s", "CPU seconds, the client and its workers (median)"),
                         ("client_mb", "client process peak, MB (median)"),
                         ("workers_mb", "worker processes peak, MB (median, together)")):
        print(f"\n{title} (columns: cities)\n"
              + frame.pivot_table(index="mode", columns="cities", values=value, aggfunc="median").round(1)
              .to_string())
    print("\nevery dataset equal:", bool(frame["equal"].all()))
    print("load average (1, 5, 15 min):", " ".join(f"{v:.1f}" for v in psutil.getloadavg()))


def same_dataset(got, want) -> bool:
    """The same files; the same manifest; every parquet file the same bytes or the same frame."""
    import geopandas as gpd

    listing = [sorted(str(f.relative_to(d)) for f in d.rglob("*")) for d in (got, want)]
    if listing[0] != listing[1]:
        return False
    if (got / "gridgeo-partition.json").read_text() != (want / "gridgeo-partition.json").read_text():
        return False
    for path in want.rglob("*.parquet"):
        other = got / path.relative_to(want)
        if path.read_bytes() == other.read_bytes():
            continue
        a, b = gpd.read_parquet(other), gpd.read_parquet(path)
        if not (equal("partition", a, b) and a.geometry.geom_equals_exact(b.geometry, 0).all()):
            return False
    return True


def partition_run(mode, folder, i, out, row_group):
    """One client process: partition the files here or on a LocalCluster of 2 workers."""
    import json
    from pathlib import Path

    import geopandas as gpd
    from distributed import Client, LocalCluster

    from gridgeo import distribute

    folder = Path(folder)
    cluster = client = None
    if mode == "cluster":
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        with Peak() as peak:
            start, cpu = time.perf_counter(), cpu_seconds()
            grids = gpd.read_parquet(folder / "grids.parquet")
            distribute.partition(grids, {k: folder / f"{k}.parquet" for k in LAYERS}, folder / i,
                                 client=client, slice_rows=int(row_group))
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    finally:
        if client is not None:
            client.close()
            cluster.close()
    Path(out).write_text(json.dumps(dict(seconds=seconds, cpu_s=cpu, client_mb=peak.alone_mb,
                                         workers_mb=peak.children_mb)))


def _env(path):
    """The environment of a client process with the library at ``path`` (None: this one's)."""
    import os

    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = str(path)
    return env


# --- --store: a store's layers read on the workers ---------------------------------------------------


def store_runs(args, city):
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import postgis_fixture

    import gridgeo.store as gstore

    table = []
    server = postgis_fixture._start(postgis_fixture._bindir())
    try:
        for n in args.cities:
            p = announced(city, n, args.fraction)
            with tempfile.TemporaryDirectory(prefix="province-store-") as tmp:
                tmp = Path(tmp)
                urls = {"gpkg": str(tmp / "province.gpkg"), "postgis": server.new_database(f"bench_{n}")}
                for backend, url in urls.items():
                    start = time.perf_counter()
                    with gstore.open(url, create=True) as store:
                        store.load({"grids": p.grids, **{k: getattr(p, k) for k in LAYERS}}, author="bench",
                                   progress=False)
                    print(f"  {backend}: loaded in {time.perf_counter() - start:.0f} s", flush=True)
                del p
                libraries = args.libraries or [("", None)]
                for i in range(args.repeat):
                    for backend, url in urls.items():
                        for name, path in libraries:
                            mode = f"{backend}{'@' + name if name else ''}"
                            out = tmp / f"{mode}-{i}.json"
                            subprocess.run([sys.executable, __file__, "--store-run", url, str(tmp / f"{mode}-{i}"),
                                            str(out)], check=True, env=_env(path))
                            for row in json.loads(out.read_text()):
                                row.update(cities=n, mode=mode, run=i)
                                table.append(row)
                                print(f"  {mode:<15} run {i} {row['step']:<10} {row['seconds']:7.1f} s  client "
                                      f"{row['client_mb']:6.0f} MB  workers {row['workers_mb']:6.0f} MB  rows read "
                                      f"{row['rows_read']:>9,}", flush=True)
                first = {}
                for row in table:
                    if row["cities"] != n:
                        continue
                    answer = pd.read_parquet(tmp / f"{row['mode']}-{row['run']}-{row['step']}.parquet")
                    key = row["step"]
                    if key not in first:
                        first[key] = answer
                    row["equal"] = equal(key, answer, first[key])
    finally:
        postgis_fixture._stop(server)
    frame = pd.DataFrame(table)
    for value, title in (("seconds", "seconds (median)"), ("client_mb", "client process peak, MB (median)"),
                         ("workers_mb", "worker processes peak, MB (median, together)"),
                         ("rows_read", "rows read by the workers (Store.read)")):
        print(f"\n{title} (columns: cities)\n"
              + frame.pivot_table(index=["step", "mode"], columns="cities", values=value, aggfunc="median")
              .round(1).to_string())
    print("\nevery answer equal:", bool(frame["equal"].all()))
    print("load average (1, 5, 15 min):", " ".join(f"{v:.1f}" for v in psutil.getloadavg()))


def store_run(url, prefix, out):
    """One client process: figures and indicators of a store's layers on a LocalCluster of 2 workers."""
    import json
    from pathlib import Path

    from distributed import Client, LocalCluster

    import gridgeo.store as gstore
    from gridgeo import distribute

    with gstore.open(url) as store:
        grids = store.read("grids")
    rows = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(_count_reads)
        layers = {k: distribute.StoreLayer(url, k) for k in LAYERS}
        runs = {"figures": lambda: stats.figures(grids, **layers, client=client),
                "indicators": lambda: events.indicators(layers["events"], grids, period="month", client=client)}
        for step, fn in runs.items():
            client.run(_count_reads)
            with Peak() as peak:
                start = time.perf_counter()
                result = fn()
                seconds = time.perf_counter() - start
            read = sum(sum(r) for r in client.run(_reads).values())
            pd.DataFrame(result.drop(columns="geometry", errors="ignore")).to_parquet(f"{prefix}-{step}.parquet")
            rows.append(dict(step=step, seconds=seconds, client_mb=peak.alone_mb, workers_mb=peak.children_mb,
                             rows_read=read))
    Path(out).write_text(json.dumps(rows))


def _count_reads():
    """On a worker: count the rows of every Store.read from now on."""
    from gridgeo.store import _store

    if not hasattr(_store.Store.read, "rows"):
        original = _store.Store.read

        def read(self, collection, **options):
            out = original(self, collection, **options)
            read.rows.append(len(out))
            return out

        _store.Store.read = read
    _store.Store.read.rows = []


def _reads():
    from gridgeo.store import _store

    return list(getattr(_store.Store.read, "rows", []))


def cpu_seconds() -> float:
    """The CPU time (user and system) of this process and its live child processes (the workers)."""
    me = psutil.Process()
    return sum(sum(p.cpu_times()[:2]) for p in [me, *me.children(recursive=True)])


def main():
    import sys

    if len(sys.argv) == 5 and sys.argv[1] == "--client-run":
        return client_run(*sys.argv[2:])
    if len(sys.argv) == 7 and sys.argv[1] == "--partition-run":
        return partition_run(*sys.argv[2:])
    if len(sys.argv) == 5 and sys.argv[1] == "--store-run":
        return store_run(*sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--fraction", type=float, default=0.25,
                        help="share of the addresses and events kept (every k-th)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", nargs="+", default=list(steps(None, None)),
                        help="the steps to run (default all)")
    parser.add_argument("--partitioned", action="store_true",
                        help="compare the inputs held by the client with the inputs read on the workers")
    parser.add_argument("--partition", action="store_true",
                        help="time partition itself, in one process and on a cluster of 2 workers")
    parser.add_argument("--row-group", type=int, default=100_000,
                        help="--partition: the input files' row groups, and the workers' slices")
    parser.add_argument("--events-order", choices=("generated", "time"), default="generated",
                        help="--partition: the events' order in their file: as generated (town by town) or by "
                             "report time (every town in every row group)")
    parser.add_argument("--store", action="store_true",
                        help="figures and indicators of a GeoPackage's and a PostGIS store's layers on 2 workers")
    parser.add_argument("--repeat", type=int, default=3, help="--partition, --store: runs of each, alternating")
    parser.add_argument("--libraries", nargs="+", default=None, metavar="NAME=PATH",
                        type=lambda text: tuple(text.split("=", 1)),
                        help="--partition, --store: the client processes run with each library in turn")
    args = parser.parse_args()
    city = city_sample()
    if args.partitioned:
        return partitioned(args, city)
    if args.partition:
        return partition_runs(args, city)
    if args.store:
        return store_runs(args, city)
    table = []
    for n in args.cities:
        p = province(city, n, args.fraction)
        print(f"\n{n} cities: {len(p.grids):,} units, {len(p.addresses):,} addresses, {len(p.events):,} events, "
              f"{len(p.roads):,} roads, {len(p.stations):,} stations", flush=True)
        rows, expected = [], {}
        run(p, "memory", 1, expected, rows, args.steps)
        for w in args.workers:
            run(p, f"dask-{w}", w, expected, rows, args.steps)
        for row in rows:
            row["cities"] = n
        table += rows
        del p, expected
    frame = pd.DataFrame(table)
    seconds = frame.pivot_table(index=["step", "engine"], columns="cities", values="seconds")
    memory = frame.pivot_table(index=["step", "engine"], columns="cities", values="peak_mb")
    print("\nseconds (columns: cities)\n" + seconds.round(1).to_string())
    print("\npeak memory, MB (columns: cities)\n" + memory.round(0).to_string())
    first, last = min(args.cities), max(args.cities)
    rows = []
    for (step, engine), row in seconds.iterrows():
        growth = row[last] / row[first] if row[first] else float("nan")
        rows.append((f"{step} {engine}", f"x{growth:.2f} time for x{last / first:g} data"))
    for step in frame["step"].unique():
        s = seconds.loc[step]
        for w in args.workers:
            rows.append((f"{step} dask-{w} vs dask-{args.workers[0]} at {last} cities",
                         f"{s.loc[f'dask-{args.workers[0]}', last] / s.loc[f'dask-{w}', last]:.2f}x faster"))
    report("How each grows with size and with workers", rows)
    print("\nevery Dask answer equal to the in-memory one:", bool((frame["answer"] != "DIFFERENT").all()))


if __name__ == "__main__":
    main()
