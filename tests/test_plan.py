"""gridgeo.plan: blocks, plan states, impact and the edit operations.

References are independent of the plan module: the sample generator's own
blocks, geopandas spatial joins, gridgeo.assign/stats.figures on the grids an
edit produces, shapely measures of the grid polygons, and gridgeo.validate.
"""

from __future__ import annotations

import doctest
import importlib

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import gridgeo
import gridgeo.sample
from gridgeo import crs, network, plan
from gridgeo.plan import PlanError
from gridgeo.schema import number_units

PARK_VILLAGE = "350582106205"   # 4 level-2 grids, 30 enterprise plots (grid3)
TWO_GRID1 = None                # found from the sample: a village with two level-1 grids


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def net(sample):
    return network.build(sample.roads)


@pytest.fixture(scope="module")
def park(sample, net):
    """The park village opened with everything: addresses, stations, walking coverage."""
    return plan.start(sample.grids, PARK_VILLAGE, roads=sample.roads, addresses=sample.addresses,
                      stations=sample.stations, network=net)


@pytest.fixture(scope="module")
def two_grid1(sample):
    grid1 = sample.level("grid1")
    return grid1["parent"].value_counts().index[0]


def _scope(sample, parent):
    """The published units under a parent, and the parent itself."""
    g = sample.grids
    return g[g["code"].str.startswith(parent)]


def _valid(state, sample):
    """gridgeo.validate of the plan's units with the parent: no error."""
    parent = sample.grids[sample.grids["code"] == state.parent]
    frame = pd.concat([parent, state.to_grids()], ignore_index=True)
    frame = gpd.GeoDataFrame(frame, geometry="geometry", crs=crs.STORAGE_CRS)
    report = gridgeo.validate(frame, levels=sorted(set(frame["level"]) - {parent["level"].iloc[0]}))
    return report[report["severity"] == "error"]


def _households_by_assign(grids, sample, level):
    """Households per unit of a level by gridgeo.stats.figures (gridgeo.assign underneath)."""
    parent = sample.grids[sample.grids["code"] == grids["code"].iloc[0][:12]]
    frame = gpd.GeoDataFrame(pd.concat([parent, grids], ignore_index=True), geometry="geometry", crs=4490)
    figures = gridgeo.stats.figures(frame, addresses=sample.addresses)
    return figures.loc[figures["level"] == level, "households"].astype(int)


# --- blocks -------------------------------------------------------------------------------


def test_blocks_are_exactly_the_sample_generators_blocks(sample):
    """The generator polygonises roads into blocks before rounding to EPSG:4490; blocks()
    cut from the stored villages and roads must give the very same polygons."""
    city = gridgeo.sample._city(7)
    town = gridgeo.sample._town_structure(city, gridgeo.sample.SAMPLE_TOWN, 7)
    generated = gpd.GeoDataFrame(geometry=town.blocks.geometry.array, crs=city.crs)
    expected = gridgeo.sample._to_storage(generated, city.to_storage).geometry.array
    got = plan.blocks(sample.level("village"), sample.roads).geometry.array
    assert len(got) == len(expected) == 1958
    tree = shapely.STRtree(expected)
    ours, theirs = tree.query(shapely.point_on_surface(got), predicate="within")
    assert len(np.unique(ours)) == len(got) and len(np.unique(theirs)) == len(expected)
    assert shapely.equals_exact(shapely.normalize(got[ours]), shapely.normalize(expected[theirs]), 0).all()


def test_blocks_tile_each_village_and_every_grid2_is_a_union_of_whole_blocks(sample):
    villages = sample.level("village")
    b = plan.blocks(villages, sample.roads)
    for code, group in b.groupby("parent"):
        village = villages.loc[villages["code"] == code].geometry.iloc[0]
        assert shapely.coverage_is_valid(group.geometry.array)
        assert shapely.coverage_union_all(group.geometry.array).equals(village), code
    grid2 = sample.level("grid2")
    inner = gpd.GeoDataFrame(geometry=b.geometry.representative_point(), crs=b.crs)
    owner = gpd.sjoin(inner, grid2[["code", "geometry"]], predicate="within")
    assert owner.index.is_unique and len(owner) == len(b)
    for code, rows in owner.groupby("code"):
        union = shapely.coverage_union_all(b.geometry.array[rows.index.to_numpy()])
        assert union.equals(grid2.loc[grid2["code"] == code].geometry.iloc[0]), code


def test_block_sums_are_a_spatial_join_of_the_addresses(sample):
    village = sample.level("village").iloc[[3]]
    b = plan.blocks(village, sample.roads, sample.addresses)
    joined = gpd.sjoin(sample.addresses, b[["block_id", "geometry"]], predicate="intersects")
    joined = joined[~joined.index.duplicated()]
    expected = joined.groupby("block_id")[["households", "population", "units"]].sum()
    got = b.set_index("block_id")[["households", "population", "units"]]
    pd.testing.assert_frame_equal(got.loc[expected.index], expected.astype("int64"), check_names=False)
    assert (got.drop(expected.index) == 0).all().all()
    assert b["addresses"].sum() == len(joined)
    assert list(b.columns) == [c for c in plan.BLOCK_COLUMNS]


def test_blocks_of_a_bare_polygon_in_gcj02(sample):
    village = sample.level("village").iloc[0]
    amap = crs.convert(gpd.GeoSeries([village.geometry], crs=4490), "cgcs2000", "gcj02").iloc[0]
    b = plan.blocks(amap, sample.roads, crs="gcj02")
    assert b["block_id"].iloc[0] == "0001" and (b["parent"] == "").all()
    same = plan.blocks(sample.level("village").iloc[[0]], sample.roads)
    # a GCJ-02 round trip moves vertices by far less than a millimetre; the blocks are the same ones
    assert len(b) == len(same)
    assert np.allclose(b["area_m2"], same["area_m2"], rtol=1e-6)


# --- a plan state and its impact -------------------------------------------------------------


def test_start_paints_every_block_into_its_published_grid(park, sample):
    blocks = park.blocks
    inner = gpd.GeoDataFrame(geometry=blocks.geometry.representative_point(), crs=4490)
    joined = gpd.sjoin(inner, sample.level("grid2")[["code", "geometry"]], predicate="within")
    assert (joined["code"].to_numpy() == blocks.loc[joined.index, "grid"].to_numpy()).all()
    assert len(joined) == len(blocks)
    grids = park.to_grids()
    assert grids.groupby("level").size().to_dict() == {"grid1": 1, "grid2": 4, "grid3": 30}
    published = _scope(sample, PARK_VILLAGE)
    for code, geom in zip(grids["code"], grids.geometry):
        assert geom.equals(published.loc[published["code"] == code].geometry.iloc[0]), code


def test_impact_figures_match_assign_figures_and_shapely_measures(park, sample, net):
    table = plan.impact(park).set_index("code")
    units = park.units.set_index("code")
    by_assign = _households_by_assign(park.units, sample, "grid2")
    assert table["households"].to_dict() == by_assign.to_dict()
    metric = units.to_crs(crs.metric_crs(units))
    pp = 4 * np.pi * metric.area / metric.length ** 2
    assert np.allclose(table["polsby_popper"], pp.loc[table.index], rtol=1e-9)
    assert np.allclose(table["area_m2"], metric.area.loc[table.index], rtol=1e-9)
    assert (table["pieces"] == shapely.get_num_geometries(units.geometry.loc[table.index].array)).all()
    joined = gpd.sjoin(sample.stations, units[["geometry"]].reset_index(), predicate="within")
    assert table["stations"].to_dict() == joined["code"].value_counts().reindex(table.index, fill_value=0).to_dict()
    coverage = gridgeo.coverage.nearest_station(sample.addresses, sample.stations, net)
    per_grid = gridgeo.coverage.per_grid(coverage, sample.grids, levels=["grid2"]).set_index("code")
    assert np.allclose(table["share_15min"], per_grid.loc[table.index, "share_15min"])
    summary = table.attrs["summary"] if table.attrs else plan.impact(park).attrs["summary"]
    assert summary["grids"] == 4 and summary["unassigned_blocks"] == 0
    assert summary["without_station"] == [c for c in table.index if not table.loc[c, "has_station"]]


def test_impact_of_published_grids_as_a_frame(sample):
    table = plan.impact(_scope(sample, PARK_VILLAGE), sample.addresses, parent=PARK_VILLAGE, roads=sample.roads,
                        band=(350, 450))
    by_assign = _households_by_assign(table, sample, "grid2")
    assert table.set_index("code")["households"].to_dict() == by_assign.to_dict()
    expected = np.where(table["households"] < 350, "under", np.where(table["households"] > 450, "over", "within"))
    assert (table["band"].astype(str).to_numpy() == expected).all()


def test_start_refuses_grids_that_cut_blocks(sample, park):
    """Grids that do not follow the given blocks are refused; cut from the roads they work."""
    grids = _scope(sample, PARK_VILLAGE).copy()
    a, b = plan.neighbours(park).iloc[0][["a", "b"]]
    block = park.blocks.set_index("block_id").geometry[plan.border_blocks(park, a, b)[0]]
    half = shapely.box(*block.bounds).intersection(block.buffer(0)).envelope
    half = shapely.box(half.bounds[0], half.bounds[1], (half.bounds[0] + half.bounds[2]) / 2, half.bounds[3])
    piece = block.intersection(half)
    ia, ib = grids.index[grids["code"] == a][0], grids.index[grids["code"] == b][0]
    grids.loc[ia, "geometry"] = grids.loc[ia, "geometry"].difference(piece)
    grids.loc[ib, "geometry"] = grids.loc[ib, "geometry"].union(piece)
    with pytest.raises(PlanError, match="not a union of whole blocks") as err:
        plan.start(grids, PARK_VILLAGE, blocks=park.blocks)
    assert err.value.reason == "blocks_do_not_follow" and err.value.message_zh
    cut = plan.start(grids, PARK_VILLAGE, roads=sample.roads)
    assert len(cut.blocks) > len(park.blocks)


def test_start_names_an_unknown_parent(sample):
    with pytest.raises(PlanError, match="350582106999") as err:
        plan.start(sample.grids, "350582106999", roads=sample.roads)
    assert err.value.reason == "unknown_parent"


# --- edits ------------------------------------------------------------------------------------


def _line_across(geom):
    """A north-south line through the middle of a polygon, beyond its edges."""
    x = geom.centroid.x
    return shapely.LineString([(x, geom.bounds[1] - 0.01), (x, geom.bounds[3] + 0.01)])


def _edits(state):
    """One of each edit on a state."""
    pairs = plan.neighbours(state)
    a, b = pairs.iloc[0]["a"], pairs.iloc[0]["b"]
    units = state.units.set_index("code")
    return {
        "reassign": lambda: plan.reassign(state, plan.border_blocks(state, a, b)[:2], b),
        "add": lambda: plan.add(state, plan.border_blocks(state, a, b)[:1]),
        "merge": lambda: plan.merge(state, [a, b]),
        "split": lambda: plan.split(state, a, _line_across(units.geometry[a])),
        "redraw": lambda: plan.redraw(state, a, units.geometry[a].buffer(0.0015)),
        "renumber": lambda: plan.renumber(plan.add(state, plan.border_blocks(state, a, b)[:1])),
    }


@pytest.mark.parametrize("edit", ["reassign", "add", "merge", "split", "redraw", "renumber"])
def test_every_edit_keeps_the_plan_valid_conserves_households_and_codes(park, sample, edit):
    after = _edits(park)[edit]()
    assert len(_valid(after, sample)) == 0
    assert after.log[-1]["edit"] == edit
    table = plan.impact(after)
    assert table["households"].sum() == plan.impact(park)["households"].sum() == park.blocks["households"].sum()
    assert table.set_index("code")["households"].to_dict() == _households_by_assign(after.units, sample,
                                                                                    "grid2").to_dict()
    grids = after.to_grids()
    assert grids["code"].is_unique
    assert all(c.startswith(p) and c.startswith(PARK_VILLAGE) for c, p in zip(grids["code"], grids["parent"]))
    assert (grids["code"].str.len() == grids["level"].map({"grid1": 14, "grid2": 16, "grid3": 19})).all()
    # the state edited is untouched: states never change
    assert plan.diff(park, plan.start(sample.grids, PARK_VILLAGE, blocks=park.blocks)).empty


def test_split_then_merge_gives_the_original_grid_back(park):
    code = park.units["code"].iloc[1]
    grid = park.units.geometry.iloc[1]
    parts = plan.split(park, code, _line_across(grid))
    new = sorted(set(parts.units["code"]) - set(park.units["code"]))
    assert len(new) == 1
    back = plan.merge(parts, [code, new[0]])
    restored = back.units.set_index("code").geometry[code]
    assert restored.symmetric_difference(grid).area < 1e-12
    assert restored.equals(grid)
    assert (back.assignment == park.assignment).all()


def test_refused_edits_say_why_in_two_languages_and_change_nothing(park):
    before = park.assignment.copy()
    pairs = plan.neighbours(park)
    codes = list(park.units["code"])
    apart = next((a, b) for a in codes for b in codes
                 if a < b and not ((pairs["a"] == a) & (pairs["b"] == b)).any())
    with pytest.raises(PlanError) as err:
        plan.merge(park, list(apart))
    assert err.value.reason == "not_neighbours" and set(err.value.codes) == set(apart)
    assert "相邻" in err.value.message_zh and err.value.to_dict()["message_en"] == str(err.value)
    far = park.blocks.loc[park.blocks["grid"] == apart[0], "block_id"]
    far = [b for b in far if b not in plan.border_blocks(park, apart[0], apart[1])][:1]
    with pytest.raises(PlanError) as err:
        plan.reassign(park, far, apart[1])
    assert err.value.reason == "not_neighbours" and err.value.blocks == far
    everything = park.blocks.loc[park.blocks["grid"] == pairs.iloc[0]["a"], "block_id"].tolist()
    with pytest.raises(PlanError) as err:
        plan.reassign(park, everything, pairs.iloc[0]["b"])
    assert err.value.reason == "empties_unit"
    grid = park.units.geometry.iloc[0]
    stub = shapely.LineString([grid.centroid.coords[0], (grid.centroid.x + 1e-5, grid.centroid.y)])
    with pytest.raises(PlanError) as err:
        plan.split(park, park.units["code"].iloc[0], stub)
    assert err.value.reason == "line_does_not_split"
    with pytest.raises(PlanError) as err:
        plan.reassign(park, ["no-such-block"], codes[0])
    assert err.value.reason == "unknown_blocks"
    with pytest.raises(PlanError) as err:
        plan.split(park, "3505821062059999", stub)
    assert err.value.reason == "unknown_unit"
    assert (park.assignment == before).all() and park.log == ()


def test_redraw_gives_each_released_piece_to_the_neighbour_with_the_longest_edge(park):
    code = park.units["code"].iloc[0]
    grid = park.units.geometry.iloc[0]
    shrunk = grid.buffer(-0.0012)
    after = plan.redraw(park, code, shrunk)
    released = park.assignment[(park.assignment == code) & (after.assignment != code)]
    assert len(released)
    metric = park.blocks.set_index("block_id").to_crs(park.metric_crs).geometry
    units_before = park.units.set_index("code").to_crs(park.metric_crs).geometry
    pieces = shapely.get_parts(shapely.coverage_union_all(metric[released.index].array))
    for piece in pieces:
        inside = [b for b in released.index if metric[b].representative_point().within(piece)]
        shared = {c: piece.boundary.intersection(g.boundary).length for c, g in units_before.items() if c != code}
        best = max(shared, key=shared.get)
        assert set(after.assignment[inside]) == {best}
    kept = park.assignment[park.assignment == code].index
    inside = [b for b in kept if metric[b].intersection(
        gpd.GeoSeries([shrunk], crs=4490).to_crs(park.metric_crs).iloc[0]).area > 0.5 * metric[b].area]
    assert set(after.assignment[inside]) == {code}


def test_moving_a_block_with_enterprise_plots_recodes_them_into_the_new_grid(park, sample):
    children = park.to_grids()
    plots = children[children["level"] == "grid3"]
    inner = gpd.GeoDataFrame(geometry=plots.geometry.representative_point(), crs=4490)
    holder = gpd.sjoin(inner, park.blocks[["block_id", "grid", "geometry"]], predicate="within")
    pairs = plan.neighbours(park)
    for block, grid in zip(holder["block_id"], holder["grid"]):
        for _, pair in pairs[(pairs["a"] == grid) | (pairs["b"] == grid)].iterrows():
            other = pair["b"] if pair["a"] == grid else pair["a"]
            if block in plan.border_blocks(park, grid, other):
                break
        else:
            continue
        break
    else:
        pytest.fail("no block with enterprise plots lies on a grid border")
    after = plan.reassign(park, [block], other)
    moved = holder.index[holder["block_id"] == block]
    new = after.to_grids().set_index("code")
    new_plots = new[new["level"] == "grid3"]
    assert len(new_plots) == len(plots)
    for geom in plots.loc[moved].geometry:
        match = new_plots[new_plots.geometry.apply(lambda g: g.equals(geom))]
        assert len(match) == 1 and match.index[0].startswith(other) and match["parent"].iloc[0] == other
    assert len(_valid(after, sample)) == 0


def test_a_plan_that_may_not_change_level1_refuses_moves_between_them(sample, two_grid1):
    state = plan.start(sample.grids, two_grid1, roads=sample.roads, editable=["grid2"])
    parents = state.units["parent"]
    pairs = plan.neighbours(state)
    across = pairs[pairs["a"].str[:14] != pairs["b"].str[:14]].iloc[0]
    with pytest.raises(PlanError) as err:
        plan.reassign(state, plan.border_blocks(state, across["a"], across["b"])[:1], across["b"])
    assert err.value.reason == "level_not_editable" and "grid1" in str(err.value)
    free = plan.start(sample.grids, two_grid1, roads=sample.roads)
    moved = plan.reassign(free, plan.border_blocks(free, across["a"], across["b"])[:1], across["b"])
    grid1 = moved.to_grids().set_index("code")
    assert len(_valid(moved, sample)) == 0
    assert not grid1.geometry[across["a"][:14]].equals(_scope(sample, across["a"][:14]).geometry.iloc[0])
    assert len(parents.unique()) == 2


def test_a_move_across_a_fence_is_refused_naming_both_level1_grids_by_name(sample, two_grid1):
    state = plan.start(sample.grids, two_grid1, roads=sample.roads, editable=["grid2", "grid3"])
    pairs = plan.neighbours(state)
    across = pairs[pairs["a"].str[:14] != pairs["b"].str[:14]].iloc[0]
    block = plan.border_blocks(state, across["a"], across["b"])[:1]
    with pytest.raises(PlanError) as err:
        plan.reassign(state, block, across["b"])
    names = sample.grids.set_index("code")["name"]
    e = err.value
    assert e.reason == "level_not_editable" and sorted(e.codes) == sorted([across["a"][:14], across["b"][:14]])
    assert e.blocks == block
    for code in e.codes:
        assert names[code] in e.message_zh and names[code] in e.message_en and code in e.message_en
    assert "['grid1']" not in e.message_en and "一级网格" in e.message_zh


def test_neighbouring_units_are_the_units_of_the_level_touching_it(sample):
    villages = sample.level("village")
    for code in villages["code"].iloc[::5]:
        got = plan.neighbouring_units(sample.grids, code)
        own = villages[villages["code"] == code]
        # the reference: geopandas' spatial join of the villages with the one
        joined = gpd.sjoin(villages, own[["geometry"]], predicate="intersects")
        assert list(got["code"]) == sorted(set(joined["code"]) - {code}), code
        assert set(got["level"]) <= {"village"}
    with pytest.raises(PlanError):
        plan.neighbouring_units(sample.grids, "350582106999")


def test_fences_give_each_block_the_level1_grid_holding_it(sample, two_grid1):
    state = plan.start(sample.grids, two_grid1, roads=sample.roads, editable=["grid2", "grid3"])
    of, units = plan.fences(state)
    grid1 = sample.level("grid1")
    grid1 = grid1[grid1["parent"] == two_grid1]
    assert list(units["code"]) == sorted(grid1["code"]) and list(units["name"]) == list(
        grid1.sort_values("code")["name"])
    # the reference: the level-1 polygon that holds each block's inner point (shapely)
    inner = state.blocks.geometry.representative_point()
    held = gpd.sjoin(gpd.GeoDataFrame(geometry=inner, crs=crs.STORAGE_CRS).assign(block_id=state.blocks["block_id"]),
                     grid1[["code", "geometry"]], predicate="within").set_index("block_id")["code"]
    assert of.reindex(held.index).tolist() == held.tolist() and len(held) == len(of)
    free = plan.start(sample.grids, two_grid1, roads=sample.roads)
    assert plan.fence_level(free) is None and set(plan.fences(free)[0]) == {""} and plan.fences(free)[1].empty


def test_the_area_brush_reaches_the_blocks_within_n_shared_edges(sample):
    import networkx as nx

    from adjacency import edge_graph

    state = plan.start(sample.grids, "350582106201", roads=sample.roads)
    graph = edge_graph(state.blocks)
    pairs = plan.block_pairs(state)
    assert {frozenset(p) for p in zip(pairs["a"], pairs["b"])} == {frozenset(e) for e in graph.edges}
    for block in state.blocks["block_id"].iloc[::17]:
        for steps in (0, 1, 2, 3):
            want = sorted(nx.ego_graph(graph, block, radius=steps).nodes)
            assert plan.within_steps(state, block, steps) == want, (block, steps)


def test_a_grid_cannot_take_the_name_of_another_grid_of_the_plan(sample):
    state = plan.start(sample.grids, "350582106201", roads=sample.roads)
    a, b = state.units["code"].iloc[:2]
    taken = state.units["name"].iloc[1]
    with pytest.raises(PlanError) as err:
        plan.rename(state, a, f" {taken} ")
    assert err.value.reason == "duplicate_name" and err.value.codes == [a, b] and taken in err.value.message_zh
    assert plan.rename(state, a, "东区网格").units.set_index("code").at[a, "name"] == "东区网格"


def test_renumber_puts_codes_in_reading_order(park):
    grown = plan.add(park, park.blocks["block_id"][:1].tolist())
    after = plan.renumber(grown)
    metric = after.units.to_crs(after.metric_crs)
    expected = number_units(metric.geometry.array, after.units["parent"].iloc[0], "grid2")
    assert after.units["code"].tolist() == expected
    assert sorted(after.units["name"]) == sorted(f"南塘村第{k}网格" for k in range(1, 6))


@pytest.mark.parametrize("name", ["", ".blocks", ".edits", ".errors", ".impact", ".report", ".state"])
def test_docstring_examples_run(name):
    # gridgeo.plan.blocks is the function: reach the modules by name
    module = importlib.import_module(f"gridgeo.plan{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0, module.__name__
