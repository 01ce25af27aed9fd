"""gridgeo.plan.suggest_division on every sample village.

References: shapely (a contiguous grid is one Polygon), geopandas joins of the
blocks, gridgeo.validate, and gridgeo.stats.figures (gridgeo.assign of the
addresses) for the households each proposed grid holds.
"""

from __future__ import annotations

import importlib
import doctest

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import gridgeo
from gridgeo import plan

BAND = (300, 500)


@pytest.fixture(scope="module")
def village_blocks(sample):
    return plan.blocks(sample.level("village"), sample.roads, sample.addresses)


@pytest.fixture(scope="module")
def drafts(sample, village_blocks):
    """Published and proposed plan of every village."""
    out = {}
    for code in sample.level("village")["code"]:
        state = plan.start(sample.grids, code, blocks=village_blocks[village_blocks["parent"] == code])
        out[code] = (state, plan.suggest_division(state, band=BAND))
    return out


def test_every_village_is_divided_into_contiguous_grids_of_whole_blocks(drafts, sample):
    proposed = pd.concat([draft.to_grids() for _, draft in drafts.values()], ignore_index=True)
    above = sample.grids[sample.grids["level"].isin(["town", "village"])]
    grids = gpd.GeoDataFrame(pd.concat([above, proposed], ignore_index=True), geometry="geometry", crs=4490)
    report = gridgeo.validate(grids)
    assert report[report["severity"] == "error"].empty
    grid2 = grids[grids["level"] == "grid2"]
    assert (grid2.geom_type == "Polygon").all()        # one piece each: contiguous along edges
    for state, draft in drafts.values():
        blocks = draft.blocks
        inner = gpd.GeoDataFrame(geometry=blocks.geometry.representative_point(), crs=4490)
        holder = gpd.sjoin(inner, draft.units[["code", "geometry"]], predicate="within")
        assert holder.index.is_unique and len(holder) == len(blocks)
        assert (holder["code"] == blocks.loc[holder.index, "grid"]).all()
        for code, geom in zip(draft.units["code"], draft.units.geometry):
            assert shapely.coverage_union_all(blocks.geometry.array[(blocks["grid"] == code).to_numpy()]).equals(geom)


def test_the_reported_balance_is_the_households_the_addresses_give(drafts, sample):
    proposed = pd.concat([draft.to_grids() for _, draft in drafts.values()], ignore_index=True)
    above = sample.grids[sample.grids["level"].isin(["town", "village"])]
    grids = gpd.GeoDataFrame(pd.concat([above, proposed], ignore_index=True), geometry="geometry", crs=4490)
    figures = gridgeo.stats.figures(grids, addresses=sample.addresses, bands={"grid2": BAND})
    grid2 = figures[figures["level"] == "grid2"]
    for code, (state, draft) in drafts.items():
        report = draft.attrs["division"]
        mine = grid2[grid2.index.str.startswith(code)]
        counts = mine["band"].value_counts()
        assert report["grids"].sum() == len(mine) == len(draft.units)
        for band in ("under", "within", "over"):
            assert report[band].sum() == counts.get(band, 0), (code, band)
        assert report["min"].min() == mine["households"].min() and report["max"].max() == mine["households"].max()
        published = plan.impact(state, band=BAND).attrs["summary"]
        # as few grids outside the band as possible: never more than the published plan
        assert report["under"].sum() + report["over"].sum() <= published["under"] + published["over"], code
        assert report["oversize_blocks"].eq("").all()


def test_a_block_over_the_band_is_reported_not_hidden(sample, village_blocks):
    grid1 = sample.level("grid1").iloc[[0]]
    blocks = village_blocks[village_blocks["parent"] == grid1["parent"].iloc[0]].copy()
    big = blocks.index[blocks["households"].argmax()]
    blocks.loc[big, "households"] = 900
    with pytest.warns(UserWarning, match=blocks.loc[big, "block_id"]):
        grids = plan.suggest_division(grid1, blocks, band=BAND)
    report = grids.attrs["division"]
    assert report["oversize_blocks"].iloc[0] == blocks.loc[big, "block_id"]
    holder = grids.attrs["assignment"][blocks.loc[big, "block_id"]]
    assert grids.set_index("code").loc[holder, "households"] > BAND[1]
    assert report["over"].iloc[0] >= 1


def test_a_unit_too_small_for_the_band_is_one_grid_under_it(sample, village_blocks):
    grid1 = sample.level("grid1").iloc[[0]]
    blocks = village_blocks[village_blocks["parent"] == grid1["parent"].iloc[0]]
    total = blocks["households"].sum()
    grids = plan.suggest_division(grid1, blocks, band=(total + 100, total + 500))
    assert len(grids) == 1 and grids.attrs["division"]["under"].iloc[0] == 1
    assert grids.geometry.iloc[0].equals(grid1.geometry.iloc[0])


def test_units_and_blocks_in_give_codes_under_each_unit_and_the_block_table(sample, village_blocks):
    grid1 = sample.level("grid1")
    two = grid1[grid1["parent"] == grid1["parent"].value_counts().index[0]]
    blocks = village_blocks[village_blocks["parent"] == two["parent"].iloc[0]]
    grids = plan.suggest_division(two, blocks, band=BAND, seed=3)
    assert set(grids["parent"]) == set(two["code"])
    assert all(c.startswith(p) and len(c) == 16 for c, p in zip(grids["code"], grids["parent"]))
    assignment = grids.attrs["assignment"]
    for code, geom in zip(grids["code"], grids.geometry):
        ids = assignment.index[assignment == code]
        union = shapely.coverage_union_all(blocks.set_index("block_id").geometry[ids].array)
        assert union.equals(geom)
        assert grids.set_index("code").loc[code, "households"] == blocks.set_index("block_id").loc[ids, "households"].sum()
    again = plan.suggest_division(two, blocks, band=BAND, seed=3)
    assert (again.attrs["assignment"] == assignment).all()


def test_a_tight_band_still_gives_contiguous_grids_and_an_honest_report(drafts):
    state, _ = drafts["350582106002"]
    draft = plan.suggest_division(state, band=(390, 410), seed=1)
    table = plan.impact(draft, band=(390, 410))
    assert table["contiguous"].all()
    report = draft.attrs["division"]
    assert report["within"].sum() == (table["band"] == "within").sum()
    assert report["within"].sum() + report["under"].sum() + report["over"].sum() == len(table)


def test_docstring_examples_run():
    module = importlib.import_module("gridgeo.plan.division")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
