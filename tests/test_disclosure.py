"""gridgeo.disclosure: the minimum count, checked against the raw data and two attackers.

The published figures are compared with counts made here from the raw
addresses and events by a spatial join (not gridgeo.stats). Whether a small
count can be worked out is checked two ways that share nothing with the
module's bit-set pass: by listing the cuts of every published unit's subtree
(every way of subtracting published units from it) and adding up what they
leave, and by a linear-programming attacker (scipy's HiGHS) that knows every
published figure and every parent-children sum and tries to pin each small
suppressed cell to one value. Real data nobody here generated (North
Carolina's SIDS deaths per county, John Snow's cholera deaths per house in
Soho, both shipped with libpysal) goes through the same checks.
"""

from __future__ import annotations

import itertools
import random

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

import gridgeo
from gridgeo import coverage, disclosure

K = 10
MINUTES = (5, 10, 15)


# --- the raw data, counted here -------------------------------------------------------------------


@pytest.fixture(scope="module")
def nearest(sample):
    return coverage.nearest_station(sample.addresses, sample.stations, method="straight")


@pytest.fixture(scope="module")
def raw(sample, nearest):
    """Per unit, counted from the raw points by a spatial join: the address counts,
    events, households reached in each circle and not reached."""
    units = sample.grids[["code", "geometry"]]
    pts = nearest.assign(units_=sample.addresses.set_index("addr_id").loc[nearest["addr_id"], "units"].to_numpy())
    pairs = gpd.sjoin(pts, units, predicate="within")
    table = pd.DataFrame({
        "addresses": pairs.groupby("code").size(),
        "households": pairs.groupby("code")["households"].sum(),
        "population": pairs.groupby("code")["population"].sum(),
        "units": pairs.groupby("code")["units_"].sum(),
    })
    for m in MINUTES:
        reached = pairs[pairs["circle"] <= m]
        table[f"households_{m}min"] = reached.groupby("code")["households"].sum()
    ev = gpd.sjoin(sample.events, units, predicate="within")
    table["events"] = ev.groupby("code").size()
    table = table.reindex(sample.grids["code"]).fillna(0).astype(np.int64)
    for m in MINUTES:
        table[f"uncovered_{m}min"] = table["households"] - table[f"households_{m}min"]
    table["parent"] = sample.grids.set_index("code")["parent"]
    table["level"] = sample.grids.set_index("code")["level"]
    return table


@pytest.fixture(scope="module")
def figures(sample, nearest):
    f = gridgeo.stats.figures(sample.grids, addresses=sample.addresses, events=sample.events,
                              stations=sample.stations)
    per = coverage.per_grid(nearest, sample.grids, stations=sample.stations).set_index("code")
    keep = [c for c in per.columns if c.startswith("share_") or c in ("has_station", "farthest_m")]
    return f.join(per[keep])


@pytest.fixture(scope="module")
def public(figures):
    return disclosure.public_figures(figures, K)


# --- two attackers, written without the module ---------------------------------------------------


def _children(parents: pd.Series) -> dict:
    out: dict = {}
    for code, parent in parents.items():
        out.setdefault(parent if parent in parents.index else "", []).append(code)
    return out


def cut_sums(values: pd.Series, hidden: pd.Series, parents: pd.Series, top, limit=4000, seed=0):
    """Every sum (or, past ``limit`` cuts, a random sample of them) that the hidden cells
    and remainders of a cut below ``top`` leave when the published cells are subtracted."""
    kids = _children(parents)
    whole = int(values.reindex([c for c in kids.get("", [])]).sum())

    def value(code):
        return whole if code == "" else int(values[code])

    def cuts(code):
        own = [value(code) if (code != "" and hidden[code]) else 0]
        children = kids.get(code, [])
        if not children:
            return own
        rest = int(value(code) - sum(value(c) for c in children))
        if rest < 0:
            return own
        per = [cuts(c) for c in children]
        count = 1
        for options in per:
            count *= len(options)
        if count <= limit:
            combos = (sum(c) + rest for c in itertools.product(*per))
        else:
            rng = random.Random(seed)
            combos = (sum(rng.choice(o) for o in per) + rest for _ in range(limit))
        return own + sorted({int(c) for c in combos})

    return cuts(top)[1:]  # the cut at the top itself subtracts nothing


def lp_ranges(values: pd.Series, hidden: pd.Series, parents: pd.Series, targets) -> dict:
    """For each target cell, the smallest and largest value a linear-programming attacker can
    give it, knowing every published value and that a parent holds its children (and a
    remainder >= 0 where the children do not add up; exactly 0 where they do)."""
    kids = _children(parents)
    codes = list(values.index)
    unknown = [c for c in codes if hidden[c]]
    var = {c: i for i, c in enumerate(unknown)}
    rows, rhs = [], []
    rests = []
    for parent, children in kids.items():
        if parent == "":
            continue
        rest = int(values[parent]) - int(values[children].sum())
        if rest < 0:
            continue
        row = {}
        known = 0
        for sign, c in [(1, parent)] + [(-1, c) for c in children]:
            if c in var:
                row[var[c]] = row.get(var[c], 0) + sign
            else:
                known += sign * int(values[c])
        if rest > 0:  # a remainder: one more unknown, >= 0
            rests.append(len(unknown) + len(rests))
            row[rests[-1]] = -1
        rows.append(row)
        rhs.append(-known)
    n = len(unknown) + len(rests)
    a_eq = np.zeros((len(rows), n))
    for i, row in enumerate(rows):
        for j, v in row.items():
            a_eq[i, j] = v
    out = {}
    for code in targets:
        c = np.zeros(n)
        c[var[code]] = 1
        lo = linprog(c, A_eq=a_eq, b_eq=rhs, bounds=(0, None), method="highs")
        hi = linprog(-c, A_eq=a_eq, b_eq=rhs, bounds=(0, None), method="highs")
        assert lo.status == 0 and hi.status == 0, (lo.message, hi.message)
        out[code] = (lo.fun, -hi.fun)
    return out


def check_no_small_sum(public, raw_values: dict, parents: pd.Series, groups: dict):
    """No cut below any published unit, nor below the whole area, sums to 1..K-1."""
    checked = 0
    for column, (values, hidden) in raw_values.items():
        tops = [""] + [c for c in values.index if not hidden[c]]
        for top in tops:
            sums = cut_sums(values, hidden, parents, top)
            small = [s for s in sums if 0 < s < K]
            assert not small, f"{column}: below {top or 'the whole area'} a cut leaves {small[:5]}"
            checked += len(sums)
    return checked


# --- the sample ------------------------------------------------------------------------------------


def test_published_counts_are_the_raw_counts_at_least_k(public, raw):
    checked = 0
    for column in ("addresses", "households", "population", "units", "events", "households_5min",
                   "households_15min"):
        if column.startswith("households_"):
            share = f"share_{column.split('_')[1]}"
            shown = public[share].notna() & public["households"].notna()
            got = (public.loc[shown, share].astype(float) * public.loc[shown, "households"].astype(float)).round()
        else:
            shown = public[column].notna()
            got = public.loc[shown, column].astype(float)
        want = raw.loc[got.index, column].astype(float)
        np.testing.assert_array_equal(got.to_numpy(), want.to_numpy(), err_msg=column)
        if column != "units":  # market entities are not people: they follow their addresses
            assert ((got == 0) | (got >= K)).all(), column
            small = raw.index[(raw[column] > 0) & (raw[column] < K)]
            assert not shown.reindex(small).fillna(False).any(), f"{column}: a count below {K} is published"
        checked += int(shown.sum())
    assert checked > 500
    assert public.attrs["min_count"] == K


def test_the_small_plots_of_the_issue_are_suppressed(public, raw):
    # the issue: /stats/grid3 showed units of 1-2 addresses whose figures were one address's record
    tiny = raw.index[(raw["level"] == "grid3") & raw["addresses"].between(1, 2)]
    assert len(tiny) > 0
    assert public.loc[tiny, ["addresses", "households", "population", "units"]].isna().all().all()
    assert public.loc[tiny, "suppressed"].all()
    plots = public[public["level"] == "grid3"]
    print(f"grid3 at k={K}: {int(plots['households'].isna().sum())} of {len(plots)} suppressed "
          f"(addresses), {int(plots['events'].isna().sum())} (events)")
    # nothing above the plots is lost on the sample: villages, grid1 and grid2 keep their counts
    above = public[public["level"].isin(["town", "village", "grid1", "grid2"])]
    assert above[["addresses", "households", "population", "events"]].notna().all().all()


def test_no_subtraction_along_the_hierarchy_leaves_a_count_below_k(public, raw):
    parents = raw["parent"]
    address_hidden = public["households"].isna()
    event_hidden = public["events"].isna()
    columns = {c: (raw[c], address_hidden) for c in ("addresses", "households", "population")}
    columns["events"] = (raw["events"], event_hidden)
    for m in MINUTES:
        hidden = public[f"share_{m}min"].isna() & (raw["households"] > 0)
        hidden |= address_hidden
        columns[f"households_{m}min"] = (raw[f"households_{m}min"], hidden)
        columns[f"uncovered_{m}min"] = (raw[f"uncovered_{m}min"], hidden)
    assert check_no_small_sum(public, columns, parents, {}) > 1000


def test_a_linear_programming_attacker_pins_no_small_cell(public, raw):
    parents = raw["parent"]
    for column, hidden in (("households", public["households"].isna()), ("events", public["events"].isna()),
                           ("population", public["population"].isna())):
        small = [c for c in raw.index if hidden[c] and 0 < raw.at[c, column] < K]
        assert small
        ranges = lp_ranges(raw[column], hidden, parents, small)
        pinned = {c: r for c, r in ranges.items() if r[1] - r[0] < 0.5}
        assert not pinned, f"{column}: the attacker pins {list(pinned.items())[:5]}"
        # and every range holds the truth: the attacker's model is the data's
        assert all(lo - 1e-6 <= raw.at[c, column] <= hi + 1e-6 for c, (lo, hi) in ranges.items())


def test_without_secondary_suppression_the_attackers_would_win():
    """The attackers are not toothless: primary suppression alone gives a small plot away."""
    f = pd.DataFrame({"level": ["grid2", "grid3", "grid3", "grid3"], "parent": ["", "g", "g", "g"],
                      "households": [40, 4, 16, 20], "addresses": [24, 2, 10, 12], "population": [90, 9, 36, 45]},
                     index=["g", "p1", "p2", "p3"])
    naive = f["addresses"].between(1, K - 1) | f["households"].between(1, K - 1)
    with pytest.raises(AssertionError, match=r"leaves \[4\]"):
        check_no_small_sum(None, {"households": (f["households"], naive)}, f["parent"], {})
    assert lp_ranges(f["households"], naive, f["parent"], ["p1"])["p1"] == pytest.approx((4, 4))
    protected = disclosure.public_figures(f, K)
    hidden = protected["households"].isna()
    assert list(hidden) == [False, True, True, False]  # the smaller sibling goes with it
    check_no_small_sum(None, {c: (f[c], hidden) for c in ("households", "addresses", "population")},
                       f["parent"], {})
    lo, hi = lp_ranges(f["households"], hidden, f["parent"], ["p1"])["p1"]
    assert hi - lo >= K - 1


def test_rates_go_with_their_counts(public, figures):
    no_addresses = public["households"].isna()
    assert public.loc[no_addresses, ["households_per_worker", "band", "farthest_m", "events_per_1000"]] \
        .isna().all().all()
    assert public.loc[public["events"].isna(), "events_per_1000"].isna().all()
    for m in MINUTES:
        reached = public[f"share_{m}min"]
        assert reached[no_addresses].isna().all()
    shown = public["events_per_1000"].notna()
    np.testing.assert_allclose(public.loc[shown, "events_per_1000"].astype(float),
                               figures.loc[shown[shown].index, "events_per_1000"].astype(float))
    # breakdowns of events per unit are not published, nor an address's id
    assert not [c for c in public.columns if c.startswith("events_") and c != "events_per_1000"]
    assert "events_dispute" in public.attrs["left_out"]


def test_k_of_one_publishes_every_figure(figures):
    everything = disclosure.public_figures(figures, 1)
    assert not everything["suppressed"].any()
    pd.testing.assert_series_equal(everything["households"].astype("int64"), figures["households"],
                                   check_names=False)
    with pytest.raises(disclosure.DisclosureError, match="positive integer"):
        disclosure.public_figures(figures, 0)


def test_a_larger_k_suppresses_a_superset_of_units(figures):
    counts = []
    for k in (5, 10, 20, 40):
        counts.append(int(disclosure.public_figures(figures, k)["households"].isna().sum()))
    assert counts == sorted(counts) and counts[0] < counts[-1]


# --- data nobody here generated ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sids():
    """North Carolina's 100 counties with SIDS deaths (1974-78) and births, grouped under the
    state by the first digit of their county number (an invented middle level)."""
    from libpysal import examples

    nc = gpd.read_file(examples.get_path("sids2.shp"))
    code = nc["FIPS"].astype(str)
    region = "R" + code.str[2:4]
    counties = pd.DataFrame({"level": "county", "parent": region.to_numpy(), "events": nc["SID74"].to_numpy(int),
                             "population": nc["BIR74"].to_numpy(int), "households": nc["NWBIR74"].to_numpy(int),
                             "addresses": nc["BIR74"].to_numpy(int)}, index=code.to_numpy())
    regions = counties.groupby("parent")[["events", "population", "households", "addresses"]].sum()
    regions = regions.assign(level="region", parent="37")
    state = pd.DataFrame([{**regions[["events", "population", "households", "addresses"]].sum().to_dict(),
                           "level": "state", "parent": ""}], index=["37"])
    return pd.concat([state, regions, counties])


def test_north_carolina_sids_deaths(sids):
    public = disclosure.public_figures(sids, K)
    counties = public[public["level"] == "county"]
    small = sids.index[(sids["level"] == "county") & sids["events"].between(1, K - 1)]
    assert len(small) > 40 and counties.loc[small, "events"].isna().all()
    shown = public["events"].notna()
    assert ((public.loc[shown, "events"] == 0) | (public.loc[shown, "events"] >= K)).all()
    assert (public.loc[shown, "events"] == sids.loc[shown, "events"]).all()
    hidden = public["events"].isna()
    check_no_small_sum(public, {"events": (sids["events"], hidden)}, sids["parent"], {})
    targets = [c for c in small]
    ranges = lp_ranges(sids["events"], hidden, sids["parent"], targets)
    assert all(hi - lo >= 0.5 for lo, hi in ranges.values())
    print(f"NC SIDS 1974-78, k={K}: {int(counties['events'].isna().sum())} of {len(counties)} counties withheld")


@pytest.fixture(scope="module")
def snow():
    """John Snow's 1854 cholera deaths, one row per death at its house (EPSG:27700 metres)."""
    from libpysal import examples

    houses = gpd.read_file(examples.get_path("SohoPeople.shp")).to_crs(27700)
    rows = houses.loc[houses.index.repeat(houses["Count"].astype(int))]
    return pd.DataFrame({"x": rows.geometry.x.to_numpy(), "y": rows.geometry.y.to_numpy(), "category": "cholera",
                         "reported_at": pd.Timestamp("1854-09-01")})


def test_snow_cholera_blocks(snow):
    import pyproj

    blocks = disclosure.event_blocks(snow, K)
    assert int(blocks["events"].sum()) == len(snow) > 300
    assert blocks["events"].between(K, 2 * K - 1).all()

    for cell in (50, 100, 400):
        cells = disclosure.heat(blocks, cell_m=cell, crs=pyproj.CRS.from_epsg(27700))
        assert int(cells["count"].sum()) == len(snow) and (cells["count"] >= K).all()


# --- heat maps ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def events_metric(sample):
    metric = gridgeo.crs.metric_crs(sample.grids)
    pts = sample.events.geometry.to_crs(metric)
    return pd.DataFrame({"x": pts.x.to_numpy(), "y": pts.y.to_numpy(), "category": sample.events["category"],
                         "reported_at": sample.events["reported_at"]}), metric


@pytest.mark.parametrize("period", ["month", "quarter", "year"])
def test_blocks_partition_every_group_of_at_least_k(events_metric, period):
    ev, _ = events_metric
    blocks = disclosure.event_blocks(ev, K, period=period)
    freq = disclosure.PERIODS[period]
    groups = ev.groupby([ev["reported_at"].dt.to_period(freq).dt.start_time, ev["category"]]).size()
    shown = blocks.groupby(["period", "category"])["events"].sum()
    big = groups[groups >= K]
    pd.testing.assert_series_equal(shown.sort_index(), big.sort_index(), check_names=False)
    assert blocks["events"].between(K, 2 * K - 1).all()
    withheld = blocks.attrs["withheld"].set_index(["period", "category"])["events"]
    pd.testing.assert_series_equal(withheld.sort_index(), groups[groups < K].sort_index(), check_names=False)
    # a block sits among its group's events
    for (start, cat), b in blocks.groupby(["period", "category"]):
        members = ev[(ev["reported_at"].dt.to_period(freq).dt.start_time == start) & (ev["category"] == cat)]
        assert b["x"].between(members["x"].min(), members["x"].max()).all()


def test_heat_maps_never_difference_to_a_small_count(events_metric):
    ev, metric = events_metric
    blocks = disclosure.event_blocks(ev, K)
    months = pd.date_range("2025-01-01", "2026-01-01", freq="MS")
    cats = sorted(ev["category"].unique())
    rng = random.Random(18)
    answers = []
    month_of = ev["reported_at"].dt.to_period("M").dt.start_time
    groups = ev.groupby([month_of, ev["category"]]).size()
    for _ in range(120):
        a, b = sorted(rng.sample(range(len(months)), 2))
        chosen = rng.sample(cats, rng.randint(1, len(cats)))
        cell = rng.choice([250, 500, 1000, 2000])
        cells = disclosure.heat(blocks, cell_m=cell, crs=metric, category=chosen, start=months[a], end=months[b])
        assert (cells["count"] >= K).all()
        wanted = groups[(groups.index.get_level_values(0) >= months[a]) & (groups.index.get_level_values(0) < months[b])
                        & groups.index.get_level_values(1).isin(chosen)]
        assert int(cells["count"].sum()) == int(wanted[wanted >= K].sum())
        assert cells.attrs["withheld_groups"] == int((wanted < K).sum())
        answers.append((cell, a, b, set(chosen), cells.set_index(["lat", "lon"])["count"]))
    pairs = 0
    for (c1, a1, b1, s1, big), (c2, a2, b2, s2, small) in itertools.permutations(answers, 2):
        if c1 == c2 and a1 <= a2 and b2 <= b1 and s2 <= s1:
            diff = big.subtract(small, fill_value=0)
            assert not ((diff > 0) & (diff < K)).any()
            assert (diff >= 0).all()
            pairs += 1
    assert pairs > 20


def test_public_heat_periods_must_be_whole(events_metric):
    disclosure.aligned_period(pd.Timestamp("2025-04-01"), pd.Timestamp("2025-07-01"), "quarter")
    with pytest.raises(disclosure.DisclosureError, match="整季度.*whole quarters"):
        disclosure.aligned_period(pd.Timestamp("2025-05-01"), None, "quarter")
    with pytest.raises(disclosure.DisclosureError, match="to=2025-03-15"):
        disclosure.aligned_period(None, pd.Timestamp("2025-03-15"))


def test_uncovered_areas_below_k_are_left_out(sample, nearest):
    areas = coverage.uncovered_areas(nearest, minutes=5, within=sample.level("town"))
    shown = disclosure.public_areas(areas, K)
    for column in ("addresses", "households", "population"):
        assert not shown[column].between(1, K - 1).any()
    small = (areas[["addresses", "households", "population"]].apply(lambda s: s.between(1, K - 1))).any(axis=1)
    assert shown.attrs["withheld"] == int(small.sum()) > 0
    assert len(shown) == len(areas) - int(small.sum())


def test_the_examples_run():
    import doctest

    outcome = doctest.testmod(disclosure, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert outcome.attempted > 10 and outcome.failed == 0


def test_a_whole_area_of_fewer_than_k_is_withheld_too():
    f = pd.DataFrame({"level": ["town", "town"], "parent": ["", ""], "households": [3, 4], "addresses": [2, 3],
                      "population": [8, 9], "events": [0, 12]}, index=["t1", "t2"])
    public = disclosure.public_figures(f, K)
    assert public["households"].isna().all() and public.attrs["whole"] == {"addresses": True, "events": False}
    assert public["events"].tolist() == [0, 12]


@pytest.mark.parametrize("how", [["--events-level", "grid3"], ["--hexagon", "300"]])
def test_exported_tiles_publish_event_counts_of_at_least_k(tmp_path, sample, how):
    import mapbox_vector_tile
    from typer.testing import CliRunner

    from gridgeo.cli import app

    out = tmp_path / "tiles"
    result = CliRunner().invoke(app, ["tiles", "export", "sample_geojson", str(out), "--minzoom", "13",
                                      "--maxzoom", "13", "--layers", "events", *how])
    assert result.exit_code == 0, result.output
    plots = sample.level("grid3")
    raw = gpd.sjoin(sample.events, plots[["code", "geometry"]], predicate="within").groupby("code").size()
    seen, withheld = 0, 0
    for path in out.rglob("*.pbf"):
        for feature in mapbox_vector_tile.decode(path.read_bytes())["events"]["features"]:
            props = feature["properties"]
            assert not [key for key in props if key.startswith("events_")]
            if "events" not in props:
                assert props["suppressed"] and "--hexagon" not in how
                withheld += 1
                continue
            assert props["events"] == 0 or props["events"] >= K, props
            if "code" in props:
                assert props["events"] == raw.get(props["code"], 0)
            seen += 1
    assert seen > 0 and (withheld > 0 or "--hexagon" in how)


@pytest.mark.parametrize("seed", range(6))
def test_the_audit_of_a_depth_at_once_suppresses_what_the_audit_node_by_node_does(seed):
    """The secondary suppression made with arrays, a depth of the tree at once, suppresses exactly
    the units the node-by-node pass does (the rule as first written), on random hierarchies with
    small and large counts, partial levels (remainders), children holding more than their parent
    and several counts; and what it publishes leaves no cut summing to 1..k-1 (counted here)."""
    from gridgeo.disclosure import _Tree

    rng = np.random.default_rng(seed)
    k = int(rng.choice([3, 5, 10, 12]))
    codes, parents, levels = [], [], []

    def grow(code, parent, level, depth):
        codes.append(code)
        parents.append(parent)
        levels.append(level)
        if depth < 4:
            for i in range(int(rng.integers(0 if depth >= 2 else 1, 6 if depth < 3 else 12))):
                grow(f"{code}.{i}", code, f"l{depth + 1}", depth + 1)

    for town in range(int(rng.integers(2, 5))):
        grow(f"t{town}", "", "l0", 0)
    n = len(codes)
    levels = np.array(levels, dtype=object)
    if seed % 2:  # another level under some parents: two equations for them
        extra = rng.choice(np.flatnonzero(levels == "l2"), size=3, replace=False)
        for i, p in enumerate(extra):
            codes.append(f"x{i}")
            parents.append(codes[p])
        levels = np.append(levels, ["lx"] * 3).astype(object)
        n = len(codes)
    tree = _Tree(np.array(codes, dtype=object), np.array(parents, dtype=object), levels)
    # counts from the leaves up (small ones often), a remainder here and there, a few inconsistent
    values = np.zeros((n, 2), dtype=np.int64)
    kids = tree.children()
    for node in tree.order:
        node = int(node)
        if node == n:
            continue
        below = [c for group in kids.get(node, {}).values() for c in group]
        for j in range(2):
            own = int(rng.choice([0, 0, 1, 2, k - 1, k, 3 * k], p=[.3, .1, .15, .15, .1, .1, .1]))
            values[node, j] = own + (sum(values[c, j] for c in below if levels[c] == levels[below[0]]) if below else 0)
        if below and rng.random() < 0.05:
            values[node, 0] = max(values[node, 0] - k, 0)  # children holding more than the node
    primary = ((values > 0) & (values < k)).any(axis=1)
    hidden, whole = tree.protect(values, primary, k)
    want, want_whole = tree.protect(values, primary, k, one_by_one=True)
    assert (hidden & ~primary).any()  # secondary suppressions were needed
    np.testing.assert_array_equal(hidden, want)
    assert whole == want_whole
    if seed % 2:
        return  # two levels under one parent are two equations, which the count below does not know
    frame = pd.Series(parents, index=codes)
    for j in range(2):
        column = pd.Series(values[:, j], index=codes)
        shown = pd.Series(hidden, index=codes)
        for top in ["", *[c for c, h in zip(codes, hidden) if not h]]:
            small = [v for v in cut_sums(column, shown, frame, top, limit=500) if 0 < v < k]
            assert not small, (top, j, small)


# --- counties: a province audited county by county --------------------------------------------------


def _random_province(rng, k):
    """Random counties (2-digit codes) of random units (levels l0-l3, codes nesting): the codes,
    parents, levels and two counts per unit (small ones often, a remainder here and there), under
    a scheme whose root digits are the county's."""
    from gridgeo.schema import CodeScheme, Level

    scheme = CodeScheme(levels=(Level("l0", 1), Level("l1", 1), Level("l2", 1), Level("l3", 2, False)),
                        root_digits=2, village_level="l1")
    codes, parents, levels, values = [], [], [], []

    def grow(code, parent, depth):
        at = len(codes)
        codes.append(code)
        parents.append(parent)
        levels.append(f"l{depth}")
        values.append(None)
        below = []
        if depth < 3:
            for i in range(int(rng.integers(0 if depth >= 1 else 1, 5 if depth < 2 else 10))):
                digits = 2 if depth == 2 else 1
                below.append(grow(f"{code}{i + 1:0{digits}d}", code, depth + 1))
        own = rng.choice([0, 0, 1, 2, k - 1, k, 3 * k], size=2, p=[.3, .1, .15, .15, .1, .1, .1])
        values[at] = own + (np.sum([values[c] for c in below], axis=0) if below else 0)
        return at

    for county in rng.choice(np.arange(10, 100), size=int(rng.integers(2, 5)), replace=False):
        for town in range(int(rng.integers(1, 4))):
            grow(f"{county}{town + 1}", "", 0)
    return (np.array(codes, dtype=object), np.array(parents, dtype=object), np.array(levels, dtype=object),
            np.array(values, dtype=np.int64), scheme)


@pytest.mark.parametrize("seed", range(8))
def test_a_random_province_is_audited_county_by_county(seed):
    """Each county of a random province is protected exactly as that county alone (its units the
    tree's, the county the whole area), the arrays a depth at once suppress what the node-by-node
    pass does, and, counted here with the counties as units of their own (published unless the
    audit withheld them), no cut below a published unit, county or the province sums to 1..k-1."""
    from gridgeo.disclosure import _Tree

    rng = np.random.default_rng(100 + seed)
    k = int(rng.choice([3, 5, 10]))
    codes, parents, levels, values, scheme = _random_province(rng, k)
    primary = ((values > 0) & (values < k)).any(axis=1)
    tree = _Tree(codes, parents, levels, scheme)
    counties = sorted({c[:2] for c in codes})
    assert tree.counties == counties
    verdict = tree.audit(values, primary, k)
    np.testing.assert_array_equal(verdict, tree.audit(values, primary, k, one_by_one=True))
    n = len(codes)
    for i, county in enumerate(counties):
        rows = np.array([c.startswith(county) for c in codes])
        alone = _Tree(codes[rows], parents[rows], levels[rows], scheme)
        assert alone.counties == []
        hidden, whole = alone.protect(values[rows], primary[rows], k)
        np.testing.assert_array_equal(verdict[:n][rows], hidden, err_msg=county)
        assert verdict[n + i] == whole, county
    # the brute force: the counties as rows, the towns under them
    frame = pd.Series(np.where(parents == "", [c[:2] for c in codes], parents), index=codes)
    frame = pd.concat([frame, pd.Series("", index=counties)])
    shown = pd.Series(np.append(verdict[:n], verdict[n:n + len(counties)]), index=frame.index)
    for j in range(2):
        column = pd.Series(values[:, j], index=codes)
        column = pd.concat([column, column[parents == ""].groupby(lambda c: c[:2]).sum()])
        tops = [c for c in frame.index if not shown[c]] + ([] if verdict[-1] else [""])
        for top in tops:
            small = [v for v in cut_sums(column, shown, frame, top, limit=500) if 0 < v < k]
            assert not small, (top or "the province", j, small)


def test_random_provinces_show_what_the_counties_change():
    """The counties are not a no-op: on some random provinces the rule without them suppresses
    other cells than each county alone does (what made the two stores' answers combine)."""
    from gridgeo.disclosure import _Tree

    differ = 0
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        k = int(rng.choice([3, 5, 10]))
        codes, parents, levels, values, scheme = _random_province(rng, k)
        primary = ((values > 0) & (values < k)).any(axis=1)
        with_counties = _Tree(codes, parents, levels, scheme).protect(values, primary, k)[0]
        without = _Tree(codes, parents, levels).protect(values, primary, k)[0]
        differ += int((with_counties != without).any())
    assert differ > 0


def _public_inputs(s, index=None, scheme=None):
    """The figures with coverage (straight-line circles) and the monthly event indicators of every
    level of a sample, as the service's public tables have them before the minimum count."""
    grids = s.grids if index is None else index
    f = gridgeo.stats.figures(grids, addresses=s.addresses, events=s.events, stations=s.stations, scheme=scheme)
    near = coverage.nearest_station(s.addresses, s.stations, method="straight")
    per = coverage.per_grid(near, grids, stations=s.stations).set_index("code")
    keep = [c for c in per.columns if c.startswith("share_") or c in ("has_station", "farthest_m")]
    return f.join(per[keep]), gridgeo.events.indicators(s.events, grids, period="month")


def _plain(frame):
    return frame.astype(object).where(frame.notna(), None)


def assert_counties_as_alone(figures, indicators, counties, scheme=None):
    """Every county's rows of the province's public figures and indicators are those of the county
    alone (its rows only), suppressed cells included; the rule without counties would differ."""
    from gridgeo.schema import BEIJING_SCHEME  # none of the levels: no counties (the rule before them)

    public = disclosure.public_figures(figures, K, scheme=scheme)
    events = disclosure.public_indicators(indicators, K, scheme=scheme)
    one_area = (disclosure.public_figures(figures, K, scheme=BEIJING_SCHEME),
                disclosure.public_indicators(indicators, K, scheme=BEIJING_SCHEME))
    differed = []
    for county in counties:
        rows = figures.index.astype(str).str.startswith(county)
        alone = disclosure.public_figures(figures[rows], K, scheme=scheme)
        pd.testing.assert_frame_equal(_plain(public[rows]), _plain(alone), obj=f"figures of {county}")
        assert public.attrs["counties"].get(county, alone.attrs["whole"]) == alone.attrs["whole"]
        at = indicators["code"].astype(str).str.startswith(county).to_numpy()
        alone_events = disclosure.public_indicators(indicators[at], K, scheme=scheme)
        pd.testing.assert_frame_equal(_plain(events[at]), _plain(alone_events), obj=f"indicators of {county}")
        assert events.attrs["counties"].get(county, alone_events.attrs["whole"]) == alone_events.attrs["whole"]
        differed.append(not (_plain(one_area[0][rows]).equals(_plain(alone)) and
                             _plain(one_area[1][at]).equals(_plain(alone_events))))
    assert any(differed), "the test has no teeth: the rule without counties gives the same answers"
    return public, events


@pytest.fixture(scope="module")
def small_county_province():
    """Three copies of the town sample, the county 350502 keeping one address and one event in a
    hundred (a county whose data is still coming in): its small figures ask for secondary
    suppression, which the rule without counties took from the other counties."""
    p = gridgeo.sample.province(gridgeo.sample.load(), 3)
    for layer, column in (("addresses", "addr_id"), ("events", "event_id")):
        frame = getattr(p, layer)
        there = frame[column].astype(str).str.contains("350502").to_numpy()
        setattr(p, layer, frame[~there | (np.cumsum(there) % 100 == 0)].reset_index(drop=True))
    return p


def test_a_countys_public_answers_in_a_province_are_its_own(small_county_province):
    p = small_county_province
    figures, indicators = _public_inputs(p)
    counties = [c["code"] for c in p.metadata["counties"]]
    public, events = assert_counties_as_alone(figures, indicators, counties)
    assert sorted(public.attrs["counties"]) == sorted(counties)
    # the province above its counties withholds itself where a cut through them would leave 1..k-1
    assert events.attrs["whole"] and not events.attrs["counties"].get("350582")
    # and its whole area's public indicators say so (public_whole with the audit)
    region = gridgeo.events.region(p.events, p.grids, period="month")
    whole = disclosure.public_whole(region, K, audit=events)
    for label, groups in events.attrs["whole"].items():
        row = whole[whole["period"] == label].iloc[0]
        for group in disclosure.INDICATOR_GROUPS:
            if group.name in groups:
                assert all(pd.isna(row[c]) for c in group.counts if c in whole.columns), (label, group.name)
    assert whole["received"].notna().any()
    # nothing below a published unit, county or the province leaves 1..k-1 (counted here, counties as rows)
    parents = figures["parent"].where(figures["parent"] != "", figures.index.str[:6])
    rows = pd.DataFrame({"parent": "", "households": figures.loc[figures["parent"] == "", "households"]
                         .groupby(lambda c: c[:6]).sum()})
    frame = pd.concat([pd.DataFrame({"parent": parents, "households": figures["households"]}), rows])
    hidden = pd.concat([public["households"].isna(),
                        pd.Series({c: public.attrs["counties"][c]["addresses"] for c in rows.index})])
    tops = [c for c in frame.index if not hidden[c]] + ([] if public.attrs["whole"]["addresses"] else [""])
    for top in tops:
        small = [v for v in cut_sums(frame["households"], hidden, frame["parent"], top) if 0 < v < K]
        assert not small, (top or "the province", small)


def test_the_counties_of_the_prefecture_scheme_are_its_county_units(small_county_province):
    """With :data:`PREFECTURE_SCHEME` the counties (and the prefecture above them) are units of the
    table: each county's rows are those of the county alone, the prefecture withheld, not a county."""
    from gridgeo.schema import PREFECTURE_SCHEME

    p = small_county_province
    towns = p.grids[p.grids["level"] == "town"]
    counties = towns.dissolve(by=towns["code"].str[:6]).reset_index(names="county")
    upper = pd.concat([
        gpd.GeoDataFrame({"code": ["3505"], "name": ["泉州市"], "level": ["prefecture"], "parent": [""]},
                         geometry=[towns.union_all()], crs=towns.crs),
        gpd.GeoDataFrame({"code": counties["county"], "name": counties["county"], "level": "county",
                          "parent": "3505"}, geometry=counties.geometry.to_numpy(), crs=towns.crs)])
    grids = p.grids.copy()
    grids.loc[grids["level"] == "town", "parent"] = grids.loc[grids["level"] == "town", "code"].str[:6]
    grids = pd.concat([upper, grids], ignore_index=True)
    index = gridgeo.AssignIndex(grids, scheme=PREFECTURE_SCHEME)
    figures, indicators = _public_inputs(p, index, PREFECTURE_SCHEME)
    public, events = assert_counties_as_alone(figures, indicators, list(counties["county"]), PREFECTURE_SCHEME)
    assert public.attrs["counties"] == {} and events.attrs["counties"] == {}  # they are rows
    top = events[events["level"] == "prefecture"]
    assert top["suppressed"].any() and not events.loc[events["level"] == "county", "suppressed"].all()


@pytest.mark.slow
def test_a_countys_public_answers_in_a_province_of_cities_are_its_own():
    """The city sample (kept by the benchmarks, made once: two minutes) and a province of two copies of
    it, a quarter of the addresses and events (benchmarks/province_store.py's data): the rule without
    counties showed a town's share_15min in the province that the city hides."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from common import city_sample

    base = city_sample()
    base.addresses = base.addresses.iloc[::4].reset_index(drop=True)
    base.events = base.events.iloc[::4].reset_index(drop=True)
    p = gridgeo.sample.province(base, 2)
    figures, indicators = _public_inputs(p)
    public, _ = assert_counties_as_alone(figures, indicators, [c["code"] for c in p.metadata["counties"]])
    # copy 0 is the city itself: its answers are the city's store's
    city = _public_inputs(base)[0]
    rows = figures.index.str.startswith("350582")
    pd.testing.assert_frame_equal(_plain(public[rows]), _plain(disclosure.public_figures(city, K)))
