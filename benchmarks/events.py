"""Event indicators for every unit of every level, 12 months, and Gi* on grid2: gridgeo.events against plain pandas + esda.

On the city sample (816,000 events, 5,117 units):

- gridgeo: ``gridgeo.events.indicators(placed, period="month")``, every level,
  the events placed once (:func:`gridgeo.events.place`, timed apart: it is
  done once per data version);
- plain: the same figures written as a reader would, from the same placement:
  per level and per month, pandas boolean masks and ``groupby`` (sizes,
  ``quantile`` for the median and 90th percentile);
- Gi*: ``gridgeo.events.hotspots(level="grid2", permutations=999)`` against
  libpysal's Queen weights and esda's ``G_Local`` called directly.

Both sides run in the same process, one after the other, and their answers are
compared (counts equal, times and rates to 1e-9, z and p equal).

    python benchmarks/events.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd

import gridgeo
from common import city_sample, median_time, report
from gridgeo import events as gev

START, END = "2025-01-01", "2026-01-01"


def plain_indicators(events, where, grids) -> pd.DataFrame:
    """The indicators of every unit of every level and month, written plainly with pandas."""
    limit = events["category"].map(lambda c: gev.DEFAULT_TIME_LIMITS.get(c, gev.OTHER_TIME_LIMIT)) * \
        pd.Timedelta(hours=1)
    rep, clo = events["reported_at"], events["closed_at"]
    dur = clo - rep
    as_of = max(rep.max(), clo.max()) + pd.Timedelta(seconds=1)
    frames = []
    for level in where.columns.drop(["status", "reason"]):
        code = where[level].astype(object)
        codes = grids.loc[grids["level"] == level, "code"].sort_values().to_numpy()
        for month in pd.period_range(START, pd.Timestamp(END) - pd.Timedelta(days=1), freq="M"):
            s, e = month.start_time, (month + 1).start_time
            t = min(e, as_of)
            done = (clo >= s) & (clo < e)
            is_open = (rep < t) & (clo.isna() | (clo >= t))
            hours = (dur[done] / pd.Timedelta(hours=1)).groupby(code[done])
            table = pd.DataFrame({
                "received": code[(rep >= s) & (rep < e)].value_counts(),
                "closed": code[done].value_counts(),
                "backlog": code[is_open].value_counts(),
                "on_time": code[done & (dur <= limit)].value_counts(),
                "overdue": code[is_open & (rep + limit < t)].value_counts(),
            }).reindex(codes).fillna(0).astype(np.int64)
            table["median_hours"] = hours.quantile(0.5).reindex(codes)
            table["p90_hours"] = hours.quantile(0.9).reindex(codes)
            table["period"] = f"{month:%Y-%m}"
            table.index.name = "code"
            frames.append(table.reset_index())
    out = pd.concat(frames, ignore_index=True)
    out["closure_rate"] = out["closed"] / (out["closed"] + out["backlog"]).replace(0, np.nan)
    out["on_time_rate"] = out["on_time"] / out["closed"].replace(0, np.nan)
    return out


def plain_gi(grids, counts, households, permutations=999, seed=0):
    from esda.getisord import G_Local
    from libpysal.weights import Queen

    units = grids[grids["level"] == "grid2"].sort_values("code")
    rate = counts.reindex(units["code"]).fillna(0) / households.reindex(units["code"]) * 100
    kept = units[(households.reindex(units["code"]) > 0).to_numpy()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = Queen.from_dataframe(kept, ids=list(kept["code"]), use_index=False)
        islands = set(w.islands)
        kept = kept[~kept["code"].isin(islands)]
        w = Queen.from_dataframe(kept, ids=list(kept["code"]), use_index=False)
        g = G_Local(rate.loc[kept["code"]].to_numpy(), w, transform="B", star=True, permutations=permutations,
                    seed=seed, n_jobs=1)
    return pd.DataFrame({"z": g.Zs, "p": g.p_sim}, index=kept["code"].to_numpy())


def main(repeat: int) -> None:
    sample = city_sample()
    grids, events = sample.grids, sample.events
    print(f"{len(events):,} events, {len(grids):,} units: " +
          ", ".join(f"{n:,} {lv}" for lv, n in grids["level"].value_counts().items()))
    index = gridgeo.AssignIndex(grids)
    place, placed = median_time(lambda: gev.place(events, index), repeat=1, warmup=0)

    ours_t, ours = median_time(lambda: gev.indicators(placed, period="month", start=START, end=END),
                               repeat=repeat)
    where = gridgeo.assign(events, index)
    plain_t, plain = median_time(lambda: plain_indicators(events, where, grids), repeat=1, warmup=0)

    a = ours.set_index(["code", "period"]).sort_index()
    b = plain.set_index(["code", "period"]).sort_index()
    assert list(a.index) == list(b.index), "the two tables list different rows"
    for column in ("received", "closed", "backlog", "on_time", "overdue"):
        assert (a[column].to_numpy() == b[column].to_numpy()).all(), column
    for column in ("median_hours", "p90_hours", "closure_rate", "on_time_rate"):
        np.testing.assert_allclose(a[column].to_numpy(float), b[column].to_numpy(float), rtol=1e-9,
                                   equal_nan=True, err_msg=column)

    figures = gridgeo.stats.figures(index, addresses=sample.addresses)
    households = figures["households"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gi_t, gi = median_time(lambda: gev.hotspots(placed, level="grid2", base=figures, permutations=999),
                               repeat=repeat, warmup=0)
    counts = where["grid2"].astype(object).value_counts()
    esda_t, ref = median_time(lambda: plain_gi(grids, counts, households), repeat=repeat, warmup=0)
    mine = gi.set_index("code").loc[ref.index]
    assert (mine["z"].to_numpy() == ref["z"].to_numpy()).all() or np.allclose(mine["z"], ref["z"], rtol=1e-12)
    assert np.allclose(mine["p"], ref["p"], rtol=1e-12)

    filter_t, _ = median_time(lambda: gev.indicators(placed, level="town", period="month", start=START, end=END,
                                                     category=["fire"]), repeat=repeat)
    report("events: indicators and Gi* at city scale (medians)", [
        ("rows (unit x month)", f"{len(ours):,}"),
        ("place events once (per version)", f"{place:.2f} s"),
        ("gridgeo indicators, all levels x 12 months", f"{ours_t:.3f} s"),
        ("plain pandas groupby, same figures", f"{plain_t:.2f} s"),
        ("ratio plain / gridgeo", f"{plain_t / ours_t:.1f}x"),
        ("one filter change (town, fire, 12 months)", f"{filter_t * 1000:.0f} ms"),
        ("gridgeo hotspots grid2, Gi* 999 perms", f"{gi_t:.2f} s"),
        ("libpysal Queen + esda G_Local directly", f"{esda_t:.2f} s"),
        ("ratio esda / gridgeo", f"{esda_t / gi_t:.2f}x"),
        ("answers", "equal (counts exact, times and rates 1e-9, z and p 1e-12)"),
        ("target all units all months < 1 s", "met" if ours_t < 1 else "NOT met"),
    ])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    main(parser.parse_args().repeat)
