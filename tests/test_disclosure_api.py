"""The minimum count over HTTP: thousands of random anonymous questions to a real `gridgeo serve`.

Every count in every anonymous answer (figures of every level, a unit's page,
class breaks, balance, coverage and the areas left out, search, the event
heat map at every allowed cell size, category and period, vector tiles) is
checked against counts made here from the raw sample by spatial joins and
pandas, never with gridgeo.stats or gridgeo.disclosure: a published count
equals the raw one and is 0 or at least k; no count of 1..k-1 appears; no
subtraction of published figures, along the hierarchy or between heat maps
of nested filters, leaves 1..k-1. A viewer key sees every figure.
"""

from __future__ import annotations

import itertools
import random
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import httpx
import mapbox_vector_tile
import morecantile
import numpy as np
import pandas as pd
import pytest

from test_disclosure import check_no_small_sum

K = 10
COUNTS = ("addresses", "households", "population", "units", "events")
MINUTES = (5, 10, 15)
SEED = 18


# --- the raw sample, counted here -------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw(sample):
    from gridgeo import coverage, crs, network

    units = sample.grids[["code", "geometry"]]
    net = network.build(sample.roads, metric=crs.metric_crs(sample.grids))
    nearest = coverage.nearest_station(sample.addresses, sample.stations, net)
    points = nearest.assign(units_=sample.addresses.set_index("addr_id").loc[nearest["addr_id"], "units"].to_numpy())
    pairs = gpd.sjoin(points, units, predicate="within")
    table = pd.DataFrame({"addresses": pairs.groupby("code").size(),
                          "households": pairs.groupby("code")["households"].sum(),
                          "population": pairs.groupby("code")["population"].sum(),
                          "units": pairs.groupby("code")["units_"].sum()})
    for m in MINUTES:
        table[f"households_{m}min"] = pairs[pairs["circle"] <= m].groupby("code")["households"].sum()
    table["events"] = gpd.sjoin(sample.events, units, predicate="within").groupby("code").size()
    table = table.reindex(sample.grids["code"]).fillna(0).astype(np.int64)
    grids = sample.grids.set_index("code")
    table["parent"], table["level"] = grids["parent"], grids["level"]
    return table


@pytest.fixture(scope="module")
def groups(sample):
    """Events per (month, category), from the raw events."""
    ev = sample.events
    return ev.groupby([ev["reported_at"].dt.to_period("M").dt.start_time, ev["category"]]).size()


def small(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < K


def ask(server, paths, headers=None, threads=4):
    """GET every path (in a few threads); the answers in the same order."""
    with httpx.Client(base_url=server.url, timeout=120, headers=headers or {}) as client:
        def one(path):
            r = client.get(path)
            return r.status_code, (r.json() if r.headers.get("content-type", "").endswith("json") else r.content)
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(one, paths))


def check_unit(row, raw, seen):
    """One published unit's row against the raw counts; records what the public saw."""
    code = row["code"]
    for column in COUNTS:
        value = row.get(column)
        if value is None:
            assert row["suppressed"], (code, column)
            seen.setdefault(column, {})[code] = None
            continue
        assert value == raw.at[code, column], (code, column, value)
        assert not small(value), (code, column, value)
        seen.setdefault(column, {})[code] = value
    if row.get("events_per_1000") is not None:
        assert row["events"] is not None and row["population"] is not None
        assert row["events_per_1000"] == pytest.approx(row["events"] / row["population"] * 1000, abs=1e-3)
    for rate in ("households_per_worker", "band"):
        if rate in row and row["households"] is None:
            assert row[rate] is None, (code, rate)
    for m in MINUTES:
        share = row.get(f"share_{m}min")
        if share is not None:  # with the households it gives the households reached (to 4 decimals)
            assert row["households"] is not None
            reached = raw.at[code, f"households_{m}min"]
            assert abs(share * row["households"] - reached) <= row["households"] * 5e-5 + 0.5
            assert not small(int(reached)) and not small(int(row["households"] - reached)), (code, m, reached)


# --- figures ----------------------------------------------------------------------------------------


def test_figures_of_every_level_and_unit_never_count_fewer_than_k(server, raw):
    levels = ["town", "village", "grid1", "grid2", "grid3"]
    parents = sorted(set(raw["parent"]) - {""})
    rng = random.Random(SEED)
    paths = [f"/stats/{lv}" for lv in levels]
    paths += [f"/stats/{lv}?parent={p}" for p in parents for lv in levels
              if (raw.loc[raw["parent"] == p, "level"] == lv).any()]
    units = list(raw.index)
    paths += [f"/stats/unit/{c}" for c in rng.sample(units, 150)]
    answers = ask(server, paths)
    seen: dict = {}
    rows = 0
    for path, (status, body) in zip(paths, answers):
        assert status == 200, (path, body)
        assert body["min_count"] == K
        found = body["units"] if "units" in body else [body["figures"], *body["children"]]
        if "figures" in body:
            body["figures"]["code"] = body["code"]
        for row in found:
            check_unit(row, raw, seen)
            rows += 1
    assert rows > 700 and len(paths) > 200
    # every plot of fewer than k addresses was withheld in every answer that listed it
    tiny = raw.index[(raw["addresses"] > 0) & (raw["addresses"] < K)]
    assert all(seen["households"].get(c) is None for c in tiny if c in seen["households"])
    # and no subtraction of what the public saw leaves fewer than k
    hidden = {c: pd.Series({code: seen[c].get(code) is None for code in raw.index}) for c in
              ("households", "events")}
    check_no_small_sum(None, {c: (raw[c], hidden[c]) for c in ("households", "events")}, raw["parent"], {})
    plots = raw[raw["level"] == "grid3"]
    print(f"grid3 at k={K}: {int(hidden['households'][plots.index].sum())} of {len(plots)} withheld "
          f"(addresses), {int(hidden['events'][plots.index].sum())} (events); {len(paths)} questions, {rows} rows")


def test_breaks_balance_and_search_carry_no_small_count(server, raw, sample):
    paths = [f"/stats/{lv}/breaks?field={f}&k={k}&scheme={s}" for lv in ("village", "grid2", "grid3")
             for f in ("households", "population", "events", "addresses") for k in (2, 5, 9)
             for s in ("quantiles", "fisher_jenks", "equal_interval")]
    paths += [f"/stats/{lv}/balance" for lv in ("town", "village", "grid1", "grid2", "grid3")]
    rng = random.Random(SEED)
    names = list(sample.grids["name"]) + list(sample.grids["code"])
    queries = sorted({n[i:i + rng.randint(1, 4)] for n in rng.sample(names, 120) for i in [rng.randrange(len(n))]})
    paths += [f"/search?q={q}" for q in queries if q.strip()]
    answers = ask(server, paths)
    for path, (status, body) in zip(paths, answers):
        assert status == 200, (path, body)
        if "/breaks" in path:  # the smallest and largest are units' figures, so are natural breaks
            assert not small(body.get("min")) and not (body["bins"] and small(body["bins"][-1])), (path, body)
            if "fisher_jenks" in path:
                assert not any(small(b) for b in body["bins"]), (path, body)
        elif "/balance" in path:
            for key in ("total", "min", "max"):
                assert not small(body[key]), (path, key, body[key])
            assert body["min_count"] == K
        else:  # search: names and codes, no figure at all
            for result in body["results"]:
                assert set(result) == {"code", "name", "level", "parent"}
    grid3 = dict(zip(paths, answers))["/stats/grid3/balance"][1]
    published = raw[(raw["level"] == "grid3") & ((raw["addresses"] >= K) | (raw["addresses"] == 0))]
    assert grid3["count"] <= len(published)


def test_coverage_of_every_level_and_the_areas_left_out(server, raw):
    parents = sorted(set(raw["parent"]) - {""})
    paths = [f"/coverage?minutes={m}&level={lv}" for m in MINUTES for lv in ("town", "village", "grid1", "grid2",
                                                                              "grid3")]
    rng = random.Random(SEED)
    paths += [f"/coverage?minutes={rng.choice(MINUTES)}&level={lv}&parent={p}" for p in parents[::2]
              for lv in ("grid1", "grid2", "grid3") if (raw.loc[raw["parent"] == p, "level"] == lv).any()]
    answers = ask(server, paths)
    shown = 0
    for path, (status, body) in zip(paths, answers):
        assert status == 200, (path, body)
        m = body["minutes"]
        for unit in body["units"]:
            code, hh, reached = unit["code"], unit["households"], unit[f"households_{m}min"]
            if hh is not None:
                assert hh == raw.at[code, "households"] and not small(hh)
            if reached is not None:
                assert hh is not None and reached == raw.at[code, f"households_{m}min"]
                assert not small(reached) and not small(hh - reached), (path, code, hh, reached)
                shown += 1
            else:
                assert unit[f"share_{m}min"] is None
        for feature in body["uncovered"]["features"]:
            for key in ("addresses", "households", "population"):
                assert not small(feature["properties"][key]), (path, feature["properties"])
    assert shown > 200 and len(paths) > 40


# --- the event heat map -------------------------------------------------------------------------------


def test_random_heat_maps_never_show_or_difference_to_fewer_than_k(server, groups):
    cats = sorted(groups.index.get_level_values(1).unique())
    months = [m.strftime("%Y-%m-%d") for m in pd.date_range("2025-01-01", "2026-01-01", freq="MS")]
    rng = random.Random(SEED)
    questions = []
    for _ in range(1500):
        q = {"cell": rng.choice([250, 300, 500, 750, 1000, 2000])}
        if rng.random() < 0.8:
            q["category"] = sorted(rng.sample(cats, rng.choice([1, 1, 2, 3, len(cats)])))
        if rng.random() < 0.85:
            a, b = sorted(rng.sample(range(len(months)), 2))
            if rng.random() < 0.6:
                b = a + 1
            q["from"], q["to"] = months[a], months[b]
        questions.append(q)

    def path(q):
        parts = [f"cell={q['cell']}"] + [f"category={c}" for c in q.get("category", [])]
        parts += [f"{k}={q[k]}" for k in ("from", "to") if k in q]
        return "/events/heat?" + "&".join(parts)

    answers = ask(server, [path(q) for q in questions])
    cells_seen = 0
    kept = []
    for q, (status, body) in zip(questions, answers):
        assert status == 200, (q, body)
        counts = [c[2] for c in body["cells"]]
        assert all(c >= K for c in counts), q
        g = groups
        if "category" in q:
            g = g[g.index.get_level_values(1).isin(q["category"])]
        if "from" in q:
            start = g.index.get_level_values(0)
            g = g[(start >= pd.Timestamp(q["from"])) & (start < pd.Timestamp(q["to"]))]
        assert sum(counts) == int(g[g >= K].sum()), q
        assert body["withheld"]["groups"] == int((g < K).sum())
        assert body["min_count"] == K and body["period"] == "month" and body["cell_m"] == q["cell"]
        cells_seen += len(counts)
        kept.append((q, {(c[0], c[1]): c[2] for c in body["cells"]}))
    assert cells_seen > 20_000
    # nested questions (same cell, a sub-period, a subset of categories): no cell differs by 1..k-1
    pairs = 0
    by_cell = {}
    for q, cells in kept:
        by_cell.setdefault(q["cell"], []).append((q, cells))
    for answers_of_size in by_cell.values():
        for (q1, big), (q2, sub) in itertools.permutations(answers_of_size[:120], 2):
            inside = set(q2.get("category", [1])) <= set(q1.get("category", q2.get("category", [1]))) and (
                "from" not in q1 or ("from" in q2 and q1["from"] <= q2["from"] and q2["to"] <= q1["to"]))
            if not inside or q1 == q2:
                continue
            for key in set(big) | set(sub):
                diff = big.get(key, 0) - sub.get(key, 0)
                assert not 0 < diff < K, (q1, q2, key, diff)
            pairs += 1
    assert pairs > 200


def test_the_heat_map_refuses_what_could_single_out_an_event(server):
    paths = ["/events/heat?cell=50", "/events/heat?cell=100&from=2025-03-01&to=2025-04-01",
             "/events/heat?cell=500&from=2025-03-02&to=2025-04-01", "/events/heat?cell=500&from=2025-03-01&to=2025-03-02",
             "/events/heat?category=dispute&from=2025-03-01&to=2025-03-02&cell=50"]
    for path, (status, body) in zip(paths, ask(server, paths)):
        assert status == 422, (path, body)  # the request fits the document; the rule refuses it
        assert body["status"] == 422 and ("250" in body["detail"] or "整月" in body["detail"]), body


# --- tiles and the map's configuration -------------------------------------------------------------------


def test_tiles_carry_only_counts_of_at_least_k(server, raw, sample):
    tms = morecantile.tms.get("WebMercatorQuad")
    plots = sample.grids[sample.grids["level"] == "grid3"]
    wanted = set()

    def add(layer, point, z):
        t = tms.tile(point.x, point.y, z)
        wanted.add(f"/tiles/{layer}/{t.z}/{t.x}/{t.y}.mvt")

    for z in (13, 14, 15):
        for geom in plots.geometry.iloc[::3]:
            add("grid3", geom.representative_point(), z)
    for geom in sample.grids.loc[sample.grids["level"] == "grid2", "geometry"].iloc[::8]:
        add("events", geom.representative_point(), 13)
        add("grid2", geom.representative_point(), 12)
    paths = sorted(wanted)
    features = 0
    withheld = 0
    for path, (status, data) in zip(paths, ask(server, paths)):
        assert status in (200, 204), path
        if status == 204:
            continue
        for layer in mapbox_vector_tile.decode(data).values():
            for feature in layer["features"]:
                props = feature["properties"]
                code = props["code"]
                for column in ("households", "population", "events"):
                    if column in props:
                        assert props[column] == raw.at[code, column] and not small(props[column]), (path, props)
                counted = "events" if "events" in path else "households"
                if counted not in props:
                    assert props["suppressed"] is True, (path, props)
                    withheld += 1
                assert not any(k.startswith("events_") and k != "events_per_1000" for k in props)
                features += 1
    assert features > 100 and withheld > 10


def test_the_map_configuration_is_public(server, raw):
    (status, config), = ask(server, ["/map/config.json"])
    assert status == 200 and config["min_count"] == K
    assert config["heat"] == {"min_cell_m": 250, "period": "month", "min_count": K}
    root = config["root"]["figures"]
    top = raw[raw["level"] == "town"]
    assert root["households"] == int(top["households"].sum()) >= K
    assert not any(small(v) for k, v in root.items() if k in COUNTS)


# --- authorised roles -------------------------------------------------------------------------------------


def test_a_viewer_key_sees_every_figure(server, api_keys, raw, sample):
    key = {"X-API-Key": api_keys["viewer"]}
    paths = ["/stats/grid3", "/coverage?minutes=15&level=grid3",
             "/events/heat?cell=50&category=dispute&from=2025-03-01&to=2025-03-02", "/stats/grid3/balance"]
    (s1, stats), (s2, cov), (s3, heat), (s4, balance) = ask(server, paths, headers=key)
    assert s1 == s2 == s3 == s4 == 200
    assert stats["min_count"] is None and not any(u["suppressed"] for u in stats["units"])
    for unit in stats["units"]:
        for column in COUNTS:
            assert unit[column] == raw.at[unit["code"], column]
    assert any(small(u["households"]) for u in stats["units"])  # the small plots, as they are
    assert all(u["households_15min"] == raw.at[u["code"], "households_15min"] for u in cov["units"])
    ev = sample.events
    day = ev[(ev["category"] == "dispute") & (ev["reported_at"] >= "2025-03-01") & (ev["reported_at"] < "2025-03-02")]
    assert sum(c[2] for c in heat["cells"]) == len(day) and heat["min_count"] is None
    assert balance["min"] == raw.loc[raw["level"] == "grid3", "households"].min()
