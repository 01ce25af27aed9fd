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
    """The peak resident memory of this process and its children while the block runs."""

    def __enter__(self):
        self.me = psutil.Process()
        self.start = self.now()
        self.peak = self.start
        self.running = True
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def now(self):
        total = 0
        for p in [self.me, *self.me.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _watch(self):
        while self.running:
            self.peak = max(self.peak, self.now())
            time.sleep(0.05)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.now())
        self.mb = self.peak / 1e6


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--fraction", type=float, default=0.25,
                        help="share of the addresses and events kept (every k-th)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", nargs="+", default=list(steps(None, None)),
                        help="the steps to run (default all)")
    args = parser.parse_args()
    city = city_sample()
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
