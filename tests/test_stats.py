"""gridgeo.stats: figures per unit checked against an independent spatial join,
roll-ups that add up, and the balance sheet recomputed by hand."""

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely import Point

import gridgeo
from gridgeo.schema import EVENT_CATEGORIES, EVENT_STATUSES, STATION_KINDS
from gridgeo.stats import BANDS, balance, figures

FULL = ["town", "village", "grid1", "grid2"]


@pytest.fixture(scope="module")
def index(sample):
    return gridgeo.AssignIndex(sample.grids)


@pytest.fixture(scope="module")
def result(sample, index):
    return figures(index, addresses=sample.addresses, events=sample.events, stations=sample.stations)


def joined(points, units):
    """Each point with the code of the unit it lies in (the sample's points
    are never on a boundary, so 'within' is the whole answer)."""
    pairs = gpd.sjoin(points, units[["code", "geometry"]], predicate="within", how="inner")
    assert not pairs.index.duplicated().any()
    return pairs


@pytest.mark.parametrize("level", ["town", "village", "grid1", "grid2", "grid3"])
def test_address_sums_match_a_spatial_join(sample, result, level):
    units = sample.level(level)
    pairs = joined(sample.addresses, units)
    expected = pairs.groupby("code")[["households", "population", "units"]].sum()
    expected["addresses"] = pairs.groupby("code").size()
    expected = expected.reindex(units["code"]).fillna(0).astype(np.int64)
    got = result.loc[units["code"], ["addresses", "households", "population", "units"]]
    pd.testing.assert_frame_equal(got, expected[got.columns], check_names=False)


def test_events_by_status_and_category_and_stations_by_kind(sample, result):
    grid2 = sample.level("grid2")
    events = joined(sample.events, grid2)
    for column, known in (("status", EVENT_STATUSES), ("category", EVENT_CATEGORIES)):
        table = pd.crosstab(events["code"], events[column]).reindex(index=grid2["code"], columns=list(known))
        for value in known:
            np.testing.assert_array_equal(result.loc[grid2["code"], f"events_{value}"],
                                          table[value].fillna(0).astype(int))
    stations = joined(sample.stations, sample.level("village"))
    table = pd.crosstab(stations["code"], stations["kind"]).reindex(
        index=sample.level("village")["code"], columns=list(STATION_KINDS)).fillna(0)
    for kind in STATION_KINDS:
        np.testing.assert_array_equal(result.loc[table.index, f"stations_{kind}"], table[kind])
    assert int(result.loc[result["level"] == "town", "stations"].iloc[0]) == len(sample.stations)


def test_every_parent_is_the_sum_of_its_children(result):
    counts = [c for c in result.columns if c.startswith(("addresses", "households", "population", "units",
                                                         "events", "stations", "workers"))
              and not c.endswith(("per_1000", "per_worker"))]
    assert len(counts) > 20
    for parent_level, child_level in zip(FULL, FULL[1:]):
        children = result[result["level"] == child_level]
        sums = children.groupby("parent")[counts].sum()
        parents = result.loc[result["level"] == parent_level, counts]
        pd.testing.assert_frame_equal(sums.reindex(parents.index).fillna(0).astype(np.int64), parents,
                                      check_names=False)
    # a partial level counts only what is inside its plots
    plots = result[result["level"] == "grid3"]
    assert (plots.groupby("parent")["addresses"].sum() <= result.loc[plots["parent"].unique(), "addresses"]).all()


def test_rates_and_bands(sample, result):
    grid2 = sample.level("grid2").set_index("code")
    rows = result.loc[grid2.index]
    np.testing.assert_allclose(rows["households_per_worker"], rows["households"] / grid2["workers"].astype(float))
    np.testing.assert_allclose(rows["events_per_1000"], rows["events"] / rows["population"] * 1000)
    households = rows["households"].to_numpy()
    expected = np.where(households < 300, "under", np.where(households > 500, "over", "within"))
    np.testing.assert_array_equal(rows["band"].astype(str), expected)
    assert set(expected) == set(BANDS)
    assert result.loc[result["level"] != "grid2", "band"].isna().all()
    assert int(result.loc[result["level"] == "town", "workers"].iloc[0]) == int(grid2["workers"].sum())


def test_no_address_level_data_in_the_figures(sample, result):
    assert len(result) == len(sample.grids)
    assert result.index.name == "code" and result.index.is_unique
    assert not {"addr_id", "address", "event_id", "station_id"} & set(result.columns)
    assert result.attrs["unplaced"] == {layer: {"outside": 0, "invalid": 0}
                                        for layer in ("addresses", "events", "stations")}


def test_balance_recomputed_by_hand(sample, result):
    sheet = balance(result)
    assert list(sheet.index) == ["town", "village", "grid1", "grid2", "grid3"]
    pairs = joined(sample.addresses, sample.level("grid2"))
    households = pairs.groupby("code")["households"].sum().reindex(sample.level("grid2")["code"]).fillna(0)
    row = sheet.loc["grid2"]
    assert row["count"] == len(households)
    assert row["min"] == households.min() and row["max"] == households.max()
    assert row["median"] == households.median()
    assert row["cv"] == pytest.approx(households.std(ddof=0) / households.mean())
    assert (row["band_low"], row["band_high"]) == (300, 500)
    assert row["under"] == (households < 300).sum() and row["over"] == (households > 500).sum()
    assert row["within"] == ((households >= 300) & (households <= 500)).sum()
    per_worker = households.to_numpy() / sample.level("grid2")["workers"].to_numpy(dtype=float)
    assert row["households_per_worker_median"] == pytest.approx(np.median(per_worker))
    assert np.isnan(sheet.loc["village", "band_low"])


def test_balance_within_each_village_and_of_other_figures(result):
    sheet = balance(result, within="village")
    grid2 = result[result["level"] == "grid2"]
    by_village = grid2.groupby(grid2.index.str[:12])["households"]
    pd.testing.assert_series_equal(sheet.loc["grid2", "max"], by_village.max().astype(float),
                                   check_names=False, check_index=False)
    assert sheet.loc["grid2", "count"].sum() == len(grid2)
    assert "town" not in sheet.index.get_level_values("level")
    events = balance(result, of="events")
    assert "band_low" not in events.columns and events.loc["grid2", "total"] == result.loc[
        result["level"] == "town", "events"].iloc[0]
    custom = balance(result, bands={"grid1": (1000, 2000)})
    assert custom.loc["grid1", "band_high"] == 2000 and np.isnan(custom.loc["grid2", "band_low"])


def test_custom_bands_and_mistakes(sample, index):
    f = figures(index, addresses=sample.addresses, bands={"grid1": (1000, 2000)})
    grid1 = f[f["level"] == "grid1"]
    np.testing.assert_array_equal(grid1["band"] == "within",
                                  (grid1["households"] >= 1000) & (grid1["households"] <= 2000))
    assert f.loc[f["level"] == "grid2", "band"].isna().all()
    with pytest.raises(KeyError, match="grid_2"):
        figures(index, addresses=sample.addresses, bands={"grid_2": (300, 500)})
    with pytest.raises(KeyError, match="events"):
        balance(f, of="events")


def test_a_gap_in_the_plan_is_counted_and_named(sample, grids_copy):
    gap = grids_copy.index[grids_copy["level"] == "grid2"][0]
    lost, parent = grids_copy.loc[gap, "code"], grids_copy.loc[gap, "parent"]
    grids = grids_copy.drop(gap)
    far = gpd.GeoDataFrame({"addr_id": ["x"], "address": ["远"], "households": [4]},
                           geometry=[Point(119.5, 25.5)], crs=4490)
    addresses = pd.concat([sample.addresses, far], ignore_index=True)
    with pytest.warns(UserWarning, match=parent):
        f = figures(grids, addresses=addresses)
    children = f.loc[(f["level"] == "grid2") & (f["parent"] == parent), "households"].sum()
    in_gap = joined(sample.addresses, sample.level("grid2").query("code == @lost"))["households"].sum()
    assert f.loc[parent, "households"] == children + in_gap and in_gap > 0
    assert f.loc[f["level"] == "town", "households"].iloc[0] == sample.addresses["households"].sum()
    assert f.attrs["unplaced"]["addresses"] == {"outside": 1, "invalid": 0}


def test_figures_without_a_layer_have_no_columns_for_it(sample, index):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = figures(index, events=sample.events)
    assert "events_open" in f.columns and "households" not in f.columns and "band" not in f.columns
    assert isinstance(f, gpd.GeoDataFrame) and f.crs.to_epsg() == 4490


def test_examples_in_the_docstrings_run():
    import doctest

    import gridgeo.stats

    outcome = doctest.testmod(gridgeo.stats)
    assert outcome.attempted > 0 and outcome.failed == 0


def test_layers_failing_the_schema_are_refused(sample, index):
    broken = sample.addresses.drop(columns="addr_id")
    with pytest.raises(gridgeo.schema.SchemaError, match="addresses is not a valid addresses layer"):
        figures(index, addresses=broken)
    negative = sample.addresses.copy()
    negative.loc[negative.index[2], "households"] = -3
    with pytest.raises(gridgeo.schema.SchemaError, match="households must be a non-negative number"):
        figures(index, addresses=negative)


# --- staffing from the roster (gridgeo.roster) ------------------------------------------------------


def test_workers_come_from_the_roster_counted_by_code_prefix(sample, index):
    """With a roster, every unit's ``workers`` are the full-time and part-time grid workers listed on
    it or below it, counted here by code prefix (a code's prefix is its parent's), not through the
    parent column the library walks; the head and the police deputy are not workers."""
    roster = sample.roster()
    # a row on a code the grids lack counts nowhere, and is counted aside
    stray = pd.DataFrame({"grid_code": ["350582999999999"], "role": ["专职网格员"], "name": ["无名"], "phone": [""]})
    got = figures(index, addresses=sample.addresses, roster=pd.concat([roster, stray], ignore_index=True))
    workers = roster[roster["role"].isin(["专职网格员", "兼职网格员"])]["grid_code"].to_numpy(dtype=str)
    expected = pd.Series({code: int(np.char.startswith(workers, code).sum()) for code in got.index})
    assert got["workers"].to_dict() == expected.to_dict()
    assert expected.max() > 0 and (got["workers"] != sample.grids.set_index("code")["workers"].reindex(
        got.index).fillna(0)).any()  # not the bare count the grids carry
    per_worker = got["households"] / expected.where(expected > 0)
    pd.testing.assert_series_equal(got["households_per_worker"], per_worker, check_names=False)
    assert got.attrs["unplaced"]["roster"] == {"unknown": 1}
    # roster.staffing says the same per unit, with the heads and police apart
    staffed = gridgeo.roster.staffing(roster, got)
    heads = roster[roster["role"] == "网格长"]["grid_code"].to_numpy(dtype=str)
    assert staffed["heads"].astype(int).to_dict() == {c: int(np.char.startswith(heads, c).sum()) for c in got.index}
    assert (staffed["workers"] == got["workers"]).all()
