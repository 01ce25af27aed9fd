"""Automatic division of the town sample: gridgeo.plan.suggest_division against spopt's max-p.

    python benchmarks/plan.py [--repeat 3] [--band 300 500] [--villages N] [--peer-timeout 120]

Both work on the same road-bounded blocks (gridgeo.plan.blocks of the
committed town sample, 内坑镇: 28 villages, 31 level-1 grids, 1,958 blocks)
and divide each level-1 grid into level-2 grids by households.

- gridgeo: suggest_division with the band (default 300–500 households per
  grid, both bounds); timed on every village (median of --repeat runs) and on
  the whole town in one call, which includes validating the result.
- peer: spopt's MaxPHeuristic (max-p regionalisation) with the band's floor
  as threshold on households, its default construction and annealing
  iterations, rook contiguity of the same blocks; one run per level-1 grid
  (it is too slow to repeat), stopped after --peer-timeout seconds (its
  annealing can run for many minutes where one region is all the floor
  allows); a stopped run counts as no grids and its time as the timeout.
  Max-p has a floor only: nothing keeps its regions under the ceiling.

Both results are judged the same way: grids within / under / over the band,
contiguity (each grid one polygon), mean Polsby-Popper. Then the planner's
workbench: one edit (reassign a block) and its impact on a village, against
recomputing the figures with a spatial join of the addresses after the edit
(gridgeo.stats.figures, the way without per-block sums).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import median_time, report  # noqa: E402

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import shapely  # noqa: E402

import gridgeo  # noqa: E402
from gridgeo import plan  # noqa: E402
from gridgeo.crs import metric_crs  # noqa: E402


def judged(households, geoms, band):
    """within / under / over, contiguous share and mean Polsby-Popper of grids (metric polygons)."""
    if not len(households):
        return {"grids": 0, "within": 0, "under": 0, "over": 0, "contiguous": 0, "pp": float("nan")}
    low, high = band
    hh = np.asarray(households, dtype=float)
    pp = 4 * np.pi * shapely.area(geoms) / shapely.length(geoms) ** 2
    return {"grids": len(hh), "within": int(((hh >= low) & (hh <= high)).sum()), "under": int((hh < low).sum()),
            "over": int((hh > high).sum()), "contiguous": int((shapely.get_num_geometries(geoms) == 1).sum()),
            "pp": float(np.mean(pp)), "min": float(hh.min()), "max": float(hh.max())}


def maxp(blocks, floor, timeout):
    """spopt max-p on one level-1 grid's blocks, in a child process: (region labels or None, seconds)."""
    import multiprocessing

    queue = multiprocessing.get_context("fork").Queue()
    worker = multiprocessing.get_context("fork").Process(target=_maxp_worker, args=(blocks, floor, queue))
    worker.start()
    try:
        labels, seconds = queue.get(timeout=timeout)
    except Exception:  # queue.Empty: it did not finish in time
        worker.kill()
        labels, seconds = None, float(timeout)
    worker.join()
    return labels, seconds


def _maxp_worker(blocks, floor, queue):
    import libpysal
    from spopt.region import MaxPHeuristic

    frame = blocks.reset_index(drop=True)
    w = libpysal.weights.Rook.from_dataframe(frame, use_index=False, silence_warnings=True)
    np.random.seed(0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MaxPHeuristic(frame, w, ["households"], "households", floor)
        model.solve()
    queue.put((np.asarray(model.labels_), time.perf_counter() - start))


def grids_of(blocks_metric, labels):
    groups = pd.Series(np.arange(len(labels))).groupby(labels)
    geoms = np.array([shapely.coverage_union_all(blocks_metric.geometry.array[idx.to_numpy()])
                      for _, idx in groups])
    hh = blocks_metric["households"].groupby(labels).sum().to_numpy()
    return hh, geoms


def total(rows, key):
    return sum(r[key] for r in rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--band", type=float, nargs=2, default=(300.0, 500.0))
    parser.add_argument("--villages", type=int, default=None, help="only the first N villages (for a quick run)")
    parser.add_argument("--peer-timeout", type=float, default=120.0, help="seconds max-p may take per level-1 grid")
    args = parser.parse_args()
    band = tuple(args.band)

    s = gridgeo.sample.load()
    villages = s.level("village")["code"].tolist()[: args.villages]
    grid1 = s.level("grid1")
    blocks = plan.blocks(s.level("village"), s.roads, s.addresses)
    metric = metric_crs(blocks)
    print(f"内坑镇: {len(villages)} villages, {len(blocks):,} blocks, {int(blocks['households'].sum()):,} households,"
          f" band {band[0]:g}-{band[1]:g}", flush=True)

    ours, peer, times_ours, times_peer, stopped = [], [], [], [], 0
    for code in villages:
        mine = blocks[blocks["parent"] == code]
        state = plan.start(s.grids, code, blocks=mine)
        seconds, draft = median_time(lambda: plan.suggest_division(state, band=band), repeat=args.repeat)
        times_ours.append(seconds)
        metric_units = draft.units.to_crs(metric)
        hh = plan.impact(draft, band=band)["households"].to_numpy()
        ours.append(judged(hh, metric_units.geometry.array, band))
        # the peer on the same blocks, level-1 grid by level-1 grid
        seconds_peer, hh_peer, geoms_peer = 0.0, [], []
        inner = gpd.GeoDataFrame(geometry=mine.geometry.representative_point(), crs=mine.crs)
        owner = gpd.sjoin(inner, grid1[grid1["parent"] == code][["code", "geometry"]], predicate="within")["code"]
        for g1, idx in owner.groupby(owner):
            part = mine.loc[idx.index].to_crs(metric)
            labels, took = maxp(part, band[0], args.peer_timeout)
            seconds_peer += took
            if labels is None:
                stopped += 1
                continue
            h, g = grids_of(part.reset_index(drop=True), labels)
            hh_peer += list(h)
            geoms_peer += list(g)
        times_peer.append(seconds_peer)
        peer.append(judged(hh_peer, np.array(geoms_peer), band))
        print(f"  {code}  gridgeo {seconds:6.2f} s  {ours[-1]['within']:>2}/{ours[-1]['grids']:<2} within   "
              f"max-p {seconds_peer:7.2f} s  {peer[-1]['within']:>2}/{peer[-1]['grids']:<2} within", flush=True)

    town = plan.start(s.grids, s.level("town")["code"].iloc[0], blocks=blocks)
    town_seconds, town_draft = median_time(lambda: plan.suggest_division(town, band=band), repeat=1, warmup=0)
    town_table = plan.impact(town_draft, band=band).attrs["summary"]

    def line(rows, times):
        return (f"{total(rows, 'within')}/{total(rows, 'grids')} within ({total(rows, 'under')} under, "
                f"{total(rows, 'over')} over), {total(rows, 'contiguous')} contiguous, mean Polsby-Popper "
                f"{np.nanmean([r['pp'] for r in rows]):.2f}; {sum(times):.1f} s in all, median "
                f"{statistics.median(times):.2f} s, slowest {max(times):.2f} s per village")

    published = plan.impact(town, band=band)
    published = published[published["code"].str[:12].isin(villages)]
    counts = published["band"].value_counts()
    report(f"division of {len(villages)} villages into level-2 grids, households {band[0]:g}-{band[1]:g}", [
        ("published grids", f"{counts['within']}/{len(published)} within ({counts['under']} under, "
                            f"{counts['over']} over), mean Polsby-Popper {published['polsby_popper'].mean():.2f}"),
        ("gridgeo suggest_division", line(ours, times_ours)),
        ("spopt max-p (floor only)", line(peer, times_peer) + (f"; {stopped} level-1 grid(s) stopped after "
                                                               f"{args.peer_timeout:g} s" if stopped else "")),
        ("time ratio max-p / gridgeo", f"{sum(times_peer) / sum(times_ours):.1f}x"),
        ("whole town in one call", f"{town_seconds:.1f} s (validation included): {town_table['within']}/"
                                   f"{town_table['grids']} within, {len(town_table['non_contiguous'])} "
                                   "non-contiguous"),
    ])

    # the workbench: one edit and its figures
    code = "350582106201"
    state = plan.start(s.grids, code, blocks=blocks[blocks["parent"] == code], stations=s.stations)
    pair = plan.neighbours(state).iloc[0]
    block = plan.border_blocks(state, pair["a"], pair["b"])[:1]
    edit_seconds, edited = median_time(lambda: plan.impact(plan.reassign(state, block, pair["b"])), repeat=7)
    after = plan.reassign(state, block, pair["b"])
    grids = gpd.GeoDataFrame(pd.concat([s.grids[~s.grids["code"].str.startswith(code) |
                                                 s.grids["level"].isin(["town", "village"])],
                                        after.to_grids()], ignore_index=True), geometry="geometry", crs=4490)
    join_seconds, _ = median_time(lambda: gridgeo.stats.figures(grids, addresses=s.addresses,
                                                                stations=s.stations), repeat=7)
    impact_seconds, _ = median_time(lambda: plan.impact(after), repeat=7)
    report("one edit on a village (reassign a block, validate, figures)", [
        ("gridgeo reassign + impact", f"{edit_seconds * 1000:.0f} ms (impact alone {impact_seconds * 1000:.1f} ms)"),
        ("figures by spatial join", f"{join_seconds * 1000:.0f} ms (gridgeo.stats.figures of the town's addresses)"),
        ("ratio impact / join", f"{join_seconds / impact_seconds:.0f}x faster"),
    ])


if __name__ == "__main__":
    main()
