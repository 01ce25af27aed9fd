"""The city's level-2 grids against its police precincts: gridgeo.crosswalk against geopandas.

Both sides answer the same question for the city sample (1,725 level-2 grids,
its police precincts, 800,000 addresses): every overlapping (grid, precinct)
pair with its area in m² (in the grids' metric CRS) and the households and
population of the addresses in it.

- gridgeo: ``gridgeo.crosswalk(grids, precincts, addresses=..., index=...,
  summary=False)`` with the grids' ``AssignIndex`` and the precincts' index
  (``crosswalk.index_other``) built once per version, as the service keeps
  them (their build times reported apart); ``summary=False`` because the
  peer places no unit (nests / split): the call with the summary is timed
  apart, and once more with both indexes built inside the call.
- geopandas: ``geopandas.overlay(how="intersection")`` of the two layers in
  the same metric CRS for the areas, and ``sjoin(predicate="within")`` of
  the addresses to both layers, grouped by pair, for the households.

Every figure is a median over rounds that time both sides one after the
other in the same process; the ratio is the median of the rounds' ratios.
The answers are compared pair by pair.

    python benchmarks/crosswalk.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import geopandas as gpd
import numpy as np
import pandas as pd

import gridgeo
from common import city_sample, median_time, report


def geopandas_crosswalk(grids, precincts, addresses, metric):
    areas = gpd.overlay(grids.to_crs(metric)[["code", "geometry"]],
                        precincts.to_crs(metric)[["precinct_id", "geometry"]],
                        how="intersection", keep_geom_type=True)
    areas["area_m2"] = areas.area
    areas = areas.groupby(["code", "precinct_id"])["area_m2"].sum()
    in_grid = gpd.sjoin(addresses, grids[["code", "geometry"]], predicate="within")["code"]
    in_other = gpd.sjoin(addresses, precincts[["precinct_id", "geometry"]], predicate="within")["precinct_id"]
    both = pd.DataFrame({"code": in_grid, "precinct_id": in_other}).dropna()
    counts = addresses.loc[both.index, ["households", "population"]].groupby(
        [both["code"], both["precinct_id"]]).sum()
    return pd.concat([areas, counts], axis=1).fillna(0)


def main(repeat: int) -> None:
    sample = city_sample()
    if sample.precincts is None:
        raise SystemExit("the cached city sample predates precincts: delete it and run again")
    grids, precincts, addresses = sample.level("grid2"), sample.precincts, sample.addresses
    metric = gridgeo.crs.metric_crs(grids)
    print(f"{len(grids):,} level-2 grids, {len(precincts):,} precincts, {len(addresses):,} addresses")

    build, index = median_time(lambda: gridgeo.AssignIndex(grids), repeat=3, warmup=0)
    build_other, other_index = median_time(
        lambda: gridgeo.crosswalk.index_other(precincts, other_id="precinct_id"), repeat=3, warmup=0)

    def ours(summary=False):
        return gridgeo.crosswalk(grids, precincts, other_id="precinct_id", addresses=addresses, index=index,
                                 other_index=other_index, summary=summary)

    rounds, parts = [], []
    for _ in range(repeat):
        t_ours, table = _timed(ours)
        t_theirs, ref = _timed(lambda: geopandas_crosswalk(grids, precincts, addresses, metric))
        rounds.append((t_ours, t_theirs))
        # the two halves apart: the geometry (no addresses), and the addresses to both layers
        parts.append((
            _timed(lambda: gridgeo.crosswalk(grids, precincts, other_id="precinct_id", index=index,
                                             summary=False))[0],
            _timed(lambda: gpd.overlay(grids.to_crs(metric)[["code", "geometry"]],
                                       precincts.to_crs(metric)[["precinct_id", "geometry"]],
                                       how="intersection", keep_geom_type=True))[0],
            _timed(lambda: (gridgeo.assign(addresses, index, levels="grid2"),
                            gridgeo.assign(addresses, other_index)))[0],
            _timed(lambda: (gpd.sjoin(addresses, grids[["code", "geometry"]], predicate="within"),
                            gpd.sjoin(addresses, precincts[["precinct_id", "geometry"]],
                                      predicate="within")))[0],
            _timed(lambda: ours(summary=True))[0]))
    started = time.perf_counter()
    gridgeo.crosswalk(grids, precincts, other_id="precinct_id", addresses=addresses)
    cold = time.perf_counter() - started
    t_ours = statistics.median(r[0] for r in rounds)
    t_theirs = statistics.median(r[1] for r in rounds)
    ratio = statistics.median(r[1] / r[0] for r in rounds)

    mine = pd.DataFrame(table.drop(columns="geometry")).set_index(["code", "other"])
    mine.index.names = ["code", "precinct_id"]
    real = mine[mine["area_m2"] > 0.01]
    theirs = ref[ref["area_m2"] > 0.01]
    same_pairs = set(real.index) == set(theirs.index)
    joined = real.join(theirs.add_suffix("_gpd"), how="inner")
    area_diff = float(np.max(np.abs(joined["area_m2"] - joined["area_m2_gpd"]) / joined["area_m2_gpd"]))
    hh = mine["households"].groupby(level=[0, 1]).sum()
    hh_ref = ref["households"].reindex(hh.index, fill_value=0)
    summary = ours(summary=True).attrs["summary"]
    report(f"gridgeo.crosswalk, city grid2 x precincts + {len(addresses):,} addresses "
           f"(medians of {repeat} rounds)", [
               ("grid index build (once per version; median of 3)", f"{build:.2f} s"),
               ("precinct index build (once per version; median of 3)", f"{build_other:.2f} s"),
               ("crosswalk, both indexes given", f"{t_ours:.3f} s"),
               ("the same with the summary (every unit placed)",
                f"{statistics.median(p[4] for p in parts):.3f} s"),
               ("crosswalk, both indexes built in the call", f"{cold:.2f} s"),
               ("pairs", f"{len(table):,} ({summary['slivers']:,} slivers)"),
               ("grids", ", ".join(f"{k} {v:,}" for k, v in summary["grids"].items())),
               ("precincts", ", ".join(f"{k} {v:,}" for k, v in summary["other"].items())),
           ])
    report("geopandas.overlay + sjoin x2, same rounds", [("overlay + sjoin", f"{t_theirs:.3f} s")])
    halves = [statistics.median(p[i] for p in parts) for i in range(4)]
    report("the halves apart (medians)", [
        ("geometry: gridgeo.crosswalk without addresses", f"{halves[0]:.3f} s"),
        ("geometry: geopandas.overlay", f"{halves[1]:.3f} s ({halves[1] / halves[0]:.1f}x)"),
        ("addresses: gridgeo.assign to both layers", f"{halves[2]:.3f} s"),
        ("addresses: geopandas.sjoin to both layers", f"{halves[3]:.3f} s ({halves[3] / halves[2]:.1f}x)"),
    ])
    report("ratio (median of the per-round ratios)", [
        ("geopandas / gridgeo (indexes given)", f"{ratio:.1f}x"),
        ("geopandas / gridgeo (indexes built in the call)", f"{t_theirs / cold:.1f}x"),
    ])
    report("identical answers", [
        ("same overlapping pairs (area > 0.01 m²)", "yes" if same_pairs else "NO"),
        ("largest relative area difference", f"{area_diff:.1e}"),
        ("pairs whose households differ", f"{int((hh != hh_ref).sum()):,}"),
        ("households in pairs (gridgeo / geopandas)",
         f"{int(mine['households'].sum()):,} / {int(ref['households'].sum()):,}"),
    ])


def _timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    main(parser.parse_args().repeat)
