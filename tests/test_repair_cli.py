"""``gridgeo repair`` on files as offices write them, and on real polygons nobody here drew.

The office files are the town sample with defects seeded the way desktop GIS
and dissolve tools leave them (a GeometryCollection holding a MultiPolygon, a
collection of two polygons, a unit with a stray island, a bow-tie ring, an
overlap, a gap), written as GeoJSON and as a GBK shapefile without .cpg in a
zone-prefixed Gauss-Krüger system. The real data are the polygons libpysal
ships (Tokyo's 262 municipalities with 10 self-intersecting rings, the 48 US
states, Mexico's 32 states), made grids of one level from their own id
columns.

Every result is checked without gridgeo: shapely.is_valid on each geometry, no
two units overlapping (geopandas.overlay), every parent tiled by its children
(union area and shapely.coverage_is_valid), the input's sha256 unchanged.
"""

import json
from pathlib import Path

import geopandas as gpd
import libpysal.examples
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

import gridgeo
from gridgeo.cli import app
from gridgeo.crs import metric_crs
from gridgeo.schema import CodeScheme, Level
from gridgeo.validation import KINDS, LOG_COLUMNS
from office_files import digest
from test_validation import (metric_unit, seed_bowtie, seed_narrow_gap, seed_shifted_vertex, shared_vertex,
                             tiles_every_parent, to_metric, to_storage, unit)


def run(*args):
    return CliRunner().invoke(app, ["repair", *map(str, args)])


# ----------------------------------------------------------------------------
# defects as offices' tools leave them
# ----------------------------------------------------------------------------


def square_inside(geom_m, side):
    """A `side` metres square around the centre of the largest circle inside `geom_m`."""
    c = shapely.get_point(shapely.maximum_inscribed_circle(geom_m), 0)
    return shapely.box(c.x - side / 2, c.y - side / 2, c.x + side / 2, c.y + side / 2)


def seed_collections(g, crs, avoid=()):
    """Two level-2 grids as a dissolve leaves them, each cut into a 40 m square
    and the rest (so they cover exactly the unit's area): the first a
    GeometryCollection holding a MultiPolygon, the second, later in the frame,
    a GeometryCollection of the two polygons."""
    grid2 = g[(g["level"] == "grid2") & ~g["code"].isin(avoid)]
    expected = []
    for k, wrap in ((grid2.index[0], lambda rest, sq: shapely.GeometryCollection([shapely.MultiPolygon([rest, sq])])),
                    (grid2.index[5], lambda rest, sq: shapely.GeometryCollection([rest, sq]))):
        whole = g.loc[k, "geometry"]
        square = to_storage(square_inside(to_metric(whole, crs), 40.0), crs)
        g.loc[k, "geometry"] = wrap(shapely.difference(whole, square), square)
        expected.append(("wrong_type", {g.loc[k, "code"]}, to_metric(whole, crs)))
    return g, expected


def seed_island(g, crs, avoid=()):
    """A 30 m square cut out of one level-2 grid and given to its neighbour as a
    second part: a multipart unit, the coverage still exact."""
    a, b, _ = shared_vertex(g, "grid2", crs, avoid=avoid)
    square = to_storage(square_inside(metric_unit(g, b, crs), 30.0), crs)
    g.loc[unit(g, b), "geometry"] = g.loc[unit(g, b), "geometry"].difference(square)
    g.loc[unit(g, a), "geometry"] = shapely.MultiPolygon([g.loc[unit(g, a), "geometry"], square])
    return g, [("multipart", {a}, to_metric(square, crs))]


def office_grids(grids, crs, seeds):
    broken, expected, touched = grids.copy(), [], set()
    for seed in seeds:
        broken, found = seed(broken, crs, avoid=touched)
        expected += found
        touched |= set().union(*(codes for _, codes, _ in found))
    return broken, expected


ALL_SEEDS = (seed_collections, seed_island, seed_bowtie, seed_shifted_vertex, seed_narrow_gap)
SHAPEFILE_SEEDS = (seed_island, seed_bowtie, seed_shifted_vertex, seed_narrow_gap)  # no collections in a .shp


def gbk_shapefile(folder, grids, name="网格.shp"):
    """A GBK shapefile as old desktop GIS writes it: no .cpg, no language driver
    id, CGCS2000 Gauss-Krüger zone 39 with the zone prefix (EPSG:4527)."""
    path = Path(folder) / name
    frame = gpd.GeoDataFrame(grids[["code", "name", "level", "parent"]].reset_index(drop=True),
                             geometry=grids.geometry.to_crs(4527).to_numpy(), crs=4527)
    pyogrio.write_dataframe(frame, path, encoding="GBK")
    path.with_suffix(".cpg").unlink()
    dbf = bytearray(path.with_suffix(".dbf").read_bytes())
    dbf[29] = 0
    path.with_suffix(".dbf").write_bytes(dbf)
    return path


# ----------------------------------------------------------------------------
# the independent checks
# ----------------------------------------------------------------------------


def overlap_area(frame, crs):
    """Total area (m²) where two units of one level overlap, by geopandas.overlay."""
    total = 0.0
    for _, level in frame.to_crs(crs).groupby("level"):
        level = level[["code", "geometry"]].reset_index(drop=True)
        pieces = gpd.overlay(level, level, how="intersection", keep_geom_type=True)
        total += pieces.loc[pieces["code_1"] != pieces["code_2"], "geometry"].area.sum() / 2
    return total


def assert_clean_output(path, crs, *, encoding=None):
    """The repaired file, read with pyogrio alone: valid polygons, no overlap,
    every full level tiling its parent."""
    back = pyogrio.read_dataframe(path, encoding=encoding)
    geoms = np.asarray(back.geometry.array)
    assert shapely.is_valid(geoms).all(), back.loc[~shapely.is_valid(geoms), "code"]
    assert set(back.geom_type) <= {"Polygon", "MultiPolygon"}
    assert overlap_area(back, crs) < 0.01
    tiles_every_parent(back.to_crs(4490), crs)
    return back


def log_of(path):
    return pyogrio.read_dataframe(path)


# ----------------------------------------------------------------------------
# office files
# ----------------------------------------------------------------------------


@pytest.fixture
def crs(grids):
    return metric_crs(grids)


def test_repairs_an_office_geojson_and_says_what_it_did(grids, crs, tmp_path):
    broken, expected = office_grids(grids, crs, ALL_SEEDS)
    source = gridgeo.io.write(broken, tmp_path / "网格.geojson")
    before_hash = digest(source)
    out = tmp_path / "repaired.geojson"

    result = run(source, "-o", out, "--report", tmp_path / "problems.geojson")

    assert result.exit_code == 0, result.output
    assert digest(source) == before_hash
    report = pyogrio.read_dataframe(tmp_path / "problems.geojson")
    errors = report[report["severity"] == "error"]
    assert sorted(errors["kind"]) == sorted(k for k, _, _ in expected if KINDS[k].severity == "error")
    # the summary: units in, errors before, the changes per step, the errors left
    assert f"{len(broken):,} units; before repair {len(errors)} error(s)" in result.stdout
    assert f"{len(broken):,} 个单元；修复前 {len(errors)} 个错误" in result.stdout
    for step in ("keep_polygons", "make_valid", "clean_coverage"):
        assert step in result.stdout
    assert "after repair: valid, 0 error(s)" in result.stdout and "修复后：有效" in result.stdout
    assert "unchanged (sha256" in result.stdout

    back = assert_clean_output(out, crs)
    assert len(back) == len(broken) and list(back.columns[:4]) == ["code", "name", "level", "parent"]
    repaired = back.set_index("code").geometry.to_crs(crs)
    # the two collections come back as the units they were cut from
    for kind, (code,), whole in expected[:2]:
        assert kind == "wrong_type" and repaired[code].geom_type == "Polygon"
        assert shapely.symmetric_difference(repaired[code], whole).area < 1e-6 * whole.area
    # the log, beside the output: each seeded defect by its code, what is left and why
    log = log_of(tmp_path / "repaired-log.geojson")
    assert list(log.columns) == [c for c in LOG_COLUMNS if c != "geometry"] + ["geometry"]
    changes = log[log["step"] != "not_repaired"]
    for kind, codes, _ in expected:
        if KINDS[kind].severity != "error":
            continue
        rows = changes[changes["parent"].isin(codes) if kind == "gap" else changes["code"].isin(codes)]
        assert kind in set(rows["kind"]), (kind, codes, changes[["step", "kind", "code"]])
    assert set(changes.loc[changes["kind"] == "wrong_type", "step"]) == {"keep_polygons"}
    left = log[log["step"] == "not_repaired"]
    assert set(left["severity"]) == {"warning"}
    island = next(codes for kind, codes, _ in expected if kind == "multipart")
    row = left[(left["kind"] == "multipart") & left["code"].isin(island)].iloc[0]
    assert "gridgeo.repair does not fix problems of this kind (multipart)" in row["message_en"]
    assert "gridgeo.repair 不修复此类问题（多部件）" in row["message_zh"]
    assert KINDS["multipart"].advice_en.lower() in row["message_en"].lower()
    assert KINDS["multipart"].advice_zh in row["message_zh"]
    # what is left is exactly what validating the output finds
    again = gridgeo.validate(gridgeo.io.read(out))
    assert sorted(zip(again["kind"], again["code"])) == sorted(zip(left["kind"], left["code"]))


def test_repairs_a_gbk_shapefile_and_writes_one_back(grids, crs, tmp_path):
    broken, expected = office_grids(grids, crs, SHAPEFILE_SEEDS)
    source = gbk_shapefile(tmp_path, broken)
    assert not source.with_suffix(".cpg").exists()
    before_hash = digest(source)
    out = tmp_path / "修复后.shp"

    result = run(source, "-o", out, "--encoding", "GBK", "--log", tmp_path / "日志.gpkg")

    assert result.exit_code == 0, result.output
    assert digest(source) == before_hash
    assert out.with_suffix(".cpg").read_text() == "GBK"
    back = assert_clean_output(out, crs, encoding="GBK")
    assert dict(zip(back["code"], back["name"])) == dict(zip(broken["code"], broken["name"]))
    log = log_of(tmp_path / "日志.gpkg")
    kinds = set(log.loc[log["step"] != "not_repaired", "kind"])
    assert {"invalid", "overlap", "gap"} <= kinds
    bowtie = next(codes for kind, codes, _ in expected if kind == "invalid")
    assert set(log.loc[log["step"] == "make_valid", "code"]) == bowtie
    # the bow-tie's two triangles keep the plot's area, now as a valid polygon
    plot = back.set_index("code").geometry.to_crs(crs)[min(bowtie)]
    drawn = broken.set_index("code").geometry.to_crs(crs)[min(bowtie)]
    assert plot.is_valid and plot.area == pytest.approx(shapely.make_valid(drawn).area, rel=1e-9)


def test_repairs_an_offices_own_file_read_as_gridgeo_load_reads_it(grids, crs, tmp_path):
    """Chinese field names, level labels, codes in number fields: read by the intake, written
    back in gridgeo's columns, repaired as the same grids in gridgeo's own columns are."""
    from gridgeo import io
    from office_files import grid_shapefile

    broken, _ = office_grids(grids, crs, SHAPEFILE_SEEDS)
    shp = grid_shapefile(tmp_path, broken, name="网格_原始.shp")
    own = io.write(broken, tmp_path / "own.gpkg")
    result = run(shp, "-o", tmp_path / "office.gpkg")
    reference = run(own, "-o", tmp_path / "reference.gpkg")
    assert result.exit_code == reference.exit_code == 0, result.output
    assert "read as gridgeo load reads it (code ← 网格编码" in result.stderr
    got = io.read(tmp_path / "office.gpkg").set_index("code").sort_index()
    want = io.read(tmp_path / "reference.gpkg").set_index("code").sort_index()
    pd.testing.assert_frame_equal(got[["name", "level", "parent"]], want[["name", "level", "parent"]],
                                  check_dtype=False)
    metric = metric_crs(want)
    gap = shapely.hausdorff_distance(np.asarray(got.to_crs(metric).geometry.array),
                                     np.asarray(want.to_crs(metric).geometry.array))
    assert gap.max() < 0.05  # through GK zone 39 and back


def test_errors_left_give_exit_status_1_and_say_why(grids, crs, tmp_path):
    g = grids.copy()
    plots = g.index[g["level"] == "grid3"]
    g.loc[plots[0], "geometry"] = g.loc[plots[0], "geometry"].centroid        # nothing to keep
    g.loc[plots[1], "code"] = g.loc[plots[2], "code"]                          # a code used twice
    source = gridgeo.io.write(g, tmp_path / "grids.gpkg")
    before_hash = digest(source)
    # a shapefile cannot hold the point left: refused before anything is written
    refused = run(source, "-o", tmp_path / "out.shp")
    assert refused.exit_code == 2 and "a shapefile holds polygons only" in refused.stderr
    assert g.loc[plots[0], "code"] in refused.stderr and not list(tmp_path.glob("out*"))
    result = run(source, "-o", tmp_path / "out.gpkg")
    assert result.exit_code == 1, result.output
    assert "NOT valid, 2 error(s)" in result.stdout
    assert digest(source) == before_hash
    log = log_of(tmp_path / "out-log.geojson")
    left = log[(log["step"] == "not_repaired") & (log["severity"] == "error")].set_index("kind")
    assert set(left.index) == {"wrong_type", "duplicate_code"}
    assert "it holds no polygon to keep" in left.loc["wrong_type", "message_en"].lower()
    assert "其中没有可保留的面" in left.loc["wrong_type", "message_zh"]
    assert "does not fix problems of this kind (duplicate code)" in left.loc["duplicate_code", "message_en"]
    for kind in left.index:  # printed in both languages
        assert left.loc[kind, "message_en"] in result.stdout and left.loc[kind, "message_zh"] in result.stdout
    # no message about a problem left claims that repair fixes it
    for kind in left.index:
        assert not KINDS[kind].repair_en or KINDS[kind].repair_en not in left.loc[kind, "message_en"]


def test_refuses_to_overwrite_and_changes_nothing(grids, tmp_path):
    source = gridgeo.io.write(grids[grids["level"] == "grid1"], tmp_path / "grid1.geojson")
    out = tmp_path / "out.geojson"
    out.write_text("{}")
    result = run(source, "-o", out)
    assert result.exit_code == 2
    assert "--overwrite" in result.stderr and "overwrite=True" not in result.stderr
    assert "已存在" in result.stderr
    assert out.read_text() == "{}" and not (tmp_path / "out-log.geojson").exists()

    (tmp_path / "out-log.geojson").write_text("{}")
    out.unlink()
    result = run(source, "-o", out)  # the log is refused too, before anything is written
    assert result.exit_code == 2 and "out-log.geojson already exists" in result.stderr
    assert not out.exists()

    result = run(source, "-o", out, "--overwrite", "--progress")
    assert result.exit_code == 0, result.output
    assert "repairing" in result.stderr
    assert len(pyogrio.read_dataframe(out)) == 31
    assert run(source, "-o", source, "--overwrite").exit_code == 2  # never over the input
    assert run(source, "-o", tmp_path / "x.geojson", "--log", tmp_path / "log.shp").exit_code == 2


def test_what_cannot_be_read_is_status_2(grids, tmp_path):
    missing = run(tmp_path / "nowhere.geojson", "-o", tmp_path / "out.geojson")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    town = grids[grids["level"] == "town"]
    bare = gpd.GeoDataFrame(town.drop(columns="geometry"), geometry=np.asarray(town.to_crs(4527).geometry.array))
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        path = gridgeo.io.write(bare, tmp_path / "no_crs.gpkg")
    result = run(path, "-o", tmp_path / "out.gpkg")
    assert result.exit_code == 2 and "--crs" in result.stderr
    assert not (tmp_path / "out.gpkg").exists()


# ----------------------------------------------------------------------------
# real polygons from libpysal, made grids of one level
# ----------------------------------------------------------------------------


def one_level_grids(folder, example, id_column, name_column, level, *, crs=None):
    """libpysal's example shapefile with code/name/level/parent from its own
    columns (one top level), written beside a scheme file of that level."""
    raw = pyogrio.read_dataframe(libpysal.examples.get_path(example))
    if crs is not None:
        raw = raw.set_crs(crs)
    codes = raw[id_column].astype(str)
    digits = int(codes.str.len().max())
    grids = gpd.GeoDataFrame({"code": codes.str.zfill(digits), "name": raw[name_column].astype(str), "level": level,
                              "parent": ""}, geometry=raw.geometry, crs=raw.crs)
    path = Path(folder) / f"{level}.shp"
    pyogrio.write_dataframe(grids, path, encoding="UTF-8")
    scheme = CodeScheme(levels=(Level(level, digits, True, level, level),), root_digits=0, village_level=level)
    scheme_path = Path(folder) / "scheme.json"
    scheme_path.write_text(json.dumps(scheme.to_dict()))
    return path, scheme_path, raw


def test_tokyo_self_intersecting_rings_are_repaired(tmp_path):
    source, scheme, raw = one_level_grids(tmp_path, "tokyomet262.shp", "GEOCODE", "AREANAME", "municipality")
    drawn = np.asarray(raw.geometry.array)
    invalid = set(raw.loc[~shapely.is_valid(drawn), "GEOCODE"])
    assert len(invalid) == 10  # what the file ships with
    before_hash = digest(source)
    out = tmp_path / "tokyo.gpkg"

    result = run(source, "-o", out, "--scheme", scheme, "--report", tmp_path / "before.geojson")

    assert result.exit_code == 0, result.output
    assert digest(source) == before_hash
    back = pyogrio.read_dataframe(out)
    metric = metric_crs(back)
    geoms = np.asarray(back.to_crs(metric).geometry.array)
    assert shapely.is_valid(geoms).all() and len(back) == 262
    assert overlap_area(back, metric) < 0.01
    # the area covered is the area drawn, made valid, plus the narrow gaps the repair closed
    drawn_m = np.asarray(raw.to_crs(metric).geometry.array)
    covered = shapely.union_all(shapely.make_valid(drawn_m)).area
    report = pyogrio.read_dataframe(tmp_path / "before.geojson")
    closed = report.loc[report["kind"] == "gap", "area_m2"].sum()
    assert shapely.union_all(geoms).area == pytest.approx(covered + closed, rel=1e-6)
    log = log_of(tmp_path / "tokyo-log.geojson")
    assert set(log.loc[log["step"] == "make_valid", "code"]) == invalid
    overlaps = report.loc[report["kind"] == "overlap", "codes"].str.split(",")
    changed = set(log.loc[log["step"] != "not_repaired", "code"])
    assert all(changed & set(pair) for pair in overlaps)  # one of each two overlapping units changed
    assert log.loc[log["kind"] == "overlap", "area_lost_m2"].sum() > 0.5 * report.loc[
        report["kind"] == "overlap", "area_m2"].sum()  # most of the overlapping area was given up by one side
    assert (log.loc[log["step"] == "not_repaired", "severity"] == "warning").all()


def test_a_bay_the_states_enclose_is_left_with_the_reason(tmp_path):
    source, scheme, raw = one_level_grids(tmp_path, "us48.shp", "STATE_FIPS", "STATE_NAME", "state", crs=4326)
    result = run(source, "-o", tmp_path / "us.geojson", "--scheme", scheme)
    assert result.exit_code == 1, result.output
    log = log_of(tmp_path / "us-log.geojson")
    left = log[(log["step"] == "not_repaired") & (log["severity"] == "error")]
    assert list(left["kind"]) == ["uncovered"]
    row = left.iloc[0]
    assert "(next to 24, 51)" in row["message_en"]  # Chesapeake Bay, between Maryland and Virginia
    assert "the top level, so there is no parent outline to fill to" in row["message_en"]
    assert "最高层级" in row["message_zh"]
    assert "gridgeo.repair shares it" not in row["message_en"]
    # the piece left is the hole of the states' union, computed here
    metric = metric_crs(raw.to_crs(4490))
    union = shapely.union_all(np.asarray(raw.to_crs(metric).geometry.array))
    holes = [shapely.Polygon(r) for p in getattr(union, "geoms", [union]) for r in p.interiors]
    bay = max(holes, key=lambda h: h.area)
    located = gpd.GeoSeries([row.geometry], crs=4490).to_crs(metric).iloc[0]
    assert shapely.symmetric_difference(located, bay).area < 1e-6 * bay.area


def test_codes_repair_never_fixes_are_listed_as_such(tmp_path):
    source, scheme, raw = one_level_grids(tmp_path, "mexicojoin.shp", "CODE", "NAME", "state", crs=4326)
    result = run(source, "-o", tmp_path / "mx.geojson", "--scheme", scheme)
    assert result.exit_code == 1
    log = log_of(tmp_path / "mx-log.geojson")
    bad = log[log["kind"] == "bad_code"]
    assert set(bad["step"]) == {"not_repaired"} and set(bad["code"]) == set(raw["CODE"])
    assert bad["message_en"].str.contains("gridgeo.repair does not fix problems of this kind "
                                          r"\(malformed code\): fix it by hand").all()
    assert bad["message_zh"].str.contains("gridgeo.repair 不修复此类问题（编码格式错误）").all()
    assert pd.Series(raw["CODE"]).map(lambda c: f"code {c!r} is not all digits" in result.stdout).all()
