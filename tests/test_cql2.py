"""CQL2 filters (OGC API - Features Part 3) and sortby (Part 5) on both stores.

Every filter is run in its cql2-text and its cql2-json form, on a GeoPackage and on
a real PostGIS, and compared with the same selection made independently on the
sample frames: pandas for attributes, shapely for S_INTERSECTS, pandas
``sort_values`` for orders. The stores are read-only here, except where a test says.
"""

from __future__ import annotations

import doctest
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import shapely

import gridgeo.store as gstore
import gridgeo.store._cql2
from store_fixture import sample_layers

KEYS = {"grids": "code", "stations": "station_id", "addresses": "addr_id", "events": "event_id",
        "roads": "road_id"}
LEVELS = ("town", "village", "grid1", "grid2", "grid3")

SPECIAL = ["网格_站", "网格%站", "网格\\站", "网格*站", "网格?站", "网格[1]站", "网格'站", '网格"站', "网格站",
           "Abc站", "abc站"]
"""Station names with the characters LIKE, GLOB and SQL treat specially."""

BOX = (118.45, 24.76, 118.48, 24.79)
TRIANGLE = "POLYGON((118.43 24.77, 118.47 24.84, 118.50 24.78, 118.43 24.77))"
TRIANGLE_JSON = {"type": "Polygon", "coordinates": [[[118.43, 24.77], [118.47, 24.84], [118.50, 24.78],
                                                     [118.43, 24.77]]]}
LINE = "LINESTRING(118.41 24.80, 118.52 24.81)"


def P(name):
    return {"property": name}


def op(name, *args):
    return {"op": name, "args": list(args)}


def bbox_json(box):
    return {"bbox": list(box)}


# --- the stores and the independent references ------------------------------------------


def typed_layers(sample):
    """Events with a date, a boolean and a real column; stations with awkward names."""
    events = sample.events.copy()
    events["reported_on"] = events["reported_at"].dt.date
    events["urgent"] = events["category"].isin(["fire", "safety"])
    events["hours"] = (events["closed_at"] - events["reported_at"]).dt.total_seconds() / 3600
    stations = sample.stations.copy()
    stations.loc[stations.index[:len(SPECIAL)], "name"] = SPECIAL
    return {"events": events, "stations": stations}


@pytest.fixture(scope="module")
def frames(sample):
    return {**sample_layers(sample), **typed_layers(sample)}


@pytest.fixture(scope="module", params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def reader(request, sample, tmp_path_factory):
    """A store holding the sample with the typed layers, for reading only."""
    database = None
    if request.param == "gpkg":
        path = tmp_path_factory.mktemp("cql2") / "store.gpkg"
        shutil.copy(request.getfixturevalue("loaded_gpkg"), path)
        url = str(path)
    else:
        server = request.getfixturevalue("postgis")
        database = f"cql2_{os.getpid()}"
        server.sql(f'DROP DATABASE IF EXISTS "{database}"')
        server.sql(f'CREATE DATABASE "{database}" TEMPLATE "{request.getfixturevalue("loaded_postgis")}"')
        url = server.url(database)
    store = gstore.open(url)
    store.load(typed_layers(sample), author="测试", progress=False)
    store.backend = request.param
    yield store
    store.close()
    if database:
        server.sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def reference(frames, collection):
    if collection in LEVELS:
        grids = frames["grids"]
        return grids[grids["level"] == collection]
    return frames[collection]


def hits(frame, geometry):
    return shapely.intersects(frame.geometry.array, shapely.from_wkt(geometry) if isinstance(geometry, str)
                              else geometry)


def keys(frame, collection):
    kind = "grids" if collection in LEVELS else collection
    return sorted(frame[KEYS[kind]].tolist())


def vertex(frames):
    """A corner several level-2 grids share, as WKT at full precision."""
    grid2 = frames["grids"][frames["grids"]["level"] == "grid2"]
    x, y = (float(v) for v in shapely.get_coordinates(grid2.geometry.iloc[0])[0])
    return f"POINT({x!r} {y!r})"


T = pd.Timestamp

# (id, collection, cql2-text, cql2-json, the same selection on the frames)
FILTERS = [
    ("equal", "grids", "parent = '350582106201'", op("=", P("parent"), "350582106201"),
     lambda f: f["parent"] == "350582106201"),
    ("equal-level", "grid2", "parent = '35058210621601'", op("=", P("parent"), "35058210621601"),
     lambda f: f["parent"] == "35058210621601"),
    ("not-equal", "grids", "workers <> 6", op("<>", P("workers"), 6),
     lambda f: f["workers"].notna() & (f["workers"] != 6)),
    ("not-of-equal", "grids", "NOT workers = 6", op("not", op("=", P("workers"), 6)),
     lambda f: (f["workers"] != 6).fillna(False).astype(bool)),
    ("null", "grids", "workers IS NULL AND level = 'grid3'",
     op("and", op("isNull", P("workers")), op("=", P("level"), "grid3")),
     lambda f: f["workers"].isna() & (f["level"] == "grid3")),
    ("not-null", "grids", "workers IS NOT NULL", op("not", op("isNull", P("workers"))),
     lambda f: f["workers"].notna()),
    ("or-null", "grids", "workers > 5 OR workers IS NULL",
     op("or", op(">", P("workers"), 5), op("isNull", P("workers"))),
     lambda f: (f["workers"] > 5).fillna(False).astype(bool) | f["workers"].isna()),
    ("in", "grids", "level IN ('town', 'village')", op("in", P("level"), ["town", "village"]),
     lambda f: f["level"].isin(["town", "village"])),
    ("not-in", "grids", "level NOT IN ('grid2', 'grid3')", op("not", op("in", P("level"), ["grid2", "grid3"])),
     lambda f: ~f["level"].isin(["grid2", "grid3"])),
    ("like-suffix", "grids", "name LIKE '%村'", op("like", P("name"), "%村"), lambda f: f["name"].str.endswith("村")),
    ("not-like", "village", "name NOT LIKE '%村'", op("not", op("like", P("name"), "%村")),
     lambda f: ~f["name"].str.endswith("村")),
    ("like-one", "village", "name LIKE '__村'", op("like", P("name"), "__村"),
     lambda f: (f["name"].str.len() == 3) & f["name"].str.endswith("村")),
    ("like-middle", "grid2", "code LIKE '3505821062__01%'", op("like", P("code"), "3505821062__01%"),
     lambda f: f["code"].str.startswith("3505821062") & (f["code"].str[12:14] == "01")),
    ("like-case", "stations", "kind LIKE 'GRID2%'", op("like", P("kind"), "GRID2%"),
     lambda f: f["kind"].str.startswith("GRID2")),
    ("intersects-polygon", "grids", f"S_INTERSECTS(geometry, {TRIANGLE})",
     op("s_intersects", P("geometry"), TRIANGLE_JSON), lambda f: hits(f, TRIANGLE)),
    ("intersects-edge-box", "grid2", "S_INTERSECTS(geometry, BBOX({}))", None, None),  # filled in below
    ("intersects-vertex", "grid2", "S_INTERSECTS(geometry, {vertex})", None, None),
    ("intersects-collection", "grids",
     f"S_INTERSECTS(geometry, GEOMETRYCOLLECTION(POINT(118.47 24.80), {LINE}))",
     op("s_intersects", P("geometry"), {"type": "GeometryCollection", "geometries": [
         {"type": "Point", "coordinates": [118.47, 24.80]},
         {"type": "LineString", "coordinates": [[118.41, 24.80], [118.52, 24.81]]}]}),
     lambda f: hits(f, f"GEOMETRYCOLLECTION(POINT(118.47 24.80), {LINE})")),
    ("precedence", "grids", f"S_INTERSECTS(geometry, {TRIANGLE}) AND level = 'grid3' OR code = '350582106'",
     op("or", op("and", op("s_intersects", P("geometry"), TRIANGLE_JSON), op("=", P("level"), "grid3")),
        op("=", P("code"), "350582106")),
     lambda f: (hits(f, TRIANGLE) & (f["level"] == "grid3")) | (f["code"] == "350582106")),
    ("or-before-and", "grids", "code = '350582106' OR level = 'grid3' AND workers > 5",
     op("or", op("=", P("code"), "350582106"), op("and", op("=", P("level"), "grid3"), op(">", P("workers"), 5))),
     lambda f: (f["code"] == "350582106") | ((f["level"] == "grid3") & (f["workers"] > 5).fillna(False).astype(bool))),
    ("not-group", "grids", "NOT (level = 'grid2' AND workers > 5) AND level IN ('grid2', 'grid3')",
     op("and", op("not", op("and", op("=", P("level"), "grid2"), op(">", P("workers"), 5))),
        op("in", P("level"), ["grid2", "grid3"])),
     lambda f: ~((f["level"] == "grid2") & (f["workers"] > 5).fillna(False).astype(bool))
     & f["level"].isin(["grid2", "grid3"])),
    ("station-kind", "stations", "kind = 'grid2_station'", op("=", P("kind"), "grid2_station"),
     lambda f: f["kind"] == "grid2_station"),
    ("station-prefix", "stations", "grid_code LIKE '350582106201%'", op("like", P("grid_code"), "350582106201%"),
     lambda f: f["grid_code"].str.startswith("350582106201")),
    ("text-between", "stations", "station_id BETWEEN 'S3505821060010' AND 'S3505821060050'",
     op("between", P("station_id"), "S3505821060010", "S3505821060050"),
     lambda f: (f["station_id"] >= "S3505821060010") & (f["station_id"] <= "S3505821060050")),
    ("not-intersects", "stations", f"NOT S_INTERSECTS(geometry, BBOX({', '.join(map(str, BOX))}))",
     op("not", op("s_intersects", P("geometry"), bbox_json(BOX))), lambda f: ~hits(f, shapely.box(*BOX))),
    ("geom-name", "stations", f"S_INTERSECTS(geom, MULTIPOLYGON((({TRIANGLE[9:-2]}))))",
     op("s_intersects", P("geom"), {"type": "MultiPolygon", "coordinates": [TRIANGLE_JSON["coordinates"]]}),
     lambda f: hits(f, TRIANGLE)),
    ("ge", "addresses", "households >= 10", op(">=", P("households"), 10), lambda f: f["households"] >= 10),
    ("between", "addresses", "households BETWEEN 2 AND 4", op("between", P("households"), 2, 4),
     lambda f: f["households"].between(2, 4)),
    ("not-between", "addresses", "households NOT BETWEEN 2 AND 4",
     op("not", op("between", P("households"), 2, 4)), lambda f: ~f["households"].between(2, 4)),
    ("property-property", "addresses", "population > households", op(">", P("population"), P("households")),
     lambda f: f["population"] > f["households"]),
    ("flipped", "addresses", "10 < households", op("<", 10, P("households")), lambda f: f["households"] > 10),
    ("fraction", "addresses", "households > 2.5", op(">", P("households"), 2.5), lambda f: f["households"] > 2.5),
    ("coerced", "addresses", "households = '3'", op("=", P("households"), "3"), lambda f: f["households"] == 3),
    ("nested", "addresses", "units = 0 AND (households > 5 OR population > 20)",
     op("and", op("=", P("units"), 0), op("or", op(">", P("households"), 5), op(">", P("population"), 20))),
     lambda f: (f["units"] == 0) & ((f["households"] > 5) | (f["population"] > 20))),
    ("two-likes", "addresses", "address LIKE '晋江市内坑镇%' AND address LIKE '%1号'",
     op("and", op("like", P("address"), "晋江市内坑镇%"), op("like", P("address"), "%1号")),
     lambda f: f["address"].str.startswith("晋江市内坑镇") & f["address"].str.endswith("1号")),
    ("intersects-and", "addresses", f"S_INTERSECTS(geometry, {TRIANGLE}) AND households > 3",
     op("and", op("s_intersects", P("geometry"), TRIANGLE_JSON), op(">", P("households"), 3)),
     lambda f: hits(f, TRIANGLE) & (f["households"] > 3)),
    ("intersects-or", "addresses", f"S_INTERSECTS(geometry, BBOX({', '.join(map(str, BOX))})) OR households > 20",
     op("or", op("s_intersects", P("geometry"), bbox_json(BOX)), op(">", P("households"), 20)),
     lambda f: hits(f, shapely.box(*BOX)) | (f["households"] > 20)),
    ("time-range", "events",
     "reported_at >= TIMESTAMP('2025-03-01T00:00:00Z') AND reported_at < TIMESTAMP('2025-04-01T00:00:00Z')",
     op("and", op(">=", P("reported_at"), {"timestamp": "2025-03-01T00:00:00Z"}),
        op("<", P("reported_at"), {"timestamp": "2025-04-01T00:00:00Z"})),
     lambda f: (f["reported_at"] >= T("2025-03-01")) & (f["reported_at"] < T("2025-04-01"))),
    ("time-zone", "events", "reported_at > TIMESTAMP('2025-03-01T08:00:00+08:00')",
     op(">", P("reported_at"), {"timestamp": "2025-03-01T08:00:00+08:00"}),
     lambda f: f["reported_at"] > T("2025-03-01 00:00:00")),
    ("time-between", "events",
     "reported_at BETWEEN TIMESTAMP('2025-06-01T00:00:00Z') AND TIMESTAMP('2025-06-02T12:30:00Z')",
     op("between", P("reported_at"), {"timestamp": "2025-06-01T00:00:00Z"}, {"timestamp": "2025-06-02T12:30:00Z"}),
     lambda f: f["reported_at"].between(T("2025-06-01"), T("2025-06-02 12:30"))),
    ("time-date", "events", "reported_at < DATE('2025-02-01')", op("<", P("reported_at"), {"date": "2025-02-01"}),
     lambda f: f["reported_at"] < T("2025-02-01")),
    ("open", "events", "closed_at IS NULL AND status <> 'closed'",
     op("and", op("isNull", P("closed_at")), op("<>", P("status"), "closed")),
     lambda f: f["closed_at"].isna() & (f["status"] != "closed")),
    ("times-compared", "events", "closed_at > reported_at", op(">", P("closed_at"), P("reported_at")),
     lambda f: (f["closed_at"] > f["reported_at"]).fillna(False).astype(bool)),
    ("date", "events", "reported_on = DATE('2025-03-01')", op("=", P("reported_on"), {"date": "2025-03-01"}),
     lambda f: f["reported_on"] == pd.Timestamp("2025-03-01").date()),
    ("date-between", "events", "reported_on BETWEEN DATE('2025-03-01') AND DATE('2025-03-07')",
     op("between", P("reported_on"), {"date": "2025-03-01"}, {"date": "2025-03-07"}),
     lambda f: f["reported_at"].between(T("2025-03-01"), T("2025-03-07 23:59:59.999"))),
    ("date-in", "events", "reported_on IN (DATE('2025-03-01'), DATE('2025-12-31'))",
     op("in", P("reported_on"), [{"date": "2025-03-01"}, {"date": "2025-12-31"}]),
     lambda f: f["reported_at"].dt.strftime("%Y-%m-%d").isin(["2025-03-01", "2025-12-31"])),
    ("boolean", "events", "urgent = true", op("=", P("urgent"), True),
     lambda f: f["category"].isin(["fire", "safety"])),
    ("not-boolean", "events", "NOT urgent = TRUE AND category <> 'road'",
     op("and", op("not", op("=", P("urgent"), True)), op("<>", P("category"), "road")),
     lambda f: ~f["category"].isin(["fire", "safety", "road"])),
    ("real", "events", "hours > 48.5", op(">", P("hours"), 48.5), lambda f: f["hours"] > 48.5),
    ("real-null", "events", "hours IS NULL", op("isNull", P("hours")), lambda f: f["hours"].isna()),
    ("category", "events", "category IN ('fire', 'safety') AND NOT status = 'closed'",
     op("and", op("in", P("category"), ["fire", "safety"]), op("not", op("=", P("status"), "closed"))),
     lambda f: f["category"].isin(["fire", "safety"]) & (f["status"] != "closed")),
    ("road-line", "roads", f"class = 'local' AND S_INTERSECTS(geometry, {LINE})",
     op("and", op("=", P("class"), "local"),
        op("s_intersects", P("geometry"), {"type": "LineString", "coordinates": [[118.41, 24.80], [118.52, 24.81]]})),
     lambda f: (f["class"] == "local") & hits(f, LINE)),
    ("road-box", "roads", f"S_INTERSECTS(geometry, BBOX({', '.join(map(str, BOX))}))",
     op("s_intersects", P("geometry"), bbox_json(BOX)), lambda f: hits(f, shapely.box(*BOX))),
    ("ecql-bbox", "addresses", f"BBOX(geometry, {', '.join(map(str, BOX))})", None,
     lambda f: hits(f, shapely.box(*BOX))),
    ("like-escaped-underscore", "stations", "name LIKE '网格\\_站'", op("like", P("name"), "网格\\_站"),
     lambda f: f["name"] == "网格_站"),
    ("like-one-char", "stations", "name LIKE '网格_站'", op("like", P("name"), "网格_站"),
     lambda f: f["name"].isin(["网格_站", "网格%站", "网格\\站", "网格*站", "网格?站", "网格'站", '网格"站'])),
    ("like-escaped-percent", "stations", "name LIKE '网格\\%站'", op("like", P("name"), "网格\\%站"),
     lambda f: f["name"] == "网格%站"),
    ("like-backslash", "stations", "name LIKE '网格\\\\站'", op("like", P("name"), "网格\\\\站"),
     lambda f: f["name"] == "网格\\站"),
    ("like-star", "stations", "name LIKE '网格*站'", op("like", P("name"), "网格*站"), lambda f: f["name"] == "网格*站"),
    ("like-question", "stations", "name LIKE '网格?站'", op("like", P("name"), "网格?站"),
     lambda f: f["name"] == "网格?站"),
    ("like-brackets", "stations", "name LIKE '网格[1]%'", op("like", P("name"), "网格[1]%"),
     lambda f: f["name"] == "网格[1]站"),
    ("like-lowercase", "stations", "name LIKE 'abc%'", op("like", P("name"), "abc%"), lambda f: f["name"] == "abc站"),
    ("like-uppercase", "stations", "name LIKE 'ABC%'", op("like", P("name"), "ABC%"), lambda f: f["name"] == "ABC站"),
    ("like-any", "stations", "name LIKE '网格%站'", op("like", P("name"), "网格%站"),
     lambda f: f["name"].str.startswith("网格") & f["name"].str.endswith("站")),
    ("equal-backslash", "stations", "name = '网格\\站'", op("=", P("name"), "网格\\站"),
     lambda f: f["name"] == "网格\\站"),
    ("equal-double-quote", "stations", "name = '网格\"站'", op("=", P("name"), '网格"站'),
     lambda f: f["name"] == '网格"站'),
    ("equal-single-quote", "stations", None, op("=", P("name"), "网格'站"), lambda f: f["name"] == "网格'站"),
]


def _filled(frames):
    """FILTERS with the cases that need the data (a box on a grid's edges, a shared vertex)."""
    grid2 = frames["grids"][frames["grids"]["level"] == "grid2"]
    edge = grid2.geometry.iloc[0].bounds
    point = vertex(frames)
    out = []
    for name, collection, text, data, expected in FILTERS:
        if name == "intersects-edge-box":
            text = text.format(", ".join(repr(v) for v in edge))
            data = op("s_intersects", P("geometry"), bbox_json(edge))
            expected = lambda f, edge=edge: hits(f, shapely.box(*edge))  # noqa: E731
        elif name == "intersects-vertex":
            text = text.format(vertex=point)
            x, y = (float(v) for v in point[6:-1].split())
            data = op("s_intersects", P("geometry"), {"type": "Point", "coordinates": [x, y]})
            expected = lambda f, point=point: hits(f, point)  # noqa: E731
        out.append((name, collection, text, data, expected))
    return out


@pytest.mark.parametrize("name", [f[0] for f in FILTERS])
def test_filters_select_what_pandas_and_shapely_select(reader, frames, name):
    _, collection, text, data, expected = next(f for f in _filled(frames) if f[0] == name)
    ref = reference(frames, collection)
    want = keys(ref[np.asarray(expected(ref), dtype=bool)], collection)
    forms = [(text, None)] if text is not None else []
    if data is not None:
        forms += [(data, None), (json.dumps(data, ensure_ascii=False), "cql2-json")]
    assert forms
    for filter_, lang in forms:
        got = reader.read(collection, filter=filter_, filter_lang=lang)
        assert keys(got, collection) == want, (filter_, len(got), len(want))
        assert reader.count(collection, filter=filter_, filter_lang=lang) == len(got) == len(want)


def test_the_filters_select_something_and_leave_something(frames):
    """Each reference selection is neither empty nor everything (except where a test is about nothing),
    so that a filter ignored or refusing everything fails."""
    empty_on_purpose = {"like-case", "like-uppercase"}
    for name, collection, _, _, expected in _filled(frames):
        ref = reference(frames, collection)
        n = int(np.asarray(expected(ref), dtype=bool).sum())
        if name in empty_on_purpose:
            assert n == 0, name
        else:
            assert 0 < n < len(ref), (name, n, len(ref))


def test_our_text_parser_reads_as_pygeofilter_does_where_pygeofilter_is_right(frames):
    """The parser is pygeofilter's grammar with CQL2's boolean rules: the same AST, except
    that AND binds tighter than OR and NOT takes a parenthesised condition."""
    from pygeofilter import ast
    from pygeofilter.parsers.cql2_text import parse

    for name, _, text, _, _ in _filled(frames):
        if text is not None and name not in ("or-before-and", "not-group"):
            assert gridgeo.store._cql2.parse(text) == parse(text), name
    ours = gridgeo.store._cql2.parse("code = 'a' OR level = 'b' AND name = 'c'")
    assert isinstance(ours, ast.Or) and isinstance(ours.rhs, ast.And)
    assert isinstance(parse("code = 'a' OR level = 'b' AND name = 'c'"), ast.And)  # pygeofilter 0.4's reading
    assert isinstance(gridgeo.store._cql2.parse("NOT (code = 'a' OR name = 'c')").sub_node, ast.Or)


def test_filters_go_with_the_other_filters_paging_and_bbox(reader, frames):
    addresses = frames["addresses"]
    rows = reader.read("addresses", filter="households >= 3", bbox=BOX, sortby=["-households"], limit=7, offset=5)
    inside = addresses[hits(addresses, shapely.box(*BOX)) & (addresses["households"] >= 3)]
    ordered = inside.sort_values(["households", "addr_id"], ascending=[False, True])
    assert rows["addr_id"].tolist() == ordered["addr_id"].iloc[5:12].tolist()
    assert reader.count("addresses", filter="households >= 3", bbox=BOX) == len(inside)

    grids = frames["grids"]
    village = "350582106201"
    got = reader.read("grids", within=village, level=["grid2", "grid3"], filter="workers >= 5 OR workers IS NULL")
    want = grids[grids["code"].str.startswith(village) & grids["level"].isin(["grid2", "grid3"])
                 & ((grids["workers"] >= 5).fillna(False).astype(bool) | grids["workers"].isna())]
    assert sorted(got["code"]) == sorted(want["code"])
    events = frames["events"]
    got = reader.read("events", where={"status": "closed"}, filter="category = 'fire'", columns=["event_id"])
    assert list(got.columns) == ["event_id", "revision", "geometry"]
    assert sorted(got["event_id"]) == sorted(events.loc[(events["status"] == "closed")
                                                        & (events["category"] == "fire"), "event_id"])


def test_a_filter_reads_the_data_as_it_was(store, sample):
    """at= reads the published rows and the history: the filter, its R-tree too, applies to both."""
    stations = sample.stations
    moved = stations.iloc[:30].copy()
    moved["geometry"] = moved.geometry.translate(0.02, 0)
    store.load({"stations": moved}, author="李四", progress=False)
    text = f"S_INTERSECTS(geometry, {TRIANGLE}) AND kind = 'grid2_station'"
    for frame, at in ((stations, 1), (moved, None)):
        want = frame[hits(frame, TRIANGLE) & (frame["kind"] == "grid2_station")]
        got = store.read("stations", filter=text, at=at)
        assert sorted(got["station_id"]) == sorted(want["station_id"]) and len(want) > 0
        assert store.count("stations", filter=text, at=at) == len(want)


def test_a_spatial_filter_uses_the_spatial_index_and_a_code_filter_the_code_index(store, backend):
    plans = []
    for kind, text, names in (("addresses", f"S_INTERSECTS(geometry, {TRIANGLE}) AND households > 3",
                               ["addr_id", "revision"]),
                              ("grids", "parent = '350582106201'", ["code", "revision"])):
        filters = store._filter(kind, store.columns(kind), text, None)
        sql, params = store._select(kind, names, [], [], revision=None, bbox=None, limit=None, offset=0,
                                    filters=filters)
        if backend == "gpkg":
            rows = store._db.query("EXPLAIN QUERY PLAN " + sql, params)
        else:
            with store._db.write() as tx:
                tx.execute("SET LOCAL enable_seqscan = off")
                rows = tx.query("EXPLAIN " + sql, params)
        plans.append(" ".join(str(r[-1]) for r in rows))
    spatial = "rtree_addresses_geom VIRTUAL TABLE INDEX" if backend == "gpkg" else "addresses_geom_gist"
    assert spatial in plans[0], plans[0]
    assert "grids_parent" in plans[1], plans[1]


# --- what is refused ------------------------------------------------------------------


REFUSED = [
    # (collection, filter, filter_lang, what the message says)
    ("grids", "colour = 'red'", None, "the grids layer has no property 'colour': filter on 'code', 'name'"),
    ("grids", op("=", P("colour"), "red"), None, "no property 'colour'"),
    ("grids", '"name"" OR 1=1 --" = \'x\'', None, "cannot be parsed at column 7"),
    ("grids", op("=", P("name\" = name OR \"1"), "x"), None, "no property 'name\" = name OR \"1'"),
    ("grids", "CASEI(name) = casei('前垵村')", None, "functions (CASEI) are not supported"),
    ("grids", "ACCENTI(name) = '前垵村'", None, "functions (ACCENTI) are not supported"),
    ("grids", "upper(name) = 'X'", None, "functions (UPPER) are not supported"),
    ("grids", op("=", {"function": {"name": "upper", "arguments": [P("name")]}}, "X"), None,
     "functions (UPPER) are not supported"),
    ("grids", "workers + 1 > 3", None, "arithmetic (+) is not supported"),
    ("grids", f"S_WITHIN(geometry, {TRIANGLE})", None, "S_WITHIN is not supported"),
    ("grids", op("s_contains", P("geometry"), TRIANGLE_JSON), None, "S_CONTAINS is not supported"),
    ("events", "reported_at T_AFTER TIMESTAMP('2025-01-01T00:00:00Z')", None, "T_AFTER is not supported"),
    ("events", "reported_at T_DURING INTERVAL('2025-01-01T00:00:00Z', '2025-02-01T00:00:00Z')", None,
     "T_DURING is not supported"),
    ("grids", "INCLUDE", None, "INCLUDE is not supported"),
    ("grids", op("a_contains", P("name"), ["x"]), None, "A_CONTAINS is not supported"),
    ("grids", "3 = 4", None, "compares two values"),
    ("grids", "parent = ", None, "cannot be parsed at column 8"),
    ("grids", "parent = '350582106201", None, "cannot be parsed"),
    ("grids", "(parent = '350582106201'", None, "cannot be parsed"),
    ("grids", "AND", None, "cannot be parsed"),
    ("grids", "   ", None, "the filter is empty"),
    ("grids", "name = 'it''s'", None, "a quote inside a string"),
    ("grids", "{\"op\": \"=\", ", "cql2-json", "is not JSON"),
    ("grids", "[1, 2]", "cql2-json", "is a JSON object"),
    ("grids", {"op": "nope", "args": [P("name"), "x"]}, None, "cannot be read"),
    ("grids", {"op": "="}, None, "cannot be read: missing member 'args'"),
    ("grids", op("=", P("name"), None), None, "cannot be read"),
    ("grids", {"op": "=", "args": [{"property": 5}, "x"]}, None, "a property is named by a string"),
    ("grids", op("=", P("name"), "x"), "cql2-text", "a cql2-text filter is a string"),
    ("grids", "name = 'x'", "cql2-xml", "filter-lang 'cql2-xml' is not supported"),
    ("grids", "workers = 'many'", None, "cannot compare 'workers' (integer) of the grids layer with 'many'"),
    ("grids", "workers IN (1, 'x')", None, "with 'x'"),
    ("grids", "workers LIKE '1%'", None, "LIKE matches text, and 'workers' of the grids layer is integer"),
    ("grids", "name LIKE 'abc\\'", None, "ends with the escape character"),
    ("grids", op("like", P("name"), P("code")), None, "must be a text literal"),
    ("grids", "geometry = 'x'", None, "the geometry is filtered with S_INTERSECTS"),
    ("grids", "S_INTERSECTS(name, POINT(118.4 24.8))", None, "'name' is a text property"),
    ("grids", "S_INTERSECTS(geometry, POLYGON((118.4 24.7, 118.5 24.8, 118.5 24.7, 118.4 24.8, 118.4 24.7)))",
     None, "the geometry literal is not valid (Self-intersection"),
    ("grids", "S_INTERSECTS(geometry, POINT(500000 2740000))", None, "geometry literals are longitude/latitude"),
    ("grids", "S_INTERSECTS(geometry, SRID=3857;POINT(118.4 24.8))", None, "got 'urn:ogc:def:crs:EPSG::3857'"),
    ("grids", "S_INTERSECTS(geometry, BBOX(118.5, 24.7, 118.4, 24.8))", None, "minx <= maxx"),
    ("grids", op("s_intersects", P("geometry"), {"bbox": [118.4, 24.7]}), None, "a BBOX is 4 numbers"),
    ("grids", "S_INTERSECTS(geometry, ENVELOPE(118.4 118.5 24.7 24.8))", None, "ENVELOPE(...) is not CQL2"),
    ("grids", "S_INTERSECTS(geometry, 'x')", None, "S_INTERSECTS takes a geometry literal"),
    ("events", "reported_at > TIMESTAMP('2025-02-30T00:00:00Z')", None, "is not an ISO 8601 time"),
    ("events", "reported_at > DATE('2025-02-30')", None, "is not an ISO 8601 date"),
    ("events", op(">", P("reported_at"), {"timestamp": "yesterday"}), None, "is not an ISO 8601 time"),
    ("events", "reported_at > 'not a time'", None, "cannot compare 'reported_at' (datetime)"),
    ("events", "reported_on = TIMESTAMP('2025-03-01T00:00:00Z')", None, "is a date: compare it with DATE("),
    ("events", "reported_at = category", None, "compares properties of different kinds"),
    ("events", "category IN (category)", None, "IN takes values here, not the property 'category'"),
    ("grids", op("in", P("level"), []), None, "lists no values"),
    ("grids", op("in", P("level"), "grid2"), None, "IN takes a list of values"),
    ("grids", " AND ".join(["workers = 1"] * 201), None, "more than 200 conditions"),
    ("grids", "NOT (" * 60 + "workers = 1" + ")" * 60, None, "nested more than 50 levels"),
    ("grids", json.loads('{"op": "not", "args": [' * 300 + '{"op": "isNull", "args": [{"property": "name"}]}'
                         + ']}' * 300),
     None, "nested more than 50 levels"),
    ("grids", "workers IN (" + ", ".join(["1"] * 5001) + ")", None, "more than 5000 values"),
]


@pytest.mark.parametrize("case", range(len(REFUSED)), ids=[str(r[1])[:40] for r in REFUSED])
def test_what_the_store_cannot_run_is_refused_saying_what(reader, case, capsys):
    collection, filter_, lang, message = REFUSED[case]
    with pytest.raises(gstore.FilterError) as info:
        reader.read(collection, filter=filter_, filter_lang=lang)
    assert message in str(info.value), str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, gstore.StoreError)
    with pytest.raises(gstore.FilterError):
        reader.count(collection, filter=filter_, filter_lang=lang)
    assert capsys.readouterr().out == ""  # no parser dump on stdout


# --- SQL injection ------------------------------------------------------------------------


INJECTIONS = [
    "x' OR '1'='1",
    "'; DROP TABLE grids; --",
    "x'); DELETE FROM grids; --",
    "%' OR name LIKE '%",
    "\\'; UPDATE grids SET name = 'x'; --",
    "1 OR 1=1",
]


def test_injections_in_literals_select_nothing_and_change_nothing(reader):
    before = (reader.counts(), reader.version, reader.revision)
    grids = reader.read("grids")
    for value in INJECTIONS:
        for data in (op("=", P("name"), value), op("like", P("name"), value), op("in", P("code"), [value, "y"]),
                     op("<>", P("name"), value)):
            got = reader.read("grids", filter=data)
            expected = len(grids) if data["op"] == "<>" else 0
            assert len(got) == expected, (data, len(got))
        if "'" not in value:
            assert len(reader.read("grids", filter=f"name = '{value}'")) == 0
    for text in ("name = 'x\"; DROP TABLE grids; --'", "name = '1 OR 1=1' OR name = '\"; DELETE FROM grids'"):
        assert len(reader.read("grids", filter=text)) == 0
    for text in ("name = 'x' OR '1'='1'", "name = ''; DROP TABLE grids; --'", "name = 'x'; DROP TABLE grids"):
        with pytest.raises(gstore.FilterError):
            reader.read("grids", filter=text)
    for sortby in (["name; DROP TABLE grids"], ['name" DESC; DROP TABLE grids; --']):
        with pytest.raises(gstore.FilterError, match="cannot sort the grids layer by"):
            reader.read("grids", sortby=sortby)
    assert (reader.counts(), reader.version, reader.revision) == before
    after = reader.read("grids")
    pd.testing.assert_frame_equal(after.drop(columns="geometry"), grids.drop(columns="geometry"))


# --- sortby ---------------------------------------------------------------------------


SORTS = [
    # (collection, sortby, pandas columns, ascending)
    ("addresses", ["-households", "addr_id"], ["households", "addr_id"], [False, True]),
    ("addresses", ["-households"], ["households", "addr_id"], [False, True]),
    ("addresses", "+units,-population", ["units", "population", "addr_id"], [True, False, True]),
    ("grids", ["workers"], ["workers", "code"], [True, True]),
    ("grids", ["-workers"], ["workers", "code"], [False, True]),
    ("village", ["name"], ["name", "code"], [True, True]),
    ("village", ["-name"], ["name", "code"], [False, True]),
    ("events", ["-reported_at"], ["reported_at", "event_id"], [False, True]),
    ("events", ["-urgent", "reported_on", "-hours"], ["urgent", "reported_on", "hours", "event_id"],
     [False, True, False, True]),
    ("events", ["hours"], ["hours", "event_id"], [True, True]),
    ("stations", ["kind", "-name"], ["kind", "name", "station_id"], [True, False, True]),
]


@pytest.mark.parametrize("case", range(len(SORTS)), ids=[f"{s[0]}-{s[1]}" for s in SORTS])
def test_sortby_orders_as_pandas_sort_values_with_the_key_last(reader, frames, case):
    collection, sortby, by, ascending = SORTS[case]
    ref = reference(frames, collection).sort_values(by, ascending=ascending, na_position="last", kind="stable")
    key = KEYS["grids" if collection in LEVELS else collection]
    got = reader.read(collection, sortby=sortby, columns=[])
    assert list(got.columns) == ["revision", "geometry"]  # sorted by columns it does not return
    got = reader.read(collection, sortby=sortby)
    assert got[key].tolist() == ref[key].tolist()
    pages = [reader.read(collection, sortby=sortby, limit=37, offset=o)[key]
             for o in range(0, min(len(ref), 300), 37)]
    assert pd.concat(pages).tolist() == ref[key].tolist()[:len(pd.concat(pages))]


def test_sortby_with_a_filter_and_roads_of_many_segments(reader, frames):
    roads = frames["roads"]
    got = reader.read("roads", sortby=["class"], filter=f"S_INTERSECTS(geometry, {LINE})")
    want = roads[hits(roads, LINE)].sort_values(["class", "road_id"], kind="stable")
    assert got["road_id"].tolist() == want["road_id"].tolist()
    # gpkg answers a bbox read in Python after SQL: the order and the page must survive that
    events = frames["events"]
    page = reader.read("events", bbox=BOX, sortby="-reported_at", limit=10, offset=3, filter="status = 'closed'")
    inside = events[hits(events, shapely.box(*BOX)) & (events["status"] == "closed")]
    assert page["event_id"].tolist() == inside.sort_values(["reported_at", "event_id"], ascending=[False, True]
                                                           )["event_id"].iloc[3:13].tolist()


@pytest.mark.parametrize("sortby, message", [
    (["colour"], "cannot sort the grids layer by 'colour': its columns are 'code'"),
    (["-geometry"], "cannot sort the grids layer by 'geometry'"),
    ([""], "column names, each with an optional leading + or -"),
    ("-", "column names, each with an optional leading + or -"),
    (["name", "-name"], "names 'name' twice"),
    ([3], "got 3"),
    (5, "sortby should be column names"),
])
def test_a_sortby_the_store_cannot_run_is_refused(reader, sortby, message):
    with pytest.raises(gstore.FilterError) as info:
        reader.read("grids", sortby=sortby)
    assert message in str(info.value)


def test_docstring_examples_run():
    result = doctest.testmod(gridgeo.store._cql2, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
