"""Event indicators for every unit of every level, 12 months, and Gi* on grid2: gridgeo.events against plain pandas + esda.

On the city sample (816,000 events, 5,117 units):

- gridgeo: ``gridgeo.events.indicators(placed, period="month")``, every level,
  the events placed once (:func:`gridgeo.events.place`, timed apart: it is
  done once per data version);
- plain: the same figures written as a reader would, from the same placement:
  per level and per month, pandas boolean masks and ``groupby`` (sizes,
  ``quantile`` for the median and 90th percentile);
- Gi*: ``gridgeo.events.hotspots(level="grid2", permutations=999)`` against
  libpysal's Queen weights and esda's ``G_Local`` called directly (the sides
  alternating): the first question on the events' index (the level's Queen
  weights made, as at a new version) and the same asked again (kept);
- a change of category as the service counts it (the whole area, the level-2
  grids and the towns, by month, for one category; median over the eight
  categories): ``overview`` of the events as placed, of the events ordered by
  category (``by_category``), and read from a tally of every category
  (``Tally.overview``, what the service keeps per version), the answers equal.

Both sides run in the same process, one after the other, and their answers are
compared (counts equal, times and rates to 1e-9; Gi*'s z, p and classes equal).

    python benchmarks/events.py [--repeat 3]

A filter change on the one map (``--filter STORE``: a prepared GeoPackage store at
city scale, e.g. a copy of the city sample's; ``gridgeo serve`` is started on it):

- over HTTP, a viewer's ``/events/map`` as the page asks it at each filter change
  (the whole area's months for the cards and the trend, every level-2 grid's
  closure rate in June with its classes, and the ranking of the towns) for a
  category not asked before (cold: one pass over the placed events for the
  area, the level and the ranking's level, then the classes and the ranking;
  the median of several distinct categories) and asked again (warm: the
  service's kept answer parts); a step of the month slider (the tables kept,
  new classes); against the two requests the page made before for the same
  (``/events/map`` without the ranking, then ``/events/ranking``), each pair for
  a filter not asked before (two categories together); and against the request
  the page made before that for the cards alone (``/events/indicators`` of the
  towns, summed in the page);
- in Chromium (1920 x 1080, a viewer's key), the time from choosing a category
  in the menu to both the cards and the choropleth showing it (``data-cards``
  and ``data-choropleth`` of the page), and to the ranking shown too
  (``data-events``); and from a slider step to the same.

    python benchmarks/events.py --filter /tmp/city-store.gpkg [--repeat 5] [--port 8799]

A unit's first trends and ranking (``--unit STORE``; ``gridgeo serve`` is started on
it, on ``--port`` if given): a viewer's first ``/events/trends`` of a town's level-2
grids and first ``/events/ranking`` of another town's (each with an indicator not asked
before, so nothing is kept for it), the same trends asked again, and for scale the first
``/events/trends`` of the whole level (every unit's rows: more to count and to encode). The
peer is the service of the code before (main), run on a copy of the store the same way:
it made the whole level's trends for a unit's first question and kept the unit's rows.

    python benchmarks/events.py --unit /tmp/city-store.gpkg [--repeat 3] [--port 8799]
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
    rate = counts.reindex(units["code"]).fillna(0) * 100 / households.reindex(units["code"])
    kept = units[(households.reindex(units["code"]) > 0).to_numpy()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = Queen.from_dataframe(kept, ids=list(kept["code"]), use_index=False)
        islands = set(w.islands)
        kept = kept[~kept["code"].isin(islands)]
        w = Queen.from_dataframe(kept, ids=list(kept["code"]), use_index=False)
        g = G_Local(rate.loc[kept["code"]].to_numpy(), w, transform="B", star=True, permutations=permutations,
                    seed=seed, n_jobs=1)
    klass = np.where(g.p_sim < 0.05, np.where(g.Zs > 0, "hot", np.where(g.Zs < 0, "cold", "none")), "none")
    return pd.DataFrame({"z": g.Zs, "p": g.p_sim, "class": klass}, index=kept["code"].to_numpy())


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
    counts = where["grid2"].astype(object).value_counts()

    def first_gi():  # a version's first question: the level's weights not made yet (made once per index)
        gev._QUEENS.pop(placed.index, None)
        return gev.hotspots(placed, level="grid2", base=figures, permutations=999)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first_t, esda_t, kept_t = [], [], []
        for _ in range(repeat):  # the two sides alternate, so both meet the same load
            first_t.append(median_time(first_gi, repeat=1, warmup=0)[0])
            esda_t.append(median_time(lambda: plain_gi(grids, counts, households), repeat=1, warmup=0)[0])
            kept_t.append(median_time(lambda: gev.hotspots(placed, level="grid2", base=figures, permutations=999),
                                      repeat=1, warmup=0)[0])
        first_t, esda_t, kept_t = (float(np.median(t)) for t in (first_t, esda_t, kept_t))
        gi = first_gi()
        ref = plain_gi(grids, counts, households)
    mine = gi.set_index("code").loc[ref.index]
    assert (mine["z"].to_numpy() == ref["z"].to_numpy()).all(), "z differs from esda's"
    assert (mine["p"].to_numpy() == ref["p"].to_numpy()).all(), "p differs from esda's"
    assert (mine["class"].astype(str).to_numpy() == ref["class"]).all(), "classes differ"

    filter_t, _ = median_time(lambda: gev.indicators(placed, level="town", period="month", start=START, end=END,
                                                     category=["fire"]), repeat=repeat)
    # a change of category on the one map, as the service counts it: the whole area's months and every
    # level-2 grid's and town's, for one category, from the events as placed, from the events ordered by
    # category (one run of the arrays), and read from a tally of every category (what the service keeps)
    levels = ["grid2", "town"]
    ordered = gev.by_category(placed)
    tally_t, counted = median_time(lambda: gev.tally(ordered, period="month"), repeat=1, warmup=0)
    one = {}
    for name, how in (("placed", lambda c: gev.overview(placed, level=levels, category=[c])),
                      ("ordered", lambda c: gev.overview(ordered, level=levels, category=[c])),
                      ("tally", lambda c: counted.overview(ordered, level=levels, category=[c]))):
        times = [median_time(lambda c=c, how=how: how(c), repeat=repeat)[0] for c in CATEGORIES]
        one[name] = float(np.median(times))
    for c in CATEGORIES:
        for x, y in zip(gev.overview(placed, level=levels, category=[c]), counted.overview(ordered, level=levels, category=[c])):
            pd.testing.assert_frame_equal(x, y, check_exact=True)
    report("events: indicators and Gi* at city scale (medians)", [
        ("rows (unit x month)", f"{len(ours):,}"),
        ("place events once (per version)", f"{place:.2f} s"),
        ("gridgeo indicators, all levels x 12 months", f"{ours_t:.3f} s"),
        ("plain pandas groupby, same figures", f"{plain_t:.2f} s"),
        ("ratio plain / gridgeo", f"{plain_t / ours_t:.1f}x"),
        ("one filter change (town, fire, 12 months)", f"{filter_t * 1000:.0f} ms"),
        ("a category's overview (area + grid2 + towns), events as placed", f"{one['placed'] * 1000:.0f} ms"),
        ("the same, events ordered by category (by_category)", f"{one['ordered'] * 1000:.0f} ms"),
        ("the same, read from the tally (Tally.overview)", f"{one['tally'] * 1000:.0f} ms"),
        ("tally of every category x month (once per version)", f"{tally_t:.2f} s, {counted.nbytes / 2**20:.0f} MB"),
        ("gridgeo hotspots grid2, Gi* 999 perms, first on the index", f"{first_t:.2f} s"),
        ("the same asked again (the level's weights kept)", f"{kept_t:.2f} s"),
        ("libpysal Queen + esda G_Local directly", f"{esda_t:.2f} s"),
        ("ratio esda / gridgeo (first, again)", f"{esda_t / first_t:.2f}x, {esda_t / kept_t:.2f}x"),
        ("answers", "equal (counts exact, times and rates 1e-9; z, p and classes exact)"),
        ("target all units all months < 1 s", "met" if ours_t < 1 else "NOT met"),
    ])


CATEGORIES = ("dispute", "sanitation", "road", "safety", "building", "service", "fire", "public_order")


def filter_change(store: str, repeat: int, port=None) -> None:
    """A filter change on the one map at city scale, over HTTP and in Chromium (see the module notes)."""
    import statistics

    from map import ARGS, CHROMIUM

    server, started, http, key = _viewer_service(store, port)
    ask = _asker(http)

    def view(category, at="2025-06", ranking=True):
        extra = {"ranking": "town", "ranking_indicator": "closure_rate"} if ranking else {}
        return ask("/events/map", level="grid2", period="month", indicator="closure_rate", at=at,
                   scheme="fisher_jenks", k=5, category=category, **extra)

    def two_requests(category):  # what the page asked before: the map's answer, then the ranking
        t_map, _ = view(category, ranking=False)
        t_rank, _ = ask("/events/ranking", level="town", period="month", indicator="closure_rate", at="2025-06",
                        category=category, **{"from": "2025-01-01", "to": "2026-01-01"})
        return t_map + t_rank

    try:
        units = len(ask("/events/map", level="grid2", choropleth="false")[1]["series"])  # warms the placed events
        cold, warm, step, before, pairs = [], [], [], [], []
        for i, category in enumerate(CATEGORIES[:repeat]):
            t_before, _ = ask("/events/indicators", level="town", period="month", category=category)
            before.append(t_before)
            pairs.append(two_requests([CATEGORIES[i], CATEGORIES[(i + 1) % len(CATEGORIES)]]))
            t_cold, body = view(category)
            assert body["ranking"]["rows"], "the answer carries the ranking"
            cold.append(t_cold)
            warm.append(view(category)[0])
            step.append(view(category, at="2025-07")[0])
        n_grids = len(body["choropleth"]["values"])
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            context = browser.new_context(viewport={"width": 1920, "height": 1080})
            context.add_init_script(f"sessionStorage.setItem('gridgeo.key', {key!r})")
            page = context.new_page()
            page.goto(server.url + "/map#field=ev_closure_rate&flevel=grid2&at=2025-06")
            page.wait_for_function("window.onemap && onemap.idle() && document.body.dataset.choropleth", timeout=600_000)
            page_cat, page_step, ranked = [], [], []
            for category in reversed(CATEGORIES[:repeat]):  # asked over HTTP above: the service's parts are warm
                shown, all_ = _page_change(page, lambda: page.select_option("#event-category", category),
                                           f"grid2|closure_rate|2025-06|{category}", "2025-06", category)
                page_cat.append(shown)
                ranked.append(all_)
            for category in CATEGORIES[repeat:repeat + 2]:  # never asked: cold in the service too
                shown, all_ = _page_change(page, lambda: page.select_option("#event-category", category),
                                           f"grid2|closure_rate|2025-06|{category}", "2025-06", category)
                page_cat.append(shown)
                ranked.append(all_)
            for month in ("2025-07", "2025-08", "2025-09"):
                index = page.evaluate("(m) => onemap.events.range().indexOf(m)", month)
                category = page.evaluate("onemap.state.category")
                page_step.append(_page_change(page, lambda: page.evaluate(
                    "(i) => { const s = document.getElementById('event-month'); s.value = String(i); "
                    "s.dispatchEvent(new Event('input')); }", index),
                    f"grid2|closure_rate|{month}|{category}", month, category)[0])
            browser.close()
    finally:
        _stop(server, http)
    ms = _ms
    report(f"events: a filter change on the one map at city scale ({units} months, {n_grids:,} level-2 grids)", [
        ("service start to first answer", f"{started:.1f} s"),
        ("/events/map with the ranking, a category not asked before (cold)", ms(cold)),
        ("/events/map with the ranking, the same again (warm)", ms(warm)),
        ("/events/map with the ranking, the slider's next month", ms(step)),
        ("peer: the page's two requests before, /events/map + /events/ranking (cold)", ms(pairs)),
        ("peer: the page's request before that, /events/indicators of the towns (cards only)", ms(before)),
        ("Chromium: category chosen to cards and choropleth shown", ms(page_cat)),
        ("Chromium: category chosen to the ranking shown too", ms(ranked)),
        ("Chromium: slider step to cards and choropleth shown", ms(page_step)),
        ("target < 300 ms per filter change", "met" if max(statistics.median(cold), statistics.median(page_cat))
         < 0.3 else "NOT met"),
    ])


def unit_questions(store: str, repeat: int, port=None) -> None:
    """A viewer's first trends and ranking of a town's level-2 grids over HTTP (see the module notes)."""
    import statistics

    server, _, http, _ = _viewer_service(store, port)
    ask = _asker(http)
    try:
        ask("/events/map", level="grid2", choropleth="false")  # the placed events
        towns = [row["code"] for row in ask("/events/indicators", level="town", period="span")[1]["rows"]]
        if 3 * repeat > len(gev.INDICATORS):
            raise SystemExit(f"--repeat at most {len(gev.INDICATORS) // 3} with --unit: each question needs an "
                             "indicator not asked before")
        trend_by, rank_by, whole_by = (list(gev.INDICATORS[i * repeat:(i + 1) * repeat]) for i in range(3))
        first, again, ranked, whole, n_rows = [], [], [], [], []
        for i in range(repeat):  # an indicator not asked before each time: nothing kept for it
            t, body = ask("/events/trends", level="grid2", unit=towns[i], indicator=trend_by[i])
            first.append(t)
            n_rows.append(len(body["rows"]))
            again.append(ask("/events/trends", level="grid2", unit=towns[i], indicator=trend_by[i])[0])
            ranked.append(ask("/events/ranking", level="grid2", unit=towns[-1 - i], indicator=rank_by[i],
                              at="2025-06")[0])
        for i in range(repeat):  # the whole level's first trends, with the indicators left
            whole.append(ask("/events/trends", level="grid2", indicator=whole_by[i])[0])
    finally:
        _stop(server, http)
    ms = _ms
    report(f"events: a unit's first trends and ranking at city scale (a town's level-2 grids, "
           f"{int(statistics.median(n_rows)):,} rows)", [
        ("/events/trends?unit=<town>, first", ms(first)),
        ("/events/ranking?unit=<town>, first", ms(ranked)),
        ("/events/trends?unit=<town>, asked again (kept)", ms(again)),
        ("for scale: /events/trends of the whole level, first (every unit's rows)", ms(whole)),
    ])


def _viewer_service(store: str, port=None):
    """``gridgeo serve`` on ``store`` with a viewer's key: (the server, seconds to its first answer, an HTTP
    client sending the key, the key)."""
    import os
    import tempfile

    import httpx

    from api.keys import KeyStore
    from map import serve

    keys = os.path.join(tempfile.mkdtemp(prefix="gridgeo-bench-"), "keys.json")
    key = KeyStore(keys).add("benchmark", "viewer")
    os.environ["GRIDGEO_KEYS_FILE"] = keys
    server, started = serve(store, port)
    return server, started, httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=600), key


def _asker(http):
    """``ask(path, **params)``: (seconds, the JSON answer) of a GET that must answer 200."""
    import time

    def ask(path, **params):
        t0 = time.perf_counter()
        r = http.get(path, params=params)
        assert r.status_code == 200, r.text
        return time.perf_counter() - t0, r.json()
    return ask


def _stop(server, http) -> None:
    http.close()
    server.terminate()
    server.wait(timeout=20)


def _ms(values) -> str:
    """The median in ms, with every run."""
    import statistics

    return f"{statistics.median(values) * 1000:.0f} ms (of {len(values)}: " + \
        ", ".join(f"{v * 1000:.0f}" for v in values) + ")"


def _page_change(page, act, choropleth: str, at: str, category: str) -> tuple[float, float]:
    """Seconds from ``act`` to the page's cards and choropleth both showing the new filter, and to the ranking
    shown too (timed in the page)."""
    page.evaluate("""([c, cards, e]) => { window.__t0 = performance.now(); window.__done = null; window.__all = null;
        const check = () => { const d = document.body.dataset, now = performance.now() - window.__t0;
          if (d.choropleth === c && d.cards === cards && window.__done === null) window.__done = now;
          if (d.choropleth === c && d.events === e && window.__all === null) window.__all = now; };
        window.__observer?.disconnect();
        window.__observer = new MutationObserver(check);
        window.__observer.observe(document.body, {attributes: true}); }""",
                  [choropleth, f"|{at}|{category}", f"|{at}|{category}|closure_rate"])
    act()
    page.wait_for_function("window.__done !== null && window.__all !== null", timeout=600_000)
    page.wait_for_function("onemap.idle()", timeout=600_000)
    return page.evaluate("window.__done") / 1000, page.evaluate("window.__all") / 1000


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--filter", metavar="STORE", help="measure a filter change on the one map served from STORE")
    parser.add_argument("--unit", metavar="STORE", help="measure a unit's first trends and ranking served from STORE")
    parser.add_argument("--port", type=int, help="the port gridgeo serve listens on (default: a free one)")
    args = parser.parse_args()
    if args.filter:
        filter_change(args.filter, args.repeat, args.port)
    elif args.unit:
        unit_questions(args.unit, args.repeat, args.port)
    else:
        main(args.repeat)
