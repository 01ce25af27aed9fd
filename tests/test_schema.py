"""The schema check lists every problem at once; codes nest by prefix."""

import geopandas as gpd
import pytest
import shapely
from shapely import box

from gridgeo import schema
from gridgeo.schema import BEIJING_SCHEME, DEFAULT_SCHEME, SchemaError


def test_sample_passes(grids):
    out = schema.check(grids)
    assert len(out) == len(grids)
    assert out["code"].dtype == "str"


def test_every_problem_is_listed_in_one_error(grids_copy):
    g = grids_copy
    town = g.index[g["level"] == "town"][0]
    g2 = g.index[g["level"] == "grid2"]
    g.loc[g2[0], "code"] = g.loc[g2[1], "code"]                       # duplicate code
    g.loc[g2[2], "parent"] = g.loc[g2[2], "parent"][:-2] + "99"        # parent that does not exist
    g.loc[g2[3], "code"] = "35058210699" + g.loc[g2[3], "code"][11:]   # prefix not the parent's
    g.loc[g2[4], "level"] = "grid1"                                    # level out of order (and width)
    g.loc[g2[5], "geometry"] = shapely.Point(118.5, 24.8)              # not a polygon
    g.loc[g2[6], "geometry"] = shapely.Polygon()                       # empty
    g.loc[town, "level"] = "county"                                    # unknown level
    with pytest.raises(SchemaError) as info:
        schema.check(g.drop(columns="name"), name="grids.geojson")
    problems = info.value.problems
    text = str(info.value)
    assert text.startswith("grids.geojson is not a valid grids layer")
    assert "missing column(s) ['name']" in text
    codes = {p.code for p in problems}
    assert g.loc[g2[1], "code"] in codes
    assert any("duplicate code" in p.message for p in problems)
    assert any("does not exist" in p.message and p.code == g.loc[g2[2], "code"] for p in problems)
    assert any("prefix" in p.message and p.code == g.loc[g2[3], "code"] for p in problems)
    assert any("digits" in p.message and p.code == g.loc[g2[4], "code"] for p in problems)
    assert any("Point" in p.message for p in problems)
    assert any("empty" in p.message for p in problems)
    assert any("unknown level 'county'" in p.message for p in problems)


def test_missing_crs_and_level_order():
    g = gpd.GeoDataFrame(
        {"code": ["350582106", "350582106201", "35058210620101"],
         "name": ["内坑镇", "黎山村", "黎山村一片区"],
         "level": ["town", "village", "grid1"],
         # the grid1 names the town as its parent: a level is skipped
         "parent": ["", "350582106", "350582106"]},
        geometry=[box(0, 0, 1, 1)] * 3)
    with pytest.raises(SchemaError) as info:
        schema.check(g)
    text = str(info.value)
    assert "no CRS" in text
    assert "level out of order" in text and "must be a village" in text


def test_one_level_alone_needs_no_parents(grids):
    grid2 = grids[grids["level"] == "grid2"]
    assert len(schema.check(grid2)) == len(grid2)


def test_numeric_codes_from_excel_are_normalised(grids):
    towns = grids[grids["level"] == "town"].copy()
    towns["code"] = towns["code"].astype(float)
    assert schema.check(towns)["code"].tolist() == ["350582106"]


def test_code_scheme_widths_and_chain():
    s = DEFAULT_SCHEME
    assert [s.width(lv) for lv in s.names] == [9, 12, 14, 16, 19]
    code = "3505821062010305007"
    assert s.level_of(code) == "grid3"
    assert s.chain(code) == ["350582106", "350582106201", "35058210620103", "3505821062010305", code]
    assert s.parent_code(code) == "3505821062010305"
    with pytest.raises(ValueError, match="does not fit"):
        s.make_code("350582106201", "grid1", 100)


def test_beijing_layout_numbers_west_to_east_north_to_south():
    # a 3 x 3 block of unit grids in one community, shuffled
    cells = {(col, row): box(col * 100, -row * 100, col * 100 + 100, -row * 100 + 100)
             for row in range(3) for col in range(3)}
    keys = [(2, 1), (0, 0), (1, 2), (2, 0), (0, 2), (1, 0), (0, 1), (2, 2), (1, 1)]
    codes = schema.number_units([cells[k] for k in keys], "110101001001", "grid", scheme=BEIJING_SCHEME)
    assert all(len(c) == 15 for c in codes)
    by_key = dict(zip(keys, codes))
    expected = [(col, row) for row in range(3) for col in range(3)]
    assert [by_key[k][-3:] for k in expected] == [f"{i:03d}" for i in range(1, 10)]


def test_points_layers(sample):
    assert len(schema.check(sample.stations, "stations")) == len(sample.stations)
    assert len(schema.check(sample.addresses, "addresses")) == len(sample.addresses)
    bad = sample.addresses.head(3).copy()
    bad.loc[bad.index[0], "households"] = -2
    bad.loc[bad.index[1], "addr_id"] = bad.loc[bad.index[2], "addr_id"]
    with pytest.raises(SchemaError) as info:
        schema.check(bad, "addresses", name="addresses.csv")
    assert "households must be a non-negative number" in str(info.value)
    assert "is used by rows" in str(info.value)
