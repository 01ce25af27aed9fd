"""Station siting against brute force: every combination of candidates tried,
with walking distances from networkx on a graph built independently."""

from itertools import combinations

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
from pandas import testing as pd_testing
import shapely
from shapely import Point

from gridgeo import network as gn
from gridgeo import siting as gs
from test_network import reference_graph, roads_reaching

BOX = shapely.box(118.425, 24.795, 118.447, 24.812)  # a corner of 内坑镇 with households left out
RADIUS = 500.0


@pytest.fixture(scope="session")
def town_network(sample):
    return gn.build(sample.roads)


@pytest.fixture(scope="session")
def small(sample, town_network):
    """A small instance: the addresses in BOX, every station, ten junctions as candidates,
    and the walking distance of every address to every station and candidate by networkx."""
    addresses = sample.addresses[sample.addresses.within(BOX)]
    junctions = gs.candidate_sites(town_network, within=BOX)
    candidates = junctions.iloc[np.linspace(0, len(junctions) - 1, 10).round().astype(int)].reset_index(drop=True)
    # addresses by a road piece without a station are measured from the nearest piece with one
    roads = roads_reaching(sample.roads, sample.stations)
    _, gap = shapely.STRtree(roads.geometry.array).query_nearest(candidates.geometry.array, return_distance=True)
    assert gap.max() < 1e-9  # every candidate stands on those pieces
    graph, keys = reference_graph(roads, town_network.crs, {"a": addresses, "s": sample.stations, "c": candidates})
    existing = nx.multi_source_dijkstra_path_length(graph, set(keys["s"]), weight="length")
    e = np.array([existing.get(k, np.inf) for k in keys["a"]])
    c = np.full((len(addresses), len(candidates)), np.inf)
    for j, key in enumerate(keys["c"]):
        reach = nx.single_source_dijkstra_path_length(graph, key, weight="length")
        c[:, j] = [reach.get(k, np.inf) for k in keys["a"]]
    hh = addresses["households"].to_numpy(dtype=float)
    return addresses, sample.stations, candidates, e, c, hh


def covered(e, c, hh, chosen, radius=RADIUS):
    best = np.minimum(e, c[:, list(chosen)].min(axis=1)) if chosen else e
    return hh[best <= radius].sum()


def test_maximal_coverage_matches_brute_force(small, town_network):
    addresses, stations, candidates, e, c, hh = small
    for k in (1, 2, 3):
        best = max(covered(e, c, hh, s) for s in combinations(range(len(candidates)), k))
        got = gs.maximal_coverage(addresses, stations, town_network, k=k, radius_m=RADIUS, candidates=candidates)
        chosen = [int(np.flatnonzero(candidates["site_id"] == s)[0]) for s in got.sites["site_id"]]
        assert len(chosen) == k and got.feasible
        assert covered(e, c, hh, chosen) == best
        assert got.figures.loc["after", "households_covered"] == best
        assert got.figures.loc["change", "households_covered"] == got.sites["households_new"].sum()
        assert best > covered(e, c, hh, ())


def test_set_covering_matches_brute_force(small, town_network):
    addresses, stations, candidates, e, c, hh = small
    total = hh.sum()
    for share in (0.9, 0.95, 1.0):
        got = gs.set_covering(addresses, stations, town_network, radius_m=RADIUS, share=share,
                              candidates=candidates)
        coverable = covered(e, c, hh, range(len(candidates)))
        target = min(share * total, coverable)
        fewest = next(k for k in range(len(candidates) + 1)
                      if any(covered(e, c, hh, s) >= target - 1e-9
                             for s in combinations(range(len(candidates)), k)))
        chosen = [int(np.flatnonzero(candidates["site_id"] == s)[0]) for s in got.sites["site_id"]]
        assert len(chosen) == fewest
        assert covered(e, c, hh, chosen) >= target - 1e-9
        assert got.feasible == (coverable >= share * total - 1e-9)


def test_set_covering_without_a_solution_gives_the_best_partial_answer(small, town_network):
    addresses, stations, candidates, e, c, hh = small
    got = gs.set_covering(addresses, stations, town_network, radius_m=RADIUS, candidates=candidates)
    left = hh[np.minimum(e, c.min(axis=1)) > RADIUS].sum()
    assert left > 0  # ten junctions cannot reach everyone in the corner
    assert not got.feasible
    assert f"{left:g} households are beyond {RADIUS:g} m" in got.message
    assert got.figures.loc["after", "households_covered"] == covered(e, c, hh, range(len(candidates)))


def test_p_median_matches_brute_force(small, town_network):
    addresses, stations, candidates, e, c, hh = small
    reached = np.isfinite(e)
    e_cost = np.where(reached, e, e[reached].max())
    c_cost = np.where(c <= RADIUS, c, np.inf)

    def total(chosen):
        return (hh * np.minimum(e_cost, c_cost[:, list(chosen)].min(axis=1))).sum()

    for k in (1, 2, 3):
        best = min(total(s) for s in combinations(range(len(candidates)), k))
        got = gs.p_median(addresses, stations, town_network, k=k, radius_m=RADIUS, candidates=candidates,
                          aggregate=False, max_candidates=len(candidates))
        chosen = [int(np.flatnonzero(candidates["site_id"] == s)[0]) for s in got.sites["site_id"]]
        assert len(chosen) == k
        assert total(chosen) == pytest.approx(best, rel=1e-9)
        assert got.details["objective"] == pytest.approx(best, rel=1e-6)


def test_sites_proposed_on_the_town_are_sensible(sample, town_network):
    got = gs.maximal_coverage(sample.addresses, sample.stations, town_network, k=3)
    before, after = got.figures.loc["before"], got.figures.loc["after"]

    assert len(got.sites) == 3 and got.sites.crs.to_epsg() == 4490
    assert (got.sites["households_new"] > 0).all()
    assert after["households_covered"] - before["households_covered"] == got.sites["households_new"].sum()
    assert after["mean_distance_m"] < before["mean_distance_m"]
    # every household newly covered was beyond the radius and now walks to a new site within it
    newly = got.newly_covered
    assert (newly["distance_before_m"].fillna(np.inf) > 1000).all() and (newly["distance_m"] <= 1000).all()
    assert set(newly["site_id"]) <= set(got.sites["site_id"])
    # a new site is no use next to an existing station
    metric = town_network.crs
    _, gaps = shapely.STRtree(sample.stations.to_crs(metric).geometry.array).query_nearest(
        got.sites.to_crs(metric).geometry.array, return_distance=True)
    assert (gaps > 300).all()


def test_candidates_out_of_reach_say_so(sample, town_network):
    at_sea = gpd.GeoDataFrame({"site_id": ["海1", "海2"]},
                              geometry=[Point(118.60, 24.60), Point(118.61, 24.60)], crs=4490)
    got = gs.maximal_coverage(sample.addresses, sample.stations, town_network, k=2, candidates=at_sea,
                              radius_m=300)
    assert not got.feasible and len(got.sites) == 0
    assert "no candidate is within 300 m" in got.message
    assert got.figures.loc["change", "households_covered"] == 0


def test_more_sites_asked_than_useful_candidates(small, town_network):
    addresses, stations, candidates, e, c, hh = small
    got = gs.maximal_coverage(addresses, stations, town_network, k=12, radius_m=RADIUS, candidates=candidates)
    assert not got.feasible and "useful candidate" in got.message
    assert got.figures.loc["after", "households_covered"] == covered(e, c, hh, range(len(candidates)))


def test_duplicate_site_ids_are_refused(sample, town_network):
    twice = gpd.GeoDataFrame({"site_id": ["A", "A"]}, geometry=[Point(118.43, 24.80)] * 2, crs=4490)
    with pytest.raises(ValueError, match="site_id 'A' is used more than once"):
        gs.maximal_coverage(sample.addresses.iloc[:10], sample.stations, town_network, k=1, candidates=twice)


def test_cli_writes_the_chosen_sites(tmp_path, sample, town_network):
    from typer.testing import CliRunner

    from gridgeo.cli import app

    out, table = tmp_path / "sites.geojson", tmp_path / "grids.csv"
    result = CliRunner().invoke(app, ["site", "--model", "mclp", "--k", "2", "--out", str(out), "--per-grid",
                                      str(table), "--level", "village"])
    assert result.exit_code == 0, result.output
    written = gpd.read_file(out)
    direct = gs.maximal_coverage(sample.addresses, sample.stations, town_network, k=2, units=sample.grids,
                                 level="village")
    assert written["site_id"].tolist() == direct.sites["site_id"].tolist()
    assert written["households_new"].tolist() == direct.sites["households_new"].tolist()
    import pandas as pd

    grids = pd.read_csv(table, dtype={"code": str, "parent": str}, encoding="utf-8-sig")
    assert grids["code"].tolist() == direct.per_unit["code"].tolist()
    assert grids["households_gained"].tolist() == direct.per_unit["households_gained"].tolist()
    assert "households gained per village" in result.output


def test_cli_exits_non_zero_when_the_request_cannot_be_met(tmp_path, town_network):
    from typer.testing import CliRunner

    from gridgeo.cli import app

    few = gs.candidate_sites(town_network, within=BOX).iloc[:3]
    few.to_file(tmp_path / "few.geojson")
    result = CliRunner().invoke(app, ["site", "--model", "lscp", "--candidates", str(tmp_path / "few.geojson")])
    assert result.exit_code == 1
    assert "infeasible" in result.output and "best partial answer" in result.output


# ----------------------------------------------------------------------------
# Figures per unit, and any sites evaluated (issue 20, item 14)
# ----------------------------------------------------------------------------


def reference_per_unit(addresses, grids, level, before_m, after_m, radius):
    """Households and addresses within `radius` per unit, by an exact covers-join and given distances."""
    from test_assignment import covers_join

    codes = covers_join(addresses, grids)[level].to_numpy(dtype=object)
    hh = addresses["households"].to_numpy(dtype=float)
    rows = {}
    for code in grids.loc[grids["level"] == level, "code"]:
        mine = codes == code
        rows[code] = {"addresses": int(mine.sum()), "households": hh[mine].sum(),
                      "households_before": hh[mine & (before_m <= radius)].sum(),
                      "households_after": hh[mine & (after_m <= radius)].sum(),
                      "addresses_before": int((mine & (before_m <= radius)).sum()),
                      "addresses_after": int((mine & (after_m <= radius)).sum())}
    return rows


def assert_per_unit(table, expected):
    assert sorted(table["code"]) == sorted(expected)
    for row in table.itertuples():
        want = expected[row.code]
        assert row.addresses == want["addresses"] and row.households == want["households"]
        assert row.households_before == want["households_before"], row.code
        assert row.households_after == want["households_after"], row.code
        assert row.addresses_before == want["addresses_before"] and row.addresses_after == want["addresses_after"]
        assert row.households_gained == want["households_after"] - want["households_before"]
        if want["households"]:
            assert row.share_after == pytest.approx(want["households_after"] / want["households"])


def test_maximal_coverage_per_unit_matches_networkx_and_a_covers_join(small, town_network, sample):
    addresses, stations, candidates, e, c, hh = small
    k = 2
    best = max(covered(e, c, hh, s) for s in combinations(range(len(candidates)), k))
    got = gs.maximal_coverage(addresses, stations, town_network, k=k, radius_m=RADIUS, candidates=candidates,
                              units=sample.grids, level="grid2")
    chosen = [int(np.flatnonzero(candidates["site_id"] == s)[0]) for s in got.sites["site_id"]]
    assert covered(e, c, hh, chosen) == best
    after = np.minimum(e, c[:, chosen].min(axis=1))
    expected = reference_per_unit(addresses, sample.grids, "grid2", e, after, RADIUS)
    assert_per_unit(got.per_unit, expected)
    gained = got.per_unit["households_gained"]
    assert gained.sum() == best - covered(e, c, hh, ()) > 0
    assert (gained > 0).sum() >= 1 and (gained >= 0).all()
    # the units that hold none of these addresses are listed, with nothing in them
    assert (got.per_unit["addresses"] == 0).sum() == sum(v["addresses"] == 0 for v in expected.values())


def test_any_sites_are_evaluated_as_networkx_walks_them(small, town_network, sample):
    """Three sites picked by hand (not by a model), at the village level: no solver involved."""
    addresses, stations, candidates, e, c, hh = small
    picked = [1, 4, 8]
    got = gs.evaluate(addresses, stations, town_network, candidates.iloc[picked], radius_m=RADIUS,
                      units=sample.grids, level="village")
    after = np.minimum(e, c[:, picked].min(axis=1))
    assert_per_unit(got.per_unit, reference_per_unit(addresses, sample.grids, "village", e, after, RADIUS))
    assert got.model == "evaluate" and got.feasible
    assert got.sites["site_id"].tolist() == candidates["site_id"].iloc[picked].tolist()
    assert got.figures.loc["after", "households_covered"] == hh[after <= RADIUS].sum()
    assert got.figures.loc["after", "addresses_covered"] == (after <= RADIUS).sum()
    assert got.figures.loc["before", "households_covered"] == hh[e <= RADIUS].sum()


def test_a_moved_site_is_judged_as_a_chosen_one(small, town_network, sample):
    """evaluate() of a model's own sites gives the model's answer; moving one changes it as networkx says."""
    addresses, stations, candidates, e, c, hh = small
    got = gs.maximal_coverage(addresses, stations, town_network, k=2, radius_m=RADIUS, candidates=candidates,
                              units=sample.grids)
    again = gs.evaluate(addresses, stations, town_network, got.sites, radius_m=RADIUS, units=sample.grids)
    pd_testing.assert_frame_equal(again.figures, got.figures)
    pd_testing.assert_frame_equal(again.per_unit.drop(columns="geometry"), got.per_unit.drop(columns="geometry"))
    assert again.sites["households_new"].tolist() == got.sites["households_new"].tolist()
    chosen = [int(np.flatnonzero(candidates["site_id"] == s)[0]) for s in got.sites["site_id"]]
    moved = [chosen[0], next(j for j in range(len(candidates)) if j not in chosen)]
    sites = candidates.iloc[moved].assign(site_id=got.sites["site_id"].tolist())
    third = gs.evaluate(addresses, stations, town_network, sites, radius_m=RADIUS, units=sample.grids)
    after = np.minimum(e, c[:, moved].min(axis=1))
    assert_per_unit(third.per_unit, reference_per_unit(addresses, sample.grids, "grid2", e, after, RADIUS))
    assert third.figures.loc["after", "households_covered"] == covered(e, c, hh, moved) < covered(e, c, hh, chosen)


def test_per_unit_rows_add_up_to_the_town(sample, town_network):
    sites = gs.candidate_sites(town_network).iloc[[10, 200, 400]]
    got = gs.evaluate(sample.addresses, sample.stations, town_network, sites, units=sample.grids, level="grid2")
    table, figures = got.per_unit, got.figures
    assert len(table) == (sample.grids["level"] == "grid2").sum() and table.attrs["outside"] == 0
    for label in ("before", "after"):
        assert table[f"households_{label}"].sum() == figures.loc[label, "households_covered"]
        assert table[f"addresses_{label}"].sum() == figures.loc[label, "addresses_covered"]
    assert table["households_gained"].sum() == got.sites["households_new"].sum()
    totals = got.totals
    assert totals["households"] == sample.addresses["households"].sum() == table["households"].sum()
    assert totals["households_gained"] == table["households_gained"].sum() > 0
    assert totals["share_after"] == pytest.approx(figures.loc["after", "share_covered"])
    assert totals["addresses_before"] == table["addresses_before"].sum()
    assert table.crs.to_epsg() == 4490 and table.geometry.notna().all()


def test_evaluate_with_no_sites_changes_nothing(small, town_network, sample):
    addresses, stations, candidates, e, _, hh = small
    got = gs.evaluate(addresses, stations, town_network, candidates.iloc[:0], radius_m=RADIUS, units=sample.grids)
    assert len(got.sites) == 0 and (got.per_unit["households_gained"] == 0).all()
    assert got.figures.loc["after", "households_covered"] == hh[e <= RADIUS].sum()


def test_a_scope_is_a_unit_or_a_box(sample):
    from test_assignment import covers_join

    reference = covers_join(sample.addresses, sample.grids)
    village = "350582106216"
    there = gs.scope(sample.addresses, sample.grids, unit=village, level="grid2")
    assert sorted(there.addresses.index) == sorted(reference.index[reference["village"] == village])
    want = sample.grids[(sample.grids["level"] == "grid2") & (sample.grids["parent"].str[:12] == village)]
    assert sorted(there.units["code"]) == sorted(want["code"]) and len(want) > 0
    assert there.area.equals(sample.grids.loc[sample.grids["code"] == village].geometry.iloc[0])
    boxed = gs.scope(sample.addresses, sample.grids, bbox=BOX.bounds, level="grid2")
    assert sorted(boxed.addresses.index) == sorted(sample.addresses.index[sample.addresses.covered_by(BOX)])
    assert set(boxed.assignment.index) == set(boxed.addresses.index)
    assert set(reference.loc[boxed.addresses.index, "grid2"].dropna()) <= set(boxed.units["code"])


@pytest.mark.parametrize("kwargs, error, words", [
    ({}, ValueError, "one of them"),
    ({"unit": "350582106216", "bbox": BOX.bounds}, ValueError, "one of them"),
    ({"unit": "999"}, KeyError, "no unit has the code '999'"),
    ({"bbox": (118.5, 24.8, 118.4, 24.9)}, ValueError, "west < east"),
    ({"unit": "350582106216", "level": "town"}, ValueError, "one below it"),
    ({"unit": "350582106216", "level": "grid9"}, ValueError, "no level 'grid9'"),
])
def test_a_scope_that_cannot_be_is_refused(sample, kwargs, error, words):
    with pytest.raises(error, match=words):
        gs.scope(sample.addresses, sample.grids, **kwargs)


@pytest.mark.parametrize("radius", [200.0, 400.0, 2000 / 3, 1010.0])
def test_any_radius_is_measured(small, town_network, radius):
    """Radii between and beyond the standard's circles (10 minutes' walk at 4 km/h is 667 m)."""
    addresses, stations, candidates, e, c, hh = small
    got = gs.evaluate(addresses, stations, town_network, candidates.iloc[[2, 6]], radius_m=radius)
    assert got.figures.loc["after", "households_covered"] == covered(e, c, hh, [2, 6], radius=radius)
    assert got.totals["households_before"] == covered(e, c, hh, (), radius=radius)


def test_evaluate_on_the_whole_town_matches_networkx_and_a_covers_join(sample, town_network):
    """Every address of 内坑镇, three sites at junctions far from any station, figures per grid2."""
    metric = town_network.crs
    junctions = gs.candidate_sites(town_network)
    roads = roads_reaching(sample.roads, sample.stations)
    _, on_road = shapely.STRtree(roads.geometry.array).query_nearest(junctions.geometry.array, return_distance=True,
                                                                     all_matches=False)
    _, to_station = shapely.STRtree(sample.stations.to_crs(metric).geometry.array).query_nearest(
        junctions.to_crs(metric).geometry.array, return_distance=True, all_matches=False)
    far = junctions[(on_road < 1e-9) & (to_station > 1200)]
    sites = far.iloc[np.linspace(0, len(far) - 1, 3).round().astype(int)]
    got = gs.evaluate(sample.addresses, sample.stations, town_network, sites, units=sample.grids, level="grid2")

    graph, keys = reference_graph(roads, metric, {"a": sample.addresses, "s": sample.stations, "n": sites})
    before = nx.multi_source_dijkstra_path_length(graph, set(keys["s"]), weight="length")
    after = nx.multi_source_dijkstra_path_length(graph, set(keys["s"]) | set(keys["n"]), weight="length")
    e = np.array([before.get(k, np.inf) for k in keys["a"]])
    a = np.array([after.get(k, np.inf) for k in keys["a"]])
    assert_per_unit(got.per_unit, reference_per_unit(sample.addresses, sample.grids, "grid2", e, a, 1000.0))
    assert got.totals["households_gained"] > 0 and (got.per_unit["households_gained"] > 0).sum() >= 3
