"""A province on Dask: every partitioned path gives the in-memory answer; the province sample.

The province here is two copies of the committed town sample side by side
(:func:`gridgeo.sample.province`): two counties, two towns, so two tasks on a
two-worker LocalCluster, small enough to run in seconds.
"""


import geopandas as gpd
import pandas as pd
import pytest

import gridgeo
import gridgeo.network
import gridgeo.sample
from gridgeo import distribute, events, stats
from gridgeo.schema import check


@pytest.fixture(scope="module")
def province(sample):
    return gridgeo.sample.province(sample, 2)


@pytest.fixture(scope="module")
def client(dask_client):
    return dask_client


# --- the province sample -------------------------------------------------------------


def test_province_codes_are_unique_nested_and_valid(province, sample):
    grids = province.grids
    assert grids["code"].is_unique
    parents = grids[grids["parent"] != ""]
    assert parents["parent"].isin(grids["code"]).all()
    assert all(c.startswith(p) for c, p in zip(parents["code"], parents["parent"]))
    counties = {c[:6] for c in grids["code"]}
    assert counties == {"350582", "350501"}
    for layer, column in (("stations", "station_id"), ("addresses", "addr_id"), ("events", "event_id")):
        assert getattr(province, layer)[column].is_unique
        assert len(getattr(province, layer)) == 2 * len(getattr(sample, layer))
    check(grids, "grids")
    report = gridgeo.validate(grids)
    assert len(report) == len(gridgeo.validate(sample.grids)) * 2
    # the copy is the town moved, not overlapping it
    towns = province.level("town").geometry
    assert not towns.iloc[0].intersects(towns.iloc[1])
    assert towns.iloc[0].area == pytest.approx(towns.iloc[1].area, rel=1e-6)


def test_province_is_deterministic_and_leaves_the_base_alone(province, sample):
    again = gridgeo.sample.province(sample, 2)
    for layer in ("grids", "stations", "addresses", "events", "roads", "precincts"):
        pd.testing.assert_frame_equal(getattr(again, layer).drop(columns="geometry"),
                                      getattr(province, layer).drop(columns="geometry"))
        assert getattr(again, layer).geometry.geom_equals_exact(getattr(province, layer).geometry, 0).all()
    first = province.grids.iloc[:len(sample.grids)]
    pd.testing.assert_frame_equal(first.drop(columns="geometry"), sample.grids.drop(columns="geometry"))
    with pytest.raises(ValueError, match="cities"):
        gridgeo.sample.province(sample, 0)


# --- the partition rule --------------------------------------------------------------


def test_a_countys_roster_in_the_province_has_its_citys_posts(province, sample):
    """Copy 0 of the province is the town: the same posts (heads, workers, part-time, police) on every
    grid, so its workers and households per worker are the town's (the part-time workers went to every
    third grid of the whole province, shifted by the other county's grids before it)."""
    own = sample.roster().groupby(["grid_code", "role"]).size()
    roster = province.roster()
    copy0 = roster[roster["grid_code"].str.startswith(gridgeo.sample.COUNTY_CODE)]
    pd.testing.assert_series_equal(copy0.groupby(["grid_code", "role"]).size(), own)
    people = roster.drop_duplicates(["name", "phone"])
    assert people["name"].is_unique


def test_a_roster_longer_than_its_short_names_ends(sample, monkeypatch):
    """When the names of one or two given characters run out (22,320 of them, fewer than a province
    of two cities' people), new ones get a third: here 2 surnames and 10 given characters make 220
    short names for the town's 1,000 people, and the roster is made all the same, every name once."""
    import signal

    monkeypatch.setattr(gridgeo.sample, "_SURNAMES", "王李")
    monkeypatch.setattr(gridgeo.sample, "_GIVEN", "一二三四五六七八九十")

    def stuck(*_):
        raise AssertionError("the roster's names ran out: the draw never ends")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(60)
    try:
        roster = sample.roster()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    people = roster.drop_duplicates(["name", "phone"])
    assert len(people) > 220 and people["name"].is_unique
    assert (people["name"].str.len() == 4).sum() > 0


def test_split_gives_each_point_to_the_town_assign_gives_it(province):
    parts, unplaced, top = distribute.split(province.grids, {"events": province.events, "stations": None})
    assert top == "town" and [p.code for p in parts] == sorted(province.level("town")["code"])
    expected = gridgeo.assign(province.events, province.grids)["town"].astype(object)
    for part in parts:
        held = part.layers["events"]
        assert (expected.loc[held.index] == part.code).all()
        assert part.layers["stations"] is None
        assert part.grids["code"].str.startswith(part.code).all()
    assert sum(len(p.layers["events"]) for p in parts) + sum(unplaced["events"].values()) == len(province.events)
    assert sum(len(p.grids) for p in parts) == len(province.grids)


# --- every Dask path equals the in-memory one -----------------------------------------


def test_figures_on_dask_equal_in_memory(province, client):
    layers = dict(addresses=province.addresses, events=province.events, stations=province.stations)
    # an event category only one county has: its column must still be there, zeros elsewhere
    ev = province.events.copy()
    ev.loc[ev.index[-3:], "category"] = "flood"
    layers["events"] = ev
    expected = stats.figures(province.grids, **layers)
    result = stats.figures(province.grids, **layers, client=client)
    pd.testing.assert_frame_equal(pd.DataFrame(result.drop(columns="geometry")),
                                  pd.DataFrame(expected.drop(columns="geometry")))
    assert result.geometry.geom_equals_exact(expected.geometry, 0).all()
    assert result.attrs == expected.attrs
    assert int(result.loc[result["level"] == "town", "events_flood"].sum()) == 3


@pytest.mark.parametrize("options", [dict(period="month"), dict(period="quarter", by="category", level=["town", "grid2"]),
                                     dict(period=None, start="2025-03-01", end="2025-09-01", by="status",
                                          category=["safety", "dispute"], as_of="2025-10-01")])
def test_event_indicators_on_dask_equal_in_memory(province, client, options):
    ev = province.events
    expected = events.indicators(ev, province.grids, **options)
    result = events.indicators(ev, province.grids, **options, client=client)
    pd.testing.assert_frame_equal(result, expected)
    assert result.attrs == expected.attrs
    # medians come from the events of each unit, not from averages: the two copies hold the same events
    towns = result[result["level"] == "town"]
    assert towns["median_hours"].notna().any()


def test_event_indicators_on_dask_with_a_town_without_events(province, client):
    # the second county's events moved into the first: one task has none, one has all twice over
    ev = province.events.copy()
    second = ev["event_id"].str.startswith("E350501").to_numpy()
    ev.loc[second, "geometry"] = province.events.geometry[~second].to_numpy()
    ev.loc[ev.index[:5], "reported_at"] = pd.NaT  # undated events are counted aside, here as in memory
    expected = events.indicators(ev, province.grids, period="quarter")
    result = events.indicators(ev, province.grids, period="quarter", client=client)
    pd.testing.assert_frame_equal(result, expected)
    assert result.attrs == expected.attrs and result.attrs["undated"] == 5
    empty = result[result["code"].str.startswith("350501")]
    assert len(empty) and (empty["received"] == 0).all()


def test_a_countys_event_table_in_the_province_is_its_citys_own_and_counts_its_events_only(province, sample,
                                                                                            client):
    """``unit=<county>`` in the province gives the city's own table (the same codes, periods and counts);
    the county's events alone, placed in the province's grids, give it too."""
    options = {"level": ["town", "village", "grid3"], "period": "month"}
    city = events.indicators(sample.events, sample.grids, **options)
    placed = events.place(province.events, province.grids)
    county = events.indicators(placed, unit="350582", **options)
    pd.testing.assert_frame_equal(county, city)
    assert county.attrs == city.attrs
    own = province.events[province.events["event_id"].str.startswith("E350582").to_numpy()]
    pd.testing.assert_frame_equal(events.indicators(own, province.grids, unit="350582", **options), city)
    other = events.indicators(placed, unit="350501", **options)  # the copy: its own codes, the same counts
    assert other["code"].str.startswith("350501").all()
    pd.testing.assert_frame_equal(other.drop(columns=["code", "name", "parent"]),
                                  city.drop(columns=["code", "name", "parent"]))
    # on Dask the same rows
    on_dask = events.indicators(province.events, province.grids, unit="350582", **options, client=client)
    pd.testing.assert_frame_equal(on_dask, county)
    assert on_dask.attrs == county.attrs


def test_event_indicators_on_dask_refuse_placed_events(province, client):
    placed = events.place(province.events, province.grids)
    with pytest.raises(events.EventsError, match="Dask"):
        events.indicators(placed, client=client)


# --- coverage ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def network(province):
    return gridgeo.network.build(province.roads)


def test_nearest_station_on_dask_equals_in_memory(province, network, client, monkeypatch):
    from gridgeo import coverage

    # small tiles, so that the two towns are several tasks and many walks cross a tile's edge
    monkeypatch.setattr(coverage, "TILE_M", 6_000.0)
    addresses = province.addresses.iloc[::11]
    options = dict(limit_m=1_000.0, isolated="unreachable")
    expected = coverage.nearest_station(addresses, province.stations, network, **options)
    result = coverage.nearest_station(addresses, province.stations, province.roads, **options, client=client)
    assert (result["component"] == -1).all()
    pd.testing.assert_frame_equal(pd.DataFrame(result.drop(columns=["component", "geometry"])),
                                  pd.DataFrame(expected.drop(columns=["component", "geometry"])), check_exact=True)
    assert result.attrs == expected.attrs
    # the test means something: walks were found, and some were cut off by the limit
    assert result["station_id"].notna().mean() > 0.5 and (result["status"] == "unreachable").any()


def test_nearest_station_on_dask_widens_a_halo_that_misses_a_road(province, network, client):
    from gridgeo import coverage

    # a few addresses 700 m off every road: their road lies outside the first halo (limit + max_access)
    addresses = province.addresses.iloc[::50].copy()
    moved = addresses.index[:3]
    addresses.loc[moved, "geometry"] = gpd.GeoSeries(addresses.loc[moved].geometry, crs=4490).translate(0.0, -0.0065)
    options = dict(limit_m=300.0, max_access_m=100.0, isolated="unreachable")
    expected = coverage.nearest_station(addresses, province.stations, network, **options)
    result = coverage.nearest_station(addresses, province.stations, province.roads, **options, client=client)
    pd.testing.assert_frame_equal(pd.DataFrame(result.drop(columns=["component", "geometry"])),
                                  pd.DataFrame(expected.drop(columns=["component", "geometry"])), check_exact=True)
    assert (result.loc[moved, "access_m"] > 400).any()  # beyond the first halo (300 + 100 m): it was widened


def test_the_dask_halo_is_stretched_by_the_largest_scale_factor_over_the_data(sample, province):
    """Walks are measured on the ground and tiles cut in the metric CRS: the halo rule's stretch ``k`` is
    at least pyproj's scale factor anywhere in the data (a 100 x 100 lattice) and barely more."""
    import numpy as np
    import pyproj

    from gridgeo import coverage
    from gridgeo.crs import metric_crs

    for data, crs in ((sample.grids, pyproj.CRS.from_epsg(4547)), (province.grids, metric_crs(province.grids))):
        x0, y0, x1, y1 = data.total_bounds
        k = coverage._largest_scale(crs, (x0, y0, x1, y1))
        lon, lat = (a.ravel() for a in np.meshgrid(np.linspace(x0, x1, 100), np.linspace(y0, y1, 100)))
        factors = pyproj.Proj(crs).get_factors(lon, lat)
        largest = max(factors.meridional_scale.max(), factors.parallel_scale.max())
        assert largest <= k <= largest + 2e-6, (crs.name, k, largest)
    assert k > 1  # the province's centred transverse Mercator stretches too (a little)


def test_nearest_station_on_dask_refuses_what_a_tile_cannot_decide(province, client):
    from gridgeo import coverage

    with pytest.raises(ValueError, match="limit_m"):
        coverage.nearest_station(province.addresses, province.stations, province.roads, isolated="unreachable",
                                 client=client)
    with pytest.raises(ValueError, match="resnap"):
        coverage.nearest_station(province.addresses, province.stations, province.roads, limit_m=500.0, client=client)


def test_per_grid_on_dask_equals_in_memory(province, client):
    from gridgeo import coverage

    cov = coverage.nearest_station(province.addresses, province.stations, method="straight")
    expected = coverage.per_grid(cov, province.grids, stations=province.stations)
    result = coverage.per_grid(cov, province.grids, stations=province.stations, client=client)
    pd.testing.assert_frame_equal(pd.DataFrame(result.drop(columns="geometry")),
                                  pd.DataFrame(expected.drop(columns="geometry")), check_exact=True)
    assert result.geometry.geom_equals_exact(expected.geometry, 0).all()
    assert expected["farthest_m"].notna().any()


def test_a_countys_walks_are_its_citys_whatever_metric_crs_the_province_picks(province, sample):
    """Walks are measured on the ellipsoid (gridgeo.network's measuring rule), so a county's walking
    distances in a province are its city's own, to rounding.

    The metric CRS is chosen from all the data (:func:`gridgeo.crs.metric_crs`): the province's is a
    transverse Mercator centred 0.17 deg east of the town's. The town is measured in its own, in the
    province's store, in the two Gauss-Krueger zones it straddles (CM 117E and 120E, 3 deg apart) and in
    the zone of CM 114E, 4.5 deg west, where a planar metre is 1.0025 ground metres (pyproj's scale
    factors, an independent reference, say how far a planar measure would stray: 2-9e-6 in the
    province's CRS, 2.5e-3 in the far zone). Every address walks to the same station with the same status
    and circle, its distance within 1e-6 relative, its access too (or within 10 micrometres: a road
    between two vertices is straight in each CRS, and those straight lines part by micrometres); so every
    count, share and farthest walk per unit agrees."""
    import numpy as np
    import pyproj

    from gridgeo import coverage
    from gridgeo.crs import metric_crs

    own, wide, far = metric_crs(sample.grids), metric_crs(province.grids), pyproj.CRS.from_epsg(4547)
    zones = {"CM 117E": pyproj.CRS.from_epsg(4548), "CM 120E": pyproj.CRS.from_epsg(4549), "CM 114E": far}
    assert own != wide
    x0, y0, x1, y1 = sample.grids.total_bounds
    lon, lat = (a.ravel() for a in np.meshgrid(np.linspace(x0, x1, 30), np.linspace(y0, y1, 30)))

    def scale(crs):
        return pyproj.Proj(crs).get_factors(lon, lat).meridional_scale

    # the test means something: a planar metre differs between the CRSs by more than the tolerance
    wide_ratio, far_ratio = scale(wide) / scale(own), scale(far) / scale(own)
    assert wide_ratio.max() - wide_ratio.min() > 1e-6 and far_ratio.min() > 1 + 2e-3

    alone = coverage.nearest_station(sample.addresses, sample.stations, gridgeo.network.build(sample.roads, metric=own))
    whole = coverage.nearest_station(province.addresses, province.stations,
                                     gridgeo.network.build(province.roads, metric=wide))
    mine = whole.iloc[:len(sample.addresses)]  # copy 0 of the province is the town, row for row
    others = {"province": mine, **{name: coverage.nearest_station(
        sample.addresses, sample.stations, gridgeo.network.build(sample.roads, metric=crs))
        for name, crs in zones.items()}}
    assert alone["distance_m"].notna().mean() > 0.9
    for name, other in others.items():
        for col in ("addr_id", "station_id", "status", "circle"):
            assert other[col].tolist() == alone[col].tolist(), (name, col)
        np.testing.assert_allclose(other["distance_m"].to_numpy(), alone["distance_m"].to_numpy(), rtol=1e-6,
                                   atol=0, err_msg=name)
        np.testing.assert_allclose(other["access_m"].to_numpy(), alone["access_m"].to_numpy(), rtol=1e-6,
                                   atol=1e-5, err_msg=name)

    # per unit: the counts and shares equal, the farthest walks within the same tolerance
    a = coverage.per_grid(alone, sample.grids, stations=sample.stations).set_index("code")
    p = coverage.per_grid(whole, province.grids, stations=province.stations).set_index("code").loc[a.index]
    circles = [c for c in a.columns if c.endswith("min") or c.startswith(("share_", "unreachable"))]
    pd.testing.assert_frame_equal(pd.DataFrame(a[circles]), pd.DataFrame(p[circles]), check_exact=True)
    np.testing.assert_allclose(p["farthest_m"].to_numpy(), a["farthest_m"].to_numpy(), rtol=1e-6, atol=0)
