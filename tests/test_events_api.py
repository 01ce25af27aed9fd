"""/events/indicators, /trends, /ranking, /hotspots over HTTP, against counts made here from the raw sample.

Counts are recounted with a covers-join (``geopandas.sjoin(predicate="within")``)
and pandas, never with gridgeo.events: a viewer sees every unit's true figures;
an anonymous caller never sees a count of 1..k-1 and does see the units that
have enough events; bad parameters are 400/422 problem bodies, never 500.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from gridgeo import events as gevents

K = 10


@pytest.fixture(scope="module")
def monthly(sample):
    """Per (code, month): received, closed, backlog at the month's end (all levels), from the raw events."""
    units = sample.grids[["code", "level", "geometry"]]
    pairs = gpd.sjoin(sample.events, units, predicate="within")
    as_of = max(sample.events["reported_at"].max(), sample.events["closed_at"].max()) + pd.Timedelta(seconds=1)
    rows = []
    for month in pd.period_range("2025-01", "2025-12", freq="M"):
        s, e = month.start_time, (month + 1).start_time
        t = min(e, as_of)
        rep, clo = pairs["reported_at"], pairs["closed_at"]
        table = pd.DataFrame({
            "received": pairs[(rep >= s) & (rep < e)].groupby("code").size(),
            "closed": pairs[(clo >= s) & (clo < e)].groupby("code").size(),
            "backlog": pairs[(rep < t) & (clo.isna() | (clo >= t))].groupby("code").size(),
        }).reindex(units["code"]).fillna(0).astype(int)
        table["period"] = f"{month:%Y-%m}"
        rows.append(table)
    out = pd.concat(rows)
    out.index.name = "code"
    return out.reset_index().set_index(["code", "period"])


def viewer(api_keys):
    return {"X-API-Key": api_keys["viewer"]}


def test_viewer_indicators_per_town_and_month_are_the_raw_counts(client, api_keys, monthly):
    r = client.get("/events/indicators?level=town&period=month", headers=viewer(api_keys))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["min_count"] is None
    rows = pd.DataFrame(body["rows"]).set_index(["code", "period"])
    assert {"received", "closed", "backlog", "closure_rate", "median_hours", "p90_hours", "on_time_rate",
            "overdue"} <= set(rows.columns)
    assert [p for _, p in rows.index] == [f"2025-{m:02d}" for m in range(1, 13)]
    for column in ("received", "closed", "backlog"):
        assert rows[column].tolist() == monthly.loc[rows.index, column].tolist(), column
    rate = rows["closed"] / (rows["closed"] + rows["backlog"])
    np.testing.assert_allclose(rows["closure_rate"], rate, atol=1e-4)


def test_anonymous_callers_do_not_see_a_unit_with_fewer_than_k_events(client, api_keys, monthly):
    anonymous = pd.DataFrame(client.get("/events/indicators?level=grid2&period=month").json()["rows"])
    seen = pd.DataFrame(client.get("/events/indicators?level=grid2&period=month",
                                   headers=viewer(api_keys)).json()["rows"])
    anonymous = anonymous.set_index(["code", "period"])
    seen = seen.set_index(["code", "period"])
    raw = monthly.loc[anonymous.index]
    for column in ("received", "closed", "backlog"):
        shown = anonymous[column].notna()
        assert (anonymous.loc[shown, column] == raw.loc[shown, column]).all()
        assert ((anonymous.loc[shown, column] == 0) | (anonymous.loc[shown, column] >= K)).all()
        small = (raw[column] > 0) & (raw[column] < K)
        assert small.any() and not shown[small].any(), column
        assert seen.loc[small[small].index, column].tolist() == raw.loc[small, column].tolist()  # viewers see them
    assert anonymous["received"].notna().any()  # units with enough events are shown
    assert anonymous.loc[anonymous["closed"].isna(), "median_hours"].isna().all()
    assert "on_time" not in anonymous.columns


def test_a_unit_and_the_units_inside_it(client, api_keys):
    grids = client.get("/events/indicators?level=village&unit=350582106&period=month", headers=viewer(api_keys))
    assert grids.status_code == 200
    rows = grids.json()["rows"]
    assert len(rows) == 28 * 12 and all(r["code"].startswith("350582106") for r in rows)
    assert client.get("/events/indicators?unit=999&period=month").status_code == 404


def test_a_units_first_table_counts_its_own_events_and_is_the_whole_levels_rows(client, api_keys, monthly, sample):
    """A viewer's first question about one village's grid1 units counts that village's events alone (the
    whole level's table is not made for it), gives the raw counts, and is what the rows of the whole
    level's table say once that is made."""
    from api import derived

    services = client.app.state.services
    village = sample.grids.loc[sample.grids["level"] == "village", "code"].iloc[9]
    path = f"/events/indicators?level=grid1&unit={village}&period=month"
    whole_key = derived._memo_name(derived._indicators_key("grid1", "month", None, None, None))
    assert services.peek(whole_key) is None  # nothing asked of grid1 by month before
    first = client.get(path, headers=viewer(api_keys))
    assert first.status_code == 200, first.text
    assert services.peek(whole_key) is None
    rows = pd.DataFrame(first.json()["rows"]).set_index(["code", "period"])
    codes = sample.grids.loc[(sample.grids["level"] == "grid1") & sample.grids["code"].str.startswith(village), "code"]
    assert sorted({c for c, _ in rows.index}) == sorted(codes) and len(codes) > 0
    for column in ("received", "closed", "backlog"):
        assert rows[column].tolist() == monthly.loc[rows.index, column].tolist(), column
    assert rows["received"].sum() > 0
    whole = client.get("/events/indicators?level=grid1&period=month", headers=viewer(api_keys)).json()
    assert services.peek(whole_key) is not None
    mine = [r for r in whole["rows"] if r["code"].startswith(village)]
    assert mine == first.json()["rows"] == client.get(path, headers=viewer(api_keys)).json()["rows"]
    assert client.get("/events/indicators?level=grid1&unit=3505829&period=month",
                      headers=viewer(api_keys)).status_code == 404


def test_trends_and_ranking(client, api_keys, monthly):
    t = client.get("/events/trends?level=village&indicator=received", headers=viewer(api_keys)).json()
    rows = pd.DataFrame(t["rows"]).set_index(["code", "period"])
    code = rows.index[0][0]
    june, may = monthly.loc[(code, "2025-06"), "received"], monthly.loc[(code, "2025-05"), "received"]
    assert rows.loc[(code, "2025-06"), "received_pop"] == june - may
    r = client.get("/events/ranking?level=village&indicator=backlog&at=2025-06", headers=viewer(api_keys)).json()
    assert r["higher_is_better"] is False
    ranked = pd.DataFrame(r["rows"])
    villages = [c for c in monthly.index.get_level_values("code").unique() if len(c) == 12]
    backlog = monthly.loc[[(c, "2025-06") for c in villages], "backlog"].droplevel("period")
    assert ranked["value"].tolist() == sorted(backlog.tolist())
    assert ranked["rank"].tolist() == backlog.rank(method="min").loc[ranked["code"]].astype(int).tolist()
    public = client.get("/events/ranking?level=village&indicator=backlog&at=2025-06").json()
    values = [v for v in (row["value"] for row in public["rows"]) if v is not None]
    assert all(v == 0 or v >= K for v in values)


def test_a_units_first_trends_and_ranking_count_its_own_events_and_are_the_whole_levels_rows(client, api_keys,
                                                                                               monthly, sample):
    """A viewer's first trends and ranking of one village's level-2 grids count that village's events alone (the
    whole level's trends are not made for them), give the raw counts, rank the village's grids among
    themselves, and are what the whole level's trends say once those are made."""
    from api import derived

    services = client.app.state.services
    village = sample.grids.loc[sample.grids["level"] == "village", "code"].iloc[5]
    params = {"level": "grid2", "period": "month", "indicator": "backlog"}
    whole_key = derived._memo_name(("trends", "grid2", "month", None, None, (), "backlog"))
    assert services.peek(whole_key) is None  # nothing asked of grid2's backlog trends before
    first = client.get("/events/trends", params={**params, "unit": village}, headers=viewer(api_keys))
    assert first.status_code == 200, first.text
    ranking = client.get("/events/ranking", params={**params, "unit": village, "at": "2025-06"},
                         headers=viewer(api_keys))
    assert ranking.status_code == 200, ranking.text
    assert services.peek(whole_key) is None
    rows = pd.DataFrame(first.json()["rows"]).set_index(["code", "period"])
    codes = sample.grids.loc[(sample.grids["level"] == "grid2") & sample.grids["code"].str.startswith(village), "code"]
    assert sorted({c for c, _ in rows.index}) == sorted(codes) and len(codes) > 1
    assert rows["backlog"].tolist() == monthly.loc[rows.index, "backlog"].tolist()
    june = monthly.loc[[(c, "2025-06") for c in codes], "backlog"].droplevel("period")
    may = monthly.loc[[(c, "2025-05") for c in codes], "backlog"].droplevel("period")
    assert rows.xs("2025-06", level="period")["backlog_pop"].loc[codes].tolist() == (june - may).loc[codes].tolist()
    ranked = pd.DataFrame(ranking.json()["rows"]).set_index("code")
    assert sorted(ranked.index) == sorted(codes) and ranked["value"].tolist() == sorted(june.tolist())
    assert ranked["rank"].tolist() == june.rank(method="min").loc[ranked.index].astype(int).tolist()
    whole = client.get("/events/trends", params=params, headers=viewer(api_keys)).json()
    assert services.peek(whole_key) is not None
    assert [r for r in whole["rows"] if r["code"].startswith(village)] == first.json()["rows"]
    assert client.get("/events/trends", params={**params, "unit": village}, headers=viewer(api_keys)).json() == \
        first.json()
    assert client.get("/events/ranking", params={**params, "unit": village, "at": "2025-06"},
                      headers=viewer(api_keys)).json() == ranking.json()
    for path in ("/events/trends", "/events/ranking"):
        assert client.get(path, params={**params, "unit": "3505829"}, headers=viewer(api_keys)).status_code == 404


def test_hotspots_rows_and_the_public_view(client, api_keys, sample):
    seen = client.get("/events/hotspots?level=grid2", headers=viewer(api_keys)).json()
    rows = pd.DataFrame(seen["rows"])
    assert len(rows) == 128 and {"code", "z", "p", "class"} <= set(rows.columns)
    assert set(rows["class"]) <= {"hot", "cold", "none"}
    assert ((rows["class"] == "hot") == ((rows["z"] > 0) & (rows["p"] < 0.05))).all()
    units = sample.grids[sample.grids["level"] == "grid2"][["code", "geometry"]]
    counts = gpd.sjoin(sample.events, units, predicate="within").groupby("code").size()
    assert rows.set_index("code")["events"].tolist() == counts.reindex(rows["code"]).fillna(0).astype(int).tolist()
    june = client.get("/events/hotspots?level=grid2&from=2025-06-01&to=2025-07-01").json()
    shown = {r["code"] for r in june["rows"]}
    ev = sample.events[(sample.events["reported_at"] >= "2025-06-01") & (sample.events["reported_at"] < "2025-07-01")]
    per = gpd.sjoin(ev, units, predicate="within").groupby("code").size().reindex(units["code"]).fillna(0)
    small = set(per[(per > 0) & (per < K)].index)
    assert small and not (shown & small)
    assert shown == set(units["code"]) - small
    assert all(set(r) == {"code", "z", "p", "class"} for r in june["rows"])
    assert june["withheld"] == len(small)


@pytest.mark.parametrize("path,status", [
    ("/events/indicators?period=fortnight", 400),
    ("/events/indicators?level=county", 404),  # as every level the store does not have
    ("/events/trends?indicator=happiness", 400),
    ("/events/indicators?from=2025-13-01", 400),
    ("/events/hotspots?method=kriging", 400),
    ("/events/ranking?at=2031-01", 422),  # a period the data do not have: gridgeo.events refuses it
    ("/events/indicators?period=week", 422),  # public: whole months only
    ("/events/indicators?category=fire", 422),  # public: all categories together
    ("/events/indicators?from=2025-03-02", 422),  # public: months begin on the 1st
])
def test_bad_parameters_are_problems(client, path, status):
    r = client.get(path)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"]


def test_a_viewer_asks_any_period_and_category(client, api_keys, sample):
    r = client.get("/events/indicators?level=town&period=span&from=2025-03-01&to=2025-04-01&category=fire",
                   headers=viewer(api_keys)).json()
    (row,) = r["rows"]
    ev = sample.events
    fire = ev[(ev["category"] == "fire") & (ev["reported_at"] >= "2025-03-01") & (ev["reported_at"] < "2025-04-01")]
    assert row["period"] == "2025-03-01/2025-03-31" and row["received"] == len(fire)
    assert client.get("/events/indicators?period=span&from=2025-04-01&to=2025-03-01",
                      headers=viewer(api_keys)).status_code == 422


def test_a_span_far_beyond_the_data_lists_only_the_periods_the_data_speak_of(client, api_keys, sample):
    wide = client.get("/events/trends?period=month&from=2000-01-01&to=2040-01-01", headers=viewer(api_keys))
    assert wide.status_code == 200, wide.text
    months = sorted({r["period"] for r in wide.json()["rows"]})
    reported = sample.events["reported_at"]
    first, last = reported.min().strftime("%Y-%m"), reported.max().strftime("%Y-%m")
    assert months[0] == first and months[-1] >= last and len(months) <= 14, months  # not 480 months
    outside = client.get("/events/trends?period=month&from=0287-09-29&to=1977-09-07", headers=viewer(api_keys))
    assert outside.status_code == 422 and "the data run from" in outside.json()["detail"]


def test_trends_and_rankings_need_a_period(client, api_keys):
    for path in ("/events/trends?period=span", "/events/ranking?period=span"):
        r = client.get(path, headers=viewer(api_keys))
        assert r.status_code == 422 and "period" in r.json()["detail"], r.text


# --- /events/map: the one map's answer for a filter ----------------------------------------------


def _same(ours, theirs):
    """Two lists of figures equal, missing for missing (to the answers' four decimals)."""
    ours = np.array([np.nan if v is None else v for v in ours], dtype=float)
    np.testing.assert_allclose(ours, np.asarray(theirs, dtype=float), rtol=0, atol=1e-4, equal_nan=True)


def test_the_map_answer_is_the_whole_areas_months_and_every_units_value_with_its_classes(client, api_keys, sample):
    import mapclassify

    from test_events import reference, whole_reference

    from gridgeo import events as gev

    r = client.get("/events/map?level=grid2&period=month&category=dispute&indicator=closure_rate&at=2025-06"
                   "&scheme=quantiles&k=5", headers=viewer(api_keys))
    assert r.status_code == 200, r.text
    body = r.json()
    disputes = sample.events[sample.events["category"] == "dispute"]
    # the whole area's figures per month: pandas over all the disputes, not a sum made in a page
    whole = whole_reference(disputes, "M", gev.DEFAULT_TIME_LIMITS).droplevel("code")
    series = pd.DataFrame(body["series"])
    assert body["unit"] == "" and body["periods"] == [f"2025-{m:02d}" for m in range(1, 13)] == series["period"].tolist()
    for column in ("received", "closed", "backlog", "on_time", "overdue", "closure_rate", "on_time_rate",
                   "median_hours", "p90_hours"):
        _same(series[column], whole[column])
    # every level-2 grid's closure rate in June, and the classes of those values
    theirs = reference(disputes, sample.grids, "grid2", "M", gev.DEFAULT_TIME_LIMITS).xs(
        pd.Timestamp("2025-06-01"), level="period_start")["closure_rate"]
    c = body["choropleth"]
    assert c["level"] == "grid2" and c["period"] == "2025-06" and c["higher_is_better"] is True
    assert sorted(c["values"]) == sorted(theirs.index)
    _same([c["values"][code] for code in theirs.index], theirs)
    known = theirs.dropna().to_numpy()
    q = mapclassify.Quantiles(known, k=5)
    np.testing.assert_allclose(c["bins"], q.bins)
    assert c["counts"] == q.counts.tolist() and c["min"] == pytest.approx(known.min())


def test_the_map_answer_for_a_village_by_quarter(client, api_keys, sample):
    from test_events import reference

    from gridgeo import events as gev

    village = sample.grids.loc[sample.grids["level"] == "village", "code"].iloc[3]
    body = client.get(f"/events/map?unit={village}&level=grid1&period=quarter&indicator=overdue&at=2025-Q2",
                      headers=viewer(api_keys)).json()
    assert body["unit"] == village and body["level"] == "village"
    assert body["periods"] == ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]
    theirs = reference(sample.events, sample.grids, "village", "Q", gev.DEFAULT_TIME_LIMITS).loc[village]
    series = pd.DataFrame(body["series"])
    for column in ("received", "closed", "backlog", "overdue", "closure_rate"):
        _same(series[column], theirs[column])
    grid1 = reference(sample.events, sample.grids, "grid1", "Q", gev.DEFAULT_TIME_LIMITS).xs(
        pd.Timestamp("2025-04-01"), level="period_start")["overdue"]
    assert body["choropleth"]["values"] == {code: float(v) for code, v in grid1.items()}


def test_the_public_map_answer_withholds_fewer_than_k(client, sample):
    from test_events import whole_reference

    from gridgeo import events as gev

    body = client.get("/events/map?level=grid2&indicator=received&at=2025-06").json()
    assert body["min_count"] == K
    whole = whole_reference(sample.events, "M", gev.DEFAULT_TIME_LIMITS).droplevel("code")
    series = pd.DataFrame(body["series"])
    for column in ("received", "closed", "backlog", "overdue"):
        want = whole[column].where((whole[column] == 0) | (whole[column] >= K))
        _same(series[column], want)
    assert "on_time" not in series.columns
    # the units' values are the public table's, withheld ones missing and left out of the classes
    public = pd.DataFrame(client.get("/events/indicators?level=grid2&period=month&from=2025-06-01&to=2025-07-01")
                          .json()["rows"]).set_index("code")["received"]
    values = body["choropleth"]["values"]
    assert {c: v for c, v in values.items()} == {c: (None if pd.isna(v) else float(v)) for c, v in public.items()}
    assert any(v is None for v in values.values())
    assert sum(body["choropleth"]["counts"]) == sum(v is not None for v in values.values())


@pytest.mark.parametrize("path,status", [
    ("/events/map?at=2031-01", 422),
    ("/events/map?unit=999", 404),
    ("/events/map?period=span", 422),
    ("/events/map?indicator=happiness", 400),
    ("/events/map?category=fire", 422),  # public: all categories together
    ("/events/map?period=quarter", 422),  # public: the heat map's months
    ("/events/map?scheme=kriging", 400),
])
def test_bad_map_questions_are_problems(client, path, status):
    r = client.get(path)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_the_map_answer_without_the_choropleth_is_the_units_figures_only(client, api_keys):
    full = client.get("/events/map?period=quarter", headers=viewer(api_keys)).json()
    alone = client.get("/events/map?period=quarter&choropleth=false", headers=viewer(api_keys)).json()
    assert alone["choropleth"] is None and full["choropleth"]["values"]
    assert alone["series"] == full["series"] and alone["at"] == full["at"] == "2025-Q4"


@pytest.mark.parametrize("path", ["/events/ranking", "/events/trends", "/events/map"])
def test_the_count_closed_on_time_is_for_viewers_only(client, api_keys, path):
    """The public table leaves ``on_time`` out (disclosure.WITHHELD_INDICATORS): an anonymous caller asking for
    it gets a 422 naming it (it was a 500, found by schemathesis), a viewer gets it, and every published
    indicator answers the public."""
    public = client.get(f"{path}?indicator=on_time")
    assert public.status_code == 422, public.text
    assert "on_time" in public.json()["detail"]
    seen = client.get(f"{path}?indicator=on_time&level=village", headers=viewer(api_keys))
    assert seen.status_code == 200, seen.text
    for indicator in [i for i in gevents.INDICATORS if i != "on_time"]:
        r = client.get(f"{path}?indicator={indicator}")
        assert r.status_code == 200, (indicator, r.text)


def test_a_viewers_on_time_ranking_is_closed_times_the_on_time_rate(client, api_keys):
    ranked = pd.DataFrame(client.get("/events/ranking?level=village&indicator=on_time&at=2025-06",
                                     headers=viewer(api_keys)).json()["rows"]).set_index("code")["value"]
    table = pd.DataFrame(client.get("/events/indicators?level=village&period=month&from=2025-06-01&to=2025-07-01",
                                    headers=viewer(api_keys)).json()["rows"]).set_index("code")
    expected = (table["closed"] * table["on_time_rate"].fillna(0)).round().loc[ranked.index]
    assert len(ranked) == len(table) > 1
    assert ranked.tolist() == expected.tolist()


@pytest.mark.parametrize("unit", ["", "350582106"])
def test_the_map_answer_carries_the_ranking_of_ranking_and_a_pandas_recount(client, api_keys, sample, unit):
    """One request per filter change: /events/map with ``ranking`` answers the ranking /events/ranking gives for
    the same filter, and both are the villages' closure rates of June (and May) recounted with pandas."""
    from test_events import reference

    from gridgeo import events as gev

    where = {"unit": unit} if unit else {}
    r = client.get("/events/map", headers=viewer(api_keys), params={
        **where, "level": "grid2", "period": "month", "category": "road", "indicator": "received", "at": "2025-06",
        "ranking": "village", "ranking_indicator": "closure_rate"})
    assert r.status_code == 200, r.text
    inside = r.json()["ranking"]
    alone = client.get("/events/ranking", headers=viewer(api_keys), params={
        **where, "level": "village", "period": "month", "category": "road", "indicator": "closure_rate",
        "at": "2025-06", "from": "2025-01-01", "to": "2026-01-01"}).json()
    assert inside == alone
    roads = sample.events[sample.events["category"] == "road"]
    rates = reference(roads, sample.grids, "village", "M", gev.DEFAULT_TIME_LIMITS)["closure_rate"]
    june = rates.xs(pd.Timestamp("2025-06-01"), level="period_start")
    may = rates.xs(pd.Timestamp("2025-05-01"), level="period_start")
    june, may = june[june.index.str.startswith(unit)], may[may.index.str.startswith(unit)]
    rows = pd.DataFrame(inside["rows"]).set_index("code")
    assert inside["level"] == "village" and inside["indicator"] == "closure_rate" and inside["period"] == "2025-06"
    assert sorted(rows.index) == sorted(june.index) and len(rows) > 1
    _same(rows["value"], june.loc[rows.index])
    _same(rows["previous"], may.where(june.notna()).loc[rows.index])  # from the change: none without a value
    ranks = june.rank(method="min", ascending=False).loc[rows.index]
    assert [None if r != r else int(r) for r in rows["rank"]] == [None if r != r else int(r) for r in ranks]
    assert r.json()["choropleth"]["indicator"] == "received"  # the choropleth's own indicator beside it


def test_the_public_map_answer_carries_the_public_ranking(client):
    params = {"level": "grid2", "indicator": "received", "at": "2025-06"}
    inside = client.get("/events/map", params={**params, "ranking": "village", "ranking_indicator": "backlog"}).json()
    alone = client.get("/events/ranking?level=village&indicator=backlog&at=2025-06").json()
    assert inside["ranking"] == alone and inside["ranking"]["min_count"] == K
    assert any(row["value"] is None for row in alone["rows"])  # withheld alike
    assert client.get("/events/map", params=params).json()["ranking"] is None
    assert client.get("/events/map", params={**params, "ranking": "county"}).status_code == 404
    assert client.get("/events/map", params={**params, "ranking": "village",
                                             "ranking_indicator": "on_time"}).status_code == 422


@pytest.mark.parametrize("period,category", [("month", ["fire"]), ("quarter", ["safety", "dispute"])])
def test_the_map_ranking_inside_a_unit_counts_the_units_events_alone_and_is_the_whole_levels_rows(
        client, api_keys, sample, monkeypatch, period, category):
    """/events/map with ``ranking`` and ``unit``: the ranking's level is not counted whole (no table of every unit
    of it is made, whatever the path: a one-category month is read from the tally, other filters counted), and
    the ranking is the one the whole level's table gives filtered to the unit (the path it replaced), for units of
    three levels and rankings of three levels."""
    from api import derived
    from api.encode import dumps
    from api.routes.events import _ranking
    import json

    services = client.app.state.services
    made = []  # (what, level, unit) of every table of units the library is asked to make

    def counting(name, fn):
        def wrapped(*args, **kwargs):
            made.append((name, kwargs.get("level"), kwargs.get("unit")))
            return fn(*args, **kwargs)
        return wrapped

    for name in ("overview", "indicators", "trends"):
        monkeypatch.setattr(gevents, name, counting(name, getattr(gevents, name)))
    monkeypatch.setattr(gevents.Tally, "overview", counting("tally", gevents.Tally.overview))
    town = sample.grids.loc[sample.grids["level"] == "town", "code"].iloc[0]
    village = sample.grids.loc[sample.grids["level"] == "grid1", "parent"].value_counts().index[0]  # most grid1s
    grid1 = sample.grids.loc[sample.grids["level"] == "grid2", "parent"].value_counts().index[0]  # most grid2s
    cases = [(town, "village"), (village, "grid2"), (village, "grid1"), (grid1, "grid2")]
    placed = derived.placed_events(services)
    for unit, ranking in cases:
        made.clear()
        whole_key = derived._memo_name(derived._indicators_key(ranking, period, None, None, category))
        assert services.peek(whole_key) is None  # not made by an earlier question
        r = client.get("/events/map", headers=viewer(api_keys), params={
            "unit": unit, "level": "town", "period": period, "category": category, "indicator": "received",
            "ranking": ranking, "ranking_indicator": "backlog"})
        assert r.status_code == 200, r.text
        assert services.peek(whole_key) is None
        ranking_made = [m for m in made if m[1] == ranking or (isinstance(m[1], list) and ranking in m[1])]
        assert ranking_made and all(u == unit for _, _, u in ranking_made), made
        body = r.json()
        # the path it replaced: the whole level's table, its rows inside the unit, their changes, ranked
        whole = gevents.indicators(placed, level=ranking, period=period, category=category)
        inside = whole[whole["code"].str.startswith(unit)]
        expected = _ranking(gevents.changes(inside, "backlog"), ranking, "backlog", body["at"], None)
        assert body["ranking"] == json.loads(dumps(expected))
        assert len(body["ranking"]["rows"]) == len(inside["code"].unique()) > 1
        # and the ranking /events/ranking gives for the same filter
        alone = client.get("/events/ranking", headers=viewer(api_keys), params={
            "unit": unit, "level": ranking, "period": period, "category": category, "indicator": "backlog",
            "at": body["at"], "from": "2025-01-01", "to": "2026-01-01"}).json()
        assert body["ranking"] == alone
