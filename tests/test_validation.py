"""gridgeo.validate and gridgeo.repair on the town sample with defects seeded on purpose.

Every fixture edits the committed sample in its own coordinates (EPSG:4490)
so that the units it does not touch keep their shared vertices bit for bit;
distances are measured in the metric CRS. Each test states the problems the
report must hold (no more, no fewer errors) and checks the located geometry
against one computed here with shapely directly.
"""

import doctest
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

import gridgeo
from gridgeo import io, schema, validation
from gridgeo.cli import app
from gridgeo.crs import metric_crs
from gridgeo.validation import KINDS, LOG_COLUMNS, REPORT_COLUMNS


# ----------------------------------------------------------------------------
# helpers: projection, finding vertices, editing one vertex
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crs(grids):
    return metric_crs(grids)


def to_metric(geom, crs):
    return gpd.GeoSeries([geom], crs=4490).to_crs(crs).iloc[0]


def to_storage(geom, crs):
    return gpd.GeoSeries([geom], crs=crs).to_crs(4490).iloc[0]


def unit(frame, code):
    return frame.index[frame["code"] == code][0]


def metric_unit(frame, code, crs):
    return to_metric(frame.loc[unit(frame, code), "geometry"], crs)


def errors(report):
    return report[report["severity"] == "error"]


def codes_of(row):
    return set(row["codes"].split(","))


def replace_vertex(geom, old, new):
    """`geom` with every vertex exactly at `old` moved to `new` (storage coordinates)."""
    def move(xy):
        xy = xy.copy()
        xy[(xy[:, 0] == old[0]) & (xy[:, 1] == old[1])] = new
        return xy
    return shapely.transform(geom, move)


def shared_vertex(frame, level, crs, *, on_parent_boundary=False, clearance=40.0, avoid=()):
    """(a, b, xy) for a vertex of exactly the two sibling units a and b of
    `level`, `clearance` metres from every other unit of the level and from
    their parent's boundary. With `on_parent_boundary`: (a, None, xy) for a
    vertex of one unit only, on the outline of the town. Units in `avoid` are
    passed over."""
    units = frame[frame["level"] == level]
    xy, owner = shapely.get_coordinates(units.geometry.array, return_index=True)
    table = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "owner": owner}).drop_duplicates()
    count = table.groupby(["x", "y"])["owner"].transform("size")
    wanted = 1 if on_parent_boundary else 2
    candidates = table[count == wanted].groupby(["x", "y"])["owner"].apply(list)
    metric = units.to_crs(crs)
    town = to_metric(frame.loc[frame["level"] == "town", "geometry"].iloc[0], crs)
    for (x, y), owners in candidates.items():
        if set(units["code"].iloc[owners]) & set(avoid):
            continue
        point = to_metric(shapely.Point(x, y), crs)
        a = units.iloc[owners[0]]
        others = metric.drop(index=units.index[owners]).distance(point).min()
        if others < clearance:
            continue
        parent = metric_unit(frame, a["parent"], crs)
        if on_parent_boundary:
            if town.boundary.distance(point) < 1e-6:
                return a["code"], None, (x, y)
            continue
        b = units.iloc[owners[1]]
        if b["parent"] == a["parent"] and parent.boundary.distance(point) > clearance:
            return a["code"], b["code"], (x, y)
    raise AssertionError(f"no vertex fits in the {level} level")


def moved_into(target, xy, distance, crs, *, outside=None):
    """Storage coordinates `distance` metres from `xy` in the direction that
    goes deepest into `target` (metric polygon), or out of `outside`."""
    point = to_metric(shapely.Point(xy), crs)
    best, depth = None, -np.inf
    for angle in np.linspace(0, 2 * np.pi, 72, endpoint=False):
        moved = shapely.Point(point.x + distance * np.cos(angle), point.y + distance * np.sin(angle))
        d = outside.distance(moved) if outside is not None else (
            target.exterior.distance(moved) if target.contains(moved) else -1)
        if d > depth:
            best, depth = moved, d
    back = to_storage(best, crs)
    return back.x, back.y


def tiles_every_parent(frame, crs):
    """The independent test of a repaired hierarchy: under every parent, the
    children of each full level form a valid coverage whose union is the parent."""
    metric = frame.to_crs(crs)
    for level in schema.DEFAULT_SCHEME.full_levels()[1:]:
        children = metric[metric["level"] == level]
        for parent_code, group in children.groupby("parent"):
            parent = metric.loc[metric["code"] == parent_code, "geometry"].iloc[0]
            geoms = np.asarray(group.geometry.array)
            assert shapely.coverage_is_valid(geoms), f"{level} under {parent_code} is no coverage"
            union = shapely.union_all(geoms)
            assert abs(union.area - parent.area) < 0.01, f"{level} under {parent_code} does not tile it"
            assert shapely.difference(union, parent).area < 0.01


# ----------------------------------------------------------------------------
# the seeded defects: each returns (broken frame, what the report must say)
# ----------------------------------------------------------------------------


def seed_shifted_vertex(g, crs, avoid=()):
    """A vertex shared by two level-2 grids moved 15 m into one of them, in the other only."""
    a, b, xy = shared_vertex(g, "grid2", crs, avoid=avoid)
    new = moved_into(metric_unit(g, b, crs), xy, 15.0, crs)
    g.loc[unit(g, a), "geometry"] = replace_vertex(g.loc[unit(g, a), "geometry"], xy, new)
    overlap = metric_unit(g, a, crs).intersection(metric_unit(g, b, crs))
    return g, [("overlap", {a, b}, overlap)]


def seed_narrow_gap(g, crs, avoid=()):
    """A vertex shared by two level-2 grids moved 0.8 m back into one of them."""
    a, b, xy = shared_vertex(g, "grid2", crs, avoid=avoid)
    new = moved_into(metric_unit(g, a, crs), xy, 0.8, crs)
    g.loc[unit(g, a), "geometry"] = replace_vertex(g.loc[unit(g, a), "geometry"], xy, new)
    parent = g.loc[unit(g, a), "parent"]
    siblings = g[(g["parent"] == parent)].to_crs(crs)
    gap = metric_unit(g, parent, crs).difference(shapely.union_all(siblings.geometry.array))
    return g, [("gap", {parent, a, b}, gap)]


def seed_dropped_grid(g, crs, avoid=()):
    """A level-2 grid without level-3 plots deleted."""
    grid2 = g[(g["level"] == "grid2") & ~g["code"].isin(g["parent"]) & ~g["code"].isin(avoid)]
    victim = grid2[grid2["code"].str.endswith("01")].iloc[0]
    g = g.drop(index=victim.name)
    return g, [("uncovered", {victim["parent"]}, to_metric(victim.geometry, crs))]


def seed_grown_overlap(g, crs, avoid=()):
    """A level-2 grid grown 30 m into its sibling."""
    a, b, _ = shared_vertex(g, "grid2", crs, avoid=avoid)
    zone = to_storage(metric_unit(g, a, crs).buffer(30.0), crs)
    grown = shapely.union(g.loc[unit(g, a), "geometry"],
                          shapely.intersection(g.loc[unit(g, b), "geometry"], zone))
    g.loc[unit(g, a), "geometry"] = grown
    overlap = metric_unit(g, a, crs).intersection(metric_unit(g, b, crs))
    return g, [("overlap", {a, b}, overlap)]


def seed_miscoded(g, crs, avoid=()):
    """A level-1 grid whose parent column names another village."""
    grid1 = g[(g["level"] == "grid1") & ~g["code"].isin(avoid)].iloc[3]
    other = g[(g["level"] == "village") & (g["code"] != grid1["parent"])].iloc[0]["code"]
    g.loc[grid1.name, "parent"] = other
    where = to_metric(grid1.geometry, crs)
    return g, [("wrong_parent", {grid1["code"], other, grid1["parent"]}, where),
               ("code_prefix", {grid1["code"]}, where)]


def seed_outside_parent(g, crs, avoid=()):
    """A level-2 grid's vertex on the town's outline pushed 20 m out."""
    a, _, xy = shared_vertex(g, "grid2", crs, on_parent_boundary=True, avoid=avoid)
    town = to_metric(g.loc[g["level"] == "town", "geometry"].iloc[0], crs)
    new = moved_into(None, xy, 20.0, crs, outside=town)
    g.loc[unit(g, a), "geometry"] = replace_vertex(g.loc[unit(g, a), "geometry"], xy, new)
    outside = metric_unit(g, a, crs).difference(metric_unit(g, g.loc[unit(g, a), "parent"], crs))
    return g, [("outside_parent", {a, g.loc[unit(g, a), "parent"]}, outside)]


def seed_bowtie(g, crs, avoid=()):
    """A level-3 plot with two vertices swapped: a self-intersecting ring."""
    plots = g[(g["level"] == "grid3") & ~g["code"].isin(avoid)]
    for _, plot in plots.iloc[np.argsort(shapely.get_num_coordinates(plots.geometry.array))].iterrows():
        ring = np.asarray(plot.geometry.exterior.coords)
        ring[[1, 2]] = ring[[2, 1]]
        bowtie = shapely.Polygon(ring)
        if shapely.is_valid_reason(bowtie).startswith("Self-intersection"):
            break
    g.loc[plot.name, "geometry"] = bowtie
    reason = shapely.is_valid_reason(to_metric(bowtie, crs))
    x, y = map(float, reason[reason.index("[") + 1: -1].split())
    return g, [("invalid", {plot["code"]}, shapely.Point(x, y))]


def seed_sliver(g, crs, avoid=()):
    """A 6 m square cut out of one level-2 grid and added to its neighbour as a stray part."""
    a, b, _ = shared_vertex(g, "grid2", crs, avoid=avoid)
    inner = shapely.maximum_inscribed_circle(metric_unit(g, b, crs))
    centre = shapely.get_point(inner, 0)
    square_m = shapely.box(centre.x - 3, centre.y - 3, centre.x + 3, centre.y + 3)
    square = to_storage(square_m, crs)
    g.loc[unit(g, b), "geometry"] = g.loc[unit(g, b), "geometry"].difference(square)
    g.loc[unit(g, a), "geometry"] = shapely.MultiPolygon([g.loc[unit(g, a), "geometry"], square])
    return g, [("sliver", {a}, to_metric(square, crs))]


def seed_edge_mismatch(g, crs, avoid=()):
    """An extra vertex in the middle of an edge two level-2 grids share, in one of them only."""
    a, b, xy = shared_vertex(g, "grid2", crs, avoid=avoid)
    ring = np.asarray(g.loc[unit(g, a), "geometry"].exterior.coords)
    b_ring = [tuple(p) for p in g.loc[unit(g, b), "geometry"].exterior.coords]
    b_edges = set(zip(b_ring[:-1], b_ring[1:])) | set(zip(b_ring[1:], b_ring[:-1]))
    k = next(k for k in range(len(ring) - 1) if (tuple(ring[k]), tuple(ring[k + 1])) in b_edges)
    middle = (ring[k] + ring[k + 1]) / 2
    g.loc[unit(g, a), "geometry"] = shapely.Polygon(np.insert(ring, k + 1, middle, axis=0))
    where = to_metric(shapely.Point(middle), crs)
    return g, [("edge_mismatch", {a}, where), ("edge_mismatch", {b}, where)]


GEOMETRIC = {
    "shifted_vertex": seed_shifted_vertex,
    "narrow_gap": seed_narrow_gap,
    "dropped_grid": seed_dropped_grid,
    "grown_overlap": seed_grown_overlap,
    "outside_parent": seed_outside_parent,
    "bowtie": seed_bowtie,
    "sliver": seed_sliver,
    "edge_mismatch": seed_edge_mismatch,
}
SEEDS = {**GEOMETRIC, "miscoded": seed_miscoded}


# ----------------------------------------------------------------------------
# validate
# ----------------------------------------------------------------------------


def test_clean_sample_has_no_errors(grids):
    report = gridgeo.validate(grids)
    assert list(report.columns) == list(REPORT_COLUMNS)
    assert report.crs.to_epsg() == 4490
    summary = report.attrs["summary"]
    assert summary["errors"] == 0 and summary["valid"]
    assert summary["units"] == len(grids)
    assert set(report["severity"]) <= {"warning"}
    # the sample tiles every parent exactly: checked here without gridgeo
    tiles_every_parent(grids, metric_crs(grids))


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_seeded_defect_is_found_and_located(grids_copy, crs, seed):
    broken, expected = SEEDS[seed](grids_copy, crs)
    report = gridgeo.validate(broken)
    found = errors(report)
    assert sorted(found["kind"]) == sorted(kind for kind, _, _ in expected), found[["kind", "message_en"]]
    assert report.attrs["summary"]["errors"] == len(expected)
    located = found.to_crs(crs)
    for kind, codes, where in expected:
        rows = located[(located["kind"] == kind) & located["codes"].map(lambda c: codes <= set(c.split(",")))]
        assert len(rows) == 1, (kind, codes, located[["kind", "codes"]])
        row = rows.iloc[0]
        assert row["code"] in codes and row["severity"] == KINDS[kind].severity
        assert KINDS[kind].advice_zh in row["message_zh"]
        assert KINDS[kind].advice_en.lower() in row["message_en"].lower()
        if where.geom_type in ("Polygon", "MultiPolygon") and kind not in ("wrong_parent", "code_prefix"):
            assert row["area_m2"] == pytest.approx(where.area, rel=1e-6, abs=0.01)
            assert shapely.symmetric_difference(row.geometry, where).area < 1e-6 * where.area + 0.01
        else:  # located at the unit, the edge or the point at fault
            assert row.geometry.distance(where) < 0.01


def test_moved_vertex_overlap_is_the_triangle_between_old_and_new_edges(grids_copy, crs):
    a, b, xy = shared_vertex(grids_copy, "grid2", crs)
    before = metric_unit(grids_copy, a, crs)
    broken, [(_, _, overlap)] = seed_shifted_vertex(grids_copy, crs)
    # the overlap is exactly what the moved vertex added to a
    assert overlap.area == pytest.approx(metric_unit(broken, a, crs).area - before.area, rel=1e-9)
    row = errors(gridgeo.validate(broken)).iloc[0]
    assert row["area_m2"] == pytest.approx(overlap.area, rel=1e-6)
    assert "overlap" in row["message_en"] and "重叠" in row["message_zh"]


def test_narrow_and_wide_uncovered_pieces_are_told_apart(grids_copy, crs):
    broken, [(_, _, gap)] = seed_narrow_gap(grids_copy, crs)
    assert 2 * shapely.maximum_inscribed_circle(gap).length < 2.0
    assert list(errors(gridgeo.validate(broken))["kind"]) == ["gap"]
    # the same gap counts as uncovered when gap_width is below its width
    assert list(errors(gridgeo.validate(broken, gap_width=0.1))["kind"]) == ["uncovered"]


def test_dropped_grid_leaves_a_sequence_gap_warning(grids_copy, crs):
    broken, [(_, (parent,), _)] = seed_dropped_grid(grids_copy, crs)
    report = gridgeo.validate(broken)
    warning = report[(report["kind"] == "sequence_gap") & (report["code"] == parent)]
    assert len(warning) == 1 and "number(s) 1." in warning.iloc[0]["message_en"]


def test_invalid_polygon_names_the_reason_and_the_edges(grids_copy, crs):
    broken, [(_, (code,), point)] = seed_bowtie(grids_copy, crs)
    row = errors(gridgeo.validate(broken)).iloc[0]
    assert "Self-intersection" in row["message_en"] and "自相交" in row["message_zh"]
    edges = gpd.GeoSeries([row.geometry], crs=4490).to_crs(crs).iloc[0]
    assert edges.geom_type == "MultiLineString" and len(edges.geoms) == 2  # the two crossing edges
    assert edges.distance(point) < 1e-6


def test_one_village_checked_alone_finds_enclosed_gaps(grids, grids_copy, crs):
    broken, [(_, codes, gap)] = seed_narrow_gap(grids_copy, crs)
    parent = broken.loc[broken["code"].isin(codes) & (broken["level"] == "grid1"), "code"].iloc[0]
    alone = broken[broken["parent"] == parent]  # its level-2 grids, without the level-1 grid
    found = errors(gridgeo.validate(alone))
    assert list(found["kind"]) == ["gap"] and found.iloc[0]["code"] == parent
    located = found.to_crs(crs).geometry.iloc[0]
    assert shapely.symmetric_difference(located, gap).area < 1e-6 * gap.area + 0.01
    clean = grids[grids["parent"] == parent]
    assert gridgeo.validate(clean).attrs["summary"]["errors"] == 0


def test_partial_level_has_no_gap_check_but_overlaps_count(grids_copy, crs):
    plots = grids_copy[grids_copy["level"] == "grid3"]
    dropped = grids_copy.drop(index=plots.index[0])
    assert gridgeo.validate(dropped).attrs["summary"]["errors"] == 0
    first, second = plots.iloc[0], plots.iloc[1]
    twin = grids_copy.copy()
    twin.loc[second.name, "geometry"] = first.geometry  # two plots on one site
    found = errors(gridgeo.validate(twin))
    overlap = found[found["kind"] == "overlap"]
    assert len(overlap) == 1 and codes_of(overlap.iloc[0]) == {first["code"], second["code"]}
    assert overlap.iloc[0]["area_m2"] == pytest.approx(to_metric(first.geometry, crs).area, rel=1e-6)


def test_geometry_and_shape_problems(grids_copy, crs):
    g = grids_copy
    plots = g[g["level"] == "grid3"].index
    g.loc[plots[0], "geometry"] = shapely.Polygon()
    g.loc[plots[1], "geometry"] = None
    g.loc[plots[2], "geometry"] = g.loc[plots[2], "geometry"].centroid
    ring = np.asarray(g.loc[plots[3], "geometry"].exterior.coords)
    g.loc[plots[3], "geometry"] = shapely.Polygon(np.insert(ring, 2, ring[2], axis=0))  # a repeated vertex
    hole_m = to_metric(g.loc[plots[4], "geometry"], crs).centroid.buffer(5.0)
    g.loc[plots[4], "geometry"] = g.loc[plots[4], "geometry"].difference(to_storage(hole_m, crs))
    plot5 = to_metric(g.loc[plots[5], "geometry"], crs)
    c = plot5.centroid
    strip = shapely.box(c.x - 200, c.y - 2, c.x + 200, c.y + 2).intersection(plot5)
    g.loc[plots[5], "geometry"] = to_storage(strip, crs)
    score = 4 * np.pi * strip.area / strip.length ** 2  # Polsby-Popper, computed here
    report = gridgeo.validate(g, levels=["grid3"], compactness=score + 0.001)
    code = g.loc[plots, "code"].to_numpy()
    found = set(zip(report["kind"], report["code"]))
    assert {("empty", code[0]), ("empty", code[1]), ("wrong_type", code[2]), ("duplicate_vertex", code[3]),
            ("hole", code[4]), ("non_compact", code[5])} <= found
    assert set(errors(report)["kind"]) == {"empty", "wrong_type"}
    hole = report[report["kind"] == "hole"].to_crs(crs).iloc[0]
    assert hole["area_m2"] == pytest.approx(hole_m.area, rel=1e-3)
    duplicate = report[report["kind"] == "duplicate_vertex"].iloc[0].geometry
    assert duplicate.distance(shapely.Point(ring[2])) < 1e-9
    barely = gridgeo.validate(g, levels=["grid3"], compactness=score - 0.001)
    assert ("non_compact", code[5]) not in set(zip(barely["kind"], barely["code"]))


def test_code_problems_match_the_schema_check(grids_copy):
    g = grids_copy
    plots = g.index[g["level"] == "grid3"]
    grid2 = g.index[g["level"] == "grid2"]
    grid1 = g.index[g["level"] == "grid1"]
    g.loc[plots[1], "code"] = g.loc[plots[0], "code"]                         # duplicate code
    g.loc[grid2[5], "parent"] = g.loc[grid2[5], "parent"][:-2] + "99"          # parent that does not exist
    g.loc[grid1[2], "code"] = g.loc[grid1[2], "code"] + "9"                    # wrong width
    g.loc[plots[7], "level"] = "grid4"                                         # unknown level
    g.loc[grid2[9], "name"] = g.loc[grid2[8], "name"]                          # name repeated
    g.loc[grid2[9], "parent"] = g.loc[grid2[8], "parent"]
    with pytest.raises(schema.SchemaError) as info:
        schema.check(g)
    expected = {p.code for p in info.value.problems}
    report = gridgeo.validate(g)
    code_kinds = {"unknown_level", "bad_code", "duplicate_code", "bad_parent", "code_prefix"}
    assert set(report.loc[report["kind"].isin(code_kinds), "code"]) == expected
    assert set(report.loc[report["kind"].isin(code_kinds), "severity"]) == {"error"}
    names = report[report["kind"] == "duplicate_name"]
    assert any(codes_of(r) == {g.loc[grid2[8], "code"], g.loc[grid2[9], "code"]} for _, r in names.iterrows())


def test_report_columns_are_stable_when_nothing_is_wrong(grids):
    report = gridgeo.validate(grids[grids["level"] == "grid1"], levels="grid1")
    assert len(report) == 0 and list(report.columns) == list(REPORT_COLUMNS)
    assert validation.summarize(report) == {"errors": 0, "warnings": 0, "valid": True,
                                            "by_kind": {}, "by_level": {}}


def test_input_is_checked(grids):
    with pytest.raises(schema.SchemaError, match="missing column"):
        gridgeo.validate(grids.drop(columns="parent"), name="grids.geojson")
    with pytest.raises(ValueError, match="gap_width must be a non-negative"):
        gridgeo.validate(grids, gap_width=-1)
    with pytest.raises(ValueError, match="not levels of the scheme"):
        gridgeo.validate(grids, levels=["grid9"])
    with pytest.raises(TypeError, match="should be a GeoDataFrame"):
        gridgeo.validate(pd.DataFrame(grids))


def test_input_in_another_crs_gives_the_same_report(grids_copy, crs):
    broken, _ = seed_grown_overlap(grids_copy, crs)
    direct = gridgeo.validate(broken)
    via_gk = gridgeo.validate(broken.to_crs(4526))  # CGCS2000 Gauss-Krüger 3° zone 39 (CM 117E), with zone prefix
    assert list(direct["kind"]) == list(via_gk["kind"])
    assert np.allclose(direct["area_m2"], via_gk["area_m2"], rtol=1e-6, equal_nan=True)


def test_report_writes_to_geojson_and_geopackage(grids_copy, crs, tmp_path):
    broken, _ = seed_shifted_vertex(grids_copy, crs)
    report = gridgeo.validate(broken)
    for name in ("problems.geojson", "problems.gpkg"):
        back = pyogrio.read_dataframe(io.write(report, tmp_path / name))
        assert list(back["kind"]) == list(report["kind"]) and list(back["codes"]) == list(report["codes"])


def test_examples_in_the_docstrings_run():
    result = doctest.testmod(validation, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------------------
# repair
# ----------------------------------------------------------------------------


def assert_repaired(broken, repaired, log, crs):
    """No error left, every full level tiles its parent, the log names every
    changed unit and lists exactly the warnings left."""
    after = gridgeo.validate(repaired)
    assert after.attrs["summary"]["errors"] == 0, after[["kind", "message_en"]]
    left = log[log["step"] == "not_repaired"]
    assert (left["severity"] == "warning").all()
    assert sorted(zip(left["kind"], left["code"])) == sorted(zip(after["kind"], after["code"]))
    tiles_every_parent(repaired, crs)
    before = broken.set_index("code").geometry
    now = repaired.set_index("code").geometry.reindex(before.index)
    changed = set(before.index[~now.geom_equals_exact(before, tolerance=0)])
    changes = log[log["step"] != "not_repaired"]
    assert changed == set(changes["code"]), (changed, set(changes["code"]))
    assert (changes["severity"] == changes["kind"].map(lambda k: KINDS[k].severity)).all()
    assert list(log.columns) == list(LOG_COLUMNS) and log.crs.to_epsg() == 4490


@pytest.mark.parametrize("seed", sorted(GEOMETRIC))
def test_repair_makes_the_hierarchy_valid_again(grids_copy, crs, seed):
    broken, _ = GEOMETRIC[seed](grids_copy, crs)
    kept = broken.copy()
    report = gridgeo.validate(broken)
    repaired, log = gridgeo.repair(broken, report)
    assert broken.geometry.geom_equals_exact(kept.geometry, tolerance=0).all()  # never in place
    assert_repaired(broken, repaired, log, crs)


def test_repair_gives_a_protruding_overlap_back(grids_copy, crs):
    a, b, _ = shared_vertex(grids_copy, "grid2", crs)
    original = {c: metric_unit(grids_copy, c, crs) for c in (a, b)}
    broken, _ = seed_shifted_vertex(grids_copy.copy(), crs)
    repaired, log = gridgeo.repair(broken)
    # the triangle sticks into b, which shares the longer border with it
    for c in (a, b):
        assert metric_unit(repaired, c, crs).symmetric_difference(original[c]).area < 0.01
    assert set(log.loc[log["step"] == "clean_coverage", "code"]) == {a}


def test_repair_gives_a_grid_drawn_over_back_its_area(grids, grids_copy, crs):
    a, b, _ = shared_vertex(grids_copy, "grid2", crs)
    broken = grids_copy
    broken.loc[unit(broken, a), "geometry"] = broken.loc[unit(broken, a), "geometry"].union(
        broken.loc[unit(broken, b), "geometry"])
    found = errors(gridgeo.validate(broken))
    assert list(found["kind"]) == ["overlap"] and found.iloc[0]["area_m2"] == pytest.approx(
        metric_unit(grids, b, crs).area, rel=1e-6)
    repaired, log = gridgeo.repair(broken)
    assert_repaired(broken, repaired, log, crs)
    for c in (a, b):  # b keeps its area, a is what it was
        assert metric_unit(repaired, c, crs).symmetric_difference(metric_unit(grids, c, crs)).area < 0.01


def test_repair_splits_a_dropped_grid_among_its_neighbours(grids_copy, crs):
    broken, [(_, (parent,), hole)] = seed_dropped_grid(grids_copy, crs)
    repaired, log = gridgeo.repair(broken)
    fills = log[log["step"] == "fill_gap"]
    assert len(fills) >= 2 and set(fills["parent"]) == {parent}
    assert fills["area_gained_m2"].sum() == pytest.approx(hole.area, rel=1e-6)
    gained = shapely.union_all(fills.to_crs(crs).geometry.array)
    assert shapely.symmetric_difference(gained, hole).area < 1e-6 * hole.area + 0.01


def test_repair_drops_a_sliver_into_its_neighbour(grids_copy, crs):
    a, b, _ = shared_vertex(grids_copy, "grid2", crs)
    original = metric_unit(grids_copy, b, crs)
    broken, [(_, _, square)] = seed_sliver(grids_copy.copy(), crs)
    repaired, log = gridgeo.repair(broken)
    assert list(log["step"]) == ["remove_slivers", "fill_gap"]
    assert list(log["code"]) == [a, b]
    assert metric_unit(repaired, b, crs).symmetric_difference(original).area < 0.01


def test_repair_keeps_untouched_units_bit_for_bit(grids_copy, crs):
    broken, _ = seed_grown_overlap(grids_copy, crs)
    repaired, log = gridgeo.repair(broken)
    untouched = ~repaired["code"].isin(log["code"])
    assert untouched.sum() == len(broken) - log["code"].nunique()
    same = repaired.geometry[untouched].geom_equals_exact(broken.geometry[untouched], tolerance=0)
    assert same.all()


def test_repair_fixes_only_the_rows_it_is_given(grids_copy, crs):
    broken, _ = seed_shifted_vertex(grids_copy, crs)
    broken, _ = seed_bowtie(broken, crs)
    broken, _ = seed_miscoded(broken, crs)
    report = gridgeo.validate(broken)
    assert {"overlap", "invalid", "wrong_parent", "code_prefix"} <= set(report["kind"])
    repaired, log = gridgeo.repair(broken, report[report["kind"] == "overlap"])
    assert set(log.loc[log["step"] != "not_repaired", "kind"]) == {"overlap"}
    left = log[(log["step"] == "not_repaired") & (log["severity"] == "error")]
    assert set(left["kind"]) == {"invalid", "wrong_parent", "code_prefix"}
    assert set(errors(gridgeo.validate(repaired))["kind"]) == set(left["kind"])
    # each says why it is left: not asked for, or not a kind repair fixes
    why = dict(zip(left["kind"], left["message_en"]))
    assert "not in the report gridgeo.repair was given" in why["invalid"]
    assert "gridgeo.repair does not fix problems of this kind (wrong parent)" in why["wrong_parent"]
    assert "gridgeo.repair does not fix problems of this kind (code prefix)" in why["code_prefix"]
    assert not any("gridgeo.repair applies" in m or "gridgeo.repair gives" in m for m in left["message_en"])


def test_repair_never_clips_a_miscoded_unit_away(grids_copy, crs):
    a, b, xy = shared_vertex(grids_copy, "grid1", crs, clearance=20.0)
    new = moved_into(metric_unit(grids_copy, b, crs), xy, 10.0, crs)
    broken = grids_copy
    broken.loc[unit(broken, a), "geometry"] = replace_vertex(broken.loc[unit(broken, a), "geometry"], xy, new)
    village = broken.loc[unit(broken, a), "parent"]
    stray = broken[(broken["level"] == "grid1") & (broken["parent"] != village)].iloc[0]
    broken.loc[stray.name, "parent"] = village  # names the village whose grids overlap
    report = gridgeo.validate(broken)
    assert {"overlap", "wrong_parent"} <= set(errors(report)["kind"])
    repaired, log = gridgeo.repair(broken, report[report["kind"] == "overlap"])
    assert stray["code"] not in set(log.loc[log["step"] != "not_repaired", "code"])
    assert repaired.loc[stray.name, "geometry"].equals_exact(stray.geometry, tolerance=0)
    assert "overlap" not in set(gridgeo.validate(repaired)["kind"])


def test_everything_at_once(grids_copy, crs):
    broken, touched = grids_copy, set()
    for seed in ("shifted_vertex", "dropped_grid", "outside_parent", "bowtie", "edge_mismatch", "sliver"):
        broken, expected = GEOMETRIC[seed](broken, crs, avoid=touched)
        touched |= set().union(*(codes for _, codes, _ in expected))
    report = gridgeo.validate(broken)
    assert set(errors(report)["kind"]) == {"overlap", "uncovered", "outside_parent", "invalid", "edge_mismatch",
                                           "sliver"}
    repaired, log = gridgeo.repair(broken, report)
    assert_repaired(broken, repaired, log, crs)


# ----------------------------------------------------------------------------
# collections, odd parts, and a log that tells the truth
# ----------------------------------------------------------------------------


def cut_square(whole, crs, side=40.0):
    """(`whole` without a `side` metres square around its inner centre, the square): storage coordinates."""
    c = shapely.get_point(shapely.maximum_inscribed_circle(to_metric(whole, crs)), 0)
    square = to_storage(shapely.box(c.x - side / 2, c.y - side / 2, c.x + side / 2, c.y + side / 2), crs)
    return shapely.difference(whole, square), square


def bowtie_of(polygon):
    """`polygon` with two neighbouring vertices swapped where that makes its ring cross itself."""
    ring = np.asarray(polygon.exterior.coords)
    for k in range(1, len(ring) - 2):
        swapped = ring.copy()
        swapped[[k, k + 1]] = swapped[[k + 1, k]]
        candidate = shapely.Polygon(swapped)
        if shapely.is_valid_reason(candidate).startswith("Self-intersection"):
            return candidate
    raise AssertionError("no swap makes a bow-tie")


def flat_polygons(geom):
    """The reference for _polygonal: non-empty polygons of `geom`, depth first, in order."""
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type in ("MultiPoint", "MultiLineString", "MultiPolygon", "GeometryCollection"):
        return [p for part in geom.geoms for p in flat_polygons(part)]
    return [geom] if geom.geom_type == "Polygon" else []


def test_polygonal_opens_nested_collections_in_order():
    rng = np.random.default_rng(7)

    def random_geometry(depth):
        x, y = rng.integers(0, 100, 2)
        kind = rng.integers(0, 8 if depth < 3 else 4)
        if kind == 0:
            return shapely.box(x, y, x + 1, y + 1)
        if kind == 1:
            return shapely.LineString([(x, y), (x + 1, y)])
        if kind == 2:
            return shapely.Point(x, y)
        if kind == 3:
            return shapely.Polygon()
        if kind == 4:
            return shapely.MultiPolygon([shapely.box(x, y, x + 1, y + 1), shapely.box(x + 2, y, x + 3, y + 1)])
        return shapely.GeometryCollection([random_geometry(depth + 1) for _ in range(rng.integers(0, 4))])

    geoms = [random_geometry(0) for _ in range(400)] + [None]
    got = validation._polygonal(geoms)
    for geom, result in zip(geoms, got):
        expected = flat_polygons(geom)
        if not expected:
            assert result.is_empty and result.geom_type == "Polygon"
        elif len(expected) == 1:
            assert result.equals_exact(expected[0], tolerance=0)
        else:
            assert result.geom_type == "MultiPolygon" and len(result.geoms) == len(expected)
            assert all(a.equals_exact(b, tolerance=0) for a, b in zip(result.geoms, expected))


def test_a_collection_holding_a_multipolygon_beside_a_multipart_unit(grids_copy, crs):
    """The crash "The indices should be sorted." (shapely.multipolygons wants
    sorted indices): a unit with an island, drawn as a GeometryCollection
    holding the MultiPolygon, and later in the frame a unit drawn as a
    collection of two polygons; a plain two-part MultiPolygon beside them."""
    g, [(_, (holder,), island)] = seed_island_unit(grids_copy, crs)
    g, [(_, (plain,), _)] = seed_island_unit(g, crs, avoid={holder, *g.loc[g["code"] == holder, "parent"]})
    first = unit(g, holder)
    g.loc[first, "geometry"] = shapely.GeometryCollection([g.loc[first, "geometry"]])
    grid2 = g.index[(g["level"] == "grid2") & ~g["code"].isin(set(touching_units(g, crs, {holder, plain})))]
    second = grid2[grid2 > first][0]
    whole = to_metric(g.loc[second, "geometry"], crs)
    g.loc[second, "geometry"] = shapely.GeometryCollection(list(cut_square(g.loc[second, "geometry"], crs)))
    assert first < second and g.loc[first, "geometry"].geoms[0].geom_type == "MultiPolygon"

    report = gridgeo.validate(g)
    assert sorted(zip(report["kind"], report["code"])) == sorted(
        [("wrong_type", holder), ("wrong_type", g.loc[second, "code"]), ("multipart", holder), ("multipart", plain)])
    found = errors(report)
    assert all("GeometryCollection" in m and "holding polygons" in m for m in found["message_en"])
    stray = report[(report["kind"] == "multipart") & (report["code"] == holder)].to_crs(crs).iloc[0]
    assert stray["area_m2"] == pytest.approx(island.area, rel=1e-6)
    assert shapely.symmetric_difference(stray.geometry, island).area < 1e-6 * island.area
    repaired, log = gridgeo.repair(g, report)
    assert_repaired(g, repaired, log, crs)
    back = to_metric(repaired.loc[second, "geometry"], crs)  # the area it covers, as one polygon again
    assert back.geom_type == "Polygon" and shapely.symmetric_difference(back, whole).area < 1e-6 * whole.area
    assert to_metric(repaired.loc[first, "geometry"], crs).equals(to_metric(g.loc[first, "geometry"].geoms[0], crs))
    assert set(log.loc[log["step"] == "keep_polygons", "code"]) == {holder, g.loc[second, "code"]}
    left = log[log["step"] == "not_repaired"]
    assert sorted(zip(left["kind"], left["code"])) == sorted([("multipart", holder), ("multipart", plain)])


def touching_units(g, crs, codes):
    """The codes of the units touching any of `codes` (and those themselves)."""
    metric = g.to_crs(crs)
    mine = metric[metric["code"].isin(codes)]
    return set(metric.loc[metric.intersects(shapely.union_all(mine.geometry.array).buffer(1.0)), "code"])


def seed_island_unit(g, crs, avoid=()):
    """A 30 m square of one level-2 grid given to its neighbour as a second part."""
    a, b, _ = shared_vertex(g, "grid2", crs, avoid=avoid)
    _, square = cut_square(g.loc[unit(g, b), "geometry"], crs, side=30.0)
    g.loc[unit(g, b), "geometry"] = g.loc[unit(g, b), "geometry"].difference(square)
    g.loc[unit(g, a), "geometry"] = shapely.MultiPolygon([g.loc[unit(g, a), "geometry"], square])
    return g, [("multipart", (a,), to_metric(square, crs))]


def test_mixed_nested_and_empty_parts_are_reported_and_repaired(grids_copy, crs):
    g = grids_copy
    grid2 = g.index[g["level"] == "grid2"]
    units = {name: grid2[k] for k, name in enumerate(("mixed", "nested", "empty_part", "empty_member", "bowtie"))}
    original = {name: g.loc[k, "geometry"] for name, k in units.items()}
    whole = original["mixed"]
    g.loc[units["mixed"], "geometry"] = shapely.GeometryCollection([whole, whole.exterior, whole.centroid])
    rest, square = cut_square(original["nested"], crs)
    g.loc[units["nested"], "geometry"] = shapely.GeometryCollection(
        [shapely.GeometryCollection([rest, shapely.GeometryCollection([square])]), shapely.Point(0, 0)])
    g.loc[units["empty_part"], "geometry"] = shapely.multipolygons([original["empty_part"], shapely.Polygon()])
    g.loc[units["empty_member"], "geometry"] = shapely.GeometryCollection([shapely.Polygon(), original["empty_member"]])
    g.loc[units["bowtie"], "geometry"] = bowtie_of(original["bowtie"])
    report = gridgeo.validate(g)
    kinds = {name: set(report.loc[report["code"] == g.loc[k, "code"], "kind"]) for name, k in units.items()}
    assert kinds["mixed"] == kinds["nested"] == kinds["empty_member"] == {"wrong_type"}
    assert kinds["empty_part"] == {"invalid"} and "invalid" in kinds["bowtie"]
    empty_part = report[report["code"] == g.loc[units["empty_part"], "code"]].iloc[0]
    assert "Empty part" in empty_part["message_en"] and "含有空的部分" in empty_part["message_zh"]
    repaired, log = gridgeo.repair(g, report)
    assert_repaired(g, repaired, log, crs)
    for name in ("mixed", "nested", "empty_part", "empty_member"):  # exactly the polygon drawn
        back, drawn = (to_metric(x, crs) for x in (repaired.loc[units[name], "geometry"], original[name]))
        assert back.geom_type == "Polygon" and shapely.symmetric_difference(back, drawn).area < 1e-6 * drawn.area
    assert set(log.loc[log["code"] == g.loc[units["bowtie"], "code"], "step"]) >= {"make_valid"}


def test_edges_that_do_not_match_across_parents_are_snapped(grids_copy, crs):
    g = grids_copy
    grid2 = g[g["level"] == "grid2"]
    edges = {k: {tuple(map(tuple, pair)) for pair in zip(np.asarray(geom.exterior.coords)[:-1],
                                                         np.asarray(geom.exterior.coords)[1:])}
             for k, geom in zip(grid2.index, grid2.geometry)}
    a, b, (p, q) = next((i, j, e) for i in grid2.index for j in grid2.index
                        if grid2.loc[i, "parent"] != grid2.loc[j, "parent"]
                        for e in edges[i] & {(y, x) for x, y in edges[j]})
    shared_before = shapely.length(shapely.intersection(*(metric_unit(g, g.loc[k, "code"], crs) for k in (a, b))))
    ring = [tuple(c) for c in g.loc[a, "geometry"].exterior.coords]
    ring.insert(ring.index(p) + 1, ((p[0] + q[0]) / 2, (p[1] + q[1]) / 2))  # a vertex b does not have
    g.loc[a, "geometry"] = shapely.Polygon(ring)
    report = gridgeo.validate(g)
    assert sorted(zip(report["kind"], report["code"])) == sorted(
        [("edge_mismatch", g.loc[a, "code"]), ("edge_mismatch", g.loc[b, "code"])])
    assert "gridgeo.repair snaps them" in report.iloc[0]["message_en"]
    repaired, log = gridgeo.repair(g, report)
    assert_repaired(g, repaired, log, crs)  # it did: no not_repaired row
    assert set(log["step"]) == {"match_edges"}
    pair = np.array([to_metric(repaired.loc[k, "geometry"], crs) for k in (a, b)], dtype=object)
    assert shapely.coverage_is_valid(pair, gap_width=0.01)
    assert shapely.length(shapely.intersection(*pair)) == pytest.approx(shared_before, rel=1e-9)


def test_the_log_never_claims_a_repair_it_did_not_make(grids_copy, crs):
    g, touched = grids_copy, set()
    for seed in ("shifted_vertex", "bowtie", "miscoded", "dropped_grid"):
        g, expected = SEEDS[seed](g, crs, avoid=touched)
        touched |= set().union(*(codes for _, codes, _ in expected))
    plots = g.index[(g["level"] == "grid3") & ~g["code"].isin(touched)]
    g.loc[plots[0], "geometry"] = g.loc[plots[0], "geometry"].centroid     # no polygon to keep
    g.loc[plots[1], "geometry"] = g.loc[plots[2], "geometry"]              # drawn twice
    report = gridgeo.validate(g)
    repaired, log = gridgeo.repair(g, report[report["kind"] != "invalid"])  # the bow-tie left out on purpose
    left = log[log["step"] == "not_repaired"]
    again = gridgeo.validate(repaired)
    assert sorted(zip(left["kind"], left["code"])) == sorted(zip(again["kind"], again["code"]))
    reasons = {}
    for row in left.itertuples():
        kind = KINDS[row.kind]
        assert row.severity == kind.severity
        assert kind.advice_en.lower() in row.message_en.lower() and kind.advice_zh in row.message_zh
        assert not kind.repair_en or kind.repair_en not in row.message_en, row.message_en  # no claim
        assert not kind.repair_zh or kind.repair_zh not in row.message_zh, row.message_zh
        reasons[row.kind] = row.message_en
    assert "not in the report gridgeo.repair was given" in reasons["invalid"]
    assert "holds no polygon to keep" in reasons["wrong_type"]
    assert "drawn identically" in reasons["overlap"]
    for kind in ("wrong_parent", "code_prefix", "sequence_gap"):
        assert f"does not fix problems of this kind ({KINDS[kind].label_en})" in reasons[kind]


# ----------------------------------------------------------------------------
# the command line
# ----------------------------------------------------------------------------


@pytest.fixture
def broken_files(grids_copy, crs, tmp_path):
    broken, _ = seed_dropped_grid(grids_copy, crs)
    return {fmt: io.write(broken, tmp_path / f"grids.{fmt}") for fmt in ("geojson", "gpkg", "shp")}


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp"])
def test_cli_reports_errors_with_exit_status_1(broken_files, fmt):
    result = CliRunner().invoke(app, ["validate", str(broken_files[fmt]), "--format", "json"])
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout)
    assert out["summary"]["errors"] == 1
    assert [p["kind"] for p in out["problems"] if p["severity"] == "error"] == ["uncovered"]
    located = [p for p in out["problems"] if p["kind"] == "uncovered"][0]
    assert 118.3 < located["lon"] < 118.7 and 24.6 < located["lat"] < 24.9


def test_cli_validates_an_offices_own_file_as_gridgeo_load_reads_it(grids_copy, crs, tmp_path):
    """Chinese field names, level labels, codes in number fields (the town's parent 0), a GBK
    .dbf without .cpg, a zone-prefixed Gauss-Krüger easting: the same report as the file in
    gridgeo's own columns gives."""
    from office_files import grid_shapefile

    broken, _ = seed_dropped_grid(grids_copy, crs)
    path = grid_shapefile(tmp_path, broken, name="晋江网格.shp")
    result = CliRunner().invoke(app, ["validate", str(path), "--format", "json"])
    assert result.exit_code == 1, result.output
    assert "read as gridgeo load reads it (code ← 网格编码" in result.stderr
    out = json.loads(result.stdout)
    own = json.loads(CliRunner().invoke(app, ["validate", str(io.write(broken, tmp_path / "own.gpkg")),
                                              "--format", "json"]).stdout)
    assert out["summary"] == own["summary"]
    assert [(p["kind"], p["codes"]) for p in out["problems"]] == [(p["kind"], p["codes"]) for p in own["problems"]]
    assert [p["kind"] for p in out["problems"] if p["severity"] == "error"] == ["uncovered"]


def test_cli_writes_problems_and_prints_text(broken_files, tmp_path):
    target = tmp_path / "problems.gpkg"
    result = CliRunner().invoke(app, ["validate", str(broken_files["geojson"]), "-o", str(target)])
    assert result.exit_code == 1
    assert "NOT valid, 1 error(s)" in result.stdout and "未被任何二级网格覆盖" in result.stdout
    back = pyogrio.read_dataframe(target)
    assert list(back["kind"]) == ["uncovered", "sequence_gap"]
    again = CliRunner().invoke(app, ["validate", str(broken_files["geojson"]), "-o", str(target)])
    assert again.exit_code == 2 and "already has a layer" in again.stderr


def test_cli_geojson_output_and_clean_input(tmp_path):
    result = CliRunner().invoke(app, ["validate", "sample_geojson/grid2.geojson", "--format", "geojson"])
    assert result.exit_code == 0
    collection = json.loads(result.stdout)
    assert collection["type"] == "FeatureCollection" and collection["features"] == []


def test_cli_shows_progress_and_refuses_what_it_cannot_read(broken_files, tmp_path):
    result = CliRunner().invoke(app, ["validate", str(broken_files["gpkg"]), "--progress"])
    assert "validating" in result.stderr
    missing = CliRunner().invoke(app, ["validate", str(tmp_path / "nowhere.geojson")])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_cli_validates_collections_dissolving_tools_leave(grids_copy, crs, tmp_path):
    g, [(_, (holder,), _)] = seed_island_unit(grids_copy, crs)
    first = unit(g, holder)
    g.loc[first, "geometry"] = shapely.GeometryCollection([g.loc[first, "geometry"]])  # holding the MultiPolygon
    second = g.index[(g["level"] == "grid2") & (g.index > first)
                     & ~g["code"].isin(touching_units(g, crs, {holder}))][0]
    g.loc[second, "geometry"] = shapely.GeometryCollection(list(cut_square(g.loc[second, "geometry"], crs)))
    path = io.write(g, tmp_path / "dissolved.geojson")
    result = CliRunner().invoke(app, ["validate", str(path), "--format", "json"])
    assert result.exit_code == 1, result.output
    problems = json.loads(result.stdout)["problems"]
    assert sorted((p["kind"], p["code"]) for p in problems) == sorted(
        [("wrong_type", holder), ("wrong_type", g.loc[second, "code"]), ("multipart", holder)])
