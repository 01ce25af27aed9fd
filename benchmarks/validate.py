"""Validating the whole city-scale hierarchy: gridgeo.validate against maup.doctor.

    python benchmarks/validate.py [--repeat 3]

gridgeo.validate checks all five levels of the city sample (19 towns, ~400
villages, 441 / 1,736 / 2,528 grids, about 5,100 units) for geometry,
overlaps, edge matching, gaps under every parent, nesting, shape and codes,
and locates every problem it finds; its time includes reprojecting to the
metric CRS.

The peer is maup.doctor (maup, the redistricting toolkit), the check planners
reach for in Python. It answers one yes/no per call: does a layer have
overlaps, holes or invalid geometries, and does its union equal a target's.
It runs here on each level, already in the metric CRS, with the level above
as target (level 3, a partial level, alone and holes accepted): fewer checks
than gridgeo's, and nothing located. Then both on the same seeded defects
(a level-2 grid drawn over its sibling, another dropped), to show what each
answers.

Repair: gridgeo.repair on those defects (all levels, given the report)
against maup.smart_repair on the level-2 grids nested within the level-1
grids, the errors left after each counted by gridgeo.validate.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import city_sample, median_time, report  # noqa: E402

import gridgeo  # noqa: E402
from gridgeo.crs import metric_crs  # noqa: E402
from gridgeo.schema import DEFAULT_SCHEME  # noqa: E402


def maup_check(levels):
    """maup.doctor on each level against the level above: True when all pass."""
    import maup

    healthy = True
    with contextlib.redirect_stdout(io.StringIO()):  # doctor prints what it finds
        for level, frame in levels.items():
            parent = DEFAULT_SCHEME.parent_level(level)
            if not DEFAULT_SCHEME.level(level).full:
                healthy &= maup.doctor(frame, accept_holes=True)
            elif parent is None:
                healthy &= maup.doctor(frame)
            else:
                healthy &= maup.doctor(frame, target=levels[parent])
    return healthy


def maup_repair(broken_metric):
    """The grids with level 2 replaced by maup.smart_repair's, nested in level 1."""
    import maup

    grid1 = broken_metric[broken_metric["level"] == "grid1"].reset_index(drop=True)
    grid2 = broken_metric[broken_metric["level"] == "grid2"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        fixed = maup.smart_repair(grid2.reset_index(drop=True), nest_within_regions=grid1)
    out = broken_metric.copy()
    out.loc[grid2.index, "geometry"] = fixed.geometry.to_numpy()
    return out


def seeded(grids):
    """The city grids with a level-2 grid drawn over its sibling and another dropped."""
    broken = grids.copy()
    grid2 = broken.index[broken["level"] == "grid2"]
    first, second = grid2[0], grid2[1]
    broken.loc[first, "geometry"] = broken.loc[first, "geometry"].union(broken.loc[second, "geometry"])
    return broken.drop(index=grid2[100])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    grids = city_sample().grids
    metric = grids.to_crs(metric_crs(grids))
    levels = {lv: metric[metric["level"] == lv].reset_index(drop=True) for lv in DEFAULT_SCHEME.names}

    ours, found = median_time(lambda: gridgeo.validate(grids), repeat=args.repeat)
    peer, healthy = median_time(lambda: maup_check(levels), repeat=args.repeat)
    summary = found.attrs["summary"]

    broken = seeded(grids)
    broken_metric = broken.to_crs(metric.crs)
    broken_levels = {lv: broken_metric[broken_metric["level"] == lv] for lv in DEFAULT_SCHEME.names}
    seeded_report = gridgeo.validate(broken)
    errors = seeded_report[seeded_report["severity"] == "error"]
    peer_verdict = maup_check(broken_levels)

    ours_fix, (repaired, log) = median_time(lambda: gridgeo.repair(broken, seeded_report), repeat=args.repeat,
                                            warmup=0)
    peer_fix, maup_fixed = median_time(lambda: maup_repair(broken_metric), repeat=args.repeat, warmup=0)
    left_ours = gridgeo.validate(repaired).attrs["summary"]["errors"]
    left_peer = gridgeo.validate(maup_fixed).attrs["summary"]["errors"]

    report("Validating the city-scale hierarchy (medians of %d runs)" % args.repeat, [
        ("units checked", f"{summary['units']:,} in {len(summary['levels'])} levels"),
        ("gridgeo.validate", f"{ours:.2f} s ({summary['errors']} errors, {summary['warnings']} warnings)"),
        ("maup.doctor per level", f"{peer:.2f} s (healthy: {healthy})"),
        ("ratio maup / gridgeo", f"{peer / ours:.1f}x"),
    ])
    report("The same two seeded defects (an overlap, a dropped grid)", [
        ("gridgeo.validate", f"{len(errors)} errors located: " + ", ".join(
            f"{k} at {c}" for k, c in zip(errors["kind"], errors["code"]))),
        ("maup.doctor per level", f"healthy: {peer_verdict} (no location)"),
    ])
    report("Repairing them (medians of %d runs)" % args.repeat, [
        ("gridgeo.repair, all levels", f"{ours_fix:.2f} s, {left_ours} errors left, {int((log['step'] != 'not_repaired').sum())} changes logged"),
        ("maup.smart_repair, level 2 in level 1", f"{peer_fix:.2f} s, {left_peer} errors left"),
        ("ratio maup / gridgeo", f"{peer_fix / ours_fix:.1f}x"),
    ])


if __name__ == "__main__":
    main()
