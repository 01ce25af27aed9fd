"""gridgeo.events against plain pandas and esda, computed here from a covers-join of the raw events.

Every indicator is recounted from ``geopandas.sjoin(predicate="within")`` of
the events to the units and a plain groupby per period, never with
gridgeo.assign or gridgeo.events; Gi* and local Moran's I against esda called
here on Queen weights built here; and on data nobody here made (the Columbus
tracts bundled with libpysal).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from columbus import columbus_towns, events_at
from gridgeo import events as gev

QUANTILE = {"median_hours": 0.5, "p90_hours": 0.9}


# --- the independent reference ----------------------------------------------------------------


def joined(events, grids, level):
    """Each event with the code of the unit of ``level`` it lies within (sjoin)."""
    units = grids.loc[grids["level"] == level, ["code", "geometry"]]
    pairs = gpd.sjoin(events, units, predicate="within", how="inner")
    assert not pairs.index.duplicated().any()
    return pairs


def reference(events, grids, level, freq, limits, start=None, end=None):
    """Indicators per (code, period) written plainly: one pass per period, pandas groupbys."""
    pairs = joined(events, grids, level)
    rep, clo = pairs["reported_at"], pairs["closed_at"]
    limit = pairs["category"].map(lambda c: limits.get(c, gev.OTHER_TIME_LIMIT)) * pd.Timedelta(hours=1)
    dur = clo - rep
    as_of = max(events["reported_at"].max(), events["closed_at"].max()) + pd.Timedelta(seconds=1)
    first = pd.Timestamp(start) if start is not None else events["reported_at"].min()
    last = pd.Timestamp(end) if end is not None else events["reported_at"].max() + pd.Timedelta(seconds=1)
    periods = pd.period_range(first.to_period(freq), (last - pd.Timedelta(seconds=1)).to_period(freq), freq=freq)
    codes = grids.loc[grids["level"] == level, "code"]
    rows = []
    for p in periods:
        s, e = p.start_time, (p + 1).start_time
        t = min(e, as_of)
        received = pairs[(rep >= s) & (rep < e)].groupby("code").size()
        closed_now = (clo >= s) & (clo < e)
        closed = pairs[closed_now].groupby("code").size()
        on_time = pairs[closed_now & (dur <= limit)].groupby("code").size()
        is_open = (rep < t) & (clo.isna() | (clo >= t))
        backlog = pairs[is_open].groupby("code").size()
        overdue = pairs[is_open & (rep + limit < t)].groupby("code").size()
        hours = (dur[closed_now] / pd.Timedelta(hours=1)).groupby(pairs.loc[closed_now, "code"])
        table = pd.DataFrame({"received": received, "closed": closed, "backlog": backlog, "on_time": on_time,
                              "overdue": overdue}).reindex(codes).fillna(0).astype(np.int64)
        table["median_hours"] = hours.quantile(0.5).reindex(codes)
        table["p90_hours"] = hours.quantile(0.9).reindex(codes)
        table["period_start"] = s
        rows.append(table)
    out = pd.concat(rows)
    out.index.name = "code"
    out = out.reset_index()
    out["closure_rate"] = out["closed"] / (out["closed"] + out["backlog"]).replace(0, np.nan)
    out["on_time_rate"] = out["on_time"] / out["closed"].replace(0, np.nan)
    return out.set_index(["code", "period_start"]).sort_index()


def compare(ours, theirs):
    ours = ours.set_index(["code", "period_start"]).sort_index()
    assert list(ours.index) == list(theirs.index)
    for column in ("received", "closed", "backlog", "on_time", "overdue"):
        np.testing.assert_array_equal(ours[column].to_numpy(), theirs[column].to_numpy(), err_msg=column)
    for column in ("median_hours", "p90_hours", "closure_rate", "on_time_rate"):
        np.testing.assert_allclose(ours[column].to_numpy(float), theirs[column].to_numpy(float), rtol=1e-9,
                                   equal_nan=True, err_msg=column)


@pytest.fixture(scope="module")
def placed(sample):
    return gev.place(sample.events, sample.grids)


# --- every indicator against the reference -------------------------------------------------------


@pytest.mark.parametrize("level", ["town", "village", "grid2", "grid3"])
def test_monthly_indicators_equal_a_plain_groupby(sample, placed, level):
    ours = gev.indicators(placed, level=level, period="month")
    assert (ours["level"] == level).all()
    assert ours["period"].iloc[:12].tolist() == [f"2025-{m:02d}" for m in range(1, 13)]
    compare(ours, reference(sample.events, sample.grids, level, "M", gev.DEFAULT_TIME_LIMITS))
    assert ours["backlog"].sum() > 0 and ours["overdue"].sum() > 0 and ours["closed"].sum() > 0


@pytest.mark.parametrize("period,freq", [("week", "W-SUN"), ("quarter", "Q"), ("day", "D")])
def test_other_periods_equal_a_plain_groupby(sample, placed, period, freq):
    ours = gev.indicators(placed, level="village", period=period, start="2025-03-01", end="2025-07-01")
    compare(ours, reference(sample.events, sample.grids, "village", freq, gev.DEFAULT_TIME_LIMITS,
                            start="2025-03-01", end="2025-07-01"))


def test_a_custom_limit_table_and_a_category(sample, placed):
    limits = {"dispute": 5, "fire": 200, "road": 1}  # the rest get OTHER_TIME_LIMIT
    ours = gev.indicators(placed, level="grid1", period="quarter", time_limits=limits, category=["dispute", "road"])
    chosen = sample.events[sample.events["category"].isin(["dispute", "road"])]
    theirs = reference(chosen, sample.grids, "grid1", "Q", limits, start=sample.events["reported_at"].min())
    compare(ours, theirs)
    default = gev.indicators(placed, level="grid1", period="quarter", category=["dispute", "road"])
    assert (ours["on_time"].sum() < default["on_time"].sum())  # 5 h and 1 h are stricter than 72 h


def test_one_span_and_as_of(sample, placed):
    ours = gev.indicators(placed, level="town", period=None, start="2025-03-01", end="2025-04-01")
    assert ours["period"].tolist() == ["2025-03-01/2025-03-31"]
    ev = sample.events
    march = (ev["reported_at"] >= "2025-03-01") & (ev["reported_at"] < "2025-04-01")
    assert int(ours["received"].iloc[0]) == int(march.sum())
    end = pd.Timestamp("2025-04-01")
    assert int(ours["backlog"].iloc[0]) == int(((ev["reported_at"] < end) &
                                                (ev["closed_at"].isna() | (ev["closed_at"] >= end))).sum())
    early = gev.indicators(placed, level="town", period=None, start="2025-03-01", end="2025-04-01",
                           as_of="2025-03-15")
    cut = pd.Timestamp("2025-03-15")
    assert int(early["backlog"].iloc[0]) == int(((ev["reported_at"] < cut) &
                                                 (ev["closed_at"].isna() | (ev["closed_at"] >= cut))).sum())


def test_by_category_sums_to_the_total(placed):
    total = gev.indicators(placed, level="village", period="month")
    split = gev.indicators(placed, level="village", period="month", by="category")
    assert set(split["category"]) == set(placed.category.categories)
    summed = split.groupby(["code", "period"])[["received", "closed", "backlog", "overdue"]].sum()
    mine = total.set_index(["code", "period"])[["received", "closed", "backlog", "overdue"]]
    pd.testing.assert_frame_equal(summed.sort_index(), mine.sort_index(), check_dtype=False)


# --- hierarchy ------------------------------------------------------------------------------------


def test_parents_sum_their_children_and_medians_come_from_events(placed):
    table = gev.indicators(placed, level=["village", "grid1"], period="month")
    villages = table[table["level"] == "village"].set_index(["code", "period"])
    grids1 = table[table["level"] == "grid1"]
    sums = grids1.groupby(["parent", "period"])[["received", "closed", "backlog", "on_time", "overdue"]].sum()
    sums.index.names = ["code", "period"]
    pd.testing.assert_frame_equal(sums.sort_index(), villages[sums.columns].loc[sums.index].sort_index(),
                                  check_dtype=False)


def two_villages():
    """One town of two villages side by side; village A gets one slow event, B three quick ones."""
    grids = gpd.GeoDataFrame({
        "code": ["350582100", "350582100001", "350582100002"], "name": ["镇", "A", "B"],
        "level": ["town", "village", "village"], "parent": ["", "350582100", "350582100"]},
        geometry=[box(118.0, 24.0, 118.02, 24.01), box(118.0, 24.0, 118.01, 24.01), box(118.01, 24.0, 118.02, 24.01)],
        crs=4490)
    t0 = pd.Timestamp("2025-05-04 09:00")
    hours = [10.0, 1.0, 2.0, 3.0]
    events = gpd.GeoDataFrame({
        "event_id": ["a", "b1", "b2", "b3"], "category": "dispute", "status": "closed",
        "reported_at": [t0] * 4, "closed_at": [t0 + pd.Timedelta(hours=h) for h in hours]},
        geometry=shapely.points([(118.005, 24.005), (118.015, 24.005), (118.015, 24.004), (118.016, 24.006)]),
        crs=4490)
    return grids, events, hours


def test_a_parents_median_is_not_the_average_of_its_childrens():
    grids, events, hours = two_villages()
    table = gev.indicators(events, grids, period="month").set_index("code")
    assert table.loc["350582100001", "median_hours"] == 10.0
    assert table.loc["350582100002", "median_hours"] == 2.0
    assert table.loc["350582100", "median_hours"] == float(np.median(hours)) == 2.5  # averaging says 6
    assert table.loc["350582100", "p90_hours"] == pytest.approx(pd.Series(hours).quantile(0.9))
    assert int(table.loc["350582100", "closed"]) == 4


# --- period labels --------------------------------------------------------------------------------


def test_iso_weeks_across_the_year_boundary_and_quarters():
    grids, events, _ = two_villages()
    days = ["2025-12-28 10:00", "2025-12-29 10:00", "2026-01-04 10:00", "2026-01-05 10:00"]
    events = events.assign(reported_at=pd.to_datetime(days), closed_at=pd.NaT)
    weeks = gev.indicators(events, grids, level="town", period="week")
    assert weeks["period"].tolist() == ["2025-W52", "2026-W01", "2026-W02"]
    assert weeks["received"].tolist() == [1, 2, 1]
    assert weeks["backlog"].tolist() == [1, 3, 4]
    quarters = gev.indicators(events, grids, level="town", period="quarter")
    assert quarters["period"].tolist() == ["2025-Q4", "2026-Q1"]
    assert gev.indicators(events, grids, level="town", period="year")["period"].tolist() == ["2025", "2026"]
    assert gev.indicators(events, grids, level="town", period="day", start="2025-12-31",
                          end="2026-01-02")["period"].tolist() == ["2025-12-31", "2026-01-01"]
    q = gev.indicators(events.assign(reported_at=pd.to_datetime(["2025-03-31 23:59:59", "2025-04-01 00:00:00",
                                                                 "2025-06-30 00:00:00", "2025-07-01 00:00:00"])),
                       grids, level="town", period="quarter")
    assert q["period"].tolist() == ["2025-Q1", "2025-Q2", "2025-Q3"]
    assert q["received"].tolist() == [1, 2, 1]


def test_bad_parameters_say_what_to_send(placed):
    with pytest.raises(gev.EventsError, match="period must be one of"):
        gev.indicators(placed, period="fortnight")
    with pytest.raises(gev.EventsError, match="no level"):
        gev.indicators(placed, level="county")
    with pytest.raises(gev.EventsError, match="span is empty"):
        gev.indicators(placed, start="2025-05-01", end="2025-04-01")
    with pytest.raises(gev.EventsError, match="positive hours"):
        gev.indicators(placed, time_limits={"fire": -1})


# --- trends, ranking, stages ----------------------------------------------------------------------


def test_trends_take_the_period_before_and_the_year_before(sample, placed):
    t = gev.trends(placed, level="village", period="month", start="2025-02-01", indicator=["received", "backlog"])
    ref = reference(sample.events, sample.grids, "village", "M", gev.DEFAULT_TIME_LIMITS)
    ref = ref.reset_index()
    ref["period"] = ref["period_start"].dt.strftime("%Y-%m")
    ref = ref.set_index(["code", "period"])
    row = t[(t["period"] == "2025-06")].set_index("code")
    for code in row.index[:10]:
        assert row.loc[code, "received_pop"] == ref.loc[(code, "2025-06"), "received"] - \
            ref.loc[(code, "2025-05"), "received"]
    assert t["received_yoy"].isna().all()  # nothing in 2024
    assert t["period"].min() == "2025-02"
    assert not t["received_pop"].isna().any()  # January is computed, though not listed


def test_ranking_orders_the_units_by_the_indicator(placed):
    r = gev.ranking(placed, indicator="closure_rate", level="village", at="2025-06")
    table = gev.indicators(placed, level="village", period="month")
    june = table[table["period"] == "2025-06"].set_index("code")["closure_rate"]
    may = table[table["period"] == "2025-05"].set_index("code")["closure_rate"]
    assert r["code"].tolist() == june.sort_values(ascending=False, kind="stable").index.tolist() or \
        r["value"].is_monotonic_decreasing
    assert r["value"].tolist() == june.loc[r["code"]].tolist()
    np.testing.assert_allclose(r["change"], (june - may).loc[r["code"]])
    assert int(r["rank"].iloc[0]) == 1
    expected_rank = june.rank(method="min", ascending=False).loc[r["code"]].astype(int).tolist()
    assert r["rank"].astype(int).tolist() == expected_rank


def test_stages_are_medians_of_each_step(sample):
    grids, events, hours = two_villages()
    t0 = events["reported_at"]
    events = events.assign(filed_at=t0 + pd.Timedelta(hours=0.5), dispatched_at=t0 + pd.Timedelta(hours=0.75),
                           handled_at=pd.NaT, verified_at=pd.NaT)
    st = gev.stages(events, grids, level="town").iloc[0]
    assert st["filing_hours"] == 0.5 and st["filing_events"] == 4
    assert st["dispatch_hours"] == 0.25
    assert st["handling_events"] == 0 and np.isnan(st["handling_hours"])
    assert st["whole_hours"] == 2.5


# --- hot spots against esda -----------------------------------------------------------------------


def households_per_grid2(sample):
    pairs = gpd.sjoin(sample.addresses, sample.grids[sample.grids["level"] == "grid2"][["code", "geometry"]],
                      predicate="within")
    return pairs.groupby("code")["households"].sum()


@pytest.mark.parametrize("method", ["gi", "moran"])
def test_hotspots_equal_esda_on_queen_weights(sample, placed, method):
    from esda.getisord import G_Local
    from esda.moran import Moran_Local
    from libpysal.weights import Queen

    households = households_per_grid2(sample)
    base = pd.DataFrame({"households": households})
    ours = gev.hotspots(placed, level="grid2", base=base, method=method, permutations=199, seed=7).set_index("code")
    units = sample.grids[sample.grids["level"] == "grid2"].set_index("code").sort_index()
    counts = joined(sample.events, sample.grids, "grid2").groupby("code").size().reindex(units.index).fillna(0)
    rate = counts * 100 / households.reindex(units.index)  # events x 100 / households, as the rule says
    kept = units[rate.notna().to_numpy() & (households.reindex(units.index) > 0).to_numpy()]
    w = Queen.from_dataframe(kept.reset_index(), ids=list(kept.index), use_index=False)
    assert not w.islands
    y = rate.loc[kept.index].to_numpy()
    if method == "gi":
        g = G_Local(y, w, transform="B", star=True, permutations=199, seed=7, n_jobs=1)
        z, p = g.Zs, g.p_sim
        expected = np.where(p < 0.05, np.where(z > 0, "hot", "cold"), "none")
    else:
        m = Moran_Local(y, w, transformation="r", permutations=199, seed=7, n_jobs=1)
        z, p = m.z_sim, m.p_sim
        expected = np.where(p < 0.05, np.where(m.q == 1, "hot", np.where(m.q == 3, "cold", "none")), "none")
    np.testing.assert_array_equal(ours.loc[kept.index, "z"], z)  # the same seed: the same answer, bit for bit
    np.testing.assert_array_equal(ours.loc[kept.index, "p"], p)
    assert ours.loc[kept.index, "class"].astype(str).tolist() == list(expected)
    np.testing.assert_array_equal(ours.loc[kept.index, "rate"], y)


def test_emerging_hotspots_follow_the_stated_rule(sample, placed):
    from scipy.stats import kendalltau

    base = pd.DataFrame({"households": households_per_grid2(sample)})
    e = gev.emerging_hotspots(placed, level="grid2", base=base, period="quarter", permutations=49).set_index("code")
    per = [gev.hotspots(placed, level="grid2", base=base, permutations=49, start=s, end=t).set_index("code")
           for s, t in [("2025-01-01", "2025-04-01"), ("2025-04-01", "2025-07-01"), ("2025-07-01", "2025-10-01"),
                        ("2025-10-01", "2026-01-01")]]
    for code in e.index:
        z = [h.loc[code, "z"] for h in per]
        hot = [h.loc[code, "class"] == "hot" for h in per]
        tau, p = kendalltau(range(4), z)
        up, down = p < 0.05 and tau > 0, p < 0.05 and tau < 0
        if hot[-1] and sum(hot) == 1:
            expected = "new"
        elif hot[-1] and up:
            expected = "intensifying"
        elif sum(hot) >= 3.6 and not up and not down:
            expected = "persistent"
        elif any(hot) and down:
            expected = "diminishing"
        elif per[-1].loc[code, "class"] == "cold":
            expected = "cold"
        else:
            expected = "none"
        assert e.loc[code, "class"] == expected, code


# --- on data nobody here made: libpysal's Columbus tracts -------------------------------------------


@pytest.fixture(scope="module")
def columbus():
    tracts, grids = columbus_towns()
    rng = np.random.default_rng(3)
    # events in proportion to the tracts' recorded crime rate, at random points inside them
    per = rng.poisson(tracts["CRIME"].to_numpy() * 3)
    where = np.repeat(np.arange(len(tracts)), per)
    points = shapely.get_geometry(gpd.GeoSeries(grids.geometry.to_numpy()[where]).sample_points(1, rng=rng)
                                  .to_numpy(), 0)
    return grids, events_at(points, rng), tracts


def test_columbus_indicators_and_gi(columbus):
    from esda.getisord import G_Local
    from libpysal.weights import Queen

    grids, events, tracts = columbus
    ours = gev.indicators(events, grids, level="town", period="quarter")
    compare(ours, reference(events, grids, "town", "Q", gev.DEFAULT_TIME_LIMITS))
    h = gev.hotspots(events, grids, level="town", permutations=999, seed=1).set_index("code")
    w = Queen.from_dataframe(tracts)  # libpysal's own weights of its own polygons
    y = joined(events, grids, "town").groupby("code").size().reindex(grids["code"]).fillna(0).to_numpy(float)
    g = G_Local(y, w, transform="B", star=True, permutations=999, seed=1, n_jobs=1)
    np.testing.assert_array_equal(h["z"].to_numpy(), g.Zs)
    np.testing.assert_array_equal(h["p"].to_numpy(), g.p_sim)
    assert (h["class"] == "hot").sum() > 0


def test_an_island_is_not_tested_and_is_said(columbus):
    grids, events, _ = columbus
    far = gpd.GeoDataFrame({"code": ["350582199"], "name": ["island"], "level": "town", "parent": ""},
                           geometry=[box(118.9, 24.9, 118.91, 24.91)], crs=4490)
    grids = pd.concat([grids, far], ignore_index=True)
    h = gev.hotspots(events, grids, level="town", permutations=99).set_index("code")
    assert h.attrs["islands"] == ["350582199"]
    assert np.isnan(h.loc["350582199", "z"]) and h.loc["350582199", "class"] == "none"
    assert h.loc["350582199", "neighbours"] == 0
    assert h["z"].notna().sum() == 49


@pytest.mark.parametrize("method", ["gi", "moran"])
def test_units_without_a_base_leave_the_weights_as_queen_on_the_others_alone(columbus, method):
    """Every neighbour of one tract has no households: the tract is left an island, and the others are tested
    on the weights libpysal builds on their own polygons, whatever was asked of the same placed events before."""
    from esda.getisord import G_Local
    from esda.moran import Moran_Local
    from libpysal.weights import Queen

    grids, events, tracts = columbus
    whole = Queen.from_dataframe(tracts, use_index=False)
    lonely = min(whole.neighbors, key=lambda i: (whole.cardinalities[i], i))
    no_base = sorted(whole.neighbors[lonely])
    households = np.full(len(grids), 50.0)
    households[no_base] = 0
    base = pd.DataFrame({"households": households}, index=grids["code"])
    placed = gev.place(events, grids)
    other = "moran" if method == "gi" else "gi"
    before = gev.hotspots(placed, level="town", base=base, method=other, permutations=99, seed=4)
    ours = gev.hotspots(placed, level="town", base=base, method=method, permutations=999, seed=4)
    codes = grids["code"].to_numpy()
    assert ours.attrs["islands"] == [codes[lonely]]
    assert ours.attrs["no_base"] == list(codes[no_base])
    kept = [i for i in range(len(tracts)) if i != lonely and i not in no_base]
    w = Queen.from_dataframe(tracts.iloc[kept].reset_index(drop=True), use_index=False)  # built on the tested tracts alone
    y = (joined(events, grids, "town").groupby("code").size().reindex(codes).fillna(0).to_numpy(float)
         * 100 / 50)[kept]
    if method == "gi":
        r = G_Local(y, w, transform="B", star=True, permutations=999, seed=4, n_jobs=1)
        z, p = r.Zs, r.p_sim
    else:
        r = Moran_Local(y, w, transformation="r", permutations=999, seed=4, n_jobs=1)
        z, p = r.z_sim, r.p_sim
    np.testing.assert_array_equal(ours["z"].to_numpy()[kept], z)
    np.testing.assert_array_equal(ours["p"].to_numpy()[kept], p)
    assert ours["neighbours"].to_numpy()[kept].tolist() == [w.cardinalities[i] for i in range(len(kept))]
    assert ours.loc[[lonely, *no_base], "z"].isna().all() and (ours.loc[[lonely, *no_base], "neighbours"] == 0).all()
    assert (ours.loc[[lonely, *no_base], "class"] == "none").all()
    again = gev.hotspots(gev.place(events, grids), level="town", base=base, method=other, permutations=99, seed=4)
    pd.testing.assert_frame_equal(before, again)  # a fresh index: the same answer


def test_no_unit_with_a_base_tests_none(columbus):
    grids, events, _ = columbus
    base = pd.DataFrame({"households": 0.0}, index=grids["code"])
    h = gev.hotspots(events, grids, level="town", base=base, permutations=99)
    assert h["z"].isna().all() and (h["class"] == "none").all() and (h["neighbours"] == 0).all()
    assert h.attrs["no_base"] == list(grids["code"]) and h.attrs["islands"] == []


def _odd_shapes():
    """Towns with a hole and the town inside it, a part of a multipolygon meeting another town at a corner, a
    vertex lying on another town's edge without being one of its vertices (no neighbour by the vertex rule),
    and an island; laid out near Jinjiang."""
    from shapely import affinity
    from shapely.geometry import MultiPolygon, Polygon

    shapes = [Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (3, 1), (3, 3), (1, 3)]]),  # a hole
              box(1, 1, 3, 3),  # fills it
              MultiPolygon([box(4, 0, 5, 1), box(6, 6, 7, 7)]),  # a part at the first's corner, one away
              box(7, 7, 8, 8),  # meets that part at a corner
              box(10, 0, 11, 1),  # its corners lie on the next one's edge
              box(11, -1, 12, 2),
              box(20, 20, 21, 21)]  # an island
    placed = [affinity.affine_transform(g, [0.01, 0, 0, 0.01, 118.5, 24.6]) for g in shapes]
    return gpd.GeoDataFrame({"code": [f"350582{101 + i}" for i in range(len(placed))],
                             "name": [f"t{i}" for i in range(len(placed))], "level": "town", "parent": ""},
                            geometry=placed, crs=4490)


def test_the_weights_are_libpysals_queen_at_every_level(sample, columbus):
    """The level's weights made once per index (vectorised) are libpysal's Queen of the same polygons, pair for
    pair: the sample's five levels, libpysal's Columbus tracts, and rings, holes and parts."""
    import gridgeo
    from libpysal.weights import Queen

    for grids in (sample.grids, columbus[0], _odd_shapes()):
        index = gridgeo.AssignIndex(grids)
        for level in index.levels:
            codes = list(index.codes[level])
            units = index.grids.set_index("code").loc[codes].reset_index()
            theirs = Queen.from_dataframe(units, ids=codes, use_index=False, silence_warnings=True)
            ours = gev._queen(index, level)
            assert ours.id_order == codes
            assert {c: sorted(ours.neighbors[c]) for c in codes} == {c: sorted(theirs.neighbors[c]) for c in codes}
            assert gev._queen(index, level) is ours  # made once
    odd = gev._queen(gridgeo.AssignIndex(_odd_shapes()), "town")
    assert {c: sorted(n) for c, n in odd.neighbors.items()} == {
        "350582101": ["350582102", "350582103"], "350582102": ["350582101"], "350582103": ["350582101", "350582104"],
        "350582104": ["350582103"], "350582105": [], "350582106": [], "350582107": []}


# --- the public minimum count -----------------------------------------------------------------------


def test_public_indicators_never_show_or_give_away_fewer_than_k(sample, placed):
    from test_disclosure import K, check_no_small_sum

    from gridgeo import disclosure

    table = gev.indicators(placed, period="month")
    public = disclosure.public_indicators(table, K)
    assert "on_time" not in public.columns
    parents = sample.grids.set_index("code")["parent"]
    checked = 0
    for month in ("2025-02", "2025-08"):
        rows = public[public["period"] == month].set_index("code")
        start = pd.Timestamp(month + "-01")
        raw = pd.concat([reference(sample.events, sample.grids, lv, "M", gev.DEFAULT_TIME_LIMITS)
                         .xs(start, level="period_start") for lv in ("town", "village", "grid1", "grid2", "grid3")])
        for column in ("received", "closed", "backlog", "overdue"):
            shown = rows[column].notna()
            got = rows.loc[shown, column].astype(float)
            np.testing.assert_array_equal(got.to_numpy(), raw.loc[got.index, column].astype(float).to_numpy())
            assert ((got == 0) | (got >= K)).all(), column
            small = raw.index[(raw[column] > 0) & (raw[column] < K)]
            assert not shown.reindex(small).any(), f"{column} {month}: a count below {K} is published"
        for column in ("median_hours", "p90_hours", "on_time_rate"):  # their denominator is closed
            assert rows.loc[rows["closed"].isna(), column].isna().all()
        assert rows.loc[rows["closed"].isna() | rows["backlog"].isna(), "closure_rate"].isna().all()
        shown = rows["overdue"].notna() & rows["backlog"].notna()
        open_in_time = raw.loc[shown[shown].index, "backlog"] - raw.loc[shown[shown].index, "overdue"]
        assert ((open_in_time == 0) | (open_in_time >= K)).all()
        values = {c: (raw[c].reindex(rows.index), rows[c].isna()) for c in ("received", "closed", "backlog",
                                                                             "overdue")}
        checked += check_no_small_sum(rows, values, parents.reindex(rows.index), {})
        suppressed = rows["suppressed"]
        assert suppressed.any() and not suppressed.all()
    assert checked > 100
    with pytest.raises(disclosure.DisclosureError, match="not public"):
        disclosure.public_indicators(gev.indicators(placed, level="town", by="category"), K)


# --- one unit, or the whole area (what the one map's cards show) ----------------------------------


def whole_reference(events, freq, limits):
    """The whole area's indicators per period, written plainly over every event given (no join)."""
    rep, clo = events["reported_at"], events["closed_at"]
    limit = events["category"].map(lambda c: limits.get(c, gev.OTHER_TIME_LIMIT)) * pd.Timedelta(hours=1)
    dur = clo - rep
    as_of = max(rep.max(), clo.max()) + pd.Timedelta(seconds=1)
    rows = []
    for p in pd.period_range(rep.min().to_period(freq), rep.max().to_period(freq), freq=freq):
        s, e = p.start_time, (p + 1).start_time
        t = min(e, as_of)
        closed_now = (clo >= s) & (clo < e)
        is_open = (rep < t) & (clo.isna() | (clo >= t))
        hours = dur[closed_now] / pd.Timedelta(hours=1)
        rows.append({"period_start": s, "received": int(((rep >= s) & (rep < e)).sum()),
                     "closed": int(closed_now.sum()), "backlog": int(is_open.sum()),
                     "on_time": int((closed_now & (dur <= limit)).sum()),
                     "overdue": int((is_open & (rep + limit < t)).sum()),
                     "median_hours": hours.quantile(0.5), "p90_hours": hours.quantile(0.9)})
    out = pd.DataFrame(rows)
    out["closure_rate"] = out["closed"] / (out["closed"] + out["backlog"]).replace(0, np.nan)
    out["on_time_rate"] = out["on_time"] / out["closed"].replace(0, np.nan)
    return out.assign(code="").set_index(["code", "period_start"])


def test_the_whole_area_is_every_placed_event_counted_as_pandas_does(sample):
    # the villages as the top level (28 units, not the sample's one town), and one event outside them all
    grids = sample.grids[sample.grids["level"] != "town"]
    stray = sample.events.iloc[[0]].assign(event_id="stray", category="dispute", geometry=shapely.points([(100.0, 30.0)]))
    placed = gev.place(pd.concat([sample.events, stray]), grids)
    disputes = sample.events[sample.events["category"] == "dispute"]
    ours = gev.region(placed, period="month", category="dispute")
    assert ours.attrs["unplaced"] == 1
    assert (ours["code"] == "").all() and (ours["level"] == "").all()
    compare(ours, whole_reference(disputes, "M", gev.DEFAULT_TIME_LIMITS))
    # its counts are the sums of the top level's, its medians are not their average
    villages = gev.indicators(placed, level="village", period="month", category="dispute")
    sums = villages.groupby("period")[["received", "closed", "backlog", "on_time", "overdue"]].sum()
    np.testing.assert_array_equal(sums.to_numpy(), ours.set_index("period")[sums.columns].to_numpy())


def test_one_unit_is_its_own_row_of_the_reference(sample, placed):
    code = sample.grids.loc[sample.grids["level"] == "grid2", "code"].iloc[7]
    ours = gev.region(placed, unit=code, period="quarter", category=["dispute", "road"])
    chosen = sample.events[sample.events["category"].isin(["dispute", "road"])]
    theirs = reference(chosen, sample.grids, "grid2", "Q", gev.DEFAULT_TIME_LIMITS,
                       start=sample.events["reported_at"].min())
    assert ours["level"].eq("grid2").all() and ours["name"].iloc[0] == sample.grids.set_index("code").at[code, "name"]
    compare(ours, theirs.loc[[code]])
    with pytest.raises(gev.EventsError, match="no unit with code"):
        gev.region(placed, unit="999")


def test_the_overview_is_the_region_and_the_levels_counted_as_pandas_does(sample, placed):
    """One pass (gridgeo.events.overview) gives what region() and indicators() give apart, and both are the
    plain pandas reference: the whole area, a village, and two levels at once."""
    chosen = sample.events[sample.events["category"].isin(["dispute", "road"])]
    whole, table = gev.overview(placed, level=["grid2", "town"], period="month", category=["dispute", "road"])
    pd.testing.assert_frame_equal(whole, gev.region(placed, period="month", category=["dispute", "road"]))
    pd.testing.assert_frame_equal(table, gev.indicators(placed, level=["grid2", "town"], period="month",
                                                        category=["dispute", "road"]))
    assert whole.attrs == table.attrs and whole.attrs["period"] == "month"
    compare(whole, whole_reference(chosen, "M", gev.DEFAULT_TIME_LIMITS))
    for level in ("grid2", "town"):
        compare(table[table["level"] == level], reference(chosen, sample.grids, level, "M", gev.DEFAULT_TIME_LIMITS))
    village = sample.grids.loc[sample.grids["level"] == "village", "code"].iloc[5]
    mine, grid1 = gev.overview(placed, unit=village, level="grid1", period="quarter")
    assert mine["code"].eq(village).all() and mine["level"].eq("village").all()
    theirs = reference(sample.events, sample.grids, "village", "Q", gev.DEFAULT_TIME_LIMITS)
    compare(mine, theirs.loc[[village]])
    compare(grid1, reference(sample.events, sample.grids, "grid1", "Q", gev.DEFAULT_TIME_LIMITS))
    with pytest.raises(gev.EventsError, match="no unit with code"):
        gev.overview(placed, unit="999", level="town")


# --- the events ordered by category (what the service keeps: a category is one run of the arrays) ---------


@pytest.fixture(scope="module")
def with_strays(sample):
    """The sample's events with some undated and some outside every unit: what a run must leave out."""
    events = sample.events.copy()
    events.loc[events.index[:7], "reported_at"] = pd.NaT
    stray = events.iloc[[10, 11]].assign(event_id=["s1", "s2"], geometry=shapely.points([(100.0, 30.0)] * 2))
    return pd.concat([events, stray])


def test_a_category_is_one_run_of_its_dated_events(sample, with_strays):
    placed = gev.place(with_strays, sample.grids)
    ordered = gev.by_category(placed)
    assert len(ordered) == len(placed) and ordered.attrs == placed.attrs and placed.runs is None
    dated = with_strays["reported_at"].notna()
    for category, (start, stop) in ordered.runs.items():
        assert set(ordered.category[start:stop]) == {category}
        assert stop - start == int((dated & (with_strays["category"] == category)).sum())
        assert (np.diff(ordered.reported[start:stop]) >= 0).all()
    # the same events: every (category, report, close, unit) kept, in another order
    def rows(p):
        return sorted(zip(p.category.astype(str), p.reported, p.closed, *(p.unit[lv] for lv in p.index.levels)))
    assert rows(ordered) == rows(placed)


def test_events_ordered_by_category_give_every_answer_alike(sample, with_strays):
    """indicators, region, overview and trends of the events ordered by category (the service's) are those of
    the events as placed, on random filters: every category, several, none; every period; levels; units."""
    placed = gev.place(with_strays, sample.grids)
    ordered = gev.by_category(placed)
    rng = np.random.default_rng(19)
    categories = list(placed.category.categories)
    codes = sample.grids["code"].tolist()
    filters = [[c] for c in categories] + [categories[0], None, categories[:3], ["no_such_category"]]
    for category in filters:
        period = str(rng.choice(["month", "week", "quarter", "day", "year"]))
        levels = list(rng.choice(list(placed.index.levels), size=int(rng.integers(1, 3)), replace=False))
        unit = None if rng.random() < 0.4 else str(rng.choice(codes))
        start = None if rng.random() < 0.5 else f"2025-{int(rng.integers(1, 7)):02d}-{int(rng.integers(1, 28)):02d}"
        ask = {"period": period, "category": category, "start": start}
        for a, b in zip(gev.overview(ordered, unit=unit, level=levels, **ask),
                        gev.overview(placed, unit=unit, level=levels, **ask)):
            pd.testing.assert_frame_equal(a, b, check_exact=True)
            assert a.attrs == b.attrs
        pd.testing.assert_frame_equal(gev.indicators(ordered, level=levels, **ask),
                                      gev.indicators(placed, level=levels, **ask), check_exact=True)
        pd.testing.assert_frame_equal(gev.region(ordered, unit=unit, **ask), gev.region(placed, unit=unit, **ask),
                                      check_exact=True)
        if period != "day":
            pd.testing.assert_frame_equal(gev.trends(ordered, level=levels[0], indicator="closure_rate", **ask),
                                          gev.trends(placed, level=levels[0], indicator="closure_rate", **ask),
                                          check_exact=True)
    # and the plain reference, for one category read as its run
    chosen = with_strays[with_strays["reported_at"].notna() & (with_strays["category"] == categories[1])]
    compare(gev.indicators(ordered, level="village", category=categories[1],
                           start=sample.events["reported_at"].min()),
            reference(chosen, sample.grids, "village", "M", gev.DEFAULT_TIME_LIMITS,
                      start=sample.events["reported_at"].min()))


def plain_changes(table, x):
    """x_pop and x_yoy written plainly: row by row, the unit's period before and the same label a year before."""
    rows = table.sort_values(["level", "code", "period_start"], kind="stable").reset_index(drop=True)
    value = rows[x].astype(float).tolist()
    at = {(c, p): v for c, p, v in zip(rows["code"], rows["period"], value)}
    pop, yoy = [], []
    for i, (code, label, start) in enumerate(zip(rows["code"], rows["period"], rows["period_start"])):
        follows = i > 0 and rows["code"].iloc[i - 1] == code and rows["period_end"].iloc[i - 1] == start
        pop.append(value[i] - value[i - 1] if follows else np.nan)
        yoy.append(value[i] - at.get((code, f"{int(label[:4]) - 1}{label[4:]}"), np.nan))
    return rows, np.array(pop), np.array(yoy)


@pytest.mark.parametrize("period", ["month", "week", "quarter", "year"])
def test_changes_are_the_period_before_and_the_year_before_row_by_row(placed, period):
    table = gev.indicators(placed, level=["village", "town"], period=period)
    # two years of labels, so that a year before exists: the same table a year earlier, shifted
    earlier = table.assign(period_start=table["period_start"] - pd.DateOffset(years=1),
                           period_end=table["period_end"] - pd.DateOffset(years=1),
                           period=[f"{int(p[:4]) - 1}{p[4:]}" for p in table["period"]],
                           received=table["received"] // 2)
    earlier = earlier[~earlier["period"].isin(table["period"])]  # ISO weeks: 2026-W01 a year back is 2025-W01
    two = pd.concat([earlier, table]).sample(frac=1.0, random_state=3)  # any order comes in
    two.attrs = {"period": period}
    for x in ("received", "closure_rate"):
        out = gev.changes(two, x)
        rows, pop, yoy = plain_changes(two, x)
        assert out["code"].tolist() == rows["code"].tolist() and out["period"].tolist() == rows["period"].tolist()
        np.testing.assert_array_equal(out[f"{x}_pop"].to_numpy(), pop)
        np.testing.assert_array_equal(out[f"{x}_yoy"].to_numpy(), yoy)
        assert out.attrs == {"period": period}
        assert out[f"{x}_yoy"].notna().any() and out[f"{x}_pop"].notna().any()


@pytest.mark.parametrize("period", ["month", "quarter", "week"])
def test_a_tally_reads_every_category_as_counting_it_does(sample, with_strays, period):
    """Tally.overview (every category counted once, read by columns: the service's change of category) is
    overview() of that category, for the whole area and for units, every level, events in either order."""
    placed = gev.place(with_strays, sample.grids)
    rng = np.random.default_rng(17)
    codes = sample.grids["code"].tolist()
    for events in (placed, gev.by_category(placed)):
        counted = gev.tally(events, period=period)
        assert counted.categories == list(placed.category.categories)
        for category in counted.categories:
            levels = list(rng.choice(list(placed.index.levels), size=int(rng.integers(1, 4)), replace=False))
            for unit in (None, str(rng.choice(codes))):
                ours = counted.overview(events, unit=unit, level=levels, category=[category])
                theirs = gev.overview(placed, unit=unit, level=levels, period=period, category=[category])
                for a, b in zip(ours, theirs):
                    pd.testing.assert_frame_equal(a, b, check_exact=True)
                    assert a.attrs == b.attrs
    # and the plain reference, for one category read from the tally
    chosen = with_strays[with_strays["reported_at"].notna() & (with_strays["category"] == "dispute")]
    _, table = counted.overview(placed, level="village", category="dispute")
    freq = {"month": "M", "quarter": "Q", "week": "W-SUN"}[period]
    compare(table, reference(chosen, sample.grids, "village", freq, gev.DEFAULT_TIME_LIMITS,
                             start=with_strays["reported_at"].min()))
    with pytest.raises(gev.EventsError, match="one category"):
        counted.overview(placed, category=["dispute", "road"])
    with pytest.raises(gev.EventsError, match="one category"):
        counted.overview(placed, category="no_such_category")
    with pytest.raises(gev.EventsError, match="not the"):  # other events than those counted
        counted.overview(gev.place(sample.events, sample.grids), category="dispute")


# --- a unit's table from its own events ----------------------------------------------------------


@pytest.mark.parametrize("level,options", [
    ("village", {"period": "month"}),
    ("grid2", {"period": "quarter", "category": ["dispute", "road"]}),
    ("grid3", {"period": "month"}),  # a partial level: its units count their own events
    (["village", "grid1", "grid3"], {"period": None, "start": "2025-03-01", "end": "2025-09-01"}),
    ("grid1", {"period": "quarter", "by": "category"}),
])
def test_a_units_table_is_the_whole_tables_rows_recounted_from_its_events_alone(sample, placed, level, options):
    """``indicators(..., unit=code)`` is the rows of the units inside ``code`` of the table of every unit,
    and the plain pandas reference given only the events lying inside the unit (the periods of all the
    events) counts the same: only the unit's events count in its rows."""
    grids = sample.grids
    grid3 = grids.loc[grids["level"] == "grid3", "code"].iloc[40]
    grid1 = grids.loc[grids["code"] == grids.set_index("code").at[grid3, "parent"], "parent"].iloc[0]
    village = grids.set_index("code").at[grid1, "parent"]
    whole = gev.indicators(placed, level=level, **options)
    for unit in (village, grid1, "350582106", "350582"):  # a village, a grid1, the town, the county's prefix
        ours = gev.indicators(placed, level=level, unit=unit, **options)
        expected = whole[whole["code"].str.startswith(unit)].reset_index(drop=True)
        assert len(ours) > 0 or unit == grid1 and "village" in level
        assert len(ours) < len(whole) or unit in ("350582106", "350582")
        pd.testing.assert_frame_equal(ours, expected)
        assert ours.attrs == whole.attrs
    if options.get("by") or options["period"] is None:
        return
    inside = grids[(grids["code"] == village)]
    held = sample.events[sample.events.within(inside.geometry.iloc[0])]
    assert 0 < len(held) < len(sample.events)
    chosen = held[held["category"].isin(options["category"])] if "category" in options else held
    freq = {"month": "M", "quarter": "Q"}[options["period"]]
    theirs = reference(chosen, grids[grids["code"].str.startswith(village)], level, freq, gev.DEFAULT_TIME_LIMITS,
                       start=sample.events["reported_at"].min(),
                       end=sample.events["reported_at"].max() + pd.Timedelta(seconds=1))
    compare(gev.indicators(placed, level=level, unit=village, **options), theirs)


@pytest.mark.parametrize("level", ["town", "village", ["town", "grid2", "grid3"]])
def test_a_county_whose_units_are_all_of_them_gives_the_whole_table(placed, level):
    """The unit's path with every unit inside it (the county above the towns) is the whole table."""
    whole = gev.indicators(placed, level=level, period="month")
    county = gev.indicators(placed, level=level, period="month", unit=whole["code"].iloc[0][:6])
    pd.testing.assert_frame_equal(county, whole.reset_index(drop=True))


def test_a_unit_that_begins_no_code_is_refused(placed):
    with pytest.raises(gev.EventsError, match="no unit's code begins with '999'"):
        gev.indicators(placed, level="village", unit="999")
    empty = gev.indicators(placed, level="town", unit="350582106201")  # a village: no town inside it
    assert empty.empty and list(empty.columns) == list(gev.indicators(placed, level="town").columns)


@pytest.mark.parametrize("level,options", [
    ("grid2", {"period": "month", "indicator": "closure_rate"}),
    ("village", {"period": "quarter", "start": "2025-04-01", "category": ["fire"]}),
    ("grid3", {"period": "month", "end": "2025-10-01", "indicator": ["received", "median_hours"]}),
])
def test_a_units_trends_and_ranking_are_the_whole_tables_rows(sample, placed, level, options):
    """``trends(..., unit=code)`` is the rows of the units inside ``code`` of every unit's trends (the changes
    of each unit are its own rows'), and ``ranking(..., unit=code)`` ranks those rows among themselves."""
    grids = sample.grids
    grid3 = grids.loc[grids["level"] == "grid3", "code"].iloc[40]
    grid1 = grids.loc[grids["code"] == grids.set_index("code").at[grid3, "parent"], "parent"].iloc[0]
    village = grids.set_index("code").at[grid1, "parent"]
    whole = gev.trends(placed, level=level, **options)
    for unit in (village, grid1, "350582106", "350582"):
        ours = gev.trends(placed, level=level, unit=unit, **options)
        expected = whole[whole["code"].str.startswith(unit)].reset_index(drop=True)
        assert len(ours) > 0 or unit == grid1 and level == "village"
        pd.testing.assert_frame_equal(ours, expected, check_exact=True)
        assert ours.attrs == whole.attrs
        indicator = options.get("indicator", "closure_rate")
        indicator = indicator if isinstance(indicator, str) else indicator[0]
        if len(expected):
            at = expected["period"].iloc[len(expected) // 2]
            rank = dict(options, indicator=indicator)
            pd.testing.assert_frame_equal(gev.ranking(placed, level=level, unit=unit, at=at, **rank),
                                          gev.ranked(expected, indicator, at), check_exact=True)
    assert gev.trends(placed, level="town", unit=village, period="month").empty  # no town inside a village


def test_a_units_table_when_the_levels_disagree_tests_every_event(placed, sample):
    """Events whose village is not their grid's village (grids drawn across a village's edge, say): the
    unit's rows are still the whole table's, found by testing every event instead of by slices."""
    import dataclasses

    assert placed.nested
    village = placed.unit["village"].copy()
    moved = np.flatnonzero(village >= 0)[::7]
    village[moved] = (village[moved] + 1) % len(placed.index.codes["village"])
    odd = dataclasses.replace(placed, unit={**placed.unit, "village": village})
    assert not odd.nested
    code = placed.index.codes["village"][4]
    for level in ("village", ["town", "village", "grid2"], "grid3"):
        whole = gev.indicators(odd, level=level, period="quarter")
        ours = gev.indicators(odd, level=level, period="quarter", unit=code)
        pd.testing.assert_frame_equal(ours, whole[whole["code"].str.startswith(code)].reset_index(drop=True))
    # the village's counts are its grids' (rolled up), its times those of the events placed in it
    row = gev.indicators(odd, level="village", period=None, unit=code)
    assert row["received"].iloc[0] == ((placed.unit["village"] == 4) & (placed.reported != gev._NEVER)).sum()
    assert row["received"].iloc[0] != ((village == 4) & (placed.reported != gev._NEVER)).sum()
